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
#include "brick/brick.h"
#include "nvmf/nvmf.h"
#include "reactor/reactor.h"
#include "rpc/rpc.h"
#include "util/fdstore.h"
#include "util/log.h"
#include "util/util.h"
#include "util/version.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define UPGRADE_DELAY_US 100000 /* the answer goes out first */
/* the new worker builds ahead (its configuration, its listeners) at most this long */
#define UPGRADE_AHEAD_MAX_US (5 * 1000000)
#define UPGRADE_DRAIN_MAX_NS (200ULL * 1000000ULL) /* in-flight I/O may take this long */
#define UPGRADE_PARK_MAX_NS (100ULL * 1000000ULL)
#define UPGRADE_EXIT_DELAY_US 50000 /* a quiesced old worker's exit waits this long */

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

/* A thread of the old worker that only has its exit left steps aside: the
 * new worker's reactors are pinned to the same CPUs, and the teardown of a
 * worker's mappings took 20-25 ms of the CPU the new one needed. Lowest
 * priority, any CPU. */
static void
upgrade_step_aside(void)
{
	cpu_set_t all;

	CPU_ZERO(&all);
	for (int c = 0; c < CPU_SETSIZE; c++)
		CPU_SET(c, &all);
	(void)sched_setaffinity(0, sizeof(all), &all);
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
}

/* On every other reactor: stop for good (this process exits right after). */
static void
upgrade_park(void *arg)
{
	(void)arg;
	upgrade_step_aside();
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

/*
 * "One daemon per device" locks (the flock(2) on a file bdev's backing file,
 * a brick's tier directories and slot file) go with the process; the next
 * worker takes them again while this process may still be tearing down
 * (and refused them: the upgrade rolled back). Dropped as the upgrade
 * starts: they keep other daemons off these files, and the next worker,
 * built ahead, takes them while this one still serves (its file bdevs; a
 * brick waits for the hand-over); a rolled-back upgrade restarts this
 * binary, which takes them again.
 */
static void
upgrade_drop_flocks(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);

		if (e->d_name[0] == '.' || *end != '\0' || fd == dirfd(d))
			continue;
		(void)flock((int)fd, LOCK_UN);
	}
	closedir(d);
}

/* every live connection that can move is stopped and kept (transports'
 * suspend ops), the shm queues fetch nothing and what they had in flight is
 * done (or the drain gave up): now the keeper may start the next binary */
static void
upgrade_exit(void)
{
	bool quiesced = upgrade_park_all();

	/* a brick's spare-file pool makes no .spare-* file while the next worker
	 * recovers the fast tier (100 ms at most for the one in progress) */
	if (nvl_brick_pool_quiesce() < 0)
		quiesced = false;   /* the next worker starts once this process is gone */

	/* aside before the keeper hears it: the keeper and then the new worker
	 * wake on this CPU and run at once instead of after this thread */
	upgrade_step_aside();
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
	/* the teardown of this process's mappings (its RAM bdevs, windows) took
	 * 1-3 ms of the CPU the new worker's reactor wakes on: after it runs */
	if (quiesced)
		usleep(UPGRADE_EXIT_DELAY_US);
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

/* The new worker says it is built (a byte on the pipe), or cannot say so (the
 * pipe's end: it did not start ahead, or died), or is too slow: go. */
static struct {
	int fd;
	struct nvl_fdh *fdh;
	struct nvl_timer *timer;
} g_ahead = { .fd = -1 };

static void upgrade_go(void *arg);

static void
upgrade_ahead_end(bool timed_out)
{
	char b = 0;
	ssize_t n = read(g_ahead.fd, &b, 1);

	if (timed_out)
		NVL_WARNLOG("upgrade: the new worker is not built after %u s: handing over anyway",
			    UPGRADE_AHEAD_MAX_US / 1000000);
	else if (n != 1)
		NVL_NOTICELOG("upgrade: the new worker was not started ahead: it starts at the "
			      "hand-over");
	nvl_fd_del(g_ahead.fdh);
	nvl_timer_destroy(g_ahead.timer);
	close(g_ahead.fd);
	g_ahead.fd = -1;
	g_ahead.fdh = NULL;
	g_ahead.timer = NULL;
	upgrade_go(NULL);
}

static void
upgrade_ahead_readable(void *arg, uint32_t events)
{
	(void)arg;
	(void)events;
	upgrade_ahead_end(false);
}

static void
upgrade_ahead_timeout(void *arg)
{
	(void)arg;
	upgrade_ahead_end(true);
}

/* Have the keeper start the new binary ahead; the hand-over begins once it
 * is built. \return 0; -errno (nothing started: the caller goes by a timer). */
static int
upgrade_ahead_start(const char *path)
{
	int pfd[2], rc;

	if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	rc = nvl_fdstore_upgrade_prepare(path, pfd[1]);
	close(pfd[1]);
	if (rc == 0) {
		g_ahead.fd = pfd[0];
		g_ahead.fdh = nvl_fd_add(pfd[0], EPOLLIN, upgrade_ahead_readable, NULL);
		g_ahead.timer = nvl_timer_create(upgrade_ahead_timeout, NULL, UPGRADE_AHEAD_MAX_US, 0);
		if (g_ahead.fdh && g_ahead.timer)
			return 0;
		rc = -ENOMEM;
		nvl_fd_del(g_ahead.fdh);
		nvl_timer_destroy(g_ahead.timer);
		g_ahead.fdh = NULL;
		g_ahead.timer = NULL;
		g_ahead.fd = -1;
	}
	close(pfd[0]);
	return rc;
}

static void
upgrade_go(void *arg)
{
	(void)arg;
	/* NVMe/TCP connections stop at a PDU boundary and go to the store first */
	nvl_nvmf_suspend(upgrade_suspend_services);
}

/*
 * `binary --version` must say it is an nvlendd. Run off the reactor's back:
 * popen() forked this whole worker and waited for the child on reactor 0,
 * which stalled every queue there for 15 ms and more (the largest completion
 * latency hosts saw during an upgrade). posix_spawn() does not copy the
 * worker, and the answer is read when the pipe says so.
 */
struct upgrade_probe {
	struct nvl_rpc_request *req;
	char path[PATH_MAX];
	char out[128];
	size_t len;
	pid_t pid;
	int fd;
	struct nvl_fdh *fdh;
	struct nvl_timer *timer;
};

static void upgrade_probed(struct upgrade_probe *p, bool timed_out);

static void
upgrade_probe_readable(void *arg, uint32_t events)
{
	struct upgrade_probe *p = arg;
	ssize_t n;

	(void)events;
	for (;;) {
		n = read(p->fd, p->out + p->len, sizeof(p->out) - 1 - p->len);
		if (n > 0) {
			p->len += (size_t)n;
			if (p->len < sizeof(p->out) - 1)
				continue;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && errno == EAGAIN) {
			return;
		}
		break;
	}
	upgrade_probed(p, false);   /* EOF, an error, or more than a version line */
}

static void
upgrade_probe_timeout(void *arg)
{
	upgrade_probed(arg, true);
}

static int
upgrade_probe_start(struct upgrade_probe *p)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char *argv[] = { p->path, (char *)"--version", NULL };
	sigset_t none;
	int pfd[2], rc;

	if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	rc = posix_spawn_file_actions_init(&fa);
	if (rc == 0) {
		posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
		posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
		/* not with the reactors' blocked signals */
		sigemptyset(&none);
		posix_spawnattr_init(&attr);
		posix_spawnattr_setsigmask(&attr, &none);
		posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
		rc = posix_spawn(&p->pid, p->path, &fa, &attr, argv, environ);
		posix_spawnattr_destroy(&attr);
		posix_spawn_file_actions_destroy(&fa);
	}
	close(pfd[1]);
	if (rc != 0) {
		close(pfd[0]);
		return -rc;
	}
	p->fd = pfd[0];
	p->fdh = nvl_fd_add(p->fd, EPOLLIN, upgrade_probe_readable, p);
	p->timer = nvl_timer_create(upgrade_probe_timeout, p, 10 * 1000000, 0);
	if (p->fdh == NULL || p->timer == NULL) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		nvl_fd_del(p->fdh);
		nvl_timer_destroy(p->timer);
		close(p->fd);
		return -ENOMEM;
	}
	return 0;
}

/* the version line, or NULL: not an nvlendd */
static const char *
upgrade_probe_version(struct upgrade_probe *p, bool timed_out)
{
	int st = 0;

	if (timed_out)
		kill(p->pid, SIGKILL);
	/* it wrote its line and closed its end: it is exiting */
	while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
		;
	p->out[p->len] = '\0';
	p->out[strcspn(p->out, "\n")] = '\0';
	if (timed_out || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
	    strncmp(p->out, "nvlendd ", 8) != 0)
		return NULL;
	return p->out + 8;
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
	char path[PATH_MAX];
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
	{
		struct upgrade_probe *p = calloc(1, sizeof(*p));

		if (p == NULL) {
			nvl_rpc_error(req, -ENOMEM, "out of memory");
			return;
		}
		p->req = req;
		nvl_strlcpy(p->path, path, sizeof(p->path));
		/* reserve the slot: a second upgrade is refused while this one probes */
		nvl_strlcpy(g_upgrade_binary, path, sizeof(g_upgrade_binary));
		rc = upgrade_probe_start(p);
		if (rc < 0) {
			g_upgrade_binary[0] = '\0';
			nvl_rpc_error(req, rc, "binary %s: cannot run it: %s", path, strerror(-rc));
			free(p);
		}
	}
}

static void
upgrade_probed(struct upgrade_probe *p, bool timed_out)
{
	struct nvl_rpc_request *req = p->req;
	const char *ver;
	int rc;

	nvl_fd_del(p->fdh);
	nvl_timer_destroy(p->timer);
	close(p->fd);
	ver = upgrade_probe_version(p, timed_out);
	if (ver == NULL) {
		g_upgrade_binary[0] = '\0';
		nvl_rpc_error(req, -ENOEXEC, "binary %s: '%s --version' does not answer as an nvlendd%s",
			      p->path, p->path, timed_out ? " (no answer in 10 s)" : "");
		free(p);
		return;
	}
	/* the new binary loads and builds meanwhile (its file bdevs lock their
	 * files: not in the downtime); the hand-over when it is built */
	upgrade_drop_flocks();
	rc = upgrade_ahead_start(p->path);
	if (rc < 0) {
		NVL_WARNLOG("upgrade: cannot have %s started ahead (%s): it starts at the "
			    "hand-over",
			    p->path, strerror(-rc));
		if (nvl_timer_create(upgrade_go, NULL, UPGRADE_DELAY_US, 0) == NULL) {
			g_upgrade_binary[0] = '\0';
			nvl_rpc_error(req, -ENOMEM, "cannot schedule the hand-over");
			free(p);
			return;
		}
	}
	NVL_NOTICELOG("upgrade: to %s (nvlendd %s)%s", p->path, ver,
		      rc < 0 ? " in 100 ms" : ": it is built ahead, then takes over");
	nvl_rpc_result(req, json_pack("{s:s, s:s, s:s, s:i}", "from_version",
				      "nvlend v" NVL_VERSION_STRING, "to_version", ver, "binary",
				      p->path, "pid", (int)getpid()));
	free(p);
}
NVL_RPC_REGISTER("nvlend_upgrade", rpc_nvlend_upgrade, struct rpc_upgrade_args, upgrade_params,
		 NVL_RPC_RUNTIME,
		 "Replace the worker with another nvlendd binary (or a fresh start of its own): "
		 "checks that `BINARY --version` answers as an nvlendd, answers, has the keeper "
		 "start the new binary ahead (it loads and builds what it can of the configuration "
		 "while this worker serves: bdevs, subsystems, held listeners), then, once it is "
		 "built (5 s at most), hands over: "
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
