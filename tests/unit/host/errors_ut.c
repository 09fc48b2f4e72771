/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of libnvlend's one failure vocabulary (src/host/errors.c): each
 * connect failure has its phrase, the target's reason follows only for the
 * failure it explains and only when it adds something, positive errno
 * values work too, and each thread keeps its own last reason.
 */
#include "host/errors.c"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

static void
test_phrases(void **state)
{
	(void)state;
	host_error_note(0, NULL);
	assert_string_equal(nvl_strerror(-ENODEV), "no such subsystem");
	assert_string_equal(nvl_strerror(ENODEV), "no such subsystem");
	assert_string_equal(nvl_strerror(-EACCES), "this host is not allowed on that subsystem");
	assert_string_equal(nvl_strerror(-EADDRNOTAVAIL),
			    "the subsystem does not listen at that address");
	assert_string_equal(nvl_strerror(-ENOENT), "no such socket");
	assert_string_equal(nvl_strerror(-ECONNREFUSED), "nothing listens at that address and port");
	assert_non_null(strstr(nvl_strerror(-EINVAL), "invalid URI"));
	assert_non_null(strstr(nvl_strerror(-EINVAL), "nvme+rdma://"));
	assert_string_equal(nvl_strerror(-ENETDOWN),
			    "no RDMA device (is rdma_rxe / a NIC driver loaded?)");
	assert_string_equal(nvl_strerror(-ENOKEY), "the DH-HMAC-CHAP key cannot be used");
	assert_string_equal(nvl_strerror(-EKEYREJECTED),
			    "the controller did not prove itself (DH-HMAC-CHAP)");
	/* no phrase of ours: the C library's */
	assert_string_equal(nvl_strerror(-ENOSPC), strerror(ENOSPC));
}

static void
test_reason(void **state)
{
	(void)state;
	host_error_note(-EREMOTEIO, "NVMe status 0x182 (Connect Invalid Parameters, IPO 8)");
	assert_string_equal(nvl_strerror(-EREMOTEIO),
			    "refused by the target (NVMe status 0x182 (Connect Invalid Parameters, "
			    "IPO 8))");
	/* the reason explains only its own failure */
	assert_string_equal(nvl_strerror(-ENODEV), "no such subsystem");
	/* a reason that only repeats the phrase is not printed twice */
	host_error_note(-ENODEV, "shm.sock refused the connection: No such subsystem");
	assert_string_equal(nvl_strerror(-ENODEV), "no such subsystem");
	host_error_note(-ENODEV, NULL);
	assert_string_equal(nvl_strerror(-ENODEV), "no such subsystem");
}

static void *
other_thread(void *arg)
{
	(void)arg;
	/* this thread has no reason noted */
	return (void *)(uintptr_t)(strcmp(nvl_strerror(-EACCES),
					  "this host is not allowed on that subsystem") == 0);
}

static void
test_threads(void **state)
{
	pthread_t t;
	void *ok = NULL;

	(void)state;
	host_error_note(-EACCES, "host h not allowed on s");
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	assert_int_equal(pthread_join(t, &ok), 0);
	assert_true(ok != NULL);
	assert_string_equal(nvl_strerror(-EACCES),
			    "this host is not allowed on that subsystem (host h not allowed on s)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_phrases),
		cmocka_unit_test(test_reason),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
