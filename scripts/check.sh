#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# What `make check` runs: every build variant, then every test.
#   release (-Werror)      unit + functional tests
#   asan (ASan+UBSan)      unit + functional tests (those not marked "asan: no");
#                          the functional tests of both builds share three lanes
#   tsan                   unit tests (suppressions: tests/tsan.supp, benign stats races)
#   fuzz (clang)           each libFuzzer target for FUZZ_SECONDS (default 5;
#                          longer: make fuzz-long)
#   valgrind               unit tests of the release build (on one core, while
#                          the fuzz targets run one at a time on the other)
#   style                  scripts/check_format.sh, scripts/check_layering.sh,
#                          docs/rpc.md matches the daemon
#   static                 cppcheck over src/ and tools/, zero unsuppressed findings
#                          (scripts/static_analysis.sh, tests/static/cppcheck.supp)
# Environment: CHECK_ONLY="unit functional fuzz valgrind style static" to pick stages,
# TESTS="name ..." to filter functional tests, JOBS (default: nproc).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
JOBS=${JOBS:-$(nproc)}
STAGES=${CHECK_ONLY:-"style static unit functional fuzz valgrind"}
has() { case " $STAGES " in *" $1 "*) return 0 ;; esac; return 1; }
status=0
summary=()
t0=$(date +%s)
step() { # name cmd...
	local name=$1 s e rc
	shift
	s=$(date +%s)
	echo "==== $name"
	"$@"
	rc=$?
	e=$(date +%s)
	if [ $rc = 0 ]; then summary+=("ok    $name ($((e - s))s)"); else summary+=("FAIL  $name ($((e - s))s)"); status=1; fi
	return $rc
}

step "build release" make -j"$JOBS" --no-print-directory || { echo "release build failed"; exit 1; }
step "build asan" make -j"$JOBS" --no-print-directory SAN=asan || { echo "asan build failed"; exit 1; }
# TSan: built, and the reactor/RPC/bdev unit tests run under it (functional
# tests stay with ASan: TSan's cost and shadow memory make them too slow here)
step "build tsan" make -j"$JOBS" --no-print-directory SAN=tsan
if command -v clang >/dev/null && has fuzz; then
	step "build fuzz" make -j"$JOBS" --no-print-directory SAN=fuzz
fi
if has style; then
	step "style" scripts/check_format.sh
	step "layering" scripts/check_layering.sh
	step "rpc docs" scripts/gen-rpc-doc.sh --check build
fi
if has static; then
	step "static analysis" env JOBS="$JOBS" scripts/static_analysis.sh
fi
if has unit; then
	step "unit (release)" tests/run_unit.sh build
	step "unit (asan)" tests/run_unit.sh build-asan
fi
if has unit; then
	TSAN_OPTIONS="halt_on_error=1 suppressions=$TOP/tests/tsan.supp" \
		step "unit (tsan)" tests/run_unit.sh build-tsan
fi
if has functional; then
	# both builds in one pool of lanes: the release build's guest and
	# packaging tests (one lane, one after another) run beside the others
	# of both builds, most of which wait more than they compute
	# shellcheck disable=SC2086
	FUNCTIONAL_LANES=${FUNCTIONAL_LANES:-3} \
		step "functional (release+asan)" tests/run_functional.sh build,build-asan ${TESTS:-}
fi
# valgrind and the fuzzers are each one CPU-bound process at a time and
# neither times anything: run them side by side, report valgrind after
vg_pid=
if has valgrind && command -v valgrind >/dev/null; then
	mkdir -p build/test-logs
	(
		s=$(date +%s)
		tests/run_unit.sh build --valgrind >build/test-logs/check-valgrind.out 2>&1
		echo "$? $(($(date +%s) - s))" >build/test-logs/check-valgrind.rc
	) &
	vg_pid=$!
fi
if has fuzz && [ -d build-fuzz/fuzz ]; then
	step "fuzz" tests/run_fuzz.sh build-fuzz "${FUZZ_SECONDS:-5}"
fi
if [ -n "$vg_pid" ]; then
	wait "$vg_pid"
	echo "==== unit (valgrind)"
	cat build/test-logs/check-valgrind.out
	read -r vrc vsecs <build/test-logs/check-valgrind.rc || { vrc=1 vsecs=0; }
	if [ "$vrc" = 0 ]; then
		summary+=("ok    unit (valgrind) (${vsecs}s, beside the fuzzers)")
	else
		summary+=("FAIL  unit (valgrind) (${vsecs}s, beside the fuzzers)")
		status=1
	fi
fi
echo
echo "==== make check summary ($(( $(date +%s) - t0 ))s)"
printf '%s\n' "${summary[@]}"
[ $status = 0 ] && echo "make check: PASSED" || echo "make check: FAILED"
exit $status
