/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/TCP initiator queue pair (see tcp_hostq.h). One owner thread; no
 * locks. Request slots are indexed by CID; a slot is reused only after its
 * completion was delivered and none of its PDUs is still queued.
 */
#include "host/tcp_hostq.h"
#include "proto/nvme_tcp.h"
#include "util/util.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HQ_STAGE_SIZE (16 * 1024)
#define HQ_HDR_BUF (sizeof(struct nvl_tcp_cmd) + NVL_TCP_DIGEST_LEN + 128)

enum hq_phase {
	HQ_TCP_CONNECT = 0,
	HQ_IC_WAIT,
	HQ_CONNECT_WAIT,
	HQ_READY,
	HQ_FAILED,
};

struct hq_req {
	uint16_t cid;
	bool busy;
	bool icd;                  /* data went in the capsule */
	uint8_t dir;
	uint32_t len;
	struct iovec iov[NVL_TCP_HQ_MAX_IOV];
	int iovcnt;
	uint32_t c2h_got;
	/* a Fabrics command (Authentication Receive: the controller returns up
	 * to AL bytes): a C2HData with SUCCESS may end before len */
	bool short_ok;
	uint32_t h2c_off, r2t_end;
	uint16_t ttag;
	bool r2t_active;
	uint16_t err_sc;           /* transport-detected error (data digest) */
	nvl_tcp_hq_cb cb;
	void *arg;
	struct nvl_tcp_tx tx;      /* the command capsule */
	struct nvl_tcp_tx h2c_tx;  /* the H2CData PDU being sent */
	uint8_t hdr[HQ_HDR_BUF];
	uint8_t h2c_hdr[sizeof(struct nvl_tcp_data) + NVL_TCP_DIGEST_LEN + 128];
	uint8_t ddgst[NVL_TCP_DIGEST_LEN], h2c_ddgst[NVL_TCP_DIGEST_LEN];
	struct hq_req *next_free;
};

struct nvl_tcp_hq {
	struct nvl_tcp_hq_opts o;
	char subnqn[NVL_NVME_NQN_LEN];
	char hostnqn[NVL_NVME_NQN_LEN];
	uint8_t hostid[16];
	int fd;
	enum hq_phase phase;
	struct nvl_tcp_rx rx;
	uint8_t *stage;
	uint32_t stage_off, stage_len;
	struct nvl_tcp_txq txq;
	struct hq_req *reqs;
	uint32_t nreqs;
	struct hq_req *free_reqs;
	uint32_t outstanding;
	struct hq_req *rx_req;
	bool hdgst, ddgst;
	uint32_t cpda_align;
	uint32_t maxh2cdata;
	uint16_t cntlid;
	uint32_t authreq;       /* the Connect response's AUTHREQ bits */
	struct nvl_nvmf_connect_data cdata;
	struct nvl_tcp_icreq icreq;
	struct nvl_tcp_tx ic_tx;
	int completions;
	char err[256];
	int err_no;
};

static void hq_fail(struct nvl_tcp_hq *q, int err_no, uint16_t sc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

int
nvl_tcp_hq_resolve(const char *host, const char *port, bool numeric_only,
		   struct nvl_tcp_hq_opts *o)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	int rc;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (numeric_only ? AI_NUMERICHOST : 0);
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0)
		return rc == EAI_NONAME || rc == EAI_AGAIN ? -EHOSTUNREACH : -EINVAL;
	if (ai->ai_addrlen > sizeof(o->addr)) {
		freeaddrinfo(ai);
		return -EINVAL;
	}
	memcpy(&o->addr, ai->ai_addr, ai->ai_addrlen);
	o->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

int
nvl_tcp_hq_create(const struct nvl_tcp_hq_opts *o, struct nvl_tcp_hq **out)
{
	struct nvl_tcp_hq *q;
	int one = 1, rc;

	if (o->entries < 2 || o->subnqn == NULL || o->hostnqn == NULL || o->addrlen == 0 ||
	    strlen(o->subnqn) >= NVL_NVME_NQN_LEN || strlen(o->hostnqn) >= NVL_NVME_NQN_LEN)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	q->o = *o;
	nvl_strlcpy(q->subnqn, o->subnqn, sizeof(q->subnqn));
	nvl_strlcpy(q->hostnqn, o->hostnqn, sizeof(q->hostnqn));
	if (o->hostid)
		memcpy(q->hostid, o->hostid, 16);
	q->o.subnqn = q->subnqn;
	q->o.hostnqn = q->hostnqn;
	q->o.hostid = q->hostid;
	q->nreqs = o->entries;
	q->reqs = calloc(q->nreqs, sizeof(*q->reqs));
	q->stage = malloc(HQ_STAGE_SIZE);
	if (q->reqs == NULL || q->stage == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	for (uint32_t i = q->nreqs; i-- > 0;) {
		q->reqs[i].cid = (uint16_t)i;
		q->reqs[i].next_free = q->free_reqs;
		q->free_reqs = &q->reqs[i];
	}
	nvl_tcp_txq_init(&q->txq);
	nvl_tcp_rx_init(&q->rx, true, NVL_MAX(o->max_data, 4096u));
	q->cpda_align = 4;
	q->fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (q->fd < 0) {
		rc = -errno;
		goto err;
	}
	setsockopt(q->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(q->fd, (const struct sockaddr *)&o->addr, o->addrlen) < 0 &&
	    errno != EINPROGRESS) {
		rc = -errno;
		close(q->fd);
		goto err;
	}
	q->phase = HQ_TCP_CONNECT;
	*out = q;
	return 0;
err:
	free(q->reqs);
	free(q->stage);
	free(q);
	return rc;
}

void
nvl_tcp_hq_destroy(struct nvl_tcp_hq *q)
{
	if (q == NULL)
		return;
	if (q->fd >= 0)
		close(q->fd);
	free(q->reqs);
	free(q->stage);
	free(q);
}

int
nvl_tcp_hq_fd(const struct nvl_tcp_hq *q)
{
	return q->fd;
}

enum nvl_tcp_hq_state
nvl_tcp_hq_state(const struct nvl_tcp_hq *q)
{
	return q->phase == HQ_READY ? NVL_TCP_HQ_READY
	       : q->phase == HQ_FAILED ? NVL_TCP_HQ_FAILED
				       : NVL_TCP_HQ_CONNECTING;
}

bool
nvl_tcp_hq_want_write(const struct nvl_tcp_hq *q)
{
	return q->phase == HQ_TCP_CONNECT || !nvl_tcp_txq_empty(&q->txq);
}

uint16_t
nvl_tcp_hq_cntlid(const struct nvl_tcp_hq *q)
{
	return q->cntlid;
}

uint32_t
nvl_tcp_hq_authreq(const struct nvl_tcp_hq *q)
{
	return q->authreq;
}

uint32_t
nvl_tcp_hq_outstanding(const struct nvl_tcp_hq *q)
{
	return q->outstanding;
}

const char *
nvl_tcp_hq_error(const struct nvl_tcp_hq *q)
{
	return q->err;
}

int
nvl_tcp_hq_errno(const struct nvl_tcp_hq *q)
{
	return q->err_no;
}

bool
nvl_tcp_hq_hdgst(const struct nvl_tcp_hq *q)
{
	return q->hdgst;
}

bool
nvl_tcp_hq_ddgst(const struct nvl_tcp_hq *q)
{
	return q->ddgst;
}

uint32_t
nvl_tcp_hq_maxh2cdata(const struct nvl_tcp_hq *q)
{
	return q->maxh2cdata;
}

/* ---- requests ----------------------------------------------------------------- */

/* The part [off, off + len) of r's data as iovecs. \return how many. */
static int
req_subiov(const struct hq_req *r, uint32_t off, uint32_t len, struct iovec *out, int max)
{
	int n = 0;

	for (int i = 0; i < r->iovcnt && len > 0 && n < max; i++) {
		size_t l = r->iov[i].iov_len;

		if (off >= l) {
			off -= (uint32_t)l;
			continue;
		}
		out[n].iov_base = (uint8_t *)r->iov[i].iov_base + off;
		out[n].iov_len = NVL_MIN(l - off, (size_t)len);
		len -= (uint32_t)out[n].iov_len;
		off = 0;
		n++;
	}
	return n;
}

static void
hq_req_complete(struct nvl_tcp_hq *q, struct hq_req *r, const struct nvl_nvme_cpl *in)
{
	struct nvl_nvme_cpl cpl = *in;
	nvl_tcp_hq_cb cb = r->cb;
	void *arg = r->arg;

	if (r->err_sc && (cpl.status >> 1) == 0)
		cpl.status = NVL_NVME_SC_TO_STATUS(r->err_sc);
	cpl.cid = r->cid;
	nvl_tcp_txq_remove(&q->txq, &r->tx);
	nvl_tcp_txq_remove(&q->txq, &r->h2c_tx);
	r->busy = false;
	r->cb = NULL;
	r->next_free = q->free_reqs;
	q->free_reqs = r;
	q->outstanding--;
	q->completions++;
	if (cb)
		cb(arg, &cpl);
}

static void
hq_fail(struct nvl_tcp_hq *q, int err_no, uint16_t sc, const char *fmt, ...)
{
	struct nvl_nvme_cpl cpl = { 0 };
	va_list ap;

	if (q->phase == HQ_FAILED)
		return;
	va_start(ap, fmt);
	vsnprintf(q->err, sizeof(q->err), fmt, ap);
	va_end(ap);
	q->err_no = err_no;
	q->phase = HQ_FAILED;
	shutdown(q->fd, SHUT_RDWR);
	nvl_tcp_txq_drop(&q->txq, NULL);
	cpl.status = NVL_NVME_SC_TO_STATUS(sc) | NVL_NVME_STATUS_DNR;
	for (uint32_t i = 0; i < q->nreqs; i++) {
		struct hq_req *r = &q->reqs[i];

		if (!r->busy)
			continue;
		r->err_sc = 0;
		hq_req_complete(q, r, &cpl);
	}
}

void
nvl_tcp_hq_fail(struct nvl_tcp_hq *q, const char *why, uint16_t sc)
{
	hq_fail(q, -ECONNABORTED, sc, "%s", why);
}

static void h2c_send_next(struct nvl_tcp_hq *q, struct hq_req *r);

static void
h2c_sent(void *owner, struct nvl_tcp_tx *tx)
{
	struct nvl_tcp_hq *q = owner;
	struct hq_req *r = container_of(tx, struct hq_req, h2c_tx);
	const struct nvl_tcp_data *h = (const void *)r->h2c_hdr;

	if (q == NULL || q->phase == HQ_FAILED || !r->busy)
		return;
	r->h2c_off = h->datao + h->datal;
	if (r->h2c_off < r->r2t_end)
		h2c_send_next(q, r);
	else
		r->r2t_active = false;
}

static void
h2c_send_next(struct nvl_tcp_hq *q, struct hq_req *r)
{
	struct nvl_tcp_data *h = (void *)r->h2c_hdr;
	struct nvl_tcp_tx *tx = &r->h2c_tx;
	uint32_t l = NVL_MIN(r->r2t_end - r->h2c_off, q->maxh2cdata);
	uint32_t pad, hneed;
	int n;

	memset(h, 0, sizeof(*h));
	pad = nvl_tcp_ch_init(&h->ch, NVL_TCP_PDU_H2C_DATA, q->hdgst, q->ddgst, l, q->cpda_align);
	if (r->h2c_off + l == r->r2t_end)
		h->ch.flags |= NVL_TCP_F_DATA_LAST;
	h->cccid = r->cid;
	h->ttag = r->ttag;
	h->datao = r->h2c_off;
	h->datal = l;
	hneed = sizeof(*h) + (q->hdgst ? NVL_TCP_DIGEST_LEN : 0);
	if (q->hdgst)
		nvl_tcp_hdgst_set(h);
	memset(r->h2c_hdr + hneed, 0, pad);
	tx->iov[0] = (struct iovec){ r->h2c_hdr, hneed + pad };
	n = req_subiov(r, r->h2c_off, l, &tx->iov[1], NVL_TCP_HQ_MAX_IOV);
	tx->iovcnt = 1 + n;
	if (q->ddgst) {
		uint32_t crc = nvl_tcp_ddgst(&tx->iov[1], n, l);

		memcpy(r->h2c_ddgst, &crc, sizeof(crc));
		tx->iov[tx->iovcnt++] = (struct iovec){ r->h2c_ddgst, NVL_TCP_DIGEST_LEN };
	}
	tx->done = h2c_sent;
	nvl_tcp_txq_push(&q->txq, tx);
}

static int
hq_submit(struct nvl_tcp_hq *q, struct nvl_nvme_cmd *cmd, const struct iovec *iov, int iovcnt,
       uint32_t len, uint8_t dir, nvl_tcp_hq_cb cb, void *arg)
{
	struct nvl_tcp_cmd *pdu;
	struct nvl_tcp_tx *tx;
	struct hq_req *r;
	uint32_t pad, hneed;
	size_t total = 0;

	if (iovcnt < 0 || iovcnt > NVL_TCP_HQ_MAX_IOV || len > q->o.max_data)
		return -EINVAL;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total < len)
		return -EINVAL;
	if (q->free_reqs == NULL || q->outstanding + 1 >= q->nreqs)
		return -EAGAIN;
	r = q->free_reqs;
	q->free_reqs = r->next_free;
	r->busy = true;
	r->dir = len ? dir : 0;
	r->len = len;
	r->short_ok = cmd->opc == NVL_NVME_ADM_FABRICS;
	r->iovcnt = iovcnt;
	memcpy(r->iov, iov, sizeof(*iov) * (size_t)iovcnt);
	r->c2h_got = 0;
	r->h2c_off = 0;
	r->r2t_end = 0;
	r->r2t_active = false;
	r->err_sc = 0;
	r->cb = cb;
	r->arg = arg;
	r->icd = dir == 1 /* H2C */ && len > 0 && len <= q->o.icd_max;
	q->outstanding++;

	cmd->cid = r->cid;
	cmd->flags = (uint8_t)((cmd->flags & ~0xc0u) | (NVL_NVME_PSDT_SGL_MPTR_CONTIG << 6));
	memset(&cmd->dptr, 0, sizeof(cmd->dptr));
	cmd->dptr.sgl1.length = len;
	cmd->dptr.sgl1.type = r->icd ? NVL_TCP_SGL_ICD : NVL_TCP_SGL_TRANSPORT;

	pdu = (void *)r->hdr;
	memset(pdu, 0, sizeof(*pdu));
	pad = nvl_tcp_ch_init(&pdu->ch, NVL_TCP_PDU_CAPSULE_CMD, q->hdgst, q->ddgst,
			      r->icd ? len : 0, q->cpda_align);
	pdu->ccsqe = *cmd;
	hneed = sizeof(*pdu) + (q->hdgst ? NVL_TCP_DIGEST_LEN : 0);
	if (q->hdgst)
		nvl_tcp_hdgst_set(pdu);
	memset(r->hdr + hneed, 0, pad);
	tx = &r->tx;
	tx->iov[0] = (struct iovec){ r->hdr, hneed + pad };
	tx->iovcnt = 1;
	if (r->icd) {
		int n = req_subiov(r, 0, len, &tx->iov[1], NVL_TCP_HQ_MAX_IOV);

		tx->iovcnt += n;
		if (q->ddgst) {
			uint32_t crc = nvl_tcp_ddgst(&tx->iov[1], n, len);

			memcpy(r->ddgst, &crc, sizeof(crc));
			tx->iov[tx->iovcnt++] = (struct iovec){ r->ddgst, NVL_TCP_DIGEST_LEN };
		}
	}
	tx->done = NULL;
	nvl_tcp_txq_push(&q->txq, tx);
	return 0;
}

int
nvl_tcp_hq_submit(struct nvl_tcp_hq *q, struct nvl_nvme_cmd *cmd, const struct iovec *iov,
		  int iovcnt, uint32_t len, uint8_t dir, nvl_tcp_hq_cb cb, void *arg)
{
	if (q->phase != HQ_READY)
		return -ENOTCONN;
	return hq_submit(q, cmd, iov, iovcnt, len, dir, cb, arg);
}

/* ---- connect ----------------------------------------------------------------------- */

static void
connect_done(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct nvl_tcp_hq *q = arg;
	uint16_t sc = (cpl->status >> 1) & 0x7ff;

	if (q->phase != HQ_CONNECT_WAIT)
		return;
	if (sc == 0) {
		q->cntlid = (uint16_t)(cpl->cdw0 & 0xffff);
		q->authreq = cpl->cdw0 & (NVL_NVMF_CONNECT_AUTHREQ_ATR | NVL_NVMF_CONNECT_AUTHREQ_ASCR);
		q->phase = HQ_READY;
		return;
	}
	if (sc == NVL_NVME_SC_CONNECT_INVALID_HOST)
		hq_fail(q, -EACCES, NVL_NVME_SC_ABORTED_SQ_DELETION,
			"Connect refused: host %s not allowed on %s", q->hostnqn, q->subnqn);
	else if (sc == NVL_NVME_SC_CONNECT_INVALID_PARAM &&
		 (((cpl->cdw0 & (1u << 16)) &&
		   (cpl->cdw0 & 0xffff) == offsetof(struct nvl_nvmf_connect_data, subnqn)) ||
		  /* nvlendd before 2026-12-07 put IPO in 31:16 and IATTR in bit 0 */
		  ((cpl->cdw0 & 1) &&
		   (cpl->cdw0 >> 16) == offsetof(struct nvl_nvmf_connect_data, subnqn))))
		hq_fail(q, -ENODEV, NVL_NVME_SC_ABORTED_SQ_DELETION,
			"Connect refused: no subsystem %s at this address", q->subnqn);
	else if (sc == NVL_NVME_SC_CONNECT_RESTART_DISCOVERY)
		hq_fail(q, -EADDRNOTAVAIL, NVL_NVME_SC_ABORTED_SQ_DELETION,
			"Connect refused: %s is not offered at this address (restart discovery)",
			q->subnqn);
	else if (sc == NVL_NVME_SC_CONNECT_CTRL_BUSY)
		hq_fail(q, -EBUSY, NVL_NVME_SC_ABORTED_SQ_DELETION, "Connect refused: busy");
	else
		/* -EINVAL is the caller's own mistake (a bad URI); a refusal is remote */
		hq_fail(q, -EREMOTEIO, NVL_NVME_SC_ABORTED_SQ_DELETION,
			"Connect (qid %u) refused with NVMe status 0x%03x (%s, IPO %u)", q->o.qid,
			sc,
			sc == NVL_NVME_SC_CONNECT_INVALID_PARAM	      ? "Connect Invalid Parameters"
			: sc == NVL_NVME_SC_CONNECT_INCOMPATIBLE_FORMAT ? "Incompatible Format"
									: "not a Connect status",
			cpl->cdw0 & 0xffff);
}

static void
send_connect(struct nvl_tcp_hq *q)
{
	struct nvl_nvmf_connect_cmd cc = { 0 };
	struct iovec iov = { &q->cdata, sizeof(q->cdata) };

	cc.opc = NVL_NVME_ADM_FABRICS;
	cc.fctype = NVL_NVMF_FCTYPE_CONNECT;
	cc.recfmt = 0;
	cc.qid = q->o.qid;
	cc.sqsize = (uint16_t)(q->o.entries - 1);
	cc.cattr = q->o.disable_sqflow ? NVL_NVMF_CATTR_DISABLE_SQFLOW : 0;
	cc.kato = q->o.qid == 0 ? q->o.kato_ms : 0;
	memset(&q->cdata, 0, sizeof(q->cdata));
	memcpy(q->cdata.hostid, q->hostid, 16);
	q->cdata.cntlid = q->o.cntlid;
	nvl_strlcpy(q->cdata.subnqn, q->subnqn, sizeof(q->cdata.subnqn));
	nvl_strlcpy(q->cdata.hostnqn, q->hostnqn, sizeof(q->cdata.hostnqn));
	q->phase = HQ_CONNECT_WAIT;
	if (hq_submit(q, (struct nvl_nvme_cmd *)&cc, &iov, 1, sizeof(q->cdata), 1, connect_done, q) < 0)
		hq_fail(q, -ENOMEM, NVL_NVME_SC_INTERNAL, "cannot queue the Connect command");
}

static void
send_icreq(struct nvl_tcp_hq *q)
{
	struct nvl_tcp_icreq *ic = &q->icreq;

	memset(ic, 0, sizeof(*ic));
	ic->ch.pdu_type = NVL_TCP_PDU_ICREQ;
	ic->ch.hlen = sizeof(*ic);
	ic->ch.plen = sizeof(*ic);
	ic->pfv = NVL_TCP_PFV_1_0;
	ic->hpda = 0; /* any dword: we receive into the caller's buffers directly */
	ic->dgst = (q->o.hdgst ? NVL_TCP_DGST_HDR : 0) | (q->o.ddgst ? NVL_TCP_DGST_DATA : 0);
	ic->maxr2t = 0; /* one R2T outstanding per command */
	q->ic_tx.iov[0] = (struct iovec){ ic, sizeof(*ic) };
	q->ic_tx.iovcnt = 1;
	q->ic_tx.done = NULL;
	nvl_tcp_txq_push(&q->txq, &q->ic_tx);
	q->phase = HQ_IC_WAIT;
}

/* ---- receive ------------------------------------------------------------------------ */

static int
fatal(struct nvl_tcp_err *err, uint16_t fes, uint32_t fei, const char *why)
{
	err->fes = fes;
	err->fei = fei;
	err->why = why;
	return -1;
}

static struct hq_req *
req_by_cid(struct nvl_tcp_hq *q, uint16_t cid)
{
	if (cid >= q->nreqs || !q->reqs[cid].busy)
		return NULL;
	return &q->reqs[cid];
}

static int
hq_rx_on_header(void *ctx, struct nvl_tcp_rx *rx, struct nvl_tcp_err *err)
{
	struct nvl_tcp_hq *q = ctx;
	uint8_t type = rx->hdr.ch.pdu_type;

	if (type == NVL_TCP_PDU_ICRESP || type == NVL_TCP_PDU_C2H_TERM)
		return 0;
	if (q->phase != HQ_CONNECT_WAIT && q->phase != HQ_READY)
		return fatal(err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0, "PDU before ICResp");
	if (type == NVL_TCP_PDU_C2H_DATA) {
		const struct nvl_tcp_data *h = (const void *)rx->hdr.raw;
		struct hq_req *r = req_by_cid(q, h->cccid);
		struct iovec iov[NVL_TCP_RX_SINK_IOV];
		int n;

		if (r == NULL || r->dir != 2 /* C2H */)
			return fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD,
				     offsetof(struct nvl_tcp_data, cccid), "C2HData for no read");
		if (h->datal != rx->data_len)
			return fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD,
				     offsetof(struct nvl_tcp_data, datal), "DATAL does not match PLEN");
		if (h->datao != r->c2h_got || (uint64_t)h->datao + h->datal > r->len)
			return fatal(err, NVL_TCP_FES_DATA_OUT_OF_RANGE,
				     offsetof(struct nvl_tcp_data, datao), "C2HData out of range");
		if ((rx->hdr.ch.flags & NVL_TCP_F_DATA_SUCCESS) &&
		    !(rx->hdr.ch.flags & NVL_TCP_F_DATA_LAST))
			return fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD, 1,
				     "SUCCESS without LAST_PDU");
		n = req_subiov(r, h->datao, h->datal, iov, NVL_TCP_RX_SINK_IOV);
		nvl_tcp_rx_set_sink(rx, iov, n);
		q->rx_req = r;
		return 0;
	}
	if (type == NVL_TCP_PDU_R2T) {
		const struct nvl_tcp_r2t *t = (const void *)rx->hdr.raw;
		struct hq_req *r = req_by_cid(q, t->cccid);

		if (r == NULL || r->dir != 1 /* H2C */ || r->icd)
			return fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD,
				     offsetof(struct nvl_tcp_r2t, cccid), "R2T for no write");
		if (r->r2t_active || t->r2tl == 0 || t->r2to != r->h2c_off ||
		    (uint64_t)t->r2to + t->r2tl > r->len)
			return fatal(err, NVL_TCP_FES_DATA_OUT_OF_RANGE,
				     offsetof(struct nvl_tcp_r2t, r2to), "R2T out of range");
		return 0;
	}
	if (type == NVL_TCP_PDU_CAPSULE_RESP) {
		const struct nvl_tcp_resp *p = (const void *)rx->hdr.raw;
		struct hq_req *r = req_by_cid(q, p->rccqe.cid);

		if (r == NULL)
			return fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD,
				     sizeof(struct nvl_tcp_common_hdr) +
					     offsetof(struct nvl_nvme_cpl, cid),
				     "response for no command");
		if (r->tx.queued && r->tx.sent)
			return fatal(err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0,
				     "response before its command was sent");
		return 0;
	}
	return fatal(err, NVL_TCP_FES_INVALID_HEADER_FIELD, 0, "unexpected PDU type");
}

static int
rx_icresp(struct nvl_tcp_hq *q, const struct nvl_tcp_icresp *p, struct nvl_tcp_err *err)
{
	bool h = (p->dgst & NVL_TCP_DGST_HDR) != 0, d = (p->dgst & NVL_TCP_DGST_DATA) != 0;

	if (q->phase != HQ_IC_WAIT)
		return fatal(err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0, "unexpected ICResp");
	if (p->pfv != NVL_TCP_PFV_1_0)
		return fatal(err, NVL_TCP_FES_UNSUPPORTED_PARAMETER,
			     offsetof(struct nvl_tcp_icresp, pfv), "unsupported PDU format version");
	if (p->cpda > NVL_TCP_MAX_HPDA)
		return fatal(err, NVL_TCP_FES_UNSUPPORTED_PARAMETER,
			     offsetof(struct nvl_tcp_icresp, cpda), "CPDA out of range");
	if ((h && !q->o.hdgst) || (d && !q->o.ddgst))
		return fatal(err, NVL_TCP_FES_UNSUPPORTED_PARAMETER,
			     offsetof(struct nvl_tcp_icresp, dgst), "digest we did not ask for");
	if (p->maxh2cdata < NVL_TCP_MIN_MAXH2CDATA || p->maxh2cdata % 4)
		return fatal(err, NVL_TCP_FES_UNSUPPORTED_PARAMETER,
			     offsetof(struct nvl_tcp_icresp, maxh2cdata), "MAXH2CDATA invalid");
	q->hdgst = h;
	q->ddgst = d;
	q->rx.hdgst = h;
	q->rx.ddgst = d;
	q->cpda_align = ((uint32_t)p->cpda + 1) * 4;
	q->maxh2cdata = p->maxh2cdata;
	send_connect(q);
	return 0;
}

static int
hq_rx_on_pdu(void *ctx, struct nvl_tcp_rx *rx, bool ddgst_ok, struct nvl_tcp_err *err)
{
	struct nvl_tcp_hq *q = ctx;

	switch (rx->hdr.ch.pdu_type) {
	case NVL_TCP_PDU_ICRESP:
		return rx_icresp(q, (const void *)rx->hdr.raw, err);
	case NVL_TCP_PDU_CAPSULE_RESP: {
		const struct nvl_tcp_resp *p = (const void *)rx->hdr.raw;

		hq_req_complete(q, &q->reqs[p->rccqe.cid], &p->rccqe);
		break;
	}
	case NVL_TCP_PDU_C2H_DATA: {
		const struct nvl_tcp_data *h = (const void *)rx->hdr.raw;
		struct hq_req *r = q->rx_req;

		q->rx_req = NULL;
		r->c2h_got += h->datal;
		if (!ddgst_ok)
			r->err_sc = NVL_NVME_SC_DATA_TRANSFER_ERROR;
		if (rx->hdr.ch.flags & NVL_TCP_F_DATA_SUCCESS) {
			struct nvl_nvme_cpl cpl = { 0 };

			if (r->c2h_got != r->len && !r->short_ok)
				return fatal(err, NVL_TCP_FES_DATA_OUT_OF_RANGE,
					     offsetof(struct nvl_tcp_data, datal),
					     "SUCCESS before all the data");
			hq_req_complete(q, r, &cpl);
		}
		break;
	}
	case NVL_TCP_PDU_R2T: {
		const struct nvl_tcp_r2t *t = (const void *)rx->hdr.raw;
		struct hq_req *r = &q->reqs[t->cccid];

		r->r2t_active = true;
		r->ttag = t->ttag;
		r->r2t_end = t->r2to + t->r2tl;
		h2c_send_next(q, r);
		break;
	}
	case NVL_TCP_PDU_C2H_TERM: {
		const struct nvl_tcp_term_req *t = (const void *)rx->hdr.raw;

		hq_fail(q, -EPROTO, NVL_NVME_SC_ABORTED_SQ_DELETION,
			"the controller terminated the connection: %s (FES 0x%x, FEI %u)",
			nvl_tcp_fes_str(t->fes), t->fes, t->fei);
		return 1;
	}
	default:
		break;
	}
	return q->phase == HQ_FAILED ? 1 : 0;
}

static const struct nvl_tcp_rx_ops g_hq_rx_ops = {
	.on_header = hq_rx_on_header,
	.on_pdu = hq_rx_on_pdu,
};

static void
hq_protocol_error(struct nvl_tcp_hq *q, const struct nvl_tcp_err *e)
{
	uint8_t term[sizeof(struct nvl_tcp_term_req) + NVL_TCP_TERM_MAX_DATA];
	size_t n, bad = NVL_MIN((size_t)q->rx.hgot, (size_t)NVL_TCP_TERM_MAX_DATA);

	if (q->phase == HQ_FAILED)
		return;
	/* best effort: tell the controller why (H2CTermReq), then close */
	n = nvl_tcp_term_build(term, false, e->fes, e->fei, q->rx.hdr.raw, bad);
	(void)!send(q->fd, term, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	hq_fail(q, -EPROTO, NVL_NVME_SC_TRANSIENT_TRANSPORT_ERROR,
		"protocol error from the controller: %s (%s)", e->why ? e->why : "?",
		nvl_tcp_fes_str(e->fes));
}

static int
hq_parse(struct nvl_tcp_hq *q)
{
	struct nvl_tcp_err err = { 0 };
	ssize_t n = nvl_tcp_rx_feed(&q->rx, q->stage + q->stage_off, q->stage_len - q->stage_off,
				    &g_hq_rx_ops, q, &err);

	if (n < 0) {
		hq_protocol_error(q, &err);
		return -1;
	}
	q->stage_off += (uint32_t)n;
	return 0;
}

static void
hq_recv(struct nvl_tcp_hq *q)
{
	for (int budget = 16; budget > 0 && q->phase != HQ_FAILED; budget--) {
		struct iovec iov[NVL_TCP_RX_SINK_IOV + 1];
		struct nvl_tcp_err err = { 0 };
		size_t dlen = 0, want;
		ssize_t n;
		int nd;

		if (q->stage_off < q->stage_len) {
			if (hq_parse(q) < 0 || q->stage_off < q->stage_len)
				return;
			continue;
		}
		q->stage_off = q->stage_len = 0;
		nd = nvl_tcp_rx_direct(&q->rx, iov, NVL_TCP_RX_SINK_IOV, &dlen);
		if (dlen < 512)
			nd = 0;
		if (nd == 0) {
			want = HQ_STAGE_SIZE;
			n = recv(q->fd, q->stage, HQ_STAGE_SIZE, MSG_DONTWAIT);
		} else {
			struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)nd + 1 };

			iov[nd].iov_base = q->stage;
			iov[nd].iov_len = HQ_STAGE_SIZE;
			want = dlen + HQ_STAGE_SIZE;
			n = recvmsg(q->fd, &mh, MSG_DONTWAIT);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				hq_fail(q, -ECONNRESET, NVL_NVME_SC_ABORTED_SQ_DELETION,
					"connection lost: %s", strerror(errno));
			return;
		}
		if (n == 0) {
			hq_fail(q, -ECONNRESET, NVL_NVME_SC_ABORTED_SQ_DELETION,
				"the controller closed the connection");
			return;
		}
		if (nd) {
			size_t k = NVL_MIN((size_t)n, dlen);

			if (nvl_tcp_rx_direct_done(&q->rx, k, &g_hq_rx_ops, q, &err) < 0) {
				hq_protocol_error(q, &err);
				return;
			}
			q->stage_len = (uint32_t)((size_t)n - k);
		} else {
			q->stage_len = (uint32_t)n;
		}
		if (q->stage_len && hq_parse(q) < 0)
			return;
		if ((size_t)n < want)
			return;
	}
}

static void
hq_flush(struct nvl_tcp_hq *q)
{
	if (q->phase == HQ_FAILED || nvl_tcp_txq_empty(&q->txq))
		return;
	if (nvl_tcp_txq_flush(&q->txq, q->fd, q) < 0)
		hq_fail(q, -ECONNRESET, NVL_NVME_SC_ABORTED_SQ_DELETION, "send failed: %s",
			strerror(errno));
}

int
nvl_tcp_hq_process(struct nvl_tcp_hq *q)
{
	q->completions = 0;
	if (q->phase == HQ_TCP_CONNECT) {
		struct pollfd p = { .fd = q->fd, .events = POLLOUT };
		int e = 0;
		socklen_t el = sizeof(e);

		if (poll(&p, 1, 0) <= 0)
			return 0;
		if (getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
			e = errno;
		if (e != 0) {
			hq_fail(q, -e, NVL_NVME_SC_ABORTED_SQ_DELETION, "cannot connect: %s",
				strerror(e));
			return q->err_no;
		}
		send_icreq(q);
	}
	hq_flush(q);
	hq_recv(q);
	hq_flush(q);
	if (q->phase == HQ_FAILED)
		return q->completions ? q->completions : q->err_no;
	return q->completions;
}
