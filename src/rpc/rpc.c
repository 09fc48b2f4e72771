/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * JSON-RPC 2.0 server: framing, validation, dispatch, batches, replies.
 * Runs on reactor 0 only; no locking. Connections are reference counted:
 * one reference for the socket, one per request not yet answered, so a
 * client that hangs up mid-request never leaves a dangling pointer.
 *
 * A client holds one of max_clients slots, so connections that do nothing are
 * not kept forever: a sweep timer closes one whose incomplete request (or
 * unread answer) saw no progress for request_timeout, and one idle with
 * nothing outstanding for idle_timeout. A request the daemon is still working
 * on never times out; any byte received or sent restarts the clock.
 *
 * About 1270 lines, kept whole for now: the connection state machine and the
 * dispatch share the connection's state, and rpc_ut.c and fuzz_jsonrpc
 * include this file. The next split: the method table, the parameter schema
 * and nvl_rpc_decode (pure functions) into rpc_schema.c.
 */
#include "rpc/rpc.h"
#include "reactor/reactor.h"
#include "util/log.h"
#include "util/sock.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(rpc)

#define RPC_DEFAULT_MAX_REQUEST (1u << 20)
#define RPC_DEFAULT_MAX_CLIENTS 128
#define RPC_MAX_OUTBUF (64u << 20)
#define RPC_MAX_BATCH 1024
#define RPC_DEFAULT_REQUEST_TIMEOUT_US (30ull * 1000000)
#define RPC_DEFAULT_IDLE_TIMEOUT_US (600ull * 1000000)

static struct nvl_rpc_method *g_methods;

void
nvl_rpc_register(struct nvl_rpc_method *m)
{
	struct nvl_rpc_method **pp = &g_methods;

	/* keep sorted by name so rpc_get_methods is stable */
	while (*pp && strcmp((*pp)->name, m->name) < 0)
		pp = &(*pp)->next;
	if (*pp && strcmp((*pp)->name, m->name) == 0) {
		NVL_ERRLOG("RPC method %s registered twice", m->name);
		abort();
	}
	m->next = *pp;
	*pp = m;
}

const struct nvl_rpc_method *
nvl_rpc_methods(void)
{
	return g_methods;
}

/* NVL_RPC_STARTUP before framework_start_init (nvlendd --wait-for-rpc), else
 * NVL_RPC_RUNTIME. Reactor 0. */
static unsigned g_state_mask = NVL_RPC_RUNTIME;

void
nvl_rpc_set_state(unsigned state)
{
	g_state_mask = state;
}

unsigned
nvl_rpc_get_state(void)
{
	return g_state_mask;
}

bool
nvl_rpc_method_allowed(const struct nvl_rpc_method *m)
{
	return (m->flags & g_state_mask) != 0;
}

const struct nvl_rpc_method *
nvl_rpc_find(const char *name)
{
	for (struct nvl_rpc_method *m = g_methods; m; m = m->next)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

/* ---- parameter decoding ------------------------------------------------ */

static const char *
ptype_name(enum nvl_rpc_ptype t)
{
	switch (t) {
	case NVL_RPC_T_STR: return "string";
	case NVL_RPC_T_BOOL: return "boolean";
	case NVL_RPC_T_U8: case NVL_RPC_T_U16: case NVL_RPC_T_U32: case NVL_RPC_T_U64:
		return "unsigned integer";
	case NVL_RPC_T_I32: case NVL_RPC_T_I64: return "integer";
	case NVL_RPC_T_OBJ: return "object";
	case NVL_RPC_T_ARRAY: return "array";
	case NVL_RPC_T_ANY: return "any";
	}
	return "?";
}

static int
decode_uint(const json_t *v, uint64_t max, uint64_t *out)
{
	json_int_t i;

	if (!json_is_integer(v))
		return -EINVAL;
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i > max)
		return -ERANGE;
	*out = (uint64_t)i;
	return 0;
}

/* Decode one present value v of parameter p into dst; -EINVAL wrong type, -ERANGE. */
static int
decode_value(const struct nvl_rpc_param *p, json_t *v, char *dst)
{
	uint64_t u = 0;
	int rc = 0;

	if (p->has_range && json_is_integer(v) &&
	    (json_integer_value(v) < p->min || json_integer_value(v) > p->max))
		return -ERANGE;
	if (p->offset == NVL_RPC_NO_FIELD) {
		static union {
			const char *s;
			bool b;
			uint64_t u;
			int64_t i;
			json_t *j;
		} sink;

		dst = (char *)&sink; /* checked, stored nowhere */
	}
	switch (p->type) {
	case NVL_RPC_T_STR:
		if (!json_is_string(v))
			rc = -EINVAL;
		else
			*(const char **)dst = json_string_value(v);
		break;
	case NVL_RPC_T_BOOL:
		if (!json_is_boolean(v))
			rc = -EINVAL;
		else
			*(bool *)dst = json_is_true(v);
		break;
	case NVL_RPC_T_U8:
		rc = decode_uint(v, UINT8_MAX, &u);
		if (rc == 0)
			*(uint8_t *)dst = (uint8_t)u;
		break;
	case NVL_RPC_T_U16:
		rc = decode_uint(v, UINT16_MAX, &u);
		if (rc == 0)
			*(uint16_t *)dst = (uint16_t)u;
		break;
	case NVL_RPC_T_U32:
		rc = decode_uint(v, UINT32_MAX, &u);
		if (rc == 0)
			*(uint32_t *)dst = (uint32_t)u;
		break;
	case NVL_RPC_T_U64:
		rc = decode_uint(v, INT64_MAX, &u);
		if (rc == 0)
			*(uint64_t *)dst = u;
		break;
	case NVL_RPC_T_I32:
		if (!json_is_integer(v))
			rc = -EINVAL;
		else if (json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX)
			rc = -ERANGE;
		else
			*(int32_t *)dst = (int32_t)json_integer_value(v);
		break;
	case NVL_RPC_T_I64:
		if (!json_is_integer(v))
			rc = -EINVAL;
		else
			*(int64_t *)dst = json_integer_value(v);
		break;
	case NVL_RPC_T_OBJ:
		if (!json_is_object(v))
			rc = -EINVAL;
		else
			*(json_t **)dst = v;
		break;
	case NVL_RPC_T_ARRAY:
		if (!json_is_array(v))
			rc = -EINVAL;
		else
			*(json_t **)dst = v;
		break;
	case NVL_RPC_T_ANY:
		*(json_t **)dst = v;
		break;
	}
	return rc;
}

/* Parsed defaults, one per parameter that has one, kept for the process' life
 * (a string default is used by pointer after the call). Reactor 0 only. */
struct rpc_default {
	const struct nvl_rpc_param *p;
	json_t *v;
	struct rpc_default *next;
};
static struct rpc_default *g_defaults;

/* The default of p (its JSON text) decoded into dst: a table's own default, so
 * a text that does not decode is our bug. */
static void
decode_default(const struct nvl_rpc_param *p, char *dst)
{
	struct rpc_default *d;
	json_error_t jerr;

	for (d = g_defaults; d; d = d->next)
		if (d->p == p)
			break;
	if (d == NULL) {
		d = calloc(1, sizeof(*d));
		if (d == NULL)
			abort();
		d->p = p;
		d->v = json_loads(p->def, JSON_DECODE_ANY, &jerr);
		if (d->v == NULL) {
			NVL_ERRLOG("RPC parameter %s: default '%s' is not JSON", p->name, p->def);
			abort();
		}
		d->next = g_defaults;
		g_defaults = d;
	}
	if (p->offset != NVL_RPC_NO_FIELD && decode_value(p, d->v, dst) < 0) {
		NVL_ERRLOG("RPC parameter %s: default '%s' does not fit its type or range", p->name,
			   p->def);
		abort();
	}
}

static void
range_msg(const struct nvl_rpc_param *p, char *err, size_t errlen)
{
	if (p->has_range)
		snprintf(err, errlen, "parameter '%s' must be %lld..%lld", p->name,
			 (long long)p->min, (long long)p->max);
	else
		snprintf(err, errlen, "parameter '%s' is out of range", p->name);
}

int
nvl_rpc_decode(const json_t *params, const struct nvl_rpc_param *tab, size_t n, void *out,
	       char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	if (params == NULL || json_is_null(params)) {
		for (size_t i = 0; i < n; i++) {
			if (tab[i].required) {
				snprintf(err, errlen, "missing required parameter '%s'", tab[i].name);
				return -EINVAL;
			}
		}
		for (size_t i = 0; i < n; i++)
			if (tab[i].def)
				decode_default(&tab[i], (char *)out + (tab[i].offset == NVL_RPC_NO_FIELD
									 ? 0
									 : tab[i].offset));
		return 0;
	}
	if (!json_is_object(params)) {
		snprintf(err, errlen, "params must be an object");
		return -EINVAL;
	}
	json_object_foreach((json_t *)params, key, v) {
		size_t i;

		for (i = 0; i < n; i++)
			if (strcmp(tab[i].name, key) == 0)
				break;
		if (i == n) {
			snprintf(err, errlen, "unknown parameter '%s'", key);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct nvl_rpc_param *p = &tab[i];
		char *dst = (char *)out + (p->offset == NVL_RPC_NO_FIELD ? 0 : p->offset);
		int rc;

		v = json_object_get(params, p->name);
		if (v == NULL) {
			if (p->required) {
				snprintf(err, errlen, "missing required parameter '%s'", p->name);
				return -EINVAL;
			}
			if (p->def)
				decode_default(p, dst);
			continue;
		}
		rc = decode_value(p, v, dst);
		if (rc == -ERANGE) {
			range_msg(p, err, errlen);
			return -EINVAL;
		}
		if (rc < 0) {
			snprintf(err, errlen, "parameter '%s' must be a %s", p->name,
				 ptype_name(p->type));
			return -EINVAL;
		}
		if (p->ignored)
			NVL_DEBUGLOG(rpc, "parameter '%s' accepted and ignored (no meaning here)",
				     p->name);
	}
	return 0;
}

/* ---- connections and requests ----------------------------------------- */

struct rpc_conn {
	int fd;
	struct nvl_fdh *fdh;
	unsigned refs;
	bool closed;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off, out_cap;
	bool want_out;
	bool eof;            /* peer shut its write side: close once answered */
	bool discard;        /* refused (oversized): drain input until EOF, then close */
	bool resync;         /* after a parse error: drop input up to the next newline */
	struct nvl_timer *linger;
	uint64_t last_us;    /* last byte received or sent, or last answer queued */
	struct rpc_conn *next;
};

struct rpc_batch {
	struct rpc_conn *conn;
	json_t *responses;   /* array, slots filled in order */
	size_t outstanding;
};

struct nvl_rpc_request {
	struct rpc_conn *conn;    /* NULL for local calls */
	json_t *id;               /* NULL for a notification */
	json_t *req;              /* whole request, keeps params alive */
	struct rpc_batch *batch;
	size_t batch_idx;
	void *args;
	const struct nvl_rpc_method *method;
	nvl_rpc_local_done local_done;
	void *local_arg;
	bool done;
};

static struct {
	int fd;
	struct nvl_acceptor *acceptor;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	size_t max_request;
	unsigned max_clients;
	uint64_t request_timeout_us; /* 0: none */
	uint64_t idle_timeout_us;    /* 0: none */
	struct nvl_timer *sweep;
	unsigned nclients;
	struct rpc_conn *conns;
	bool running;
	bool keep_path;
} g_srv = { .fd = -1 };

static void rpc_conn_flush(struct rpc_conn *c);

static nvl_rpc_call_hook g_call_hook;

void
nvl_rpc_set_call_hook(nvl_rpc_call_hook fn)
{
	g_call_hook = fn;
}

static void
rpc_conn_put(struct rpc_conn *c)
{
	if (--c->refs > 0)
		return;
	free(c->in);
	free(c->out);
	free(c);
}

static void
rpc_conn_close(struct rpc_conn *c)
{
	struct rpc_conn **pp;

	if (c->closed)
		return;
	c->closed = true;
	nvl_timer_destroy(c->linger);
	c->linger = NULL;
	nvl_fd_del(c->fdh);
	c->fdh = NULL;
	close(c->fd);
	c->fd = -1;
	g_srv.nclients--;
	for (pp = &g_srv.conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	rpc_conn_put(c);
}

static void
rpc_conn_send_json(struct rpc_conn *c, json_t *obj)
{
	char *s;
	size_t n;

	if (c->closed)
		return;
	s = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s == NULL) {
		NVL_ERRLOG("cannot encode RPC response");
		return;
	}
	n = strlen(s);
	if (c->out_len - c->out_off + n + 1 > RPC_MAX_OUTBUF) {
		NVL_WARNLOG("RPC client does not read its responses; closing it");
		free(s);
		rpc_conn_close(c);
		return;
	}
	if (c->out_len + n + 1 > c->out_cap) {
		size_t cap;
		char *nb;

		/* compact first */
		if (c->out_off) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		cap = NVL_MAX(c->out_cap * 2, c->out_len + n + 1 + 4096);
		nb = realloc(c->out, cap);
		if (nb == NULL) {
			free(s);
			rpc_conn_close(c);
			return;
		}
		c->out = nb;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, s, n);
	c->out[c->out_len + n] = '\n';
	c->out_len += n + 1;
	c->last_us = nvl_now_us();
	free(s);
	rpc_conn_flush(c);
}

static void
rpc_conn_flush(struct rpc_conn *c)
{
	while (!c->closed && c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if (!c->want_out) {
					c->want_out = true;
					nvl_fd_mod(c->fdh, EPOLLIN | EPOLLOUT);
				}
				return;
			}
			rpc_conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
		c->last_us = nvl_now_us();
	}
	if (c->closed)
		return;
	c->out_off = c->out_len = 0;
	if (c->eof && c->refs == 1) {
		rpc_conn_close(c);
		return;
	}
	if (c->want_out) {
		c->want_out = false;
		nvl_fd_mod(c->fdh, c->eof ? 0 : EPOLLIN);
	}
}

static json_t *make_error_obj(int code, char *msg);

static json_t *
make_error(json_t *id, int code, const char *msg)
{
	char m[512];

	nvl_strlcpy(m, msg, sizeof(m));
	return json_pack("{s:s, s:o, s:O}", "jsonrpc", "2.0", "error", make_error_obj(code, m),
			 "id", id ? id : json_null());
}

static void
batch_slot_done(struct rpc_batch *b, size_t idx, json_t *resp)
{
	if (resp)
		json_array_set_new(b->responses, idx, resp);
	if (--b->outstanding > 0)
		return;
	/* drop the placeholders of notifications */
	for (size_t i = json_array_size(b->responses); i-- > 0;)
		if (json_is_null(json_array_get(b->responses, i)))
			json_array_remove(b->responses, i);
	if (json_array_size(b->responses) > 0)
		rpc_conn_send_json(b->conn, b->responses);
	json_decref(b->responses);
	rpc_conn_put(b->conn);
	free(b);
}

static void
request_finish(struct nvl_rpc_request *r, json_t *result, json_t *error)
{
	json_t *resp = NULL;

	if (r->done) {
		NVL_ERRLOG("RPC method %s answered twice", r->method ? r->method->name : "?");
		abort();
	}
	r->done = true;
	/* after a client's call (not a local one): the app may save its state */
	if (g_call_hook && !r->local_done && r->method)
		g_call_hook(r->method->name, error == NULL);
	if (r->local_done) {
		r->local_done(r->local_arg, result, error);
	} else if (r->id) {
		if (error)
			resp = json_pack("{s:s, s:O, s:O}", "jsonrpc", "2.0", "error", error, "id",
					 r->id);
		else
			resp = json_pack("{s:s, s:O, s:O}", "jsonrpc", "2.0", "result",
					 result ? result : json_null(), "id", r->id);
	}
	if (r->batch) {
		batch_slot_done(r->batch, r->batch_idx, resp);
	} else if (resp) {
		rpc_conn_send_json(r->conn, resp);
		json_decref(resp);
	}
	if (r->conn) {
		struct rpc_conn *c = r->conn;

		if (c->eof && !c->closed && c->refs == 2 && c->out_off == c->out_len)
			rpc_conn_close(c);
		rpc_conn_put(c);
	}
	json_decref(result);
	json_decref(error);
	json_decref(r->id);
	json_decref(r->req);
	free(r->args);
	free(r);
}

void
nvl_rpc_result(struct nvl_rpc_request *req, json_t *result)
{
	request_finish(req, result ? result : json_null(), NULL);
}

void
nvl_rpc_result_bool(struct nvl_rpc_request *req, bool v)
{
	nvl_rpc_result(req, json_boolean(v));
}

/*
 * Cut s so it does not end inside a UTF-8 sequence. Messages quote names from
 * the (valid UTF-8) request and are cut at their buffer size; a cut inside a
 * character makes the string unencodable and the whole answer would be lost.
 */
static void
utf8_trim_tail(char *s)
{
	size_t i = strlen(s), cont = 0;
	unsigned char lead;
	size_t need;

	while (i > 0 && cont < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
		i--;
		cont++;
	}
	if (i == 0)
		return;
	lead = (unsigned char)s[i - 1];
	if (lead < 0xc0)
		return;
	need = lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : 1;
	if (cont < need)
		s[i - 1] = '\0';
}

/* {code, message}; never NULL for a valid message, so an error never turns into a result */
static json_t *
make_error_obj(int code, char *msg)
{
	json_t *e;

	utf8_trim_tail(msg);
	e = json_pack("{s:i, s:s}", "code", code, "message", msg);
	if (e == NULL)
		e = json_pack("{s:i, s:s}", "code", code, "message", "(message not valid UTF-8)");
	return e;
}

void
nvl_rpc_error(struct nvl_rpc_request *req, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	request_finish(req, NULL, make_error_obj(code, msg));
}

void
nvl_rpc_error_errno(struct nvl_rpc_request *req, int rc, const char *what)
{
	int code = rc == -EINVAL || rc == -ERANGE ? NVL_RPC_INVALID_PARAMS : rc;

	nvl_rpc_error(req, code, "%s: %s", what, strerror(-rc));
}

json_t *
nvl_rpc_params(struct nvl_rpc_request *req)
{
	return req->req ? json_object_get(req->req, "params") : NULL;
}

/* Validate one request object and run it. Takes a reference on obj. */
static void
dispatch_one(struct rpc_conn *c, json_t *obj, struct rpc_batch *b, size_t idx,
	     nvl_rpc_local_done ldone, void *larg)
{
	struct nvl_rpc_request *r;
	json_t *id, *jver, *jmethod, *params;
	const struct nvl_rpc_method *m;
	char err[512];

	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		if (b)
			batch_slot_done(b, idx, NULL);
		return;
	}
	r->conn = c;
	if (c)
		c->refs++;
	r->batch = b;
	r->batch_idx = idx;
	r->local_done = ldone;
	r->local_arg = larg;
	r->req = json_incref(obj);

	if (!json_is_object(obj)) {
		r->id = json_null();
		nvl_rpc_error(r, NVL_RPC_INVALID_REQUEST, "Invalid request: not an object");
		return;
	}
	id = json_object_get(obj, "id");
	if (id && !json_is_string(id) && !json_is_integer(id) && !json_is_real(id) &&
	    !json_is_null(id)) {
		r->id = json_null();
		nvl_rpc_error(r, NVL_RPC_INVALID_REQUEST, "Invalid request: bad id");
		return;
	}
	r->id = id ? json_incref(id) : NULL;
	jver = json_object_get(obj, "jsonrpc");
	jmethod = json_object_get(obj, "method");
	params = json_object_get(obj, "params");
	if (jver == NULL || !json_is_string(jver) || strcmp(json_string_value(jver), "2.0") != 0) {
		if (r->id == NULL)
			r->id = json_null();
		nvl_rpc_error(r, NVL_RPC_INVALID_REQUEST,
			      "Invalid request: \"jsonrpc\" must be \"2.0\"");
		return;
	}
	if (jmethod == NULL || !json_is_string(jmethod)) {
		if (r->id == NULL)
			r->id = json_null();
		nvl_rpc_error(r, NVL_RPC_INVALID_REQUEST, "Invalid request: no method name");
		return;
	}
	{
		const char *k;
		json_t *v;

		json_object_foreach(obj, k, v) {
			if (strcmp(k, "jsonrpc") && strcmp(k, "method") && strcmp(k, "params") &&
			    strcmp(k, "id")) {
				if (r->id == NULL)
					r->id = json_null();
				nvl_rpc_error(r, NVL_RPC_INVALID_REQUEST,
					      "Invalid request: unexpected member '%s'", k);
				return;
			}
		}
	}
	if (params && !json_is_object(params) && !json_is_array(params)) {
		if (r->id == NULL)
			r->id = json_null();
		nvl_rpc_error(r, NVL_RPC_INVALID_REQUEST,
			      "Invalid request: params must be an object or array");
		return;
	}
	m = nvl_rpc_find(json_string_value(jmethod));
	if (m == NULL) {
		nvl_rpc_error(r, NVL_RPC_METHOD_NOT_FOUND, "Method not found: %s",
			      json_string_value(jmethod));
		return;
	}
	r->method = m;
	/* SPDK's RPC states: what a client may call before framework_start_init and
	 * after it (a local call, the configuration's replay, may call anything) */
	if (c && !nvl_rpc_method_allowed(m)) {
		if (g_state_mask == NVL_RPC_STARTUP)
			nvl_rpc_error(r, NVL_RPC_INVALID_STATE,
				      "Method may only be called after framework is initialized "
				      "using framework_start_init RPC.");
		else
			nvl_rpc_error(r, NVL_RPC_INVALID_STATE,
				      "Method may only be called before framework is initialized. "
				      "Use --wait-for-rpc command line parameter and then issue "
				      "this RPC before the framework_start_init RPC.");
		return;
	}
	if (params && json_is_array(params)) {
		if (json_array_size(params) == 0) {
			params = NULL;
		} else {
			nvl_rpc_error(r, NVL_RPC_INVALID_PARAMS,
				      "%s takes named parameters (an object), not an array",
				      m->name);
			return;
		}
	}
	if (m->args_size) {
		r->args = calloc(1, m->args_size);
		if (r->args == NULL) {
			nvl_rpc_error(r, NVL_RPC_INTERNAL_ERROR, "out of memory");
			return;
		}
	}
	if (nvl_rpc_decode(params, m->params, m->nparams, r->args, err, sizeof(err)) < 0) {
		nvl_rpc_error(r, NVL_RPC_INVALID_PARAMS, "Invalid parameters for %s: %s", m->name,
			      err);
		return;
	}
	NVL_DEBUGLOG(rpc, "call %s", m->name);
	m->handler(r, r->args);
}

static void
dispatch_text(struct rpc_conn *c, json_t *doc)
{
	if (json_is_array(doc)) {
		size_t n = json_array_size(doc);
		struct rpc_batch *b;

		if (n == 0) {
			json_t *e = make_error(NULL, NVL_RPC_INVALID_REQUEST,
					       "Invalid request: empty batch");
			rpc_conn_send_json(c, e);
			json_decref(e);
			return;
		}
		if (n > RPC_MAX_BATCH) {
			json_t *e = make_error(NULL, NVL_RPC_INVALID_REQUEST,
					       "Invalid request: batch larger than 1024 calls");
			rpc_conn_send_json(c, e);
			json_decref(e);
			return;
		}
		b = calloc(1, sizeof(*b));
		if (b == NULL)
			return;
		b->conn = c;
		c->refs++;
		b->responses = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(b->responses, json_null());
		/* +1 so the batch cannot finish while we are still dispatching it */
		b->outstanding = n + 1;
		for (size_t i = 0; i < n; i++)
			dispatch_one(c, json_array_get(doc, i), b, i, NULL, NULL);
		batch_slot_done(b, 0, NULL);
		return;
	}
	dispatch_one(c, doc, NULL, 0, NULL, NULL);
}

static void
rpc_conn_send_parse_error(struct rpc_conn *c, const char *what)
{
	json_t *e = make_error(NULL, NVL_RPC_PARSE_ERROR, what);

	rpc_conn_send_json(c, e);
	json_decref(e);
}

static void
rpc_conn_linger_expired(void *arg)
{
	struct rpc_conn *c = arg;

	c->linger = NULL;
	rpc_conn_close(c);
}

/*
 * Refuse a connection without losing the answer: closing a socket with
 * unread input makes the kernel send RST, which can destroy the reply in
 * flight. So: answer, shut our write side, drain and drop the peer's input
 * until it closes (or 5 s pass), then close.
 */
static void
rpc_conn_refuse(struct rpc_conn *c, const char *why)
{
	rpc_conn_send_parse_error(c, why);
	if (c->closed)
		return;
	c->discard = true;
	c->in_len = 0;
	shutdown(c->fd, SHUT_WR);
	c->linger = nvl_timer_create(rpc_conn_linger_expired, c, 5000000, 0);
}

/*
 * Where the last lexical token of p[0..n) starts if it may be unfinished: an
 * unterminated string (also one ending in a backslash, a partial \uXXXX or a
 * partial UTF-8 character) or a literal/number run touching the end; n if the
 * text ends on a complete token. A read can end anywhere, and jansson reports
 * such cuts as invalid escapes, tokens or UTF-8 rather than a premature end;
 * an error past this point may be a cut, one before it is real.
 */
static size_t
text_open_token(const char *p, size_t n)
{
	size_t tok = n;
	bool in_str = false, esc = false, in_run = false;

	for (size_t i = 0; i < n; i++) {
		char ch = p[i];

		if (in_str) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				in_str = false;
			continue;
		}
		if (ch == '"') {
			in_str = true;
			in_run = false;
			tok = i;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			   (ch >= '0' && ch <= '9') || ch == '-' || ch == '+' || ch == '.') {
			if (!in_run)
				tok = i;
			in_run = true;
		} else {
			in_run = false;
		}
	}
	return in_str || in_run ? tok : n;
}

/* Parse and dispatch every complete JSON text in the input buffer. */
static void
rpc_conn_process(struct rpc_conn *c)
{
	size_t pos = 0;

	c->refs++; /* a handler may close the connection */
	while (!c->closed && pos < c->in_len) {
		json_error_t jerr;
		json_t *doc;
		char msg[256];

		if (c->resync) {
			char *nl = memchr(c->in + pos, '\n', c->in_len - pos);

			pos = nl ? (size_t)(nl - c->in) + 1 : c->in_len;
			c->resync = nl == NULL;
			continue;
		}
		while (pos < c->in_len && (c->in[pos] == ' ' || c->in[pos] == '\n' ||
					   c->in[pos] == '\r' || c->in[pos] == '\t'))
			pos++;
		if (pos == c->in_len)
			break;
		doc = json_loadb(c->in + pos, c->in_len - pos,
				 JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
				 &jerr);
		if (doc == NULL) {
			if (json_error_code(&jerr) == json_error_premature_end_of_input)
				break; /* wait for more bytes */
			if (!c->eof && (size_t)jerr.position >
					       text_open_token(c->in + pos, c->in_len - pos))
				break; /* maybe only cut short by the read: wait for more */
			snprintf(msg, sizeof(msg), "Parse error: %s (at byte %d)", jerr.text,
				 jerr.position);
			rpc_conn_send_parse_error(c, msg);
			/* resynchronise after the next newline, which may come in a later read */
			c->resync = true;
			continue;
		}
		pos += (size_t)jerr.position;
		if (!json_is_object(doc) && !json_is_array(doc)) {
			json_t *e = make_error(NULL, NVL_RPC_INVALID_REQUEST,
					       "Invalid request: not an object or array");

			rpc_conn_send_json(c, e);
			json_decref(e);
		} else {
			dispatch_text(c, doc);
		}
		json_decref(doc);
	}
	if (!c->closed && !c->discard) {
		if (pos)
			memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
		if (c->in_len > g_srv.max_request) {
			NVL_WARNLOG("RPC request over %zu bytes; closing connection",
				    g_srv.max_request);
			rpc_conn_refuse(c, "Parse error: request larger than the limit");
		}
	}
	rpc_conn_put(c);
}

static void
rpc_conn_event(void *arg, uint32_t events)
{
	struct rpc_conn *c = arg;

	if (events & EPOLLOUT)
		rpc_conn_flush(c);
	if (c->closed)
		return;
	if (c->discard) {
		char junk[65536];
		ssize_t n;

		do {
			n = recv(c->fd, junk, sizeof(junk), 0);
		} while (n > 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			rpc_conn_close(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			ssize_t n;

			if (c->in_cap - c->in_len < 4096) {
				size_t cap = c->in_cap ? c->in_cap * 2 : 8192;
				char *nb;

				if (cap > g_srv.max_request + 65536)
					cap = g_srv.max_request + 65536;
				if (cap <= c->in_len) {
					rpc_conn_refuse(c, "Parse error: request larger than the limit");
					return;
				}
				nb = realloc(c->in, cap);
				if (nb == NULL) {
					rpc_conn_close(c);
					return;
				}
				c->in = nb;
				c->in_cap = cap;
			}
			n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN)
					break;
				rpc_conn_close(c);
				return;
			}
			if (n == 0) {
				/* answer what is complete, then close once all is sent */
				c->eof = true;
				rpc_conn_process(c);
				if (c->closed)
					return;
				if (events & EPOLLHUP) {
					/*
					 * Gone both ways, not just half-closed: nothing can be
					 * sent any more, and epoll would report the hang-up on
					 * every iteration (a busy loop) until the requests still
					 * running finish. They finish into the closed connection.
					 */
					rpc_conn_close(c);
					return;
				}
				if (c->refs <= 1 && c->out_off == c->out_len)
					rpc_conn_close(c);
				else
					nvl_fd_mod(c->fdh, c->want_out ? EPOLLOUT : 0);
				return;
			}
			c->in_len += (size_t)n;
			c->last_us = nvl_now_us();
			if (c->in_len < c->in_cap)
				break; /* the socket is drained */
			/*
			 * Buffer full: serve the complete requests in it before reading on,
			 * so many small pipelined requests are not mistaken for one too big.
			 */
			rpc_conn_process(c);
			if (c->closed || c->discard)
				return;
		}
		rpc_conn_process(c);
	}
}

/* Serve a connected, non-blocking socket on the calling reactor. Closes fd on failure. */
static struct rpc_conn *
rpc_conn_create(int fd)
{
	struct rpc_conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->refs = 1;
	c->last_us = nvl_now_us();
	c->fdh = nvl_fd_add(fd, EPOLLIN, rpc_conn_event, c);
	if (c->fdh == NULL) {
		close(fd);
		free(c);
		return NULL;
	}
	c->next = g_srv.conns;
	g_srv.conns = c;
	g_srv.nclients++;
	return c;
}

/*
 * Close connections that hold a slot without doing anything (see the top of
 * the file). One with requests in progress (refs > 1) is left alone however
 * long they take; being refused (discard) it has its own linger timer.
 */
static void
rpc_srv_sweep(void *arg)
{
	uint64_t now = nvl_now_us();
	struct rpc_conn *c, *next;

	(void)arg;
	for (c = g_srv.conns; c; c = next) {
		bool stuck_out = c->out_off < c->out_len;
		bool partial = c->in_len > 0 || stuck_out;
		uint64_t limit = partial ? g_srv.request_timeout_us : g_srv.idle_timeout_us;
		uint64_t quiet = now - c->last_us;

		next = c->next;
		if (c->closed || c->discard || c->refs > 1 || limit == 0 || quiet < limit)
			continue;
		if (!partial) {
			NVL_NOTICELOG("RPC: closing a client idle for %" PRIu64 " s",
				      quiet / 1000000);
			rpc_conn_close(c);
		} else if (stuck_out) {
			NVL_WARNLOG("RPC: closing a client that read no answer for %" PRIu64 " s",
				    quiet / 1000000);
			rpc_conn_close(c);
		} else {
			NVL_WARNLOG("RPC: closing a client whose request (%zu bytes so far) stayed "
				    "incomplete for %" PRIu64 " s",
				    c->in_len, quiet / 1000000);
			rpc_conn_refuse(c, "Parse error: incomplete request timed out");
		}
	}
}

static void
rpc_srv_accept(void *arg, int fd)
{
	(void)arg;
	if (g_srv.nclients >= g_srv.max_clients) {
		static const char msg[] =
			"{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32603,\"message\":"
			"\"too many RPC clients\"},\"id\":null}\n";

		(void)!send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		NVL_WARNLOG("RPC: refusing client beyond the limit of %u", g_srv.max_clients);
		return;
	}
	rpc_conn_create(fd);
}

/* ms from the options (0: default, NVL_RPC_TIMEOUT_NONE: none) in us (0: none) */
static uint64_t
rpc_timeout_us(uint64_t ms, uint64_t def_us)
{
	if (ms == 0)
		return def_us;
	if (ms == NVL_RPC_TIMEOUT_NONE)
		return 0;
	return ms * 1000;
}

/* Sweep often enough to close a connection within a quarter of its timeout. */
static uint64_t
rpc_sweep_period_us(void)
{
	uint64_t t = g_srv.request_timeout_us;

	if (t == 0 || (g_srv.idle_timeout_us && g_srv.idle_timeout_us < t))
		t = g_srv.idle_timeout_us;
	return NVL_MIN(NVL_MAX(t / 4, (uint64_t)50000), (uint64_t)1000000);
}

int
nvl_rpc_server_start(const struct nvl_rpc_server_opts *o)
{
	int fd, rc;

	if (strlen(o->path) >= sizeof(g_srv.path))
		return -ENAMETOOLONG;
	nvl_strlcpy(g_srv.path, o->path, sizeof(g_srv.path));
	g_srv.keep_path = o->keep_path;
	g_srv.max_request = o->max_request ? o->max_request : RPC_DEFAULT_MAX_REQUEST;
	g_srv.max_clients = o->max_clients ? o->max_clients : RPC_DEFAULT_MAX_CLIENTS;
	g_srv.request_timeout_us = rpc_timeout_us(o->request_timeout_ms,
						  RPC_DEFAULT_REQUEST_TIMEOUT_US);
	g_srv.idle_timeout_us = rpc_timeout_us(o->idle_timeout_ms, RPC_DEFAULT_IDLE_TIMEOUT_US);

	if (o->inherited_fd > 0) {
		/* a listening socket a previous worker left in the fd store: clients
		 * that connected meanwhile are waiting in its backlog */
		int on = 0;
		socklen_t len = sizeof(on);

		if (getsockopt(o->inherited_fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0 || !on)
			return -ENOTSOCK;
		fd = o->inherited_fd;
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		goto listening;
	}
	rc = nvl_sock_listen_unix(o->path, SOCK_STREAM, 0660, 128, &fd);
	if (rc < 0) {
		if (rc == -EEXIST)
			NVL_ERRLOG("%s exists and is not a socket; not touching it", o->path);
		else if (rc == -EADDRINUSE)
			NVL_ERRLOG("another daemon is serving %s", o->path);
		else
			NVL_ERRLOG("cannot listen on %s: %s", o->path, strerror(-rc));
		return rc;
	}
listening:
	g_srv.fd = fd;
	g_srv.acceptor = nvl_acceptor_create(fd, "RPC", NVL_ACCEPTOR_CONTROL, rpc_srv_accept, NULL);
	if (g_srv.acceptor == NULL) {
		rc = -errno;
		goto err_close;
	}
	if (g_srv.request_timeout_us || g_srv.idle_timeout_us) {
		uint64_t period = rpc_sweep_period_us();

		g_srv.sweep = nvl_timer_create(rpc_srv_sweep, NULL, period, period);
		if (g_srv.sweep == NULL) {
			rc = -ENOMEM;
			goto err_acceptor;
		}
	}
	g_srv.running = true;
	NVL_NOTICELOG("RPC server listening on %s", o->path);
	return 0;
err_acceptor:
	nvl_acceptor_destroy(g_srv.acceptor);
	g_srv.acceptor = NULL;
err_close:
	close(fd);
	unlink(o->path);
	g_srv.fd = -1;
	return rc;
}

int
nvl_rpc_server_fd(void)
{
	return g_srv.fd;
}

void
nvl_rpc_server_stop(void)
{
	if (!g_srv.running)
		return;
	g_srv.running = false;
	nvl_timer_destroy(g_srv.sweep);
	g_srv.sweep = NULL;
	nvl_acceptor_destroy(g_srv.acceptor);
	g_srv.acceptor = NULL;
	close(g_srv.fd);
	g_srv.fd = -1;
	if (!g_srv.keep_path)
		unlink(g_srv.path);
	while (g_srv.conns)
		rpc_conn_close(g_srv.conns);
}

int
nvl_rpc_call_local(const char *method, json_t *params, nvl_rpc_local_done done, void *arg)
{
	json_t *req;

	if (nvl_rpc_find(method) == NULL)
		return -ENOENT;
	req = json_pack("{s:s, s:s, s:i}", "jsonrpc", "2.0", "method", method, "id", 0);
	if (req == NULL)
		return -ENOMEM;
	if (params)
		json_object_set(req, "params", params);
	dispatch_one(NULL, req, NULL, 0, done, arg);
	json_decref(req);
	return 0;
}
