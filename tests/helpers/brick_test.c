/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * brick_test: drives a live brick through libnvlend for the functional tests
 * (tests/functional/brick_*.sh). Single-threaded; every check prints what it
 * expected and exits 1 on the first mismatch.
 *
 *   brick_test api URI                 every API error, RO/RW, shared/exclusive,
 *                                      revocation (also of a kept local mapping)
 *   brick_test hostile URI             malformed messages on a raw connection
 *   brick_test tier URI N              fill N blocks, unmap, map again, verify
 *   brick_test churn URI BASE N SECS LOG   random alloc/write/flush/free, logging
 *                                      every acknowledged step (crash tests)
 *   brick_test verify-log URI BASE N LOG  after a crash: map == acknowledged state,
 *                                      flushed data intact
 *   brick_test truncate URI ADDR LEN LOOPS  hostile local client: map ADDR read-write,
 *                                      keep the fd, ftruncate it to LEN (LOOPS > 1:
 *                                      truncate and grow back LOOPS times)
 */
#include "proto/brick.h"
#include "nvlend/brick.h"
#include "util/sock.h"
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define BS ((uint64_t)NVL_BRICK_BLOCK_SIZE)
#define A(i) ((uint64_t)(i) * BS + 0x40000000000ULL)

static const char *g_step = "";

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "brick_test: %s: %s:%d: ", g_step, __FILE__, __LINE__);     \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define EXPECT_RC(expr, want)                                                                      \
	do {                                                                                       \
		int _rc = (expr);                                                                  \
		CHECK(_rc == (want), "%s returned %d (%s), expected %d (%s)", #expr, _rc,          \
		      strerror(-_rc), (want), strerror(-(want)));                                  \
	} while (0)

static void
pattern(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

	for (size_t i = 0; i + 8 <= len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
}

static bool
pattern_ok(const uint8_t *p, size_t len, uint64_t seed)
{
	uint8_t *want = malloc(len);
	bool ok;

	pattern(want, len, seed);
	ok = memcmp(p, want, len) == 0;
	free(want);
	return ok;
}

static struct nvl_brick *
conn(const char *uri)
{
	struct nvl_brick *b;
	int rc = nvl_brick_connect(uri, &b);

	CHECK(rc == 0, "connect %s: %s", uri, strerror(-rc));
	return b;
}

/* write a whole block through a handle (pointer or WRITE messages) */
static int
put_block(struct nvl_brick *b, const struct nvl_brick_handle *h, const uint8_t *data)
{
	if (h->ptr) {
		memcpy(h->ptr, data, BS);
		return 0;
	}
	return nvl_brick_write(b, h->key, h->addr, data, BS);
}

static int
get_block(struct nvl_brick *b, const struct nvl_brick_handle *h, uint8_t *data)
{
	if (h->ptr) {
		memcpy(data, h->ptr, BS);
		return 0;
	}
	return nvl_brick_read(b, h->key, h->addr, data, BS);
}

/* ---- api --------------------------------------------------------------- */

/* A kept mapping of a revoked handle must no longer reach memory: the kernel
 * refuses to copy from it (EFAULT); a plain load or store would raise SIGBUS.
 * (Checked through a syscall so sanitizers' SIGBUS handlers stay out of it.) */
static void
check_stale_mapping_faults(void *stale)
{
	int p[2];
	ssize_t n;

	CHECK(pipe(p) == 0, "pipe");
	n = write(p[1], stale, 64); /* a pipe copies the bytes: the kernel must touch them */
	CHECK(n < 0 && errno == EFAULT, "a kept mapping of a revoked handle still reaches memory");
	n = write(p[1], (uint8_t *)stale + BS - 64, 64);
	CHECK(n < 0 && errno == EFAULT, "the end of a revoked mapping still reaches memory");
	/* and stores: the kernel copying pipe data into it must fail too */
	CHECK(write(p[1], "0123456789abcdef", 16) == 16, "pipe write");
	n = read(p[0], (uint8_t *)stale + 4096, 16);
	CHECK(n < 0 && errno == EFAULT, "a revoked mapping still accepts stores");
	close(p[0]);
	close(p[1]);
}

static int
cmd_api(const char *uri)
{
	struct nvl_brick *b = conn(uri), *c = conn(uri);
	struct nvl_brick_handle h, h2, hro;
	struct nvl_brick_info info;
	struct nvl_brick_extent *ext;
	uint8_t *buf = malloc(BS), *buf2 = malloc(BS);
	uint64_t cap;
	size_t n;

	EXPECT_RC(nvl_brick_info(b, &info), 0);
	CHECK(info.block_size == BS, "block size %" PRIu64, info.block_size);
	cap = info.capacity_blocks;
	CHECK(info.allocated_blocks == 0, "brick must start empty");

	g_step = "alloc";
	EXPECT_RC(nvl_brick_alloc(b, A(0)), 0);
	EXPECT_RC(nvl_brick_alloc(b, A(0)), -EEXIST);
	EXPECT_RC(nvl_brick_alloc(c, A(0)), -EEXIST);
	EXPECT_RC(nvl_brick_alloc(b, A(0) + 4096), -EINVAL);
	/* any 2 MiB-aligned 64-bit value is a valid id, including 0 and the top */
	EXPECT_RC(nvl_brick_alloc(b, 0), 0);
	EXPECT_RC(nvl_brick_alloc(b, UINT64_MAX & ~(BS - 1)), 0);
	for (uint64_t i = 1; i < cap - 2; i++)
		EXPECT_RC(nvl_brick_alloc(b, A(i)), 0);
	EXPECT_RC(nvl_brick_alloc(b, A(cap - 2)), -ENOSPC);
	EXPECT_RC(nvl_brick_free(b, UINT64_MAX & ~(BS - 1)), 0);
	EXPECT_RC(nvl_brick_free(b, 0), 0);
	EXPECT_RC(nvl_brick_alloc(b, A(cap - 2)), 0); /* space came back */
	EXPECT_RC(nvl_brick_alloc(b, A(cap - 1)), 0);

	g_step = "enoent/einval";
	EXPECT_RC(nvl_brick_free(b, A(cap + 1)), -ENOENT);
	EXPECT_RC(nvl_brick_map(b, A(cap + 1), NVL_BRICK_RW, &h), -ENOENT);
	EXPECT_RC(nvl_brick_unmap(b, A(cap + 1)), -ENOENT);
	CHECK(cap >= 6, "the api test needs a brick of at least 6 blocks");
	EXPECT_RC(nvl_brick_map(b, A(0) + 512, NVL_BRICK_RW, &h), -EINVAL);
	EXPECT_RC(nvl_brick_free(b, A(0) + 1), -EINVAL);
	EXPECT_RC(nvl_brick_map(b, A(0), NVL_BRICK_RO | NVL_BRICK_RW, &h), -EINVAL);
	EXPECT_RC(nvl_brick_map(b, A(0), 0, &h), -EINVAL);
	EXPECT_RC(nvl_brick_map(b, A(0), NVL_BRICK_RW | NVL_BRICK_SHARED | NVL_BRICK_EXCL, &h),
		  -EINVAL);
	EXPECT_RC(nvl_brick_unmap(b, A(0)), -ENXIO); /* allocated, not mapped by us */

	g_step = "map/write/read";
	EXPECT_RC(nvl_brick_map(b, A(0), NVL_BRICK_RW, &h), 0);
	CHECK(h.key != 0 && h.addr == A(0) && h.length == BS, "handle fields");
	CHECK(info.local == (h.ptr != NULL), "local connections get a pointer, tcp ones do not");
	for (size_t i = 0; i < BS; i += 4096) /* a new block reads as zeroes */
		CHECK((h.ptr ? ((uint8_t *)h.ptr)[i] : 0) == 0, "new block not zero");
	EXPECT_RC(nvl_brick_read(b, h.key, A(0), buf, BS), 0);
	for (size_t i = 0; i < BS; i++)
		CHECK(buf[i] == 0, "new block not zero at %zu", i);
	pattern(buf, BS, 1);
	EXPECT_RC(put_block(b, &h, buf), 0);
	EXPECT_RC(nvl_brick_flush(b, h.key, A(0), 0), 0);
	EXPECT_RC(nvl_brick_read(c, h.key, A(0) + 8192, buf2, 4096), 0); /* key works anywhere */
	CHECK(memcmp(buf2, buf + 8192, 4096) == 0, "read back through another connection");
	EXPECT_RC(nvl_brick_write(b, h.key, A(0) + 100, "abc", 3), 0);
	EXPECT_RC(nvl_brick_read(b, h.key, A(0) + 99, buf2, 5), 0);
	CHECK(buf2[0] == buf[99] && memcmp(buf2 + 1, "abc", 3) == 0 && buf2[4] == buf[103],
	      "small unaligned write");
	/* ranges: inside the block only, and only the handle's block */
	EXPECT_RC(nvl_brick_read(b, h.key, A(0) + BS - 10, buf2, 20), -EINVAL);
	EXPECT_RC(nvl_brick_read(b, h.key, A(1), buf2, 16), -EACCES);
	EXPECT_RC(nvl_brick_write(b, h.key, A(1), buf2, 16), -EACCES);
	EXPECT_RC(nvl_brick_flush(b, h.key, A(0) + 4096, 4096), 0);
	EXPECT_RC(nvl_brick_flush(b, h.key ^ 0x1234, A(0), 0), -EACCES);
	EXPECT_RC(nvl_brick_read(b, h.key + 1, A(0), buf2, 16), -EACCES); /* forged */
	EXPECT_RC(nvl_brick_flush_all(b), 0);

	g_step = "read-only handle";
	EXPECT_RC(nvl_brick_map(c, A(1), NVL_BRICK_RO, &hro), 0);
	EXPECT_RC(nvl_brick_write(c, hro.key, A(1), "x", 1), -EROFS);
	EXPECT_RC(nvl_brick_write(b, hro.key, A(1), "x", 1), -EROFS);
	EXPECT_RC(nvl_brick_read(c, hro.key, A(1), buf2, 1), 0);
	if (hro.ptr) {
		/* the fd of a read-only handle cannot be mapped writable */
		CHECK(mprotect(hro.ptr, 4096, PROT_READ | PROT_WRITE) != 0 && errno == EACCES,
		      "read-only mapping could be made writable");
	}
	EXPECT_RC(nvl_brick_unmap(c, A(1)), 0);

	g_step = "shared visibility";
	EXPECT_RC(nvl_brick_map(c, A(0), NVL_BRICK_RW | NVL_BRICK_SHARED, &h2), 0);
	CHECK(h2.key != h.key, "each map gets its own key");
	pattern(buf, BS, 2);
	EXPECT_RC(put_block(b, &h, buf), 0);
	EXPECT_RC(nvl_brick_flush(b, h.key, A(0), 0), 0);
	EXPECT_RC(get_block(c, &h2, buf2), 0);
	CHECK(memcmp(buf, buf2, BS) == 0, "second client does not see the first one's writes");
	pattern(buf, 4096, 3);
	if (h2.ptr)
		memcpy((uint8_t *)h2.ptr + BS - 4096, buf, 4096);
	else
		EXPECT_RC(nvl_brick_write(c, h2.key, A(0) + BS - 4096, buf, 4096), 0);
	EXPECT_RC(nvl_brick_flush(c, h2.key, A(0) + BS - 4096, 4096), 0);
	EXPECT_RC(nvl_brick_read(b, h.key, A(0) + BS - 4096, buf2, 4096), 0);
	CHECK(memcmp(buf, buf2, 4096) == 0, "first client does not see the second one's writes");

	g_step = "exclusive";
	EXPECT_RC(nvl_brick_map(b, A(0), NVL_BRICK_RO | NVL_BRICK_EXCL, &hro), -EBUSY);
	EXPECT_RC(nvl_brick_map(b, A(2), NVL_BRICK_RW | NVL_BRICK_EXCL, &hro), 0);
	EXPECT_RC(nvl_brick_map(c, A(2), NVL_BRICK_RO, &h2), -EBUSY);
	EXPECT_RC(nvl_brick_map(c, A(2), NVL_BRICK_RW | NVL_BRICK_EXCL, &h2), -EBUSY);
	EXPECT_RC(nvl_brick_unmap(b, A(2)), 0);
	EXPECT_RC(nvl_brick_map(c, A(2), NVL_BRICK_RW | NVL_BRICK_EXCL, &h2), 0);
	EXPECT_RC(nvl_brick_unmap(c, A(2)), 0);

	g_step = "revocation by unmap";
	EXPECT_RC(nvl_brick_map(c, A(3), NVL_BRICK_RW, &h2), 0);
	{
		void *stale = NULL;
		uint64_t key = h2.key;

		pattern(buf, BS, 4);
		EXPECT_RC(put_block(c, &h2, buf), 0);
		if (h2.ptr) {
			/* keep a second mapping of the same pages, as a client might */
			stale = mremap(h2.ptr, 0, BS, MREMAP_MAYMOVE);
			CHECK(stale != MAP_FAILED, "mremap dup: %s", strerror(errno));
		}
		EXPECT_RC(nvl_brick_unmap(c, A(3)), 0);
		EXPECT_RC(nvl_brick_read(c, key, A(3), buf2, 16), -EACCES);
		EXPECT_RC(nvl_brick_write(b, key, A(3), buf2, 16), -EACCES);
		EXPECT_RC(nvl_brick_flush(c, key, A(3), 0), -EACCES);
		if (stale) {
			check_stale_mapping_faults(stale);
			munmap(stale, BS);
		}
		/* the data written before the unmap is intact */
		EXPECT_RC(nvl_brick_map(b, A(3), NVL_BRICK_RO, &h2), 0);
		EXPECT_RC(get_block(b, &h2, buf2), 0);
		CHECK(memcmp(buf, buf2, BS) == 0, "data changed by the revocation");
		EXPECT_RC(nvl_brick_unmap(b, A(3)), 0);
	}

	g_step = "revocation by free";
	EXPECT_RC(nvl_brick_map(c, A(4), NVL_BRICK_RW, &h2), 0);
	{
		struct nvl_brick_handle hn;
		void *stale = NULL;

		pattern(buf, BS, 5);
		EXPECT_RC(put_block(c, &h2, buf), 0);
		if (h2.ptr) {
			/* c keeps its mapping: only b frees, c's library does not unmap */
			stale = mremap(h2.ptr, 0, BS, MREMAP_MAYMOVE);
			CHECK(stale != MAP_FAILED, "mremap dup: %s", strerror(errno));
		}
		EXPECT_RC(nvl_brick_free(b, A(4)), 0); /* another client frees it */
		EXPECT_RC(nvl_brick_read(c, h2.key, A(4), buf2, 16), -EACCES);
		EXPECT_RC(nvl_brick_unmap(c, A(4)), -ENOENT);
		if (stale)
			check_stale_mapping_faults(stale); /* the freed data is out of reach */
		EXPECT_RC(nvl_brick_alloc(b, A(4)), 0); /* the id can be allocated again */
		EXPECT_RC(nvl_brick_read(c, h2.key, A(4), buf2, 16), -EACCES); /* old key dead */
		/* the reused address (and any reused memory) is out of the old mapping's
		 * reach: new data written there is not visible through it, and stores
		 * through it do not land in the new block */
		EXPECT_RC(nvl_brick_map(b, A(4), NVL_BRICK_RW, &hn), 0);
		EXPECT_RC(get_block(b, &hn, buf2), 0);
		for (size_t i = 0; i < BS; i++)
			CHECK(buf2[i] == 0, "re-allocated block not zero");
		pattern(buf, BS, 6);
		EXPECT_RC(put_block(b, &hn, buf), 0);
		EXPECT_RC(nvl_brick_flush(b, hn.key, A(4), 0), 0);
		if (stale) {
			check_stale_mapping_faults(stale);
			munmap(stale, BS);
		}
		EXPECT_RC(get_block(b, &hn, buf2), 0);
		CHECK(memcmp(buf, buf2, BS) == 0, "the reused block changed under its owner");
		EXPECT_RC(nvl_brick_unmap(b, A(4)), 0);
	}
	EXPECT_RC(nvl_brick_map(c, A(4), NVL_BRICK_RO, &h2), 0);

	g_step = "disconnect revokes";
	{
		uint64_t key = h2.key;

		nvl_brick_disconnect(c);
		EXPECT_RC(nvl_brick_read(b, key, A(4), buf2, 16), -EACCES);
	}

	g_step = "list";
	EXPECT_RC(nvl_brick_list(b, &ext, &n), 0);
	{
		uint64_t total = 0;

		for (size_t i = 0; i < n; i++) {
			total += ext[i].length;
			if (i)
				CHECK(ext[i].addr > ext[i - 1].addr, "extents sorted");
			if (ext[i].addr <= A(0) && A(0) < ext[i].addr + ext[i].length)
				CHECK(ext[i].state == NVL_BRICK_EXT_MAPPED, "A(0) is mapped");
		}
		CHECK(total == cap * BS, "list covers %" PRIu64 " bytes, want %" PRIu64, total,
		      cap * BS);
		free(ext);
	}
	EXPECT_RC(nvl_brick_unmap(b, A(0)), 0);
	for (uint64_t i = 0; i < cap; i++)
		EXPECT_RC(nvl_brick_free(b, A(i)), 0);
	EXPECT_RC(nvl_brick_list(b, &ext, &n), 0);
	CHECK(n == 0, "empty after freeing everything");
	free(ext);
	nvl_brick_disconnect(b);
	free(buf);
	free(buf2);
	printf("api: ok (%s)\n", info.local ? "local, one-sided" : "tcp");
	return 0;
}

/* ---- hostile ----------------------------------------------------------- */

static int
raw_connect(const char *uri)
{
	struct nvl_brick_uri u;
	int fd;

	CHECK(nvl_brick_uri_parse(uri, &u) == 0, "uri");
	if (u.tcp)
		CHECK(nvl_sock_connect_tcp(u.host, u.port, 0, &fd) == 0, "connect");
	else
		CHECK(nvl_sock_connect_unix(u.path, SOCK_STREAM, 0, &fd) == 0, "connect");
	{
		struct timeval tv = { .tv_sec = 5 };

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

static void
raw_send(int fd, const struct nvl_brick_hdr *h, const void *pl, size_t len)
{
	uint8_t w[NVL_BRICK_HDR_SIZE];

	brick_proto_hdr_encode(h, w);
	CHECK(send(fd, w, sizeof(w), MSG_NOSIGNAL) == (ssize_t)sizeof(w), "send header");
	if (len)
		CHECK(send(fd, pl, len, MSG_NOSIGNAL) == (ssize_t)len, "send payload");
}

/* Read one response header (+ skip its payload); \return status, or -1 on EOF. */
static int
raw_resp(int fd, struct nvl_brick_hdr *r)
{
	uint8_t w[NVL_BRICK_HDR_SIZE];
	size_t got = 0;

	while (got < sizeof(w)) {
		ssize_t n = recv(fd, w + got, sizeof(w) - got, 0);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	brick_proto_hdr_decode(w, r);
	CHECK(r->magic == NVL_BRICK_MAGIC && (r->flags & NVL_BRICK_HF_RESPONSE), "response header");
	for (uint32_t left = r->data_len; left > 0;) {
		uint8_t sink[4096];
		ssize_t n = recv(fd, sink, NVL_MIN(left, sizeof(sink)), 0);

		if (n <= 0)
			return -1;
		left -= (uint32_t)n;
	}
	return (int)r->status;
}

static bool
raw_closed(int fd)
{
	uint8_t x;

	return recv(fd, &x, 1, 0) == 0;
}

/* The identity libnvlend would use (NVLEND_BRICK_IDENTITY, else the default
 * file), so that a raw client owns what the same user's libnvlend clients
 * own; anonymous when there is none. */
static void
raw_identity(struct brick_proto_client *cl)
{
	const char *env = getenv("NVLEND_BRICK_IDENTITY"), *home = getenv("HOME");
	char path[512], hex[80];
	FILE *f;

	memset(cl, 0, sizeof(*cl));
	if (env && strcmp(env, "none") == 0)
		return;
	if (env && *env)
		snprintf(path, sizeof(path), "%s", env);
	else
		snprintf(path, sizeof(path), "%s/.config/nvlend/brick-identity", home ? home : "/");
	f = fopen(path, "r");
	if (f == NULL)
		return;
	if (fgets(hex, sizeof(hex), f) && strlen(hex) >= 2 * NVL_BRICK_ID_SIZE) {
		for (unsigned i = 0; i < NVL_BRICK_ID_SIZE; i++) {
			unsigned v;

			if (sscanf(hex + 2 * i, "%2x", &v) != 1)
				break;
			cl->secret[i] = (uint8_t)v;
			cl->has_id = i + 1 == NVL_BRICK_ID_SIZE;
		}
	}
	fclose(f);
	snprintf(cl->name, sizeof(cl->name), "brick_test");
}

static int
raw_hello(int fd, const char *uri)
{
	struct brick_proto_client cl;
	struct nvl_brick_uri u;
	struct nvl_brick_hdr h = { .magic = NVL_BRICK_MAGIC, .version = NVL_BRICK_VERSION_MAX,
				   .opcode = NVL_BRICK_OP_HELLO, .req_id = 1 };
	struct nvl_brick_hdr r;
	uint8_t pl[BRICK_PROTO_HELLO_MAX];

	nvl_brick_uri_parse(uri, &u);
	raw_identity(&cl);
	h.data_len = (uint32_t)brick_proto_hello_encode_id(u.name, &cl, pl, sizeof(pl));
	raw_send(fd, &h, pl, h.data_len);
	return raw_resp(fd, &r);
}

static int
cmd_hostile(const char *uri)
{
	struct nvl_brick_hdr h, r;
	uint8_t *big = calloc(1, BS + 4096);
	struct nvl_brick *b;
	struct nvl_brick_handle hd, hro;
	int fd;

	b = conn(uri);
	EXPECT_RC(nvl_brick_alloc(b, A(0)), 0);
	EXPECT_RC(nvl_brick_map(b, A(0), NVL_BRICK_RW, &hd), 0);
	EXPECT_RC(nvl_brick_alloc(b, A(1)), 0);
	EXPECT_RC(nvl_brick_map(b, A(1), NVL_BRICK_RO, &hro), 0);

#define H(...) (h = (struct nvl_brick_hdr){ .magic = NVL_BRICK_MAGIC, .version = NVL_BRICK_VERSION_MAX, __VA_ARGS__ }, &h)
	g_step = "request before hello";
	fd = raw_connect(uri);
	raw_send(fd, H(.opcode = NVL_BRICK_OP_ALLOC, .addr = A(9)), NULL, 0);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_PROTO, "no hello: status %u", r.status);
	CHECK(raw_closed(fd), "connection must close");
	close(fd);

	g_step = "hello for an unknown brick";
	fd = raw_connect(uri);
	{
		uint8_t pl[64];

		(void)H(.opcode = NVL_BRICK_OP_HELLO, .req_id = 5);
		h.data_len = (uint32_t)brick_proto_hello_encode("no-such-brick", pl, sizeof(pl));
		raw_send(fd, &h, pl, h.data_len);
		CHECK(raw_resp(fd, &r) == NVL_BRICK_S_NOENT && r.req_id == 5, "unknown brick");
		CHECK(raw_closed(fd), "connection must close");
	}
	close(fd);

	g_step = "hello with versions we do not speak";
	fd = raw_connect(uri);
	{
		uint8_t pl[64];

		(void)H(.opcode = NVL_BRICK_OP_HELLO);
		h.data_len = (uint32_t)brick_proto_hello_encode("x", pl, sizeof(pl));
		pl[0] = 7;
		pl[1] = 9;
		raw_send(fd, &h, pl, h.data_len);
		CHECK(raw_resp(fd, &r) == NVL_BRICK_S_VERSION, "version: status %u", r.status);
	}
	close(fd);

	g_step = "a protocol v1 client (before block ownership) is refused";
	fd = raw_connect(uri);
	{
		uint8_t pl[64];

		(void)H(.opcode = NVL_BRICK_OP_HELLO);
		h.version = 1;
		h.data_len = (uint32_t)brick_proto_hello_encode("x", pl, sizeof(pl));
		pl[0] = 1;
		pl[1] = 1;
		raw_send(fd, &h, pl, h.data_len);
		CHECK(raw_resp(fd, &r) == NVL_BRICK_S_VERSION, "v1: status %u", r.status);
		CHECK(raw_closed(fd), "connection must close");
	}
	close(fd);

	g_step = "bad magic";
	fd = raw_connect(uri);
	CHECK(raw_hello(fd, uri) == 0, "hello");
	(void)H(.opcode = NVL_BRICK_OP_INFO);
	h.magic = 0xdeadbeef;
	raw_send(fd, &h, NULL, 0);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_PROTO, "bad magic: status %u", r.status);
	CHECK(raw_closed(fd), "connection must close after a bad magic");
	close(fd);

	g_step = "payload above the maximum";
	fd = raw_connect(uri);
	CHECK(raw_hello(fd, uri) == 0, "hello");
	raw_send(fd, H(.opcode = NVL_BRICK_OP_WRITE, .key = hd.key, .addr = A(0), .length = 16,
			.data_len = 0x7fffffff), NULL, 0);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_INVAL, "huge data_len: status %u", r.status);
	CHECK(raw_closed(fd), "connection must close");
	close(fd);

	g_step = "refusals that keep the connection";
	fd = raw_connect(uri);
	CHECK(raw_hello(fd, uri) == 0, "hello");
	raw_send(fd, H(.opcode = 200, .req_id = 77), NULL, 0);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_NOTSUP && r.req_id == 77, "unknown op");
	raw_send(fd, H(.opcode = NVL_BRICK_OP_READ, .key = hd.key, .addr = A(0),
			.offset = BS, .length = 1), NULL, 0);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_INVAL, "offset past the block");
	raw_send(fd, H(.opcode = NVL_BRICK_OP_READ, .key = hd.key, .addr = A(0),
			.offset = BS - 8, .length = 16), NULL, 0);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_INVAL, "range past the block");
	raw_send(fd, H(.opcode = NVL_BRICK_OP_READ, .key = hd.key, .addr = A(0),
			.offset = 8, .length = UINT64_MAX - 4), NULL, 0);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_INVAL, "wrapping length");
	raw_send(fd, H(.opcode = NVL_BRICK_OP_READ, .key = hd.key, .addr = A(0), .length = 0),
		 NULL, 0);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_INVAL, "zero length");
	/* a write with a bad range: its payload is consumed, the stream stays in step */
	raw_send(fd, H(.opcode = NVL_BRICK_OP_WRITE, .key = hd.key, .addr = A(0),
			.offset = BS - 100, .length = 4096, .data_len = 4096), big, 4096);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_INVAL, "write past the block");
	raw_send(fd, H(.opcode = NVL_BRICK_OP_WRITE, .key = hd.key, .addr = A(0), .length = 64,
			.data_len = 32), big, 32);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_INVAL, "data_len != length");
	raw_send(fd, H(.opcode = NVL_BRICK_OP_WRITE, .key = 0x1122334455667788ULL,
			.addr = A(0), .length = 4096, .data_len = 4096), big, 4096);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_ACCES, "forged key");
	raw_send(fd, H(.opcode = NVL_BRICK_OP_WRITE, .key = hro.key, .addr = A(1), .length = 8,
			.data_len = 8), big, 8);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_ROFS, "write with a read-only key");
	raw_send(fd, H(.opcode = NVL_BRICK_OP_WRITE, .key = hd.key, .addr = A(1), .length = 8,
			.data_len = 8), big, 8);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_ACCES, "key of another block");
	raw_send(fd, H(.opcode = NVL_BRICK_OP_ALLOC, .addr = A(5) + 1), NULL, 0);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_INVAL, "unaligned alloc");
	raw_send(fd, H(.opcode = NVL_BRICK_OP_ALLOC, .addr = A(5), .key = 1), NULL, 0);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_INVAL, "alloc with stray fields");
	raw_send(fd, H(.opcode = NVL_BRICK_OP_MAP, .addr = A(0), .arg = 0xff), NULL, 0);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_INVAL, "bad map flags");
	raw_send(fd, H(.opcode = NVL_BRICK_OP_LIST, .arg = NVL_BRICK_LIST_MAX + 1), NULL, 0);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_INVAL, "list max too large");
	raw_send(fd, H(.opcode = NVL_BRICK_OP_HELLO, .data_len = 3), "abc", 3);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_INVAL, "short hello");
	(void)H(.opcode = NVL_BRICK_OP_INFO);
	h.version = 9;
	raw_send(fd, &h, NULL, 0);
	CHECK(raw_resp(fd, &r) == NVL_BRICK_S_PROTO, "wrong version in header");
	CHECK(raw_closed(fd), "connection must close after a bad version");
	close(fd);

	g_step = "pipelined requests";
	fd = raw_connect(uri);
	CHECK(raw_hello(fd, uri) == 0, "hello");
	for (int i = 0; i < 300; i++) /* more than the per-connection queue bound */
		raw_send(fd, H(.opcode = NVL_BRICK_OP_READ, .key = hd.key, .addr = A(0),
				.length = 4096, .req_id = (uint64_t)i), NULL, 0);
	for (int i = 0; i < 300; i++)
		CHECK(raw_resp(fd, &r) == 0 && r.req_id == (uint64_t)i && r.data_len == 4096,
		      "pipelined read %d", i);
	close(fd);

	g_step = "truncated header, garbage, abrupt close";
	fd = raw_connect(uri);
	CHECK(send(fd, "BRIK", 4, MSG_NOSIGNAL) == 4, "send");
	close(fd);
	fd = raw_connect(uri);
	pattern(big, 65536, 99);
	send(fd, big, 65536, MSG_NOSIGNAL);
	close(fd);
	fd = raw_connect(uri);
	CHECK(raw_hello(fd, uri) == 0, "hello");
	raw_send(fd, H(.opcode = NVL_BRICK_OP_WRITE, .key = hd.key, .addr = A(0), .length = BS,
			.data_len = (uint32_t)BS), big, 1000); /* then hang up mid-payload */
	close(fd);

	g_step = "daemon still serves";
	{
		struct nvl_brick_info i;

		EXPECT_RC(nvl_brick_info(b, &i), 0);
		EXPECT_RC(nvl_brick_read(b, hd.key, A(0), big, 16), 0);
	}
	EXPECT_RC(nvl_brick_free(b, A(0)), 0);
	EXPECT_RC(nvl_brick_free(b, A(1)), 0);
	nvl_brick_disconnect(b);
	free(big);
	printf("hostile: ok\n");
	return 0;
}

/* ---- truncate: a hostile local client ---------------------------------- */

/* MAP over a raw local connection, keeping the block fd that comes with the
 * response (libnvlend maps it and closes it; a hostile client keeps it). */
static int
raw_map_fd(int fd, uint64_t addr, uint32_t flags, struct nvl_brick_hdr *r)
{
	struct nvl_brick_hdr h = { .magic = NVL_BRICK_MAGIC, .version = NVL_BRICK_VERSION_MAX,
				   .opcode = NVL_BRICK_OP_MAP, .req_id = 2, .addr = addr,
				   .arg = flags };
	uint8_t w[NVL_BRICK_HDR_SIZE];
	struct iovec iov = { .iov_base = w, .iov_len = sizeof(w) };
	unsigned nfds;
	int bfd = -1;

	raw_send(fd, &h, NULL, 0);
	/* the fd rides on the first byte of the response: one receive for the header */
	CHECK(nvl_sock_recv_fds(fd, &iov, 1, &bfd, 1, &nfds, MSG_WAITALL, NULL) ==
		      (ssize_t)sizeof(w),
	      "map response");
	brick_proto_hdr_decode(w, r);
	if (r->data_len == NVL_BRICK_KEY_SIZE) { /* the block key (v2) */
		uint8_t key[NVL_BRICK_KEY_SIZE];

		CHECK(recv(fd, key, sizeof(key), MSG_WAITALL) == (ssize_t)sizeof(key), "map key");
	}
	return nfds ? bfd : -1;
}

/*
 * Map the block at addr read-write over a raw local connection, store into
 * it through its own mapping, then truncate the block's file to len bytes
 * (loops > 1: truncate and grow back, loops times, as fast as possible, while
 * something else does I/O on the block). The connection then closes (its
 * handle dies with it). Prints how many truncations were done.
 */
static int
cmd_truncate(const char *uri, uint64_t addr, uint64_t len, unsigned loops)
{
	struct nvl_brick_hdr r;
	uint8_t *p;
	int fd, bfd;

	g_step = "truncate";
	fd = raw_connect(uri);
	CHECK(raw_hello(fd, uri) == 0, "hello");
	bfd = raw_map_fd(fd, addr, NVL_BRICK_MAP_RW | NVL_BRICK_MAP_SHARED, &r);
	CHECK(r.status == 0, "map 0x%" PRIx64 ": status %u", addr, r.status);
	CHECK(bfd >= 0, "no fd with the map response (not a local connection?)");
	p = mmap(NULL, BS, PROT_READ | PROT_WRITE, MAP_SHARED, bfd, 0);
	CHECK(p != MAP_FAILED, "a read-write handle's fd must map read-write: %s",
	      strerror(errno));
	p[BS - 1] ^= 0; /* one-sided access works */
	munmap(p, BS);
	for (unsigned i = 0; i < loops; i++) {
		CHECK(ftruncate(bfd, (off_t)len) == 0, "ftruncate: %s", strerror(errno));
		if (loops > 1) {
			usleep(200);
			CHECK(ftruncate(bfd, (off_t)BS) == 0, "ftruncate back: %s", strerror(errno));
			usleep(200);
		}
	}
	close(bfd);
	close(fd);
	printf("truncate: 0x%" PRIx64 " truncated to %" PRIu64 " bytes %u time(s)\n", addr, len,
	       loops);
	return 0;
}

/* ---- tier -------------------------------------------------------------- */

static int
cmd_tier(const char *uri, unsigned n)
{
	struct nvl_brick *b = conn(uri);
	struct nvl_brick_handle h;
	struct nvl_brick_info info;
	uint8_t *buf = malloc(BS), *got = malloc(BS);

	g_step = "fill";
	for (unsigned i = 0; i < n; i++) {
		EXPECT_RC(nvl_brick_alloc(b, A(i)), 0);
		EXPECT_RC(nvl_brick_map(b, A(i), NVL_BRICK_RW, &h), 0);
		pattern(buf, BS, 1000 + i);
		EXPECT_RC(put_block(b, &h, buf), 0);
		EXPECT_RC(nvl_brick_flush(b, h.key, A(i), 0), 0);
		EXPECT_RC(nvl_brick_unmap(b, A(i)), 0);
	}
	EXPECT_RC(nvl_brick_info(b, &info), 0);
	CHECK(info.allocated_blocks == n, "allocated %" PRIu64, info.allocated_blocks);
	CHECK(info.fast_tier_blocks <= info.fast_blocks, "fast tier over budget");
	CHECK(info.slow_tier_blocks == n - info.fast_tier_blocks, "slow tier count");
	CHECK(info.slow_tier_blocks > 0, "nothing moved to the slow tier");
	g_step = "verify";
	for (unsigned pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < n; i++) {
			unsigned j = pass ? n - 1 - i : i;

			EXPECT_RC(nvl_brick_map(b, A(j), NVL_BRICK_RO, &h), 0);
			EXPECT_RC(get_block(b, &h, got), 0);
			CHECK(pattern_ok(got, BS, 1000 + j), "block %u content after tiering", j);
			EXPECT_RC(nvl_brick_unmap(b, A(j)), 0);
		}
	}
	g_step = "fast tier full of mapped blocks";
	{
		unsigned k;

		for (k = 0; k < info.fast_blocks; k++)
			EXPECT_RC(nvl_brick_map(b, A(k), NVL_BRICK_RO, &h), 0);
		if (info.fast_blocks < n)
			EXPECT_RC(nvl_brick_map(b, A(k), NVL_BRICK_RO, &h), -ENOMEM);
		for (k = 0; k < info.fast_blocks; k++)
			EXPECT_RC(nvl_brick_unmap(b, A(k)), 0);
	}
	EXPECT_RC(nvl_brick_info(b, &info), 0);
	printf("tier: ok (%u blocks, %" PRIu64 " fast, %" PRIu64 " slow)\n", n,
	       info.fast_tier_blocks, info.slow_tier_blocks);
	nvl_brick_disconnect(b);
	free(buf);
	free(got);
	return 0;
}

/* After a restart of what `tier` left: list() holds exactly A(0)..A(n-1), in
 * the fast or the slow tier and unmapped, and every block its pattern. */
static int
cmd_tier_verify(const char *uri, unsigned n)
{
	struct nvl_brick *b = conn(uri);
	struct nvl_brick_extent *ext;
	struct nvl_brick_handle h;
	struct nvl_brick_info info;
	uint8_t *got = malloc(BS);
	uint64_t next = A(0);
	size_t n_ext;

	g_step = "list";
	EXPECT_RC(nvl_brick_info(b, &info), 0);
	CHECK(info.allocated_blocks == n, "allocated %" PRIu64 ", want %u", info.allocated_blocks,
	      n);
	EXPECT_RC(nvl_brick_list(b, &ext, &n_ext), 0);
	for (size_t i = 0; i < n_ext; i++) {
		CHECK(ext[i].addr == next, "extent %zu at 0x%" PRIx64 ", want 0x%" PRIx64, i,
		      ext[i].addr, next);
		CHECK(ext[i].state == NVL_BRICK_EXT_FAST || ext[i].state == NVL_BRICK_EXT_SLOW,
		      "extent %zu state %u", i, ext[i].state);
		next += ext[i].length;
	}
	CHECK(next == A(n), "list ends at 0x%" PRIx64 ", want 0x%" PRIx64, next, (uint64_t)A(n));
	free(ext);
	g_step = "verify";
	for (unsigned i = 0; i < n; i++) {
		EXPECT_RC(nvl_brick_map(b, A(i), NVL_BRICK_RO, &h), 0);
		EXPECT_RC(get_block(b, &h, got), 0);
		CHECK(pattern_ok(got, BS, 1000 + i), "block %u content after restart", i);
		EXPECT_RC(nvl_brick_unmap(b, A(i)), 0);
	}
	EXPECT_RC(nvl_brick_info(b, &info), 0);
	printf("tier-verify: ok (%u blocks, %" PRIu64 " fast, %" PRIu64 " slow)\n", n,
	       info.fast_tier_blocks, info.slow_tier_blocks);
	nvl_brick_disconnect(b);
	free(got);
	return 0;
}

/* ---- churn / verify-log ------------------------------------------------ */

/*
 * Log lines (one write(2) each, O_APPEND, fsync'd — the log must survive us;
 * every round of a test appends to the same log):
 *   P <addr> a <seed>      about to alloc, write pattern(seed), flush the first half
 *   P <addr> f             about to free
 *   A <addr> <seed>        alloc acknowledged, block written and flushed
 *   F <addr>               free acknowledged (or: absent when the run started)
 *   E <addr>               present when the run started (content: that of its
 *                          last A, if nothing since could have changed it)
 * verify-log: a block whose last line is A (or E with known content) must exist
 * with its flushed data, F must not exist. A block whose last line is P was in
 * flight at the crash and may exist or not; if it exists, a pending free must
 * have left its flushed data intact, and a pending alloc may hold only bytes of
 * its own pattern or zeroes (plus the unflushed scribble): never a byte of
 * another block or of an earlier incarnation.
 */
/* The scribble cmd_churn leaves unflushed in the second half of a block. */
#define SCRIBBLE_OFF (BS / 2)
#define SCRIBBLE_LEN 4096

static void
log_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
log_line(int fd, const char *fmt, ...)
{
	char line[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	CHECK(write(fd, line, (size_t)n) == n, "log write");
	fdatasync(fd);
}

static int
cmd_churn(const char *uri, uint64_t base, unsigned n, unsigned secs, const char *logp)
{
	struct nvl_brick *b = conn(uri);
	uint8_t *buf = malloc(BS), *live = calloc(n, 1);
	int lfd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
	uint64_t end = nvl_now_ns() + (uint64_t)secs * 1000000000ULL, seed = 1;
	unsigned ops = 0;

	CHECK(lfd >= 0, "open log");
	srand((unsigned)getpid());
	{
		/* mount time: learn which blocks exist (after a crash: the recovered map) */
		struct nvl_brick_extent *ext;
		size_t n_ext;

		EXPECT_RC(nvl_brick_list(b, &ext, &n_ext), 0);
		for (size_t e = 0; e < n_ext; e++)
			for (uint64_t a = ext[e].addr; a < ext[e].addr + ext[e].length; a += BS)
				if (a >= base && a < base + n * BS)
					live[(a - base) / BS] = 1;
		free(ext);
		for (unsigned i = 0; i < n; i++)
			if (live[i])
				log_line(lfd, "E %" PRIx64 "\n", base + i * BS);
			else
				log_line(lfd, "F %" PRIx64 "\n", base + i * BS);
	}
	while (nvl_now_ns() < end) {
		unsigned i = (unsigned)rand() % n;
		uint64_t addr = base + i * BS;
		struct nvl_brick_handle h;
		int rc;

		if (live[i]) {
			log_line(lfd, "P %" PRIx64 " f\n", addr);
			rc = nvl_brick_free(b, addr);
			if (rc == -EPIPE || rc == -ECONNRESET)
				break; /* daemon killed */
			CHECK(rc == 0, "free: %s", strerror(-rc));
			log_line(lfd, "F %" PRIx64 "\n", addr);
			live[i] = 0;
		} else {
			seed++;
			log_line(lfd, "P %" PRIx64 " a %" PRIu64 "\n", addr, seed);
			rc = nvl_brick_alloc(b, addr);
			if (rc == 0)
				rc = nvl_brick_map(b, addr, NVL_BRICK_RW, &h);
			if (rc == 0) {
				pattern(buf, BS, seed);
				rc = put_block(b, &h, buf);
			}
			if (rc == 0) /* a range flush: only the first half is promised */
				rc = nvl_brick_flush(b, h.key, addr, BS / 2);
			if (rc == 0) {
				/* scribble unflushed data into the second half: may be lost */
				if (h.ptr)
					memset((uint8_t *)h.ptr + SCRIBBLE_OFF, 0xee, SCRIBBLE_LEN);
				rc = nvl_brick_unmap(b, addr);
			}
			if (rc == -EPIPE || rc == -ECONNRESET)
				break;
			CHECK(rc == 0, "alloc/write/flush/unmap: %s", strerror(-rc));
			log_line(lfd, "A %" PRIx64 " %" PRIu64 "\n", addr, seed);
			live[i] = 1;
		}
		ops++;
	}
	printf("churn: %u operations\n", ops);
	nvl_brick_disconnect(b);
	close(lfd);
	free(buf);
	free(live);
	return 0;
}

struct blkstate {
	uint64_t addr;
	char last;          /* 'A', 'F', 'E' or 'P' */
	char pend_op;       /* for 'P' */
	uint64_t pend_seed; /* for a pending alloc */
	uint64_t seed;      /* of the last 'A' */
	bool known;         /* the block's flushed content is pattern(seed) */
};

/* A block that a crash interrupted while it was being allocated and written:
 * each byte is zero (not written yet) or the byte of its own pattern (or, in
 * the scribble range, the scribble). \return the first offending offset or -1. */
static int64_t
pending_alloc_bad(const uint8_t *buf, uint64_t seed)
{
	uint8_t *want = malloc(BS);
	int64_t bad = -1;

	pattern(want, BS, seed);
	for (uint64_t i = 0; i < BS && bad < 0; i++) {
		bool scribble = i >= SCRIBBLE_OFF && i < SCRIBBLE_OFF + SCRIBBLE_LEN;

		if (buf[i] != 0 && buf[i] != want[i] && !(scribble && buf[i] == 0xee))
			bad = (int64_t)i;
	}
	free(want);
	return bad;
}

static int
cmd_verify_log(const char *uri, uint64_t base, unsigned nblk, const char *logp)
{
	FILE *f = fopen(logp, "r");
	struct blkstate *s = NULL;
	size_t ns = 0, cap = 0, in_map = 0, checked = 0;
	struct nvl_brick *b = conn(uri);
	struct nvl_brick_extent *ext;
	uint8_t *buf = malloc(BS);
	char line[128];
	size_t n;

	CHECK(f != NULL, "open log");
	while (fgets(line, sizeof(line), f)) {
		char t, op = 0;
		uint64_t addr, v = 0;
		size_t k;

		if (line[0] == '\0' || line[strlen(line) - 1] != '\n')
			continue; /* torn last line */
		if (line[0] == 'P') {
			int got = sscanf(line, "%c %" SCNx64 " %c %" SCNu64, &t, &addr, &op, &v);

			if (got < 3 || (op == 'a' && got < 4))
				continue;
		} else if (sscanf(line, "%c %" SCNx64 " %" SCNu64, &t, &addr, &v) < 2) {
			continue;
		}
		for (k = 0; k < ns && s[k].addr != addr; k++)
			;
		if (k == ns) {
			if (ns == cap) {
				cap = cap ? cap * 2 : 64;
				s = realloc(s, cap * sizeof(*s));
			}
			memset(&s[ns], 0, sizeof(s[ns]));
			s[ns].addr = addr;
			s[ns].last = 'F';
			ns++;
		}
		if (t == 'P') {
			s[k].pend_op = op;
			s[k].pend_seed = v;
			s[k].last = 'P';
		} else if (t == 'A') {
			s[k].last = 'A';
			s[k].seed = v;
			s[k].known = true;
		} else if (t == 'F') {
			s[k].last = 'F';
			s[k].known = false;
		} else if (t == 'E') {
			/* still there after a crash: content known if it was acknowledged
			 * (A) or a free of it was cut short (it must be intact) */
			if (!(s[k].last == 'A' || (s[k].last == 'P' && s[k].pend_op == 'f')))
				s[k].known = false;
			s[k].last = 'E';
		}
	}
	fclose(f);
	EXPECT_RC(nvl_brick_list(b, &ext, &n), 0);
	for (size_t k = 0; k < ns; k++) {
		bool present = false;

		for (size_t e = 0; e < n; e++)
			if (s[k].addr >= ext[e].addr && s[k].addr < ext[e].addr + ext[e].length)
				present = true;
		in_map += present;
		if (s[k].last != 'P')
			CHECK(present == (s[k].last != 'F'),
			      "block 0x%" PRIx64 ": acknowledged %s, but %s", s[k].addr,
			      s[k].last != 'F' ? "allocated" : "freed", present ? "listed" : "missing");
		/* a pending op may have happened or not: only existing blocks are read */
		if (!present)
			continue;
		if (s[k].last == 'P' && s[k].pend_op == 'a') {
			struct nvl_brick_handle h;
			int64_t bad;

			EXPECT_RC(nvl_brick_map(b, s[k].addr, NVL_BRICK_RO, &h), 0);
			EXPECT_RC(get_block(b, &h, buf), 0);
			bad = pending_alloc_bad(buf, s[k].pend_seed);
			CHECK(bad < 0, "block 0x%" PRIx64 " (alloc cut by the crash) holds byte 0x%02x "
			      "at %" PRId64 ": neither zero nor its own data", s[k].addr,
			      bad < 0 ? 0 : buf[bad], bad);
			EXPECT_RC(nvl_brick_unmap(b, s[k].addr), 0);
			checked++;
		} else if (s[k].known) {
			/* acknowledged (A), still there (E), or a free cut by the crash:
			 * the flushed first half is intact; the second half may have lost
			 * its unflushed scribble */
			struct nvl_brick_handle h;

			EXPECT_RC(nvl_brick_map(b, s[k].addr, NVL_BRICK_RO, &h), 0);
			EXPECT_RC(get_block(b, &h, buf), 0);
			CHECK(pattern_ok(buf, BS / 2, s[k].seed),
			      "flushed data of 0x%" PRIx64 " (last logged: %c) lost or corrupted",
			      s[k].addr, s[k].last);
			CHECK(pending_alloc_bad(buf, s[k].seed) < 0,
			      "unflushed half of 0x%" PRIx64 " holds bytes it was never given",
			      s[k].addr);
			EXPECT_RC(nvl_brick_unmap(b, s[k].addr), 0);
			checked++;
		}
	}
	/* nothing outside the logged set may appear */
	for (size_t e = 0; e < n; e++) {
		for (uint64_t a = ext[e].addr; a < ext[e].addr + ext[e].length; a += BS) {
			size_t k;

			if (a < base || a >= base + nblk * BS)
				continue; /* another client's range */
			for (k = 0; k < ns && s[k].addr != a; k++)
				;
			CHECK(k < ns, "block 0x%" PRIx64 " listed but never allocated", a);
		}
	}
	printf("verify-log: ok (%zu blocks tracked, %zu listed, %zu verified)\n", ns, in_map,
	       checked);
	free(ext);
	free(s);
	free(buf);
	nvl_brick_disconnect(b);
	return 0;
}

int
main(int argc, char **argv)
{
	uint64_t v1, v2, v3;

	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && strcmp(argv[1], "api") == 0)
		return cmd_api(argv[2]);
	if (argc == 3 && strcmp(argv[1], "hostile") == 0)
		return cmd_hostile(argv[2]);
	if (argc == 4 && strcmp(argv[1], "tier") == 0 && nvl_parse_u64(argv[3], 4096, &v1) == 0)
		return cmd_tier(argv[2], (unsigned)v1);
	if (argc == 4 && strcmp(argv[1], "tier-verify") == 0 &&
	    nvl_parse_u64(argv[3], 4096, &v1) == 0)
		return cmd_tier_verify(argv[2], (unsigned)v1);
	if (argc == 7 && strcmp(argv[1], "churn") == 0 && nvl_parse_size(argv[3], &v1) == 0 &&
	    nvl_parse_u64(argv[4], 4096, &v2) == 0 && nvl_parse_u64(argv[5], 3600, &v3) == 0)
		return cmd_churn(argv[2], v1, (unsigned)v2, (unsigned)v3, argv[6]);
	if (argc == 6 && strcmp(argv[1], "verify-log") == 0 && nvl_parse_size(argv[3], &v1) == 0 &&
	    nvl_parse_u64(argv[4], 4096, &v2) == 0)
		return cmd_verify_log(argv[2], v1, (unsigned)v2, argv[5]);
	if (argc == 6 && strcmp(argv[1], "truncate") == 0 && nvl_parse_size(argv[3], &v1) == 0 &&
	    nvl_parse_u64(argv[4], BS, &v2) == 0 && nvl_parse_u64(argv[5], 1000000, &v3) == 0 &&
	    v3 > 0)
		return cmd_truncate(argv[2], v1, v2, (unsigned)v3);
	fprintf(stderr, "usage: brick_test api|hostile URI | tier[-verify] URI N"
			" | churn URI BASE N SECS LOG"
			" | verify-log URI BASE N LOG | truncate URI ADDR LEN LOOPS\n");
	return 2;
}
