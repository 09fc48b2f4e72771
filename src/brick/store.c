/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The brick store: the block map, allocation, handles and their keys,
 * sessions, listing, and a brick's life (create, get/put, close, the events
 * those above hear about). The tiers, moves between them and flush are in
 * store_tier.c; recovery of the block map from the tiers, and purge, in
 * store_recover.c (brick_internal.h describes the objects and the on-disk
 * layout; docs/brick.md the contracts). Reactor 0 only, no locks.
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

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(brick)

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

/* ---- block memory ------------------------------------------------------ */

int
brick_mem_create(struct brick *b, int fd, struct brick_mem **out)
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

/* ---- blocks ------------------------------------------------------------ */

static void
blk_destroy(struct brick_block *blk)
{
	brick_mem_put(blk->mem);
	free(blk);
}

struct brick_block *
brick_blk_new(struct brick *b, uint64_t addr, enum brick_tier_id tier, struct brick_mem *mem)
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

/* Allocate the block's storage (the block map's part of brick_alloc). */
static int
brick_alloc_storage(struct brick *b, uint64_t addr)
{
	struct brick_mem *m = NULL;
	enum brick_tier_id tier;
	struct brick_tier *t;
	int fd = -1, rc;

	tier = brick_fast_make_room(b) == 0 ? BRICK_TIER_FAST : BRICK_TIER_SLOW;
	if (tier == BRICK_TIER_SLOW && !brick_has_slow(b))
		return -ENOMEM;
	if (tier == BRICK_TIER_SLOW && b->sf.fd >= 0)
		return brick_sf_alloc_block(b, addr);
	t = tier == BRICK_TIER_FAST ? &b->fast : &b->slow;
	rc = brick_tier_make_block(t, tier == BRICK_TIER_FAST ? b->pool : NULL, addr, -1, NULL, &fd);
	if (rc < 0)
		goto err_file;
	if (tier == BRICK_TIER_FAST) {
		rc = brick_mem_create(b, fd, &m);
		if (rc < 0)
			goto err_file;
	} else {
		close(fd);
	}
	if (brick_blk_new(b, addr, tier, m) == NULL) {
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
	brick_tier_remove_block(t, addr, true);
	return rc == -ENOSPC || rc == -EDQUOT ? -ENOSPC : rc;
}

int
brick_alloc(struct brick *b, uint64_t addr, const struct brick_principal *p, uint8_t *key_out)
{
	struct brick_block *blk;
	struct brick_acl acl;
	int rc;

	if (addr & (BRICK_BLOCK_SIZE - 1))
		return -EINVAL;
	if (brick_htab_get(&b->blocks, addr))
		return -EEXIST;
	if (b->blocks.count >= b->capacity)
		return -ENOSPC;
	rc = brick_acl_init(&acl, p);
	if (rc < 0)
		return rc;
	/* the owner record first: a block never exists without one */
	rc = brick_acl_store(b, addr, &acl);
	if (rc < 0)
		return rc == -ENOSPC || rc == -EDQUOT ? -ENOSPC : -EIO;
	rc = brick_alloc_storage(b, addr);
	blk = rc == 0 ? brick_htab_get(&b->blocks, addr) : NULL;
	if (blk == NULL) {
		brick_acl_remove(b, addr);
		return rc < 0 ? rc : -EIO;
	}
	blk->acl = acl;
	blk->acl_ok = true;
	if (key_out)
		memcpy(key_out, acl.key, NVL_BRICK_KEY_SIZE);
	return 0;
}

int
brick_block_access(struct brick *b, uint64_t addr, const struct brick_principal *p,
		   const uint8_t *key, struct brick_block **out)
{
	struct brick_block *blk;
	int rc;

	if (addr & (BRICK_BLOCK_SIZE - 1))
		return -EINVAL;
	/* ENOENT tells anyone that the block does not exist: ALLOC's EEXIST
	 * tells them that it does, so there is nothing to hide */
	blk = brick_htab_get(&b->blocks, addr);
	if (blk == NULL)
		return -ENOENT;
	rc = brick_acl_check(b, blk, p, key);
	if (rc < 0)
		return rc;
	*out = blk;
	return 0;
}

static void
handle_unlink(struct brick *b, struct brick_handle *h)
{
	struct brick_block *blk = h->blk;

	/* the transport's export (an RDMA memory region) goes first: its rkey
	 * stops working before the unmap or free is answered */
	if (h->unexport)
		h->unexport(h);
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
		brick_blk_swap_inode(b, blk);
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

		brick_blk_name(name, sizeof(name), "blk-", addr);
		brick_pool_name(id, spare, sizeof(spare));
		fd = dup(blk->mem->fd);
		if (fd >= 0 && renameat(b->fast.dfd, name, b->fast.dfd, spare) == 0) {
			rc = brick_tier_durable(&b->fast) && fsync(b->fast.dfd) < 0 ? -errno : 0;
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
		rc = brick_tier_remove_block(&b->fast, addr, true);
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
		rc = brick_tier_remove_block(&b->slow, addr, true);
		b->nslow--;
	}
done:
	brick_acl_remove(b, addr);
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
		rc = brick_blk_fetch(b, blk);
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

	brick_blk_name(name, sizeof(name), "blk-", blk->addr);
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

uint32_t
brick_blk_state(const struct brick_block *blk)
{
	if (blk->nhandles)
		return NVL_BRICK_EXT_MAPPED;
	return blk->tier == BRICK_TIER_FAST ? NVL_BRICK_EXT_FAST : NVL_BRICK_EXT_SLOW;
}

int
brick_list(struct brick *b, uint64_t start, struct nvl_brick_extent *ext, uint32_t max,
	   bool *more, uint64_t *next)
{
	return brick_list_owned(b, NULL, start, ext, max, more, next);
}

int
brick_list_owned(struct brick *b, const struct brick_principal *p, uint64_t start,
		 struct nvl_brick_extent *ext, uint32_t max, bool *more, uint64_t *next)
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
		if (blk->addr >= start && brick_acl_owner(&blk->acl, p))
			v[n++] = blk;
	qsort(v, n, sizeof(*v), blk_cmp);
	for (i = 0; i < n; i++) {
		uint32_t st = brick_blk_state(v[i]);

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
	brick_tier_close(&b->fast);
	brick_tier_close(&b->slow);
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
	rc = brick_tier_open(&b->fast, o->fast_dir, "fast");
	if (rc < 0)
		goto err_free_all;
	if (o->slow_dir) {
		rc = brick_tier_open(&b->slow, o->slow_dir, "slow");
		if (rc < 0)
			goto err_free_all;
		if (fstat(b->fast.dfd, &s1) == 0 && fstat(b->slow.dfd, &s2) == 0 &&
		    s1.st_dev == s2.st_dev && s1.st_ino == s2.st_ino) {
			rc = -EINVAL;
			goto err_free_all;
		}
	}
	if (o->slow_file) {
		rc = brick_sf_open(&b->sf, o->slow_file);
		if (rc < 0)
			goto err_free_all;
		/* every block beyond the budget needs a slot, plus one for a swap
		 * (a fetch evicts before its own slot is free) */
		if (b->sf.nslots < b->capacity - b->fast_budget + 1) {
			NVL_ERRLOG("brick %s: %s has %" PRIu64 " slots, capacity_blocks - fast_blocks "
				   "+ 1 = %" PRIu64 " needed",
				   o->name, o->slow_file, b->sf.nslots,
				   b->capacity - b->fast_budget + 1);
			rc = -ERANGE;
			goto err_free_all;
		}
	}
	if (b->fast.kind == NVL_BRICK_PERSIST_VOLATILE && !b->fast.huge)
		NVL_WARNLOG("brick %s: %s is tmpfs with 4 KiB pages: every block costs 512 page "
			    "faults to allocate, map and revoke; mount it with huge=always (or use "
			    "hugetlbfs) for one 2 MiB page per block", o->name, b->fast.path);
	rc = brick_recover(b);
	if (rc < 0)
		goto err_free_all;
	rc = brick_pool_start(b->fast.dfd, brick_tier_durable(&b->fast),
			      (unsigned)NVL_MIN(b->fast_budget, BRICK_POOL_SPARES), &b->pool);
	if (rc < 0)
		goto err_free_all;
	TAILQ_INSERT_TAIL(&g_bricks, b, link);
	NVL_NOTICELOG("brick %s: fast tier %s (%s, %s), slow tier %s, %" PRIu64 " blocks, "
		      "%" PRIu64 " in the fast tier at most",
		      b->name, b->fast.path, b->fast.fs,
		      b->fast.kind == NVL_BRICK_PERSIST_VOLATILE ? "volatile" : "durable",
		      b->slow.path ? b->slow.path : b->sf.path ? b->sf.path : "none", b->capacity,
		      b->fast_budget);
	*out = b;
	return 0;
err_free_all:
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
