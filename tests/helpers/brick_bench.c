/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * brick_bench: measurements for bench/brick.sh (not a test). Each mode prints
 * "key value" lines. Single-threaded except pp-server.
 *
 *   cycle URI N              alloc + map + write 2 MiB + flush + unmap (then free)
 *   onesided URI NBLK ROUNDS stores into mapped blocks vs memcpy into private buffers
 *   tcpbw URI NBLK ROUNDS    2 MiB WRITE messages (and READ) through a handle
 *   lat URI N                4 KiB random READ / WRITE at QD1 through handles
 *   pp-server PORT           TCP ping-pong server (baseline for lat)
 *   pp-client HOST PORT N    4 KiB ping-pong: write-shaped and read-shaped
 */
#include "nvlend/brick.h"
#include "util/sock.h"
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define BS ((uint64_t)NVL_BRICK_BLOCK_SIZE)
#define BASE 0x7000000000ULL

static void
die(const char *what, int rc)
{
	fprintf(stderr, "brick_bench: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	exit(1);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
report(const char *name, uint64_t *ns, size_t n)
{
	uint64_t sum = 0;

	qsort(ns, n, sizeof(*ns), cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += ns[i];
	printf("%s_avg_us %.2f\n%s_p50_us %.2f\n%s_p99_us %.2f\n", name, sum / 1000.0 / (double)n,
	       name, ns[n / 2] / 1000.0, name, ns[n * 99 / 100] / 1000.0);
}

static struct nvl_brick *
conn(const char *uri)
{
	struct nvl_brick *b;
	int rc = nvl_brick_connect(uri, &b);

	if (rc < 0)
		die(uri, rc);
	return b;
}

static uint8_t *
prefaulted(size_t len)
{
	/* 2 MiB-aligned and huge-page backed where the kernel allows (THP madvise),
	 * like a brick block on a huge tmpfs: a fair memcpy baseline */
	size_t al = NVL_ALIGN_UP(len, BS);
	uint8_t *raw = mmap(NULL, al + BS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0), *p;

	if (raw == MAP_FAILED)
		die("mmap", errno);
	p = (uint8_t *)NVL_ALIGN_UP((uintptr_t)raw, BS);
	madvise(p, al, MADV_HUGEPAGE);
	memset(p, 0x5a, len);
	return p;
}

static int
cmd_cycle(const char *uri, unsigned n)
{
	struct nvl_brick *b = conn(uri);
	uint64_t *ns = calloc(n, sizeof(*ns));
	uint8_t *src = prefaulted(BS);

	for (unsigned i = 0; i < n + 3; i++) {
		uint64_t addr = BASE + (i % 4) * BS, t0 = nvl_now_ns();
		struct nvl_brick_handle h;
		int rc;

		rc = nvl_brick_alloc(b, addr);
		if (rc == 0)
			rc = nvl_brick_map(b, addr, NVL_BRICK_RW, &h);
		if (rc == 0) {
			if (h.ptr) {
				memcpy(h.ptr, src, BS);
				rc = 0;
			} else {
				rc = nvl_brick_write(b, h.key, addr, src, BS);
			}
		}
		if (rc == 0)
			rc = nvl_brick_flush(b, h.key, addr, 0);
		if (rc == 0)
			rc = nvl_brick_unmap(b, addr);
		if (rc < 0)
			die("cycle", rc);
		if (i >= 3) /* warm-up */
			ns[i - 3] = nvl_now_ns() - t0;
		rc = nvl_brick_free(b, addr);
		if (rc < 0)
			die("free", rc);
	}
	report("cycle", ns, n);
	nvl_brick_disconnect(b);
	return 0;
}

static int
cmd_onesided(const char *uri, unsigned nblk, unsigned rounds)
{
	struct nvl_brick *b = conn(uri);
	struct nvl_brick_handle *h = calloc(nblk, sizeof(*h));
	uint8_t *src = prefaulted(BS), *priv = prefaulted(nblk * BS);
	uint64_t t0, t_brick, t_memcpy;
	double gib = (double)nblk * rounds * BS / (1024.0 * 1024 * 1024);

	for (unsigned i = 0; i < nblk; i++) {
		int rc = nvl_brick_alloc(b, BASE + i * BS);

		if (rc == 0)
			rc = nvl_brick_map(b, BASE + i * BS, NVL_BRICK_RW, &h[i]);
		if (rc < 0)
			die("map", rc);
		if (h[i].ptr == NULL)
			die("onesided needs a brick+shm URI", EINVAL);
		memcpy(h[i].ptr, src, BS); /* warm */
	}
	/* alternate the two, round by round, so drift and noise hit both alike */
	t_memcpy = t_brick = 0;
	for (unsigned r = 0; r < rounds + 2; r++) {
		uint64_t a, m;

		t0 = nvl_now_ns();
		for (unsigned i = 0; i < nblk; i++)
			memcpy(priv + i * BS, src, BS);
		a = nvl_now_ns();
		for (unsigned i = 0; i < nblk; i++)
			memcpy(h[i].ptr, src, BS);
		m = nvl_now_ns();
		if (r >= 2) { /* warm-up rounds */
			t_memcpy += a - t0;
			t_brick += m - a;
		}
	}
	printf("memcpy_gibs %.2f\nonesided_gibs %.2f\nonesided_ratio %.3f\n",
	       gib / (t_memcpy / 1e9), gib / (t_brick / 1e9), (double)t_memcpy / (double)t_brick);
	for (unsigned i = 0; i < nblk; i++) {
		nvl_brick_unmap(b, BASE + i * BS);
		nvl_brick_free(b, BASE + i * BS);
	}
	nvl_brick_disconnect(b);
	return 0;
}

static int
cmd_tcpbw(const char *uri, unsigned nblk, unsigned rounds)
{
	struct nvl_brick *b = conn(uri);
	struct nvl_brick_handle *h = calloc(nblk, sizeof(*h));
	uint8_t *src = prefaulted(BS);
	double gbit = (double)nblk * rounds * BS * 8 / 1e9;
	uint64_t t0, tw, tr;

	for (unsigned i = 0; i < nblk; i++) {
		int rc = nvl_brick_alloc(b, BASE + i * BS);

		if (rc == 0)
			rc = nvl_brick_map(b, BASE + i * BS, NVL_BRICK_RW, &h[i]);
		if (rc == 0)
			rc = nvl_brick_write(b, h[i].key, BASE + i * BS, src, BS);
		if (rc < 0)
			die("map", rc);
	}
	t0 = nvl_now_ns();
	for (unsigned r = 0; r < rounds; r++)
		for (unsigned i = 0; i < nblk; i++)
			if (nvl_brick_write(b, h[i].key, BASE + i * BS, src, BS) < 0)
				die("write", EIO);
	tw = nvl_now_ns() - t0;
	t0 = nvl_now_ns();
	for (unsigned r = 0; r < rounds; r++)
		for (unsigned i = 0; i < nblk; i++)
			if (nvl_brick_read(b, h[i].key, BASE + i * BS, src, BS) < 0)
				die("read", EIO);
	tr = nvl_now_ns() - t0;
	printf("tcp_write_gbits %.2f\ntcp_read_gbits %.2f\n", gbit / (tw / 1e9), gbit / (tr / 1e9));
	for (unsigned i = 0; i < nblk; i++) {
		nvl_brick_unmap(b, BASE + i * BS);
		nvl_brick_free(b, BASE + i * BS);
	}
	nvl_brick_disconnect(b);
	return 0;
}

static uint64_t g_x = 2463534242ULL;

static uint64_t
rnd(void)
{
	g_x ^= g_x << 13;
	g_x ^= g_x >> 7;
	g_x ^= g_x << 17;
	return g_x;
}

static int
cmd_lat(const char *uri, unsigned n)
{
	enum { NB = 4 };
	struct nvl_brick *b = conn(uri);
	struct nvl_brick_handle h[NB];
	uint64_t *rd = calloc(n, sizeof(uint64_t)), *wr = calloc(n, sizeof(uint64_t));
	uint8_t *buf = prefaulted(4096);

	for (unsigned i = 0; i < NB; i++) {
		int rc = nvl_brick_alloc(b, BASE + i * BS);

		if (rc == 0)
			rc = nvl_brick_map(b, BASE + i * BS, NVL_BRICK_RW, &h[i]);
		if (rc < 0)
			die("map", rc);
	}
	for (unsigned i = 0; i < n + 100; i++) {
		unsigned k = (unsigned)(rnd() % NB);
		uint64_t addr = BASE + k * BS + (rnd() % (BS / 4096)) * 4096, t0 = nvl_now_ns();

		if (nvl_brick_write(b, h[k].key, addr, buf, 4096) < 0)
			die("write", EIO);
		if (i >= 100)
			wr[i - 100] = nvl_now_ns() - t0;
		k = (unsigned)(rnd() % NB);
		addr = BASE + k * BS + (rnd() % (BS / 4096)) * 4096;
		t0 = nvl_now_ns();
		if (nvl_brick_read(b, h[k].key, addr, buf, 4096) < 0)
			die("read", EIO);
		if (i >= 100)
			rd[i - 100] = nvl_now_ns() - t0;
	}
	report("read4k", rd, n);
	report("write4k", wr, n);
	for (unsigned i = 0; i < NB; i++) {
		nvl_brick_unmap(b, BASE + i * BS);
		nvl_brick_free(b, BASE + i * BS);
	}
	nvl_brick_disconnect(b);
	return 0;
}

static int
xfer(int fd, void *p, size_t len, bool snd)
{
	uint8_t *c = p;

	while (len > 0) {
		ssize_t n = snd ? send(fd, c, len, MSG_NOSIGNAL) : recv(fd, c, len, 0);

		if (n <= 0)
			return -1;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Ping-pong server: requests are a 64-byte header whose first byte says the
 * shape: 'w' = 4 KiB payload follows, answer 64 bytes; 'r' = answer 64 + 4 KiB. */
static int
cmd_pp_server(const char *port)
{
	int ls, one = 1, rc;
	uint8_t hdr[64], data[4096 + 64];

	rc = nvl_sock_listen_tcp("127.0.0.1", port, AF_INET, 4, &ls);
	if (rc < 0)
		die("listen", -rc);
	fcntl(ls, F_SETFL, fcntl(ls, F_GETFL) & ~O_NONBLOCK); /* this server blocks */
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int fd = accept(ls, NULL, NULL);

		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		while (xfer(fd, hdr, 64, false) == 0) {
			if (hdr[0] == 'w') {
				if (xfer(fd, data, 4096, false) < 0 || xfer(fd, hdr, 64, true) < 0)
					break;
			} else if (hdr[0] == 'r') {
				if (xfer(fd, data, 64 + 4096, true) < 0)
					break;
			} else {
				close(fd);
				close(ls);
				return 0; /* 'q' */
			}
		}
		close(fd);
	}
}

static int
cmd_pp_client(const char *host, const char *port, unsigned n)
{
	uint64_t *rd = calloc(n, sizeof(uint64_t)), *wr = calloc(n, sizeof(uint64_t));
	uint8_t hdr[64] = { 0 }, data[4096 + 64] = { 0 };
	int fd, one = 1, rc;

	rc = nvl_sock_connect_tcp(host, port, 0, &fd);
	if (rc < 0)
		die("connect", -rc);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (unsigned i = 0; i < n + 100; i++) {
		struct iovec iov[2] = { { hdr, 64 }, { data, 4096 } };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
		uint64_t t0 = nvl_now_ns();

		hdr[0] = 'w';
		if (sendmsg(fd, &mh, MSG_NOSIGNAL) != 64 + 4096 || xfer(fd, hdr, 64, false) < 0)
			die("pp w", EIO);
		if (i >= 100)
			wr[i - 100] = nvl_now_ns() - t0;
		t0 = nvl_now_ns();
		hdr[0] = 'r';
		if (xfer(fd, hdr, 64, true) < 0 || xfer(fd, data, 64 + 4096, false) < 0)
			die("pp r", EIO);
		if (i >= 100)
			rd[i - 100] = nvl_now_ns() - t0;
	}
	hdr[0] = 'q';
	xfer(fd, hdr, 64, true);
	close(fd);
	report("pp_read4k", rd, n);
	report("pp_write4k", wr, n);
	return 0;
}

int
main(int argc, char **argv)
{
	uint64_t a, r;

	if (argc == 4 && strcmp(argv[1], "cycle") == 0 && nvl_parse_u64(argv[3], 1 << 20, &a) == 0)
		return cmd_cycle(argv[2], (unsigned)a);
	if (argc == 5 && strcmp(argv[1], "onesided") == 0 &&
	    nvl_parse_u64(argv[3], 4096, &a) == 0 && nvl_parse_u64(argv[4], 1 << 20, &r) == 0)
		return cmd_onesided(argv[2], (unsigned)a, (unsigned)r);
	if (argc == 5 && strcmp(argv[1], "tcpbw") == 0 && nvl_parse_u64(argv[3], 4096, &a) == 0 &&
	    nvl_parse_u64(argv[4], 1 << 20, &r) == 0)
		return cmd_tcpbw(argv[2], (unsigned)a, (unsigned)r);
	if (argc == 4 && strcmp(argv[1], "lat") == 0 && nvl_parse_u64(argv[3], 1 << 24, &a) == 0)
		return cmd_lat(argv[2], (unsigned)a);
	if (argc == 3 && strcmp(argv[1], "pp-server") == 0)
		return cmd_pp_server(argv[2]);
	if (argc == 5 && strcmp(argv[1], "pp-client") == 0 &&
	    nvl_parse_u64(argv[4], 1 << 24, &a) == 0)
		return cmd_pp_client(argv[2], argv[3], (unsigned)a);
	fprintf(stderr, "usage: see the comment at the top of tests/helpers/brick_bench.c\n");
	return 2;
}
