/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NBD protocol without sockets (doc/proto.md of NetworkBlockDevice/nbd):
 * the fixed-newstyle handshake as a state machine over a byte stream,
 * request decoding and validation, reply encoding, errno -> NBD error.
 *
 * Everything here is a pure function of its arguments and the handshake
 * object; nothing blocks, allocates beyond the handshake's output buffer, or
 * trusts a length it has not checked. Callers: the daemon's NBD server
 * (src/nbd: reactor 0 for the handshake, the connection's reactor for the
 * rest), the attach process's transmission phase (tools/nvlend/attach_nbd.c,
 * one thread per connection), tests/unit/proto/nbd_ut.c, tests/fuzz/nbd and
 * tests/fuzz/attach_nbd.
 */
#include "proto/nbd.h"
#include "util/util.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ------------------------------------------------------ */

static inline uint16_t
get_be16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static inline void
put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void
put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* ---- handshake output ------------------------------------------------------ */

/* Reserve n bytes at the end of hs->out; NULL (and FAIL) past NBD_HS_OUT_MAX. */
static uint8_t *
hs_out_reserve(struct nbd_hs *hs, size_t n)
{
	uint8_t *p;

	if (hs->out_len + n > hs->out_cap) {
		size_t cap = hs->out_cap ? hs->out_cap : 256;

		while (cap < hs->out_len + n)
			cap *= 2;
		if (cap > NBD_HS_OUT_MAX + 4096) {
			hs->state = NBD_HS_FAIL;
			hs->fail_reason = "handshake reply too large";
			return NULL;
		}
		p = realloc(hs->out, cap);
		if (p == NULL) {
			hs->state = NBD_HS_FAIL;
			hs->fail_reason = "out of memory";
			return NULL;
		}
		hs->out = p;
		hs->out_cap = cap;
	}
	p = hs->out + hs->out_len;
	hs->out_len += n;
	return p;
}

void
nbd_hs_out_consume(struct nbd_hs *hs, size_t n)
{
	if (n >= hs->out_len) {
		hs->out_len = 0;
		return;
	}
	memmove(hs->out, hs->out + n, hs->out_len - n);
	hs->out_len -= n;
}

/* Queue an option reply: header + the concatenation of up to three parts. */
static void
hs_reply(struct nbd_hs *hs, uint32_t type, const void *a, size_t alen, const void *b, size_t blen,
	 const void *c, size_t clen)
{
	uint8_t *p = hs_out_reserve(hs, 20 + alen + blen + clen);

	if (p == NULL)
		return;
	put_be64(p, NVL_NBD_OPT_REPLY_MAGIC);
	put_be32(p + 8, hs->opt);
	put_be32(p + 12, type);
	put_be32(p + 16, (uint32_t)(alen + blen + clen));
	p += 20;
	if (alen)
		memcpy(p, a, alen);
	if (blen)
		memcpy(p + alen, b, blen);
	if (clen)
		memcpy(p + alen + blen, c, clen);
}

static void __attribute__((format(printf, 3, 4)))
hs_error(struct nbd_hs *hs, uint32_t type, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	hs_reply(hs, type, msg, (size_t)n, NULL, 0, NULL, 0);
}

void
nbd_sanitize(char *dst, size_t dstlen, const uint8_t *src, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 4 < dstlen; i++) {
		if (n >= 64) {
			dst[n++] = '.';
			dst[n++] = '.';
			dst[n++] = '.';
			break;
		}
		dst[n++] = (src[i] >= 0x20 && src[i] < 0x7f) ? (char)src[i] : '?';
	}
	dst[n] = '\0';
}

/* ---- handshake --------------------------------------------------------------- */

int
nbd_hs_init(struct nbd_hs *hs, const struct nbd_hs_ops *ops, void *ctx, const char *refuse)
{
	uint8_t *p;

	memset(hs, 0, offsetof(struct nbd_hs, data));
	hs->ops = ops;
	hs->ctx = ctx;
	hs->refuse = refuse;
	hs->state = NBD_HS_CFLAGS;
	/* "Newstyle negotiation": NBDMAGIC, IHAVEOPT, handshake flags */
	p = hs_out_reserve(hs, sizeof(struct nvl_nbd_greeting));
	if (p == NULL)
		return -ENOMEM;
	put_be64(p, NVL_NBD_MAGIC);
	put_be64(p + 8, NVL_NBD_IHAVEOPT);
	put_be16(p + 16, NVL_NBD_FLAG_FIXED_NEWSTYLE | NVL_NBD_FLAG_NO_ZEROES);
	return 0;
}

void
nbd_hs_fini(struct nbd_hs *hs)
{
	free(hs->out);
	hs->out = NULL;
	hs->out_len = hs->out_cap = 0;
}

static uint16_t
hs_tflags(const struct nbd_hs *hs, const struct nbd_hs_export *e)
{
	/* SEND_DF: "MUST leave this flag clear if structured replies have not been
	 * negotiated"; with them we always send one content chunk, so DF holds. */
	return (uint16_t)(e->tflags | (hs->structured ? NVL_NBD_FLAG_SEND_DF : 0));
}

/*
 * Metadata contexts apply only to the export the last NBD_OPT_SET_META_CONTEXT
 * named ("the final time it was sent, it referred to the same export name that
 * was ultimately selected"), and need structured replies.
 */
static bool
hs_meta_for(const struct nbd_hs *hs, const uint8_t *name, uint32_t len)
{
	return hs->structured && hs->meta_alloc && hs->meta_name_len == len &&
	       memcmp(hs->meta_name, name, len) == 0;
}

static void
hs_opt_export_name(struct nbd_hs *hs)
{
	struct nbd_hs_export e;
	char msg[128];
	uint8_t *p;

	/* "If the chosen export does not exist ... the server MUST terminate the session." */
	if (hs->refuse || hs->shutting_down) {
		hs->state = NBD_HS_FAIL;
		hs->fail_reason = hs->refuse ? hs->refuse : "server shutting down";
		return;
	}
	if (hs->opt_len > NVL_NBD_MAX_STRING || memchr(hs->data, 0, hs->opt_len) ||
	    hs->ops->lookup(hs->ctx, (const char *)hs->data, hs->opt_len, &e, msg, sizeof(msg))) {
		hs->state = NBD_HS_FAIL;
		hs->fail_reason = "NBD_OPT_EXPORT_NAME of an unknown export";
		return;
	}
	p = hs_out_reserve(hs, hs->no_zeroes ? 10 : sizeof(struct nvl_nbd_export_name_reply));
	if (p == NULL)
		return;
	put_be64(p, e.size);
	put_be16(p + 8, hs_tflags(hs, &e));
	if (!hs->no_zeroes)
		memset(p + 10, 0, 124);
	hs->chosen = e;
	hs->chosen.tflags = hs_tflags(hs, &e);
	hs->chosen_meta_alloc = hs_meta_for(hs, hs->data, hs->opt_len);
	hs->via_export_name = true;
	hs->state = NBD_HS_GO;
}

struct hs_list_arg {
	struct nbd_hs *hs;
};

static void
hs_list_emit(void *arg, const struct nbd_hs_export *e)
{
	struct nbd_hs *hs = ((struct hs_list_arg *)arg)->hs;
	size_t nlen = strlen(e->name);
	uint8_t len[4];

	if (hs->state == NBD_HS_FAIL)
		return;
	/* NBD_REP_SERVER: 32-bit name length, name, then a human-readable description */
	put_be32(len, (uint32_t)nlen);
	hs_reply(hs, NVL_NBD_REP_SERVER, len, 4, e->name, nlen, e->description,
		 strlen(e->description));
}

static void
hs_opt_list(struct nbd_hs *hs)
{
	struct hs_list_arg a = { .hs = hs };

	if (hs->opt_len != 0) {
		hs_error(hs, NVL_NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
		return;
	}
	hs->ops->list(hs->ctx, hs_list_emit, &a);
	hs_reply(hs, NVL_NBD_REP_ACK, NULL, 0, NULL, 0, NULL, 0);
}

static void
hs_opt_info_go(struct nbd_hs *hs)
{
	const uint8_t *d = hs->data;
	uint32_t len = hs->opt_len, namelen;
	uint16_t nreq;
	bool want_name = false, want_desc = false, want_bs = false;
	struct nbd_hs_export e;
	char msg[160];
	uint32_t rc;
	uint8_t info[14];

	/* Data: 32-bit name length, name, 16-bit request count, 16-bit requests */
	if (len < 6) {
		hs_error(hs, NVL_NBD_REP_ERR_INVALID, "option data too short (%u bytes)", len);
		return;
	}
	namelen = get_be32(d);
	if (namelen > len - 6 || namelen > NVL_NBD_MAX_STRING) {
		hs_error(hs, NVL_NBD_REP_ERR_INVALID, "export name length %u exceeds the option",
			 namelen);
		return;
	}
	nreq = get_be16(d + 4 + namelen);
	if ((uint64_t)len != 4ull + namelen + 2 + 2ull * nreq) {
		hs_error(hs, NVL_NBD_REP_ERR_INVALID,
			 "option length %u does not match %u information requests", len, nreq);
		return;
	}
	for (uint16_t i = 0; i < nreq; i++) {
		switch (get_be16(d + 4 + namelen + 2 + 2u * i)) {
		case NVL_NBD_INFO_NAME:
			want_name = true;
			break;
		case NVL_NBD_INFO_DESCRIPTION:
			want_desc = true;
			break;
		case NVL_NBD_INFO_BLOCK_SIZE:
			want_bs = true;
			break;
		default:
			break; /* "The server MUST ignore any information requests it does not understand" */
		}
	}
	if (memchr(d + 4, 0, namelen)) {
		hs_error(hs, NVL_NBD_REP_ERR_INVALID, "export name contains NUL");
		return;
	}
	rc = hs->ops->lookup(hs->ctx, (const char *)d + 4, namelen, &e, msg, sizeof(msg));
	if (rc) {
		hs_error(hs, rc, "%s", msg);
		return;
	}
	/* NBD_INFO_EXPORT is mandatory before a successful ACK */
	put_be16(info, NVL_NBD_INFO_EXPORT);
	put_be64(info + 2, e.size);
	put_be16(info + 10, hs_tflags(hs, &e));
	hs_reply(hs, NVL_NBD_REP_INFO, info, 12, NULL, 0, NULL, 0);
	if (want_name || namelen == 0) {
		put_be16(info, NVL_NBD_INFO_NAME);
		hs_reply(hs, NVL_NBD_REP_INFO, info, 2, e.name, strlen(e.name), NULL, 0);
	}
	if (want_desc && e.description[0]) {
		put_be16(info, NVL_NBD_INFO_DESCRIPTION);
		hs_reply(hs, NVL_NBD_REP_INFO, info, 2, e.description, strlen(e.description), NULL,
			 0);
	}
	/* Always sent: we enforce non-default constraints (minimum = the bdev's block),
	 * and a client that did not ask ignores it. */
	put_be16(info, NVL_NBD_INFO_BLOCK_SIZE);
	put_be32(info + 2, e.min_block);
	put_be32(info + 6, e.pref_block);
	put_be32(info + 10, e.max_block);
	hs_reply(hs, NVL_NBD_REP_INFO, info, 14, NULL, 0, NULL, 0);
	hs_reply(hs, NVL_NBD_REP_ACK, NULL, 0, NULL, 0, NULL, 0);
	if (hs->opt == NVL_NBD_OPT_GO && hs->state != NBD_HS_FAIL) {
		hs->chosen = e;
		hs->chosen.tflags = hs_tflags(hs, &e);
		hs->chosen_meta_alloc = hs_meta_for(hs, d + 4, namelen);
		hs->block_size_asked = want_bs;
		hs->state = NBD_HS_GO;
	}
}

/*
 * NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT ("Metadata
 * querying"). Data: 32-bit export name length, name, 32-bit query count,
 * then per query a 32-bit length and the query. We know one context,
 * base:allocation. A query must be "namespace:leaf"; in the base namespace
 * "base:allocation" selects it and "base:" lists it (LIST only: SET MUST
 * ignore it); unknown leaves and other namespaces are ignored. No query
 * lists everything (LIST) or selects nothing (SET). SET replaces the
 * selection even when it fails, so it is cleared first.
 */
static void
hs_opt_meta_context(struct nbd_hs *hs)
{
	static const char ctx_name[] = NVL_NBD_META_BASE_ALLOCATION;
	const bool set = hs->opt == NVL_NBD_OPT_SET_META_CONTEXT;
	const uint8_t *d = hs->data;
	uint32_t len = hs->opt_len, namelen, nq, pos;
	struct nbd_hs_export e;
	bool match = false;
	char msg[160];
	uint32_t rc;
	uint8_t id[4];

	if (set) {
		hs->meta_alloc = false;
		hs->meta_name_len = 0;
	}
	if (!hs->structured) {
		hs_error(hs, NVL_NBD_REP_ERR_INVALID,
			 "metadata contexts need structured replies (NBD_OPT_STRUCTURED_REPLY) first");
		return;
	}
	if (len < 8) {
		hs_error(hs, NVL_NBD_REP_ERR_INVALID, "option data too short (%u bytes)", len);
		return;
	}
	namelen = get_be32(d);
	if (namelen > len - 8 || namelen > NVL_NBD_MAX_STRING) {
		hs_error(hs, NVL_NBD_REP_ERR_INVALID, "export name length %u exceeds the option",
			 namelen);
		return;
	}
	if (memchr(d + 4, 0, namelen)) {
		hs_error(hs, NVL_NBD_REP_ERR_INVALID, "export name contains NUL");
		return;
	}
	nq = get_be32(d + 4 + namelen);
	pos = 8 + namelen;
	/* first the syntax of every query: nothing is answered for a malformed option */
	for (uint32_t i = 0; i < nq; i++) {
		uint32_t qlen;

		if (len - pos < 4) {
			hs_error(hs, NVL_NBD_REP_ERR_INVALID,
				 "query %u of %u lies beyond the option's %u bytes", i, nq, len);
			return;
		}
		qlen = get_be32(d + pos);
		pos += 4;
		if (qlen > len - pos || qlen > NVL_NBD_MAX_STRING) {
			hs_error(hs, NVL_NBD_REP_ERR_INVALID,
				 "query %u length %u exceeds the option", i, qlen);
			return;
		}
		if (memchr(d + pos, 0, qlen) || memchr(d + pos, ':', qlen) == NULL) {
			hs_error(hs, NVL_NBD_REP_ERR_INVALID,
				 "query %u is not 'namespace:name' (e.g. base:allocation)", i);
			return;
		}
		if (qlen == sizeof(ctx_name) - 1 && memcmp(d + pos, ctx_name, qlen) == 0)
			match = true;
		else if (!set && qlen == 5 && memcmp(d + pos, "base:", 5) == 0)
			match = true; /* the base namespace's wildcard */
		pos += qlen;
	}
	if (pos != len) {
		hs_error(hs, NVL_NBD_REP_ERR_INVALID, "%u bytes follow the last query", len - pos);
		return;
	}
	rc = hs->ops->lookup(hs->ctx, (const char *)d + 4, namelen, &e, msg, sizeof(msg));
	if (rc) {
		hs_error(hs, rc, "%s", msg);
		return;
	}
	if (nq == 0 && !set)
		match = true; /* "the server MUST return all the metadata contexts" */
	if (match) {
		/* LIST: "The metadata context ID in these replies is reserved and SHOULD be
		 * set to zero" */
		put_be32(id, set ? NBD_META_ID_BASE_ALLOCATION : 0);
		hs_reply(hs, NVL_NBD_REP_META_CONTEXT, id, 4, ctx_name, sizeof(ctx_name) - 1, NULL,
			 0);
	}
	hs_reply(hs, NVL_NBD_REP_ACK, NULL, 0, NULL, 0, NULL, 0);
	if (set && match && hs->state != NBD_HS_FAIL) {
		hs->meta_alloc = true;
		hs->meta_name_len = namelen;
		memcpy(hs->meta_name, d + 4, namelen);
	}
}

/* One complete option (header in hs->opt/opt_len, data in hs->data). */
static void
hs_option(struct nbd_hs *hs)
{
	hs->nopts++;
	if (hs->opt == NVL_NBD_OPT_EXPORT_NAME) {
		hs_opt_export_name(hs);
		return;
	}
	if (hs->opt == NVL_NBD_OPT_ABORT) {
		/* "The server MUST reply with NBD_REP_ACK" (data, if any, is ignored) */
		hs_reply(hs, NVL_NBD_REP_ACK, NULL, 0, NULL, 0, NULL, 0);
		hs->state = NBD_HS_ABORT;
		return;
	}
	if (hs->refuse) {
		hs_error(hs, NVL_NBD_REP_ERR_POLICY, "%s", hs->refuse);
		return;
	}
	if (hs->shutting_down) {
		hs_error(hs, NVL_NBD_REP_ERR_SHUTDOWN, "server is shutting down");
		return;
	}
	switch (hs->opt) {
	case NVL_NBD_OPT_LIST:
		hs_opt_list(hs);
		break;
	case NVL_NBD_OPT_STARTTLS:
		/* NOTLS mode: ERR_UNSUP (we do not support the option at all) */
		hs_error(hs, NVL_NBD_REP_ERR_UNSUP, "TLS is not supported by this server");
		break;
	case NVL_NBD_OPT_INFO:
	case NVL_NBD_OPT_GO:
		hs_opt_info_go(hs);
		break;
	case NVL_NBD_OPT_STRUCTURED_REPLY:
		if (hs->opt_len != 0)
			hs_error(hs, NVL_NBD_REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data");
		else if (hs->structured)
			hs_error(hs, NVL_NBD_REP_ERR_INVALID, "structured replies already negotiated");
		else {
			hs->structured = true;
			hs_reply(hs, NVL_NBD_REP_ACK, NULL, 0, NULL, 0, NULL, 0);
		}
		break;
	case NVL_NBD_OPT_LIST_META_CONTEXT:
	case NVL_NBD_OPT_SET_META_CONTEXT:
		hs_opt_meta_context(hs);
		break;
	default:
		/* includes EXTENDED_HEADERS (so BLOCK_STATUS is only ever the 32-bit
		 * form); the client falls back */
		hs_error(hs, NVL_NBD_REP_ERR_UNSUP, "option %u is not supported", hs->opt);
		break;
	}
}

size_t
nbd_hs_feed(struct nbd_hs *hs, const uint8_t *buf, size_t len)
{
	size_t used = 0;

	while (used < len && !nbd_hs_done(hs)) {
		size_t avail = len - used;

		switch (hs->state) {
		case NBD_HS_CFLAGS: {
			size_t n = NVL_MIN((size_t)(4 - hs->hdr_got), avail);
			uint32_t cf;

			memcpy(hs->hdr + hs->hdr_got, buf + used, n);
			hs->hdr_got += (uint32_t)n;
			used += n;
			if (hs->hdr_got < 4)
				break;
			hs->hdr_got = 0;
			cf = get_be32(hs->hdr);
			/* "the server MUST drop the TCP connection if the client sets an unknown flag" */
			if (cf & ~(NVL_NBD_FLAG_C_FIXED_NEWSTYLE | NVL_NBD_FLAG_C_NO_ZEROES)) {
				hs->state = NBD_HS_FAIL;
				hs->fail_reason = "unknown client flags";
				return used;
			}
			hs->no_zeroes = cf & NVL_NBD_FLAG_C_NO_ZEROES;
			hs->state = NBD_HS_OPT_HDR;
			break;
		}
		case NBD_HS_OPT_HDR: {
			size_t n = NVL_MIN((size_t)(16 - hs->hdr_got), avail);

			memcpy(hs->hdr + hs->hdr_got, buf + used, n);
			hs->hdr_got += (uint32_t)n;
			used += n;
			if (hs->hdr_got < 16)
				break;
			hs->hdr_got = 0;
			if (get_be64(hs->hdr) != NVL_NBD_IHAVEOPT) {
				hs->state = NBD_HS_FAIL;
				hs->fail_reason = "bad option magic";
				return used;
			}
			hs->opt = get_be32(hs->hdr + 8);
			hs->opt_len = get_be32(hs->hdr + 12);
			hs->opt_got = 0;
			if (hs->opt_len > NBD_OPT_DATA_MAX) {
				if (hs->opt == NVL_NBD_OPT_EXPORT_NAME) {
					/* cannot error it, and no name is that long */
					hs->state = NBD_HS_FAIL;
					hs->fail_reason = "oversized NBD_OPT_EXPORT_NAME";
					return used;
				}
				hs->state = NBD_HS_OPT_SKIP;
				break;
			}
			hs->state = NBD_HS_OPT_DATA;
			if (hs->opt_len == 0) {
				hs->state = NBD_HS_OPT_HDR;
				hs_option(hs);
				return used;
			}
			break;
		}
		case NBD_HS_OPT_DATA: {
			size_t n = NVL_MIN((size_t)(hs->opt_len - hs->opt_got), avail);

			memcpy(hs->data + hs->opt_got, buf + used, n);
			hs->opt_got += (uint32_t)n;
			used += n;
			if (hs->opt_got < hs->opt_len)
				break;
			hs->state = NBD_HS_OPT_HDR;
			hs_option(hs);
			return used;
		}
		case NBD_HS_OPT_SKIP: {
			size_t n = NVL_MIN((size_t)(hs->opt_len - hs->opt_got), avail);

			hs->opt_got += (uint32_t)n;
			used += n;
			if (hs->opt_got < hs->opt_len)
				break;
			hs->state = NBD_HS_OPT_HDR;
			hs->nopts++;
			if (hs->opt == NVL_NBD_OPT_ABORT) {
				hs_reply(hs, NVL_NBD_REP_ACK, NULL, 0, NULL, 0, NULL, 0);
				hs->state = NBD_HS_ABORT;
			} else {
				hs_error(hs, NVL_NBD_REP_ERR_TOO_BIG,
					 "option data of %u bytes is larger than %u", hs->opt_len,
					 NBD_OPT_DATA_MAX);
			}
			return used;
		}
		default:
			return used;
		}
	}
	return used;
}

/* ---- transmission ---------------------------------------------------------- */

bool
nbd_req_decode(const uint8_t *p, struct nbd_req_hdr *r)
{
	if (get_be32(p) != NVL_NBD_REQUEST_MAGIC)
		return false;
	r->flags = get_be16(p + 4);
	r->type = get_be16(p + 6);
	r->handle = get_be64(p + 8);
	r->offset = get_be64(p + 16);
	r->length = get_be32(p + 24);
	return true;
}

const char *
nbd_cmd_name(uint16_t type)
{
	static const char *const names[] = { "READ", "WRITE", "DISC", "FLUSH", "TRIM", "CACHE",
					     "WRITE_ZEROES", "BLOCK_STATUS", "RESIZE" };

	return type < NVL_ARRAY_SIZE(names) ? names[type] : "UNKNOWN";
}

uint32_t
nbd_req_check(const struct nbd_xparams *x, const struct nbd_req_hdr *r, const char **why)
{
	uint32_t allowed = NVL_NBD_CMD_FLAG_FUA; /* "valid for all commands" */
	bool writes = false;
	uint64_t end;

	switch (r->type) {
	case NVL_NBD_CMD_READ:
		if (x->tflags & NVL_NBD_FLAG_SEND_DF)
			allowed |= NVL_NBD_CMD_FLAG_DF;
		break;
	case NVL_NBD_CMD_WRITE:
	case NVL_NBD_CMD_TRIM:
		writes = true;
		break;
	case NVL_NBD_CMD_WRITE_ZEROES:
		writes = true;
		allowed |= NVL_NBD_CMD_FLAG_NO_HOLE;
		if (x->tflags & NVL_NBD_FLAG_SEND_FAST_ZERO)
			allowed |= NVL_NBD_CMD_FLAG_FAST_ZERO;
		break;
	case NVL_NBD_CMD_DISC:
		return 0; /* no reply; the connection ends after in-flight requests */
	case NVL_NBD_CMD_FLUSH:
	case NVL_NBD_CMD_CACHE:
		break;
	case NVL_NBD_CMD_BLOCK_STATUS:
		/* "Servers SHOULD reply with NBD_EINVAL to clients sending
		 * NBD_CMD_BLOCK_STATUS without selecting at least one metadata context" */
		if (!x->structured || !x->meta_alloc) {
			*why = "no metadata context was negotiated (NBD_OPT_SET_META_CONTEXT "
			       "base:allocation)";
			return NVL_NBD_EINVAL;
		}
		allowed |= NVL_NBD_CMD_FLAG_REQ_ONE;
		break;
	default:
		*why = "unknown command";
		return NVL_NBD_EINVAL;
	}
	/* "SHOULD return EINVAL if it receives ... a flag not explicitly documented
	 * as applicable to the given request" */
	if (r->flags & ~allowed) {
		*why = "invalid command flags";
		return NVL_NBD_EINVAL;
	}
	if (r->type == NVL_NBD_CMD_FLUSH) {
		/* "length and offset are reserved, and MUST be set to all-zero" */
		if (r->offset || r->length) {
			*why = "flush with nonzero offset or length";
			return NVL_NBD_EINVAL;
		}
		return 0;
	}
	if (writes && (x->tflags & NVL_NBD_FLAG_READ_ONLY)) {
		*why = "export is read-only";
		return NVL_NBD_EPERM;
	}
	if ((r->type == NVL_NBD_CMD_TRIM && !(x->tflags & NVL_NBD_FLAG_SEND_TRIM)) ||
	    (r->type == NVL_NBD_CMD_WRITE_ZEROES &&
	     !(x->tflags & NVL_NBD_FLAG_SEND_WRITE_ZEROES))) {
		*why = "command not supported by this export";
		return NVL_NBD_EINVAL;
	}
	if (r->length == 0) {
		*why = "zero-length request";
		return NVL_NBD_EINVAL;
	}
	/* "SHOULD report an EINVAL error if the client's request is not aligned to
	 * advertised minimum block size boundaries" */
	if ((r->offset | r->length) & (x->min_block - 1)) {
		*why = "offset or length not a multiple of the minimum block size";
		return NVL_NBD_EINVAL;
	}
	/* "SHOULD return ENOSPC if it receives a write request including one or more
	 * sectors beyond the size of the device"; EINVAL for reads, trims, caches,
	 * block status */
	if (__builtin_add_overflow(r->offset, (uint64_t)r->length, &end) || end > x->size) {
		*why = "request beyond the end of the export";
		return (r->type == NVL_NBD_CMD_WRITE || r->type == NVL_NBD_CMD_WRITE_ZEROES)
			       ? NVL_NBD_ENOSPC
			       : NVL_NBD_EINVAL;
	}
	/* maximum block size bounds READ, WRITE, CACHE (TRIM and WRITE_ZEROES take any
	 * length: they carry no payload and the bdev splits nothing) */
	if ((r->type == NVL_NBD_CMD_READ || r->type == NVL_NBD_CMD_WRITE ||
	     r->type == NVL_NBD_CMD_CACHE) &&
	    r->length > x->max_block) {
		*why = "length exceeds the maximum block size";
		return NVL_NBD_EINVAL;
	}
	return 0;
}

uint32_t
nbd_errno_to_nbd(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case -EPERM:
	case -EACCES:
	case -EROFS:
	case -EBADF:
		return NVL_NBD_EPERM;
	case -ENOMEM:
		return NVL_NBD_ENOMEM;
	case -EINVAL:
		return NVL_NBD_EINVAL;
	case -ENOSPC:
	case -EDQUOT:
	case -EFBIG: /* "SHOULD map the EDQUOT and EFBIG errors to ENOSPC" */
		return NVL_NBD_ENOSPC;
	case -EOVERFLOW:
		return NVL_NBD_EOVERFLOW;
	case -ENOTSUP:
		return NVL_NBD_ENOTSUP;
	case -ESHUTDOWN:
		return NVL_NBD_ESHUTDOWN;
	default:
		return NVL_NBD_EIO;
	}
}

size_t
nbd_enc_simple(uint8_t *buf, uint64_t handle, uint32_t error)
{
	put_be32(buf, NVL_NBD_SIMPLE_REPLY_MAGIC);
	put_be32(buf + 4, error);
	put_be64(buf + 8, handle);
	return NBD_SIMPLE_HDR_SIZE;
}

static void
enc_sr_hdr(uint8_t *buf, uint64_t handle, uint16_t flags, uint16_t type, uint32_t len)
{
	put_be32(buf, NVL_NBD_STRUCTURED_REPLY_MAGIC);
	put_be16(buf + 4, flags);
	put_be16(buf + 6, type);
	put_be64(buf + 8, handle);
	put_be32(buf + 16, len);
}

size_t
nbd_enc_sr_data(uint8_t *buf, uint64_t handle, uint64_t offset, uint32_t len, bool done)
{
	enc_sr_hdr(buf, handle, done ? NVL_NBD_REPLY_FLAG_DONE : 0, NVL_NBD_REPLY_TYPE_OFFSET_DATA,
		   8 + len);
	put_be64(buf + NBD_SR_HDR_SIZE, offset);
	return NBD_SR_DATA_HDR_SIZE;
}

size_t
nbd_enc_sr_block_status(uint8_t *buf, uint64_t handle, uint32_t id, uint32_t n)
{
	enc_sr_hdr(buf, handle, NVL_NBD_REPLY_FLAG_DONE, NVL_NBD_REPLY_TYPE_BLOCK_STATUS,
		   4 + n * NBD_BS_DESC_SIZE);
	put_be32(buf + NBD_SR_HDR_SIZE, id);
	return NBD_SR_BS_HDR_SIZE;
}

size_t
nbd_enc_bs_desc(uint8_t *buf, uint32_t length, uint32_t status)
{
	put_be32(buf, length);
	put_be32(buf + 4, status);
	return NBD_BS_DESC_SIZE;
}

size_t
nbd_enc_sr_none(uint8_t *buf, uint64_t handle)
{
	enc_sr_hdr(buf, handle, NVL_NBD_REPLY_FLAG_DONE, NVL_NBD_REPLY_TYPE_NONE, 0);
	return NBD_SR_HDR_SIZE;
}

size_t
nbd_enc_sr_error(uint8_t *buf, uint64_t handle, uint32_t error, const char *msg)
{
	size_t mlen = msg ? strnlen(msg, NBD_ERRMSG_MAX) : 0;

	enc_sr_hdr(buf, handle, NVL_NBD_REPLY_FLAG_DONE, NVL_NBD_REPLY_TYPE_ERROR,
		   (uint32_t)(6 + mlen));
	put_be32(buf + NBD_SR_HDR_SIZE, error ? error : NVL_NBD_EIO); /* MUST be nonzero */
	put_be16(buf + NBD_SR_HDR_SIZE + 4, (uint16_t)mlen);
	if (mlen)
		memcpy(buf + NBD_SR_HDR_SIZE + 6, msg, mlen);
	return NBD_SR_HDR_SIZE + 6 + mlen;
}
