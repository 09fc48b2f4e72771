/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Upgrade to a new nvlendd binary without the hosts reconnecting (issue 16,
 * the planned half of crash recovery): nvlend_upgrade checks the binary,
 * answers, and a moment later hands over: the keeper is told which binary
 * comes next (app/keeper.h) and this worker exits at once, leaving every
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

static char g_upgrade_binary[PATH_MAX];

/* every live connection that can move is stopped and kept (transports'
 * suspend ops): now the keeper may start the next binary */
static void
upgrade_exit(void)
{
	if (nvl_fdstore_upgrade(g_upgrade_binary, "nvlend v" NVL_VERSION_STRING) < 0) {
		/* the kept connections stopped reading and cannot serve here any more:
		 * die as a kill -9 would, the keeper starts this binary again and it
		 * takes them back */
		NVL_ERRLOG("upgrade: cannot tell the keeper; restarting this worker instead");
		kill(getpid(), SIGKILL);
		_exit(NVL_KEEPER_EXIT_UPGRADE);
	}
	NVL_NOTICELOG("upgrade: handing over to %s", g_upgrade_binary);
	/* as a crash leaves it: everything stays in the store for the new worker */
	_exit(NVL_KEEPER_EXIT_UPGRADE);
}

/* then the other services' live connections (NBD) */
static void
upgrade_suspend_services(void)
{
	nvl_fdstore_suspend(upgrade_exit);
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
	NVL_NOTICELOG("upgrade: to %s (nvlendd %s) in %u ms", path, ver, UPGRADE_DELAY_US / 1000);
	nvl_rpc_result(req, json_pack("{s:s, s:s, s:s, s:i}", "from_version",
				      "nvlend v" NVL_VERSION_STRING, "to_version", ver, "binary", path,
				      "pid", (int)getpid()));
}
NVL_RPC_REGISTER("nvlend_upgrade", rpc_nvlend_upgrade, struct rpc_upgrade_args, upgrade_params,
		 NVL_RPC_RUNTIME,
		 "Replace the worker with another nvlendd binary (or a fresh start of its own): "
		 "checks that `BINARY --version` answers as an nvlendd, answers, then hands over "
		 "within 100 ms: the keeper starts the new binary with every kept descriptor and "
		 "state, as after a crash (shm hosts do not reconnect); first every NVMe/TCP "
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
