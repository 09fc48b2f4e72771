#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# bench/spdk.sh [BUILD_DIR] - nvlend's NVMe/TCP target against SPDK's nvmf_tgt,
# side by side on this machine (issue 19).
#
# SPDK is not part of nvlend and this script never downloads it: point
# SPDK_DIR at an SPDK source tree, v24.01 or later, built in place:
#     git clone https://github.com/spdk/spdk && cd spdk && git checkout v24.01
#     git submodule update --init      # DPDK and the other submodules
#     apt-get install libnuma-dev libaio-dev python3-pyelftools meson \
#         libjson-c-dev libcunit1-dev libkeyutils-dev uuid-dev libssl-dev
#     ./configure --without-isal && make -j2       # about 8 minutes here
# (it wants hugepages: vm.nr_hugepages and hugetlbfs; without any, this script
# runs nvmf_tgt and spdk_nvme_perf with --no-huge and says so).
#
# Method: the same 64 MiB RAM namespace with 512 B blocks (bdev_malloc_create
# on both), one subsystem, a TCP listener on loopback. The target under test
# (nvmf_tgt -m <CPU>, or nvlendd -m <CPU>: one reactor) runs alone on CPU
# TARGET_CPU (default 1); the initiator (spdk_nvme_perf -c, nvlend-perf
# --cpus) on CPU CLIENT_CPU (default 0). The two targets never run at the
# same time: for every point (workload x initiator) each round starts one
# target, measures, stops it, then does the same with the other, the order
# flipping from round to round. ROUNDS (default 5, at least 5) rounds of
# RUNTIME seconds (default 3) per measurement; DRIVERS (default
# "spdk_nvme_perf nvlend-perf") picks the initiators. Printed per point: the
# geometric mean of the paired per-round ratios nvlend/SPDK and their spread
# (lowest..highest, geometric standard deviation); for throughput a ratio
# above 1 favours nvlend, for QD1 average latency one below 1 does.
# Not a test: the machine is shared and its speed moves by 15-40 % between
# rounds, which is why only the paired ratios are reported.
#
# --plot also measures 4 KiB random read at the queue depths of BENCH_QDS
# (default "1 2 4 8 16 32"; same alternating rounds) and writes PNG charts to
# bench/results/plots/ (BENCH_PLOT_DIR), per initiator, both targets side by
# side, each value the median of the rounds, titled with the placement: IOPS
# vs queue depth (4 KiB random read), QD32 IOPS bars (4 KiB random read and
# write), 128 KiB read MiB/s bars, QD1 average latency bars. The CI test of
# --plot (tests/functional/bench_plot.sh) skips this script: it needs an SPDK
# build.
set -u
source "$(dirname "$0")/common.sh"
bench_plot_args "$@"
set -- "${BENCH_ARGS[@]}"
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$TOP/build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
BIN=$BUILD/bin
SPDK_DIR=${SPDK_DIR:-}
ROUNDS=${ROUNDS:-5}
RT=${RUNTIME:-3}
CT=${TARGET_CPU:-1}
CS=${CLIENT_CPU:-0}
PY=/usr/bin/python3
NQN=nqn.2016-06.io.spdk:bench

[ -n "$SPDK_DIR" ] || { echo "set SPDK_DIR to an SPDK v24.01+ tree built in place (see the header)" >&2; exit 2; }
TGT=$SPDK_DIR/build/bin/nvmf_tgt
SPERF=$SPDK_DIR/build/bin/spdk_nvme_perf
RPCPY=$SPDK_DIR/scripts/rpc.py
for f in "$TGT" "$SPERF" "$RPCPY"; do
	[ -e "$f" ] || { echo "$f missing: build SPDK first (see the header)" >&2; exit 2; }
done
[ -x "$BIN/nvlendd" ] && [ -x "$BIN/nvlend-perf" ] || { echo "build nvlend first (make)" >&2; exit 2; }
[ "$ROUNDS" -ge 5 ] || echo "warning: ROUNDS=$ROUNDS; the issue's floors are judged on at least 5" >&2
command -v taskset >/dev/null || { echo "needs taskset" >&2; exit 2; }

T=$(mktemp -d /tmp/nvlend-bench-spdk.XXXXXX)
TPID=
cleanup() {
	[ -n "$TPID" ] && { kill "$TPID" 2>/dev/null; wait "$TPID" 2>/dev/null; }
	rm -rf "$T"
}
trap cleanup EXIT

HUGE=()
if [ "$(awk '/^HugePages_Total/ {print $2}' /proc/meminfo)" = 0 ]; then
	HUGE=(--no-huge -s 1024)
	NOHUGE_NOTE="no hugepages configured: nvmf_tgt and spdk_nvme_perf run with --no-huge -s 1024"
else
	NOHUGE_NOTE="hugepages: $(awk '/^HugePages_Total/ {print $2}' /proc/meminfo)"
fi
PORT=$((20000 + RANDOM % 30000))
TRID="trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$PORT subnqn:$NQN"
URI="nvme+tcp://127.0.0.1:$PORT/$NQN"

spdk_ver() { awk -v k="SPDK_VERSION_$1" '$1 == "#define" && $2 == k {print $3}' "$SPDK_DIR/include/spdk/version.h"; }
echo "SPDK: $SPDK_DIR (v$(spdk_ver MAJOR).$(printf '%02d' "$(spdk_ver MINOR)")$(spdk_ver SUFFIX | tr -d '"'))"
echo "placement: target (nvmf_tgt -m, or nvlendd -m: one reactor) alone on CPU $CT;" \
	"initiator (spdk_nvme_perf -c, nvlend-perf --cpus) on CPU $CS; $ROUNDS rounds, ${RT}s per measurement"
echo "$NOHUGE_NOTE"
echo "namespace: 64 MiB RAM, 512 B blocks; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"

wait_sock() { for _ in $(seq 1 200); do [ -S "$1" ] && return 0; sleep 0.05; done; return 1; }

start_spdk() {
	rm -f "$T/spdk.sock"
	taskset -c "$CT" "$TGT" -m "$((1 << CT))" "${HUGE[@]}" -r "$T/spdk.sock" >"$T/spdk.log" 2>&1 &
	TPID=$!
	wait_sock "$T/spdk.sock" || { cat "$T/spdk.log" >&2; exit 1; }
	local r="$PY $RPCPY -s $T/spdk.sock"
	$r nvmf_create_transport -t TCP >/dev/null &&
		$r bdev_malloc_create -b Malloc0 64 512 >/dev/null &&
		$r nvmf_create_subsystem "$NQN" -a -s BENCH0001 >/dev/null &&
		$r nvmf_subsystem_add_ns "$NQN" Malloc0 >/dev/null &&
		$r nvmf_subsystem_add_listener "$NQN" -t tcp -a 127.0.0.1 -s "$PORT" >/dev/null ||
		{ cat "$T/spdk.log" >&2; exit 1; }
}

start_nvlend() {
	rm -f "$T/nvl.sock"
	taskset -c "$CT" "$BIN/nvlendd" -m "$CT" -s "$T/nvl.sock" --state-dir "$T/state" \
		>"$T/nvl.log" 2>&1 &
	TPID=$!
	wait_sock "$T/nvl.sock" || { cat "$T/nvl.log" >&2; exit 1; }
	local r="$BIN/nvlend -s $T/nvl.sock rpc"
	$r nvmf_create_transport '{"trtype": "TCP"}' >/dev/null &&
		$r bdev_malloc_create '{"name": "Malloc0", "num_blocks": 131072, "block_size": 512}' >/dev/null &&
		$r nvmf_create_subsystem "{\"nqn\": \"$NQN\", \"allow_any_host\": true}" >/dev/null &&
		$r nvmf_subsystem_add_ns "{\"nqn\": \"$NQN\", \"namespace\": {\"bdev_name\": \"Malloc0\"}}" >/dev/null &&
		$r nvmf_subsystem_add_listener "{\"nqn\": \"$NQN\", \"listen_address\": {\"trtype\": \"TCP\", \"traddr\": \"127.0.0.1\", \"trsvcid\": \"$PORT\"}}" >/dev/null ||
		{ cat "$T/nvl.log" >&2; exit 1; }
}

stop_target() {
	kill "$TPID" 2>/dev/null
	wait "$TPID" 2>/dev/null
	TPID=
}

# measure DRIVER RW BS QD: prints "IOPS MiB/s avg_latency_us"
measure() {
	local drv=$1 rw=$2 bs=$3 qd=$4 out=$T/m.out
	if [ "$drv" = spdk_nvme_perf ]; then
		taskset -c "$CS" "$SPERF" "${HUGE[@]}" -c "$((1 << CS))" -q "$qd" -o "$bs" -w "$rw" \
			-t "$RT" -r "$TRID" >"$out" 2>&1 || { cat "$out" >&2; echo "0 0 0"; return; }
		# "Total : IOPS MiB/s Average min max"
		awk '/^Total/ {print $3, $4, $5}' "$out"
	else
		taskset -c "$CS" "$BIN/nvlend-perf" "$URI" --rw="$rw" --bs="$bs" --iodepth="$qd" \
			--cpus="$CS" --runtime="$RT" --json >"$out" 2>&1 || { cat "$out" >&2; echo "0 0 0"; return; }
		$PY - "$out" "$rw" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
k = "write" if "write" in sys.argv[2] else "read"
x = d[k]
print(x["iops"], x["bw_mib_s"], x["lat_us"]["mean"])
PY
	fi
}

# point NAME RW BS QD METRIC(iops|mibs|lat)
POINTS=(
	"4k-randread-qd32 randread 4096 32 iops"
	"4k-randwrite-qd32 randwrite 4096 32 iops"
	"128k-read-qd32 read 131072 32 mibs"
	"4k-randread-qd1-latency randread 4096 1 lat"
)
if [ $BENCH_PLOT = 1 ]; then
	for q in $BENCH_QDS; do
		[ "$q" = 1 ] || [ "$q" = 32 ] || POINTS+=("4k-randread-qd$q randread 4096 $q iops")
	done
fi
: >"$T/results"
for drv in ${DRIVERS:-spdk_nvme_perf nvlend-perf}; do
	for p in "${POINTS[@]}"; do
		read -r name rw bs qd metric <<<"$p"
		for ((r = 1; r <= ROUNDS; r++)); do
			if ((r % 2)); then order="spdk nvlend"; else order="nvlend spdk"; fi
			for tgt in $order; do
				"start_$tgt"
				read -r iops mibs lat <<<"$(measure "$drv" "$rw" "$bs" "$qd")"
				stop_target
				echo "$drv $name $metric $r $tgt $iops $mibs $lat" >>"$T/results"
			done
			printf '.' >&2
		done
	done
done
echo >&2

PLOT_PLACE="target CPU $CT, initiator CPU $CS" $PY - "$T/results" "${_bench_points:-}" <<'PY'
import math, os, re, sys
rows = [l.split() for l in open(sys.argv[1])]
pts = {}
for drv, name, metric, rnd, tgt, iops, mibs, lat in rows:
    v = {"iops": float(iops), "mibs": float(mibs), "lat": float(lat)}[metric]
    pts.setdefault((drv, name, metric), {}).setdefault(int(rnd), {})[tgt] = v
print("%-15s %-24s %12s %12s %8s %15s %6s" % ("initiator", "point", "SPDK median", "nvlend med.",
                                            "geomean", "spread", "gsd"))
for (drv, name, metric), rounds in pts.items():
    ratios = [r["nvlend"] / r["spdk"] for r in rounds.values()
              if r.get("spdk", 0) > 0 and r.get("nvlend", 0) > 0]
    if not ratios:
        print("%-15s %-24s  (no valid pair)" % (drv, name))
        continue
    logs = [math.log(x) for x in ratios]
    g = math.exp(sum(logs) / len(logs))
    gsd = math.exp((sum((l - math.log(g)) ** 2 for l in logs) / len(logs)) ** 0.5)
    med = lambda xs: sorted(xs)[len(xs) // 2]
    unit = {"iops": "IOPS", "mibs": "MiB/s", "lat": "us avg"}[metric]
    print("%-15s %-24s %12.1f %12.1f %7.2fx %6.2f..%-6.2f %6.3f  (%s, %d pairs%s)" % (
        drv, name, med([r["spdk"] for r in rounds.values()]),
        med([r["nvlend"] for r in rounds.values()]), g, min(ratios), max(ratios), gsd, unit,
        len(ratios), "; lower is better" if metric == "lat" else ""))
if sys.argv[2]:
    # --plot: the median of the rounds per target, both targets in every chart
    place = os.environ["PLOT_PLACE"]
    med = lambda xs: sorted(xs)[len(xs) // 2]
    series = {"nvlend": "nvlendd", "spdk": "SPDK nvmf_tgt"}
    vals = {}
    for drv, name, metric, rnd, tgt, iops, mibs, lat in rows:
        vals.setdefault((drv, name, tgt), []).append((float(iops), float(mibs), float(lat)))
    with open(sys.argv[2], "a") as out:
        for (drv, name, tgt), v in vals.items():
            iops, mibs, lat = (med([x[i] for x in v if x[i] > 0] or [0]) for i in range(3))
            s = series[tgt]
            m = re.match(r"4k-randread-qd(\d+)", name)
            if m:
                out.write("qd\t4 KiB random read over NVMe/TCP, %s (%s)\t%s\t%s\t%.0f\n"
                          % (drv, place, s, m.group(1), iops))
            if name.endswith("-qd32") and name.startswith("4k-"):
                out.write("bar\t4 KiB QD32 over NVMe/TCP, %s (%s) (IOPS)\t%s\t%s\t%.0f\n"
                          % (drv, place, s, name.split("-")[1], iops))
            if name == "128k-read-qd32":
                out.write("bar\t128 KiB read QD32 over NVMe/TCP (%s) (MiB/s)\t%s\t%s\t%.1f\n"
                          % (place, s, drv, mibs))
            if name == "4k-randread-qd1-latency":
                out.write("lat\t4 KiB random read QD1 average latency over NVMe/TCP (%s)\t%s\tavg, %s\t%.1f\n"
                          % (place, s, drv, lat))
PY
bench_plot_render spdk
