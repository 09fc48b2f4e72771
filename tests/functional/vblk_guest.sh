#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 240
# asan: no
# vhost-user-blk with the real peer: QEMU's vhost-user-blk-pci and the Linux
# virtio_blk driver in a guest (one boot). Disk vda: a file bdev on tmpfs,
# 2 queues; disk vdb: a read-only RAM bdev. In the guest: fio randrw with
# crc32c verify over both queues, mkfs.ext4 + mount + md5 across a remount +
# fstrim (DISCARD) + fsck, mke2fs zeroing with WRITE_ZEROES, a discarded range
# that reads back as zeroes, the
# serial (GET_ID), and a read-only disk that refuses writes. Afterwards the
# daemon's counters must show both queues used, discards and write-zeroes.
source "$(dirname "$0")/common.sh"
requires qemu-system-x86_64 /usr/bin/python3
guest_prepare

img=/dev/shm/${NVLEND_SHM_PREFIX}vblk.img
truncate -s 256M "$img"
start_nvlendd --reactors 2
nvlend bdev create file d0 "$img" >/dev/null || fail "file bdev"
nvlend bdev create ram r0 64M >/dev/null || fail "ram bdev"
nvlend vblk create vm0 d0 "$T/vda.sock" --queues 2 >/dev/null || fail "vblk create vm0"
nvlend vblk create romedia r0 "$T/vdb.sock" --read-only >/dev/null || fail "vblk create ro"
nvlend vblk list | grep '^vm0 .* listening' >/dev/null || fail "vm0 not listening: $(nvlend vblk list)"

cat > "$T/guest.sh" <<'EOF'
set -u
modprobe virtio_blk
for i in $(seq 1 50); do [ -b /dev/vdb ] && break; sleep 0.1; done
echo "vda size=$(blockdev --getsize64 /dev/vda) queues=$(ls /sys/block/vda/mq | wc -l) serial=$(cat /sys/block/vda/serial) ro=$(blockdev --getro /dev/vda)"
echo "vdb size=$(blockdev --getsize64 /dev/vdb) ro=$(blockdev --getro /dev/vdb) serial=$(cat /sys/block/vdb/serial)"
echo "discard_max=$(cat /sys/block/vda/queue/discard_max_bytes) wz_max=$(cat /sys/block/vda/queue/write_zeroes_max_bytes)"
fio --name=rw --filename=/dev/vda --direct=1 --ioengine=libaio --iodepth=16 --numjobs=2 \
    --rw=randrw --bs=4k --size=24M --offset_increment=32M --verify=crc32c --do_verify=1 \
    --verify_fatal=1 --group_reporting > /tmp/fio.txt 2>&1
echo "fio_rc=$?"; grep -E 'err=' /tmp/fio.txt | head -2
dd if=/dev/zero of=/tmp/zero1m bs=1M count=1 2>/dev/null
# no lazy init: mke2fs zeroes inode tables and journal with BLKZEROOUT -> WRITE_ZEROES
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0,nodiscard /dev/vda && mkdir -p /mnt/v && mount -t ext4 /dev/vda /mnt/v || echo MOUNT_FAILED
dd if=/dev/urandom of=/mnt/v/a bs=1M count=8 2>/dev/null
cp /mnt/v/a /mnt/v/b; sync
s1=$(md5sum /mnt/v/a /mnt/v/b | awk '{print $1}' | sort -u)
umount /mnt/v && echo 3 > /proc/sys/vm/drop_caches && mount -t ext4 /dev/vda /mnt/v
s2=$(md5sum /mnt/v/a /mnt/v/b | awk '{print $1}' | sort -u)
[ -n "$s1" ] && [ "$s1" = "$s2" ] && echo "MD5_ACROSS_REMOUNT_OK $s2"
rm /mnt/v/b; fstrim -v /mnt/v && echo FSTRIM_OK
umount /mnt/v
e2fsck -fn /dev/vda > /tmp/fsck.txt 2>&1 && echo FSCK_OK || cat /tmp/fsck.txt
# discard the last MiB after filling it: it reads back as zeroes
dd if=/dev/urandom of=/dev/vda bs=1M seek=255 count=1 oflag=direct 2>/dev/null
blkdiscard -o $((255 * 1048576)) -l 1048576 /dev/vda &&
	dd if=/dev/vda bs=1M skip=255 count=1 iflag=direct 2>/dev/null | cmp -s - /tmp/zero1m &&
	echo ZEROES_OK
# read-only disk: readable, not writable
dd if=/dev/vdb of=/tmp/ro bs=1M count=4 iflag=direct 2>/dev/null && echo "RO_READ $(md5sum < /tmp/ro | cut -c1-32)"
dd if=/dev/zero of=/dev/vdb bs=4k count=1 oflag=direct 2>/dev/null && echo RO_WRITE_SUCCEEDED || echo RO_WRITE_REFUSED
dmesg | grep -iE 'I/O error|blk_update_request|critical' | head -5
echo GUEST_DONE
EOF

# the read-only RAM bdev is all zeroes
zero_md5=$(head -c 4194304 /dev/zero | md5sum | cut -c1-32)
out=$(guest_run -t 200 -q "-chardev socket,id=v0,path=$T/vda.sock,reconnect=1 \
	-device vhost-user-blk-pci,chardev=v0,num-queues=2 \
	-chardev socket,id=v1,path=$T/vdb.sock,reconnect=1 \
	-device vhost-user-blk-pci,chardev=v1,num-queues=1" -f "$T/guest.sh" 2>"$T/guest.err")
rc=$?
printf '%s\n' "$out" >&2
cat "$T/guest.err" >&2
[ $rc = 0 ] || fail "guest run failed ($rc)"
assert_contains "$out" "GUEST_DONE"
assert_contains "$out" "vda size=268435456 queues=2 serial=vm0 ro=0"
assert_contains "$out" "vdb size=67108864 ro=1 serial=romedia"
assert_contains "$out" "fio_rc=0"
assert_contains "$out" "err= 0"
assert_contains "$out" "MD5_ACROSS_REMOUNT_OK"
assert_contains "$out" "FSTRIM_OK"
assert_contains "$out" "FSCK_OK"
assert_contains "$out" "ZEROES_OK"
assert_contains "$out" "RO_READ $zero_md5"
assert_contains "$out" "RO_WRITE_REFUSED"
case "$out" in *"I/O error"*|*MOUNT_FAILED*) fail "guest saw errors" ;; esac

# the daemon's view: both queues served, discards and write-zeroes arrived
nvlend --json vblk list vm0 > "$T/list.json"
/usr/bin/python3 - "$T/list.json" <<'EOF' || fail "controller counters"
import json, sys
c = json.load(open(sys.argv[1]))[0]
q = c["queues"]
print("vm0 per queue requests:", [x["requests"] for x in q], "discards:",
      sum(x["discard_ops"] for x in q), "write_zeroes:", sum(x["write_zeroes_ops"] for x in q),
      "ioerr:", sum(x["ioerr"] for x in q), file=sys.stderr)
assert all(x["requests"] > 100 for x in q), "a queue was not used"
assert sum(x["discard_ops"] for x in q) > 0, "no discard reached the bdev"
assert sum(x["write_zeroes_ops"] for x in q) > 0, "no write-zeroes reached the bdev"
assert sum(x["get_id_ops"] for x in q) > 0, "no GET_ID"
assert sum(x["ioerr"] + x["unsupp"] for x in q) == 0, "errors on vm0"
assert c["state"] in ("listening", "connected"), c["state"]
EOF
nvlend vblk destroy vm0 || fail "destroy vm0"
nvlend vblk destroy romedia || fail "destroy romedia"
[ -e "$T/vda.sock" ] && fail "socket left behind after destroy"
stop_nvlendd
pass
