/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz the one NBD codec (src/proto/nbd.c) as the attach process uses it to
 * serve the kernel's NBD client (tools/nvlend/attach_nbd.c): no handshake,
 * the transmission parameters of attach_nbd_xparams() for an export whose
 * size, block size and read-only flag come from the input, then arbitrary
 * bytes as the request stream, cut as the attach process cuts it (28-byte
 * headers, a WRITE's payload skipped, a bad magic ends the connection).
 * Asserts that whatever passes validation is aligned, inside the export,
 * within the payload limit and no write to a read-only export, and that the
 * reply echoes the handle.
 *
 * Input: 8 bytes export size (host order, masked to 2^50), 1 byte block
 * size (512 << (b % 4)), 1 byte read-only (bit 0), then the stream.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/nbd.h"
#include "../../../tools/nvlend/attach_nbd.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_accepted(const struct nbd_xparams *x, const struct nbd_req_hdr *r, uint32_t bs, bool ro)
{
	if (r->type == NVL_NBD_CMD_FLUSH) {
		CHECK(r->offset == 0 && r->length == 0);
		return;
	}
	CHECK(r->length > 0);
	CHECK(r->offset % bs == 0 && r->length % bs == 0);
	CHECK(r->offset <= x->size && r->length <= x->size - r->offset);
	if (r->type == NVL_NBD_CMD_READ || r->type == NVL_NBD_CMD_WRITE)
		CHECK(r->length <= NBD_MAX_PAYLOAD);
	if (ro)
		CHECK(r->type == NVL_NBD_CMD_READ || r->type == NVL_NBD_CMD_CACHE);
	CHECK(r->type == NVL_NBD_CMD_READ || r->type == NVL_NBD_CMD_WRITE ||
	      r->type == NVL_NBD_CMD_TRIM || r->type == NVL_NBD_CMD_WRITE_ZEROES ||
	      r->type == NVL_NBD_CMD_CACHE);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nbd_xparams x;
	uint64_t export_size;
	uint32_t bs;
	bool ro;

	if (size < 10)
		return 0;
	memcpy(&export_size, data, 8);
	bs = 512u << (data[8] % 4);
	ro = data[9] & 1;
	export_size &= (1ULL << 50) - 1;
	attach_nbd_xparams(export_size, bs, ro, &x);
	data += 10;
	size -= 10;
	while (size >= NBD_REQ_HDR_SIZE) {
		struct nbd_req_hdr r;
		uint8_t reply[NBD_SIMPLE_HDR_SIZE];
		const char *why = NULL;
		uint32_t err;

		if (!nbd_req_decode(data, &r))
			return 0; /* the attach process drops the connection */
		data += NBD_REQ_HDR_SIZE;
		size -= NBD_REQ_HDR_SIZE;
		if (r.type == NVL_NBD_CMD_DISC)
			continue; /* the kernel is going: no reply (the stream goes on here) */
		err = nbd_req_check(&x, &r, &why);
		if (err == 0)
			check_accepted(&x, &r, bs, ro);
		else
			CHECK(why != NULL);
		CHECK(nbd_enc_simple(reply, r.handle, err) == sizeof(reply));
		CHECK(memcmp(reply + 8, data - NBD_REQ_HDR_SIZE + 8, 8) == 0); /* handle as is */
		(void)nbd_errno_to_nbd(-(int)(err & 0xff));
		if (nbd_req_has_payload(&r)) {
			if (err && r.length > NBD_MAX_PAYLOAD)
				return 0; /* cannot resynchronize: the connection is dropped */
			if (r.length >= size)
				return 0;
			data += r.length;
			size -= r.length;
		}
	}
	return 0;
}
