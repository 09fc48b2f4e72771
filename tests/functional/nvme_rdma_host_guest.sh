#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 420
# asan: no
#
# nvlend's NVMe/RDMA initiator (libnvlend's nvme+rdma://, the nvme bdev's
# trtype RDMA), in one QEMU guest boot over soft-RoCE (the host has no
# RDMA): against the kernel's nvmet-rdma target, nvlend ns info shows the
# identify data, refusals come in nvl_strerror's words, nvlend-perf
# --verify passes with 4 KiB (in-capsule) and 64 KiB (keyed, RDMA READ)
# writes; the same against nvlendd's own RDMA listener; then a guest nvlendd
# attaches the kernel target's namespace with bdev_nvme_attach_controller
# trtype RDMA, re-exports it over shm, and what was written through the
# kernel target is read back there (and verified by nvlend-perf over shm);
# nvlend attach --via nbd gives it as a block device; the target's queue
# pair counters show 4 KiB writes in the capsule, 64 KiB ones read by RDMA
# READ and reads written by RDMA WRITE; bdev_nvme_start_discovery trtype
# rdma against the kernel target's port attaches its subsystem as D0 (an
# RDMA controller; D0n1 reads the kernel target's data; discovery info,
# save_config and nvme discover list say RDMA); a controller attached over
# RDMA goes reconnecting when its subsystem leaves the kernel port and ready
# when it is back, with its data intact and new writes reaching the target.
# The guest half is tests/guest/tests/nvlend-rdma-host-guest.sh.
source "$(dirname "$0")/common.sh"
guest_prepare

S=$T/share
mkdir -p "$S"
cp "$BIN/nvlendd" "$BIN/nvlend" "$BIN/nvlend-perf" "$S/"
cat > "$S/env" <<EOT
KNQN=nqn.2024-01.io.nvlend:kernel-rdma
KSERIAL=KRDMA0001
NQN=nqn.2024-01.io.nvlend:rdma-host
SERIAL=NVLRDMAH001
SNQN=nqn.2024-01.io.nvlend:reexport
EOT

guest_run -t 360 -s "$S" -f "$GUEST_TOOLS/tests/nvlend-rdma-host-guest.sh" > "$T/guest.log" 2>&1
grc=$?
cat "$T/guest.log"
[ $grc = 0 ] || fail "guest script failed (status $grc): $(grep -a 'CHECK .* FAIL' "$T/guest.log")"
grep -q GUEST_ALL_OK "$T/guest.log" || fail "guest did not finish"
for c in soft-roce kernel-target ns-info refusals kernel-perf nvlend-target data-path bdev-rdma attach \
	disc-rdma reconnect-rdma \
	daemon-exit; do
	grep -q "CHECK $c ok" "$T/guest.log" || fail "check $c missing"
done
pass
