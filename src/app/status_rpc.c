/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's own status for `nvlend status`: nvlend_get_status (pid,
 * start time, uptime, configuration and log file, supervisor, restarts by
 * the keeper) and nvlend_get_log (the last warnings and errors, kept in
 * util/log.c's ring).
 *
 * Owns nothing but the worker's start time, taken once by a constructor
 * before main(). Handlers run on reactor 0 (the RPC reactor); the log ring
 * has its own lock (util/log.h), so reading it here needs nothing more.
 */
#include "app/app.h"
#include "app/keeper.h"
#include "rpc/rpc.h"
#include "util/fdstore.h"
#include "util/log.h"
#include "util/util.h"
#include "util/version.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* when this worker process started: wall clock and monotonic */
static uint64_t g_start_real_us, g_start_mono_us;

static uint64_t
status_real_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void __attribute__((constructor))
status_note_start(void)
{
	g_start_real_us = status_real_us();
	g_start_mono_us = nvl_now_us();
}

/* RFC 3339 in UTC with milliseconds: "2026-12-07T07:21:44.202Z" */
static json_t *
status_time_json(uint64_t us)
{
	time_t t = (time_t)(us / 1000000u);
	struct tm tm;
	char buf[64];
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%03uZ", (unsigned)(us % 1000000u / 1000u));
	return json_string(buf);
}

/* an unsigned number from the environment, or -1 when absent or malformed */
static long long
status_env_num(const char *name)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long x;

	if (v == NULL || *v == '\0')
		return -1;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end != '\0' || x > (unsigned long long)INT64_MAX)
		return -1;
	return (long long)x;
}

static void
rpc_nvlend_get_status(struct nvl_rpc_request *req, void *unused)
{
	long long keeper = status_env_num(NVL_KEEPER_ENV);
	long long restarts = status_env_num(NVL_KEEPER_RESTARTS_ENV);
	long long kstart = status_env_num(NVL_KEEPER_STARTED_ENV);
	long long death = status_env_num(NVL_FDSTORE_DEATH_ENV);
	uint64_t now = status_real_us();
	uint64_t started = g_start_real_us;
	const char *cfg = nvl_app_config_file(), *logf = nvl_log_file();
	const char *supervisor = NULL;
	json_t *o;

	(void)unused;
	if (keeper > 0) {
		supervisor = "keeper";
		/* the daemon runs since its keeper started; this worker since its own start */
		if (kstart > 0 && (uint64_t)kstart <= started)
			started = (uint64_t)kstart;
	} else if (getenv("NOTIFY_SOCKET")) {
		supervisor = "systemd";
	}
	o = json_pack("{s:s, s:i, s:o, s:I, s:o, s:I}", "version", "nvlend v" NVL_VERSION_STRING,
		      "pid", (int)getpid(), "start_time", status_time_json(started), "uptime_s",
		      (json_int_t)((now > started ? now - started : 0) / 1000000u),
		      "worker_start_time", status_time_json(g_start_real_us), "worker_uptime_s",
		      (json_int_t)((nvl_now_us() - g_start_mono_us) / 1000000u));
	json_object_set_new(o, "keeper_pid", keeper > 0 ? json_integer(keeper) : json_null());
	json_object_set_new(o, "supervisor", supervisor ? json_string(supervisor) : json_null());
	/* known only under our keeper (systemd counts its own: systemctl status) */
	json_object_set_new(o, "restarts", restarts >= 0 ? json_integer(restarts) : json_null());
	json_object_set_new(o, "last_death_signal",
			    death > 0 && death < NSIG ? json_string(sigabbrev_np((int)death))
						      : json_null());
	json_object_set_new(o, "config_file", cfg ? json_string(cfg) : json_null());
	json_object_set_new(o, "log_file", logf ? json_string(logf) : json_null());
	nvl_rpc_result(req, o);
}
NVL_RPC_REGISTER_NOARGS("nvlend_get_status", rpc_nvlend_get_status,
			NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
			"The daemon itself: version, pid, start time and uptime (since the keeper "
			"started it; worker_* since this worker started), supervisor (keeper, "
			"systemd or null), restarts by the keeper (null when not known), "
			"config_file and log_file (null: none, stderr).")

struct rpc_get_log_args {
	uint32_t count;
	const char *level;
};
static const struct nvl_rpc_param get_log_params[] = {
	NVL_RPC_PARAM(struct rpc_get_log_args, count, NVL_RPC_T_U32, false,
		      "how many of the most recent lines", NVL_RPC_DEFAULT_NUM(NVL_LOG_RING_SIZE),
		      NVL_RPC_RANGE(1, NVL_LOG_RING_SIZE)),
	NVL_RPC_PARAM(struct rpc_get_log_args, level, NVL_RPC_T_STR, false,
		      "least severe level returned: \"warning\" (warnings and errors) or "
		      "\"error\" (case-insensitive; WARN and ERROR too)",
		      NVL_RPC_DEFAULT("\"warning\"")),
};

static void
rpc_nvlend_get_log(struct nvl_rpc_request *req, struct rpc_get_log_args *a)
{
	struct nvl_log_entry e[NVL_LOG_RING_SIZE];
	enum nvl_log_prio max;
	uint64_t total;
	size_t n;
	json_t *arr;

	if (strcasecmp(a->level, "warning") == 0 || strcasecmp(a->level, "warn") == 0) {
		max = NVL_LOG_WARN;
	} else if (strcasecmp(a->level, "error") == 0) {
		max = NVL_LOG_ERROR;
	} else {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "level must be \"warning\" or \"error\" (got \"%.32s\")", a->level);
		return;
	}
	n = nvl_log_recent(max, a->count, e, &total);
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:I, s:o, s:I, s:s, s:s, s:s}", "seq",
						     (json_int_t)e[i].seq, "time",
						     status_time_json(e[i].time_us), "time_us",
						     (json_int_t)e[i].time_us, "level",
						     e[i].prio == NVL_LOG_ERROR ? "error" : "warning",
						     "origin", e[i].origin, "message", e[i].msg));
	nvl_rpc_result(req, json_pack("{s:I, s:i, s:o}", "total", (json_int_t)total, "capacity",
				      NVL_LOG_RING_SIZE, "entries", arr));
}
NVL_RPC_REGISTER("nvlend_get_log", rpc_nvlend_get_log, struct rpc_get_log_args, get_log_params,
		 NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "The most recent warning and error log lines the daemon kept in memory (the "
		 "last 32), oldest first, each with its time, level, origin (file:line:function) "
		 "and message; total counts every warning and error since start.")
