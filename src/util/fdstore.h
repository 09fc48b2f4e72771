/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fd store, worker side (DESIGN.md section 10): descriptors that must
 * outlive this process (listening sockets, host connections, the memory of
 * RAM bdevs and shm regions, state regions) are handed to whoever supervises
 * the daemon, and handed back when it starts again.
 *
 * One protocol for both supervisors: systemd's notification protocol
 * (sd_notify(3): "FDSTORE=1" + "FDNAME=" with the descriptor attached,
 * "FDSTOREREMOVE=1", "READY=1") and its socket-activation hand-back
 * (sd_listen_fds_with_names(3): LISTEN_FDS, LISTEN_FDNAMES, fds from 3). Under
 * systemd (Type=notify, FileDescriptorStoreMax=) systemd keeps them; without
 * it nvlendd's keeper (keeper.h) speaks the same protocol. Code that stores a
 * descriptor does not know which one it talks to.
 *
 * Names: 1..255 printable ASCII characters except ':' (LISTEN_FDNAMES is
 * colon-separated). Each object stores under its own name, once, when it is
 * made, and removes it when it goes: systemd keeps two descriptors stored
 * under one name (the keeper replaces the older and warns), so a name is
 * never stored twice without a remove in between.
 *
 * A mechanism without policy, in util so that every component keeps its own
 * descriptors (a RAM bdev its memory, a transport its listeners) under names
 * it chooses; the daemon frame (app/) decides when a store is used.
 *
 * Threads: any thread; a mutex guards the table of inherited descriptors.
 */
#ifndef NVL_UTIL_FDSTORE_H
#define NVL_UTIL_FDSTORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define NVL_FDSTORE_NAME_MAX 255
/* set by the keeper for a worker that replaces one killed by a signal */
#define NVL_FDSTORE_DEATH_ENV "NVLEND_PREDECESSOR_SIGNAL"
/* set by the keeper for a worker it starts ahead of an upgrade: the socket on
 * which the store and the environment arrive when it takes over */
#define NVL_FDSTORE_STANDBY_ENV "NVLEND_STANDBY_FD"

/**
 * Take over the descriptors the supervisor passed (LISTEN_FDS/LISTEN_PID/
 * LISTEN_FDNAMES, which are then removed from the environment) and note
 * whether a store is reachable (NOTIFY_SOCKET). Call once, first thing.
 * A worker started ahead (NVL_FDSTORE_STANDBY_ENV set) blocks here until
 * the keeper hands it the store and its environment.
 * \return the number of inherited descriptors (>= 0); -EINVAL (the
 *         variables or the hand-over are malformed: the descriptors are left
 *         alone); -ECONNRESET (the keeper dropped this worker started ahead).
 */
int nvl_fdstore_init(void);

/*
 * A worker started ahead of an upgrade (app/keeper.h) gets a snapshot of the
 * store and goes on while the old worker still serves: nvl_fdstore_ahead()
 * is true until the hand-over. Meanwhile what it stores or removes is kept
 * and told to the keeper at the hand-over (the keeper hears only its
 * worker); the descriptors it takes are copies of the old worker's.
 */
/** The exit status of a worker built ahead whose build went stale: the keeper
 *  starts the new binary again at once (app/keeper.h). */
#define NVL_FDSTORE_EXIT_AFRESH 76
/** What was built ahead does not stand (why, logged): exit with
 *  NVL_FDSTORE_EXIT_AFRESH. */
void nvl_fdstore_ahead_afresh(const char *why) __attribute__((noreturn));
/** True between the snapshot and the hand-over. */
bool nvl_fdstore_ahead(void);
/** The socket on which the hand-over comes (watch it for reading), -1. */
int nvl_fdstore_ahead_fd(void);
/** Tell the old worker this one has built what it could (once). */
void nvl_fdstore_ahead_ready(void);
/**
 * Read what the keeper sent (never blocks): what changed in the store since
 * the snapshot, then the environment.
 * \return 1: handed over (the environment is set, the notifications made
 *         ahead are sent); 0: not yet; -ESTALE: handed over, but a
 *         descriptor this worker took or stored ahead changed meanwhile
 *         (what it built is not to be trusted); -ECONNRESET (the keeper
 *         dropped this worker); -EINVAL.
 */
int nvl_fdstore_ahead_recv(void);

/** True when NOTIFY_SOCKET names a supervisor that can hold descriptors. */
bool nvl_fdstore_available(void);

/**
 * Take the inherited descriptor called `name` (once: it is then the
 * caller's, and the store still holds its own copy).
 * \return the fd (>= 0, CLOEXEC set); -ENOENT when none was passed.
 */
int nvl_fdstore_take(const char *name);

/**
 * Put back a descriptor taken with nvl_fdstore_take() and not used after all
 * (a worker built ahead of an upgrade that leaves something for the
 * hand-over): it counts as not taken again.
 * \return 0; -ENOENT (the name is gone: removed meanwhile), -EEXIST (it was
 *         stored again meanwhile), -EINVAL: the caller still owns fd.
 */
int nvl_fdstore_give_back(const char *name, int fd);

/**
 * A worker started ahead: fn decides about a name it took that the old
 * worker removed or stored again after the snapshot. fn returns true when
 * it drops, at the hand-over, what it built from that name (the name's new
 * copy, if any, then waits untaken and the hand-over does not go stale);
 * false: the hand-over is stale (nvl_fdstore_ahead_recv() returns -ESTALE).
 * Called under the store's lock on the thread of nvl_fdstore_ahead_recv():
 * fn only takes note. NULL: none (every such change is stale).
 */
void nvl_fdstore_ahead_revoker(bool (*fn)(const char *name));

/** Names of inherited descriptors nobody took yet, for the start-up log:
 *  calls fn for each. */
void nvl_fdstore_for_each_untaken(void (*fn)(void *arg, const char *name, int fd), void *arg);

/** Close every inherited descriptor nobody took, and drop it from the store
 *  too (what the new process did not claim is not coming back). */
void nvl_fdstore_release_untaken(void);

/** A start that finishes later (lending rebuilds its targets after the
 *  start, from messages) will still take descriptors: the release of the
 *  untaken ones waits until every hold is undone. */
void nvl_fdstore_hold_untaken(void);
void nvl_fdstore_unhold_untaken(void);

/**
 * Hand `fd` to the store as `name` (the store gets its own copy; fd stays
 * the caller's), in one notification.
 * \return 0; -EINVAL (bad name or fd); -ENOTCONN (no store: not supervised);
 *         -errno of the notification (e.g. -EAGAIN, -EMSGSIZE).
 */
int nvl_fdstore_put(const char *name, int fd);

/** Drop the descriptor stored as `name`. \return 0; -EINVAL; -ENOTCONN; -errno. */
int nvl_fdstore_remove(const char *name);

/** Tell the supervisor the daemon serves ("READY=1"), with a STATUS line.
 *  \return 0, -ENOTCONN (not supervised), -errno. */
int nvl_fdstore_ready(const char *status);

/**
 * Run fn(arg) right after the next nvl_fdstore_ready() told the supervisor
 * the worker serves (on the thread that calls it): what a component took
 * back from the store but may only change once a rollback to the previous
 * worker can no longer happen (nvlend upgrade rolls back until READY=1).
 * \return 0; -ENOSPC (more than 16 pending).
 */
int nvl_fdstore_at_ready(void (*fn)(void *arg), void *arg);

/**
 * Register fn as a step of an upgrade's hand-over (nvlend upgrade): before
 * the worker exits, each registered fn runs in turn (the thread that calls
 * nvl_fdstore_suspend) and calls its done() exactly once when what it
 * serves is stopped and kept in the store. For services outside the NVMe-oF
 * target (NBD); at most 8.
 * \return 0; -ENOSPC.
 */
int nvl_fdstore_at_suspend(void (*fn)(void (*done)(void)));
/** Run the registered hand-over steps one after the other, then done(). */
void nvl_fdstore_suspend(void (*done)(void));

/** Tell the supervisor the daemon is stopping on purpose ("STOPPING=1"). */
int nvl_fdstore_stopping(void);

/** Is `name` a valid store name? */
bool nvl_fdstore_name_ok(const char *name);

/** Whether the worker this process replaces crashed (a fault or abort, not
 *  SIGKILL/SIGTERM/SIGINT from outside, not a clean exit): what a component
 *  restoring kept state counts against a crash loop. False in a first worker. */
bool nvl_fdstore_predecessor_crashed(void);

/** Ask the keeper to start binary (absolute path) in place of this worker,
 *  which exits right after (nvlend upgrade; app/keeper.h). quiesced: no
 *  thread of this worker touches a queue or a kept state any more and none
 *  of its I/O is in flight, so the next worker may start before this process
 *  is gone; stopped_ns (CLOCK_MONOTONIC, 0: now) is when it stopped serving.
 *  \return 0 or -errno of the notification. */
int nvl_fdstore_upgrade(const char *binary, const char *version, bool quiesced,
			uint64_t stopped_ns);
/** Ask the keeper to start binary ahead (it loads and builds while this
 *  worker still serves). ready_fd (or -1): the write end of a pipe that the
 *  new worker writes a byte to once it is built (the caller keeps its copy).
 *  \return 0 or -errno of the notification. */
int nvl_fdstore_upgrade_prepare(const char *binary, int ready_fd);

/*
 * The hand-over report of an upgrade: each function the new worker takes
 * back (a shm controller restored, a vhost-user queue running again, the
 * daemon serving RPC) notes when, against the moment the old worker stopped
 * (the keeper's NVLEND_UPGRADE_T0_NS). Any thread; a mutex.
 */
struct nvl_handover_entry {
	char what[96];
	uint64_t downtime_ns;
};
/** True if this worker was started by an upgrade (or its rollback); from
 *  and rolled_back may be NULL. */
bool nvl_handover_active(const char **from, bool *rolled_back);
/** Note that what serves again (first note of a name counts). No-op unless
 *  nvl_handover_active(). */
void nvl_handover_resumed(const char *what);
/** The same for a function that stopped serving at since_ns (CLOCK_MONOTONIC,
 *  in the old worker: e.g. a connection that stopped reading before the old
 *  worker exited), when that is earlier than the old worker's stop. */
void nvl_handover_resumed_since(const char *what, uint64_t since_ns);
/** Copy up to max entries; \return how many there are in all. */
unsigned nvl_handover_report(struct nvl_handover_entry *out, unsigned max);

/**
 * A store name "prefix.key": characters of key a name may not hold (':',
 * spaces, non-printable ones) become '_', and a key that had to be changed
 * or cut short gets "#XXXXXXXX" (a hash of the original) so that two keys
 * never share a name. buf holds NVL_FDSTORE_NAME_MAX + 1 bytes.
 */
void nvl_fdstore_name(char buf[NVL_FDSTORE_NAME_MAX + 1], const char *prefix, const char *key);

/**
 * A listening socket that outlives the worker: the one a previous worker
 * stored as `name`, if it is there and still a listening socket, else what
 * open_fn makes, which is then stored as `name` (without a store: just
 * open_fn). Clients that connect while no worker runs wait in its backlog.
 * The caller removes `name` when it stops listening for good.
 * \param kept set true when the socket was taken back (may be NULL)
 * \return 0 with the socket in *fd (-1 if open_fn made none: nothing is kept);
 *         the -errno of open_fn.
 */
int nvl_fdstore_listener(const char *name, int (*open_fn)(void *arg, int *fd), void *arg,
			 int *fd, bool *kept);

#endif
