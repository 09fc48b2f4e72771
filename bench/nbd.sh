#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# NBD benchmark (not a test): one client, fio's nbd engine (libnbd), 4 KiB
# random read and write at QD1 and QD32, against
#   nvlend ram       nvlendd's export of a RAM bdev
#   nbdkit memory    nbdkit's memory plugin
#   nvlend file      nvlendd's export of a file on /dev/shm
#   nbdkit file      nbdkit's file plugin on the same file
#   qemu-nbd         qemu-nbd on the same file
# all in one run, every process pinned with taskset; prints the placement,
# IOPS, mean latency, and each nvlend row's ratio to its nbdkit peer.
#
#   bench/nbd.sh [BUILD_DIR]
#   PLACEMENT=same|split  same: server and fio on CPU $CPU_A (default);
#                         split: server on $CPU_B, fio on $CPU_A
#   RUNTIME=5 RAMP=1 SIZE=256M CPU_A=0 CPU_B=1 SPIN_US=<nvlendd --spin-us>
#   HOLD_AB=1             also measure nvlend with --no-read-hold ("nohold" rows;
#                         0 skips them): the read hold's effect in the same run
# Numbers on a shared machine are provisional: compare ratios, not absolutes.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$TOP/build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
PLACEMENT=${PLACEMENT:-same}
RUNTIME=${RUNTIME:-5}
RAMP=${RAMP:-1}
SIZE=${SIZE:-256M}
HOLD_AB=${HOLD_AB:-1}
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

free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 30000))
		ss -ltnH "sport = :$p" 2>/dev/null | grep -q . || { echo $p; return; }
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
stop_server() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

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

declare -A IOPS LAT
ROWS=()
measure() { # NAME URI
	local name=$1 uri=$2 rw qd r
	for rw in randread randwrite; do
		for qd in 1 32; do
			r=$(run_fio "$uri" "$rw" "$qd")
			IOPS["$name/$rw/$qd"]=${r% *}
			LAT["$name/$rw/$qd"]=${r#* }
		done
	done
	ROWS+=("$name")
}

echo "placement: servers pinned to CPU $SRV_CPU, fio (nbd engine) pinned to CPU $CLI_CPU" \
     "($PLACEMENT); nvlendd --spin-us $SPIN_US; ${RUNTIME}s per point after ${RAMP}s ramp"

# ---- nvlendd: ram and file exports ------------------------------------------------
port=$(free_port)
taskset -c "$SRV_CPU" "$BUILD/bin/nvlendd" -s "$W/nvl.sock" --cores "$SRV_CPU" \
	--spin-us "$SPIN_US" >"$W/nvlendd.log" 2>&1 &
pid=$!; PIDS+=($pid)
for _ in $(seq 1 100); do "$BUILD/bin/nvlend" -s "$W/nvl.sock" status >/dev/null 2>&1 && break; sleep 0.05; done
N() { "$BUILD/bin/nvlend" -s "$W/nvl.sock" "$@" >/dev/null; }
N bdev create ram r0 "$SIZE" && N bdev create file f0 "$SHM" && N nbd start --port "$port" &&
	N nbd export add ram r0 && N nbd export add file f0 || { cat "$W/nvlendd.log"; exit 1; }
wait_port "$port" || exit 1
measure "nvlend ram" "nbd://127.0.0.1:$port/ram"
measure "nvlend file" "nbd://127.0.0.1:$port/file"
HELD=$("$BUILD/bin/nvlend" -s "$W/nvl.sock" --json nbd export list | $PY -c '
import json, sys
print(", ".join("%s %d of %d requests" % (e["name"], e["stats"]["held_reads"],
      e["stats"]["read_ops"] + e["stats"]["write_ops"]) for e in json.load(sys.stdin)))')
if [ "$HOLD_AB" = 1 ]; then
	# the same daemon and exports with the read hold off (docs/nbd.md, "Read hold")
	N nbd stop && N nbd start --port "$port" --no-read-hold || { cat "$W/nvlendd.log"; exit 1; }
	wait_port "$port" || exit 1
	measure "nvlend ram nohold" "nbd://127.0.0.1:$port/ram"
	measure "nvlend file nohold" "nbd://127.0.0.1:$port/file"
fi
stop_server "$pid"

# ---- nbdkit memory / file ----------------------------------------------------------------
port=$(free_port)
taskset -c "$SRV_CPU" nbdkit -f -i 127.0.0.1 -p "$port" memory "$SIZE" >"$W/nbdkit.log" 2>&1 &
pid=$!; PIDS+=($pid); wait_port "$port" || exit 1
measure "nbdkit memory" "nbd://127.0.0.1:$port/"
stop_server "$pid"
port=$(free_port)
taskset -c "$SRV_CPU" nbdkit -f -i 127.0.0.1 -p "$port" file "$SHM" >"$W/nbdkit.log" 2>&1 &
pid=$!; PIDS+=($pid); wait_port "$port" || exit 1
measure "nbdkit file" "nbd://127.0.0.1:$port/"
stop_server "$pid"

# ---- qemu-nbd ------------------------------------------------------------------------------
port=$(free_port)
taskset -c "$SRV_CPU" qemu-nbd -f raw -t -b 127.0.0.1 -p "$port" "$SHM" >"$W/qemu-nbd.log" 2>&1 &
pid=$!; PIDS+=($pid); wait_port "$port" || exit 1
measure "qemu-nbd" "nbd://127.0.0.1:$port/"
stop_server "$pid"

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
		for qd in 1 32; do
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
