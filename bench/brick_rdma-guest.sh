# Guest half of bench/brick_rdma.sh (runs as the QEMU guest's /cmd.sh):
# soft-RoCE on eth0; for each size of SIZES, the same number of bytes
# (MIB MiB) written over rxe0 (loopback to 10.0.2.15) first by perftest's
# ib_write_bw (server and client in this guest, -n iterations) then by
# libnvlend's brick client, one-sided into a mapped block of nvlendd's RAM
# brick, three ways: copying through its registered bounce buffer
# (NVLEND_BRICK_RDMA_REG_MIN=0, "brick-copy") and registering the caller's
# buffer per call (=1, "brick-reg"), and posted writes
# (nvl_brick_rdma_write_post, 16 in flight, "brick-post"). Two measures per size: the data phase
# as each tool reports it ("RESULT TOOL SIZE MiB/s": perftest's BW average,
# the helper's own loop timing), and the client processes timed start to
# exit with the same clock ("WALL TOOL SIZE MiB/s", set-up included).
# ROUNDS repeats the whole sequence (the tools alternate, so that a change
# of the host's load hits them alike; "ROUND N" before each).
# Parameters in /host/env (MIB, SIZES, ROUNDS). BENCH_DONE at the end.
set -u
. /host/env
A=10.0.2.15
export NVLEND_SOCKET=/tmp/nvlend.sock
die() { echo "BENCH FAIL: $*"; tail -20 /tmp/nvlendd.log 2>/dev/null; exit 1; }
now() { date +%s.%N; }
rate() { awk -v b="$1" -v t0="$2" -v t1="$3" 'BEGIN { printf "%.2f", b / 1048576 / (t1 - t0) }'; }
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
for round in $(seq 1 "${ROUNDS:-1}"); do
echo "ROUND $round"
for size in $SIZES; do
  n=$((MIB * 1048576 / size))
  bytes=$((n * size))
  ib_write_bw -d rxe0 -F -s "$size" -n "$n" > /tmp/ibs 2>&1 &
  SP=$!
  sleep 1
  t0=$(now)
  ib_write_bw -d rxe0 -F -s "$size" -n "$n" $A > /tmp/ibc 2>&1 || { cat /tmp/ibc; die "ib_write_bw $size"; }
  t1=$(now)
  wait $SP
  grep -A1 "BW average" /tmp/ibc | sed 's/^/ib_write_bw: /'
  bw=$(awk -v s="$size" '$1 == s && NF >= 4 { print $4 }' /tmp/ibc | tail -1)
  echo "RESULT ib_write_bw $size ${bw:-0}"
  echo "WALL ib_write_bw $size $(rate $bytes $t0 $t1)"
  # brick: through the bounce buffer (copy), then registering the caller's buffer
  # and posted writes, 16 in flight
  for mode in copy reg post; do
    case $mode in
      copy) reg=0 how="benchn brick+rdma://$A:4430/b0 $n $size" ;;
      reg) reg=1 how="benchn brick+rdma://$A:4430/b0 $n $size" ;;
      post) reg=0 how="benchq brick+rdma://$A:4430/b0 $n $size 16" ;;
    esac
    t0=$(now)
    # shellcheck disable=SC2086
    out=$(NVLEND_BRICK_RDMA_REG_MIN=$reg /host/brick_rdma_test $how) ||
      die "brick $mode bench $size: $out"
    t1=$(now)
    echo "RESULT brick-$mode $size $(echo "$out" | awk '/^BENCH/ { print $3 }')"
    echo "WALL brick-$mode $size $(rate $bytes $t0 $t1)"
  done
done
done
kill $DPID; wait $DPID
echo BENCH_DONE
