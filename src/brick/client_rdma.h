/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libnvlend brick client over RDMA (client_rdma.c), used by client.c only.
 * One RC queue pair per connection; the caller (client.c) serialises every
 * call with the connection's mutex.
 */
#ifndef NVL_BRICK_CLIENT_RDMA_H
#define NVL_BRICK_CLIENT_RDMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* The wire over RDMA (docs/brick.md "RDMA"), both sides: */
/** Bytes per SEND/RECV message of the control stream (a receiver posts
 *  buffers of this size; a sender never sends more in one message). */
#define BRICK_RDMA_MSG_SIZE (16 * 1024)

/** Bytes per one-sided work request: a READ or WRITE call is cut into
 *  chunks of this size, all posted at once (at most 2 MiB / chunk = 16 in
 *  flight), so the copy of chunk i+1 overlaps the transfer of chunk i. */
#define BRICK_RDMA_CHUNK (128 * 1024)

/** Number of chunks of a transfer of len bytes (0 for len 0). Pure. */
static inline size_t
brick_rdma_nchunks(size_t len, size_t chunk)
{
	return chunk == 0 ? 0 : len / chunk + (len % chunk != 0);
}

/** Chunk i of a transfer of len bytes: its offset in *off, its length as
 *  the result (0 when i is past the end or chunk is 0). Pure. */
static inline size_t
brick_rdma_chunk(size_t len, size_t chunk, size_t i, size_t *off)
{
	if (chunk == 0 || i >= brick_rdma_nchunks(len, chunk)) {
		*off = len;
		return 0;
	}
	*off = i * chunk;
	return len - *off < chunk ? len - *off : chunk;
}

/** Posted one-sided writes (brick_rdma_client_write_post) a connection
 *  holds before they are reaped. */
#define BRICK_RDMA_ASYNC_MAX 16

struct brick_rdma_client;

/** Connect to HOST:PORT with the RDMA CM.
 *  \return 0, -ENODEV (no RDMA connection manager), -EADDRNOTAVAIL (no RDMA
 *  device reaches this address), -EHOSTUNREACH (name), -ECONNREFUSED,
 *  -ETIMEDOUT, -ENOMEM, -errno from verbs. */
int brick_rdma_client_connect(const char *host, const char *port, int timeout_ms,
			      struct brick_rdma_client **out);
void brick_rdma_client_close(struct brick_rdma_client *r);
/** Send the bytes of iov (as SEND messages). \return 0, -EPIPE, -ETIMEDOUT. */
int brick_rdma_client_send(struct brick_rdma_client *r, const struct iovec *iov, int cnt);
/** Receive exactly len bytes of the message stream. \return 0, -EPIPE, -ETIMEDOUT. */
int brick_rdma_client_recv(struct brick_rdma_client *r, void *buf, size_t len);
/** One-sided RDMA READ (write false) or WRITE of len bytes (<= 2 MiB) at
 *  raddr, as BRICK_RDMA_CHUNK work requests in flight together (through the
 *  registered bounce buffer, or straight from/to buf when it was registered
 *  for the call: len >= NVLEND_BRICK_RDMA_REG_MIN, read at connect). Returns
 *  once every posted request has completed: on success the data is placed
 *  (WRITE) or in buf (READ); on failure nothing is left posted (after a
 *  timeout the queue pair is moved to the error state and drained) and a
 *  WRITE may have placed some of its chunks, a READ may have filled part of
 *  buf.
 *  \return 0, -EINVAL (len), -EACCES (remote access error: the rkey is
 *  revoked or the range is not the region's; the queue pair is then
 *  broken), -EPIPE (broken before or by the call), -ETIMEDOUT, -EIO (another
 *  failed completion). */
int brick_rdma_client_rw(struct brick_rdma_client *r, bool write, uint64_t raddr, uint32_t rkey,
			 void *buf, size_t len);
/** Post a one-sided RDMA WRITE of len bytes (<= 2 MiB) from buf, registered
 *  for the write, as BRICK_RDMA_CHUNK work requests; does not wait. buf must
 *  stay untouched until brick_rdma_client_wait() reaped the write.
 *  \return 0, -EINVAL (len), -EAGAIN (BRICK_RDMA_ASYNC_MAX posted writes
 *  not reaped), -ENOMEM / -errno (registration), -EPIPE (broken; when it
 *  broke while posting, the write is still reaped by wait), -EIO. */
int brick_rdma_client_write_post(struct brick_rdma_client *r, uint64_t raddr, uint32_t rkey,
				 const void *buf, size_t len);
/** Posted writes not reaped yet. */
unsigned brick_rdma_client_posted(const struct brick_rdma_client *r);
/** Reap posted writes, oldest first, until at most max_left remain (each
 *  completely: placed in the target's memory, or failed), deregistering
 *  their buffers. \return 0, or the first failure among the reaped ones
 *  (-EACCES, -EPIPE, -EIO, -ETIMEDOUT); the connection is broken then. */
int brick_rdma_client_wait(struct brick_rdma_client *r, unsigned max_left);

#endif
