/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the JSON-RPC server: arbitrary bytes go into one end
 * of a socketpair whose other end is served by the daemon's own connection
 * code (src/rpc/rpc.c included: rpc_conn_create, rpc_conn_event, framing, batches,
 * dispatch, parameter decoding, answers), on one reactor driven by hand.
 * Three fake methods with parameter tables exercise decoding, synchronous
 * errors and answers that complete later on the reactor.
 *
 * Besides the sanitizers, the harness checks what the server sends back:
 * every answer is one line of valid JSON, a JSON-RPC 2.0 response object
 * (or a batch array of them) with exactly one of result/error and an
 * integer code plus a string message in errors; and once the client hung
 * up, the connection is gone (no leak of connections or requests).
 *
 * The input is fed in chunks whose size is taken from its last byte, so
 * texts split across reads are covered too. Build: make SAN=fuzz; run:
 * tests/run_fuzz.sh build-fuzz 300 jsonrpc.
 */
#include "rpc/rpc.c"

#include <fcntl.h>
#include <stdlib.h>

/* ---- fake methods ------------------------------------------------------------- */

struct fz_all {
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
};

static const struct nvl_rpc_param fz_all_params[] = {
	NVL_RPC_PARAM(struct fz_all, s, NVL_RPC_T_STR, true, "string"),
	NVL_RPC_PARAM(struct fz_all, b, NVL_RPC_T_BOOL, false, "bool"),
	NVL_RPC_PARAM(struct fz_all, u8, NVL_RPC_T_U8, false, "u8"),
	NVL_RPC_PARAM(struct fz_all, u16, NVL_RPC_T_U16, false, "u16"),
	NVL_RPC_PARAM(struct fz_all, u32, NVL_RPC_T_U32, false, "u32"),
	NVL_RPC_PARAM(struct fz_all, u64, NVL_RPC_T_U64, false, "u64"),
	NVL_RPC_PARAM(struct fz_all, i32, NVL_RPC_T_I32, false, "i32"),
	NVL_RPC_PARAM(struct fz_all, i64, NVL_RPC_T_I64, false, "i64"),
	NVL_RPC_PARAM(struct fz_all, obj, NVL_RPC_T_OBJ, false, "object"),
	NVL_RPC_PARAM(struct fz_all, arr, NVL_RPC_T_ARRAY, false, "array"),
	NVL_RPC_PARAM(struct fz_all, any, NVL_RPC_T_ANY, false, "any"),
};

/* echoes what it decoded, so borrowed pointers into the request are used */
static void
fz_rpc_all(struct nvl_rpc_request *req, struct fz_all *a)
{
	json_t *r;

	if (a->u64 == 1) {
		nvl_rpc_error(req, -EINVAL, "u64 was one; s was '%s'", a->s);
		return;
	}
	r = json_pack("{s:s, s:b, s:I, s:O?, s:O?, s:O?}", "s", a->s, "b", a->b, "sum",
		      (json_int_t)(a->u8 + a->u16 + a->u32 + a->i32), "obj", a->obj, "arr", a->arr,
		      "any", a->any);
	nvl_rpc_result(req, r ? r : json_null());
}
NVL_RPC_REGISTER("fz_all", fz_rpc_all, struct fz_all, fz_all_params, NVL_RPC_RUNTIME, "fuzz")

struct fz_async_args {
	uint32_t value;
	const char *err;
};
static const struct nvl_rpc_param fz_async_params[] = {
	NVL_RPC_PARAM(struct fz_async_args, value, NVL_RPC_T_U32, false, "result"),
	NVL_RPC_PARAM(struct fz_async_args, err, NVL_RPC_T_STR, false, "fail with this message"),
};

struct fz_pending {
	struct nvl_rpc_request *req;
	uint32_t value;
	char *err;
};

static void
fz_async_finish(void *arg)
{
	struct fz_pending *p = arg;

	if (p->err)
		nvl_rpc_error(p->req, -EIO, "%s", p->err);
	else
		nvl_rpc_result(p->req, json_integer(p->value));
	free(p->err);
	free(p);
}

static void
fz_rpc_async(struct nvl_rpc_request *req, struct fz_async_args *a)
{
	struct fz_pending *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		nvl_rpc_error(req, NVL_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	p->req = req;
	p->value = a->value;
	p->err = a->err ? strdup(a->err) : NULL; /* params die with the request */
	if (nvl_reactor_msg(nvl_reactor_self(), fz_async_finish, p) < 0) {
		free(p->err);
		free(p);
		nvl_rpc_error(req, NVL_RPC_INTERNAL_ERROR, "cannot queue");
	}
}
NVL_RPC_REGISTER("fz_async", fz_rpc_async, struct fz_async_args, fz_async_params,
		 NVL_RPC_RUNTIME, "fuzz")

static void
fz_rpc_none(struct nvl_rpc_request *req, void *unused)
{
	(void)unused;
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER_NOARGS("fz_none", fz_rpc_none, NVL_RPC_RUNTIME, "fuzz")
NVL_RPC_REGISTER_ALIAS("fz_none_alias", fz_rpc_none)

/* ---- checking the answers ----------------------------------------------------- */

static char *g_out;
static size_t g_out_len, g_out_cap;

static void
check_response(json_t *r)
{
	json_t *res, *err, *code, *msg, *id;

	if (!json_is_object(r))
		abort();
	if (!json_is_string(json_object_get(r, "jsonrpc")) ||
	    strcmp(json_string_value(json_object_get(r, "jsonrpc")), "2.0") != 0)
		abort();
	res = json_object_get(r, "result");
	err = json_object_get(r, "error");
	id = json_object_get(r, "id");
	if ((res == NULL) == (err == NULL) || id == NULL)
		abort(); /* exactly one of result/error, and always an id (maybe null) */
	if (json_object_size(r) != 3)
		abort();
	if (err) {
		code = json_object_get(err, "code");
		msg = json_object_get(err, "message");
		if (!json_is_integer(code) || !json_is_string(msg) || json_object_size(err) != 2)
			abort();
	}
}

/* Read what the server sent; check every complete line. */
static void
drain(int fd)
{
	size_t pos = 0;

	for (;;) {
		ssize_t n;

		if (g_out_cap - g_out_len < 65536) {
			g_out_cap = g_out_cap ? g_out_cap * 2 : 1 << 20;
			g_out = realloc(g_out, g_out_cap);
			if (g_out == NULL)
				abort();
		}
		n = recv(fd, g_out + g_out_len, g_out_cap - g_out_len, 0);
		if (n <= 0)
			break;
		g_out_len += (size_t)n;
	}
	while (pos < g_out_len) {
		char *nl = memchr(g_out + pos, '\n', g_out_len - pos);
		json_error_t e;
		json_t *doc;

		if (nl == NULL)
			break;
		doc = json_loadb(g_out + pos, (size_t)(nl - (g_out + pos)), 0, &e);
		if (doc == NULL)
			abort(); /* the server sent a line that is not JSON */
		if (json_is_array(doc)) {
			size_t i;
			json_t *r;

			if (json_array_size(doc) == 0)
				abort(); /* an empty batch answer must not be sent */
			json_array_foreach(doc, i, r)
				check_response(r);
		} else {
			check_response(doc);
		}
		json_decref(doc);
		pos = (size_t)(nl - g_out) + 1;
	}
	memmove(g_out, g_out + pos, g_out_len - pos);
	g_out_len -= pos;
}

/* Run the reactor until it has nothing left to do (bounded). */
static void
settle(int peer)
{
	int idle = 0;

	for (int i = 0; i < 100000 && idle < 3; i++) {
		int w = nvl_reactor_poll_once();

		if (peer >= 0)
			drain(peer);
		idle = w > 0 ? 0 : idle + 1;
	}
}

/* ---- libFuzzer entry points ----------------------------------------------------- */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct nvl_reactor_opts o;
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	(void)argc;
	(void)argv;
	if (null >= 0)
		nvl_log_set_fd(null, false); /* refusals log warnings: keep the output readable */
	nvl_reactor_opts_default(&o);
	o.spin_us = 0;
	if (nvl_reactors_init(&o) < 0)
		abort();
	g_srv.max_request = 2048; /* small, so the size limit is reached too */
	g_srv.max_clients = 4;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t chunk, off = 0;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (rpc_conn_create(sv[0]) == NULL)
		abort();
	g_out_len = 0;
	/* last byte: odd = feed in chunks of 1..64 bytes, even = all at once */
	chunk = size && (data[size - 1] & 1) ? 1 + (data[size - 1] >> 1) % 64 : size ? size : 1;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		ssize_t w = send(sv[1], data + off, n, MSG_NOSIGNAL);

		if (w > 0)
			off += (size_t)w;
		else if (w < 0 && errno != EAGAIN)
			break; /* the server refused and closed */
		settle(sv[1]);
	}
	/* half-close: what is complete gets answered, then the server closes */
	shutdown(sv[1], SHUT_WR);
	settle(sv[1]);
	close(sv[1]);
	settle(-1);
	/* a connection whose client is gone must be gone too */
	if (g_srv.conns != NULL || g_srv.nclients != 0)
		abort();
	return 0;
}
