/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fast tier's free store: a few pre-allocated, pre-faulted, zeroed
 * 2 MiB files (".spare-ID") kept ready by a background thread, so that
 * allocating a block or moving one to a fresh inode (revocation) does not pay
 * for new memory on the reactor: on these VMs first touch costs 1-6 ms per
 * 2 MiB (MACHINE-NOTES.md). Freed blocks that never left the daemon (no fd
 * exported) come back here, are zeroed by the thread and reused.
 *
 * Threading: the pool thread creates, zeroes and fsyncs ".spare-*" files and
 * touches nothing else; reactor 0 takes ready spares (brick_pool_take) and
 * renames them to block names, and hands freed inodes back (brick_pool_give)
 * after renaming them to a spare name. The lists are guarded by one mutex;
 * file names never collide (spare ids come from one counter).
 * Spare files are not part of the block map: recovery deletes them.
 */
#include "brick/brick_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define POOL_MAX 16

struct pool_file {
	int fd;
	uint64_t id;
};

struct brick_pool {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int dfd;
	bool durable;
	bool stop;
	unsigned target;
	uint64_t next_id;
	struct pool_file ready[POOL_MAX];
	unsigned nready;
	struct pool_file dirty[POOL_MAX];
	unsigned ndirty;
	uint64_t made, recycled;
};

void
brick_pool_name(uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, ".spare-%016" PRIx64, id);
}

/* Zero a recycled file in place, keeping its memory (tmpfs) or its extents. */
static int
pool_scrub(struct brick_pool *p, int fd)
{
	uint8_t *m;

	if (p->durable) {
		/* file systems: punch + re-allocate is metadata only, and reads as zeroes */
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
			      BRICK_BLOCK_SIZE) < 0 ||
		    fallocate(fd, 0, 0, BRICK_BLOCK_SIZE) < 0 || fdatasync(fd) < 0)
			return -errno;
		return 0;
	}
	m = mmap(NULL, BRICK_BLOCK_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	memset(m, 0, BRICK_BLOCK_SIZE);
	munmap(m, BRICK_BLOCK_SIZE);
	return 0;
}

static int
pool_make(struct brick_pool *p, uint64_t id)
{
	char name[40];
	int fd;

	brick_pool_name(id, name, sizeof(name));
	fd = openat(p->dfd, name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	/* fallocate on tmpfs/hugetlbfs allocates (and zeroes) the pages: the first touch */
	if ((fallocate(fd, 0, 0, BRICK_BLOCK_SIZE) < 0 &&
	     (errno != EOPNOTSUPP || ftruncate(fd, BRICK_BLOCK_SIZE) < 0)) ||
	    (p->durable && fdatasync(fd) < 0)) {
		int rc = -errno;

		close(fd);
		unlinkat(p->dfd, name, 0);
		return rc;
	}
	return fd;
}

static void *
pool_thread(void *arg)
{
	struct brick_pool *p = arg;
	unsigned failures = 0;

	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		struct pool_file f;
		char name[40];
		int fd;

		if (p->ndirty > 0 && p->nready < POOL_MAX) {
			f = p->dirty[--p->ndirty];
			pthread_mutex_unlock(&p->mu);
			if (pool_scrub(p, f.fd) < 0) {
				brick_pool_name(f.id, name, sizeof(name));
				unlinkat(p->dfd, name, 0);
				close(f.fd);
				pthread_mutex_lock(&p->mu);
				continue;
			}
			pthread_mutex_lock(&p->mu);
			p->ready[p->nready++] = f;
			p->recycled++;
			continue;
		}
		if (p->nready < p->target && failures < 3) {
			uint64_t id = p->next_id++;

			pthread_mutex_unlock(&p->mu);
			fd = pool_make(p, id);
			pthread_mutex_lock(&p->mu);
			if (fd < 0) {
				/* ENOSPC and friends: stop trying until something is freed */
				failures++;
				continue;
			}
			failures = 0;
			p->ready[p->nready].fd = fd;
			p->ready[p->nready++].id = id;
			p->made++;
			continue;
		}
		pthread_cond_wait(&p->cv, &p->mu);
		failures = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int
brick_pool_start(int dfd, bool durable, unsigned target, struct brick_pool **out)
{
	struct brick_pool *p = calloc(1, sizeof(*p));
	int rc;

	if (p == NULL)
		return -ENOMEM;
	p->dfd = dup(dfd);
	if (p->dfd < 0) {
		rc = -errno;
		free(p);
		return rc;
	}
	p->durable = durable;
	p->target = NVL_MIN(target, (unsigned)POOL_MAX);
	p->next_id = 1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	rc = pthread_create(&p->th, NULL, pool_thread, p);
	if (rc != 0) {
		close(p->dfd);
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		free(p);
		return -rc;
	}
	*out = p;
	return 0;
}

static void
pool_drop(struct brick_pool *p, struct pool_file *f)
{
	char name[40];

	brick_pool_name(f->id, name, sizeof(name));
	unlinkat(p->dfd, name, 0);
	close(f->fd);
}

void
brick_pool_stop(struct brick_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->th, NULL);
	while (p->nready)
		pool_drop(p, &p->ready[--p->nready]);
	while (p->ndirty)
		pool_drop(p, &p->dirty[--p->ndirty]);
	close(p->dfd);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

int
brick_pool_take(struct brick_pool *p, int *fd, uint64_t *id)
{
	int rc = -EAGAIN;

	if (p == NULL)
		return rc;
	pthread_mutex_lock(&p->mu);
	if (p->nready > 0) {
		struct pool_file f = p->ready[--p->nready];

		*fd = f.fd;
		*id = f.id;
		rc = 0;
		pthread_cond_signal(&p->cv); /* refill */
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

uint64_t
brick_pool_new_id(struct brick_pool *p)
{
	uint64_t id;

	pthread_mutex_lock(&p->mu);
	id = p->next_id++;
	pthread_mutex_unlock(&p->mu);
	return id;
}

void
brick_pool_give(struct brick_pool *p, int fd, uint64_t id)
{
	struct pool_file f = { .fd = fd, .id = id };

	pthread_mutex_lock(&p->mu);
	if (p->nready + p->ndirty < p->target) {
		p->dirty[p->ndirty++] = f;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		return;
	}
	pthread_mutex_unlock(&p->mu);
	pool_drop(p, &f);
}

void
brick_pool_stats(struct brick_pool *p, unsigned *ready, uint64_t *made, uint64_t *recycled)
{
	*ready = 0;
	*made = *recycled = 0;
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	*ready = p->nready;
	*made = p->made;
	*recycled = p->recycled;
	pthread_mutex_unlock(&p->mu);
}
