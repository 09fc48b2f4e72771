/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD server internals (visible only inside src/nbd).
 *
 * proto.c   the protocol, without sockets: the fixed-newstyle handshake as a
 *           byte-stream state machine (bytes in, option replies out, outcome),
 *           request decoding/validation and reply encoding. Pure functions of
 *           their arguments; used by the server, the unit tests and the fuzzer.
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

#include "nvlend/spec/nbd.h"

/* Limits of this server (documented in docs/nbd.md). */
#define NBD_NAME_MAX          255        /* export name bytes (proto: SHOULD <= 256) */
#define NBD_DESC_MAX          1024       /* description bytes */
#define NBD_OPT_DATA_MAX      16384      /* option payload we buffer; larger are skipped */
#define NBD_HS_OUT_MAX        (1u << 20) /* handshake output we queue before stopping */
#define NBD_MAX_PAYLOAD       (32u << 20) /* advertised maximum block size (2^25) */
#define NBD_PREF_BLOCK        4096u
#define NBD_ERRMSG_MAX        160        /* error message bytes in an ERROR chunk */

/* ---- handshake ---------------------------------------------------------- */

/** An export as the handshake sees it (filled by the server's lookup). */
struct nbd_hs_export {
	const char *name;
	const char *description;   /**< "" if none */
	uint64_t size;
	uint32_t min_block;
	uint32_t pref_block;
	uint32_t max_block;
	uint16_t tflags;           /**< transmission flags, SEND_DF excluded */
	void *handle;              /**< the server's export object */
};

struct nbd_hs_ops {
	/**
	 * Find an export by name (len bytes, not NUL-terminated; len 0 = the
	 * default export). \return 0 and *e filled, or an NBD_REP_ERR_* code with
	 * a human-readable reason in msg.
	 */
	uint32_t (*lookup)(void *ctx, const char *name, size_t len, struct nbd_hs_export *e,
			   char *msg, size_t msglen);
	/** Call emit() once per export, for NBD_OPT_LIST. */
	void (*list)(void *ctx, void (*emit)(void *arg, const struct nbd_hs_export *e),
		     void *arg);
};

enum nbd_hs_state {
	NBD_HS_CFLAGS = 0,   /**< waiting for the 32-bit client flags */
	NBD_HS_OPT_HDR,      /**< waiting for a 16-byte option header */
	NBD_HS_OPT_DATA,     /**< collecting option data */
	NBD_HS_OPT_SKIP,     /**< discarding the data of an oversized option */
	NBD_HS_GO,           /**< done: enter transmission with `chosen` */
	NBD_HS_ABORT,        /**< done: send what is queued, then close (soft disconnect) */
	NBD_HS_FAIL,         /**< protocol violation: hard disconnect, `fail_reason` says why */
};

struct nbd_hs {
	enum nbd_hs_state state;
	const struct nbd_hs_ops *ops;
	void *ctx;
	const char *refuse;        /**< non-NULL: error every option with this (connection limit) */
	bool shutting_down;        /**< error options with NBD_REP_ERR_SHUTDOWN */
	bool no_zeroes;            /**< client set NBD_FLAG_C_NO_ZEROES */
	bool structured;           /**< NBD_OPT_STRUCTURED_REPLY acknowledged */
	bool block_size_asked;     /**< the final GO asked for NBD_INFO_BLOCK_SIZE */
	bool via_export_name;      /**< ended with NBD_OPT_EXPORT_NAME */
	uint32_t opt;
	uint32_t opt_len;
	uint32_t opt_got;
	uint8_t hdr[16];
	uint32_t hdr_got;
	unsigned nopts;
	const char *fail_reason;
	struct nbd_hs_export chosen;
	uint8_t *out;              /**< queued output (greeting, option replies) */
	size_t out_len;
	size_t out_cap;
	uint8_t data[NBD_OPT_DATA_MAX];
};

/** Start a handshake: queues the greeting. \return 0 or -ENOMEM. */
int nbd_hs_init(struct nbd_hs *hs, const struct nbd_hs_ops *ops, void *ctx, const char *refuse);
void nbd_hs_fini(struct nbd_hs *hs);
/**
 * Feed received bytes. Consumes up to len bytes and returns how many; stops
 * after each option that produced a reply (the caller sends hs->out before
 * feeding more, which bounds the output) and at a terminal state (bytes after
 * a successful GO/EXPORT_NAME belong to the transmission phase).
 */
size_t nbd_hs_feed(struct nbd_hs *hs, const uint8_t *buf, size_t len);
/** Drop the first n bytes of hs->out (they were sent). */
void nbd_hs_out_consume(struct nbd_hs *hs, size_t n);
static inline bool
nbd_hs_done(const struct nbd_hs *hs)
{
	return hs->state >= NBD_HS_GO;
}

/* ---- transmission -------------------------------------------------------- */

/** What was negotiated for one connection. */
struct nbd_xparams {
	uint64_t size;
	uint32_t min_block;
	uint32_t max_block;
	uint16_t tflags;           /**< as sent to the client (SEND_DF included if structured) */
	bool structured;
};

/** A decoded request header. */
struct nbd_req_hdr {
	uint16_t flags;
	uint16_t type;
	uint64_t handle;
	uint64_t offset;
	uint32_t length;
};

#define NBD_REQ_HDR_SIZE 28u

/** Decode 28 bytes. \return false if the magic is wrong (the stream cannot be resynced). */
bool nbd_req_decode(const uint8_t *p, struct nbd_req_hdr *r);
/**
 * Validate a request against the negotiated parameters.
 * \return 0 (execute it) or the NBD_E* error to reply with; *why gets a short
 *         human-readable reason (static string).
 */
uint32_t nbd_req_check(const struct nbd_xparams *x, const struct nbd_req_hdr *r,
		       const char **why);
/** True if the request carries `length` bytes of payload after its header. */
static inline bool
nbd_req_has_payload(const struct nbd_req_hdr *r)
{
	return r->type == NVL_NBD_CMD_WRITE;
}
/** The one errno -> NBD error mapping ("Error values"). */
uint32_t nbd_errno_to_nbd(int rc);
/** A client-supplied string made safe to print (printable ASCII, <= 64 bytes + "..."). */
void nbd_sanitize(char *dst, size_t dstlen, const uint8_t *src, size_t len);
/** Printable name of a command, for logs. */
const char *nbd_cmd_name(uint16_t type);

/* Reply encoders: write into buf, return the byte count. */
#define NBD_SIMPLE_HDR_SIZE 16u
#define NBD_SR_HDR_SIZE     20u
#define NBD_SR_DATA_HDR_SIZE (NBD_SR_HDR_SIZE + 8u)
#define NBD_SR_ERR_MAX      (NBD_SR_HDR_SIZE + 6u + NBD_ERRMSG_MAX)
size_t nbd_enc_simple(uint8_t *buf, uint64_t handle, uint32_t error);
/** Structured OFFSET_DATA chunk header for `len` data bytes at `offset`. */
size_t nbd_enc_sr_data(uint8_t *buf, uint64_t handle, uint64_t offset, uint32_t len, bool done);
/** Structured NONE chunk (DONE). */
size_t nbd_enc_sr_none(uint8_t *buf, uint64_t handle);
/** Structured ERROR chunk (DONE) with msg truncated to NBD_ERRMSG_MAX; buf >= NBD_SR_ERR_MAX. */
size_t nbd_enc_sr_error(uint8_t *buf, uint64_t handle, uint32_t error, const char *msg);

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
