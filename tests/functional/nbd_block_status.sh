#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# NBD block status (base:allocation) and what an imported NVMe bdev can do,
# with libnbd's tools:
#  - a sparse 64 MiB file bdev with a few blocks written: `nbdinfo --map`
#    lists exactly the written ranges as data and the rest as hole,zero;
#    `nbdcopy` of the export is byte-identical and sparse again;
#  - a RAM bdev written at a few 64 KiB-aligned places (its granule): the map
#    matches; a TRIM over NBD makes that range hole,zero, a partial one does
#    not until the whole chunk reads as zeroes; nbdcopy is byte-identical;
#  - a bdev on a local memory brick: extents whose 2 MiB block the brick
#    does not hold are hole,zero; a trim of a whole extent frees it again;
#  - an imported NVMe/TCP namespace (daemon A serves a RAM namespace, daemon B
#    attaches it with bdev_nvme_attach_controller and exports it over NBD):
#    nbdinfo shows can_trim and can_zero, and a TRIM / WRITE_ZEROES over
#    NBD on B reaches A as Dataset Management / Write Zeroes (A's counters,
#    and A's own NBD map of the namespace shows the trimmed range as a hole).
# timeout: 60
source "$(dirname "$0")/common.sh"
requires nbdinfo nbdcopy
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "needs python3-libnbd (/usr/bin/python3 -c 'import nbd')"
PY=/usr/bin/python3
M=$((1 << 20))

start_nvlendd --reactors 2
SA=$NVLEND_SOCKET
A() { nvlend -s "$SA" "$@"; }
port=$(free_port) || fail "no free port"
U=nbd://127.0.0.1:$port

# expected map lines from "offset:length" data ranges of a SIZE-byte export
expect_map() { # SIZE RANGE...
	$PY - "$@" <<'EOF'
import sys
size = int(sys.argv[1]); pos = 0
for r in sys.argv[2:]:
    off, ln = (int(x) for x in r.split(":"))
    if off > pos:
        print(pos, off - pos, 3)
    print(off, ln, 0); pos = off + ln
if pos < size:
    print(pos, size - pos, 3)
EOF
}
# nbdinfo --map as "offset length type" lines
map_of() { nbdinfo --map --json "$1" | $PY -c '
import json, sys
for e in json.load(sys.stdin): print(e["offset"], e["length"], e["type"])'; }

# ---- a sparse file -------------------------------------------------------------------
truncate -s 64M "$T/sparse.img"
for r in $((1 * M)):4096 $((10 * M)):65536 $((40 * M + 8192)):4096 $((64 * M - 4096)):4096; do
	head -c "${r#*:}" /dev/urandom | dd of="$T/sparse.img" bs=4096 seek=$((${r%:*} / 4096)) conv=notrunc status=none
done
A bdev create file f0 "$T/sparse.img" --block-size 4096 >/dev/null || fail "file bdev"
A bdev create ram r0 64M >/dev/null || fail "ram bdev"
A nbd start --port "$port" >/dev/null || fail "nbd start"
A nbd export add sparse0 f0 >/dev/null || fail "export sparse0"
A nbd export add ram0 r0 >/dev/null || fail "export ram0"

want=$(expect_map $((64 * M)) $((1 * M)):4096 $((10 * M)):65536 $((40 * M + 8192)):4096 $((64 * M - 4096)):4096)
got=$(map_of "$U/sparse0") || fail "nbdinfo --map sparse0"
[ "$got" = "$want" ] || fail "map of the sparse file:
$got
expected:
$want"
# nbdcopy: identical bytes, and holes stay holes
nbdcopy "$U/sparse0" "$T/copy.img" || fail "nbdcopy sparse0"
cmp "$T/sparse.img" "$T/copy.img" || fail "copy of the sparse export differs"
alloc=$(($(stat -c %b "$T/copy.img") * 512))
[ "$alloc" -le $((1 * M)) ] || fail "copy is not sparse: $alloc bytes allocated for 76 KiB of data"

# ---- a RAM bdev ----------------------------------------------------------------------------
want=$(expect_map $((64 * M)))
[ "$(map_of "$U/ram0")" = "$want" ] || fail "fresh RAM bdev is not one hole: $(map_of "$U/ram0")"
$PY - "$U/ram0" <<'EOF' || fail "writes to ram0"
import sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1]); M = 1 << 20
h.pwrite(b"a" * 65536, 2 * M)
h.pwrite(b"b" * 131072, 20 * M)
h.pwrite(b"c" * 4096, 33 * M + 8192)     # inside one 64 KiB chunk: the chunk is data
h.shutdown()
EOF
want=$(expect_map $((64 * M)) $((2 * M)):65536 $((20 * M)):131072 $((33 * M)):65536)
got=$(map_of "$U/ram0")
[ "$got" = "$want" ] || fail "map of the RAM bdev:
$got
expected:
$want"
nbdcopy "$U/ram0" "$T/ram.img" || fail "nbdcopy ram0"
$PY - "$T/ram.img" <<'EOF' || fail "copy of the RAM export differs"
import sys
M = 1 << 20
d = open(sys.argv[1], "rb").read()
assert len(d) == 64 * M
assert d[2 * M:2 * M + 65536] == b"a" * 65536
assert d[20 * M:20 * M + 131072] == b"b" * 131072
assert d[33 * M + 8192:33 * M + 12288] == b"c" * 4096
assert d.count(0) == 64 * M - 65536 - 131072 - 4096     # everything else is zero
EOF
# TRIM of the first half of the 128 KiB: a hole; zeroing 4 KiB of the third
# chunk elsewhere leaves it data, zeroing the written 4 KiB makes it a hole
$PY - "$U/ram0" <<'EOF' || fail "trim/zero on ram0"
import sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1]); M = 1 << 20
h.trim(65536, 20 * M)
h.zero(4096, 33 * M)
h.shutdown()
EOF
want=$(expect_map $((64 * M)) $((2 * M)):65536 $((20 * M + 65536)):65536 $((33 * M)):65536)
got=$(map_of "$U/ram0")
[ "$got" = "$want" ] || fail "map after trim:
$got
expected:
$want"
$PY -c "
import sys, nbd
h = nbd.NBD(); h.connect_uri('$U/ram0'); h.zero(4096, 33 * (1 << 20) + 8192); h.shutdown()" || fail "zero"
want=$(expect_map $((64 * M)) $((2 * M)):65536 $((20 * M + 65536)):65536)
[ "$(map_of "$U/ram0")" = "$want" ] || fail "map after zeroing the chunk's data: $(map_of "$U/ram0")"
[ "$(A --json nbd export list ram0 | json_get '[0]["stats"]["block_status_ops"]')" -ge 4 ] ||
	fail "block status not counted: $(A --json nbd export list ram0)"
# the worker is killed: the next one takes the memory back (contents kept) and
# scans it at the first block status; the map is the same (a hole reported
# where data is would make nbdcopy skip it)
ALLOW_WORKER_RESTARTS=1
old=$WORKER_PID
kill -KILL "$old"
wait_until 15 sh -c "w=\$(pgrep -P $DAEMON_PID -x nvlendd); [ -n \"\$w\" ] && [ \"\$w\" != $old ]" ||
	fail "no new worker"
wait_until 15 sh -c "nbdinfo --map '$U/ram0' >/dev/null 2>&1" || fail "ram0 not exported again"
got=$(map_of "$U/ram0")
[ "$got" = "$want" ] || fail "map after a restart:
$got
expected:
$want"

# ---- a brick bdev (local brick): unallocated 2 MiB extents are holes -----------------------------
A brick create bk0 --fast "$T/fast" --slow "$T/slow" --capacity 16 --fast-blocks 4 >/dev/null ||
	fail "brick create"
A rpc bdev_brick_create '{"name": "bv0", "brick": "bk0", "base_addr": 0, "size_mib": 32}' >/dev/null ||
	fail "bdev_brick_create"
A nbd export add brick0 bv0 >/dev/null || fail "export brick0"
$PY - "$U/brick0" <<'EOF' || fail "writes to brick0"
import sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1]); M = 1 << 20
h.pwrite(b"k" * 4096, 4 * M + 12288)     # allocates the extent [4M, 6M)
h.pwrite(b"l" * 4096, 10 * M)            # and [10M, 12M)
h.trim(2 * M, 10 * M)                    # frees the second again
h.shutdown()
EOF
want=$(expect_map $((32 * M)) $((4 * M)):$((2 * M)))
got=$(map_of "$U/brick0")
[ "$got" = "$want" ] || fail "map of the brick bdev:
$got
expected:
$want"

# ---- an imported NVMe/TCP namespace re-exported over NBD ------------------------------------------
tport=$(free_port) || fail "no free port"
NQN=nqn.2024-01.io.nvlend:nbdmap
A bdev create ram ns0 16M >/dev/null || fail "namespace bdev"
A rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true}" >/dev/null || fail "subsystem"
A rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"ns0\"}}" >/dev/null || fail "add_ns"
A rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"adrfam\":\"IPv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$tport\"}}" >/dev/null ||
	fail "listener"
A nbd export add ns0 ns0 >/dev/null || fail "export ns0 on A"
start_nvlendd
SB=$NVLEND_SOCKET
B() { nvlend -s "$SB" "$@"; }
bport=$(free_port) || fail "no free port"
UB=nbd://127.0.0.1:$bport
B rpc bdev_nvme_attach_controller "{\"name\":\"imp\",\"trtype\":\"TCP\",\"adrfam\":\"IPv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$tport\",\"subnqn\":\"$NQN\"}" >/dev/null ||
	fail "attach controller"
B nbd start --port "$bport" >/dev/null || fail "nbd start on B"
B nbd export add imp impn1 >/dev/null || fail "export the imported bdev"
out=$(nbdinfo --json "$UB/imp") || fail "nbdinfo imp"
info() { printf '%s' "$out" | json_get "[\"exports\"][0][\"$1\"]"; }
assert_eq "$(info can_trim)" True "imported bdev can_trim"
assert_eq "$(info can_zero)" True "imported bdev can_zero"
assert_eq "$(info export-size)" $((16 * M)) "imported bdev size"
ns_stat() { A --json bdev iostat | $PY -c '
import json, sys
print([b for b in json.load(sys.stdin)["bdevs"] if b["name"] == "ns0"][0][sys.argv[1]])' "$1"; }
u0=$(ns_stat num_unmap_ops) z0=$(ns_stat num_write_zeroes_ops)
$PY - "$UB/imp" <<'EOF' || fail "I/O on the imported export"
import sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1]); M = 1 << 20
h.pwrite(b"n" * (4 * M), 0)
h.trim(M, M)                                  # DSM deallocate on A
h.zero(65536, 3 * M, nbd.CMD_FLAG_NO_HOLE)    # Write Zeroes on A
assert h.pread(M, M) == bytes(M)
assert h.pread(65536, 3 * M) == bytes(65536)
assert h.pread(65536, 0) == b"n" * 65536
h.shutdown()
EOF
[ "$(ns_stat num_unmap_ops)" -gt "$u0" ] || fail "the NBD trim did not reach A as a deallocate"
[ "$(ns_stat num_write_zeroes_ops)" -gt "$z0" ] || fail "the NBD zero did not reach A as Write Zeroes"
# A's own view of the namespace: the deallocated MiB is a hole again
want=$(expect_map $((16 * M)) 0:$((1 * M)) $((2 * M)):$((1 * M)) $((3 * M + 65536)):$((M - 65536)))
got=$(map_of "nbd://127.0.0.1:$port/ns0")
[ "$got" = "$want" ] || fail "A's map of the namespace after trim over B:
$got
expected:
$want"
# B's own map of an nvme_tcp bdev: not known there, so all data
[ "$(map_of "$UB/imp")" = "0 $((16 * M)) 0" ] || fail "imported bdev map: $(map_of "$UB/imp")"
pass
