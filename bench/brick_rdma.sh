#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# bench/brick_rdma.sh [BUILD_DIR] - the brick over RDMA: one-sided RDMA WRITE
# bandwidth of libnvlend's brick client (nvl_brick_rdma_write through one
# handle: synchronous, each call cut into 128 KiB RDMA WRITEs in flight
# together; once copying through the client's registered bounce buffer, once
# registering the caller's buffer per call, NVLEND_BRICK_RDMA_REG_MIN; and
# posted writes, nvl_brick_rdma_write_post, 16 in flight)
# against perftest's ib_write_bw (its default 128 writes in flight) on the same link
# (soft-RoCE on the QEMU test guest's eth0, loopback to 10.0.2.15), same
# message size and byte count, in one guest boot. Two tables: the data
# phase as each tool reports it (perftest's BW average, the brick client's
# loop), and both client processes timed start to exit with one clock
# (set-up included; perftest's report comes from cycle counters, which
# emulation may distort, so the second table checks it). The host has no
# RDMA: nvlendd and the client run in the guest from BUILD_DIR.
# Emulation-bound (TCG): only the ratio in one run means something. MiB/s.
# Brick: a RAM brick (tmpfs fast tier). MIB=MiB written per measurement
# (default 256), SIZES (default "65536 1048576 2097152"), ROUNDS (default 1:
# the whole sequence again, the tools alternating, and with more than one
# the median ratio per size and tool). The guest's
# processes are not pinned (2 emulated vCPUs). Guest half:
# bench/brick_rdma-guest.sh.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$TOP/build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
MIB=${MIB:-256}
ROUNDS=${ROUNDS:-1}
SIZES=${SIZES:-65536 1048576 2097152}
export NVLEND_GUEST_DIR=${NVLEND_GUEST_DIR:-/var/tmp/nvlend-test-guest}
[ -f "$NVLEND_GUEST_DIR/img/6.1/initramfs.img" ] || "$TOP/tests/guest/build.sh" 6.1 >&2 ||
	{ echo "cannot build the guest image" >&2; exit 1; }
[ -x "$BUILD/tests/helpers/brick_rdma_test" ] || { echo "make tests first" >&2; exit 1; }
S=$(mktemp -d /tmp/nvlend-bench-brick-rdma.XXXXXX)
trap 'rm -rf "$S"' EXIT
cp "$BUILD/bin/nvlendd" "$BUILD/bin/nvlend" "$BUILD/tests/helpers/brick_rdma_test" "$S/"
printf 'MIB=%s\nSIZES="%s"\nROUNDS=%s\n' "$MIB" "$SIZES" "$ROUNDS" > "$S/env"
NS=$(echo $SIZES | wc -w)
"$TOP/tests/guest/run-in-guest.sh" -t $((ROUNDS * NS * MIB + 200)) -s "$S" -f "$TOP/bench/brick_rdma-guest.sh" > "$S/out" 2>&1
rc=$?
grep -q BENCH_DONE "$S/out" || { cat "$S/out"; echo "bench failed (status $rc)" >&2; exit 1; }
grep -a "^ib_write_bw: " "$S/out"
/usr/bin/python3 - "$S/out" <<'PY'
import statistics
import sys
modes = (('brick-copy', 'brick sync, bounce copy'), ('brick-reg', 'brick sync, registered buffer'),
         ('brick-post', 'brick posted, 16 in flight'))
for tag, what in (('RESULT', 'data phase'), ('WALL', 'process start to exit')):
    r, rnd = {}, 0
    for line in open(sys.argv[1]):
        p = line.split()
        if len(p) == 2 and p[0] == 'ROUND':
            rnd = int(p[1])
        if len(p) == 4 and p[0] == tag:
            r[(rnd, p[1], int(p[2]))] = float(p[3])
    rounds = sorted({k[0] for k in r})
    print(f'{what}, MiB/s:')
    print('| round | write size | ib_write_bw | ' +
          ' | '.join(f'{m[1]} | ratio' for m in modes) + ' |')
    print('|---|---|---|' + '---|---|' * len(modes))
    ratios = {}
    for size in sorted({k[2] for k in r}):
        for rn in rounds:
            k = r.get((rn, 'ib_write_bw', size), 0)
            cols = []
            for m, _ in modes:
                n = r.get((rn, m, size), 0)
                if k > 0:  # perftest reports 0.00 now and then under emulation
                    ratios.setdefault((m, size), []).append(n / k)
                cols.append(f'{n:.1f} | ' + (f'{n / k:.2f}' if k > 0 else '-'))
            print(f'| {rn} | {size} | {k:.1f} | ' + ' | '.join(cols) + ' |')
    if len(rounds) > 1:
        print(f'{what}, ratio to ib_write_bw, median (min-max) of the rounds perftest reported:')
        print('| write size | ' + ' | '.join(m[1] for m in modes) + ' |')
        print('|---|' + '---|' * len(modes))
        for size in sorted({k[2] for k in r}):
            q = [ratios.get((m, size), []) for m, _ in modes]
            cols = [f'{statistics.median(x):.2f} ({min(x):.2f}-{max(x):.2f}, {len(x)} rounds)'
                    if x else '-' for x in q]
            print(f'| {size} | ' + ' | '.join(cols) + ' |')
PY
