/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the reconnecting session (src/host/session.c) that need no
 * target: the NVMe status -> errno table, the namespace identity check used
 * after a reconnect, and request validation and queueing/failing on a queue
 * without a controller. Which statuses count as a lost path, keeping and
 * resubmitting, and the reconnect policy are the core's (ctrlr_ut.c); the
 * reconnect is exercised end to end by tests/functional/attach_restart.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "host/session.c"

static void
test_status_to_errno(void **state)
{
	static const struct {
		uint16_t sc;
		int rc;
	} t[] = {
		{ NVL_NVME_SC_SUCCESS, 0 },
		{ NVL_NVME_SC_NS_WRITE_PROTECTED, -EROFS },
		{ NVL_NVME_SC_LBA_OUT_OF_RANGE, -EINVAL },
		{ NVL_NVME_SC_CAPACITY_EXCEEDED, -ENOSPC },
		{ NVL_NVME_SC_RESERVATION_CONFLICT, -EACCES },
		{ NVL_NVME_SC_INVALID_OPCODE, -EOPNOTSUPP },
		{ NVL_NVME_SC_INTERNAL, -EIO },
		{ NVL_NVME_SC_DATA_TRANSFER_ERROR, -EIO },
	};

	for (size_t i = 0; i < NVL_ARRAY_SIZE(t); i++)
		assert_int_equal(session_errno_from_status(t[i].sc), t[i].rc);
}

static void
test_ns_identity(void **state)
{
	struct nvl_ns_info a = { .block_size = 512, .num_blocks = 1000 }, b = a;

	a.nguid[0] = 1;
	b.nguid[0] = 1;
	assert_true(ns_same(&a, &b));
	b.num_blocks = 1001;
	assert_false(ns_same(&a, &b)); /* resized */
	b = a;
	b.block_size = 4096;
	assert_false(ns_same(&a, &b));
	b = a;
	b.nguid[0] = 2;
	assert_false(ns_same(&a, &b)); /* another namespace */
	b = a;
	memset(b.nguid, 0, 16);
	assert_true(ns_same(&a, &b)); /* an identifier not reported: not compared */
}

static int g_done, g_last;

static void
io_cb(struct host_session_io *io, int status)
{
	g_done++;
	g_last = status;
}

static void
test_submit_validation(void **state)
{
	struct host_session s = { 0 };
	struct host_session_queue *q = calloc(1, sizeof(*q));
	struct host_session_io io = { 0 };
	char buf[4096];
	static const struct {
		uint8_t op;
		uint64_t off, len;
		bool ro;
		int rc;
	} t[] = {
		{ HOST_SESSION_READ, 0, 4096, false, 0 },
		{ HOST_SESSION_READ, 0, 0, false, -EINVAL },           /* empty */
		{ HOST_SESSION_READ, 100, 512, false, -EINVAL },       /* misaligned offset */
		{ HOST_SESSION_READ, 0, 100, false, -EINVAL },         /* misaligned length */
		{ HOST_SESSION_READ, 1048064, 1024, false, -EINVAL },  /* past the end */
		{ HOST_SESSION_READ, UINT64_MAX - 511, 512, false, -EINVAL }, /* wraps */
		{ HOST_SESSION_WRITE, 1048064, 512, false, 0 },        /* last block */
		{ HOST_SESSION_WRITE, 0, 512, true, -EROFS },
		{ HOST_SESSION_DISCARD, 0, 512, true, -EROFS },
		{ HOST_SESSION_WRITE_ZEROES, 0, 1048576, false, 0 },
		{ HOST_SESSION_FLUSH, 0, 0, true, 0 },
		{ 99, 0, 512, false, -EINVAL },
	};
	int ok = 0;

	assert_non_null(q);
	s.ns.block_size = 512;
	s.ns.num_blocks = 2048; /* 1 MiB */
	q->s = &s;
	q->depth = 4;
	q->wake_fd = -1; /* no queue pair, no controller */
	TAILQ_INIT(&q->pending);
	TAILQ_INIT(&q->inflight);
	for (size_t i = 0; i < NVL_ARRAY_SIZE(t); i++) {
		struct host_session_io *x = calloc(1, sizeof(*x));

		s.opts.readonly = t[i].ro;
		x->op = t[i].op;
		x->offset = t[i].off;
		x->len = t[i].len;
		x->buf = buf;
		x->cb = io_cb;
		assert_int_equal(host_session_queue_submit(q, x), t[i].rc);
		if (t[i].rc == 0)
			ok++;
		else
			free(x);
	}
	/* a request without a callback is refused */
	io.op = HOST_SESSION_FLUSH;
	assert_int_equal(host_session_queue_submit(q, &io), -EINVAL);
	/* no controller: everything waits, then fails when the queue goes */
	assert_int_equal(host_session_queue_outstanding(q), ok);
	g_done = 0;
	{
		struct host_session_io *x, *tmp;
		struct host_session_io *keep[16];
		int n = 0;

		TAILQ_FOREACH_SAFE(x, &q->pending, link, tmp)
			keep[n++] = x;
		host_session_queue_destroy(q);
		for (int i = 0; i < n; i++)
			free(keep[i]);
	}
	assert_int_equal(g_done, ok);
	assert_int_equal(g_last, -ESHUTDOWN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_to_errno),
		cmocka_unit_test(test_ns_identity),
		cmocka_unit_test(test_submit_validation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
