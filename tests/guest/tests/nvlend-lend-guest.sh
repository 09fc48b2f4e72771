# Guest half of tests/functional/lend_guest.sh: a Linux host that is not an
# nvlend node finds a lender's offers with the kernel's NVMe/TCP discovery
# (nvme-cli) on the lender's discovery listener and on its NVMe/TCP port,
# and cannot connect to an offer it was not lent. Parameters in /host/env.
# Prints "CHECK <name> ok" per step and GUEST_ALL_OK at the end.
set -u
. /host/env
A=10.0.2.2
fail() { echo "CHECK $1 FAIL: $2"; dmesg | grep -i nvme | tail -20; exit 1; }
ok() { echo "CHECK $1 ok"; }

modprobe nvme-tcp || fail modprobe "no nvme-tcp module"
nvme discover -t tcp -a $A -s "$DPORT" > /tmp/disc1 2>&1 || { cat /tmp/disc1; fail discover "rc $?"; }
cat /tmp/disc1
grep -q "subnqn: *$OFFER1" /tmp/disc1 || fail discover "offer $OFFER1 not listed"
grep -q "subnqn: *$OFFER2" /tmp/disc1 || fail discover "offer $OFFER2 not listed"
grep -q "trsvcid: *$PORT" /tmp/disc1 || fail discover "the offers' NVMe/TCP port is not listed"
grep -q "subtype: *nvme subsystem" /tmp/disc1 || fail discover "no NVMe subsystem entry"
ok discover
nvme discover -t tcp -a $A -s "$PORT" > /tmp/disc2 2>&1 || { cat /tmp/disc2; fail discover-io-port "rc"; }
grep -q "subnqn: *$OFFER1" /tmp/disc2 || fail discover-io-port "offer not listed on the I/O port"
ok discover-io-port
if nvme connect -t tcp -a $A -s "$PORT" -n "$OFFER1" > /tmp/conn 2>&1; then
  fail not-lent "connected to an offer this host did not borrow"
fi
ok not-lent
echo GUEST_ALL_OK
