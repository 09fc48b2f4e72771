#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A hostile local client against the brick bdev: it maps a block of the bdev
# read-write over the shm listener, keeps the block's fd and ftruncates it,
# once and then in a loop while NBD I/O runs on that block. The daemon does
# the brick bdev's copies with the kernel (no load or store that could SIGBUS
# it), so it must survive, the I/O that meets the truncated block must fail
# with an error, and every other extent must keep its data. Run for a local
# brick bdev (brick name) and a remote one (brick+shm URI to this daemon,
# whose worker thread maps the blocks itself).
# timeout: 180
source "$(dirname "$0")/common.sh"
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "needs python3-libnbd (/usr/bin/python3 -c 'import nbd')"

HELPER=$BUILD/tests/helpers/brick_test
[ -x "$HELPER" ] || fail "missing $HELPER (make tests)"
fast=/dev/shm/${NVLEND_SHM_PREFIX}tf
on_exit "rm -rf $fast"
start_nvlendd --reactors 2
nvlend brick create b0 --fast "$fast" --capacity 16 >/dev/null || fail "create brick"
nvlend brick listen b0 shm "$T/b.sock" || fail "shm listener"
SHM="brick+shm://$T/b.sock?name=b0"
MB=1048576
rpc bdev_brick_create '{"name": "bl", "brick": "b0", "base_addr": 0, "size_mib": 8}' >/dev/null ||
	fail "local brick bdev"
rpc bdev_brick_create "{\"name\": \"br\", \"brick\": \"$SHM\", \"base_addr\": $((32 * MB)), \"size_mib\": 8}" >/dev/null ||
	fail "remote (shm) brick bdev"
nvlend nbd start --port 0 --socket "$T/nbd.sock" || fail "nbd start"
nvlend nbd export add el bl || fail "export el"
nvlend nbd export add er br || fail "export er"

# check EXPORT BASE: extents 0-3 of the bdev are the blocks BASE + i * 2 MiB
cat >"$T/check.py" <<'EOF'
import os, subprocess, sys, threading, time
import nbd

sock, export, helper, uri, base = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
EXT = 2 << 20
h = nbd.NBD()
h.connect_uri("nbd+unix:///%s?socket=%s" % (export, sock))

def pat(i):
    return (bytes([(i * 37 + 11) & 0xff]) * 4096 + os.urandom(4096)) * (EXT // 8192)

def hostile(extent, length, loops):
    subprocess.run([helper, "truncate", uri, hex(base + extent * EXT), str(length), str(loops)],
                   check=True, stdout=subprocess.DEVNULL)

def fails(fn):
    try:
        fn()
    except nbd.Error as e:
        return e
    return None

data = [pat(i) for i in range(4)]
for i in range(4):
    h.pwrite(data[i], i * EXT)
h.flush()
for i in range(4):
    assert h.pread(EXT, i * EXT) == data[i], "%s: extent %d reads back wrong" % (export, i)

# 1. truncated to nothing, after the I/O: the next read of it fails, nothing crashes
hostile(0, 0, 1)
e = fails(lambda: h.pread(4096, 8192))
assert e is not None, "%s: a read of a truncated block succeeded" % export
print("%s: read of the truncated block failed: %s" % (export, e))
# the block is usable again afterwards (its lost content reads as zeroes)
assert h.pread(EXT, 0) == bytes(EXT), "%s: truncated block not zero after recovery" % export
h.pwrite(data[3], 0)
assert h.pread(EXT, 0) == data[3], "%s: rewritten block reads back wrong" % export

# 2. cut to 1 MiB: a write into the lost half and zeroing fail too
hostile(1, 1 << 20, 1)
e = fails(lambda: h.pwrite(data[0][:65536], EXT + (1 << 20) + 4096))
assert e is not None, "%s: a write into a truncated block succeeded" % export
assert h.pread(65536, EXT) == data[1][:65536], "%s: the kept half changed" % export
hostile(1, 4096, 1)
e = fails(lambda: h.zero(65536, EXT + 65536))
assert e is not None, "%s: write-zeroes of a truncated block succeeded" % export

# 3. truncate and grow back in a loop while I/O runs on the same block
stop = False
errs = [0, 0]
def io_loop():
    n = 0
    while not stop:
        for fn in (lambda: h.pwrite(data[n % 4][:131072], 2 * EXT + (n % 8) * 131072),
                   lambda: h.pread(131072, 2 * EXT + (n % 8) * 131072)):
            errs[0 if fails(fn) is None else 1] += 1
        n += 1
t = threading.Thread(target=io_loop)
t.start()
try:
    hostile(2, 0, 1000)
finally:
    stop = True
    t.join()
print("%s: %d I/Os succeeded, %d failed during the truncation loop" % (export, errs[0], errs[1]))
assert errs[0] + errs[1] > 0

# 4. the extent the client never touched kept its data; the raced one works again
assert h.pread(EXT, 3 * EXT) == data[3], "%s: an untouched extent lost its data" % export
for i in range(2):  # the first access may still meet the last truncation
    if fails(lambda: h.pwrite(data[2], 2 * EXT)) is None:
        break
assert h.pread(EXT, 2 * EXT) == data[2], "%s: raced extent unusable afterwards" % export
h.flush()
h.shutdown()
print("%s: ok" % export)
EOF

/usr/bin/python3 "$T/check.py" "$T/nbd.sock" el "$HELPER" "$SHM" 0 || fail "local brick bdev"
/usr/bin/python3 "$T/check.py" "$T/nbd.sock" er "$HELPER" "$SHM" $((32 * MB)) || fail "remote brick bdev"
nvlend status >/dev/null || fail "daemon died"
grep -q "lost its memory" "$DAEMON_LOG" || fail "the truncation was not logged"
nvlend nbd export remove el || fail "export remove el"
nvlend nbd export remove er || fail "export remove er"
rpc bdev_brick_delete '{"name": "br"}' >/dev/null || fail "delete br"
rpc bdev_brick_delete '{"name": "bl"}' >/dev/null || fail "delete bl"
nvlend brick delete b0 --purge || fail "brick delete"
stop_nvlendd
pass
