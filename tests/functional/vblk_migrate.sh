#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 420
# asan: no
# Live migration of a VM with a vhost-user-blk disk (docs/vhost.md "Live
# migration"): one nvlendd serves the same file bdev on two sockets (virtio-blk
# controllers `src` and `dst`); a source QEMU (512 MiB of shared memfd memory,
# software emulation) boots the test guest on `src`, a destination QEMU waits
# with -incoming on `dst`. In the guest fio writes with inline verification
# (crc32c, verify_backlog) at a limited rate, so the disk is busy when the host
# sends `migrate` over QMP; the destination continues, fio finishes with 0
# errors, a verify-only pass reads everything back, and GET_ID (the serial)
# is answered first by src, then by dst. The source QEMU exits after `quit`.
# Prints the migration's downtime and total time (query-migrate). Guest
# output: its virtio-serial port goes to a file on each side; the two files
# together are the guest's output.
# VBLK_MIGRATE_DAEMONS=2: the two controllers are in two daemons instead (both
# named vm0, so the serial stays), each on its own NVMe-over-shm bdev of one
# namespace that a third daemon exports (one daemon per backing file).
source "$(dirname "$0")/common.sh"
requires qemu-system-x86_64 /usr/bin/python3
guest_prepare

IMG=$GUEST_DIR/img/6.1
KIMG=$IMG/vmlinux
[ -f "$KIMG" ] || KIMG=$IMG/vmlinuz

# ---- the back-ends: one bdev, two controllers ----
img=/dev/shm/${NVLEND_SHM_PREFIX}migrate.img
truncate -s 128M "$img"
# 1024-entry rings: the used ring then has a page of its own in the guest
# (Linux packs desc, avail, used at 64-byte alignment), written only by us
vcreate() {  # SOCK NAME BDEV PATH
	nvlend -s "$1" vblk create "$2" "$3" "$4" --queues 2 --queue-size 1024 >/dev/null ||
		fail "vblk create $2"
}
if [ "${VBLK_MIGRATE_DAEMONS:-1}" = 2 ]; then
	NQN=nqn.2026-01.io.nvlend.test:migrate
	start_nvlendd
	TSOCK=$NVLEND_SOCKET
	TPID=$DAEMON_PID
	nvlend -s "$TSOCK" bdev create file f0 "$img" >/dev/null || fail "file bdev"
	nvlend -s "$TSOCK" rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true}" \
		>/dev/null || fail "subsystem"
	nvlend -s "$TSOCK" rpc nvmf_subsystem_add_ns \
		"{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"f0\"}}" >/dev/null || fail "ns"
	nvlend -s "$TSOCK" rpc nvmf_subsystem_add_listener \
		"{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"$T/t.sock\"}}" \
		>/dev/null || fail "listener"
	for side in src dst; do
		start_nvlendd --reactors 2
		nvlend -s "$NVLEND_SOCKET" rpc bdev_nvme_attach_controller \
			"{\"name\":\"Shm0\",\"trtype\":\"shm\",\"traddr\":\"$T/t.sock\",\"subnqn\":\"$NQN\"}" \
			>/dev/null || fail "attach the namespace ($side)"
		vcreate "$NVLEND_SOCKET" vm0 Shm0n1 "$T/$side.sock"
		eval "${side}_sock=\$NVLEND_SOCKET ${side}_log=\$DAEMON_LOG ${side}_pid=\$DAEMON_PID"
	done
	src_name=vm0 dst_name=vm0
else
	start_nvlendd --reactors 2
	nvlend bdev create file d0 "$img" >/dev/null || fail "file bdev"
	vcreate "$NVLEND_SOCKET" src d0 "$T/src.sock"
	vcreate "$NVLEND_SOCKET" dst d0 "$T/dst.sock"
	src_sock=$NVLEND_SOCKET dst_sock=$NVLEND_SOCKET src_log=$DAEMON_LOG
	src_name=src dst_name=dst
fi

# ---- the guest's program ----
cat > "$T/cmd.sh" <<'EOF'
set -u
for i in $(seq 1 100); do [ -b /dev/vda ] && break; sleep 0.1; done
echo "serial_before=$(cat /sys/block/vda/serial) queue_size=$(cat /sys/block/vda/mq/0/nr_tags)"
common="--filename=/dev/vda --direct=1 --ioengine=libaio --bs=4k --randrepeat=1
	--verify=crc32c --verify_fatal=1 --group_reporting"
# region B (64M..80M): written now, read back and checked across the migration
fio --name=pre $common --rw=write --offset=64M --size=16M --iodepth=16 --do_verify=0 \
	> /tmp/fio0.txt 2>&1 || { echo "prefill_failed"; cat /tmp/fio0.txt; }
echo FIO_STARTED
# across the migration: a writer on region A (0..24M, rate-limited so that it
# outlasts the migration; verify_backlog reads written blocks back while it
# writes) and a reader that checks region B again and again: its buffers are
# written only by the back-end, so pages it filled that the dirty log missed
# reach the destination stale and fail the check there
cat > /tmp/mig.fio <<EOT
[global]
filename=/dev/vda
direct=1
ioengine=libaio
bs=4k
randrepeat=1
verify=crc32c
verify_fatal=1
[writer]
rw=randwrite
offset=0
size=12M
numjobs=2
offset_increment=12M
iodepth=8
rate_iops=70
verify_backlog=64
do_verify=1
[reader]
rw=randwrite
offset=64M
size=16M
iodepth=16
verify_only=1
loops=3
rate_iops=300
EOT
fio /tmp/mig.fio > /tmp/fio1.txt 2>&1
echo "fio1_rc=$?"; grep -E 'err=' /tmp/fio1.txt | head -4
# afterwards: everything written reads back right on the destination
fio --name=after $common --rw=randwrite --size=12M --numjobs=2 --offset_increment=12M \
	--iodepth=16 --verify_only > /tmp/fio2.txt 2>&1
echo "fio2_rc=$?"; grep -E 'err=' /tmp/fio2.txt | head -3
echo "serial_after=$(cat /sys/block/vda/serial)"
dmesg | grep -iE 'I/O error|blk_update_request|critical|virtio.*broken|not a head' | head -5
echo GUEST_DONE
EOF
mkdir -p "$T/c" && cp "$T/cmd.sh" "$T/c/cmd.sh" && chmod 755 "$T/c/cmd.sh"
( cd "$T/c" && echo cmd.sh | cpio -o -H newc --quiet ) > "$T/cmd.cpio" || fail "cpio"
cp "$IMG/initramfs.img" "$T/initrd"
# an appended uncompressed cpio must start at a 4-byte aligned offset
truncate -s $(( ($(stat -c %s "$T/initrd") + 511) / 512 * 512 )) "$T/initrd"
cat "$T/cmd.cpio" >> "$T/initrd"

# ---- a QMP client (stdlib only) ----
cat > "$T/qmp.py" <<'EOF'
import json, socket, sys, time

def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    f = s.makefile("rw")
    json.loads(f.readline())                       # greeting
    return f

def call(f, cmd, args=None):
    msg = {"execute": cmd}
    if args is not None:
        msg["arguments"] = args
    f.write(json.dumps(msg) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:          # skip events
            return r

op = sys.argv[1]
f = connect(sys.argv[2])
call(f, "qmp_capabilities")
if op == "migrate":
    r = call(f, "migrate-set-parameters", {"max-bandwidth": 8 << 30, "downtime-limit": 300})
    assert "return" in r, r
    r = call(f, "migrate", {"uri": sys.argv[3]})
    assert "return" in r, r
    deadline = time.time() + float(sys.argv[4])
    while time.time() < deadline:
        q = call(f, "query-migrate")["return"]
        if q.get("status") in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.1)
    print(json.dumps(q))
elif op == "status":
    print(json.dumps(call(f, "query-status")["return"]))
elif op == "quit":
    call(f, "quit")
EOF

port=$(free_port)
# start_qemu SIDE [EXTRA...]: the same machine on both sides, its own sockets
# and files; sets QEMU_PID (timeout(1) in front: a bounded run, SIGTERM reaches QEMU)
start_qemu() {
	local side=$1
	shift
	timeout -k 5 360 qemu-system-x86_64 -nodefaults -no-user-config -nographic -no-reboot \
		-accel tcg,thread=multi,tb-size=128 -cpu max -machine q35 -smp 2 -m 512 \
		-object memory-backend-memfd,id=mem0,size=512M,share=on -numa node,memdev=mem0 \
		-kernel "$KIMG" -initrd "$T/initrd" \
		-append "console=ttyS0 quiet panic=-1 mitigations=off" \
		-serial "file:$T/$side.console" \
		-device virtio-serial-pci,id=vser0 \
		-chardev "file,id=outc,path=$T/$side.out" \
		-device virtserialport,bus=vser0.0,chardev=outc,name=out \
		-chardev "socket,id=v0,path=$T/$side.sock,reconnect=1" \
		-device vhost-user-blk-pci,chardev=v0,num-queues=2,queue-size=1024,id=vblk0 \
		-qmp "unix:$T/$side.qmp,server=on,wait=off" \
		"$@" </dev/null >"$T/$side.qemu.log" 2>&1 &
	QEMU_PID=$!
}
# what the two QEMUs said, for failure messages
diag() {
	local f
	for f in src.qemu.log dst.qemu.log src.console dst.console; do
		[ -s "$T/$f" ] && { echo "---- $f"; tail -8 "$T/$f"; }
	done
}
gone() { ! kill -0 "$1" 2>/dev/null || [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ]; }

# destination first: it waits for the stream
start_qemu dst -incoming "tcp:127.0.0.1:$port"
DST_PID=$QEMU_PID
on_exit "kill $DST_PID; wait $DST_PID"
start_qemu src
SRC_PID=$QEMU_PID
on_exit "kill $SRC_PID; wait $SRC_PID"
wait_until 20 test -S "$T/dst.qmp" || fail "destination QEMU did not start: $(cat "$T/dst.qemu.log")"
wait_until 20 test -S "$T/src.qmp" || fail "source QEMU did not start: $(cat "$T/src.qemu.log")"

# the guest is writing: migrate a couple of seconds into fio
wait_until 120 grep -q FIO_STARTED "$T/src.out" ||
	fail "guest did not start fio: $(cat "$T/src.out" "$T/src.qemu.log"; tail -20 "$T/src.console")"
sleep 3
log "migrating to tcp:127.0.0.1:$port"
res=$(python3 "$T/qmp.py" migrate "$T/src.qmp" "tcp:127.0.0.1:$port" 120) ||
	fail "QMP migrate failed: $res"
log "query-migrate: $res"
summary=$(printf '%s' "$res" | python3 -c '
import json, sys
q = json.load(sys.stdin)
print(q.get("status"), q.get("downtime", -1), q.get("total-time", -1),
      q.get("ram", {}).get("transferred", 0) >> 20)')
read -r mstatus downtime total mib <<< "$summary"
[ "$mstatus" = completed ] || fail "migration $mstatus: $res $(tail -5 "$T/src.qemu.log" "$T/dst.qemu.log")"
log "migration completed: downtime ${downtime} ms, total time ${total} ms, ${mib} MiB of RAM sent"
echo "vblk_migrate: downtime_ms=$downtime total_ms=$total ram_mib=$mib"

# the source is done: it exits on quit
python3 "$T/qmp.py" quit "$T/src.qmp" >/dev/null 2>&1
wait_until 20 gone "$SRC_PID" || fail "source QEMU did not exit"
# the destination runs the guest to its end (poweroff ends QEMU)
wait_until 240 gone "$DST_PID" ||
	fail "destination guest did not finish: $(cat "$T/dst.out"; diag)"
out=$(cat "$T/src.out" "$T/dst.out")
printf '%s\n' "$out" >&2
case "$out" in *GUEST_DONE*) ;; *) diag >&2 ;; esac
assert_contains "$out" "GUEST_DONE"
assert_contains "$out" "@@GUEST_EXIT=0@@"
assert_contains "$out" "serial_before=$src_name"
assert_contains "$out" "serial_after=$dst_name"
assert_contains "$out" "fio1_rc=0"
assert_contains "$out" "fio2_rc=0"
assert_eq "$(grep -c 'err= 0' <<< "$out")" 4 "fio jobs with err= 0 (writers, reader, after)"
case "$out" in *"I/O error"*|*"verify:"*bad*|*broken*) fail "guest saw errors" ;; esac
grep -q "FIO_STARTED" "$T/src.out" || fail "fio did not start on the source"
grep -q "fio1_rc" "$T/src.out" && fail "fio finished before the migration: nothing ran across it"

# the daemon's view: the source logged (per queue), both controllers served
# writes, no errors. A dirty page the log missed rarely shows in the guest
# (QEMU marks the whole used ring dirty itself when it stops a ring, and a
# missed data page must have been copied between the guest's last touch and
# our write): the marks are the direct evidence, the unit test the bit math.
grep -q "vhost $src_name: dirty logging on" "$src_log" ||
	fail "the source never turned dirty logging on"
nvlend -s "$src_sock" --json vblk list "$src_name" > "$T/src.json"
nvlend -s "$dst_sock" --json vblk list "$dst_name" > "$T/dst.json"
/usr/bin/python3 - "$T/src.json" "$T/dst.json" <<'EOF' || fail "controller counters"
import json, sys
cs = {n: json.load(open(f))[0] for n, f in (("src", sys.argv[1]), ("dst", sys.argv[2]))}
for n in ("src", "dst"):
    q = cs[n]["queues"]
    print(n, "writes:", sum(x["write_ops"] for x in q), "reads:", sum(x["read_ops"] for x in q),
          "ioerr:", sum(x["ioerr"] for x in q),
          "dirty log marks:", sum(x["dirty_log_marks"] for x in q), file=sys.stderr)
    assert sum(x["ioerr"] + x["unsupp"] for x in q) == 0, n + ": errors"
assert sum(x["write_ops"] for x in cs["src"]["queues"]) > 0, "no writes before the migration"
assert sum(x["write_ops"] for x in cs["dst"]["queues"]) > 0, "no writes after the migration"
assert sum(x["read_ops"] for x in cs["dst"]["queues"]) > 0, "no verify reads on dst"
# the source marked what it wrote while QEMU copied memory; the destination never logged
assert all(x["dirty_log_marks"] > 0 for x in cs["src"]["queues"]), "a source queue did not log"
assert sum(x["dirty_log_marks"] for x in cs["dst"]["queues"]) == 0, "the destination logged"
EOF
nvlend -s "$src_sock" vblk destroy "$src_name" >/dev/null || fail "destroy the source's controller"
nvlend -s "$dst_sock" vblk destroy "$dst_name" >/dev/null || fail "destroy the destination's"
if [ "${VBLK_MIGRATE_DAEMONS:-1}" = 2 ]; then
	stop_daemon_pid "$src_pid" || fail "$_daemon_bad"
	stop_daemon_pid "$dst_pid" || fail "$_daemon_bad"
	DAEMON_PID=$TPID
fi
stop_nvlendd
pass
