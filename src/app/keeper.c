/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The keeper (see keeper.h): a supervisor that stores the worker's
 * descriptors and restarts it. Kept small on purpose: a table of named
 * descriptors, one datagram socket, one signalfd, fork+exec.
 */
#include "app/keeper.h"
#include "util/fdstore.h"
#include "util/log.h"
#include "util/sock.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEEPER_MAX_FDS_PER_MSG 16
#define KEEPER_MSG_MAX 4096
#define KEEPER_BACKOFF_MIN_MS 100
#define KEEPER_BACKOFF_MAX_MS 5000
#define KEEPER_HANDOVER_FDS NVL_SOCK_MAX_FDS /* descriptors per hand-over message */
#define KEEPER_HANDOVER_MSG 16384

struct keeper_fd {
	char name[NVL_FDSTORE_NAME_MAX + 1];
	int fd;
	bool sent;   /* in the snapshot the worker started ahead has */
};

struct keeper {
	const struct nvl_keeper_opts *o;
	struct keeper_fd *kept;
	unsigned nkept, max_fds;
	int notify_fd, sig_fd;
	struct sockaddr_un notify_addr;
	pid_t worker;
	bool ready, stopping;
	int last_status;              /* exit status for main() */
	int last_signal;              /* the signal the last worker died of, 0 */
	uint64_t *deaths;             /* ring of death times (ms), max_restarts + 1 */
	unsigned ndeaths, death_next;
	unsigned backoff_ms;
	unsigned restarts;            /* workers started after the first */
	uint64_t started_us;          /* when the keeper started, Unix time */
	/* upgrade: argv[0] is the binary started (a copy of worker_argv whose
	 * first element an upgrade replaces) */
	char **argv;
	char *upgrade_path;           /* asked by the worker, not started yet */
	char upgrade_from[64];
	uint64_t upgrade_t0_ns;
	char *prev_binary;            /* while upgrading: what to roll back to */
	bool upgrading, rolled_back;
	/* a worker of standby_path started ahead of an upgrade (UPGRADE_PREPARE):
	 * it waits on standby_fd for the store and the environment */
	pid_t standby;
	int standby_fd;
	char *standby_path;
	bool standby_ahead;           /* it has a snapshot of the store and builds */
	char (*gone)[NVL_FDSTORE_NAME_MAX + 1]; /* removed after that snapshot */
	unsigned ngone;
	pid_t retiring;               /* stopped for good and handed over; exits alone */
};

static void keeper_take_over(struct keeper *k);
static void keeper_standby_start(struct keeper *k, const char *path, int ready_fd);

static uint64_t
keeper_now_ms(void)
{
	return nvl_now_ns() / 1000000;
}

/* ---- the store ------------------------------------------------------------ */

static void
keeper_drop(struct keeper *k, unsigned i)
{
	if (k->standby_ahead && k->kept[i].sent) {
		void *v = realloc(k->gone, sizeof(*k->gone) * (k->ngone + 1));

		if (v == NULL) {
			NVL_ERRLOG("keeper: out of memory: the worker started ahead is dropped");
			kill(k->standby, SIGKILL);   /* reaped as a standby that ended */
			k->standby_ahead = false;
		} else {
			k->gone = v;
			memcpy(k->gone[k->ngone++], k->kept[i].name, sizeof(k->kept[i].name));
		}
	}
	close(k->kept[i].fd);
	k->kept[i] = k->kept[--k->nkept];
}

static void
keeper_store(struct keeper *k, const char *name, int fd)
{
	for (unsigned i = 0; i < k->nkept; i++) {
		if (strcmp(k->kept[i].name, name) == 0) {
			NVL_WARNLOG("keeper: '%s' stored again: the older descriptor is dropped", name);
			keeper_drop(k, i);
			break;
		}
	}
	if (k->nkept == k->max_fds) {
		NVL_ERRLOG("keeper: store full (%u descriptors): '%s' not kept", k->max_fds, name);
		close(fd);
		return;
	}
	nvl_strlcpy(k->kept[k->nkept].name, name, sizeof(k->kept[k->nkept].name));
	k->kept[k->nkept].fd = fd;
	k->kept[k->nkept].sent = false;
	k->nkept++;
}

static void
keeper_remove(struct keeper *k, const char *name)
{
	for (unsigned i = 0; i < k->nkept; i++) {
		if (strcmp(k->kept[i].name, name) == 0) {
			keeper_drop(k, i);
			return;
		}
	}
}

/* ---- messages from the worker ------------------------------------------------ */

/* Value of KEY=VALUE in a newline-separated message, or NULL. */
static const char *
keeper_field(const char *msg, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);

	for (const char *p = msg; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			const char *v = p + klen + 1, *e = strchr(v, '\n');
			size_t n = e ? (size_t)(e - v) : strlen(v);

			if (n >= len)
				return NULL;
			memcpy(buf, v, n);
			buf[n] = '\0';
			return buf;
		}
	}
	return NULL;
}

static void
keeper_handle(struct keeper *k, const char *msg, int *fds, unsigned nfds)
{
	char name[NVL_FDSTORE_NAME_MAX + 2], v[256];
	bool named = keeper_field(msg, "FDNAME", name, sizeof(name)) && nvl_fdstore_name_ok(name);

	if (keeper_field(msg, "FDSTORE", v, sizeof(v)) && strcmp(v, "1") == 0) {
		if (!named || nfds != 1) {
			NVL_WARNLOG("keeper: FDSTORE needs one descriptor and a valid FDNAME");
		} else {
			keeper_store(k, name, fds[0]);
			nfds = 0;   /* kept */
		}
	}
	if (keeper_field(msg, "FDSTOREREMOVE", v, sizeof(v)) && strcmp(v, "1") == 0 && named)
		keeper_remove(k, name);
	if (keeper_field(msg, "READY", v, sizeof(v)) && strcmp(v, "1") == 0) {
		k->ready = true;
		k->backoff_ms = 0;
		k->rolled_back = false; /* told to the worker it started; not to later ones */
		if (k->upgrading) {
			NVL_NOTICELOG("keeper: worker %d of %s is serving: upgrade done",
				      (int)k->worker, k->argv[0]);
			free(k->prev_binary);
			k->prev_binary = NULL;
			k->upgrading = false;
		}
	}
	{
		char path[PATH_MAX];

		if (keeper_field(msg, "UPGRADE_PREPARE", path, sizeof(path))) {
			if (path[0] != '/' || access(path, X_OK) < 0)
				NVL_WARNLOG("keeper: '%s' not started ahead: not an executable "
					    "absolute path", path);
			else if (!k->stopping)
				keeper_standby_start(k, path, nfds == 1 ? fds[0] : -1);
		}
		if (keeper_field(msg, "UPGRADE", path, sizeof(path))) {
			if (path[0] != '/' || access(path, X_OK) < 0) {
				NVL_WARNLOG("keeper: upgrade to '%s' refused: not an executable "
					    "absolute path", path);
			} else {
				uint64_t now = nvl_now_ns(), stop = 0;

				free(k->upgrade_path);
				k->upgrade_path = strdup(path);
				/* the downtime counts from when the worker stopped serving */
				if (keeper_field(msg, "STOPPED_NS", v, sizeof(v)))
					stop = strtoull(v, NULL, 10);
				k->upgrade_t0_ns = stop && stop <= now && now - stop < 10000000000ULL
							   ? stop : now;
				if (!keeper_field(msg, "VERSION", k->upgrade_from,
						  sizeof(k->upgrade_from)))
					k->upgrade_from[0] = '\0';
				if (k->upgrade_path && !k->stopping &&
				    keeper_field(msg, "QUIESCED", v, sizeof(v)) && strcmp(v, "1") == 0)
					keeper_take_over(k);
			}
		}
	}
	if (keeper_field(msg, "STATUS", v, sizeof(v)))
		NVL_NOTICELOG("keeper: worker %d: %s", (int)k->worker, v);
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
}

static void
keeper_recv(struct keeper *k)
{
	for (;;) {
		char buf[KEEPER_MSG_MAX + 1];
		union {
			char b[CMSG_SPACE(sizeof(int) * KEEPER_MAX_FDS_PER_MSG) +
			       CMSG_SPACE(sizeof(struct ucred))];
			struct cmsghdr align;
		} u;
		struct iovec iov = { .iov_base = buf, .iov_len = KEEPER_MSG_MAX };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
				     .msg_controllen = sizeof(u.b) };
		int fds[KEEPER_MAX_FDS_PER_MSG];
		unsigned nfds = 0;
		struct ucred cred = { .pid = 0 };
		ssize_t n = recvmsg(k->notify_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET)
				continue;
			if (c->cmsg_type == SCM_RIGHTS) {
				unsigned m = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

				memcpy(fds + nfds, CMSG_DATA(c),
				       sizeof(int) * NVL_MIN(m, KEEPER_MAX_FDS_PER_MSG - nfds));
				nfds += NVL_MIN(m, KEEPER_MAX_FDS_PER_MSG - nfds);
			} else if (c->cmsg_type == SCM_CREDENTIALS) {
				memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			}
		}
		buf[n] = '\0';
		/* only our worker speaks to us; a truncated message is not trusted */
		if (cred.pid != k->worker || k->worker <= 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
			NVL_WARNLOG("keeper: ignored a notification from pid %d", (int)cred.pid);
			for (unsigned i = 0; i < nfds; i++)
				close(fds[i]);
			continue;
		}
		keeper_handle(k, buf, fds, nfds);
	}
}

/* ---- the worker ----------------------------------------------------------------- */

/* The environment a worker starts with beyond the store: set(arg, key, value)
 * for each variable, value NULL for one that must not be set. */
static void
keeper_env(struct keeper *k, void (*set)(void *arg, const char *key, const char *val), void *arg)
{
	char num[32];
	bool up = k->upgrading || k->rolled_back;

	snprintf(num, sizeof(num), "%u", k->restarts);
	set(arg, NVL_KEEPER_RESTARTS_ENV, num);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)k->started_us);
	set(arg, NVL_KEEPER_STARTED_ENV, num);
	snprintf(num, sizeof(num), "%d", k->last_signal);
	set(arg, NVL_FDSTORE_DEATH_ENV, k->last_signal ? num : NULL);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)k->upgrade_t0_ns);
	set(arg, NVL_KEEPER_UPGRADE_T0_ENV, up ? num : NULL);
	set(arg, NVL_KEEPER_UPGRADE_FROM_ENV, up ? k->upgrade_from : NULL);
	set(arg, NVL_KEEPER_UPGRADE_ROLLBACK_ENV, up && k->rolled_back ? "1" : NULL);
}

static void
keeper_setenv(void *arg, const char *key, const char *val)
{
	(void)arg;
	if (val)
		setenv(key, val, 1);
	else
		unsetenv(key);
}

/* In the child: stored descriptors at 3.., the protocol's environment, exec.
 * A standby (standby_sock >= 0) gets neither: they come at its hand-over. */
static void __attribute__((noreturn))
keeper_exec_worker(struct keeper *k, int errpipe, const char *path, int standby_sock)
{
	char num[32], *names;
	size_t len = 1;
	sigset_t none;
	int err;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	unsetenv("LISTEN_PID");
	setenv("NOTIFY_SOCKET", k->notify_addr.sun_path, 1);
	snprintf(num, sizeof(num), "%d", (int)getppid());
	setenv(NVL_KEEPER_ENV, num, 1);
	if (standby_sock >= 0) {
		if (fcntl(standby_sock, F_SETFD, 0) < 0)
			goto fail;
		snprintf(num, sizeof(num), "%d", standby_sock);
		setenv(NVL_FDSTORE_STANDBY_ENV, num, 1);
		keeper_env(k, keeper_setenv, NULL); /* replaced at the hand-over */
		k->argv[0] = (char *)path;
		execv(path, k->argv);
		goto fail;
	}
	unsetenv(NVL_FDSTORE_STANDBY_ENV);
	/* park every descriptor above the target range, then move it in place */
	for (unsigned i = 0; i < k->nkept; i++) {
		int fd = fcntl(k->kept[i].fd, F_DUPFD, (int)(3 + k->nkept + 3));

		if (fd < 0)
			goto fail;
		k->kept[i].fd = fd;
		len += strlen(k->kept[i].name) + 1;
	}
	names = malloc(len);
	if (names == NULL)
		goto fail;
	len = 0;
	for (unsigned i = 0; i < k->nkept; i++) {
		size_t n = strlen(k->kept[i].name);

		if (dup2(k->kept[i].fd, (int)(3 + i)) < 0)
			goto fail;   /* dup2's result has FD_CLOEXEC clear */
		if (i > 0)
			names[len++] = ':';
		memcpy(names + len, k->kept[i].name, n);
		len += n;
	}
	names[len] = '\0';
	if (k->nkept > 0) {
		snprintf(num, sizeof(num), "%u", k->nkept);
		setenv("LISTEN_FDS", num, 1);
		setenv("LISTEN_FDNAMES", names, 1);
		snprintf(num, sizeof(num), "%d", (int)getpid());
		setenv("LISTEN_PID", num, 1);
	}
	keeper_env(k, keeper_setenv, NULL);
	execv(path, k->argv);
fail:
	err = errno;
	(void)!write(errpipe, &err, sizeof(err));
	_exit(127);
}

/* fork + exec path; \return the child's pid once the exec succeeded, -errno */
static pid_t
keeper_fork(struct keeper *k, const char *path, int standby_sock)
{
	int p[2], err = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		err = errno;
		close(p[0]);
		close(p[1]);
		return -err;
	}
	if (pid == 0) {
		close(p[0]);
		keeper_exec_worker(k, p[1], path, standby_sock);
	}
	close(p[1]);
	/* the pipe closes on a successful exec; an errno arrives otherwise */
	do {
		n = read(p[0], &err, sizeof(err));
	} while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n == (ssize_t)sizeof(err)) {
		waitpid(pid, NULL, 0);
		NVL_ERRLOG("keeper: cannot start %s: %s", path, strerror(err));
		return -err;
	}
	return pid;
}

/* ---- a worker started ahead (upgrade) --------------------------------------------------------- */

static void
keeper_standby_forget(struct keeper *k)
{
	if (k->standby_fd >= 0)
		close(k->standby_fd);
	k->standby_fd = -1;
	k->standby = 0;
	free(k->standby_path);
	k->standby_path = NULL;
	k->standby_ahead = false;
	free(k->gone);
	k->gone = NULL;
	k->ngone = 0;
}

static void
keeper_standby_drop(struct keeper *k, const char *why)
{
	if (k->standby <= 0)
		return;
	NVL_NOTICELOG("keeper: worker %d started ahead is not used (%s)", (int)k->standby, why);
	kill(k->standby, SIGKILL);
	waitpid(k->standby, NULL, 0);
	keeper_standby_forget(k);
}

static int
keeper_send(int s, const char *msg, size_t len, const int *fds, unsigned nfds)
{
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	ssize_t n = nvl_sock_send_fds(s, &iov, 1, fds, nfds, 0);

	return n < 0 ? (int)n : 0;
}

/* "F" messages: the stored descriptors not sent yet (all: unsent_only false). */
static int
keeper_send_store(struct keeper *k, char *msg, bool unsent_only)
{
	int rc = 0;

	for (unsigned i = 0; i < k->nkept && rc == 0;) {
		int fds[KEEPER_HANDOVER_FDS];
		unsigned n = 0;
		size_t len = 1;

		msg[0] = 'F';
		for (; i < k->nkept && n < KEEPER_HANDOVER_FDS &&
		       len + strlen(k->kept[i].name) + 2 < KEEPER_HANDOVER_MSG;
		     i++) {
			size_t l = strlen(k->kept[i].name);

			if (unsent_only && k->kept[i].sent)
				continue;
			msg[len++] = '\n';
			memcpy(msg + len, k->kept[i].name, l);
			len += l;
			fds[n++] = k->kept[i].fd;
			k->kept[i].sent = true;
		}
		if (n)
			rc = keeper_send(k->standby_fd, msg, len, fds, n);
	}
	return rc;
}

/*
 * Start path ahead: it loads, takes a snapshot of the store ("F" messages,
 * then "A" with the worker's ready pipe) and builds what it can while the
 * worker serves; at the hand-over it gets what changed since and its
 * environment. ready_fd (or -1) is the caller's: not closed here.
 */
static void
keeper_standby_start(struct keeper *k, const char *path, int ready_fd)
{
	struct timeval tv = { .tv_sec = 2 };
	char *msg;
	int sv[2], rc;
	pid_t pid;

	keeper_standby_drop(k, "another upgrade was asked for");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		NVL_WARNLOG("keeper: cannot start %s ahead: %s", path, strerror(errno));
		return;
	}
	k->standby_path = strdup(path);
	pid = k->standby_path ? keeper_fork(k, path, sv[1]) : -ENOMEM;
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		free(k->standby_path);
		k->standby_path = NULL;
		return;
	}
	k->standby = pid;
	k->standby_fd = sv[0];
	setsockopt(k->standby_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	msg = malloc(KEEPER_HANDOVER_MSG);
	for (unsigned i = 0; i < k->nkept; i++)
		k->kept[i].sent = false;
	rc = msg ? keeper_send_store(k, msg, false) : -ENOMEM;
	if (rc == 0)
		rc = keeper_send(k->standby_fd, "A", 1, &ready_fd, ready_fd >= 0 ? 1 : 0);
	free(msg);
	if (rc < 0) {
		NVL_WARNLOG("keeper: cannot give the store to worker %d started ahead: %s", (int)pid,
			    strerror(-rc));
		keeper_standby_drop(k, "no snapshot");
		return;
	}
	k->standby_ahead = true;
	NVL_NOTICELOG("keeper: worker %d of %s started ahead with %u stored descriptor(s): it "
		      "builds while the worker serves",
		      (int)pid, path, k->nkept);
}

struct keeper_envmsg {
	char *buf;
	size_t len, cap;
	bool full;
};

static void
keeper_envmsg_add(void *arg, const char *key, const char *val)
{
	struct keeper_envmsg *m = arg;
	int n = snprintf(m->buf + m->len, m->cap - m->len, "\n%s%s%s", key, val ? "=" : "",
			 val ? val : "");

	if (n < 0 || (size_t)n >= m->cap - m->len)
		m->full = true;
	else
		m->len += (size_t)n;
}

/*
 * Give the store to the worker started ahead, which becomes the worker: the
 * stored descriptors ("F" messages: names, one per line, with the
 * descriptors), then its environment ("E": KEY=VALUE or KEY to unset, one per
 * line). \return 0; -errno (the standby is then dropped).
 */
static int
keeper_handover(struct keeper *k)
{
	struct timeval tv = { .tv_sec = 2 };
	struct keeper_envmsg m;
	char *msg = malloc(KEEPER_HANDOVER_MSG);
	int rc = 0;

	if (msg == NULL)
		return -ENOMEM;
	/* a standby that does not read within 2 s is not waited for */
	setsockopt(k->standby_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* one that has a snapshot gets what changed since: removed names ("R"),
	 * then the descriptors stored after it */
	for (unsigned i = 0; k->standby_ahead && i < k->ngone && rc == 0;) {
		size_t len = 1;

		msg[0] = 'R';
		for (; i < k->ngone && len + strlen(k->gone[i]) + 2 < KEEPER_HANDOVER_MSG; i++) {
			msg[len++] = '\n';
			memcpy(msg + len, k->gone[i], strlen(k->gone[i]));
			len += strlen(k->gone[i]);
		}
		rc = keeper_send(k->standby_fd, msg, len, NULL, 0);
	}
	if (rc == 0)
		rc = keeper_send_store(k, msg, k->standby_ahead);
	if (rc == 0) {
		m = (struct keeper_envmsg){ .buf = msg, .len = 1, .cap = KEEPER_HANDOVER_MSG };
		msg[0] = 'E';
		keeper_env(k, keeper_envmsg_add, &m);
		rc = m.full ? -EMSGSIZE : keeper_send(k->standby_fd, msg, m.len, NULL, 0);
	}
	free(msg);
	if (rc < 0) {
		NVL_ERRLOG("keeper: cannot hand the store to worker %d: %s", (int)k->standby,
			   strerror(-rc));
		keeper_standby_drop(k, "the hand-over failed");
		return rc;
	}
	NVL_NOTICELOG("keeper: worker %d (started ahead) takes over with %u stored descriptor(s)",
		      (int)k->standby, k->nkept);
	k->worker = k->standby;
	k->ready = false;
	keeper_standby_forget(k);
	return 0;
}

/* Start the worker: the one started ahead when it runs the same binary
 * (it has loaded already), else a new process. \return 0 or -errno. */
static int
keeper_spawn(struct keeper *k)
{
	pid_t pid;

	if (k->standby > 0) {
		/* one built ahead takes over an upgrade only, not a crash's store */
		if (strcmp(k->standby_path, k->argv[0]) == 0 &&
		    (!k->standby_ahead || k->upgrading) && keeper_handover(k) == 0)
			return 0;
		keeper_standby_drop(k, k->upgrading || !k->standby_ahead
					       ? "the next worker runs another binary"
					       : "the worker crashed: a new one starts from the store");
	}
	pid = keeper_fork(k, k->argv[0], -1);
	if (pid < 0) {
		k->worker = 0;
		return (int)pid;
	}
	k->worker = pid;
	k->ready = false;
	NVL_NOTICELOG("keeper: worker %d started with %u stored descriptor(s)", (int)pid,
		      k->nkept);
	return 0;
}

/* A death: may we restart? Records it, false when there were too many. */
static bool
keeper_may_restart(struct keeper *k)
{
	unsigned slots = k->o->max_restarts ? k->o->max_restarts : 10;
	uint64_t window = k->o->restart_window_ms ? k->o->restart_window_ms : 60000;
	uint64_t now = keeper_now_ms();

	k->deaths[k->death_next] = now;
	k->death_next = (k->death_next + 1) % (slots + 1);
	if (k->ndeaths < slots + 1)
		k->ndeaths++;
	/* the oldest of the last slots+1 deaths within the window: too many */
	return !(k->ndeaths == slots + 1 && now - k->deaths[k->death_next] < window);
}

/* Start the previous binary again: the new one could not serve. */
static void
keeper_roll_back(struct keeper *k, const char *why)
{
	NVL_ERRLOG("keeper: upgrade to %s failed (%s): rolling back to %s", k->argv[0], why,
		   k->prev_binary);
	free(k->argv[0]);
	k->argv[0] = k->prev_binary;
	k->prev_binary = NULL;
	k->upgrading = false;
	k->rolled_back = true;
	k->backoff_ms = 0;
}

/* The worker stopped for an upgrade: the next one runs upgrade_path. */
static void
keeper_begin_upgrade(struct keeper *k)
{
	free(k->prev_binary);
	k->prev_binary = k->argv[0];
	k->argv[0] = k->upgrade_path;
	k->upgrade_path = NULL;
	k->upgrading = true;
	k->rolled_back = false;
	k->last_signal = 0;
	k->worker = 0;
	k->backoff_ms = 0;
	k->restarts++;
}

/* The worker said it stopped for good (QUIESCED=1: none of its threads
 * touches a queue or a kept state any more and none of its I/O is in flight):
 * the next worker takes over now, not once the old process is gone. */
static void
keeper_take_over(struct keeper *k)
{
	pid_t old = k->worker;
	char path[PATH_MAX];

	nvl_strlcpy(path, k->upgrade_path ? k->upgrade_path : "?", sizeof(path));
	keeper_begin_upgrade(k);
	k->retiring = old;
	/* the hand-over first, the log line after: it is in the downtime */
	if (keeper_spawn(k) < 0) {
		NVL_NOTICELOG("keeper: worker %d stopped serving", (int)old);
		keeper_roll_back(k, "it cannot be started");
		return;
	}
	NVL_NOTICELOG("keeper: worker %d stopped serving; %s took over", (int)old, path);
}

static void
keeper_reaped(struct keeper *k, int st)
{
	if (WIFEXITED(st))
		k->last_status = WEXITSTATUS(st);
	else
		k->last_status = 128 + WTERMSIG(st);
	if (!k->stopping && k->upgrade_path && WIFEXITED(st) &&
	    WEXITSTATUS(st) == NVL_KEEPER_EXIT_UPGRADE) {
		/* the worker handed over: the new binary, at once, not a death */
		NVL_NOTICELOG("keeper: worker %d handed over; starting %s", (int)k->worker,
			      k->upgrade_path);
		keeper_begin_upgrade(k);
		return;
	}
	if (!k->stopping && k->upgrading && !k->ready && WIFEXITED(st) &&
	    WEXITSTATUS(st) == NVL_KEEPER_EXIT_AFRESH) {
		/* started ahead, it found the store changed under what it built */
		NVL_NOTICELOG("keeper: worker %d of %s starts again afresh", (int)k->worker,
			      k->argv[0]);
		k->worker = 0;
		k->backoff_ms = 0;
		k->restarts++;
		return;
	}
	if (!k->stopping && k->upgrading && !k->ready) {
		/* the new binary ended before it served: the old one comes back */
		keeper_roll_back(k, WIFEXITED(st) ? "its worker exited" : "its worker died");
		k->worker = 0;
		k->restarts++;
		return;
	}
	/* an exit, whatever its status, is the worker's own decision (stopped,
	 * refused its configuration or socket): only a death by signal is a crash */
	if (k->stopping || WIFEXITED(st)) {
		NVL_NOTICELOG("keeper: worker %d ended (status %d)", (int)k->worker,
			      k->last_status);
		k->worker = 0;
		k->stopping = true;
		return;
	}
	k->last_signal = WTERMSIG(st);
	NVL_ERRLOG("keeper: worker %d died of signal %d (%s)%s", (int)k->worker, WTERMSIG(st),
		   strsignal(WTERMSIG(st)), k->ready ? "" : " before it was ready");
	k->worker = 0;
	if (!keeper_may_restart(k)) {
		NVL_ERRLOG("keeper: the worker keeps dying; giving up");
		k->last_status = 1;
		k->stopping = true;
		return;
	}
	k->restarts++;
	/* a worker that served comes back at once; one that never did, slower */
	if (k->ready)
		k->backoff_ms = 0;
	else
		k->backoff_ms = k->backoff_ms ? NVL_MIN(k->backoff_ms * 2, KEEPER_BACKOFF_MAX_MS)
					      : KEEPER_BACKOFF_MIN_MS;
}

/* ---- set-up and the loop ------------------------------------------------------- */

static int
keeper_open_notify(struct keeper *k)
{
	int one = 1, rc, n;

	rc = nvl_mkdir_private(k->o->state_dir);
	if (rc < 0) {
		NVL_ERRLOG("keeper: state directory %s: %s", k->o->state_dir, strerror(-rc));
		return rc;
	}
	k->notify_addr.sun_family = AF_UNIX;
	n = snprintf(k->notify_addr.sun_path, sizeof(k->notify_addr.sun_path), "%s/keeper.%d.sock",
		     k->o->state_dir, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(k->notify_addr.sun_path))
		return -ENAMETOOLONG;
	unlink(k->notify_addr.sun_path);
	k->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (k->notify_fd < 0)
		return -errno;
	if (bind(k->notify_fd, (struct sockaddr *)&k->notify_addr, sizeof(k->notify_addr)) < 0 ||
	    setsockopt(k->notify_fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

int
nvl_keeper_run(const struct nvl_keeper_opts *o)
{
	struct keeper k = { .o = o, .notify_fd = -1, .sig_fd = -1, .standby_fd = -1 };
	unsigned slots = o->max_restarts ? o->max_restarts : 10;
	sigset_t set;
	int rc;

	{
		struct timeval tv;

		gettimeofday(&tv, NULL);
		k.started_us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	}
	/* it only waits and then passes a message on: the wake-ups of an
	 * upgrade's hand-over do not wait for a scheduler slice (its workers
	 * start in the normal class) */
	(void)nvl_sched_realtime(true);
	k.max_fds = o->max_fds ? o->max_fds : 4096;
	k.kept = calloc(k.max_fds, sizeof(*k.kept));
	{
		size_t n = 0;

		while (o->worker_argv[n])
			n++;
		k.argv = calloc(n + 1, sizeof(*k.argv));
		if (k.argv == NULL || (k.argv[0] = strdup(o->worker_argv[0])) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		for (size_t i = 1; i < n; i++)
			k.argv[i] = o->worker_argv[i];
	}
	k.deaths = calloc(slots + 1, sizeof(*k.deaths));
	if (k.kept == NULL || k.deaths == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	k.sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	rc = k.sig_fd < 0 ? -errno : keeper_open_notify(&k);
	if (rc == 0)
		rc = keeper_spawn(&k);
	if (rc < 0) {
		k.last_status = 1;
		goto out;
	}
	while (k.worker > 0 || !k.stopping) {
		struct pollfd p[2] = { { .fd = k.sig_fd, .events = POLLIN },
				       { .fd = k.notify_fd, .events = POLLIN } };
		int timeout = k.worker > 0 ? -1 : (int)k.backoff_ms;

		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			break;
		if (p[1].revents & POLLIN)
			keeper_recv(&k);
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(k.sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGCHLD)
					continue;
				/* TERM, INT, QUIT stop; HUP, USR1, USR2 are only passed on */
				if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT ||
				    si.ssi_signo == SIGQUIT) {
					k.stopping = true;
					keeper_standby_drop(&k, "stopping");
				}
				if (k.worker > 0)
					kill(k.worker, (int)si.ssi_signo);
			}
			for (;;) {
				int st;
				pid_t pid = waitpid(-1, &st, WNOHANG);

				if (pid <= 0)
					break;
				if (pid == k.worker) {
					/* what the dying worker sent last is still queued */
					keeper_recv(&k);
					if (pid == k.worker)
						keeper_reaped(&k, st);
				}
				if (pid == k.retiring) {
					NVL_NOTICELOG("keeper: worker %d that handed over ended",
						      (int)pid);
					k.retiring = 0;
				} else if (pid == k.standby) {
					NVL_WARNLOG("keeper: worker %d started ahead ended before "
						    "it was needed",
						    (int)pid);
					keeper_standby_forget(&k);
				}
			}
		}
		if (k.worker <= 0 && !k.stopping && (timeout == 0 || !(p[0].revents & POLLIN))) {
			if (keeper_spawn(&k) < 0 && k.upgrading) {
				keeper_roll_back(&k, "it cannot be started");
			} else if (k.worker <= 0) {
				/* as a death before ready: slower each time, then give up */
				k.backoff_ms = k.backoff_ms ? NVL_MIN(k.backoff_ms * 2,
								      KEEPER_BACKOFF_MAX_MS)
							    : KEEPER_BACKOFF_MIN_MS;
				if (!keeper_may_restart(&k)) {
					k.last_status = 1;
					k.stopping = true;
				}
			}
		}
	}
out:
	keeper_standby_drop(&k, "the keeper ends");
	if (k.notify_fd >= 0) {
		close(k.notify_fd);
		unlink(k.notify_addr.sun_path);
	}
	if (k.sig_fd >= 0)
		close(k.sig_fd);
	while (k.kept && k.nkept)
		keeper_drop(&k, k.nkept - 1);
	free(k.kept);
	free(k.deaths);
	if (k.argv)
		free(k.argv[0]);
	free(k.argv);
	free(k.upgrade_path);
	free(k.prev_binary);
	return rc < 0 && k.last_status == 0 ? 1 : k.last_status;
}
