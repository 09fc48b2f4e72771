#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# `make run`: the whole promise in one go. Starts nvlendd with a default
# configuration (a RAM namespace shared over shm), attaches it to this host
# as a block device (nvlend attach: kernel NVMe/TCP > ublk > NBD > FUSE file
# + loop, whichever this kernel offers), formats it ext4, mounts it, writes a
# file and reads it back, shows lsblk and the namespace's I/O statistics,
# then unmounts, detaches and stops the daemon, and prints a summary.
# Non-interactive; needs root (block devices, mounts). Everything it makes is
# removed on exit, Ctrl-C or failure.
#
#   scripts/run-demo.sh [BUILD_DIR]        (default: build)
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
BIN=$BUILD/bin
NVLEND=$BIN/nvlend
SIZE_MIB=${DEMO_SIZE_MIB:-256}
FILE_MIB=${DEMO_FILE_MIB:-64}
NQN=nqn.2026-01.io.nvlend:demo

bold() { printf '\033[1m%s\033[0m' "$*"; }
if [ -t 1 ]; then :; else bold() { printf '%s' "$*"; }; fi

if [ "$(id -u)" != 0 ]; then
	echo "make run needs root: it creates a block device, formats and mounts it." >&2
	echo "Run it as root (sudo make run)." >&2
	exit 1
fi
for t in "$BIN/nvlendd" "$NVLEND" mkfs.ext4 lsblk mount; do
	command -v "$t" >/dev/null 2>&1 || { echo "run-demo: '$t' is missing" >&2; exit 1; }
done

W=$(mktemp -d "${TMPDIR:-/tmp}/nvlend-demo.XXXXXX")
export NVLEND_SOCKET=$W/nvlend.sock
export NVLEND_ATTACH_DIR=$W/attach
MNT=$W/mnt
daemon_pid= dev= mounted=0
declare -a S_NAME S_TIME S_RES
T_START=$(date +%s.%N)

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	[ $mounted = 1 ] && umount -l "$MNT" 2>/dev/null
	if [ -n "$dev" ]; then
		"$NVLEND" detach --force --timeout 10 demo >/dev/null 2>&1
	fi
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		kill "$daemon_pid" 2>/dev/null
		wait "$daemon_pid" 2>/dev/null
	fi
	rm -rf "$W"
	exit $rc
}
trap cleanup EXIT
trap 'echo; echo "interrupted: cleaning up"; exit 130' INT TERM

now() { date +%s.%N; }
el() { awk "BEGIN{printf \"%.2f\", $(now) - $1}"; }
STEP_T0=
STEP=
# step SUMMARY-LABEL [WHAT IS SHOWN]
step() {
	STEP=$1
	STEP_T0=$(now)
	printf '\n%s %s\n' "$(bold "==> [$(( ${#S_NAME[@]} + 1 ))]")" "$(bold "${2:-$1}")"
}
ok() {
	local t
	t=$(el "$STEP_T0")
	S_NAME+=("$STEP")
	S_TIME+=("$t")
	S_RES+=("${1:-ok}")
	printf '    ok (%ss)%s\n' "$t" "${1:+: $1}"
}
die() {
	S_NAME+=("$STEP")
	S_TIME+=("$(el "$STEP_T0")")
	S_RES+=("FAILED: $*")
	printf '    FAILED: %s\n' "$*" >&2
	[ -f "$W/nvlendd.log" ] && { echo "---- daemon log ----" >&2; tail -n 20 "$W/nvlendd.log" >&2; }
	for l in "$NVLEND_ATTACH_DIR"/*.log; do
		[ -f "$l" ] && { echo "---- attach log ----" >&2; tail -n 20 "$l" >&2; }
	done
	summary
	exit 1
}
summary() {
	printf '\n%s\n' "$(bold "Summary")"
	printf '  %-3s %-26s %8s  %s\n' "#" "step" "seconds" "result"
	for i in "${!S_NAME[@]}"; do
		printf '  %-3s %-26s %8s  %s\n' "$((i + 1))" "${S_NAME[$i]}" "${S_TIME[$i]}" "${S_RES[$i]}"
	done
	printf '  total: %ss\n' "$(el "$T_START")"
}

cat >"$W/default.json" <<JSON
[
  {"method": "bdev_malloc_create",
   "params": {"name": "ram0", "num_blocks": $((SIZE_MIB * 2048)), "block_size": 512}},
  {"method": "nvmf_create_subsystem",
   "params": {"nqn": "$NQN", "allow_any_host": true, "serial_number": "NVLDEMO0001"}},
  {"method": "nvmf_subsystem_add_ns",
   "params": {"nqn": "$NQN", "namespace": {"bdev_name": "ram0"}}},
  {"method": "nvmf_subsystem_add_listener",
   "params": {"nqn": "$NQN", "listen_address": {"trtype": "SHM", "traddr": "$W/shm.sock"}}}
]
JSON
URI="nvme+shm://$W/shm.sock?nqn=$NQN"

step "start nvlendd" "start nvlendd: a ${SIZE_MIB} MiB RAM namespace shared over shm"
"$BIN/nvlendd" -s "$NVLEND_SOCKET" -c "$W/default.json" >"$W/nvlendd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 200); do "$NVLEND" -t 1 status >/dev/null 2>&1 && break; sleep 0.05; done
"$NVLEND" -t 1 status >/dev/null 2>&1 || die "nvlendd did not start"
"$NVLEND" status | sed 's/^/    /'
"$NVLEND" rpc nvmf_get_subsystems | /usr/bin/python3 -c '
import json, sys
for s in json.load(sys.stdin):
    for ns in s.get("namespaces", []):
        print("    subsystem %s  nsid %d  bdev %s  %d blocks  listeners %s" % (s["nqn"], ns["nsid"],
              ns["bdev_name"], ns["num_blocks"], ",".join(a["trtype"] + ":" + a["traddr"] for a in s["listen_addresses"])))'
ok

step "nvlend attach" "nvlend attach $URI"
dev=$("$NVLEND" attach "$URI" --name demo) || { dev=; die "attach failed"; }
mech=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mechanism"])' \
	"$NVLEND_ATTACH_DIR/demo.json")
echo "    this host now has $dev (mechanism: $mech)"
"$NVLEND" attachments | sed 's/^/    /'
ok "$dev via $mech"

step "lsblk" "lsblk $dev"
lsblk -o NAME,SIZE,TYPE,RO,LOG-SEC,MOUNTPOINTS "$dev" | sed 's/^/    /' || die "lsblk"
ok

step "mkfs.ext4" "mkfs.ext4 $dev"
mkfs.ext4 -q -F -L nvlend-demo "$dev" || die "mkfs.ext4"
ok

step "mount" "mount $dev $MNT"
mkdir -p "$MNT"
mount "$dev" "$MNT" || die "mount"
mounted=1
ok

step "write, sync, read back" "write a ${FILE_MIB} MiB file, sync, read it back (O_DIRECT, past the page cache)"
head -c $((FILE_MIB << 20)) /dev/urandom >"$W/src.bin"
t0=$(now)
cp "$W/src.bin" "$MNT/demo.bin" && sync || die "write"
wt=$(el "$t0")
t0=$(now)
dd if="$MNT/demo.bin" of="$W/back.bin" bs=1M iflag=direct status=none || die "read back"
rt=$(el "$t0")
cmp -s "$W/src.bin" "$W/back.bin" || die "read-back differs"
sum=$(md5sum <"$MNT/demo.bin" | cut -c1-32)
echo "    wrote+synced ${FILE_MIB} MiB in ${wt}s, read back in ${rt}s, identical (md5 $sum)"
ls -l "$MNT" | sed 's/^/    /'
ok "identical"

step "lsblk, df" "lsblk, blkid and df with the file system mounted"
lsblk -o NAME,SIZE,TYPE,RO,MOUNTPOINTS "$dev" | sed 's/^/    /'
blkid "$dev" | sed 's/^/    /'
df -h "$MNT" | sed 's/^/    /'
ok

step "namespace I/O stats" "I/O statistics of the namespace (bdev ram0) and of this host's controller"
"$NVLEND" bdev iostat ram0 | sed 's/^/    /' || die "bdev iostat"
"$NVLEND" rpc nvmf_subsystem_get_controllers "{\"nqn\":\"$NQN\"}" | /usr/bin/python3 -c '
import json, sys
for c in json.load(sys.stdin):
    io = c["io"]
    print("    controller %d  host %s  %d I/O queues  reads %d (%.1f MiB)  writes %d (%.1f MiB)  errors %d" % (
        c["cntlid"], c["hostnqn"], c["num_io_qpairs"], io["read_cmds"], io["read_bytes"] / 1048576.0,
        io["write_cmds"], io["write_bytes"] / 1048576.0, io["errors"]))'
ok

step "unmount" "umount $MNT"
umount "$MNT" || die "umount"
mounted=0
ok

step "nvlend detach" "nvlend detach $dev"
"$NVLEND" detach demo | sed 's/^/    /' || die "detach"
dev=
"$NVLEND" attachments | sed 's/^/    /'
ok

step "stop nvlendd" "stop nvlendd (SIGTERM drains in-flight I/O)"
kill "$daemon_pid"
wait "$daemon_pid"
st=$?
daemon_pid=
[ $st = 0 ] || die "nvlendd exited with status $st"
ok

summary
printf '\n%s\n' "$(bold "demo finished: a namespace served by nvlendd was this host's block device ($mech), formatted, mounted, written and read back, unmounted and detached.")"
