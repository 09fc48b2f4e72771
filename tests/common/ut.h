/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers for cmocka unit tests (STYLE.md section 7). A test #includes the
 * .c under test (so it reaches statics), then this header:
 *
 *   #include "rpc/rpc.c"
 *   #include "common/ut.h"
 *   DEFINE_STUB(nvl_store_read, int, (struct nvl_store *s, void *b, uint64_t l, uint64_t o), 0);
 *
 * DEFINE_STUB defines the function and a global ut_<fn> holding its return
 * value; tests change that value to steer error paths. Reactor helpers run
 * one reactor in the test thread and drive it with nvl_reactor_poll_once().
 * Single-threaded unless a test starts reactors itself.
 */
#ifndef NVL_TESTS_COMMON_UT_H
#define NVL_TESTS_COMMON_UT_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "reactor/reactor.h"
#include "util/util.h"

/* A stub returning ut_<fn> (initially val), counting calls in ut_<fn>_calls. */
#define DEFINE_STUB(fn, ret, dargs, val)                                                           \
	ret ut_##fn = (val);                                                                       \
	unsigned ut_##fn##_calls;                                                                  \
	ret fn dargs                                                                               \
	{                                                                                          \
		ut_##fn##_calls++;                                                                 \
		return ut_##fn;                                                                    \
	}

/* A void stub counting its calls. */
#define DEFINE_STUB_V(fn, dargs)                                                                   \
	unsigned ut_##fn##_calls;                                                                  \
	void fn dargs                                                                              \
	{                                                                                          \
		ut_##fn##_calls++;                                                                 \
	}

/* Run a test array; UT_FILTER=pattern (cmocka wildcards) runs only matching tests. */
#define UT_RUN(tests)                                                                              \
	({                                                                                         \
		const char *_ut_f = getenv("UT_FILTER");                                           \
		if (_ut_f && *_ut_f)                                                               \
			cmocka_set_test_filter(_ut_f);                                             \
		cmocka_run_group_tests(tests, NULL, NULL);                                         \
	})

/* Table-driven cases: for (size_t i = 0; i < UT_N(cases); i++) */
/* valgrind emulates RLIMIT_NOFILE: a descriptor the kernel hands out above
 * its soft limit is closed again (an accepted connection is lost, not shed),
 * so tests of descriptor exhaustion skip themselves under it */
#define UT_SKIP_UNDER_VALGRIND(why)                                                                \
	do {                                                                                       \
		if (RUNNING_ON_VALGRIND) {                                                         \
			print_message("skipped under valgrind: %s\n", why);                        \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

#define UT_N(a) (sizeof(a) / sizeof((a)[0]))

/* Start `count` reactors (not running) with the test thread as reactor 0. */
static inline int
ut_reactors_init(unsigned count)
{
	struct nvl_reactor_opts o;

	nvl_reactor_opts_default(&o);
	o.count = count;
	o.spin_us = 0;
	return nvl_reactors_init(&o);
}

/*
 * Drive the calling thread's reactor until `cond` holds or `ms` pass.
 * Evaluates to true if the condition was met.
 */
#define UT_POLL_UNTIL(cond, ms)                                                                    \
	({                                                                                         \
		uint64_t _ut_deadline = nvl_now_ns() + (uint64_t)(ms) * 1000000ULL;               \
		bool _ut_ok;                                                                       \
		while (!(_ut_ok = (cond)) && nvl_now_ns() < _ut_deadline)                          \
			nvl_reactor_poll_once();                                                   \
		_ut_ok;                                                                            \
	})

/* Run the reactor for `ms` milliseconds regardless of work. */
static inline void
ut_poll_for(unsigned ms)
{
	uint64_t deadline = nvl_now_ns() + (uint64_t)ms * 1000000ULL;

	while (nvl_now_ns() < deadline)
		nvl_reactor_poll_once();
}

/*
 * Temp files and directories are tracked and removed when the test program
 * exits, also when a failed assertion skipped the test's own cleanup.
 */
#define UT_MAX_TMP 64
static char ut_tmp_paths[UT_MAX_TMP][PATH_MAX];
static int ut_ntmp;

static int
ut_rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(p) : unlink(p)) < 0 && errno != ENOENT ? -1 : 0;
}

static void
ut_tmp_cleanup(void)
{
	for (int i = ut_ntmp - 1; i >= 0; i--)
		nftw(ut_tmp_paths[i], ut_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	ut_ntmp = 0;
}

static inline void
ut_tmp_track(const char *path)
{
	if (ut_ntmp == 0)
		atexit(ut_tmp_cleanup);
	if (ut_ntmp < UT_MAX_TMP)
		nvl_strlcpy(ut_tmp_paths[ut_ntmp++], path, PATH_MAX);
}

/*
 * Make a temp file of `size` bytes in `dir` (created with mkstemp, left
 * sparse) and return its fd; the path goes to `path` (PATH_MAX bytes).
 * Removed at exit at the latest. Fails the test on error.
 */
static inline int
ut_tmpfile(const char *dir, uint64_t size, char *path)
{
	int fd;

	snprintf(path, PATH_MAX, "%s/nvl-ut-XXXXXX", dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	ut_tmp_track(path);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

/* mkdtemp(templ) (templ ends in XXXXXX), removed with its contents at exit at the latest. */
static inline char *
ut_tmpdir(char *templ)
{
	assert_non_null(mkdtemp(templ));
	ut_tmp_track(templ);
	return templ;
}

/* A 4 KiB-aligned buffer (O_DIRECT-ready) of at least len bytes; free() it. */
static inline void *
ut_aligned(size_t len)
{
	void *p = aligned_alloc(4096, NVL_ALIGN_UP(len, (size_t)4096));

	assert_non_null(p);
	return p;
}

/* Deterministic pattern: byte i of a buffer tagged `seed`. */
static inline void
ut_fill(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((seed * 131u + i * 7u + (i >> 9)) ^ (seed >> 3));
}

static inline bool
ut_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

#endif
