#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""A DH-HMAC-CHAP host (NVMe Base 2.0 8.13) for tests/functional/security_dhchap.sh,
written apart from nvlend's C code: secrets, key transformation, responses
and the augmented challenge with hashlib/hmac/zlib, the FFDHE exchange as
Python modular exponentiation with the RFC 7919 primes (read from OpenSSL's
parameter encoding). It speaks to the target over the shm control socket
(raw messages, data in the window) or over NVMe/TCP (tcp_peer.py's PDUs).

    dhchap_host.py shm SOCK SUBNQN HOSTNQN HOSTKEY CTRLKEY SCENARIO [ARGS]
    dhchap_host.py tcp ADDR PORT SUBNQN HOSTNQN HOSTKEY CTRLKEY SCENARIO [ARGS]

HOSTKEY / CTRLKEY: files with DHHC-1 secrets ('-': none). Scenarios print
'OK <what>' lines and exit 0, or 'FAIL <why>' and exit 1."""
import base64
import hashlib
import hmac
import mmap
import os
import re
import socket
import struct
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

HASHES = {1: ("sha256", 32), 2: ("sha384", 48), 3: ("sha512", 64)}
GROUPS = {0: None, 1: "ffdhe2048", 2: "ffdhe3072", 3: "ffdhe4096", 4: "ffdhe6144", 5: "ffdhe8192"}
AUTH_REQUIRED = 0x191
NEG, CHAL, REPLY, SUCC1, SUCC2, FAIL2, FAIL1 = 0x00, 0x01, 0x02, 0x03, 0x04, 0xF0, 0xF1
_PRIMES = {}


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


def ok(msg):
    print("OK " + msg, flush=True)


def prime(gid):
    """p of an RFC 7919 group, from OpenSSL's explicit parameter encoding."""
    if gid not in _PRIMES:
        pem = subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt",
                              "group:" + GROUPS[gid]], capture_output=True, check=True).stdout
        asn = subprocess.run(["openssl", "asn1parse"], input=pem, capture_output=True,
                             check=True).stdout.decode()
        _PRIMES[gid] = int(re.search(r"INTEGER\s*:([0-9A-F]+)", asn).group(1), 16)
    return _PRIMES[gid]


def parse_secret(text):
    """DHHC-1:NN:base64(key || crc32 le): -> (NN, key)"""
    m = re.fullmatch(r"DHHC-1:(\d\d):([A-Za-z0-9+/=]+):?", text.strip())
    raw = base64.b64decode(m.group(2), validate=True)
    key, crc = raw[:-4], struct.unpack("<I", raw[-4:])[0]
    if zlib.crc32(key) != crc or len(key) not in (32, 48, 64):
        raise ValueError("bad secret")
    return int(m.group(1)), key


def transform(hid, key, nqn):
    if hid == 0:
        return key
    return hmac.new(key, nqn.encode() + b"NVMe-over-Fabrics", HASHES[hid][0]).digest()


def response(hashid, tkey, chal, sess, seq, tid, controller, hostnqn, subnqn):
    name = HASHES[hashid][0]
    if sess:
        chal = hmac.new(hashlib.new(name, sess).digest(), chal, name).digest()
    if controller:
        tail = b"Controller" + subnqn.encode() + b"\0" + hostnqn.encode()
    else:
        tail = b"HostHost" + hostnqn.encode() + b"\0" + subnqn.encode()
    return hmac.new(tkey, chal + struct.pack("<IHB", seq, tid, 0) + tail, name).digest()


def auth_sqe(send, length, cid=0x7A, secp=0xE9, spsp=(1, 1)):
    """Authentication Send (fctype 05h, TL) / Receive (06h, AL), 64 bytes."""
    c = bytearray(64)
    c[0] = 0x7F
    struct.pack_into("<H", c, 2, cid)
    c[4] = 0x05 if send else 0x06
    c[41], c[42], c[43] = spsp[0], spsp[1], secp
    struct.pack_into("<I", c, 44, length)
    return c


# ---- transports: send(msg) -> status; recv(al) -> (status, data); cmd(sqe) -> status


class ShmQ:
    MAGIC = 0x534C564E

    def __init__(self, sock, subnqn, hostnqn, hostid=None, kato=30000):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(20)
        self.s.connect(sock)
        hostid = hostid or os.urandom(16)
        body = subnqn.encode().ljust(256, b"\0") + hostnqn.encode().ljust(256, b"\0") + hostid + \
            struct.pack("<IIQ", kato, 0, 2 << 20)
        self.s.send(self.hdr(1, len(body)) + body)
        msg, fds, _, _ = socket.recv_fds(self.s, 4096, 4)
        self.status = struct.unpack_from("<H", msg, 16)[0]
        self.message = msg[40:252].split(b"\0")[0].decode()
        self.authreq = struct.unpack_from("<I", msg, 252)[0]
        self.win = mmap.mmap(fds[0], 2 << 20) if fds else None
        self.cid = 0

    def hdr(self, typ, blen):
        return struct.pack("<IHHII", self.MAGIC, 1, typ, 16 + blen, 0)

    def cmd(self, sqe, data=b""):
        self.cid = (self.cid + 1) & 0xFFFF
        sqe = bytearray(sqe)
        struct.pack_into("<H", sqe, 2, self.cid)
        struct.pack_into("<QQ", sqe, 24, 0, 0)   # PRP1: offset 0 of the window
        if data:
            self.win[0:len(data)] = data
        self.s.send(self.hdr(3, 64) + bytes(sqe))
        m, fds, _, _ = socket.recv_fds(self.s, 4096, 4)
        for fd in fds:
            os.close(fd)
        if len(m) < 32:
            raise EOFError("closed")
        return (struct.unpack_from("<H", m, 16 + 14)[0] >> 1) & 0x7FF

    def send(self, msg):
        return self.cmd(auth_sqe(True, len(msg)), msg)

    def recv(self, al=4096):
        self.win[0:al] = bytes(al)
        st = self.cmd(auth_sqe(False, al))
        return st, bytes(self.win[0:al])

    def identify(self):
        sqe = bytearray(64)
        sqe[0] = 0x06
        struct.pack_into("<I", sqe, 40, 1)  # CNS 1: controller
        return self.cmd(sqe)

    def closed(self, secs):
        self.s.settimeout(secs)
        try:
            while True:
                m = self.s.recv(4096)
                if not m:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


class TcpQ:
    def __init__(self, addr, port, subnqn, hostnqn, qid=0, cntlid=0xFFFF, kato=30000):
        import tcp_peer
        self.tp = tcp_peer
        self.p = tcp_peer.Peer(addr, port, timeout=20)
        self.p.icreq()
        self.status, self.cntlid = self.p.connect(subnqn, qid=qid, cntlid=cntlid, kato=kato,
                                                  hostnqn=hostnqn)
        self.authreq = self.p.last_cdw0 & ~0xFFFF
        self.cid = 10

    def _submit(self, sqe, data=b"", c2h=0):
        """One command: in-capsule data, or a C2H transfer of c2h bytes.
        -> (status, data) (tcp_peer collects C2HData up to the response)"""
        self.cid += 1
        sqe = bytearray(sqe)
        struct.pack_into("<H", sqe, 2, self.cid)
        sqe[1] = 0x40   # SGL
        if data:
            struct.pack_into("<QI3sB", sqe, 24, 0, len(data), b"\0\0\0", 0x01)  # in-capsule
        elif c2h:
            struct.pack_into("<QI3sB", sqe, 24, 0, c2h, b"\0\0\0", 0x5A)  # transport data block
        self.p.send(self.p.capsule(bytes(sqe), data))
        st, _, out = self.p.response()
        if not isinstance(st, int):
            raise RuntimeError("unexpected R2T")
        return st, out

    def cmd(self, sqe, data=b""):
        return self._submit(sqe, data)[0]

    def send(self, msg):
        return self.cmd(auth_sqe(True, len(msg)), msg)

    def recv(self, al=4096):
        st, out = self._submit(auth_sqe(False, al), c2h=al)
        return st, out.ljust(al, b"\0")

    def enable(self):
        self.p.enable()

    def identify(self):
        sqe = bytearray(64)
        sqe[0] = 0x06
        struct.pack_into("<I", sqe, 40, 1)
        return self._submit(sqe, c2h=4096)[0]

    def read(self, nsid=1, lba=0):
        sqe = bytearray(64)
        sqe[0] = 0x02
        struct.pack_into("<I", sqe, 4, nsid)
        struct.pack_into("<III", sqe, 40, lba, 0, 0)
        return self._submit(sqe, c2h=512)[0]

    def closed(self, secs):
        return self.p.closed(secs)


# ---- the transaction -----------------------------------------------------------------


class Dhchap:
    def __init__(self, q, hostnqn, subnqn, host_secret, ctrl_secret=None, tid=7):
        self.q, self.hostnqn, self.subnqn, self.tid = q, hostnqn, subnqn, tid
        self.hid, self.hkey = parse_secret(host_secret)
        self.ctrl = parse_secret(ctrl_secret) if ctrl_secret else None

    def negotiate_msg(self, hashes, groups, sc_c=0, authid=1):
        d = bytes([authid, 0, len(hashes), len(groups)]) + bytes(hashes).ljust(30, b"\0") + \
            bytes(groups).ljust(30, b"\0")
        return struct.pack("<BBHHBB", 0, NEG, 0, self.tid, sc_c, 1) + d

    def run(self, hashes=(1, 2, 3), groups=(0, 1, 2, 3, 4, 5), tamper=()):
        """-> ('ok', hashid, dhgid) | ('failure1', rce) | ('status', where, st)"""
        q = self.q
        st = q.send(self.negotiate_msg(hashes, groups, sc_c=1 if "scc" in tamper else 0,
                                       authid=2 if "noproto" in tamper else 1))
        if st:
            return ("status", "negotiate", st)
        st, c = q.recv(4096)
        if st:
            return ("status", "challenge", st)
        if c[1] == FAIL1:
            return ("failure1", c[7])
        atype, aid, _, tid, hl, _, hashid, dhgid, dhvlen, s1 = struct.unpack_from("<BBHHBBBBHI", c)
        if (atype, aid, tid) != (1, CHAL, self.tid) or hl != HASHES[hashid][1]:
            fail("bad challenge %r" % c[:16])
        c1 = c[16:16 + hl]
        sess, mine = b"", b""
        if dhgid:
            p = prime(dhgid)
            plen = (p.bit_length() + 7) // 8
            if dhvlen != plen:
                fail("challenge DH value of %d bytes for %s" % (dhvlen, GROUPS[dhgid]))
            y = int.from_bytes(c[16 + hl:16 + hl + dhvlen], "big")
            if not 1 < y < p - 1:
                fail("controller DH value out of range")
            x = int.from_bytes(os.urandom(48), "big")
            mine = pow(2, x, p).to_bytes(plen, "big")
            if "baddh" in tamper:
                mine = (1).to_bytes(plen, "big")
            sess = pow(y, x, p).to_bytes(plen, "big")
        elif dhvlen:
            fail("DH value with the null group")
        tkey = transform(self.hid, self.hkey, self.hostnqn)
        if "wrongkey" in tamper:
            tkey = bytes(len(tkey))
        r1 = response(hashid, tkey, c1, sess, s1, self.tid, False, self.hostnqn, self.subnqn)
        c2, s2 = b"", 0
        if self.ctrl:
            c2, s2 = os.urandom(hl), 0x5EED0000 + self.tid
        tid = self.tid + 1 if "badtid" in tamper else self.tid
        msg = struct.pack("<BBHHBBBBHI", 1, REPLY, 0, tid, hl, 0, 1 if self.ctrl else 0, 0,
                          len(mine), s2) + r1 + (c2 or bytes(hl)) + mine
        st = q.send(msg)
        if st:
            return ("status", "reply", st)
        st, m = q.recv(4096)
        if st:
            return ("status", "success1", st)
        if m[1] == FAIL1:
            return ("failure1", m[7])
        if m[:2] != bytes([1, SUCC1]) or struct.unpack_from("<H", m, 4)[0] != self.tid or m[6] != hl:
            fail("bad success1 %r" % m[:16])
        if self.ctrl:
            if not m[8]:
                fail("no controller response (RVALID 0) though C2 was sent")
            ckey = transform(self.ctrl[0], self.ctrl[1], self.subnqn)
            r2 = response(hashid, ckey, c2, sess, s2, self.tid, True, self.hostnqn, self.subnqn)
            if not hmac.compare_digest(r2, m[16:16 + hl]):
                # the controller does not know our controller secret: refuse it
                q.send(struct.pack("<BBHHBB", 0, FAIL2, 0, self.tid, 1, 1))
                return ("ctrl-refused", hashid, dhgid)
            st = q.send(struct.pack("<BBHH", 1, SUCC2, 0, self.tid) + bytes(10))
            if st:
                return ("status", "success2", st)
        elif m[8]:
            fail("RVALID set though the host asked nothing")
        return ("ok", hashid, dhgid)


def expect_failure1(res, rce, what):
    if res != ("failure1", rce):
        fail("%s: expected AUTH_Failure1 with explanation %d, got %r" % (what, rce, res))
    ok("%s -> AUTH_Failure1 (%d)" % (what, rce))


def main():
    a = sys.argv[1:]
    kind = a.pop(0)
    if kind == "shm":
        sock, sub, host = a[0], a[1], a[2]
        a = a[3:]
        newq = lambda **kw: ShmQ(sock, sub, host, **kw)
    else:
        addr, port, sub, host = a[0], a[1], a[2], a[3]
        a = a[4:]
        newq = lambda **kw: TcpQ(addr, port, sub, host, **kw)
    hkey = open(a[0]).read() if a[0] != "-" else None
    ckey = open(a[1]).read() if a[1] != "-" else None
    scen, args = a[2], a[3:]

    def auth(q, **kw):
        return Dhchap(q, host, sub, hkey, ckey).run(**kw)

    if scen == "ok":
        # ARGS: expected hashid dhgid (what the target must pick), and the offer
        want = (int(args[0]), int(args[1])) if args else None
        hashes = tuple(int(x) for x in args[2].split(",")) if len(args) > 2 else (1, 2, 3)
        groups = tuple(int(x) for x in args[3].split(",")) if len(args) > 3 else (0, 1, 2, 3, 4, 5)
        q = newq()
        if q.status or not q.authreq & (1 << 17):
            fail("Connect: status 0x%x, AUTHREQ 0x%x (want ATR)" % (q.status, q.authreq))
        st = q.identify()
        if st != AUTH_REQUIRED:
            fail("Identify before authentication: status 0x%x, want 0x191" % st)
        ok("Identify before authentication -> Authentication Required")
        res = auth(q, hashes=hashes, groups=groups)
        if res[0] != "ok":
            fail("authentication: %r" % (res,))
        if want and res[1:] != want:
            fail("negotiated %r, expected %r" % (res[1:], want))
        ok("authenticated with %s / %s%s" % (HASHES[res[1]][0], GROUPS[res[2]] or "null",
                                              ", controller verified" if ckey else ""))
        if kind == "tcp":
            q.enable()
        st = q.identify()
        if st:
            fail("Identify after authentication: status 0x%x" % st)
        ok("Identify after authentication")
        if kind == "tcp":
            io = TcpQ(addr, port, sub, host, qid=1, cntlid=q.cntlid)
            if io.status or not io.authreq & (1 << 17):
                fail("I/O Connect: status 0x%x AUTHREQ 0x%x" % (io.status, io.authreq))
            st = io.read()
            if st != AUTH_REQUIRED:
                fail("read on an I/O queue that did not authenticate: 0x%x" % st)
            ok("I/O queue: read before its own authentication -> Authentication Required")
            res = auth(io, hashes=hashes, groups=groups)
            if res[0] != "ok":
                fail("I/O queue authentication: %r" % (res,))
            st = io.read()
            if st:
                fail("read after the I/O queue authenticated: 0x%x" % st)
            ok("I/O queue authenticated, read ok")
            # re-authentication of the admin queue keeps it usable
            res = Dhchap(q, host, sub, hkey, ckey, tid=9).run(hashes=hashes, groups=groups)
            if res[0] != "ok" or q.identify():
                fail("re-authentication: %r" % (res,))
            ok("re-authentication of the admin queue")
        if os.environ.get("DHCHAP_HOLD"):
            # stay connected a while (the test looks at the controller meanwhile)
            print("HELD", flush=True)
            time.sleep(float(os.environ["DHCHAP_HOLD"]))
    elif scen == "ioq-wrongkey":
        # tcp: CTRLKEY is a wrong host key used on an I/O queue of a controller
        # whose admin queue authenticated with HOSTKEY: that queue is closed,
        # the controller stays
        q = newq()
        if Dhchap(q, host, sub, hkey).run()[0] != "ok":
            fail("admin queue authentication")
        q.enable()
        io = TcpQ(addr, port, sub, host, qid=1, cntlid=q.cntlid)
        res = Dhchap(io, host, sub, ckey).run()
        expect_failure1(res, 1, "wrong host key on an I/O queue")
        if not io.closed(5):
            fail("the failed I/O queue stayed open")
        ok("the failed I/O queue was closed")
        if q.identify():
            fail("the controller did not survive its I/O queue's failure")
        io = TcpQ(addr, port, sub, host, qid=1, cntlid=q.cntlid)
        if Dhchap(io, host, sub, hkey).run()[0] != "ok" or io.read():
            fail("a new I/O queue with the right key")
        ok("the controller lives on; a new I/O queue with the right key works")
    elif scen == "wrongkey":
        # HOSTKEY is not the key the target has for this host
        q = newq()
        res = auth(q)
        expect_failure1(res, 1, "wrong host key")
        try:
            st = q.identify()
            if st != AUTH_REQUIRED:
                fail("after the failure: status 0x%x, want 0x191" % st)
        except (EOFError, ConnectionResetError, BrokenPipeError, OSError, RuntimeError):
            pass
        if not q.closed(5):
            fail("the target kept the failed controller")
        ok("controller torn down after the failure")
    elif scen == "badctrl":
        # our controller secret is not the target's: we refuse it (AUTH_Failure2)
        q = newq()
        res = auth(q)
        if res[0] != "ctrl-refused":
            fail("a wrong controller key was not detected: %r" % (res,))
        ok("the controller's response does not match our controller key: AUTH_Failure2 sent")
        if not q.closed(5):
            fail("the target kept the controller after AUTH_Failure2")
        ok("controller torn down after AUTH_Failure2")
    elif scen == "violations":
        cases = [
            ("reply before negotiate", None, 7),
            ("wrong transaction id", ("badtid",), 6),
            ("secure channel concatenation", ("scc",), 3),
            ("no DH-HMAC-CHAP descriptor", ("noproto",), 2),
            ("hash function not allowed", "hash", 4),
            ("DH group not allowed", "group", 5),
            ("DH value 1", ("baddh",), 6),
        ]
        for what, tamper, rce in cases:
            q = newq()
            if tamper is None:
                q.send(struct.pack("<BBHHBBBBHI", 1, REPLY, 0, 7, 32, 0, 0, 0, 0, 0) + bytes(64))
                st, m = q.recv(4096)
                res = ("failure1", m[7]) if m[1] == FAIL1 else ("other", m[:8])
            elif tamper == "hash":
                res = auth(q, hashes=(9,))
            elif tamper == "group":
                res = auth(q, groups=(int(args[0]),))   # a group the target does not allow
            else:
                res = auth(q, tamper=tamper, groups=(1,) if "baddh" in tamper else (0, 1, 2, 3, 4, 5))
            expect_failure1(res, rce, what)
            if not q.closed(5):
                fail("%s: the target kept the controller" % what)
        # wrong SECP: Invalid Field, the transaction goes on
        q = newq()
        st = q.cmd(auth_sqe(True, 72, secp=0xEA), Dhchap(q, host, sub, hkey).negotiate_msg((1,), (0,)))
        if st != 0x002:
            fail("SECP EAh: status 0x%x, want Invalid Field" % st)
        ok("SECP other than E9h -> Invalid Field")
        res = auth(q)
        if res[0] != "ok":
            fail("authentication after the refused command: %r" % (res,))
        ok("the transaction still works after it")
    elif scen == "timeout":
        q = newq(kato=0)   # no keep-alive timeout: what ends it is the authentication's
        t0 = time.time()
        if not q.closed(int(args[0]) if args else 20):
            fail("an unauthenticated controller stayed")
        ok("unauthenticated controller torn down after %.1f s" % (time.time() - t0))
    elif scen == "refused":
        q = newq()
        if q.status == 0:
            fail("Connect accepted")
        ok("Connect refused: status 0x%x %s" % (q.status, getattr(q, "message", "")))
    else:
        fail("unknown scenario " + scen)


if __name__ == "__main__":
    main()
