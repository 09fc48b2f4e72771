#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 420
# asan: no
#
# Discovery of lent devices by the stock Linux kernel (QEMU guest, Debian's
# kernel and nvme-cli; tests/guest/tests/nvlend-lend-guest.sh): a lender on
# this host offers two devices (one borrowed exclusively by another node,
# one available); `nvme discover` on the lender's discovery listener and on
# its NVMe/TCP port lists both offers; the guest, which borrowed neither,
# is refused when it connects. One boot.
source "$(dirname "$0")/common.sh"
requires ss
guest_prepare

PORT=$(free_port)
DPORT=$(free_port)
PPORT=$(free_port)
BPORT=$(free_port)
KEY=$T/cluster.key
nvlend lend keygen "$KEY" >/dev/null || fail keygen
truncate -s 32M "$T/d1.img" "$T/d2.img"
start_nvlendd --state-dir "$T/lender" --node-name lender --cluster-key "$KEY"
LSOCK=$NVLEND_SOCKET
nvlend lend listen 127.0.0.1 --port "$PPORT" --nvme-port "$PORT" --discovery-port "$DPORT" \
	>/dev/null || fail "lend listen"
nvlend lend add "$T/d1.img" >/dev/null && nvlend lend add "$T/d2.img" >/dev/null || fail add
nvlend lend available 1 >/dev/null && nvlend lend available 2 >/dev/null || fail available
# another node borrows offer 2 (no attach: the reservation and the lease are enough)
start_nvlendd --state-dir "$T/b1" --node-name b1 --cluster-key "$KEY"
nvlend lend listen 127.0.0.1 --port "$BPORT" --discovery-port none >/dev/null || fail "b1 listen"
nvlend lend connect "127.0.0.1:$PPORT" >/dev/null || fail connect
nvlend lend borrow lender:2 --no-attach >/dev/null || fail "b1 borrow"
assert_contains "$(nvlend -s "$LSOCK" lend list | grep lender:2)" "borrowed by b1"
OFFER1=$(nvlend -s "$LSOCK" --json lend list | json_get '["offers"][0]["nqn"]')
OFFER2=$(nvlend -s "$LSOCK" --json lend list | json_get '["offers"][1]["nqn"]')

S=$T/share
mkdir -p "$S"
cat > "$S/env" <<EOT
PORT=$PORT
DPORT=$DPORT
OFFER1=$OFFER1
OFFER2=$OFFER2
EOT
guest_run -t 360 -s "$S" -f "$GUEST_TOOLS/tests/nvlend-lend-guest.sh" > "$T/guest.log" 2>&1
grc=$?
cat "$T/guest.log"
[ $grc = 0 ] || fail "guest script failed (status $grc)"
grep -q GUEST_ALL_OK "$T/guest.log" || fail "guest did not finish"
for c in discover discover-io-port not-lent; do
	grep -q "CHECK $c ok" "$T/guest.log" || fail "check $c missing"
done
nvlend lend return lender:2 >/dev/null || fail "b1 return"
pass
