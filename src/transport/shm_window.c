/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * shm data windows, made off the reactors (security issue, item 6): a host's
 * CONNECT asks for a window of up to max_window bytes, which must be
 * reserved and pre-faulted (shm_region_create: about 0.7 s per GiB on these
 * machines). Done on reactor 0, that stalled RPC and every other host's
 * admin commands; here one allocator thread makes windows in arrival order
 * and hands each back to reactor 0 with a message, which then answers the
 * CONNECT (shm.c, shm_connect_window_ready).
 *
 * Ownership: a job is shared by two holders, counted in refs: the
 * connection (sc->window_job, reactor 0 only) and the work (the queue, the
 * thread, then the message to reactor 0). Whoever drops the last reference
 * frees the job and the region it made, if nobody took that. A connection
 * that goes away first just lets go (job->sc = NULL, on reactor 0); the work
 * never touches sc.
 * Threads: shm_window_request/_forget/_ready run on reactor 0; the
 * allocator thread only reads size/what and writes region/rc before it
 * posts the job (the message is the hand-over).
 */
#include "transport/shm_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

struct shm_window_job {
	struct shm_ctrlr *sc;            /* reactor 0: NULL once the connection let go */
	struct nvl_reactor *home;        /* where the job comes back */
	struct shm_region region;        /* made by the thread */
	char what[32];
	uint64_t size;
	int rc;
	unsigned refs;                   /* atomic: connection + work */
	STAILQ_ENTRY(shm_window_job) link;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	STAILQ_HEAD(, shm_window_job) queue;
	pthread_t thread;
	bool running, stop;
	unsigned delay_ms;               /* NVLEND_TEST_WINDOW_DELAY_MS (tests only) */
} g_win = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.queue = STAILQ_HEAD_INITIALIZER(g_win.queue),
};

static void
job_put(struct shm_window_job *j)
{
	if (__atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	shm_region_destroy(&j->region);
	free(j);
}

/* reactor 0: the work is done (or given up); the CONNECT goes on, or the
 * window goes if its connection went. */
static void
job_ready(void *arg)
{
	struct shm_window_job *j = arg;
	struct shm_ctrlr *sc = j->sc;

	if (sc) {
		struct shm_region r = j->region;
		int rc = j->rc;

		if (rc < 0)
			r.size = j->size; /* for the message */
		j->region = (struct shm_region){ .fd = -1 }; /* the connection takes it */
		j->sc = NULL;
		sc->window_job = NULL;
		job_put(j); /* the connection's reference */
		job_put(j); /* the work's */
		shm_connect_window_ready(sc, rc, &r);
		return;
	}
	job_put(j);
}

static void *
window_thread(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "nvlend-window");
	pthread_mutex_lock(&g_win.lock);
	for (;;) {
		struct shm_window_job *j;

		while (!g_win.stop && STAILQ_EMPTY(&g_win.queue))
			pthread_cond_wait(&g_win.cond, &g_win.lock);
		if (g_win.stop)
			break;
		j = STAILQ_FIRST(&g_win.queue);
		STAILQ_REMOVE_HEAD(&g_win.queue, link);
		pthread_mutex_unlock(&g_win.lock);
		if (g_win.delay_ms) {
			struct timespec ts = { g_win.delay_ms / 1000,
					       (long)(g_win.delay_ms % 1000) * 1000000L };

			nanosleep(&ts, NULL);
		}
		j->rc = shm_region_create(&j->region, j->what, j->size);
		if (nvl_reactor_msg(j->home, job_ready, j) < 0)
			job_put(j); /* the daemon is stopping: nobody waits for it */
		pthread_mutex_lock(&g_win.lock);
	}
	pthread_mutex_unlock(&g_win.lock);
	return NULL;
}

bool g_shm_window_inline;

int
shm_window_request(struct shm_ctrlr *sc, const char *what, uint64_t size)
{
	struct shm_window_job *j;
	int rc = 0;

	if (g_shm_window_inline) {
		struct shm_region r = { .fd = -1 };

		rc = shm_region_create(&r, what, size);
		r.size = rc < 0 ? size : r.size;
		shm_connect_window_ready(sc, rc, &r);
		return 0;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return -ENOMEM;
	j->sc = sc;
	j->home = nvl_reactor_self();
	j->region.fd = -1;
	j->size = size;
	j->refs = 2;
	nvl_strlcpy(j->what, what, sizeof(j->what));
	pthread_mutex_lock(&g_win.lock);
	if (!g_win.running) {
		const char *d = getenv("NVLEND_TEST_WINDOW_DELAY_MS");

		g_win.delay_ms = d ? (unsigned)strtoul(d, NULL, 10) : 0;
		g_win.stop = false;
		rc = -pthread_create(&g_win.thread, NULL, window_thread, NULL);
		g_win.running = rc == 0;
	}
	if (rc == 0) {
		STAILQ_INSERT_TAIL(&g_win.queue, j, link);
		pthread_cond_signal(&g_win.cond);
	}
	pthread_mutex_unlock(&g_win.lock);
	if (rc < 0) {
		free(j);
		return rc;
	}
	sc->window_job = j;
	return 0;
}

uint64_t
shm_window_pending_bytes(const struct shm_ctrlr *sc)
{
	return sc->window_job ? sc->window_job->size : 0;
}

void
shm_window_forget(struct shm_ctrlr *sc)
{
	struct shm_window_job *j = sc->window_job;

	if (j == NULL)
		return;
	sc->window_job = NULL;
	j->sc = NULL;
	job_put(j);
}

void
shm_window_stop(void)
{
	struct shm_window_job *j;

	pthread_mutex_lock(&g_win.lock);
	if (!g_win.running) {
		pthread_mutex_unlock(&g_win.lock);
		return;
	}
	g_win.stop = true;
	pthread_cond_signal(&g_win.cond);
	pthread_mutex_unlock(&g_win.lock);
	pthread_join(g_win.thread, NULL);
	pthread_mutex_lock(&g_win.lock);
	g_win.running = false;
	/* work never started: its connections are gone (shm_fini drained them) */
	while ((j = STAILQ_FIRST(&g_win.queue)) != NULL) {
		STAILQ_REMOVE_HEAD(&g_win.queue, link);
		job_put(j);
	}
	pthread_mutex_unlock(&g_win.lock);
}
