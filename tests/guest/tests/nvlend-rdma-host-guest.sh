# Guest half of tests/functional/nvme_rdma_host_guest.sh: nvlend's own
# NVMe/RDMA initiator (libnvlend's nvme+rdma://, the nvme bdev's trtype
# RDMA) over soft-RoCE (rxe0 on eth0) against the kernel's nvmet-rdma
# target (configfs, a loop device on tmpfs, port 4421) and against nvlendd's
# own RDMA listener (a RAM namespace, port 4420): nvlend ns info shows the
# identify data, nvlend-perf --verify (4 KiB writes in the capsule, 64 KiB
# writes by the target's RDMA READ, reads by its RDMA WRITE), then a guest
# nvlendd attaches the kernel target's namespace with
# bdev_nvme_attach_controller trtype RDMA and re-exports it over shm, where
# what was written through the kernel target directly is read back; and
# nvlend attach --via nbd gives the kernel target's namespace as a block
# device. The target's queue pair counters show which way the data went.
# Then bdev_nvme_start_discovery trtype rdma against the kernel target's
# port (its entry attached as D0, D0n1 reads what the kernel target holds,
# get_discovery_info / save_config / nvme discover list say RDMA), and a
# controller attached over RDMA that outlives its subsystem leaving the
# kernel port and coming back (reconnecting, then ready, data intact).
# Parameters in /host/env. Prints "CHECK <name> ok" per step and
# GUEST_ALL_OK at the end.
set -u
. /host/env
A=10.0.2.15
export NVLEND_SOCKET=/tmp/nvlend.sock
DPID=
fail() {
  echo "CHECK $1 FAIL: $2"
  dmesg | grep -iE "nvme|rdma|rxe" | tail -20
  [ -n "$DPID" ] && { kill "$DPID"; sleep 1; tail -40 /tmp/nvlendd.log; }
  exit 1
}
ok() { echo "CHECK $1 ok"; }
rpc() { /host/nvlend -t 20 rpc "$@" > /tmp/rpc.out 2>&1 || { cat /tmp/rpc.out; fail rpc "$1 $2"; }; }
perf() { # perf NAME URI ARGS...: a verified run, its summary kept
  n=$1; shift
  timeout 120 /host/nvlend-perf "$@" > /tmp/perf.$n 2>&1 || { tail -20 /tmp/perf.$n; fail "$n" "nvlend-perf $*"; }
  tail -3 /tmp/perf.$n
}

for m in crc32_generic rdma_rxe ib_uverbs rdma_ucm nvmet-rdma loop; do
  modprobe $m || fail modules "modprobe $m"
done
rdma link add rxe0 type rxe netdev eth0 || fail rxe "rdma link add"
ok soft-roce

# ---- the kernel's nvmet-rdma target ------------------------------------------------------
grep -q " /sys/kernel/config " /proc/mounts || mount -t configfs configfs /sys/kernel/config
LOOP=/dev/loop0
truncate -s 64M /tmp/k.img && losetup $LOOP /tmp/k.img || fail kernel-target losetup
C=/sys/kernel/config/nvmet
mkdir $C/subsystems/$KNQN || fail kernel-target subsystem
echo 1 > $C/subsystems/$KNQN/attr_allow_any_host
echo -n "$KSERIAL" > $C/subsystems/$KNQN/attr_serial 2>/dev/null || true
mkdir $C/subsystems/$KNQN/namespaces/1
echo -n "$LOOP" > $C/subsystems/$KNQN/namespaces/1/device_path
echo 1 > $C/subsystems/$KNQN/namespaces/1/enable || fail kernel-target "namespace enable"
mkdir $C/ports/1
echo rdma > $C/ports/1/addr_trtype; echo ipv4 > $C/ports/1/addr_adrfam
echo $A > $C/ports/1/addr_traddr; echo 4421 > $C/ports/1/addr_trsvcid
ln -s $C/subsystems/$KNQN $C/ports/1/subsystems/$KNQN || fail kernel-target "port link"
ok kernel-target

KURI=nvme+rdma://$A:4421/$KNQN
timeout 60 /host/nvlend --json ns info "$KURI" > /tmp/info 2>&1 || { cat /tmp/info; fail ns-info "nvlend ns info $KURI"; }
cat /tmp/info
grep -q "Linux" /tmp/info || fail ns-info "no Linux model in the identify data"
grep -q "$KNQN" /tmp/info || fail ns-info "no subsystem NQN in the identify data"
grep -qE '"num_blocks": *131072' /tmp/info || fail ns-info "not 131072 blocks of 512 bytes"
ok ns-info

# refusals in nvl_strerror's words: a subsystem the target does not have, a port nobody listens on
if timeout 60 /host/nvlend ns info "nvme+rdma://$A:4421/nqn.2024-01.io.example:none" > /tmp/bad1 2>&1; then
  fail refusals "an unknown subsystem connected"
fi
cat /tmp/bad1
grep -q "no such subsystem" /tmp/bad1 || fail refusals "unknown subsystem: $(cat /tmp/bad1)"
if timeout 60 /host/nvlend ns info "nvme+rdma://$A:4999/$KNQN" > /tmp/bad2 2>&1; then
  fail refusals "a port without a listener connected"
fi
cat /tmp/bad2
ok refusals

perf kernel-4k "$KURI" --rw=randrw --bs=4k --iodepth=16 --verify --size=16M --io_limit=4M
perf kernel-64k "$KURI" --rw=randrw --bs=64k --iodepth=4 --numjobs=2 --verify --size=16M --io_limit=8M
ok kernel-perf

# ---- nvlendd's own RDMA listener ------------------------------------------------------------
/host/nvlendd -s "$NVLEND_SOCKET" --reactors 2 > /tmp/nvlendd.log 2>&1 &
DPID=$!
i=0
until /host/nvlend -t 1 rpc nvlend_get_version >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 100 ] || fail daemon "nvlendd did not come up"; sleep 0.2
done
rpc nvmf_create_transport '{"trtype":"RDMA","in_capsule_data_size":4096}'
rpc bdev_malloc_create '{"name":"r0","num_blocks":32768,"block_size":512}'
rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true,\"serial_number\":\"$SERIAL\"}"
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"r0\"}}"
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"RDMA\",\"adrfam\":\"IPv4\",\"traddr\":\"$A\",\"trsvcid\":\"4420\"}}"
NURI=nvme+rdma://$A:4420/$NQN
timeout 60 /host/nvlend ns info "$NURI" > /tmp/info2 2>&1 || { cat /tmp/info2; fail nvlend-target "ns info"; }
grep -q "$SERIAL" /tmp/info2 || { cat /tmp/info2; fail nvlend-target "serial $SERIAL not in the identify data"; }
perf nvlend-4k "$NURI" --rw=randrw --bs=4k --iodepth=16 --verify --io_limit=4M
perf nvlend-64k "$NURI" --rw=randrw --bs=64k --iodepth=4 --verify --io_limit=8M
ok nvlend-target

# which way the data went, by the target's counters while a run is on: 4 KiB
# writes in the capsule (no RDMA READ but the Connect data's), 64 KiB writes
# read by the target (RDMA READs), reads written by it (RDMA WRITEs)
qp_max() { # qp_max FIELD: the largest value of FIELD over the subsystem's queue pairs
  /host/nvlend -t 10 rpc nvmf_subsystem_get_qpairs "{\"nqn\":\"$NQN\"}" 2>/dev/null |
    sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" | sort -n | tail -1
}
during() { # during NAME PERF-ARGS...: the counters' largest values over a 5 s run
  n=$1; shift
  /host/nvlend-perf "$NURI" --runtime=5 "$@" > /tmp/perf.$n 2>&1 &
  p=$!
  R=0 W=0 B=0
  while kill -0 $p 2>/dev/null; do
    r=$(qp_max rdma_reads); w=$(qp_max rdma_writes); b=$(qp_max bytes_in)
    [ "${r:-0}" -gt $R ] && R=$r; [ "${w:-0}" -gt $W ] && W=$w; [ "${b:-0}" -gt $B ] && B=$b
    sleep 0.5
  done
  wait $p || { tail -5 /tmp/perf.$n; fail data-path "nvlend-perf $n"; }
  echo "$n: rdma_reads=$R rdma_writes=$W bytes_in=$B"
}
# the counters are sampled while the run lasts: under emulation an RPC can
# take most of it, so a run whose samples saw too little is run once more
during icd --rw=write --bs=4k --iodepth=8
[ $B -gt 65536 ] || during icd --rw=write --bs=4k --iodepth=8
[ $R -le 1 ] && [ $B -gt 65536 ] || fail data-path "4 KiB writes were not in the capsule (R=$R B=$B)"
during keyed --rw=write --bs=64k --iodepth=4
[ $R -gt 8 ] || during keyed --rw=write --bs=64k --iodepth=4
[ $R -gt 8 ] || fail data-path "64 KiB writes were not read by the target (R=$R)"
during reads --rw=read --bs=64k --iodepth=4
[ $W -gt 8 ] || during reads --rw=read --bs=64k --iodepth=4
[ $W -gt 8 ] || fail data-path "reads were not written by the target (W=$W)"
ok data-path

# ---- bdev_nvme_attach_controller trtype RDMA, re-exported over shm ----------------------------
head -c 65536 /host/nvlend | /host/nvlend ns write "$KURI" --lba 2048 > /tmp/w 2>&1 || { cat /tmp/w; fail bdev-rdma "ns write"; }
rpc bdev_nvme_attach_controller "{\"name\":\"k\",\"trtype\":\"RDMA\",\"adrfam\":\"IPv4\",\"traddr\":\"$A\",\"trsvcid\":\"4421\",\"subnqn\":\"$KNQN\"}"
/host/nvlend -t 10 rpc bdev_get_bdevs '{"name":"kn1"}' > /tmp/kb 2>&1 || { cat /tmp/kb; fail bdev-rdma "no bdev kn1"; }
grep -q "NVMe/RDMA" /tmp/kb || { cat /tmp/kb; fail bdev-rdma "kn1 is not an NVMe/RDMA disk"; }
rpc nvmf_create_subsystem "{\"nqn\":\"$SNQN\",\"allow_any_host\":true}"
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$SNQN\",\"namespace\":{\"bdev_name\":\"kn1\"}}"
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$SNQN\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"/tmp/shm.sock\"}}"
SURI="nvme+shm:///tmp/shm.sock?nqn=$SNQN"
/host/nvlend ns read "$SURI" --lba 2048 --count 128 -o /tmp/back > /tmp/r 2>&1 || { cat /tmp/r; fail bdev-rdma "ns read over shm"; }
head -c 65536 /host/nvlend | cmp - /tmp/back || fail bdev-rdma "the data read back over shm differs"
/host/nvlend ns read "$KURI" --lba 2048 --count 128 -o /tmp/back2 > /tmp/r2 2>&1 || { cat /tmp/r2; fail bdev-rdma "ns read over RDMA"; }
cmp /tmp/back /tmp/back2 || fail bdev-rdma "the data read over RDMA differs"
# (away from LBA 2048, which the attach step reads again)
perf bdev-rdma "$SURI" --rw=randrw --bs=16k --iodepth=8 --verify --offset=8M --size=8M --io_limit=4M
ok bdev-rdma

# nvlend attach: the RDMA namespace as this host's block device (NBD)
export NVLEND_ATTACH_DIR=/tmp/attach
modprobe nbd || fail attach "modprobe nbd"
dev=$(timeout 60 /host/nvlend attach "$KURI" --via nbd --name r1 --queues 1 --qd 8 2> /tmp/att) ||
  { cat /tmp/att; cat /tmp/attach/*.log 2>/dev/null; fail attach "nvlend attach --via nbd"; }
[ -b "$dev" ] || fail attach "no block device ($dev)"
dd if="$dev" bs=512 skip=2048 count=128 2>/dev/null | cmp - /tmp/back || fail attach "$dev reads other data"
/host/nvlend detach r1 || fail attach "nvlend detach"
ok attach

# ---- bdev_nvme_start_discovery trtype rdma: the kernel target's discovery on port 4421 --------
rpc bdev_nvme_start_discovery "{\"name\":\"D\",\"trtype\":\"rdma\",\"adrfam\":\"IPv4\",\"traddr\":\"$A\",\"trsvcid\":\"4421\",\"wait_for_attach\":true,\"attach_timeout_ms\":30000}"
i=0
until /host/nvlend -t 10 rpc bdev_get_bdevs '{"name":"D0n1"}' > /tmp/db 2>&1; do
  i=$((i + 1)); [ $i -lt 30 ] || { cat /tmp/db; /host/nvlend rpc bdev_nvme_get_discovery_info; fail disc-rdma "no bdev D0n1"; }
  sleep 1
done
grep -q "NVMe/RDMA" /tmp/db || { cat /tmp/db; fail disc-rdma "D0n1 is not an NVMe/RDMA disk"; }
/host/nvlend -t 10 rpc bdev_nvme_get_discovery_info > /tmp/di 2>&1 || { cat /tmp/di; fail disc-rdma "get_discovery_info"; }
cat /tmp/di
[ "$(grep -c '"trtype": *"RDMA"' /tmp/di)" -ge 2 ] || fail disc-rdma "get_discovery_info does not say RDMA for the service and its entry"
grep -q '"trtype": *"TCP"' /tmp/di && fail disc-rdma "get_discovery_info says TCP"
grep -q "\"subnqn\": *\"$KNQN\"" /tmp/di || fail disc-rdma "the kernel subsystem is not an entry"
/host/nvlend -t 10 rpc bdev_nvme_get_controllers '{"name":"D0"}' > /tmp/dc 2>&1 || { cat /tmp/dc; fail disc-rdma "no controller D0"; }
grep -q '"trtype": *"RDMA"' /tmp/dc || { cat /tmp/dc; fail disc-rdma "D0 is not an RDMA controller"; }
/host/nvlend nvme discover list > /tmp/dl 2>&1; cat /tmp/dl
grep -q "(rdma)" /tmp/dl || fail disc-rdma "nvme discover list does not say rdma"
/host/nvlend -t 10 rpc save_config > /tmp/dsave 2>&1 || fail disc-rdma "save_config"
tr -d ' \n' < /tmp/dsave | grep -q '"method":"bdev_nvme_start_discovery","params":{[^}]*"trtype":"rdma"' ||
  { grep -A12 start_discovery /tmp/dsave; fail disc-rdma "save_config does not keep trtype rdma"; }
# what was written through the kernel target, read through D0n1 (re-exported over shm)
DNQN=$SNQN-disc
rpc nvmf_create_subsystem "{\"nqn\":\"$DNQN\",\"allow_any_host\":true}"
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$DNQN\",\"namespace\":{\"bdev_name\":\"D0n1\"}}"
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$DNQN\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"/tmp/shm-d.sock\"}}"
/host/nvlend ns read "nvme+shm:///tmp/shm-d.sock?nqn=$DNQN" --lba 2048 --count 128 -o /tmp/dback > /tmp/dr 2>&1 ||
  { cat /tmp/dr; fail disc-rdma "ns read of D0n1 over shm"; }
cmp /tmp/back /tmp/dback || fail disc-rdma "D0n1 reads other data than the kernel target"
rpc nvmf_delete_subsystem "{\"nqn\":\"$DNQN\"}"
rpc bdev_nvme_stop_discovery '{"name":"D"}'
/host/nvlend -t 10 rpc bdev_nvme_get_controllers '{"name":"D0"}' > /dev/null 2>&1 && fail disc-rdma "D0 outlived its discovery service"
ok disc-rdma
rpc nvmf_delete_subsystem "{\"nqn\":\"$SNQN\"}"
rpc bdev_nvme_detach_controller '{"name":"k"}'

# ---- reconnect over RDMA: the kernel port loses the subsystem, then has it again ------------------
ctrlr_state() { /host/nvlend -t 10 rpc bdev_nvme_get_controllers '{"name":"kr"}' 2>/dev/null |
  sed -n 's/.*"state": *"\([^"]*\)".*/\1/p' | head -1; }
wait_state() { # wait_state SECS REGEX: until kr's state matches
  j=0
  until ctrlr_state | grep -qE "$2"; do
    j=$((j + 1)); [ $j -lt $(($1 * 2)) ] || return 1; sleep 0.5
  done
}
rpc bdev_nvme_attach_controller "{\"name\":\"kr\",\"trtype\":\"RDMA\",\"adrfam\":\"IPv4\",\"traddr\":\"$A\",\"trsvcid\":\"4421\",\"subnqn\":\"$KNQN\",\"ctrlr_loss_timeout_sec\":-1,\"reconnect_delay_sec\":1}"
RNQN=$SNQN-reconnect
RURI="nvme+shm:///tmp/shm-r.sock?nqn=$RNQN"
rpc nvmf_create_subsystem "{\"nqn\":\"$RNQN\",\"allow_any_host\":true}"
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$RNQN\",\"namespace\":{\"bdev_name\":\"krn1\"}}"
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$RNQN\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"/tmp/shm-r.sock\"}}"
wait_state 20 '^ready$' || fail reconnect-rdma "kr is not ready ($(ctrlr_state))"
rm $C/ports/1/subsystems/$KNQN || fail reconnect-rdma "unlink the port"
wait_state 30 'reconnecting|waiting' || fail reconnect-rdma "kr did not notice the loss ($(ctrlr_state))"
echo "kr after the loss: $(ctrlr_state)"
sleep 3
ctrlr_state | grep -qE 'reconnecting|waiting' || fail reconnect-rdma "kr came back without its port ($(ctrlr_state))"
ln -s $C/subsystems/$KNQN $C/ports/1/subsystems/$KNQN || fail reconnect-rdma "link the port again"
wait_state 60 '^ready$' || { /host/nvlend rpc bdev_nvme_get_controllers '{"name":"kr"}'; fail reconnect-rdma "kr did not come back ($(ctrlr_state))"; }
/host/nvlend -t 10 rpc bdev_nvme_get_controllers '{"name":"kr"}' | grep -E '"(resets|reconnects)"'
# the data from before, then new data written over the re-export and read over RDMA directly
timeout 60 /host/nvlend ns read "$RURI" --lba 2048 --count 128 -o /tmp/rback > /tmp/rr 2>&1 ||
  { cat /tmp/rr; fail reconnect-rdma "ns read over shm after the reconnect"; }
cmp /tmp/back /tmp/rback || fail reconnect-rdma "other data after the reconnect"
tail -c 65536 /host/nvlend > /tmp/rnew
timeout 60 /host/nvlend ns write "$RURI" --lba 4096 < /tmp/rnew > /tmp/rw 2>&1 ||
  { cat /tmp/rw; fail reconnect-rdma "ns write over shm after the reconnect"; }
/host/nvlend ns read "$KURI" --lba 4096 --count 128 -o /tmp/rnew2 > /tmp/rr2 2>&1 || { cat /tmp/rr2; fail reconnect-rdma "ns read over RDMA"; }
cmp /tmp/rnew /tmp/rnew2 || fail reconnect-rdma "what was written after the reconnect is not on the target"
rpc nvmf_delete_subsystem "{\"nqn\":\"$RNQN\"}"
rpc bdev_nvme_detach_controller '{"name":"kr"}'
ok reconnect-rdma
kill -TERM $DPID
wait $DPID
rc=$?
DPID=
[ $rc = 0 ] || { tail -40 /tmp/nvlendd.log; fail daemon-exit "nvlendd exited $rc"; }
ok daemon-exit
echo GUEST_ALL_OK
