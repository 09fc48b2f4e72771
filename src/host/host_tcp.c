/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The host side of NVMe/TCP behind the host core's ops table:
 * nvme+tcp://HOST:PORT/SUBNQN[/NSID]. Every queue (admin included) is one
 * connection driven by the non-blocking initiator queue of tcp_hostq.c.
 * The controller's owner drives the admin queue and the connections of
 * I/O queues being made (ICReq, Fabrics Connect); once connected, an I/O
 * queue belongs to its queue pair's thread, which polls its socket.
 *
 * Data goes straight between the socket and the caller's buffers (no
 * window). I/O queues ask the controller to skip SQ flow control, so reads
 * can end with C2HData SUCCESS. The address is resolved once, when the
 * controller is created.
 */
#include "host/host_internal.h"
#include "host/tcp_hostq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define TCP_ADMIN_ENTRIES 32
#define TCP_ADMIN_ICD 8192
#define TCP_ADMIN_MAX_DATA (1u << 20)

/* For the controller's life (c->tstate). */
struct tcp_state {
	struct nvl_tcp_hq_opts base;   /* address, NQNs, host id, digests */
};

/* One association (c->tctx). */
struct tcp_assoc {
	struct nvl_tcp_hq *admin;
	bool ready;
	bool in_process;    /* inside the admin queue's process: its callbacks run */
	bool stopped;       /* the core ended it meanwhile: free once process returns */
};

/* A transport queue (and, while connecting, qp->tconn). */
struct tcp_tq {
	struct host_tq base;
	struct nvl_tcp_hq *hq;
	struct host_qpair *qp;
	/* while connecting, if the Connect asked for it: the queue's own
	 * DH-HMAC-CHAP transaction (host_auth.c), one message at a time */
	struct host_auth *auth;
	uint8_t *abuf;              /* NVL_DHCHAP_MAX_MSG */
	bool abusy;                 /* a message is out */
};

void
host_digests_from_env(struct host_ctrlr_opts *o)
{
	const char *d = getenv("NVLEND_TCP_DIGESTS");

	o->hdgst = d && strstr(d, "header");
	o->ddgst = d && strstr(d, "data");
}

static int
tcp_ctrlr_init(struct host_ctrlr *c)
{
	struct tcp_state *ts = calloc(1, sizeof(*ts));
	int rc;

	if (ts == NULL)
		return -ENOMEM;
	rc = nvl_tcp_hq_resolve(c->uri.host, c->uri.port, c->opts.numeric_host, &ts->base);
	if (rc < 0) {
		host_ctrlr_set_error(c, "cannot resolve %s port %s", c->uri.host, c->uri.port);
		free(ts);
		return rc;
	}
	ts->base.subnqn = c->uri.nqn;
	ts->base.hostnqn = c->hostnqn;
	ts->base.hostid = c->opts.hostid;
	ts->base.hdgst = c->opts.hdgst;
	ts->base.ddgst = c->opts.ddgst;
	c->tstate = ts;
	return 0;
}

static void
tcp_ctrlr_fini(struct host_ctrlr *c)
{
	free(c->tstate);
	c->tstate = NULL;
}

/* ---- association --------------------------------------------------------------------- */

static int
tcp_assoc_start(struct host_ctrlr *c, uint64_t now)
{
	struct tcp_state *ts = c->tstate;
	struct nvl_tcp_hq_opts o = ts->base;
	struct tcp_assoc *ta;
	int rc;

	(void)now;
	ta = calloc(1, sizeof(*ta));
	if (ta == NULL)
		return -ENOMEM;
	o.qid = 0;
	o.entries = TCP_ADMIN_ENTRIES;
	o.cntlid = 0xffff;
	o.kato_ms = c->opts.kato_ms;
	o.icd_max = TCP_ADMIN_ICD;
	o.max_data = TCP_ADMIN_MAX_DATA;
	rc = nvl_tcp_hq_create(&o, &ta->admin);
	if (rc < 0) {
		host_ctrlr_set_error(c, "cannot open a socket to %s:%s: %s", c->uri.host,
				     c->uri.port, strerror(-rc));
		free(ta);
		return rc;
	}
	c->tctx = ta;
	return 0;
}

static void
tcp_assoc_stop(struct host_ctrlr *c)
{
	struct tcp_assoc *ta = c->tctx;

	if (ta == NULL)
		return;
	c->tctx = NULL;
	if (ta->in_process) {
		/* a completion callback ended the association: the queue is still
		 * being processed; tcp_process frees it when it returns */
		ta->stopped = true;
		return;
	}
	/* outstanding admin commands are forgotten: the core completes them */
	nvl_tcp_hq_destroy(ta->admin);
	free(ta);
}

/* Admin completion. A command that dies with the connection is left to the
 * core, which ends the association and says so (-ENOTCONN). */
static void
tcp_admin_done(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct host_admin_req *a = arg;
	struct host_ctrlr *c = a->c;
	struct tcp_assoc *ta = c->tctx;
	struct nvl_nvme_cpl local = *cpl;

	if (ta == NULL || nvl_tcp_hq_state(ta->admin) == NVL_TCP_HQ_FAILED)
		return;
	local.cid = a->cmd.cid;
	host_admin_complete(c, a, &local, NULL, 0);
}

static int
tcp_admin_send(struct host_ctrlr *c, struct host_admin_req *a)
{
	struct tcp_assoc *ta = c->tctx;
	struct iovec iov = { a->buf, a->len };
	int rc;

	rc = nvl_tcp_hq_submit(ta->admin, &a->cmd, &iov, a->len ? 1 : 0, a->len, a->dir,
			       tcp_admin_done, a);
	a->sent = rc == 0;
	return rc;
}

static void
tq_auth_end(struct tcp_tq *t)
{
	host_auth_destroy(t->auth);
	t->auth = NULL;
	if (t->abuf)
		OPENSSL_cleanse(t->abuf, NVL_DHCHAP_MAX_MSG);
	free(t->abuf);
	t->abuf = NULL;
}

static void
tq_free(struct tcp_tq *t)
{
	nvl_tcp_hq_destroy(t->hq);
	tq_auth_end(t);
	free(t);
}

static void
tq_auth_done(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct tcp_tq *t = arg;

	t->abusy = false;
	(void)host_auth_complete(t->auth, cpl, t->abuf, NVL_DHCHAP_MAX_MSG);
}

/*
 * A connected I/O queue whose Connect asked for authentication runs its own
 * transaction before it carries I/O (over NVMe/TCP each queue is a
 * connection of its own). \return 1 still at it, 0 authenticated (or not
 * asked), -errno failed with why filled.
 */
static int
tq_auth_step(struct host_ctrlr *c, struct tcp_tq *t, char *why, size_t wlen)
{
	int rc;

	if (t->auth == NULL) {
		uint32_t req = nvl_tcp_hq_authreq(t->hq);

		if (req == 0)
			return 0;
		if (req & NVL_NVMF_CONNECT_AUTHREQ_ASCR) {
			snprintf(why, wlen, "the controller asks for a secure channel (AUTHREQ.ASCR): "
					    "not supported by this host");
			return -EPROTONOSUPPORT;
		}
		if (c->opts.dhchap_key.len == 0) {
			snprintf(why, wlen, "DH-HMAC-CHAP required, and no key was given");
			return -EACCES;
		}
		t->abuf = malloc(NVL_DHCHAP_MAX_MSG);
		rc = t->abuf ? host_auth_create(&c->opts.dhchap_key, &c->opts.dhchap_ctrlr_key,
						c->hostnqn, c->uri.nqn, t->qp->qid, &t->auth)
			     : -ENOMEM;
		if (rc < 0) {
			snprintf(why, wlen, "DH-HMAC-CHAP: cannot start: %s", strerror(-rc));
			return rc;
		}
	}
	while (!t->abusy) {
		struct nvl_nvme_cmd cmd;
		struct iovec iov;
		uint32_t len = 0;
		uint8_t dir = 0;

		rc = host_auth_next(t->auth, &cmd, t->abuf, NVL_DHCHAP_MAX_MSG, &len, &dir);
		if (rc < 0)
			snprintf(why, wlen, "%s", host_auth_error(t->auth));
		if (rc <= 0) {
			tq_auth_end(t);
			return rc;
		}
		iov.iov_base = t->abuf;
		iov.iov_len = len;
		rc = nvl_tcp_hq_submit(t->hq, &cmd, &iov, 1, len, dir, tq_auth_done, t);
		if (rc < 0) {
			snprintf(why, wlen, "DH-HMAC-CHAP: cannot send: %s", strerror(-rc));
			return rc;
		}
		t->abusy = true;
		(void)nvl_tcp_hq_process(t->hq);
	}
	return 1;
}

/* Drive the connections of I/O queues being made. \return work done. */
static int
process_connecting(struct host_ctrlr *c, struct tcp_assoc *ta)
{
	struct host_qpair *qp, *tmp;
	int work = 0;

	TAILQ_FOREACH_SAFE(qp, &c->qpairs, link, tmp) {
		struct tcp_tq *t = qp->tconn;
		enum nvl_tcp_hq_state st;

		if (qp->cstate != HOST_QP_CONNECTING || t == NULL)
			continue;
		(void)nvl_tcp_hq_process(t->hq);
		st = nvl_tcp_hq_state(t->hq);
		if (st == NVL_TCP_HQ_CONNECTING)
			continue;
		if (st == NVL_TCP_HQ_READY) {
			char why[HOST_ERR_LEN];
			int rc = tq_auth_step(c, t, why, sizeof(why));

			if (rc > 0)
				continue;
			if (rc < 0) {
				qp->tconn = NULL;
				work++;
				tq_free(t);
				host_tq_failed(c, qp, rc, "I/O queue %u: %s", qp->qid, why);
				if (c->tctx != ta)
					break;
				continue;
			}
		}
		work++;
		qp->tconn = NULL;
		if (st == NVL_TCP_HQ_READY) {
			host_tq_connected(c, qp, &t->base);
		} else {
			int rc = nvl_tcp_hq_errno(t->hq) ? nvl_tcp_hq_errno(t->hq) : -EPROTO;
			char why[256];

			snprintf(why, sizeof(why), "%s", nvl_tcp_hq_error(t->hq));
			tq_free(t);
			host_tq_failed(c, qp, rc, "I/O queue %u: %s", qp->qid, why);
		}
		if (c->tctx != ta)
			break; /* that ended the association */
	}
	return work;
}

static int
tcp_process(struct host_ctrlr *c, uint64_t now)
{
	struct tcp_assoc *ta = c->tctx;
	int n;

	(void)now;
	ta->in_process = true;
	n = nvl_tcp_hq_process(ta->admin);
	ta->in_process = false;
	if (ta->stopped) {
		/* a completion ended the association */
		nvl_tcp_hq_destroy(ta->admin);
		free(ta);
		return 1;
	}
	if (nvl_tcp_hq_state(ta->admin) == NVL_TCP_HQ_FAILED) {
		if (!ta->ready)
			host_assoc_fail(c,
					nvl_tcp_hq_errno(ta->admin) ? nvl_tcp_hq_errno(ta->admin)
								    : -EPROTO,
					"%s:%s: %s", c->uri.host, c->uri.port,
					nvl_tcp_hq_error(ta->admin));
		else
			host_assoc_fail(c, -ENOTCONN, "admin queue: %s",
					nvl_tcp_hq_error(ta->admin));
		return 1;
	}
	if (!ta->ready && nvl_tcp_hq_state(ta->admin) == NVL_TCP_HQ_READY) {
		ta->ready = true;
		c->cntlid = nvl_tcp_hq_cntlid(ta->admin);
		c->authreq = nvl_tcp_hq_authreq(ta->admin);
		host_assoc_transport_ready(c);
		n++;
		if (c->tctx != ta)
			return n;
	}
	return (n > 0) + process_connecting(c, ta);
}

static int
tcp_fds(struct host_ctrlr *c, struct pollfd *p, int max)
{
	struct tcp_assoc *ta = c->tctx;
	struct host_qpair *qp;
	int n = 0;

	p[n].fd = nvl_tcp_hq_fd(ta->admin);
	p[n].events = POLLIN | (nvl_tcp_hq_want_write(ta->admin) ? POLLOUT : 0);
	p[n++].revents = 0;
	TAILQ_FOREACH(qp, &c->qpairs, link) {
		struct tcp_tq *t = qp->tconn;

		if (n == max)
			break;
		if (qp->cstate != HOST_QP_CONNECTING || t == NULL)
			continue;
		p[n].fd = nvl_tcp_hq_fd(t->hq);
		p[n].events = POLLIN | (nvl_tcp_hq_want_write(t->hq) ? POLLOUT : 0);
		p[n++].revents = 0;
	}
	return n;
}

/* ---- I/O queues ---------------------------------------------------------------------------- */

static int
tcp_tq_connect(struct host_ctrlr *c, struct host_qpair *qp)
{
	struct tcp_state *ts = c->tstate;
	struct nvl_tcp_hq_opts o = ts->base;
	struct tcp_tq *t;
	int rc;

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	o.qid = qp->qid;
	o.entries = (uint16_t)qp->entries;
	o.cntlid = c->cntlid;
	o.kato_ms = 0;
	/* IOCCSZ counts 16-byte units of the capsule, the 64-byte SQE included */
	o.icd_max = c->id.ioccsz >= 4 ? c->id.ioccsz * 16 - (uint32_t)sizeof(struct nvl_nvme_cmd)
				      : 0;
	o.max_data = c->max_xfer;
	o.disable_sqflow = true; /* no SQHD needed: lets the target skip responses after reads */
	rc = nvl_tcp_hq_create(&o, &t->hq);
	if (rc < 0) {
		free(t);
		return rc;
	}
	t->base.ops = &g_host_tcp_ops;
	t->qp = qp;
	qp->tconn = t;
	return 0;
}

static void
tcp_tq_cancel(struct host_ctrlr *c, struct host_qpair *qp)
{
	(void)c;
	if (qp->tconn)
		tq_free(qp->tconn);
	qp->tconn = NULL;
}

static void
tcp_tq_destroy(struct host_tq *tq)
{
	/* closing the connection deletes the I/O queue on the controller */
	tq_free((struct tcp_tq *)tq);
}

static void
tcp_io_done(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct host_req *r = arg;
	struct host_qpair *qp = r->qp;
	struct tcp_tq *t = (struct tcp_tq *)qp->tq;
	struct nvl_nvme_cpl local;

	if (nvl_unlikely(nvl_tcp_hq_state(t->hq) == NVL_TCP_HQ_FAILED)) {
		/* the connection went, not the command */
		host_qpair_path_lost(qp, r->cid);
		return;
	}
	local = *cpl;
	local.cid = r->cid;
	host_qpair_complete(qp, &local);
}

static int
tcp_submit(struct host_qpair *qp, struct host_tq *tq, struct host_req *r, struct nvl_nvme_cmd *cmd,
	   const struct iovec *iov, int iovcnt)
{
	struct tcp_tq *t = (struct tcp_tq *)tq;
	uint16_t cid = cmd->cid;
	int rc;

	(void)qp;
	rc = nvl_tcp_hq_submit(t->hq, cmd, iov, iovcnt, r->len, r->dir, tcp_io_done, r);
	cmd->cid = cid; /* the connection numbers its own commands; the slot is ours */
	return rc;
}

static int
tcp_poll(struct host_qpair *qp, struct host_tq *tq, uint32_t max)
{
	struct tcp_tq *t = (struct tcp_tq *)tq;
	int n;

	(void)max;
	n = nvl_tcp_hq_process(t->hq);
	if (nvl_unlikely(n < 0 || nvl_tcp_hq_state(t->hq) == NVL_TCP_HQ_FAILED)) {
		host_qpair_lost(qp, "I/O queue %u: %s", qp->qid, nvl_tcp_hq_error(t->hq));
		return n > 0 ? n : 0;
	}
	return n;
}

static int
tcp_tq_fds(const struct host_tq *tq, struct pollfd *p, int max)
{
	const struct tcp_tq *t = (const struct tcp_tq *)tq;

	if (max < 1)
		return 0;
	p[0].fd = nvl_tcp_hq_fd(t->hq);
	p[0].events = POLLIN | (nvl_tcp_hq_want_write(t->hq) ? POLLOUT : 0);
	p[0].revents = 0;
	return 1;
}

const struct host_transport_ops g_host_tcp_ops = {
	.name = "tcp",
	.kind = NVL_URI_NVME_TCP,
	.fabrics = true,
	.delete_queues = false,
	.spin_yields = false,
	.ctrlr_init = tcp_ctrlr_init,
	.ctrlr_fini = tcp_ctrlr_fini,
	.assoc_start = tcp_assoc_start,
	.assoc_stop = tcp_assoc_stop,
	.process = tcp_process,
	.fds = tcp_fds,
	.admin_send = tcp_admin_send,
	.tq_connect = tcp_tq_connect,
	.tq_cancel = tcp_tq_cancel,
	.tq_destroy = tcp_tq_destroy,
	.submit = tcp_submit,
	.poll = tcp_poll,
	.tq_fds = tcp_tq_fds,
};
