#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nvlend status, the operator's first page (first-hour issue, item 9):
#   - the daemon section counts the keeper's restarts of a killed worker;
#   - every section shows the daemon's objects: daemon (pid, uptime), reactors with busy %, bdevs with their claimer, a subsystem
#     with its TCP listener and a connected host, an imported controller and
#     its state, an NBD export, a brick (blocks, tiers), lending;
#   - empty sections say "none";
#   - a refused connect shows up under RECENT WARNINGS (nvlend_get_log);
#   - --json has every section;
#   - --watch --count 2 prints two pages, the second with bdev rates;
#   - a section whose RPC fails (an older daemon: method not found) says
#     "unavailable: REASON" and the rest of the page is still there.
# timeout: 60
source "$(dirname "$0")/common.sh"
cd "$T" || fail "cd"
ALLOW_WORKER_RESTARTS=1 # the worker is killed on purpose below
start_nvlendd
Q=nqn.2026-01.io.nvlend.test:status
port=$(free_port)
nbdport=$(free_port)

# an empty daemon: every list section says none
out=$(nvlend status) || fail "status failed on an empty daemon"
grep_q "^nvlendd running on $NVLEND_SOCKET, [0-9-]* [0-9:]*\$" <<<"$out" || fail "title: $out"
grep_q "^  restarts   0 by the keeper\$" <<<"$out" || fail "restarts 0: $out"
for s in "BDEVS" "SUBSYSTEMS" "IMPORTED CONTROLLERS" "NBD EXPORTS" "VHOST CONTROLLERS" \
	"FUNCTIONS" "BRICKS" "RECENT WARNINGS"; do
	grep -A1 "^$s" <<<"$out" | grep_q "^  none" || fail "empty section $s does not say none: $out"
done

# the keeper restarts a killed worker: status counts it
kill -KILL "$WORKER_PID"
restarted() {
	nvlend status 2>/dev/null |
		grep_q '^  restarts   1 by the keeper (this worker up [0-9]*s, the last one died of SIGKILL)$'
}
wait_until 10 restarted || fail "restart not counted: $(nvlend status)"
WORKER_PID=$(worker_of "$DAEMON_PID")

nvlend bdev create ram r0 8M >/dev/null
nvlend bdev create ram r1 4M --block-size 4096 >/dev/null
nvlend subsystem create $Q --allow-any-host >/dev/null
nvlend subsystem add-ns $Q r0 >/dev/null
nvlend subsystem add-listener $Q tcp 127.0.0.1 "$port" >/dev/null
# the daemon imports its own subsystem: a connected host on the target side
# and an imported controller on the host side, both lasting
rpc bdev_nvme_attach_controller "{\"name\":\"imp\",\"trtype\":\"tcp\",\"traddr\":\"127.0.0.1\",
	\"trsvcid\":\"$port\",\"subnqn\":\"$Q\"}" >/dev/null || fail "self import"
nvlend nbd start --port "$nbdport" >/dev/null
nvlend nbd export add e1 r1 --read-only >/dev/null
mkdir -p "/dev/shm/${NVLEND_SHM_PREFIX}fast" "$T/slow"
nvlend brick create b0 --fast "/dev/shm/${NVLEND_SHM_PREFIX}fast" --slow "$T/slow" \
	--capacity 8 --fast-blocks 2 >/dev/null || fail "brick create"
nvlend brick listen b0 shm "$T/b0.sock" >/dev/null
nvlend brick alloc "brick+shm://$T/b0.sock?name=b0" 0x200000 >/dev/null || fail "brick alloc"
nvlend brick alloc "brick+shm://$T/b0.sock?name=b0" 0x400000 >/dev/null || fail "brick alloc 2"
# a warning on purpose: a controller whose target refuses the connection
dead=$(free_port)
rpc bdev_nvme_attach_controller "{\"name\":\"gone\",\"trtype\":\"tcp\",\"traddr\":\"127.0.0.1\",
	\"trsvcid\":\"$dead\",\"subnqn\":\"$Q\"}" >/dev/null 2>&1 && fail "attach to a closed port worked"

out=$(nvlend status) || fail "status failed"
echo "$out" >"$T/page.txt"
sec() { sed -n "/^$1/,/^\$/p" "$T/page.txt"; }
# daemon
sec DAEMON | grep_q "^  version    nvlend v" || fail "no version: $out"
sec DAEMON | grep_q "^  socket     $NVLEND_SOCKET\$" || fail "no socket"
sec DAEMON | grep_q "^  pid        $WORKER_PID (worker; keeper $DAEMON_PID)" || fail "pid: $(sec DAEMON)"
sec DAEMON | grep_q "^  started    [0-9-]* [0-9:]*, up [0-9]*s" || fail "uptime: $(sec DAEMON)"
sec DAEMON | grep_q "^  restarts   1 by the keeper" || fail "restarts: $(sec DAEMON)"
sec DAEMON | grep_q "^  config     none" || fail "config"
# reactors with busy %
sec REACTORS | grep_q "^  0 .* [0-9.]*% " || fail "reactor busy %: $(sec REACTORS)"
# bdevs: type, size, block size, claimer
sec BDEVS | grep_q "^  r0  *ram  *8.0 MiB  *512  *namespace 1 of $Q" || fail "bdev r0: $(sec BDEVS)"
sec BDEVS | grep_q "^  r1  *ram  *4.0 MiB  *4096  *nbd export 'e1'" || fail "bdev r1: $(sec BDEVS)"
sec BDEVS | grep_q "^  impn1  *nvme_tcp  *8.0 MiB" || fail "imported bdev: $(sec BDEVS)"
# subsystem, listener, connected host
sec SUBSYSTEMS | grep_q "^  $Q  ns 1:r0  any host" || fail "subsystem: $(sec SUBSYSTEMS)"
sec SUBSYSTEMS | grep_q "^    listeners: TCP 127.0.0.1:$port\$" || fail "listener: $(sec SUBSYSTEMS)"
hostnqn=$(rpc bdev_nvme_get_controllers | json_get '[0]["hostnqn"]')
sec SUBSYSTEMS | grep_q "^      $hostnqn  via TCP, controller [0-9]*, 1 I/O queue" ||
	fail "connected host: $(sec SUBSYSTEMS)"
# imported controller and its state, as the daemon names it
state=$(rpc bdev_nvme_get_controllers | json_get '[0]["state"]')
sec "IMPORTED CONTROLLERS" | grep_q "^  imp  *$state  *TCP 127.0.0.1:$port  *$Q  *impn1" ||
	fail "imported controller: $(sec 'IMPORTED CONTROLLERS')"
# NBD export
sec "NBD EXPORTS" | grep_q "server on 127.0.0.1 port $nbdport" || fail "nbd server: $(sec 'NBD EXPORTS')"
sec "NBD EXPORTS" | grep_q "^  e1  *r1  *4.0 MiB  *read-only  *0" || fail "nbd export: $(sec 'NBD EXPORTS')"
# brick: blocks used of capacity, fast tier against its budget, slow tier
sec BRICKS | grep_q "^  b0  *2 of 8  *2 of 2 in /dev/shm/${NVLEND_SHM_PREFIX}fast  *0 in $T/slow  *volatile  *SHM $T/b0.sock" ||
	fail "brick: $(sec BRICKS)"
sec "VHOST CONTROLLERS" | grep_q "^  none" || fail "vhost: $(sec 'VHOST CONTROLLERS')"
sec LENDING | grep_q "^  offers: none" || fail "lending: $(sec LENDING)"
# the refused connect, with its time
sec "RECENT WARNINGS" | grep_q "^  [0-9-]* [0-9:]*  ERROR   gone: cannot attach 127.0.0.1:$dead.*refused" ||
	fail "warning not shown: $(sec 'RECENT WARNINGS')"
rpc nvlend_get_log '{"count": 1, "level": "error"}' | grep_q "\"origin\": \"bdev_nvme" ||
	fail "nvlend_get_log has no origin"
expect_fail rpc nvlend_get_log '{"level": "chatty"}'

# --json: every section
nvlend --json status >"$T/st.json" || fail "status --json"
/usr/bin/python3 - "$T/st.json" "$Q" <<'EOF' || fail "--json: $(cat "$T/st.json")"
import json, sys
d = json.load(open(sys.argv[1]))
keys = ["time", "daemon", "reactors", "bdevs", "subsystems", "nvme_controllers", "nbd",
        "vhost_controllers", "functions", "bricks", "lending", "warnings", "unavailable"]
missing = [k for k in keys if k not in d]
assert not missing, "missing keys %s" % missing
assert d["unavailable"] == {}, d["unavailable"]
assert d["daemon"]["uptime_s"] >= d["daemon"]["worker_uptime_s"] >= 0
assert d["daemon"]["restarts"] == 1 and d["daemon"]["last_death_signal"] == "KILL"
assert {b["name"] for b in d["bdevs"]} == {"r0", "r1", "impn1"}
s = [x for x in d["subsystems"] if x["nqn"] == sys.argv[2]][0]
assert len(s["hosts"]) == 1 and s["listeners"][0]["traddr"] == "127.0.0.1"
assert d["nvme_controllers"][0]["name"] == "imp"
assert d["nbd"]["exports"][0]["name"] == "e1"
assert d["bricks"][0]["allocated_blocks"] == 2
assert any(e["level"] == "error" and "gone" in e["message"] for e in d["warnings"]["entries"])
assert all(r["busy_pct"] is None or 0 <= r["busy_pct"] <= 100 for r in d["reactors"]["reactors"])
EOF

# --watch --count 2 (not a terminal): two pages, each after a timestamp line;
# the second has rates over the interval, with I/O running meanwhile
nvlend-perf "nvme+tcp://127.0.0.1:$port/$Q" --rw=randread --runtime=2 >"$T/perf.txt" 2>&1 &
perf=$!
on_exit "kill $perf"
reading() { rpc bdev_get_iostat '{"name":"r0"}' | grep_q '"num_read_ops": [1-9]'; }
wait_until 5 reading ||
	fail "nvlend-perf does no I/O: $(cat "$T/perf.txt")"
nvlend status --watch 1 --count 2 >"$T/watch.txt" || fail "status --watch"
wait $perf || fail "nvlend-perf: $(cat "$T/perf.txt")"
assert_eq "$(grep -c '^--- [0-9-]* [0-9:]* ---$' "$T/watch.txt")" 2 "pages in --watch --count 2"
grep_q "^BDEVS  (rates over the last 1\.[0-9] s)" <"$T/watch.txt" || fail "no rate line: $(cat "$T/watch.txt")"
grep_q "^  r0  .*  [1-9][0-9]*  *[0-9]*\.[0-9]\$" <"$T/watch.txt" || fail "no bdev rates: $(cat "$T/watch.txt")"
grep_q "busy over the interval" <"$T/watch.txt" || fail "no reactor busy over the interval"
expect_fail nvlend status --count 2
expect_fail nvlend status --watch 0

# an older daemon (or a failing call): a proxy that answers "method not
# found" for nbd_get_exports, brick_get_bricks and nvlend_get_status and
# passes the rest on
cat >"$T/proxy.py" <<'EOF'
import json, socket, sys, threading, os
listen, upstream = sys.argv[1], sys.argv[2]
fail = set(sys.argv[3:])
def serve(c):
    u = socket.socket(socket.AF_UNIX); u.connect(upstream)
    dec = json.JSONDecoder(); buf = ""
    uf = u.makefile("r")
    while True:
        data = c.recv(65536)
        if not data:
            break
        buf += data.decode()
        while buf.strip():
            try:
                req, end = dec.raw_decode(buf.lstrip())
            except ValueError:
                break
            buf = buf.lstrip()[end:]
            if req.get("method") in fail:
                c.sendall((json.dumps({"jsonrpc": "2.0", "id": req.get("id"), "error":
                           {"code": -32601, "message": "Method not found"}}) + "\n").encode())
                continue
            u.sendall((json.dumps(req) + "\n").encode())
            c.sendall(uf.readline().encode())
    c.close(); u.close()
s = socket.socket(socket.AF_UNIX); s.bind(listen); s.listen(8)
open(listen + ".ready", "w").close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
/usr/bin/python3 "$T/proxy.py" "$T/proxy.sock" "$NVLEND_SOCKET" nbd_get_exports brick_get_bricks \
	nvlend_get_status &
proxy=$!
on_exit "kill $proxy"
wait_until 10 test -e "$T/proxy.sock.ready" || fail "proxy did not start"
out=$(nvlend -s "$T/proxy.sock" status) || fail "status failed with a failing section: $out"
grep -A1 "^NBD EXPORTS" <<<"$out" | grep_q "^  unavailable: this daemon has no nbd_get_exports" ||
	fail "NBD section not unavailable: $out"
grep -A1 "^BRICKS" <<<"$out" | grep_q "^  unavailable: this daemon has no brick_get_bricks" ||
	fail "bricks section not unavailable: $out"
grep_q "^  imp  " <<<"$out" || fail "the rest of the page is missing: $out"
# without nvlend_get_status: the version still, the rest said unavailable
grep -A4 "^DAEMON" <<<"$out" | grep_q "^  version    nvlend v" || fail "no version from an older daemon: $out"
grep -A4 "^DAEMON" <<<"$out" | grep_q "^  pid, uptime, config: unavailable: this daemon has no nvlend_get_status" ||
	fail "daemon details not unavailable: $out"
grep_q "^  r0  " <<<"$out" || fail "bdevs missing: $out"
nvlend -s "$T/proxy.sock" --json status | json_get '["unavailable"]["nbd"]' | grep_q "nbd_get_exports" ||
	fail "--json does not say nbd is unavailable"

# no daemon: exit 3 with the usual message
out=$(nvlend -s "$T/none.sock" status 2>&1)
assert_eq "$?" 3 "status without a daemon"
assert_contains "$out" "nvlendd is not running" "status without a daemon"

nvlend status --help | grep_q "RECENT WARNINGS" || fail "help"
rpc bdev_nvme_detach_controller '{"name":"imp"}' >/dev/null
stop_nvlendd
pass
