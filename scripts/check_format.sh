#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Style gate (STYLE.md): banned functions, SPDX lines, no TODO stubs.
# clang-format is advisory (printed, not enforced) because versions differ.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
rc=0
files=$(git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null)
[ -n "$files" ] || files=$(find src include tools tests -name '*.[ch]')
# banned: unbounded string functions and atoi (STYLE.md section 4)
if grep -nE '(^|[^_a-zA-Z0-9])(strcpy|strcat|sprintf|vsprintf|atoi|atol|strtok|gets)[[:space:]]*\(' $files \
	| grep -v 'check_format: allow'; then
	echo "check_format: banned function used (use nvl_strlcpy, snprintf, strtoul/nvl_parse_*, strtok_r)"
	rc=1
fi
for f in $files; do
	head -3 "$f" | grep -q 'SPDX-License-Identifier' || { echo "check_format: $f: missing SPDX line"; rc=1; }
done
if grep -nE 'TODO: implement|not implemented yet' $files; then
	echo "check_format: unimplemented path left in"
	rc=1
fi
[ $rc = 0 ] && echo "check_format: ok ($(echo "$files" | wc -w) files)"
exit $rc
