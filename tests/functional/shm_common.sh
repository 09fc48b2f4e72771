# SPDX-License-Identifier: BSD-3-Clause
# Helpers for tests of the shm transport (source after common.sh).

# shm_target NAME SIZE [ADD_NS_EXTRA_JSON]: a RAM bdev NAME, subsystem
# nqn.2026-01.io.nvlend.test:NAME open to any host, namespace 1, SHM listener
# on $T/NAME.sock. Sets NQN, URI.
shm_target() {
	local name=$1 size=$2 extra=${3:-}
	NQN=nqn.2026-01.io.nvlend.test:$name
	nvlend bdev create ram "$name" "$size" >/dev/null || fail "bdev create $name"
	rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true}" >/dev/null ||
		fail "create subsystem"
	rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"$name\"$extra}}" \
		>/dev/null || fail "add ns"
	rpc nvmf_subsystem_add_listener \
		"{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"$T/$name.sock\"}}" \
		>/dev/null || fail "add listener"
	URI="nvme+shm://$T/$name.sock?nqn=$NQN"
}

# count_ctrlrs: controllers currently connected to $NQN
count_ctrlrs() {
	rpc nvmf_subsystem_get_controllers "{\"nqn\":\"$NQN\"}" | json_get '.__len__()'
}

# netns_new NAME: a network namespace removed at exit (skip if unavailable)
netns_new() {
	ip netns add "$1" 2>/dev/null || return 1
	on_exit "ip netns del $1"
	ip -n "$1" link set lo up
}
