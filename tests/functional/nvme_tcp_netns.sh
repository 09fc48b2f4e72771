#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 180
#
# Two hosts with their own addresses (two network namespaces joined by a
# veth pair, made here): a target node serving a file-backed namespace over
# NVMe/TCP on IPv4 and IPv6, and a host node where
#   - nvlend-perf (libnvlend's initiator) does verified I/O over IPv4 and IPv6;
#   - a second nvlendd imports the namespace as an nvme_tcp bdev (IPv6,
#     digests on) and re-exports it; verified I/O through that node keeps
#     going while the target node restarts (queued, retried, no error);
#   - a second import with fast_io_fail_timeout_sec=1, ctrlr_loss_timeout_sec=3
#     fails its I/O once the target is gone and is given up after 3 s (it
#     stays failed until detached), while the first one keeps waiting.
source "$(dirname "$0")/common.sh"
requires_root
requires ip
ip netns add "nvlt-probe-$$" 2>/dev/null || skip "cannot create network namespaces here"
ip netns del "nvlt-probe-$$"

NT=nvlt-t-$$
NH=nvlt-h-$$
SUB=$((RANDOM % 200 + 20)).$((RANDOM % 250))
V4T=10.$SUB.1
V4H=10.$SUB.2
V6T=fd00:$((RANDOM % 9000 + 1000))::1
V6H=${V6T%1}2
ip netns add $NT
on_exit "ip netns del $NT"
ip netns add $NH
on_exit "ip netns del $NH"
ip link add "vt$$" netns $NT type veth peer name "vh$$" netns $NH || fail "veth"
ip -n $NT addr add $V4T/24 dev "vt$$"
ip -n $NH addr add $V4H/24 dev "vh$$"
ip -n $NT addr add $V6T/64 dev "vt$$" nodad
ip -n $NH addr add $V6H/64 dev "vh$$" nodad
for n in $NT $NH; do ip -n $n link set lo up; done
ip -n $NT link set "vt$$" up
ip -n $NH link set "vh$$" up

NQN=nqn.2024-01.io.nvlend:netns
NQNB=nqn.2024-01.io.nvlend:imported
NQNF=nqn.2024-01.io.nvlend:fastfail
PORT=4420
truncate -s 64M "$T/ns.img"

# ---- the target node -----------------------------------------------------------
target_up() {
	NVLEND_SOCKET_OVERRIDE=$T/target.sock
	_start_in $NT --reactors 2
	TPID=$DAEMON_PID
	TLOG=$DAEMON_LOG
	rpct bdev_aio_create "{\"name\":\"f0\",\"filename\":\"$T/ns.img\",\"uuid\":\"5a5a5a5a-1111-4222-8333-444444444444\"}"
	rpct nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true}"
	rpct nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"f0\"}}"
	rpct nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"adrfam\":\"IPv4\",\"traddr\":\"$V4T\",\"trsvcid\":\"$PORT\"}}"
	rpct nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"adrfam\":\"IPv6\",\"traddr\":\"$V6T\",\"trsvcid\":\"$PORT\"}}"
}
rpct() { nvlend -s "$T/target.sock" rpc "$@" >/dev/null || fail "target rpc $1"; }
rpch() { nvlend -s "$T/host.sock" rpc "$@"; }
# start a daemon inside a namespace (the RPC socket is a file: reachable from here)
_start_in() {
	local ns=$1
	shift
	_daemon_n=$((_daemon_n + 1))
	DAEMON_LOG=$T/nvlendd$_daemon_n.log
	ip netns exec "$ns" "$BIN/nvlendd" -s "$NVLEND_SOCKET_OVERRIDE" "$@" >>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	on_exit "stop_daemon_pid $DAEMON_PID"
	wait_until 10 nvlend -s "$NVLEND_SOCKET_OVERRIDE" -t 1 rpc nvlend_get_version ||
		{ cat "$DAEMON_LOG"; fail "nvlendd did not come up in $ns"; }
}
target_up

# ---- libnvlend's initiator from the other host, IPv4 and IPv6 ----------------------
for a in "$V4T" "[$V6T]"; do
	ip netns exec $NH "$BIN/nvlend-perf" "nvme+tcp://$a:$PORT/$NQN" --rw=randrw --bs=16k \
		--iodepth=16 --numjobs=2 --verify --io_limit=8M > "$T/perf.log" 2>&1 ||
		{ cat "$T/perf.log"; fail "nvlend-perf over $a"; }
	grep -q "verify: .* 0 errors" "$T/perf.log" || { cat "$T/perf.log"; fail "verify over $a"; }
	log "nvlend-perf over $a: $(grep -c 'IOPS' "$T/perf.log") directions, verify clean"
done

# ---- a second node imports the namespace (nvme_tcp bdev) and re-exports it -------------
NVLEND_SOCKET_OVERRIDE=$T/host.sock
_start_in $NH --reactors 2
HPID=$DAEMON_PID
HLOG=$DAEMON_LOG
rpch bdev_nvme_attach_controller "{\"name\":\"Imp0\",\"trtype\":\"tcp\",\"adrfam\":\"IPv6\",\"traddr\":\"$V6T\",\"trsvcid\":\"$PORT\",\"subnqn\":\"$NQN\",\"hdgst\":true,\"ddgst\":true,\"num_io_queues\":3,\"reconnect_delay_sec\":1}" > "$T/attach.json" ||
	fail "bdev_nvme_attach_controller"
grep -q Imp0n1 "$T/attach.json" || fail "no bdev Imp0n1: $(cat "$T/attach.json")"
rpch bdev_nvme_attach_controller "{\"name\":\"Fast0\",\"trtype\":\"tcp\",\"traddr\":\"$V4T\",\"trsvcid\":\"$PORT\",\"subnqn\":\"$NQN\",\"reconnect_delay_sec\":1,\"fast_io_fail_timeout_sec\":1,\"ctrlr_loss_timeout_sec\":3}" >/dev/null ||
	fail "second attach"
for pair in "$NQNB Imp0n1" "$NQNF Fast0n1"; do
	set -- $pair
	rpch nvmf_create_subsystem "{\"nqn\":\"$1\",\"allow_any_host\":true}" >/dev/null
	rpch nvmf_subsystem_add_ns "{\"nqn\":\"$1\",\"namespace\":{\"bdev_name\":\"$2\"}}" >/dev/null
	rpch nvmf_subsystem_add_listener "{\"nqn\":\"$1\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\"}}" >/dev/null
done
rpch bdev_get_bdevs '{"name":"Imp0n1"}' | grep_q '"num_blocks": 131072' || fail "Imp0n1 geometry"

# verified I/O through the importing node, with the target restarting in the middle
ip netns exec $NH "$BIN/nvlend-perf" "nvme+tcp://127.0.0.1:$PORT/$NQNB" --rw=randrw --bs=4k \
	--iodepth=8 --numjobs=2 --verify --size=32M --runtime=9 > "$T/through.log" 2>&1 &
PERF=$!
on_exit "kill $PERF"
sleep 2
log "stopping the target node"
stop_daemon_pid $TPID || fail "target did not stop cleanly"
sleep 2.5
# by now Fast0 fails its I/O (fast_io_fail 1 s) while Imp0 queues it
ip netns exec $NH "$BIN/nvlend-perf" "nvme+tcp://127.0.0.1:$PORT/$NQNF" --rw=read --bs=4k \
	--iodepth=1 --runtime=1 > "$T/fast.log" 2>&1 && { cat "$T/fast.log"; fail "I/O to Fast0n1 should fail while the target is down"; }
log "fast-io-fail: $(grep -m1 -iE "failed|errors" "$T/fast.log")"
wait_until 5 sh -c "nvlend -s $T/host.sock rpc bdev_nvme_get_controllers '{\"name\":\"Fast0\"}' | grep -q '\"state\": \"failed\"'" ||
	fail "Fast0 not given up after ctrlr_loss_timeout_sec"
rpch bdev_nvme_get_controllers '{"name":"Imp0"}' | grep_q -E '"state": "(waiting to reconnect|reconnecting|resetting)"' ||
	fail "Imp0 should still be trying: $(rpch bdev_nvme_get_controllers '{"name":"Imp0"}')"
log "restarting the target node"
target_up
wait $PERF || { cat "$T/through.log"; fail "I/O through the importing node failed across the restart"; }
cat "$T/through.log" >&2
grep -q "verify: .* 0 errors" "$T/through.log" || fail "verify through the importing node"
grep -q "errors: 0" "$T/through.log" || fail "I/O errors through the importing node"
grep -q "Imp0: reconnected" "$HLOG" || fail "no reconnect logged"
rpch bdev_nvme_get_controllers '{"name":"Imp0"}' | grep_q '"reconnects": 1' || fail "reconnect count"

# detach: refused while exported, accepted once the subsystem is gone
expect_fail nvlend -s "$T/host.sock" rpc bdev_nvme_detach_controller '{"name":"Imp0"}'
rpch nvmf_delete_subsystem "{\"nqn\":\"$NQNB\"}" >/dev/null
rpch bdev_nvme_detach_controller '{"name":"Imp0"}' >/dev/null || fail "detach"
rpch bdev_get_bdevs | grep_q Imp0n1 && fail "Imp0n1 still there after detach"
pass
