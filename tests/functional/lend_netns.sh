#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 420
#
# Device lending between three hosts: a lender and two borrowers, each an
# nvlendd in its own network namespace (a bridge in the lender's joins them),
# holding the same cluster key. The full SmartIO cycle (connect, add,
# available, list on every node, borrow by one, the other's borrow refused,
# data written by the first, return, borrow by the second and read back),
# every refusal (unavailable offer, busy device: open, loop device, bdev in
# use, mounted on return, borrowed on unavailable, a second path's writes
# under the reservation, one daemon per backing device, a peer without the
# key, a key file others may read), a forced reclaim under I/O, borrower
# kill -9 -> lease expiry -> the other borrows (preempting the reservation),
# the lender upgraded mid-borrow under fio verify (its connection kept, no
# reconnect), the lender restarted mid-borrow under fio verify, shared lending, and the
# offers in the lender's NVMe discovery log (through libnvlend here; the
# guest test lend_guest.sh does it with the kernel's nvme discover).
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/attach_common.sh"
requires_root
requires ip fio mkfs.ext4 losetup flock
attach_setup
ip netns add "nvlt-probe-$$" 2>/dev/null || skip "cannot create network namespaces here"
ip netns del "nvlt-probe-$$"

NL=nvlt-l-$$
N1=nvlt-b1-$$
N2=nvlt-b2-$$
SUB=10.$((RANDOM % 200 + 20)).$((RANDOM % 250))
AL=$SUB.1
A1=$SUB.2
A2=$SUB.3
for n in $NL $N1 $N2; do
	ip netns add $n
	on_exit "ip netns del $n"
	ip -n $n link set lo up
done
ip -n $NL link add br0 type bridge
ip -n $NL link set br0 up
ip -n $NL addr add $AL/24 dev br0
i=0
for pair in "$N1 $A1" "$N2 $A2"; do
	set -- $pair
	i=$((i + 1))
	ip link add "lb$i-$$" netns $NL type veth peer name "eth0" netns $1 || fail "veth"
	ip -n $NL link set "lb$i-$$" master br0 up
	ip -n $1 addr add $2/24 dev eth0
	ip -n $1 link set eth0 up
done

KEY=$T/cluster.key
nvlend lend keygen "$KEY" >/dev/null || fail "keygen"
[ "$(stat -c %a "$KEY")" = 600 ] || fail "key file mode $(stat -c %a "$KEY")"

# start_node NAME NETNS: a daemon in NETNS with its own socket and state dir
declare -A PID LOG
start_node() {
	local name=$1 ns=$2
	shift 2
	_daemon_n=$((_daemon_n + 1))
	LOG[$name]=$T/$name.log
	ip netns exec "$ns" "$BIN/nvlendd" -s "$T/$name.sock" --state-dir "$T/state-$name" \
		--node-name "$name" --cluster-key "$KEY" "$@" >>"${LOG[$name]}" 2>&1 &
	PID[$name]=$!
	on_exit "stop_daemon_pid ${PID[$name]}"
	wait_until 10 nvlend -s "$T/$name.sock" -t 1 rpc nvlend_get_version ||
		{ cat "${LOG[$name]}" >&2; fail "nvlendd $name did not come up"; }
	# a failing test shows the lender's log
	[ "$name" = lender ] && DAEMON_LOG=${LOG[$name]}
	true
}
# on NODE nvlend ARGS...: the CLI against NODE's daemon, inside NODE's namespace
# each node is a host of its own: its own attachment state dir
declare -A NS=([lender]=$NL [b1]=$N1 [b2]=$N2)
on() {
	local node=$1
	shift
	NVLEND_ATTACH_DIR=$T/attach-$node ip netns exec "${NS[$node]}" "$BIN/nvlend" \
		-s "$T/$node.sock" "$@"
}
for n in b1 b2; do
	mkdir -p "$T/attach-$n"
	on_exit "NVLEND_ATTACH_DIR=$T/attach-$n attach_cleanup"
done
# offer_state NODE ID: the state of lender:ID as NODE lists it
offer_state() {
	on "$1" --json lend list | /usr/bin/python3 -c '
import json, sys
print([o["state"] for o in json.load(sys.stdin)["offers"]
       if o["lender"] == "lender" and o["id"] == int(sys.argv[1])][0])' "$2"
}

start_node lender $NL
start_node b1 $N1
start_node b2 $N2
on lender lend listen $AL --lease 3 >/dev/null || fail "lender listen"
on b1 lend listen $A1 >/dev/null || fail "b1 listen"
on b2 lend listen $A2 >/dev/null || fail "b2 listen"
out=$(on b1 lend connect $AL) || fail "b1 connect: $out"
assert_contains "$out" "connected to node lender"
on b2 lend connect $AL:4430 >/dev/null || fail "b2 connect"
# connect is mutual: the lender knows both borrowers
on lender --json lend node | grep_q '"name": "b1"' || fail "lender does not know b1"

log "add: an offer, unavailable until 'available', listed on every node"
truncate -s 64M "$T/disk.img"
out=$(on lender lend add "$T/disk.img") || fail "add: $out"
assert_contains "$out" "lend 1:"
expect_fail on lender lend add "$T/disk.img"
for n in lender b1 b2; do
	line=$(on $n lend list | grep "lender:1") || fail "$n does not list lender:1"
	assert_contains "$line" "unavailable" "$n's list"
done
out=$(on b1 lend borrow lender:1 2>&1) && fail "borrowing an unavailable offer worked"
assert_contains "$out" "unavailable"

log "available is refused while the device is used on the lender"
exec 7<>"$T/disk.img"
out=$(on lender lend available 1 2>&1) && fail "available while the file is open"
assert_contains "$out" "open in process"
exec 7>&-
loop=$(losetup -f --show "$T/disk.img") || fail "losetup"
out=$(on lender lend available 1 2>&1) && fail "available while a loop device is on it"
assert_contains "$out" "loop device"
losetup -d "$loop"
on lender bdev create file mine "$T/disk.img" >/dev/null || fail "a local bdev on the file"
out=$(on lender lend available 1 2>&1) && fail "available while a bdev of the lender serves it"
assert_contains "$out" "bdev mine of this daemon"
on lender bdev delete mine >/dev/null || fail "delete the local bdev"
on lender lend available 1 >/dev/null || fail "available"
for n in lender b1 b2; do
	assert_eq "$(offer_state $n 1)" "available" "$n sees"
done
# held exclusively: a second daemon cannot serve the same file (one daemon per device)
start_nvlendd
expect_fail nvlend bdev create file other "$T/disk.img"
grep -q "one daemon per backing device" "$DAEMON_LOG" || fail "no 'one daemon per device' message"
stop_nvlendd

log "borrow by b1; b2's borrow refused; b1 writes"
dev1=$(on b1 lend borrow lender:1 --reconnect-timeout 30) || fail "b1 borrow"
[ -b "$dev1" ] || fail "b1 got no block device: $dev1"
assert_contains "$(on lender lend list | grep lender:1)" "borrowed by b1"
assert_contains "$(on b1 lend list | grep lender:1)" "(here)"
out=$(on b2 lend borrow lender:1 2>&1) && fail "b2 borrowed an exclusively borrowed device"
assert_contains "$out" "borrowed by b1"
out=$(on lender lend unavailable 1 2>&1) && fail "unavailable while borrowed"
assert_contains "$out" "borrowed by b1"
dd if=/dev/urandom of="$T/pattern" bs=1M count=4 status=none
dd if="$T/pattern" of="$dev1" bs=1M count=4 oflag=direct status=none || fail "b1 write"

log "the borrow is authenticated both ways (DH-HMAC-CHAP from the cluster key): b1's NQN alone is not let in"
grep -q "host $(on b1 --json lend node | json_get '["hostnqn"]') authenticated (DH-HMAC-CHAP .*controller authenticated to the host" \
	"${LOG[lender]}" || fail "the borrower's controller did not authenticate both ways"
on lender --json rpc keyring_get_keys >"$T/keys.json" || fail "keyring_get_keys"
/usr/bin/python3 - "$T/keys.json" <<'PY' || fail "the lender's keyring: $(cat "$T/keys.json")"
import json, sys
k = [k for k in json.load(open(sys.argv[1])) if k.get("owner") == "lend"]
assert len(k) == 2 and all(x["users"] == 1 for x in k), k
PY
B1NQN=$(on b1 --json lend node | json_get '["hostnqn"]')
NQN1=$(on lender --json lend list | json_get '["offers"][0]["nqn"]')
out=$(ip netns exec $N2 "$BIN/nvlend" ns info "nvme+tcp://$AL:4420/$NQN1/1" --hostnqn "$B1NQN" 2>&1) &&
	fail "b1's host NQN without its key was let in: $out"
assert_contains "$out" "requires DH-HMAC-CHAP"
on lender rpc save_config >"$T/lender-config.json" || fail "save_config"
grep -q '"lend-1-' "$T/lender-config.json" && fail "save_config wrote the lend's keys"

log "a second path (another host the admin let in) cannot write: b1 holds Write Exclusive"
SECOND=nqn.2024-01.io.nvlend:second-path
NQN1=$(on lender --json lend list | json_get '["offers"][0]["nqn"]')
on lender rpc nvmf_subsystem_add_host "{\"nqn\":\"$NQN1\",\"host\":\"$SECOND\"}" >/dev/null ||
	fail "add second host"
dev2p=$(ip netns exec $N2 "$BIN/nvlend" attach "nvme+tcp://$AL:4420/$NQN1/1" --via fuse \
	--hostnqn $SECOND --name second --reconnect-timeout 2) || fail "second path attach"
dd if="$dev2p" of=/dev/null bs=4k count=1 iflag=direct status=none || fail "second path read"
dd if=/dev/zero of="$dev2p" bs=4k count=1 oflag=direct status=none 2>/dev/null &&
	fail "the second path wrote under b1's reservation"
ip netns exec $N2 "$BIN/nvlend" detach second >/dev/null || fail "detach second path"
on lender rpc nvmf_subsystem_remove_host "{\"nqn\":\"$NQN1\",\"host\":\"$SECOND\"}" >/dev/null

log "return (refused while mounted), then b2 borrows and reads b1's data"
mnt=$(mkmnt m1)
mkfs.ext4 -q -F "$dev1" >/dev/null 2>&1 || fail "mkfs"
mount "$dev1" "$mnt" || fail "mount"
cp "$T/pattern" "$mnt/pattern" && sync
out=$(on b1 lend return lender:1 2>&1) && fail "return while mounted"
assert_contains "$out" "mounted"
umount "$mnt"
on b1 lend return lender:1 >/dev/null || fail "b1 return"
assert_eq "$(offer_state lender 1)" "available" "after return"
wait_until 5 sh -c "! ls '$T/state-lender/keys/' 2>/dev/null | grep -q ." ||
	fail "the returned borrow's key files are left: $(ls "$T/state-lender/keys/")"
dev2=$(on b2 lend borrow 1) || fail "b2 borrow"
mount -o ro "$dev2" "$mnt" || fail "b2 mount"
cmp "$mnt/pattern" "$T/pattern" || fail "b2 does not read what b1 wrote"
umount "$mnt"
on b2 lend return lender:1 >/dev/null || fail "b2 return"

log "forced reclaim under I/O: b1's I/O fails, the file is back for local use"
dev1=$(on b1 lend borrow lender:1 --reconnect-timeout 3) || fail "b1 borrow again"
fio --name=w --filename="$dev1" --rw=randwrite --bs=4k --size=32M --direct=1 \
	--ioengine=libaio --iodepth=4 --time_based --runtime=60 >"$T/fio-force.log" 2>&1 &
fpid=$!
on_exit "kill $fpid"
sleep 1
kill -0 $fpid 2>/dev/null || { cat "$T/fio-force.log" >&2; fail "fio ended early"; }
expect_fail on lender lend unavailable 1
on lender lend unavailable 1 --force >/dev/null || fail "forced unavailable"
grep -q "forced reclaim: revoking b1" "${LOG[lender]}" || fail "lender log lacks the reclaim"
wait_until 20 sh -c "! kill -0 $fpid 2>/dev/null" || fail "fio kept running after the reclaim"
wait $fpid && fail "fio saw no error after the reclaim"
grep -qiE "error|err=" "$T/fio-force.log" || fail "fio log shows no error"
flock -n "$T/disk.img" true || fail "the file is still locked after unavailable"
exec 7<>"$T/disk.img" && exec 7>&- || fail "cannot open the file locally"
wait_until 5 sh -c "[ \"\$(ip netns exec $N1 $BIN/nvlend -s $T/b1.sock rpc lend_get_borrows)\" = '[]' ]" ||
	fail "b1 still thinks it borrows"
# told by the lender's notice, or, if its lease renewal got there first, by
# the renewal's answer: either way b1 knows and logs it
grep -qE "revoked our borrow|says our borrow of its lend 1 is gone" "${LOG[b1]}" ||
	fail "b1 was not told: $(grep 'lend' "${LOG[b1]}" | tail -5)"
on b1 detach --force lend-lender-1 >/dev/null 2>&1
on lender lend available 1 >/dev/null || fail "available again"

log "borrower kill -9: the lease expires, the other borrows (preempting the reservation)"
dev1=$(on b1 lend borrow lender:1 --reconnect-timeout 2) || fail "b1 borrow 3"
dd if="$T/pattern" of="$dev1" bs=1M count=4 oflag=direct status=none || fail "b1 write 3"
kill -KILL ${PID[b1]}
out=$(on b2 lend borrow lender:1 2>&1) && fail "b2 borrowed before b1's lease expired"
wait_until 10 grep -q "the lease of b1 expired" "${LOG[lender]}" || fail "no lease expiry"
assert_eq "$(offer_state b2 1)" "available" "after expiry"
dev2=$(on b2 lend borrow lender:1 --reconnect-timeout 30) || fail "b2 borrow after expiry"
cmp <(dd if="$dev2" bs=1M count=4 iflag=direct status=none) "$T/pattern" ||
	fail "b2 reads other data"
dd if=/dev/zero of="$dev2" bs=4k count=1 oflag=direct status=none ||
	fail "b2 cannot write: the old reservation was not preempted"
on b1 detach --force lend-lender-1 >/dev/null 2>&1
start_node b1 $N1

# fio_verify_bg NAME SIZE LOG: crc32c write+verify on b2's device at 10 MB/s,
# in the background (fpid), running after a second
fio_verify_bg() {
	fio --name="$1" --filename="$dev2" --rw=write --bs=64k --size="$2" --direct=1 \
		--ioengine=libaio --iodepth=8 --verify=crc32c --do_verify=1 --verify_fatal=1 \
		--verify_state_save=0 --rate=10m >"$3" 2>&1 &
	fpid=$!
	on_exit "kill $fpid"
	sleep 1
	kill -0 $fpid 2>/dev/null || { cat "$3" >&2; fail "fio ended too early"; }
}

log "lender upgrade mid-borrow: b2's NVMe/TCP connection is kept, no reconnect, fio verify goes on"
# the lend target is not in the kept configuration: lending builds it again
# at the start, after the transports restored; the kept controller waits for it
fio_verify_bg u 24M "$T/fio-upgrade.log"
out=$(on lender upgrade 2>&1) || fail "lender upgrade: $out"
wait $fpid || { cat "$T/fio-upgrade.log" >&2; fail "fio verify failed across the lender upgrade"; }
grep -q "err= 0" "$T/fio-upgrade.log" || fail "fio reported an error"
grep_q "waits for its subsystem" <"${LOG[lender]}" ||
	fail "the kept lend controller did not wait for its subsystem: $(grep 'tcp:' "${LOG[lender]}")"
grep_q "taken back from the previous worker once its subsystem came" <"${LOG[lender]}" ||
	fail "the lend controller was not taken back: $(grep 'tcp:' "${LOG[lender]}")"
grep_q "not taken back" <"${LOG[lender]}" &&
	fail "a kept controller was dropped: $(grep 'not taken back' "${LOG[lender]}")"
grep_q "lost:.*reconnecting" <"${LOG[b2]}" &&
	fail "b2 reconnected across the lender upgrade: $(grep 'lost' "${LOG[b2]}")"
assert_contains "$(on lender lend list | grep lender:1)" "borrowed by b2"

log "lender restart mid-borrow: fio verify on b2 goes on"
fio_verify_bg v 40M "$T/fio-restart.log"
kill -KILL ${PID[lender]}
wait ${PID[lender]} 2>/dev/null
sleep 1
start_node lender $NL
wait $fpid || { cat "$T/fio-restart.log" >&2; fail "fio verify failed across the lender restart"; }
grep -q "err= 0" "$T/fio-restart.log" || fail "fio reported an error"
grep -q "borrowers kept" "${LOG[lender]}" || fail "the lender did not keep the borrow"
assert_contains "$(on lender lend list | grep lender:1)" "borrowed by b2"
sleep 4 # longer than the lease: b2's daemon renews with the restarted lender
assert_contains "$(on lender lend list | grep lender:1)" "borrowed by b2"
on b2 lend return lender:1 >/dev/null || fail "b2 return after restart"

log "shared lending: both borrowers at once on a RAM bdev"
on lender bdev create ram r0 16M >/dev/null || fail "ram bdev"
on lender lend add r0 --shared >/dev/null || fail "add shared"
SID=$(on lender --json lend list | /usr/bin/python3 -c 'import json,sys; print([o["id"] for o in json.load(sys.stdin)["offers"] if o["device"]=="r0"][0])')
on lender lend available $SID >/dev/null || fail "shared available"
# the lender itself cannot take the claimed bdev behind the borrowers' back
on lender subsystem create nqn.2024-01.io.nvlend:local >/dev/null
expect_fail on lender subsystem add-ns nqn.2024-01.io.nvlend:local r0
d1=$(on b1 lend borrow lender:$SID) || fail "b1 shared borrow"
d2=$(on b2 lend borrow lender:$SID) || fail "b2 shared borrow"
dd if="$T/pattern" of="$d1" bs=1M count=1 oflag=direct status=none || fail "shared write"
cmp <(dd if="$d2" bs=1M count=1 iflag=direct status=none) <(head -c 1M "$T/pattern") ||
	fail "b2 does not see b1's write on the shared device"
assert_contains "$(on lender lend list | grep "lender:$SID")" "borrowed by"
on b1 lend return lender:$SID >/dev/null || fail "b1 shared return"
on b2 lend return lender:$SID >/dev/null || fail "b2 shared return"
# a bdev used locally is refused
on lender bdev create ram r1 8M >/dev/null
on lender subsystem add-ns nqn.2024-01.io.nvlend:local r1 >/dev/null || fail "add-ns r1"
on lender lend add r1 >/dev/null
out=$(on lender lend available $((SID + 1)) 2>&1) && fail "available on a bdev in use"
assert_contains "$out" "in use"

log "a block device: refused while mounted, held O_EXCL while lent, mountable again after"
truncate -s 32M "$T/blk.img"
bdev=$(losetup -f --show "$T/blk.img") || fail "losetup"
on_exit "losetup -d $bdev"
mkfs.ext4 -q -F "$bdev" >/dev/null 2>&1 || fail "mkfs on $bdev"
bmnt=$(mkmnt bm)
mount "$bdev" "$bmnt" || fail "mount $bdev"
echo lent-fs > "$bmnt/hello" && sync
on lender lend add "$bdev" >/dev/null || fail "add $bdev"
BID=$(on lender --json lend list | /usr/bin/python3 -c 'import json,sys; print([o["id"] for o in json.load(sys.stdin)["offers"] if o["kind"]=="blockdev"][0])')
out=$(on lender lend available $BID 2>&1) && fail "available while mounted"
assert_contains "$out" "mounted or held exclusively"
umount "$bmnt"
on lender lend available $BID >/dev/null || fail "available $bdev"
mount "$bdev" "$bmnt" 2>/dev/null && fail "mounted a lent block device locally"
d1=$(on b1 lend borrow lender:$BID) || fail "b1 borrows the block device"
mount -o ro,noload "$d1" "$bmnt" || fail "mount the borrowed block device"
assert_eq "$(cat "$bmnt/hello")" "lent-fs" "file on the borrowed device"
umount "$bmnt"
on b1 lend return lender:$BID >/dev/null || fail "return the block device"
on lender lend unavailable $BID >/dev/null || fail "unavailable $bdev"
mount "$bdev" "$bmnt" || fail "the block device is not back for local use"
umount "$bmnt"

log "a brick lent whole: borrowed, written, read back by the other borrower"
mkdir -p "$T/brick"
on lender rpc brick_create "{\"name\":\"bk\",\"fast_dir\":\"$T/brick\",\"capacity_blocks\":8}" >/dev/null ||
	fail "brick_create"
on lender lend add brick:bk >/dev/null || fail "add brick"
KID=$(on lender --json lend list | /usr/bin/python3 -c 'import json,sys; print([o["id"] for o in json.load(sys.stdin)["offers"] if o["kind"]=="brick"][0])')
on lender lend available $KID >/dev/null || fail "brick available"
assert_contains "$(on b1 lend list | grep "lender:$KID")" "16.0 MiB"
d1=$(on b1 lend borrow lender:$KID) || fail "b1 borrows the brick"
dd if="$T/pattern" of="$d1" bs=1M count=2 oflag=direct status=none || fail "write to the brick"
on b1 lend return lender:$KID >/dev/null || fail "return the brick"
d2=$(on b2 lend borrow lender:$KID) || fail "b2 borrows the brick"
cmp <(dd if="$d2" bs=1M count=2 iflag=direct status=none) <(head -c 2M "$T/pattern") ||
	fail "b2 does not read what b1 wrote to the brick"
on b2 lend return lender:$KID >/dev/null || fail "b2 returns the brick"
on lender lend unavailable $KID >/dev/null || fail "brick unavailable"
on lender rpc bdev_get_bdevs | grep_q "lend-$KID" && fail "the brick bdev outlived unavailable"

log "peer authentication: no key, another key, a readable key"
nvlend lend keygen "$T/other.key" >/dev/null
start_node intruder $N2 --cluster-key "$T/other.key"
NS[intruder]=$N2
out=$(on intruder lend connect $AL 2>&1) && fail "a node with another key connected"
assert_contains "$out" "not an allowed peer"
grep -q "not an allowed peer" "${LOG[lender]}" || fail "the lender did not log the refusal"
cp "$KEY" "$T/open.key" && chmod 644 "$T/open.key"
start_node loose $N2 --cluster-key "$T/open.key"
NS[loose]=$N2
out=$(on loose lend listen $A2 --port 4440 2>&1) && fail "listening with a world-readable key"
assert_contains "$out" "chmod 600"
pass
