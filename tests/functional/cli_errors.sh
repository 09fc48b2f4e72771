#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# One vocabulary, one answer per failure (first-hour issue, item 6): the same
# connect failure reads the same in nvlend (ns info, attach), nvlend-perf
# and libnvlend's nvl_strerror(), and exits with the same status:
#   nothing listens on the port          -> 4 "nothing listens at that address and port"
#   the subsystem is not on that listener -> 4 "the subsystem does not listen at that address"
#   a wrong NQN                          -> 5 "no such subsystem"
#   a host the subsystem does not allow  -> 5 "this host is not allowed on that subsystem"
#   a shm socket that does not exist     -> 4 "no such socket"
#   a namespace that is not active       -> 5 "no such namespace"
#   a malformed URI                      -> 2 "invalid URI"
#   nvme+rdma without an RDMA device     -> 4 "no RDMA device (is rdma_rxe / ...)"
#     (and nvme attach / nvme discover start over nvme+rdma say so too)
# over TCP and shm alike; the target's own reason follows in parentheses.
# The CLI without a daemon says "no such socket" for a missing RPC socket.
# timeout: 120
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
source "$(dirname "$0")/attach_common.sh"
cd "$T" || fail "cd"
start_nvlendd
P=$(free_port) || fail "no free port"
P2=$(free_port) || fail "no free port"
Q=nqn.2026-01.io.nvlend.test
nvlend bdev create ram r0 8M >/dev/null || fail "bdev"
nvlend subsystem create $Q:open --allow-any-host >/dev/null || fail "create open"
nvlend subsystem add-ns $Q:open r0 >/dev/null || fail "add-ns"
nvlend subsystem create $Q:closed >/dev/null || fail "create closed"
nvlend subsystem create $Q:elsewhere --allow-any-host >/dev/null || fail "create elsewhere"
for s in open closed; do
	nvlend subsystem add-listener $Q:$s tcp 127.0.0.1 "$P" >/dev/null || fail "tcp listener $s"
	nvlend subsystem add-listener $Q:$s shm "$T/shm.sock" >/dev/null || fail "shm listener $s"
done

# check URI STATUS PHRASE [REASON]: every tool says PHRASE (and REASON) and exits STATUS
check() {
	local uri=$1 want=$2 phrase=$3 reason=${4:-} out rc tool
	for tool in perf ns attach; do
		case $tool in
		perf) out=$(timeout 30 "$BIN/nvlend-perf" "$uri" --runtime=1 2>&1) ;;
		ns) out=$(timeout 30 nvlend ns info "$uri" 2>&1) ;;
		attach)
			[ -n "$ATTACH_OK" ] || continue
			out=$(timeout 30 nvlend attach "$uri" --via fuse 2>&1)
			;;
		esac
		rc=$?
		[ "$rc" = "$want" ] || fail "$tool $uri: exit $rc, expected $want ($out)"
		assert_contains "$out" "$phrase" "$tool $uri"
		[ -z "$reason" ] || assert_contains "$out" "$reason" "$tool $uri (target's reason)"
		case "$out" in *"Invalid argument"* | *"Input/output error"*) fail "$tool $uri: libc text: $out" ;; esac
	done
}
ATTACH_OK=
if [ "$(id -u)" = 0 ] && [ -w /dev/fuse ] && [ -w /dev/loop-control ]; then
	export NVLEND_ATTACH_DIR=$T/attach
	mkdir -p "$NVLEND_ATTACH_DIR"
	on_exit attach_cleanup
	ATTACH_OK=1
else
	log "no FUSE/loop devices here: checking nvlend-perf and nvlend ns only"
fi

log "TCP"
check "nvme+tcp://127.0.0.1:$P2/$Q:open" 4 "nothing listens at that address and port"
check "nvme+tcp://127.0.0.1:$P/$Q:elsewhere" 4 "the subsystem does not listen at that address" \
	"restart discovery"
check "nvme+tcp://127.0.0.1:$P/$Q:nope" 5 "no such subsystem"
check "nvme+tcp://127.0.0.1:$P/$Q:closed" 5 "this host is not allowed on that subsystem"
check "nvme+tcp://127.0.0.1:$P/$Q:open/7" 5 "no such namespace"
check "nvme+tcp:/127.0.0.1/$Q:open" 2 "invalid URI"
log "shm"
check "nvme+shm://$T/nosock?nqn=$Q:open" 4 "no such socket"
check "nvme+shm://$T/shm.sock?nqn=$Q:elsewhere" 4 "the subsystem does not listen at that address" \
	"does not listen on SHM $T/shm.sock"
check "nvme+shm://$T/shm.sock?nqn=$Q:nope" 5 "no such subsystem"
check "nvme+shm://$T/shm.sock?nqn=$Q:closed" 5 "this host is not allowed on that subsystem"
check "nvme+shm://$T/shm.sock?nqn=$Q:open&nsid=7" 5 "no such namespace"
if [ -z "$(ls /sys/class/infiniband 2>/dev/null)" ]; then
	log "RDMA (no RDMA device here)"
	check "nvme+rdma://127.0.0.1:$P/$Q:open" 4 "no RDMA device (is rdma_rxe / a NIC driver loaded?)"
	out=$(nvlend nvme attach rd "nvme+rdma://127.0.0.1:$P/$Q:open" 2>&1) && fail "nvme attach without RDMA: $out"
	assert_contains "$out" "no RDMA device" "nvme attach without an RDMA device"
	out=$(nvlend nvme discover start rdisc "nvme+rdma://127.0.0.1:$P" 2>&1) &&
		fail "nvme discover start without RDMA: $out"
	assert_contains "$out" "no RDMA device" "nvme discover start without an RDMA device"
	assert_eq "$(nvlend rpc bdev_nvme_get_discovery_info | tr -d ' \n')" "[]" \
		"a discovery service left behind"
fi
# no attachment was left behind by any failure
[ -z "$ATTACH_OK" ] || assert_eq "$(nvlend attachments | tail -n +2)" "none" "attachments after failures"

# the daemon logged the refusals as such
grep_q "not a listener of this subsystem" <"$DAEMON_LOG" || fail "listener refusal not logged"

# the RPC socket: missing vs. left behind by a dead daemon
out=$(nvlend -s "$T/missing.sock" status 2>&1)
assert_eq "$?" 3 "status without a socket"
assert_contains "$out" "no such socket: $T/missing.sock" "missing RPC socket"
/usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/stale.sock"
out=$(nvlend -s "$T/stale.sock" status 2>&1)
assert_eq "$?" 3 "status on a stale socket"
assert_contains "$out" "no daemon answers on the socket left at $T/stale.sock" "stale RPC socket"

# both tools document the same statuses
for h in "$("$BIN/nvlend-perf" --help)" "$(nvlend --help)"; do
	assert_contains "$h" "4 the target is not reachable" "EXIT STATUS"
	assert_contains "$h" "5 the target refused" "EXIT STATUS"
done
pass
