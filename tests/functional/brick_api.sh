#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Memory brick block API over both transports: every API error (EEXIST,
# ENOSPC, ENOENT, EINVAL, EACCES, read-only refusal), shared and exclusive
# maps across two clients, revocation (also of a local mapping a client kept:
# it must fault), hostile messages on raw connections, the CLI, brick RPCs.
# timeout: 120
source "$(dirname "$0")/common.sh"
requires socat

HELPER=$BUILD/tests/helpers/brick_test
[ -x "$HELPER" ] || fail "missing $HELPER (make tests)"
start_nvlendd
fast=/dev/shm/${NVLEND_SHM_PREFIX}b0
on_exit "rm -rf $fast"
port=$(free_port) || fail "no free port"
nvlend brick create b0 --fast "$fast" --slow "$T/slow0" --capacity 8 >/dev/null || fail "create b0"
nvlend brick listen b0 shm "$T/b.sock" || fail "shm listener"
nvlend brick listen b0 tcp 127.0.0.1 "$port" || fail "tcp listener"
SHM="brick+shm://$T/b.sock?name=b0"
TCP="brick+tcp://127.0.0.1:$port/b0"

"$HELPER" api "$SHM" || fail "api over shm"
"$HELPER" api "$TCP" || fail "api over tcp"
"$HELPER" hostile "$SHM" || fail "hostile input over shm"
"$HELPER" hostile "$TCP" || fail "hostile input over tcp"
nvlend status >/dev/null || fail "daemon died"

# RPC-level errors
expect_fail nvlend brick create b0 --fast "$fast" --capacity 8           # exists
expect_fail nvlend brick create b1 --fast "$fast" --capacity 8           # dirs locked by b0
expect_fail nvlend brick create b1 --fast "$T/f1" --capacity 8 --fast-blocks 2  # no slow tier
expect_fail nvlend brick listen b0 tcp 127.0.0.1 "$port"                  # already there
expect_fail nvlend brick listen nosuch tcp 127.0.0.1 "$port"
resp=$(rpc brick_create "{\"name\":\"b1\",\"fast_dir\":\"rel/dir\",\"capacity_blocks\":1}" 2>&1) &&
	fail "relative dir accepted"
assert_contains "$resp" "absolute"

# CLI round trip, both transports, sizes and hex addresses
nvlend brick alloc "$SHM" 2M || fail "cli alloc"
nvlend brick alloc "$TCP" 0x400000 || fail "cli alloc tcp"
rc=0
nvlend brick alloc "$TCP" 0x200000 2>"$T/err" || rc=$?
assert_eq "$rc" 1 "exit status of EEXIST"
assert_contains "$(cat "$T/err")" "already allocated"
expect_fail nvlend brick alloc "$TCP" 0x1000           # unaligned: usage error
expect_fail nvlend brick free "$TCP" 64M               # not allocated
head -c 100000 /dev/urandom >"$T/in"
nvlend brick write "$SHM" 2M --offset 4k <"$T/in" || fail "cli write shm"
nvlend brick read "$TCP" 2M --offset 4k --length 100000 >"$T/out" || fail "cli read tcp"
cmp "$T/in" "$T/out" || fail "shm write / tcp read differ"
nvlend brick write "$TCP" 4M --offset 1M <"$T/in" || fail "cli write tcp"
nvlend brick read "$SHM" 4M --offset 1M --length 100000 >"$T/out" || fail "cli read shm"
cmp "$T/in" "$T/out" || fail "tcp write / shm read differ"
nvlend brick read "$SHM" 4M --length 4096 | cmp -s - <(head -c 4096 /dev/zero) || fail "untouched range not zero"
head -c 2097153 /dev/zero | expect_fail nvlend brick write "$SHM" 2M      # does not fit
nvlend brick extents "$TCP" | grep_q '^0x200000 *4.0 MiB *2 *fast' || fail "list: $(nvlend brick extents "$TCP")"
[ "$(nvlend --json brick info "$SHM" | json_get '["volatile"]')" = True ] || fail "tmpfs brick must report volatile"
[ "$(nvlend --json brick info "$SHM" | json_get '["local"]')" = True ] || fail "shm must be local"
[ "$(nvlend --json brick info "$TCP" | json_get '["local"]')" = False ] || fail "tcp is not local"
show=$(nvlend --json brick list b0)
[ "$(echo "$show" | json_get '[0]["allocated_blocks"]')" = 2 ] || fail "get_bricks allocated: $show"
[ "$(echo "$show" | json_get '[0]["persistence"]')" = volatile ] || fail "persistence: $show"
[ "$(echo "$show" | json_get '[0]["stats"]["revocations"]')" -ge 1 ] || fail "revocations not counted"
expect_fail nvlend brick info "brick+tcp://127.0.0.1:$port/nosuch"
expect_fail nvlend brick info "brick+shm://$T/b.sock"        # no name

# a brick on a disk directory reports fsync persistence
nvlend brick create d0 --fast "$T/dfast" --capacity 2 >/dev/null || fail "create d0"
[ "$(nvlend --json brick list d0 | json_get '[0]["persistence"]')" = fsync ] || fail "disk brick persistence"
nvlend brick listen d0 tcp 127.0.0.1 "$port" || fail "second brick on the same port"
nvlend brick alloc "brick+tcp://127.0.0.1:$port/d0" 0 || fail "alloc on d0"
nvlend brick extents "$TCP" | grep_q '^0x0 ' && fail "bricks sharing a listener must not mix"

# delete closes connections and keeps the files unless --purge
nvlend brick delete b0 || fail "delete b0"
expect_fail nvlend brick extents "$SHM"
nvlend brick create b0 --fast "$fast" --slow "$T/slow0" --capacity 8 >/dev/null || fail "re-create b0"
nvlend brick listen b0 tcp 127.0.0.1 "$port" || fail "listen again"
nvlend brick extents "$TCP" | grep_q '^0x200000 *4.0 MiB' || fail "blocks lost by delete + create"
nvlend brick delete b0 --purge || fail "purge"
[ -z "$(ls "$fast")" ] || fail "purge left files: $(ls -a "$fast")"
rm -rf "$fast"
pass
