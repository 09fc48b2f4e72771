#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Logging: --log-level 0 prints no debug lines and 1..3 do; log_set_level
# (nvlend log level) changes it at run time; per-component flags silence one
# component; --log-file appends there instead of stderr.
# timeout: 60
source "$(dirname "$0")/common.sh"

count() { grep -c -- "$1" "$DAEMON_LOG" || true; }

# level 0 (default): notices, no debug lines
start_nvlendd
nvlend bdev create ram r0 1M >/dev/null || fail "create"
nvlend bdev list >/dev/null
[ "$(count 'DEBUG/')" = 0 ] || fail "debug lines at level 0: $(grep 'DEBUG/' "$DAEMON_LOG" | head -3)"
[ "$(count 'NOTICE')" -ge 1 ] || fail "no notice lines at level 0"
assert_eq "$(nvlend log level)" 0 "initial level"

# raised at run time: the next calls are logged, with component and source position
nvlend log level 1 || fail "log level 1"
nvlend bdev list >/dev/null
grep -q 'DEBUG/rpc rpc.c:[0-9]*:dispatch_one: call bdev_get_bdevs' "$DAEMON_LOG" ||
	fail "no debug line for the call at level 1"
grep -q 'log level set to 1' "$DAEMON_LOG" || fail "level change not logged"
# a component flag silences just that component
nvlend log flag rpc off || fail "log flag rpc off"
n=$(count 'DEBUG/rpc')
nvlend bdev list >/dev/null
assert_eq "$(count 'DEBUG/rpc')" "$n" "rpc debug lines after 'log flag rpc off'"
nvlend log flag | grep_q '^rpc  *off' || fail "log flag listing"
expect_fail nvlend log flag nosuchcomponent on
nvlend log flag all on || fail "log flag all on"
# and back to 0
nvlend log level 0 || fail "log level 0"
n=$(count 'DEBUG/')
nvlend bdev list >/dev/null
assert_eq "$(count 'DEBUG/')" "$n" "debug lines after going back to level 0"
stop_nvlendd

# --log-level 1..3 at start-up; higher levels add verbose/trace lines where code has them
for lvl in 1 2 3; do
	start_nvlendd --log-level "$lvl"
	assert_eq "$(nvlend log level)" "$lvl" "level after --log-level $lvl"
	grep -q 'DEBUG/reactor .*reactor 0 running' "$DAEMON_LOG" ||
		fail "no start-up debug line at --log-level $lvl"
	nvlend bdev create ram r0 1M >/dev/null
	grep -q 'DEBUG/bdev .*registered r0' "$DAEMON_LOG" || fail "no bdev debug line at $lvl"
	stop_nvlendd
done
start_nvlendd -L 0
[ "$(count 'DEBUG/')" = 0 ] || fail "-L 0 printed debug lines"
stop_nvlendd

# --log-file: lines go there (appended), not to stderr
echo "previous content" >"$T/daemon.log"
start_nvlendd --log-file "$T/daemon.log" --log-level 1
nvlend bdev list >/dev/null
stop_nvlendd
head -1 "$T/daemon.log" | grep_q '^previous content$' || fail "--log-file truncated the file"
grep -q 'call bdev_get_bdevs' "$T/daemon.log" || fail "--log-file lacks the debug line"
grep -q 'NOTICE' "$DAEMON_LOG" && fail "lines still went to stderr with --log-file"
expect_fail "$BIN/nvlendd" -s "$T/x.sock" --log-file /nonexistent/dir/log
pass
