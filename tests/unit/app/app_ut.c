/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of src/app/app.c: subsystem order, save_config shape, config
 * flattening (SPDK's {"subsystems": [...]} or a plain array), config replay
 * through the dispatcher (success, unknown method, failing call), the
 * framework RPCs, and the asynchronous shutdown order. Tests that start a
 * shutdown run last (it is a one-way state).
 */
#include "app/app.c"
/* the "bdev" subsystem (registered by the bdev glue, as in the daemon) */
#include "bdev/bdev_rpc.c"
#include "common/ut.h"

/* ---- fake subsystems -------------------------------------------------------- */

static char g_trace[256];

static void
trace(const char *s)
{
	size_t n = strlen(g_trace);

	snprintf(g_trace + n, sizeof(g_trace) - n, "%s%s", n ? "," : "", s);
}

static nvl_app_done_fn g_pending_done;

static void
done_later(void *arg)
{
	(void)arg;
	g_pending_done();
}

static void
sub_a_fini(nvl_app_done_fn done)
{
	trace("fini-a");
	done(); /* synchronous */
}

static void
sub_c_fini(nvl_app_done_fn done)
{
	trace("fini-c");
	g_pending_done = done; /* asynchronous: after in-flight work drains */
	nvl_reactor_msg(nvl_reactor_self(), done_later, NULL);
}

static void
sub_c_write_config(json_t *calls)
{
	json_array_append_new(calls, json_pack("{s:s, s:{s:i}}", "method", "log_set_level",
					       "params", "level", 2));
}

static struct nvl_subsystem g_sub_a = { .name = "ut_a", .order = 5, .fini = sub_a_fini };
static struct nvl_subsystem g_sub_c = { .name = "ut_c", .order = 30, .fini = sub_c_fini,
					.write_config = sub_c_write_config };
static struct nvl_subsystem g_sub_b = { .name = "ut_b", .order = 20 }; /* no hooks */
NVL_SUBSYSTEM_REGISTER(g_sub_c)
NVL_SUBSYSTEM_REGISTER(g_sub_a)
NVL_SUBSYSTEM_REGISTER(g_sub_b)

/* ---- in-process RPC calls ------------------------------------------------------ */

static json_t *g_result, *g_error;

static void
call_done(void *arg, json_t *result, json_t *error)
{
	(void)arg;
	g_result = json_incref(result);
	g_error = json_incref(error);
}

static int
call(const char *method, const char *params)
{
	json_t *p = params ? json_loads(params, 0, NULL) : NULL;

	json_decref(g_result);
	json_decref(g_error);
	g_result = g_error = NULL;
	assert_int_equal(nvl_rpc_call_local(method, p, call_done, NULL), 0);
	json_decref(p);
	assert_true(g_result || g_error);
	return g_error ? (int)json_integer_value(json_object_get(g_error, "code")) : 0;
}

/* bdevs are made through the API (the RPCs of bdev_rpc.c are not what is tested) */
static void
make_ram(const char *name)
{
	struct nvl_bdev_ram_opts o = { .name = name, .num_blocks = 8, .block_size = 512 };
	struct nvl_bdev *b;

	assert_int_equal(nvl_bdev_ram_create(&o, &b), 0);
}

/* A config-replayable method of this test: creates a ram bdev. */
struct ut_mk_args {
	const char *name;
	uint32_t fail;
};
static const struct nvl_rpc_param ut_mk_params[] = {
	NVL_RPC_PARAM(struct ut_mk_args, name, NVL_RPC_T_STR, true, "name"),
	NVL_RPC_PARAM(struct ut_mk_args, fail, NVL_RPC_T_U32, false, "fail with this errno"),
};

static void
ut_rpc_mk(struct nvl_rpc_request *req, struct ut_mk_args *a)
{
	if (a->fail) {
		nvl_rpc_error_errno(req, -(int)a->fail, "ut_mk");
		return;
	}
	make_ram(a->name);
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("ut_mk", ut_rpc_mk, struct ut_mk_args, ut_mk_params, NVL_RPC_RUNTIME, "test")
NVL_RPC_REGISTER_ALIAS("ut_mk_old", ut_rpc_mk)

static int
setup(void **state)
{
	(void)state;
	return ut_reactors_init(1);
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
	nvl_log_set_level(0);
	return 0;
}

static void
test_subsystem_order(void **state)
{
	const char *want[] = { "ut_a", "bdev", "ut_b", "ut_c" };
	size_t i = 0;

	(void)state;
	for (struct nvl_subsystem *s = g_subsystems; s; s = s->next, i++) {
		assert_true(i < UT_N(want));
		assert_string_equal(s->name, want[i]);
	}
	assert_int_equal(i, UT_N(want));
}

static void
test_default_socket(void **state)
{
	char buf[256];

	(void)state;
	if (getuid() == 0) {
		assert_string_equal(nvl_default_rpc_socket(buf, sizeof(buf)), "/run/nvlend/nvlend.sock");
		return;
	}
	setenv("XDG_RUNTIME_DIR", "/run/user/1234", 1);
	assert_string_equal(nvl_default_rpc_socket(buf, sizeof(buf)), "/run/user/1234/nvlend.sock");
	unsetenv("XDG_RUNTIME_DIR");
	snprintf(buf, sizeof(buf), "/tmp/nvlend-%u/nvlend.sock", (unsigned)getuid());
	{
		char got[256];

		assert_string_equal(nvl_default_rpc_socket(got, sizeof(got)), buf);
	}
}

static void
test_config_flatten(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *out;
	} cases[] = {
		{ "[]", 0, "[]" },
		{ "[{\"method\": \"a\"}, 5]", 0, "[{\"method\": \"a\"}, 5]" },
		{ "{\"subsystems\": []}", 0, "[]" },
		{ "{\"subsystems\": [{\"subsystem\": \"bdev\", \"config\": [{\"method\": \"a\"}, "
		  "{\"method\": \"b\"}]}, {\"subsystem\": \"x\", \"config\": null}, "
		  "{\"subsystem\": \"y\"}, {\"subsystem\": \"z\", \"config\": [{\"method\": \"c\"}]}]}",
		  0, "[{\"method\": \"a\"}, {\"method\": \"b\"}, {\"method\": \"c\"}]" },
		{ "{\"subsystems\": 3}", -EINVAL, NULL },
		{ "{\"subsystems\": [{\"config\": 5}]}", -EINVAL, NULL },
		{ "{\"other\": []}", -EINVAL, NULL },
		{ "7", -EINVAL, NULL },
	};

	(void)state;
	for (size_t i = 0; i < UT_N(cases); i++) {
		json_t *in = json_loads(cases[i].in, JSON_DECODE_ANY, NULL), *out = NULL;
		int rc = config_flatten(in, &out);

		if (rc != cases[i].rc)
			fail_msg("config_flatten(%s) = %d", cases[i].in, rc);
		if (rc == 0) {
			json_t *want = json_loads(cases[i].out, 0, NULL);

			assert_true(json_equal(out, want));
			json_decref(want);
			json_decref(out);
		}
		json_decref(in);
	}
}

static void
test_save_config_shape(void **state)
{
	json_t *cfg, *subs, *c;

	(void)state;
	make_ram("r0");
	cfg = nvl_app_save_config();
	subs = json_object_get(cfg, "subsystems");
	assert_int_equal(json_array_size(subs), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(subs, 1), "subsystem")),
			    "bdev");
	c = json_object_get(json_array_get(subs, 1), "config");
	assert_int_equal(json_array_size(c), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0), "method")),
			    "bdev_malloc_create");
	assert_int_equal(json_array_size(json_object_get(json_array_get(subs, 3), "config")), 1);
	json_decref(cfg);
	/* the RPC returns the same */
	assert_int_equal(call("save_config", NULL), 0);
	assert_int_equal(json_array_size(json_object_get(g_result, "subsystems")), 4);
	/* and SPDK's rpc.py route to it */
	assert_int_equal(call("framework_get_subsystems", NULL), 0);
	assert_int_equal(json_array_size(g_result), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(g_result, 0),
							      "subsystem")), "ut_a");
	assert_true(json_is_array(json_object_get(json_array_get(g_result, 0), "depends_on")));
	assert_int_equal(call("framework_get_config", "{\"name\": \"bdev\"}"), 0);
	assert_int_equal(json_array_size(g_result), 1);
	assert_int_equal(call("framework_get_config", "{\"name\": \"ut_b\"}"), 0);
	assert_true(json_is_null(g_result));
	assert_int_equal(call("framework_get_config", "{\"name\": \"nope\"}"),
			 NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("framework_get_config", NULL), NVL_RPC_INVALID_PARAMS);
}

static void
test_framework_rpcs(void **state)
{
	bool seen_alias = false, seen_spdk = false;
	size_t i;
	json_t *m;

	(void)state;
	assert_int_equal(call("rpc_get_methods", NULL), 0);
	json_array_foreach(g_result, i, m) {
		assert_true(json_is_string(m));
		seen_alias |= strcmp(json_string_value(m), "ut_mk_old") == 0;
		seen_spdk |= strcmp(json_string_value(m), "spdk_get_version") == 0;
	}
	assert_false(seen_alias);
	assert_true(seen_spdk); /* SPDK's canonical names are methods, not hidden aliases */
	assert_int_equal(call("rpc_get_methods", "{\"include_aliases\": true, \"current\": true}"), 0);
	json_array_foreach(g_result, i, m)
		seen_alias |= strcmp(json_string_value(m), "ut_mk_old") == 0;
	assert_true(seen_alias);
	assert_int_equal(call("rpc_get_methods", "{\"detailed\": true}"), 0);
	json_array_foreach(g_result, i, m) {
		assert_true(json_is_string(json_object_get(m, "name")));
		assert_true(json_is_array(json_object_get(m, "params")));
	}

	assert_int_equal(call("nvlend_get_version", NULL), 0);
	assert_string_equal(json_string_value(json_object_get(g_result, "version")),
			    "nvlend v" NVL_VERSION_STRING);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(g_result, "fields"),
							    "minor")), NVL_VERSION_MINOR);
	assert_int_equal(call("spdk_get_version", NULL), 0);

	assert_int_equal(call("log_set_level", "{\"level\": 3}"), 0);
	assert_int_equal(nvl_log_get_level(), 3);
	assert_int_equal(call("log_get_level", NULL), 0);
	assert_int_equal(json_integer_value(g_result), 3);
	assert_int_equal(call("log_set_level", "{\"level\": 4}"), NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("log_set_level", "{\"level\": -1}"), NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("log_set_level", "{}"), NVL_RPC_INVALID_PARAMS);
	assert_int_equal(nvl_log_get_level(), 3);
	/* SPDK's level names, any case: below DEBUG is our 0, DEBUG our 1 */
	assert_int_equal(call("log_set_level", "{\"level\": \"ERROR\"}"), 0);
	assert_int_equal(nvl_log_get_level(), 0);
	assert_int_equal(call("log_set_level", "{\"level\": \"Debug\"}"), 0);
	assert_int_equal(nvl_log_get_level(), 1);
	assert_int_equal(call("log_set_level", "{\"level\": \"notice\"}"), 0);
	assert_int_equal(nvl_log_get_level(), 0);
	assert_int_equal(call("log_set_level", "{\"level\": \"TRACE\"}"), 0);
	assert_int_equal(nvl_log_get_level(), 3);
	assert_int_equal(call("log_set_level", "{\"level\": \"WARNING\"}"), 0);
	assert_int_equal(nvl_log_get_level(), 0);
	assert_int_equal(call("log_set_level", "{\"level\": \"INFO\"}"), 0);
	assert_int_equal(nvl_log_get_level(), 0);
	assert_int_equal(call("log_set_level", "{\"level\": \"verbose\"}"), 0);
	assert_int_equal(nvl_log_get_level(), 2);
	assert_int_equal(call("log_set_level", "{\"level\": \"LOUD\"}"), NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("log_set_level", "{\"level\": \"\"}"), NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("log_set_level", "{\"level\": \"1\"}"), NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("log_set_level", "{\"level\": 1.0}"), NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("log_set_level", "{\"level\": true}"), NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("log_set_level", "{\"level\": null}"), NVL_RPC_INVALID_PARAMS);
	assert_int_equal(nvl_log_get_level(), 2);
	assert_int_equal(call("log_set_level", "{\"level\": 3}"), 0);
	assert_int_equal(call("log_clear_flag", "{\"flag\": \"app\"}"), 0);
	assert_int_equal(call("log_get_flags", NULL), 0);
	assert_true(json_is_false(json_object_get(g_result, "app")));
	assert_int_equal(call("log_set_flag", "{\"flag\": \"all\"}"), 0);
	assert_int_equal(call("log_set_flag", "{\"flag\": \"nosuch\"}"), NVL_RPC_INVALID_PARAMS);

	assert_int_equal(call("framework_set_spin", "{\"spin_us\": 50}"), 0);
	assert_int_equal(call("framework_get_reactors", NULL), 0);
	assert_int_equal(json_integer_value(json_object_get(g_result, "spin_us")), 50);
	assert_int_equal(json_array_size(json_object_get(g_result, "reactors")), 1);
	assert_int_equal(call("framework_set_spin", "{\"spin_us\": 10000001}"),
			 NVL_RPC_INVALID_PARAMS);
	assert_int_equal(call("spdk_kill_instance", "{\"sig_name\": \"SIGKILL\"}"),
			 NVL_RPC_INVALID_PARAMS);
}

/* ---- config replay ----------------------------------------------------------- */

static int g_started;

static void
started_cb(void *arg)
{
	(void)arg;
	g_started++;
}

static void
test_replay_ok(void **state)
{
	struct nvl_app_opts o = { .config_file = "test.json", .started = started_cb };

	(void)state;
	g_app.opts = &o;
	g_app.replay_calls = json_loads(
		"[{\"method\": \"ut_mk\", \"params\": {\"name\": \"a\"}}, "
		"{\"method\": \"log_set_level\", \"params\": {\"level\": 1}}, "
		"{\"method\": \"ut_mk\", \"params\": {\"name\": \"b\"}}]", 0, NULL);
	g_app.replay_idx = 0;
	g_started = 0;
	replay_next();
	assert_true(UT_POLL_UNTIL(g_started == 1, 2000));
	assert_non_null(nvl_bdev_get_by_name("a"));
	assert_non_null(nvl_bdev_get_by_name("b"));
	assert_int_equal(nvl_log_get_level(), 1);
	assert_null(g_app.replay_calls);
	assert_true(g_app.started);
	assert_int_equal(g_app.start_rc, 0);
	g_app.started = false;
}

/* ---- shutdown (one-way: these run last) ---------------------------------------- */

static void
begin_shutdown(void *arg)
{
	(void)arg;
	nvl_app_shutdown(0);
}

static void
test_shutdown_order(void **state)
{
	(void)state;
	g_trace[0] = '\0';
	assert_false(nvl_app_stopping());
	make_ram("r");
	nvl_reactor_msg(nvl_reactor_self(), begin_shutdown, NULL);
	/* returns once the last fini called done() and the reactors were stopped */
	assert_int_equal(nvl_reactors_run(), 0);
	assert_true(nvl_app_stopping());
	/* reverse order, waiting for the asynchronous one; bdevs freed by the "bdev" subsystem */
	assert_string_equal(g_trace, "fini-c,fini-a");
	assert_null(nvl_bdev_first());
	nvl_app_shutdown(1); /* a second request is ignored */
	assert_int_equal(g_app.exit_code, 0);
}

static void
test_replay_failures(void **state)
{
	struct nvl_app_opts o = { .config_file = "bad.json", .started = started_cb };

	(void)state;
	/* an unknown method stops start-up */
	g_app.stopping = false;
	g_app.opts = &o;
	g_app.start_rc = 0;
	g_started = 0;
	g_app.replay_calls = json_loads("[{\"method\": \"log_set_level\", \"params\": {\"level\": 0}},"
					" {\"method\": \"no_such_method\"}]", 0, NULL);
	g_app.replay_idx = 0;
	replay_next();
	assert_true(UT_POLL_UNTIL(g_app.start_rc != 0, 2000));
	assert_int_equal(g_app.start_rc, -EINVAL);
	assert_true(nvl_app_stopping());
	assert_int_equal(g_app.exit_code, 1);
	assert_int_equal(g_started, 0);
	json_decref(g_app.replay_calls);
	g_app.replay_calls = NULL;

	/* a call that fails */
	g_app.stopping = false;
	g_app.start_rc = 0;
	g_app.replay_calls = json_loads("[{\"method\": \"ut_mk\", \"params\": "
					"{\"name\": \"x\", \"fail\": 5}}]", 0, NULL);
	g_app.replay_idx = 0;
	replay_next();
	assert_true(UT_POLL_UNTIL(g_app.start_rc != 0, 2000));
	assert_int_equal(g_app.start_rc, -EINVAL);
	assert_null(g_app.replay_calls);
	assert_int_equal(g_started, 0);

	/* an entry without a method */
	g_app.stopping = false;
	g_app.start_rc = 0;
	g_app.replay_calls = json_loads("[{\"params\": {}}]", 0, NULL);
	g_app.replay_idx = 0;
	replay_next();
	assert_int_equal(g_app.start_rc, -EINVAL);
	json_decref(g_app.replay_calls);
	g_app.replay_calls = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subsystem_order),
		cmocka_unit_test(test_default_socket),
		cmocka_unit_test(test_config_flatten),
		cmocka_unit_test_setup_teardown(test_save_config_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_framework_rpcs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_failures, setup, teardown),
	};

	return UT_RUN(tests);
}
