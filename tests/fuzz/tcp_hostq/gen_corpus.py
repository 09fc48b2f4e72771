#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Write the seed corpus of fuzz_tcp_hostq: [mode][op][len16][payload]... records
# (see the harness). Usage: tests/fuzz/tcp_hostq/gen_corpus.py [OUTDIR]
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
os.makedirs(out, exist_ok=True)

# NVMe/TCP PDU types (NVMe/TCP 1.0 section 3.6)
ICRESP, C2H_TERM, CAPSULE_RESP, C2H_DATA, R2T = 0x01, 0x03, 0x05, 0x07, 0x09
F_HDGST, F_DDGST, F_LAST, F_SUCCESS = 0x01, 0x02, 0x04, 0x08


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def pdu(typ, psh, data=b"", hdgst=False, ddgst=False, flags=0):
    hlen = 8 + len(psh)
    pdo = hlen + (4 if hdgst else 0) if data else 0
    plen = (pdo if data else hlen + (4 if hdgst else 0)) + len(data) + (4 if ddgst and data else 0)
    fl = flags | (F_HDGST if hdgst else 0) | (F_DDGST if ddgst and data else 0)
    hdr = struct.pack("<BBBBI", typ, fl, hlen, pdo, plen) + psh
    b = hdr
    if hdgst:
        b += struct.pack("<I", crc32c(hdr))
    if data:
        b += data
        if ddgst:
            b += struct.pack("<I", crc32c(data))
    return b


def icresp(dgst=0, cpda=0, maxh2c=8192):
    psh = struct.pack("<HBBI", 0, cpda, dgst, maxh2c) + bytes(112)
    return pdu(ICRESP, psh)


def resp(cid, status=0, cdw0=0, hdgst=False):
    cqe = struct.pack("<IIHHHH", cdw0, 0, 0, 0, cid, status)
    return pdu(CAPSULE_RESP, cqe, hdgst=hdgst)


def c2h(cid, datao, data, last=True, success=False, hdgst=False, ddgst=False):
    psh = struct.pack("<HHIII", cid, 0, datao, len(data), 0)
    fl = (F_LAST if last else 0) | (F_SUCCESS if success else 0)
    return pdu(C2H_DATA, psh, data, hdgst, ddgst, fl)


def r2t(cid, ttag, off, length, hdgst=False):
    return pdu(R2T, struct.pack("<HHIII", cid, ttag, off, length, 0), hdgst=hdgst)


def term(fes, fei):
    return pdu(C2H_TERM, struct.pack("<HI", fes, fei) + bytes(10))


def rec(op, payload):
    return bytes([op]) + struct.pack("<H", len(payload)) + payload


def ctrl(b):
    return rec(0, b)


def submit(direction, length, pieces=b""):
    return rec(1, bytes([direction]) + struct.pack("<I", length) + pieces)


READY = 0x40
# Command slots are reused last-freed-first: the Connect takes cid 0 and gives it
# back, so the first command after it is cid 0 again, then 1, 2...
seeds = {
    # raw start: ICResp, Connect response, then a read of 4 KiB in two C2HData PDUs
    "raw-connect-read": bytes([0x00]) + ctrl(icresp()) + ctrl(resp(0, cdw0=1)) +
    submit(2, 4096) + ctrl(c2h(0, 0, b"\xab" * 2048, last=False)) +
    ctrl(c2h(0, 2048, b"\xcd" * 2048)) + ctrl(resp(0)),
    # READY, read answered with C2HData SUCCESS (no response capsule)
    "ready-read-success": bytes([READY | 4]) + submit(2, 8192, b"\x03\x03") +
    ctrl(c2h(0, 0, b"\x11" * 8192, success=True)),
    # READY, in-capsule write then a write through two R2Ts
    "ready-writes": bytes([READY]) + submit(1, 4096) + ctrl(resp(0)) + submit(1, 20000) +
    ctrl(r2t(0, 7, 0, 8192)) + rec(2, b"") + ctrl(r2t(0, 8, 8192, 11808)) + ctrl(resp(0)),
    # READY with both digests: read and write
    "ready-digests": bytes([READY | 3]) + submit(2, 1024) +
    ctrl(c2h(0, 0, b"\x22" * 1024, hdgst=True, ddgst=True)) + ctrl(resp(0, hdgst=True)) +
    submit(1, 16384) + ctrl(r2t(0, 1, 0, 16384, hdgst=True)) + ctrl(resp(0, hdgst=True)),
    # several commands in flight, completed out of order, one with an error status
    "ready-many": bytes([READY | 0x30]) + submit(2, 512) + submit(2, 512) + submit(0, 0) +
    ctrl(resp(2)) + ctrl(c2h(1, 0, b"\x33" * 512)) + ctrl(resp(1)) +
    ctrl(resp(0, status=(0x81 << 1))),
    # refused Connect, and a termination request
    "connect-refused": bytes([0x00]) + ctrl(icresp()) + ctrl(resp(0, status=(0x184 << 1))),
    "term": bytes([READY]) + submit(2, 4096) + ctrl(term(2, 4)),
    # owner timeout with a command outstanding
    "owner-fail": bytes([READY]) + submit(2, 4096) + rec(3, b"\xa5"),
    # I/O queue, no in-capsule data
    "ioq-r2t": bytes([READY | 0x88 | 0x10]) + submit(1, 4096) + ctrl(r2t(0, 3, 0, 4096)) +
    ctrl(resp(0)),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
