#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Run every unit test binary of a build: tests/run_unit.sh [BUILD_DIR] [--valgrind]
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
VALGRIND=${2:-}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
case "$BUILD" in *tsan*)
	export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1 suppressions=$TOP/tests/tsan.supp} ;;
esac
case "$BUILD" in *asan*)
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} ;;
esac
LOGS=$BUILD/test-logs
mkdir -p "$LOGS"
pass=0 failn=0 failed=()
while IFS= read -r -d '' ut; do
	name=${ut#$BUILD/tests/unit/}
	log=$LOGS/unit-${name//\//_}${VALGRIND:+-valgrind}.log
	if [ -n "$VALGRIND" ]; then
		# a test may ask for more in its source: "valgrind-options: ..."
		vopts=$(sed -n 's/.*valgrind-options: *\([^*]*\).*/\1/p' "$TOP/tests/unit/$name.c" 2>/dev/null | head -1)
		# shellcheck disable=SC2086
		timeout 600 valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
			$vopts "$ut" >"$log" 2>&1
	else
		(cd "$BUILD" && timeout 300 "$ut") >"$log" 2>&1
	fi
	rc=$?
	if [ $rc = 0 ]; then
		pass=$((pass + 1))
		echo "PASS  unit/$name${VALGRIND:+ (valgrind)}"
	else
		failn=$((failn + 1)); failed+=("$name")
		echo "FAIL  unit/$name${VALGRIND:+ (valgrind)} (status $rc)"
		tail -n 40 "$log" | sed 's/^/      | /'
	fi
done < <(find "$BUILD/tests/unit" -type f -perm -u+x -name '*_ut' -print0 2>/dev/null | sort -z)
echo "unit ($(basename "$BUILD")${VALGRIND:+, valgrind}): $pass passed, $failn failed${failed:+ -- failed: ${failed[*]}}"
[ $failn = 0 ]
