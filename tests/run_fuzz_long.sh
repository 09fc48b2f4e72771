#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# `make fuzz-long` (not part of make check): run every libFuzzer target for a
# long time, several at once, keeping what they find.
#   tests/run_fuzz_long.sh [BUILD_DIR] [SECONDS_EACH] [NAME_FILTER]
# Environment: FUZZ_LONG_SECONDS (default 3600) when SECONDS_EACH is not given,
# FUZZ_LONG_JOBS targets at a time (default: the number of CPUs).
#
# Each target runs in libFuzzer's fork mode with crashes, timeouts and
# out-of-memory inputs recorded and the run continuing, so one early crash
# does not end an hour. Per target, under BUILD_DIR/fuzz-long/<target>/:
#   corpus/     the working corpus: seeded from tests/fuzz/<target>/corpus the
#               first time, grows with every new input, kept between runs
#   crash-*, timeout-*, oom-*   inputs that failed (reproduce with
#               BUILD_DIR/fuzz/<target>/fuzz_<target> FILE)
#   log         libFuzzer's output
# At the end: executions, corpus size and failures per target; the exit
# status is non-zero when any target found a failing input. Fold the new
# inputs worth keeping into the seed corpus with libFuzzer's merge, e.g.
#   build-fuzz/fuzz/uri/fuzz_uri -merge=1 tests/fuzz/uri/corpus build-fuzz/fuzz-long/uri/corpus
# and add every crash input that you fix to tests/fuzz/<target>/corpus.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build-fuzz}
SECS=${2:-${FUZZ_LONG_SECONDS:-3600}}
FILTER=${3:-}
JOBS=${FUZZ_LONG_JOBS:-$(nproc)}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
OUT=$BUILD/fuzz-long
case "$SECS" in '' | *[!0-9]*) echo "run_fuzz_long: SECONDS must be a number" >&2; exit 2 ;; esac
case "$JOBS" in '' | *[!0-9]* | 0) echo "run_fuzz_long: FUZZ_LONG_JOBS must be >= 1" >&2; exit 2 ;; esac
[ -d "$BUILD/fuzz" ] || { echo "run_fuzz_long: no $BUILD/fuzz (make SAN=fuzz first)" >&2; exit 2; }

targets=()
for f in "$BUILD"/fuzz/*/fuzz_*; do
	if [ ! -x "$f" ] || [ ! -f "$f" ]; then continue; fi
	case "$f" in *.d) continue ;; esac
	dir=$(basename "$(dirname "$f")")
	[ -n "$FILTER" ] && case "$dir" in *"$FILTER"*) ;; *) continue ;; esac
	targets+=("$f")
done
[ ${#targets[@]} -gt 0 ] || { echo "run_fuzz_long: no target matches '$FILTER'" >&2; exit 2; }

run_one() { # binary
	local f=$1 dir name work seeds args
	dir=$(basename "$(dirname "$f")")
	name=$(basename "$f")
	work=$OUT/$dir
	seeds=$TOP/tests/fuzz/$dir/corpus
	mkdir -p "$work/corpus"
	if [ -d "$seeds" ] && [ -z "$(ls -A "$work/corpus")" ]; then
		cp "$seeds"/* "$work/corpus/" 2>/dev/null
	fi
	args=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
	      -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048
	      -artifact_prefix="$work/")
	[ -f "$TOP/tests/fuzz/$dir/$name.dict" ] && args+=(-dict="$TOP/tests/fuzz/$dir/$name.dict")
	# fork mode's jobs write their scratch files in the working directory
	(cd "$work" && exec "$f" "${args[@]}" "$work/corpus") >"$work/log" 2>&1
	echo "$?" >"$work/status"
}

echo "fuzz-long: ${#targets[@]} target(s), ${SECS}s each, $JOBS at a time, results in $OUT"
t0=$(date +%s)
running=0
for f in "${targets[@]}"; do
	if [ "$running" -ge "$JOBS" ]; then
		wait -n
		running=$((running - 1))
	fi
	echo "  start $(basename "$(dirname "$f")")"
	run_one "$f" &
	running=$((running + 1))
done
wait

bad=0
printf '%-14s %14s %8s %6s  %s\n' target executions corpus fails status
for f in "${targets[@]}"; do
	dir=$(basename "$(dirname "$f")")
	work=$OUT/$dir
	# fork mode prints "#<execs>: cov: ..." lines; the last one is the total
	execs=$(sed -n 's/^#\([0-9][0-9]*\):.*/\1/p' "$work/log" | tail -1)
	ncorp=$(find "$work/corpus" -type f | wc -l)
	nfail=$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' \
		-o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
	st=$(cat "$work/status" 2>/dev/null || echo '?')
	printf '%-14s %14s %8s %6s  %s\n' "$dir" "${execs:-?}" "$ncorp" "$nfail" "$st"
	if [ "$nfail" != 0 ] || [ "$st" != 0 ]; then bad=$((bad + 1)); fi
done
echo "fuzz-long: done in $(($(date +%s) - t0))s; $bad target(s) with failures"
[ $bad = 0 ]
