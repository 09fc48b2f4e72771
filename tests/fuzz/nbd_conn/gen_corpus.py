#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Write the seed corpus of fuzz_nbd_conn: [mode] + the transmission-phase request
# stream (NBD protocol, "Transmission phase"). Usage: gen_corpus.py [OUTDIR]
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
os.makedirs(out, exist_ok=True)

MAGIC = 0x25609513
READ, WRITE, DISC, FLUSH, TRIM, CACHE, WZ, BLOCK_STATUS = 0, 1, 2, 3, 4, 5, 6, 7
FUA, NO_HOLE, DF, REQ_ONE, FAST_ZERO = 1, 2, 4, 8, 16


def req(typ, off=0, length=0, flags=0, handle=1, payload=None):
    b = struct.pack(">IHHQQI", MAGIC, flags, typ, handle, off, length)
    if typ == WRITE:
        b += payload if payload is not None else bytes([handle & 0xFF]) * length
    return b


STRUCT, RO, META = 1, 2, 0x80
CHUNK28 = 3 << 2
seeds = {
    "rw-simple": bytes([0]) + req(WRITE, 0, 4096, handle=1) + req(READ, 0, 4096, handle=2) +
    req(FLUSH, handle=3) + req(DISC),
    "rw-structured": bytes([STRUCT]) + req(WRITE, 8192, 512, FUA, 1) + req(READ, 8192, 512, DF, 2) +
    req(TRIM, 0, 65536, FUA, 3) + req(WZ, 4096, 4096, NO_HOLE | FUA, 4) +
    req(WZ, 0, 512, FAST_ZERO, 5) + req(CACHE, 0, 4096, 0, 6) + req(DISC),
    "rw-chunked": bytes([STRUCT | CHUNK28]) + b"".join(req(READ, i * 512, 512, 0, i) for i in range(40)),
    "ro-writes": bytes([RO | STRUCT]) + req(WRITE, 0, 4096) + req(TRIM, 0, 4096, 0, 2) +
    req(READ, 4096 * 63, 4096, 0, 3) + req(READ, 4096 * 64, 4096, 0, 4),
    "out-of-range": bytes([STRUCT]) + req(READ, 8192 * 512 - 512, 1024) +
    req(WRITE, 1 << 40, 512) + req(READ, 0, 0xFFFFFFFF) + req(READ, 3, 512),
    "bad-magic": bytes([0]) + req(READ, 0, 512) + b"\x00" * 28,
    "many-writes-no-read": bytes([STRUCT | 0x20]) + b"".join(req(WRITE, 0, 4096, 0, i) for i in range(12)),
    "half-payload": bytes([0x40]) + req(WRITE, 0, 8192)[:28 + 1000],
    "block-status": bytes([STRUCT | META]) + req(WRITE, 65536, 4096, 0, 1) +
    req(BLOCK_STATUS, 0, 8192 * 512, 0, 2) + req(BLOCK_STATUS, 0, 8192 * 512, REQ_ONE, 3) +
    req(TRIM, 65536, 65536, 0, 4) + req(BLOCK_STATUS, 4096, 65536, 0, 5) +
    req(BLOCK_STATUS, 0, 0, 0, 6) + req(BLOCK_STATUS, 8192 * 512 - 512, 1024, 0, 7) +
    req(BLOCK_STATUS, 0, 512, FAST_ZERO, 8) + req(DISC),
    "block-status-no-context": bytes([STRUCT]) + req(BLOCK_STATUS, 0, 4096, 0, 1) +
    req(READ, 0, 512, 0, 2) + req(DISC),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
