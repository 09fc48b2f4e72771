/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the NBD parsers in src/proto/nbd.c as the daemon's
 * NBD server (src/nbd) uses them: the input is a client byte stream. Byte 0
 * picks how the stream is cut into reads (the handshake must not care) and
 * whether the server refuses or is shutting down; the rest goes through the
 * fixed-newstyle handshake with two fake exports, and whatever follows a
 * successful GO / EXPORT_NAME is parsed as transmission-phase requests
 * (header decode, validation, WRITE payload skipping, reply encoding), as
 * the server does. Invariants are checked with __builtin_trap(): replies
 * are well framed, output stays bounded, accepted requests are aligned and
 * inside the export, and BLOCK_STATUS passes only after structured replies
 * and a SET_META_CONTEXT of base:allocation for the export chosen. tests/fuzz/attach_nbd fuzzes the attach side's use.
 */
#include "proto/nbd.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

static const struct nbd_hs_export g_exp[2] = {
	{ .name = "disk0", .description = "fuzz disk", .size = 1 << 20, .min_block = 512,
	  .pref_block = 4096, .max_block = 1 << 16,
	  .tflags = NVL_NBD_FLAG_HAS_FLAGS | NVL_NBD_FLAG_SEND_FLUSH | NVL_NBD_FLAG_SEND_FUA |
		    NVL_NBD_FLAG_SEND_TRIM | NVL_NBD_FLAG_SEND_WRITE_ZEROES |
		    NVL_NBD_FLAG_SEND_FAST_ZERO | NVL_NBD_FLAG_SEND_CACHE },
	{ .name = "ro", .description = "", .size = 12288, .min_block = 4096, .pref_block = 4096,
	  .max_block = 4096, .tflags = NVL_NBD_FLAG_HAS_FLAGS | NVL_NBD_FLAG_READ_ONLY },
};
static unsigned g_nexp;

static uint32_t
f_lookup(void *ctx, const char *name, size_t len, struct nbd_hs_export *e, char *msg,
	 size_t msglen)
{
	(void)ctx;
	if (len == 0 && g_nexp == 1) {
		*e = g_exp[0];
		return 0;
	}
	for (unsigned i = 0; i < g_nexp; i++) {
		if (strlen(g_exp[i].name) == len && memcmp(g_exp[i].name, name, len) == 0) {
			*e = g_exp[i];
			return 0;
		}
	}
	nbd_sanitize(msg, msglen, (const uint8_t *)name, len);
	return NVL_NBD_REP_ERR_UNKNOWN;
}

static void
f_list(void *ctx, void (*emit)(void *arg, const struct nbd_hs_export *e), void *arg)
{
	(void)ctx;
	for (unsigned i = 0; i < g_nexp; i++)
		emit(arg, &g_exp[i]);
}

static const struct nbd_hs_ops g_ops = { .lookup = f_lookup, .list = f_list };

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Every queued option reply is framed: magic, then a length that fits. */
static void
check_output(const struct nbd_hs *hs, size_t from)
{
	size_t off = from;

	CHECK(hs->out_len <= NBD_HS_OUT_MAX + 4096);
	while (off < hs->out_len) {
		CHECK(off + 20 <= hs->out_len);
		CHECK(be32(hs->out + off) == 0x0003e889u && be32(hs->out + off + 4) == 0x045565a9u);
		off += 20 + be32(hs->out + off + 16);
	}
	CHECK(off == hs->out_len);
}

static void
run_requests(const struct nbd_hs *hs, const uint8_t *p, size_t n)
{
	struct nbd_xparams x = {
		.size = hs->chosen.size,
		.min_block = hs->chosen.min_block,
		.max_block = hs->chosen.max_block,
		.tflags = hs->chosen.tflags,
		.structured = hs->structured,
		.meta_alloc = hs->chosen_meta_alloc,
	};
	uint8_t reply[NBD_SR_ERR_MAX];

	CHECK(!x.meta_alloc || x.structured);

	while (n >= NBD_REQ_HDR_SIZE) {
		struct nbd_req_hdr h;
		const char *why = "";
		uint32_t err;

		if (!nbd_req_decode(p, &h))
			return; /* the server disconnects */
		p += NBD_REQ_HDR_SIZE;
		n -= NBD_REQ_HDR_SIZE;
		if (h.type == NVL_NBD_CMD_DISC)
			return;
		err = nbd_req_check(&x, &h, &why);
		if (err == 0 && h.type != NVL_NBD_CMD_FLUSH) {
			CHECK(h.length != 0);
			CHECK(((h.offset | h.length) & (x.min_block - 1)) == 0);
			CHECK(h.offset + h.length <= x.size && h.offset + h.length >= h.offset);
			if (h.type == NVL_NBD_CMD_READ || h.type == NVL_NBD_CMD_WRITE)
				CHECK(h.length <= x.max_block);
			if (h.type != NVL_NBD_CMD_READ && h.type != NVL_NBD_CMD_CACHE &&
			    h.type != NVL_NBD_CMD_BLOCK_STATUS)
				CHECK(!(x.tflags & NVL_NBD_FLAG_READ_ONLY));
			if (h.type == NVL_NBD_CMD_BLOCK_STATUS)
				CHECK(x.structured && x.meta_alloc);
		}
		if (err)
			CHECK(why != NULL && nbd_enc_sr_error(reply, h.handle, err, why) <= sizeof(reply));
		else if (h.type == NVL_NBD_CMD_READ && x.structured)
			nbd_enc_sr_data(reply, h.handle, h.offset, h.length, true);
		else if (h.type == NVL_NBD_CMD_BLOCK_STATUS)
			CHECK(nbd_enc_sr_block_status(reply, h.handle, NBD_META_ID_BASE_ALLOCATION,
						      1) +
				      nbd_enc_bs_desc(reply + NBD_SR_BS_HDR_SIZE, h.length, 0) <=
			      sizeof(reply));
		else
			nbd_enc_simple(reply, h.handle, err);
		(void)nbd_cmd_name(h.type);
		if (nbd_req_has_payload(&h)) {
			size_t skip = h.length < n ? h.length : n;

			p += skip;
			n -= skip;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct nbd_hs hs;
	size_t chunk, used = 0, from = 18; /* the greeting is not an option reply */
	uint8_t mode;

	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	chunk = (size_t)(mode & 0x0f) + 1;     /* 1..16 bytes per read, 16 = all at once */
	g_nexp = (mode & 0x10) ? 1 : 2;
	if (nbd_hs_init(&hs, &g_ops, NULL, (mode & 0x20) ? "refused" : NULL) < 0)
		return 0;
	hs.shutting_down = (mode & 0xc0) == 0xc0;
	while (used < size && !nbd_hs_done(&hs)) {
		size_t len = chunk == 16 ? size - used : chunk;
		size_t n;

		if (len > size - used)
			len = size - used;
		n = nbd_hs_feed(&hs, data + used, len);
		CHECK(n <= len);
		used += n;
		if (hs.via_export_name)
			break; /* its reply is not an option reply */
		check_output(&hs, from);
		/* as the server does: the output is sent before more input is read */
		nbd_hs_out_consume(&hs, hs.out_len);
		from = 0;
		if (n == 0 && !nbd_hs_done(&hs))
			__builtin_trap(); /* a live machine always makes progress */
	}
	if (hs.state == NBD_HS_GO) {
		CHECK(hs.chosen.name != NULL && hs.chosen.min_block != 0);
		run_requests(&hs, data + used, size - used);
	}
	nbd_hs_fini(&hs);
	return 0;
}
