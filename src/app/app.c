/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Daemon frame: start-up order, config replay, signal handling, orderly
 * shutdown, and the framework RPCs. Reactor 0 only.
 *
 * Under a supervisor that keeps descriptors (the keeper or systemd:
 * util/fdstore.h, DESIGN.md section 10) the frame also keeps what a worker
 * restarted after a crash needs to carry on: the RPC listening socket
 * ("rpc.listen": clients that connect meanwhile wait in its backlog) and the
 * configuration ("app.config", a util/stateblob rewritten after every
 * client call that changed it). A worker that finds a configuration there
 * replays it instead of -c, and components take their own descriptors back
 * as the replay recreates them (a RAM bdev its memory, ...).
 */
#include "app/app.h"
#include "app/keeper.h"
#include "bdev/bdev.h"
#include "rpc/rpc.h"
#include "util/fdstore.h"
#include "util/log.h"
#include "util/sock.h"
#include "util/stateblob.h"
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(app)

#define APP_RESERVE_FDS 4 /* for shedding and for RPC clients when the table is full */

static struct nvl_subsystem *g_subsystems;

static struct {
	const struct nvl_app_opts *opts;
	int exit_code;
	bool stopping;
	int sfd;
	struct nvl_fdh *sfdh;
	struct nvl_subsystem *fini_next; /* walking the list backwards */
	json_t *replay_calls;
	size_t replay_idx;
	int start_rc;
	bool started;
	struct nvl_stateblob *cfg;   /* the configuration, kept for a restart */
	char *cfg_saved;             /* what cfg holds (compact JSON) */
	bool replaying_kept;         /* replaying what a previous worker kept */
	/* --wait-for-rpc: the configuration is in, framework_start_init not yet */
	bool replayed;
	bool start_requested;        /* framework_start_init came during the replay */
	bool started_cb_done;        /* opts->started ran while waiting for it */
	/* framework_start_init and framework_wait_init calls answered once started */
	struct nvl_rpc_request **waiters;
	size_t nwaiters, waiters_cap;
	/* configuration calls waiting for a bdev that an imported controller
	 * will bring once its target is up (no boot order: replay_defer) */
	json_t *deferred;
	struct nvl_timer *deferred_timer;
	/* a worker started ahead of an upgrade (util/fdstore.h): what it built
	 * before the hand-over, and what it left for after */
	bool ahead;                  /* building, the old worker serves */
	bool ahead_inits_left;       /* init_at_start subsystems wait for app_started */
	bool ahead_rt;               /* reactor 0 is real-time until the hand-over is done */
	uint64_t ahead_spin_us;      /* --spin-us, set aside while waiting for the hand-over */
	bool handover_line;          /* "handed over" is still to be written */
	size_t handover_left;        /* configuration calls left for after the hand-over */
	json_t *later;               /* configuration calls left for the hand-over */
	uint64_t cfg_seq;            /* the kept configuration's version replayed */
	struct nvl_fdh *ahead_fdh;
	struct nvl_timer *ahead_hold;
} g_app = { .sfd = -1 };

#define APP_CONFIG_BLOB "app.config"
#define APP_CONFIG_CAP (16u << 20)

void
nvl_subsystem_register(struct nvl_subsystem *s)
{
	struct nvl_subsystem **pp = &g_subsystems;

	while (*pp && (*pp)->order <= s->order)
		pp = &(*pp)->next;
	s->next = *pp;
	*pp = s;
}

const char *
nvl_app_config_file(void)
{
	return g_app.opts ? g_app.opts->config_file : NULL;
}

bool
nvl_app_stopping(void)
{
	return g_app.stopping;
}

bool
nvl_app_replaying(void)
{
	return g_app.replay_calls != NULL;
}

/* ---- framework_start_init / framework_wait_init ------------------------- */

/* Answer every framework_start_init / framework_wait_init waiting for the start:
 * true once started, an error when the daemon stops first. */
static void
app_answer_waiters(bool started)
{
	struct nvl_rpc_request **w = g_app.waiters;
	size_t n = g_app.nwaiters;

	g_app.waiters = NULL;
	g_app.nwaiters = g_app.waiters_cap = 0;
	for (size_t i = 0; i < n; i++) {
		if (started)
			nvl_rpc_result_bool(w[i], true);
		else
			nvl_rpc_error(w[i], NVL_RPC_INVALID_STATE,
				      "the daemon is stopping before it started");
	}
	free(w);
}

static int
app_add_waiter(struct nvl_rpc_request *req)
{
	if (g_app.nwaiters == g_app.waiters_cap) {
		size_t cap = g_app.waiters_cap ? 2 * g_app.waiters_cap : 8;
		struct nvl_rpc_request **w;

		if (cap > 4096)
			return -ENOSPC; /* bounded: clients that only wait */
		w = realloc(g_app.waiters, cap * sizeof(*w));
		if (w == NULL)
			return -ENOMEM;
		g_app.waiters = w;
		g_app.waiters_cap = cap;
	}
	g_app.waiters[g_app.nwaiters++] = req;
	return 0;
}

/* ---- shutdown ---------------------------------------------------------- */

static struct nvl_subsystem *
subsys_prev(struct nvl_subsystem *s)
{
	struct nvl_subsystem *p = NULL;

	for (struct nvl_subsystem *it = g_subsystems; it && it != s; it = it->next)
		p = it;
	return p;
}

static void fini_step(void);

static void
fini_done(void)
{
	g_app.fini_next = subsys_prev(g_app.fini_next);
	fini_step();
}

static void
fini_step(void)
{
	while (g_app.fini_next && g_app.fini_next->fini == NULL)
		g_app.fini_next = subsys_prev(g_app.fini_next);
	if (g_app.fini_next) {
		NVL_DEBUGLOG(app, "stopping %s", g_app.fini_next->name);
		g_app.fini_next->fini(fini_done);
		return;
	}
	NVL_NOTICELOG("shutdown complete");
	nvl_reactors_stop();
}

void
nvl_app_shutdown(int exit_code)
{
	struct nvl_subsystem *last = NULL;

	if (g_app.stopping)
		return;
	g_app.stopping = true;
	if (exit_code)
		g_app.exit_code = exit_code;
	NVL_NOTICELOG("shutting down: stopping RPC, draining I/O");
	nvl_timer_destroy(g_app.deferred_timer);
	g_app.deferred_timer = NULL;
	if (json_array_size(g_app.deferred))
		NVL_WARNLOG("config: %zu call(s) still waited for their bdevs",
			    json_array_size(g_app.deferred));
	json_decref(g_app.deferred);
	g_app.deferred = NULL;
	nvl_rpc_set_call_hook(NULL);
	app_answer_waiters(false);
	if (nvl_fdstore_available()) {
		/* on purpose: what this worker kept is not to be replayed */
		nvl_fdstore_stopping();
		nvl_stateblob_close(g_app.cfg, true);
		g_app.cfg = NULL;
		nvl_fdstore_remove("rpc.listen");
	}
	nvl_rpc_server_stop();
	for (struct nvl_subsystem *s = g_subsystems; s; s = s->next)
		last = s;
	g_app.fini_next = last;
	fini_step();
}

static void
signal_cb(void *arg, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)arg;
	(void)events;
	while (read(g_app.sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			/* logrotate moved the log file: start a new one at its path */
			int rc = nvl_log_reopen();

			if (rc < 0)
				NVL_ERRLOG("SIGHUP: cannot reopen the log file %s: %s",
					   nvl_log_file(), strerror(-rc));
			else
				NVL_NOTICELOG("SIGHUP: log file %s reopened",
					      nvl_log_file() ? nvl_log_file() : "(stderr, nothing to do)");
			continue;
		}
		if (si.ssi_signo == SIGUSR1 || si.ssi_signo == SIGUSR2) {
			NVL_NOTICELOG("received %s: ignored", strsignal((int)si.ssi_signo));
			continue;
		}
		/* TERM, INT, QUIT: an orderly stop, logged */
		if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM || si.ssi_signo == SIGQUIT) {
			if (g_app.stopping) {
				NVL_WARNLOG("second signal during shutdown: exiting now");
				_exit(1);
			}
			NVL_NOTICELOG("received %s", strsignal((int)si.ssi_signo));
			nvl_app_shutdown(0);
		}
	}
}

/* ---- config replay ----------------------------------------------------- */

static void replay_next(void);
static bool app_ahead_safe(json_t *call);
static void app_begin_config(void);
static void app_ahead_wait(void);
static void app_started(void);
static void app_replayed(void);
static int config_flatten(json_t *doc, json_t **out);

/* ---- configuration calls that wait for a bdev ---------------------------------------------- */

/* The first string of params (at any depth) naming no bdev yet that a
 * provider will bring (nvl_bdev_pending), or NULL. */
static const char *
call_pending_bdev(json_t *v)
{
	const char *key, *name;
	json_t *e;
	size_t i;

	if (json_is_string(v))
		return nvl_bdev_pending(json_string_value(v)) ? json_string_value(v) : NULL;
	if (json_is_object(v)) {
		json_object_foreach(v, key, e)
			if ((name = call_pending_bdev(e)) != NULL)
				return name;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			if ((name = call_pending_bdev(e)) != NULL)
				return name;
	}
	return NULL;
}

static void
deferred_done(void *arg, json_t *result, json_t *error)
{
	json_t *call = arg;

	(void)result;
	if (error) {
		char *e = json_dumps(error, JSON_COMPACT);

		NVL_ERRLOG("config: %s, applied late, failed: %s",
			   json_string_value(json_object_get(call, "method")), e ? e : "?");
		free(e);
	} else {
		NVL_NOTICELOG("config: %s applied now that its bdev is there",
			      json_string_value(json_object_get(call, "method")));
	}
	json_decref(call);
}

/* reactor 0, every second while calls wait: run those whose bdevs came, drop
 * those whose bdevs will not come (their controller was given up or went) */
static void
deferred_tick(void *arg)
{
	size_t i = 0;

	(void)arg;
	while (i < json_array_size(g_app.deferred)) {
		json_t *call = json_array_get(g_app.deferred, i);
		json_t *m = json_object_get(call, "method"), *p = json_object_get(call, "params");
		const char *waits = json_string_value(json_object_get(call, "waits_for"));

		if (nvl_bdev_pending(waits)) {
			i++;
			continue;
		}
		json_incref(call);
		json_array_remove(g_app.deferred, i);
		if (nvl_bdev_get_by_name(waits) == NULL) {
			NVL_ERRLOG("config: %s dropped: bdev %s will not come (its controller was "
				   "given up or detached)", json_string_value(m), waits);
			json_decref(call);
		} else if (call_pending_bdev(p) != NULL) {
			/* another bdev of the same call still to come */
			json_object_set_new(call, "waits_for", json_string(call_pending_bdev(p)));
			json_array_append_new(g_app.deferred, call);
		} else if (nvl_rpc_call_local(json_string_value(m), p, deferred_done, call) < 0) {
			json_decref(call);
		}
	}
	if (json_array_size(g_app.deferred) == 0) {
		nvl_timer_destroy(g_app.deferred_timer);
		g_app.deferred_timer = NULL;
	}
}

/* A configuration call failed: if it names a bdev an imported controller
 * will bring (its target is down now), it waits for it. \return true if so. */
static bool
replay_defer(json_t *call)
{
	const char *name = call_pending_bdev(json_object_get(call, "params"));
	json_t *c;

	if (name == NULL)
		return false;
	if (g_app.deferred == NULL)
		g_app.deferred = json_array();
	c = json_deep_copy(call);
	json_object_set_new(c, "waits_for", json_string(name));
	json_array_append_new(g_app.deferred, c);
	NVL_WARNLOG("config: %s waits for bdev %s (its controller waits for its target)",
		    json_string_value(json_object_get(call, "method")), name);
	if (g_app.deferred_timer == NULL)
		g_app.deferred_timer = nvl_timer_create(deferred_tick, NULL, 1000000, 1000000);
	return true;
}

static void
replay_done(void *arg, json_t *result, json_t *error)
{
	json_t *call = arg;

	(void)result;
	if (error && g_app.ahead) {
		/* built ahead, it may need what comes at the hand-over: again then */
		json_array_append(g_app.later, call);
		error = NULL;
	}
	if (error && replay_defer(call))
		error = NULL; /* it waits; the replay goes on */
	if (error) {
		char *e = json_dumps(error, JSON_COMPACT);

		NVL_ERRLOG("config: %s failed: %s",
			   json_string_value(json_object_get(call, "method")), e ? e : "?");
		free(e);
		g_app.start_rc = -EINVAL;
		json_decref(g_app.replay_calls);
		g_app.replay_calls = NULL;
		nvl_app_shutdown(1);
		return;
	}
	g_app.replay_idx++;
	/* continue from the loop, not from inside the handler's stack */
	nvl_reactor_msg(nvl_reactor_self(), (nvl_msg_fn)replay_next, NULL);
}

static int
app_start_rpc(void)
{
	struct nvl_rpc_server_opts ro = {
		.path = g_app.opts->rpc_socket,
		.max_request = g_app.opts->rpc_max_request,
		.max_clients = g_app.opts->rpc_max_clients,
		.request_timeout_ms = g_app.opts->rpc_request_timeout_ms,
		.idle_timeout_ms = g_app.opts->rpc_idle_timeout_ms,
	};
	char dir[512], def[256], *slash;
	int rc;

	nvl_strlcpy(dir, ro.path, sizeof(dir));
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (getuid() != 0 &&
		    strcmp(ro.path, nvl_default_rpc_socket(def, sizeof(def))) == 0) {
			/* a user's default socket lives in a directory only that user
			 * may enter (/tmp/nvlend-UID is otherwise squattable) */
			rc = nvl_mkdir_private(dir);
			if (rc < 0) {
				NVL_ERRLOG("refusing %s as the socket directory: %s", dir,
					   rc == -EPERM ? "not a directory of this user"
							: strerror(-rc));
				return rc;
			}
		} else {
			nvl_mkdir_p(dir);
		}
	}
	if (nvl_fdstore_available()) {
		int fd = nvl_fdstore_take("rpc.listen");

		if (fd > 0) {
			ro.inherited_fd = fd;
			/* systemd's socket unit made it (no keeper): it stays its own */
			ro.keep_path = getenv(NVL_KEEPER_ENV) == NULL;
			NVL_NOTICELOG("RPC socket %s taken back from the fd store", ro.path);
		}
	}
	rc = nvl_rpc_server_start(&ro);
	if (rc == 0 && ro.inherited_fd <= 0 && nvl_fdstore_available())
		nvl_fdstore_put("rpc.listen", nvl_rpc_server_fd());
	if (rc < 0) {
		if (rc == -EADDRINUSE)
			NVL_ERRLOG("a live nvlendd already serves %s; not starting a second one",
				   ro.path);
		else
			NVL_ERRLOG("cannot listen on %s: %s", ro.path, strerror(-rc));
	}
	return rc;
}

static void
replay_next(void)
{
	json_t *call;
	int rc;

	if (g_app.replay_calls == NULL || g_app.stopping)
		return;
	call = json_array_get(g_app.replay_calls, g_app.replay_idx);
	while (call && g_app.ahead && !app_ahead_safe(call)) {
		json_array_append(g_app.later, call);
		call = json_array_get(g_app.replay_calls, ++g_app.replay_idx);
	}
	if (call == NULL && g_app.ahead) {
		app_ahead_wait();
		return;
	}
	if (call == NULL) {
		json_decref(g_app.replay_calls);
		g_app.replay_calls = NULL;
		if (g_app.replaying_kept)
			NVL_NOTICELOG("the kept configuration is applied again");
		else
			NVL_NOTICELOG("configuration %s applied", g_app.opts->config_file);
		app_replayed();
		return;
	}
	{
		json_t *m = json_object_get(call, "method");
		json_t *p = json_object_get(call, "params");

		if (!json_is_string(m)) {
			NVL_ERRLOG("config: entry %zu has no \"method\"", g_app.replay_idx);
			g_app.start_rc = -EINVAL;
			nvl_app_shutdown(1);
			return;
		}
		if (strcmp(json_string_value(m), "framework_wait_init") == 0 ||
		    strcmp(json_string_value(m), "framework_start_init") == 0) {
			/* both answer once the daemon has started, which is after this
			 * replay: waited for here, the start never came */
			NVL_NOTICELOG("config: %s skipped: replaying this configuration is the "
				      "start it would wait for",
				      json_string_value(m));
			replay_done(call, NULL, NULL);
			return;
		}
		NVL_DEBUGLOG(app, "config: %s", json_string_value(m));
		rc = nvl_rpc_call_local(json_string_value(m), p, replay_done, call);
		if (rc == -ENOENT) {
			NVL_ERRLOG("config: unknown method %s", json_string_value(m));
			g_app.start_rc = -EINVAL;
			nvl_app_shutdown(1);
		}
	}
}

/* ---- a worker started ahead of an upgrade ------------------------------------------------- */

/*
 * What a worker started ahead may build while the old worker serves: objects
 * of this process only (RAM bdevs map the kept memory, file bdevs open their
 * file: the old worker dropped its lock on it, subsystems, namespaces without
 * a PTPL file the old worker may rewrite, allowed hosts) and NVMe/TCP and shm
 * transports and listeners (their sockets are held: watched from the
 * hand-over on). Everything else (imported controllers connect, vhost and
 * NBD take live connections, bricks recover their tiers, ...) waits for the
 * hand-over.
 */
static bool
app_ahead_safe(json_t *call)
{
	static const char *const own[] = { "bdev_malloc_create", "bdev_aio_create",
					   "bdev_uring_create", "nvmf_create_subsystem",
					   "nvmf_subsystem_add_host" };
	const char *m = json_string_value(json_object_get(call, "method"));
	json_t *p = json_object_get(call, "params");
	const char *tr = NULL;

	if (m == NULL)
		return false;
	for (size_t i = 0; i < NVL_ARRAY_SIZE(own); i++)
		if (strcmp(m, own[i]) == 0)
			return true;
	if (strcmp(m, "nvmf_subsystem_add_ns") == 0)
		return json_object_get(p, "ptpl_file") == NULL &&
		       json_object_get(json_object_get(p, "namespace"), "ptpl_file") == NULL;
	if (strcmp(m, "nvmf_create_transport") == 0)
		tr = json_string_value(json_object_get(p, "trtype"));
	else if (strcmp(m, "nvmf_subsystem_add_listener") == 0)
		tr = json_string_value(
			json_object_get(json_object_get(p, "listen_address"), "trtype"));
	return tr && (strcasecmp(tr, "TCP") == 0 || strcasecmp(tr, "SHM") == 0);
}

/* A worker built ahead: an init left for the hand-over; a failure stops the
 * start. \return its status. */
static int
app_init_late(struct nvl_subsystem *s)
{
	int rc = s->init();

	if (rc < 0) {
		NVL_ERRLOG("cannot start %s: %s", s->name, strerror(-rc));
		g_app.start_rc = rc;
		nvl_app_shutdown(1);
	}
	return rc;
}

/* The hand-over came: the rest of the start, as a worker started now would. */
static void
app_ahead_done(void)
{
	const void *data;
	size_t len;
	uint64_t seq = 0;

	g_app.ahead = false;
	if (g_app.cfg && g_app.replaying_kept &&
	    (nvl_stateblob_read(g_app.cfg, &data, &len, &seq) < 0 || seq != g_app.cfg_seq)) {
		NVL_ERRLOG("the configuration changed while this worker was built ahead (version "
			   "%llu, built from %llu): starting afresh",
			   (unsigned long long)seq, (unsigned long long)g_app.cfg_seq);
		_exit(NVL_KEEPER_EXIT_AFRESH);
	}
	for (struct nvl_subsystem *s = g_subsystems; s; s = s->next) {
		if (s->init && s->init_at_handover && s->init_at_start) {
			g_app.ahead_inits_left = true;
			continue;
		}
		if (s->init && s->init_at_handover && app_init_late(s) < 0)
			return;
	}
	nvl_reactor_arm_fds();
	if (!g_app.replaying_kept) {
		json_decref(g_app.later);
		g_app.later = NULL;
		app_begin_config();
		return;
	}
	/* its line once serving (app_started): a line here is downtime */
	g_app.handover_left = json_array_size(g_app.later);
	g_app.handover_line = true;
	json_decref(g_app.replay_calls);
	g_app.replay_calls = g_app.later;
	g_app.later = NULL;
	g_app.replay_idx = 0;
	replay_next();
}

static void
app_ahead_readable(void *arg, uint32_t events)
{
	int rc = nvl_fdstore_ahead_recv();

	(void)arg;
	(void)events;
	if (rc == 0)
		return;
	nvl_fd_del(g_app.ahead_fdh);
	g_app.ahead_fdh = NULL;
	nvl_reactor_set_spin_us(g_app.ahead_spin_us);
	if (rc == -ESTALE) {
		NVL_ERRLOG("the store changed under what this worker built ahead: starting afresh");
		_exit(NVL_KEEPER_EXIT_AFRESH);
	}
	if (rc < 0) {
		/* dropped by the keeper (another upgrade, stopping) */
		NVL_NOTICELOG("not needed any more (%s): exiting", strerror(-rc));
		_exit(0);
	}
	app_ahead_done();
	/* what the hand-over restores runs in there, then the queues' polling
	 * runs in the normal class again */
	if (g_app.ahead_rt)
		nvl_sched_realtime(false);
	g_app.ahead_rt = false;
}

/* tests: while the file NVLEND_TEST_AHEAD_HOLD names exists (10 s at most),
 * the old worker is not told: a window to change what was built ahead */
static void
app_ahead_ready(void *arg)
{
	const char *hold = getenv("NVLEND_TEST_AHEAD_HOLD");
	uint64_t *until = arg;

	if (hold && access(hold, F_OK) == 0 && nvl_now_ns() < *until)
		return;
	nvl_timer_destroy(g_app.ahead_hold);
	g_app.ahead_hold = NULL;
	nvl_fdstore_ahead_ready();
}

/* Built what could be: tell the old worker, wait for the hand-over. */
static void
app_ahead_wait(void)
{
	static uint64_t hold_until;

	for (struct nvl_subsystem *s = g_subsystems; s; s = s->next)
		if (s->ahead)
			s->ahead();
	NVL_NOTICELOG("built ahead (%zu configuration call(s) wait for the hand-over): ready",
		      json_array_size(g_app.later));
	g_app.ahead_fdh = nvl_fd_add_now(nvl_fdstore_ahead_fd(), EPOLLIN, app_ahead_readable, NULL);
	if (g_app.ahead_fdh == NULL) {
		NVL_ERRLOG("cannot wait for the hand-over: %s", strerror(errno));
		_exit(1);
	}
	/* the hand-over's wake-up: at once, not after whatever runs on this CPU;
	 * and no spinning after a timer while waiting (real-time, a spin would
	 * take the CPU from the old worker's queues) */
	g_app.ahead_rt = nvl_sched_realtime(true);
	g_app.ahead_spin_us = nvl_reactor_get_spin_us();
	nvl_reactor_set_spin_us(0);
	hold_until = nvl_now_ns() + 10000000000ULL;
	if (getenv("NVLEND_TEST_AHEAD_HOLD"))
		g_app.ahead_hold = nvl_timer_create(app_ahead_ready, &hold_until, 0, 10000);
	if (g_app.ahead_hold == NULL)
		nvl_fdstore_ahead_ready();
	app_ahead_readable(NULL, 0);   /* it may have come already */
}

/* Accept SPDK's {"subsystems":[{"subsystem":..,"config":[calls]}]} or a plain array. */
static int
config_flatten(json_t *doc, json_t **out)
{
	json_t *calls, *subs;
	size_t i, j;
	json_t *s, *c;

	if (json_is_array(doc)) {
		*out = json_incref(doc);
		return 0;
	}
	subs = json_object_get(doc, "subsystems");
	if (!json_is_array(subs))
		return -EINVAL;
	calls = json_array();
	json_array_foreach(subs, i, s) {
		json_t *cfg = json_object_get(s, "config");

		if (cfg == NULL || json_is_null(cfg))
			continue;
		if (!json_is_array(cfg)) {
			json_decref(calls);
			return -EINVAL;
		}
		json_array_foreach(cfg, j, c)
			json_array_append(calls, c);
	}
	*out = calls;
	return 0;
}

/* After a client's call: keep the configuration if it changed (the RPCs that
 * only read leave it as it was, and nothing is written then). */
static void
app_save_state(const char *method, bool ok)
{
	json_t *cfg;
	char *text;
	int rc;

	(void)method;
	if (!ok || g_app.cfg == NULL || g_app.stopping)
		return;
	cfg = nvl_app_save_config();
	text = cfg ? json_dumps(cfg, JSON_COMPACT) : NULL;
	json_decref(cfg);
	if (text == NULL)
		return;
	if (g_app.cfg_saved && strcmp(text, g_app.cfg_saved) == 0) {
		free(text);
		return;
	}
	rc = nvl_stateblob_write(g_app.cfg, text, strlen(text));
	if (rc < 0) {
		NVL_ERRLOG("cannot keep the configuration for a restart: %s", strerror(-rc));
		free(text);
		return;
	}
	free(g_app.cfg_saved);
	g_app.cfg_saved = text;
}

/* The configuration is in (or there was none): start, unless --wait-for-rpc
 * asks to wait for framework_start_init (a worker that replayed what its
 * predecessor kept was started before: it carries on at once). */
static void
app_replayed(void)
{
	if (g_app.opts->wait_for_rpc && !g_app.replaying_kept && !g_app.start_requested) {
		g_app.replayed = true;
		NVL_NOTICELOG("waiting for framework_start_init (--wait-for-rpc)");
		/* serving its socket with the configuration applied: the pid file,
		 * which scripts wait for before they call framework_start_init */
		if (g_app.opts->started) {
			g_app.started_cb_done = true;
			g_app.opts->started(g_app.opts->started_arg);
		}
		return;
	}
	app_started();
}

/* The configuration is in: every subsystem's start hook, in init order (what
 * they make themselves is not part of the kept configuration), then the
 * state is kept and the service manager told. */
static void
app_started(void)
{
	g_app.started = true;
	g_app.replayed = false;
	nvl_rpc_set_state(NVL_RPC_RUNTIME);
	/* init_at_start subsystems (lending) start after READY: what they do
	 * is not part of the kept connections' downtime */
	for (struct nvl_subsystem *s = g_subsystems; s && !g_app.stopping; s = s->next)
		if (s->start && !s->init_at_start)
			s->start();
	if (g_app.cfg) {
		/* serving: told first (an upgrade's live NVMe/TCP connections read
		 * again from here on), then the state kept. A kill in between
		 * restarts this binary with the kept configuration of before, the
		 * same, and what is not taken back is dropped then. */
		nvl_fdstore_ready(g_app.replaying_kept ? "serving again after a restart" : "serving");
		app_save_state(NULL, true);
		nvl_rpc_set_call_hook(app_save_state);
	}
	for (struct nvl_subsystem *s = g_subsystems; s && !g_app.stopping; s = s->next) {
		if (!s->init_at_start)
			continue;
		if (g_app.ahead_inits_left && s->init && s->init_at_handover &&
		    app_init_late(s) < 0)
			return;
		if (s->start)
			s->start();
	}
	g_app.ahead_inits_left = false;
	if (g_app.cfg)
		nvl_fdstore_release_untaken();
	{
		const char *from = NULL;
		bool back = false;

		if (nvl_handover_active(&from, &back)) {
			nvl_handover_resumed("daemon: RPC and listening sockets");
			NVL_NOTICELOG("%s %s: serving (nvlend_get_upgrade has the downtime per "
				      "function)", back ? "upgrade rolled back, still" : "upgraded from",
				      from ? from : "?");
		}
		if (g_app.handover_line) {
			g_app.handover_line = false;
			NVL_NOTICELOG("handed over: %zu configuration call(s) were left for after it",
				      g_app.handover_left);
		}
	}
	if (g_app.opts->started && !g_app.started_cb_done)
		g_app.opts->started(g_app.opts->started_arg);
	if (!g_app.stopping)
		app_answer_waiters(true);
}

/* The configuration a previous worker kept, as calls to replay; NULL if none. */
static json_t *
app_kept_config(void)
{
	const void *data;
	size_t len;
	uint64_t seq;
	json_error_t err;
	json_t *doc, *calls = NULL;
	bool existed;
	int rc;

	if (!nvl_fdstore_available())
		return NULL;
	rc = nvl_stateblob_open(APP_CONFIG_BLOB, APP_CONFIG_CAP, &g_app.cfg, &existed);
	if (rc < 0) {
		NVL_ERRLOG("cannot keep the configuration for a restart: %s", strerror(-rc));
		return NULL;
	}
	if (!existed)
		return NULL;
	rc = nvl_stateblob_read(g_app.cfg, &data, &len, &seq);
	if (rc < 0 || len == 0) {
		if (rc < 0)
			NVL_ERRLOG("the configuration kept by the previous worker is damaged: "
				   "starting from -c");
		return NULL;
	}
	doc = json_loadb(data, len, 0, &err);
	if (doc == NULL || config_flatten(doc, &calls) < 0) {
		NVL_ERRLOG("the configuration kept by the previous worker does not parse: %s",
			   err.text);
		json_decref(doc);
		return NULL;
	}
	json_decref(doc);
	NVL_NOTICELOG("restarted: replaying the configuration the previous worker kept "
		      "(%zu calls, version %llu%s)", json_array_size(calls),
		      (unsigned long long)seq,
		      g_app.ahead ? "; what can be built while the old worker serves, first" : "");
	g_app.cfg_seq = seq;
	return calls;
}

static void
app_begin(void *arg)
{
	int rc;

	(void)arg;
	/* clients of a daemon that waits for framework_start_init are in SPDK's
	 * STARTUP state (a restarted worker's were running: not again) */
	if (g_app.opts->wait_for_rpc)
		nvl_rpc_set_state(NVL_RPC_STARTUP);
	if (nvl_fdstore_ahead()) {
		/* started ahead of an upgrade: the old worker still accepts on the
		 * listening sockets this one takes; watched from the hand-over on */
		g_app.ahead = true;
		g_app.later = json_array();
		nvl_reactor_hold_fds();
	}
	/* Socket first: a second daemon must fail before it touches anything. */
	rc = app_start_rpc();
	if (rc < 0) {
		g_app.start_rc = rc;
		nvl_app_shutdown(1);
		return;
	}
	g_app.replay_calls = app_kept_config();
	if (g_app.replay_calls) {
		g_app.replaying_kept = true;
		nvl_rpc_set_state(NVL_RPC_RUNTIME);
		g_app.replay_idx = 0;
		replay_next();
		return;
	}
	if (g_app.ahead) {
		app_ahead_wait();   /* nothing kept: the -c configuration after it */
		return;
	}
	app_begin_config();
}

/* No kept configuration: -c's, if any. */
static void
app_begin_config(void)
{
	int rc;

	if (g_app.opts->config_file) {
		json_error_t err;
		json_t *doc = json_load_file(g_app.opts->config_file, 0, &err);

		if (doc == NULL) {
			NVL_ERRLOG("cannot load config %s: %s (line %d)", g_app.opts->config_file,
				   err.text, err.line);
			g_app.start_rc = -EINVAL;
			nvl_app_shutdown(1);
			return;
		}
		rc = config_flatten(doc, &g_app.replay_calls);
		json_decref(doc);
		if (rc < 0) {
			NVL_ERRLOG("config %s: expected a JSON array of {method, params} calls or "
				   "{\"subsystems\": [...]}", g_app.opts->config_file);
			g_app.start_rc = rc;
			nvl_app_shutdown(1);
			return;
		}
		g_app.replay_idx = 0;
		replay_next();
		return;
	}
	app_replayed();
}

/*
 * Descriptors: as many as the hard limit allows (hosts, queues and their
 * regions all hold some), and a few in reserve so that a full table sheds
 * new connections instead of spinning, and RPC still answers (util/sock.h).
 */
static void
app_fd_budget(void)
{
	uint64_t limit = 0;
	int rc;

	rc = nvl_fd_limit_raise(&limit);
	if (rc < 0)
		NVL_WARNLOG("cannot raise the file descriptor limit: %s", strerror(-rc));
	else
		NVL_NOTICELOG("file descriptor limit: %" PRIu64, limit);
	rc = nvl_sock_reserve_init(APP_RESERVE_FDS);
	if (rc < 0)
		NVL_WARNLOG("cannot reserve descriptors: %s", strerror(-rc));
}

int
nvl_app_run(const struct nvl_app_opts *o)
{
	sigset_t mask;
	int rc;

	g_app.opts = o;
	nvl_log_set_level(o->log_level);
	app_fd_budget();
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	/* block before threads exist so every reactor inherits the mask */
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = nvl_reactors_init(&o->reactors);
	if (rc < 0) {
		NVL_ERRLOG("cannot create reactors: %s", strerror(-rc));
		return rc;
	}
	g_app.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (g_app.sfd < 0) {
		rc = -errno;
		goto out_reactors;
	}
	g_app.sfdh = nvl_fd_add(g_app.sfd, EPOLLIN, signal_cb, NULL);
	for (struct nvl_subsystem *s = g_subsystems; s; s = s->next) {
		if (s->init && !(s->init_at_handover && nvl_fdstore_ahead())) {
			rc = s->init();
			if (rc < 0) {
				NVL_ERRLOG("cannot start %s: %s", s->name, strerror(-rc));
				goto out_sig;
			}
		}
	}
	nvl_reactor_msg(nvl_reactor_get(0), app_begin, NULL);
	NVL_NOTICELOG("nvlendd %s starting: %u reactor(s)", NVL_VERSION_STRING,
		      nvl_reactor_count());
	rc = nvl_reactors_run();
	if (rc == 0 && g_app.start_rc)
		rc = g_app.start_rc;
	if (rc == 0 && g_app.exit_code)
		rc = -ECANCELED;
out_sig:
	nvl_fd_del(g_app.sfdh);
	close(g_app.sfd);
out_reactors:
	nvl_reactors_fini();
	nvl_sock_reserve_fini();
	json_decref(g_app.replay_calls);
	json_decref(g_app.later);
	return rc;
}

json_t *
nvl_app_save_config(void)
{
	json_t *subs = json_array();

	for (struct nvl_subsystem *s = g_subsystems; s; s = s->next) {
		/* SPDK writes "config": null for a subsystem with nothing to save */
		json_t *calls = s->write_config ? json_array() : json_null();

		if (s->write_config)
			s->write_config(calls);
		json_array_append_new(subs, json_pack("{s:s, s:o}", "subsystem", s->name, "config",
						      calls));
	}
	return json_pack("{s:o}", "subsystems", subs);
}

/* ---- framework RPCs ---------------------------------------------------- */

struct rpc_get_methods_args {
	bool current;
	bool include_aliases;
	bool detailed;
};

static const struct nvl_rpc_param get_methods_params[] = {
	NVL_RPC_PARAM(struct rpc_get_methods_args, current, NVL_RPC_T_BOOL, false,
		      "only the methods callable in the current state: before framework_start_init (nvlendd --wait-for-rpc) those of the start-up state, else those of the running daemon (SPDK's meaning)"),
	NVL_RPC_PARAM(struct rpc_get_methods_args, include_aliases, NVL_RPC_T_BOOL, false,
		      "also list deprecated/compatibility aliases"),
	NVL_RPC_PARAM(struct rpc_get_methods_args, detailed, NVL_RPC_T_BOOL, false,
		      "return objects with help text and the parameter schema"),
};

static const char *
ptype_schema(enum nvl_rpc_ptype t)
{
	switch (t) {
	case NVL_RPC_T_STR: return "string";
	case NVL_RPC_T_BOOL: return "boolean";
	case NVL_RPC_T_U8: return "uint8";
	case NVL_RPC_T_U16: return "uint16";
	case NVL_RPC_T_U32: return "uint32";
	case NVL_RPC_T_U64: return "uint64";
	case NVL_RPC_T_I32: return "int32";
	case NVL_RPC_T_I64: return "int64";
	case NVL_RPC_T_OBJ: return "object";
	case NVL_RPC_T_ARRAY: return "array";
	case NVL_RPC_T_ANY: return "any";
	}
	return "?";
}

/* One parameter's schema: name, type, required, help, and when the table has
 * them the default, the limits, "ignored", the fields of an object and what
 * the parameter's describe hook adds (docs/rpc.md is generated from this). */
static json_t *
param_schema_json(const struct nvl_rpc_param *p)
{
	json_t *o = json_pack("{s:s, s:s, s:b, s:s}", "name", p->name, "type",
			      ptype_schema(p->type), "required", p->required, "help",
			      p->help ? p->help : "");

	if (p->def) {
		json_t *d = json_loads(p->def, JSON_DECODE_ANY, NULL);

		if (d)
			json_object_set_new(o, "default", d);
	}
	if (p->has_range) {
		json_object_set_new(o, "min", json_integer(p->min));
		json_object_set_new(o, "max", json_integer(p->max));
	}
	if (p->ignored)
		json_object_set_new(o, "ignored", json_true());
	if (p->fields) {
		json_t *f = json_array();

		for (size_t i = 0; i < p->nfields; i++)
			json_array_append_new(f, param_schema_json(&p->fields[i]));
		json_object_set_new(o, "fields", f);
	}
	if (p->describe) {
		json_t *extra = p->describe(p);

		if (extra)
			json_object_update(o, extra);
		json_decref(extra);
	}
	return o;
}

static void
rpc_rpc_get_methods(struct nvl_rpc_request *req, struct rpc_get_methods_args *a)
{
	json_t *arr = json_array();

	for (const struct nvl_rpc_method *m = nvl_rpc_methods(); m; m = m->next) {
		json_t *params, *states;

		if (m->alias_of && !a->include_aliases && !a->detailed)
			continue;
		/* SPDK's "current": only what the daemon's state allows now
		 * (framework_start_init before it ran, not after) */
		if (a->current && !nvl_rpc_method_allowed(m))
			continue;
		if (!a->detailed) {
			json_array_append_new(arr, json_string(m->name));
			continue;
		}
		params = json_array();
		for (size_t i = 0; i < m->nparams; i++)
			json_array_append_new(params, param_schema_json(&m->params[i]));
		states = json_array();
		if (m->flags & NVL_RPC_STARTUP)
			json_array_append_new(states, json_string("startup"));
		if (m->flags & NVL_RPC_RUNTIME)
			json_array_append_new(states, json_string("runtime"));
		json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:o, s:s?}", "name", m->name,
						     "help", m->help ? m->help : "", "params",
						     params, "states", states, "alias_of",
						     m->alias_of));
	}
	nvl_rpc_result(req, arr);
}
NVL_RPC_REGISTER("rpc_get_methods", rpc_rpc_get_methods, struct rpc_get_methods_args,
		 get_methods_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "List RPC methods; with detailed=true, each with its help and parameter schema.")

static void
rpc_nvlend_get_version(struct nvl_rpc_request *req, void *unused)
{
	(void)unused;
	nvl_rpc_result(req, json_pack("{s:s, s:{s:i, s:i, s:i, s:s}}", "version",
				      "nvlend v" NVL_VERSION_STRING, "fields", "major",
				      NVL_VERSION_MAJOR, "minor", NVL_VERSION_MINOR, "patch",
				      NVL_VERSION_PATCH, "suffix", ""));
}
NVL_RPC_REGISTER_NOARGS("nvlend_get_version", rpc_nvlend_get_version,
			NVL_RPC_RUNTIME | NVL_RPC_STARTUP, "Daemon version.")

/* SPDK's canonical name (rpc.py spdk_get_version), so a method, not a hidden alias */
static void
rpc_spdk_get_version(struct nvl_rpc_request *req, void *unused)
{
	rpc_nvlend_get_version(req, unused);
}
NVL_RPC_REGISTER_NOARGS("spdk_get_version", rpc_spdk_get_version,
			NVL_RPC_RUNTIME | NVL_RPC_STARTUP, "SPDK's name for nvlend_get_version.")

struct rpc_log_level {
	json_t *level;
};
static const struct nvl_rpc_param log_level_params[] = {
	NVL_RPC_PARAM(struct rpc_log_level, level, NVL_RPC_T_ANY, true,
		      "0 info and warnings only, 1 debug, 2 verbose, 3 trace; or a level name "
		      "(case-insensitive): SPDK's ERROR, WARNING, NOTICE and INFO mean 0, DEBUG "
		      "means 1, VERBOSE 2, TRACE 3"),
};

/* SPDK's level names (rpc.py log_set_level) mapped onto ours: we always print errors,
 * warnings and notices, so everything below DEBUG is level 0. */
static const struct {
	const char *name;
	int level;
} log_level_names[] = {
	{ "ERROR", 0 }, { "WARNING", 0 }, { "NOTICE", 0 }, { "INFO", 0 },
	{ "DEBUG", 1 }, { "VERBOSE", 2 }, { "TRACE", 3 },
};

/* \return the level 0..3 that v names, or -EINVAL */
static int
log_level_from_json(const json_t *v)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		return i >= 0 && i <= 3 ? (int)i : -EINVAL;
	}
	if (json_is_string(v)) {
		for (size_t i = 0; i < NVL_ARRAY_SIZE(log_level_names); i++)
			if (strcasecmp(json_string_value(v), log_level_names[i].name) == 0)
				return log_level_names[i].level;
	}
	return -EINVAL;
}

static void
rpc_log_set_level(struct nvl_rpc_request *req, struct rpc_log_level *a)
{
	int level = log_level_from_json(a->level);
	char *shown;

	if (level < 0 || nvl_log_set_level(level) < 0) {
		shown = json_dumps(a->level, JSON_ENCODE_ANY | JSON_COMPACT);
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "level must be 0..3 or ERROR, WARNING, NOTICE, INFO, DEBUG, VERBOSE, "
			      "TRACE (got %.64s)",
			      shown ? shown : "?");
		free(shown);
		return;
	}
	NVL_NOTICELOG("log level set to %d", level);
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("log_set_level", rpc_log_set_level, struct rpc_log_level, log_level_params,
		 NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Set the debug level: 0 info and warnings only, 1 debug, 2 verbose, 3 trace. "
		 "SPDK's level names are accepted too (ERROR..INFO mean 0, DEBUG 1).")

static void
rpc_log_get_level(struct nvl_rpc_request *req, void *unused)
{
	(void)unused;
	nvl_rpc_result(req, json_integer(nvl_log_get_level()));
}
NVL_RPC_REGISTER_NOARGS("log_get_level", rpc_log_get_level, NVL_RPC_RUNTIME,
			"Current debug level (0..3).")

struct rpc_log_flag {
	const char *flag;
};
static const struct nvl_rpc_param log_flag_params[] = {
	NVL_RPC_PARAM(struct rpc_log_flag, flag, NVL_RPC_T_STR, true,
		      "component name (see log_get_flags) or \"all\""),
};

static void
rpc_log_set_flag(struct nvl_rpc_request *req, struct rpc_log_flag *a)
{
	if (nvl_log_set_flag(a->flag, true) < 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "unknown log flag '%s'", a->flag);
		return;
	}
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("log_set_flag", rpc_log_set_flag, struct rpc_log_flag, log_flag_params,
		 NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Enable debug output of one component (all are enabled by default).")

static void
rpc_log_clear_flag(struct nvl_rpc_request *req, struct rpc_log_flag *a)
{
	if (nvl_log_set_flag(a->flag, false) < 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "unknown log flag '%s'", a->flag);
		return;
	}
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("log_clear_flag", rpc_log_clear_flag, struct rpc_log_flag, log_flag_params,
		 NVL_RPC_RUNTIME | NVL_RPC_STARTUP, "Silence debug output of one component.")

static void
rpc_log_get_flags(struct nvl_rpc_request *req, void *unused)
{
	json_t *o = json_object();

	(void)unused;
	for (const struct nvl_log_flag *f = nvl_log_flags(); f; f = f->next)
		json_object_set_new(o, f->name, json_boolean(f->enabled));
	nvl_rpc_result(req, o);
}
NVL_RPC_REGISTER_NOARGS("log_get_flags", rpc_log_get_flags, NVL_RPC_RUNTIME,
			"Components and whether their debug output is enabled.")

static void
rpc_save_config(struct nvl_rpc_request *req, void *unused)
{
	(void)unused;
	nvl_rpc_result(req, nvl_app_save_config());
}
NVL_RPC_REGISTER_NOARGS("save_config", rpc_save_config, NVL_RPC_RUNTIME,
			"The whole configuration as RPC calls (SPDK's save_config shape); "
			"nvlendd -c replays it.")

/* SPDK's rpc.py builds its save_config from these two (python/spdk/rpc/__init__.py). */
static void
rpc_framework_get_subsystems(struct nvl_rpc_request *req, void *unused)
{
	json_t *arr = json_array();

	(void)unused;
	for (struct nvl_subsystem *s = g_subsystems; s; s = s->next)
		json_array_append_new(arr, json_pack("{s:s, s:[]}", "subsystem", s->name,
						     "depends_on"));
	nvl_rpc_result(req, arr);
}
NVL_RPC_REGISTER_NOARGS("framework_get_subsystems", rpc_framework_get_subsystems,
			NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
			"Subsystems in initialization order (SPDK's shape; rpc.py save_config "
			"uses it).")

struct rpc_subsys_name {
	const char *name;
};
static const struct nvl_rpc_param subsys_name_params[] = {
	NVL_RPC_PARAM(struct rpc_subsys_name, name, NVL_RPC_T_STR, true, "subsystem name"),
	NVL_RPC_PARAM_IGNORED("with_batches", NVL_RPC_T_BOOL,
			      "SPDK: group calls into batches; here every call is its own entry"),
};

static void
rpc_framework_get_config(struct nvl_rpc_request *req, struct rpc_subsys_name *a)
{
	for (struct nvl_subsystem *s = g_subsystems; s; s = s->next) {
		json_t *calls;

		if (strcmp(s->name, a->name) != 0)
			continue;
		if (s->write_config == NULL) {
			nvl_rpc_result(req, json_null());
			return;
		}
		calls = json_array();
		s->write_config(calls);
		nvl_rpc_result(req, calls);
		return;
	}
	nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "no subsystem named '%s'", a->name);
}
NVL_RPC_REGISTER("framework_get_config", rpc_framework_get_config, struct rpc_subsys_name,
		 subsys_name_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "The RPC calls that rebuild one subsystem (null if it has no configuration).")

static void
shutdown_msg(void *arg)
{
	(void)arg;
	nvl_app_shutdown(0);
}

static void
rpc_nvlend_shutdown(struct nvl_rpc_request *req, void *unused)
{
	(void)unused;
	nvl_rpc_result_bool(req, true);
	/* after the answer is sent */
	nvl_reactor_msg(nvl_reactor_self(), shutdown_msg, NULL);
}
NVL_RPC_REGISTER_NOARGS("nvlend_shutdown", rpc_nvlend_shutdown, NVL_RPC_RUNTIME,
			"Stop the daemon cleanly (as SIGTERM does).")

struct rpc_kill_args {
	const char *sig_name;
};
static const struct nvl_rpc_param kill_params[] = {
	NVL_RPC_PARAM(struct rpc_kill_args, sig_name, NVL_RPC_T_STR, true,
		      "SIGTERM or SIGINT (SIGKILL is refused)"),
};

static void
rpc_spdk_kill_instance(struct nvl_rpc_request *req, struct rpc_kill_args *a)
{
	if (strcmp(a->sig_name, "SIGTERM") && strcmp(a->sig_name, "SIGINT") &&
	    strcmp(a->sig_name, "TERM") && strcmp(a->sig_name, "INT")) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "unsupported signal %s", a->sig_name);
		return;
	}
	rpc_nvlend_shutdown(req, NULL);
}
NVL_RPC_REGISTER("spdk_kill_instance", rpc_spdk_kill_instance, struct rpc_kill_args,
		 kill_params, NVL_RPC_RUNTIME, "SPDK's name for a clean shutdown.")

static void
rpc_framework_get_reactors(struct nvl_rpc_request *req, void *unused)
{
	json_t *arr = json_array();

	(void)unused;
	for (unsigned i = 0; i < nvl_reactor_count(); i++) {
		struct nvl_reactor_stats s;

		nvl_reactor_get_stats(nvl_reactor_get(i), &s);
		json_array_append_new(
			arr, json_pack("{s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:i, s:i, s:i, s:I, s:I, s:I}",
				       "id", (int)i, "cpu", s.cpu, "tid", s.tid, "loops",
				       (json_int_t)s.loops, "busy_loops", (json_int_t)s.busy_loops,
				       "sleeps", (json_int_t)s.sleeps, "msgs", (json_int_t)s.msgs,
				       "pollers", (int)s.pollers, "fds", (int)s.fds, "queues",
				       (int)s.placed, "busy_ns", (json_int_t)s.busy_ns, "idle_ns",
				       (json_int_t)s.idle_ns, "sleep_ns", (json_int_t)s.sleep_ns));
	}
	nvl_rpc_result(req, json_pack("{s:I, s:I, s:o}", "spin_us",
				      (json_int_t)nvl_reactor_get_spin_us(), "io_sleep_us",
				      (json_int_t)nvl_reactor_get_io_sleep_us(), "reactors", arr));
}
NVL_RPC_REGISTER_NOARGS("framework_get_reactors", rpc_framework_get_reactors,
			NVL_RPC_RUNTIME,
			"Reactors: CPU, thread, loop counters, time busy, spinning idle and asleep "
			"(busy_ns, idle_ns, sleep_ns), pollers, and the queues placed on each "
			"(\"queues\": shm CQs, NVMe/TCP I/O queues, vhost-user-blk queues).")

struct rpc_spin_args {
	uint64_t spin_us;
};
static const struct nvl_rpc_param spin_params[] = {
	NVL_RPC_PARAM(struct rpc_spin_args, spin_us, NVL_RPC_T_U64, true,
		      "busy-poll this many microseconds after the last work before sleeping "
		      "(0 = sleep at once: lowest CPU use, highest latency)"),
};

static void
rpc_framework_set_spin(struct nvl_rpc_request *req, struct rpc_spin_args *a)
{
	if (a->spin_us > 10000000) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "spin_us above 10 s");
		return;
	}
	nvl_reactor_set_spin_us(a->spin_us);
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("framework_set_spin", rpc_framework_set_spin, struct rpc_spin_args,
		 spin_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Adaptive polling threshold of all reactors (the \"delayed on\" knob).")

struct rpc_io_sleep_args {
	uint64_t io_sleep_us;
};
static const struct nvl_rpc_param io_sleep_params[] = {
	NVL_RPC_PARAM(struct rpc_io_sleep_args, io_sleep_us, NVL_RPC_T_U64, true,
		      "while file I/O is in flight and its completions come at least this many "
		      "microseconds apart on average, sleep until the completion instead of "
		      "spinning (0 = always spin for spin_us)"),
};

static void
rpc_framework_set_io_sleep(struct nvl_rpc_request *req, struct rpc_io_sleep_args *a)
{
	if (a->io_sleep_us > 10000000) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "io_sleep_us above 10 s");
		return;
	}
	nvl_reactor_set_io_sleep_us(a->io_sleep_us);
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("framework_set_io_sleep", rpc_framework_set_io_sleep, struct rpc_io_sleep_args,
		 io_sleep_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Sleep instead of spinning while slow file I/O is in flight (all reactors).")

/* SPDK's start-up handshake (nvlendd --wait-for-rpc). Registered for the
 * STARTUP state only, so rpc_get_methods {"current": true} stops listing it
 * once the daemon started (rpc.py load_config relies on that). */
static void
rpc_framework_start_init(struct nvl_rpc_request *req, void *unused)
{
	int rc;

	(void)unused;
	if (g_app.started || g_app.stopping) {
		nvl_rpc_error(req, NVL_RPC_INVALID_STATE, "the framework is already started");
		return;
	}
	rc = app_add_waiter(req);
	if (rc < 0) {
		nvl_rpc_error_errno(req, rc, "framework_start_init");
		return;
	}
	if (!g_app.replayed) {
		/* the -c configuration is still being replayed: start right after it */
		g_app.start_requested = true;
		return;
	}
	NVL_NOTICELOG("framework_start_init: starting");
	app_started(); /* answers req */
}
NVL_RPC_REGISTER_NOARGS("framework_start_init", rpc_framework_start_init, NVL_RPC_STARTUP,
			"SPDK's start-up handshake: a daemon started with --wait-for-rpc applies "
			"its -c configuration, then waits in the start-up state until this call "
			"(answered once started). Callable only then.")

static void
rpc_framework_wait_init(struct nvl_rpc_request *req, void *unused)
{
	int rc;

	(void)unused;
	if (g_app.started) {
		nvl_rpc_result_bool(req, true);
		return;
	}
	rc = app_add_waiter(req);
	if (rc < 0)
		nvl_rpc_error_errno(req, rc, "framework_wait_init");
}
NVL_RPC_REGISTER_NOARGS("framework_wait_init", rpc_framework_wait_init,
			NVL_RPC_STARTUP | NVL_RPC_RUNTIME,
			"Answer true once the daemon has started (its -c configuration applied "
			"and, with --wait-for-rpc, framework_start_init called).")
