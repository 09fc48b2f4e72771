/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD server internals (visible only inside src/nbd). The protocol itself,
 * without sockets, is the one NBD codec of the tree: src/proto/nbd.c (the
 * handshake state machine, request decoding/validation, reply encoding,
 * errno -> NBD error).
 *
 * server.c  listeners, connections, reactors, I/O against the bdev.
 * nbd_rpc.c the RPCs and the subsystem (save_config, shutdown).
 *
 * Threading: the handshake and the export table live on reactor 0; a
 * connection in transmission phase lives on one reactor for life.
 */
#ifndef NVL_NBD_INTERNAL_H
#define NVL_NBD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "proto/nbd.h"

/* Limits of this server (documented in docs/nbd.md). */
#define NBD_NAME_MAX          255        /* export name bytes (proto: SHOULD <= 256) */
#define NBD_DESC_MAX          1024       /* description bytes */
#define NBD_PREF_BLOCK        4096u

/* ---- server (server.c; reactor 0 unless noted) -------------------------- */

enum nbd_stat_type {
	NBD_ST_READ = 0,
	NBD_ST_WRITE,
	NBD_ST_FLUSH,
	NBD_ST_TRIM,
	NBD_ST_WRITE_ZEROES,
	NBD_ST_CACHE,
	NBD_ST_NTYPES
};

struct nbd_stats {
	uint64_t ops[NBD_ST_NTYPES];
	uint64_t bytes[NBD_ST_NTYPES];
	uint64_t errors;            /**< requests answered with an error */
	uint64_t held_reads;        /**< reads held to gather requests (read hold) */
};

struct nbd_conn;
struct nvl_bdev_desc;

struct nbd_export {
	char name[NBD_NAME_MAX + 1];
	char *description;
	char bdev_name[64];
	struct nvl_bdev_desc *desc;  /**< held open while exported */
	bool read_only;
	bool removing;               /**< no new connections; waiting for the old to drain */
	bool remove_armed;           /**< removal completes when nconns reaches 0 */
	uint64_t size;
	uint32_t block_size;
	uint32_t pref_block;
	uint32_t max_block;
	uint16_t tflags;
	unsigned nconns;
	uint64_t total_conns;
	struct nbd_stats done_stats; /**< of connections already closed */
	void (*remove_done)(void *arg);
	void *remove_arg;
	TAILQ_HEAD(, nbd_conn) conns;
	TAILQ_ENTRY(nbd_export) link;
};

struct nbd_export_opts {
	const char *name;
	const char *bdev;
	bool read_only;
	const char *description;
};

struct nbd_listen_opts {
	const char *address;       /**< TCP address (numeric or a name) */
	uint16_t port;             /**< 0 = no TCP listener */
	const char *unix_path;     /**< NULL/"" = no Unix socket */
	uint32_t max_conns;
	bool read_hold;            /**< adaptive read holding (server.c, conn_hold_rx) */
};

struct nbd_server_info {
	bool listening;
	bool stopping;
	const char *address;
	uint16_t port;
	const char *unix_path;
	uint32_t max_conns;
	bool read_hold;
	unsigned conns;
	uint64_t refused_total;
};

/** Listen. \return 0, or -errno with a message in err. */
int nbd_server_listen(const struct nbd_listen_opts *o, char *err, size_t errlen);
bool nbd_server_is_listening(void);
void nbd_server_get_info(struct nbd_server_info *i);
/** Stop listening and disconnect every client after its in-flight requests;
 *  done(arg) runs when the last connection closed. Exports stay.
 *  \return 0 (done will run) or -EBUSY/-ENOMEM. */
int nbd_server_stop(void (*done)(void *arg), void *arg);
/** Shutdown: stop, drain, close every export, free per-reactor state; then done(). */
void nbd_server_fini(void (*done)(void));
/** \return 0, or -EINVAL/-EEXIST/-ENOENT/-EROFS/-ENOSPC/-ENOMEM with a message in err. */
int nbd_export_add(const struct nbd_export_opts *o, char *err, size_t errlen);
/** Remove: new clients are refused, connected ones finish in-flight requests and
 *  are disconnected, then the bdev is closed and done(arg) runs (maybe at once).
 *  \return 0, -ENOENT, -EALREADY (already being removed). */
int nbd_export_remove(const char *name, void (*done)(void *arg), void *arg);
struct nbd_export *nbd_export_get(const char *name);
struct nbd_export *nbd_export_first(void);
struct nbd_export *nbd_export_next(struct nbd_export *e);
/** Counters of closed and live connections (live ones read with relaxed loads). */
void nbd_export_stats(const struct nbd_export *e, struct nbd_stats *out);

#endif
