/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NBD protocol without sockets (doc/proto.md of NetworkBlockDevice/nbd),
 * shared by both NBD servers of the tree:
 * - the daemon's NBD server (src/nbd): the fixed-newstyle handshake as a
 *   byte-stream state machine, then the transmission phase;
 * - the attach process's "nbd" mechanism (tools/nvlend/attach_nbd.c), which
 *   serves the transmission phase to the Linux kernel's NBD client on socket
 *   pairs (no handshake: the device is configured with ioctls, and its
 *   parameters are put in a struct nbd_xparams by hand).
 *
 * What is here: the handshake (bytes in, option replies out, outcome),
 * request decoding and validation against the negotiated parameters, reply
 * encoding, and the one errno -> NBD error converter. All integers on the
 * wire are big-endian.
 *
 * Threads: pure functions of their arguments and of the handshake object,
 * which belongs to one connection and is driven by its owner only. Nothing
 * blocks; nothing allocates but the handshake's output buffer.
 * Includes only util and include/nvlend/spec.
 */
#ifndef NVL_PROTO_NBD_H
#define NVL_PROTO_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvlend/spec/nbd.h"

/* Limits of the codec (documented in docs/nbd.md). */
#define NBD_OPT_DATA_MAX      16384      /* option payload we buffer; larger are skipped */
#define NBD_HS_OUT_MAX        (1u << 20) /* handshake output we queue before stopping */
#define NBD_MAX_PAYLOAD       (32u << 20) /* largest READ/WRITE payload (2^25); the Linux
					   * client's largest request is 65536 x 512 bytes */
#define NBD_ERRMSG_MAX        160        /* error message bytes in an ERROR chunk */
/* The one metadata context we serve, base:allocation, and the id that
 * NBD_OPT_SET_META_CONTEXT gives it ("transient", opaque to the client;
 * nonzero, so that a client wrongly keeping LIST's reserved 0 is noticed). */
#define NBD_META_ID_BASE_ALLOCATION 1u

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
	bool meta_alloc;           /**< the last SET_META_CONTEXT selected base:allocation... */
	bool chosen_meta_alloc;    /**< ...for the export that GO/EXPORT_NAME chose */
	uint32_t meta_name_len;    /**< ...of the export named by meta_name */
	uint8_t meta_name[NVL_NBD_MAX_STRING];
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

/** What was negotiated for one connection (or configured by ioctl). */
struct nbd_xparams {
	uint64_t size;
	uint32_t min_block;        /**< a power of two: offsets and lengths are multiples */
	uint32_t max_block;        /**< longest READ/WRITE/CACHE */
	uint16_t tflags;           /**< as sent to the client (SEND_DF included if structured) */
	bool structured;
	bool meta_alloc;           /**< base:allocation was negotiated: BLOCK_STATUS allowed */
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
 * Validate a request against the negotiated parameters: known command, flags
 * that apply to it (FUA on any; DF, NO_HOLE, FAST_ZERO where advertised),
 * FLUSH without range, no write to a read-only export, TRIM/WRITE_ZEROES only
 * if advertised, nonzero length, aligned to min_block, inside the export,
 * READ/WRITE/CACHE no longer than max_block; BLOCK_STATUS only with structured
 * replies and base:allocation negotiated (REQ_ONE allowed, any length up to
 * the end). NBD_CMD_DISC passes (it has no reply).
 * \return 0 (execute it) or the NBD_E* error to reply with: NBD_EPERM (write
 *         to a read-only export), NBD_ENOSPC (WRITE/WRITE_ZEROES beyond the
 *         end), NBD_EINVAL (anything else); *why gets a short human-readable
 *         reason (static string). A refused WRITE's payload still follows.
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
#define NBD_SR_BS_HDR_SIZE  (NBD_SR_HDR_SIZE + 4u)
#define NBD_BS_DESC_SIZE    8u
/** Simple reply (the data of a successful READ follows it). */
size_t nbd_enc_simple(uint8_t *buf, uint64_t handle, uint32_t error);
/** Structured OFFSET_DATA chunk header for `len` data bytes at `offset`. */
size_t nbd_enc_sr_data(uint8_t *buf, uint64_t handle, uint64_t offset, uint32_t len, bool done);
/**
 * Structured BLOCK_STATUS chunk (DONE) with `n` descriptors of context `id`:
 * the 20-byte chunk header and the context id (NBD_SR_BS_HDR_SIZE bytes);
 * the n descriptors (nbd_enc_bs_desc, 8 bytes each) follow it.
 */
size_t nbd_enc_sr_block_status(uint8_t *buf, uint64_t handle, uint32_t id, uint32_t n);
/** One block status descriptor: 8 bytes. */
size_t nbd_enc_bs_desc(uint8_t *buf, uint32_t length, uint32_t status);
/** Structured NONE chunk (DONE). */
size_t nbd_enc_sr_none(uint8_t *buf, uint64_t handle);
/** Structured ERROR chunk (DONE) with msg truncated to NBD_ERRMSG_MAX; buf >= NBD_SR_ERR_MAX. */
size_t nbd_enc_sr_error(uint8_t *buf, uint64_t handle, uint32_t error, const char *msg);

#endif
