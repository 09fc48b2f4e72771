/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging. Errors, warnings and notices are always printed. Debug output
 * has the source system's four levels (dis_nvme's debug_level):
 *   0  info and warnings only      2  verbose
 *   1  debug                       3  trace
 * and is further filtered per component: NVL_LOG_REGISTER_COMPONENT(name)
 * declares a flag that the log_set_flag / log_clear_flag RPCs toggle (all
 * flags are on by default, so the level alone decides until one is cleared).
 * Thread-safe: one write(2) per message, level and flags are atomics.
 * The last NVL_LOG_RING_SIZE warnings and errors are also kept in memory
 * (nvl_log_recent) for the nvlend_get_log RPC; a tiny mutex guards them,
 * taken only for those lines.
 */
#ifndef NVL_LOG_H
#define NVL_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nvl_log_prio {
	NVL_LOG_ERROR = -3,
	NVL_LOG_WARN = -2,
	NVL_LOG_NOTICE = -1,
	NVL_LOG_DEBUG = 1,
	NVL_LOG_VERBOSE = 2,
	NVL_LOG_TRACE = 3,
};

/** Warnings and errors kept in memory for nvl_log_recent. */
#define NVL_LOG_RING_SIZE 32

/** One warning or error line kept in the ring. */
struct nvl_log_entry {
	uint64_t seq;              /**< 1 for the first line ever kept, then +1 */
	uint64_t time_us;          /**< wall clock (CLOCK_REALTIME), microseconds */
	enum nvl_log_prio prio;    /**< NVL_LOG_ERROR or NVL_LOG_WARN */
	char origin[128];          /**< "file.c:LINE:function" */
	char msg[512];             /**< the message, cut if longer, no newline */
};

struct nvl_log_flag {
	const char *name;
	bool enabled;
	struct nvl_log_flag *next;
};

void nvl_log(enum nvl_log_prio prio, const struct nvl_log_flag *flag, const char *file, int line,
	     const char *func, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/** Current debug level 0..3. */
int nvl_log_get_level(void);
/** Set the debug level; \return 0 or -EINVAL if outside 0..3. */
int nvl_log_set_level(int level);
/** Enable/disable a component flag by name ("all" for every one).
 *  \return 0 or -ENOENT for an unknown name. */
int nvl_log_set_flag(const char *name, bool enabled);
/** Iterate registered flags (for log_get_flags). */
const struct nvl_log_flag *nvl_log_flags(void);
void nvl_log_register_flag(struct nvl_log_flag *f);
/** Send log output to fd (default 2). Also whether to prefix timestamps. */
void nvl_log_set_fd(int fd, bool timestamps);

/** Log to the file at path (appended, created 0640), remembering the path so
 *  that nvl_log_reopen() can start a new file after logrotate moved it.
 *  \return 0, -ENAMETOOLONG, -errno of open. */
int nvl_log_set_file(const char *path);

/** Reopen the log file by its path (SIGHUP after logrotate); nothing to do
 *  when logging to stderr. The descriptor number stays the same.
 *  \return 0, -errno of open or dup2 (the old file stays in use). */
int nvl_log_reopen(void);

/** The log file's path, or NULL when logging to stderr. */
const char *nvl_log_file(void);
/**
 * The last `count` kept lines whose priority is at least as severe as
 * max_prio (NVL_LOG_WARN: warnings and errors; NVL_LOG_ERROR: errors only),
 * oldest first, copied to out (room for count entries; count is capped at
 * NVL_LOG_RING_SIZE). *total (if not NULL) gets the number of warnings and
 * errors ever kept, so a caller can tell how many were overwritten.
 * Any thread. \return the number of entries copied (never an error).
 */
size_t nvl_log_recent(enum nvl_log_prio max_prio, size_t count, struct nvl_log_entry *out,
		      uint64_t *total);

/** Program name printed in each line. */
void nvl_log_set_ident(const char *ident);

extern int nvl_log_level_cur;

#define NVL_LOG_REGISTER_COMPONENT(fname)                                                          \
	struct nvl_log_flag nvl_log_flag_##fname = { .name = #fname, .enabled = true };             \
	static void __attribute__((constructor)) nvl_log_flag_register_##fname(void)                \
	{                                                                                          \
		nvl_log_register_flag(&nvl_log_flag_##fname);                                     \
	}

#define NVL_LOG_DECLARE_COMPONENT(fname) extern struct nvl_log_flag nvl_log_flag_##fname

#define NVL_ERRLOG(...) nvl_log(NVL_LOG_ERROR, NULL, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define NVL_WARNLOG(...) nvl_log(NVL_LOG_WARN, NULL, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define NVL_NOTICELOG(...) nvl_log(NVL_LOG_NOTICE, NULL, __FILE__, __LINE__, __func__, __VA_ARGS__)

#define NVL_LOGLVL(lvl, fname, ...)                                                                \
	do {                                                                                       \
		if (__builtin_expect(__atomic_load_n(&nvl_log_level_cur, __ATOMIC_RELAXED) >= (lvl), \
				     0) &&                                                         \
		    nvl_log_flag_##fname.enabled)                                                  \
			nvl_log((enum nvl_log_prio)(lvl), &nvl_log_flag_##fname, __FILE__,         \
				__LINE__, __func__, __VA_ARGS__);                                  \
	} while (0)

#define NVL_DEBUGLOG(fname, ...) NVL_LOGLVL(1, fname, __VA_ARGS__)
#define NVL_VERBOSELOG(fname, ...) NVL_LOGLVL(2, fname, __VA_ARGS__)
#define NVL_TRACELOG(fname, ...) NVL_LOGLVL(3, fname, __VA_ARGS__)

/* Rate-limited error log for the I/O path: at most one line per second per call site,
 * with a count of what was suppressed. */
#define NVL_ERRLOG_RL(...)                                                                         \
	do {                                                                                       \
		static uint64_t _nvl_rl_last;                                                      \
		static uint64_t _nvl_rl_supp;                                                      \
		if (nvl_log_ratelimit(&_nvl_rl_last, &_nvl_rl_supp))                               \
			NVL_ERRLOG(__VA_ARGS__);                                                   \
	} while (0)

bool nvl_log_ratelimit(uint64_t *last, uint64_t *suppressed);

#endif
