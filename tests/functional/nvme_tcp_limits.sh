#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 150
#
# What the NVMe/TCP transport's options make hosts see, on loopback:
#   - max_io_size: the default (131072) is Identify MDTS 5; 100000 is rounded
#     down to 65536, reported so by nvmf_get_transports, and new controllers
#     say MDTS 4; a read or a write one block above it is refused with
#     Invalid Field in Command, DNR, without an R2T (raw peer, tcp_peer.py);
#     values outside 8192..524288 are refused.
#   - initiators follow MDTS: libnvlend (nvlend ns read takes 128 blocks of
#     512 bytes, refuses 129; nvlend-perf refuses --bs=128k), and the
#     nvme_tcp bdev splits larger I/O: a verified 256 KiB nvlend-perf through
#     an SHM re-export of the import reaches the TCP target as 64 KiB
#     commands only.
#   - I/O queues spread over reactors: with --reactors 3 a controller's I/O
#     queues sit on reactors 1 and 2 (nvmf_subsystem_get_qpairs), its admin
#     queue on reactor 0.
source "$(dirname "$0")/common.sh"
requires ss
PY=/usr/bin/python3
[ -x $PY ] || skip "needs /usr/bin/python3"
PEER="$PY $(dirname "$0")/tcp_peer.py"

NQN=nqn.2024-01.io.nvlend:limits
NQNX=nqn.2024-01.io.nvlend:limits-reexport
PORT=$(free_port)
URI="nvme+tcp://127.0.0.1:$PORT/$NQN"
start_nvlendd --reactors 3
max_io_size() {
	rpc nvmf_get_transports |
		$PY -c 'import json,sys; print([t for t in json.load(sys.stdin) if t["trtype"] == "TCP"][0]["max_io_size"])'
}

rpc bdev_malloc_create '{"name":"m0","num_blocks":65536,"block_size":512}' >/dev/null
rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true}" >/dev/null
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"m0\"}}" >/dev/null
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\"}}" >/dev/null

# ---- max_io_size -> MDTS ---------------------------------------------------------------
assert_eq "$(max_io_size)" 131072 "default max_io_size"
$PEER 127.0.0.1 "$PORT" "$NQN" mdts 131072 > "$T/peer.log" 2>&1 || { cat "$T/peer.log"; fail "default MDTS"; }
cat "$T/peer.log"
for bad in 4096 8191 1048576; do
	expect_fail rpc nvmf_create_transport "{\"trtype\":\"TCP\",\"max_io_size\":$bad}"
done
assert_eq "$(max_io_size)" 131072 "max_io_size after refused values"
rpc nvmf_create_transport '{"trtype":"TCP","max_io_size":100000}' >/dev/null || fail "max_io_size 100000"
assert_eq "$(max_io_size)" 65536 "max_io_size in force (100000 rounded down)"
$PEER 127.0.0.1 "$PORT" "$NQN" mdts 65536 > "$T/peer.log" 2>&1 || { cat "$T/peer.log"; fail "MDTS 4"; }
cat "$T/peer.log"

# libnvlend's initiator reads MDTS
nvlend ns read "$URI" --count 128 -o "$T/r128" || fail "ns read of 128 blocks (64 KiB)"
[ "$(stat -c %s "$T/r128")" = 65536 ] || fail "ns read returned $(stat -c %s "$T/r128") bytes"
out=$(nvlend ns read "$URI" --count 129 -o "$T/r129" 2>&1) && fail "ns read of 129 blocks should be refused"
assert_contains "$out" "at most 128 blocks" "nvlend ns read --count 129"
out=$(nvlend-perf "$URI" --bs=128k --io_limit=1M 2>&1) && fail "nvlend-perf --bs=128k above MDTS should be refused"
assert_contains "$out" "above the controller's largest transfer" "nvlend-perf --bs=128k"

# ---- the nvme_tcp bdev imports it (one I/O queue per reactor) ----------------------------
rpc bdev_nvme_attach_controller "{\"name\":\"Imp\",\"trtype\":\"tcp\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\",\"subnqn\":\"$NQN\",\"hostnqn\":\"nqn.2014-08.org.nvmexpress:uuid:11111111-2222-4333-8444-555555555555\"}" > "$T/attach.json" ||
	fail "bdev_nvme_attach_controller"
grep -q Impn1 "$T/attach.json" || fail "no bdev Impn1: $(cat "$T/attach.json")"

# its queues on the target: admin on reactor 0, I/O queues on reactors 1 and 2
rpc nvmf_subsystem_get_qpairs "{\"nqn\":\"$NQN\"}" > "$T/qpairs.json" || fail "get_qpairs"
spread=$($PY - "$T/qpairs.json" <<'PY'
import json, sys
qs = [q for q in json.load(open(sys.argv[1])) if q["hostnqn"].endswith("555555555555")]
adm = sorted(q["reactor"] for q in qs if q["qid"] == 0)
io = sorted(q["reactor"] for q in qs if q["qid"] > 0)
print("admin %s io %s" % (adm, sorted(set(io))), len(io))
PY
)
log "importer's queue pairs: $spread"
case "$spread" in "admin [0] io [1, 2] "[2-9]) ;; *) fail "queue pairs not spread over reactors 1 and 2: $spread" ;; esac

# re-exported over SHM (MDTS 512 KiB there): 256 KiB I/O must be split into 64 KiB commands
rpc nvmf_create_subsystem "{\"nqn\":\"$NQNX\",\"allow_any_host\":true}" >/dev/null
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQNX\",\"namespace\":{\"bdev_name\":\"Impn1\"}}" >/dev/null
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQNX\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"$T/shm.sock\"}}" >/dev/null ||
	fail "SHM listener"
nvlend-perf "nvme+shm://$T/shm.sock?nqn=$NQNX" --rw=randrw --bs=256k --iodepth=4 --verify \
	--io_limit=16M > "$T/perf.log" 2>&1 || { cat "$T/perf.log"; fail "256 KiB I/O through the import"; }
grep -q "verify: .* 0 errors" "$T/perf.log" || { cat "$T/perf.log"; fail "verify through the import"; }
rpc nvmf_subsystem_get_controllers "{\"nqn\":\"$NQN\"}" > "$T/ctrlrs.json" || fail "get_controllers"
sizes=$($PY - "$T/ctrlrs.json" <<'PY'
import json, sys
c = [c for c in json.load(open(sys.argv[1])) if c["hostnqn"].endswith("555555555555")][0]["io"]
print(c["read_cmds"], c["read_bytes"], c["write_cmds"], c["write_bytes"])
PY
)
set -- $sizes
log "the import sent $1 reads ($2 bytes), $3 writes ($4 bytes)"
[ "$1" -gt 0 ] && [ "$3" -gt 0 ] || fail "no reads or writes reached the target: $sizes"
[ "$2" = $(($1 * 65536)) ] && [ "$4" = $(($3 * 65536)) ] ||
	fail "commands from the import are not all 64 KiB: $sizes"

worker_alive || fail "daemon died"
pass
