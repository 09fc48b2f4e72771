#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Write the seed corpus of fuzz_bdev_nvme_cpl: [mode][mdts] then records
# [op][len][payload] (see the target's opening comment for the ops).
# Usage: tests/fuzz/bdev_nvme_cpl/gen_corpus.py [OUTDIR]
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
os.makedirs(out, exist_ok=True)

SUBMIT, CQE, ALL_OK, ADMIN, FAIL_TQ, FAIL_ASSOC, TIME, SWITCH, NOP = range(9)
READ, WRITE, FLUSH, WZ, UNMAP = range(5)


def rec(op, payload=b""):
    return bytes([op, len(payload)]) + payload


def io(ns, typ, off, nblocks, pieces=b"", fua=False, no_hole=False):
    b0 = ns | (typ << 1) | (0x10 if fua else 0) | (0x20 if no_hole else 0)
    return rec(SUBMIT, bytes([b0]) + struct.pack("<H", off) + bytes([nblocks - 1]) + pieces)


def cqe(q=0, pick=0, cidmode=0, raw_cid=0, status=0, interesting=None, flags=0, sqhd=0, cdw0=0):
    sel = 0x80 | interesting if interesting is not None else 0
    return rec(CQE, bytes([q, pick, cidmode]) + struct.pack("<H", raw_cid) + bytes([sel]) +
               struct.pack("<H", status) + bytes([flags]) + struct.pack("<HI", sqhd, cdw0))


def admin(sel=0, cid=0, status=0, cdw0=0, data=b""):
    return rec(ADMIN, bytes([sel]) + struct.pack("<HHI", cid, status, cdw0) + data)


def time_(n, seconds=False):
    return rec(TIME, bytes([n, 1 if seconds else 0]))


seeds = {
    # shm, 1 queue of 32: reads and writes in pieces, answered in order
    "ok_shm": bytes([0x18, 0]) + io(0, READ, 0, 64, b"\x07\x03\x10") + io(1, WRITE, 3, 5) +
    rec(ALL_OK) + io(0, WZ, 100, 200) + io(1, FLUSH, 0, 1) + rec(ALL_OK, b"\x01") + rec(ALL_OK),
    # tcp, 2 queues of 8, small MDTS: multi-piece I/O, newest first
    "ok_tcp": bytes([0x0b, 0]) + io(0, READ, 10, 200, b"\x01\x02\x03\x04") +
    io(1, UNMAP, 7, 9) + io(0, WRITE, 0, 129, b"\xff\x00") + rec(ALL_OK, b"\x01") * 6,
    # path errors: aborted-SQ-deletion, ANA, transient transport: kept, reconnect, resubmit
    "path_err": bytes([0x19, 1]) + io(0, READ, 0, 8) + io(1, WRITE, 1, 2) +
    cqe(interesting=5) + cqe(interesting=21, flags=1) + time_(3, True) + rec(ALL_OK) +
    time_(5, True) + rec(ALL_OK),
    # wrong, duplicate, never-sent cids
    "bad_cid": bytes([0x18, 2]) + io(0, READ, 0, 4) + io(0, READ, 4, 4) + io(0, WRITE, 8, 4) +
    cqe(cidmode=2) + cqe(cidmode=3) + cqe(cidmode=1, raw_cid=31) + cqe(cidmode=1, raw_cid=0xffff) +
    cqe(pick=1) + cqe(cidmode=3) + rec(ALL_OK),
    # statuses with DNR, More, CRD; sqhd out of range
    "status": bytes([0x18, 0]) + b"".join(io(i & 1, i % 5, i * 3, 2) for i in range(10)) +
    b"".join(cqe(pick=i, interesting=i, flags=i * 37 & 0xff, sqhd=0xffff - i, cdw0=i)
             for i in range(10)) + rec(ALL_OK),
    # the queue and the association fail, the queue connects fail for a while
    "lost": bytes([0x1a, 0]) + io(0, READ, 0, 16) + io(1, WRITE, 0, 1) + rec(FAIL_TQ, b"\x00") +
    rec(NOP) + rec(SWITCH, b"\x03") + rec(FAIL_ASSOC) + time_(2, True) + time_(4, True) +
    rec(SWITCH, b"\x01") + time_(8, True) + rec(ALL_OK),
    # give up after 3 s, fast fail after 2 s
    "give_up": bytes([0x79, 0]) + io(0, READ, 0, 16) + rec(FAIL_ASSOC) + rec(SWITCH, b"\x02") +
    time_(2, True) + io(1, WRITE, 0, 1) + time_(5, True) + io(0, READ, 0, 1),
    # admin answered by the input: keep-alive, unsolicited AEN, identify garbage on reconnect
    "admin": bytes([0x99, 0]) + io(0, READ, 0, 8) + time_(4, True) + admin(0) +
    admin(0x80, cid=0x1234, cdw0=0x00020002) + admin(0x80, cid=5, status=0x4002) +
    rec(FAIL_ASSOC) + time_(2, True) + admin(0) + admin(0) + admin(0) + admin(0) +
    admin(0, data=b"\xff" * 200) + admin(0, status=0x2 << 1) + time_(20, True) +
    rec(SWITCH, b"\x05"),
    # a small queue: pending lists, -EAGAIN
    "small_q": bytes([0x00, 3]) + b"".join(io(0, READ, i, 3) for i in range(12)) +
    b"".join(cqe() for _ in range(6)) + rec(ALL_OK) * 8,
}

for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
