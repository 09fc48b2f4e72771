#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 180
#
# Misbehaving NVMe/TCP hosts (tcp_peer.py speaks raw PDUs): header digest
# errors, data digest errors, truncated PDUs, PDUs out of order or in the
# wrong direction, bad HLEN, oversized lengths, H2CData without an R2T, a
# host that stops reading. Each must end that connection only (with the
# right C2HTermReq FES), or fail just that command (data digest), while a
# well-behaved host keeps doing verified I/O on the same target. Also: a
# write through R2T with many H2CData PDUs, and the discovery AEN when the
# discovery log changes.
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
# which the raw peer writes)
nvlend-perf "nvme+tcp://127.0.0.1:$PORT/$NQN" --rw=randrw --bs=4k --iodepth=4 --verify \
	--offset=8M --size=16M --runtime=14 > "$T/good.log" 2>&1 &
GOOD=$!
on_exit "kill $GOOD"
sleep 1

for s in hdgst-error ddgst-error truncated before-icreq h2c-without-r2t oversize bad-hlen bad-type \
	r2t-write; do
	$PEER 127.0.0.1 "$PORT" "$NQN" $s > "$T/$s.log" 2>&1 || { cat "$T/$s.log"; fail "scenario $s"; }
	cat "$T/$s.log"
done

# a host that stops reading: its queue goes after ack_timeout (1 s), nothing else does
$PEER 127.0.0.1 "$PORT" "$NQN" stop-reading 4 > "$T/stall.log" 2>&1 || { cat "$T/stall.log"; fail "stop-reading"; }
cat "$T/stall.log"
wait_until 10 grep -q "has not read for 1000 ms" "$DAEMON_LOG" || fail "the stalled queue was not dropped"

# discovery AEN: the log changes while a discovery controller holds an AER
$PEER 127.0.0.1 "$DPORT" "$NQN" discovery-aen \
	"nvlend -s $NVLEND_SOCKET rpc nvmf_create_subsystem '{\"nqn\":\"$NQN2\",\"allow_any_host\":true}' >/dev/null && nvlend -s $NVLEND_SOCKET rpc nvmf_subsystem_add_listener '{\"nqn\":\"$NQN2\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT2\"}}' >/dev/null" \
	> "$T/aen.log" 2>&1 || { cat "$T/aen.log"; fail "discovery AEN"; }
cat "$T/aen.log"
grep -q "NUMREC 3" "$T/aen.log" || fail "discovery log should list 3 entries (discovery, $NQN, $NQN2)"

wait $GOOD || { cat "$T/good.log"; fail "the well-behaved host saw errors"; }
grep -q "verify: .* 0 errors" "$T/good.log" || { cat "$T/good.log"; fail "verify"; }
grep -q "errors: 0" "$T/good.log" || { cat "$T/good.log"; fail "I/O errors"; }
kill -0 "$DAEMON_PID" || fail "daemon died"
pass
