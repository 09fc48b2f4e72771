/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the NVMe/TCP PDU parser and encoders (src/proto/nvme_tcp.c):
 * every common-header rule with its FES/FEI, digests, byte-by-byte and
 * direct (zero-copy) reception, the encoders, and the transmit queue over a
 * socketpair with a tiny send buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "proto/nvme_tcp.c"

#include <sys/socket.h>
#include <unistd.h>

struct sink_ctx {
	uint8_t data[8192];
	bool set_sink;
	unsigned headers, pdus;
	bool last_ddgst_ok;
	uint8_t last_type;
	int stop_after;          /* on_pdu returns 1 after this many PDUs (0: never) */
};

static int
t_on_header(void *ctx, struct nvl_tcp_rx *rx, struct nvl_tcp_err *err)
{
	struct sink_ctx *s = ctx;

	(void)err;
	s->headers++;
	if (s->set_sink && rx->data_len) {
		struct iovec iov[2] = { { s->data, 100 }, { s->data + 100, sizeof(s->data) - 100 } };

		nvl_tcp_rx_set_sink(rx, iov, 2);
	}
	return 0;
}

static int
t_on_pdu(void *ctx, struct nvl_tcp_rx *rx, bool ddgst_ok, struct nvl_tcp_err *err)
{
	struct sink_ctx *s = ctx;

	(void)err;
	s->pdus++;
	s->last_ddgst_ok = ddgst_ok;
	s->last_type = rx->hdr.ch.pdu_type;
	return s->stop_after && (int)s->pdus >= s->stop_after ? 1 : 0;
}

static const struct nvl_tcp_rx_ops t_ops = { .on_header = t_on_header, .on_pdu = t_on_pdu };

static size_t
mk_icreq(uint8_t *out)
{
	struct nvl_tcp_icreq q;

	memset(&q, 0, sizeof(q));
	q.ch.pdu_type = NVL_TCP_PDU_ICREQ;
	q.ch.hlen = sizeof(q);
	q.ch.plen = sizeof(q);
	memcpy(out, &q, sizeof(q));
	return sizeof(q);
}

/* A CapsuleCmd with len bytes of in-capsule data, digests as asked. */
static size_t
mk_capsule(uint8_t *out, bool hd, bool dd, uint32_t len, uint32_t align, uint8_t fill)
{
	struct nvl_tcp_cmd c;
	uint32_t pad, hneed;
	size_t n;

	memset(&c, 0, sizeof(c));
	pad = nvl_tcp_ch_init(&c.ch, NVL_TCP_PDU_CAPSULE_CMD, hd, dd, len, align);
	c.ccsqe.opc = NVL_NVME_IO_WRITE;
	memcpy(out, &c, sizeof(c));
	hneed = sizeof(c) + (hd ? 4 : 0);
	if (hd)
		nvl_tcp_hdgst_set(out);
	memset(out + hneed, 0, pad);
	n = hneed + pad;
	if (len) {
		struct iovec v = { out + n, len };

		memset(out + n, fill, len);
		n += len;
		if (dd) {
			uint32_t crc = nvl_tcp_ddgst(&v, 1, len);

			memcpy(out + n, &crc, 4);
			n += 4;
		}
	}
	assert_int_equal(n, c.ch.plen);
	return n;
}

static struct nvl_tcp_rx g_rx;

static void
ctrl_rx(bool hd, bool dd)
{
	nvl_tcp_rx_init(&g_rx, false, 4096);
	g_rx.ic_done = true;
	g_rx.hdgst = hd;
	g_rx.ddgst = dd;
}

static void
test_icreq_then_sequence(void **state)
{
	struct sink_ctx s = { 0 };
	struct nvl_tcp_err e = { 0 };
	uint8_t b[256];
	size_t n = mk_icreq(b);

	(void)state;
	nvl_tcp_rx_init(&g_rx, false, 4096);
	assert_int_equal(nvl_tcp_rx_feed(&g_rx, b, n, &t_ops, &s, &e), (ssize_t)n);
	assert_int_equal(s.pdus, 1);
	assert_true(g_rx.ic_done);
	/* a second ICReq is a sequence error */
	assert_int_equal(nvl_tcp_rx_feed(&g_rx, b, n, &t_ops, &s, &e), -1);
	assert_int_equal(e.fes, NVL_TCP_FES_PDU_SEQUENCE_ERROR);
	/* and the parser stays failed */
	assert_int_equal(nvl_tcp_rx_feed(&g_rx, b, 1, &t_ops, &s, &e), -1);
}

static void
test_capsule_before_icreq(void **state)
{
	struct sink_ctx s = { 0 };
	struct nvl_tcp_err e = { 0 };
	uint8_t b[256];
	size_t n = mk_capsule(b, false, false, 0, 4, 0);

	(void)state;
	nvl_tcp_rx_init(&g_rx, false, 4096);
	assert_int_equal(nvl_tcp_rx_feed(&g_rx, b, n, &t_ops, &s, &e), -1);
	assert_int_equal(e.fes, NVL_TCP_FES_PDU_SEQUENCE_ERROR);
	assert_int_equal(s.headers, 0);
}

struct hdr_case {
	const char *what;
	size_t off;       /* byte to change in a 64-byte-data capsule (no digests) */
	uint32_t value;   /* new value (plen: 32-bit) */
	uint16_t fes;
	uint32_t fei;
};

static void
test_header_rules(void **state)
{
	static const struct hdr_case cases[] = {
		{ "c2h type from a host", 0, NVL_TCP_PDU_C2H_DATA, NVL_TCP_FES_INVALID_HEADER_FIELD, 0 },
		{ "unknown type", 0, 0x42, NVL_TCP_FES_INVALID_HEADER_FIELD, 0 },
		{ "ICReq after IC", 0, NVL_TCP_PDU_ICREQ, NVL_TCP_FES_PDU_SEQUENCE_ERROR, 0 },
		{ "hdgst flag not negotiated", 1, NVL_TCP_F_HDGSTF, NVL_TCP_FES_INVALID_HEADER_FIELD, 1 },
		{ "ddgst flag not negotiated", 1, NVL_TCP_F_DDGSTF, NVL_TCP_FES_INVALID_HEADER_FIELD, 1 },
		{ "hlen", 2, 71, NVL_TCP_FES_INVALID_HEADER_FIELD, 2 },
		{ "pdo inside the header", 3, 40, NVL_TCP_FES_INVALID_HEADER_FIELD, 3 },
		{ "pdo not dword aligned", 3, 73, NVL_TCP_FES_INVALID_HEADER_FIELD, 3 },
		{ "plen shorter than hlen", 4, 20, NVL_TCP_FES_INVALID_HEADER_FIELD, 4 },
		{ "data beyond the limit", 4, 72 + 4097, NVL_TCP_FES_DATA_LIMIT_EXCEEDED, 4 },
		{ "plen == pdo (data pdo, no data)", 4, 72, 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < NVL_ARRAY_SIZE(cases); i++) {
		const struct hdr_case *c = &cases[i];
		struct sink_ctx s = { 0 };
		struct nvl_tcp_err e = { 0 };
		uint8_t b[512];
		size_t n = mk_capsule(b, false, false, 64, 4, 0xab);
		ssize_t r;

		if (c->off == 4) {
			memcpy(b + 4, &c->value, 4);
		} else {
			b[c->off] = (uint8_t)c->value;
		}
		ctrl_rx(false, false);
		r = nvl_tcp_rx_feed(&g_rx, b, c->fes ? n : 72, &t_ops, &s, &e);
		if (c->fes == 0) {
			/* a capsule without data is fine: its pdo is ignored */
			assert_int_equal(r, 72);
			assert_int_equal(s.pdus, 1);
			continue;
		}
		if (r != -1 || e.fes != c->fes || e.fei != c->fei)
			fail_msg("%s: r=%zd fes=%u fei=%u", c->what, r, e.fes, e.fei);
		assert_int_equal(s.pdus, 0);
	}
}

static void
test_no_data_types(void **state)
{
	struct nvl_tcp_resp p;
	struct sink_ctx s = { 0 };
	struct nvl_tcp_err e = { 0 };
	uint8_t b[64];

	(void)state;
	memset(&p, 0, sizeof(p));
	nvl_tcp_ch_init(&p.ch, NVL_TCP_PDU_CAPSULE_RESP, false, false, 0, 0);
	p.ch.plen = 28; /* a response carries no data */
	memcpy(b, &p, sizeof(p));
	nvl_tcp_rx_init(&g_rx, true, 4096);
	g_rx.ic_done = true;
	assert_int_equal(nvl_tcp_rx_feed(&g_rx, b, 28, &t_ops, &s, &e), -1);
	assert_int_equal(e.fes, NVL_TCP_FES_INVALID_HEADER_FIELD);
	assert_int_equal(e.fei, 4);
	/* a data PDU must carry data */
	{
		struct nvl_tcp_data d;

		memset(&d, 0, sizeof(d));
		nvl_tcp_ch_init(&d.ch, NVL_TCP_PDU_C2H_DATA, false, false, 0, 0);
		memcpy(b, &d, sizeof(d));
		nvl_tcp_rx_init(&g_rx, true, 4096);
		g_rx.ic_done = true;
		assert_int_equal(nvl_tcp_rx_feed(&g_rx, b, sizeof(d), &t_ops, &s, &e), -1);
		assert_int_equal(e.fei, 4);
	}
}

static void
test_term_req_bounds(void **state)
{
	uint8_t b[300];
	struct sink_ctx s = { 0 };
	struct nvl_tcp_err e = { 0 };
	size_t n;

	(void)state;
	memset(b + 24, 0x5a, 200);
	n = nvl_tcp_term_build(b, false, NVL_TCP_FES_HDGST_ERROR, 7, b + 24, 200);
	assert_int_equal(n, 24 + 128); /* the echo is capped at 128 bytes */
	ctrl_rx(true, true);
	assert_int_equal(nvl_tcp_rx_feed(&g_rx, b, n, &t_ops, &s, &e), (ssize_t)n);
	assert_int_equal(s.pdus, 1);
	assert_int_equal(s.last_type, NVL_TCP_PDU_H2C_TERM);
	/* longer than 152 bytes: invalid */
	{
		uint32_t plen = 153;

		memcpy(b + 4, &plen, 4);
		ctrl_rx(false, false);
		assert_int_equal(nvl_tcp_rx_feed(&g_rx, b, 153, &t_ops, &s, &e), -1);
		assert_int_equal(e.fei, 4);
	}
}

static void
test_digests_bytewise(void **state)
{
	uint8_t b[2048];
	size_t n;

	(void)state;
	for (int variant = 0; variant < 3; variant++) {
		struct sink_ctx s = { .set_sink = true };
		struct nvl_tcp_err e = { 0 };

		n = mk_capsule(b, true, true, 1000, 8, 0x11);
		if (variant == 1)
			b[n - 1] ^= 1; /* data digest */
		if (variant == 2)
			b[10] ^= 1;    /* header byte: header digest */
		ctrl_rx(true, true);
		g_rx.align = 8;
		for (size_t i = 0; i < n; i++) {
			ssize_t r = nvl_tcp_rx_feed(&g_rx, b + i, 1, &t_ops, &s, &e);

			if (r < 0) {
				assert_int_equal(variant, 2);
				assert_int_equal(e.fes, NVL_TCP_FES_HDGST_ERROR);
				break;
			}
			assert_int_equal(r, 1);
		}
		if (variant == 2)
			continue;
		assert_int_equal(s.pdus, 1);
		assert_int_equal(s.last_ddgst_ok, variant == 0);
		for (int k = 0; k < 1000; k++)
			assert_int_equal(s.data[k], 0x11);
		assert_int_equal(s.data[1000], 0);
	}
}

static void
test_direct_receive(void **state)
{
	struct sink_ctx s = { .set_sink = true };
	struct nvl_tcp_err e = { 0 };
	struct iovec iov[NVL_TCP_RX_SINK_IOV];
	uint8_t b[4096];
	size_t n = mk_capsule(b, false, true, 3000, 4, 0x77), hdr = 72, dlen;
	int nd, rc;

	(void)state;
	ctrl_rx(false, true);
	/* header and the first 10 data bytes through the staging path */
	assert_int_equal(nvl_tcp_rx_feed(&g_rx, b, hdr + 10, &t_ops, &s, &e), (ssize_t)(hdr + 10));
	nd = nvl_tcp_rx_direct(&g_rx, iov, NVL_TCP_RX_SINK_IOV, &dlen);
	assert_int_equal(dlen, 2990);
	assert_int_equal(nd, 2); /* 90 bytes left in the first sink, the rest in the second */
	/* "the socket" fills 1000 bytes straight into the sinks */
	{
		size_t left = 1000, src = hdr + 10;

		for (int i = 0; i < nd && left; i++) {
			size_t k = NVL_MIN(left, iov[i].iov_len);

			memcpy(iov[i].iov_base, b + src, k);
			src += k;
			left -= k;
		}
	}
	rc = nvl_tcp_rx_direct_done(&g_rx, 1000, &t_ops, &s, &e);
	assert_int_equal(rc, 0);
	nd = nvl_tcp_rx_direct(&g_rx, iov, NVL_TCP_RX_SINK_IOV, &dlen);
	assert_int_equal(dlen, 1990);
	assert_int_equal(nd, 1);
	memcpy(iov[0].iov_base, b + hdr + 1010, 1990);
	assert_int_equal(nvl_tcp_rx_direct_done(&g_rx, 1990, &t_ops, &s, &e), 0);
	assert_int_equal(g_rx.state, NVL_TCP_RX_DDGST);
	assert_int_equal(nvl_tcp_rx_feed(&g_rx, b + n - 4, 4, &t_ops, &s, &e), 4);
	assert_int_equal(s.pdus, 1);
	assert_true(s.last_ddgst_ok);
	for (int k = 0; k < 3000; k++)
		assert_int_equal(s.data[k], 0x77);
}

static void
test_stop_after_pdu(void **state)
{
	struct sink_ctx s = { .stop_after = 1 };
	struct nvl_tcp_err e = { 0 };
	uint8_t b[512];
	size_t one = mk_capsule(b, false, false, 0, 4, 0);

	(void)state;
	memcpy(b + one, b, one);
	ctrl_rx(false, false);
	/* two PDUs in the buffer; the owner asks to stop after the first */
	assert_int_equal(nvl_tcp_rx_feed(&g_rx, b, 2 * one, &t_ops, &s, &e), (ssize_t)one);
	s.stop_after = 0;
	assert_int_equal(nvl_tcp_rx_feed(&g_rx, b + one, one, &t_ops, &s, &e), (ssize_t)one);
	assert_int_equal(s.pdus, 2);
}

static void
test_encoders(void **state)
{
	struct nvl_tcp_data d;
	uint32_t pad;

	(void)state;
	pad = nvl_tcp_ch_init(&d.ch, NVL_TCP_PDU_C2H_DATA, true, true, 4096, 32);
	assert_int_equal(d.ch.hlen, 24);
	assert_int_equal(d.ch.pdo, 32);         /* 24 + 4 rounded up to 32 */
	assert_int_equal(pad, 4);
	assert_int_equal(d.ch.plen, 32 + 4096 + 4);
	assert_int_equal(d.ch.flags, NVL_TCP_F_HDGSTF | NVL_TCP_F_DDGSTF);
	pad = nvl_tcp_ch_init(&d.ch, NVL_TCP_PDU_R2T, false, true, 0, 32);
	assert_int_equal(pad, 0);
	assert_int_equal(d.ch.pdo, 0);
	assert_int_equal(d.ch.plen, 24);
	assert_int_equal(d.ch.flags, 0);
	assert_int_equal(nvl_tcp_pdu_hlen(NVL_TCP_PDU_ICRESP), 128);
	assert_int_equal(nvl_tcp_pdu_hlen(8), 0);
	/* CRC32C check value of "123456789" */
	{
		struct iovec v[2] = { { (void *)"1234", 4 }, { (void *)"56789", 5 } };

		assert_int_equal(nvl_tcp_ddgst(v, 2, 9), 0xe3069283u);
	}
}

static unsigned g_done_order[8], g_ndone;

static void
tx_done(void *owner, struct nvl_tcp_tx *tx)
{
	(void)owner;
	g_done_order[g_ndone++] = (unsigned)tx->iov[0].iov_len;
}

static void
test_txq_partial_sends(void **state)
{
	static uint8_t a[100000], b2[3], c[50000], out[200000];
	struct nvl_tcp_tx t1 = { 0 }, t2 = { 0 }, t3 = { 0 };
	struct nvl_tcp_txq q;
	int sv[2], small = 4096;
	size_t got = 0;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)i;
	memset(b2, 0xee, sizeof(b2));
	memset(c, 0x3c, sizeof(c));
	nvl_tcp_txq_init(&q);
	t1.iov[0] = (struct iovec){ a, 60000 };
	t1.iov[1] = (struct iovec){ a + 60000, 40000 };
	t1.iovcnt = 2;
	t2.iov[0] = (struct iovec){ b2, 3 };
	t2.iovcnt = 1;
	t3.iov[0] = (struct iovec){ c, sizeof(c) };
	t3.iovcnt = 1;
	t1.done = t2.done = t3.done = tx_done;
	nvl_tcp_txq_push(&q, &t1);
	nvl_tcp_txq_push(&q, &t2);
	nvl_tcp_txq_push(&q, &t3);
	assert_int_equal(q.bytes, 150003);
	g_ndone = 0;
	while (!nvl_tcp_txq_empty(&q) || got < 150003) {
		ssize_t n;

		assert_true(nvl_tcp_txq_flush(&q, sv[0], NULL) >= 0);
		n = recv(sv[1], out + got, sizeof(out) - got, MSG_DONTWAIT);
		if (n > 0)
			got += (size_t)n;
	}
	assert_int_equal(q.bytes, 0);
	assert_int_equal(g_ndone, 3);
	assert_int_equal(g_done_order[0], 60000);
	assert_int_equal(g_done_order[1], 3);
	assert_int_equal(g_done_order[2], 50000);
	assert_memory_equal(out, a, sizeof(a));
	assert_memory_equal(out + sizeof(a), b2, 3);
	assert_memory_equal(out + sizeof(a) + 3, c, sizeof(c));
	close(sv[0]);
	close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_icreq_then_sequence),
		cmocka_unit_test(test_capsule_before_icreq),
		cmocka_unit_test(test_header_rules),
		cmocka_unit_test(test_no_data_types),
		cmocka_unit_test(test_term_req_bounds),
		cmocka_unit_test(test_digests_bytewise),
		cmocka_unit_test(test_direct_receive),
		cmocka_unit_test(test_stop_after_pdu),
		cmocka_unit_test(test_encoders),
		cmocka_unit_test(test_txq_partial_sends),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
