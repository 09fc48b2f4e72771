/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * \file
 * Wire format of the nvlend memory-brick protocol (docs/brick.md, "Wire
 * protocol"). One protocol for every transport: a Unix stream socket (local,
 * "SHM": map responses carry the block's file descriptor with SCM_RIGHTS so
 * the client reaches the block with plain loads and stores) and TCP (data
 * moves with READ/WRITE messages). An RDMA transport would carry the same
 * messages and turn a handle into a remote key.
 *
 * Every message is a 64-byte header, little-endian, optionally followed by
 * data_len payload bytes. Requests and responses share the header; a response
 * has NVL_BRICK_HF_RESPONSE set, echoes req_id and opcode and carries a
 * status. A connection starts with HELLO (version negotiation, brick name);
 * anything else first is refused with NVL_BRICK_S_PROTO.
 *
 * This header holds only layout and constants: no code. Include-safe for C
 * and C++ users of libnvlend.
 */
#ifndef NVLEND_SPEC_BRICK_H
#define NVLEND_SPEC_BRICK_H

#include <stdint.h>

#define NVL_BRICK_MAGIC 0x4b495242u      /**< "BRIK" as little-endian bytes */
/* Version 2 (block ownership, docs/brick.md "Who may use a block"): HELLO
 * carries the client's identity, ALLOC returns the block key, MAP and FREE
 * may carry one. Version 1 clients are refused (NVL_BRICK_S_VERSION). */
#define NVL_BRICK_VERSION_MIN 2
#define NVL_BRICK_VERSION_MAX 2
#define NVL_BRICK_BLOCK_SHIFT 21
#define NVL_BRICK_BLOCK_SIZE (1u << NVL_BRICK_BLOCK_SHIFT) /**< 2 MiB, the only block size */
#define NVL_BRICK_HDR_SIZE 64
#define NVL_BRICK_NAME_MAX 63            /**< brick names: 1..63 bytes */
#define NVL_BRICK_LIST_MAX 2048          /**< extents per LIST response */
#define NVL_BRICK_KEY_SIZE 16            /**< block key: 128 random bits */
#define NVL_BRICK_ID_SIZE 32             /**< client identity secret */
#define NVL_BRICK_CLIENT_MAX 63          /**< client names: 0..63 bytes */
/** Largest payload of any message: a WRITE request or READ response of a whole block. */
#define NVL_BRICK_MAX_DATA NVL_BRICK_BLOCK_SIZE
/** Over RDMA (brick+rdma), a MAP response's payload is the block key followed
 *  by the block's remote handle, little endian: remote address u64, rkey
 *  u32, reserved u32 (docs/brick.md "The brick over RDMA"). */
#define NVL_BRICK_RDMA_HANDLE_SIZE 16

/** Opcodes. */
enum nvl_brick_opc {
	NVL_BRICK_OP_HELLO = 1,     /**< payload: hello_req; response payload: info */
	NVL_BRICK_OP_INFO = 2,      /**< response payload: info */
	NVL_BRICK_OP_ALLOC = 3,     /**< addr; response payload: the block key (16 bytes) */
	NVL_BRICK_OP_FREE = 4,      /**< addr; payload: the block key (16 bytes) or none */
	NVL_BRICK_OP_MAP = 5,       /**< addr, arg = map flags; payload: block key or none;
				     *   response: key (handle), addr, length, arg;
				     *   response payload: the block key (RDMA: then
				     *   NVL_BRICK_RDMA_HANDLE_SIZE bytes of remote handle) */
	NVL_BRICK_OP_UNMAP = 6,     /**< addr (this connection's handles to it) */
	NVL_BRICK_OP_LIST = 7,      /**< addr = first address, arg = max extents (0 = max);
				     *   only the blocks the client owns */
	NVL_BRICK_OP_READ = 8,      /**< key, addr, offset, length; response payload: data */
	NVL_BRICK_OP_WRITE = 9,     /**< key, addr, offset, length; payload: data */
	NVL_BRICK_OP_FLUSH = 10,    /**< key, addr, offset, length */
	NVL_BRICK_OP_FLUSH_ALL = 11,
	NVL_BRICK_OP_KEY = 12,      /**< addr; response payload: the block key (owner only; v2) */
	NVL_BRICK_OP_MAX = 12,
};

/** Header flags. */
#define NVL_BRICK_HF_RESPONSE (1u << 0) /**< set on responses */
#define NVL_BRICK_HF_FD       (1u << 1) /**< MAP response: a file descriptor travels with it */
#define NVL_BRICK_HF_MORE     (1u << 2) /**< LIST response: more extents from hdr.addr on */
#define NVL_BRICK_HF_VALID    (NVL_BRICK_HF_RESPONSE | NVL_BRICK_HF_FD | NVL_BRICK_HF_MORE)

/** MAP flags (hdr.arg of a MAP request). Exactly one of RO/RW, one of SHARED/EXCL. */
#define NVL_BRICK_MAP_RO     (1u << 0)
#define NVL_BRICK_MAP_RW     (1u << 1)
#define NVL_BRICK_MAP_SHARED (1u << 2)
#define NVL_BRICK_MAP_EXCL   (1u << 3)
#define NVL_BRICK_MAP_VALID  0xfu

/** Response status (hdr.status). Converted from/to errno in src/proto/brick.c only. */
enum nvl_brick_status {
	NVL_BRICK_S_OK = 0,
	NVL_BRICK_S_INVAL = 1,      /**< malformed field: alignment, range, flags (EINVAL) */
	NVL_BRICK_S_NOENT = 2,      /**< block not allocated / no such brick (ENOENT) */
	NVL_BRICK_S_EXIST = 3,      /**< block already allocated (EEXIST) */
	NVL_BRICK_S_NOSPC = 4,      /**< brick full (ENOSPC) */
	NVL_BRICK_S_ACCES = 5,      /**< permission denied: not the block's owner and no (or a
				     *   wrong) block key; unknown, forged or revoked handle key
				     *   (EACCES) */
	NVL_BRICK_S_ROFS = 6,       /**< write through a read-only handle (EROFS) */
	NVL_BRICK_S_BUSY = 7,       /**< exclusive map conflict (EBUSY) */
	NVL_BRICK_S_NOMEM = 8,      /**< fast tier full of mapped blocks (ENOMEM) */
	NVL_BRICK_S_IO = 9,         /**< medium error (EIO) */
	NVL_BRICK_S_PROTO = 10,     /**< bad magic/version/flags, no HELLO yet (EPROTO) */
	NVL_BRICK_S_NOTSUP = 11,    /**< unknown opcode (EOPNOTSUPP) */
	NVL_BRICK_S_VERSION = 12,   /**< no common protocol version (EPROTONOSUPPORT) */
	NVL_BRICK_S_NOTMAPPED = 13, /**< unmap of a block this connection did not map (ENXIO) */
	NVL_BRICK_S_INTERNAL = 14,  /**< anything else */
};

/** Message header: 64 bytes, every field little-endian, reserved fields zero. */
struct nvl_brick_hdr {
	uint32_t magic;     /**< NVL_BRICK_MAGIC */
	uint8_t version;    /**< negotiated version (HELLO: the client's maximum) */
	uint8_t opcode;     /**< enum nvl_brick_opc */
	uint16_t flags;     /**< NVL_BRICK_HF_* */
	uint32_t status;    /**< responses: enum nvl_brick_status; requests: 0 */
	uint32_t data_len;  /**< payload bytes that follow */
	uint64_t req_id;    /**< chosen by the client, echoed */
	uint64_t key;       /**< handle key (READ/WRITE/FLUSH; MAP response) */
	uint64_t addr;      /**< logical block address, 2 MiB aligned */
	uint64_t offset;    /**< byte offset inside the block */
	uint64_t length;    /**< bytes (READ/WRITE/FLUSH; MAP response: block length) */
	uint32_t arg;       /**< MAP flags; LIST max extents / count */
	uint32_t rsvd;
};
_Static_assert(sizeof(struct nvl_brick_hdr) == NVL_BRICK_HDR_SIZE, "brick header is 64 bytes");

/** HELLO request payload, followed by name_len bytes of brick name (no NUL),
 *  then client_len bytes of client part: NVL_BRICK_ID_SIZE bytes of identity
 *  secret and the client's name (0..NVL_BRICK_CLIENT_MAX printable bytes).
 *  client_len 0: an anonymous client (it owns nothing; keys only). */
struct nvl_brick_hello {
	uint8_t min_version;
	uint8_t max_version;
	uint16_t rsvd0;
	uint32_t features;  /**< none defined yet: 0 */
	uint32_t name_len;  /**< 1..NVL_BRICK_NAME_MAX */
	uint32_t client_len; /**< 0, or NVL_BRICK_ID_SIZE + 0..NVL_BRICK_CLIENT_MAX (v2) */
};
_Static_assert(sizeof(struct nvl_brick_hello) == 16, "hello is 16 bytes");

/** Persistence of a tier (info.persistence). */
enum nvl_brick_persistence {
	NVL_BRICK_PERSIST_VOLATILE = 0, /**< tmpfs/hugetlbfs: survives a daemon crash, not a reboot */
	NVL_BRICK_PERSIST_FSYNC = 1,    /**< a file system: flush = fdatasync of the range */
	NVL_BRICK_PERSIST_PMEM = 2,     /**< DAX + MAP_SYNC: flush = CPU cache write-back */
};

/** INFO / HELLO response payload. */
struct nvl_brick_info_wire {
	uint32_t version;
	uint32_t features;
	uint64_t block_size;
	uint64_t capacity_blocks;
	uint64_t fast_blocks;       /**< fast-tier budget */
	uint64_t allocated_blocks;
	uint64_t mapped_blocks;
	uint64_t fast_tier_blocks;  /**< allocated blocks resident in the fast tier */
	uint64_t slow_tier_blocks;
	uint32_t persistence;       /**< enum nvl_brick_persistence of the fast tier */
	uint32_t flags;             /**< NVL_BRICK_INFO_* */
	uint8_t rsvd[56];
};
#define NVL_BRICK_INFO_VOLATILE (1u << 0) /**< flush does not survive a power loss */
#define NVL_BRICK_INFO_LOCAL    (1u << 1) /**< transport passes block fds (one-sided mmap) */
_Static_assert(sizeof(struct nvl_brick_info_wire) == 128, "info is 128 bytes");

/** Extent states in a LIST response. */
enum nvl_brick_extent_state {
	NVL_BRICK_EXT_FAST = 1,   /**< resident in the fast tier, not mapped */
	NVL_BRICK_EXT_SLOW = 2,   /**< in the slow tier */
	NVL_BRICK_EXT_MAPPED = 3, /**< mapped (therefore in the fast tier) */
};

/** One extent of LIST: length bytes of consecutive allocated blocks in one state. */
struct nvl_brick_extent {
	uint64_t addr;
	uint64_t length;
	uint32_t state;  /**< enum nvl_brick_extent_state */
	uint32_t rsvd;
};
_Static_assert(sizeof(struct nvl_brick_extent) == 24, "extent is 24 bytes");

#endif
