/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libnvlend brick client over RDMA (client_rdma.h; the daemon side is
 * rdma.c, docs/brick.md "RDMA"). Owns one RDMA CM id (on its own event
 * channel), its PD, a CQ with a completion channel, an RC queue pair, the
 * receive and send buffers of the control message stream (BRDMA_NRECV /
 * BRDMA_NSEND messages of BRDMA_MSG bytes, like the daemon's) and a 2 MiB
 * registered bounce buffer for one-sided READ/WRITE.
 *
 * The control stream: bytes to send are cut into SEND messages; received
 * messages are consumed in arrival order and each buffer is reposted once
 * read. Data: a call's range is cut into BRICK_RDMA_CHUNK pieces, one RDMA
 * READ or WRITE work request each against the block's memory region (remote
 * address + rkey from the MAP response), all in flight together (at most
 * BRDMA_RW_DEPTH: 2 MiB / chunk); a WRITE copies chunk i+1 into the bounce
 * buffer while chunk i is on the wire, a READ copies chunk i out while the
 * later ones arrive (an RC queue pair completes them in order). Transfers of
 * at least reg_min bytes (NVLEND_BRICK_RDMA_REG_MIN) register the caller's
 * buffer for the call instead (no copy; the registration is undone before
 * the call returns). Every posted request's completion is awaited before
 * the call returns: the daemon's CPU does not take part. Posted writes
 * (brick_rdma_client_write_post) register the caller's buffer, post their
 * chunks and return; up to BRICK_RDMA_ASYNC_MAX of them sit in a ring,
 * their completions counted per slot as they are polled (also by other
 * calls), and brick_rdma_client_wait reaps them oldest first.
 *
 * A failed work completion (a revoked rkey gives a remote access error)
 * puts an RC queue pair in the error state: the connection is broken from
 * then on (-EPIPE), as RDMA defines it.
 *
 * Threads: none of its own; the caller (client.c) holds the connection's
 * mutex around every call. Completions are awaited by polling the CQ, then
 * sleeping on the completion channel (poll() with the call's timeout).
 */
#include "brick/client_rdma.h"
#include "nvlend/spec/brick.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BRDMA_MSG BRICK_RDMA_MSG_SIZE
#define BRDMA_NRECV 16
#define BRDMA_NSEND 16
#define BRDMA_WR_RW (BRDMA_NRECV + BRDMA_NSEND) /* wr_id of chunk 0 of a one-sided call */
#define BRDMA_RW_DEPTH (NVL_BRICK_BLOCK_SIZE / BRICK_RDMA_CHUNK)
#define BRDMA_WR_ASYNC (BRDMA_WR_RW + BRDMA_RW_DEPTH) /* wr_id of an async write's chunks: + slot */
#define BRDMA_SQ_DEPTH (BRDMA_NSEND + BRDMA_RW_DEPTH * (1 + BRICK_RDMA_ASYNC_MAX))
/* register the caller's buffer from 1 MiB on: bench/brick_rdma.sh, soft-RoCE,
 * registration lost to the bounce copy at 64 KiB and won at 1-2 MiB */
#define BRDMA_REG_MIN_DEFAULT (1024 * 1024)
#define BRDMA_RNR_INFINITE 7
#define BRDMA_RD_DEPTH 16
#define BRDMA_SPIN 2000       /* CQ polls before sleeping on the channel */

struct brick_rdma_client {
	struct rdma_event_channel *ech;
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	bool qp_made;
	bool connected;
	bool broken;
	int timeout_ms;
	uint8_t *rbuf, *sbuf, *bounce;
	struct ibv_mr *rmr, *smr, *bmr;
	uint32_t rx_idx[BRDMA_NRECV], rx_len[BRDMA_NRECV];
	unsigned rx_head, rx_n;
	size_t rx_off;
	bool sbusy[BRDMA_NSEND];
	size_t reg_min;       /* register the caller's buffer from this size on; 0: never */
	unsigned rw_posted;   /* work requests of the current one-sided call */
	unsigned rw_done;     /* ... completed (in order: chunks 0..rw_done-1) */
	int rw_status;        /* first failure of the call, or 0 */
	/* posted writes (brick_rdma_client_write_post), oldest at aq_head; an
	 * RC queue pair completes them in posting order */
	struct brdma_async {
		struct ibv_mr *mr;  /* the caller's buffer, registered until reaped */
		unsigned posted, done;
		int status;
	} aq[BRICK_RDMA_ASYNC_MAX];
	unsigned aq_head, aq_n;
};

/* ---- completions ------------------------------------------------------- */

static void
handle_wc(struct brick_rdma_client *r, const struct ibv_wc *wc)
{
	if (wc->status != IBV_WC_SUCCESS)
		r->broken = true; /* the QP is in the error state now */
	if (wc->wr_id < BRDMA_NRECV) {
		unsigned t = (r->rx_head + r->rx_n) % BRDMA_NRECV;

		if (wc->status != IBV_WC_SUCCESS)
			return;
		r->rx_idx[t] = (uint32_t)wc->wr_id;
		r->rx_len[t] = wc->byte_len;
		r->rx_n++;
	} else if (wc->wr_id < BRDMA_WR_RW) {
		r->sbusy[wc->wr_id - BRDMA_NRECV] = false;
	} else if (wc->wr_id >= BRDMA_WR_ASYNC) {
		struct brdma_async *a = &r->aq[(wc->wr_id - BRDMA_WR_ASYNC) % BRICK_RDMA_ASYNC_MAX];

		a->done++;
		if (a->status == 0 && wc->status != IBV_WC_SUCCESS)
			a->status = wc->status == IBV_WC_REM_ACCESS_ERR ? -EACCES
				    : wc->status == IBV_WC_WR_FLUSH_ERR  ? -EPIPE
									 : -EIO;
	} else {
		r->rw_done++;
		if (r->rw_status == 0 && wc->status != IBV_WC_SUCCESS)
			r->rw_status = wc->status == IBV_WC_REM_ACCESS_ERR ? -EACCES
				       : wc->status == IBV_WC_WR_FLUSH_ERR  ? -EPIPE
									    : -EIO;
	}
}

static int
poll_once(struct brick_rdma_client *r)
{
	struct ibv_wc wc[16];
	int n = ibv_poll_cq(r->cq, 16, wc);

	if (n < 0)
		return -EIO;
	for (int i = 0; i < n; i++)
		handle_wc(r, &wc[i]);
	return n;
}

/* Reap completions, waiting up to the timeout for at least one.
 * \return 0, -ETIMEDOUT, -EIO. */
static int
progress(struct brick_rdma_client *r)
{
	struct pollfd pfd = { .fd = r->ch->fd, .events = POLLIN };
	struct ibv_cq *cq;
	void *ctx;
	int n;

	for (int i = 0; i < BRDMA_SPIN; i++) {
		n = poll_once(r);
		if (n != 0)
			return n < 0 ? n : 0;
	}
	if (ibv_req_notify_cq(r->cq, 0) != 0)
		return -EIO;
	n = poll_once(r); /* what completed before the notification was armed */
	if (n != 0)
		return n < 0 ? n : 0;
	n = poll(&pfd, 1, r->timeout_ms);
	if (n == 0)
		return -ETIMEDOUT;
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (ibv_get_cq_event(r->ch, &cq, &ctx) == 0)
		ibv_ack_cq_events(cq, 1);
	return 0;
}

static int
post_recv(struct brick_rdma_client *r, uint32_t idx)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(r->rbuf + (size_t)idx * BRDMA_MSG),
		.length = BRDMA_MSG,
		.lkey = r->rmr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = idx, .sg_list = &sge, .num_sge = 1 }, *bad;

	return ibv_post_recv(r->id->qp, &wr, &bad) == 0 ? 0 : -EIO;
}

/* ---- the control stream ------------------------------------------------ */

int
brick_rdma_client_send(struct brick_rdma_client *r, const struct iovec *iov, int cnt)
{
	size_t off = 0;
	int i = 0, rc;

	while (i < cnt) {
		struct ibv_send_wr wr = { 0 }, *bad;
		struct ibv_sge sge;
		unsigned s;
		size_t n = 0;
		uint8_t *dst;

		if (r->broken)
			return -EPIPE;
		for (s = 0; s < BRDMA_NSEND && r->sbusy[s]; s++)
			;
		if (s == BRDMA_NSEND) {
			rc = progress(r);
			if (rc < 0)
				return rc;
			continue;
		}
		dst = r->sbuf + (size_t)s * BRDMA_MSG;
		while (i < cnt && n < BRDMA_MSG) {
			size_t k = NVL_MIN(iov[i].iov_len - off, BRDMA_MSG - n);

			memcpy(dst + n, (const uint8_t *)iov[i].iov_base + off, k);
			n += k;
			off += k;
			if (off == iov[i].iov_len) {
				i++;
				off = 0;
			}
		}
		if (n == 0)
			continue;
		sge.addr = (uintptr_t)dst;
		sge.length = (uint32_t)n;
		sge.lkey = r->smr->lkey;
		wr.wr_id = BRDMA_NRECV + s;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.opcode = IBV_WR_SEND;
		wr.send_flags = IBV_SEND_SIGNALED;
		if (ibv_post_send(r->id->qp, &wr, &bad) != 0) {
			r->broken = true;
			return -EPIPE;
		}
		r->sbusy[s] = true;
	}
	return 0;
}

int
brick_rdma_client_recv(struct brick_rdma_client *r, void *buf, size_t len)
{
	size_t done = 0;
	int rc;

	while (done < len) {
		uint32_t idx;
		size_t n;

		if (r->rx_n == 0) {
			if (r->broken)
				return -EPIPE;
			rc = progress(r);
			if (rc < 0)
				return rc;
			continue;
		}
		idx = r->rx_idx[r->rx_head];
		n = NVL_MIN(r->rx_len[r->rx_head] - r->rx_off, len - done);
		memcpy((uint8_t *)buf + done, r->rbuf + (size_t)idx * BRDMA_MSG + r->rx_off, n);
		done += n;
		r->rx_off += n;
		if (r->rx_off == r->rx_len[r->rx_head]) {
			r->rx_off = 0;
			r->rx_head = (r->rx_head + 1) % BRDMA_NRECV;
			r->rx_n--;
			if (post_recv(r, idx) < 0) {
				r->broken = true;
				return -EPIPE;
			}
		}
	}
	return 0;
}

/* ---- one-sided data ---------------------------------------------------- */

/* Is a posted write not completed yet? */
static bool
async_pending(const struct brick_rdma_client *r)
{
	for (unsigned i = 0; i < r->aq_n; i++) {
		const struct brdma_async *a = &r->aq[(r->aq_head + i) % BRICK_RDMA_ASYNC_MAX];

		if (a->done < a->posted)
			return true;
	}
	return false;
}

/* After a timeout: move the queue pair to the error state so the device
 * flushes what is still posted, and reap those completions.
 * \return 0 when nothing (of a call or posted) is outstanding any more, -ETIMEDOUT. */
static int
rw_drain(struct brick_rdma_client *r)
{
	struct ibv_qp_attr qa = { .qp_state = IBV_QPS_ERR };

	r->broken = true;
	if (ibv_modify_qp(r->id->qp, &qa, IBV_QP_STATE) != 0)
		return -ETIMEDOUT;
	while (r->rw_done < r->rw_posted || async_pending(r))
		if (progress(r) < 0)
			return -ETIMEDOUT;
	return 0;
}

int
brick_rdma_client_rw(struct brick_rdma_client *r, bool write, uint64_t raddr, uint32_t rkey,
		     void *buf, size_t len)
{
	size_t n = brick_rdma_nchunks(len, BRICK_RDMA_CHUNK), off, clen;
	struct ibv_mr *umr = NULL;
	uint8_t *base = r->bounce;
	uint32_t lkey = r->bmr->lkey;
	unsigned copied = 0;
	int rc = 0;

	if (len == 0 || len > NVL_BRICK_BLOCK_SIZE)
		return -EINVAL;
	if (r->broken)
		return -EPIPE;
	if (r->reg_min != 0 && len >= r->reg_min) {
		/* zero copy; on failure (locked memory limit, ...) the bounce buffer */
		umr = ibv_reg_mr(r->pd, buf, len, write ? 0 : IBV_ACCESS_LOCAL_WRITE);
		if (umr != NULL) {
			base = buf;
			lkey = umr->lkey;
		}
	}
	r->rw_posted = 0;
	r->rw_done = 0;
	r->rw_status = 0;
	for (size_t i = 0; i < n && r->rw_status == 0; i++) {
		struct ibv_send_wr wr = { 0 }, *bad;
		struct ibv_sge sge;

		clen = brick_rdma_chunk(len, BRICK_RDMA_CHUNK, i, &off);
		if (write && umr == NULL)
			memcpy(r->bounce + off, (const uint8_t *)buf + off, clen);
		sge.addr = (uintptr_t)(base + off);
		sge.length = (uint32_t)clen;
		sge.lkey = lkey;
		wr.wr_id = BRDMA_WR_RW + i;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.opcode = write ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ;
		wr.send_flags = IBV_SEND_SIGNALED;
		wr.wr.rdma.remote_addr = raddr + off;
		wr.wr.rdma.rkey = rkey;
		if (ibv_post_send(r->id->qp, &wr, &bad) != 0) {
			r->broken = true;
			rc = -EPIPE;
			break;
		}
		r->rw_posted++;
		/* an early failure stops the posting; never waits here */
		if (poll_once(r) < 0) {
			rc = -EIO;
			break;
		}
	}
	while (r->rw_done < r->rw_posted || (!write && umr == NULL && copied < r->rw_done)) {
		/* READ through the bounce buffer: copy out what arrived (in order) */
		if (!write && umr == NULL && r->rw_status == 0 && copied < r->rw_done) {
			clen = brick_rdma_chunk(len, BRICK_RDMA_CHUNK, copied, &off);
			memcpy((uint8_t *)buf + off, r->bounce + off, clen);
			copied++;
			continue;
		}
		if (r->rw_done == r->rw_posted)
			break;
		if (rc == 0)
			rc = progress(r);
		if (rc < 0 && rw_drain(r) < 0)
			break; /* the queue pair is in error, its requests not reaped */
	}
	if (umr != NULL)
		ibv_dereg_mr(umr); /* the device stops touching buf, whatever is left */
	if (rc == 0)
		rc = r->rw_status;
	if (rc < 0)
		r->broken = true; /* a failed completion left the queue pair in error */
	return rc;
}

/* ---- posted writes ---------------------------------------------------- */

int
brick_rdma_client_write_post(struct brick_rdma_client *r, uint64_t raddr, uint32_t rkey,
			     const void *buf, size_t len)
{
	size_t n = brick_rdma_nchunks(len, BRICK_RDMA_CHUNK), off, clen;
	unsigned slot = (r->aq_head + r->aq_n) % BRICK_RDMA_ASYNC_MAX;
	struct brdma_async *a = &r->aq[slot];
	struct ibv_qp_attr qa = { .qp_state = IBV_QPS_ERR };

	if (len == 0 || len > NVL_BRICK_BLOCK_SIZE)
		return -EINVAL;
	if (r->broken)
		return -EPIPE;
	if (r->aq_n == BRICK_RDMA_ASYNC_MAX)
		return -EAGAIN;
	a->mr = ibv_reg_mr(r->pd, (void *)buf, len, 0);
	if (a->mr == NULL)
		return errno == ENOMEM || errno == 0 ? -ENOMEM : -errno;
	a->posted = 0;
	a->done = 0;
	a->status = 0;
	r->aq_n++; /* reaped by brick_rdma_client_wait, whatever happens below */
	for (size_t i = 0; i < n; i++) {
		struct ibv_send_wr wr = { 0 }, *bad;
		struct ibv_sge sge;

		clen = brick_rdma_chunk(len, BRICK_RDMA_CHUNK, i, &off);
		sge.addr = (uintptr_t)buf + off;
		sge.length = (uint32_t)clen;
		sge.lkey = a->mr->lkey;
		wr.wr_id = BRDMA_WR_ASYNC + slot;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.opcode = IBV_WR_RDMA_WRITE;
		wr.send_flags = IBV_SEND_SIGNALED;
		wr.wr.rdma.remote_addr = raddr + off;
		wr.wr.rdma.rkey = rkey;
		if (ibv_post_send(r->id->qp, &wr, &bad) != 0) {
			/* the chunks already posted are flushed; wait reaps them */
			r->broken = true;
			(void)ibv_modify_qp(r->id->qp, &qa, IBV_QP_STATE);
			a->status = -EPIPE;
			return -EPIPE;
		}
		a->posted++;
	}
	return poll_once(r) < 0 ? -EIO : 0; /* reap what is done; never waits */
}

unsigned
brick_rdma_client_posted(const struct brick_rdma_client *r)
{
	return r->aq_n;
}

int
brick_rdma_client_wait(struct brick_rdma_client *r, unsigned max_left)
{
	int rc = 0, prc;

	while (r->aq_n > max_left) {
		struct brdma_async *a = &r->aq[r->aq_head];

		while (a->done < a->posted) {
			prc = progress(r);
			if (prc < 0) {
				if (rw_drain(r) < 0) {
					/* the queue pair is in error and silent: give up on
					 * every posted write (deregistering stops the device
					 * touching the buffers) */
					for (unsigned i = 0; i < r->aq_n; i++) {
						struct brdma_async *o =
							&r->aq[(r->aq_head + i) % BRICK_RDMA_ASYNC_MAX];

						if (o->status == 0)
							o->status = prc;
						o->done = o->posted;
					}
				}
				if (rc == 0)
					rc = prc;
			}
		}
		ibv_dereg_mr(a->mr);
		a->mr = NULL;
		if (rc == 0)
			rc = a->status;
		r->aq_head = (r->aq_head + 1) % BRICK_RDMA_ASYNC_MAX;
		r->aq_n--;
	}
	if (rc < 0)
		r->broken = true;
	return rc;
}

/* ---- connection -------------------------------------------------------- */

/* Wait for the next CM event; it must be `want`. \return 0 or -errno. */
static int
wait_cm(struct brick_rdma_client *r, enum rdma_cm_event_type want)
{
	struct pollfd pfd = { .fd = r->ech->fd, .events = POLLIN };
	struct rdma_cm_event *ev;
	enum rdma_cm_event_type got;
	int n, status;

	n = poll(&pfd, 1, r->timeout_ms);
	if (n == 0)
		return -ETIMEDOUT;
	if (n < 0)
		return -errno;
	if (rdma_get_cm_event(r->ech, &ev) != 0)
		return -errno;
	got = ev->event;
	status = ev->status;
	rdma_ack_cm_event(ev);
	if (got == want)
		return 0;
	switch (got) {
	case RDMA_CM_EVENT_ADDR_ERROR:
		return -EADDRNOTAVAIL;
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
		return status == -ETIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH;
	case RDMA_CM_EVENT_REJECTED:
	case RDMA_CM_EVENT_CONNECT_ERROR:
		return -ECONNREFUSED;
	default:
		return -EPROTO;
	}
}

static int
setup_verbs(struct brick_rdma_client *r)
{
	struct ibv_qp_init_attr qa = { 0 };

	r->pd = ibv_alloc_pd(r->id->verbs);
	r->ch = ibv_create_comp_channel(r->id->verbs);
	if (r->pd == NULL || r->ch == NULL)
		return -ENOMEM;
	r->cq = ibv_create_cq(r->id->verbs, BRDMA_NRECV + BRDMA_SQ_DEPTH + 4, r, r->ch, 0);
	if (r->cq == NULL)
		return -ENOMEM;
	qa.send_cq = r->cq;
	qa.recv_cq = r->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = BRDMA_SQ_DEPTH;
	qa.cap.max_recv_wr = BRDMA_NRECV;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	if (rdma_create_qp(r->id, r->pd, &qa) != 0)
		return errno ? -errno : -ENOMEM;
	r->qp_made = true;
	r->rbuf = aligned_alloc(4096, (size_t)BRDMA_NRECV * BRDMA_MSG);
	r->sbuf = aligned_alloc(4096, (size_t)BRDMA_NSEND * BRDMA_MSG);
	r->bounce = aligned_alloc(4096, NVL_BRICK_BLOCK_SIZE);
	if (r->rbuf == NULL || r->sbuf == NULL || r->bounce == NULL)
		return -ENOMEM;
	memset(r->bounce, 0, NVL_BRICK_BLOCK_SIZE); /* pre-fault (first touch is slow) */
	r->rmr = ibv_reg_mr(r->pd, r->rbuf, (size_t)BRDMA_NRECV * BRDMA_MSG,
			    IBV_ACCESS_LOCAL_WRITE);
	r->smr = ibv_reg_mr(r->pd, r->sbuf, (size_t)BRDMA_NSEND * BRDMA_MSG, 0);
	r->bmr = ibv_reg_mr(r->pd, r->bounce, NVL_BRICK_BLOCK_SIZE, IBV_ACCESS_LOCAL_WRITE);
	if (r->rmr == NULL || r->smr == NULL || r->bmr == NULL)
		return errno ? -errno : -ENOMEM;
	for (uint32_t i = 0; i < BRDMA_NRECV; i++)
		if (post_recv(r, i) < 0)
			return -EIO;
	return 0;
}

void
brick_rdma_client_close(struct brick_rdma_client *r)
{
	if (r == NULL)
		return;
	if (r->connected)
		rdma_disconnect(r->id);
	if (r->qp_made)
		rdma_destroy_qp(r->id);
	if (r->cq)
		ibv_destroy_cq(r->cq);
	if (r->ch)
		ibv_destroy_comp_channel(r->ch);
	if (r->rmr)
		ibv_dereg_mr(r->rmr);
	if (r->smr)
		ibv_dereg_mr(r->smr);
	if (r->bmr)
		ibv_dereg_mr(r->bmr);
	for (unsigned i = 0; i < r->aq_n; i++) /* posted writes never reaped */
		ibv_dereg_mr(r->aq[(r->aq_head + i) % BRICK_RDMA_ASYNC_MAX].mr);
	free(r->rbuf);
	free(r->sbuf);
	free(r->bounce);
	if (r->pd)
		ibv_dealloc_pd(r->pd);
	if (r->id)
		rdma_destroy_id(r->id);
	if (r->ech)
		rdma_destroy_event_channel(r->ech);
	free(r);
}

int
brick_rdma_client_connect(const char *host, const char *port, int timeout_ms,
			  struct brick_rdma_client **out)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	struct rdma_conn_param cp = { 0 };
	struct ibv_device_attr da;
	struct brick_rdma_client *r;
	const char *env;
	int rc;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->timeout_ms = timeout_ms;
	r->reg_min = BRDMA_REG_MIN_DEFAULT;
	env = getenv("NVLEND_BRICK_RDMA_REG_MIN");
	if (env != NULL && *env != '\0')
		r->reg_min = (size_t)strtoull(env, NULL, 0);
	r->ech = rdma_create_event_channel();
	if (r->ech == NULL) {
		rc = -ENODEV; /* no /dev/infiniband/rdma_cm */
		goto err;
	}
	if (rdma_create_id(r->ech, &r->id, r, RDMA_PS_TCP) != 0) {
		rc = errno == ENOENT || errno == ENODEV ? -ENODEV : -errno;
		r->id = NULL;
		goto err;
	}
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
		rc = -EHOSTUNREACH;
		goto err;
	}
	rc = rdma_resolve_addr(r->id, NULL, ai->ai_addr, timeout_ms);
	freeaddrinfo(ai);
	if (rc != 0) {
		rc = errno == ENODEV || errno == EADDRNOTAVAIL || errno == ENETUNREACH
			     ? -EADDRNOTAVAIL
			     : -errno;
		goto err;
	}
	rc = wait_cm(r, RDMA_CM_EVENT_ADDR_RESOLVED);
	if (rc < 0)
		goto err;
	if (r->id->verbs == NULL) {
		rc = -EADDRNOTAVAIL;
		goto err;
	}
	if (rdma_resolve_route(r->id, timeout_ms) != 0) {
		rc = -errno;
		goto err;
	}
	rc = wait_cm(r, RDMA_CM_EVENT_ROUTE_RESOLVED);
	if (rc < 0)
		goto err;
	rc = setup_verbs(r);
	if (rc < 0)
		goto err;
	/* one-sided READs in flight: what the device allows, up to BRDMA_RD_DEPTH */
	cp.initiator_depth = BRDMA_RD_DEPTH;
	if (ibv_query_device(r->id->verbs, &da) == 0)
		cp.initiator_depth = (uint8_t)NVL_MIN(BRDMA_RD_DEPTH, da.max_qp_init_rd_atom);
	cp.responder_resources = 0; /* the daemon reads nothing from us */
	cp.rnr_retry_count = BRDMA_RNR_INFINITE;
	cp.retry_count = 7;
	if (rdma_connect(r->id, &cp) != 0) {
		rc = -errno;
		goto err;
	}
	rc = wait_cm(r, RDMA_CM_EVENT_ESTABLISHED);
	if (rc < 0)
		goto err;
	r->connected = true;
	*out = r;
	return 0;
err:
	brick_rdma_client_close(r);
	return rc;
}
