#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 180
#
# The rest of dis_nvme's host side:
#   - `nvlend attach --all nvme+tcp://HOST:PORT` attaches every namespace of
#     every subsystem the target's discovery log offers this host (two
#     namespaces of one subsystem, one of another), skips a listed subsystem
#     this host may not use, and `--all URI/NQN` takes one subsystem's;
#   - stable names: /dev/disk/by-id-style links nvlend-SUBNQN-nNSID (in
#     $NVLEND_BYID_DIR here) pointing at each device, gone after detach;
#   - debug levels on the client side: `attach --log-level 3` writes verbose
#     (admin commands, queue creation, the session) and trace lines (every
#     admin command's fields, every request) to the attachment's log, and
#     NVLEND_LOG_LEVEL=2 does it for another libnvlend program; the daemon
#     at --log-level 3 logs the admin path too; `--spin-us` reaches the queues;
#   - one daemon per backing device: a second daemon's bdev on a file the
#     first serves is refused (naming its pid); the first may open it twice.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/attach_common.sh"
requires_root
attach_setup
export NVLEND_BYID_DIR=$T/by-id

PORT=$(free_port)
DPORT=$(free_port)
[ "$PORT" != "$DPORT" ] || DPORT=$(free_port)
A=nqn.2024-01.io.nvlend:all-a
B=nqn.2024-01.io.nvlend:all-b
HIDDEN=nqn.2024-01.io.nvlend:all-hidden
start_nvlendd --log-level 3
for n in a1 a2 b1 h1; do rpc bdev_malloc_create "{\"name\":\"$n\",\"num_blocks\":8192,\"block_size\":512}" >/dev/null; done
rpc nvmf_create_subsystem "{\"nqn\":\"$A\",\"allow_any_host\":true}" >/dev/null
rpc nvmf_create_subsystem "{\"nqn\":\"$B\",\"allow_any_host\":true}" >/dev/null
rpc nvmf_create_subsystem "{\"nqn\":\"$HIDDEN\",\"listed_to_any_host\":true}" >/dev/null
for pair in "$A a1" "$A a2" "$B b1" "$HIDDEN h1"; do
	set -- $pair
	rpc nvmf_subsystem_add_ns "{\"nqn\":\"$1\",\"namespace\":{\"bdev_name\":\"$2\"}}" >/dev/null
done
for s in $A $B $HIDDEN; do
	rpc nvmf_subsystem_add_listener "{\"nqn\":\"$s\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\"}}" >/dev/null
done
rpc nvmf_subsystem_add_listener "{\"nqn\":\"nqn.2014-08.org.nvmexpress.discovery\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$DPORT\"}}" >/dev/null

log "attach --all through the discovery controller"
nvlend attach --all "nvme+tcp://127.0.0.1:$DPORT" --via fuse --queues 1 >"$T/all.out" 2>"$T/all.err" ||
	{ cat "$T/all.err" >&2; fail "attach --all"; }
assert_eq "$(grep -c '^/dev/' "$T/all.out")" 3 "devices attached"
grep -q "$HIDDEN: not offered to this host; skipped" "$T/all.err" ||
	fail "the hidden subsystem was not skipped: $(cat "$T/all.err")"
assert_eq "$(nvlend attachments | grep -c attached)" 3 "attachments"
for l in "$A-n1" "$A-n2" "$B-n1"; do
	link=$NVLEND_BYID_DIR/nvlend-$l
	[ -L "$link" ] || fail "no stable link $link: $(ls "$NVLEND_BYID_DIR")"
	dev=$(readlink "$link")
	grep -qx "$dev" "$T/all.out" || fail "$link points at $dev, not an attached device"
done
# the link names the namespace, not the device: a write through one is read through the device
dd if=/dev/urandom of="$T/blk" bs=4k count=1 status=none
dd if="$T/blk" of="$NVLEND_BYID_DIR/nvlend-$A-n2" bs=4k count=1 oflag=direct status=none ||
	fail "write through the link"
cmp <(dd if="$(readlink "$NVLEND_BYID_DIR/nvlend-$A-n2")" bs=4k count=1 iflag=direct status=none) "$T/blk" ||
	fail "read back"
for name in $(nvlend --json attachments | /usr/bin/python3 -c 'import json,sys; print(" ".join(a["name"] for a in json.load(sys.stdin)))'); do
	nvlend detach "$name" >/dev/null || fail "detach $name"
done
[ -z "$(ls "$NVLEND_BYID_DIR")" ] || fail "links left after detach: $(ls "$NVLEND_BYID_DIR")"

log "attach --all URI/NQN: one subsystem's namespaces; --log-level 3 and --spin-us"
nvlend attach --all "nvme+tcp://127.0.0.1:$PORT/$A" --via fuse --queues 1 --log-level 3 \
	--spin-us 123 --name x 2>/dev/null && fail "--all with --name accepted"
nvlend attach --all "nvme+tcp://127.0.0.1:$PORT/$A" --via fuse --queues 1 --log-level 3 \
	--spin-us 123 >"$T/a.out" 2>"$T/a.err" || { cat "$T/a.err" >&2; fail "attach --all NQN"; }
assert_eq "$(grep -c '^/dev/' "$T/a.out")" 2 "namespaces of $A"
dev=$(head -1 "$T/a.out")
dd if="$dev" of=/dev/null bs=4k count=4 iflag=direct status=none
name=$(nvlend --json attachments | /usr/bin/python3 -c 'import json,sys; print([a["name"] for a in json.load(sys.stdin) if a["device"]==sys.argv[1]][0])' "$dev")
attlog=$NVLEND_ATTACH_DIR/$name.log
# set-up lines go to the terminal (stderr), the rest to the attachment's log
grep -q "VERBOSE.*admin opc 0x06" "$T/a.err" || fail "no verbose admin line: $(head -5 "$T/a.err")"
grep -q "TRACE.*admin submit: opc" "$T/a.err" || fail "no trace admin line"
grep -q "VERBOSE.*I/O queue 1 created: .*spin 123 us" "$T/a.err" ||
	fail "no queue creation line with --spin-us"
grep -q "VERBOSE.*session nvme+tcp://.*namespace" "$T/a.err" || fail "no session line"
grep -q "TRACE.*session request: op 1" "$attlog" || fail "no trace line per request in $attlog"
grep -q "VERBOSE.*admin opc 0x06" "$DAEMON_LOG" || fail "the daemon at level 3 logs no admin command"
grep -q "TRACE.*admin cdw10" "$DAEMON_LOG" || fail "the daemon at level 3 logs no admin trace"
for n in $(nvlend --json attachments | /usr/bin/python3 -c 'import json,sys; print(" ".join(a["name"] for a in json.load(sys.stdin)))'); do
	nvlend detach "$n" >/dev/null || fail "detach $n"
done

log "NVLEND_LOG_LEVEL for any libnvlend program"
NVLEND_LOG_LEVEL=2 nvlend-perf "nvme+tcp://127.0.0.1:$PORT/$B" --rw=read --bs=4k --io_limit=64k \
	>"$T/perf.log" 2>&1 || { cat "$T/perf.log" >&2; fail "nvlend-perf"; }
grep -q "VERBOSE.*connected to nvme+tcp" "$T/perf.log" || fail "NVLEND_LOG_LEVEL=2 printed no verbose line"
grep -q "TRACE" "$T/perf.log" && fail "level 2 printed trace lines"
NVLEND_LOG_LEVEL=0 nvlend-perf "nvme+tcp://127.0.0.1:$PORT/$B" --rw=read --bs=4k --io_limit=64k \
	>"$T/perf0.log" 2>&1 || fail "nvlend-perf at level 0"
grep -q "VERBOSE" "$T/perf0.log" && fail "level 0 printed verbose lines"

log "one daemon per backing device"
truncate -s 16M "$T/disk.img"
rpc bdev_aio_create "{\"name\":\"f0\",\"filename\":\"$T/disk.img\",\"shared\":true}" >/dev/null || fail "first bdev"
rpc bdev_aio_create "{\"name\":\"f1\",\"filename\":\"$T/disk.img\",\"shared\":true}" >/dev/null ||
	fail "the same daemon may open its file twice when both bdevs say shared"
FIRST=$WORKER_PID # the worker holds the lock (the keeper holds no bdev)
FIRSTSOCK=$NVLEND_SOCKET
start_nvlendd
out=$(nvlend rpc bdev_aio_create "{\"name\":\"g0\",\"filename\":\"$T/disk.img\"}" 2>&1) &&
	fail "a second daemon served the same file"
grep -q "is served by another process (pid $FIRST)" "$DAEMON_LOG" ||
	fail "no message naming the first daemon: $(tail -3 "$DAEMON_LOG")"
nvlend -s "$FIRSTSOCK" rpc bdev_aio_delete '{"name":"f0"}' >/dev/null
nvlend -s "$FIRSTSOCK" rpc bdev_aio_delete '{"name":"f1"}' >/dev/null
nvlend rpc bdev_aio_create "{\"name\":\"g0\",\"filename\":\"$T/disk.img\"}" >/dev/null ||
	fail "the file is still locked after the first daemon let it go"
pass
