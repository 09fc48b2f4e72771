/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of src/util/sock.c: Unix listeners (mode before listen, stale
 * socket takeover, a live one refused, non-sockets left alone), TCP listen
 * and connect, descriptor passing at its bounds (extra descriptors closed
 * and reported, 0-byte messages carrying descriptors), and accept with a
 * full descriptor table: shed with the reserve, served for the control
 * plane, -EMFILE without a reserve, recovery.
 */
#include "util/sock.c"
#include "common/ut.h"

#include <arpa/inet.h>
#include <sys/resource.h>

static char g_dir[] = "/tmp/nvl-sock-ut.XXXXXX";

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(g_dir) ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
path_in_dir(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", g_dir, name);
}

static void
test_listen_unix(void **state)
{
	char path[256], file[256], longp[200];
	struct stat st;
	int l1, l2, c;

	(void)state;
	path_in_dir(path, sizeof(path), "a.sock");
	assert_int_equal(nvl_sock_listen_unix(path, SOCK_STREAM, 0600, 8, &l1), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_true(fcntl(l1, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(l1, F_GETFL) & O_NONBLOCK);
	assert_int_equal(nvl_sock_unix_live(path, SOCK_STREAM), 1);
	/* a live server is never taken over */
	assert_int_equal(nvl_sock_listen_unix(path, SOCK_STREAM, 0600, 8, &l2), -EADDRINUSE);
	assert_int_equal(nvl_sock_connect_unix(path, SOCK_STREAM, 0, &c), 0);
	close(c);
	/* ... a dead one's socket file is */
	close(l1);
	assert_int_equal(nvl_sock_unix_live(path, SOCK_STREAM), 0);
	assert_int_equal(nvl_sock_listen_unix(path, SOCK_STREAM, 0660, 8, &l2), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
	close(l2);
	unlink(path);
	assert_int_equal(nvl_sock_unix_live(path, SOCK_STREAM), 0);
	assert_int_equal(nvl_sock_connect_unix(path, SOCK_STREAM, 0, &c), -ENOENT);

	/* a seqpacket listener, probed with its own type */
	assert_int_equal(nvl_sock_listen_unix(path, SOCK_SEQPACKET, 0, 8, &l1), 0);
	assert_int_equal(nvl_sock_unix_live(path, SOCK_SEQPACKET), 1);
	/* a server of another type counts as live */
	assert_int_equal(nvl_sock_unix_live(path, SOCK_STREAM), 1);
	close(l1);
	unlink(path);

	/* a file that is not a socket stays */
	path_in_dir(file, sizeof(file), "plain");
	c = open(file, O_CREAT | O_WRONLY, 0600);
	assert_true(c >= 0);
	close(c);
	assert_int_equal(nvl_sock_listen_unix(file, SOCK_STREAM, 0, 8, &l1), -EEXIST);
	assert_int_equal(access(file, F_OK), 0);

	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(nvl_sock_listen_unix(longp, SOCK_STREAM, 0, 8, &l1), -ENAMETOOLONG);
	assert_int_equal(nvl_sock_listen_unix("", SOCK_STREAM, 0, 8, &l1), -EINVAL);
	assert_int_equal(nvl_sock_connect_unix(longp, SOCK_STREAM, 0, &c), -ENAMETOOLONG);
}

static uint16_t
bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void
test_tcp(void **state)
{
	char port[16];
	int l, c, a, rc;

	(void)state;
	assert_int_equal(nvl_sock_listen_tcp("127.0.0.1", "0", AF_INET, 8, &l), 0);
	assert_true(fcntl(l, F_GETFL) & O_NONBLOCK);
	snprintf(port, sizeof(port), "%u", bound_port(l));
	assert_int_equal(nvl_sock_accept(l, 0, "ut", &a), -EAGAIN);
	assert_int_equal(nvl_sock_connect_tcp("127.0.0.1", port, 0, &c), 0);
	assert_int_equal(nvl_sock_accept(l, 0, "ut", &a), 0);
	assert_true(fcntl(a, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(a, F_GETFL) & O_NONBLOCK);
	assert_int_equal(write(c, "x", 1), 1);
	close(c);
	close(a);
	/* names are not resolved; a family that does not fit is refused */
	assert_int_equal(nvl_sock_listen_tcp("localhost", "0", AF_INET, 8, &c), -EINVAL);
	assert_int_equal(nvl_sock_listen_tcp("::1", "0", AF_INET, 8, &c), -EINVAL);
	assert_int_equal(nvl_sock_listen_tcp("127.0.0.1", "port", AF_INET, 8, &c), -EINVAL);
	/* the port is taken (SO_REUSEADDR does not allow two listeners) */
	assert_int_equal(nvl_sock_listen_tcp("127.0.0.1", port, AF_UNSPEC, 8, &c), -EADDRINUSE);
	close(l);
	/* nobody listens there any more */
	assert_int_equal(nvl_sock_connect_tcp("127.0.0.1", port, 0, &c), -ECONNREFUSED);
	/* IPv6, where the machine has it */
	rc = nvl_sock_listen_tcp("::1", "0", AF_INET6, 8, &l);
	if (rc == 0) {
		snprintf(port, sizeof(port), "%u", bound_port(l));
		assert_int_equal(nvl_sock_connect_tcp("::1", port, SOCK_NONBLOCK, &c), 0);
		close(c);
		close(l);
	} else {
		assert_true(rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT);
	}
}

static void
test_pass_fds(void **state)
{
	int sv[2], p[2], got[4], flags;
	int fds[NVL_SOCK_MAX_FDS + 1];
	unsigned n;
	char buf[16];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct iovec out = { .iov_base = "hello", .iov_len = 5 };
	ssize_t r;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	assert_int_equal(pipe(p), 0);
	/* three descriptors, room for two: the third is closed and reported */
	fds[0] = p[0];
	fds[1] = p[1];
	fds[2] = p[0];
	assert_int_equal(nvl_sock_send_fds(sv[0], &out, 1, fds, 3, 0), 5);
	r = nvl_sock_recv_fds(sv[1], &iov, 1, got, 2, &n, MSG_DONTWAIT, &flags);
	assert_int_equal(r, 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(n, 2);
	assert_true(flags & MSG_CTRUNC);
	assert_true(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
	/* they are the pipe: write on one end, read on the other */
	assert_int_equal(write(got[1], "z", 1), 1);
	assert_int_equal(read(p[0], buf, 1), 1);
	assert_int_equal(buf[0], 'z');
	close(got[0]);
	close(got[1]);

	/* a 0-byte message may carry descriptors; with no room they are closed */
	out.iov_len = 0;
	assert_int_equal(nvl_sock_send_fds(sv[0], &out, 1, fds, 1, 0), 0);
	r = nvl_sock_recv_fds(sv[1], &iov, 1, NULL, 0, &n, MSG_DONTWAIT, &flags);
	assert_int_equal(r, 0);
	assert_int_equal(n, 0);
	assert_true(flags & MSG_CTRUNC);

	/* no descriptors, no flags */
	out.iov_len = 5;
	assert_int_equal(nvl_sock_send_fds(sv[0], &out, 1, NULL, 0, 0), 5);
	r = nvl_sock_recv_fds(sv[1], &iov, 1, got, 4, &n, 0, &flags);
	assert_int_equal(r, 5);
	assert_int_equal(n, 0);
	assert_false(flags & (MSG_CTRUNC | MSG_TRUNC));
	/* nothing left */
	assert_int_equal(nvl_sock_recv_fds(sv[1], &iov, 1, got, 4, &n, MSG_DONTWAIT, NULL),
			 -EAGAIN);

	/* too many to send */
	for (unsigned i = 0; i < NVL_SOCK_MAX_FDS + 1; i++)
		fds[i] = p[0];
	assert_int_equal(nvl_sock_send_fds(sv[0], &out, 1, fds, NVL_SOCK_MAX_FDS + 1, 0), -EINVAL);
	/* exactly the most */
	assert_int_equal(nvl_sock_send_fds(sv[0], &out, 1, fds, NVL_SOCK_MAX_FDS, 0), 5);
	{
		int many[NVL_SOCK_MAX_FDS];

		r = nvl_sock_recv_fds(sv[1], &iov, 1, many, NVL_SOCK_MAX_FDS, &n, 0, &flags);
		assert_int_equal(r, 5);
		assert_int_equal(n, NVL_SOCK_MAX_FDS);
		assert_false(flags & MSG_CTRUNC);
		for (unsigned i = 0; i < n; i++)
			close(many[i]);
	}
	/* the peer gone: end of stream, and a send error */
	close(sv[0]);
	assert_int_equal(nvl_sock_recv_fds(sv[1], &iov, 1, got, 4, &n, 0, NULL), 0);
	assert_int_equal(nvl_sock_send_fds(sv[1], &out, 1, NULL, 0, 0), -EPIPE);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
}

/* Fill the descriptor table below the current soft limit. \return how many. */
static int
fill_table(int *fillers, int max)
{
	int n = 0;

	while (n < max) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0) {
			assert_int_equal(errno, EMFILE);
			break;
		}
		fillers[n++] = fd;
	}
	assert_true(n < max);
	return n;
}

static void
test_accept_exhausted(void **state)
{
	struct rlimit saved, rl;
	int l, c[4], fillers[256], nf, a, highest = 0;
	char port[16], b;

	(void)state;
	UT_SKIP_UNDER_VALGRIND("it emulates RLIMIT_NOFILE");
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	assert_int_equal(nvl_sock_listen_tcp("127.0.0.1", "0", AF_INET, 8, &l), 0);
	snprintf(port, sizeof(port), "%u", bound_port(l));
	for (int i = 0; i < 4; i++) {
		assert_int_equal(nvl_sock_connect_tcp("127.0.0.1", port, 0, &c[i]), 0);
		highest = NVL_MAX(highest, c[i]);
	}
	assert_int_equal(nvl_sock_reserve_init(NVL_SOCK_RESERVE_MAX + 1), -EINVAL);
	assert_int_equal(nvl_sock_reserve_init(2), 0);
	for (unsigned i = 0; i < g_res.have; i++)
		highest = NVL_MAX(highest, g_res.fds[i]);
	rl = saved;
	rl.rlim_cur = (rlim_t)highest + 16;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	nf = fill_table(fillers, (int)NVL_ARRAY_SIZE(fillers));

	/* data plane: the pending connection is accepted and closed, the reserve kept */
	assert_int_equal(nvl_sock_accept(l, 0, "ut", &a), -ECONNABORTED);
	assert_int_equal(g_res.have, 2);
	assert_true(g_res.exhausted);
	assert_int_equal(g_res.ep_shed, 1);
	assert_int_equal(read(c[0], &b, 1), 0); /* its peer sees the end */

	/* control plane: served with a reserve descriptor */
	assert_int_equal(nvl_sock_accept(l, NVL_SOCK_ACCEPT_CONTROL, "ut-rpc", &a), 0);
	assert_int_equal(g_res.have, 1);
	assert_int_equal(g_res.missing, 1);
	assert_int_equal(write(c[1], "q", 1), 1);
	assert_int_equal(read(a, &b, 1), 1);
	/* it closes: the next call refills the reserve first, then sheds */
	close(a);
	assert_int_equal(nvl_sock_accept(l, 0, "ut", &a), -ECONNABORTED);
	assert_int_equal(g_res.have, 2);
	assert_int_equal(g_res.missing, 0);

	/* no reserve at all: nothing can be done */
	nvl_sock_reserve_fini();
	nf += fill_table(fillers + nf, (int)NVL_ARRAY_SIZE(fillers) - nf);
	assert_int_equal(nvl_sock_accept(l, 0, "ut", &a), -EMFILE);
	assert_int_equal(nvl_sock_accept(l, NVL_SOCK_ACCEPT_CONTROL, "ut", &a), -EMFILE);
	assert_int_equal(g_res.ep_deferred, 2);

	/* descriptors free again: the waiting connection is accepted, the episode ends */
	for (int i = 0; i < nf; i++)
		close(fillers[i]);
	assert_int_equal(nvl_sock_accept(l, 0, "ut", &a), 0);
	assert_false(g_res.exhausted);
	assert_int_equal(write(c[3], "w", 1), 1);
	assert_int_equal(read(a, &b, 1), 1);
	assert_int_equal(b, 'w');
	close(a);
	{
		int none;

		assert_int_equal(nvl_sock_accept(l, 0, "ut", &none), -EAGAIN);
	}
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	for (int i = 0; i < 4; i++)
		close(c[i]);
	close(l);
}

static void
test_fd_limit_raise(void **state)
{
	struct rlimit saved, rl;
	uint64_t lim = 0;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	rl = saved;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max > 64) {
		rl.rlim_cur = 64;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	assert_int_equal(nvl_fd_limit_raise(&lim), 0);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_true(rl.rlim_cur == rl.rlim_max || saved.rlim_max == RLIM_INFINITY);
	assert_int_equal(lim, (uint64_t)rl.rlim_cur);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listen_unix),
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_pass_fds),
		cmocka_unit_test(test_accept_exhausted),
		cmocka_unit_test(test_fd_limit_raise),
	};
	const char *f = getenv("UT_FILTER");

	if (f && *f)
		cmocka_set_test_filter(f);
	return cmocka_run_group_tests(tests, setup, teardown);
}
