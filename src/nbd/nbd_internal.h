/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD server internals (visible only inside src/nbd). The protocol itself,
 * without sockets, is src/proto/nbd.c; the server is cut by job:
 *
 * export.c     the export table and what the handshake sees of it
 * handshake.c  a connection on reactor 0: its handshake, its move to a
 *              serving reactor, and the end of its life (drain, unlink)
 * conn.c       a connection in transmission on its reactor: requests in,
 *              bdev I/O, replies out, close; the per-reactor context
 * conn_hold.c  the adaptive read hold of a connection in transmission
 * listen.c     listeners, accept, and the server's life (stop, shutdown)
 * nbd_rpc.c    the RPCs and the subsystem (save_config, shutdown)
 *
 * Threading: the export table, the list of connections and every handshake
 * live on reactor 0; a connection in transmission lives on one reactor for
 * life, and reactor 0 reaches it only through messages (handshake.c says
 * how its end is ordered). Each function below names the thread it runs on.
 */
#ifndef NVL_NBD_INTERNAL_H
#define NVL_NBD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include "bdev/bdev.h"
#include "proto/nbd.h"
#include "util/dim.h"
#include "util/log.h"

NVL_LOG_DECLARE_COMPONENT(nbd);

/* Limits of this server (documented in docs/nbd.md). */
#define NBD_NAME_MAX          255        /* export name bytes (proto: SHOULD <= 256) */
#define NBD_DESC_MAX          1024       /* description bytes */
#define NBD_PREF_BLOCK        4096u
#define NBD_EXPORTS_MAX       1024
#define NBD_CONN_REQS        256               /* requests in flight per connection */
#define NBD_CONN_BUDGET      (64ull << 20)     /* payload bytes in flight per connection */
#define NBD_CONN_CACHE       (32ull << 20)     /* payload buffers kept for reuse per connection */
#define NBD_BUF_KEEP_MAX     (2u << 20)        /* larger buffers are freed after use */
#define NBD_RBUF_SIZE        (64u << 10)       /* receive staging buffer */
#define NBD_SEND_IOV         64
#define NBD_RX_ROUNDS        16                /* readv()s per wake-up before yielding */
#define NBD_HS_TIMEOUT_US    (30ull * 1000000)
#define NBD_DRAIN_TIMEOUT_US (10ull * 1000000)
#define NBD_REFUSE_MAX       8                 /* over-limit connections told why at once */
#define NBD_ACCEPT_BATCH     64
#define NBD_BS_MAX_EXTENTS   1024              /* descriptors in one BLOCK_STATUS reply */

/* ---- statistics ------------------------------------------------------------ */

enum nbd_stat_type {
	NBD_ST_READ = 0,
	NBD_ST_WRITE,
	NBD_ST_FLUSH,
	NBD_ST_TRIM,
	NBD_ST_WRITE_ZEROES,
	NBD_ST_CACHE,
	NBD_ST_BLOCK_STATUS,
	NBD_ST_NTYPES
};

struct nbd_stats {
	uint64_t ops[NBD_ST_NTYPES];
	uint64_t bytes[NBD_ST_NTYPES];
	uint64_t errors;            /**< requests answered with an error */
	uint64_t held_reads;        /**< reads held to gather requests (read hold) */
};

/* Written by the connection's owner only; reactor 0 reads with relaxed loads. */
#define NBD_ST_ADD(c, field, v)                                                                    \
	__atomic_store_n(&(c)->st.field, (c)->st.field + (v), __ATOMIC_RELAXED)

/* ---- objects --------------------------------------------------------------- */

struct nbd_conn;

/* Reactor 0. */
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

enum nbd_conn_state {
	NBD_CONN_HANDSHAKE = 0, /**< on reactor 0 */
	NBD_CONN_XMIT,          /**< handed to its reactor */
	NBD_CONN_CLOSED,        /**< socket closed, waiting for reactor 0 to unlink it */
};

enum nbd_rx_state {
	NBD_RX_HDR = 0,     /**< next bytes are a request header */
	NBD_RX_PAYLOAD,     /**< receiving rx_req's WRITE payload */
	NBD_RX_DISCARD,     /**< skipping the payload of a refused WRITE */
};

/* One request slot of a connection in transmission (owner reactor). */
struct nbd_req {
	struct nvl_bdev_io io;
	struct nvl_bdev_bstat bs;  /**< BLOCK_STATUS: the query (extents in buf) */
	struct nbd_conn *conn;
	struct nbd_req_hdr h;
	uint8_t *buf;              /**< payload, 4 KiB aligned (O_DIRECT-friendly) */
	uint32_t buf_cap;
	uint32_t data_len;         /**< payload bytes sent after hdr */
	uint16_t hdr_len;
	bool flush_after;          /**< FUA on TRIM/WRITE_ZEROES: a flush follows */
	uint32_t budget;           /**< payload bytes charged to conn->busy_bytes */
	struct iovec iov;
	TAILQ_ENTRY(nbd_req) link; /**< free list or send queue */
	uint8_t hdr[NBD_SR_ERR_MAX];
};

/* A connection's read hold (conn_hold.c; owner reactor). */
struct nbd_hold {
	bool on;                        /**< the server's read_hold, when this one connected */
	bool holding;                   /**< timed holds bring 2+ requests on average */
	uint8_t level;                  /**< index in the hold times */
	uint64_t until;                 /**< a held read is due then (0: none held) */
	uint32_t hdrs;                  /**< conn->hdrs when the held read was taken */
	uint32_t probe_in;              /**< unheld reads left before a trial hold */
	uint32_t probe_gap;
	uint32_t avg16;                 /**< requests per held read, x16, moving average */
	uint32_t dim_hdrs;              /**< conn->hdrs at the epoch's start */
	uint64_t dim_start;             /**< epoch start, ns */
	struct nvl_dim dim;             /**< chooses level */
	TAILQ_ENTRY(nbd_conn) link;     /**< rctx->held */
};

struct nbd_rctx;

struct nbd_conn {
	/* reactor 0 */
	TAILQ_ENTRY(nbd_conn) link;     /**< g_nbd_srv.conns */
	TAILQ_ENTRY(nbd_conn) elink;    /**< exp->conns */
	struct nbd_export *exp;
	uint64_t id;
	char peer[96];
	unsigned reactor;
	bool refused;
	const char *drain_why;          /**< set by reactor 0 before it sends the drain message */
	struct nbd_hs *hs;

	/* owner reactor */
	enum nbd_conn_state state;
	int fd;
	struct nvl_fdh *fdh;
	uint32_t events;
	struct nvl_timer *timer;        /**< handshake or drain timeout */
	struct nbd_rctx *rctx;
	struct nbd_xparams xp;
	struct nvl_bdev_desc *desc;
	bool flush_needed;              /**< FUA on trim/zero needs a flush */
	bool can_flush;
	uint8_t *rbuf;
	uint32_t rpos, rlen;
	enum nbd_rx_state rx;
	struct nbd_req *rx_req;
	uint32_t rx_got;
	uint64_t rx_left;
	struct nbd_req *reqs;
	TAILQ_HEAD(, nbd_req) free_reqs;
	TAILQ_HEAD(, nbd_req) sendq;
	size_t send_off;
	unsigned nbusy;
	unsigned bdev_inflight;
	uint64_t busy_bytes;
	uint64_t cached_bytes;
	bool rx_stopped;                /**< no more requests: DISC, EOF, drain, error */
	bool tx_dead;                   /**< cannot send: drop replies */
	bool paused;                    /**< out of request slots or budget */
	bool want_out;
	bool in_dirty;
	const char *close_reason;
	TAILQ_ENTRY(nbd_conn) dlink;    /**< rctx->dirty */
	uint8_t keep;                   /**< enum nbd_keep: upgrade hand-over (keep.c) */
	uint32_t keep_id;
	uint64_t keep_since;            /**< restored: when the previous worker stopped it */
	uint32_t hdrs;                  /**< request headers parsed */
	struct nbd_hold hold;
	struct nbd_stats st;
};

/* Per-reactor state, touched only by its reactor (conn.c). */
struct nbd_rctx {
	struct nvl_poller *poller;
	TAILQ_HEAD(, nbd_conn) dirty;   /**< replies to send, parsing to resume, closes to check */
	TAILQ_HEAD(nbd_held, nbd_conn) held; /**< held reads, in due order (conn_hold.c) */
	unsigned nconns;
};

/* What the server files share; reactor 0 only (listen.c defines it). */
struct nbd_srv {
	bool stopping;
	uint32_t max_conns;
	bool read_hold;
	TAILQ_HEAD(, nbd_conn) conns;    /**< every connection, handshake or transmission */
	unsigned nconns;                 /**< counted against max_conns */
	unsigned nrefused;
	uint64_t next_id;
	uint64_t refused_total;
	char refuse_msg[96];
};

extern struct nbd_srv g_nbd_srv;

/* ---- export.c (reactor 0) -------------------------------------------------- */

struct nbd_export_opts {
	const char *name;
	const char *bdev;
	bool read_only;
	const char *description;
};

/** The export table as the handshake sees it (lookup, NBD_OPT_LIST). */
extern const struct nbd_hs_ops nbd_export_hs_ops;

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
/** Close every export at once (shutdown: no connection is left). */
void nbd_export_free_all(void);
/** A connection chose e (its GO/EXPORT_NAME succeeded). */
void nbd_export_conn_add(struct nbd_export *e, struct nbd_conn *c);
/** A connection of c->exp is gone: keep its counters, finish a pending removal. */
void nbd_export_conn_del(struct nbd_conn *c);

/* ---- handshake.c (reactor 0) ----------------------------------------------- */

/** Move the handshake's bytes until it blocks or ends (the connection may be freed). */
void nbd_conn_hs_pump(struct nbd_conn *c);
/** Socket events of a connection in handshake (nvl_fd_fn). */
void nbd_conn_hs_fd_cb(void *arg, uint32_t events);
/** The handshake took longer than NBD_HS_TIMEOUT_US (nvl_timer_fn). */
void nbd_conn_hs_timeout(void *arg);
/** Finish in-flight requests, send their replies, then close (a handshake closes now). */
void nbd_conn_drain(struct nbd_conn *c, const char *why);
/** The owner closed the connection (message to reactor 0): unlink, then free on the owner. */
void nbd_conn_closed_msg(void *arg);

/* ---- conn.c (the connection's reactor unless noted) ------------------------ */

/** Reactor 0, before the move: the request slots. \return 0 or -ENOMEM. */
int nbd_conn_alloc_reqs(struct nbd_conn *c);
/** Free a connection's memory (its socket is closed, it is linked nowhere). */
void nbd_conn_free(struct nbd_conn *c);
/** Message: nbd_conn_free() on the owner, after what reactor 0 queued before. */
void nbd_conn_free_msg(void *arg);
/** Parse what is buffered, send, close when done (the connection's reactor). */
void nbd_conn_service(struct nbd_conn *c);
/** Message from reactor 0: take the connection over (after its handshake). */
void nbd_conn_adopt_msg(void *arg);
/** Message from reactor 0: stop reading, answer what is in flight, close. */
void nbd_conn_drain_msg(void *arg);
/** A timed hold is due (nbd_hold_poll): read, judge the hold, send, maybe close. */
void nbd_conn_held_rx(struct nbd_conn *c);
/** Free this reactor's context (shutdown; no connection is left). Reactor i. */
void nbd_rctx_free(unsigned i);

/* ---- keep.c: live connections across nvlend upgrade ------------------------- */

enum nbd_keep {
	NBD_KEEP_NONE = 0,
	NBD_KEEP_STOPPING,      /**< finish the request being received, answer, then keep */
	NBD_KEEP_DONE,          /**< socket and record in the fd store: never touched again */
	NBD_KEEP_RESTORED,      /**< taken back: serves once the worker is READY */
};
/** Reactor 0, the nbd subsystem's start hook: take back what a previous worker kept. */
void nbd_keep_restore(void);
/** The connection's reactor, while keep == NBD_KEEP_STOPPING, after each service. */
void nbd_keep_check(struct nbd_conn *c);
/** Reactor 0: the reactor that serves the next connection (handshake.c). */
unsigned nbd_pick_reactor(void);
/** Reactor 0: count a connection taken back on its reactor (handshake.c). */
void nbd_load_add(unsigned reactor);

/* ---- conn_hold.c (the connection's reactor) -------------------------------- */

/** Start the read hold of a connection entering transmission (reactor 0, before the move). */
void nbd_hold_init(struct nbd_conn *c, bool on);
/** EPOLLIN, before the read. \return true if the read is held (nbd_hold_poll does it). */
bool nbd_hold_rx(struct nbd_conn *c);
/** After a timed hold's read: did holds bring batches? */
void nbd_hold_judge(struct nbd_conn *c);
/** Forget a held read (the connection closes). */
void nbd_hold_cancel(struct nbd_conn *c);
/** Do the held reads that are due. \return nonzero while any is held (the reactor
 *  must not sleep past it). */
int nbd_hold_poll(struct nbd_rctx *x);

/* ---- listen.c (reactor 0) -------------------------------------------------- */

struct nbd_listen_opts {
	const char *address;       /**< TCP address (numeric or a name) */
	uint16_t port;             /**< 0 = no TCP listener */
	const char *unix_path;     /**< NULL/"" = no Unix socket */
	uint32_t max_conns;
	bool read_hold;            /**< adaptive read holding (conn_hold.c) */
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
/** A connection left g_nbd_srv.conns: run the waiters if it was the last. */
void nbd_server_check_idle(void);

#endif
