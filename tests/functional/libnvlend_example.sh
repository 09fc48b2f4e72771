#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The documented example (docs/example/hello_nvlend.c) builds against an
# installed libnvlend with pkg-config alone (headers self-contained, shared
# library exporting what the header declares) and runs against a daemon.
# timeout: 120
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
requires cc pkg-config

make -C "$TOP" --no-print-directory -s install PREFIX="$T/prefix" BUILD="$BUILD" >"$T/install.log" 2>&1 ||
	{ cat "$T/install.log"; fail "make install"; }
export PKG_CONFIG_PATH=$T/prefix/lib/pkgconfig
# a sanitizer build installs an instrumented library: the program must carry the runtime
san=()
case "$BUILD" in *asan*) san=(-fsanitize=address,undefined) ;; esac
cc -Wall -Werror "${san[@]}" -o "$T/hello" "$TOP/docs/example/hello_nvlend.c" $(pkg-config --cflags --libs nvlend) ||
	fail "the example does not build against the installed library"
# only the documented API is exported
nm -D --defined-only "$T/prefix/lib/libnvlend.so.0" | awk '{print $3}' | grep -v '^nvl_' | grep -v '^NVLEND' &&
	fail "libnvlend exports symbols outside nvl_*"

start_nvlendd
shm_target hello 16M
LD_LIBRARY_PATH=$T/prefix/lib "$T/hello" "$URI" >"$T/out" 2>&1 || { cat "$T/out"; fail "example run"; }
cat "$T/out" >&2
grep -q 'read back: "hello from controller' "$T/out" || fail "wrong data read back"
grep -q '8 asynchronous reads completed' "$T/out" || fail "async reads"
stop_nvlendd
pass
