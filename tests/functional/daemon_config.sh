#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nvlendd -c: good configurations (SPDK's save_config shape and a plain
# array) are replayed; bad ones (malformed JSON, wrong shape, unknown
# method, invalid params, a call that fails, a missing file) stop start-up
# with a non-zero exit and a message naming the problem, and leave no socket.
# timeout: 90
source "$(dirname "$0")/common.sh"

truncate -s 8M "$T/disk.img"

# expect_bad_config NAME 'CONTENT' 'EXPECTED MESSAGE'
expect_bad_config() {
	local name=$1 content=$2 want=$3 sock=$T/$1.sock log=$T/$1.log rc
	printf '%s' "$content" >"$T/$name.json"
	timeout 20 "$BIN/nvlendd" -s "$sock" -c "$T/$name.json" >"$log" 2>&1
	rc=$?
	[ $rc != 0 ] && [ $rc != 124 ] || { cat "$log" >&2; fail "config $name: exit $rc"; }
	grep -q -- "$want" "$log" || { cat "$log" >&2; fail "config $name: no '$want' in the log"; }
	[ ! -e "$sock" ] || fail "config $name left its socket behind"
	log "config $name: exit $rc, '$(grep -m1 -- "$want" "$log" | sed 's/.*: //')'"
}

expect_bad_config malformed '[{"method": "bdev_malloc_create", "params": {' "cannot load config"
expect_bad_config notjson 'hello' "cannot load config"
expect_bad_config empty '' "cannot load config"
expect_bad_config shape '{"bdevs": []}' "expected a JSON array"
expect_bad_config subsys_shape '{"subsystems": [{"subsystem": "bdev", "config": 7}]}' \
	"expected a JSON array"
expect_bad_config unknown '[{"method": "bdev_malloc_create", "params": {"name": "a", "num_blocks": 8, "block_size": 512}}, {"method": "no_such_method"}]' \
	"unknown method no_such_method"
expect_bad_config nomethod '[{"params": {}}]' 'has no "method"'
expect_bad_config badparams '[{"method": "bdev_malloc_create", "params": {"name": "a", "num_blocks": 8, "block_size": 512, "colour": "red"}}]' \
	"unknown parameter 'colour'"
expect_bad_config badtype '[{"method": "bdev_malloc_create", "params": {"name": "a", "num_blocks": "8", "block_size": 512}}]' \
	"'num_blocks' must be"
expect_bad_config fails "[{\"method\": \"bdev_uring_create\", \"params\": {\"name\": \"f\", \"filename\": \"$T/missing.img\"}}]" \
	"bdev_uring_create failed"
expect_bad_config dup '[{"method": "bdev_malloc_create", "params": {"name": "a", "num_blocks": 8, "block_size": 512}}, {"method": "bdev_malloc_create", "params": {"name": "a", "num_blocks": 8, "block_size": 512}}]' \
	"already exists"
timeout 20 "$BIN/nvlendd" -s "$T/nofile.sock" -c "$T/does-not-exist.json" >"$T/nofile.log" 2>&1 &&
	fail "a missing config file was accepted"
grep -q "cannot load config" "$T/nofile.log" || fail "missing file message"
[ ! -e "$T/nofile.sock" ] || fail "missing config file left a socket"

# a plain array of calls
cat >"$T/plain.json" <<EOF
[
  {"method": "bdev_malloc_create", "params": {"name": "m0", "num_blocks": 2048, "block_size": 512}},
  {"method": "bdev_aio_create", "params": {"name": "f0", "filename": "$T/disk.img", "block_size": 4096}},
  {"method": "log_set_level", "params": {"level": 1}},
  {"method": "framework_set_spin", "params": {"spin_us": 50}},
  {"method": "framework_set_io_sleep", "params": {"io_sleep_us": 7}},
  {"method": "framework_wait_init"}
]
EOF
start_nvlendd -c "$T/plain.json"
names=$(nvlend --json bdev list | /usr/bin/python3 -c 'import json, sys; print(*(b["name"] for b in json.load(sys.stdin)))')
assert_eq "$names" "m0 f0" "bdevs from the config"
assert_eq "$(nvlend log level)" 1 "log level from the config"
assert_eq "$(nvlend rpc framework_get_reactors | json_get '["spin_us"]')" 50 "spin_us from the config"
assert_eq "$(nvlend rpc framework_get_reactors | json_get '["io_sleep_us"]')" 7 \
	"io_sleep_us from the config"
grep -q "configuration $T/plain.json applied" "$DAEMON_LOG" || fail "no 'applied' notice"
# a call that waits for the start, inside the configuration that is the
# start: skipped with a notice (it had hung the start for good)
grep -q "config: framework_wait_init skipped" "$DAEMON_LOG" || fail "no notice for framework_wait_init"
# save_config -> restart -> the same configuration (SPDK's shape)
nvlend save-config -o "$T/saved.json" || fail "save-config"
/usr/bin/python3 - "$T/saved.json" <<'PY' || fail "saved config shape"
import json, sys
d = json.load(open(sys.argv[1]))
subs = {s["subsystem"]: s["config"] for s in d["subsystems"]}
calls = subs["bdev"]
assert [c["method"] for c in calls] == ["bdev_malloc_create", "bdev_aio_create"], calls
assert all(set(c) == {"method", "params"} for c in calls), calls
PY
nvlend --json bdev list >"$T/before.json"
stop_nvlendd
start_nvlendd -c "$T/saved.json"
nvlend --json bdev list >"$T/after.json"
/usr/bin/python3 - "$T/before.json" "$T/after.json" <<'PY' || fail "bdevs differ after replay"
import json, sys
keys = ("name", "block_size", "num_blocks", "uuid", "product_name")
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert [{k: x[k] for k in keys} for x in a] == [{k: x[k] for k in keys} for x in b], (a, b)
PY
stop_nvlendd
pass
