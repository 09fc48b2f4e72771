# Guest half of bench/brick_rdma.sh (runs as the QEMU guest's /cmd.sh):
# soft-RoCE on eth0; for each size of SIZES, perftest's ib_write_bw over
# rxe0 (server and client in this guest, loopback) then libnvlend's brick
# client writing one-sided into a mapped block of nvlendd's RAM brick over
# the same device. Parameters in /host/env (RT, SIZES).
# Prints "RESULT ib_write_bw|brick SIZE MiB/s" per size, BENCH_DONE at the end.
set -u
. /host/env
A=10.0.2.15
export NVLEND_SOCKET=/tmp/nvlend.sock
die() { echo "BENCH FAIL: $*"; tail -20 /tmp/nvlendd.log 2>/dev/null; exit 1; }
for m in crc32_generic rdma_rxe ib_uverbs rdma_ucm; do
  modprobe $m || die "modprobe $m"
done
rdma link add rxe0 type rxe netdev eth0 || die "rdma link add"
mkdir -p /run/brick && mount -t tmpfs tmpfs /run/brick || die tmpfs
/host/nvlendd -s "$NVLEND_SOCKET" --reactors 1 > /tmp/nvlendd.log 2>&1 &
DPID=$!
i=0
until /host/nvlend -t 1 rpc nvlend_get_version > /dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 100 ] || die "nvlendd did not come up"; sleep 0.2
done
/host/nvlend -t 20 rpc brick_create '{"name":"b0","fast_dir":"/run/brick/fast","capacity_blocks":8}' > /dev/null || die brick_create
/host/nvlend -t 20 brick listen b0 rdma $A 4430 > /dev/null || die listen
umask 077
for size in $SIZES; do
  ib_write_bw -d rxe0 -F -s "$size" -D "$RT" > /tmp/ibs 2>&1 &
  SP=$!
  sleep 1
  ib_write_bw -d rxe0 -F -s "$size" -D "$RT" $A > /tmp/ibc 2>&1 || { cat /tmp/ibc; die "ib_write_bw $size"; }
  wait $SP
  grep -A2 "BW average" /tmp/ibc | sed 's/^/ib_write_bw: /'
  bw=$(awk -v s="$size" '$1 == s && NF >= 4 { print $4 }' /tmp/ibc | tail -1)
  [ -n "$bw" ] || { cat /tmp/ibc; die "no ib_write_bw result"; }
  echo "RESULT ib_write_bw $size $bw"
  out=$(/host/brick_rdma_test bench brick+rdma://$A:4430/b0 "$RT" "$size") || die "brick bench $size: $out"
  echo "RESULT brick $size $(echo "$out" | awk '/^BENCH/ { print $3 }')"
done
kill $DPID; wait $DPID
echo BENCH_DONE
