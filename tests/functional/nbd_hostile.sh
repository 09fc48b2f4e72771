#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Hostile NBD clients (raw sockets, Python) while a well-behaved libnbd client
# keeps writing and verifying on another connection: bad magics, bad client
# flags, oversized options and lengths, out-of-range and unaligned requests,
# unknown commands and flags, a client that never reads its replies, abrupt
# closes in the middle of a handshake and of a WRITE payload, malformed
# metadata-context options and BLOCK_STATUS with bad ranges, flags, no context
# or a context negotiated for another export. Each gets the
# protocol's error or a hard disconnect; the server keeps serving the others
# and ends with no connection left behind.
# timeout: 120
source "$(dirname "$0")/common.sh"
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "needs python3-libnbd (/usr/bin/python3 -c 'import nbd')"

start_nvlendd --reactors 2
port=$(free_port) || fail "no free port"
nvlend bdev create ram r0 64M >/dev/null || fail "ram bdev"
nvlend nbd start --port "$port" || fail "nbd start"
nvlend nbd export add disk0 r0 || fail "export add"
nvlend nbd export add ro1 r0 --read-only || fail "export add ro1"

cat > "$T/hostile.py" <<'EOF'
import socket, struct, sys, threading, time, nbd

HOST, PORT = "127.0.0.1", int(sys.argv[1])
SIZE = 64 << 20
IHAVEOPT = 0x49484156454F5054
REQ_MAGIC, SIMPLE_MAGIC, SR_MAGIC = 0x25609513, 0x67446698, 0x668E33EF
EPERM, EIO, EINVAL, ENOSPC = 1, 5, 22, 28
failures = []

def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAILED:", what, flush=True)

# ---- the well-behaved client ----------------------------------------------------
stop = threading.Event()
good_ops = [0]
def good():
    try:
        h = nbd.NBD(); h.connect_uri(f"nbd://{HOST}:{PORT}/disk0")
        i = 0
        while not stop.is_set():
            data = struct.pack(">Q", i) * 512
            off = (8 << 20) + (i % 256) * 4096
            h.pwrite(data, off)
            if h.pread(4096, off) != data:
                failures.append("good client read back wrong data"); return
            i += 1
        good_ops[0] = i
        h.shutdown()
    except Exception as e:
        failures.append(f"good client failed: {e}")
gt = threading.Thread(target=good); gt.start()

# ---- raw protocol helpers ---------------------------------------------------------
def conn():
    s = socket.create_connection((HOST, PORT)); s.settimeout(10); return s

def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError(f"EOF after {len(b)} of {n} bytes")
        b += c
    return b

def is_closed(s, what):
    """The server must hard-disconnect: EOF (or reset) without further bytes."""
    try:
        d = s.recv(65536)
        while d:
            d = s.recv(65536)
        ok = True
    except (ConnectionResetError, BrokenPipeError):
        ok = True
    except socket.timeout:
        ok = False
    check(ok, f"{what}: server did not disconnect")
    s.close()

def greet(s, cflags=3):
    magic, ihave, hsf = struct.unpack(">QQH", recvn(s, 18))
    check(magic == 0x4E42444D41474943 and ihave == IHAVEOPT and hsf & 1, "greeting")
    s.sendall(struct.pack(">I", cflags))

def send_opt(s, o, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, o, len(data)) + data)

def opt_reply(s):
    magic, o, t, ln = struct.unpack(">QIII", recvn(s, 20))
    check(magic == 0x3E889045565A9, "option reply magic")
    return o, t, recvn(s, ln)

def go(s, name=b"disk0", structured=False, greeted=False):
    if not greeted:
        greet(s)
    if structured:
        send_opt(s, 8)
        check(opt_reply(s)[1] == 1, "structured reply ACK")
    send_opt(s, 7, struct.pack(">I", len(name)) + name + struct.pack(">HH", 1, 3))
    while True:
        o, t, d = opt_reply(s)
        if t == 1:
            return
        if t & 0x80000000:
            raise RuntimeError(f"GO failed: {t:#x} {d!r}")

def req(s, t, off, ln, flags=0, handle=1, payload=b""):
    s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, flags, t, handle, off, ln) + payload)

def simple(s):
    magic, err, handle = struct.unpack(">IIQ", recvn(s, 16))
    check(magic == SIMPLE_MAGIC, f"simple reply magic {magic:#x}")
    return err, handle

def chunk(s):
    magic, flags, t, handle, ln = struct.unpack(">IHHQI", recvn(s, 20))
    check(magic == SR_MAGIC, f"structured reply magic {magic:#x}")
    return flags, t, handle, recvn(s, ln)

# ---- handshake abuse ----------------------------------------------------------------
s = conn(); s.close()                                           # connect, close at once
s = conn(); recvn(s, 18); s.sendall(b"\x00\x00"); s.close()     # half the client flags
s = conn(); greet(s, 0xFFFFFFFF); is_closed(s, "unknown client flags")
s = conn(); greet(s); s.sendall(struct.pack(">QII", 0xDEADBEEF, 7, 0)); is_closed(s, "bad option magic")
s = conn(); s.sendall(b"\xff" * 4096); is_closed(s, "garbage handshake")
s = conn(); greet(s); s.sendall(struct.pack(">QII", IHAVEOPT, 1, 0xFFFFFFFF)); is_closed(s, "oversized EXPORT_NAME")
s = conn(); greet(s); send_opt(s, 1, b"nosuch"); is_closed(s, "EXPORT_NAME of an unknown export")
s = conn(); greet(s)
send_opt(s, 6, b"\x00" * (1 << 20))                             # 1 MiB INFO: skipped, TOO_BIG
o, t, d = opt_reply(s); check(t == 0x80000009, f"oversized option: {t:#x}")
send_opt(s, 7, struct.pack(">I", 6) + b"nosuch" + b"\0\0")      # unknown export: error, go on
o, t, d = opt_reply(s); check(t == 0x80000006 and b"nosuch" in d, f"unknown export: {t:#x} {d!r}")
send_opt(s, 7, struct.pack(">I", 100) + b"x")                   # malformed GO
o, t, d = opt_reply(s); check(t == 0x80000003, f"malformed GO: {t:#x}")
send_opt(s, 3)                                                   # LIST still works
o, t, d = opt_reply(s); check(t == 2 and d[4:9] == b"disk0", f"LIST after errors: {t} {d!r}")
o, t, d = opt_reply(s); check(t == 2 and d[4:7] == b"ro1", f"LIST second export: {t} {d!r}")
o, t, d = opt_reply(s); check(t == 1, "LIST ACK")
send_opt(s, 2); o, t, d = opt_reply(s); check(t == 1, "ABORT ACK"); is_closed(s, "after ABORT")
s = conn(); greet(s); s.sendall(struct.pack(">QII", IHAVEOPT, 7, 40)[:12]); s.close()  # mid-option

# ---- transmission abuse, simple replies -------------------------------------------------
s = conn(); go(s)
req(s, 0, 0, 0xFFFFFFFF, handle=11); check(simple(s) == (EINVAL, 11), "oversize read length")
req(s, 0, 1 << 63, 4096, handle=12); check(simple(s) == (EINVAL, 12), "read far past the end")
req(s, 0, (1 << 64) - 512, 1024, handle=13); check(simple(s) == (EINVAL, 13), "offset+length overflow")
req(s, 1, SIZE, 4096, handle=14, payload=b"w" * 4096); check(simple(s) == (ENOSPC, 14), "write past end")
req(s, 1, 100, 512, handle=15, payload=b"u" * 512); check(simple(s) == (EINVAL, 15), "unaligned write")
req(s, 6, SIZE - 512, 1024, handle=16); check(simple(s) == (ENOSPC, 16), "zeroes past end")
req(s, 42, 0, 512, handle=17); check(simple(s) == (EINVAL, 17), "unknown command")
req(s, 0, 0, 512, flags=1 << 9, handle=18); check(simple(s) == (EINVAL, 18), "unknown flag")
req(s, 0, 0, 512, flags=4, handle=19); check(simple(s) == (EINVAL, 19), "DF without structured replies")
req(s, 7, 0, 512, handle=20); check(simple(s) == (EINVAL, 20), "block status without context")
req(s, 3, 0, 512, handle=21); check(simple(s) == (EINVAL, 21), "flush with a length")
req(s, 0, 0, 0, handle=22); check(simple(s) == (EINVAL, 22), "zero-length read")
big = 48 << 20                                                  # over the 32 MiB maximum
s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, 1, 23, 0, big))
s.sendall(b"\0" * big)
r = simple(s); check(r == (EINVAL, 23), f"write over the maximum block size: {r}")
req(s, 1, 0, 4096, handle=24, payload=b"k" * 4096); check(simple(s) == (0, 24), "write after errors")
req(s, 0, 0, 4096, handle=25); check(simple(s) == (0, 25) and recvn(s, 4096) == b"k" * 4096, "read back")
# pipelined: 200 requests in one send, every handle answered once
s.sendall(b"".join(struct.pack(">IHHQQI", REQ_MAGIC, 0, 0, 1000 + i, i * 4096, 4096) for i in range(200)))
seen = set()
for _ in range(200):
    err, h = simple(s); recvn(s, 4096) if err == 0 else None; seen.add(h)
check(seen == set(range(1000, 1200)), "pipelined replies")
# DISC right after a write: the write is answered, then the connection ends
req(s, 1, 4096, 4096, handle=26, payload=b"d" * 4096); req(s, 2, 0, 0, handle=27)
check(simple(s) == (0, 26), "write before DISC answered"); is_closed(s, "after DISC")

# ---- structured replies: READ data and error chunks -------------------------------------------
s = conn(); go(s, structured=True)
req(s, 0, 4096, 4096, handle=31)
flags, t, h, d = chunk(s)
check(t == 1 and flags & 1 and h == 31 and d[:8] == struct.pack(">Q", 4096) and d[8:] == b"d" * 4096,
      f"OFFSET_DATA chunk: type {t} flags {flags}")
req(s, 0, SIZE, 4096, handle=32)
flags, t, h, d = chunk(s)
err, mlen = struct.unpack(">IH", d[:6])
check(t == 0x8001 and flags & 1 and h == 32 and err == EINVAL and mlen == len(d) - 6 and mlen > 0,
      f"ERROR chunk: type {t:#x} err {err}")
req(s, 1, 0, 512, handle=33, payload=b"q" * 512)
err, h = simple(s); check((err, h) == (0, 33), "simple reply to a write under structured replies")
s.sendall(struct.pack(">IHHQQI", 0x12345678, 0, 0, 34, 0, 512)); is_closed(s, "bad request magic")

# ---- metadata contexts and BLOCK_STATUS -------------------------------------------------------
def meta_opt(name, queries, count=None):
    d = struct.pack(">I", len(name)) + name + struct.pack(">I", len(queries) if count is None else count)
    for q in queries:
        d += struct.pack(">I", len(q)) + q
    return d
def err_chunk(s, handle, what):
    flags, t, h, d = chunk(s)
    err = struct.unpack(">I", d[:4])[0] if len(d) >= 4 else None
    check(t == 0x8001 and flags & 1 and h == handle and err == EINVAL,
          f"{what}: type {t:#x} handle {h} err {err}")
s = conn(); greet(s)
send_opt(s, 10, meta_opt(b"disk0", [b"base:allocation"]))           # before structured replies
o, t, d = opt_reply(s); check(t == 0x80000003, f"SET_META_CONTEXT before structured replies: {t:#x}")
send_opt(s, 8); check(opt_reply(s)[1] == 1, "structured reply ACK")
for what, data in [("query cut short", meta_opt(b"disk0", [b"base:allocation"])[:-3]),
                   ("4 billion queries", meta_opt(b"disk0", [], 0xFFFFFFFF)),
                   ("query over 4096 bytes", meta_opt(b"disk0", [b"base:" + b"x" * 5000])),
                   ("name length past the option", struct.pack(">I", 0xFFFFFFF0) + b"disk0" + b"\0" * 4),
                   ("query without a namespace", meta_opt(b"disk0", [b"allocation"])),
                   ("trailing bytes", meta_opt(b"disk0", [b"base:allocation"]) + b"zz")]:
    send_opt(s, 10, data); o, t, d = opt_reply(s); check(t == 0x80000003, f"SET_META_CONTEXT {what}: {t:#x}")
send_opt(s, 9, meta_opt(b"nosuch", []))
o, t, d = opt_reply(s); check(t == 0x80000006, f"LIST_META_CONTEXT of an unknown export: {t:#x}")
send_opt(s, 10, meta_opt(b"disk0", [b"qemu:dirty-bitmap:x", b"base:"]))  # selects nothing
o, t, d = opt_reply(s); check(t == 1, f"SET_META_CONTEXT of unknown contexts: plain ACK ({t:#x})")
go(s, structured=False, greeted=True)
req(s, 7, 0, 4096, handle=61); err_chunk(s, 61, "block status with no context selected")
req(s, 2, 0, 0); s.close()
# a context selected for disk0, then GO to another export: not negotiated there
s = conn(); greet(s); send_opt(s, 8); opt_reply(s)
send_opt(s, 10, meta_opt(b"disk0", [b"base:allocation"]))
o, t, d = opt_reply(s); check(t == 4 and d[4:] == b"base:allocation", f"META_CONTEXT reply {t} {d!r}")
check(opt_reply(s)[1] == 1, "SET_META_CONTEXT ACK")
go(s, b"ro1", greeted=True)
req(s, 7, 0, 4096, handle=62); err_chunk(s, 62, "block status on an export the context was not set for")
req(s, 2, 0, 0); s.close()
# negotiated: bad ranges and flags are EINVAL, good ones answered, the connection lives on
s = conn(); greet(s); send_opt(s, 8); opt_reply(s)
send_opt(s, 10, meta_opt(b"disk0", [b"base:allocation", b"base:allocation"]))
o, t, d = opt_reply(s); ctx = struct.unpack(">I", d[:4])[0]
check(t == 4, "META_CONTEXT reply"); check(opt_reply(s)[1] == 1, "selected once, then ACK")
go(s, greeted=True)
for h, (off, ln, fl, what) in enumerate([(SIZE - 512, 1024, 0, "past the end"),
                                         (1 << 63, 512, 0, "far past the end"),
                                         ((1 << 64) - 512, 1024, 0, "offset+length overflow"),
                                         (0, 0, 0, "zero length"), (100, 512, 0, "unaligned offset"),
                                         (0, 0xFFFFFFFF, 0, "unaligned 4 GiB length"),
                                         (0, 0xFFFFFE00, 0, "4 GiB length past the end"),
                                         (0, 512, 16, "FAST_ZERO flag"), (0, 512, 4, "DF flag"),
                                         (0, 512, 32, "PAYLOAD_LEN without extended headers"),
                                         (0, 512, 1 << 12, "unknown flag")], start=70):
    req(s, 7, off, ln, fl, handle=h); err_chunk(s, h, f"block status {what}")
def extents(d):
    cid = struct.unpack(">I", d[:4])[0]
    return cid, [struct.unpack(">II", d[i:i + 8]) for i in range(4, len(d), 8)]
req(s, 7, 0, SIZE, handle=90)
flags, t, h, d = chunk(s); cid, ex = extents(d)
check(t == 5 and flags & 1 and h == 90 and cid == ctx and (len(d) - 4) % 8 == 0 and ex and
      sum(l for l, _ in ex) <= SIZE and all(l > 0 and l % 512 == 0 for l, _ in ex),
      f"BLOCK_STATUS chunk: type {t} ctx {cid}/{ctx} {ex[:4]}")
req(s, 7, 4096, SIZE - 4096, flags=8, handle=91)                   # REQ_ONE
flags, t, h, d = chunk(s); cid, ex = extents(d)
check(t == 5 and h == 91 and len(ex) == 1 and ex[0][0] <= SIZE - 4096, f"REQ_ONE: {ex}")
s.sendall(b"".join(struct.pack(">IHHQQI", REQ_MAGIC, 0, 7, 2000 + i, i * 65536, 65536) for i in range(300)))
seen = set()
for _ in range(300):
    flags, t, h, d = chunk(s); check(t == 5, f"pipelined block status type {t}"); seen.add(h)
check(seen == set(range(2000, 2300)), "pipelined block status replies")
req(s, 2, 0, 0); is_closed(s, "after DISC (block status)")

# ---- a client that never reads its replies, then vanishes -------------------------------------
s = conn(); go(s)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
burst = b"".join(struct.pack(">IHHQQI", REQ_MAGIC, 0, 0, i, (i % 16) * (1 << 20), 1 << 20) for i in range(400))
s.settimeout(3)
try:
    s.sendall(burst)                    # the server stops reading at its bound: this may block
except socket.timeout:
    pass
s.close()

# ---- abrupt close in the middle of a WRITE payload --------------------------------------------------
s = conn(); go(s)
s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, 1, 41, 0, 1 << 20) + b"z" * 1000)
s.close()
s = conn(); go(s)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, 1, 42, 0, 1 << 20) + b"z" * 100000)
s.close()                                                           # RST

# the interrupted writes never reached the disk
s = conn(); go(s)
req(s, 0, 0, 4096, handle=51)
check(simple(s) == (0, 51) and recvn(s, 4096) == b"q" * 512 + b"k" * 3584,
      "data intact after abrupt closes")
req(s, 2, 0, 0); s.close()

time.sleep(0.5)
stop.set(); gt.join(30)
check(not gt.is_alive(), "good client hung")
check(good_ops[0] > 10, f"good client made progress ({good_ops[0]} ops)")
if failures:
    print("FAILURES:", failures); sys.exit(1)
print("hostile ok;", good_ops[0], "good ops meanwhile")
EOF
/usr/bin/python3 "$T/hostile.py" "$port" || fail "hostile clients"
# everything was cleaned up, and the server still serves
wait_until 15 sh -c "[ \"\$(nvlend --json nbd status | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"connections\"])')\" = 0 ]" ||
	fail "connections left behind: $(nvlend nbd status)"
[ "$(nvlend --json nbd export list | json_get '[0]["connections"]')" = 0 ] || fail "export still has connections"
/usr/bin/python3 -c "
import nbd; h = nbd.NBD(); h.connect_uri('nbd://127.0.0.1:$port/disk0')
h.pwrite(b'ok' * 2048, 0); assert h.pread(4096, 0) == b'ok' * 2048; h.shutdown()" || fail "server unusable afterwards"
nvlend status >/dev/null || fail "daemon died"

# daemon shutdown (SIGTERM) while clients on both reactors keep I/O going:
# they are drained and disconnected, and the daemon exits cleanly (status 0,
# no sanitizer report; stop_nvlendd checks)
cat > "$T/busy.py" <<'PYEOF'
import sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1]); open(sys.argv[2], "w").close()
try:
    while True:
        h.pwrite(b"x" * 65536, 0); h.pread(65536, 65536)
except nbd.Error:
    sys.exit(0)
PYEOF
/usr/bin/python3 "$T/busy.py" "nbd://127.0.0.1:$port/disk0" "$T/b1" & b1=$!
/usr/bin/python3 "$T/busy.py" "nbd://127.0.0.1:$port/disk0" "$T/b2" & b2=$!
on_exit "kill $b1 $b2"
wait_until 10 test -f "$T/b1" -a -f "$T/b2" || fail "busy clients did not start"
sleep 0.5
stop_nvlendd
wait $b1 || fail "busy client 1 did not see a clean disconnect"
wait $b2 || fail "busy client 2 did not see a clean disconnect"
pass
