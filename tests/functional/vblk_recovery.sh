#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 300
# asan: no
# Crash recovery of vhost-user-blk with the real peer (QEMU + Linux guest),
# one boot. The bdev is a file on slowfs (a FUSE helper that delays each I/O)
# (15 ms per I/O) so that requests are really in flight inside nvlendd when it dies.
#   - fio randwrite with crc32c verify, 2 jobs pinned to the guest's 2 vCPUs
#     (so both virtqueues carry I/O; the guest must see 2 hardware queues),
#     runs in the guest while nvlendd is killed with -9 three times and
#     restarted from its saved config (the third time with force_in_order),
#     then once more stopped with SIGTERM (drain) and restarted, then
#     upgraded (`nvlend upgrade` to a copy of the binary: the guest's
#     vhost-user front-end reconnects to the new worker and resubmits what
#     the old one had in flight on the slow disk): fio must end
#     with err=0 and no verify error in both jobs, the guest kernel must log
#     no I/O error. Each kill -9 happens with requests in flight (per-queue
#     counters read just before it), while fio runs, and the new daemon
#     serves a request before fio ends; every queue is seen with requests in
#     flight at some kill, and some kill leaves requests to resubmit.
#   - idle restart: the guest writes a pattern, nvlendd is killed while the
#     disk is idle, restarted, and the guest reads the pattern back.
# Prints the recovery figures (requests resubmitted, creation/connection to
# the first completed request) for docs/performance.md.
source "$(dirname "$0")/common.sh"
requires qemu-system-x86_64 /usr/bin/python3 fusermount3
requires_root
guest_prepare
[ -c /dev/fuse ] || skip "no /dev/fuse"

back=/dev/shm/${NVLEND_SHM_PREFIX}rec.img
truncate -s 256M "$back"
mkdir -p "$T/mnt" "$T/share"
"$BUILD/tests/helpers/slowfs" "$back" "$T/mnt" 15000 >"$T/slowfs.log" 2>&1 &
sf_pid=$!
on_exit "fusermount3 -u $T/mnt; kill $sf_pid"
wait_until 5 test -f "$T/mnt/disk" || fail "slowfs did not come up: $(cat "$T/slowfs.log")"

start_nvlendd --reactors 2
nvlend bdev create file d0 "$T/mnt/disk" >/dev/null || fail "file bdev on slowfs"
nvlend vblk create vm0 d0 "$T/vub.sock" --queues 2 >/dev/null || fail "vblk create"
nvlend save-config -o "$T/cfg.json" || fail "save-config"
grep -q '"virtio_blk_controller_create"' "$T/cfg.json" || fail "config lacks the controller"
sed 's/"force_in_order": false/"force_in_order": true/' "$T/cfg.json" > "$T/cfg-inorder.json"
grep -q '"force_in_order": true' "$T/cfg-inorder.json" || fail "cannot make the in-order config"

cat > "$T/guest.sh" <<'EOF'
set -u
modprobe virtio_blk
dd if=/dev/zero of=/dev/vda bs=1M count=1 oflag=direct 2>/dev/null
echo "mq_queues=$(ls /sys/block/vda/mq | wc -l)"
touch /host/fio-start
# one job per vCPU, each on its own 96 MiB: job i submits on virtqueue i
fio --name=crash --filename=/dev/vda --direct=1 --ioengine=libaio --iodepth=16 --numjobs=2 \
    --cpus_allowed=0-1 --cpus_allowed_policy=split --offset_increment=96M \
    --rw=randwrite --bs=4k --size=96M --time_based --runtime=40 --verify=crc32c \
    --verify_backlog=128 --verify_fatal=1 --do_verify=1 > /tmp/fio.txt 2>&1
echo "fio_rc=$?"
touch /host/fio-done
echo "fio_jobs_ok=$(grep -c 'err= 0' /tmp/fio.txt)"
grep -E 'err=|verify|bad magic|crc' /tmp/fio.txt | head -5
# idle restart
dd if=/dev/urandom of=/tmp/pat bs=1M count=8 2>/dev/null
dd if=/tmp/pat of=/dev/vda bs=1M seek=128 oflag=direct 2>/dev/null && touch /host/idle-written
i=0; while [ ! -e /host/idle-restarted ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
dd if=/dev/vda of=/tmp/back bs=1M skip=128 count=8 iflag=direct 2>/dev/null
cmp -s /tmp/pat /tmp/back && echo IDLE_READBACK_OK
dd if=/tmp/pat of=/dev/vda bs=1M seek=192 oflag=direct 2>/dev/null && echo WRITE_AFTER_IDLE_OK
echo "io_errors=$(dmesg | grep -ciE 'I/O error|blk_update_request')"
dmesg | grep -iE 'I/O error|blk_update_request|virtio_blk' | tail -3
echo GUEST_DONE
EOF

guest_run -t 240 -s "$T/share" -q "-chardev socket,id=v0,path=$T/vub.sock,reconnect=1 \
	-device vhost-user-blk-pci,chardev=v0,num-queues=2" -f "$T/guest.sh" \
	>"$T/guest.out" 2>"$T/guest.err" &
gpid=$!
on_exit "kill $gpid"

figures=()
record() { # label: wait for the new daemon's queues to serve, then keep its figures
	local what=$1
	wait_until 20 sh -c "nvlend --json vblk list vm0 | grep '\"connect_to_first_io_us\"'" ||
		fail "$what: no request completed after the restart: $(nvlend vblk list)"
	figures+=("$what $(nvlend --json vblk list vm0 | /usr/bin/python3 -c '
import json, sys
c = json.load(sys.stdin)[0]; r = c["recovery"]
print("resubmitted=%d create_to_first_io_us=%d connect_to_first_io_us=%d in_order=%s "
      "per_queue_resubmitted=%s" % (
    r["last_resubmitted"], r["create_to_first_io_us"], r["connect_to_first_io_us"],
    c["force_in_order"], ",".join(str(q["resubmitted"]) for q in c["queues"])))')")
}
# per-queue counters now: "INFLIGHT_Q0 INFLIGHT_Q1 REQUESTS_Q0 REQUESTS_Q1"
queue_counters() {
	nvlend --json vblk list vm0 | /usr/bin/python3 -c '
import json, sys
q = json.load(sys.stdin)[0]["queues"]
print(" ".join(str(x[k]) for k in ("inflight", "requests") for x in q[:2]))'
}

wait_until 150 test -e "$T/share/fio-start" || { cat "$T/guest.err" >&2; fail "guest did not start fio"; }
sleep 4
seen_q0=0 seen_q1=0 kill_resub=0
for i in 1 2 3; do
	cfg=$T/cfg.json
	[ $i = 3 ] && cfg=$T/cfg-inorder.json
	# a snapshot with requests in flight, then the kill at once
	for _ in $(seq 1 50); do
		read -r i0 i1 r0 r1 <<<"$(queue_counters)"
		[ $((i0 + i1)) -gt 0 ] && break
		sleep 0.1
	done
	[ $((i0 + i1)) -gt 0 ] || fail "kill -9 #$i: no request in flight (queues: $i0 $i1)"
	[ "$r0" -gt 0 ] && [ "$r1" -gt 0 ] || fail "kill -9 #$i: a queue carried no request ($r0 $r1)"
	[ -e "$T/share/fio-done" ] && fail "kill -9 #$i: fio had already ended"
	log "kill -9 #$i with $i0+$i1 request(s) in flight on queues 0+1 ($r0+$r1 requests so far)"
	kill9_nvlendd
	[ "$i0" -gt 0 ] && seen_q0=1
	[ "$i1" -gt 0 ] && seen_q1=1
	start_nvlendd -c "$cfg"
	record "kill-9#$i(inflight=$i0+$i1)"
	[ -e "$T/share/fio-done" ] &&
		fail "kill -9 #$i: fio ended before the restarted daemon served a request"
	n=${figures[-1]#*resubmitted=}
	kill_resub=$((kill_resub + ${n%% *}))
	sleep 4
done
[ $seen_q0 = 1 ] && [ $seen_q1 = 1 ] ||
	fail "a queue never had requests in flight at a kill (q0 $seen_q0, q1 $seen_q1)"
[ $kill_resub -gt 0 ] || fail "no kill -9 left a request to resubmit"
log "SIGTERM restart during fio"
[ -e "$T/share/fio-done" ] && fail "fio ended before the SIGTERM restart"
stop_nvlendd
start_nvlendd -c "$T/cfg.json"
record "sigterm"
log "nvlend upgrade during fio (to a copy of the binary)"
sleep 2
[ -e "$T/share/fio-done" ] && fail "fio ended before the upgrade"
cp "$BIN/nvlendd" "$T/nvlendd-new"
out=$(nvlend upgrade --binary "$T/nvlendd-new" 2>&1) || fail "upgrade: $out"
WORKER_PID=$(nvlend rpc nvlend_get_status | json_get '["pid"]')
assert_eq "$(readlink "/proc/$WORKER_PID/exe")" "$T/nvlendd-new" "the worker's binary"
grep_q "upgrade: handing over to $T/nvlendd-new" <"$DAEMON_LOG" || fail "no hand-over in the log"
record "upgrade"
[ -e "$T/share/fio-done" ] && fail "fio ended before the upgraded worker served a request"

wait_until 120 test -e "$T/share/idle-written" || fail "guest did not reach the idle phase"
sleep 1
infl=$(nvlend --json vblk list vm0 | json_get '[0]["inflight"]')
log "idle kill -9 ($infl in flight)"
kill9_nvlendd
start_nvlendd -c "$T/cfg.json"
wait_until 20 sh -c "nvlend vblk list vm0 | grep -q running" || fail "front-end did not come back"
touch "$T/share/idle-restarted"
record "idle-kill-9"

wait $gpid
grc=$?
cat "$T/guest.out" >&2
[ $grc = 0 ] || { tail -40 "$T/guest.err" >&2; fail "guest exited with $grc"; }
out=$(cat "$T/guest.out")
assert_contains "$out" "GUEST_DONE"
assert_contains "$out" "mq_queues=2"
assert_contains "$out" "fio_rc=0"
assert_contains "$out" "fio_jobs_ok=2"
assert_contains "$out" "IDLE_READBACK_OK"
assert_contains "$out" "WRITE_AFTER_IDLE_OK"
assert_contains "$out" "io_errors=0"

total=0
for f in "${figures[@]}"; do
	log "recovery: $f"
	n=${f#*resubmitted=}; n=${n%% *}
	total=$((total + n))
done
log "requests resubmitted over all restarts: $total"
[ "$total" -gt 0 ] || fail "no restart found a request in flight: the test did not test recovery"
stop_nvlendd
pass
