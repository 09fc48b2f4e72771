/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/RDMA target transport, commands (rdma_internal.h says how the
 * transport is split and who owns what): a command capsule that arrived in
 * a receive buffer is copied out of it once (the SQE), its data descriptor
 * decoded and checked (nvl_rdma_sgl_decode, then against the transfer the
 * command needs: nvl_nvme_req_prepare), its in-capsule data used in place
 * (the receive buffer is held until the response) or its write data
 * fetched with RDMA READ into the request's registered buffer (at most
 * max_reads of them in flight: the ORD the host granted), then executed.
 * The response capsule goes out by SEND, after an RDMA WRITE of read data
 * when there is some; the receive buffer is given back before the response
 * is posted, so a host that reuses the command slot at once finds it.
 * Fabrics Connect (admin and I/O queues) is handled here. Runs on the
 * connection's reactor; Connect on reactor 0. Posts work only through
 * c->ops, which lets tests/fuzz/nvme_rdma_capsule drive it without verbs.
 */
#include "transport/rdma_internal.h"
#include "nvmf/auth.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

NVL_LOG_DECLARE_COMPONENT(nvmf_rdma);

/* ---- requests -------------------------------------------------------------------- */

int
rdma_capsule_init(struct rdma_conn *c)
{
	uint32_t n = c->entries;

	c->reqs = calloc(n, sizeof(*c->reqs));
	if (c->reqs == NULL)
		return -ENOMEM;
	c->nreqs = n;
	c->free_reqs = NULL;
	STAILQ_INIT(&c->read_wait);
	for (uint32_t i = n; i-- > 0;) {
		c->reqs[i].conn = c;
		c->reqs[i].idx = (uint16_t)i;
		c->reqs[i].rx = -1;
		c->reqs[i].rsp = &c->rsps[i];
		c->reqs[i].next_free = c->free_reqs;
		c->free_reqs = &c->reqs[i];
	}
	return 0;
}

void
rdma_capsule_fini(struct rdma_conn *c)
{
	free(c->reqs);
	c->reqs = NULL;
	c->nreqs = 0;
}

static void
rdma_req_release(struct rdma_req *r)
{
	struct rdma_conn *c = r->conn;

	r->state = RR_FREE;
	r->rx = -1;
	r->next_free = c->free_reqs;
	c->free_reqs = r;
	c->busy--;
}

/* Give a held receive buffer back to the queue pair. */
static void
rdma_req_put_rx(struct rdma_conn *c, struct rdma_req *r)
{
	if (r->rx < 0)
		return;
	if (c->ops->post_recv(c, (uint32_t)r->rx) < 0 && rdma_conn_reading(c))
		rdma_conn_error(c, "cannot post a receive buffer");
	r->rx = -1;
}

/* Complete a request that never reached the NVMe layer. */
static void
rdma_req_fail(struct rdma_req *r, uint16_t status)
{
	r->state = RR_EXEC;
	r->conn->executing++;
	nvl_nvme_req_complete(&r->nvme, status);
}

static void
rdma_req_fail_cdw0(struct rdma_req *r, uint16_t status, uint32_t cdw0)
{
	r->nvme.cpl.cdw0 = cdw0;
	r->nvme.cpl.cdw1 = 0;
	rdma_req_fail(r, status);
}

static void
rdma_req_done(struct nvl_nvme_req *nreq)
{
	struct rdma_req *r = container_of(nreq, struct rdma_req, nvme);
	struct rdma_conn *c = r->conn;
	struct nvl_nvme_cpl *cpl = &r->nvme.cpl;
	uint32_t xfer = 0;
	bool inv;

	c->executing--;
	if (nvl_unlikely(c->state == RC_CLOSING || c->state == RC_FAILED)) {
		rdma_req_release(r);
		if (c->state == RC_CLOSING)
			rdma_conn_try_free(c);
		return;
	}
	if ((cpl->status >> 1) == 0 && r->dir == NVL_NVME_XFER_C2H && r->sgl.kind ==
	    NVL_RDMA_SGL_KEYED)
		xfer = NVL_MIN(r->nvme.xfer_len, r->len);
	*r->rsp = *cpl;
	r->rsp->sqhd = c->sqhd;
	r->rsp->sqid = c->qid;
	/* the slot is free for the host once the response is seen: the receive
	 * buffer must be posted first (RDMA Transport 1.0b 3.4: no RNR on a
	 * command the host was entitled to send) */
	rdma_req_put_rx(c, r);
	inv = r->sgl.invalidate && r->sgl.kind == NVL_RDMA_SGL_KEYED;
	r->state = RR_TX;
	c->sends_out++;
	if (xfer) {
		c->bytes_out += xfer;
		c->rdma_writes++;
	}
	if (c->ops->post_response(c, r, xfer, inv, r->sgl.key) < 0) {
		c->sends_out--;
		rdma_req_release(r);
		rdma_conn_error(c, "cannot post a response");
	}
}

void
rdma_capsule_send_done(struct rdma_conn *c, uint32_t idx)
{
	struct rdma_req *r;

	if (idx >= c->nreqs)
		return;
	r = &c->reqs[idx];
	if (r->state != RR_TX)
		return;
	c->sends_out--;
	rdma_req_release(r);
	if (c->close_after_send && c->sends_out == 0 && c->state != RC_CLOSING)
		rdma_conn_error(c, c->qid ? "Disconnect" : "Connect refused");
}

static void rdma_handle_connect(struct rdma_conn *c, struct rdma_req *r);

static void
rdma_req_execute(struct rdma_conn *c, struct rdma_req *r)
{
	struct nvl_nvme_req *n = &r->nvme;

	if (n->cmd.opc == NVL_NVME_ADM_FABRICS) {
		const struct nvl_nvmf_cmd *f = (const void *)&n->cmd;

		if (f->fctype == NVL_NVMF_FCTYPE_CONNECT) {
			rdma_handle_connect(c, r);
			return;
		}
		if (c->qid != 0 && f->fctype != NVL_NVMF_FCTYPE_AUTH_SEND &&
		    f->fctype != NVL_NVMF_FCTYPE_AUTH_RECV) {
			if (f->fctype == NVL_NVMF_FCTYPE_DISCONNECT) {
				/* NVMe-oF 3.4: the I/O queue goes away after the response */
				c->close_after_send = true;
				rdma_req_fail(r, NVL_NVME_SC_SUCCESS);
				return;
			}
			rdma_req_fail(r, NVL_NVME_DNR(NVL_NVME_SC_INVALID_OPCODE));
			return;
		}
	}
	r->state = RR_EXEC;
	c->executing++;
	nvl_nvme_execute(n);
}

/* Start the RDMA READs that have a slot. */
static void
rdma_reads_kick(struct rdma_conn *c)
{
	struct rdma_req *r;

	while (c->reads < c->max_reads && (r = STAILQ_FIRST(&c->read_wait)) != NULL) {
		STAILQ_REMOVE_HEAD(&c->read_wait, rd_link);
		r->state = RR_READING;
		c->reads++;
		c->rdma_reads++;
		if (c->ops->post_read(c, r) < 0) {
			c->reads--;
			rdma_req_release(r);
			rdma_conn_error(c, "cannot post an RDMA READ");
			return;
		}
	}
}

void
rdma_capsule_read_done(struct rdma_conn *c, uint32_t idx)
{
	struct rdma_req *r;

	if (idx >= c->nreqs || c->reqs[idx].state != RR_READING)
		return;
	r = &c->reqs[idx];
	c->reads--;
	c->bytes_in += r->len;
	rdma_reads_kick(c);
	if (!rdma_conn_reading(c)) {
		rdma_req_release(r); /* failing: the command never runs */
		return;
	}
	rdma_req_execute(c, r);
}

void
rdma_capsule_drop_pending(struct rdma_conn *c)
{
	struct rdma_req *r;

	while ((r = STAILQ_FIRST(&c->read_wait)) != NULL) {
		STAILQ_REMOVE_HEAD(&c->read_wait, rd_link);
		rdma_req_release(r);
	}
	for (uint32_t i = 0; i < c->nreqs; i++) {
		r = &c->reqs[i];
		/* reads in flight and posted responses end with the queue pair */
		if (r->state == RR_READING || r->state == RR_TX) {
			if (r->state == RR_READING)
				c->reads--;
			rdma_req_release(r);
		}
	}
	c->sends_out = 0;
}

/* ---- Fabrics Connect (NVMe-oF 1.1 section 3.3) ------------------------------------ */

/* Connect response DW0 for Invalid Parameters (NVMe-oF 1.1 Connect response):
 * IPO, the offset of the field, in bits 15:0; IATTR in 23:16, bit 16 set when
 * the field is in the Connect data (as Linux nvmet and SPDK). */
#define CONNECT_IPO(off, in_data) ((((in_data) ? 1u : 0u) << 16) | ((uint32_t)(off) & 0xffffu))

static void
rdma_connect_refuse(struct rdma_conn *c, struct rdma_req *r, uint16_t status, uint32_t cdw0,
		    const char *why)
{
	NVL_NOTICELOG("rdma: %s: Connect refused: %s", c->peer, why);
	c->close_after_send = true;
	rdma_req_fail_cdw0(r, NVL_NVME_DNR(status), cdw0);
}

static void
rdma_connect_admin(struct rdma_conn *c, struct rdma_req *r, const struct nvl_nvmf_connect_cmd *cc,
		   const struct nvl_nvmf_connect_data *d)
{
	struct nvl_connect_info ci = { 0 };
	struct nvl_nvmf_ctrlr *tc;
	struct rdma_ctrlr *ctl;
	uint16_t status;
	char why[200] = "";
	int rc;

	ctl = calloc(1, sizeof(*ctl));
	if (ctl == NULL) {
		rdma_connect_refuse(c, r, NVL_NVME_SC_INTERNAL, 0, "out of memory");
		return;
	}
	ci.subnqn = d->subnqn;
	ci.hostnqn = d->hostnqn;
	ci.hostid = d->hostid;
	ci.kato_ms = cc->kato;
	ci.cntlid = d->cntlid;
	ci.max_queue_entries = (uint16_t)g_rdma_opts.max_queue_depth;
	ci.max_io_queues =
		(uint16_t)NVL_MIN(g_rdma_opts.max_io_qpairs, (uint32_t)RDMA_MAX_IO_QUEUES);
	ci.fabrics = true;
	ci.sgl = true;
	ci.ioccsz = (uint32_t)(sizeof(struct nvl_nvme_cmd) + g_rdma_opts.icd) / 16;
	ci.iorcsz = sizeof(struct nvl_nvme_cpl) / 16;
	ci.msdbd = 1;
	ci.mdts = nvl_nvme_mdts_for(g_rdma_opts.max_io_size);
	ci.transport = &g_rdma_ops;
	ci.listener = &c->listener;
	ci.queue_ops = &g_rdma_queue_ops;
	ci.tctx = ctl;
	ci.why = why;
	ci.why_len = sizeof(why);
	rc = nvl_nvmf_connect(&ci, &tc, &status);
	if (rc < 0) {
		free(ctl);
		if (rc == -ENOENT)
			rdma_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
					    CONNECT_IPO(offsetof(struct nvl_nvmf_connect_data,
								 subnqn), true),
					    "no such subsystem");
		else if (rc == -EINVAL)
			rdma_connect_refuse(c, r, status,
					    CONNECT_IPO(offsetof(struct nvl_nvmf_connect_data,
								 cntlid), true),
					    "static controller ids are not offered");
		else
			rdma_connect_refuse(c, r, status, 0,
					    why[0] ? why
					    : status == NVL_NVME_SC_CONNECT_INVALID_HOST
						    ? "host not allowed"
						    : "refused by the subsystem");
		return;
	}
	ctl->tc = tc;
	ctl->admin = c;
	TAILQ_INSERT_TAIL(&g_rdma_ctrlrs, ctl, link);
	if (c->r0_linked) {
		TAILQ_REMOVE(&g_rdma_pending, c, link);
		c->r0_linked = false;
	}
	c->ctl = ctl;
	c->tc = tc;
	c->state = RC_ACTIVE;
	c->auth = tc->auth;
	r->nvme.ctrlr = &tc->nvme;
	rdma_req_fail_cdw0(r, NVL_NVME_SC_SUCCESS,
			   tc->nvme.cntlid | nvl_nvmf_auth_connect_flags(tc));
}

static void
rdma_connect_io(struct rdma_conn *c, struct rdma_req *r, const struct nvl_nvmf_connect_cmd *cc,
		const struct nvl_nvmf_connect_data *d)
{
	struct nvl_nvmf_ctrlr *tc;
	struct rdma_ctrlr *ctl;
	uint16_t qid = cc->qid;
	uint32_t granted;

	tc = nvl_nvmf_ctrlr_lookup(d->subnqn, d->cntlid);
	if (tc == NULL || tc->transport != &g_rdma_ops) {
		if (tc)
			nvl_nvmf_ctrlr_put(tc);
		rdma_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
				    CONNECT_IPO(offsetof(struct nvl_nvmf_connect_data, cntlid), true),
				    "no such controller for an I/O queue");
		return;
	}
	ctl = tc->tctx;
	if (strcmp(tc->nvme.hostnqn, d->hostnqn) != 0 || memcmp(tc->nvme.hostid, d->hostid, 16)) {
		nvl_nvmf_ctrlr_put(tc);
		rdma_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_HOST, 0,
				    "I/O queue from another host than the controller's");
		return;
	}
	granted = tc->nvme.num_queues_set ? (tc->nvme.feat_num_queues & 0xffff) + 1
					  : tc->nvme.max_io_queues;
	if (tc->nvme.type != NVL_NVME_CNTRLTYPE_IO || qid > tc->nvme.max_io_queues ||
	    qid > RDMA_MAX_IO_QUEUES || qid > granted || ctl->closing || ctl->ioq[qid]) {
		nvl_nvmf_ctrlr_put(tc);
		rdma_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
				    CONNECT_IPO(offsetof(struct nvl_nvmf_connect_cmd, qid), false),
				    "queue id not available");
		return;
	}
	if (!(tc->nvme.csts & NVL_NVME_CSTS_RDY)) {
		nvl_nvmf_ctrlr_put(tc);
		rdma_connect_refuse(c, r, NVL_NVME_SC_COMMAND_SEQUENCE_ERROR, 0,
				    "I/O queue before the controller is enabled");
		return;
	}
	if (tc->nvme.auth_required && nvl_nvmf_auth_queue_create(tc, qid, &c->auth) < 0) {
		nvl_nvmf_ctrlr_put(tc);
		rdma_connect_refuse(c, r, NVL_NVME_SC_INTERNAL, 0, "out of memory");
		return;
	}
	ctl->ioq[qid] = c;
	ctl->ioq_reactor[qid] = nvl_reactor_pick();
	c->placed = ctl->ioq_reactor[qid]; /* given back when the connection is freed */
	ctl->nio_alive++;
	if (c->r0_linked) {
		TAILQ_REMOVE(&g_rdma_pending, c, link);
		c->r0_linked = false;
	}
	c->ctl = ctl;
	c->tc = tc; /* the lookup's reference, dropped when the queue is gone */
	r->nvme.ctrlr = &tc->nvme;
	rdma_req_fail_cdw0(r, NVL_NVME_SC_SUCCESS,
			   tc->nvme.cntlid | nvl_nvmf_auth_connect_flags(tc));
	/* the connection's service loop hands it to its reactor once this call chain unwinds */
	c->state = RC_MIGRATING;
	NVL_DEBUGLOG(nvmf_rdma, "%s: cntlid %u I/O queue %u (%u entries) -> reactor %u", c->peer,
		     tc->nvme.cntlid, qid, c->entries,
		     ctl->ioq_reactor[qid] ? nvl_reactor_id(ctl->ioq_reactor[qid]) : 0);
}

static void
rdma_handle_connect(struct rdma_conn *c, struct rdma_req *r)
{
	const struct nvl_nvmf_connect_cmd *cc = (const void *)&r->nvme.cmd;
	struct nvl_nvmf_connect_data *d = r->nvme.iovcnt ? r->nvme.iov[0].iov_base : NULL;

	if (c->state != RC_CONNECT_WAIT) {
		rdma_req_fail(r, NVL_NVME_DNR(NVL_NVME_SC_COMMAND_SEQUENCE_ERROR));
		return;
	}
	if (d == NULL || r->len < sizeof(*d) || r->nvme.iov[0].iov_len < sizeof(*d)) {
		rdma_connect_refuse(c, r, NVL_NVME_SC_DATA_SGL_LENGTH_INVALID, 0, "no Connect data");
		return;
	}
	if (cc->recfmt != 0) {
		rdma_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INCOMPATIBLE_FORMAT, 0,
				    "unknown Connect record format");
		return;
	}
	/* the queue was sized by the connection request: the Connect must agree */
	if (cc->qid != c->cm_qid) {
		rdma_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
				    CONNECT_IPO(offsetof(struct nvl_nvmf_connect_cmd, qid), false),
				    "Connect for another queue than the RDMA connection request's");
		return;
	}
	if ((uint32_t)cc->sqsize + 1 < 2 || (uint32_t)cc->sqsize + 1 > c->entries) {
		rdma_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
				    CONNECT_IPO(offsetof(struct nvl_nvmf_connect_cmd, sqsize), false),
				    "SQSIZE larger than the RDMA queue");
		return;
	}
	if (memchr(d->subnqn, '\0', sizeof(d->subnqn)) == NULL ||
	    nvl_nqn_validate(d->subnqn) < 0) {
		rdma_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
				    CONNECT_IPO(offsetof(struct nvl_nvmf_connect_data, subnqn), true),
				    "malformed subsystem NQN");
		return;
	}
	if (memchr(d->hostnqn, '\0', sizeof(d->hostnqn)) == NULL ||
	    nvl_nqn_validate(d->hostnqn) < 0) {
		rdma_connect_refuse(c, r, NVL_NVME_SC_CONNECT_INVALID_PARAM,
				    CONNECT_IPO(offsetof(struct nvl_nvmf_connect_data, hostnqn), true),
				    "malformed host NQN");
		return;
	}
	c->qid = cc->qid;
	r->nvme.qid = c->qid;
	if (cc->qid == 0)
		rdma_connect_admin(c, r, cc, d);
	else
		rdma_connect_io(c, r, cc, d);
}

/* ---- receive ----------------------------------------------------------------------- */

/* nvl_nvme_map_fn of a capsule: the decoded descriptor against the transfer
 * the command needs; in-capsule data is used where it arrived, keyed data
 * gets a registered buffer. */
static uint16_t
rdma_map_capsule(struct nvl_nvme_req *req, uint32_t len, uint8_t dir, void *ctx)
{
	struct rdma_req *r = ctx;
	struct rdma_conn *c = r->conn;
	uint32_t max = c->qid == 0 ? RDMA_ADMIN_MAX_XFER
		       : c->tc	    ? nvl_nvme_ctrlr_max_xfer(&c->tc->nvme)
				    : (uint32_t)NVL_NVME_MAX_XFER;

	if (len > max)
		return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
	r->len = len;
	r->dir = dir;
	req->iovcnt = 0;
	req->data_len = 0;
	switch (r->sgl.kind) {
	case NVL_RDMA_SGL_NONE:
		if (len)
			return NVL_NVME_DNR(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
		return 0;
	case NVL_RDMA_SGL_INCAPSULE:
		if (dir != NVL_NVME_XFER_H2C || len > r->sgl.len)
			return NVL_NVME_DNR(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
		req->iov[0].iov_base = c->rbuf + (size_t)r->rx * c->rsize +
				       sizeof(struct nvl_nvme_cmd) + r->sgl.addr;
		req->iov[0].iov_len = len;
		req->iovcnt = len ? 1 : 0;
		req->data_len = len;
		return 0;
	case NVL_RDMA_SGL_KEYED:
		if (len > r->sgl.len)
			return NVL_NVME_DNR(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
		if (len == 0)
			return 0;
		if (c->ops->buf_reserve(c, r, len) < 0)
			return NVL_NVME_SC_INTERNAL;
		req->iov[0].iov_base = r->buf;
		req->iov[0].iov_len = len;
		req->iovcnt = 1;
		req->data_len = len;
		return 0;
	}
	return NVL_NVME_DNR(NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
}

int
rdma_capsule_recv(struct rdma_conn *c, uint32_t idx, uint32_t len)
{
	const uint8_t *cap = c->rbuf + (size_t)idx * c->rsize;
	struct rdma_req *r;
	uint16_t st = 0;
	bool keep_rx = false;

	if (!rdma_conn_reading(c))
		return 0; /* closing or moving: the buffer is not reposted */
	if (len < sizeof(struct nvl_nvme_cmd) || len > c->rsize) {
		NVL_WARNLOG("rdma: %s qid %u: a capsule of %u bytes", c->peer, c->qid, len);
		rdma_conn_error(c, "malformed command capsule");
		return -1;
	}
	r = c->free_reqs;
	if (r == NULL) {
		NVL_WARNLOG("rdma: %s qid %u: more commands than the queue holds (%u)", c->peer,
			    c->qid, c->nreqs);
		rdma_conn_error(c, "more commands in flight than the queue size");
		return -1;
	}
	c->free_reqs = r->next_free;
	c->busy++;
	memset(&r->nvme, 0, offsetof(struct nvl_nvme_req, done));
	/* copy the SQE out of the receive buffer once; only the copy is used */
	memcpy(&r->nvme.cmd, cap, sizeof(r->nvme.cmd));
	r->nvme.ctrlr = c->tc ? &c->tc->nvme : NULL;
	r->nvme.qid = c->qid;
	r->nvme.done = rdma_req_done;
	r->nvme.transport_ctx = r;
	r->nvme.auth = c->auth;
	r->state = RR_EXEC;
	r->early_status = 0;
	r->len = 0;
	r->dir = NVL_NVME_XFER_NONE;
	r->rx = (int32_t)idx;
	c->cmds++;
	c->sqhd = (uint16_t)((c->sqhd + 1) % NVL_MAX(c->entries, 1u));

	if (r->nvme.cmd.opc == NVL_NVME_ADM_FABRICS) {
		const struct nvl_nvmf_cmd *f = (const void *)&r->nvme.cmd;

		if (f->fctype == NVL_NVMF_FCTYPE_CONNECT && c->state != RC_CONNECT_WAIT)
			st = NVL_NVME_DNR(NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
		else if (f->fctype != NVL_NVMF_FCTYPE_CONNECT && c->state == RC_CONNECT_WAIT)
			st = NVL_NVME_DNR(NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
	} else if (c->state == RC_CONNECT_WAIT) {
		st = NVL_NVME_DNR(NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
	}
	if (st == 0)
		st = nvl_rdma_sgl_decode(&r->nvme.cmd, len - (uint32_t)sizeof(struct nvl_nvme_cmd),
					 &r->sgl);
	if (st == 0)
		st = nvl_nvme_req_prepare(&r->nvme, rdma_map_capsule, r);
	if (st) {
		/* only an internal error may be retried */
		r->early_status = (st & 0x7ff) == NVL_NVME_SC_INTERNAL ? st : NVL_NVME_DNR(st);
		memset(&r->sgl, 0, sizeof(r->sgl));
	}
	keep_rx = r->early_status == 0 && r->sgl.kind == NVL_RDMA_SGL_INCAPSULE;
	if (!keep_rx)
		rdma_req_put_rx(c, r); /* the SQE is copied: the buffer can take the next one */
	if (r->early_status) {
		rdma_req_fail(r, r->early_status);
		return 0;
	}
	if (r->dir == NVL_NVME_XFER_H2C && r->sgl.kind == NVL_RDMA_SGL_KEYED && r->len) {
		r->state = RR_WAIT_READ;
		STAILQ_INSERT_TAIL(&c->read_wait, r, rd_link);
		rdma_reads_kick(c);
		return 0;
	}
	if (r->sgl.kind == NVL_RDMA_SGL_INCAPSULE)
		c->bytes_in += r->len;
	rdma_req_execute(c, r);
	return 0;
}
