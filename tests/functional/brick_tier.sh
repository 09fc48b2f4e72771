#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Memory brick tiering: a brick with 4x more capacity than its fast tier.
# Allocate, fill and unmap every block, then map each again (forward and
# backward) and verify its content, over the local and the TCP transport;
# mapping more blocks than the fast tier holds is refused with ENOMEM.
# timeout: 120
source "$(dirname "$0")/common.sh"

HELPER=$BUILD/tests/helpers/brick_test
[ -x "$HELPER" ] || fail "missing $HELPER (make tests)"
start_nvlendd
port=$(free_port) || fail "no free port"
fast=/dev/shm/${NVLEND_SHM_PREFIX}t0
on_exit "rm -rf $fast"
nvlend brick create t0 --fast "$fast" --slow "$T/slow" --capacity 32 --fast-blocks 8 >/dev/null ||
	fail "create"
nvlend brick create t1 --fast "$T/fast1" --slow "$T/slow1" --capacity 16 --fast-blocks 4 >/dev/null ||
	fail "create t1"
nvlend brick listen t0 shm "$T/t0.sock" || fail "listen"
nvlend brick listen t1 tcp 127.0.0.1 "$port" || fail "listen"

"$HELPER" tier "brick+shm://$T/t0.sock?name=t0" 32 || fail "tiering over shm (tmpfs fast tier)"
"$HELPER" tier "brick+tcp://127.0.0.1:$port/t1" 16 || fail "tiering over tcp (disk fast tier)"
show=$(nvlend --json brick list t0)
[ "$(echo "$show" | json_get '[0]["fast_tier_blocks"]')" -le 8 ] || fail "over budget: $show"
[ "$(echo "$show" | json_get '[0]["slow_tier_blocks"]')" -ge 24 ] || fail "slow tier: $show"
[ "$(echo "$show" | json_get '[0]["stats"]["fetches"]')" -ge 48 ] || fail "fetches: $show"
[ "$(ls "$T/slow" | grep -c '^blk-')" = "$(echo "$show" | json_get '[0]["slow_tier_blocks"]')" ] ||
	fail "slow tier directory does not match the counters"
# the slow tier survives a restart of the brick: every block still verifies
nvlend brick delete t1 || fail "delete t1"
nvlend brick create t1 --fast "$T/fast1" --slow "$T/slow1" --capacity 16 --fast-blocks 4 >/dev/null ||
	fail "re-create t1"
nvlend brick listen t1 tcp 127.0.0.1 "$port" || fail "listen"
[ "$(nvlend --json brick info "brick+tcp://127.0.0.1:$port/t1" | json_get '["allocated_blocks"]')" = 16 ] ||
	fail "blocks lost across delete/create"
pass
