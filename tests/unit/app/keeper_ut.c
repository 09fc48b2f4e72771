/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the keeper (src/app/keeper.c) with a stand-in worker
 * (tests/helpers/fdstore_worker.c) that uses the daemon's fd-store calls:
 *   - a worker that crashes twice after READY is restarted at once each time
 *     and gets its stored descriptors back: the same listening socket (a
 *     client that connected while it was down is accepted by the third
 *     worker) and a memfd whose count survives; its clean exit ends the
 *     keeper with status 0;
 *   - a worker that dies before READY every time is given up on after the
 *     configured number of restarts: status 1;
 *   - SIGTERM to the keeper reaches the worker, whose exit status the keeper
 *     returns; a notification from a process that is not the worker is
 *     ignored (its descriptor never reaches the next worker).
 *   - upgrade: a worker that asks for another binary and exits with the
 *     hand-over status is followed at once by that binary, with the stored
 *     descriptors and the old version in its environment, not counted as a
 *     crash; a binary that cannot serve (/bin/false) is rolled back: the
 *     previous binary starts again and is told so.
 *   - upgrade with a worker started ahead: the new binary is started when
 *     the old worker asks (UPGRADE_PREPARE), gets the store and the upgrade
 *     environment over its socket when the old one says it stopped for good,
 *     and serves while the old process is still there; an old worker that
 *     crashes instead is followed by its own binary, not the one started
 *     ahead; a change after the snapshot to a descriptor the worker
 *     started ahead took makes it start afresh, unless it drops what it
 *     built from it (then only that is built again).
 * The keeper runs in a forked child (it blocks signals and reaps children).
 */
#include "app/keeper.c"
#include "common/ut.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

static char g_worker[PATH_MAX];

/* BUILD/tests/helpers/fdstore_worker, found from BUILD/tests/unit/app/keeper_ut */
static void
find_worker(void)
{
	char *slash;
	ssize_t n = readlink("/proc/self/exe", g_worker, sizeof(g_worker) - 64);

	assert_true(n > 0);
	g_worker[n] = '\0';
	for (int i = 0; i < 3; i++) {
		slash = strrchr(g_worker, '/');
		assert_non_null(slash);
		*slash = '\0';
	}
	nvl_strlcpy(slash, "/helpers/fdstore_worker", 64);
	assert_int_equal(access(g_worker, X_OK), 0);
}

struct kfix {
	char dir[64];
	char sock[160];
	char state[160];
};

static void
kfix_init(struct kfix *f)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/nvl-keeper-ut.%d.XXXXXX", (int)getpid());
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/listen.sock", f->dir);
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
}

static void
kfix_fini(struct kfix *f)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	(void)!system(cmd);
}

static pid_t
keeper_start(struct kfix *f, const char *mode, unsigned max_restarts)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = { g_worker, (char *)mode, f->sock, f->state, NULL };
		char sdir[200];
		struct nvl_keeper_opts o = { .worker_argv = argv, .state_dir = sdir,
					     .max_restarts = max_restarts,
					     .restart_window_ms = 30000 };

		snprintf(sdir, sizeof(sdir), "%s/keeper", f->dir);
		_exit(nvl_keeper_run(&o));
	}
	return pid;
}

static int
keeper_wait(pid_t pid, int secs)
{
	for (int i = 0; i < secs * 100; i++) {
		int st;

		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static char *
slurp(const char *path)
{
	static char buf[8192];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return buf;
}

static int
count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static bool
wait_for(const char *path, const char *needle, int secs)
{
	for (int i = 0; i < secs * 100; i++) {
		if (strstr(slurp(path), needle))
			return true;
		usleep(10000);
	}
	return false;
}

static void
test_crash_restart_keeps_descriptors(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct kfix f;
	unsigned long ino[3];
	const char *s;
	pid_t k;
	int c = -1;

	(void)state;
	kfix_init(&f);
	k = keeper_start(&f, "crash3", 5);
	/* connect as soon as the first worker listens: the third one accepts */
	nvl_strlcpy(sa.sun_path, f.sock, sizeof(sa.sun_path));
	for (int i = 0; i < 500 && c < 0; i++) {
		c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(c);
			c = -1;
			usleep(10000);
		}
	}
	assert_true(c >= 0);
	assert_int_equal(keeper_wait(k, 20), 0);
	s = slurp(f.state);
	print_message("%s", s);
	assert_int_equal(count(s, "start "), 3);
	assert_non_null(strstr(s, "start 3 "));
	assert_non_null(strstr(s, "accepted"));
	/* the second and third workers got both descriptors back */
	assert_int_equal(count(s, "names=counter,listener,") + count(s, "names=listener,counter,"),
			 2);
	/* one listening socket throughout */
	for (int i = 0; i < 3; i++) {
		char key[24];
		const char *p;

		snprintf(key, sizeof(key), "start %d ", i + 1);
		p = strstr(s, key);
		assert_non_null(p);
		p = strstr(p, "ino=");
		assert_non_null(p);
		ino[i] = strtoul(p + 4, NULL, 10);
	}
	assert_true(ino[0] == ino[1] && ino[1] == ino[2]);
	close(c);
	kfix_fini(&f);
}

static void
test_upgrade_and_rollback(void **state)
{
	char copy[PATH_MAX], cmd[PATH_MAX * 2 + 16];
	struct kfix f;
	const char *s;
	pid_t k;

	(void)state;
	kfix_init(&f);
	/* the "new build": a copy of the worker under another name */
	snprintf(copy, sizeof(copy), "%s/worker-b", f.dir);
	snprintf(cmd, sizeof(cmd), "cp %s %s", g_worker, copy);
	assert_int_equal(system(cmd), 0);
	setenv("UPGRADE_TO", copy, 1);
	k = keeper_start(&f, "upgrade", 1); /* one crash allowed: an upgrade is none */
	assert_int_equal(keeper_wait(k, 20), 0);
	s = slurp(f.state);
	print_message("%s", s);
	assert_int_equal(count(s, "start "), 2);
	assert_non_null(strstr(s, "exe=fdstore_worker from=- rolled_back=0"));
	assert_non_null(strstr(s, "exe=worker-b from=v1 rolled_back=0"));
	/* the new binary got both descriptors back */
	assert_int_equal(count(s, "names=counter,listener,") + count(s, "names=listener,counter,"),
			 1);
	kfix_fini(&f);

	/* a binary that ends before it serves: the old one comes back */
	kfix_init(&f);
	setenv("UPGRADE_TO", "/bin/false", 1);
	k = keeper_start(&f, "upgrade", 1);
	assert_int_equal(keeper_wait(k, 20), 0);
	s = slurp(f.state);
	print_message("%s", s);
	assert_int_equal(count(s, "start "), 2);
	assert_non_null(strstr(s, "start 2 "));
	assert_non_null(strstr(s, "exe=fdstore_worker from=v1 rolled_back=1"));
	unsetenv("UPGRADE_TO");
	kfix_fini(&f);
}

/* The keeper with a worker in `mode` that upgrades to a copy of itself
 * ("worker-b"), to its end: \return the state file (f stays to be freed). */
static const char *
ahead_run(struct kfix *f, const char *mode, unsigned max_restarts)
{
	char copy[PATH_MAX], cmd[PATH_MAX * 2 + 16];
	const char *s;
	pid_t k;

	kfix_init(f);
	snprintf(copy, sizeof(copy), "%s/worker-b", f->dir);
	snprintf(cmd, sizeof(cmd), "cp %s %s", g_worker, copy);
	assert_int_equal(system(cmd), 0);
	setenv("UPGRADE_TO", copy, 1);
	k = keeper_start(f, mode, max_restarts);
	assert_int_equal(keeper_wait(k, 20), 0);
	unsetenv("UPGRADE_TO");
	s = slurp(f->state);
	print_message("%s", s);
	return s;
}

static void
test_upgrade_started_ahead(void **state)
{
	struct kfix f;
	const char *s;

	(void)state;
	s = ahead_run(&f, "ahead", 1);
	assert_int_equal(count(s, "start "), 2);
	/* it was built while the old worker served, and said so */
	assert_int_equal(count(s, "ahead\n"), 1);
	assert_non_null(strstr(s, "old saw ready=1"));
	/* it ran while the old worker was still exiting, with the store: the
	 * snapshot and what was stored after it */
	assert_non_null(strstr(s, "exe=worker-b from=v1 old_alive=1"));
	assert_int_equal(count(s, "names=counter,listener,late,") +
				 count(s, "names=listener,counter,late,"),
			 1);
	kfix_fini(&f);

	/* what it took ahead was stored again meanwhile: it starts afresh */
	s = ahead_run(&f, "ahead_stale", 1);
	assert_int_equal(count(s, "stale\n"), 1);
	assert_int_equal(count(s, "start "), 2);
	assert_non_null(strstr(s, "exe=worker-b from=v1"));
	kfix_fini(&f);

	/* the same change, with someone to drop what was built from it: only
	 * that goes (no afresh start), the copy stored again is taken */
	s = ahead_run(&f, "ahead_revoke", 1);
	assert_int_equal(count(s, "stale\n"), 0);
	assert_int_equal(count(s, "gave_back=0 revoked=1\n"), 1);
	assert_int_equal(count(s, "start "), 2);
	assert_non_null(strstr(s, "start 2 "));
	/* the listener given back is untaken again, with the counter */
	assert_int_equal(count(s, "names=counter,listener,") + count(s, "names=listener,counter,"),
			 1);
	assert_non_null(strstr(s, "exe=worker-b from=v1"));
	kfix_fini(&f);

	/* the old worker crashes instead of handing over: its own binary again */
	s = ahead_run(&f, "ahead_crash", 3);
	assert_int_equal(count(s, "start "), 2);
	assert_non_null(strstr(s, "exe=fdstore_worker from=- old_alive=0"));
	assert_null(strstr(s, "exe=worker-b"));
	kfix_fini(&f);
}

static void
test_crash_loop_gives_up(void **state)
{
	struct kfix f;
	pid_t k;

	(void)state;
	kfix_init(&f);
	k = keeper_start(&f, "crashloop", 3);
	/* backoff 0.1 + 0.2 + 0.4 s, then the fourth death ends it */
	assert_int_equal(keeper_wait(k, 20), 1);
	assert_int_equal(count(slurp(f.state), "start "), 4);
	kfix_fini(&f);
}

static void
test_sigterm_and_foreign_notifications(void **state)
{
	struct sockaddr_un ka = { .sun_family = AF_UNIX };
	struct kfix f;
	const char *s;
	pid_t k, w;
	int fd, p[2];

	(void)state;
	kfix_init(&f);
	k = keeper_start(&f, "serve", 5);
	assert_true(wait_for(f.state, "start 1 ", 10));
	/* a process that is not the worker tries to store a descriptor */
	assert_true(snprintf(ka.sun_path, sizeof(ka.sun_path), "%.40s/keeper/keeper.%d.sock", f.dir,
			     (int)k) < (int)sizeof(ka.sun_path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_int_equal(pipe(p), 0);
	{
		const char msg[] = "FDSTORE=1\nFDNAME=evil";
		union {
			char b[CMSG_SPACE(sizeof(int))];
			struct cmsghdr a;
		} u;
		struct iovec iov = { .iov_base = (void *)msg, .iov_len = sizeof(msg) - 1 };
		struct msghdr mh = { .msg_name = &ka, .msg_namelen = sizeof(ka), .msg_iov = &iov,
				     .msg_iovlen = 1, .msg_control = u.b,
				     .msg_controllen = sizeof(u.b) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

		memset(&u, 0, sizeof(u));
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &p[0], sizeof(int));
		assert_true(sendmsg(fd, &mh, 0) > 0);
	}
	close(fd);
	close(p[0]);
	close(p[1]);
	/* kill the worker outright: the restarted one must not see "evil" */
	s = strstr(slurp(f.state), "pid=");
	assert_non_null(s);
	w = (pid_t)strtol(s + 4, NULL, 10);
	assert_int_equal(kill(w, SIGUSR1), 0);
	assert_true(wait_for(f.state, "start 2 ", 10));
	assert_null(strstr(slurp(f.state), "evil"));
	/* SIGTERM: the worker gets it and its status is the keeper's */
	assert_int_equal(kill(k, SIGTERM), 0);
	assert_int_equal(keeper_wait(k, 10), 0);
	assert_non_null(strstr(slurp(f.state), "sigterm"));
	kfix_fini(&f);
}

static void
find_worker_test(void **state)
{
	(void)state;
	find_worker();
}

static void
test_field_parsing(void **state)
{
	char buf[16];

	(void)state;
	assert_string_equal(keeper_field("A=1\nFDNAME=x\n", "FDNAME", buf, sizeof(buf)), "x");
	assert_string_equal(keeper_field("FDSTORE=1", "FDSTORE", buf, sizeof(buf)), "1");
	assert_null(keeper_field("XFDNAME=x", "FDNAME", buf, sizeof(buf)));
	assert_null(keeper_field("FDNAME", "FDNAME", buf, sizeof(buf)));
	assert_null(keeper_field("FDNAME=0123456789abcdefg", "FDNAME", buf, sizeof(buf)));
	assert_true(nvl_fdstore_name_ok("shm-c1-window"));
	assert_false(nvl_fdstore_name_ok("a:b"));
	assert_false(nvl_fdstore_name_ok(""));
	assert_false(nvl_fdstore_name_ok("a b"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(find_worker_test),
		cmocka_unit_test(test_field_parsing),
		cmocka_unit_test(test_crash_restart_keeps_descriptors),
		cmocka_unit_test(test_crash_loop_gives_up),
		cmocka_unit_test(test_upgrade_and_rollback),
		cmocka_unit_test(test_upgrade_started_ahead),
		cmocka_unit_test(test_sigterm_and_foreign_notifications),
	};

	return UT_RUN(tests);
}
