/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * JSON-RPC 2.0 server on a Unix socket (DESIGN.md section 8).
 *
 * Framing: a stream of JSON texts (objects or batch arrays), each optionally
 * followed by whitespace/newlines; responses are written one per line. The
 * server runs on reactor 0; every method handler runs there too.
 *
 * Methods are registered with NVL_RPC_REGISTER and carry a parameter table
 * (struct nvl_rpc_param). That one table is the schema: the dispatcher
 * decodes and validates params with it (unknown keys, wrong types and
 * missing required keys get -32602 with a readable message),
 * rpc_get_methods {"detailed": true} prints it, and docs/rpc.md is generated
 * from that output and checked in CI.
 *
 * A handler must eventually call nvl_rpc_result() or nvl_rpc_error() exactly
 * once (possibly later, from reactor 0, after asynchronous work).
 */
#ifndef NVL_RPC_H
#define NVL_RPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* JSON-RPC 2.0 error codes (section 5.1) and ours, as SPDK uses them. */
#define NVL_RPC_PARSE_ERROR -32700
#define NVL_RPC_INVALID_REQUEST -32600
#define NVL_RPC_METHOD_NOT_FOUND -32601
#define NVL_RPC_INVALID_PARAMS -32602
#define NVL_RPC_INTERNAL_ERROR -32603
#define NVL_RPC_INVALID_STATE -1

enum nvl_rpc_ptype {
	NVL_RPC_T_STR,     /**< const char *  (borrowed, valid during the call) */
	NVL_RPC_T_BOOL,    /**< bool */
	NVL_RPC_T_U8,      /**< uint8_t */
	NVL_RPC_T_U16,     /**< uint16_t */
	NVL_RPC_T_U32,     /**< uint32_t */
	NVL_RPC_T_U64,     /**< uint64_t */
	NVL_RPC_T_I32,     /**< int32_t */
	NVL_RPC_T_I64,     /**< int64_t */
	NVL_RPC_T_OBJ,     /**< json_t * (borrowed), must be an object */
	NVL_RPC_T_ARRAY,   /**< json_t * (borrowed), must be an array */
	NVL_RPC_T_ANY,     /**< json_t * (borrowed) */
};

struct nvl_rpc_param {
	const char *name;
	enum nvl_rpc_ptype type;
	size_t offset;
	bool required;
	const char *help;
	/* Optional schema beyond the type (grown at the end; all zero: none).
	 * The decoder enforces them, rpc_get_methods {"detailed": true} prints
	 * them and docs/rpc.md is generated from that: one table, no drift. */
	/** default applied when the parameter is absent, as JSON text ("128",
	 *  "true", "\"IPv4\""): decoded into the field as if it had been given */
	const char *def;
	/** integer limits, inclusive, checked when has_range (U* and I* types) */
	bool has_range;
	int64_t min, max;
	/** accepted for SPDK compatibility and ignored: no meaning here (the
	 *  dispatcher logs it at debug level when a call carries it) */
	bool ignored;
	/** NVL_RPC_T_OBJ: the fields of the object (decoded by the handler with
	 *  nvl_rpc_decode(); listed by rpc_get_methods as "fields") */
	const struct nvl_rpc_param *fields;
	size_t nfields;
	/** optional: more schema computed at run time (merged into the parameter's
	 *  rpc_get_methods entry), e.g. per-transport defaults; returns a new object */
	json_t *(*describe)(const struct nvl_rpc_param *p);
};

/* Extras for the tables below, after the help text:
 *   NVL_RPC_PARAM(st, depth, NVL_RPC_T_U32, false, "entries", NVL_RPC_DEFAULT(128),
 *                 NVL_RPC_RANGE(2, 4096))                                              */
#define NVL_RPC_DEFAULT(json_text) .def = (json_text)
/** a default from a numeric macro (its expansion, as text) */
#define NVL_RPC_DEFAULT_NUM(macro) .def = NVL_RPC_XSTR(macro)
#define NVL_RPC_RANGE(lo, hi) .has_range = true, .min = (lo), .max = (hi)
#define NVL_RPC_IGNORED .ignored = true
#define NVL_RPC_FIELDS(tab) .fields = (tab), .nfields = sizeof(tab) / sizeof((tab)[0])
#define NVL_RPC_STR_(x) #x
#define NVL_RPC_XSTR(x) NVL_RPC_STR_(x)

#define NVL_RPC_PARAM(st, field, ty, req, hlp, ...)                                                \
	{ .name = #field, .type = (ty), .offset = offsetof(st, field), .required = (req),          \
	  .help = (hlp), ##__VA_ARGS__ }
/* Same, with a JSON name that differs from the C field name. */
#define NVL_RPC_PARAM_AS(jname, st, field, ty, req, hlp, ...)                                      \
	{ .name = (jname), .type = (ty), .offset = offsetof(st, field), .required = (req),         \
	  .help = (hlp), ##__VA_ARGS__ }
/* A parameter accepted for SPDK compatibility and ignored: nothing to decode into. */
#define NVL_RPC_PARAM_IGNORED(jname, ty, hlp, ...)                                                 \
	{ .name = (jname), .type = (ty), .offset = NVL_RPC_NO_FIELD, .required = false,           \
	  .help = (hlp), .ignored = true, ##__VA_ARGS__ }
/** offset of a parameter that is checked but stored nowhere */
#define NVL_RPC_NO_FIELD SIZE_MAX

struct nvl_rpc_request;

typedef void (*nvl_rpc_handler)(struct nvl_rpc_request *req, void *args);

/* SPDK's RPC states. A daemon started with --wait-for-rpc is in STARTUP until
 * framework_start_init, and clients may call only methods with
 * NVL_RPC_STARTUP then; otherwise (and afterwards) it is in RUNTIME. The
 * configuration's replay (-c) may call any method. */
enum nvl_rpc_flags {
	NVL_RPC_RUNTIME = 1u << 0,  /**< callable once the framework is initialised */
	NVL_RPC_STARTUP = 1u << 1,  /**< callable before framework_start_init */
};

struct nvl_rpc_method {
	const char *name;
	nvl_rpc_handler handler;
	const struct nvl_rpc_param *params;
	size_t nparams;
	size_t args_size;      /**< size of the struct params decode into */
	unsigned flags;
	const char *help;
	const char *alias_of;  /**< set for aliases (e.g. SPDK's older names) */
	struct nvl_rpc_method *next;
};

void nvl_rpc_register(struct nvl_rpc_method *m);

/* Register a method whose params decode into `struct argtype` using table `ptab`. */
#define NVL_RPC_REGISTER(mname, fn, argtype, ptab, fl, hlp)                                        \
	static struct nvl_rpc_method nvl_rpc_m_##fn = {                                             \
		.name = (mname), .handler = (nvl_rpc_handler)(fn), .params = (ptab),                \
		.nparams = sizeof(ptab) / sizeof((ptab)[0]), .args_size = sizeof(argtype),         \
		.flags = (fl), .help = (hlp) };                                                    \
	static void __attribute__((constructor)) nvl_rpc_reg_##fn(void)                             \
	{                                                                                          \
		nvl_rpc_register(&nvl_rpc_m_##fn);                                                 \
	}

/* Register a method without params. */
#define NVL_RPC_REGISTER_NOARGS(mname, fn, fl, hlp)                                                \
	static struct nvl_rpc_method nvl_rpc_m_##fn = {                                             \
		.name = (mname), .handler = (nvl_rpc_handler)(fn), .params = NULL, .nparams = 0,    \
		.args_size = 0, .flags = (fl), .help = (hlp) };                                    \
	static void __attribute__((constructor)) nvl_rpc_reg_##fn(void)                             \
	{                                                                                          \
		nvl_rpc_register(&nvl_rpc_m_##fn);                                                 \
	}

/* Register alias `aname` for an already registered `fn` (same table). */
#define NVL_RPC_REGISTER_ALIAS(aname, fn)                                                          \
	static struct nvl_rpc_method nvl_rpc_alias_##fn;                                            \
	static void __attribute__((constructor(200))) nvl_rpc_regalias_##fn(void)                   \
	{                                                                                          \
		nvl_rpc_alias_##fn = nvl_rpc_m_##fn;                                               \
		nvl_rpc_alias_##fn.name = (aname);                                                 \
		nvl_rpc_alias_##fn.alias_of = nvl_rpc_m_##fn.name;                                 \
		nvl_rpc_alias_##fn.next = NULL;                                                    \
		nvl_rpc_register(&nvl_rpc_alias_##fn);                                             \
	}

/** The state clients are in: NVL_RPC_STARTUP or NVL_RPC_RUNTIME (reactor 0). */
void nvl_rpc_set_state(unsigned state);
unsigned nvl_rpc_get_state(void);
/** Whether a client may call m in the current state. */
bool nvl_rpc_method_allowed(const struct nvl_rpc_method *m);

/** First registered method (for rpc_get_methods). */
const struct nvl_rpc_method *nvl_rpc_methods(void);
const struct nvl_rpc_method *nvl_rpc_find(const char *name);

/**
 * Decode a JSON object into a struct with a param table. Absent parameters
 * with a default get it; integers are checked against their range.
 * \return 0, or -EINVAL with a message in err (unknown key, wrong type,
 *         out-of-range integer, missing required key, not an object).
 */
int nvl_rpc_decode(const json_t *params, const struct nvl_rpc_param *tab, size_t n, void *out,
		   char *err, size_t errlen);

/** Complete a request with a result (steals the reference). */
void nvl_rpc_result(struct nvl_rpc_request *req, json_t *result);
/** Complete with `true`, SPDK's usual answer. */
void nvl_rpc_result_bool(struct nvl_rpc_request *req, bool v);
/** Complete with an error object. */
void nvl_rpc_error(struct nvl_rpc_request *req, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/** Complete with an error from a negative errno: message is "<what>: <strerror>". */
void nvl_rpc_error_errno(struct nvl_rpc_request *req, int rc, const char *what);
/** The raw params of the request (borrowed; NULL if none). */
json_t *nvl_rpc_params(struct nvl_rpc_request *req);

/*
 * Server and in-process execution.
 */
/** A timeout value meaning "never". */
#define NVL_RPC_TIMEOUT_NONE UINT64_MAX

struct nvl_rpc_server_opts {
	const char *path;          /**< socket path */
	size_t max_request;        /**< bytes per JSON text (default 1 MiB) */
	unsigned max_clients;      /**< concurrent connections (default 128) */
	/** ms a connection may sit on an incomplete request or an unread answer
	 *  without progress before it is closed (0: default 30 s) */
	uint64_t request_timeout_ms;
	/** ms a connection with nothing outstanding may stay silent (0: default 10 min) */
	uint64_t idle_timeout_ms;
	/** > 0: an already listening socket at path (from the fd store) to serve
	 *  instead of binding a new one */
	int inherited_fd;
	/** leave the socket file when stopping (systemd's socket unit owns it) */
	bool keep_path;
};

/** Bind and listen (on the calling reactor). Takes over a stale socket left by a
 *  dead daemon; \return -EADDRINUSE if a live server answers on path. */
int nvl_rpc_server_start(const struct nvl_rpc_server_opts *o);
/** Stop listening, close connections, unlink the socket. */
void nvl_rpc_server_stop(void);

/** The listening socket (to keep in the fd store), or -1. */
int nvl_rpc_server_fd(void);

/** Called on reactor 0 after each client's call is answered (method name,
 *  whether it succeeded); local calls (config replay) do not call it. */
typedef void (*nvl_rpc_call_hook)(const char *method, bool ok);
void nvl_rpc_set_call_hook(nvl_rpc_call_hook fn);

/**
 * Execute one call in-process (config replay). Calls done(arg, err) when the
 * method completes; err is NULL on success or an error object (borrowed).
 * \return 0 if started, -ENOENT for an unknown method.
 */
typedef void (*nvl_rpc_local_done)(void *arg, json_t *result, json_t *error);
int nvl_rpc_call_local(const char *method, json_t *params, nvl_rpc_local_done done, void *arg);

#endif
