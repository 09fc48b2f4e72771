/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The brick store's recovery (store.c has the ordering rules this relies
 * on): at open, the block map is rebuilt from the tier directories' blk-
 * files and the slot file's records (a block found in both tiers keeps the
 * fast copy; leftovers of interrupted creates and moves are removed), and
 * brick_purge_files() removes every block file of a brick (brick_delete
 * with purge). Reactor 0 only.
 */
#include "brick/brick_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

NVL_LOG_DECLARE_COMPONENT(brick);

/* ---- create / recover / close ------------------------------------------ */

bool
brick_parse_blk_name(const char *n, uint64_t *addr)
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
		if (!brick_parse_blk_name(de->d_name, &addr))
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
			rc = brick_mem_create(b, fd, &m);
			if (rc < 0) {
				close(fd);
				break;
			}
		} else {
			close(fd);
		}
		if (brick_blk_new(b, addr, tid, m) == NULL) {
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
			blk = brick_blk_new(b, r.addr, BRICK_TIER_SLOW, NULL);
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

int
brick_recover(struct brick *b)
{
	int rc;

	rc = recover_tier(b, BRICK_TIER_FAST);
	if (rc == 0 && b->slow.dfd >= 0)
		rc = recover_tier(b, BRICK_TIER_SLOW);
	if (rc == 0 && b->sf.fd >= 0)
		rc = recover_slot_file(b);
	if (rc == 0)
		rc = brick_acl_recover(b);
	if (rc < 0)
		return rc;
	if (b->blocks.count > b->capacity) {
		NVL_ERRLOG("brick %s: the directories hold %zu blocks, more than capacity %" PRIu64,
			   b->name, b->blocks.count, b->capacity);
		return -ENOSPC;
	}
	while (b->nfast > b->fast_budget) {
		rc = brick_blk_evict(b, TAILQ_FIRST(&b->lru));
		if (rc < 0)
			return rc;
	}
	if (b->blocks.count)
		NVL_NOTICELOG("brick %s: recovered %zu blocks (%" PRIu64 " fast, %" PRIu64 " slow)",
			      b->name, b->blocks.count, b->nfast, b->nslow);
	return 0;
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

			if (brick_parse_blk_name(de->d_name, &addr) ||
			    strncmp(de->d_name, "acl-", 4) == 0 ||
			    strncmp(de->d_name, ".tmp-", 5) == 0 ||
			    strncmp(de->d_name, ".spare-", 7) == 0 || strcmp(de->d_name, BRICK_MARKER) == 0)
				if (unlinkat(dirfd(d), de->d_name, 0) < 0 && rc == 0)
					rc = -errno;
		}
		closedir(d);
	}
	return rc;
}
