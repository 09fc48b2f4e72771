/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * brick_bdev_test: the brick bdev end to end, in one process that runs the
 * daemon's own pieces (reactors, RPC methods, bricks, listeners, bdev layer):
 *
 *   brick_bdev_test FAST_DIR SLOW_DIR PORT
 *
 * Creates brick "b0" (capacity 24 blocks, fast tier 6) with a TCP listener on
 * 127.0.0.1:PORT, then two brick bdevs over it through the real RPC methods:
 * "local" (brick name) and "remote" (brick+tcp URI to the listener of this very
 * process), each over its own address range. On each it runs random reads,
 * writes (also crossing extents, with FUA), write-zeroes, unmaps and flushes
 * from two reactors, against a shadow copy, and checks thin provisioning (an
 * extent is allocated in the brick only once written, freed by a whole-extent
 * unmap) and that more extents than the fast tier holds still verify.
 * The test logic runs in a plain thread; every step is a message to a reactor.
 */
#include "app/app.h"
#include "bdev/bdev.h"
#include "brick/brick_internal.h"
#include "reactor/reactor.h"
#include "rpc/rpc.h"
#include "util/log.h"
#include "util/util.h"

/* The RPC methods register themselves from constructors in objects nothing
 * else references: compile them in (archive members would be dropped). */
#include "bdev/bdev_rpc.c"
#include "brick/bdev_brick.c"
#include "brick/brick_rpc.c"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB (1024ULL * 1024)
#define VOL_MIB 24ULL /* 12 extents: twice the fast tier (6) */
#define VOL (VOL_MIB * MB)

static const char *g_fast, *g_slow, *g_port;
static sem_t g_sem;
static int g_rc;
static json_t *g_result;
static int g_fail;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "brick_bdev_test: %s:%d: ", __FILE__, __LINE__);            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			g_fail = 1;                                                                \
			return;                                                                    \
		}                                                                                  \
	} while (0)

/* ---- run things on reactors and wait ----------------------------------- */

struct call {
	const char *method;
	json_t *params;
};

static void
call_done(void *arg, json_t *result, json_t *error)
{
	(void)arg;
	g_rc = error ? -1 : 0;
	if (error) {
		char *e = json_dumps(error, JSON_COMPACT);

		fprintf(stderr, "rpc error: %s\n", e);
		free(e);
	}
	g_result = result ? json_incref(result) : NULL;
	sem_post(&g_sem);
}

static void
call_msg(void *arg)
{
	struct call *c = arg;

	if (nvl_rpc_call_local(c->method, c->params, call_done, NULL) < 0) {
		g_rc = -1;
		sem_post(&g_sem);
	}
}

static int
rpc(const char *method, json_t *params)
{
	struct call c = { method, params };

	json_decref(g_result);
	g_result = NULL;
	nvl_reactor_msg(nvl_reactor_get(0), call_msg, &c);
	sem_wait(&g_sem);
	json_decref(params);
	return g_rc;
}

struct ioctx {
	struct nvl_bdev_desc *desc;
	struct nvl_bdev_io io;
	struct iovec iov[3];
	int status;
};

static void
io_done(struct nvl_bdev_io *io, int status)
{
	struct ioctx *x = io->cb_arg;

	x->status = status;
	sem_post(&g_sem);
}

static void
io_msg(void *arg)
{
	struct ioctx *x = arg;
	int rc = nvl_bdev_submit(x->desc, &x->io);

	if (rc < 0) {
		x->status = rc;
		sem_post(&g_sem);
	}
}

static int
do_io(struct nvl_bdev_desc *d, unsigned reactor, uint8_t type, uint32_t flags, uint64_t off,
      uint64_t len, uint8_t *buf)
{
	struct ioctx x = { .desc = d };

	x.io.type = type;
	x.io.flags = flags;
	x.io.offset = off;
	x.io.length = len;
	if (buf) {
		/* three segments, to walk iovec boundaries inside extents */
		uint64_t a = len / 3 & ~4095ULL, b2 = len / 3 & ~4095ULL;

		x.iov[0] = (struct iovec){ buf, a };
		x.iov[1] = (struct iovec){ buf + a, b2 };
		x.iov[2] = (struct iovec){ buf + a + b2, len - a - b2 };
		x.io.iov = a ? x.iov : &x.iov[2];
		x.io.iovcnt = a ? 3 : 1;
	}
	x.io.cb = io_done;
	x.io.cb_arg = &x;
	nvl_reactor_msg(nvl_reactor_get(reactor % nvl_reactor_count()), io_msg, &x);
	sem_wait(&g_sem);
	return x.status;
}

struct open_args {
	const char *name;
	struct nvl_bdev_desc *d;
	int rc;
};

static void
open_msg(void *arg)
{
	struct open_args *o = arg;

	if (o->d)
		nvl_bdev_close(o->d);
	else
		o->rc = nvl_bdev_open(o->name, true, "brick_bdev_test", &o->d);
	sem_post(&g_sem);
}

static uint64_t
brick_allocated_in(uint64_t base)
{
	json_t *b;
	uint64_t n = 0;

	(void)base;
	if (rpc("brick_get_bricks", json_pack("{s:s}", "name", "b0")) < 0)
		return UINT64_MAX;
	b = json_array_get(g_result, 0);
	n = (uint64_t)json_integer_value(json_object_get(b, "allocated_blocks"));
	return n;
}

/* ---- the test ---------------------------------------------------------- */

static uint64_t g_rng = 88172645463325252ULL;

static uint64_t
rnd(void)
{
	g_rng ^= g_rng << 13;
	g_rng ^= g_rng >> 7;
	g_rng ^= g_rng << 17;
	return g_rng;
}

static void
exercise(const char *name, uint64_t base)
{
	struct open_args o = { .name = name };
	uint8_t *shadow = calloc(1, VOL), *buf = malloc(8 * MB);
	uint64_t before = brick_allocated_in(base), after;

	nvl_reactor_msg(nvl_reactor_get(0), open_msg, &o);
	sem_wait(&g_sem);
	CHECK(o.rc == 0, "open %s: %d", name, o.rc);

	/* thin: reads of a fresh volume are zero and allocate nothing */
	CHECK(do_io(o.d, 1, NVL_BDEV_IO_READ, 0, 0, 4 * MB, buf) == 0, "read");
	for (uint64_t i = 0; i < 4 * MB; i++)
		CHECK(buf[i] == 0, "fresh volume not zero");
	CHECK(brick_allocated_in(base) == before, "a read allocated extents");

	/* one write in the middle of extent 3 allocates exactly one block */
	memset(buf, 0xa5, 4096);
	CHECK(do_io(o.d, 0, NVL_BDEV_IO_WRITE, 0, 3 * 2 * MB + 8192, 4096, buf) == 0, "write");
	memset(shadow + 3 * 2 * MB + 8192, 0xa5, 4096);
	CHECK(brick_allocated_in(base) == before + 1, "first write must allocate one extent");

	for (int i = 0; i < 160; i++) {
		uint64_t len = ((rnd() % (3 * MB / 4096)) + 1) * 4096;
		uint64_t off = (rnd() % ((VOL - len) / 4096)) * 4096;
		unsigned r = (unsigned)rnd() % 2;
		unsigned op = (unsigned)(rnd() % 10);

		if (op < 4) {
			for (uint64_t k = 0; k < len; k += 8) {
				uint64_t v = rnd();

				memcpy(buf + k, &v, 8);
			}
			CHECK(do_io(o.d, r, NVL_BDEV_IO_WRITE, (rnd() & 1) ? NVL_BDEV_IO_FUA : 0, off,
				    len, buf) == 0, "write %" PRIu64 "+%" PRIu64, off, len);
			memcpy(shadow + off, buf, len);
		} else if (op < 8) {
			CHECK(do_io(o.d, r, NVL_BDEV_IO_READ, 0, off, len, buf) == 0, "read");
			CHECK(memcmp(buf, shadow + off, len) == 0,
			      "%s: read %" PRIu64 "+%" PRIu64 " differs from what was written", name,
			      off, len);
		} else if (op == 8) {
			CHECK(do_io(o.d, r, NVL_BDEV_IO_WRITE_ZEROES, 0, off, len, NULL) == 0, "wz");
			memset(shadow + off, 0, len);
		} else {
			CHECK(do_io(o.d, r, NVL_BDEV_IO_FLUSH, 0, 0, 0, NULL) == 0, "flush");
		}
	}
	/* a whole-extent unmap gives the block back to the brick */
	memset(buf, 0x11, 2 * MB);
	CHECK(do_io(o.d, 0, NVL_BDEV_IO_WRITE, 0, 10 * 2 * MB, 2 * MB, buf) == 0, "write");
	after = brick_allocated_in(base);
	CHECK(do_io(o.d, 1, NVL_BDEV_IO_UNMAP, 0, 10 * 2 * MB - 4096, 2 * MB + 8192, NULL) == 0,
	      "unmap");
	memset(shadow + 10 * 2 * MB - 4096, 0, 2 * MB + 8192);
	CHECK(brick_allocated_in(base) == after - 1, "whole-extent unmap did not free the block");
	/* every byte of the volume */
	for (uint64_t off = 0; off < VOL; off += 8 * MB) {
		CHECK(do_io(o.d, (unsigned)(off / MB), NVL_BDEV_IO_READ, 0, off, 8 * MB, buf) == 0,
		      "final read");
		CHECK(memcmp(buf, shadow + off, 8 * MB) == 0, "%s: final compare at %" PRIu64, name,
		      off);
	}
	nvl_reactor_msg(nvl_reactor_get(0), open_msg, &o); /* close */
	sem_wait(&g_sem);
	printf("%s: ok\n", name);
	free(shadow);
	free(buf);
}

static void
test_body(void)
{
	char uri[128];
	json_t *b;

	CHECK(rpc("brick_create", json_pack("{s:s, s:s, s:s, s:i, s:i}", "name", "b0", "fast_dir",
					    g_fast, "slow_dir", g_slow, "capacity_blocks", 48,
					    "fast_blocks", 6)) == 0, "brick_create");
	CHECK(rpc("brick_add_listener", json_pack("{s:s, s:s, s:s, s:s}", "name", "b0", "trtype",
						  "TCP", "traddr", "127.0.0.1", "trsvcid",
						  g_port)) == 0, "listener");
	CHECK(rpc("bdev_brick_create", json_pack("{s:s, s:s, s:I, s:I}", "name", "local", "brick",
						 "b0", "base_addr", (json_int_t)0,
						 "size_mib", (json_int_t)VOL_MIB)) == 0,
	      "bdev_brick_create local");
	snprintf(uri, sizeof(uri), "brick+tcp://127.0.0.1:%s/b0", g_port);
	CHECK(rpc("bdev_brick_create", json_pack("{s:s, s:s, s:I, s:I, s:i}", "name", "remote",
						 "brick", uri, "base_addr",
						 (json_int_t)(1ULL << 40), "size_mib",
						 (json_int_t)VOL_MIB, "block_size", 512)) == 0,
	      "bdev_brick_create remote");
	CHECK(rpc("bdev_brick_create", json_pack("{s:s, s:s, s:I, s:I}", "name", "x", "brick",
						 "nosuch", "base_addr", (json_int_t)0, "size_mib",
						 (json_int_t)4)) < 0, "unknown brick accepted");
	CHECK(rpc("bdev_brick_create", json_pack("{s:s, s:s, s:I, s:I}", "name", "x", "brick",
						 "b0", "base_addr", (json_int_t)4096, "size_mib",
						 (json_int_t)4)) < 0, "unaligned base accepted");
	CHECK(rpc("bdev_brick_create", json_pack("{s:s, s:s, s:I, s:I}", "name", "x", "brick",
						 "brick+tcp://127.0.0.1:1/none", "base_addr",
						 (json_int_t)0, "size_mib", (json_int_t)4)) < 0,
	      "unreachable brick accepted");
	CHECK(rpc("brick_delete", json_pack("{s:s}", "name", "b0")) < 0,
	      "brick_delete must refuse while a bdev uses the brick");
	exercise("local", 0);
	if (g_fail)
		return;
	exercise("remote", 1ULL << 40);
	if (g_fail)
		return;
	CHECK(rpc("bdev_get_bdevs", json_pack("{s:s}", "name", "local")) == 0, "get_bdevs");
	b = json_object_get(json_object_get(json_array_get(g_result, 0), "driver_specific"),
			    "brick");
	CHECK(b && strcmp(json_string_value(json_object_get(b, "mode")), "local") == 0,
	      "driver_specific");
	CHECK(rpc("bdev_brick_delete", json_pack("{s:s}", "name", "local")) == 0, "delete local");
	CHECK(rpc("bdev_brick_delete", json_pack("{s:s}", "name", "remote")) == 0, "delete remote");
	CHECK(rpc("brick_delete", json_pack("{s:s}", "name", "b0")) == 0, "brick_delete");
}

static void *
test_thread(void *arg)
{
	(void)arg;
	test_body();
	json_decref(g_result);
	g_result = NULL;
	nvl_reactors_stop();
	return NULL;
}

int
main(int argc, char **argv)
{
	struct nvl_reactor_opts ro;
	pthread_t th;

	if (argc != 4) {
		fprintf(stderr, "usage: brick_bdev_test FAST_DIR SLOW_DIR PORT\n");
		return 2;
	}
	g_fast = argv[1];
	g_slow = argv[2];
	g_port = argv[3];
	sem_init(&g_sem, 0, 0);
	nvl_reactor_opts_default(&ro);
	ro.count = 2;
	ro.spin_us = 0;
	if (nvl_reactors_init(&ro) < 0)
		return 1;
	pthread_create(&th, NULL, test_thread, NULL);
	nvl_reactors_run();
	pthread_join(th, NULL);
	nvl_bdev_fini();
	nvl_reactors_fini();
	return g_fail;
}
