#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Static analysis stage of make check: cppcheck over src/ and tools/ with the
# warning and portability checks (errors are always on). Zero findings, or
# each suppressed with its reason in tests/static/cppcheck.supp; exits
# non-zero on any unsuppressed finding.
#   scripts/static_analysis.sh [FILE_OR_DIR...]   (default: src tools)
# Environment: JOBS (default: nproc).
#
# Only the Linux/GCC configuration the project builds is analysed (-D given);
# system headers are not parsed except sys/queue.h and jansson.h, whose macros
# (TAILQ_*, json_*_foreach) cppcheck must expand to parse the code at all.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP" || exit 2
JOBS=${JOBS:-$(nproc)}
command -v cppcheck >/dev/null || { echo "static_analysis: cppcheck not installed (scripts/setup.sh)" >&2; exit 2; }
[ $# -gt 0 ] || set -- src tools
queue_h=$(echo '#include <sys/queue.h>' | cpp -H -o /dev/null 2>&1 | sed -n 's/^\. //p' | head -1)
jansson_h=$(echo '#include <jansson.h>' | cpp -H -o /dev/null 2>&1 | sed -n 's/^\. //p' | head -1)
if [ -z "$queue_h" ] || [ -z "$jansson_h" ]; then
	echo "static_analysis: sys/queue.h or jansson.h not found" >&2
	exit 2
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cppcheck -q -j"$JOBS" --std=c11 --language=c --enable=warning,portability --inline-suppr \
	--error-exitcode=1 -D__linux__ -D__x86_64__ -D__GNUC__ -D_GNU_SOURCE -Iinclude -Isrc \
	--include="$queue_h" --include="$jansson_h" \
	--suppress=missingIncludeSystem --suppressions-list=tests/static/cppcheck.supp \
	--template='{file}:{line}: {severity} [{id}] {message}' "$@" 2>"$out"
rc=$?
n=$(grep -c ': [a-z]* \[' "$out")
cat "$out"
if [ $rc = 0 ] && [ "$n" = 0 ]; then
	echo "static analysis: cppcheck $(cppcheck --version | sed 's/^Cppcheck //'), no findings"
	exit 0
fi
echo "static analysis: $n finding(s) (fix, or suppress with a reason in tests/static/cppcheck.supp)"
exit 1
