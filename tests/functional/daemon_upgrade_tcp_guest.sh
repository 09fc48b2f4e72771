#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 600
# asan: no
#
# Issue 16, live upgrade with the stock Linux NVMe/TCP initiator (QEMU
# guest, Debian's kernel; header and data digests, keep-alive 5 s): fio
# write+verify rounds run on /dev/nvme0n1 while the host runs `nvlend
# upgrade` three times (to a build with another version string, back, to
# itself). Checked: every fio round 0 errors; the guest's kernel log has no
# error recovery, reconnect, reset, timeout or I/O error; the controller is
# still live with the same cntlid (the guest's sysfs and
# nvmf_subsystem_get_controllers); a new worker pid after each upgrade; one
# Connect per queue in the daemon log (none after the first).
source "$(dirname "$0")/common.sh"
guest_prepare
ALLOW_WORKER_RESTARTS=1
cd "$T" || fail "cd"
NQN=nqn.2026-01.io.nvlend.test:tcpupg
PORT=$(free_port)
start_nvlendd --reactors 2 --log-file "$T/d.log"
DAEMON_LOG=$T/d.log
[ "$WORKER_PID" != "$DAEMON_PID" ] || fail "no keeper"
rpc nvmf_create_transport '{"trtype":"TCP","in_capsule_data_size":8192,"io_unit_size":32768}' \
	>/dev/null || fail "transport"
nvlend bdev create ram tu0 64M >/dev/null || fail "bdev"
rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true,\"serial_number\":\"NVLUPG01\"}" \
	>/dev/null || fail "subsystem"
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"tu0\"}}" >/dev/null ||
	fail "ns"
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"adrfam\":\"IPv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\"}}" \
	>/dev/null || fail "listener"
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

S=$T/share
mkdir -p "$S"
printf 'NQN=%s\nPORT=%s\n' "$NQN" "$PORT" >"$S/env"
guest_run -t 540 -s "$S" -f "$GUEST_TOOLS/tests/nvlend-tcp-upgrade-guest.sh" >"$T/guest.log" 2>&1 &
GPID=$!
on_exit "kill $GPID 2>/dev/null"
while [ ! -e "$S/go" ] && kill -0 $GPID 2>/dev/null; do sleep 0.2; done
[ -e "$S/go" ] || { cat "$T/guest.log" >&2; fail "the guest did not connect"; }
c0=$(connects)
ids0=$(cntlids)
log "guest connected: cntlid $ids0 ($(cat "$S/cntlid-before") in the guest)"
sleep 3
for to in "$T/nvlendd-new" "$BIN/nvlendd" ""; do
	pid0=$WORKER_PID
	if [ -n "$to" ]; then
		out=$(nvlend upgrade --binary "$to" 2>&1) || fail "upgrade to $to: $out"
	else
		out=$(nvlend upgrade 2>&1) || fail "upgrade: $out"
	fi
	echo "$out" >&2
	assert_contains "$out" "tcp $NQN controller" "TCP controller downtime"
	WORKER_PID=$(nvlend rpc nvlend_get_status | json_get '["pid"]')
	[ "$WORKER_PID" != "$pid0" ] || fail "the worker pid did not change"
	assert_eq "$(cntlids)" "$ids0" "cntlids after the upgrade"
	sleep 4
done
touch "$S/upgrades-done"
wait $GPID
grc=$?
cat "$T/guest.log" >&2
[ "$grc" = 0 ] || fail "guest failed (status $grc)"
grep_q GUEST_ALL_OK <"$T/guest.log" || fail "guest did not finish"
assert_eq "$(cat "$S/cntlid-after")" "$(cat "$S/cntlid-before")" "cntlid in the guest"
assert_eq "$(connects)" "$c0" "Connects after the first (a reconnect would add one)"
stop_nvlendd
pass
