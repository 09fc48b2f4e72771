#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Reservations fence a dead host (issue: "A registers and takes Write
# Exclusive; B's writes fail with Reservation Conflict, B's reads work; A is
# killed; B preempts A and writes"), over shm with our host tools. Then
# Persist Through Power Loss: registrations and the reservation survive a
# daemon restart from the saved configuration.
# timeout: 120
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"

start_nvlendd
# a PTPL file whose directory is missing is refused when the namespace is added
nvlend bdev create ram nodir 1M >/dev/null || fail "bdev nodir"
rpc nvmf_create_subsystem '{"nqn":"nqn.2026-01.io.nvlend.test:nodir","allow_any_host":true}' >/dev/null ||
	fail "subsystem nodir"
out=$(rpc nvmf_subsystem_add_ns "{\"nqn\":\"nqn.2026-01.io.nvlend.test:nodir\",\"namespace\":{\"bdev_name\":\"nodir\",\"ptpl_file\":\"$T/missing/x.ptpl\"}}" 2>&1) &&
	fail "add_ns with a PTPL file in a missing directory accepted"
assert_contains "$out" "does not exist" "the refusal"
shm_target fence 32M ",\"ptpl_file\":\"$T/fence.ptpl\""
A=nqn.2026-01.io.nvlend.test:node-a
B=nqn.2026-01.io.nvlend.test:node-b
ns() { nvlend ns "$@"; }

# A registers key 0xA1 and takes Write Exclusive, then keeps writing (a live node)
ns resv register "$URI" --hostnqn $A --nrkey 0xA1 || fail "A register"
ns resv acquire "$URI" --hostnqn $A --crkey 0xA1 --type we || fail "A acquire"
"$BIN/nvlend-perf" "$URI" --hostnqn=$A --rw=randwrite --iodepth=4 --size=8M --runtime=60 \
	--verify >"$T/a.out" 2>&1 &
PA=$!
on_exit "kill -9 $PA"
wait_until 10 bash -c "nvlend rpc nvmf_subsystem_get_controllers '{\"nqn\":\"$NQN\"}' | grep -q node-a" ||
	fail "A's writer did not connect"

# B registers, may read, may not write
ns resv register "$URI" --hostnqn $B --nrkey 0xB2 || fail "B register"
echo "from B" | ns write "$URI" --hostnqn $B --lba 20000 2>"$T/bw.err" && fail "B wrote under A's reservation"
grep -q "reservation conflict" "$T/bw.err" || fail "B's write: $(cat "$T/bw.err")"
ns read "$URI" --hostnqn $B --lba 0 --count 8 >/dev/null || fail "B cannot read"
"$BIN/nvlend-perf" "$URI" --hostnqn=$B --rw=randread --iodepth=4 --io_limit=4M >"$T/br.out" 2>&1 ||
	fail "B's reads failed under Write Exclusive"
ns resv acquire "$URI" --hostnqn $B --crkey 0xB2 --type we 2>"$T/ba.err" &&
	fail "B acquired a held reservation"
grep -q "reservation conflict" "$T/ba.err" || fail "B's acquire: $(cat "$T/ba.err")"
ns resv report "$URI" --json >"$T/r1.json" || fail report
/usr/bin/python3 - "$T/r1.json" <<'PY' || fail "report before the fence: $(cat "$T/r1.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["rtype"] == 1, r
regs = {x["rkey"]: x for x in r["registrants"]}
assert set(regs) == {0xA1, 0xB2}, regs
assert regs[0xA1]["holder"] and not regs[0xB2]["holder"]
PY

# A dies. Its registration and reservation outlive its connection.
kill -9 $PA
wait $PA 2>/dev/null
echo "still fenced" | ns write "$URI" --hostnqn $B --lba 20000 2>/dev/null &&
	fail "A's death alone released the reservation"
# B fences A: preempt A's key, take Write Exclusive, write
ns resv acquire "$URI" --hostnqn $B --crkey 0xB2 --prkey 0xA1 --action preempt --type we ||
	fail "B preempt"
printf 'B owns it now' | ns write "$URI" --hostnqn $B --lba 20000 || fail "B cannot write after preempting"
[ "$(ns read "$URI" --lba 20000 | head -c 13)" = "B owns it now" ] || fail "B's data not there"
# A, should it come back, is fenced: unregistered, its writes refused
printf 'zombie' | ns write "$URI" --hostnqn $A --lba 20000 2>/dev/null && fail "fenced A could write"
ns resv report "$URI" --json >"$T/r2.json"
/usr/bin/python3 - "$T/r2.json" <<'PY' || fail "report after the fence: $(cat "$T/r2.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["rtype"] == 1 and len(r["registrants"]) == 1, r
assert r["registrants"][0]["rkey"] == 0xB2 and r["registrants"][0]["holder"]
PY

# Persist Through Power Loss: B re-registers with PTPL on; restart the daemon
ns resv register "$URI" --hostnqn $B --action replace --crkey 0xB2 --nrkey 0xB3 --ptpl on ||
	fail "PTPL register"
[ -s "$T/fence.ptpl" ] || fail "no PTPL state written"
nvlend save-config -o "$T/cfg.json"
stop_nvlendd
rm -f "$T/fence.sock"
start_nvlendd -c "$T/cfg.json"
ns resv report "$URI" --json >"$T/r3.json" || fail "report after restart"
/usr/bin/python3 - "$T/r3.json" <<'PY' || fail "reservation lost across restart: $(cat "$T/r3.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ptpl"] and r["rtype"] == 1, r
assert [x["rkey"] for x in r["registrants"]] == [0xB3] and r["registrants"][0]["holder"]
PY
printf 'x' | ns write "$URI" --hostnqn $A --lba 1 2>/dev/null && fail "restart released the fence"
printf 'y' | ns write "$URI" --hostnqn $B --lba 1 || fail "holder cannot write after restart"
# clearing turns persistence off with it
ns resv release "$URI" --hostnqn $B --crkey 0xB3 --action clear || fail clear
printf 'z' | ns write "$URI" --hostnqn $A --lba 1 || fail "A still fenced after clear"
stop_nvlendd
pass
