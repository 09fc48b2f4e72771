/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of src/reactor/acceptor.c: connections handed to the callback,
 * destroy from inside the callback, and a full descriptor table without a
 * reserve: the listener pauses (no spinning on a readable listener) and
 * accepts again once descriptors are free.
 */
#include "reactor/reactor.c"
#include "reactor/acceptor.c"
#include "common/ut.h"

#include <sys/resource.h>

struct acc {
	struct nvl_acceptor *a;
	int fds[16];
	int n;
	bool destroy_in_cb;
};

static void
acc_cb(void *arg, int fd)
{
	struct acc *s = arg;

	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(s->n < 16);
	s->fds[s->n++] = fd;
	if (s->destroy_in_cb) {
		nvl_acceptor_destroy(s->a);
		s->a = NULL;
	}
}

static char g_path[PATH_MAX];

static int
setup(void **state)
{
	char dir[] = "/tmp/nvl-acc-ut.XXXXXX";

	(void)state;
	assert_non_null(mkdtemp(dir));
	ut_tmp_track(dir);
	snprintf(g_path, sizeof(g_path), "%s/l.sock", dir);
	return ut_reactors_init(1);
}

static int
teardown(void **state)
{
	(void)state;
	nvl_reactors_fini();
	unlink(g_path);
	return 0;
}

static int
client(void)
{
	int c;

	assert_int_equal(nvl_sock_connect_unix(g_path, SOCK_STREAM, 0, &c), 0);
	return c;
}

static void
test_accepts(void **state)
{
	struct acc s = { 0 };
	int l, c[3];

	(void)state;
	assert_int_equal(nvl_sock_listen_unix(g_path, SOCK_STREAM, 0600, 8, &l), 0);
	s.a = nvl_acceptor_create(l, "ut", 0, acc_cb, &s);
	assert_non_null(s.a);
	for (int i = 0; i < 3; i++)
		c[i] = client();
	assert_true(UT_POLL_UNTIL(s.n == 3, 1000));
	for (int i = 0; i < 3; i++) {
		close(c[i]);
		close(s.fds[i]);
	}
	nvl_acceptor_destroy(s.a);
	nvl_acceptor_destroy(NULL);
	/* destroyed: a new client waits in the backlog */
	c[0] = client();
	ut_poll_for(5);
	assert_int_equal(s.n, 3);
	close(c[0]);
	close(l);
}

static void
test_destroy_inside(void **state)
{
	struct acc s = { .destroy_in_cb = true };
	int l, c[2];

	(void)state;
	assert_int_equal(nvl_sock_listen_unix(g_path, SOCK_STREAM, 0, 8, &l), 0);
	s.a = nvl_acceptor_create(l, "ut", 0, acc_cb, &s);
	assert_non_null(s.a);
	c[0] = client();
	c[1] = client();
	assert_true(UT_POLL_UNTIL(s.n == 1, 1000));
	ut_poll_for(5);
	assert_int_equal(s.n, 1); /* the loop stopped with the acceptor */
	assert_null(s.a);
	close(s.fds[0]);
	close(c[0]);
	close(c[1]);
	close(l);
}

static void
test_pause_when_exhausted(void **state)
{
	struct rlimit saved, rl;
	struct acc s = { 0 };
	int l, c, fillers[128], nf = 0;

	(void)state;
	UT_SKIP_UNDER_VALGRIND("it emulates RLIMIT_NOFILE");
	assert_int_equal(nvl_sock_listen_unix(g_path, SOCK_STREAM, 0, 8, &l), 0);
	s.a = nvl_acceptor_create(l, "ut", 0, acc_cb, &s);
	assert_non_null(s.a);
	c = client();
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	rl = saved;
	rl.rlim_cur = (rlim_t)NVL_MAX(l, c) + 8;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	while (nf < 128 && (fillers[nf] = open("/dev/null", O_RDONLY)) >= 0)
		nf++;
	assert_true(nf < 128);

	/* no reserve: the acceptor stops watching instead of spinning */
	ut_poll_for(20);
	assert_int_equal(s.n, 0);
	assert_null(s.a->fdh);
	assert_non_null(s.a->retry);
	{
		uint64_t end = nvl_now_ns() + 20000000ULL;
		int work = 0;

		while (nvl_now_ns() < end) {
			work += nvl_reactor_poll_once();
		}
		assert_int_equal(work, 0); /* a readable listener would count as work */
	}
	/* descriptors free again: the next look accepts it */
	while (nf > 0)
		close(fillers[--nf]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	assert_true(UT_POLL_UNTIL(s.n == 1, 1000));
	assert_non_null(s.a->fdh);
	assert_null(s.a->retry);
	close(s.fds[0]);
	close(c);
	/* destroyed while paused: its timer goes too */
	nvl_acceptor_destroy(s.a);
	close(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_accepts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_inside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_when_exhausted, setup, teardown),
	};

	return UT_RUN(tests);
}
