#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Subsystem administration over shm, with real libnvlend hosts
# (tests/helpers/libnvlend_api hold/drain):
#   - the CLI: nvlend subsystem create / add-ns / add-host / add-listener /
#     list / controllers / delete, their output and their refusals;
#   - nvmf_get_subsystems: every field of a subsystem (serial, model, max
#     namespaces, hosts, listeners, namespaces with bdev, size, ids,
#     controllers), the nqn filter;
#   - nvmf_subsystem_remove_host: the host's connected controller is
#     disconnected and it cannot connect again; with allow_any_host its
#     controller is disconnected too (as SPDK does) and it may reconnect;
#   - nvmf_subsystem_remove_ns: the namespace and its bdev are released; with
#     reads in flight on a slow bdev (slowfs, a FUSE delay) the RPC answers
#     only after every one of them completed;
#   - nvmf_subsystem_remove_listener and subsystem delete disconnect the
#     controllers connected there (one reactor: the RPC runs on their home).
# timeout: 180
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
requires /usr/bin/python3

API=$BUILD/tests/helpers/libnvlend_api
# pyq EXPR: evaluate a python expression over the JSON on stdin (as d)
pyq() { /usr/bin/python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
NQN=nqn.2026-01.io.nvlend.test:admin
HA=nqn.2026-01.io.nvlend.test:host-a
HB=nqn.2026-01.io.nvlend.test:host-b
SOCK=$T/admin.sock
URI="nvme+shm://$SOCK?nqn=$NQN"

# a slow file for the drain check (before the daemon: cleanups run in reverse)
slow=0
if command -v fusermount3 >/dev/null 2>&1 && [ -c /dev/fuse ]; then
	back=/dev/shm/${NVLEND_SHM_PREFIX}slow.img
	truncate -s 16M "$back"
	mkdir -p "$T/mnt"
	"$BUILD/tests/helpers/slowfs" "$back" "$T/mnt" 300000 >"$T/slowfs.log" 2>&1 &
	sf_pid=$!
	on_exit "fusermount3 -u -z $T/mnt; kill $sf_pid"
	wait_until 5 test -f "$T/mnt/disk" && slow=1
fi
[ $slow = 1 ] || log "no FUSE: the drain with I/O in flight is not checked"

start_nvlendd
nvlend bdev create ram a0 32M >/dev/null || fail "bdev a0"
nvlend bdev create ram a1 8M --block-size 4096 >/dev/null || fail "bdev a1"

# ---- 1. the CLI builds the subsystem ----------------------------------------
out=$(nvlend subsystem create "$NQN" --serial SN-ADMIN-1 --model "nvlend admin test" \
	--max-namespaces 16) || fail "subsystem create"
assert_eq "$out" "created subsystem $NQN (no host may connect yet: add-host)" "subsystem create output"
expect_fail nvlend subsystem create "$NQN"
out=$(nvlend subsystem add-ns "$NQN" a0) || fail "add-ns a0"
assert_eq "$out" "added namespace 1 (bdev a0) to $NQN" "add-ns output"
out=$(nvlend subsystem add-ns "$NQN" a1 --nsid 5) || fail "add-ns a1"
assert_eq "$out" "added namespace 5 (bdev a1) to $NQN" "add-ns --nsid output"
assert_eq "$(nvlend --json subsystem add-host "$NQN" nqn.2026-01.io.nvlend.test:tmp | json_get '["nqn"]')" \
	"$NQN" "add-host --json: the subsystem"
out=$(nvlend subsystem remove-host "$NQN" nqn.2026-01.io.nvlend.test:tmp) || fail "remove-host"
assert_eq "$out" "host nqn.2026-01.io.nvlend.test:tmp may no longer connect to $NQN" "remove-host output"
expect_fail nvlend subsystem add-ns "$NQN" no-such-bdev
expect_fail nvlend subsystem add-ns "$NQN" a0 --nsid 0
nvlend subsystem add-host "$NQN" "$HA" || fail "add-host"
expect_fail nvlend subsystem add-host "$NQN" "$HA"
expect_fail nvlend subsystem add-host "$NQN" not-an-nqn
nvlend subsystem add-listener "$NQN" shm "$SOCK" || fail "add-listener"
[ -S "$SOCK" ] || fail "no listener socket at $SOCK"
expect_fail nvlend subsystem add-listener "$NQN" udp 1.2.3.4 5

# ---- 2. nvmf_get_subsystems --------------------------------------------------
check_subsys() { # EXPECTED_CTRLRS EXPECTED_HOSTS(comma list) EXPECTED_NSIDS(comma list)
	rpc nvmf_get_subsystems >"$T/subs.json" || fail "nvmf_get_subsystems"
	rpc bdev_get_bdevs >"$T/bdevs.json" || fail "bdev_get_bdevs"
	/usr/bin/python3 - "$T/subs.json" "$T/bdevs.json" "$NQN" "$SOCK" "$@" <<'PY' ||
import json, re, sys
subs, bdevs = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
nqn, sock, nctrl = sys.argv[3], sys.argv[4], int(sys.argv[5])
hosts = [h for h in sys.argv[6].split(",") if h]
nsids = [int(n) for n in sys.argv[7].split(",") if n]
def need(ok, what):
    if not ok:
        sys.exit("nvmf_get_subsystems: %s\n%s" % (what, json.dumps(subs, indent=1)))
disc = [s for s in subs if s["nqn"] == "nqn.2014-08.org.nvmexpress.discovery"]
need(len(disc) == 1 and disc[0]["subtype"] == "Discovery" and "namespaces" not in disc[0],
     "the discovery subsystem")
mine = [s for s in subs if s["nqn"] == nqn]
need(len(mine) == 1, "exactly one entry for " + nqn)
s = mine[0]
need(s["subtype"] == "NVMe", "subtype")
need(s["serial_number"] == "SN-ADMIN-1", "serial_number")
need(s["model_number"] == "nvlend admin test", "model_number")
need(s["max_namespaces"] == 16, "max_namespaces")
need(1 <= s["min_cntlid"] <= s["max_cntlid"] <= 0xffef, "cntlid range")
need(s["allow_any_host"] is False, "allow_any_host")
need([h["nqn"] for h in s["hosts"]] == hosts, "hosts %s" % hosts)
need(s["listen_addresses"] == [{"trtype": "SHM", "traddr": sock}] or
     [(l["trtype"], l["traddr"]) for l in s["listen_addresses"]] == [("SHM", sock)],
     "listen_addresses")
need(s["controllers"] == nctrl, "controllers = %d" % nctrl)
need([n["nsid"] for n in s["namespaces"]] == nsids, "namespace ids %s" % nsids)
size = {b["name"]: b["block_size"] * b["num_blocks"] for b in bdevs}
bsz = {b["name"]: b["block_size"] for b in bdevs}
seen = set()
for n in s["namespaces"]:
    b = n["bdev_name"]
    need(b in size and n["num_blocks"] * bsz[b] == size[b], "nsid %d size" % n["nsid"])
    need(n["read_only"] is False, "read_only")
    need(re.fullmatch(r"[0-9A-F]{32}", n["nguid"]) and n["nguid"] != "0" * 32, "nguid")
    need(re.fullmatch(r"[0-9A-F]{16}", n["eui64"]), "eui64")
    need(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                      n["uuid"]), "uuid")
    need(n["nguid"] not in seen, "nguid unique")
    seen.add(n["nguid"])
PY
		fail "nvmf_get_subsystems fields"
}
check_subsys 0 "$HA" 1,5
one=$(rpc nvmf_get_subsystems "{\"nqn\":\"$NQN\"}" | json_get '[0]["nqn"] + " " + str(len(d))')
assert_eq "$one" "$NQN 1" "nvmf_get_subsystems with nqn"
expect_fail rpc nvmf_get_subsystems '{"nqn":"nqn.2026-01.io.nvlend.test:nobody"}'

# ---- 3. hosts connect; list and controllers ---------------------------------
hold() { # NAME HOSTNQN: a libnvlend host holding a controller, output in $T/NAME.out
	"$API" hold "$URI" "$2" >"$T/$1.out" 2>&1 &
	eval "pid_$1=$!"
	on_exit "kill $!"
}
connected() { grep -q '^connected' "$T/$1.out"; }
hold a "$HA"
wait_until 10 connected a || fail "host A did not connect: $(cat "$T/a.out")"
# host B is not on the list
"$API" hold "$URI" "$HB" >"$T/b.out" 2>&1 && fail "host B (not allowed) connected"
grep -q 'Permission denied' "$T/b.out" || fail "host B refusal: $(cat "$T/b.out")"
check_subsys 1 "$HA" 1,5

line=$(nvlend subsystem list | grep "^$NQN ") || fail "subsystem list lacks $NQN"
assert_contains "$line" "1:a0 5:a1" "subsystem list namespaces"
assert_contains "$line" "1 allowed" "subsystem list hosts"
assert_contains "$line" "SHM $SOCK" "subsystem list listeners"
nvlend --json subsystem list | pyq '[s["controllers"] for s in d if s["nqn"] == "'"$NQN"'"]' \
	>"$T/ctl" || fail "subsystem list --json"
assert_eq "$(cat "$T/ctl")" "[1]" "subsystem list --json controllers"
out=$(nvlend subsystem controllers "$NQN") || fail "subsystem controllers"
assert_contains "$out" "$HA" "subsystem controllers"
assert_contains "$out" "SHM" "subsystem controllers transport"
cntlid=$(sed -n 's/^connected cntlid \([0-9]*\)/\1/p' "$T/a.out")
n=$(nvlend --json subsystem controllers "$NQN" |
	pyq '[c["cntlid"] for c in d if c["hostnqn"] == "'"$HA"'"]')
assert_eq "$n" "[$cntlid]" "controllers --json: host A's cntlid"

# ---- 4. nvmf_subsystem_remove_host -------------------------------------------
rpc nvmf_subsystem_remove_host "{\"nqn\":\"$NQN\",\"host\":\"$HA\"}" >/dev/null ||
	fail "remove_host"
# its controller goes: the holder sees the connection end
wait "$pid_a" || fail "host A kept its controller after remove_host: $(cat "$T/a.out")"
grep -q 'disconnected by the target' "$T/a.out" || fail "host A: $(cat "$T/a.out")"
ctrlrs_are() { [ "$(count_ctrlrs)" = "$1" ]; }
wait_until 5 ctrlrs_are 0 || fail "host A's controller still listed"
"$API" hold "$URI" "$HA" >"$T/a2.out" 2>&1 && fail "a removed host connected again"
grep -q 'Permission denied' "$T/a2.out" || fail "removed host refusal: $(cat "$T/a2.out")"
expect_fail rpc nvmf_subsystem_remove_host "{\"nqn\":\"$NQN\",\"host\":\"$HA\"}"
check_subsys 0 "" 1,5
out=$(nvlend subsystem controllers "$NQN")
assert_contains "$out" "no host is connected" "controllers after remove_host"
# with any host allowed, removing a listed host still ends its controller
rpc nvmf_subsystem_allow_any_host "{\"nqn\":\"$NQN\",\"allow_any_host\":true}" >/dev/null ||
	fail "allow_any_host"
nvlend subsystem add-host "$NQN" "$HB" || fail "add-host B"
hold b2 "$HB"
wait_until 10 connected b2 || fail "host B did not connect: $(cat "$T/b2.out")"
rpc nvmf_subsystem_remove_host "{\"nqn\":\"$NQN\",\"host\":\"$HB\"}" >/dev/null ||
	fail "remove_host B"
wait "$pid_b2" || fail "host B kept its controller: $(cat "$T/b2.out")"
hold b3 "$HB"
wait_until 10 connected b3 || fail "host B (any host allowed) could not reconnect: $(cat "$T/b3.out")"
kill "$pid_b3"
wait "$pid_b3" 2>/dev/null
wait_until 5 ctrlrs_are 0 || fail "host B's controller outlived its process"

# ---- 5. nvmf_subsystem_remove_ns ----------------------------------------------
expect_fail nvlend bdev delete a1
rpc nvmf_subsystem_remove_ns "{\"nqn\":\"$NQN\",\"nsid\":5}" >/dev/null || fail "remove_ns 5"
expect_fail rpc nvmf_subsystem_remove_ns "{\"nqn\":\"$NQN\",\"nsid\":5}"
expect_fail rpc nvmf_subsystem_remove_ns "{\"nqn\":\"$NQN\",\"nsid\":0}"
nvlend bdev delete a1 >/dev/null || fail "bdev a1 still held after its namespace went"
ids=$(rpc nvmf_get_subsystems "{\"nqn\":\"$NQN\"}" | pyq '[n["nsid"] for n in d[0]["namespaces"]]')
assert_eq "$ids" "[1]" "namespaces after remove_ns"
if [ $slow = 1 ]; then
	nvlend bdev create file s0 "$T/mnt/disk" >/dev/null || fail "file bdev on slowfs"
	out=$(nvlend subsystem add-ns "$NQN" s0 --nsid 9) || fail "add-ns s0"
	"$API" drain "$URI" "$NVLEND_SOCKET" "$NQN" 9 >"$T/drain.out" 2>&1
	rc=$?
	cat "$T/drain.out" >&2
	[ $rc = 0 ] || fail "remove_ns with I/O in flight: $rc failed checks"
	nvlend bdev delete s0 >/dev/null || fail "bdev s0 still held after the drain"
fi

# ---- 6. listener removal and subsystem deletion end connected controllers ------
# (both walk the controllers under the target lock: the teardown must not run
# inside that walk, which hung the daemon with one reactor)
nvlend subsystem add-listener "$NQN" shm "$T/admin2.sock" || fail "second listener"
"$API" hold "nvme+shm://$T/admin2.sock?nqn=$NQN" "$HA" >"$T/l.out" 2>&1 &
pid_l=$!
on_exit "kill $pid_l"
wait_until 10 connected l || fail "host via the second listener: $(cat "$T/l.out")"
rpc nvmf_subsystem_remove_listener \
	"{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"$T/admin2.sock\"}}" \
	>/dev/null || fail "remove_listener"
wait "$pid_l" || fail "host kept its controller after remove_listener: $(cat "$T/l.out")"
hold d "$HA"
wait_until 10 connected d || fail "host D did not connect: $(cat "$T/d.out")"
nvlend subsystem delete "$NQN" || fail "subsystem delete"
wait "$pid_d" || fail "host D kept its controller after subsystem delete: $(cat "$T/d.out")"
nvlend subsystem list | grep_q "^$NQN " && fail "deleted subsystem still listed"
expect_fail nvlend subsystem delete "$NQN"
wait_until 5 test ! -e "$SOCK" || fail "listener socket left behind"
nvlend bdev delete a0 >/dev/null || fail "bdev a0 still held after the subsystem went"
pass
