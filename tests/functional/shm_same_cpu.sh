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
# Second part (with a second CPU): three hosts pinned to one CPU, the daemon
# on another, each host spinning long between completions. A spinning host
# offers its CPU to the others now and then (sched_yield, more often when
# another task did run); all three must finish with every I/O verified.
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
errs = perf["errors"] + perf["verify"]["errors"]
if errs or perf["verify"]["checked"] == 0:
    sys.exit("nvlend-perf reported %d errors" % errs)
PY
echo "host and daemon on CPU $cpu, both sleeping: no stale CQ head"
stop_nvlendd

other=$(/usr/bin/python3 -c "import os; c=sorted(os.sched_getaffinity(0)); print(next((x for x in c if x != $cpu), ''))")
if [ -z "$other" ]; then
	log "only CPU $cpu is usable: the three-hosts-on-one-CPU part is skipped"
	pass
fi
start_nvlendd --cores "$other"
shm_target threehosts 64M
pids=()
for i in 0 1 2; do
	taskset -c "$cpu" "$BIN/nvlend-perf" "$URI" --rw=randrw --bs=4k --iodepth=4 --size=8M \
		--offset=$((i * 8))M --runtime=2 --spin_us=200000 --verify --json \
		--hostnqn=nqn.2026-01.io.nvlend.test:spinner$i >"$T/spin$i.json" 2>"$T/spin$i.err" &
	pids+=($!)
	on_exit "kill $! 2>/dev/null"
done
for i in 0 1 2; do
	wait "${pids[$i]}" || { cat "$T/spin$i.err" >&2; fail "host $i (spinning, CPU $cpu) failed"; }
done
/usr/bin/python3 - "$T"/spin*.json <<'PY' || fail "three spinning hosts"
import json, sys
for f in sys.argv[1:]:
    d = json.load(open(f))
    n = sum(d[s]["ios"] for s in ("read", "write") if s in d)
    errs = d["errors"] + d["verify"]["errors"]
    print("%s: %d I/Os, %d blocks verified, %d errors" % (f.split("/")[-1], n, d["verify"]["checked"], errs))
    if n == 0 or errs or d["verify"]["checked"] == 0:
        sys.exit("a host sharing its CPU with two spinning hosts did no I/O or had errors")
PY
echo "three hosts spinning on CPU $cpu, daemon on CPU $other: all verified"
pass
