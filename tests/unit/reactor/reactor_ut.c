/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of src/reactor/reactor.c: CPU lists, timers (order, periodic,
 * destroy from inside callbacks), pollers (destroy/create from inside),
 * fd handlers, io_uring ops, sleep hooks and wake-ups of the real loop,
 * messages between two reactor threads. Each test creates its reactors and
 * destroys them; most drive reactor 0 with nvl_reactor_poll_once().
 */
#include "reactor/reactor.c"
#include "common/ut.h"

#include <sys/stat.h>

static int
setup_one(void **state)
{
	(void)state;
	return ut_reactors_init(1);
}

static int
teardown_all(void **state)
{
	(void)state;
	nvl_reactors_fini();
	return 0;
}

/* ---- CPU lists ----------------------------------------------------------- */

static void
test_parse_cpus(void **state)
{
	static const struct {
		const char *in;
		int rc;
		unsigned count;
		int cpus[4];
	} cases[] = {
		{ "0", 0, 1, { 0 } },
		{ "3", 0, 1, { 3 } },
		{ "0-3", 0, 4, { 0, 1, 2, 3 } },
		{ "0,2,4-5", 0, 4, { 0, 2, 4, 5 } },
		{ "1-1", 0, 1, { 1 } },
		{ "0-63", 0, 64, { 0, 1, 2, 3 } },
		{ "0-64", -E2BIG, 0, { 0 } },
		{ "", -EINVAL, 0, { 0 } },
		{ "a", -EINVAL, 0, { 0 } },
		{ "-1", -EINVAL, 0, { 0 } },
		{ "3-1", -EINVAL, 0, { 0 } },
		{ "0-", -EINVAL, 0, { 0 } },
		{ "0,,1", -EINVAL, 0, { 0 } },
		{ "0,", -EINVAL, 0, { 0 } },
		{ ",0", -EINVAL, 0, { 0 } },
		{ "0 1", -EINVAL, 0, { 0 } },
		{ "4096", -EINVAL, 0, { 0 } },
		{ "99999999999999999999", -EINVAL, 0, { 0 } },
		/* SPDK's forms: a mask and a bracketed list */
		{ "0x1", 0, 1, { 0 } },
		{ "0x3", 0, 2, { 0, 1 } },
		{ "0XA", 0, 2, { 1, 3 } },
		{ "0x110", 0, 2, { 4, 8 } },
		{ "0xffffffffffffffff", 0, 64, { 0, 1, 2, 3 } },
		{ "0x1ffffffffffffffff", -EINVAL, 0, { 0 } },
		{ "0x0", -EINVAL, 0, { 0 } },
		{ "0x", -EINVAL, 0, { 0 } },
		{ "0xg", -EINVAL, 0, { 0 } },
		{ "[0]", 0, 1, { 0 } },
		{ "[0,2-3]", 0, 3, { 0, 2, 3 } },
		{ "[]", -EINVAL, 0, { 0 } },
		{ "[0", -EINVAL, 0, { 0 } },
		{ "[0]]", -EINVAL, 0, { 0 } },
	};

	(void)state;
	for (size_t i = 0; i < UT_N(cases); i++) {
		struct nvl_reactor_opts o;
		int rc;

		nvl_reactor_opts_default(&o);
		rc = nvl_reactor_parse_cpus(cases[i].in, &o);
		if (rc != cases[i].rc)
			fail_msg("parse_cpus(\"%s\"): rc %d, expected %d", cases[i].in, rc,
				 cases[i].rc);
		if (rc == 0) {
			assert_int_equal(o.count, cases[i].count);
			for (unsigned k = 0; k < 4 && k < o.count; k++)
				assert_int_equal(o.cpus[k], cases[i].cpus[k]);
		}
	}
}

static void
test_init_bounds(void **state)
{
	struct nvl_reactor_opts o;

	(void)state;
	nvl_reactor_opts_default(&o);
	assert_int_equal(o.count, 1);
	assert_int_equal(o.cpus[0], -1);
	o.count = 0;
	assert_int_equal(nvl_reactors_init(&o), -EINVAL);
	o.count = NVL_REACTOR_MAX + 1;
	assert_int_equal(nvl_reactors_init(&o), -EINVAL);
	/* off-reactor: every registration refuses */
	assert_null(nvl_reactor_self());
	assert_int_equal(nvl_reactor_poll_once(), -EPERM);
	assert_null(nvl_poller_create((nvl_poller_fn)abort, NULL, "x"));
	assert_null(nvl_timer_create((nvl_timer_fn)abort, NULL, 0, 0));
	assert_null(nvl_uring_sqe());
	errno = 0;
	assert_null(nvl_fd_add(0, EPOLLIN, (nvl_fd_fn)abort, NULL));
	assert_int_equal(errno, EPERM);
	assert_int_equal(nvl_uring_flush(), 0);
}

/* ---- timers -------------------------------------------------------------- */

static int g_order[16];
static int g_norder;

static void
timer_record(void *arg)
{
	g_order[g_norder++] = (int)(intptr_t)arg;
}

static void
test_timers_fire_in_order(void **state)
{
	struct nvl_timer *t[5];

	(void)state;
	g_norder = 0;
	t[0] = nvl_timer_create(timer_record, (void *)3, 30000, 0);
	t[1] = nvl_timer_create(timer_record, (void *)1, 10000, 0);
	t[2] = nvl_timer_create(timer_record, (void *)2, 20000, 0);
	t[3] = nvl_timer_create(timer_record, (void *)11, 10000, 0); /* same deadline: FIFO */
	t[4] = nvl_timer_create(timer_record, (void *)0, 0, 0);
	for (int i = 0; i < 5; i++)
		assert_non_null(t[i]);
	assert_true(UT_POLL_UNTIL(g_norder == 5, 2000));
	assert_int_equal(g_order[0], 0);
	assert_int_equal(g_order[1], 1);
	assert_int_equal(g_order[2], 11);
	assert_int_equal(g_order[3], 2);
	assert_int_equal(g_order[4], 3);
	/* fired one-shots stay valid handles until destroyed */
	for (int i = 0; i < 5; i++)
		nvl_timer_destroy(t[i]);
	nvl_timer_destroy(NULL);
}

static void
test_timer_not_early(void **state)
{
	uint64_t start = nvl_now_ns();

	(void)state;
	g_norder = 0;
	nvl_timer_destroy(nvl_timer_create(timer_record, (void *)9, 5000, 0)); /* cancelled */
	struct nvl_timer *t = nvl_timer_create(timer_record, (void *)1, 20000, 0);

	assert_true(UT_POLL_UNTIL(g_norder == 1, 2000));
	assert_true(nvl_now_ns() - start >= 20000000ULL);
	assert_int_equal(g_order[0], 1);
	ut_poll_for(10);
	assert_int_equal(g_norder, 1); /* the cancelled one never fired */
	nvl_timer_destroy(t);
}

struct periodic {
	struct nvl_timer *t;
	int fired;
	int stop_at;
};

static void
periodic_cb(void *arg)
{
	struct periodic *p = arg;

	if (++p->fired == p->stop_at)
		nvl_timer_destroy(p->t); /* from inside its own callback */
}

static void
test_periodic_timer(void **state)
{
	struct periodic p = { .stop_at = 5 };
	uint64_t start = nvl_now_ns();

	(void)state;
	p.t = nvl_timer_create(periodic_cb, &p, 1000, 2000);
	assert_non_null(p.t);
	assert_true(UT_POLL_UNTIL(p.fired == 5, 2000));
	/* 1 ms + 4 periods of 2 ms at least */
	assert_true(nvl_now_ns() - start >= 9000000ULL);
	ut_poll_for(20);
	assert_int_equal(p.fired, 5);
}

struct killer {
	struct nvl_timer *self;
	struct nvl_timer *victim;
	int fired;
};

static void
killer_cb(void *arg)
{
	struct killer *k = arg;

	k->fired++;
	nvl_timer_destroy(k->victim); /* a pending timer of the same reactor */
	k->victim = NULL;
	nvl_timer_destroy(k->self);   /* and itself, a one-shot being run */
}

static void
new_timer_cb(void *arg)
{
	int *n = arg;

	if (++*n == 1) {
		/* a zero-delay timer created from a callback runs later, not in this pass */
		assert_non_null(nvl_timer_create(new_timer_cb, n, 0, 0));
		assert_int_equal(*n, 1);
	}
}

static void
test_timer_destroy_inside(void **state)
{
	struct killer k = { 0 };
	int n = 0;

	(void)state;
	g_norder = 0;
	k.victim = nvl_timer_create(timer_record, (void *)7, 5000, 0);
	k.self = nvl_timer_create(killer_cb, &k, 1000, 0);
	assert_true(UT_POLL_UNTIL(k.fired == 1, 2000));
	ut_poll_for(15);
	assert_int_equal(g_norder, 0);
	assert_int_equal(k.fired, 1);

	assert_non_null(nvl_timer_create(new_timer_cb, &n, 0, 0));
	assert_true(UT_POLL_UNTIL(n == 2, 2000));
	/* the two fired one-shots were never destroyed: the reactor frees them */
}

/* ---- pollers ------------------------------------------------------------- */

struct pstate {
	struct nvl_poller *p;
	struct nvl_poller *other;
	int calls;
	int die_at;
	int created;
};

static int
poll_count(void *arg)
{
	struct pstate *s = arg;

	s->calls++;
	return 0;
}

static int
poll_self_destroy(void *arg)
{
	struct pstate *s = arg;

	if (++s->calls == s->die_at) {
		nvl_poller_destroy(s->p);
		nvl_poller_destroy(s->other); /* and a neighbour */
		s->other = NULL;
	}
	return 1;
}

static int
poll_creator(void *arg)
{
	struct pstate *s = arg;

	s->calls++;
	if (!s->created) {
		s->created = 1;
		s->other = nvl_poller_create(poll_count, s + 1, "child");
		assert_non_null(s->other);
	}
	return 0;
}

static void
test_pollers(void **state)
{
	struct pstate a = { .die_at = 3 }, b = { 0 };
	struct pstate c[2] = { { 0 } };
	struct nvl_reactor_stats st;

	(void)state;
	a.p = nvl_poller_create(poll_self_destroy, &a, "a");
	b.p = nvl_poller_create(poll_count, &b, "b");
	a.other = b.p;
	assert_non_null(a.p);
	assert_non_null(b.p);
	nvl_reactor_get_stats(nvl_reactor_self(), &st);
	assert_int_equal(st.pollers, 2);
	for (int i = 0; i < 10; i++)
		nvl_reactor_poll_once();
	assert_int_equal(a.calls, 3);
	/* b ran in the iterations before a killed it, and not after */
	assert_int_equal(b.calls, 2);
	nvl_reactor_get_stats(nvl_reactor_self(), &st);
	assert_int_equal(st.pollers, 0);

	c[0].p = nvl_poller_create(poll_creator, &c[0], "creator");
	for (int i = 0; i < 5; i++)
		nvl_reactor_poll_once();
	assert_int_equal(c[0].calls, 5);
	assert_true(c[1].calls >= 4);
	nvl_poller_destroy(c[0].other);
	nvl_poller_destroy(c[0].p);
	nvl_poller_destroy(NULL);
	nvl_reactor_poll_once();
	nvl_reactor_get_stats(nvl_reactor_self(), &st);
	assert_int_equal(st.pollers, 0);
}

/* ---- fd handlers --------------------------------------------------------- */

struct fdstate {
	struct nvl_fdh *h;
	int fd;
	int calls;
	int del_at;
};

static void
fd_cb(void *arg, uint32_t events)
{
	struct fdstate *s = arg;
	char b[64];

	assert_true(events & EPOLLIN);
	(void)!read(s->fd, b, sizeof(b));
	if (++s->calls == s->del_at)
		nvl_fd_del(s->h);
}

static void
test_fd_handlers(void **state)
{
	struct fdstate s = { .del_at = 2 };
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	s.fd = p[0];
	s.h = nvl_fd_add(p[0], EPOLLIN, fd_cb, &s);
	assert_non_null(s.h);
	ut_poll_for(2);
	assert_int_equal(s.calls, 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_true(UT_POLL_UNTIL(s.calls == 1, 1000));
	assert_int_equal(write(p[1], "y", 1), 1);
	assert_true(UT_POLL_UNTIL(s.calls == 2, 1000));
	/* deleted from inside its callback: no more events */
	assert_int_equal(write(p[1], "z", 1), 1);
	ut_poll_for(5);
	assert_int_equal(s.calls, 2);
	/* the same fd twice is refused by epoll */
	s.h = nvl_fd_add(p[0], EPOLLIN, fd_cb, &s);
	assert_non_null(s.h);
	assert_null(nvl_fd_add(p[0], EPOLLIN, fd_cb, &s));
	assert_int_equal(errno, EEXIST);
	assert_int_equal(nvl_fd_mod(s.h, 0), 0);
	ut_poll_for(5);
	assert_int_equal(s.calls, 2); /* masked: byte "z" is pending but not reported */
	nvl_fd_del(s.h);
	nvl_fd_del(NULL);
	close(p[0]);
	close(p[1]);
}

/* ---- io_uring ------------------------------------------------------------ */

struct uop {
	struct nvl_uring_op op;
	int res;
	int done;
	int chain; /* submit another nop from the callback this many times */
};

static void
uop_cb(struct nvl_uring_op *op, int res)
{
	struct uop *u = container_of(op, struct uop, op);

	u->res = res;
	u->done++;
	if (u->chain > 0) {
		struct io_uring_sqe *sqe = nvl_uring_sqe();

		u->chain--;
		assert_non_null(sqe);
		io_uring_prep_nop(sqe);
		nvl_uring_op_set(sqe, &u->op);
	}
}

static void
test_uring_ops(void **state)
{
	struct uop nop = { .op.cb = uop_cb, .res = -1 };
	struct uop rd = { .op.cb = uop_cb, .res = -1 };
	struct uop chain = { .op.cb = uop_cb, .chain = 3 };
	struct uop *many;
	struct io_uring_sqe *sqe;
	char path[PATH_MAX], buf[4096];
	int fd, total = 1000;

	(void)state;
	sqe = nvl_uring_sqe();
	assert_non_null(sqe);
	io_uring_prep_nop(sqe);
	nvl_uring_op_set(sqe, &nop.op);
	assert_true(UT_POLL_UNTIL(nop.done == 1, 2000));
	assert_int_equal(nop.res, 0);

	fd = ut_tmpfile("/tmp", 0, path);
	assert_int_equal(pwrite(fd, "hello uring", 11, 4096), 11);
	memset(buf, 0xaa, sizeof(buf));
	sqe = nvl_uring_sqe();
	io_uring_prep_read(sqe, fd, buf, sizeof(buf), 4096);
	nvl_uring_op_set(sqe, &rd.op);
	assert_int_equal(nvl_uring_flush(), 0); /* explicit submit is harmless */
	assert_true(UT_POLL_UNTIL(rd.done == 1, 2000));
	assert_int_equal(rd.res, 11);
	assert_memory_equal(buf, "hello uring", 11);
	/* errors come back as -errno */
	rd.done = 0;
	sqe = nvl_uring_sqe();
	io_uring_prep_read(sqe, -1, buf, sizeof(buf), 0);
	nvl_uring_op_set(sqe, &rd.op);
	assert_true(UT_POLL_UNTIL(rd.done == 1, 2000));
	assert_int_equal(rd.res, -EBADF);
	close(fd);
	unlink(path);

	/* callbacks may queue more work */
	sqe = nvl_uring_sqe();
	io_uring_prep_nop(sqe);
	nvl_uring_op_set(sqe, &chain.op);
	assert_true(UT_POLL_UNTIL(chain.done == 4, 2000));

	/* more ops than the ring has entries: nvl_uring_sqe flushes when full */
	many = calloc((size_t)total, sizeof(*many));
	for (int i = 0; i < total; i++) {
		many[i].op.cb = uop_cb;
		sqe = nvl_uring_sqe();
		assert_non_null(sqe);
		io_uring_prep_nop(sqe);
		nvl_uring_op_set(sqe, &many[i].op);
	}
	assert_true(UT_POLL_UNTIL(nvl_reactor_self()->uring_inflight == 0, 5000));
	for (int i = 0; i < total; i++)
		assert_int_equal(many[i].done, 1);
	free(many);
}

/* ---- the real loop: sleep hooks, wake-ups -------------------------------- */

struct sleeper {
	int polls;
	int hooks;
	int hook_rc;
};

static int
idle_poller(void *arg)
{
	((struct sleeper *)arg)->polls++;
	return 0;
}

static int
sleep_hook(void *arg)
{
	struct sleeper *s = arg;

	s->hooks++;
	return s->hook_rc;
}

static int
nap_hook(void *arg)
{
	struct sleeper *s = arg;

	s->hooks++;
	nvl_reactor_sleep_at_most(1);
	return 0;
}

static void
stop_cb(void *arg)
{
	(void)arg;
	nvl_reactors_stop();
}

static void
run_loop_with_hook(struct sleeper *s, struct nvl_reactor_stats *st, nvl_sleep_fn hook)
{
	struct nvl_poller *p;
	struct nvl_timer *t;

	assert_int_equal(ut_reactors_init(1), 0);
	p = nvl_poller_create(idle_poller, s, "idle");
	nvl_poller_set_sleep_hook(p, hook);
	t = nvl_timer_create(stop_cb, NULL, 30000, 0);
	assert_int_equal(nvl_reactors_run(), 0);
	nvl_reactor_get_stats(nvl_reactor_get(0), st);
	nvl_poller_destroy(p);
	nvl_timer_destroy(t);
	nvl_reactors_fini();
}

static void
test_sleep_hooks(void **state)
{
	struct sleeper s = { 0 };
	struct nvl_reactor_stats st;

	(void)state;
	/* idle with spin 0: the hook runs before each sleep, the reactor sleeps */
	run_loop_with_hook(&s, &st, sleep_hook);
	assert_true(s.hooks >= 1);
	assert_true(st.sleeps >= 1);
	/* sleeping means few iterations in 30 ms, not a spin */
	assert_true(st.loops < 1000);

	/* a hook that reports pending work keeps the reactor awake */
	memset(&s, 0, sizeof(s));
	s.hook_rc = 1;
	run_loop_with_hook(&s, &st, sleep_hook);
	assert_true(s.hooks > 100);
	assert_int_equal(st.sleeps, 0);
	assert_true(st.loops > 100);

	/* a hook that allows only short sleeps (nvl_reactor_sleep_at_most): the
	 * reactor sleeps, but wakes by itself and asks again; without the bound it
	 * would sleep once, until the 30 ms stop timer */
	memset(&s, 0, sizeof(s));
	run_loop_with_hook(&s, &st, nap_hook);
	assert_true(s.hooks >= 5);
	assert_true(st.sleeps >= 5);
	assert_true(st.loops < 10000);
}

/* A chain of 300 us io_uring timeouts: file I/O that completes slowly. */
struct slow_io {
	struct nvl_uring_op op;
	struct __kernel_timespec ts;
	int left;
};

static void
slow_io_submit(struct slow_io *io)
{
	struct io_uring_sqe *sqe = nvl_uring_sqe();

	assert_non_null(sqe);
	io_uring_prep_timeout(sqe, &io->ts, 0, 0);
	nvl_uring_op_set(sqe, &io->op);
}

static void
slow_io_cb(struct nvl_uring_op *op, int res)
{
	struct slow_io *io = container_of(op, struct slow_io, op);

	assert_int_equal(res, -ETIME);
	if (--io->left > 0)
		slow_io_submit(io);
	else
		nvl_reactors_stop();
}

static void
run_slow_io(uint64_t io_sleep_us, struct nvl_reactor_stats *st)
{
	struct slow_io io = { .op.cb = slow_io_cb, .ts.tv_nsec = 300000, .left = 40 };

	assert_int_equal(ut_reactors_init(1), 0);
	nvl_reactor_set_spin_us(10000000); /* only the io sleep rule can put it to sleep */
	nvl_reactor_set_io_sleep_us(io_sleep_us);
	slow_io_submit(&io);
	assert_int_equal(nvl_reactors_run(), 0);
	assert_int_equal(io.left, 0);
	nvl_reactor_get_stats(nvl_reactor_get(0), st);
	nvl_reactors_fini();
	nvl_reactor_set_spin_us(0);
	nvl_reactor_set_io_sleep_us(20);
}

static void
test_io_sleep(void **state)
{
	struct nvl_reactor_stats st;

	(void)state;
	/* completions 300 us apart, rule at 20 us: after the first few (the
	 * average starts from the first gap) it sleeps while each one is in flight */
	run_slow_io(20, &st);
	assert_true(st.sleeps >= 30);
	/* rule off: with a 10 s spin the reactor never sleeps */
	run_slow_io(0, &st);
	assert_int_equal(st.sleeps, 0);
	/* rule above the device's pace: spins too */
	run_slow_io(5000, &st);
	assert_int_equal(st.sleeps, 0);
}

struct waker {
	struct nvl_reactor *r;
	uint64_t sent_ns;
	uint64_t ran_ns;
};

static void
woken(void *arg)
{
	struct waker *w = arg;

	w->ran_ns = nvl_now_ns();
	nvl_reactors_stop();
}

static void *
waker_thread(void *arg)
{
	struct waker *w = arg;

	usleep(50000); /* let the reactor fall asleep */
	w->sent_ns = nvl_now_ns();
	assert_int_equal(nvl_reactor_msg(w->r, woken, w), 0);
	return NULL;
}

static void
test_message_wakes_sleeper(void **state)
{
	struct waker w = { 0 };
	struct nvl_reactor_stats st;
	pthread_t th;

	(void)state;
	assert_int_equal(ut_reactors_init(1), 0);
	w.r = nvl_reactor_get(0);
	pthread_create(&th, NULL, waker_thread, &w);
	/* no timers, no pollers: only the message can end this */
	assert_int_equal(nvl_reactors_run(), 0);
	pthread_join(th, NULL);
	nvl_reactor_get_stats(nvl_reactor_get(0), &st);
	assert_true(st.sleeps >= 1);
	assert_true(w.ran_ns >= w.sent_ns);
	assert_true(w.ran_ns - w.sent_ns < 1000000000ULL);
	nvl_reactors_fini();
}

/* ---- messages between two reactors --------------------------------------- */

#define PINGS 2000
#define BURST 500

struct pingpong {
	int pongs;
	int burst_seen;
	int burst_bad;
	int wrong_thread;
	struct nvl_timer *guard;
};
static struct pingpong g_pp;

static void pong(void *arg);

static void
ping(void *arg)
{
	if (nvl_reactor_self() != nvl_reactor_get(1))
		g_pp.wrong_thread++;
	assert_int_equal(nvl_reactor_msg(nvl_reactor_get(0), pong, arg), 0);
}

static void
burst_item(void *arg)
{
	int seq = (int)(intptr_t)arg;

	if (nvl_reactor_self() != nvl_reactor_get(1))
		g_pp.wrong_thread++;
	if (seq != g_pp.burst_seen)
		g_pp.burst_bad++;
	g_pp.burst_seen++;
}

static void
pong(void *arg)
{
	intptr_t n = (intptr_t)arg;

	if (nvl_reactor_self() != nvl_reactor_get(0))
		g_pp.wrong_thread++;
	g_pp.pongs++;
	if (n + 1 < PINGS) {
		assert_int_equal(nvl_reactor_msg(nvl_reactor_get(1), ping, (void *)(n + 1)), 0);
		return;
	}
	/* FIFO per sender: a burst arrives in order */
	for (intptr_t i = 0; i < BURST; i++)
		assert_int_equal(nvl_reactor_msg(nvl_reactor_get(1), burst_item, (void *)i), 0);
	/* the stop message queues behind the burst on reactor 1 */
	nvl_reactors_stop();
}

static void
guard_cb(void *arg)
{
	(void)arg;
	g_pp.guard = NULL;
	nvl_reactors_stop(); /* never hang the suite */
}

static void
test_two_reactors_messages(void **state)
{
	struct nvl_reactor_stats st0, st1;

	(void)state;
	memset(&g_pp, 0, sizeof(g_pp));
	assert_int_equal(ut_reactors_init(2), 0);
	assert_int_equal(nvl_reactor_count(), 2);
	assert_int_equal(nvl_reactor_id(nvl_reactor_get(1)), 1);
	assert_null(nvl_reactor_get(2));
	g_pp.guard = nvl_timer_create(guard_cb, NULL, 10000000, 0);
	assert_int_equal(nvl_reactor_msg(nvl_reactor_get(1), ping, (void *)0), 0);
	assert_int_equal(nvl_reactors_run(), 0);
	nvl_timer_destroy(g_pp.guard);
	nvl_reactor_get_stats(nvl_reactor_get(0), &st0);
	nvl_reactor_get_stats(nvl_reactor_get(1), &st1);
	assert_int_equal(g_pp.pongs, PINGS);
	assert_true(st0.msgs >= PINGS);
	assert_true(st1.msgs >= PINGS);
	assert_true(st1.tid > 0 && st1.tid != st0.tid);
	/* stop does not wait for queued messages; fini delivers what is left */
	nvl_reactors_fini();
	assert_int_equal(g_pp.wrong_thread, 0);
	assert_int_equal(g_pp.burst_seen, BURST);
	assert_int_equal(g_pp.burst_bad, 0);
}

static int g_leftover;

static void
leftover_cb(void *arg)
{
	(void)arg;
	g_leftover++;
}

static void
test_fini_runs_leftover_messages(void **state)
{
	(void)state;
	g_leftover = 0;
	assert_int_equal(ut_reactors_init(2), 0);
	assert_int_equal(nvl_reactor_msg(nvl_reactor_get(1), leftover_cb, NULL), 0);
	assert_int_equal(nvl_reactor_msg(nvl_reactor_get(0), leftover_cb, NULL), 0);
	nvl_reactors_fini(); /* never ran: fini still delivers them (senders free things) */
	assert_int_equal(g_leftover, 2);
	assert_int_equal(nvl_reactor_count(), 0);
	assert_null(nvl_reactor_self());
}

static void
test_spin_setting(void **state)
{
	(void)state;
	nvl_reactor_set_spin_us(123);
	assert_int_equal(nvl_reactor_get_spin_us(), 123);
	nvl_reactor_set_spin_us(0);
	assert_int_equal(nvl_reactor_get_spin_us(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_cpus),
		cmocka_unit_test(test_init_bounds),
		cmocka_unit_test_setup_teardown(test_timers_fire_in_order, setup_one, teardown_all),
		cmocka_unit_test_setup_teardown(test_timer_not_early, setup_one, teardown_all),
		cmocka_unit_test_setup_teardown(test_periodic_timer, setup_one, teardown_all),
		cmocka_unit_test_setup_teardown(test_timer_destroy_inside, setup_one, teardown_all),
		cmocka_unit_test_setup_teardown(test_pollers, setup_one, teardown_all),
		cmocka_unit_test_setup_teardown(test_fd_handlers, setup_one, teardown_all),
		cmocka_unit_test_setup_teardown(test_uring_ops, setup_one, teardown_all),
		cmocka_unit_test(test_sleep_hooks),
		cmocka_unit_test(test_io_sleep),
		cmocka_unit_test(test_message_wakes_sleeper),
		cmocka_unit_test(test_two_reactors_messages),
		cmocka_unit_test(test_fini_runs_leftover_messages),
		cmocka_unit_test(test_spin_setting),
	};

	return UT_RUN(tests);
}
