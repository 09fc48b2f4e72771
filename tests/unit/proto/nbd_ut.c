/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of src/proto/nbd.c, the one NBD codec: the fixed-newstyle
 * handshake state machine (every option, malformed and hostile input,
 * byte-by-byte feeding), request validation (table-driven boundaries) with
 * the daemon server's parameters and with the attach process's
 * (tools/nvlend/attach_nbd.h: size, block size, read-only), errno mapping
 * and reply encoding. Single-threaded; a fake export table stands in for the
 * server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto/nbd.c"
#include "../../../tools/nvlend/attach_nbd.h"

#include <errno.h>

/* ---- fake export table ---------------------------------------------------- */

static struct nbd_hs_export g_exp[2] = {
	{ .name = "disk0", .description = "first disk", .size = 1 << 20, .min_block = 512,
	  .pref_block = 4096, .max_block = 1 << 25,
	  .tflags = NVL_NBD_FLAG_HAS_FLAGS | NVL_NBD_FLAG_SEND_FLUSH },
	{ .name = "disk1", .description = "", .size = 8192, .min_block = 4096, .pref_block = 4096,
	  .max_block = 4096, .tflags = NVL_NBD_FLAG_HAS_FLAGS | NVL_NBD_FLAG_READ_ONLY },
};
static unsigned g_nexp = 2;

static uint32_t
fake_lookup(void *ctx, const char *name, size_t len, struct nbd_hs_export *e, char *msg,
	    size_t msglen)
{
	(void)ctx;
	if (len == 0) {
		if (g_nexp != 1) {
			snprintf(msg, msglen, "no default");
			return NVL_NBD_REP_ERR_UNKNOWN;
		}
		*e = g_exp[0];
		return 0;
	}
	for (unsigned i = 0; i < g_nexp; i++) {
		if (strlen(g_exp[i].name) == len && memcmp(g_exp[i].name, name, len) == 0) {
			*e = g_exp[i];
			return 0;
		}
	}
	snprintf(msg, msglen, "unknown export");
	return NVL_NBD_REP_ERR_UNKNOWN;
}

static void
fake_list(void *ctx, void (*emit)(void *arg, const struct nbd_hs_export *e), void *arg)
{
	(void)ctx;
	for (unsigned i = 0; i < g_nexp; i++)
		emit(arg, &g_exp[i]);
}

static const struct nbd_hs_ops g_ops = { .lookup = fake_lookup, .list = fake_list };

/* ---- byte builders and reply reader ----------------------------------------- */

struct buf {
	uint8_t b[70000];
	size_t n;
};

static void
b_be32(struct buf *b, uint32_t v)
{
	put_be32(b->b + b->n, v);
	b->n += 4;
}

static void
b_be64(struct buf *b, uint64_t v)
{
	put_be64(b->b + b->n, v);
	b->n += 8;
}

static void
b_bytes(struct buf *b, const void *p, size_t n)
{
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void
b_opt(struct buf *b, uint32_t opt, const void *data, uint32_t len)
{
	b_be64(b, NVL_NBD_IHAVEOPT);
	b_be32(b, opt);
	b_be32(b, len);
	if (len)
		b_bytes(b, data, len);
}

/* INFO/GO option data: name + info requests */
static uint32_t
go_data(uint8_t *d, const char *name, const uint16_t *reqs, uint16_t nreq)
{
	uint32_t n = (uint32_t)strlen(name), off = 0;

	put_be32(d, n);
	memcpy(d + 4, name, n);
	off = 4 + n;
	put_be16(d + off, nreq);
	off += 2;
	for (uint16_t i = 0; i < nreq; i++, off += 2)
		put_be16(d + off, reqs[i]);
	return off;
}

struct reply {
	uint32_t opt;
	uint32_t type;
	uint32_t len;
	const uint8_t *data;
};

/* Split hs->out (after `skip` bytes) into option replies. */
static unsigned
replies(const struct nbd_hs *hs, size_t skip, struct reply *r, unsigned max)
{
	size_t off = skip;
	unsigned n = 0;

	while (off + 20 <= hs->out_len && n < max) {
		assert_int_equal(get_be64(hs->out + off), NVL_NBD_OPT_REPLY_MAGIC);
		r[n].opt = get_be32(hs->out + off + 8);
		r[n].type = get_be32(hs->out + off + 12);
		r[n].len = get_be32(hs->out + off + 16);
		r[n].data = hs->out + off + 20;
		off += 20 + r[n].len;
		assert_true(off <= hs->out_len);
		n++;
	}
	assert_int_equal(off, hs->out_len);
	return n;
}

/* Feed everything, in one go or byte by byte, until the machine stops consuming. */
static size_t
feed_all(struct nbd_hs *hs, const struct buf *in, bool bytewise)
{
	size_t used = 0;

	while (used < in->n && !nbd_hs_done(hs)) {
		size_t n = nbd_hs_feed(hs, in->b + used, bytewise ? 1 : in->n - used);

		if (n == 0)
			break;
		used += n;
	}
	return used;
}

static struct nbd_hs *
hs_new(const char *refuse)
{
	struct nbd_hs *hs = calloc(1, sizeof(*hs));

	assert_non_null(hs);
	assert_int_equal(nbd_hs_init(hs, &g_ops, NULL, refuse), 0);
	return hs;
}

static void
hs_free(struct nbd_hs *hs)
{
	nbd_hs_fini(hs);
	free(hs);
}

/* ---- handshake tests -------------------------------------------------------- */

static void
test_greeting(void **state)
{
	struct nbd_hs *hs = hs_new(NULL);

	(void)state;
	assert_int_equal(hs->out_len, 18);
	assert_int_equal(get_be64(hs->out), NVL_NBD_MAGIC);
	assert_int_equal(get_be64(hs->out + 8), NVL_NBD_IHAVEOPT);
	assert_int_equal(get_be16(hs->out + 16),
			 NVL_NBD_FLAG_FIXED_NEWSTYLE | NVL_NBD_FLAG_NO_ZEROES);
	hs_free(hs);
}

static void
test_bad_client_flags(void **state)
{
	struct nbd_hs *hs = hs_new(NULL);
	struct buf in = { .n = 0 };

	(void)state;
	b_be32(&in, 0x4);
	feed_all(hs, &in, false);
	assert_int_equal(hs->state, NBD_HS_FAIL);
	hs_free(hs);
}

static void
test_bad_option_magic(void **state)
{
	struct nbd_hs *hs = hs_new(NULL);
	struct buf in = { .n = 0 };

	(void)state;
	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE);
	b_be64(&in, 0x1122334455667788ull);
	b_be32(&in, NVL_NBD_OPT_LIST);
	b_be32(&in, 0);
	feed_all(hs, &in, false);
	assert_int_equal(hs->state, NBD_HS_FAIL);
	hs_free(hs);
}

static void
test_list(void **state)
{
	struct nbd_hs *hs = hs_new(NULL);
	struct buf in = { .n = 0 };
	struct reply r[8];
	unsigned n;

	(void)state;
	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE);
	b_opt(&in, NVL_NBD_OPT_LIST, NULL, 0);
	b_opt(&in, NVL_NBD_OPT_LIST, "x", 1);
	feed_all(hs, &in, false);
	n = replies(hs, 18, r, 8);
	assert_int_equal(n, 4);
	assert_int_equal(r[0].type, NVL_NBD_REP_SERVER);
	assert_int_equal(get_be32(r[0].data), 5);
	assert_memory_equal(r[0].data + 4, "disk0", 5);
	assert_memory_equal(r[0].data + 9, "first disk", 10);
	assert_int_equal(r[0].len, 4 + 5 + 10);
	assert_int_equal(r[1].type, NVL_NBD_REP_SERVER);
	assert_int_equal(r[2].type, NVL_NBD_REP_ACK);
	assert_int_equal(r[3].type, NVL_NBD_REP_ERR_INVALID); /* LIST with data */
	assert_int_equal(r[3].opt, NVL_NBD_OPT_LIST);
	assert_int_equal(hs->state, NBD_HS_OPT_HDR);
	hs_free(hs);
}

static void
run_go(bool bytewise)
{
	struct nbd_hs *hs = hs_new(NULL);
	struct buf in = { .n = 0 };
	uint8_t d[256];
	uint16_t reqs[] = { NVL_NBD_INFO_NAME, NVL_NBD_INFO_DESCRIPTION, NVL_NBD_INFO_BLOCK_SIZE,
			    77 };
	struct reply r[16];
	unsigned n;
	size_t used;

	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE | NVL_NBD_FLAG_C_NO_ZEROES);
	b_opt(&in, NVL_NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	b_opt(&in, NVL_NBD_OPT_GO, d, go_data(d, "nosuch", reqs, 4));
	b_opt(&in, NVL_NBD_OPT_INFO, d, go_data(d, "disk0", reqs, 4));
	b_opt(&in, NVL_NBD_OPT_GO, d, go_data(d, "disk0", reqs, 3));
	b_bytes(&in, "REQUESTS", 8); /* transmission bytes: must not be consumed */
	used = feed_all(hs, &in, bytewise);
	assert_int_equal(used, in.n - 8);
	assert_int_equal(hs->state, NBD_HS_GO);
	assert_true(hs->structured);
	assert_true(hs->no_zeroes);
	assert_true(hs->block_size_asked);
	assert_string_equal(hs->chosen.name, "disk0");
	assert_int_equal(hs->chosen.tflags,
			 NVL_NBD_FLAG_HAS_FLAGS | NVL_NBD_FLAG_SEND_FLUSH | NVL_NBD_FLAG_SEND_DF);
	n = replies(hs, 18, r, 16);
	/* ACK(structured), ERR_UNKNOWN, INFO: export name desc bs ACK (x2) */
	assert_int_equal(n, 1 + 1 + 5 + 5);
	assert_int_equal(r[0].type, NVL_NBD_REP_ACK);
	assert_int_equal(r[1].type, NVL_NBD_REP_ERR_UNKNOWN);
	assert_int_equal(r[1].opt, NVL_NBD_OPT_GO);
	for (unsigned k = 2; k <= 7; k += 5) {
		assert_int_equal(r[k].type, NVL_NBD_REP_INFO);
		assert_int_equal(r[k].len, 12);
		assert_int_equal(get_be16(r[k].data), NVL_NBD_INFO_EXPORT);
		assert_int_equal(get_be64(r[k].data + 2), 1 << 20);
		assert_int_equal(get_be16(r[k].data + 10), hs->chosen.tflags);
		assert_int_equal(get_be16(r[k + 1].data), NVL_NBD_INFO_NAME);
		assert_memory_equal(r[k + 1].data + 2, "disk0", 5);
		assert_int_equal(get_be16(r[k + 2].data), NVL_NBD_INFO_DESCRIPTION);
		assert_int_equal(get_be16(r[k + 3].data), NVL_NBD_INFO_BLOCK_SIZE);
		assert_int_equal(r[k + 3].len, 14);
		assert_int_equal(get_be32(r[k + 3].data + 2), 512);
		assert_int_equal(get_be32(r[k + 3].data + 6), 4096);
		assert_int_equal(get_be32(r[k + 3].data + 10), 1 << 25);
		assert_int_equal(r[k + 4].type, NVL_NBD_REP_ACK);
	}
	assert_int_equal(r[2].opt, NVL_NBD_OPT_INFO);
	assert_int_equal(r[11].opt, NVL_NBD_OPT_GO);
	hs_free(hs);
}

static void
test_go(void **state)
{
	(void)state;
	run_go(false);
}

static void
test_go_bytewise(void **state)
{
	(void)state;
	run_go(true);
}

static void
test_go_malformed(void **state)
{
	struct nbd_hs *hs = hs_new(NULL);
	struct buf in = { .n = 0 };
	uint8_t d[64];
	struct reply r[8];
	uint32_t len;

	(void)state;
	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE);
	b_opt(&in, NVL_NBD_OPT_GO, "abc", 3);          /* shorter than 6 */
	len = go_data(d, "disk0", NULL, 0);
	put_be32(d, 100);                               /* name longer than the option */
	b_opt(&in, NVL_NBD_OPT_GO, d, len);
	len = go_data(d, "disk0", NULL, 0);
	put_be16(d + 9, 3);                             /* 3 requests announced, none sent */
	b_opt(&in, NVL_NBD_OPT_INFO, d, len);
	len = go_data(d, "disk0", NULL, 0);
	d[5] = 0;                                       /* NUL in the name */
	b_opt(&in, NVL_NBD_OPT_GO, d, len);
	feed_all(hs, &in, false);
	assert_int_equal(replies(hs, 18, r, 8), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(r[i].type, NVL_NBD_REP_ERR_INVALID);
	assert_int_equal(hs->state, NBD_HS_OPT_HDR);
	hs_free(hs);
}

static void
test_default_export(void **state)
{
	struct nbd_hs *hs = hs_new(NULL);
	struct buf in = { .n = 0 };
	uint8_t d[64];
	struct reply r[8];

	(void)state;
	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE);
	b_opt(&in, NVL_NBD_OPT_INFO, d, go_data(d, "", NULL, 0));
	feed_all(hs, &in, false);
	assert_int_equal(replies(hs, 18, r, 8), 1);
	assert_int_equal(r[0].type, NVL_NBD_REP_ERR_UNKNOWN); /* two exports: no default */
	hs_free(hs);

	g_nexp = 1;
	hs = hs_new(NULL);
	feed_all(hs, &in, false);
	assert_int_equal(replies(hs, 18, r, 8), 4); /* export, name (canonical), bs, ack */
	assert_int_equal(get_be16(r[1].data), NVL_NBD_INFO_NAME);
	assert_memory_equal(r[1].data + 2, "disk0", 5);
	assert_int_equal(r[3].type, NVL_NBD_REP_ACK);
	g_nexp = 2;
	hs_free(hs);
}

static void
test_export_name(void **state)
{
	struct nbd_hs *hs;
	struct buf in = { .n = 0 };

	(void)state;
	/* with the 124 zero bytes */
	hs = hs_new(NULL);
	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE);
	b_opt(&in, NVL_NBD_OPT_EXPORT_NAME, "disk1", 5);
	assert_int_equal(feed_all(hs, &in, false), in.n);
	assert_int_equal(hs->state, NBD_HS_GO);
	assert_true(hs->via_export_name);
	assert_int_equal(hs->out_len, 18 + 134);
	assert_int_equal(get_be64(hs->out + 18), 8192);
	assert_int_equal(get_be16(hs->out + 26), NVL_NBD_FLAG_HAS_FLAGS | NVL_NBD_FLAG_READ_ONLY);
	hs_free(hs);
	/* NO_ZEROES */
	hs = hs_new(NULL);
	in.n = 0;
	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE | NVL_NBD_FLAG_C_NO_ZEROES);
	b_opt(&in, NVL_NBD_OPT_EXPORT_NAME, "disk1", 5);
	feed_all(hs, &in, false);
	assert_int_equal(hs->out_len, 18 + 10);
	hs_free(hs);
	/* unknown: hard disconnect (it cannot be errored) */
	hs = hs_new(NULL);
	in.n = 0;
	b_be32(&in, 0);
	b_opt(&in, NVL_NBD_OPT_EXPORT_NAME, "zz", 2);
	feed_all(hs, &in, false);
	assert_int_equal(hs->state, NBD_HS_FAIL);
	hs_free(hs);
}

static void
test_structured_and_unknown(void **state)
{
	struct nbd_hs *hs = hs_new(NULL);
	struct buf in = { .n = 0 };
	struct reply r[8];

	(void)state;
	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE);
	b_opt(&in, NVL_NBD_OPT_STRUCTURED_REPLY, "x", 1);
	b_opt(&in, NVL_NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	b_opt(&in, NVL_NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	b_opt(&in, NVL_NBD_OPT_STARTTLS, NULL, 0);
	b_opt(&in, 0x12345, "abc", 3);
	b_opt(&in, NVL_NBD_OPT_SET_META_CONTEXT, "abcd", 4);
	b_opt(&in, NVL_NBD_OPT_EXTENDED_HEADERS, NULL, 0);
	feed_all(hs, &in, false);
	assert_int_equal(replies(hs, 18, r, 8), 7);
	assert_int_equal(r[0].type, NVL_NBD_REP_ERR_INVALID);
	assert_int_equal(r[1].type, NVL_NBD_REP_ACK);
	assert_int_equal(r[2].type, NVL_NBD_REP_ERR_INVALID);
	assert_int_equal(r[3].type, NVL_NBD_REP_ERR_UNSUP);
	assert_int_equal(r[4].type, NVL_NBD_REP_ERR_UNSUP);
	assert_int_equal(r[4].opt, 0x12345);
	assert_true(r[4].len > 0); /* carries a message */
	assert_int_equal(r[5].type, NVL_NBD_REP_ERR_INVALID); /* 4 bytes: malformed */
	assert_int_equal(r[6].type, NVL_NBD_REP_ERR_UNSUP);   /* no extended headers */
	assert_true(hs->structured);
	hs_free(hs);
}

static void
test_oversized_option(void **state)
{
	struct nbd_hs *hs = hs_new(NULL);
	static struct buf in;
	struct reply r[8];

	(void)state;
	in.n = 0;
	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE);
	b_be64(&in, NVL_NBD_IHAVEOPT);
	b_be32(&in, NVL_NBD_OPT_INFO);
	b_be32(&in, NBD_OPT_DATA_MAX + 100);
	memset(in.b + in.n, 'x', NBD_OPT_DATA_MAX + 100);
	in.n += NBD_OPT_DATA_MAX + 100;
	b_opt(&in, NVL_NBD_OPT_ABORT, NULL, 0);
	feed_all(hs, &in, false);
	assert_int_equal(replies(hs, 18, r, 8), 2);
	assert_int_equal(r[0].type, NVL_NBD_REP_ERR_TOO_BIG);
	assert_int_equal(r[1].type, NVL_NBD_REP_ACK);
	assert_int_equal(hs->state, NBD_HS_ABORT);
	hs_free(hs);
	/* an oversized EXPORT_NAME cannot be answered: hard disconnect */
	hs = hs_new(NULL);
	in.n = 0;
	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE);
	b_be64(&in, NVL_NBD_IHAVEOPT);
	b_be32(&in, NVL_NBD_OPT_EXPORT_NAME);
	b_be32(&in, 0xffffffffu);
	feed_all(hs, &in, false);
	assert_int_equal(hs->state, NBD_HS_FAIL);
	hs_free(hs);
}

static void
test_refuse(void **state)
{
	struct nbd_hs *hs = hs_new("limit reached");
	struct buf in = { .n = 0 };
	uint8_t d[64];
	struct reply r[8];

	(void)state;
	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE);
	b_opt(&in, NVL_NBD_OPT_GO, d, go_data(d, "disk0", NULL, 0));
	b_opt(&in, NVL_NBD_OPT_LIST, NULL, 0);
	b_opt(&in, NVL_NBD_OPT_ABORT, NULL, 0);
	feed_all(hs, &in, false);
	assert_int_equal(replies(hs, 18, r, 8), 3);
	assert_int_equal(r[0].type, NVL_NBD_REP_ERR_POLICY);
	assert_int_equal(r[0].len, strlen("limit reached"));
	assert_memory_equal(r[0].data, "limit reached", r[0].len);
	assert_int_equal(r[1].type, NVL_NBD_REP_ERR_POLICY);
	assert_int_equal(r[2].type, NVL_NBD_REP_ACK);
	assert_int_equal(hs->state, NBD_HS_ABORT);
	hs_free(hs);
	hs = hs_new("limit reached");
	in.n = 0;
	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE);
	b_opt(&in, NVL_NBD_OPT_EXPORT_NAME, "disk0", 5);
	feed_all(hs, &in, false);
	assert_int_equal(hs->state, NBD_HS_FAIL);
	hs_free(hs);
}

static void
test_shutdown(void **state)
{
	struct nbd_hs *hs = hs_new(NULL);
	struct buf in = { .n = 0 };
	struct reply r[8];

	(void)state;
	hs->shutting_down = true;
	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE);
	b_opt(&in, NVL_NBD_OPT_LIST, NULL, 0);
	feed_all(hs, &in, false);
	assert_int_equal(replies(hs, 18, r, 8), 1);
	assert_int_equal(r[0].type, NVL_NBD_REP_ERR_SHUTDOWN);
	hs_free(hs);
}


/* ---- metadata contexts -------------------------------------------------------- */

/* LIST/SET_META_CONTEXT data: export name, then the queries */
static uint32_t
meta_data(uint8_t *d, const char *name, const char *const *q, unsigned nq)
{
	uint32_t n = (uint32_t)strlen(name), off;

	put_be32(d, n);
	memcpy(d + 4, name, n);
	off = 4 + n;
	put_be32(d + off, nq);
	off += 4;
	for (unsigned i = 0; i < nq; i++) {
		uint32_t l = (uint32_t)strlen(q[i]);

		put_be32(d + off, l);
		memcpy(d + off + 4, q[i], l);
		off += 4 + l;
	}
	return off;
}

static void
assert_meta_reply(const struct reply *r, uint32_t id)
{
	assert_int_equal(r->type, NVL_NBD_REP_META_CONTEXT);
	assert_int_equal(r->len, 4 + strlen("base:allocation"));
	assert_int_equal(get_be32(r->data), id);
	assert_memory_equal(r->data + 4, "base:allocation", r->len - 4);
}

static void
test_meta_list(void **state)
{
	static const char *const wild[] = { "base:" };
	static const char *const other[] = { "qemu:dirty-bitmap:b0", "base:nothing" };
	static const char *const nocolon[] = { "allocation" };
	struct nbd_hs *hs = hs_new(NULL);
	struct buf in = { .n = 0 };
	struct reply r[16];
	uint8_t d[256];

	(void)state;
	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE);
	/* before structured replies: refused */
	b_opt(&in, NVL_NBD_OPT_LIST_META_CONTEXT, d, meta_data(d, "disk0", NULL, 0));
	b_opt(&in, NVL_NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	b_opt(&in, NVL_NBD_OPT_LIST_META_CONTEXT, d, meta_data(d, "disk0", NULL, 0));
	b_opt(&in, NVL_NBD_OPT_LIST_META_CONTEXT, d, meta_data(d, "disk0", wild, 1));
	b_opt(&in, NVL_NBD_OPT_LIST_META_CONTEXT, d, meta_data(d, "disk0", other, 2));
	b_opt(&in, NVL_NBD_OPT_LIST_META_CONTEXT, d, meta_data(d, "disk0", nocolon, 1));
	b_opt(&in, NVL_NBD_OPT_LIST_META_CONTEXT, d, meta_data(d, "nope", NULL, 0));
	feed_all(hs, &in, false);
	assert_int_equal(replies(hs, 18, r, 16), 9);
	assert_int_equal(r[0].type, NVL_NBD_REP_ERR_INVALID);
	assert_int_equal(r[1].type, NVL_NBD_REP_ACK);
	assert_meta_reply(&r[2], 0); /* LIST: the id is reserved, 0 */
	assert_int_equal(r[3].type, NVL_NBD_REP_ACK);
	assert_meta_reply(&r[4], 0); /* "base:" is the wildcard */
	assert_int_equal(r[5].type, NVL_NBD_REP_ACK);
	assert_int_equal(r[6].type, NVL_NBD_REP_ACK); /* unknown contexts: ignored */
	assert_int_equal(r[7].type, NVL_NBD_REP_ERR_INVALID);
	assert_int_equal(r[8].type, NVL_NBD_REP_ERR_UNKNOWN);
	assert_false(hs->meta_alloc); /* LIST selects nothing */
	hs_free(hs);
}

/* SET, then GO / EXPORT_NAME: base:allocation holds for the export SET named. */
static struct nbd_hs *
meta_then(const char *set_name, const char *const *q, unsigned nq, uint32_t final_opt,
	  const char *go_name, bool bytewise, struct reply *r, unsigned *nr)
{
	struct nbd_hs *hs = hs_new(NULL);
	struct buf in = { .n = 0 };
	uint8_t d[512];

	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE);
	b_opt(&in, NVL_NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	b_opt(&in, NVL_NBD_OPT_SET_META_CONTEXT, d, meta_data(d, set_name, q, nq));
	if (final_opt == NVL_NBD_OPT_GO)
		b_opt(&in, NVL_NBD_OPT_GO, d, go_data(d, go_name, NULL, 0));
	else if (final_opt == NVL_NBD_OPT_EXPORT_NAME)
		b_opt(&in, NVL_NBD_OPT_EXPORT_NAME, go_name, (uint32_t)strlen(go_name));
	feed_all(hs, &in, bytewise);
	if (final_opt != NVL_NBD_OPT_EXPORT_NAME)
		*nr = replies(hs, 18, r, 16);
	return hs;
}

static void
test_meta_set(void **state)
{
	static const char *const q[] = { "base:", "x-foo:bar", "base:allocation",
					 "base:allocation" };
	static const char *const only_other[] = { "qemu:dirty-bitmap:b0" };
	struct nbd_hs *hs;
	struct reply r[16];
	unsigned n = 0;

	(void)state;
	/* selected once (not twice, not by the wildcard), with its id; GO keeps it */
	for (int bytewise = 0; bytewise < 2; bytewise++) {
		hs = meta_then("disk0", q, 4, NVL_NBD_OPT_GO, "disk0", bytewise, r, &n);
		assert_int_equal(n, 1 + 2 + 3); /* SR ack; context + ack; GO: 2 infos + ack */
		assert_meta_reply(&r[1], NBD_META_ID_BASE_ALLOCATION);
		assert_int_equal(r[2].type, NVL_NBD_REP_ACK);
		assert_int_equal(hs->state, NBD_HS_GO);
		assert_true(hs->chosen_meta_alloc);
		hs_free(hs);
	}
	/* another export chosen than the one SET named: no context */
	g_exp[1].tflags &= (uint16_t)~NVL_NBD_FLAG_READ_ONLY;
	hs = meta_then("disk0", q, 4, NVL_NBD_OPT_GO, "disk1", false, r, &n);
	assert_int_equal(hs->state, NBD_HS_GO);
	assert_false(hs->chosen_meta_alloc);
	hs_free(hs);
	g_exp[1].tflags |= NVL_NBD_FLAG_READ_ONLY;
	/* EXPORT_NAME of the same export keeps it */
	hs = meta_then("disk0", q, 4, NVL_NBD_OPT_EXPORT_NAME, "disk0", false, r, &n);
	assert_int_equal(hs->state, NBD_HS_GO);
	assert_true(hs->chosen_meta_alloc);
	hs_free(hs);
	/* nothing we know asked for: ACK alone, nothing selected */
	hs = meta_then("disk0", only_other, 1, NVL_NBD_OPT_GO, "disk0", false, r, &n);
	assert_int_equal(r[1].type, NVL_NBD_REP_ACK);
	assert_false(hs->chosen_meta_alloc);
	hs_free(hs);
	/* zero queries select nothing */
	hs = meta_then("disk0", NULL, 0, NVL_NBD_OPT_GO, "disk0", false, r, &n);
	assert_int_equal(r[1].type, NVL_NBD_REP_ACK);
	assert_false(hs->chosen_meta_alloc);
	hs_free(hs);
	/* unknown export */
	hs = meta_then("nope", q, 4, 0, NULL, false, r, &n);
	assert_int_equal(n, 2);
	assert_int_equal(r[1].type, NVL_NBD_REP_ERR_UNKNOWN);
	assert_false(hs->meta_alloc);
	hs_free(hs);
}

static void
test_meta_malformed(void **state)
{
	static const char *const q[] = { "base:allocation" };
	struct nbd_hs *hs = hs_new(NULL);
	struct buf in = { .n = 0 };
	struct reply r[16];
	uint8_t d[512], bad[512];
	uint32_t n;

	(void)state;
	b_be32(&in, NVL_NBD_FLAG_C_FIXED_NEWSTYLE);
	b_opt(&in, NVL_NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	n = meta_data(d, "disk0", q, 1);
	b_opt(&in, NVL_NBD_OPT_SET_META_CONTEXT, d, n); /* selected... */
	memcpy(bad, d, n);
	put_be32(bad + 4 + 5 + 4, 1000); /* query longer than the option */
	b_opt(&in, NVL_NBD_OPT_SET_META_CONTEXT, bad, n);
	memcpy(bad, d, n);
	put_be32(bad + 4 + 5, 2); /* a second query that is not there */
	b_opt(&in, NVL_NBD_OPT_SET_META_CONTEXT, bad, n);
	memcpy(bad, d, n);
	bad[n] = 'z'; /* trailing byte */
	b_opt(&in, NVL_NBD_OPT_SET_META_CONTEXT, bad, n + 1);
	memcpy(bad, d, n);
	put_be32(bad, 0xfffffff0u); /* export name length */
	b_opt(&in, NVL_NBD_OPT_SET_META_CONTEXT, bad, n);
	memcpy(bad, d, n);
	bad[4 + 5 + 4 + 4 + 4] = '\0'; /* NUL inside the query */
	b_opt(&in, NVL_NBD_OPT_SET_META_CONTEXT, bad, n);
	feed_all(hs, &in, false);
	assert_int_equal(replies(hs, 18, r, 16), 1 + 2 + 5);
	assert_meta_reply(&r[1], NBD_META_ID_BASE_ALLOCATION);
	for (unsigned i = 3; i < 8; i++)
		assert_int_equal(r[i].type, NVL_NBD_REP_ERR_INVALID);
	/* "replaces all previously-set metadata contexts (including when this command fails)" */
	assert_false(hs->meta_alloc);
	assert_int_equal(hs->state, NBD_HS_OPT_HDR);
	hs_free(hs);
}

static void
test_block_status_check(void **state)
{
	struct bs_case {
		const char *what;
		bool structured, meta;
		uint16_t flags;
		uint64_t offset;
		uint32_t length;
		uint32_t expect;
	} cases[] = {
		{ "whole export", true, true, 0, 0, 1 << 20, 0 },
		{ "beyond max_block is fine", true, true, 0, 0, 1 << 20, 0 },
		{ "REQ_ONE", true, true, NVL_NBD_CMD_FLAG_REQ_ONE, 4096, 512, 0 },
		{ "FUA (valid on all)", true, true, NVL_NBD_CMD_FLAG_FUA, 0, 512, 0 },
		{ "no context negotiated", true, false, 0, 0, 512, NVL_NBD_EINVAL },
		{ "no structured replies", false, true, 0, 0, 512, NVL_NBD_EINVAL },
		{ "past the end", true, true, 0, (1 << 20) - 512, 1024, NVL_NBD_EINVAL },
		{ "offset past the end", true, true, 0, 1 << 20, 512, NVL_NBD_EINVAL },
		{ "offset overflow", true, true, 0, UINT64_MAX - 511, 512, NVL_NBD_EINVAL },
		{ "zero length", true, true, 0, 0, 0, NVL_NBD_EINVAL },
		{ "unaligned length", true, true, 0, 0, 100, NVL_NBD_EINVAL },
		{ "unaligned offset", true, true, 0, 100, 512, NVL_NBD_EINVAL },
		{ "FAST_ZERO flag", true, true, NVL_NBD_CMD_FLAG_FAST_ZERO, 0, 512, NVL_NBD_EINVAL },
		{ "DF flag", true, true, NVL_NBD_CMD_FLAG_DF, 0, 512, NVL_NBD_EINVAL },
		{ "PAYLOAD_LEN flag (no extended headers)", true, true,
		  NVL_NBD_CMD_FLAG_PAYLOAD_LEN, 0, 512, NVL_NBD_EINVAL },
	};

	(void)state;
	for (size_t i = 0; i < NVL_ARRAY_SIZE(cases); i++) {
		const struct bs_case *k = &cases[i];
		struct nbd_xparams x = { .size = 1 << 20, .min_block = 512, .max_block = 65536,
					 .tflags = NVL_NBD_FLAG_HAS_FLAGS | NVL_NBD_FLAG_READ_ONLY,
					 .structured = k->structured, .meta_alloc = k->meta };
		struct nbd_req_hdr h = { .flags = k->flags, .type = NVL_NBD_CMD_BLOCK_STATUS,
					 .offset = k->offset, .length = k->length };
		const char *why = NULL;
		uint32_t got = nbd_req_check(&x, &h, &why);

		if (got != k->expect)
			fail_msg("%s: expected %u, got %u (%s)", k->what, k->expect, got,
				 why ? why : "");
	}
}

/* ---- requests ---------------------------------------------------------------------- */

struct check_case {
	const char *what;
	uint16_t type, flags;
	uint64_t offset;
	uint32_t length;
	bool ro, structured;
	uint32_t expect;
};

static void
test_req_check(void **state)
{
	const uint64_t size = 1 << 20;
	static const struct check_case cases[] = {
		{ "read ok", NVL_NBD_CMD_READ, 0, 0, 4096, false, false, 0 },
		{ "read last block", NVL_NBD_CMD_READ, 0, (1 << 20) - 512, 512, false, false, 0 },
		{ "read past end", NVL_NBD_CMD_READ, 0, (1 << 20) - 512, 1024, false, false,
		  NVL_NBD_EINVAL },
		{ "read offset overflow", NVL_NBD_CMD_READ, 0, UINT64_MAX - 511, 512, false, false,
		  NVL_NBD_EINVAL },
		{ "read unaligned offset", NVL_NBD_CMD_READ, 0, 100, 512, false, false,
		  NVL_NBD_EINVAL },
		{ "read unaligned length", NVL_NBD_CMD_READ, 0, 0, 100, false, false, NVL_NBD_EINVAL },
		{ "read zero length", NVL_NBD_CMD_READ, 0, 0, 0, false, false, NVL_NBD_EINVAL },
		{ "read too long", NVL_NBD_CMD_READ, 0, 0, 65536 + 512, false, false, NVL_NBD_EINVAL },
		{ "read DF w/o structured", NVL_NBD_CMD_READ, NVL_NBD_CMD_FLAG_DF, 0, 512, false,
		  false, NVL_NBD_EINVAL },
		{ "read DF structured", NVL_NBD_CMD_READ, NVL_NBD_CMD_FLAG_DF, 0, 512, false, true, 0 },
		{ "read FUA accepted", NVL_NBD_CMD_READ, NVL_NBD_CMD_FLAG_FUA, 0, 512, false, false, 0 },
		{ "read NO_HOLE", NVL_NBD_CMD_READ, NVL_NBD_CMD_FLAG_NO_HOLE, 0, 512, false, false,
		  NVL_NBD_EINVAL },
		{ "write past end", NVL_NBD_CMD_WRITE, 0, 1 << 20, 512, false, false, NVL_NBD_ENOSPC },
		{ "write read-only", NVL_NBD_CMD_WRITE, 0, 0, 512, true, false, NVL_NBD_EPERM },
		{ "write unknown flag", NVL_NBD_CMD_WRITE, 1u << 9, 0, 512, false, false,
		  NVL_NBD_EINVAL },
		{ "write FUA", NVL_NBD_CMD_WRITE, NVL_NBD_CMD_FLAG_FUA, 0, 512, false, false, 0 },
		{ "trim ok", NVL_NBD_CMD_TRIM, 0, 0, 1 << 20, false, false, 0 },
		{ "trim past end", NVL_NBD_CMD_TRIM, 0, 512, 1 << 20, false, false, NVL_NBD_EINVAL },
		{ "trim read-only", NVL_NBD_CMD_TRIM, 0, 0, 512, true, false, NVL_NBD_EPERM },
		{ "zero NO_HOLE+FAST", NVL_NBD_CMD_WRITE_ZEROES,
		  NVL_NBD_CMD_FLAG_NO_HOLE | NVL_NBD_CMD_FLAG_FAST_ZERO, 0, 1 << 20, false, false, 0 },
		{ "zero past end", NVL_NBD_CMD_WRITE_ZEROES, 0, 512, 1 << 20, false, false,
		  NVL_NBD_ENOSPC },
		{ "zero read-only", NVL_NBD_CMD_WRITE_ZEROES, 0, 0, 512, true, false, NVL_NBD_EPERM },
		{ "flush ok", NVL_NBD_CMD_FLUSH, 0, 0, 0, true, false, 0 },
		{ "flush with length", NVL_NBD_CMD_FLUSH, 0, 0, 512, false, false, NVL_NBD_EINVAL },
		{ "cache ok", NVL_NBD_CMD_CACHE, 0, 0, 4096, true, false, 0 },
		{ "cache past end", NVL_NBD_CMD_CACHE, 0, 1 << 20, 512, false, false, NVL_NBD_EINVAL },
		{ "block status w/o context", NVL_NBD_CMD_BLOCK_STATUS, 0, 0, 512, false, true,
		  NVL_NBD_EINVAL },
		{ "unknown command", 99, 0, 0, 512, false, false, NVL_NBD_EINVAL },
		{ "disc", NVL_NBD_CMD_DISC, 0, 0, 0, false, false, 0 },
	};

	(void)state;
	for (size_t i = 0; i < NVL_ARRAY_SIZE(cases); i++) {
		const struct check_case *k = &cases[i];
		struct nbd_xparams x = {
			.size = size,
			.min_block = 512,
			.max_block = 65536,
			.tflags = NVL_NBD_FLAG_HAS_FLAGS | NVL_NBD_FLAG_SEND_FLUSH |
				  NVL_NBD_FLAG_SEND_FUA | NVL_NBD_FLAG_SEND_TRIM |
				  NVL_NBD_FLAG_SEND_WRITE_ZEROES | NVL_NBD_FLAG_SEND_FAST_ZERO,
			.structured = k->structured,
		};
		struct nbd_req_hdr h = { .flags = k->flags, .type = k->type, .handle = i,
					 .offset = k->offset, .length = k->length };
		const char *why = NULL;
		uint32_t got;

		if (k->ro)
			x.tflags = (uint16_t)((x.tflags | NVL_NBD_FLAG_READ_ONLY) &
					      ~(NVL_NBD_FLAG_SEND_TRIM | NVL_NBD_FLAG_SEND_FUA |
						NVL_NBD_FLAG_SEND_WRITE_ZEROES |
						NVL_NBD_FLAG_SEND_FAST_ZERO));
		if (k->structured)
			x.tflags |= NVL_NBD_FLAG_SEND_DF;
		got = nbd_req_check(&x, &h, &why);
		if (got != k->expect)
			fail_msg("%s: expected %u, got %u (%s)", k->what, k->expect, got,
				 why ? why : "");
		if (got)
			assert_non_null(why);
	}
}

/* The attach process's parameters: what the kernel was told by ioctl. */
struct attach_case {
	const char *what;
	uint64_t size;
	uint32_t bs;
	bool ro;
	uint16_t type, flags;
	uint64_t offset;
	uint32_t length;
	uint32_t expect;
};

static void
test_attach_check(void **state)
{
	const uint64_t mib = 1 << 20, gib = 1ull << 30;
	static const struct attach_case cases[] = {
		{ "read", mib, 4096, false, NVL_NBD_CMD_READ, 0, 0, 4096, 0 },
		{ "read last block", mib, 4096, false, NVL_NBD_CMD_READ, 0, mib - 4096, 4096, 0 },
		{ "read past end", mib, 4096, false, NVL_NBD_CMD_READ, 0, mib - 4096, 8192,
		  NVL_NBD_EINVAL },
		{ "read offset past end", mib, 4096, false, NVL_NBD_CMD_READ, 0, mib, 4096,
		  NVL_NBD_EINVAL },
		{ "read offset overflow", mib, 512, false, NVL_NBD_CMD_READ, 0, UINT64_MAX - 511,
		  512, NVL_NBD_EINVAL },
		{ "read 512 on a 4096 ns", mib, 4096, false, NVL_NBD_CMD_READ, 0, 0, 512,
		  NVL_NBD_EINVAL },
		{ "read offset 512 on a 4096 ns", mib, 4096, false, NVL_NBD_CMD_READ, 0, 512, 4096,
		  NVL_NBD_EINVAL },
		{ "read 512 on a 512 ns", mib, 512, false, NVL_NBD_CMD_READ, 0, 512, 512, 0 },
		{ "read zero length", mib, 512, false, NVL_NBD_CMD_READ, 0, 0, 0, NVL_NBD_EINVAL },
		{ "read 32 MiB", gib, 4096, false, NVL_NBD_CMD_READ, 0, 0, 32u << 20, 0 },
		{ "read over 32 MiB", gib, 4096, false, NVL_NBD_CMD_READ, 0, 0, (32u << 20) + 4096,
		  NVL_NBD_EINVAL },
		{ "read DF (no structured replies)", mib, 512, false, NVL_NBD_CMD_READ,
		  NVL_NBD_CMD_FLAG_DF, 0, 512, NVL_NBD_EINVAL },
		{ "read read-only", mib, 512, true, NVL_NBD_CMD_READ, 0, 0, 512, 0 },
		{ "write FUA", mib, 512, false, NVL_NBD_CMD_WRITE, NVL_NBD_CMD_FLAG_FUA, 0, 512,
		  0 },
		{ "write past end", mib, 512, false, NVL_NBD_CMD_WRITE, 0, mib, 512,
		  NVL_NBD_ENOSPC },
		{ "write over 32 MiB", gib, 4096, false, NVL_NBD_CMD_WRITE, 0, 0,
		  (32u << 20) + 4096, NVL_NBD_EINVAL },
		{ "write unaligned", mib, 4096, false, NVL_NBD_CMD_WRITE, 0, 0, 1024,
		  NVL_NBD_EINVAL },
		{ "write read-only", mib, 512, true, NVL_NBD_CMD_WRITE, 0, 0, 512, NVL_NBD_EPERM },
		{ "trim 64 MiB", gib, 4096, false, NVL_NBD_CMD_TRIM, 0, 0, 64u << 20, 0 },
		{ "trim FUA", mib, 4096, false, NVL_NBD_CMD_TRIM, NVL_NBD_CMD_FLAG_FUA, 0, 4096,
		  0 },
		{ "trim read-only", mib, 4096, true, NVL_NBD_CMD_TRIM, 0, 0, 4096, NVL_NBD_EPERM },
		{ "zeroes NO_HOLE", mib, 4096, false, NVL_NBD_CMD_WRITE_ZEROES,
		  NVL_NBD_CMD_FLAG_NO_HOLE | NVL_NBD_CMD_FLAG_FUA, 0, mib, 0 },
		{ "zeroes FAST_ZERO (not offered)", mib, 4096, false, NVL_NBD_CMD_WRITE_ZEROES,
		  NVL_NBD_CMD_FLAG_FAST_ZERO, 0, 4096, NVL_NBD_EINVAL },
		{ "zeroes past end", mib, 4096, false, NVL_NBD_CMD_WRITE_ZEROES, 0, 4096, mib,
		  NVL_NBD_ENOSPC },
		{ "zeroes read-only", mib, 4096, true, NVL_NBD_CMD_WRITE_ZEROES, 0, 0, 4096,
		  NVL_NBD_EPERM },
		{ "flush", mib, 4096, false, NVL_NBD_CMD_FLUSH, 0, 0, 0, 0 },
		{ "flush read-only", mib, 4096, true, NVL_NBD_CMD_FLUSH, 0, 0, 0, 0 },
		{ "flush with a range", mib, 4096, false, NVL_NBD_CMD_FLUSH, 0, 0, 4096,
		  NVL_NBD_EINVAL },
		{ "cache", mib, 4096, true, NVL_NBD_CMD_CACHE, 0, 0, 4096, 0 },
		{ "block status", mib, 4096, false, NVL_NBD_CMD_BLOCK_STATUS, 0, 0, 4096,
		  NVL_NBD_EINVAL },
		{ "resize", mib, 4096, false, NVL_NBD_CMD_RESIZE, 0, 0, 0, NVL_NBD_EINVAL },
	};

	(void)state;
	for (size_t i = 0; i < NVL_ARRAY_SIZE(cases); i++) {
		const struct attach_case *k = &cases[i];
		struct nbd_xparams x;
		struct nbd_req_hdr h = { .flags = k->flags, .type = k->type, .handle = i,
					 .offset = k->offset, .length = k->length };
		const char *why = NULL;
		uint32_t got;

		attach_nbd_xparams(k->size, k->bs, k->ro, &x);
		got = nbd_req_check(&x, &h, &why);
		if (got != k->expect)
			fail_msg("%s: expected %u, got %u (%s)", k->what, k->expect, got,
				 why ? why : "");
		if (got)
			assert_non_null(why);
	}
}

/* What the attach process tells the kernel with NBD_SET_FLAGS. */
static void
test_attach_xparams(void **state)
{
	struct nbd_xparams x;

	(void)state;
	attach_nbd_xparams(1 << 20, 4096, false, &x);
	assert_int_equal(x.size, 1 << 20);
	assert_int_equal(x.min_block, 4096);
	assert_int_equal(x.max_block, NBD_MAX_PAYLOAD);
	assert_false(x.structured);
	assert_int_equal(x.tflags, NVL_NBD_FLAG_HAS_FLAGS | NVL_NBD_FLAG_SEND_FLUSH |
					   NVL_NBD_FLAG_SEND_FUA | NVL_NBD_FLAG_SEND_TRIM |
					   NVL_NBD_FLAG_SEND_WRITE_ZEROES |
					   NVL_NBD_FLAG_CAN_MULTI_CONN);
	attach_nbd_xparams(1 << 20, 512, true, &x);
	assert_int_equal(x.min_block, 512);
	assert_true(x.tflags & NVL_NBD_FLAG_READ_ONLY);
}

static void
test_req_decode(void **state)
{
	uint8_t p[28];
	struct nbd_req_hdr h;

	(void)state;
	put_be32(p, NVL_NBD_REQUEST_MAGIC);
	put_be16(p + 4, NVL_NBD_CMD_FLAG_FUA);
	put_be16(p + 6, NVL_NBD_CMD_WRITE);
	put_be64(p + 8, 0x0102030405060708ull);
	put_be64(p + 16, 4096);
	put_be32(p + 24, 512);
	assert_true(nbd_req_decode(p, &h));
	assert_int_equal(h.flags, NVL_NBD_CMD_FLAG_FUA);
	assert_int_equal(h.type, NVL_NBD_CMD_WRITE);
	assert_int_equal(h.handle, 0x0102030405060708ull);
	assert_int_equal(h.offset, 4096);
	assert_int_equal(h.length, 512);
	assert_true(nbd_req_has_payload(&h));
	p[0] ^= 1;
	assert_false(nbd_req_decode(p, &h));
}

static void
test_errno_map(void **state)
{
	(void)state;
	assert_int_equal(nbd_errno_to_nbd(0), 0);
	assert_int_equal(nbd_errno_to_nbd(-EROFS), NVL_NBD_EPERM);
	assert_int_equal(nbd_errno_to_nbd(-EBADF), NVL_NBD_EPERM);
	assert_int_equal(nbd_errno_to_nbd(-EDQUOT), NVL_NBD_ENOSPC);
	assert_int_equal(nbd_errno_to_nbd(-EFBIG), NVL_NBD_ENOSPC);
	assert_int_equal(nbd_errno_to_nbd(-EINVAL), NVL_NBD_EINVAL);
	assert_int_equal(nbd_errno_to_nbd(-ENOTSUP), NVL_NBD_ENOTSUP);
	assert_int_equal(nbd_errno_to_nbd(-EOPNOTSUPP), NVL_NBD_ENOTSUP);
	assert_int_equal(nbd_errno_to_nbd(-EACCES), NVL_NBD_EPERM);
	assert_int_equal(nbd_errno_to_nbd(-ENOMEM), NVL_NBD_ENOMEM);
	assert_int_equal(nbd_errno_to_nbd(-EOVERFLOW), NVL_NBD_EOVERFLOW);
	assert_int_equal(nbd_errno_to_nbd(-ESHUTDOWN), NVL_NBD_ESHUTDOWN);
	assert_int_equal(nbd_errno_to_nbd(-EIO), NVL_NBD_EIO);
	assert_int_equal(nbd_errno_to_nbd(-ETIMEDOUT), NVL_NBD_EIO);
}

static void
test_encoders(void **state)
{
	uint8_t b[NBD_SR_ERR_MAX];
	char longmsg[400];
	size_t n;

	(void)state;
	n = nbd_enc_simple(b, 42, NVL_NBD_EIO);
	assert_int_equal(n, 16);
	assert_int_equal(get_be32(b), NVL_NBD_SIMPLE_REPLY_MAGIC);
	assert_int_equal(get_be32(b + 4), NVL_NBD_EIO);
	assert_int_equal(get_be64(b + 8), 42);
	n = nbd_enc_sr_data(b, 7, 8192, 4096, true);
	assert_int_equal(n, 28);
	assert_int_equal(get_be32(b), NVL_NBD_STRUCTURED_REPLY_MAGIC);
	assert_int_equal(get_be16(b + 4), NVL_NBD_REPLY_FLAG_DONE);
	assert_int_equal(get_be16(b + 6), NVL_NBD_REPLY_TYPE_OFFSET_DATA);
	assert_int_equal(get_be32(b + 16), 8 + 4096);
	assert_int_equal(get_be64(b + 20), 8192);
	n = nbd_enc_sr_none(b, 7);
	assert_int_equal(n, 20);
	assert_int_equal(get_be32(b + 16), 0);
	memset(longmsg, 'm', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	n = nbd_enc_sr_error(b, 9, NVL_NBD_EINVAL, longmsg);
	assert_int_equal(n, 20 + 6 + NBD_ERRMSG_MAX);
	assert_int_equal(get_be16(b + 6), NVL_NBD_REPLY_TYPE_ERROR);
	assert_int_equal(get_be32(b + 16), 6 + NBD_ERRMSG_MAX);
	assert_int_equal(get_be32(b + 20), NVL_NBD_EINVAL);
	assert_int_equal(get_be16(b + 24), NBD_ERRMSG_MAX);
	n = nbd_enc_sr_error(b, 9, 0, NULL); /* error MUST be nonzero */
	assert_int_equal(n, 26);
	assert_int_equal(get_be32(b + 20), NVL_NBD_EIO);
	n = nbd_enc_sr_block_status(b, 11, NBD_META_ID_BASE_ALLOCATION, 3);
	assert_int_equal(n, NBD_SR_BS_HDR_SIZE);
	assert_int_equal(get_be32(b), NVL_NBD_STRUCTURED_REPLY_MAGIC);
	assert_int_equal(get_be16(b + 4), NVL_NBD_REPLY_FLAG_DONE);
	assert_int_equal(get_be16(b + 6), NVL_NBD_REPLY_TYPE_BLOCK_STATUS);
	assert_int_equal(get_be64(b + 8), 11);
	assert_int_equal(get_be32(b + 16), 4 + 3 * 8); /* "4 + (a positive multiple of 8)" */
	assert_int_equal(get_be32(b + 20), NBD_META_ID_BASE_ALLOCATION);
	n = nbd_enc_bs_desc(b, 65536, NVL_NBD_STATE_HOLE | NVL_NBD_STATE_ZERO);
	assert_int_equal(n, 8);
	assert_int_equal(get_be32(b), 65536);
	assert_int_equal(get_be32(b + 4), 3);
}

static void
test_sanitize(void **state)
{
	char out[80];
	uint8_t in[100];

	(void)state;
	nbd_sanitize(out, sizeof(out), (const uint8_t *)"a\x01" "b", 3);
	assert_string_equal(out, "a?b");
	memset(in, 'z', sizeof(in));
	nbd_sanitize(out, sizeof(out), in, sizeof(in));
	assert_int_equal(strlen(out), 67);
	nbd_sanitize(out, 8, in, sizeof(in));
	assert_true(strlen(out) < 8);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting),
		cmocka_unit_test(test_bad_client_flags),
		cmocka_unit_test(test_bad_option_magic),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_go),
		cmocka_unit_test(test_go_bytewise),
		cmocka_unit_test(test_go_malformed),
		cmocka_unit_test(test_default_export),
		cmocka_unit_test(test_export_name),
		cmocka_unit_test(test_structured_and_unknown),
		cmocka_unit_test(test_oversized_option),
		cmocka_unit_test(test_refuse),
		cmocka_unit_test(test_shutdown),
		cmocka_unit_test(test_meta_list),
		cmocka_unit_test(test_meta_set),
		cmocka_unit_test(test_meta_malformed),
		cmocka_unit_test(test_block_status_check),
		cmocka_unit_test(test_req_check),
		cmocka_unit_test(test_attach_check),
		cmocka_unit_test(test_attach_xparams),
		cmocka_unit_test(test_req_decode),
		cmocka_unit_test(test_errno_map),
		cmocka_unit_test(test_encoders),
		cmocka_unit_test(test_sanitize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
