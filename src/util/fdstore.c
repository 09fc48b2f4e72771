/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Worker side of the fd store (see fdstore.h): libsystemd's sd_notify and
 * sd_listen_fds, which speak to systemd or to nvlendd's keeper alike.
 *
 * The inherited descriptors are kept in a small table until their owners
 * take them at start-up; a mutex guards it (taking happens from reactor 0,
 * but nothing forbids another thread).
 */
#include "util/fdstore.h"
#include "util/log.h"
#include "util/sock.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

struct fdstore_entry {
	char *name;
	int fd;
};

static struct {
	pthread_mutex_t lock;
	struct fdstore_entry *v;
	unsigned n;
	bool available;
	unsigned holds;       /* nvl_fdstore_hold_untaken: the release waits */
	bool release_pending; /* asked for while held */
} g_fds = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* A worker started ahead of an upgrade, between the keeper's "A" (the store
 * as it was, go ahead and build) and "E" (the hand-over). */
struct ahead_note {
	char *msg;
	int fd;   /* -1: none */
};
static struct {
	int sock;               /* to the keeper; -1 when not (or no longer) ahead */
	int ready_fd;           /* the old worker's pipe: one byte once we are built */
	bool stale;             /* a descriptor taken or stored ahead changed meanwhile */
	struct ahead_note *notes; /* notifications made ahead: sent at the hand-over */
	unsigned nnotes;
	bool (*revoker)(const char *name); /* drops what it built from a changed name */
} g_ahead = { .sock = -1, .ready_fd = -1 };

bool
nvl_fdstore_predecessor_crashed(void)
{
	const char *v = getenv(NVL_FDSTORE_DEATH_ENV);
	long sig = v ? strtol(v, NULL, 10) : 0;

	return sig > 0 && sig != SIGKILL && sig != SIGTERM && sig != SIGINT;
}

bool
nvl_fdstore_name_ok(const char *name)
{
	size_t n;

	if (name == NULL)
		return false;
	n = strlen(name);
	if (n == 0 || n > NVL_FDSTORE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (name[i] < 0x21 || name[i] > 0x7e || name[i] == ':')
			return false;
	return true;
}

#define STANDBY_MSG 16384

/* Add fd as name to the table (the lock is held). \return 0 or -ENOMEM. */
static int
fdstore_add(const char *name, size_t len, int fd)
{
	struct fdstore_entry *v = realloc(g_fds.v, sizeof(*v) * (g_fds.n + 1));
	char *copy = strndup(name, len);

	if (v)
		g_fds.v = v;
	if (v == NULL || copy == NULL || !nvl_fdstore_name_ok(copy)) {
		free(copy);
		return v == NULL || copy == NULL ? -ENOMEM : -EINVAL;
	}
	g_fds.v[g_fds.n].name = copy;
	g_fds.v[g_fds.n].fd = fd;
	g_fds.n++;
	return 0;
}

/* A name this worker stored while ahead (its notification not sent yet). */
static bool
ahead_noted(const char *name)
{
	size_t l = strlen(name);

	for (unsigned i = 0; i < g_ahead.nnotes; i++) {
		const char *f = strstr(g_ahead.notes[i].msg, "FDNAME=");

		if (f && strncmp(f + 7, name, l) == 0 && (f[7 + l] == '\0' || f[7 + l] == '\n'))
			return true;
	}
	return false;
}

/* The entry called name (the lock is held), or NULL. */
static struct fdstore_entry *
fdstore_find(const char *name, size_t len)
{
	for (unsigned i = 0; i < g_fds.n; i++)
		if (strlen(g_fds.v[i].name) == len && memcmp(g_fds.v[i].name, name, len) == 0)
			return &g_fds.v[i];
	return NULL;
}

/*
 * One "F" message: names one per line, as many descriptors in that order.
 * After the snapshot (a worker started ahead), a name already here replaces
 * the copy nobody took yet; one already taken, or stored by this worker,
 * makes the hand-over stale (what was built ahead used the old one).
 */
static int
standby_take_fds(const char *buf, size_t len, const int *fds, unsigned nfds)
{
	unsigned used = 0;
	const char *p = buf + 1, *end = buf + len;
	int rc = 0;

	pthread_mutex_lock(&g_fds.lock);
	while (p < end && rc == 0) {
		char name[NVL_FDSTORE_NAME_MAX + 1];
		struct fdstore_entry *old;
		const char *e;

		if (*p++ != '\n' || used == nfds) {
			rc = -EINVAL;
			break;
		}
		e = memchr(p, '\n', (size_t)(end - p));
		if (e == NULL)
			e = end;
		if ((size_t)(e - p) > NVL_FDSTORE_NAME_MAX) {
			rc = -EINVAL;
			break;
		}
		memcpy(name, p, (size_t)(e - p));
		name[e - p] = '\0';
		old = fdstore_find(p, (size_t)(e - p));
		if (!ahead_noted(name) && old && old->fd < 0 && g_ahead.revoker &&
		    g_ahead.revoker(name)) {
			/* what was built from the copy taken goes; this one waits */
			old->fd = fds[used++];
		} else if (ahead_noted(name) || (old && old->fd < 0)) {
			NVL_NOTICELOG("fd store: '%s' was stored again after this worker took it",
				      name);
			g_ahead.stale = true;   /* this worker stored or took it already */
			close(fds[used++]);
		} else if (old) {
			close(old->fd);   /* replaced after the snapshot */
			old->fd = fds[used++];
		} else {
			rc = fdstore_add(p, (size_t)(e - p), fds[used]);
			if (rc == 0)
				used++;
		}
		p = e;
	}
	pthread_mutex_unlock(&g_fds.lock);
	if (rc == 0 && used != nfds)
		rc = -EINVAL;
	for (unsigned i = used; i < nfds; i++)
		close(fds[i]);
	return rc;
}

/* An "R" message: names the old worker removed after the snapshot. */
static void
standby_drop_fds(const char *buf, size_t len)
{
	const char *p = buf + 1, *end = buf + len;

	pthread_mutex_lock(&g_fds.lock);
	while (p < end && *p == '\n') {
		const char *e;
		struct fdstore_entry *old;

		p++;
		e = memchr(p, '\n', (size_t)(end - p));
		if (e == NULL)
			e = end;
		old = fdstore_find(p, (size_t)(e - p));
		if (old && old->fd >= 0) {
			close(old->fd);
			old->fd = -1;
			old->name[0] = '\0';   /* gone: matches nothing */
		} else if (old && g_ahead.revoker && g_ahead.revoker(old->name)) {
			old->name[0] = '\0';   /* gone; what was built from it goes too */
		} else if (old) {
			NVL_NOTICELOG("fd store: '%s' was removed after this worker took it",
				      old->name);
			g_ahead.stale = true;
		}
		p = e;
	}
	pthread_mutex_unlock(&g_fds.lock);
}

/* The "E" message: KEY=VALUE sets, a KEY alone unsets. */
static int
standby_take_env(char *buf, size_t len)
{
	char *p = buf + 1, *end = buf + len;

	*end = '\0';
	while (p < end) {
		char *e, *eq;

		if (*p++ != '\n')
			return -EINVAL;
		e = strchr(p, '\n');
		if (e)
			*e = '\0';
		eq = strchr(p, '=');
		if (eq) {
			*eq = '\0';
			setenv(p, eq + 1, 1);
		} else if (*p) {
			unsetenv(p);
		}
		p = e ? e : end;
		if (e)
			*e = '\n';
	}
	return 0;
}

/*
 * One message from the keeper to a worker started ahead: "F" stored
 * descriptors, "R" names removed since the snapshot, "A" go ahead (with the
 * old worker's ready pipe), "E" the environment (the hand-over: the last).
 * \return the message type; -EAGAIN (nothing waiting, with MSG_DONTWAIT);
 *         -ECONNRESET (the keeper closed); -EINVAL (malformed).
 */
static int
standby_recv(int s, char *buf, int flags)
{
	struct iovec iov = { .iov_base = buf, .iov_len = STANDBY_MSG };
	int fds[NVL_SOCK_MAX_FDS], mflags = 0, rc = 0;
	unsigned nfds = 0;
	ssize_t n = nvl_sock_recv_fds(s, &iov, 1, fds, NVL_SOCK_MAX_FDS, &nfds, flags, &mflags);

	if (n < 0)
		return (int)n;
	if (n == 0)
		return -ECONNRESET;
	buf[n] = '\0';
	if (mflags & (MSG_TRUNC | MSG_CTRUNC)) {
		rc = -EINVAL;
	} else if (buf[0] == 'F') {
		rc = standby_take_fds(buf, (size_t)n, fds, nfds);
		nfds = 0;
	} else if (buf[0] == 'R') {
		standby_drop_fds(buf, (size_t)n);
	} else if (buf[0] == 'A') {
		if (nfds == 1) {
			g_ahead.ready_fd = fds[0];
			nfds = 0;
		}
	} else if (buf[0] == 'E') {
		rc = standby_take_env(buf, (size_t)n);
	} else {
		rc = -EINVAL;
	}
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	return rc < 0 ? rc : buf[0];
}

/*
 * A worker started ahead: wait on the socket from the keeper for the store
 * ("F" messages), then either the environment ("E": the old worker stopped
 * already, take over now) or "A" (the old worker still serves: build what
 * can be built, nvl_fdstore_ahead(), and take over at "E").
 */
static int
standby_wait(int s)
{
	char *buf = malloc(STANDBY_MSG + 1);
	int rc;

	if (buf == NULL) {
		close(s);
		return -ENOMEM;
	}
	do {
		rc = standby_recv(s, buf, 0);
	} while (rc == 'F' || rc == 'R');
	free(buf);
	if (rc == 'A') {
		g_ahead.sock = s;
		return 0;
	}
	close(s);
	return rc == 'E' ? 0 : rc < 0 ? rc : -EINVAL;
}

void
nvl_fdstore_ahead_afresh(const char *why)
{
	NVL_ERRLOG("%s: starting afresh", why);
	_exit(NVL_FDSTORE_EXIT_AFRESH);
}

bool
nvl_fdstore_ahead(void)
{
	return g_ahead.sock >= 0;
}

int
nvl_fdstore_ahead_fd(void)
{
	return g_ahead.sock;
}

void
nvl_fdstore_ahead_ready(void)
{
	if (g_ahead.ready_fd >= 0) {
		ssize_t n = write(g_ahead.ready_fd, "R", 1);

		(void)n;   /* the old worker gone or not waiting: it goes on anyway */
		close(g_ahead.ready_fd);
		g_ahead.ready_fd = -1;
	}
}

int
nvl_fdstore_ahead_recv(void)
{
	char *buf;
	int rc;

	if (g_ahead.sock < 0)
		return -EBADF;
	buf = malloc(STANDBY_MSG + 1);
	if (buf == NULL)
		return -ENOMEM;
	do {
		rc = standby_recv(g_ahead.sock, buf, MSG_DONTWAIT);
	} while (rc == 'F' || rc == 'R' || rc == 'A');
	free(buf);
	if (rc == -EAGAIN)
		return 0;
	close(g_ahead.sock);
	g_ahead.sock = -1;
	if (g_ahead.ready_fd >= 0) {
		close(g_ahead.ready_fd);
		g_ahead.ready_fd = -1;
	}
	if (rc != 'E')
		return rc < 0 ? rc : -EINVAL;
	/* what this worker stored ahead goes to the keeper now: we are its worker */
	for (unsigned i = 0; i < g_ahead.nnotes; i++) {
		struct ahead_note *a = &g_ahead.notes[i];

		if (!g_ahead.stale)
			(void)sd_pid_notify_with_fds(0, 0, a->msg, &a->fd, a->fd >= 0 ? 1 : 0);
		if (a->fd >= 0)
			close(a->fd);
		free(a->msg);
	}
	free(g_ahead.notes);
	g_ahead.notes = NULL;
	g_ahead.nnotes = 0;
	return g_ahead.stale ? -ESTALE : 1;
}

int
nvl_fdstore_init(void)
{
	char **names = NULL;
	const char *ns = getenv("NOTIFY_SOCKET");
	const char *sb = getenv(NVL_FDSTORE_STANDBY_ENV);
	int n;

	g_fds.available = ns != NULL && *ns != '\0';
	if (sb) {
		char *end;
		long s = strtol(sb, &end, 10);

		unsetenv(NVL_FDSTORE_STANDBY_ENV);
		if (*sb == '\0' || *end != '\0' || s < 3 || s > INT_MAX)
			return -EINVAL;
		n = standby_wait((int)s);
		if (n < 0) {
			NVL_ERRLOG("fd store: started ahead, but the hand-over failed: %s",
				   strerror(-n));
			return n;
		}
		NVL_NOTICELOG("fd store: %u descriptor(s) handed over (this worker was started "
			      "ahead%s)",
			      g_fds.n, g_ahead.sock >= 0 ? ": it builds what it can while the old one "
							   "serves" : "");
		return (int)g_fds.n;
	}
	n = sd_listen_fds_with_names(1, &names);
	if (n < 0) {
		NVL_ERRLOG("fd store: cannot read the descriptors passed at start: %s",
			   strerror(-n));
		return n;
	}
	if (n == 0) {
		free(names);
		return 0;
	}
	pthread_mutex_lock(&g_fds.lock);
	g_fds.v = calloc((size_t)n, sizeof(*g_fds.v));
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;

		/* ours now: not to leak into anything we start */
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (g_fds.v == NULL) {
			close(fd);
			free(names[i]);
			continue;
		}
		g_fds.v[g_fds.n].fd = fd;
		g_fds.v[g_fds.n].name = names[i];
		g_fds.n++;
	}
	pthread_mutex_unlock(&g_fds.lock);
	free(names);
	if (g_fds.v == NULL)
		return -ENOMEM;
	NVL_NOTICELOG("fd store: %d descriptor(s) passed back at start", n);
	return n;
}

bool
nvl_fdstore_available(void)
{
	return g_fds.available;
}

int
nvl_fdstore_take(const char *name)
{
	int fd = -ENOENT;

	pthread_mutex_lock(&g_fds.lock);
	for (unsigned i = 0; i < g_fds.n; i++) {
		if (g_fds.v[i].fd >= 0 && strcmp(g_fds.v[i].name, name) == 0) {
			fd = g_fds.v[i].fd;
			g_fds.v[i].fd = -1;
			break;
		}
	}
	pthread_mutex_unlock(&g_fds.lock);
	return fd;
}

int
nvl_fdstore_give_back(const char *name, int fd)
{
	int rc = -ENOENT;

	if (fd < 0 || name == NULL || name[0] == '\0')
		return -EINVAL;
	pthread_mutex_lock(&g_fds.lock);
	for (unsigned i = 0; i < g_fds.n; i++) {
		if (strcmp(g_fds.v[i].name, name) == 0) {
			/* one entry per name: a copy stored again took its place */
			if (g_fds.v[i].fd >= 0) {
				rc = -EEXIST;
			} else {
				g_fds.v[i].fd = fd;
				rc = 0;
			}
			break;
		}
	}
	pthread_mutex_unlock(&g_fds.lock);
	return rc;
}

void
nvl_fdstore_ahead_revoker(bool (*fn)(const char *name))
{
	pthread_mutex_lock(&g_fds.lock);
	g_ahead.revoker = fn;
	pthread_mutex_unlock(&g_fds.lock);
}

void
nvl_fdstore_for_each_untaken(void (*fn)(void *arg, const char *name, int fd), void *arg)
{
	pthread_mutex_lock(&g_fds.lock);
	for (unsigned i = 0; i < g_fds.n; i++)
		if (g_fds.v[i].fd >= 0)
			fn(arg, g_fds.v[i].name, g_fds.v[i].fd);
	pthread_mutex_unlock(&g_fds.lock);
}

void
nvl_fdstore_hold_untaken(void)
{
	pthread_mutex_lock(&g_fds.lock);
	g_fds.holds++;
	pthread_mutex_unlock(&g_fds.lock);
}

void
nvl_fdstore_unhold_untaken(void)
{
	bool now;

	pthread_mutex_lock(&g_fds.lock);
	if (g_fds.holds > 0)
		g_fds.holds--;
	now = g_fds.holds == 0 && g_fds.release_pending;
	pthread_mutex_unlock(&g_fds.lock);
	if (now)
		nvl_fdstore_release_untaken();
}

void
nvl_fdstore_release_untaken(void)
{
	pthread_mutex_lock(&g_fds.lock);
	if (g_fds.holds > 0) {
		g_fds.release_pending = true;
		pthread_mutex_unlock(&g_fds.lock);
		return;
	}
	g_fds.release_pending = false;
	for (unsigned i = 0; i < g_fds.n; i++) {
		if (g_fds.v[i].fd >= 0) {
			NVL_NOTICELOG("fd store: '%s' was not taken back: dropped",
				      g_fds.v[i].name);
			close(g_fds.v[i].fd);
			g_fds.v[i].fd = -1;
			if (g_fds.available)
				nvl_fdstore_remove(g_fds.v[i].name);
		}
		free(g_fds.v[i].name);
	}
	free(g_fds.v);
	g_fds.v = NULL;
	g_fds.n = 0;
	pthread_mutex_unlock(&g_fds.lock);
}

static int
fdstore_notify(const char *state, const int *fds, unsigned nfds)
{
	int rc;

	if (!g_fds.available)
		return -ENOTCONN;
	if (g_ahead.sock >= 0) {
		/* the keeper hears only its worker: kept until the hand-over */
		struct ahead_note *v = realloc(g_ahead.notes, sizeof(*v) * (g_ahead.nnotes + 1));

		if (v == NULL || nfds > 1)
			return v == NULL ? -ENOMEM : -EINVAL;
		g_ahead.notes = v;
		v[g_ahead.nnotes].msg = strdup(state);
		v[g_ahead.nnotes].fd = nfds ? fcntl(fds[0], F_DUPFD_CLOEXEC, 3) : -1;
		if (v[g_ahead.nnotes].msg == NULL || (nfds && v[g_ahead.nnotes].fd < 0)) {
			free(v[g_ahead.nnotes].msg);
			if (v[g_ahead.nnotes].fd >= 0)
				close(v[g_ahead.nnotes].fd);
			return -ENOMEM;
		}
		g_ahead.nnotes++;
		return 0;
	}
	rc = sd_pid_notify_with_fds(0, 0, state, fds, nfds);
	if (rc == 0)
		return -ENOTCONN;
	return rc < 0 ? rc : 0;
}

int
nvl_fdstore_remove(const char *name)
{
	char msg[NVL_FDSTORE_NAME_MAX + 40];

	if (!nvl_fdstore_name_ok(name))
		return -EINVAL;
	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	return fdstore_notify(msg, NULL, 0);
}

int
nvl_fdstore_put(const char *name, int fd)
{
	char msg[NVL_FDSTORE_NAME_MAX + 40];

	if (!nvl_fdstore_name_ok(name) || fd < 0)
		return -EINVAL;
	/* one message: a crash between a remove and a store must not lose it */
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	return fdstore_notify(msg, &fd, 1);
}

void
nvl_fdstore_name(char buf[NVL_FDSTORE_NAME_MAX + 1], const char *prefix, const char *key)
{
	size_t n = (size_t)snprintf(buf, NVL_FDSTORE_NAME_MAX + 1, "%s.", prefix);
	size_t klen = strlen(key), room;
	bool changed = false;
	uint32_t h = 2166136261u; /* FNV-1a of the key */

	for (size_t i = 0; i < klen; i++)
		h = (h ^ (uint8_t)key[i]) * 16777619u;
	room = NVL_FDSTORE_NAME_MAX - 9; /* "#XXXXXXXX" */
	for (size_t i = 0; i < klen; i++) {
		char c = key[i];

		if (n >= room) {
			changed = true;
			break;
		}
		if (c < 0x21 || c > 0x7e || c == ':') {
			c = '_';
			changed = true;
		}
		buf[n++] = c;
	}
	buf[n] = '\0';
	if (changed)
		snprintf(buf + n, NVL_FDSTORE_NAME_MAX + 1 - n, "#%08x", h);
}

int
nvl_fdstore_listener(const char *name, int (*open_fn)(void *arg, int *fd), void *arg, int *fd,
		     bool *kept)
{
	int s = nvl_fdstore_take(name), yes = 0, rc;
	socklen_t len = sizeof(yes);

	if (kept)
		*kept = false;
	if (s >= 0) {
		if (getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &yes, &len) == 0 && yes) {
			int fl = fcntl(s, F_GETFL);

			if (fl >= 0 && !(fl & O_NONBLOCK))
				fcntl(s, F_SETFL, fl | O_NONBLOCK);
			if (kept)
				*kept = true;
			*fd = s;
			return 0;
		}
		NVL_WARNLOG("fd store: '%s' is not a listening socket any more: opening anew", name);
		close(s);
		(void)nvl_fdstore_remove(name);
	}
	rc = open_fn(arg, fd);
	if (rc < 0)
		return rc;
	if (g_fds.available && *fd >= 0) {   /* < 0: no socket to keep (RDMA listens by CM) */
		rc = nvl_fdstore_put(name, *fd);
		if (rc < 0)
			NVL_WARNLOG("fd store: cannot keep listener '%s': %s (clients that connect "
				    "during a restart are refused)",
				    name, strerror(-rc));
	}
	return 0;
}

static void (*g_at_suspend[8])(void (*done)(void));
static unsigned g_at_suspend_n, g_suspend_next;
static void (*g_suspend_done)(void);

int
nvl_fdstore_at_suspend(void (*fn)(void (*done)(void)))
{
	if (g_at_suspend_n >= NVL_ARRAY_SIZE(g_at_suspend))
		return -ENOSPC;
	g_at_suspend[g_at_suspend_n++] = fn;
	return 0;
}

static void
fdstore_suspend_next(void)
{
	if (g_suspend_next >= g_at_suspend_n) {
		g_suspend_done();
		return;
	}
	g_at_suspend[g_suspend_next++](fdstore_suspend_next);
}

void
nvl_fdstore_suspend(void (*done)(void))
{
	g_suspend_done = done;
	g_suspend_next = 0;
	fdstore_suspend_next();
}

static struct {
	void (*fn)(void *arg);
	void *arg;
} g_at_ready[16];
static unsigned g_at_ready_n;

int
nvl_fdstore_at_ready(void (*fn)(void *arg), void *arg)
{
	if (g_at_ready_n >= NVL_ARRAY_SIZE(g_at_ready))
		return -ENOSPC;
	g_at_ready[g_at_ready_n].fn = fn;
	g_at_ready[g_at_ready_n++].arg = arg;
	return 0;
}

int
nvl_fdstore_ready(const char *status)
{
	char msg[256];
	unsigned n = g_at_ready_n;
	int rc;

	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status ? status : "serving");
	rc = fdstore_notify(msg, NULL, 0);
	g_at_ready_n = 0;
	for (unsigned i = 0; i < n; i++)
		g_at_ready[i].fn(g_at_ready[i].arg);
	return rc;
}

int
nvl_fdstore_stopping(void)
{
	return fdstore_notify("STOPPING=1", NULL, 0);
}

int
nvl_fdstore_upgrade(const char *binary, const char *version, bool quiesced, uint64_t stopped_ns)
{
	char msg[PATH_MAX + 192];
	int n = snprintf(msg, sizeof(msg), "UPGRADE=%s\nVERSION=%s\nQUIESCED=%d\nSTOPPED_NS=%llu",
			 binary, version, quiesced ? 1 : 0, (unsigned long long)stopped_ns);

	if (n < 0 || (size_t)n >= sizeof(msg))
		return -ENAMETOOLONG;
	return fdstore_notify(msg, NULL, 0);
}

int
nvl_fdstore_upgrade_prepare(const char *binary, int ready_fd)
{
	char msg[PATH_MAX + 32];
	int n = snprintf(msg, sizeof(msg), "UPGRADE_PREPARE=%s", binary);

	if (n < 0 || (size_t)n >= sizeof(msg))
		return -ENAMETOOLONG;
	return fdstore_notify(msg, &ready_fd, ready_fd >= 0 ? 1 : 0);
}

/* ---- hand-over report ------------------------------------------------------------------------ */

#define HANDOVER_MAX 512

static struct {
	pthread_mutex_t lock;
	struct nvl_handover_entry e[HANDOVER_MAX];
	unsigned n;
} g_handover = { .lock = PTHREAD_MUTEX_INITIALIZER };

bool
nvl_handover_active(const char **from, bool *rolled_back)
{
	const char *t0 = getenv("NVLEND_UPGRADE_T0_NS");

	if (from)
		*from = getenv("NVLEND_UPGRADE_FROM");
	if (rolled_back)
		*rolled_back = getenv("NVLEND_UPGRADE_ROLLED_BACK") != NULL;
	return t0 && strtoull(t0, NULL, 10) > 0;
}

void
nvl_handover_resumed(const char *what)
{
	nvl_handover_resumed_since(what, 0);
}

void
nvl_handover_resumed_since(const char *what, uint64_t since_ns)
{
	const char *t0s = getenv("NVLEND_UPGRADE_T0_NS");
	uint64_t t0 = t0s ? strtoull(t0s, NULL, 10) : 0, now = nvl_now_ns();

	/* a function that first serves a minute later is a new one, not one taken over */
	if (t0 == 0 || now < t0 || now - t0 > 60ULL * 1000000000ULL)
		return;
	pthread_mutex_lock(&g_handover.lock);
	for (unsigned i = 0; i < g_handover.n; i++) {
		if (strcmp(g_handover.e[i].what, what) == 0) {
			pthread_mutex_unlock(&g_handover.lock);
			return;
		}
	}
	if (g_handover.n < HANDOVER_MAX) {
		struct nvl_handover_entry *e = &g_handover.e[g_handover.n++];

		nvl_strlcpy(e->what, what, sizeof(e->what));
		if (since_ns && since_ns < t0)
			t0 = since_ns; /* it stopped serving before the old worker stopped */
		e->downtime_ns = now > t0 ? now - t0 : 0;
	}
	pthread_mutex_unlock(&g_handover.lock);
}

unsigned
nvl_handover_report(struct nvl_handover_entry *out, unsigned max)
{
	unsigned n;

	pthread_mutex_lock(&g_handover.lock);
	n = g_handover.n;
	memcpy(out, g_handover.e, sizeof(*out) * NVL_MIN(n, max));
	pthread_mutex_unlock(&g_handover.lock);
	return n;
}
