/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the brick protocol server: the input is the byte
 * stream a peer sends on one connection, fed in varying chunk sizes into the
 * real connection state machine (src/brick/server.c) over a real brick on
 * tmpfs (blocks, tiering, handles, revocation, flush). Responses go to a sink
 * that sometimes accepts only part of them. Byte 0 of the input picks the
 * chunking and the transport flavour; unless its top bit is set, a valid
 * HELLO for the brick is sent first so inputs start in the serving state,
 * with a fixed identity (bit 6 clear: it owns the blocks it allocates, so
 * MAP and the data path are reachable) or anonymous (bit 6 set: every MAP
 * and FREE of a block is refused unless the input guesses its key, which it
 * cannot: block keys stay random). Fuzz builds hand out handle keys 1, 2,
 * 3... (store.c, NVL_FUZZING) so inputs can name a live handle.
 */
#include "brick/brick_internal.h"
#include "proto/brick.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct brick *g_b;
static char g_fast[64], g_slow[64];

struct feed {
	const uint8_t *p;
	size_t left;
	unsigned chunk;
	unsigned sends;
};

static long
feed_recv(void *ctx, void *buf, size_t len)
{
	struct feed *f = ctx;
	size_t n = NVL_MIN(len, f->left);

	if (f->left == 0)
		return 0; /* EOF */
	if (f->chunk)
		n = NVL_MIN(n, f->chunk);
	memcpy(buf, f->p, n);
	f->p += n;
	f->left -= n;
	return (long)n;
}

static volatile uint8_t g_sink;

static long
feed_sendv(void *ctx, const struct iovec *iov, int iovcnt, int fd)
{
	struct feed *f = ctx;
	size_t total = 0;

	(void)fd;
	for (int i = 0; i < iovcnt; i++) {
		/* touch what we are asked to send: it must be valid memory */
		const uint8_t *p = iov[i].iov_base;

		for (size_t k = 0; k < iov[i].iov_len; k += 4096)
			g_sink ^= p[k];
		if (iov[i].iov_len)
			g_sink ^= p[iov[i].iov_len - 1];
		total += iov[i].iov_len;
	}
	if ((++f->sends % 3) == 0 && total > 1)
		return (long)(total / 2); /* partial send */
	return (long)total;
}

static void
cleanup(void)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", g_fast, g_slow);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_brick: could not remove %s\n", g_fast);
}

static void
setup(void)
{
	struct brick_opts o = { .name = "fz", .capacity_blocks = 8, .fast_blocks = 3 };

	snprintf(g_fast, sizeof(g_fast), "/dev/shm/nvl-fuzz-brick-%d-f", (int)getpid());
	snprintf(g_slow, sizeof(g_slow), "/dev/shm/nvl-fuzz-brick-%d-s", (int)getpid());
	o.fast_dir = g_fast;
	o.slow_dir = g_slow;
	if (brick_create(&o, &g_b) < 0)
		abort();
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned chunks[8] = { 0, 1, 3, 7, 64, 100, 4096, 0 };
	struct brick_conn_io io = { .recv = feed_recv, .sendv = feed_sendv };
	uint8_t hello[NVL_BRICK_HDR_SIZE + BRICK_PROTO_HELLO_MAX];
	struct brick_proto_client cl = { .has_id = true, .name = "fz" };
	struct feed f = { 0 };
	struct brick_conn *c;
	struct brick_block *blk;
	uint8_t mode;
	size_t pos;

	if (g_b == NULL)
		setup();
	brick_fuzz_next_key = 0; /* the previous input's handles are all revoked */
	if (size < 1)
		return 0;
	mode = data[0];
	f.chunk = chunks[mode & 7];
	io.ctx = &f;
	io.passes_fds = (mode & 8) != 0;
	c = brick_conn_create(&io, NULL);
	if (c == NULL)
		return 0;
	if (!(mode & 0x80)) {
		struct nvl_brick_hdr h = { .magic = NVL_BRICK_MAGIC, .version = NVL_BRICK_VERSION_MAX,
					   .opcode = NVL_BRICK_OP_HELLO, .req_id = 1 };
		size_t n;

		/* with an identity (it owns what it allocates), or anonymous (keys only) */
		memset(cl.secret, 0x5a, sizeof(cl.secret));
		cl.has_id = !(mode & 0x40);
		n = brick_proto_hello_encode_id("fz", &cl, hello + NVL_BRICK_HDR_SIZE,
						BRICK_PROTO_HELLO_MAX);

		h.data_len = (uint32_t)n;
		brick_proto_hdr_encode(&h, hello);
		f.p = hello;
		f.left = NVL_BRICK_HDR_SIZE + n;
		while (f.left > 0 && brick_conn_process(c) == 0)
			;
	}
	f.p = data + 1;
	f.left = size - 1;
	while (brick_conn_process(c) == 0 && f.left > 0)
		;
	brick_conn_destroy(c); /* revokes the connection's handles */
	/* Blocks stay allocated across inputs (creating 2 MiB files is what costs
	 * here); once the brick is full, start over from an empty one. */
	if (g_b->blocks.count >= g_b->capacity) {
		pos = 0;
		while ((blk = brick_htab_next(&g_b->blocks, &pos)) != NULL) {
			brick_free(g_b, blk->addr);
			pos = 0;
		}
	}
	return 0;
}
