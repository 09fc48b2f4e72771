#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# bash completion (contrib/completion/nvlend.bash): command words at every
# level, options from each command's --help, object names from the running
# daemon (bdevs, subsystem NQNs, bricks, vblk controllers, RPC methods),
# -s honoured, nvlendd/nvlend-perf options; make install puts it where
# bash-completion looks.
# timeout: 60
source "$(dirname "$0")/common.sh"
COMP=$TOP/contrib/completion/nvlend.bash
[ -f "$COMP" ] || fail "no $COMP"
bash -n "$COMP" || fail "syntax"

start_nvlendd
nvlend bdev create ram alpha 8M >/dev/null || fail "bdev"
nvlend bdev create ram beta 8M >/dev/null || fail "bdev"
nvlend subsystem create nqn.2026-01.io.nvlend.test:cmp >/dev/null || fail "subsystem"

# comp WORDS...: what completing the last word offers (sorted, one per line)
comp() {
	PATH=$BIN:$PATH bash -c '
		source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		case "$1" in nvlend) _nvlend ;; *) _nvlend_opts_only ;; esac
		printf "%s\n" "${COMPREPLY[@]}" | sort' _ "$COMP" "$@"
}
has() { grep -qxF -- "$2" <<<"$1" || fail "completing '$3' does not offer '$2': $(echo "$1" | tr '\n' ' ')"; }
hasnt() { grep -qxF -- "$2" <<<"$1" && fail "completing '$3' offers '$2'"; true; }

out=$(comp nvlend ""); has "$out" bdev "nvlend"; has "$out" subsystem "nvlend"; has "$out" attach "nvlend"
out=$(comp nvlend su); assert_eq "$out" subsystem "nvlend su"
out=$(comp nvlend bdev ""); has "$out" create "nvlend bdev"; has "$out" delete "nvlend bdev"; hasnt "$out" ram "nvlend bdev"
out=$(comp nvlend bdev create ""); has "$out" ram "nvlend bdev create"; has "$out" file "nvlend bdev create"
out=$(comp nvlend bdev create ram --); has "$out" --block-size "bdev create ram --"; has "$out" --uuid "bdev create ram --"
out=$(comp nvlend --); has "$out" --socket "nvlend --"; has "$out" --json "nvlend --"
out=$(comp nvlend bdev delete ""); has "$out" alpha "bdev delete"; has "$out" beta "bdev delete"
out=$(comp nvlend bdev delete a); assert_eq "$out" alpha "bdev delete a"
out=$(comp nvlend subsystem add-ns ""); has "$out" nqn.2026-01.io.nvlend.test:cmp "subsystem add-ns"
out=$(comp nvlend subsystem add-ns nqn.2026-01.io.nvlend.test:cmp ""); has "$out" beta "add-ns NQN"
out=$(comp nvlend rpc bdev_get); has "$out" bdev_get_bdevs "rpc bdev_get"
out=$(comp nvlend attach x --via ""); has "$out" fuse "attach --via"
# -s SOCKET selects the daemon that is asked
out=$(NVLEND_SOCKET=/nonexistent comp nvlend -s "$NVLEND_SOCKET" bdev delete ""); has "$out" alpha "-s SOCKET bdev delete"
out=$(NVLEND_SOCKET=/nonexistent comp nvlend bdev delete ""); [ -z "$out" ] || fail "names offered without a daemon: $out"
# the other programs
out=$(comp nvlendd --); has "$out" --config "nvlendd --"; has "$out" --spin-us "nvlendd --"
out=$(comp nvlend-perf --i); has "$out" --iodepth= "nvlend-perf --i"
# installed for bash-completion's lazy loader
make -s -C "$TOP" install PREFIX="$T/prefix" >"$T/install.log" 2>&1 || { cat "$T/install.log" >&2; fail "make install"; }
for n in nvlend nvlendd nvlend-perf; do
	[ -e "$T/prefix/share/bash-completion/completions/$n" ] || fail "completion for $n not installed"
done
stop_nvlendd
pass
