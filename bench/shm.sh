#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# shm transport vs direct io_uring on the same backing, in one run.
#
# 4 KiB random read and write through the shm transport with nvlend-perf,
# against fio io_uring on the SAME backing measured in the same run:
#   - the disk file of bench/baseline.sh (O_DIRECT), served by a file bdev;
#   - a tmpfs file (RAM), served by a file bdev (inline preadv on tmpfs);
#   - a RAM bdev (memory owned by the daemon) against the tmpfs baseline;
# QD1 latency p50/p99 and QD32 IOPS with one queue pair, then 2 and 4
# concurrent clients (separate processes, each its own controller and queue,
# total depth 32). Targets from the issue: QD32 IOPS >= 85% of direct
# io_uring on the same file; QD1 added latency < 3 us p50. Both sides' latency
# is end to end: fio's total latency (lat) and nvlend-perf's, from before the
# submit call to the completion (see run_fio_json in common.sh for why not clat).
#
# Placement (printed): nvlendd's single reactor on BENCH_CPU_B (default 1),
# fio and nvlend-perf on BENCH_CPU_A (default 0): "split", the placement a
# polling transport is designed for (MACHINE-NOTES: a cross-CPU wake-up costs
# ~34 us; both sides spin while busy). The last QD1 rows repeat with
# everything on one CPU, spinning as usual and then with both sides sleeping
# at once (fio's own placement), to show what those cost.
#
#   bench/shm.sh [BUILD_DIR] [--plot]   BENCH_RUNTIME=10 BENCH_RAMP=2 by default;
#                                       BENCH_SHM_SIZE=1G: tmpfs file and RAM bdev
#   --plot    also sweep queue depths (BENCH_QDS, default "1 2 4 8 16 32") with one
#             client, randread and randwrite, on the three backings and both fio
#             baselines, and write PNG charts to bench/results/plots/
#             (BENCH_PLOT_DIR): IOPS vs queue depth per I/O kind (shm beside
#             io_uring) and QD1 latency p50/p99 of every QD1 row, titled with the
#             placement (nvlendd's CPU, the clients' CPU)
source "$(dirname "$0")/common.sh"
bench_plot_args "$@"
set -- "${BENCH_ARGS[@]}"
bench_requires fio taskset
[ $# -gt 0 ] && BUILD=$1 && case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
SHM_SIZE=${BENCH_SHM_SIZE:-1G}
BIN=$BUILD/bin
[ -x "$BIN/nvlend-perf" ] || bench_die "build first (make): $BIN/nvlend-perf missing"
A=$BENCH_CPU_A
B=$BENCH_CPU_B
W=$(mktemp -d /tmp/nvlend-bench-shm.XXXXXX)
SOCK=$W/rpc.sock
TMPFS_FILE=/dev/shm/nvlend-bench-shm-$$.img
DPID=
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -f "$TMPFS_FILE"
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== nvlend shm transport vs direct io_uring, 4 KiB random I/O"
bench_machine_info

# 1. the baselines of this run
BENCH_OUT=$W/baseline.env BENCH_SHM_SIZE=$SHM_SIZE "$BENCH_DIR/baseline.sh" >"$W/baseline.log" 2>&1 ||
	{ cat "$W/baseline.log"; bench_die "baseline.sh failed"; }
# shellcheck disable=SC1091
source "$W/baseline.env"
DISK_FILE=$BASE_DISK_FILE
truncate -s 0 "$TMPFS_FILE"
fio --name=fill --filename="$TMPFS_FILE" --size="$SHM_SIZE" --rw=write --bs=1M --ioengine=psync \
	--refill_buffers --output=/dev/null || bench_die "cannot fill $TMPFS_FILE"
common=(--name=b --bs=4k --time_based --runtime="$BENCH_RUNTIME" --ramp_time="$BENCH_RAMP"
	--norandommap --randrepeat=0 --thread)
# write baselines (baseline.sh measures reads only)
run_fio_json WD1 pin "$A" fio "${common[@]}" --filename="$DISK_FILE" --rw=randwrite \
	--ioengine=io_uring --direct=1 --iodepth=1
run_fio_json WD32 pin "$A" fio "${common[@]}" --filename="$DISK_FILE" --rw=randwrite \
	--ioengine=io_uring --direct=1 --iodepth=32
run_fio_json WT1 pin "$A" fio "${common[@]}" --filename="$TMPFS_FILE" --rw=randwrite \
	--ioengine=io_uring --iodepth=1
run_fio_json WT32 pin "$A" fio "${common[@]}" --filename="$TMPFS_FILE" --rw=randwrite \
	--ioengine=io_uring --iodepth=32

# 2. the daemon, one reactor pinned to CPU B
start_daemon() {
	"$BIN/nvlendd" -s "$SOCK" --cores "$1" ${2:+--spin-us "$2"} >>"$W/nvlendd.log" 2>&1 &
	DPID=$!
	for _ in $(seq 1 100); do "$BIN/nvlend" -s "$SOCK" -t 1 status >/dev/null 2>&1 && break; sleep 0.05; done
	nv bdev create file disk0 "$DISK_FILE" >/dev/null
	nv rpc bdev_uring_create "{\"name\":\"tmpfs0\",\"filename\":\"$TMPFS_FILE\"}" >/dev/null
	nv bdev create ram ram0 "$SHM_SIZE" >/dev/null
	for b in disk0 tmpfs0 ram0; do
		nv rpc nvmf_create_subsystem "{\"nqn\":\"nqn.2026-01.io.nvlend.bench:$b\",\"allow_any_host\":true}" >/dev/null
		nv rpc nvmf_subsystem_add_ns "{\"nqn\":\"nqn.2026-01.io.nvlend.bench:$b\",\"namespace\":{\"bdev_name\":\"$b\"}}" >/dev/null
		nv rpc nvmf_subsystem_add_listener "{\"nqn\":\"nqn.2026-01.io.nvlend.bench:$b\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"$W/$b.sock\"}}" >/dev/null
	done
}
stop_daemon() { kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=; }
PERF_EXTRA=
nv() { "$BIN/nvlend" -s "$SOCK" "$@"; }
uri() { echo "nvme+shm://$W/$1.sock?nqn=nqn.2026-01.io.nvlend.bench:$1"; }

# perf PREFIX CPU BDEV RW QD [NJOBS_PROCS]: run nvlend-perf; set PREFIX_IOPS/_P50/_P99
perf() {
	local prefix=$1 cpu=$2 b=$3 rw=$4 qd=$5 procs=${6:-1} i pids=() vars
	for ((i = 0; i < procs; i++)); do
		pin "$cpu" "$BIN/nvlend-perf" "$(uri "$b")" --rw="$rw" --bs=4k --iodepth="$qd" $PERF_EXTRA \
			--runtime="$BENCH_RUNTIME" --ramp_time="$BENCH_RAMP" --size="$SHM_SIZE" --json \
			--hostnqn="nqn.2026-01.io.nvlend.bench:client$i" >"$W/perf$i.json" 2>"$W/perf$i.err" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || { cat "$W"/perf*.err; bench_die "nvlend-perf failed"; }; done
	vars=$($PY - "$prefix" "$W"/perf*.json <<'PY'
import json, sys
p = sys.argv[1]
docs = [json.load(open(f)) for f in sys.argv[2:]]
side = "read" if "read" in docs[0] else "write"
iops = sum(d[side]["iops"] for d in docs)
p50 = max(d[side]["lat_us"]["p50"] for d in docs)
p99 = max(d[side]["lat_us"]["p99"] for d in docs)
print("%s_IOPS=%d %s_P50_US=%.1f %s_P99_US=%.1f" % (p, iops, p, p50, p, p99))
PY
	)
	rm -f "$W"/perf*.json "$W"/perf*.err
	eval "$vars"
}

start_daemon "$B"
bench_placement "fio (baselines)" "$A"
bench_placement "nvlend-perf (all clients)" "$A"
bench_placement "nvlendd (one reactor)" "$B"

table_start "backing" "I/O" "QD" "clients" "io_uring IOPS" "p50/p99 us" "(clat p50)" "shm IOPS" "p50/p99 us" "IOPS ratio" "added p50 us"
row() { # label io qd clients base_iops base_p50 base_p99 our_prefix base_clat_p50
	local o=$8
	eval "local oi=\$${o}_IOPS op50=\$${o}_P50_US op99=\$${o}_P99_US"
	local added=-
	[ "$4" = 1 ] && [ "$3" = 1 ] && added=$($PY -c "print('%.1f' % ($op50 - $6))")
	table_row "$1" "$2" "$3" "$4" "$5" "$6/$7" "(${9:--})" "$oi" "$op50/$op99" "$(ratio "$oi" "$5")" "$added"
	bench_result "SHM_${o}_IOPS" "$oi"
	bench_result "SHM_${o}_P50_US" "$op50"
	# charts: every single-client row at a swept depth, both sides; QD1 latencies
	local base="io_uring ${1%%,*}"
	[ "$1" = ram-bdev ] && base="io_uring tmpfs"
	if [ "$4" = 1 ] && [[ " ${BENCH_QDS:-} " = *" $3 "* ]] && [ "$1" = "${1%%,*}" ]; then
		bench_plot_point qd "4 KiB $2, one client ($SPLIT_TITLE)" "nvlend shm, $1" "$3" "$oi"
		[ "$1" = ram-bdev ] ||
			bench_plot_point qd "4 KiB $2, one client ($SPLIT_TITLE)" "$base" "$3" "$5"
	fi
	if [ "$3" = 1 ]; then
		local t="4 KiB $2 QD1 latency (nvlendd on CPU $B, clients on CPU $A, unless the row says same CPU)"
		[ "$1" = "${1%%,*}" ] && [ "$1" != ram-bdev ] && {
			bench_plot_point lat "$t" "$base" p50 "$6"
			bench_plot_point lat "$t" "$base" p99 "$7"
		}
		bench_plot_point lat "$t" "nvlend shm, $1" p50 "$op50"
		bench_plot_point lat "$t" "nvlend shm, $1" p99 "$op99"
	fi
	return 0
}
SPLIT_TITLE="nvlendd on CPU $B, clients and fio on CPU $A"
echo "running: ~22 nvlend-perf runs x $((BENCH_RUNTIME + BENCH_RAMP)) s"
for spec in "disk0 disk DISK WD" "tmpfs0 tmpfs SHM WT" "ram0 ram-bdev SHM WT"; do
	set -- $spec
	b=$1 label=$2 base=$3 wbase=$4
	perf R1 "$A" "$b" randread 1
	perf R32 "$A" "$b" randread 32
	perf W1 "$A" "$b" randwrite 1
	perf W32 "$A" "$b" randwrite 32
	eval "row '$label' randread 1 1 \$BASE_${base}_QD1_IOPS \$BASE_${base}_QD1_P50_US \$BASE_${base}_QD1_P99_US R1 \$BASE_${base}_QD1_CLAT_P50_US"
	eval "row '$label' randread 32 1 \$BASE_${base}_QD32_IOPS \$BASE_${base}_QD32_P50_US \$BASE_${base}_QD32_P99_US R32"
	eval "row '$label' randwrite 1 1 \$${wbase}1_IOPS \$${wbase}1_P50_US \$${wbase}1_P99_US W1 \$${wbase}1_CLAT_P50_US"
	eval "row '$label' randwrite 32 1 \$${wbase}32_IOPS \$${wbase}32_P50_US \$${wbase}32_P99_US W32"
done
for n in 2 4; do
	perf C$n "$A" disk0 randread $((32 / n)) $n
	row disk randread "$((32 / n))x$n" $n "$BASE_DISK_QD32_IOPS" "$BASE_DISK_QD32_P50_US" "$BASE_DISK_QD32_P99_US" C$n
	perf CT$n "$A" tmpfs0 randread $((32 / n)) $n
	row tmpfs randread "$((32 / n))x$n" $n "$BASE_SHM_QD32_IOPS" "$BASE_SHM_QD32_P50_US" "$BASE_SHM_QD32_P99_US" CT$n
done
# --plot: the depths the table has not measured, one client, on every backing
if [ $BENCH_PLOT = 1 ]; then
	for qd in $BENCH_QDS; do
		[ "$qd" = 1 ] || [ "$qd" = 32 ] && continue
		for spec in "disk0|disk|$DISK_FILE|1" "tmpfs0|tmpfs|$TMPFS_FILE|0" "ram0|ram-bdev||"; do
			IFS='|' read -r b label file direct <<<"$spec"
			for rw in randread randwrite; do
				perf Q "$A" "$b" "$rw" "$qd"
				bench_plot_point qd "4 KiB $rw, one client ($SPLIT_TITLE)" "nvlend shm, $label" "$qd" "$Q_IOPS"
				[ -n "$file" ] || continue
				run_fio_json F pin "$A" fio "${common[@]}" --filename="$file" --rw="$rw" \
					--ioengine=io_uring --direct="$direct" --iodepth="$qd"
				bench_plot_point qd "4 KiB $rw, one client ($SPLIT_TITLE)" "io_uring $label" "$qd" "$F_IOPS"
			done
		done
	done
fi
stop_daemon
# same CPU: the daemon and the client share CPU A
start_daemon "$A"
perf S1 "$A" tmpfs0 randread 1
row "tmpfs, same CPU" randread 1 1 "$BASE_SHM_QD1_IOPS" "$BASE_SHM_QD1_P50_US" "$BASE_SHM_QD1_P99_US" S1 "$BASE_SHM_QD1_CLAT_P50_US"
stop_daemon
# same CPU, both sides sleeping at once (nvlendd --spin-us 0, nvlend-perf
# --spin_us=0): the placement of fio's own baseline, one CPU, no spinning
start_daemon "$A" 0
PERF_EXTRA=--spin_us=0
perf Z1 "$A" disk0 randread 1
row "disk, same CPU, sleeping" randread 1 1 "$BASE_DISK_QD1_IOPS" "$BASE_DISK_QD1_P50_US" "$BASE_DISK_QD1_P99_US" Z1 "$BASE_DISK_QD1_CLAT_P50_US"
perf Y1 "$A" ram0 randread 1
row "RAM bdev, same CPU, sleeping" randread 1 1 "$BASE_SHM_QD1_IOPS" "$BASE_SHM_QD1_P50_US" "$BASE_SHM_QD1_P99_US" Y1 "$BASE_SHM_QD1_CLAT_P50_US"
PERF_EXTRA=
stop_daemon
echo
table_print
echo
bench_print_placement
echo "  (rows \"same CPU\": nvlendd and nvlend-perf both on CPU $A; \"sleeping\": nvlendd --spin-us 0, nvlend-perf --spin_us=0)"
echo "baselines: fio io_uring on the same backing in this run (tmpfs: buffered; disk: O_DIRECT)."
echo "           latencies are end to end on both sides: fio's total latency (lat, issue to"
echo "           completion) and nvlend-perf's (before nvl_read/nvl_write to the callback);"
echo "           \"added p50\" = shm p50 - fio lat p50. fio's clat, printed in brackets, starts"
echo "           after io_uring_enter has returned, so it leaves out the submission."
echo "           plain pread on tmpfs QD1 p50: ${BASE_SHM_PSYNC_QD1_P50_US} us (what the inline file bdev does)"
bench_write_results "$BENCH_RESULTS/shm.env"
bench_plot_render shm
