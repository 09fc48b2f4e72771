#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 120
# nvlend attach via FUSE file + loop device, with real tools: lsblk shows the
# device, mkfs.ext4, mount, write files, sync; detach is refused while
# mounted (naming the mount point); unmount, detach; a second attach process
# as a second host finds the files intact (fsck clean); discard reads back
# zeroes; a killed attach process is reported dead and cleaned up.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
source "$(dirname "$0")/attach_common.sh"
requires mkfs.ext4 fsck.ext4 lsblk blkdiscard losetup
attach_setup
start_nvlendd
shm_target disk 64M
M=$(mkmnt m)

assert_eq "$(nvlend attachments)" "NAME  DEVICE  MECHANISM  PID  STATE  SIZE  URI
none" "attachments when nothing is attached"

log "attach via fuse"
dev=$(nvlend attach "$URI" --via fuse --name a1 --queues 2) || fail "attach"
case "$dev" in /dev/loop*) ;; *) fail "not a loop device: $dev" ;; esac
[ -b "$dev" ] || fail "$dev is not a block device"
size=$(lsblk -bdno SIZE "$dev") || fail "lsblk does not show $dev"
assert_eq "$size" $((64 << 20)) "lsblk size"
lst=$(nvlend attachments)
assert_contains "$lst" "a1"
assert_contains "$lst" "$dev"
assert_contains "$lst" "fuse"
assert_contains "$lst" "attached"
assert_eq "$(attach_field a1 mechanism)" fuse
pid=$(attach_field a1 pid)
kill -0 "$pid" || fail "attach process $pid not running"
lbs=$(cat /sys/block/$(basename "$dev")/queue/logical_block_size)
assert_eq "$lbs" 512 "logical block size"
# one controller for the attach process
assert_eq "$(count_ctrlrs)" 1 "controllers"
# the same name cannot be attached twice
expect_fail nvlend attach "$URI" --name a1

log "mkfs.ext4, mount, write, sync"
mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4"
mount "$dev" "$M" || fail "mount"
head -c 3M /dev/urandom > "$T/f1"
cp "$T/f1" "$M/f1"
mkdir "$M/dir"
for i in $(seq 1 20); do echo "file $i" > "$M/dir/n$i"; done
sync
sum=$(md5sum < "$T/f1")

log "detach refused while mounted"
out=$(nvlend detach "$dev" 2>&1) && fail "detach of a mounted device succeeded"
assert_contains "$out" "$M" "refusal"
expect_fail nvlend detach a1
kill -0 "$pid" || fail "attach process died after a refused detach"
assert_eq "$(md5sum < "$M/f1")" "$sum" "file after the refusal"

log "unmount, detach"
umount "$M" || fail "umount"
nvlend detach a1 || fail "detach"
attach_pid_gone "$pid" || fail "attach process $pid still running"
[ ! -e "$NVLEND_ATTACH_DIR/a1.json" ] || fail "record left behind"
[ ! -e "$NVLEND_ATTACH_DIR/a1.disk" ] || fail "FUSE file left behind"
# (bound to our attachment: another test may take the freed device at once)
if losetup -nO BACK-FILE "$dev" 2>/dev/null | grep_q -F "$NVLEND_ATTACH_DIR"; then fail "$dev still bound"; fi
wait_until 5 sh -c "[ \$(nvlend rpc nvmf_subsystem_get_controllers '{\"nqn\":\"$NQN\"}' | tr -d ' \n') = '[]' ]" ||
	fail "controller not disconnected"

log "a second host (an attach process in the foreground) finds the files intact"
nvlend attach "$URI" --name host2 --hostnqn nqn.2026-01.io.nvlend.test:host2 --foreground \
	>"$T/host2.out" 2>"$T/host2.err" &
fg_pid=$!
wait_until 10 grep -q /dev/ "$T/host2.out" || { cat "$T/host2.err" >&2; fail "attach as host2"; }
dev2=$(head -n 1 "$T/host2.out")
fsck.ext4 -fn "$dev2" >"$T/fsck.log" 2>&1 || { cat "$T/fsck.log" >&2; fail "fsck not clean"; }
mount "$dev2" "$M" || fail "mount on host2"
assert_eq "$(md5sum < "$M/f1")" "$sum" "file on host2"
assert_eq "$(cat "$M/dir/n17")" "file 17" "small file on host2"
umount "$M"

log "discard (FALLOCATE punch hole -> Write Zeroes with deallocate) reads back zeroes"
dd if=/dev/urandom of="$dev2" bs=1M seek=1 count=2 oflag=direct status=none || fail "fill"
cmp -s -n $((2 << 20)) <(dd if="$dev2" bs=1M skip=1 count=2 iflag=direct status=none) /dev/zero &&
	fail "random data reads as zero"
blkdiscard -f -o 1M -l 2M "$dev2" || fail "blkdiscard"
cmp -n $((2 << 20)) <(dd if="$dev2" bs=1M skip=1 count=2 iflag=direct status=none) /dev/zero ||
	fail "discarded range does not read zero"
nvlend detach host2 || fail "detach host2"
wait $fg_pid
st=$?
cat "$T/host2.err" >&2
assert_eq "$st" 0 "exit status of the foreground attach process (sanitizer reports fail it)"

log "detach --force unmounts lazily"
dev4=$(nvlend attach "$URI" --name a4) || fail "attach a4"
pid4=$(attach_field a4 pid)
mount "$dev4" "$M" || fail "mount a4"
nvlend detach --force a4 || fail "detach --force"
grep -q " $M " /proc/self/mountinfo && fail "still mounted after --force"
attach_pid_gone "$pid4" || fail "attach process $pid4 still running"

log "a 4 KiB-block namespace gives a 4 KiB-sector loop device"
nvlend bdev create ram big4k 32M --block-size 4096 >/dev/null || fail "4k bdev"
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"big4k\",\"nsid\":2}}" \
	>/dev/null || fail "add ns 2"
dev5=$(nvlend attach "$URI" --name a5 --nsid 2) || fail "attach nsid 2"
assert_eq "$(cat /sys/block/$(basename "$dev5")/queue/logical_block_size)" 4096 "4k logical block size"
assert_eq "$(lsblk -bdno SIZE "$dev5")" $((32 << 20)) "4k device size"
mkfs.ext4 -q -F "$dev5" || fail "mkfs on 4k"
fsck.ext4 -fn "$dev5" >/dev/null 2>&1 || fail "fsck on 4k"
nvlend detach a5 || fail "detach a5"

log "a killed attach process is reported dead and cleaned up"
dev3=$(nvlend attach "$URI" --name a3) || fail "attach a3"
pid3=$(attach_field a3 pid)
kill -9 "$pid3"
wait_until 5 attach_pid_gone "$pid3" || fail "attach process not killed"
lst=$(nvlend attachments)
assert_contains "$lst" "dead"
[ ! -e "$NVLEND_ATTACH_DIR/a3.json" ] || fail "dead record not removed"
if losetup -nO BACK-FILE "$dev3" 2>/dev/null | grep_q -F "$NVLEND_ATTACH_DIR"; then fail "$dev3 not released"; fi
grep -q "$NVLEND_ATTACH_DIR/a3.disk" /proc/self/mountinfo && fail "dead FUSE mount left"
pass
