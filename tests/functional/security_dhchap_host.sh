#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Security item 4, the host side: libnvlend (nvlend ns, nvlend-perf, nvlend
# attach's session) and the daemon's nvme bdev answer DH-HMAC-CHAP
# (NVMe Base 2.0 8.13) over shm and NVMe/TCP:
#  - the right host key authenticates (NVLEND_DHCHAP_KEY: a key file or a
#    DHHC-1 secret; nvlend's --dhchap-key), bidirectionally with a controller
#    key (NVLEND_DHCHAP_CTRLR_KEY, --dhchap-ctrlr-key); the target's log
#    says so;
#  - no key: refused with a clear error that names the variable;
#  - a wrong host key: the controller refuses (AUTH_Failure1); a wrong
#    controller key: the host refuses the controller (AUTH_Failure2) and
#    the target tears the controller down;
#  - a key file others may read, a malformed secret: refused before any
#    connection;
#  - over TCP every I/O queue authenticates on its own (nvlend-perf with 2
#    queues: the target's controller shows them authenticated, I/O runs);
#  - nvlend attach --dhchap-key (FUSE, over TCP): the device reads what an
#    authenticated host wrote, and the attach process authenticates again
#    when it reconnects (the target's listener is removed and re-added);
#  - bdev_nvme_attach_controller with dhchap_key / dhchap_ctrlr_key (keyring
#    names, SPDK's parameters) from a second daemon: I/O through it; a wrong
#    key refused.
# timeout: 240
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
source "$(dirname "$0")/attach_common.sh"
requires /usr/bin/python3

NQN=nqn.2026-01.io.nvlend.test:hauth
H1=nqn.2026-01.io.nvlend.test:hh1      # host key only
H2=nqn.2026-01.io.nvlend.test:hh2      # host and controller keys
K=$T/keys
mkdir -m 700 "$K"
PORT=$(free_port)

nvlend keyring gen --hmac sha256 "$K/host.key" || fail "keyring gen"
nvlend keyring gen --hmac sha384 "$K/ctrl.key" || fail "keyring gen"
nvlend keyring gen "$K/wrong.key" || fail "keyring gen"

start_nvlendd --reactors 2
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
nvlend subsystem add-host $NQN $H2 --dhchap-key host --dhchap-ctrlr-key ctrl || fail "add-host H2"

SHM="nvme+shm://$T/a.sock?nqn=$NQN"
TCP="nvme+tcp://127.0.0.1:$PORT/$NQN"
# ok WHAT CMD...: must succeed
ok() {
	local what=$1
	shift
	"$@" >"$T/o" 2>&1 || fail "$what: $(cat "$T/o")"
}
# refused WHAT PATTERN CMD...: must fail, saying PATTERN
refused() {
	local what=$1 pat=$2
	shift 2
	"$@" >"$T/o" 2>&1 && fail "$what: accepted: $(cat "$T/o")"
	grep -Eq "$pat" "$T/o" || fail "$what: expected /$pat/ in: $(cat "$T/o")"
	log "$what: $(head -c 300 "$T/o" | tr '\n' ' ')"
}
authn_lines() { grep -c "host $1 authenticated (DH-HMAC-CHAP" "$DAEMON_LOG"; }

for u in "$SHM" "$TCP"; do
	tr=${u%%:*}
	log "$tr: the right key authenticates"
	n=$(authn_lines $H1)
	ok "$tr H1" env NVLEND_DHCHAP_KEY="$K/host.key" nvlend ns info "$u" --hostnqn $H1
	grep -q "$NQN" "$T/o" || fail "$tr H1: $(cat "$T/o")"
	[ "$(authn_lines $H1)" -gt "$n" ] || fail "$tr H1: no 'authenticated' line in the target's log"
	log "$tr: the secret itself works as well as its file, and --dhchap-key"
	ok "$tr H1 secret" env NVLEND_DHCHAP_KEY="$(cat "$K/host.key")" nvlend ns info "$u" --hostnqn $H1
	ok "$tr H1 option" nvlend ns info "$u" --hostnqn $H1 --dhchap-key "$K/host.key"
	log "$tr: bidirectional"
	n=$(grep -c "host $H2 authenticated (DH-HMAC-CHAP .*controller authenticated to the host" "$DAEMON_LOG")
	ok "$tr H2 bidir" nvlend ns info "$u" --hostnqn $H2 --dhchap-key "$K/host.key" \
		--dhchap-ctrlr-key "$K/ctrl.key"
	[ "$(grep -c "host $H2 authenticated (DH-HMAC-CHAP .*controller authenticated to the host" "$DAEMON_LOG")" -gt "$n" ] ||
		fail "$tr H2: the target did not authenticate itself"
	log "$tr: refusals"
	refused "$tr no key" "requires DH-HMAC-CHAP.*NVLEND_DHCHAP_KEY" nvlend ns info "$u" --hostnqn $H1
	refused "$tr wrong key" "not allowed.*refused: authentication failed" \
		nvlend ns info "$u" --hostnqn $H1 --dhchap-key "$K/wrong.key"
	refused "$tr wrong controller key" "did not prove itself.*wrong response" \
		nvlend ns info "$u" --hostnqn $H2 --dhchap-key "$K/host.key" --dhchap-ctrlr-key "$K/wrong.key"
	refused "$tr controller key the target lacks" "controller did not prove itself|refused" \
		nvlend ns info "$u" --hostnqn $H1 --dhchap-key "$K/host.key" --dhchap-ctrlr-key "$K/ctrl.key"
done
wait_until 10 grep -q "host $H2.*AUTH_Failure2\|$H2.*did not accept the controller" "$DAEMON_LOG" ||
	log "note: the target's log has no line for the host's AUTH_Failure2"

log "keys that are not keys, files others may read: refused before connecting"
cp "$K/host.key" "$K/loose.key"
chmod 644 "$K/loose.key"
refused "loose file" "key cannot be used.*no group/other access" nvlend ns info "$SHM" --hostnqn $H1 --dhchap-key "$K/loose.key"
refused "malformed secret" "key cannot be used.*not a valid DHHC-1 secret" \
	env NVLEND_DHCHAP_KEY="DHHC-1:00:bm90IGEga2V5:" nvlend ns info "$SHM" --hostnqn $H1
refused "no such file" "key cannot be used.*cannot open key file" nvlend ns info "$SHM" --hostnqn $H1 --dhchap-key "$K/none"
refused "controller key alone" "without NVLEND_DHCHAP_KEY|needs --dhchap-key" \
	nvlend ns info "$SHM" --hostnqn $H1 --dhchap-ctrlr-key "$K/ctrl.key"

log "data over both transports, TCP with 2 I/O queues each authenticating"
for u in "$SHM" "$TCP"; do
	ok "perf ${u%%:*}" env NVLEND_DHCHAP_KEY="$K/host.key" NVLEND_DHCHAP_CTRLR_KEY="$K/ctrl.key" \
		nvlend-perf "$u" --hostnqn $H2 --numjobs 2 --iodepth 4 --bs 4k --rw randrw \
		--runtime 1 --verify
done
printf 'authenticated host writes\n' >"$T/data"
ok "write" nvlend ns write "$TCP" --hostnqn $H1 --dhchap-key "$K/host.key" --lba 8 <"$T/data"
ok "read" nvlend ns read "$SHM" --hostnqn $H1 --dhchap-key "$K/host.key" --lba 8 --count 1 -o "$T/back"
head -c "$(stat -c %s "$T/data")" "$T/back" | cmp -s - "$T/data" || fail "read back differs"

if [ -w /dev/fuse ] && [ -w /dev/loop-control ] && [ "$(id -u)" = 0 ]; then
	log "nvlend attach --dhchap-key: a device, and a reconnect that authenticates again"
	export NVLEND_ATTACH_DIR=$T/attach
	mkdir -p "$NVLEND_ATTACH_DIR"
	on_exit attach_cleanup
	expect_fail nvlend attach "$TCP" --via fuse --name nokey --hostnqn $H1 --reconnect-timeout 5
	dev=$(nvlend attach "$TCP" --via fuse --name au --hostnqn $H2 --dhchap-key "$K/host.key" \
		--dhchap-ctrlr-key "$K/ctrl.key" --reconnect-timeout 30) || fail "attach with keys"
	dd if="$dev" bs=512 skip=8 count=1 status=none of="$T/back3" iflag=direct || fail "read $dev"
	head -c "$(stat -c %s "$T/data")" "$T/back3" | cmp -s - "$T/data" || fail "$dev reads other data"
	n=$(authn_lines $H2)
	nvlend subsystem remove-listener $NQN tcp 127.0.0.1 "$PORT" >/dev/null || fail "remove listener"
	sleep 1
	nvlend subsystem add-listener $NQN tcp 127.0.0.1 "$PORT" >/dev/null || fail "re-add listener"
	wait_until 20 sh -c "[ \$(grep -c 'host $H2 authenticated (DH-HMAC-CHAP' '$DAEMON_LOG') -gt $n ]" ||
		fail "the attach process did not authenticate again after the reconnect"
	wait_until 20 dd if="$dev" bs=512 skip=8 count=1 status=none of="$T/back4" iflag=direct ||
		fail "read $dev after the reconnect"
	cmp -s "$T/back3" "$T/back4" || fail "$dev reads other data after the reconnect"
	nvlend detach au || fail "detach"
else
	log "nvlend attach step skipped: needs root, /dev/fuse and loop devices"
fi

log "the daemon's nvme bdev: dhchap_key / dhchap_ctrlr_key (keyring names)"
D1_SOCKET=$NVLEND_SOCKET
D1_LOG=$DAEMON_LOG
start_nvlendd --reactors 1
nvlend keyring add hk "$K/host.key" || fail "keyring add on the initiator"
nvlend keyring add ck "$K/ctrl.key" || fail "keyring add on the initiator"
nvlend keyring add wk "$K/wrong.key" || fail "keyring add on the initiator"
rpc bdev_nvme_attach_controller "{\"name\":\"Au\",\"trtype\":\"tcp\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\",\"subnqn\":\"$NQN\",\"hostnqn\":\"$H2\",\"dhchap_key\":\"hk\",\"dhchap_ctrlr_key\":\"ck\"}" \
	>"$T/o" 2>&1 || fail "attach with keys: $(cat "$T/o")"
grep -q Aun1 "$T/o" || fail "attach: $(cat "$T/o")"
rpc bdev_nvme_attach_controller "{\"name\":\"As\",\"trtype\":\"shm\",\"traddr\":\"$T/a.sock\",\"subnqn\":\"$NQN\",\"hostnqn\":\"$H1\",\"dhchap_key\":\"hk\"}" \
	>"$T/o" 2>&1 || fail "attach shm with a key: $(cat "$T/o")"
rpc bdev_nvme_attach_controller "{\"name\":\"Aw\",\"trtype\":\"tcp\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\",\"subnqn\":\"$NQN\",\"hostnqn\":\"$H1\",\"dhchap_key\":\"wk\",\"ctrlr_loss_timeout_sec\":0}" \
	>"$T/o" 2>&1 && fail "attach with a wrong key worked: $(cat "$T/o")"
grep -q "authentication failed" "$T/o" || fail "attach with a wrong key: $(cat "$T/o")"
rpc bdev_nvme_attach_controller "{\"name\":\"Ax\",\"trtype\":\"tcp\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\",\"subnqn\":\"$NQN\",\"hostnqn\":\"$H1\",\"dhchap_key\":\"nokey\"}" \
	>"$T/o" 2>&1 && fail "attach with an unknown key name worked"
grep -q "nokey" "$T/o" || fail "attach with an unknown key: $(cat "$T/o")"
# I/O through the authenticated bdev: export it over NBD? simpler: a second
# subsystem on the initiator daemon over shm, read back what the host wrote
rpc nvmf_create_subsystem '{"nqn":"nqn.2026-01.io.nvlend.test:re","allow_any_host":true}' >/dev/null ||
	fail "re-export subsystem"
rpc nvmf_subsystem_add_ns '{"nqn":"nqn.2026-01.io.nvlend.test:re","namespace":{"bdev_name":"Aun1"}}' \
	>/dev/null || fail "re-export ns"
nvlend subsystem add-listener nqn.2026-01.io.nvlend.test:re shm "$T/re.sock" >/dev/null || fail "re-export listener"
ok "read through the bdev" nvlend ns read "nvme+shm://$T/re.sock?nqn=nqn.2026-01.io.nvlend.test:re" \
	--lba 8 --count 1 -o "$T/back2"
head -c "$(stat -c %s "$T/data")" "$T/back2" | cmp -s - "$T/data" || fail "read through the bdev differs"
rpc bdev_nvme_detach_controller '{"name":"Au"}' >/dev/null 2>&1
rpc bdev_nvme_detach_controller '{"name":"As"}' >/dev/null || fail "detach As"
pass
