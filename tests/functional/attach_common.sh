# SPDX-License-Identifier: BSD-3-Clause
# Helpers for `nvlend attach` tests (source after common.sh and shm_common.sh).
# Every attachment of the test lives in its own state dir ($T/attach), and
# attach_cleanup (registered by attach_setup) unmounts, detaches and kills
# whatever the test left behind, even when it failed half-way.

attach_setup() {
	requires_root
	[ -w /dev/fuse ] || skip "no /dev/fuse"
	[ -w /dev/loop-control ] || skip "no loop devices"
	export NVLEND_ATTACH_DIR=$T/attach
	mkdir -p "$NVLEND_ATTACH_DIR"
	on_exit attach_cleanup
}

# field NAME KEY: a field of an attachment record
attach_field() {
	/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
		"$NVLEND_ATTACH_DIR/$1.json" "$2"
}

# unmount_all DEV: lazily unmount DEV and its partitions wherever mounted
unmount_all() {
	local dev=$1 mp
	[ -b "$dev" ] || return 0
	for mp in $(lsblk -nro MOUNTPOINTS "$dev" 2>/dev/null); do
		umount -l "$mp" 2>/dev/null
	done
}

attach_cleanup() {
	local j name dev pid b
	for j in "$NVLEND_ATTACH_DIR"/*.json; do
		[ -f "$j" ] || continue
		name=$(basename "$j" .json)
		dev=$(attach_field "$name" device 2>/dev/null)
		pid=$(attach_field "$name" pid 2>/dev/null)
		unmount_all "$dev"
		nvlend detach --force --timeout 10 "$name" >/dev/null 2>&1
		[ -n "$pid" ] && [ "$pid" != 0 ] && kill -9 "$pid" 2>/dev/null
	done
	# loop devices still backed by one of our FUSE files, then the FUSE mounts
	for b in /sys/block/loop*/loop/backing_file; do
		[ -f "$b" ] || continue
		case "$(cat "$b" 2>/dev/null)" in
		"$NVLEND_ATTACH_DIR"/*) losetup -d "/dev/$(basename "$(dirname "$(dirname "$b")")")" ;;
		esac
	done 2>/dev/null
	for b in "$NVLEND_ATTACH_DIR"/*.disk; do
		[ -e "$b" ] && umount -l "$b" 2>/dev/null
	done
	true
}

# attach_pid_gone PID: the process has exited (or is a zombie)
attach_pid_gone() {
	! kill -0 "$1" 2>/dev/null || grep -q '^State:.*[ZX]' "/proc/$1/status" 2>/dev/null
}

# mkmnt NAME: a mount point under $T, unmounted at exit
mkmnt() {
	mkdir -p "$T/$1"
	on_exit "umount -l $T/$1"
	echo "$T/$1"
}
