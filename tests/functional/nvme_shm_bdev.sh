#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 180
# The nvme bdev over shm (the host core's bdev face with the shm transport):
# a second nvlendd imports a namespace that the first serves on its shm
# listener (bdev_nvme_attach_controller trtype "shm"), re-exports it over
# shm, and verified I/O through the importer survives kill -9 and a restart
# of the serving daemon from its saved configuration (a file bdev: nothing
# acknowledged is lost; the importer keeps and resubmits what was in
# flight). get_controllers and the log show the reconnect, save_config
# recreates the controller, and detaching is refused while the bdev is
# exported.
source "$(dirname "$0")/common.sh"

img=/dev/shm/nvlt-$$-shmbdev.img
truncate -s 64M "$img"
on_exit "rm -f $img"
NQN=nqn.2026-01.io.nvlend.test:shmbdev
RNQN=nqn.2026-01.io.nvlend.test:reexport

start_nvlendd
TSOCK=$NVLEND_SOCKET
TPID=$DAEMON_PID
nvlend -s "$TSOCK" bdev create file f0 "$img" >/dev/null || fail "file bdev"
nvlend -s "$TSOCK" rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true}" \
	>/dev/null || fail "subsystem"
nvlend -s "$TSOCK" rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"f0\"}}" \
	>/dev/null || fail "ns"
nvlend -s "$TSOCK" rpc nvmf_subsystem_add_listener \
	"{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"$T/t.sock\"}}" \
	>/dev/null || fail "listener"
nvlend -s "$TSOCK" save-config >"$T/target.json" || fail "save-config"

start_nvlendd --reactors 2
HSOCK=$NVLEND_SOCKET
HLOG=$DAEMON_LOG
hrpc() { nvlend -s "$HSOCK" rpc "$@"; }
hrpc bdev_nvme_attach_controller "{\"name\":\"Shm0\",\"trtype\":\"shm\",\"traddr\":\"$T/t.sock\",\"subnqn\":\"$NQN\",\"num_io_queues\":3,\"reconnect_delay_sec\":1}" \
	>"$T/attach.json" || fail "bdev_nvme_attach_controller over shm"
grep -q Shm0n1 "$T/attach.json" || fail "no bdev Shm0n1: $(cat "$T/attach.json")"
hrpc bdev_get_bdevs '{"name":"Shm0n1"}' | grep_q '"num_blocks": 131072' || fail "Shm0n1 geometry"
hrpc bdev_nvme_get_controllers '{"name":"Shm0"}' >"$T/ctrlr.json"
grep -q '"trtype": "SHM"' "$T/ctrlr.json" || fail "trtype: $(cat "$T/ctrlr.json")"
grep -q '"num_io_queues": 3' "$T/ctrlr.json" || fail "queues: $(cat "$T/ctrlr.json")"
# the target sees one controller with three I/O queues
nvlend -s "$TSOCK" rpc nvmf_subsystem_get_qpairs "{\"nqn\":\"$NQN\"}" | grep -c '"qid"' |
	grep -qx 4 || fail "target qpairs: $(nvlend -s "$TSOCK" rpc nvmf_subsystem_get_qpairs "{\"nqn\":\"$NQN\"}")"
hrpc save_config | grep_q '"trtype": "shm"' || fail "save_config lacks the shm controller"
# a listener path that is not absolute is refused
expect_fail nvlend -s "$HSOCK" rpc bdev_nvme_attach_controller \
	"{\"name\":\"Bad\",\"trtype\":\"shm\",\"traddr\":\"rel.sock\",\"subnqn\":\"$NQN\"}"

hrpc nvmf_create_subsystem "{\"nqn\":\"$RNQN\",\"allow_any_host\":true}" >/dev/null
hrpc nvmf_subsystem_add_ns "{\"nqn\":\"$RNQN\",\"namespace\":{\"bdev_name\":\"Shm0n1\"}}" >/dev/null
hrpc nvmf_subsystem_add_listener \
	"{\"nqn\":\"$RNQN\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"$T/h.sock\"}}" >/dev/null

log "verified I/O through the importer, the serving daemon killed and restarted"
"$BIN/nvlend-perf" "nvme+shm://$T/h.sock?nqn=$RNQN" --rw=randrw --bs=4k --iodepth=8 --numjobs=2 \
	--verify --size=16M --runtime=8 >"$T/perf.log" 2>&1 &
PERF=$!
on_exit "kill $PERF"
sleep 2
kill -KILL "$TPID"
wait "$TPID" 2>/dev/null
wait_until 5 sh -c "nvlend -s $HSOCK rpc bdev_nvme_get_controllers '{\"name\":\"Shm0\"}' | grep -qE '\"state\": \"(waiting to reconnect|reconnecting)\"'" ||
	fail "Shm0 did not notice: $(hrpc bdev_nvme_get_controllers '{"name":"Shm0"}')"
sleep 1
NVLEND_SOCKET_OVERRIDE=$TSOCK start_nvlendd -c "$T/target.json"
unset NVLEND_SOCKET_OVERRIDE
wait $PERF || { cat "$T/perf.log"; fail "I/O through the importer failed across the restart"; }
cat "$T/perf.log" >&2
grep -q "verify: .* 0 errors" "$T/perf.log" || fail "verify through the importer"
grep -q "errors: 0" "$T/perf.log" || fail "I/O errors through the importer"
grep -q "Shm0: reconnected" "$HLOG" || fail "no reconnect logged"
hrpc bdev_nvme_get_controllers '{"name":"Shm0"}' >"$T/ctrlr.json"
grep -q '"reconnects": 1' "$T/ctrlr.json" || fail "reconnect count: $(cat "$T/ctrlr.json")"
grep -q '"state": "ready"' "$T/ctrlr.json" || fail "state: $(cat "$T/ctrlr.json")"

# detach: refused while exported, accepted once the subsystem is gone
expect_fail nvlend -s "$HSOCK" rpc bdev_nvme_detach_controller '{"name":"Shm0"}'
hrpc nvmf_delete_subsystem "{\"nqn\":\"$RNQN\"}" >/dev/null
hrpc bdev_nvme_detach_controller '{"name":"Shm0"}' >/dev/null || fail "detach"
hrpc bdev_get_bdevs | grep_q Shm0n1 && fail "Shm0n1 still there after detach"
wait_until 5 sh -c "[ \"\$(nvlend -s $TSOCK rpc nvmf_subsystem_get_controllers '{\"nqn\":\"$NQN\"}' | tr -d ' \n')\" = '[]' ]" ||
	fail "the target still has the importer's controller"
pass
