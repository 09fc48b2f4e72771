/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A reconnecting session on one namespace: the part of libnvlend that
 * `nvlend attach` (and anything else that must outlive a target restart)
 * builds on. Internal to libnvlend (not exported from the shared library);
 * tools that link libnvlend.a statically may use it.
 *
 * A session holds one controller of the host core (host.h), which keeps
 * one association at a time. I/O goes through session queues, each owning
 * one I/O queue pair of that controller and belonging to one thread.
 * Callers submit byte-addressed requests of any length (split into commands
 * of at most the controller's transfer size); every request completes
 * exactly once, through its callback, from host_session_queue_poll() on the
 * queue's thread.
 *
 * When the controller goes away (the target died or restarted), requests in
 * flight and new ones wait while the core reconnects: at once, then with
 * backoff (100 ms doubling to 1 s), until the reconnect timeout; after
 * reconnecting, each queue pair gets a new connection and the core
 * resubmits the commands that were in flight (reads, writes, write zeroes,
 * deallocate and flush are idempotent). When the timeout passes, waiting
 * requests fail with -EIO and new ones fail at once, while the core keeps
 * trying once a second; I/O resumes when it is back. A session refuses to
 * resume on a different namespace (changed size, block size or
 * identifiers): that fails I/O with -EIO for good.
 *
 * Threads: host_session_* functions on the session may be called from any
 * thread; a queue belongs to one thread at a time. Whichever thread needs
 * the controller to make progress drives it (under the session's lock).
 */
#ifndef NVL_HOST_SESSION_H
#define NVL_HOST_SESSION_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "nvlend/nvlend.h"

struct host_session;
struct host_session_queue;

struct host_session_opts {
	const char *hostnqn;           /**< NULL: libnvlend's default for this machine */
	uint32_t nsid;                 /**< 0: the URI's, else the first active namespace */
	uint32_t reconnect_timeout_ms; /**< 0: 60000 */
	uint64_t window_bytes;         /**< shm data window; 0: libnvlend's default */
	bool readonly;                 /**< refuse writes locally (-EROFS) */
	uint32_t spin_us;              /**< queue pairs spin this long before sleeping; 0: default */
};

enum host_session_state {
	HOST_SESSION_CONNECTED = 0,
	HOST_SESSION_RECONNECTING,  /**< I/O waits */
	HOST_SESSION_FAILED,        /**< the reconnect timeout passed: I/O fails, retries go on */
	HOST_SESSION_GONE,          /**< the namespace changed identity, or shutdown: I/O fails */
};

enum host_session_op {
	HOST_SESSION_READ = 1,
	HOST_SESSION_WRITE,
	HOST_SESSION_FLUSH,
	HOST_SESSION_WRITE_ZEROES,  /**< flags: HOST_SESSION_F_DEALLOC allows unmapping */
	HOST_SESSION_DISCARD,       /**< Dataset Management, deallocate */
};

#define HOST_SESSION_F_FUA     (1u << 0)
#define HOST_SESSION_F_DEALLOC (1u << 1)

struct host_session_io;
typedef void (*host_session_io_cb)(struct host_session_io *io, int status);

/**
 * One request. The caller owns the memory (it must stay valid until the
 * callback ran) and fills the public fields; the rest is the session's.
 */
struct host_session_io {
	uint8_t op;                 /**< enum host_session_op */
	uint32_t flags;             /**< HOST_SESSION_F_* */
	uint64_t offset;            /**< bytes, block aligned */
	uint64_t len;               /**< bytes, block aligned (0 for flush) */
	void *buf;                  /**< read/write data (any memory) */
	host_session_io_cb cb;      /**< status: 0, -EIO, -EROFS, -EINVAL, -ENOSPC, -EACCES,
				     *   -EOPNOTSUPP, -ESHUTDOWN */
	void *ctx;                  /**< for the caller */

	/* private */
	TAILQ_ENTRY(host_session_io) link;
	struct host_session_queue *q;
	uint64_t next;              /* bytes submitted so far (flush: 0 or 1) */
	uint32_t chunks;            /* commands in flight */
	int status;
	uint8_t where;              /* which list of q holds it */
};

TAILQ_HEAD(host_session_io_list, host_session_io);

/**
 * Connect and identify the namespace.
 * \return 0; the nvl_ctrlr_connect() errors; -ENOENT no active namespace;
 *         -ENOMEM.
 */
int host_session_create(const char *uri, const struct host_session_opts *opts,
			struct host_session **out);
/** Disconnect and free. Every queue must have been destroyed. NULL ignored. */
void host_session_destroy(struct host_session *s);
/** Make waiting and future I/O fail with -ESHUTDOWN (e.g. on detach with a dead target). */
void host_session_shutdown(struct host_session *s);

/** The namespace (identified at create). */
const struct nvl_ns_info *host_session_ns(const struct host_session *s);
uint64_t host_session_size(const struct host_session *s);
/** Largest byte length one NVMe command of this session carries. */
uint32_t host_session_max_xfer(const struct host_session *s);
bool host_session_readonly(const struct host_session *s);
enum host_session_state host_session_state(const struct host_session *s);
const char *host_session_state_str(enum host_session_state st);
/** How many times the session reconnected. */
uint64_t host_session_reconnects(const struct host_session *s);
/** Text of the last connection failure ("" if none). Copied into buf. */
void host_session_last_error(struct host_session *s, char *buf, size_t len);

/**
 * Health check for an idle session (call every few hundred ms from a
 * monitor thread): if the controller is gone, reconnect now rather than on
 * the next I/O; in the failed state, retry once a second.
 * \return the state after the check.
 */
enum host_session_state host_session_check(struct host_session *s);

/**
 * A queue for the calling thread: one I/O queue pair, at most depth
 * commands in flight (entries = depth + 1).
 * \return 0, -EINVAL (depth), -ENOMEM, or the queue-pair creation error
 *         (-ENOSPC: the controller has no more queues).
 */
int host_session_queue_create(struct host_session *s, uint32_t depth,
			      struct host_session_queue **out);
/** Fail what is still queued with -ESHUTDOWN (callbacks run), delete the
 *  queue pair, free. NULL ignored. */
void host_session_queue_destroy(struct host_session_queue *q);

/** Queue a request (and submit it at once when the queue is healthy); it
 *  completes through its callback, normally from a later poll (from this
 *  call only if the controller refuses it outright).
 *  \return 0, -EINVAL (bad range/alignment/op), -EROFS (write on a read-only
 *  session): then the callback will not run. */
int host_session_queue_submit(struct host_session_queue *q, struct host_session_io *io);

/**
 * Submit what is queued and reap completions, running callbacks; waits up
 * to timeout_ms (-1 forever, 0 not at all) for at least one completion when
 * commands are in flight. When the controller went away and requests wait
 * for it, helps it reconnect and waits for the outcome (blocking, up to the
 * reconnect timeout, also with timeout_ms 0).
 * \return requests completed (>= 0).
 */
int host_session_queue_poll(struct host_session_queue *q, int timeout_ms);

/** Requests submitted and not completed yet. */
uint32_t host_session_queue_outstanding(const struct host_session_queue *q);

/**
 * For event loops that also wait on other fds: arm the queue's completion
 * interrupt and give the fds to poll (shm: the interrupt eventfd with POLLIN
 * and the controller's connection with POLLRDHUP; tcp: the queue's socket
 * and the queue's wake-up eventfd, which the core signals when the
 * connection is replaced). After poll returns, call
 * host_session_queue_poll(q, 0).
 * \return the number of pollfds filled (0 if nothing is in flight: nothing
 *         to wait for), -EAGAIN completions are ready or the queue needs
 *         polling (do not sleep), -EOPNOTSUPP max < 2 (wait with a timeout).
 */
int host_session_queue_pollfds(struct host_session_queue *q, struct pollfd *pfds, int max);

/** Changes whenever the queue got a new queue pair (after a reconnect):
 *  fds from host_session_queue_pollfds() of an older epoch are stale. */
uint64_t host_session_queue_epoch(const struct host_session_queue *q);

/** Submit one request and wait for it. \return its status. */
int host_session_queue_run(struct host_session_queue *q, struct host_session_io *io);

#endif
