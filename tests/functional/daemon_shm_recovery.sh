#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Issue 16: a shm host does not notice the worker dying. The keeper holds each
# shm controller's control socket, rings, doorbells, data window and a state
# region (transport/shm_keep.c); the next worker takes them back and goes on
# where the dead one stopped: commands it had fetched but not answered run
# again, completions it was posting are posted once. Checked:
#   - nvlend-perf --verify (randrw, 2 queues, QD 16) runs through 20 kill -9s
#     (8 in the ASan build, whose restarts take ~0.5 s each)
#     of the worker with 0 I/O and 0 verify errors, and the daemon never sees
#     a second Connect (the host did not reconnect: the same controller was
#     restored each time);
#   - a sequential write run through 2 kill -9s is read back block by block
#     at its end (every acknowledged write is on the namespace);
#   - listening sockets are kept too: an NBD client that connects while no
#     worker runs is answered by the next one;
#   - a controller the host closed while the worker was dead is not restored.
# 24 kills in all: the daemon runs with --max-restarts 40/60.
# timeout: 240
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
requires nbdinfo
ALLOW_WORKER_RESTARTS=1
cd "$T" || fail "cd"
start_nvlendd --log-file "$T/d.log" --max-restarts 40/60
DAEMON_LOG=$T/d.log
[ "$WORKER_PID" != "$DAEMON_PID" ] || fail "no keeper: the daemon has no worker process"
shm_target rr 64M
port=$(free_port)
nvlend nbd start --port "$port" >/dev/null && nvlend nbd export add rr rr >/dev/null || fail "nbd"
export NVLEND_PERF_STATUS=0

# kill_worker: SIGKILL the serving worker, wait for the keeper's next one
kill_worker() {
	local old=$WORKER_PID
	kill -KILL "$old" || fail "kill worker $old"
	wait_until 15 sh -c "w=\$(pgrep -P $DAEMON_PID -x nvlendd); [ -n \"\$w\" ] && [ \"\$w\" != $old ]" ||
		fail "no new worker after $old"
	WORKER_PID=$(worker_of "$DAEMON_PID")
}
restored() { grep -c "restored after a restart" "$DAEMON_LOG"; }
connects() { grep -c "nvmf.c.*: controller [0-9]* for host" "$DAEMON_LOG"; }

kills=20
case $BUILD in *asan*) kills=8 ;; esac
log "randrw --verify through $kills kill -9s of the worker"
c0=$(connects)
PERF=$BUILD/bin/nvlend-perf   # run directly (not through a function): $! must be its pid
"$PERF" "$URI" --rw=randrw --verify --bs=4k --iodepth=16 --numjobs=2 --runtime=40 --json \
	>"$T/perf1.json" 2>"$T/perf1.err" &
perf=$!
on_exit "kill $perf"
wait_until 10 sh -c "[ \$(grep -c 'nvmf.c.*: controller [0-9]* for host' '$DAEMON_LOG') -gt $c0 ]" ||
	fail "nvlend-perf did not connect"
sleep 1
for round in $(seq 1 $kills); do
	before=$(restored)
	kill_worker
	wait_until 10 sh -c "[ \$(grep -c 'restored after a restart' '$DAEMON_LOG') -gt $before ]" ||
		fail "round $round: the controller was not restored"
	kill -0 "$perf" 2>/dev/null || break
	sleep 0.25
done
kill -0 "$perf" 2>/dev/null || fail "nvlend-perf ended during round $round (runtime too short?)"
kill -INT "$perf"   # nvlend-perf stops and reports on SIGINT, as fio does
wait "$perf"
rc=$?
cat "$T/perf1.err" >&2
[ "$rc" = 0 ] || { cat "$T/perf1.json" >&2; fail "nvlend-perf failed (status $rc)"; }
errs=$(json_get '["errors"]' <"$T/perf1.json")
verr=$(json_get '["verify"]["errors"]' <"$T/perf1.json")
checked=$(json_get '["verify"]["checked"]' <"$T/perf1.json")
ios=$(json_get '["read"]["ios"]+d["write"]["ios"]' <"$T/perf1.json")
log "nvlend-perf: $ios I/Os, $errs I/O errors, $checked blocks verified, $verr verify errors"
assert_eq "$errs" 0 "I/O errors"
assert_eq "$verr" 0 "verify errors"
[ "$checked" -gt 0 ] || fail "nothing was verified"
assert_eq "$(($(connects) - c0))" 1 "Connects during the run (a reconnect would add one)"
# how long the host waited: the keeper's "died" line to the restore line
pauses=$(grep -E "died of signal 9|restored after a restart" "$DAEMON_LOG" | /usr/bin/python3 -c '
import sys, re, datetime
last, out = None, []
for l in sys.stdin:
    t = datetime.datetime.strptime(re.search(r"\[([0-9-]+ [0-9:.]+)\]", l).group(1), "%Y-%m-%d %H:%M:%S.%f")
    if "died" in l:
        last = t
    elif last:
        out.append("%.0f" % ((t - last).total_seconds() * 1000))
        last = None
print(" ".join(out))')
log "death to restored controller, ms: $pauses"

log "sequential write through 2 kill -9s, read back at its end"
c0=$(connects)
"$PERF" "$URI" --rw=write --verify --bs=64k --iodepth=8 --io_limit=48M --json \
	>"$T/perf2.json" 2>"$T/perf2.err" &
perf=$!
on_exit "kill $perf"
wait_until 10 sh -c "[ \$(grep -c 'nvmf.c.*: controller [0-9]* for host' '$DAEMON_LOG') -gt $c0 ]" ||
	fail "nvlend-perf did not connect"
for round in 1 2; do
	sleep 0.3
	kill -0 "$perf" 2>/dev/null || break
	kill_worker
done
wait "$perf"
rc=$?
cat "$T/perf2.err" >&2
[ "$rc" = 0 ] || { cat "$T/perf2.json" >&2; fail "write + read back failed (status $rc)"; }
assert_eq "$(json_get '["errors"]' <"$T/perf2.json")" 0 "write + read back I/O errors"
assert_eq "$(json_get '["verify"]["errors"]' <"$T/perf2.json")" 0 "read back verify errors"
assert_eq "$(json_get '["verify"]["checked"]' <"$T/perf2.json")" 98304 "blocks read back (48 MiB of 512-byte blocks)"
assert_eq "$(($(connects) - c0))" 1 "Connects during the write run"

log "a client of a kept listening socket is answered by the next worker"
kill -KILL "$WORKER_PID"
size=$(timeout 20 nbdinfo --size "nbd://127.0.0.1:$port/rr") || fail "NBD client during the restart"
assert_eq "$size" 67108864 "export size seen during the restart"
wait_until 15 sh -c "w=\$(pgrep -P $DAEMON_PID -x nvlendd); [ -n \"\$w\" ] && [ \"\$w\" != $WORKER_PID ]" ||
	fail "no new worker"
WORKER_PID=$(worker_of "$DAEMON_PID")

log "a controller closed while no worker runs is not brought back"
"$PERF" "$URI" --rw=read --bs=4k --iodepth=4 --runtime=30 >/dev/null 2>&1 &
perf=$!
on_exit "kill $perf"
ctrlrs_are() { [ "$(count_ctrlrs)" = "$1" ]; }
wait_until 10 ctrlrs_are 1 || fail "reader not connected"
kill -STOP "$WORKER_PID"
kill -KILL "$perf"
wait "$perf" 2>/dev/null
kill -KILL "$WORKER_PID"
kill -CONT "$WORKER_PID" 2>/dev/null
wait_until 15 sh -c "w=\$(pgrep -P $DAEMON_PID -x nvlendd); [ -n \"\$w\" ] && [ \"\$w\" != $WORKER_PID ]" ||
	fail "no new worker"
WORKER_PID=$(worker_of "$DAEMON_PID")
wait_until 10 ctrlrs_are 0 ||
	fail "the closed controller came back: $(rpc nvmf_subsystem_get_controllers "{\"nqn\":\"$NQN\"}")"
nvlend status >/dev/null || fail "daemon not serving"
pass
