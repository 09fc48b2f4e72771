#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 90
#
# Security item 6 (issue 21), the budgets: shm data windows per host NQN and
# daemon-wide (nvmf_create_transport SHM max_window_per_host_mib 16,
# max_window_total_mib 24). Host A gets two 8 MiB windows, a third is
# refused (reason "resources", a message naming max_window_per_host_mib);
# host B gets 8 MiB, host C is refused by the daemon-wide budget (message
# naming max_window_total_mib); once one of A's controllers is gone, C gets
# its window. Refusals are CONNECT responses with a status and the
# connection closed. (Raw CONNECT messages on the control socket.)
# Then the allocation itself: windows are made by a thread, not on reactor 0
# (which serves RPC); RPC answers while one is being made, and a host that
# leaves before its window is ready leaves nothing held.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
PY=/usr/bin/python3
[ -x $PY ] || skip "needs /usr/bin/python3"

start_nvlendd
rpc nvmf_create_transport '{"trtype":"SHM","max_window_per_host_mib":16,"max_window_total_mib":24}' >/dev/null ||
	fail "nvmf_create_transport refused max_window_per_host_mib/max_window_total_mib"
rpc nvmf_get_transports | grep -q '"max_window_total_mib": 24' || fail "budget not in nvmf_get_transports"
shm_target win 8M

SOCK=$T/win.sock $PY - "$NQN" <<'PY' || fail "window budgets"
import os, socket, struct, sys, time
nqn = sys.argv[1].encode()
path = os.environ["SOCK"]
MAGIC, VER = 0x534c564e, 1
MiB = 1 << 20


def connect(host, window):
    hostnqn = ("nqn.2026-01.io.nvlend.test:host-" + host).encode()
    hostid = bytes([ord(host[0])]) * 16
    body = nqn.ljust(256, b"\0") + hostnqn.ljust(256, b"\0") + hostid + struct.pack("<IIQ", 1000, 0, window)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(path)
    s.send(struct.pack("<IHHII", MAGIC, VER, 1, 16 + len(body), 0) + body)
    r, fds, _, _ = socket.recv_fds(s, 4096, 4)
    for fd in fds:
        os.close(fd)
    status = struct.unpack_from("<H", r, 16)[0]
    reason = struct.unpack_from("<I", r, 36)[0]
    msg = r[40:252].split(b"\0")[0].decode(errors="replace")
    return s, status, reason, msg


def closed_by_peer(s):
    try:
        return s.recv(4096) == b""
    except ConnectionResetError:
        return True


fails = 0


def check(ok, what):
    global fails
    print(("PASS  " if ok else "FAIL  ") + what, flush=True)
    fails += 0 if ok else 1


def refused(host, window, word, what):
    s, st, reason, msg = connect(host, window)
    check(st != 0 and reason == 3 and word in msg and closed_by_peer(s),
          "%s -> refused (status 0x%x, reason %d: %s)" % (what, st, reason, msg))
    s.close()


a1 = connect("a", 8 * MiB)
a2 = connect("a", 8 * MiB)
check(a1[1] == 0 and a2[1] == 0, "host a: two 8 MiB windows (%s, %s)" % (a1[3] or "ok", a2[3] or "ok"))
refused("a", 2 * MiB, "max_window_per_host_mib", "host a: a third window, 2 MiB, beyond 16 MiB")
b1 = connect("b", 8 * MiB)
check(b1[1] == 0, "host b: an 8 MiB window (%s)" % (b1[3] or "ok"))
refused("c", 2 * MiB, "max_window_total_mib", "host c: 2 MiB beyond the daemon's 24 MiB")
a1[0].close()
deadline = time.time() + 5
while True:
    c1 = connect("c", 2 * MiB)
    if c1[1] == 0 or time.time() > deadline:
        break
    c1[0].close()
    time.sleep(0.2)
check(c1[1] == 0, "host c: 2 MiB once one of a's windows is gone (%s)" % (c1[3] or "ok"))
for s in (a2[0], b1[0], c1[0]):
    s.close()
sys.exit(1 if fails else 0)
PY
grep_q "max_window_per_host_mib" <"$DAEMON_LOG" || fail "no log line for the refused window"
stop_nvlendd

# Windows are made off the reactors: while one is being made (slowed to 3 s
# by a test hook), RPC answers at once; a host that leaves meanwhile costs
# nothing (its window is dropped when made, the budget frees).
NVLEND_TEST_WINDOW_DELAY_MS=3000 start_nvlendd
rpc nvmf_create_transport '{"trtype":"SHM","max_window_per_host_mib":16}' >/dev/null || fail "transport"
shm_target win2 8M
cat >"$T/conn.py" <<'PY'
import os, socket, struct, sys, time
path, nqn, host, mib, mode = sys.argv[1], sys.argv[2].encode(), sys.argv[3], int(sys.argv[4]), sys.argv[5]
hostnqn = ("nqn.2026-01.io.nvlend.test:host-" + host).encode()
body = nqn.ljust(256, b"\0") + hostnqn.ljust(256, b"\0") + bytes([ord(host[0])]) * 16 + \
    struct.pack("<IIQ", 1000, 0, mib << 20)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(20)
s.connect(path)
s.send(struct.pack("<IHHII", 0x534c564e, 1, 1, 16 + len(body), 0) + body)
if mode == "leave":
    s.close()
    sys.exit(0)
r, fds, _, _ = socket.recv_fds(s, 4096, 4)
for fd in fds:
    os.close(fd)
status = struct.unpack_from("<H", r, 16)[0]
print("answered status %d after the window was made" % status, flush=True)
if mode == "hold":
    time.sleep(float(os.environ.get("HOLD", "0")))
sys.exit(0 if status == 0 else 1)
PY
$PY "$T/conn.py" "$T/win2.sock" "$NQN" d 8 wait >"$T/d.out" 2>&1 &
dpid=$!
on_exit "kill $dpid 2>/dev/null"
# the target accepted the CONNECT (its controller exists); the window is being made
wait_until 10 sh -c "nvlend subsystem controllers $NQN | grep -q host-d" || fail "host d's controller never appeared"
nvlend -t 1 rpc nvlend_get_version >/dev/null || fail "RPC stalled while a window was being made"
nvlend -t 1 subsystem list >/dev/null || fail "RPC stalled while a window was being made (2)"
[ ! -s "$T/d.out" ] || fail "host d answered before its window was made: $(cat "$T/d.out")"
wait "$dpid" || fail "host d's CONNECT: $(cat "$T/d.out")"
assert_contains "$(cat "$T/d.out")" "answered status 0" "host d"
# host e leaves while its 8 MiB window is made; then host e's budget (16 MiB)
# still holds two 8 MiB windows
$PY "$T/conn.py" "$T/win2.sock" "$NQN" e 8 leave || fail "host e"
sleep 3.5
HOLD=1 $PY "$T/conn.py" "$T/win2.sock" "$NQN" e 8 hold >"$T/e1.out" 2>&1 &
e1=$!
$PY "$T/conn.py" "$T/win2.sock" "$NQN" e 8 wait >"$T/e2.out" 2>&1 || fail "second window of e: $(cat "$T/e2.out")"
wait "$e1" || fail "first window of e: $(cat "$T/e1.out")"
stop_nvlendd
pass
