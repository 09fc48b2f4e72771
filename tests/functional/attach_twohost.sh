#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 120
# Two hosts on one namespace at once (the source's "ext4 mounted read-only"
# case): host A attached read-write formats, writes and syncs; host B,
# attached read-only as another host NQN, mounts with -o ro,noload and reads
# what A wrote; B cannot write (the device is read-only, the session refuses
# writes); both controllers show on the target.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
source "$(dirname "$0")/attach_common.sh"
requires mkfs.ext4 blockdev
attach_setup
start_nvlendd
shm_target shared 48M
MA=$(mkmnt ma)
MB=$(mkmnt mb)

devA=$(nvlend attach "$URI" --name hostA --hostnqn nqn.2026-01.io.nvlend.test:hostA) ||
	fail "attach host A"
mkfs.ext4 -q -F "$devA" || fail "mkfs on A"
mount "$devA" "$MA" || fail "mount on A"
head -c 2M /dev/urandom > "$T/data"
cp "$T/data" "$MA/data"
echo "written by A" > "$MA/note"
sync

devB=$(nvlend attach "$URI" --name hostB --readonly --hostnqn nqn.2026-01.io.nvlend.test:hostB) ||
	fail "attach host B"
[ "$devB" != "$devA" ] || fail "one device for two hosts"
assert_eq "$(blockdev --getro "$devB")" 1 "host B read-only"
assert_eq "$(attach_field hostB readonly)" True "record"
assert_eq "$(count_ctrlrs)" 2 "controllers (two hosts)"
hosts=$(rpc nvmf_subsystem_get_controllers "{\"nqn\":\"$NQN\"}")
assert_contains "$hosts" "nqn.2026-01.io.nvlend.test:hostA"
assert_contains "$hosts" "nqn.2026-01.io.nvlend.test:hostB"

mount -o ro,noload "$devB" "$MB" || fail "mount -o ro,noload on B"
cmp "$T/data" "$MB/data" || fail "B reads different data"
assert_eq "$(cat "$MB/note")" "written by A" "note on B"
expect_fail dd if=/dev/zero of="$devB" bs=4k count=1 oflag=direct status=none
# A keeps writing while B is mounted
dd if=/dev/urandom of="$MA/more" bs=64k count=16 status=none conv=fsync || fail "A writes on"

umount "$MB" || fail "umount B"
umount "$MA" || fail "umount A"
nvlend detach hostB || fail "detach B"
nvlend detach hostA || fail "detach A"
assert_eq "$(count_ctrlrs)" 0 "controllers after detach"
pass
