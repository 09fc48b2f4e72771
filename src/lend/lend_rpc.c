/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The lend_* RPCs (docs/lending.md, docs/rpc.md): SmartIO's verbs
 * connect / add / available / unavailable / list / borrow / return, plus
 * the listener, the node identity and what this node borrowed. Glue only:
 * the service is lend.c. Reactor 0.
 */
#include "lend/lend_internal.h"
#include "app/app.h"
#include "rpc/rpc.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* errno -> a JSON-RPC error: invalid params stay -32602, the rest keep -errno (SPDK) */
static void
rpc_fail(struct nvl_rpc_request *req, int rc, const char *msg)
{
	nvl_rpc_error(req, rc == -EINVAL ? NVL_RPC_INVALID_PARAMS : rc, "%s",
		      msg && msg[0] ? msg : strerror(-rc));
}

static void
rpc_done(void *arg, int rc, const char *msg, json_t *result)
{
	struct nvl_rpc_request *req = arg;

	if (rc < 0) {
		json_decref(result);
		rpc_fail(req, rc, msg);
		return;
	}
	nvl_rpc_result(req, result ? result : json_true());
}

static int
identity_or_fail(struct nvl_rpc_request *req)
{
	if (lend_identity_ensure() < 0) {
		nvl_rpc_error(req, -EIO, "cannot create the lend state dir %s (see the daemon log)",
			      g_lend.state_dir);
		return -EIO;
	}
	return 0;
}

/* ---- lend_get_node --------------------------------------------------------------------------- */

static void
rpc_lend_get_node(struct nvl_rpc_request *req, void *unused)
{
	(void)unused;
	if (identity_or_fail(req) < 0)
		return;
	nvl_rpc_result(req, lend_node_json());
}
NVL_RPC_REGISTER_NOARGS("lend_get_node", rpc_lend_get_node, NVL_RPC_RUNTIME,
			"This node's lending identity: name, node_id, host NQN (what lenders "
			"allow when it borrows), state dir, cluster key, listener, known peers.")

/* ---- lend_listen -------------------------------------------------------------------------------- */

struct rpc_listen {
	const char *traddr;
	const char *trsvcid;
	const char *nvme_trsvcid;
	const char *discovery_trsvcid;
	uint32_t lease_ms;
	bool mdns;
};

static const struct nvl_rpc_param listen_params[] = {
	NVL_RPC_PARAM(struct rpc_listen, traddr, NVL_RPC_T_STR, true,
		      "this node's IPv4 or IPv6 address: peers reach it there, and the devices it "
		      "lends are served there over NVMe/TCP"),
	NVL_RPC_PARAM(struct rpc_listen, trsvcid, NVL_RPC_T_STR, false,
		      "peer protocol port (default 4430)"),
	NVL_RPC_PARAM(struct rpc_listen, nvme_trsvcid, NVL_RPC_T_STR, false,
		      "NVMe/TCP port of the lent devices (default 4420)"),
	NVL_RPC_PARAM(struct rpc_listen, discovery_trsvcid, NVL_RPC_T_STR, false,
		      "NVMe discovery port listing the offers (default 8009; \"\" none)"),
	NVL_RPC_PARAM(struct rpc_listen, lease_ms, NVL_RPC_T_U32, false,
		      "lease of a borrow: a borrower silent this long loses the device "
		      "(default 10000, 1000..3600000)"),
	NVL_RPC_PARAM(struct rpc_listen, mdns, NVL_RPC_T_BOOL, false,
		      "advertise the discovery port over mDNS as _nvme-disc._tcp (TP 8009) "
		      "through avahi's static services (default false)"),
};

static bool
port_ok(const char *p)
{
	uint64_t v;

	return p && nvl_parse_u64(p, 65535, &v) == 0 && v > 0;
}

static void
rpc_lend_listen(struct nvl_rpc_request *req, struct rpc_listen *a)
{
	struct lend_listener l = { 0 };
	unsigned char buf[16];
	char err[300];
	int rc;

	if (identity_or_fail(req) < 0)
		return;
	if (inet_pton(AF_INET, a->traddr, buf) != 1 && inet_pton(AF_INET6, a->traddr, buf) != 1) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "traddr must be an IPv4 or IPv6 address");
		return;
	}
	if ((a->trsvcid && !port_ok(a->trsvcid)) || (a->nvme_trsvcid && !port_ok(a->nvme_trsvcid)) ||
	    (a->discovery_trsvcid && a->discovery_trsvcid[0] && !port_ok(a->discovery_trsvcid))) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "ports are 1..65535");
		return;
	}
	if (a->lease_ms && (a->lease_ms < 1000 || a->lease_ms > 3600000)) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "lease_ms must be 1000..3600000");
		return;
	}
	nvl_strlcpy(l.traddr, a->traddr, sizeof(l.traddr));
	nvl_strlcpy(l.trsvcid, a->trsvcid ? a->trsvcid : LEND_DEFAULT_PEER_PORT, sizeof(l.trsvcid));
	nvl_strlcpy(l.nvme_trsvcid, a->nvme_trsvcid ? a->nvme_trsvcid : LEND_DEFAULT_NVME_PORT,
		    sizeof(l.nvme_trsvcid));
	nvl_strlcpy(l.disc_trsvcid, a->discovery_trsvcid ? a->discovery_trsvcid
							 : LEND_DEFAULT_DISC_PORT,
		    sizeof(l.disc_trsvcid));
	l.lease_ms = a->lease_ms ? a->lease_ms : LEND_DEFAULT_LEASE_MS;
	l.mdns = a->mdns;
	rc = lend_listen(&l, err, sizeof(err));
	if (rc < 0) {
		rpc_fail(req, rc, err);
		return;
	}
	nvl_rpc_result(req, lend_node_json());
}
NVL_RPC_REGISTER("lend_listen", rpc_lend_listen, struct rpc_listen, listen_params,
		 NVL_RPC_RUNTIME,
		 "Serve the lending peer protocol (authenticated with the cluster key) and set "
		 "where lent devices are served; persisted in the state dir.")

/* ---- lend_connect ------------------------------------------------------------------------------ */

struct rpc_connect {
	const char *address;
	uint32_t port;
};

static const struct nvl_rpc_param connect_params[] = {
	NVL_RPC_PARAM(struct rpc_connect, address, NVL_RPC_T_STR, true,
		      "the peer node's address (its lend listener)"),
	NVL_RPC_PARAM(struct rpc_connect, port, NVL_RPC_T_U32, false,
		      "its peer protocol port (default 4430)"),
};

static void
rpc_lend_connect(struct nvl_rpc_request *req, struct rpc_connect *a)
{
	int rc;

	if (identity_or_fail(req) < 0)
		return;
	if (a->port > 65535 || strlen(a->address) >= 64) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "bad address or port");
		return;
	}
	rc = lend_connect(a->address, (uint16_t)(a->port ? a->port : 4430u),
			  rpc_done, req);
	if (rc < 0)
		rpc_fail(req, rc, "cannot start the connection");
}
NVL_RPC_REGISTER("lend_connect", rpc_lend_connect, struct rpc_connect, connect_params,
		 NVL_RPC_RUNTIME,
		 "Make this node known to a peer node and the peer known here (both list each "
		 "other's offers from then on); the peer must hold the same cluster key.")

/* ---- lend_add / lend_remove ---------------------------------------------------------------------- */

struct rpc_add {
	const char *device;
	bool shared;
};

static const struct nvl_rpc_param add_params[] = {
	NVL_RPC_PARAM(struct rpc_add, device, NVL_RPC_T_STR, true,
		      "what to offer: an absolute path (a file or a block device), a bdev name "
		      "(or bdev:NAME) or brick:NAME"),
	NVL_RPC_PARAM(struct rpc_add, shared, NVL_RPC_T_BOOL, false,
		      "shared lending: many borrowers at once (as Dolphin's dis_nvme shares one "
		      "drive among hosts), no reservation "
		      "(default false: exclusive)"),
};

static void
rpc_lend_add(struct nvl_rpc_request *req, struct rpc_add *a)
{
	char err[PATH_MAX + 64];
	uint32_t id;
	int rc;

	if (identity_or_fail(req) < 0)
		return;
	rc = lend_add(a->device, a->shared, &id, err, sizeof(err));
	if (rc < 0) {
		rpc_fail(req, rc, err);
		return;
	}
	nvl_rpc_result(req, lend_offer_json(lend_offer_find(id), true));
}
NVL_RPC_REGISTER("lend_add", rpc_lend_add, struct rpc_add, add_params, NVL_RPC_RUNTIME,
		 "Offer a local device to the connected nodes; it gets a lend id and stays "
		 "unavailable (in local use) until lend_available.")

struct rpc_id {
	uint32_t id;
	bool force;
};

static const struct nvl_rpc_param id_params[] = {
	NVL_RPC_PARAM(struct rpc_id, id, NVL_RPC_T_U32, true, "lend id (see lend_list)"),
};

static const struct nvl_rpc_param unavail_params[] = {
	NVL_RPC_PARAM(struct rpc_id, id, NVL_RPC_T_U32, true, "lend id (see lend_list)"),
	NVL_RPC_PARAM(struct rpc_id, force, NVL_RPC_T_BOOL, false,
		      "revoke a borrow: the borrower's controller is torn down and its I/O fails"),
};

static void
rpc_lend_remove(struct nvl_rpc_request *req, struct rpc_id *a)
{
	char err[256];
	int rc = lend_remove(a->id, err, sizeof(err));

	if (rc < 0)
		rpc_fail(req, rc, err);
	else
		nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("lend_remove", rpc_lend_remove, struct rpc_id, id_params, NVL_RPC_RUNTIME,
		 "Withdraw an offer (it must be unavailable).")

static void
rpc_lend_available(struct nvl_rpc_request *req, struct rpc_id *a)
{
	char err[PATH_MAX + 128];
	int rc = lend_available(a->id, rpc_done, req, err, sizeof(err));

	if (rc < 0)
		rpc_fail(req, rc, err);
}
NVL_RPC_REGISTER("lend_available", rpc_lend_available, struct rpc_id, id_params,
		 NVL_RPC_RUNTIME,
		 "Give the device up for remote use: refused while it is used on this node "
		 "(mounted, open, attached, exported, in a bdev stack); the daemon then holds it "
		 "exclusively and serves it to borrowers.")

static void
rpc_lend_unavailable(struct nvl_rpc_request *req, struct rpc_id *a)
{
	char err[512];
	int rc = lend_unavailable(a->id, a->force, rpc_done, req, err, sizeof(err));

	if (rc < 0)
		rpc_fail(req, rc, err);
}
NVL_RPC_REGISTER("lend_unavailable", rpc_lend_unavailable, struct rpc_id, unavail_params,
		 NVL_RPC_RUNTIME,
		 "Take the device back for local use: refused while borrowed unless force.")

/* ---- lend_list ----------------------------------------------------------------------------------- */

static void
rpc_lend_list(struct nvl_rpc_request *req, void *unused)
{
	int rc;

	(void)unused;
	rc = lend_list(rpc_done, req);
	if (rc < 0)
		rpc_fail(req, rc, NULL);
}
NVL_RPC_REGISTER_NOARGS("lend_list", rpc_lend_list, NVL_RPC_RUNTIME,
			"The devices offered by this node and by every connected lender: id, "
			"lender, device, size, state (available, unavailable, borrowed by NODE).")

/* ---- lend_borrow / lend_return ---------------------------------------------------------------------- */

struct rpc_ref {
	const char *id;
};

static const struct nvl_rpc_param ref_params[] = {
	NVL_RPC_PARAM(struct rpc_ref, id, NVL_RPC_T_STR, true,
		      "LENDER:ID as lend_list shows it (ID alone when one lender is connected)"),
};

static void
rpc_lend_borrow(struct nvl_rpc_request *req, struct rpc_ref *a)
{
	char err[300];
	int rc;

	if (identity_or_fail(req) < 0)
		return;
	rc = lend_borrow(a->id, rpc_done, req, err, sizeof(err));
	if (rc < 0)
		rpc_fail(req, rc, err);
}
NVL_RPC_REGISTER("lend_borrow", rpc_lend_borrow, struct rpc_ref, ref_params, NVL_RPC_RUNTIME,
		 "Borrow a device (exclusively unless its offer is shared): the lender allows "
		 "this node's host NQN on its subsystem; returns the URI to attach, the lease "
		 "(kept alive by this daemon) and the reservation keys.")

static void
rpc_lend_return(struct nvl_rpc_request *req, struct rpc_ref *a)
{
	char err[300];
	int rc = lend_return(a->id, rpc_done, req, err, sizeof(err));

	if (rc < 0)
		rpc_fail(req, rc, err);
}
NVL_RPC_REGISTER("lend_return", rpc_lend_return, struct rpc_ref, ref_params, NVL_RPC_RUNTIME,
		 "Give a borrowed device back (detach it first: 'nvlend lend return' does); the "
		 "lender makes it available to others again.")

static void
rpc_lend_get_borrows(struct nvl_rpc_request *req, void *unused)
{
	(void)unused;
	nvl_rpc_result(req, lend_borrows_json());
}
NVL_RPC_REGISTER_NOARGS("lend_get_borrows", rpc_lend_get_borrows, NVL_RPC_RUNTIME,
			"What this node borrowed: lender, id, URI, attachment name, lease age.")

/* ---- the daemon's "lend" subsystem ------------------------------------------------------------ */

static struct nvl_subsystem g_lend_subsys = {
	.name = "lend",
	.order = 40, /* after nvmf (30): stops before the target does */
	.init = lend_init,
	.start = lend_start,
	.fini = lend_fini,
	.init_at_handover = true, /* its state files: the old worker may still write them */
	/* after the transports took their connections back (nothing in the kept
	 * configuration is lend's: lend.json rebuilds its targets at start) */
	.init_at_start = true,
};
NVL_SUBSYSTEM_REGISTER(g_lend_subsys)
