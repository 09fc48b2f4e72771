/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the NVMe/TCP PDU parser (src/proto/nvme_tcp.c)
 * and the target transport's PDU-specific validation (ICReq, CapsuleCmd
 * data descriptors and slots, H2CData against R2T windows; tcp_capsule.c).
 *
 * Input: byte 0 picks the role (host / controller), digests and how the
 * stream is cut into reads; the rest is the byte stream from the peer.
 * Controller role runs tcp_capsule.c's on_header against a fake, connected I/O
 * queue (a namespace of 512-byte blocks); what would execute is released
 * instead, and writes beyond the in-capsule size get an R2T window.
 */
#include "transport/tcp.c"
#include "transport/tcp_conn.c"
#include "transport/tcp_capsule.c"
#include "transport/tcp_keep.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct nvl_nvme_ns g_ns = { .nsid = 1, .block_size = 512, .lbads = 9, .nlb = 1 << 20 };

static struct nvl_nvme_ns *
fz_get_ns(struct nvl_nvme_ctrlr *c, uint32_t nsid)
{
	(void)c;
	return nsid == 1 ? &g_ns : NULL;
}

static const struct nvl_nvme_ctrlr_ops g_fz_nvme_ops = { .get_ns = fz_get_ns };

/* ---- host role: the generic parser with a sink of random shape ------------------ */

struct hctx {
	uint8_t buf[1 << 16];
	unsigned split;
};

static int
h_on_header(void *ctx, struct nvl_tcp_rx *rx, struct nvl_tcp_err *err)
{
	struct hctx *h = ctx;
	struct iovec iov[3];
	size_t a = NVL_MIN((size_t)h->split, sizeof(h->buf));

	(void)err;
	if (rx->data_len == 0 || rx->hdr.ch.pdu_type == NVL_TCP_PDU_C2H_TERM)
		return 0;
	/* three pieces; together possibly shorter than the data (the rest is dropped) */
	iov[0] = (struct iovec){ h->buf, a / 2 };
	iov[1] = (struct iovec){ h->buf + a / 2, a - a / 2 };
	iov[2] = (struct iovec){ h->buf + a, sizeof(h->buf) - a };
	nvl_tcp_rx_set_sink(rx, iov, 3);
	return 0;
}

static int
h_on_pdu(void *ctx, struct nvl_tcp_rx *rx, bool ok, struct nvl_tcp_err *err)
{
	(void)ctx;
	(void)ok;
	(void)err;
	if (rx->hdr.ch.pdu_type == NVL_TCP_PDU_ICRESP) {
		rx->hdgst = rx->hdr.raw[10] & 1;
		rx->ddgst = (rx->hdr.raw[10] >> 1) & 1;
	}
	return 0;
}

static const struct nvl_tcp_rx_ops g_h_ops = { .on_header = h_on_header, .on_pdu = h_on_pdu };

/* ---- controller role: tcp.c's validation on a fake queue --------------------------- */

static int
c_on_pdu(void *ctx, struct nvl_tcp_rx *rx, bool ok, struct nvl_tcp_err *err)
{
	struct tcp_conn *c = ctx;
	struct tcp_req *r = c->rx_req;

	(void)ok;
	c->rx_req = NULL;
	switch (rx->hdr.ch.pdu_type) {
	case NVL_TCP_PDU_ICREQ:
		return tcp_rx_icreq(c, rx, err);
	case NVL_TCP_PDU_CAPSULE_CMD:
		if (r->early_status == 0 && r->dir == NVL_NVME_XFER_H2C && r->len > r->icd_len) {
			r->h2c_off = 0;
			r->r2t_end = NVL_MIN(r->len, g_tcp_opts.maxh2cdata);
			r->state = TR_WAIT_H2C; /* as if the R2T went out */
		} else {
			tcp_req_release(r);
		}
		return 0;
	case NVL_TCP_PDU_H2C_DATA: {
		const struct nvl_tcp_data *h = (const void *)rx->hdr.raw;

		r->h2c_off += h->datal;
		if (r->h2c_off >= r->r2t_end) {
			if (r->r2t_end < r->len)
				r->r2t_end = NVL_MIN(r->len, r->r2t_end + g_tcp_opts.maxh2cdata);
			else
				tcp_req_release(r);
		}
		return 0;
	}
	default:
		return 1;
	}
}

static const struct nvl_tcp_rx_ops g_c_ops = { .on_header = tcp_rx_on_header,
						 .on_pdu = c_on_pdu };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct nvl_nvmf_ctrlr tc;
	struct nvl_tcp_err err;
	struct tcp_conn *c = NULL;
	struct hctx *h = NULL;
	struct nvl_tcp_rx rx;
	uint8_t mode;
	size_t off = 1, chunk;

	if (size < 1)
		return 0;
	mode = data[0];
	chunk = 1 + ((mode >> 3) & 7) * 37;
	if (mode & 1) {
		/* controller side: an I/O queue of a connected controller */
		struct nvl_nvme_cmd connect = { 0 };
		struct nvl_nvmf_connect_cmd *cc = (void *)&connect;

		tc.nvme.ops = &g_fz_nvme_ops;
		tc.nvme.csts = NVL_NVME_CSTS_RDY;
		c = calloc(1, sizeof(*c));
		if (c == NULL)
			return 0;
		nvl_tcp_txq_init(&c->txq);
		nvl_tcp_rx_init(&c->rx, false, tcp_parser_max_data());
		c->state = (mode & 2) ? TC_ACTIVE : TC_IC_WAIT;
		c->rx.ic_done = (mode & 2) != 0;
		c->rx.hdgst = c->hdgst = (mode & 2) && (mode & 4);
		c->rx.ddgst = c->ddgst = (mode & 2) && (mode & 0x40);
		c->tc = &tc;
		c->qid = 1;
		c->icd_max = 4096;
		c->entries = 32;
		c->hpda_align = 4;
		nvl_strlcpy(c->peer, "fuzz", sizeof(c->peer));
		cc->opc = NVL_NVME_ADM_FABRICS;
		cc->fctype = NVL_NVMF_FCTYPE_CONNECT;
		cc->qid = 1;
		cc->sqsize = 31;
		if (tcp_conn_alloc_reqs(c, &connect) < 0) {
			free(c);
			return 0;
		}
		memset(&err, 0, sizeof(err));
		while (off < size) {
			size_t n = NVL_MIN(chunk, size - off);
			ssize_t r = nvl_tcp_rx_feed(&c->rx, data + off, n, &g_c_ops, c, &err);

			nvl_tcp_txq_drop(&c->txq, c); /* ICResp "sent" */
			if (r < 0)
				break;
			if ((size_t)r < n && c->state != TC_ACTIVE && c->state != TC_IC_WAIT &&
			    c->state != TC_CONNECT_WAIT)
				break;
			off += (size_t)(r ? r : (ssize_t)n);
		}
		for (uint32_t i = 0; i < c->nreqs; i++)
			free(c->reqs[i].buf);
		free(c->reqs);
		free(c);
		return 0;
	}
	/* host side: the generic parser, with the direct (zero-copy) path now and then */
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return 0;
	h->split = (unsigned)((mode >> 1) & 3) * 4096 + 17;
	nvl_tcp_rx_init(&rx, true, 1 << 20);
	memset(&err, 0, sizeof(err));
	while (off < size) {
		struct iovec iov[NVL_TCP_RX_SINK_IOV];
		size_t dlen = 0, n;
		int nd = nvl_tcp_rx_direct(&rx, iov, NVL_TCP_RX_SINK_IOV, &dlen);

		if (nd > 0 && (mode & 0x80)) {
			size_t k = NVL_MIN(dlen, size - off), done = 0;

			k = NVL_MIN(k, chunk);
			for (int i = 0; i < nd && done < k; i++) {
				size_t m = NVL_MIN(iov[i].iov_len, k - done);

				memcpy(iov[i].iov_base, data + off + done, m);
				done += m;
			}
			if (nvl_tcp_rx_direct_done(&rx, k, &g_h_ops, h, &err) < 0)
				break;
			off += k;
			continue;
		}
		n = NVL_MIN(chunk, size - off);
		if (nvl_tcp_rx_feed(&rx, data + off, n, &g_h_ops, h, &err) < 0)
			break;
		off += n;
	}
	free(h);
	return 0;
}
