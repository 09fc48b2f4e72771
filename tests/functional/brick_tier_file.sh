#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Memory brick with its slow tier in one file (slow_file): a sparse file made
# by truncate, a fast tier 4x smaller than the capacity. Allocate, fill and
# unmap every block, map each again and verify it; then SIGKILL the daemon,
# restart it from its saved configuration and verify list() and every
# block's content again. Also: the file is locked against a second brick,
# and a file too small or of another format is refused untouched.
# timeout: 120
source "$(dirname "$0")/common.sh"

HELPER=$BUILD/tests/helpers/brick_test
[ -x "$HELPER" ] || fail "missing $HELPER (make tests)"
start_nvlendd
uri="brick+shm://$T/tf.sock?name=tf"
truncate -s 64M "$T/slow.img" || fail "truncate"
nvlend brick create tf --fast "$T/fast" --slow-file "$T/slow.img" --capacity 32 \
	--fast-blocks 8 >/dev/null || fail "create"
nvlend brick listen tf shm "$T/tf.sock" || fail "listen"
nvlend save-config -o "$T/cfg.json" || fail "save-config"
grep -q '"slow_file"' "$T/cfg.json" || fail "save_config lacks slow_file: $(cat "$T/cfg.json")"
if grep -q '"slow_dir"' "$T/cfg.json"; then fail "save_config has a slow_dir"; fi

"$HELPER" tier "$uri" 32 || fail "tiering over a slow file"
show=$(nvlend --json brick list tf)
assert_eq "$(echo "$show" | json_get '[0]["slow_file"]')" "$T/slow.img" "slow_file"
assert_eq "$(echo "$show" | json_get '[0]["slow_file_slots"]')" 31 "slots of a 64 MiB file"
nslow=$(echo "$show" | json_get '[0]["slow_tier_blocks"]')
[ "$(echo "$show" | json_get '[0]["fast_tier_blocks"]')" -le 8 ] || fail "over budget: $show"
[ "$nslow" -ge 24 ] || fail "slow tier: $show"
assert_eq "$(echo "$show" | json_get '[0]["slow_file_free_slots"]')" $((31 - nslow)) "free slots"
[ "$(echo "$show" | json_get '[0]["stats"]["fetches"]')" -ge 48 ] || fail "fetches: $show"
[ "$(head -c 8 "$T/slow.img")" = NVLBSLF1 ] || fail "no slot file header"
# the data lives in the file, not in a directory
[ "$(find "$T" -name 'blk-*' | wc -l)" = "$(echo "$show" | json_get '[0]["fast_tier_blocks"]')" ] ||
	fail "block files outside the fast tier"

# clean errors: locked by the live brick, too small, another format
out=$(nvlend brick create t2 --fast "$T/fast2" --slow-file "$T/slow.img" --capacity 4 \
	--fast-blocks 2 2>&1) && fail "a second brick on a locked slow file"
assert_contains "$out" "in use"
truncate -s 5M "$T/small.img"
out=$(nvlend brick create t3 --fast "$T/fast3" --slow-file "$T/small.img" --capacity 4 \
	--fast-blocks 2 2>&1) && fail "a slow file without enough slots"
assert_contains "$out" "too small"
truncate -s 64M "$T/other.img"
printf 'not a brick' | dd of="$T/other.img" conv=notrunc status=none
out=$(nvlend brick create t4 --fast "$T/fast4" --slow-file "$T/other.img" --capacity 4 \
	--fast-blocks 2 2>&1) && fail "a slow file of another format"
assert_contains "$out" "another format"
[ "$(head -c 11 "$T/other.img")" = "not a brick" ] || fail "a foreign file was overwritten"
out=$(nvlend brick create t5 --fast "$T/fast5" --slow "$T/s5" --slow-file "$T/slow.img" \
	--capacity 4 --fast-blocks 2 2>&1) && fail "--slow and --slow-file together"
assert_contains "$out" "mutually exclusive"

# crash: every acknowledged block is in list() with its content
kill9_nvlendd
NVLEND_SOCKET_OVERRIDE=$NVLEND_SOCKET start_nvlendd -c "$T/cfg.json"
show=$(nvlend --json brick list tf) || fail "no brick after restart"
assert_eq "$(echo "$show" | json_get '[0]["slow_file"]')" "$T/slow.img" "slow_file after restart"
"$HELPER" tier-verify "$uri" 32 || fail "blocks after SIGKILL and restart"
# and once more, after the verification moved blocks between the tiers again
kill9_nvlendd
NVLEND_SOCKET_OVERRIDE=$NVLEND_SOCKET start_nvlendd -c "$T/cfg.json"
"$HELPER" tier-verify "$uri" 32 || fail "blocks after a second SIGKILL"
# purge forgets the file's blocks: a new brick on it starts empty
nvlend brick delete tf --purge || fail "delete --purge"
nvlend brick create tf --fast "$T/fast" --slow-file "$T/slow.img" --capacity 32 \
	--fast-blocks 8 >/dev/null || fail "re-create after purge"
assert_eq "$(nvlend --json brick list tf | json_get '[0]["allocated_blocks"]')" 0 "blocks after purge"
pass
