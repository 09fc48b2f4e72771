#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 60
#
# Security item 7 (issue 21): NVMe/TCP connection slots a network peer can
# take. With nvmf_create_transport TCP max_conns_per_peer 4: a fifth and
# sixth connection from one address are closed at accept while the first
# four stay, another address still gets in, and the count is given back
# when the peer's connections close. With discovery_kato_ms 1000: a
# discovery controller connected with KATO 0 is torn down after about a
# second instead of holding its connection forever. With reserved_conns
# 1020 (of 1024): once four connections exist, a new connection may not
# open a discovery controller (Connect Controller Busy), but an allowed
# host still connects to its NVM subsystem. (tcp_peer.py speaks the PDUs;
# peers bind distinct 127.0.0.x source addresses.)
source "$(dirname "$0")/common.sh"
PY=/usr/bin/python3
[ -x $PY ] || skip "needs /usr/bin/python3"

NQN=nqn.2024-01.io.nvlend:slots
HOSTNQN=nqn.2014-08.org.nvmexpress:uuid:0bad0bad-0000-4000-8000-000000000001
PORT=$(free_port)
DPORT=$(free_port)
start_nvlendd
rpc nvmf_create_transport '{"trtype":"TCP","max_conns_per_peer":4,"reserved_conns":0,"discovery_kato_ms":1000}' >/dev/null ||
	fail "nvmf_create_transport refused max_conns_per_peer/reserved_conns/discovery_kato_ms"
rpc nvmf_get_transports | grep -q '"max_conns_per_peer": 4' || fail "max_conns_per_peer not in nvmf_get_transports"
rpc bdev_malloc_create '{"name":"m0","num_blocks":2048,"block_size":512}' >/dev/null
rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\"}" >/dev/null
rpc nvmf_subsystem_add_host "{\"nqn\":\"$NQN\",\"host\":\"$HOSTNQN\"}" >/dev/null
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"m0\"}}" >/dev/null
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\"}}" >/dev/null
rpc nvmf_subsystem_add_listener "{\"nqn\":\"nqn.2014-08.org.nvmexpress.discovery\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$DPORT\"}}" >/dev/null

cat > "$T/slots.py" <<'PYEOF'
import socket, sys, time
sys.path.insert(0, sys.argv[1])
import tcp_peer as tp

port, dport, nqn, step = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
DISC = tp.DISC


def peer(src, p=dport):
    q = tp.Peer.__new__(tp.Peer)
    q.s = socket.create_connection(("127.0.0.1", p), timeout=10, source_address=(src, 0))
    q.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    q.hdgst = q.ddgst = False
    q.buf, q.c2h, q.last_status, q.last_cdw0 = b"", [], 0, 0
    return q


def still_open(q, secs):
    return not q.closed(secs)


if step == "per-peer":
    held = [peer("127.0.0.5") for _ in range(4)]
    extra = [peer("127.0.0.5") for _ in range(2)]
    for i, q in enumerate(extra):
        if not q.closed(2):
            tp.fail("connection %d from 127.0.0.5 beyond max_conns_per_peer 4 stayed open" % (i + 5))
    for i, q in enumerate(held):
        if not still_open(q, 0.2):
            tp.fail("connection %d from 127.0.0.5 (within the limit) was closed" % (i + 1))
    tp.ok("127.0.0.5: 4 connections held, the 5th and 6th closed at accept")
    # another address is not affected, and does a discovery Connect
    o = peer("127.0.0.6")
    o.icreq()
    st, _ = o.connect(DISC)
    if st:
        tp.fail("discovery Connect from 127.0.0.6: status 0x%x" % st)
    tp.ok("127.0.0.6 connects while 127.0.0.5 is at its limit")
    o.s.close()
    for q in held:
        q.s.close()
    # the daemon sees the EOFs and gives the count back
    deadline = time.time() + 5
    while True:
        again = [peer("127.0.0.5") for _ in range(4)]
        if all(still_open(q, 0.3) for q in again):
            break
        for q in again:
            q.s.close()
        if time.time() > deadline:
            tp.fail("127.0.0.5 did not get its connections back after closing them")
        time.sleep(0.3)
    for q in again:
        q.s.close()
    tp.ok("127.0.0.5 gets 4 connections again once its first ones closed")
elif step == "disc-kato":
    q = peer("127.0.0.7")
    q.icreq()
    st, _ = q.connect(DISC, kato=0)
    if st:
        tp.fail("discovery Connect with KATO 0: status 0x%x" % st)
    t0 = time.time()
    if not q.closed(6):
        tp.fail("a discovery controller with KATO 0 kept its connection for 6 s "
                "(discovery_kato_ms 1000)")
    tp.ok("discovery controller with KATO 0 torn down after %.1f s" % (time.time() - t0))
elif step == "reserve":
    fill = [peer("127.0.0.%d" % (10 + i)) for i in range(4)]
    time.sleep(0.3)
    d = peer("127.0.0.20")
    d.icreq()
    st, _ = d.connect(DISC)
    if st != 0x181:
        tp.fail("discovery Connect in the reserved slots: status 0x%x, expected 0x181 "
                "(Connect Controller Busy)" % st)
    if not d.closed(3):
        tp.fail("refused discovery Connect left its connection open")
    tp.ok("discovery Connect refused in the reserved slots")
    h = peer("127.0.0.21", port)
    h.icreq()
    st, cntlid = h.connect(nqn)
    if st:
        tp.fail("allowed host's Connect in the reserved slots: status 0x%x" % st)
    tp.ok("allowed host connects to %s in the reserved slots (cntlid %d)" % (nqn, cntlid))
    bad = peer("127.0.0.22", port)
    bad.icreq()
    st, _ = bad.connect(nqn, hostnqn="nqn.2024-01.io.nvlend:intruder")
    if st != 0x184:
        tp.fail("unknown host's Connect: status 0x%x, expected 0x184" % st)
    tp.ok("a host the subsystem does not allow is still refused")
    for q in fill + [h, bad]:
        q.s.close()
PYEOF
slots() { $PY "$T/slots.py" "$(dirname "$0")" "$PORT" "$DPORT" "$NQN" "$1" || fail "$1"; }

# sockets the daemon holds: listeners and RPC (the last RPC's closes first)
sockets() { find /proc/"$WORKER_PID"/fd -lname 'socket:*' 2>/dev/null | wc -l; }
sleep 0.5
BASE=$(sockets)
slots per-peer
grep -q "max_conns_per_peer" "$DAEMON_LOG" || fail "no log line for the refused connections"
slots disc-kato
rpc nvmf_create_transport '{"trtype":"TCP","reserved_conns":1020}' >/dev/null
# every connection of the earlier steps is gone before the reserve is counted
wait_until 10 sh -c "[ \$(find /proc/$WORKER_PID/fd -lname 'socket:*' | wc -l) -le $BASE ]" ||
	fail "the daemon still holds connections of the earlier steps ($(sockets) sockets, $BASE before)"
slots reserve
wait_until 10 sh -c "[ \$(find /proc/$WORKER_PID/fd -lname 'socket:*' | wc -l) -le $BASE ]" ||
	fail "the daemon still holds connections after the last step"
pass
