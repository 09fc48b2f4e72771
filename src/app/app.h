/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's frame: subsystems (bdev, nvmf, nbd, brick, vhost, ...) with
 * init, orderly asynchronous shutdown and save_config; config replay (-c);
 * the framework RPCs (versions, methods, logging, save_config, shutdown).
 * Everything here runs on reactor 0.
 */
#ifndef NVL_APP_H
#define NVL_APP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "reactor/reactor.h"
#include "util/version.h"

typedef void (*nvl_app_done_fn)(void);

struct nvl_subsystem {
	const char *name;
	int order;                         /**< init ascending, fini descending */
	int (*init)(void);                 /**< optional; <0 aborts start-up */
	/** optional: stop serving, let in-flight I/O finish, free; then call done(). */
	void (*fini)(nvl_app_done_fn done);
	/** optional: append the RPC calls ({method, params}) that rebuild this subsystem. */
	void (*write_config)(json_t *calls);
	struct nvl_subsystem *next;
	/** optional: called once the -c configuration is replayed (or at once without -c),
	 *  before the daemon reports it started: for state a subsystem keeps itself
	 *  that builds on configured objects (lend records on bdevs and bricks) */
	void (*start)(void);
	/** init touches state the previous worker may still change (files it
	 *  rewrites, kept descriptors): a worker started ahead of an upgrade runs it
	 *  at the hand-over, not while the old worker serves */
	bool init_at_handover;
	/** its start hook runs after the daemon told the service manager (or the
	 *  keeper) it serves, after the other subsystems' start hooks (the
	 *  transports took their connections back and read again), so that it is
	 *  not part of their downtime; with init_at_handover, a worker built
	 *  ahead runs its init there too, just before. Only for state that
	 *  nothing replayed from the kept configuration depends on. */
	bool init_at_start;
	/** optional: a worker built ahead of an upgrade has replayed what it could
	 *  of the configuration: prepare what start() will take back, touching
	 *  nothing the old worker still runs */
	void (*ahead)(void);
};

void nvl_subsystem_register(struct nvl_subsystem *s);

#define NVL_SUBSYSTEM_REGISTER(sym)                                                                \
	static void __attribute__((constructor)) nvl_subsys_reg_##sym(void)                         \
	{                                                                                          \
		nvl_subsystem_register(&(sym));                                                    \
	}

struct nvl_app_opts {
	const char *rpc_socket;
	const char *config_file;
	struct nvl_reactor_opts reactors;
	size_t rpc_max_request;
	unsigned rpc_max_clients;
	uint64_t rpc_request_timeout_ms; /**< see struct nvl_rpc_server_opts */
	uint64_t rpc_idle_timeout_ms;
	int log_level;
	/** SPDK's --wait-for-rpc: after the -c replay, stay in the RPC STARTUP state
	 *  (rpc.h) until a client calls framework_start_init */
	bool wait_for_rpc;
	/** Called on reactor 0 once config is replayed and RPC listens (with
	 *  wait_for_rpc: when it starts waiting for framework_start_init). */
	void (*started)(void *arg);
	void *started_arg;
};

/** Run the daemon until shutdown. \return 0 or -errno (config, socket...). */
int nvl_app_run(const struct nvl_app_opts *o);
/** Begin an orderly shutdown (any reactor-0 context; signals route here). */
void nvl_app_shutdown(int exit_code);
/** True once shutdown began (long operations should stop early). */
bool nvl_app_stopping(void);
/** True while the configuration (-c, or what a restarted worker kept) is
 *  being replayed: its calls, not a client's, are running (reactor 0). */
bool nvl_app_replaying(void);

/** The -c configuration file the daemon was started with, or NULL. */
const char *nvl_app_config_file(void);

/** The whole configuration as SPDK's save_config shape:
 *  {"subsystems":[{"subsystem":NAME,"config":[{method,params}...]}...]}. */
json_t *nvl_app_save_config(void);

#endif
