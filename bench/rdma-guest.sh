# Guest half of bench/rdma.sh (runs as the QEMU guest's /cmd.sh): soft-RoCE
# on eth0, then the same fio job (4 KiB random read and write, QD32, the
# kernel's nvme-rdma initiator) against the kernel's nvmet-rdma target and
# against nvlendd's NVMe/RDMA listener, one after the other in this boot.
# Parameters in /host/env (RT: seconds per job; QDS: queue depths, default 32).
# Prints "RESULT target rw IOPS" at QD32 and "RESULTQD target rw QD IOPS" for
# every depth of QDS (bench/rdma.sh --plot).
set -u
. /host/env
A=10.0.2.15
export NVLEND_SOCKET=/tmp/nvlend.sock
die() { echo "BENCH FAIL: $*"; dmesg | tail -20; exit 1; }
for m in crc32_generic rdma_rxe ib_uverbs rdma_ucm nvme-rdma nvmet nvmet-rdma; do
  modprobe $m || die "modprobe $m"
done
rdma link add rxe0 type rxe netdev eth0 || die "rdma link add"

# run_fio TARGET NQN PORT: connect, both jobs, disconnect
run_fio() {
  nvme connect -t rdma -a $A -s "$3" -n "$2" > /tmp/conn 2>&1 || { cat /tmp/conn; die "connect $1"; }
  i=0; while [ ! -b /dev/nvme0n1 ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
  [ -b /dev/nvme0n1 ] || die "no namespace from $1"
  for rw in randread randwrite; do
    for qd in ${QDS:-32}; do
      out=$(fio --minimal --name=b --filename=/dev/nvme0n1 --direct=1 --ioengine=libaio \
        --iodepth=$qd --rw=$rw --bs=4k --size=64m --time_based --runtime="$RT" --ramp_time=1) ||
        die "fio $1 $rw"
      if [ $rw = randread ]; then iops=$(echo "$out" | cut -d';' -f8); else iops=$(echo "$out" | cut -d';' -f49); fi
      [ "$qd" = 32 ] && echo "RESULT $1 $rw $iops"
      echo "RESULTQD $1 $rw $qd $iops"
    done
  done
  nvme disconnect -n "$2" > /dev/null 2>&1 || die "disconnect $1"
  i=0; while [ -b /dev/nvme0n1 ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
}

# the kernel's target: a 64 MiB file in tmpfs, page cache (buffered_io)
KNQN=nqn.2024-01.io.nvlend:bench-kernel
C=/sys/kernel/config/nvmet
[ -d $C ] || mount -t configfs configfs /sys/kernel/config || die "configfs mount"
truncate -s 64M /tmp/k.img
mkdir $C/subsystems/$KNQN || die "configfs"
echo 1 > $C/subsystems/$KNQN/attr_allow_any_host
mkdir $C/subsystems/$KNQN/namespaces/1
echo /tmp/k.img > $C/subsystems/$KNQN/namespaces/1/device_path
echo 1 > $C/subsystems/$KNQN/namespaces/1/buffered_io
echo 1 > $C/subsystems/$KNQN/namespaces/1/enable || die "nvmet namespace"
mkdir $C/ports/1
echo rdma > $C/ports/1/addr_trtype
echo ipv4 > $C/ports/1/addr_adrfam
echo $A > $C/ports/1/addr_traddr
echo 4421 > $C/ports/1/addr_trsvcid
ln -s $C/subsystems/$KNQN $C/ports/1/subsystems/$KNQN || die "nvmet port"
run_fio nvmet-rdma $KNQN 4421
rm $C/ports/1/subsystems/$KNQN

# nvlendd: a 64 MiB RAM bdev
NNQN=nqn.2024-01.io.nvlend:bench
/host/nvlendd -s "$NVLEND_SOCKET" --reactors 2 > /tmp/nvlendd.log 2>&1 &
DPID=$!
i=0
until /host/nvlend -t 1 rpc nvlend_get_version > /dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 100 ] || die "nvlendd did not come up"; sleep 0.2
done
rpc() { /host/nvlend -t 20 rpc "$@" > /dev/null || die "rpc $1"; }
rpc nvmf_create_transport '{"trtype":"RDMA","in_capsule_data_size":4096}'
rpc bdev_malloc_create '{"name":"b0","num_blocks":131072,"block_size":512}'
rpc nvmf_create_subsystem "{\"nqn\":\"$NNQN\",\"allow_any_host\":true}"
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NNQN\",\"namespace\":{\"bdev_name\":\"b0\"}}"
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NNQN\",\"listen_address\":{\"trtype\":\"RDMA\",\"adrfam\":\"IPv4\",\"traddr\":\"$A\",\"trsvcid\":\"4420\"}}"
run_fio nvlend $NNQN 4420
kill $DPID; wait $DPID
echo BENCH_DONE
