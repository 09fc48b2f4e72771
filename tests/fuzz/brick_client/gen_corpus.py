#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
# Seed corpus for fuzz_brick_client: server streams answering the harness's
# session (HELLO, INFO, ALLOC, MAP, READ, WRITE, FLUSH, FLUSH_ALL, LIST,
# UNMAP, FREE; req_ids 1..11), well and badly.
import os
import struct

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(out, exist_ok=True)
MAGIC, RESP, FD, MORE = 0x4B495242, 1, 2, 4
HELLO, INFO, ALLOC, FREE, MAP, UNMAP, LIST, READ, WRITE, FLUSH, FLUSH_ALL = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
MB2 = 2 << 20


def hdr(op, rid, flags=RESP, status=0, data_len=0, key=0, addr=0, offset=0, length=0, arg=0, version=1):
    return struct.pack("<IBBHIIQQQQQII", MAGIC, version, op, flags, status, data_len, rid, key, addr,
                       offset, length, arg, 0)


def info():
    return struct.pack("<IIQQQQQQQII", 1, 0, MB2, 8, 4, 1, 1, 1, 0, 1, 2) + b"\0" * 56


def rec(payload, fdflags=0):
    return struct.pack("<HB", len(payload), fdflags) + payload


def session(map_fd=3, map_len=MB2, list_n=1, read_len=8192, bad=None):
    s = rec(hdr(HELLO, 1, data_len=128) + info())
    s += rec(hdr(INFO, 2, data_len=128) + info())
    s += rec(hdr(ALLOC, 3))
    s += rec(hdr(MAP, 4, flags=RESP | FD, key=7, addr=0, length=map_len, arg=1), map_fd)
    s += rec(hdr(READ, 5, data_len=read_len) + b"\xab" * read_len)
    s += rec(hdr(WRITE, 6))
    s += rec(hdr(FLUSH, 7))
    s += rec(hdr(FLUSH_ALL, 8))
    ext = b"".join(struct.pack("<QQII", i * MB2, MB2, 1, 0) for i in range(list_n))
    s += rec(hdr(LIST, 9, data_len=len(ext), arg=list_n) + ext)
    s += rec(hdr(UNMAP, 10))
    s += rec(hdr(FREE, 11))
    return s


seeds = {
    "good-session": session(),
    "map-short-memfd": session(map_fd=1),
    "map-pipe": session(map_fd=5),
    "map-no-fd": session(map_fd=0),
    "list-empty": session(list_n=0),
    "list-many": session(list_n=40),
    "hello-only": rec(hdr(HELLO, 1, data_len=128) + info()),
    "hello-bad-version": rec(hdr(HELLO, 1, data_len=128, version=9) + info()),
    "hello-error": rec(hdr(HELLO, 1, status=3)),
    "wrong-req-id": rec(hdr(HELLO, 1, data_len=128) + info()) + rec(hdr(INFO, 5, data_len=128) + info()),
    "split-header": rec(hdr(HELLO, 1, data_len=128)[:20]) + rec(hdr(HELLO, 1, data_len=128)[20:] + info()),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
