#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Issue 16, live upgrade, the NVMe/TCP half (host only; the kernel initiator
# in the test guest is daemon_upgrade_tcp_guest.sh): nvlend's own TCP
# initiator (nvlend-perf --verify, randrw, 2 I/O queues at QD 16, 4 KiB and
# 64 KiB writes, so in-capsule writes and writes with R2T/H2CData flows are
# in flight, with header and data digests) runs while the daemon is upgraded
# three times (to a build with another version string, back, to itself)
# and once rolled back from a broken build. Checked:
#   - 0 I/O errors and 0 verify errors, and a single Connect per queue
#     (nvlend's initiator would reconnect if a connection dropped: none
#     does); the log says the queues were kept and taken back;
#   - `nvlend upgrade` lists the TCP controller with a downtime, and
#     nvmf_subsystem_get_controllers shows the same cntlid after each
#     upgrade, a new worker pid each time;
#   - a kill -9 of the worker (no upgrade) still closes the connections
#     (nothing of a live connection is kept while serving): nvlend-perf,
#     which does not reconnect, ends with an error, no TCP queue is taken
#     back, and a new Connect works.
# timeout: 180
source "$(dirname "$0")/common.sh"
ALLOW_WORKER_RESTARTS=1
cd "$T" || fail "cd"
start_nvlendd --reactors 2 --log-file "$T/d.log"
DAEMON_LOG=$T/d.log
[ "$WORKER_PID" != "$DAEMON_PID" ] || fail "no keeper"
NQN=nqn.2026-01.io.nvlend.test:tcpup
PORT=$(free_port)
rpc nvmf_create_transport '{"trtype":"TCP","in_capsule_data_size":8192,"io_unit_size":32768}' \
	>/dev/null || fail "transport"
nvlend bdev create ram tcpup 64M >/dev/null || fail "bdev"
rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true}" >/dev/null || fail "subsystem"
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"tcpup\"}}" >/dev/null ||
	fail "ns"
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"adrfam\":\"IPv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\"}}" \
	>/dev/null || fail "listener"
URI="nvme+tcp://127.0.0.1:$PORT/$NQN/1"
export NVLEND_PERF_STATUS=0
connects() { grep -c "nvmf.c.*: controller [0-9]* for host" "$DAEMON_LOG"; }
cntlids() {
	rpc nvmf_subsystem_get_controllers "{\"nqn\":\"$NQN\"}" |
		/usr/bin/python3 -c 'import json,sys; print(" ".join(sorted(str(c["cntlid"]) for c in json.load(sys.stdin))))'
}

cp "$BIN/nvlendd" "$T/nvlendd-new"
/usr/bin/python3 - "$T/nvlendd-new" <<'PY' || fail "cannot patch the version"
import sys
p = sys.argv[1]
b = open(p, "rb").read()
if b.count(b"0.1.0\0") < 1:
    sys.exit("version string not found")
open(p, "wb").write(b.replace(b"0.1.0\0", b"0.1.9\0"))
PY
printf '#!/bin/sh\n[ "$1" = --version ] && { echo "nvlendd 9.9.9"; exit 0; }\nexit 1\n' >"$T/broken"
chmod +x "$T/broken"

c0=$(connects)
PERF=$BIN/nvlend-perf
# two clients: 4 KiB (in-capsule writes) and 64 KiB (R2T + two H2CData each),
# on separate halves of the namespace, each verifying what it wrote
NVLEND_TCP_DIGESTS=header,data "$PERF" "$URI" --rw=randrw --verify --bs=4k --iodepth=16 \
	--numjobs=2 --size=32M --runtime=90 --json >"$T/perf4k.json" 2>"$T/perf4k.err" &
p1=$!
"$PERF" "$URI" --rw=randrw --verify --bs=64k --iodepth=8 --numjobs=1 --offset=32M --size=32M \
	--runtime=90 --json >"$T/perf64k.json" 2>"$T/perf64k.err" &
p2=$!
on_exit "kill $p1 $p2 2>/dev/null"
wait_until 10 sh -c "[ \$(grep -c 'nvmf.c.*: controller [0-9]* for host' '$DAEMON_LOG') -ge $((c0 + 2)) ]" ||
	fail "nvlend-perf did not connect"
sleep 1
ids0=$(cntlids)
[ -n "$ids0" ] || fail "no controllers"
log "controllers: $ids0"

upgrade_to() {
	local bin=$1 ver=$2 pid0=$WORKER_PID out
	if [ -n "$bin" ]; then
		out=$(nvlend upgrade --binary "$bin" 2>&1) || fail "upgrade to $bin: $out"
	else
		out=$(nvlend upgrade 2>&1) || fail "upgrade: $out"
	fi
	echo "$out" >&2
	assert_contains "$out" "to nvlend v$ver" "upgrade report"
	assert_contains "$out" "tcp $NQN controller" "TCP controller downtime"
	WORKER_PID=$(nvlend rpc nvlend_get_status | json_get '["pid"]')
	[ "$WORKER_PID" != "$pid0" ] || fail "the worker pid did not change"
	assert_eq "$(cntlids)" "$ids0" "cntlids after the upgrade"
	sleep 1
	kill -0 "$p1" 2>/dev/null && kill -0 "$p2" 2>/dev/null || fail "nvlend-perf ended"
}

log "upgrade to the new build"
upgrade_to "$T/nvlendd-new" 0.1.9
grep_q "tcp: upgrade: 5 queue(s) of 2 controller(s) stopped at a PDU boundary" <"$DAEMON_LOG" ||
	fail "the old worker did not keep every queue: $(grep 'tcp: upgrade' "$DAEMON_LOG")"
grep_q "taken back from the previous worker: 2 I/O queue(s)" <"$DAEMON_LOG" ||
	fail "the new worker did not take the queues back"

log "a broken build is rolled back: the old build takes the same connections back"
out=$(nvlend upgrade --binary "$T/broken" 2>&1) && fail "upgrade to a broken build succeeded: $out"
assert_contains "$out" "did not come up; the keeper started the old binary again" "rollback"
wait_until 10 sh -c "nvlend rpc nvlend_get_upgrade | grep -q '\"rolled_back\": true'" ||
	fail "the rolled-back worker does not say so"
WORKER_PID=$(nvlend rpc nvlend_get_status | json_get '["pid"]')
assert_eq "$(cntlids)" "$ids0" "cntlids after the rollback"

log "back to the first build, then to the same one again"
upgrade_to "$BIN/nvlendd" 0.1.0
upgrade_to "" 0.1.0

sleep 2
for p in $p1 $p2; do kill -INT "$p" 2>/dev/null; done
for f in perf4k perf64k; do
	p=$p1; [ $f = perf64k ] && p=$p2
	wait "$p"
	rc=$?
	[ "$rc" = 0 ] || { cat "$T/$f.err" "$T/$f.json" >&2; fail "$f failed (status $rc)"; }
	errs=$(json_get '["errors"]' <"$T/$f.json")
	verr=$(json_get '["verify"]["errors"]' <"$T/$f.json")
	checked=$(json_get '["verify"]["checked"]' <"$T/$f.json")
	log "$f: $errs I/O errors, $checked blocks verified, $verr verify errors"
	assert_eq "$errs" 0 "$f I/O errors"
	assert_eq "$verr" 0 "$f verify errors"
	[ "$checked" -gt 0 ] || fail "$f verified nothing"
done
assert_eq "$(($(connects) - c0))" 2 "Connects (a reconnect would add one)"

log "kill -9 of a serving worker: the connections close, the host connects again"
c1=$(connects)
"$PERF" "$URI" --rw=randrw --verify --bs=4k --iodepth=4 --runtime=30 --json \
	>"$T/perfk.json" 2>"$T/perfk.err" &
p3=$!
on_exit "kill $p3 2>/dev/null"
wait_until 10 sh -c "[ \$(grep -c 'nvmf.c.*: controller [0-9]* for host' '$DAEMON_LOG') -gt $c1 ]" ||
	fail "nvlend-perf did not connect"
sleep 1
kill -9 "$WORKER_PID"
# nvlend-perf does not reconnect: the closed connection ends it with an error
wait_until 15 sh -c "! kill -0 $p3 2>/dev/null" || fail "nvlend-perf did not see its connection close"
wait "$p3" && fail "nvlend-perf ended without an error after the kill -9"
wait_until 10 sh -c "nvlend rpc nvlend_get_status >/dev/null 2>&1" || fail "no worker after kill -9"
sed -n "/died of signal 9/,\$p" "$DAEMON_LOG" | grep_q "tcp.*taken back from the previous worker" &&
	fail "a connection of a killed worker was taken back"
"$PERF" "$URI" --rw=randread --verify --bs=4k --iodepth=4 --runtime=1 >/dev/null 2>"$T/perfr.err" ||
	fail "cannot connect after the kill -9: $(cat "$T/perfr.err")"
WORKER_PID=$(nvlend rpc nvlend_get_status | json_get '["pid"]')
stop_nvlendd
pass
