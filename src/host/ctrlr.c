/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The host core's controller (host.h): one association at a time with an
 * NVMe controller over a transport of host_internal.h's ops table.
 *
 *  - set-up, one admin command at a time (enum host_step): the transport
 *    connects; when the Connect asks for it, the admin queue authenticates
 *    (DH-HMAC-CHAP, host_auth.c); fabrics transports enable the controller through properties
 *    (CAP, CC.EN, CSTS.RDY) and ask for queues; Identify Controller; the
 *    active namespace list; with scan_ns each namespace and its identifiers;
 *    after a reconnect the owner verifies what it found; every registered
 *    queue pair gets a transport queue; then READY.
 *  - admin slots: commands with deadlines and callbacks (cid = slot); a
 *    deadline that passes ends the association.
 *  - keep-alive every kato / 3 (at least 100 ms) while ready.
 *  - loss: the generation is bumped (queue pairs drop their transport
 *    queues and keep their idempotent commands), everything outstanding on
 *    the admin side completes with -ENOTCONN, and the next attempt is
 *    scheduled: delay << attempts, capped; fast_io_fail_ms and ctrlr_loss_ms
 *    count from the loss.
 *  - close: CC.SHN and CSTS.SHST (fabrics) or a DISCONNECT message (shm).
 *
 * Threads: everything here runs on the controller's owner, except the
 * atomics of host_internal.h (gen, fail_mode, lost_gen, state) that queue
 * pairs read, and lost_gen that they write. No sleeping: waits are
 * deadlines checked by host_ctrlr_poll().
 */
#include "host/host_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOST_KA_MIN_MS 100
#define HOST_CSTS_POLL_NS 1000000ULL      /* re-read CSTS every 1 ms while enabling */
#define HOST_SHUTDOWN_MS 1000             /* CC.SHN: wait this long for SHST complete */
#define HOST_DEFAULT_TIMEOUT_MS 10000
#define HOST_CC_QES ((6u << 16) | (4u << 20)) /* CC.IOSQES 64 B, CC.IOCQES 16 B */
#define MS(x) ((uint64_t)(x) * 1000000ULL)

static void ctrlr_step(struct host_ctrlr *c, uint64_t now);
static void assoc_drop(struct host_ctrlr *c);
static void close_finish(struct host_ctrlr *c);

/* ---- small helpers ---------------------------------------------------------------------- */

static void
set_state(struct host_ctrlr *c, enum host_ctrlr_state st)
{
	__atomic_store_n(&c->state, (uint32_t)st, __ATOMIC_RELAXED);
}

static void
set_fail_mode(struct host_ctrlr *c, enum host_fail_mode m)
{
	__atomic_store_n(&c->fail_mode, (uint32_t)m, __ATOMIC_RELEASE);
}

static int
ctrlr_emit(struct host_ctrlr *c, enum host_event ev)
{
	return c->opts.event ? c->opts.event(c->opts.arg, c, ev) : 0;
}

void
host_ctrlr_set_error(struct host_ctrlr *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
	va_end(ap);
}

static const char *
step_name(enum host_step s)
{
	static const char *const n[] = {
		"connect", "DH-HMAC-CHAP authentication", "Property Get CAP", "Property Set CC", "Property Get CSTS",
		"Identify Controller", "Set Features (Number of Queues)",
		"Identify (namespace list)", "Identify Namespace",
		"Identify (namespace identification descriptors)", "verify", "I/O queue connect",
		"done",
	};

	return n[s];
}

const char *
host_ctrlr_state_str(enum host_ctrlr_state st)
{
	switch (st) {
	case HOST_CTRLR_CONNECTING: return "connecting";
	case HOST_CTRLR_READY: return "ready";
	case HOST_CTRLR_WAIT_RECONNECT: return "waiting to reconnect";
	case HOST_CTRLR_RECONNECTING: return "reconnecting";
	case HOST_CTRLR_FAILED: return "failed";
	case HOST_CTRLR_CLOSING: return "closing";
	case HOST_CTRLR_CLOSED: return "closed";
	}
	return "?";
}

/* Where the association goes, for messages: the socket path or host:port. */
static const char *
target_str(const struct host_ctrlr *c, char *buf, size_t len)
{
	if (c->uri.kind == NVL_URI_NVME_SHM)
		snprintf(buf, len, "%s", c->uri.path);
	else
		snprintf(buf, len, "%s:%s", c->uri.host, c->uri.port);
	return buf;
}

const char *
host_ctrlr_uri_str(const struct host_ctrlr *c, char *buf, size_t len)
{
	char t[400];

	if (c->uri.kind == NVL_URI_NVME_SHM && c->uri.nqn[0] == '\0')
		snprintf(buf, len, "nvme+fn://%s", target_str(c, t, sizeof(t)));
	else
		snprintf(buf, len, "nvme+%s://%s/%s",
			 c->uri.kind == NVL_URI_NVME_SHM    ? "shm"
			 : c->uri.kind == NVL_URI_NVME_RDMA ? "rdma"
							    : "tcp",
			 target_str(c, t, sizeof(t)), c->uri.nqn);
	return buf;
}

void
host_ctrlr_opts_default(struct host_ctrlr_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->kato_ms = 10000;
	o->send_keepalive = true;
	o->connect_timeout_ms = HOST_DEFAULT_TIMEOUT_MS;
	o->admin_timeout_ms = HOST_DEFAULT_TIMEOUT_MS;
	o->window_bytes = 64ULL << 20;
	o->io_queues = HOST_MAX_QUEUES;
	o->reconnect_delay_ms = 1000;
}

/* ---- admin slots --------------------------------------------------------------------- */

int
host_admin_submit(struct host_ctrlr *c, const struct nvl_nvme_cmd *cmd, void *buf, uint32_t len,
		  uint8_t dir, uint32_t flags, host_admin_cb cb, void *arg, int *fds_out,
		  int *nfds_out)
{
	struct host_admin_req *a = NULL;
	int rc;

	if (!c->assoc_live || c->dropping)
		return -ENOTCONN;
	for (unsigned i = 0; i < HOST_ADMIN_SLOTS; i++) {
		if (!c->admin[i].busy) {
			a = &c->admin[i];
			break;
		}
	}
	if (a == NULL)
		return -EAGAIN;
	memset(a, 0, sizeof(*a));
	a->c = c;
	a->slot = (uint16_t)(a - c->admin);
	a->cmd = *cmd;
	a->cmd.cid = (uint16_t)(a->slot + HOST_ADMIN_SLOTS * c->admin_gen++);
	a->buf = buf;
	a->len = len;
	a->dir = dir;
	a->flags = flags;
	a->cb = cb;
	a->arg = arg;
	a->fds_out = fds_out;
	a->nfds_out = nfds_out;
	a->deadline_ns = (flags & HOST_ADMIN_NO_TIMEOUT)
				 ? UINT64_MAX
				 : nvl_now_ns() + MS(c->opts.admin_timeout_ms);
	a->busy = true;
	c->admin_busy++;
	NVL_TRACELOG(host, "admin submit: opc 0x%02x cid %u nsid %u cdw10 0x%08x cdw11 0x%08x "
			   "cdw12 0x%08x cdw13 0x%08x cdw14 0x%08x cdw15 0x%08x, %u bytes %s",
		     a->cmd.opc, a->cmd.cid, a->cmd.nsid, a->cmd.cdw10, a->cmd.cdw11, a->cmd.cdw12,
		     a->cmd.cdw13, a->cmd.cdw14, a->cmd.cdw15, len,
		     dir == NVL_XFER_TO_CTRLR ? "out" : dir == NVL_XFER_FROM_CTRLR ? "in" : "");
	rc = c->ops->admin_send(c, a);
	if (rc < 0) {
		a->busy = false;
		c->admin_busy--;
		return rc;
	}
	return a->cmd.cid;
}

int
host_ctrlr_admin(struct host_ctrlr *c, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len,
		 enum nvl_xfer_dir dir, uint32_t flags, host_admin_cb cb, void *arg)
{
	int rc;

	if (host_ctrlr_state(c) != HOST_CTRLR_READY)
		return -ENOTCONN;
	if (len && !c->ops->admin_bounces && !host_ctrlr_buf_reachable(c, buf, len))
		return -EINVAL;
	rc = host_admin_submit(c, cmd, buf, len, (uint8_t)dir, flags, cb, arg, NULL, NULL);
	if (rc < 0)
		return rc;
	cmd->cid = (uint16_t)rc;
	return 0;
}

struct host_admin_req *
host_admin_by_cid(struct host_ctrlr *c, uint16_t cid)
{
	struct host_admin_req *a = &c->admin[cid % HOST_ADMIN_SLOTS];

	if (!a->busy || a->cmd.cid != cid)
		return NULL;
	return a;
}

static void
close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

void
host_admin_complete(struct host_ctrlr *c, struct host_admin_req *a, const struct nvl_nvme_cpl *cpl,
		    int *fds, int nfds)
{
	if (!a->busy) {
		close_fds(fds, nfds);
		return;
	}
	if (a->fds_out) {
		int n = NVL_MIN(nfds, HOST_ADMIN_MAX_FDS);

		memcpy(a->fds_out, fds, sizeof(int) * (size_t)n);
		*a->nfds_out = n;
		close_fds(fds + n, nfds - n);
	} else {
		close_fds(fds, nfds);
	}
	a->busy = false;
	c->admin_busy--;
	NVL_VERBOSELOG(host, "admin opc 0x%02x cid %u nsid %u: %s (status 0x%03x, cdw0 0x%x)",
		       a->cmd.opc, a->cmd.cid, a->cmd.nsid, nvl_status_str(nvl_cpl_status(cpl)),
		       nvl_cpl_status(cpl), cpl->cdw0);
	a->cb(a->arg, cpl, 0);
}

/* Every outstanding admin command ends: rc -ETIMEDOUT for the one whose
 * deadline passed, -ENOTCONN for the rest. */
static void
admin_abort_all(struct host_ctrlr *c, const struct host_admin_req *expired)
{
	struct nvl_nvme_cpl cpl = { 0 };

	cpl.status = NVL_NVME_SC_TO_STATUS(NVL_NVME_SC_ABORTED_SQ_DELETION) | NVL_NVME_STATUS_DNR;
	for (unsigned i = 0; i < HOST_ADMIN_SLOTS; i++) {
		struct host_admin_req *a = &c->admin[i];

		if (!a->busy)
			continue;
		a->busy = false;
		c->admin_busy--;
		if (a->nfds_out)
			*a->nfds_out = 0;
		cpl.cid = a->cmd.cid;
		a->cb(a->arg, &cpl, a == expired ? -ETIMEDOUT : -ENOTCONN);
	}
}

/* ---- association set-up ------------------------------------------------------------------ */

static void step_done(void *arg, const struct nvl_nvme_cpl *cpl, int rc);

static int
step_admin(struct host_ctrlr *c, struct nvl_nvme_cmd *cmd, uint32_t len, uint8_t dir)
{
	int rc = host_admin_submit(c, cmd, len ? c->idbuf : NULL, len, dir, 0, step_done, c, NULL,
				   NULL);

	return rc < 0 ? rc : 0;
}

static int
ctrlr_property(struct host_ctrlr *c, bool set, uint32_t ofst, bool eight, uint64_t value,
	 host_admin_cb cb)
{
	struct nvl_nvmf_property_cmd p = { 0 };
	int rc;

	p.opc = NVL_NVME_ADM_FABRICS;
	p.fctype = set ? NVL_NVMF_FCTYPE_PROPERTY_SET : NVL_NVMF_FCTYPE_PROPERTY_GET;
	p.attrib = eight ? 1 : 0;
	p.ofst = ofst;
	p.value = value;
	rc = host_admin_submit(c, (struct nvl_nvme_cmd *)&p, NULL, 0, NVL_XFER_NONE, 0, cb, c, NULL,
			       NULL);
	return rc < 0 ? rc : 0;
}

static int
ctrlr_identify(struct host_ctrlr *c, uint8_t cns, uint32_t nsid)
{
	struct nvl_nvme_cmd cmd = { 0 };

	cmd.opc = NVL_NVME_ADM_IDENTIFY;
	cmd.nsid = nsid;
	cmd.cdw10 = cns;
	memset(c->idbuf, 0, NVL_NVME_IDENTIFY_SIZE);
	return step_admin(c, &cmd, NVL_NVME_IDENTIFY_SIZE, NVL_XFER_FROM_CTRLR);
}

static int
assoc_begin(struct host_ctrlr *c, uint64_t now)
{
	c->step = HOST_STEP_TRANSPORT;
	c->step_at_ns = UINT64_MAX;
	c->assoc_deadline_ns = now + MS(c->opts.connect_timeout_ms);
	c->nns = 0;
	c->nns_list = 0;
	c->authreq = 0;
	return c->ops->assoc_start(c, now);
}

void
host_ctrlr_wake_at(struct host_ctrlr *c, uint64_t ns)
{
	/* (step_at_ns: host_ctrlr_next_ns() counts it; a due one with no CSTS
	 * read or shutdown step waiting only makes host_ctrlr_poll() run) */
	c->step_at_ns = NVL_MIN(c->step_at_ns, ns);
}

void
host_assoc_transport_ready(struct host_ctrlr *c)
{
	c->assoc_live = true;
	if (c->win)
		c->idbuf = host_window_alloc(c->win, NVL_NVME_IDENTIFY_SIZE);
	else
		c->idbuf = aligned_alloc(NVL_NVME_PAGE_SIZE, NVL_NVME_IDENTIFY_SIZE);
	if (c->idbuf == NULL) {
		host_assoc_fail(c, -ENOMEM, "no memory for identify data");
		return;
	}
	c->step = c->ops->fabrics ? HOST_STEP_CAP : HOST_STEP_ID_CTRL;
	if (c->authreq & NVL_NVMF_CONNECT_AUTHREQ_ASCR) {
		host_assoc_fail(c, -EPROTONOSUPPORT,
				"the controller asks for a secure channel (AUTHREQ.ASCR): not "
				"supported by this host");
		return;
	}
	if (c->authreq & NVL_NVMF_CONNECT_AUTHREQ_ATR) {
		int rc;

		if (c->opts.dhchap_key.len == 0) {
			host_assoc_fail(c, -EACCES,
					"%s requires DH-HMAC-CHAP authentication of host %s, and "
					"no key was given (NVLEND_DHCHAP_KEY)",
					c->uri.nqn, c->hostnqn);
			return;
		}
		host_auth_destroy(c->auth);
		rc = host_auth_create(&c->opts.dhchap_key, &c->opts.dhchap_ctrlr_key, c->hostnqn,
				      c->uri.nqn, 0, &c->auth);
		if (rc < 0) {
			c->auth = NULL;
			host_assoc_fail(c, rc, "DH-HMAC-CHAP: cannot start: %s", strerror(-rc));
			return;
		}
		c->step = HOST_STEP_AUTH;
	}
	ctrlr_step(c, nvl_now_ns());
}

/* HOST_STEP_AUTH: the next message of the admin queue's transaction, or on
 * to the controller's set-up once authenticated. \return 0 or -errno. */
static int
auth_step(struct host_ctrlr *c)
{
	struct nvl_nvme_cmd cmd;
	uint32_t len = 0;
	uint8_t dir = NVL_XFER_NONE;
	char sum[96];
	int rc = host_auth_next(c->auth, &cmd, c->idbuf, NVL_NVME_IDENTIFY_SIZE, &len, &dir);

	if (rc < 0) {
		host_assoc_fail(c, rc, "%s", host_auth_error(c->auth));
		return 0;
	}
	if (rc > 0)
		return step_admin(c, &cmd, len, dir);
	NVL_VERBOSELOG(host, "%s: host %s authenticated (%s)", c->uri.nqn, c->hostnqn,
		       host_auth_summary(c->auth, sum, sizeof(sum)));
	host_auth_destroy(c->auth);
	c->auth = NULL;
	c->step = c->ops->fabrics ? HOST_STEP_CAP : HOST_STEP_ID_CTRL;
	ctrlr_step(c, nvl_now_ns());
	return 0;
}

void
host_assoc_qpairs_done(struct host_ctrlr *c)
{
	c->step = HOST_STEP_DONE;
	ctrlr_step(c, nvl_now_ns());
}

/* Issue the command of the current step (or move on when it has none). */
static void
ctrlr_step(struct host_ctrlr *c, uint64_t now)
{
	struct nvl_nvme_cmd cmd = { 0 };
	int rc = 0;

	switch (c->step) {
	case HOST_STEP_TRANSPORT:
		return;
	case HOST_STEP_AUTH:
		rc = auth_step(c);
		break;
	case HOST_STEP_CAP:
		rc = ctrlr_property(c, false, NVL_NVME_REG_CAP, true, 0, step_done);
		break;
	case HOST_STEP_CC:
		rc = ctrlr_property(c, true, NVL_NVME_REG_CC, false, NVL_NVME_CC_EN | HOST_CC_QES,
			      step_done);
		break;
	case HOST_STEP_CSTS:
		c->step_at_ns = UINT64_MAX; /* busy until the answer */
		rc = ctrlr_property(c, false, NVL_NVME_REG_CSTS, false, 0, step_done);
		break;
	case HOST_STEP_ID_CTRL:
		rc = ctrlr_identify(c, NVL_NVME_CNS_CTRLR, 0);
		break;
	case HOST_STEP_NOQ: {
		uint32_t n = NVL_MAX(NVL_MIN(c->opts.io_queues, (uint16_t)HOST_MAX_QUEUES), 1) - 1;

		cmd.opc = NVL_NVME_ADM_SET_FEATURES;
		cmd.cdw10 = NVL_NVME_FEAT_NUMBER_OF_QUEUES;
		cmd.cdw11 = n | (n << 16);
		rc = step_admin(c, &cmd, 0, NVL_XFER_NONE);
		break;
	}
	case HOST_STEP_NS_LIST:
		rc = ctrlr_identify(c, NVL_NVME_CNS_ACTIVE_NS_LIST, 0);
		break;
	case HOST_STEP_ID_NS:
		rc = ctrlr_identify(c, NVL_NVME_CNS_NS, c->ns_list[c->ns_idx]);
		break;
	case HOST_STEP_NS_DESC:
		rc = ctrlr_identify(c, NVL_NVME_CNS_NS_ID_DESCRIPTORS, c->ns_list[c->ns_idx]);
		break;
	case HOST_STEP_VERIFY:
		if (c->connected_once) {
			rc = ctrlr_emit(c, HOST_EV_RECONNECTED);
			if (c->dropping || !c->assoc_live)
				return;
			if (rc == -EAGAIN) {
				host_assoc_fail(c, -EAGAIN, "the owner refused this association: %s",
						c->last_error);
				return;
			}
			if (rc < 0) {
				host_ctrlr_give_up(c, c->last_error);
				return;
			}
		}
		c->step = HOST_STEP_QPAIRS;
		/* fallthrough */
	case HOST_STEP_QPAIRS:
		rc = host_qpairs_connect_all(c);
		if (rc < 0)
			return; /* the association failed */
		c->qp_waiting = (unsigned)rc;
		if (c->qp_waiting > 0)
			return;
		c->step = HOST_STEP_DONE;
		/* fallthrough */
	case HOST_STEP_DONE: {
		bool first = !c->connected_once;
		char ustr[640];

		c->connected_once = true;
		c->next_ka_ns = now + MS(NVL_MAX(c->opts.kato_ms / 3, (uint32_t)HOST_KA_MIN_MS));
		set_state(c, HOST_CTRLR_READY);
		set_fail_mode(c, HOST_FAIL_NONE);
		c->err = 0;
		NVL_VERBOSELOG(host, "%s to %s as %s: controller %u, MDTS %u bytes, %u I/O queues "
				     "of up to %u entries, keep-alive %u ms",
			       first ? "connected" : "reconnected",
			       host_ctrlr_uri_str(c, ustr, sizeof(ustr)),
			       host_ctrlr_hostnqn(c), host_ctrlr_cntlid(c), host_ctrlr_max_xfer(c),
			       host_ctrlr_max_io_queues(c), host_ctrlr_max_queue_entries(c),
			       c->opts.kato_ms);
		if (first) {
			ctrlr_emit(c, HOST_EV_CONNECTED);
		} else {
			/* the owner sees how long the outage lasted, then it is over */
			c->reconnects++;
			ctrlr_emit(c, HOST_EV_READY);
			c->lost_ns = 0;
			c->attempts = 0;
			c->last_error[0] = '\0';
		}
		return;
	}
	}
	if (rc < 0)
		host_assoc_fail(c, rc, "%s: cannot submit: %s", step_name(c->step), strerror(-rc));
}

static void
step_done(void *arg, const struct nvl_nvme_cpl *cpl, int rc)
{
	struct host_ctrlr *c = arg;
	uint16_t st = nvl_cpl_status(cpl);
	uint64_t now;

	if (c->dropping || rc < 0)
		return; /* the association ends (and says why) */
	if (c->step == HOST_STEP_AUTH) {
		(void)host_auth_complete(c->auth, cpl, c->idbuf, NVL_NVME_IDENTIFY_SIZE);
		ctrlr_step(c, nvl_now_ns()); /* the next message, the failure, or on */
		return;
	}
	if (st != 0 && c->step != HOST_STEP_NOQ && c->step != HOST_STEP_NS_DESC) {
		host_assoc_fail(c, -EREMOTEIO, "%s: %s (status 0x%03x)", step_name(c->step),
				nvl_status_str(st), st);
		return;
	}
	now = nvl_now_ns();
	switch (c->step) {
	case HOST_STEP_CAP:
		c->cap = (uint64_t)cpl->cdw0 | ((uint64_t)cpl->cdw1 << 32);
		c->max_queue_entries = (uint16_t)NVL_MIN((c->cap & 0xffff) + 1, 4096u);
		c->step = HOST_STEP_CC;
		break;
	case HOST_STEP_CC: {
		/* CAP.TO: worst case for CSTS.RDY, in 500 ms units */
		unsigned to_ms = (unsigned)((c->cap >> 24) & 0xff) * 500;

		c->csts_deadline_ns = now + MS(NVL_MAX(to_ms, 1000u));
		c->step = HOST_STEP_CSTS;
		break;
	}
	case HOST_STEP_CSTS:
		if (cpl->cdw0 & NVL_NVME_CSTS_CFS) {
			host_assoc_fail(c, -EIO, "controller fatal status while enabling");
			return;
		}
		if (!(cpl->cdw0 & NVL_NVME_CSTS_RDY)) {
			if (now > c->csts_deadline_ns) {
				host_assoc_fail(c, -ETIMEDOUT, "controller not ready after %llu ms",
						(unsigned long long)((c->cap >> 24) & 0xff) * 500);
				return;
			}
			c->step_at_ns = now + HOST_CSTS_POLL_NS; /* asked again from poll */
			return;
		}
		c->step = HOST_STEP_ID_CTRL;
		break;
	case HOST_STEP_ID_CTRL:
		memcpy(&c->id, c->idbuf, sizeof(c->id));
		c->max_xfer = c->id.mdts ? (uint32_t)NVL_MIN((uint64_t)NVL_NVME_PAGE_SIZE
								     << c->id.mdts,
							     (uint64_t)(1u << 20))
					 : 1u << 20;
		if (c->ops->fabrics)
			c->step = HOST_STEP_NOQ;
		else if (c->id.cntrltype == NVL_NVME_CNTRLTYPE_DISCOVERY)
			c->step = HOST_STEP_VERIFY;
		else
			c->step = HOST_STEP_NS_LIST;
		break;
	case HOST_STEP_NOQ:
		/* discovery controllers refuse it: then no I/O queues */
		c->max_io_queues =
			st ? 0
			   : (uint16_t)NVL_MIN(NVL_MIN((cpl->cdw0 & 0xffff) + 1, (cpl->cdw0 >> 16) + 1),
					       (uint32_t)HOST_MAX_QUEUES);
		c->step = c->id.cntrltype == NVL_NVME_CNTRLTYPE_DISCOVERY ? HOST_STEP_VERIFY
									 : HOST_STEP_NS_LIST;
		break;
	case HOST_STEP_NS_LIST: {
		const uint32_t *l = (const uint32_t *)c->idbuf;

		c->nns_list = 0;
		for (unsigned i = 0; i < 1024 && l[i] && c->nns_list < HOST_MAX_NS; i++)
			c->ns_list[c->nns_list++] = l[i];
		c->first_nsid = c->nns_list ? c->ns_list[0] : 0;
		c->ns_idx = 0;
		c->nns = 0;
		c->step = c->opts.scan_ns && c->nns_list ? HOST_STEP_ID_NS : HOST_STEP_VERIFY;
		break;
	}
	case HOST_STEP_ID_NS: {
		const struct nvl_nvme_id_ns *id = (const void *)c->idbuf;

		if (id->nsze) {
			host_ns_info_from_id(id, c->ns_list[c->ns_idx], &c->ns[c->nns]);
			c->step = HOST_STEP_NS_DESC;
		} else if (++c->ns_idx == c->nns_list) {
			c->step = HOST_STEP_VERIFY;
		}
		break;
	}
	case HOST_STEP_NS_DESC:
		/* optional: a controller without descriptors has no UUID to compare */
		if (st == 0)
			host_ns_uuid_from_desc(c->idbuf, c->ns[c->nns].uuid);
		c->nns++;
		c->step = ++c->ns_idx == c->nns_list ? HOST_STEP_VERIFY : HOST_STEP_ID_NS;
		break;
	default:
		return;
	}
	ctrlr_step(c, now);
}

/* ---- loss, reconnect, giving up ------------------------------------------------------------- */

static uint64_t
backoff_ms(const struct host_ctrlr *c)
{
	unsigned n = c->attempts;
	uint64_t d;

	if (c->opts.reconnect_at_once) {
		if (n == 0)
			return 0;
		n--;
	}
	d = (uint64_t)c->opts.reconnect_delay_ms << NVL_MIN(n, 20u);
	return NVL_MIN(d, (uint64_t)c->opts.reconnect_delay_max_ms);
}

/* End the current association (no events): queue pairs are told through
 * the generation, everything outstanding on the admin side completes. */
static void
assoc_drop(struct host_ctrlr *c)
{
	const struct host_admin_req *expired = NULL;

	for (unsigned i = 0; i < HOST_ADMIN_SLOTS; i++)
		if (c->admin[i].busy && c->admin[i].deadline_ns == 0)
			expired = &c->admin[i]; /* marked by admin_check_deadlines() */
	c->dropping = true;
	/* Publish the new generation; pairs with the acquire in qpair.c. */
	__atomic_store_n(&c->gen, c->gen + 1, __ATOMIC_RELEASE);
	if (c->tctx)
		c->ops->assoc_stop(c);
	c->assoc_live = false;
	admin_abort_all(c, expired);
	host_qpairs_assoc_dropped(c);
	host_auth_destroy(c->auth);
	c->auth = NULL;
	if (c->idbuf) {
		if (c->win)
			host_window_free(c->win, c->idbuf);
		else
			free(c->idbuf);
		c->idbuf = NULL;
	}
	host_window_put(c->win);
	c->win = NULL;
	c->ka_busy = false;
	c->dropping = false;
	host_qpairs_kick(c);
}

void
host_ctrlr_give_up(struct host_ctrlr *c, const char *why)
{
	enum host_ctrlr_state st = host_ctrlr_state(c);

	if (st == HOST_CTRLR_FAILED || st == HOST_CTRLR_CLOSED)
		return;
	if (why != c->last_error)
		host_ctrlr_set_error(c, "%s", why);
	set_fail_mode(c, HOST_FAIL_GONE);
	if (c->assoc_live || c->tctx)
		assoc_drop(c);
	set_state(c, HOST_CTRLR_FAILED);
	host_qpairs_kick(c);
	if (st == HOST_CTRLR_CONNECTING)
		ctrlr_emit(c, HOST_EV_CONNECT_FAILED);
	else
		ctrlr_emit(c, HOST_EV_GIVEN_UP);
}

static void
schedule_attempt(struct host_ctrlr *c, uint64_t now)
{
	if (c->opts.ctrlr_loss_ms == 0) {
		host_ctrlr_give_up(c, c->last_error);
		return;
	}
	c->next_attempt_ns = now + MS(backoff_ms(c));
	set_state(c, HOST_CTRLR_WAIT_RECONNECT);
}

void
host_assoc_fail(struct host_ctrlr *c, int rc, const char *fmt, ...)
{
	enum host_ctrlr_state st = host_ctrlr_state(c);
	uint64_t now = nvl_now_ns();
	va_list ap;

	if (c->dropping)
		return;
	va_start(ap, fmt);
	vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
	va_end(ap);
	c->err = rc;
	switch (st) {
	case HOST_CTRLR_CONNECTING:
		host_ctrlr_give_up(c, c->last_error);
		return;
	case HOST_CTRLR_READY:
		c->losses++;
		c->lost_ns = now;
		c->attempts = 0;
		assoc_drop(c);
		set_state(c, HOST_CTRLR_WAIT_RECONNECT); /* what the owner sees during LOST */
		ctrlr_emit(c, HOST_EV_LOST);
		if (host_ctrlr_state(c) == HOST_CTRLR_WAIT_RECONNECT)
			schedule_attempt(c, now);
		return;
	case HOST_CTRLR_RECONNECTING:
		assoc_drop(c);
		schedule_attempt(c, now);
		return;
	case HOST_CTRLR_CLOSING:
		assoc_drop(c);
		close_finish(c);
		return;
	default:
		if (c->assoc_live || c->tctx)
			assoc_drop(c);
		return;
	}
}

static void
ka_done(void *arg, const struct nvl_nvme_cpl *cpl, int rc)
{
	struct host_ctrlr *c = arg;

	c->ka_busy = false;
	if (c->dropping || rc < 0 || host_ctrlr_state(c) != HOST_CTRLR_READY)
		return;
	if (nvl_cpl_status(cpl) != 0)
		host_assoc_fail(c, -EREMOTEIO, "Keep Alive failed: %s",
				nvl_status_str(nvl_cpl_status(cpl)));
}

/* ---- close ------------------------------------------------------------------------------------ */

static void close_done(void *arg, const struct nvl_nvme_cpl *cpl, int rc);

static void
close_finish(struct host_ctrlr *c)
{
	if (c->assoc_live || c->tctx) {
		if (c->assoc_live && c->ops->assoc_bye)
			c->ops->assoc_bye(c);
		assoc_drop(c);
	}
	c->close_step = HOST_CLOSE_DONE;
	set_fail_mode(c, HOST_FAIL_GONE);
	set_state(c, HOST_CTRLR_CLOSED);
	ctrlr_emit(c, HOST_EV_CLOSED);
}

static void
close_step(struct host_ctrlr *c)
{
	int rc;

	if (c->close_step == HOST_CLOSE_SHN)
		/* normal shutdown notification (CC.SHN = 01b) */
		rc = ctrlr_property(c, true, NVL_NVME_REG_CC, false,
			      NVL_NVME_CC_EN | (1u << NVL_NVME_CC_SHN_SHIFT) | HOST_CC_QES,
			      close_done);
	else
		rc = ctrlr_property(c, false, NVL_NVME_REG_CSTS, false, 0, close_done);
	if (rc < 0)
		close_finish(c);
}

static void
close_done(void *arg, const struct nvl_nvme_cpl *cpl, int rc)
{
	struct host_ctrlr *c = arg;

	if (c->dropping || c->close_step == HOST_CLOSE_DONE)
		return;
	if (rc < 0 || nvl_cpl_status(cpl) != 0 || c->close_step == HOST_CLOSE_SHST) {
		if (rc == 0 && nvl_cpl_status(cpl) == 0 &&
		    (cpl->cdw0 & NVL_NVME_CSTS_SHST_MASK) != NVL_NVME_CSTS_SHST_COMPLETE &&
		    nvl_now_ns() < c->close_deadline_ns) {
			c->step_at_ns = nvl_now_ns() + HOST_CSTS_POLL_NS;
			return; /* asked again from poll */
		}
		close_finish(c);
		return;
	}
	c->close_step = HOST_CLOSE_SHST;
	close_step(c);
}

void
host_ctrlr_close(struct host_ctrlr *c)
{
	enum host_ctrlr_state st = host_ctrlr_state(c);

	if (st == HOST_CTRLR_CLOSING || st == HOST_CTRLR_CLOSED)
		return;
	set_fail_mode(c, HOST_FAIL_GONE);
	host_qpairs_kick(c);
	if (st != HOST_CTRLR_READY || !c->ops->fabrics) {
		close_finish(c);
		return;
	}
	set_state(c, HOST_CTRLR_CLOSING);
	c->close_step = HOST_CLOSE_SHN;
	c->close_deadline_ns = nvl_now_ns() + MS(HOST_SHUTDOWN_MS);
	c->step_at_ns = UINT64_MAX;
	close_step(c);
}

/* ---- create, poll, destroy ----------------------------------------------------------------------- */

int
host_ctrlr_create(const struct host_ctrlr_opts *o, struct host_ctrlr **out)
{
	struct host_ctrlr *c;
	int rc;

	if (o->uri == NULL || o->hostnqn == NULL || strlen(o->hostnqn) >= NVL_NVME_NQN_LEN)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->opts = *o;
	c->uri = *o->uri;
	nvl_strlcpy(c->hostnqn, o->hostnqn, sizeof(c->hostnqn));
	c->opts.uri = &c->uri;
	c->opts.hostnqn = c->hostnqn;
	if (c->opts.connect_timeout_ms == 0)
		c->opts.connect_timeout_ms = HOST_DEFAULT_TIMEOUT_MS;
	if (c->opts.admin_timeout_ms == 0)
		c->opts.admin_timeout_ms = HOST_DEFAULT_TIMEOUT_MS;
	if (c->opts.window_bytes == 0)
		c->opts.window_bytes = 64ULL << 20;
	if (c->opts.io_queues == 0)
		c->opts.io_queues = HOST_MAX_QUEUES;
	if (c->opts.reconnect_delay_max_ms == 0)
		c->opts.reconnect_delay_max_ms = c->opts.reconnect_delay_ms * 8;
	if (c->uri.kind == NVL_URI_NVME_SHM) {
		c->ops = &g_host_shm_ops;
	} else if (c->uri.kind == NVL_URI_NVME_TCP) {
		c->ops = &g_host_tcp_ops;
	} else if (c->uri.kind == NVL_URI_NVME_RDMA) {
		c->ops = &g_host_rdma_ops;
	} else {
		free(c);
		return -EPROTONOSUPPORT;
	}
	TAILQ_INIT(&c->qpairs);
	c->gen = 1;
	c->ns_list = calloc(HOST_MAX_NS, sizeof(*c->ns_list));
	c->ns = c->opts.scan_ns ? calloc(HOST_MAX_NS, sizeof(*c->ns)) : NULL;
	if (c->ns_list == NULL || (c->opts.scan_ns && c->ns == NULL)) {
		rc = -ENOMEM;
		goto err_free;
	}
	if (c->ops->ctrlr_init) {
		rc = c->ops->ctrlr_init(c);
		if (rc < 0)
			goto err_free;
	}
	set_state(c, HOST_CTRLR_CONNECTING);
	rc = assoc_begin(c, nvl_now_ns());
	if (rc < 0)
		goto err_fini;
	*out = c;
	return 0;
err_fini:
	if (c->ops->ctrlr_fini)
		c->ops->ctrlr_fini(c);
err_free:
	free(c->ns_list);
	free(c->ns);
	free(c);
	return rc;
}

void
host_ctrlr_destroy(struct host_ctrlr *c)
{
	if (c == NULL)
		return;
	if (c->assoc_live || c->tctx) {
		c->opts.event = NULL;
		assoc_drop(c);
	}
	if (c->ops->ctrlr_fini)
		c->ops->ctrlr_fini(c);
	free(c->ns_list);
	free(c->ns);
	nvl_dhchap_key_wipe(&c->opts.dhchap_key);
	nvl_dhchap_key_wipe(&c->opts.dhchap_ctrlr_key);
	free(c);
}

/* An admin command past its deadline ends the association (the command's
 * callback gets -ETIMEDOUT). \return true if one did. */
static bool
admin_check_deadlines(struct host_ctrlr *c, uint64_t now)
{
	for (unsigned i = 0; i < HOST_ADMIN_SLOTS; i++) {
		struct host_admin_req *a = &c->admin[i];

		if (!a->busy || now <= a->deadline_ns)
			continue;
		a->deadline_ns = 0; /* the expired one, for assoc_drop() */
		if (a->cb == ka_done)
			host_assoc_fail(c, -ETIMEDOUT, "Keep Alive timed out");
		else
			host_assoc_fail(c, -ETIMEDOUT, "admin opcode 0x%02x timed out after %u ms",
					a->cmd.opc, c->opts.admin_timeout_ms);
		return true;
	}
	return false;
}

/* A queue pair reported that its connection of the current association failed. */
static bool
check_qpair_loss(struct host_ctrlr *c)
{
	uint32_t lost = __atomic_load_n(&c->lost_gen, __ATOMIC_ACQUIRE);
	struct host_qpair *qp;

	if (lost != c->gen || !c->assoc_live)
		return false;
	TAILQ_FOREACH(qp, &c->qpairs, link) {
		if (__atomic_load_n(&qp->lost_reported, __ATOMIC_ACQUIRE) &&
		    __atomic_load_n(&qp->gen, __ATOMIC_RELAXED) == lost) {
			host_assoc_fail(c, -ENOTCONN, "%s", qp->lost_why);
			return true;
		}
	}
	host_assoc_fail(c, -ENOTCONN, "an I/O queue lost its connection");
	return true;
}

static void
check_outage(struct host_ctrlr *c, uint64_t now)
{
	enum host_ctrlr_state st = host_ctrlr_state(c);

	/* (now may predate a loss this very poll noticed) */
	if (c->lost_ns == 0 || now < c->lost_ns ||
	    (st != HOST_CTRLR_WAIT_RECONNECT && st != HOST_CTRLR_RECONNECTING))
		return;
	if (c->opts.fast_io_fail_ms && host_ctrlr_fail_mode(c) == HOST_FAIL_NONE &&
	    now - c->lost_ns >= MS(c->opts.fast_io_fail_ms)) {
		set_fail_mode(c, HOST_FAIL_FAST);
		host_qpairs_kick(c);
		ctrlr_emit(c, HOST_EV_FAST_FAIL);
	}
	if (c->opts.ctrlr_loss_ms > 0 && now - c->lost_ns >= MS(c->opts.ctrlr_loss_ms))
		host_ctrlr_give_up(c, c->last_error);
}

int
host_ctrlr_poll(struct host_ctrlr *c, uint64_t now)
{
	enum host_ctrlr_state st;
	int work = 0;

	if (c->tctx)
		work += c->ops->process(c, now);
	if (check_qpair_loss(c) || admin_check_deadlines(c, now))
		work++;
	st = host_ctrlr_state(c);
	if ((st == HOST_CTRLR_CONNECTING || st == HOST_CTRLR_RECONNECTING) &&
	    c->step < HOST_STEP_DONE && now > c->assoc_deadline_ns) {
		char t[300];

		if (c->step == HOST_STEP_TRANSPORT)
			host_assoc_fail(c, -ETIMEDOUT, "%s: no answer within %u ms",
					target_str(c, t, sizeof(t)), c->opts.connect_timeout_ms);
		else
			host_assoc_fail(c, -ETIMEDOUT, "%s timed out", step_name(c->step));
		work++;
		st = host_ctrlr_state(c);
	}
	if (now >= c->step_at_ns) {
		/* a CSTS read that waits its turn (enabling, or shutting down) */
		c->step_at_ns = UINT64_MAX;
		if (c->assoc_live && st == HOST_CTRLR_CLOSING)
			close_step(c);
		else if (c->assoc_live && c->step == HOST_STEP_CSTS)
			ctrlr_step(c, now);
		work++;
		st = host_ctrlr_state(c);
	}
	switch (st) {
	case HOST_CTRLR_READY:
		if (c->opts.send_keepalive && c->opts.kato_ms && !c->ka_busy && now >= c->next_ka_ns) {
			struct nvl_nvme_cmd cmd = { 0 };

			cmd.opc = NVL_NVME_ADM_KEEP_ALIVE;
			if (host_admin_submit(c, &cmd, NULL, 0, NVL_XFER_NONE, 0, ka_done, c, NULL,
					      NULL) >= 0)
				c->ka_busy = true;
			c->next_ka_ns =
				now + MS(NVL_MAX(c->opts.kato_ms / 3, (uint32_t)HOST_KA_MIN_MS));
			work++;
		}
		work += host_qpairs_connect_new(c);
		break;
	case HOST_CTRLR_WAIT_RECONNECT:
		if (now >= c->next_attempt_ns) {
			int rc;

			c->attempts++;
			set_state(c, HOST_CTRLR_RECONNECTING);
			rc = assoc_begin(c, now);
			if (rc < 0)
				host_assoc_fail(c, rc, "reconnect: %s", strerror(-rc));
			work++;
		}
		break;
	default:
		break;
	}
	check_outage(c, now);
	return work;
}

int
host_ctrlr_fds(struct host_ctrlr *c, struct pollfd *pfds, int max)
{
	if (c->tctx == NULL || max <= 0)
		return 0;
	return c->ops->fds(c, pfds, max);
}

uint64_t
host_ctrlr_next_ns(const struct host_ctrlr *c)
{
	enum host_ctrlr_state st = host_ctrlr_state(c);
	uint64_t t = c->step_at_ns;

	for (unsigned i = 0; i < HOST_ADMIN_SLOTS; i++)
		if (c->admin[i].busy)
			t = NVL_MIN(t, c->admin[i].deadline_ns);
	if ((st == HOST_CTRLR_CONNECTING || st == HOST_CTRLR_RECONNECTING) &&
	    c->step < HOST_STEP_DONE)
		t = NVL_MIN(t, c->assoc_deadline_ns);
	if (st == HOST_CTRLR_READY && c->opts.send_keepalive && c->opts.kato_ms && !c->ka_busy)
		t = NVL_MIN(t, c->next_ka_ns);
	if (st == HOST_CTRLR_WAIT_RECONNECT)
		t = NVL_MIN(t, c->next_attempt_ns);
	if (c->lost_ns && (st == HOST_CTRLR_WAIT_RECONNECT || st == HOST_CTRLR_RECONNECTING)) {
		if (c->opts.fast_io_fail_ms && host_ctrlr_fail_mode(c) == HOST_FAIL_NONE)
			t = NVL_MIN(t, c->lost_ns + MS(c->opts.fast_io_fail_ms));
		if (c->opts.ctrlr_loss_ms > 0)
			t = NVL_MIN(t, c->lost_ns + MS(c->opts.ctrlr_loss_ms));
	}
	return t;
}

bool
host_ctrlr_busy(const struct host_ctrlr *c)
{
	enum host_ctrlr_state st = host_ctrlr_state(c);

	if (st == HOST_CTRLR_CONNECTING || st == HOST_CTRLR_RECONNECTING ||
	    st == HOST_CTRLR_CLOSING)
		return true;
	for (unsigned i = 0; i < HOST_ADMIN_SLOTS; i++)
		if (c->admin[i].busy && !(c->admin[i].flags & HOST_ADMIN_NO_TIMEOUT))
			return true;
	return host_qpairs_connecting(c);
}

/* ---- getters --------------------------------------------------------------------------------- */

enum host_ctrlr_state
host_ctrlr_state(const struct host_ctrlr *c)
{
	return (enum host_ctrlr_state)__atomic_load_n(&c->state, __ATOMIC_RELAXED);
}

enum host_fail_mode
host_ctrlr_fail_mode(const struct host_ctrlr *c)
{
	return (enum host_fail_mode)__atomic_load_n(&c->fail_mode, __ATOMIC_ACQUIRE);
}

int
host_ctrlr_errno(const struct host_ctrlr *c)
{
	return c->err;
}

const char *
host_ctrlr_last_error(const struct host_ctrlr *c)
{
	return c->last_error;
}

const struct nvl_uri *
host_ctrlr_uri(const struct host_ctrlr *c)
{
	return &c->uri;
}

const char *
host_ctrlr_hostnqn(const struct host_ctrlr *c)
{
	return c->hostnqn;
}

const uint8_t *
host_ctrlr_hostid(const struct host_ctrlr *c)
{
	return c->opts.hostid;
}

uint16_t
host_ctrlr_cntlid(const struct host_ctrlr *c)
{
	return c->cntlid;
}

const struct nvl_nvme_id_ctrl *
host_ctrlr_id(const struct host_ctrlr *c)
{
	return &c->id;
}

uint32_t
host_ctrlr_max_xfer(const struct host_ctrlr *c)
{
	return c->max_xfer;
}

uint16_t
host_ctrlr_max_io_queues(const struct host_ctrlr *c)
{
	return c->max_io_queues;
}

uint16_t
host_ctrlr_max_queue_entries(const struct host_ctrlr *c)
{
	return c->max_queue_entries;
}

uint32_t
host_ctrlr_first_nsid(const struct host_ctrlr *c)
{
	return c->first_nsid;
}

unsigned
host_ctrlr_ns_count(const struct host_ctrlr *c)
{
	return c->nns;
}

const struct nvl_ns_info *
host_ctrlr_ns(const struct host_ctrlr *c, unsigned idx)
{
	return idx < c->nns ? &c->ns[idx] : NULL;
}

const struct nvl_ns_info *
host_ctrlr_ns_find(const struct host_ctrlr *c, uint32_t nsid)
{
	for (unsigned i = 0; i < c->nns; i++)
		if (c->ns[i].nsid == nsid)
			return &c->ns[i];
	return NULL;
}

uint64_t
host_ctrlr_losses(const struct host_ctrlr *c)
{
	return c->losses;
}

uint64_t
host_ctrlr_reconnects(const struct host_ctrlr *c)
{
	return c->reconnects;
}

unsigned
host_ctrlr_attempts(const struct host_ctrlr *c)
{
	return c->attempts;
}

uint64_t
host_ctrlr_lost_ns(const struct host_ctrlr *c)
{
	return c->lost_ns;
}

/* ---- buffers ----------------------------------------------------------------------------------- */

struct host_window *
host_ctrlr_window_get(struct host_ctrlr *c)
{
	if (c->win)
		host_window_get(c->win);
	return c->win;
}

bool
host_ctrlr_buf_reachable(const struct host_ctrlr *c, const void *p, size_t len)
{
	return c->win == NULL || host_window_contains(c->win, p, len);
}
