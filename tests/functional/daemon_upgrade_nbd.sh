#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Issue 16, live upgrade, the NBD half: two libnbd clients (python3-nbd on
# the host; one with structured replies and base:allocation, one with
# simple replies) keep writing random blocks with their own pattern and
# reading them back, 16 requests in flight each (aio), while the daemon is
# upgraded three times (to a build with another version string, back, to
# itself) and rolled back once from a broken build. libnbd does not
# reconnect: a connection that closed would end a client with an error.
# Checked: no error, no mismatch, every client still connected at the end;
# `nvlend upgrade` lists each NBD connection with a downtime; the old
# worker's log says the connections were kept. A kill -9 (no upgrade)
# still closes NBD connections.
# timeout: 150
source "$(dirname "$0")/common.sh"
requires nbdinfo
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "python3-nbd (libnbd) not installed"
ALLOW_WORKER_RESTARTS=1
cd "$T" || fail "cd"
start_nvlendd --reactors 2 --log-file "$T/d.log"
DAEMON_LOG=$T/d.log
PORT=$(free_port)
nvlend bdev create ram r0 64M >/dev/null || fail "ram bdev"
nvlend nbd start --port "$PORT" >/dev/null || fail "nbd start"
nvlend nbd export add disk0 r0 >/dev/null || fail "export add"

cp "$BIN/nvlendd" "$T/nvlendd-new"
/usr/bin/python3 - "$T/nvlendd-new" <<'PY' || fail "cannot patch the version"
import sys
p = sys.argv[1]
b = open(p, "rb").read()
if b.count(b"0.1.0\0") < 1:
    sys.exit("version string not found")
open(p, "wb").write(b.replace(b"0.1.0\0", b"0.1.9\0"))
PY
printf '#!/bin/sh\n[ "$1" = --version ] && { echo "nvlendd 9.9.9"; exit 0; }\nexit 1\n' >"$T/broken"
chmod +x "$T/broken"

cat >"$T/client.py" <<'PY'
# client.py URI OFFSET_MIB STRUCTURED STOPFILE OUT: random 4-64 KiB writes of a
# pattern that names the block and its generation, each block read back
# after its write completed; 16 in flight; until STOPFILE exists.
import json, os, random, sys, time
import nbd
uri, base, structured, stop, out = sys.argv[1], int(sys.argv[2]) << 20, sys.argv[3] == "1", sys.argv[4], sys.argv[5]
h = nbd.NBD()
h.set_request_structured_replies(structured)
if structured:
    h.add_meta_context("base:allocation")
h.connect_uri(uri)
span = 16 << 20
gen = {}
res = {"writes": 0, "reads": 0, "mismatch": 0, "errors": 0, "error": ""}
def pattern(off, n, g):
    blk = b"%016x%08x" % (off, g)
    return (blk * (n // len(blk) + 1))[:n]
inflight = []
try:
    while not os.path.exists(stop) or inflight:
        while len(inflight) < 16 and not os.path.exists(stop):
            n = random.choice((4096, 16384, 65536))
            off = base + random.randrange(0, span - n, 4096) // 65536 * 65536
            if any(abs(o - off) < 65536 for o, *_ in inflight):
                continue
            g = gen.get(off, 0) + 1
            gen[off] = g
            buf = nbd.Buffer.from_bytearray(bytearray(pattern(off, n, g)))
            c = h.aio_pwrite(buf, off)
            inflight.append((off, n, g, "w", c, buf))
        h.poll(1)
        still = []
        for o, n, g, kind, c, buf in inflight:
            if not h.aio_command_completed(c):
                still.append((o, n, g, kind, c, buf))
                continue
            if kind == "w":
                res["writes"] += 1
                rb = nbd.Buffer(n)
                still.append((o, n, g, "r", h.aio_pread(rb, o), rb))
            else:
                res["reads"] += 1
                if buf.to_bytearray() != pattern(o, n, g):
                    res["mismatch"] += 1
        inflight = still
    res["connected"] = h.aio_is_ready() or h.aio_is_processing()
except Exception as e:
    res["errors"] += 1
    res["error"] = str(e)
    res["connected"] = False
json.dump(res, open(out, "w"))
PY
/usr/bin/python3 "$T/client.py" "nbd://127.0.0.1:$PORT/disk0" 0 1 "$T/stop" "$T/c1.json" 2>"$T/c1.err" &
c1=$!
/usr/bin/python3 "$T/client.py" "nbd://127.0.0.1:$PORT/disk0" 32 0 "$T/stop" "$T/c2.json" 2>"$T/c2.err" &
c2=$!
on_exit "touch $T/stop; kill $c1 $c2 2>/dev/null"
wait_until 10 sh -c "[ \$(grep -c \"nbd: .*export 'disk0'\" '$DAEMON_LOG') -ge 2 ]" ||
	fail "the clients did not connect"
sleep 1

upgrade_to() {
	local bin=$1 ver=$2 pid0=$WORKER_PID out
	if [ -n "$bin" ]; then
		out=$(nvlend upgrade --binary "$bin" 2>&1) || fail "upgrade to $bin: $out"
	else
		out=$(nvlend upgrade 2>&1) || fail "upgrade: $out"
	fi
	echo "$out" >&2
	assert_contains "$out" "to nvlend v$ver" "upgrade report"
	[ "$(echo "$out" | grep -c '^nbd disk0 ')" = 2 ] || fail "two NBD connections in the report"
	WORKER_PID=$(nvlend rpc nvlend_get_status | json_get '["pid"]')
	[ "$WORKER_PID" != "$pid0" ] || fail "the worker pid did not change"
	sleep 1
	kill -0 "$c1" 2>/dev/null && kill -0 "$c2" 2>/dev/null ||
		fail "a client ended: $(cat "$T"/c*.err "$T"/c*.json 2>/dev/null)"
}
log "upgrade to the new build"
upgrade_to "$T/nvlendd-new" 0.1.9
grep_q "nbd: upgrade: 2 connection(s) stopped between two requests and kept" <"$DAEMON_LOG" ||
	fail "the old worker did not keep both connections"
log "a broken build is rolled back"
out=$(nvlend upgrade --binary "$T/broken" 2>&1) && fail "upgrade to a broken build succeeded: $out"
assert_contains "$out" "did not come up; the keeper started the old binary again" "rollback"
wait_until 10 sh -c "nvlend rpc nvlend_get_upgrade | grep -q '\"rolled_back\": true'" ||
	fail "the rolled-back worker does not say so"
WORKER_PID=$(nvlend rpc nvlend_get_status | json_get '["pid"]')
log "back to the first build, then to the same one again"
upgrade_to "$BIN/nvlendd" 0.1.0
upgrade_to "" 0.1.0

touch "$T/stop"
wait "$c1"; wait "$c2"
for f in c1 c2; do
	r=$(cat "$T/$f.json") || fail "$f wrote no result: $(cat "$T/$f.err")"
	log "$f: $r"
	assert_eq "$(json_get '["errors"]' <"$T/$f.json")" 0 "$f errors ($(json_get '["error"]' <"$T/$f.json"))"
	assert_eq "$(json_get '["mismatch"]' <"$T/$f.json")" 0 "$f mismatches"
	assert_eq "$(json_get '["connected"]' <"$T/$f.json")" True "$f still connected"
	[ "$(json_get '["reads"]' <"$T/$f.json")" -gt 100 ] || fail "$f did too little"
done

log "kill -9 of a serving worker: NBD connections close"
rm -f "$T/stop"
/usr/bin/python3 "$T/client.py" "nbd://127.0.0.1:$PORT/disk0" 0 1 "$T/stop" "$T/c3.json" 2>"$T/c3.err" &
c3=$!
sleep 2
kill -9 "$WORKER_PID"
wait_until 15 sh -c "! kill -0 $c3 2>/dev/null" || fail "the client did not see its connection close"
wait "$c3"
assert_eq "$(json_get '["errors"]' <"$T/c3.json")" 1 "the client's connection ended with an error"
wait_until 10 sh -c "nvlend rpc nvlend_get_status >/dev/null 2>&1" || fail "no worker after kill -9"
WORKER_PID=$(nvlend rpc nvlend_get_status | json_get '["pid"]')
nbdinfo --size "nbd://127.0.0.1:$PORT/disk0" >/dev/null || fail "no NBD service after kill -9"
touch "$T/stop"
stop_nvlendd
pass
