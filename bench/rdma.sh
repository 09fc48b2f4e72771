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
# --plot also runs the same fio job at every queue depth of BENCH_QDS (default
# "1 2 4 8 16 32") against both targets in the same boot, and writes PNG
# charts on the host (gnuplot is not in the guest; the guest prints its
# numbers, the host draws them) to bench/results/plots/ (BENCH_PLOT_DIR): IOPS
# vs queue depth per I/O kind and the QD32 IOPS bars, nvlendd's RDMA target
# beside the kernel's nvmet-rdma. The guest's processes are not pinned (2
# emulated vCPUs), which the chart titles say.
set -u
source "$(dirname "$0")/common.sh"
bench_plot_args "$@"
set -- "${BENCH_ARGS[@]}"
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
QDS=32
[ $BENCH_PLOT = 1 ] && QDS=$(printf '%s\n' $BENCH_QDS 32 | sort -nu | tr '\n' ' ')
NQD=$(echo $QDS | wc -w)
printf 'RT=%s\nQDS="%s"\n' "$RT" "$QDS" > "$S/env"
"$TOP/tests/guest/run-in-guest.sh" -t $((8 * NQD * RT + 180)) -s "$S" -f "$TOP/bench/rdma-guest.sh" > "$S/out" 2>&1
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
if [ $BENCH_PLOT = 1 ]; then
	place="QEMU TCG guest, 2 vCPUs, unpinned, soft-RoCE"
	while read -r tag tgt rw qd iops; do
		[ "$tag" = RESULTQD ] || continue
		[ "$tgt" = nvlend ] && s="nvlendd RDMA" || s="kernel nvmet-rdma"
		[[ " $BENCH_QDS " = *" $qd "* ]] &&
			bench_plot_point qd "NVMe/RDMA 4 KiB $rw, kernel nvme-rdma + fio ($place)" "$s" "$qd" "$iops"
		[ "$qd" = 32 ] && bench_plot_point bar "NVMe/RDMA 4 KiB QD32 ($place) (IOPS)" "$s" "$rw" "$iops"
	done < <(tr -d '\r' <"$S/out")
	bench_plot_render rdma
fi
