#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# SNAP's suspend/resume of virtio-blk functions (live-upgrade issue, item 4),
# with the Python vhost-user front-end:
#   - virtio_blk_controller_suspend answers once the requests in flight
#     completed; the controller lists "suspended"; a request the front-end
#     submits then waits, and completes (with the data) after
#     virtio_blk_controller_resume; SNAP's "ctrl" and our "name" both work;
#   - a controller created with "suspended": true lets a front-end connect
#     and set up its queue but serves nothing until resumed; save_config
#     keeps it suspended;
#   - an unknown controller or no name is refused.
# timeout: 60
source "$(dirname "$0")/common.sh"
FE=$TESTS_DIR/functional/vhost_frontend.py
start_nvlendd
nvlend bdev create ram r0 8M >/dev/null || fail "bdev"
nvlend vblk create v0 r0 "$T/v0.sock" --queues 1 --queue-size 16 >/dev/null || fail "vblk create"
out=$(/usr/bin/python3 "$FE" suspend "$T/v0.sock" memfd "$BIN/nvlend" "$NVLEND_SOCKET" v0) ||
	fail "suspend/resume: $out"
assert_contains "$out" "SUSPEND_OK" "suspend/resume"
grep_q "vblk v0: suspended" <"$DAEMON_LOG" || fail "no log line for the suspend"

log "created suspended"
rpc virtio_blk_controller_create "{\"name\":\"v1\",\"bdev\":\"r0\",\"socket\":\"$T/v1.sock\",\"suspended\":true}" \
	>/dev/null || fail "create suspended"
assert_eq "$(nvlend --json vblk list v1 | json_get '[0]["state"]')" "suspended" "state of v1"
nvlend save-config | grep_q '"suspended": true' || fail "save_config lost the suspended state"
/usr/bin/python3 "$FE" rw "$T/v1.sock" memfd >"$T/fe1.out" 2>&1 &
fe=$!
on_exit "kill $fe 2>/dev/null"
sleep 1
kill -0 "$fe" 2>/dev/null || fail "the front-end was served while v1 was suspended: $(cat "$T/fe1.out")"
rpc virtio_blk_controller_resume '{"ctrl":"v1"}' >/dev/null || fail "resume v1"
wait "$fe" || fail "front-end of v1 after resume: $(cat "$T/fe1.out")"
assert_contains "$(cat "$T/fe1.out")" "FRONTEND_OK" "v1 served after resume"

log "the CLI"
assert_eq "$(nvlend vblk suspend v1)" \
	"suspended virtio-blk controller v1 (its requests in flight completed; new ones wait)" "vblk suspend"
assert_eq "$(nvlend --json vblk list v1 | json_get '[0]["state"]')" "suspended" "state after vblk suspend"
assert_eq "$(nvlend vblk resume v1)" "resumed virtio-blk controller v1" "vblk resume"

log "refusals"
out=$(rpc virtio_blk_controller_suspend '{"name":"nope"}' 2>&1) && fail "unknown controller suspended"
assert_contains "$out" "not found" "unknown controller"
out=$(rpc virtio_blk_controller_resume '{}' 2>&1) && fail "resume without a name"
assert_contains "$out" "name (or ctrl) is required" "no name"
stop_nvlendd
pass
