#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
# Seeds for fuzz_nvme_rdma_capsule: [mode][reads][n] then n [ctl][len16][capsule] records,
# then the bytes RDMA READs fetch. Run from this directory: writes corpus/.
import os
import struct


def sqe(opc, cid, nsid=0, cdw10=0, cdw11=0, cdw12=0, fctype=None, keyed=None, icd=None):
    b = bytearray(64)
    b[0] = opc
    b[1] = 0x40  # PSDT: SGL
    struct.pack_into('<H', b, 2, cid)
    struct.pack_into('<I', b, 4, nsid)
    if fctype is not None:
        b[4] = fctype
    if keyed is not None:
        addr, ln, key, typ = keyed
        struct.pack_into('<Q', b, 24, addr)
        b[32:35] = ln.to_bytes(3, 'little')
        struct.pack_into('<I', b, 35, key)
        b[39] = typ
    elif icd is not None:
        struct.pack_into('<QI', b, 24, 0, icd)
        b[39] = 0x01
    else:
        b[39] = 0x40  # keyed, length 0
    struct.pack_into('<III', b, 40, cdw10, cdw11, cdw12)
    return b


def connect(cid, qid, sqsize, **kw):
    b = sqe(0x7f, cid, fctype=0x01, **kw)
    struct.pack_into('<HHHBx', b, 40, 0, qid, sqsize, 0)
    struct.pack_into('<I', b, 48, 15000)
    return b


def connect_data(subnqn, hostnqn):
    d = bytearray(1024)
    d[0:16] = bytes(range(16))
    struct.pack_into('<H', d, 16, 0xffff)
    d[256:256 + len(subnqn)] = subnqn
    d[512:512 + len(hostnqn)] = hostnqn
    return d


def rec(ctl, cap):
    return bytes([ctl]) + struct.pack('<H', len(cap)) + bytes(cap)


HOST = b'nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555'
SUB = b'nqn.2024-01.io.nvlend:fuzz'
seeds = {
    # queue before Connect: Connect with in-capsule data (refused: no subsystem), then a read
    'connect_icd': bytes([0, 1, 2]) + rec(0, connect(1, 0, 31, icd=1024) + connect_data(SUB, HOST))
    + rec(2, sqe(0x02, 2, 1, keyed=(0x1000, 512, 7, 0x40))),
    # Connect by keyed SGL: the data comes by RDMA READ
    'connect_keyed': bytes([4, 0, 2]) + rec(0, connect(1, 0, 31, keyed=(0x2000, 1024, 9, 0x40)))
    + rec(1, b'') + connect_data(SUB, HOST),
    # admin queue: Identify controller (RDMA WRITE), Get Features, AER held, Keep Alive
    'admin': bytes([1, 3, 5]) + rec(0, sqe(0x06, 1, 0, cdw10=1, keyed=(0x3000, 4096, 5, 0x4f)))
    + rec(2, sqe(0x0a, 2, cdw10=7)) + rec(0, sqe(0x0c, 3)) + rec(3, sqe(0x18, 4))
    + rec(3, sqe(0x7f, 5, fctype=0x04, cdw10=0x14)),
    # I/O queue: in-capsule write, keyed write (RDMA READ), keyed read, flush, bad PRP, Disconnect
    'io': bytes([2, 1, 6]) + rec(0, sqe(0x01, 1, 1, cdw12=0, icd=512) + bytes([0x5a]) * 512)
    + rec(0, sqe(0x01, 2, 1, cdw10=8, cdw12=7, keyed=(0x4000, 4096, 3, 0x40)))
    + rec(1, sqe(0x02, 3, 1, cdw12=7, keyed=(0x5000, 4096, 3, 0x4f)))
    + rec(2, sqe(0x00, 4, 1)) + rec(3, bytes(64)) + rec(3, sqe(0x7f, 6, fctype=0x08))
    + bytes([0xa5]) * 4096,
}
os.makedirs('corpus', exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join('corpus', name), 'wb') as f:
        f.write(data)
