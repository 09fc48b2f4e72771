#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 300
# asan: no
#
# The brick over RDMA (docs/brick.md "RDMA"), in one QEMU guest boot over
# soft-RoCE: nvlendd runs inside the guest from the build folder (the host
# has no RDMA) with a RAM brick and an RDMA listener; libnvlend's brick
# client (tests/helpers/brick_rdma_test.c) allocates, maps, writes and reads
# with one-sided RDMA (multi-chunk transfers with several work requests in
# flight, through the bounce buffer and through registered caller buffers,
# verified; ranges crossing the block end refused; posted writes, several in
# flight, and a stale handle's failure reaped by the wait), sync-reads, flushes,
# unmaps and finds its stale handle refused by the NIC (a 2 MiB write, 16
# chunks in flight) with the block unchanged, sees a handle forged past its
# region fail mid-pipeline, is refused as a
# second identity without the key, sees FREE revoke; the daemon's READ/WRITE
# message counters stay 0; after kill -9 and a restart the blocks are
# listed again; nvlend brick read works on the brick+rdma URI; a listener
# on an address no RDMA device owns is refused with that reason.
# The guest half is tests/guest/tests/brick-rdma-guest.sh.
source "$(dirname "$0")/common.sh"
[ -x "$BUILD/tests/helpers/brick_rdma_test" ] || skip "build the helpers first (make tests)"
guest_prepare

S=$T/share
mkdir -p "$S"
cp "$BIN/nvlendd" "$BIN/nvlend" "$BUILD/tests/helpers/brick_rdma_test" "$S/"

guest_run -t 240 -s "$S" -f "$GUEST_TOOLS/tests/brick-rdma-guest.sh" > "$T/guest.log" 2>&1
grc=$?
cat "$T/guest.log"
[ $grc = 0 ] || fail "guest script failed (status $grc)"
grep -q GUEST_ALL_OK "$T/guest.log" || fail "guest did not finish"
for c in soft-roce listener alloc map write-read multi-chunk zero-copy cross-end posted sync-read flush \
	stale-handle unchanged mid-pipeline ownership free-revokes list one-sided crash-list cli daemon-exit; do
	grep -q "CHECK $c ok" "$T/guest.log" || fail "check $c missing"
done
pass
