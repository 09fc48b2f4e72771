#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# RPC connection timeouts: clients that fill every --rpc-max-clients slot
# without doing anything lock the CLI out only until the timeouts end them.
# A half-sent request is answered with -32700 and closed after
# --rpc-request-timeout, an idle connection is closed after
# --rpc-idle-timeout, a client that keeps calling over one connection is not
# disturbed. (With the defaults, 30 s and 10 min, daemon_shutdown.sh stops
# the daemon while such clients are still held.)
# timeout: 60
source "$(dirname "$0")/common.sh"

start_nvlendd --rpc-max-clients 5 --rpc-request-timeout 2 --rpc-idle-timeout 5

# 2 idle, 2 half-sent requests, 1 client calling every 0.5 s: all 5 slots taken
/usr/bin/python3 - "$NVLEND_SOCKET" >"$T/clients.out" 2>&1 <<'PY' &
import json, select, socket, sys, time

path = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    return s

hogs = {}
for i in range(2):
    hogs[conn()] = "idle%d" % i
for i in range(2):
    s = conn()
    s.sendall(b'{"jsonrpc": "2.0", "method": "bdev_get')
    hogs[s] = "half%d" % i
act = conn()
act.settimeout(5)
got = {s: b"" for s in hogs}
t0 = time.time()
print("connected", flush=True)
calls, nxt, buf = 0, t0, b""
while hogs and time.time() - t0 < 20:
    if time.time() >= nxt:
        act.sendall(json.dumps({"jsonrpc": "2.0", "method": "bdev_get_bdevs",
                                "id": calls}).encode())
        while b"\n" not in buf:
            d = act.recv(4096)
            if not d:
                sys.exit("active client: closed by the daemon after %.1f s" % (time.time() - t0))
            buf += d
        line, buf = buf.split(b"\n", 1)
        r = json.loads(line)
        assert r["id"] == calls and r["result"] == [], r
        calls += 1
        nxt += 0.5
    r, _, _ = select.select(list(hogs), [], [], 0.05)
    for s in r:
        d = s.recv(4096)
        if d:
            got[s] += d
            continue
        print("closed %s after %.1f s: %s" % (hogs[s], time.time() - t0,
                                               got[s].decode().strip()), flush=True)
        s.close()
        del hogs[s]
print("active calls %d, still open %d" % (calls, len(hogs)), flush=True)
act.close()
PY
clients=$!
on_exit "kill $clients"
wait_until 10 grep -q connected "$T/clients.out" || fail "clients did not connect"

# every slot taken: the CLI is refused...
msg=$(nvlend -t 2 status 2>&1) && fail "CLI served beyond --rpc-max-clients: $msg"
assert_contains "$msg" "too many RPC clients" "refused CLI"
# ...until the half-sent requests time out
wait_until 10 nvlend -t 2 status || fail "CLI still refused after the request timeout"
wait "$clients" || fail "clients: $(cat "$T/clients.out")"
log "$(cat "$T/clients.out")"

# when each was closed, and how
out=$(cat "$T/clients.out")
/usr/bin/python3 - "$T/clients.out" <<'PY' || fail "timeouts: $out"
import json, re, sys
closed = {}
for line in open(sys.argv[1]):
    m = re.match(r"closed (\w+) after ([0-9.]+) s: (.*)", line)
    if m:
        closed[m.group(1)] = (float(m.group(2)), m.group(3))
    m = re.match(r"active calls (\d+), still open (\d+)", line)
    if m:
        calls, still = int(m.group(1)), int(m.group(2))
assert still == 0 and set(closed) == {"idle0", "idle1", "half0", "half1"}, closed
for n in ("half0", "half1"):
    t, text = closed[n]
    assert 1.9 <= t < 4.5, (n, t)
    err = json.loads(text)["error"]
    assert err["code"] == -32700 and "timed out" in err["message"], (n, err)
for n in ("idle0", "idle1"):
    t, text = closed[n]
    assert 4.9 <= t < 8, (n, t)
    assert text == "", (n, text)
# the client that kept calling over one connection outlived the idle timeout
assert calls >= 10, calls
PY
grep -q "closing a client whose request (.* bytes so far) stayed incomplete for 2 s" "$DAEMON_LOG" ||
	fail "no log line for the incomplete requests"
[ "$(grep -c "closing a client idle for 5 s" "$DAEMON_LOG")" = 2 ] ||
	fail "no log lines for the idle clients"
nvlend status >/dev/null || fail "daemon unusable afterwards"
stop_nvlendd

# 0 turns a timeout off; bad values are refused
start_nvlendd --rpc-request-timeout 0 --rpc-idle-timeout 1
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"{\"jsonrpc\": \"2.0\"")
s.settimeout(4)
try:
    d = s.recv(100)
    sys.exit("closed a half-sent request with --rpc-request-timeout 0: %r" % d)
except socket.timeout:
    pass' "$NVLEND_SOCKET" || fail "--rpc-request-timeout 0"
stop_nvlendd
for args in "--rpc-request-timeout x" "--rpc-idle-timeout -1" "--rpc-idle-timeout 99999999999"; do
	# shellcheck disable=SC2086
	msg=$("$BIN/nvlendd" -s "$T/bad.sock" $args 2>&1)
	rc=$?
	[ $rc = 2 ] || fail "nvlendd $args: exit $rc, expected 2 ($msg)"
	assert_contains "$msg" "timeout must be" "nvlendd $args"
done
pass
