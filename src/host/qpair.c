/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The host core's queue pairs (host.h): command slots, submission,
 * completion, bounce copies into the shm window, and what a queue pair does
 * when its association goes away or comes back.
 *
 * A queue pair has entries - 1 slots (cid = slot). A slot is FREE, INFLIGHT
 * (handed to the current transport queue) or KEPT (waiting for one). When
 * the association is lost, in-flight idempotent commands become KEPT (if
 * the controller reconnects and I/O is not failing yet); the rest complete
 * with "aborted: SQ deleted". When the controller offers a transport queue
 * of the current association, the queue pair adopts it and resubmits what
 * it kept, in slot order.
 *
 * Threads: the owner side (host_qpair_submit, _poll, _fds, _arm, _ack,
 * _stop and the transport callbacks they cause) runs on the queue pair's
 * thread only and takes no lock: the fast path reads the controller's
 * generation (one relaxed load) and calls the transport. The controller
 * side (create, destroy, connecting, offering) runs on the controller's
 * owner. They meet at c->gen, c->fail_mode, c->lost_gen and qp->offer
 * (atomics; the offer is a pointer exchanged, so exactly one side ends up
 * holding a transport queue).
 */
#include "host/host_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_REQ_DYING 3 /* transient, inside qp_drop(): completes after the queue is gone */

static void qp_free(struct host_ctrlr *c, struct host_qpair *qp);

bool
host_status_is_path_error(uint16_t st)
{
	switch (st & 0x7ff) {
	case NVL_NVME_SC_ABORTED_SQ_DELETION:
	case NVL_NVME_SC_TRANSIENT_TRANSPORT_ERROR:
	case NVL_NVME_SC_ABORTED_POWER_LOSS:
	case NVL_NVME_SC_NS_NOT_READY:
		return true;
	default:
		return false;
	}
}

/* Commands that may run twice with the same result: what a reconnect resubmits. */
static bool
cmd_idempotent(uint8_t opc)
{
	return opc == NVL_NVME_IO_READ || opc == NVL_NVME_IO_WRITE || opc == NVL_NVME_IO_FLUSH ||
	       opc == NVL_NVME_IO_WRITE_ZEROES || opc == NVL_NVME_IO_DSM;
}

static const struct nvl_nvme_cpl g_aborted_cpl = {
	.status = NVL_NVME_SC_TO_STATUS(NVL_NVME_SC_ABORTED_SQ_DELETION) | NVL_NVME_STATUS_DNR,
};

/* ---- slots ------------------------------------------------------------------------------ */

static void
qp_gather(uint8_t *dst, const struct iovec *iov, int iovcnt, uint32_t len)
{
	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t l = NVL_MIN(iov[i].iov_len, (size_t)len);

		memcpy(dst, iov[i].iov_base, l);
		dst += l;
		len -= (uint32_t)l;
	}
}

static void
qp_scatter(const struct iovec *iov, int iovcnt, const uint8_t *src, uint32_t len)
{
	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t l = NVL_MIN(iov[i].iov_len, (size_t)len);

		memcpy(iov[i].iov_base, src, l);
		src += l;
		len -= (uint32_t)l;
	}
}

static void
req_save(struct host_req *r, const struct nvl_nvme_cmd *cmd, const struct iovec *iov, int iovcnt)
{
	if (r->saved)
		return;
	r->cmd = *cmd;
	memcpy(r->iov, iov, sizeof(*iov) * (size_t)iovcnt);
	r->iovcnt = iovcnt;
	r->saved = true;
}

static void
req_unbounce(struct host_qpair *qp, struct host_req *r, bool copy_back)
{
	if (r->bounce == NULL)
		return;
	if (copy_back)
		qp_scatter(r->iov, r->iovcnt, r->bounce, r->len);
	host_window_free(qp->tq->win, r->bounce);
	r->bounce = NULL;
}

/* Send r through a copy in the window (the data is elsewhere, or in pieces). */
static __attribute__((noinline)) int
req_send_bounced(struct host_qpair *qp, struct host_req *r, struct nvl_nvme_cmd *cmd,
		 const struct iovec *iov, int iovcnt)
{
	struct host_tq *tq = qp->tq;
	struct iovec one;
	void *b = host_window_alloc(tq->win, r->len);
	int rc;

	if (b == NULL)
		return -ENOMEM;
	req_save(r, cmd, iov, iovcnt);
	if (r->dir == NVL_XFER_TO_CTRLR)
		qp_gather(b, iov, iovcnt, r->len);
	r->bounce = b;
	one.iov_base = b;
	one.iov_len = r->len;
	rc = qp->ops->submit(qp, tq, r, cmd, &one, 1);
	if (rc < 0)
		req_unbounce(qp, r, false);
	return rc;
}

/* Hand r to the transport queue (through the window if its data is not
 * there). \return 0 or the transport's -errno (r unchanged). */
static inline int
req_send(struct host_qpair *qp, struct host_req *r, struct nvl_nvme_cmd *cmd,
	 const struct iovec *iov, int iovcnt)
{
	struct host_tq *tq = qp->tq;

	if (nvl_unlikely(r->len && tq->win &&
			 (iovcnt != 1 || !host_window_contains(tq->win, iov[0].iov_base, r->len))))
		return req_send_bounced(qp, r, cmd, iov, iovcnt);
	return qp->ops->submit(qp, tq, r, cmd, iov, iovcnt);
}

/* Free r's slot, then run its callback with cpl (whose cid is r's). */
static inline void
req_finish(struct host_qpair *qp, struct host_req *r, const struct nvl_nvme_cpl *cpl)
{
	nvl_io_cb cb = r->cb;
	void *arg = r->arg;

	if (nvl_unlikely(r->state == HOST_REQ_KEPT))
		qp->nkept--;
	r->state = HOST_REQ_FREE;
	r->saved = false;
	qp->free_cids[qp->nfree++] = r->cid;
	qp->outstanding--;
	if (cb)
		cb(arg, cpl);
}

/* The core gives r up: "aborted: SQ deleted". */
static void
req_abort(struct host_qpair *qp, struct host_req *r)
{
	struct nvl_nvme_cpl cpl = g_aborted_cpl;

	cpl.cid = r->cid;
	req_finish(qp, r, &cpl);
}

/* ---- losing and adopting a transport queue (qp owner) ------------------------------------------ */

static void
qp_report_loss(struct host_qpair *qp)
{
	struct host_ctrlr *c = qp->c;
	uint32_t cur = __atomic_load_n(&c->lost_gen, __ATOMIC_RELAXED);

	/* generations only grow: publish the largest one lost */
	while (cur < qp->gen &&
	       !__atomic_compare_exchange_n(&c->lost_gen, &cur, qp->gen, false, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED))
		;
	if (!qp->keep)
		/* no reconnect coming: fail I/O on every queue now, as the controller will */
		__atomic_store_n(&c->fail_mode, HOST_FAIL_GONE, __ATOMIC_RELEASE);
	if (c->opts.kick)
		c->opts.kick(c->opts.arg);
}

void
host_qpair_lost(struct host_qpair *qp, const char *fmt, ...)
{
	va_list ap;

	qp->tq_broken = true;
	if (qp->lost_reported)
		return;
	va_start(ap, fmt);
	vsnprintf(qp->lost_why, sizeof(qp->lost_why), fmt, ap);
	va_end(ap);
	/* the text first; pairs with the acquire in ctrlr.c's check_qpair_loss() */
	__atomic_store_n(&qp->lost_reported, true, __ATOMIC_RELEASE);
	qp_report_loss(qp);
}

static bool
qp_keeps(const struct host_qpair *qp, const struct host_req *r)
{
	return qp->keep && r->saved && cmd_idempotent(r->cmd.opc) &&
	       host_ctrlr_fail_mode(qp->c) == HOST_FAIL_NONE;
}

/* Drop the transport queue: in-flight commands are kept or aborted. */
static int
qp_drop(struct host_qpair *qp)
{
	struct host_tq *tq = qp->tq;
	int n = 0;

	for (uint32_t i = 0; i < qp->entries - 1; i++) {
		struct host_req *r = &qp->reqs[i];

		if (r->state != HOST_REQ_INFLIGHT)
			continue;
		req_unbounce(qp, r, false);
		if (qp_keeps(qp, r)) {
			r->state = HOST_REQ_KEPT;
			qp->nkept++;
		} else {
			r->state = HOST_REQ_DYING;
		}
	}
	qp->tq = NULL;
	qp->tq_broken = false;
	tq->ops->tq_destroy(tq);
	/* callbacks last: they may submit again (then to no queue) */
	for (uint32_t i = 0; i < qp->entries - 1; i++) {
		if (qp->reqs[i].state == HOST_REQ_DYING) {
			req_abort(qp, &qp->reqs[i]);
			n++;
		}
	}
	return n;
}

/* Resubmit what was kept, in slot order. */
static int
qp_resubmit(struct host_qpair *qp)
{
	int n = 0;

	for (uint32_t i = 0; i < qp->entries - 1 && qp->nkept && qp->tq && !qp->tq_broken; i++) {
		struct host_req *r = &qp->reqs[i];
		int rc;

		if (r->state != HOST_REQ_KEPT)
			continue;
		rc = req_send(qp, r, &r->cmd, r->iov, r->iovcnt);
		if (rc == 0) {
			r->state = HOST_REQ_INFLIGHT;
			qp->nkept--;
		} else if (rc == -ENOTCONN) {
			qp->tq_broken = true;
		} else if (rc != -EAGAIN && rc != -ENOMEM) {
			req_abort(qp, r); /* refused outright */
			n++;
		}
	}
	return n;
}

static int
qp_fail_kept(struct host_qpair *qp)
{
	int n = 0;

	for (uint32_t i = 0; i < qp->entries - 1 && qp->nkept; i++) {
		if (qp->reqs[i].state == HOST_REQ_KEPT) {
			req_abort(qp, &qp->reqs[i]);
			n++;
		}
	}
	return n;
}

/* The slow path: the queue pair is not on the current association (or has
 * kept commands): drop, adopt, resubmit or fail as the controller says.
 * \return completions delivered. */
static int
qp_resync(struct host_qpair *qp)
{
	struct host_ctrlr *c = qp->c;
	uint32_t gen = __atomic_load_n(&c->gen, __ATOMIC_ACQUIRE);
	int n = 0;

	if (qp->stopped)
		return 0;
	if (qp->tq && (qp->tq_broken || qp->tq->gen != gen))
		n += qp_drop(qp);
	if (qp->tq == NULL && __atomic_load_n(&qp->offer, __ATOMIC_RELAXED) != NULL) {
		struct host_tq *tq = __atomic_exchange_n(&qp->offer, NULL, __ATOMIC_ACQUIRE);

		if (tq && tq->gen != gen) {
			tq->ops->tq_destroy(tq); /* made for an association already gone */
		} else if (tq) {
			qp->tq = tq;
			__atomic_store_n(&qp->gen, tq->gen, __ATOMIC_RELAXED);
			qp->epoch++;
			__atomic_store_n(&qp->lost_reported, false, __ATOMIC_RELAXED);
		}
	}
	if (qp->tq && qp->nkept)
		n += qp_resubmit(qp);
	if (qp->tq == NULL && qp->nkept && (!qp->keep || host_ctrlr_fail_mode(c) != HOST_FAIL_NONE))
		n += qp_fail_kept(qp);
	return n;
}

static inline bool
qp_current(const struct host_qpair *qp)
{
	return qp->tq != NULL && !qp->tq_broken &&
	       qp->gen == __atomic_load_n(&qp->c->gen, __ATOMIC_RELAXED);
}

/* ---- the owner's calls ------------------------------------------------------------------------- */

int
host_qpair_submit(struct host_qpair *qp, struct nvl_nvme_cmd *cmd, const struct iovec *iov,
		  int iovcnt, uint32_t len, enum nvl_xfer_dir dir, nvl_io_cb cb, void *arg)
{
	struct host_req *r;
	struct iovec small;
	int rc;

	if (nvl_unlikely((unsigned)iovcnt > HOST_MAX_IOV || (len && iovcnt == 0)))
		return -EINVAL;
	if (nvl_unlikely(!qp_current(qp) || qp->nkept)) {
		qp_resync(qp);
		if (qp->stopped)
			return -ENOTCONN;
	}
	if (nvl_unlikely(qp->nfree == 0))
		return -EAGAIN;
	/* a free slot has no bounce and nothing saved (req_finish) */
	r = &qp->reqs[qp->free_cids[qp->nfree - 1]];
	cmd->cid = r->cid;
	r->len = len;
	r->dir = (uint8_t)dir;
	r->cb = cb;
	r->arg = arg;
	if (nvl_unlikely(dir == NVL_XFER_TO_CTRLR && len <= HOST_REQ_INLINE && iovcnt == 1 &&
			 (qp->keep || qp->tq == NULL || qp->tq->win == NULL))) {
		/* parameter blocks built on a caller's stack: sent later (tcp) or
		 * again (after a reconnect) from the slot */
		memcpy(r->small, iov[0].iov_base, len);
		small.iov_base = r->small;
		small.iov_len = len;
		iov = &small;
	}
	if (qp->keep)
		req_save(r, cmd, iov, iovcnt);
	if (nvl_likely(qp->tq != NULL && !qp->tq_broken)) {
		rc = req_send(qp, r, cmd, iov, iovcnt);
		if (nvl_likely(rc == 0)) {
			qp->nfree--;
			r->state = HOST_REQ_INFLIGHT;
			qp->outstanding++;
			return 0;
		}
		if (rc != -ENOTCONN) {
			r->saved = false;
			return rc;
		}
		qp->tq_broken = true; /* the transport says its queue is gone */
	}
	/* no usable transport queue: keep it for the next one, if one will come */
	if (!qp->keep || !cmd_idempotent(cmd->opc) ||
	    host_ctrlr_fail_mode(qp->c) != HOST_FAIL_NONE) {
		r->saved = false;
		return -ENOTCONN;
	}
	req_save(r, cmd, iov, iovcnt);
	qp->nfree--;
	r->state = HOST_REQ_KEPT;
	qp->nkept++;
	qp->outstanding++;
	return 0;
}

void
host_qpair_complete(struct host_qpair *qp, const struct nvl_nvme_cpl *cpl)
{
	struct host_req *r;
	uint16_t st;

	if (nvl_unlikely(cpl->cid >= qp->entries - 1))
		return; /* not ours: a misbehaving target; ignore */
	r = &qp->reqs[cpl->cid];
	if (nvl_unlikely(r->state != HOST_REQ_INFLIGHT))
		return; /* a duplicate */
	st = nvl_cpl_status(cpl);
	if (nvl_unlikely(st != 0)) {
		if (host_status_is_path_error(st) && !(cpl->status & NVL_NVME_STATUS_DNR) &&
		    qp_keeps(qp, r)) {
			/* the path failed, not the command: again after a reconnect
			 * (unless the target said Do Not Retry: then it fails here) */
			req_unbounce(qp, r, false);
			r->state = HOST_REQ_KEPT;
			qp->nkept++;
			host_qpair_lost(qp, "I/O queue %u: %s", qp->qid, nvl_status_str(st));
			return;
		}
		req_unbounce(qp, r, false);
	} else if (r->bounce) {
		req_unbounce(qp, r, r->dir == NVL_XFER_FROM_CTRLR);
	}
	req_finish(qp, r, cpl);
}

void
host_qpair_path_lost(struct host_qpair *qp, uint16_t cid)
{
	struct host_req *r;

	if (cid >= qp->entries - 1 || qp->reqs[cid].state != HOST_REQ_INFLIGHT)
		return;
	r = &qp->reqs[cid];
	req_unbounce(qp, r, false);
	if (qp_keeps(qp, r)) {
		r->state = HOST_REQ_KEPT;
		qp->nkept++;
		return;
	}
	req_abort(qp, r);
}

static int
qp_poll_slow(struct host_qpair *qp, uint32_t max)
{
	int n = qp_resync(qp);

	if (qp->tq == NULL) {
		if (n > 0)
			return n;
		return !qp->keep || host_ctrlr_fail_mode(qp->c) == HOST_FAIL_GONE || qp->stopped
			       ? -ENOTCONN
			       : 0;
	}
	/* a queue that fails here is dropped by the next call (its owner may
	 * want to stop watching its fds first: host_qpair_connected()) */
	return n + qp->ops->poll(qp, qp->tq, max);
}

int
host_qpair_poll(struct host_qpair *qp, uint32_t max)
{
	if (nvl_likely(qp_current(qp) && !qp->nkept))
		return qp->ops->poll(qp, qp->tq, max);
	return qp_poll_slow(qp, max);
}

uint32_t
host_qpair_outstanding(const struct host_qpair *qp)
{
	return qp->outstanding;
}

uint64_t
host_qpair_epoch(const struct host_qpair *qp)
{
	return qp->epoch;
}

bool
host_qpair_interrupts(const struct host_qpair *qp)
{
	return qp->opts.interrupts;
}

bool
host_qpair_connected(const struct host_qpair *qp)
{
	return qp_current(qp);
}

int
host_qpair_fds(const struct host_qpair *qp, struct pollfd *pfds, int max)
{
	if (qp->tq == NULL || max <= 0)
		return 0;
	return qp->ops->tq_fds(qp->tq, pfds, max);
}

int
host_qpair_arm(struct host_qpair *qp)
{
	int rc;

	if (!qp_current(qp) || qp->nkept)
		return -EAGAIN;
	if (qp->ops->arm == NULL)
		return 0;
	rc = qp->ops->arm(qp->tq);
	if (rc == -ENOTCONN) {
		host_qpair_lost(qp, "I/O queue %u: the controller's connection hung up", qp->qid);
		return -EAGAIN;
	}
	return rc;
}

void
host_qpair_ack(struct host_qpair *qp, const struct pollfd *pfds, int n)
{
	if (qp->tq && qp->ops->ack)
		qp->ops->ack(qp, qp->tq, pfds, n);
}

int
host_qpair_peer_cpu(const struct host_qpair *qp)
{
	if (qp->tq == NULL || qp->ops->peer_cpu == NULL)
		return -1;
	return qp->ops->peer_cpu(qp->tq);
}

bool
host_qpair_spin_yields(const struct host_qpair *qp)
{
	return qp->ops->spin_yields;
}

void
host_qpair_stop(struct host_qpair *qp, bool complete)
{
	struct host_tq *offer;

	qp->stopped = true;
	if (qp->tq) {
		for (uint32_t i = 0; i < qp->entries - 1; i++)
			if (qp->reqs[i].state == HOST_REQ_INFLIGHT)
				req_unbounce(qp, &qp->reqs[i], false);
		qp->tq->ops->tq_destroy(qp->tq);
		qp->tq = NULL;
	}
	offer = __atomic_exchange_n(&qp->offer, NULL, __ATOMIC_ACQUIRE);
	if (offer)
		offer->ops->tq_destroy(offer);
	for (uint32_t i = 0; i < qp->entries - 1; i++) {
		struct host_req *r = &qp->reqs[i];

		if (r->state == HOST_REQ_FREE)
			continue;
		if (!complete)
			r->cb = NULL;
		req_abort(qp, r);
	}
}

void
host_qpair_set_ctx(struct host_qpair *qp, void *ctx)
{
	qp->ctx = ctx;
}

void *
host_qpair_ctx(const struct host_qpair *qp)
{
	return qp->ctx;
}

uint16_t
host_qpair_qid(const struct host_qpair *qp)
{
	return qp->qid;
}

struct host_ctrlr *
host_qpair_ctrlr(const struct host_qpair *qp)
{
	return qp->c;
}

uint32_t
host_qpair_entries(const struct host_qpair *qp)
{
	return qp->entries;
}

/* ---- the controller's side -------------------------------------------------------------------------- */

static void
qp_kick(struct host_ctrlr *c, struct host_qpair *qp)
{
	if (c->opts.qpair_kick)
		c->opts.qpair_kick(c->opts.arg, qp);
}

static void
qp_take_offer_back(struct host_qpair *qp)
{
	struct host_tq *tq = __atomic_exchange_n(&qp->offer, NULL, __ATOMIC_ACQUIRE);

	if (tq)
		tq->ops->tq_destroy(tq);
}

/* Start making qp's transport queue; a first failure fails the queue pair only. */
static int
qp_connect(struct host_ctrlr *c, struct host_qpair *qp)
{
	int rc = c->ops->tq_connect(c, qp);

	if (rc == 0) {
		qp->cstate = HOST_QP_CONNECTING;
		return 0;
	}
	if (qp->ever_connected) {
		host_assoc_fail(c, rc, "I/O queue %u: cannot connect: %s", qp->qid, strerror(-rc));
	} else {
		qp->cstate = HOST_QP_FAILED;
		qp->connect_rc = rc;
	}
	return rc;
}

int
host_qpair_create(struct host_ctrlr *c, const struct host_qpair_opts *o, struct host_qpair **out)
{
	struct host_qpair *qp;
	uint16_t qid = 0;

	if (o->entries < 2 || o->entries > 65536 ||
	    (c->max_queue_entries && o->entries > c->max_queue_entries))
		return -EINVAL;
	for (uint16_t q = 1; q <= c->max_io_queues && q <= HOST_MAX_QUEUES; q++) {
		if (!c->qid_used[q]) {
			qid = q;
			break;
		}
	}
	if (qid == 0)
		return -ENOSPC;
	qp = calloc(1, sizeof(*qp));
	if (qp == NULL)
		return -ENOMEM;
	qp->c = c;
	qp->ops = c->ops;
	qp->qid = qid;
	qp->opts = *o;
	qp->entries = o->entries;
	qp->keep = c->opts.ctrlr_loss_ms != 0;
	qp->connect_rc = -EINPROGRESS;
	qp->reqs = calloc(qp->entries - 1, sizeof(*qp->reqs));
	qp->free_cids = calloc(qp->entries - 1, sizeof(uint16_t));
	if (qp->reqs == NULL || qp->free_cids == NULL) {
		free(qp->reqs);
		free(qp->free_cids);
		free(qp);
		return -ENOMEM;
	}
	/* at most entries - 1 commands in flight (a full ring keeps one slot empty);
	 * the stack hands out cid 0 first */
	for (uint32_t i = 0; i < qp->entries - 1; i++) {
		qp->reqs[i].cid = (uint16_t)i;
		qp->reqs[i].qp = qp;
		qp->free_cids[qp->nfree++] = (uint16_t)(qp->entries - 2 - i);
	}
	c->qid_used[qid] = true;
	TAILQ_INSERT_TAIL(&c->qpairs, qp, link);
	if (host_ctrlr_state(c) == HOST_CTRLR_READY && qp_connect(c, qp) < 0) {
		int rc = qp->connect_rc;

		qp_free(c, qp);
		return rc;
	}
	*out = qp;
	return 0;
}

int
host_qpair_connect_rc(const struct host_qpair *qp)
{
	return qp->connect_rc;
}

static void
qp_free(struct host_ctrlr *c, struct host_qpair *qp)
{
	host_done_fn done = qp->done;
	void *arg = qp->done_arg;

	qp_take_offer_back(qp);
	TAILQ_REMOVE(&c->qpairs, qp, link);
	c->qid_used[qp->qid] = false;
	free(qp->reqs);
	free(qp->free_cids);
	free(qp);
	if (done)
		done(arg);
}

static void
qp_delete_done(void *arg, const struct nvl_nvme_cpl *cpl, int rc)
{
	struct host_qpair *qp = arg;

	(void)cpl;
	(void)rc;
	if (--qp->deletes_left == 0)
		qp_free(qp->c, qp);
}

/* Delete I/O SQ, then CQ (Base 5.6, 5.7: the SQ first), or free now if
 * the controller has nothing to delete. */
static void
qp_delete_queues(struct host_ctrlr *c, struct host_qpair *qp)
{
	static const uint8_t opc[2] = { NVL_NVME_ADM_DELETE_SQ, NVL_NVME_ADM_DELETE_CQ };

	qp->cstate = HOST_QP_DELETING;
	qp->deletes_left = 1; /* held while submitting */
	if (c->ops->delete_queues && c->assoc_live) {
		for (int i = 0; i < 2; i++) {
			struct nvl_nvme_cmd cmd = { 0 };

			cmd.opc = opc[i];
			cmd.cdw10 = qp->qid;
			qp->deletes_left++;
			if (host_admin_submit(c, &cmd, NULL, 0, NVL_XFER_NONE, 0, qp_delete_done, qp,
					      NULL, NULL) < 0)
				qp->deletes_left--;
		}
	}
	qp_delete_done(qp, NULL, 0);
}

void
host_qpair_destroy(struct host_qpair *qp, host_done_fn done, void *arg)
{
	struct host_ctrlr *c = qp->c;

	qp->done = done;
	qp->done_arg = arg;
	qp_take_offer_back(qp);
	switch (qp->cstate) {
	case HOST_QP_CONNECTING:
		qp->destroy_asked = true; /* host_tq_connected / _failed finish it */
		return;
	case HOST_QP_CONNECTED:
		qp_delete_queues(c, qp);
		return;
	case HOST_QP_DELETING:
		return;
	default:
		qp_free(c, qp);
		return;
	}
}

void
host_tq_connected(struct host_ctrlr *c, struct host_qpair *qp, struct host_tq *tq)
{
	struct host_tq *old;

	if (c->dropping || qp->cstate != HOST_QP_CONNECTING) {
		tq->ops->tq_destroy(tq);
		return;
	}
	qp->tconn = NULL;
	if (qp->destroy_asked) {
		tq->ops->tq_destroy(tq);
		qp->cstate = HOST_QP_CONNECTED;
		qp_delete_queues(c, qp);
		return;
	}
	tq->gen = c->gen;
	qp->cstate = HOST_QP_CONNECTED;
	qp->ever_connected = true;
	qp->connect_rc = 0;
	/* publish the queue; pairs with the acquire exchange in qp_resync() */
	old = __atomic_exchange_n(&qp->offer, tq, __ATOMIC_ACQ_REL);
	if (old)
		old->ops->tq_destroy(old);
	qp_kick(c, qp);
	if (c->step == HOST_STEP_QPAIRS && --c->qp_waiting == 0)
		host_assoc_qpairs_done(c);
}

void
host_tq_failed(struct host_ctrlr *c, struct host_qpair *qp, int rc, const char *fmt, ...)
{
	char why[HOST_ERR_LEN];
	va_list ap;

	if (c->dropping || qp->cstate != HOST_QP_CONNECTING)
		return;
	qp->tconn = NULL;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (qp->destroy_asked) {
		qp->cstate = HOST_QP_IDLE;
		qp_free(c, qp);
		return;
	}
	if (qp->ever_connected || c->step == HOST_STEP_QPAIRS) {
		/* part of an association's set-up: the association failed */
		qp->cstate = HOST_QP_IDLE;
		host_assoc_fail(c, rc, "%s", why);
		return;
	}
	qp->cstate = HOST_QP_FAILED;
	qp->connect_rc = rc;
	host_ctrlr_set_error(c, "%s", why);
}

void
host_qpairs_assoc_dropped(struct host_ctrlr *c)
{
	struct host_qpair *qp, *tmp;

	TAILQ_FOREACH_SAFE(qp, &c->qpairs, link, tmp) {
		qp_take_offer_back(qp);
		switch (qp->cstate) {
		case HOST_QP_CONNECTING:
			if (c->ops->tq_cancel)
				c->ops->tq_cancel(c, qp);
			qp->tconn = NULL;
			qp->cstate = HOST_QP_IDLE;
			if (qp->destroy_asked)
				qp_free(c, qp);
			break;
		case HOST_QP_CONNECTED:
			qp->cstate = HOST_QP_IDLE;
			break;
		default:
			break;
		}
	}
}

void
host_qpairs_kick(struct host_ctrlr *c)
{
	struct host_qpair *qp;

	TAILQ_FOREACH(qp, &c->qpairs, link)
		qp_kick(c, qp);
}

int
host_qpairs_connect_all(struct host_ctrlr *c)
{
	struct host_qpair *qp;
	int n = 0;

	TAILQ_FOREACH(qp, &c->qpairs, link) {
		int rc;

		if (qp->cstate != HOST_QP_IDLE)
			continue;
		rc = c->ops->tq_connect(c, qp);
		if (rc < 0) {
			host_assoc_fail(c, rc, "I/O queue %u: cannot connect: %s", qp->qid,
					strerror(-rc));
			return rc;
		}
		qp->cstate = HOST_QP_CONNECTING;
		n++;
	}
	return n;
}

int
host_qpairs_connect_new(struct host_ctrlr *c)
{
	struct host_qpair *qp, *tmp;
	int n = 0;

	TAILQ_FOREACH_SAFE(qp, &c->qpairs, link, tmp) {
		if (qp->cstate != HOST_QP_IDLE)
			continue;
		qp_connect(c, qp);
		n++;
		if (host_ctrlr_state(c) != HOST_CTRLR_READY)
			break; /* an old queue pair failed to come back: the association went */
	}
	return n;
}

bool
host_qpairs_connecting(const struct host_ctrlr *c)
{
	const struct host_qpair *qp;

	TAILQ_FOREACH(qp, &c->qpairs, link)
		if (qp->cstate == HOST_QP_CONNECTING || qp->cstate == HOST_QP_DELETING)
			return true;
	return false;
}
