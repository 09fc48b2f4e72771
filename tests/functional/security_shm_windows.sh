#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 60
#
# Security item 6 (issue 21), the budgets: shm data windows per host NQN and
# daemon-wide (nvmf_create_transport SHM max_window_per_host_mib 16,
# max_window_total_mib 24). Host A gets two 8 MiB windows, a third is
# refused (reason "resources", a message naming max_window_per_host_mib);
# host B gets 8 MiB, host C is refused by the daemon-wide budget (message
# naming max_window_total_mib); once one of A's controllers is gone, C gets
# its window. Refusals are CONNECT responses with a status and the
# connection closed. (Raw CONNECT messages on the control socket.)
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
grep -q "max_window_per_host_mib" "$DAEMON_LOG" || fail "no log line for the refused window"
pass
