/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reactors: one event-loop thread per configured core (DESIGN.md section 4).
 *
 * Each reactor owns, for life, whatever is registered on it: pollers (run
 * every loop iteration while the reactor is busy), timers, file-descriptor
 * handlers (epoll) and one io_uring. Nothing registered on a reactor may be
 * touched from another thread; other threads talk to it with
 * nvl_reactor_msg(). Reactor 0 runs in the thread that calls
 * nvl_reactor_run() (the daemon's main thread, which also serves RPC).
 *
 * Adaptive polling ("delayed on", as in the source's interrupt polling):
 * while any poller reports work the loop spins; after spin_us without work it
 * calls every poller's sleep hook (which arms its wake-up: sets a
 * need-wakeup flag in a shared ring, re-checks for a race) and blocks in
 * epoll_wait until an fd, a timer or a message wakes it. While io_uring I/O
 * is in flight and completes slowly (completions io_sleep_us or more apart
 * on average), it sleeps without spinning first: the completion wakes it.
 * A sleep hook may bound the sleep (nvl_reactor_sleep_at_most()).
 */
#ifndef NVL_REACTOR_H
#define NVL_REACTOR_H

#include <stdbool.h>
#include <stdint.h>
#include <liburing.h>

#define NVL_REACTOR_MAX 64

struct nvl_reactor;
struct nvl_poller;
struct nvl_timer;
struct nvl_fdh;

struct nvl_reactor_opts {
	unsigned count;             /**< number of reactors (>= 1) */
	int cpus[NVL_REACTOR_MAX];  /**< CPU to pin each to, -1 = unpinned */
	uint64_t spin_us;           /**< busy-poll this long after the last work before sleeping */
	/** While io_uring I/O is in flight and its completions come at least this
	 *  far apart on average, sleep at once instead of spinning (0 = always spin) */
	uint64_t io_sleep_us;
	unsigned uring_entries;     /**< io_uring SQ size per reactor */
};

/** Fill opts with defaults: 1 reactor, unpinned, spin 200 us, io sleep 20 us, 256 entries. */
void nvl_reactor_opts_default(struct nvl_reactor_opts *o);
/** Parse a CPU list "0", "0-3", "0,2,4-5" into opts (count and cpus); SPDK's
 *  forms too: a hexadecimal mask "0x3" (CPUs 0..63) and a bracketed list "[0,2]".
 *  \return 0, -EINVAL malformed, -E2BIG more than NVL_REACTOR_MAX. */
int nvl_reactor_parse_cpus(const char *list, struct nvl_reactor_opts *o);

/** Create the reactors (not yet running). \return 0, -ENOMEM, -errno from epoll/io_uring. */
int nvl_reactors_init(const struct nvl_reactor_opts *o);
/** Start threads for reactors 1..n-1 and run reactor 0 in the caller until
 *  nvl_reactors_stop(); then join the others. \return 0 or -errno. */
int nvl_reactors_run(void);
/** Ask every reactor to leave its loop (any thread). */
void nvl_reactors_stop(void);
/** Destroy all reactors (after run returned). Frees leftover pollers/timers/handlers. */
void nvl_reactors_fini(void);

unsigned nvl_reactor_count(void);
struct nvl_reactor *nvl_reactor_get(unsigned idx);
/** The reactor of the calling thread, or NULL off-reactor. */
struct nvl_reactor *nvl_reactor_self(void);
unsigned nvl_reactor_id(const struct nvl_reactor *r);
/**
 * Run one non-blocking iteration of the calling thread's reactor: pollers,
 * io_uring submission and completions, messages, due timers, ready fds. For
 * tests and tools that drive a reactor by hand instead of nvl_reactors_run().
 * \return how much work was done (>= 0), or -EPERM off-reactor.
 */
int nvl_reactor_poll_once(void);
/** Change the spin threshold at run time (any thread). */
void nvl_reactor_set_spin_us(uint64_t spin_us);
uint64_t nvl_reactor_get_spin_us(void);
void nvl_reactor_set_io_sleep_us(uint64_t us);
uint64_t nvl_reactor_get_io_sleep_us(void);

/** A poller saw that a peer it waits for runs on this reactor's CPU: the
 *  reactor yields the CPU in idle iterations of this loop turn. */
void nvl_reactor_yield_hint(void);
/** The CPU the calling reactor thread runs on now (cached per loop turn). */
int nvl_reactor_cpu_now(void);

/** Stats for the framework_get_reactors RPC. */
struct nvl_reactor_stats {
	uint64_t loops;
	uint64_t busy_loops;
	uint64_t sleeps;
	uint64_t msgs;
	/** time, ns, of the loop iterations that found work, of those that spun
	 *  without any, and asleep in epoll_wait (SPDK's thread busy/idle ticks:
	 *  busy_ns / (busy_ns + idle_ns + sleep_ns) is the reactor's CPU share) */
	uint64_t busy_ns;
	uint64_t idle_ns;
	uint64_t sleep_ns;
	unsigned pollers;
	unsigned fds;
	unsigned placed;       /**< queues placed here by nvl_reactor_pick() and not gone */
	int cpu;
	int tid;
};
void nvl_reactor_get_stats(const struct nvl_reactor *r, struct nvl_reactor_stats *s);

typedef void (*nvl_msg_fn)(void *arg);
/** Run fn(arg) on reactor r's thread, soon, in FIFO order per sender.
 *  \return 0 (fn will run exactly once) or -ENOMEM / -ESHUTDOWN. */
int nvl_reactor_msg(struct nvl_reactor *r, nvl_msg_fn fn, void *arg);

/*
 * Placement of new queues and connections: the one policy of the daemon.
 * nvl_reactor_pick() returns the least loaded of reactors 1..n-1 (reactor 0
 * serves RPC and every admin queue, so it gets I/O queues only when it is
 * the only reactor); among equally loaded ones it goes round robin, so
 * queues placed one after another spread out. Load is the number of picks
 * not yet given back with nvl_reactor_unpick() (shm CQs, NVMe/TCP I/O
 * queues, vhost-user-blk queues, whatever their owner): a reactor whose
 * queues went gets the next ones. Any thread (atomic counters).
 */
/** Choose a reactor for a new queue; it counts as load there. NULL without reactors. */
struct nvl_reactor *nvl_reactor_pick(void);
/** The queue placed with nvl_reactor_pick() on r is gone. NULL is ignored. */
void nvl_reactor_unpick(struct nvl_reactor *r);

/*
 * Waiting across reactors (work.c).
 */
typedef void (*nvl_reactor_done_fn)(void *arg, int rc);
/**
 * Run fn(arg) on every reactor, each in its own thread (fn may be NULL: a
 * pure barrier, "every reactor finished what it was doing"), then
 * done(done_arg, rc) on the calling reactor, from its loop, once every
 * reactor ran it. rc is 0, or -ENOMEM when a reactor could not be sent the
 * message (fn did not run there).
 * \return 0 (done runs exactly once, never inside this call); -EPERM (not
 *         on a reactor) or -ENOMEM: done never runs.
 */
int nvl_reactor_for_each(nvl_msg_fn fn, void *arg, nvl_reactor_done_fn done, void *done_arg);
/**
 * Wait until drained(arg) is true, then call done(arg) on the calling
 * reactor: drained() is asked from the loop now and then every period_us
 * (0: 1 ms) on that reactor. For "stop taking new work, let what is in
 * flight finish, then free" (shutdown, namespace and subsystem removal).
 * \return 0 (done runs exactly once, never inside this call); -EPERM (not
 *         on a reactor) or -ENOMEM: done never runs.
 */
int nvl_reactor_drain(bool (*drained)(void *arg), void (*done)(void *arg), void *arg,
		      uint64_t period_us);
/** nvl_reactor_drain() for a completion without argument: the shutdown step
 *  of a daemon subsystem or transport (nvl_app_done_fn, transport fini).
 *  \return as nvl_reactor_drain(). */
int nvl_reactor_drain_fini(bool (*drained)(void *arg), void *arg, void (*done)(void),
			   uint64_t period_us);

/** Poller: returns > 0 if it did work (keeps the reactor spinning), 0 if idle. */
typedef int (*nvl_poller_fn)(void *arg);
/** Sleep hook: called before the reactor blocks. Arm wake-ups, then return > 0
 *  if work arrived meanwhile (the reactor then does not sleep). */
typedef int (*nvl_sleep_fn)(void *arg);

/** Register a poller on the calling thread's reactor. \return NULL on ENOMEM or off-reactor. */
struct nvl_poller *nvl_poller_create(nvl_poller_fn fn, void *arg, const char *name);
void nvl_poller_set_sleep_hook(struct nvl_poller *p, nvl_sleep_fn fn);
/** From a sleep hook: the reactor may sleep, but for at most ms milliseconds
 *  (for waits that nothing will signal, such as a peer freeing ring space). */
void nvl_reactor_sleep_at_most(unsigned ms);
/** Unregister; safe from inside the poller's own callback. NULL is ignored. */
void nvl_poller_destroy(struct nvl_poller *p);

typedef void (*nvl_timer_fn)(void *arg);
/** Timer on the calling thread's reactor: first fires after first_us, then
 *  every period_us (0 = once). \return NULL on ENOMEM. */
struct nvl_timer *nvl_timer_create(nvl_timer_fn fn, void *arg, uint64_t first_us,
				   uint64_t period_us);
/** Cancel; safe from inside the callback, also for a fired one-shot. NULL ignored. */
void nvl_timer_destroy(struct nvl_timer *t);

typedef void (*nvl_fd_fn)(void *arg, uint32_t events);
/** Watch fd (EPOLLIN/EPOLLOUT...) on the calling thread's reactor. \return NULL and sets errno. */
struct nvl_fdh *nvl_fd_add(int fd, uint32_t events, nvl_fd_fn fn, void *arg);
int nvl_fd_mod(struct nvl_fdh *h, uint32_t events);
/** Stop watching (does not close fd); safe from inside the callback. NULL ignored. */
void nvl_fd_del(struct nvl_fdh *h);
/** nvl_fd_add(), watched at once even while descriptors are held. */
struct nvl_fdh *nvl_fd_add_now(int fd, uint32_t events, nvl_fd_fn fn, void *arg);
/**
 * Hold descriptors: what nvl_fd_add() watches from now on (any reactor) is
 * recorded but not watched until nvl_reactor_arm_fds(). A worker started
 * ahead of an upgrade builds its listeners this way while the old worker
 * still accepts on the same sockets.
 */
void nvl_reactor_hold_fds(void);
/** Watch every held descriptor (other reactors by message) and stop holding. */
void nvl_reactor_arm_fds(void);

/*
 * Acceptors (acceptor.c): the one accept loop. A listening socket is watched
 * on the calling reactor and each connection (non-blocking, close-on-exec)
 * goes to fn, which owns it. Out of file descriptors, pending connections
 * are shed and the listener pauses instead of spinning (nvl_sock_accept()).
 */
struct nvl_acceptor;
typedef void (*nvl_accept_fn)(void *arg, int fd);
/** nvl_acceptor_create() flag: the control plane (RPC), which may take a
 *  reserve descriptor when the table is full (NVL_SOCK_ACCEPT_CONTROL). */
#define NVL_ACCEPTOR_CONTROL 1u
/**
 * Watch listening socket fd on the calling reactor.
 * \param name names the listener in log lines (copied)
 * \return the acceptor, or NULL with errno set: EPERM (off-reactor), ENOMEM,
 *         or the epoll_ctl error.
 */
struct nvl_acceptor *nvl_acceptor_create(int fd, const char *name, unsigned flags,
					 nvl_accept_fn fn, void *arg);
/** Stop watching; the socket stays open (its owner closes it). Safe from
 *  inside fn. NULL is ignored. */
void nvl_acceptor_destroy(struct nvl_acceptor *a);

/*
 * io_uring of the calling reactor. Fill an SQE from nvl_uring_sqe(), point it
 * at an nvl_uring_op with nvl_uring_op_set(); the reactor submits once per
 * loop iteration and calls op->cb(op, res) from its loop.
 */
struct nvl_uring_op {
	void (*cb)(struct nvl_uring_op *op, int res);
};
/** An SQE of the current reactor's ring (flushes if full). NULL off-reactor or on error. */
struct io_uring_sqe *nvl_uring_sqe(void);
static inline void
nvl_uring_op_set(struct io_uring_sqe *sqe, struct nvl_uring_op *op)
{
	io_uring_sqe_set_data(sqe, op);
}
/** Submit pending SQEs now (normally the loop does it once per iteration). */
int nvl_uring_flush(void);

#endif
