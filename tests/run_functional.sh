#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Run functional tests: tests/run_functional.sh [BUILD_DIR] [NAME_FILTER...]
# Each test may declare in its first 15 lines:
#   # timeout: SECS      (default 300)
#   # asan: no           (not run against the ASan build: guest-bound or too slow)
# Prints PASS/FAIL/SKIP per test; the full output of each is in
# BUILD_DIR/test-logs/NAME.log. Exit status 1 if any test failed.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
shift || true
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
LOGS=$BUILD/test-logs
mkdir -p "$LOGS"
export NVLEND_BUILD=$BUILD
is_asan=0
case "$BUILD" in *asan*) is_asan=1 ;; esac
if [ $is_asan = 1 ]; then
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
pass=0 failn=0 skipn=0 failed=()
for t in "$TOP"/tests/functional/*.sh; do
	name=$(basename "$t" .sh)
	# sourced helpers (common.sh, *_common.sh) are not tests
	case "$name" in common | *_common) continue ;; esac
	if [ $# -gt 0 ]; then
		match=0
		for f in "$@"; do case "$name" in *$f*) match=1 ;; esac; done
		[ $match = 1 ] || continue
	fi
	if [ $is_asan = 1 ] && head -15 "$t" | grep -q '^# asan: no'; then
		continue
	fi
	tmo=$(head -15 "$t" | sed -n 's/^# timeout: *\([0-9]*\).*/\1/p')
	tmo=${tmo:-300}
	start=$(date +%s.%N)
	timeout -k 10 "$tmo" bash "$t" </dev/null >"$LOGS/$name.log" 2>&1
	rc=$?
	secs=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $start}")
	case $rc in
	0) pass=$((pass + 1)); echo "PASS  $name (${secs}s)" ;;
	77) skipn=$((skipn + 1)); echo "SKIP  $name (${secs}s): $(grep -m1 'SKIP:' "$LOGS/$name.log" | sed 's/.*SKIP: //')" ;;
	*)
		failn=$((failn + 1)); failed+=("$name")
		[ $rc = 124 ] && echo "FAIL  $name (timed out after ${tmo}s)" || echo "FAIL  $name (status $rc, ${secs}s)"
		sed 's/^/      | /' "$LOGS/$name.log" | tail -n 40
		;;
	esac
done
echo "functional ($(basename "$BUILD")): $pass passed, $failn failed, $skipn skipped${failed:+ -- failed: ${failed[*]}}"
[ $failn = 0 ]
