/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NBD transmission phase as the attach process serves it to the Linux
 * kernel's NBD client (the handshake is skipped: the device is configured
 * with ioctls). Facts from the NBD protocol document (NetworkBlockDevice/nbd
 * doc/proto.md, "Transmission phase"): all integers big-endian.
 *
 *   request (28 bytes): magic 0x25609513, u16 command flags, u16 type,
 *                       u64 handle (cookie), u64 offset, u32 length
 *   simple reply (16):  magic 0x67446698, u32 error, u64 handle
 *                       (+ length bytes of data for a successful read)
 *
 * Kept private to the attach mechanism (prefix attach_nbd_); an NBD server
 * elsewhere in the tree has its own wire header.
 * Threads: pure functions.
 */
#ifndef NVL_ATTACH_NBD_PROTO_H
#define NVL_ATTACH_NBD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATTACH_NBD_REQUEST_MAGIC 0x25609513u
#define ATTACH_NBD_REPLY_MAGIC 0x67446698u
#define ATTACH_NBD_REQUEST_SIZE 28
#define ATTACH_NBD_REPLY_SIZE 16

/* commands */
#define ATTACH_NBD_CMD_READ 0
#define ATTACH_NBD_CMD_WRITE 1
#define ATTACH_NBD_CMD_DISC 2
#define ATTACH_NBD_CMD_FLUSH 3
#define ATTACH_NBD_CMD_TRIM 4
#define ATTACH_NBD_CMD_CACHE 5
#define ATTACH_NBD_CMD_WRITE_ZEROES 6

/* command flags */
#define ATTACH_NBD_CMD_FLAG_FUA (1u << 0)
#define ATTACH_NBD_CMD_FLAG_NO_HOLE (1u << 1)

/* transmission flags (NBD_SET_FLAGS) */
#define ATTACH_NBD_FLAG_HAS_FLAGS (1u << 0)
#define ATTACH_NBD_FLAG_READ_ONLY (1u << 1)
#define ATTACH_NBD_FLAG_SEND_FLUSH (1u << 2)
#define ATTACH_NBD_FLAG_SEND_FUA (1u << 3)
#define ATTACH_NBD_FLAG_SEND_TRIM (1u << 5)
#define ATTACH_NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define ATTACH_NBD_FLAG_CAN_MULTI_CONN (1u << 8)

/* errors (the protocol's values, which are Linux's errno numbers) */
#define ATTACH_NBD_EPERM 1
#define ATTACH_NBD_EIO 5
#define ATTACH_NBD_ENOMEM 12
#define ATTACH_NBD_EINVAL 22
#define ATTACH_NBD_ENOSPC 28
#define ATTACH_NBD_EOVERFLOW 75
#define ATTACH_NBD_ENOTSUP 95
#define ATTACH_NBD_ESHUTDOWN 108

/* largest request the Linux client sends: max_hw_sectors 65536 x 512 */
#define ATTACH_NBD_MAX_LEN (32u << 20)

struct attach_nbd_req {
	uint16_t flags;
	uint16_t type;
	uint64_t handle;
	uint64_t offset;
	uint32_t length;
};

/** Decode a request header (exactly ATTACH_NBD_REQUEST_SIZE bytes).
 *  \return 0, -EPROTO (bad magic: the stream cannot be trusted any more). */
int attach_nbd_req_parse(const uint8_t *b, size_t len, struct attach_nbd_req *out);

/**
 * Validate a decoded request against the export: known type and flags,
 * offset + length inside size, block-aligned, length bounded.
 * \return 0 or the NBD error to answer with. For writes the caller must
 *         still consume the payload (length bytes) when an error comes back.
 */
uint32_t attach_nbd_req_check(const struct attach_nbd_req *r, uint64_t size, uint32_t block_size,
			      bool readonly);

/** Encode a simple reply. */
void attach_nbd_reply_build(uint8_t out[ATTACH_NBD_REPLY_SIZE], uint32_t error, uint64_t handle);

/** The one errno -> NBD error mapping. */
uint32_t attach_nbd_err_from_errno(int rc);

#endif
