/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD wire format: magics, flags, option/command/reply codes and message
 * layouts of the NBD protocol (doc/proto.md of the NetworkBlockDevice/nbd
 * repository; section names below refer to it). Every multi-byte field on the
 * wire is big-endian; the structs are packed images of the messages, so fill
 * and read them with htobe*()/be*toh(). No state, no functions: shared by the
 * server (src/nbd) and any client code.
 */
#ifndef NVLEND_SPEC_NBD_H
#define NVLEND_SPEC_NBD_H

#include <stdint.h>

/* "Newstyle negotiation" */
#define NVL_NBD_MAGIC            0x4e42444d41474943ULL /* "NBDMAGIC" (INIT_PASSWD) */
#define NVL_NBD_IHAVEOPT         0x49484156454f5054ULL /* "IHAVEOPT" */
#define NVL_NBD_OPT_REPLY_MAGIC  0x0003e889045565a9ULL /* "Fixed newstyle negotiation" */
#define NVL_NBD_DEFAULT_PORT     10809                 /* IANA-reserved port */

/* "Transmission": message magics */
#define NVL_NBD_REQUEST_MAGIC          0x25609513u
#define NVL_NBD_SIMPLE_REPLY_MAGIC     0x67446698u
#define NVL_NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

/* "Conventions": strings (export names, messages) MUST be no longer than this */
#define NVL_NBD_MAX_STRING 4096

/* "Handshake flags" (server, 16 bits) */
#define NVL_NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NVL_NBD_FLAG_NO_ZEROES      (1u << 1)

/* "Client flags" (32 bits) */
#define NVL_NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NVL_NBD_FLAG_C_NO_ZEROES      (1u << 1)

/* "Transmission flags" (16 bits) */
#define NVL_NBD_FLAG_HAS_FLAGS         (1u << 0)
#define NVL_NBD_FLAG_READ_ONLY         (1u << 1)
#define NVL_NBD_FLAG_SEND_FLUSH        (1u << 2)
#define NVL_NBD_FLAG_SEND_FUA          (1u << 3)
#define NVL_NBD_FLAG_ROTATIONAL        (1u << 4)
#define NVL_NBD_FLAG_SEND_TRIM         (1u << 5)
#define NVL_NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NVL_NBD_FLAG_SEND_DF           (1u << 7)
#define NVL_NBD_FLAG_CAN_MULTI_CONN    (1u << 8)
#define NVL_NBD_FLAG_SEND_RESIZE       (1u << 9)
#define NVL_NBD_FLAG_SEND_CACHE        (1u << 10)
#define NVL_NBD_FLAG_SEND_FAST_ZERO    (1u << 11)

/* "Option types" */
#define NVL_NBD_OPT_EXPORT_NAME       1
#define NVL_NBD_OPT_ABORT             2
#define NVL_NBD_OPT_LIST              3
#define NVL_NBD_OPT_PEEK_EXPORT       4  /* withdrawn */
#define NVL_NBD_OPT_STARTTLS          5
#define NVL_NBD_OPT_INFO              6
#define NVL_NBD_OPT_GO                7
#define NVL_NBD_OPT_STRUCTURED_REPLY  8
#define NVL_NBD_OPT_LIST_META_CONTEXT 9
#define NVL_NBD_OPT_SET_META_CONTEXT  10
#define NVL_NBD_OPT_EXTENDED_HEADERS  11

/* "Option reply types"; errors have bit 31 set */
#define NVL_NBD_REP_ACK          1u
#define NVL_NBD_REP_SERVER       2u
#define NVL_NBD_REP_INFO         3u
#define NVL_NBD_REP_META_CONTEXT 4u
#define NVL_NBD_REP_FLAG_ERROR   (1u << 31)
#define NVL_NBD_REP_ERR_UNSUP           (NVL_NBD_REP_FLAG_ERROR | 1u)
#define NVL_NBD_REP_ERR_POLICY          (NVL_NBD_REP_FLAG_ERROR | 2u)
#define NVL_NBD_REP_ERR_INVALID         (NVL_NBD_REP_FLAG_ERROR | 3u)
#define NVL_NBD_REP_ERR_PLATFORM        (NVL_NBD_REP_FLAG_ERROR | 4u)
#define NVL_NBD_REP_ERR_TLS_REQD        (NVL_NBD_REP_FLAG_ERROR | 5u)
#define NVL_NBD_REP_ERR_UNKNOWN         (NVL_NBD_REP_FLAG_ERROR | 6u)
#define NVL_NBD_REP_ERR_SHUTDOWN        (NVL_NBD_REP_FLAG_ERROR | 7u)
#define NVL_NBD_REP_ERR_BLOCK_SIZE_REQD (NVL_NBD_REP_FLAG_ERROR | 8u)
#define NVL_NBD_REP_ERR_TOO_BIG         (NVL_NBD_REP_FLAG_ERROR | 9u)

/* NBD_REP_INFO information types ("NBD_OPT_INFO and NBD_OPT_GO") */
#define NVL_NBD_INFO_EXPORT      0
#define NVL_NBD_INFO_NAME        1
#define NVL_NBD_INFO_DESCRIPTION 2
#define NVL_NBD_INFO_BLOCK_SIZE  3

/* "Request types" */
#define NVL_NBD_CMD_READ         0
#define NVL_NBD_CMD_WRITE        1
#define NVL_NBD_CMD_DISC         2
#define NVL_NBD_CMD_FLUSH        3
#define NVL_NBD_CMD_TRIM         4
#define NVL_NBD_CMD_CACHE        5
#define NVL_NBD_CMD_WRITE_ZEROES 6
#define NVL_NBD_CMD_BLOCK_STATUS 7
#define NVL_NBD_CMD_RESIZE       8

/* "Command flags" */
#define NVL_NBD_CMD_FLAG_FUA         (1u << 0)
#define NVL_NBD_CMD_FLAG_NO_HOLE     (1u << 1)
#define NVL_NBD_CMD_FLAG_DF          (1u << 2)
#define NVL_NBD_CMD_FLAG_REQ_ONE     (1u << 3)
#define NVL_NBD_CMD_FLAG_FAST_ZERO   (1u << 4)
#define NVL_NBD_CMD_FLAG_PAYLOAD_LEN (1u << 5) /* extended headers only */

/* "Structured reply flags" and "Structured reply types" */
#define NVL_NBD_REPLY_FLAG_DONE          (1u << 0)
#define NVL_NBD_REPLY_TYPE_NONE          0
#define NVL_NBD_REPLY_TYPE_OFFSET_DATA   1
#define NVL_NBD_REPLY_TYPE_OFFSET_HOLE   2
#define NVL_NBD_REPLY_TYPE_BLOCK_STATUS  5
#define NVL_NBD_REPLY_TYPE_ERROR         ((1u << 15) | 1u)
#define NVL_NBD_REPLY_TYPE_ERROR_OFFSET  ((1u << 15) | 2u)

/* "Error values" */
#define NVL_NBD_EPERM     1
#define NVL_NBD_EIO       5
#define NVL_NBD_ENOMEM    12
#define NVL_NBD_EINVAL    22
#define NVL_NBD_ENOSPC    28
#define NVL_NBD_EOVERFLOW 75
#define NVL_NBD_ENOTSUP   95
#define NVL_NBD_ESHUTDOWN 108

/* "base:allocation metadata context": the metadata context name and its
 * status flags (NBD_REPLY_TYPE_BLOCK_STATUS descriptors) */
#define NVL_NBD_META_BASE_ALLOCATION "base:allocation"
#define NVL_NBD_STATE_HOLE (1u << 0) /* not allocated in the backing store */
#define NVL_NBD_STATE_ZERO (1u << 1) /* reads as zeroes */

/* "Block size constraints": defaults and limits */
#define NVL_NBD_MAX_MIN_BLOCK     65536u      /* minimum block size MUST NOT exceed 2^16 */
#define NVL_NBD_SAFE_PAYLOAD      (1u << 25)  /* lengths < 2^25 SHOULD NOT be deemed DoS */

/* S: greeting of newstyle negotiation (18 bytes) */
struct nvl_nbd_greeting {
	uint64_t magic;      /* NVL_NBD_MAGIC */
	uint64_t ihaveopt;   /* NVL_NBD_IHAVEOPT */
	uint16_t hs_flags;   /* handshake flags */
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nbd_greeting) == 18, "newstyle greeting is 18 bytes");

/* C: option header (16 bytes), followed by `length` bytes of data */
struct nvl_nbd_opt_hdr {
	uint64_t magic;      /* NVL_NBD_IHAVEOPT */
	uint32_t option;
	uint32_t length;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nbd_opt_hdr) == 16, "option header is 16 bytes");

/* S: option reply header (20 bytes), followed by `length` bytes of data */
struct nvl_nbd_opt_reply {
	uint64_t magic;      /* NVL_NBD_OPT_REPLY_MAGIC */
	uint32_t option;
	uint32_t type;       /* NVL_NBD_REP_* */
	uint32_t length;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nbd_opt_reply) == 20, "option reply header is 20 bytes");

/* S: answer to NBD_OPT_EXPORT_NAME: size, flags, then 124 zero bytes
 * unless NBD_FLAG_C_NO_ZEROES was negotiated */
struct nvl_nbd_export_name_reply {
	uint64_t size;
	uint16_t tflags;
	uint8_t zeroes[124];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nbd_export_name_reply) == 134, "EXPORT_NAME reply is 134 bytes");

/* NBD_REP_INFO payloads */
struct nvl_nbd_info_export {
	uint16_t type;       /* NVL_NBD_INFO_EXPORT */
	uint64_t size;
	uint16_t tflags;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nbd_info_export) == 12, "NBD_INFO_EXPORT length is 12");

struct nvl_nbd_info_block_size {
	uint16_t type;       /* NVL_NBD_INFO_BLOCK_SIZE */
	uint32_t min_block;
	uint32_t pref_block;
	uint32_t max_block;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nbd_info_block_size) == 14, "NBD_INFO_BLOCK_SIZE length is 14");

/* C: request (28 bytes), followed by `length` bytes of data for NBD_CMD_WRITE */
struct nvl_nbd_request {
	uint32_t magic;      /* NVL_NBD_REQUEST_MAGIC */
	uint16_t flags;      /* NVL_NBD_CMD_FLAG_* */
	uint16_t type;       /* NVL_NBD_CMD_* */
	uint64_t handle;     /* opaque, echoed in the reply */
	uint64_t offset;
	uint32_t length;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nbd_request) == 28, "request is 28 bytes");

/* S: simple reply (16 bytes), followed by the data of a successful simple READ */
struct nvl_nbd_simple_reply {
	uint32_t magic;      /* NVL_NBD_SIMPLE_REPLY_MAGIC */
	uint32_t error;      /* NVL_NBD_E* or 0 */
	uint64_t handle;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nbd_simple_reply) == 16, "simple reply is 16 bytes");

/* S: structured reply chunk header (20 bytes), followed by `length` bytes */
struct nvl_nbd_structured_reply {
	uint32_t magic;      /* NVL_NBD_STRUCTURED_REPLY_MAGIC */
	uint16_t flags;      /* NVL_NBD_REPLY_FLAG_* */
	uint16_t type;       /* NVL_NBD_REPLY_TYPE_* */
	uint64_t handle;
	uint32_t length;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nbd_structured_reply) == 20, "structured reply header is 20 bytes");

/* NBD_REPLY_TYPE_OFFSET_HOLE payload */
struct nvl_nbd_chunk_hole {
	uint64_t offset;
	uint32_t length;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nbd_chunk_hole) == 12, "OFFSET_HOLE payload is 12 bytes");

/* NBD_REPLY_TYPE_BLOCK_STATUS payload: the metadata context id, then one or
 * more of these descriptors (consecutive extents from the request's offset) */
struct nvl_nbd_block_descriptor {
	uint32_t length;     /* MUST be nonzero */
	uint32_t status;     /* NVL_NBD_STATE_* for base:allocation */
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nbd_block_descriptor) == 8, "block descriptor is 8 bytes");

/* NBD_REPLY_TYPE_ERROR payload head: error, message length, then the message */
struct nvl_nbd_chunk_error {
	uint32_t error;
	uint16_t msg_len;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nbd_chunk_error) == 6, "error chunk head is 6 bytes");

#endif
