# SPDX-License-Identifier: BSD-3-Clause
# Shared shell helpers for functional tests. Source it first:
#
#   source "$(dirname "$0")/common.sh"
#   requires socat
#   start_nvlendd            # sets NVLEND_SOCKET, DAEMON_PID, DAEMON_LOG
#   nvlend bdev create ram r0 64M
#   ...                      # fail "message" on a wrong result
#   pass                     # (or just exit 0)
#
# Every test runs in its own scratch dir $T (removed at exit). Register
# cleanups with `on_exit CMD`; they run in reverse order even when the test
# fails or is killed. Exit 77 = skipped (print why first).
set -u
set -o pipefail

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOP=$(cd "$TESTS_DIR/.." && pwd)
BUILD=${NVLEND_BUILD:-$TOP/build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
BIN=$BUILD/bin
TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/nvlend-${TEST_NAME}.XXXXXX")
# a prefix for files a test puts in /dev/shm (backing files, ...), removed at exit
NVLEND_SHM_PREFIX="nvlt-$$-"
export NVLEND_SHM_PREFIX
export PATH="$BIN:$PATH"

_cleanups=()
on_exit() { _cleanups+=("$*"); }
_run_cleanups() {
	local rc=$? i
	set +e
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${_cleanups[$i]}" >/dev/null 2>&1
	done
	# files and directories (a brick's fast tier) a test made under its prefix
	rm -rf /dev/shm/"${NVLEND_SHM_PREFIX}"* 2>/dev/null
	if [ "${ALLOW_WORKER_RESTARTS:-0}" != 1 ] && [ -z "$_daemon_bad" ] &&
		grep -h "keeper: worker [0-9]* died" "$T"/nvlendd*.log 2>/dev/null >"$T/.restarts"; then
		_daemon_bad="a worker crashed and was restarted by the keeper: $(head -1 "$T/.restarts")"
	fi
	if [ -n "$_daemon_bad" ] && { [ $rc -eq 0 ] || [ $rc -eq 77 ]; }; then
		echo "[$TEST_NAME] FAIL: $_daemon_bad" >&2
		rc=1
	fi
	if [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ -n "${DAEMON_LOG:-}" ] && [ -f "$DAEMON_LOG" ]; then
		echo "---- last lines of the daemon log ($DAEMON_LOG) ----" >&2
		tail -n 40 "$DAEMON_LOG" >&2
	fi
	_guest_consoles_report $rc
	rm -rf "$T"
	exit $rc
}
trap _run_cleanups EXIT
trap 'exit 130' INT TERM

log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }
fail() { printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2; exit 1; }
skip() { printf '[%s] SKIP: %s\n' "$TEST_NAME" "$*" >&2; exit 77; }
pass() { printf '[%s] PASS\n' "$TEST_NAME" >&2; exit 0; }

# requires CMD...: skip unless every command exists
requires() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "needs '$c' (not installed)"
	done
}
requires_root() { [ "$(id -u)" = 0 ] || skip "needs root"; }

# expect_fail CMD...: the command must fail (non-zero)
expect_fail() {
	if "$@" >"$T/expect_fail.out" 2>&1; then
		cat "$T/expect_fail.out" >&2
		fail "expected failure: $*"
	fi
}
# assert_eq A B [what]
assert_eq() { [ "$1" = "$2" ] || fail "${3:-value}: expected '$2', got '$1'"; }
# assert_contains HAYSTACK NEEDLE [what]
assert_contains() {
	case "$1" in *"$2"*) ;; *) fail "${3:-output} does not contain '$2': $1" ;; esac
}

# grep_q ARGS...: "grep -q" that reads all of its input, for "cmd | grep_q x"
# under pipefail (grep -q exits at the first match and the writer can die of
# SIGPIPE, failing the pipeline although the line was there)
grep_q() {
	local in
	in=$(cat)
	grep -q "$@" <<<"$in"
}

# wait_until SECS CMD...: poll every 0.05 s
wait_until() {
	local secs=$1 i=0
	shift
	while ! "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt $((secs * 20)) ] && return 1
		sleep 0.05
	done
	return 0
}

# free_port: a TCP port no socket uses, below the kernel's range for outgoing
# connections (ip_local_port_range, 32768.. by default): a port picked there
# may be taken by any client's connect() before the test listens on it
free_port() {
	local p lo
	lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	[ "${lo:-0}" -gt 12000 ] 2>/dev/null || lo=32768
	for _ in $(seq 1 200); do
		p=$((10000 + RANDOM % (lo - 10000)))
		if ! ss -tanH "( sport = :$p or dport = :$p )" 2>/dev/null | grep_q .; then
			echo $p
			return 0
		fi
	done
	return 1
}

# start_nvlendd [ARGS...]: start a daemon on a private socket, wait until it answers.
# Sets NVLEND_SOCKET (exported, so `nvlend` finds it), DAEMON_PID (the process
# started: nvlendd's keeper, or the daemon itself with --no-keeper),
# WORKER_PID (the process serving: the keeper's worker), DAEMON_LOG.
# A worker that dies during a test is restarted by the keeper; the test then
# fails at exit (the keeper logged it) unless it sets ALLOW_WORKER_RESTARTS=1.
_daemon_n=0
start_nvlendd() {
	_daemon_n=$((_daemon_n + 1))
	NVLEND_SOCKET=${NVLEND_SOCKET_OVERRIDE:-$T/nvlendd$_daemon_n.sock}
	export NVLEND_SOCKET
	DAEMON_LOG=$T/nvlendd$_daemon_n.log
	"$BIN/nvlendd" -s "$NVLEND_SOCKET" "$@" >>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	on_exit "stop_daemon_pid $DAEMON_PID"
	if ! wait_until 10 nvlend -s "$NVLEND_SOCKET" -t 1 rpc nvlend_get_version; then
		cat "$DAEMON_LOG" >&2
		fail "nvlendd did not come up"
	fi
	WORKER_PID=$(worker_of "$DAEMON_PID")
}

# worker_of PID: the worker of keeper PID (PID itself if it has none)
worker_of() {
	local w
	w=$(pgrep -P "$1" -x nvlendd 2>/dev/null | head -1)
	echo "${w:-$1}"
}

# worker_alive: the worker that start_nvlendd saw is still the one serving
worker_alive() { kill -0 "$WORKER_PID" 2>/dev/null && [ "$(worker_of "$DAEMON_PID")" = "$WORKER_PID" ]; }

# stop_daemon_pid PID: SIGTERM, wait up to 20 s, then SIGKILL. A daemon that
# exits non-zero after SIGTERM (a sanitizer report, a crash, a hang) fails
# the test even when the test body passed.
_daemon_bad=""
stop_daemon_pid() {
	local pid=$1 i st
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 1 400); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			st=$?
			if [ "$st" != 0 ] && [ "$st" != 127 ]; then
				_daemon_bad="daemon $pid exited with status $st after SIGTERM"
				return 1
			fi
			return 0
		fi
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	_daemon_bad="daemon $pid did not stop within 20 s of SIGTERM"
	return 1
}
stop_nvlendd() { stop_daemon_pid "$DAEMON_PID" || fail "$_daemon_bad"; }
# kill9_nvlendd: SIGKILL the daemon (its worker dies with the keeper) and wait
# until no process of it is left
kill9_nvlendd() {
	local w
	w=$(worker_of "$DAEMON_PID")
	kill -KILL "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	wait_until 10 sh -c "! kill -0 $w" || kill -KILL "$w" 2>/dev/null
	true
}

# rpc METHOD [JSON]: call and print the result
rpc() { nvlend -s "$NVLEND_SOCKET" rpc "$@"; }

# raw_rpc TEXT: send raw bytes to the socket, print what comes back
raw_rpc() { printf '%s' "$1" | socat -t 2 - "UNIX-CONNECT:$NVLEND_SOCKET"; }

# json FILTER: extract with python (no jq dependency): json '["name"]' < file
json_get() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1"; }

# ---- QEMU guest (real Linux initiators: nvme-tcp, nbd, ublk, vhost-user) ----
GUEST_TOOLS=$TESTS_DIR/guest
GUEST_DIR=${NVLEND_GUEST_DIR:-/var/tmp/nvlend-test-guest}
export NVLEND_GUEST_DIR=$GUEST_DIR
# guest_prepare [6.1|bpo]: build the guest image if missing. Skips only where
# QEMU cannot run at all (not installed); an image that fails to build is a
# test failure, not a skip, so a broken recipe cannot hide behind SKIP lines.
guest_prepare() {
	local flavor=${1:-6.1}
	command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 not installed"
	local stamp
	stamp=$(cat "$GUEST_TOOLS/build.sh" "$GUEST_TOOLS/guest-init.sh" | sha1sum | cut -c1-16)
	mkdir -p "$GUEST_DIR"
	# serialize concurrent builds; rebuild when the recipe changed
	( flock 9
	  if [ ! -f "$GUEST_DIR/img/$flavor/initramfs.img" ] ||
	     [ "$(cat "$GUEST_DIR/img/$flavor/STAMP" 2>/dev/null)" != "$stamp" ]; then
		echo "building the QEMU guest image ($flavor)" >&2
		"$GUEST_TOOLS/build.sh" "$flavor" && echo "$stamp" > "$GUEST_DIR/img/$flavor/STAMP"
	  fi ) 9>"$GUEST_DIR/.build.lock" >"$T/guest-build.log" 2>&1 ||
		{ cat "$T/guest-build.log" >&2; fail "cannot build the guest image (see log above)"; }
}
# guest_run [run-in-guest options] -- 'CMD' : boot, run, print output, return status.
# The whole console of each boot is kept in $T/guest-console.*: a failing test
# prints all of them at exit (a kernel panic's cause is at its start, not in
# the last lines). A boot that never reached guest-init is retried once by
# run-in-guest.sh; the test's log says so even when the test passes.
guest_run() {
	local con
	con=$(mktemp "$T/guest-console.XXXXXX")
	GUEST_CONSOLE=$con "$GUEST_TOOLS/run-in-guest.sh" "$@"
}
# _guest_consoles_report RC: at exit, the boot retries, and on failure every
# guest console in full
_guest_consoles_report() {
	local rc=$1 f
	for f in "$T"/guest-console.*; do
		[ -s "$f" ] || continue
		grep -h "booting again" "$f" | sed "s/^/[$TEST_NAME] /" >&2
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
			echo "---- whole guest console ($(basename "$f")) ----" >&2
			cat "$f" >&2
			echo "---- end of guest console ----" >&2
		fi
	done
}
