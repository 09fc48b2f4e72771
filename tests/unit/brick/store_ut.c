/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the brick store (src/brick/store.c) and its hash table:
 * error codes, extent lists, tiering, revocation, recovery of a directory
 * left in every intermediate state a crash can leave, locking. Runs on real
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

enum ut_ev_kind { UT_FDATASYNC, UT_FSYNC, UT_SYNC_RANGE, UT_RENAME, UT_UNLINK };

struct ut_ev {
	enum ut_ev_kind kind;
	dev_t dev;          /* syncs: the synced inode */
	ino_t ino;
	off64_t off, len;   /* sync_file_range */
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

#include "brick/htab.c"
#include "brick/store.c"

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
	assert_int_equal(brick_alloc(b, 4096), -EINVAL);
	assert_int_equal(brick_alloc(b, 0), 0);
	assert_int_equal(brick_alloc(b, 0), -EEXIST);
	assert_int_equal(brick_alloc(b, BS), 0);
	assert_int_equal(brick_alloc(b, UINT64_MAX - BS + 1), 0);
	assert_int_equal(brick_alloc(b, 2 * BS), -ENOSPC);
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
		assert_int_equal(brick_alloc(b, (i < 3 ? i : i + 4) * BS), 0); /* 0-2, 7-9 */
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
		assert_int_equal(brick_alloc(b, i * BS), 0);
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
	assert_int_equal(brick_alloc(b, 5 * BS), 0);
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
	assert_int_equal(brick_alloc(b, 0), 0);
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
	assert_int_equal(brick_alloc(b, 0), 0);
	assert_int_equal(brick_alloc(b, BS), 0);
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
	assert_int_equal(brick_alloc(b, 0), 0);
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
	assert_int_equal(brick_alloc(b, 0), 0);
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
	assert_int_equal(brick_alloc(b, 0), 0);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors),   cmocka_unit_test(test_list),
		cmocka_unit_test(test_tiering),  cmocka_unit_test(test_revocation_swap),
		cmocka_unit_test(test_recovery), cmocka_unit_test(test_locking),
		cmocka_unit_test(test_disk_tier), cmocka_unit_test(test_durable_syncs),
		cmocka_unit_test(test_volatile_no_syncs), cmocka_unit_test(test_htab),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
