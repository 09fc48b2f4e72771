#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Write the seed corpus of fuzz_vhost_rx from the message seeds of
# tests/fuzz/vhost_msg (records [fd byte][12-byte header][payload]): each
# message becomes reads [ctl][n - 1][n bytes] cut at different places, its fds
# on one of the reads; plus a few framing edge cases.
# Usage: tests/fuzz/vhost_rx/gen_corpus.py [OUTDIR]
import os
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
os.makedirs(out, exist_ok=True)
msg_seeds = os.path.join(here, "..", "vhost_msg", "corpus")


def messages(data):
    while len(data) >= 13:
        fdb = data[0]
        size = struct.unpack("<I", data[9:13])[0]
        size = size if size <= 4096 else 0
        yield fdb & 7, data[1:13 + size]
        data = data[13 + size:]


def reads(msg, fdbits, cuts, fd_read):
    out, i, k = b"", 0, 0
    while i < len(msg):
        n = min(cuts[k % len(cuts)], len(msg) - i)
        ctl = fdbits if k == fd_read else 0
        out += bytes([ctl, n - 1]) + msg[i:i + n]
        i += n
        k += 1
    return out


for name in sorted(os.listdir(msg_seeds)):
    data = open(os.path.join(msg_seeds, name), "rb").read()
    for tag, cuts, fd_read in (("whole", [256], 0), ("split", [5, 7, 3, 64], 1)):
        seed = b"".join(reads(m, fdb, cuts, min(fd_read, (len(m) + 4) // 5))
                        for fdb, m in messages(data))
        open(os.path.join(out, "%s_%s" % (name, tag)), "wb").write(seed)

get_features = struct.pack("<III", 1, 1, 0)
edge = {
    # header announcing a payload over the bound
    "oversized": bytes([0, 11]) + struct.pack("<III", 24, 1, 4097),
    # nine fds with the header, then the 8-byte payload
    "too_many_fds": bytes([8, 11]) + struct.pack("<III", 16, 1, 8) + bytes([0, 7]) + bytes(8),
    # control data cut
    "ctrunc": bytes([16 | 1, 3]) + get_features[:4],
    # the peer closes mid-header
    "eof": bytes([0, 5]) + get_features[:6] + bytes([32, 0]),
}
for name, seed in edge.items():
    open(os.path.join(out, name), "wb").write(seed)
