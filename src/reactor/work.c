/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Waiting for work across reactors: nvl_reactor_for_each() (run a function
 * on every reactor, then a completion on the caller's: a barrier) and
 * nvl_reactor_drain() (finish once something has drained: in-flight
 * commands, connections, controllers). The shutdown and removal paths of
 * the services use these instead of hand-made counters and polling timers.
 *
 * Threading: a for-each's counter is decremented atomically by the
 * reactors it visits; its completion, and every drain, runs on the reactor
 * that started it.
 */
#include "reactor/reactor.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>

NVL_LOG_DECLARE_COMPONENT(reactor);

/* ---- for each reactor ---------------------------------------------------- */

struct reactor_for_each {
	nvl_msg_fn fn;
	void *arg;
	nvl_reactor_done_fn done;
	void *done_arg;
	struct nvl_reactor *home;
	unsigned pending;            /* atomic: visits not finished, + 1 while sending */
	int rc;                      /* atomic: -ENOMEM if a reactor was not reached */
};

static void
for_each_finish(void *arg)
{
	struct reactor_for_each *fe = arg;
	nvl_reactor_done_fn done = fe->done;
	void *done_arg = fe->done_arg;
	int rc = __atomic_load_n(&fe->rc, __ATOMIC_ACQUIRE);

	free(fe);
	done(done_arg, rc);
}

/* One visit (or the sender's guard) is over; the last one completes at home. */
static void
for_each_put(struct reactor_for_each *fe)
{
	if (__atomic_sub_fetch(&fe->pending, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (nvl_reactor_msg(fe->home, for_each_finish, fe) < 0) {
		/* the completion would be lost and its caller wait for ever */
		NVL_ERRLOG("cannot reach reactor %u to complete a for-each", nvl_reactor_id(fe->home));
		abort();
	}
}

static void
for_each_visit(void *arg)
{
	struct reactor_for_each *fe = arg;

	if (fe->fn)
		fe->fn(fe->arg);
	for_each_put(fe);
}

int
nvl_reactor_for_each(nvl_msg_fn fn, void *arg, nvl_reactor_done_fn done, void *done_arg)
{
	struct nvl_reactor *home = nvl_reactor_self();
	struct reactor_for_each *fe;
	unsigned n = nvl_reactor_count();

	if (home == NULL)
		return -EPERM;
	fe = calloc(1, sizeof(*fe));
	if (fe == NULL)
		return -ENOMEM;
	fe->fn = fn;
	fe->arg = arg;
	fe->done = done;
	fe->done_arg = done_arg;
	fe->home = home;
	fe->pending = n + 1; /* the guard: nothing completes while we still send */
	for (unsigned i = 0; i < n; i++) {
		if (nvl_reactor_msg(nvl_reactor_get(i), for_each_visit, fe) < 0) {
			__atomic_store_n(&fe->rc, -ENOMEM, __ATOMIC_RELEASE);
			for_each_put(fe);
		}
	}
	for_each_put(fe);
	return 0;
}

/* ---- drain --------------------------------------------------------------- */

struct reactor_drain {
	bool (*drained)(void *arg);
	void (*done)(void *arg);     /* one of these two */
	void (*done_fini)(void);
	void *arg;
	struct nvl_timer *timer;
};

static void
drain_tick(void *arg)
{
	struct reactor_drain *d = arg;
	void (*done)(void *) = d->done;
	void (*done_fini)(void) = d->done_fini;
	void *done_arg = d->arg;

	if (!d->drained(d->arg))
		return;
	nvl_timer_destroy(d->timer);
	free(d);
	if (done)
		done(done_arg);
	else
		done_fini();
}

static int
drain_start(bool (*drained)(void *arg), void (*done)(void *arg), void (*done_fini)(void),
	    void *arg, uint64_t period_us)
{
	struct reactor_drain *d;

	if (nvl_reactor_self() == NULL)
		return -EPERM;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->drained = drained;
	d->done = done;
	d->done_fini = done_fini;
	d->arg = arg;
	/* the first look comes from the loop: done never runs inside this call */
	d->timer = nvl_timer_create(drain_tick, d, 0, period_us ? period_us : 1000);
	if (d->timer == NULL) {
		free(d);
		return -ENOMEM;
	}
	return 0;
}

int
nvl_reactor_drain(bool (*drained)(void *arg), void (*done)(void *arg), void *arg,
		  uint64_t period_us)
{
	return drain_start(drained, done, NULL, arg, period_us);
}

int
nvl_reactor_drain_fini(bool (*drained)(void *arg), void *arg, void (*done)(void),
		       uint64_t period_us)
{
	return drain_start(drained, NULL, done, arg, period_us);
}
