/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-blk function RPCs and the "vhost_blk" subsystem.
 *
 * SNAP's names: virtio_blk_controller_create / _destroy / _list.
 * SPDK's names where they exist: vhost_create_blk_controller (SPDK's
 * parameters: ctrlr, dev_name, readonly, cpumask, packed_ring; the socket is
 * ctrlr in the daemon's vhost socket directory, nvlendd -S, by default its
 * working directory, as with SPDK), vhost_delete_controller,
 * vhost_get_controllers. Socket paths are stored absolute, so the saved
 * configuration recreates them in the same place from any directory.
 * save_config emits one virtio_blk_controller_create per controller, after
 * the bdevs (subsystem order), so `nvlendd -c` recreates the sockets before a
 * reconnecting QEMU looks for them. Shutdown lets every queue finish its
 * in-flight requests before the socket closes.
 *
 * Threading: reactor 0.
 */
#include "app/app.h"
#include "function/fn.h"
#include "function/vblk.h"
#include "rpc/rpc.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- virtio_blk_controller_create -------------------------------------------- */

struct rpc_vblk_create {
	const char *name;
	const char *bdev;
	const char *socket;
	uint16_t num_queues;
	uint16_t queue_size;
	bool read_only;
	bool force_in_order;
	bool suspended;
	int32_t pf_id;
	int32_t vf_id;
	int32_t vf_num_msix;
};

static const struct nvl_rpc_param vblk_create_params[] = {
	NVL_RPC_PARAM(struct rpc_vblk_create, name, NVL_RPC_T_STR, true,
		      "controller name (also the virtio-blk serial the guest reads, first 20 bytes)"),
	NVL_RPC_PARAM(struct rpc_vblk_create, bdev, NVL_RPC_T_STR, true, "bdev to serve"),
	NVL_RPC_PARAM(struct rpc_vblk_create, socket, NVL_RPC_T_STR, true,
		      "vhost-user socket path for the front-end (QEMU -chardev socket,path=...); "
		      "a relative path is taken inside the daemon's vhost socket directory "
		      "(nvlendd -S, default its working directory); a stale socket left by a "
		      "dead daemon is replaced"),
	NVL_RPC_PARAM(struct rpc_vblk_create, num_queues, NVL_RPC_T_U16, false,
		      "virtqueues, 1..32 (default 1); queue i runs on reactor (base + i) mod reactors"),
	NVL_RPC_PARAM(struct rpc_vblk_create, queue_size, NVL_RPC_T_U16, false,
		      "largest ring accepted, a power of two up to 1024 (default 256)"),
	NVL_RPC_PARAM(struct rpc_vblk_create, read_only, NVL_RPC_T_BOOL, false,
		      "offer VIRTIO_BLK_F_RO and refuse writes (default false)"),
	NVL_RPC_PARAM(struct rpc_vblk_create, force_in_order, NVL_RPC_T_BOOL, false,
		      "complete requests in submission order (default false); lets a restarted "
		      "daemon resume even when the front-end has no inflight region"),
	NVL_RPC_PARAM(struct rpc_vblk_create, suspended, NVL_RPC_T_BOOL, false,
		      "SNAP's: create it suspended: a front-end may connect and set up its "
		      "queues, none is served until virtio_blk_controller_resume (default false)"),
	NVL_RPC_PARAM(struct rpc_vblk_create, pf_id, NVL_RPC_T_I32, false,
		      "SNAP's: the virtio_blk PF it belongs to (function_create_pf; default -1: "
		      "outside the function tree)",
		      NVL_RPC_DEFAULT("-1"), NVL_RPC_RANGE(-1, 65535)),
	NVL_RPC_PARAM(struct rpc_vblk_create, vf_id, NVL_RPC_T_I32, false,
		      "SNAP's: VF index under pf_id (default -1: the PF's own)",
		      NVL_RPC_DEFAULT("-1"), NVL_RPC_RANGE(-1, NVL_FN_MAX_VFS - 1)),
	NVL_RPC_PARAM(struct rpc_vblk_create, vf_num_msix, NVL_RPC_T_I32, false,
		      "SNAP's: vectors taken from the PF's pool (default: those still linked to "
		      "the VF, else num_queues + 1); the front-end's own call eventfds interrupt "
		      "the guest, the pool only accounts for them",
		      NVL_RPC_DEFAULT("-1"), NVL_RPC_RANGE(-1, NVL_FN_MAX_POOL)),
};

static void
rpc_vblk_create_errno(struct nvl_rpc_request *req, int rc, const char *name, const char *bdev,
		      const char *sock)
{
	switch (rc) {
	case -EEXIST:
		if (nvl_vblk_find(name))
			nvl_rpc_error(req, -EEXIST, "controller '%s' already exists", name);
		else
			nvl_rpc_error(req, -EEXIST, "%s exists and is not a socket", sock);
		break;
	case -ENOENT:
		nvl_rpc_error(req, -ENOENT, "bdev '%s' not found", bdev);
		break;
	case -EADDRINUSE:
		nvl_rpc_error(req, -EADDRINUSE, "a live server already listens on %s", sock);
		break;
	case -ENAMETOOLONG:
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "socket path too long (max 107 bytes)");
		break;
	case -EROFS:
		nvl_rpc_error(req, -EROFS, "bdev '%s' is read-only: use read_only", bdev);
		break;
	default:
		nvl_rpc_error_errno(req, rc, "cannot create the controller");
	}
}

static void
rpc_virtio_blk_controller_create(struct nvl_rpc_request *req, struct rpc_vblk_create *a)
{
	struct nvl_vblk_opts o = {
		.name = a->name,
		.bdev = a->bdev,
		.socket = a->socket,
		.num_queues = a->num_queues,
		.queue_size = a->queue_size,
		.read_only = a->read_only,
		.force_in_order = a->force_in_order,
		.suspended = a->suspended,
	};
	struct nvl_vblk *c;
	struct nvl_fn *f = NULL;
	char why[256];
	int rc;

	if (a->num_queues > NVL_VBLK_MAX_QUEUES) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "num_queues %u: 1..%u", a->num_queues,
			      NVL_VBLK_MAX_QUEUES);
		return;
	}
	if (a->queue_size && (a->queue_size > 1024 || !NVL_IS_POW2(a->queue_size))) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "queue_size %u: a power of two up to 1024", a->queue_size);
		return;
	}
	if (a->name[0] == '\0' || strlen(a->name) >= NVL_VBLK_NAME_MAX) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "name: 1..%d bytes",
			      NVL_VBLK_NAME_MAX - 1);
		return;
	}
	if (a->pf_id < 0 && a->vf_id >= 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "vf_id needs pf_id");
		return;
	}
	if (a->pf_id >= 0) {
		struct nvl_fn_pf *pf = nvl_fn_pf_find((uint16_t)a->pf_id);
		uint32_t n = a->vf_num_msix >= 0		       ? (uint32_t)a->vf_num_msix
			     : pf && nvl_fn_pf_linked(pf, a->vf_id) ? 0
								      : (a->num_queues ? a->num_queues : 1) + 1u;

		if (pf == NULL) {
			nvl_rpc_error(req, -ENOENT, "PF %d not found (function_create_pf)", a->pf_id);
			return;
		}
		rc = nvl_fn_create(pf, a->vf_id, NVL_FN_VIRTIO_BLK, a->name, n, &f, why, sizeof(why));
		if (rc < 0) {
			nvl_rpc_error(req, rc == -EINVAL ? NVL_RPC_INVALID_PARAMS : rc, "%s", why);
			return;
		}
		f->state = a->suspended ? NVL_FN_SUSPENDED : NVL_FN_RUNNING;
	}
	rc = nvl_vblk_create(&o, &c);
	if (rc < 0) {
		if (f)
			nvl_fn_destroy(f, true);
		rpc_vblk_create_errno(req, rc, a->name, a->bdev, a->socket);
		return;
	}
	if (f)
		f->ctx = c;
	nvl_rpc_result(req, json_string(a->name));
}
NVL_RPC_REGISTER("virtio_blk_controller_create", rpc_virtio_blk_controller_create,
		 struct rpc_vblk_create, vblk_create_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Create a virtio-blk function served over vhost-user-blk on a Unix socket "
		 "(QEMU: -chardev socket,id=c0,path=SOCKET,reconnect=1 -device "
		 "vhost-user-blk-pci,chardev=c0,num-queues=N). Requests in flight survive a "
		 "daemon restart through the front-end's inflight region. Returns the name.")

/* ---- SPDK: vhost_create_blk_controller ------------------------------------- */

/* SPDK's call has no queue count: the front-end picks up to what GET_QUEUE_NUM says */
#define SPDK_BLK_QUEUES 8

struct rpc_spdk_create {
	const char *ctrlr;
	const char *dev_name;
	const char *cpumask;
	bool readonly;
	bool packed_ring;
	bool packed_ring_recovery;
	const char *transport;
};

static const struct nvl_rpc_param spdk_create_params[] = {
	NVL_RPC_PARAM(struct rpc_spdk_create, ctrlr, NVL_RPC_T_STR, true,
		      "controller name; the socket is this name in the daemon's vhost socket "
		      "directory (nvlendd -S, default its working directory)"),
	NVL_RPC_PARAM(struct rpc_spdk_create, dev_name, NVL_RPC_T_STR, true, "bdev to serve"),
	NVL_RPC_PARAM(struct rpc_spdk_create, cpumask, NVL_RPC_T_STR, false,
		      "accepted for SPDK compatibility; queues are spread over all reactors"),
	NVL_RPC_PARAM(struct rpc_spdk_create, readonly, NVL_RPC_T_BOOL, false,
		      "read-only device (default false)"),
	NVL_RPC_PARAM(struct rpc_spdk_create, packed_ring, NVL_RPC_T_BOOL, false,
		      "packed virtqueues: not supported (must be false)"),
	NVL_RPC_PARAM(struct rpc_spdk_create, packed_ring_recovery, NVL_RPC_T_BOOL, false,
		      "accepted for SPDK compatibility; split rings always recover"),
	NVL_RPC_PARAM(struct rpc_spdk_create, transport, NVL_RPC_T_STR, false,
		      "\"vhost_user_blk\" (default) is the only transport"),
};

static void
rpc_vhost_create_blk_controller(struct nvl_rpc_request *req, struct rpc_spdk_create *a)
{
	struct nvl_vblk_opts o = {
		.name = a->ctrlr,
		.bdev = a->dev_name,
		.socket = a->ctrlr,
		.num_queues = SPDK_BLK_QUEUES,
		.read_only = a->readonly,
	};
	struct nvl_vblk *c;
	int rc;

	if (a->packed_ring) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "packed rings are not supported");
		return;
	}
	if (a->transport && strcmp(a->transport, "vhost_user_blk") != 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "transport '%s' not supported",
			      a->transport);
		return;
	}
	if (a->ctrlr[0] == '\0' || strchr(a->ctrlr, '/')) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "ctrlr must be a plain name");
		return;
	}
	rc = nvl_vblk_create(&o, &c);
	if (rc < 0) {
		rpc_vblk_create_errno(req, rc, a->ctrlr, a->dev_name, a->ctrlr);
		return;
	}
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("vhost_create_blk_controller", rpc_vhost_create_blk_controller,
		 struct rpc_spdk_create, spdk_create_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SPDK's name for virtio_blk_controller_create: socket CTRLR in the vhost socket "
		 "directory (nvlendd -S), up to 8 queues.")

/* ---- destroy ---------------------------------------------------------------- */

struct rpc_vblk_destroy {
	const char *name;
	bool force;
	bool release_msix;
};

static const struct nvl_rpc_param vblk_destroy_params[] = {
	NVL_RPC_PARAM(struct rpc_vblk_destroy, name, NVL_RPC_T_STR, true, "controller name"),
	NVL_RPC_PARAM(struct rpc_vblk_destroy, force, NVL_RPC_T_BOOL, false,
		      "SNAP's -f: accepted; a connected front-end is always dropped after its "
		      "in-flight requests completed"),
	NVL_RPC_PARAM(struct rpc_vblk_destroy, release_msix, NVL_RPC_T_BOOL, false,
		      "SNAP's: a function of a PF gives its vectors back to the pool (default: "
		      "they stay linked to its VF id)"),
};

static void
rpc_vblk_destroy_done(void *arg)
{
	nvl_rpc_result_bool(arg, true);
}

static void
vblk_destroy_by_name(struct nvl_rpc_request *req, const char *name, bool release_msix)
{
	struct nvl_vblk *c = nvl_vblk_find(name);
	struct nvl_fn *f = nvl_fn_find(name);

	if (c == NULL) {
		nvl_rpc_error(req, -ENOENT, "controller '%s' not found", name);
		return;
	}
	if (nvl_vblk_destroying(c)) {
		nvl_rpc_error(req, -EBUSY, "controller '%s' is already being destroyed", name);
		return;
	}
	/* its place in the function tree goes now: the name is free again */
	if (f && f->ctx == c)
		nvl_fn_destroy(f, release_msix);
	nvl_vblk_destroy(c, rpc_vblk_destroy_done, req);
}

static void
rpc_virtio_blk_controller_destroy(struct nvl_rpc_request *req, struct rpc_vblk_destroy *a)
{
	vblk_destroy_by_name(req, a->name, a->release_msix);
}
NVL_RPC_REGISTER("virtio_blk_controller_destroy", rpc_virtio_blk_controller_destroy,
		 struct rpc_vblk_destroy, vblk_destroy_params, NVL_RPC_RUNTIME,
		 "Destroy a virtio-blk controller: finish in-flight requests, drop the front-end, "
		 "remove the socket, release the bdev.")

struct rpc_spdk_delete {
	const char *ctrlr;
};

static const struct nvl_rpc_param spdk_delete_params[] = {
	NVL_RPC_PARAM(struct rpc_spdk_delete, ctrlr, NVL_RPC_T_STR, true, "controller name"),
};

static void
rpc_vhost_delete_controller(struct nvl_rpc_request *req, struct rpc_spdk_delete *a)
{
	vblk_destroy_by_name(req, a->ctrlr, false);
}
NVL_RPC_REGISTER("vhost_delete_controller", rpc_vhost_delete_controller, struct rpc_spdk_delete,
		 spdk_delete_params, NVL_RPC_RUNTIME,
		 "SPDK's name for virtio_blk_controller_destroy.")

/* ---- suspend / resume (SNAP's names) ------------------------------------------ */

struct rpc_vblk_suspend {
	const char *name;
	const char *ctrl;
};

static const struct nvl_rpc_param vblk_suspend_params[] = {
	NVL_RPC_PARAM(struct rpc_vblk_suspend, name, NVL_RPC_T_STR, false, "controller name"),
	NVL_RPC_PARAM(struct rpc_vblk_suspend, ctrl, NVL_RPC_T_STR, false,
		      "the same, as SNAP's RPC names it"),
};

static struct nvl_vblk *
vblk_suspend_target(struct nvl_rpc_request *req, const struct rpc_vblk_suspend *a)
{
	const char *name = a->name ? a->name : a->ctrl;
	struct nvl_vblk *c;

	if (name == NULL) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "name (or ctrl) is required");
		return NULL;
	}
	c = nvl_vblk_find(name);
	if (c == NULL)
		nvl_rpc_error(req, -ENOENT, "controller '%s' not found", name);
	return c;
}

static void
rpc_vblk_suspended(void *arg)
{
	nvl_rpc_result_bool(arg, true);
}

static void
rpc_virtio_blk_controller_suspend(struct nvl_rpc_request *req, struct rpc_vblk_suspend *a)
{
	struct nvl_vblk *c = vblk_suspend_target(req, a);
	struct nvl_fn *f;
	int rc;

	if (c == NULL)
		return;
	/* req (and a) may be answered and freed inside nvl_vblk_suspend() */
	f = nvl_fn_find(a->name ? a->name : a->ctrl);
	if (f && f->ctx == c)
		f->state = NVL_FN_SUSPENDED;
	rc = nvl_vblk_suspend(c, rpc_vblk_suspended, req);
	if (rc < 0 && f && f->ctx == c)
		f->state = NVL_FN_RUNNING;
	if (rc < 0)
		nvl_rpc_error(req, rc, "controller '%s' cannot be suspended now: %s",
			      a->name ? a->name : a->ctrl,
			      nvl_vblk_destroying(c) ? "it is being destroyed"
						     : "another operation runs; try again");
}
NVL_RPC_REGISTER("virtio_blk_controller_suspend", rpc_virtio_blk_controller_suspend,
		 struct rpc_vblk_suspend, vblk_suspend_params, NVL_RPC_RUNTIME,
		 "SNAP's suspend: stop serving the controller's queues; answers once the requests "
		 "in flight completed (the front-end stays connected, its new requests wait). "
		 "virtio_blk_controller_list shows state \"suspended\".")

static void
rpc_virtio_blk_controller_resume(struct nvl_rpc_request *req, struct rpc_vblk_suspend *a)
{
	struct nvl_vblk *c = vblk_suspend_target(req, a);

	if (c == NULL)
		return;
	nvl_vblk_resume(c);
	if (nvl_fn_find(a->name ? a->name : a->ctrl))
		nvl_fn_find(a->name ? a->name : a->ctrl)->state = NVL_FN_RUNNING;
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("virtio_blk_controller_resume", rpc_virtio_blk_controller_resume,
		 struct rpc_vblk_suspend, vblk_suspend_params, NVL_RPC_RUNTIME,
		 "SNAP's resume: serve the controller's queues again (the requests that waited "
		 "first); also ends the suspended state of a controller created suspended.")

/* ---- list ------------------------------------------------------------------- */

struct rpc_vblk_list {
	const char *name;
};

static const struct nvl_rpc_param vblk_list_params[] = {
	NVL_RPC_PARAM(struct rpc_vblk_list, name, NVL_RPC_T_STR, false,
		      "only this controller (error if it does not exist)"),
};

static void
rpc_virtio_blk_controller_list(struct nvl_rpc_request *req, struct rpc_vblk_list *a)
{
	json_t *arr = json_array();
	struct nvl_vblk *c;

	if (a->name) {
		c = nvl_vblk_find(a->name);
		if (c == NULL) {
			json_decref(arr);
			nvl_rpc_error(req, -ENOENT, "controller '%s' not found", a->name);
			return;
		}
		json_array_append_new(arr, nvl_vblk_to_json(c));
	} else {
		for (c = nvl_vblk_first(); c; c = nvl_vblk_next(c))
			json_array_append_new(arr, nvl_vblk_to_json(c));
	}
	nvl_rpc_result(req, arr);
}
NVL_RPC_REGISTER("virtio_blk_controller_list", rpc_virtio_blk_controller_list,
		 struct rpc_vblk_list, vblk_list_params, NVL_RPC_RUNTIME,
		 "List virtio-blk controllers: state, connected front-end, per-queue counters, "
		 "requests in flight, recovery figures (requests resubmitted after a restart, "
		 "time from creation and from connection to the first completed request).")

static void
rpc_vhost_get_controllers(struct nvl_rpc_request *req, struct rpc_vblk_list *a)
{
	json_t *arr = json_array();
	struct nvl_vblk *c;

	for (c = nvl_vblk_first(); c; c = nvl_vblk_next(c)) {
		json_t *o = nvl_vblk_to_json(c);

		if (a->name && strcmp(a->name, json_string_value(json_object_get(o, "name")))) {
			json_decref(o);
			continue;
		}
		/* SPDK's shape, with our details under backend_specific */
		json_array_append_new(
			arr, json_pack("{s:s, s:s, s:i, s:i, s:s, s:{s:{s:s, s:b, s:o}}}", "ctrlr",
				       json_string_value(json_object_get(o, "name")), "cpumask",
				       "0x1", "delay_base_us", 0, "iops_threshold", 0,
				       "socket", json_string_value(json_object_get(o, "socket")),
				       "backend_specific", "block", "bdev",
				       json_string_value(json_object_get(o, "bdev")), "readonly",
				       json_is_true(json_object_get(o, "read_only")), "nvlend",
				       json_incref(o)));
		json_decref(o);
	}
	if (a->name && json_array_size(arr) == 0) {
		json_decref(arr);
		nvl_rpc_error(req, -ENOENT, "controller '%s' not found", a->name);
		return;
	}
	nvl_rpc_result(req, arr);
}
NVL_RPC_REGISTER("vhost_get_controllers", rpc_vhost_get_controllers, struct rpc_vblk_list,
		 vblk_list_params, NVL_RPC_RUNTIME,
		 "SPDK's shape of virtio_blk_controller_list.")

/* ---- subsystem -------------------------------------------------------------- */

static nvl_app_done_fn g_fini_done;

static bool
vblk_all_gone(void *arg)
{
	(void)arg;
	return nvl_vblk_first() == NULL;
}

static void
vblk_fini_finish(void *arg)
{
	nvl_app_done_fn done = g_fini_done;

	(void)arg;
	g_fini_done = NULL;
	if (done)
		done();
}

/* Destroy the controllers one at a time; then wait for those an RPC was
 * destroying already. */
static void
vblk_fini_next(void *arg)
{
	struct nvl_vblk *c;

	(void)arg;
	for (c = nvl_vblk_first(); c; c = nvl_vblk_next(c)) {
		if (!nvl_vblk_destroying(c)) {
			nvl_vblk_destroy(c, vblk_fini_next, NULL);
			return;
		}
	}
	if (nvl_reactor_drain(vblk_all_gone, vblk_fini_finish, NULL, 1000) < 0)
		nvl_reactor_msg(nvl_reactor_self(), vblk_fini_next, NULL); /* try again */
}

static void
vblk_subsys_fini(nvl_app_done_fn done)
{
	g_fini_done = done;
	vblk_fini_next(NULL);
}

static void
vblk_subsys_write_config(json_t *calls)
{
	for (struct nvl_vblk *c = nvl_vblk_first(); c; c = nvl_vblk_next(c)) {
		if (!nvl_vblk_destroying(c)) {
			json_t *call = nvl_vblk_config_call(c);
			json_t *p = json_object_get(call, "params");
			struct nvl_fn *f = nvl_fn_find(json_string_value(json_object_get(p, "name")));

			/* its place in the function tree (function_create_pf comes first) */
			if (f && f->ctx == c && json_is_object(p)) {
				json_object_set_new(p, "pf_id", json_integer(f->pf->pf_id));
				if (f->vf_id != NVL_FN_NO_VF)
					json_object_set_new(p, "vf_id", json_integer(f->vf_id));
				json_object_set_new(p, "vf_num_msix", json_integer(f->nvec));
			}
			json_array_append_new(calls, call);
		}
	}
}

static struct nvl_subsystem g_vblk_subsys = {
	.name = "vhost_blk",
	.order = 60,
	.fini = vblk_subsys_fini,
	.write_config = vblk_subsys_write_config,
};
NVL_SUBSYSTEM_REGISTER(g_vblk_subsys)
