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
/** One-sided RDMA READ (write false) or WRITE of len bytes (<= 2 MiB) at raddr.
 *  \return 0, -EACCES (remote access error: the rkey is revoked or the range
 *  is not the region's; the queue pair is then broken), -EPIPE, -ETIMEDOUT. */
int brick_rdma_client_rw(struct brick_rdma_client *r, bool write, uint64_t raddr, uint32_t rkey,
			 void *buf, size_t len);

#endif
