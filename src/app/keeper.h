/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The keeper (DESIGN.md section 10): without systemd, `nvlendd` runs as a
 * tiny supervisor that holds the daemon's long-lived descriptors and
 * (re)starts the worker process that serves from them, so a worker that
 * crashes comes back with every listener, connection and memory region it
 * had.
 *
 * It plays systemd's part of the fd-store protocol and nothing more: the
 * worker is started with NOTIFY_SOCKET naming the keeper's datagram socket
 * (in a 0700 directory), sends "FDSTORE=1"/"FDNAME=" with descriptors,
 * "FDSTOREREMOVE=1", "READY=1", "STOPPING=1", "STATUS=", and gets the stored
 * descriptors back at every start through LISTEN_FDS/LISTEN_FDNAMES/
 * LISTEN_PID (fds from 3), exactly as under systemd. The keeper reads only
 * what its current worker sends (the sender's pid is checked with
 * SCM_CREDENTIALS); it parses nothing a host sends and touches no storage.
 *
 * Lifetime: SIGTERM/SIGINT are passed to the worker and the keeper exits
 * with the worker's status once it is gone; SIGHUP is passed on. A worker
 * that exits, whatever its status, ends the keeper with that status (a clean
 * `nvlend shutdown`, or a configuration or socket it refused: its own
 * decision). A worker killed by a signal (a crash, kill -9) is restarted at
 * once if it had been ready, else after a backoff (100 ms doubling to 5 s);
 * more than `max_restarts` deaths within `restart_window_ms` end the keeper
 * with status 1 (as systemd's StartLimitBurst would).
 *
 * Threads: one. Everything is in nvl_keeper_run's loop.
 */
#ifndef NVL_APP_KEEPER_H
#define NVL_APP_KEEPER_H

#include <stdbool.h>

struct nvl_keeper_opts {
	char *const *worker_argv;    /**< argv of the worker; argv[0] is a path */
	const char *state_dir;       /**< private dir for the notify socket */
	unsigned max_fds;            /**< store budget (0: 4096) */
	unsigned max_restarts;       /**< deaths tolerated within the window (0: 10) */
	unsigned restart_window_ms;  /**< (0: 60000) */
};

/**
 * Run the keeper until the worker stops for good.
 * \return the exit status for main(): the worker's last exit status, 1 when
 *         it kept crashing or could not be started, 128+N when it died of
 *         signal N after a stop request.
 */
int nvl_keeper_run(const struct nvl_keeper_opts *o);

/** Environment variable set for a worker started by the keeper (value: the
 *  keeper's pid), so the worker knows who stores its descriptors. */
#define NVL_KEEPER_ENV "NVLEND_KEEPER_PID"
/** Also set for the worker: how many workers the keeper restarted so far
 *  (0 for the first), and when the keeper started (Unix time, microseconds),
 *  for nvlend_get_status. */
#define NVL_KEEPER_RESTARTS_ENV "NVLEND_KEEPER_RESTARTS"
#define NVL_KEEPER_STARTED_ENV "NVLEND_KEEPER_STARTED_US"

/*
 * Upgrade (nvlend upgrade): the worker sends "UPGRADE=/path/of/nvlendd" and
 * "VERSION=its version", then exits with NVL_KEEPER_EXIT_UPGRADE at once,
 * leaving its state in the store as a crash would. The keeper starts the new
 * binary (no backoff, not counted as a death) with NVL_KEEPER_UPGRADE_T0_ENV
 * (CLOCK_MONOTONIC ns when the old worker stopped) and
 * NVL_KEEPER_UPGRADE_FROM_ENV (its version) set. If the new binary cannot
 * be started, or its worker ends before it said READY=1, the keeper rolls
 * back: the previous binary is started again (same environment).
 */
/*
 * Started ahead: a worker may first send "UPGRADE_PREPARE=/path", with one
 * descriptor attached (the write end of a pipe) or none. The keeper starts
 * that binary at once with NVL_FDSTORE_STANDBY_ENV naming a socket
 * (SOCK_SEQPACKET) and sends it a snapshot of the store: "F" messages (one
 * name per line after the F, the descriptors attached in that order, 16 at
 * most), then "A" with the pipe attached. The new process then builds what
 * it can while the old worker serves (its configuration, its listeners not
 * yet watched: util/fdstore.h) and writes one byte to the pipe when it is
 * done (the old worker stops when that byte or the pipe's end comes). When
 * the old worker sends UPGRADE= with "QUIESCED=1" (none of its threads
 * touches a queue or a kept state any more, none of its I/O is in flight;
 * "STOPPED_NS=" when it stopped serving, the start of the downtime), the
 * keeper hands over at once what changed since the snapshot: "R" (names
 * removed, one per line), "F" (descriptors stored after it), and a last "E"
 * message (one KEY=VALUE to set or KEY to unset per line: the variables
 * below). Without QUIESCED=1 it does so once the old process is gone. A
 * worker started ahead that is not of the binary that comes next is killed.
 * One that finds what it built ahead made stale by the changes (a descriptor
 * it took was replaced, the configuration changed) exits with
 * NVL_KEEPER_EXIT_AFRESH: the keeper starts the new binary again, at once.
 */
#define NVL_KEEPER_EXIT_AFRESH NVL_FDSTORE_EXIT_AFRESH
#define NVL_KEEPER_EXIT_UPGRADE 75
#define NVL_KEEPER_UPGRADE_T0_ENV "NVLEND_UPGRADE_T0_NS"
#define NVL_KEEPER_UPGRADE_FROM_ENV "NVLEND_UPGRADE_FROM"
#define NVL_KEEPER_UPGRADE_ROLLBACK_ENV "NVLEND_UPGRADE_ROLLED_BACK"

#endif
