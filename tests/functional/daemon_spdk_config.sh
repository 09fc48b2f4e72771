#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# SPDK saved configurations (issue 19). spdk_v24.01_nvmf_tgt.json is what
# SPDK v24.01's `rpc.py save_config` wrote for an nvmf_tgt with a malloc and
# an aio bdev exported as two namespaces of a TCP subsystem (only the aio
# file's path and the port are placeholders): framework_set_scheduler,
# sock_impl/iobuf/accel/bdev/bdev_raid/bdev_nvme_set_options,
# bdev_nvme_set_hotplug, bdev_wait_for_examine, nvmf_set_config,
# nvmf_set_max_subsystems, nvmf_set_crdt, nvmf_create_transport with SPDK's
# parameters. Checked: `nvlendd -c` loads it and serves the same namespaces
# (UUIDs, NGUIDs, data through both); nvmf_get_stats, thread_get_stats and
# nbd_get_disks answer in SPDK's shape; nvlend's save_config of it has no SHM
# transport and no nvmf_set_config (neither used). With SPDK's rpc.py (from
# SPDK_DIR; that part skipped when there is none): rpc.py load_config of the
# same file into nvlendd --wait-for-rpc, and nvmf_create_transport with
# what rpc.py sends by default.
# timeout: 60
source "$(dirname "$0")/common.sh"

PORT=$(free_port)
NQN=nqn.2016-06.io.spdk:cnode1
truncate -s 16M "$T/aio.img"
sed -e "s#@AIO@#$T/aio.img#" -e "s#@PORT@#$PORT#" "$(dirname "$0")/spdk_v24.01_nvmf_tgt.json" >"$T/spdk.json"

# what the namespaces must be
check_served() {
	rpc nvmf_get_subsystems >"$T/subs.json"
	/usr/bin/python3 - "$T/subs.json" "$NQN" "$PORT" <<'PY' || fail "namespaces differ from SPDK's ($1)"
import json, sys
subs, nqn, port = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
s = [x for x in subs if x["nqn"] == nqn][0]
assert s["allow_any_host"] is True and s["serial_number"] == "SPDK001", s
assert s["model_number"] == "SPDK bdev Controller", s
ns = {n["nsid"]: n for n in s["namespaces"]}
assert ns[1]["bdev_name"] == "Malloc0" and ns[2]["bdev_name"] == "Aio0", ns
assert ns[1]["uuid"] == "bb4d1d8b-aa2f-4fa0-bcf5-6f6c0061d917", ns
assert ns[1]["nguid"].upper() == "BB4D1D8BAA2F4FA0BCF56F6C0061D917", ns
assert ns[2]["uuid"] == "8e32adec-f64b-40d8-bd2b-0e93e004b6d4", ns
assert [(a["trtype"].upper(), a["traddr"], a["trsvcid"]) for a in s["listen_addresses"]] == [("TCP", "127.0.0.1", port)], s
PY
	# I/O through both namespaces, as a host without a host NQN (spdk_nvme_perf's default)
	for nsid in 1 2; do
		nvlend-perf "nvme+tcp://127.0.0.1:$PORT/$NQN/$nsid" --rw=randrw --bs=4k --iodepth=4 \
			--verify --runtime=1 >"$T/perf$nsid.log" 2>&1 ||
			{ cat "$T/perf$nsid.log" >&2; fail "I/O to namespace $nsid ($1)"; }
	done
	/usr/bin/python3 "$(dirname "$0")/tcp_peer.py" 127.0.0.1 "$PORT" "$NQN" empty-hostnqn accepted ||
		fail "empty host NQN ($1)"
}

start_nvlendd -c "$T/spdk.json"
grep -q "configuration $T/spdk.json applied" "$DAEMON_LOG" || fail "the SPDK configuration was not applied"
check_served "nvlendd -c"
# what SPDK scripts read: nvmf_get_stats, thread_get_stats, nbd_get_disks
nvlend-perf "nvme+tcp://127.0.0.1:$PORT/$NQN/1" --rw=randread --bs=4k --iodepth=8 --runtime=3 \
	>"$T/bg.log" 2>&1 &
bg=$!
wait_until 10 sh -c "nvlend -s $NVLEND_SOCKET rpc nvmf_get_stats | grep -q '\"current_io_qpairs\": 1'" ||
	fail "nvmf_get_stats: no I/O queue pair while one is connected"
rpc thread_get_stats >"$T/t1.json"
sleep 0.5
rpc nvmf_get_stats >"$T/stats.json"
rpc thread_get_stats >"$T/t2.json"
/usr/bin/python3 - "$T/stats.json" "$T/t1.json" "$T/t2.json" <<'PY' || fail "nvmf_get_stats / thread_get_stats"
import json, sys
st, t1, t2 = (json.load(open(p)) for p in sys.argv[1:4])
assert st["tick_rate"] == 10**9 and len(st["poll_groups"]) == 1, st
g = st["poll_groups"][0]
assert g["name"] == "nvmf_tgt_poll_group_000", g
assert g["current_admin_qpairs"] == 1 and g["current_io_qpairs"] == 1, g
assert g["completed_nvme_io"] > 0, g
assert {t["trtype"] for t in g["transports"]} >= {"TCP"}, g
assert t1["tick_rate"] == 10**9 and [t["name"] for t in t2["threads"]] == ["reactor_0"], t2
a, b = t1["threads"][0], t2["threads"][0]
assert b["id"] == 1 and int(b["cpumask"], 16) > 0, b
assert b["busy"] > a["busy"], (a, b)   # serving I/O
assert b["busy"] + b["idle"] - a["busy"] - a["idle"] >= 0.4e9, (a, b)   # 0.5 s went by
PY
wait $bg || { cat "$T/bg.log" >&2; fail "I/O during the statistics"; }
assert_eq "$(rpc nbd_get_disks)" "[]" "nbd_get_disks"
err=$(rpc nbd_get_disks '{"nbd_device": "/dev/nbd0"}' 2>&1) && fail "nbd_get_disks of a device served nowhere"
assert_contains "$err" "(error -19)" "nbd_get_disks of a device served nowhere"
# nvlend's own save_config of it: only what SPDK has (no SHM transport, no
# DH-HMAC-CHAP lists SPDK v24.01's nvmf_set_config would refuse)
nvlend save-config -o "$T/nvl.json" >/dev/null
/usr/bin/python3 - "$T/nvl.json" <<'PY' || fail "nvlend's saved configuration"
import json, sys
calls = [c for s in json.load(open(sys.argv[1]))["subsystems"] for c in (s["config"] or [])]
tr = [c["params"]["trtype"] for c in calls if c["method"] == "nvmf_create_transport"]
assert tr == ["TCP"], tr
assert "nvmf_set_config" not in [c["method"] for c in calls], calls
PY
stop_nvlendd
# an SHM listener (or SHM options) brings the SHM entry back
start_nvlendd
rpc nvmf_create_transport '{"trtype": "SHM", "max_queue_depth": 256}' >/dev/null
nvlend save-config -o "$T/shm.json" >/dev/null
grep -q '"SHM"' "$T/shm.json" || fail "SHM options changed but not saved"
grep -q '"TCP"' "$T/shm.json" && fail "unused TCP transport with default options saved"
stop_nvlendd

SPDK_DIR=${SPDK_DIR:-/work/spdk-build/spdk}
RPC_PY=$SPDK_DIR/scripts/rpc.py
[ -f "$RPC_PY" ] || skip "SPDK's rpc.py not found (set SPDK_DIR to an SPDK v24.01+ checkout)"
rpcpy() { /usr/bin/python3 "$RPC_PY" -s "$NVLEND_SOCKET" "$@"; }

start_nvlendd --wait-for-rpc
rpcpy load_config -j "$T/spdk.json" || fail "rpc.py load_config"
check_served "rpc.py load_config"
# the first line of nearly every SPDK NVMe/TCP script, as rpc.py sends it
rpcpy nvmf_create_transport -t TCP -u 16384 -m 8 -c 8192 || fail "rpc.py nvmf_create_transport"
rpcpy bdev_wait_for_examine || fail "rpc.py bdev_wait_for_examine"
rpcpy framework_set_scheduler static || fail "rpc.py framework_set_scheduler"
# SPDK takes these only before framework_start_init; here they mean nothing, so
# they are taken at any time (never refused)
rpcpy nvmf_set_max_subsystems -x 64 || fail "rpc.py nvmf_set_max_subsystems"
rpcpy nvmf_set_crdt -t1 1 || fail "rpc.py nvmf_set_crdt"
rpcpy sock_impl_set_options -i posix --enable-zerocopy-send-server || fail "rpc.py sock_impl_set_options"
err=$(rpc bdev_set_options '{"bdev_io_pool_size": "x"}' 2>&1) && fail "an ignored parameter of the wrong type accepted"
assert_contains "$err" "'bdev_io_pool_size' must be" "type check of an ignored parameter"
stop_nvlendd
pass
