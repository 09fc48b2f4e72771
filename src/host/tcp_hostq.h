/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/TCP initiator queue pair: one TCP connection to any NVMe/TCP
 * controller (nvlendd, Linux nvmet, SPDK), driven without blocking by its
 * owner. It connects (non-blocking connect, ICReq/ICResp, Fabrics Connect),
 * sends command capsules with in-capsule data when they fit, answers R2Ts
 * with H2CData PDUs no larger than the controller's MAXH2CDATA, receives
 * C2HData straight into the caller's buffers, checks digests, and reports
 * completions through callbacks.
 *
 * Users: libnvlend's TCP transport (src/host/host_tcp.c, which wraps it in
 * blocking calls) and the nvme_tcp bdev (src/module/bdev_nvme.c, which drives
 * it from a reactor poller). No threads, no locks, no timers: one owner
 * thread calls everything; timeouts are the owner's.
 */
#ifndef NVL_TCP_HOSTQ_H
#define NVL_TCP_HOSTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "nvlend/spec/nvme.h"

#define NVL_TCP_HQ_MAX_IOV 16

struct nvl_tcp_hq;

typedef void (*nvl_tcp_hq_cb)(void *arg, const struct nvl_nvme_cpl *cpl);

struct nvl_tcp_hq_opts {
	struct sockaddr_storage addr;  /**< the controller's address */
	socklen_t addrlen;
	const char *subnqn;
	const char *hostnqn;
	const uint8_t *hostid;         /**< 16 bytes */
	uint16_t qid;
	uint16_t entries;              /**< queue size (SQSIZE + 1), >= 2 */
	uint16_t cntlid;               /**< 0xffff for the admin queue */
	uint32_t kato_ms;              /**< admin queue only */
	bool hdgst, ddgst;             /**< ask for header / data digests */
	uint32_t icd_max;              /**< in-capsule data the controller takes (0: none) */
	uint32_t max_data;             /**< largest transfer of one command */
	bool disable_sqflow;           /**< let the controller skip responses after C2HData */
};

enum nvl_tcp_hq_state {
	NVL_TCP_HQ_CONNECTING = 0,     /**< TCP connect, ICReq/ICResp, Fabrics Connect */
	NVL_TCP_HQ_READY,
	NVL_TCP_HQ_FAILED,             /**< closed; see nvl_tcp_hq_error() */
};

/**
 * Start connecting (non-blocking). \return 0, -ENOMEM, -EINVAL (bad options),
 * or the socket's -errno.
 */
int nvl_tcp_hq_create(const struct nvl_tcp_hq_opts *o, struct nvl_tcp_hq **out);
/** Close and free. Commands still outstanding are forgotten (no callback). */
void nvl_tcp_hq_destroy(struct nvl_tcp_hq *q);

/**
 * Make progress: finish connecting, send queued PDUs, receive and complete.
 * \return completions delivered (>= 0), or a negative errno once the queue
 * failed (connection lost, refused, protocol error): it stays failed.
 */
int nvl_tcp_hq_process(struct nvl_tcp_hq *q);

/**
 * Queue a command. cid and the data descriptor of cmd are filled in here.
 * iov describes len bytes (C2H: where data lands; H2C: what is sent).
 * \return 0 (cb runs exactly once, from nvl_tcp_hq_process or
 * nvl_tcp_hq_fail), -EAGAIN (queue full), -ENOTCONN (not ready or failed),
 * -EINVAL (too many iovecs, too long).
 */
int nvl_tcp_hq_submit(struct nvl_tcp_hq *q, struct nvl_nvme_cmd *cmd, const struct iovec *iov,
		      int iovcnt, uint32_t len, uint8_t dir, nvl_tcp_hq_cb cb, void *arg);

/** Fail the queue now (timeout seen by the owner...): the socket closes and
 *  every outstanding command completes with status sc (e.g. aborted). */
void nvl_tcp_hq_fail(struct nvl_tcp_hq *q, const char *why, uint16_t sc);

int nvl_tcp_hq_fd(const struct nvl_tcp_hq *q);
enum nvl_tcp_hq_state nvl_tcp_hq_state(const struct nvl_tcp_hq *q);
/** Something to send (or the TCP connect pending): poll for POLLOUT too. */
bool nvl_tcp_hq_want_write(const struct nvl_tcp_hq *q);
uint16_t nvl_tcp_hq_cntlid(const struct nvl_tcp_hq *q);
/** The Connect response's AUTHREQ bits (NVL_NVMF_CONNECT_AUTHREQ_ATR/ASCR):
 *  the owner runs the authentication transaction (host_auth.c) on a READY
 *  queue before it uses it for anything else. */
uint32_t nvl_tcp_hq_authreq(const struct nvl_tcp_hq *q);
uint32_t nvl_tcp_hq_outstanding(const struct nvl_tcp_hq *q);
/** Why the queue failed (or ""), and the errno it maps to. */
const char *nvl_tcp_hq_error(const struct nvl_tcp_hq *q);
int nvl_tcp_hq_errno(const struct nvl_tcp_hq *q);
/** Negotiated digests and limits, for diagnostics. */
bool nvl_tcp_hq_hdgst(const struct nvl_tcp_hq *q);
bool nvl_tcp_hq_ddgst(const struct nvl_tcp_hq *q);
uint32_t nvl_tcp_hq_maxh2cdata(const struct nvl_tcp_hq *q);

/** Resolve host/port (numeric only if numeric_only) into o->addr.
 *  \return 0 or -EINVAL / -EHOSTUNREACH (no such name). */
int nvl_tcp_hq_resolve(const char *host, const char *port, bool numeric_only,
		       struct nvl_tcp_hq_opts *o);

#endif
