#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 300
# asan: no
#
# nvlend's initiators against a target nobody on this project wrote: the
# Linux kernel's nvmet-tcp, running in a QEMU guest (Debian's kernel) and
# forwarded to a host port. libnvlend (nvlend-perf) does verified I/O with
# header and data digests, `nvlend discover` reads nvmet's discovery log;
# nvlendd imports the namespace as an nvme_tcp bdev
# and verified I/O goes through it (re-exported over NVMe/TCP on loopback).
source "$(dirname "$0")/common.sh"
requires ss
guest_prepare

NQN=nqn.2014-08.org.example:ref-target
S=$T/share
mkdir -p "$S"
P=$(free_port)
TARGET_SECS=200 guest_run -c 1 -m 1024 -t 240 -s "$S" -p "$P:4420" \
	-f "$GUEST_TOOLS/tests/nvmet-target-guest.sh" > "$T/nvmet.log" 2>&1 &
G=$!
on_exit "kill $G"
on_exit "touch $S/target-stop"
for _ in $(seq 600); do
	[ -e "$S/target-ready" ] && break
	kill -0 $G 2>/dev/null || { cat "$T/nvmet.log"; fail "the nvmet guest died"; }
	sleep 0.2
done
[ -e "$S/target-ready" ] || fail "nvmet target not ready"
sleep 0.5

# nvlend discover (libnvlend, userspace) reads nvmet's discovery log
nvlend discover "127.0.0.1:$P" > "$T/discover.log" 2>&1 ||
	{ cat "$T/discover.log"; fail "nvlend discover against nvmet"; }
cat "$T/discover.log" >&2
grep -q "^subnqn:  $NQN$" "$T/discover.log" || fail "nvmet's subsystem not in its discovery log"
grep -q "^subtype: nvme subsystem$" "$T/discover.log" || fail "discover: subtype"
grep -q "^trsvcid: 4420$" "$T/discover.log" || fail "discover: nvmet's port"
grep -q "^Discovery Log Number of Records [1-9]" "$T/discover.log" || fail "discover: record count"

# libnvlend against nvmet, digests on (an emulated CPU serves: keep it small)
NVLEND_TCP_DIGESTS=header,data nvlend-perf "nvme+tcp://127.0.0.1:$P/$NQN" --rw=randrw \
	--bs=16k --iodepth=8 --verify --size=32M --io_limit=4M > "$T/perf.log" 2>&1 ||
	{ cat "$T/perf.log"; fail "nvlend-perf against nvmet"; }
cat "$T/perf.log" >&2
grep -q "verify: .* 0 errors" "$T/perf.log" || fail "verify against nvmet"

# nvlendd imports it (bdev) and serves it again
start_nvlendd --reactors 2
LP=$(free_port)
rpc bdev_nvme_attach_controller "{\"name\":\"Ref0\",\"trtype\":\"tcp\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$P\",\"subnqn\":\"$NQN\",\"ddgst\":true,\"num_io_queues\":2}" > "$T/attach.json" ||
	fail "bdev_nvme_attach_controller to nvmet"
grep -q Ref0n1 "$T/attach.json" || fail "no bdev: $(cat "$T/attach.json")"
rpc bdev_get_bdevs '{"name":"Ref0n1"}' | grep_q '"num_blocks": 524288' || fail "geometry of Ref0n1"
rpc nvmf_create_subsystem '{"nqn":"nqn.2024-01.io.nvlend:reexport","allow_any_host":true}' >/dev/null
rpc nvmf_subsystem_add_ns '{"nqn":"nqn.2024-01.io.nvlend:reexport","namespace":{"bdev_name":"Ref0n1"}}' >/dev/null
rpc nvmf_subsystem_add_listener "{\"nqn\":\"nqn.2024-01.io.nvlend:reexport\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$LP\"}}" >/dev/null
nvlend-perf "nvme+tcp://127.0.0.1:$LP/nqn.2024-01.io.nvlend:reexport" --rw=randrw --bs=64k \
	--iodepth=4 --numjobs=2 --verify --offset=64M --size=32M --io_limit=4M > "$T/through.log" 2>&1 ||
	{ cat "$T/through.log"; fail "I/O through the imported nvmet namespace"; }
cat "$T/through.log" >&2
grep -q "verify: .* 0 errors" "$T/through.log" || fail "verify through the import"
rpc nvmf_delete_subsystem '{"nqn":"nqn.2024-01.io.nvlend:reexport"}' >/dev/null
rpc bdev_nvme_detach_controller '{"name":"Ref0"}' >/dev/null || fail "detach"
touch "$S/target-stop"
wait $G
pass
