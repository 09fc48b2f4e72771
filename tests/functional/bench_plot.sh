#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# bench --plot (operability issue, item 5): bench/plot.py turns a run's points
# into PNG charts (IOPS vs queue depth, latency and throughput bars) with
# gnuplot, refusing malformed input; the charts of docs/performance.md are
# drawn from its own tables (scripts/render-perf-charts.sh): every data file
# matches its table, renders, and every image the page shows exists, and
# the check fails when a table number, an image or the renderer is broken;
# short real --plot runs (two queue depths, one second a point; nbd.sh on
# its RAM rows only, shm.sh and baseline.sh at the depths their tables measure) of
# bench/nbd.sh (nvlend against nbdkit and qemu-nbd), bench/baseline.sh and
# bench/shm.sh (shm beside io_uring) write their charts. bench/spdk.sh needs
# an SPDK build and bench/rdma.sh a guest boot: not run here. Numbers here
# mean nothing (a test machine); the charts must exist.
# asan: no
# timeout: 300
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
printf 'bar\tC (Gbit/s)\tbrick\twrite\t10.4\nbar\tC (Gbit/s)\tiperf3\twrite\t9.5\nlat\tD\ts\tp50\t1\nlat\tD\ts\tp99\t900\n' >"$T/bar"
/usr/bin/python3 "$PLOT" "$T/bar" "$T/out" y >"$T/list" || fail "plot.py bar"
assert_eq "$(wc -l <"$T/list")" 2 "bar and log-scale latency charts written"
grep -q 'y-bar-c-gbit-s.png' "$T/list" || fail "no bar chart"
for bad in 'qd\tonly three fields' 'qd\tT\ts\t1.5\t10' 'qd\tT\ts\t0\t10' 'qd\tT\ts\t1\tlots' \
	'lat\tT\ts\tp50\t-3' 'bar\tno unit\ts\tx\t1' 'pie\tT\ts\tx\t1' 'lat\tT\t\tp50\t1'; do
	printf "$bad\n" >"$T/bad"
	/usr/bin/python3 "$PLOT" "$T/bad" "$T/out" x >/dev/null 2>&1 && fail "malformed points accepted: $bad"
done

# ---- docs/performance.md: charts drawn from its own tables --------------------------------
"$TOP/scripts/render-perf-charts.sh" --check "$T/docs-render" >"$T/render.log" 2>&1 ||
	{ cat "$T/render.log" >&2; fail "render-perf-charts.sh --check"; }
n=$(grep -c '](img/.*\.png)' "$TOP/docs/performance.md")
[ "$n" -ge 20 ] || fail "only $n charts in docs/performance.md"
for f in "$TOP"/docs/img/*.png; do
	[ "$(stat -c %s "$f")" -lt 102400 ] || fail "$f is over 100 KB"
done
[ "$(ls "$T/docs-render"/*.png | wc -l)" = "$(ls "$TOP"/docs/img/*.png | wc -l)" ] ||
	fail "docs/img does not hold exactly the charts the data files render"
# the check must catch: a table number changed, a missing image, a renderer that fails
copy() {
	rm -rf "$T/c"
	mkdir -p "$T/c/scripts" "$T/c/bench"
	cp "$TOP/scripts/render-perf-charts.sh" "$T/c/scripts/"
	cp "$TOP/bench/plot.py" "$T/c/bench/"
	cp -r "$TOP/docs" "$T/c/docs"
}
expect_broken() { # WHAT [--only STEM]
	"$T/c/scripts/render-perf-charts.sh" --check "$T/c/out" "${@:2}" >"$T/c.log" 2>&1 &&
		fail "render-perf-charts.sh --check passed with $1"
	log "caught $1: $(head -1 "$T/c.log")"
}
copy
sed -i 's/^| tmpfs file | io_uring | 32 | 236 501 |/| tmpfs file | io_uring | 32 | 236 502 |/' "$T/c/docs/performance.md"
cmp -s "$TOP/docs/performance.md" "$T/c/docs/performance.md" && fail "the table edit did not apply"
expect_broken "a table number changed" --only baseline-2026-11-22
grep -q 'baseline-2026-11-22.tsv does not match its table' "$T/c.log" || fail "wrong complaint"
copy
sed -i 's/^| ram randwrite QD32 | 58.1 K (1.11x)/| ram randwrite QD32 | 58.1 K (1.12x)/' "$T/c/docs/performance.md"
cmp -s "$TOP/docs/performance.md" "$T/c/docs/performance.md" && fail "the ratio edit did not apply"
expect_broken "a ratio changed" --only nbd-2026-12-06
copy
rm "$(ls "$T"/c/docs/img/shm-*.png | head -1)"
expect_broken "an image removed" --only shm-2026-12-06
grep -q 'which does not exist' "$T/c.log" || fail "wrong complaint"
copy
sed -i 's/^def main():/def main():\n    raise SystemExit("broken on purpose")/' "$T/c/bench/plot.py"
expect_broken "a renderer that fails" --only rdma-2026-12-07
grep -q 'bench/plot.py failed' "$T/c.log" || fail "wrong complaint"

# ---- short real runs ------------------------------------------------------------------------

out=$(QDS="1 2" ROUNDS=1 RUNTIME=1 RAMP=0 HOLD_AB=0 BACKING=ram SIZE=16M BENCH_PLOT_DIR="$T/plots" \
	"$TOP/bench/nbd.sh" "$BUILD" --plot 2>&1) || { echo "$out" >&2; fail "bench/nbd.sh --plot"; }
n=$(ls "$T/plots"/nbd-same-*.png 2>/dev/null | wc -l)
assert_eq "$n" 3 "nbd charts (randread, randwrite, QD1 latency)"
for f in "$T/plots"/*.png; do file "$f" | grep_q 'PNG image data' || fail "$f"; done

# baseline.sh and shm.sh on small files (the disk file in $T, not the bench's own)
export BENCH_DISK_FILE=$T/disk.img BENCH_DISK_SIZE=16M BENCH_SHM_SIZE=16M BENCH_RUNTIME=1 \
	BENCH_RAMP=0 BENCH_QDS="1 32" BENCH_RESULTS=$T/results
out=$(BENCH_OUT=$T/baseline.env BENCH_PLOT_DIR="$T/bplots" "$TOP/bench/baseline.sh" --plot 2>&1) ||
	{ echo "$out" >&2; fail "bench/baseline.sh --plot"; }
assert_eq "$(ls "$T/bplots"/baseline-*.png 2>/dev/null | wc -l)" 2 "baseline charts (IOPS vs QD, QD1 latency)"
ls "$T/bplots" | grep -q 'fio-on-cpu-0' || fail "baseline chart titles lack the placement"
out=$(BENCH_PLOT_DIR="$T/splots" "$TOP/bench/shm.sh" "$BUILD" --plot 2>&1) ||
	{ echo "$out" >&2; fail "bench/shm.sh --plot"; }
assert_eq "$(ls "$T/splots"/shm-*.png 2>/dev/null | wc -l)" 4 "shm charts (randread, randwrite: IOPS vs QD, QD1 latency)"
for f in "$T/bplots"/*.png "$T/splots"/*.png; do file "$f" | grep_q 'PNG image data' || fail "$f"; done
log "bench/spdk.sh --plot not run: it needs an SPDK build (SPDK_DIR), which CI lacks"
log "bench/rdma.sh --plot not run: it boots the QEMU guest (minutes of emulation)"
"$TOP/bench/spdk.sh" --help | grep_q -- '--plot' || fail "bench/spdk.sh --help does not describe --plot"
pass
