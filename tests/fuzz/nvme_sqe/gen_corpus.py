#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Write the seed corpus of fuzz_nvme_sqe: [n-1][SQE 64][queue byte]... [window bytes].
# Usage: tests/fuzz/nvme_sqe/gen_corpus.py [OUTDIR]
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
os.makedirs(out, exist_ok=True)

PSDT_SGL = 1 << 6


def sqe(opc, nsid=0, flags=0, cid=1, prp1=0, prp2=0, cdw10=0, cdw11=0, cdw12=0, cdw13=0,
        sgl=None):
    if sgl is not None:
        addr, length, typ = sgl
        dptr = struct.pack("<QI3xB", addr, length, typ)
    else:
        dptr = struct.pack("<QQ", prp1, prp2)
    b = struct.pack("<BBHIIIQ", opc, flags, cid, nsid, 0, 0, 0) + dptr
    b += struct.pack("<IIIIII", cdw10, cdw11, cdw12, cdw13, 0, 0)
    assert len(b) == 64
    return b


def rec(cmds, window=b""):
    data = bytes([len(cmds) - 1])
    for c, q in cmds:
        data += c + bytes([q])
    return data + window


def win(parts, size=0x4000):
    w = bytearray(size)
    for off, b in parts:
        w[off:off + len(b)] = b
    return bytes(w)


def prp_list(*pages):
    return b"".join(struct.pack("<Q", p) for p in pages)


def sgl_desc(addr, length, typ=0):
    return struct.pack("<QI3xB", addr, length, typ)


seeds = {
    "identify_ctrlr": rec([(sqe(0x06, prp1=0x1000, cdw10=1), 0)]),
    "identify_ns_sgl": rec([(sqe(0x06, nsid=1, flags=PSDT_SGL, sgl=(0x2000, 4096, 0)), 0)]),
    "identify_list": rec([(sqe(0x06, nsid=0, prp1=0x1000, cdw10=2), 0)]),
    "identify_descs": rec([(sqe(0x06, nsid=3, prp1=0x800, prp2=0x2000, cdw10=3), 0)]),
    "get_log_smart": rec([(sqe(0x02, nsid=0xffffffff, prp1=0, cdw10=0x007f0002), 0)]),
    "get_log_error_off": rec([(sqe(0x02, prp1=0x100, cdw10=0x00ff0001, cdw12=64), 0)]),
    "get_log_resv": rec([(sqe(0x02, prp1=0x100, cdw10=0x000f0080), 0x10)]),
    "get_log_changed": rec([(sqe(0x02, prp1=0x1000, cdw10=0x03ff8004), 0)]),
    "features": rec([(sqe(0x09, cdw10=0x07, cdw11=0x00030003), 0),
                     (sqe(0x0a, cdw10=0x307), 0),
                     (sqe(0x09, cdw10=0x0f, cdw11=1234), 0)]),
    "set_hostid": rec([(sqe(0x09, prp1=0x10, cdw10=0x81, cdw11=1), 0x20)],
                      win([(0x10, bytes(range(1, 17)))])),
    "aer": rec([(sqe(0x09, cdw10=0x0b, cdw11=0x100), 0), (sqe(0x0c), 0)]),
    "create_queues": rec([(sqe(0x05, cdw10=(63 << 16) | 1, cdw11=3), 0),
                          (sqe(0x01, cdw10=(63 << 16) | 1, cdw11=(1 << 16) | 1), 0)]),
    "read_prp1": rec([(sqe(0x02, nsid=1, prp1=0x1000, cdw12=7), 1)]),
    "read_prp2": rec([(sqe(0x02, nsid=1, prp1=0x1800, prp2=0x3000, cdw12=7), 1)]),
    "write_prp_list": rec([(sqe(0x01, nsid=1, prp1=0x1000, prp2=0x8000, cdw10=8, cdw12=31), 1)],
                          win([(0x8000, prp_list(0x2000, 0x3000, 0x5000))])),
    "write_prp_chain": rec([(sqe(0x01, nsid=1, prp1=0x0, prp2=0x3ff0, cdw12=39), 2)],
                           win([(0x3ff0, prp_list(0x5000, 0x6000)),
                                (0x6000, prp_list(0x7000, 0x8000, 0x9000))], 0x8000)),
    "write_sgl": rec([(sqe(0x01, nsid=1, flags=PSDT_SGL, sgl=(0x100, 1024, 0)), 1)]),
    "write_sgl_last": rec([(sqe(0x01, nsid=1, flags=PSDT_SGL, sgl=(0x4000, 32, 0x30), cdw12=3), 1)],
                          win([(0x4000, sgl_desc(0x100, 1024) + sgl_desc(0x1000, 1024))], 0x5000)),
    "write_sgl_seg": rec([(sqe(0x01, nsid=1, flags=PSDT_SGL, sgl=(0x4000, 32, 0x20), cdw12=1), 1)],
                         win([(0x4000, sgl_desc(0x100, 512) + sgl_desc(0x4100, 16, 0x30)),
                              (0x4100, sgl_desc(0x2000, 512))], 0x5000)),
    "write_ro_fua": rec([(sqe(0x01, nsid=3, prp1=0x1000, cdw12=(1 << 30)), 1)]),
    "compare": rec([(sqe(0x01, nsid=1, prp1=0x1000, cdw10=5), 1),
                    (sqe(0x05, nsid=1, prp1=0x1000, cdw10=5), 1)]),
    "write_zeroes_dsm": rec([(sqe(0x08, nsid=1, cdw10=2, cdw12=3 | (1 << 25)), 1),
                             (sqe(0x09, nsid=1, prp1=0x20, cdw10=1, cdw11=4), 1)],
                            win([(0x20, struct.pack("<IIQ", 0, 4, 0) +
                                  struct.pack("<IIQ", 0, 1, 255))])),
    "flush_all": rec([(sqe(0x00, nsid=0xffffffff), 1), (sqe(0x00, nsid=1), 2)]),
    "resv_fence": rec([
        (sqe(0x0d, nsid=1, prp1=0x10, cdw10=0), 0x01),                 # host 0 registers key A
        (sqe(0x0d, nsid=1, prp1=0x20, cdw10=0), 0x11),                 # host 1 registers key B
        (sqe(0x11, nsid=1, prp1=0x30, cdw10=(2 << 8)), 0x01),          # host 0 acquires EA
        (sqe(0x11, nsid=1, prp1=0x40, cdw10=1 | (1 << 8)), 0x11),      # host 1 preempts
    ], win([(0x10, struct.pack("<QQ", 0, 0xaaaa)), (0x20, struct.pack("<QQ", 0, 0xbbbb)),
            (0x30, struct.pack("<QQ", 0xaaaa, 0)), (0x40, struct.pack("<QQ", 0xbbbb, 0xaaaa))])),
    "resv_ptpl_report": rec([
        (sqe(0x0d, nsid=1, prp1=0x10, cdw10=(3 << 30)), 0x01),
        (sqe(0x11, nsid=1, prp1=0x30, cdw10=(5 << 8)), 0x01),
        (sqe(0x0e, nsid=1, prp1=0x1000, cdw10=1023, cdw11=1), 0x11),
        (sqe(0x15, nsid=1, prp1=0x30, cdw10=1), 0x01),
    ], win([(0x10, struct.pack("<QQ", 0, 0xaaaa)), (0x30, struct.pack("<QQ", 0xaaaa, 0))])),
    "resv_no_hostid": rec([(sqe(0x0d, nsid=1, prp1=0x10), 0x21)]),
    "fused": rec([(sqe(0x05, nsid=1, flags=1, prp1=0x1000), 1), (sqe(0x01, nsid=1, flags=2, prp1=0x1000), 1)]),
    "discovery_log": rec([(sqe(0x02, prp1=0x1000, cdw10=0x00ff0070), 0x08)]),
    "bad_prp": rec([(sqe(0x02, nsid=1, prp1=0xffffffffffff0000, cdw12=7), 1)]),
}

for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
