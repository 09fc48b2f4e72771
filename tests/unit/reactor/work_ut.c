/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the reactor's placement (nvl_reactor_pick/unpick in
 * reactor.c) and of work.c: nvl_reactor_for_each() visits every reactor in
 * its own thread and completes on the caller's reactor, never inside the
 * call; nvl_reactor_drain() finishes once the condition holds, from the
 * loop.
 */
#include "reactor/reactor.c"
#include "reactor/work.c"
#include "common/ut.h"

static int
teardown(void **state)
{
	(void)state;
	nvl_reactors_fini();
	return 0;
}

static void
test_pick_alone(void **state)
{
	struct nvl_reactor_stats st;

	(void)state;
	assert_null(nvl_reactor_pick()); /* no reactors yet */
	assert_int_equal(ut_reactors_init(1), 0);
	assert_ptr_equal(nvl_reactor_pick(), nvl_reactor_get(0));
	assert_ptr_equal(nvl_reactor_pick(), nvl_reactor_get(0));
	nvl_reactor_get_stats(nvl_reactor_get(0), &st);
	assert_int_equal(st.placed, 2);
	nvl_reactor_unpick(nvl_reactor_get(0));
	nvl_reactor_unpick(nvl_reactor_get(0));
	nvl_reactor_unpick(NULL);
	nvl_reactor_get_stats(nvl_reactor_get(0), &st);
	assert_int_equal(st.placed, 0);
	/* more given back than placed: logged, and the count stays sane */
	nvl_reactor_unpick(nvl_reactor_get(0));
	nvl_reactor_get_stats(nvl_reactor_get(0), &st);
	assert_int_equal(st.placed, 0);
}

static void
test_pick_spreads(void **state)
{
	unsigned seen[4] = { 0 };
	struct nvl_reactor *r[8];
	struct nvl_reactor_stats st;

	(void)state;
	assert_int_equal(ut_reactors_init(4), 0);
	/* reactor 0 is left alone; the others take turns */
	for (int i = 0; i < 6; i++) {
		r[i] = nvl_reactor_pick();
		seen[nvl_reactor_id(r[i])]++;
	}
	assert_int_equal(seen[0], 0);
	assert_int_equal(seen[1], 2);
	assert_int_equal(seen[2], 2);
	assert_int_equal(seen[3], 2);
	/* reactor 2's queues went: it gets the next two, whatever the turn */
	nvl_reactor_unpick(nvl_reactor_get(2));
	nvl_reactor_unpick(nvl_reactor_get(2));
	assert_ptr_equal(nvl_reactor_pick(), nvl_reactor_get(2));
	assert_ptr_equal(nvl_reactor_pick(), nvl_reactor_get(2));
	nvl_reactor_get_stats(nvl_reactor_get(2), &st);
	assert_int_equal(st.placed, 2);
	/* a fresh set of reactors starts from zero */
	nvl_reactors_fini();
	assert_int_equal(ut_reactors_init(2), 0);
	nvl_reactor_get_stats(nvl_reactor_get(1), &st);
	assert_int_equal(st.placed, 0);
}

/* ---- for each ------------------------------------------------------------- */

static struct {
	unsigned visited;        /* atomic bit per reactor */
	unsigned wrong;
	int done_rc;
	int done_calls;
	bool done_on_home;
	bool in_call;
} g_fe;

static void
fe_visit(void *arg)
{
	struct nvl_reactor *r = nvl_reactor_self();

	(void)arg;
	if (r == NULL) {
		g_fe.wrong++;
		return;
	}
	__atomic_fetch_or(&g_fe.visited, 1u << nvl_reactor_id(r), __ATOMIC_RELAXED);
}

static void
fe_done(void *arg, int rc)
{
	g_fe.done_rc = rc;
	g_fe.done_calls++;
	g_fe.done_on_home = nvl_reactor_self() == arg;
	if (g_fe.in_call)
		g_fe.wrong++;
	nvl_reactors_stop();
}

static void
fe_start(void *arg)
{
	(void)arg;
	g_fe.in_call = true;
	assert_int_equal(nvl_reactor_for_each(fe_visit, NULL, fe_done, nvl_reactor_self()), 0);
	g_fe.in_call = false;
}

static void
test_for_each(void **state)
{
	(void)state;
	memset(&g_fe, 0, sizeof(g_fe));
	assert_int_equal(ut_reactors_init(3), 0);
	assert_int_equal(nvl_reactor_msg(nvl_reactor_get(0), fe_start, NULL), 0);
	assert_int_equal(nvl_reactors_run(), 0);
	assert_int_equal(g_fe.visited, 7u);
	assert_int_equal(g_fe.wrong, 0);
	assert_int_equal(g_fe.done_calls, 1);
	assert_int_equal(g_fe.done_rc, 0);
	assert_true(g_fe.done_on_home);
}

static void
fe_done_count(void *arg, int rc)
{
	(void)arg;
	g_fe.done_rc = rc;
	g_fe.done_calls++;
}

static void
test_for_each_barrier_only(void **state)
{
	(void)state;
	memset(&g_fe, 0, sizeof(g_fe));
	assert_int_equal(nvl_reactor_for_each(NULL, NULL, fe_done_count, NULL), -EPERM);
	assert_int_equal(ut_reactors_init(1), 0);
	assert_int_equal(nvl_reactor_for_each(NULL, NULL, fe_done_count, NULL), 0);
	assert_int_equal(g_fe.done_calls, 0); /* never inside the call */
	assert_true(UT_POLL_UNTIL(g_fe.done_calls == 1, 1000));
	ut_poll_for(5);
	assert_int_equal(g_fe.done_calls, 1);
	assert_int_equal(g_fe.done_rc, 0);
}

/* ---- drain ----------------------------------------------------------------- */

struct drainer {
	unsigned left;           /* drained when 0 */
	unsigned asked;
	unsigned done;
};

static bool
drainer_empty(void *arg)
{
	struct drainer *d = arg;

	d->asked++;
	return d->left == 0;
}

static void
drainer_done(void *arg)
{
	((struct drainer *)arg)->done++;
}

static void
test_drain(void **state)
{
	struct drainer d = { .left = 0 };

	(void)state;
	assert_int_equal(nvl_reactor_drain(drainer_empty, drainer_done, &d, 1000), -EPERM);
	assert_int_equal(ut_reactors_init(1), 0);
	/* already drained: still completes from the loop, not inside the call */
	assert_int_equal(nvl_reactor_drain(drainer_empty, drainer_done, &d, 1000), 0);
	assert_int_equal(d.done, 0);
	assert_true(UT_POLL_UNTIL(d.done == 1, 1000));
	/* not drained yet: asked every period until it is, then done once */
	d = (struct drainer){ .left = 2 };
	assert_int_equal(nvl_reactor_drain(drainer_empty, drainer_done, &d, 2000), 0);
	assert_true(UT_POLL_UNTIL(d.asked >= 3, 1000));
	assert_int_equal(d.done, 0);
	{
		unsigned before = d.asked;

		ut_poll_for(10); /* every 2 ms, not every loop turn */
		assert_true(d.asked - before <= 6);
	}
	d.left = 0;
	assert_true(UT_POLL_UNTIL(d.done == 1, 1000));
	ut_poll_for(10);
	assert_int_equal(d.done, 1);
}

static unsigned g_fini_calls;

static void
fini_done(void)
{
	g_fini_calls++;
}

static void
test_drain_fini(void **state)
{
	struct drainer d = { .left = 1 };

	(void)state;
	assert_int_equal(ut_reactors_init(1), 0);
	assert_int_equal(nvl_reactor_drain_fini(drainer_empty, &d, fini_done, 1000), 0);
	ut_poll_for(5);
	assert_int_equal(g_fini_calls, 0);
	d.left = 0;
	assert_true(UT_POLL_UNTIL(g_fini_calls == 1, 1000));
	ut_poll_for(5);
	assert_int_equal(g_fini_calls, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_pick_alone, teardown),
		cmocka_unit_test_teardown(test_pick_spreads, teardown),
		cmocka_unit_test_teardown(test_for_each, teardown),
		cmocka_unit_test_teardown(test_for_each_barrier_only, teardown),
		cmocka_unit_test_teardown(test_drain, teardown),
		cmocka_unit_test_teardown(test_drain_fini, teardown),
	};

	return UT_RUN(tests);
}
