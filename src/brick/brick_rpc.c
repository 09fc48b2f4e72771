/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Brick RPCs (brick_create, brick_delete, brick_get_bricks,
 * brick_add_listener, brick_remove_listener) and the "brick" subsystem
 * (save_config, shutdown). Reactor 0, like everything of the brick.
 */
#include "app/app.h"
#include "brick/brick_internal.h"
#include "rpc/rpc.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- brick_create ------------------------------------------------------ */

struct rpc_brick_create {
	const char *name;
	const char *fast_dir;
	const char *slow_dir;
	const char *slow_file;
	uint64_t capacity_blocks;
	uint64_t fast_blocks;
};

static const struct nvl_rpc_param brick_create_params[] = {
	NVL_RPC_PARAM(struct rpc_brick_create, name, NVL_RPC_T_STR, true,
		      "brick name: 1..63 printable characters, no '/' or spaces"),
	NVL_RPC_PARAM(struct rpc_brick_create, fast_dir, NVL_RPC_T_STR, true,
		      "absolute path of the fast-tier directory (tmpfs, hugetlbfs, a DAX file "
		      "system or any file system); created if missing; blocks found there "
		      "are recovered"),
	NVL_RPC_PARAM(struct rpc_brick_create, slow_dir, NVL_RPC_T_STR, false,
		      "absolute path of the slow-tier directory (unmapped blocks move there "
		      "when the fast tier is full); fast_blocks < capacity_blocks needs it or "
		      "slow_file"),
	NVL_RPC_PARAM(struct rpc_brick_create, slow_file, NVL_RPC_T_STR, false,
		      "instead of slow_dir: absolute path of an existing file or block device "
		      "holding the slow tier as 2 MiB slots after a slot table; formatted when "
		      "its first 4 KiB are zero (e.g. a new sparse file), refused if it holds "
		      "another format; needs capacity_blocks - fast_blocks + 1 slots "
		      "(about 2 MiB + 512 B each, plus 4 KiB)"),
	NVL_RPC_PARAM(struct rpc_brick_create, capacity_blocks, NVL_RPC_T_U64, true,
		      "number of 2 MiB blocks the brick may hold (1..16777216)"),
	NVL_RPC_PARAM(struct rpc_brick_create, fast_blocks, NVL_RPC_T_U64, false,
		      "fast-tier budget in blocks (default: capacity_blocks)"),
};

static void
rpc_brick_create(struct nvl_rpc_request *req, struct rpc_brick_create *a)
{
	struct brick_opts o = {
		.name = a->name,
		.fast_dir = a->fast_dir,
		.slow_dir = a->slow_dir,
		.slow_file = a->slow_file,
		.capacity_blocks = a->capacity_blocks,
		.fast_blocks = a->fast_blocks,
	};
	struct brick *b;
	int rc;

	if (a->fast_dir[0] != '/' || (a->slow_dir && a->slow_dir[0] != '/') ||
	    (a->slow_file && a->slow_file[0] != '/')) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "tier paths must be absolute");
		return;
	}
	if (a->slow_dir && a->slow_file) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "slow_dir and slow_file are mutually exclusive");
		return;
	}
	if (a->capacity_blocks == 0 || a->capacity_blocks > BRICK_MAX_BLOCKS) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "capacity_blocks must be 1..%llu", (unsigned long long)BRICK_MAX_BLOCKS);
		return;
	}
	if (a->fast_blocks > a->capacity_blocks) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "fast_blocks cannot exceed capacity_blocks");
		return;
	}
	if (a->slow_dir == NULL && a->slow_file == NULL && a->fast_blocks &&
	    a->fast_blocks < a->capacity_blocks) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "fast_blocks < capacity_blocks needs a slow_dir or slow_file");
		return;
	}
	rc = brick_create(&o, &b);
	switch (rc) {
	case 0:
		nvl_rpc_result(req, json_string(b->name));
		return;
	case -EEXIST:
		nvl_rpc_error(req, -EEXIST, "brick '%s' already exists", a->name);
		return;
	case -EBUSY:
		nvl_rpc_error(req, -EBUSY, "the tier directories or slow file are in use by "
				     "another brick or daemon");
		return;
	case -ERANGE:
		nvl_rpc_error(req, -ERANGE, "slow_file is too small: it needs capacity_blocks - "
				      "fast_blocks + 1 slots of 2 MiB (see the daemon log)");
		return;
	case -EINVAL:
		nvl_rpc_error(req, -EINVAL, "invalid brick: a bad name, a tier directory made "
				      "as the other tier or given twice, or a slow_file that is not "
				      "a regular file or block device or holds another format (see "
				      "the daemon log)");
		return;
	case -ENOSPC:
		nvl_rpc_error(req, -ENOSPC, "the directories hold more blocks than "
				      "capacity_blocks (see the daemon log)");
		return;
	default:
		nvl_rpc_error_errno(req, rc, "cannot create brick");
		return;
	}
}
NVL_RPC_REGISTER("brick_create", rpc_brick_create, struct rpc_brick_create, brick_create_params,
		 NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Create a memory brick: a store of 2 MiB blocks on a fast-tier directory with "
		 "an optional slow tier (a directory, or slots in one file or block device). "
		 "Blocks already in the tiers are recovered (crash recovery). Returns the name.")

/* ---- brick_delete ------------------------------------------------------ */

struct rpc_brick_name {
	const char *name;
	bool purge;
};

static const struct nvl_rpc_param brick_delete_params[] = {
	NVL_RPC_PARAM(struct rpc_brick_name, name, NVL_RPC_T_STR, true, "brick name"),
	NVL_RPC_PARAM(struct rpc_brick_name, purge, NVL_RPC_T_BOOL, false,
		      "also delete every block file and forget the slow_file's blocks (its "
		      "header is zeroed) (default false: the blocks stay on disk "
		      "and a later brick_create of the same tiers recovers them)"),
};

static void
rpc_brick_delete(struct nvl_rpc_request *req, struct rpc_brick_name *a)
{
	struct brick *b = brick_find(a->name);
	struct brick_opts o = { 0 };
	char *fast = NULL, *slow = NULL, *slow_file = NULL;
	int rc = 0;

	if (b == NULL) {
		nvl_rpc_error(req, -ENOENT, "no brick '%s'", a->name);
		return;
	}
	if (b->users) {
		nvl_rpc_error(req, -EBUSY, "brick '%s' backs %u brick bdev(s): delete them first",
			      a->name, b->users);
		return;
	}
	if (a->purge) {
		fast = strdup(b->fast.path);
		slow = b->slow.path ? strdup(b->slow.path) : NULL;
		slow_file = b->sf.path ? strdup(b->sf.path) : NULL;
		if (fast == NULL || (b->slow.path && slow == NULL) ||
		    (b->sf.path && slow_file == NULL))
			rc = -ENOMEM;
	}
	brick_close(b); /* revokes every handle, closes its connections */
	if (a->purge) {
		o.fast_dir = fast;
		o.slow_dir = slow;
		o.slow_file = slow_file;
		if (rc == 0)
			rc = brick_purge_files(&o);
	}
	free(fast);
	free(slow);
	free(slow_file);
	if (rc < 0) {
		nvl_rpc_error_errno(req, rc, "brick closed, but purging its files failed");
		return;
	}
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("brick_delete", rpc_brick_delete, struct rpc_brick_name, brick_delete_params,
		 NVL_RPC_RUNTIME,
		 "Delete a brick: revoke every handle, close its connections and listeners. "
		 "Refused while brick bdevs use it.")

/* ---- brick_get_bricks -------------------------------------------------- */

struct rpc_brick_get {
	const char *name;
};

static const struct nvl_rpc_param brick_get_params[] = {
	NVL_RPC_PARAM(struct rpc_brick_get, name, NVL_RPC_T_STR, false,
		      "only this brick (default: all)"),
};

static const char *
persist_name(enum nvl_brick_persistence k)
{
	switch (k) {
	case NVL_BRICK_PERSIST_VOLATILE: return "volatile";
	case NVL_BRICK_PERSIST_FSYNC: return "fsync";
	case NVL_BRICK_PERSIST_PMEM: return "pmem";
	}
	return "?";
}

static json_t *
brick_to_json(struct brick *b)
{
	json_t *o, *ls = json_array();

	for (unsigned i = 0; i < b->nlisteners; i++) {
		struct brick_listener *l = b->listeners[i];
		json_t *j = json_pack("{s:s, s:s}", "trtype", l->trtype, "traddr", l->traddr);

		if (l->trsvcid[0])
			json_object_set_new(j, "trsvcid", json_string(l->trsvcid));
		json_array_append_new(ls, j);
	}
	o = json_pack("{s:s, s:s, s:s, s:s?, s:I, s:I, s:I, s:b, s:s}", "name", b->name,
		      "fast_dir", b->fast.path, "fast_fs", b->fast.fs, "slow_dir", b->slow.path,
		      "block_size", (json_int_t)BRICK_BLOCK_SIZE, "capacity_blocks",
		      (json_int_t)b->capacity, "fast_blocks", (json_int_t)b->fast_budget,
		      "volatile", b->fast.kind == NVL_BRICK_PERSIST_VOLATILE, "persistence",
		      persist_name(b->fast.kind));
	json_object_set_new(o, "fast_huge_pages", json_boolean(b->fast.huge));
	if (b->sf.path) {
		json_object_set_new(o, "slow_file", json_string(b->sf.path));
		json_object_set_new(o, "slow_file_slots", json_integer((json_int_t)b->sf.nslots));
		json_object_set_new(o, "slow_file_free_slots",
				    json_integer((json_int_t)b->sf.nfree));
	}
	json_object_set_new(o, "allocated_blocks", json_integer((json_int_t)b->blocks.count));
	json_object_set_new(o, "mapped_blocks", json_integer((json_int_t)b->nmapped));
	json_object_set_new(o, "fast_tier_blocks", json_integer((json_int_t)b->nfast));
	json_object_set_new(o, "slow_tier_blocks", json_integer((json_int_t)b->nslow));
	json_object_set_new(o, "handles", json_integer((json_int_t)b->keys.count));
	json_object_set_new(o, "connections", json_integer(brick_conn_count(b)));
	json_object_set_new(o, "bdevs", json_integer(b->users));
	{
		unsigned ready;
		uint64_t made, recycled;

		brick_pool_stats(b->pool, &ready, &made, &recycled);
		json_object_set_new(o, "free_store",
				    json_pack("{s:i, s:I, s:I}", "ready", (int)ready, "created",
					      (json_int_t)made, "recycled", (json_int_t)recycled));
	}
	json_object_set_new(
		o, "stats",
		json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "allocs",
			  (json_int_t)b->st.allocs, "frees", (json_int_t)b->st.frees, "maps",
			  (json_int_t)b->st.maps, "unmaps", (json_int_t)b->st.unmaps, "flushes",
			  (json_int_t)b->st.flushes, "bytes_flushed",
			  (json_int_t)b->st.bytes_flushed, "evictions",
			  (json_int_t)b->st.evictions, "fetches", (json_int_t)b->st.fetches,
			  "revocations", (json_int_t)b->st.revocations, "bytes_read",
			  (json_int_t)b->st.bytes_read, "bytes_written",
			  (json_int_t)b->st.bytes_written, "denied", (json_int_t)b->st.denied));
	json_object_set_new(o, "listeners", ls);
	return o;
}

static void
rpc_brick_get_bricks(struct nvl_rpc_request *req, struct rpc_brick_get *a)
{
	json_t *arr = json_array();

	if (a->name) {
		struct brick *b = brick_find(a->name);

		if (b == NULL) {
			json_decref(arr);
			nvl_rpc_error(req, -ENOENT, "no brick '%s'", a->name);
			return;
		}
		json_array_append_new(arr, brick_to_json(b));
	} else {
		for (struct brick *b = brick_first(); b; b = brick_next(b))
			json_array_append_new(arr, brick_to_json(b));
	}
	nvl_rpc_result(req, arr);
}
NVL_RPC_REGISTER("brick_get_bricks", rpc_brick_get_bricks, struct rpc_brick_get,
		 brick_get_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "List bricks: tiers (slow_file: its slots, free slots), persistence "
		 "(volatile/fsync/pmem), blocks allocated, mapped, in the fast and slow tier, "
		 "handles, connections, counters (flushes, bytes flushed, evictions, fetches, "
		 "revocations, requests denied by block ownership), listeners.")

/* ---- brick_get_blocks -------------------------------------------------- */

struct rpc_brick_blocks {
	const char *name;
	bool show_keys;
};

static const struct nvl_rpc_param brick_blocks_params[] = {
	NVL_RPC_PARAM(struct rpc_brick_blocks, name, NVL_RPC_T_STR, true, "brick name"),
	NVL_RPC_PARAM(struct rpc_brick_blocks, show_keys, NVL_RPC_T_BOOL, false,
		      "also each block's key (32 hex digits), to hand a block to a client"),
};

static int
blk_addr_cmp(const void *x, const void *y)
{
	const struct brick_block *a = *(struct brick_block *const *)x;
	const struct brick_block *b = *(struct brick_block *const *)y;

	return a->addr < b->addr ? -1 : a->addr > b->addr;
}

static json_t *
block_to_json(const struct brick_block *blk, bool show_keys)
{
	static const char *const states[] = { [NVL_BRICK_EXT_FAST] = "fast",
					      [NVL_BRICK_EXT_SLOW] = "slow",
					      [NVL_BRICK_EXT_MAPPED] = "mapped" };
	const struct brick_acl *a = &blk->acl;
	char addr[24], key[2 * NVL_BRICK_KEY_SIZE + 1];
	json_t *owner, *o;

	snprintf(addr, sizeof(addr), "0x%" PRIx64, blk->addr);
	owner = json_pack("{s:s, s:b}", "name", a->name, "identity", a->has_id);
	if (a->uid != BRICK_UID_NONE)
		json_object_set_new(owner, "uid", json_integer(a->uid));
	if (a->flags & BRICK_ACL_UID_OWNS)
		json_object_set_new(owner, "uid_owns", json_true());
	o = json_pack("{s:s, s:I, s:s, s:i, s:o}", "addr", addr, "addr_int",
		      (json_int_t)blk->addr, "state", states[brick_blk_state(blk)], "handles",
		      (int)blk->nhandles, "owner", owner);
	if (show_keys) {
		for (unsigned i = 0; i < NVL_BRICK_KEY_SIZE; i++)
			snprintf(key + 2 * i, 3, "%02x", a->key[i]);
		json_object_set_new(o, "key", json_string(key));
	}
	return o;
}

static void
rpc_brick_get_blocks(struct nvl_rpc_request *req, struct rpc_brick_blocks *a)
{
	struct brick *b = brick_find(a->name);
	struct brick_block **v, *blk;
	size_t n = 0, pos = 0;
	json_t *arr;

	if (b == NULL) {
		nvl_rpc_error(req, -ENOENT, "no brick '%s'", a->name);
		return;
	}
	v = malloc((b->blocks.count + 1) * sizeof(*v));
	arr = json_array();
	if (v == NULL || arr == NULL) {
		free(v);
		json_decref(arr);
		nvl_rpc_error(req, -ENOMEM, "out of memory");
		return;
	}
	while ((blk = brick_htab_next(&b->blocks, &pos)) != NULL)
		v[n++] = blk;
	qsort(v, n, sizeof(*v), blk_addr_cmp);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, block_to_json(v[i], a->show_keys));
	free(v);
	nvl_rpc_result(req, arr);
}
NVL_RPC_REGISTER("brick_get_blocks", rpc_brick_get_blocks, struct rpc_brick_blocks,
		 brick_blocks_params, NVL_RPC_RUNTIME,
		 "Every block of a brick, for operators: address, state (fast/slow/mapped), "
		 "handles, owner (the client name it declared, whether an identity owns it, the "
		 "uid of a local allocator, uid_owns for blocks recovered without an owner "
		 "record: local root owns them) and, with show_keys, the block key.")

/* ---- listeners --------------------------------------------------------- */

struct rpc_brick_listener {
	const char *name;
	const char *trtype;
	const char *traddr;
	const char *trsvcid;
};

static const struct nvl_rpc_param brick_listener_params[] = {
	NVL_RPC_PARAM(struct rpc_brick_listener, name, NVL_RPC_T_STR, true, "brick name"),
	NVL_RPC_PARAM(struct rpc_brick_listener, trtype, NVL_RPC_T_STR, true,
		      "\"SHM\" (local: Unix socket, block fds passed for one-sided mmap "
		      "access), \"TCP\" or \"RDMA\" (RDMA CM; maps are memory regions the "
		      "client reads and writes with one-sided RDMA)"),
	NVL_RPC_PARAM(struct rpc_brick_listener, traddr, NVL_RPC_T_STR, true,
		      "SHM: absolute path of the Unix socket; TCP: numeric IPv4/IPv6 address; "
		      "RDMA: numeric address an RDMA device owns"),
	NVL_RPC_PARAM(struct rpc_brick_listener, trsvcid, NVL_RPC_T_STR, false,
		      "TCP or RDMA port (required for TCP and RDMA)"),
};

static void
rpc_brick_add_listener(struct nvl_rpc_request *req, struct rpc_brick_listener *a)
{
	struct brick *b = brick_find(a->name);
	int rc;

	if (b == NULL) {
		nvl_rpc_error(req, -ENOENT, "no brick '%s'", a->name);
		return;
	}
	if (brick_transport_find(a->trtype) == NULL) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "trtype must be SHM, TCP or RDMA");
		return;
	}
	rc = brick_listener_add(b, a->trtype, a->traddr, a->trsvcid);
	if (rc == -EADDRINUSE)
		nvl_rpc_error(req, rc, "%s is in use by a live server", a->traddr);
	else if (rc == -EEXIST)
		nvl_rpc_error(req, rc, "brick '%s' already listens there (or a non-socket file "
				       "is in the way)", a->name);
	else if (rc == -EADDRNOTAVAIL && strcasecmp(a->trtype, "RDMA") == 0)
		nvl_rpc_error(req, rc, "no RDMA device has this address (%s)", a->traddr);
	else if (rc == -ENODEV && strcasecmp(a->trtype, "RDMA") == 0)
		nvl_rpc_error(req, rc, "no RDMA connection manager (rdma_ucm loaded? "
				       "/dev/infiniband/rdma_cm)");
	else if (rc < 0)
		nvl_rpc_error_errno(req, rc, "cannot add listener");
	else
		nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("brick_add_listener", rpc_brick_add_listener, struct rpc_brick_listener,
		 brick_listener_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Serve a brick on a transport address. Several bricks may share one address; "
		 "the client names the brick in its URI.")

static void
rpc_brick_remove_listener(struct nvl_rpc_request *req, struct rpc_brick_listener *a)
{
	struct brick *b = brick_find(a->name);
	int rc;

	if (b == NULL) {
		nvl_rpc_error(req, -ENOENT, "no brick '%s'", a->name);
		return;
	}
	rc = brick_listener_remove(b, a->trtype, a->traddr, a->trsvcid);
	if (rc < 0)
		nvl_rpc_error(req, rc, "brick '%s' does not listen on %s %s", a->name, a->trtype,
			      a->traddr);
	else
		nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("brick_remove_listener", rpc_brick_remove_listener, struct rpc_brick_listener,
		 brick_listener_params, NVL_RPC_RUNTIME,
		 "Stop serving a brick on an address (open connections stay until they close).")

/* ---- subsystem --------------------------------------------------------- */

static void
brick_write_config(json_t *calls)
{
	for (struct brick *b = brick_first(); b; b = brick_next(b)) {
		json_t *p = json_pack("{s:s, s:s, s:I, s:I}", "name", b->name, "fast_dir",
				      b->fast.path, "capacity_blocks", (json_int_t)b->capacity,
				      "fast_blocks", (json_int_t)b->fast_budget);

		if (b->slow.path)
			json_object_set_new(p, "slow_dir", json_string(b->slow.path));
		if (b->sf.path)
			json_object_set_new(p, "slow_file", json_string(b->sf.path));
		json_array_append_new(calls, json_pack("{s:s, s:o}", "method", "brick_create",
						       "params", p));
		for (unsigned i = 0; i < b->nlisteners; i++) {
			struct brick_listener *l = b->listeners[i];

			p = json_pack("{s:s, s:s, s:s}", "name", b->name, "trtype", l->trtype,
				      "traddr", l->traddr);
			if (l->trsvcid[0])
				json_object_set_new(p, "trsvcid", json_string(l->trsvcid));
			json_array_append_new(calls, json_pack("{s:s, s:o}", "method",
							       "brick_add_listener", "params", p));
		}
	}
}

static void
brick_subsys_fini(nvl_app_done_fn done)
{
	struct brick *b;

	/* Handles are revoked, connections closed; data stays in the tiers.
	 * Bricks still used by brick bdevs are freed when those go. */
	while ((b = brick_first()) != NULL)
		brick_close(b);
	done();
}

static struct nvl_subsystem g_brick_subsys = {
	.name = "brick",
	.order = 5, /* before "bdev" (10): brick bdevs need their brick on replay */
	.fini = brick_subsys_fini,
	.write_config = brick_write_config,
};
NVL_SUBSYSTEM_REGISTER(g_brick_subsys)
