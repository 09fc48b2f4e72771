#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 300
# asan: no
#
# NVMe/RDMA target transport against the stock Linux nvme-rdma initiator,
# in one QEMU guest boot over soft-RoCE: nvlendd runs inside the guest from
# the build folder (the host has no RDMA), listens on rxe0, and nvme-cli
# discovers, is refused with a host NQN that is not allowed, connects,
# runs fio crc32c verify (in-capsule, RDMA READ and RDMA WRITE data),
# mkfs.ext4 + mount + copy + remount + fsck, finds its queue pairs'
# RDMA READ/WRITE counters moved, and disconnects; the daemon
# then exits cleanly. The guest half is tests/guest/tests/nvlend-rdma-kernel-guest.sh.
source "$(dirname "$0")/common.sh"
guest_prepare

S=$T/share
mkdir -p "$S"
cp "$BIN/nvlendd" "$BIN/nvlend" "$S/"
cat > "$S/env" <<EOT
NQN=nqn.2024-01.io.nvlend:rdma
SERIAL=NVLRDMA0001
BADNQN=nqn.2024-01.io.example:not-allowed
EOT

guest_run -t 240 -s "$S" -f "$GUEST_TOOLS/tests/nvlend-rdma-kernel-guest.sh" > "$T/guest.log" 2>&1
grc=$?
cat "$T/guest.log"
[ $grc = 0 ] || fail "guest script failed (status $grc)"
grep -q GUEST_ALL_OK "$T/guest.log" || fail "guest did not finish"
for c in soft-roce target discover refused-host connect fio-qd32 filesystem qpairs disconnect daemon-exit; do
	grep -q "CHECK $c ok" "$T/guest.log" || fail "check $c missing"
done
pass
