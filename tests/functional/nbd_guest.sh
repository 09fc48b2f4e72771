#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The Linux kernel's NBD driver against our export: one QEMU guest boot
# (Debian's stock kernel) where nbd-client connects to the host's nvlendd
# (10.0.2.2:PORT) with two connections (multi-conn), runs fio with verify on
# the raw device, then mkfs.ext4, mount, write, sync, umount, e2fsck, remount
# and checksum. The host then checks the export's counters and copies the
# image out with nbdcopy for its own e2fsck.
# timeout: 300
# asan: no
source "$(dirname "$0")/common.sh"
requires nbdcopy
guest_prepare

start_nvlendd
port=$(free_port) || fail "no free port"
nvlend bdev create ram r0 256M >/dev/null || fail "ram bdev"
nvlend nbd start --port "$port" || fail "nbd start"
nvlend nbd export add disk0 r0 --description "guest test disk" || fail "export add"

cat > "$T/guest.sh" <<EOF
set -e
modprobe nbd nbds_max=2
nbd-client 10.0.2.2 $port /dev/nbd0 -N disk0 -b 4096 -C 2 -t 60
echo "size: \$(blockdev --getsize64 /dev/nbd0)"
fio --name=verify --filename=/dev/nbd0 --direct=1 --ioengine=libaio --iodepth=16 \
    --rw=randrw --rwmixread=50 --bs=4k --offset=128M --size=48M --verify=crc32c \
    --do_verify=1 --verify_fatal=1 --group_reporting >/tmp/fio.txt 2>&1 || { cat /tmp/fio.txt; exit 1; }
grep -E 'err=' /tmp/fio.txt
echo "fio verify ok"
mkfs.ext4 -q -F /dev/nbd0
mkdir -p /mnt/n && mount -t ext4 /dev/nbd0 /mnt/n
dd if=/dev/urandom of=/mnt/n/blob bs=1M count=24 2>/dev/null
sum1=\$(md5sum /mnt/n/blob | cut -d' ' -f1)
sync
umount /mnt/n
e2fsck -fn /dev/nbd0 >/tmp/fsck.txt 2>&1 || { cat /tmp/fsck.txt; exit 1; }
echo "e2fsck clean"
echo 3 > /proc/sys/vm/drop_caches
mount -t ext4 /dev/nbd0 /mnt/n
sum2=\$(md5sum /mnt/n/blob | cut -d' ' -f1)
umount /mnt/n
[ "\$sum1" = "\$sum2" ] && echo "file survives remount: \$sum1"
nbd-client -d /dev/nbd0
echo NBD_GUEST_OK
EOF
guest_run -t 270 -f "$T/guest.sh" > "$T/guest.out" 2>&1
rc=$?
cat "$T/guest.out" >&2
[ $rc = 0 ] || fail "guest script failed (status $rc)"
grep -q NBD_GUEST_OK "$T/guest.out" || fail "guest did not finish"
grep -q "size: 268435456" "$T/guest.out" || fail "kernel saw the wrong size"
grep -q "e2fsck clean" "$T/guest.out" || fail "e2fsck"
grep -q "file survives remount" "$T/guest.out" || fail "file content changed across remount"
grep -q "err= 0" "$T/guest.out" || fail "fio reported errors"
# the kernel used two connections and the server saw the traffic
st=$(nvlend --json nbd export list disk0)
[ "$(printf '%s' "$st" | json_get '[0]["total_connections"]')" -ge 2 ] || fail "no multi-conn: $st"
[ "$(printf '%s' "$st" | json_get '[0]["stats"]["write_ops"]')" -gt 1000 ] || fail "write counter: $st"
[ "$(printf '%s' "$st" | json_get '[0]["stats"]["flush_ops"]')" -ge 1 ] || fail "no flush seen: $st"
# the image the guest left behind is a clean ext4 for the host's e2fsck too
nbdcopy "nbd://127.0.0.1:$port/disk0" "$T/fs.img" || fail "nbdcopy out"
if command -v e2fsck >/dev/null; then
	e2fsck -fn "$T/fs.img" >/dev/null 2>&1 || fail "host e2fsck of the exported image"
fi
pass
