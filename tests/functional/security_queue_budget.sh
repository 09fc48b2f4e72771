#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Security item 5 (issue 21), the per-host descriptor budgets of the shm
# transport: every I/O queue costs the daemon descriptors (a region per SQ
# and CQ, a doorbell eventfd per SQ, an eventfd per interrupt vector), so a
# host NQN may hold max_queues_per_host queues and max_vectors_per_host
# vectors over all its controllers, and all hosts max_queues_total /
# max_vectors_total. Here 4 queues (2 pairs) and 1 vector per host, 8
# queues in all:
#   - host A runs 2 jobs (2 pairs): the second CQ gets no vector and is
#     polled (the I/O still completes, verified);
#   - meanwhile a third pair of host A is refused, host B's 2 pairs are not;
#   - host C is refused by the daemon-wide budget while A and B hold 8;
#   - the refusals are logged (rate-limited) naming the budget; RPC answers.
# timeout: 90
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
start_nvlendd
rpc nvmf_create_transport '{"trtype":"SHM","max_queues_per_host":4,"max_vectors_per_host":1,"max_queues_total":8}' \
	>/dev/null || fail "nvmf_create_transport refused the queue budgets"
rpc nvmf_get_transports | grep_q '"max_vectors_per_host": 1' || fail "budget not in nvmf_get_transports"
out=$(rpc nvmf_create_transport '{"trtype":"SHM","max_queues_per_host":-1}' 2>&1) && fail "negative budget accepted"
assert_contains "$out" "max_queues_per_host" "bad budget message"
shm_target qb 16M
H=nqn.2026-01.io.nvlend.test:host
# each host verifies its own 4 MiB (verify assumes nobody else writes there)
perf() {
	local off
	case $1 in *-a) off=0 ;; *-b) off=5M ;; *) off=10M ;; esac
	"$BIN/nvlend-perf" "$URI" --hostnqn "$1" --numjobs="$2" --runtime="$3" --rw=randrw --verify \
		--bs=4k --iodepth=4 --offset=$off --size=4M
}

perf $H-a 2 4 >"$T/a.out" 2>&1 &
apid=$!
on_exit "kill $apid 2>/dev/null"
wait_until 10 sh -c "[ \$(nvlend rpc nvmf_subsystem_get_qpairs '{\"nqn\":\"$NQN\"}' | grep -c '\"qid\": [1-9]') -ge 2 ]" ||
	fail "host a's queues never appeared"
out=$(perf $H-a 1 1 2>&1) && fail "host a got a third queue pair: $out"
assert_contains "$out" "queue pair" "host a's third pair refused"
perf $H-b 2 1 >"$T/b.out" 2>&1 || fail "host b (its own budget): $(cat "$T/b.out")"
wait "$apid" || fail "host a: $(cat "$T/a.out")"
assert_contains "$(cat "$T/a.out")" "errors: 0" "host a's I/O"
grep_q "without interrupt vector" <"$DAEMON_LOG" || fail "no log line for the polled CQ"
grep_q "max_queues_per_host" <"$DAEMON_LOG" || fail "no log line for the refused queue"

# daemon-wide: A and B hold 4 each, C gets nothing
perf $H-a 2 4 >"$T/a2.out" 2>&1 &
apid=$!
perf $H-b 2 4 >"$T/b2.out" 2>&1 &
bpid=$!
on_exit "kill $bpid 2>/dev/null"
wait_until 10 sh -c "[ \$(nvlend rpc nvmf_subsystem_get_qpairs '{\"nqn\":\"$NQN\"}' | grep -c '\"qid\": [1-9]') -ge 4 ]" ||
	fail "a's and b's queues never appeared"
out=$(perf $H-c 1 1 2>&1) && fail "host c got a queue beyond max_queues_total: $out"
nvlend -t 2 status >/dev/null || fail "RPC while the budgets are spent"
wait "$apid" || fail "host a (2): $(cat "$T/a2.out")"
wait "$bpid" || fail "host b (2): $(cat "$T/b2.out")"
grep_q "max_queues_total" <"$DAEMON_LOG" || fail "no log line for the daemon-wide budget"
perf $H-c 1 1 >"$T/c.out" 2>&1 || fail "host c once the others left: $(cat "$T/c.out")"
stop_nvlendd
pass
