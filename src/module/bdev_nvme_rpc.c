/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * RPC glue of the nvme bdev module: bdev_nvme_attach_controller,
 * bdev_nvme_detach_controller, bdev_nvme_get_controllers,
 * bdev_nvme_start_discovery, bdev_nvme_stop_discovery,
 * bdev_nvme_get_discovery_info (SPDK's names and parameters), and the
 * daemon subsystem that saves what bdevs do not (controllers waiting for
 * their target, discovery services) and detaches everything at shutdown. Parameters are checked and defaulted here; the pending request
 * waits in the completion's argument, not in the controller
 * (bdev_nvme_ctrlr.c). The only file of the module that includes app/.
 * Reactor 0 (the RPC thread).
 */
#include "app/app.h"
#include "module/bdev_nvme_internal.h"
#include "nvlend/nvlend.h"
#include "rpc/rpc.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NVME_DEFAULT_CONNECT_MS 10000

/* Shape check only: the controller judges the NQN itself. */
static bool
nqn_ok(const char *nqn)
{
	size_t n = strlen(nqn);

	if (n < 5 || n > 223 || strncmp(nqn, "nqn.", 4) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)nqn[i] < 0x20 || nqn[i] == 0x7f)
			return false;
	return true;
}

struct rpc_attach {
	const char *name, *trtype, *adrfam, *traddr, *trsvcid, *subnqn, *hostnqn, *hostid;
	const char *hostaddr, *hostsvcid, *multipath, *psk, *dhchap_key, *dhchap_ctrlr_key;
	bool hdgst, ddgst, prchk_reftag, prchk_guard, retry_first_connect;
	uint32_t max_bdevs;
	uint32_t num_io_queues, io_queue_size, reconnect_delay_sec, fast_io_fail_timeout_sec;
	uint32_t keep_alive_timeout_ms;
	int64_t ctrlr_loss_timeout_sec;
	uint64_t fabrics_connect_timeout_us;
};

static const struct nvl_rpc_param attach_params[] = {
	NVL_RPC_PARAM(struct rpc_attach, name, NVL_RPC_T_STR, true,
		      "controller name; its bdevs are NAMEn<nsid>"),
	NVL_RPC_PARAM(struct rpc_attach, trtype, NVL_RPC_T_STR, true,
		      "\"tcp\", \"rdma\" (NVMe/RDMA) or \"shm\" (an nvlendd shm listener)"),
	NVL_RPC_PARAM(struct rpc_attach, traddr, NVL_RPC_T_STR, true,
		      "target IP address (shm: the listener's socket path)"),
	NVL_RPC_PARAM(struct rpc_attach, adrfam, NVL_RPC_T_STR, false,
		      "\"IPv4\" or \"IPv6\" (default: from traddr)"),
	NVL_RPC_PARAM(struct rpc_attach, trsvcid, NVL_RPC_T_STR, false, "port (default 4420)"),
	NVL_RPC_PARAM(struct rpc_attach, subnqn, NVL_RPC_T_STR, true, "subsystem NQN"),
	NVL_RPC_PARAM(struct rpc_attach, hostnqn, NVL_RPC_T_STR, false,
		      "host NQN (default: nqn.2014-08.org.nvmexpress:uuid:<machine uuid>)"),
	NVL_RPC_PARAM(struct rpc_attach, hostid, NVL_RPC_T_STR, false,
		      "host identifier UUID (default: from the host NQN or the machine)"),
	NVL_RPC_PARAM(struct rpc_attach, hostaddr, NVL_RPC_T_STR, false,
		      "SPDK compatibility; not supported (refused if set)"),
	NVL_RPC_PARAM(struct rpc_attach, hostsvcid, NVL_RPC_T_STR, false,
		      "SPDK compatibility; not supported (refused if set)"),
	NVL_RPC_PARAM(struct rpc_attach, multipath, NVL_RPC_T_STR, false,
		      "SPDK compatibility; only \"disable\" (one path)"),
	NVL_RPC_PARAM(struct rpc_attach, psk, NVL_RPC_T_STR, false,
		      "TLS: not supported (refused if set)"),
	NVL_RPC_PARAM(struct rpc_attach, hdgst, NVL_RPC_T_BOOL, false, "header digests"),
	NVL_RPC_PARAM(struct rpc_attach, ddgst, NVL_RPC_T_BOOL, false, "data digests"),
	NVL_RPC_PARAM(struct rpc_attach, prchk_reftag, NVL_RPC_T_BOOL, false,
		      "SPDK compatibility; must be false"),
	NVL_RPC_PARAM(struct rpc_attach, prchk_guard, NVL_RPC_T_BOOL, false,
		      "SPDK compatibility; must be false"),
	NVL_RPC_PARAM(struct rpc_attach, num_io_queues, NVL_RPC_T_U32, false,
		      "I/O queue pairs (default and minimum: one per reactor; max 64)"),
	NVL_RPC_PARAM(struct rpc_attach, io_queue_size, NVL_RPC_T_U32, false,
		      "entries per I/O queue (default 128, capped by the controller's MQES)"),
	NVL_RPC_PARAM(struct rpc_attach, ctrlr_loss_timeout_sec, NVL_RPC_T_I64, false,
		      "give the controller up this long after losing it (-1: never, default; "
		      "0: at once)"),
	NVL_RPC_PARAM(struct rpc_attach, reconnect_delay_sec, NVL_RPC_T_U32, false,
		      "first delay between reconnect attempts, doubled after each failure up to "
		      "8x (default 1)"),
	NVL_RPC_PARAM(struct rpc_attach, fast_io_fail_timeout_sec, NVL_RPC_T_U32, false,
		      "fail I/O this long after losing the controller instead of queueing it "
		      "(0: queue until the controller is back or given up; default 0)"),
	NVL_RPC_PARAM(struct rpc_attach, keep_alive_timeout_ms, NVL_RPC_T_U32, false,
		      "keep-alive timeout asked of the controller (default 10000)"),
	NVL_RPC_PARAM(struct rpc_attach, fabrics_connect_timeout_us, NVL_RPC_T_U64, false,
		      "time allowed to connect and initialize (default 10 s)"),
	NVL_RPC_PARAM(struct rpc_attach, retry_first_connect, NVL_RPC_T_BOOL, false,
		      "nvlend: if the target cannot be reached, answer at once and keep the "
		      "controller \"waiting to reconnect\", retrying every reconnect_delay_sec "
		      "(its bdevs appear when it attaches) instead of failing; always so while "
		      "a configuration is loaded (-c)"),
	NVL_RPC_PARAM(struct rpc_attach, max_bdevs, NVL_RPC_T_U32, false,
		      "bdevs for at most this many active namespaces, the lowest NSIDs first "
		      "(default: all, up to 256)"),
	NVL_RPC_PARAM(struct rpc_attach, dhchap_key, NVL_RPC_T_STR, false,
		      "name of a keyring key (keyring_file_add_key): the host authenticates "
		      "with DH-HMAC-CHAP when the controller asks (admin queue, and each "
		      "NVMe/TCP I/O queue); the file is read at each connect"),
	NVL_RPC_PARAM(struct rpc_attach, dhchap_ctrlr_key, NVL_RPC_T_STR, false,
		      "name of a keyring key the controller must prove itself with "
		      "(bidirectional authentication; needs dhchap_key)"),
	NVL_RPC_PARAM_IGNORED("priority", NVL_RPC_T_I64,
			      "path priority among the paths of a multipath bdev: one path here"),
	NVL_RPC_PARAM_IGNORED("allow_unrecognized_csi", NVL_RPC_T_BOOL,
			      "namespaces of other command sets than NVM are never imported"),
	NVL_RPC_PARAM_IGNORED("multipath_opts", NVL_RPC_T_ANY,
			      "options of multipath modes; only \"disable\" (one path) exists here"),
};

/* The caller's host identity, or this machine's (as libnvlend's). */
static int
attach_host(const struct rpc_attach *a, struct nvme_ctrlr_opts *o)
{
	if (a->hostnqn) {
		nvl_strlcpy(o->hostnqn, a->hostnqn, sizeof(o->hostnqn));
		host_hostid_from_nqn(a->hostnqn, o->hostid);
	} else {
		host_default_hostid(o->hostid);
		host_hostnqn_from_id(o->hostid, o->hostnqn, sizeof(o->hostnqn));
	}
	return a->hostid ? nvl_uuid_parse(a->hostid, o->hostid) : 0;
}

static void
rpc_attach_done(void *arg, struct nvme_ctrlr *c, int rc, const char *why)
{
	struct nvl_rpc_request *req = arg;
	json_t *names;

	if (rc < 0) {
		/* libnvlend's words for the failure (nvl_strerror), then the details */
		nvl_rpc_error(req, rc, "%s: %s%s%s%s", c->o.name, nvl_strerror(rc), why ? " (" : "",
			      why ? why : "", why ? ")" : "");
		return;
	}
	names = json_array();
	for (unsigned i = 0; i < c->nbdevs; i++)
		if (c->bdevs[i])
			json_array_append_new(names, json_string(c->bdevs[i]->bdev.name));
	nvl_rpc_result(req, names);
}

static void
rpc_bdev_nvme_attach_controller(struct nvl_rpc_request *req, struct rpc_attach *a)
{
	json_t *params = nvl_rpc_params(req);
	struct nvme_ctrlr_opts *o;
	bool shm = strcasecmp(a->trtype, "shm") == 0;
	bool rdma = strcasecmp(a->trtype, "rdma") == 0;
	int rc;

	if (!shm && !rdma && strcasecmp(a->trtype, "tcp") != 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "trtype %s: tcp, rdma or shm", a->trtype);
		return;
	}
	if (rdma && (a->hdgst || a->ddgst)) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "hdgst/ddgst: NVMe/TCP only");
		return;
	}
	if (a->hostaddr || a->hostsvcid || a->psk || a->prchk_guard || a->prchk_reftag ||
	    (a->multipath && strcmp(a->multipath, "disable") != 0)) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "hostaddr, hostsvcid, psk, protection checks and multipath are not "
			      "supported");
		return;
	}
	if (a->dhchap_ctrlr_key && !a->dhchap_key) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "dhchap_ctrlr_key needs dhchap_key: the controller proves itself only "
			      "to a host that authenticates");
		return;
	}
	for (int k = 0; k < 2; k++) {
		const char *kn = k ? a->dhchap_ctrlr_key : a->dhchap_key;
		struct nvl_dhchap_key key;
		int krc;

		if (kn == NULL)
			continue;
		krc = strlen(kn) < NVL_KEYRING_NAME_MAX ? nvl_keyring_load(kn, &key) : -ENOENT;
		nvl_dhchap_key_wipe(&key);
		if (krc < 0) {
			nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "%s %s: %s",
				      k ? "dhchap_ctrlr_key" : "dhchap_key", kn,
				      krc == -ENOENT ? "no such key in the keyring (keyring_file_add_key)"
						     : strerror(-krc));
			return;
		}
	}
	if (a->name[0] == '\0' || strlen(a->name) >= NVME_NAME_MAX || strchr(a->name, '/')) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "name: 1..%d characters, no '/'",
			      NVME_NAME_MAX - 1);
		return;
	}
	if (bdev_nvme_ctrlr_find(a->name)) {
		nvl_rpc_error(req, -EEXIST, "controller %s already exists", a->name);
		return;
	}
	if (!nqn_ok(a->subnqn) || (a->hostnqn && !nqn_ok(a->hostnqn))) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "malformed NQN");
		return;
	}
	o = calloc(1, sizeof(*o));
	if (o == NULL) {
		nvl_rpc_error(req, NVL_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	nvl_strlcpy(o->name, a->name, sizeof(o->name));
	nvl_strlcpy(o->trtype, shm ? "SHM" : rdma ? "RDMA" : "TCP", sizeof(o->trtype));
	nvl_strlcpy(o->traddr, a->traddr, sizeof(o->traddr));
	nvl_strlcpy(o->trsvcid, shm ? "" : a->trsvcid ? a->trsvcid : "4420", sizeof(o->trsvcid));
	nvl_strlcpy(o->adrfam,
		    shm ? "" : a->adrfam ? a->adrfam : strchr(a->traddr, ':') ? "IPv6" : "IPv4",
		    sizeof(o->adrfam));
	nvl_strlcpy(o->subnqn, a->subnqn, sizeof(o->subnqn));
	if (attach_host(a, o) < 0) {
		free(o);
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "hostid: not a UUID");
		return;
	}
	o->hdgst = a->hdgst;
	o->ddgst = a->ddgst;
	if (a->dhchap_key)
		nvl_strlcpy(o->dhchap_key, a->dhchap_key, sizeof(o->dhchap_key));
	if (a->dhchap_ctrlr_key)
		nvl_strlcpy(o->dhchap_ctrlr_key, a->dhchap_ctrlr_key, sizeof(o->dhchap_ctrlr_key));
	o->num_io_queues = a->num_io_queues ? a->num_io_queues
					    : (nvl_reactor_count() ? nvl_reactor_count() : 1);
	o->io_queue_size = a->io_queue_size ? a->io_queue_size : 128;
	o->kato_ms = json_object_get(params, "keep_alive_timeout_ms") ? a->keep_alive_timeout_ms
								      : 10000;
	o->ctrlr_loss_timeout_sec = json_object_get(params, "ctrlr_loss_timeout_sec")
					    ? a->ctrlr_loss_timeout_sec
					    : -1;
	o->reconnect_delay_sec = json_object_get(params, "reconnect_delay_sec")
					 ? a->reconnect_delay_sec
					 : 1;
	o->fast_io_fail_timeout_sec = a->fast_io_fail_timeout_sec;
	o->max_bdevs = a->max_bdevs;
	/* a saved configuration must not need its targets up first (no boot order) */
	o->retry_first_connect = a->retry_first_connect || nvl_app_replaying();
	o->connect_timeout_ms = a->fabrics_connect_timeout_us
					? (uint32_t)NVL_MAX(a->fabrics_connect_timeout_us / 1000, 1)
					: NVME_DEFAULT_CONNECT_MS;
	if (o->io_queue_size < 2 || o->io_queue_size > 4096 || o->ctrlr_loss_timeout_sec < -1 ||
	    (o->ctrlr_loss_timeout_sec >= 0 && o->fast_io_fail_timeout_sec &&
	     o->fast_io_fail_timeout_sec > o->ctrlr_loss_timeout_sec)) {
		free(o);
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "io_queue_size 2..4096; ctrlr_loss_timeout_sec >= -1; "
			      "fast_io_fail_timeout_sec <= ctrlr_loss_timeout_sec");
		return;
	}
	rc = bdev_nvme_attach(o, rpc_attach_done, req, NULL);
	if (rc == -EINVAL || rc == -EHOSTUNREACH)
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      shm ? "traddr: not an absolute socket path"
				  : "traddr/trsvcid: not a numeric address and port");
	else if (rc == -EEXIST)
		nvl_rpc_error(req, rc, "controller %s already exists", a->name);
	else if (rc == -ENETDOWN) /* trtype rdma: no RDMA device */
		nvl_rpc_error(req, rc, "%s: %s", a->name, nvl_strerror(rc));
	else if (rc < 0)
		nvl_rpc_error(req, -ECONNREFUSED, "%s: cannot open a socket: %s", a->name,
			      strerror(-rc));
	free(o);
}
NVL_RPC_REGISTER("bdev_nvme_attach_controller", rpc_bdev_nvme_attach_controller,
		 struct rpc_attach, attach_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Attach a remote NVMe controller (NVMe/TCP, NVMe/RDMA, or nvlendd's shm): one bdev "
		 "NAMEn<nsid> per active namespace, several I/O queues, reconnect with backoff. "
		 "Returns the bdev names.")

struct rpc_name {
	const char *name;
};

static const struct nvl_rpc_param detach_params[] = {
	NVL_RPC_PARAM(struct rpc_name, name, NVL_RPC_T_STR, true, "controller name"),
};

static void
rpc_detach_done(void *arg, struct nvme_ctrlr *c, int rc, const char *why)
{
	(void)c;
	(void)why;
	if (rc < 0)
		nvl_rpc_error(arg, rc, "detach: %s", why ? why : strerror(-rc));
	else
		nvl_rpc_result_bool(arg, true);
}

static void
rpc_bdev_nvme_detach_controller(struct nvl_rpc_request *req, struct rpc_name *a)
{
	struct nvme_ctrlr *c = bdev_nvme_ctrlr_find(a->name);
	char why[256];
	int rc;

	if (c == NULL) {
		nvl_rpc_error(req, -ENOENT, "no controller %s", a->name);
		return;
	}
	rc = bdev_nvme_detach(c, rpc_detach_done, req, why, sizeof(why));
	if (rc < 0)
		nvl_rpc_error(req, rc, "%s", why);
}
NVL_RPC_REGISTER("bdev_nvme_detach_controller", rpc_bdev_nvme_detach_controller,
		 struct rpc_name, detach_params, NVL_RPC_RUNTIME,
		 "Detach an NVMe controller and delete its bdevs (refused while one is open).")

struct rpc_get {
	const char *name;
};

static const struct nvl_rpc_param get_params[] = {
	NVL_RPC_PARAM(struct rpc_get, name, NVL_RPC_T_STR, false, "only this controller"),
};

static void
rpc_bdev_nvme_get_controllers(struct nvl_rpc_request *req, struct rpc_get *a)
{
	json_t *arr = json_array();

	for (struct nvme_ctrlr *c = bdev_nvme_ctrlr_first(); c; c = bdev_nvme_ctrlr_next(c))
		if (a->name == NULL || strcmp(a->name, c->o.name) == 0)
			json_array_append_new(arr, bdev_nvme_ctrlr_info(c));
	if (a->name && json_array_size(arr) == 0) {
		json_decref(arr);
		nvl_rpc_error(req, -ENOENT, "no controller %s", a->name);
		return;
	}
	nvl_rpc_result(req, arr);
}
NVL_RPC_REGISTER("bdev_nvme_get_controllers", rpc_bdev_nvme_get_controllers, struct rpc_get,
		 get_params, NVL_RPC_RUNTIME,
		 "Attached NVMe controllers: address, state, bdevs, reconnect counters.")

/* ---- discovery services ------------------------------------------------------------------ */

struct rpc_disc {
	const char *name, *trtype, *traddr, *adrfam, *trsvcid, *hostnqn;
	bool wait_for_attach;
	uint32_t attach_timeout_ms, reconnect_delay_sec, fast_io_fail_timeout_sec;
	int64_t ctrlr_loss_timeout_sec;
};

static const struct nvl_rpc_param disc_params[] = {
	NVL_RPC_PARAM(struct rpc_disc, name, NVL_RPC_T_STR, true,
		      "service name; its controllers are NAME0, NAME1, ... (bdevs NAME0n1, ...)"),
	NVL_RPC_PARAM(struct rpc_disc, trtype, NVL_RPC_T_STR, true,
		      "\"tcp\" or \"rdma\" (NVMe/RDMA): the discovery controller's transport; "
		      "only the log's entries of that transport are attached, over it"),
	NVL_RPC_PARAM(struct rpc_disc, traddr, NVL_RPC_T_STR, true,
		      "IP address of the discovery controller (rdma: of an RDMA device's "
		      "network)"),
	NVL_RPC_PARAM(struct rpc_disc, adrfam, NVL_RPC_T_STR, false,
		      "\"IPv4\" or \"IPv6\" (default: from traddr)"),
	NVL_RPC_PARAM(struct rpc_disc, trsvcid, NVL_RPC_T_STR, false, "port (default 8009)"),
	NVL_RPC_PARAM(struct rpc_disc, hostnqn, NVL_RPC_T_STR, false,
		      "host NQN (default: nqn.2014-08.org.nvmexpress:uuid:<machine uuid>)"),
	NVL_RPC_PARAM(struct rpc_disc, wait_for_attach, NVL_RPC_T_BOOL, false,
		      "answer once the first log's subsystems are attached (or waiting for "
		      "their target), not as soon as the log is read"),
	NVL_RPC_PARAM(struct rpc_disc, attach_timeout_ms, NVL_RPC_T_U32, false,
		      "with wait_for_attach: fail (and stop the service) after this long "
		      "(default: no limit)"),
	NVL_RPC_PARAM(struct rpc_disc, ctrlr_loss_timeout_sec, NVL_RPC_T_I64, false,
		      "each controller: give it up this long after losing it (-1: never, "
		      "default)"),
	NVL_RPC_PARAM(struct rpc_disc, reconnect_delay_sec, NVL_RPC_T_U32, false,
		      "each controller and the discovery connection: first delay between "
		      "reconnect attempts (default 1)"),
	NVL_RPC_PARAM(struct rpc_disc, fast_io_fail_timeout_sec, NVL_RPC_T_U32, false,
		      "each controller: fail I/O this long after losing it (0: queue it; "
		      "default 0)"),
};

struct disc_call {
	struct nvl_rpc_request *req;
	bool wait;
};

static void
rpc_disc_started(void *arg, struct nvme_disc *d, int rc, const char *why)
{
	struct nvl_rpc_request *req = arg;

	(void)d;
	if (rc < 0)
		nvl_rpc_error(req, rc, "discovery: %s", why ? why : strerror(-rc));
	else
		nvl_rpc_result_bool(req, true);
}

static void
rpc_bdev_nvme_start_discovery(struct nvl_rpc_request *req, struct rpc_disc *a)
{
	json_t *params = nvl_rpc_params(req);
	struct nvme_disc_opts *o;
	struct rpc_attach host = { 0 };
	struct nvme_ctrlr_opts ho;
	bool rdma = strcasecmp(a->trtype, "rdma") == 0;
	int rc;

	if (!rdma && strcasecmp(a->trtype, "tcp") != 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "trtype %s: tcp or rdma", a->trtype);
		return;
	}
	if (a->name[0] == '\0' || strlen(a->name) > NVME_NAME_MAX - 13 || strchr(a->name, '/')) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "name: 1..%d characters, no '/'",
			      NVME_NAME_MAX - 13);
		return;
	}
	if (bdev_nvme_discovery_find(a->name)) {
		nvl_rpc_error(req, -EEXIST, "discovery %s already exists", a->name);
		return;
	}
	if (a->hostnqn && !nqn_ok(a->hostnqn)) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "malformed NQN");
		return;
	}
	if (a->attach_timeout_ms && !a->wait_for_attach) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "attach_timeout_ms needs wait_for_attach");
		return;
	}
	o = calloc(1, sizeof(*o));
	if (o == NULL) {
		nvl_rpc_error(req, NVL_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	nvl_strlcpy(o->name, a->name, sizeof(o->name));
	nvl_strlcpy(o->trtype, rdma ? "RDMA" : "TCP", sizeof(o->trtype));
	nvl_strlcpy(o->traddr, a->traddr, sizeof(o->traddr));
	nvl_strlcpy(o->trsvcid, a->trsvcid ? a->trsvcid : "8009", sizeof(o->trsvcid));
	nvl_strlcpy(o->adrfam, a->adrfam ? a->adrfam : strchr(a->traddr, ':') ? "IPv6" : "IPv4",
		    sizeof(o->adrfam));
	host.hostnqn = a->hostnqn;
	attach_host(&host, &ho);
	nvl_strlcpy(o->hostnqn, ho.hostnqn, sizeof(o->hostnqn));
	memcpy(o->hostid, ho.hostid, sizeof(o->hostid));
	o->ctrlr_loss_timeout_sec = json_object_get(params, "ctrlr_loss_timeout_sec")
					    ? a->ctrlr_loss_timeout_sec
					    : -1;
	o->reconnect_delay_sec = json_object_get(params, "reconnect_delay_sec")
					 ? a->reconnect_delay_sec
					 : 1;
	o->fast_io_fail_timeout_sec = a->fast_io_fail_timeout_sec;
	o->attach_timeout_ms = a->attach_timeout_ms;
	o->retry_first_connect = nvl_app_replaying();
	o->poll_only = getenv("NVLEND_DISCOVERY_POLL") != NULL;
	if (o->ctrlr_loss_timeout_sec < -1 ||
	    (o->ctrlr_loss_timeout_sec >= 0 && o->fast_io_fail_timeout_sec &&
	     o->fast_io_fail_timeout_sec > o->ctrlr_loss_timeout_sec)) {
		free(o);
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "ctrlr_loss_timeout_sec >= -1; fast_io_fail_timeout_sec <= "
			      "ctrlr_loss_timeout_sec");
		return;
	}
	o->wait_for_attach = a->wait_for_attach;
	rc = bdev_nvme_discovery_start(o, rpc_disc_started, req);
	free(o);
	if (rc == -EINVAL || rc == -EHOSTUNREACH) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "traddr/trsvcid: not a numeric address and port");
		return;
	}
	if (rc == -ENETDOWN) /* trtype rdma: no RDMA device */
		nvl_rpc_error(req, rc, "discovery %s: %s", a->name, nvl_strerror(rc));
	else if (rc < 0)
		nvl_rpc_error(req, rc, "discovery %s: %s", a->name, strerror(-rc));
}
NVL_RPC_REGISTER("bdev_nvme_start_discovery", rpc_bdev_nvme_start_discovery, struct rpc_disc,
		 disc_params, NVL_RPC_RUNTIME,
		 "Follow a target's discovery controller (NVMe/TCP or NVMe/RDMA): attach each NVMe "
		 "subsystem its log offers over that same transport as a controller NAME<index>, "
		 "attach new entries and detach removed ones as the log changes (Discovery Log "
		 "Page Change events). Answers once the "
		 "first log is read; fails at once if the discovery controller cannot be "
		 "reached (while a configuration is loaded: it waits and retries instead).")

static void
rpc_disc_stopped(void *arg, struct nvme_disc *d, int rc, const char *why)
{
	(void)d;
	if (rc < 0)
		nvl_rpc_error(arg, rc, "stop: %s", why ? why : strerror(-rc));
	else
		nvl_rpc_result_bool(arg, true);
}

static void
rpc_bdev_nvme_stop_discovery(struct nvl_rpc_request *req, struct rpc_name *a)
{
	struct nvme_disc *d = bdev_nvme_discovery_find(a->name);
	char why[256];
	int rc;

	if (d == NULL) {
		nvl_rpc_error(req, -ENOENT, "no discovery %s", a->name);
		return;
	}
	rc = bdev_nvme_discovery_stop(d, rpc_disc_stopped, req, why, sizeof(why));
	if (rc < 0)
		nvl_rpc_error(req, rc, "%s", why);
}
NVL_RPC_REGISTER("bdev_nvme_stop_discovery", rpc_bdev_nvme_stop_discovery, struct rpc_name,
		 detach_params, NVL_RPC_RUNTIME,
		 "Stop a discovery service: detach its controllers (refused while one of their "
		 "bdevs is open), close the discovery connection.")

static void
rpc_bdev_nvme_get_discovery_info(struct nvl_rpc_request *req, void *unused)
{
	(void)unused;
	nvl_rpc_result(req, bdev_nvme_discovery_info_all());
}
NVL_RPC_REGISTER_NOARGS("bdev_nvme_get_discovery_info", rpc_bdev_nvme_get_discovery_info,
			NVL_RPC_RUNTIME,
			"Discovery services: the discovery controller followed, its state, the "
			"log's generation counter, and the controllers it attached.")

/* ---- daemon subsystem ------------------------------------------------------------------------ */

/* Controllers with no bdev to carry their attach call (waiting for their
 * target, or no namespace), then the discovery services. */
static void
bdev_nvme_write_config(json_t *calls)
{
	for (struct nvme_ctrlr *c = bdev_nvme_ctrlr_first(); c; c = bdev_nvme_ctrlr_next(c)) {
		bool has_bdev = false;
		json_t *call;

		for (unsigned i = 0; i < c->nbdevs; i++)
			has_bdev |= c->bdevs[i] != NULL;
		if (has_bdev || strcmp(bdev_nvme_ctrlr_state(c), "detaching") == 0)
			continue;
		call = bdev_nvme_ctrlr_config(c);
		if (call)
			json_array_append_new(calls, call);
	}
	bdev_nvme_discovery_write_config(calls);
}

static void
bdev_nvme_fini(nvl_app_done_fn done)
{
	bdev_nvme_discovery_fini();
	bdev_nvme_detach_all(done);
}

static struct nvl_subsystem g_bdev_nvme_subsys = {
	.name = "bdev_nvme",
	.order = 20,
	.fini = bdev_nvme_fini,
	.write_config = bdev_nvme_write_config,
};
NVL_SUBSYSTEM_REGISTER(g_bdev_nvme_subsys)
