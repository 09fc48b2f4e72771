/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The brick store: block map, tiers, handles, flush, crash recovery
 * (brick_internal.h describes the objects and the on-disk layout;
 * docs/brick.md the contracts). Reactor 0 only, no locks.
 *
 * Ordering rules that make the directory a crash-consistent block map:
 *  - create: write .tmp-ADDR (fallocate, copy, fdatasync on durable tiers),
 *    rename to blk-ADDR, fsync the directory; only then acknowledge.
 *  - tier moves: the destination is created completely (rule above) before
 *    the source name is removed; recovery resolves a block found in both
 *    tiers by keeping the fast copy, which is never older than the slow one.
 *  - free: unlink, fsync the directory, then acknowledge.
 * A slow tier in one file (slow_file, slotfile.c) follows the same rules with
 * a slot's record in place of a name:
 *  - demote: copy the data into a free slot, fdatasync, write the record
 *    valid, fdatasync; only then remove the fast copy.
 *  - promote: create the fast block completely (create rule), then write the
 *    slot's record invalid and fdatasync before the slot can be reused.
 *  - alloc in the slot file: zero the slot, fdatasync, record valid, fdatasync.
 *  - free: record invalid, fdatasync, then acknowledge.
 *  Recovery: a record counts only with a good checksum; a block both in the
 *  fast directory and in a slot keeps the fast copy (the slot is freed); two
 *  valid records of one address keep the higher generation.
 * Revocation of local mmaps (handles that gave a client the block's fd): when
 * the last handle of such a block goes away, the block moves to a fresh inode
 * (copy + rename over the name) and the old inode is truncated to zero, so a
 * client that kept its mapping faults (SIGBUS) instead of reaching the block.
 */
#include "brick/brick_internal.h"
#include "reactor/reactor.h"
#include "util/log.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

NVL_LOG_REGISTER_COMPONENT(brick)

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

#define MARKER ".nvlend-brick"

static TAILQ_HEAD(, brick) g_bricks = TAILQ_HEAD_INITIALIZER(g_bricks);
static TAILQ_HEAD(, brick_events) g_subscribers = TAILQ_HEAD_INITIALIZER(g_subscribers);
#ifdef NVL_FUZZING
uint64_t brick_fuzz_next_key;
#endif

struct brick *
brick_find(const char *name)
{
	struct brick *b;

	TAILQ_FOREACH(b, &g_bricks, link)
		if (strcmp(b->name, name) == 0)
			return b;
	return NULL;
}

struct brick *
brick_first(void)
{
	return TAILQ_FIRST(&g_bricks);
}

struct brick *
brick_next(struct brick *b)
{
	return TAILQ_NEXT(b, link);
}

static void
blk_name(char *buf, size_t len, const char *prefix, uint64_t addr)
{
	snprintf(buf, len, "%s%016" PRIx64, prefix, addr);
}

static bool
tier_durable(const struct brick_tier *t)
{
	return t->kind != NVL_BRICK_PERSIST_VOLATILE;
}

/* ---- block memory ------------------------------------------------------ */

static int
mem_create(struct brick *b, int fd, struct brick_mem **out)
{
	struct brick_mem *m = calloc(1, sizeof(*m));
	int flags = MAP_SHARED | MAP_POPULATE;

	if (m == NULL)
		return -ENOMEM;
	if (b->fast.kind == NVL_BRICK_PERSIST_PMEM)
		flags = MAP_SHARED_VALIDATE | MAP_SYNC | MAP_POPULATE;
	/* MAP_POPULATE pre-faults: first touch costs milliseconds here (MACHINE-NOTES) */
	m->va = mmap(NULL, BRICK_BLOCK_SIZE, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (m->va == MAP_FAILED) {
		int rc = -errno;

		free(m);
		return rc;
	}
	m->fd = fd;
	m->refs = 1;
	*out = m;
	return 0;
}

void
brick_mem_put(struct brick_mem *m)
{
	if (m == NULL || --m->refs > 0)
		return;
	munmap(m->va, BRICK_BLOCK_SIZE);
	close(m->fd);
	free(m);
}

/* ---- tier files -------------------------------------------------------- */

/* Copy a block file with the kernel doing the reads (a source truncated by a
 * misbehaving client gives a short read, never a SIGBUS in the daemon). */
static int
copy_block(int src, int dst)
{
	loff_t in = 0, out = 0;
	size_t left = BRICK_BLOCK_SIZE;
	uint8_t *d;

	while (left > 0) {
		ssize_t n = copy_file_range(src, &in, dst, &out, left, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP ||
			    errno == ENOSYS)
				goto fallback;
			return -errno;
		}
		if (n == 0)
			return 0; /* short source: the rest stays zero (fallocated) */
		left -= (size_t)n;
	}
	return 0;
fallback:
	/* hugetlbfs and cross-file-system pairs: pread into a mapping of dst */
	d = mmap(NULL, BRICK_BLOCK_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, dst, 0);
	if (d == MAP_FAILED)
		return -errno;
	for (size_t done = BRICK_BLOCK_SIZE - left; done < BRICK_BLOCK_SIZE;) {
		ssize_t n = pread(src, d + done, BRICK_BLOCK_SIZE - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int rc = n < 0 ? -errno : 0;

			munmap(d, BRICK_BLOCK_SIZE);
			return rc;
		}
		done += (size_t)n;
	}
	munmap(d, BRICK_BLOCK_SIZE);
	return 0;
}

/* Whole-block pread/pwrite of a block file. A source cut short by a client
 * reads as zeroes past its end. */
static int
read_block(int fd, uint8_t *buf)
{
	size_t done = 0;

	while (done < BRICK_BLOCK_SIZE) {
		ssize_t n = pread(fd, buf + done, BRICK_BLOCK_SIZE - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	memset(buf + done, 0, BRICK_BLOCK_SIZE - done);
	return 0;
}

static int
write_block(int fd, const uint8_t *buf)
{
	size_t done = 0;

	while (done < BRICK_BLOCK_SIZE) {
		ssize_t n = pwrite(fd, buf + done, BRICK_BLOCK_SIZE - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* Create blk-ADDR in tier t (contents: a copy of src_fd, of src_buf, or zeroes), crash-safely,
 * from a ready spare of the pool when there is one. Replaces an existing
 * blk-ADDR atomically. Returns the new file's fd. */
static int
tier_make_block(struct brick_tier *t, struct brick_pool *pool, uint64_t addr, int src_fd,
		const uint8_t *src_buf, int *out_fd)
{
	char tmp[40], name[40];
	uint64_t id;
	int fd, rc;

	*out_fd = -1;
	blk_name(name, sizeof(name), "blk-", addr);
	if (brick_pool_take(pool, &fd, &id) == 0) {
		brick_pool_name(id, tmp, sizeof(tmp)); /* zeroed, allocated, synced */
	} else {
		blk_name(tmp, sizeof(tmp), ".tmp-", addr);
		unlinkat(t->dfd, tmp, 0);
		fd = openat(t->dfd, tmp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return -errno;
		if (fallocate(fd, 0, 0, BRICK_BLOCK_SIZE) < 0) {
			if (errno != EOPNOTSUPP || ftruncate(fd, BRICK_BLOCK_SIZE) < 0) {
				rc = -errno;
				goto err;
			}
		}
	}
	if (src_fd >= 0) {
		rc = copy_block(src_fd, fd);
		if (rc < 0)
			goto err;
	}
	if (src_buf) {
		rc = write_block(fd, src_buf);
		if (rc < 0)
			goto err;
	}
	/* a fresh file's size and extents, or copied data, must be durable before
	 * its name; a spare from the pool was synced by the pool thread */
	if (tier_durable(t) && (src_fd >= 0 || src_buf || strncmp(tmp, ".spare-", 7) != 0) &&
	    fdatasync(fd) < 0) {
		rc = -errno;
		goto err;
	}
	if (renameat(t->dfd, tmp, t->dfd, name) < 0) {
		rc = -errno;
		goto err;
	}
	if (tier_durable(t) && fsync(t->dfd) < 0) {
		rc = -errno;
		NVL_ERRLOG("%s: fsync of the directory failed: %s", t->path, strerror(-rc));
		*out_fd = fd;
		return rc; /* the file exists under its name: caller must account for it */
	}
	*out_fd = fd;
	return 0;
err:
	close(fd);
	unlinkat(t->dfd, tmp, 0);
	return rc;
}

static int
tier_remove_block(struct brick_tier *t, uint64_t addr, bool sync)
{
	char name[40];

	blk_name(name, sizeof(name), "blk-", addr);
	if (unlinkat(t->dfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	if (sync && tier_durable(t) && fsync(t->dfd) < 0)
		return -errno;
	return 0;
}

/* Does the tmpfs holding path give 2 MiB pages (mounted huge=always/within_size)?
 * Read from /proc/self/mountinfo: the longest mount point that prefixes path. */
static bool
tmpfs_huge(const char *path)
{
	char real[4096], line[4096], best_opts[512] = "";
	size_t best = 0;
	FILE *f;

	if (realpath(path, real) == NULL)
		return false;
	f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char mnt[1024], *sep, fstype[64], src[512], opts[512];
		size_t n;

		if (sscanf(line, "%*s %*s %*s %*s %1023s", mnt) != 1)
			continue;
		sep = strstr(line, " - ");
		if (sep == NULL || sscanf(sep + 3, "%63s %511s %511s", fstype, src, opts) != 3)
			continue;
		n = strlen(mnt);
		if (strncmp(real, mnt, n) != 0 || (real[n] != '/' && real[n] != '\0' && n != 1))
			continue;
		if (n >= best) {
			best = n;
			nvl_strlcpy(best_opts, strcmp(fstype, "tmpfs") == 0 ? opts : "", sizeof(best_opts));
		}
	}
	fclose(f);
	return strstr(best_opts, "huge=always") || strstr(best_opts, "huge=within_size");
}

static int
tier_detect(struct brick_tier *t)
{
	struct statfs sfs;
	struct statx stx;
	void *p;
	int fd;

	if (fstatfs(t->dfd, &sfs) < 0)
		return -errno;
	if (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC) {
		t->kind = NVL_BRICK_PERSIST_VOLATILE;
		t->huge = sfs.f_type == TMPFS_MAGIC && tmpfs_huge(t->path);
		t->fs = t->huge ? "tmpfs-huge" : "tmpfs";
		return 0;
	}
	if (sfs.f_type == HUGETLBFS_MAGIC) {
		t->kind = NVL_BRICK_PERSIST_VOLATILE;
		t->huge = true;
		t->fs = "hugetlbfs";
		return 0;
	}
	t->kind = NVL_BRICK_PERSIST_FSYNC;
	t->fs = "file";
	/* DAX: the probe file's statx attribute, and MAP_SYNC must work */
	fd = openat(t->dfd, ".probe", O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, 4096) == 0 &&
	    statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) == 0 &&
	    (stx.stx_attributes & STATX_ATTR_DAX)) {
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
		if (p != MAP_FAILED) {
			munmap(p, 4096);
			t->kind = NVL_BRICK_PERSIST_PMEM;
			t->fs = "dax";
		}
	}
	close(fd);
	unlinkat(t->dfd, ".probe", 0);
	return 0;
}

static int
tier_open(struct brick_tier *t, const char *path, const char *role)
{
	char want[64], have[64] = "";
	ssize_t n;
	int rc;

	t->dfd = -1;
	t->lock_fd = -1;
	rc = nvl_mkdir_p(path);
	if (rc < 0 && rc != -EEXIST)
		return rc;
	t->path = strdup(path);
	if (t->path == NULL)
		return -ENOMEM;
	t->dfd = open(path, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (t->dfd < 0)
		return -errno;
	t->lock_fd = openat(t->dfd, MARKER, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (t->lock_fd < 0)
		return -errno;
	if (flock(t->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	snprintf(want, sizeof(want), "nvlend-brick 1 %s\n", role);
	n = pread(t->lock_fd, have, sizeof(have) - 1, 0);
	if (n > 0) {
		have[n] = '\0';
		if (strcmp(have, want) != 0) {
			NVL_ERRLOG("%s was made as another tier (%.*s), not as the %s tier", path,
				   (int)strcspn(have, "\n"), have, role);
			return -EINVAL;
		}
	} else {
		if (ftruncate(t->lock_fd, 0) < 0 ||
		    pwrite(t->lock_fd, want, strlen(want), 0) != (ssize_t)strlen(want))
			return -errno;
	}
	return tier_detect(t);
}

static void
tier_close(struct brick_tier *t)
{
	if (t->lock_fd >= 0)
		close(t->lock_fd);
	if (t->dfd >= 0)
		close(t->dfd);
	free(t->path);
	t->path = NULL;
	t->dfd = t->lock_fd = -1;
}

/* ---- blocks ------------------------------------------------------------ */

static void
blk_destroy(struct brick_block *blk)
{
	brick_mem_put(blk->mem);
	free(blk);
}

static struct brick_block *
blk_new(struct brick *b, uint64_t addr, enum brick_tier_id tier, struct brick_mem *mem)
{
	struct brick_block *blk = calloc(1, sizeof(*blk));

	if (blk == NULL)
		return NULL;
	blk->addr = addr;
	blk->tier = tier;
	blk->mem = mem;
	TAILQ_INIT(&blk->handles);
	if (brick_htab_put(&b->blocks, addr, blk) < 0) {
		free(blk);
		return NULL;
	}
	if (tier == BRICK_TIER_FAST) {
		b->nfast++;
		TAILQ_INSERT_TAIL(&b->lru, blk, lru);
	} else {
		b->nslow++;
	}
	return blk;
}

static bool
has_slow(const struct brick *b)
{
	return b->slow.dfd >= 0 || b->sf.fd >= 0;
}

/* Give up a slot whose record may say valid: invalidate it durably first. */
static void
sf_release(struct brick *b, uint64_t slot)
{
	struct brick_slotfile *sf = &b->sf;
	int rc;

	rc = brick_sf_rec_write(sf, slot, 0, false);
	if (rc == 0)
		rc = brick_sf_sync(sf);
	sf->slot_blk[slot] = NULL;
	if (rc < 0) {
		/* its record may stay valid: reusing it could resurrect a block */
		NVL_ERRLOG("brick %s: %s: cannot invalidate slot %" PRIu64 " (%s): slot retired",
			   b->name, sf->path, slot, strerror(-rc));
		return;
	}
	sf->free[sf->nfree++] = (uint32_t)slot;
}

/* Publish buf as addr's block in a free slot (data, sync, record, sync). */
static int
sf_put_block(struct brick *b, uint64_t addr, const uint8_t *buf, uint64_t *slot_out)
{
	struct brick_slotfile *sf = &b->sf;
	uint64_t slot;
	int rc;

	if (sf->nfree == 0)
		return -ENOSPC;
	slot = sf->free[--sf->nfree];
	rc = brick_sf_data_io(sf, slot, (void *)buf, true);
	if (rc == 0)
		rc = brick_sf_sync(sf);
	if (rc < 0) {
		sf->free[sf->nfree++] = (uint32_t)slot; /* its record is still invalid */
		return rc;
	}
	rc = brick_sf_rec_write(sf, slot, addr, true);
	if (rc == 0)
		rc = brick_sf_sync(sf);
	if (rc < 0) {
		sf_release(b, slot);
		return rc;
	}
	*slot_out = slot;
	return 0;
}

/* Copy an unmapped fast block into the slow tier (directory or file). */
static int
evict_copy(struct brick *b, struct brick_block *blk)
{
	int sfd = -1, rc;

	if (b->sf.fd >= 0) {
		rc = read_block(blk->mem->fd, b->sf.buf);
		if (rc == 0)
			rc = sf_put_block(b, blk->addr, b->sf.buf, &blk->slot);
		if (rc == 0)
			b->sf.slot_blk[blk->slot] = blk;
		return rc;
	}
	rc = tier_make_block(&b->slow, NULL, blk->addr, blk->mem->fd, NULL, &sfd);
	if (rc < 0 && sfd < 0)
		return rc;
	close(sfd);
	if (rc < 0)
		tier_remove_block(&b->slow, blk->addr, false);
	return rc;
}

/* Move an unmapped fast block to the slow tier. */
static int
blk_evict(struct brick *b, struct brick_block *blk)
{
	int rc;

	if (blk->tier != BRICK_TIER_FAST || blk->nhandles || !has_slow(b))
		return -EINVAL;
	rc = evict_copy(b, blk);
	if (rc < 0)
		return rc;
	/* No fsync needed here: if the unlink is lost, recovery finds the block
	 * in both tiers and keeps the (identical) fast copy. */
	rc = tier_remove_block(&b->fast, blk->addr, false);
	if (rc < 0) {
		NVL_ERRLOG("brick %s: cannot remove fast copy of 0x%" PRIx64 ": %s", b->name,
			   blk->addr, strerror(-rc));
		if (b->sf.fd >= 0)
			sf_release(b, blk->slot);
		else
			tier_remove_block(&b->slow, blk->addr, true);
		return rc;
	}
	TAILQ_REMOVE(&b->lru, blk, lru);
	brick_mem_put(blk->mem);
	blk->mem = NULL;
	blk->tier = BRICK_TIER_SLOW;
	b->nfast--;
	b->nslow++;
	b->st.evictions++;
	NVL_DEBUGLOG(brick, "%s: 0x%" PRIx64 " -> slow tier", b->name, blk->addr);
	return 0;
}

/* Make room for one more block in the fast tier. */
static int
fast_make_room(struct brick *b)
{
	while (b->nfast >= b->fast_budget) {
		struct brick_block *victim = TAILQ_FIRST(&b->lru);
		int rc;

		if (victim == NULL || !has_slow(b))
			return -ENOMEM;
		rc = blk_evict(b, victim);
		if (rc < 0)
			return rc == -EINVAL ? -ENOMEM : -EIO;
	}
	return 0;
}

/* Bring a slow block back to the fast tier. */
static int
blk_fetch(struct brick *b, struct brick_block *blk)
{
	struct brick_mem *m;
	char name[40];
	int sfd, fd = -1, rc;

	rc = fast_make_room(b);
	if (rc < 0)
		return rc;
	if (b->sf.fd >= 0) {
		/* after fast_make_room: an eviction reuses the bounce buffer */
		if (brick_sf_data_io(&b->sf, blk->slot, b->sf.buf, false) < 0)
			return -EIO;
		rc = tier_make_block(&b->fast, b->pool, blk->addr, -1, b->sf.buf, &fd);
	} else {
		blk_name(name, sizeof(name), "blk-", blk->addr);
		sfd = openat(b->slow.dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (sfd < 0)
			return -EIO;
		rc = tier_make_block(&b->fast, b->pool, blk->addr, sfd, NULL, &fd);
		close(sfd);
	}
	if (rc < 0) {
		if (fd >= 0) {
			close(fd);
			tier_remove_block(&b->fast, blk->addr, false);
		}
		return -EIO;
	}
	rc = mem_create(b, fd, &m);
	if (rc < 0) {
		close(fd);
		tier_remove_block(&b->fast, blk->addr, false);
		return rc;
	}
	if (b->sf.fd >= 0) {
		/* the slot is reused only once its record is durably invalid: a stale
		 * valid record could otherwise name another block's data */
		rc = brick_sf_rec_write(&b->sf, blk->slot, 0, false);
		if (rc == 0)
			rc = brick_sf_sync(&b->sf);
		if (rc < 0) {
			NVL_ERRLOG("brick %s: %s: invalidating slot %" PRIu64 ": %s", b->name,
				   b->sf.path, blk->slot, strerror(-rc));
			brick_mem_put(m);
			tier_remove_block(&b->fast, blk->addr, true);
			return -EIO;
		}
		b->sf.slot_blk[blk->slot] = NULL;
		b->sf.free[b->sf.nfree++] = (uint32_t)blk->slot;
	} else {
		tier_remove_block(&b->slow, blk->addr, false);
	}
	blk->mem = m;
	blk->tier = BRICK_TIER_FAST;
	b->nslow--;
	b->nfast++;
	b->st.fetches++;
	NVL_DEBUGLOG(brick, "%s: 0x%" PRIx64 " -> fast tier", b->name, blk->addr);
	return 0;
}

/* Revocation: move the block to a fresh inode; cut off stale local mappings. */
static void
blk_swap_inode(struct brick *b, struct brick_block *blk)
{
	struct brick_mem *old = blk->mem, *m;
	int fd = -1, rc;

	rc = tier_make_block(&b->fast, b->pool, blk->addr, old->fd, NULL, &fd);
	if (rc < 0 && fd < 0) {
		NVL_ERRLOG("brick %s: revocation copy of 0x%" PRIx64 " failed (%s): a local "
			   "client that kept its mapping still reaches the block",
			   b->name, blk->addr, strerror(-rc));
		return;
	}
	rc = mem_create(b, fd, &m);
	if (rc < 0) {
		/* the name now points at the new inode: keep using the old mapping
		 * would lose writes, so take the new one the slow way */
		NVL_ERRLOG("brick %s: cannot map the new inode of 0x%" PRIx64 ": %s", b->name,
			   blk->addr, strerror(-rc));
		close(fd);
		return;
	}
	if (old->exported && ftruncate(old->fd, 0) < 0)
		NVL_WARNLOG("brick %s: truncating the revoked inode of 0x%" PRIx64 ": %s",
			    b->name, blk->addr, strerror(errno));
	brick_mem_put(old);
	blk->mem = m;
	b->st.revocations++;
}

static int
new_key(struct brick *b, uint64_t *key)
{
#ifdef NVL_FUZZING
	/* fuzz builds: predictable keys (1, 2, ...) so inputs can reach the data path */
	do {
		*key = ++brick_fuzz_next_key;
	} while (brick_htab_get(&b->keys, *key) != NULL);
	return 0;
#endif
	for (int i = 0; i < 8; i++) {
		int rc = nvl_random_bytes(key, sizeof(*key));

		if (rc < 0)
			return rc;
		if (*key != 0 && brick_htab_get(&b->keys, *key) == NULL)
			return 0;
	}
	return -EAGAIN;
}

/* A new zeroed block straight into the slow file (fast tier full of mapped blocks). */
static int
sf_alloc(struct brick *b, uint64_t addr)
{
	struct brick_block *blk;
	uint64_t slot;
	int rc;

	memset(b->sf.buf, 0, BRICK_BLOCK_SIZE); /* the slot holds an old block's bytes */
	rc = sf_put_block(b, addr, b->sf.buf, &slot);
	if (rc < 0)
		return rc == -ENOSPC || rc == -EDQUOT ? -ENOSPC : rc;
	blk = blk_new(b, addr, BRICK_TIER_SLOW, NULL);
	if (blk == NULL) {
		sf_release(b, slot);
		return -ENOMEM;
	}
	blk->slot = slot;
	b->sf.slot_blk[slot] = blk;
	b->st.allocs++;
	NVL_DEBUGLOG(brick, "%s: alloc 0x%" PRIx64 " (slow file, slot %" PRIu64 ")", b->name,
		     addr, slot);
	return 0;
}

int
brick_alloc(struct brick *b, uint64_t addr)
{
	struct brick_mem *m = NULL;
	enum brick_tier_id tier;
	struct brick_tier *t;
	int fd = -1, rc;

	if (addr & (BRICK_BLOCK_SIZE - 1))
		return -EINVAL;
	if (brick_htab_get(&b->blocks, addr))
		return -EEXIST;
	if (b->blocks.count >= b->capacity)
		return -ENOSPC;
	tier = fast_make_room(b) == 0 ? BRICK_TIER_FAST : BRICK_TIER_SLOW;
	if (tier == BRICK_TIER_SLOW && !has_slow(b))
		return -ENOMEM;
	if (tier == BRICK_TIER_SLOW && b->sf.fd >= 0)
		return sf_alloc(b, addr);
	t = tier == BRICK_TIER_FAST ? &b->fast : &b->slow;
	rc = tier_make_block(t, tier == BRICK_TIER_FAST ? b->pool : NULL, addr, -1, NULL, &fd);
	if (rc < 0)
		goto err_file;
	if (tier == BRICK_TIER_FAST) {
		rc = mem_create(b, fd, &m);
		if (rc < 0)
			goto err_file;
	} else {
		close(fd);
	}
	if (blk_new(b, addr, tier, m) == NULL) {
		rc = -ENOMEM;
		fd = -1;
		brick_mem_put(m);
		goto err_file;
	}
	b->st.allocs++;
	NVL_DEBUGLOG(brick, "%s: alloc 0x%" PRIx64 " (%s tier)", b->name, addr,
		     tier == BRICK_TIER_FAST ? "fast" : "slow");
	return 0;
err_file:
	if (fd >= 0 && m == NULL)
		close(fd);
	tier_remove_block(t, addr, true);
	return rc == -ENOSPC || rc == -EDQUOT ? -ENOSPC : rc;
}

static void
handle_unlink(struct brick *b, struct brick_handle *h)
{
	struct brick_block *blk = h->blk;

	brick_htab_del(&b->keys, h->key);
	TAILQ_REMOVE(&blk->handles, h, blk_link);
	TAILQ_REMOVE(&h->sess->handles, h, sess_link);
	blk->nhandles--;
	if (h->flags & NVL_BRICK_MAP_RW)
		blk->nrw--;
	b->st.unmaps++;
	free(h);
}

void
brick_handle_revoke(struct brick *b, struct brick_handle *h)
{
	struct brick_block *blk = h->blk;

	handle_unlink(b, h);
	if (blk->nhandles > 0)
		return;
	blk->exclusive = false;
	b->nmapped--;
	/* Stale local mappings or TCP transfers still aimed at this inode must
	 * not reach the block from now on. */
	if (blk->mem->exported || blk->mem->refs > 1)
		blk_swap_inode(b, blk);
	TAILQ_INSERT_TAIL(&b->lru, blk, lru);
}

int
brick_free(struct brick *b, uint64_t addr)
{
	struct brick_block *blk;
	int rc;

	if (addr & (BRICK_BLOCK_SIZE - 1))
		return -EINVAL;
	blk = brick_htab_get(&b->blocks, addr);
	if (blk == NULL)
		return -ENOENT;
	if (blk->nhandles) {
		struct brick_handle *h;

		while ((h = TAILQ_FIRST(&blk->handles)) != NULL)
			handle_unlink(b, h);
		blk->exclusive = false;
		b->nmapped--;
	} else if (blk->tier == BRICK_TIER_FAST) {
		TAILQ_REMOVE(&b->lru, blk, lru);
	}
	if (blk->tier == BRICK_TIER_FAST && b->pool && !blk->mem->exported &&
	    blk->mem->refs == 1) {
		/* never left the daemon: back to the free store, zeroed by the pool */
		uint64_t id = brick_pool_new_id(b->pool);
		char name[40], spare[40];
		int fd;

		blk_name(name, sizeof(name), "blk-", addr);
		brick_pool_name(id, spare, sizeof(spare));
		fd = dup(blk->mem->fd);
		if (fd >= 0 && renameat(b->fast.dfd, name, b->fast.dfd, spare) == 0) {
			rc = tier_durable(&b->fast) && fsync(b->fast.dfd) < 0 ? -errno : 0;
			brick_pool_give(b->pool, fd, id);
			b->nfast--;
			goto done;
		}
		if (fd >= 0)
			close(fd);
	}
	if (blk->tier == BRICK_TIER_FAST) {
		/* the name goes first: a crash before the unlink is durable must leave
		 * the block intact, never a zeroed block in the map */
		rc = tier_remove_block(&b->fast, addr, true);
		/* cut off local mappings: they fault from now on */
		if (blk->mem->exported && ftruncate(blk->mem->fd, 0) < 0)
			NVL_WARNLOG("brick %s: truncating freed 0x%" PRIx64 ": %s", b->name, addr,
				    strerror(errno));
		b->nfast--;
	} else if (b->sf.fd >= 0) {
		rc = brick_sf_rec_write(&b->sf, blk->slot, addr, false);
		if (rc == 0)
			rc = brick_sf_sync(&b->sf);
		if (rc == 0) {
			b->sf.slot_blk[blk->slot] = NULL;
			b->sf.free[b->sf.nfree++] = (uint32_t)blk->slot;
		} else {
			/* leave the block in place: its record may still be valid */
			NVL_ERRLOG("brick %s: free of 0x%" PRIx64 " in slot %" PRIu64 ": %s",
				   b->name, addr, blk->slot, strerror(-rc));
			return -EIO;
		}
		b->nslow--;
	} else {
		rc = tier_remove_block(&b->slow, addr, true);
		b->nslow--;
	}
done:
	brick_htab_del(&b->blocks, addr);
	blk_destroy(blk);
	b->st.frees++;
	if (rc < 0)
		NVL_ERRLOG("brick %s: free of 0x%" PRIx64 ": %s", b->name, addr, strerror(-rc));
	return rc < 0 ? -EIO : 0;
}

int
brick_map(struct brick *b, struct brick_session *s, uint64_t addr, uint32_t flags,
	  struct brick_handle **out)
{
	struct brick_block *blk;
	struct brick_handle *h;
	uint32_t acc = flags & (NVL_BRICK_MAP_RO | NVL_BRICK_MAP_RW);
	int rc;

	if ((addr & (BRICK_BLOCK_SIZE - 1)) || (flags & ~NVL_BRICK_MAP_VALID) ||
	    (acc != NVL_BRICK_MAP_RO && acc != NVL_BRICK_MAP_RW) ||
	    (flags & NVL_BRICK_MAP_SHARED && flags & NVL_BRICK_MAP_EXCL))
		return -EINVAL;
	if (!(flags & NVL_BRICK_MAP_EXCL))
		flags |= NVL_BRICK_MAP_SHARED;
	blk = brick_htab_get(&b->blocks, addr);
	if (blk == NULL)
		return -ENOENT;
	if (blk->exclusive || ((flags & NVL_BRICK_MAP_EXCL) && blk->nhandles))
		return -EBUSY;
	if (blk->tier == BRICK_TIER_SLOW) {
		rc = blk_fetch(b, blk);
		if (rc < 0)
			return rc;
	} else if (blk->nhandles == 0) {
		TAILQ_REMOVE(&b->lru, blk, lru);
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL || new_key(b, &h->key) < 0 || brick_htab_put(&b->keys, h->key, h) < 0) {
		free(h);
		if (blk->nhandles == 0)
			TAILQ_INSERT_TAIL(&b->lru, blk, lru);
		return -ENOMEM;
	}
	h->flags = flags;
	h->blk = blk;
	h->sess = s;
	TAILQ_INSERT_TAIL(&blk->handles, h, blk_link);
	TAILQ_INSERT_TAIL(&s->handles, h, sess_link);
	if (blk->nhandles++ == 0)
		b->nmapped++;
	if (flags & NVL_BRICK_MAP_RW) {
		blk->nrw++;
		blk->maybe_dirty = true;
	}
	blk->exclusive = (flags & NVL_BRICK_MAP_EXCL) != 0;
	b->st.maps++;
	*out = h;
	return 0;
}

int
brick_unmap(struct brick *b, struct brick_session *s, uint64_t addr)
{
	struct brick_block *blk;
	struct brick_handle *h, *tmp;
	bool found = false;

	if (addr & (BRICK_BLOCK_SIZE - 1))
		return -EINVAL;
	blk = brick_htab_get(&b->blocks, addr);
	if (blk == NULL)
		return -ENOENT;
	TAILQ_FOREACH_SAFE(h, &s->handles, sess_link, tmp) {
		if (h->blk == blk) {
			brick_handle_revoke(b, h);
			found = true;
		}
	}
	return found ? 0 : -ENXIO;
}

struct brick_handle *
brick_key_lookup(struct brick *b, uint64_t key)
{
	return key ? brick_htab_get(&b->keys, key) : NULL;
}

int
brick_block_restore(struct brick *b, struct brick_block *blk)
{
	struct stat st;

	if (blk->tier != BRICK_TIER_FAST || fstat(blk->mem->fd, &st) < 0)
		return blk->tier != BRICK_TIER_FAST ? 0 : -errno;
	(void)b;
	if ((uint64_t)st.st_size >= BRICK_BLOCK_SIZE)
		return 0;
	if (ftruncate(blk->mem->fd, BRICK_BLOCK_SIZE) < 0)
		return -errno;
	return 1;
}

int
brick_block_open_ro(struct brick *b, struct brick_block *blk)
{
	char name[40];
	int fd;

	blk_name(name, sizeof(name), "blk-", blk->addr);
	fd = openat(b->fast.dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

/* ---- list -------------------------------------------------------------- */

static int
blk_cmp(const void *a, const void *b)
{
	const struct brick_block *x = *(struct brick_block *const *)a;
	const struct brick_block *y = *(struct brick_block *const *)b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static uint32_t
blk_state(const struct brick_block *blk)
{
	if (blk->nhandles)
		return NVL_BRICK_EXT_MAPPED;
	return blk->tier == BRICK_TIER_FAST ? NVL_BRICK_EXT_FAST : NVL_BRICK_EXT_SLOW;
}

int
brick_list(struct brick *b, uint64_t start, struct nvl_brick_extent *ext, uint32_t max,
	   bool *more, uint64_t *next)
{
	struct brick_block **v, *blk;
	size_t n = 0, pos = 0, i;
	int cnt = 0;

	*more = false;
	*next = 0;
	if (b->blocks.count == 0 || max == 0)
		return 0;
	v = malloc(b->blocks.count * sizeof(*v));
	if (v == NULL)
		return -ENOMEM; /* never an empty list that is not empty */
	while ((blk = brick_htab_next(&b->blocks, &pos)) != NULL)
		if (blk->addr >= start)
			v[n++] = blk;
	qsort(v, n, sizeof(*v), blk_cmp);
	for (i = 0; i < n; i++) {
		uint32_t st = blk_state(v[i]);

		if (cnt > 0 && ext[cnt - 1].state == st &&
		    ext[cnt - 1].addr + ext[cnt - 1].length == v[i]->addr) {
			ext[cnt - 1].length += BRICK_BLOCK_SIZE;
			continue;
		}
		if ((uint32_t)cnt == max) {
			*more = true;
			*next = v[i]->addr;
			break;
		}
		ext[cnt].addr = v[i]->addr;
		ext[cnt].length = BRICK_BLOCK_SIZE;
		ext[cnt].state = st;
		ext[cnt].rsvd = 0;
		cnt++;
	}
	free(v);
	return cnt;
}

/* ---- flush ------------------------------------------------------------- */

struct flush_all;

struct flush_op {
	struct nvl_uring_op uop;
	struct brick *b;
	int fd;
	uint64_t len;
	brick_done_fn cb;
	void *arg;
	struct flush_all *parent;
};

struct flush_all {
	struct brick *b;
	unsigned pending;
	int rc;
	brick_done_fn cb;
	void *arg;
};

static void
flush_all_put(struct flush_all *fa, int rc)
{
	if (rc < 0 && fa->rc == 0)
		fa->rc = rc;
	if (--fa->pending > 0)
		return;
	fa->cb(fa->arg, fa->rc);
	brick_put(fa->b);
	free(fa);
}

static void
flush_op_done(struct flush_op *op, int rc)
{
	struct brick *b = op->b;

	close(op->fd);
	if (rc == 0) {
		b->st.flushes++;
		b->st.bytes_flushed += op->len;
	} else {
		NVL_ERRLOG_RL("brick %s: flush failed: %s", b->name, strerror(-rc));
		rc = -EIO;
	}
	if (op->parent)
		flush_all_put(op->parent, rc);
	else
		op->cb(op->arg, rc);
	free(op);
	brick_put(b);
}

static void
flush_uring_done(struct nvl_uring_op *uop, int res)
{
	flush_op_done(container_of(uop, struct flush_op, uop), res < 0 ? res : 0);
}

#if defined(__x86_64__)
static int g_clflush_kind = -1; /* 0 clflush, 1 clflushopt, 2 clwb */

static void
pmem_writeback(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(NVL_CACHE_LINE - 1);
	uintptr_t end = (uintptr_t)p + len;

	if (g_clflush_kind < 0) {
		unsigned eax, ebx = 0, ecx, edx;

		g_clflush_kind = 0;
		if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
			g_clflush_kind = (ebx & (1u << 24)) ? 2 : (ebx & (1u << 23)) ? 1 : 0;
	}
	for (; a < end; a += NVL_CACHE_LINE) {
		if (g_clflush_kind == 2)
			__asm__ volatile("clwb %0" : "+m"(*(volatile char *)a));
		else if (g_clflush_kind == 1)
			__asm__ volatile("clflushopt %0" : "+m"(*(volatile char *)a));
		else
			__asm__ volatile("clflush %0" : "+m"(*(volatile char *)a));
	}
	__asm__ volatile("sfence" ::: "memory");
}
#endif

/* Start the durability work for [off, off+len) of a block's storage. */
static void
flush_start(struct brick *b, struct brick_mem *m, uint64_t off, uint64_t len,
	    struct flush_op *op)
{
	struct io_uring_sqe *sqe;
	int rc = 0;

	op->b = b;
	op->len = len;
	brick_get(b);
	op->fd = dup(m->fd); /* the block may be unmapped/moved before the ring completes */
	if (op->fd < 0) {
		flush_op_done(op, -errno);
		return;
	}
	switch (b->fast.kind) {
	case NVL_BRICK_PERSIST_VOLATILE:
		/* tmpfs/hugetlbfs: the page cache is the medium; nothing to write back */
		break;
	case NVL_BRICK_PERSIST_PMEM:
#if defined(__x86_64__)
		{
			struct stat st;

			/* a client could have truncated the file: never fault here */
			if (fstat(m->fd, &st) < 0 || (uint64_t)st.st_size < off + len)
				rc = -EIO;
			else
				pmem_writeback(m->va + off, len);
		}
#else
		if (msync(m->va + NVL_ALIGN_DOWN(off, 4096),
			  NVL_ALIGN_UP(off + len, 4096) - NVL_ALIGN_DOWN(off, 4096), MS_SYNC) < 0)
			rc = -errno;
#endif
		break;
	case NVL_BRICK_PERSIST_FSYNC:
		sqe = nvl_uring_sqe();
		if (sqe != NULL) {
			/* fsync through the reactor's ring: vfs_fsync_range(off, len, datasync) */
			io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
			sqe->off = off;
			sqe->len = (uint32_t)len;
			op->uop.cb = flush_uring_done;
			nvl_uring_op_set(sqe, &op->uop);
			return;
		}
		/* no reactor (tests, tools): synchronously */
		if (sync_file_range(op->fd, (off64_t)off, (off64_t)len,
				    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
					    SYNC_FILE_RANGE_WAIT_AFTER) < 0 ||
		    fdatasync(op->fd) < 0)
			rc = -errno;
		break;
	}
	flush_op_done(op, rc);
}

void
brick_flush(struct brick *b, struct brick_handle *h, uint64_t off, uint64_t len,
	    brick_done_fn cb, void *arg)
{
	struct flush_op *op;

	if (len == 0)
		len = BRICK_BLOCK_SIZE - off;
	op = calloc(1, sizeof(*op));
	if (op == NULL) {
		cb(arg, -ENOMEM);
		return;
	}
	op->cb = cb;
	op->arg = arg;
	flush_start(b, h->blk->mem, off, len, op);
}

void
brick_flush_all(struct brick *b, brick_done_fn cb, void *arg)
{
	struct flush_all *fa = calloc(1, sizeof(*fa));
	struct brick_block *blk;
	size_t pos = 0;

	if (fa == NULL) {
		cb(arg, -ENOMEM);
		return;
	}
	fa->b = b;
	fa->cb = cb;
	fa->arg = arg;
	fa->pending = 1; /* ours, dropped at the end */
	brick_get(b);
	while ((blk = brick_htab_next(&b->blocks, &pos)) != NULL) {
		struct flush_op *op;

		if (blk->tier != BRICK_TIER_FAST || !blk->maybe_dirty)
			continue;
		if (blk->nrw == 0)
			blk->maybe_dirty = false;
		op = calloc(1, sizeof(*op));
		if (op == NULL) {
			if (fa->rc == 0)
				fa->rc = -ENOMEM;
			continue;
		}
		op->parent = fa;
		fa->pending++;
		flush_start(b, blk->mem, 0, BRICK_BLOCK_SIZE, op);
	}
	flush_all_put(fa, 0);
}

void
brick_info(struct brick *b, struct nvl_brick_info_wire *info)
{
	memset(info, 0, sizeof(*info));
	info->version = NVL_BRICK_VERSION_MAX;
	info->block_size = BRICK_BLOCK_SIZE;
	info->capacity_blocks = b->capacity;
	info->fast_blocks = b->fast_budget;
	info->allocated_blocks = b->blocks.count;
	info->mapped_blocks = b->nmapped;
	info->fast_tier_blocks = b->nfast;
	info->slow_tier_blocks = b->nslow;
	info->persistence = b->fast.kind;
	if (b->fast.kind == NVL_BRICK_PERSIST_VOLATILE)
		info->flags |= NVL_BRICK_INFO_VOLATILE;
}

/* ---- sessions ---------------------------------------------------------- */

void
brick_session_init(struct brick_session *s, struct brick *b)
{
	s->b = b;
	TAILQ_INIT(&s->handles);
	TAILQ_INSERT_TAIL(&b->sessions, s, link);
}

void
brick_session_fini(struct brick_session *s)
{
	struct brick_handle *h;

	if (s->b == NULL)
		return;
	while ((h = TAILQ_FIRST(&s->handles)) != NULL)
		brick_handle_revoke(s->b, h);
	TAILQ_REMOVE(&s->b->sessions, s, link);
	s->b = NULL;
}

/* ---- create / recover / close ------------------------------------------ */

static bool
parse_blk_name(const char *n, uint64_t *addr)
{
	uint64_t v = 0;

	if (strncmp(n, "blk-", 4) != 0 || strlen(n) != 20)
		return false;
	for (n += 4; *n; n++) {
		int d = (*n >= '0' && *n <= '9') ? *n - '0' : (*n >= 'a' && *n <= 'f') ? *n - 'a' + 10
											  : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	if (v & (BRICK_BLOCK_SIZE - 1))
		return false;
	*addr = v;
	return true;
}

static int
recover_tier(struct brick *b, enum brick_tier_id tid)
{
	struct brick_tier *t = tid == BRICK_TIER_FAST ? &b->fast : &b->slow;
	struct dirent *de;
	DIR *d;
	int dfd, rc = 0;

	dfd = dup(t->dfd);
	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return -errno;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		struct brick_mem *m = NULL;
		struct stat st;
		uint64_t addr;
		int fd;

		if (strncmp(de->d_name, ".tmp-", 5) == 0 || strncmp(de->d_name, ".spare-", 7) == 0) {
			/* a block that was never published: not part of the map */
			unlinkat(t->dfd, de->d_name, 0);
			continue;
		}
		if (!parse_blk_name(de->d_name, &addr))
			continue;
		if (brick_htab_get(&b->blocks, addr)) {
			/* in both tiers: an interrupted move; the fast copy is never older */
			NVL_NOTICELOG("brick %s: 0x%" PRIx64 " found in both tiers, keeping the fast copy",
				      b->name, addr);
			unlinkat(t->dfd, de->d_name, 0);
			continue;
		}
		fd = openat(t->dfd, de->d_name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			rc = fd < 0 ? -errno : -EINVAL;
			NVL_ERRLOG("brick %s: %s/%s: %s", b->name, t->path, de->d_name,
				   strerror(-rc));
			if (fd >= 0)
				close(fd);
			break;
		}
		if (st.st_size != (off_t)BRICK_BLOCK_SIZE) {
			/* only a local client holding a read-write fd can do this */
			NVL_WARNLOG("brick %s: %s has %lld bytes, restoring 2 MiB", b->name,
				    de->d_name, (long long)st.st_size);
			if (ftruncate(fd, BRICK_BLOCK_SIZE) < 0) {
				rc = -errno;
				close(fd);
				break;
			}
		}
		if (tid == BRICK_TIER_FAST) {
			rc = mem_create(b, fd, &m);
			if (rc < 0) {
				close(fd);
				break;
			}
		} else {
			close(fd);
		}
		if (blk_new(b, addr, tid, m) == NULL) {
			brick_mem_put(m);
			rc = -ENOMEM;
			break;
		}
	}
	closedir(d);
	return rc;
}

/* What recovery does with one valid slot record (after the fast tier is known). */
enum sf_decision {
	SF_TAKE,          /* a slow block lives here */
	SF_DROP,          /* stale: invalidate and free this slot */
	SF_REPLACE,       /* newer duplicate: this slot wins, free the other one */
};

static enum sf_decision
sf_decide(const struct brick_block *have, uint64_t have_gen, uint64_t gen)
{
	if (have == NULL)
		return SF_TAKE;
	if (have->tier == BRICK_TIER_FAST)
		return SF_DROP; /* interrupted move: the fast copy is never older */
	return gen > have_gen ? SF_REPLACE : SF_DROP;
}

static int
recover_slot_file(struct brick *b)
{
	struct brick_slotfile *sf = &b->sf;
	uint64_t *gen, dropped = 0;
	int rc = 0;

	gen = calloc(sf->nslots, sizeof(*gen));
	if (gen == NULL)
		return -ENOMEM;
	for (uint64_t slot = 0; slot < sf->nslots; slot++) {
		struct brick_block *blk;
		struct brick_sf_rec r;
		uint64_t drop;

		rc = brick_sf_rec_read(sf, slot, &r);
		if (rc < 0)
			break;
		if (r.gen >= sf->next_gen)
			sf->next_gen = r.gen + 1;
		if (!r.valid)
			continue; /* free, torn, or of an earlier format */
		gen[slot] = r.gen;
		blk = brick_htab_get(&b->blocks, r.addr);
		switch (sf_decide(blk, blk ? gen[blk->slot] : 0, r.gen)) {
		case SF_TAKE:
			blk = blk_new(b, r.addr, BRICK_TIER_SLOW, NULL);
			if (blk == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			blk->slot = slot;
			sf->slot_blk[slot] = blk;
			continue;
		case SF_REPLACE:
			drop = blk->slot;
			sf->slot_blk[drop] = NULL;
			blk->slot = slot;
			sf->slot_blk[slot] = blk;
			break;
		case SF_DROP:
		default:
			drop = slot;
			break;
		}
		NVL_NOTICELOG("brick %s: 0x%" PRIx64 " also in slot %" PRIu64 " of %s: %s", b->name,
			      r.addr, drop, sf->path,
			      blk->tier == BRICK_TIER_FAST ? "keeping the fast copy"
							   : "keeping the newer slot");
		rc = brick_sf_rec_write(sf, drop, 0, false);
		if (rc < 0)
			goto out;
		dropped++;
	}
	if (rc == 0 && dropped)
		rc = brick_sf_sync(sf);
	/* free slots, lowest on top of the stack */
	for (uint64_t slot = sf->nslots; rc == 0 && slot-- > 0;)
		if (sf->slot_blk[slot] == NULL)
			sf->free[sf->nfree++] = (uint32_t)slot;
out:
	free(gen);
	return rc;
}

static int
brick_recover(struct brick *b)
{
	int rc;

	rc = recover_tier(b, BRICK_TIER_FAST);
	if (rc == 0 && b->slow.dfd >= 0)
		rc = recover_tier(b, BRICK_TIER_SLOW);
	if (rc == 0 && b->sf.fd >= 0)
		rc = recover_slot_file(b);
	if (rc < 0)
		return rc;
	if (b->blocks.count > b->capacity) {
		NVL_ERRLOG("brick %s: the directories hold %zu blocks, more than capacity %" PRIu64,
			   b->name, b->blocks.count, b->capacity);
		return -ENOSPC;
	}
	while (b->nfast > b->fast_budget) {
		rc = blk_evict(b, TAILQ_FIRST(&b->lru));
		if (rc < 0)
			return rc;
	}
	if (b->blocks.count)
		NVL_NOTICELOG("brick %s: recovered %zu blocks (%" PRIu64 " fast, %" PRIu64 " slow)",
			      b->name, b->blocks.count, b->nfast, b->nslow);
	return 0;
}

static void
brick_free_all(struct brick *b)
{
	struct brick_block *blk;
	struct brick_handle *h;
	size_t pos = 0;

	brick_pool_stop(b->pool); /* deletes the spares */
	while ((h = brick_htab_next(&b->keys, &pos)) != NULL)
		free(h);
	pos = 0;
	while ((blk = brick_htab_next(&b->blocks, &pos)) != NULL)
		blk_destroy(blk);
	brick_htab_fini(&b->keys);
	brick_htab_fini(&b->blocks);
	tier_close(&b->fast);
	tier_close(&b->slow);
	brick_sf_close(&b->sf);
	free(b);
}

static bool
valid_name(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > NVL_BRICK_NAME_MAX)
		return false;
	for (const char *p = n; *p; p++)
		if (*p < 0x21 || *p > 0x7e || *p == '/')
			return false;
	return true;
}

int
brick_create(const struct brick_opts *o, struct brick **out)
{
	struct stat s1, s2;
	struct brick *b;
	int rc;

	if (o->name == NULL || !valid_name(o->name) || o->fast_dir == NULL ||
	    o->capacity_blocks == 0 || o->capacity_blocks > BRICK_MAX_BLOCKS)
		return -EINVAL;
	if (o->fast_blocks > o->capacity_blocks)
		return -EINVAL;
	if (o->slow_dir && o->slow_file)
		return -EINVAL;
	if (o->slow_dir == NULL && o->slow_file == NULL && o->fast_blocks &&
	    o->fast_blocks < o->capacity_blocks)
		return -EINVAL; /* nowhere to put the rest */
	if (brick_find(o->name))
		return -EEXIST;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	nvl_strlcpy(b->name, o->name, sizeof(b->name));
	b->capacity = o->capacity_blocks;
	b->fast_budget = o->fast_blocks ? o->fast_blocks : o->capacity_blocks;
	b->fast.dfd = b->fast.lock_fd = b->slow.dfd = b->slow.lock_fd = -1;
	b->sf.fd = -1;
	brick_htab_init(&b->blocks);
	brick_htab_init(&b->keys);
	TAILQ_INIT(&b->lru);
	TAILQ_INIT(&b->sessions);
	b->refs = 1;
	rc = tier_open(&b->fast, o->fast_dir, "fast");
	if (rc < 0)
		goto err;
	if (o->slow_dir) {
		rc = tier_open(&b->slow, o->slow_dir, "slow");
		if (rc < 0)
			goto err;
		if (fstat(b->fast.dfd, &s1) == 0 && fstat(b->slow.dfd, &s2) == 0 &&
		    s1.st_dev == s2.st_dev && s1.st_ino == s2.st_ino) {
			rc = -EINVAL;
			goto err;
		}
	}
	if (o->slow_file) {
		rc = brick_sf_open(&b->sf, o->slow_file);
		if (rc < 0)
			goto err;
		/* every block beyond the budget needs a slot, plus one for a swap
		 * (a fetch evicts before its own slot is free) */
		if (b->sf.nslots < b->capacity - b->fast_budget + 1) {
			NVL_ERRLOG("brick %s: %s has %" PRIu64 " slots, capacity_blocks - fast_blocks "
				   "+ 1 = %" PRIu64 " needed",
				   o->name, o->slow_file, b->sf.nslots,
				   b->capacity - b->fast_budget + 1);
			rc = -ERANGE;
			goto err;
		}
	}
	if (b->fast.kind == NVL_BRICK_PERSIST_VOLATILE && !b->fast.huge)
		NVL_WARNLOG("brick %s: %s is tmpfs with 4 KiB pages: every block costs 512 page "
			    "faults to allocate, map and revoke; mount it with huge=always (or use "
			    "hugetlbfs) for one 2 MiB page per block", o->name, b->fast.path);
	rc = brick_recover(b);
	if (rc < 0)
		goto err;
	rc = brick_pool_start(b->fast.dfd, tier_durable(&b->fast),
			      (unsigned)NVL_MIN(b->fast_budget, BRICK_POOL_SPARES), &b->pool);
	if (rc < 0)
		goto err;
	TAILQ_INSERT_TAIL(&g_bricks, b, link);
	NVL_NOTICELOG("brick %s: fast tier %s (%s, %s), slow tier %s, %" PRIu64 " blocks, "
		      "%" PRIu64 " in the fast tier at most",
		      b->name, b->fast.path, b->fast.fs,
		      b->fast.kind == NVL_BRICK_PERSIST_VOLATILE ? "volatile" : "durable",
		      b->slow.path ? b->slow.path : b->sf.path ? b->sf.path : "none", b->capacity,
		      b->fast_budget);
	*out = b;
	return 0;
err:
	brick_free_all(b);
	return rc;
}

void
brick_get(struct brick *b)
{
	b->refs++;
}

void
brick_put(struct brick *b)
{
	if (--b->refs == 0)
		brick_free_all(b);
}

void
brick_events_subscribe(struct brick_events *ev)
{
	TAILQ_INSERT_TAIL(&g_subscribers, ev, link);
}

void
brick_events_unsubscribe(struct brick_events *ev)
{
	TAILQ_REMOVE(&g_subscribers, ev, link);
}

void
brick_close(struct brick *b)
{
	struct brick_events *ev, *tmp;
	struct brick_session *s;

	if (b->deleted)
		return;
	b->deleted = true;
	TAILQ_REMOVE(&g_bricks, b, link);
	while ((s = TAILQ_FIRST(&b->sessions)) != NULL) {
		if (s->kill)
			s->kill(s); /* closes the connection: calls brick_session_fini() */
		if (TAILQ_FIRST(&b->sessions) == s)
			brick_session_fini(s);
	}
	TAILQ_FOREACH_SAFE(ev, &g_subscribers, link, tmp)
		ev->closing(b, ev->arg);
	brick_put(b);
}

int
brick_purge_files(const struct brick_opts *o)
{
	const char *dirs[2] = { o->fast_dir, o->slow_dir };
	int rc = 0;

	if (o->slow_file)
		rc = brick_sf_purge(o->slow_file);

	for (int i = 0; i < 2; i++) {
		struct dirent *de;
		DIR *d;

		if (dirs[i] == NULL)
			continue;
		d = opendir(dirs[i]);
		if (d == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			uint64_t addr;

			if (parse_blk_name(de->d_name, &addr) ||
			    strncmp(de->d_name, ".tmp-", 5) == 0 ||
			    strncmp(de->d_name, ".spare-", 7) == 0 || strcmp(de->d_name, MARKER) == 0)
				if (unlinkat(dirfd(d), de->d_name, 0) < 0 && rc == 0)
					rc = -errno;
		}
		closedir(d);
	}
	return rc;
}
