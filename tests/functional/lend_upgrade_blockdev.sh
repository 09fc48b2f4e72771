#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 90
#
# A lent block device across `nvlend upgrade` (issue 16, docs/lending.md):
# the lender holds a lent block device O_EXCL (nothing local may mount or
# claim it), and its old worker is still ending while the new one rebuilds
# the lend target. The old worker lets the hold go at the hand-over, and
# does not count as another user of the device, so the offer is available
# again after the upgrade (it stayed unavailable: "held exclusively"), its
# target serves again, and its peer listener is taken back from the store.
source "$(dirname "$0")/common.sh"
requires_root
requires losetup

truncate -s 64M "$T/disk.img"
LOOP=$(losetup -f --show "$T/disk.img") || skip "no loop device"
on_exit "losetup -d $LOOP"
nvlend lend keygen "$T/cluster.key" >/dev/null || fail "keygen"
start_nvlendd --state-dir "$T/state" --node-name ln --cluster-key "$T/cluster.key"
PP=$(free_port)
NP=$(free_port)
nvlend lend listen 127.0.0.1 --port "$PP" --nvme-port "$NP" --discovery-port none >/dev/null ||
	fail "lend listen"
nvlend lend add "$LOOP" >/dev/null || fail "lend add $LOOP"
nvlend lend available 1 >/dev/null || fail "lend available"
state() { nvlend --json lend list | json_get '["offers"][0]["state"]'; }
assert_eq "$(state)" "available" "offer before the upgrade"
# held: nothing local may claim it while it is lent
exec 9<"$LOOP"
/usr/bin/python3 -c "import os,sys; os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL)" "$LOOP" 2>/dev/null &&
	fail "an O_EXCL open of the lent device succeeded"
exec 9<&-

for round in 1 2; do
	out=$(nvlend upgrade 2>&1) || fail "upgrade $round: $out"
	wait_until 10 sh -c "[ \"\$(nvlend --json lend list | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"offers\"][0][\"state\"])')\" = available ]" ||
		fail "upgrade $round: the lent block device is not available again: $(nvlend lend list; grep 'lend' "$DAEMON_LOG" | tail -5)"
done
grep_q "stays unavailable" <"$DAEMON_LOG" && fail "$(grep 'stays unavailable' "$DAEMON_LOG")"
grep_q "listening again for peers on 127.0.0.1 port $PP (kept" <"$DAEMON_LOG" ||
	fail "the peer listener was not taken back from the store"
# still held O_EXCL by the new worker
/usr/bin/python3 -c "import os,sys; os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL)" "$LOOP" 2>/dev/null &&
	fail "the new worker does not hold the lent device"
# and its NVMe/TCP target serves (the discovery of its subsystem over it)
nvlend rpc nvmf_get_subsystems | grep_q "lend:ln:1" || fail "no lend target after the upgrade"
ss -ltn | grep_q ":$NP " || fail "the lend target's listener is gone"
pass
