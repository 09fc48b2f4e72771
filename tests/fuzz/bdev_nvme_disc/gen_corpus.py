#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Write the seed corpus of fuzz_bdev_nvme_disc: [mode] then records
# [op][len][payload] (see the target's opening comment for the ops).
# Usage: tests/fuzz/bdev_nvme_disc/gen_corpus.py [OUTDIR]
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
os.makedirs(out, exist_ok=True)

LOG, AER, ADMIN, FAIL_ASSOC, TIME, SWITCH, REPORT, NOP = range(8)
TCP, RDMA = 3, 1
IPV4, IPV6 = 1, 2
NVME, DISC = 2, 3


def rec(op, payload=b""):
    return bytes([op, len(payload)]) + payload


def header(gen, numrec):
    return rec(LOG, struct.pack("<QQ", gen, numrec) + b"\x00" + struct.pack("<H", 0))


def entry(nqn, addr=b"192.0.2.10", port=b"4420", trtype=TCP, adrfam=IPV4, subtype=NVME,
          flags=0):
    p0 = (trtype | 0x40) if trtype != TCP else 0
    p0 |= flags
    return rec(LOG, bytes([p0, adrfam, subtype]) + port.ljust(4, b"\0")[:4] +
               addr.ljust(12, b"\0")[:12] + nqn)


def log(gen, nqns, **kw):
    b = header(gen, len(nqns))
    for n in nqns:
        b += entry(n, **kw)
    return b + header(gen, len(nqns))


A = b"nqn.2024-01.io.example:a"
B = b"nqn.2024-01.io.example:b"
C = b"nqn.2024-01.io.example:c"
AEN = rec(AER, struct.pack("<HI", 0, 0x00f00002 | (0x70 << 16)))

seeds = {
    "one": bytes([0]) + log(1, [A]) + AEN + log(2, [A, B]) + AEN + log(3, [B]),
    "gen_moves": bytes([0]) + header(1, 1) + entry(A) + header(2, 1) + log(2, [A, C]),
    "wildcard": bytes([2]) + log(1, [A], addr=b"0.0.0.0") + AEN + log(2, [A], addr=b"::",
                                                                       adrfam=IPV6),
    "garbage": bytes([0]) + header(7, 4) + entry(A, trtype=RDMA) + entry(B, subtype=DISC) +
    entry(C, flags=0x80) + entry(b"x" * 200, flags=0x20) + header(7, 4),
    "lost": bytes([0]) + header(1, 2) + entry(A) + rec(FAIL_ASSOC) + rec(TIME, b"\x0f") +
    rec(TIME, b"\x1f") + log(1, [A, B]),
    "busy": bytes([0x20]) + log(1, [A, B]) + rec(REPORT) + rec(SWITCH, b"\x02") + AEN +
    log(2, []) + rec(TIME, b"\x20") + rec(SWITCH, b"\x00") + rec(TIME, b"\x20"),
    "aer_fail": bytes([0]) + log(1, [A]) + rec(AER, struct.pack("<HI", 0x4004, 0)) +
    rec(TIME, b"\x40") + log(2, [B]),
    "poll_only": bytes([0x05]) + log(1, [A]) + rec(TIME, b"\x40") + log(2, [A, B]),
    "as_nvme": bytes([0x08]),
    "timeout": bytes([0x32]) + log(1, [A, B]) + rec(TIME, b"\x30"),
    "many": bytes([0]) + header(9, 300) + rec(SWITCH, b"\x01") +
    b"".join(entry(b"nqn.2024-01.io.example:%03d" % i) for i in range(40)),
    # found: the first Get Log Page failed with an error status: the log was
    # never read again, the start never answered, the service could not stop
    "read-error-hang": bytes([0]) + rec(ADMIN, b"\x00" + struct.pack("<HHI", 0, 0x0004, 7)) +
    rec(ADMIN, b"\x80" + struct.pack("<HHI", 0x77, 0, 0)) + log(1, [A]),
}

for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
