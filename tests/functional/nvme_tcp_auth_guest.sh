#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 900
# asan: no
#
# Security item 4, acceptance: the Linux 6.12 NVMe/TCP initiator (Debian
# bookworm-backports kernel, CONFIG_NVME_HOST_AUTH, modules nvme-auth and
# nvme-keyring) and nvme-cli 2.3 authenticate to nvlendd with DH-HMAC-CHAP
# (NVMe Base 2.0 8.13), in a QEMU guest booted with the `bpo` image:
#  - host key only (made by nvme gen-dhchap-key): connect, I/O with verify;
#    the pair picked is SHA-512 / ffdhe8192, the strongest the kernel offers;
#  - a wrong host key, and no key at all, are refused;
#  - bidirectional with --dhchap-ctrl-secret (the controller key made by
#    nvlend keyring gen): connect and I/O, with SHA-256 / null and
#    SHA-384 / ffdhe3072 (nvmf_set_config narrows the choice);
#  - a wrong controller key is refused by the host.
# The daemon's log must show each authentication and each refusal.
source "$(dirname "$0")/common.sh"
requires nvme
guest_prepare bpo

NQN=nqn.2024-01.io.nvlend:auth
HOSTIDA=aaaaaaaa-0000-4000-8000-0000000000a1
HOSTIDB=bbbbbbbb-0000-4000-8000-0000000000b2
HOSTA=nqn.2014-08.org.nvmexpress:uuid:$HOSTIDA
HOSTB=nqn.2014-08.org.nvmexpress:uuid:$HOSTIDB
PORT=$(free_port)

K=$T/keys
mkdir -m 700 "$K"
# the host key from nvme-cli's generator, the controller key from ours
(umask 077 && nvme gen-dhchap-key --hmac=1 --nqn="$HOSTA" >"$K/host.key") || fail "nvme gen-dhchap-key"
nvlend keyring gen --hmac sha384 "$K/ctrl.key" || fail "keyring gen"
nvlend keyring gen --hmac sha256 "$K/wrong.key" || fail "keyring gen"

truncate -s 64M "$T/ns.img"
start_nvlendd --reactors 2
rpc nvmf_create_transport '{"trtype":"TCP"}' >/dev/null || fail "transport"
rpc bdev_aio_create "{\"name\":\"a0\",\"filename\":\"$T/ns.img\"}" >/dev/null || fail "bdev"
nvlend subsystem create $NQN >/dev/null || fail "subsystem"
nvlend subsystem add-ns $NQN a0 >/dev/null || fail "add-ns"
nvlend keyring add host "$K/host.key" || fail "keyring add host"
nvlend keyring add ctrl "$K/ctrl.key" || fail "keyring add ctrl"
nvlend subsystem add-host $NQN $HOSTA --dhchap-key host || fail "add-host A"
nvlend subsystem add-host $NQN $HOSTB --dhchap-key host --dhchap-ctrlr-key ctrl || fail "add-host B"
nvlend subsystem add-listener $NQN tcp 127.0.0.1 "$PORT" >/dev/null || fail "listener"

S=$T/share
mkdir -p "$S"
cat >"$S/env" <<EOF
NQN=$NQN
PORT=$PORT
HOSTA=$HOSTA
HOSTB=$HOSTB
HOSTIDA=$HOSTIDA
HOSTIDB=$HOSTIDB
HKEY='$(cat "$K/host.key")'
CKEY='$(cat "$K/ctrl.key")'
WRONG='$(cat "$K/wrong.key")'
EOF

guest_run -K bpo -t 840 -s "$S" -f "$GUEST_TOOLS/tests/nvme-tcp-auth-guest.sh" >"$T/guest.log" 2>&1 &
GPID=$!
on_exit "kill $GPID"

# the guest asks for narrower choices between phases
serve_phase() { # serve_phase N DIGEST DHGROUP
	while [ ! -e "$S/want-$1" ] && kill -0 $GPID 2>/dev/null; do sleep 0.2; done
	[ -e "$S/want-$1" ] || return 0
	rpc nvmf_set_config "{\"dhchap_digests\":[\"$2\"],\"dhchap_dhgroups\":[\"$3\"]}" >/dev/null ||
		fail "nvmf_set_config for phase $1"
	touch "$S/phase-$1"
}
serve_phase 2 sha256 null
serve_phase 3 sha384 ffdhe3072
wait $GPID
grc=$?
cat "$T/guest.log"
[ $grc = 0 ] || fail "guest script failed (status $grc)"
grep -q GUEST_ALL_OK "$T/guest.log" || fail "guest did not finish"
for c in modules auth-host wrong-host no-key bidir wrong-ctrl bidir-384; do
	grep -q "CHECK $c ok" "$T/guest.log" || fail "check $c missing"
done
L=$DAEMON_LOG
grep -q "host $HOSTA authenticated (DH-HMAC-CHAP sha512, ffdhe8192)" "$L" ||
	fail "no log of the host-key authentication"
grep -q "DH-HMAC-CHAP with host $HOSTA failed: wrong response (wrong host key)" "$L" ||
	fail "no log of the wrong host key"
grep -q "host $HOSTB authenticated (DH-HMAC-CHAP sha256, null, controller authenticated to the host)" \
	"$L" || fail "no log of the bidirectional authentication"
grep -q "host $HOSTB did not accept the controller's response" "$L" ||
	fail "no log of the host refusing the controller"
grep -q "host $HOSTB authenticated (DH-HMAC-CHAP sha384, ffdhe3072, controller authenticated" "$L" ||
	fail "no log of the SHA-384 / ffdhe3072 authentication"
stop_nvlendd
pass
