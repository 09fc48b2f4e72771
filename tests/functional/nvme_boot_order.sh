#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 60
#
# No boot order (issue 22 item 2): daemon B's configuration imports a
# controller from daemon A while A is down. B starts anyway, its controller
# "waiting to reconnect" (bdev_nvme_get_controllers, nvlend status, nvlend
# nvme list), and so is a discovery
# service of its configuration; A
# starts; B's bdev appears within bounded time and reads A's data; the
# configuration's re-export of that bdev (add_ns) waits for it and is applied
# when it comes. An
# interactive attach to a down target still fails at once.
source "$(dirname "$0")/common.sh"
requires ss nbdcopy

P=$(free_port)
NQN=nqn.2026-01.io.nvlend.test:boot
cat > "$T/b.json" <<JSON
{"subsystems":[{"subsystem":"bdev_nvme","config":[
 {"method":"bdev_nvme_attach_controller","params":{"name":"A","trtype":"tcp",
  "traddr":"127.0.0.1","trsvcid":"$P","subnqn":"$NQN","reconnect_delay_sec":1,
  "ctrlr_loss_timeout_sec":-1}},
 {"method":"bdev_nvme_start_discovery","params":{"name":"D","trtype":"tcp",
  "traddr":"127.0.0.1","trsvcid":"$P","reconnect_delay_sec":1}}]},
 {"subsystem":"nvmf","config":[
 {"method":"nvmf_create_subsystem","params":{"nqn":"$NQN-re","allow_any_host":true}},
 {"method":"nvmf_subsystem_add_ns","params":{"nqn":"$NQN-re","namespace":{"bdev_name":"An1"}}},
 {"method":"nvmf_subsystem_add_listener","params":{"nqn":"$NQN-re",
  "listen_address":{"trtype":"SHM","traddr":"$T/re.sock"}}}]}]}
JSON

# B first, A down
start_nvlendd -c "$T/b.json"
BSOCK=$NVLEND_SOCKET
BLOG=$DAEMON_LOG
b() { nvlend -s "$BSOCK" "$@"; }
st=$(b rpc bdev_nvme_get_controllers '{"name":"A"}' | json_get '[0]["state"]')
assert_eq "$st" "waiting to reconnect" "state of A while its target is down"
b rpc bdev_get_bdevs | grep_q '"An1"' && fail "a bdev before the target is up"
# the operator's page and nvme list show it waiting
b status | grep_q "A .*waiting to reconnect" || fail "status does not show A waiting: $(b status)"
b nvme list | grep_q "^A  *waiting to reconnect" || fail "nvme list does not show A waiting: $(b nvme list)"
# the configuration's re-export of A's bdev waits for it, and says so
grep_q "nvmf_subsystem_add_ns waits for bdev An1" <"$BLOG" || fail "no log line for the waiting add_ns"
b subsystem list | grep_q "$NQN-re .*SHM $T/re.sock" || fail "the rest of the configuration was not applied"
st=$(b rpc bdev_nvme_get_discovery_info | json_get '[0]["state"]')
assert_eq "$st" "waiting to reconnect" "state of discovery D while its target is down"
# save_config keeps the waiting controller
b save-config | grep_q '"bdev_nvme_attach_controller"' || fail "waiting controller not saved"
# an interactive attach to a down target fails at once
Q=$(free_port)
s0=$(date +%s%N)
expect_fail b rpc bdev_nvme_attach_controller "{\"name\":\"X\",\"trtype\":\"tcp\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$Q\",\"subnqn\":\"$NQN\"}"
[ $(( ($(date +%s%N) - s0) / 1000000 )) -lt 5000 ] || fail "interactive attach to a down target took too long"
b rpc bdev_nvme_get_controllers | grep_q '"name": "X"' && fail "failed attach left a controller"
# ... unless asked to wait
b rpc bdev_nvme_attach_controller "{\"name\":\"Y\",\"trtype\":\"tcp\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$Q\",\"subnqn\":\"$NQN\",\"retry_first_connect\":true}" >/dev/null ||
	fail "attach with retry_first_connect"
st=$(b rpc bdev_nvme_get_controllers '{"name":"Y"}' | json_get '[0]["state"]')
assert_eq "$st" "waiting to reconnect" "state of Y (retry_first_connect)"
b rpc bdev_nvme_detach_controller '{"name":"Y"}' >/dev/null || fail "detach of a waiting controller"
wait_until 2 sh -c "! nvlend -s $BSOCK rpc bdev_nvme_get_controllers | grep -q '\"name\": \"Y\"'" ||
	fail "Y stayed after its detach"
sleep 2 # a few retries of A: logged once, not per retry
# a retry that fails is undone before A waits again; the waiting add_ns
# must not take that moment for "An1 will not come"
grep_q "dropped: bdev An1" <"$BLOG" && fail "the waiting add_ns was dropped while A retries"
[ "$(grep -c 'A: cannot reach' "$BLOG")" = 1 ] || fail "not one log line for the wait: $(grep 'A:' "$BLOG")"

# A comes up with data
start_nvlendd
ASOCK=$NVLEND_SOCKET
a() { nvlend -s "$ASOCK" "$@"; }
head -c 4M /dev/urandom > "$T/a.img"
a rpc nvmf_create_transport '{"trtype":"TCP"}' >/dev/null
a bdev create file f0 "$T/a.img" >/dev/null || fail "file bdev on A"
a rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true}" >/dev/null
a rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"f0\"}}" >/dev/null
a rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$P\"}}" >/dev/null
has_bdev() { b rpc bdev_get_bdevs | grep_q '"An1"'; }
wait_until 10 has_bdev || fail "An1 did not appear within 10 s of the target starting"
st=$(b rpc bdev_nvme_get_controllers '{"name":"A"}' | json_get '[0]["state"]')
assert_eq "$st" "ready" "state of A once its target is up"
grep -q "A: attached .* after waiting for it" "$BLOG" || fail "no log line for the attach"
# ... and the configuration's re-export of An1 follows by itself
wait_until 5 sh -c "nvlend -s $BSOCK subsystem list | grep -q '$NQN-re  *1:An1'" ||
	fail "the waiting add_ns of An1 was not applied: $(b subsystem list)
$(grep -E 'config:|A:' "$BLOG")"
grep_q "nvmf_subsystem_add_ns applied now that its bdev is there" <"$BLOG" || fail "no log line for the late add_ns"
# the discovery service from the configuration connects too: its entry attaches
wait_until 10 sh -c "nvlend -s $BSOCK rpc bdev_get_bdevs | grep -q '\"D0n1\"'" ||
	fail "D0n1 (discovery from the config) did not appear"
# B reads A's data (through an NBD export of the imported bdev)
N=$(free_port)
b nbd start --port "$N" --socket "$T/nbd.sock" >/dev/null || fail "nbd start on B"
b nbd export add e0 An1 >/dev/null || fail "export An1"
nbdcopy "nbd://127.0.0.1:$N/e0" "$T/out.img" || fail "nbdcopy from B"
cmp "$T/a.img" "$T/out.img" || fail "B does not read A's data"
pass
