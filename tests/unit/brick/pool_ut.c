/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the fast tier's spare-file pool (src/brick/pool.c) being
 * quieted for a hand-over (nvl_brick_pool_quiesce / _resume): no new spare
 * is made or zeroed while quiet, the job in progress is waited for, and the
 * wait is bounded. Real pool thread on a real temporary directory under
 * /dev/shm; fallocate (making a spare) is wrapped so a test can hold a job
 * in progress and count the jobs started. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static unsigned g_started, g_done; /* fallocate calls of the pool thread (atomic) */
static unsigned g_slow_ms;         /* each one then sleeps this long */

static int
ut_fallocate(int fd, int mode, off_t off, off_t len)
{
	int rc = fallocate(fd, mode, off, len);

	__atomic_add_fetch(&g_started, 1, __ATOMIC_SEQ_CST);
	if (g_slow_ms)
		usleep(g_slow_ms * 1000);
	__atomic_add_fetch(&g_done, 1, __ATOMIC_SEQ_CST);
	return rc;
}

#define fallocate ut_fallocate
#include "brick/pool.c"
#undef fallocate

static char g_dir[64];
static int g_dfd = -1;

static uint64_t
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static unsigned
count(unsigned *v)
{
	return __atomic_load_n(v, __ATOMIC_SEQ_CST);
}

static unsigned
spare_files(void)
{
	DIR *d = opendir(g_dir);
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strncmp(e->d_name, ".spare-", 7) == 0;
	closedir(d);
	return n;
}

static unsigned
ready_of(struct brick_pool *p, uint64_t *made, uint64_t *recycled)
{
	unsigned ready;
	uint64_t m, r;

	brick_pool_stats(p, &ready, &m, &r);
	if (made)
		*made = m;
	if (recycled)
		*recycled = r;
	return ready;
}

/* wait up to 10 s (valgrind) for cond */
#define WAIT_FOR(cond)                                                    \
	do {                                                              \
		uint64_t until_ = now_ms() + 10000;                       \
		while (!(cond) && now_ms() < until_)                      \
			usleep(1000);                                     \
		assert_true(cond);                                        \
	} while (0)

static int
setup(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/dev/shm/nvl-pool-ut-%d", (int)getpid());
	if (mkdir(g_dir, 0700) < 0)
		return -1;
	g_dfd = open(g_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	g_started = g_done = 0;
	g_slow_ms = 0;
	return g_dfd < 0 ? -1 : 0;
}

static int
teardown(void **state)
{
	DIR *d = opendir(g_dir);
	struct dirent *e;

	(void)state;
	nvl_brick_pool_resume();
	while (d && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' || strncmp(e->d_name, ".spare-", 7) == 0)
			unlinkat(g_dfd, e->d_name, 0);
	if (d)
		closedir(d);
	close(g_dfd);
	rmdir(g_dir);
	return 0;
}

/* An idle pool: quiet at once; taking spares (which asks for a refill) and
 * giving one back (which asks for zeroing) change no file while quiet; after
 * resume it refills. */
static void
test_quiesce_idle(void **state)
{
	struct brick_pool *p;
	uint64_t made, recycled;
	int fd[2];
	uint64_t id[2];

	(void)state;
	assert_int_equal(brick_pool_start(g_dfd, false, 4, &p), 0);
	WAIT_FOR(ready_of(p, NULL, NULL) == 4);
	assert_int_equal(nvl_brick_pool_quiesce(), 0);
	assert_int_equal(count(&g_started), 4);
	for (int i = 0; i < 2; i++)
		assert_int_equal(brick_pool_take(p, &fd[i], &id[i]), 0);
	brick_pool_give(p, fd[1], id[1]);
	usleep(200 * 1000); /* four of the quiet thread's looks at the flag */
	assert_int_equal(ready_of(p, &made, &recycled), 2);
	assert_int_equal(made, 4);
	assert_int_equal(recycled, 0);
	assert_int_equal(count(&g_started), 4);
	assert_int_equal(spare_files(), 4);
	/* resumed: the given-back file is zeroed and one more is made */
	nvl_brick_pool_resume();
	WAIT_FOR(ready_of(p, NULL, NULL) == 4);
	ready_of(p, &made, &recycled);
	assert_int_equal(recycled, 1);
	assert_int_equal(made, 5);
	close(fd[0]);
	brick_pool_stop(p);
	/* (the taken spare keeps its name: brick_pool_stop drops only its own) */
	assert_int_equal(spare_files(), 1);
}

/* A spare being made when quiesce is called: quiesce returns after that job
 * ended, and the next one does not start until resume. */
static void
test_quiesce_waits_for_job(void **state)
{
	struct brick_pool *p;
	uint64_t t0, made;

	(void)state;
	g_slow_ms = 80;
	assert_int_equal(brick_pool_start(g_dfd, false, 2, &p), 0);
	WAIT_FOR(count(&g_started) == 1);
	t0 = now_ms();
	assert_int_equal(nvl_brick_pool_quiesce(), 0);
	/* the job in progress ended before quiesce returned */
	assert_int_equal(count(&g_done), 1);
	assert_true(now_ms() - t0 < 1000);
	usleep(200 * 1000);
	assert_int_equal(count(&g_started), 1);
	assert_int_equal(spare_files(), 1);
	ready_of(p, &made, NULL);
	assert_int_equal(made, 1);
	nvl_brick_pool_resume();
	WAIT_FOR(ready_of(p, NULL, NULL) == 2);
	assert_int_equal(count(&g_started), 2);
	brick_pool_stop(p);
	assert_int_equal(spare_files(), 0);
}

/* A job that outlasts the bound: quiesce gives up after about 100 ms with
 * -ETIMEDOUT (and still nothing new starts). */
static void
test_quiesce_bounded(void **state)
{
	struct brick_pool *p;
	uint64_t t0, waited;

	(void)state;
	g_slow_ms = 600;
	assert_int_equal(brick_pool_start(g_dfd, false, 2, &p), 0);
	WAIT_FOR(count(&g_started) == 1);
	t0 = now_ms();
	assert_int_equal(nvl_brick_pool_quiesce(), -ETIMEDOUT);
	waited = now_ms() - t0;
	assert_true(waited >= 95);
	assert_true(waited < 450);
	assert_int_equal(count(&g_done), 0);
	WAIT_FOR(count(&g_done) == 1);
	usleep(200 * 1000);
	assert_int_equal(count(&g_started), 1);
	brick_pool_stop(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_quiesce_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quiesce_waits_for_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quiesce_bounded, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
