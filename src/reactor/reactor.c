/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reactor implementation. Each reactor is a thread with an epoll set, an
 * io_uring, a poller list, a timer list and an inbox of messages. All lists
 * are touched only by the owning thread, except the inbox (mutex; it is on
 * the control path only, never on the I/O path).
 */
#include "reactor/reactor.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/syscall.h>
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(reactor)

struct nvl_poller {
	nvl_poller_fn fn;
	nvl_sleep_fn sleep_fn;
	void *arg;
	const char *name;
	bool dead;
	TAILQ_ENTRY(nvl_poller) link;
};

struct nvl_timer {
	nvl_timer_fn fn;
	void *arg;
	uint64_t deadline_ns;
	uint64_t period_ns;
	bool armed;
	bool dead;
	bool running;
	TAILQ_ENTRY(nvl_timer) link;
};

struct nvl_fdh {
	int fd;
	nvl_fd_fn fn;
	void *arg;
	struct nvl_reactor *r;
	bool dead;
	bool held;       /* added while fds were held: not in epoll yet */
	uint32_t events; /* what a held one will watch */
	TAILQ_ENTRY(nvl_fdh) link;
};

struct reactor_msg {
	nvl_msg_fn fn;
	void *arg;
};

struct nvl_reactor {
	unsigned id;
	int cpu;
	int tid;
	pthread_t thread;
	bool thread_started;
	int epfd;
	int msg_efd;
	struct io_uring ring;
	bool ring_ok;
	bool ring_defer;          /* DEFER_TASKRUN: completions wait for us, no IPIs */
	bool ring_enabled;        /* R_DISABLED rings are enabled by their own thread */
	int ring_efd;             /* defer mode: the kernel signals pending completions */
	unsigned sqe_pending;
	unsigned uring_inflight;
	uint64_t last_cpl_ns;        /* last io_uring completion */
	uint64_t cpl_gap_ewma_ns;    /* average time between io_uring completions */
	struct nvl_fdh *ring_fdh;
	struct nvl_fdh *msg_fdh;

	TAILQ_HEAD(, nvl_poller) pollers;
	TAILQ_HEAD(, nvl_timer) timers;       /* armed, sorted by deadline */
	TAILQ_HEAD(, nvl_timer) timers_idle;  /* fired one-shots not yet destroyed */
	TAILQ_HEAD(, nvl_fdh) fdhs;
	TAILQ_HEAD(, nvl_fdh) dead_fdhs;
	unsigned npollers;
	unsigned nfds;
	bool pollers_dirty;

	pthread_mutex_t inbox_lock;
	struct reactor_msg *inbox;
	size_t inbox_len, inbox_cap;
	struct reactor_msg *work;
	size_t work_cap;

	volatile bool stop;
	bool yield_hint;
	int nap_ms;                     /* -1, or the longest sleep a sleep hook allows */
	int cpu_now;
	struct nvl_reactor_stats stats;
} __attribute__((aligned(NVL_CACHE_LINE)));

static struct nvl_reactor *g_reactors[NVL_REACTOR_MAX];
static unsigned g_nreactors;
static uint64_t g_spin_ns = 200000;
static unsigned g_uring_entries = 256;
static __thread struct nvl_reactor *t_self;

void
nvl_reactor_opts_default(struct nvl_reactor_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->count = 1;
	for (unsigned i = 0; i < NVL_REACTOR_MAX; i++)
		o->cpus[i] = -1;
	o->spin_us = 200;
	o->io_sleep_us = 20;
	o->uring_entries = 256;
}

int
nvl_reactor_parse_cpus(const char *list, struct nvl_reactor_opts *o)
{
	const char *p = list;
	char inner[256];
	unsigned n = 0;

	if (list == NULL || *list == '\0')
		return -EINVAL;
	/* SPDK's forms too: a hexadecimal mask (0x3) and a bracketed list ([0,2-3]) */
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		int bits = 0;

		for (p += 2; *p; p++) {
			int d = *p >= '0' && *p <= '9'	 ? *p - '0'
				: *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
				: *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
							 : -1;

			if (d < 0 || ++bits > 16) /* 16 digits: CPUs 0..63 */
				return -EINVAL;
		}
		for (int cpu = 0, digit = 0; digit < bits; digit++) {
			const char *dp = p - 1 - digit;
			int d = *dp >= '0' && *dp <= '9' ? *dp - '0' : (*dp | 0x20) - 'a' + 10;

			for (int bit = 0; bit < 4; bit++, cpu++) {
				if (!(d & (1 << bit)))
					continue;
				if (n >= NVL_REACTOR_MAX)
					return -E2BIG;
				o->cpus[n++] = cpu;
			}
		}
		if (n == 0)
			return -EINVAL;
		o->count = n;
		return 0;
	}
	if (p[0] == '[') {
		size_t len = strlen(p);

		if (len < 3 || p[len - 1] != ']' || len - 2 >= sizeof(inner))
			return -EINVAL;
		memcpy(inner, p + 1, len - 2);
		inner[len - 2] = '\0';
		p = inner;
	}
	while (*p) {
		char *end;
		long a, b;

		if (*p < '0' || *p > '9')
			return -EINVAL;
		a = strtol(p, &end, 10);
		b = a;
		if (*end == '-') {
			p = end + 1;
			if (*p < '0' || *p > '9')
				return -EINVAL;
			b = strtol(p, &end, 10);
		}
		if (a < 0 || b < a || b > 4095)
			return -EINVAL;
		for (long c = a; c <= b; c++) {
			if (n >= NVL_REACTOR_MAX)
				return -E2BIG;
			o->cpus[n++] = (int)c;
		}
		p = end;
		if (*p == ',' && p[1] != '\0')
			p++;
		else if (*p != '\0')
			return -EINVAL; /* junk, or a trailing comma */
	}
	o->count = n;
	return 0;
}

unsigned
nvl_reactor_count(void)
{
	return g_nreactors;
}

struct nvl_reactor *
nvl_reactor_get(unsigned idx)
{
	return idx < g_nreactors ? g_reactors[idx] : NULL;
}

struct nvl_reactor *
nvl_reactor_self(void)
{
	return t_self;
}

unsigned
nvl_reactor_id(const struct nvl_reactor *r)
{
	return r->id;
}

static uint64_t g_io_sleep_ns = 20000;

void
nvl_reactor_set_io_sleep_us(uint64_t us)
{
	__atomic_store_n(&g_io_sleep_ns, us * 1000, __ATOMIC_RELAXED);
}

uint64_t
nvl_reactor_get_io_sleep_us(void)
{
	return __atomic_load_n(&g_io_sleep_ns, __ATOMIC_RELAXED) / 1000;
}

void
nvl_reactor_set_spin_us(uint64_t spin_us)
{
	__atomic_store_n(&g_spin_ns, spin_us * 1000, __ATOMIC_RELAXED);
}

uint64_t
nvl_reactor_get_spin_us(void)
{
	return __atomic_load_n(&g_spin_ns, __ATOMIC_RELAXED) / 1000;
}

/* ---- placement ---------------------------------------------------------- */

static unsigned g_placed[NVL_REACTOR_MAX];   /* atomic: picks not given back */
static unsigned g_pick_rr;                   /* atomic: where ties start */

struct nvl_reactor *
nvl_reactor_pick(void)
{
	unsigned n = g_nreactors, best = 0, bestload = UINT32_MAX, start;

	if (n == 0)
		return NULL;
	if (n > 1) {
		/* reactor 0 serves RPC and admin queues: I/O queues go to the others */
		start = __atomic_fetch_add(&g_pick_rr, 1, __ATOMIC_RELAXED);
		for (unsigned k = 0; k < n - 1; k++) {
			unsigned i = 1 + (start + k) % (n - 1);
			unsigned load = __atomic_load_n(&g_placed[i], __ATOMIC_RELAXED);

			if (load < bestload) {
				best = i;
				bestload = load;
			}
		}
	}
	__atomic_fetch_add(&g_placed[best], 1, __ATOMIC_RELAXED);
	return g_reactors[best];
}

void
nvl_reactor_unpick(struct nvl_reactor *r)
{
	if (r == NULL)
		return;
	if (__atomic_sub_fetch(&g_placed[r->id], 1, __ATOMIC_RELAXED) == UINT32_MAX) {
		NVL_ERRLOG("reactor %u: a queue given back that was never placed there", r->id);
		__atomic_store_n(&g_placed[r->id], 0, __ATOMIC_RELAXED);
	}
}

void
nvl_reactor_get_stats(const struct nvl_reactor *r, struct nvl_reactor_stats *s)
{
	*s = r->stats;
	s->pollers = r->npollers;
	s->fds = r->nfds;
	s->placed = __atomic_load_n(&g_placed[r->id], __ATOMIC_RELAXED);
	s->cpu = r->cpu;
	s->tid = r->tid;
}

/* ---- messages ---------------------------------------------------------- */

int
nvl_reactor_msg(struct nvl_reactor *r, nvl_msg_fn fn, void *arg)
{
	bool was_empty;
	uint64_t one = 1;

	pthread_mutex_lock(&r->inbox_lock);
	if (r->inbox_len == r->inbox_cap) {
		size_t cap = r->inbox_cap ? r->inbox_cap * 2 : 64;
		struct reactor_msg *n = realloc(r->inbox, cap * sizeof(*n));

		if (n == NULL) {
			pthread_mutex_unlock(&r->inbox_lock);
			return -ENOMEM;
		}
		r->inbox = n;
		r->inbox_cap = cap;
	}
	was_empty = r->inbox_len == 0;
	r->inbox[r->inbox_len].fn = fn;
	r->inbox[r->inbox_len].arg = arg;
	r->inbox_len++;
	pthread_mutex_unlock(&r->inbox_lock);
	if (was_empty)
		(void)!write(r->msg_efd, &one, sizeof(one));
	return 0;
}

static int
reactor_run_msgs(struct nvl_reactor *r)
{
	size_t n;

	pthread_mutex_lock(&r->inbox_lock);
	n = r->inbox_len;
	if (n == 0) {
		pthread_mutex_unlock(&r->inbox_lock);
		return 0;
	}
	if (r->work_cap < n) {
		struct reactor_msg *w = realloc(r->work, r->inbox_cap * sizeof(*w));

		if (w == NULL) {
			pthread_mutex_unlock(&r->inbox_lock);
			return 0; /* retry next loop */
		}
		r->work = w;
		r->work_cap = r->inbox_cap;
	}
	memcpy(r->work, r->inbox, n * sizeof(*r->work));
	r->inbox_len = 0;
	pthread_mutex_unlock(&r->inbox_lock);
	for (size_t i = 0; i < n; i++)
		r->work[i].fn(r->work[i].arg);
	r->stats.msgs += n;
	return (int)n;
}

static void
reactor_msg_efd_cb(void *arg, uint32_t events)
{
	struct nvl_reactor *r = arg;
	uint64_t v;

	(void)events;
	(void)!read(r->msg_efd, &v, sizeof(v));
}

/* ---- pollers ----------------------------------------------------------- */

struct nvl_poller *
nvl_poller_create(nvl_poller_fn fn, void *arg, const char *name)
{
	struct nvl_reactor *r = t_self;
	struct nvl_poller *p;

	if (r == NULL)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->fn = fn;
	p->arg = arg;
	p->name = name;
	TAILQ_INSERT_TAIL(&r->pollers, p, link);
	r->npollers++;
	return p;
}

void
nvl_poller_set_sleep_hook(struct nvl_poller *p, nvl_sleep_fn fn)
{
	p->sleep_fn = fn;
}

void
nvl_poller_destroy(struct nvl_poller *p)
{
	if (p == NULL)
		return;
	p->dead = true;
	t_self->pollers_dirty = true;
}

static void
reactor_reap_pollers(struct nvl_reactor *r)
{
	struct nvl_poller *p, *tmp;

	TAILQ_FOREACH_SAFE(p, &r->pollers, link, tmp) {
		if (p->dead) {
			TAILQ_REMOVE(&r->pollers, p, link);
			r->npollers--;
			free(p);
		}
	}
	r->pollers_dirty = false;
}

/* ---- timers ------------------------------------------------------------ */

static void
timer_insert(struct nvl_reactor *r, struct nvl_timer *t)
{
	struct nvl_timer *it;

	TAILQ_FOREACH(it, &r->timers, link) {
		if (it->deadline_ns > t->deadline_ns) {
			TAILQ_INSERT_BEFORE(it, t, link);
			t->armed = true;
			return;
		}
	}
	TAILQ_INSERT_TAIL(&r->timers, t, link);
	t->armed = true;
}

struct nvl_timer *
nvl_timer_create(nvl_timer_fn fn, void *arg, uint64_t first_us, uint64_t period_us)
{
	struct nvl_reactor *r = t_self;
	struct nvl_timer *t;

	if (r == NULL)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->fn = fn;
	t->arg = arg;
	t->period_ns = period_us * 1000;
	t->deadline_ns = nvl_now_ns() + first_us * 1000;
	timer_insert(r, t);
	return t;
}

void
nvl_timer_destroy(struct nvl_timer *t)
{
	struct nvl_reactor *r = t_self;

	if (t == NULL)
		return;
	if (t->running) {
		/* freed by the loop after the callback returns */
		t->dead = true;
		return;
	}
	if (t->armed)
		TAILQ_REMOVE(&r->timers, t, link);
	else
		TAILQ_REMOVE(&r->timers_idle, t, link);
	free(t);
}

static int
reactor_run_timers(struct nvl_reactor *r, uint64_t now)
{
	struct nvl_timer *t;
	int n = 0;

	while ((t = TAILQ_FIRST(&r->timers)) != NULL && t->deadline_ns <= now) {
		TAILQ_REMOVE(&r->timers, t, link);
		t->armed = false;
		t->running = true;
		t->fn(t->arg);
		t->running = false;
		n++;
		if (t->dead) {
			free(t);
			continue;
		}
		if (t->period_ns) {
			t->deadline_ns += t->period_ns;
			if (t->deadline_ns < now)
				t->deadline_ns = now + t->period_ns;
			timer_insert(r, t);
		} else {
			TAILQ_INSERT_TAIL(&r->timers_idle, t, link);
		}
	}
	return n;
}

/* ---- fd handlers ------------------------------------------------------- */

/* nvl_reactor_hold_fds(): descriptors added meanwhile wait for nvl_reactor_arm_fds() */
static bool g_fd_hold;

static struct nvl_fdh *
reactor_fd_add(struct nvl_reactor *r, int fd, uint32_t events, nvl_fd_fn fn, void *arg, bool hold)
{
	struct nvl_fdh *h = calloc(1, sizeof(*h));
	struct epoll_event ev = { .events = events };

	if (h == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	h->fd = fd;
	h->fn = fn;
	h->arg = arg;
	h->r = r;
	h->events = events;
	h->held = hold;
	ev.data.ptr = h;
	if (!hold && epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;

		free(h);
		errno = e;
		return NULL;
	}
	TAILQ_INSERT_TAIL(&r->fdhs, h, link);
	r->nfds++;
	return h;
}

struct nvl_fdh *
nvl_fd_add(int fd, uint32_t events, nvl_fd_fn fn, void *arg)
{
	if (t_self == NULL) {
		errno = EPERM;
		return NULL;
	}
	return reactor_fd_add(t_self, fd, events, fn, arg,
			      __atomic_load_n(&g_fd_hold, __ATOMIC_ACQUIRE));
}

struct nvl_fdh *
nvl_fd_add_now(int fd, uint32_t events, nvl_fd_fn fn, void *arg)
{
	if (t_self == NULL) {
		errno = EPERM;
		return NULL;
	}
	return reactor_fd_add(t_self, fd, events, fn, arg, false);
}

void
nvl_reactor_hold_fds(void)
{
	__atomic_store_n(&g_fd_hold, true, __ATOMIC_RELEASE);
}

/* On each reactor: watch what was added while held. */
static void
reactor_arm_held(void *arg)
{
	struct nvl_reactor *r = t_self;
	struct nvl_fdh *h;

	(void)arg;
	TAILQ_FOREACH(h, &r->fdhs, link) {
		struct epoll_event ev = { .events = h->events, .data.ptr = h };

		if (!h->held)
			continue;
		h->held = false;
		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, h->fd, &ev) < 0)
			NVL_ERRLOG("reactor %u: cannot watch descriptor %d: %s", r->id, h->fd,
				   strerror(errno));
	}
}

void
nvl_reactor_arm_fds(void)
{
	__atomic_store_n(&g_fd_hold, false, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < nvl_reactor_count(); i++) {
		struct nvl_reactor *r = nvl_reactor_get(i);

		if (r == t_self)
			reactor_arm_held(NULL);
		else if (nvl_reactor_msg(r, reactor_arm_held, NULL) < 0)
			NVL_ERRLOG("reactor %u: cannot arm its descriptors", i);
	}
}

int
nvl_fd_mod(struct nvl_fdh *h, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = h };

	h->events = events;
	if (h->held)
		return 0;
	if (epoll_ctl(h->r->epfd, EPOLL_CTL_MOD, h->fd, &ev) < 0)
		return -errno;
	return 0;
}

void
nvl_fd_del(struct nvl_fdh *h)
{
	struct nvl_reactor *r;

	if (h == NULL)
		return;
	r = h->r;
	if (!h->held)
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, h->fd, NULL);
	h->dead = true;
	TAILQ_REMOVE(&r->fdhs, h, link);
	r->nfds--;
	/* events already fetched in this iteration may still point at h */
	TAILQ_INSERT_TAIL(&r->dead_fdhs, h, link);
}

static void
reactor_reap_fdhs(struct nvl_reactor *r)
{
	struct nvl_fdh *h;

	while ((h = TAILQ_FIRST(&r->dead_fdhs)) != NULL) {
		TAILQ_REMOVE(&r->dead_fdhs, h, link);
		free(h);
	}
}

/* ---- io_uring ---------------------------------------------------------- */

struct io_uring_sqe *
nvl_uring_sqe(void)
{
	struct nvl_reactor *r = t_self;
	struct io_uring_sqe *sqe;

	if (r == NULL || !r->ring_ok)
		return NULL;
	sqe = io_uring_get_sqe(&r->ring);
	if (sqe == NULL) {
		io_uring_submit(&r->ring);
		r->sqe_pending = 0;
		sqe = io_uring_get_sqe(&r->ring);
		if (sqe == NULL)
			return NULL;
	}
	r->sqe_pending++;
	r->uring_inflight++;
	return sqe;
}

int
nvl_uring_flush(void)
{
	struct nvl_reactor *r = t_self;
	int rc;

	if (r == NULL || !r->ring_ok || r->sqe_pending == 0)
		return 0;
	rc = io_uring_submit(&r->ring);
	r->sqe_pending = 0;
	return rc < 0 ? rc : 0;
}

static int
reactor_reap_uring(struct nvl_reactor *r)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	if (r->uring_inflight == 0)
		return 0;
	/* Deferred completions are posted when we run them: ask only when the
	 * kernel flags that some are waiting (a load, not a syscall). */
	if (r->ring_defer &&
	    (IO_URING_READ_ONCE(*r->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
		io_uring_get_events(&r->ring);
	io_uring_for_each_cqe(&r->ring, head, cqe) {
		struct nvl_uring_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&r->ring, cqe);
		r->uring_inflight--;
		n++;
		if (op != NULL)
			op->cb(op, res);
	}
	if (n) {
		/* how far apart completions come: the time since the last batch over
		 * this batch's size (an idle stretch counts as at most 1 ms) */
		uint64_t now = nvl_now_ns(), gap = NVL_MIN(now - r->last_cpl_ns, 1000000ULL) / n;

		/* one step of the average per completion, so that a deep queue's
		 * occasional lone completion does not swing it */
		if (r->cpl_gap_ewma_ns == 0)
			r->cpl_gap_ewma_ns = gap;
		for (unsigned i = 0; i < NVL_MIN(n, 16u); i++)
			r->cpl_gap_ewma_ns = r->cpl_gap_ewma_ns - r->cpl_gap_ewma_ns / 8 + gap / 8;
		r->last_cpl_ns = now;
	}
	if (n == 0 && r->uring_inflight > 0 && !r->ring_defer) {
		/* completions from io-wq need task work to run before they show up */
		io_uring_get_events(&r->ring);
	}
	return (int)n;
}

/* Before sleeping: completions already waiting must not be slept on. */
static bool
reactor_uring_pending(struct nvl_reactor *r)
{
	if (r->uring_inflight == 0)
		return false;
	if (r->ring_defer &&
	    (IO_URING_READ_ONCE(*r->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
		return true;
	return io_uring_cq_ready(&r->ring) > 0;
}

static void
reactor_ring_fd_cb(void *arg, uint32_t events)
{
	(void)arg;
	(void)events;
	/* only a wake-up; the loop reaps. The defer-mode eventfd is watched
	 * edge-triggered (every signal is an edge) and never needs reading:
	 * one syscall less per wake-up. The ring fd of the fallback mode is
	 * level-triggered and clears when the loop reaps. */
}

/* A ring created disabled (SINGLE_ISSUER) belongs to the thread enabling it. */
static void
reactor_ring_enable(struct nvl_reactor *r)
{
	if (r->ring_ok && r->ring_defer && !r->ring_enabled) {
		/* io_uring_enable_rings() is declared by liburing 2.3's header but
		 * not exported by its library: the register opcode directly */
		int rc = (int)syscall(__NR_io_uring_register, r->ring.ring_fd,
				      IORING_REGISTER_ENABLE_RINGS, NULL, 0);

		rc = rc < 0 ? -errno : 0;

		if (rc < 0)
			NVL_ERRLOG("reactor %u: cannot enable its io_uring: %s", r->id, strerror(-rc));
		r->ring_enabled = rc == 0;
	}
}

/* ---- loop -------------------------------------------------------------- */

static int
reactor_poll_once(struct nvl_reactor *r)
{
	struct nvl_poller *p;
	int work = 0;

	TAILQ_FOREACH(p, &r->pollers, link) {
		if (!p->dead)
			work += p->fn(p->arg) > 0;
	}
	if (r->pollers_dirty)
		reactor_reap_pollers(r);
	if (r->sqe_pending) {
		io_uring_submit(&r->ring);
		r->sqe_pending = 0;
	}
	work += reactor_reap_uring(r);
	return work;
}

static bool
reactor_prepare_sleep(struct nvl_reactor *r)
{
	struct nvl_poller *p;
	int pending = 0;

	r->nap_ms = -1;
	TAILQ_FOREACH(p, &r->pollers, link) {
		if (!p->dead && p->sleep_fn)
			pending += p->sleep_fn(p->arg) > 0;
	}
	return pending == 0;
}

/* Wait up to timeout ms (0 = just look) for fd events and dispatch them. \return events seen. */
static int
reactor_poll_fds(struct nvl_reactor *r, int timeout)
{
	struct epoll_event evs[64];
	int n;

	n = epoll_wait(r->epfd, evs, NVL_ARRAY_SIZE(evs), timeout);
	for (int i = 0; i < n; i++) {
		struct nvl_fdh *h = evs[i].data.ptr;

		if (!h->dead)
			h->fn(h->arg, evs[i].events);
	}
	reactor_reap_fdhs(r);
	return n > 0 ? n : 0;
}

int
nvl_reactor_poll_once(void)
{
	struct nvl_reactor *r = t_self;
	uint64_t now;
	int work;

	if (r == NULL)
		return -EPERM;
	work = reactor_poll_once(r);
	work += reactor_run_msgs(r);
	now = nvl_now_ns();
	if (!TAILQ_EMPTY(&r->timers) && TAILQ_FIRST(&r->timers)->deadline_ns <= now)
		work += reactor_run_timers(r, now);
	work += reactor_poll_fds(r, 0);
	r->stats.loops++;
	return work;
}

void
nvl_reactor_sleep_at_most(unsigned ms)
{
	struct nvl_reactor *r = t_self;

	if (r && (r->nap_ms < 0 || ms < (unsigned)r->nap_ms))
		r->nap_ms = (int)NVL_MIN(ms, (unsigned)INT32_MAX);
}

void
nvl_reactor_yield_hint(void)
{
	if (t_self)
		t_self->yield_hint = true;
}

int
nvl_reactor_cpu_now(void)
{
	return t_self ? t_self->cpu_now : sched_getcpu();
}

/*
 * How long to spin without work before sleeping: --spin-us, except while
 * io_uring I/O is in flight whose completions come further apart than
 * --io-sleep-us (a slow device at low depth): then sleep at once, and let
 * the completion wake us. Measured on the project's VMs, a spinning vCPU
 * slows the virtual disk more than the wake-up costs (docs/performance.md).
 */
static inline uint64_t
reactor_idle_spin_ns(const struct nvl_reactor *r)
{
	uint64_t io_sleep = __atomic_load_n(&g_io_sleep_ns, __ATOMIC_RELAXED);

	if (r->uring_inflight > 0 && io_sleep && r->cpl_gap_ewma_ns >= io_sleep)
		return 0;
	return __atomic_load_n(&g_spin_ns, __ATOMIC_RELAXED);
}

static void
reactor_loop(struct nvl_reactor *r)
{
	uint64_t last_work = nvl_now_ns(), prev = last_work;
	unsigned iter = 0;

	r->cpu_now = sched_getcpu();
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		uint64_t now;
		int work, timeout = 0;
		bool poll_fds;

		work = reactor_poll_once(r);
		work += reactor_run_msgs(r);
		now = nvl_now_ns();
		if (!TAILQ_EMPTY(&r->timers) && TAILQ_FIRST(&r->timers)->deadline_ns <= now)
			work += reactor_run_timers(r, now);
		r->stats.loops++;
		if (work) {
			last_work = now;
			r->stats.busy_loops++;
			r->stats.busy_ns += now - prev;
		} else {
			r->stats.idle_ns += now - prev;
		}
		prev = now;
		/* While busy, look at fds only every 32 iterations: epoll_wait is a syscall. */
		poll_fds = (++iter & 31) == 0;
		if (!work && now - last_work >= reactor_idle_spin_ns(r)) {
			/* Sleep: pollers arm their wake-ups first. io_uring completions
			 * wake us through the eventfd registered on a DEFER_TASKRUN
			 * ring, or through the ring fd in the fallback mode. */
			if (reactor_prepare_sleep(r) && reactor_run_msgs(r) == 0 &&
			    !reactor_uring_pending(r)) {
				timeout = -1;
				if (!TAILQ_EMPTY(&r->timers)) {
					uint64_t d = TAILQ_FIRST(&r->timers)->deadline_ns;

					now = nvl_now_ns();
					timeout = d <= now ? 0 : (int)((d - now + 999999) / 1000000);
				}
				if (r->nap_ms >= 0 && (timeout < 0 || r->nap_ms < timeout))
					timeout = r->nap_ms;
			}
			poll_fds = true;
		} else if (!work && r->yield_hint) {
			/* Spinning without work while a peer we poll for runs on this
			 * CPU: let it run now rather than at the end of our slice. */
			sched_yield();
		}
		r->yield_hint = false;
		if ((iter & 1023) == 0)
			r->cpu_now = sched_getcpu();
		if (!poll_fds)
			continue;
		if (timeout != 0) {
			r->stats.sleeps++;
			work = reactor_poll_fds(r, timeout);
			/* the time asleep is neither busy nor spinning */
			now = nvl_now_ns();
			r->stats.sleep_ns += now - prev;
			prev = now;
			if (work > 0)
				last_work = now;
			continue;
		}
		if (reactor_poll_fds(r, timeout) > 0)
			last_work = nvl_now_ns();
	}
}

static void *
reactor_thread(void *arg)
{
	struct nvl_reactor *r = arg;
	char name[16];

	t_self = r;
	r->tid = (int)syscall(SYS_gettid);
	/* top -H, ps -L and /proc/PID/task/TID/comm show which thread is which;
	 * the main thread keeps the program's name (pgrep, killall, ps) */
	if (r->tid != getpid()) {
		snprintf(name, sizeof(name), "reactor_%u", r->id % 1000u);
		pthread_setname_np(pthread_self(), name);
	}
	reactor_ring_enable(r);
	if (r->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(r->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
			NVL_WARNLOG("reactor %u: cannot pin to CPU %d", r->id, r->cpu);
	}
	NVL_DEBUGLOG(reactor, "reactor %u running on tid %d cpu %d", r->id, r->tid, r->cpu);
	reactor_loop(r);
	return NULL;
}

static void
reactor_destroy(struct nvl_reactor *r)
{
	struct nvl_poller *p;
	struct nvl_timer *t;
	struct nvl_fdh *h;

	if (r == NULL)
		return;
	while ((p = TAILQ_FIRST(&r->pollers)) != NULL) {
		if (!p->dead)
			NVL_WARNLOG("reactor %u: poller '%s' still registered at exit", r->id,
				    p->name ? p->name : "?");
		TAILQ_REMOVE(&r->pollers, p, link);
		free(p);
	}
	while ((t = TAILQ_FIRST(&r->timers)) != NULL) {
		TAILQ_REMOVE(&r->timers, t, link);
		free(t);
	}
	while ((t = TAILQ_FIRST(&r->timers_idle)) != NULL) {
		TAILQ_REMOVE(&r->timers_idle, t, link);
		free(t);
	}
	while ((h = TAILQ_FIRST(&r->fdhs)) != NULL) {
		TAILQ_REMOVE(&r->fdhs, h, link);
		free(h);
	}
	reactor_reap_fdhs(r);
	if (r->ring_ok)
		io_uring_queue_exit(&r->ring);
	if (r->ring_efd >= 0)
		close(r->ring_efd);
	if (r->msg_efd >= 0)
		close(r->msg_efd);
	if (r->epfd >= 0)
		close(r->epfd);
	pthread_mutex_destroy(&r->inbox_lock);
	free(r->inbox);
	free(r->work);
	free(r);
}

static int
reactor_create(unsigned id, int cpu, struct nvl_reactor **out)
{
	struct nvl_reactor *r;
	struct io_uring_params p;
	int rc;

	r = aligned_alloc(NVL_CACHE_LINE, NVL_ALIGN_UP(sizeof(*r), NVL_CACHE_LINE));
	if (r == NULL)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	r->id = id;
	r->cpu = cpu;
	r->epfd = -1;
	r->msg_efd = -1;
	r->ring_efd = -1;
	TAILQ_INIT(&r->pollers);
	TAILQ_INIT(&r->timers);
	TAILQ_INIT(&r->timers_idle);
	TAILQ_INIT(&r->fdhs);
	TAILQ_INIT(&r->dead_fdhs);
	pthread_mutex_init(&r->inbox_lock, NULL);

	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0) {
		rc = -errno;
		goto err_destroy;
	}
	r->msg_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->msg_efd < 0) {
		rc = -errno;
		goto err_destroy;
	}
	r->msg_fdh = reactor_fd_add(r, r->msg_efd, EPOLLIN, reactor_msg_efd_cb, r, false);
	if (r->msg_fdh == NULL) {
		rc = -errno;
		goto err_destroy;
	}
	/*
	 * Preferred: DEFER_TASKRUN (+ SINGLE_ISSUER, TASKRUN_FLAG). Completions
	 * then never interrupt the reactor with task-work signals (an IPI into a
	 * spinning vCPU costs several microseconds in a VM); the loop runs them
	 * when the kernel flags IORING_SQ_TASKRUN in the shared SQ ring, and a
	 * registered eventfd wakes the reactor if it sleeps. The ring starts
	 * disabled and is enabled by the reactor's own thread (the single issuer).
	 * Older kernels: the default mode, where completions wake us through the
	 * ring fd (not COOP_TASKRUN: that would leave them pending while we sleep).
	 */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		  IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_R_DISABLED;
	rc = io_uring_queue_init_params(g_uring_entries, &r->ring, &p);
	if (rc == 0) {
		r->ring_defer = true;
		r->ring_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (r->ring_efd < 0 || io_uring_register_eventfd(&r->ring, r->ring_efd) < 0) {
			io_uring_queue_exit(&r->ring);
			if (r->ring_efd >= 0)
				close(r->ring_efd);
			r->ring_efd = -1;
			r->ring_defer = false;
			rc = -1;
		}
	}
	if (rc < 0) {
		memset(&p, 0, sizeof(p));
		rc = io_uring_queue_init_params(g_uring_entries, &r->ring, &p);
	}
	if (rc < 0) {
		NVL_WARNLOG("reactor %u: io_uring unavailable (%s); file bdevs will fail", id,
			    strerror(-rc));
	} else {
		r->ring_ok = true;
		r->ring_fdh = reactor_fd_add(r, r->ring_defer ? r->ring_efd : r->ring.ring_fd,
					     r->ring_defer ? EPOLLIN | EPOLLET : EPOLLIN,
					     reactor_ring_fd_cb, r, false);
		if (r->ring_fdh == NULL) {
			rc = -errno;
			goto err_destroy;
		}
	}
	*out = r;
	return 0;
err_destroy:
	reactor_destroy(r);
	return rc;
}

int
nvl_reactors_init(const struct nvl_reactor_opts *o)
{
	int rc;

	if (o->count == 0 || o->count > NVL_REACTOR_MAX)
		return -EINVAL;
	g_spin_ns = o->spin_us * 1000;
	g_io_sleep_ns = o->io_sleep_us * 1000;
	if (o->uring_entries)
		g_uring_entries = o->uring_entries;
	for (unsigned i = 0; i < o->count; i++) {
		rc = reactor_create(i, o->cpus[i], &g_reactors[i]);
		if (rc < 0) {
			g_nreactors = i;
			nvl_reactors_fini();
			return rc;
		}
	}
	g_nreactors = o->count;
	memset(g_placed, 0, sizeof(g_placed));
	/* The caller's thread is reactor 0 from now on, so it can register things. */
	t_self = g_reactors[0];
	reactor_ring_enable(g_reactors[0]);
	g_reactors[0]->tid = (int)syscall(SYS_gettid);
	return 0;
}

int
nvl_reactors_run(void)
{
	struct nvl_reactor *r0 = g_reactors[0];
	int rc = 0;

	for (unsigned i = 1; i < g_nreactors; i++) {
		struct nvl_reactor *r = g_reactors[i];
		int e = pthread_create(&r->thread, NULL, reactor_thread, r);

		if (e != 0) {
			NVL_ERRLOG("cannot start reactor %u: %s", i, strerror(e));
			nvl_reactors_stop();
			rc = -e;
			break;
		}
		r->thread_started = true;
	}
	if (rc == 0)
		reactor_thread(r0);
	for (unsigned i = 1; i < g_nreactors; i++) {
		if (g_reactors[i]->thread_started) {
			pthread_join(g_reactors[i]->thread, NULL);
			g_reactors[i]->thread_started = false;
		}
	}
	t_self = r0;
	return rc;
}

static void
reactor_stop_msg(void *arg)
{
	((struct nvl_reactor *)arg)->stop = true;
}

void
nvl_reactors_stop(void)
{
	for (unsigned i = 0; i < g_nreactors; i++) {
		struct nvl_reactor *r = g_reactors[i];

		__atomic_store_n(&r->stop, true, __ATOMIC_RELEASE);
		/* wake it if it sleeps */
		nvl_reactor_msg(r, reactor_stop_msg, r);
	}
}

void
nvl_reactors_fini(void)
{
	for (unsigned i = 0; i < g_nreactors; i++) {
		struct nvl_reactor *r = g_reactors[i];

		/* run what is left in the inbox so senders' resources are released */
		if (r) {
			t_self = r;
			reactor_run_msgs(r);
		}
		reactor_destroy(r);
		g_reactors[i] = NULL;
	}
	g_nreactors = 0;
	t_self = NULL;
}
