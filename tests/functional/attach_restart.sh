#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 180
# An attachment survives a target restart: a writer (fio with verify) runs on
# the attached device, nvlendd is killed with -9 and restarted from its saved
# configuration; the writer completes and its data verifies (nothing
# acknowledged is lost: a file bdev). Then the bound: with the target away
# longer than --reconnect-timeout, I/O fails with EIO, and works again once
# the target is back.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
source "$(dirname "$0")/attach_common.sh"
requires fio
attach_setup
start_nvlendd
img=/dev/shm/${NVLEND_SHM_PREFIX}restart.img
truncate -s 64M "$img"
NQN=nqn.2026-01.io.nvlend.test:restart
nvlend bdev create file f0 "$img" >/dev/null || fail "file bdev"
rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true}" >/dev/null || fail "subsystem"
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"f0\"}}" >/dev/null ||
	fail "ns"
rpc nvmf_subsystem_add_listener \
	"{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"$T/r.sock\"}}" >/dev/null ||
	fail "listener"
URI="nvme+shm://$T/r.sock?nqn=$NQN"
nvlend save-config > "$T/config.json" || fail "save-config"

dev=$(nvlend attach "$URI" --name r --reconnect-timeout 30 2>"$T/attach.err") ||
	{ cat "$T/attach.err" >&2; fail "attach"; }
# it says which mechanism it took and why not the better ones (this host
# has no nvme-tcp module: "via ... (not kernel: ...")
assert_contains "$(cat "$T/attach.err")" "nvlend attach: via " "attach's choice"

log "writer with verify across kill -9 + restart"
fio --name=w --filename="$dev" --rw=write --bs=64k --size=40M --direct=1 --ioengine=libaio \
	--iodepth=8 --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0 --rate=20m \
	>"$T/fio.log" 2>&1 &
fio_pid=$!
on_exit "kill $fio_pid"
sleep 0.6
kill -0 $fio_pid 2>/dev/null || { cat "$T/fio.log" >&2; fail "fio ended too early"; }
kill9_nvlendd
wait_until 20 sh -c "nvlend attachments | grep -q reconnecting" ||
	fail "state did not go to reconnecting"
sleep 1
start_nvlendd -c "$T/config.json"
wait $fio_pid
rc=$?
cat "$T/fio.log" >&2
assert_eq "$rc" 0 "fio status"
grep -q "err= 0" "$T/fio.log" || fail "fio reported an error"
wait_until 20 sh -c "nvlend attachments | grep -q ' attached '" || fail "not attached again"
[ "$(attach_field r reconnects)" -ge 1 ] || fail "no reconnect recorded"
# the data written before the crash is there too, read through a fresh host
dd if="$dev" of="$T/a" bs=1M count=40 iflag=direct status=none || fail "read back"
cmp "$T/a" <(dd if="$img" bs=1M count=40 status=none) || fail "device and file differ"
nvlend detach r || fail "detach"

log "bounded: I/O fails with EIO after --reconnect-timeout, works when the target is back"
dev=$(nvlend attach "$URI" --name t --reconnect-timeout 2) || fail "attach t"
dd if=/dev/urandom of="$T/blk" bs=4k count=1 status=none
dd if="$T/blk" of="$dev" bs=4k count=1 oflag=direct status=none || fail "write"
# the 2 s count from the loss, which the session may see before dd asks:
# time it from the kill
t0=$(date +%s)
kill9_nvlendd
if dd if="$dev" of=/dev/null bs=4k count=1 skip=100 iflag=direct status=none 2>"$T/dd.err"; then
	fail "read succeeded with the target away"
fi
el=$(($(date +%s) - t0))
cat "$T/dd.err" >&2
grep -qi "input/output error" "$T/dd.err" || fail "not EIO"
[ $el -ge 1 ] && [ $el -le 20 ] || fail "the failure took ${el}s (timeout 2 s)"
wait_until 20 sh -c "nvlend attachments | grep -q failed" || fail "state not failed"
start_nvlendd -c "$T/config.json"
wait_until 15 dd if="$dev" of="$T/blk2" bs=4k count=1 iflag=direct status=none ||
	fail "I/O did not resume"
cmp "$T/blk" "$T/blk2" || fail "data differs after resume"

log "detach while the target is away"
kill9_nvlendd
t0=$(date +%s)
nvlend detach --timeout 30 t || fail "detach with the target away"
[ $(($(date +%s) - t0)) -le 15 ] || fail "detach took $(($(date +%s) - t0)) s"
pass
