#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 420
# asan: no
#
# The stock Linux NVMe/TCP initiator and nvme-cli (in a QEMU guest running
# Debian's kernel) against nvlendd's TCP transport, in one boot: discovery
# on the discovery listener and on the I/O listener (and a subsystem the
# host may not use stays hidden), a refused host NQN, connect with header
# and data digests, fio crc32c verify at QD1 and QD32 (in-capsule and R2T
# writes), mkfs.ext4 + mount + copy + fsck, reservations through nvme-cli,
# the daemon restarted under the connected kernel (it reconnects and the
# data is there), two more controllers with their own host NQNs on the same
# namespace with a reservation conflict between them, disconnect.
source "$(dirname "$0")/common.sh"
requires ss
guest_prepare

NQN=nqn.2024-01.io.nvlend:kernel
HIDDEN=nqn.2024-01.io.nvlend:hidden
SERIAL=NVLTCP0001
GUESTNQN=nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555
HOSTIDA=aaaaaaaa-0000-4000-8000-00000000000a
HOSTIDB=bbbbbbbb-0000-4000-8000-00000000000b
HOSTA=nqn.2014-08.org.nvmexpress:uuid:$HOSTIDA
HOSTB=nqn.2014-08.org.nvmexpress:uuid:$HOSTIDB
BADNQN=nqn.2024-01.io.example:not-allowed
PORT=$(free_port)
DPORT=$(free_port)
[ "$PORT" != "$DPORT" ] || DPORT=$(free_port)

configure() {
	rpc nvmf_create_transport '{"trtype":"TCP","in_capsule_data_size":8192,"io_unit_size":131072}' >/dev/null
	rpc bdev_aio_create "{\"name\":\"k0\",\"filename\":\"$T/ns.img\"}" >/dev/null
	rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"serial_number\":\"$SERIAL\"}" >/dev/null
	rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"k0\"}}" >/dev/null
	for h in "$GUESTNQN" "$HOSTA" "$HOSTB"; do
		rpc nvmf_subsystem_add_host "{\"nqn\":\"$NQN\",\"host\":\"$h\"}" >/dev/null
	done
	rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"adrfam\":\"IPv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\"}}" >/dev/null
	rpc nvmf_subsystem_add_listener "{\"nqn\":\"nqn.2014-08.org.nvmexpress.discovery\",\"listen_address\":{\"trtype\":\"TCP\",\"adrfam\":\"IPv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$DPORT\"}}" >/dev/null
	# a subsystem the guest may not use: it must not show up in its discovery log
	rpc nvmf_create_subsystem "{\"nqn\":\"$HIDDEN\"}" >/dev/null
	rpc nvmf_subsystem_add_listener "{\"nqn\":\"$HIDDEN\",\"listen_address\":{\"trtype\":\"TCP\",\"adrfam\":\"IPv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\"}}" >/dev/null
}

truncate -s 128M "$T/ns.img"
start_nvlendd --reactors 2
configure

S=$T/share
mkdir -p "$S"
cat > "$S/env" <<EOF
NQN=$NQN
HIDDEN=$HIDDEN
SERIAL=$SERIAL
PORT=$PORT
DPORT=$DPORT
HOSTA=$HOSTA
HOSTB=$HOSTB
HOSTIDA=$HOSTIDA
HOSTIDB=$HOSTIDB
BADNQN=$BADNQN
EOF

guest_run -t 360 -s "$S" -f "$GUEST_TOOLS/tests/nvlend-tcp-kernel-guest.sh" > "$T/guest.log" 2>&1 &
GPID=$!
on_exit "kill $GPID"

# the guest asks for a target restart in the middle
waited=0
while [ ! -e "$S/restart-now" ] && kill -0 $GPID 2>/dev/null; do sleep 0.2; done
if [ -e "$S/restart-now" ]; then
	log "restarting the target under the connected kernel"
	rpc save_config > "$T/config.json" || fail "save_config"
	stop_nvlendd
	start_nvlendd --reactors 2 -c "$T/config.json"
	touch "$S/restarted"
fi
while [ ! -e "$S/ctrls-up" ] && kill -0 $GPID 2>/dev/null; do sleep 0.2; done
if [ -e "$S/ctrls-up" ]; then
	rpc nvmf_subsystem_get_controllers "{\"nqn\":\"$NQN\"}" > "$T/ctrls.json"
	got=$(/usr/bin/python3 -c "import json,sys; print(' '.join(sorted(c['hostnqn'] for c in json.load(open(sys.argv[1])))))" "$T/ctrls.json")
	want=$(printf '%s\n' "$GUESTNQN" "$HOSTA" "$HOSTB" | sort | tr '\n' ' ' | sed 's/ $//')
	if [ "$got" = "$want" ]; then echo ok > "$S/ctrls-checked"; else echo "controllers: $got" > "$S/ctrls-checked"; fi
fi
wait $GPID
grc=$?
cat "$T/guest.log"
[ $grc = 0 ] || fail "guest script failed (status $grc)"
grep -q GUEST_ALL_OK "$T/guest.log" || fail "guest did not finish"
for c in discover discover-io-port refused-host connect fio-qd1 fio-qd32 filesystem reservations \
	restart-reconnect two-hosts-reservations disconnect; do
	grep -q "CHECK $c ok" "$T/guest.log" || fail "check $c missing"
done
grep -q "host nqn.2024-01.io.example:not-allowed is not allowed" "$DAEMON_LOG" "$T"/nvlendd1.log ||
	fail "the refused host left no trace in the daemon log"
pass
