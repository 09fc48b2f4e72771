#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# timeout: 600
# asan: no
# nvlend attach's kernel mechanisms, which this host's kernel lacks, in a QEMU
# guest running Debian's 6.12 backports kernel (one boot): kernel NBD, ublk
# (second host, e2fsck, survives kill -9 + restart of nvlendd under a
# verifying fio), auto choice, read-only, nvlend's NVMe/TCP target read by the
# kernel initiator and by ublk over libnvlend, and the kernel NVMe/TCP
# initiator against the kernel's own nvmet-tcp target. nvlend's binaries are
# shared into the guest; nvlendd runs there (shm does not cross the VM
# boundary). Every check must pass. Skipped only where QEMU cannot run.
# (asan: no - the guest has no libasan.)
source "$(dirname "$0")/common.sh"
guest_prepare bpo
[ -x "$BIN/nvlend" ] && [ -x "$BIN/nvlendd" ] || fail "build $BUILD first"
guest_run -K bpo -t 540 -s "$BUILD" -f "$TESTS_DIR/guest/tests/nvlend-attach-guest.sh" \
	>"$T/guest.out" 2>"$T/guest.err"
rc=$?
cat "$T/guest.out" >&2
# (run-in-guest.sh notes; the console itself is printed at exit on failure)
cat "$T/guest.err" >&2
grep -q ATTACH_GUEST_DONE "$T/guest.out" || fail "the guest script did not finish (status $rc)"
grep -q ATTACH_FAIL "$T/guest.out" && fail "$(grep -c ATTACH_FAIL "$T/guest.out") check(s) failed in the guest"
[ $rc = 0 ] || fail "guest status $rc"
n=$(grep -c ATTACH_OK "$T/guest.out")
log "$n checks passed in the guest"
# every ATTACH_OK of the guest script, the nvlend TCP section included
[ "$n" -eq 22 ] || fail "$n checks passed, 22 expected"
pass
