#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Clean shutdown: SIGTERM, SIGINT, `nvlend shutdown` and SPDK's
# spdk_kill_instance all end the daemon with status 0, promptly, with bdevs
# and idle or half-sent RPC clients present; the socket and the pid file are
# removed. Start-up failures exit 1 without hanging.
# (In-flight I/O draining needs an I/O client; the bdev unit tests cover the
# completion paths, later transports add end-to-end drain tests.)
# timeout: 90
source "$(dirname "$0")/common.sh"

truncate -s 16M "$T/disk.img"

# stop_with HOW: start a daemon with state and clients, stop it HOW, check exit and cleanup
stop_with() {
	local how=$1 pidf=$T/pid t0 t1 st ms
	start_nvlendd --pid-file "$pidf" --reactors 2
	assert_eq "$(cat "$pidf")" "$DAEMON_PID" "pid file"
	nvlend bdev create ram r0 64M >/dev/null || fail "create ram"
	nvlend bdev create file f0 "$T/disk.img" >/dev/null || fail "create file"
	# an idle client and one that sent half a request, both kept open (within the
	# default RPC timeouts; daemon_rpc_timeout.sh shows them closed at expiry)
	/usr/bin/python3 -c '
import socket, sys, time
a = socket.socket(socket.AF_UNIX); a.connect(sys.argv[1])
b = socket.socket(socket.AF_UNIX); b.connect(sys.argv[1])
b.sendall(b"{\"jsonrpc\":\"2.0\",\"method\":\"bdev_get")
print("connected", flush=True)
time.sleep(60)' "$NVLEND_SOCKET" >"$T/clients.out" 2>&1 &
	local clients=$!
	on_exit "kill $clients 2>/dev/null"
	wait_until 5 grep -q connected "$T/clients.out" || fail "clients did not connect"
	t0=$(date +%s%N)
	case $how in
	TERM | INT) kill -"$how" "$DAEMON_PID" ;;
	cli) nvlend shutdown || fail "nvlend shutdown exit status" ;;
	spdk) nvlend rpc spdk_kill_instance '{"sig_name": "SIGTERM"}' >/dev/null ||
		fail "spdk_kill_instance" ;;
	esac
	for _ in $(seq 1 200); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$DAEMON_PID" 2>/dev/null && fail "$how: daemon still running after 10 s"
	wait "$DAEMON_PID"
	st=$?
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	assert_eq "$st" 0 "exit status after $how"
	[ ! -e "$NVLEND_SOCKET" ] || fail "$how: socket left behind"
	[ ! -e "$pidf" ] || fail "$how: pid file left behind"
	grep -q "shutdown complete" "$DAEMON_LOG" || fail "$how: no 'shutdown complete'"
	log "shutdown by $how: exit $st after ${ms} ms"
	kill "$clients" 2>/dev/null
	wait "$clients" 2>/dev/null
	return 0
}
stop_with TERM
stop_with INT
stop_with cli
stop_with spdk

# a second daemon refused beside a live one leaves the live one's pid file alone
start_nvlendd --pid-file "$T/live.pid"
assert_eq "$(cat "$T/live.pid")" "$DAEMON_PID" "pid file"
timeout 10 "$BIN/nvlendd" -s "$NVLEND_SOCKET" --pid-file "$T/live.pid" >"$T/second.log" 2>&1
rc=$?
assert_eq "$rc" 1 "exit status of a second daemon on a live socket"
grep -q "already serves" "$T/second.log" || fail "second daemon message: $(cat "$T/second.log")"
assert_eq "$(cat "$T/live.pid" 2>/dev/null)" "$DAEMON_PID" "the live daemon's pid file"
stop_nvlendd
[ ! -e "$T/live.pid" ] || fail "pid file left after shutdown"
# a pid file that cannot be written stops start-up
timeout 10 "$BIN/nvlendd" -s "$T/p.sock" --pid-file /nonexistent/dir/pid >"$T/pid.log" 2>&1
rc=$?
assert_eq "$rc" 1 "exit status with an unwritable pid file"
grep -q "cannot write pid file" "$T/pid.log" || fail "pid file message"
[ ! -e "$T/p.sock" ] || fail "socket left after a pid file failure"

# a refused signal name changes nothing
start_nvlendd
expect_fail nvlend rpc spdk_kill_instance '{"sig_name": "SIGKILL"}'
nvlend status >/dev/null || fail "daemon gone after a refused spdk_kill_instance"
stop_nvlendd

# start-up failures: exit 1 promptly, nothing left behind
timeout 10 "$BIN/nvlendd" -s /proc/nvlend-cannot/s.sock >"$T/fail1.log" 2>&1
rc=$?
assert_eq "$rc" 1 "exit status when the socket cannot be created"
grep -q "cannot listen on /proc/nvlend-cannot/s.sock" "$T/fail1.log" || fail "socket error message"
mkdir "$T/notasock.sock"
timeout 10 "$BIN/nvlendd" -s "$T/notasock.sock" >"$T/fail2.log" 2>&1
rc=$?
assert_eq "$rc" 1 "exit status when the socket path is a directory"
[ -d "$T/notasock.sock" ] || fail "the daemon removed what was not its socket"
pass
