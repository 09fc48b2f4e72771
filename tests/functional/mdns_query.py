#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
# A one-shot mDNS browser for tests (RFC 6762 "legacy unicast" query: sent
# from an ephemeral port, so responders answer us directly):
#   mdns_query.py SERVICE [TRIES]      e.g. _nvme-disc._tcp.local
# Prints one line per service instance found: "INSTANCE PORT key=value ..."
# from the PTR, SRV and TXT records of the answer; exit 1 if none answers.
import socket
import struct
import sys


def enc(name):
    return b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\0'


def read_name(msg, off, depth=0):
    labels = []
    while True:
        if off >= len(msg) or depth > 20:
            raise ValueError('bad name')
        n = msg[off]
        if n == 0:
            return '.'.join(labels), off + 1
        if n & 0xc0 == 0xc0:
            ptr = struct.unpack('>H', msg[off:off + 2])[0] & 0x3fff
            rest, _ = read_name(msg, ptr, depth + 1)
            labels.append(rest)
            return '.'.join(labels), off + 2
        labels.append(msg[off + 1:off + 1 + n].decode(errors='replace'))
        off += 1 + n


def parse(msg):
    _, _, qd, an, ns, ar = struct.unpack('>HHHHHH', msg[:12])
    off = 12
    for _ in range(qd):
        _, off = read_name(msg, off)
        off += 4
    recs = []
    for _ in range(an + ns + ar):
        name, off = read_name(msg, off)
        typ, _, _, rdlen = struct.unpack('>HHIH', msg[off:off + 10])
        off += 10
        recs.append((name, typ, off, rdlen))
        off += rdlen
    found = {}
    for name, typ, roff, rdlen in recs:
        if typ == 12:  # PTR: an instance
            inst, _ = read_name(msg, roff)
            found.setdefault(inst, {'port': None, 'txt': []})
    for name, typ, roff, rdlen in recs:
        if name not in found:
            continue
        if typ == 33:  # SRV
            found[name]['port'] = struct.unpack('>H', msg[roff + 4:roff + 6])[0]
        elif typ == 16:  # TXT
            i = roff
            while i < roff + rdlen:
                n = msg[i]
                found[name]['txt'].append(msg[i + 1:i + 1 + n].decode(errors='replace'))
                i += 1 + n
    return found


def main():
    svc = sys.argv[1]
    tries = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    q = struct.pack('>HHHHHH', 0x4e56, 0, 1, 0, 0, 0) + enc(svc) + struct.pack('>HH', 12, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    s.settimeout(1.0)
    for _ in range(tries):
        s.sendto(q, ('224.0.0.251', 5353))
        try:
            data, _ = s.recvfrom(9000)
        except socket.timeout:
            continue
        found = parse(data)
        if found:
            for inst, v in found.items():
                print(inst, v['port'], ' '.join(v['txt']))
            return 0
    return 1


sys.exit(main())
