# Guest half of tests/functional/brick_rdma_guest.sh: soft-RoCE (rxe0 on
# eth0) in the guest, nvlendd from /host with a RAM brick (fast tier on a
# tmpfs) and an RDMA brick listener at 10.0.2.15, and the libnvlend client
# (/host/brick_rdma_test) over brick+rdma://: alloc, map, one-sided write
# and read back (also multi-chunk, bounce-buffered and zero-copy, and ranges
# crossing the block end refused, posted writes), sync-read, flush, unmap then a write with the stale handle
# fails and the block is unchanged, a forged handle fails mid-pipeline, a second identity without the key is
# refused, FREE revokes; the brick's READ/WRITE message counters stay 0 (the
# data moved one-sided); kill -9 of the daemon, restart, and the blocks are
# listed again. Prints "CHECK <name> ok" per step and GUEST_ALL_OK at the end.
set -u
A=10.0.2.15
P=4430
URI=brick+rdma://$A:$P/b0
export NVLEND_SOCKET=/tmp/nvlend.sock
DPID=
fail() {
  echo "CHECK $1 FAIL: $2"
  dmesg | grep -iE "rdma|rxe" | tail -20
  [ -n "$DPID" ] && { kill "$DPID"; sleep 1; }
  tail -40 /tmp/nvlendd.log
  exit 1
}
ok() { echo "CHECK $1 ok"; }
rpc() { /host/nvlend -t 20 rpc "$@" >/dev/null || fail rpc "$1 $2"; }
start_daemon() {
  /host/nvlendd -s "$NVLEND_SOCKET" --reactors 1 >> /tmp/nvlendd.log 2>&1 &
  DPID=$!
  i=0
  until /host/nvlend -t 1 rpc nvlend_get_version >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || fail daemon "nvlendd did not come up"; sleep 0.2
  done
  rpc brick_create '{"name":"b0","fast_dir":"/run/brick/fast","capacity_blocks":16}'
}

for m in crc32_generic rdma_rxe ib_uverbs rdma_ucm; do
  modprobe $m || fail modules "modprobe $m"
done
rdma link add rxe0 type rxe netdev eth0 || fail rxe "rdma link add"
ok soft-roce

mkdir -p /run/brick && mount -t tmpfs tmpfs /run/brick || fail setup "tmpfs"
start_daemon
# an address no RDMA device owns: a clear error
out=$(/host/nvlend -t 20 rpc brick_add_listener '{"name":"b0","trtype":"RDMA","traddr":"192.0.2.1","trsvcid":"4430"}' 2>&1) &&
  fail listener "a listener on an address without an RDMA device was accepted"
echo "$out" | grep -q "no RDMA device has this address" || fail listener "error: $out"
/host/nvlend -t 20 brick listen b0 rdma $A $P || fail listener "brick listen rdma"
ok listener

umask 077
/host/brick_rdma_test check "$URI" /tmp/id-a /tmp/id-b || fail client "brick_rdma_test check"
/host/nvlend -t 10 rpc brick_get_bricks '{"name":"b0"}' > /tmp/bricks || fail stats rpc
cat /tmp/bricks
grep -qE '"bytes_written": *0[,}]?$' /tmp/bricks || fail one-sided "WRITE messages carried data"
grep -qE '"bytes_read": *0[,}]?$' /tmp/bricks || fail one-sided "READ messages carried data"
ok one-sided

# crash-and-list: kill -9, restart on the same tier, the blocks come back
kill -9 $DPID; wait $DPID 2>/dev/null; DPID=
start_daemon
/host/nvlend -t 20 brick listen b0 rdma $A $P || fail crash-list "listen after restart"
/host/brick_rdma_test list "$URI" /tmp/id-a > /tmp/list || { cat /tmp/list; fail crash-list "list"; }
cat /tmp/list
[ "$(grep -c '^BLOCK' /tmp/list)" = 2 ] && grep -q '^BLOCK 0x200000 ' /tmp/list &&
  grep -q '^BLOCK 0x400000 ' /tmp/list || fail crash-list "expected blocks 0x200000 and 0x400000"
ok crash-list

# the CLI over brick+rdma: read back what the check wrote (first bytes of the pattern)
NVLEND_BRICK_IDENTITY=/tmp/id-a /host/nvlend -t 20 brick read "$URI" 2M --length 16 > /tmp/head 2>/tmp/cli.err || { cat /tmp/cli.err; fail cli "nvlend brick read"; }
[ "$(od -An -tu1 -N3 /tmp/head | tr -s ' ')" = " 7 38 69" ] || { od -An -tu1 /tmp/head; fail cli "unexpected bytes"; }
ok cli

kill -TERM $DPID
wait $DPID
rc=$?
DPID=
[ $rc = 0 ] || fail daemon-exit "nvlendd exited $rc"
ok daemon-exit
echo GUEST_ALL_OK
