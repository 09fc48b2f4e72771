# Guest half of tests/functional/nvme_tcp_kernel.sh: the stock Linux NVMe/TCP
# initiator and nvme-cli against nvlendd on the host (10.0.2.2). Parameters
# come from /host/env (ports, NQNs); the host restarts the daemon when we
# touch /host/restart-now and answers with /host/restarted. Prints
# "CHECK <name> ok" per step and GUEST_ALL_OK at the end; stops at the first
# failure.
set -u
. /host/env
A=10.0.2.2
fail() { echo "CHECK $1 FAIL: $2"; dmesg | grep -i nvme | tail -20; exit 1; }
ok() { echo "CHECK $1 ok"; }
wait_file() { i=0; while [ ! -e "$1" ] && [ $i -lt "$2" ]; do sleep 0.2; i=$((i+1)); done; [ -e "$1" ]; }
ctrl_of() { # hostnqn -> nvmeX (a live controller of our subsystem)
  for c in /sys/class/nvme/nvme*; do
    [ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$NQN" ] || continue
    [ "$(cat "$c/hostnqn" 2>/dev/null)" = "$1" ] && { basename "$c"; return 0; }
  done
  return 1
}

modprobe nvme-tcp || fail modprobe "no nvme-tcp module"
MYNQN=$(cat /etc/nvme/hostnqn)

# 1. discovery, on the discovery listener and on the I/O listener
nvme discover -t tcp -a $A -s "$DPORT" > /tmp/disc1 2>&1 || { cat /tmp/disc1; fail discover "rc $?"; }
grep -q "subnqn: *$NQN" /tmp/disc1 || { cat /tmp/disc1; fail discover "subsystem not listed"; }
grep -q "trsvcid: *$PORT" /tmp/disc1 || { cat /tmp/disc1; fail discover "I/O port not listed"; }
grep -q "$HIDDEN" /tmp/disc1 && { cat /tmp/disc1; fail discover "a subsystem this host may not use is listed"; }
ok discover
nvme discover -t tcp -a $A -s "$PORT" > /tmp/disc2 2>&1 || { cat /tmp/disc2; fail discover-io-port "rc"; }
grep -q "subnqn: *$NQN" /tmp/disc2 || fail discover-io-port "subsystem not listed"
ok discover-io-port

# 2. a host that is not allowed is refused
if nvme connect -t tcp -a $A -s "$PORT" -n "$NQN" -q "$BADNQN" > /tmp/bad 2>&1; then
  fail refused-host "connect of $BADNQN succeeded"
fi
ok refused-host

# 3. connect with header and data digests, quick reconnect after a target restart
nvme connect -t tcp -a $A -s "$PORT" -n "$NQN" -g -G -c 1 -l 60 -i 2 || fail connect "rc $?"
C0=$(ctrl_of "$MYNQN") || fail connect "no controller in sysfs"
i=0; while [ ! -b /dev/nvme0n1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
DEV=/dev/nvme0n1
[ -b $DEV ] || fail connect "no $DEV"
nvme list | tee /tmp/list
grep -q "$SERIAL" /tmp/list || fail nvme-list "serial $SERIAL not listed"
ok connect
nvme id-ctrl /dev/$C0 | grep -E '^(sn|mn|subnqn|ioccsz|kas|cntrltype) ' 
[ "$(cat /sys/class/nvme/$C0/transport)" = tcp ] || fail connect "not tcp"

# 4. fio with crc32c verify at QD1 and QD32 (sizes small: emulated CPU)
fio --name=qd1 --filename=$DEV --direct=1 --ioengine=libaio --iodepth=1 --rw=randwrite \
    --bs=4k --size=4M --verify=crc32c --do_verify=1 --verify_fatal=1 > /tmp/fio1 2>&1 ||
  { tail -20 /tmp/fio1; fail fio-qd1 "fio failed"; }
grep -E 'err=' /tmp/fio1
ok fio-qd1
fio --name=qd32 --filename=$DEV --direct=1 --ioengine=libaio --iodepth=32 --rw=randrw \
    --bsrange=4k-128k --offset=8M --size=24M --verify=crc32c --do_verify=1 --verify_fatal=1 \
    > /tmp/fio32 2>&1 || { tail -20 /tmp/fio32; fail fio-qd32 "fio failed"; }
grep -E 'err=' /tmp/fio32
ok fio-qd32

# 5. a file system
mkfs.ext4 -q -F $DEV || fail mkfs "mkfs failed"
mkdir -p /mnt/t && mount -t ext4 $DEV /mnt/t || fail mount "mount failed"
dd if=/dev/urandom of=/tmp/blob bs=1M count=6 2>/dev/null
cp /tmp/blob /mnt/t/blob && sync && umount /mnt/t || fail copy "copy/umount failed"
mount -t ext4 $DEV /mnt/t && cmp /tmp/blob /mnt/t/blob || fail copy "file differs after remount"
umount /mnt/t
e2fsck -f -n $DEV > /tmp/fsck 2>&1 || { cat /tmp/fsck; fail fsck "e2fsck found errors"; }
ok filesystem

# 6. reservations through nvme-cli
nvme resv-register $DEV -n 1 --nrkey=0x1111 --rrega=0 || fail resv "register"
nvme resv-acquire $DEV -n 1 --crkey=0x1111 --rtype=1 --racqa=0 || fail resv "acquire"
# --eds: fabrics host identifiers are 128-bit; the 64-bit report is refused (as SPDK)
nvme resv-report $DEV -n 1 --eds > /tmp/rr 2>&1; cat /tmp/rr
nvme resv-report $DEV -n 1 > /tmp/rr64 2>&1 && fail resv "the 64-bit report was accepted"
grep -qi "rtype *: *1" /tmp/rr || fail resv "report does not show the write-exclusive reservation"
grep -qiE "rkey *: *(0x)?1111" /tmp/rr || fail resv "report does not show our key"
nvme resv-release $DEV -n 1 --crkey=0x1111 --rtype=1 --rrela=0 || fail resv "release"
nvme resv-register $DEV -n 1 --crkey=0x1111 --rrega=1 || fail resv "unregister"
ok reservations

# 7. the target restarts: the kernel reconnects, the data is still there
dd if=/dev/urandom of=/tmp/pat bs=1M count=2 2>/dev/null
dd if=/tmp/pat of=$DEV bs=1M seek=40 oflag=direct 2>/dev/null || fail restart "write"
touch /host/restart-now
wait_file /host/restarted 300 || fail restart "host did not restart the target"
i=0; while [ "$(cat /sys/class/nvme/$C0/state 2>/dev/null)" != live ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
[ "$(cat /sys/class/nvme/$C0/state)" = live ] || fail restart "controller not live again: $(cat /sys/class/nvme/$C0/state)"
dd if=$DEV of=/tmp/pat2 bs=1M skip=40 count=2 iflag=direct 2>/dev/null || fail restart "read after reconnect"
cmp /tmp/pat /tmp/pat2 || fail restart "data differs after the restart"
ok restart-reconnect

# 8. two more controllers (two more host NQNs) on the same namespace
# (nvme-cli 2.3 refuses a second connection to the same port as "already
# connected" whatever the host NQN, so these go to the kernel's fabrics
# device directly, as nvme-cli itself does)
fabrics_connect() {
  exec 3<>/dev/nvme-fabrics || return 1
  printf 'transport=tcp,traddr=%s,trsvcid=%s,nqn=%s,hostnqn=%s,hostid=%s,nr_io_queues=1' \
    $A "$PORT" "$NQN" "$1" "$2" >&3 || { exec 3>&-; return 1; }
  read -r line <&3; exec 3>&-
  echo "fabrics: $line"
}
fabrics_connect "$HOSTA" "$HOSTIDA" || fail two-hosts "connect A"
fabrics_connect "$HOSTB" "$HOSTIDB" || fail two-hosts "connect B"
CA=$(ctrl_of "$HOSTA") || fail two-hosts "no controller for A"
CB=$(ctrl_of "$HOSTB") || fail two-hosts "no controller for B"
touch /host/ctrls-up
wait_file /host/ctrls-checked 100 || fail two-hosts "host did not check the controllers"
[ "$(cat /host/ctrls-checked)" = ok ] || fail two-hosts "target view: $(cat /host/ctrls-checked)"
# A reserves (write exclusive); B may read but not write
printf 'B%.0s' $(seq 1 512) > /tmp/bblk
nvme resv-register /dev/$CA -n 1 --nrkey=0xa --rrega=0 2>/dev/null || fail two-hosts "A register"
nvme resv-acquire /dev/$CA -n 1 --crkey=0xa --rtype=1 --racqa=0 2>/dev/null || fail two-hosts "A acquire"
if nvme io-passthru /dev/$CB -n 1 -o 0x01 -l 512 -w -i /tmp/bblk --cdw10=8 > /tmp/wb 2>&1; then
  fail two-hosts "B wrote through A's write-exclusive reservation"
fi
cat /tmp/wb; grep -qi "reservation\|conflict\|0x83\|83" /tmp/wb || { cat /tmp/wb; fail two-hosts "B's write failed for another reason"; }
nvme io-passthru /dev/$CB -n 1 -o 0x02 -l 512 -r --cdw10=8 > /dev/null 2>&1 || fail two-hosts "B read"
nvme resv-release /dev/$CA -n 1 --crkey=0xa --rtype=1 --rrela=0 2>/dev/null || fail two-hosts "A release"
nvme io-passthru /dev/$CB -n 1 -o 0x01 -l 512 -w -i /tmp/bblk --cdw10=8 > /dev/null 2>&1 ||
  fail two-hosts "B write after release"
nvme resv-register /dev/$CA -n 1 --crkey=0xa --rrega=1 2>/dev/null || fail two-hosts "A unregister"
ok two-hosts-reservations

# 9. disconnect
nvme disconnect -n "$NQN" || fail disconnect "rc $?"
i=0; while ls /sys/class/nvme/ 2>/dev/null | grep -q nvme && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
ls /sys/class/nvme/ 2>/dev/null | grep -q nvme && fail disconnect "controllers left"
ok disconnect
echo GUEST_ALL_OK
