#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
# Seeds for fuzz_vhost_msg: records [fd byte][le16 size if bit 3][header][payload]
# (see fuzz_vhost_msg.c). `migration_log` is what QEMU sends around a live
# migration: handshake, memory, one running ring, SET_LOG_BASE with a sized
# memfd, SET_LOG_FD, VHOST_F_LOG_ALL on, the ring's VHOST_VRING_F_LOG address,
# a log resize, logging off, GET_VRING_BASE.
# Usage: gen_corpus.py [DIR]  (default: the corpus dir beside this script)
import os
import struct
import sys

MEMFD, EVENTFD, SIZED = 0, 4, 8
UVA = 0x7F0000000000
NEED_REPLY = 1 << 3


def rec(req, payload=b"", nfds=0, kind=MEMFD, fsize=None, flags=0):
    b = bytes([nfds | kind | (SIZED if fsize is not None else 0)])
    if fsize is not None:
        b += struct.pack("<H", fsize // 16)
    return b + struct.pack("<III", req, 1 | flags, len(payload)) + payload


def u64(v):
    return struct.pack("<Q", v)


def state(i, n):
    return struct.pack("<II", i, n)


def addr(i, flags=0, log=0):
    return struct.pack("<IIQQQQ", i, flags, UVA, UVA + 0x2000, UVA + 0x1000, log)


features = (1 << 32) | (1 << 30) | (1 << 29)
protocol = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 9) | (1 << 12) | (1 << 13)
seq = [
    rec(1),                                                     # GET_FEATURES
    rec(16, u64(protocol)),                                     # SET_PROTOCOL_FEATURES
    rec(2, u64(features)),                                      # SET_FEATURES
    rec(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 1 << 20, UVA, 0), 1),
    rec(8, state(0, 64)),                                       # SET_VRING_NUM
    rec(10, state(0, 0)),                                       # SET_VRING_BASE
    rec(9, addr(0)),                                            # SET_VRING_ADDR
    rec(12, u64(0), 1, EVENTFD),                                # SET_VRING_KICK
    rec(18, state(0, 1)),                                       # SET_VRING_ENABLE
    rec(6, struct.pack("<QQ", 32, 0), 1, fsize=4096),           # SET_LOG_BASE
    rec(7, b"", 1, EVENTFD),                                    # SET_LOG_FD
    rec(2, u64(features | 1 << 26), flags=NEED_REPLY),          # LOG_ALL on
    rec(9, addr(0, 1, 0x2000), flags=NEED_REPLY),               # VRING_F_LOG
    rec(6, struct.pack("<QQ", 64, 4096), 1, fsize=8192),        # resize
    rec(2, u64(features), flags=NEED_REPLY),                    # LOG_ALL off
    rec(11, state(0, 0)),                                       # GET_VRING_BASE
]
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "migration_log"), "wb") as f:
    f.write(b"".join(seq))
