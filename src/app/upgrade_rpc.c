/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Upgrade to a new nvlendd binary without the hosts reconnecting (issue 16,
 * the planned half of crash recovery): nvlend_upgrade checks the binary,
 * has the keeper start it ahead, answers, and a moment later hands over:
 * the live connections that can move are kept, the shm queues stop fetching
 * and drain, the other reactors park, the keeper is told which binary comes
 * next (app/keeper.h) and this worker exits at once, leaving every
 * descriptor and every kept state in the store exactly as a crash would, so
 * the new worker takes them back the way a restarted one does (shm
 * controllers without a reconnect, RAM bdevs with their contents, listening
 * sockets with their backlog). nvlend_get_upgrade reports, per function, the
 * time from the old worker's stop to the new one serving it.
 *
 * Owns the path of the binary asked for, until the hand-over. Runs on
 * reactor 0 (RPC).
 */
#include "app/app.h"
#include "app/keeper.h"
#include "bdev/bdev.h"
#include "nvmf/nvmf.h"
#include "reactor/reactor.h"
#include "rpc/rpc.h"
#include "util/fdstore.h"
#include "util/log.h"
#include "util/util.h"
#include "util/version.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define UPGRADE_DELAY_US 100000 /* the answer goes out first */
#define UPGRADE_DRAIN_MAX_NS (200ULL * 1000000ULL) /* in-flight I/O may take this long */
#define UPGRADE_PARK_MAX_NS (100ULL * 1000000ULL)

static char g_upgrade_binary[PATH_MAX];
static uint64_t g_stop_ns;    /* when the shm queues stopped fetching */
static uint64_t g_drain_until;
static unsigned g_parked;     /* reactors parked for good (atomic) */

static uint64_t
upgrade_bdev_inflight(void)
{
	uint64_t n = 0;

	for (struct nvl_bdev *b = nvl_bdev_first(); b; b = nvl_bdev_next(b))
		n += nvl_bdev_inflight(b);
	return n;
}

/* On every other reactor: stop for good (this process exits right after). */
static void
upgrade_park(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&g_parked, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();
}

/* Park every other reactor; \return true when all are parked and no bdev I/O
 * of this worker is in flight: nothing of it can touch a queue, a window or a
 * kept state any more, so the next worker may start before this one is gone. */
static bool
upgrade_park_all(void)
{
	struct nvl_reactor *self = nvl_reactor_self();
	unsigned others = 0, sent = 0;
	uint64_t until;

	for (unsigned i = 0; i < nvl_reactor_count(); i++) {
		struct nvl_reactor *r = nvl_reactor_get(i);

		if (r == self)
			continue;
		others++;
		sent += nvl_reactor_msg(r, upgrade_park, NULL) == 0;
	}
	if (sent != others)
		return false;
	until = nvl_now_ns() + UPGRADE_PARK_MAX_NS;
	while (__atomic_load_n(&g_parked, __ATOMIC_SEQ_CST) < others && nvl_now_ns() < until)
		usleep(10);
	return __atomic_load_n(&g_parked, __ATOMIC_SEQ_CST) == others &&
	       upgrade_bdev_inflight() == 0;
}

/* every live connection that can move is stopped and kept (transports'
 * suspend ops), the shm queues fetch nothing and what they had in flight is
 * done (or the drain gave up): now the keeper may start the next binary */
static void
upgrade_exit(void)
{
	bool quiesced = upgrade_park_all();

	if (nvl_fdstore_upgrade(g_upgrade_binary, "nvlend v" NVL_VERSION_STRING, quiesced,
				g_stop_ns) < 0) {
		/* the kept connections stopped reading and cannot serve here any more:
		 * die as a kill -9 would, the keeper starts this binary again and it
		 * takes them back */
		NVL_ERRLOG("upgrade: cannot tell the keeper; restarting this worker instead");
		kill(getpid(), SIGKILL);
		_exit(NVL_KEEPER_EXIT_UPGRADE);
	}
	NVL_NOTICELOG("upgrade: handing over to %s (%s)", g_upgrade_binary,
		      quiesced ? "stopped for good: it starts at once"
			       : "I/O still in flight: it starts once this process is gone");
	/* as a crash leaves it: everything stays in the store for the new worker */
	_exit(NVL_KEEPER_EXIT_UPGRADE);
}

static bool
upgrade_drained(void *arg)
{
	(void)arg;
	return upgrade_bdev_inflight() == 0 || nvl_now_ns() >= g_drain_until;
}

/* the shm queues stop fetching; what they (and vhost-user queues) have in
 * flight completes; then the hand-over */
static void
upgrade_quiesce(void)
{
	g_stop_ns = nvl_now_ns();
	g_drain_until = g_stop_ns + UPGRADE_DRAIN_MAX_NS;
	nvl_nvmf_quiesce();
	if (nvl_reactor_drain_fini(upgrade_drained, NULL, upgrade_exit, 50) < 0)
		upgrade_exit();
}

/* then the other services' live connections (NBD) */
static void
upgrade_suspend_services(void)
{
	nvl_fdstore_suspend(upgrade_quiesce);
}

static void
upgrade_go(void *arg)
{
	(void)arg;
	/* NVMe/TCP connections stop at a PDU boundary and go to the store first */
	nvl_nvmf_suspend(upgrade_suspend_services);
}

/* `binary --version` must say it is an nvlendd; its version into ver. */
static int
upgrade_probe(const char *binary, char *ver, size_t len)
{
	char cmd[PATH_MAX + 32], line[128] = "";
	FILE *f;
	int st;

	if (strchr(binary, '\'') != NULL)
		return -EINVAL;
	snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", binary);
	f = popen(cmd, "r");
	if (f == NULL)
		return -errno;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	st = pclose(f);
	line[strcspn(line, "\n")] = '\0';
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || strncmp(line, "nvlendd ", 8) != 0)
		return -ENOEXEC;
	nvl_strlcpy(ver, line + 8, len);
	return 0;
}

struct rpc_upgrade_args {
	const char *binary;
};
static const struct nvl_rpc_param upgrade_params[] = {
	NVL_RPC_PARAM(struct rpc_upgrade_args, binary, NVL_RPC_T_STR, false,
		      "absolute path of the nvlendd to run (default: this worker's own binary, "
		      "as it is on disk now)"),
};

static void
rpc_nvlend_upgrade(struct nvl_rpc_request *req, struct rpc_upgrade_args *a)
{
	char path[PATH_MAX], ver[96];
	ssize_t n;
	int rc;

	if (getenv(NVL_KEEPER_ENV) == NULL) {
		nvl_rpc_error(req, -EOPNOTSUPP,
			      "upgrade needs nvlendd's keeper, which holds the descriptors across the "
			      "hand-over (this daemon runs %s)",
			      getenv("NOTIFY_SOCKET") ? "under systemd: use systemctl restart after "
							"installing the new binary"
						      : "with --no-keeper");
		return;
	}
	if (g_upgrade_binary[0]) {
		nvl_rpc_error(req, -EBUSY, "an upgrade to %s is already under way", g_upgrade_binary);
		return;
	}
	if (a->binary == NULL) {
		n = readlink("/proc/self/exe", path, sizeof(path) - 1);
		if (n < 0) {
			nvl_rpc_error(req, -errno, "cannot find this worker's binary: %s",
				      strerror(errno));
			return;
		}
		path[n] = '\0';
	} else if (a->binary[0] != '/' || realpath(a->binary, path) == NULL) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "binary '%s': %s", a->binary,
			      a->binary[0] != '/' ? "give an absolute path" : strerror(errno));
		return;
	}
	if (access(path, X_OK) < 0) {
		nvl_rpc_error(req, -errno, "binary %s: %s", path, strerror(errno));
		return;
	}
	rc = upgrade_probe(path, ver, sizeof(ver));
	if (rc < 0) {
		nvl_rpc_error(req, rc, "binary %s: '%s --version' does not answer as an nvlendd", path,
			      path);
		return;
	}
	nvl_strlcpy(g_upgrade_binary, path, sizeof(g_upgrade_binary));
	if (nvl_timer_create(upgrade_go, NULL, UPGRADE_DELAY_US, 0) == NULL) {
		g_upgrade_binary[0] = '\0';
		nvl_rpc_error(req, -ENOMEM, "cannot schedule the hand-over");
		return;
	}
	/* the new binary loads meanwhile and waits for the store */
	rc = nvl_fdstore_upgrade_prepare(path);
	if (rc < 0)
		NVL_WARNLOG("upgrade: cannot have %s started ahead (%s): it starts at the "
			    "hand-over",
			    path, strerror(-rc));
	NVL_NOTICELOG("upgrade: to %s (nvlendd %s) in %u ms", path, ver, UPGRADE_DELAY_US / 1000);
	nvl_rpc_result(req, json_pack("{s:s, s:s, s:s, s:i}", "from_version",
				      "nvlend v" NVL_VERSION_STRING, "to_version", ver, "binary", path,
				      "pid", (int)getpid()));
}
NVL_RPC_REGISTER("nvlend_upgrade", rpc_nvlend_upgrade, struct rpc_upgrade_args, upgrade_params,
		 NVL_RPC_RUNTIME,
		 "Replace the worker with another nvlendd binary (or a fresh start of its own): "
		 "checks that `BINARY --version` answers as an nvlendd, answers, has the keeper "
		 "start the new binary ahead (it loads and waits), then hands over within 100 ms: "
		 "the shm queues stop fetching and finish what they took, and the new worker "
		 "takes every kept descriptor and state, as after a crash (shm hosts do not "
		 "reconnect), without waiting for the old process to end; first every NVMe/TCP "
		 "connection stops at a PDU boundary and is handed over with its state (no "
		 "reconnect, same controller ID), and every NBD connection between two requests. "
		 "If the new worker cannot "
		 "start or ends before it serves, the keeper starts the old binary again. Needs "
		 "the keeper (not --no-keeper, not systemd). nvlend_get_upgrade reports the "
		 "downtime per function.")

static void
rpc_nvlend_get_upgrade(struct nvl_rpc_request *req, void *unused)
{
	static struct nvl_handover_entry e[512];
	const char *from = NULL;
	bool rolled_back = false;
	unsigned n, i;
	json_t *arr, *o;

	(void)unused;
	if (!nvl_handover_active(&from, &rolled_back)) {
		nvl_rpc_result(req, json_pack("{s:b, s:s, s:i}", "upgraded", false, "version",
					      "nvlend v" NVL_VERSION_STRING, "pid", (int)getpid()));
		return;
	}
	n = nvl_handover_report(e, NVL_ARRAY_SIZE(e));
	arr = json_array();
	for (i = 0; i < NVL_MIN(n, (unsigned)NVL_ARRAY_SIZE(e)); i++)
		json_array_append_new(arr, json_pack("{s:s, s:I}", "function", e[i].what,
						     "downtime_us",
						     (json_int_t)(e[i].downtime_ns / 1000)));
	o = json_pack("{s:b, s:b, s:s, s:s, s:i, s:o}", "upgraded", !rolled_back, "rolled_back",
		      rolled_back, "from_version", from ? from : "", "version",
		      "nvlend v" NVL_VERSION_STRING, "pid", (int)getpid(), "functions", arr);
	nvl_rpc_result(req, o);
}
NVL_RPC_REGISTER_NOARGS("nvlend_get_upgrade", rpc_nvlend_get_upgrade,
			NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
			"The last hand-over to this worker (nvlend_upgrade): from which version, "
			"whether it was rolled back to the old binary, and per function (the daemon "
			"serving RPC, each shm controller, each vhost-user queue) the time from the "
			"old worker's stop to this one serving it. {\"upgraded\": false, \"version\", "
			"\"pid\"} when this worker was not started by an upgrade (e.g. the keeper "
			"restarted it after a crash).")
