#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Security item 2: a host (or vhost-user front-end) that truncates a shared
# region it was given must not kill the daemon.
#   shm: a raw host (Python, speaking the control protocol itself) connects,
#        creates an I/O queue pair, reads one block through it, then tries
#        ftruncate() on its data window, SQ and CQ regions: each must fail
#        with EPERM (sealed memfds), and the queue keeps working afterwards.
#        A well-behaved host verifies data on the same namespace throughout.
#   vhost-user: a front-end whose guest memory is a plain /dev/shm file (not
#        sealed, as with QEMU's memory-backend-file) truncates it under a
#        running queue and kicks: the daemon lives, the queue reports
#        "broken", and a new front-end with good memory is served again.
#        The inflight region the daemon hands out is sealed (ftruncate EPERM).
# On a tree without the seals and the fault guard the daemon dies of SIGBUS.
# timeout: 120
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
requires /usr/bin/python3

start_nvlendd --reactors 2
shm_target victim 32M
"$BIN/nvlend-perf" "$URI" --hostnqn=nqn.2026-01.io.nvlend.test:good --rw=randrw --verify \
	--iodepth=8 --runtime=6 >"$T/good.out" 2>&1 &
PG=$!
on_exit "kill -9 $PG"

SOCK=$T/victim.sock /usr/bin/python3 - "$NQN" <<'PY' || fail "shm truncation checks"
import errno, mmap, os, select, socket, struct, sys, time
nqn = sys.argv[1].encode()
MAGIC, VER = 0x534c564e, 1
fails = 0
def check(ok, what):
    global fails
    print(("PASS  " if ok else "FAIL  ") + what, flush=True)
    fails += 0 if ok else 1
def hdr(typ, length): return struct.pack("<IHHII", MAGIC, VER, typ, length, 0)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(5)
s.connect(os.environ["SOCK"])
body = nqn.ljust(256, b"\0") + b"nqn.2026-01.io.nvlend.test:trunc".ljust(256, b"\0") + \
       os.urandom(16) + struct.pack("<IIQ", 0, 0, 1 << 20)
s.send(hdr(1, 16 + len(body)) + body)
msg, fds, _, _ = socket.recv_fds(s, 4096, 4)
check(struct.unpack_from("<H", msg, 16)[0] == 0 and len(fds) == 1, "CONNECT accepted with a window")
window = fds[0]
cid = 0
def admin(opc, cdw10, cdw11):
    global cid
    cid += 1
    sqe = struct.pack("<BBHI", opc, 0, cid, 0) + bytes(8) + bytes(8) + bytes(16) + \
          struct.pack("<IIIIII", cdw10, cdw11, 0, 0, 0, 0)
    s.send(hdr(3, 16 + 64) + sqe)
    m, f, _, _ = socket.recv_fds(s, 4096, 4)
    return struct.unpack_from("<H", m, 16 + 14)[0] >> 1, f
QS = 16
st, cqfds = admin(0x05, (QS - 1) << 16 | 1, 1)          # Create I/O CQ 1, PC, no IEN
check(st == 0 and len(cqfds) >= 1, "Create I/O CQ")
st, sqfds = admin(0x01, (QS - 1) << 16 | 1, 1 << 16 | 1)  # Create I/O SQ 1 on CQ 1
check(st == 0 and len(sqfds) == 2, "Create I/O SQ")
cqfd, sqfd, kick = cqfds[0], sqfds[0], sqfds[1]
sq = mmap.mmap(sqfd, 4096 + QS * 64)
cq = mmap.mmap(cqfd, 4096 + QS * 16)
tail = 0
def read_block(lba):
    global tail
    sqe = struct.pack("<BBHI", 0x02, 0, 100 + tail, 1) + bytes(8) + bytes(8) + \
          struct.pack("<QQ", 0, 0) + struct.pack("<IIIIII", lba, 0, 0, 0, 0, 0)
    sq[4096 + 64 * (tail % QS):4096 + 64 * (tail % QS) + 64] = sqe
    tail += 1
    sq[64:68] = struct.pack("<I", tail % QS)
    os.eventfd_write(kick, 1)
    t0 = time.time()
    slot = (tail - 1) % QS
    while True:
        status, = struct.unpack_from("<H", cq, 4096 + 16 * slot + 14)
        if status & 1 == (((tail - 1) // QS) + 1) & 1:
            cq[64:68] = struct.pack("<I", tail % QS)
            return status >> 1
        if time.time() - t0 > 5:
            return None
        time.sleep(0.001)
check(read_block(0) == 0, "read through the queue pair before the attack")
for name, fd in (("data window", window), ("SQ region", sqfd), ("CQ region", cqfd)):
    for size in (0, 4096, 1 << 30):
        try:
            os.ftruncate(fd, size)
            check(False, "ftruncate(%s, %d) refused" % (name, size))
        except OSError as e:
            check(e.errno == errno.EPERM, "ftruncate(%s, %d) -> %s" % (name, size, errno.errorcode.get(e.errno)))
# holes punched in our own window only lose our own data; nothing faults
try:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate(window, 3, ctypes.c_long(0), ctypes.c_long(4096))  # PUNCH_HOLE|KEEP_SIZE
except Exception:
    pass
time.sleep(0.3)
check(read_block(1) == 0, "the queue pair still works after the attempts")
sys.exit(fails)
PY
sleep 0.3
worker_alive || fail "the daemon died (SIGBUS?) after the shm host's ftruncate attempts"
wait $PG || { cat "$T/good.out"; fail "the well-behaved host failed"; }
grep -q ', 0 errors' "$T/good.out" || { cat "$T/good.out"; fail "verify errors on the good host"; }

log "vhost-user: guest memory in an unsealed /dev/shm file, truncated under a running queue"
nvlend bdev create ram vb 8M >/dev/null || fail "ram bdev vb"
nvlend vblk create v0 vb "$T/v0.sock" --queues 1 --queue-size 16 >/dev/null || fail "vblk create"
GUEST_FILE=/dev/shm/nvlt-$$-guest
on_exit "rm -f $GUEST_FILE"
/usr/bin/python3 "$TESTS_DIR/functional/vhost_frontend.py" truncate "$T/v0.sock" "$GUEST_FILE" \
	"$BIN/nvlend" "$NVLEND_SOCKET" v0 || fail "vhost-user front-end (truncate)"
sleep 0.3
worker_alive || fail "the daemon died (SIGBUS) after the front-end truncated guest memory"
grep -q "truncated by the front-end" "$DAEMON_LOG" || fail "no log line naming the truncation"
wait_until 5 sh -c "nvlend vblk list v0 | grep -q listening" || fail "v0 not listening again"
/usr/bin/python3 "$TESTS_DIR/functional/vhost_frontend.py" rw "$T/v0.sock" memfd ||
	fail "a new front-end is not served after the truncation"
nvlend status >/dev/null || fail "daemon not serving"
stop_nvlendd
pass
