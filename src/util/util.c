/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers declared in util.h. Stateless and thread-safe. */
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Leading number of s: decimal, or hexadecimal after "0x"/"0X". Not strtoull's
 * base 0, which reads "010" as octal 8 and rejects "08"; and no sign or
 * leading space, which strtoull would silently accept.
 */
static int
parse_number(const char *s, char **end, unsigned long long *v)
{
	int base = 10;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && isxdigit((unsigned char)s[2])) {
		base = 16;
		s += 2;
	}
	errno = 0;
	*v = strtoull(s, end, base);
	if (errno == ERANGE)
		return -ERANGE;
	return 0;
}

int
nvl_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int rc;

	rc = parse_number(s, &end, &v);
	if (rc < 0)
		return rc;
	if (*end != '\0')
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int
nvl_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;
	int rc;

	rc = parse_number(s, &end, &v);
	if (rc < 0)
		return rc;
	if (*end != '\0') {
		char c = (char)tolower((unsigned char)*end);
		const char *rest = end + 1;

		switch (c) {
		case 'b': mult = 1; break;
		case 'k': mult = NVL_KIB; break;
		case 'm': mult = NVL_MIB; break;
		case 'g': mult = NVL_GIB; break;
		case 't': mult = NVL_GIB * 1024; break;
		default: return -EINVAL;
		}
		if (c != 'b') {
			/* accept K, KB, KiB, k, kb, kib */
			if (strcasecmp(rest, "") != 0 && strcasecmp(rest, "b") != 0 &&
			    strcasecmp(rest, "ib") != 0)
				return -EINVAL;
		} else if (*rest != '\0') {
			return -EINVAL;
		}
	}
	if (mult != 1 && v > UINT64_MAX / mult)
		return -ERANGE;
	*out = (uint64_t)v * mult;
	return 0;
}

const char *
nvl_fmt_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	unsigned u = 0;

	while (v >= 1024.0 && u + 1 < NVL_ARRAY_SIZE(units)) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

int
nvl_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n;

	if (size == 0)
		return -ENAMETOOLONG;
	n = strnlen(src, size);
	if (n >= size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return -ENAMETOOLONG;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

void
nvl_strpad(void *dst, size_t width, const char *src)
{
	size_t n = strnlen(src, width);

	memset(dst, ' ', width);
	memcpy(dst, src, n);
}

int
nvl_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
nvl_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
nvl_random_bytes(void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
nvl_mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	char *p;

	if (nvl_strlcpy(tmp, path, sizeof(tmp)) < 0)
		return -ENAMETOOLONG;
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int
nvl_mkdir_private(const char *path)
{
	char parent[PATH_MAX];
	char *slash;
	struct stat st;
	int rc;

	if (nvl_strlcpy(parent, path, sizeof(parent)) < 0)
		return -ENAMETOOLONG;
	slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		rc = nvl_mkdir_p(parent);
		if (rc < 0)
			return rc;
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return -EPERM;
	if ((st.st_mode & 077) && chmod(path, 0700) < 0)
		return -errno;
	return 0;
}

const char *
nvl_default_rpc_socket(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (getuid() == 0)
		snprintf(buf, len, "/run/nvlend/nvlend.sock");
	else if (xdg && *xdg)
		snprintf(buf, len, "%s/nvlend.sock", xdg);
	else
		snprintf(buf, len, "/tmp/nvlend-%u/nvlend.sock", (unsigned)getuid());
	return buf;
}

int
nvl_socket_owner_ok(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return -EPERM;
	return 0;
}

/*
 * CRC32C, slicing-by-8 in software; uses the SSE4.2 crc32 instruction when
 * the CPU has it (decided once). Polynomial 0x1EDC6F41 (reflected 0x82F63B78)
 * as NVMe/TCP's HDGST/DDGST require (NVMe/TCP transport spec, 3.6.2.7).
 */
static uint32_t crc32c_table[8][256];

static void __attribute__((constructor))
crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
		crc32c_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc32c_table[t][i] = (crc32c_table[t - 1][i] >> 8) ^
					     crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
}

static uint32_t
crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		w ^= crc;
		crc = crc32c_table[7][w & 0xff] ^ crc32c_table[6][(w >> 8) & 0xff] ^
		      crc32c_table[5][(w >> 16) & 0xff] ^ crc32c_table[4][(w >> 24) & 0xff] ^
		      crc32c_table[3][(w >> 32) & 0xff] ^ crc32c_table[2][(w >> 40) & 0xff] ^
		      crc32c_table[1][(w >> 48) & 0xff] ^ crc32c_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t
nvl_crc32c_update(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
	static int have_hw = -1;

	if (nvl_unlikely(have_hw < 0)) {
		__builtin_cpu_init();
		have_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	}
	if (have_hw)
		return crc32c_hw(crc, buf, len);
#endif
	return crc32c_sw(crc, buf, len);
}

bool
nvl_sched_realtime(bool on)
{
	struct sched_param sp = { .sched_priority = on ? 1 : 0 };
	const char *off = getenv("NVLEND_NO_REALTIME");

	if (on && off && off[0] && strcmp(off, "0") != 0)
		return false;
	if (sched_setscheduler(0, on ? SCHED_FIFO | SCHED_RESET_ON_FORK : SCHED_OTHER, &sp) < 0)
		return false;
	return on;
}
