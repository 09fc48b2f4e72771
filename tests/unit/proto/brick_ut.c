/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the brick wire helpers (src/proto/brick.c) and URI parsing
 * (src/brick/client.c): table-driven boundary cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "brick/client.c"
#include "proto/brick.c"

#define BS ((uint64_t)NVL_BRICK_BLOCK_SIZE)

static struct nvl_brick_hdr
req(uint8_t op)
{
	struct nvl_brick_hdr h = { .magic = NVL_BRICK_MAGIC, .version = 1, .opcode = op };

	return h;
}

static void
test_hdr_roundtrip(void **state)
{
	struct nvl_brick_hdr h = { .magic = NVL_BRICK_MAGIC, .version = 1, .opcode = 9,
				   .flags = 3, .status = 5, .data_len = 0x01020304,
				   .req_id = 0x1112131415161718ULL, .key = 0x2122232425262728ULL,
				   .addr = 0x3132333435363738ULL, .offset = 0x41,
				   .length = 0x5152535455565758ULL, .arg = 0x61626364, .rsvd = 7 };
	struct nvl_brick_hdr d;
	uint8_t w[64];

	(void)state;
	brick_proto_hdr_encode(&h, w);
	/* little-endian on the wire, fields where the spec header puts them */
	assert_int_equal(w[0], 0x42);
	assert_int_equal(w[3], 0x4b);
	assert_int_equal(w[5], 9);
	assert_int_equal(w[12], 0x04);
	assert_int_equal(w[16], 0x18);
	assert_int_equal(w[56], 0x64);
	brick_proto_hdr_decode(w, &d);
	assert_memory_equal(&h, &d, sizeof(h));
}

struct req_case {
	const char *what;
	struct nvl_brick_hdr h;
	int want;
};

static void
test_check_req(void **state)
{
	struct req_case c[] = {
		{ "alloc ok", req(NVL_BRICK_OP_ALLOC), 0 },
		{ "bad magic", req(NVL_BRICK_OP_ALLOC), -EPROTO },
		{ "flags in request", req(NVL_BRICK_OP_ALLOC), -EPROTO },
		{ "status in request", req(NVL_BRICK_OP_ALLOC), -EPROTO },
		{ "rsvd", req(NVL_BRICK_OP_ALLOC), -EPROTO },
		{ "opcode 0", req(0), -EOPNOTSUPP },
		{ "opcode 13", req(13), -EOPNOTSUPP },
		{ "opcode 255", req(255), -EOPNOTSUPP },
		{ "version", req(NVL_BRICK_OP_INFO), -EPROTO },
		{ "alloc unaligned", req(NVL_BRICK_OP_ALLOC), -EINVAL },
		{ "alloc payload", req(NVL_BRICK_OP_ALLOC), -EINVAL },
		{ "alloc key", req(NVL_BRICK_OP_ALLOC), -EINVAL },
		{ "map ro", req(NVL_BRICK_OP_MAP), 0 },
		{ "map ro|rw", req(NVL_BRICK_OP_MAP), -EINVAL },
		{ "map none", req(NVL_BRICK_OP_MAP), -EINVAL },
		{ "map shared|excl", req(NVL_BRICK_OP_MAP), -EINVAL },
		{ "map unknown bit", req(NVL_BRICK_OP_MAP), -EINVAL },
		{ "read ok", req(NVL_BRICK_OP_READ), 0 },
		{ "read whole", req(NVL_BRICK_OP_READ), 0 },
		{ "read len 0", req(NVL_BRICK_OP_READ), -EINVAL },
		{ "read off=BS", req(NVL_BRICK_OP_READ), -EINVAL },
		{ "read past end", req(NVL_BRICK_OP_READ), -EINVAL },
		{ "read wrap", req(NVL_BRICK_OP_READ), -EINVAL },
		{ "read with payload", req(NVL_BRICK_OP_READ), -EINVAL },
		{ "write ok", req(NVL_BRICK_OP_WRITE), 0 },
		{ "write data_len mismatch", req(NVL_BRICK_OP_WRITE), -EINVAL },
		{ "flush len 0", req(NVL_BRICK_OP_FLUSH), 0 },
		{ "flush past", req(NVL_BRICK_OP_FLUSH), -EINVAL },
		{ "list max", req(NVL_BRICK_OP_LIST), 0 },
		{ "list max+1", req(NVL_BRICK_OP_LIST), -EINVAL },
		{ "hello short", req(NVL_BRICK_OP_HELLO), -EINVAL },
		{ "hello ok, any version", req(NVL_BRICK_OP_HELLO), 0 },
		{ "hello too long", req(NVL_BRICK_OP_HELLO), -EINVAL },
		{ "map with block key", req(NVL_BRICK_OP_MAP), 0 },
		{ "map with 15 bytes", req(NVL_BRICK_OP_MAP), -EINVAL },
		{ "free with block key", req(NVL_BRICK_OP_FREE), 0 },
		{ "free with 17 bytes", req(NVL_BRICK_OP_FREE), -EINVAL },
		{ "unmap with a payload", req(NVL_BRICK_OP_UNMAP), -EINVAL },
		{ "key ok", req(NVL_BRICK_OP_KEY), 0 },
		{ "key with a payload", req(NVL_BRICK_OP_KEY), -EINVAL },
	};
	int i = 0;

	(void)state;
	i++;
	c[i++].h.magic = 1;
	c[i++].h.flags = NVL_BRICK_HF_RESPONSE;
	c[i++].h.status = 1;
	c[i++].h.rsvd = 1;
	i += 3;
	c[i++].h.version = 2;
	c[i++].h.addr = 4096;
	c[i++].h.data_len = 1;
	c[i++].h.key = 1;
	c[i++].h.arg = NVL_BRICK_MAP_RO;
	c[i++].h.arg = NVL_BRICK_MAP_RO | NVL_BRICK_MAP_RW;
	c[i++].h.arg = 0;
	c[i++].h.arg = NVL_BRICK_MAP_RW | NVL_BRICK_MAP_SHARED | NVL_BRICK_MAP_EXCL;
	c[i++].h.arg = NVL_BRICK_MAP_RW | 0x10;
	c[i].h.offset = 100, c[i++].h.length = 5;
	c[i++].h.length = BS;
	c[i++].h.length = 0;
	c[i].h.offset = BS, c[i++].h.length = 1;
	c[i].h.offset = BS - 1, c[i++].h.length = 2;
	c[i].h.offset = 8, c[i++].h.length = UINT64_MAX - 3;
	c[i].h.length = 4, c[i++].h.data_len = 4;
	c[i].h.length = 4, c[i++].h.data_len = 4;
	c[i].h.length = 4, c[i++].h.data_len = 5;
	c[i++].h.offset = 4096;
	c[i].h.offset = 4096, c[i++].h.length = BS;
	c[i++].h.arg = NVL_BRICK_LIST_MAX;
	c[i++].h.arg = NVL_BRICK_LIST_MAX + 1;
	c[i++].h.data_len = 16;
	c[i].h.version = 77, c[i++].h.data_len = 17;
	c[i++].h.data_len = BRICK_PROTO_HELLO_MAX + 1;
	c[i].h.arg = NVL_BRICK_MAP_RW, c[i++].h.data_len = NVL_BRICK_KEY_SIZE;
	c[i].h.arg = NVL_BRICK_MAP_RW, c[i++].h.data_len = NVL_BRICK_KEY_SIZE - 1;
	c[i++].h.data_len = NVL_BRICK_KEY_SIZE;
	c[i++].h.data_len = NVL_BRICK_KEY_SIZE + 1;
	c[i++].h.data_len = NVL_BRICK_KEY_SIZE;
	i++;
	c[i++].h.data_len = NVL_BRICK_KEY_SIZE;
	assert_int_equal(i, (int)(sizeof(c) / sizeof(c[0])));
	for (i = 0; i < (int)(sizeof(c) / sizeof(c[0])); i++) {
		int rc = brick_proto_check_req(&c[i].h, 1);

		if (rc != c[i].want)
			fail_msg("%s: got %d want %d", c[i].what, rc, c[i].want);
	}
}

static void
test_check_resp(void **state)
{
	struct nvl_brick_hdr q = req(NVL_BRICK_OP_READ), r;

	(void)state;
	q.req_id = 9;
	q.length = 100;
	r = q;
	r.flags = NVL_BRICK_HF_RESPONSE;
	r.data_len = 100;
	assert_int_equal(brick_proto_check_resp(&r, &q), 0);
	r.data_len = 99;
	assert_int_equal(brick_proto_check_resp(&r, &q), -EPROTO);
	r.data_len = 0;
	r.status = NVL_BRICK_S_ACCES;
	assert_int_equal(brick_proto_check_resp(&r, &q), 0);
	r.data_len = 100; /* error with payload */
	assert_int_equal(brick_proto_check_resp(&r, &q), -EPROTO);
	r.status = 0;
	r.req_id = 10;
	assert_int_equal(brick_proto_check_resp(&r, &q), -EPROTO);
	r.req_id = 9;
	r.flags |= NVL_BRICK_HF_FD; /* fd on a READ */
	assert_int_equal(brick_proto_check_resp(&r, &q), -EPROTO);
	r.flags = 0; /* not a response */
	assert_int_equal(brick_proto_check_resp(&r, &q), -EPROTO);
	/* LIST: count bounded by the request */
	q = req(NVL_BRICK_OP_LIST);
	q.arg = 2;
	r = q;
	r.flags = NVL_BRICK_HF_RESPONSE | NVL_BRICK_HF_MORE;
	r.arg = 3;
	r.data_len = 3 * 24;
	assert_int_equal(brick_proto_check_resp(&r, &q), -EPROTO);
	r.arg = 2;
	r.data_len = 2 * 24;
	assert_int_equal(brick_proto_check_resp(&r, &q), 0);
	/* MAP: key, addr and length are checked */
	q = req(NVL_BRICK_OP_MAP);
	q.addr = BS;
	r = q;
	r.flags = NVL_BRICK_HF_RESPONSE;
	r.key = 5;
	r.length = BS;
	r.data_len = NVL_BRICK_KEY_SIZE; /* the block key */
	assert_int_equal(brick_proto_check_resp(&r, &q), 0);
	r.data_len = 0;
	assert_int_equal(brick_proto_check_resp(&r, &q), -EPROTO);
	/* over RDMA the block key is followed by the remote handle; nothing else fits */
	r.data_len = NVL_BRICK_KEY_SIZE + NVL_BRICK_RDMA_HANDLE_SIZE;
	assert_int_equal(brick_proto_check_resp(&r, &q), 0);
	r.data_len = NVL_BRICK_KEY_SIZE + NVL_BRICK_RDMA_HANDLE_SIZE - 1;
	assert_int_equal(brick_proto_check_resp(&r, &q), -EPROTO);
	r.data_len = NVL_BRICK_KEY_SIZE + NVL_BRICK_RDMA_HANDLE_SIZE + 1;
	assert_int_equal(brick_proto_check_resp(&r, &q), -EPROTO);
	r.data_len = NVL_BRICK_KEY_SIZE;
	r.key = 0;
	assert_int_equal(brick_proto_check_resp(&r, &q), -EPROTO);
	r.key = 5;
	r.addr = 0;
	assert_int_equal(brick_proto_check_resp(&r, &q), -EPROTO);
	/* ALLOC and KEY answer with the block key; errors carry nothing */
	for (int opc = NVL_BRICK_OP_ALLOC; opc <= NVL_BRICK_OP_KEY; opc += NVL_BRICK_OP_KEY -
									    NVL_BRICK_OP_ALLOC) {
		q = req((uint8_t)opc);
		r = q;
		r.flags = NVL_BRICK_HF_RESPONSE;
		r.data_len = NVL_BRICK_KEY_SIZE;
		assert_int_equal(brick_proto_check_resp(&r, &q), 0);
		r.data_len = 0;
		assert_int_equal(brick_proto_check_resp(&r, &q), -EPROTO);
		r.status = NVL_BRICK_S_ACCES;
		assert_int_equal(brick_proto_check_resp(&r, &q), 0);
	}
}

static void
test_status(void **state)
{
	static const int errs[] = { 0, -EINVAL, -ENOENT, -EEXIST, -ENOSPC, -EACCES, -EROFS,
				    -EBUSY, -ENOMEM, -EIO, -EPROTO, -EOPNOTSUPP,
				    -EPROTONOSUPPORT, -ENXIO };

	(void)state;
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		assert_int_equal(brick_proto_errno_from_status(brick_proto_status_from_errno(errs[i])),
				 errs[i]);
	assert_int_equal(brick_proto_status_from_errno(-ELOOP), NVL_BRICK_S_INTERNAL);
	assert_int_equal(brick_proto_errno_from_status(999), -EREMOTEIO);
}

static void
test_hello(void **state)
{
	uint8_t buf[BRICK_PROTO_HELLO_MAX + 8];
	char name[NVL_BRICK_NAME_MAX + 1];
	struct brick_proto_client cl = { .has_id = true, .name = "alice@h1" }, out;
	uint8_t v;
	size_t n;

	(void)state;
	/* anonymous */
	n = brick_proto_hello_encode("brick-0", buf, sizeof(buf));
	assert_int_equal(n, 16 + 7);
	assert_int_equal(brick_proto_hello_decode(buf, n, &v, name, &out), 0);
	assert_string_equal(name, "brick-0");
	assert_false(out.has_id);
	assert_int_equal(v, 2);
	assert_int_equal(brick_proto_hello_decode(buf, n - 1, &v, name, NULL), -EINVAL);
	buf[16] = ' ';
	assert_int_equal(brick_proto_hello_decode(buf, n, &v, name, NULL), -EINVAL);
	buf[16] = 'b';
	buf[0] = 3;
	buf[1] = 4; /* versions 3..4 only */
	assert_int_equal(brick_proto_hello_decode(buf, n, &v, name, NULL), -EPROTONOSUPPORT);
	buf[0] = 1;
	buf[1] = 1; /* a version 1 client: refused as a version, before any field */
	buf[12] = 0xff;
	assert_int_equal(brick_proto_hello_decode(buf, n, &v, name, NULL), -EPROTONOSUPPORT);
	buf[12] = 0;
	buf[1] = 2;
	assert_int_equal(brick_proto_hello_decode(buf, n, &v, name, NULL), 0);
	assert_int_equal(v, 2);
	assert_int_equal(brick_proto_hello_encode("", buf, sizeof(buf)), 0);
	assert_int_equal(brick_proto_hello_encode("x", buf, 10), 0);

	/* with an identity: secret and name travel, the lengths must add up */
	for (unsigned i = 0; i < NVL_BRICK_ID_SIZE; i++)
		cl.secret[i] = (uint8_t)(i * 7 + 1);
	n = brick_proto_hello_encode_id("b0", &cl, buf, sizeof(buf));
	assert_int_equal(n, 16 + 2 + 32 + 8);
	assert_int_equal(brick_proto_hello_decode(buf, n, &v, name, &out), 0);
	assert_true(out.has_id);
	assert_memory_equal(out.secret, cl.secret, NVL_BRICK_ID_SIZE);
	assert_string_equal(out.name, "alice@h1");
	assert_string_equal(name, "b0");
	assert_int_equal(brick_proto_hello_decode(buf, n - 1, &v, name, &out), -EINVAL);
	buf[12] = 31; /* client part shorter than the secret */
	assert_int_equal(brick_proto_hello_decode(buf, n, &v, name, &out), -EINVAL);
	buf[12] = 40;
	buf[n - 1] = '/'; /* client names are printable, no '/' */
	assert_int_equal(brick_proto_hello_decode(buf, n, &v, name, &out), -EINVAL);
	cl.has_id = true;
	memset(cl.name, 'n', NVL_BRICK_CLIENT_MAX);
	cl.name[NVL_BRICK_CLIENT_MAX] = '\0';
	n = brick_proto_hello_encode_id("b0", &cl, buf, sizeof(buf));
	assert_int_equal(n, 16 + 2 + 32 + NVL_BRICK_CLIENT_MAX);
	assert_int_equal(brick_proto_hello_decode(buf, n, &v, name, &out), 0);
	assert_int_equal(strlen(out.name), NVL_BRICK_CLIENT_MAX);
	/* an anonymous client may still carry no name at all */
	cl.has_id = false;
	assert_int_equal(brick_proto_hello_encode_id("b0", &cl, buf, sizeof(buf)), 16 + 2);
}

struct uri_case {
	const char *uri;
	int rc;
	bool tcp;
	const char *a, *b, *name;
};

static void
test_uri(void **state)
{
	static const struct uri_case c[] = {
		{ "brick+shm:///run/b.sock?name=b0", 0, false, "/run/b.sock", "", "b0" },
		{ "brick+tcp://127.0.0.1:4420/b0", 0, true, "127.0.0.1", "4420", "b0" },
		{ "brick+tcp://[::1]:9/x.y", 0, true, "::1", "9", "x.y" },
		{ "brick+tcp://host.example:1/n", 0, true, "host.example", "1", "n" },
		{ "brick+shm://relative?name=b0", -EINVAL },
		{ "brick+shm:///run/b.sock", -EINVAL },
		{ "brick+shm:///run/b.sock?name=", -EINVAL },
		{ "brick+shm:///run/b.sock?nam=b", -EINVAL },
		{ "brick+tcp://127.0.0.1/b0", -EINVAL },
		{ "brick+tcp://127.0.0.1:/b0", -EINVAL },
		{ "brick+tcp://127.0.0.1:12a/b0", -EINVAL },
		{ "brick+tcp://127.0.0.1:123456/b0", -EINVAL },
		{ "brick+tcp://:1/b0", -EINVAL },
		{ "brick+tcp://[::1/b0", -EINVAL },
		{ "brick+tcp://h:1/", -EINVAL },
		{ "brick+tcp://h:1/a/b", -EINVAL },
		{ "nvme+tcp://h:1/b", -EINVAL },
		{ "", -EINVAL },
	};
	struct nvl_brick_uri u;
	char longp[300];

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int rc = nvl_brick_uri_parse(c[i].uri, &u);

		if (rc != c[i].rc)
			fail_msg("%s: got %d want %d", c[i].uri, rc, c[i].rc);
		if (rc)
			continue;
		assert_int_equal(u.tcp, c[i].tcp);
		assert_string_equal(c[i].tcp ? u.host : u.path, c[i].a);
		if (c[i].tcp)
			assert_string_equal(u.port, c[i].b);
		assert_string_equal(u.name, c[i].name);
	}
	/* brick+rdma: HOST:PORT/NAME as brick+tcp */
	assert_int_equal(nvl_brick_uri_parse("brick+rdma://192.0.2.10:4430/b0", &u), 0);
	assert_true(u.rdma);
	assert_false(u.tcp);
	assert_string_equal(u.host, "192.0.2.10");
	assert_string_equal(u.port, "4430");
	assert_string_equal(u.name, "b0");
	assert_int_equal(nvl_brick_uri_parse("brick+rdma://[fe80::1]:4430/b0", &u), 0);
	assert_string_equal(u.host, "fe80::1");
	assert_int_equal(nvl_brick_uri_parse("brick+rdma://192.0.2.10/b0", &u), -EINVAL);
	assert_int_equal(nvl_brick_uri_parse("brick+rdma://192.0.2.10:4430/", &u), -EINVAL);
	assert_int_equal(nvl_brick_uri_parse("brick+tcp://h:1/b", &u), 0);
	assert_false(u.rdma);
	snprintf(longp, sizeof(longp), "brick+shm:///%0200d?name=b", 0);
	assert_int_equal(nvl_brick_uri_parse(longp, &u), -ENAMETOOLONG);
	assert_int_equal(nvl_brick_uri_parse(NULL, &u), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hdr_roundtrip), cmocka_unit_test(test_check_req),
		cmocka_unit_test(test_check_resp),    cmocka_unit_test(test_status),
		cmocka_unit_test(test_hello),         cmocka_unit_test(test_uri),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
