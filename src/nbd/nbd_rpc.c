/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD server RPCs and the "nbd" subsystem (docs/nbd.md, docs/rpc.md):
 * nbd_server_start, nbd_server_stop, nbd_server_add_export,
 * nbd_server_remove_export, nbd_get_exports. The subsystem's fini stops
 * listening, drains every connection and closes the exports; write_config
 * emits nbd_server_start and one nbd_server_add_export per export.
 * Everything here runs on reactor 0.
 */
#include "app/app.h"
#include "nbd/nbd_internal.h"
#include "rpc/rpc.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NBD_DEFAULT_ADDRESS "127.0.0.1"
#define NBD_DEFAULT_MAX_CONNS 64

/* ---- nbd_server_start ------------------------------------------------------- */

struct rpc_server_start {
	const char *address;
	uint32_t port;
	const char *unix_socket;
	uint32_t max_connections;
	bool read_hold;
};

static const struct nvl_rpc_param server_start_params[] = {
	NVL_RPC_PARAM(struct rpc_server_start, address, NVL_RPC_T_STR, false,
		      "TCP listen address (default 127.0.0.1; \"::1\", \"0.0.0.0\", \"::\" allowed)"),
	NVL_RPC_PARAM(struct rpc_server_start, port, NVL_RPC_T_U32, false,
		      "TCP port (default 10809); 0 = no TCP listener (needs unix_socket)"),
	NVL_RPC_PARAM(struct rpc_server_start, unix_socket, NVL_RPC_T_STR, false,
		      "also listen on this Unix socket path"),
	NVL_RPC_PARAM(struct rpc_server_start, max_connections, NVL_RPC_T_U32, false,
		      "concurrent client connections (default 64); more are refused with "
		      "NBD_REP_ERR_POLICY"),
	NVL_RPC_PARAM(struct rpc_server_start, read_hold, NVL_RPC_T_BOOL, false,
		      "hold a connection's reads (8-32 us on a reactor that spins, one "
		      "sched_yield on one that does not) when that raises its request rate: a "
		      "deep-queue client gets its replies in batches; chosen per connection by "
		      "measurement; default true"),
};

static void
rpc_nbd_server_start(struct nvl_rpc_request *req, struct rpc_server_start *a)
{
	struct nbd_listen_opts o = { 0 };
	json_t *p = nvl_rpc_params(req);
	char err[256] = "";
	int rc;

	o.address = a->address ? a->address : NBD_DEFAULT_ADDRESS;
	o.port = NVL_NBD_DEFAULT_PORT;
	if (p && json_object_get(p, "port")) {
		if (a->port > 65535) {
			nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "port %u: must be 0..65535",
				      a->port);
			return;
		}
		o.port = (uint16_t)a->port;
	}
	o.unix_path = a->unix_socket;
	o.read_hold = p && json_object_get(p, "read_hold") ? a->read_hold : true;
	o.max_conns = a->max_connections ? a->max_connections : NBD_DEFAULT_MAX_CONNS;
	if (p && json_object_get(p, "max_connections") && a->max_connections == 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "max_connections must be at least 1");
		return;
	}
	rc = nbd_server_listen(&o, err, sizeof(err));
	if (rc < 0) {
		nvl_rpc_error(req, rc == -EINVAL || rc == -ENAMETOOLONG ? NVL_RPC_INVALID_PARAMS
				  : rc == -EALREADY || rc == -EBUSY ? NVL_RPC_INVALID_STATE
				  : rc,
			      "%s", err[0] ? err : strerror(-rc));
		return;
	}
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("nbd_server_start", rpc_nbd_server_start, struct rpc_server_start,
		 server_start_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Start the NBD server (fixed newstyle, structured replies) on a TCP address "
		 "and/or a Unix socket.")

/* ---- nbd_server_stop ------------------------------------------------------------ */

static void
server_stopped(void *arg)
{
	nvl_rpc_result_bool(arg, true);
}

static void
rpc_nbd_server_stop(struct nvl_rpc_request *req, void *args)
{
	int rc;

	(void)args;
	if (!nbd_server_is_listening()) {
		nvl_rpc_error(req, NVL_RPC_INVALID_STATE, "the NBD server is not running");
		return;
	}
	rc = nbd_server_stop(server_stopped, req);
	if (rc < 0)
		nvl_rpc_error_errno(req, rc, "cannot stop the NBD server");
}
NVL_RPC_REGISTER_NOARGS("nbd_server_stop", rpc_nbd_server_stop, NVL_RPC_RUNTIME,
			"Stop listening and disconnect every NBD client after its in-flight "
			"requests were answered. Exports stay defined.")

/* ---- nbd_server_add_export ---------------------------------------------------- */

struct rpc_add_export {
	const char *name;
	const char *bdev;
	bool read_only;
	const char *description;
};

static const struct nvl_rpc_param add_export_params[] = {
	NVL_RPC_PARAM(struct rpc_add_export, name, NVL_RPC_T_STR, true,
		      "export name clients ask for (1..255 bytes)"),
	NVL_RPC_PARAM(struct rpc_add_export, bdev, NVL_RPC_T_STR, true,
		      "bdev to export; held open (cannot be deleted) while exported"),
	NVL_RPC_PARAM(struct rpc_add_export, read_only, NVL_RPC_T_BOOL, false,
		      "refuse writes, trims and zeroing with NBD_EPERM (default false)"),
	NVL_RPC_PARAM(struct rpc_add_export, description, NVL_RPC_T_STR, false,
		      "text shown by NBD_OPT_LIST / NBD_INFO_DESCRIPTION (<= 1024 bytes)"),
};

static void
rpc_nbd_server_add_export(struct nvl_rpc_request *req, struct rpc_add_export *a)
{
	struct nbd_export_opts o = {
		.name = a->name,
		.bdev = a->bdev,
		.read_only = a->read_only,
		.description = a->description,
	};
	char err[256] = "";
	int rc;

	rc = nbd_export_add(&o, err, sizeof(err));
	if (rc < 0) {
		nvl_rpc_error(req, rc == -EINVAL ? NVL_RPC_INVALID_PARAMS : rc, "%s",
			      err[0] ? err : strerror(-rc));
		return;
	}
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("nbd_server_add_export", rpc_nbd_server_add_export, struct rpc_add_export,
		 add_export_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Export a bdev over NBD under a name. Works before nbd_server_start too.")

/* ---- nbd_server_remove_export ------------------------------------------------- */

struct rpc_remove_export {
	const char *name;
};

static const struct nvl_rpc_param remove_export_params[] = {
	NVL_RPC_PARAM(struct rpc_remove_export, name, NVL_RPC_T_STR, true, "export name"),
};

static void
export_removed(void *arg)
{
	nvl_rpc_result_bool(arg, true);
}

static void
rpc_nbd_server_remove_export(struct nvl_rpc_request *req, struct rpc_remove_export *a)
{
	int rc = nbd_export_remove(a->name, export_removed, req);

	if (rc == -ENOENT)
		nvl_rpc_error(req, -ENOENT, "export '%s' does not exist", a->name);
	else if (rc == -EALREADY)
		nvl_rpc_error(req, NVL_RPC_INVALID_STATE, "export '%s' is already being removed",
			      a->name);
	else if (rc < 0)
		nvl_rpc_error_errno(req, rc, "cannot remove the export");
}
NVL_RPC_REGISTER("nbd_server_remove_export", rpc_nbd_server_remove_export,
		 struct rpc_remove_export, remove_export_params, NVL_RPC_RUNTIME,
		 "Remove an export: new clients are refused, connected ones are disconnected "
		 "after their in-flight requests were answered, then the bdev is released. "
		 "Answers when that is done.")

/* ---- nbd_get_exports -------------------------------------------------------------- */

struct rpc_get_exports {
	const char *name;
};

static const struct nvl_rpc_param get_exports_params[] = {
	NVL_RPC_PARAM(struct rpc_get_exports, name, NVL_RPC_T_STR, false,
		      "only this export (default: all)"),
};

static json_t *
export_json(const struct nbd_export *e)
{
	struct nbd_stats s;

	nbd_export_stats(e, &s);
	return json_pack("{s:s, s:s, s:b, s:s, s:I, s:i, s:i, s:i, s:i, s:i, s:I, s:b, "
			 "s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
			 "name", e->name, "bdev_name", e->bdev_name, "read_only", e->read_only,
			 "description", e->description, "size_bytes", (json_int_t)e->size,
			 "block_size", (int)e->block_size, "preferred_block_size",
			 (int)e->pref_block, "max_payload_bytes", (int)e->max_block,
			 "transmission_flags", (int)e->tflags, "connections", (int)e->nconns,
			 "total_connections", (json_int_t)e->total_conns, "removing", e->removing,
			 "stats", "read_ops", (json_int_t)s.ops[NBD_ST_READ], "read_bytes",
			 (json_int_t)s.bytes[NBD_ST_READ], "write_ops",
			 (json_int_t)s.ops[NBD_ST_WRITE], "write_bytes",
			 (json_int_t)s.bytes[NBD_ST_WRITE], "flush_ops",
			 (json_int_t)s.ops[NBD_ST_FLUSH], "trim_ops", (json_int_t)s.ops[NBD_ST_TRIM],
			 "trim_bytes", (json_int_t)s.bytes[NBD_ST_TRIM], "write_zeroes_ops",
			 (json_int_t)s.ops[NBD_ST_WRITE_ZEROES], "write_zeroes_bytes",
			 (json_int_t)s.bytes[NBD_ST_WRITE_ZEROES], "cache_ops",
			 (json_int_t)s.ops[NBD_ST_CACHE], "cache_bytes",
			 (json_int_t)s.bytes[NBD_ST_CACHE], "block_status_ops",
			 (json_int_t)s.ops[NBD_ST_BLOCK_STATUS], "errors", (json_int_t)s.errors,
			 "held_reads", (json_int_t)s.held_reads);
}

static void
rpc_nbd_get_exports(struct nvl_rpc_request *req, struct rpc_get_exports *a)
{
	struct nbd_export *e;
	json_t *arr;

	if (a->name) {
		e = nbd_export_get(a->name);
		if (e == NULL) {
			nvl_rpc_error(req, -ENOENT, "export '%s' does not exist", a->name);
			return;
		}
		nvl_rpc_result(req, json_pack("[o]", export_json(e)));
		return;
	}
	arr = json_array();
	for (e = nbd_export_first(); e; e = nbd_export_next(e))
		json_array_append_new(arr, export_json(e));
	nvl_rpc_result(req, arr);
}
NVL_RPC_REGISTER("nbd_get_exports", rpc_nbd_get_exports, struct rpc_get_exports,
		 get_exports_params, NVL_RPC_RUNTIME,
		 "List NBD exports with geometry, connection counts and per-export I/O "
		 "counters (requests answered, bytes, errors).")

/* ---- nbd_get_server -------------------------------------------------------------------- */

static void
rpc_nbd_get_server(struct nvl_rpc_request *req, void *args)
{
	struct nbd_server_info i;
	json_t *o;

	(void)args;
	nbd_server_get_info(&i);
	o = json_pack("{s:b, s:b, s:i, s:I}", "running", i.listening, "stopping", i.stopping,
		      "connections", (int)i.conns, "refused_connections",
		      (json_int_t)i.refused_total);
	if (i.listening) {
		if (i.port) {
			json_object_set_new(o, "address", json_string(i.address));
			json_object_set_new(o, "port", json_integer(i.port));
		}
		if (i.unix_path[0])
			json_object_set_new(o, "unix_socket", json_string(i.unix_path));
		json_object_set_new(o, "max_connections", json_integer(i.max_conns));
		json_object_set_new(o, "read_hold", json_boolean(i.read_hold));
	}
	nvl_rpc_result(req, o);
}
NVL_RPC_REGISTER_NOARGS("nbd_get_server", rpc_nbd_get_server, NVL_RPC_RUNTIME,
			"State of the NBD server: listen addresses, limit, connections, "
			"connections refused at the limit so far.")

/* ---- subsystem ------------------------------------------------------------------------- */

static void
nbd_subsys_write_config(json_t *calls)
{
	struct nbd_server_info i;
	struct nbd_export *e;

	nbd_server_get_info(&i);
	if (i.listening) {
		json_t *p = json_pack("{s:i, s:b}", "max_connections", (int)i.max_conns,
				      "read_hold", i.read_hold);

		if (i.port) {
			json_object_set_new(p, "address", json_string(i.address));
			json_object_set_new(p, "port", json_integer(i.port));
		} else {
			json_object_set_new(p, "port", json_integer(0));
		}
		if (i.unix_path[0])
			json_object_set_new(p, "unix_socket", json_string(i.unix_path));
		json_array_append_new(calls,
				      json_pack("{s:s, s:o}", "method", "nbd_server_start", "params", p));
	}
	for (e = nbd_export_first(); e; e = nbd_export_next(e)) {
		json_t *p;

		if (e->removing)
			continue;
		p = json_pack("{s:s, s:s, s:b}", "name", e->name, "bdev", e->bdev_name, "read_only",
			      e->read_only);
		if (e->description[0])
			json_object_set_new(p, "description", json_string(e->description));
		json_array_append_new(calls, json_pack("{s:s, s:o}", "method", "nbd_server_add_export",
						       "params", p));
	}
}

static void
nbd_subsys_fini(nvl_app_done_fn done)
{
	nbd_server_fini(done);
}

static struct nvl_subsystem g_nbd_subsys = {
	.name = "nbd",
	.order = 40,
	.fini = nbd_subsys_fini,
	.write_config = nbd_subsys_write_config,
	.start = nbd_keep_restore,
};
NVL_SUBSYSTEM_REGISTER(g_nbd_subsys)
