#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 60
#
# Discovery from userspace: `nvlend discover` prints the discovery log of a
# running nvlendd target with two subsystems (and names its failures); the
# importing daemon's bdev_nvme_start_discovery attaches both, follows the
# log (a third subsystem appears, a removed one goes: Discovery Log Page
# Change events; or, forced, by reading it every 5 s), survives a
# save_config round trip, and stop_discovery detaches everything.
source "$(dirname "$0")/common.sh"
requires ss

start_nvlendd
TSOCK=$NVLEND_SOCKET
P=$(free_port)
tgt() { nvlend -s "$TSOCK" "$@"; }
tgt rpc nvmf_create_transport '{"trtype":"TCP"}' >/dev/null
add_subsys() { # NAME: a RAM bdev and a subsystem with it, listening on $P
	tgt rpc bdev_malloc_create "{\"name\":\"m$1\",\"num_blocks\":8192,\"block_size\":512}" >/dev/null
	tgt rpc nvmf_create_subsystem "{\"nqn\":\"nqn.2026-01.io.nvlend.test:$1\",\"allow_any_host\":true}" >/dev/null
	tgt rpc nvmf_subsystem_add_ns "{\"nqn\":\"nqn.2026-01.io.nvlend.test:$1\",\"namespace\":{\"bdev_name\":\"m$1\"}}" >/dev/null
	tgt rpc nvmf_subsystem_add_listener "{\"nqn\":\"nqn.2026-01.io.nvlend.test:$1\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$P\"}}" >/dev/null
}
add_subsys a
add_subsys b

# ---- nvlend discover ----
out=$(nvlend discover "127.0.0.1:$P") || fail "discover: $out"
echo "$out" >&2
assert_contains "$out" "Discovery Log Number of Records 2, Generation counter"
assert_contains "$out" "subnqn:  nqn.2026-01.io.nvlend.test:a"
assert_contains "$out" "subnqn:  nqn.2026-01.io.nvlend.test:b"
assert_contains "$out" "trsvcid: $P"
assert_contains "$out" "subtype: nvme subsystem"
[ "$(grep -c '^=====Discovery Log Entry' <<<"$out")" = 2 ] || fail "two entries expected"
n=$(nvlend --json discover "nvme+tcp://127.0.0.1:$P" | json_get '["numrec"]')
assert_eq "$n" 2 "--json numrec"
Q=$(free_port)
out=$(nvlend discover "127.0.0.1:$Q" 2>&1); rc=$?
assert_eq $rc 1 "exit code, connection refused"
assert_contains "$out" "connection refused"
out=$(nvlend discover "no-such-host.invalid" 2>&1); rc=$?
assert_eq $rc 1 "exit code, no such host"
assert_contains "$out" "no such host"
out=$(nvlend discover "nvme+tcp://127.0.0.1:$P/nqn.2026-01.io.nvlend.test:a" 2>&1); rc=$?
assert_eq $rc 1 "exit code, not a discovery controller"
assert_contains "$out" "not a discovery controller"
out=$(nvlend discover "bad://x" 2>&1); rc=$?
assert_eq $rc 2 "exit code, bad URI"

# ---- bdev_nvme_start_discovery in a second daemon ----
start_nvlendd
ISOCK=$NVLEND_SOCKET
imp() { nvlend -s "$ISOCK" "$@"; }
out=$(imp nvme discover start x "127.0.0.1:$Q" 2>&1) && fail "start against nothing: $out"
assert_contains "$out" "Connection refused"
[ "$(imp rpc bdev_nvme_get_discovery_info | tr -d ' \n')" = "[]" ] || fail "failed start left a service"
imp nvme discover start d "nvme+tcp://127.0.0.1:$P" --wait > "$T/start.out" || fail "discover start"
assert_contains "$(cat "$T/start.out")" "2 NVMe subsystems (controllers d0, d1)"
cat "$T/start.out" >&2
has_bdev() { imp rpc bdev_get_bdevs | grep_q "\"$1\""; }
wait_until 10 has_bdev d0n1 || fail "d0n1 did not appear"
wait_until 10 has_bdev d1n1 || fail "d1n1 did not appear"
imp nvme discover list | grep_q "d0,d1" || fail "list: $(imp nvme discover list)"
imp rpc bdev_nvme_get_discovery_info | grep_q '"log_change_events": true' ||
	fail "change events not in use"

# a third subsystem: its bdev appears (the log change event)
add_subsys c
wait_until 10 has_bdev d2n1 || fail "d2n1 did not appear after adding a subsystem"
# a removed subsystem: its controller goes
tgt rpc nvmf_delete_subsystem '{"nqn":"nqn.2026-01.io.nvlend.test:a"}' >/dev/null
wait_until 10 sh -c "! nvlend -s $ISOCK rpc bdev_get_bdevs | grep -q '\"d0n1\"'" ||
	fail "d0n1 did not go after removing its subsystem"
has_bdev d1n1 || fail "d1n1 went too"
imp rpc bdev_nvme_get_controllers | grep_q '"name": "d0"' && fail "controller d0 stayed"

# save_config: one start_discovery call, no attach_controller of its controllers
imp save-config > "$T/cfg.json" || fail "save-config"
grep -q '"bdev_nvme_start_discovery"' "$T/cfg.json" || fail "no start_discovery in the config"
grep -q '"bdev_nvme_attach_controller"' "$T/cfg.json" && fail "discovered controllers saved on their own"
stop_daemon_pid "$DAEMON_PID" || fail "$_daemon_bad"
start_nvlendd -c "$T/cfg.json"
ISOCK=$NVLEND_SOCKET
wait_until 10 has_bdev d0n1 || fail "restored: d0n1 did not appear"
wait_until 10 has_bdev d1n1 || fail "restored: d1n1 did not appear"
imp rpc bdev_nvme_get_discovery_info | grep_q '"name": "d"' || fail "restored: no discovery d"

# without change events (forced): the log is read every 5 s and still followed
NVLEND_DISCOVERY_POLL=1 start_nvlendd
PSOCK=$NVLEND_SOCKET
nvlend -s "$PSOCK" nvme discover start p "127.0.0.1:$P" --wait >/dev/null || fail "polling start"
nvlend -s "$PSOCK" rpc bdev_nvme_get_discovery_info | grep_q '"log_change_events": false' ||
	fail "polling service says it uses events"
add_subsys e
wait_until 12 sh -c "nvlend -s $PSOCK rpc bdev_get_bdevs | grep -q '\"p2n1\"'" ||
	fail "polling: the new subsystem's bdev did not appear"
stop_daemon_pid "$DAEMON_PID" || fail "$_daemon_bad"

# stop detaches everything
imp nvme discover stop d >/dev/null || fail "discover stop"
imp rpc bdev_get_bdevs | grep_q '"d[0-9]n1"' && fail "bdevs stayed after stop"
[ "$(imp rpc bdev_nvme_get_discovery_info | tr -d ' \n')" = "[]" ] || fail "service stayed"
expect_fail imp nvme discover stop d
pass
