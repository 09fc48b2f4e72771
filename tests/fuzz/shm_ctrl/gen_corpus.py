#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Write the seed corpus of fuzz_shm_ctrl: records [type][len u16][payload]
# (0 message, 1 message + fd, 2 SQ doorbell, 3 CQ head, 4 window write);
# bit 7 of the first byte puts the connection on a function's endpoint.
# Usage: tests/fuzz/shm_ctrl/gen_corpus.py [OUTDIR]
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
os.makedirs(out, exist_ok=True)

MAGIC, VERSION = 0x534C564E, 1
SUBNQN = b"nqn.2024-01.io.nvlend:fuzz"
HOSTNQN = b"nqn.2024-01.io.nvlend:fuzz-host"


def hdr(typ, length):
    return struct.pack("<IHHII", MAGIC, VERSION, typ, length, 0)


def connect(subnqn=SUBNQN, hostnqn=HOSTNQN, window=2 << 20, kato=0, hostid=b"\x11" * 16):
    body = subnqn.ljust(256, b"\0") + hostnqn.ljust(256, b"\0") + hostid
    body += struct.pack("<IIQ", kato, 0, window)
    return hdr(1, 16 + len(body)) + body


def open_fn(window=2 << 20, kato=0):
    body = struct.pack("<IIQ", kato, 0, window) + b"\0" * 32
    return hdr(6, 16 + len(body)) + body


def fn_first(data, busy=False, suspended=False):
    # the first byte of a message record (type 0) with bit 7 set: the
    # connection is on a function's endpoint; bit 6: the function is busy,
    # bit 5: it is suspended. Each value below is still 0 modulo 6.
    first = 0xC0 if busy else 0xA2 if suspended else 0x84
    assert data[0] == 0 and first % 6 == 0
    return bytes([first]) + data[1:]


def sqe(opc, nsid=0, cid=1, prp1=0, prp2=0, cdw10=0, cdw11=0, cdw12=0, flags=0):
    b = struct.pack("<BBHIIIQQQ", opc, flags, cid, nsid, 0, 0, 0, prp1, prp2)
    return b + struct.pack("<IIIIII", cdw10, cdw11, cdw12, 0, 0, 0)


def admin(cmd):
    return hdr(3, 16 + 64) + cmd


def rec(typ, payload):
    return bytes([typ]) + struct.pack("<H", len(payload)) + payload


def msg(m):
    return rec(0, m)


def sq_db(sq, tail, sqes=b""):
    return rec(2, bytes([sq]) + struct.pack("<I", tail) + sqes)


def cq_db(cq, head):
    return rec(3, bytes([cq]) + struct.pack("<I", head))


def win(off, data):
    return rec(4, struct.pack("<I", off) + data)


create_cq = admin(sqe(0x05, cid=2, cdw10=(15 << 16) | 1, cdw11=3))          # 16 entries, IEN, iv 0
create_sq = admin(sqe(0x01, cid=3, cdw10=(15 << 16) | 1, cdw11=(1 << 16) | 1))
io_read = sqe(0x02, nsid=1, cid=10, prp1=0x1000, cdw12=7)
io_write = sqe(0x01, nsid=1, cid=11, prp1=0x2000, cdw10=8, cdw12=7)

seeds = {
    "connect": msg(connect()),
    "connect_identify": msg(connect()) + msg(admin(sqe(0x06, cid=5, prp1=0x1000, cdw10=1))),
    "connect_features": msg(connect()) + msg(admin(sqe(0x09, cid=5, cdw10=7, cdw11=0x00030003)))
    + msg(admin(sqe(0x0a, cid=6, cdw10=0x0f))) + msg(admin(sqe(0x18, cid=7))),
    "connect_aer": msg(connect(kato=1000)) + msg(admin(sqe(0x0c, cid=9)))
    + msg(admin(sqe(0x0c, cid=10))),
    "queues_io": msg(connect()) + msg(create_cq) + msg(create_sq)
    + sq_db(0, 2, io_read + io_write) + cq_db(0, 2),
    "queues_delete": msg(connect()) + msg(create_cq) + msg(create_sq)
    + msg(admin(sqe(0x04, cid=4, cdw10=1))) + msg(admin(sqe(0x00, cid=5, cdw10=1)))
    + msg(admin(sqe(0x04, cid=6, cdw10=1))),
    "queues_prp_list": msg(connect()) + msg(create_cq) + msg(create_sq)
    + win(0x10000, struct.pack("<QQ", 0x3000, 0x4000))
    + sq_db(0, 1, sqe(0x01, nsid=1, cid=12, prp1=0x2000, prp2=0x10000, cdw12=23)),
    "tail_beyond_ring": msg(connect()) + msg(create_cq) + msg(create_sq) + sq_db(0, 1000),
    "cq_head_beyond": msg(connect()) + msg(create_cq) + msg(create_sq)
    + sq_db(0, 15, io_read * 15) + cq_db(0, 99) + sq_db(0, 3, io_read * 3),
    "resv": msg(connect()) + msg(create_cq) + msg(create_sq)
    + win(0x100, struct.pack("<QQ", 0, 0x1234))
    + sq_db(0, 2, sqe(0x0d, nsid=1, cid=20, prp1=0x100)
            + sqe(0x11, nsid=1, cid=21, prp1=0x100, cdw10=1 << 8)),
    "disconnect": msg(connect()) + msg(hdr(5, 16)),
    "admin_before_connect": msg(admin(sqe(0x06, cdw10=1))),
    "connect_twice": msg(connect()) + msg(connect()),
    "connect_with_fd": rec(1, connect()),
    "connect_bad_nqn": msg(connect(hostnqn=b"not-an-nqn")),
    "connect_no_subsys": msg(connect(subnqn=b"nqn.2024-01.io.nvlend:nope")),
    "connect_big_window": msg(connect(window=1 << 40)),
    "connect_huge_window": msg(connect(window=0xffffffffffffffff)),
    "garbage": msg(b"\x00" * 16) + msg(b"hello"),
    "fabrics_admin": msg(connect()) + msg(admin(sqe(0x7f, cid=3))),
    "bad_len": msg(hdr(3, 999) + sqe(0x06)),
    # functions (docs/functions.md)
    "fn_open_io": fn_first(msg(open_fn()) + msg(create_cq) + msg(create_sq)
                           + sq_db(0, 2, io_read + io_write) + cq_db(0, 2)),
    "fn_open_iv_beyond": fn_first(msg(open_fn())
                                  + msg(admin(sqe(0x05, cid=2, cdw10=(15 << 16) | 1,
                                                  cdw11=(5 << 16) | 3)))),
    "fn_open_suspended": fn_first(msg(open_fn()) + msg(create_cq) + msg(create_sq)
                                  + sq_db(0, 1, io_read), suspended=True),
    "fn_open_busy": fn_first(msg(open_fn()), busy=True),
    "fn_connect_refused": fn_first(msg(connect())),
    "fn_open_on_listener": msg(open_fn()),
    "fn_open_twice": fn_first(msg(open_fn()) + msg(open_fn())),
    "fn_open_short": fn_first(msg(hdr(6, 24) + b"\0" * 8)),
}

for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
