/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The nvme bdev module's bdev ops and I/O queues (bdev_nvme_internal.h).
 *
 * Each I/O queue (struct nvme_ioq) drives one queue pair of the host core
 * on one reactor, for life; every reactor has at least one, and bdev I/O is
 * served on the submitting reactor. Its poller reaps completions while the
 * queue is busy; when idle, the reactor sleeps and the queue's fds (the
 * socket, or the shm interrupt and hang-up) wake it. I/O larger than the
 * controller's transfer limit (or scattered over more than HOST_MAX_IOV
 * buffers) goes in pieces, one at a time; what the queue pair cannot take
 * yet waits on the queue's pending list.
 *
 * Keeping I/O across a lost connection, resubmitting it and failing it
 * (fast_io_fail_timeout_sec, ctrlr_loss_timeout_sec) are the core's: a
 * command the core gives up completes with "aborted: SQ deleted", which
 * this file turns into the controller's failure errno.
 *
 * Threads: everything of a queue runs on its reactor; reactor 0 reaches it
 * by messages (start, stop, kick) and it answers by messages.
 */
#include "module/bdev_nvme_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

/* ---- status -> errno (the one conversion for this backend) ---------------------------- */

static int
nvme_errno_from_status(uint16_t sct_sc)
{
	switch (sct_sc & 0x7ff) {
	case NVL_NVME_SC_SUCCESS: return 0;
	case NVL_NVME_SC_INVALID_FIELD:
	case NVL_NVME_SC_INVALID_OPCODE: return -EINVAL;
	case NVL_NVME_SC_LBA_OUT_OF_RANGE: return -ERANGE;
	case NVL_NVME_SC_CAPACITY_EXCEEDED: return -ENOSPC;
	case NVL_NVME_SC_NS_WRITE_PROTECTED: return -EROFS;
	case NVL_NVME_SC_RESERVATION_CONFLICT:
	case NVL_NVME_SC_ACCESS_DENIED: return -EACCES;
	case NVL_NVME_SC_INVALID_NAMESPACE: return -ENXIO;
	case NVL_NVME_SC_ABORT_REQUESTED: return -ECANCELED;
	default: return -EIO;
	}
}

/* ---- pending lists ---------------------------------------------------------------------- */

/* Our use of struct nvl_bdev_io's private words:
 *   priv[0] next on a pending list, priv[1] the queue, priv[2] bytes (read,
 *   write) or blocks (write zeroes) done, priv[3] size of the piece in flight;
 *   a deallocate keeps its 16-byte range in priv[2..3] instead. */
static inline struct nvl_bdev_io *
io_next(const struct nvl_bdev_io *io)
{
	return (struct nvl_bdev_io *)(uintptr_t)io->priv[0];
}

static inline void
io_set_next(struct nvl_bdev_io *io, struct nvl_bdev_io *n)
{
	io->priv[0] = (uintptr_t)n;
}

static inline struct nvme_ioq *
io_queue(const struct nvl_bdev_io *io)
{
	return (struct nvme_ioq *)(uintptr_t)io->priv[1];
}

#define IO_DONE(io) ((io)->priv[2])
#define IO_CHUNK(io) ((io)->priv[3])

static void
pend_push(struct nvme_ioq *q, struct nvl_bdev_io *io, bool front)
{
	io_set_next(io, NULL);
	if (q->pend_head == NULL) {
		q->pend_head = q->pend_tail = io;
	} else if (front) {
		io_set_next(io, q->pend_head);
		q->pend_head = io;
	} else {
		io_set_next(q->pend_tail, io);
		q->pend_tail = io;
	}
}

static struct nvl_bdev_io *
pend_pop(struct nvme_ioq *q)
{
	struct nvl_bdev_io *io = q->pend_head;

	if (io) {
		q->pend_head = io_next(io);
		if (q->pend_head == NULL)
			q->pend_tail = NULL;
	}
	return io;
}

static void
ioq_fail_pending(struct nvme_ioq *q, int err)
{
	struct nvl_bdev_io *io;

	while ((io = pend_pop(q)) != NULL) {
		q->failed++;
		nvl_bdev_io_complete(io, err);
	}
}

/* ---- commands --------------------------------------------------------------------------- */

/* The next piece of a read/write: from byte off, at most maxlen bytes, in at
 * most HOST_MAX_IOV iovecs, a whole number of blocks. \return the iovec count
 * (len set), or -1 if not even one block fits. */
static int
io_chunk(const struct nvl_bdev_io *io, uint64_t off, uint32_t maxlen, uint8_t lbads,
	 struct iovec *out, uint32_t *len)
{
	uint64_t want = NVL_MIN(io->length - off, (uint64_t)maxlen), got = 0, excess;
	int n = 0;

	for (int i = 0; i < io->iovcnt && got < want && n < HOST_MAX_IOV; i++) {
		size_t l = io->iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		out[n].iov_base = (uint8_t *)io->iov[i].iov_base + off;
		out[n].iov_len = (size_t)NVL_MIN((uint64_t)(l - off), want - got);
		got += out[n].iov_len;
		off = 0;
		n++;
	}
	/* iovecs ran out first: trim to whole blocks */
	excess = got & ((1ULL << lbads) - 1);
	while (excess > 0 && n > 0) {
		size_t k = NVL_MIN((uint64_t)out[n - 1].iov_len, excess);

		out[n - 1].iov_len -= k;
		got -= k;
		excess -= k;
		if (out[n - 1].iov_len == 0)
			n--;
	}
	if (got == 0)
		return -1;
	*len = (uint32_t)got;
	return n;
}

static void io_cpl(void *arg, const struct nvl_nvme_cpl *cpl);

/* Send the next command of io. \return 0, -EAGAIN (no slot: later),
 * -ENOTCONN (the controller is failing), or another -errno (fail it). */
static int
io_send(struct nvme_ioq *q, struct nvl_bdev_io *io)
{
	struct nvme_bdev *nb = container_of(io->bdev, struct nvme_bdev, bdev);
	struct nvl_nvme_cmd cmd = { 0 };
	struct iovec iov[HOST_MAX_IOV];
	enum nvl_xfer_dir dir = NVL_XFER_NONE;
	uint32_t len = 0;
	int n = 0, rc;

	cmd.nsid = nb->nsid;
	switch (io->type) {
	case NVL_BDEV_IO_READ:
	case NVL_BDEV_IO_WRITE: {
		uint64_t off = IO_DONE(io);
		uint64_t slba = (io->offset + off) >> nb->lbads;

		n = io_chunk(io, off, host_ctrlr_max_xfer(q->ctrlr->hc), nb->lbads, iov, &len);
		if (n < 0)
			return -EINVAL;
		IO_CHUNK(io) = len;
		cmd.opc = io->type == NVL_BDEV_IO_READ ? NVL_NVME_IO_READ : NVL_NVME_IO_WRITE;
		cmd.cdw10 = (uint32_t)slba;
		cmd.cdw11 = (uint32_t)(slba >> 32);
		cmd.cdw12 = ((len >> nb->lbads) - 1) |
			    ((io->flags & NVL_BDEV_IO_FUA) && io->type == NVL_BDEV_IO_WRITE
				     ? NVL_NVME_RW_FUA
				     : 0);
		dir = io->type == NVL_BDEV_IO_READ ? NVL_XFER_FROM_CTRLR : NVL_XFER_TO_CTRLR;
		break;
	}
	case NVL_BDEV_IO_FLUSH:
		cmd.opc = NVL_NVME_IO_FLUSH;
		break;
	case NVL_BDEV_IO_WRITE_ZEROES: {
		uint64_t done = IO_DONE(io), blocks = io->length >> nb->lbads;
		uint64_t slba = (io->offset >> nb->lbads) + done;
		uint32_t nlb = (uint32_t)NVL_MIN(blocks - done, (uint64_t)65536);

		IO_CHUNK(io) = nlb;
		cmd.opc = NVL_NVME_IO_WRITE_ZEROES;
		cmd.cdw10 = (uint32_t)slba;
		cmd.cdw11 = (uint32_t)(slba >> 32);
		cmd.cdw12 = (nlb - 1) | ((io->flags & NVL_BDEV_IO_NO_HOLE) ? 0 : NVL_NVME_WZ_DEAC);
		break;
	}
	case NVL_BDEV_IO_UNMAP: {
		/* one range; its 16 bytes live in the I/O itself (priv[2..3]) */
		struct nvl_nvme_dsm_range r;
		uint64_t blocks = io->length >> nb->lbads;

		if (blocks > UINT32_MAX)
			return -EINVAL;
		r.attributes = 0;
		r.nlb = (uint32_t)blocks;
		r.slba = io->offset >> nb->lbads;
		memcpy(&io->priv[2], &r, sizeof(r));
		cmd.opc = NVL_NVME_IO_DSM;
		cmd.cdw10 = 0;
		cmd.cdw11 = NVL_NVME_DSM_AD;
		iov[0].iov_base = &io->priv[2];
		iov[0].iov_len = sizeof(r);
		n = 1;
		len = sizeof(r);
		dir = NVL_XFER_TO_CTRLR;
		break;
	}
	default:
		return -ENOTSUP;
	}
	rc = host_qpair_submit(q->qp, &cmd, iov, n, len, dir, io_cpl, io);
	if (rc < 0)
		return rc;
	q->inflight++;
	q->submitted++;
	return 0;
}

static void
io_fail(struct nvme_ioq *q, struct nvl_bdev_io *io, int rc)
{
	q->failed++;
	nvl_bdev_io_complete(io, rc);
}

/* What a command refused for want of a controller fails with. */
static int
ioq_away_errno(const struct nvme_ioq *q)
{
	int rc = bdev_nvme_fail_errno(q->ctrlr);

	return rc ? rc : -EIO;
}

static void
io_cpl(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct nvl_bdev_io *io = arg;
	struct nvme_ioq *q = io_queue(io);
	struct nvme_bdev *nb = container_of(io->bdev, struct nvme_bdev, bdev);
	uint16_t st = nvl_cpl_status(cpl);
	uint64_t total;

	q->inflight--;
	q->completed++;
	q->last_active_ns = nvl_now_ns();
	if (st != 0) {
		/* a path error reaching us: the core gave the command up */
		io_fail(q, io, host_status_is_path_error(st) ? ioq_away_errno(q)
							     : nvme_errno_from_status(st));
		return;
	}
	switch (io->type) {
	case NVL_BDEV_IO_READ:
	case NVL_BDEV_IO_WRITE:
		total = io->length;
		break;
	case NVL_BDEV_IO_WRITE_ZEROES:
		total = io->length >> nb->lbads;
		break;
	default:
		nvl_bdev_io_complete(io, 0);
		return;
	}
	IO_DONE(io) += IO_CHUNK(io);
	if (IO_DONE(io) < total) {
		pend_push(q, io, true); /* the next piece, sent by the poller */
		return;
	}
	nvl_bdev_io_complete(io, 0);
}

/* Send what waits, while the queue pair takes it. */
static int
ioq_drain(struct nvme_ioq *q)
{
	struct nvl_bdev_io *io;
	int n = 0, fail = bdev_nvme_fail_errno(q->ctrlr);

	if (fail) {
		if (q->pend_head == NULL)
			return 0;
		ioq_fail_pending(q, fail);
		return 1;
	}
	while ((io = pend_pop(q)) != NULL) {
		int rc = io_send(q, io);

		if (rc == -EAGAIN || rc == -ENOTCONN) {
			pend_push(q, io, true);
			break;
		}
		if (rc < 0)
			io_fail(q, io, rc);
		n++;
	}
	return n;
}

/* ---- the queue's fds ---------------------------------------------------------------------- */

static void ioq_fd_event(void *arg, uint32_t events);

/* poll(2) and epoll share the bit values of IN, OUT, ERR, HUP and RDHUP */
static uint32_t
ioq_epoll_events(short events)
{
	return (uint32_t)events & (EPOLLIN | EPOLLOUT | EPOLLRDHUP);
}

static void
ioq_fds_drop(struct nvme_ioq *q)
{
	for (int i = 0; i < q->nfds; i++)
		nvl_fd_del(q->fd[i].h);
	q->nfds = 0;
}

/* Register the queue pair's fds (before its connection may go: see service). */
static void
ioq_fds_add(struct nvme_ioq *q)
{
	struct pollfd p[NVME_MAX_IOQ_FDS];
	int n = host_qpair_fds(q->qp, p, NVME_MAX_IOQ_FDS);

	q->epoch = host_qpair_epoch(q->qp);
	for (int i = 0; i < n; i++) {
		struct nvme_ioq_fd *f = &q->fd[q->nfds];

		f->q = q;
		f->pfd = p[i];
		f->h = nvl_fd_add(p[i].fd, ioq_epoll_events(p[i].events), ioq_fd_event, f);
		if (f->h == NULL) {
			NVL_ERRLOG("%s: I/O queue %u: cannot watch fd %d", q->ctrlr->o.name,
				   host_qpair_qid(q->qp), p[i].fd);
			continue;
		}
		q->nfds++;
	}
}

/* A socket with something to send wants EPOLLOUT too. */
static void
ioq_fds_update(struct nvme_ioq *q)
{
	struct pollfd p[NVME_MAX_IOQ_FDS];
	int n = host_qpair_fds(q->qp, p, NVME_MAX_IOQ_FDS);

	for (int i = 0; i < n && i < q->nfds; i++) {
		struct nvme_ioq_fd *f = &q->fd[i];

		if (p[i].fd == f->pfd.fd && p[i].events != f->pfd.events &&
		    nvl_fd_mod(f->h, ioq_epoll_events(p[i].events)) == 0)
			f->pfd.events = p[i].events;
	}
}

/* ---- service ------------------------------------------------------------------------------- */

static int
ioq_service(struct nvme_ioq *q, bool force)
{
	int work = 0, n;

	if (!force && q->inflight == 0 && q->pend_head == NULL && q->nfds &&
	    nvl_now_ns() - q->last_active_ns > nvl_reactor_get_spin_us() * 1000)
		return 0; /* idle: a wake-up on its fds or a kick brings us back */
	/* a connection about to be dropped or replaced: unwatch its fds first
	 * (an fd closed while watched could stay in epoll through a duplicate) */
	if (q->nfds && (!host_qpair_connected(q->qp) || q->epoch != host_qpair_epoch(q->qp)))
		ioq_fds_drop(q);
	n = host_qpair_poll(q->qp, 0);
	if (n > 0) {
		work += n;
		q->last_active_ns = nvl_now_ns();
	}
	if (q->nfds == 0 && host_qpair_connected(q->qp))
		ioq_fds_add(q);
	work += ioq_drain(q);
	if (work) {
		(void)host_qpair_poll(q->qp, 0); /* send what drain queued */
		q->last_active_ns = nvl_now_ns();
	}
	if (q->nfds)
		ioq_fds_update(q);
	return work;
}

static int
ioq_poll(void *arg)
{
	return ioq_service(arg, false);
}

/* Before the reactor sleeps: arm the completion interrupt (shm). */
static int
ioq_sleep(void *arg)
{
	struct nvme_ioq *q = arg;

	if (!host_qpair_connected(q->qp) || q->nfds == 0)
		return 0; /* nothing to arm: a kick wakes us */
	return host_qpair_arm(q->qp) == -EAGAIN ? 1 : 0;
}

static void
ioq_fd_event(void *arg, uint32_t events)
{
	struct nvme_ioq_fd *f = arg;
	struct nvme_ioq *q = f->q;
	struct pollfd seen = f->pfd;

	seen.revents = (short)events;
	host_qpair_ack(q->qp, &seen, 1); /* consume the interrupt, notice a hang-up */
	ioq_service(q, true);
}

/* ---- messages from reactor 0 ---------------------------------------------------------------- */

static void
ioq_kick_msg(void *arg)
{
	ioq_service(arg, true);
}

void
bdev_nvme_ioq_kick(struct nvme_ioq *q)
{
	if (nvl_reactor_msg(q->reactor, ioq_kick_msg, q) < 0)
		NVL_ERRLOG("%s: cannot reach the reactor of an I/O queue", q->ctrlr->o.name);
}

void
bdev_nvme_ioq_start(void *arg)
{
	struct nvme_ioq *q = arg;

	q->poller = nvl_poller_create(ioq_poll, q, "bdev-nvme-ioq");
	if (q->poller == NULL)
		NVL_ERRLOG("%s: I/O queue %u: cannot start its poller", q->ctrlr->o.name,
			   host_qpair_qid(q->qp));
	else
		nvl_poller_set_sleep_hook(q->poller, ioq_sleep);
	q->last_active_ns = nvl_now_ns();
	ioq_service(q, true); /* take the connection the controller made */
	if (nvl_reactor_msg(nvl_reactor_get(0), bdev_nvme_ctrlr_ioq_started, q->ctrlr) < 0)
		NVL_ERRLOG("%s: cannot reach reactor 0", q->ctrlr->o.name);
}

void
bdev_nvme_ioq_stop(void *arg)
{
	struct nvme_ioq *q = arg;

	ioq_fds_drop(q);
	nvl_poller_destroy(q->poller);
	q->poller = NULL;
	/* what is in flight fails (the controller is detaching: -ENXIO) */
	host_qpair_stop(q->qp, true);
	ioq_fail_pending(q, -ENXIO);
	if (nvl_reactor_msg(nvl_reactor_get(0), bdev_nvme_ctrlr_ioq_stopped, q->ctrlr) < 0)
		NVL_ERRLOG("%s: cannot reach reactor 0", q->ctrlr->o.name);
}

/* ---- bdev ops ---------------------------------------------------------------------------------- */

static int
nvme_bdev_submit(struct nvl_bdev *b, struct nvl_bdev_io *io)
{
	struct nvme_bdev *nb = container_of(b, struct nvme_bdev, bdev);
	struct nvme_ctrlr *c = nb->ctrlr;
	struct nvl_reactor *r = nvl_reactor_self();
	unsigned rid = r ? nvl_reactor_id(r) : 0;
	struct nvme_ioq *q;
	int rc;

	if (c == NULL || c->nby_reactor[rid] == 0)
		return -ENXIO;
	q = c->by_reactor[rid][c->rr[rid]++ % c->nby_reactor[rid]];
	io->priv[1] = (uintptr_t)q;
	IO_DONE(io) = 0;
	rc = bdev_nvme_fail_errno(c);
	if (rc)
		return rc;
	if (q->pend_head == NULL) {
		rc = io_send(q, io);
		if (rc == 0) {
			q->last_active_ns = nvl_now_ns();
			return 0;
		}
		if (rc == -ENOTCONN)
			return ioq_away_errno(q);
		if (rc != -EAGAIN)
			return rc;
	}
	pend_push(q, io, false);
	return 0;
}

static void
nvme_bdev_destroy(struct nvl_bdev *b)
{
	struct nvme_bdev *nb = container_of(b, struct nvme_bdev, bdev);
	struct nvme_ctrlr *c = nb->ctrlr;

	if (c) {
		for (unsigned i = 0; i < c->nbdevs; i++)
			if (c->bdevs[i] == nb)
				c->bdevs[i] = NULL;
	}
	free(nb);
}

static void
nvme_bdev_dump_info(struct nvl_bdev *b, json_t *ds)
{
	struct nvme_bdev *nb = container_of(b, struct nvme_bdev, bdev);
	struct nvme_ctrlr *c = nb->ctrlr;

	if (c == NULL)
		return;
	json_object_set_new(
		ds, "nvme",
		json_pack("{s:s, s:i, s:s, s:{s:s, s:s, s:s, s:s, s:s}}", "ctrlr_name", c->o.name,
			  "nsid", (int)nb->nsid, "state", bdev_nvme_ctrlr_state(c), "trid", "trtype",
			  c->o.trtype, "adrfam", c->o.adrfam, "traddr", c->o.traddr, "trsvcid",
			  c->o.trsvcid, "subnqn", c->o.subnqn));
}

static json_t *
nvme_bdev_write_config(struct nvl_bdev *b)
{
	struct nvme_bdev *nb = container_of(b, struct nvme_bdev, bdev);
	struct nvme_ctrlr *c = nb->ctrlr;

	/* one attach call per controller: emitted with its first bdev */
	if (c == NULL)
		return NULL;
	for (unsigned i = 0; i < c->nbdevs; i++)
		if (c->bdevs[i])
			return c->bdevs[i] == nb ? bdev_nvme_ctrlr_config(c) : NULL;
	return NULL;
}

const struct nvl_bdev_ops g_nvme_bdev_ops = {
	.name = "nvme_tcp",
	.submit = nvme_bdev_submit,
	.destroy = nvme_bdev_destroy,
	.dump_info = nvme_bdev_dump_info,
	.write_config = nvme_bdev_write_config,
};
