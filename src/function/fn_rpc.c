/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SNAP's function RPCs (docs/functions.md) and NVMe functions on shm.
 *
 * PFs (function_create_pf, function_delete_pf, emulation_function_list) hold
 * the vector pools (fn.c). SNAP's NVMe model maps onto the target core:
 *  - nvme_subsystem_create: a subsystem owned by "function" (save_config of
 *    nvmf leaves it out: this file saves it, with its namespaces);
 *  - nvme_namespace_create: a namespace added no_auto_visible, so that a
 *    controller sees only what is attached to it;
 *  - nvme_controller_create: a function on a PF or VF with a fixed cntlid,
 *    its own host identity (nqn.2014-08.org.nvlend:fn:pfP[vfV]), allowed on
 *    the subsystem, and its own shm endpoint (a listener of the subsystem
 *    on the function's socket) that a consumer opens without a Connect
 *    (NVL_SHM_MSG_OPEN_FN: the hooks below); its CQs' interrupt vectors are
 *    the function's eventfds from its PF's pool;
 *  - nvme_controller_attach_ns / detach_ns: the namespace becomes visible /
 *    invisible to the function's host identity (the core raises the
 *    Namespace Attribute Changed event);
 *  - suspend / resume: the function's SQs stop / start fetching commands;
 *    suspend answers once what was in flight completed.
 * The target-core changes go through the nvmf RPCs called in-process
 * (nvl_rpc_call_local), so every check they make applies here too.
 *
 * save_config (subsystem "function", order 50: after bdevs and nvmf's
 * transports, before vhost_blk which may name PFs): PFs, subsystems,
 * namespaces, controllers, attachments, in that order.
 *
 * Threading: reactor 0 (RPC, configuration replay, the shm control channel).
 */
#include "app/app.h"
#include "bdev/bdev.h"
#include "function/fn.h"
#include "function/vblk.h"
#include "nvmf/nvmf.h"
#include "rpc/rpc.h"
#include "transport/shm_internal.h"
#include "util/fdstore.h"
#include "util/log.h"
#include "util/util.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FN_OWNER "function"
#define FN_MAX_ATTACH 64
#define FN_HOST_PREFIX "nqn.2014-08.org.nvlend:fn:"
#define FN_SOCKET_MAX 108

/* ---- records ------------------------------------------------------------------ */

struct fn_subsys {
	char nqn[NVL_NVME_NQN_LEN];
	json_t *params;                  /* nvme_subsystem_create's, as saved */
	TAILQ_ENTRY(fn_subsys) link;
};

struct fn_ns {
	struct fn_subsys *sub;
	uint32_t nsid;
	json_t *params;                  /* nvme_namespace_create's, nsid set */
	TAILQ_ENTRY(fn_ns) link;
};

enum fn_op {
	FN_OP_NONE = 0,
	FN_OP_CREATE,
	FN_OP_DESTROY,
	FN_OP_SUSPEND,
	FN_OP_ATTACH,
};

struct fn_nvme {
	struct nvl_fn *fn;
	struct fn_subsys *sub;
	char hostnqn[NVL_NVME_NQN_LEN];
	char socket[FN_SOCKET_MAX];
	uint16_t cntlid;
	uint16_t num_queues;
	uint8_t mdts;
	bool created_suspended;
	uint32_t ns[FN_MAX_ATTACH];
	unsigned nns;
	struct shm_ctrlr *consumer;      /* the shm connection that opened it */
	json_t *params;                  /* nvme_controller_create's, name and cntlid set */
	/* the RPC in progress */
	enum fn_op op;
	struct nvl_rpc_request *req;
	bool release_msix;
	bool op_attach;
	uint32_t op_nsid;
	TAILQ_ENTRY(fn_nvme) link;
};

static TAILQ_HEAD(, fn_subsys) g_subs = TAILQ_HEAD_INITIALIZER(g_subs);
static TAILQ_HEAD(, fn_ns) g_nss = TAILQ_HEAD_INITIALIZER(g_nss);
static TAILQ_HEAD(, fn_nvme) g_ctrls = TAILQ_HEAD_INITIALIZER(g_ctrls);
static unsigned g_next_ctrl = 1;  /* SNAP's default names: NVMeCtrl1, NVMeCtrl2, ... */

static struct fn_subsys *
fn_subsys_find(const char *nqn)
{
	struct fn_subsys *s;

	TAILQ_FOREACH(s, &g_subs, link)
		if (strcmp(s->nqn, nqn) == 0)
			return s;
	return NULL;
}

static struct fn_ns *
fn_ns_find(const struct fn_subsys *sub, uint32_t nsid)
{
	struct fn_ns *n;

	TAILQ_FOREACH(n, &g_nss, link)
		if (n->sub == sub && n->nsid == nsid)
			return n;
	return NULL;
}

static struct fn_nvme *
fn_ctrl_find(const char *name)
{
	struct fn_nvme *c;

	TAILQ_FOREACH(c, &g_ctrls, link)
		if (strcmp(c->fn->name, name) == 0)
			return c;
	return NULL;
}

static bool
fn_ctrl_has_ns(const struct fn_nvme *c, uint32_t nsid)
{
	for (unsigned i = 0; i < c->nns; i++)
		if (c->ns[i] == nsid)
			return true;
	return false;
}

static void
fn_ctrl_drop_ns(struct fn_nvme *c, uint32_t nsid)
{
	for (unsigned i = 0; i < c->nns; i++) {
		if (c->ns[i] == nsid) {
			c->ns[i] = c->ns[--c->nns];
			return;
		}
	}
}

/* ---- in-process calls of the target's RPCs, one after the other ---------------- */

#define FN_CHAIN_MAX 8

typedef void (*fn_chain_done)(void *arg, int code, const char *msg);

struct fn_chain {
	const char *method[FN_CHAIN_MAX];
	json_t *params[FN_CHAIN_MAX];
	unsigned n, i;
	bool keep_going;                 /* teardown: an error does not stop the chain */
	int code;
	char msg[256];
	fn_chain_done done;
	void *arg;
};

static struct fn_chain *
fn_chain_new(fn_chain_done done, void *arg)
{
	struct fn_chain *ch = calloc(1, sizeof(*ch));

	if (ch) {
		ch->done = done;
		ch->arg = arg;
	}
	return ch;
}

/* takes p */
static void
fn_chain_add(struct fn_chain *ch, const char *method, json_t *p)
{
	assert(ch->n < FN_CHAIN_MAX);
	ch->method[ch->n] = method;
	ch->params[ch->n++] = p;
}

static void fn_chain_next(struct fn_chain *ch);

static void
fn_chain_cb(void *arg, json_t *result, json_t *error)
{
	struct fn_chain *ch = arg;

	(void)result;
	if (error && ch->code == 0) {
		ch->code = (int)json_integer_value(json_object_get(error, "code"));
		if (ch->code == 0)
			ch->code = NVL_RPC_INTERNAL_ERROR;
		snprintf(ch->msg, sizeof(ch->msg), "%s: %s", ch->method[ch->i],
			 json_string_value(json_object_get(error, "message"))
				 ? json_string_value(json_object_get(error, "message"))
				 : "failed");
	}
	ch->i++;
	if (error && !ch->keep_going)
		ch->i = ch->n;
	fn_chain_next(ch);
}

static void
fn_chain_next(struct fn_chain *ch)
{
	if (ch->i < ch->n) {
		int rc = nvl_rpc_call_local(ch->method[ch->i], ch->params[ch->i], fn_chain_cb, ch);

		if (rc < 0) {
			json_t *e = json_pack("{s:i, s:s}", "code", NVL_RPC_INTERNAL_ERROR, "message",
					      strerror(-rc));

			fn_chain_cb(ch, NULL, e);
			json_decref(e);
		}
		return;
	}
	for (unsigned k = 0; k < ch->n; k++)
		json_decref(ch->params[k]);
	ch->done(ch->arg, ch->code, ch->msg);
	free(ch);
}

/* ---- the shm side: a consumer opens a function -------------------------------- */

static struct fn_nvme *
fn_ctrl_by_socket(const char *traddr)
{
	struct fn_nvme *c;

	TAILQ_FOREACH(c, &g_ctrls, link)
		if (strcmp(c->socket, traddr) == 0)
			return c;
	return NULL;
}

static bool
fn_shm_is_endpoint(const char *traddr)
{
	return fn_ctrl_by_socket(traddr) != NULL;
}

/* A restarted worker: consumers the previous one kept come back when the
 * shm transport restores (nvmf's start, before ours); until then nobody
 * else may open a function (the kept consumer would find it busy). */
static bool g_fn_restoring;

static void
fn_note_kept(void *arg, const char *name, int fd)
{
	(void)fd;
	if (strncmp(name, "shm.", 4) == 0)
		*(bool *)arg = true;
}

/* OPEN_FN (restore: a consumer kept by the previous worker comes back) */
static int
fn_shm_take(const char *traddr, struct shm_ctrlr *sc, struct shm_fn_open *o, char *why,
	    size_t len, bool restore)
{
	struct fn_nvme *c = fn_ctrl_by_socket(traddr);
	uint32_t h;

	if (c == NULL || c->op == FN_OP_CREATE)
		return -ENOENT;
	if (g_fn_restoring && !restore) {
		snprintf(why, len,
			 "function %s: the daemon restarted and restores its kept consumers; "
			 "open it again in a moment",
			 c->fn->name);
		return -EAGAIN;
	}
	if (c->op == FN_OP_DESTROY) {
		snprintf(why, len, "function %s is being destroyed", c->fn->name);
		return -ESHUTDOWN;
	}
	if (c->consumer) {
		snprintf(why, len, "function %s busy: opened by pid %u", c->fn->name,
			 shm_fn_consumer_pid(c->consumer));
		return -EBUSY;
	}
	nvl_strlcpy(o->subnqn, c->sub->nqn, sizeof(o->subnqn));
	nvl_strlcpy(o->hostnqn, c->hostnqn, sizeof(o->hostnqn));
	/* a stable host identifier per function identity */
	h = nvl_crc32c(c->hostnqn, strlen(c->hostnqn));
	memset(o->hostid, 0, sizeof(o->hostid));
	memcpy(o->hostid, "nvlfn", 5);
	memcpy(o->hostid + 8, &h, sizeof(h));
	o->hostid[12] = (uint8_t)c->fn->pf->pf_id;
	o->hostid[13] = (uint8_t)(c->fn->pf->pf_id >> 8);
	o->hostid[14] = (uint8_t)c->fn->vf_id;
	o->hostid[15] = (uint8_t)(c->fn->vf_id >> 8);
	o->cntlid = c->cntlid;
	o->max_io_queues = c->num_queues;
	o->mdts = c->mdts;
	o->suspended = c->fn->state == NVL_FN_SUSPENDED;
	o->nvectors = NVL_MIN(c->fn->nvec, (uint32_t)SHM_MAX_VECTORS);
	for (unsigned v = 0; v < o->nvectors; v++)
		o->vectors[v] = nvl_fn_vector_fd(c->fn, v);
	o->vector_gen = nvl_fn_vector_gen(c->fn);
	o->fn = c;
	c->consumer = sc;
	/* a restored one is logged once it is back (fn_shm_restored) */
	if (!restore)
		NVL_NOTICELOG("function %s: opened by pid %u", c->fn->name, shm_fn_consumer_pid(sc));
	return 0;
}

static int
fn_shm_open(const char *traddr, struct shm_ctrlr *sc, struct shm_fn_open *o, char *why,
	    size_t len)
{
	return fn_shm_take(traddr, sc, o, why, len, false);
}

static int
fn_shm_restore(const char *traddr, struct shm_ctrlr *sc, struct shm_fn_open *o, char *why,
	       size_t len)
{
	return fn_shm_take(traddr, sc, o, why, len, true);
}

static void
fn_shm_restored(void *fn, struct shm_ctrlr *sc)
{
	struct fn_nvme *c = fn;

	NVL_NOTICELOG("function %s: consumer pid %u restored after a restart (cntlid %u, not "
		      "opened again)",
		      c->fn->name, shm_fn_consumer_pid(sc), c->cntlid);
}

static void fn_destroy_go(struct fn_nvme *c);

static void
fn_shm_closed(void *fn, struct shm_ctrlr *sc)
{
	struct fn_nvme *c = fn;

	if (c->consumer != sc)
		return;
	c->consumer = NULL;
	NVL_NOTICELOG("function %s: consumer gone", c->fn->name);
	if (c->op == FN_OP_DESTROY)
		fn_destroy_go(c);
}

static const struct shm_fn_ops g_fn_shm_ops = {
	.is_endpoint = fn_shm_is_endpoint,
	.open = fn_shm_open,
	.closed = fn_shm_closed,
	.restore = fn_shm_restore,
	.restored = fn_shm_restored,
};

/* ---- PFs ----------------------------------------------------------------------- */

struct rpc_pf_create {
	uint16_t pf_id;
	const char *type;
	uint32_t num_msix;
	uint32_t max_vfs;
};

static const struct nvl_rpc_param pf_create_params[] = {
	NVL_RPC_PARAM(struct rpc_pf_create, pf_id, NVL_RPC_T_U16, true,
		      "PF index, stable (SNAP's pf_id)"),
	NVL_RPC_PARAM(struct rpc_pf_create, type, NVL_RPC_T_STR, true,
		      "\"nvme\" or \"virtio_blk\": the type of its functions"),
	NVL_RPC_PARAM(struct rpc_pf_create, num_msix, NVL_RPC_T_U32, false,
		      "interrupt vectors in the PF's pool (eventfds made now, counted against the "
		      "daemon's descriptor budget: a quarter of RLIMIT_NOFILE)",
		      NVL_RPC_DEFAULT("64"), NVL_RPC_RANGE(0, NVL_FN_MAX_POOL)),
	NVL_RPC_PARAM(struct rpc_pf_create, max_vfs, NVL_RPC_T_U32, false,
		      "VFs the PF may have, ids 0..max_vfs-1", NVL_RPC_DEFAULT("0"),
		      NVL_RPC_RANGE(0, NVL_FN_MAX_VFS)),
};

static void
rpc_function_create_pf(struct nvl_rpc_request *req, struct rpc_pf_create *a)
{
	struct nvl_fn_pf_opts o = { .pf_id = a->pf_id, .num_msix = a->num_msix,
				    .max_vfs = a->max_vfs };
	struct nvl_fn_pf *pf;
	int rc;

	if (nvl_fn_type_parse(a->type, &o.type) < 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "type '%s': nvme or virtio_blk", a->type);
		return;
	}
	rc = nvl_fn_pf_create(&o, &pf);
	if (rc == -EEXIST)
		nvl_rpc_error(req, -EEXIST, "PF %u exists", a->pf_id);
	else if (rc == -EMFILE)
		nvl_rpc_error(req, -EMFILE,
			      "a pool of %u vectors exceeds the daemon's descriptor budget: pools "
			      "hold %u of %u (a quarter of RLIMIT_NOFILE)",
			      a->num_msix, nvl_fn_fd_used(), nvl_fn_fd_budget());
	else if (rc < 0)
		nvl_rpc_error_errno(req, rc, "cannot create the PF");
	else
		nvl_rpc_result(req, nvl_fn_pf_to_json(pf));
}
NVL_RPC_REGISTER("function_create_pf", rpc_function_create_pf, struct rpc_pf_create,
		 pf_create_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Make a physical function (the software analogue of a SNAP emulated PCIe PF): its "
		 "type, how many VFs it may have and its pool of interrupt vectors (SNAP's dynamic "
		 "MSIX). Returns the PF as emulation_function_list shows it.")

struct rpc_pf_id {
	uint16_t pf_id;
};

static const struct nvl_rpc_param pf_id_params[] = {
	NVL_RPC_PARAM(struct rpc_pf_id, pf_id, NVL_RPC_T_U16, true, "PF index"),
};

static void
rpc_function_delete_pf(struct nvl_rpc_request *req, struct rpc_pf_id *a)
{
	struct nvl_fn_pf *pf = nvl_fn_pf_find(a->pf_id);

	if (pf == NULL) {
		nvl_rpc_error(req, -ENOENT, "PF %u not found", a->pf_id);
		return;
	}
	if (nvl_fn_pf_destroy(pf) < 0) {
		nvl_rpc_error(req, -EBUSY, "PF %u still has functions: destroy them first",
			      a->pf_id);
		return;
	}
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("function_delete_pf", rpc_function_delete_pf, struct rpc_pf_id, pf_id_params,
		 NVL_RPC_RUNTIME, "Remove a PF without functions and close its vector pool.")

static json_t *
fn_ctrl_json(const struct fn_nvme *c)
{
	json_t *ns = json_array();
	const struct nvl_fn *f = c->fn;

	for (unsigned i = 0; i < c->nns; i++)
		json_array_append_new(ns, json_integer(c->ns[i]));
	return json_pack("{s:s, s:s, s:s, s:i, s:o, s:i, s:i, s:i, s:s, s:s, s:i, s:i, s:i, s:i, "
			 "s:o}",
			 "name", f->name, "type", "nvme", "subnqn", c->sub->nqn, "pf_id",
			 (int)f->pf->pf_id, "vf_id",
			 f->vf_id == NVL_FN_NO_VF ? json_null() : json_integer(f->vf_id), "cntlid",
			 (int)c->cntlid, "num_queues", (int)c->num_queues, "mdts", (int)c->mdts,
			 "state", f->state == NVL_FN_SUSPENDED ? "suspended" : "running", "socket",
			 c->socket, "consumer_pid",
			 c->consumer ? (int)shm_fn_consumer_pid(c->consumer) : 0, "queues",
			 c->consumer ? (int)shm_fn_queues(c->consumer) : 0, "num_msix",
			 (int)f->nvec, "num_free_msix", (int)f->pf->nfree, "namespaces", ns);
}

static json_t *
fn_any_json(const struct nvl_fn *f)
{
	struct fn_nvme *c;

	TAILQ_FOREACH(c, &g_ctrls, link)
		if (c->fn == f)
			return fn_ctrl_json(c);
	/* a virtio-blk function: the rest is in virtio_blk_controller_list */
	return json_pack("{s:s, s:s, s:i, s:o, s:s, s:i}", "name", f->name, "type",
			 nvl_fn_type_name(f->pf->type), "pf_id", (int)f->pf->pf_id, "vf_id",
			 f->vf_id == NVL_FN_NO_VF ? json_null() : json_integer(f->vf_id), "state",
			 f->state == NVL_FN_SUSPENDED ? "suspended" : "running", "num_msix",
			 (int)f->nvec);
}

static void
rpc_emulation_function_list(struct nvl_rpc_request *req, void *args)
{
	json_t *arr = json_array();

	(void)args;
	for (struct nvl_fn_pf *pf = nvl_fn_pf_first(); pf; pf = nvl_fn_pf_next(pf)) {
		json_t *o = nvl_fn_pf_to_json(pf), *fns = json_array();
		struct nvl_fn *f;

		TAILQ_FOREACH(f, &pf->fns, link)
			json_array_append_new(fns, fn_any_json(f));
		json_object_set_new(o, "functions", fns);
		json_array_append_new(arr, o);
	}
	nvl_rpc_result(req, arr);
}
NVL_RPC_REGISTER_NOARGS("emulation_function_list", rpc_emulation_function_list,
			NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
			"SNAP's name: the function tree, every PF (type, max_vfs, num_msix, "
			"num_free_msix) with its functions (name, vf_id, state, consumer, queues, "
			"vectors). nvlend function list prints it.")

/* ---- SNAP's parameters that mean nothing in software ---------------------------- */

/* Hardware placement SNAP users name explicitly: refused with the reason
 * (a silent success would hide that the function is not where they think). */
static const char *const g_hw_only[] = { "emulation_manager", "pci_bdf", "pci_index", "vuid",
					 "vhca_id" };

static bool
fn_refuse_hw_params(struct nvl_rpc_request *req)
{
	json_t *p = nvl_rpc_params(req);

	for (size_t i = 0; p && i < NVL_ARRAY_SIZE(g_hw_only); i++) {
		if (json_object_get(p, g_hw_only[i])) {
			nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
				      "%s: SNAP's hardware placement, not applicable in software; "
				      "name the function with pf_id (and vf_id)",
				      g_hw_only[i]);
			return true;
		}
	}
	return false;
}

#define FN_HW_PARAMS                                                                               \
	NVL_RPC_PARAM_IGNORED("emulation_manager", NVL_RPC_T_ANY,                                  \
			      "SNAP's: refused (hardware placement, not applicable in software)"),  \
	NVL_RPC_PARAM_IGNORED("pci_bdf", NVL_RPC_T_ANY, "SNAP's: refused (use pf_id/vf_id)"),     \
	NVL_RPC_PARAM_IGNORED("pci_index", NVL_RPC_T_ANY, "SNAP's: refused (use pf_id/vf_id)"),   \
	NVL_RPC_PARAM_IGNORED("vuid", NVL_RPC_T_ANY, "SNAP's: refused (use pf_id/vf_id)"),        \
	NVL_RPC_PARAM_IGNORED("vhca_id", NVL_RPC_T_ANY, "SNAP's: refused (use pf_id/vf_id)")

/* ---- nvme_subsystem_create / _destroy / _list ------------------------------------ */

struct rpc_subsys_create {
	const char *nqn;
	const char *serial_number;
	const char *model_number;
	uint32_t nn;
	uint32_t mnan;
};

static const struct nvl_rpc_param subsys_create_params[] = {
	NVL_RPC_PARAM(struct rpc_subsys_create, nqn, NVL_RPC_T_STR, true, "subsystem NQN"),
	NVL_RPC_PARAM(struct rpc_subsys_create, serial_number, NVL_RPC_T_STR, false,
		      "serial number (default: derived from the NQN)"),
	NVL_RPC_PARAM(struct rpc_subsys_create, model_number, NVL_RPC_T_STR, false,
		      "model number"),
	NVL_RPC_PARAM(struct rpc_subsys_create, nn, NVL_RPC_T_U32, false,
		      "largest namespace id (Identify Controller NN)", NVL_RPC_DEFAULT("1024"),
		      NVL_RPC_RANGE(1, NVL_NVMF_MAX_NS)),
	NVL_RPC_PARAM(struct rpc_subsys_create, mnan, NVL_RPC_T_U32, false,
		      "SNAP's maximum allocated namespaces: accepted, bounded by nn"),
};

static void
fn_subsys_created(void *arg, int code, const char *msg)
{
	struct nvl_rpc_request *req = arg;
	json_t *p = nvl_rpc_params(req);
	struct fn_subsys *s;

	if (code) {
		nvl_rpc_error(req, code, "%s", msg);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		nvl_rpc_error(req, NVL_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	nvl_strlcpy(s->nqn, json_string_value(json_object_get(p, "nqn")), sizeof(s->nqn));
	s->params = json_deep_copy(p);
	TAILQ_INSERT_TAIL(&g_subs, s, link);
	nvl_rpc_result_bool(req, true);
}

static void
rpc_nvme_subsystem_create(struct nvl_rpc_request *req, struct rpc_subsys_create *a)
{
	struct fn_chain *ch;
	json_t *p;

	if (fn_subsys_find(a->nqn)) {
		nvl_rpc_error(req, -EEXIST, "subsystem %s exists", a->nqn);
		return;
	}
	p = json_pack("{s:s, s:s, s:b, s:i}", "nqn", a->nqn, "owner", FN_OWNER, "allow_any_host", 0,
		      "max_namespaces", (int)a->nn);
	if (a->serial_number)
		json_object_set_new(p, "serial_number", json_string(a->serial_number));
	if (a->model_number)
		json_object_set_new(p, "model_number", json_string(a->model_number));
	ch = fn_chain_new(fn_subsys_created, req);
	if (ch == NULL) {
		json_decref(p);
		nvl_rpc_error(req, NVL_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	fn_chain_add(ch, "nvmf_create_subsystem", p);
	fn_chain_next(ch);
}
NVL_RPC_REGISTER("nvme_subsystem_create", rpc_nvme_subsystem_create, struct rpc_subsys_create,
		 subsys_create_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SNAP's: an NVMe subsystem for emulated controllers (an nvmf subsystem owned by "
		 "the function layer: only its functions' identities may reach it).")

struct rpc_nqn_only {
	const char *nqn;
};

static const struct nvl_rpc_param nqn_only_params[] = {
	NVL_RPC_PARAM(struct rpc_nqn_only, nqn, NVL_RPC_T_STR, true, "subsystem NQN"),
};

static void
fn_subsys_destroyed(void *arg, int code, const char *msg)
{
	struct nvl_rpc_request *req = arg;
	struct fn_subsys *s = fn_subsys_find(json_string_value(json_object_get(nvl_rpc_params(req),
									     "nqn")));
	struct fn_ns *n, *tmp;

	if (code) {
		nvl_rpc_error(req, code, "%s", msg);
		return;
	}
	if (s) {
		TAILQ_FOREACH_SAFE(n, &g_nss, link, tmp) {
			if (n->sub == s) {
				TAILQ_REMOVE(&g_nss, n, link);
				json_decref(n->params);
				free(n);
			}
		}
		TAILQ_REMOVE(&g_subs, s, link);
		json_decref(s->params);
		free(s);
	}
	nvl_rpc_result_bool(req, true);
}

static void
rpc_nvme_subsystem_destroy(struct nvl_rpc_request *req, struct rpc_nqn_only *a)
{
	struct fn_subsys *s = fn_subsys_find(a->nqn);
	struct fn_chain *ch;
	struct fn_nvme *c;

	if (s == NULL) {
		nvl_rpc_error(req, -ENOENT, "subsystem %s not found", a->nqn);
		return;
	}
	TAILQ_FOREACH(c, &g_ctrls, link) {
		if (c->sub == s) {
			nvl_rpc_error(req, -EBUSY, "controller %s is on subsystem %s: destroy it first",
				      c->fn->name, a->nqn);
			return;
		}
	}
	ch = fn_chain_new(fn_subsys_destroyed, req);
	if (ch == NULL) {
		nvl_rpc_error(req, NVL_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	fn_chain_add(ch, "nvmf_delete_subsystem", json_pack("{s:s}", "nqn", a->nqn));
	fn_chain_next(ch);
}
NVL_RPC_REGISTER("nvme_subsystem_destroy", rpc_nvme_subsystem_destroy, struct rpc_nqn_only,
		 nqn_only_params, NVL_RPC_RUNTIME,
		 "SNAP's: remove a subsystem without controllers, with its namespaces.")

static void
rpc_nvme_subsystem_list(struct nvl_rpc_request *req, void *args)
{
	json_t *arr = json_array();
	struct fn_subsys *s;

	(void)args;
	TAILQ_FOREACH(s, &g_subs, link) {
		json_t *o = json_deep_copy(s->params), *ns = json_array(), *ctrls = json_array();
		struct fn_ns *n;
		struct fn_nvme *c;

		TAILQ_FOREACH(n, &g_nss, link)
			if (n->sub == s)
				json_array_append(ns, n->params);
		TAILQ_FOREACH(c, &g_ctrls, link)
			if (c->sub == s)
				json_array_append_new(ctrls, json_string(c->fn->name));
		json_object_set_new(o, "namespaces", ns);
		json_object_set_new(o, "controllers", ctrls);
		json_array_append_new(arr, o);
	}
	nvl_rpc_result(req, arr);
}
NVL_RPC_REGISTER_NOARGS("nvme_subsystem_list", rpc_nvme_subsystem_list,
			NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
			"SNAP's: subsystems made by nvme_subsystem_create, their namespaces and "
			"controllers.")

/* ---- nvme_namespace_create / _destroy -------------------------------------------- */

struct rpc_ns_create {
	const char *nqn;
	const char *bdev_name;
	uint32_t nsid;
	const char *uuid;
	const char *nguid;
	const char *eui64;
};

static const struct nvl_rpc_param ns_create_params[] = {
	NVL_RPC_PARAM(struct rpc_ns_create, nqn, NVL_RPC_T_STR, true, "subsystem NQN"),
	NVL_RPC_PARAM(struct rpc_ns_create, bdev_name, NVL_RPC_T_STR, true,
		      "bdev (SNAP's -b; spdk_bdev_create is not needed first but accepted)"),
	NVL_RPC_PARAM(struct rpc_ns_create, nsid, NVL_RPC_T_U32, false,
		      "namespace id (SNAP's -n; default: lowest free)"),
	NVL_RPC_PARAM(struct rpc_ns_create, uuid, NVL_RPC_T_STR, false, "namespace UUID"),
	NVL_RPC_PARAM(struct rpc_ns_create, nguid, NVL_RPC_T_STR, false, "NGUID, 32 hex digits"),
	NVL_RPC_PARAM(struct rpc_ns_create, eui64, NVL_RPC_T_STR, false, "EUI-64, 16 hex digits"),
};

struct fn_ns_op {
	struct nvl_rpc_request *req;
	struct fn_subsys *sub;
	uint32_t nsid;
};

static void
fn_ns_created(void *arg, int code, const char *msg)
{
	struct fn_ns_op *op = arg;
	struct fn_ns *n;

	if (code) {
		nvl_rpc_error(op->req, code, "%s", msg);
		free(op);
		return;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL) {
		nvl_rpc_error(op->req, NVL_RPC_INTERNAL_ERROR, "out of memory");
		free(op);
		return;
	}
	n->sub = op->sub;
	n->nsid = op->nsid;
	n->params = json_deep_copy(nvl_rpc_params(op->req));
	json_object_set_new(n->params, "nsid", json_integer(n->nsid));
	TAILQ_INSERT_TAIL(&g_nss, n, link);
	nvl_rpc_result(op->req, json_integer(n->nsid));
	free(op);
}

static void
rpc_nvme_namespace_create(struct nvl_rpc_request *req, struct rpc_ns_create *a)
{
	struct fn_subsys *s = fn_subsys_find(a->nqn);
	struct fn_ns_op *op;
	struct fn_chain *ch;
	json_t *ns;

	if (s == NULL) {
		nvl_rpc_error(req, -ENOENT, "subsystem %s not found (nvme_subsystem_create)", a->nqn);
		return;
	}
	if (a->nsid == 0) {
		/* the lowest free id, known before the call (saved with it) */
		a->nsid = 1;
		while (fn_ns_find(s, a->nsid))
			a->nsid++;
	}
	if (fn_ns_find(s, a->nsid)) {
		nvl_rpc_error(req, -EEXIST, "namespace %u exists in %s", a->nsid, a->nqn);
		return;
	}
	ns = json_pack("{s:s, s:i, s:b}", "bdev_name", a->bdev_name, "nsid", (int)a->nsid,
		       "no_auto_visible", 1);
	if (a->uuid)
		json_object_set_new(ns, "uuid", json_string(a->uuid));
	if (a->nguid)
		json_object_set_new(ns, "nguid", json_string(a->nguid));
	if (a->eui64)
		json_object_set_new(ns, "eui64", json_string(a->eui64));
	op = calloc(1, sizeof(*op));
	ch = op ? fn_chain_new(fn_ns_created, op) : NULL;
	if (ch == NULL) {
		free(op);
		json_decref(ns);
		nvl_rpc_error(req, NVL_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	op->req = req;
	op->sub = s;
	op->nsid = a->nsid;
	fn_chain_add(ch, "nvmf_subsystem_add_ns",
		     json_pack("{s:s, s:o}", "nqn", a->nqn, "namespace", ns));
	fn_chain_next(ch);
}
NVL_RPC_REGISTER("nvme_namespace_create", rpc_nvme_namespace_create, struct rpc_ns_create,
		 ns_create_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SNAP's: a namespace of a subsystem on a bdev, visible to no controller until "
		 "nvme_controller_attach_ns. Returns the nsid.")

struct rpc_ns_destroy {
	const char *nqn;
	uint32_t nsid;
};

static const struct nvl_rpc_param ns_destroy_params[] = {
	NVL_RPC_PARAM(struct rpc_ns_destroy, nqn, NVL_RPC_T_STR, true, "subsystem NQN"),
	NVL_RPC_PARAM(struct rpc_ns_destroy, nsid, NVL_RPC_T_U32, true, "namespace id"),
};

static void
fn_ns_destroyed(void *arg, int code, const char *msg)
{
	struct fn_ns_op *op = arg;
	struct fn_ns *n = fn_ns_find(op->sub, op->nsid);

	if (code) {
		nvl_rpc_error(op->req, code, "%s", msg);
	} else {
		if (n) {
			TAILQ_REMOVE(&g_nss, n, link);
			json_decref(n->params);
			free(n);
		}
		nvl_rpc_result_bool(op->req, true);
	}
	free(op);
}

static void
rpc_nvme_namespace_destroy(struct nvl_rpc_request *req, struct rpc_ns_destroy *a)
{
	struct fn_subsys *s = fn_subsys_find(a->nqn);
	struct fn_ns_op *op;
	struct fn_chain *ch;
	struct fn_nvme *c;

	if (s == NULL || fn_ns_find(s, a->nsid) == NULL) {
		nvl_rpc_error(req, -ENOENT, "namespace %u of %s not found", a->nsid, a->nqn);
		return;
	}
	TAILQ_FOREACH(c, &g_ctrls, link) {
		if (c->sub == s && fn_ctrl_has_ns(c, a->nsid)) {
			nvl_rpc_error(req, -EBUSY,
				      "namespace %u is attached to %s: nvme_controller_detach_ns first",
				      a->nsid, c->fn->name);
			return;
		}
	}
	op = calloc(1, sizeof(*op));
	ch = op ? fn_chain_new(fn_ns_destroyed, op) : NULL;
	if (ch == NULL) {
		free(op);
		nvl_rpc_error(req, NVL_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	op->req = req;
	op->sub = s;
	op->nsid = a->nsid;
	fn_chain_add(ch, "nvmf_subsystem_remove_ns",
		     json_pack("{s:s, s:i}", "nqn", a->nqn, "nsid", (int)a->nsid));
	fn_chain_next(ch);
}
NVL_RPC_REGISTER("nvme_namespace_destroy", rpc_nvme_namespace_destroy, struct rpc_ns_destroy,
		 ns_destroy_params, NVL_RPC_RUNTIME,
		 "SNAP's: remove a namespace attached to no controller (what is in flight "
		 "finishes first).")

/* ---- spdk_bdev_create ------------------------------------------------------------ */

struct rpc_spdk_bdev {
	const char *bdev_name;
};

static const struct nvl_rpc_param spdk_bdev_params[] = {
	NVL_RPC_PARAM(struct rpc_spdk_bdev, bdev_name, NVL_RPC_T_STR, true, "an existing bdev"),
};

static void
rpc_spdk_bdev_create(struct nvl_rpc_request *req, struct rpc_spdk_bdev *a)
{
	/* SNAP wraps an SPDK bdev for its emulation layer; here every bdev is
	 * one already: check it exists and answer its name, as SNAP does */
	if (nvl_bdev_get_by_name(a->bdev_name) == NULL) {
		nvl_rpc_error(req, -ENOENT, "bdev '%s' not found", a->bdev_name);
		return;
	}
	nvl_rpc_result(req, json_string(a->bdev_name));
}
NVL_RPC_REGISTER("spdk_bdev_create", rpc_spdk_bdev_create, struct rpc_spdk_bdev,
		 spdk_bdev_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SNAP's: expose a bdev to the emulation layer. Every bdev already is: this checks "
		 "that it exists and returns its name.")

/* ---- nvme_controller_create ------------------------------------------------------ */

struct rpc_ctrl_create {
	const char *nqn;
	const char *ctrl;
	uint16_t pf_id;
	int32_t vf_id;
	uint16_t num_queues;
	uint8_t mdts;
	bool suspended;
	int32_t vf_num_msix;
	bool dynamic_msix;
	const char *socket;
	uint16_t cntlid;
	bool admin_only;
};

static const struct nvl_rpc_param ctrl_create_params[] = {
	NVL_RPC_PARAM(struct rpc_ctrl_create, nqn, NVL_RPC_T_STR, true,
		      "subsystem NQN (nvme_subsystem_create)"),
	NVL_RPC_PARAM(struct rpc_ctrl_create, ctrl, NVL_RPC_T_STR, false,
		      "controller name (default: NVMeCtrlN, as SNAP names them)"),
	NVL_RPC_PARAM(struct rpc_ctrl_create, pf_id, NVL_RPC_T_U16, true,
		      "PF index (function_create_pf)"),
	NVL_RPC_PARAM(struct rpc_ctrl_create, vf_id, NVL_RPC_T_I32, false,
		      "VF index under the PF (default -1: the PF's own controller)",
		      NVL_RPC_DEFAULT("-1"), NVL_RPC_RANGE(-1, NVL_FN_MAX_VFS - 1)),
	NVL_RPC_PARAM(struct rpc_ctrl_create, num_queues, NVL_RPC_T_U16, false,
		      "I/O queue pairs the consumer may create", NVL_RPC_DEFAULT("8"),
		      NVL_RPC_RANGE(1, SHM_MAX_QUEUES)),
	NVL_RPC_PARAM(struct rpc_ctrl_create, mdts, NVL_RPC_T_U8, false,
		      "maximum data transfer size, a power of two in units of 4 KiB (0: the "
		      "target's default)",
		      NVL_RPC_DEFAULT("0"), NVL_RPC_RANGE(0, 10)),
	NVL_RPC_PARAM(struct rpc_ctrl_create, suspended, NVL_RPC_T_BOOL, false,
		      "create it suspended: a consumer may open it and make queues, no command is "
		      "fetched until nvme_controller_resume (after nvme_controller_attach_ns)"),
	NVL_RPC_PARAM(struct rpc_ctrl_create, vf_num_msix, NVL_RPC_T_I32, false,
		      "interrupt vectors taken from the PF's pool (default: those still linked to "
		      "this VF, else num_queues + 1); CQs asking for a vector beyond them are "
		      "polled",
		      NVL_RPC_DEFAULT("-1"), NVL_RPC_RANGE(-1, NVL_FN_MAX_POOL)),
	NVL_RPC_PARAM(struct rpc_ctrl_create, dynamic_msix, NVL_RPC_T_BOOL, false,
		      "SNAP's: accepted; every PF's pool is dynamic here"),
	NVL_RPC_PARAM(struct rpc_ctrl_create, socket, NVL_RPC_T_STR, false,
		      "the function's endpoint (a Unix socket a consumer opens with nvme+fn://"
		      "SOCKET); relative paths go in the vhost socket directory (nvlendd -S); "
		      "default: NAME.nvme there"),
	NVL_RPC_PARAM(struct rpc_ctrl_create, cntlid, NVL_RPC_T_U16, false,
		      "controller id (default: the lowest free in the subsystem; kept across "
		      "restarts by save_config)",
		      NVL_RPC_DEFAULT("0"), NVL_RPC_RANGE(0, 0xffef)),
	NVL_RPC_PARAM(struct rpc_ctrl_create, admin_only, NVL_RPC_T_BOOL, false,
		      "SNAP's admin-only controller: not supported here (must be false)"),
	FN_HW_PARAMS,
};

static void
fn_ctrl_free(struct fn_nvme *c)
{
	json_decref(c->params);
	free(c);
}

struct fn_create_undo {
	struct fn_nvme *c;
	int code;
	char msg[256];
};

static void
fn_ctrl_undone(void *arg, int code, const char *msg)
{
	struct fn_create_undo *u = arg;
	struct fn_nvme *c = u->c;

	(void)code;
	(void)msg;
	TAILQ_REMOVE(&g_ctrls, c, link);
	nvl_fn_destroy(c->fn, true);
	nvl_rpc_error(c->req, u->code, "%s", u->msg);
	fn_ctrl_free(c);
	free(u);
}

static void
fn_ctrl_created(void *arg, int code, const char *msg)
{
	struct fn_nvme *c = arg;
	struct nvl_rpc_request *req = c->req;
	struct fn_create_undo *u;
	struct fn_chain *ch;

	if (code) {
		/* undo what was made (what failed was not: its removal fails, ignored) */
		u = calloc(1, sizeof(*u));
		ch = u ? fn_chain_new(fn_ctrl_undone, u) : NULL;
		if (ch == NULL) {
			free(u);
			TAILQ_REMOVE(&g_ctrls, c, link);
			nvl_fn_destroy(c->fn, true);
			nvl_rpc_error(req, code, "%s", msg);
			fn_ctrl_free(c);
			return;
		}
		u->c = c;
		u->code = code;
		nvl_strlcpy(u->msg, msg, sizeof(u->msg));
		ch->keep_going = true;
		fn_chain_add(ch, "nvmf_subsystem_remove_listener",
			     json_pack("{s:s, s:{s:s, s:s}}", "nqn", c->sub->nqn, "listen_address",
				       "trtype", "SHM", "traddr", c->socket));
		fn_chain_add(ch, "nvmf_subsystem_remove_host",
			     json_pack("{s:s, s:s}", "nqn", c->sub->nqn, "host", c->hostnqn));
		fn_chain_next(ch);
		return;
	}
	c->req = NULL;
	c->op = FN_OP_NONE;
	NVL_NOTICELOG("function %s: NVMe controller %u of %s on %s, %u queues, %u vectors%s",
		      c->fn->name, c->cntlid, c->sub->nqn, c->socket, c->num_queues, c->fn->nvec,
		      c->fn->state == NVL_FN_SUSPENDED ? ", suspended" : "");
	nvl_rpc_result(req, json_pack("{s:s, s:i, s:s}", "name", c->fn->name, "cntlid",
				      (int)c->cntlid, "socket", c->socket));
}

static uint16_t
fn_free_cntlid(const struct fn_subsys *s)
{
	uint16_t id = 1;
	struct fn_nvme *c;

again:
	TAILQ_FOREACH(c, &g_ctrls, link) {
		if (c->sub == s && c->cntlid == id) {
			id++;
			goto again;
		}
	}
	return id;
}

static void
rpc_nvme_controller_create(struct nvl_rpc_request *req, struct rpc_ctrl_create *a)
{
	struct fn_subsys *s = fn_subsys_find(a->nqn);
	struct nvl_fn_pf *pf = nvl_fn_pf_find(a->pf_id);
	char name[NVL_FN_NAME_MAX], why[256], sock[FN_SOCKET_MAX], def[NVL_FN_NAME_MAX + 8];
	struct fn_chain *ch;
	struct fn_nvme *c, *o;
	uint32_t nmsix;
	int rc;

	if (fn_refuse_hw_params(req))
		return;
	if (a->admin_only) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "admin_only: not supported (every controller has I/O queues)");
		return;
	}
	if (s == NULL) {
		nvl_rpc_error(req, -ENOENT, "subsystem %s not found (nvme_subsystem_create)", a->nqn);
		return;
	}
	if (pf == NULL) {
		nvl_rpc_error(req, -ENOENT, "PF %u not found (function_create_pf)", a->pf_id);
		return;
	}
	if (a->ctrl) {
		if (a->ctrl[0] == '\0' || strlen(a->ctrl) >= sizeof(name) || strchr(a->ctrl, '/')) {
			nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "ctrl: 1..%zu bytes, no '/'",
				      sizeof(name) - 1);
			return;
		}
		nvl_strlcpy(name, a->ctrl, sizeof(name));
	} else {
		do
			snprintf(name, sizeof(name), "NVMeCtrl%u", g_next_ctrl++);
		while (nvl_fn_find(name));
	}
	if (a->cntlid) {
		TAILQ_FOREACH(o, &g_ctrls, link) {
			if (o->sub == s && o->cntlid == a->cntlid) {
				nvl_rpc_error(req, -EEXIST, "cntlid %u is %s's in %s", a->cntlid,
					      o->fn->name, a->nqn);
				return;
			}
		}
	}
	snprintf(def, sizeof(def), "%s.nvme", name);
	rc = nvl_vblk_socket_path(a->socket ? a->socket : def, sock, sizeof(sock));
	if (rc < 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "socket path: %s", strerror(-rc));
		return;
	}
	if (fn_ctrl_by_socket(sock)) {
		nvl_rpc_error(req, -EEXIST, "%s is another function's endpoint", sock);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		nvl_rpc_error(req, NVL_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	if (a->vf_num_msix >= 0)
		nmsix = (uint32_t)a->vf_num_msix;
	else if (nvl_fn_pf_linked(pf, a->vf_id))
		nmsix = 0; /* those still linked to the VF */
	else
		nmsix = NVL_MIN((uint32_t)a->num_queues + 1, (uint32_t)SHM_MAX_VECTORS);
	rc = nvl_fn_create(pf, a->vf_id, NVL_FN_NVME, name, nmsix, &c->fn, why, sizeof(why));
	if (rc < 0) {
		free(c);
		nvl_rpc_error(req, rc == -EINVAL ? NVL_RPC_INVALID_PARAMS : rc, "%s", why);
		return;
	}
	c->fn->ctx = c;
	c->fn->state = a->suspended ? NVL_FN_SUSPENDED : NVL_FN_RUNNING;
	c->created_suspended = a->suspended;
	c->sub = s;
	c->cntlid = a->cntlid ? a->cntlid : fn_free_cntlid(s);
	c->num_queues = a->num_queues;
	c->mdts = a->mdts;
	nvl_strlcpy(c->socket, sock, sizeof(c->socket));
	if (a->vf_id == NVL_FN_NO_VF)
		snprintf(c->hostnqn, sizeof(c->hostnqn), FN_HOST_PREFIX "pf%u", a->pf_id);
	else
		snprintf(c->hostnqn, sizeof(c->hostnqn), FN_HOST_PREFIX "pf%uvf%d", a->pf_id,
			 a->vf_id);
	c->params = json_pack("{s:s, s:s, s:i, s:i, s:i, s:b, s:i, s:s, s:i}", "nqn", a->nqn,
			      "ctrl", name, "pf_id", (int)a->pf_id, "num_queues",
			      (int)a->num_queues, "mdts", (int)a->mdts, "suspended", a->suspended,
			      "vf_num_msix", (int)c->fn->nvec, "socket", c->socket, "cntlid",
			      (int)c->cntlid);
	if (a->vf_id != NVL_FN_NO_VF)
		json_object_set_new(c->params, "vf_id", json_integer(a->vf_id));
	c->op = FN_OP_CREATE;
	c->req = req;
	TAILQ_INSERT_TAIL(&g_ctrls, c, link);
	ch = fn_chain_new(fn_ctrl_created, c);
	if (ch == NULL) {
		fn_ctrl_created(c, NVL_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	fn_chain_add(ch, "nvmf_subsystem_add_host",
		     json_pack("{s:s, s:s}", "nqn", a->nqn, "host", c->hostnqn));
	fn_chain_add(ch, "nvmf_subsystem_add_listener",
		     json_pack("{s:s, s:{s:s, s:s}}", "nqn", a->nqn, "listen_address", "trtype",
			       "SHM", "traddr", c->socket));
	fn_chain_next(ch);
}
NVL_RPC_REGISTER("nvme_controller_create", rpc_nvme_controller_create, struct rpc_ctrl_create,
		 ctrl_create_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SNAP's: an emulated NVMe controller on a PF or VF, made before any consumer: a "
		 "fixed cntlid, queue count and MDTS, interrupt vectors from the PF's pool, and its "
		 "own endpoint socket that a consumer opens without a Connect (nvme+fn://SOCKET). "
		 "Returns {name, cntlid, socket}.")

/* ---- attach / detach ------------------------------------------------------------- */

struct rpc_ctrl_ns {
	const char *ctrl;
	uint32_t nsid;
};

static const struct nvl_rpc_param ctrl_ns_params[] = {
	NVL_RPC_PARAM(struct rpc_ctrl_ns, ctrl, NVL_RPC_T_STR, true,
		      "controller name (SNAP's -c)"),
	NVL_RPC_PARAM(struct rpc_ctrl_ns, nsid, NVL_RPC_T_U32, true,
		      "namespace id of the controller's subsystem (SNAP's -n)"),
};

static struct fn_nvme *
fn_ctrl_or_error(struct nvl_rpc_request *req, const char *name)
{
	struct fn_nvme *c = name ? fn_ctrl_find(name) : NULL;

	if (c == NULL) {
		nvl_rpc_error(req, -ENOENT, "controller '%s' not found", name ? name : "");
		return NULL;
	}
	if (c->op != FN_OP_NONE) {
		nvl_rpc_error(req, -EBUSY, "controller '%s' is busy with another request; try again",
			      name);
		return NULL;
	}
	return c;
}

static void
fn_attach_done(void *arg, int code, const char *msg)
{
	struct fn_nvme *c = arg;
	struct nvl_rpc_request *req = c->req;

	c->req = NULL;
	c->op = FN_OP_NONE;
	if (code) {
		nvl_rpc_error(req, code, "%s", msg);
		return;
	}
	if (c->op_attach) {
		if (c->nns < FN_MAX_ATTACH)
			c->ns[c->nns++] = c->op_nsid;
	} else {
		fn_ctrl_drop_ns(c, c->op_nsid);
	}
	nvl_rpc_result_bool(req, true);
}

static void
fn_attach_detach(struct nvl_rpc_request *req, struct rpc_ctrl_ns *a, bool attach)
{
	struct fn_nvme *c = fn_ctrl_or_error(req, a->ctrl);
	struct fn_chain *ch;

	if (c == NULL)
		return;
	if (fn_ns_find(c->sub, a->nsid) == NULL) {
		nvl_rpc_error(req, -ENOENT, "namespace %u of %s not found (nvme_namespace_create)",
			      a->nsid, c->sub->nqn);
		return;
	}
	if (attach && fn_ctrl_has_ns(c, a->nsid)) {
		nvl_rpc_error(req, -EEXIST, "namespace %u is attached to %s already", a->nsid,
			      a->ctrl);
		return;
	}
	if (!attach && !fn_ctrl_has_ns(c, a->nsid)) {
		nvl_rpc_error(req, -ENOENT, "namespace %u is not attached to %s", a->nsid, a->ctrl);
		return;
	}
	if (attach && c->nns == FN_MAX_ATTACH) {
		nvl_rpc_error(req, -ENOSPC, "%s has %d namespaces attached", a->ctrl, FN_MAX_ATTACH);
		return;
	}
	ch = fn_chain_new(fn_attach_done, c);
	if (ch == NULL) {
		nvl_rpc_error(req, NVL_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	c->op = FN_OP_ATTACH;
	c->req = req;
	c->op_nsid = a->nsid;
	c->op_attach = attach;
	fn_chain_add(ch, attach ? "nvmf_ns_add_host" : "nvmf_ns_remove_host",
		     json_pack("{s:s, s:i, s:s}", "nqn", c->sub->nqn, "nsid", (int)a->nsid, "host",
			       c->hostnqn));
	fn_chain_next(ch);
}

static void
rpc_nvme_controller_attach_ns(struct nvl_rpc_request *req, struct rpc_ctrl_ns *a)
{
	fn_attach_detach(req, a, true);
}
NVL_RPC_REGISTER("nvme_controller_attach_ns", rpc_nvme_controller_attach_ns,
		 struct rpc_ctrl_ns, ctrl_ns_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SNAP's: make a namespace visible to one controller (a connected consumer gets "
		 "the Namespace Attribute Changed event).")

static void
rpc_nvme_controller_detach_ns(struct nvl_rpc_request *req, struct rpc_ctrl_ns *a)
{
	fn_attach_detach(req, a, false);
}
NVL_RPC_REGISTER("nvme_controller_detach_ns", rpc_nvme_controller_detach_ns,
		 struct rpc_ctrl_ns, ctrl_ns_params, NVL_RPC_RUNTIME,
		 "SNAP's: hide a namespace from one controller again (Namespace Attribute "
		 "Changed event).")

/* ---- list ---------------------------------------------------------------------- */

struct rpc_ctrl_name {
	const char *ctrl;
	const char *name;
};

static const struct nvl_rpc_param ctrl_list_params[] = {
	NVL_RPC_PARAM(struct rpc_ctrl_name, ctrl, NVL_RPC_T_STR, false,
		      "only this controller (SNAP's -c)"),
	NVL_RPC_PARAM(struct rpc_ctrl_name, name, NVL_RPC_T_STR, false, "the same"),
};

static void
rpc_nvme_controller_list(struct nvl_rpc_request *req, struct rpc_ctrl_name *a)
{
	const char *only = a->ctrl ? a->ctrl : a->name;
	json_t *arr = json_array();
	struct fn_nvme *c;

	TAILQ_FOREACH(c, &g_ctrls, link)
		if (c->op != FN_OP_CREATE && (only == NULL || strcmp(only, c->fn->name) == 0))
			json_array_append_new(arr, fn_ctrl_json(c));
	if (only && json_array_size(arr) == 0) {
		json_decref(arr);
		nvl_rpc_error(req, -ENOENT, "controller '%s' not found", only);
		return;
	}
	nvl_rpc_result(req, arr);
}
NVL_RPC_REGISTER("nvme_controller_list", rpc_nvme_controller_list, struct rpc_ctrl_name,
		 ctrl_list_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SNAP's: NVMe controllers with PF/VF, cntlid, state, consumer pid, queues, "
		 "num_msix (held) and num_free_msix (the PF pool's), attached namespaces.")

/* ---- destroy ------------------------------------------------------------------- */

struct rpc_ctrl_destroy {
	const char *ctrl;
	const char *name;
	bool release_msix;
	bool force;
};

static const struct nvl_rpc_param ctrl_destroy_params[] = {
	NVL_RPC_PARAM(struct rpc_ctrl_destroy, ctrl, NVL_RPC_T_STR, false,
		      "controller name (SNAP's -c)"),
	NVL_RPC_PARAM(struct rpc_ctrl_destroy, name, NVL_RPC_T_STR, false, "the same"),
	NVL_RPC_PARAM(struct rpc_ctrl_destroy, release_msix, NVL_RPC_T_BOOL, false,
		      "give the function's vectors back to the PF's pool (default: they stay "
		      "linked to the VF id)"),
	NVL_RPC_PARAM(struct rpc_ctrl_destroy, force, NVL_RPC_T_BOOL, false,
		      "destroy also while a consumer has it open: its commands in flight finish, "
		      "then its connection is closed (default: refused)"),
};

static void
fn_destroy_done(void *arg, int code, const char *msg)
{
	struct fn_nvme *c = arg;
	struct nvl_rpc_request *req = c->req;

	/* a teardown step that failed (logged) does not keep the function */
	if (code)
		NVL_WARNLOG("function %s: %s", c->fn->name, msg);
	TAILQ_REMOVE(&g_ctrls, c, link);
	NVL_NOTICELOG("function %s destroyed%s", c->fn->name,
		      c->release_msix ? ", vectors back to the pool" : "");
	nvl_fn_destroy(c->fn, c->release_msix);
	fn_ctrl_free(c);
	if (req)
		nvl_rpc_result_bool(req, true);
}

/* no consumer any more: the target's side goes (namespaces hidden, the
 * endpoint closed, the identity removed), then the function */
static void
fn_destroy_go(struct fn_nvme *c)
{
	struct fn_chain *ch = fn_chain_new(fn_destroy_done, c);

	if (ch == NULL) {
		fn_destroy_done(c, NVL_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	ch->keep_going = true;
	for (unsigned i = 0; i < c->nns && ch->n + 2 < FN_CHAIN_MAX; i++)
		fn_chain_add(ch, "nvmf_ns_remove_host",
			     json_pack("{s:s, s:i, s:s}", "nqn", c->sub->nqn, "nsid", (int)c->ns[i],
				       "host", c->hostnqn));
	fn_chain_add(ch, "nvmf_subsystem_remove_listener",
		     json_pack("{s:s, s:{s:s, s:s}}", "nqn", c->sub->nqn, "listen_address",
			       "trtype", "SHM", "traddr", c->socket));
	fn_chain_add(ch, "nvmf_subsystem_remove_host",
		     json_pack("{s:s, s:s}", "nqn", c->sub->nqn, "host", c->hostnqn));
	fn_chain_next(ch);
}

static void
fn_destroy_start(struct fn_nvme *c, struct nvl_rpc_request *req, bool release_msix)
{
	c->op = FN_OP_DESTROY;
	c->req = req;
	c->release_msix = release_msix;
	if (c->consumer) {
		/* fn_shm_closed() goes on once the connection is freed */
		shm_conn_teardown(c->consumer, "function destroyed");
		return;
	}
	fn_destroy_go(c);
}

static void
rpc_nvme_controller_destroy(struct nvl_rpc_request *req, struct rpc_ctrl_destroy *a)
{
	struct fn_nvme *c = fn_ctrl_or_error(req, a->ctrl ? a->ctrl : a->name);

	if (c == NULL)
		return;
	if (c->consumer && !a->force) {
		nvl_rpc_error(req, -EBUSY, "controller %s is open by pid %u: use force",
			      c->fn->name, shm_fn_consumer_pid(c->consumer));
		return;
	}
	fn_destroy_start(c, req, a->release_msix);
}
NVL_RPC_REGISTER("nvme_controller_destroy", rpc_nvme_controller_destroy,
		 struct rpc_ctrl_destroy, ctrl_destroy_params, NVL_RPC_RUNTIME,
		 "SNAP's: remove an NVMe controller (its endpoint socket goes; with force also "
		 "while a consumer has it open).")

/* ---- suspend / resume ---------------------------------------------------------- */

static bool
fn_suspend_drained(void *arg)
{
	struct fn_nvme *c = arg;

	return c->consumer == NULL || shm_fn_inflight(c->consumer) == 0;
}

static void
fn_suspend_finish(void *arg)
{
	struct fn_nvme *c = arg;
	struct nvl_rpc_request *req = c->req;

	c->req = NULL;
	c->op = FN_OP_NONE;
	nvl_rpc_result_bool(req, true);
}

/* every reactor passed a point after the flag was set: no poller is still
 * fetching with the old value, so the in-flight count only goes down now */
static void
fn_suspend_barrier(void *arg, int rc)
{
	struct fn_nvme *c = arg;

	(void)rc;
	if (nvl_reactor_drain(fn_suspend_drained, fn_suspend_finish, c, 1000) < 0)
		fn_suspend_finish(c);
}

static void
rpc_nvme_controller_suspend(struct nvl_rpc_request *req, struct rpc_ctrl_name *a)
{
	struct fn_nvme *c = fn_ctrl_or_error(req, a->ctrl ? a->ctrl : a->name);

	if (c == NULL)
		return;
	c->fn->state = NVL_FN_SUSPENDED;
	if (c->consumer == NULL) {
		nvl_rpc_result_bool(req, true);
		return;
	}
	shm_fn_set_suspended(c->consumer, true);
	c->op = FN_OP_SUSPEND;
	c->req = req;
	if (nvl_reactor_for_each(NULL, NULL, fn_suspend_barrier, c) < 0)
		fn_suspend_barrier(c, 0);
}
NVL_RPC_REGISTER("nvme_controller_suspend", rpc_nvme_controller_suspend, struct rpc_ctrl_name,
		 ctrl_list_params, NVL_RPC_RUNTIME,
		 "SNAP's: stop fetching the controller's new commands; answers once those in "
		 "flight completed (the consumer stays connected, its commands wait).")

static void
rpc_nvme_controller_resume(struct nvl_rpc_request *req, struct rpc_ctrl_name *a)
{
	struct fn_nvme *c = fn_ctrl_or_error(req, a->ctrl ? a->ctrl : a->name);

	if (c == NULL)
		return;
	if (c->created_suspended && c->nns == 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_STATE,
			      "controller %s was created suspended: attach its namespaces "
			      "(nvme_controller_attach_ns) before resuming it",
			      c->fn->name);
		return;
	}
	c->created_suspended = false;
	json_object_set_new(c->params, "suspended", json_false());
	c->fn->state = NVL_FN_RUNNING;
	if (c->consumer)
		shm_fn_set_suspended(c->consumer, false);
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("nvme_controller_resume", rpc_nvme_controller_resume, struct rpc_ctrl_name,
		 ctrl_list_params, NVL_RPC_RUNTIME,
		 "SNAP's: fetch the controller's commands again (those that waited first).")

/* ---- nvme_controller_vfs_msix_reclaim ------------------------------------------- */

struct rpc_reclaim {
	const char *ctrl;
	int32_t pf_id;
};

static const struct nvl_rpc_param reclaim_params[] = {
	NVL_RPC_PARAM(struct rpc_reclaim, ctrl, NVL_RPC_T_STR, false,
		      "a controller of the PF (SNAP names the PF's controller)"),
	NVL_RPC_PARAM(struct rpc_reclaim, pf_id, NVL_RPC_T_I32, false, "or the PF index",
		      NVL_RPC_DEFAULT("-1"), NVL_RPC_RANGE(-1, 65535)),
};

static void
rpc_nvme_controller_vfs_msix_reclaim(struct nvl_rpc_request *req, struct rpc_reclaim *a)
{
	struct nvl_fn_pf *pf = NULL;
	uint32_t n;

	if (a->ctrl) {
		struct nvl_fn *f = nvl_fn_find(a->ctrl);

		if (f == NULL) {
			nvl_rpc_error(req, -ENOENT, "controller '%s' not found", a->ctrl);
			return;
		}
		pf = f->pf;
	} else if (a->pf_id >= 0) {
		pf = nvl_fn_pf_find((uint16_t)a->pf_id);
		if (pf == NULL) {
			nvl_rpc_error(req, -ENOENT, "PF %d not found", a->pf_id);
			return;
		}
	} else {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "ctrl or pf_id is required");
		return;
	}
	n = nvl_fn_pf_reclaim(pf);
	nvl_rpc_result(req, json_pack("{s:i, s:i, s:i}", "pf_id", (int)pf->pf_id, "reclaimed",
				      (int)n, "num_free_msix", (int)pf->nfree));
}
NVL_RPC_REGISTER("nvme_controller_vfs_msix_reclaim", rpc_nvme_controller_vfs_msix_reclaim,
		 struct rpc_reclaim, reclaim_params, NVL_RPC_RUNTIME,
		 "SNAP's: give back to the PF's pool every vector still linked to a VF without a "
		 "controller. Returns {pf_id, reclaimed, num_free_msix}.")

/* ---- subsystem: start, save_config, shutdown ------------------------------------- */

static int
fn_subsys_init(void)
{
	shm_fn_register(&g_fn_shm_ops);
	g_fn_restoring = false;
	if (nvl_fdstore_available())
		nvl_fdstore_for_each_untaken(fn_note_kept, &g_fn_restoring);
	return 0;
}

/* After nvmf's start (order 30 < 50): the kept consumers are back. */
static void
fn_subsys_start(void)
{
	g_fn_restoring = false;
}

static json_t *
fn_call(const char *method, json_t *params)
{
	return json_pack("{s:s, s:o}", "method", method, "params", params);
}

static void
fn_write_config(json_t *calls)
{
	struct fn_subsys *s;
	struct fn_ns *n;
	struct fn_nvme *c;

	for (struct nvl_fn_pf *pf = nvl_fn_pf_first(); pf; pf = nvl_fn_pf_next(pf))
		json_array_append_new(
			calls, fn_call("function_create_pf",
				       json_pack("{s:i, s:s, s:i, s:i}", "pf_id", (int)pf->pf_id,
						 "type", nvl_fn_type_name(pf->type), "num_msix",
						 (int)pf->pool_size, "max_vfs", (int)pf->max_vfs)));
	TAILQ_FOREACH(s, &g_subs, link)
		json_array_append_new(calls, fn_call("nvme_subsystem_create",
						     json_deep_copy(s->params)));
	TAILQ_FOREACH(n, &g_nss, link)
		json_array_append_new(calls, fn_call("nvme_namespace_create",
						     json_deep_copy(n->params)));
	TAILQ_FOREACH(c, &g_ctrls, link) {
		json_t *p;

		if (c->op == FN_OP_CREATE || c->op == FN_OP_DESTROY)
			continue;
		p = json_deep_copy(c->params);
		/* attached first, resumed after: as created */
		json_object_set_new(p, "suspended",
				    json_boolean(c->fn->state == NVL_FN_SUSPENDED));
		json_array_append_new(calls, fn_call("nvme_controller_create", p));
	}
	TAILQ_FOREACH(c, &g_ctrls, link)
		for (unsigned i = 0; i < c->nns; i++)
			json_array_append_new(calls,
					      fn_call("nvme_controller_attach_ns",
						      json_pack("{s:s, s:i}", "ctrl", c->fn->name,
								"nsid", (int)c->ns[i])));
}

static nvl_app_done_fn g_fini_done;

static bool
fn_all_gone(void *arg)
{
	struct fn_nvme *c, *tmp;

	(void)arg;
	/* one that an RPC was creating, suspending or attaching when the
	 * shutdown began goes once that is over */
	TAILQ_FOREACH_SAFE(c, &g_ctrls, link, tmp)
		if (c->op == FN_OP_NONE)
			fn_destroy_start(c, NULL, false);
	return TAILQ_EMPTY(&g_ctrls);
}

static void
fn_fini_finish(void *arg)
{
	nvl_app_done_fn done = g_fini_done;
	struct nvl_fn_pf *pf;

	(void)arg;
	/* the pools close (the virtio-blk functions went before: vhost_blk stops first) */
	while ((pf = nvl_fn_pf_first()) != NULL && nvl_fn_pf_destroy(pf) == 0)
		;
	g_fini_done = NULL;
	if (done)
		done();
}

/* Shutdown (before nvmf goes): every controller is destroyed keeping its
 * vectors' links, then the PFs' pools close. */
static void
fn_fini(nvl_app_done_fn done)
{
	struct fn_nvme *c, *tmp;

	g_fini_done = done;
	TAILQ_FOREACH_SAFE(c, &g_ctrls, link, tmp)
		if (c->op == FN_OP_NONE)
			fn_destroy_start(c, NULL, false);
	if (nvl_reactor_drain(fn_all_gone, fn_fini_finish, NULL, 1000) < 0)
		fn_fini_finish(NULL);
}

static struct nvl_subsystem g_fn_subsys = {
	.name = "function",
	.order = 50,
	.init = fn_subsys_init,
	.start = fn_subsys_start,
	.fini = fn_fini,
	.write_config = fn_write_config,
	.init_at_handover = true, /* which consumers the old worker kept */
};
NVL_SUBSYSTEM_REGISTER(g_fn_subsys)
