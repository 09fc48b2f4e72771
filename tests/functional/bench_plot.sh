#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# bench --plot (operability issue, item 5): bench/plot.py turns a run's points
# into PNG charts (IOPS vs queue depth, latency bars) with gnuplot, refusing
# malformed input; a short real bench/nbd.sh --plot run (nvlend against
# nbdkit and qemu-nbd, two queue depths, one second a point) writes its
# charts. Numbers here mean nothing (a test machine); the charts must exist.
# asan: no
# timeout: 240
source "$(dirname "$0")/common.sh"
requires gnuplot fio nbdkit qemu-nbd /usr/bin/python3
PLOT=$TOP/bench/plot.py

printf 'qd\tA\ts1\t1\t100\nqd\tA\ts1\t4\t300\nqd\tA\ts2\t1\t90\nqd\tA\ts2\t4\t-\nlat\tB\ts1\tp50\t10\nlat\tB\ts1\tp99\t20\nlat\tB\ts2\tp50\t12\n' >"$T/pts"
/usr/bin/python3 "$PLOT" "$T/pts" "$T/out" x >"$T/list" || fail "plot.py"
assert_eq "$(wc -l <"$T/list")" 2 "charts written"
for f in $(cat "$T/list"); do
	file "$f" | grep_q 'PNG image data, 900 x 560' || fail "not a 900x560 PNG: $(file "$f")"
	[ "$(stat -c %s "$f")" -gt 5000 ] || fail "$f is suspiciously small"
done
printf 'qd\tonly three fields\n' >"$T/bad"
/usr/bin/python3 "$PLOT" "$T/bad" "$T/out" x >/dev/null 2>&1 && fail "malformed points accepted"

out=$(QDS="1 2" ROUNDS=1 RUNTIME=1 RAMP=0 HOLD_AB=0 SIZE=16M BENCH_PLOT_DIR="$T/plots" \
	"$TOP/bench/nbd.sh" "$BUILD" --plot 2>&1) || { echo "$out" >&2; fail "bench/nbd.sh --plot"; }
n=$(ls "$T/plots"/nbd-same-*.png 2>/dev/null | wc -l)
assert_eq "$n" 3 "nbd charts (randread, randwrite, QD1 latency)"
for f in "$T/plots"/*.png; do file "$f" | grep_q 'PNG image data' || fail "$f"; done
pass
