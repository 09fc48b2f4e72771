/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the brick store (src/brick/store*.c) and its hash table:
 * error codes, extent lists, tiering, revocation, recovery of a directory
 * left in every intermediate state a crash can leave, locking, block
 * ownership (the key check, owner records and their recovery, also of a
 * slot file and directories written before ownership existed). Runs on real
 * temporary directories (tmpfs and the disk); no reactor (flush is synchronous). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/*
 * Durability calls are counted: store.c's headers come first, then fdatasync,
 * fsync, sync_file_range, renameat, unlinkat and nvl_uring_sqe are redirected
 * to recording wrappers for store.c only (the pool thread in pool.c is not
 * counted; tests that count stop it). A flush that skipped its sync, or an
 * alloc/free that acknowledged before its directory sync, fails
 * test_durable_syncs.
 */
#include "brick/brick_internal.h"
#include "reactor/reactor.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum ut_ev_kind { UT_FDATASYNC, UT_FSYNC, UT_SYNC_RANGE, UT_RENAME, UT_UNLINK, UT_PWRITE };

struct ut_ev {
	enum ut_ev_kind kind;
	dev_t dev;          /* syncs: the synced inode */
	ino_t ino;
	off64_t off, len;   /* sync_file_range, pwrite */
	char name[64];      /* rename (new name), unlink */
};

static struct ut_ev g_ev[64];
static unsigned g_nev;
static bool g_fake_ring;               /* nvl_uring_sqe() hands out g_sqe */
static struct io_uring_sqe g_sqe;
static unsigned g_sqes;

static void
ut_record(enum ut_ev_kind kind, int fd, const char *name)
{
	struct ut_ev *e;
	struct stat st;

	if (g_nev == sizeof(g_ev) / sizeof(g_ev[0]))
		return;
	e = &g_ev[g_nev++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	if (fd >= 0 && fstat(fd, &st) == 0) {
		e->dev = st.st_dev;
		e->ino = st.st_ino;
	}
	if (name)
		snprintf(e->name, sizeof(e->name), "%s", name);
}

static int
ut_fdatasync(int fd)
{
	ut_record(UT_FDATASYNC, fd, NULL);
	return fdatasync(fd);
}

static int
ut_fsync(int fd)
{
	ut_record(UT_FSYNC, fd, NULL);
	return fsync(fd);
}

static int
ut_sync_file_range(int fd, off64_t off, off64_t len, unsigned int flags)
{
	ut_record(UT_SYNC_RANGE, fd, NULL);
	g_ev[g_nev - 1].off = off;
	g_ev[g_nev - 1].len = len;
	return sync_file_range(fd, off, len, flags);
}

static int
ut_renameat(int ofd, const char *old, int nfd, const char *new)
{
	ut_record(UT_RENAME, -1, new);
	return renameat(ofd, old, nfd, new);
}

static int
ut_unlinkat(int dfd, const char *name, int flags)
{
	ut_record(UT_UNLINK, -1, name);
	return unlinkat(dfd, name, flags);
}

static ssize_t
ut_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	ut_record(UT_PWRITE, fd, NULL);
	g_ev[g_nev - 1].off = off;
	g_ev[g_nev - 1].len = (off64_t)len;
	return pwrite(fd, buf, len, off);
}

static struct io_uring_sqe *
ut_uring_sqe(void)
{
	if (!g_fake_ring)
		return NULL; /* no reactor: store.c syncs synchronously */
	memset(&g_sqe, 0, sizeof(g_sqe));
	g_sqes++;
	return &g_sqe;
}

#define fdatasync ut_fdatasync
#define fsync ut_fsync
#define sync_file_range ut_sync_file_range
#define renameat ut_renameat
#define unlinkat ut_unlinkat
#define nvl_uring_sqe ut_uring_sqe
#define pwrite ut_pwrite

#include "brick/htab.c"
#include "brick/slotfile.c"
#include "brick/store.c"
#include "brick/store_tier.c"
#include "brick/store_recover.c"
#include "brick/acl.c"

#define BS BRICK_BLOCK_SIZE

static char g_root[128];

static void
path(char *buf, size_t len, const char *leaf)
{
	snprintf(buf, len, "%s/%s", g_root, leaf);
}

static struct brick *
mk(const char *name, const char *fast, const char *slow, uint64_t cap, uint64_t fb, int want)
{
	char f[256], s[256];
	struct brick_opts o = { .name = name, .capacity_blocks = cap, .fast_blocks = fb };
	struct brick *b = NULL;

	path(f, sizeof(f), fast);
	o.fast_dir = f;
	if (slow) {
		path(s, sizeof(s), slow);
		o.slow_dir = s;
	}
	assert_int_equal(brick_create(&o, &b), want);
	return b;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(g_root, sizeof(g_root), "/dev/shm/nvl-ut-brick-XXXXXX");
	assert_non_null(mkdtemp(g_root));
	return 0;
}

static int
teardown(void **state)
{
	char cmd[200];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", g_root);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void
flush_cb(void *arg, int rc)
{
	*(int *)arg = rc;
}

static void
test_errors(void **state)
{
	struct brick *b = mk("e", "f", NULL, 3, 0, 0);
	struct brick_session s1, s2;
	struct brick_handle *h, *h2;
	int frc = 1;

	(void)state;
	brick_session_init(&s1, b);
	brick_session_init(&s2, b);
	assert_int_equal(brick_alloc(b, 4096, NULL, NULL), -EINVAL);
	assert_int_equal(brick_alloc(b, 0, NULL, NULL), 0);
	assert_int_equal(brick_alloc(b, 0, NULL, NULL), -EEXIST);
	assert_int_equal(brick_alloc(b, BS, NULL, NULL), 0);
	assert_int_equal(brick_alloc(b, UINT64_MAX - BS + 1, NULL, NULL), 0);
	assert_int_equal(brick_alloc(b, 2 * BS, NULL, NULL), -ENOSPC);
	assert_int_equal(brick_free(b, 2 * BS), -ENOENT);
	assert_int_equal(brick_map(b, &s1, 2 * BS, NVL_BRICK_MAP_RW, &h), -ENOENT);
	assert_int_equal(brick_map(b, &s1, 0, 0, &h), -EINVAL);
	assert_int_equal(brick_map(b, &s1, 0, NVL_BRICK_MAP_RW | NVL_BRICK_MAP_EXCL, &h), 0);
	assert_int_equal(brick_map(b, &s2, 0, NVL_BRICK_MAP_RO, &h2), -EBUSY);
	assert_ptr_equal(brick_key_lookup(b, h->key), h);
	assert_null(brick_key_lookup(b, h->key + 1));
	assert_null(brick_key_lookup(b, 0));
	brick_flush(b, h, 0, 0, flush_cb, &frc);
	assert_int_equal(frc, 0);
	assert_int_equal(brick_unmap(b, &s2, 0), -ENXIO);
	assert_int_equal(brick_unmap(b, &s1, BS), -ENXIO);
	assert_int_equal(brick_unmap(b, &s1, 5 * BS), -ENOENT);
	assert_int_equal(brick_unmap(b, &s1, 0), 0);
	assert_int_equal(brick_map(b, &s1, BS, NVL_BRICK_MAP_RO, &h), 0);
	assert_int_equal(brick_map(b, &s2, BS, NVL_BRICK_MAP_RW, &h2), 0);
	assert_int_equal(b->nmapped, 1);
	assert_int_equal(brick_free(b, BS), 0); /* revokes both sessions' handles */
	assert_true(TAILQ_EMPTY(&s1.handles) && TAILQ_EMPTY(&s2.handles));
	assert_int_equal(b->keys.count, 0);
	assert_int_equal(b->nmapped, 0);
	brick_session_fini(&s1);
	brick_session_fini(&s2);
	brick_close(b);
}

static void
test_list(void **state)
{
	struct brick *b = mk("l", "lf", NULL, 16, 0, 0);
	struct nvl_brick_extent e[8];
	struct brick_session s;
	struct brick_handle *h;
	uint64_t next;
	bool more;
	int n;

	(void)state;
	brick_session_init(&s, b);
	for (uint64_t i = 0; i < 6; i++)
		assert_int_equal(brick_alloc(b, (i < 3 ? i : i + 4) * BS, NULL, NULL), 0); /* 0-2, 7-9 */
	assert_int_equal(brick_map(b, &s, BS, NVL_BRICK_MAP_RO, &h), 0);
	n = brick_list(b, 0, e, 8, &more, &next);
	assert_int_equal(n, 4);
	assert_false(more);
	assert_true(e[0].addr == 0 && e[0].length == BS && e[0].state == NVL_BRICK_EXT_FAST);
	assert_true(e[1].addr == BS && e[1].state == NVL_BRICK_EXT_MAPPED);
	assert_true(e[2].addr == 2 * BS && e[2].length == BS);
	assert_true(e[3].addr == 7 * BS && e[3].length == 3 * BS);
	n = brick_list(b, 0, e, 2, &more, &next);
	assert_int_equal(n, 2);
	assert_true(more && next == 2 * BS);
	n = brick_list(b, next, e, 8, &more, &next);
	assert_int_equal(n, 2);
	assert_false(more);
	n = brick_list(b, 8 * BS, e, 8, &more, &next);
	assert_true(n == 1 && e[0].addr == 8 * BS && e[0].length == 2 * BS);
	brick_session_fini(&s);
	brick_close(b);
}

static void
test_tiering(void **state)
{
	struct brick *b = mk("t", "tf", "ts", 6, 2, 0);
	struct brick_session s;
	struct brick_handle *h[3];
	int frc;

	(void)state;
	brick_session_init(&s, b);
	for (uint64_t i = 0; i < 6; i++) {
		assert_int_equal(brick_alloc(b, i * BS, NULL, NULL), 0);
		assert_int_equal(brick_map(b, &s, i * BS, NVL_BRICK_MAP_RW, &h[0]), 0);
		memset(h[0]->blk->mem->va, (int)(0x10 + i), BS);
		brick_flush(b, h[0], 0, 0, flush_cb, &frc);
		assert_int_equal(brick_unmap(b, &s, i * BS), 0);
	}
	assert_int_equal(b->nfast, 2);
	assert_int_equal(b->nslow, 4);
	/* two mapped: full; a third map cannot make room */
	assert_int_equal(brick_map(b, &s, 0, NVL_BRICK_MAP_RO, &h[0]), 0);
	assert_int_equal(brick_map(b, &s, BS, NVL_BRICK_MAP_RO, &h[1]), 0);
	assert_int_equal(brick_map(b, &s, 2 * BS, NVL_BRICK_MAP_RO, &h[2]), -ENOMEM);
	assert_int_equal(h[0]->blk->mem->va[BS - 1], 0x10);
	assert_int_equal(h[1]->blk->mem->va[77], 0x11);
	/* a new allocation with the fast tier pinned lands in the slow tier */
	assert_int_equal(brick_free(b, 5 * BS), 0);
	assert_int_equal(brick_alloc(b, 5 * BS, NULL, NULL), 0);
	assert_int_equal(((struct brick_block *)brick_htab_get(&b->blocks, 5 * BS))->tier,
			 BRICK_TIER_SLOW);
	assert_int_equal(brick_unmap(b, &s, 0), 0);
	assert_int_equal(brick_map(b, &s, 4 * BS, NVL_BRICK_MAP_RO, &h[2]), 0);
	assert_int_equal(h[2]->blk->mem->va[12345], 0x14);
	assert_int_equal(brick_map(b, &s, 5 * BS, NVL_BRICK_MAP_RO, &h[0]), -ENOMEM);
	brick_session_fini(&s);
	assert_true(b->nfast <= 2);
	brick_close(b);
}

static void
test_revocation_swap(void **state)
{
	struct brick *b = mk("r", "rf", NULL, 2, 0, 0);
	struct brick_session s;
	struct brick_handle *h;
	struct brick_mem *old;
	struct stat st;
	int fd;

	(void)state;
	brick_session_init(&s, b);
	assert_int_equal(brick_alloc(b, 0, NULL, NULL), 0);
	assert_int_equal(brick_map(b, &s, 0, NVL_BRICK_MAP_RW, &h), 0);
	memset(h->blk->mem->va, 0x42, BS);
	old = h->blk->mem;
	old->exported = true; /* as if its fd went to a local client */
	fd = dup(old->fd);
	assert_int_equal(brick_unmap(b, &s, 0), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 0); /* the old inode is cut off */
	close(fd);
	assert_int_equal(brick_map(b, &s, 0, NVL_BRICK_MAP_RO, &h), 0);
	assert_int_equal(h->blk->mem->va[BS - 1], 0x42); /* the data moved with the block */
	assert_false(h->blk->mem->exported);
	assert_int_equal(b->st.revocations, 1);
	brick_session_fini(&s);
	brick_close(b);
}

static void
touch_file(const char *dir, const char *name, off_t size, int fill)
{
	char p[300];
	int fd;

	snprintf(p, sizeof(p), "%s/%s/%s", g_root, dir, name);
	fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	if (fill >= 0 && size) {
		void *m = mmap(NULL, (size_t)size, PROT_WRITE, MAP_SHARED, fd, 0);

		memset(m, fill, (size_t)size);
		munmap(m, (size_t)size);
	}
	close(fd);
}

static bool
exists(const char *dir, const char *name)
{
	char p[300];

	snprintf(p, sizeof(p), "%s/%s/%s", g_root, dir, name);
	return access(p, F_OK) == 0;
}

static void
test_recovery(void **state)
{
	struct brick *b = mk("c", "cf", "cs", 8, 4, 0);
	struct brick_session s;
	struct brick_handle *h;

	(void)state;
	assert_int_equal(brick_alloc(b, 0, NULL, NULL), 0);
	assert_int_equal(brick_alloc(b, BS, NULL, NULL), 0);
	brick_close(b);
	/* what a crash can leave: an unpublished block, a block in both tiers
	 * (interrupted move: the fast copy wins), a slow-only block, a foreign file,
	 * a block file cut short by a client */
	touch_file("cf", ".tmp-0000000000400000", BS, 1);
	touch_file("cs", "blk-0000000000000000", BS, 0x77);
	touch_file("cs", "blk-0000000000600000", BS, 0x66);
	touch_file("cf", "notes.txt", 10, -1);
	touch_file("cf", "blk-0000000000800000", 4096, 0x55);
	touch_file("cf", "blk-0000000000800001", BS, 0); /* unaligned name: ignored */
	b = mk("c", "cf", "cs", 8, 4, 0);
	assert_int_equal(b->blocks.count, 4); /* 0, 2M, 6M (slow), 8M */
	assert_false(exists("cf", ".tmp-0000000000400000"));
	assert_false(exists("cs", "blk-0000000000000000"));
	assert_true(exists("cf", "notes.txt"));
	brick_session_init(&s, b);
	assert_int_equal(brick_map(b, &s, 0, NVL_BRICK_MAP_RO, &h), 0);
	assert_int_equal(h->blk->mem->va[100], 0); /* fast copy kept, not 0x77 */
	assert_int_equal(brick_map(b, &s, 3 * BS, NVL_BRICK_MAP_RO, &h), 0);
	assert_int_equal(h->blk->mem->va[100], 0x66);
	assert_int_equal(brick_map(b, &s, 4 * BS, NVL_BRICK_MAP_RO, &h), 0);
	assert_int_equal(h->blk->mem->va[100], 0x55);
	assert_int_equal(h->blk->mem->va[BS - 1], 0); /* restored to 2 MiB */
	brick_session_fini(&s);
	brick_close(b);
	/* more blocks on disk than the new capacity: refused, nothing deleted */
	mk("c", "cf", "cs", 3, 0, -ENOSPC);
	assert_true(exists("cs", "blk-0000000000600000") || exists("cf", "blk-0000000000600000"));
	assert_true(exists("cs", "blk-0000000000800000") || exists("cf", "blk-0000000000800000"));
	/* fast budget smaller than what is resident: extra blocks move down */
	b = mk("c", "cf", "cs", 8, 1, 0);
	assert_int_equal(b->nfast, 1);
	assert_int_equal(b->nslow, 3);
	brick_close(b);
}

static void
test_locking(void **state)
{
	struct brick *b = mk("k", "kf", "ks", 4, 2, 0);

	(void)state;
	mk("k2", "kf", NULL, 4, 0, -EBUSY);     /* held by the live brick */
	mk("k", "xf", NULL, 4, 0, -EEXIST);      /* name taken */
	brick_close(b);
	mk("k3", "ks", NULL, 4, 0, -EINVAL);     /* a slow tier used as a fast one */
	mk("k4", "kf", "kf", 4, 2, -EBUSY);      /* same directory twice */
	mk("k5", "kf", NULL, 4, 2, -EINVAL);     /* budget < capacity, no slow tier */
	mk("k6", "kf", NULL, 0, 0, -EINVAL);
	mk("bad/name", "kf", NULL, 4, 0, -EINVAL);
	b = mk("k", "kf", "ks", 4, 2, 0);
	brick_close(b);
}

static void
test_disk_tier(void **state)
{
	char dir[] = "/tmp/nvl-ut-brickd-XXXXXX", f[64], cmd[128];
	struct brick_opts o = { .name = "d", .capacity_blocks = 2 };
	struct brick_session s;
	struct brick_handle *h;
	struct brick *b;
	int frc = 1;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(f, sizeof(f), "%s/fast", dir);
	o.fast_dir = f;
	assert_int_equal(brick_create(&o, &b), 0);
	assert_int_equal(b->fast.kind, NVL_BRICK_PERSIST_FSYNC);
	brick_session_init(&s, b);
	assert_int_equal(brick_alloc(b, 0, NULL, NULL), 0);
	assert_int_equal(brick_map(b, &s, 0, NVL_BRICK_MAP_RW, &h), 0);
	memset(h->blk->mem->va + 4096, 1, 4096);
	brick_flush(b, h, 4096, 4096, flush_cb, &frc); /* fdatasync path */
	assert_int_equal(frc, 0);
	assert_int_equal(b->st.bytes_flushed, 4096);
	frc = 1;
	brick_flush_all(b, flush_cb, &frc);
	assert_int_equal(frc, 0);
	brick_session_fini(&s);
	brick_close(b);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* First recorded event of kind at or after index from, on the inode of st (if
 * given) or with that name (if given). \return its index or -1. */
static int
ev_find(enum ut_ev_kind kind, const struct stat *st, const char *name, int from)
{
	for (unsigned i = (unsigned)from; i < g_nev; i++) {
		if (g_ev[i].kind != kind)
			continue;
		if (st && (g_ev[i].dev != st->st_dev || g_ev[i].ino != st->st_ino))
			continue;
		if (name && strcmp(g_ev[i].name, name) != 0)
			continue;
		return (int)i;
	}
	return -1;
}

static unsigned
ev_count_syncs(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < g_nev; i++)
		n += g_ev[i].kind == UT_FDATASYNC || g_ev[i].kind == UT_FSYNC ||
		     g_ev[i].kind == UT_SYNC_RANGE;
	return n;
}

/* Complete the flush sitting in the fake ring's SQE with result res. */
static void
ring_complete(int res)
{
	struct nvl_uring_op *op = (struct nvl_uring_op *)(uintptr_t)g_sqe.user_data;

	assert_non_null(op);
	op->cb(op, res);
}

/* docs/brick.md section 5 on a durable ("fsync") tier: flush writes the range
 * back (fdatasync semantics) before it is acknowledged; alloc publishes the
 * block only after its data is synced and acknowledges after the directory is;
 * free acknowledges after the name's removal is synced. */
static void
test_durable_syncs(void **state)
{
	char dir[] = "/tmp/nvl-ut-brickd-XXXXXX", f[64], cmd[128];
	struct brick_opts o = { .name = "y", .capacity_blocks = 4 };
	struct nvl_brick_info_wire info;
	struct brick_session s;
	struct brick_handle *h;
	struct brick_block *blk;
	struct stat dst, fst, st;
	struct brick *b;
	int frc, i, j;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(f, sizeof(f), "%s/fast", dir);
	o.fast_dir = f;
	assert_int_equal(brick_create(&o, &b), 0);
	assert_int_equal(b->fast.kind, NVL_BRICK_PERSIST_FSYNC);
	brick_info(b, &info);
	assert_int_equal(info.persistence, NVL_BRICK_PERSIST_FSYNC);
	assert_false(info.flags & NVL_BRICK_INFO_VOLATILE);
	/* without the free store every block is made here, where syncs are counted */
	brick_pool_stop(b->pool);
	b->pool = NULL;
	assert_int_equal(fstat(b->fast.dfd, &dst), 0);
	brick_session_init(&s, b);

	/* alloc: data synced, then named, then the name synced */
	g_nev = 0;
	assert_int_equal(brick_alloc(b, 0, NULL, NULL), 0);
	blk = brick_htab_get(&b->blocks, 0);
	assert_int_equal(fstat(blk->mem->fd, &fst), 0);
	i = ev_find(UT_FDATASYNC, &fst, NULL, 0);
	assert_true(i >= 0);
	j = ev_find(UT_RENAME, NULL, "blk-0000000000000000", i);
	assert_true(j > i);
	assert_true(ev_find(UT_FSYNC, &dst, NULL, j) > j);

	/* flush without a reactor: the range written back and the file's data synced,
	 * both before the callback */
	assert_int_equal(brick_map(b, &s, 0, NVL_BRICK_MAP_RW, &h), 0);
	memset(h->blk->mem->va + 4096, 0x5a, 8192);
	g_nev = 0;
	frc = 1;
	brick_flush(b, h, 4096, 8192, flush_cb, &frc);
	assert_int_equal(frc, 0);
	i = ev_find(UT_SYNC_RANGE, &fst, NULL, 0);
	assert_true(i >= 0);
	assert_true(g_ev[i].off == 4096 && g_ev[i].len == 8192);
	assert_true(ev_find(UT_FDATASYNC, &fst, NULL, 0) >= 0);

	/* flush on a reactor: one IORING_OP_FSYNC (datasync, the range) of the block's
	 * file, acknowledged only when it completes, failures reported as EIO */
	g_fake_ring = true;
	g_sqes = 0;
	frc = 1;
	brick_flush(b, h, 0, 0, flush_cb, &frc);
	assert_int_equal(g_sqes, 1);
	assert_int_equal(g_sqe.opcode, IORING_OP_FSYNC);
	assert_true(g_sqe.fsync_flags & IORING_FSYNC_DATASYNC);
	assert_true(g_sqe.off == 0 && g_sqe.len == BS);
	assert_int_equal(fstat(g_sqe.fd, &st), 0);
	assert_true(st.st_dev == fst.st_dev && st.st_ino == fst.st_ino);
	assert_int_equal(frc, 1); /* not before the medium is done */
	ring_complete(0);
	assert_int_equal(frc, 0);
	frc = 1;
	brick_flush(b, h, 0, 4096, flush_cb, &frc);
	ring_complete(-EIO);
	assert_int_equal(frc, -EIO);
	g_fake_ring = false;

	/* flush_all syncs the block written since the last one */
	g_nev = 0;
	frc = 1;
	brick_flush_all(b, flush_cb, &frc);
	assert_int_equal(frc, 0);
	assert_true(ev_find(UT_FDATASYNC, &fst, NULL, 0) >= 0);

	/* free: the name removed, then the directory synced */
	assert_int_equal(brick_unmap(b, &s, 0), 0);
	g_nev = 0;
	assert_int_equal(brick_free(b, 0), 0);
	i = ev_find(UT_UNLINK, NULL, "blk-0000000000000000", 0);
	assert_true(i >= 0);
	assert_true(ev_find(UT_FSYNC, &dst, NULL, i) > i);

	brick_session_fini(&s);
	brick_close(b);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A tmpfs tier is volatile (reported so) and nothing is synced: the page cache
 * is the medium (docs/brick.md section 5); flush still succeeds at once. */
static void
test_volatile_no_syncs(void **state)
{
	struct brick *b = mk("v", "vf", NULL, 2, 0, 0);
	struct nvl_brick_info_wire info;
	struct brick_session s;
	struct brick_handle *h;
	int frc = 1;

	(void)state;
	assert_int_equal(b->fast.kind, NVL_BRICK_PERSIST_VOLATILE);
	brick_info(b, &info);
	assert_int_equal(info.persistence, NVL_BRICK_PERSIST_VOLATILE);
	assert_true(info.flags & NVL_BRICK_INFO_VOLATILE);
	brick_pool_stop(b->pool);
	b->pool = NULL;
	brick_session_init(&s, b);
	g_nev = 0;
	g_fake_ring = true;
	g_sqes = 0;
	assert_int_equal(brick_alloc(b, 0, NULL, NULL), 0);
	assert_int_equal(brick_map(b, &s, 0, NVL_BRICK_MAP_RW, &h), 0);
	memset(h->blk->mem->va, 1, 4096);
	brick_flush(b, h, 0, 0, flush_cb, &frc);
	assert_int_equal(frc, 0);
	frc = 1;
	brick_flush_all(b, flush_cb, &frc);
	assert_int_equal(frc, 0);
	assert_int_equal(brick_unmap(b, &s, 0), 0);
	assert_int_equal(brick_free(b, 0), 0);
	g_fake_ring = false;
	assert_int_equal(g_sqes, 0);
	assert_int_equal(ev_count_syncs(), 0);
	assert_true(ev_find(UT_RENAME, NULL, "blk-0000000000000000", 0) >= 0); /* it did run */
	brick_session_fini(&s);
	brick_close(b);
}

static void
test_htab(void **state)
{
	struct brick_htab t;
	static uint8_t ref[4096];
	uint64_t x = 1;

	(void)state;
	brick_htab_init(&t);
	for (int i = 0; i < 200000; i++) {
		uint64_t k, key;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		k = x % 4096;
		key = k << 21; /* block addresses */
		if (x & 0x100) {
			int rc = brick_htab_put(&t, key, &ref[k]);

			assert_int_equal(rc, ref[k] ? -EEXIST : 0);
			ref[k] = 1;
		} else {
			void *v = brick_htab_del(&t, key);

			assert_ptr_equal(v, ref[k] ? &ref[k] : NULL);
			ref[k] = 0;
		}
		if ((i & 1023) == 0) {
			size_t cnt = 0, pos = 0;

			for (int j = 0; j < 4096; j++) {
				assert_ptr_equal(brick_htab_get(&t, (uint64_t)j << 21),
						 ref[j] ? &ref[j] : NULL);
				cnt += ref[j];
			}
			assert_int_equal(cnt, t.count);
			while (brick_htab_next(&t, &pos))
				cnt--;
			assert_int_equal(cnt, 0);
		}
	}
	brick_htab_fini(&t);
}

/* ---- slow tier in a file (slotfile.c) ---- */

static void
sf_path(char *buf, size_t len, const char *leaf)
{
	path(buf, len, leaf);
}

/* A sparse file of `size` bytes, optionally starting with `head`. */
static void
sf_make(const char *leaf, uint64_t size, const char *head)
{
	char p[256];
	int fd;

	sf_path(p, sizeof(p), leaf);
	fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (head)
		assert_int_equal(pwrite(fd, head, strlen(head), 0), (ssize_t)strlen(head));
	close(fd);
}

static struct brick *
mk_sf(const char *name, const char *fast, const char *file, uint64_t cap, uint64_t fb, int want)
{
	char f[256], s[256];
	struct brick_opts o = { .name = name, .capacity_blocks = cap, .fast_blocks = fb };
	struct brick *b = NULL;

	path(f, sizeof(f), fast);
	sf_path(s, sizeof(s), file);
	o.fast_dir = f;
	o.slow_file = s;
	assert_int_equal(brick_create(&o, &b), want);
	return b;
}

static void
test_sf_format(void **state)
{
	struct brick_sf_hdr h = { .nslots = 3, .data_off = brick_sf_data_off(3), .id = 0xabcdef },
			    h2;
	struct brick_sf_rec r = { .addr = 7 * BS, .gen = 42, .valid = true }, r2;
	uint8_t hdr[BRICK_SF_HDR_SIZE], rec[BRICK_SF_REC_SIZE];

	(void)state;
	/* sizes: the table rounds up to 2 MiB, then whole slots */
	assert_int_equal(brick_sf_data_off(1), BS);
	assert_int_equal(brick_sf_data_off(4089), 2 * BS); /* 4096 + 4089 * 512 > 2 MiB */
	assert_int_equal(brick_sf_slots_for_size(0), 0);
	assert_int_equal(brick_sf_slots_for_size(2 * BS - 1), 0);
	assert_int_equal(brick_sf_slots_for_size(2 * BS), 1);
	assert_int_equal(brick_sf_slots_for_size(64 * BS), 63);
	/* header round trip; zero = unformatted; any other content = refused */
	brick_sf_hdr_encode(&h, hdr);
	assert_int_equal(memcmp(hdr, "NVLBSLF1", 8), 0);
	assert_int_equal(brick_sf_hdr_decode(hdr, &h2), 0);
	assert_true(h2.nslots == 3 && h2.data_off == BS && h2.id == 0xabcdef);
	hdr[30] ^= 1; /* inside the checksummed part */
	assert_int_equal(brick_sf_hdr_decode(hdr, &h2), -EINVAL);
	memset(hdr, 0, sizeof(hdr));
	assert_int_equal(brick_sf_hdr_decode(hdr, &h2), -ENOENT);
	memcpy(hdr, "\x7f" "ELF", 4);
	assert_int_equal(brick_sf_hdr_decode(hdr, &h2), -EINVAL);
	/* record round trip */
	brick_sf_rec_encode(&r, 99, 5, rec);
	assert_true(brick_sf_rec_decode(rec, 99, 5, &r2));
	assert_true(r2.valid && r2.addr == 7 * BS && r2.gen == 42);
	assert_false(brick_sf_rec_decode(rec, 98, 5, &r2));  /* earlier format of the file */
	assert_false(brick_sf_rec_decode(rec, 99, 6, &r2));  /* another slot's record */
	rec[20] ^= 0x80;                                    /* a torn or rotten record */
	assert_false(brick_sf_rec_decode(rec, 99, 5, &r2));
	assert_false(r2.valid);
	r.valid = false;
	brick_sf_rec_encode(&r, 99, 5, rec);
	assert_true(brick_sf_rec_decode(rec, 99, 5, &r2));
	assert_false(r2.valid);
	memset(rec, 0, sizeof(rec));
	assert_false(brick_sf_rec_decode(rec, 99, 5, &r2));
	/* the decisions of recovery */
	{
		struct brick_block fast = { .tier = BRICK_TIER_FAST };
		struct brick_block slow = { .tier = BRICK_TIER_SLOW };

		assert_int_equal(sf_decide(NULL, 0, 3), SF_TAKE);
		assert_int_equal(sf_decide(&fast, 0, 3), SF_DROP);
		assert_int_equal(sf_decide(&slow, 2, 3), SF_REPLACE);
		assert_int_equal(sf_decide(&slow, 4, 3), SF_DROP);
	}
}

static void
fill_blocks(struct brick *b, uint64_t n, int base)
{
	static struct brick_session s; /* static: outlives any inlining analysis */
	struct brick_handle *h;

	brick_session_init(&s, b);
	for (uint64_t i = 0; i < n; i++) {
		assert_int_equal(brick_alloc(b, i * BS, NULL, NULL), 0);
		assert_int_equal(brick_map(b, &s, i * BS, NVL_BRICK_MAP_RW, &h), 0);
		memset(h->blk->mem->va, base + (int)i, BS);
		assert_int_equal(brick_unmap(b, &s, i * BS), 0);
	}
	brick_session_fini(&s);
}

/* content of block addr: its fill byte (first and last byte agree) or -1 */
static int
blk_byte(struct brick *b, uint64_t addr)
{
	static struct brick_session s;
	struct brick_handle *h;
	int v;

	brick_session_init(&s, b);
	if (brick_map(b, &s, addr, NVL_BRICK_MAP_RO, &h) < 0) {
		brick_session_fini(&s);
		return -1;
	}
	v = h->blk->mem->va[0] == h->blk->mem->va[BS - 1] ? h->blk->mem->va[0] : -1;
	brick_session_fini(&s);
	return v;
}

static void
test_sf_tiering(void **state)
{
	struct brick *b;
	struct brick_session s;
	struct brick_handle *h[2];

	(void)state;
	sf_make("sf1", 8 * BS, NULL); /* 7 slots */
	b = mk_sf("sf", "sff", "sf1", 8, 2, 0);
	assert_int_equal(b->sf.nslots, 7);
	fill_blocks(b, 8, 0x20);
	assert_int_equal(b->nfast, 2);
	assert_int_equal(b->nslow, 6);
	assert_int_equal(b->sf.nfree, 1);
	for (int pass = 0; pass < 2; pass++)
		for (uint64_t i = 0; i < 8; i++) {
			uint64_t j = pass ? 7 - i : i;

			assert_int_equal(blk_byte(b, j * BS), 0x20 + (int)j);
		}
	assert_true(b->st.evictions >= 16 && b->st.fetches >= 14);
	/* pinned fast tier: a new block goes straight into a slot, zeroed */
	brick_session_init(&s, b);
	assert_int_equal(brick_map(b, &s, 0, NVL_BRICK_MAP_RO, &h[0]), 0);
	assert_int_equal(brick_map(b, &s, BS, NVL_BRICK_MAP_RO, &h[1]), 0);
	assert_int_equal(brick_free(b, 5 * BS), 0);
	assert_int_equal(b->sf.nfree, 2);
	assert_int_equal(brick_alloc(b, 5 * BS, NULL, NULL), 0);
	assert_int_equal(((struct brick_block *)brick_htab_get(&b->blocks, 5 * BS))->tier,
			 BRICK_TIER_SLOW);
	brick_session_fini(&s);
	assert_int_equal(blk_byte(b, 5 * BS), 0);
	brick_close(b);
	/* everything comes back from the file after a restart */
	b = mk_sf("sf", "sff", "sf1", 8, 2, 0);
	assert_int_equal(b->blocks.count, 8);
	assert_int_equal(b->nfast + b->nslow, 8);
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(blk_byte(b, i * BS), i == 5 ? 0 : 0x20 + (int)i);
	brick_close(b);
}

/* write a valid record for addr with a given generation into slot, and its data */
static void
sf_plant(const char *leaf, uint64_t slot, uint64_t addr, uint64_t gen, int fill, bool valid)
{
	struct brick_slotfile sf = { .fd = -1 };
	char p[256];

	sf_path(p, sizeof(p), leaf);
	assert_int_equal(brick_sf_open(&sf, p), 0);
	memset(sf.buf, fill, BS);
	assert_int_equal(brick_sf_data_io(&sf, slot, sf.buf, true), 0);
	sf.next_gen = gen;
	assert_int_equal(brick_sf_rec_write(&sf, slot, addr, valid), 0);
	brick_sf_close(&sf);
}

static struct brick_sf_rec
sf_rec(const char *leaf, uint64_t slot)
{
	struct brick_slotfile sf = { .fd = -1 };
	struct brick_sf_rec r;
	char p[256];

	sf_path(p, sizeof(p), leaf);
	assert_int_equal(brick_sf_open(&sf, p), 0);
	assert_int_equal(brick_sf_rec_read(&sf, slot, &r), 0);
	brick_sf_close(&sf);
	return r;
}

static void
test_sf_recovery(void **state)
{
	char p[256];
	struct brick *b;
	int fd;

	(void)state;
	sf_make("sr1", 16 * BS, NULL); /* 15 slots */
	b = mk_sf("sr", "srf", "sr1", 12, 4, 0);
	brick_close(b);
	/* what a crash (or rot) can leave in the slot file:
	 * 0x10: two valid records, the newer in the later slot -> slot 1 wins
	 * 0x11: two valid records, the newer in the earlier slot -> slot 2 wins
	 * 0x12: also in the fast directory (interrupted move) -> the fast copy wins
	 * 0x13: a record with a bad checksum -> no block
	 * 0x14: a record written invalid (freed or promoted) -> no block
	 * 0x15: a plain slow block */
	sf_plant("sr1", 0, 0x10 * BS, 5, 0xa0, true);
	sf_plant("sr1", 1, 0x10 * BS, 9, 0xa1, true);
	sf_plant("sr1", 2, 0x11 * BS, 8, 0xb2, true);
	sf_plant("sr1", 3, 0x11 * BS, 7, 0xb3, true);
	sf_plant("sr1", 4, 0x12 * BS, 3, 0xc4, true);
	touch_file("srf", "blk-0000000002400000", BS, 0xcf);
	sf_plant("sr1", 5, 0x13 * BS, 4, 0xd5, true);
	sf_path(p, sizeof(p), "sr1");
	fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\xff", 1, BRICK_SF_HDR_SIZE + 5 * BRICK_SF_REC_SIZE + 16), 1);
	close(fd);
	sf_plant("sr1", 6, 0x14 * BS, 4, 0xe6, false);
	sf_plant("sr1", 7, 0x15 * BS, 2, 0xf7, true);

	b = mk_sf("sr", "srf", "sr1", 12, 4, 0);
	assert_int_equal(b->blocks.count, 4); /* 0x10, 0x11, 0x12, 0x15 */
	assert_int_equal(b->nfast, 1);
	assert_int_equal(b->nslow, 3);
	assert_int_equal(b->sf.nfree, 15 - 3);
	assert_true(b->sf.next_gen > 9);
	assert_null(brick_htab_get(&b->blocks, 0x13 * BS));
	assert_null(brick_htab_get(&b->blocks, 0x14 * BS));
	assert_int_equal(((struct brick_block *)brick_htab_get(&b->blocks, 0x10 * BS))->slot, 1);
	assert_int_equal(((struct brick_block *)brick_htab_get(&b->blocks, 0x11 * BS))->slot, 2);
	assert_int_equal(blk_byte(b, 0x10 * BS), 0xa1);
	assert_int_equal(blk_byte(b, 0x11 * BS), 0xb2);
	assert_int_equal(blk_byte(b, 0x12 * BS), 0xcf);
	assert_int_equal(blk_byte(b, 0x15 * BS), 0xf7);
	brick_close(b);
	/* the losers were invalidated on disk: the next recovery agrees */
	assert_false(sf_rec("sr1", 0).valid);
	assert_false(sf_rec("sr1", 3).valid);
	assert_false(sf_rec("sr1", 4).valid);
	b = mk_sf("sr", "srf", "sr1", 12, 4, 0);
	assert_int_equal(b->blocks.count, 4);
	assert_int_equal(blk_byte(b, 0x12 * BS), 0xcf);
	brick_close(b);
	/* more valid slots than the new capacity: refused */
	mk_sf("sr", "srf", "sr1", 3, 1, -ENOSPC);
}

static void
test_sf_errors(void **state)
{
	struct brick_opts o = { .name = "se", .capacity_blocks = 4, .fast_blocks = 2 };
	char f[256], s[256], d[256];
	struct brick *b;

	(void)state;
	sf_make("tiny", 2 * BS - 1, NULL);
	mk_sf("se", "sef", "tiny", 4, 3, -ERANGE);      /* too small for one slot */
	sf_make("small", 3 * BS, NULL);                 /* 2 slots */
	mk_sf("se", "sef", "small", 4, 2, -ERANGE);     /* 4 - 2 + 1 slots needed */
	b = mk_sf("se", "sef", "small", 4, 3, 0);
	brick_close(b);
	sf_make("other", 8 * BS, "#!/bin/sh\n");
	mk_sf("se", "sef", "other", 4, 2, -EINVAL);     /* another format: untouched */
	{
		char buf[10];

		sf_path(s, sizeof(s), "other");
		int fd = open(s, O_RDONLY);
		assert_int_equal(read(fd, buf, 10), 10);
		assert_int_equal(memcmp(buf, "#!/bin/sh\n", 10), 0);
		close(fd);
	}
	sf_make("lk", 8 * BS, NULL);
	b = mk_sf("se", "sef", "lk", 4, 2, 0);
	mk_sf("se2", "sef2", "lk", 4, 2, -EBUSY);       /* in use by another brick */
	brick_close(b);
	mk_sf("se", "sef", "missing", 4, 2, -ENOENT);
	/* slow_dir and slow_file together */
	path(f, sizeof(f), "sef");
	path(d, sizeof(d), "sed");
	sf_path(s, sizeof(s), "lk");
	o.fast_dir = f;
	o.slow_dir = d;
	o.slow_file = s;
	assert_int_equal(brick_create(&o, &b), -EINVAL);
	/* purge forgets every block (the header is zeroed, the next open reformats) */
	b = mk_sf("se", "sef", "lk", 4, 1, 0);
	fill_blocks(b, 3, 1);
	assert_int_equal(b->nslow, 2);
	brick_close(b);
	o.slow_dir = NULL;
	assert_int_equal(brick_purge_files(&o), 0);
	b = mk_sf("se", "sef", "lk", 4, 1, 0);
	assert_int_equal(b->blocks.count, 0);
	brick_close(b);
}

/* Ordering on the slot file: demote = data, sync, record, sync, then the fast
 * name goes; promote = fast file published, then record invalid, sync; free =
 * record invalid, sync before the acknowledgement. */
static void
test_sf_syncs(void **state)
{
	struct brick_session s;
	struct brick_handle *h;
	struct brick_block *blk;
	struct stat fst;
	struct brick *b;
	struct brick_sf_rec r;
	uint64_t rec0, slot;
	int i, j, k;

	(void)state;
	sf_make("sy", 8 * BS, NULL);
	b = mk_sf("sy", "syf", "sy", 4, 1, 0);
	brick_pool_stop(b->pool);
	b->pool = NULL;
	assert_int_equal(fstat(b->sf.fd, &fst), 0);
	assert_int_equal(brick_alloc(b, 0, NULL, NULL), 0);
	g_nev = 0;
	assert_int_equal(brick_alloc(b, BS, NULL, NULL), 0); /* evicts block 0 */
	blk = brick_htab_get(&b->blocks, 0);
	assert_int_equal(blk->tier, BRICK_TIER_SLOW);
	slot = blk->slot;
	rec0 = BRICK_SF_HDR_SIZE + slot * BRICK_SF_REC_SIZE;
	i = ev_find(UT_PWRITE, &fst, NULL, 0);
	assert_true(i >= 0);
	assert_true(g_ev[i].off == (off64_t)(b->sf.data_off + slot * BS));
	j = ev_find(UT_FDATASYNC, &fst, NULL, i);
	assert_true(j > i);
	k = ev_find(UT_PWRITE, &fst, NULL, j);
	assert_true(k > j);
	assert_true(g_ev[k].off == (off64_t)rec0 && g_ev[k].len == BRICK_SF_REC_SIZE);
	j = ev_find(UT_FDATASYNC, &fst, NULL, k);
	assert_true(j > k);
	assert_true(ev_find(UT_UNLINK, NULL, "blk-0000000000000000", j) > j);
	assert_true(ev_find(UT_UNLINK, NULL, "blk-0000000000000000", 0) > j);

	/* promote: named in the fast directory before the record goes invalid */
	brick_session_init(&s, b);
	g_nev = 0;
	assert_int_equal(brick_map(b, &s, 0, NVL_BRICK_MAP_RO, &h), 0);
	i = ev_find(UT_RENAME, NULL, "blk-0000000000000000", 0);
	assert_true(i >= 0);
	k = -1;
	for (int x = i; (x = ev_find(UT_PWRITE, &fst, NULL, x)) >= 0; x++)
		if (g_ev[x].off == (off64_t)rec0)
			k = x;
	assert_true(k > i);
	assert_true(ev_find(UT_FDATASYNC, &fst, NULL, k) > k);
	assert_int_equal(brick_sf_rec_read(&b->sf, slot, &r), 0);
	assert_false(r.valid);
	brick_session_fini(&s);

	/* free of a slow block: invalid record synced before it returns */
	blk = brick_htab_get(&b->blocks, BS);
	assert_int_equal(blk->tier, BRICK_TIER_SLOW);
	slot = blk->slot;
	g_nev = 0;
	assert_int_equal(brick_free(b, BS), 0);
	k = ev_find(UT_PWRITE, &fst, NULL, 0);
	assert_true(k >= 0);
	assert_true(g_ev[k].off == (off64_t)(BRICK_SF_HDR_SIZE + slot * BRICK_SF_REC_SIZE));
	assert_true(ev_find(UT_FDATASYNC, &fst, NULL, k) > k);
	assert_int_equal(brick_sf_rec_read(&b->sf, slot, &r), 0);
	assert_false(r.valid);
	brick_close(b);
}

/* ---- block ownership (acl.c) ------------------------------------------- */

static struct brick_principal
who(uint8_t seed, bool local, uint32_t uid)
{
	struct brick_principal p = { .local = local, .uid = uid };
	uint8_t secret[NVL_BRICK_ID_SIZE];

	memset(secret, seed, sizeof(secret));
	assert_int_equal(brick_principal_set_id(&p, secret), 0);
	snprintf(p.name, sizeof(p.name), "client-%u", seed);
	return p;
}

static void
test_acl_check(void **state)
{
	struct brick_principal a = who(1, false, 0), bob = who(2, false, 0);
	struct brick_principal anon = { .local = true, .uid = 0 };
	struct brick_principal root_tcp = { .uid = 0 };
	uint8_t ka[NVL_BRICK_KEY_SIZE], kb[NVL_BRICK_KEY_SIZE], bad[NVL_BRICK_KEY_SIZE];
	struct nvl_brick_extent ext[4];
	struct brick_block *blk = NULL;
	struct brick *b = mk("acl", "af", NULL, 4, 0, 0);
	uint64_t next;
	bool more;

	(void)state;
	assert_int_equal(brick_alloc(b, 0, &a, ka), 0);
	assert_int_equal(brick_alloc(b, BS, &bob, kb), 0);
	assert_memory_not_equal(ka, kb, sizeof(ka));
	/* the owner, by identity, with or without the key */
	assert_int_equal(brick_block_access(b, 0, &a, NULL, &blk), 0);
	assert_int_equal(blk->addr, 0);
	assert_int_equal(brick_block_access(b, 0, &a, kb, &blk), 0);
	/* another identity: only with the right key */
	assert_int_equal(brick_block_access(b, 0, &bob, NULL, &blk), -EACCES);
	assert_int_equal(brick_block_access(b, 0, &bob, kb, &blk), -EACCES);
	memcpy(bad, ka, sizeof(bad));
	bad[15] ^= 1; /* one bit off */
	assert_int_equal(brick_block_access(b, 0, &bob, bad, &blk), -EACCES);
	assert_int_equal(brick_block_access(b, 0, &bob, ka, &blk), 0);
	/* anonymous and same-uid clients own nothing they did not allocate */
	assert_int_equal(brick_block_access(b, 0, &anon, NULL, &blk), -EACCES);
	assert_int_equal(brick_block_access(b, 0, &anon, ka, &blk), 0);
	assert_int_equal(b->st.denied, 4);
	/* absent blocks: ENOENT (ALLOC's EEXIST tells existence anyway) */
	assert_int_equal(brick_block_access(b, 2 * BS, &bob, NULL, &blk), -ENOENT);
	assert_int_equal(brick_block_access(b, 4096, &a, NULL, &blk), -EINVAL);
	/* the daemon itself (NULL) reaches everything */
	assert_int_equal(brick_block_access(b, BS, NULL, NULL, &blk), 0);
	/* lists: each sees its own; the daemon all */
	assert_int_equal(brick_list_owned(b, &a, 0, ext, 4, &more, &next), 1);
	assert_int_equal(ext[0].addr, 0);
	assert_int_equal(brick_list_owned(b, &bob, 0, ext, 4, &more, &next), 1);
	assert_int_equal(ext[0].addr, BS);
	assert_int_equal(brick_list_owned(b, &anon, 0, ext, 4, &more, &next), 0);
	assert_int_equal(brick_list(b, 0, ext, 4, &more, &next), 1);
	assert_int_equal(ext[0].length, 2 * BS);
	/* blocks of the daemon (brick bdevs): its own uid, locally only */
	assert_int_equal(brick_alloc(b, 2 * BS, NULL, NULL), 0);
	anon.uid = (uint32_t)geteuid();
	root_tcp.uid = anon.uid;
	assert_int_equal(brick_block_access(b, 2 * BS, &anon, NULL, &blk), 0);
	assert_int_equal(brick_block_access(b, 2 * BS, &root_tcp, NULL, &blk), -EACCES);
	anon.uid++;
	assert_int_equal(brick_block_access(b, 2 * BS, &anon, NULL, &blk), -EACCES);
	/* free drops the record; a new alloc at the address has a new key */
	assert_int_equal(brick_free(b, 0), 0);
	assert_int_equal(faccessat(b->fast.dfd, "acl-0000000000000000", F_OK, 0), -1);
	assert_int_equal(brick_alloc(b, 0, &bob, kb), 0);
	assert_memory_not_equal(ka, kb, sizeof(ka));
	assert_int_equal(brick_block_access(b, 0, &a, ka, &blk), -EACCES);
	brick_close(b);
}

static void
test_acl_format(void **state)
{
	struct brick_principal a = who(7, true, 1000);
	struct brick_acl x, y;
	uint8_t buf[BRICK_ACL_SIZE];

	(void)state;
	assert_int_equal(brick_acl_init(&x, &a), 0);
	assert_int_equal(x.uid, 1000);
	assert_true(x.has_id);
	assert_int_equal(x.flags, 0); /* a uid alone never owns a block a client allocated */
	brick_acl_encode(&x, 5 * BS, buf);
	assert_int_equal(brick_acl_decode(buf, sizeof(buf), 5 * BS, &y), 0);
	assert_memory_equal(x.key, y.key, sizeof(x.key));
	assert_memory_equal(x.id_hash, y.id_hash, sizeof(x.id_hash));
	assert_string_equal(y.name, "client-7");
	assert_int_equal(y.uid, 1000);
	assert_true(y.has_id);
	assert_true(brick_acl_owner(&y, &a));
	/* another block's record, a short one, a flipped bit: refused */
	assert_int_equal(brick_acl_decode(buf, sizeof(buf), 6 * BS, &y), -EINVAL);
	assert_int_equal(brick_acl_decode(buf, sizeof(buf) - 1, 5 * BS, &y), -EINVAL);
	buf[30] ^= 0x10;
	assert_int_equal(brick_acl_decode(buf, sizeof(buf), 5 * BS, &y), -EINVAL);
	/* the identity is kept as a hash: the secret is not in the record */
	{
		uint8_t secret[NVL_BRICK_ID_SIZE];

		memset(secret, 7, sizeof(secret));
		assert_null(memmem(buf, sizeof(buf), secret, sizeof(secret)));
	}
	assert_int_equal(brick_acl_init_root(&y), 0);
	assert_int_equal(y.uid, 0);
	assert_int_equal(y.flags, BRICK_ACL_UID_OWNS);
	assert_false(y.has_id);
}

/* Keys and owners survive a restart; a brick whose blocks have no owner
 * record (directories and a slot file written before ownership existed)
 * gives them fresh keys owned by local root, kept from then on; orphan and
 * damaged records are dealt with. */
static void
test_acl_recovery(void **state)
{
	struct brick_principal a = who(3, false, 0), bob = who(4, false, 0);
	struct brick_principal root = { .local = true, .uid = 0 }, tcp = { .uid = 0 };
	uint8_t k[3][NVL_BRICK_KEY_SIZE], k2[NVL_BRICK_KEY_SIZE];
	struct brick_block *blk;
	struct brick *b;
	int fd;

	(void)state;
	sf_make("acl-sf", 8 * BS, NULL);
	b = mk_sf("acls", "aclf", "acl-sf", 6, 1, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(brick_alloc(b, (uint64_t)i * BS, i == 2 ? &bob : &a, k[i]), 0);
	assert_true(b->nslow >= 2); /* some live in the slot file */
	brick_close(b);

	b = mk_sf("acls", "aclf", "acl-sf", 6, 1, 0);
	for (int i = 0; i < 3; i++) {
		struct brick_principal *p = i == 2 ? &bob : &a, *q = i == 2 ? &a : &bob;

		assert_int_equal(brick_block_access(b, (uint64_t)i * BS, p, NULL, &blk), 0);
		assert_memory_equal(blk->acl.key, k[i], sizeof(k[i]));
		assert_int_equal(brick_block_access(b, (uint64_t)i * BS, q, NULL, &blk), -EACCES);
		assert_int_equal(brick_block_access(b, (uint64_t)i * BS, q, k[i], &blk), 0);
	}
	brick_close(b);

	/* the layout of a brick made before ownership: blocks, no records; plus
	 * an old slot-file block planted directly, an orphan record and a
	 * damaged one */
	{
		char d[256], cmd[1200];

		path(d, sizeof(d), "aclf");
		snprintf(cmd, sizeof(cmd), "rm -f %s/acl-0000000000000000 %s/acl-0000000000400000",
			 d, d);
		assert_int_equal(system(cmd), 0);
		snprintf(cmd, sizeof(cmd), "printf garbage > %s/acl-0000000000200000 && "
			 "cp %s/acl-0000000000200000 %s/acl-0000000000e00000", d, d, d);
		assert_int_equal(system(cmd), 0);
	}
	sf_plant("acl-sf", 5, 5 * BS, 1000, 0x55, true);
	b = mk_sf("acls", "aclf", "acl-sf", 6, 1, 0);
	assert_int_equal(b->blocks.count, 4);
	for (uint64_t i = 0; i < 6; i++) {
		if (i == 3 || i == 4)
			continue;
		blk = brick_htab_get(&b->blocks, i * BS);
		assert_non_null(blk);
		assert_int_equal(blk->acl.flags, BRICK_ACL_UID_OWNS);
		assert_int_equal(blk->acl.uid, 0);
		if (i < 3)
			assert_memory_not_equal(blk->acl.key, k[i], sizeof(k[i])); /* fresh */
		/* local root owns it; an identity or root over TCP needs the key */
		assert_int_equal(brick_block_access(b, i * BS, &root, NULL, &blk), 0);
		assert_int_equal(brick_block_access(b, i * BS, &a, NULL, &blk), -EACCES);
		assert_int_equal(brick_block_access(b, i * BS, &tcp, NULL, &blk), -EACCES);
		assert_int_equal(brick_block_access(b, i * BS, &tcp, blk->acl.key, &blk), 0);
	}
	assert_int_equal(blk_byte(b, 5 * BS), 0x55);
	assert_int_equal(faccessat(b->fast.dfd, "acl-0000000000e00000", F_OK, 0), -1);
	blk = brick_htab_get(&b->blocks, 0);
	memcpy(k2, blk->acl.key, sizeof(k2));
	brick_close(b);
	/* the fresh keys were kept */
	b = mk_sf("acls", "aclf", "acl-sf", 6, 1, 0);
	blk = brick_htab_get(&b->blocks, 0);
	assert_memory_equal(blk->acl.key, k2, sizeof(k2));
	fd = openat(b->fast.dfd, "acl-0000000000000000", O_RDONLY);
	assert_true(fd >= 0);
	{
		struct stat st;

		assert_int_equal(fstat(fd, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		assert_int_equal(st.st_size, BRICK_ACL_SIZE);
	}
	close(fd);
	brick_close(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors),   cmocka_unit_test(test_list),
		cmocka_unit_test(test_tiering),  cmocka_unit_test(test_revocation_swap),
		cmocka_unit_test(test_recovery), cmocka_unit_test(test_locking),
		cmocka_unit_test(test_disk_tier), cmocka_unit_test(test_durable_syncs),
		cmocka_unit_test(test_volatile_no_syncs), cmocka_unit_test(test_htab),
		cmocka_unit_test(test_sf_format), cmocka_unit_test(test_sf_tiering),
		cmocka_unit_test(test_sf_recovery), cmocka_unit_test(test_sf_errors),
		cmocka_unit_test(test_sf_syncs),  cmocka_unit_test(test_acl_check),
		cmocka_unit_test(test_acl_format), cmocka_unit_test(test_acl_recovery),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
