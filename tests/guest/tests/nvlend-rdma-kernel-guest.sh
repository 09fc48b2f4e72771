# Guest half of tests/functional/nvme_rdma_kernel_guest.sh: soft-RoCE (rxe0
# on eth0) in the guest, nvlendd from /host serving a RAM namespace on an
# NVMe/RDMA listener at 10.0.2.15, and the stock Linux nvme-rdma initiator
# with nvme-cli against it: discovery over RDMA, a refused host, connect,
# fio crc32c verify at QD32 (4 KiB writes in the capsule, 64 KiB writes by
# RDMA READ, reads by RDMA WRITE), mkfs.ext4 + mount + copy + fsck,
# disconnect, and the daemon's clean exit. Parameters in /host/env.
# Prints "CHECK <name> ok" per step and GUEST_ALL_OK at the end.
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
rpc() { /host/nvlend -t 20 rpc "$@" >/dev/null || fail rpc "$1 $2"; }

for m in crc32_generic rdma_rxe ib_uverbs rdma_ucm nvme-rdma; do
  modprobe $m || fail modules "modprobe $m"
done
rdma link add rxe0 type rxe netdev eth0 || fail rxe "rdma link add"
ok soft-roce

/host/nvlendd -s "$NVLEND_SOCKET" --reactors 2 > /tmp/nvlendd.log 2>&1 &
DPID=$!
i=0
until /host/nvlend -t 1 rpc nvlend_get_version >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 100 ] || fail daemon "nvlendd did not come up"; sleep 0.2
done
HOSTNQN=$(cat /etc/nvme/hostnqn)
rpc nvmf_create_transport '{"trtype":"RDMA","in_capsule_data_size":4096,"max_io_size":131072}'
rpc bdev_malloc_create '{"name":"r0","num_blocks":65536,"block_size":512}'
rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"serial_number\":\"$SERIAL\"}"
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"r0\"}}"
rpc nvmf_subsystem_add_host "{\"nqn\":\"$NQN\",\"host\":\"$HOSTNQN\"}"
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"RDMA\",\"adrfam\":\"IPv4\",\"traddr\":\"$A\",\"trsvcid\":\"4420\"}}"
ok target

nvme discover -t rdma -a $A -s 4420 > /tmp/disc 2>&1 || { cat /tmp/disc; fail discover "nvme discover"; }
cat /tmp/disc
grep -q "trtype: *rdma" /tmp/disc || fail discover "no rdma entry"
grep -q "subnqn: *$NQN" /tmp/disc || fail discover "$NQN not listed"
grep -q "rdma_cms: *rdma-cm" /tmp/disc || fail discover "no RDMA TSAS (rdma_cms)"
ok discover

if nvme connect -t rdma -a $A -s 4420 -n "$NQN" -q "$BADNQN" > /tmp/bad 2>&1; then
  fail refused-host "a host that is not allowed connected"
fi
ok refused-host

nvme connect -t rdma -a $A -s 4420 -n "$NQN" -i 2 > /tmp/conn 2>&1 || { cat /tmp/conn; fail connect "nvme connect"; }
# the only NVMe controller of the guest: its namespace is nvme0n1 (native multipath or not)
DEV=/dev/nvme0n1
i=0; while [ ! -b $DEV ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
grep -q rdma /sys/class/nvme/nvme0/transport || fail connect "nvme0 is not the RDMA controller"
[ -n "$DEV" ] && [ -b "$DEV" ] || fail connect "no namespace block device"
[ "$(cat /sys/block/${DEV#/dev/}/size)" = 65536 ] || fail connect "size $(cat /sys/block/${DEV#/dev/}/size) sectors"
ok connect

fio --name=v4k --filename=$DEV --direct=1 --ioengine=libaio --iodepth=32 --rw=randwrite --bs=4k \
    --size=4m --verify=crc32c --verify_fatal=1 --do_verify=1 > /tmp/fio1 2>&1 || { tail -20 /tmp/fio1; fail fio-qd32 "4k verify"; }
fio --name=v64k --filename=$DEV --direct=1 --ioengine=libaio --iodepth=8 --rw=write --bs=64k \
    --offset=8m --size=8m --verify=crc32c --verify_fatal=1 --do_verify=1 > /tmp/fio2 2>&1 || { tail -20 /tmp/fio2; fail fio-qd32 "64k verify"; }
ok fio-qd32

mkfs.ext4 -q -F $DEV || fail filesystem mkfs
mkdir -p /mnt/r && mount $DEV /mnt/r || fail filesystem mount
cp /host/nvlendd /mnt/r/blob && sync || fail filesystem copy
umount /mnt/r || fail filesystem umount
echo 3 > /proc/sys/vm/drop_caches
mount $DEV /mnt/r && cmp /host/nvlendd /mnt/r/blob || fail filesystem "copy differs after remount"
umount /mnt/r
e2fsck -fn $DEV > /tmp/fsck 2>&1 || { cat /tmp/fsck; fail filesystem fsck; }
ok filesystem

# the data really moved both ways by RDMA READ and WRITE, and in capsules
/host/nvlend -t 10 rpc nvmf_subsystem_get_qpairs "{\"nqn\":\"$NQN\"}" > /tmp/qp || fail qpairs rpc
grep -q '"trtype": *"RDMA"' /tmp/qp || { cat /tmp/qp; fail qpairs "no RDMA queue pair listed"; }
grep -qE '"rdma_reads": *[1-9]' /tmp/qp || { cat /tmp/qp; fail qpairs "no RDMA READ counted"; }
grep -qE '"rdma_writes": *[1-9]' /tmp/qp || { cat /tmp/qp; fail qpairs "no RDMA WRITE counted"; }
ok qpairs

nvme disconnect -n "$NQN" > /tmp/disc2 2>&1 || { cat /tmp/disc2; fail disconnect "nvme disconnect"; }
i=0
while /host/nvlend -t 10 rpc nvmf_subsystem_get_controllers "{\"nqn\":\"$NQN\"}" | grep -q cntlid; do
  i=$((i + 1)); [ $i -lt 50 ] || fail disconnect "the controller stayed"; sleep 0.2
done
ok disconnect

kill -TERM $DPID
wait $DPID
rc=$?
DPID=
[ $rc = 0 ] || { tail -40 /tmp/nvlendd.log; fail daemon-exit "nvlendd exited $rc"; }
grep -q "rdma: listening on $A port 4420" /tmp/nvlendd.log || fail daemon-exit "no listener line in the log"
ok daemon-exit
echo GUEST_ALL_OK
