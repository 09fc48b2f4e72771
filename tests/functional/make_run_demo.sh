#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 180
# `make run`'s demo (scripts/run-demo.sh) end to end, as the README promises:
# it must finish every step with status 0 and a summary, and leave nothing
# behind: no daemon, attach process, mount, loop device, /dev/shm region or
# scratch dir. A second run is interrupted (SIGTERM) while the file system is
# mounted and must clean up just as completely.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
source "$(dirname "$0")/attach_common.sh"
requires mkfs.ext4 lsblk losetup
attach_setup
DEMO=$TOP/scripts/run-demo.sh
export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"
export DEMO_SIZE_MIB=64 DEMO_FILE_MIB=8

# leftovers DIR: what a demo run left behind (empty when nothing)
leftovers() {
	local w
	ls -A "$TMPDIR"
	ls /dev/shm | grep "^${NVLEND_SHM_PREFIX}" || true
	for w in "$TMPDIR"/nvlend-demo.*; do
		[ -e "$w" ] || continue
		grep -F "$w" /proc/mounts || true
		losetup -a | grep -F "$w" || true
		pgrep -af "$w" || true
	done
	pgrep -af "nvlend-demo\." | grep -v -e pgrep -e "$TEST_NAME" || true
	grep -F "/nvlend-demo." /proc/mounts || true
}
on_exit 'pkill -f "$TMPDIR/nvlend-demo" ; for m in $(grep -oF "$TMPDIR/nvlend-demo[^ ]*" /proc/mounts); do umount -l "$m"; done'

log "full demo"
"$DEMO" "$BUILD" >"$T/demo.out" 2>&1
rc=$?
cat "$T/demo.out" >&2
assert_eq "$rc" 0 "demo exit status"
out=$(cat "$T/demo.out")
assert_contains "$out" "demo finished"
assert_contains "$out" "identical"
for s in "start nvlendd" "nvlend attach" mkfs.ext4 mount "write, sync, read back" \
	"namespace I/O stats" unmount "nvlend detach" "stop nvlendd"; do
	grep -qE "^  [0-9]+ +$s +[0-9.]+ +(ok|identical|/dev/)" "$T/demo.out" ||
		fail "summary has no successful step '$s'"
done
# the namespace's statistics show the file's 8 MiB written through it
grep -qE "writes [0-9]+ \(([89]|[1-9][0-9]+)\.[0-9] MiB\)" "$T/demo.out" ||
	fail "controller statistics do not show the written data"
left=$(leftovers)
[ -z "$left" ] || fail "the demo left behind: $left"

log "demo interrupted while mounted"
"$DEMO" "$BUILD" >"$T/demo2.out" 2>&1 &
pid=$!
wait_until 60 grep -q "==> \[6\]" "$T/demo2.out" || { cat "$T/demo2.out" >&2; fail "demo stalled"; }
kill -TERM $pid
wait $pid
rc=$?
cat "$T/demo2.out" >&2
[ $rc != 0 ] || fail "an interrupted demo exited 0"
assert_contains "$(cat "$T/demo2.out")" "interrupted: cleaning up"
left=$(leftovers)
[ -z "$left" ] || fail "the interrupted demo left behind: $left"
pass
