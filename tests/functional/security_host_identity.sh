#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Security item 4, host identity over shm (docs/security.md):
#  1. A host NQN bound to a uid/gid (nvmf_subsystem_add_host "uid"/"gid") is
#     refused to other local users: a process running as uid 65534 (setpriv)
#     cannot connect as the NQN bound to root, with a refusal that says why;
#     it may connect as the NQN bound to its own uid, and as one bound to a
#     group only while it is a (supplementary) member; root may claim any.
#     The bindings survive save_config and a restart from it.
#  2. A host identifier cannot be borrowed: host A holds a Write Exclusive
#     reservation; an intruder reads A's hostid from the Reservation Report
#     and connects under its own NQN with that hostid. It is refused while A
#     is connected and after A died (A is still a registrant), so it cannot
#     write through the reservation; once B preempted A, the hostid is free
#     again but carries no registration.
# On a tree without the binding and the hostid check the intruder connects
# and its write lands.
# timeout: 120
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
requires setpriv /usr/bin/python3
requires_root

HELPER=$BUILD/tests/helpers/identity_host
[ -x "$HELPER" ] || fail "missing $HELPER (make tests)"
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
NOBODY_USERS=(setpriv --reuid=65534 --regid=65534 --groups=100 --)

start_nvlendd
# a socket directory local users can reach; the listener's socket opened to them
chmod 711 "$T"
mkdir -m 755 "$T/pub"
NQN=nqn.2026-01.io.nvlend.test:ident
ROOTNQN=nqn.2026-01.io.nvlend.test:host-root
MINE=nqn.2026-01.io.nvlend.test:host-nobody
GRPNQN=nqn.2026-01.io.nvlend.test:host-users
FREE=nqn.2026-01.io.nvlend.test:host-free
nvlend bdev create ram ident 16M >/dev/null || fail "bdev"
rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\"}" >/dev/null || fail "create subsystem"
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"ident\"}}" >/dev/null ||
	fail "add ns"
rpc nvmf_subsystem_add_listener \
	"{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"$T/pub/s.sock\"}}" \
	>/dev/null || fail "add listener"
chmod 666 "$T/pub/s.sock"
URI="nvme+shm://$T/pub/s.sock?nqn=$NQN"
rpc nvmf_subsystem_add_host "{\"nqn\":\"$NQN\",\"host\":\"$ROOTNQN\",\"uid\":0}" >/dev/null ||
	fail "add_host with uid 0"
nvlend subsystem add-host "$NQN" "$MINE" --uid nobody >/dev/null || fail "add-host --uid nobody"
nvlend subsystem add-host "$NQN" "$GRPNQN" --gid 100 >/dev/null || fail "add-host --gid 100"
nvlend subsystem add-host "$NQN" "$FREE" >/dev/null || fail "add-host (unbound)"

# raw_connect SOCK SUBNQN HOSTNQN [HOSTID]: one CONNECT on the shm control
# socket; prints "status=0xSSS reason=R message=..." (libnvlend keeps the
# message to itself, the wire carries it)
raw_connect() {
	/usr/bin/python3 - "$@" <<'PY'
import os, socket, struct, sys
sock, sub, host = sys.argv[1:4]
hostid = bytes.fromhex(sys.argv[4].replace("-", "")) if len(sys.argv) > 4 else os.urandom(16)
body = sub.encode().ljust(256, b"\0") + host.encode().ljust(256, b"\0") + hostid + \
       struct.pack("<IIQ", 0, 0, 2 << 20)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(5)
s.connect(sock)
s.send(struct.pack("<IHHII", 0x534c564e, 1, 1, 16 + len(body), 0) + body)
msg, fds, _, _ = socket.recv_fds(s, 4096, 4)
for fd in fds:
    os.close(fd)
status, = struct.unpack_from("<H", msg, 16)
reason, = struct.unpack_from("<I", msg, 36)
print("status=0x%03x reason=%d message=%s" % (status, reason, msg[40:256].split(b"\0")[0].decode()))
PY
}

check_claims() {
	local what=$1
	# uid 65534 as the NQN bound to root: refused, and told why
	if "${NOBODY[@]}" "$BIN/nvlend" ns info "$URI" --hostnqn "$ROOTNQN" >"$T/o" 2>&1; then
		cat "$T/o" >&2
		fail "$what: uid 65534 connected as $ROOTNQN (bound to uid 0)"
	fi
	"${NOBODY[@]}" bash -c "$(declare -f raw_connect); raw_connect $T/pub/s.sock $NQN $ROOTNQN" \
		>"$T/o" 2>&1 || fail "$what: raw connect: $(cat "$T/o")"
	# Connect Invalid Host (0x184), refusal reason 5 (credentials), and why
	grep -q "status=0x184 reason=5 message=host NQN $ROOTNQN is bound to uid 0; peer uid 65534" \
		"$T/o" || fail "$what: refusal on the wire: $(cat "$T/o")"
	# ... but as its own NQN, yes (the socket is reachable: the refusal above is the binding)
	"${NOBODY[@]}" "$BIN/nvlend" ns info "$URI" --hostnqn "$MINE" >"$T/o" 2>&1 ||
		fail "$what: uid 65534 cannot connect as its own NQN: $(cat "$T/o")"
	# an unbound entry: anyone
	"${NOBODY[@]}" "$BIN/nvlend" ns info "$URI" --hostnqn "$FREE" >"$T/o" 2>&1 ||
		fail "$what: uid 65534 cannot connect as an unbound NQN: $(cat "$T/o")"
	# group binding: a supplementary member of group 100 may, a non-member may not
	"${NOBODY_USERS[@]}" "$BIN/nvlend" ns info "$URI" --hostnqn "$GRPNQN" >"$T/o" 2>&1 ||
		fail "$what: a member of group 100 cannot connect as $GRPNQN: $(cat "$T/o")"
	if "${NOBODY[@]}" "$BIN/nvlend" ns info "$URI" --hostnqn "$GRPNQN" >"$T/o" 2>&1; then
		fail "$what: a non-member of group 100 connected as $GRPNQN"
	fi
	"${NOBODY[@]}" bash -c "$(declare -f raw_connect); raw_connect $T/pub/s.sock $NQN $GRPNQN" \
		>"$T/o" 2>&1
	grep -q "reason=5 message=host NQN $GRPNQN is bound to group 100" "$T/o" ||
		fail "$what: group refusal reason: $(cat "$T/o")"
	# root may claim any NQN
	nvlend ns info "$URI" --hostnqn "$MINE" >"$T/o" 2>&1 ||
		fail "$what: root cannot connect as $MINE: $(cat "$T/o")"
	nvlend ns info "$URI" --hostnqn "$ROOTNQN" >"$T/o" 2>&1 ||
		fail "$what: root cannot connect as $ROOTNQN: $(cat "$T/o")"
}
log "credential binding"
check_claims "live config"
grep -q "refusing host $ROOTNQN from uid 65534" "$DAEMON_LOG" || fail "no log line for the refusal"
rpc nvmf_get_subsystems "{\"nqn\":\"$NQN\"}" >"$T/subs.json"
/usr/bin/python3 - "$T/subs.json" "$ROOTNQN" "$MINE" "$GRPNQN" "$FREE" <<'PY' ||
import json, sys
hosts = {h["nqn"]: h for h in json.load(open(sys.argv[1]))[0]["hosts"]}
assert hosts[sys.argv[2]].get("uid") == 0, hosts
assert hosts[sys.argv[3]].get("uid") == 65534, hosts
assert hosts[sys.argv[4]].get("gid") == 100 and "uid" not in hosts[sys.argv[4]], hosts
assert "uid" not in hosts[sys.argv[5]] and "gid" not in hosts[sys.argv[5]], hosts
PY
	fail "nvmf_get_subsystems hosts: $(cat "$T/subs.json")"

log "the bindings survive save_config and a restart"
rpc save_config >"$T/cfg.json" || fail "save_config"
stop_nvlendd
start_nvlendd -c "$T/cfg.json"
chmod 666 "$T/pub/s.sock"
check_claims "after restart"

log "host identifiers cannot be borrowed"
shm_target fence 16M
A=nqn.2026-01.io.nvlend.test:node-a
B=nqn.2026-01.io.nvlend.test:node-b
X=nqn.2026-01.io.nvlend.test:intruder
nvlend ns resv register "$URI" --hostnqn $A --nrkey 0xA1 || fail "A register"
nvlend ns resv acquire "$URI" --hostnqn $A --crkey 0xA1 --type we || fail "A acquire"
nvlend ns resv register "$URI" --hostnqn $B --nrkey 0xB2 || fail "B register"
"$BIN/nvlend-perf" "$URI" --hostnqn=$A --rw=randwrite --iodepth=2 --size=4M --runtime=60 \
	>"$T/a.out" 2>&1 &
PA=$!
on_exit "kill -9 $PA"
wait_until 10 bash -c "nvlend rpc nvmf_subsystem_get_controllers '{\"nqn\":\"$NQN\"}' | grep -q node-a" ||
	fail "A's writer did not connect"
nvlend ns resv report "$URI" --json >"$T/r.json" || fail "report"
AID=$(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print([x["hostid"] for x in r["registrants"] if x["rkey"] == 0xA1][0])' "$T/r.json") ||
	fail "no hostid for A in $(cat "$T/r.json")"
log "A's host identifier from the report: $AID"
# the intruder with its own identifier: registered nowhere, Write Exclusive stops it
"$HELPER" "$URI" $X 00000000000040008000000000000001 write 100 intruder >"$T/x.out" 2>&1
[ $? = 1 ] && grep -q "reservation conflict" "$T/x.out" ||
	fail "intruder with its own hostid: $(cat "$T/x.out")"
# with A's identifier while A is connected: refused at Connect
"$HELPER" "$URI" $X "$AID" write 100 intruder >"$T/x.out" 2>&1
rc=$?
[ $rc = 3 ] || fail "intruder borrowing A's live hostid was not refused (exit $rc): $(cat "$T/x.out")"
raw_connect "$T/fence.sock" "$NQN" $X "$AID" >"$T/o" 2>&1
grep -q "status=0x184 reason=2 message=host identifier .* belongs to another host NQN" "$T/o" ||
	fail "hostid refusal on the wire: $(cat "$T/o")"
grep -q "its host identifier .* belongs to host $A" "$DAEMON_LOG" || fail "no log line for it"
# A dies without releasing: its registration (and reservation) stay, so does the pairing
kill -9 $PA
wait $PA 2>/dev/null
wait_until 10 bash -c "! nvlend rpc nvmf_subsystem_get_controllers '{\"nqn\":\"$NQN\"}' | grep -q node-a" ||
	fail "A's controller did not go"
"$HELPER" "$URI" $X "$AID" write 100 intruder >"$T/x.out" 2>&1
rc=$?
[ $rc = 3 ] || fail "intruder borrowing dead A's hostid was not refused (exit $rc): $(cat "$T/x.out")"
[ "$(nvlend ns read "$URI" --hostnqn $B --lba 100 | head -c 8 | tr -d '\0')" != intruder ] ||
	fail "the intruder's data is on the namespace"
# A itself comes back with its own NQN and identifier: fine (same host)
"$HELPER" "$URI" $A "$AID" write 101 a-again >"$T/a2.out" 2>&1 || fail "A cannot come back: $(cat "$T/a2.out")"
# B fences A: A's hostid holds nothing any more, and may be used again, uselessly
nvlend ns resv acquire "$URI" --hostnqn $B --crkey 0xB2 --prkey 0xA1 --action preempt --type we ||
	fail "B preempt"
"$HELPER" "$URI" $X "$AID" write 100 intruder >"$T/x.out" 2>&1
rc=$?
[ $rc = 1 ] && grep -q "reservation conflict" "$T/x.out" ||
	fail "after the fence: expected a connect and a reservation conflict, got (exit $rc) $(cat "$T/x.out")"
stop_nvlendd
pass
