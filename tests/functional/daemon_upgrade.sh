#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Issue 16, live upgrade (the shm half): `nvlend upgrade --binary PATH` moves
# the daemon to another nvlendd build while a host does verified I/O over
# shm. Checked:
#   - the new build is a copy of nvlendd whose version string is changed
#     (every string ending in 0.1.0 -> 0.1.9 in the binary): after the upgrade the worker runs that
#     file (/proc/PID/exe) and nvlend status shows its version and the
#     upgrade;
#   - nvlend-perf --verify (randrw, 2 queues) runs through three upgrades (to
#     the new build, back to the old one, to the same one again) with 0 I/O
#     and 0 verify errors and a single Connect (no host reconnected);
#   - nvlend upgrade prints a downtime for the daemon and the shm controller;
#     nvlend_get_upgrade has them (JSON);
#   - the new binary is started ahead (it loads while the old worker serves)
#     and takes the store over as soon as the old worker stopped for good,
#     not once the old process is gone (the keeper's log says so), and
#     takes the file bdev's backing-file lock while the old one may still
#     be exiting;
#   - the new worker is built ahead: it replays what it can of the kept
#     configuration (the RAM and file bdevs, the subsystem, its listener,
#     held, not watched) while the old one serves; a configuration change while it is built ahead makes
#     it start afresh (the change is not lost, the host sees nothing);
#   - the lending node and its offer (read from their state files at the
#     hand-over, after the transports) come through every upgrade;
#   - a host that disconnects while the new worker is built ahead (what
#     was built for it goes, and only that: no afresh start) and one that
#     connects then (restored at the hand-over) lose nothing;
#   - a binary that answers --version as an nvlendd but cannot serve is
#     rolled back: the keeper starts the previous binary again, the command
#     exits 1 and says so, the host's I/O goes on;
#   - refused at once: a path that is not executable, a relative path, a
#     daemon without keeper.
# timeout: 120
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
ALLOW_WORKER_RESTARTS=1
cd "$T" || fail "cd"
# while this file exists, a worker built ahead does not tell the old one
# (a test hook): the window for the configuration change below
export NVLEND_TEST_AHEAD_HOLD=$T/hold-ahead
start_nvlendd --log-file "$T/d.log" --state-dir "$T/lend-state"
DAEMON_LOG=$T/d.log
[ "$WORKER_PID" != "$DAEMON_PID" ] || fail "no keeper"
shm_target up 64M
# a file bdev: its backing file's flock must pass to the new worker while
# the old process may still be exiting
truncate -s 16M "$T/fb0.img"
nvlend bdev create file fb0 "$T/fb0.img" >/dev/null || fail "file bdev"
# lending state (its files are read at the hand-over, after the transports
# took their connections back): the node and its offer come through
truncate -s 8M "$T/lend0.img"
nvlend lend add "$T/lend0.img" >/dev/null || fail "lend add"
node0=$(nvlend rpc lend_get_node | json_get '["node_id"]')
offers0=$(nvlend rpc lend_list | json_get '.__len__()')
[ "$offers0" -ge 1 ] || fail "lend_list: $offers0 offers"
export NVLEND_PERF_STATUS=0
connects() { grep -c "nvmf.c.*: controller [0-9]* for host" "$DAEMON_LOG"; }

# the "new build": this nvlendd with another version string
cp "$BIN/nvlendd" "$T/nvlendd-new"
/usr/bin/python3 - "$T/nvlendd-new" <<'PY' || fail "cannot patch the version"
import sys
p = sys.argv[1]
b = open(p, "rb").read()
# every C string that ends in the version (a compiler may keep "0.1.0" on its
# own and inside longer literals, or merge them): same length, so nothing moves
if b.count(b"0.1.0\0") < 1:
    sys.exit("version string not found")
open(p, "wb").write(b.replace(b"0.1.0\0", b"0.1.9\0"))
PY
assert_eq "$("$T/nvlendd-new" --version)" "nvlendd 0.1.9" "patched build"
printf '#!/bin/sh\n[ "$1" = --version ] && { echo "nvlendd 9.9.9"; exit 0; }\nexit 1\n' >"$T/broken"
chmod +x "$T/broken"

c0=$(connects)
PERF=$BIN/nvlend-perf
# the first half of the namespace; the hosts that come and go below use the
# second half (each verifies only what it wrote, but not what another overwrote)
"$PERF" "$URI" --rw=randrw --verify --bs=4k --iodepth=16 --numjobs=2 --runtime=60 --size=32M --json \
	>"$T/perf.json" 2>"$T/perf.err" &
perf=$!
on_exit "kill $perf 2>/dev/null"
wait_until 10 sh -c "[ \$(grep -c 'nvmf.c.*: controller [0-9]* for host' '$DAEMON_LOG') -gt $c0 ]" ||
	fail "nvlend-perf did not connect"
sleep 1

log "upgrade to the new build"
out=$(nvlend upgrade --binary "$T/nvlendd-new" 2>&1) || fail "upgrade: $out"
echo "$out" >&2
assert_contains "$out" "upgraded from nvlend v0.1.0 to nvlend v0.1.9" "upgrade report"
assert_contains "$out" "daemon: RPC and listening sockets" "daemon downtime"
assert_contains "$out" "shm nqn.2026-01.io.nvlend.test:up controller" "shm controller downtime"
WORKER_PID=$(nvlend rpc nvlend_get_status | json_get '["pid"]')
assert_eq "$(readlink "/proc/$WORKER_PID/exe")" "$T/nvlendd-new" "the worker's binary"
nvlend status | grep_q "version  *nvlend v0.1.9" || fail "status: $(nvlend status | head -8)"
nvlend status | grep_q "upgrade  *from nvlend v0.1.0" || fail "status has no upgrade line"
n=$(nvlend rpc nvlend_get_upgrade | json_get '["functions"].__len__()')
[ "$n" -ge 2 ] || fail "nvlend_get_upgrade lists $n functions"
# the new binary was started ahead (loaded while the old worker served) and
# took over as soon as the old one stopped, not once its process was gone
grep_q "worker $WORKER_PID of $T/nvlendd-new started ahead" <"$DAEMON_LOG" ||
	fail "the new worker was not started ahead"
grep_q "stopped serving; $T/nvlendd-new took over" <"$DAEMON_LOG" ||
	fail "the keeper waited for the old worker's exit"
grep_q "worker $WORKER_PID (started ahead) takes over with" <"$DAEMON_LOG" ||
	fail "the worker started ahead did not get the store"
# built ahead: the whole configuration (the file bdev too: the old worker
# dropped its lock) before the stop
grep_q "nvlendd\[$WORKER_PID\].*built ahead (0 configuration call(s) wait for the hand-over)" \
	<"$DAEMON_LOG" || fail "the new worker did not build ahead: $(grep -a 'built ahead' "$DAEMON_LOG")"
grep_q "nvlendd\[$WORKER_PID\].*handed over: 0 configuration call(s) were left" <"$DAEMON_LOG" ||
	fail "the new worker did not take over what it built"
nvlend rpc bdev_get_bdevs | grep_q '"fb0"' || fail "the file bdev did not come back"

log "the configuration changes while the new worker is built ahead"
touch "$NVLEND_TEST_AHEAD_HOLD"
nvlend upgrade >"$T/afresh.out" 2>&1 &
up=$!
wait_until 10 sh -c "grep -c 'built ahead ([0-9]* configuration' '$DAEMON_LOG' | grep -qx 2" ||
	fail "the second worker was not built ahead"
nvlend bdev create ram late0 1M >/dev/null || fail "bdev create during the upgrade"
rm -f "$NVLEND_TEST_AHEAD_HOLD"
wait "$up" || fail "upgrade with a configuration change: $(cat "$T/afresh.out")"
grep_q "the configuration changed while this worker was built ahead" <"$DAEMON_LOG" ||
	fail "the worker built ahead did not see the change"
grep_q "starts again afresh" <"$DAEMON_LOG" || fail "the keeper did not start it afresh"
nvlend rpc bdev_get_bdevs | grep_q '"late0"' || fail "the change was lost in the upgrade"
WORKER_PID=$(nvlend rpc nvlend_get_status | json_get '["pid"]')
assert_eq "$(readlink "/proc/$WORKER_PID/exe")" "$T/nvlendd-new" "the binary started afresh"

log "hosts come and go while the new worker is built ahead"
# one host disconnects, another connects, while the new worker holds what it
# built for the first: only that controller is built again (no afresh start)
"$PERF" "$URI" --rw=randrw --verify --bs=4k --iodepth=4 --runtime=60 --offset=32M \
	--hostnqn=nqn.2026-01.io.nvlend.test:left --json \
	>"$T/perf2.json" 2>"$T/perf2.err" &
perf2=$!
on_exit "kill $perf2 2>/dev/null"
# connected, with its I/O queue (what the new worker builds for it)
has_ioq() {
	nvlend rpc nvmf_subsystem_get_qpairs "{\"nqn\":\"$NQN\"}" | /usr/bin/python3 -c '
import json, sys
sys.exit(0 if any(q.get("qid") and q.get("hostnqn") == sys.argv[1] for q in json.load(sys.stdin)) else 1)
' "$1"
}
wait_until 10 has_ioq nqn.2026-01.io.nvlend.test:left || fail "the second host did not connect"
afresh0=$(grep -c "starts again afresh" "$DAEMON_LOG")
touch "$NVLEND_TEST_AHEAD_HOLD"
nvlend upgrade >"$T/revoke.out" 2>&1 &
up=$!
wait_until 10 sh -c "grep -c 'built ahead ([0-9]* configuration' '$DAEMON_LOG' | grep -qx 3" ||
	fail "the third worker was not built ahead"
kill -INT "$perf2"
wait "$perf2" || fail "the host that left during the build: $(cat "$T/perf2.err")"
assert_eq "$(json_get '["errors"]' <"$T/perf2.json")" 0 "I/O errors of the host that left"
assert_eq "$(json_get '["verify"]["errors"]' <"$T/perf2.json")" 0 "verify errors of the host that left"
c2=$(connects)
"$PERF" "$URI" --rw=randrw --verify --bs=4k --iodepth=4 --runtime=4 --offset=32M \
	--hostnqn=nqn.2026-01.io.nvlend.test:came --json \
	>"$T/perf3.json" 2>"$T/perf3.err" &
perf3=$!
on_exit "kill $perf3 2>/dev/null"
wait_until 10 sh -c "[ \$(grep -c 'nvmf.c.*: controller [0-9]* for host' '$DAEMON_LOG') -gt $c2 ]" ||
	fail "the third host did not connect"
rm -f "$NVLEND_TEST_AHEAD_HOLD"
wait "$up" || fail "upgrade while hosts came and went: $(cat "$T/revoke.out")"
grep_q "built ahead: its host changed it meanwhile" <"$DAEMON_LOG" ||
	fail "the controller of the host that left was not dropped from what was built"
assert_eq "$(grep -c "starts again afresh" "$DAEMON_LOG")" "$afresh0" "afresh starts"
wait "$perf3" || fail "the host that came during the build: $(cat "$T/perf3.err")"
assert_eq "$(json_get '["errors"]' <"$T/perf3.json")" 0 "I/O errors of the host that came"
assert_eq "$(json_get '["verify"]["errors"]' <"$T/perf3.json")" 0 \
	"verify errors of the host that came"
WORKER_PID=$(nvlend rpc nvlend_get_status | json_get '["pid"]')

log "a broken build is rolled back"
out=$(nvlend upgrade --binary "$T/broken" 2>&1) && fail "upgrade to a broken build succeeded: $out"
assert_contains "$out" "did not come up; the keeper started the old binary again" "rollback message"
grep_q "rolling back to $T/nvlendd-new" <"$DAEMON_LOG" || fail "no rollback in the log"
wait_until 10 sh -c "nvlend rpc nvlend_get_upgrade | grep -q '\"rolled_back\": true'" ||
	fail "the rolled-back worker does not say so"
WORKER_PID=$(nvlend rpc nvlend_get_status | json_get '["pid"]')
assert_eq "$(readlink "/proc/$WORKER_PID/exe")" "$T/nvlendd-new" "the binary after the rollback"

log "back to the first build, then to the same one again"
out=$(nvlend upgrade --binary "$BIN/nvlendd" 2>&1) || fail "upgrade back: $out"
assert_contains "$out" "to nvlend v0.1.0" "back to the first build"
out=$(nvlend --json upgrade 2>&1) || fail "upgrade to itself: $out"
assert_eq "$(echo "$out" | json_get '["version"]')" "nvlend v0.1.0" "upgrade to itself (JSON)"

log "refusals"
echo data >"$T/notexec"
chmod 0644 "$T/notexec"
out=$(nvlend upgrade --binary "$T/notexec" 2>&1) && fail "a non-executable binary was accepted"
assert_contains "$out" "Permission denied" "non-executable binary"
out=$(nvlend upgrade --binary /bin/true 2>&1) && fail "a binary that is no nvlendd was accepted"
assert_contains "$out" "does not answer as an nvlendd" "not an nvlendd"
out=$(nvlend rpc nvlend_upgrade '{"binary":"nvlendd"}' 2>&1) && fail "a relative path was accepted"
assert_contains "$out" "absolute path" "relative binary"

assert_eq "$(nvlend rpc lend_get_node | json_get '["node_id"]')" "$node0" "the lending node id"
assert_eq "$(nvlend rpc lend_list | json_get '.__len__()')" "$offers0" "lend offers"

kill -0 "$perf" 2>/dev/null || fail "nvlend-perf ended early"
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
# this host's own (the host that came during the build may have made its
# connect twice: a handshake the old worker had not finished when it went is
# closed and made again, docs/lifetime.md)
assert_eq "$(($(connects) - c0 - $(grep -c 'nvmf.c.*: controller [0-9]* for host nqn.2026-01.io.nvlend.test:\(left\|came\)' "$DAEMON_LOG")))" 1 \
	"Connects (a reconnect would add one)"
stop_nvlendd

# without a keeper: refused with the reason
start_nvlendd --no-keeper
out=$(nvlend upgrade 2>&1) && fail "upgrade without a keeper accepted"
assert_contains "$out" "needs nvlendd's keeper" "no keeper"
pass
