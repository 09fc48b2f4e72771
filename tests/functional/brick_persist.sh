#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Memory brick crash recovery: clients churn (alloc, write, flush, unmap, free)
# over the local and the TCP transport on bricks whose fast tier is smaller
# than their working set (so tier moves are in flight too), the daemon is
# killed with SIGKILL mid-run, restarted from its saved configuration, and
# the block map must equal exactly what was acknowledged, with every flushed
# byte intact. One brick has its fast tier on a disk directory (fsync
# persistence), one on tmpfs (volatile: survives a daemon crash).
# timeout: 180
source "$(dirname "$0")/common.sh"

HELPER=$BUILD/tests/helpers/brick_test
[ -x "$HELPER" ] || fail "missing $HELPER (make tests)"
start_nvlendd
port=$(free_port) || fail "no free port"
vfast=/dev/shm/${NVLEND_SHM_PREFIX}vol
nvlend brick create disk --fast "$T/disk-fast" --slow "$T/disk-slow" --capacity 24 --fast-blocks 6 >/dev/null ||
	fail "create disk brick"
nvlend brick create vol --fast "$vfast" --slow "$T/vol-slow" --capacity 24 --fast-blocks 6 >/dev/null ||
	fail "create volatile brick"
on_exit "rm -rf $vfast"
for b in disk vol; do
	nvlend brick listen $b shm "$T/$b.sock" || fail "shm listener"
	nvlend brick listen $b tcp 127.0.0.1 "$port" || fail "tcp listener"
done
nvlend save-config -o "$T/cfg.json" || fail "save-config"
grep -q brick_create "$T/cfg.json" || fail "save_config lacks brick_create"
grep -q brick_add_listener "$T/cfg.json" || fail "save_config lacks brick_add_listener"

# two clients per brick, one per transport, on disjoint address ranges
for round in 1 2; do
	pids=()
	for b in disk vol; do
		"$HELPER" churn "brick+shm://$T/$b.sock?name=$b" 0x100000000 10 30 "$T/$b-shm.log" \
			>"$T/$b-shm.out" 2>&1 & pids+=($!)
		"$HELPER" churn "brick+tcp://127.0.0.1:$port/$b" 0x200000000 10 30 "$T/$b-tcp.log" \
			>"$T/$b-tcp.out" 2>&1 & pids+=($!)
	done
	on_exit "kill ${pids[*]}"
	sleep $((1 + round))
	[ "$(wc -l <"$T/disk-tcp.log")" -gt 4 ] || fail "churn makes no progress: $(cat "$T"/*.out)"
	kill9_nvlendd
	for p in "${pids[@]}"; do
		wait "$p" || fail "a churn client failed: $(cat "$T"/*.out)"
	done
	log "round $round: $(wc -l "$T"/*.log | tail -1 | awk '{print $1}') log lines before SIGKILL"
	NVLEND_SOCKET_OVERRIDE=$NVLEND_SOCKET start_nvlendd -c "$T/cfg.json"
	for b in disk vol; do
		"$HELPER" verify-log "brick+shm://$T/$b.sock?name=$b" 0x100000000 10 "$T/$b-shm.log" ||
			fail "$b brick (local client) after SIGKILL"
		"$HELPER" verify-log "brick+tcp://127.0.0.1:$port/$b" 0x200000000 10 "$T/$b-tcp.log" ||
			fail "$b brick (tcp client) after SIGKILL"
	done
	show=$(nvlend --json brick list disk)
	[ "$(echo "$show" | json_get '[0]["persistence"]')" = fsync ] || fail "disk brick persistence"
	log "after recovery: disk brick $(echo "$show" | json_get '[0]["fast_tier_blocks"]') fast, $(echo "$show" | json_get '[0]["slow_tier_blocks"]') slow, $(echo "$show" | json_get '[0]["stats"]["evictions"]') evictions"
done
# the checker itself: a block whose alloc was cut by the crash may hold zeroes or
# its own data, never foreign bytes
X=0x300000000
printf 'F %x\nP %x a 7\n' $X $X >"$T/fake.log"
"$HELPER" verify-log "brick+shm://$T/disk.sock?name=disk" $X 1 "$T/fake.log" ||
	fail "verify-log: an absent pending block is fine"
nvlend brick alloc "brick+shm://$T/disk.sock?name=disk" $X || fail "alloc $X"
"$HELPER" verify-log "brick+shm://$T/disk.sock?name=disk" $X 1 "$T/fake.log" ||
	fail "verify-log: a zeroed pending block is fine"
head -c 512 /dev/urandom | nvlend brick write "brick+shm://$T/disk.sock?name=disk" $X --offset 1M ||
	fail "write $X"
out=$("$HELPER" verify-log "brick+shm://$T/disk.sock?name=disk" $X 1 "$T/fake.log" 2>&1) &&
	fail "verify-log accepted foreign bytes in a pending block"
assert_contains "$out" "neither zero nor its own data"
nvlend brick free "brick+shm://$T/disk.sock?name=disk" $X || fail "free $X"
# no temporary files survive recovery
leftover=$(ls -a "$T/disk-fast" "$T/disk-slow" "$vfast" "$T/vol-slow" | grep -c '^\.tmp-' || true)
assert_eq "$leftover" 0 "temporary files after recovery"
pass
