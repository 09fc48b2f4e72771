#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 240
#
# Misbehaving NVMe/TCP hosts (tcp_peer.py speaks raw PDUs): header digest
# errors, data digest errors, truncated PDUs (before Connect and in the
# middle of an I/O queue's capsule), PDUs out of order or in the wrong
# direction, bad HLEN, oversized lengths, H2CData without an R2T, ICReq with
# PFV 1 or HPDA 32, Connect with SQSIZE out of range, a host-sent
# H2CTermReq, a host that goes silent (keep-alive timeout), a host that
# stops reading. Each must end that connection only (with the right
# C2HTermReq FES and FEI, or Connect status), or fail just that command
# (data digest), while a well-behaved host keeps doing verified I/O on the
# same target. After every scenario the daemon holds as many sockets as
# before it and a new client writes and reads back. Also: HPDA honoured
# (C2HData padded to the host's alignment), a write through R2T with many
# H2CData PDUs, and the discovery AEN when the discovery log changes.
source "$(dirname "$0")/common.sh"
requires ss
PY=/usr/bin/python3
[ -x $PY ] || skip "needs /usr/bin/python3"
PEER="$PY $(dirname "$0")/tcp_peer.py"

NQN=nqn.2024-01.io.nvlend:hostile
NQN2=nqn.2024-01.io.nvlend:late
PORT=$(free_port)
DPORT=$(free_port)
PORT2=$(free_port)
start_nvlendd --reactors 2
rpc nvmf_create_transport '{"trtype":"TCP","ack_timeout":1000,"in_capsule_data_size":4096,"io_unit_size":16384}' >/dev/null
rpc bdev_malloc_create '{"name":"m0","num_blocks":65536,"block_size":512}' >/dev/null
rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true}" >/dev/null
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"m0\"}}" >/dev/null
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\"}}" >/dev/null
rpc nvmf_subsystem_add_listener "{\"nqn\":\"nqn.2014-08.org.nvmexpress.discovery\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$DPORT\"}}" >/dev/null

# a well-behaved host doing verified I/O all along (away from the first MiB,
# which the raw peer writes, and from the normal client's blocks at 30 MiB),
# stopped with SIGINT once every scenario ran
nvlend-perf "nvme+tcp://127.0.0.1:$PORT/$NQN" --rw=randrw --bs=4k --iodepth=4 --verify \
	--offset=8M --size=16M --runtime=600 > "$T/good.log" 2>&1 &
GOOD=$!
on_exit "kill $GOOD"
URI="nvme+tcp://127.0.0.1:$PORT/$NQN"
wait_until 10 sh -c "nvlend -s $NVLEND_SOCKET rpc nvmf_subsystem_get_qpairs '{\"nqn\":\"$NQN\"}' | grep -q '\"qid\": 1'" ||
	{ cat "$T/good.log"; fail "the well-behaved host did not connect"; }

# sockets the daemon holds: listeners, RPC, the well-behaved host's two queues
sockets() { find /proc/"$WORKER_PID"/fd -lname 'socket:*' 2>/dev/null | wc -l; }
qpairs() { rpc nvmf_subsystem_get_qpairs "{\"nqn\":\"$NQN\"}" | grep -c '"qid"'; }
BASE_QPAIRS=$(qpairs)
sleep 0.5 # the RPC connection just made is closed on the daemon's side too
BASE_SOCKETS=$(sockets)
[ "$BASE_QPAIRS" = 2 ] || fail "the well-behaved host should have 2 queue pairs, has $BASE_QPAIRS"
# after a scenario: every connection it made is gone (sockets and queue pairs back to
# the baseline), and a new client connects, writes and reads back
settled() { [ "$(sockets)" = "$BASE_SOCKETS" ] && [ "$(qpairs)" = "$BASE_QPAIRS" ]; }
n_client=0
after() {
	wait_until 15 settled ||
		fail "after $1: daemon sockets $(sockets) (baseline $BASE_SOCKETS), queue pairs $(qpairs) (baseline $BASE_QPAIRS)"
	n_client=$((n_client + 1))
	head -c 4096 /dev/urandom > "$T/blk"
	nvlend ns write "$URI" --lba $((61440 + n_client * 8)) < "$T/blk" > "$T/client.log" 2>&1 &&
		nvlend ns read "$URI" --lba $((61440 + n_client * 8)) --count 8 -o "$T/blk.back" >> "$T/client.log" 2>&1 ||
		{ cat "$T/client.log"; fail "after $1: a new client cannot write and read"; }
	cmp -s "$T/blk" "$T/blk.back" || fail "after $1: a new client read back other data"
	log "after $1: sockets and queue pairs back to baseline, a new client works"
}

for s in hdgst-error ddgst-error truncated before-icreq h2c-without-r2t oversize bad-hlen bad-type \
	icreq-pfv icreq-hpda connect-sqsize h2c-term r2t-write "hpda 1" "hpda 7 hdgst" "hpda 31" \
	"hpda 31 hdgst"; do
	$PEER 127.0.0.1 "$PORT" "$NQN" $s > "$T/scen.log" 2>&1 || { cat "$T/scen.log"; fail "scenario $s"; }
	cat "$T/scen.log"
	after "$s"
done

# a host that goes silent: its controller goes after KATO (1.5 s), visible in the RPC
$PEER 127.0.0.1 "$PORT" "$NQN" keep-alive \
	"nvlend -s $NVLEND_SOCKET rpc nvmf_subsystem_get_controllers '{\"nqn\":\"$NQN\"}' | grep -c \"\$1\" || true" \
	> "$T/kato.log" 2>&1 || { cat "$T/kato.log"; fail "keep-alive"; }
cat "$T/kato.log"
grep -q "keep-alive timeout" "$DAEMON_LOG" || fail "the daemon did not log the keep-alive timeout"
after keep-alive

# a host that stops reading: its queue goes after ack_timeout (1 s), nothing else does
$PEER 127.0.0.1 "$PORT" "$NQN" stop-reading 4 > "$T/stall.log" 2>&1 || { cat "$T/stall.log"; fail "stop-reading"; }
cat "$T/stall.log"
wait_until 10 grep -q "has not read for 1000 ms" "$DAEMON_LOG" || fail "the stalled queue was not dropped"
after stop-reading

# discovery AEN: the log changes while a discovery controller holds an AER
$PEER 127.0.0.1 "$DPORT" "$NQN" discovery-aen \
	"nvlend -s $NVLEND_SOCKET rpc nvmf_create_subsystem '{\"nqn\":\"$NQN2\",\"allow_any_host\":true}' >/dev/null && nvlend -s $NVLEND_SOCKET rpc nvmf_subsystem_add_listener '{\"nqn\":\"$NQN2\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT2\"}}' >/dev/null" \
	> "$T/aen.log" 2>&1 || { cat "$T/aen.log"; fail "discovery AEN"; }
cat "$T/aen.log"
grep -q "NUMREC 3" "$T/aen.log" || fail "discovery log should list 3 entries (discovery, $NQN, $NQN2)"
BASE_SOCKETS=$((BASE_SOCKETS + 1)) # the new subsystem's listener on $PORT2
after discovery-aen

kill -INT $GOOD
wait $GOOD || { cat "$T/good.log"; fail "the well-behaved host saw errors"; }
grep -q "verify: .* 0 errors" "$T/good.log" || { cat "$T/good.log"; fail "verify"; }
grep -q "errors: 0" "$T/good.log" || { cat "$T/good.log"; fail "I/O errors"; }
worker_alive || fail "daemon died"
pass
