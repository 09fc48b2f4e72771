#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# One namespace, many hosts at once (the dis_nvme promise) over shm:
# three hosts, each in its own network namespace with its own host NQN and
# I/O queues, run at the same time; data written and synced by one is read
# back and verified by another; a host killed with -9 loses its controller
# and queues while the others keep running; a host that stops talking (SIGSTOP)
# loses its controller when the keep-alive timeout expires.
# timeout: 180
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
requires_root
requires ip

start_nvlendd --reactors 2
shm_target shared 64M
PERF="$BIN/nvlend-perf"
HA=nqn.2026-01.io.nvlend.test:host-a
HB=nqn.2026-01.io.nvlend.test:host-b
HC=nqn.2026-01.io.nvlend.test:host-c
if netns_new "nvlt-$$-a" && netns_new "nvlt-$$-b" && netns_new "nvlt-$$-c"; then
	NSA=(ip netns exec "nvlt-$$-a") NSB=(ip netns exec "nvlt-$$-b") NSC=(ip netns exec "nvlt-$$-c")
	log "hosts run in network namespaces nvlt-$$-{a,b,c}"
else
	NSA=() NSB=() NSC=()
	log "network namespaces unavailable: hosts are separate processes with their own NQNs"
fi

# 1. host A writes self-describing blocks over the first 16 MiB and verifies them
"${NSA[@]}" "$PERF" "$URI" --hostnqn=$HA --rw=write --bs=4k --iodepth=16 --size=16M \
	--io_limit=16M --verify >"$T/a1.out" 2>&1 || { cat "$T/a1.out"; fail "host A write+verify"; }
# 2. host B reads them back and checks each block's CRC and position
"${NSB[@]}" "$PERF" "$URI" --hostnqn=$HB --rw=read --bs=4k --iodepth=8 --size=16M \
	--io_limit=16M --verify >"$T/b1.out" 2>&1 || { cat "$T/b1.out"; fail "host B verify of A's data"; }
grep -q 'verify: 32768 blocks checked (32768 written by others, 0 of unknown content, not judged), 0 errors' "$T/b1.out" ||
	{ cat "$T/b1.out"; fail "host B did not see exactly A's 4096 blocks"; }

# 3. all three at once, each with its own queue pairs; C runs until killed
"${NSA[@]}" "$PERF" "$URI" --hostnqn=$HA --rw=randrw --bs=4k --iodepth=8 --numjobs=2 \
	--offset=16M --size=16M --runtime=6 --verify >"$T/a2.out" 2>&1 &
PA=$!
"${NSB[@]}" "$PERF" "$URI" --hostnqn=$HB --rw=randrw --bs=8k --iodepth=4 \
	--offset=32M --size=16M --runtime=6 --verify >"$T/b2.out" 2>&1 &
PB=$!
"${NSC[@]}" "$PERF" "$URI" --hostnqn=$HC --rw=randread --bs=4k --iodepth=4 \
	--runtime=60 >"$T/c2.out" 2>&1 &
PC=$!
on_exit "kill -9 $PA $PB $PC"
wait_until 10 bash -c "[ \"\$(nvlend rpc nvmf_subsystem_get_controllers '{\"nqn\":\"$NQN\"}' | grep -c hostnqn)\" = 3 ]" ||
	fail "expected 3 controllers: $(rpc nvmf_subsystem_get_controllers "{\"nqn\":\"$NQN\"}")"
# hosts create their queue pairs right after connecting: wait for all 7
wait_until 10 bash -c "[ \"\$(nvlend rpc nvmf_subsystem_get_qpairs '{\"nqn\":\"$NQN\"}' | grep -c '\"qid\"')\" = 7 ]" ||
	fail "expected 7 queue pairs (3 admin + 4 I/O): $(rpc nvmf_subsystem_get_qpairs "{\"nqn\":\"$NQN\"}")"
rpc nvmf_subsystem_get_controllers "{\"nqn\":\"$NQN\"}" >"$T/ctrlrs.json"
/usr/bin/python3 - "$T/ctrlrs.json" "$HA" "$HB" "$HC" <<'PY' || fail "controller table wrong"
import json, sys
c = json.load(open(sys.argv[1]))
hosts = {x["hostnqn"]: x for x in c}
assert set(hosts) == set(sys.argv[2:5]), hosts.keys()
assert len({x["cntlid"] for x in c}) == 3, "cntlids not distinct"
assert hosts[sys.argv[2]]["num_io_qpairs"] == 2, hosts[sys.argv[2]]
assert hosts[sys.argv[3]]["num_io_qpairs"] == 1
PY

# 4. kill -9 host C in the middle: its controller goes, A and B carry on
sleep 1
kill -9 $PC
wait $PC 2>/dev/null
wait_until 5 bash -c "[ \"\$(nvlend rpc nvmf_subsystem_get_controllers '{\"nqn\":\"$NQN\"}' | grep -c hostnqn)\" = 2 ]" ||
	fail "host C's controller survived kill -9"
grep -q "$HC" "$T/ctrlrs.json" || fail "bookkeeping"
wait $PA || { cat "$T/a2.out"; fail "host A failed while C died"; }
wait $PB || { cat "$T/b2.out"; fail "host B failed while C died"; }
grep -q 'errors: 0' "$T/a2.out" && grep -q ', 0 errors' "$T/a2.out" || fail "host A errors"
grep -q 'errors: 0' "$T/b2.out" && grep -q ', 0 errors' "$T/b2.out" || fail "host B errors"
log "A: $(grep -m1 'read ' "$T/a2.out" | xargs); B: $(grep -m1 'read ' "$T/b2.out" | xargs)"

# 5. a host that stops talking loses its controller after its keep-alive timeout
"${NSC[@]}" "$PERF" "$URI" --hostnqn=$HC --rw=randread --iodepth=1 --runtime=60 --kato=1000 \
	>"$T/c3.out" 2>&1 &
PC=$!
on_exit "kill -9 $PC"
wait_until 10 bash -c "nvlend rpc nvmf_subsystem_get_controllers '{\"nqn\":\"$NQN\"}' | grep -q $HC" ||
	fail "host C did not connect again"
kill -STOP $PC
start=$(date +%s.%N)
wait_until 10 bash -c "! nvlend rpc nvmf_subsystem_get_controllers '{\"nqn\":\"$NQN\"}' | grep -q $HC" ||
	fail "stopped host kept its controller beyond the keep-alive timeout"
el=$(awk "BEGIN{print $(date +%s.%N) - $start}")
log "stopped host dropped after ${el}s (kato 1 s)"
grep -q "keep-alive timeout" "$DAEMON_LOG" || fail "no keep-alive timeout logged"
assert_eq "$(rpc nvmf_get_subsystems "{\"nqn\":\"$NQN\"}" | json_get '[0]["keep_alive_expiries"]')" 1 \
	"keep_alive_expiries of the subsystem"
kill -9 $PC; wait $PC 2>/dev/null
# everything the dead hosts held is gone: no queue region left behind
sleep 0.3
left=$(ls -l /proc/$WORKER_PID/fd | grep -c "memfd:nvlend-c.*-[sc]q" || true)
[ "$left" = 0 ] || fail "$left queue regions (memfds) still held by the daemon after the hosts died"
nvlend status >/dev/null || fail "daemon not serving"
stop_nvlendd
pass
