/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The brick store's tiers (store.c has the ordering rules that keep the
 * directory, or the slot file, a crash-consistent block map): tier
 * directories (kind, file system, lock) and their block files, eviction of
 * unmapped blocks to the slow tier (a directory or a slot file) and fetching
 * them back, moving a block to a fresh inode when local mmaps are revoked,
 * and flush (fdatasync, io_uring, or CPU cache write-back on pmem).
 * Reactor 0 only, no locks.
 */
#include "brick/brick_internal.h"
#include "reactor/reactor.h"
#include "util/log.h"
#include "util/util.h"

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

NVL_LOG_DECLARE_COMPONENT(brick);

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif
#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

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
int
brick_tier_make_block(struct brick_tier *t, struct brick_pool *pool, uint64_t addr, int src_fd,
		const uint8_t *src_buf, int *out_fd)
{
	char tmp[40], name[40];
	uint64_t id;
	int fd, rc;

	*out_fd = -1;
	brick_blk_name(name, sizeof(name), "blk-", addr);
	if (brick_pool_take(pool, &fd, &id) == 0) {
		brick_pool_name(id, tmp, sizeof(tmp)); /* zeroed, allocated, synced */
	} else {
		brick_blk_name(tmp, sizeof(tmp), ".tmp-", addr);
		unlinkat(t->dfd, tmp, 0);
		fd = openat(t->dfd, tmp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return -errno;
		if (fallocate(fd, 0, 0, BRICK_BLOCK_SIZE) < 0) {
			if (errno != EOPNOTSUPP || ftruncate(fd, BRICK_BLOCK_SIZE) < 0) {
				rc = -errno;
				goto err_close_unlink;
			}
		}
	}
	if (src_fd >= 0) {
		rc = copy_block(src_fd, fd);
		if (rc < 0)
			goto err_close_unlink;
	}
	if (src_buf) {
		rc = write_block(fd, src_buf);
		if (rc < 0)
			goto err_close_unlink;
	}
	/* a fresh file's size and extents, or copied data, must be durable before
	 * its name; a spare from the pool was synced by the pool thread */
	if (brick_tier_durable(t) && (src_fd >= 0 || src_buf || strncmp(tmp, ".spare-", 7) != 0) &&
	    fdatasync(fd) < 0) {
		rc = -errno;
		goto err_close_unlink;
	}
	if (renameat(t->dfd, tmp, t->dfd, name) < 0) {
		rc = -errno;
		goto err_close_unlink;
	}
	if (brick_tier_durable(t) && fsync(t->dfd) < 0) {
		rc = -errno;
		NVL_ERRLOG("%s: fsync of the directory failed: %s", t->path, strerror(-rc));
		*out_fd = fd;
		return rc; /* the file exists under its name: caller must account for it */
	}
	*out_fd = fd;
	return 0;
err_close_unlink:
	close(fd);
	unlinkat(t->dfd, tmp, 0);
	return rc;
}

int
brick_tier_remove_block(struct brick_tier *t, uint64_t addr, bool sync)
{
	char name[40];

	brick_blk_name(name, sizeof(name), "blk-", addr);
	if (unlinkat(t->dfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	if (sync && brick_tier_durable(t) && fsync(t->dfd) < 0)
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

int
brick_tier_open(struct brick_tier *t, const char *path, const char *role)
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
	t->lock_fd = openat(t->dfd, BRICK_MARKER, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
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

void
brick_tier_close(struct brick_tier *t)
{
	if (t->lock_fd >= 0)
		close(t->lock_fd);
	if (t->dfd >= 0)
		close(t->dfd);
	free(t->path);
	t->path = NULL;
	t->dfd = t->lock_fd = -1;
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
	rc = brick_tier_make_block(&b->slow, NULL, blk->addr, blk->mem->fd, NULL, &sfd);
	if (rc < 0 && sfd < 0)
		return rc;
	close(sfd);
	if (rc < 0)
		brick_tier_remove_block(&b->slow, blk->addr, false);
	return rc;
}

/* Move an unmapped fast block to the slow tier. */
int
brick_blk_evict(struct brick *b, struct brick_block *blk)
{
	int rc;

	if (blk->tier != BRICK_TIER_FAST || blk->nhandles || !brick_has_slow(b))
		return -EINVAL;
	rc = evict_copy(b, blk);
	if (rc < 0)
		return rc;
	/* No fsync needed here: if the unlink is lost, recovery finds the block
	 * in both tiers and keeps the (identical) fast copy. */
	rc = brick_tier_remove_block(&b->fast, blk->addr, false);
	if (rc < 0) {
		NVL_ERRLOG("brick %s: cannot remove fast copy of 0x%" PRIx64 ": %s", b->name,
			   blk->addr, strerror(-rc));
		if (b->sf.fd >= 0)
			sf_release(b, blk->slot);
		else
			brick_tier_remove_block(&b->slow, blk->addr, true);
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
int
brick_fast_make_room(struct brick *b)
{
	while (b->nfast >= b->fast_budget) {
		struct brick_block *victim = TAILQ_FIRST(&b->lru);
		int rc;

		if (victim == NULL || !brick_has_slow(b))
			return -ENOMEM;
		rc = brick_blk_evict(b, victim);
		if (rc < 0)
			return rc == -EINVAL ? -ENOMEM : -EIO;
	}
	return 0;
}

/* Bring a slow block back to the fast tier. */
int
brick_blk_fetch(struct brick *b, struct brick_block *blk)
{
	struct brick_mem *m;
	char name[40];
	int sfd, fd = -1, rc;

	rc = brick_fast_make_room(b);
	if (rc < 0)
		return rc;
	if (b->sf.fd >= 0) {
		/* after brick_fast_make_room: an eviction reuses the bounce buffer */
		if (brick_sf_data_io(&b->sf, blk->slot, b->sf.buf, false) < 0)
			return -EIO;
		rc = brick_tier_make_block(&b->fast, b->pool, blk->addr, -1, b->sf.buf, &fd);
	} else {
		brick_blk_name(name, sizeof(name), "blk-", blk->addr);
		sfd = openat(b->slow.dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (sfd < 0)
			return -EIO;
		rc = brick_tier_make_block(&b->fast, b->pool, blk->addr, sfd, NULL, &fd);
		close(sfd);
	}
	if (rc < 0) {
		if (fd >= 0) {
			close(fd);
			brick_tier_remove_block(&b->fast, blk->addr, false);
		}
		return -EIO;
	}
	rc = brick_mem_create(b, fd, &m);
	if (rc < 0) {
		close(fd);
		brick_tier_remove_block(&b->fast, blk->addr, false);
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
			brick_tier_remove_block(&b->fast, blk->addr, true);
			return -EIO;
		}
		b->sf.slot_blk[blk->slot] = NULL;
		b->sf.free[b->sf.nfree++] = (uint32_t)blk->slot;
	} else {
		brick_tier_remove_block(&b->slow, blk->addr, false);
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
void
brick_blk_swap_inode(struct brick *b, struct brick_block *blk)
{
	struct brick_mem *old = blk->mem, *m;
	int fd = -1, rc;

	rc = brick_tier_make_block(&b->fast, b->pool, blk->addr, old->fd, NULL, &fd);
	if (rc < 0 && fd < 0) {
		NVL_ERRLOG("brick %s: revocation copy of 0x%" PRIx64 " failed (%s): a local "
			   "client that kept its mapping still reaches the block",
			   b->name, blk->addr, strerror(-rc));
		return;
	}
	rc = brick_mem_create(b, fd, &m);
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

/* A new zeroed block straight into the slow file (fast tier full of mapped blocks). */
int
brick_sf_alloc_block(struct brick *b, uint64_t addr)
{
	struct brick_block *blk;
	uint64_t slot;
	int rc;

	memset(b->sf.buf, 0, BRICK_BLOCK_SIZE); /* the slot holds an old block's bytes */
	rc = sf_put_block(b, addr, b->sf.buf, &slot);
	if (rc < 0)
		return rc == -ENOSPC || rc == -EDQUOT ? -ENOSPC : rc;
	blk = brick_blk_new(b, addr, BRICK_TIER_SLOW, NULL);
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
