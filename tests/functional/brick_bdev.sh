#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The brick bdev: a thin-provisioned volume whose 2 MiB extents are allocated
# in a memory brick on first write. I/O correctness (local brick and brick
# URI to a TCP listener, reads/writes/FUA/flush/write-zeroes/unmap from two
# reactors against a shadow copy, thin allocation and whole-extent unmap) runs
# in tests/helpers/brick_bdev_test; the daemon part checks the RPCs,
# brick_delete refusal, and save_config/replay of brick + bdev.
# timeout: 120
source "$(dirname "$0")/common.sh"

HELPER=$BUILD/tests/helpers/brick_bdev_test
[ -x "$HELPER" ] || fail "missing $HELPER (make tests)"
f=/dev/shm/${NVLEND_SHM_PREFIX}bf
s=/dev/shm/${NVLEND_SHM_PREFIX}bs
on_exit "rm -rf $f $s"
port=$(free_port) || fail "no free port"
"$HELPER" "$f" "$s" "$port" || fail "brick bdev I/O"
rm -rf "$f" "$s"

start_nvlendd
port=$(free_port) || fail "no free port"
nvlend brick create b0 --fast "$T/fast" --slow "$T/slow" --capacity 16 --fast-blocks 4 >/dev/null ||
	fail "create brick"
nvlend brick listen b0 tcp 127.0.0.1 "$port" || fail "listen"
out=$(rpc bdev_brick_create '{"name": "bv0", "brick": "b0", "base_addr": 0, "size_mib": 64}') ||
	fail "bdev_brick_create"
assert_eq "$out" '"bv0"' "bdev name"
rpc bdev_brick_create "{\"name\": \"bv1\", \"brick\": \"brick+tcp://127.0.0.1:$port/b0\", \"base_addr\": 1073741824, \"size_mib\": 32, \"block_size\": 512}" >/dev/null ||
	fail "bdev_brick_create over tcp to ourselves"
nvlend bdev list | grep_q '^bv0 *brick *64.0 MiB *4096' || fail "bdev list: $(nvlend bdev list)"
nvlend bdev list | grep_q '^bv1 *brick *32.0 MiB *512' || fail "bdev list: $(nvlend bdev list)"
expect_fail rpc bdev_brick_create '{"name": "bad", "brick": "b0", "base_addr": 0, "size_mib": 3}'
expect_fail nvlend brick delete b0
nvlend save-config -o "$T/cfg.json" || fail "save-config"
grep -q bdev_brick_create "$T/cfg.json" || fail "config lacks bdev_brick_create"
stop_nvlendd
start_nvlendd -c "$T/cfg.json"
nvlend bdev list | grep_q '^bv0 *brick' || fail "bv0 not replayed"
nvlend bdev list | grep_q '^bv1 *brick' || fail "bv1 not replayed"
rpc bdev_brick_delete '{"name": "bv0"}' >/dev/null || fail "bdev_brick_delete"
rpc bdev_brick_delete '{"name": "bv1"}' >/dev/null || fail "bdev_brick_delete"
expect_fail rpc bdev_brick_delete '{"name": "bv0"}'
nvlend brick delete b0 || fail "brick delete after its bdevs"
pass
