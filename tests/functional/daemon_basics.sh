#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The daemon and CLI basics of the foundation issue: create/list/delete
# bdevs through the CLI, JSON-RPC error objects for hostile input while the
# daemon keeps serving, stale-socket takeover after kill -9, refusal beside
# a live daemon, config save and replay, SIGTERM shutdown.
# timeout: 120
source "$(dirname "$0")/common.sh"
requires socat

start_nvlendd

out=$(nvlend bdev create ram r0 64M) || fail "bdev create ram"
assert_eq "$out" "created bdev r0: 64.0 MiB (131072 x 512-byte blocks) in RAM" "create says what it did"
assert_eq "$(nvlend --json bdev create ram r9 1M | json_get '["num_blocks"]')" 2048 "create --json: the bdev"
nvlend bdev delete r9 | grep_q -x "deleted ram bdev r9" || fail "delete says what it did"
nvlend bdev list | grep_q '^r0 *ram *64.0 MiB *512 *131072' || fail "bdev list does not show r0: $(nvlend bdev list)"
[ "$(nvlend --json bdev list | json_get '[0]["num_blocks"]')" = 131072 ] || fail "json num_blocks"

# SPDK-style params, name generated like SPDK's
out=$(rpc bdev_malloc_create '{"num_blocks": 2048, "block_size": 4096, "optimal_io_boundary": 0, "md_size": 0, "dif_type": 0}')
assert_eq "$out" '"Malloc0"' "SPDK-style create"

# garbage -> -32700, daemon stays up
resp=$(printf 'garbage\n' | socat -t 2 - "UNIX-CONNECT:$NVLEND_SOCKET")
assert_contains "$resp" '"code":-32700' "garbage answer"
resp=$(raw_rpc '{"jsonrpc":"2.0","method":"bdev_get_bdevs","params":{"bogus":1},"id":7}')
assert_contains "$resp" '"code":-32602' "unknown param"
assert_contains "$resp" '"id":7' "id echoed"
resp=$(raw_rpc '{"jsonrpc":"2.0","method":"no_such_method","id":"x"}')
assert_contains "$resp" '"code":-32601' "unknown method"
resp=$(raw_rpc '{"method":"bdev_get_bdevs","id":1}')
assert_contains "$resp" '"code":-32600' "missing jsonrpc"
resp=$(raw_rpc '[]')
assert_contains "$resp" '"code":-32600' "empty batch"
resp=$(raw_rpc '[{"jsonrpc":"2.0","method":"nvlend_get_version","id":1},{"jsonrpc":"2.0","method":"nope","id":2},{"jsonrpc":"2.0","method":"log_get_level"}]')
n=$(printf '%s' "$resp" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d), d[0]["id"], d[1]["error"]["code"])')
assert_eq "$n" "2 1 -32601" "batch answers (notification gets none)"
# two objects back to back in one write, SPDK rpc.py style (no newline)
resp=$(raw_rpc '{"jsonrpc":"2.0","method":"log_get_level","id":1}{"jsonrpc":"2.0","method":"log_get_level","id":2}')
[ "$(printf '%s\n' "$resp" | grep -c '"result":0')" = 2 ] || fail "concatenated requests: $resp"
# an oversized request is refused, the daemon survives
head -c 2000000 /dev/zero | tr '\0' ' ' | { printf '{"jsonrpc":"2.0","method":"x","params":"'; cat; } |
	socat -t 2 - "UNIX-CONNECT:$NVLEND_SOCKET" >"$T/big.out" 2>/dev/null || true
grep -q -- '-32700' "$T/big.out" || fail "oversized request not refused"
nvlend status >/dev/null || fail "daemon died after hostile input"

# many concurrent clients
pids=()
for i in $(seq 1 40); do nvlend rpc nvlend_get_version >/dev/null & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent client failed"; done
nvlend bdev list >/dev/null || fail "daemon unusable after concurrent clients"

# deletion refused of unknown / works on existing
expect_fail nvlend bdev delete nosuch
nvlend bdev delete Malloc0 || fail "delete Malloc0"

# file bdev on a real temp file
truncate -s 16M "$T/disk.img"
nvlend bdev create file f0 "$T/disk.img" >/dev/null || fail "file bdev"
nvlend --json bdev list f0 | grep_q '"filename"' || fail "file bdev info"

# save_config, replay into a fresh daemon
nvlend save-config -o "$T/cfg.json" || fail "save-config"
grep -q bdev_uring_create "$T/cfg.json" || fail "config lacks the file bdev"
uuid=$(nvlend --json bdev list r0 | json_get '[0]["uuid"]')
stop_nvlendd
start_nvlendd -c "$T/cfg.json"
assert_eq "$(nvlend --json bdev list r0 | json_get '[0]["uuid"]')" "$uuid" "uuid after replay"
nvlend bdev list f0 >/dev/null || fail "f0 after replay"

# a second daemon on the same socket refuses to start
expect_fail "$BIN/nvlendd" -s "$NVLEND_SOCKET"
nvlend status >/dev/null || fail "first daemon harmed by the second"

# kill -9, restart on the stale socket without manual cleanup
kill9_nvlendd
[ -S "$NVLEND_SOCKET" ] || fail "expected a stale socket after kill -9"
NVLEND_SOCKET_OVERRIDE=$NVLEND_SOCKET start_nvlendd
nvlend status | grep_q running || fail "restart after kill -9"
grep -q "stale socket" "$DAEMON_LOG" || fail "no stale-socket notice"

# log level at run time
nvlend log level 2 && [ "$(nvlend log level)" = 2 ] || fail "log level"
expect_fail nvlend log level 7

# not running -> exit 3 with a clear message
stop_nvlendd
set +e
msg=$(nvlend status 2>&1); rc=$?
set -e
assert_eq "$rc" 3 "exit status without daemon"
assert_contains "$msg" "not running" "message without daemon"
pass
