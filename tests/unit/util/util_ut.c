/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of src/util/util.c: number and size parsing at their
 * boundaries, string helpers, CRC32C against published vectors and the
 * hardware path against the software one, fd helpers, mkdir -p.
 */
#include "util/util.c"
#include "common/ut.h"

#include <sys/stat.h>

struct parse_case {
	const char *in;
	uint64_t max;
	int rc;
	uint64_t out;
};

static void
test_parse_u64(void **state)
{
	static const struct parse_case cases[] = {
		{ "0", UINT64_MAX, 0, 0 },
		{ "1", UINT64_MAX, 0, 1 },
		{ "42", 42, 0, 42 },
		{ "43", 42, -ERANGE, 0 },
		{ "18446744073709551615", UINT64_MAX, 0, UINT64_MAX },
		{ "18446744073709551616", UINT64_MAX, -ERANGE, 0 },
		{ "99999999999999999999999", UINT64_MAX, -ERANGE, 0 },
		{ "0x10", UINT64_MAX, 0, 16 },
		{ "0XfF", UINT64_MAX, 0, 255 },
		{ "0xffffffffffffffff", UINT64_MAX, 0, UINT64_MAX },
		{ "0x10000000000000000", UINT64_MAX, -ERANGE, 0 },
		/* decimal with leading zeros is still decimal (no octal surprise) */
		{ "010", UINT64_MAX, 0, 10 },
		{ "08", UINT64_MAX, 0, 8 },
		{ "00", UINT64_MAX, 0, 0 },
		{ "", UINT64_MAX, -EINVAL, 0 },
		{ "-1", UINT64_MAX, -EINVAL, 0 },
		{ "+1", UINT64_MAX, -EINVAL, 0 },
		{ " 1", UINT64_MAX, -EINVAL, 0 },
		{ "1 ", UINT64_MAX, -EINVAL, 0 },
		{ "1a", UINT64_MAX, -EINVAL, 0 },
		{ "0x", UINT64_MAX, -EINVAL, 0 },
		{ "0x-1", UINT64_MAX, -EINVAL, 0 },
		{ "0x 1", UINT64_MAX, -EINVAL, 0 },
		{ "1k", UINT64_MAX, -EINVAL, 0 },
		{ "x10", UINT64_MAX, -EINVAL, 0 },
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < UT_N(cases); i++) {
		int rc;

		v = 0xdeadbeef;
		rc = nvl_parse_u64(cases[i].in, cases[i].max, &v);
		if (rc != cases[i].rc)
			fail_msg("nvl_parse_u64(\"%s\"): rc %d, expected %d", cases[i].in, rc,
				 cases[i].rc);
		if (rc == 0 && v != cases[i].out)
			fail_msg("nvl_parse_u64(\"%s\") = %llu, expected %llu", cases[i].in,
				 (unsigned long long)v, (unsigned long long)cases[i].out);
		if (rc != 0 && v != 0xdeadbeef)
			fail_msg("nvl_parse_u64(\"%s\") wrote its output on failure", cases[i].in);
	}
	assert_int_equal(nvl_parse_u64(NULL, 1, &v), -EINVAL);
}

static void
test_parse_size(void **state)
{
	static const struct parse_case cases[] = {
		{ "0", 0, 0, 0 },
		{ "512", 0, 0, 512 },
		{ "512b", 0, 0, 512 },
		{ "512B", 0, 0, 512 },
		{ "4k", 0, 0, 4096 },
		{ "4K", 0, 0, 4096 },
		{ "4KB", 0, 0, 4096 },
		{ "4kb", 0, 0, 4096 },
		{ "4KiB", 0, 0, 4096 },
		{ "4kib", 0, 0, 4096 },
		{ "64M", 0, 0, 64ULL << 20 },
		{ "64MiB", 0, 0, 64ULL << 20 },
		{ "1G", 0, 0, 1ULL << 30 },
		{ "1g", 0, 0, 1ULL << 30 },
		{ "2T", 0, 0, 2ULL << 40 },
		{ "08M", 0, 0, 8ULL << 20 },
		{ "0x1000", 0, 0, 4096 },
		{ "0x10k", 0, 0, 16384 },
		{ "18446744073709551615", 0, 0, UINT64_MAX },
		{ "18446744073709551616", 0, -ERANGE, 0 },
		{ "16777215T", 0, 0, 16777215ULL << 40 },
		{ "16777216T", 0, -ERANGE, 0 },
		{ "17179869184G", 0, -ERANGE, 0 },
		{ "17179869183G", 0, 0, 17179869183ULL << 30 },
		{ "", 0, -EINVAL, 0 },
		{ "M", 0, -EINVAL, 0 },
		{ "-1M", 0, -EINVAL, 0 },
		{ "+1M", 0, -EINVAL, 0 },
		{ " 1M", 0, -EINVAL, 0 },
		{ "1 M", 0, -EINVAL, 0 },
		{ "1M ", 0, -EINVAL, 0 },
		{ "1.5G", 0, -EINVAL, 0 },
		{ "1GG", 0, -EINVAL, 0 },
		{ "1Gi", 0, -EINVAL, 0 },
		{ "1bb", 0, -EINVAL, 0 },
		{ "1P", 0, -EINVAL, 0 },
		{ "1x", 0, -EINVAL, 0 },
	};

	(void)state;
	for (size_t i = 0; i < UT_N(cases); i++) {
		uint64_t v = 0xdeadbeef;
		int rc = nvl_parse_size(cases[i].in, &v);

		if (rc != cases[i].rc)
			fail_msg("nvl_parse_size(\"%s\"): rc %d, expected %d", cases[i].in, rc,
				 cases[i].rc);
		if (rc == 0 && v != cases[i].out)
			fail_msg("nvl_parse_size(\"%s\") = %llu, expected %llu", cases[i].in,
				 (unsigned long long)v, (unsigned long long)cases[i].out);
	}
}

static void
test_fmt_size(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(nvl_fmt_size(0, buf, sizeof(buf)), "0 B");
	assert_string_equal(nvl_fmt_size(1023, buf, sizeof(buf)), "1023 B");
	assert_string_equal(nvl_fmt_size(1024, buf, sizeof(buf)), "1.0 KiB");
	assert_string_equal(nvl_fmt_size(64ULL << 20, buf, sizeof(buf)), "64.0 MiB");
	assert_string_equal(nvl_fmt_size(3ULL << 29, buf, sizeof(buf)), "1.5 GiB");
	assert_string_equal(nvl_fmt_size(UINT64_MAX, buf, sizeof(buf)), "16384.0 PiB");
	/* a tiny buffer truncates, never overflows */
	assert_string_equal(nvl_fmt_size(64ULL << 20, buf, 4), "64.");
}

static void
test_strlcpy(void **state)
{
	char buf[8];

	(void)state;
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(nvl_strlcpy(buf, "", sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(nvl_strlcpy(buf, "1234567", sizeof(buf)), 0); /* exactly fits */
	assert_string_equal(buf, "1234567");
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(nvl_strlcpy(buf, "12345678", sizeof(buf)), -ENAMETOOLONG);
	assert_string_equal(buf, "1234567");
	assert_int_equal(nvl_strlcpy(buf, "a much longer string", sizeof(buf)), -ENAMETOOLONG);
	assert_string_equal(buf, "a much ");
	assert_int_equal(nvl_strlcpy(buf, "ab", 1), -ENAMETOOLONG);
	assert_string_equal(buf, "");
	buf[0] = 'q';
	assert_int_equal(nvl_strlcpy(buf, "ab", 0), -ENAMETOOLONG);
	assert_int_equal(buf[0], 'q'); /* size 0: nothing written */
}

static void
test_strpad(void **state)
{
	char f[8];

	(void)state;
	nvl_strpad(f, sizeof(f), "abc");
	assert_memory_equal(f, "abc     ", 8);
	nvl_strpad(f, sizeof(f), "0123456789");
	assert_memory_equal(f, "01234567", 8);
	nvl_strpad(f, sizeof(f), "");
	assert_memory_equal(f, "        ", 8);
}

/* RFC 3720 appendix B.4 (iSCSI uses the same CRC32C as NVMe/TCP digests) */
static void
test_crc32c_vectors(void **state)
{
	uint8_t buf[48];

	(void)state;
	assert_int_equal(nvl_crc32c("123456789", 9), 0xE3069283u);
	assert_int_equal(nvl_crc32c("", 0), 0);
	memset(buf, 0, 32);
	assert_int_equal(nvl_crc32c(buf, 32), 0x8A9136AAu);
	memset(buf, 0xff, 32);
	assert_int_equal(nvl_crc32c(buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(nvl_crc32c(buf, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(nvl_crc32c(buf, 32), 0x113FDB5Cu);
	/* same vectors through the software path directly */
	assert_int_equal(crc32c_sw(0xffffffffu, (const uint8_t *)"123456789", 9) ^ 0xffffffffu,
			 0xE3069283u);
	assert_int_equal(crc32c_sw(0xffffffffu, buf, 32) ^ 0xffffffffu, 0x113FDB5Cu);
}

/* bit-at-a-time reference, independent of the tables */
static uint32_t
crc32c_ref(const uint8_t *p, size_t len)
{
	uint32_t c = 0xffffffffu;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
	}
	return c ^ 0xffffffffu;
}

static void
test_crc32c_paths_agree(void **state)
{
	uint8_t *buf = malloc(1024 + 16);
	uint32_t seed = 12345;

	(void)state;
	assert_non_null(buf);
	for (size_t i = 0; i < 1024 + 16; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
	for (size_t mis = 0; mis < 8; mis++) {
		for (size_t len = 0; len <= 1024; len++) {
			const uint8_t *p = buf + mis;
			uint32_t ref = crc32c_ref(p, len);
			uint32_t sw = crc32c_sw(0xffffffffu, p, len) ^ 0xffffffffu;

			if (sw != ref)
				fail_msg("sw crc32c len %zu mis %zu: %08x != %08x", len, mis, sw, ref);
#if defined(__x86_64__)
			if (__builtin_cpu_supports("sse4.2")) {
				uint32_t hw = crc32c_hw(0xffffffffu, p, len) ^ 0xffffffffu;

				if (hw != ref)
					fail_msg("hw crc32c len %zu mis %zu: %08x != %08x", len, mis,
						 hw, ref);
			}
#endif
			if (nvl_crc32c(p, len) != ref)
				fail_msg("nvl_crc32c len %zu mis %zu", len, mis);
		}
	}
	/* chaining: crc(a||b) computed in two updates equals one pass */
	for (size_t split = 0; split <= 1024; split += 37) {
		uint32_t c = nvl_crc32c_update(0xffffffffu, buf, split);

		c = nvl_crc32c_update(c, buf + split, 1024 - split) ^ 0xffffffffu;
		assert_int_equal(c, crc32c_ref(buf, 1024));
	}
	free(buf);
}

static void
test_fd_helpers(void **state)
{
	int p[2];
	char out[8];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(nvl_write_all(p[1], "hello", 5), 0);
	assert_int_equal(nvl_read_all(p[0], out, 5), 0);
	assert_memory_equal(out, "hello", 5);
	assert_int_equal(nvl_write_all(p[1], "ab", 2), 0);
	close(p[1]);
	/* 2 bytes then EOF: a short read is an error, not a silent partial success */
	assert_int_equal(nvl_read_all(p[0], out, 4), -EPIPE);
	close(p[0]);
	assert_int_equal(nvl_read_all(-1, out, 1), -EBADF);
	assert_int_equal(nvl_write_all(-1, out, 1), -EBADF);
}

static void
test_random_bytes(void **state)
{
	uint8_t a[64], b[64];

	(void)state;
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	assert_int_equal(nvl_random_bytes(a, sizeof(a)), 0);
	assert_int_equal(nvl_random_bytes(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(nvl_random_bytes(a, 0), 0);
}

static void
test_mkdir_p(void **state)
{
	char base[] = "/tmp/nvl-ut-mkdir-XXXXXX";
	char path[PATH_MAX], file[PATH_MAX];
	struct stat st;
	int fd;

	(void)state;
	ut_tmpdir(base);
	snprintf(path, sizeof(path), "%s/a/b/c", base);
	assert_int_equal(nvl_mkdir_p(path), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(nvl_mkdir_p(path), 0); /* exists: fine */
	snprintf(file, sizeof(file), "%s/f", base);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/f/x", base);
	assert_int_equal(nvl_mkdir_p(path), -ENOTDIR);
	{
		char longp[PATH_MAX + 16];

		memset(longp, 'a', sizeof(longp) - 1);
		longp[0] = '/';
		longp[sizeof(longp) - 1] = '\0';
		assert_int_equal(nvl_mkdir_p(longp), -ENAMETOOLONG);
	}
	unlink(file);
	snprintf(path, sizeof(path), "%s/a/b/c", base);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/a/b", base);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/a", base);
	rmdir(path);
	assert_int_equal(rmdir(base), 0);
}

static void
test_align_macros(void **state)
{
	(void)state;
	assert_int_equal(NVL_ALIGN_UP(0u, 512u), 0);
	assert_int_equal(NVL_ALIGN_UP(1u, 512u), 512);
	assert_int_equal(NVL_ALIGN_UP(512u, 512u), 512);
	assert_int_equal(NVL_ALIGN_DOWN(1023ULL, 512), 512);
	assert_true(NVL_IS_POW2(1));
	assert_true(NVL_IS_POW2(4096));
	assert_false(NVL_IS_POW2(0));
	assert_false(NVL_IS_POW2(4097));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_fmt_size),
		cmocka_unit_test(test_strlcpy),
		cmocka_unit_test(test_strpad),
		cmocka_unit_test(test_crc32c_vectors),
		cmocka_unit_test(test_crc32c_paths_agree),
		cmocka_unit_test(test_fd_helpers),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_mkdir_p),
		cmocka_unit_test(test_align_macros),
	};

	return UT_RUN(tests);
}
