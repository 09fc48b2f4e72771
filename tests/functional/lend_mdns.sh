#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 120
#
# mDNS advertisement of a lender's discovery controller (TP 8009, as
# nvme-stas looks for it): avahi-daemon runs in the lender's network
# namespace (no D-Bus, its static services directory and /run private to
# it), `nvlend lend listen --mdns` puts the static service there, and a host
# in another namespace that queries _nvme-disc._tcp.local over multicast
# finds the discovery port with TXT p=tcp and the discovery NQN; the advert
# goes when the lender listens without --mdns and when it stops. Without an
# avahi services directory, --mdns is refused with the reason.
source "$(dirname "$0")/common.sh"
requires_root
requires ip unshare avahi-daemon /usr/bin/python3
ip netns add "nvlt-probe-$$" 2>/dev/null || skip "cannot create network namespaces here"
ip netns del "nvlt-probe-$$"

NL=nvlt-ml-$$
NB=nvlt-mb-$$
SUB=10.$((RANDOM % 200 + 20)).$((RANDOM % 250))
for n in $NL $NB; do
	ip netns add $n
	on_exit "ip netns del $n"
	ip -n $n link set lo up
done
ip link add "ml$$" netns $NL type veth peer name "mb$$" netns $NB || fail veth
ip -n $NL addr add $SUB.1/24 dev "ml$$"
ip -n $NB addr add $SUB.2/24 dev "mb$$"
ip -n $NL link set "ml$$" up multicast on
ip -n $NB link set "mb$$" up multicast on
ip -n $NL route add 224.0.0.0/4 dev "ml$$"
ip -n $NB route add 224.0.0.0/4 dev "mb$$"

mkdir -p "$T/services"
cat > "$T/avahi.conf" <<EOT
[server]
host-name=nvlt-lender-$$
use-ipv4=yes
use-ipv6=no
enable-dbus=no
allow-interfaces=ml$$
[publish]
publish-hinfo=no
publish-workstation=no
EOT
ip netns exec $NL unshare -m sh -c "mount -t tmpfs tmpfs /run && mkdir -p /run/avahi-daemon &&
	mount --bind '$T/services' /etc/avahi/services &&
	exec avahi-daemon -f '$T/avahi.conf' --no-drop-root --no-chroot --no-rlimits" \
	>"$T/avahi.log" 2>&1 &
APID=$!
on_exit "kill $APID"
wait_until 10 grep -q "Server startup complete" "$T/avahi.log" ||
	{ cat "$T/avahi.log" >&2; fail "avahi-daemon did not start in the namespace"; }

nvlend lend keygen "$T/key" >/dev/null
DPORT=$((8000 + RANDOM % 1000))
NVLEND_SOCKET_OVERRIDE=$T/l.sock
DAEMON_LOG=$T/lender.log
ip netns exec $NL "$BIN/nvlendd" -s "$T/l.sock" --state-dir "$T/state" --node-name lender \
	--cluster-key "$T/key" --avahi-services-dir "$T/services" >>"$DAEMON_LOG" 2>&1 &
LPID=$!
on_exit "stop_daemon_pid $LPID"
wait_until 10 nvlend -s "$T/l.sock" -t 1 rpc nvlend_get_version || fail "nvlendd did not come up"
L() { ip netns exec $NL "$BIN/nvlend" -s "$T/l.sock" "$@"; }
query() { ip netns exec $NB "$TOP/tests/functional/mdns_query.py" _nvme-disc._tcp.local "$@"; }

query 2 >/dev/null && fail "something answers before the lender advertises"
L lend listen $SUB.1 --discovery-port $DPORT --mdns >/dev/null || fail "listen --mdns"
[ -f "$T/services/nvlend-lender.service" ] || fail "no static service written"
wait_until 10 grep -q "nvlend lender.*successfully established" "$T/avahi.log" ||
	{ cat "$T/avahi.log" >&2; fail "avahi did not take the service"; }
out=$(query 5) || fail "no mDNS answer for _nvme-disc._tcp"
log "found: $out"
assert_contains "$out" "nvlend lender._nvme-disc._tcp.local $DPORT"
assert_contains "$out" "p=tcp"
assert_contains "$out" "nqn=nqn.2014-08.org.nvmexpress.discovery"

log "withdrawn without --mdns and at shutdown"
L lend listen $SUB.1 --discovery-port $DPORT >/dev/null || fail "listen without --mdns"
[ -f "$T/services/nvlend-lender.service" ] && fail "the advert stayed"
L lend listen $SUB.1 --discovery-port $DPORT --mdns >/dev/null || fail "listen --mdns again"
stop_daemon_pid $LPID || fail "lender did not stop cleanly"
[ -f "$T/services/nvlend-lender.service" ] && fail "the advert outlived the daemon"
wait_until 10 sh -c "! ip netns exec $NB $TOP/tests/functional/mdns_query.py _nvme-disc._tcp.local 1" ||
	fail "still answered after the lender stopped"

log "no avahi directory: refused with the reason"
ip netns exec $NL "$BIN/nvlendd" -s "$T/l2.sock" --state-dir "$T/state2" --node-name l2 \
	--cluster-key "$T/key" --avahi-services-dir "$T/nowhere" >>"$T/l2.log" 2>&1 &
on_exit "stop_daemon_pid $!"
wait_until 10 nvlend -s "$T/l2.sock" -t 1 rpc nvlend_get_version || fail "second nvlendd"
out=$(ip netns exec $NL "$BIN/nvlend" -s "$T/l2.sock" lend listen $SUB.1 --port 4431 \
	--discovery-port $((DPORT + 1)) --mdns 2>&1) && fail "--mdns without avahi accepted"
assert_contains "$out" "is avahi-daemon installed"
pass
