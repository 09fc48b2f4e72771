#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Manual pages (issue: operability): `make man` generates nvlendd(8),
# nvlend(8), nvlend-perf(1), libnvlend(3) with one page per function group,
# and ships nvlend.json(5). Checked here:
#   - mandoc -Tlint has nothing to say about any page (style level; a
#     cross-reference to another nvlend page is fine: they install together);
#   - man -l renders each without a diagnostic;
#   - nothing is left out: every command `nvlend --help` lists has its section
#     in nvlend(8), every option of `nvlendd --help` is in nvlendd(8), every
#     function libnvlend exports is described in a libnvlend page;
#   - make install puts them under PREFIX/share/man/manN.
# asan: no
# timeout: 120
source "$(dirname "$0")/common.sh"
requires mandoc man /usr/bin/python3

M=$T/man
/usr/bin/python3 "$TOP/scripts/gen-man.py" "$BUILD" "$M" >"$T/gen.log" 2>&1 ||
	{ cat "$T/gen.log" >&2; fail "gen-man.py"; }
for p in nvlendd.8 nvlend.8 nvlend-perf.1 libnvlend.3 nvlend.json.5; do
	[ -s "$M/$p" ] || fail "no $p"
done
n3=$(ls "$M"/libnvlend-*.3 | wc -l)
[ "$n3" -ge 5 ] || fail "only $n3 libnvlend group pages"
ours=$(cd "$M" && ls | sed 's/\.[0-9]$//' | sort -u | paste -sd'|')
for f in "$M"/*; do
	mandoc -Tlint -W style "$f" 2>&1 | grep -vE "referenced manual not found: Xr ($ours) " >"$T/lint" || true
	if [ -s "$T/lint" ]; then
		cat "$T/lint" >&2
		fail "mandoc -Tlint: $(basename "$f")"
	fi
	MANWIDTH=80 man -l "$f" >"$T/render" 2>"$T/render.err" || fail "man -l $(basename "$f")"
	[ -s "$T/render.err" ] && { cat "$T/render.err" >&2; fail "man -l $(basename "$f") complained"; }
	[ -s "$T/render" ] || fail "man -l $(basename "$f") rendered nothing"
done
# every CLI command has its section
"$BIN/nvlend" --help | sed -n '/^COMMANDS/,/^[A-Z]/p' | grep '^    [a-z]' |
	sed -E 's/^    (.*[^ ])  +.*/\1/' >"$T/cmds"
[ "$(wc -l < "$T/cmds")" -ge 30 ] || fail "could not read the command list"
while read -r c; do
	grep -qF ".SS \"nvlend $(echo "$c" | sed 's/-/\\-/g')\"" "$M/nvlend.8" || fail "nvlend(8) lacks '$c'"
done <"$T/cmds"
# every daemon option is described
"$BIN/nvlendd" --help | grep -oE '^ +(-[a-zA-Z], )?--[a-z-]+' | grep -oE -- '--[a-z-]+' >"$T/opts"
while read -r o; do
	grep -qF "$(echo "$o" | sed 's/-/\\-/g')" "$M/nvlendd.8" || fail "nvlendd(8) lacks $o"
done <"$T/opts"
# every exported library function is documented
nm -D --defined-only "$BUILD/lib/libnvlend.so.0" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u >"$T/syms"
[ "$(wc -l < "$T/syms")" -ge 20 ] || fail "too few exported functions read"
missing=$(while read -r s; do grep -qF ".SS \"$(echo "$s")\"" "$M"/libnvlend-*.3 || echo "$s"; done <"$T/syms")
[ -z "$missing" ] || fail "exported but in no libnvlend page: $missing"
# installed where man finds them
make -s -C "$TOP" install PREFIX="$T/prefix" >"$T/install.log" 2>&1 || { cat "$T/install.log" >&2; fail "make install"; }
for p in man8/nvlendd.8 man8/nvlend.8 man1/nvlend-perf.1 man3/libnvlend.3 man5/nvlend.json.5; do
	[ -f "$T/prefix/share/man/$p" ] || fail "not installed: share/man/$p"
done
MANPATH=$T/prefix/share/man man -w nvlend-perf >/dev/null 2>&1 || fail "man does not find the installed nvlend-perf(1)"
pass
