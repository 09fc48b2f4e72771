#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Live upgrade under load (issue 16): how long each function is not served
# while `nvlend upgrade` moves the daemon to another binary, and what the
# host sees.
#
# nvlendd (keeper + worker, the worker's reactor on BENCH_CPU_B) serves a RAM
# namespace over shm to BENCH_SHM_HOSTS nvlend-perf processes (each its own
# shm controller, a function, on its own slice of the first 128 MiB; randrw
# 4 KiB, QD BENCH_QD, --verify, on BENCH_CPU_A), and a second one over
# NVMe/TCP (loopback) to another
# nvlend-perf (same mix, on another half of the namespace, also on
# BENCH_CPU_A). During the run the daemon is upgraded BENCH_ROUNDS times,
# alternating between its own binary and a copy (a different file, as a
# package upgrade replaces it). Prints per round the downtime of each
# function (nvlend_get_upgrade: the daemon's RPC/listeners, the shm
# controller, the NVMe/TCP controller), then median / p99 / max over the
# rounds, and per host its I/O errors, verify errors, reconnects (Connects
# beyond its first) and its largest completion latency (what an application
# felt).
#
#   bench/upgrade.sh [BUILD_DIR] [--plot]   BENCH_ROUNDS=20 BENCH_QD=16
#                                   BENCH_GAP=0.5 (s between upgrades)
#                                   BENCH_SHM_HOSTS=1 (shm functions: 1, 8, 64)
#                                   BENCH_KEEP_LOG=FILE (the daemon's log)
#   --plot    also write a chart of the downtime per function (median, p99,
#             max) to bench/results/plots/ (BENCH_PLOT_DIR)
#   -h, --help                       this text
source "$(dirname "$0")/common.sh"
bench_plot_args "$@"
set -- "${BENCH_ARGS[@]}"
BUILD=${1:-$TOP/build}
BIN=$BUILD/bin
ROUNDS=${BENCH_ROUNDS:-20}
QD=${BENCH_QD:-16}
GAP=${BENCH_GAP:-0.5}
NSHM=${BENCH_SHM_HOSTS:-1}
case "$NSHM" in '' | *[!0-9]* | 0) bench_die "BENCH_SHM_HOSTS must be 1..128" ;; esac
[ "$NSHM" -le 128 ] || bench_die "BENCH_SHM_HOSTS must be 1..128"
A=$BENCH_CPU_A
B=$BENCH_CPU_B
[ -x "$BIN/nvlendd" ] || bench_die "no $BIN/nvlendd (make first)"
bench_machine_info
W=$(mktemp -d /tmp/nvlend-bench-upgrade.XXXXXX)
SOCK=$W/rpc.sock
cleanup() {
	[ -n "${PERF:-}" ] && kill $PERF 2>/dev/null
	[ -n "${PERFT:-}" ] && kill "$PERFT" 2>/dev/null
	[ -n "${DPID:-}" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	[ -n "${BENCH_KEEP_LOG:-}" ] && cp "$W/d.log" "$BENCH_KEEP_LOG"
	rm -rf "$W"
}
trap cleanup EXIT
nv() { "$BIN/nvlend" -s "$SOCK" "$@"; }

cp "$BIN/nvlendd" "$W/nvlendd-copy"
"$BIN/nvlendd" -s "$SOCK" --cores "$B" --log-file "$W/d.log" &
DPID=$!
for _ in $(seq 1 100); do nv -t 1 status >/dev/null 2>&1 && break; sleep 0.05; done
bench_placement "nvlendd reactor" "$B"
bench_placement "nvlend-perf" "$A"
bench_print_placement
NQN=nqn.2026-01.io.nvlend.bench:upgrade
nv bdev create ram r0 256M >/dev/null
nv subsystem create $NQN --allow-any-host >/dev/null
nv subsystem add-ns $NQN r0 >/dev/null
nv subsystem add-listener $NQN shm "$W/shm.sock" >/dev/null
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
nv rpc nvmf_create_transport '{"trtype":"TCP"}' >/dev/null
nv rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"adrfam\":\"IPv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\"}}" \
	>/dev/null || bench_die "TCP listener"
# an upper bound: the hosts are stopped (SIGINT) once the rounds are done; the
# margin covers a slow start (64 handshakes on one loaded CPU took 10 s here)
runtime=$(awk -v r="$ROUNDS" -v g="$GAP" 'BEGIN { printf "%d", r * (g + 0.5) + 60 }')
PERF=
slice=$((128 / NSHM * 1024))   # KiB
for i in $(seq 1 "$NSHM"); do
	NVLEND_PERF_STATUS=0 pin "$A" "$BIN/nvlend-perf" "nvme+shm://$W/shm.sock?nqn=$NQN" \
		--rw=randrw --verify --bs=4k --iodepth="$QD" --offset=$(((i - 1) * slice))k \
		--hostnqn=nqn.2026-01.io.nvlend.bench:upgrade-host$i \
		--size=${slice}k --runtime="$runtime" --json >"$W/perf.$i.json" 2>"$W/perf.$i.err" &
	PERF="$PERF $!"
	[ "$NSHM" -gt 8 ] && sleep 0.1   # not 64 handshakes at once on one CPU
done
NVLEND_PERF_STATUS=0 pin "$A" "$BIN/nvlend-perf" "nvme+tcp://127.0.0.1:$PORT/$NQN/1" --rw=randrw \
	--verify --bs=4k --iodepth="$QD" --offset=128M --size=128M --runtime="$runtime" --json \
	>"$W/perft.json" 2>"$W/perft.err" &
PERFT=$!
# every host connected first: a connection still in its handshake when the
# hand-over starts is closed (docs/lifetime.md), and nvlend-perf gives up
# (its Connect done, and its I/O queue made: a loaded machine took seconds
# between the two)
for _ in $(seq 1 600); do
	[ "$(nv rpc nvmf_subsystem_get_qpairs "{\"nqn\":\"$NQN\"}" 2>/dev/null |
		/usr/bin/python3 -c 'import json,sys; print(sum(1 for q in json.load(sys.stdin) if q.get("qid")))' \
		2>/dev/null)" -ge $((NSHM + 1)) ] 2>/dev/null && break
	sleep 0.1
done
sleep 2
: >"$W/downtimes"
for r in $(seq 1 "$ROUNDS"); do
	bin=$BIN/nvlendd
	[ $((r % 2)) = 1 ] && bin=$W/nvlendd-copy
	nv --json upgrade --binary "$bin" >"$W/u.json" 2>"$W/u.err" || bench_die "upgrade $r: $(cat "$W/u.err")"
	/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for f in d["functions"]:
    print(sys.argv[2], f["function"].split()[0].rstrip(":"), f["downtime_us"])
' "$W/u.json" "$r" >>"$W/downtimes"
	sleep "$GAP"
done
kill -INT $PERF "$PERFT"
i=0
for p in $PERF; do
	i=$((i + 1))
	wait "$p" || { cat "$W/perf.$i.err"; bench_die "nvlend-perf (shm host $i) failed"; }
done
PERF=
wait "$PERFT" || { cat "$W/perft.err"; bench_die "nvlend-perf (tcp) failed"; }
PERFT=
connects_shm=$(grep -c "nvmf.c.*: controller [0-9]* for host .*(SHM" "$W/d.log")
connects_tcp=$(grep -c "nvmf.c.*: controller [0-9]* for host .*(TCP" "$W/d.log")
/usr/bin/python3 - "$W/downtimes" "$W" "$connects_shm" "$W/perft.json" "$connects_tcp" "$NSHM" <<'PY'
import json, sys
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for r, kind, us in rows:
    by.setdefault(kind, []).append(int(us) / 1000.0)
print("%-10s %7s %10s %10s %10s" % ("function", "samples", "median ms", "p99 ms", "max ms"))
for kind, v in sorted(by.items()):
    v.sort()
    p99 = v[min(len(v) - 1, int(round(0.99 * (len(v) - 1))))]
    print("%-10s %7d %10.1f %10.1f %10.1f" % (kind, len(v), v[len(v) // 2], p99, v[-1]))
    with open(sys.argv[1] + ".points", "a") as f:
        for label, ms in (("median", v[len(v) // 2]), ("p99", p99), ("max", v[-1])):
            f.write("%s %s %d\n" % (kind, label, int(ms * 1000)))
nshm = int(sys.argv[6])
def total(files):
    t = {"ios": 0, "errors": 0, "verr": 0, "checked": 0, "max": 0.0}
    for pf in files:
        perf = json.load(open(pf))
        t["ios"] += perf["read"]["ios"] + perf["write"]["ios"]
        t["errors"] += perf["errors"]
        t["verr"] += perf["verify"]["errors"]
        t["checked"] += perf["verify"]["checked"]
        t["max"] = max(t["max"], perf["read"]["lat_us"]["max"], perf["write"]["lat_us"]["max"])
    return t
for name, files, conns, hosts in (
        ("shm", ["%s/perf.%d.json" % (sys.argv[2], i) for i in range(1, nshm + 1)], sys.argv[3], nshm),
        ("tcp", [sys.argv[4]], sys.argv[5], 1)):
    t = total(files)
    print("%s: %d host(s), %d I/Os, %d I/O errors, %d verify errors (%d blocks checked), %d reconnects, "
          "largest completion latency %.1f ms" % (name, hosts, t["ios"], t["errors"], t["verr"],
          t["checked"], int(conns) - hosts, t["max"] / 1000.0))
PY
while read -r kind label us; do
	bench_plot_point lat "Upgrade downtime per function, $ROUNDS upgrades under QD$QD shm + NVMe/TCP load (nvlendd CPU $B, host CPU $A)" \
		"$kind" "$label" "$us"
done <"$W/downtimes.points"
bench_plot_render "upgrade"
