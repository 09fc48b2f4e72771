#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The command-line surface: --help/--version of nvlendd and of nvlend at
# every level (each command and each command group), exit codes for bad
# command lines (2) and for a daemon that is not running (3, with a clear
# message), size arguments with suffixes, bad daemon options, --cores/-m
# pinning each reactor thread to its CPU (seen in /proc, not only in the RPC).
# timeout: 120
source "$(dirname "$0")/common.sh"

# ---- nvlendd ------------------------------------------------------------------
out=$("$BIN/nvlendd" --help) || fail "nvlendd --help exit status"
for w in NAME SYNOPSIS OPTIONS --rpc-socket --log-level --config EXAMPLES; do
	assert_contains "$out" "$w" "nvlendd --help"
done
[ "$("$BIN/nvlendd" -h)" = "$out" ] || fail "nvlendd -h differs from --help"
ver=$("$BIN/nvlendd" --version) || fail "nvlendd --version"
[[ "$ver" =~ ^nvlendd\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "nvlendd --version: '$ver'"
cli_ver=$(nvlend --version) || fail "nvlend --version"
assert_eq "${cli_ver#nvlend }" "${ver#nvlendd }" "nvlend and nvlendd versions"

# bad daemon command lines: exit 2 with a hint, no socket created
for args in "--bogus" "--log-level 4" "--log-level x" "--cores 0," "--cores 3-1" \
	"--reactors 0" "--spin-us -1" "--io-sleep-us x" "--rpc-max-request 1k" "--rpc-max-clients 0" "extra-arg"; do
	# shellcheck disable=SC2086
	msg=$("$BIN/nvlendd" -s "$T/bad.sock" $args 2>&1)
	rc=$?
	[ $rc = 2 ] || fail "nvlendd $args: exit $rc, expected 2 ($msg)"
	[ -n "$msg" ] || fail "nvlendd $args: no message"
	[ ! -e "$T/bad.sock" ] || fail "nvlendd $args left a socket"
done

# ---- nvlend help at every level --------------------------------------------------
main=$(nvlend --help) || fail "nvlend --help"
for w in NAME SYNOPSIS "GLOBAL OPTIONS" COMMANDS "EXIT STATUS" EXAMPLES; do
	assert_contains "$main" "$w" "nvlend --help"
done
# the command list, as printed under COMMANDS
mapfile -t cmds < <(printf '%s\n' "$main" | sed -n '/^COMMANDS/,/^$/p' | sed -n 's/^    \([a-z][a-z -]*[a-z]\)  .*/\1/p' | sed 's/ *$//')
[ ${#cmds[@]} -ge 10 ] || fail "parsed only ${#cmds[@]} commands from nvlend --help"
declare -A groups=()
for c in "${cmds[@]}"; do
	# shellcheck disable=SC2086
	h=$(nvlend $c --help) || fail "nvlend $c --help: exit $?"
	assert_contains "$h" "NAME" "nvlend $c --help"
	assert_contains "$h" "nvlend $c" "nvlend $c --help"
	# shellcheck disable=SC2086
	[ "$(nvlend $c -h)" = "$h" ] || fail "nvlend $c -h differs from --help"
	words=($c)
	for ((i = 1; i < ${#words[@]}; i++)); do groups["${words[*]:0:$i}"]=1; done
done
log "checked --help of ${#cmds[@]} commands: ${cmds[*]}"
[ -n "${groups[bdev]:-}" ] && [ -n "${groups[bdev create]:-}" ] || fail "groups: ${!groups[*]}"
for g in "${!groups[@]}"; do
	# shellcheck disable=SC2086
	h=$(nvlend $g --help) || fail "nvlend $g --help: exit $?"
	assert_contains "$h" "Usage: nvlend [global options] $g COMMAND" "nvlend $g --help"
	for c in "${cmds[@]}"; do
		case "$c" in "$g "*) assert_contains "$h" "$c" "nvlend $g --help" ;; esac
	done
	# a bare group is a usage error that still lists its commands
	# shellcheck disable=SC2086
	h=$(nvlend $g 2>&1); rc=$?
	assert_eq "$rc" 2 "exit status of bare 'nvlend $g'"
	assert_contains "$h" "COMMAND" "bare 'nvlend $g'"
done
h=$(nvlend bdev create ram --help) || fail "nvlend bdev create ram --help"
for w in SYNOPSIS OPTIONS --block-size EXAMPLE bdev_malloc_create; do
	assert_contains "$h" "$w" "nvlend bdev create ram --help"
done

# ---- usage errors: exit 2, before any daemon contact --------------------------------
export NVLEND_SOCKET=$T/nobody.sock
expect_usage() {
	local out rc
	out=$("$@" 2>&1); rc=$?
	[ $rc = 2 ] || fail "'$*': exit $rc, expected 2 ($out)"
	[ -n "$out" ] || fail "'$*': no message"
	case "$out" in *"not running"*) fail "'$*' contacted the daemon before checking usage" ;; esac
}
expect_usage nvlend
expect_usage nvlend frobnicate
expect_usage nvlend bdev frobnicate
expect_usage nvlend --timeout 0 status
expect_usage nvlend --bogus status
expect_usage nvlend bdev create ram r0
expect_usage nvlend bdev create ram r0 64X
expect_usage nvlend bdev create ram r0 1.5G
expect_usage nvlend bdev create ram r0 -64M
expect_usage nvlend bdev create ram r0 1000          # not a multiple of 512
expect_usage nvlend bdev create ram r0 64M --block-size 1000
expect_usage nvlend bdev create ram r0 64M --block-size 128k
expect_usage nvlend bdev create ram r0 99999999999999999999999
expect_usage nvlend log level 4
expect_usage nvlend log level x
expect_usage nvlend rpc
expect_usage nvlend rpc bdev_get_bdevs '{not json'
expect_usage nvlend rpc bdev_get_bdevs '42'

# ---- no daemon: exit 3 and a message that says what to do ----------------------------
for c in "status" "bdev list" "bdev create ram r0 64M" "rpc nvlend_get_version" "save-config"; do
	# shellcheck disable=SC2086
	msg=$(nvlend $c 2>&1); rc=$?
	assert_eq "$rc" 3 "exit status of 'nvlend $c' without a daemon"
	assert_contains "$msg" "nvlendd is not running" "'nvlend $c' without a daemon"
	assert_contains "$msg" "$T/nobody.sock" "'nvlend $c' names the socket"
done
# a stale socket file (nobody listening) is "not running" too
/usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/stale.sock"
msg=$(nvlend -s "$T/stale.sock" status 2>&1); rc=$?
assert_eq "$rc" 3 "exit status with a stale socket"
assert_contains "$msg" "not running" "stale socket message"
unset NVLEND_SOCKET

# ---- sizes with suffixes reach the daemon as the right block counts ----------------------
start_nvlendd
for spec in "a 64M 512 131072" "b 1G 4096 262144" "c 4k 4096 1" "d 1m 512 2048" \
	"e 0x100000 512 2048" "f 2MiB 512 4096"; do
	read -r name size bs blocks <<<"$spec"
	nvlend bdev create ram "$name" "$size" --block-size "$bs" >/dev/null ||
		fail "create ram $name $size"
	got=$(nvlend --json bdev list "$name" | json_get '[0]["num_blocks"]')
	assert_eq "$got" "$blocks" "num_blocks of $size with block size $bs"
done
out=$(nvlend bdev list)
assert_contains "$out" "1.0 GiB" "bdev list size column"
# --json works before and after the command words
nvlend --json bdev list a | json_get '[0]["name"]' | grep_q -x a || fail "--json before"
nvlend bdev list a --json | json_get '[0]["name"]' | grep_q -x a || fail "--json after"
# errors from the daemon: exit 1 (operation failed) or 2 (invalid params/method)
msg=$(nvlend bdev create ram a 1M 2>&1); rc=$?
assert_eq "$rc" 1 "exit status of a duplicate name"
assert_contains "$msg" "already exists" "duplicate name message"
msg=$(nvlend rpc no_such_method 2>&1); rc=$?
assert_eq "$rc" 2 "exit status of an unknown method"
msg=$(nvlend rpc bdev_get_bdevs '{"nope": 1}' 2>&1); rc=$?
assert_eq "$rc" 2 "exit status of invalid params"
assert_contains "$msg" "unknown parameter 'nope'" "invalid params message"
msg=$(nvlend bdev delete nosuch 2>&1); rc=$?
assert_eq "$rc" 1 "exit status of deleting an unknown bdev"
echo '{"name": "b"}' | nvlend rpc bdev_get_bdevs - | grep_q '"num_blocks": 262144' ||
	fail "params from stdin"
for n in a b c d e f; do nvlend bdev delete $n || fail "delete $n"; done
[ "$(nvlend --json bdev list)" = "[]" ] || fail "bdevs left"
# check_pinning CPU...: one reactor per argument, reactor 0 on the main thread; a
# reactor given a CPU may run only there (its thread's Cpus_allowed_list), one
# given "-" is unpinned (allowed wherever this shell is)
check_pinning() {
	nvlend rpc framework_get_reactors | /usr/bin/python3 -c '
import json, sys
pid, want = sys.argv[1], sys.argv[2:]
mine = [l.split()[1] for l in open("/proc/self/status") if l.startswith("Cpus_allowed_list:")][0]
rs = json.load(sys.stdin)["reactors"]
assert len(rs) == len(want), ("reactors", rs, want)
assert rs[0]["tid"] == int(pid), ("reactor 0 is not the main thread", rs[0])
for r, cpu in zip(rs, want):
    status = open("/proc/%s/task/%d/status" % (pid, r["tid"])).read()
    comm = open("/proc/%s/task/%d/comm" % (pid, r["tid"])).read().strip()
    allowed = [l.split()[1] for l in status.splitlines() if l.startswith("Cpus_allowed_list:")][0]
    print("reactor %d: thread %d (%s), cpu %d, Cpus_allowed_list %s" %
          (r["id"], r["tid"], comm, r["cpu"], allowed))
    assert r["cpu"] == (-1 if cpu == "-" else int(cpu)), r
    assert comm == ("nvlendd" if r["id"] == 0 else "reactor_%d" % r["id"]), ("thread name", comm)
    assert allowed == (mine if cpu == "-" else cpu), ("reactor %d allowed on %s" % (r["id"], allowed))
' "$WORKER_PID" "$@" >&2
}
check_pinning - || fail "reactor pinned without --cores"
stop_nvlendd

# --cores / -m: one reactor per listed CPU, pinned there (the first CPUs we may use)
mapfile -t cpus < <(/usr/bin/python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)), sep="\n")')
start_nvlendd --cores "${cpus[0]}"
check_pinning "${cpus[0]}" || fail "--cores ${cpus[0]}: reactor not pinned"
stop_nvlendd
if [ ${#cpus[@]} -ge 2 ]; then
	start_nvlendd -m "${cpus[0]},${cpus[1]}"
	check_pinning "${cpus[0]}" "${cpus[1]}" || fail "-m ${cpus[0]},${cpus[1]}: reactors not pinned"
	stop_nvlendd
else
	log "SKIP two-core pinning: only CPU ${cpus[0]} is available"
fi
pass
