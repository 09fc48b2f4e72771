#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nvlend-perf --verify judges only what it may (fio's rule), and shows a
# live status line on a terminal:
#   - on a namespace already full of other data, --rw=randrw --verify reports
#     those blocks as "unknown content", not as errors, and exits 0;
#   - two hosts on disjoint --offset/--size regions of such a namespace both
#     pass, then each reads the other's region back with --rw=read --verify
#     (foreign blocks in nvlend-perf's format are checked, none fails);
#   - a block this run wrote that something else overwrites is still an error
#     (the check did not go soft: a writer of random data runs beside it);
#   - on a terminal (script(1)), a status line with IOPS, MiB/s and p99 is
#     printed once a second on stderr; not with --json or off a terminal.
# timeout: 120
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
requires script
start_nvlendd
head -c 16M /dev/urandom >"$T/full.img"
nvlend bdev create file full "$T/full.img" >/dev/null || fail "file bdev"
NQN=nqn.2026-01.io.nvlend.test:pv
nvlend subsystem create $NQN --allow-any-host >/dev/null
nvlend subsystem add-ns $NQN full >/dev/null
nvlend subsystem add-listener $NQN shm "$T/pv.sock" >/dev/null
URI="nvme+shm://$T/pv.sock?nqn=$NQN"
P="$BIN/nvlend-perf"

out=$("$P" "$URI" --rw=randrw --verify --iodepth=4 --runtime=2) || { echo "$out" >&2; fail "randrw --verify on a full namespace"; }
echo "$out" | grep_q -E 'verify: [0-9]+ blocks checked \([0-9]+ written by others, [1-9][0-9]* of unknown content' ||
	fail "unknown content not reported: $(echo "$out" | grep verify)"
echo "$out" | grep_q ', 0 errors' || fail "errors reported"

"$P" "$URI" --hostnqn=nqn.2026-01.io.nvlend.test:a --rw=randrw --verify --offset=0 --size=8M \
	--iodepth=4 --runtime=2 >"$T/a.out" 2>&1 &
A=$!
"$P" "$URI" --hostnqn=nqn.2026-01.io.nvlend.test:b --rw=randrw --verify --offset=8M --size=8M \
	--iodepth=4 --runtime=2 >"$T/b.out" 2>&1 || { cat "$T/b.out" >&2; fail "host b"; }
wait $A || { cat "$T/a.out" >&2; fail "host a"; }
# each host reads the other's region: blocks in nvlend-perf's format are checked
out=$("$P" "$URI" --rw=read --verify --offset=8M --size=8M --iodepth=4 --io_limit=8M) ||
	{ echo "$out" >&2; fail "read-back of the other host's region"; }
echo "$out" | grep_q -E '\([1-9][0-9]* written by others' || fail "no foreign block checked: $out"

# written by this run, then overwritten by someone else: still an error
head -c 64K /dev/urandom >"$T/junk"
caught=0
for try in 1 2 3; do
	"$P" "$URI" --rw=randrw --verify --size=64k --iodepth=1 --runtime=3 >"$T/c.out" 2>&1 &
	C=$!
	for _ in $(seq 1 40); do
		nvlend ns write "$URI" --lba 0 <"$T/junk" >/dev/null 2>&1
		sleep 0.05
	done
	if ! wait $C && grep -q "overwritten by data not from nvlend-perf" "$T/c.out"; then
		caught=1
		break
	fi
done
[ $caught = 1 ] || { cat "$T/c.out" >&2; fail "an overwritten block of this run was not an error"; }

# the status line
script -qfec "$P '$URI' --rw=randread --iodepth=4 --runtime=3" /dev/null >"$T/tty.out" 2>&1 ||
	{ cat "$T/tty.out" >&2; fail "perf on a terminal"; }
grep -aqE '\[ +[12]s\] +[0-9.]+ K IOPS, +[0-9.]+ MiB/s, p99 +[0-9.]+ us' "$T/tty.out" ||
	{ cat -v "$T/tty.out" | head >&2; fail "no status line on a terminal"; }
"$P" "$URI" --rw=randread --runtime=2 2>"$T/err.out" >/dev/null || fail "perf off a terminal"
grep -q 'IOPS, ' "$T/err.out" && fail "status line written off a terminal"
stop_nvlendd
pass
