# Guest half of tests/functional/nvme_tcp_auth_guest.sh: the Linux 6.12
# NVMe/TCP initiator (CONFIG_NVME_HOST_AUTH, modules nvme-auth and
# nvme-keyring) and nvme-cli's --dhchap-secret / --dhchap-ctrl-secret against
# nvlendd's DH-HMAC-CHAP on the host (10.0.2.2). Keys and NQNs come from
# /host/env. Between phases the host narrows the hashes and DH groups it
# allows: we touch /host/want-N, it answers with /host/phase-N.
# Prints "CHECK <name> ok" per step and GUEST_ALL_OK at the end; stops at
# the first failure.
set -u
. /host/env
A=10.0.2.2
fail() { echo "CHECK $1 FAIL: $2"; dmesg | grep -iE 'nvme|auth' | tail -30; exit 1; }
ok() { echo "CHECK $1 ok"; }
wait_file() { i=0; while [ ! -e "$1" ] && [ $i -lt "$2" ]; do sleep 0.2; i=$((i+1)); done; [ -e "$1" ]; }
phase() { touch "/host/want-$1"; wait_file "/host/phase-$1" 150 || fail "phase-$1" "the host did not answer"; }
ctrl_of() { # hostnqn -> nvmeX (a live controller of our subsystem)
  for c in /sys/class/nvme/nvme*; do
    [ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$NQN" ] || continue
    [ "$(cat "$c/hostnqn" 2>/dev/null)" = "$1" ] && { basename "$c"; return 0; }
  done
  return 1
}
ns_of() { # nvmeX -> /dev/nvmeXnY
  i=0
  while [ $i -lt 100 ]; do
    for b in /sys/class/nvme/$1/nvme*n*; do
      [ -e "$b" ] && { echo "/dev/${b##*/}"; return 0; }
    done
    sleep 0.1; i=$((i+1))
  done
  return 1
}
connect() { # connect NAME HOSTNQN HOSTID [nvme connect options...]
  n=$1 h=$2 id=$3
  shift 3
  nvme connect -t tcp -a $A -s "$PORT" -n "$NQN" -q "$h" -I "$id" -i 2 -l 20 "$@" > "/tmp/$n" 2>&1
}
io_check() { # io_check NAME HOSTNQN: fio with verify on the namespace, then disconnect
  c=$(ctrl_of "$2") || fail "$1" "no controller in sysfs"
  dev=$(ns_of "$c") || fail "$1" "no namespace block device under $c"
  fio --name="$1" --filename="$dev" --direct=1 --ioengine=libaio --iodepth=8 --rw=randwrite \
      --bs=4k --size=4M --offset="$3" --verify=crc32c --do_verify=1 --verify_fatal=1 \
      > "/tmp/fio-$1" 2>&1 || { tail -20 "/tmp/fio-$1"; fail "$1" "fio failed"; }
  nvme disconnect -n "$NQN" > /dev/null 2>&1 || fail "$1" "disconnect"
}
no_ctrl() { # the host has no controller of our subsystem left
  for c in /sys/class/nvme/nvme*; do
    [ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$NQN" ] && return 1
  done
  return 0
}

modprobe nvme-tcp || fail modprobe "no nvme-tcp module"
for m in nvme_auth nvme_keyring; do
  grep -q "^$m " /proc/modules || fail modules "$m is not loaded with nvme-tcp"
done
uname -r
ok modules

# 1. host key only (nvme gen-dhchap-key made it), the target's default: the
#    strongest pair the kernel offers, SHA-512 with ffdhe8192
#    (-k 60: the kernel's first use of ffdhe8192 runs its crypto self-tests,
#    15 s under emulation; the controller allows a step the keep-alive
#    timeout, at least 30 s)
dmesg -c > /dev/null
connect auth-host "$HOSTA" "$HOSTIDA" -k 60 --dhchap-secret="$HKEY" ||
  { cat /tmp/auth-host; fail auth-host "connect with the right host key failed"; }
dmesg | grep -q "qid 0: authenticated with hash hmac(sha512) dhgroup ffdhe8192" ||
  fail auth-host "no 'authenticated with sha512/ffdhe8192' from the kernel"
io_check auth-host "$HOSTA" 0
ok auth-host

# 2. a wrong host key is refused
dmesg -c > /dev/null
if connect wrong-host "$HOSTA" "$HOSTIDA" --dhchap-secret="$WRONG"; then
  fail wrong-host "connect with a wrong host key succeeded"
fi
no_ctrl || fail wrong-host "a controller exists after the refusal"
dmesg | grep -iE "authentication failed|failure1|qid 0" | head -5
ok wrong-host

# 3. no key at all while the target requires one
if connect no-key "$HOSTA" "$HOSTIDA"; then
  fail no-key "connect without a key succeeded"
fi
no_ctrl || fail no-key "a controller exists after the refusal"
ok no-key

# 4. bidirectional, SHA-256 with the null DH group
phase 2
dmesg -c > /dev/null
connect bidir "$HOSTB" "$HOSTIDB" --dhchap-secret="$HKEY" --dhchap-ctrl-secret="$CKEY" ||
  { cat /tmp/bidir; fail bidir "bidirectional connect failed"; }
dmesg | grep -q "qid 0: authenticated with hash hmac(sha256) dhgroup null" ||
  fail bidir "no 'authenticated with sha256/null' from the kernel"
dmesg | grep -q "qid 0: controller authenticated" || fail bidir "the kernel did not authenticate the controller"
io_check bidir "$HOSTB" 8388608
ok bidir

# 5. a wrong controller key: the host refuses the controller
dmesg -c > /dev/null
if connect wrong-ctrl "$HOSTB" "$HOSTIDB" --dhchap-secret="$HKEY" --dhchap-ctrl-secret="$WRONG"; then
  fail wrong-ctrl "connect with a wrong controller key succeeded"
fi
no_ctrl || fail wrong-ctrl "a controller exists after the refusal"
dmesg | grep -q "controller authentication failed" || fail wrong-ctrl "the kernel did not report the controller's failure"
ok wrong-ctrl

# 6. bidirectional, SHA-384 with ffdhe3072
phase 3
dmesg -c > /dev/null
connect bidir-384 "$HOSTB" "$HOSTIDB" --dhchap-secret="$HKEY" --dhchap-ctrl-secret="$CKEY" ||
  { cat /tmp/bidir-384; fail bidir-384 "connect failed"; }
dmesg | grep -q "qid 0: authenticated with hash hmac(sha384) dhgroup ffdhe3072" ||
  fail bidir-384 "no 'authenticated with sha384/ffdhe3072' from the kernel"
io_check bidir-384 "$HOSTB" 16777216
ok bidir-384
echo GUEST_ALL_OK
