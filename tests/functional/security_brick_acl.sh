#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Brick block ownership (issue 21 item 8; docs/security.md "Brick blocks
# belong to whoever allocated them"). Over shm and over TCP: client A
# (identity alice) allocates and writes a block; client B (identity bob)
# does not see it in LIST and cannot map, read, write, free it or learn its
# key: "permission denied", counted and logged, A's data intact; a wrong key
# fails the same way; B with A's key (handed over) reads it. Another uid
# cannot even reach the shm listener. After kill -9 and a restart from the
# saved configuration, A's identity and A's key still work and B alone still
# fails. A brick made before ownership (blocks without an owner record)
# recovers with fresh keys owned by local root; the operator sees them with
# brick_get_blocks.
# timeout: 60
source "$(dirname "$0")/common.sh"
requires setpriv

fast=/dev/shm/${NVLEND_SHM_PREFIX}acl
fast1=/dev/shm/${NVLEND_SHM_PREFIX}acl1
on_exit "rm -rf $fast $fast1"
start_nvlendd
port=$(free_port) || fail "no free port"
mkdir -p "$T/pub" && chmod 0755 "$T" "$T/pub"
nvlend brick create b0 --fast "$fast" --capacity 8 >/dev/null || fail "create b0"
nvlend brick listen b0 shm "$T/pub/b.sock" || fail "shm listener"
nvlend brick listen b0 tcp 127.0.0.1 "$port" || fail "tcp listener"
nvlend save-config -o "$T/cfg.json" || fail "save-config"
SHM="brick+shm://$T/pub/b.sock?name=b0"
TCP="brick+tcp://127.0.0.1:$port/b0"

A() { NVLEND_BRICK_IDENTITY=$T/alice.id NVLEND_BRICK_CLIENT=alice nvlend "$@"; }
B() { NVLEND_BRICK_IDENTITY=$T/bob.id NVLEND_BRICK_CLIENT=bob nvlend "$@"; }
head -c 300000 /dev/urandom >"$T/data"
denied() { nvlend --json brick list b0 | json_get '[0]["stats"]["denied"]'; }

# must_deny WHAT CMD...: fails with "permission denied"
must_deny() {
	local what=$1 out
	shift
	out=$("$@" 2>&1 </dev/null) && fail "$what: accepted"
	assert_contains "$out" "permission denied" "$what"
}

declare -A KEY
for tr in SHM TCP; do
	uri=${!tr}
	addr=$([ $tr = SHM ] && echo 2M || echo 6M)
	hex=$([ $tr = SHM ] && echo 0x200000 || echo 0x600000)
	log "$tr: A allocates and writes $hex, B may not touch it"
	A brick alloc "$uri" $addr >/dev/null || fail "$tr: A alloc"
	A brick write "$uri" $addr --offset 4k <"$T/data" >/dev/null || fail "$tr: A write"
	KEY[$tr]=$(A brick key "$uri" $addr) || fail "$tr: A key"
	[[ ${KEY[$tr]} =~ ^[0-9a-f]{32}$ ]] || fail "$tr: key '${KEY[$tr]}'"
	A brick extents "$uri" | grep_q "^$hex " || fail "$tr: A does not list its block"
	d0=$(denied)
	B brick extents "$uri" | grep_q "^$hex " && fail "$tr: B lists A's block"
	must_deny "$tr: B read" B brick read "$uri" $addr --length 16
	must_deny "$tr: B write" B brick write "$uri" $addr
	must_deny "$tr: B free" B brick free "$uri" $addr
	must_deny "$tr: B key" B brick key "$uri" $addr
	must_deny "$tr: B read, wrong key" B brick read "$uri" $addr --key 0123456789abcdef0123456789abcdef
	k=${KEY[$tr]}
	wrong=$([ "${k:31}" = 0 ] && echo 1 || echo 0) # the key with its last digit changed
	must_deny "$tr: B free, wrong key" B brick free "$uri" $addr --key "${k:0:31}$wrong"
	must_deny "$tr: anonymous read" env NVLEND_BRICK_IDENTITY=none nvlend brick read "$uri" $addr
	[ "$(denied)" -ge $((d0 + 7)) ] || fail "$tr: denials not counted: $d0 -> $(denied)"
	A brick read "$uri" $addr --offset 4k --length 300000 | cmp -s - "$T/data" ||
		fail "$tr: A's data changed"
	log "$tr: B with A's key"
	B brick read "$uri" $addr --offset 4k --length 300000 --key "${KEY[$tr]}" | cmp -s - "$T/data" ||
		fail "$tr: B cannot read with A's key"
	B brick extents "$uri" | grep_q "^$hex " && fail "$tr: a key does not make B the owner"
done
log "one identity owns its blocks on both transports"
A brick read "$TCP" 2M --offset 4k --length 300000 | cmp -s - "$T/data" || fail "A over TCP"
A brick read "$SHM" 6M --offset 4k --length 300000 | cmp -s - "$T/data" || fail "A over shm"
grep_q "MAP of 0x200000 by client 'bob' (uid 0) refused: permission denied" "$DAEMON_LOG" ||
	fail "no log line for B's refused map"

log "the default identity file is made on first use, 0600 in a 0700 directory"
mkdir -p "$T/home"
HOME=$T/home NVLEND_BRICK_IDENTITY= nvlend brick extents "$TCP" >/dev/null || fail "default identity"
[ "$(stat -c %a "$T/home/.config/nvlend")" = 700 ] || fail "identity directory mode"
[ "$(stat -c %a "$T/home/.config/nvlend/brick-identity")" = 600 ] || fail "identity file mode"
grep -qE '^[0-9a-f]{64}$' "$T/home/.config/nvlend/brick-identity" || fail "identity file content"

log "identity files that others can read are refused"
chmod 0644 "$T/bob.id"
out=$(B brick extents "$TCP" 2>&1) && fail "a world-readable identity file was used"
assert_contains "$out" "not permitted"
chmod 0600 "$T/bob.id"

log "another uid cannot reach the shm listener (0600)"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups env NVLEND_BRICK_IDENTITY=none \
	"$BIN/nvlend" brick extents "$SHM" 2>&1) && fail "uid 65534 reached the shm listener"
assert_contains "$out" "Permission denied"

log "operator view: brick_get_blocks"
blocks=$(rpc brick_get_blocks "{\"name\": \"b0\", \"show_keys\": true}") || fail "brick_get_blocks"
assert_eq "$(echo "$blocks" | json_get '[0]["owner"]["name"]')" alice "owner of 0x200000"
assert_eq "$(echo "$blocks" | json_get '[0]["owner"]["uid"]')" 0 "uid of 0x200000's allocator"
assert_eq "$(echo "$blocks" | json_get '[0]["key"]')" "${KEY[SHM]}" "key of 0x200000"
assert_eq "$(echo "$blocks" | json_get '[1]["key"]')" "${KEY[TCP]}" "key of 0x600000"
[ "$(ls "$fast" | grep -c '^acl-')" = 2 ] || fail "owner records: $(ls -a "$fast")"
[ "$(stat -c %a "$fast/acl-0000000000200000")" = 600 ] || fail "owner record mode"

log "kill -9 and restart: keys and owners survive"
kill9_nvlendd
NVLEND_SOCKET_OVERRIDE=$NVLEND_SOCKET start_nvlendd -c "$T/cfg.json"
for tr in SHM TCP; do
	uri=${!tr}
	addr=$([ $tr = SHM ] && echo 2M || echo 6M)
	A brick read "$uri" $addr --offset 4k --length 300000 | cmp -s - "$T/data" ||
		fail "$tr: A after restart"
	B brick read "$uri" $addr --offset 4k --length 300000 --key "${KEY[$tr]}" | cmp -s - "$T/data" ||
		fail "$tr: A's key after restart"
	must_deny "$tr: B after restart" B brick read "$uri" $addr
done
log "B frees with A's key; A cannot free it twice"
B brick free "$TCP" 6M --key "${KEY[TCP]}" >/dev/null || fail "B free with the key"
out=$(A brick free "$TCP" 6M 2>&1) && fail "freed twice"
assert_contains "$out" "not allocated"

log "a brick from before ownership: fresh keys, owned by local root"
nvlend brick create b1 --fast "$fast1" --capacity 2 >/dev/null || fail "create b1"
nvlend brick listen b1 shm "$T/b1.sock" || fail "b1 shm"
nvlend brick listen b1 tcp 127.0.0.1 "$port" || fail "b1 tcp"
A brick alloc "brick+shm://$T/b1.sock?name=b1" 0 >/dev/null || fail "b1 alloc"
A brick write "brick+shm://$T/b1.sock?name=b1" 0 <"$T/data" >/dev/null || fail "b1 write"
nvlend brick delete b1 || fail "delete b1"
rm -f "$fast1"/acl-* # the layout of a brick made before this change
nvlend brick create b1 --fast "$fast1" --capacity 2 >/dev/null || fail "re-create b1"
nvlend brick listen b1 shm "$T/b1.sock" || fail "b1 shm again"
nvlend brick listen b1 tcp 127.0.0.1 "$port" || fail "b1 tcp again"
grep_q "1 blocks had no owner record" "$DAEMON_LOG" || fail "recovery of old blocks not logged"
B brick read "brick+shm://$T/b1.sock?name=b1" 0 --length 300000 | cmp -s - "$T/data" ||
	fail "local root does not own a recovered block"
must_deny "TCP: recovered block without its key" A brick read "brick+tcp://127.0.0.1:$port/b1" 0
blocks=$(rpc brick_get_blocks "{\"name\": \"b1\", \"show_keys\": true}") || fail "brick_get_blocks b1"
assert_eq "$(echo "$blocks" | json_get '[0]["owner"]["uid_owns"]')" True "recovered block: uid_owns"
k=$(echo "$blocks" | json_get '[0]["key"]')
A brick read "brick+tcp://127.0.0.1:$port/b1" 0 --length 300000 --key "$k" | cmp -s - "$T/data" ||
	fail "TCP: recovered block with the operator's key"
[ -f "$fast1/acl-0000000000000000" ] || fail "the fresh key was not kept"
pass
