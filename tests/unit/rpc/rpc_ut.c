/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of src/rpc/rpc.c: nvl_rpc_decode table-driven over every type,
 * range, unknown and missing keys; the dispatcher fed through a socketpair
 * with the daemon's own connection code (rpc_conn_create/rpc_conn_event): parse
 * errors, invalid requests, method errors, notifications, batches,
 * concatenated texts, input split at every byte, oversize and pipelined
 * input, asynchronous answers, clients that hang up, the listening socket
 * (stale takeover, live refusal, client limit), idle and incomplete-request
 * timeouts, local calls.
 */
#include "rpc/rpc.c"
#include "common/ut.h"

#include <sys/stat.h>

/* ---- fake methods ---------------------------------------------------------- */

struct ut_all {
	const char *s;
	bool b;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	int32_t i32;
	int64_t i64;
	json_t *obj;
	json_t *arr;
	json_t *any;
	uint32_t req;
};

static const struct nvl_rpc_param ut_all_params[] = {
	NVL_RPC_PARAM(struct ut_all, s, NVL_RPC_T_STR, false, "string"),
	NVL_RPC_PARAM(struct ut_all, b, NVL_RPC_T_BOOL, false, "bool"),
	NVL_RPC_PARAM(struct ut_all, u8, NVL_RPC_T_U8, false, "u8"),
	NVL_RPC_PARAM(struct ut_all, u16, NVL_RPC_T_U16, false, "u16"),
	NVL_RPC_PARAM(struct ut_all, u32, NVL_RPC_T_U32, false, "u32"),
	NVL_RPC_PARAM(struct ut_all, u64, NVL_RPC_T_U64, false, "u64"),
	NVL_RPC_PARAM(struct ut_all, i32, NVL_RPC_T_I32, false, "i32"),
	NVL_RPC_PARAM(struct ut_all, i64, NVL_RPC_T_I64, false, "i64"),
	NVL_RPC_PARAM(struct ut_all, obj, NVL_RPC_T_OBJ, false, "object"),
	NVL_RPC_PARAM(struct ut_all, arr, NVL_RPC_T_ARRAY, false, "array"),
	NVL_RPC_PARAM(struct ut_all, any, NVL_RPC_T_ANY, false, "anything"),
	NVL_RPC_PARAM_AS("required-one", struct ut_all, req, NVL_RPC_T_U32, true, "needed"),
};

static int g_handler_calls;

/* echoes the decoded u32 of "required-one" */
static void
ut_rpc_all(struct nvl_rpc_request *req, struct ut_all *a)
{
	g_handler_calls++;
	nvl_rpc_result(req, json_integer(a->req));
}
NVL_RPC_REGISTER("ut_all", ut_rpc_all, struct ut_all, ut_all_params, NVL_RPC_RUNTIME, "test")

static void
ut_rpc_noargs(struct nvl_rpc_request *req, void *unused)
{
	(void)unused;
	g_handler_calls++;
	nvl_rpc_result(req, json_string("pong"));
}
NVL_RPC_REGISTER_NOARGS("ut_ping", ut_rpc_noargs, NVL_RPC_RUNTIME, "test")
NVL_RPC_REGISTER_ALIAS("ut_ping_alias", ut_rpc_noargs)

static void
ut_rpc_fail(struct nvl_rpc_request *req, void *unused)
{
	(void)unused;
	nvl_rpc_error_errno(req, -EBUSY, "the thing");
}
NVL_RPC_REGISTER_NOARGS("ut_fail", ut_rpc_fail, NVL_RPC_RUNTIME, "test")

struct ut_async_args {
	uint32_t ms;
	uint32_t value;
};
static const struct nvl_rpc_param ut_async_params[] = {
	NVL_RPC_PARAM(struct ut_async_args, ms, NVL_RPC_T_U32, true, "delay"),
	NVL_RPC_PARAM(struct ut_async_args, value, NVL_RPC_T_U32, true, "result"),
};
struct ut_pending {
	struct nvl_rpc_request *req;
	uint32_t value;
	struct nvl_timer *t;
};
static int g_async_done;

static void
ut_async_fire(void *arg)
{
	struct ut_pending *p = arg;

	nvl_timer_destroy(p->t);
	nvl_rpc_result(p->req, json_integer(p->value));
	free(p);
	g_async_done++;
}

static void
ut_rpc_async(struct nvl_rpc_request *req, struct ut_async_args *a)
{
	struct ut_pending *p = calloc(1, sizeof(*p));

	p->req = req;
	p->value = a->value;
	p->t = nvl_timer_create(ut_async_fire, p, (uint64_t)a->ms * 1000, 0);
}
NVL_RPC_REGISTER("ut_async", ut_rpc_async, struct ut_async_args, ut_async_params,
		 NVL_RPC_RUNTIME, "test")

struct ut_big_args {
	uint32_t bytes;
};
static const struct nvl_rpc_param ut_big_params[] = {
	NVL_RPC_PARAM(struct ut_big_args, bytes, NVL_RPC_T_U32, true, "size"),
};

static void
ut_rpc_big(struct nvl_rpc_request *req, struct ut_big_args *a)
{
	char *s = malloc((size_t)a->bytes + 1);

	memset(s, 'b', a->bytes);
	s[a->bytes] = '\0';
	nvl_rpc_result(req, json_string(s));
	free(s);
}
NVL_RPC_REGISTER("ut_big", ut_rpc_big, struct ut_big_args, ut_big_params, NVL_RPC_RUNTIME,
		 "test")

/* ---- decode ---------------------------------------------------------------- */

static void
test_decode_table(void **state)
{
	static const struct {
		const char *json;
		int rc;
		const char *msg; /* substring of the error */
	} cases[] = {
		{ "{\"required-one\": 1}", 0, NULL },
		{ "{\"required-one\": 4294967295}", 0, NULL },
		{ "{\"required-one\": 4294967296}", -EINVAL, "'required-one' is out of range" },
		{ "{}", -EINVAL, "missing required parameter 'required-one'" },
		{ "{\"s\": \"x\"}", -EINVAL, "missing required parameter 'required-one'" },
		{ "{\"required-one\": 1, \"bogus\": 1}", -EINVAL, "unknown parameter 'bogus'" },
		{ "{\"required-one\": 1, \"S\": \"x\"}", -EINVAL, "unknown parameter 'S'" },
		{ "[1]", -EINVAL, "params must be an object" },
		{ "\"str\"", -EINVAL, "params must be an object" },
		{ "{\"required-one\": 1, \"s\": 5}", -EINVAL, "'s' must be a string" },
		{ "{\"required-one\": 1, \"s\": null}", -EINVAL, "'s' must be a string" },
		{ "{\"required-one\": 1, \"s\": \"\"}", 0, NULL },
		{ "{\"required-one\": 1, \"b\": true}", 0, NULL },
		{ "{\"required-one\": 1, \"b\": 1}", -EINVAL, "'b' must be a boolean" },
		{ "{\"required-one\": 1, \"b\": \"true\"}", -EINVAL, "'b' must be a boolean" },
		{ "{\"required-one\": 1, \"u8\": 255}", 0, NULL },
		{ "{\"required-one\": 1, \"u8\": 256}", -EINVAL, "'u8' is out of range" },
		{ "{\"required-one\": 1, \"u8\": -1}", -EINVAL, "'u8' is out of range" },
		{ "{\"required-one\": 1, \"u8\": 1.0}", -EINVAL, "'u8' must be a unsigned integer" },
		{ "{\"required-one\": 1, \"u8\": \"1\"}", -EINVAL, "'u8' must be a unsigned integer" },
		{ "{\"required-one\": 1, \"u16\": 65535}", 0, NULL },
		{ "{\"required-one\": 1, \"u16\": 65536}", -EINVAL, "'u16' is out of range" },
		{ "{\"required-one\": 1, \"u32\": 4294967295}", 0, NULL },
		{ "{\"required-one\": 1, \"u32\": 4294967296}", -EINVAL, "'u32' is out of range" },
		{ "{\"required-one\": 1, \"u64\": 9223372036854775807}", 0, NULL },
		{ "{\"required-one\": 1, \"u64\": -1}", -EINVAL, "'u64' is out of range" },
		{ "{\"required-one\": 1, \"u64\": true}", -EINVAL, "'u64' must be a unsigned integer" },
		{ "{\"required-one\": 1, \"i32\": -2147483648}", 0, NULL },
		{ "{\"required-one\": 1, \"i32\": 2147483647}", 0, NULL },
		{ "{\"required-one\": 1, \"i32\": 2147483648}", -EINVAL, "'i32' is out of range" },
		{ "{\"required-one\": 1, \"i32\": -2147483649}", -EINVAL, "'i32' is out of range" },
		{ "{\"required-one\": 1, \"i32\": 0.5}", -EINVAL, "'i32' must be a integer" },
		{ "{\"required-one\": 1, \"i64\": -9223372036854775808}", 0, NULL },
		{ "{\"required-one\": 1, \"i64\": []}", -EINVAL, "'i64' must be a integer" },
		{ "{\"required-one\": 1, \"obj\": {}}", 0, NULL },
		{ "{\"required-one\": 1, \"obj\": []}", -EINVAL, "'obj' must be a object" },
		{ "{\"required-one\": 1, \"arr\": []}", 0, NULL },
		{ "{\"required-one\": 1, \"arr\": {}}", -EINVAL, "'arr' must be a array" },
		{ "{\"required-one\": 1, \"any\": null}", 0, NULL },
		{ "{\"required-one\": 1, \"any\": [1, {\"a\": 2}]}", 0, NULL },
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < UT_N(cases); i++) {
		json_t *p = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
		struct ut_all a;
		int rc;

		assert_non_null(p);
		memset(&a, 0, sizeof(a));
		err[0] = '\0';
		rc = nvl_rpc_decode(p, ut_all_params, UT_N(ut_all_params), &a, err, sizeof(err));
		if (rc != cases[i].rc)
			fail_msg("decode %s: rc %d (%s), expected %d", cases[i].json, rc, err,
				 cases[i].rc);
		if (cases[i].msg && strstr(err, cases[i].msg) == NULL)
			fail_msg("decode %s: message '%s' lacks '%s'", cases[i].json, err,
				 cases[i].msg);
		json_decref(p);
	}
}

static void
test_decode_values(void **state)
{
	json_t *p = json_loads("{\"s\": \"hi\", \"b\": true, \"u8\": 200, \"u16\": 60000, "
			       "\"u32\": 4000000000, \"u64\": 9000000000000, \"i32\": -5, "
			       "\"i64\": -9000000000000, \"obj\": {\"k\": 1}, \"arr\": [1, 2], "
			       "\"any\": 3.5, \"required-one\": 7}",
			       0, NULL);
	struct ut_all a;
	char err[128];

	(void)state;
	memset(&a, 0, sizeof(a));
	assert_int_equal(nvl_rpc_decode(p, ut_all_params, UT_N(ut_all_params), &a, err,
					sizeof(err)), 0);
	assert_string_equal(a.s, "hi");
	assert_true(a.b);
	assert_int_equal(a.u8, 200);
	assert_int_equal(a.u16, 60000);
	assert_int_equal(a.u32, 4000000000u);
	assert_int_equal(a.u64, 9000000000000ULL);
	assert_int_equal(a.i32, -5);
	assert_true(a.i64 == -9000000000000LL);
	assert_true(json_is_object(a.obj));
	assert_int_equal(json_array_size(a.arr), 2);
	assert_true(json_is_real(a.any));
	assert_int_equal(a.req, 7);
	json_decref(p);

	/* no params at all: fine unless something is required */
	memset(&a, 0, sizeof(a));
	assert_int_equal(nvl_rpc_decode(NULL, ut_all_params, 0, &a, err, sizeof(err)), 0);
	assert_int_equal(nvl_rpc_decode(json_null(), ut_async_params, 0, &a, err, sizeof(err)), 0);
	assert_int_equal(nvl_rpc_decode(NULL, ut_all_params, UT_N(ut_all_params), &a, err,
					sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "missing required parameter 'required-one'"));
}

/* defaults, ranges and accepted-but-ignored parameters from the table */
struct ut_sch {
	uint32_t depth;
	const char *family;
	bool flag;
	int32_t neg;
};

static const struct nvl_rpc_param ut_sch_params[] = {
	NVL_RPC_PARAM(struct ut_sch, depth, NVL_RPC_T_U32, false, "entries", NVL_RPC_DEFAULT("128"),
		      NVL_RPC_RANGE(2, 4096)),
	NVL_RPC_PARAM(struct ut_sch, family, NVL_RPC_T_STR, false, "family",
		      NVL_RPC_DEFAULT("\"IPv4\"")),
	NVL_RPC_PARAM(struct ut_sch, flag, NVL_RPC_T_BOOL, false, "flag", NVL_RPC_DEFAULT("true")),
	NVL_RPC_PARAM(struct ut_sch, neg, NVL_RPC_T_I32, false, "signed", NVL_RPC_RANGE(-5, 5)),
	NVL_RPC_PARAM_IGNORED("no_srq", NVL_RPC_T_BOOL, "RDMA only"),
	NVL_RPC_PARAM_IGNORED("num_cqe", NVL_RPC_T_U32, "RDMA only", NVL_RPC_RANGE(0, 10)),
};

static void
test_decode_schema(void **state)
{
	static const struct {
		const char *json;
		int rc;
		const char *msg;
		uint32_t depth;
		const char *family;
		bool flag;
	} cases[] = {
		{ "{}", 0, NULL, 128, "IPv4", true },
		{ "{\"depth\": 2, \"family\": \"IPv6\", \"flag\": false}", 0, NULL, 2, "IPv6", false },
		{ "{\"depth\": 4096}", 0, NULL, 4096, "IPv4", true },
		{ "{\"depth\": 1}", -EINVAL, "'depth' must be 2..4096", 0, NULL, false },
		{ "{\"depth\": 4097}", -EINVAL, "'depth' must be 2..4096", 0, NULL, false },
		{ "{\"depth\": -1}", -EINVAL, "'depth' must be 2..4096", 0, NULL, false },
		{ "{\"neg\": -5}", 0, NULL, 128, "IPv4", true },
		{ "{\"neg\": -6}", -EINVAL, "'neg' must be -5..5", 0, NULL, false },
		{ "{\"no_srq\": true, \"num_cqe\": 10}", 0, NULL, 128, "IPv4", true },
		{ "{\"no_srq\": 1}", -EINVAL, "'no_srq' must be a boolean", 0, NULL, false },
		{ "{\"num_cqe\": 11}", -EINVAL, "'num_cqe' must be 0..10", 0, NULL, false },
		{ "{\"nosuch\": 1}", -EINVAL, "unknown parameter 'nosuch'", 0, NULL, false },
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < UT_N(cases); i++) {
		json_t *p = json_loads(cases[i].json, 0, NULL);
		struct ut_sch a;
		int rc;

		assert_non_null(p);
		memset(&a, 0, sizeof(a));
		err[0] = '\0';
		rc = nvl_rpc_decode(p, ut_sch_params, UT_N(ut_sch_params), &a, err, sizeof(err));
		if (rc != cases[i].rc)
			fail_msg("decode %s: rc %d (%s), expected %d", cases[i].json, rc, err,
				 cases[i].rc);
		if (cases[i].msg && strstr(err, cases[i].msg) == NULL)
			fail_msg("decode %s: message '%s' lacks '%s'", cases[i].json, err,
				 cases[i].msg);
		if (rc == 0) {
			assert_int_equal(a.depth, cases[i].depth);
			assert_string_equal(a.family, cases[i].family);
			assert_int_equal(a.flag, cases[i].flag);
		}
		json_decref(p);
	}
	/* no params at all: the defaults */
	{
		struct ut_sch a;

		memset(&a, 0, sizeof(a));
		assert_int_equal(nvl_rpc_decode(NULL, ut_sch_params, UT_N(ut_sch_params), &a, err,
						sizeof(err)),
				 0);
		assert_int_equal(a.depth, 128);
		assert_string_equal(a.family, "IPv4");
		assert_true(a.flag);
	}
}

/* ---- connection harness ---------------------------------------------------- */

static int
setup(void **state)
{
	(void)state;
	if (ut_reactors_init(1) < 0)
		return -1;
	g_srv.max_request = 1 << 20;
	g_srv.max_clients = 128;
	g_srv.request_timeout_us = 0;
	g_srv.idle_timeout_us = 0;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	while (g_srv.conns)
		rpc_conn_close(g_srv.conns);
	/* let timers of async fakes complete into closed connections */
	ut_poll_for(5);
	nvl_rpc_server_stop();
	nvl_reactors_fini();
	return 0;
}

/* A connection served by the daemon's code; returns the client end. */
static int
open_conn(struct rpc_conn **out)
{
	int sv[2];
	struct rpc_conn *c;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	c = rpc_conn_create(sv[0]);
	assert_non_null(c);
	if (out)
		*out = c;
	return sv[1];
}

static void
send_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EAGAIN) {
			nvl_reactor_poll_once();
			continue;
		}
		assert_true(w > 0);
		s += w;
		n -= (size_t)w;
	}
}

/* run the reactor until it has been idle a few iterations */
static void
settle(void)
{
	int idle = 0;

	for (int i = 0; i < 100000 && idle < 5; i++)
		idle = nvl_reactor_poll_once() > 0 ? 0 : idle + 1;
}

/* Everything the server sent so far, as a JSON array of the texts (one per line). */
static json_t *
recv_all(int fd)
{
	static char buf[8 << 20];
	size_t len = 0;
	json_t *arr = json_array();
	ssize_t n;

	settle();
	for (;;) {
		n = recv(fd, buf + len, sizeof(buf) - len, 0);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EAGAIN) {
			/* a large answer may still be on its way out */
			if (nvl_reactor_poll_once() > 0)
				continue;
			settle();
			n = recv(fd, buf + len, sizeof(buf) - len, 0);
			if (n > 0) {
				len += (size_t)n;
				continue;
			}
		}
		break;
	}
	for (size_t pos = 0; pos < len;) {
		json_error_t e;
		char *nl = memchr(buf + pos, '\n', len - pos);
		json_t *doc;

		assert_non_null(nl); /* every answer is one line */
		doc = json_loadb(buf + pos, (size_t)(nl - (buf + pos)), 0, &e);
		if (doc == NULL)
			fail_msg("server sent invalid JSON: %s", e.text);
		json_array_append_new(arr, doc);
		pos = (size_t)(nl - buf) + 1;
	}
	return arr;
}

static json_t *
exchange(int fd, const char *text)
{
	send_all(fd, text, strlen(text));
	return recv_all(fd);
}

static int
err_code(const json_t *resp)
{
	return (int)json_integer_value(json_object_get(json_object_get(resp, "error"), "code"));
}

static const char *
err_msg(const json_t *resp)
{
	return json_string_value(json_object_get(json_object_get(resp, "error"), "message"));
}

/* one answer expected: its error code (0 if a result) */
static int
one_code(int fd, const char *text, json_t **resp_out)
{
	json_t *arr = exchange(fd, text);
	json_t *r;
	int code;

	if (json_array_size(arr) != 1)
		fail_msg("expected 1 answer to %.60s, got %zu", text, json_array_size(arr));
	r = json_array_get(arr, 0);
	assert_string_equal(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
	code = json_object_get(r, "error") ? err_code(r) : 0;
	if (code == 0)
		assert_non_null(json_object_get(r, "result"));
	if (resp_out)
		*resp_out = json_incref(r);
	json_decref(arr);
	return code;
}

/* ---- dispatcher ------------------------------------------------------------ */

static void
test_errors_and_recovery(void **state)
{
	static const struct {
		const char *text;
		int code;
	} cases[] = {
		{ "garbage\n", NVL_RPC_PARSE_ERROR },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":1,}\n", NVL_RPC_PARSE_ERROR },
		{ "{\"a\":1,\"a\":2}\n", NVL_RPC_PARSE_ERROR }, /* duplicate keys */
		{ "\"\\u0000\"\n", NVL_RPC_PARSE_ERROR },
		{ "42\n", NVL_RPC_INVALID_REQUEST },
		{ "\"str\"\n", NVL_RPC_INVALID_REQUEST },
		{ "null\n", NVL_RPC_INVALID_REQUEST },
		{ "{\"method\":\"ut_ping\",\"id\":1}", NVL_RPC_INVALID_REQUEST },
		{ "{\"jsonrpc\":\"1.0\",\"method\":\"ut_ping\",\"id\":1}", NVL_RPC_INVALID_REQUEST },
		{ "{\"jsonrpc\":2.0,\"method\":\"ut_ping\",\"id\":1}", NVL_RPC_INVALID_REQUEST },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1}", NVL_RPC_INVALID_REQUEST },
		{ "{\"jsonrpc\":\"2.0\",\"method\":7,\"id\":1}", NVL_RPC_INVALID_REQUEST },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":{}}", NVL_RPC_INVALID_REQUEST },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":[1]}", NVL_RPC_INVALID_REQUEST },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":true}", NVL_RPC_INVALID_REQUEST },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":1,\"x\":1}",
		  NVL_RPC_INVALID_REQUEST },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":1,\"params\":3}",
		  NVL_RPC_INVALID_REQUEST },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":1}", NVL_RPC_METHOD_NOT_FOUND },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"\",\"id\":1}", NVL_RPC_METHOD_NOT_FOUND },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"ut_all\",\"id\":1}", NVL_RPC_INVALID_PARAMS },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"ut_all\",\"params\":[1],\"id\":1}",
		  NVL_RPC_INVALID_PARAMS },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"params\":{\"x\":1},\"id\":1}",
		  NVL_RPC_INVALID_PARAMS },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"ut_fail\",\"id\":1}", -EBUSY },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"params\":[],\"id\":1}", 0 },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"params\":{},\"id\":1}", 0 },
		/* JSON-RPC 2.0 section 4.2: params, if present, is an object or array */
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"params\":null,\"id\":1}",
		  NVL_RPC_INVALID_REQUEST },
		{ "{\"id\":1,\"params\":{\"required-one\":3},\"method\":\"ut_all\",\"jsonrpc\":\"2.0\"}",
		  0 },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping_alias\",\"id\":1}", 0 },
	};
	int fd = open_conn(NULL);

	(void)state;
	for (size_t i = 0; i < UT_N(cases); i++) {
		json_t *r = NULL;
		int code = one_code(fd, cases[i].text, &r);

		if (code != cases[i].code)
			fail_msg("%s -> %d (%s), expected %d", cases[i].text, code,
				 err_msg(r) ? err_msg(r) : "result", cases[i].code);
		if (code)
			assert_true(strlen(err_msg(r)) > 5); /* a readable message */
		json_decref(r);
		/* and the connection still serves */
		assert_int_equal(one_code(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":2}",
					  NULL), 0);
	}
	close(fd);
}

static void
test_ids_and_messages(void **state)
{
	int fd = open_conn(NULL);
	json_t *r;

	(void)state;
	assert_int_equal(one_code(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":\"abc\"}", &r),
			 NVL_RPC_METHOD_NOT_FOUND);
	assert_string_equal(json_string_value(json_object_get(r, "id")), "abc");
	assert_non_null(strstr(err_msg(r), "nope"));
	json_decref(r);
	assert_int_equal(one_code(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":-7}", &r), 0);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), -7);
	assert_string_equal(json_string_value(json_object_get(r, "result")), "pong");
	json_decref(r);
	assert_int_equal(one_code(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":1.5}", &r), 0);
	assert_true(json_is_real(json_object_get(r, "id")));
	json_decref(r);
	/* invalid request keeps the id when it could be read */
	assert_int_equal(one_code(fd, "{\"jsonrpc\":\"1\",\"method\":\"ut_ping\",\"id\":9}", &r),
			 NVL_RPC_INVALID_REQUEST);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 9);
	json_decref(r);
	/* a parse error cannot know the id */
	assert_int_equal(one_code(fd, "{\"id\":5,]\n", &r), NVL_RPC_PARSE_ERROR);
	assert_true(json_is_null(json_object_get(r, "id")));
	json_decref(r);
	assert_int_equal(one_code(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_all\","
				  "\"params\":{\"required-one\":1,\"u8\":300},\"id\":3}", &r),
			 NVL_RPC_INVALID_PARAMS);
	assert_non_null(strstr(err_msg(r), "ut_all"));
	assert_non_null(strstr(err_msg(r), "'u8' is out of range"));
	json_decref(r);
	assert_int_equal(one_code(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_fail\",\"id\":3}", &r),
			 -EBUSY);
	assert_string_equal(err_msg(r), "the thing: Device or resource busy");
	json_decref(r);
	close(fd);
}

/* An error message cut at the buffer size must still be valid UTF-8 (or the
 * answer would be lost and the caller would see success). */
static void
test_long_utf8_names(void **state)
{
	int fd = open_conn(NULL);
	size_t n = 3000;
	char *name = malloc(n * 2 + 1), *req = malloc(n * 2 + 200);
	json_t *r;

	(void)state;
	for (size_t i = 0; i < n; i++)
		memcpy(name + 2 * i, "\xc3\xa9", 2); /* é */
	name[2 * n] = '\0';
	for (size_t shift = 0; shift < 3; shift++) {
		snprintf(req, n * 2 + 200, "{\"jsonrpc\":\"2.0\",\"method\":\"%s%s\",\"id\":1}",
			 shift == 1 ? "x" : shift == 2 ? "xy" : "", name);
		assert_int_equal(one_code(fd, req, &r), NVL_RPC_METHOD_NOT_FOUND);
		json_decref(r);
		snprintf(req, n * 2 + 200, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_all\",\"params\":"
			 "{\"%s%s\":1,\"required-one\":1},\"id\":1}",
			 shift == 1 ? "x" : shift == 2 ? "xy" : "", name);
		assert_int_equal(one_code(fd, req, &r), NVL_RPC_INVALID_PARAMS);
		json_decref(r);
	}
	free(name);
	free(req);
	close(fd);
}

static void
test_notifications(void **state)
{
	int fd = open_conn(NULL);
	json_t *arr;

	(void)state;
	g_handler_calls = 0;
	arr = exchange(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\"}"
			   "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}"
			   "{\"jsonrpc\":\"2.0\",\"method\":\"ut_all\",\"params\":{}}");
	/* run, but no answers: not even errors (JSON-RPC 2.0 section 4.1) */
	assert_int_equal(json_array_size(arr), 0);
	assert_int_equal(g_handler_calls, 1);
	json_decref(arr);
	close(fd);
}

static void
test_batches(void **state)
{
	int fd = open_conn(NULL);
	json_t *arr, *b;
	char *big;
	size_t off = 0;

	(void)state;
	arr = exchange(fd, "[{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":1},"
			   "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\"},"
			   "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":3},"
			   "7,"
			   "{\"jsonrpc\":\"2.0\",\"method\":\"ut_all\",\"params\":{\"required-one\":5},"
			   "\"id\":\"five\"}]");
	assert_int_equal(json_array_size(arr), 1);
	b = json_array_get(arr, 0);
	assert_true(json_is_array(b));
	assert_int_equal(json_array_size(b), 4); /* the notification has no slot */
	assert_int_equal(json_integer_value(json_object_get(json_array_get(b, 0), "id")), 1);
	assert_int_equal(err_code(json_array_get(b, 1)), NVL_RPC_METHOD_NOT_FOUND);
	assert_int_equal(err_code(json_array_get(b, 2)), NVL_RPC_INVALID_REQUEST);
	assert_true(json_is_null(json_object_get(json_array_get(b, 2), "id")));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(b, 3), "result")), 5);
	json_decref(arr);

	/* only notifications: nothing at all comes back */
	arr = exchange(fd, "[{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\"},"
			   "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\"}]");
	assert_int_equal(json_array_size(arr), 0);
	json_decref(arr);

	/* empty batch, scalars, nesting */
	assert_int_equal(one_code(fd, "[]", NULL), NVL_RPC_INVALID_REQUEST);
	arr = exchange(fd, "[1,2]");
	assert_int_equal(json_array_size(json_array_get(arr, 0)), 2);
	json_decref(arr);
	arr = exchange(fd, "[[{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":1}]]");
	assert_int_equal(err_code(json_array_get(json_array_get(arr, 0), 0)),
			 NVL_RPC_INVALID_REQUEST);
	json_decref(arr);

	/* bounded: 1024 calls are served, 1025 refused */
	big = malloc(1100 * 64);
	for (int n = 1024; n <= 1025; n++) {
		off = 0;
		big[off++] = '[';
		for (int i = 0; i < n; i++)
			off += (size_t)snprintf(big + off, 64, "%s{\"jsonrpc\":\"2.0\",\"method\":"
						"\"ut_ping\",\"id\":%d}", i ? "," : "", i);
		big[off++] = ']';
		big[off] = '\0';
		arr = exchange(fd, big);
		assert_int_equal(json_array_size(arr), 1);
		b = json_array_get(arr, 0);
		if (n == 1024) {
			assert_int_equal(json_array_size(b), 1024);
			assert_int_equal(json_integer_value(json_object_get(json_array_get(b, 1023),
									"id")), 1023);
		} else {
			assert_int_equal(err_code(b), NVL_RPC_INVALID_REQUEST);
		}
		json_decref(arr);
	}
	free(big);
	close(fd);
}

static void
test_async_answers(void **state)
{
	int fd = open_conn(NULL);
	json_t *arr, *b;

	(void)state;
	g_async_done = 0;
	/* batch answers keep request order though they complete out of order */
	{
		const char *t = "[{\"jsonrpc\":\"2.0\",\"method\":\"ut_async\",\"params\":{\"ms\":20,"
				"\"value\":1},\"id\":1},{\"jsonrpc\":\"2.0\",\"method\":\"ut_async\","
				"\"params\":{\"ms\":1,\"value\":2},\"id\":2},{\"jsonrpc\":\"2.0\","
				"\"method\":\"ut_ping\",\"id\":3}]";

		send_all(fd, t, strlen(t));
	}
	assert_true(UT_POLL_UNTIL(g_async_done == 2, 2000));
	arr = recv_all(fd);
	assert_int_equal(json_array_size(arr), 1);
	b = json_array_get(arr, 0);
	assert_int_equal(json_array_size(b), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(json_integer_value(json_object_get(json_array_get(b, (size_t)i),
								"id")), i + 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(b, 1), "result")), 2);
	json_decref(arr);

	/* plain async requests answer in completion order */
	{
		const char *t = "{\"jsonrpc\":\"2.0\",\"method\":\"ut_async\",\"params\":{\"ms\":20,"
				"\"value\":1},\"id\":1}{\"jsonrpc\":\"2.0\",\"method\":\"ut_async\","
				"\"params\":{\"ms\":1,\"value\":2},\"id\":2}";

		send_all(fd, t, strlen(t));
	}
	assert_true(UT_POLL_UNTIL(g_async_done == 4, 2000));
	arr = recv_all(fd);
	assert_int_equal(json_array_size(arr), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "id")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 1), "id")), 1);
	json_decref(arr);
	close(fd);
}

/* The client hangs up while its requests are still running. */
static void
test_hangup_mid_request(void **state)
{
	const char *t = "{\"jsonrpc\":\"2.0\",\"method\":\"ut_async\",\"params\":{\"ms\":10,\"value\":1},"
			"\"id\":1}[{\"jsonrpc\":\"2.0\",\"method\":\"ut_async\",\"params\":{\"ms\":5,"
			"\"value\":1},\"id\":1}]";
	struct rpc_conn *c;
	int fd = open_conn(&c);

	(void)state;
	g_async_done = 0;
	send_all(fd, t, strlen(t));
	settle();
	close(fd);
	assert_true(UT_POLL_UNTIL(g_async_done == 2, 2000));
	settle();
	assert_null(g_srv.conns); /* closed and (under ASan/valgrind) freed */
	assert_int_equal(g_srv.nclients, 0);

	/* half-close: answers still arrive, then the server closes */
	fd = open_conn(&c);
	send_all(fd, t, strlen(t));
	shutdown(fd, SHUT_WR);
	assert_true(UT_POLL_UNTIL(g_async_done == 4, 2000));
	{
		json_t *arr = recv_all(fd);
		char x;

		assert_int_equal(json_array_size(arr), 2);
		json_decref(arr);
		assert_int_equal(recv(fd, &x, 1, 0), 0); /* EOF from the server */
	}
	assert_null(g_srv.conns);
	close(fd);
}

static void
stop_reactors(void *arg)
{
	(void)arg;
	nvl_reactors_stop();
}

/* A client that is gone (EPOLLHUP) must not keep the reactor spinning while its
 * requests finish: the real loop has to be able to sleep meanwhile. */
static void
test_hangup_lets_reactor_sleep(void **state)
{
	const char *t = "{\"jsonrpc\":\"2.0\",\"method\":\"ut_async\",\"params\":{\"ms\":100,"
			"\"value\":1},\"id\":1}";
	struct nvl_reactor_stats st;
	struct nvl_timer *stop;
	int fd = open_conn(NULL);

	(void)state;
	g_async_done = 0;
	send_all(fd, t, strlen(t));
	settle();
	close(fd);
	stop = nvl_timer_create(stop_reactors, NULL, 200000, 0);
	assert_int_equal(nvl_reactors_run(), 0); /* spin_us is 0: idle means asleep */
	nvl_timer_destroy(stop);
	nvl_reactor_get_stats(nvl_reactor_self(), &st);
	assert_int_equal(g_async_done, 1);
	assert_null(g_srv.conns);
	if (st.loops > 2000)
		fail_msg("the reactor spun %llu times in 200 ms for a closed client",
			 (unsigned long long)st.loops);
}

static json_t *
answers_of(const char *text, size_t split)
{
	int fd = open_conn(NULL);
	json_t *arr;

	send_all(fd, text, split);
	settle();
	send_all(fd, text + split, strlen(text) - split);
	arr = recv_all(fd);
	close(fd);
	settle();
	return arr;
}

static void
test_split_every_byte(void **state)
{
	const char *text =
		"{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":1}\n"
		"[{\"jsonrpc\":\"2.0\",\"method\":\"ut_all\",\"params\":{\"required-one\":2,"
		"\"s\":\"caf\xc3\xa9 \\\"q\\\" \\u00e9 \xf0\x9f\x98\x80\",\"b\":false,"
		"\"any\":[true,null,-0.25E+2,-12.5e3]},\"id\":2},"
		"{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":3}]"
		"  \r\n\t{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":\"4\"}"
		"{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\"}"
		"{\"jsonrpc\":\"2.0\",\"method\":\"ut_fail\",\"id\":5}";
	json_t *whole = answers_of(text, strlen(text));

	(void)state;
	assert_int_equal(json_array_size(whole), 4);
	for (size_t k = 1; k < strlen(text); k++) {
		json_t *got = answers_of(text, k);

		if (!json_equal(got, whole)) {
			char *a = json_dumps(got, JSON_COMPACT), *b = json_dumps(whole, JSON_COMPACT);

			fail_msg("split at %zu: %s\n  expected %s", k, a, b);
		}
		json_decref(got);
	}
	json_decref(whole);
}

static void
test_oversize(void **state)
{
	struct rpc_conn *c;
	int fd, other;
	char *big;
	json_t *arr;
	char x;

	(void)state;
	g_srv.max_request = 4096;
	other = open_conn(NULL);
	fd = open_conn(&c);
	big = malloc(200000);
	memset(big, ' ', 200000);
	memcpy(big, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"params\":{\"s\":\"", 51);
	send_all(fd, big, 100000);
	arr = recv_all(fd);
	assert_int_equal(json_array_size(arr), 1);
	assert_int_equal(err_code(json_array_get(arr, 0)), NVL_RPC_PARSE_ERROR);
	assert_non_null(strstr(err_msg(json_array_get(arr, 0)), "larger than the limit"));
	json_decref(arr);
	/* the server shut its side and drains what we still send, then closes on our EOF */
	send_all(fd, big, 50000);
	settle();
	assert_int_equal(recv(fd, &x, 1, 0), 0);
	assert_non_null(g_srv.conns);
	shutdown(fd, SHUT_WR);
	settle();
	close(fd);
	settle();
	/* the other client is unaffected */
	assert_int_equal(one_code(other, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":1}",
				  NULL), 0);
	/* a request just under the limit is fine */
	memset(big, ' ', 4000);
	memcpy(big, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":1", 42);
	big[3998] = '}';
	big[3999] = '\0';
	{
		json_t *r = NULL;
		int code = one_code(other, big, &r);

		if (code)
			fail_msg("request under the limit: %s", err_msg(r));
		json_decref(r);
	}
	close(other);
	free(big);
}

/* Many small requests written at once are not "one big request". */
static void
test_pipelined_small_requests(void **state)
{
	const char *one = "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":1}\n";
	size_t n = 3000, l = strlen(one);
	char *buf = malloc(n * l + 1);
	int fd = open_conn(NULL);
	json_t *arr;

	(void)state;
	g_srv.max_request = 4096;
	for (size_t i = 0; i < n; i++)
		memcpy(buf + i * l, one, l);
	buf[n * l] = '\0';
	/* one write of ~130 KiB: far more than max_request + the read slack */
	send_all(fd, buf, n * l);
	arr = recv_all(fd);
	assert_int_equal(json_array_size(arr), n);
	for (size_t i = 0; i < n; i++)
		assert_null(json_object_get(json_array_get(arr, i), "error"));
	json_decref(arr);
	free(buf);
	close(fd);
}

/* Answers bigger than the socket buffer go out as the client reads. */
static void
test_large_answers(void **state)
{
	int fd = open_conn(NULL);
	json_t *arr;

	(void)state;
	arr = exchange(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_big\",\"params\":{\"bytes\":3000000},"
			   "\"id\":1}{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":2}");
	assert_int_equal(json_array_size(arr), 2);
	assert_int_equal(strlen(json_string_value(json_object_get(json_array_get(arr, 0), "result"))),
			 3000000);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 1), "id")), 2);
	json_decref(arr);
	close(fd);
}

static void
test_deep_nesting(void **state)
{
	int fd = open_conn(NULL);
	size_t depth = 100000;
	char *s = malloc(depth * 2 + 2);

	(void)state;
	memset(s, '[', depth);
	memset(s + depth, ']', depth);
	s[2 * depth] = '\n';
	s[2 * depth + 1] = '\0';
	assert_int_equal(one_code(fd, s, NULL), NVL_RPC_PARSE_ERROR);
	assert_int_equal(one_code(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":1}", NULL),
			 0);
	free(s);
	close(fd);
}

/* ---- the listening socket -------------------------------------------------- */

static int
connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	nvl_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void
test_server_socket(void **state)
{
	char dir[] = "/tmp/nvl-ut-rpc-XXXXXX";
	char path[256], longp[200];
	struct nvl_rpc_server_opts o = { 0 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fds[3], s;
	json_t *arr;

	(void)state;
	ut_tmpdir(dir);
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	o.path = path;
	o.max_clients = 2;

	/* a stale socket (bound, nobody listening) is taken over */
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	nvl_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	assert_int_equal(nvl_rpc_server_start(&o), 0);
	/* a live one is not (the probe is an ordinary client that hangs up) */
	assert_int_equal(nvl_sock_unix_live(path, SOCK_STREAM), 1);
	settle();
	assert_int_equal(g_srv.nclients, 0);

	fds[0] = connect_to(path);
	fds[1] = connect_to(path);
	fds[2] = connect_to(path);
	settle();
	assert_int_equal(g_srv.nclients, 2);
	arr = recv_all(fds[2]);
	assert_int_equal(json_array_size(arr), 1);
	assert_int_equal(err_code(json_array_get(arr, 0)), NVL_RPC_INTERNAL_ERROR);
	assert_non_null(strstr(err_msg(json_array_get(arr, 0)), "too many"));
	json_decref(arr);
	assert_int_equal(one_code(fds[0], "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":1}",
				  NULL), 0);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	settle();
	assert_int_equal(g_srv.nclients, 0);
	nvl_rpc_server_stop();
	assert_int_equal(access(path, F_OK), -1); /* unlinked */

	/* a live server with a full backlog is live, not stale, and checking it does not block */
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s, 0), 0);
	{
		int c[8], nc = 0;

		for (; nc < 8; nc++) {
			c[nc] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
			if (connect(c[nc], (struct sockaddr *)&sa, sizeof(sa)) < 0) {
				assert_int_equal(errno, EAGAIN);
				close(c[nc]);
				break;
			}
		}
		assert_true(nc < 8); /* the backlog is full */
		assert_int_equal(nvl_sock_unix_live(path, SOCK_STREAM), 1);
		assert_int_equal(nvl_rpc_server_start(&o), -EADDRINUSE);
		assert_int_equal(access(path, F_OK), 0);
		while (nc-- > 0)
			close(c[nc]);
	}
	close(s);
	unlink(path);

	/* not a socket: left alone */
	s = open(path, O_CREAT | O_WRONLY, 0600);
	close(s);
	assert_int_equal(nvl_rpc_server_start(&o), -EEXIST);
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	o.path = longp;
	assert_int_equal(nvl_rpc_server_start(&o), -ENAMETOOLONG);
	rmdir(dir);
}

/* 1 if the server closed (or shut its write side of) the connection fd: EOF after any answers */
static bool
peer_closed(int fd, json_t **answers)
{
	char x;
	json_t *arr = recv_all(fd);

	if (answers)
		*answers = arr;
	else
		json_decref(arr);
	return recv(fd, &x, 1, 0) == 0;
}

/* The sweep closes connections that only hold a slot; ones with work in progress stay. */
static void
test_timeouts(void **state)
{
	const char *half = "{\"jsonrpc\":\"2.0\",\"method\":\"ut_pi";
	const char *slow = "{\"jsonrpc\":\"2.0\",\"method\":\"ut_async\",\"params\":{\"ms\":300,"
			   "\"value\":5},\"id\":1}";
	const uint64_t req_to = 1000000, idle_to = 5000000;
	struct rpc_conn *ci, *cp, *cb;
	int fi, fp, fb;
	json_t *arr;

	(void)state;
	g_srv.request_timeout_us = req_to;
	g_srv.idle_timeout_us = idle_to;
	fi = open_conn(&ci); /* idle */
	fp = open_conn(&cp); /* half a request */
	fb = open_conn(&cb); /* a request still running */
	send_all(fp, half, strlen(half));
	g_async_done = 0;
	send_all(fb, slow, strlen(slow));
	settle();
	assert_int_equal(cp->in_len, strlen(half));
	assert_int_equal(cb->refs, 2);

	/* quiet for longer than the request timeout, shorter than the idle one */
	ci->last_us -= req_to + 1000;
	cp->last_us -= req_to + 1000;
	cb->last_us -= idle_to + 1000;
	rpc_srv_sweep(NULL);
	assert_false(ci->closed);
	assert_false(cb->closed);
	assert_true(cp->discard); /* refused with an answer, then closed */
	assert_true(peer_closed(fp, &arr));
	assert_int_equal(json_array_size(arr), 1);
	assert_int_equal(err_code(json_array_get(arr, 0)), NVL_RPC_PARSE_ERROR);
	assert_non_null(strstr(err_msg(json_array_get(arr, 0)), "timed out"));
	json_decref(arr);
	close(fp);
	settle();
	assert_int_equal(g_srv.nclients, 2);

	/* a partial request that keeps arriving is not timed out */
	fp = open_conn(&cp);
	send_all(fp, half, strlen(half));
	settle();
	cp->last_us -= req_to + 1000; /* its first bytes came long ago, more come now */
	send_all(fp, "ng\",", 4);
	settle();
	rpc_srv_sweep(NULL);
	assert_false(cp->closed);
	assert_false(cp->discard);
	assert_int_equal(one_code(fp, "\"id\":3}", NULL), 0); /* and then completes */

	/* idle past the idle timeout: closed without a word */
	ci->last_us -= idle_to;
	rpc_srv_sweep(NULL);
	assert_true(peer_closed(fi, &arr));
	assert_int_equal(json_array_size(arr), 0);
	json_decref(arr);
	close(fi);
	/* the running request was not cut off, and answering restarts its clock */
	assert_true(UT_POLL_UNTIL(g_async_done == 1, 2000));
	arr = recv_all(fb);
	assert_int_equal(json_array_size(arr), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "result")), 5);
	json_decref(arr);
	rpc_srv_sweep(NULL);
	assert_false(cb->closed);
	assert_int_equal(g_srv.nclients, 2);
	/* with both timeouts off nothing is ever closed */
	g_srv.request_timeout_us = 0;
	g_srv.idle_timeout_us = 0;
	cb->last_us -= 1000 * idle_to;
	rpc_srv_sweep(NULL);
	assert_false(cb->closed);
	close(fb);
	close(fp);
	settle();
	assert_int_equal(g_srv.nclients, 0);
}

/* The server's own sweep timer, configured through the options. */
static void
test_timeout_timer(void **state)
{
	char dir[] = "/tmp/nvl-ut-rpc-XXXXXX";
	char path[256];
	struct nvl_rpc_server_opts o = { 0 };
	int fd;

	(void)state;
	ut_tmpdir(dir);
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	o.path = path;
	o.request_timeout_ms = 100;
	o.idle_timeout_ms = NVL_RPC_TIMEOUT_NONE;
	assert_int_equal(nvl_rpc_server_start(&o), 0);
	assert_int_equal(g_srv.request_timeout_us, 100000);
	assert_int_equal(g_srv.idle_timeout_us, 0);
	assert_non_null(g_srv.sweep);
	fd = connect_to(path);
	send_all(fd, "{\"jsonrpc\"", 11);
	assert_true(UT_POLL_UNTIL(g_srv.nclients == 1, 2000));
	assert_true(UT_POLL_UNTIL(g_srv.conns && g_srv.conns->discard, 2000));
	close(fd);
	assert_true(UT_POLL_UNTIL(g_srv.nclients == 0, 2000));
	/* idle with no idle timeout: kept */
	fd = connect_to(path);
	assert_true(UT_POLL_UNTIL(g_srv.nclients == 1, 2000));
	ut_poll_for(300);
	assert_int_equal(g_srv.nclients, 1);
	close(fd);
	nvl_rpc_server_stop();
	assert_null(g_srv.sweep);

	/* defaults; and no timer at all when both are off */
	o.request_timeout_ms = 0;
	o.idle_timeout_ms = 0;
	assert_int_equal(nvl_rpc_server_start(&o), 0);
	assert_int_equal(g_srv.request_timeout_us, 30000000);
	assert_int_equal(g_srv.idle_timeout_us, 600000000);
	nvl_rpc_server_stop();
	o.request_timeout_ms = NVL_RPC_TIMEOUT_NONE;
	o.idle_timeout_ms = NVL_RPC_TIMEOUT_NONE;
	assert_int_equal(nvl_rpc_server_start(&o), 0);
	assert_null(g_srv.sweep);
	nvl_rpc_server_stop();
	rmdir(dir);
}

/* ---- local calls (config replay) --------------------------------------------- */

static int g_local_calls;
static json_t *g_local_result, *g_local_error;

static void
local_done(void *arg, json_t *result, json_t *error)
{
	(void)arg;
	g_local_calls++;
	g_local_result = json_incref(result);
	g_local_error = json_incref(error);
}

static void
test_local_calls(void **state)
{
	json_t *p;

	(void)state;
	assert_int_equal(nvl_rpc_call_local("nope", NULL, local_done, NULL), -ENOENT);
	g_local_calls = 0;
	p = json_pack("{s:i}", "required-one", 11);
	assert_int_equal(nvl_rpc_call_local("ut_all", p, local_done, NULL), 0);
	assert_int_equal(g_local_calls, 1);
	assert_int_equal(json_integer_value(g_local_result), 11);
	assert_null(g_local_error);
	json_decref(g_local_result);
	json_decref(p);
	p = json_pack("{s:i}", "bogus", 1);
	assert_int_equal(nvl_rpc_call_local("ut_all", p, local_done, NULL), 0);
	assert_int_equal(g_local_calls, 2);
	assert_null(g_local_result);
	assert_int_equal(json_integer_value(json_object_get(g_local_error, "code")),
			 NVL_RPC_INVALID_PARAMS);
	json_decref(g_local_error);
	json_decref(p);
	/* asynchronous completion works the same */
	p = json_pack("{s:i, s:i}", "ms", 1, "value", 4);
	g_async_done = 0;
	assert_int_equal(nvl_rpc_call_local("ut_async", p, local_done, NULL), 0);
	assert_true(UT_POLL_UNTIL(g_local_calls == 3, 2000));
	assert_int_equal(json_integer_value(g_local_result), 4);
	json_decref(g_local_result);
	json_decref(p);
}

/* SPDK's RPC states: before framework_start_init a client may call only the
 * start-up methods; a local call (the -c replay) may call anything */
static void
ut_rpc_startup_only(struct nvl_rpc_request *req, void *unused)
{
	(void)unused;
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER_NOARGS("ut_startup_only", ut_rpc_startup_only, NVL_RPC_STARTUP, "test")

static void
test_states(void **state)
{
	int fd = open_conn(NULL);
	json_t *r;

	(void)state;
	assert_int_equal(one_code(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_startup_only\",\"id\":1}",
				  &r),
			 NVL_RPC_INVALID_STATE);
	assert_non_null(strstr(err_msg(r), "only be called before framework is initialized"));
	json_decref(r);
	nvl_rpc_set_state(NVL_RPC_STARTUP);
	assert_int_equal(nvl_rpc_get_state(), NVL_RPC_STARTUP);
	assert_int_equal(one_code(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":2}", &r),
			 NVL_RPC_INVALID_STATE);
	assert_non_null(strstr(err_msg(r), "framework_start_init"));
	json_decref(r);
	assert_int_equal(one_code(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_startup_only\",\"id\":3}",
				  NULL),
			 0);
	/* the replay of -c is not a client */
	g_local_calls = 0;
	assert_int_equal(nvl_rpc_call_local("ut_ping", NULL, local_done, NULL), 0);
	assert_int_equal(g_local_calls, 1);
	assert_null(g_local_error);
	json_decref(g_local_result);
	nvl_rpc_set_state(NVL_RPC_RUNTIME);
	assert_int_equal(one_code(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"ut_ping\",\"id\":4}", NULL),
			 0);
	close(fd);
}

static void
test_registry(void **state)
{
	const struct nvl_rpc_method *m, *prev = NULL;
	int n = 0;

	(void)state;
	assert_non_null(nvl_rpc_find("ut_ping"));
	assert_null(nvl_rpc_find("ut_pin"));
	assert_string_equal(nvl_rpc_find("ut_ping_alias")->alias_of, "ut_ping");
	for (m = nvl_rpc_methods(); m; m = m->next, n++) {
		if (prev)
			assert_true(strcmp(prev->name, m->name) < 0); /* sorted, unique */
		prev = m;
	}
	assert_true(n >= 6);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_table),
		cmocka_unit_test(test_decode_values),
		cmocka_unit_test(test_decode_schema),
		cmocka_unit_test(test_registry),
		cmocka_unit_test_setup_teardown(test_errors_and_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ids_and_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_utf8_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notifications, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hangup_mid_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hangup_lets_reactor_sleep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_every_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_small_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_nesting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeouts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_states, setup, teardown),
	};

	return UT_RUN(tests);
}
