#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# bench/rdma.sh [BUILD_DIR] - NVMe/RDMA: nvlendd's RDMA target against the
# Linux kernel's nvmet-rdma, same initiator (the kernel's nvme-rdma and fio,
# 4 KiB random read and write at QD32), same link (soft-RoCE on the QEMU
# test guest's eth0), one guest boot. The host has no RDMA: nvlendd runs in
# the guest from BUILD_DIR. Emulation-bound (TCG): only the ratio in one run
# means something. Backing: nvlend a RAM bdev, nvmet a tmpfs file through
# the page cache (buffered_io). RUNTIME=secs per job (default 10).
# Guest image: tests/guest/build.sh (NVLEND_GUEST_DIR, as the tests).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$TOP/build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
RT=${RUNTIME:-10}
export NVLEND_GUEST_DIR=${NVLEND_GUEST_DIR:-/var/tmp/nvlend-test-guest}
[ -f "$NVLEND_GUEST_DIR/img/6.1/initramfs.img" ] || "$TOP/tests/guest/build.sh" 6.1 >&2 ||
	{ echo "cannot build the guest image" >&2; exit 1; }
S=$(mktemp -d /tmp/nvlend-bench-rdma.XXXXXX)
trap 'rm -rf "$S"' EXIT
cp "$BUILD/bin/nvlendd" "$BUILD/bin/nvlend" "$S/"
echo "RT=$RT" > "$S/env"
"$TOP/tests/guest/run-in-guest.sh" -t $((8 * RT + 180)) -s "$S" -f "$TOP/bench/rdma-guest.sh" > "$S/out" 2>&1
rc=$?
grep -q BENCH_DONE "$S/out" || { cat "$S/out"; echo "bench failed (status $rc)" >&2; exit 1; }
/usr/bin/python3 - "$S/out" <<'PY'
import sys
r = {}
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) == 4 and p[0] == 'RESULT':
        r[(p[1], p[2])] = float(p[3])
print('| I/O (4 KiB, QD32) | kernel nvmet-rdma IOPS | nvlend RDMA IOPS | ratio |')
print('|---|---|---|---|')
for rw in ('randread', 'randwrite'):
    k, n = r.get(('nvmet-rdma', rw), 0), r.get(('nvlend', rw), 0)
    print(f'| {rw} | {k:.0f} | {n:.0f} | {n / k if k else 0:.2f} |')
PY
