/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of src/util/stateblob.c: versions alternate between the two
 * slots; a write killed at each step (simulated by damaging the slot being
 * written) leaves the previous version readable; both slots damaged is an
 * error, never a wrong answer; the capacity is enforced; and the blob a
 * previous worker stored is taken back with its contents: the test plays the
 * supervisor (a NOTIFY_SOCKET datagram socket receiving FDSTORE=1), then
 * hands the descriptor back through LISTEN_FDS as the keeper would; and a
 * hold keeps the untaken descriptors until a later start took its own.
 */
#include "util/stateblob.c"
#include "util/fdstore.c"
#include "common/ut.h"

#include <sys/socket.h>
#include <sys/un.h>

static void
test_versions_and_torn_writes(void **state)
{
	struct nvl_stateblob *b;
	const void *d;
	size_t len;
	uint64_t seq;
	bool existed;

	(void)state;
	assert_int_equal(nvl_stateblob_open("ut.blob", 100, &b, &existed), 0);
	assert_false(existed);
	assert_int_equal(nvl_stateblob_read(b, &d, &len, &seq), 0);
	assert_int_equal(len, 0);
	assert_int_equal(seq, 0);
	assert_int_equal(nvl_stateblob_write(b, "one", 3), 0);
	assert_int_equal(nvl_stateblob_write(b, "two!", 4), 0);
	assert_int_equal(nvl_stateblob_read(b, &d, &len, &seq), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(d, "two!", 4);
	assert_int_equal(seq, 2);
	/* a write killed after step 1 (seq cleared): "one"'s slot is about to be
	 * rewritten; the newest complete version must still be "two!" */
	assert_int_equal(nvl_stateblob_write(b, "three", 5), 0);
	{
		struct sb_header *h = sb_hdr(b);
		int newest = h->slot[0].seq > h->slot[1].seq ? 0 : 1;

		/* killed during step 2 of the next write: data half rewritten, CRC stale */
		memcpy(sb_data(b, newest), "XXXXX", 5);
		assert_int_equal(nvl_stateblob_read(b, &d, &len, &seq), 0);
		assert_memory_equal(d, "two!", 4);
		/* and the other slot damaged too: an error, not a wrong version */
		sb_data(b, !newest)[0] ^= 1;
		assert_int_equal(nvl_stateblob_read(b, &d, &len, &seq), -EBADMSG);
	}
	/* a later write repairs it */
	assert_int_equal(nvl_stateblob_write(b, "four", 4), 0);
	assert_int_equal(nvl_stateblob_read(b, &d, &len, &seq), 0);
	assert_memory_equal(d, "four", 4);
	assert_int_equal(nvl_stateblob_write(b, NULL, 8192), -E2BIG);
	nvl_stateblob_close(b, true);
	assert_int_equal(nvl_stateblob_open("bad:name", 10, &b, &existed), -EINVAL);
	assert_int_equal(nvl_stateblob_open("x", 0, &b, &existed), -EINVAL);
}

static void
test_taken_back_after_restart(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct nvl_stateblob *b;
	char dir[] = "/tmp/nvl-sb-ut.XXXXXX", buf[256], num[16];
	const void *d;
	size_t len;
	uint64_t seq;
	bool existed;
	int s, fd = -1;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir);
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* the worker, supervised */
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
	assert_int_equal(nvl_fdstore_init(), 0);
	assert_true(nvl_fdstore_available());
	assert_int_equal(nvl_stateblob_open("ut.config", 4096, &b, &existed), 0);
	assert_false(existed);
	assert_int_equal(nvl_stateblob_write(b, "{\"calls\": 3}", 12), 0);
	/* the supervisor keeps what arrived with FDSTORE=1 */
	{
		union {
			char c[CMSG_SPACE(sizeof(int))];
			struct cmsghdr a;
		} u;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.c,
				     .msg_controllen = sizeof(u.c) };
		ssize_t n = recvmsg(s, &mh, MSG_DONTWAIT);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

		assert_true(n > 0);
		buf[n] = '\0';
		assert_non_null(strstr(buf, "FDSTORE=1"));
		assert_non_null(strstr(buf, "FDNAME=ut.config"));
		assert_non_null(cm);
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	}
	/* the worker dies without closing the blob properly */
	munmap(b->map, b->map_len);
	free(b);
	/* the next worker gets it back at fd 3 */
	assert_int_equal(dup2(fd, 3), 3);
	close(fd);
	snprintf(num, sizeof(num), "%d", (int)getpid());
	setenv("LISTEN_PID", num, 1);
	setenv("LISTEN_FDS", "1", 1);
	setenv("LISTEN_FDNAMES", "ut.config", 1);
	assert_int_equal(nvl_fdstore_init(), 1);
	assert_int_equal(nvl_stateblob_open("ut.config", 4096, &b, &existed), 0);
	assert_true(existed);
	assert_int_equal(nvl_stateblob_read(b, &d, &len, &seq), 0);
	assert_int_equal(len, 12);
	assert_memory_equal(d, "{\"calls\": 3}", 12);
	nvl_stateblob_close(b, false);
	nvl_fdstore_release_untaken();
	unsetenv("NOTIFY_SOCKET");
	g_fds.available = false;
	close(s);
	unlink(sa.sun_path);
	rmdir(dir);
}

/* /dev/null at descriptor want (as LISTEN_FDS hands them) */
static void
null_at(int want)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	if (fd != want) {
		assert_int_equal(dup2(fd, want), want);
		close(fd);
	}
}

/* A start that finishes later holds the release of what nobody took yet
 * (lending rebuilds its targets, and takes their listeners, after READY). */
static void
test_hold_untaken(void **state)
{
	char num[16];
	int fd;

	(void)state;
	null_at(3);
	null_at(4);
	snprintf(num, sizeof(num), "%d", (int)getpid());
	setenv("LISTEN_PID", num, 1);
	setenv("LISTEN_FDS", "2", 1);
	setenv("LISTEN_FDNAMES", "ut.early:ut.late", 1);
	assert_int_equal(nvl_fdstore_init(), 2);
	assert_true(nvl_fdstore_take("ut.early") >= 0);
	nvl_fdstore_hold_untaken();
	nvl_fdstore_hold_untaken();
	nvl_fdstore_release_untaken(); /* READY: held twice, nothing released */
	assert_true(fcntl(4, F_GETFD) >= 0);
	nvl_fdstore_unhold_untaken();
	assert_true(fcntl(4, F_GETFD) >= 0);
	/* the later start takes its descriptor, then lets the rest go */
	fd = nvl_fdstore_take("ut.late");
	assert_int_equal(fd, 4);
	nvl_fdstore_unhold_untaken();
	assert_int_equal(g_fds.n, 0);
	assert_true(fcntl(4, F_GETFD) >= 0); /* taken: the taker's */
	close(3);
	close(4);
	/* without a hold, untaken ones go at once */
	null_at(3);
	setenv("LISTEN_PID", num, 1); /* read once: unset by the first init */
	setenv("LISTEN_FDS", "1", 1);
	setenv("LISTEN_FDNAMES", "ut.unused", 1);
	assert_int_equal(nvl_fdstore_init(), 1);
	nvl_fdstore_release_untaken();
	assert_int_equal(fcntl(3, F_GETFD), -1);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	g_fds.available = false;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_versions_and_torn_writes),
		cmocka_unit_test(test_taken_back_after_restart),
		cmocka_unit_test(test_hold_untaken),
	};

	return UT_RUN(tests);
}
