/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging backend: formats one line and writes it with a single write(2).
 *
 * It also keeps the last NVL_LOG_RING_SIZE warning and error lines in a ring
 * (nvl_log_recent, the nvlend_get_log RPC, `nvlend status`). Any thread may
 * log: the ring is guarded by one small mutex, taken only for warnings and
 * errors (never for notices or debug output), held for one copy of an
 * already formatted line. Warnings on the I/O path are rate-limited
 * (NVL_ERRLOG_RL), so the mutex is never on a fast path. Nothing logs from a
 * signal handler.
 */
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

int nvl_log_level_cur;
static struct nvl_log_flag *g_flags;
static int g_log_fd = 2;
static bool g_timestamps = true;
static const char *g_ident = "nvlend";

/* The ring of recent warnings and errors: slot (seq - 1) % size holds line
 * number seq; g_ring.seq is the number of lines ever recorded. */
static struct {
	pthread_mutex_t lock;
	uint64_t seq;
	struct nvl_log_entry e[NVL_LOG_RING_SIZE];
} g_ring = { .lock = PTHREAD_MUTEX_INITIALIZER };

void
nvl_log_register_flag(struct nvl_log_flag *f)
{
	f->next = g_flags;
	g_flags = f;
}

const struct nvl_log_flag *
nvl_log_flags(void)
{
	return g_flags;
}

int
nvl_log_get_level(void)
{
	return __atomic_load_n(&nvl_log_level_cur, __ATOMIC_RELAXED);
}

int
nvl_log_set_level(int level)
{
	if (level < 0 || level > 3)
		return -EINVAL;
	__atomic_store_n(&nvl_log_level_cur, level, __ATOMIC_RELAXED);
	return 0;
}

int
nvl_log_set_flag(const char *name, bool enabled)
{
	bool all = strcmp(name, "all") == 0;
	int found = 0;

	for (struct nvl_log_flag *f = g_flags; f; f = f->next) {
		if (all || strcmp(f->name, name) == 0) {
			__atomic_store_n(&f->enabled, enabled, __ATOMIC_RELAXED);
			found = 1;
		}
	}
	return found || all ? 0 : -ENOENT;
}

void
nvl_log_set_fd(int fd, bool timestamps)
{
	g_log_fd = fd;
	g_timestamps = timestamps;
}

static char g_log_path[4096];

int
nvl_log_set_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

	if (fd < 0)
		return -errno;
	if (nvl_strlcpy(g_log_path, path, sizeof(g_log_path)) < 0) {
		close(fd);
		return -ENAMETOOLONG;
	}
	nvl_log_set_fd(fd, true);
	return 0;
}

int
nvl_log_reopen(void)
{
	int fd;

	if (g_log_path[0] == '\0')
		return 0;   /* logging to stderr: nothing to reopen */
	fd = open(g_log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	/* dup2 replaces the descriptor in one step: a thread logging right now
	 * writes to the old file or the new one, never to a closed fd */
	if (dup2(fd, g_log_fd) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	close(fd);
	return 0;
}

const char *
nvl_log_file(void)
{
	return g_log_path[0] ? g_log_path : NULL;
}

void
nvl_log_set_ident(const char *ident)
{
	g_ident = ident;
}

bool
nvl_log_ratelimit(uint64_t *last, uint64_t *suppressed)
{
	uint64_t now = nvl_now_ns();

	if (*last != 0 && now - *last < 1000000000ULL) {
		(*suppressed)++;
		return false;
	}
	if (*suppressed) {
		nvl_log(NVL_LOG_WARN, NULL, __FILE__, __LINE__, __func__,
			"%llu similar messages suppressed", (unsigned long long)*suppressed);
		*suppressed = 0;
	}
	*last = now;
	return true;
}

static void
ring_add(enum nvl_log_prio prio, uint64_t time_us, const char *origin, size_t origin_len,
	 const char *msg, size_t msg_len)
{
	struct nvl_log_entry *e;

	pthread_mutex_lock(&g_ring.lock);
	e = &g_ring.e[g_ring.seq % NVL_LOG_RING_SIZE];
	g_ring.seq++;
	e->seq = g_ring.seq;
	e->time_us = time_us;
	e->prio = prio;
	origin_len = NVL_MIN(origin_len, sizeof(e->origin) - 1);
	memcpy(e->origin, origin, origin_len);
	e->origin[origin_len] = '\0';
	msg_len = NVL_MIN(msg_len, sizeof(e->msg) - 1);
	memcpy(e->msg, msg, msg_len);
	e->msg[msg_len] = '\0';
	pthread_mutex_unlock(&g_ring.lock);
}

size_t
nvl_log_recent(enum nvl_log_prio max_prio, size_t count, struct nvl_log_entry *out,
	       uint64_t *total)
{
	size_t n = 0;
	uint64_t first, s;

	if (count > NVL_LOG_RING_SIZE)
		count = NVL_LOG_RING_SIZE;
	pthread_mutex_lock(&g_ring.lock);
	if (total)
		*total = g_ring.seq;
	first = g_ring.seq > NVL_LOG_RING_SIZE ? g_ring.seq - NVL_LOG_RING_SIZE : 0;
	/* newest first, to pick the last `count` that qualify ... */
	for (s = g_ring.seq; s > first && n < count; s--) {
		const struct nvl_log_entry *e = &g_ring.e[(s - 1) % NVL_LOG_RING_SIZE];

		if (e->prio <= max_prio)
			out[n++] = *e;
	}
	pthread_mutex_unlock(&g_ring.lock);
	/* ... then oldest first, as a log reads */
	for (size_t i = 0; i < n / 2; i++) {
		struct nvl_log_entry t = out[i];

		out[i] = out[n - 1 - i];
		out[n - 1 - i] = t;
	}
	return n;
}

static const char *
prio_name(enum nvl_log_prio p)
{
	switch (p) {
	case NVL_LOG_ERROR: return "ERROR";
	case NVL_LOG_WARN: return "WARN";
	case NVL_LOG_NOTICE: return "NOTICE";
	case NVL_LOG_DEBUG: return "DEBUG";
	case NVL_LOG_VERBOSE: return "VERBOSE";
	case NVL_LOG_TRACE: return "TRACE";
	}
	return "?";
}

void
nvl_log(enum nvl_log_prio prio, const struct nvl_log_flag *flag, const char *file, int line,
	const char *func, const char *fmt, ...)
{
	char buf[2048];
	size_t n = 0, origin = 0, msg;
	struct timeval tv;
	va_list ap;
	int saved = errno;

	gettimeofday(&tv, NULL);
	if (g_timestamps) {
		struct tm tm;

		localtime_r(&tv.tv_sec, &tm);
		n += strftime(buf, sizeof(buf), "[%Y-%m-%d %H:%M:%S", &tm);
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, ".%06ld] ", (long)tv.tv_usec);
	}
	{
		const char *base = strrchr(file, '/');

		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s[%d] %s%s%s ", g_ident,
				      (int)getpid(), prio_name(prio), flag ? "/" : "",
				      flag ? flag->name : "");
		origin = NVL_MIN(n, sizeof(buf) - 1);
		if (n < sizeof(buf))
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s:%d:%s: ",
					      base ? base + 1 : file, line, func);
	}
	msg = NVL_MIN(n, sizeof(buf) - 1);
	if (n < sizeof(buf)) {
		va_start(ap, fmt);
		n += (size_t)vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
		va_end(ap);
	}
	if (n >= sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	if (n == 0 || buf[n - 1] != '\n')
		buf[n++] = '\n';
	(void)!write(g_log_fd, buf, n);
	if (prio <= NVL_LOG_WARN) {
		/* origin without the ": " that ends it, message without the newline */
		size_t olen = msg >= origin + 2 ? msg - origin - 2 : 0;

		ring_add(prio, (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec, buf + origin,
			 olen, buf + msg, n - 1 > msg ? n - 1 - msg : 0);
	}
	errno = saved;
}
