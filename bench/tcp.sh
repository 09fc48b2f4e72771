#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# bench/tcp.sh [BUILD_DIR] - NVMe/TCP performance on this machine's loopback,
# all in one run, against baselines measured in the same run:
#   floor of the medium: 4 KiB TCP ping-pong round trip, iperf3 one stream
#   direct io_uring (fio) on the backing file
#   nvlend-perf over NVMe/TCP and over shm on that same file, 1 and 4 queues:
#   4 KiB random read/write at QD1 (p50/p99) and QD32 (IOPS), 128 KiB
#   sequential read bandwidth.
# Placement (2 vCPUs): servers (target daemon, ping-pong server, iperf3 -s) on
# CPU 1, clients (nvlend-perf, fio, ping-pong client, iperf3 -c) on CPU 0.
# Not a test: numbers move with the machine's load. RUNTIME=secs per point.
# --plot also sweeps 4 KiB random read over queue depths (BENCH_QDS, default
# 1 2 4 8 16 32) on NVMe/TCP, shm and direct io_uring, and writes PNG charts
# (IOPS vs queue depth, QD1 latency percentiles) to bench/results/plots/.
set -u
source "$(dirname "$0")/common.sh"
bench_plot_args "$@"
set -- "${BENCH_ARGS[@]}"
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$TOP/build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
BIN=$BUILD/bin
RT=${RUNTIME:-3}
CS=0 # client CPU
CT=1 # server CPU
T=$(mktemp -d /tmp/nvlend-bench-tcp.XXXXXX)
PY=/usr/bin/python3
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$T" /dev/shm/nvlend-bench-tcp-$$.img
}
trap cleanup EXIT
for c in iperf3 fio taskset gcc; do
	command -v $c >/dev/null || { echo "bench/tcp.sh needs $c" >&2; exit 2; }
done
[ -x "$BIN/nvlendd" ] && [ -x "$BIN/nvlend-perf" ] || { echo "build first (make)" >&2; exit 2; }
port() { echo $((20000 + RANDOM % 30000)); }
jget() { $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

echo "placement: servers (nvlendd -m $CT, ping-pong server, iperf3 -s) on CPU $CT;" \
	"clients (nvlend-perf, fio, ping-pong, iperf3 -c) on CPU $CS; ${RT}s per point"
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- floor of the medium ----------------------------------------------------------
cat > "$T/pingpong.c" <<'EOF'
/* 4 KiB request, 4 KiB answer, over loopback TCP; prints p50 and mean RTT in us. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static int all(int fd, char *b, size_t n, int rd) {
	while (n) { ssize_t k = rd ? recv(fd, b, n, 0) : send(fd, b, n, 0); if (k <= 0) return -1; b += k; n -= (size_t)k; }
	return 0;
}
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
	int port = atoi(argv[2]), one = 1, n = 20000; static char buf[4096];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (argv[1][0] == 's') {
		int l = socket(AF_INET, SOCK_STREAM, 0), c;
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(l, (void *)&sa, sizeof(sa)) || listen(l, 1)) return 1;
		c = accept(l, NULL, NULL); setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		while (all(c, buf, sizeof(buf), 1) == 0 && all(c, buf, sizeof(buf), 0) == 0) ;
		return 0;
	}
	int c = socket(AF_INET, SOCK_STREAM, 0); double *t = calloc(n, sizeof(double)), sum = 0;
	for (int i = 0; connect(c, (void *)&sa, sizeof(sa)) && i < 100; i++) usleep(10000);
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (int i = -2000; i < n; i++) {
		struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
		if (all(c, buf, sizeof(buf), 0) || all(c, buf, sizeof(buf), 1)) return 1;
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (i >= 0) { t[i] = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3; sum += t[i]; }
	}
	qsort(t, n, sizeof(double), cmp);
	printf("%.2f %.2f\n", t[n / 2], sum / n);
	return 0;
}
EOF
gcc -O2 -o "$T/pingpong" "$T/pingpong.c" || exit 2
P=$(port)
taskset -c $CT "$T/pingpong" s $P & PIDS+=($!)
read -r PP50 PPAVG < <(taskset -c $CS "$T/pingpong" c $P)
P=$(port)
taskset -c $CT iperf3 -s -p $P -1 >/dev/null 2>&1 & PIDS+=($!)
sleep 0.3
taskset -c $CS iperf3 -c 127.0.0.1 -p $P -t $((RT + 1)) -O 1 --json > "$T/iperf.json" 2>/dev/null
IPERF_GBS=$(jget "$T/iperf.json" "'%.2f' % (d['end']['sum_received']['bits_per_second']/8e9)")

# ---- backing file and direct io_uring ---------------------------------------------------
IMG=/dev/shm/nvlend-bench-tcp-$$.img
dd if=/dev/urandom of=$IMG bs=1M count=512 status=none
fiorun() { # name rw bs qd -> json file
	taskset -c $CS fio --name="$1" --filename=$IMG --ioengine=io_uring --direct=1 --rw="$2" \
		--bs="$3" --iodepth="$4" --time_based --runtime=$RT --ramp_time=1 --size=512M \
		--percentile_list=50:99 --output-format=json > "$T/fio-$1.json" 2>/dev/null
}
fio_lat() { jget "$T/fio-$1.json" "'%.1f/%.1f' % tuple(d['jobs'][0]['$2']['clat_ns']['percentile'][k]/1000 for k in ('50.000000','99.000000'))"; }
fio_iops() { jget "$T/fio-$1.json" "'%.0f' % d['jobs'][0]['$2']['iops']"; }
fio_bw() { jget "$T/fio-$1.json" "'%.2f' % (d['jobs'][0]['$2']['bw_bytes']/1e9)"; }
fiorun rr1 randread 4k 1
fiorun rw1 randwrite 4k 1
fiorun rr32 randread 4k 32
fiorun rw32 randwrite 4k 32
fiorun seq read 128k 8
U_RR1=$(fio_lat rr1 read)
U_RW1=$(fio_lat rw1 write)
U_RR32=$(fio_iops rr32 read)
U_RW32=$(fio_iops rw32 write)
U_SEQ=$(fio_bw seq read)

# ---- nvlendd serving the file over NVMe/TCP and shm ----------------------------------------
SOCK=$T/rpc.sock
TP=$(port)
NQN=nqn.2024-01.io.nvlend:bench
taskset -c $CT "$BIN/nvlendd" -s $SOCK -m $CT > "$T/nvlendd.log" 2>&1 & PIDS+=($!)
for _ in $(seq 50); do "$BIN/nvlend" -s $SOCK -t 1 rpc nvlend_get_version >/dev/null 2>&1 && break; sleep 0.1; done
r() { "$BIN/nvlend" -s $SOCK rpc "$@" >/dev/null || { echo "rpc $1 failed" >&2; exit 1; }; }
r bdev_uring_create "{\"name\":\"f0\",\"filename\":\"$IMG\"}"
r nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true}"
r nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"f0\"}}"
r nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$TP\"}}"
r nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"$T/shm.sock\"}}"
TCP_URI=nvme+tcp://127.0.0.1:$TP/$NQN
SHM_URI="nvme+shm://$T/shm.sock?nqn=$NQN"
perf() { # uri name rw bs qd jobs
	local cpus=$CS
	for ((i = 1; i < $6; i++)); do cpus=$cpus,$CS; done
	"$BIN/nvlend-perf" "$1" --rw="$3" --bs="$4" --iodepth="$5" --numjobs="$6" --cpus=$cpus \
		--poll --runtime=$RT --ramp_time=1 --json > "$T/perf-$2.json" 2>/dev/null ||
		echo "  (nvlend-perf $2 failed)" >&2
}
p_lat() { jget "$T/perf-$1.json" "'%.1f/%.1f' % (d['$2']['lat_us']['p50'], d['$2']['lat_us']['p99'])"; }
p_iops() { jget "$T/perf-$1.json" "'%.0f' % d['$2']['iops']"; }
p_bw() { jget "$T/perf-$1.json" "'%.2f' % (d['$2']['bw_mib_s']*1048576/1e9)"; }
for tr in tcp shm; do
	[ $tr = tcp ] && u=$TCP_URI || u=$SHM_URI
	perf "$u" $tr-rr1 randread 4k 1 1
	perf "$u" $tr-rw1 randwrite 4k 1 1
	for q in 1 4; do
		perf "$u" $tr-rr32-$q randread 4k $((32 / q)) $q
		perf "$u" $tr-rw32-$q randwrite 4k $((32 / q)) $q
		perf "$u" $tr-seq-$q read 128k $((8 / q > 0 ? 8 / q : 1)) $q
	done
done

row() { printf '| %-34s | %-16s | %-16s | %-16s |\n' "$@"; }
echo
row "4 KiB / 128 KiB, loopback" "NVMe/TCP" "shm" "io_uring direct"
row "----------------------------------" "----------------" "----------------" "----------------"
row "randread QD1 p50/p99 (us)" "$(p_lat tcp-rr1 read)" "$(p_lat shm-rr1 read)" "$U_RR1"
row "randwrite QD1 p50/p99 (us)" "$(p_lat tcp-rw1 write)" "$(p_lat shm-rw1 write)" "$U_RW1"
for q in 1 4; do
	row "randread QD32 IOPS, $q queue(s)" "$(p_iops tcp-rr32-$q read)" "$(p_iops shm-rr32-$q read)" "$([ $q = 1 ] && echo "$U_RR32" || echo -)"
	row "randwrite QD32 IOPS, $q queue(s)" "$(p_iops tcp-rw32-$q write)" "$(p_iops shm-rw32-$q write)" "$([ $q = 1 ] && echo "$U_RW32" || echo -)"
	row "128 KiB seq read GB/s QD8, $q q" "$(p_bw tcp-seq-$q read)" "$(p_bw shm-seq-$q read)" "$([ $q = 1 ] && echo "$U_SEQ" || echo -)"
done
echo
echo "floor: 4 KiB TCP ping-pong round trip p50 ${PP50} us (mean ${PPAVG} us); iperf3 one stream ${IPERF_GBS} GB/s"
TCP_P50=$(jget "$T/perf-tcp-rr1.json" "d['read']['lat_us']['p50']")
URING_P50=${U_RR1%%/*}
TCP_BW=$(p_bw tcp-seq-1 read)
$PY - "$TCP_P50" "$PP50" "$URING_P50" "$TCP_BW" "$IPERF_GBS" <<'EOF'
import sys
tcp, pp, ur, bw, ip = map(float, sys.argv[1:])
floor = pp + ur
print("QD1 read p50: %.1f us = %.2fx (ping-pong + direct read = %.1f us); target <= 1.5x: %s"
      % (tcp, tcp / floor, floor, "met" if tcp <= 1.5 * floor else "NOT met"))
print("128 KiB read: %.2f GB/s = %.0f%% of iperf3 %.2f GB/s; target >= 70%%: %s"
      % (bw, 100 * bw / ip, ip, "met" if bw >= 0.7 * ip else "NOT met"))
EOF

# ---- charts (--plot): the same three paths over queue depths ---------------------------------
if [ $BENCH_PLOT = 1 ]; then
	for qd in $BENCH_QDS; do
		fiorun "sw$qd" randread 4k "$qd"
		perf "$TCP_URI" "tcp-sw$qd" randread 4k "$qd" 1
		perf "$SHM_URI" "shm-sw$qd" randread 4k "$qd" 1
		bench_plot_point qd "4 KiB random read, one queue (target CPU $CT, clients CPU $CS)" "io_uring direct (fio)" "$qd" \
			"$(fio_iops "sw$qd" read)"
		bench_plot_point qd "4 KiB random read, one queue (target CPU $CT, clients CPU $CS)" "nvlend NVMe/TCP" "$qd" \
			"$(p_iops "tcp-sw$qd" read)"
		bench_plot_point qd "4 KiB random read, one queue (target CPU $CT, clients CPU $CS)" "nvlend shm" "$qd" \
			"$(p_iops "shm-sw$qd" read)"
	done
	for rw in read write; do
		t="4 KiB random $rw QD1 latency (target CPU $CT, clients CPU $CS)"
		f=$([ $rw = read ] && echo "$U_RR1" || echo "$U_RW1")
		k=$([ $rw = read ] && echo rr1 || echo rw1)
		for tr in tcp shm; do
			l=$(p_lat "$tr-$k" $rw)
			name=$([ $tr = tcp ] && echo "nvlend NVMe/TCP" || echo "nvlend shm")
			bench_plot_point lat "$t" "$name" p50 "${l%/*}"
			bench_plot_point lat "$t" "$name" p99 "${l#*/}"
		done
		bench_plot_point lat "$t" "io_uring direct (fio)" p50 "${f%/*}"
		bench_plot_point lat "$t" "io_uring direct (fio)" p99 "${f#*/}"
	done
	bench_plot_render tcp
fi
