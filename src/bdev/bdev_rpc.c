/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bdev RPCs, with SPDK's names and parameters:
 * bdev_malloc_create/delete, bdev_uring_create/delete, bdev_aio_create/delete,
 * bdev_get_bdevs, bdev_get_iostat; and the daemon's "bdev" subsystem
 * (save_config, and at shutdown the bdevs left once the services above
 * them stopped). Reactor 0.
 */
#include "bdev/bdev.h"
#include "app/app.h"
#include "rpc/rpc.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---- bdev_malloc_create ------------------------------------------------ */

struct rpc_malloc_create {
	const char *name;
	uint64_t num_blocks;
	uint32_t block_size;
	const char *uuid;
	uint32_t optimal_io_boundary;
	uint32_t physical_block_size;
	uint32_t md_size;
	bool md_interleave;
	uint32_t dif_type;
	bool dif_is_head_of_md;
};

static const struct nvl_rpc_param malloc_create_params[] = {
	NVL_RPC_PARAM(struct rpc_malloc_create, name, NVL_RPC_T_STR, false,
		      "bdev name (default: MallocN, the first free N)"),
	NVL_RPC_PARAM(struct rpc_malloc_create, num_blocks, NVL_RPC_T_U64, true,
		      "number of blocks"),
	NVL_RPC_PARAM(struct rpc_malloc_create, block_size, NVL_RPC_T_U32, true,
		      "block size in bytes: 512..65536, a power of two"),
	NVL_RPC_PARAM(struct rpc_malloc_create, uuid, NVL_RPC_T_STR, false,
		      "UUID (default: random)"),
	NVL_RPC_PARAM(struct rpc_malloc_create, optimal_io_boundary, NVL_RPC_T_U32, false,
		      "accepted for SPDK compatibility; ignored"),
	NVL_RPC_PARAM(struct rpc_malloc_create, physical_block_size, NVL_RPC_T_U32, false,
		      "accepted for SPDK compatibility; must be 0 or block_size"),
	NVL_RPC_PARAM(struct rpc_malloc_create, md_size, NVL_RPC_T_U32, false,
		      "metadata size: only 0 is supported"),
	NVL_RPC_PARAM(struct rpc_malloc_create, md_interleave, NVL_RPC_T_BOOL, false,
		      "accepted for SPDK compatibility (no metadata)"),
	NVL_RPC_PARAM(struct rpc_malloc_create, dif_type, NVL_RPC_T_U32, false,
		      "protection information type: only 0 is supported"),
	NVL_RPC_PARAM(struct rpc_malloc_create, dif_is_head_of_md, NVL_RPC_T_BOOL, false,
		      "accepted for SPDK compatibility (no protection information)"),
	NVL_RPC_PARAM_IGNORED("dif_pi_format", NVL_RPC_T_I64,
			      "SPDK: protection information format (no protection information here)"),
	NVL_RPC_PARAM_IGNORED("numa_id", NVL_RPC_T_I64,
			      "SPDK: NUMA node of the memory; here the first touch places it"),
};

static void
rpc_bdev_malloc_create(struct nvl_rpc_request *req, struct rpc_malloc_create *a)
{
	struct nvl_bdev_ram_opts o = { 0 };
	struct nvl_bdev *b;
	uint8_t uuid[16];
	char name[NVL_BDEV_NAME_MAX];
	int rc;

	if (a->md_size || a->dif_type) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "metadata and protection information are not supported");
		return;
	}
	if (a->physical_block_size && a->physical_block_size != a->block_size) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "physical_block_size must equal block_size");
		return;
	}
	if (a->block_size < 512 || a->block_size > 65536 || !NVL_IS_POW2(a->block_size)) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "block_size %u: must be a power of two from 512 to 65536",
			      a->block_size);
		return;
	}
	if (a->num_blocks == 0 || a->num_blocks > (1ULL << 40) / a->block_size) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "num_blocks %llu: size must be between one block and 1 TiB",
			      (unsigned long long)a->num_blocks);
		return;
	}
	if (a->uuid) {
		if (nvl_uuid_parse(a->uuid, uuid) < 0) {
			nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "invalid uuid '%s'", a->uuid);
			return;
		}
		o.uuid = uuid;
	}
	if (a->name == NULL) {
		for (unsigned i = 0;; i++) {
			snprintf(name, sizeof(name), "Malloc%u", i);
			if (nvl_bdev_get_by_name(name) == NULL)
				break;
		}
		o.name = name;
	} else {
		o.name = a->name;
	}
	o.num_blocks = a->num_blocks;
	o.block_size = a->block_size;
	rc = nvl_bdev_ram_create(&o, &b);
	if (rc == -EEXIST) {
		nvl_rpc_error(req, -EEXIST, "bdev '%s' already exists", o.name);
		return;
	}
	if (rc < 0) {
		nvl_rpc_error_errno(req, rc, "cannot create ram bdev");
		return;
	}
	nvl_rpc_result(req, json_string(b->name));
}
NVL_RPC_REGISTER("bdev_malloc_create", rpc_bdev_malloc_create, struct rpc_malloc_create,
		 malloc_create_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Create a RAM bdev (contents are lost when the daemon stops). Returns its name.")

/* ---- file bdevs -------------------------------------------------------- */

struct rpc_file_create {
	const char *name;
	const char *filename;
	uint32_t block_size;
	const char *uuid;
	bool readonly;
	bool fallocate;
	bool shared;
	const char *io_mode;
};

static const struct nvl_rpc_param uring_create_params[] = {
	NVL_RPC_PARAM(struct rpc_file_create, name, NVL_RPC_T_STR, true, "bdev name"),
	NVL_RPC_PARAM(struct rpc_file_create, filename, NVL_RPC_T_STR, true,
		      "existing regular file or block device"),
	NVL_RPC_PARAM(struct rpc_file_create, block_size, NVL_RPC_T_U32, false,
		      "block size in bytes (default: the device's logical block size, or the "
		      "file system's direct-I/O alignment)"),
	NVL_RPC_PARAM(struct rpc_file_create, uuid, NVL_RPC_T_STR, false,
		      "UUID (default: random)"),
	NVL_RPC_PARAM(struct rpc_file_create, readonly, NVL_RPC_T_BOOL, false,
		      "open read-only"),
	NVL_RPC_PARAM(struct rpc_file_create, shared, NVL_RPC_T_BOOL, false,
		      "nvlend: another bdev of this daemon may serve the same file if it is "
		      "shared too (default false: refused, EBUSY)"),
	NVL_RPC_PARAM(struct rpc_file_create, io_mode, NVL_RPC_T_STR, false,
		      "\"auto\" (default: direct I/O where possible, inline on tmpfs), "
		      "\"uring\" (always through io_uring) or \"buffered\""),
};

static const struct nvl_rpc_param aio_create_params[] = {
	NVL_RPC_PARAM(struct rpc_file_create, name, NVL_RPC_T_STR, true, "bdev name"),
	NVL_RPC_PARAM(struct rpc_file_create, filename, NVL_RPC_T_STR, true,
		      "existing regular file or block device"),
	NVL_RPC_PARAM(struct rpc_file_create, block_size, NVL_RPC_T_U32, false,
		      "block size in bytes (default: natural)"),
	NVL_RPC_PARAM(struct rpc_file_create, uuid, NVL_RPC_T_STR, false,
		      "UUID (default: random)"),
	NVL_RPC_PARAM(struct rpc_file_create, readonly, NVL_RPC_T_BOOL, false,
		      "open read-only"),
	NVL_RPC_PARAM(struct rpc_file_create, shared, NVL_RPC_T_BOOL, false,
		      "nvlend: another bdev of this daemon may serve the same file if it is "
		      "shared too (default false: refused, EBUSY)"),
	NVL_RPC_PARAM(struct rpc_file_create, fallocate, NVL_RPC_T_BOOL, false,
		      "accepted for SPDK compatibility (write-zeroes always uses fallocate "
		      "where the file system has it)"),
	NVL_RPC_PARAM_IGNORED("nowait", NVL_RPC_T_BOOL,
			      "SPDK: RWF_NOWAIT on block devices; io_uring here decides itself"),
};

static void
file_create_common(struct nvl_rpc_request *req, struct rpc_file_create *a, const char *method)
{
	struct nvl_bdev_file_opts o = { 0 };
	struct nvl_bdev *b;
	uint8_t uuid[16];
	int rc;

	if (nvl_bdev_get_by_name(a->name)) {
		nvl_rpc_error(req, -EEXIST, "bdev '%s' already exists", a->name);
		return;
	}
	if (a->uuid) {
		if (nvl_uuid_parse(a->uuid, uuid) < 0) {
			nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "invalid uuid '%s'", a->uuid);
			return;
		}
		o.uuid = uuid;
	}
	if (a->block_size && (a->block_size < 512 || a->block_size > 65536 ||
			      !NVL_IS_POW2(a->block_size))) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "block_size %u: must be a power of two from 512 to 65536",
			      a->block_size);
		return;
	}
	if (a->io_mode && strcmp(a->io_mode, "auto") && strcmp(a->io_mode, "uring") &&
	    strcmp(a->io_mode, "buffered")) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "io_mode must be \"auto\", \"uring\" or \"buffered\"");
		return;
	}
	o.name = a->name;
	o.filename = a->filename;
	o.block_size = a->block_size;
	o.read_only = a->readonly;
	o.shared = a->shared;
	o.rpc_method = method;
	o.io_mode = a->io_mode == NULL || strcmp(a->io_mode, "auto") == 0 ? NVL_BDEV_FILE_AUTO
		    : strcmp(a->io_mode, "uring") == 0			  ? NVL_BDEV_FILE_URING
									  : NVL_BDEV_FILE_BUFFERED;
	rc = nvl_bdev_file_create(&o, &b);
	if (rc < 0) {
		char what[600];

		snprintf(what, sizeof(what), "cannot create file bdev on %s", a->filename);
		nvl_rpc_error_errno(req, rc, what);
		return;
	}
	nvl_rpc_result(req, json_string(b->name));
}

static void
rpc_bdev_uring_create(struct nvl_rpc_request *req, struct rpc_file_create *a)
{
	file_create_common(req, a, "bdev_uring_create");
}
NVL_RPC_REGISTER("bdev_uring_create", rpc_bdev_uring_create, struct rpc_file_create,
		 uring_create_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Create a bdev on a file or block device, I/O through io_uring. Returns its "
		 "name.")

static void
rpc_bdev_aio_create(struct nvl_rpc_request *req, struct rpc_file_create *a)
{
	file_create_common(req, a, "bdev_aio_create");
}
NVL_RPC_REGISTER("bdev_aio_create", rpc_bdev_aio_create, struct rpc_file_create,
		 aio_create_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SPDK's name for a file bdev; served by the same io_uring backend as "
		 "bdev_uring_create. Returns its name.")

/* ---- delete ------------------------------------------------------------ */

struct rpc_bdev_name {
	const char *name;
};

static const struct nvl_rpc_param bdev_name_params[] = {
	NVL_RPC_PARAM(struct rpc_bdev_name, name, NVL_RPC_T_STR, true, "bdev name"),
};

static void
bdev_delete_typed(struct nvl_rpc_request *req, const char *name, const char *type)
{
	struct nvl_bdev *b = nvl_bdev_get_by_name(name);
	int rc;

	if (b == NULL) {
		nvl_rpc_error(req, -ENODEV, "no bdev named '%s'", name);
		return;
	}
	if (strcmp(b->ops->name, type) != 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "bdev '%s' is a %s bdev, not %s", name,
			      b->ops->name, type);
		return;
	}
	rc = nvl_bdev_unregister(b);
	if (rc == -EBUSY) {
		nvl_rpc_error(req, -EBUSY, "bdev '%s' is in use by %s", name, b->claimed_by);
		return;
	}
	if (rc < 0) {
		nvl_rpc_error_errno(req, rc, "cannot delete bdev");
		return;
	}
	nvl_rpc_result_bool(req, true);
}

static void
rpc_bdev_malloc_delete(struct nvl_rpc_request *req, struct rpc_bdev_name *a)
{
	bdev_delete_typed(req, a->name, "ram");
}
NVL_RPC_REGISTER("bdev_malloc_delete", rpc_bdev_malloc_delete, struct rpc_bdev_name,
		 bdev_name_params, NVL_RPC_RUNTIME, "Delete a RAM bdev (refused while in use).")

static void
rpc_bdev_uring_delete(struct nvl_rpc_request *req, struct rpc_bdev_name *a)
{
	bdev_delete_typed(req, a->name, "file");
}
NVL_RPC_REGISTER("bdev_uring_delete", rpc_bdev_uring_delete, struct rpc_bdev_name,
		 bdev_name_params, NVL_RPC_RUNTIME, "Delete a file bdev (refused while in use).")

/* SPDK's own name, not a deprecated alias: listed by rpc_get_methods */
static void
rpc_bdev_aio_delete(struct nvl_rpc_request *req, struct rpc_bdev_name *a)
{
	bdev_delete_typed(req, a->name, "file");
}
NVL_RPC_REGISTER("bdev_aio_delete", rpc_bdev_aio_delete, struct rpc_bdev_name, bdev_name_params,
		 NVL_RPC_RUNTIME,
		 "SPDK's name for deleting a file bdev (same as bdev_uring_delete).")

/* ---- queries ----------------------------------------------------------- */

struct rpc_get_bdevs {
	const char *name;
	uint32_t timeout;
	json_t *names; /* bdev_get_iostat only */
};

static const struct nvl_rpc_param get_bdevs_params[] = {
	NVL_RPC_PARAM(struct rpc_get_bdevs, name, NVL_RPC_T_STR, false,
		      "only this bdev (default: all)"),
	NVL_RPC_PARAM(struct rpc_get_bdevs, timeout, NVL_RPC_T_U32, false,
		      "accepted for SPDK compatibility (bdevs appear synchronously)"),
};

static void
rpc_bdev_get_bdevs(struct nvl_rpc_request *req, struct rpc_get_bdevs *a)
{
	json_t *arr = json_array();

	if (a->name) {
		struct nvl_bdev *b = nvl_bdev_get_by_name(a->name);

		if (b == NULL) {
			json_decref(arr);
			nvl_rpc_error(req, -ENODEV, "no bdev named '%s'", a->name);
			return;
		}
		json_array_append_new(arr, nvl_bdev_to_json(b));
	} else {
		for (struct nvl_bdev *b = nvl_bdev_first(); b; b = nvl_bdev_next(b))
			json_array_append_new(arr, nvl_bdev_to_json(b));
	}
	nvl_rpc_result(req, arr);
}
NVL_RPC_REGISTER("bdev_get_bdevs", rpc_bdev_get_bdevs, struct rpc_get_bdevs, get_bdevs_params,
		 NVL_RPC_RUNTIME, "List bdevs with geometry, UUID, users and capabilities.")

static json_t *
hist_json(const struct nvl_histogram *h)
{
	json_t *buckets = json_array();

	for (unsigned i = 0; i < NVL_HIST_BUCKETS; i++) {
		if (h->bucket[i])
			json_array_append_new(buckets,
					      json_pack("[I, I]",
							(json_int_t)nvl_histogram_bucket_start(i),
							(json_int_t)h->bucket[i]));
	}
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "count", (json_int_t)h->count,
			 "min_ns", (json_int_t)(h->count ? h->min : 0), "p50_ns",
			 (json_int_t)nvl_histogram_percentile(h, 50), "p99_ns",
			 (json_int_t)nvl_histogram_percentile(h, 99), "p999_ns",
			 (json_int_t)nvl_histogram_percentile(h, 99.9), "max_ns",
			 (json_int_t)h->max, "buckets", buckets);
}

static json_t *
iostat_json(struct nvl_bdev *b)
{
	struct nvl_bdev_stats s;
	json_t *o;

	nvl_bdev_get_stats(b, &s);
	/* SPDK's bdev_get_iostat names; one table so keys and values cannot drift apart */
	const struct {
		const char *key;
		uint64_t v;
	} f[] = {
		{ "bytes_read", s.bytes[NVL_BDEV_IO_READ] },
		{ "num_read_ops", s.ops[NVL_BDEV_IO_READ] },
		{ "bytes_written", s.bytes[NVL_BDEV_IO_WRITE] },
		{ "num_write_ops", s.ops[NVL_BDEV_IO_WRITE] },
		{ "bytes_unmapped", s.bytes[NVL_BDEV_IO_UNMAP] },
		{ "num_unmap_ops", s.ops[NVL_BDEV_IO_UNMAP] },
		{ "bytes_zeroed", s.bytes[NVL_BDEV_IO_WRITE_ZEROES] },
		{ "num_write_zeroes_ops", s.ops[NVL_BDEV_IO_WRITE_ZEROES] },
		{ "num_flush_ops", s.ops[NVL_BDEV_IO_FLUSH] },
		{ "read_latency_ticks", s.lat_ns[NVL_BDEV_IO_READ] },
		{ "max_read_latency_ticks", s.lat_max_ns[NVL_BDEV_IO_READ] },
		{ "write_latency_ticks", s.lat_ns[NVL_BDEV_IO_WRITE] },
		{ "max_write_latency_ticks", s.lat_max_ns[NVL_BDEV_IO_WRITE] },
		{ "unmap_latency_ticks", s.lat_ns[NVL_BDEV_IO_UNMAP] },
		{ "write_zeroes_latency_ticks", s.lat_ns[NVL_BDEV_IO_WRITE_ZEROES] },
		{ "flush_latency_ticks", s.lat_ns[NVL_BDEV_IO_FLUSH] },
		{ "io_errors", s.errors },
		{ "queue_depth", s.inflight },
	};

	o = json_pack("{s:s}", "name", b->name);
	if (o == NULL)
		return NULL;
	for (size_t i = 0; i < NVL_ARRAY_SIZE(f); i++)
		json_object_set_new(o, f[i].key, json_integer((json_int_t)f[i].v));
	json_object_set_new(o, "latency_histogram",
			    json_pack("{s:o, s:o}", "read", hist_json(&s.hist_read), "write",
				      hist_json(&s.hist_write)));
	return o;
}

/* bdev_get_iostat: bdev_get_bdevs' parameters and SPDK's own */
static const struct nvl_rpc_param get_iostat_params[] = {
	NVL_RPC_PARAM(struct rpc_get_bdevs, name, NVL_RPC_T_STR, false,
		      "only this bdev (default: all)"),
	NVL_RPC_PARAM(struct rpc_get_bdevs, timeout, NVL_RPC_T_U32, false,
		      "accepted for SPDK compatibility (bdevs appear synchronously)", NVL_RPC_IGNORED),
	NVL_RPC_PARAM(struct rpc_get_bdevs, names, NVL_RPC_T_ARRAY, false,
		      "only these bdevs (SPDK v24.09+; with name: refused)"),
	NVL_RPC_PARAM_IGNORED("per_channel", NVL_RPC_T_BOOL,
			      "SPDK: statistics per I/O channel; here per bdev only"),
	NVL_RPC_PARAM_IGNORED("reset_mode", NVL_RPC_T_STR,
			      "SPDK: reset the counters after reading (all, maxmin); here they are "
			      "never reset"),
};

static void
rpc_bdev_get_iostat(struct nvl_rpc_request *req, struct rpc_get_bdevs *a)
{
	json_t *arr = json_array();

	if (a->name && a->names) {
		json_decref(arr);
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "name and names are exclusive");
		return;
	}
	if (a->names) {
		size_t i;
		json_t *v;

		json_array_foreach(a->names, i, v) {
			struct nvl_bdev *b = json_is_string(v)
						     ? nvl_bdev_get_by_name(json_string_value(v))
						     : NULL;

			if (b == NULL) {
				json_decref(arr);
				nvl_rpc_error(req, -ENODEV, "no bdev named %s",
					      json_is_string(v) ? json_string_value(v) : "(not a string)");
				return;
			}
			json_array_append_new(arr, iostat_json(b));
		}
	} else if (a->name) {
		struct nvl_bdev *b = nvl_bdev_get_by_name(a->name);

		if (b == NULL) {
			json_decref(arr);
			nvl_rpc_error(req, -ENODEV, "no bdev named '%s'", a->name);
			return;
		}
		json_array_append_new(arr, iostat_json(b));
	} else {
		for (struct nvl_bdev *b = nvl_bdev_first(); b; b = nvl_bdev_next(b))
			json_array_append_new(arr, iostat_json(b));
	}
	nvl_rpc_result(req, json_pack("{s:I, s:I, s:o}", "tick_rate", (json_int_t)1000000000,
				      "ticks", (json_int_t)nvl_now_ns(), "bdevs", arr));
}
NVL_RPC_REGISTER("bdev_get_iostat", rpc_bdev_get_iostat, struct rpc_get_bdevs,
		 get_iostat_params, NVL_RPC_RUNTIME,
		 "I/O statistics per bdev: operations, bytes, errors, latency (ticks are "
		 "nanoseconds; tick_rate 1e9) and a read/write latency histogram.")

/* ---- the "bdev" subsystem ------------------------------------------------- */

static void
bdev_subsys_write_config(json_t *calls)
{
	nvl_bdev_write_config(calls);
}

/* Higher orders stop first: by now nothing above (nvmf, nbd, vhost) holds a bdev. */
static void
bdev_subsys_fini(nvl_app_done_fn done)
{
	nvl_bdev_fini();
	done();
}

static struct nvl_subsystem g_bdev_subsys = {
	.name = "bdev",
	.order = 10,
	.fini = bdev_subsys_fini,
	.write_config = bdev_subsys_write_config,
};
NVL_SUBSYSTEM_REGISTER(g_bdev_subsys)
