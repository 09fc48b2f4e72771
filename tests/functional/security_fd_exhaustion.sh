#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 120
#
# Security item 5 (issue 21): one peer exhausts the daemon's file
# descriptors. The daemon's RLIMIT_NOFILE is lowered (prlimit) to a few
# dozen above what it holds, then a client opens far more NVMe/TCP
# connections than that and holds them, and pokes the shm listener too.
# While the fd table is full the daemon must not spin (its CPU time over 2 s
# stays low: level-triggered listeners that fail accept() with EMFILE would
# run at 100 %), must log only a few lines about it (not one per loop turn),
# and its RPC must keep answering. (The worker is measured: the keeper
# holds no peer sockets.) When the client goes, service resumes: a
# new host writes and reads back.
source "$(dirname "$0")/common.sh"
requires prlimit
PY=/usr/bin/python3
[ -x $PY ] || skip "needs /usr/bin/python3"

NQN=nqn.2024-01.io.nvlend:fdx
PORT=$(free_port)
start_nvlendd --reactors 2
rpc bdev_malloc_create '{"name":"m0","num_blocks":8192,"block_size":512}' >/dev/null
rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true}" >/dev/null
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"m0\"}}" >/dev/null
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\"}}" >/dev/null
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"$T/shm.sock\"}}" >/dev/null
URI="nvme+tcp://127.0.0.1:$PORT/$NQN"

roundtrip() {
	head -c 4096 /dev/urandom > "$T/blk"
	nvlend ns write "$URI" --lba "$1" < "$T/blk" > "$T/client.log" 2>&1 &&
		nvlend ns read "$URI" --lba "$1" --count 8 -o "$T/blk.back" >> "$T/client.log" 2>&1 &&
		cmp -s "$T/blk" "$T/blk.back"
}
roundtrip 0 || { cat "$T/client.log"; fail "no I/O before the test"; }

nfds() { ls /proc/"$WORKER_PID"/fd | wc -l; }
cputicks() { awk '{print $14 + $15}' /proc/"$WORKER_PID"/stat; }
fdlines() { grep -ci 'open files\|file descriptors' "$DAEMON_LOG" || true; }
HZ=$(getconf CLK_TCK)

sleep 0.5 # the RPC and I/O connections above are closed on the daemon's side too
BASE=$(nfds)
LIMIT=$((BASE + 40))
prlimit --pid "$WORKER_PID" --nofile=$LIMIT:$LIMIT || fail "prlimit"
log "daemon holds $BASE descriptors; RLIMIT_NOFILE lowered to $LIMIT"

# the hog: 4x the limit in NVMe/TCP connections (non-blocking connects: the
# ones the listen backlog cannot take stay in SYN_SENT), a few shm ones
$PY - "$PORT" "$T/shm.sock" $((LIMIT * 4)) > "$T/hog.log" 2>&1 <<'PY' &
import os, signal, socket, sys, time
port, shm, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
held = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    held.append(s)
for _ in range(8):
    u = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    u.setblocking(False)
    try:
        u.connect(shm)
    except (BlockingIOError, OSError):
        pass
    held.append(u)
print("holding", len(held), flush=True)
signal.pause()
PY
HOG=$!
on_exit "kill $HOG"
wait_until 10 grep -q holding "$T/hog.log" || { cat "$T/hog.log"; fail "the hog did not start"; }

# the daemon reaches the wall: its table is (nearly) full
wait_until 10 sh -c "[ \$(ls /proc/$WORKER_PID/fd | wc -l) -ge $((LIMIT - 8)) ]" ||
	fail "the daemon never ran out of descriptors: holds $(nfds) of $LIMIT"
sleep 1
log "daemon holds $(nfds) descriptors of $LIMIT"

# no spinning: CPU time over 2 s (a spinning reactor uses ~2 s of it)
c0=$(cputicks)
sleep 2
c1=$(cputicks)
used_ms=$(((c1 - c0) * 1000 / HZ))
log "daemon CPU time over 2 s while out of descriptors: $used_ms ms"
[ "$used_ms" -lt 600 ] || fail "the daemon spins while out of descriptors ($used_ms ms of CPU in 2 s)"

# RPC keeps answering, several times in a row
for i in 1 2 3 4 5; do
	nvlend -t 3 rpc nvlend_get_version > "$T/rpc.out" 2>&1 ||
		{ cat "$T/rpc.out"; fail "RPC call $i does not answer while out of descriptors"; }
	nvlend -t 3 rpc nvmf_get_subsystems > "$T/rpc.out" 2>&1 ||
		{ cat "$T/rpc.out"; fail "nvmf_get_subsystems $i does not answer while out of descriptors"; }
done
assert_contains "$(cat "$T/rpc.out")" "$NQN" "nvmf_get_subsystems"

n=$(fdlines)
log "log lines about descriptors so far: $n"
[ "$n" -ge 1 ] || fail "the daemon said nothing about running out of descriptors"
[ "$n" -le 5 ] || fail "the daemon logged $n lines about running out of descriptors"

# service resumes once the hog is gone
kill $HOG
wait $HOG 2>/dev/null
wait_until 20 roundtrip 512 || { cat "$T/client.log"; fail "no service after the hog left"; }
wait_until 15 sh -c "[ \$(ls /proc/$WORKER_PID/fd | wc -l) -le $((BASE + 4)) ]" ||
	fail "descriptors not released: holds $(nfds), baseline $BASE"
c0=$(cputicks)
sleep 1
c1=$(cputicks)
[ $(((c1 - c0) * 1000 / HZ)) -lt 400 ] || fail "the daemon spins after the hog left"
n=$(fdlines)
grep -i 'open files\|file descriptors' "$DAEMON_LOG" >&2
[ "$n" -le 6 ] || fail "the daemon logged $n lines about running out of descriptors"
stop_nvlendd
pass
