#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
# Seed corpus for fuzz_brick_recover (input format: fuzz_brick_recover.c).
import os
import struct
import sys

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(out, exist_ok=True)
MB2 = 2 << 20


def mode(slot_file, capacity, fast):
    return bytes([(1 if slot_file else 0) | ((capacity - 1) << 1) | (fast << 4)])


def blk(tier, n, size=0):
    return bytes([tier]) + struct.pack("<Q", n * MB2) + bytes([size])


def rec(slot, n, gen, valid=True, bad_crc=False, other_id=False, other_slot=False):
    f = (1 if valid else 0) | (2 if bad_crc else 0) | (4 if other_id else 0) | (8 if other_slot else 0)
    return bytes([3, slot, f]) + struct.pack("<QQ", n * MB2, gen)


seeds = {
    "dirs-fast-only": mode(False, 4, 0) + blk(0, 1) + blk(0, 2),
    "dirs-both-tiers-dup": mode(False, 4, 2) + blk(0, 1) + blk(1, 1) + blk(1, 3),
    "dirs-over-budget": mode(False, 6, 1) + blk(0, 1) + blk(0, 2) + blk(0, 3),
    "dirs-over-capacity": mode(False, 1, 0) + blk(0, 1) + blk(0, 2),
    "dirs-short-block": mode(False, 4, 0) + blk(0, 5, 3),
    "dirs-leftovers": mode(False, 4, 2) + bytes([2, 4]) + bytes([2, 0x83]) + blk(1, 2),
    "file-records": mode(True, 5, 2) + rec(0, 4, 7) + rec(1, 6, 3) + blk(0, 1),
    "file-dup-newer": mode(True, 5, 2) + rec(0, 4, 7) + rec(2, 4, 9),
    "file-fast-wins": mode(True, 5, 2) + rec(1, 8, 1) + blk(0, 8),
    "file-garbage-recs": mode(True, 5, 2) + rec(0, 4, 2, bad_crc=True) + rec(1, 5, 2, other_id=True)
    + rec(2, 6, 2, other_slot=True) + rec(3, 7, 2, valid=False),
    "file-bad-header": mode(True, 4, 2) + bytes([4, 20, 0, 0x77]),
    "weird-names": mode(False, 4, 0) + bytes([5]) + bytes(range(16)) + bytes([5]) + b"0123456789abcdef",
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("wrote %d seeds to %s" % (len(seeds), out), file=sys.stderr)
