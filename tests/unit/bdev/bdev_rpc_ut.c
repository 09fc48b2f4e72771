/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the bdev RPCs (src/bdev/bdev_rpc.c), called in-process
 * through the same dispatcher and parameter tables the socket uses
 * (nvl_rpc_call_local): SPDK's names, parameters, defaults, results and
 * error codes for create/delete/get_bdevs/get_iostat.
 */
#include "bdev/bdev_rpc.c"
#include "common/ut.h"

static json_t *g_result, *g_error;
static int g_calls;

static void
call_done(void *arg, json_t *result, json_t *error)
{
	(void)arg;
	g_calls++;
	g_result = json_incref(result);
	g_error = json_incref(error);
}

/* Call method with params given as JSON text; returns the error code (0 = result). */
static int
call(const char *method, const char *params)
{
	json_t *p = params ? json_loads(params, 0, NULL) : NULL;
	int calls = g_calls;

	json_decref(g_result);
	json_decref(g_error);
	g_result = g_error = NULL;
	if (params)
		assert_non_null(p);
	assert_int_equal(nvl_rpc_call_local(method, p, call_done, NULL), 0);
	json_decref(p);
	assert_int_equal(g_calls, calls + 1); /* these all answer synchronously */
	if (g_error) {
		assert_non_null(json_string_value(json_object_get(g_error, "message")));
		return (int)json_integer_value(json_object_get(g_error, "code"));
	}
	return 0;
}

static const char *
errmsg(void)
{
	return json_string_value(json_object_get(g_error, "message"));
}

static char g_path[PATH_MAX];

static int
setup(void **state)
{
	int fd;

	(void)state;
	if (ut_reactors_init(1) < 0)
		return -1;
	fd = ut_tmpfile("/var/tmp", 4 << 20, g_path);
	close(fd);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	json_decref(g_result);
	json_decref(g_error);
	g_result = g_error = NULL;
	nvl_bdev_fini();
	nvl_reactors_fini();
	unlink(g_path);
	return 0;
}

static void
test_malloc_create_delete(void **state)
{
	struct nvl_bdev_desc *d;

	(void)state;
	/* SPDK's default names: Malloc0, Malloc1, ... the first free one */
	assert_int_equal(call("bdev_malloc_create", "{\"num_blocks\": 2048, \"block_size\": 512}"), 0);
	assert_string_equal(json_string_value(g_result), "Malloc0");
	assert_int_equal(call("bdev_malloc_create", "{\"num_blocks\": 16, \"block_size\": 4096, "
			      "\"name\": \"Malloc1\"}"), 0);
	assert_int_equal(call("bdev_malloc_create", "{\"num_blocks\": 16, \"block_size\": 4096}"), 0);
	assert_string_equal(json_string_value(g_result), "Malloc2");
	/* everything rpc.py may send */
	assert_int_equal(call("bdev_malloc_create",
			      "{\"name\": \"m\", \"num_blocks\": 16, \"block_size\": 4096, "
			      "\"uuid\": \"2b6601ba-eada-44fb-9a83-a20eb9eb9e90\", "
			      "\"optimal_io_boundary\": 16, \"physical_block_size\": 4096, "
			      "\"md_size\": 0, \"md_interleave\": false, \"dif_type\": 0, "
			      "\"dif_is_head_of_md\": false}"), 0);
	assert_string_equal(json_string_value(g_result), "m");

	assert_int_equal(call("bdev_malloc_create", "{\"num_blocks\": 16, \"block_size\": 4096, "
			      "\"name\": \"m\"}"), -EEXIST);
	assert_non_null(strstr(errmsg(), "already exists"));
	assert_int_equal(call("bdev_malloc_create", "{\"num_blocks\": 16}"), NVL_RPC_INVALID_PARAMS);
	assert_non_null(strstr(errmsg(), "block_size"));
	assert_int_equal(call("bdev_malloc_create", "{\"num_blocks\": 16, \"block_size\": 1000}"),
			 NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("bdev_malloc_create", "{\"num_blocks\": 0, \"block_size\": 512}"),
			 NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("bdev_malloc_create", "{\"num_blocks\": 4294967296, "
			      "\"block_size\": 65536}"), NVL_RPC_INVALID_PARAMS); /* > 1 TiB */
	assert_int_equal(call("bdev_malloc_create", "{\"num_blocks\": 16, \"block_size\": 512, "
			      "\"md_size\": 8}"), NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("bdev_malloc_create", "{\"num_blocks\": 16, \"block_size\": 512, "
			      "\"physical_block_size\": 4096}"), NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("bdev_malloc_create", "{\"num_blocks\": 16, \"block_size\": 512, "
			      "\"uuid\": \"xyz\"}"), NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("bdev_malloc_create", "{\"num_blocks\": 16, \"block_size\": 512, "
			      "\"size_mb\": 8}"), NVL_RPC_INVALID_PARAMS);

	/* delete: unknown, wrong type, in use (named), then fine */
	assert_int_equal(call("bdev_malloc_delete", "{\"name\": \"nosuch\"}"), -ENODEV);
	assert_int_equal(call("bdev_malloc_delete", "{}"), NVL_RPC_INVALID_PARAMS);
	assert_int_equal(nvl_bdev_open("m", true, "nvmf cnode1 ns 1", &d), 0);
	assert_int_equal(call("bdev_malloc_delete", "{\"name\": \"m\"}"), -EBUSY);
	assert_non_null(strstr(errmsg(), "nvmf cnode1 ns 1"));
	nvl_bdev_close(d);
	assert_int_equal(call("bdev_malloc_delete", "{\"name\": \"m\"}"), 0);
	assert_true(json_is_true(g_result));
	assert_null(nvl_bdev_get_by_name("m"));
}

static void
test_file_create_delete(void **state)
{
	char params[PATH_MAX + 200];
	json_t *cfg;

	(void)state;
	snprintf(params, sizeof(params), "{\"name\": \"Aio0\", \"filename\": \"%s\", "
		 "\"block_size\": 4096, \"readonly\": false, \"fallocate\": true, "
		 "\"shared\": true}", g_path);
	assert_int_equal(call("bdev_aio_create", params), 0);
	assert_string_equal(json_string_value(g_result), "Aio0");
	assert_int_equal(call("bdev_aio_create", params), -EEXIST);
	/* a second bdev on the file: refused unless both say shared */
	snprintf(params, sizeof(params), "{\"name\": \"u0\", \"filename\": \"%s\", "
		 "\"io_mode\": \"uring\"}", g_path);
	assert_int_equal(call("bdev_uring_create", params), -EBUSY);
	snprintf(params, sizeof(params), "{\"name\": \"u0\", \"filename\": \"%s\", "
		 "\"io_mode\": \"uring\", \"shared\": true}", g_path);
	assert_int_equal(call("bdev_uring_create", params), 0);
	assert_int_equal(nvl_bdev_get_by_name("u0")->block_size, 512);
	/* io_mode is ours, not SPDK's aio_create: unknown there */
	snprintf(params, sizeof(params), "{\"name\": \"u1\", \"filename\": \"%s\", "
		 "\"io_mode\": \"uring\"}", g_path);
	assert_int_equal(call("bdev_aio_create", params), NVL_RPC_INVALID_PARAMS);
	snprintf(params, sizeof(params), "{\"name\": \"u1\", \"filename\": \"%s\", "
		 "\"io_mode\": \"fast\"}", g_path);
	assert_int_equal(call("bdev_uring_create", params), NVL_RPC_INVALID_PARAMS);
	snprintf(params, sizeof(params), "{\"name\": \"u1\", \"filename\": \"%s\", "
		 "\"block_size\": 768}", g_path);
	assert_int_equal(call("bdev_uring_create", params), NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("bdev_uring_create", "{\"name\": \"u1\", \"filename\": "
			      "\"/nonexistent/disk.img\"}"), -ENOENT);
	assert_non_null(strstr(errmsg(), "/nonexistent/disk.img"));
	assert_int_equal(call("bdev_uring_create", "{\"name\": \"u1\"}"), NVL_RPC_INVALID_PARAMS);

	/* save_config keeps the method each was created with */
	cfg = json_array();
	nvl_bdev_write_config(cfg);
	assert_int_equal(json_array_size(cfg), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(cfg, 0), "method")),
			    "bdev_aio_create");
	assert_string_equal(json_string_value(json_object_get(json_array_get(cfg, 1), "method")),
			    "bdev_uring_create");
	json_decref(cfg);

	/* deletes: the type must match; bdev_aio_delete is SPDK's name for the same */
	assert_int_equal(call("bdev_malloc_delete", "{\"name\": \"Aio0\"}"), NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("bdev_aio_delete", "{\"name\": \"Aio0\"}"), 0);
	assert_int_equal(call("bdev_uring_delete", "{\"name\": \"u0\"}"), 0);
	assert_int_equal(call("bdev_uring_delete", "{\"name\": \"u0\"}"), -ENODEV);
	assert_null(nvl_bdev_first());
}

static void
test_get_bdevs(void **state)
{
	json_t *b;

	(void)state;
	assert_int_equal(call("bdev_get_bdevs", NULL), 0);
	assert_int_equal(json_array_size(g_result), 0);
	assert_int_equal(call("bdev_malloc_create", "{\"name\": \"r0\", \"num_blocks\": 32, "
			      "\"block_size\": 512}"), 0);
	assert_int_equal(call("bdev_malloc_create", "{\"name\": \"r1\", \"num_blocks\": 32, "
			      "\"block_size\": 512}"), 0);
	assert_int_equal(call("bdev_get_bdevs", "{}"), 0);
	assert_int_equal(json_array_size(g_result), 2);
	assert_int_equal(call("bdev_get_bdevs", "{\"name\": \"r1\", \"timeout\": 100}"), 0);
	assert_int_equal(json_array_size(g_result), 1);
	b = json_array_get(g_result, 0);
	/* SPDK's fields */
	assert_string_equal(json_string_value(json_object_get(b, "name")), "r1");
	assert_string_equal(json_string_value(json_object_get(b, "product_name")), "Malloc disk");
	assert_int_equal(json_integer_value(json_object_get(b, "block_size")), 512);
	assert_int_equal(json_integer_value(json_object_get(b, "num_blocks")), 32);
	assert_true(json_is_string(json_object_get(b, "uuid")));
	assert_true(json_is_array(json_object_get(b, "aliases")));
	assert_true(json_is_boolean(json_object_get(b, "claimed")));
	assert_true(json_is_false(json_object_get(b, "zoned")));
	assert_true(json_is_object(json_object_get(b, "assigned_rate_limits")));
	assert_true(json_is_object(json_object_get(b, "supported_io_types")));
	assert_true(json_is_object(json_object_get(b, "driver_specific")));
	assert_int_equal(call("bdev_get_bdevs", "{\"name\": \"nosuch\"}"), -ENODEV);
	assert_int_equal(call("bdev_get_bdevs", "{\"name\": 5}"), NVL_RPC_INVALID_PARAMS);
}

static void
io_cb(struct nvl_bdev_io *io, int status)
{
	(void)io;
	assert_int_equal(status, 0);
}

static void
test_iostat(void **state)
{
	struct nvl_bdev_desc *d;
	char buf[4096];
	struct iovec v = { buf, sizeof(buf) };
	struct nvl_bdev_io io = { .iov = &v, .iovcnt = 1, .length = 4096, .cb = io_cb };
	json_t *b, *h;

	(void)state;
	assert_int_equal(call("bdev_malloc_create", "{\"name\": \"r0\", \"num_blocks\": 32, "
			      "\"block_size\": 512}"), 0);
	assert_int_equal(nvl_bdev_open("r0", true, "t", &d), 0);
	memset(buf, 1, sizeof(buf));
	for (int i = 0; i < 5; i++) {
		io.type = i < 3 ? NVL_BDEV_IO_READ : NVL_BDEV_IO_WRITE;
		assert_int_equal(nvl_bdev_submit(d, &io), 0);
	}
	io.type = NVL_BDEV_IO_UNMAP;
	io.iov = NULL;
	io.iovcnt = 0;
	assert_int_equal(nvl_bdev_submit(d, &io), 0);
	nvl_bdev_close(d);
	assert_int_equal(call("bdev_get_iostat", "{\"name\": \"r0\"}"), 0);
	assert_int_equal(json_integer_value(json_object_get(g_result, "tick_rate")), 1000000000);
	assert_true(json_integer_value(json_object_get(g_result, "ticks")) > 0);
	b = json_array_get(json_object_get(g_result, "bdevs"), 0);
	assert_string_equal(json_string_value(json_object_get(b, "name")), "r0");
	assert_int_equal(json_integer_value(json_object_get(b, "num_read_ops")), 3);
	assert_int_equal(json_integer_value(json_object_get(b, "bytes_read")), 3 * 4096);
	assert_int_equal(json_integer_value(json_object_get(b, "num_write_ops")), 2);
	assert_int_equal(json_integer_value(json_object_get(b, "bytes_written")), 2 * 4096);
	assert_int_equal(json_integer_value(json_object_get(b, "num_unmap_ops")), 1);
	assert_int_equal(json_integer_value(json_object_get(b, "io_errors")), 0);
	assert_int_equal(json_integer_value(json_object_get(b, "queue_depth")), 0);
	h = json_object_get(json_object_get(b, "latency_histogram"), "read");
	assert_int_equal(json_integer_value(json_object_get(h, "count")), 3);
	assert_true(json_integer_value(json_object_get(h, "p50_ns")) <=
		    json_integer_value(json_object_get(h, "max_ns")));
	assert_true(json_array_size(json_object_get(h, "buckets")) >= 1);
	assert_int_equal(call("bdev_get_iostat", NULL), 0);
	assert_int_equal(json_array_size(json_object_get(g_result, "bdevs")), 1);
	assert_int_equal(call("bdev_get_iostat", "{\"name\": \"x\"}"), -ENODEV);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_malloc_create_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_create_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_bdevs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iostat, setup, teardown),
	};

	return UT_RUN(tests);
}
