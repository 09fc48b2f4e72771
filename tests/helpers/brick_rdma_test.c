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
 *
 * check: as identity A (ID_A: identity file path): alloc 2M, 4M, 6M; map 2M
 * read-write; RDMA handle (rkey, remote address); one-sided writes through
 * the handle key and the RDMA handle, read back; sync-read; flush and
 * flush_all; unmap, then a write with the kept RDMA handle fails with
 * -EACCES (remote access error) and, on a new connection, the block still
 * holds the data and the stale handle key is refused; identity B (ID_B) is
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
	memset(r, 0xee, MIB);
	rc = nvl_brick_rdma_write(a, &rh, 0, r, MIB);
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

/* secs > 0: write for secs seconds and print the rate; else write count times */
static int
bench(const char *uri, double secs, uint64_t count, size_t size)
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
		if ((rc = nvl_brick_rdma_write(b, &rh, off, buf, size)) < 0)
			fail("bench", "write", rc);
		bytes += size;
		off = (off + size) % (2 * MIB);
		if (off + size > 2 * MIB)
			off = 0;
		t = now();
	} while (secs > 0 ? t - t0 < secs : bytes < count * size);
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
		return bench(argv[2], atof(argv[3]), 0, (size_t)strtoull(argv[4], NULL, 0));
	if (argc == 5 && strcmp(argv[1], "benchn") == 0)
		return bench(argv[2], 0, strtoull(argv[3], NULL, 0),
			     (size_t)strtoull(argv[4], NULL, 0));
	fprintf(stderr, "usage: %s check URI ID_A ID_B | list URI ID | bench URI SECS SIZE | "
			"benchn URI COUNT SIZE\n", argv[0]);
	return 2;
}
