/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of src/util/log.c: levels 0..3 gate the debug macros, flags
 * narrow them per component, one line per message with file:line:func,
 * long messages are cut but still end in a newline, rate limiting.
 */
#include "util/log.c"
#include "common/ut.h"

NVL_LOG_REGISTER_COMPONENT(utcomp)
NVL_LOG_REGISTER_COMPONENT(utother)

static int g_pipe[2];

static int
setup(void **state)
{
	(void)state;
	if (pipe2(g_pipe, O_NONBLOCK) < 0)
		return -1;
	fcntl(g_pipe[0], F_SETPIPE_SZ, 1 << 20);
	nvl_log_set_fd(g_pipe[1], false);
	nvl_log_set_ident("logut");
	nvl_log_set_level(0);
	nvl_log_set_flag("all", true);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	nvl_log_set_fd(2, true);
	close(g_pipe[0]);
	close(g_pipe[1]);
	return 0;
}

/* everything logged since the last call */
static char *
drain(void)
{
	static char buf[1 << 16];
	ssize_t n = read(g_pipe[0], buf, sizeof(buf) - 1);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static int
count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void
test_levels(void **state)
{
	char *out;

	(void)state;
	drain();
	assert_int_equal(nvl_log_set_level(-1), -EINVAL);
	assert_int_equal(nvl_log_set_level(4), -EINVAL);
	assert_int_equal(nvl_log_get_level(), 0);

	NVL_DEBUGLOG(utcomp, "debug at level 0");
	NVL_NOTICELOG("notice %d", 1);
	NVL_WARNLOG("warn");
	NVL_ERRLOG("err");
	out = drain();
	assert_null(strstr(out, "debug at level 0"));
	assert_int_equal(count_lines(out), 3);
	assert_non_null(strstr(out, "logut["));
	assert_non_null(strstr(out, "NOTICE log_ut.c:"));
	assert_non_null(strstr(out, ":test_levels: notice 1\n"));
	assert_non_null(strstr(out, "WARN "));
	assert_non_null(strstr(out, "ERROR "));

	for (int lvl = 1; lvl <= 3; lvl++) {
		assert_int_equal(nvl_log_set_level(lvl), 0);
		NVL_DEBUGLOG(utcomp, "d%d", lvl);
		NVL_VERBOSELOG(utcomp, "v%d", lvl);
		NVL_TRACELOG(utcomp, "t%d", lvl);
		out = drain();
		assert_int_equal(count_lines(out), lvl);
		assert_non_null(strstr(out, "DEBUG/utcomp "));
		if (lvl >= 2)
			assert_non_null(strstr(out, "VERBOSE/utcomp "));
		if (lvl >= 3)
			assert_non_null(strstr(out, "TRACE/utcomp "));
	}
	nvl_log_set_level(0);
}

static void
test_flags(void **state)
{
	const struct nvl_log_flag *f;
	bool seen = false;
	char *out;

	(void)state;
	drain();
	nvl_log_set_level(1);
	for (f = nvl_log_flags(); f; f = f->next)
		seen |= strcmp(f->name, "utcomp") == 0;
	assert_true(seen);
	assert_int_equal(nvl_log_set_flag("nosuch", true), -ENOENT);
	assert_int_equal(nvl_log_set_flag("utcomp", false), 0);
	NVL_DEBUGLOG(utcomp, "silenced");
	NVL_DEBUGLOG(utother, "still on");
	out = drain();
	assert_null(strstr(out, "silenced"));
	assert_non_null(strstr(out, "still on"));
	assert_int_equal(nvl_log_set_flag("all", false), 0);
	NVL_DEBUGLOG(utother, "all off");
	assert_int_equal(drain()[0], '\0');
	/* errors are never silenced by flags */
	NVL_ERRLOG("always");
	assert_non_null(strstr(drain(), "always"));
	assert_int_equal(nvl_log_set_flag("all", true), 0);
	NVL_DEBUGLOG(utcomp, "back");
	assert_non_null(strstr(drain(), "back"));
	nvl_log_set_level(0);
}

static void
test_long_message(void **state)
{
	char *big = malloc(10000);
	char *out;
	size_t len;

	(void)state;
	drain();
	memset(big, 'z', 9999);
	big[9999] = '\0';
	NVL_ERRLOG("%s", big);
	out = drain();
	len = strlen(out);
	assert_true(len > 1000 && len < 2048);
	assert_int_equal(out[len - 1], '\n');
	assert_int_equal(count_lines(out), 1);
	/* a message with its own newline gets no second one */
	NVL_ERRLOG("ends in newline\n");
	out = drain();
	assert_int_equal(count_lines(out), 1);
	/* errno is preserved across logging */
	errno = EXDEV;
	NVL_NOTICELOG("x");
	assert_int_equal(errno, EXDEV);
	drain();
	free(big);
}

static void
test_ratelimit(void **state)
{
	uint64_t last = 0, supp = 0;
	char *out;

	(void)state;
	drain();
	assert_true(nvl_log_ratelimit(&last, &supp));
	for (int i = 0; i < 5; i++)
		assert_false(nvl_log_ratelimit(&last, &supp));
	assert_int_equal(supp, 5);
	last -= 2000000000ULL; /* pretend 2 s passed */
	assert_true(nvl_log_ratelimit(&last, &supp));
	assert_int_equal(supp, 0);
	out = drain();
	assert_non_null(strstr(out, "5 similar messages suppressed"));
	for (int i = 0; i < 3; i++)
		NVL_ERRLOG_RL("rl %d", i);
	out = drain();
	assert_int_equal(count_lines(out), 1);
}

static void
test_timestamps(void **state)
{
	char *out;

	(void)state;
	drain();
	nvl_log_set_fd(g_pipe[1], true);
	NVL_NOTICELOG("stamped");
	out = drain();
	assert_int_equal(out[0], '[');
	assert_non_null(strstr(out, "] logut["));
	nvl_log_set_fd(g_pipe[1], false);
}

static char *
slurp_file(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return buf;
}

/* logrotate: the file is moved away, SIGHUP reopens the path; lines before
 * the reopen stay in the moved file, lines after go to the new one */
static void
test_reopen(void **state)
{
	char dir[] = "/tmp/nvl-log-ut.XXXXXX", path[64], moved[64];
	int saved = g_log_fd;
	bool ts = g_timestamps;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/nvlendd.log", dir);
	snprintf(moved, sizeof(moved), "%s/nvlendd.log.1", dir);
	assert_null(nvl_log_file());
	assert_int_equal(nvl_log_reopen(), 0);    /* stderr: nothing to do */
	assert_int_equal(nvl_log_set_file(path), 0);
	assert_string_equal(nvl_log_file(), path);
	NVL_NOTICELOG("before rotation");
	assert_int_equal(rename(path, moved), 0);
	NVL_NOTICELOG("still the old file");
	assert_int_equal(nvl_log_reopen(), 0);
	NVL_NOTICELOG("after rotation");
	assert_non_null(strstr(slurp_file(moved), "before rotation"));
	assert_non_null(strstr(slurp_file(moved), "still the old file"));
	assert_null(strstr(slurp_file(moved), "after rotation"));
	assert_non_null(strstr(slurp_file(path), "after rotation"));
	assert_null(strstr(slurp_file(path), "before rotation"));
	assert_int_equal(nvl_log_set_file("/nonexistent/dir/x.log"), -ENOENT);
	close(g_log_fd);
	g_log_fd = saved;
	g_timestamps = ts;
	g_log_path[0] = '\0';
	unlink(path);
	unlink(moved);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_long_message),
		cmocka_unit_test(test_ratelimit),
		cmocka_unit_test(test_timestamps),
		cmocka_unit_test(test_reopen),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
