/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the daemon's configuration loader (`nvlendd -c
 * FILE`, src/app/app.c included): the input is the file. It is loaded as
 * app_begin() loads it (json_load_file), flattened by config_flatten() (a
 * plain array of calls, or SPDK's {"subsystems": [{"subsystem", "config":
 * [...]}]}), and replayed by replay_next()/replay_done() through the RPC
 * dispatcher (nvl_rpc_call_local: method lookup, parameter decoding, the
 * call, its answer now or later from the reactor), one call after the
 * other, stopping at the first failure as the daemon does.
 *
 * The methods a file can reach here are the frame's own (rpc_get_methods,
 * save_config, log_*, framework_*, nvlend_get_version...) and three of the
 * harness's with a parameter of every type: fz_all answers at once, fz_async
 * answers from a reactor message, fz_fail fails. A failed replay ends in
 * nvl_app_shutdown(), as in the daemon; the harness intercepts the reactors'
 * stop and resets the frame for the next input.
 *
 * Checks: the replay ends (applied, or stopped by a failure) within a
 * bounded number of loop rounds, runs the calls in order and never one
 * after a failure, and leaves no memory behind (LeakSanitizer).
 */
#define nvl_reactors_stop fz_reactors_stop
#include "app/app.c"
#undef nvl_reactors_stop

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_path[64];
static struct nvl_app_opts g_opts;
static bool g_stopped;
static unsigned g_calls, g_failed_calls;

void fz_reactors_stop(void);

void
fz_reactors_stop(void)
{
	g_stopped = true;
}

/* ---- the harness's methods ------------------------------------------------------------ */

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
	NVL_RPC_PARAM(struct fz_all, s, NVL_RPC_T_STR, false, "string"),
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

static void
fz_rpc_all(struct nvl_rpc_request *req, struct fz_all *a)
{
	CHECK(!g_app.stopping);
	g_calls++;
	nvl_rpc_result(req, json_pack("{s:s?, s:I, s:O?}", "s", a->s,
				      "sum", (json_int_t)(a->u8 + a->u16 + a->u32 + a->i32),
				      "obj", a->obj));
}
NVL_RPC_REGISTER("fz_all", fz_rpc_all, struct fz_all, fz_all_params,
		 NVL_RPC_RUNTIME | NVL_RPC_STARTUP, "fuzz: every parameter type")

struct fz_async_args {
	uint32_t value;
	const char *err;
};

static const struct nvl_rpc_param fz_async_params[] = {
	NVL_RPC_PARAM(struct fz_async_args, value, NVL_RPC_T_U32, false, "result"),
	NVL_RPC_PARAM(struct fz_async_args, err, NVL_RPC_T_STR, false, "fail with this message"),
};

struct fz_later {
	struct nvl_rpc_request *req;
	uint32_t value;
	char *err;
};

static void
fz_answer(void *arg)
{
	struct fz_later *l = arg;

	if (l->err)
		nvl_rpc_error(l->req, -EINVAL, "%s", l->err);
	else
		nvl_rpc_result(l->req, json_integer(l->value));
	free(l->err);
	free(l);
}

static void
fz_rpc_async(struct nvl_rpc_request *req, struct fz_async_args *a)
{
	struct fz_later *l = calloc(1, sizeof(*l));

	CHECK(!g_app.stopping);
	g_calls++;
	if (l == NULL) {
		nvl_rpc_error(req, -ENOMEM, "out of memory");
		return;
	}
	l->req = req;
	l->value = a->value;
	l->err = a->err ? strdup(a->err) : NULL;
	if (nvl_reactor_msg(nvl_reactor_self(), fz_answer, l) < 0) {
		free(l->err);
		free(l);
		nvl_rpc_error(req, -ENOMEM, "cannot answer later");
	}
}
NVL_RPC_REGISTER("fz_async", fz_rpc_async, struct fz_async_args, fz_async_params,
		 NVL_RPC_RUNTIME | NVL_RPC_STARTUP, "fuzz: answers from the loop")

static void
fz_rpc_fail(struct nvl_rpc_request *req, void *unused)
{
	(void)unused;
	CHECK(!g_app.stopping);
	g_failed_calls++;
	nvl_rpc_error(req, -EIO, "fuzz: this call always fails");
}
NVL_RPC_REGISTER_NOARGS("fz_fail", fz_rpc_fail, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
			"fuzz: fails")

/* ---- driver ---------------------------------------------------------------------- */

static void
cleanup(void)
{
	unlink(g_path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct nvl_reactor_opts ro;

	(void)argc;
	(void)argv;
	nvl_log_set_level(getenv("NVL_FUZZ_VERBOSE") ? 1 : 0);
	if (getenv("NVL_FUZZ_VERBOSE") == NULL)
		nvl_log_set_fd(-1, false);
	nvl_reactor_opts_default(&ro);
	ro.spin_us = 0;
	ro.uring_entries = 8;
	if (nvl_reactors_init(&ro) < 0)
		abort();
	snprintf(g_path, sizeof(g_path), "/dev/shm/nvl-fuzz-config-%d.json", (int)getpid());
	g_opts.config_file = g_path;
	g_opts.log_level = 0;
	g_app.opts = &g_opts;
	atexit(cleanup);
	return 0;
}

/* What app_begin() does with -c FILE, up to the first replayed call. */
static int
load_and_start(void)
{
	json_error_t err;
	json_t *doc = json_load_file(g_app.opts->config_file, 0, &err);
	int rc;

	if (doc == NULL)
		return -EINVAL;
	rc = config_flatten(doc, &g_app.replay_calls);
	json_decref(doc);
	if (rc < 0) {
		CHECK(g_app.replay_calls == NULL);
		return rc;
	}
	CHECK(json_is_array(g_app.replay_calls));
	g_app.replay_idx = 0;
	replay_next();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fopen(g_path, "w");
	int rounds;

	if (f == NULL)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	g_stopped = false;
	g_calls = g_failed_calls = 0;
	if (load_and_start() == 0) {
		for (rounds = 0; rounds < 10000 && g_app.replay_calls && !g_app.stopping; rounds++)
			nvl_reactor_poll_once();
		/* applied (every call answered), or stopped at the first failure */
		CHECK(g_app.replay_calls == NULL || g_app.stopping);
		CHECK(g_app.started || g_app.stopping);
		CHECK(!g_app.stopping || g_stopped);
	}
	/* messages still queued (answers after a failure) run now, then the next input
	 * starts from a fresh frame */
	for (rounds = 0; rounds < 8; rounds++)
		nvl_reactor_poll_once();
	json_decref(g_app.replay_calls);
	g_app.replay_calls = NULL;
	g_app.replay_idx = 0;
	g_app.stopping = false;
	g_app.started = false;
	g_app.exit_code = 0;
	g_app.start_rc = 0;
	g_app.fini_next = NULL;
	nvl_log_set_level(getenv("NVL_FUZZ_VERBOSE") ? 1 : 0);
	if (getenv("NVL_FUZZ_VERBOSE") == NULL)
		nvl_log_set_fd(-1, false);
	nvl_reactor_set_spin_us(0);
	return 0;
}
