/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/TCP target transport (DESIGN.md section 6; NVMe/TCP Transport
 * Specification 1.0; NVMe over Fabrics 1.1 for Connect/Property/Disconnect).
 *
 * Ownership and threads (tcp_internal.h has the structures):
 *  - listeners, accepted connections before their Fabrics Connect, admin
 *    connections and every struct tcp_ctrlr live on reactor 0, which is
 *    also every controller's home reactor (admin commands run there);
 *  - an I/O queue's connection moves, once its Connect succeeded, to the
 *    reactor picked for it (round robin over reactors 1..n-1, or 0 when
 *    alone) and stays there for life: its socket, its requests, its
 *    buffers are only touched there;
 *  - reactor 0 owns the I/O queue table of a controller: it alone decides
 *    that a queue closes (controller teardown, reset, Disconnect, or a
 *    fatal error the queue reports with a message), clears the table slot
 *    and sends the queue one close message; the queue drains its commands
 *    in flight, frees itself on its reactor and sends "gone" back. The
 *    controller is released (nvl_nvmf_ctrlr_release) only after every
 *    I/O queue is gone, and freed after its admin connection drained.
 *  - nothing is freed from inside the call chain that noticed the end:
 *    connection memory goes in a message to its own reactor.
 *
 * Data path: each connection has a poller that, while the connection is
 * busy (received something within the reactor's spin window), does
 * non-blocking recv/send every loop iteration; otherwise the reactor's
 * epoll wakes it. Payload is received straight into the command's buffer
 * (readv of the buffer plus the staging buffer for the headers that
 * follow); responses go out with sendmsg scatter-gather (header, data,
 * digest, response capsule), batched per loop iteration. Every request
 * slot keeps its data buffer for reuse (bounded: queue depth x largest
 * transfer seen).
 */
#include "transport/tcp_internal.h"
#include "nvmf/auth.h"
#include "app/app.h"
#include "util/log.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(nvmf_tcp)

static struct {
	uint32_t max_queue_depth;
	uint32_t max_aq_depth;
	uint32_t max_io_qpairs;
	uint32_t icd;                /* in-capsule data bytes on I/O queues */
	uint32_t max_io_size;        /* a power of two of 4 KiB pages: MDTS of new controllers */
	uint32_t maxh2cdata;         /* io_unit_size */
	bool c2h_success;
	uint32_t sock_priority;
	uint32_t stall_ms;           /* ack_timeout: a peer that stops reading */
} g_opts = {
	.max_queue_depth = 128,
	.max_aq_depth = 128,
	.max_io_qpairs = 127,
	.icd = 8192,
	.max_io_size = 131072,
	.maxh2cdata = 131072,
	.c2h_success = true,
	.sock_priority = 0,
	.stall_ms = 30000,
};

struct tcp_listener {
	struct nvl_listen_addr addr;
	int fd;
	struct nvl_fdh *fdh;
	TAILQ_ENTRY(tcp_listener) link;
};

static TAILQ_HEAD(, tcp_listener) g_listeners = TAILQ_HEAD_INITIALIZER(g_listeners);
static TAILQ_HEAD(, tcp_conn) g_pending = TAILQ_HEAD_INITIALIZER(g_pending);
static TAILQ_HEAD(, tcp_ctrlr) g_ctrlrs = TAILQ_HEAD_INITIALIZER(g_ctrlrs);
static unsigned g_nconns;            /* atomic: connections not yet freed */
static unsigned g_next_reactor;
static struct nvl_transport_ops g_tcp_ops;
static const struct nvl_nvme_ctrlr_ops g_tcp_nvme_ops;
static const struct nvl_tcp_rx_ops g_rx_ops;

static void conn_close(struct tcp_conn *c, const char *why);
static void conn_error(struct tcp_conn *c, const char *why);
static void req_done(struct nvl_nvme_req *nreq);
static void tctrlr_teardown(struct tcp_ctrlr *ctl, const char *why);
static void tctrlr_try_free(struct tcp_ctrlr *ctl);

static uint32_t
parser_max_data(void)
{
	return NVL_MAX(NVL_MAX(g_opts.icd, (uint32_t)TCP_ADMIN_ICD), g_opts.maxh2cdata);
}

static bool
conn_reading(const struct tcp_conn *c)
{
	return c->state == TC_IC_WAIT || c->state == TC_CONNECT_WAIT || c->state == TC_ACTIVE;
}

/* ---- transmit --------------------------------------------------------------- */

static void
tx_queue(struct tcp_conn *c, struct nvl_tcp_tx *tx)
{
	if (nvl_tcp_txq_empty(&c->txq))
		c->last_tx_ns = nvl_now_ns();
	nvl_tcp_txq_push(&c->txq, tx);
}

/* Send as much of the queue as the socket takes. \return bytes sent, or -1
 * on a socket error (the caller closes). */
static ssize_t
conn_flush(struct tcp_conn *c)
{
	ssize_t n = nvl_tcp_txq_flush(&c->txq, c->fd, c);

	if (n > 0) {
		c->bytes_out += (uint64_t)n;
		c->last_tx_ns = nvl_now_ns();
	}
	return n;
}

/* ---- requests ------------------------------------------------------------------ */

static void
req_release(struct tcp_req *r)
{
	struct tcp_conn *c = r->conn;

	r->state = TR_FREE;
	r->next_free = c->free_reqs;
	c->free_reqs = r;
	c->busy--;
}

static void
req_tx_done(void *owner, struct nvl_tcp_tx *tx)
{
	struct tcp_req *r = container_of(tx, struct tcp_req, tx);

	(void)owner;
	req_release(r);
}

static int
req_buf_reserve(struct tcp_req *r, uint32_t len)
{
	void *p;
	uint32_t cap;

	if (len <= r->buf_cap)
		return 0;
	cap = (uint32_t)NVL_ALIGN_UP((uint64_t)len, 4096);
	if (posix_memalign(&p, 4096, cap) != 0)
		return -ENOMEM;
	free(r->buf);
	r->buf = p;
	r->buf_cap = cap;
	return 0;
}

/* Complete a request that never reached the NVMe layer. */
static void
req_fail(struct tcp_req *r, uint16_t status)
{
	r->state = TR_EXEC;
	r->conn->executing++;
	nvl_nvme_req_complete(&r->nvme, status);
}

static void
req_fail_cdw0(struct tcp_req *r, uint16_t status, uint32_t cdw0)
{
	r->nvme.cpl.cdw0 = cdw0;
	r->nvme.cpl.cdw1 = 0;
	req_fail(r, status);
}

/* Build the C2HData PDU (+ digest) and/or the response capsule. */
static void
req_build_response(struct tcp_conn *c, struct tcp_req *r)
{
	struct nvl_nvme_cpl *cpl = &r->nvme.cpl;
	struct nvl_tcp_tx *tx = &r->tx;
	bool ok = (cpl->status >> 1) == 0;
	bool send_resp = true;
	struct nvl_tcp_resp *rp;

	tx->iovcnt = 0;
	if (ok && r->dir == NVL_NVME_XFER_C2H && r->nvme.xfer_len > 0) {
		struct nvl_tcp_data *d = (void *)r->hdr;
		uint32_t xl = NVL_MIN(r->nvme.xfer_len, r->len);
		uint32_t pad, hneed;

		memset(d, 0, sizeof(*d));
		pad = nvl_tcp_ch_init(&d->ch, NVL_TCP_PDU_C2H_DATA, c->hdgst, c->ddgst, xl,
				      c->hpda_align);
		d->ch.flags |= NVL_TCP_F_DATA_LAST;
		/* SUCCESS skips the response capsule; only allowed without SQ flow control */
		if (g_opts.c2h_success && c->sqflow_off) {
			d->ch.flags |= NVL_TCP_F_DATA_SUCCESS;
			send_resp = false;
			c->c2h_success++;
		}
		d->cccid = r->nvme.cmd.cid;
		d->datao = 0;
		d->datal = xl;
		hneed = sizeof(*d) + (c->hdgst ? NVL_TCP_DIGEST_LEN : 0);
		if (c->hdgst)
			nvl_tcp_hdgst_set(d);
		memset(r->hdr + hneed, 0, pad);
		tx->iov[tx->iovcnt++] = (struct iovec){ r->hdr, hneed + pad };
		tx->iov[tx->iovcnt++] = (struct iovec){ r->buf, xl };
		if (c->ddgst) {
			uint32_t crc = nvl_tcp_ddgst(&tx->iov[1], 1, xl);

			memcpy(r->ddgst, &crc, sizeof(crc));
			tx->iov[tx->iovcnt++] = (struct iovec){ r->ddgst, NVL_TCP_DIGEST_LEN };
		}
	}
	if (send_resp) {
		rp = (void *)r->resp;
		memset(rp, 0, sizeof(*rp));
		nvl_tcp_ch_init(&rp->ch, NVL_TCP_PDU_CAPSULE_RESP, c->hdgst, false, 0, 0);
		rp->rccqe = *cpl;
		rp->rccqe.sqhd = c->sqhd;
		rp->rccqe.sqid = c->qid;
		if (c->hdgst)
			nvl_tcp_hdgst_set(rp);
		tx->iov[tx->iovcnt++] =
			(struct iovec){ r->resp, rp->ch.plen };
	}
	tx->done = req_tx_done;
}

static void conn_try_free(struct tcp_conn *c);

static void
req_done(struct nvl_nvme_req *nreq)
{
	struct tcp_req *r = container_of(nreq, struct tcp_req, nvme);
	struct tcp_conn *c = r->conn;

	c->executing--;
	if (nvl_unlikely(c->state == TC_CLOSING || c->state == TC_FAILED || c->terminated)) {
		req_release(r);
		if (c->state == TC_CLOSING)
			conn_try_free(c);
		return;
	}
	r->state = TR_TX;
	req_build_response(c, r);
	tx_queue(c, &r->tx);
	c->last_rx_ns = nvl_now_ns(); /* keep polling: more work is likely */
}

static void
req_send_r2t(struct tcp_conn *c, struct tcp_req *r)
{
	struct nvl_tcp_r2t *t = (void *)r->hdr;
	uint32_t l = NVL_MIN(r->len - r->h2c_off, g_opts.maxh2cdata);
	struct nvl_tcp_tx *tx = &r->tx;

	memset(t, 0, sizeof(*t));
	nvl_tcp_ch_init(&t->ch, NVL_TCP_PDU_R2T, c->hdgst, false, 0, 0);
	t->cccid = r->nvme.cmd.cid;
	t->ttag = r->ttag;
	t->r2to = r->h2c_off;
	t->r2tl = l;
	if (c->hdgst)
		nvl_tcp_hdgst_set(t);
	r->r2t_end = r->h2c_off + l;
	r->state = TR_WAIT_H2C;
	tx->iovcnt = 1;
	tx->iov[0] = (struct iovec){ r->hdr, t->ch.plen };
	tx->done = NULL;
	tx_queue(c, tx);
	c->r2ts++;
}

static void handle_connect(struct tcp_conn *c, struct tcp_req *r);

static void
req_execute(struct tcp_conn *c, struct tcp_req *r)
{
	struct nvl_nvme_req *n = &r->nvme;

	if (n->cmd.opc == NVL_NVME_ADM_FABRICS) {
		const struct nvl_nvmf_cmd *f = (const void *)&n->cmd;

		if (f->fctype == NVL_NVMF_FCTYPE_CONNECT) {
			handle_connect(c, r);
			return;
		}
		if (c->qid != 0 && f->fctype != NVL_NVMF_FCTYPE_AUTH_SEND &&
		    f->fctype != NVL_NVMF_FCTYPE_AUTH_RECV) {
			/* (each I/O queue runs its own DH-HMAC-CHAP transaction: nvme) */
			if (f->fctype == NVL_NVMF_FCTYPE_DISCONNECT) {
				/* NVMe-oF 3.4: the I/O queue goes away after the response */
				c->close_after_flush = true;
				req_fail(r, NVL_NVME_SC_SUCCESS);
				return;
			}
			req_fail(r, NVL_NVME_SC_INVALID_OPCODE | NVL_NVME_STATUS_DNR);
			return;
		}
	}
	n->iov = n->iov_inline;
	n->iovcnt = r->len ? 1 : 0;
	n->iov_inline[0].iov_base = r->buf;
	n->iov_inline[0].iov_len = r->len;
	n->data_len = r->len;
	n->xfer = r->dir;
	r->state = TR_EXEC;
	c->executing++;
	nvl_nvme_execute(n);
}

/* The capsule (and any in-capsule data) arrived. */
static void
req_start(struct tcp_conn *c, struct tcp_req *r)
{
	if (r->early_status) {
		req_fail(r, r->early_status);
		return;
	}
	if (r->dir == NVL_NVME_XFER_H2C && r->len > r->icd_len) {
		r->h2c_off = 0;
		req_send_r2t(c, r);
		return;
	}
	req_execute(c, r);
}

/* ---- Fabrics Connect (NVMe-oF 1.1 section 3.3) ----------------------------------- */

/* Connect response DW0 for Invalid Parameters: IPO (offset) in 31:16, IATTR bit 0
 * (1 = the offset is in the Connect data, 0 = in the command). */
#define CONNECT_IPO(off, in_data) (((uint32_t)(off) << 16) | ((in_data) ? 1u : 0u))

static struct nvl_reactor *
pick_reactor(void)
{
	unsigned n = nvl_reactor_count();

	if (n <= 1)
		return nvl_reactor_get(0);
	/* reactor 0 also serves RPC and admin queues: I/O queues go to the others */
	return nvl_reactor_get(1 + (g_next_reactor++ % (n - 1)));
}

static void
connect_refuse(struct tcp_conn *c, struct tcp_req *r, uint16_t status, uint32_t cdw0,
	       const char *why)
{
	NVL_NOTICELOG("tcp: %s: Connect refused: %s", c->peer, why);
	c->close_after_flush = true;
	req_fail_cdw0(r, status | NVL_NVME_STATUS_DNR, cdw0);
}

static void
connect_admin(struct tcp_conn *c, struct tcp_req *r, const struct nvl_nvmf_connect_cmd *cc,
	      const struct nvl_nvmf_connect_data *d)
{
	struct nvl_connect_info ci = { 0 };
	struct nvl_nvmf_ctrlr *tc;
	struct tcp_ctrlr *ctl;
	uint32_t entries = (uint32_t)cc->sqsize + 1;
	uint16_t status;
	char why[200] = "";
	int rc;

	if (entries < 2 || entries > g_opts.max_aq_depth || entries > c->nreqs) {
		connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
			       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_cmd, sqsize), false),
			       "admin SQSIZE out of range");
		return;
	}
	ctl = calloc(1, sizeof(*ctl));
	if (ctl == NULL) {
		connect_refuse(c, r, NVL_NVME_SC_INTERNAL, 0, "out of memory");
		return;
	}
	ci.subnqn = d->subnqn;
	ci.hostnqn = d->hostnqn;
	ci.hostid = d->hostid;
	ci.kato_ms = cc->kato;
	ci.cntlid = d->cntlid;
	ci.max_queue_entries = (uint16_t)g_opts.max_queue_depth;
	ci.max_io_queues = (uint16_t)NVL_MIN(g_opts.max_io_qpairs, (uint32_t)TCP_MAX_IO_QUEUES);
	ci.fabrics = true;
	ci.sgl = true;
	ci.ioccsz = (uint32_t)(sizeof(struct nvl_nvme_cmd) + g_opts.icd) / 16;
	ci.iorcsz = sizeof(struct nvl_nvme_cpl) / 16;
	ci.msdbd = 1;
	ci.mdts = nvl_nvme_mdts_for(g_opts.max_io_size);
	ci.transport = &g_tcp_ops;
	ci.listener = &c->listener;
	ci.nvme_ops = &g_tcp_nvme_ops;
	ci.tctx = ctl;
	ci.why = why;
	ci.why_len = sizeof(why);
	rc = nvl_nvmf_connect(&ci, &tc, &status);
	if (rc < 0) {
		free(ctl);
		if (rc == -ENOENT)
			connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
				       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_data, subnqn), true),
				       "no such subsystem");
		else if (rc == -EINVAL)
			connect_refuse(c, r, status,
				       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_data, cntlid), true),
				       "static controller ids are not offered");
		else
			connect_refuse(c, r, status, 0,
				       why[0] ? why
				       : status == NVL_NVME_SC_CONNECT_INVALID_HOST
					       ? "host not allowed"
					       : "refused by the subsystem");
		return;
	}
	ctl->tc = tc;
	ctl->admin = c;
	TAILQ_INSERT_TAIL(&g_ctrlrs, ctl, link);
	TAILQ_REMOVE(&g_pending, c, link);
	c->ctl = ctl;
	c->tc = tc;
	c->qid = 0;
	c->entries = entries;
	c->icd_max = TCP_ADMIN_ICD;
	c->state = TC_ACTIVE;
	c->auth = tc->auth;
	r->nvme.ctrlr = &tc->nvme;
	req_fail_cdw0(r, NVL_NVME_SC_SUCCESS, tc->nvme.cntlid | nvl_nvmf_auth_connect_flags(tc));
}

static void
connect_io(struct tcp_conn *c, struct tcp_req *r, const struct nvl_nvmf_connect_cmd *cc,
	   const struct nvl_nvmf_connect_data *d)
{
	uint32_t entries = (uint32_t)cc->sqsize + 1;
	struct nvl_nvmf_ctrlr *tc;
	struct tcp_ctrlr *ctl;
	uint16_t qid = cc->qid;
	uint32_t granted;

	if (entries < 2 || entries > g_opts.max_queue_depth || entries > c->nreqs) {
		connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
			       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_cmd, sqsize), false),
			       "I/O SQSIZE out of range");
		return;
	}
	tc = nvl_nvmf_ctrlr_lookup(d->subnqn, d->cntlid);
	if (tc == NULL || tc->transport != &g_tcp_ops) {
		if (tc)
			nvl_nvmf_ctrlr_put(tc);
		connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
			       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_data, cntlid), true),
			       "no such controller for an I/O queue");
		return;
	}
	ctl = tc->tctx;
	if (strcmp(tc->nvme.hostnqn, d->hostnqn) != 0 || memcmp(tc->nvme.hostid, d->hostid, 16)) {
		nvl_nvmf_ctrlr_put(tc);
		connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_HOST, 0,
			       "I/O queue from another host than the controller's");
		return;
	}
	granted = tc->nvme.num_queues_set ? (tc->nvme.feat_num_queues & 0xffff) + 1
					  : tc->nvme.max_io_queues;
	if (tc->nvme.type != NVL_NVME_CNTRLTYPE_IO || qid > tc->nvme.max_io_queues ||
	    qid > TCP_MAX_IO_QUEUES || qid > granted || ctl->closing || ctl->ioq[qid]) {
		nvl_nvmf_ctrlr_put(tc);
		connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
			       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_cmd, qid), false),
			       "queue id not available");
		return;
	}
	if (!(tc->nvme.csts & NVL_NVME_CSTS_RDY)) {
		nvl_nvmf_ctrlr_put(tc);
		connect_refuse(c, r, NVL_NVME_SC_COMMAND_SEQUENCE_ERROR, 0,
			       "I/O queue before the controller is enabled");
		return;
	}
	/* a connection of its own: it authenticates itself (nvmf/auth.h) */
	if (tc->nvme.auth_required && nvl_nvmf_auth_queue_create(tc, qid, &c->auth) < 0) {
		nvl_nvmf_ctrlr_put(tc);
		connect_refuse(c, r, NVL_NVME_SC_INTERNAL, 0, "out of memory");
		return;
	}
	ctl->ioq[qid] = c;
	ctl->ioq_reactor[qid] = pick_reactor();
	ctl->nio_alive++;
	TAILQ_REMOVE(&g_pending, c, link);
	c->ctl = ctl;
	c->tc = tc; /* the lookup's reference, dropped when the queue is gone */
	c->qid = qid;
	c->entries = entries;
	c->icd_max = g_opts.icd;
	c->rx.max_data = NVL_MAX(g_opts.icd, g_opts.maxh2cdata);
	r->nvme.ctrlr = &tc->nvme;
	req_fail_cdw0(r, NVL_NVME_SC_SUCCESS, tc->nvme.cntlid | nvl_nvmf_auth_connect_flags(tc));
	/* conn_service() hands the connection to its reactor once this call chain unwinds */
	c->state = TC_MIGRATING;
	NVL_DEBUGLOG(nvmf_tcp, "%s: cntlid %u I/O queue %u (%u entries) -> reactor %u", c->peer,
		     tc->nvme.cntlid, qid, entries, nvl_reactor_id(ctl->ioq_reactor[qid]));
}

static void
handle_connect(struct tcp_conn *c, struct tcp_req *r)
{
	const struct nvl_nvmf_connect_cmd *cc = (const void *)&r->nvme.cmd;
	struct nvl_nvmf_connect_data *d = (void *)r->buf;

	if (c->state != TC_CONNECT_WAIT) {
		req_fail(r, NVL_NVME_SC_COMMAND_SEQUENCE_ERROR | NVL_NVME_STATUS_DNR);
		return;
	}
	if (r->len < sizeof(*d) || d == NULL) {
		connect_refuse(c, r, NVL_NVME_SC_DATA_SGL_LENGTH_INVALID, 0, "no Connect data");
		return;
	}
	if (cc->recfmt != 0) {
		connect_refuse(c, r, NVL_NVME_SC_CONNECT_INCOMPATIBLE_FORMAT, 0,
			       "unknown Connect record format");
		return;
	}
	if (memchr(d->subnqn, '\0', sizeof(d->subnqn)) == NULL ||
	    nvl_nqn_validate(d->subnqn) < 0) {
		connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
			       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_data, subnqn), true),
			       "malformed subsystem NQN");
		return;
	}
	if (memchr(d->hostnqn, '\0', sizeof(d->hostnqn)) == NULL ||
	    nvl_nqn_validate(d->hostnqn) < 0) {
		connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
			       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_data, hostnqn), true),
			       "malformed host NQN");
		return;
	}
	c->sqflow_off = (cc->cattr & NVL_NVMF_CATTR_DISABLE_SQFLOW) != 0;
	if (cc->qid == 0)
		connect_admin(c, r, cc, d);
	else
		connect_io(c, r, cc, d);
}

/* ---- receive ------------------------------------------------------------------ */

static int
rx_fatal(struct nvl_tcp_err *err, uint16_t fes, uint32_t fei, const char *why)
{
	err->fes = fes;
	err->fei = fei;
	err->why = why;
	return -1;
}

static int
conn_alloc_reqs(struct tcp_conn *c, const struct nvl_nvme_cmd *first)
{
	const struct nvl_nvmf_connect_cmd *cc = (const void *)first;
	uint32_t n = 1;

	if (first->opc == NVL_NVME_ADM_FABRICS && cc->fctype == NVL_NVMF_FCTYPE_CONNECT) {
		uint32_t limit = cc->qid == 0 ? g_opts.max_aq_depth : g_opts.max_queue_depth;

		n = NVL_MIN((uint32_t)cc->sqsize + 1, limit);
		n = NVL_MAX(n, 1u);
	}
	c->reqs = calloc(n, sizeof(*c->reqs));
	if (c->reqs == NULL)
		return -ENOMEM;
	c->nreqs = n;
	for (uint32_t i = n; i-- > 0;) {
		c->reqs[i].conn = c;
		c->reqs[i].ttag = (uint16_t)i;
		c->reqs[i].next_free = c->free_reqs;
		c->free_reqs = &c->reqs[i];
	}
	return 0;
}

/* CapsuleCmd header: take a slot, validate the data descriptor. */
static int
rx_capsule_header(struct tcp_conn *c, struct nvl_tcp_rx *rx, struct nvl_tcp_err *err)
{
	const struct nvl_tcp_cmd *pdu = (const void *)rx->hdr.raw;
	const struct nvl_nvme_sgl *sgl = &pdu->ccsqe.dptr.sgl1;
	struct tcp_req *r;
	uint32_t len = 0;
	uint8_t dir = NVL_NVME_XFER_NONE;
	uint16_t st = 0;

	if (c->state != TC_CONNECT_WAIT && c->state != TC_ACTIVE)
		return rx_fatal(err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0, "command before ICReq");
	if (c->reqs == NULL && conn_alloc_reqs(c, &pdu->ccsqe) < 0)
		return rx_fatal(err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0, "out of memory");
	r = c->free_reqs;
	if (r == NULL)
		return rx_fatal(err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0,
				"more commands in flight than the queue size");
	c->free_reqs = r->next_free;
	c->busy++;
	memset(&r->nvme, 0, offsetof(struct nvl_nvme_req, done));
	memcpy(&r->nvme.cmd, &pdu->ccsqe, sizeof(r->nvme.cmd));
	r->nvme.ctrlr = c->tc ? &c->tc->nvme : NULL;
	r->nvme.qid = c->qid;
	r->nvme.done = req_done;
	r->nvme.transport_ctx = r;
	r->nvme.auth = c->auth;
	r->state = TR_RX_ICD;
	r->icd_len = rx->data_len;
	r->early_status = 0;
	r->data_error = false;
	r->len = 0;
	r->dir = NVL_NVME_XFER_NONE;
	c->rx_req = r;
	c->cmds++;

	if (r->nvme.cmd.opc == NVL_NVME_ADM_FABRICS) {
		const struct nvl_nvmf_cmd *f = (const void *)&r->nvme.cmd;

		if (f->fctype == NVL_NVMF_FCTYPE_CONNECT && c->state != TC_CONNECT_WAIT)
			st = NVL_NVME_SC_COMMAND_SEQUENCE_ERROR | NVL_NVME_STATUS_DNR;
		else if (f->fctype != NVL_NVMF_FCTYPE_CONNECT && c->state == TC_CONNECT_WAIT)
			st = NVL_NVME_SC_COMMAND_SEQUENCE_ERROR | NVL_NVME_STATUS_DNR;
	} else if (c->state == TC_CONNECT_WAIT) {
		st = NVL_NVME_SC_COMMAND_SEQUENCE_ERROR | NVL_NVME_STATUS_DNR;
	}
	if (st == 0)
		st = nvl_nvme_req_xfer(&r->nvme, &len, &dir);
	/* I/O queues: the controller's MDTS (reads and writes were checked against it already) */
	if (st == 0 && len > (c->qid == 0 ? TCP_ADMIN_MAX_XFER
			      : c->tc ? nvl_nvme_ctrlr_max_xfer(&c->tc->nvme)
				      : (uint32_t)NVL_NVME_MAX_XFER))
		st = NVL_NVME_SC_INVALID_FIELD | NVL_NVME_STATUS_DNR;
	if (r->icd_len > c->icd_max)
		return rx_fatal(err, NVL_TCP_FES_DATA_LIMIT_EXCEEDED,
				offsetof(struct nvl_tcp_common_hdr, plen),
				"in-capsule data beyond the capsule size");
	if (st == 0 && r->icd_len) {
		if (sgl->type != NVL_TCP_SGL_ICD)
			st = NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID;
		else if (sgl->addr != 0)
			st = NVL_NVME_SC_SGL_OFFSET_INVALID;
		else if (sgl->length != r->icd_len || dir != NVL_NVME_XFER_H2C || len > r->icd_len)
			st = NVL_NVME_SC_DATA_SGL_LENGTH_INVALID;
	} else if (st == 0 && len) {
		if (sgl->type != NVL_TCP_SGL_TRANSPORT)
			st = sgl->type == NVL_TCP_SGL_ICD ? NVL_NVME_SC_DATA_SGL_LENGTH_INVALID
							  : NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID;
		else if (sgl->length < len)
			st = NVL_NVME_SC_DATA_SGL_LENGTH_INVALID;
	}
	if (st == 0 && req_buf_reserve(r, NVL_MAX(len, r->icd_len)) < 0)
		st = NVL_NVME_SC_INTERNAL;
	if (st) {
		r->early_status = st | ((st & 0x7ff) == NVL_NVME_SC_INTERNAL ? 0 : NVL_NVME_STATUS_DNR);
		return 0; /* the in-capsule data, if any, is read and dropped */
	}
	r->len = len;
	r->dir = dir;
	if (r->icd_len) {
		struct iovec iov = { r->buf, r->icd_len };

		nvl_tcp_rx_set_sink(rx, &iov, 1);
	}
	return 0;
}

static int
rx_h2c_header(struct tcp_conn *c, struct nvl_tcp_rx *rx, struct nvl_tcp_err *err)
{
	const struct nvl_tcp_data *h = (const void *)rx->hdr.raw;
	struct tcp_req *r;
	struct iovec iov;

	if (h->ttag >= c->nreqs)
		return rx_fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD,
				offsetof(struct nvl_tcp_data, ttag), "H2CData with an unknown tag");
	r = &c->reqs[h->ttag];
	if (r->state != TR_WAIT_H2C)
		return rx_fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD,
				offsetof(struct nvl_tcp_data, ttag), "H2CData nobody asked for");
	if (h->cccid != r->nvme.cmd.cid)
		return rx_fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD,
				offsetof(struct nvl_tcp_data, cccid), "H2CData for another command");
	if (r->tx.queued)
		return rx_fatal(err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0, "H2CData before its R2T");
	if (h->datal != rx->data_len)
		return rx_fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD,
				offsetof(struct nvl_tcp_data, datal), "DATAL does not match PLEN");
	if (h->datal > g_opts.maxh2cdata)
		return rx_fatal(err, NVL_TCP_FES_DATA_LIMIT_EXCEEDED,
				offsetof(struct nvl_tcp_data, datal), "H2CData above MAXH2CDATA");
	if (h->datao != r->h2c_off || (uint64_t)h->datao + h->datal > r->r2t_end)
		return rx_fatal(err, NVL_TCP_FES_DATA_OUT_OF_RANGE,
				offsetof(struct nvl_tcp_data, datao), "H2CData outside the R2T");
	iov.iov_base = r->buf + h->datao;
	iov.iov_len = h->datal;
	nvl_tcp_rx_set_sink(rx, &iov, 1);
	c->rx_req = r;
	return 0;
}

static int
rx_on_header(void *ctx, struct nvl_tcp_rx *rx, struct nvl_tcp_err *err)
{
	struct tcp_conn *c = ctx;

	switch (rx->hdr.ch.pdu_type) {
	case NVL_TCP_PDU_ICREQ:
		if (c->state != TC_IC_WAIT)
			return rx_fatal(err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0, "unexpected ICReq");
		return 0;
	case NVL_TCP_PDU_CAPSULE_CMD:
		return rx_capsule_header(c, rx, err);
	case NVL_TCP_PDU_H2C_DATA:
		if (c->state != TC_CONNECT_WAIT && c->state != TC_ACTIVE)
			return rx_fatal(err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0, "unexpected H2CData");
		return rx_h2c_header(c, rx, err);
	case NVL_TCP_PDU_H2C_TERM:
		return 0;
	default:
		return rx_fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD, 0, "unexpected PDU type");
	}
}

static int
rx_icreq(struct tcp_conn *c, struct nvl_tcp_rx *rx, struct nvl_tcp_err *err)
{
	const struct nvl_tcp_icreq *q = (const void *)rx->hdr.raw;
	struct nvl_tcp_icresp *p = (void *)c->aux_buf;

	if (q->pfv != NVL_TCP_PFV_1_0)
		return rx_fatal(err, NVL_TCP_FES_UNSUPPORTED_PARAMETER,
				offsetof(struct nvl_tcp_icreq, pfv), "unsupported PDU format version");
	if (q->hpda > NVL_TCP_MAX_HPDA)
		return rx_fatal(err, NVL_TCP_FES_UNSUPPORTED_PARAMETER,
				offsetof(struct nvl_tcp_icreq, hpda), "HPDA out of range");
	c->hdgst = (q->dgst & NVL_TCP_DGST_HDR) != 0;
	c->ddgst = (q->dgst & NVL_TCP_DGST_DATA) != 0;
	c->hpda_align = ((uint32_t)q->hpda + 1) * 4;
	memset(p, 0, sizeof(*p));
	p->ch.pdu_type = NVL_TCP_PDU_ICRESP;
	p->ch.hlen = sizeof(*p);
	p->ch.plen = sizeof(*p);
	p->pfv = NVL_TCP_PFV_1_0;
	p->cpda = 0; /* hosts may place data at any dword */
	p->dgst = (c->hdgst ? NVL_TCP_DGST_HDR : 0) | (c->ddgst ? NVL_TCP_DGST_DATA : 0);
	p->maxh2cdata = g_opts.maxh2cdata;
	c->aux_tx.iovcnt = 1;
	c->aux_tx.iov[0] = (struct iovec){ p, sizeof(*p) };
	c->aux_tx.done = NULL;
	tx_queue(c, &c->aux_tx);
	/* digests apply from the next PDU on, in both directions */
	rx->hdgst = c->hdgst;
	rx->ddgst = c->ddgst;
	c->state = TC_CONNECT_WAIT;
	NVL_DEBUGLOG(nvmf_tcp, "%s: ICReq: hpda %u, digests header %d data %d", c->peer, q->hpda,
		     c->hdgst, c->ddgst);
	return 0;
}

static int
rx_on_pdu(void *ctx, struct nvl_tcp_rx *rx, bool ddgst_ok, struct nvl_tcp_err *err)
{
	struct tcp_conn *c = ctx;
	struct tcp_req *r;

	switch (rx->hdr.ch.pdu_type) {
	case NVL_TCP_PDU_ICREQ:
		if (rx_icreq(c, rx, err) < 0)
			return -1;
		break;
	case NVL_TCP_PDU_CAPSULE_CMD:
		r = c->rx_req;
		c->rx_req = NULL;
		c->sqhd = (uint16_t)((c->sqhd + 1) % NVL_MAX(c->entries, 1u));
		if (!ddgst_ok && !r->early_status)
			r->early_status = NVL_NVME_SC_TRANSIENT_TRANSPORT_ERROR;
		req_start(c, r);
		break;
	case NVL_TCP_PDU_H2C_DATA: {
		const struct nvl_tcp_data *h = (const void *)rx->hdr.raw;

		r = c->rx_req;
		c->rx_req = NULL;
		r->h2c_off += h->datal;
		if (!ddgst_ok)
			r->data_error = true;
		if (r->h2c_off < r->r2t_end)
			break;
		if (r->r2t_end < r->len)
			req_send_r2t(c, r);
		else if (r->data_error)
			req_fail(r, NVL_NVME_SC_TRANSIENT_TRANSPORT_ERROR);
		else
			req_execute(c, r);
		break;
	}
	case NVL_TCP_PDU_H2C_TERM: {
		const struct nvl_tcp_term_req *t = (const void *)rx->hdr.raw;

		NVL_NOTICELOG("tcp: %s: the host terminated the connection: %s (FES 0x%x, FEI %u)",
			      c->peer, nvl_tcp_fes_str(t->fes), t->fes, t->fei);
		c->terminated = true;
		conn_error(c, "host termination request");
		return 1;
	}
	default:
		return rx_fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD, 0, "unexpected PDU type");
	}
	return conn_reading(c) ? 0 : 1;
}

static const struct nvl_tcp_rx_ops g_rx_ops = {
	.on_header = rx_on_header,
	.on_pdu = rx_on_pdu,
};

/* A fatal transport error: report it with a C2HTermReq, then close. */
static void
conn_fatal(struct tcp_conn *c, const struct nvl_tcp_err *err)
{
	size_t n, bad = NVL_MIN((size_t)c->rx.hgot, (size_t)NVL_TCP_TERM_MAX_DATA);

	if (!conn_reading(c) || c->terminated)
		return;
	NVL_WARNLOG("tcp: %s qid %u: %s (%s, FES 0x%x FEI %u): terminating the connection",
		    c->peer, c->qid, err->why ? err->why : "protocol error",
		    nvl_tcp_fes_str(err->fes), err->fes, err->fei);
	nvl_tcp_txq_remove(&c->txq, &c->aux_tx);
	n = nvl_tcp_term_build(c->aux_buf, true, err->fes, err->fei, c->rx.hdr.raw, bad);
	c->aux_tx.iovcnt = 1;
	c->aux_tx.iov[0] = (struct iovec){ c->aux_buf, n };
	c->aux_tx.done = NULL;
	tx_queue(c, &c->aux_tx);
	c->terminated = true;
	conn_error(c, "fatal transport error");
}

static int
conn_parse(struct tcp_conn *c)
{
	struct nvl_tcp_err err = { 0 };
	ssize_t n = nvl_tcp_rx_feed(&c->rx, c->stage + c->stage_off, c->stage_len - c->stage_off,
				    &g_rx_ops, c, &err);

	if (n < 0) {
		conn_fatal(c, &err);
		return -1;
	}
	c->stage_off += (uint32_t)n;
	return 0;
}

/* Receive and parse what the socket has. \return > 0 if anything came. */
static int
conn_rx(struct tcp_conn *c)
{
	int work = 0;

	for (int budget = 16; budget > 0 && conn_reading(c); budget--) {
		struct iovec iov[NVL_TCP_RX_SINK_IOV + 1];
		struct nvl_tcp_err err = { 0 };
		size_t dlen = 0, want;
		ssize_t n;
		int nd;

		if (c->stage_off < c->stage_len) {
			/* left over from a pause: parse before reading more */
			if (conn_parse(c) < 0)
				return -1;
			if (c->stage_off < c->stage_len)
				break;
			continue;
		}
		c->stage_off = c->stage_len = 0;
		nd = nvl_tcp_rx_direct(&c->rx, iov, NVL_TCP_RX_SINK_IOV, &dlen);
		if (dlen < TCP_DIRECT_MIN)
			nd = 0;
		if (nd == 0) {
			want = TCP_STAGE_SIZE;
			n = recv(c->fd, c->stage, TCP_STAGE_SIZE, MSG_DONTWAIT);
		} else {
			struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)nd + 1 };

			iov[nd].iov_base = c->stage;
			iov[nd].iov_len = TCP_STAGE_SIZE;
			want = dlen + TCP_STAGE_SIZE;
			n = recvmsg(c->fd, &mh, MSG_DONTWAIT);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_error(c, errno == ECONNRESET ? "connection reset by the host"
							  : "receive error");
			return -1;
		}
		if (n == 0) {
			conn_error(c, "the host closed the connection");
			return -1;
		}
		work++;
		c->bytes_in += (uint64_t)n;
		c->last_rx_ns = nvl_now_ns();
		if (nd) {
			size_t k = NVL_MIN((size_t)n, dlen);

			if (nvl_tcp_rx_direct_done(&c->rx, k, &g_rx_ops, c, &err) < 0) {
				conn_fatal(c, &err);
				return -1;
			}
			c->stage_len = (uint32_t)((size_t)n - k);
		} else {
			c->stage_len = (uint32_t)n;
		}
		if (c->stage_len && conn_reading(c) && conn_parse(c) < 0)
			return -1;
		if ((size_t)n < want)
			break; /* drained the socket */
	}
	return work;
}

/* ---- connection lifecycle ------------------------------------------------------- */

static void conn_fd_event(void *arg, uint32_t events);
static int conn_poll(void *arg);
static void conn_tick(void *arg);

/* Register fd, poller and timer on the calling reactor. */
static int
conn_attach(struct tcp_conn *c)
{
	c->reactor = nvl_reactor_self();
	c->fd_events = EPOLLIN;
	c->fdh = nvl_fd_add(c->fd, EPOLLIN, conn_fd_event, c);
	c->poller = nvl_poller_create(conn_poll, c, "nvmf-tcp");
	c->timer = nvl_timer_create(conn_tick, c, 1000000, 1000000);
	if (c->fdh == NULL || c->poller == NULL || c->timer == NULL)
		return -ENOMEM;
	return 0;
}

static void
conn_detach(struct tcp_conn *c)
{
	nvl_fd_del(c->fdh);
	c->fdh = NULL;
	nvl_poller_destroy(c->poller);
	c->poller = NULL;
	nvl_timer_destroy(c->timer);
	c->timer = NULL;
}

struct ioq_msg {
	struct tcp_ctrlr *ctl;
	struct tcp_conn *conn;       /* compared, never dereferenced on reactor 0 */
	struct nvl_nvmf_ctrlr *tc;
	uint16_t qid;
	bool gone;
};

static void ioq_close_on_reactor(void *arg);

/* reactor 0: close I/O queue qid of ctl (table slot cleared here, once). */
static void
ioq_close(struct tcp_ctrlr *ctl, uint16_t qid)
{
	struct tcp_conn *c = ctl->ioq[qid];

	if (c == NULL)
		return;
	ctl->ioq[qid] = NULL;
	if (nvl_reactor_msg(ctl->ioq_reactor[qid], ioq_close_on_reactor, c) < 0)
		NVL_ERRLOG("tcp: cannot reach the reactor of I/O queue %u", qid);
}

static void
ioq_msg_home(void *arg)
{
	struct ioq_msg *m = arg;
	struct tcp_ctrlr *ctl = m->ctl;

	if (m->gone) {
		ctl->nio_alive--;
		nvl_nvmf_ctrlr_put(m->tc);
		tctrlr_try_free(ctl);
	} else if (ctl->ioq[m->qid] == m->conn) {
		ioq_close(ctl, m->qid);
	}
	free(m);
}

static void
ioq_tell_home(struct tcp_conn *c, bool gone)
{
	struct ioq_msg *m = calloc(1, sizeof(*m));

	if (m == NULL)
		abort(); /* tiny control-path allocation; nothing sane to do */
	m->ctl = c->ctl;
	m->conn = c;
	m->tc = c->tc;
	m->qid = c->qid;
	m->gone = gone;
	if (nvl_reactor_msg(nvl_reactor_get(0), ioq_msg_home, m) < 0) {
		NVL_ERRLOG("tcp: cannot reach reactor 0 about I/O queue %u", c->qid);
		free(m);
	}
}

static void
conn_free(void *arg)
{
	struct tcp_conn *c = arg;

	if (c->fd >= 0)
		close(c->fd);
	for (uint32_t i = 0; i < c->nreqs; i++)
		free(c->reqs[i].buf);
	free(c->reqs);
	free(c->stage);
	if (c->qid != 0)
		nvl_nvmf_auth_queue_destroy(c->auth); /* the admin queue's is the controller's */
	if (c->ctl == NULL) {
		TAILQ_REMOVE(&g_pending, c, link);
	} else if (c->qid == 0) {
		c->ctl->admin = NULL;
		tctrlr_try_free(c->ctl);
	} else {
		ioq_tell_home(c, true);
	}
	__atomic_fetch_sub(&g_nconns, 1, __ATOMIC_RELAXED);
	free(c);
}

static void
conn_try_free(struct tcp_conn *c)
{
	if (c->state != TC_CLOSING || c->executing > 0 || c->free_scheduled)
		return;
	/* freed from a message: never inside the call chain that ended it */
	c->free_scheduled = true;
	if (nvl_reactor_msg(nvl_reactor_self(), conn_free, c) < 0)
		NVL_ERRLOG("tcp: cannot schedule the release of a connection");
}

static void
conn_close(struct tcp_conn *c, const char *why)
{
	if (c->state == TC_CLOSING)
		return;
	if (c->ctl)
		NVL_NOTICELOG("tcp: %s: cntlid %u qid %u closed: %s", c->peer,
			      c->tc ? c->tc->nvme.cntlid : 0, c->qid, why);
	else
		NVL_DEBUGLOG(nvmf_tcp, "%s: connection closed before Connect: %s", c->peer, why);
	c->state = TC_CLOSING;
	conn_detach(c);
	if (c->terminated || c->close_after_flush)
		(void)conn_flush(c); /* best effort: the termination request, last responses */
	nvl_tcp_txq_drop(&c->txq, c);
	for (uint32_t i = 0; i < c->nreqs; i++) {
		struct tcp_req *r = &c->reqs[i];

		if (r->state == TR_RX_ICD || r->state == TR_WAIT_H2C)
			req_release(r);
	}
	c->rx_req = NULL;
	shutdown(c->fd, SHUT_RDWR);
	if (c->ctl && c->qid == 0 && c->ctl->admin == c)
		tctrlr_teardown(c->ctl, why);
	conn_try_free(c);
}

/* A connection ends. Admin and unbound connections close at once (reactor
 * 0); an I/O queue asks reactor 0, which owns its table slot, to close it. */
static void
conn_error(struct tcp_conn *c, const char *why)
{
	if (c->state == TC_CLOSING || c->state == TC_FAILED)
		return;
	if (c->ctl && c->qid != 0 && c->state == TC_ACTIVE) {
		NVL_DEBUGLOG(nvmf_tcp, "%s: I/O queue %u failed: %s", c->peer, c->qid, why);
		c->state = TC_FAILED;
		c->fail_why = why;
		ioq_tell_home(c, false);
		return;
	}
	conn_close(c, why);
}

static void
ioq_close_on_reactor(void *arg)
{
	struct tcp_conn *c = arg;

	conn_close(c, c->state == TC_FAILED && c->fail_why ? c->fail_why : "queue deleted");
}

static void
conn_update_events(struct tcp_conn *c)
{
	uint32_t want = EPOLLIN | (nvl_tcp_txq_empty(&c->txq) ? 0 : EPOLLOUT);

	if (c->fdh && want != c->fd_events && nvl_fd_mod(c->fdh, want) == 0)
		c->fd_events = want;
}

static void conn_attach_io(void *arg);

/* reactor 0: hand a freshly connected I/O queue to its reactor. */
static void
conn_migrate(struct tcp_conn *c)
{
	struct nvl_reactor *to = c->ctl->ioq_reactor[c->qid];

	conn_detach(c);
	if (nvl_reactor_msg(to, conn_attach_io, c) < 0) {
		NVL_ERRLOG("tcp: cannot hand I/O queue %u to its reactor", c->qid);
		c->state = TC_FAILED;
		ioq_tell_home(c, false);
	}
}

static int
conn_service(struct tcp_conn *c, bool force_rx)
{
	int work = 0;

	if (c->state == TC_CLOSING || c->state == TC_MIGRATING)
		return 0;
	if (!nvl_tcp_txq_empty(&c->txq)) {
		ssize_t n = conn_flush(c);

		if (n < 0) {
			conn_error(c, "send error");
			return 1;
		}
		work += n > 0;
	}
	if (conn_reading(c) &&
	    (force_rx || nvl_now_ns() - c->last_rx_ns < nvl_reactor_get_spin_us() * 1000)) {
		int n = conn_rx(c);

		if (n < 0)
			return 1;
		work += n;
		if (c->state == TC_MIGRATING) {
			conn_migrate(c);
			return 1;
		}
		if (!nvl_tcp_txq_empty(&c->txq) && conn_flush(c) < 0) {
			conn_error(c, "send error");
			return 1;
		}
	}
	if (c->close_after_flush && nvl_tcp_txq_empty(&c->txq) && c->state != TC_CLOSING) {
		conn_error(c, c->qid ? "Disconnect" : "Connect refused");
		return 1;
	}
	if (c->state != TC_CLOSING)
		conn_update_events(c);
	return work;
}

static int
conn_poll(void *arg)
{
	return conn_service(arg, false);
}

static void
conn_fd_event(void *arg, uint32_t events)
{
	(void)events;
	conn_service(arg, true);
}

static void
conn_tick(void *arg)
{
	struct tcp_conn *c = arg;
	uint64_t now = nvl_now_ns();

	if ((c->state == TC_IC_WAIT || c->state == TC_CONNECT_WAIT) &&
	    now - c->accepted_ns > TCP_CONNECT_TIMEOUT_NS) {
		conn_close(c, "no ICReq/Connect within 10 s");
		return;
	}
	/* an I/O queue's DH-HMAC-CHAP failed or stalled: that queue goes, not the
	 * controller, which someone else may own (the admin queue's is checked by
	 * the target's keep-alive timer, and takes the controller with it) */
	if (c->qid != 0 && c->auth && c->state == TC_ACTIVE) {
		const char *why;

		if (nvl_nvmf_auth_expired(c->auth, now, &why)) {
			conn_error(c, why);
			return;
		}
	}
	if (!nvl_tcp_txq_empty(&c->txq) && now - c->last_tx_ns > (uint64_t)g_opts.stall_ms * 1000000ULL) {
		NVL_WARNLOG("tcp: %s qid %u: the host has not read for %u ms; dropping the connection",
			    c->peer, c->qid, g_opts.stall_ms);
		conn_error(c, "the host stopped reading");
	}
}

static void
conn_attach_io(void *arg)
{
	struct tcp_conn *c = arg;

	c->state = TC_ACTIVE;
	if (conn_attach(c) < 0) {
		NVL_ERRLOG("tcp: cannot start I/O queue %u on reactor %u", c->qid,
			   nvl_reactor_id(nvl_reactor_self()));
		conn_error(c, "out of memory");
		return;
	}
	c->last_rx_ns = nvl_now_ns();
	conn_service(c, true);
}

static void
peer_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s = (void *)&ss;

			inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
			port = ntohs(s->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s = (void *)&ss;

			inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
			port = ntohs(s->sin6_port);
		}
	}
	snprintf(out, len, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

static void
conn_new(int fd, const struct nvl_listen_addr *la)
{
	struct tcp_conn *c;
	int one = 1;

	if (__atomic_load_n(&g_nconns, __ATOMIC_RELAXED) >= TCP_MAX_CONNS) {
		NVL_WARNLOG("tcp: refusing a connection beyond %d", TCP_MAX_CONNS);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->stage = malloc(TCP_STAGE_SIZE)) == NULL) {
		free(c);
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (g_opts.sock_priority)
		setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &g_opts.sock_priority,
			   sizeof(g_opts.sock_priority));
	c->fd = fd;
	c->state = TC_IC_WAIT;
	c->listener = *la;
	c->accepted_ns = nvl_now_ns();
	c->last_rx_ns = c->accepted_ns;
	c->hpda_align = 4;
	c->icd_max = NVL_MAX((uint32_t)TCP_ADMIN_ICD, g_opts.icd); /* queue type not known yet */
	nvl_tcp_txq_init(&c->txq);
	peer_name(fd, c->peer, sizeof(c->peer));
	nvl_tcp_rx_init(&c->rx, false, parser_max_data());
	__atomic_fetch_add(&g_nconns, 1, __ATOMIC_RELAXED);
	TAILQ_INSERT_TAIL(&g_pending, c, link);
	if (conn_attach(c) < 0) {
		conn_close(c, "out of memory");
		return;
	}
	NVL_DEBUGLOG(nvmf_tcp, "accepted %s on %s:%s", c->peer, la->traddr, la->trsvcid);
}

/* ---- controllers (reactor 0) ------------------------------------------------------ */

static void
tctrlr_try_free(struct tcp_ctrlr *ctl)
{
	if (!ctl->closing || ctl->in_try_free)
		return;
	ctl->in_try_free = true;
	if (ctl->nio_alive)
		goto out;
	if (ctl->tc) {
		struct nvl_nvmf_ctrlr *tc = ctl->tc;

		/* finishes held AERs, which come back through req_done */
		ctl->tc = NULL;
		nvl_nvmf_ctrlr_release(tc);
	}
	if (ctl->admin)
		goto out;
	TAILQ_REMOVE(&g_ctrlrs, ctl, link);
	free(ctl);
	return;
out:
	ctl->in_try_free = false;
}

static void
tctrlr_teardown(struct tcp_ctrlr *ctl, const char *why)
{
	if (ctl->closing)
		return;
	ctl->closing = true;
	if (ctl->tc)
		ctl->tc->state = NVL_TCTRLR_DISCONNECTING;
	for (unsigned q = 1; q <= TCP_MAX_IO_QUEUES; q++)
		ioq_close(ctl, (uint16_t)q);
	if (ctl->admin && ctl->admin->state != TC_CLOSING)
		conn_close(ctl->admin, why);
	tctrlr_try_free(ctl);
}

/* ---- NVMe layer hooks ---------------------------------------------------------------- */

static void
tcp_nvme_reset(struct nvl_nvme_ctrlr *nc)
{
	struct nvl_nvmf_ctrlr *tc = nc->owner;
	struct tcp_ctrlr *ctl = tc->tctx;

	/* CC.EN cleared or shutdown: the I/O queues go; the host reconnects them */
	for (unsigned q = 1; q <= TCP_MAX_IO_QUEUES; q++)
		ioq_close(ctl, (uint16_t)q);
}

static int
tcp_discovery_log(struct nvl_nvme_ctrlr *nc, void **out, size_t *len)
{
	return nvl_nvmf_discovery_log(nc->hostnqn, out, len);
}

static const struct nvl_nvme_ctrlr_ops g_tcp_nvme_ops = {
	.get_ns = nvl_nvmf_get_ns,
	.next_nsid = nvl_nvmf_next_nsid,
	.reset = tcp_nvme_reset,
	.discovery_log = tcp_discovery_log,
};

/* ---- listeners ----------------------------------------------------------------------- */

static void
listener_accept(void *arg, uint32_t events)
{
	struct tcp_listener *l = arg;

	(void)events;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				NVL_WARNLOG("tcp accept on %s:%s: %s", l->addr.traddr, l->addr.trsvcid,
					    strerror(errno));
			return;
		}
		conn_new(fd, &l->addr);
	}
}

static int
tcp_listen(const struct nvl_listen_addr *a)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct tcp_listener *l;
	int fd, rc, one = 1;

	hints.ai_family = strcasecmp(a->adrfam, "IPv6") == 0 ? AF_INET6 : AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	rc = getaddrinfo(a->traddr, a->trsvcid, &hints, &ai);
	if (rc != 0) {
		NVL_ERRLOG("tcp: cannot listen on %s port %s: %s", a->traddr, a->trsvcid,
			   gai_strerror(rc));
		return -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		freeaddrinfo(ai);
		return -ENOMEM;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto err;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		rc = -errno;
		close(fd);
		goto err;
	}
	l->fd = fd;
	l->addr = *a;
	l->fdh = nvl_fd_add(fd, EPOLLIN, listener_accept, l);
	if (l->fdh == NULL) {
		rc = -ENOMEM;
		close(fd);
		goto err;
	}
	freeaddrinfo(ai);
	TAILQ_INSERT_TAIL(&g_listeners, l, link);
	NVL_NOTICELOG("tcp: listening on %s port %s", a->traddr, a->trsvcid);
	return 0;
err:
	freeaddrinfo(ai);
	free(l);
	return rc;
}

static void
tcp_stop_listen(const struct nvl_listen_addr *a)
{
	struct tcp_listener *l;

	TAILQ_FOREACH(l, &g_listeners, link) {
		if (strcmp(l->addr.traddr, a->traddr) == 0 &&
		    strcmp(l->addr.trsvcid, a->trsvcid) == 0) {
			TAILQ_REMOVE(&g_listeners, l, link);
			nvl_fd_del(l->fdh);
			close(l->fd);
			NVL_NOTICELOG("tcp: stopped listening on %s port %s", a->traddr, a->trsvcid);
			free(l);
			return;
		}
	}
}

/* ---- transport ops --------------------------------------------------------------------- */

static void
tcp_ctrlr_disconnect(struct nvl_nvmf_ctrlr *tc)
{
	tctrlr_teardown(tc->tctx, "disconnected by the target");
}

static json_t *
conn_json(const struct tcp_conn *c)
{
	static const char *const names[] = { "ic_wait", "connect_wait", "migrating",
					     "active", "failed", "closing" };

	return json_pack("{s:i, s:s, s:s, s:s, s:i, s:i, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:i}",
			 "qid", (int)c->qid, "state", names[c->state], "trtype", "TCP", "peer",
			 c->peer, "entries", (int)c->entries, "reactor",
			 c->reactor ? (int)nvl_reactor_id(c->reactor) : -1, "header_digest",
			 c->hdgst, "data_digest", c->ddgst, "commands", (json_int_t)c->cmds,
			 "bytes_in", (json_int_t)c->bytes_in, "bytes_out",
			 (json_int_t)c->bytes_out, "r2ts", (json_int_t)c->r2ts, "c2h_success",
			 (json_int_t)c->c2h_success, "outstanding", (int)c->busy);
}

static void
tcp_ctrlr_qpairs(struct nvl_nvmf_ctrlr *tc, json_t *arr)
{
	struct tcp_ctrlr *ctl = tc->tctx;

	/* racy reads of other reactors' counters: monitoring only */
	if (ctl->admin)
		json_array_append_new(arr, conn_json(ctl->admin));
	for (unsigned q = 1; q <= TCP_MAX_IO_QUEUES; q++)
		if (ctl->ioq[q])
			json_array_append_new(arr, conn_json(ctl->ioq[q]));
}

static int
opt_u32(json_t *opts, const char *key, uint64_t min, uint64_t max, uint32_t *out, char *err,
	size_t errlen)
{
	json_t *v = json_object_get(opts, key);
	json_int_t x;

	if (v == NULL)
		return 0;
	x = json_integer_value(v);
	if (!json_is_integer(v) || x < (json_int_t)min || (uint64_t)x > max) {
		snprintf(err, errlen, "%s must be %llu..%llu", key, (unsigned long long)min,
			 (unsigned long long)max);
		return -EINVAL;
	}
	*out = (uint32_t)x;
	return 0;
}

static int
tcp_configure(json_t *opts, char *err, size_t errlen)
{
	__typeof__(g_opts) o = g_opts;
	json_t *v;

	if (opt_u32(opts, "max_queue_depth", 2, 4096, &o.max_queue_depth, err, errlen) < 0 ||
	    opt_u32(opts, "max_aq_depth", 32, 4096, &o.max_aq_depth, err, errlen) < 0 ||
	    opt_u32(opts, "max_io_qpairs_per_ctrlr", 1, TCP_MAX_IO_QUEUES, &o.max_io_qpairs, err,
		    errlen) < 0 ||
	    opt_u32(opts, "in_capsule_data_size", 0, 65536, &o.icd, err, errlen) < 0 ||
	    opt_u32(opts, "max_io_size", 2 * NVL_NVME_PAGE_SIZE, NVL_NVME_MAX_XFER, &o.max_io_size,
		    err, errlen) < 0 ||
	    opt_u32(opts, "io_unit_size", NVL_TCP_MIN_MAXH2CDATA, NVL_NVME_MAX_XFER, &o.maxh2cdata,
		    err, errlen) < 0 ||
	    opt_u32(opts, "sock_priority", 0, 6, &o.sock_priority, err, errlen) < 0 ||
	    opt_u32(opts, "ack_timeout", 100, 3600000, &o.stall_ms, err, errlen) < 0)
		return -EINVAL;
	if (o.icd % 16) {
		snprintf(err, errlen, "in_capsule_data_size must be a multiple of 16");
		return -EINVAL;
	}
	if (o.maxh2cdata % 4) {
		snprintf(err, errlen, "io_unit_size must be a multiple of 4");
		return -EINVAL;
	}
	if ((v = json_object_get(opts, "c2h_success")) != NULL)
		o.c2h_success = json_is_true(v);
	/* MDTS counts a power of two of pages: what is in force is the value rounded down */
	if (o.max_io_size != (uint32_t)NVL_NVME_PAGE_SIZE << nvl_nvme_mdts_for(o.max_io_size)) {
		uint32_t was = o.max_io_size;

		o.max_io_size = (uint32_t)NVL_NVME_PAGE_SIZE << nvl_nvme_mdts_for(was);
		NVL_NOTICELOG("tcp: max_io_size %u rounded down to %u (MDTS %u)", was,
			      o.max_io_size, nvl_nvme_mdts_for(was));
	}
	g_opts = o;
	return 0;
}

static json_t *
tcp_dump_opts(void)
{
	return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:i, s:i}", "max_queue_depth",
			 (int)g_opts.max_queue_depth, "max_aq_depth", (int)g_opts.max_aq_depth,
			 "max_io_qpairs_per_ctrlr", (int)g_opts.max_io_qpairs,
			 "in_capsule_data_size", (int)g_opts.icd, "max_io_size",
			 (int)g_opts.max_io_size, "io_unit_size", (int)g_opts.maxh2cdata,
			 "c2h_success", g_opts.c2h_success, "sock_priority",
			 (int)g_opts.sock_priority, "ack_timeout", (int)g_opts.stall_ms);
}

static void (*g_fini_done)(void);
static struct nvl_timer *g_fini_timer;

static void
tcp_fini_poll(void *arg)
{
	(void)arg;
	if (!TAILQ_EMPTY(&g_ctrlrs) || !TAILQ_EMPTY(&g_pending) ||
	    __atomic_load_n(&g_nconns, __ATOMIC_RELAXED) != 0)
		return;
	nvl_timer_destroy(g_fini_timer);
	g_fini_timer = NULL;
	g_fini_done();
}

static void
tcp_fini(void (*done)(void))
{
	struct tcp_ctrlr *ctl, *tctl;
	struct tcp_conn *c, *tc;
	struct tcp_listener *l;

	while ((l = TAILQ_FIRST(&g_listeners)) != NULL)
		tcp_stop_listen(&l->addr);
	TAILQ_FOREACH_SAFE(c, &g_pending, link, tc)
		conn_close(c, "daemon shutting down");
	TAILQ_FOREACH_SAFE(ctl, &g_ctrlrs, link, tctl)
		tctrlr_teardown(ctl, "daemon shutting down");
	g_fini_done = done;
	g_fini_timer = nvl_timer_create(tcp_fini_poll, NULL, 1000, 1000);
	if (g_fini_timer == NULL)
		done();
}

static struct nvl_transport_ops g_tcp_ops = {
	.name = "TCP",
	.nvmf_trtype = NVL_NVMF_TRTYPE_TCP,
	.listen = tcp_listen,
	.stop_listen = tcp_stop_listen,
	.ctrlr_disconnect = tcp_ctrlr_disconnect,
	.ctrlr_qpairs = tcp_ctrlr_qpairs,
	.configure = tcp_configure,
	.dump_opts = tcp_dump_opts,
	.fini = tcp_fini,
};
NVL_TRANSPORT_REGISTER(tcp, &g_tcp_ops)
