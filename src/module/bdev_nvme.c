/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvme_tcp bdevs: namespaces of a remote NVMe/TCP controller (nvlendd, Linux
 * nvmet, SPDK...) imported as local bdevs, one per active namespace,
 * through bdev_nvme_attach_controller / bdev_nvme_detach_controller (SPDK's
 * names and parameters).
 *
 * Ownership and threads:
 *  - struct nvme_ctrlr (reactor 0): the admin queue (a non-blocking
 *    initiator queue, tcp_hostq.c, driven by a poller), the attach /
 *    reconnect state machine, keep-alive, the namespaces' bdevs.
 *  - struct nvme_ioq: one I/O queue pair bound for life to one reactor;
 *    every reactor has at least one (bdev I/O is served on the submitting
 *    reactor). Its connection, its pending list and its counters are only
 *    touched there. Reactor 0 and the queues talk by messages tagged with
 *    the controller's connection generation, so late news of an old
 *    connection is ignored.
 *
 * Loss of the connection (any queue fails, or the admin queue times out):
 * every queue drops its connection and keeps the I/O it had in flight on
 * its pending list; reactor 0 retries the association after
 * reconnect_delay_sec, doubling the delay after each failed attempt (at
 * most 8x, never beyond the loss deadline). I/O submitted meanwhile waits
 * too. fast_io_fail_timeout_sec after the loss, waiting and new I/O fail
 * with -EIO until the controller is back; ctrlr_loss_timeout_sec after the
 * loss (-1: never) the controller is given up and all its I/O fails with
 * -ENXIO until it is detached. The bdevs stay registered throughout.
 */
#include "bdev/bdev.h"
#include "app/app.h"
#include "rpc/rpc.h"
#include "host/tcp_hostq.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(bdev_nvme)

#define NVME_MAX_NS 256
#define NVME_MAX_IOQ 64
#define NVME_ADMIN_TIMEOUT_NS (10ULL * 1000000000ULL)
#define NVME_MAX_BACKOFF 8

enum ctrlr_state {
	CS_ATTACHING = 0,      /* first association, the RPC waits */
	CS_READY,
	CS_RESETTING,          /* queues dropping their connections */
	CS_WAIT_RECONNECT,     /* the next attempt is scheduled */
	CS_RECONNECTING,
	CS_FAILED,             /* ctrlr_loss_timeout_sec passed: given up */
	CS_DETACHING,
};

static const char *const g_state_names[] = { "attaching", "ready", "resetting",
					     "waiting to reconnect", "reconnecting", "failed",
					     "detaching" };

enum init_step {
	ST_ADMIN_CONNECT = 0,
	ST_CAP,
	ST_CC,
	ST_CSTS,
	ST_ID_CTRL,
	ST_NOQ,
	ST_NS_LIST,
	ST_ID_NS,
	ST_IOQ_CONNECT,
	ST_DONE,
};

struct nvme_ctrlr;

struct nvme_ioq {
	struct nvme_ctrlr *ctrlr;
	struct nvl_reactor *reactor;
	unsigned idx;
	uint16_t qid;
	/* reactor-owned */
	struct nvl_tcp_hq *hq;
	struct nvl_fdh *fdh;
	uint32_t fd_events;
	struct nvl_poller *poller;
	uint32_t gen;
	bool ready;
	bool fail_reported;         /* told reactor 0 the connection failed */
	bool failing;               /* fast-io-fail or controller lost: fail I/O */
	int fail_errno;
	struct nvl_bdev_io *pend_head, *pend_tail;
	uint32_t inflight;
	uint64_t last_active_ns;
	uint64_t submitted, completed, retried, failed;
};

struct nvme_bdev {
	struct nvl_bdev bdev;
	struct nvme_ctrlr *ctrlr;
	uint32_t nsid;
	uint8_t lbads;
};

struct nvme_ctrlr {
	char name[NVL_BDEV_NAME_MAX - 8];
	char traddr[256], trsvcid[32], adrfam[8], subnqn[NVL_NVME_NQN_LEN],
		hostnqn[NVL_NVME_NQN_LEN];
	uint8_t hostid[16];
	struct nvl_tcp_hq_opts base;
	bool hdgst, ddgst;
	uint32_t num_io_queues;
	uint32_t io_queue_size;
	uint32_t kato_ms;
	int64_t ctrlr_loss_timeout_sec;
	uint32_t reconnect_delay_sec;
	uint32_t fast_io_fail_timeout_sec;
	uint64_t connect_timeout_ns;

	enum ctrlr_state state;
	enum init_step step;
	uint32_t gen;
	struct nvl_tcp_hq *admin;
	struct nvl_poller *admin_poller;
	struct nvl_fdh *admin_fdh;
	uint32_t admin_fd_events;
	struct nvl_timer *timer;
	uint64_t step_deadline_ns;
	uint64_t admin_deadline_ns;  /* outstanding admin command must finish by then */
	bool admin_busy;
	bool ka_busy;
	uint64_t next_ka_ns;
	uint8_t *buf;                /* 4 KiB identify buffer */
	uint64_t cap;
	uint16_t cntlid;
	uint32_t max_xfer;
	uint32_t icd_max;
	uint16_t mqes;
	uint32_t ns_list[NVME_MAX_NS];
	unsigned nns_list, ns_idx;
	struct {
		uint32_t nsid;
		uint64_t nsze;
		uint32_t bs;
		uint8_t nguid[16];
		bool ro;
	} found[NVME_MAX_NS];
	unsigned nfound;

	struct nvme_ioq *ioq[NVME_MAX_IOQ];
	unsigned nioq;
	unsigned ioq_ready, ioq_acks;
	struct nvme_ioq *by_reactor[NVL_REACTOR_MAX][NVME_MAX_IOQ];
	unsigned nby_reactor[NVL_REACTOR_MAX];
	unsigned rr[NVL_REACTOR_MAX];

	struct nvme_bdev *bdevs[NVME_MAX_NS];
	unsigned nbdevs;

	uint64_t lost_ns;            /* when the current outage began (0: none) */
	bool fast_failed;            /* fast_io_fail_timeout_sec passed in this outage */
	uint64_t next_attempt_ns;
	unsigned attempts;
	uint64_t resets, reconnects;
	char last_error[256];

	struct nvl_rpc_request *rpc;  /* attach or detach waiting */
	TAILQ_ENTRY(nvme_ctrlr) link;
};

static TAILQ_HEAD(, nvme_ctrlr) g_ctrlrs = TAILQ_HEAD_INITIALIZER(g_ctrlrs);
static const struct nvl_bdev_ops g_nvme_bdev_ops;

static void ctrlr_step(struct nvme_ctrlr *c);

/* ---- status -> errno (the one conversion for this backend) ---------------------- */

static int
errno_from_status(uint16_t sct_sc)
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

/* ---- I/O queues (each on its own reactor) ----------------------------------------- */

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

/* The next piece of a read/write: from byte off, at most maxlen bytes, in at
 * most NVL_TCP_HQ_MAX_IOV iovecs, a whole number of blocks. \return the
 * iovec count (len set), or -1 if not even one block fits. */
static int
io_chunk(const struct nvl_bdev_io *io, uint64_t off, uint32_t maxlen, uint8_t lbads,
	 struct iovec *out, uint32_t *len)
{
	uint64_t want = NVL_MIN(io->length - off, (uint64_t)maxlen), got = 0, excess;
	int n = 0;

	for (int i = 0; i < io->iovcnt && got < want && n < NVL_TCP_HQ_MAX_IOV; i++) {
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

#define IO_CHUNK(io) ((io)->priv[3])

static void io_cpl(void *arg, const struct nvl_nvme_cpl *cpl);

/* Send the next command of io (I/O larger than the controller's limit goes in
 * pieces, one at a time). \return 0, -EAGAIN (try later), or -errno (fail it). */
static int
io_send(struct nvme_ioq *q, struct nvl_bdev_io *io)
{
	struct nvme_bdev *nb = container_of(io->bdev, struct nvme_bdev, bdev);
	struct nvme_ctrlr *c = q->ctrlr;
	struct nvl_nvme_cmd cmd = { 0 };
	struct iovec iov[NVL_TCP_HQ_MAX_IOV];
	uint32_t len = 0;
	uint8_t dir = 0;
	int n = 0, rc;

	if (q->hq == NULL || !q->ready)
		return -EAGAIN;
	cmd.nsid = nb->nsid;
	switch (io->type) {
	case NVL_BDEV_IO_READ:
	case NVL_BDEV_IO_WRITE: {
		uint64_t off = IO_DONE(io);
		uint64_t slba = (io->offset + off) >> nb->lbads;

		n = io_chunk(io, off, c->max_xfer, nb->lbads, iov, &len);
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
		dir = io->type == NVL_BDEV_IO_READ ? 2 : 1;
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
		dir = 1;
		break;
	}
	default:
		return -ENOTSUP;
	}
	rc = nvl_tcp_hq_submit(q->hq, &cmd, iov, n, len, dir, io_cpl, io);
	if (rc == -ENOTCONN)
		return -EAGAIN;
	if (rc < 0)
		return rc;
	q->inflight++;
	q->submitted++;
	return 0;
}

static void
io_cpl(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct nvl_bdev_io *io = arg;
	struct nvme_ioq *q = io_queue(io);
	struct nvme_bdev *nb = container_of(io->bdev, struct nvme_bdev, bdev);
	uint16_t st = (cpl->status >> 1) & 0x7ff;
	uint64_t total;

	q->inflight--;
	q->completed++;
	q->last_active_ns = nvl_now_ns();
	if (st != 0 && q->hq && nvl_tcp_hq_state(q->hq) == NVL_TCP_HQ_FAILED) {
		/* the connection went, not the command: send it again once reconnected
		 * (or fail it, if the controller is being given up) */
		q->retried++;
		pend_push(q, io, true);
		return;
	}
	if (st != 0) {
		q->failed++;
		nvl_bdev_io_complete(io, errno_from_status(st));
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

/* Send what waits, while the connection takes it. */
static int
ioq_drain(struct nvme_ioq *q)
{
	struct nvl_bdev_io *io;
	int n = 0;

	if (q->failing) {
		if (q->pend_head) {
			ioq_fail_pending(q, q->fail_errno);
			return 1;
		}
		return 0;
	}
	while ((io = pend_pop(q)) != NULL) {
		int rc = io_send(q, io);

		if (rc == -EAGAIN) {
			pend_push(q, io, true);
			break;
		}
		if (rc < 0) {
			q->failed++;
			nvl_bdev_io_complete(io, rc);
		}
		n++;
	}
	return n;
}

struct ioq_event {
	struct nvme_ctrlr *ctrlr;
	unsigned idx;
	uint32_t gen;
	enum { EV_READY, EV_FAILED, EV_DOWN, EV_GONE } type;
	char why[160];
};

static void ctrlr_ioq_event(void *arg);

static void
ioq_tell(struct nvme_ioq *q, int type, const char *why)
{
	struct ioq_event *e = calloc(1, sizeof(*e));

	if (e == NULL)
		abort(); /* tiny control-path allocation; nothing sane to do */
	e->ctrlr = q->ctrlr;
	e->idx = q->idx;
	e->gen = q->gen;
	e->type = type;
	if (why)
		nvl_strlcpy(e->why, why, sizeof(e->why));
	if (nvl_reactor_msg(nvl_reactor_get(0), ctrlr_ioq_event, e) < 0)
		free(e);
}

static void ioq_fd_event(void *arg, uint32_t events);

static void
ioq_update_events(struct nvme_ioq *q)
{
	uint32_t want = EPOLLIN | (nvl_tcp_hq_want_write(q->hq) ? EPOLLOUT : 0);

	if (q->fdh && want != q->fd_events && nvl_fd_mod(q->fdh, want) == 0)
		q->fd_events = want;
}

static int
ioq_service(struct nvme_ioq *q, bool force)
{
	int work = 0, n;

	if (q->hq == NULL || q->fail_reported)
		return ioq_drain(q); /* waits (or fails, when failing) without a connection */
	if (!force && q->ready && q->inflight == 0 && q->pend_head == NULL &&
	    nvl_now_ns() - q->last_active_ns > nvl_reactor_get_spin_us() * 1000)
		return 0; /* idle: the epoll wake-up brings us back */
	n = nvl_tcp_hq_process(q->hq);
	if (n > 0) {
		work += n;
		q->last_active_ns = nvl_now_ns();
	}
	if (!q->ready && nvl_tcp_hq_state(q->hq) == NVL_TCP_HQ_READY) {
		q->ready = true;
		q->last_active_ns = nvl_now_ns();
		ioq_tell(q, EV_READY, NULL);
	}
	if (nvl_tcp_hq_state(q->hq) == NVL_TCP_HQ_FAILED) {
		char why[160];

		snprintf(why, sizeof(why), "I/O queue %u: %s", q->qid, nvl_tcp_hq_error(q->hq));
		q->ready = false;
		q->fail_reported = true;
		nvl_fd_del(q->fdh);
		q->fdh = NULL;
		ioq_tell(q, EV_FAILED, why);
		return 1;
	}
	work += ioq_drain(q);
	if (work)
		(void)nvl_tcp_hq_process(q->hq); /* send what drain queued */
	ioq_update_events(q);
	return work;
}

static int
ioq_poll(void *arg)
{
	return ioq_service(arg, false);
}

static void
ioq_fd_event(void *arg, uint32_t events)
{
	(void)events;
	ioq_service(arg, true);
}

/* ioq reactor: drop the connection (its I/O stays pending). */
static void
ioq_drop_conn(struct nvme_ioq *q)
{
	if (q->hq == NULL)
		return;
	nvl_fd_del(q->fdh);
	q->fdh = NULL;
	/* outstanding commands come back through io_cpl as "connection lost" */
	nvl_tcp_hq_fail(q->hq, "disconnecting", NVL_NVME_SC_ABORTED_SQ_DELETION);
	nvl_tcp_hq_destroy(q->hq);
	q->hq = NULL;
	q->ready = false;
	q->fail_reported = false;
	q->inflight = 0;
}

struct ioq_cmd {
	struct nvme_ioq *q;
	uint32_t gen;
	enum { CMD_CONNECT, CMD_DISCONNECT, CMD_FAILING, CMD_DESTROY } type;
	struct nvl_tcp_hq_opts opts;
	bool failing;
	int fail_errno;
};

static void
ioq_cmd_run(void *arg)
{
	struct ioq_cmd *m = arg;
	struct nvme_ioq *q = m->q;
	int rc;

	switch (m->type) {
	case CMD_CONNECT:
		ioq_drop_conn(q);
		q->gen = m->gen;
		rc = nvl_tcp_hq_create(&m->opts, &q->hq);
		if (rc < 0) {
			q->hq = NULL;
			ioq_tell(q, EV_FAILED, "cannot open a socket");
			break;
		}
		q->fd_events = EPOLLIN | EPOLLOUT;
		q->fdh = nvl_fd_add(nvl_tcp_hq_fd(q->hq), q->fd_events, ioq_fd_event, q);
		q->last_active_ns = nvl_now_ns();
		break;
	case CMD_DISCONNECT:
		ioq_drop_conn(q);
		q->gen = m->gen;
		ioq_tell(q, EV_DOWN, NULL);
		break;
	case CMD_FAILING:
		q->failing = m->failing;
		q->fail_errno = m->fail_errno;
		if (q->failing)
			ioq_fail_pending(q, q->fail_errno);
		break;
	case CMD_DESTROY:
		ioq_drop_conn(q);
		ioq_fail_pending(q, -ENXIO);
		nvl_poller_destroy(q->poller);
		q->poller = NULL;
		q->gen = m->gen;
		ioq_tell(q, EV_GONE, NULL);
		free(q);
		break;
	}
	free(m);
}

static void
ioq_cmd_send(struct nvme_ctrlr *c, unsigned idx, int type, bool failing, int err)
{
	struct ioq_cmd *m = calloc(1, sizeof(*m));
	struct nvme_ioq *q = c->ioq[idx];

	if (m == NULL)
		abort(); /* tiny control-path allocation; nothing sane to do */
	m->q = q;
	m->gen = c->gen;
	m->type = type;
	m->failing = failing;
	m->fail_errno = err;
	if (type == CMD_CONNECT) {
		m->opts = c->base;
		m->opts.qid = q->qid;
		m->opts.entries = (uint16_t)NVL_MIN(c->io_queue_size, (uint32_t)c->mqes);
		m->opts.cntlid = c->cntlid;
		m->opts.kato_ms = 0;
		m->opts.icd_max = c->icd_max;
		m->opts.max_data = c->max_xfer;
		m->opts.disable_sqflow = true;
	}
	if (nvl_reactor_msg(q->reactor, ioq_cmd_run, m) < 0) {
		NVL_ERRLOG("%s: cannot reach the reactor of I/O queue %u", c->name, q->qid);
		free(m);
	}
}

static void
ioq_start_on_reactor(void *arg)
{
	struct nvme_ioq *q = arg;

	q->poller = nvl_poller_create(ioq_poll, q, "bdev-nvme-ioq");
	if (q->poller == NULL)
		NVL_ERRLOG("I/O queue %u: cannot start its poller", q->qid);
}

/* ---- bdev ops ------------------------------------------------------------------------- */

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
	if (q->failing)
		return q->fail_errno;
	if (q->pend_head == NULL) {
		rc = io_send(q, io);
		if (rc == 0) {
			q->last_active_ns = nvl_now_ns();
			return 0;
		}
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
		json_pack("{s:s, s:i, s:s, s:{s:s, s:s, s:s, s:s, s:s}}", "ctrlr_name", c->name,
			  "nsid", (int)nb->nsid, "state", g_state_names[c->state], "trid",
			  "trtype", "TCP", "adrfam", c->adrfam, "traddr", c->traddr, "trsvcid",
			  c->trsvcid, "subnqn", c->subnqn));
}

static json_t *ctrlr_config(struct nvme_ctrlr *c);

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
			return c->bdevs[i] == nb ? ctrlr_config(c) : NULL;
	return NULL;
}

static const struct nvl_bdev_ops g_nvme_bdev_ops = {
	.name = "nvme_tcp",
	.submit = nvme_bdev_submit,
	.destroy = nvme_bdev_destroy,
	.dump_info = nvme_bdev_dump_info,
	.write_config = nvme_bdev_write_config,
};

/* ---- controller (reactor 0) ---------------------------------------------------------- */

static void ctrlr_free(struct nvme_ctrlr *c);
static void admin_drop(struct nvme_ctrlr *c);

static const char *
step_name(enum init_step s)
{
	static const char *const n[] = { "connect", "Property Get CAP", "Property Set CC",
					 "Property Get CSTS", "Identify Controller",
					 "Set Features (Number of Queues)", "Identify (namespace list)",
					 "Identify Namespace", "I/O queue connect", "done" };

	return n[s];
}

static int
admin_cmd(struct nvme_ctrlr *c, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len, uint8_t dir,
	  nvl_tcp_hq_cb cb)
{
	struct iovec iov = { buf, len };
	int rc;

	rc = nvl_tcp_hq_submit(c->admin, cmd, &iov, len ? 1 : 0, len, dir, cb, c);
	if (rc == 0) {
		c->admin_busy = true;
		c->admin_deadline_ns = nvl_now_ns() + NVME_ADMIN_TIMEOUT_NS;
	}
	return rc;
}

static int
property(struct nvme_ctrlr *c, bool set, uint32_t ofst, bool eight, uint64_t v, nvl_tcp_hq_cb cb)
{
	struct nvl_nvmf_property_cmd p = { 0 };

	p.opc = NVL_NVME_ADM_FABRICS;
	p.fctype = set ? NVL_NVMF_FCTYPE_PROPERTY_SET : NVL_NVMF_FCTYPE_PROPERTY_GET;
	p.attrib = eight ? 1 : 0;
	p.ofst = ofst;
	p.value = v;
	return admin_cmd(c, (struct nvl_nvme_cmd *)&p, NULL, 0, 0, cb);
}

static int
identify(struct nvme_ctrlr *c, uint8_t cns, uint32_t nsid, nvl_tcp_hq_cb cb)
{
	struct nvl_nvme_cmd cmd = { 0 };

	cmd.opc = NVL_NVME_ADM_IDENTIFY;
	cmd.nsid = nsid;
	cmd.cdw10 = cns;
	memset(c->buf, 0, 4096);
	return admin_cmd(c, &cmd, c->buf, 4096, 2, cb);
}

static void
attach_finish_rpc(struct nvme_ctrlr *c, int rc, const char *why)
{
	struct nvl_rpc_request *req = c->rpc;
	json_t *names;

	c->rpc = NULL;
	if (req == NULL)
		return;
	if (rc < 0) {
		nvl_rpc_error(req, rc, "%s: %s", c->name, why);
		return;
	}
	names = json_array();
	for (unsigned i = 0; i < c->nbdevs; i++)
		if (c->bdevs[i])
			json_array_append_new(names, json_string(c->bdevs[i]->bdev.name));
	nvl_rpc_result(req, names);
}

/* Tell every I/O queue something (connect, disconnect, destroy...). */
static void
ioqs_send(struct nvme_ctrlr *c, int type, bool failing, int err)
{
	c->ioq_acks = 0;
	c->ioq_ready = 0;
	for (unsigned i = 0; i < c->nioq; i++)
		ioq_cmd_send(c, i, type, failing, err);
}

static void
ctrlr_give_up(struct nvme_ctrlr *c)
{
	NVL_ERRLOG("%s: no controller at %s:%s for %lld s: giving up (its I/O fails until it is "
		   "detached)", c->name, c->traddr, c->trsvcid,
		   (long long)c->ctrlr_loss_timeout_sec);
	admin_drop(c);
	c->state = CS_FAILED;
	c->gen++;
	ioqs_send(c, CMD_DISCONNECT, false, 0);
	for (unsigned i = 0; i < c->nioq; i++)
		ioq_cmd_send(c, i, CMD_FAILING, true, -ENXIO);
}

/* A connection failed while attaching, working or reconnecting. */
static void
ctrlr_conn_failed(struct nvme_ctrlr *c, const char *why)
{
	nvl_strlcpy(c->last_error, why, sizeof(c->last_error));
	switch (c->state) {
	case CS_ATTACHING:
		NVL_ERRLOG("%s: cannot attach %s:%s %s: %s", c->name, c->traddr, c->trsvcid,
			   c->subnqn, why);
		attach_finish_rpc(c, -ECONNREFUSED, why);
		admin_drop(c);
		c->state = CS_DETACHING;
		c->gen++;
		ioqs_send(c, CMD_DESTROY, false, 0);
		if (c->nioq == 0)
			ctrlr_free(c);
		return;
	case CS_READY:
		NVL_WARNLOG("%s: connection to %s:%s lost: %s; reconnecting", c->name, c->traddr,
			    c->trsvcid, why);
		c->lost_ns = nvl_now_ns();
		c->resets++;
		c->attempts = 0;
		break;
	case CS_RECONNECTING:
		NVL_DEBUGLOG(bdev_nvme, "%s: reconnect attempt %u failed: %s", c->name, c->attempts,
			     why);
		break;
	default:
		return;
	}
	admin_drop(c);
	c->state = CS_RESETTING;
	c->gen++;
	ioqs_send(c, CMD_DISCONNECT, false, 0);
}

static void
admin_drop(struct nvme_ctrlr *c)
{
	nvl_fd_del(c->admin_fdh);
	c->admin_fdh = NULL;
	/* outstanding admin commands are forgotten, not completed */
	nvl_tcp_hq_destroy(c->admin);
	c->admin = NULL;
	c->admin_busy = false;
	c->ka_busy = false;
}

static void
init_failed(struct nvme_ctrlr *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
init_failed(struct nvme_ctrlr *c, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	ctrlr_conn_failed(c, why);
}

static int
bdevs_create(struct nvme_ctrlr *c)
{
	for (unsigned i = 0; i < c->nfound && c->nbdevs < NVME_MAX_NS; i++) {
		struct nvme_bdev *nb = calloc(1, sizeof(*nb));
		static const uint8_t zero[16];
		int rc;

		if (nb == NULL)
			return -ENOMEM;
		nb->ctrlr = c;
		nb->nsid = c->found[i].nsid;
		nb->lbads = (uint8_t)__builtin_ctz(c->found[i].bs);
		snprintf(nb->bdev.name, sizeof(nb->bdev.name), "%sn%u", c->name, nb->nsid);
		nb->bdev.product_name = "NVMe/TCP disk";
		nb->bdev.ops = &g_nvme_bdev_ops;
		nb->bdev.block_size = c->found[i].bs;
		nb->bdev.num_blocks = c->found[i].nsze;
		nb->bdev.read_only = c->found[i].ro;
		nb->bdev.write_cache = true;
		nb->bdev.io_types = (1u << NVL_BDEV_IO_READ) | (1u << NVL_BDEV_IO_WRITE) |
				    (1u << NVL_BDEV_IO_FLUSH);
		if (((const struct nvl_nvme_id_ctrl *)c->buf)->oncs & NVL_NVME_ONCS_WRITE_ZEROES)
			nb->bdev.io_types |= 1u << NVL_BDEV_IO_WRITE_ZEROES;
		if (((const struct nvl_nvme_id_ctrl *)c->buf)->oncs & NVL_NVME_ONCS_DSM)
			nb->bdev.io_types |= 1u << NVL_BDEV_IO_UNMAP;
		if (memcmp(c->found[i].nguid, zero, 16) != 0)
			memcpy(nb->bdev.uuid, c->found[i].nguid, 16);
		rc = nvl_bdev_register(&nb->bdev);
		if (rc < 0) {
			NVL_ERRLOG("%s: cannot register bdev %s: %s", c->name, nb->bdev.name,
				   strerror(-rc));
			free(nb);
			return rc;
		}
		c->bdevs[c->nbdevs++] = nb;
	}
	return 0;
}

static void
init_done(struct nvme_ctrlr *c)
{
	uint64_t now = nvl_now_ns();

	c->step = ST_DONE;
	c->next_ka_ns = now + (uint64_t)NVL_MAX(c->kato_ms / 3, 100u) * 1000000;
	if (c->state == CS_ATTACHING) {
		int rc = bdevs_create(c);

		c->state = CS_READY;
		NVL_NOTICELOG("%s: attached %s at %s:%s (cntlid %u, %u I/O queues, %u namespaces)",
			      c->name, c->subnqn, c->traddr, c->trsvcid, c->cntlid, c->nioq,
			      c->nbdevs);
		attach_finish_rpc(c, rc, rc < 0 ? "cannot register the bdevs" : NULL);
		return;
	}
	/* reconnected: the namespaces must still be what the bdevs describe */
	for (unsigned i = 0; i < c->nbdevs; i++) {
		struct nvme_bdev *nb = c->bdevs[i];
		bool same = false;

		if (nb == NULL)
			continue;
		for (unsigned k = 0; k < c->nfound; k++)
			if (c->found[k].nsid == nb->nsid && c->found[k].bs == nb->bdev.block_size &&
			    c->found[k].nsze >= nb->bdev.num_blocks)
				same = true;
		if (!same)
			NVL_WARNLOG("%s: namespace %u changed or vanished across the reconnect; "
				    "its I/O will fail", c->name, nb->nsid);
	}
	NVL_NOTICELOG("%s: reconnected to %s:%s after %.1f s (%u attempt%s)", c->name, c->traddr,
		      c->trsvcid, (double)(now - c->lost_ns) / 1e9, c->attempts,
		      c->attempts == 1 ? "" : "s");
	c->state = CS_READY;
	c->reconnects++;
	c->lost_ns = 0;
	c->attempts = 0;
	c->fast_failed = false;
	for (unsigned i = 0; i < c->nioq; i++)
		ioq_cmd_send(c, i, CMD_FAILING, false, 0);
}

static void step_cb(void *arg, const struct nvl_nvme_cpl *cpl);

/* Issue the command of the current step. */
static void
ctrlr_step(struct nvme_ctrlr *c)
{
	struct nvl_nvme_cmd cmd = { 0 };
	int rc = 0;

	switch (c->step) {
	case ST_ADMIN_CONNECT:
		return; /* the admin poller notices READY */
	case ST_CAP:
		rc = property(c, false, NVL_NVME_REG_CAP, true, 0, step_cb);
		break;
	case ST_CC:
		rc = property(c, true, NVL_NVME_REG_CC, false,
			      NVL_NVME_CC_EN | (6u << 16) | (4u << 20), step_cb);
		break;
	case ST_CSTS:
		rc = property(c, false, NVL_NVME_REG_CSTS, false, 0, step_cb);
		break;
	case ST_ID_CTRL:
		rc = identify(c, NVL_NVME_CNS_CTRLR, 0, step_cb);
		break;
	case ST_NOQ:
		cmd.opc = NVL_NVME_ADM_SET_FEATURES;
		cmd.cdw10 = NVL_NVME_FEAT_NUMBER_OF_QUEUES;
		cmd.cdw11 = (c->nioq - 1) | ((c->nioq - 1) << 16);
		rc = admin_cmd(c, &cmd, NULL, 0, 0, step_cb);
		break;
	case ST_NS_LIST:
		rc = identify(c, NVL_NVME_CNS_ACTIVE_NS_LIST, 0, step_cb);
		break;
	case ST_ID_NS:
		rc = identify(c, NVL_NVME_CNS_NS, c->ns_list[c->ns_idx], step_cb);
		break;
	case ST_IOQ_CONNECT:
		ioqs_send(c, CMD_CONNECT, false, 0);
		return;
	case ST_DONE:
		return;
	}
	if (rc < 0)
		init_failed(c, "%s: cannot submit: %s", step_name(c->step), strerror(-rc));
}

static void
step_cb(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct nvme_ctrlr *c = arg;
	uint16_t st = (cpl->status >> 1) & 0x7ff;
	const struct nvl_nvme_id_ctrl *id = (const void *)c->buf;
	const struct nvl_nvme_id_ns *ns = (const void *)c->buf;

	c->admin_busy = false;
	if (c->state != CS_ATTACHING && c->state != CS_RECONNECTING)
		return;
	if (st != 0) {
		init_failed(c, "%s failed: status 0x%03x", step_name(c->step), st);
		return;
	}
	switch (c->step) {
	case ST_CAP:
		c->cap = (uint64_t)cpl->cdw0 | ((uint64_t)cpl->cdw1 << 32);
		c->mqes = (uint16_t)NVL_MIN((c->cap & 0xffff) + 1, 4096u);
		c->step = ST_CC;
		break;
	case ST_CC:
		c->step = ST_CSTS;
		break;
	case ST_CSTS:
		if (cpl->cdw0 & NVL_NVME_CSTS_CFS) {
			init_failed(c, "controller fatal status");
			return;
		}
		if (!(cpl->cdw0 & NVL_NVME_CSTS_RDY))
			return; /* asked again by the timer */
		c->step = ST_ID_CTRL;
		break;
	case ST_ID_CTRL:
		if (id->cntrltype == NVL_NVME_CNTRLTYPE_DISCOVERY) {
			init_failed(c, "%s is a discovery controller", c->subnqn);
			return;
		}
		c->max_xfer = id->mdts ? (uint32_t)NVL_MIN((uint64_t)NVL_NVME_PAGE_SIZE << id->mdts,
							   (uint64_t)(1u << 20))
				       : 1u << 20;
		c->icd_max = id->ioccsz >= 4 ? id->ioccsz * 16 - 64 : 0;
		c->step = ST_NOQ;
		break;
	case ST_NOQ: {
		uint32_t granted = NVL_MIN(cpl->cdw0 & 0xffff, cpl->cdw0 >> 16) + 1;

		if (granted < c->nioq) {
			init_failed(c, "the controller grants %u I/O queues, %u wanted", granted,
				    c->nioq);
			return;
		}
		c->step = ST_NS_LIST;
		break;
	}
	case ST_NS_LIST: {
		const uint32_t *l = (const void *)c->buf;

		c->nns_list = 0;
		for (unsigned i = 0; i < 1024 && l[i] && c->nns_list < NVME_MAX_NS; i++)
			c->ns_list[c->nns_list++] = l[i];
		c->nfound = 0;
		c->ns_idx = 0;
		c->step = c->nns_list ? ST_ID_NS : ST_IOQ_CONNECT;
		break;
	}
	case ST_ID_NS: {
		uint8_t lbads = ns->lbaf[ns->flbas & 0xf].lbads;

		if (ns->nsze && lbads >= 9 && lbads <= 16) {
			c->found[c->nfound].nsid = c->ns_list[c->ns_idx];
			c->found[c->nfound].nsze = ns->nsze;
			c->found[c->nfound].bs = 1u << lbads;
			c->found[c->nfound].ro = ns->nsattr & 1;
			memcpy(c->found[c->nfound].nguid, ns->nguid, 16);
			c->nfound++;
		}
		if (++c->ns_idx == c->nns_list)
			c->step = ST_IOQ_CONNECT;
		break;
	}
	default:
		return;
	}
	ctrlr_step(c);
}

static void
ctrlr_ioq_event(void *arg)
{
	struct ioq_event *e = arg;
	struct nvme_ctrlr *c = e->ctrlr;

	if (e->type == EV_GONE) {
		if (++c->ioq_acks == c->nioq)
			ctrlr_free(c);
		free(e);
		return;
	}
	if (e->gen != c->gen) {
		free(e);
		return; /* news of an older connection */
	}
	switch (e->type) {
	case EV_READY:
		if (c->step == ST_IOQ_CONNECT && ++c->ioq_ready == c->nioq)
			init_done(c);
		break;
	case EV_FAILED:
		ctrlr_conn_failed(c, e->why);
		break;
	case EV_DOWN:
		if (++c->ioq_acks < c->nioq || c->state != CS_RESETTING)
			break;
		/* every queue let go: schedule the next attempt */
		{
			unsigned mult = 1u << NVL_MIN(c->attempts, 3u);
			uint64_t delay = (uint64_t)NVL_MAX(c->reconnect_delay_sec, 1u) *
					 NVL_MIN(mult, (unsigned)NVME_MAX_BACKOFF) * 1000000000ULL;

			c->next_attempt_ns = nvl_now_ns() + delay;
			c->state = CS_WAIT_RECONNECT;
		}
		break;
	default:
		break;
	}
	free(e);
}

static void admin_fd_event(void *arg, uint32_t events);

static int
admin_start(struct nvme_ctrlr *c)
{
	struct nvl_tcp_hq_opts o = c->base;
	int rc;

	o.qid = 0;
	o.entries = 32;
	o.cntlid = 0xffff;
	o.kato_ms = c->kato_ms;
	o.icd_max = 8192;
	o.max_data = 1u << 20;
	o.disable_sqflow = false;
	rc = nvl_tcp_hq_create(&o, &c->admin);
	if (rc < 0)
		return rc;
	c->admin_fd_events = EPOLLIN | EPOLLOUT;
	c->admin_fdh = nvl_fd_add(nvl_tcp_hq_fd(c->admin), c->admin_fd_events, admin_fd_event, c);
	c->step = ST_ADMIN_CONNECT;
	c->step_deadline_ns = nvl_now_ns() + c->connect_timeout_ns;
	return 0;
}

static int
admin_service(struct nvme_ctrlr *c)
{
	uint32_t want;
	int n;

	if (c->admin == NULL)
		return 0;
	n = nvl_tcp_hq_process(c->admin);
	if (c->admin == NULL)
		return 1; /* a callback dropped it */
	if (nvl_tcp_hq_state(c->admin) == NVL_TCP_HQ_FAILED) {
		char why[300];

		snprintf(why, sizeof(why), "admin queue: %s", nvl_tcp_hq_error(c->admin));
		ctrlr_conn_failed(c, why);
		return 1;
	}
	if (c->step == ST_ADMIN_CONNECT && nvl_tcp_hq_state(c->admin) == NVL_TCP_HQ_READY) {
		c->cntlid = nvl_tcp_hq_cntlid(c->admin);
		c->step = ST_CAP;
		ctrlr_step(c);
		n++;
	}
	if (c->admin && c->admin_fdh) {
		want = EPOLLIN | (nvl_tcp_hq_want_write(c->admin) ? EPOLLOUT : 0);
		if (want != c->admin_fd_events && nvl_fd_mod(c->admin_fdh, want) == 0)
			c->admin_fd_events = want;
	}
	return n > 0;
}

static void
admin_fd_event(void *arg, uint32_t events)
{
	(void)events;
	admin_service(arg);
}

static int
admin_poll(void *arg)
{
	struct nvme_ctrlr *c = arg;

	if (c->admin == NULL || (!c->admin_busy && !c->ka_busy && c->step == ST_DONE))
		return 0;
	return admin_service(c);
}

static void
ka_cb(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct nvme_ctrlr *c = arg;

	c->ka_busy = false;
	if ((cpl->status >> 1) != 0 && c->state == CS_READY)
		ctrlr_conn_failed(c, "Keep Alive failed");
}

static void
ctrlr_tick(void *arg)
{
	struct nvme_ctrlr *c = arg;
	uint64_t now = nvl_now_ns();

	switch (c->state) {
	case CS_ATTACHING:
	case CS_RECONNECTING:
		if (now > c->step_deadline_ns) {
			init_failed(c, "%s timed out", step_name(c->step));
			return;
		}
		if (c->step == ST_CSTS && !c->admin_busy)
			ctrlr_step(c);
		break;
	case CS_READY:
		if (c->ka_busy && now > c->admin_deadline_ns) {
			ctrlr_conn_failed(c, "Keep Alive timed out");
			return;
		}
		if (!c->ka_busy && c->kato_ms && now >= c->next_ka_ns) {
			struct nvl_nvme_cmd cmd = { 0 };
			struct iovec none = { NULL, 0 };

			cmd.opc = NVL_NVME_ADM_KEEP_ALIVE;
			if (nvl_tcp_hq_submit(c->admin, &cmd, &none, 0, 0, 0, ka_cb, c) == 0) {
				c->ka_busy = true;
				c->admin_deadline_ns = now + NVME_ADMIN_TIMEOUT_NS;
			}
			c->next_ka_ns = now + (uint64_t)NVL_MAX(c->kato_ms / 3, 100u) * 1000000;
		}
		break;
	case CS_WAIT_RECONNECT:
		if (now < c->next_attempt_ns)
			break;
		c->attempts++;
		c->state = CS_RECONNECTING;
		if (admin_start(c) < 0) {
			ctrlr_conn_failed(c, "cannot open a socket");
			return;
		}
		break;
	default:
		break;
	}
	if (c->lost_ns && c->state != CS_READY && c->state != CS_FAILED &&
	    c->state != CS_DETACHING) {
		uint64_t out = now - c->lost_ns;

		if (c->fast_io_fail_timeout_sec && !c->fast_failed &&
		    out >= (uint64_t)c->fast_io_fail_timeout_sec * 1000000000ULL) {
			NVL_WARNLOG("%s: down for %u s: failing its I/O until it is back", c->name,
				    c->fast_io_fail_timeout_sec);
			c->fast_failed = true;
			for (unsigned i = 0; i < c->nioq; i++)
				ioq_cmd_send(c, i, CMD_FAILING, true, -EIO);
		}
		if (c->ctrlr_loss_timeout_sec >= 0 &&
		    out >= (uint64_t)c->ctrlr_loss_timeout_sec * 1000000000ULL)
			ctrlr_give_up(c);
	}
}

static void
ctrlr_free(struct nvme_ctrlr *c)
{
	struct nvl_rpc_request *req = c->rpc;

	c->rpc = NULL;
	nvl_timer_destroy(c->timer);
	nvl_poller_destroy(c->admin_poller);
	admin_drop(c);
	for (unsigned i = 0; i < c->nbdevs; i++)
		if (c->bdevs[i])
			c->bdevs[i]->ctrlr = NULL;
	TAILQ_REMOVE(&g_ctrlrs, c, link);
	NVL_DEBUGLOG(bdev_nvme, "%s: freed", c->name);
	free(c->buf);
	free(c);
	if (req)
		nvl_rpc_result_bool(req, true);
}

/* ---- RPC ------------------------------------------------------------------------------ */

static void
default_host(char *nqn, size_t len, uint8_t id[16])
{
	char mid[64] = "";
	int fd = open("/etc/machine-id", O_RDONLY | O_CLOEXEC);
	uint32_t h[4];

	if (fd >= 0) {
		ssize_t n = read(fd, mid, sizeof(mid) - 1);

		mid[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	/* one stable identity per machine, like libnvlend's */
	h[0] = nvl_crc32c(mid, strlen(mid));
	h[1] = nvl_crc32c_update(h[0], "nvlend-host", 11);
	h[2] = nvl_crc32c_update(h[1], mid, strlen(mid));
	h[3] = nvl_crc32c_update(h[2], "id", 2);
	memcpy(id, h, 16);
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
	snprintf(nqn, len, "nqn.2014-08.org.nvmexpress:uuid:");
	nvl_uuid_fmt(id, nqn + strlen(nqn));
}

static json_t *
ctrlr_config(struct nvme_ctrlr *c)
{
	char hostid[40];

	nvl_uuid_fmt(c->hostid, hostid);
	return json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:i, s:i, s:I, "
			 "s:i, s:i, s:i}}",
			 "method", "bdev_nvme_attach_controller", "params", "name", c->name,
			 "trtype", "tcp", "adrfam", c->adrfam, "traddr", c->traddr, "trsvcid",
			 c->trsvcid, "subnqn", c->subnqn, "hostnqn", c->hostnqn, "hostid", hostid,
			 "hdgst", c->hdgst, "ddgst", c->ddgst, "num_io_queues", (int)c->num_io_queues,
			 "io_queue_size", (int)c->io_queue_size, "ctrlr_loss_timeout_sec",
			 (json_int_t)c->ctrlr_loss_timeout_sec, "reconnect_delay_sec",
			 (int)c->reconnect_delay_sec, "fast_io_fail_timeout_sec",
			 (int)c->fast_io_fail_timeout_sec, "keep_alive_timeout_ms", (int)c->kato_ms);
}

/* Shape check only: the controller judges the NQN itself. */
static bool
nqn_ok(const char *nqn)
{
	size_t n = strlen(nqn);

	if (n < 5 || n > 223 || strncmp(nqn, "nqn.", 4) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)nqn[i] < 0x20 || nqn[i] == 0x7f)
			return false;
	return true;
}

static struct nvme_ctrlr *
ctrlr_find(const char *name)
{
	struct nvme_ctrlr *c;

	TAILQ_FOREACH(c, &g_ctrlrs, link)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

struct rpc_attach {
	const char *name, *trtype, *adrfam, *traddr, *trsvcid, *subnqn, *hostnqn, *hostid;
	const char *hostaddr, *hostsvcid, *multipath, *psk;
	bool hdgst, ddgst, prchk_reftag, prchk_guard;
	uint32_t num_io_queues, io_queue_size, reconnect_delay_sec, fast_io_fail_timeout_sec;
	uint32_t keep_alive_timeout_ms;
	int64_t ctrlr_loss_timeout_sec;
	uint64_t fabrics_connect_timeout_us;
	bool have_loss;
};

static const struct nvl_rpc_param attach_params[] = {
	NVL_RPC_PARAM(struct rpc_attach, name, NVL_RPC_T_STR, true,
		      "controller name; its bdevs are NAMEn<nsid>"),
	NVL_RPC_PARAM(struct rpc_attach, trtype, NVL_RPC_T_STR, true, "\"tcp\" (only)"),
	NVL_RPC_PARAM(struct rpc_attach, traddr, NVL_RPC_T_STR, true, "target IP address"),
	NVL_RPC_PARAM(struct rpc_attach, adrfam, NVL_RPC_T_STR, false,
		      "\"IPv4\" or \"IPv6\" (default: from traddr)"),
	NVL_RPC_PARAM(struct rpc_attach, trsvcid, NVL_RPC_T_STR, false, "port (default 4420)"),
	NVL_RPC_PARAM(struct rpc_attach, subnqn, NVL_RPC_T_STR, true, "subsystem NQN"),
	NVL_RPC_PARAM(struct rpc_attach, hostnqn, NVL_RPC_T_STR, false,
		      "host NQN (default: nqn.2014-08.org.nvmexpress:uuid:<machine uuid>)"),
	NVL_RPC_PARAM(struct rpc_attach, hostid, NVL_RPC_T_STR, false,
		      "host identifier UUID (default: from the host NQN or the machine)"),
	NVL_RPC_PARAM(struct rpc_attach, hostaddr, NVL_RPC_T_STR, false,
		      "SPDK compatibility; not supported (refused if set)"),
	NVL_RPC_PARAM(struct rpc_attach, hostsvcid, NVL_RPC_T_STR, false,
		      "SPDK compatibility; not supported (refused if set)"),
	NVL_RPC_PARAM(struct rpc_attach, multipath, NVL_RPC_T_STR, false,
		      "SPDK compatibility; only \"disable\" (one path)"),
	NVL_RPC_PARAM(struct rpc_attach, psk, NVL_RPC_T_STR, false,
		      "TLS: not supported (refused if set)"),
	NVL_RPC_PARAM(struct rpc_attach, hdgst, NVL_RPC_T_BOOL, false, "header digests"),
	NVL_RPC_PARAM(struct rpc_attach, ddgst, NVL_RPC_T_BOOL, false, "data digests"),
	NVL_RPC_PARAM(struct rpc_attach, prchk_reftag, NVL_RPC_T_BOOL, false,
		      "SPDK compatibility; must be false"),
	NVL_RPC_PARAM(struct rpc_attach, prchk_guard, NVL_RPC_T_BOOL, false,
		      "SPDK compatibility; must be false"),
	NVL_RPC_PARAM(struct rpc_attach, num_io_queues, NVL_RPC_T_U32, false,
		      "I/O queue pairs (default and minimum: one per reactor; max 64)"),
	NVL_RPC_PARAM(struct rpc_attach, io_queue_size, NVL_RPC_T_U32, false,
		      "entries per I/O queue (default 128, capped by the controller's MQES)"),
	NVL_RPC_PARAM(struct rpc_attach, ctrlr_loss_timeout_sec, NVL_RPC_T_I64, false,
		      "give the controller up this long after losing it (-1: never, default; "
		      "0: at once)"),
	NVL_RPC_PARAM(struct rpc_attach, reconnect_delay_sec, NVL_RPC_T_U32, false,
		      "first delay between reconnect attempts, doubled after each failure up to "
		      "8x (default 1)"),
	NVL_RPC_PARAM(struct rpc_attach, fast_io_fail_timeout_sec, NVL_RPC_T_U32, false,
		      "fail I/O this long after losing the controller instead of queueing it "
		      "(0: queue until the controller is back or given up; default 0)"),
	NVL_RPC_PARAM(struct rpc_attach, keep_alive_timeout_ms, NVL_RPC_T_U32, false,
		      "keep-alive timeout asked of the controller (default 10000)"),
	NVL_RPC_PARAM(struct rpc_attach, fabrics_connect_timeout_us, NVL_RPC_T_U64, false,
		      "time allowed to connect and initialize (default 10 s)"),
};

static void
rpc_bdev_nvme_attach_controller(struct nvl_rpc_request *req, struct rpc_attach *a)
{
	json_t *params = nvl_rpc_params(req);
	struct nvme_ctrlr *c;
	unsigned nr = nvl_reactor_count() ? nvl_reactor_count() : 1;
	int rc;

	if (strcasecmp(a->trtype, "tcp") != 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "trtype %s: only tcp is supported",
			      a->trtype);
		return;
	}
	if (a->hostaddr || a->hostsvcid || a->psk || a->prchk_guard || a->prchk_reftag ||
	    (a->multipath && strcmp(a->multipath, "disable") != 0)) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "hostaddr, hostsvcid, psk, protection checks and multipath are not "
			      "supported");
		return;
	}
	if (a->name[0] == '\0' || strlen(a->name) >= sizeof(c->name) || strchr(a->name, '/')) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "name: 1..%zu characters, no '/'",
			      sizeof(c->name) - 1);
		return;
	}
	if (ctrlr_find(a->name)) {
		nvl_rpc_error(req, -EEXIST, "controller %s already exists", a->name);
		return;
	}
	if (!nqn_ok(a->subnqn) || (a->hostnqn && !nqn_ok(a->hostnqn))) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "malformed NQN");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->buf = aligned_alloc(4096, 4096)) == NULL) {
		free(c);
		nvl_rpc_error(req, NVL_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	nvl_strlcpy(c->name, a->name, sizeof(c->name));
	nvl_strlcpy(c->traddr, a->traddr, sizeof(c->traddr));
	nvl_strlcpy(c->trsvcid, a->trsvcid ? a->trsvcid : "4420", sizeof(c->trsvcid));
	nvl_strlcpy(c->adrfam, a->adrfam ? a->adrfam : strchr(a->traddr, ':') ? "IPv6" : "IPv4",
		    sizeof(c->adrfam));
	nvl_strlcpy(c->subnqn, a->subnqn, sizeof(c->subnqn));
	if (a->hostnqn) {
		nvl_strlcpy(c->hostnqn, a->hostnqn, sizeof(c->hostnqn));
		if (strncmp(a->hostnqn, "nqn.2014-08.org.nvmexpress:uuid:", 32) == 0)
			nvl_uuid_parse(a->hostnqn + 32, c->hostid);
		else
			for (int i = 0; i < 4; i++) {
				uint32_t h = nvl_crc32c_update((uint32_t)i, a->hostnqn,
							       strlen(a->hostnqn));

				memcpy(c->hostid + 4 * i, &h, 4);
			}
	} else {
		default_host(c->hostnqn, sizeof(c->hostnqn), c->hostid);
	}
	if (a->hostid && nvl_uuid_parse(a->hostid, c->hostid) < 0) {
		free(c->buf);
		free(c);
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "hostid: not a UUID");
		return;
	}
	c->hdgst = a->hdgst;
	c->ddgst = a->ddgst;
	c->num_io_queues = a->num_io_queues ? a->num_io_queues : nr;
	c->io_queue_size = a->io_queue_size ? a->io_queue_size : 128;
	c->kato_ms = json_object_get(params, "keep_alive_timeout_ms") ? a->keep_alive_timeout_ms
								      : 10000;
	c->ctrlr_loss_timeout_sec = json_object_get(params, "ctrlr_loss_timeout_sec")
					    ? a->ctrlr_loss_timeout_sec
					    : -1;
	c->reconnect_delay_sec = json_object_get(params, "reconnect_delay_sec")
					 ? a->reconnect_delay_sec
					 : 1;
	c->fast_io_fail_timeout_sec = a->fast_io_fail_timeout_sec;
	c->connect_timeout_ns = a->fabrics_connect_timeout_us ? a->fabrics_connect_timeout_us * 1000
							      : NVME_ADMIN_TIMEOUT_NS;
	if (c->io_queue_size < 2 || c->io_queue_size > 4096 || c->ctrlr_loss_timeout_sec < -1 ||
	    (c->ctrlr_loss_timeout_sec >= 0 && c->fast_io_fail_timeout_sec &&
	     c->fast_io_fail_timeout_sec > c->ctrlr_loss_timeout_sec)) {
		free(c->buf);
		free(c);
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "io_queue_size 2..4096; ctrlr_loss_timeout_sec >= -1; "
			      "fast_io_fail_timeout_sec <= ctrlr_loss_timeout_sec");
		return;
	}
	c->nioq = NVL_MIN(NVL_MAX(c->num_io_queues, nr), (unsigned)NVME_MAX_IOQ);
	rc = nvl_tcp_hq_resolve(c->traddr, c->trsvcid, true, &c->base);
	if (rc < 0) {
		free(c->buf);
		free(c);
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "traddr/trsvcid: not a numeric address "
							   "and port");
		return;
	}
	c->base.subnqn = c->subnqn;
	c->base.hostnqn = c->hostnqn;
	c->base.hostid = c->hostid;
	c->base.hdgst = c->hdgst;
	c->base.ddgst = c->ddgst;
	for (unsigned i = 0; i < c->nioq; i++) {
		struct nvme_ioq *q = calloc(1, sizeof(*q));
		unsigned r = i % nr;

		if (q == NULL)
			abort(); /* small control-path allocation */
		q->ctrlr = c;
		q->idx = i;
		q->qid = (uint16_t)(i + 1);
		q->reactor = nvl_reactor_get(r);
		c->ioq[i] = q;
		c->by_reactor[r][c->nby_reactor[r]++] = q;
		nvl_reactor_msg(q->reactor, ioq_start_on_reactor, q);
	}
	TAILQ_INSERT_TAIL(&g_ctrlrs, c, link);
	c->state = CS_ATTACHING;
	c->gen = 1;
	c->rpc = req;
	c->admin_poller = nvl_poller_create(admin_poll, c, "bdev-nvme-admin");
	c->timer = nvl_timer_create(ctrlr_tick, c, 100000, 100000);
	rc = admin_start(c);
	if (rc < 0 || c->admin_poller == NULL || c->timer == NULL)
		ctrlr_conn_failed(c, "cannot open a socket");
}
NVL_RPC_REGISTER("bdev_nvme_attach_controller", rpc_bdev_nvme_attach_controller,
		 struct rpc_attach, attach_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Attach a remote NVMe/TCP controller: one bdev NAMEn<nsid> per active "
		 "namespace, several I/O queues, reconnect with backoff. Returns the bdev names.")

struct rpc_name {
	const char *name;
};

static const struct nvl_rpc_param detach_params[] = {
	NVL_RPC_PARAM(struct rpc_name, name, NVL_RPC_T_STR, true, "controller name"),
};

static void
ctrlr_detach(struct nvme_ctrlr *c, struct nvl_rpc_request *req)
{
	for (unsigned i = 0; i < c->nbdevs; i++) {
		if (c->bdevs[i]) {
			struct nvme_bdev *nb = c->bdevs[i];

			nb->ctrlr = NULL;
			c->bdevs[i] = NULL;
			nvl_bdev_unregister(&nb->bdev);
		}
	}
	c->rpc = req;
	admin_drop(c);
	c->state = CS_DETACHING;
	c->gen++;
	ioqs_send(c, CMD_DESTROY, false, 0);
	if (c->nioq == 0)
		ctrlr_free(c);
}

static void
rpc_bdev_nvme_detach_controller(struct nvl_rpc_request *req, struct rpc_name *a)
{
	struct nvme_ctrlr *c = ctrlr_find(a->name);

	if (c == NULL) {
		nvl_rpc_error(req, -ENOENT, "no controller %s", a->name);
		return;
	}
	if (c->state == CS_ATTACHING || c->state == CS_DETACHING) {
		nvl_rpc_error(req, -EBUSY, "controller %s is %s", a->name, g_state_names[c->state]);
		return;
	}
	for (unsigned i = 0; i < c->nbdevs; i++) {
		if (c->bdevs[i] && c->bdevs[i]->bdev.open_count > 0) {
			nvl_rpc_error(req, -EBUSY, "bdev %s is in use by %s", c->bdevs[i]->bdev.name,
				      c->bdevs[i]->bdev.claimed_by);
			return;
		}
	}
	ctrlr_detach(c, req);
}
NVL_RPC_REGISTER("bdev_nvme_detach_controller", rpc_bdev_nvme_detach_controller,
		 struct rpc_name, detach_params, NVL_RPC_RUNTIME,
		 "Detach an NVMe/TCP controller and delete its bdevs (refused while one is open).")

struct rpc_get {
	const char *name;
};

static const struct nvl_rpc_param get_params[] = {
	NVL_RPC_PARAM(struct rpc_get, name, NVL_RPC_T_STR, false, "only this controller"),
};

static void
rpc_bdev_nvme_get_controllers(struct nvl_rpc_request *req, struct rpc_get *a)
{
	json_t *arr = json_array();
	struct nvme_ctrlr *c;

	TAILQ_FOREACH(c, &g_ctrlrs, link) {
		json_t *bd, *o;

		if (a->name && strcmp(a->name, c->name) != 0)
			continue;
		bd = json_array();
		for (unsigned i = 0; i < c->nbdevs; i++)
			if (c->bdevs[i])
				json_array_append_new(bd, json_string(c->bdevs[i]->bdev.name));
		o = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:i, s:i, s:o, s:I, s:I, "
			      "s:i, s:b, s:b}",
			      "name", c->name, "state", g_state_names[c->state], "trid", "trtype",
			      "TCP", "adrfam", c->adrfam, "traddr", c->traddr, "trsvcid", c->trsvcid,
			      "subnqn", c->subnqn, "hostnqn", c->hostnqn, "cntlid", (int)c->cntlid,
			      "num_io_queues", (int)c->nioq, "bdevs", bd, "resets",
			      (json_int_t)c->resets, "reconnects", (json_int_t)c->reconnects,
			      "reconnect_attempts", (int)c->attempts, "hdgst", c->hdgst, "ddgst",
			      c->ddgst);
		if (c->last_error[0])
			json_object_set_new(o, "last_error", json_string(c->last_error));
		json_array_append_new(arr, o);
	}
	if (a->name && json_array_size(arr) == 0) {
		json_decref(arr);
		nvl_rpc_error(req, -ENOENT, "no controller %s", a->name);
		return;
	}
	nvl_rpc_result(req, arr);
}
NVL_RPC_REGISTER("bdev_nvme_get_controllers", rpc_bdev_nvme_get_controllers, struct rpc_get,
		 get_params, NVL_RPC_RUNTIME,
		 "Attached NVMe/TCP controllers: address, state, bdevs, reconnect counters.")

/* ---- daemon subsystem ------------------------------------------------------------------- */

static nvl_app_done_fn g_fini_done;
static struct nvl_timer *g_fini_timer;

static void
fini_poll(void *arg)
{
	(void)arg;
	if (!TAILQ_EMPTY(&g_ctrlrs))
		return;
	nvl_timer_destroy(g_fini_timer);
	g_fini_timer = NULL;
	g_fini_done();
}

static void
bdev_nvme_fini(nvl_app_done_fn done)
{
	struct nvme_ctrlr *c, *t;

	TAILQ_FOREACH_SAFE(c, &g_ctrlrs, link, t) {
		if (c->state == CS_DETACHING)
			continue;
		if (c->state == CS_ATTACHING)
			attach_finish_rpc(c, -ESHUTDOWN, "the daemon is shutting down");
		ctrlr_detach(c, NULL);
	}
	g_fini_done = done;
	if (TAILQ_EMPTY(&g_ctrlrs)) {
		done();
		return;
	}
	g_fini_timer = nvl_timer_create(fini_poll, NULL, 1000, 1000);
	if (g_fini_timer == NULL)
		done();
}

static struct nvl_subsystem g_bdev_nvme_subsys = {
	.name = "bdev_nvme",
	.order = 20,
	.fini = bdev_nvme_fini,
};
NVL_SUBSYSTEM_REGISTER(g_bdev_nvme_subsys)
