# SPDX-License-Identifier: BSD-3-Clause
# Shared helpers for bench/*.sh. Source it: source "$(dirname "$0")/common.sh"
#
# Benchmarks are not tests: they pin what they run (MACHINE-NOTES.md: a
# cross-CPU wake-up costs ~34 us, placement changes results up to 7x), print
# where everything ran, and compare with baselines measured in the same run
# (bench/baseline.sh writes them as KEY=VALUE lines that bench_load_baseline
# sources). The machines are shared: numbers are provisional, quote ratios.
#
#   bench_machine_info               kernel, CPUs, load: print first
#   pin CPU CMD...                   run CMD pinned to CPU (taskset -c)
#   bench_placement WHAT CPU         record/print "WHAT on CPU n" (or "unpinned")
#   run_fio_json PREFIX CMD...       run CMD (a fio job, maybe behind pin CPU), set
#                                    PREFIX_IOPS, PREFIX_P50_US, PREFIX_P99_US,
#                                    PREFIX_P999_US, PREFIX_MEAN_US, PREFIX_MIBS from
#                                    the total latency (lat) of its main side, and
#                                    PREFIX_CLAT_P50_US, PREFIX_CLAT_P99_US from clat
#   bench_result KEY VALUE           remember KEY=VALUE for the results file
#   bench_write_results FILE         write the remembered KEY=VALUE lines (sourceable)
#   bench_load_baseline [FILE]       source baseline numbers (runs baseline.sh if missing)
#   table_start COL...; table_row V...; table_print   aligned result tables
#   ratio A B                        A/B with two decimals ("-" if either is missing)
set -u
set -o pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$BENCH_DIR/.." && pwd)
BUILD=${NVLEND_BUILD:-$TOP/build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
BENCH_RESULTS=${BENCH_RESULTS:-$TOP/bench/results}
BENCH_RUNTIME=${BENCH_RUNTIME:-10}     # seconds measured per fio run
BENCH_RAMP=${BENCH_RAMP:-2}            # seconds of warm-up before measuring
# The CPUs benchmarks pin to: the load generator on BENCH_CPU_A, a second
# process (daemon, server) on BENCH_CPU_B for "split" placement.
BENCH_CPU_A=${BENCH_CPU_A:-0}
BENCH_CPU_B=${BENCH_CPU_B:-1}
PY=/usr/bin/python3

_bench_kv=()
_bench_placement=()

bench_die() { echo "bench: $*" >&2; exit 1; }

bench_requires() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || bench_die "needs '$c' (scripts/setup.sh installs it)"
	done
}

bench_machine_info() {
	local model
	model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
	echo "machine:   $(uname -r), $(nproc) CPUs ($model)"
	echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; shared machine: numbers are provisional)"
	echo "date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	bench_result BENCH_KERNEL "$(uname -r)"
	bench_result BENCH_NCPU "$(nproc)"
	bench_result BENCH_DATE "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}

# pin CPU CMD...: run CMD on one CPU
pin() {
	local cpu=$1
	shift
	taskset -c "$cpu" "$@"
}

# bench_placement WHAT CPU|-: remember where WHAT ran, for the placement lines
bench_placement() {
	local what=$1 cpu=$2 line
	if [ "$cpu" = - ]; then line="$what: unpinned"; else line="$what: CPU $cpu (taskset -c $cpu)"; fi
	_bench_placement+=("$line")
}

bench_print_placement() {
	local l
	echo "placement:"
	for l in "${_bench_placement[@]}"; do echo "  $l"; done
}

# run_fio_json PREFIX CMD...: run one fio job (CMD is the whole command, e.g.
# "pin 0 fio --name=x ..."; JSON output options are appended) and set
# PREFIX_IOPS, _P50_US, _P99_US, _P999_US, _MEAN_US, _MIBS and _CLAT_P50_US,
# _CLAT_P99_US.
# The latencies are fio's total latency (lat: from fio issuing the I/O to its
# completion), which is what an application waits for and what nvlend-perf
# and other end-to-end clients measure. fio's completion latency (clat) starts
# only when the submitting system call has returned: for io_uring, after
# io_uring_enter, which for O_DIRECT on a virtio disk includes the device
# notification (a VM exit, ~20 us on these machines) and for a tmpfs file the
# copy itself. clat is printed alongside for comparison with older results.
run_fio_json() {
	local prefix=$1 out vars
	shift
	out=$(mktemp)
	if ! "$@" --output-format=json --percentile_list=50:99:99.9 --lat_percentiles=1 \
		>"$out" 2>"$out.err"; then
		cat "$out.err" >&2
		rm -f "$out" "$out.err"
		bench_die "fio failed: $*"
	fi
	vars=$($PY - "$out" "$prefix" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
# fio may print notices before the JSON document
d = json.loads(text[text.index("{"):])
job = d["jobs"][0]
side = max(("read", "write"), key=lambda s: job[s]["io_bytes"])
r = job[side]
def us(kind, key):
    v = r[kind].get("percentile", {}).get(key)
    return "%.1f" % (v / 1000.0) if v is not None else "-"
p = sys.argv[2]
print("%s_IOPS=%d" % (p, round(r["iops"])))
print("%s_P50_US=%s" % (p, us("lat_ns", "50.000000")))
print("%s_P99_US=%s" % (p, us("lat_ns", "99.000000")))
print("%s_P999_US=%s" % (p, us("lat_ns", "99.900000")))
print("%s_MEAN_US=%.1f" % (p, r["lat_ns"]["mean"] / 1000.0))
print("%s_CLAT_P50_US=%s" % (p, us("clat_ns", "50.000000")))
print("%s_CLAT_P99_US=%s" % (p, us("clat_ns", "99.000000")))
print("%s_MIBS=%.1f" % (p, r["bw_bytes"] / 1048576.0))
PY
	) || { rm -f "$out" "$out.err"; bench_die "cannot parse the fio output of: $*"; }
	rm -f "$out" "$out.err"
	eval "$vars"
}

bench_result() { _bench_kv+=("$1=$(printf '%q' "$2")"); }

# bench_write_results FILE: KEY=VALUE lines a later benchmark can source
bench_write_results() {
	local f=$1 l
	mkdir -p "$(dirname "$f")"
	{
		echo "# written by $(basename "$0") on $(date -u +%Y-%m-%dT%H:%M:%SZ); provisional (shared machine)"
		for l in "${_bench_kv[@]}"; do echo "$l"; done
	} >"$f.tmp" && mv "$f.tmp" "$f"
	echo "results:   $f"
}

# bench_load_baseline [FILE]: source the baseline of this run, measuring it first if absent
bench_load_baseline() {
	local f=${1:-${BENCH_BASELINE:-$BENCH_RESULTS/baseline.env}}
	if [ ! -f "$f" ]; then
		echo "no baseline in $f: running bench/baseline.sh first" >&2
		BENCH_OUT=$f "$BENCH_DIR/baseline.sh" >&2 || bench_die "baseline failed"
	fi
	# shellcheck disable=SC1090
	source "$f"
}

# ratio A B: A/B, two decimals
ratio() {
	$PY -c 'import sys
try:
    a, b = float(sys.argv[1]), float(sys.argv[2])
    print("%.2f" % (a / b) if b else "-")
except ValueError:
    print("-")' "$1" "$2"
}

# Aligned tables: table_start "col" ...; table_row "v" ...; table_print
_table=()
table_start() { _table=("$(printf '%s\t' "$@")"); }
table_row() { _table+=("$(printf '%s\t' "$@")"); }
table_print() {
	local i
	{
		for i in "${!_table[@]}"; do
			printf '%s\n' "${_table[$i]%$'\t'}"
			[ "$i" = 0 ] && printf '%s\n' "${_table[0]%$'\t'}" | sed 's/[^\t]/-/g'
		done
	} | column -t -s $'\t' -o '  '
}

# ---- charts (--plot) -------------------------------------------------------------------------
# A benchmark given --plot also sweeps queue depths (BENCH_QDS) and writes PNG
# charts with bench/plot.py (gnuplot) into BENCH_PLOT_DIR (default
# bench/results/plots): IOPS vs queue depth and latency percentiles, every
# series measured in the same run.
#   bench_plot_args "$@"         sets BENCH_PLOT=1 if --plot is among the
#                                arguments and leaves the others in BENCH_ARGS;
#                                -h/--help prints the script's header (bench_usage)
#   bench_plot_point KIND TITLE SERIES X Y   (KIND qd: X = queue depth, Y = IOPS;
#                                lat: X = p50|p99|p99.9|mean, Y = microseconds)
#   bench_plot_render PREFIX     write the charts, print their paths
BENCH_PLOT=0
BENCH_PLOT_DIR=${BENCH_PLOT_DIR:-$BENCH_RESULTS/plots}
BENCH_ARGS=()
# bench_usage: the script's leading comment block (after the SPDX line) as help
bench_usage() {
	sed -n '2,/^[^#]/p' "$0" | sed -n '/^#/p' | grep -v SPDX-License | sed -E 's/^# ?//'
}
bench_plot_args() {
	local a
	BENCH_ARGS=()
	for a in "$@"; do
		case "$a" in
		--plot) BENCH_PLOT=1 ;;
		-h | --help) bench_usage; exit 0 ;;
		*) BENCH_ARGS+=("$a") ;;
		esac
	done
	if [ $BENCH_PLOT = 1 ]; then
		bench_requires gnuplot
		BENCH_QDS=${BENCH_QDS:-1 2 4 8 16 32}
		# beside the charts, not in /tmp: a run that dies before it draws leaves
		# its points where its results go (and a test's directory takes them away)
		mkdir -p "$BENCH_PLOT_DIR" || bench_die "cannot create $BENCH_PLOT_DIR"
		_bench_points=$(mktemp "$BENCH_PLOT_DIR/.points.XXXXXX") || bench_die "cannot write in $BENCH_PLOT_DIR"
	fi
}
bench_plot_point() {
	[ $BENCH_PLOT = 1 ] || return 0
	printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$_bench_points"
}
bench_plot_render() {
	[ $BENCH_PLOT = 1 ] || return 0
	echo "charts:"
	$PY "$BENCH_DIR/plot.py" "$_bench_points" "$BENCH_PLOT_DIR" "$1" | sed 's/^/  /'
	rm -f "$_bench_points"
}
