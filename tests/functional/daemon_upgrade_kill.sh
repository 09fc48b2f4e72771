#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Issue 16: kill -9 at random moments of a live upgrade. While a host runs
# nvlend-perf --verify over shm (randrw, 2 queues), `nvlend upgrade` is
# started again and again and, after a random delay (0..80 ms), the worker
# is killed with SIGKILL: in odd rounds the old worker (the one the upgrade
# started from, somewhere between being asked and handing over), in even
# rounds the new worker, 0..40 ms after the keeper started it (while it
# takes the kept state back, before or after it said READY). Checked after every round: the keeper brings a worker back
# that answers RPC within 10 s (whichever binary it runs) and the upgrade
# command ended (with success or a clear failure, never a hang). At the end:
# 0 I/O errors, 0 verify errors, and a single Connect: the host never
# reconnected.
# timeout: 180
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
ALLOW_WORKER_RESTARTS=1
cd "$T" || fail "cd"
start_nvlendd --log-file "$T/d.log"
DAEMON_LOG=$T/d.log
[ "$WORKER_PID" != "$DAEMON_PID" ] || fail "no keeper"
shm_target up 64M
export NVLEND_PERF_STATUS=0
connects() { grep -c "nvmf.c.*: controller [0-9]* for host" "$DAEMON_LOG"; }
worker() { nvlend rpc nvlend_get_status 2>/dev/null | json_get '["pid"]' 2>/dev/null; }

c0=$(connects)
"$BIN/nvlend-perf" "$URI" --rw=randrw --verify --bs=4k --iodepth=16 --numjobs=2 --runtime=150 \
	--json >"$T/perf.json" 2>"$T/perf.err" &
perf=$!
on_exit "kill $perf 2>/dev/null"
wait_until 10 sh -c "[ \$(grep -c 'nvmf.c.*: controller [0-9]* for host' '$DAEMON_LOG') -gt $c0 ]" ||
	fail "nvlend-perf did not connect"
sleep 1

ROUNDS=${ROUNDS:-8}
ok=0 failed=0
for r in $(seq 1 "$ROUNDS"); do
	old=$(worker)
	[ -n "$old" ] || fail "round $r: no worker answers"
	delay=$((RANDOM % 81))
	timeout 30 nvlend upgrade >"$T/up.$r" 2>&1 &
	up=$!
	if [ $((r % 2)) = 1 ]; then
		sleep "$(printf '0.%03d' "$delay")"
		victim=$old
	else
		# the new worker: from when the keeper started it, while it restores
		victim=
		for _ in $(seq 1 500); do
			victim=$(pgrep -P "$DAEMON_PID" -x nvlendd | grep -vx "$old" | tail -1)
			[ -n "$victim" ] && break
			sleep 0.01
		done
		[ -n "$victim" ] || victim=$old
		delay=$((RANDOM % 41))
		sleep "$(printf '0.%03d' "$delay")"
	fi
	kill -9 "$victim" 2>/dev/null
	wait "$up"
	rc=$?
	[ "$rc" = 124 ] && fail "round $r: nvlend upgrade hung (killed $victim after $delay ms)"
	if [ "$rc" = 0 ]; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
	wait_until 10 sh -c 'nvlend rpc nvlend_get_status >/dev/null 2>&1' ||
		fail "round $r: no worker came back (killed $victim after $delay ms)"
	now=$(worker)
	[ "$rc" = 0 ] && ! grep -q "function(s)" "$T/up.$r" && { cat "$T/up.$r" >&2; tail -40 "$DAEMON_LOG" >&2; fail "round $r: an upgrade report without functions"; }
	log "round $r: killed $([ $((r % 2)) = 1 ] && echo old || echo new) worker $victim after $delay ms; upgrade exit $rc ($(tail -1 "$T/up.$r")); worker now $now"
	kill -0 "$perf" 2>/dev/null || { cat "$T/perf.err" >&2; fail "round $r: nvlend-perf ended"; }
	sleep 0.3
done
log "$ok upgrades completed, $failed ended by the kill"

kill -INT "$perf"
wait "$perf"
rc=$?
[ "$rc" = 0 ] || { cat "$T/perf.err" "$T/perf.json" >&2; fail "nvlend-perf failed (status $rc)"; }
errs=$(json_get '["errors"]' <"$T/perf.json")
verr=$(json_get '["verify"]["errors"]' <"$T/perf.json")
checked=$(json_get '["verify"]["checked"]' <"$T/perf.json")
log "nvlend-perf: $errs I/O errors, $checked blocks verified, $verr verify errors"
assert_eq "$errs" 0 "I/O errors"
assert_eq "$verr" 0 "verify errors"
[ "$checked" -gt 0 ] || fail "nothing was verified"
assert_eq "$(($(connects) - c0))" 1 "Connects (a reconnect would add one)"
pass
