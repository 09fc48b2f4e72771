#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Namespace-changed asynchronous events over shm, seen by a libnvlend host
# (tests/helpers/libnvlend_api aen): with Asynchronous Event Configuration
# "namespace attribute notices" on and one Asynchronous Event Request
# outstanding (nvl_ctrlr_aen_enable / nvl_ctrlr_aen_poll),
#   - nvmf_subsystem_add_ns completes it with type notice, info "namespace
#     attribute changed", log page 04h, and the Changed Namespace List
#     (nvl_ctrlr_changed_ns) names the new nsid, then reads back empty;
#   - nvmf_subsystem_remove_ns does the same for the removed nsid, although
#     an admin command (Identify) ran while the request was outstanding;
#   - a bystander host doing verified I/O on namespace 1 throughout is not
#     disturbed, and only namespace 1 is left at the end;
#   - the same events through libnvlend's NVMe/TCP transport.
# timeout: 120
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"

start_nvlendd
shm_target ev 16M
nvlend bdev create ram ev7 8M >/dev/null || fail "bdev create ev7"

# a bystander host with a queue pair, doing I/O the whole time
"$BIN/nvlend-perf" "$URI" --rw=randrw --bs=4k --iodepth=4 --runtime=6 --verify \
	--hostnqn=nqn.2026-01.io.nvlend.test:bystander >"$T/perf.out" 2>&1 &
perf=$!
on_exit "kill $perf"
ctrlrs_are() { [ "$(count_ctrlrs)" = "$1" ]; }
wait_until 10 ctrlrs_are 1 || fail "the bystander did not connect"

"$BUILD/tests/helpers/libnvlend_api" aen "$URI" "$NVLEND_SOCKET" "$NQN" ev7 7 >"$T/aen.out" 2>&1
rc=$?
cat "$T/aen.out" >&2
[ $rc = 0 ] || fail "libnvlend_api aen: $rc failed checks"
[ "$(grep -c '^PASS' "$T/aen.out")" -ge 16 ] || fail "libnvlend_api aen ran too few checks"

# the same over NVMe/TCP (libnvlend's other transport)
port=$(free_port) || fail "no free port"
rpc nvmf_create_transport '{"trtype":"TCP"}' >/dev/null || fail "create TCP transport"
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"adrfam\":\"IPv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$port\"}}" \
	>/dev/null || fail "add TCP listener"
"$BUILD/tests/helpers/libnvlend_api" aen "nvme+tcp://127.0.0.1:$port/$NQN" "$NVLEND_SOCKET" \
	"$NQN" ev7 7 >"$T/aen-tcp.out" 2>&1
rc=$?
cat "$T/aen-tcp.out" >&2
[ $rc = 0 ] || fail "libnvlend_api aen over TCP: $rc failed checks"

wait $perf || { cat "$T/perf.out" >&2; fail "the bystander's verified I/O"; }
grep -q ' 0 errors' "$T/perf.out" || { cat "$T/perf.out" >&2; fail "bystander verify errors"; }
# namespace 7 is gone again, namespace 1 untouched
nsids=$(rpc nvmf_get_subsystems | /usr/bin/python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["nqn"] == sys.argv[1]:
        print(",".join(str(n["nsid"]) for n in s["namespaces"]))' "$NQN")
assert_eq "$nsids" "1" "namespaces after the test"
pass
