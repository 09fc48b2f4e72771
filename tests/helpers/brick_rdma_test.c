/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The brick over RDMA, driven through libnvlend (tests/functional/
 * brick_rdma_guest.sh runs it inside the QEMU guest, over soft-RoCE).
 *
 *   brick_rdma_test check URI ID_A ID_B   the sequence below, "CHECK name ok"
 *                                         per step, exit 1 at the first failure
 *   brick_rdma_test list URI ID           "BLOCK 0x... state" per allocated block
 *   brick_rdma_test bench URI SECS SIZE   one-sided WRITE bandwidth through one
 *                                         handle: "BENCH brick_write_MiBps N" (MiB/s)
 *   brick_rdma_test benchn URI COUNT SIZE COUNT writes of SIZE bytes, then exit
 *                                         (bench/brick_rdma.sh times the process)
 *   brick_rdma_test benchq URI COUNT SIZE DEPTH  the same with posted writes
 *                                         (nvl_brick_rdma_write_post), DEPTH in flight
 *
 * check: as identity A (ID_A: identity file path): alloc 2M, 4M, 6M; map 2M
 * read-write; RDMA handle (rkey, remote address); one-sided writes through
 * the handle key and the RDMA handle, read back; multi-chunk writes and
 * reads (several work requests in flight) at odd offsets and lengths, read
 * back and compared, through the bounce buffer and (a second connection
 * with NVLEND_BRICK_RDMA_REG_MIN) the caller's registered buffer; ranges
 * crossing the block's end refused with -EINVAL, the block unchanged and
 * the connection still usable; posted writes (several in flight, read back,
 * -EAGAIN past NVL_BRICK_RDMA_POST_MAX, a stale handle's failure reaped by
 * the wait with the block unchanged); sync-read; flush and flush_all; unmap, then
 * a 2 MiB write (16 chunks in flight) with the kept RDMA handle fails with
 * -EACCES (remote access error) and, on a new connection, the block still
 * holds the data and the stale handle key is refused; a handle forged to
 * reach past its region's end fails mid-pipeline (-EACCES, the chunks before
 * the bad one placed, nothing after it); identity B (ID_B) is
 * refused map and free without the key, maps with it; map 6M then free it:
 * the kept handle fails; the list shows 2M and 4M.
 * Single-threaded; every connection is its own.
 */
#include "nvlend/brick.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIB (1024ull * 1024)

static int
fail(const char *step, const char *what, int rc)
{
	printf("CHECK %s FAIL: %s: %d (%s)\n", step, what, rc, rc < 0 ? strerror(-rc) : "");
	fflush(stdout);
	exit(1);
}

static void
ok(const char *step)
{
	printf("CHECK %s ok\n", step);
	fflush(stdout);
}

static struct nvl_brick *
conn(const char *uri, const char *id)
{
	struct nvl_brick *b;
	int rc;

	setenv("NVLEND_BRICK_IDENTITY", id, 1);
	rc = nvl_brick_connect(uri, &b);
	if (rc < 0)
		fail("connect", uri, rc);
	return b;
}

static void
pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed + (i >> 12));
}

/* Multi-chunk one-sided writes and reads through connection c (handle key
 * key of the block at 2 MiB, RDMA handle rh), compared with what was
 * written; the block holds w again at the end. */
static void
multi_chunk(const char *step, struct nvl_brick *c, uint64_t key,
	    const struct nvl_brick_rdma_handle *rh, const uint8_t *w, uint8_t *r)
{
	static const size_t ranges[][2] = {
		{ 0, 2 * MIB },                 /* the whole block: 16 chunks */
		{ 4097, MIB + 333 },            /* unaligned both ends */
		{ 3, 128 * 1024 },              /* one chunk's length, two pages off */
		{ 2 * MIB - 300000, 300000 },   /* up to the block's end */
	};
	uint8_t *v = malloc(2 * MIB);
	int rc;

	if (v == NULL)
		fail(step, "malloc", -ENOMEM);
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		size_t off = ranges[i][0], len = ranges[i][1];

		pattern(v, 2 * MIB, 100 + (unsigned)i);
		if ((rc = nvl_brick_rdma_write(c, rh, off, v + off, len)) < 0)
			fail(step, "multi-chunk write via rdma handle", rc);
		memset(r, 0x5a, 2 * MIB);
		if ((rc = nvl_brick_read(c, key, 2 * MIB + off, r + off, len)) < 0)
			fail(step, "multi-chunk read via key", rc);
		if (memcmp(r + off, v + off, len) != 0)
			fail(step, "multi-chunk data read back differs", -EIO);
		if (off > 0 && r[off - 1] != 0x5a)
			fail(step, "a read wrote before its buffer range", -EIO);
		if (off + len < 2 * MIB && r[off + len] != 0x5a)
			fail(step, "a read wrote past its buffer range", -EIO);
	}
	/* put w back through the key (chunks via the handle key path) */
	if ((rc = nvl_brick_write(c, key, 2 * MIB, w, 2 * MIB)) < 0)
		fail(step, "rewrite via key", rc);
	memset(r, 0, 2 * MIB);
	if ((rc = nvl_brick_rdma_read(c, rh, 0, r, 2 * MIB)) < 0)
		fail(step, "read back via rdma handle", rc);
	if (memcmp(r, w, 2 * MIB) != 0)
		fail(step, "block differs after the rewrite", -EIO);
	free(v);
}

static int
check(const char *uri, const char *ida, const char *idb)
{
	struct nvl_brick_handle h, h6;
	struct nvl_brick_rdma_handle rh, rh6;
	struct nvl_brick_extent *ext;
	uint8_t key[NVL_BRICK_KEY_SIZE];
	size_t n;
	uint8_t *w = malloc(2 * MIB), *r = malloc(2 * MIB);
	struct nvl_brick *a, *bb;
	int rc;

	if (w == NULL || r == NULL)
		return fail("setup", "malloc", -ENOMEM);
	/* connections of the check copy through the bounce buffer, but the
	 * zero-copy step's (registered buffers) */
	setenv("NVLEND_BRICK_RDMA_REG_MIN", "0", 1);
	a = conn(uri, ida);
	for (uint64_t addr = 2 * MIB; addr <= 6 * MIB; addr += 2 * MIB)
		if ((rc = nvl_brick_alloc(a, addr)) < 0)
			fail("alloc", "alloc", rc);
	ok("alloc");

	if ((rc = nvl_brick_map(a, 2 * MIB, NVL_BRICK_RW, &h)) < 0)
		fail("map", "map 2M rw", rc);
	if ((rc = nvl_brick_rdma_handle(a, h.key, &rh)) < 0)
		fail("map", "rdma handle", rc);
	if (rh.rkey == 0 || rh.remote_addr == 0 || rh.length != 2 * MIB || rh.addr != 2 * MIB ||
	    !(rh.flags & NVL_BRICK_RW) || h.ptr != NULL)
		fail("map", "handle fields", -EPROTO);
	printf("handle: addr 0x%" PRIx64 " remote 0x%" PRIx64 " rkey 0x%x\n", rh.addr,
	       rh.remote_addr, rh.rkey);
	ok("map");

	/* one-sided: through the handle key (libnvlend picks RDMA WRITE) and the RDMA handle */
	pattern(w, 2 * MIB, 7);
	if ((rc = nvl_brick_write(a, h.key, 2 * MIB, w, MIB)) < 0)
		fail("write-read", "write via key", rc);
	if ((rc = nvl_brick_rdma_write(a, &rh, MIB, w + MIB, MIB)) < 0)
		fail("write-read", "write via rdma handle", rc);
	memset(r, 0, 2 * MIB);
	if ((rc = nvl_brick_rdma_read(a, &rh, 0, r, 2 * MIB)) < 0)
		fail("write-read", "read via rdma handle", rc);
	if (memcmp(r, w, 2 * MIB) != 0)
		fail("write-read", "data read back differs", -EIO);
	memset(r, 0, 4096);
	if ((rc = nvl_brick_read(a, h.key, 2 * MIB + 12345, r, 4096)) < 0)
		fail("write-read", "read via key", rc);
	if (memcmp(r, w + 12345, 4096) != 0)
		fail("write-read", "data read back (key) differs", -EIO);
	ok("write-read");

	multi_chunk("multi-chunk", a, h.key, &rh, w, r);
	ok("multi-chunk");

	/* the same through a connection that registers the caller's buffers */
	{
		struct nvl_brick_handle hz;
		struct nvl_brick_rdma_handle rz;
		struct nvl_brick *z;

		setenv("NVLEND_BRICK_RDMA_REG_MIN", "65536", 1);
		z = conn(uri, ida);
		setenv("NVLEND_BRICK_RDMA_REG_MIN", "0", 1);
		if ((rc = nvl_brick_map(z, 2 * MIB, NVL_BRICK_RW, &hz)) < 0)
			fail("zero-copy", "map 2M rw", rc);
		if ((rc = nvl_brick_rdma_handle(z, hz.key, &rz)) < 0)
			fail("zero-copy", "rdma handle", rc);
		multi_chunk("zero-copy", z, hz.key, &rz, w, r);
		nvl_brick_disconnect(z);
	}
	ok("zero-copy");

	/* ranges crossing the block's end: refused before anything is posted */
	memset(r, 0xcc, 2 * MIB);
	if ((rc = nvl_brick_rdma_write(a, &rh, 2 * MIB - 4096, r, 8192)) != -EINVAL)
		fail("cross-end", "rdma write across the block end", rc);
	if ((rc = nvl_brick_rdma_write(a, &rh, 1, r, 2 * MIB)) != -EINVAL)
		fail("cross-end", "2 MiB rdma write at offset 1", rc);
	if ((rc = nvl_brick_write(a, h.key, 3 * MIB, r, 2 * MIB)) != -EINVAL)
		fail("cross-end", "write via key across the block end", rc);
	if ((rc = nvl_brick_rdma_read(a, &rh, MIB, r, MIB + 1)) != -EINVAL)
		fail("cross-end", "rdma read across the block end", rc);
	memset(r, 0, 2 * MIB);
	if ((rc = nvl_brick_rdma_read(a, &rh, 0, r, 2 * MIB)) < 0)
		fail("cross-end", "connection unusable after the refusals", rc);
	if (memcmp(r, w, 2 * MIB) != 0)
		fail("cross-end", "the block changed", -EIO);
	ok("cross-end");

	/* posted writes: several in flight from one thread */
	{
		struct nvl_brick_handle hp;
		struct nvl_brick_rdma_handle rp;
		struct nvl_brick *p = conn(uri, ida);
		uint8_t *v = malloc(2 * MIB);
		const size_t piece = 2 * MIB / 8;

		if (v == NULL)
			fail("posted", "malloc", -ENOMEM);
		if ((rc = nvl_brick_map(p, 2 * MIB, NVL_BRICK_RW, &hp)) < 0)
			fail("posted", "map 2M rw", rc);
		if ((rc = nvl_brick_rdma_handle(p, hp.key, &rp)) < 0)
			fail("posted", "rdma handle", rc);
		pattern(v, 2 * MIB, 55);
		for (size_t i = 0; i < 8; i++) /* in reverse: each lands at its own offset */
			if ((rc = nvl_brick_rdma_write_post(p, &rp, (7 - i) * piece,
							    v + (7 - i) * piece, piece)) < 0)
				fail("posted", "post", rc);
		if (nvl_brick_rdma_posted(p) == 0)
			fail("posted", "nothing posted", -EPROTO);
		if ((rc = nvl_brick_rdma_wait(p, 0)) < 0)
			fail("posted", "wait", rc);
		if (nvl_brick_rdma_posted(p) != 0)
			fail("posted", "writes left after wait(0)", (int)nvl_brick_rdma_posted(p));
		memset(r, 0, 2 * MIB);
		if ((rc = nvl_brick_rdma_read(p, &rp, 0, r, 2 * MIB)) < 0)
			fail("posted", "read back", rc);
		if (memcmp(r, v, 2 * MIB) != 0)
			fail("posted", "posted writes read back differ", -EIO);
		/* the limit: then waiting for all but 8 leaves 8 */
		for (size_t i = 0; i < NVL_BRICK_RDMA_POST_MAX; i++)
			if ((rc = nvl_brick_rdma_write_post(p, &rp, i * 4096, w + i * 4096, 4096)) < 0)
				fail("posted", "post up to the limit", rc);
		if ((rc = nvl_brick_rdma_write_post(p, &rp, 0, w, 4096)) != -EAGAIN)
			fail("posted", "post past the limit", rc);
		if ((rc = nvl_brick_rdma_wait(p, 8)) < 0 || nvl_brick_rdma_posted(p) > 8)
			fail("posted", "wait down to 8", rc);
		if ((rc = nvl_brick_write(p, hp.key, 2 * MIB, w, 2 * MIB)) < 0)
			fail("posted", "a synchronous write with writes posted", rc);
		if ((rc = nvl_brick_rdma_wait(p, 0)) < 0)
			fail("posted", "wait all", rc);
		memset(r, 0, 2 * MIB);
		if ((rc = nvl_brick_rdma_read(p, &rp, 0, r, 2 * MIB)) < 0 ||
		    memcmp(r, w, 2 * MIB) != 0)
			fail("posted", "block after the rewrite", rc < 0 ? rc : -EIO);
		/* a revoked handle: posting works, the wait reports the NIC's refusal */
		if ((rc = nvl_brick_unmap(p, 2 * MIB)) < 0)
			fail("posted", "unmap", rc);
		if ((rc = nvl_brick_rdma_write_post(p, &rp, 0, v, 2 * MIB)) < 0) /* 16 chunks */
			fail("posted", "post with the stale handle", rc);
		if ((rc = nvl_brick_rdma_wait(p, 0)) != -EACCES)
			fail("posted", "wait after stale posts did not fail with EACCES", rc);
		if (nvl_brick_rdma_posted(p) != 0)
			fail("posted", "writes left after the failed wait", -EPROTO);
		nvl_brick_disconnect(p);
		memset(r, 0, 2 * MIB);
		if ((rc = nvl_brick_rdma_read(a, &rh, 0, r, 2 * MIB)) < 0 ||
		    memcmp(r, w, 2 * MIB) != 0)
			fail("posted", "the block changed after the stale posts", rc < 0 ? rc : -EIO);
		free(v);
	}
	ok("posted");

	if ((rc = nvl_brick_rdma_sync_read(a, &rh)) < 0)
		fail("sync-read", "sync read", rc);
	ok("sync-read");

	if ((rc = nvl_brick_flush(a, h.key, 2 * MIB, 0)) < 0)
		fail("flush", "flush", rc);
	if ((rc = nvl_brick_flush_all(a)) < 0)
		fail("flush", "flush_all", rc);
	ok("flush");

	/* revocation: the region is deregistered before UNMAP answers */
	if ((rc = nvl_brick_unmap(a, 2 * MIB)) < 0)
		fail("stale-handle", "unmap", rc);
	if ((rc = nvl_brick_rdma_handle(a, h.key, &rh6)) != -ENOENT)
		fail("stale-handle", "handle still known after unmap", rc);
	memset(r, 0xee, 2 * MIB);
	rc = nvl_brick_rdma_write(a, &rh, 0, r, 2 * MIB); /* 16 chunks in flight */
	if (rc != -EACCES)
		fail("stale-handle", "write with the stale RDMA handle did not fail with EACCES",
		     rc);
	rc = nvl_brick_info(a, &(struct nvl_brick_info){ 0 });
	if (rc != -EPIPE)
		fail("stale-handle", "connection usable after a remote access error", rc);
	nvl_brick_disconnect(a);
	ok("stale-handle");

	a = conn(uri, ida);
	if ((rc = nvl_brick_read(a, h.key, 2 * MIB, r, 4096)) != -EACCES)
		fail("unchanged", "stale handle key read", rc);
	if ((rc = nvl_brick_map(a, 2 * MIB, NVL_BRICK_RO, &h)) < 0)
		fail("unchanged", "map 2M ro", rc);
	if ((rc = nvl_brick_rdma_handle(a, h.key, &rh)) < 0)
		fail("unchanged", "rdma handle", rc);
	if ((rc = nvl_brick_rdma_write(a, &rh, 0, w, 4096)) != -EROFS)
		fail("unchanged", "write through a read-only handle", rc);
	memset(r, 0, 2 * MIB);
	if ((rc = nvl_brick_read(a, h.key, 2 * MIB, r, 2 * MIB)) < 0)
		fail("unchanged", "read", rc);
	if (memcmp(r, w, 2 * MIB) != 0)
		fail("unchanged", "the block changed after the stale write", -EIO);
	if ((rc = nvl_brick_unmap(a, 2 * MIB)) < 0)
		fail("unchanged", "unmap", rc);
	ok("unchanged");

	/* mid-pipeline: a handle forged 1 MiB into the 4M block's region; the
	 * chunks of the first MiB land, the first one past the region's end
	 * fails (remote access error), the later ones are flushed */
	{
		struct nvl_brick_handle h4;
		struct nvl_brick_rdma_handle r4, forged;
		uint8_t *v = malloc(2 * MIB);

		if (v == NULL)
			fail("mid-pipeline", "malloc", -ENOMEM);
		if ((rc = nvl_brick_map(a, 4 * MIB, NVL_BRICK_RW, &h4)) < 0)
			fail("mid-pipeline", "map 4M rw", rc);
		if ((rc = nvl_brick_rdma_handle(a, h4.key, &r4)) < 0)
			fail("mid-pipeline", "rdma handle", rc);
		memset(v, 0x11, 2 * MIB);
		if ((rc = nvl_brick_rdma_write(a, &r4, 0, v, 2 * MIB)) < 0)
			fail("mid-pipeline", "fill 4M", rc);
		forged = r4;
		forged.remote_addr += MIB;
		pattern(v, 2 * MIB, 9);
		if ((rc = nvl_brick_rdma_write(a, &forged, 0, v, 2 * MIB)) != -EACCES)
			fail("mid-pipeline", "write past the region's end did not fail with EACCES",
			     rc);
		if ((rc = nvl_brick_info(a, &(struct nvl_brick_info){ 0 })) != -EPIPE)
			fail("mid-pipeline", "connection usable after the failed chunk", rc);
		nvl_brick_disconnect(a);
		a = conn(uri, ida);
		if ((rc = nvl_brick_map(a, 4 * MIB, NVL_BRICK_RO, &h4)) < 0)
			fail("mid-pipeline", "map 4M ro", rc);
		memset(r, 0, 2 * MIB);
		if ((rc = nvl_brick_read(a, h4.key, 4 * MIB, r, 2 * MIB)) < 0)
			fail("mid-pipeline", "read 4M", rc);
		for (size_t i = 0; i < MIB; i++)
			if (r[i] != 0x11)
				fail("mid-pipeline", "the block's first MiB changed", (int)i);
		if (memcmp(r + MIB, v, MIB) != 0)
			fail("mid-pipeline", "the chunks before the failed one are not placed", -EIO);
		if ((rc = nvl_brick_unmap(a, 4 * MIB)) < 0)
			fail("mid-pipeline", "unmap", rc);
		free(v);
	}
	ok("mid-pipeline");

	/* ownership: identity B without the key is refused, with it allowed */
	bb = conn(uri, idb);
	if ((rc = nvl_brick_map(bb, 2 * MIB, NVL_BRICK_RW, &h)) != -EACCES)
		fail("ownership", "map by another identity without the key", rc);
	if ((rc = nvl_brick_free(bb, 2 * MIB)) != -EACCES)
		fail("ownership", "free by another identity without the key", rc);
	if ((rc = nvl_brick_key_get(a, 2 * MIB, key)) < 0)
		fail("ownership", "key_get by the owner", rc);
	if ((rc = nvl_brick_key_add(bb, 2 * MIB, key)) < 0)
		fail("ownership", "key_add", rc);
	if ((rc = nvl_brick_map(bb, 2 * MIB, NVL_BRICK_RO, &h)) < 0)
		fail("ownership", "map with the key", rc);
	memset(r, 0, 4096);
	if ((rc = nvl_brick_read(bb, h.key, 2 * MIB, r, 4096)) < 0 || memcmp(r, w, 4096) != 0)
		fail("ownership", "read with the key", rc < 0 ? rc : -EIO);
	nvl_brick_disconnect(bb);
	ok("ownership");

	/* FREE revokes too */
	if ((rc = nvl_brick_map(a, 6 * MIB, NVL_BRICK_RW, &h6)) < 0)
		fail("free-revokes", "map 6M", rc);
	if ((rc = nvl_brick_rdma_handle(a, h6.key, &rh6)) < 0)
		fail("free-revokes", "rdma handle", rc);
	if ((rc = nvl_brick_rdma_write(a, &rh6, 0, w, 4096)) < 0)
		fail("free-revokes", "write before free", rc);
	if ((rc = nvl_brick_free(a, 6 * MIB)) < 0)
		fail("free-revokes", "free", rc);
	if ((rc = nvl_brick_rdma_read(a, &rh6, 0, r, 4096)) != -EACCES)
		fail("free-revokes", "read with the handle of a freed block", rc);
	nvl_brick_disconnect(a);
	ok("free-revokes");

	a = conn(uri, ida);
	if ((rc = nvl_brick_list(a, &ext, &n)) < 0)
		fail("list", "list", rc);
	if (n != 1 || ext[0].addr != 2 * MIB || ext[0].length != 4 * MIB)
		fail("list", "expected one extent 2M..6M", (int)n);
	free(ext);
	nvl_brick_disconnect(a);
	ok("list");
	free(w);
	free(r);
	return 0;
}

static int
list(const char *uri, const char *id)
{
	struct nvl_brick_extent *ext;
	struct nvl_brick *b = conn(uri, id);
	size_t n;
	int rc = nvl_brick_list(b, &ext, &n);

	if (rc < 0)
		fail("list", "list", rc);
	for (size_t i = 0; i < n; i++)
		for (uint64_t a = ext[i].addr; a < ext[i].addr + ext[i].length; a += 2 * MIB)
			printf("BLOCK 0x%" PRIx64 " %u\n", a, ext[i].state);
	free(ext);
	nvl_brick_disconnect(b);
	return 0;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* secs > 0: write for secs seconds and print the rate; else write count
 * times; depth > 0: posted writes, depth in flight */
static int
bench(const char *uri, double secs, uint64_t count, size_t size, unsigned depth)
{
	struct nvl_brick_rdma_handle rh;
	struct nvl_brick_handle h;
	struct nvl_brick *b = conn(uri, "/tmp/brick-bench-id");
	uint8_t *buf = malloc(size);
	uint64_t bytes = 0, off = 0;
	double t0, t;
	int rc;

	if (buf == NULL || size == 0 || size > 2 * MIB)
		return fail("bench", "size", -EINVAL);
	pattern(buf, size, 1);
	if ((rc = nvl_brick_alloc(b, 8 * MIB)) < 0 && rc != -EEXIST)
		fail("bench", "alloc", rc);
	if ((rc = nvl_brick_map(b, 8 * MIB, NVL_BRICK_RW, &h)) < 0)
		fail("bench", "map", rc);
	if ((rc = nvl_brick_rdma_handle(b, h.key, &rh)) < 0)
		fail("bench", "rdma handle", rc);
	/* warm-up */
	if ((rc = nvl_brick_rdma_write(b, &rh, 0, buf, size)) < 0)
		fail("bench", "write", rc);
	t0 = now();
	do {
		if (depth > 0) {
			if (nvl_brick_rdma_posted(b) >= depth &&
			    (rc = nvl_brick_rdma_wait(b, depth - 1)) < 0)
				fail("bench", "wait", rc);
			if ((rc = nvl_brick_rdma_write_post(b, &rh, off, buf, size)) < 0)
				fail("bench", "post", rc);
		} else if ((rc = nvl_brick_rdma_write(b, &rh, off, buf, size)) < 0) {
			fail("bench", "write", rc);
		}
		bytes += size;
		off = (off + size) % (2 * MIB);
		if (off + size > 2 * MIB)
			off = 0;
		t = now();
	} while (secs > 0 ? t - t0 < secs : bytes < count * size);
	if ((rc = nvl_brick_rdma_wait(b, 0)) < 0)
		fail("bench", "wait", rc);
	if ((rc = nvl_brick_rdma_sync_read(b, &rh)) < 0)
		fail("bench", "sync read", rc);
	t = now();
	printf("BENCH brick_write_MiBps %.2f\n", (double)bytes / (t - t0) / 1048576.0);
	nvl_brick_unmap(b, 8 * MIB);
	nvl_brick_free(b, 8 * MIB);
	nvl_brick_disconnect(b);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "check") == 0)
		return check(argv[2], argv[3], argv[4]);
	if (argc == 4 && strcmp(argv[1], "list") == 0)
		return list(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "bench") == 0)
		return bench(argv[2], atof(argv[3]), 0, (size_t)strtoull(argv[4], NULL, 0), 0);
	if (argc == 5 && strcmp(argv[1], "benchn") == 0)
		return bench(argv[2], 0, strtoull(argv[3], NULL, 0),
			     (size_t)strtoull(argv[4], NULL, 0), 0);
	if (argc == 6 && strcmp(argv[1], "benchq") == 0)
		return bench(argv[2], 0, strtoull(argv[3], NULL, 0),
			     (size_t)strtoull(argv[4], NULL, 0), (unsigned)strtoul(argv[5], NULL, 0));
	fprintf(stderr, "usage: %s check URI ID_A ID_B | list URI ID | bench URI SECS SIZE | "
			"benchn URI COUNT SIZE | benchq URI COUNT SIZE DEPTH\n", argv[0]);
	return 2;
}
