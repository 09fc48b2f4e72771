/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz what the attach mechanisms accept from the kernel
 * (tools/nvlend/attach_req.c, the code attach_ublk.c and attach_fuse.c run):
 * ublk I/O descriptors and FUSE read/write/fallocate requests with every
 * offset, length, op and flag, on devices of any size (a whole number of
 * 512..4096-byte blocks). Asserts that whatever is accepted stays inside
 * the device, is made of whole blocks where the namespace needs them, fits
 * the buffer it is read into, and that nothing is written to a read-only
 * device.
 *
 * Input: 1 byte which (ublk, read, write, fallocate), 1 byte block size
 * (512 << (b % 4)), 1 byte flags (bit 0 read-only), 8 bytes device blocks
 * (masked to 2^40), then the request: 8 bytes offset, 8 bytes length,
 * 4 bytes op/mode, 4 bytes flags.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../../tools/nvlend/attach_req.c"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

#define IO_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct host_session_io io;
	struct attach_fuse_range r;
	uint64_t blocks, dev, a, b;
	uint32_t bs, op, fl;
	bool ro;
	int rc;

	if (size < 11 + 24)
		return 0;
	bs = 512u << (data[1] % 4);
	ro = data[2] & 1;
	memcpy(&blocks, data + 3, 8);
	blocks &= (1ULL << 40) - 1;
	dev = blocks * bs;
	memcpy(&a, data + 11, 8);
	memcpy(&b, data + 19, 8);
	memcpy(&op, data + 27, 4);
	memcpy(&fl, data + 31, 4);
	memset(&io, 0, sizeof(io));
	switch (data[0] % 4) {
	case 0:
		rc = attach_ublk_req((uint8_t)op, fl, a, (uint32_t)b, dev, IO_MAX, &io);
		if (rc < 0)
			break;
		if (io.op == HOST_SESSION_FLUSH) {
			CHECK(io.offset == 0 && io.len == 0);
			break;
		}
		CHECK(io.len > 0 && io.offset % 512 == 0 && io.len % 512 == 0);
		CHECK(io.offset <= dev && io.len <= dev - io.offset);
		if (io.op == HOST_SESSION_READ || io.op == HOST_SESSION_WRITE)
			CHECK(io.len <= IO_MAX);
		break;
	case 1:
		CHECK(attach_fuse_read_range((off_t)a, (size_t)b, dev, bs, IO_MAX, &r) == 0);
		if (r.end == r.start)
			break;
		CHECK(r.a0 <= r.start && r.start < r.end && r.end <= r.a1);
		CHECK(r.a0 % bs == 0 && r.a1 % bs == 0);
		CHECK(r.a1 <= dev);                  /* never read past the namespace */
		CHECK(r.a1 - r.a0 <= IO_MAX + bs);   /* the worker's buffer */
		CHECK(r.end - r.start <= IO_MAX && r.end - r.start <= b);
		break;
	case 2: {
		int64_t n = attach_fuse_write_len((off_t)a, (size_t)b, dev, bs, ro);

		if (n < 0)
			break;
		CHECK(!ro);
		CHECK((uint64_t)n <= b && (uint64_t)n % bs == 0);
		CHECK(a % bs == 0 && a < dev && (uint64_t)n <= dev - a);
		break;
	}
	default:
		rc = attach_fuse_fallocate((int)op, (off_t)a, (off_t)b, dev, bs, ro, &io);
		if (rc <= 0)
			break;
		CHECK(!ro && io.op == HOST_SESSION_WRITE_ZEROES);
		CHECK(io.len > 0 && io.offset % bs == 0 && io.len % bs == 0);
		CHECK(io.offset <= dev && io.len <= dev - io.offset);
		break;
	}
	return 0;
}
