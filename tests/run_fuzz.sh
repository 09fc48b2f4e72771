#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Run every libFuzzer target: tests/run_fuzz.sh [BUILD_DIR] [SECONDS_EACH] [NAME_FILTER]
# make check runs each for a few seconds; run longer by hand, e.g.
#   make SAN=fuzz && tests/run_fuzz.sh build-fuzz 600 jsonrpc
# Seeds come from tests/fuzz/<target>/corpus (read-only); new inputs go to a
# scratch dir; crashes are kept in BUILD_DIR/fuzz-artifacts/.
# FUZZ_JOBS targets run at a time (default: the number of CPUs); each still
# runs SECONDS_EACH of wall time, results are printed in target order.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build-fuzz}
SECS=${2:-${FUZZ_SECONDS:-10}}
FILTER=${3:-}
JOBS=${FUZZ_JOBS:-$(nproc)}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
case "$JOBS" in '' | *[!0-9]* | 0) echo "run_fuzz: FUZZ_JOBS must be >= 1" >&2; exit 2 ;; esac
ART=$BUILD/fuzz-artifacts
mkdir -p "$ART"

run_one() { # BINARY: writes $ART/<name>.rc
	local f=$1 dir name work seeds log rc
	dir=$(basename "$(dirname "$f")")
	name=$(basename "$f")
	work=$(mktemp -d)
	seeds=$TOP/tests/fuzz/$dir/corpus
	log=$ART/$name.log
	local args=(-max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048
		    -artifact_prefix="$ART/$name-" -print_final_stats=1)
	[ -f "$TOP/tests/fuzz/$dir/$name.dict" ] && args+=(-dict="$TOP/tests/fuzz/$dir/$name.dict")
	if [ -d "$seeds" ]; then
		"$f" "${args[@]}" "$work" "$seeds" >"$log" 2>&1
	else
		"$f" "${args[@]}" "$work" >"$log" 2>&1
	fi
	rc=$?
	rm -rf "$work"
	echo "$rc" >"$ART/$name.rc"
}

targets=()
for f in "$BUILD"/fuzz/*/fuzz_*; do
	[ -x "$f" ] && [ -f "$f" ] || continue
	dir=$(basename "$(dirname "$f")")
	name=$(basename "$f")
	[ -n "$FILTER" ] && case "$dir/$name" in *"$FILTER"*) ;; *) continue ;; esac
	targets+=("$f")
	rm -f "$ART/$name.rc"
done
running=0
for f in "${targets[@]}"; do
	if [ "$running" -ge "$JOBS" ]; then
		wait -n
		running=$((running - 1))
	fi
	run_one "$f" &
	running=$((running + 1))
done
wait

pass=0 failn=0 failed=()
for f in "${targets[@]}"; do
	dir=$(basename "$(dirname "$f")")
	name=$(basename "$f")
	log=$ART/$name.log
	rc=$(cat "$ART/$name.rc" 2>/dev/null || echo 125)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" 2>/dev/null | tail -1)
	if [ "$rc" = 0 ]; then
		pass=$((pass + 1)); echo "PASS  fuzz/$dir/$name (${SECS}s, ${execs:-?} inputs)"
	else
		failn=$((failn + 1)); failed+=("$name")
		echo "FAIL  fuzz/$dir/$name (status $rc) -- reproducer in $ART"
		grep -A 30 -m1 'ERROR\|runtime error\|deadly signal' "$log" | head -40 | sed 's/^/      | /'
	fi
	rm -f "$ART/$name.rc"
done
echo "fuzz: $pass passed, $failn failed${failed:+ -- failed: ${failed[*]}}"
[ $failn = 0 ]
