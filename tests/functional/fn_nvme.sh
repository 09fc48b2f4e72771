#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# SNAP's function model for NVMe (docs/functions.md), end to end:
#   - the seed's snap_rpc.py sequence replayed with nvlend rpc (spdk_bdev_create,
#     nvme_subsystem_create, nvme_namespace_create, nvme_controller_create
#     --pf_id 0 --num_queues 16, nvme_controller_attach_ns -c NVMeCtrl1 -n 1);
#   - vector accounting: a PF's pool, VFs beyond 127, exhaustion refused with
#     the reason, destroy keeps the VF's link, reclaim makes room, release_msix;
#   - SNAP's hardware-only and unknown parameters refused by name;
#   - a consumer opens the function without a Connect (nvme+fn://SOCKET) and
#     runs nvlend-perf --verify, suspended and resumed under I/O (0 errors);
#     a second consumer is refused "busy" with the holder's pid;
#   - destroy refused while open, then with force (the consumer is dropped);
#   - save_config, restart with -c: the tree, the controller (same cntlid and
#     socket) and the data of a file bdev come back;
#   - a consumer running nvlend-perf --verify goes through a kill -9 of the
#     worker and an nvlend upgrade: 0 errors, restored twice (never opened
#     again), listed again, still the only consumer; a VF's vectors linked
#     without a controller stay linked through both and are reclaimed after.
# timeout: 180
source "$(dirname "$0")/common.sh"
start_nvlendd -S "$T"
NQN=nqn.2023-01.com.nvda:nvme:0

nvlend bdev create ram Malloc0 64M >/dev/null || fail "ram bdev"
head -c 32M /dev/zero >"$T/f0.img"
nvlend bdev create file f0 "$T/f0.img" >/dev/null || fail "file bdev"

# ---- the tree --------------------------------------------------------------------
rpc function_create_pf '{"pf_id":0,"type":"nvme","num_msix":20,"max_vfs":200}' >/dev/null ||
	fail "PF 0"
rpc function_create_pf '{"pf_id":1,"type":"virtio_blk","num_msix":4,"max_vfs":4}' >/dev/null || fail "PF 1"
expect_fail rpc function_create_pf '{"pf_id":0,"type":"nvme"}'
out=$(rpc function_create_pf '{"pf_id":7,"type":"scsi"}' 2>&1) && fail "type scsi accepted"
assert_contains "$out" "nvme or virtio_blk"

# ---- the seed's sequence -----------------------------------------------------------
assert_eq "$(rpc spdk_bdev_create '{"bdev_name":"Malloc0"}')" '"Malloc0"' "spdk_bdev_create"
expect_fail rpc spdk_bdev_create '{"bdev_name":"nope"}'
rpc nvme_subsystem_create "{\"nqn\":\"$NQN\"}" >/dev/null || fail "nvme_subsystem_create"
assert_eq "$(rpc nvme_namespace_create "{\"bdev_name\":\"Malloc0\",\"nsid\":1,\"nqn\":\"$NQN\"}")" 1 \
	"nvme_namespace_create"
assert_eq "$(rpc nvme_namespace_create "{\"bdev_name\":\"f0\",\"nqn\":\"$NQN\"}")" 2 "ns 2"
rpc nvme_controller_create "{\"nqn\":\"$NQN\",\"pf_id\":0,\"num_queues\":16}" >"$T/c1.json" ||
	fail "nvme_controller_create"
assert_eq "$(json_get '["name"]' <"$T/c1.json")" NVMeCtrl1 "SNAP's default name"
assert_eq "$(json_get '["cntlid"]' <"$T/c1.json")" 1 "cntlid"
SOCK1=$(json_get '["socket"]' <"$T/c1.json")
assert_eq "$SOCK1" "$T/NVMeCtrl1.nvme" "endpoint in the vhost socket directory"
[ -S "$SOCK1" ] || fail "no endpoint socket"
rpc nvme_controller_attach_ns '{"ctrl":"NVMeCtrl1","nsid":1}' >/dev/null || fail "attach_ns 1"
rpc nvme_controller_attach_ns '{"ctrl":"NVMeCtrl1","nsid":2}' >/dev/null || fail "attach_ns 2"
expect_fail rpc nvme_controller_attach_ns '{"ctrl":"NVMeCtrl1","nsid":1}'
expect_fail rpc nvme_namespace_destroy "{\"nqn\":\"$NQN\",\"nsid\":1}"
# a namespace attached to no controller is invisible to it
assert_eq "$(rpc nvme_namespace_create "{\"bdev_name\":\"Malloc0\",\"nsid\":3,\"nqn\":\"$NQN\"}")" 3 \
	"ns 3"

# ---- vectors -------------------------------------------------------------------------
free_msix() { rpc nvme_controller_list '{"ctrl":"NVMeCtrl1"}' | json_get '[0]["num_free_msix"]'; }
assert_eq "$(free_msix)" 3 "20 - (16 + 1) vectors"
rpc nvme_controller_create "{\"nqn\":\"$NQN\",\"pf_id\":0,\"vf_id\":150,\"ctrl\":\"vf150\",\"num_queues\":2,\"vf_num_msix\":2}" \
	>/dev/null || fail "VF 150 (beyond 127)"
out=$(rpc nvme_controller_create "{\"nqn\":\"$NQN\",\"pf_id\":0,\"vf_id\":3,\"ctrl\":\"vf3\",\"vf_num_msix\":2}" 2>&1) &&
	fail "a VF beyond the pool was made"
assert_contains "$out" "1 free interrupt vectors of 20"
expect_fail rpc nvme_controller_create "{\"nqn\":\"$NQN\",\"pf_id\":0,\"vf_id\":200,\"vf_num_msix\":0}"
expect_fail rpc nvme_controller_create "{\"nqn\":\"$NQN\",\"pf_id\":1,\"vf_num_msix\":0}"
# destroyed without release_msix: the vectors stay linked to VF 150
rpc nvme_controller_destroy '{"ctrl":"vf150"}' >/dev/null || fail "destroy vf150"
assert_eq "$(free_msix)" 1 "VF 150 keeps its link"
out=$(rpc nvme_controller_vfs_msix_reclaim '{"ctrl":"NVMeCtrl1"}') || fail "reclaim"
assert_eq "$(echo "$out" | json_get '["reclaimed"]')" 2 "reclaimed"
assert_eq "$(free_msix)" 3 "after reclaim"
rpc nvme_controller_create "{\"nqn\":\"$NQN\",\"pf_id\":0,\"vf_id\":3,\"ctrl\":\"vf3\",\"vf_num_msix\":2}" \
	>/dev/null || fail "VF 3 after reclaim"
rpc nvme_controller_attach_ns '{"ctrl":"vf3","nsid":3}' >/dev/null || fail "attach to vf3"
rpc nvme_controller_destroy '{"ctrl":"vf3","release_msix":true}' >/dev/null || fail "destroy vf3"
assert_eq "$(free_msix)" 3 "release_msix"

# ---- SNAP's parameters --------------------------------------------------------------
out=$(rpc nvme_controller_create "{\"nqn\":\"$NQN\",\"pf_id\":0,\"vf_id\":4,\"pci_bdf\":\"af:00.2\"}" 2>&1) &&
	fail "pci_bdf accepted"
assert_contains "$out" "pci_bdf"
out=$(rpc nvme_controller_create "{\"nqn\":\"$NQN\",\"pf_id\":0,\"vf_id\":4,\"sriov_bogus\":1}" 2>&1) &&
	fail "an unknown parameter accepted"
assert_contains "$out" "sriov_bogus"
rpc nvme_controller_create "{\"nqn\":\"$NQN\",\"pf_id\":0,\"vf_id\":4,\"ctrl\":\"vf4\",\"dynamic_msix\":true,\"vf_num_msix\":1,\"suspended\":true}" \
	>/dev/null || fail "dynamic_msix, suspended"
out=$(rpc nvme_controller_resume '{"ctrl":"vf4"}' 2>&1) && fail "resumed without namespaces"
assert_contains "$out" "attach its namespaces"
rpc nvme_controller_attach_ns '{"ctrl":"vf4","nsid":3}' >/dev/null || fail "attach vf4"
rpc nvme_controller_resume '{"ctrl":"vf4"}' >/dev/null || fail "resume vf4"

# ---- a consumer ----------------------------------------------------------------------
URI="nvme+fn://$SOCK1"
nvlend ns info "$URI" >"$T/info" || fail "ns info through the function"
grep -q "controller: 1 " "$T/info" || fail "not controller 1: $(cat "$T/info")"
# a plain CONNECT on the function's endpoint is refused
expect_fail nvlend ns info "nvme+shm://$SOCK1?nqn=$NQN"

nvlend-perf "$URI" --rw=randrw --verify --iodepth=8 --runtime=6 >"$T/perf.out" 2>&1 &
PERF=$!
wait_until 5 sh -c "nvlend rpc nvme_controller_list '{\"ctrl\":\"NVMeCtrl1\"}' | grep -q '\"consumer_pid\": $PERF'" ||
	fail "consumer pid not listed"
out=$(nvlend ns info "$URI" 2>&1) && fail "a second consumer was let in"
assert_contains "$out" "busy"
assert_contains "$out" "pid $PERF"
nvlend function list >"$T/tree" || fail "function list"
grep -q "pid $PERF" "$T/tree" || fail "function list: no consumer: $(cat "$T/tree")"
grep -qE "pf0 .*free of 20" "$T/tree" || fail "function list: no pool: $(cat "$T/tree")"
sleep 1
rpc nvme_controller_suspend '{"ctrl":"NVMeCtrl1"}' >/dev/null || fail "suspend under I/O"
assert_eq "$(rpc nvme_controller_list '{"ctrl":"NVMeCtrl1"}' | json_get '[0]["state"]')" suspended \
	"state"
sleep 1
rpc nvme_controller_resume '{"ctrl":"NVMeCtrl1"}' >/dev/null || fail "resume"
wait $PERF || { cat "$T/perf.out" >&2; fail "nvlend-perf --verify through the function"; }
grep -q "errors: 0" "$T/perf.out" || fail "I/O errors: $(cat "$T/perf.out")"
grep -qE "verify: [1-9][0-9]* blocks checked .*, 0 errors" "$T/perf.out" ||
	fail "verify: $(cat "$T/perf.out")"

# ---- destroy while open ---------------------------------------------------------------
rpc nvme_controller_create "{\"nqn\":\"$NQN\",\"pf_id\":0,\"vf_id\":5,\"ctrl\":\"vf5\",\"vf_num_msix\":1,\"num_queues\":1}" \
	>/dev/null || fail "vf5"
rpc nvme_controller_attach_ns '{"ctrl":"vf5","nsid":3}' >/dev/null || fail "attach vf5"
nvlend-perf "nvme+fn://$T/vf5.nvme" --rw=randread --iodepth=4 --runtime=20 >/dev/null 2>&1 &
PERF=$!
wait_until 5 sh -c "nvlend rpc nvme_controller_list '{\"ctrl\":\"vf5\"}' | grep -q '\"consumer_pid\": $PERF'" ||
	fail "vf5 consumer"
out=$(rpc nvme_controller_destroy '{"ctrl":"vf5"}' 2>&1) && fail "destroyed while open"
assert_contains "$out" "force"
rpc nvme_controller_destroy '{"ctrl":"vf5","force":true,"release_msix":true}' >/dev/null ||
	fail "destroy with force"
wait_until 10 sh -c "! kill -0 $PERF 2>/dev/null" || fail "the consumer did not notice"
wait $PERF && fail "the consumer's I/O went on after destroy"
[ -e "$T/vf5.nvme" ] && fail "endpoint left behind"
expect_fail rpc nvme_controller_list '{"ctrl":"vf5"}'

# ---- virtio-blk functions in the tree ---------------------------------------------
pf_free() { rpc emulation_function_list | json_get "[$1][\"num_free_msix\"]"; }
rpc virtio_blk_controller_create "{\"name\":\"vbx\",\"bdev\":\"Malloc0\",\"socket\":\"vbx.sock\",\"pf_id\":1,\"vf_id\":0,\"vf_num_msix\":4}" \
	>/dev/null || fail "vblk on PF 1"
out=$(rpc virtio_blk_controller_create "{\"name\":\"vby\",\"bdev\":\"Malloc0\",\"socket\":\"vby.sock\",\"pf_id\":1,\"vf_id\":1}" 2>&1) &&
	fail "a virtio-blk VF beyond the pool"
assert_contains "$out" "0 free interrupt vectors of 4"
expect_fail rpc virtio_blk_controller_create '{"name":"vbz","bdev":"Malloc0","socket":"vbz.sock","pf_id":0,"vf_id":9}'
rpc virtio_blk_controller_destroy '{"name":"vbx","release_msix":true}' >/dev/null || fail "vblk destroy"
assert_eq "$(pf_free 1)" 4 "virtio-blk vectors back in the pool"
rpc virtio_blk_controller_create "{\"name\":\"vb0\",\"bdev\":\"Malloc0\",\"socket\":\"vb0.sock\",\"pf_id\":1,\"vf_id\":0,\"num_queues\":1}" \
	>/dev/null || fail "vblk vb0 on PF 1"
assert_eq "$(pf_free 1)" 2 "num_queues + 1 vectors by default"

# ---- restart with the saved configuration -----------------------------------------
head -c 64K /dev/urandom >"$T/data"
nvlend ns write "$URI?nsid=2" --lba 100 <"$T/data" >/dev/null || fail "write through the function"
nvlend save-config -o "$T/saved.json" || fail "save-config"
rpc nvme_controller_list >"$T/before.json"
stop_nvlendd
start_nvlendd -S "$T" -c "$T/saved.json"
rpc nvme_controller_list >"$T/after.json"
/usr/bin/python3 - "$T/before.json" "$T/after.json" <<'PY' || fail "controllers differ after restart"
import json, sys
keys = ("name", "subnqn", "pf_id", "vf_id", "cntlid", "num_queues", "state", "socket", "num_msix",
        "num_free_msix", "namespaces")
b, a = (json.load(open(f)) for f in sys.argv[1:])
pick = lambda l: sorted(({k: c[k] for k in keys} for c in l), key=lambda c: c["name"])
assert pick(b) == pick(a), (pick(b), pick(a))
PY
nvlend ns read "$URI?nsid=2" --lba 100 --count 128 >"$T/back" || fail "read back after restart"
cmp -s "$T/data" "$T/back" || fail "data differs after restart"
assert_eq "$(pf_free 1)" 2 "the virtio-blk function's vectors after restart"
assert_eq "$(rpc emulation_function_list | json_get '[1]["functions"][0]["name"]')" vb0 "vb0 in the tree"

# ---- the consumer is kept: kill -9 of the worker, then nvlend upgrade ---------------
ALLOW_WORKER_RESTARTS=1
rpc nvme_controller_create "{\"nqn\":\"$NQN\",\"pf_id\":0,\"vf_id\":6,\"ctrl\":\"vf6\",\"vf_num_msix\":2,\"num_queues\":1}" \
	>/dev/null || fail "vf6"
rpc nvme_controller_destroy '{"ctrl":"vf6"}' >/dev/null || fail "destroy vf6 (its vectors stay linked)"
free0=$(free_msix)
opened() { grep -c "function NVMeCtrl1: opened by pid $1" "$DAEMON_LOG"; }
kept() { grep -c "function NVMeCtrl1: consumer pid $1 restored after a restart" "$DAEMON_LOG"; }
listed() { nvlend rpc nvme_controller_list '{"ctrl":"NVMeCtrl1"}' | grep -q "\"consumer_pid\": $1"; }
# on the file namespace (io_uring: commands are in flight when the worker
# goes, and run again); runs until SIGINT (it then stops and reports, as
# fio does): as long as the restarts take, not longer
nvlend-perf "$URI?nsid=2" --rw=randrw --verify --iodepth=8 --numjobs=2 --runtime=60 >"$T/perf3.out" 2>&1 &
PERF=$!
wait_until 5 listed $PERF || fail "consumer before the kill"
sleep 0.5
old=$(worker_of "$DAEMON_PID")
kill -KILL "$old" || fail "kill -9 of the worker"
wait_until 10 sh -c "[ \$(grep -c 'function NVMeCtrl1: consumer pid $PERF restored' '$DAEMON_LOG') -ge 1 ]" ||
	fail "the consumer was not restored after kill -9: $(grep -E 'NVMeCtrl1|kept' "$DAEMON_LOG" | tail -5)"
kill -0 $PERF 2>/dev/null || fail "the consumer ended before the upgrade: $(cat "$T/perf3.out")"
wait_until 5 listed $PERF || fail "consumer pid not listed after kill -9"
assert_eq "$(free_msix)" "$free0" "free vectors after kill -9 (VF 6 keeps its link)"
out=$(nvlend ns info "$URI" 2>&1) && fail "a second consumer was let in after the restore"
assert_contains "$out" "pid $PERF"
out=$(nvlend upgrade 2>&1) || fail "upgrade under a function's consumer: $out"
wait_until 10 sh -c "[ \$(grep -c 'function NVMeCtrl1: consumer pid $PERF restored' '$DAEMON_LOG') -ge 2 ]" ||
	fail "the consumer was not restored after the upgrade"
wait_until 5 listed $PERF || fail "consumer pid not listed after the upgrade"
nvlend function list | grep -q "pid $PERF" || fail "function list: no consumer after the upgrade"
kill -0 $PERF 2>/dev/null || fail "the consumer ended during the upgrade: $(cat "$T/perf3.out")"
sleep 0.3
kill -INT $PERF
wait $PERF || { cat "$T/perf3.out" >&2; fail "nvlend-perf --verify through kill -9 and upgrade"; }
grep -q "errors: 0" "$T/perf3.out" || fail "I/O errors: $(cat "$T/perf3.out")"
grep -qE "verify: [1-9][0-9]* blocks checked .*, 0 errors" "$T/perf3.out" ||
	fail "verify: $(cat "$T/perf3.out")"
assert_eq "$(opened $PERF)" 1 "OPEN_FNs of the consumer (a re-open would add one)"
assert_eq "$(kept $PERF)" 2 "restores of the consumer"
log "restored: $(grep -h "not opened again):" "$DAEMON_LOG" | sed 's/.*again): //' | tr '\n' ';')"
WORKER_PID=$(worker_of "$DAEMON_PID")
out=$(rpc nvme_controller_vfs_msix_reclaim '{"ctrl":"NVMeCtrl1"}') || fail "reclaim after restarts"
assert_eq "$(echo "$out" | json_get '["reclaimed"]')" 2 "VF 6's vectors reclaimed after two restarts"

# shutdown with a consumer attached: clean (stop_nvlendd fails on a bad exit)
nvlend-perf "$URI" --rw=randread --iodepth=4 --runtime=30 >/dev/null 2>&1 &
PERF=$!
wait_until 5 sh -c "nvlend rpc nvme_controller_list '{\"ctrl\":\"NVMeCtrl1\"}' | grep -q '\"consumer_pid\": $PERF'" ||
	fail "consumer after restart"
stop_nvlendd
wait $PERF && fail "the consumer did not notice the shutdown"
true
pass
