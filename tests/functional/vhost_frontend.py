# SPDX-License-Identifier: BSD-3-Clause
"""A minimal vhost-user-blk front-end for functional tests (run with /usr/bin/python3).

    vhost_frontend.py rw SOCKET memfd|FILE
        handshake as QEMU does (protocol features, inflight region, memory
        table, one split ring of 16 entries), then a 4 KiB write and a read
        that must return it; guest memory is an unsealed memfd or FILE
    vhost_frontend.py truncate SOCKET FILE NVLEND RPC_SOCKET NAME
        the same with guest memory in FILE, then: the inflight region the
        back-end gave us must refuse ftruncate (sealed); FILE is truncated to
        0 under the running queue and the queue kicked. While still connected,
        `NVLEND -s RPC_SOCKET vblk list NAME` must show the queue "broken";
        the caller checks that the daemon survived. We never touch the memory
        again.
    vhost_frontend.py suspend SOCKET memfd NVLEND RPC_SOCKET NAME
        rw, then SNAP's suspend by RPC (virtio_blk_controller_suspend): the
        controller lists "suspended", a request submitted now is not
        completed within 0.5 s; after virtio_blk_controller_resume it is,
        with the data written before.
Exit status 0 when every check passed; prints one line per failure.
"""
import errno, json, mmap, os, select, socket, struct, subprocess, sys, time

GET_FEATURES, SET_FEATURES, SET_OWNER, SET_MEM_TABLE = 1, 2, 3, 5
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE = 8, 9, 10
SET_VRING_KICK, SET_VRING_CALL = 12, 13
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, SET_VRING_ENABLE = 15, 16, 18
GET_INFLIGHT_FD, SET_INFLIGHT_FD = 31, 32
NEED_REPLY = 8
QS, MEM, UVA = 16, 8 << 20, 0x40000000
DESC, AVAIL, USED = 0, 0x1000, 0x2000
HDR, DATA, ST = 0x10000, 0x20000, 0x30000


def check(cond, what):
    if not cond:
        print("FAIL:", what, flush=True)
        sys.exit(1)


class Frontend:
    def __init__(self, sock_path, memfd):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(sock_path)
        self.memfd = memfd
        self.mem = mmap.mmap(memfd, MEM)
        self.avail_idx = 0
        self.used_seen = 0

    def msg(self, req, payload=b"", fds=(), flags=0):
        hdr = struct.pack("<III", req, 1 | flags, len(payload))
        if fds:
            socket.send_fds(self.s, [hdr + payload], list(fds))
        else:
            self.s.sendall(hdr + payload)

    def reply(self):
        data, fds, _, _ = socket.recv_fds(self.s, 12 + 512, 4)
        check(len(data) >= 12, "reply header")
        _, flags, size = struct.unpack("<III", data[:12])
        while len(data) < 12 + size:
            data += self.s.recv(12 + size - len(data))
        return data[12:12 + size], fds

    def call(self, req, payload=b"", fds=()):
        self.msg(req, payload, fds)
        return self.reply()

    def ack(self, req, payload=b"", fds=()):
        self.msg(req, payload, fds, NEED_REPLY)
        p, _ = self.reply()
        return struct.unpack("<Q", p)[0]

    def handshake(self):
        feat = struct.unpack("<Q", self.call(GET_FEATURES)[0])[0]
        check(feat & (1 << 32), "VIRTIO_F_VERSION_1 offered")
        pf = struct.unpack("<Q", self.call(GET_PROTOCOL_FEATURES)[0])[0]
        need = (1 << 0) | (1 << 3) | (1 << 9) | (1 << 12)
        check(pf & need == need, "protocol features 0x%x" % pf)
        self.msg(SET_PROTOCOL_FEATURES, struct.pack("<Q", need))
        self.msg(SET_OWNER)
        check(self.ack(SET_FEATURES, struct.pack("<Q", (1 << 32) | (1 << 28))) == 0, "set features")
        infl, fds = self.call(GET_INFLIGHT_FD, struct.pack("<QQHHxxxx", 0, 0, 1, QS))
        check(len(fds) == 1, "inflight fd")
        self.inflight = fds[0]
        check(self.ack(SET_INFLIGHT_FD, infl, fds) == 0, "set inflight")
        check(self.ack(SET_MEM_TABLE, struct.pack("<II", 1, 0) +
                       struct.pack("<QQQQ", 0, MEM, UVA, 0), [self.memfd]) == 0, "mem table")
        check(self.ack(SET_VRING_NUM, struct.pack("<II", 0, QS)) == 0, "num")
        check(self.ack(SET_VRING_BASE, struct.pack("<II", 0, 0)) == 0, "base")
        check(self.ack(SET_VRING_ADDR, struct.pack("<IIQQQQ", 0, 0, UVA + DESC, UVA + USED,
                                                   UVA + AVAIL, 0)) == 0, "addr")
        self.kick, self.callfd = os.eventfd(0), os.eventfd(0, os.EFD_NONBLOCK)
        check(self.ack(SET_VRING_CALL, struct.pack("<Q", 0), [self.callfd]) == 0, "call")
        check(self.ack(SET_VRING_KICK, struct.pack("<Q", 0), [self.kick]) == 0, "kick")
        check(self.ack(SET_VRING_ENABLE, struct.pack("<II", 0, 1)) == 0, "enable")

    def desc(self, i, addr, ln, flags, nxt):
        self.mem[DESC + 16 * i:DESC + 16 * i + 16] = struct.pack("<QIHH", addr, ln, flags, nxt)

    def submit(self, head):
        slot = AVAIL + 4 + 2 * (self.avail_idx % QS)
        self.mem[slot:slot + 2] = struct.pack("<H", head)
        self.avail_idx += 1
        self.mem[AVAIL + 2:AVAIL + 4] = struct.pack("<H", self.avail_idx & 0xffff)
        os.eventfd_write(self.kick, 1)

    def wait_used(self):
        t0 = time.time()
        while struct.unpack("<H", self.mem[USED + 2:USED + 4])[0] == self.used_seen & 0xffff:
            select.select([self.callfd], [], [], 0.1)
            check(time.time() - t0 < 10, "no completion")
        off = USED + 4 + 8 * (self.used_seen % QS)
        i, ln = struct.unpack("<II", self.mem[off:off + 8])
        self.used_seen += 1
        return i, ln

    def request(self, typ, sector, data_len, data_flags):
        self.mem[HDR:HDR + 16] = struct.pack("<IIQ", typ, 0, sector)
        self.mem[ST] = 0xee
        self.desc(0, HDR, 16, 1, 1)
        self.desc(1, DATA, data_len, data_flags | 1, 2)
        self.desc(2, ST, 1, 2, 0)
        self.submit(0)
        self.wait_used()
        return self.mem[ST]

    def write_read(self):
        pat = os.urandom(4096)
        self.mem[DATA:DATA + 4096] = pat
        check(self.request(1, 8, 4096, 0) == 0, "write status")
        self.mem[DATA:DATA + 4096] = bytes(4096)
        check(self.request(0, 8, 4096, 2) == 0, "read status")
        check(self.mem[DATA:DATA + 4096] == pat, "read back what was written")


def guest_memory(where):
    if where == "memfd":
        fd = os.memfd_create("guest")          # no MFD_ALLOW_SEALING: unsealed
    else:
        fd = os.open(where, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.ftruncate(fd, MEM)
    return fd


def main():
    mode, sock_path, where = sys.argv[1], sys.argv[2], sys.argv[3]
    fe = Frontend(sock_path, guest_memory(where))
    fe.handshake()
    fe.write_read()
    if mode == "rw":
        print("FRONTEND_OK")
        return
    if mode == "suspend":
        cli, rpc, name = sys.argv[4], sys.argv[5], sys.argv[6]

        def nv(*args):
            return subprocess.check_output([cli, "-s", rpc] + list(args)).decode()
        nv("rpc", "virtio_blk_controller_suspend", json.dumps({"ctrl": name}))
        st = json.loads(nv("--json", "vblk", "list", name))[0]["state"]
        check(st == "suspended", "state after suspend: %r" % st)
        fe.mem[HDR:HDR + 16] = struct.pack("<IIQ", 0, 0, 8)
        fe.mem[DATA:DATA + 4096] = bytes(4096)
        fe.mem[ST] = 0xee
        fe.desc(0, HDR, 16, 1, 1)
        fe.desc(1, DATA, 4096, 2 | 1, 2)
        fe.desc(2, ST, 1, 2, 0)
        fe.submit(0)
        time.sleep(0.5)
        used = struct.unpack("<H", fe.mem[USED + 2:USED + 4])[0]
        check(used == fe.used_seen & 0xffff, "a request completed while suspended")
        nv("rpc", "virtio_blk_controller_resume", json.dumps({"name": name}))
        fe.wait_used()
        check(fe.mem[ST] == 0, "status of the request that waited")
        check(any(fe.mem[DATA:DATA + 4096]), "the read after resume returned the data")
        st = json.loads(nv("--json", "vblk", "list", name))[0]["state"]
        check(st == "running", "state after resume: %r" % st)
        print("SUSPEND_OK")
        return
    check(mode == "truncate", "mode")
    try:
        os.ftruncate(fe.inflight, 0)
        check(False, "the inflight region could be truncated (not sealed)")
    except OSError as e:
        check(e.errno == errno.EPERM, "inflight ftruncate -> %s" % errno.errorcode.get(e.errno))
    # From here on our own mapping would fault too: only syscalls.
    os.ftruncate(fe.memfd, 0)
    os.eventfd_write(fe.kick, 1)
    cli, rpc, name = sys.argv[4], sys.argv[5], sys.argv[6]
    state = None
    for _ in range(50):
        time.sleep(0.1)
        os.eventfd_write(fe.kick, 1)
        out = json.loads(subprocess.check_output([cli, "-s", rpc, "--json", "vblk", "list", name]))
        state = out[0]["queues"][0]["state"] if out[0].get("queues") else None
        if state == "broken":
            break
    if state != "broken":
        print("FAIL: queue state %r after the truncation, expected 'broken'" % state, flush=True)
        os._exit(1)
    print("TRUNCATED: queue broken, back-end alive")
    os._exit(0)   # skip the teardown of a truncated mapping


if __name__ == "__main__":
    main()
