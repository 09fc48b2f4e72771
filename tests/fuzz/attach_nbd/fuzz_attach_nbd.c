// SPDX-License-Identifier: BSD-3-Clause
/*
 * Fuzz the NBD transmission-phase codec the attach process serves the
 * kernel's NBD client with (tools/nvlend/attach_nbd_proto.c): arbitrary
 * bytes as a stream of request headers, validated against an export whose
 * size, block size and read-only flag come from the input too. Asserts
 * that whatever passes validation is in range and aligned.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../../tools/nvlend/attach_nbd_proto.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t export_size;
	uint32_t bs;
	bool ro;

	if (size < 10)
		return 0;
	memcpy(&export_size, data, 8);
	bs = 512u << (data[8] % 4);
	ro = data[9] & 1;
	export_size &= (1ULL << 50) - 1;
	data += 10;
	size -= 10;
	for (size_t off = 0; off < size; off += ATTACH_NBD_REQUEST_SIZE) {
		size_t n = size - off;
		struct attach_nbd_req r;
		uint8_t reply[ATTACH_NBD_REPLY_SIZE];
		uint32_t err;

		if (n > ATTACH_NBD_REQUEST_SIZE)
			n = ATTACH_NBD_REQUEST_SIZE;
		if (attach_nbd_req_parse(data + off, n, &r) < 0)
			continue;
		err = attach_nbd_req_check(&r, export_size, bs, ro);
		if (err == 0 && r.type != ATTACH_NBD_CMD_FLUSH && r.type != ATTACH_NBD_CMD_DISC) {
			assert(r.length > 0);
			assert(r.offset % bs == 0 && r.length % bs == 0);
			assert(r.offset <= export_size && r.length <= export_size - r.offset);
			if (r.type == ATTACH_NBD_CMD_READ || r.type == ATTACH_NBD_CMD_WRITE)
				assert(r.length <= ATTACH_NBD_MAX_LEN);
			if (ro)
				assert(r.type == ATTACH_NBD_CMD_READ ||
				       r.type == ATTACH_NBD_CMD_CACHE);
		}
		attach_nbd_reply_build(reply, err, r.handle);
		assert(memcmp(reply + 8, data + off + 8, 8) == 0); /* the handle goes back as is */
		(void)attach_nbd_err_from_errno(-(int)(err & 0xff));
	}
	return 0;
}
