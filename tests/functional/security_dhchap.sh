#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Security item 4, NVMe in-band authentication (DH-HMAC-CHAP, NVMe Base 2.0
# 8.13) over shm and NVMe/TCP, with a host written apart from the daemon
# (tests/functional/dhchap_host.py: hashlib/hmac, FFDHE as Python pow()):
#  - keys: nvlend keyring gen / keyring add; files readable by others refused;
#    a key in use cannot be removed; save_config keeps names and paths, never
#    a secret, and a restart from it authenticates the same way;
#  - the right key authenticates (every hash, every DH group, the strongest
#    one offered and allowed is picked; nvmf_set_config narrows the choice),
#    bidirectionally with a controller key; nothing runs before it
#    (Authentication Required), and over TCP each I/O queue authenticates
#    on its own; re-authentication works;
#  - a wrong host key gets AUTH_Failure1 and the controller is torn down (a
#    TCP I/O queue that fails closes alone: the controller lives on); a
#    host that does not accept the controller's response (wrong controller
#    key) sends AUTH_Failure2 and the controller is torn down; protocol
#    violations get AUTH_Failure1 with the right explanation; a host that
#    never authenticates is dropped;
#  - libnvlend without a key is refused on such an NQN (its host side with
#    keys: security_dhchap_host.sh);
#  - nvmf_subsystem_set_keys: the old key stops working, the new one works;
#  - a key file that becomes readable by others is refused at Connect;
#  - an NQN bound to a uid may connect over TCP only with a key.
# timeout: 300
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
requires /usr/bin/python3 openssl ss

HOSTPY=(/usr/bin/python3 "$TESTS_DIR/functional/dhchap_host.py")
NQN=nqn.2026-01.io.nvlend.test:auth
H1=nqn.2026-01.io.nvlend.test:h1       # host key only
H2=nqn.2026-01.io.nvlend.test:h2       # host and controller keys
H3=nqn.2026-01.io.nvlend.test:h3       # bound to uid 65534, with a key
H4=nqn.2026-01.io.nvlend.test:h4       # bound to uid 65534, no key
K=$T/keys
mkdir -m 700 "$K"
PORT=$(free_port)

nvlend keyring gen --hmac sha256 "$K/host.key" || fail "keyring gen"
nvlend keyring gen --hmac sha384 "$K/ctrl.key" || fail "keyring gen"
nvlend keyring gen "$K/wrong.key" || fail "keyring gen"
nvlend keyring gen --hmac sha512 "$K/new.key" || fail "keyring gen"
[ "$(stat -c %a "$K/host.key")" = 600 ] || fail "keyring gen made a key file of mode $(stat -c %a "$K/host.key")"
grep -Eq '^DHHC-1:01:[A-Za-z0-9+/]{48}:$' "$K/host.key" || fail "key file: $(cat "$K/host.key")"
expect_fail nvlend keyring gen "$K/host.key" # never over an existing file

setup() {
	nvlend bdev create ram a0 16M >/dev/null || fail "bdev"
	rpc nvmf_create_transport '{"trtype":"TCP"}' >/dev/null || fail "tcp transport"
	rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\"}" >/dev/null || fail "create subsystem"
	rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"a0\"}}" >/dev/null ||
		fail "add ns"
	nvlend subsystem add-listener $NQN shm "$T/a.sock" >/dev/null || fail "shm listener"
	nvlend subsystem add-listener $NQN tcp 127.0.0.1 "$PORT" >/dev/null || fail "tcp listener"
	nvlend keyring add host "$K/host.key" || fail "keyring add host"
	nvlend keyring add ctrl "$K/ctrl.key" || fail "keyring add ctrl"
	nvlend subsystem add-host $NQN $H1 --dhchap-key host || fail "add-host H1"
	nvlend subsystem add-host $NQN $H2 --dhchap-key host --dhchap-ctrlr-key ctrl ||
		fail "add-host H2"
	nvlend subsystem add-host $NQN $H3 --uid 65534 --dhchap-key host || fail "add-host H3"
	nvlend subsystem add-host $NQN $H4 --uid 65534 || fail "add-host H4"
}

shm() { "${HOSTPY[@]}" shm "$T/a.sock" $NQN "$@"; }
tcp() { "${HOSTPY[@]}" tcp 127.0.0.1 "$PORT" $NQN "$@"; }
run() { # run WHAT CMD...: the host's lines go to the log; fail with them
	local what=$1
	shift
	"$@" >"$T/h.out" 2>&1 || { cat "$T/h.out" >&2; fail "$what"; }
	sed "s/^/[$what] /" "$T/h.out" >&2
}

start_nvlendd --reactors 2

log "key files: only ours, no access for others"
cp "$K/host.key" "$K/loose.key"
chmod 644 "$K/loose.key"
rpc keyring_file_add_key "{\"name\":\"loose\",\"path\":\"$K/loose.key\"}" >"$T/o" 2>&1 &&
	fail "a key file readable by others was accepted"
grep -q "no group/other access (it is mode 0644" "$T/o" || fail "loose key refusal: $(cat "$T/o")"
rpc keyring_file_add_key "{\"name\":\"rel\",\"path\":\"keys/host.key\"}" >"$T/o" 2>&1 &&
	fail "a relative key path was accepted"
printf 'DHHC-1:01:notbase64!:\n' >"$K/bad.key"
chmod 600 "$K/bad.key"
rpc keyring_file_add_key "{\"name\":\"bad\",\"path\":\"$K/bad.key\"}" >"$T/o" 2>&1 &&
	fail "a file without a valid secret was accepted"
grep -q "does not hold a DHHC-1 secret" "$T/o" || fail "bad key refusal: $(cat "$T/o")"
setup
expect_fail nvlend keyring add host "$K/new.key" # name taken
rpc nvmf_subsystem_add_host "{\"nqn\":\"$NQN\",\"host\":\"nqn.2026-01.io.nvlend.test:x\",\"dhchap_key\":\"nokey\"}" \
	>"$T/o" 2>&1 && fail "add_host with an unknown key"
rpc nvmf_subsystem_add_host "{\"nqn\":\"$NQN\",\"host\":\"nqn.2026-01.io.nvlend.test:x\",\"dhchap_ctrlr_key\":\"ctrl\"}" \
	>"$T/o" 2>&1 && fail "add_host with a controller key alone"
rpc keyring_file_remove_key '{"name":"host"}' >"$T/o" 2>&1 && fail "removed a key in use"
grep -q "used by a host entry" "$T/o" || fail "key in use: $(cat "$T/o")"
nvlend keyring list | grep -Eq "^host +$K/host.key +3" || fail "keyring list: $(nvlend keyring list)"

log "shm: the right keys authenticate; nothing runs before"
run shm-h1 shm $H1 "$K/host.key" - ok 3 5
run shm-h2-bidir shm $H2 "$K/host.key" "$K/ctrl.key" ok 3 5
grep -q "controller .: host $H2 authenticated (DH-HMAC-CHAP sha512, ffdhe8192, controller authenticated to the host)" \
	"$DAEMON_LOG" || fail "no log line for the bidirectional authentication"
# a connected controller shows its authentication
DHCHAP_HOLD=10 shm $H2 "$K/host.key" "$K/ctrl.key" ok >"$T/held.out" 2>&1 &
HP=$!
on_exit "kill $HP"
wait_until 10 grep -q HELD "$T/held.out" || fail "held host: $(cat "$T/held.out")"
rpc nvmf_subsystem_get_controllers "{\"nqn\":\"$NQN\"}" >"$T/ctrls.json"
/usr/bin/python3 - "$T/ctrls.json" "$H2" <<'PY' || fail "controller's auth: $(cat "$T/ctrls.json")"
import json, sys
c = [c for c in json.load(open(sys.argv[1])) if c["hostnqn"] == sys.argv[2]][0]
assert c["auth"] == {"state": "done", "authenticated": True, "digest": "sha512",
                     "dhgroup": "ffdhe8192", "bidirectional": True}, c
PY
kill $HP
wait $HP 2>/dev/null
log "every hash and every DH group (each at least once), the strongest offered is picked"
# 6 pairs instead of all 18: each hash twice, each group once (the Python host's
# ffdhe8192 costs seconds; the pairs are what differs per exchange)
for hg in 1:0 2:1 3:2 1:3 2:4 3:5; do
	h=${hg%:*} g=${hg#*:}
	run "shm-h$h-g$g" shm $H2 "$K/host.key" "$K/ctrl.key" ok $h $g $h $g
done
run shm-pick shm $H1 "$K/host.key" - ok 2 4 1,2 0,2,4
rpc nvmf_set_config '{"dhchap_digests":["sha256","sha384"],"dhchap_dhgroups":["null","ffdhe2048","ffdhe3072"]}' \
	>/dev/null || fail "nvmf_set_config"
run shm-narrowed shm $H1 "$K/host.key" - ok 2 2
rpc nvmf_get_config | grep_q '"ffdhe3072"' || fail "nvmf_get_config: $(rpc nvmf_get_config)"
expect_fail rpc nvmf_set_config '{"dhchap_digests":["md5"]}'
expect_fail rpc nvmf_set_config '{"dhchap_dhgroups":[]}'

log "shm: failures"
run shm-wrongkey shm $H1 "$K/wrong.key" - wrongkey
grep -q "host $H1 failed: wrong response (wrong host key)" "$DAEMON_LOG" || fail "no log line for the wrong key"
run shm-badctrl shm $H2 "$K/host.key" "$K/wrong.key" badctrl
grep -q "host $H2 did not accept the controller's response" "$DAEMON_LOG" || fail "no log line for Failure2"
run shm-violations shm $H1 "$K/host.key" - violations 5
# the per-step timeout is nvlend's dhchap_step_timeout_ms (default: the KATO,
# 30..120 s); 3 s keeps the test short, and save_config must keep it
expect_fail rpc nvmf_set_config '{"dhchap_step_timeout_ms":999}'
expect_fail rpc nvmf_set_config '{"dhchap_step_timeout_ms":"3000"}'
rpc nvmf_set_config '{"dhchap_step_timeout_ms":3000}' >/dev/null || fail "dhchap_step_timeout_ms"
rpc nvmf_get_config | grep_q '"dhchap_step_timeout_ms": 3000' || fail "nvmf_get_config: $(rpc nvmf_get_config)"
run shm-timeout shm $H1 "$K/host.key" - timeout 45
grep -q "host $H1 did not complete DH-HMAC-CHAP in time" "$DAEMON_LOG" || fail "no log line for the timeout"
expect_fail nvlend ns info "nvme+shm://$T/a.sock?nqn=$NQN" --hostnqn $H1 # libnvlend without a key
kill -0 "$DAEMON_PID" || fail "the daemon died"

log "tcp: admin queue and each I/O queue authenticate"
run tcp-h1 tcp $H1 "$K/host.key" - ok 2 2
run tcp-h2-bidir tcp $H2 "$K/host.key" "$K/ctrl.key" ok 1 1 1 1
run tcp-wrongkey tcp $H1 "$K/wrong.key" - wrongkey
run tcp-ioq-wrongkey tcp $H1 "$K/host.key" "$K/wrong.key" ioq-wrongkey
run tcp-badctrl tcp $H2 "$K/host.key" "$K/wrong.key" badctrl
run tcp-violations tcp $H1 "$K/host.key" - violations 5
log "tcp: a uid-bound NQN needs a key over TCP"
run tcp-h3-bound-keyed tcp $H3 "$K/host.key" - ok
run tcp-h4-bound-nokey tcp $H4 - - refused
grep -q "refusing host $H4 over TCP: the NQN is bound to local uid 65534 and has no DH-HMAC-CHAP key" \
	"$DAEMON_LOG" || fail "no log line for the bound NQN over TCP"

log "save_config: names and paths, never a secret; a restart authenticates alike"
rpc save_config >"$T/cfg.json" || fail "save_config"
for f in host ctrl; do
	secret=$(sed 's/^DHHC-1:..://; s/:$//' "$K/$f.key")
	grep -qF "$secret" "$T/cfg.json" && fail "save_config wrote the $f secret"
done
/usr/bin/python3 - "$T/cfg.json" "$K" "$NQN" "$H2" <<'PY' || fail "save_config: $(cat "$T/cfg.json")"
import json, sys
cfg, keys, nqn, h2 = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4]
sub = {s["subsystem"]: s["config"] for s in cfg["subsystems"]}
kr = {c["params"]["name"]: c["params"]["path"] for c in sub["keyring"] if c["method"] == "keyring_file_add_key"}
assert kr == {"host": keys + "/host.key", "ctrl": keys + "/ctrl.key"}, kr
nv = sub["nvmf"]
sc = [c["params"] for c in nv if c["method"] == "nvmf_set_config"][0]
assert sc == {"dhchap_digests": ["sha256", "sha384"], "dhchap_dhgroups": ["null", "ffdhe2048", "ffdhe3072"], "dhchap_step_timeout_ms": 3000}, sc
h = [c["params"] for c in nv if c["method"] == "nvmf_subsystem_add_host" and c["params"]["host"] == h2][0]
assert h["dhchap_key"] == "host" and h["dhchap_ctrlr_key"] == "ctrl", h
PY
stop_nvlendd
rm -f "$T/a.sock"
start_nvlendd --reactors 2 -c "$T/cfg.json"
run restart-h2 shm $H2 "$K/host.key" "$K/ctrl.key" ok 2 2
run restart-wrong tcp $H1 "$K/wrong.key" - wrongkey

log "nvmf_subsystem_set_keys: the new key, not the old one"
nvlend keyring add new "$K/new.key" || fail "keyring add new"
rpc nvmf_subsystem_set_keys "{\"nqn\":\"$NQN\",\"host\":\"$H1\",\"dhchap_key\":\"new\"}" >/dev/null ||
	fail "set_keys"
run setkeys-old shm $H1 "$K/host.key" - wrongkey
run setkeys-new shm $H1 "$K/new.key" - ok
rpc nvmf_subsystem_set_keys "{\"nqn\":\"$NQN\",\"host\":\"$H1\",\"dhchap_key\":\"nokey\"}" >/dev/null 2>&1 &&
	fail "set_keys with an unknown key"
run setkeys-kept shm $H1 "$K/new.key" - ok

log "a key file that became readable by others is refused at Connect"
chmod 644 "$K/new.key"
run loose-at-connect shm $H1 "$K/new.key" - refused
grep -q "key file $K/new.key must be a regular file owned by uid" "$DAEMON_LOG" ||
	fail "no log line for the loose key file"
chmod 600 "$K/new.key"
run fixed shm $H1 "$K/new.key" - ok

log "keys leave with their hosts"
nvlend rpc nvmf_subsystem_remove_host "{\"nqn\":\"$NQN\",\"host\":\"$H1\"}" >/dev/null || fail "remove H1"
rpc keyring_file_remove_key '{"name":"new"}' >/dev/null || fail "remove an unused key"
kill -0 "$DAEMON_PID" || fail "the daemon died"
stop_nvlendd
pass
