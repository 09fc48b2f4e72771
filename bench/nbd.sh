#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# NBD benchmark (not a test): one client, fio's nbd engine (libnbd), 4 KiB
# random read and write at QD1 and QD32, against
#   nvlend ram       nvlendd's export of a RAM bdev
#   nbdkit memory    nbdkit's memory plugin
#   nvlend file      nvlendd's export of a file on /dev/shm
#   nbdkit file      nbdkit's file plugin on the same file
#   qemu-nbd         qemu-nbd on the same file
#   nvlend * nohold  a second nvlendd with the read hold off (HOLD_AB=1)
# all in one run, every process pinned with taskset; prints the placement,
# the reads the read hold held, median IOPS and mean latency, and each nvlend
# row's ratio to its nbdkit peer.
#
#   bench/nbd.sh [BUILD_DIR]
#   PLACEMENT=same|split  same: server and fio on CPU $CPU_A (default);
#                         split: server on $CPU_B, fio on $CPU_A
#   RUNTIME=4 RAMP=1 ROUNDS=3 SIZE=256M CPU_A=0 CPU_B=1 SPIN_US=<nvlendd --spin-us>
#                         every point is run on every server in turn, ROUNDS
#                         times; the table shows medians
#   HOLD_AB=1             also measure nvlend with --no-read-hold ("nohold" rows;
#                         0 skips them): the read hold's effect in the same run
#   QDS="1 32"            queue depths measured
#   BACKING=all|ram|file  only the RAM rows (nvlend ram, nbdkit memory) or only
#                         the file rows (nvlend file, nbdkit file, qemu-nbd)
#   --plot                also measure QDS="1 2 4 8 16 32" (unless QDS is set) and
#                         write PNG charts (IOPS vs queue depth per workload, QD1
#                         latency per server) to bench/results/plots/
# Numbers on a shared machine are provisional: compare ratios, not absolutes.
set -u
source "$(dirname "$0")/common.sh"
bench_plot_args "$@"
set -- "${BENCH_ARGS[@]}"
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$TOP/build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
PLACEMENT=${PLACEMENT:-same}
RUNTIME=${RUNTIME:-4}
ROUNDS=${ROUNDS:-3}
RAMP=${RAMP:-1}
SIZE=${SIZE:-256M}
HOLD_AB=${HOLD_AB:-1}
QDS=${QDS:-${BENCH_QDS:-1 32}}
BACKING=${BACKING:-all}
case "$BACKING" in all | ram | file) ;; *) echo "bench/nbd.sh: BACKING is all, ram or file" >&2; exit 2 ;; esac
CPU_A=${CPU_A:-0}
CPU_B=${CPU_B:-1}
PY=/usr/bin/python3

for c in fio nbdkit qemu-nbd taskset "$BUILD/bin/nvlendd" "$BUILD/bin/nvlend"; do
	command -v "$c" >/dev/null 2>&1 || { echo "bench/nbd.sh: needs $c" >&2; exit 1; }
done
fio --enghelp=nbd >/dev/null 2>&1 || { echo "bench/nbd.sh: fio lacks the nbd engine" >&2; exit 1; }

if [ "$PLACEMENT" = split ]; then
	SRV_CPU=$CPU_B
else
	SRV_CPU=$CPU_A
fi
CLI_CPU=$CPU_A
# same CPU: a spinning server would take the client's CPU; let it sleep at once
if [ -z "${SPIN_US:-}" ]; then
	[ "$PLACEMENT" = split ] && SPIN_US=200 || SPIN_US=0
fi

W=$(mktemp -d /tmp/nvlend-bench-nbd.XXXXXX)
SHM=/dev/shm/nvlend-bench-nbd-$$.img
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$W" "$SHM"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# a port no socket uses (listening or connected: a busy machine has thousands
# of connections), below the kernel's ephemeral range, which connections
# take their local ports from
free_port() {
	local p lo
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
	[ "$lo" -gt 22000 ] || lo=50000
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % (lo - 20000)))
		[ -z "$(ss -tanH "sport = :$p" 2>/dev/null)" ] && { echo $p; return; }
	done
	return 1
}
wait_port() {
	for _ in $(seq 1 100); do
		ss -ltnH "sport = :$1" 2>/dev/null | grep -q . && return 0
		sleep 0.05
	done
	echo "bench/nbd.sh: nothing listens on port $1" >&2
	return 1
}

truncate -s "$SIZE" "$SHM"
# first touch is slow here (MACHINE-NOTES.md): populate the file once
dd if=/dev/zero of="$SHM" bs=1M count=$(($(stat -c %s "$SHM") >> 20)) conv=notrunc status=none

# run_fio URI RW QD -> "IOPS LAT_US"
run_fio() {
	local out=$W/fio.json
	taskset -c "$CLI_CPU" fio --name=b --ioengine=nbd --uri="$1" --rw="$2" --bs=4k \
		--iodepth="$3" --size="$SIZE" --time_based --runtime="$RUNTIME" --ramp_time="$RAMP" \
		--randrepeat=0 --norandommap --output-format=json >"$out" 2>"$W/fio.err" || {
		echo "0 0"; return; }
	$PY - "$out" "$2" <<'EOF'
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])["jobs"][0]   # the nbd engine prints a line first
d = j["read"] if "read" in sys.argv[2] else j["write"]
print(f'{d["iops"]:.0f} {d["lat_ns"]["mean"] / 1000:.1f}')
EOF
}

declare -A URI IOPS LAT
ROWS=()
add_row() { # NAME URI, unless BACKING leaves it out
	case "$BACKING/$1" in
	ram/*file* | ram/qemu-nbd | file/*ram* | "file/nbdkit memory") return 0 ;;
	esac
	ROWS+=("$1")
	URI["$1"]=$2
}
start_nvlendd() { # SOCKET [nbd start options]; sets port
	local sock=$1 try
	shift
	taskset -c "$SRV_CPU" "$BUILD/bin/nvlendd" -s "$sock" --cores "$SRV_CPU" \
		--spin-us "$SPIN_US" >>"$W/nvlendd.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 1 100); do "$BUILD/bin/nvlend" -s "$sock" status >/dev/null 2>&1 && break; sleep 0.05; done
	N() { "$BUILD/bin/nvlend" -s "$sock" "$@" >/dev/null; }
	N bdev create ram r0 "$SIZE" && N bdev create file f0 "$SHM" || { cat "$W/nvlendd.log"; exit 1; }
	# a free port can be taken by another program before we listen: try another
	for try in 1 2 3 4 5; do
		port=$(free_port) && N nbd start --port "$port" "$@" 2>>"$W/nvlendd.log" && break
		[ $try = 5 ] && { cat "$W/nvlendd.log"; exit 1; }
	done
	N nbd export add ram r0 && N nbd export add file f0 || { cat "$W/nvlendd.log"; exit 1; }
	wait_port "$port" || exit 1
}

echo "placement: servers pinned to CPU $SRV_CPU, fio (nbd engine) pinned to CPU $CLI_CPU" \
     "($PLACEMENT); nvlendd --spin-us $SPIN_US; ${RUNTIME}s per point after ${RAMP}s ramp;" \
     "median of $ROUNDS rounds, servers taking turns at each point"

# ---- every server up at once (idle ones sleep), so each point is measured
# back to back on all of them: this VM's speed drifts by tens of percent
# over minutes, and ratios of points taken minutes apart mislead -----------------
start_nvlendd "$W/nvl.sock"
add_row "nvlend ram" "nbd://127.0.0.1:$port/ram"
add_row "nvlend file" "nbd://127.0.0.1:$port/file"
if [ "$HOLD_AB" = 1 ]; then
	# a second daemon with the read hold off (docs/nbd.md, "Read hold")
	start_nvlendd "$W/nvl2.sock" --no-read-hold
	add_row "nvlend ram nohold" "nbd://127.0.0.1:$port/ram"
	add_row "nvlend file nohold" "nbd://127.0.0.1:$port/file"
fi
port=$(free_port)
taskset -c "$SRV_CPU" nbdkit -f -i 127.0.0.1 -p "$port" memory "$SIZE" >"$W/nbdkit-m.log" 2>&1 &
PIDS+=($!); wait_port "$port" || exit 1
add_row "nbdkit memory" "nbd://127.0.0.1:$port/"
port=$(free_port)
taskset -c "$SRV_CPU" nbdkit -f -i 127.0.0.1 -p "$port" file "$SHM" >"$W/nbdkit-f.log" 2>&1 &
PIDS+=($!); wait_port "$port" || exit 1
add_row "nbdkit file" "nbd://127.0.0.1:$port/"
port=$(free_port)
taskset -c "$SRV_CPU" qemu-nbd -f raw -t -b 127.0.0.1 -p "$port" "$SHM" >"$W/qemu-nbd.log" 2>&1 &
PIDS+=($!); wait_port "$port" || exit 1
add_row "qemu-nbd" "nbd://127.0.0.1:$port/"

for round in $(seq 1 "$ROUNDS"); do
	for rw in randread randwrite; do
		for qd in $QDS; do
			for name in "${ROWS[@]}"; do
				r=$(run_fio "${URI[$name]}" "$rw" "$qd")
				IOPS["$name/$rw/$qd"]+="${r% *} "
				LAT["$name/$rw/$qd"]+="${r#* } "
			done
		done
	done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print NR ? v[int((NR+1)/2)] : 0}'; }
for k in "${!IOPS[@]}"; do
	IOPS[$k]=$(printf '%s' "${IOPS[$k]}" | median)
	LAT[$k]=$(printf '%s' "${LAT[$k]}" | median)
done
HELD=$("$BUILD/bin/nvlend" -s "$W/nvl.sock" --json nbd export list | $PY -c '
import json, sys
print(", ".join("%s %d of %d requests" % (e["name"], e["stats"]["held_reads"],
      e["stats"]["read_ops"] + e["stats"]["write_ops"]) for e in json.load(sys.stdin)))')

# ---- report ------------------------------------------------------------------------------------
peer_of() {
	case "$1" in
	"nvlend ram"*) echo "nbdkit memory" ;;
	"nvlend file"*) echo "nbdkit file" ;;
	*) echo "" ;;
	esac
}
echo "reads held by the read hold (nvlend rows): $HELD"
printf '\n%-18s %-10s %4s %10s %10s   %s\n' server workload QD IOPS "lat(us)" "vs peer"
for name in "${ROWS[@]}"; do
	for rw in randread randwrite; do
		for qd in $QDS; do
			k="$name/$rw/$qd"
			peer=$(peer_of "$name")
			ratio=""
			if [ -n "$peer" ] && [ "${IOPS[$peer/$rw/$qd]:-0}" != 0 ]; then
				ratio=$(awk "BEGIN{printf \"%.2fx %s\", ${IOPS[$k]} / ${IOPS[$peer/$rw/$qd]}, \"$peer\"}")
			fi
			if [ "$name" = "qemu-nbd" ] && [ "${IOPS[$k]}" != 0 ]; then
				ratio=$(awk "BEGIN{printf \"nvlend file is %.2fx\", ${IOPS[nvlend file/$rw/$qd]} / ${IOPS[$k]}}")
			fi
			printf '%-18s %-10s %4s %10s %10s   %s\n' "$name" "$rw" "$qd" "${IOPS[$k]}" \
				"${LAT[$k]}" "$ratio"
		done
	done
done
if [ "$PLACEMENT" = split ]; then
	place="split: servers on CPU $SRV_CPU, fio on CPU $CLI_CPU"
else
	place="same: servers and fio on CPU $CLI_CPU"
fi
for name in "${ROWS[@]}"; do
	for rw in randread randwrite; do
		for qd in $QDS; do
			bench_plot_point qd "NBD 4 KiB $rw, fio nbd engine ($place)" "$name" "$qd" \
				"${IOPS[$name/$rw/$qd]}"
		done
		bench_plot_point lat "NBD 4 KiB QD1 mean latency ($place)" "$name" "$rw" \
			"${LAT[$name/$rw/1]:--}"
	done
done
bench_plot_render "nbd-$PLACEMENT"
