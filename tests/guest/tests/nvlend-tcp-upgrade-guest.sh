# Guest half of tests/functional/daemon_upgrade_tcp_guest.sh: the stock Linux
# NVMe/TCP initiator (header and data digests) does fio write+verify rounds
# on /dev/nvme0n1 while the host upgrades nvlendd under it (/host/go tells
# the host fio runs; /host/upgrades-done says the host is finished). Then
# the kernel log must show no error recovery, reconnect, reset, timeout or
# I/O error. Prints "CHECK <name> ok" per step and GUEST_ALL_OK at the end.
set -u
. /host/env
A=10.0.2.2
fail() { echo "CHECK $1 FAIL: $2"; dmesg | grep -i nvme | tail -30; exit 1; }
ok() { echo "CHECK $1 ok"; }

modprobe nvme-tcp || fail modprobe "no nvme-tcp module"
# keep-alive 5 s and a short ctrl-loss timeout: a dropped connection would show
nvme connect -t tcp -a $A -s "$PORT" -n "$NQN" -g -G -k 5 -c 1 -l 30 || fail connect "rc $?"
i=0; while [ ! -b /dev/nvme0n1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
DEV=/dev/nvme0n1
[ -b $DEV ] || fail connect "no $DEV"
C=
for c in /sys/class/nvme/nvme*; do
  [ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$NQN" ] && C=$(basename "$c")
done
[ -n "$C" ] || fail connect "no controller of $NQN in sysfs"
cat /sys/class/nvme/$C/cntlid > /host/cntlid-before
ok connect
dmesg -c > /dev/null

touch /host/go
n=0
while :; do
  n=$((n + 1))
  # every round writes its 16 MiB (random order, 4-64 KiB: in-capsule and R2T
  # writes), then reads all of it back and checks it
  fio --name=r$n --filename=$DEV --direct=1 --ioengine=libaio --iodepth=16 --rw=randwrite \
      --bsrange=4k-64k --offset=$(( (n % 4) * 16 ))M --size=16M --verify=crc32c --do_verify=1 \
      --verify_fatal=1 > /tmp/fio$n 2>&1 || { tail -20 /tmp/fio$n; fail fio "round $n failed"; }
  grep -q "err= 0" /tmp/fio$n || { tail -20 /tmp/fio$n; fail fio "round $n reported errors"; }
  [ -e /host/upgrades-done ] && [ $n -ge 2 ] && break
  [ $n -ge 200 ] && fail fio "the host never finished"
done
echo "fio rounds: $n"
ok fio-verify
cat /sys/class/nvme/$C/cntlid > /host/cntlid-after
[ "$(cat /sys/class/nvme/$C/state)" = live ] || fail state "controller $(cat /sys/class/nvme/$C/state)"
dmesg > /host/dmesg.txt
if grep -i nvme /host/dmesg.txt | grep -iE "error recovery|reconnect|resetting|reset controller|I/O error|timeout|failed"; then
  fail dmesg "the kernel noticed the upgrades"
fi
ok dmesg-clean
nvme disconnect -n "$NQN" > /dev/null || fail disconnect "rc $?"
ok disconnect
echo GUEST_ALL_OK
