#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# libnvlend's shm host makes the whole connect again when the target closes
# the connection during the handshake (what a host sees when an nvlend
# upgrade's old worker goes away between accepting it and answering
# CONNECT), with a bounded backoff, and nvlend-perf runs:
#   - a stand-in listener reads CONNECT on the first 3 connections and closes
#     them, then its path leads to the real daemon: nvlend-perf connects, runs,
#     and printed one notice line per retry (3);
#   - a listener that closes every handshake: nvlend-perf gives up within the
#     retry budget (5 s) plus a margin, not at the first close, and not never;
#   - a refusal with a status (an NQN the daemon does not have) is final: no
#     retry line;
#   - end to end: nvlend-perf connects over and over while the daemon does
#     three `nvlend upgrade`s; none fails (before the retry, about one
#     connect in twenty started during an upgrade failed with "the target
#     closed the connection"; a real hand-over does not always hit that
#     window, so this part alone could pass without the retry: part 1 cannot).
# timeout: 90
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
start_nvlendd
shm_target r0 16M
P="$BIN/nvlend-perf"

# fake.py PATH REAL N: listen on PATH; read CONNECT on the first N
# connections and close them; before closing the N-th, make PATH a symlink
# to REAL (connect(2) follows it: the next attempt reaches the daemon).
# N=0: close every connection (until killed). Prints "closed K" per close.
cat >"$T/fake.py" <<'EOF'
import os, socket, sys
path, real, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ls = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
ls.bind(path)
ls.listen(16)
print("listening", flush=True)
k = 0
while True:
    c, _ = ls.accept()
    c.settimeout(5)
    try:
        c.recv(4096)  # the host's CONNECT
    except OSError:
        pass
    k += 1
    if n and k == n:
        os.symlink(real, path + ".new")
        os.rename(path + ".new", path)
    c.close()
    print("closed", k, flush=True)
    if n and k == n:
        break
EOF

# start_fake NAME N: the stand-in listener at $T/NAME.sock
start_fake() {
	/usr/bin/python3 "$T/fake.py" "$T/$1.sock" "$T/r0.sock" "$2" >"$T/$1.fake" 2>&1 &
	FAKE=$!
	on_exit "kill $FAKE"
	wait_until 10 grep -q listening "$T/$1.fake" || fail "the stand-in listener did not start"
}

# 1. three handshakes closed, then the daemon: nvlend-perf connects and runs
start_fake f1 3
t0=$(date +%s%N)
NVLEND_LOG_LEVEL=0 "$P" "nvme+shm://$T/f1.sock?nqn=$NQN" --rw=randread --io_limit=1M \
	--iodepth=4 >"$T/p1.out" 2>&1 || { cat "$T/p1.out" "$T/f1.fake" >&2; fail "nvlend-perf did not get through 3 closed handshakes"; }
t1=$(date +%s%N)
cat "$T/p1.out" >&2
assert_eq "$(grep -c '^closed' "$T/f1.fake")" 3 "handshakes the stand-in closed"
assert_eq "$(grep -c 'the connection during the handshake' "$T/p1.out")" 3 "retry lines"
grep_q 'closed the connection during the handshake (a hand-over?): connecting again in 10 ms (retry 1)' <"$T/p1.out" ||
	fail "first retry line"
grep_q 'connecting again in 40 ms (retry 3)' <"$T/p1.out" || fail "the wait doubles"
grep_q -E 'IOPS|iops' <"$T/p1.out" || fail "no result from nvlend-perf"
log "3 closed handshakes, then connected in $(((t1 - t0) / 1000000)) ms"
wait $FAKE

# 2. every handshake closed: gives up after the retry budget (5 s), not before
start_fake f2 0
t0=$(date +%s%N)
"$P" "nvme+shm://$T/f2.sock?nqn=$NQN" --runtime=1 >"$T/p2.out" 2>&1 &&
	{ cat "$T/p2.out" >&2; fail "nvlend-perf connected to a listener that closes every handshake"; }
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
n=$(grep -c 'the connection during the handshake' "$T/p2.out")
tail -n 3 "$T/p2.out" >&2
log "gave up after $ms ms and $n retries"
[ "$ms" -ge 4500 ] || fail "gave up after $ms ms: sooner than the 5 s retry budget"
[ "$ms" -le 9000 ] || fail "gave up after $ms ms: the retries are not bounded by 5 s"
# 10+20+40+80+160 ms, then 200 ms each: about 28 in 5 s
[ "$n" -ge 20 ] && [ "$n" -le 30 ] || fail "$n retries in 5 s (10 ms doubling to 200 ms: ~28)"
grep_q 'cannot connect' <"$T/p2.out" || fail "no reason given"
kill $FAKE 2>/dev/null

# 3. a refusal with a status is final
"$P" "nvme+shm://$T/r0.sock?nqn=nqn.2026-01.io.nvlend.test:nosuch" --runtime=1 >"$T/p3.out" 2>&1 &&
	fail "connected to a subsystem that does not exist"
cat "$T/p3.out" >&2
grep_q 'no such subsystem' <"$T/p3.out" || fail "no refusal reported"
if grep -q 'during the handshake' "$T/p3.out"; then fail "a refusal was retried"; fi

# 4. connects in a loop across three live upgrades
URI="nvme+shm://$T/r0.sock?nqn=$NQN"
(
	while [ ! -e "$T/stop" ]; do
		"$P" "$URI" --io_limit=16k >>"$T/p4.out" 2>&1 || echo PERF_FAILED >>"$T/p4.out"
	done
) &
LOOP=$!
on_exit "touch $T/stop; kill $LOOP"
for u in 1 2 3; do
	sleep 0.5
	out=$(nvlend upgrade 2>&1) || { touch "$T/stop"; fail "upgrade $u: $out"; }
done
sleep 0.3
touch "$T/stop"
wait $LOOP
runs=$(grep -c 'IOPS=' "$T/p4.out")
log "$runs nvlend-perf runs across 3 upgrades, $(grep -c 'during the handshake' "$T/p4.out") handshake(s) retried"
if grep -q PERF_FAILED "$T/p4.out"; then
	grep -E 'cannot|FAIL|error' "$T/p4.out" >&2
	fail "a connect failed during an upgrade"
fi
[ "$runs" -ge 3 ] || fail "only $runs nvlend-perf runs"
pass
