#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# NBD export against real clients we did not write: nbdinfo (size, flags,
# block sizes, --list), nbdcopy in and out + cmp, libnbd (nbdsh's Python
# binding) scripted reads/writes/trim/zero/flush/cache with FUA and
# FAST_ZERO and server-side errors, qemu-img compare and convert, multi-conn
# with several connections writing at once, read-only exports, a Unix socket,
# bdev delete refused while exported, export removal with a client attached,
# the connection limit, CLI tables/JSON, the read hold (held reads for fio's
# queue-depth-32 writer, whose data verifies; none with --no-read-hold), and
# save-config replay.
# timeout: 240
source "$(dirname "$0")/common.sh"
requires nbdinfo nbdcopy qemu-img fio
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "needs python3-libnbd (/usr/bin/python3 -c 'import nbd')"
PY=/usr/bin/python3

start_nvlendd --reactors 2
port=$(free_port) || fail "no free port"
sock=$T/nbd.sock
nvlend bdev create ram r0 64M >/dev/null || fail "ram bdev"
truncate -s 32M "$T/file.img"
nvlend bdev create file f0 "$T/file.img" --block-size 4096 >/dev/null || fail "file bdev"
nvlend nbd start --port "$port" --socket "$sock" || fail "nbd start"
nvlend nbd export add disk0 r0 --description "ram disk for tests" || fail "export add disk0"
nvlend nbd export add disk1 f0 || fail "export add disk1"
nvlend nbd export add ro0 r0 --read-only || fail "export add ro0"
U=nbd://127.0.0.1:$port

# ---- nbdinfo: size, description, flags, block sizes; --list --------------------
out=$(nbdinfo --json "$U/disk0") || fail "nbdinfo disk0"
info() { printf '%s' "$out" | json_get "[\"exports\"][0][\"$1\"]"; }
assert_eq "$(info export-size)" 67108864 "disk0 size"
assert_eq "$(info description)" "ram disk for tests" "description"
assert_eq "$(info block_size_minimum)" 512 "minimum block size"
assert_eq "$(info block_size_maximum)" 33554432 "maximum block size"
for f in can_multi_conn can_flush can_fua can_trim can_zero can_fast_zero can_cache can_df; do
	assert_eq "$(info "$f")" True "$f"
done
out=$(nbdinfo --json "$U/disk1") || fail "nbdinfo disk1"
assert_eq "$(info export-size)" 33554432 "disk1 size"
assert_eq "$(info block_size_minimum)" 4096 "disk1 minimum block size"
out=$(nbdinfo --json "$U/ro0") || fail "nbdinfo ro0"
assert_eq "$(info is_read_only)" True "ro0 read-only"
assert_eq "$(info can_trim)" False "ro0 cannot trim"
list=$(nbdinfo --list "$U") || fail "nbdinfo --list"
for e in disk0 disk1 ro0; do assert_contains "$list" "export=\"$e\"" "list"; done
# the Unix socket serves the same exports
nbdinfo --size "nbd+unix:///disk0?socket=$sock" | grep_q -x 67108864 || fail "unix socket"
# no default export while there are three
expect_fail nbdinfo "$U"

# ---- nbdcopy in and out, cmp ------------------------------------------------------
head -c 64M /dev/urandom > "$T/src.img"
nbdcopy "$T/src.img" "$U/disk0" || fail "nbdcopy in"
nbdcopy "$U/disk0" "$T/back.img" || fail "nbdcopy out"
cmp "$T/src.img" "$T/back.img" || fail "nbdcopy round trip differs"
head -c 32M /dev/urandom > "$T/src1.img"
nbdcopy --connections=4 --requests=16 "$T/src1.img" "$U/disk1" || fail "nbdcopy multi-conn in"
nbdcopy "nbd+unix:///disk1?socket=$sock" "$T/back1.img" || fail "nbdcopy out (unix)"
cmp "$T/src1.img" "$T/back1.img" || fail "file export round trip differs"
cmp "$T/src1.img" "$T/file.img" || fail "file bdev content differs from what was written"

# ---- qemu-img compare and convert ----------------------------------------------------
qemu-img compare -f raw -F raw "$T/src.img" "$U/disk0" >/dev/null || fail "qemu-img compare"
qemu-img convert -f raw -O qcow2 "$U/disk0" "$T/c.qcow2" || fail "qemu-img convert out"
qemu-img compare -f qcow2 -F raw "$T/c.qcow2" "$T/src.img" >/dev/null || fail "converted image differs"
qemu-img convert -n -f raw -O raw "$T/src1.img" "$U/disk1" || fail "qemu-img convert in"
qemu-img compare -f raw -F raw "$T/src1.img" "$U/disk1" >/dev/null || fail "compare after convert in"

# ---- libnbd scripted I/O, errors, multi-conn ----------------------------------------------
cat > "$T/io.py" <<'EOF'
import sys, threading, nbd
uri = sys.argv[1]
def conn():
    h = nbd.NBD()
    h.set_strict_mode(0)          # let the server judge bad requests
    h.connect_uri(uri)
    return h
def expect_err(what, errno_name, f):
    try:
        f()
    except nbd.Error as e:
        assert e.errno == errno_name, f"{what}: {e.errno} ({e})"
        return
    raise AssertionError(f"{what}: no error")
h = conn()
size = h.get_size()
bs = h.get_block_size(nbd.SIZE_MINIMUM)
assert h.can_multi_conn() and h.can_fast_zero() and h.can_cache()
h.pwrite(b"A" * 65536, 0, nbd.CMD_FLAG_FUA)
assert h.pread(65536, 0) == b"A" * 65536
h.trim(8192, 4096)
h.zero(8192, 16384, nbd.CMD_FLAG_NO_HOLE)
assert h.pread(8192, 16384) == bytes(8192)
h.zero(4096, 32768, nbd.CMD_FLAG_FAST_ZERO | nbd.CMD_FLAG_FUA)
assert h.pread(4096, 32768) == bytes(4096)
h.flush()
h.cache(65536, 0)
big = bytes(range(256)) * (4 << 20 >> 8)           # one 4 MiB request each way
h.pwrite(big, size - len(big))
assert h.pread(len(big), size - len(big)) == big
assert h.pread(bs, size - bs, nbd.CMD_FLAG_DF) == big[-bs:]
expect_err("read past end", "EINVAL", lambda: h.pread(2 * bs, size - bs))
expect_err("write past end", "ENOSPC", lambda: h.pwrite(b"x" * bs, size))
expect_err("zero past end", "ENOSPC", lambda: h.zero(2 * bs, size - bs))
expect_err("unaligned", "EINVAL", lambda: h.pread(100, 0))
expect_err("unaligned write", "EINVAL", lambda: h.pwrite(b"u" * (bs + 1), 0))
expect_err("beyond max block", "EINVAL", lambda: h.pread(64 << 20, 0))
assert h.pread(bs, 0) == b"A" * bs                # the connection still works
# multi-conn: four connections write disjoint 1 MiB regions at the same time,
# then a flush on one covers all; a fifth reads everything back
hs = [conn() for _ in range(4)]
def writer(i):
    c = hs[i]
    for k in range(64):
        c.pwrite(bytes([i + 1]) * 16384, (8 << 20) + i * (1 << 20) + k * 16384)
ts = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
hs[0].flush()
r = conn()
for i in range(4):
    assert r.pread(1 << 20, (8 << 20) + i * (1 << 20)) == bytes([i + 1]) * (1 << 20), i
for c in hs + [r, h]:
    c.shutdown()
print("io ok")
EOF
$PY "$T/io.py" "$U/disk0" || fail "libnbd I/O on the ram export"
$PY "$T/io.py" "$U/disk1" || fail "libnbd I/O on the file export"
cat > "$T/ro.py" <<'EOF'
import sys, nbd
h = nbd.NBD(); h.set_strict_mode(0); h.connect_uri(sys.argv[1])
assert h.is_read_only()
for what, f in [("write", lambda: h.pwrite(b"x" * 512, 0)), ("trim", lambda: h.trim(512, 0)),
                ("zero", lambda: h.zero(512, 0))]:
    try:
        f(); raise AssertionError(what + " succeeded on a read-only export")
    except nbd.Error as e:
        assert e.errno == "EPERM", (what, e.errno)
h.pread(4096, 0); h.flush(); h.shutdown(); print("ro ok")
EOF
$PY "$T/ro.py" "$U/ro0" || fail "read-only export"

# per-export counters
st=$(nvlend --json nbd export list disk0) || fail "export list --json"
[ "$(printf '%s' "$st" | json_get '[0]["stats"]["write_ops"]')" -gt 100 ] || fail "write counter: $st"
[ "$(printf '%s' "$st" | json_get '[0]["stats"]["errors"]')" -ge 5 ] || fail "error counter: $st"
[ "$(printf '%s' "$st" | json_get '[0]["stats"]["trim_ops"]')" -ge 1 ] || fail "trim counter"
tbl=$(nvlend nbd export list) || fail "export list table"
assert_contains "$tbl" "DESCRIPTION" "table header"
printf '%s\n' "$tbl" | grep_q '^ro0 .* ro ' || fail "table shows ro0 read-only: $tbl"

# ---- read hold: a queue-depth-32 writer gets held reads, and its data verifies ----------
# (the daemon spins: --spin-us defaults to 200; docs/nbd.md, "Read hold")
nvlend bdev create ram r1 16M >/dev/null || fail "ram bdev r1"
nvlend nbd export add hold0 r1 || fail "export add hold0"
fio_verify() { # LOOPS: 16 MiB of 4 KiB random writes per loop, each loop read back and checked
	fio --name=hold --ioengine=nbd --uri="$U/hold0" --rw=randwrite --bs=4k --iodepth=32 \
		--size=16M --loops="$1" --verify=crc32c --verify_fatal=1 --verify_state_save=0 --output="$T/fio.out" \
		>/dev/null 2>&1 || fail "fio write+verify over NBD: $(tail -5 "$T/fio.out")"
}
held() { nvlend --json nbd export list hold0 | json_get '[0]["stats"]["held_reads"]'; }
fio_verify 8
[ "$(held)" -gt 0 ] || fail "no read held for a queue-depth-32 client: $(nvlend --json nbd export list hold0)"
assert_contains "$(nvlend nbd status)" "read hold:   adaptive" "status shows the read hold"
# a reactor that sleeps at once (--spin-us 0, sharing a CPU with its client)
# holds by yielding the CPU instead (the mode is looked up at every hold)
nvlend rpc framework_set_spin '{"spin_us": 0}' >/dev/null || fail "set spin 0"
before=$(held)
fio_verify 8
[ "$(held)" -gt "$before" ] || fail "no read held (yield) for a queue-depth-32 client with --spin-us 0"
nvlend rpc framework_set_spin '{"spin_us": 200}' >/dev/null || fail "set spin 200"

# ---- the bdev is held open while exported ------------------------------------------
msg=$(nvlend bdev delete f0 2>&1) && fail "bdev delete succeeded while exported"
assert_contains "$msg" "nbd export 'disk1'" "delete refusal names the export"

# ---- save-config and replay -----------------------------------------------------------
nvlend save-config > "$T/config.json" || fail "save-config"
grep -q '"nbd_server_start"' "$T/config.json" || fail "config lacks nbd_server_start"
grep -q '"nbd_server_add_export"' "$T/config.json" || fail "config lacks nbd_server_add_export"

# ---- removing an export with a client attached ---------------------------------------
$PY - "$U/disk1" "$T/held" <<'EOF' &
import sys, time, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1]); open(sys.argv[2], "w").close()
try:
    for _ in range(600):
        h.pread(4096, 0); time.sleep(0.01)
except nbd.Error as e:
    print("client saw the disconnect:", e.errno); sys.exit(0)
sys.exit(1)
EOF
holder=$!
on_exit "kill $holder"
wait_until 10 test -f "$T/held" || fail "holder did not connect"
nvlend nbd export remove disk1 || fail "export remove"
wait "$holder" || fail "client kept working after its export was removed"
expect_fail nbdinfo "$U/disk1"
nvlend bdev delete f0 || fail "bdev delete after export removal"

# ---- connection limit ----------------------------------------------------------------------
nvlend nbd stop || fail "nbd stop"
expect_fail nbdinfo "$U/disk0"
nvlend nbd start --port "$port" --max-connections 2 || fail "nbd start with limit"
$PY - "$U/disk0" "$T/two" <<'EOF' &
import sys, time, nbd
hs = []
for _ in range(2):
    h = nbd.NBD(); h.connect_uri(sys.argv[1]); hs.append(h)
open(sys.argv[2], "w").close()
time.sleep(2)
EOF
two=$!
on_exit "kill $two"
wait_until 10 test -f "$T/two" || fail "two clients did not connect"
LIBNBD_DEBUG=1 nbdinfo "$U/disk0" >"$T/third.out" 2>&1 && fail "third connection accepted beyond max_connections 2"
# the refusal reason travels in the NBD_REP_ERR_POLICY reply (libnbd shows it when debugging)
grep -q "server error message: server at its connection limit (max_connections 2)" "$T/third.out" ||
	fail "refusal unclear: $(grep -v 'debug: nbd1: [a-z_]*: \(enter\|leave\)' "$T/third.out" | tail -5)"
[ "$(nvlend --json nbd status | json_get '["refused_connections"]')" -ge 1 ] || fail "refusal not counted"
wait "$two"
wait_until 10 nbdinfo --size "$U/disk0" || fail "server unusable after the limit was hit"

# ---- --no-read-hold: nothing is held -------------------------------------------------------
nvlend nbd stop || fail "nbd stop"
nvlend nbd start --port "$port" --no-read-hold || fail "nbd start --no-read-hold"
assert_contains "$(nvlend nbd status)" "read hold:   off" "status shows the read hold off"
[ "$(nvlend --json nbd status | json_get '["read_hold"]')" = False ] || fail "nbd_get_server read_hold"
before=$(held)
fio_verify 4
assert_eq "$(held)" "$before" "reads held with --no-read-hold"
nvlend save-config | grep_q '"read_hold": false' || fail "save-config lacks read_hold false"

# ---- replay the saved configuration in a second daemon -------------------------------------
nvlend nbd stop >/dev/null
port2=$(free_port)
sed -e "s/\"port\": $port/\"port\": $port2/" -e "s#$sock#$T/nbd2.sock#" "$T/config.json" |
	grep -v '"filename"' > "$T/config2.json"
# the file bdev was deleted: drop its calls from the replay
$PY - "$T/config2.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for s in d["subsystems"]:
    if s["config"] is None:  # a subsystem with nothing to save (SPDK writes null)
        continue
    s["config"] = [c for c in s["config"] if c["params"].get("name") not in ("f0", "disk1")
                   and c["method"] != "bdev_uring_create"]
json.dump(d, open(sys.argv[1], "w"))
EOF
NVLEND_SOCKET_OVERRIDE=$T/second.sock start_nvlendd -c "$T/config2.json"
nbdinfo --size "nbd://127.0.0.1:$port2/disk0" | grep_q -x 67108864 || fail "replayed export"
nbdinfo --json "nbd://127.0.0.1:$port2/ro0" | grep_q '"is_read_only": true' || fail "replayed ro export"
pass
