/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the chunking arithmetic of the brick's RDMA client
 * (src/brick/client_rdma.h): how a one-sided READ/WRITE call of len bytes
 * is cut into work requests. Pure functions; no verbs. Single-threaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "brick/client_rdma.h"
#include "nvlend/spec/brick.h"

/* The chunks of len tile [0, len) in order, each 1..chunk bytes, all but
 * the last exactly chunk bytes. */
static void
check_tiling(size_t len, size_t chunk)
{
	size_t n = brick_rdma_nchunks(len, chunk), off, clen, next = 0;

	for (size_t i = 0; i < n; i++) {
		clen = brick_rdma_chunk(len, chunk, i, &off);
		assert_int_equal(off, next);
		assert_true(clen >= 1 && clen <= chunk);
		if (i + 1 < n)
			assert_int_equal(clen, chunk);
		next = off + clen;
	}
	assert_int_equal(next, len);
	/* past the end: nothing */
	assert_int_equal(brick_rdma_chunk(len, chunk, n, &off), 0);
	assert_int_equal(off, len);
}

static void
test_counts(void **state)
{
	(void)state;
	assert_int_equal(brick_rdma_nchunks(0, BRICK_RDMA_CHUNK), 0);
	assert_int_equal(brick_rdma_nchunks(1, BRICK_RDMA_CHUNK), 1);
	assert_int_equal(brick_rdma_nchunks(BRICK_RDMA_CHUNK - 1, BRICK_RDMA_CHUNK), 1);
	assert_int_equal(brick_rdma_nchunks(BRICK_RDMA_CHUNK, BRICK_RDMA_CHUNK), 1);
	assert_int_equal(brick_rdma_nchunks(BRICK_RDMA_CHUNK + 1, BRICK_RDMA_CHUNK), 2);
	assert_int_equal(brick_rdma_nchunks(1024 * 1024, BRICK_RDMA_CHUNK),
			 1024 * 1024 / BRICK_RDMA_CHUNK);
	/* a whole block fits the queue pair's one-sided depth */
	assert_int_equal(brick_rdma_nchunks(NVL_BRICK_BLOCK_SIZE, BRICK_RDMA_CHUNK),
			 NVL_BRICK_BLOCK_SIZE / BRICK_RDMA_CHUNK);
	assert_true(NVL_BRICK_BLOCK_SIZE % BRICK_RDMA_CHUNK == 0);
	assert_int_equal(brick_rdma_nchunks(100, 0), 0);
}

static void
test_chunks(void **state)
{
	size_t off = 0;

	(void)state;
	/* 300 KiB + 5 in 128 KiB chunks: 128K, 128K, 44K + 5 */
	assert_int_equal(brick_rdma_nchunks(300 * 1024 + 5, 128 * 1024), 3);
	assert_int_equal(brick_rdma_chunk(300 * 1024 + 5, 128 * 1024, 0, &off), 128 * 1024);
	assert_int_equal(off, 0);
	assert_int_equal(brick_rdma_chunk(300 * 1024 + 5, 128 * 1024, 1, &off), 128 * 1024);
	assert_int_equal(off, 128 * 1024);
	assert_int_equal(brick_rdma_chunk(300 * 1024 + 5, 128 * 1024, 2, &off), 44 * 1024 + 5);
	assert_int_equal(off, 256 * 1024);
	assert_int_equal(brick_rdma_chunk(300 * 1024 + 5, 128 * 1024, 3, &off), 0);
	assert_int_equal(off, 300 * 1024 + 5);
	/* zero chunk size: nothing, never a division by zero */
	assert_int_equal(brick_rdma_chunk(100, 0, 0, &off), 0);
	assert_int_equal(off, 100);
	/* a one-byte sync-read is one request */
	assert_int_equal(brick_rdma_chunk(1, BRICK_RDMA_CHUNK, 0, &off), 1);
	assert_int_equal(off, 0);
}

static void
test_tiling(void **state)
{
	static const size_t lens[] = { 1, 4095, 4096, 65536, 131071, 131072, 131073,
				       1024 * 1024 - 1, 1024 * 1024, 1024 * 1024 + 12345,
				       2 * 1024 * 1024 - 1, 2 * 1024 * 1024 };
	static const size_t chunks[] = { 1, 4096, 65536, BRICK_RDMA_CHUNK, 256 * 1024,
					 2 * 1024 * 1024, 3 * 1024 * 1024 };

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (size_t j = 0; j < sizeof(chunks) / sizeof(chunks[0]); j++)
			if (lens[i] / chunks[j] < 100000)
				check_tiling(lens[i], chunks[j]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_tiling),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
