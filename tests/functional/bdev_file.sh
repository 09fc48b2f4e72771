#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# File bdevs through the CLI on real back ends: a file on the root file
# system (O_DIRECT), a file on tmpfs (served inline), a loop block device
# (natural block size from the device, and a block size below the device's
# so O_DIRECT is impossible: buffered, with a log line), read-only, relative
# paths, errors; bdev list/iostat show each; delete leaves the files alone.
# timeout: 90
source "$(dirname "$0")/common.sh"

info() { # NAME KEY: driver_specific.file.KEY of bdev NAME
	nvlend --json bdev list "$1" | json_get "[0]['driver_specific']['file']['$2']"
}

truncate -s 32M "$T/disk.img"
start_nvlendd

# root file system: direct I/O, block size = the file system's DIO alignment
nvlend bdev create file d0 "$T/disk.img" --shared >/dev/null || fail "create on $T/disk.img"
assert_eq "$(info d0 direct_io)" True "direct I/O on $(df --output=fstype "$T" | tail -1)"
assert_eq "$(info d0 io_mode)" uring "io mode on disk"
assert_eq "$(info d0 filename)" "$T/disk.img" "filename"
bs=$(nvlend --json bdev list d0 | json_get '[0]["block_size"]')
assert_eq "$(nvlend --json bdev list d0 | json_get '[0]["num_blocks"]')" $((32 * 1048576 / bs)) "blocks"
# a second bdev on the same file: refused unless both say --shared
out=$(nvlend bdev create file dx "$T/disk.img" 2>&1) && fail "a second bdev on the file without --shared"
assert_contains "$out" "Device or resource busy" "second bdev refusal"
grep -q "dx: $T/disk.img is already served by bdev d0" "$DAEMON_LOG" || fail "refusal not logged with the first bdev's name"
nvlend bdev create file d4k "$T/disk.img" --block-size 4096 --readonly --shared >/dev/null || fail "4k ro"
assert_eq "$(nvlend --json bdev list d4k | json_get '[0]["read_only"]')" True "read-only flag"
assert_eq "$(nvlend --json bdev list d4k | json_get '[0]["supported_io_types"]["write"]')" False \
	"read-only bdev advertises no writes"
# a relative path is resolved by the CLI (the daemon has its own cwd)
(cd "$T" && nvlend bdev create file rel disk.img --shared >/dev/null) || fail "relative path"
nvlend save-config | grep_q '"shared": true' || fail "save-config lacks shared"
assert_eq "$(info rel filename)" "$T/disk.img" "relative path resolved"

# tmpfs: inline, buffered, no O_DIRECT notice needed
if [ "$(stat -f -c %T /dev/shm)" = tmpfs ]; then
	shm=/dev/shm/${NVLEND_SHM_PREFIX}disk
	truncate -s 8M "$shm"
	nvlend bdev create file s0 "$shm" --shared >/dev/null || fail "create on tmpfs"
	assert_eq "$(info s0 io_mode)" sync "tmpfs io mode (auto)"
	assert_eq "$(info s0 direct_io)" False "tmpfs direct"
	nvlend bdev create file s1 "$shm" --io-mode uring --shared >/dev/null || fail "tmpfs uring mode"
	assert_eq "$(info s1 io_mode)" uring "tmpfs io mode (uring)"
	expect_fail nvlend bdev create file s2 "$shm" --io-mode turbo
fi

# a block device (loop), if this machine lets us make one
loop=""
if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null; then
	truncate -s 16M "$T/loop.img"
	loop=$(losetup -f --show -b 4096 "$T/loop.img" 2>/dev/null) || loop=""
fi
if [ -n "$loop" ]; then
	on_exit "losetup -d $loop"
	nvlend bdev create file b0 "$loop" --shared >/dev/null || fail "create on $loop"
	assert_eq "$(info b0 block_device)" True "block_device flag"
	assert_eq "$(nvlend --json bdev list b0 | json_get '[0]["block_size"]')" 4096 "natural block size"
	assert_eq "$(nvlend --json bdev list b0 | json_get '[0]["num_blocks"]')" 4096 "device size"
	assert_eq "$(nvlend --json bdev list b0 | json_get '[0]["product_name"]')" "Block device" "product"
	# 512-byte blocks on a 4096-byte device: O_DIRECT impossible, buffered with a notice
	nvlend bdev create file b1 "$loop" --block-size 512 --shared >/dev/null || fail "512 on a 4k device"
	assert_eq "$(info b1 direct_io)" False "direct I/O below the device block size"
	grep -q "b1: block size 512 is below the direct-I/O alignment 4096 of $loop; using buffered I/O" \
		"$DAEMON_LOG" || fail "no log line for the buffered fallback"
	nvlend bdev delete b1 || fail "delete b1"
	nvlend bdev delete b0 || fail "delete b0"
	[ -b "$loop" ] || fail "loop device gone"
else
	log "no loop device here (not root or no losetup): block-device checks skipped"
fi

# errors: clear messages, right exit codes
msg=$(nvlend bdev create file x "$T/missing.img" 2>&1); rc=$?
assert_eq "$rc" 1 "exit status for a missing file"
assert_contains "$msg" "missing.img" "missing file message"
msg=$(nvlend rpc bdev_uring_create "{\"name\": \"x\", \"filename\": \"$T/missing.img\"}" 2>&1); rc=$?
assert_eq "$rc" 1 "exit status for a missing file (rpc)"
assert_contains "$msg" "No such file or directory" "errno text"
msg=$(nvlend bdev create file x /dev/null 2>&1); rc=$?
assert_eq "$rc" 2 "exit status for a character device"
truncate -s 100 "$T/tiny.img"
expect_fail nvlend bdev create file x "$T/tiny.img"
msg=$(nvlend bdev create file d0 "$T/disk.img" 2>&1); rc=$?
assert_eq "$rc" 1 "exit status for a duplicate name"
assert_contains "$msg" "already exists" "duplicate message"

# list and iostat show every bdev
for n in d0 d4k rel; do
	nvlend bdev list | grep_q "^$n " || fail "bdev list lacks $n"
	nvlend bdev iostat | grep_q "^$n " || fail "bdev iostat lacks $n"
done
[ "$(nvlend --json bdev iostat | json_get '["bdevs"][0]["num_read_ops"]')" = 0 ] ||
	fail "iostat counters of an idle bdev"

# delete: refused by the wrong typed RPC, done by the right one, files stay
expect_fail nvlend rpc bdev_malloc_delete '{"name": "d0"}'
for n in d0 d4k rel; do nvlend bdev delete "$n" || fail "delete $n"; done
[ -f "$T/disk.img" ] || fail "delete removed the file"
stop_nvlendd
pass
