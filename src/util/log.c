/* SPDX-License-Identifier: BSD-3-Clause */
/* Logging backend: formats one line and writes it with a single write(2). */
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

int nvl_log_level_cur;
static struct nvl_log_flag *g_flags;
static int g_log_fd = 2;
static bool g_timestamps = true;
static const char *g_ident = "nvlend";

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
	size_t n = 0;
	va_list ap;
	int saved = errno;

	if (g_timestamps) {
		struct timeval tv;
		struct tm tm;

		gettimeofday(&tv, NULL);
		localtime_r(&tv.tv_sec, &tm);
		n += strftime(buf, sizeof(buf), "[%Y-%m-%d %H:%M:%S", &tm);
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, ".%06ld] ", (long)tv.tv_usec);
	}
	{
		const char *base = strrchr(file, '/');

		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s[%d] %s%s%s %s:%d:%s: ", g_ident,
				      (int)getpid(), prio_name(prio), flag ? "/" : "",
				      flag ? flag->name : "", base ? base + 1 : file, line, func);
	}
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
	errno = saved;
}
