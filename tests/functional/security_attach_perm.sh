#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Security item 1: an attached namespace belongs to the user who attached it.
#   - `nvlend attach --via fuse` as root: the state dir becomes 0700 and the
#     records 0600; even with the directory made world-readable again, user
#     nobody cannot open the FUSE file that backs the loop device, neither to
#     read nor to write (no allow_other; default_permissions; the open
#     handler checks the caller). Root still can, and data is intact.
#   - A non-root user's state dir /tmp/nvlend-UID, pre-created by another
#     user, is refused with a clear message, never used.
#   - A socket planted by another user at a user's default RPC socket path
#     (/tmp/nvlend-UID/nvlend.sock, and the old /tmp/nvlend-UID.sock) is not
#     talked to: the CLI refuses it, the planted server receives nothing.
# timeout: 90
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
source "$(dirname "$0")/attach_common.sh"
requires setpriv
attach_setup
chmod 0755 "$T" "$NVLEND_ATTACH_DIR"
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
start_nvlendd
shm_target disk 16M

dev=$(nvlend attach "$URI" --via fuse --name p1) || fail "attach"
assert_eq "$(stat -c %a "$NVLEND_ATTACH_DIR")" 700 "state dir mode"
assert_eq "$(stat -c %a "$NVLEND_ATTACH_DIR/p1.json")" 600 "record mode"
disk=$NVLEND_ATTACH_DIR/p1.disk
grep -q " $disk " /proc/self/mountinfo || fail "no FUSE mount on $disk"
grep " $disk " /proc/self/mountinfo | grep_q allow_other && fail "mounted with allow_other"
printf 'owner data' | dd of="$dev" bs=512 seek=0 conv=notrunc,fsync status=none || fail "root write"
# the directory alone must not be the only guard
chmod 0755 "$NVLEND_ATTACH_DIR"
if nobody dd if=/dev/zero of="$disk" bs=512 count=1 conv=notrunc status=none 2>"$T/w.err"; then
	fail "user nobody wrote to the attached namespace through $disk"
fi
log "nobody's write refused: $(cat "$T/w.err")"
if nobody dd if="$disk" of=/dev/null bs=512 count=1 status=none 2>"$T/r.err"; then
	fail "user nobody read the attached namespace through $disk"
fi
head -c 10 "$disk" | grep_q 'owner data' || fail "root cannot read its own attachment, or the data changed"
nvlend attachments | grep_q p1 || fail "attachments lost p1"
nvlend detach p1 || fail "detach"

log "a squatted /tmp/nvlend-UID is refused"
V=$((40000 + RANDOM % 20000))
sq=/tmp/nvlend-$V
rm -rf "$sq" "$sq.sock"
on_exit "rm -rf $sq $sq.sock"
nobody mkdir -m 0777 "$sq" || fail "squatter mkdir"
victim() { env -u XDG_RUNTIME_DIR -u NVLEND_ATTACH_DIR -u NVLEND_SOCKET \
	setpriv --reuid=$V --regid=$V --clear-groups "$@"; }
out=$(victim "$BIN/nvlend" attachments 2>&1) && fail "attachments used a squatted state dir: $out"
assert_contains "$out" "not a directory of this user" "refusal"
[ -z "$(ls -A "$sq")" ] || fail "something was created in the squatted dir: $(ls -A "$sq")"

log "a planted socket at the default RPC path is not talked to"
cat > "$T/plant.py" <<'PY'
import os, socket, sys, time
got = []
ss = []
for p in sys.argv[2:]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(p); os.chmod(p, 0o777); s.listen(4); s.settimeout(0.1); ss.append(s)
open(sys.argv[1], "w").write("ready\n")
end = time.time() + 8
while time.time() < end and not os.path.exists(sys.argv[1] + ".stop"):
    for s in ss:
        try:
            c, _ = s.accept(); c.settimeout(1)
            try: got.append(c.recv(4096))
            except OSError: got.append(b"(connected)")
        except OSError:
            pass
open(sys.argv[1], "w").write("received %d\n" % len(got))
PY
chmod 0644 "$T/plant.py"
touch "$T/plant.state"; chmod 0666 "$T/plant.state"
nobody /usr/bin/python3 "$T/plant.py" "$T/plant.state" "$sq/nvlend.sock" "$sq.sock" &
PP=$!
on_exit "kill $PP"
wait_until 5 grep -q ready "$T/plant.state" || fail "planted server did not start"
out=$(victim "$BIN/nvlend" status 2>&1) && fail "the CLI talked to a planted socket: $out"
log "CLI: $out"
assert_contains "$out" "not talking to" "refusal"
touch "$T/plant.state.stop"
wait $PP
assert_eq "$(cat "$T/plant.state")" "received 0" "planted server"
stop_nvlendd
pass
