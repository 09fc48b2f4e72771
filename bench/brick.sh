#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Memory brick benchmark (not a test). Usage: bench/brick.sh [BUILD_DIR] [--plot]
#
# Placement (2 vCPUs): nvlendd with one reactor pinned to CPU 0, every client
# and baseline client pinned to CPU 1, baseline servers (iperf3 -s, ping-pong
# server) pinned to CPU 0 -- the same split for the brick and its baseline.
# Measures, in one run, with ratios against baselines taken in the same run:
#   1. alloc + map + write 2 MiB + flush + unmap cycle latency (shm, tcp; tmpfs
#      fast tier, and a disk directory where flush is a real fdatasync)
#   2. one-sided write bandwidth over shm (stores into mapped blocks) vs memcpy
#      into private pre-faulted 2 MiB buffers (target >= 90%)
#   3. 2 MiB WRITE/READ over tcp vs iperf3 single stream on loopback (>= 80%)
#   4. 4 KiB random READ/WRITE latency over tcp at QD1 vs a TCP ping-pong of the
#      same shape (64 B header + 4 KiB one way, 64 B the other)
# Numbers on shared machines are provisional: quote the ratios.
# --plot also writes PNG charts of this run to bench/results/plots/
# (BENCH_PLOT_DIR), every brick figure beside its baseline, titled with the
# placement: bandwidth bars (one-sided write vs memcpy in GiB/s; 2 MiB tcp
# WRITE and READ vs iperf3 in Gbit/s), 4 KiB QD1 latency bars over tcp
# (p50/avg/p99, brick vs the ping-pong of the same shape) and the cycle's
# latency on the memory tier. The brick has no queue depth to sweep (its
# helper measures QD1), so there is no IOPS-vs-QD chart.
set -u
source "$(dirname "$0")/common.sh"
set +o pipefail # as before common.sh: the greps below end their pipes early
bench_plot_args "$@"
set -- "${BENCH_ARGS[@]}"
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
BIN=$BUILD/bin
H=$BUILD/tests/helpers/brick_bench
[ -x "$H" ] || { echo "build first: make -j2 (needs $H)"; exit 1; }
command -v iperf3 >/dev/null || { echo "needs iperf3"; exit 1; }
SRV_CPU=${SRV_CPU:-0}
CLI_CPU=${CLI_CPU:-1}
T=$(mktemp -d /tmp/nvl-bench-brick.XXXXXX)
# The fast tier: a tmpfs mounted with huge=always when we may mount (one 2 MiB
# page per block: allocation, mapping and revocation are page-table cheap),
# else /dev/shm (4 KiB pages). FAST_DIR=... overrides.
HUGE=$T/huge
if [ -z "${FAST_DIR:-}" ] && mkdir -p "$HUGE" && mount -t tmpfs -o huge=always,size=512m,mode=0700 nvl-bench "$HUGE" 2>/dev/null; then
	FAST=$HUGE/fast
	FASTKIND="tmpfs huge=always (2 MiB pages)"
else
	FAST=${FAST_DIR:-/dev/shm/nvl-bench-brick-$$}
	FASTKIND="$FAST"
	HUGE=
fi
DISK=/var/tmp/nvl-bench-brick-$$
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$FAST" "$DISK"
	[ -n "$HUGE" ] && umount "$HUGE"
	rm -rf "$T"
}
trap cleanup EXIT
free_port() { while :; do p=$((20000 + RANDOM % 30000)); ss -ltnH "sport = :$p" | grep -q . || { echo $p; return; }; done; }

echo "placement: nvlendd (1 reactor) and baseline servers on CPU $SRV_CPU, clients on CPU $CLI_CPU"
echo "fast tier: $FASTKIND; disk tier: $DISK ($(stat -f -c %T /var/tmp))"
taskset -c "$SRV_CPU" "$BIN/nvlendd" -m "$SRV_CPU" -s "$T/rpc.sock" >"$T/daemon.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$T/rpc.sock" ] && break; sleep 0.05; done
export NVLEND_SOCKET=$T/rpc.sock
PORT=$(free_port)
"$BIN/nvlend" brick create bench --fast "$FAST" --capacity 64 >/dev/null || exit 1
"$BIN/nvlend" brick create dbench --fast "$DISK" --capacity 8 >/dev/null || exit 1
"$BIN/nvlend" brick listen bench shm "$T/b.sock" || exit 1
"$BIN/nvlend" brick listen dbench shm "$T/d.sock" || exit 1
"$BIN/nvlend" brick listen bench tcp 127.0.0.1 "$PORT" || exit 1
SHM="brick+shm://$T/b.sock?name=bench"
DSHM="brick+shm://$T/d.sock?name=dbench"
TCP="brick+tcp://127.0.0.1:$PORT/bench"
run() { taskset -c "$CLI_CPU" "$H" "$@" || { echo "brick_bench $* failed"; exit 1; }; }
get() { sed -n "s/^$1 //p" "$2"; }

run cycle "$SHM" 300 >"$T/cyc_shm"
run cycle "$TCP" 300 >"$T/cyc_tcp"
run cycle "$DSHM" 40 >"$T/cyc_disk"
run onesided "$SHM" 16 30 >"$T/one"
run tcpbw "$TCP" 8 60 >"$T/tcpbw"
run lat "$TCP" 20000 >"$T/lat"

IPORT=$(free_port)
taskset -c "$SRV_CPU" iperf3 -s -1 -p "$IPORT" >/dev/null 2>&1 & pids+=($!)
sleep 0.3
taskset -c "$CLI_CPU" iperf3 -c 127.0.0.1 -p "$IPORT" -t 5 -J >"$T/iperf.json" 2>/dev/null
iperf=$(/usr/bin/python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e9))' "$T/iperf.json" 2>/dev/null || echo 0)

PPORT=$(free_port)
taskset -c "$SRV_CPU" "$H" pp-server "$PPORT" >"$T/pp-srv" 2>&1 & pids+=($!)
for _ in $(seq 100); do grep -q listening "$T/pp-srv" && break; sleep 0.05; done
run pp-client 127.0.0.1 "$PPORT" 20000 >"$T/pp"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "n/a" }'; }
tw=$(get tcp_write_gbits "$T/tcpbw"); tr=$(get tcp_read_gbits "$T/tcpbw")
echo
echo "| measurement | brick | baseline (same run) | ratio |"
echo "|---|---|---|---|"
echo "| alloc+map+write 2 MiB+flush+unmap, shm, fast tier in memory (p50 / avg) | $(get cycle_p50_us "$T/cyc_shm") / $(get cycle_avg_us "$T/cyc_shm") us | - | - |"
echo "| same cycle, tcp, fast tier in memory (p50 / avg) | $(get cycle_p50_us "$T/cyc_tcp") / $(get cycle_avg_us "$T/cyc_tcp") us | - | - |"
echo "| same cycle, shm, disk directory (fdatasync) (p50 / avg) | $(get cycle_p50_us "$T/cyc_disk") / $(get cycle_avg_us "$T/cyc_disk") us | - | - |"
echo "| one-sided write bandwidth, shm, 16 x 2 MiB blocks | $(get onesided_gibs "$T/one") GiB/s | memcpy 2 MiB blocks $(get memcpy_gibs "$T/one") GiB/s | $(ratio "$(get onesided_gibs "$T/one")" "$(get memcpy_gibs "$T/one")") (target >= 90%) |"
echo "| 2 MiB WRITE over tcp, QD1 | $tw Gbit/s | iperf3 1 stream $iperf Gbit/s | $(ratio "$tw" "$iperf") (target >= 80%) |"
echo "| 2 MiB READ over tcp, QD1 | $tr Gbit/s | iperf3 1 stream $iperf Gbit/s | $(ratio "$tr" "$iperf") |"
echo "| 4 KiB random READ, tcp, QD1 (p50 / avg) | $(get read4k_p50_us "$T/lat") / $(get read4k_avg_us "$T/lat") us | ping-pong 64 B -> 64 B+4 KiB: $(get pp_read4k_p50_us "$T/pp") / $(get pp_read4k_avg_us "$T/pp") us | $(ratio "$(get pp_read4k_p50_us "$T/pp")" "$(get read4k_p50_us "$T/lat")") of ping-pong speed (p50) |"
echo "| 4 KiB random WRITE, tcp, QD1 (p50 / avg) | $(get write4k_p50_us "$T/lat") / $(get write4k_avg_us "$T/lat") us | ping-pong 64 B+4 KiB -> 64 B: $(get pp_write4k_p50_us "$T/pp") / $(get pp_write4k_avg_us "$T/pp") us | $(ratio "$(get pp_write4k_p50_us "$T/pp")" "$(get write4k_p50_us "$T/lat")") of ping-pong speed (p50) |"
echo
echo "p99: cycle shm $(get cycle_p99_us "$T/cyc_shm") us, tcp $(get cycle_p99_us "$T/cyc_tcp") us, disk $(get cycle_p99_us "$T/cyc_disk") us; read4k $(get read4k_p99_us "$T/lat") us (ping-pong $(get pp_read4k_p99_us "$T/pp")); write4k $(get write4k_p99_us "$T/lat") us (ping-pong $(get pp_write4k_p99_us "$T/pp"))"

if [ $BENCH_PLOT = 1 ]; then
	place="nvlendd and servers CPU $SRV_CPU, clients CPU $CLI_CPU"
	t="brick bandwidth, one-sided shm vs memcpy ($place) (GiB/s)"
	bench_plot_point bar "$t" "brick one-sided write, shm" "16 x 2 MiB" "$(get onesided_gibs "$T/one")"
	bench_plot_point bar "$t" "memcpy 2 MiB blocks" "16 x 2 MiB" "$(get memcpy_gibs "$T/one")"
	t="brick 2 MiB over tcp vs iperf3 ($place) (Gbit/s)"
	bench_plot_point bar "$t" "brick tcp QD1" WRITE "$tw"
	bench_plot_point bar "$t" "brick tcp QD1" READ "$tr"
	bench_plot_point bar "$t" "iperf3 1 stream" WRITE "$iperf"
	bench_plot_point bar "$t" "iperf3 1 stream" READ "$iperf"
	t="brick 4 KiB QD1 over tcp vs ping-pong ($place)"
	for k in p50 avg p99; do
		bench_plot_point lat "$t" "brick READ" "$k" "$(get "read4k_${k}_us" "$T/lat")"
		bench_plot_point lat "$t" "ping-pong 64 B -> 64 B+4 KiB" "$k" "$(get "pp_read4k_${k}_us" "$T/pp")"
		bench_plot_point lat "$t" "brick WRITE" "$k" "$(get "write4k_${k}_us" "$T/lat")"
		bench_plot_point lat "$t" "ping-pong 64 B+4 KiB -> 64 B" "$k" "$(get "pp_write4k_${k}_us" "$T/pp")"
	done
	t="brick alloc+map+write 2 MiB+flush+unmap cycle, memory tier ($place)"
	for k in p50 avg p99; do
		bench_plot_point lat "$t" "shm" "$k" "$(get "cycle_${k}_us" "$T/cyc_shm")"
		bench_plot_point lat "$t" "tcp" "$k" "$(get "cycle_${k}_us" "$T/cyc_tcp")"
	done
	bench_plot_render brick
fi
