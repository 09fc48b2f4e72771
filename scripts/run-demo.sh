#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# `make run`: the main job on an embedded default. Starts nvlendd with a
# default configuration (a RAM bdev), shows it through the CLI, exercises
# it, prints a summary, and stops the daemon (also on Ctrl-C or failure).
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
BIN=$BUILD/bin
W=$(mktemp -d /tmp/nvlend-demo.XXXXXX)
SOCK=$W/nvlend.sock
export NVLEND_SOCKET=$SOCK
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

cat >"$W/default.json" <<'JSON'
[
  {"method": "bdev_malloc_create", "params": {"name": "ram0", "num_blocks": 131072, "block_size": 512}}
]
JSON
step "starting nvlendd with the default configuration (a 64 MiB RAM bdev)"
"$BIN/nvlendd" -s "$SOCK" -c "$W/default.json" >"$W/nvlendd.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do "$BIN/nvlend" -t 1 status >/dev/null 2>&1 && break; sleep 0.05; done
"$BIN/nvlend" status
step "nvlend bdev list"
"$BIN/nvlend" bdev list
step "creating a file bdev on a 32 MiB temp file"
truncate -s 32M "$W/disk.img"
"$BIN/nvlend" bdev create file file0 "$W/disk.img"
"$BIN/nvlend" bdev list
step "saved configuration (nvlendd -c replays it)"
"$BIN/nvlend" save-config
step "stopping the daemon (SIGTERM drains in-flight I/O)"
kill "$pid"; wait "$pid" || true; pid=
tail -n 3 "$W/nvlendd.log"
printf '\n\033[1mdemo finished: daemon started, RAM and file bdevs served, config saved, clean stop.\033[0m\n'
