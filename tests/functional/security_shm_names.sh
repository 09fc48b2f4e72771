#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Security item 3: no local user can deny shm service by pre-creating the
# names of the daemon's shared regions, nor open them. Another user
# (nobody) fills /dev/shm with every name the daemon would have used for
# its next regions (window, SQ and CQ of the next controllers); hosts must
# still connect and do verified I/O. The regions are anonymous sealed
# memfds: the daemon creates no name under /dev/shm at all, and its region
# descriptors show as /memfd:nvlend-... in /proc.
# timeout: 60
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
requires_root
requires setpriv

start_nvlendd
shm_target sq 16M
pid=$WORKER_PID
before=$(ls /dev/shm | sort)
# what a squatter would create (the pre-memfd naming: PREFIX PID-SEQ-WHAT)
/usr/bin/python3 - "$pid" "${NVLEND_SHM_PREFIX}" "nvlend-" <<'PY' >"$T/squat.list"
import sys
pid, prefixes = sys.argv[1], sys.argv[2:]
for pfx in prefixes:
    for seq in range(0, 64):
        for c in range(1, 6):
            for what in ["c%d-window" % c] + ["c%d-%sq%d" % (c, k, q) for k in "cs" for q in (1, 2)]:
                print("/dev/shm/%s%s-%d-%s" % (pfx, pid, seq, what))
PY
on_exit "xargs rm -f < $T/squat.list"
xargs setpriv --reuid=65534 --regid=65534 --clear-groups touch < "$T/squat.list" ||
	fail "the squatter could not create its files"
log "$(wc -l < "$T/squat.list") names squatted by uid 65534"
for i in 1 2; do
	"$BIN/nvlend-perf" "$URI" --rw=randrw --verify --iodepth=4 --numjobs=2 --runtime=1 \
		>"$T/perf$i.out" 2>&1 || { cat "$T/perf$i.out" >&2; fail "host $i could not connect or verify"; }
	grep -q ', 0 errors' "$T/perf$i.out" || { cat "$T/perf$i.out" >&2; fail "verify errors"; }
done
# while a host is connected: its regions are memfds, and no new name exists
"$BIN/nvlend-perf" "$URI" --rw=randread --iodepth=2 --runtime=3 >"$T/perf3.out" 2>&1 &
P3=$!
on_exit "kill -9 $P3"
wait_until 5 sh -c "ls -l /proc/$pid/fd | grep -q 'memfd:nvlend-c.*-window'" ||
	fail "no memfd window in the daemon's descriptors: $(ls -l /proc/$pid/fd)"
wait_until 5 sh -c "ls -l /proc/$pid/fd | grep -q 'memfd:nvlend-c.*-sq'" || fail "no memfd SQ region"
# names the daemon would have made carry its pid (other tests may be running
# beside this one and make files of their own there)
new=$(comm -13 <(echo "$before") <(ls /dev/shm | sort) | grep -e "-$pid-" -e "^nvlend" |
	grep -vxF -f <(sed 's|^/dev/shm/||' "$T/squat.list") || true)
[ -z "$new" ] || fail "the daemon created names in /dev/shm: $new"
wait $P3 || { cat "$T/perf3.out" >&2; fail "host 3 failed"; }
stop_nvlendd
pass
