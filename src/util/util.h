/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Small helpers every component uses: container_of, branch hints, alignment,
 * byte-size parsing and formatting, monotonic time. No policy, no allocation
 * beyond what a function documents. Thread-safe (no shared state).
 */
#ifndef NVL_UTIL_H
#define NVL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <time.h>
#include <sys/queue.h>

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                                                 \
	for ((var) = TAILQ_FIRST((head)); (var) && ((tvar) = TAILQ_NEXT((var), field), 1);          \
	     (var) = (tvar))
#endif

#define NVL_EXPORT __attribute__((visibility("default")))

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#endif
#define nvl_likely(x)   __builtin_expect(!!(x), 1)
#define nvl_unlikely(x) __builtin_expect(!!(x), 0)
#define NVL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define NVL_ALIGN_UP(x, a)   (((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define NVL_ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define NVL_IS_POW2(x) ((x) != 0 && (((x) & ((x) - 1)) == 0))
#define NVL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define NVL_MAX(a, b) ((a) > (b) ? (a) : (b))
#define NVL_CACHE_LINE 64
#define NVL_UNUSED __attribute__((unused))

#define NVL_KIB (1024ULL)
#define NVL_MIB (1024ULL * 1024)
#define NVL_GIB (1024ULL * 1024 * 1024)

/** Monotonic time in nanoseconds. */
static inline uint64_t
nvl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/** Monotonic time in microseconds. */
static inline uint64_t
nvl_now_us(void)
{
	return nvl_now_ns() / 1000;
}

/** CPU relax hint for spin loops. */
static inline void
nvl_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* Barriers for memory shared with another process (rings, doorbells). */
#define nvl_smp_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define nvl_smp_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define nvl_smp_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
/* Per-thread statistics read by another thread (RPC snapshots): the owner
 * updates with relaxed atomic stores (a plain mov on x86), readers load
 * relaxed. Single writer per counter, so no read-modify-write atomics. */
#define NVL_STAT_ADD(x, v) __atomic_store_n(&(x), (x) + (v), __ATOMIC_RELAXED)
#define NVL_STAT_INC(x) NVL_STAT_ADD(x, 1)
#define NVL_STAT_DEC(x) __atomic_store_n(&(x), (x) - 1, __ATOMIC_RELAXED)
#define NVL_STAT_SET(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define NVL_STAT_GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define NVL_READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define NVL_WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

/**
 * Parse a byte size: a decimal (leading zeros allowed, never octal) or
 * 0x-hex number, no sign or spaces, with an optional suffix
 * k/K/KiB, m/M/MiB, g/G/GiB, t/T/TiB (binary multiples; "KB" etc. also
 * binary, as dd and fio read them) or "b" for bytes.
 * \return 0 on success; -EINVAL if malformed; -ERANGE on overflow.
 */
int nvl_parse_size(const char *s, uint64_t *out);

/** Parse an unsigned decimal (never octal) or 0x-hex integer: no sign, spaces or suffix.
 *  \return 0; -EINVAL malformed; -ERANGE larger than max. */
int nvl_parse_u64(const char *s, uint64_t max, uint64_t *out);

/** Format a byte count as "64.0 MiB" into buf. Returns buf. */
const char *nvl_fmt_size(uint64_t bytes, char *buf, size_t len);

/** Copy a string into a fixed buffer, always NUL-terminated.
 *  \return 0, or -ENAMETOOLONG if it did not fit (buffer then holds a prefix). */
int nvl_strlcpy(char *dst, const char *src, size_t size);

/** Copy a C string into a fixed-width space-padded field (NVMe SN/MN/FR). */
void nvl_strpad(void *dst, size_t width, const char *src);

/** Write all bytes or fail; retries on EINTR. \return 0 or -errno. */
int nvl_write_all(int fd, const void *buf, size_t len);

/** Read exactly len bytes; \return 0, -EPIPE on EOF, or -errno. */
int nvl_read_all(int fd, void *buf, size_t len);

/** Fill buf with len random bytes from getrandom(). \return 0 or -errno. */
int nvl_random_bytes(void *buf, size_t len);

/** CRC32C (Castagnoli), as NVMe/TCP digests use: crc = nvl_crc32c(~0, ...) ^ ~0. */
uint32_t nvl_crc32c_update(uint32_t crc, const void *buf, size_t len);
static inline uint32_t
nvl_crc32c(const void *buf, size_t len)
{
	return nvl_crc32c_update(0xffffffffu, buf, len) ^ 0xffffffffu;
}

/** Make a directory and its parents (mode 0755). \return 0 or -errno. */
int nvl_mkdir_p(const char *path);

/**
 * Make `path` (and its parents, 0755) a private directory of this user:
 * created 0700 when missing; when it exists it must be a real directory
 * (not a symbolic link) owned by the effective uid, and any group/other
 * bits are cleared. A directory someone else made first (e.g. a squatter
 * in /tmp) is refused, never used.
 * \return 0; -EPERM (owned by another user, or not a directory); -errno.
 */
int nvl_mkdir_private(const char *path);

/**
 * The calling thread to the lowest real-time priority (SCHED_FIFO 1, reset
 * for any child it forks) or back to the normal class. For threads that only
 * block and then do a short, bounded piece of work whose wake-up latency
 * counts (an upgrade's hand-over): a normal thread woken on a busy CPU
 * waited up to a scheduler slice (0.2-0.5 ms here) behind the task there.
 * Not done when NVLEND_NO_REALTIME is set, or without the privilege.
 * \return true when the thread is real-time now.
 */
bool nvl_sched_realtime(bool on);

/**
 * The default RPC socket path, the same for the daemon and every client:
 * /run/nvlend/nvlend.sock for root, else $XDG_RUNTIME_DIR/nvlend.sock,
 * else /tmp/nvlend-UID/nvlend.sock (in a private directory: see
 * nvl_mkdir_private). Ignores NVLEND_SOCKET (the clients' override).
 * \return buf.
 */
const char *nvl_default_rpc_socket(char *buf, size_t len);

/**
 * May a client trust the Unix socket at `path`? Only when it is a socket
 * owned by root or by this user (a socket another user planted in a shared
 * directory would receive our requests and answer them).
 * \return 0; -EPERM (owned by someone else); -ENOTSOCK; -errno of lstat.
 */
int nvl_socket_owner_ok(const char *path);

#endif
