#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Debian packages (operability issue, item 3): `make deb` builds nvlend,
# libnvlend0 and libnvlend-dev with dpkg-buildpackage; lintian reports no
# error; the packages install on this machine; the unit file passes
# systemd-analyze verify; the installed daemon runs the demo (scripts/
# run-demo.sh pointed at the installed binaries); a program builds against
# libnvlend-dev with pkg-config and runs against libnvlend0; purging the
# packages leaves none of their files behind.
# asan: no
# timeout: 600
source "$(dirname "$0")/common.sh"
requires_root
requires dpkg-buildpackage dh lintian mkfs.ext4 pkg-config cc
pkgs="nvlend libnvlend-dev libnvlend0"
if dpkg-query -W -f='${Status}\n' nvlend 2>/dev/null | grep_q installed; then
	skip "nvlend is already installed on this machine: not touching it"
fi

# (noautodbgsym: the -dbgsym packages are not what this test checks, and
# building and linting them cost time; `make deb` itself still makes them)
DEB_BUILD_OPTIONS="noautodbgsym ${DEB_BUILD_OPTIONS:-}" \
	make -s -C "$TOP" deb BUILD="$T/b" >"$T/deb.log" 2>&1 || { cat "$T/deb.log" >&2; fail "make deb"; }
D=$T/b/deb
for p in nvlend libnvlend0 libnvlend-dev; do
	ls "$D/${p}_"*.deb >/dev/null 2>&1 || fail "no $p package"
done
# lintian reads only the built files: it runs while the packages are
# installed and exercised below, and its verdict is checked at the end
lintian --tag-display-limit 0 "$D"/*.changes >"$T/lintian.out" 2>&1 &
lintian_pid=$!
on_exit "kill $lintian_pid 2>/dev/null"

# what each package would install (files only), to check the purge later
for f in "$D"/nvlend_*.deb "$D"/libnvlend0_*.deb "$D"/libnvlend-dev_*.deb; do
	dpkg-deb -c "$f" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|'
done >"$T/files"
grep -qx /usr/sbin/nvlendd "$T/files" || fail "nvlendd not in /usr/sbin"
grep -q '/lib/systemd/system/nvlendd.service$' "$T/files" || fail "no systemd unit"
grep -q '/usr/share/man/man8/nvlend.8' "$T/files" || fail "no man page"

on_exit "dpkg --purge $pkgs"
dpkg -i "$D"/nvlend_*.deb "$D"/libnvlend0_*.deb "$D"/libnvlend-dev_*.deb >"$T/dpkg.log" 2>&1 ||
	{ cat "$T/dpkg.log" >&2; fail "dpkg -i"; }
[ -x /usr/sbin/nvlendd ] && [ -x /usr/bin/nvlend ] || fail "binaries not installed"
if command -v systemd-analyze >/dev/null; then
	systemd-analyze verify /lib/systemd/system/nvlendd.service >"$T/verify.log" 2>&1 ||
		{ cat "$T/verify.log" >&2; fail "systemd-analyze verify nvlendd.service"; }
fi
man -w nvlendd >/dev/null 2>&1 || fail "man does not find nvlendd(8)"

log "demo on the installed binaries"
mkdir -p "$T/inst/bin"
ln -s /usr/sbin/nvlendd "$T/inst/bin/nvlendd"
ln -s /usr/bin/nvlend "$T/inst/bin/nvlend"
export TMPDIR=$T/tmp DEMO_SIZE_MIB=64 DEMO_FILE_MIB=8
mkdir -p "$TMPDIR"
"$TOP/scripts/run-demo.sh" "$T/inst" >"$T/demo.out" 2>&1 || { cat "$T/demo.out" >&2; fail "demo"; }
grep -q "demo finished" "$T/demo.out" || fail "demo did not finish"

log "a program built against libnvlend-dev"
cat >"$T/c.c" <<'C'
#include <nvlend/nvlend.h>
#include <stdio.h>
int main(void) { struct nvl_uri u; return nvl_uri_parse("nvme+tcp://127.0.0.1:4420/nqn.x", &u) == 0 && u.kind == NVL_URI_NVME_TCP ? 0 : 1; }
C
# shellcheck disable=SC2046
cc -o "$T/c" "$T/c.c" $(pkg-config --cflags --libs nvlend) 2>"$T/cc.log" || { cat "$T/cc.log" >&2; fail "cc with pkg-config nvlend"; }
# (capture first: grep -q closing the pipe early would SIGPIPE ldd under pipefail)
ldd_out=$(ldd "$T/c")
grep -qE "libnvlend.so.0 => (/usr)?/lib/" <<<"$ldd_out" || fail "not linked with the installed libnvlend0: $ldd_out"
"$T/c" || fail "program against libnvlend0"

dpkg --purge $pkgs >"$T/purge.log" 2>&1 || { cat "$T/purge.log" >&2; fail "dpkg --purge"; }
left=$(while read -r f; do [ -e "$f" ] || [ -L "$f" ] && echo "$f"; done <"$T/files")
[ -z "$left" ] || fail "left behind after purge: $left"
[ -e /etc/nvlend ] && fail "/etc/nvlend left behind"
[ -e /etc/default/nvlend ] && fail "/etc/default/nvlend left behind"
wait $lintian_pid
grep '^E:' "$T/lintian.out" && fail "lintian errors (above)"
log "lintian: $(grep -c '^W:' "$T/lintian.out") warnings, no errors"
pass
