#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Raw NVMe/TCP peer for tests/functional/tcp_hostile.sh: a host that speaks
PDUs byte by byte, well or badly, and checks how the target reacts.

    tcp_peer.py HOST PORT SUBNQN SCENARIO [ARGS...]

Scenarios print 'OK <what>' and exit 0 when the target behaved as the
NVMe/TCP specification asks, or print 'FAIL <why>' and exit 1."""
import socket
import struct
import subprocess
import sys
import time

HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:0bad0bad-0000-4000-8000-000000000001"
DISC = "nqn.2014-08.org.nvmexpress.discovery"

ICREQ, ICRESP, H2C_TERM, C2H_TERM, CMD, RESP, H2C_DATA, C2H_DATA, R2T = 0, 1, 2, 3, 4, 5, 6, 7, 9
F_HDGST, F_DDGST, F_LAST, F_SUCCESS = 1, 2, 4, 8


def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t.append(c)
    return t


TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ TABLE[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


def ok(msg):
    print("OK " + msg, flush=True)


def sqe(opc, cid, nsid=0, cdw10=0, cdw11=0, cdw12=0, sgl=(0, 0, 0x5A), flags=0x40, raw=None):
    """64-byte command; sgl = (addr, length, type)."""
    if raw is not None:
        return raw
    s = struct.pack("<BBHIIIQ", opc, flags, cid, nsid, 0, 0, 0)
    s += struct.pack("<QI3sB", sgl[0], sgl[1], b"\0\0\0", sgl[2])
    s += struct.pack("<6I", cdw10, cdw11, cdw12, 0, 0, 0)
    assert len(s) == 64
    return s


class Peer:
    def __init__(self, host, port, hdgst=False, ddgst=False, timeout=10):
        self.s = socket.create_connection((host, int(port)), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.hdgst, self.ddgst = hdgst, ddgst
        self.buf = b""

    # -- framing --
    def pdu(self, ptype, psh, data=b"", flags=0, hdgst=None, ddgst=None, bad_hdgst=False,
            bad_ddgst=False, plen=None):
        hd = self.hdgst if hdgst is None else hdgst
        dd = self.ddgst if ddgst is None else ddgst
        hlen = 8 + len(psh)
        if hd:
            flags |= F_HDGST
        if data and dd:
            flags |= F_DDGST
        hneed = hlen + (4 if hd else 0)
        pdo = hneed if data else 0
        total = hneed + len(data) + (4 if data and dd else 0)
        ch = struct.pack("<BBBBI", ptype, flags, hlen, pdo, total if plen is None else plen)
        h = ch + psh
        out = h
        if hd:
            c = crc32c(h) ^ (0xFFFFFFFF if bad_hdgst else 0)
            out += struct.pack("<I", c)
        if data:
            out += data
            if dd:
                c = crc32c(data) ^ (0xFFFFFFFF if bad_ddgst else 0)
                out += struct.pack("<I", c)
        return out

    def send(self, b):
        self.s.sendall(b)

    def recv_exact(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("closed")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_pdu(self):
        ch = self.recv_exact(8)
        ptype, flags, hlen, pdo, plen = struct.unpack("<BBBBI", ch)
        rest = self.recv_exact(plen - 8)
        return ptype, flags, hlen, pdo, ch + rest

    def closed(self, secs=5):
        """True if the target closes the connection within secs (data before
        the close is drained)."""
        self.s.settimeout(secs)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    # -- protocol --
    def icreq(self, hpda=0, pfv=0):
        dg = (1 if self.hdgst else 0) | (2 if self.ddgst else 0)
        psh = struct.pack("<HBBI", pfv, hpda, dg, 0) + b"\0" * 112
        self.send(self.pdu(ICREQ, psh, hdgst=False, ddgst=False))
        t, f, hl, pdo, p = self.recv_pdu()
        if t != ICRESP or hl != 128 or len(p) != 128:
            fail("bad ICResp")
        pfv, cpda, dgst, maxh2c = struct.unpack("<HBBI", p[8:16])
        if dgst != dg:
            fail("ICResp digests %d, asked %d" % (dgst, dg))
        self.maxh2c = maxh2c
        return maxh2c

    def capsule(self, cmd, data=b"", **kw):
        return self.pdu(CMD, cmd, data, **kw)

    def response(self):
        """Next CapsuleResp (C2HData before it collected): (status, cdw0, data)."""
        data = b""
        while True:
            t, f, hl, pdo, p = self.recv_pdu()
            if t == C2H_DATA:
                dl = struct.unpack("<I", p[16:20])[0]
                data += p[pdo:pdo + dl]
                if f & F_SUCCESS:
                    return 0, 0, data
                continue
            if t == RESP:
                off = 8
                cdw0, cdw1, sqhd, sqid, cid, status = struct.unpack("<IIHHHH", p[off:off + 16])
                return (status >> 1) & 0x7FF, cdw0, data
            if t == C2H_TERM:
                fes, fei = struct.unpack("<HI", p[8:14])
                raise RuntimeError("termination request FES %d FEI %d" % (fes, fei))
            if t == R2T:
                return ("r2t", p, data)
            fail("unexpected PDU type %d" % t)

    def connect(self, subnqn, qid=0, cntlid=0xFFFF, sqsize=31, kato=0, hostnqn=HOSTNQN):
        cmd = sqe(0x7F, 1, sgl=(0, 1024, 0x01))
        # fabrics view: fctype at byte 4, recfmt/qid/sqsize/cattr/kato from byte 40
        cmd = cmd[:4] + bytes([0x01]) + cmd[5:40] + struct.pack("<HHHBBI", 0, qid, sqsize, 0, 0, kato) + b"\0" * 12
        hostid = bytes.fromhex("0bad0bad00004000800000000000000" + "1")
        data = hostid + struct.pack("<H", cntlid) + b"\0" * 238
        data += subnqn.encode().ljust(256, b"\0") + hostnqn.encode().ljust(256, b"\0") + b"\0" * 256
        self.send(self.capsule(cmd, data))
        st, cdw0, _ = self.response()
        return st, cdw0 & 0xFFFF

    def prop(self, cid, set_, ofst, value=0, eight=False):
        cmd = bytearray(64)
        cmd[0] = 0x7F
        struct.pack_into("<H", cmd, 2, cid)
        cmd[4] = 0x00 if set_ else 0x04
        cmd[40] = 1 if eight else 0
        struct.pack_into("<IQ", cmd, 44, ofst, value)
        self.send(self.capsule(bytes(cmd)))
        st, cdw0, _ = self.response()
        return st, cdw0

    def enable(self):
        st, _ = self.prop(2, True, 0x14, 1 | (6 << 16) | (4 << 20))
        if st:
            fail("CC.EN: status 0x%x" % st)
        for _ in range(100):
            st, v = self.prop(3, False, 0x1C)
            if v & 1:
                return
            time.sleep(0.01)
        fail("CSTS.RDY never set")


def admin(host, port, subnqn, **kw):
    p = Peer(host, port, **kw)
    p.icreq()
    st, cntlid = p.connect(subnqn)
    if st:
        fail("admin Connect: status 0x%x" % st)
    p.enable()
    return p, cntlid


def ioq(host, port, subnqn, cntlid, qid=1, sqsize=31, **kw):
    q = Peer(host, port, **kw)
    q.icreq()
    st, _ = q.connect(subnqn, qid=qid, cntlid=cntlid, sqsize=sqsize)
    if st:
        fail("I/O Connect: status 0x%x" % st)
    return q


def expect_term(p, fes, what):
    try:
        while True:
            t, f, hl, pdo, b = p.recv_pdu()
            if t == C2H_TERM:
                got = struct.unpack("<H", b[8:10])[0]
                if got != fes:
                    fail("%s: FES %d, expected %d" % (what, got, fes))
                if not p.closed():
                    fail("%s: connection left open after the termination request" % what)
                ok(what)
                return
    except EOFError:
        fail("%s: closed without a termination request" % what)


def main():
    host, port, nqn, scen = sys.argv[1:5]
    args = sys.argv[5:]
    if scen == "hdgst-error":
        p = Peer(host, port, hdgst=True)
        p.icreq()
        p.send(p.capsule(sqe(0x06, 7, cdw10=1, sgl=(0, 4096, 0x5A)), bad_hdgst=True))
        expect_term(p, 3, "header digest error -> C2HTermReq FES 3, closed")
    elif scen == "ddgst-error":
        a, cntlid = admin(host, port, nqn, ddgst=True)
        q = ioq(host, port, nqn, cntlid, ddgst=True)
        blk = bytes(range(256)) * 16
        w = sqe(0x01, 9, nsid=1, cdw10=0, cdw12=7, sgl=(0, 4096, 0x01))
        q.send(q.capsule(w, blk, bad_ddgst=True))
        st, _, _ = q.response()
        if st != 0x22:
            fail("data digest error: status 0x%x, expected 0x22 (transient transport error)" % st)
        q.send(q.capsule(w, blk))
        st, _, _ = q.response()
        if st != 0:
            fail("write after the digest error: status 0x%x" % st)
        ok("data digest error -> transient transport error, connection kept")
    elif scen == "truncated":
        p = Peer(host, port)
        p.icreq()
        whole = p.capsule(sqe(0x06, 7, cdw10=1))
        p.send(whole[:30])
        p.s.close()
        ok("truncated PDU sent and the connection dropped")
    elif scen == "before-icreq":
        p = Peer(host, port)
        p.send(p.capsule(sqe(0x06, 7, cdw10=1)))
        expect_term(p, 2, "command before ICReq -> FES 2 (PDU sequence error)")
    elif scen == "h2c-without-r2t":
        a, cntlid = admin(host, port, nqn)
        q = ioq(host, port, nqn, cntlid)
        psh = struct.pack("<HHII4s", 5, 3, 0, 512, b"\0" * 4)
        q.send(q.pdu(H2C_DATA, psh, b"x" * 512))
        expect_term(q, 1, "H2CData nobody asked for -> FES 1")
    elif scen == "oversize":
        a, cntlid = admin(host, port, nqn)
        q = ioq(host, port, nqn, cntlid)
        ch = struct.pack("<BBBBI", CMD, 0, 72, 72, 72 + (1 << 26))
        q.send(ch + sqe(0x01, 1, nsid=1, cdw12=0, sgl=(0, 1 << 26, 0x01)) + b"\0" * 4096)
        expect_term(q, 5, "64 MiB in-capsule data -> FES 5 (data limit exceeded)")
    elif scen == "bad-hlen":
        p = Peer(host, port)
        p.icreq()
        raw = bytearray(p.capsule(sqe(0x06, 7, cdw10=1)))
        raw[2] = 60
        p.send(bytes(raw))
        expect_term(p, 1, "wrong HLEN -> FES 1")
    elif scen == "bad-type":
        p = Peer(host, port)
        p.icreq()
        p.send(p.pdu(C2H_DATA, struct.pack("<HHII4s", 1, 0, 0, 4, b"\0" * 4), b"abcd"))
        expect_term(p, 1, "controller-to-host PDU from a host -> FES 1")
    elif scen == "r2t-write":
        # a write larger than the in-capsule size: R2T, then H2CData in pieces
        a, cntlid = admin(host, port, nqn)
        q = ioq(host, port, nqn, cntlid)
        size = 64 * 1024
        data = bytes((i * 7) & 0xFF for i in range(size))
        q.send(q.capsule(sqe(0x01, 4, nsid=1, cdw10=64, cdw12=size // 512 - 1, sgl=(0, size, 0x5A))))
        off = 0
        while True:
            r = q.response()
            if r[0] != "r2t":
                st = r[0]
                break
            cccid, ttag, r2to, r2tl = struct.unpack("<HHII", r[1][8:20])
            if r2to != off:
                fail("R2T offset %d, expected %d" % (r2to, off))
            end = r2to + r2tl
            while off < end:
                n = min(4096, end - off)
                psh = struct.pack("<HHII4s", cccid, ttag, off, n, b"\0" * 4)
                q.send(q.pdu(H2C_DATA, psh, data[off:off + n], flags=F_LAST if off + n == end else 0))
                off += n
        if st != 0 or off != size:
            fail("R2T write: status 0x%x after %d bytes" % (st, off))
        q.send(q.capsule(sqe(0x02, 5, nsid=1, cdw10=64, cdw12=size // 512 - 1, sgl=(0, size, 0x5A))))
        st, _, back = q.response()
        if st != 0 or back != data:
            fail("read-back after the R2T write differs (status 0x%x, %d bytes)" % (st, len(back)))
        ok("write through R2T + 16 H2CData PDUs, read back equal")
    elif scen == "stop-reading":
        a, cntlid = admin(host, port, nqn)
        q = ioq(host, port, nqn, cntlid, sqsize=127)
        q.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        cmds = b""
        for i in range(120):
            cmds += q.capsule(sqe(0x02, i, nsid=1, cdw10=0, cdw12=255, sgl=(0, 131072, 0x5A)))
        q.send(cmds)
        ok("120 x 128 KiB reads queued; not reading the answers")
        time.sleep(float(args[0]) if args else 5)
        # the admin queue must still work while that queue is stalled or gone
        st, v = a.prop(20, False, 0x1C)
        if st or not v & 1:
            fail("admin queue disturbed by the stalled I/O queue")
        ok("admin queue unaffected")
    elif scen == "discovery-aen":
        # args: a shell command that changes the discovery log
        a, _ = admin(host, port, DISC)
        cmd = bytearray(sqe(0x09, 10, cdw10=0x0B, cdw11=1 << 31, sgl=(0, 0, 0x5A)))
        a.send(a.capsule(bytes(cmd)))
        st, _, _ = a.response()
        if st:
            fail("Set Features AEC: status 0x%x" % st)
        a.send(a.capsule(sqe(0x0C, 11, sgl=(0, 0, 0x5A))))
        time.sleep(0.2)
        subprocess.run(args[0], shell=True, check=True)
        a.s.settimeout(10)
        st, cdw0, _ = a.response()
        if st or (cdw0 & 0x7, (cdw0 >> 8) & 0xFF, (cdw0 >> 16) & 0xFF) != (2, 0xF0, 0x70):
            fail("AER: status 0x%x cdw0 0x%x, expected a discovery log change notice" % (st, cdw0))
        a.send(a.capsule(sqe(0x02, 12, cdw10=0x70 | ((4096 // 4 - 1) << 16), sgl=(0, 4096, 0x5A))))
        st, _, log = a.response()
        numrec = struct.unpack("<Q", log[8:16])[0] if len(log) >= 16 else -1
        ok("discovery AEN after the log changed; log now has %d records" % numrec)
        print("NUMREC %d" % numrec)
    else:
        fail("unknown scenario " + scen)


if __name__ == "__main__":
    try:
        main()
    except (EOFError, ConnectionError, socket.timeout, RuntimeError) as e:
        fail("%s: %s" % (sys.argv[4], e))
