#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The CLI a new operator meets (first-hour issue, items 5, 7, 8):
#   - every state-changing command says what it did in one line, and with
#     --json prints the object (never nothing);
#   - subsystem remove-ns / remove-listener / remove-host, add-ns --ptpl-file;
#   - bdev delete of a bdev it does not own names the command that does; of a
#     bdev in use names the user (an NBD export too);
#   - "did you mean" for commands, options and RPC methods; a missing option
#     value is named; --readonly is accepted with a hint (--read-only);
#   - brick list lists the daemon's bricks, brick extents a client's blocks;
#   - bdev iostat --interval prints rates per interval;
#   - nvme attach/list/detach import controllers without raw RPC.
# timeout: 90
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
cd "$T" || fail "cd"
start_nvlendd
Q=nqn.2026-01.io.nvlend.test:ux

# one line per change, --json never empty
assert_eq "$(nvlend bdev create ram r0 8M)" "created bdev r0: 8.0 MiB (16384 x 512-byte blocks) in RAM" "bdev create"
assert_eq "$(nvlend subsystem create $Q --allow-any-host)" "created subsystem $Q (any host may connect)" "subsystem create"
assert_eq "$(nvlend subsystem add-ns $Q r0 --ptpl-file ptpl.json)" \
	"added namespace 1 (bdev r0) to $Q; reservations persist in $PWD/ptpl.json" "add-ns --ptpl-file"
rpc nvmf_get_subsystems | grep_q "\"ptpl_file\": \"$PWD/ptpl.json\"" ||
	grep -q ptpl.json <(nvlend save-config) || fail "ptpl file not kept"
assert_eq "$(nvlend subsystem add-listener $Q shm "$T/ux.sock")" "$Q listens on SHM $T/ux.sock" "add-listener"
assert_eq "$(nvlend --json subsystem add-host $Q nqn.2026-01.io.nvlend.test:h1 | json_get '["nqn"]')" "$Q" "add-host --json"
nvlend subsystem list | grep_q "nqn.2026-01.io.nvlend.test:ux .*1:r0" || fail "list"
assert_eq "$(nvlend subsystem remove-listener $Q shm "$T/ux.sock")" "$Q no longer listens on SHM $T/ux.sock" "remove-listener"
assert_eq "$(nvlend subsystem remove-host $Q nqn.2026-01.io.nvlend.test:h1)" \
	"host nqn.2026-01.io.nvlend.test:h1 may no longer connect to $Q" "remove-host"
# bdev in use: the error names the user
out=$(nvlend bdev delete r0 2>&1) && fail "deleted a bdev in use"
assert_contains "$out" "namespace 1 of $Q" "bdev delete refusal"
assert_eq "$(nvlend subsystem remove-ns $Q 1)" "removed namespace 1 from $Q (its bdev is free)" "remove-ns"
port=$(free_port)
assert_contains "$(nvlend nbd start --port "$port")" "NBD server listening on 127.0.0.1 port $port" "nbd start"
assert_eq "$(nvlend nbd export add e0 r0 --read-only)" "exporting 'e0' over NBD: bdev r0, read-only" "export add"
out=$(nvlend bdev delete r0 2>&1) && fail "deleted an exported bdev"
assert_contains "$out" "nbd export 'e0'" "bdev delete refusal (NBD)"
assert_eq "$(nvlend --json nbd export remove e0 | json_get '["removed"]')" "True" "export remove --json"
assert_eq "$(nvlend nbd stop)" "NBD server stopped" "nbd stop"
assert_eq "$(nvlend log level 1)" "debug level 1 (debug)" "log level"
assert_eq "$(nvlend log level 0)" "debug level 0 (info and warnings only)" "log level 0"
assert_eq "$(nvlend --json log flag shm on | json_get '["enabled"]')" "True" "log flag --json"
nvlend save-config -o "$T/cfg.json" | grep_q "^configuration written to $T/cfg.json ([0-9]* calls" ||
	fail "save-config -o says nothing"
assert_eq "$(nvlend subsystem delete $Q)" "deleted subsystem $Q" "subsystem delete"
assert_eq "$(nvlend bdev delete r0)" "deleted ram bdev r0" "bdev delete"
# a bdev of another kind names the command that owns it
rpc bdev_malloc_create '{"name":"m1","num_blocks":64,"block_size":512}' >/dev/null
truncate -s 1M "$T/f.img"
out=$(nvlend bdev create file f0 "$T/f.img" --readonly 2>&1) || fail "--readonly refused"
assert_contains "$out" "spelled --read-only" "--readonly hint"
assert_contains "$out" "read-only" "read-only said"

# did you mean
out=$(nvlend bdev create ram x 1M --blok-size 4096 2>&1) && fail "bad option accepted"
assert_contains "$out" "did you mean '--block-size'" "option suggestion"
out=$(nvlend bdev create ram x 1M --uuid 2>&1) && fail "missing value accepted"
assert_contains "$out" "'--uuid' needs a value" "missing value"
out=$(nvlend bdev lst 2>&1) && fail "unknown command accepted"
assert_contains "$out" "did you mean 'list'" "command suggestion"
out=$(nvlend subsytem list 2>&1) && fail "unknown group accepted"
assert_contains "$out" "did you mean 'subsystem'" "group suggestion"
out=$(nvlend rpc bdev_get_bdev 2>&1) && fail "unknown method accepted"
assert_contains "$out" "Did you mean 'bdev_get_bdevs'" "method suggestion"

# brick: list = the daemon's bricks, extents = a client's view
assert_contains "$(nvlend brick list)" "no bricks" "brick list when empty"
nvlend brick create b0 --fast "$T/bf" --capacity 4 | grep_q "^created brick b0: 4 blocks of 2 MiB" || fail "brick create"
nvlend brick list | grep_q "^b0 " || fail "brick list"
nvlend brick listen b0 shm "$T/b.sock" | grep_q -F "URI brick+shm://$T/b.sock?name=b0" || fail "brick listen"
B="brick+shm://$T/b.sock?name=b0"
assert_eq "$(nvlend brick alloc "$B" 2M)" "allocated the 2 MiB block at 0x200000" "brick alloc"
nvlend brick extents "$B" | grep_q "^0x200000 " || fail "brick extents"
out=$(nvlend brick list "$B" 2>&1) && fail "brick list URI accepted"
assert_contains "$out" "nvlend brick extents" "brick list URI hint"
assert_contains "$(echo hello | nvlend brick write "$B" 2M)" "wrote 6 bytes at 0x200000 + 0, flushed" "brick write"

# nvme attach/list/detach: imported controllers without raw RPC
P=$(free_port) || fail "no free port"
nvlend subsystem create $Q:exp --allow-any-host >/dev/null || fail "create exp"
nvlend bdev create ram rx 4M >/dev/null || fail "bdev rx"
nvlend subsystem add-ns $Q:exp rx >/dev/null || fail "add-ns rx"
nvlend subsystem add-listener $Q:exp tcp 127.0.0.1 "$P" >/dev/null || fail "tcp listener"
assert_contains "$(nvlend nvme list)" "no imported controllers" "nvme list when empty"
assert_eq "$(nvlend nvme attach Imp "nvme+tcp://127.0.0.1:$P/$Q:exp" --queues 1 --ctrlr-loss -1)" \
	"imported Imp from nvme+tcp://127.0.0.1:$P/$Q:exp: bdevs Impn1" "nvme attach"
nvlend nvme list | grep_q "^Imp  *ready  *TCP 127.0.0.1:$P  *$Q:exp  *1  *0  *Impn1" || fail "nvme list: $(nvlend nvme list)"
nvlend bdev list | grep_q "^Impn1 " || fail "imported bdev not listed"
out=$(nvlend nvme attach Imp2 "nvme+tcp://127.0.0.1:$P/$Q:nope" 2>&1) && fail "attach to a wrong NQN"
assert_contains "$out" "no such subsystem" "nvme attach wrong NQN"
out=$(nvlend nvme attach Imp2 "nvme+tcp:/x" 2>&1)
assert_eq "$?" 2 "nvme attach bad URI exit"
assert_contains "$out" "invalid URI" "nvme attach bad URI"
assert_eq "$(nvlend nvme detach Imp)" "detached Imp (its bdevs are gone)" "nvme detach"
nvlend bdev list | grep_q "^Impn1 " && fail "imported bdev left after detach"
# the rest of SPDK's parameters: max_bdevs is honoured, priority and
# allow_unrecognized_csi accepted, host DH-HMAC-CHAP keys refused with the reason
nvlend bdev create ram rx2 4M >/dev/null || fail "bdev rx2"
nvlend subsystem add-ns $Q:exp rx2 >/dev/null || fail "add-ns rx2"
A="\"trtype\":\"tcp\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$P\",\"subnqn\":\"$Q:exp\""
assert_eq "$(rpc bdev_nvme_attach_controller "{\"name\":\"M\",$A,\"max_bdevs\":1,\"priority\":1,\"allow_unrecognized_csi\":true}" | json_get '.__len__()')" \
	1 "max_bdevs 1 of 2 namespaces"
nvlend save-config | grep_q '"max_bdevs": 1' || fail "max_bdevs not saved"
nvlend nvme detach M >/dev/null || fail "detach M"
# keys are keyring names (SPDK's): one that is not there is refused up front
out=$(rpc bdev_nvme_attach_controller "{\"name\":\"K\",$A,\"dhchap_key\":\"k1\"}" 2>&1) &&
	fail "an unknown dhchap_key accepted"
assert_contains "$out" "dhchap_key k1: no such key in the keyring" "dhchap_key refusal"

# iostat rates
out=$(nvlend bdev iostat --interval 1 --count 1) || fail "iostat --interval"
assert_contains "$out" "r/s" "iostat header"
assert_contains "$out" "m1" "iostat rows"
stop_nvlendd
pass
