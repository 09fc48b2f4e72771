#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# virtio-blk controllers without a VM (fast; runs under ASan too):
#   - CLI/RPC: create, list, destroy, errors (unknown bdev, duplicate name,
#     socket path taken by a file or by a live server), SPDK's names
#     (vhost_create_blk_controller, vhost_get_controllers,
#     vhost_delete_controller), save_config + `nvlendd -c`, stale socket
#     taken over after kill -9; the SPDK-style socket (relative to the vhost
#     socket directory) is saved absolute, so a daemon restarted from another
#     directory listens at the same path; nvlendd -S DIR puts such sockets in
#     DIR.
#   - a minimal vhost-user front-end in Python (memfd guest memory, eventfds,
#     SCM_RIGHTS) doing the handshake QEMU does, GET_CONFIG, a write and a
#     read that must round-trip, GET_ID, then hostile requests (descriptor
#     loop, buffer outside guest memory, wrong direction, short header,
#     unknown type, malformed messages, a second front-end, a broken avail
#     ring): each gets its status or is refused, the daemon keeps serving.
# timeout: 90
source "$(dirname "$0")/common.sh"
requires /usr/bin/python3 socat

cd "$T" || fail "cd"
start_nvlendd
nvlend bdev create ram r0 32M >/dev/null || fail "ram bdev"
nvlend bdev create ram r1 8M >/dev/null || fail "ram bdev r1"

# ---- control plane ----
assert_eq "$(nvlend vblk create c0 r0 "$T/c0.sock" --queues 2 --queue-size 64)" \
	"virtio-blk controller c0 serves bdev r0 on $T/c0.sock (2 queues)" "create"
[ -S "$T/c0.sock" ] || fail "no socket"
nvlend vblk list | grep '^c0  *r0  *listening  *2 ' >/dev/null || fail "list: $(nvlend vblk list)"
expect_fail nvlend vblk create c0 r1 "$T/other.sock"
assert_contains "$(nvlend vblk create c9 nosuch "$T/x.sock" 2>&1)" "not found" "unknown bdev"
touch "$T/file"
assert_contains "$(nvlend vblk create c9 r1 "$T/file" 2>&1)" "not a socket" "file in the way"
assert_contains "$(nvlend vblk create c9 r1 "$T/c0.sock" 2>&1)" "live server" "socket in use"
expect_fail nvlend vblk create c9 r1 "$T/y.sock" --queues 33
expect_fail nvlend vblk create c9 r1 "$T/y.sock" --queue-size 100
resp=$(rpc virtio_blk_controller_create '{"name":"c9","bdev":"r1","socket":"'"$T"'/y.sock","queue_size":2048}' 2>&1)
assert_contains "$resp" "power of two" "queue_size check"
# SPDK's names: socket = ctrlr in the daemon's working directory
rpc vhost_create_blk_controller '{"ctrlr":"spdk0","dev_name":"r1","readonly":true}' >/dev/null ||
	fail "vhost_create_blk_controller"
[ -S "$T/spdk0" ] || fail "SPDK-style socket not in the daemon's cwd"
rpc vhost_get_controllers '{"name":"spdk0"}' | grep '"readonly": true' >/dev/null || fail "vhost_get_controllers"
rpc vhost_create_blk_controller '{"ctrlr":"spdk1","dev_name":"r1","packed_ring":true}' >/dev/null 2>&1 &&
	fail "packed ring accepted"
rpc vhost_delete_controller '{"ctrlr":"spdk0"}' >/dev/null || fail "vhost_delete_controller"
[ -e "$T/spdk0" ] && fail "socket left after delete"

# ---- a vhost-user front-end ----
cat > "$T/fe.py" <<'EOF'
import json, mmap, os, select, socket, struct, subprocess, sys, time
sock_path, cli, rpcsock = sys.argv[1], sys.argv[2], sys.argv[3]
GET_FEATURES, SET_FEATURES, SET_OWNER, SET_MEM_TABLE = 1, 2, 3, 5
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE, GET_VRING_BASE = 8, 9, 10, 11
SET_VRING_KICK, SET_VRING_CALL = 12, 13
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, SET_VRING_ENABLE = 15, 16, 17, 18
GET_CONFIG, GET_INFLIGHT_FD, SET_INFLIGHT_FD = 24, 31, 32
NEED_REPLY = 8
QS, MEM, UVA = 16, 8 << 20, 0x40000000
DESC, AVAIL, USED = 0, 0x1000, 0x2000

def check(cond, what):
    if not cond:
        print("FAIL:", what); sys.exit(1)

def msg(s, req, payload=b"", fds=(), flags=0):
    hdr = struct.pack("<III", req, 1 | flags, len(payload))
    if fds:
        socket.send_fds(s, [hdr + payload], list(fds))
    else:
        s.sendall(hdr + payload)

def reply(s):
    data, fds, _, _ = socket.recv_fds(s, 12 + 512, 4)
    req, flags, size = struct.unpack("<III", data[:12])
    check(flags & 4, "reply flag")
    while len(data) < 12 + size:
        data += s.recv(12 + size - len(data))
    return data[12:12 + size], fds

def call(s, req, payload=b"", fds=()):
    msg(s, req, payload, fds)
    return reply(s)

def ack(s, req, payload=b"", fds=()):
    msg(s, req, payload, fds, NEED_REPLY)
    p, _ = reply(s)
    return struct.unpack("<Q", p)[0]

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
feat = struct.unpack("<Q", call(s, GET_FEATURES)[0])[0]
check(feat & (1 << 32) and feat & (1 << 30) and feat & (1 << 28), "features 0x%x" % feat)
pf = struct.unpack("<Q", call(s, GET_PROTOCOL_FEATURES)[0])[0]
need = (1 << 0) | (1 << 3) | (1 << 9) | (1 << 12)
check(pf & need == need, "protocol features 0x%x" % pf)
msg(s, SET_PROTOCOL_FEATURES, struct.pack("<Q", need))
check(struct.unpack("<Q", call(s, GET_QUEUE_NUM)[0])[0] == 2, "queue num")
msg(s, SET_OWNER)
cfg, _ = call(s, GET_CONFIG, struct.pack("<III", 0, 60, 0) + bytes(60))
cap, size_max, seg_max = struct.unpack("<QII", cfg[12:28])
blk_size, = struct.unpack("<I", cfg[12 + 20:12 + 24])
nq, = struct.unpack("<H", cfg[12 + 34:12 + 36])
check(cap == 32 * 2048 and blk_size == 512 and nq == 2 and seg_max > 0, "config %r" % ((cap, blk_size, nq, seg_max),))
check(ack(s, SET_FEATURES, struct.pack("<Q", (1 << 32) | (1 << 30) | (1 << 28))) == 0, "set features")
infl, fds = call(s, GET_INFLIGHT_FD, struct.pack("<QQHHxxxx", 0, 0, 2, QS))
check(len(fds) == 1, "inflight fd")
check(ack(s, SET_INFLIGHT_FD, infl, fds) == 0, "set inflight")
mfd = os.memfd_create("guest")
os.ftruncate(mfd, MEM)
mem = mmap.mmap(mfd, MEM)
check(ack(s, SET_MEM_TABLE, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, MEM, UVA, 0), [mfd]) == 0, "mem table")
# a memory table that claims more than its file holds is refused
bad = os.memfd_create("small"); os.ftruncate(bad, 4096)
check(ack(s, SET_MEM_TABLE, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, MEM, UVA, 0), [bad]) != 0, "oversized region")
check(ack(s, SET_VRING_NUM, struct.pack("<II", 0, QS)) == 0, "num")
check(ack(s, SET_VRING_NUM, struct.pack("<II", 0, 3)) != 0, "ring size 3 refused")
check(ack(s, SET_VRING_BASE, struct.pack("<II", 0, 0)) == 0, "base")
check(ack(s, SET_VRING_ADDR, struct.pack("<IIQQQQ", 0, 0, UVA + DESC, UVA + USED, UVA + AVAIL, 0)) == 0, "addr")
kick, callfd = os.eventfd(0), os.eventfd(0, os.EFD_NONBLOCK)
check(ack(s, SET_VRING_CALL, struct.pack("<Q", 0), [callfd]) == 0, "call")
check(ack(s, SET_VRING_KICK, struct.pack("<Q", 0), [kick]) == 0, "kick")
check(ack(s, SET_VRING_ENABLE, struct.pack("<II", 0, 1)) == 0, "enable")

avail_idx = 0
used_seen = 0
def desc(i, addr, ln, flags, nxt):
    mem[DESC + 16 * i:DESC + 16 * i + 16] = struct.pack("<QIHH", addr, ln, flags, nxt)
def submit(head):
    global avail_idx
    mem[AVAIL + 4 + 2 * (avail_idx % QS):AVAIL + 6 + 2 * (avail_idx % QS)] = struct.pack("<H", head)
    avail_idx += 1
    mem[AVAIL + 2:AVAIL + 4] = struct.pack("<H", avail_idx & 0xffff)
    os.eventfd_write(kick, 1)
def wait_used():
    global used_seen
    t0 = time.time()
    while struct.unpack("<H", mem[USED + 2:USED + 4])[0] == used_seen & 0xffff:
        select.select([callfd], [], [], 0.1)
        check(time.time() - t0 < 10, "no completion")
    i, ln = struct.unpack("<II", mem[USED + 4 + 8 * (used_seen % QS):USED + 12 + 8 * (used_seen % QS)])
    used_seen += 1
    return i, ln
def req(typ, sector, data_len, data_flags, hdr_len=16, status_addr=None):
    HDR, DATA, ST = 0x10000, 0x20000, 0x30000
    mem[HDR:HDR + 16] = struct.pack("<IIQ", typ, 0, sector)
    mem[ST] = 0xee
    desc(0, HDR, hdr_len, 1, 1)
    if data_len:
        desc(1, DATA, data_len, data_flags | 1, 2)
    else:
        desc(0, HDR, hdr_len, 1, 2)
    desc(2, ST if status_addr is None else status_addr, 1, 2, 0)
    submit(0)
    i, ln = wait_used()
    check(i == 0, "used id")
    return mem[ST], ln

pat = bytes((i * 13 + 7) & 0xff for i in range(4096))
mem[0x20000:0x21000] = pat
st, ln = req(1, 16, 4096, 0)                       # OUT
check(st == 0 and ln == 1, "write status %d len %d" % (st, ln))
mem[0x20000:0x21000] = bytes(4096)
st, ln = req(0, 16, 4096, 2)                       # IN
check(st == 0 and ln == 4097 and mem[0x20000:0x21000] == pat, "read back")
st, ln = req(8, 0, 20, 2)                          # GET_ID
check(st == 0 and mem[0x20000:0x20002] == b"c0", "serial")
st, _ = req(1, 16, 4096, 2)                        # OUT with a device-writable buffer
check(st == 1, "wrong direction -> IOERR, got %d" % st)
st, _ = req(0, 1 << 40, 4096, 2)                   # past the end
check(st == 1, "out of range -> IOERR")
st, _ = req(0, 16, 4096, 2, hdr_len=8)             # short header
check(st == 1, "short header -> IOERR")
st, _ = req(99, 0, 0, 0)                           # unknown type
check(st == 2, "unknown type -> UNSUPP")
desc(0, 0x10000, 16, 1, 1); desc(1, 0x20000, 16, 1, 0)     # a loop
submit(0); i, ln = wait_used(); check(ln == 0, "loop -> used len 0")
desc(0, 0x10000, 16, 1, 1); desc(1, MEM + 4096, 4096, 3, 2); desc(2, 0x30000, 1, 2, 0)
submit(0); i, ln = wait_used(); check(ln == 0, "outside memory -> used len 0")
# ring state survives a stop: GET_VRING_BASE returns what we submitted
p, _ = call(s, GET_VRING_BASE, struct.pack("<II", 0, 0))
check(struct.unpack("<II", p) == (0, avail_idx), "vring base %r" % (struct.unpack("<II", p),))
# restart the ring, then break it: the queue stops, the daemon lives on
kick2 = os.eventfd(0)
check(ack(s, SET_VRING_BASE, struct.pack("<II", 0, avail_idx)) == 0, "base again")
check(ack(s, SET_VRING_KICK, struct.pack("<Q", 0), [kick2]) == 0, "kick again")
kick = kick2
# a second front-end is refused while this one is attached
s2 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s2.connect(sock_path)
s2.settimeout(5); check(s2.recv(1) == b"", "second front-end not refused"); s2.close()
mem[AVAIL + 2:AVAIL + 4] = struct.pack("<H", (avail_idx + 100) & 0xffff)
os.eventfd_write(kick, 1)
time.sleep(0.3)
out = json.loads(subprocess.check_output([cli, "-s", rpcsock, "--json", "vblk", "list", "c0"]))
q = out[0]["queues"][0]
print("queue 0:", {k: q[k] for k in ("state", "requests", "ioerr", "unsupp", "no_status")})
check(q["ioerr"] >= 3 and q["unsupp"] >= 1 and q["no_status"] >= 2, "counters")
check(out[0]["frontend"]["inflight_tracking"], "inflight tracking not active")
# malformed message: wrong version -> the daemon hangs up
s.sendall(struct.pack("<III", GET_FEATURES, 2, 0))
s.settimeout(5)
check(s.recv(64) == b"", "bad version not dropped")
print("FRONTEND_OK")
EOF
/usr/bin/python3 "$T/fe.py" "$T/c0.sock" "$BIN/nvlend" "$NVLEND_SOCKET" || fail "front-end test"
wait_until 5 sh -c "nvlend vblk list c0 | grep listening" >/dev/null || fail "c0 did not go back to listening"
# oversized and garbage messages on a fresh connection
head -c 12 /dev/urandom > "$T/junk"
printf '\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x10\x00' | socat -t 1 - "UNIX-CONNECT:$T/c0.sock" >/dev/null 2>&1
socat -t 1 - "UNIX-CONNECT:$T/c0.sock" < "$T/junk" >/dev/null 2>&1
nvlend status >/dev/null || fail "daemon died after hostile front-ends"

# ---- save_config, kill -9, restart with -c over the stale socket ----
rpc vhost_create_blk_controller '{"ctrlr":"spdk0","dev_name":"r1","readonly":true}' >/dev/null ||
	fail "vhost_create_blk_controller again"
nvlend save-config -o "$T/cfg.json" || fail "save-config"
grep -q '"virtio_blk_controller_create"' "$T/cfg.json" || fail "controller missing from config"
grep -q "\"socket\": \"$T/spdk0\"" "$T/cfg.json" ||
	fail "SPDK-style socket not saved as $T/spdk0: $(grep socket "$T/cfg.json")"
kill9_nvlendd
[ -S "$T/c0.sock" ] || fail "expected a stale vhost socket"
# the restarted daemon runs in another directory: the sockets stay where they were
mkdir -p "$T/elsewhere"
cd "$T/elsewhere" || fail "cd elsewhere"
start_nvlendd -c "$T/cfg.json"
cd "$T" || fail "cd back"
nvlend vblk list c0 | grep listening >/dev/null || fail "c0 not recreated"
assert_eq "$(nvlend --json vblk list spdk0 | json_get '[0]["socket"]')" "$T/spdk0" "spdk0 socket"
[ -e "$T/elsewhere/spdk0" ] && fail "restart from another directory moved the socket"
/usr/bin/python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' \
	"$T/spdk0" || fail "nobody listens on $T/spdk0 after the restart"
rpc vhost_delete_controller '{"ctrlr":"spdk0"}' >/dev/null || fail "delete spdk0"
grep -q "stale socket $T/c0.sock" "$DAEMON_LOG" || fail "no stale-socket notice"
nvlend --json vblk list c0 | grep '"queue_size": 64' >/dev/null || fail "queue_size not kept"
nvlend vblk destroy c0 || fail "destroy"
[ -e "$T/c0.sock" ] && fail "socket left after destroy"
expect_fail nvlend vblk destroy c0
nvlend bdev delete r0 || fail "bdev still claimed after destroy"
stop_nvlendd

# ---- nvlendd -S: the vhost socket directory ----
expect_fail "$BIN/nvlendd" -s "$T/never.sock" -S "$T/no-such-dir"
mkdir -p "$T/sockdir"
start_nvlendd -S sockdir      # relative to the start-up directory, made absolute
nvlend bdev create ram r2 8M >/dev/null || fail "ram bdev r2"
rpc vhost_create_blk_controller '{"ctrlr":"spdk2","dev_name":"r2"}' >/dev/null ||
	fail "vhost_create_blk_controller with -S"
rpc virtio_blk_controller_create '{"name":"rel","bdev":"r2","socket":"rel.sock","read_only":true}' \
	>/dev/null || fail "relative socket"
[ -S "$T/sockdir/spdk2" ] || fail "SPDK-style socket not in the -S directory"
[ -S "$T/sockdir/rel.sock" ] || fail "relative socket not in the -S directory"
assert_eq "$(nvlend --json vblk list rel | json_get '[0]["socket"]')" "$T/sockdir/rel.sock" \
	"relative socket path"
stop_nvlendd
pass
