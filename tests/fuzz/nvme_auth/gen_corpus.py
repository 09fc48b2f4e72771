#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Write the seed corpus of fuzz_nvme_auth: operations [op][len u16][payload]
# (see fuzz_nvme_auth.c). Usage: tests/fuzz/nvme_auth/gen_corpus.py [OUTDIR]
import hashlib
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
os.makedirs(out, exist_ok=True)

SEND, RECV, NEG, REPLY, SUCC2, KA, RAWCMD, NEWQ = range(8)


def op(kind, payload=b"", length=None):
    return struct.pack("<BH", kind, len(payload) if length is None else length) + payload


def neg(hashes, groups):
    # first half hash ids, second half group ids (the harness splits n / 2)
    return op(NEG, bytes(hashes) + bytes(groups), None)


seeds = {
    "success": neg([1, 2, 3], [0, 1, 2]) + op(RECV, length=4096) + op(REPLY, b"\0") +
    op(RECV, length=4096) + op(KA, b"\0"),
    "bidirectional": neg([3, 2, 1], [1, 0, 5]) + op(RECV, length=4096) + op(REPLY, b"\1") +
    op(RECV, length=4096) + op(SUCC2, b"\0") + op(KA, b"\0"),
    "reauth": neg([1, 1], [0, 0]) + op(RECV, length=4096) + op(REPLY, b"\0") +
    op(RECV, length=4096) + neg([2, 2], [1, 1]) + op(RECV, length=4096) + op(KA, b"\1"),
    "reply_first": op(SEND, struct.pack("<BBHHBBBBHI", 1, 2, 0, 1, 32, 0, 0, 0, 0, 0) + bytes(64)) +
    op(RECV, length=4096) + op(KA, b"\1"),
    "flipped_reply": neg([1, 2], [0, 1]) + op(RECV, length=4096) + op(REPLY, b"\0\x05\x80") +
    op(RECV, length=4096),
    "short_al": neg([3], [1]) + op(RECV, length=100) + op(RECV, length=65535) + op(REPLY, b"\1") +
    op(RECV, length=17) + op(RECV, length=4096) + op(SUCC2, b"\1") + op(RECV, length=4096),
    "bad_fields": op(RAWCMD, bytes([0xEA, 1, 1]) + struct.pack("<I", 72) + bytes(72)) +
    op(RAWCMD, bytes([0xE9, 1, 1]) + struct.pack("<I", 0)) +
    op(RAWCMD, bytes([0xE9, 1, 1]) + struct.pack("<I", 70000)),
    "ioq": op(NEWQ) + neg([1], [0]) + op(RECV, length=4096) + op(REPLY, b"\0") +
    op(RECV, length=4096) + op(KA, b"\0") + op(NEWQ) + op(KA, b"\1"),
    "failure2": neg([2], [0]) + op(RECV, length=4096) + op(REPLY, b"\1") + op(RECV, length=4096) +
    op(SEND, struct.pack("<BBHHBB", 0, 0xF0, 0, 0, 1, 1)) + op(KA, b"\1"),
    "garbage": op(SEND, bytes(range(200))) + op(SEND, b"\0\0") + op(RECV, length=1),
}
for name, data in seeds.items():
    with open(os.path.join(out, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)
print("%d seeds in %s" % (len(seeds), out))
