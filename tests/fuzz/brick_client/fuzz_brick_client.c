/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the libnvlend brick client (src/brick/client.c)
 * against a hostile or broken brick server: the input is what the server
 * sends on a local (brick+shm) connection, and the client runs a fixed
 * session over it: connect (HELLO, with an identity from a file of its own),
 * info, alloc, map, read and write through the handle, flush, flush all,
 * list, unmap, free, the key of another block (KEY), disconnect.
 * (corpus/good-session-v2 answers all of it correctly.)
 *
 * Input: records of [u16 length][u8 flags][length bytes], each sent with one
 * sendmsg by a server thread; flags bit 0 attaches a descriptor (bit 1: a
 * 2 MiB memfd, else a 4 KiB one; bit 2: a pipe instead). Response req_ids
 * are 1, 2, 3... in session order, so inputs can answer correctly.
 *
 * Checks: no memory error (ASan) or leak (LeakSanitizer); every call
 * returns 0 or a negative errno; a mapping the client hands out is the
 * whole 2 MiB block of the address asked for, readable (and writable when
 * granted) end to end without SIGBUS (found: a 4 KiB file was handed out as
 * a 2 MiB block; corpus/map-short-memfd); a refused list returns no array.
 */
#include "nvlend/brick.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_path[108], g_uri[200], g_id[108];
static int g_lfd = -1;

static void
cleanup(void)
{
	unlink(g_path);
	unlink(g_id);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	snprintf(g_path, sizeof(g_path), "/dev/shm/nvl-fuzz-bcli-%d.sock", (int)getpid());
	snprintf(g_uri, sizeof(g_uri), "brick+shm://%s?name=fz", g_path);
	/* an identity file of the fuzzer's own (made by the first connect) */
	snprintf(g_id, sizeof(g_id), "/dev/shm/nvl-fuzz-bcli-%d.id", (int)getpid());
	unlink(g_id);
	setenv("NVLEND_BRICK_IDENTITY", g_id, 1);
	unlink(g_path);
	memcpy(a.sun_path, g_path, strlen(g_path) + 1);
	g_lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (g_lfd < 0 || bind(g_lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(g_lfd, 4) < 0)
		abort();
	atexit(cleanup);
	return 0;
}

struct server {
	const uint8_t *p;
	size_t left;
};

static int
make_fd(uint8_t flags)
{
	int fds[2], fd;

	if (flags & 4) {
		if (pipe(fds) < 0)
			return -1;
		close(fds[1]);
		return fds[0];
	}
	fd = memfd_create("fz-block", MFD_CLOEXEC);
	if (fd >= 0 && ftruncate(fd, (flags & 2) ? NVL_BRICK_BLOCK_SIZE : 4096) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void *
server_main(void *arg)
{
	struct server *sv = arg;
	int c = accept(g_lfd, NULL, NULL);
	char sink[4096];

	if (c < 0)
		return NULL;
	while (sv->left >= 3) {
		uint16_t len = (uint16_t)(sv->p[0] | sv->p[1] << 8);
		uint8_t flags = sv->p[2];
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct iovec iov;
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		int fd = -1;

		sv->p += 3;
		sv->left -= 3;
		if (len > sv->left)
			len = (uint16_t)sv->left;
		if (len == 0)
			continue;
		iov.iov_base = (void *)sv->p;
		iov.iov_len = len;
		if (flags & 1) {
			struct cmsghdr *cm;

			fd = make_fd(flags);
			if (fd >= 0) {
				memset(&u, 0, sizeof(u));
				m.msg_control = u.buf;
				m.msg_controllen = sizeof(u.buf);
				cm = CMSG_FIRSTHDR(&m);
				cm->cmsg_level = SOL_SOCKET;
				cm->cmsg_type = SCM_RIGHTS;
				cm->cmsg_len = CMSG_LEN(sizeof(int));
				memcpy(CMSG_DATA(cm), &fd, sizeof(int));
			}
		}
		if (sendmsg(c, &m, MSG_NOSIGNAL) < 0) {
			if (fd >= 0)
				close(fd);
			break;
		}
		if (fd >= 0)
			close(fd);
		sv->p += len;
		sv->left -= len;
	}
	/* end of the server's stream; read whatever the client still sends */
	shutdown(c, SHUT_WR);
	while (read(c, sink, sizeof(sink)) > 0)
		;
	close(c);
	return NULL;
}

static void
touch(const struct nvl_brick_handle *h)
{
	volatile uint8_t *p = h->ptr;

	CHECK(h->length == NVL_BRICK_BLOCK_SIZE);
	(void)p[0];
	(void)p[NVL_BRICK_BLOCK_SIZE - 1];
	if (h->flags & NVL_BRICK_MAP_RW) {
		p[0] = 1;
		p[NVL_BRICK_BLOCK_SIZE - 1] = 2;
	}
}

static void
session(struct nvl_brick *b)
{
	static uint8_t buf[8192];
	struct nvl_brick_handle h = { 0 };
	struct nvl_brick_extent *ext = NULL;
	struct nvl_brick_info info;
	size_t n = 0;
	int rc;

	CHECK(nvl_brick_info(b, &info) <= 0);
	CHECK(nvl_brick_alloc(b, 0) <= 0);
	rc = nvl_brick_map(b, 0, NVL_BRICK_MAP_RW, &h);
	CHECK(rc <= 0);
	if (rc == 0)
		CHECK(h.addr == 0);
	if (rc == 0 && h.ptr)
		touch(&h);
	CHECK(nvl_brick_read(b, h.key, 0, buf, sizeof(buf)) <= 0);
	CHECK(nvl_brick_write(b, h.key, 4096, buf, 4096) <= 0);
	CHECK(nvl_brick_flush(b, h.key, 0, 4096) <= 0);
	CHECK(nvl_brick_flush_all(b) <= 0);
	/* the extents are the server's word (not checked for sense): only the
	 * array's size is the client's business */
	rc = nvl_brick_list(b, &ext, &n);
	CHECK(rc <= 0);
	CHECK(rc == 0 || (ext == NULL && n == 0));
	if (n) {
		/* read the last one: ASan checks the array really holds n */
		volatile uint64_t last = ext[n - 1].addr;

		(void)last;
	}
	free(ext);
	CHECK(nvl_brick_unmap(b, 0) <= 0);
	CHECK(nvl_brick_free(b, 0) <= 0);
	{
		uint8_t key[NVL_BRICK_KEY_SIZE];

		CHECK(nvl_brick_key_get(b, NVL_BRICK_BLOCK_SIZE, key) <= 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct server sv = { data, size };
	struct nvl_brick *b = NULL;
	pthread_t t;
	int rc;

	if (pthread_create(&t, NULL, server_main, &sv) != 0)
		abort();
	rc = nvl_brick_connect(g_uri, &b);
	CHECK(rc <= 0);
	if (rc == 0) {
		session(b);
		nvl_brick_disconnect(b);
	}
	pthread_join(t, NULL);
	return 0;
}
