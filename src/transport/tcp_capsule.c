/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/TCP target transport, commands (tcp.c says how the transport is
 * split and who owns what): the PDU handlers the parser calls (ICReq,
 * CapsuleCmd, H2CData, H2CTermReq), each command's data descriptor checked
 * and mapped (nvl_nvme_req_prepare), R2Ts, execution, the Fabrics Connect
 * of admin and I/O queues, and the response (C2HData and/or the response
 * capsule). Runs on the connection's reactor; Connect on reactor 0.
 */
#include "transport/tcp_internal.h"
#include "nvmf/auth.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

NVL_LOG_DECLARE_COMPONENT(nvmf_tcp);

/* ---- requests ------------------------------------------------------------------ */

void
tcp_req_release(struct tcp_req *r)
{
	struct tcp_conn *c = r->conn;

	r->state = TR_FREE;
	r->next_free = c->free_reqs;
	c->free_reqs = r;
	c->busy--;
}

static void
tcp_req_tx_done(void *owner, struct nvl_tcp_tx *tx)
{
	struct tcp_req *r = container_of(tx, struct tcp_req, tx);

	(void)owner;
	tcp_req_release(r);
}

static int
tcp_req_buf_reserve(struct tcp_req *r, uint32_t len)
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
tcp_req_fail(struct tcp_req *r, uint16_t status)
{
	r->state = TR_EXEC;
	r->conn->executing++;
	nvl_nvme_req_complete(&r->nvme, status);
}

static void
tcp_req_fail_cdw0(struct tcp_req *r, uint16_t status, uint32_t cdw0)
{
	r->nvme.cpl.cdw0 = cdw0;
	r->nvme.cpl.cdw1 = 0;
	tcp_req_fail(r, status);
}

/* Build the C2HData PDU (+ digest) and/or the response capsule. */
static void
tcp_req_build_response(struct tcp_conn *c, struct tcp_req *r)
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
		if (g_tcp_opts.c2h_success && c->sqflow_off) {
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
	tx->done = tcp_req_tx_done;
}

static void
tcp_req_done(struct nvl_nvme_req *nreq)
{
	struct tcp_req *r = container_of(nreq, struct tcp_req, nvme);
	struct tcp_conn *c = r->conn;

	c->executing--;
	if (nvl_unlikely(c->state == TC_CLOSING || c->state == TC_FAILED || c->state == TC_KEPT ||
			 c->terminated)) {
		/* TC_KEPT: an event for a held Asynchronous Event Request after the
		 * hand-over began; the next worker holds the request again */
		tcp_req_release(r);
		if (c->state == TC_CLOSING)
			tcp_conn_try_free(c);
		return;
	}
	r->state = TR_TX;
	tcp_req_build_response(c, r);
	tcp_tx_queue(c, &r->tx);
	c->last_rx_ns = nvl_now_ns(); /* keep polling: more work is likely */
}

static void
tcp_req_send_r2t(struct tcp_conn *c, struct tcp_req *r)
{
	struct nvl_tcp_r2t *t = (void *)r->hdr;
	uint32_t l = NVL_MIN(r->len - r->h2c_off, c->maxh2cdata);
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
	tcp_tx_queue(c, tx);
	c->r2ts++;
}

static void tcp_handle_connect(struct tcp_conn *c, struct tcp_req *r);

static void
tcp_req_execute(struct tcp_conn *c, struct tcp_req *r)
{
	struct nvl_nvme_req *n = &r->nvme;

	if (n->cmd.opc == NVL_NVME_ADM_FABRICS) {
		const struct nvl_nvmf_cmd *f = (const void *)&n->cmd;

		if (f->fctype == NVL_NVMF_FCTYPE_CONNECT) {
			tcp_handle_connect(c, r);
			return;
		}
		if (c->qid != 0 && f->fctype != NVL_NVMF_FCTYPE_AUTH_SEND &&
		    f->fctype != NVL_NVMF_FCTYPE_AUTH_RECV) {
			/* (each I/O queue runs its own DH-HMAC-CHAP transaction: nvme) */
			if (f->fctype == NVL_NVMF_FCTYPE_DISCONNECT) {
				/* NVMe-oF 3.4: the I/O queue goes away after the response */
				c->close_after_flush = true;
				tcp_req_fail(r, NVL_NVME_SC_SUCCESS);
				return;
			}
			tcp_req_fail(r, NVL_NVME_DNR(NVL_NVME_SC_INVALID_OPCODE));
			return;
		}
	}
	/* data: req->iov points at r->buf since tcp_map_capsule() */
	r->state = TR_EXEC;
	c->executing++;
	nvl_nvme_execute(n);
}

/* The capsule (and any in-capsule data) arrived. */
static void
tcp_req_start(struct tcp_conn *c, struct tcp_req *r)
{
	if (r->early_status) {
		tcp_req_fail(r, r->early_status);
		return;
	}
	if (r->dir == NVL_NVME_XFER_H2C && r->len > r->icd_len) {
		r->h2c_off = 0;
		tcp_req_send_r2t(c, r);
		return;
	}
	tcp_req_execute(c, r);
}

/* ---- Fabrics Connect (NVMe-oF 1.1 section 3.3) ----------------------------------- */

/* Connect response DW0 for Invalid Parameters (NVMe-oF 1.1 Connect response):
 * IPO, the offset of the field, in bits 15:0; IATTR in 23:16, bit 16 set when
 * the field is in the Connect data, clear when in the command (as Linux nvmet
 * and SPDK). */
#define CONNECT_IPO(off, in_data) ((((in_data) ? 1u : 0u) << 16) | ((uint32_t)(off) & 0xffffu))

static void
tcp_connect_refuse(struct tcp_conn *c, struct tcp_req *r, uint16_t status, uint32_t cdw0,
	       const char *why)
{
	NVL_NOTICELOG("tcp: %s: Connect refused: %s", c->peer, why);
	c->close_after_flush = true;
	tcp_req_fail_cdw0(r, NVL_NVME_DNR(status), cdw0);
}

static void
tcp_connect_admin(struct tcp_conn *c, struct tcp_req *r, const struct nvl_nvmf_connect_cmd *cc,
	      const struct nvl_nvmf_connect_data *d)
{
	struct nvl_connect_info ci = { 0 };
	struct nvl_nvmf_ctrlr *tc;
	struct tcp_ctrlr *ctl;
	uint32_t entries = (uint32_t)cc->sqsize + 1;
	uint16_t status;
	char why[200] = "";
	int rc;

	if (entries < 2 || entries > g_tcp_opts.max_aq_depth || entries > c->nreqs) {
		tcp_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
			       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_cmd, sqsize), false),
			       "admin SQSIZE out of range");
		return;
	}
	/* accepted into the slots reserved for allowed hosts: a discovery
	 * controller (which any host may open) may not take one */
	if (c->reserve_only && strcmp(d->subnqn, NVL_NVME_DISCOVERY_NQN) == 0) {
		tcp_connect_refuse(c, r, NVL_NVME_SC_CONNECT_CTRL_BUSY, 0,
			       "only reserved connection slots left (reserved_conns), "
			       "kept for hosts of NVM subsystems");
		return;
	}
	ctl = calloc(1, sizeof(*ctl));
	if (ctl == NULL) {
		tcp_connect_refuse(c, r, NVL_NVME_SC_INTERNAL, 0, "out of memory");
		return;
	}
	ci.subnqn = d->subnqn;
	ci.hostnqn = d->hostnqn;
	ci.hostid = d->hostid;
	ci.kato_ms = cc->kato;
	ci.cntlid = d->cntlid;
	ci.max_queue_entries = (uint16_t)g_tcp_opts.max_queue_depth;
	ci.max_io_queues = (uint16_t)NVL_MIN(g_tcp_opts.max_io_qpairs, (uint32_t)TCP_MAX_IO_QUEUES);
	ci.fabrics = true;
	ci.sgl = true;
	ci.ioccsz = (uint32_t)(sizeof(struct nvl_nvme_cmd) + g_tcp_opts.icd) / 16;
	ci.iorcsz = sizeof(struct nvl_nvme_cpl) / 16;
	ci.msdbd = 1;
	ci.mdts = nvl_nvme_mdts_for(g_tcp_opts.max_io_size);
	ci.transport = &g_tcp_ops;
	ci.listener = &c->listener;
	ci.queue_ops = &g_tcp_queue_ops;
	ci.tctx = ctl;
	ci.why = why;
	ci.why_len = sizeof(why);
	rc = nvl_nvmf_connect(&ci, &tc, &status);
	if (rc < 0) {
		free(ctl);
		if (rc == -ENOENT)
			tcp_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
				       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_data, subnqn), true),
				       "no such subsystem");
		else if (rc == -EINVAL)
			tcp_connect_refuse(c, r, status,
				       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_data, cntlid), true),
				       "static controller ids are not offered");
		else
			tcp_connect_refuse(c, r, status, 0,
				       why[0] ? why
				       : status == NVL_NVME_SC_CONNECT_INVALID_HOST
					       ? "host not allowed"
					       : "refused by the subsystem");
		return;
	}
	ctl->tc = tc;
	ctl->admin = c;
	TAILQ_INSERT_TAIL(&g_tcp_ctrlrs, ctl, link);
	TAILQ_REMOVE(&g_tcp_pending, c, link);
	c->ctl = ctl;
	c->tc = tc;
	c->qid = 0;
	c->entries = entries;
	c->icd_max = TCP_ADMIN_ICD;
	c->state = TC_ACTIVE;
	c->auth = tc->auth;
	r->nvme.ctrlr = &tc->nvme;
	tcp_req_fail_cdw0(r, NVL_NVME_SC_SUCCESS, tc->nvme.cntlid | nvl_nvmf_auth_connect_flags(tc));
}

static void
tcp_connect_io(struct tcp_conn *c, struct tcp_req *r, const struct nvl_nvmf_connect_cmd *cc,
	   const struct nvl_nvmf_connect_data *d)
{
	uint32_t entries = (uint32_t)cc->sqsize + 1;
	struct nvl_nvmf_ctrlr *tc;
	struct tcp_ctrlr *ctl;
	uint16_t qid = cc->qid;
	uint32_t granted;

	if (entries < 2 || entries > g_tcp_opts.max_queue_depth || entries > c->nreqs) {
		tcp_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
			       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_cmd, sqsize), false),
			       "I/O SQSIZE out of range");
		return;
	}
	tc = nvl_nvmf_ctrlr_lookup(d->subnqn, d->cntlid);
	if (tc == NULL || tc->transport != &g_tcp_ops) {
		if (tc)
			nvl_nvmf_ctrlr_put(tc);
		tcp_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
			       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_data, cntlid), true),
			       "no such controller for an I/O queue");
		return;
	}
	ctl = tc->tctx;
	if (strcmp(tc->nvme.hostnqn, d->hostnqn) != 0 || memcmp(tc->nvme.hostid, d->hostid, 16)) {
		nvl_nvmf_ctrlr_put(tc);
		tcp_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_HOST, 0,
			       "I/O queue from another host than the controller's");
		return;
	}
	granted = tc->nvme.num_queues_set ? (tc->nvme.feat_num_queues & 0xffff) + 1
					  : tc->nvme.max_io_queues;
	if (tc->nvme.type != NVL_NVME_CNTRLTYPE_IO || qid > tc->nvme.max_io_queues ||
	    qid > TCP_MAX_IO_QUEUES || qid > granted || ctl->closing || ctl->ioq[qid]) {
		nvl_nvmf_ctrlr_put(tc);
		tcp_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
			       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_cmd, qid), false),
			       "queue id not available");
		return;
	}
	if (!(tc->nvme.csts & NVL_NVME_CSTS_RDY)) {
		nvl_nvmf_ctrlr_put(tc);
		tcp_connect_refuse(c, r, NVL_NVME_SC_COMMAND_SEQUENCE_ERROR, 0,
			       "I/O queue before the controller is enabled");
		return;
	}
	/* a connection of its own: it authenticates itself (nvmf/auth.h) */
	if (tc->nvme.auth_required && nvl_nvmf_auth_queue_create(tc, qid, &c->auth) < 0) {
		nvl_nvmf_ctrlr_put(tc);
		tcp_connect_refuse(c, r, NVL_NVME_SC_INTERNAL, 0, "out of memory");
		return;
	}
	ctl->ioq[qid] = c;
	ctl->ioq_reactor[qid] = nvl_reactor_pick();
	c->placed = ctl->ioq_reactor[qid]; /* given back when the connection is freed */
	ctl->nio_alive++;
	TAILQ_REMOVE(&g_tcp_pending, c, link);
	c->ctl = ctl;
	c->tc = tc; /* the lookup's reference, dropped when the queue is gone */
	c->qid = qid;
	c->entries = entries;
	c->icd_max = g_tcp_opts.icd;
	c->rx.max_data = NVL_MAX(g_tcp_opts.icd, g_tcp_opts.maxh2cdata);
	r->nvme.ctrlr = &tc->nvme;
	tcp_req_fail_cdw0(r, NVL_NVME_SC_SUCCESS, tc->nvme.cntlid | nvl_nvmf_auth_connect_flags(tc));
	/* tcp_conn_service() hands the connection to its reactor once this call chain unwinds */
	c->state = TC_MIGRATING;
	NVL_DEBUGLOG(nvmf_tcp, "%s: cntlid %u I/O queue %u (%u entries) -> reactor %u", c->peer,
		     tc->nvme.cntlid, qid, entries, nvl_reactor_id(ctl->ioq_reactor[qid]));
}

static void
tcp_handle_connect(struct tcp_conn *c, struct tcp_req *r)
{
	const struct nvl_nvmf_connect_cmd *cc = (const void *)&r->nvme.cmd;
	struct nvl_nvmf_connect_data *d = (void *)r->buf;

	if (c->state != TC_CONNECT_WAIT) {
		tcp_req_fail(r, NVL_NVME_DNR(NVL_NVME_SC_COMMAND_SEQUENCE_ERROR));
		return;
	}
	if (r->len < sizeof(*d) || d == NULL) {
		tcp_connect_refuse(c, r, NVL_NVME_SC_DATA_SGL_LENGTH_INVALID, 0, "no Connect data");
		return;
	}
	if (cc->recfmt != 0) {
		tcp_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INCOMPATIBLE_FORMAT, 0,
			       "unknown Connect record format");
		return;
	}
	if (memchr(d->subnqn, '\0', sizeof(d->subnqn)) == NULL ||
	    nvl_nqn_validate(d->subnqn) < 0) {
		tcp_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
			       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_data, subnqn), true),
			       "malformed subsystem NQN");
		return;
	}
	/* An empty HOSTNQN is what SPDK's initiator sends when not given one, and
	 * SPDK's target takes it: so do we, where the subsystem allows any host
	 * (nvl_nvmf_connect() refuses it where an allow-list must match). */
	if (d->hostnqn[0] == '\0') {
		NVL_DEBUGLOG(nvmf_tcp, "%s: Connect with an empty host NQN to %s", c->peer,
			     d->subnqn);
	} else if (memchr(d->hostnqn, '\0', sizeof(d->hostnqn)) == NULL ||
		   nvl_nqn_validate(d->hostnqn) < 0) {
		tcp_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
			       CONNECT_IPO(offsetof(struct nvl_nvmf_connect_data, hostnqn), true),
			       "malformed host NQN");
		return;
	}
	c->sqflow_off = (cc->cattr & NVL_NVMF_CATTR_DISABLE_SQFLOW) != 0;
	if (cc->qid == 0)
		tcp_connect_admin(c, r, cc, d);
	else
		tcp_connect_io(c, r, cc, d);
}

/* ---- receive ------------------------------------------------------------------ */

static int
tcp_rx_fatal(struct nvl_tcp_err *err, uint16_t fes, uint32_t fei, const char *why)
{
	err->fes = fes;
	err->fei = fei;
	err->why = why;
	return -1;
}

static int
tcp_conn_alloc_reqs(struct tcp_conn *c, const struct nvl_nvme_cmd *first)
{
	const struct nvl_nvmf_connect_cmd *cc = (const void *)first;
	uint32_t n = 1;

	if (first->opc == NVL_NVME_ADM_FABRICS && cc->fctype == NVL_NVMF_FCTYPE_CONNECT) {
		uint32_t limit = cc->qid == 0 ? g_tcp_opts.max_aq_depth : g_tcp_opts.max_queue_depth;

		n = NVL_MIN((uint32_t)cc->sqsize + 1, limit);
		n = NVL_MAX(n, 1u);
	}
	return tcp_conn_alloc_slots(c, n);
}

int
tcp_conn_alloc_slots(struct tcp_conn *c, uint32_t n)
{
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

/* nvl_nvme_map_fn of a capsule: check its data descriptor against the
 * transfer the command needs, give it a buffer of that size. */
static uint16_t
tcp_map_capsule(struct nvl_nvme_req *req, uint32_t len, uint8_t dir, void *ctx)
{
	struct tcp_req *r = ctx;
	struct tcp_conn *c = r->conn;
	const struct nvl_nvme_sgl *sgl = &req->cmd.dptr.sgl1;
	uint32_t max = c->qid == 0 ? TCP_ADMIN_MAX_XFER
		       : c->tc	    ? nvl_nvme_ctrlr_max_xfer(&c->tc->nvme)
				    : (uint32_t)NVL_NVME_MAX_XFER;

	/* I/O queues: the controller's MDTS (reads and writes were checked against it already) */
	if (len > max)
		return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
	if (r->icd_len) {
		if (sgl->type != NVL_TCP_SGL_ICD)
			return NVL_NVME_DNR(NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
		if (sgl->addr != 0)
			return NVL_NVME_DNR(NVL_NVME_SC_SGL_OFFSET_INVALID);
		if (sgl->length != r->icd_len || dir != NVL_NVME_XFER_H2C || len > r->icd_len)
			return NVL_NVME_DNR(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
	} else if (len) {
		if (sgl->type != NVL_TCP_SGL_TRANSPORT)
			return NVL_NVME_DNR(sgl->type == NVL_TCP_SGL_ICD
						    ? NVL_NVME_SC_DATA_SGL_LENGTH_INVALID
						    : NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
		if (sgl->length < len)
			return NVL_NVME_DNR(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
	}
	if (tcp_req_buf_reserve(r, NVL_MAX(len, r->icd_len)) < 0)
		return NVL_NVME_SC_INTERNAL;
	r->len = len;
	r->dir = dir;
	req->iov[0].iov_base = r->buf;
	req->iov[0].iov_len = len;
	req->iovcnt = len ? 1 : 0;
	req->data_len = len;
	return 0;
}

/* CapsuleCmd header: take a slot, validate the data descriptor. */
static int
tcp_rx_capsule_header(struct tcp_conn *c, struct nvl_tcp_rx *rx, struct nvl_tcp_err *err)
{
	const struct nvl_tcp_cmd *pdu = (const void *)rx->hdr.raw;
	struct tcp_req *r;
	uint16_t st = 0;

	if (c->state != TC_CONNECT_WAIT && c->state != TC_ACTIVE)
		return tcp_rx_fatal(err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0, "command before ICReq");
	if (c->reqs == NULL && tcp_conn_alloc_reqs(c, &pdu->ccsqe) < 0)
		return tcp_rx_fatal(err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0, "out of memory");
	r = c->free_reqs;
	if (r == NULL)
		return tcp_rx_fatal(err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0,
				"more commands in flight than the queue size");
	c->free_reqs = r->next_free;
	c->busy++;
	memset(&r->nvme, 0, offsetof(struct nvl_nvme_req, done));
	memcpy(&r->nvme.cmd, &pdu->ccsqe, sizeof(r->nvme.cmd));
	r->nvme.ctrlr = c->tc ? &c->tc->nvme : NULL;
	r->nvme.qid = c->qid;
	r->nvme.done = tcp_req_done;
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
			st = NVL_NVME_DNR(NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
		else if (f->fctype != NVL_NVMF_FCTYPE_CONNECT && c->state == TC_CONNECT_WAIT)
			st = NVL_NVME_DNR(NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
	} else if (c->state == TC_CONNECT_WAIT) {
		st = NVL_NVME_DNR(NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
	}
	if (r->icd_len > c->icd_max)
		return tcp_rx_fatal(err, NVL_TCP_FES_DATA_LIMIT_EXCEEDED,
				offsetof(struct nvl_tcp_common_hdr, plen),
				"in-capsule data beyond the capsule size");
	if (st == 0)
		st = nvl_nvme_req_prepare(&r->nvme, tcp_map_capsule, r);
	if (st) {
		/* only an internal error may be retried */
		r->early_status = (st & 0x7ff) == NVL_NVME_SC_INTERNAL ? st : NVL_NVME_DNR(st);
		return 0; /* the in-capsule data, if any, is read and dropped */
	}
	if (r->icd_len) {
		struct iovec iov = { r->buf, r->icd_len };

		nvl_tcp_rx_set_sink(rx, &iov, 1);
	}
	return 0;
}

int
tcp_req_revive(struct tcp_conn *c, uint16_t ttag, const struct nvl_nvme_cmd *cmd,
	       struct tcp_req **out)
{
	struct tcp_req *r, **pp;

	if (ttag >= c->nreqs || c->reqs[ttag].state != TR_FREE)
		return -EBUSY;
	r = &c->reqs[ttag];
	for (pp = &c->free_reqs; *pp && *pp != r; pp = &(*pp)->next_free)
		;
	if (*pp == NULL)
		return -EBUSY;
	*pp = r->next_free;
	c->busy++;
	memset(&r->nvme, 0, offsetof(struct nvl_nvme_req, done));
	memcpy(&r->nvme.cmd, cmd, sizeof(r->nvme.cmd));
	r->nvme.ctrlr = c->tc ? &c->tc->nvme : NULL;
	r->nvme.qid = c->qid;
	r->nvme.done = tcp_req_done;
	r->nvme.transport_ctx = r;
	r->nvme.auth = c->auth;
	r->state = TR_RX_ICD;
	r->icd_len = 0;
	r->early_status = 0;
	r->data_error = false;
	r->len = 0;
	r->dir = NVL_NVME_XFER_NONE;
	if (nvl_nvme_req_prepare(&r->nvme, tcp_map_capsule, r) != 0) {
		tcp_req_release(r);
		return -EINVAL;
	}
	*out = r;
	return 0;
}

void
tcp_req_run(struct tcp_conn *c, struct tcp_req *r)
{
	tcp_req_execute(c, r);
}

static int
tcp_rx_h2c_header(struct tcp_conn *c, struct nvl_tcp_rx *rx, struct nvl_tcp_err *err)
{
	const struct nvl_tcp_data *h = (const void *)rx->hdr.raw;
	struct tcp_req *r;
	struct iovec iov;

	if (h->ttag >= c->nreqs)
		return tcp_rx_fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD,
				offsetof(struct nvl_tcp_data, ttag), "H2CData with an unknown tag");
	r = &c->reqs[h->ttag];
	if (r->state != TR_WAIT_H2C)
		return tcp_rx_fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD,
				offsetof(struct nvl_tcp_data, ttag), "H2CData nobody asked for");
	if (h->cccid != r->nvme.cmd.cid)
		return tcp_rx_fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD,
				offsetof(struct nvl_tcp_data, cccid), "H2CData for another command");
	if (r->tx.queued)
		return tcp_rx_fatal(err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0, "H2CData before its R2T");
	if (h->datal != rx->data_len)
		return tcp_rx_fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD,
				offsetof(struct nvl_tcp_data, datal), "DATAL does not match PLEN");
	if (h->datal > c->maxh2cdata)
		return tcp_rx_fatal(err, NVL_TCP_FES_DATA_LIMIT_EXCEEDED,
				offsetof(struct nvl_tcp_data, datal), "H2CData above MAXH2CDATA");
	if (h->datao != r->h2c_off || (uint64_t)h->datao + h->datal > r->r2t_end)
		return tcp_rx_fatal(err, NVL_TCP_FES_DATA_OUT_OF_RANGE,
				offsetof(struct nvl_tcp_data, datao), "H2CData outside the R2T");
	iov.iov_base = r->buf + h->datao;
	iov.iov_len = h->datal;
	nvl_tcp_rx_set_sink(rx, &iov, 1);
	c->rx_req = r;
	return 0;
}

static int
tcp_rx_on_header(void *ctx, struct nvl_tcp_rx *rx, struct nvl_tcp_err *err)
{
	struct tcp_conn *c = ctx;

	switch (rx->hdr.ch.pdu_type) {
	case NVL_TCP_PDU_ICREQ:
		if (c->state != TC_IC_WAIT)
			return tcp_rx_fatal(err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0, "unexpected ICReq");
		return 0;
	case NVL_TCP_PDU_CAPSULE_CMD:
		return tcp_rx_capsule_header(c, rx, err);
	case NVL_TCP_PDU_H2C_DATA:
		if (c->state != TC_CONNECT_WAIT && c->state != TC_ACTIVE)
			return tcp_rx_fatal(err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0, "unexpected H2CData");
		return tcp_rx_h2c_header(c, rx, err);
	case NVL_TCP_PDU_H2C_TERM:
		return 0;
	default:
		return tcp_rx_fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD, 0, "unexpected PDU type");
	}
}

static int
tcp_rx_icreq(struct tcp_conn *c, struct nvl_tcp_rx *rx, struct nvl_tcp_err *err)
{
	const struct nvl_tcp_icreq *q = (const void *)rx->hdr.raw;
	struct nvl_tcp_icresp *p = (void *)c->aux_buf;

	if (q->pfv != NVL_TCP_PFV_1_0)
		return tcp_rx_fatal(err, NVL_TCP_FES_UNSUPPORTED_PARAMETER,
				offsetof(struct nvl_tcp_icreq, pfv), "unsupported PDU format version");
	if (q->hpda > NVL_TCP_MAX_HPDA)
		return tcp_rx_fatal(err, NVL_TCP_FES_UNSUPPORTED_PARAMETER,
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
	p->maxh2cdata = c->maxh2cdata;
	c->aux_tx.iovcnt = 1;
	c->aux_tx.iov[0] = (struct iovec){ p, sizeof(*p) };
	c->aux_tx.done = NULL;
	tcp_tx_queue(c, &c->aux_tx);
	/* digests apply from the next PDU on, in both directions */
	rx->hdgst = c->hdgst;
	rx->ddgst = c->ddgst;
	c->state = TC_CONNECT_WAIT;
	NVL_DEBUGLOG(nvmf_tcp, "%s: ICReq: hpda %u, digests header %d data %d", c->peer, q->hpda,
		     c->hdgst, c->ddgst);
	return 0;
}

static int
tcp_rx_on_pdu(void *ctx, struct nvl_tcp_rx *rx, bool ddgst_ok, struct nvl_tcp_err *err)
{
	struct tcp_conn *c = ctx;
	struct tcp_req *r;

	switch (rx->hdr.ch.pdu_type) {
	case NVL_TCP_PDU_ICREQ:
		if (tcp_rx_icreq(c, rx, err) < 0)
			return -1;
		break;
	case NVL_TCP_PDU_CAPSULE_CMD:
		r = c->rx_req;
		c->rx_req = NULL;
		c->sqhd = (uint16_t)((c->sqhd + 1) % NVL_MAX(c->entries, 1u));
		if (!ddgst_ok && !r->early_status)
			r->early_status = NVL_NVME_SC_TRANSIENT_TRANSPORT_ERROR;
		tcp_req_start(c, r);
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
			tcp_req_send_r2t(c, r);
		else if (r->data_error)
			tcp_req_fail(r, NVL_NVME_SC_TRANSIENT_TRANSPORT_ERROR);
		else
			tcp_req_execute(c, r);
		break;
	}
	case NVL_TCP_PDU_H2C_TERM: {
		const struct nvl_tcp_term_req *t = (const void *)rx->hdr.raw;

		NVL_NOTICELOG("tcp: %s: the host terminated the connection: %s (FES 0x%x, FEI %u)",
			      c->peer, nvl_tcp_fes_str(t->fes), t->fes, t->fei);
		c->terminated = true;
		tcp_conn_error(c, "host termination request");
		return 1;
	}
	default:
		return tcp_rx_fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD, 0, "unexpected PDU type");
	}
	/* an upgrade stops the parser at this PDU boundary (tcp_keep.c) */
	return tcp_conn_reading(c) && c->keep != TK_STOPPING ? 0 : 1;
}

const struct nvl_tcp_rx_ops g_tcp_rx_ops = {
	.on_header = tcp_rx_on_header,
	.on_pdu = tcp_rx_on_pdu,
};
