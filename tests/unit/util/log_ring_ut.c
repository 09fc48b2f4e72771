/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the ring of recent warnings and errors in src/util/log.c
 * (nvl_log_recent, behind nvlend_get_log and `nvlend status`): only warnings
 * and errors are kept, oldest first, with origin and time; the ring wraps
 * keeping the last NVL_LOG_RING_SIZE; level and count filters; long
 * messages are cut; two threads logging while a third reads (run under
 * `make SAN=tsan` too: the ring must be race-free).
 */
#include "util/log.c"
#include "common/ut.h"

#include <pthread.h>

static int g_null_fd;

static int
setup(void **state)
{
	(void)state;
	g_null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (g_null_fd < 0)
		return -1;
	nvl_log_set_fd(g_null_fd, false);
	nvl_log_set_ident("ringut");
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	nvl_log_set_fd(2, true);
	close(g_null_fd);
	return 0;
}

/* empty the ring between tests (the test owns log.c's statics) */
static void
ring_reset(void)
{
	pthread_mutex_lock(&g_ring.lock);
	g_ring.seq = 0;
	memset(g_ring.e, 0, sizeof(g_ring.e));
	pthread_mutex_unlock(&g_ring.lock);
}

static void
test_only_warnings_and_errors(void **state)
{
	struct nvl_log_entry e[NVL_LOG_RING_SIZE];
	uint64_t total = 99, before, after;
	struct timeval tv;
	size_t n;

	(void)state;
	ring_reset();
	assert_int_equal(nvl_log_recent(NVL_LOG_WARN, NVL_LOG_RING_SIZE, e, &total), 0);
	assert_int_equal(total, 0);

	gettimeofday(&tv, NULL);
	before = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	NVL_NOTICELOG("a notice is not kept");
	NVL_WARNLOG("first warning %d", 1);
	NVL_ERRLOG("an error");
	nvl_log_set_level(3);
	nvl_log(NVL_LOG_DEBUG, NULL, __FILE__, __LINE__, __func__, "debug is not kept");
	nvl_log_set_level(0);
	gettimeofday(&tv, NULL);
	after = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;

	n = nvl_log_recent(NVL_LOG_WARN, NVL_LOG_RING_SIZE, e, &total);
	assert_int_equal(n, 2);
	assert_int_equal(total, 2);
	/* oldest first, message without prefix or newline, origin file:line:func */
	assert_string_equal(e[0].msg, "first warning 1");
	assert_int_equal(e[0].prio, NVL_LOG_WARN);
	assert_int_equal(e[0].seq, 1);
	assert_non_null(strstr(e[0].origin, "log_ring_ut.c:"));
	assert_non_null(strstr(e[0].origin, ":test_only_warnings_and_errors"));
	assert_null(strchr(e[0].origin, ' '));
	assert_string_equal(e[1].msg, "an error");
	assert_int_equal(e[1].prio, NVL_LOG_ERROR);
	assert_int_equal(e[1].seq, 2);
	assert_true(e[0].time_us >= before && e[1].time_us <= after);
	assert_true(e[0].time_us <= e[1].time_us);

	/* errors only */
	n = nvl_log_recent(NVL_LOG_ERROR, NVL_LOG_RING_SIZE, e, NULL);
	assert_int_equal(n, 1);
	assert_string_equal(e[0].msg, "an error");
}

static void
test_wraparound(void **state)
{
	struct nvl_log_entry e[NVL_LOG_RING_SIZE];
	const int extra = 7, total_lines = NVL_LOG_RING_SIZE + 7;
	uint64_t total;
	size_t n;

	(void)state;
	ring_reset();
	for (int i = 0; i < total_lines; i++) {
		if (i % 3 == 0)
			NVL_ERRLOG("line %d", i);
		else
			NVL_WARNLOG("line %d", i);
	}
	n = nvl_log_recent(NVL_LOG_WARN, NVL_LOG_RING_SIZE, e, &total);
	assert_int_equal(n, NVL_LOG_RING_SIZE);
	assert_int_equal(total, (uint64_t)total_lines);
	/* the oldest `extra` were overwritten; the rest in order */
	for (size_t i = 0; i < n; i++) {
		char want[32];

		snprintf(want, sizeof(want), "line %d", (int)i + extra);
		assert_string_equal(e[i].msg, want);
		assert_int_equal(e[i].seq, i + (size_t)extra + 1);
	}
	/* the last 5 */
	n = nvl_log_recent(NVL_LOG_WARN, 5, e, NULL);
	assert_int_equal(n, 5);
	assert_string_equal(e[0].msg, "line 34");
	assert_string_equal(e[4].msg, "line 38");
	/* a count above the ring is capped */
	assert_int_equal(nvl_log_recent(NVL_LOG_WARN, 1000, e, NULL), NVL_LOG_RING_SIZE);
	/* the last 3 errors: lines 30, 33, 36 (multiples of 3), oldest first */
	n = nvl_log_recent(NVL_LOG_ERROR, 3, e, NULL);
	assert_int_equal(n, 3);
	assert_string_equal(e[0].msg, "line 30");
	assert_string_equal(e[1].msg, "line 33");
	assert_string_equal(e[2].msg, "line 36");
	/* errors only among what is still kept: 9..36 step 3 = 10 lines */
	assert_int_equal(nvl_log_recent(NVL_LOG_ERROR, NVL_LOG_RING_SIZE, e, NULL), 10);
	assert_string_equal(e[0].msg, "line 9");
	/* count 0: nothing */
	assert_int_equal(nvl_log_recent(NVL_LOG_WARN, 0, e, NULL), 0);
}

static void
test_long_message_cut(void **state)
{
	struct nvl_log_entry e[1];
	char big[1500];

	(void)state;
	ring_reset();
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	NVL_WARNLOG("%s", big);
	assert_int_equal(nvl_log_recent(NVL_LOG_WARN, 1, e, NULL), 1);
	assert_int_equal(strlen(e[0].msg), sizeof(e[0].msg) - 1);
	assert_int_equal(e[0].msg[0], 'x');
	/* a message ending in its own newline is kept without it */
	NVL_WARNLOG("with newline\n");
	assert_int_equal(nvl_log_recent(NVL_LOG_WARN, 1, e, NULL), 1);
	assert_string_equal(e[0].msg, "with newline");
}

#define THREAD_LINES 2000

static void *
writer(void *arg)
{
	int id = (int)(intptr_t)arg;

	for (int i = 0; i < THREAD_LINES; i++) {
		if (id == 0)
			NVL_WARNLOG("w%d %d", id, i);
		else
			NVL_ERRLOG("w%d %d", id, i);
	}
	return NULL;
}

static void
test_two_threads(void **state)
{
	struct nvl_log_entry e[NVL_LOG_RING_SIZE];
	pthread_t t[2];
	uint64_t total, last_total = 0;
	int last[2] = { -1, -1 };
	size_t n;

	(void)state;
	ring_reset();
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i), 0);
	/* a reader meanwhile: every snapshot is whole lines in sequence order */
	for (int r = 0; r < 200; r++) {
		n = nvl_log_recent(NVL_LOG_WARN, NVL_LOG_RING_SIZE, e, &total);
		assert_true(total >= last_total);
		last_total = total;
		for (size_t i = 0; i < n; i++) {
			int id, k;

			assert_int_equal(sscanf(e[i].msg, "w%d %d", &id, &k), 2);
			assert_true(id == 0 || id == 1);
			assert_int_equal(e[i].prio, id == 0 ? NVL_LOG_WARN : NVL_LOG_ERROR);
			if (i > 0)
				assert_int_equal(e[i].seq, e[i - 1].seq + 1);
		}
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	n = nvl_log_recent(NVL_LOG_WARN, NVL_LOG_RING_SIZE, e, &total);
	assert_int_equal(total, 2 * THREAD_LINES);
	assert_int_equal(n, NVL_LOG_RING_SIZE);
	/* each thread's lines stay in its own order, and its last line is there
	 * unless the other thread's later lines pushed it out */
	for (size_t i = 0; i < n; i++) {
		int id, k;

		assert_int_equal(sscanf(e[i].msg, "w%d %d", &id, &k), 2);
		assert_true(k > last[id]);
		last[id] = k;
		assert_int_equal(e[i].seq, total - n + 1 + i);
	}
	assert_true(last[0] == THREAD_LINES - 1 || last[1] == THREAD_LINES - 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_only_warnings_and_errors),
		cmocka_unit_test(test_wraparound),
		cmocka_unit_test(test_long_message_cut),
		cmocka_unit_test(test_two_threads),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
