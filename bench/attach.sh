#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Benchmark: the attached block device (nvlend attach --via fuse: loop device
# -> FUSE file -> libnvlend -> shm -> nvlendd -> file bdev) against the same
# file read and written directly, both with fio's io_uring engine and
# O_DIRECT. The file lives on /dev/shm so that the medium is not what is
# measured (note: tmpfs takes O_DIRECT but acts buffered).
#
#   bench/attach.sh [BUILD_DIR] [--plot]   env: RUNTIME=5 SIZE_MIB=256 QUEUES=2
#   --plot   also sweep 4 KiB random read over queue depths (BENCH_QDS, default
#            "1 2 4 8 16 32") on the attached device and on the file directly,
#            and write PNG charts to bench/results/plots/ (BENCH_PLOT_DIR): IOPS
#            vs queue depth, QD1 clat p50/p99, 128 KiB sequential MiB/s; each
#            titled with the placement
#
# Placement (2 vCPUs): nvlendd pinned to CPU 1, the attach process to CPU 0,
# fio to CPU 0; kernel threads (loop, FUSE) are not pinned. Numbers are
# provisional on a shared machine: compare the ratio column.
set -uo pipefail
source "$(dirname "$0")/common.sh"
bench_plot_args "$@"
set -- "${BENCH_ARGS[@]}"
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
BIN=$BUILD/bin
RUNTIME=${RUNTIME:-5}
SIZE_MIB=${SIZE_MIB:-256}
QUEUES=${QUEUES:-2}
[ "$(id -u)" = 0 ] || { echo "needs root (loop devices, FUSE)" >&2; exit 1; }
command -v fio >/dev/null || { echo "needs fio" >&2; exit 1; }

W=$(mktemp -d /tmp/nvlend-bench-attach.XXXXXX)
IMG=/dev/shm/nvlend-bench-attach-$$.img
export NVLEND_SOCKET=$W/nvlend.sock NVLEND_ATTACH_DIR=$W/attach
dpid=
cleanup() {
	"$BIN/nvlend" detach --force --timeout 10 bench >/dev/null 2>&1
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	rm -rf "$W" "$IMG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dd if=/dev/urandom of="$IMG" bs=1M count="$SIZE_MIB" status=none
NQN=nqn.2026-01.io.nvlend.bench:attach
taskset -c 1 "$BIN/nvlendd" -s "$NVLEND_SOCKET" >"$W/nvlendd.log" 2>&1 &
dpid=$!
for _ in $(seq 1 100); do "$BIN/nvlend" -t 1 status >/dev/null 2>&1 && break; sleep 0.05; done
"$BIN/nvlend" bdev create file f0 "$IMG" >/dev/null || exit 1
"$BIN/nvlend" rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true}" >/dev/null
"$BIN/nvlend" rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"f0\"}}" >/dev/null
"$BIN/nvlend" rpc nvmf_subsystem_add_listener \
	"{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"$W/shm.sock\"}}" >/dev/null
dev=$(taskset -c 0 "$BIN/nvlend" attach "nvme+shm://$W/shm.sock?nqn=$NQN" --via fuse --name bench \
	--queues "$QUEUES") || exit 1
apid=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' \
	"$NVLEND_ATTACH_DIR/bench.json")
echo "placement: nvlendd pid $dpid on CPU $(taskset -pc "$dpid" | sed 's/.*: //'); attach process pid $apid" \
	"(fuse, $QUEUES workers) on CPU $(taskset -pc "$apid" | sed 's/.*: //'); fio on CPU 0;" \
	"loop/FUSE kernel work unpinned"
echo "device: $dev -> $(cat /sys/block/$(basename "$dev")/loop/backing_file) (dio=$(cat /sys/block/$(basename "$dev")/loop/dio)); file: $IMG"
PLOT_PLACE="nvlendd CPU 1, attach and fio CPU 0"
echo "fio: ioengine=io_uring direct=1 runtime=${RUNTIME}s ramp=1s size=${SIZE_MIB}M"
echo

# run NAME TARGET RW BS QD -> "iops bw_mib p50_us p99_us"
run() {
	taskset -c 0 fio --name="$1" --filename="$2" --rw="$3" --bs="$4" --iodepth="$5" \
		--ioengine=io_uring --direct=1 --time_based --runtime="$RUNTIME" --ramp_time=1 \
		--size="${SIZE_MIB}M" --randrepeat=0 --norandommap --output-format=json 2>/dev/null |
		/usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
d = j["read"] if j["read"]["io_bytes"] else j["write"]
p = d["clat_ns"]["percentile"]
print("%d %.1f %.1f %.1f" % (d["iops"], d["bw_bytes"] / 1048576.0, p["50.000000"] / 1000.0, p["99.000000"] / 1000.0))'
}

printf '%-22s | %-30s | %-30s | %s\n' "workload" "file directly: IOPS MiB/s p50/p99us" \
	"attached $dev: IOPS MiB/s p50/p99" "attached/direct IOPS"
for w in "randread 4k 1" "randread 4k 32" "randwrite 4k 32" "read 128k 8" "write 128k 8"; do
	set -- $w
	a=$(run direct "$IMG" "$1" "$2" "$3")
	b=$(run attached "$dev" "$1" "$2" "$3")
	read -r ai ab ap5 ap9 <<<"$a"
	read -r bi bb bp5 bp9 <<<"$b"
	printf '%-22s | %8s %8s %6s/%-6s | %8s %8s %6s/%-6s | %s\n' "$1 $2 QD$3" "$ai" "$ab" "$ap5" "$ap9" \
		"$bi" "$bb" "$bp5" "$bp9" "$(awk "BEGIN{printf \"%.2f\", $bi / ($ai ? $ai : 1)}")"
	case "$1 $3" in
	"randread 1")
		t="4 KiB random read QD1 clat ($PLOT_PLACE)"
		bench_plot_point lat "$t" "file directly" p50 "$ap5"
		bench_plot_point lat "$t" "file directly" p99 "$ap9"
		bench_plot_point lat "$t" "attached (fuse)" p50 "$bp5"
		bench_plot_point lat "$t" "attached (fuse)" p99 "$bp9"
		;;
	"read 8" | "write 8")
		bench_plot_point bar "128 KiB sequential QD8 ($PLOT_PLACE) (MiB/s)" "file directly" "$1" "$ab"
		bench_plot_point bar "128 KiB sequential QD8 ($PLOT_PLACE) (MiB/s)" "attached (fuse)" "$1" "$bb"
		;;
	esac
	if [ "$1" = randread ] && [[ " ${BENCH_QDS:-} " = *" $3 "* ]]; then
		bench_plot_point qd "4 KiB random read ($PLOT_PLACE)" "file directly" "$3" "$ai"
		bench_plot_point qd "4 KiB random read ($PLOT_PLACE)" "attached (fuse)" "$3" "$bi"
	fi
done
if [ $BENCH_PLOT = 1 ]; then
	for qd in $BENCH_QDS; do
		[ "$qd" = 1 ] || [ "$qd" = 32 ] && continue
		read -r ai _ <<<"$(run direct "$IMG" randread 4k "$qd")"
		read -r bi _ <<<"$(run attached "$dev" randread 4k "$qd")"
		bench_plot_point qd "4 KiB random read ($PLOT_PLACE)" "file directly" "$qd" "$ai"
		bench_plot_point qd "4 KiB random read ($PLOT_PLACE)" "attached (fuse)" "$qd" "$bi"
	done
fi
bench_plot_render attach
