#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The machine's own limits, which every later benchmark is compared with in
# the same run: fio with io_uring, 4 KiB random reads,
#   - on the backing file later benchmarks use (root disk, O_DIRECT),
#   - on a file in /dev/shm (tmpfs: the memory path, buffered),
# at QD1 (total latency p50/p99: fio's lat, issue to completion, which is
# what nvlend-perf measures too; clat printed alongside) and QD32 (IOPS), fio
# pinned to one CPU;
# plus plain pread on tmpfs at QD1 (what an inline file bdev does there).
#
#   bench/baseline.sh                      table on stdout, numbers in
#                                          bench/results/baseline.env ($BENCH_OUT)
#   BENCH_RUNTIME=30 bench/baseline.sh     longer runs (default 10 s + 2 s ramp)
#   bench/baseline.sh --plot               also sweep queue depths (BENCH_QDS, default
#                                          "1 2 4 8 16 32") on both files and write PNG
#                                          charts to bench/results/plots/ (BENCH_PLOT_DIR):
#                                          IOPS vs queue depth (disk, tmpfs) and QD1
#                                          latency p50/p99/p99.9 (disk, tmpfs io_uring,
#                                          tmpfs psync), titled with fio's CPU
#
# Environment: BENCH_DISK_FILE (default /var/tmp/nvlend-bench/disk.img, 1 GiB,
# written once with incompressible data and kept for later benchmarks),
# BENCH_DISK_SIZE, BENCH_SHM_SIZE (default 1G, removed at exit), BENCH_CPU_A
# (CPU fio is pinned to, default 0), BENCH_OUT.
# Later benchmarks: source bench/common.sh; bench_load_baseline; then use
# BASE_DISK_QD1_P50_US, BASE_SHM_QD32_IOPS, ... (see the file for all keys).
source "$(dirname "$0")/common.sh"
bench_plot_args "$@"
bench_requires fio taskset column

DISK_FILE=${BENCH_DISK_FILE:-/var/tmp/nvlend-bench/disk.img}
DISK_SIZE=${BENCH_DISK_SIZE:-1G}
SHM_SIZE=${BENCH_SHM_SIZE:-1G}
SHM_FILE=/dev/shm/nvlend-bench-baseline-$$.img
OUT=${BENCH_OUT:-$BENCH_RESULTS/baseline.env}
CPU=$BENCH_CPU_A

cleanup() { rm -f "$SHM_FILE"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== nvlend baseline: fio io_uring 4 KiB random read"
bench_machine_info

# The backing file: written once (not sparse, not zeroes, so reads hit the
# disk path), reused by later runs and benchmarks.
mkdir -p "$(dirname "$DISK_FILE")"
size_bytes=$(numfmt --from=iec "$DISK_SIZE")
if [ ! -f "$DISK_FILE" ] || [ "$(stat -c %s "$DISK_FILE")" != "$size_bytes" ] ||
	[ ! -f "$DISK_FILE.written" ]; then
	echo "writing the backing file $DISK_FILE ($DISK_SIZE) once..."
	rm -f "$DISK_FILE.written"
	fio --name=prewrite --filename="$DISK_FILE" --size="$DISK_SIZE" --rw=write --bs=1M \
		--ioengine=io_uring --direct=1 --iodepth=8 --refill_buffers \
		--buffer_compress_percentage=0 --output=/dev/null || bench_die "cannot write $DISK_FILE"
	touch "$DISK_FILE.written"
fi
disk_fs=$(df --output=fstype "$DISK_FILE" | tail -1)
echo "disk file: $DISK_FILE ($DISK_SIZE on $disk_fs, O_DIRECT)"
# tmpfs: filled so reads hit allocated pages, not holes
truncate -s 0 "$SHM_FILE"
fio --name=shmfill --filename="$SHM_FILE" --size="$SHM_SIZE" --rw=write --bs=1M \
	--ioengine=psync --refill_buffers --output=/dev/null || bench_die "cannot write $SHM_FILE"
echo "tmpfs file: $SHM_FILE ($SHM_SIZE, buffered; removed at exit)"

common=(--name=baseline --rw=randread --bs=4k --time_based --runtime="$BENCH_RUNTIME"
	--ramp_time="$BENCH_RAMP" --norandommap --randrepeat=0 --numjobs=1 --thread)

# run KEY LABEL FILE SIZE ENGINE QD DIRECT
table_start "target" "engine" "QD" "IOPS" "p50 us" "p99 us" "p99.9 us" "clat p50/p99 us" "MiB/s"
run() {
	local key=$1 label=$2 file=$3 size=$4 engine=$5 qd=$6 direct=$7
	run_fio_json R pin "$CPU" fio "${common[@]}" --filename="$file" --size="$size" \
		--ioengine="$engine" --iodepth="$qd" --direct="$direct"
	table_row "$label" "$engine" "$qd" "$R_IOPS" "$R_P50_US" "$R_P99_US" "$R_P999_US" \
		"$R_CLAT_P50_US/$R_CLAT_P99_US" "$R_MIBS"
	bench_result "BASE_${key}_IOPS" "$R_IOPS"
	bench_result "BASE_${key}_P50_US" "$R_P50_US"
	bench_result "BASE_${key}_P99_US" "$R_P99_US"
	bench_result "BASE_${key}_MEAN_US" "$R_MEAN_US"
	bench_result "BASE_${key}_CLAT_P50_US" "$R_CLAT_P50_US"
	PLOT_TITLE="fio io_uring 4 KiB random read, fio on CPU $CPU"
	case "$key" in
	*_QD1 | SHM_PSYNC_QD1)
		local s="$label $engine"
		bench_plot_point lat "4 KiB random read QD1 latency, fio on CPU $CPU" "$s" p50 "$R_P50_US"
		bench_plot_point lat "4 KiB random read QD1 latency, fio on CPU $CPU" "$s" p99 "$R_P99_US"
		bench_plot_point lat "4 KiB random read QD1 latency, fio on CPU $CPU" "$s" p99.9 "$R_P999_US"
		;;
	esac
	[ "$engine" = io_uring ] && [[ " ${BENCH_QDS:-} " = *" $qd "* ]] &&
		bench_plot_point qd "$PLOT_TITLE" "$label" "$qd" "$R_IOPS"
	return 0
}
bench_placement "fio" "$CPU"
echo "running: 5 fio jobs x $((BENCH_RUNTIME + BENCH_RAMP)) s, fio on CPU $CPU"
run DISK_QD1 "disk file (O_DIRECT)" "$DISK_FILE" "$DISK_SIZE" io_uring 1 1
run DISK_QD32 "disk file (O_DIRECT)" "$DISK_FILE" "$DISK_SIZE" io_uring 32 1
run SHM_QD1 "tmpfs file" "$SHM_FILE" "$SHM_SIZE" io_uring 1 0
run SHM_QD32 "tmpfs file" "$SHM_FILE" "$SHM_SIZE" io_uring 32 0
run SHM_PSYNC_QD1 "tmpfs file" "$SHM_FILE" "$SHM_SIZE" psync 1 0
if [ $BENCH_PLOT = 1 ]; then
	# the queue depths the table has not measured yet; only for the charts
	for qd in $BENCH_QDS; do
		[ "$qd" = 1 ] || [ "$qd" = 32 ] && continue
		for spec in "disk file (O_DIRECT)|$DISK_FILE|$DISK_SIZE|1" "tmpfs file|$SHM_FILE|$SHM_SIZE|0"; do
			IFS='|' read -r label file size direct <<<"$spec"
			run_fio_json R pin "$CPU" fio "${common[@]}" --filename="$file" --size="$size" \
				--ioengine=io_uring --iodepth="$qd" --direct="$direct"
			bench_plot_point qd "$PLOT_TITLE" "$label" "$qd" "$R_IOPS"
		done
	done
fi
echo
table_print
echo
bench_print_placement
bench_result BASE_DISK_FILE "$DISK_FILE"
bench_result BASE_DISK_FS "$disk_fs"
bench_result BASE_FIO_CPU "$CPU"
bench_result BASE_RUNTIME_S "$BENCH_RUNTIME"
bench_write_results "$OUT"
bench_plot_render baseline
