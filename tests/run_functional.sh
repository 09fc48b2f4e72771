#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Run functional tests: tests/run_functional.sh [BUILD_DIR] [NAME_FILTER...]
# Each test may declare in its first 15 lines:
#   # timeout: SECS      (default 300)
#   # asan: no           (not run against the ASan build: guest-bound or too slow)
# Prints PASS/FAIL/SKIP per test; the full output of each is in
# BUILD_DIR/test-logs/NAME.log. Exit status 1 if any test failed.
# FUNCTIONAL_LANES=2 runs the tests in two lanes side by side (make check
# does): tests that boot a QEMU guest or build packages go one after another
# in the first lane, the others from a queue both lanes take from (the first
# once its heavy tests are done); no test runs twice at once, and every test
# keeps its own directory, ports and names.
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
LANES=${FUNCTIONAL_LANES:-1}
RES=$(mktemp -d)
trap 'rm -rf "$RES"' EXIT
todo=() heavy=()
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
	todo+=("$t")
	if grep -qE 'guest_(prepare|run)|dpkg-buildpackage|make deb|--plot' "$t"; then
		heavy+=("$t")
	fi
done

# run_one TEST: run it, print its result (under a lock: lanes share stdout)
run_one() {
	local t=$1 name tmo start rc secs out
	name=$(basename "$t" .sh)
	tmo=$(head -15 "$t" | sed -n 's/^# timeout: *\([0-9]*\).*/\1/p')
	tmo=${tmo:-300}
	start=$(date +%s.%N)
	timeout -k 10 "$tmo" bash "$t" </dev/null >"$LOGS/$name.log" 2>&1
	rc=$?
	secs=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $start}")
	case $rc in
	0) out="PASS  $name (${secs}s)"; echo pass >"$RES/$name" ;;
	77) out="SKIP  $name (${secs}s): $(grep -m1 'SKIP:' "$LOGS/$name.log" | sed 's/.*SKIP: //')"
		echo skip >"$RES/$name" ;;
	*)
		echo fail >"$RES/$name"
		if [ $rc = 124 ]; then out="FAIL  $name (timed out after ${tmo}s)"; else out="FAIL  $name (status $rc, ${secs}s)"; fi
		out+=$'\n'$(sed 's/^/      | /' "$LOGS/$name.log" | tail -n 40)
		;;
	esac
	flock "$RES" printf '%s\n' "$out"
}

if [ "$LANES" -ge 2 ] && [ ${#todo[@]} -gt 1 ]; then
	# heavy tests one after another in the first lane; the others in a shared
	# queue that both lanes take from (the first lane once its heavy tests
	# are done), so neither lane sits idle while the other has a backlog
	light=()
	for t in "${todo[@]}"; do
		case " ${heavy[*]} " in *" $t "*) ;; *) light+=("$t") ;; esac
	done
	echo 0 >"$RES/.next"
	take() { # prints the next light test, or nothing when none is left
		local i
		i=$(flock "$RES/.next" sh -c 'i=$(cat "$1"); echo $((i + 1)) >"$1"; echo "$i"' \
			sh "$RES/.next")
		[ "$i" -lt ${#light[@]} ] && echo "${light[$i]}"
		return 0
	}
	lane() { # HEAVY_TESTS...
		local t
		for t in "$@"; do run_one "$t"; done
		while t=$(take) && [ -n "$t" ]; do run_one "$t"; done
	}
	(lane "${heavy[@]}") &
	l0=$!
	(lane) &
	l1=$!
	wait $l0 $l1
else
	for t in "${todo[@]}"; do run_one "$t"; done
fi
pass=0 failn=0 skipn=0 failed=()
for t in "${todo[@]}"; do
	name=$(basename "$t" .sh)
	case $(cat "$RES/$name" 2>/dev/null) in
	pass) pass=$((pass + 1)) ;;
	skip) skipn=$((skipn + 1)) ;;
	*) failn=$((failn + 1)); failed+=("$name") ;;
	esac
done
echo "functional ($(basename "$BUILD")): $pass passed, $failn failed, $skipn skipped${failed:+ -- failed: ${failed[*]}}"
[ $failn = 0 ]
