/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of libnvlend's URI parser (src/host/uri.c): the four schemes,
 * IPv6 in brackets, default ports, nsid forms, percent-encoding, and a table
 * of malformed inputs that must fail without a partial result.
 */
#include "host/uri.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define NQN "nqn.2024-01.io.nvlend:disk1"

struct good {
	const char *uri;
	enum nvl_uri_kind kind;
	const char *path, *host, *port, *nqn, *name;
	uint32_t nsid;
};

static void
test_valid(void **state)
{
	static const struct good t[] = {
		{ "nvme+shm:///run/nvlend.sock?nqn=" NQN, NVL_URI_NVME_SHM, "/run/nvlend.sock", "",
		  "", NQN, "", 0 },
		{ "nvme+shm:///run/a.sock?nqn=" NQN "&nsid=3", NVL_URI_NVME_SHM, "/run/a.sock", "",
		  "", NQN, "", 3 },
		{ "nvme+shm:///r?nsid=4294967294&nqn=" NQN, NVL_URI_NVME_SHM, "/r", "", "", NQN, "",
		  4294967294u },
		{ "nvme+shm:///a%20b/c%3Fd?nqn=nqn.2024-01.io.x%3Ass%26t", NVL_URI_NVME_SHM,
		  "/a b/c?d", "", "", "nqn.2024-01.io.x:ss&t", "", 0 },
		{ "brick+shm:///run/b.sock?name=blk1", NVL_URI_BRICK_SHM, "/run/b.sock", "", "", "",
		  "blk1", 0 },
		{ "nvme+tcp://127.0.0.1:4421/" NQN, NVL_URI_NVME_TCP, "", "127.0.0.1", "4421", NQN,
		  "", 0 },
		{ "nvme+tcp://127.0.0.1/" NQN, NVL_URI_NVME_TCP, "", "127.0.0.1", "4420", NQN, "",
		  0 },
		{ "nvme+tcp://storage.example:1/" NQN "/7", NVL_URI_NVME_TCP, "",
		  "storage.example", "1", NQN, "", 7 },
		{ "nvme+tcp://h:65535/" NQN "/4294967294", NVL_URI_NVME_TCP, "", "h", "65535", NQN,
		  "", 4294967294u },
		{ "nvme+tcp://[::1]:4420/" NQN, NVL_URI_NVME_TCP, "", "::1", "4420", NQN, "", 0 },
		{ "nvme+tcp://[::1]/" NQN "/2", NVL_URI_NVME_TCP, "", "::1", "4420", NQN, "", 2 },
		{ "nvme+tcp://[fe80::1%25eth0]:4420/" NQN, NVL_URI_NVME_TCP, "", "fe80::1%eth0",
		  "4420", NQN, "", 0 },
		{ "nvme+tcp://h/nqn.2014-08.org.nvmexpress:uuid:"
		  "1b4e28ba-2fa1-11d2-883f-0016d3cca427/12",
		  NVL_URI_NVME_TCP, "", "h", "4420",
		  "nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427", "", 12 },
		{ "brick+tcp://10.0.0.2:5000/tier0", NVL_URI_BRICK_TCP, "", "10.0.0.2", "5000", "",
		  "tier0", 0 },
		{ "brick+tcp://[2001:db8::2]/tier%31", NVL_URI_BRICK_TCP, "", "2001:db8::2", "4430",
		  "", "tier1", 0 },
		{ "nvme+rdma://192.0.2.10/" NQN, NVL_URI_NVME_RDMA, "", "192.0.2.10", "4420", NQN, "",
		  0 },
		{ "nvme+rdma://[fd00::1]:4421/" NQN "/3", NVL_URI_NVME_RDMA, "", "fd00::1", "4421", NQN,
		  "", 3 },
	};

	(void)state;
	for (size_t i = 0; i < NVL_ARRAY_SIZE(t); i++) {
		struct nvl_uri u;
		int rc = nvl_uri_parse(t[i].uri, &u);

		if (rc != 0)
			fail_msg("%s: %d", t[i].uri, rc);
		assert_int_equal(u.kind, t[i].kind);
		assert_string_equal(u.path, t[i].path);
		assert_string_equal(u.host, t[i].host);
		assert_string_equal(u.port, t[i].port);
		assert_string_equal(u.nqn, t[i].nqn);
		assert_string_equal(u.name, t[i].name);
		assert_int_equal(u.nsid, t[i].nsid);
	}
}

static char *
repeat(const char *prefix, char c, size_t n, const char *suffix)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);
	char *s = malloc(pl + n + sl + 1);

	memcpy(s, prefix, pl);
	memset(s + pl, c, n);
	memcpy(s + pl + n, suffix, sl + 1);
	return s;
}

static void
expect_fail(const char *uri, int want)
{
	struct nvl_uri u;
	int rc;

	memset(&u, 0x5a, sizeof(u));
	rc = nvl_uri_parse(uri, &u);
	if (want ? rc != want : rc >= 0)
		fail_msg("\"%s\": got %d, want %s%d", uri ? uri : "(null)", rc, want ? "" : "< ",
			 want);
	/* no partial result */
	for (size_t i = 0; i < sizeof(u); i++)
		assert_int_equal(((uint8_t *)&u)[i], 0x5a);
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"nvme+shm",
		"nvme+shm:",
		"nvme+shm://",
		"nvme+shm:///",
		"nvme+shm:///?nqn=" NQN,
		"nvme+shm:///p",                              /* no nqn */
		"nvme+shm://host/p?nqn=" NQN,                 /* authority must be empty */
		"nvme+shm://relative?nqn=" NQN,
		"nvme+shm:///p?nqn=",
		"nvme+shm:///p?nqn",
		"nvme+shm:///p?",
		"nvme+shm:///p?&nqn=" NQN,
		"nvme+shm:///p?nqn=" NQN "&",
		"nvme+shm:///p?nqn=" NQN "&nsid=0",
		"nvme+shm:///p?nqn=" NQN "&nsid=4294967295",
		"nvme+shm:///p?nqn=" NQN "&nsid=4294967296",
		"nvme+shm:///p?nqn=" NQN "&nsid=99999999999999999999999",
		"nvme+shm:///p?nqn=" NQN "&nsid=-1",
		"nvme+shm:///p?nqn=" NQN "&nsid=+1",
		"nvme+shm:///p?nqn=" NQN "&nsid= 1",
		"nvme+shm:///p?nqn=" NQN "&nsid=1x",
		"nvme+shm:///p?nqn=" NQN "&nsid=0x10",
		"nvme+shm:///p?nqn=" NQN "&nsid=",
		"nvme+shm:///p?nqn=" NQN "&foo=bar",
		"nvme+shm:///p?name=x",                       /* a brick key */
		"brick+shm:///p?nqn=" NQN,
		"brick+shm:///p",
		"brick+shm:///p?name=",
		"nvme+tcp://h",
		"nvme+tcp://h:4420",
		"nvme+tcp://h:4420/",
		"nvme+tcp:///" NQN,                           /* empty host */
		"nvme+tcp://:4420/" NQN,
		"nvme+tcp://h:/" NQN,
		"nvme+tcp://h:0/" NQN,
		"nvme+tcp://h:65536/" NQN,
		"nvme+tcp://h:99999999999999/" NQN,
		"nvme+tcp://h:abc/" NQN,
		"nvme+tcp://h:-1/" NQN,
		"nvme+tcp://h:+80/" NQN,
		"nvme+tcp://h: 80/" NQN,
		"nvme+tcp://h:%38%30x/" NQN,
		"nvme+tcp://::1:4420/" NQN,                   /* IPv6 without brackets */
		"nvme+tcp://[::1/" NQN,
		"nvme+tcp://[::1]x/" NQN,
		"nvme+tcp://[::1]:/" NQN,
		"nvme+tcp://[]/" NQN,
		"nvme+tcp://[::1]:4420",
		"nvme+tcp://h/" NQN "/0",
		"nvme+tcp://h/" NQN "/abc",
		"nvme+tcp://h/" NQN "/4294967295",
		"nvme+tcp://h/" NQN "/",
		"brick+tcp://h/",
		"brick+tcp://h",
		"brick+tcp://h/a/b",
		"brick+tcp://h/a%2Fb",
		/* escapes */
		"nvme+shm:///p%?nqn=" NQN,
		"nvme+shm:///p%4?nqn=" NQN,
		"nvme+shm:///p?nqn=abc%",
		"nvme+shm:///p?nqn=abc%4",
		"nvme+shm:///p?nqn=abc%zz",
		"nvme+shm:///p?nqn=abc%00def",
		"nvme+shm:///p?nqn=abc%-1",
		"nvme+shm:///p?nqn=abc% 1",
		"nvme+shm:///p?nqn=abc%+1",
		"nvme+shm:///p?nqn=abc%1g",
		"nvme+shm:///p?nqn=abc%0x1",
		"nvme+tcp://h%/" NQN,
		"nvme+tcp://[::1%]/" NQN,
		"nvme+tcp://h/nqn%g1",
		"nvme+tcp:/h/" NQN,
		"nvme+tcp:h/" NQN,
		"NVME+TCP://h/" NQN,
	};

	(void)state;
	expect_fail(NULL, -EINVAL);
	for (size_t i = 0; i < NVL_ARRAY_SIZE(bad); i++)
		expect_fail(bad[i], 0);
	/* unknown schemes */
	expect_fail("http://example.com/", -EPROTONOSUPPORT);
	expect_fail("nvme+iwarp://h/" NQN, -EPROTONOSUPPORT);
	expect_fail("nvme+rdma://h", -EINVAL);
	expect_fail("nvme+rdma://h:0/" NQN, -EINVAL);
	expect_fail("nvme+rdma://h/" NQN "/0", -EINVAL);
	expect_fail("nvme+shm//p", -EINVAL);
}

static void
test_lengths(void **state)
{
	struct nvl_uri u;
	char *s;

	(void)state;
	/* path: 107 characters fit sun_path's 108 bytes, 108 do not */
	s = repeat("nvme+shm:///", 'p', 106, "?nqn=" NQN);
	assert_int_equal(nvl_uri_parse(s, &u), 0);
	assert_int_equal(strlen(u.path), 107);
	free(s);
	s = repeat("nvme+shm:///", 'p', 107, "?nqn=" NQN);
	expect_fail(s, -ENAMETOOLONG);
	free(s);
	/* an escaped path is measured before decoding: the raw text must fit */
	s = repeat("nvme+shm:///%41", 'p', 104, "?nqn=" NQN);
	expect_fail(s, -ENAMETOOLONG);
	free(s);
	/* NQN: 255 characters fit, 256 do not */
	s = repeat("nvme+shm:///p?nqn=", 'n', 255, "");
	assert_int_equal(nvl_uri_parse(s, &u), 0);
	assert_int_equal(strlen(u.nqn), 255);
	free(s);
	s = repeat("nvme+shm:///p?nqn=", 'n', 256, "");
	expect_fail(s, 0);
	free(s);
	s = repeat("nvme+tcp://h/", 'n', 255, "/1");
	assert_int_equal(nvl_uri_parse(s, &u), 0);
	assert_int_equal(strlen(u.nqn), 255);
	free(s);
	s = repeat("nvme+tcp://h/", 'n', 256, "");
	expect_fail(s, 0);
	free(s);
	s = repeat("nvme+tcp://h/", 'n', 256, "/1");
	expect_fail(s, 0);
	free(s);
	/* host: 255 fit */
	s = repeat("nvme+tcp://", 'h', 255, ":1/" NQN);
	assert_int_equal(nvl_uri_parse(s, &u), 0);
	free(s);
	s = repeat("nvme+tcp://", 'h', 256, ":1/" NQN);
	expect_fail(s, 0);
	free(s);
	s = repeat("nvme+tcp://[", ':', 300, "]/" NQN);
	expect_fail(s, 0);
	free(s);
	/* port: leading zeros are still a number, but the field is 16 bytes */
	assert_int_equal(nvl_uri_parse("nvme+tcp://h:000000000004420/" NQN, &u), 0);
	assert_string_equal(u.port, "000000000004420");
	expect_fail("nvme+tcp://h:0000000000004420/" NQN, 0);
	/* decimal, not octal, like getaddrinfo() */
	assert_int_equal(nvl_uri_parse("nvme+tcp://h:08080/" NQN, &u), 0);
	assert_string_equal(u.port, "08080");
	expect_fail("nvme+tcp://h:0177777/" NQN, 0);
	expect_fail("nvme+tcp://h:00000/" NQN, 0);
	/* brick name: 127 fit */
	s = repeat("brick+tcp://h/", 'b', 127, "");
	assert_int_equal(nvl_uri_parse(s, &u), 0);
	free(s);
	s = repeat("brick+tcp://h/", 'b', 128, "");
	expect_fail(s, 0);
	free(s);
	s = repeat("brick+shm:///p?name=", 'b', 128, "");
	expect_fail(s, 0);
	free(s);
	/* a very long input of nothing but escapes */
	s = repeat("nvme+shm:///p?nqn=", '%', 100000, "");
	expect_fail(s, 0);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
