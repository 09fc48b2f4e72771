#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Run functional tests: tests/run_functional.sh [BUILD_DIR[,BUILD_DIR...]] [NAME_FILTER...]
# Each test may declare in its first 15 lines:
#   # timeout: SECS      (default 300)
#   # asan: no           (not run against the ASan build: guest-bound or too slow)
# Prints PASS/FAIL/SKIP per test; the full output of each is in
# BUILD_DIR/test-logs/NAME.log. Exit status 1 if any test failed.
# Several build dirs (comma-separated, e.g. build,build-asan) run the tests
# against each of them in one pool of lanes; result lines then name the
# build (build-asan/NAME) and a summary line is printed per build.
# FUNCTIONAL_LANES=N (N >= 2; make check uses 3 for build,build-asan) runs
# the tests in N lanes side by side: tests that boot a QEMU guest or build
# packages go one after another in the first lane, the others come from a
# queue all lanes take from (the first once its heavy tests are done; the
# benchmark runs first, then the sanitizer builds' tests: they are the
# longer ones). No test runs
# twice at once (not even against two builds), and every test keeps its own
# directory, ports and names.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILDS_ARG=${1:-build}
shift || true
IFS=, read -r -a builds <<<"$BUILDS_ARG"
any_asan=0
for i in "${!builds[@]}"; do
	case "${builds[$i]}" in /*) ;; *) builds[i]=$TOP/${builds[$i]} ;; esac
	mkdir -p "${builds[$i]}/test-logs"
	case "${builds[$i]}" in *asan*) any_asan=1 ;; esac
done
if [ $any_asan = 1 ]; then
	# (only the ASan build's programs read these)
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
LANES=${FUNCTIONAL_LANES:-1}
RES=$(mktemp -d)
trap 'rm -rf "$RES"' EXIT
mkdir "$RES/running"
# a job is "BUILD_INDEX TEST_PATH"; heavy jobs go to the first lane
jobs_all=() heavy=() long=() light_san=() light=()
for bi in "${!builds[@]}"; do
	is_asan=0
	case "${builds[$bi]}" in *asan*) is_asan=1 ;; esac
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
		jobs_all+=("$bi $t")
		if grep -qE 'guest_(prepare|run)|dpkg-buildpackage|make deb' "$t"; then
			heavy+=("$bi $t")
		elif grep -qE -- '--plot' "$t"; then
			long+=("$bi $t")
		elif [ $is_asan = 1 ]; then
			light_san+=("$bi $t")
		else
			light+=("$bi $t")
		fi
	done
done
# the benchmark runs (--plot) are the longest of the queue: they start first
queue=("${long[@]}" "${light_san[@]}" "${light[@]}")

# label BUILD_INDEX NAME: how results name a job
label() {
	if [ ${#builds[@]} -gt 1 ]; then echo "$(basename "${builds[$1]}")/$2"; else echo "$2"; fi
}

# run_one "BUILD_INDEX TEST": run it, print its result (under a lock: lanes
# share stdout). The caller holds the test's name (RES/running/NAME).
run_one() {
	local bi=${1%% *} t=${1#* } name tmo start rc secs out b logs lab
	b=${builds[$bi]}
	logs=$b/test-logs
	name=$(basename "$t" .sh)
	lab=$(label "$bi" "$name")
	tmo=$(head -15 "$t" | sed -n 's/^# timeout: *\([0-9]*\).*/\1/p')
	tmo=${tmo:-300}
	start=$(date +%s.%N)
	NVLEND_BUILD=$b timeout -k 10 "$tmo" bash "$t" </dev/null >"$logs/$name.log" 2>&1
	rc=$?
	secs=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $start}")
	case $rc in
	0) out="PASS  $lab (${secs}s)"; echo pass >"$RES/$bi-$name" ;;
	77) out="SKIP  $lab (${secs}s): $(grep -m1 'SKIP:' "$logs/$name.log" | sed 's/.*SKIP: //')"
		echo skip >"$RES/$bi-$name" ;;
	*)
		echo fail >"$RES/$bi-$name"
		if [ $rc = 124 ]; then out="FAIL  $lab (timed out after ${tmo}s)"; else out="FAIL  $lab (status $rc, ${secs}s)"; fi
		out+=$'\n'$(sed 's/^/      | /' "$logs/$name.log" | tail -n 40)
		;;
	esac
	flock "$RES" printf '%s\n' "$out"
}

# claim NAME: mark the test as running unless it already is (returns 1 then)
claim() { mkdir "$RES/running/$1" 2>/dev/null; }
release() { rmdir "$RES/running/$1"; }

if [ "$LANES" -ge 2 ] && [ ${#jobs_all[@]} -gt 1 ]; then
	mkdir "$RES/taken"
	# take: prints the index of the first queued job not yet taken whose test
	# is not running against another build (and claims it), "wait" when every
	# job left is such a test, nothing when the queue is empty
	take() {
		(
			flock 9
			left=0
			for i in "${!queue[@]}"; do
				[ -e "$RES/taken/$i" ] && continue
				left=1
				n=$(basename "${queue[$i]#* }" .sh)
				if claim "$n"; then
					touch "$RES/taken/$i"
					echo "$i"
					exit 0
				fi
			done
			[ $left = 1 ] && echo wait
			exit 0
		) 9>"$RES/.queue"
	}
	lane() { # HEAVY_JOBS...
		local j n i
		for j in "$@"; do
			n=$(basename "${j#* }" .sh)
			until claim "$n"; do sleep 0.5; done
			run_one "$j"
			release "$n"
		done
		while i=$(take) && [ -n "$i" ]; do
			if [ "$i" = wait ]; then sleep 0.5; continue; fi
			run_one "${queue[$i]}"
			release "$(basename "${queue[$i]#* }" .sh)"
		done
	}
	pids=()
	(lane "${heavy[@]}") &
	pids+=($!)
	for ((l = 1; l < LANES; l++)); do
		(lane) &
		pids+=($!)
	done
	wait "${pids[@]}"
else
	for j in "${jobs_all[@]}"; do run_one "$j"; done
fi
status=0
for bi in "${!builds[@]}"; do
	pass=0 failn=0 skipn=0 failed=()
	for j in "${jobs_all[@]}"; do
		[ "${j%% *}" = "$bi" ] || continue
		name=$(basename "${j#* }" .sh)
		case $(cat "$RES/$bi-$name" 2>/dev/null) in
		pass) pass=$((pass + 1)) ;;
		skip) skipn=$((skipn + 1)) ;;
		*) failn=$((failn + 1)); failed+=("$name") ;;
		esac
	done
	echo "functional ($(basename "${builds[$bi]}")): $pass passed, $failn failed, $skipn skipped${failed:+ -- failed: ${failed[*]}}"
	[ $failn = 0 ] || status=1
done
exit $status
