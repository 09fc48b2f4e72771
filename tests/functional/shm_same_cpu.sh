#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A host and the daemon sharing one CPU, both sleeping between I/Os
# (nvlendd --spin-us 0, nvlend-perf --spin_us=0), QD1 on a RAM namespace.
#
# Here the target runs as soon as the host's completion callback submits the
# next command, before the host returns from its completion loop. The host
# must free each CQ slot (CQ head doorbell) before it calls the callback:
# published only after the loop, the head went a whole lap stale, the target
# saw its CQ full and parked the completion, and with both sides asleep the
# I/O waited for the next keep-alive tick (~100 ms; 200 IOPS instead of
# ~50 K). The check counts, it does not time: the target's
# nvmf_subsystem_get_qpairs "cq_full_waits" (completions that found the CQ
# full) must stay 0 while thousands of I/Os run, and every I/O must complete
# and verify.
# timeout: 120
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
requires /usr/bin/python3 taskset

cpu=$(taskset -pc $$ | sed 's/.*: *//; s/[,-].*//')
[ -n "$cpu" ] || fail "cannot tell which CPU this shell may run on"
start_nvlendd --cores "$cpu" --spin-us 0
shm_target samecpu 64M

taskset -c "$cpu" "$BIN/nvlend-perf" "$URI" --rw=randrw --bs=4k --iodepth=1 --size=16M \
	--runtime=4 --spin_us=0 --verify --json >"$T/perf.json" 2>"$T/perf.err" &
perf=$!
on_exit "kill $perf 2>/dev/null"
# read the queue's counters while it runs (the qpair goes away at exit)
wait_until 10 sh -c "'$BIN/nvlend' -s '$NVLEND_SOCKET' rpc nvmf_subsystem_get_qpairs \
	'{\"nqn\":\"$NQN\"}' | grep -q cq_full_waits" || fail "the I/O queue never showed up"
sleep 2
rpc nvmf_subsystem_get_qpairs "{\"nqn\":\"$NQN\"}" >"$T/qpairs.json" || fail "get_qpairs"
wait "$perf" || { cat "$T/perf.err" >&2; fail "nvlend-perf failed"; }
/usr/bin/python3 - "$T/qpairs.json" "$T/perf.json" <<'PY' || fail "counters"
import json, sys
qs = [q for q in json.load(open(sys.argv[1])) if q.get("qid", 0) > 0]
perf = json.load(open(sys.argv[2]))
if not qs:
    sys.exit("no I/O queue in nvmf_subsystem_get_qpairs")
q = qs[0]
print("I/O queue after ~2 s: completed %d, cq_full_waits %d, interrupts %d"
      % (q["completed"], q["cq_full_waits"], q["interrupts"]))
if q["completed"] == 0:
    sys.exit("no I/O completed")
if q["cq_full_waits"] != 0:
    sys.exit("%d completions found a QD1 queue's CQ full: the host's CQ head is stale"
             % q["cq_full_waits"])
errs = perf.get("errors", 0) + perf.get("verify_errors", 0)
if errs:
    sys.exit("nvlend-perf reported %d errors" % errs)
PY
echo "host and daemon on CPU $cpu, both sleeping: no stale CQ head"
pass
