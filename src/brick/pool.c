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
 *
 * Hand-over (nvl_brick_pool_quiesce, brick.h): one process-wide flag and a
 * count of pool threads inside a job (making or zeroing a file), both under
 * g_quiet_mu, taken inside a pool's mutex (never the other way round). A
 * thread marks itself busy only while the flag is clear, so once the flag is
 * set and the count is 0, no spare file of this process changes any more;
 * the new worker may then recover the fast tier (deleting spare files).
 */
#include "brick/brick.h"
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
#include <time.h>
#include <unistd.h>

#define POOL_MAX 16
#define POOL_QUIESCE_WAIT_MS 100 /* the longest nvl_brick_pool_quiesce() waits for a job */
#define POOL_QUIET_RECHECK_MS 50 /* a quiet pool thread looks at the flag again */

static pthread_mutex_t g_quiet_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_quiet_cv;        /* a job ended (CLOCK_MONOTONIC) */
static pthread_once_t g_quiet_once = PTHREAD_ONCE_INIT;
static bool g_quiet;                     /* nvl_brick_pool_quiesce() was called */
static unsigned g_busy;                  /* pool threads inside a job */

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

static void
quiet_init(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&g_quiet_cv, &a);
	pthread_condattr_destroy(&a);
}

/* now + ms on CLOCK_MONOTONIC */
static struct timespec
deadline_in(unsigned ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Called with p->mu held, before a job: \return true if it may start (then
 * job_end() follows), false while the pools are quiet. */
static bool
job_begin(void)
{
	bool ok;

	pthread_mutex_lock(&g_quiet_mu);
	ok = !g_quiet;
	if (ok)
		g_busy++;
	pthread_mutex_unlock(&g_quiet_mu);
	return ok;
}

static void
job_end(void)
{
	pthread_mutex_lock(&g_quiet_mu);
	g_busy--;
	if (g_quiet)
		pthread_cond_broadcast(&g_quiet_cv);
	pthread_mutex_unlock(&g_quiet_mu);
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
		bool scrub = p->ndirty > 0 && p->nready < POOL_MAX;
		bool make = !scrub && p->nready < p->target && failures < 3;
		int fd;

		if ((scrub || make) && !job_begin()) {
			/* quiet (a hand-over): wait, looking at the flag now and then */
			struct timespec t = deadline_in(POOL_QUIET_RECHECK_MS);

			pthread_cond_timedwait(&p->cv, &p->mu, &t);
			continue;
		}
		if (scrub) {
			f = p->dirty[--p->ndirty];
			pthread_mutex_unlock(&p->mu);
			if (pool_scrub(p, f.fd) < 0) {
				brick_pool_name(f.id, name, sizeof(name));
				unlinkat(p->dfd, name, 0);
				close(f.fd);
				job_end();
				pthread_mutex_lock(&p->mu);
				continue;
			}
			job_end();
			pthread_mutex_lock(&p->mu);
			p->ready[p->nready++] = f;
			p->recycled++;
			continue;
		}
		if (make) {
			uint64_t id = p->next_id++;

			pthread_mutex_unlock(&p->mu);
			fd = pool_make(p, id);
			job_end();
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
nvl_brick_pool_quiesce(void)
{
	struct timespec t;
	int rc = 0;

	pthread_once(&g_quiet_once, quiet_init);
	t = deadline_in(POOL_QUIESCE_WAIT_MS);
	pthread_mutex_lock(&g_quiet_mu);
	g_quiet = true;
	while (g_busy > 0) {
		if (pthread_cond_timedwait(&g_quiet_cv, &g_quiet_mu, &t) == ETIMEDOUT) {
			rc = g_busy > 0 ? -ETIMEDOUT : 0;
			break;
		}
	}
	pthread_mutex_unlock(&g_quiet_mu);
	if (rc < 0)
		NVL_WARNLOG("brick: a spare-file job still runs %d ms after the hand-over began",
			    POOL_QUIESCE_WAIT_MS);
	return rc;
}

void
nvl_brick_pool_resume(void)
{
	pthread_mutex_lock(&g_quiet_mu);
	g_quiet = false;
	pthread_mutex_unlock(&g_quiet_mu);
}

int
brick_pool_start(int dfd, bool durable, unsigned target, struct brick_pool **out)
{
	struct brick_pool *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;
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
	pthread_once(&g_quiet_once, quiet_init);
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the quiet wait's deadline */
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
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
