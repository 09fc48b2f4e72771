#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Issue 16: kill -9 the worker and nothing an operator or client relies on is
# lost. nvlendd is a keeper holding the worker's descriptors (util/fdstore,
# app/keeper): the RPC listening socket, the memory of RAM bdevs, and the
# configuration (a util/stateblob rewritten after each change). Checked, five
# times in a row:
#   - a client that connects while the worker is dead is answered (the same
#     listening socket, its backlog: the socket's inode does not change);
#   - the configuration is back (bdev, subsystem, namespace, listener, NBD
#     export) without -c;
#   - a RAM bdev's contents are intact (written through shm before the kill,
#     read back through shm and over NBD after it);
#   - a change made after a restart is kept by the next one.
# Then: SIGTERM stops keeper and worker cleanly (status 0, nothing left);
# kill -9 of the keeper takes the worker with it; --no-keeper is one
# process; SIGHUP reopens the log file (logrotate) and is logged.
# timeout: 120
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
requires nbdcopy
ALLOW_WORKER_RESTARTS=1
cd "$T" || fail "cd"
start_nvlendd --log-file "$T/d.log"
DAEMON_LOG=$T/d.log
[ "$WORKER_PID" != "$DAEMON_PID" ] || fail "no keeper: the daemon has no worker process"
shm_target rr 16M
port=$(free_port)
nvlend nbd start --port "$port" >/dev/null && nvlend nbd export add rr rr >/dev/null || fail "nbd"
head -c 1M /dev/urandom >"$T/data"
for i in $(seq 0 15); do   # 64 KiB a command: within any controller's transfer size
	dd if="$T/data" bs=64K skip=$i count=1 status=none |
		nvlend ns write "$URI" --lba $((i * 128 + 1000)) >/dev/null || fail "write $i"
done
sum=$(md5sum <"$T/data")
readback() { # through shm, then over NBD
	local i
	for i in $(seq 0 15); do
		nvlend ns read "$URI" --lba $((i * 128 + 1000)) --count 128 || return 1
	done | md5sum | grep_q -F "${sum%% *}" || return 1
	nbdcopy "nbd://127.0.0.1:$port/rr" "$T/disk" || return 1
	dd if="$T/disk" bs=512 skip=1000 count=2048 status=none | md5sum | grep_q -F "${sum%% *}"
}
readback || fail "read back before any crash"
ino=$(stat -c %i "$NVLEND_SOCKET")

for round in 1 2 3 4 5; do
	old=$WORKER_PID
	kill -KILL "$old"
	# this client connects while no worker runs: it must be answered
	out=$(nvlend -t 10 bdev list) || fail "round $round: a client during the restart got no answer"
	echo "$out" | grep_q "^rr " || fail "round $round: the bdev is gone: $out"
	wait_until 10 sh -c "[ \"\$(pgrep -P $DAEMON_PID -x nvlendd)\" != '' ] && [ \"\$(pgrep -P $DAEMON_PID -x nvlendd)\" != $old ]" ||
		fail "round $round: no new worker"
	WORKER_PID=$(worker_of "$DAEMON_PID")
	assert_eq "$(stat -c %i "$NVLEND_SOCKET")" "$ino" "round $round: the RPC socket (inode)"
	nvlend subsystem list | grep_q "nqn.2026-01.io.nvlend.test:rr .*1:rr .*SHM" ||
		fail "round $round: subsystem not restored: $(nvlend subsystem list)"
	nvlend nbd export list | grep_q "^rr " || fail "round $round: NBD export not restored"
	readback || fail "round $round: the RAM bdev's contents changed"
	# a change after this restart must be kept by the next one
	nvlend bdev create ram extra$round 1M >/dev/null || fail "round $round: create"
	[ $round = 1 ] || nvlend bdev list | grep_q "^extra$((round - 1)) " ||
		fail "round $round: the change made after the last restart was lost"
	log "round $round: worker $old killed, $WORKER_PID serves the same socket, config and data"
done
grep -q "memory taken back from the fd store (contents kept)" "$DAEMON_LOG" || fail "no take-back logged"
assert_eq "$(grep -c 'keeper: worker [0-9]* died of signal 9' "$DAEMON_LOG")" 5 "restarts logged by the keeper"

log "SIGHUP: the log file is reopened"
mv "$T/d.log" "$T/d.log.1"
kill -HUP "$DAEMON_PID"
wait_until 5 grep -q "SIGHUP: log file $T/d.log reopened" "$T/d.log" || fail "log not reopened"
worker_alive || fail "SIGHUP ended the worker"
nvlend status >/dev/null || fail "not serving after SIGHUP"
DAEMON_LOG=$T/d.log

log "SIGTERM: keeper and worker stop cleanly"
w=$WORKER_PID
kill -TERM "$DAEMON_PID"
wait_until 20 sh -c "! kill -0 $DAEMON_PID" || fail "keeper still running after SIGTERM"
wait "$DAEMON_PID"; st=$?
assert_eq "$st" 0 "keeper exit status"
kill -0 "$w" 2>/dev/null && fail "worker left running"
grep -q "received Terminated" "$T/d.log" || fail "SIGTERM not logged"
[ -e "$NVLEND_SOCKET" ] && fail "RPC socket left behind"
[ -e "/run/nvlend/keeper.$DAEMON_PID" ] && fail "keeper directory left behind"

log "kill -9 of the keeper takes the worker with it"
start_nvlendd
w=$WORKER_PID
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
wait_until 5 sh -c "! kill -0 $w" || fail "the worker outlived its keeper"

log "--no-keeper: one process"
start_nvlendd --no-keeper
assert_eq "$WORKER_PID" "$DAEMON_PID" "--no-keeper worker"
stop_nvlendd
pass
