/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * \file
 * libnvlend memory-brick client (docs/brick.md).
 *
 * A brick is a dumb, low-latency store of 2 MiB blocks named by 64-bit
 * logical addresses (any 2 MiB-aligned value). A client allocates a block,
 * maps it to get a handle (an unguessable 64-bit key), reads and writes it,
 * flushes ranges to make them durable, unmaps it (the handle is revoked, the
 * brick may move the block to its slow tier) and frees it.
 *
 * Connections are named by URI (DESIGN.md section 7):
 *   - `brick+shm:///ABSOLUTE/SOCKET/PATH?name=NAME`: local. nvl_brick_map()
 *     also receives the block's file descriptor and mmaps it: handle.ptr is
 *     the block, accessed with plain loads and stores (one-sided: no daemon
 *     code on the data path).
 *   - `brick+tcp://HOST:PORT/NAME` (IPv6 hosts in brackets): remote. Data
 *     moves with nvl_brick_read()/nvl_brick_write(); handle.ptr is NULL.
 *   - `brick+rdma://HOST:PORT/NAME`: remote, over the RDMA CM (an RDMA device
 *     must reach HOST). A map is a memory region of the daemon:
 *     nvl_brick_read()/nvl_brick_write() through this connection's handle
 *     keys are one-sided RDMA READ/WRITE (no daemon code on the data path);
 *     nvl_brick_rdma_handle() gives what a remote NIC needs (remote address,
 *     rkey) and nvl_brick_rdma_read/write/sync_read() use it directly.
 *     Unmap and free deregister the region before they return: an access
 *     through a kept handle then fails with -EACCES (a remote access error,
 *     which also breaks the connection's queue pair: -EPIPE afterwards).
 *
 * Durability: a write (a store through ptr, or nvl_brick_write()) is durable
 * once nvl_brick_flush() of a range containing it returns 0 (on a brick that
 * reports is_volatile, "durable" means: survives a daemon crash, not a power
 * loss). Unflushed data may be lost in a crash, but never corrupts another
 * block or the block map.
 *
 * Ownership (docs/brick.md "Who may use a block"): a block belongs to the
 * client identity that allocated it; anyone else needs its **block key**
 * (128 random bits). The identity is a secret in a file the library reads
 * at connect: `$NVLEND_BRICK_IDENTITY` (created 0600 if missing; `none`:
 * anonymous), else `~/.config/nvlend/brick-identity` (created on first use;
 * `~` is $HOME, else the user's home directory; anonymous when that cannot
 * hold one). The file must belong to the user and
 * give no access to group or others. `$NVLEND_BRICK_CLIENT` names the client
 * (a label shown to operators; default login@host). The owner may map,
 * free, list and ask for the key of its blocks from any connection; a
 * client that is handed a key (nvl_brick_key_add) may map and free the
 * block. The connection keeps the keys it learns (alloc, map, key_get,
 * key_add) and sends them by itself.
 *
 * Threading: a connection serialises its calls with a mutex; use one
 * connection per thread for parallelism. Handles belong to the connection
 * that mapped them and are revoked when it unmaps or disconnects; their
 * handle keys may be used by any connection to the same brick.
 * Errors are negative errno values.
 */
#ifndef NVLEND_BRICK_H
#define NVLEND_BRICK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvlend/spec/brick.h"

#ifdef __cplusplus
extern "C" {
#endif

struct nvl_brick;

/** Map flags for nvl_brick_map() (one of RO/RW, optionally SHARED or EXCL). */
#define NVL_BRICK_RO     NVL_BRICK_MAP_RO
#define NVL_BRICK_RW     NVL_BRICK_MAP_RW
#define NVL_BRICK_SHARED NVL_BRICK_MAP_SHARED  /**< default: others may map it too */
#define NVL_BRICK_EXCL   NVL_BRICK_MAP_EXCL    /**< nobody else may map it meanwhile */

/** What a brick reports about itself. */
struct nvl_brick_info {
	unsigned version;              /**< negotiated protocol version */
	uint64_t block_size;           /**< always 2 MiB */
	uint64_t capacity_blocks;
	uint64_t fast_blocks;          /**< fast-tier budget */
	uint64_t allocated_blocks;
	uint64_t mapped_blocks;
	uint64_t fast_tier_blocks;
	uint64_t slow_tier_blocks;
	unsigned persistence;          /**< enum nvl_brick_persistence of the fast tier */
	bool is_volatile;              /**< flushed data does not survive a power loss */
	bool local;                    /**< map() gives a pointer (shm connection) */
};

/** A mapped block. Filled by nvl_brick_map(); plain data, copy freely. */
struct nvl_brick_handle {
	uint64_t key;      /**< handle key: READ/WRITE/FLUSH need it (revoked on unmap) */
	uint64_t addr;     /**< the block's logical address */
	uint64_t length;   /**< 2 MiB */
	uint32_t flags;    /**< granted NVL_BRICK_MAP_* flags */
	void *ptr;         /**< local connections: the block, mmap'ed; else NULL */
	/* The block key (what another client needs: nvl_brick_key_get) is not
	 * here: this struct is the caller's and keeps its ABI 0 size. */
};

/** A parsed brick URI (nvl_brick_uri_parse). */
struct nvl_brick_uri {
	bool tcp;                       /**< brick+tcp (else brick+shm or brick+rdma) */
	char path[108];                 /**< shm: Unix socket path */
	char host[256];                 /**< tcp, rdma: host name or address (no brackets) */
	char port[16];                  /**< tcp, rdma: port */
	char name[NVL_BRICK_NAME_MAX + 1];
	bool rdma;                      /**< brick+rdma (added at the end) */
};

/** What a remote NIC needs to reach a block mapped over RDMA (the seed's
 *  "RDMA handle": rkey and remote address). Plain data, copy freely; it
 *  stops working when the block is unmapped or freed. */
struct nvl_brick_rdma_handle {
	uint64_t addr;         /**< the block's logical address */
	uint64_t length;       /**< 2 MiB */
	uint64_t remote_addr;  /**< the block's first byte in the daemon's memory region */
	uint32_t rkey;         /**< the region's remote key */
	uint32_t flags;        /**< granted NVL_BRICK_MAP_* flags */
};

/**
 * Parse a brick URI.
 * \return 0, or -EINVAL (unknown scheme, missing name/port/path, relative
 *         shm path, bad characters), -ENAMETOOLONG (a part does not fit).
 */
int nvl_brick_uri_parse(const char *uri, struct nvl_brick_uri *out);

/**
 * Connect to a brick and negotiate the protocol version.
 * \param uri  `brick+shm:///PATH?name=NAME` or `brick+tcp://HOST:PORT/NAME`
 * \return 0, -EINVAL/-ENAMETOOLONG (URI), -ENOENT (no such brick there, or no
 *         socket at the path), -ECONNREFUSED, -EHOSTUNREACH (name resolution),
 *         -EPROTONOSUPPORT (no common version, e.g. a daemon older than
 *         protocol v2), -EPROTO (not a brick server),
 *         -EPERM (the identity file gives access to group or others, or is
 *         not the user's), -ETIMEDOUT, -ENOMEM, or another -errno from socket
 *         calls or from reading/creating `$NVLEND_BRICK_IDENTITY`.
 */
int nvl_brick_connect(const char *uri, struct nvl_brick **out);

/** Unmap every local mapping, close the connection (the daemon revokes its handles).
 *  NULL is ignored. */
void nvl_brick_disconnect(struct nvl_brick *b);

/** Current brick information (counters are live).
 *  \return 0, -EPIPE (connection lost), -ETIMEDOUT, -EPROTO. */
int nvl_brick_info(struct nvl_brick *b, struct nvl_brick_info *out);

/**
 * Allocate the block at logical address addr (zero-filled), owned by this
 * client's identity; the connection keeps its key (nvl_brick_key_get).
 * \return 0, -EINVAL (addr not 2 MiB aligned), -EEXIST (already allocated, by
 *         anyone), -ENOSPC (brick full), -ENOMEM, -EIO (medium), -EPIPE,
 *         -ETIMEDOUT.
 */
int nvl_brick_alloc(struct nvl_brick *b, uint64_t addr);

/**
 * Free a block: its space returns to the brick, every handle to it (of any
 * client) is revoked, local mappings of it made by this connection are unmapped.
 * \return 0, -EINVAL (alignment), -ENOENT (not allocated), -EACCES (permission
 *         denied: not the owner, and no or a wrong block key), -EIO, -EPIPE,
 *         -ETIMEDOUT.
 */
int nvl_brick_free(struct nvl_brick *b, uint64_t addr);

/**
 * Map a block: it becomes resident in the fast tier and a handle is returned.
 * On local connections h->ptr points at the block (PROT_READ for RO handles).
 * \param flags NVL_BRICK_RO or NVL_BRICK_RW, optionally | NVL_BRICK_SHARED
 *              (default) or NVL_BRICK_EXCL
 * \return 0, -EINVAL (alignment, flags), -ENOENT (not allocated), -EACCES
 *         (permission denied: not the owner, and no or a wrong block key),
 *         -EBUSY (exclusive conflict), -ENOMEM (fast tier full of mapped blocks),
 *         -EIO, -EPIPE, -ETIMEDOUT, -EPROTO, or -errno from mmap.
 */
int nvl_brick_map(struct nvl_brick *b, uint64_t addr, uint32_t flags, struct nvl_brick_handle *h);

/**
 * Unmap: revoke this connection's handles to addr (their keys then fail with
 * -EACCES) and unmap their local pointers. The brick may now move the block
 * to the slow tier; the next map brings it back.
 * \return 0, -EINVAL, -ENOENT (not allocated), -ENXIO (not mapped by this
 *         connection), -EPIPE, -ETIMEDOUT.
 */
int nvl_brick_unmap(struct nvl_brick *b, uint64_t addr);

/**
 * Extent list of the blocks this client owns, with their state (mapped /
 * fast / slow), sorted by address, adjacent blocks in one state merged.
 * (Operators see every block with the brick_get_blocks RPC.)
 * \param ext  set to a malloc'ed array (free() it); NULL when count is 0
 * \return 0, -ENOMEM, -EPIPE, -ETIMEDOUT, -EPROTO.
 */
int nvl_brick_list(struct nvl_brick *b, struct nvl_brick_extent **ext, size_t *count);

/**
 * Read len bytes at logical address addr through a handle key; the range
 * must lie inside the handle's block.
 * \return 0, -EINVAL (range), -EACCES (unknown, forged or revoked key, or a key
 *         of another block), -EPIPE, -ETIMEDOUT, -EPROTO.
 */
int nvl_brick_read(struct nvl_brick *b, uint64_t key, uint64_t addr, void *buf, size_t len);

/**
 * Write len bytes at logical address addr through a handle key (not durable
 * until flushed).
 * \return 0, -EINVAL (range), -EACCES (key), -EROFS (read-only handle),
 *         -EPIPE, -ETIMEDOUT, -EPROTO.
 */
int nvl_brick_write(struct nvl_brick *b, uint64_t key, uint64_t addr, const void *buf,
		    size_t len);

/**
 * Returns once every write to [addr, addr+len) that completed before the call
 * is durable on the fast tier's medium (len 0: to the end of the block).
 * \return 0, -EINVAL (range), -EACCES (key), -EIO (medium), -EPIPE, -ETIMEDOUT.
 */
int nvl_brick_flush(struct nvl_brick *b, uint64_t key, uint64_t addr, size_t len);

/** Flush every block of the brick written since the last flush_all.
 *  \return 0, -EIO, -EPIPE, -ETIMEDOUT. */
int nvl_brick_flush_all(struct nvl_brick *b);

/**
 * Give the connection a block key (handed over by the block's owner): MAP and
 * FREE of addr send it from now on. A wrong key is only found out then (-EACCES).
 * \return 0, -EINVAL (alignment), -ENOMEM.
 */
int nvl_brick_key_add(struct nvl_brick *b, uint64_t addr, const uint8_t key[NVL_BRICK_KEY_SIZE]);

/**
 * The block key of addr: known to the connection (alloc, map, key_add), else
 * asked of the daemon, which tells the block's owner only.
 * \return 0, -EINVAL (alignment), -ENOENT (not allocated), -EACCES (not the
 *         owner), -ENOMEM, -EPIPE, -ETIMEDOUT, -EPROTO.
 */
int nvl_brick_key_get(struct nvl_brick *b, uint64_t addr, uint8_t key[NVL_BRICK_KEY_SIZE]);

/** Parse a block key written as 32 hex digits. \return 0, -EINVAL. */
int nvl_brick_key_parse(const char *hex, uint8_t key[NVL_BRICK_KEY_SIZE]);

/** Write a block key as 32 lowercase hex digits and a NUL. */
void nvl_brick_key_format(const uint8_t key[NVL_BRICK_KEY_SIZE],
			  char out[2 * NVL_BRICK_KEY_SIZE + 1]);

/**
 * The RDMA handle of a block this connection mapped over RDMA.
 * \return 0, -ENOENT (no live map with this handle key on this connection),
 *         -EOPNOTSUPP (not a brick+rdma connection).
 */
int nvl_brick_rdma_handle(struct nvl_brick *b, uint64_t key, struct nvl_brick_rdma_handle *out);

/**
 * One-sided RDMA READ of len bytes at offset of an RDMA handle's block (the
 * handle may be stale: then the daemon's NIC refuses it).
 * \return 0, -EINVAL (range), -EOPNOTSUPP (not brick+rdma), -EACCES (remote
 *         access error: revoked handle; the connection is broken afterwards),
 *         -EPIPE (connection broken), -ETIMEDOUT, -EIO (another failed completion).
 */
int nvl_brick_rdma_read(struct nvl_brick *b, const struct nvl_brick_rdma_handle *h,
			uint64_t offset, void *buf, size_t len);

/**
 * One-sided RDMA WRITE of len bytes at offset of an RDMA handle's block,
 * cut into 128 KiB RDMA WRITEs in flight together (from 1 MiB on straight
 * from buf, registered for the call; NVLEND_BRICK_RDMA_REG_MIN moves that
 * threshold, docs/brick.md section 12). The data is placed once this
 * returns 0 (a failed call may have placed the pieces before the failed
 * one; none is left in flight); it is durable per the brick's
 * persistence after nvl_brick_rdma_sync_read() (RAM and pmem-like fast
 * tiers) or nvl_brick_flush() (file-backed tiers) - docs/brick.md "RDMA".
 * \return 0, -EINVAL, -EOPNOTSUPP, -EROFS (read-only handle), -EACCES,
 *         -EPIPE, -ETIMEDOUT, -EIO.
 */
int nvl_brick_rdma_write(struct nvl_brick *b, const struct nvl_brick_rdma_handle *h,
			 uint64_t offset, const void *buf, size_t len);

/**
 * The durability barrier of one-sided writes (the seed's "sync-read"): a
 * one-byte RDMA READ of the block, which completes only after every RDMA
 * WRITE this connection issued before it has been placed in the daemon's
 * memory.
 * \return 0, -EOPNOTSUPP, -EACCES, -EPIPE, -ETIMEDOUT, -EIO.
 */
int nvl_brick_rdma_sync_read(struct nvl_brick *b, const struct nvl_brick_rdma_handle *h);

/** Posted one-sided writes a connection holds before they are reaped. */
#define NVL_BRICK_RDMA_POST_MAX 16

/**
 * Post a one-sided RDMA WRITE of len bytes at offset of an RDMA handle's
 * block without waiting for it (several writes in flight from one thread).
 * buf is registered with the RDMA device for the write: it must stay
 * allocated and unmodified until nvl_brick_rdma_wait() has reaped the write.
 * Writes complete in the order they were posted; a write is placed in the
 * daemon's memory once a wait reaped it without error (durable as after
 * nvl_brick_rdma_write(): sync-read or flush). Other calls on the
 * connection may run while writes are posted; nvl_brick_disconnect()
 * abandons writes not reaped.
 * \return 0, -EINVAL (range), -EOPNOTSUPP (not brick+rdma), -EROFS
 *         (read-only handle), -EAGAIN (NVL_BRICK_RDMA_POST_MAX writes posted
 *         and not reaped: wait first), -ENOMEM (the buffer cannot be
 *         registered: locked memory limit), -EPIPE (connection broken),
 *         -EIO.
 */
int nvl_brick_rdma_write_post(struct nvl_brick *b, const struct nvl_brick_rdma_handle *h,
			      uint64_t offset, const void *buf, size_t len);

/**
 * Reap posted writes, oldest first, until at most max_posted remain not
 * reaped (0: all of them); each reaped write completed entirely (placed) or
 * failed, and its buffer is free for the caller again.
 * \return 0, -EOPNOTSUPP, or the first failure among the reaped writes:
 *         -EACCES (remote access error: revoked handle), -EPIPE, -EIO,
 *         -ETIMEDOUT; after a failure the connection is broken.
 */
int nvl_brick_rdma_wait(struct nvl_brick *b, unsigned max_posted);

/** Posted writes not reaped yet (0 on a connection that is not brick+rdma). */
unsigned nvl_brick_rdma_posted(struct nvl_brick *b);

/** Human-readable persistence name: "volatile", "fsync", "pmem". */
const char *nvl_brick_persistence_name(unsigned persistence);

#ifdef __cplusplus
}
#endif
#endif
