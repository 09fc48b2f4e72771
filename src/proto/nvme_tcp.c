/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/TCP PDU receive parser and encoders (see nvme_tcp.h). Pure functions
 * over caller-owned state; no locking (one connection, one thread).
 *
 * Validation order for each received PDU (NVMe/TCP 1.0, 3.6 and 3.7):
 *   1. common header: type known and allowed in this direction and phase,
 *      HLEN exactly the type's, digest flags as negotiated, PLEN/PDO
 *      consistent (data after the header and its digest, aligned to our
 *      PDA, a data digest when negotiated, a bounded data length);
 *   2. the rest of the header, then its CRC32C;
 *   3. the owner's PDU-specific checks (on_header), which also say where
 *      the data goes;
 *   4. padding, data, data digest; then on_pdu.
 * Any violation stops the parser for good with the FES/FEI the
 * termination request must carry.
 */
#include "proto/nvme_tcp.h"
#include "util/util.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

uint8_t
nvl_tcp_pdu_hlen(uint8_t type)
{
	switch (type) {
	case NVL_TCP_PDU_ICREQ: return sizeof(struct nvl_tcp_icreq);
	case NVL_TCP_PDU_ICRESP: return sizeof(struct nvl_tcp_icresp);
	case NVL_TCP_PDU_H2C_TERM:
	case NVL_TCP_PDU_C2H_TERM: return sizeof(struct nvl_tcp_term_req);
	case NVL_TCP_PDU_CAPSULE_CMD: return sizeof(struct nvl_tcp_cmd);
	case NVL_TCP_PDU_CAPSULE_RESP: return sizeof(struct nvl_tcp_resp);
	case NVL_TCP_PDU_H2C_DATA:
	case NVL_TCP_PDU_C2H_DATA: return sizeof(struct nvl_tcp_data);
	case NVL_TCP_PDU_R2T: return sizeof(struct nvl_tcp_r2t);
	default: return 0;
	}
}

const char *
nvl_tcp_pdu_name(uint8_t type)
{
	switch (type) {
	case NVL_TCP_PDU_ICREQ: return "ICReq";
	case NVL_TCP_PDU_ICRESP: return "ICResp";
	case NVL_TCP_PDU_H2C_TERM: return "H2CTermReq";
	case NVL_TCP_PDU_C2H_TERM: return "C2HTermReq";
	case NVL_TCP_PDU_CAPSULE_CMD: return "CapsuleCmd";
	case NVL_TCP_PDU_CAPSULE_RESP: return "CapsuleResp";
	case NVL_TCP_PDU_H2C_DATA: return "H2CData";
	case NVL_TCP_PDU_C2H_DATA: return "C2HData";
	case NVL_TCP_PDU_R2T: return "R2T";
	default: return "unknown PDU";
	}
}

const char *
nvl_tcp_fes_str(uint16_t fes)
{
	switch (fes) {
	case NVL_TCP_FES_INVALID_HEADER_FIELD: return "invalid PDU header field";
	case NVL_TCP_FES_PDU_SEQUENCE_ERROR: return "PDU sequence error";
	case NVL_TCP_FES_HDGST_ERROR: return "header digest error";
	case NVL_TCP_FES_DATA_OUT_OF_RANGE: return "data transfer out of range";
	case NVL_TCP_FES_DATA_LIMIT_EXCEEDED: return "data transfer limit exceeded";
	case NVL_TCP_FES_UNSUPPORTED_PARAMETER: return "unsupported parameter";
	default: return "unknown fatal error";
	}
}

void
nvl_tcp_rx_init(struct nvl_tcp_rx *rx, bool host, uint32_t max_data)
{
	memset(rx, 0, sizeof(*rx));
	rx->host = host;
	rx->align = 4;
	rx->max_data = max_data;
	rx->state = NVL_TCP_RX_CH;
}

void
nvl_tcp_rx_set_sink(struct nvl_tcp_rx *rx, const struct iovec *iov, int iovcnt)
{
	if (iovcnt > NVL_TCP_RX_SINK_IOV)
		iovcnt = NVL_TCP_RX_SINK_IOV;
	memcpy(rx->sink, iov, sizeof(*iov) * (size_t)iovcnt);
	rx->sinkcnt = iovcnt;
	rx->sidx = 0;
	rx->soff = 0;
}

static int
rx_fail(struct nvl_tcp_rx *rx, struct nvl_tcp_err *err, uint16_t fes, uint32_t fei,
	const char *why)
{
	rx->state = NVL_TCP_RX_ERROR;
	err->fes = fes;
	err->fei = fei;
	err->why = why;
	return -1;
}

static bool
type_is_c2h(uint8_t t)
{
	return t == NVL_TCP_PDU_ICRESP || t == NVL_TCP_PDU_C2H_TERM ||
	       t == NVL_TCP_PDU_CAPSULE_RESP || t == NVL_TCP_PDU_C2H_DATA || t == NVL_TCP_PDU_R2T;
}

#define FEI_FLAGS 1
#define FEI_HLEN 2
#define FEI_PDO 3
#define FEI_PLEN 4

/* Step 1: the 8-byte common header (see the file comment). */
static int
ch_check(struct nvl_tcp_rx *rx, struct nvl_tcp_err *err)
{
	const struct nvl_tcp_common_hdr *ch = &rx->hdr.ch;
	uint8_t type = ch->pdu_type, hlen = nvl_tcp_pdu_hlen(type);
	bool ic = type == NVL_TCP_PDU_ICREQ || type == NVL_TCP_PDU_ICRESP;
	bool term = type == NVL_TCP_PDU_H2C_TERM || type == NVL_TCP_PDU_C2H_TERM;
	bool hd, has_data;
	uint32_t plen = ch->plen, dd;

	if (hlen == 0 || type_is_c2h(type) != rx->host)
		return rx_fail(rx, err, NVL_TCP_FES_INVALID_HEADER_FIELD, 0,
			       "PDU type not valid in this direction");
	if (ic == rx->ic_done && !term)
		return rx_fail(rx, err, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0,
			       ic ? "second ICReq/ICResp" : "PDU before connection initialization");
	if (ch->hlen != hlen)
		return rx_fail(rx, err, NVL_TCP_FES_INVALID_HEADER_FIELD, FEI_HLEN, "bad HLEN");
	hd = !ic && !term && rx->hdgst;
	if (!!(ch->flags & NVL_TCP_F_HDGSTF) != hd)
		return rx_fail(rx, err, NVL_TCP_FES_INVALID_HEADER_FIELD, FEI_FLAGS,
			       "header digest flag does not match the negotiated digests");
	rx->hneed = hlen + (hd ? NVL_TCP_DIGEST_LEN : 0);
	rx->pad_left = 0;
	rx->data_len = 0;
	rx->has_ddgst = false;
	if (plen < rx->hneed)
		return rx_fail(rx, err, NVL_TCP_FES_INVALID_HEADER_FIELD, FEI_PLEN,
			       "PLEN shorter than the header");
	if (ic) {
		if (plen != hlen || ch->pdo != 0 || (ch->flags & NVL_TCP_F_DDGSTF))
			return rx_fail(rx, err, NVL_TCP_FES_INVALID_HEADER_FIELD,
				       plen != hlen ? FEI_PLEN : ch->pdo ? FEI_PDO : FEI_FLAGS,
				       "malformed ICReq/ICResp header");
		return 0;
	}
	if (term) {
		/* the bad header it echoes is its only "data": no PDO, no digest */
		if (plen > (uint32_t)hlen + NVL_TCP_TERM_MAX_DATA)
			return rx_fail(rx, err, NVL_TCP_FES_INVALID_HEADER_FIELD, FEI_PLEN,
				       "termination request too long");
		if (ch->flags & NVL_TCP_F_DDGSTF)
			return rx_fail(rx, err, NVL_TCP_FES_INVALID_HEADER_FIELD, FEI_FLAGS,
				       "digest flag on a termination request");
		rx->data_len = plen - hlen;
		return 0;
	}
	if (type == NVL_TCP_PDU_CAPSULE_RESP || type == NVL_TCP_PDU_R2T) {
		if (plen != rx->hneed || (ch->flags & NVL_TCP_F_DDGSTF))
			return rx_fail(rx, err, NVL_TCP_FES_INVALID_HEADER_FIELD,
				       plen != rx->hneed ? FEI_PLEN : FEI_FLAGS,
				       "data on a PDU that carries none");
		return 0;
	}
	/* CapsuleCmd (in-capsule data optional), H2CData, C2HData (data required) */
	has_data = plen > rx->hneed;
	if (!has_data) {
		if (type != NVL_TCP_PDU_CAPSULE_CMD)
			return rx_fail(rx, err, NVL_TCP_FES_INVALID_HEADER_FIELD, FEI_PLEN,
				       "data PDU without data");
		if (ch->flags & NVL_TCP_F_DDGSTF)
			return rx_fail(rx, err, NVL_TCP_FES_INVALID_HEADER_FIELD, FEI_FLAGS,
				       "data digest flag without data");
		return 0;
	}
	if (!!(ch->flags & NVL_TCP_F_DDGSTF) != rx->ddgst)
		return rx_fail(rx, err, NVL_TCP_FES_INVALID_HEADER_FIELD, FEI_FLAGS,
			       "data digest flag does not match the negotiated digests");
	dd = rx->ddgst ? NVL_TCP_DIGEST_LEN : 0;
	if (ch->pdo < rx->hneed || ch->pdo % rx->align != 0)
		return rx_fail(rx, err, NVL_TCP_FES_INVALID_HEADER_FIELD, FEI_PDO,
			       "PDO inside the header or not aligned to our PDA");
	if (plen <= (uint32_t)ch->pdo + dd)
		return rx_fail(rx, err, NVL_TCP_FES_INVALID_HEADER_FIELD, FEI_PLEN,
			       "PLEN does not cover PDO and the data digest");
	rx->data_len = plen - ch->pdo - dd;
	if (rx->data_len > rx->max_data)
		return rx_fail(rx, err, NVL_TCP_FES_DATA_LIMIT_EXCEEDED, FEI_PLEN,
			       "PDU data larger than the negotiated limits");
	rx->pad_left = ch->pdo - rx->hneed;
	rx->has_ddgst = rx->ddgst;
	return 0;
}

static void
rx_next(struct nvl_tcp_rx *rx)
{
	rx->state = NVL_TCP_RX_CH;
	rx->hgot = 0;
	rx->hneed = 0;
	rx->pad_left = 0;
	rx->data_len = 0;
	rx->data_got = 0;
	rx->has_ddgst = false;
	rx->sinkcnt = 0;
	rx->sidx = 0;
	rx->soff = 0;
	rx->ddgot = 0;
}

/* The PDU is complete: hand it over, then get ready for the next one. */
static int
rx_complete(struct nvl_tcp_rx *rx, bool ddgst_ok, const struct nvl_tcp_rx_ops *ops, void *ctx,
	    struct nvl_tcp_err *err)
{
	int rc;

	rx->pdus++;
	if (rx->hdr.ch.pdu_type == NVL_TCP_PDU_ICREQ || rx->hdr.ch.pdu_type == NVL_TCP_PDU_ICRESP)
		rx->ic_done = true;
	rc = ops->on_pdu(ctx, rx, ddgst_ok, err);
	if (rc < 0) {
		rx->state = NVL_TCP_RX_ERROR;
		return -1;
	}
	if (rx->state != NVL_TCP_RX_ERROR)
		rx_next(rx);
	return rc;
}

/* After the header (and its digest) arrived. */
static int
rx_header_done(struct nvl_tcp_rx *rx, const struct nvl_tcp_rx_ops *ops, void *ctx,
	       struct nvl_tcp_err *err)
{
	const struct nvl_tcp_common_hdr *ch = &rx->hdr.ch;

	if (rx->hneed > ch->hlen) {
		uint32_t want = nvl_crc32c(rx->hdr.raw, ch->hlen), got;

		memcpy(&got, rx->hdr.raw + ch->hlen, sizeof(got));
		if (want != got)
			return rx_fail(rx, err, NVL_TCP_FES_HDGST_ERROR, 0, "header digest mismatch");
	}
	rx->sinkcnt = 0;
	rx->crc = 0xffffffffu;
	if (ops->on_header(ctx, rx, err) < 0) {
		rx->state = NVL_TCP_RX_ERROR;
		return -1;
	}
	if (rx->pad_left)
		rx->state = NVL_TCP_RX_PAD;
	else if (rx->data_len)
		rx->state = NVL_TCP_RX_DATA;
	else
		return rx_complete(rx, true, ops, ctx, err);
	return 0;
}

/* Data bytes p..p+n land in the sinks (beyond the sinks: dropped). */
static void
rx_data_copy(struct nvl_tcp_rx *rx, const uint8_t *p, size_t n)
{
	if (rx->has_ddgst)
		rx->crc = nvl_crc32c_update(rx->crc, p, n);
	rx->data_got += (uint32_t)n;
	while (n > 0 && rx->sidx < rx->sinkcnt) {
		struct iovec *s = &rx->sink[rx->sidx];
		size_t k = NVL_MIN(n, s->iov_len - rx->soff);

		memcpy((uint8_t *)s->iov_base + rx->soff, p, k);
		p += k;
		n -= k;
		rx->soff += k;
		if (rx->soff == s->iov_len) {
			rx->sidx++;
			rx->soff = 0;
		}
	}
}

static int
rx_data_done(struct nvl_tcp_rx *rx, const struct nvl_tcp_rx_ops *ops, void *ctx,
	     struct nvl_tcp_err *err)
{
	if (rx->has_ddgst) {
		rx->state = NVL_TCP_RX_DDGST;
		return 0;
	}
	return rx_complete(rx, true, ops, ctx, err);
}

ssize_t
nvl_tcp_rx_feed(struct nvl_tcp_rx *rx, const uint8_t *buf, size_t len,
		const struct nvl_tcp_rx_ops *ops, void *ctx, struct nvl_tcp_err *err)
{
	size_t off = 0;
	int rc;

	while (off < len) {
		size_t n, avail = len - off;

		switch (rx->state) {
		case NVL_TCP_RX_CH:
			n = NVL_MIN(avail, sizeof(struct nvl_tcp_common_hdr) - rx->hgot);
			memcpy(rx->hdr.raw + rx->hgot, buf + off, n);
			rx->hgot += (uint32_t)n;
			off += n;
			if (rx->hgot < sizeof(struct nvl_tcp_common_hdr))
				break;
			if (ch_check(rx, err) < 0)
				return -1;
			/* every PDU header is longer than the common header */
			rx->state = NVL_TCP_RX_PSH;
			break;
		case NVL_TCP_RX_PSH:
			n = NVL_MIN(avail, (size_t)(rx->hneed - rx->hgot));
			memcpy(rx->hdr.raw + rx->hgot, buf + off, n);
			rx->hgot += (uint32_t)n;
			off += n;
			if (rx->hgot < rx->hneed)
				break;
			rc = rx_header_done(rx, ops, ctx, err);
			if (rc < 0)
				return -1;
			if (rc > 0)
				return (ssize_t)off;
			break;
		case NVL_TCP_RX_PAD:
			n = NVL_MIN(avail, (size_t)rx->pad_left);
			rx->pad_left -= (uint32_t)n;
			off += n;
			if (rx->pad_left == 0)
				rx->state = NVL_TCP_RX_DATA;
			break;
		case NVL_TCP_RX_DATA:
			n = NVL_MIN(avail, (size_t)(rx->data_len - rx->data_got));
			rx_data_copy(rx, buf + off, n);
			off += n;
			if (rx->data_got < rx->data_len)
				break;
			rc = rx_data_done(rx, ops, ctx, err);
			if (rc < 0)
				return -1;
			if (rc > 0)
				return (ssize_t)off;
			break;
		case NVL_TCP_RX_DDGST: {
			uint32_t got;

			n = NVL_MIN(avail, (size_t)(NVL_TCP_DIGEST_LEN - rx->ddgot));
			memcpy(rx->dd + rx->ddgot, buf + off, n);
			rx->ddgot += (uint32_t)n;
			off += n;
			if (rx->ddgot < NVL_TCP_DIGEST_LEN)
				break;
			memcpy(&got, rx->dd, sizeof(got));
			rc = rx_complete(rx, got == (rx->crc ^ 0xffffffffu), ops, ctx, err);
			if (rc < 0)
				return -1;
			if (rc > 0)
				return (ssize_t)off;
			break;
		}
		case NVL_TCP_RX_ERROR:
		default:
			return -1;
		}
	}
	return (ssize_t)off;
}

int
nvl_tcp_rx_direct(const struct nvl_tcp_rx *rx, struct iovec *iov, int max, size_t *len)
{
	size_t left;
	int n = 0;

	*len = 0;
	if (rx->state != NVL_TCP_RX_DATA || rx->sidx >= rx->sinkcnt)
		return 0;
	left = rx->data_len - rx->data_got;
	for (int i = rx->sidx; i < rx->sinkcnt && n < max && left > 0; i++) {
		size_t skip = i == rx->sidx ? rx->soff : 0;
		size_t k = NVL_MIN(left, rx->sink[i].iov_len - skip);

		if (k == 0)
			continue;
		iov[n].iov_base = (uint8_t *)rx->sink[i].iov_base + skip;
		iov[n].iov_len = k;
		*len += k;
		left -= k;
		n++;
	}
	return n;
}

int
nvl_tcp_rx_direct_done(struct nvl_tcp_rx *rx, size_t n, const struct nvl_tcp_rx_ops *ops,
		       void *ctx, struct nvl_tcp_err *err)
{
	if (rx->state != NVL_TCP_RX_DATA)
		return rx->state == NVL_TCP_RX_ERROR ? -1 : 0;
	rx->data_got += (uint32_t)n;
	while (n > 0 && rx->sidx < rx->sinkcnt) {
		struct iovec *s = &rx->sink[rx->sidx];
		size_t k = NVL_MIN(n, s->iov_len - rx->soff);

		if (rx->has_ddgst)
			rx->crc = nvl_crc32c_update(rx->crc, (uint8_t *)s->iov_base + rx->soff, k);
		n -= k;
		rx->soff += k;
		if (rx->soff == s->iov_len) {
			rx->sidx++;
			rx->soff = 0;
		}
	}
	if (rx->data_got < rx->data_len)
		return 0;
	return rx_data_done(rx, ops, ctx, err);
}

/* ---- encoders -------------------------------------------------------------- */

uint32_t
nvl_tcp_ch_init(struct nvl_tcp_common_hdr *ch, uint8_t type, bool hdgst, bool ddgst,
		uint32_t data_len, uint32_t align)
{
	uint32_t hneed, pdo;
	uint8_t hlen = nvl_tcp_pdu_hlen(type);

	ch->pdu_type = type;
	ch->hlen = hlen;
	ch->flags = hdgst ? NVL_TCP_F_HDGSTF : 0;
	hneed = hlen + (hdgst ? NVL_TCP_DIGEST_LEN : 0);
	if (data_len == 0) {
		ch->pdo = 0;
		ch->plen = hneed;
		return 0;
	}
	if (align < 4)
		align = 4;
	pdo = (uint32_t)NVL_ALIGN_UP((uint64_t)hneed, (uint64_t)align);
	ch->pdo = (uint8_t)pdo;
	if (ddgst)
		ch->flags |= NVL_TCP_F_DDGSTF;
	ch->plen = pdo + data_len + (ddgst ? NVL_TCP_DIGEST_LEN : 0);
	return pdo - hneed;
}

void
nvl_tcp_hdgst_set(void *hdr)
{
	struct nvl_tcp_common_hdr *ch = hdr;
	uint32_t crc = nvl_crc32c(hdr, ch->hlen);

	memcpy((uint8_t *)hdr + ch->hlen, &crc, sizeof(crc));
}

uint32_t
nvl_tcp_ddgst(const struct iovec *iov, int iovcnt, size_t len)
{
	uint32_t crc = 0xffffffffu;

	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t k = NVL_MIN(len, iov[i].iov_len);

		crc = nvl_crc32c_update(crc, iov[i].iov_base, k);
		len -= k;
	}
	return crc ^ 0xffffffffu;
}

size_t
nvl_tcp_term_build(uint8_t *out, bool c2h, uint16_t fes, uint32_t fei, const void *bad_hdr,
		   size_t bad_len)
{
	struct nvl_tcp_term_req t;

	memset(&t, 0, sizeof(t));
	if (bad_len > NVL_TCP_TERM_MAX_DATA)
		bad_len = NVL_TCP_TERM_MAX_DATA;
	t.ch.pdu_type = c2h ? NVL_TCP_PDU_C2H_TERM : NVL_TCP_PDU_H2C_TERM;
	t.ch.hlen = sizeof(t);
	t.ch.pdo = 0;
	t.ch.flags = 0;
	t.ch.plen = (uint32_t)(sizeof(t) + bad_len);
	t.fes = fes;
	t.fei = fei;
	memcpy(out, &t, sizeof(t));
	if (bad_len)
		memcpy(out + sizeof(t), bad_hdr, bad_len);
	return sizeof(t) + bad_len;
}

/* ---- transmit queue ----------------------------------------------------------- */

void
nvl_tcp_txq_init(struct nvl_tcp_txq *q)
{
	TAILQ_INIT(&q->q);
	q->bytes = 0;
}

void
nvl_tcp_txq_push(struct nvl_tcp_txq *q, struct nvl_tcp_tx *tx)
{
	tx->len = 0;
	for (int i = 0; i < tx->iovcnt; i++)
		tx->len += tx->iov[i].iov_len;
	tx->sent = 0;
	tx->queued = true;
	q->bytes += tx->len;
	TAILQ_INSERT_TAIL(&q->q, tx, link);
}

void
nvl_tcp_txq_remove(struct nvl_tcp_txq *q, struct nvl_tcp_tx *tx)
{
	if (!tx->queued)
		return;
	TAILQ_REMOVE(&q->q, tx, link);
	tx->queued = false;
	q->bytes -= tx->len - tx->sent;
}

ssize_t
nvl_tcp_txq_flush(struct nvl_tcp_txq *q, int fd, void *owner)
{
	ssize_t total = 0;

	while (!TAILQ_EMPTY(&q->q)) {
		struct iovec iov[64];
		struct msghdr mh = { .msg_iov = iov };
		struct nvl_tcp_tx *tx;
		size_t want = 0;
		ssize_t n;
		int k = 0;

		TAILQ_FOREACH(tx, &q->q, link) {
			size_t skip = tx->sent;

			for (int i = 0; i < tx->iovcnt && k < (int)NVL_ARRAY_SIZE(iov); i++) {
				size_t l = tx->iov[i].iov_len;

				if (skip >= l) {
					skip -= l;
					continue;
				}
				iov[k].iov_base = (uint8_t *)tx->iov[i].iov_base + skip;
				iov[k].iov_len = l - skip;
				want += l - skip;
				skip = 0;
				k++;
			}
			if (k == (int)NVL_ARRAY_SIZE(iov))
				break;
		}
		mh.msg_iovlen = (size_t)k;
		n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;
		}
		total += n;
		q->bytes -= (size_t)n;
		if ((size_t)n < want)
			want = 0; /* a short send: the socket is full; stop after accounting */
		while (n > 0 && (tx = TAILQ_FIRST(&q->q)) != NULL) {
			size_t k2 = NVL_MIN((size_t)n, tx->len - tx->sent);

			tx->sent += k2;
			n -= (ssize_t)k2;
			if (tx->sent < tx->len)
				break;
			TAILQ_REMOVE(&q->q, tx, link);
			tx->queued = false;
			if (tx->done)
				tx->done(owner, tx);
		}
		if (want == 0)
			break;
	}
	return total;
}

void
nvl_tcp_txq_drop(struct nvl_tcp_txq *q, void *owner)
{
	struct nvl_tcp_tx *tx;

	while ((tx = TAILQ_FIRST(&q->q)) != NULL) {
		TAILQ_REMOVE(&q->q, tx, link);
		tx->queued = false;
		q->bytes -= tx->len - tx->sent;
		if (tx->done)
			tx->done(owner, tx);
	}
}
