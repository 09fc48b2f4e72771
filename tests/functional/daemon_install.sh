#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# make install: binaries, headers, libnvlend (shared and static) and a
# pkg-config file under PREFIX (and DESTDIR staging). A tiny program built
# only from what was installed (pkg-config --cflags --libs nvlend) talks to
# the installed daemon through libnvlend's rpc_client API.
# asan: no
# timeout: 180
source "$(dirname "$0")/common.sh"
requires pkg-config cc make

P=$T/prefix
make -s -C "$TOP" install PREFIX="$P" >"$T/install.log" 2>&1 || { cat "$T/install.log" >&2; fail "make install"; }
for f in bin/nvlendd bin/nvlend lib/libnvlend.so.0 lib/libnvlend.so lib/libnvlend.a \
	include/nvlend/rpc_client.h lib/pkgconfig/nvlend.pc; do
	[ -e "$P/$f" ] || fail "make install did not install $f"
done
[ -x "$P/bin/nvlendd" ] && [ -x "$P/bin/nvlend" ] || fail "installed binaries not executable"
"$P/bin/nvlendd" --version | grep_q '^nvlendd ' || fail "installed nvlendd --version"
"$P/bin/nvlend" --help | grep_q SYNOPSIS || fail "installed nvlend --help"
# the library exports the client API and hides internals
nm -D --defined-only "$P/lib/libnvlend.so.0" | awk '{print $3}' | sed 's/@.*//' >"$T/syms"
grep -qx nvl_rpc_client_connect "$T/syms" || fail "nvl_rpc_client_connect not exported"
grep -qx nvl_rpc_client_call "$T/syms" || fail "nvl_rpc_client_call not exported"
if grep -v -e '^nvl_' -e '^NVLEND_' -e '^_' "$T/syms" | grep_q .; then
	fail "libnvlend exports non-nvl symbols: $(grep -v -e '^nvl_' -e '^NVLEND_' -e '^_' "$T/syms" | head -5)"
fi
grep -q -e '^nvl_parse_size$' -e '^nvl_log$' "$T/syms" && fail "libnvlend exports util internals"
objdump -p "$P/lib/libnvlend.so.0" | grep_q 'SONAME *libnvlend.so.0' || fail "SONAME"

export PKG_CONFIG_PATH=$P/lib/pkgconfig
assert_eq "$(pkg-config --modversion nvlend)" "$("$P/bin/nvlendd" --version | cut -d' ' -f2)" \
	"pkg-config version"
cat >"$T/client.c" <<'EOF'
/* a user of the installed libnvlend, nothing from the source tree */
#include <nvlend/rpc_client.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
	struct nvl_rpc_client *c;
	json_t *res = NULL, *err = NULL, *p;
	int rc;

	if (argc != 2)
		return 2;
	rc = nvl_rpc_client_connect(argv[1], 5000, &c);
	if (rc < 0) {
		fprintf(stderr, "connect: %s\n", strerror(-rc));
		return 1;
	}
	if (nvl_rpc_client_call(c, "nvlend_get_version", NULL, &res, &err) != 0)
		return 1;
	printf("version %s\n", json_string_value(json_object_get(res, "version")));
	json_decref(res);
	p = json_pack("{s:s, s:i, s:i}", "name", "lib0", "num_blocks", 2048, "block_size", 512);
	rc = nvl_rpc_client_call(c, "bdev_malloc_create", p, &res, &err);
	json_decref(p);
	if (rc != 0)
		return 1;
	printf("created %s\n", json_string_value(res));
	json_decref(res);
	rc = nvl_rpc_client_call(c, "no_such_method", NULL, &res, &err);
	printf("unknown method: rc %s code %lld\n", rc == -EREMOTEIO ? "EREMOTEIO" : "?",
	       (long long)json_integer_value(json_object_get(err, "code")));
	json_decref(err);
	nvl_rpc_client_close(c);
	rc = nvl_rpc_client_connect("/nonexistent/nvlend.sock", 1000, &c);
	printf("no daemon: %s\n", rc == -ENOENT ? "ENOENT" : "?");
	return 0;
}
EOF
# shellcheck disable=SC2046
cc -Wall -Werror -o "$T/client" "$T/client.c" $(pkg-config --cflags --libs nvlend) 2>"$T/cc.log" ||
	{ cat "$T/cc.log" >&2; fail "cannot build against the installed libnvlend with pkg-config"; }
# static too
# shellcheck disable=SC2046
cc -Wall -Werror -o "$T/client-static" "$T/client.c" "$P/lib/libnvlend.a" \
	$(pkg-config --static --cflags --libs nvlend | sed 's/-lnvlend//') 2>"$T/cc2.log" ||
	{ cat "$T/cc2.log" >&2; fail "cannot link the installed static libnvlend"; }

# the installed daemon, driven by the installed CLI and the program
BIN=$P/bin
start_nvlendd
# (capture first: grep -q closing the pipe early would SIGPIPE ldd under pipefail)
ldd_out=$(LD_LIBRARY_PATH=$P/lib ldd "$T/client")
grep -q "libnvlend.so.0 => $P/lib/libnvlend.so.0" <<<"$ldd_out" ||
	fail "client does not resolve the installed libnvlend: $ldd_out"
out=$(LD_LIBRARY_PATH=$P/lib "$T/client" "$NVLEND_SOCKET") || fail "client run: $out"
assert_contains "$out" "version nvlend v" "client output"
assert_contains "$out" "created lib0" "client output"
assert_contains "$out" "unknown method: rc EREMOTEIO code -32601" "client output"
assert_contains "$out" "no daemon: ENOENT" "client output"
"$P/bin/nvlend" bdev list | grep_q '^lib0 ' || fail "installed CLI does not see lib0"
"$P/bin/nvlend" bdev delete lib0 || fail "installed CLI: bdev delete"
out=$("$T/client-static" "$NVLEND_SOCKET" 2>&1) || fail "static client run: $out"
assert_contains "$out" "unknown method: rc EREMOTEIO" "static client"
stop_nvlendd

# DESTDIR staging keeps PREFIX in the installed files
make -s -C "$TOP" install DESTDIR="$T/stage" PREFIX=/opt/nvl >/dev/null 2>&1 || fail "make install DESTDIR"
[ -x "$T/stage/opt/nvl/bin/nvlendd" ] || fail "DESTDIR install"
grep -qx 'prefix=/opt/nvl' "$T/stage/opt/nvl/lib/pkgconfig/nvlend.pc" || fail "pc prefix with DESTDIR"
pass
