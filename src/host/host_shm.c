/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The host side of the shm transport (include/nvlend/spec/shm.h) behind the
 * host core's ops table. The control channel is a non-blocking
 * SOCK_SEQPACKET socket: CONNECT / CONNECT_RESP (with the data window's
 * memfd), then ADMIN_CMD / ADMIN_CPL messages matched by cid (the core's
 * admin slot), descriptors attached to the completions of Create I/O CQ/SQ.
 * I/O goes straight into the shared rings, with doorbell eventfds only when
 * the controller sleeps and interrupt eventfds only when we sleep.
 *
 * Threads: the control channel and queue set-up run on the controller's
 * owner; a transport queue (struct shm_hq) on its queue pair's owner. Each
 * queue holds its own duplicate of the control socket, so it can notice the
 * controller hanging up (a daemon killed with -9) without touching the
 * controller's state; the controller shuts the socket down (all duplicates
 * see it) when the association ends.
 *
 * A connection closed or reset before CONNECT_RESP (a live upgrade: the old
 * worker had accepted it and goes away, the new one serves the same
 * listening socket) is made again, the whole handshake, after 10 ms doubling
 * to 200 ms, for up to SHM_RETRY_TOTAL_MS since the first attempt; one
 * notice line per retry. A refusal (CONNECT_RESP with a status) and a
 * connect(2) error are final.
 */
#include "host/host_shm.h"
#include "proto/shm_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SHM_RECV_BUDGET 64       /* control messages handled per process call */
#define SHM_HANGUP_CHECK 65536   /* idle polls between hang-up checks of a busy poller */
#define SHM_RETRY_FIRST_MS 10     /* a handshake closed by the target: first wait, doubled */
#define SHM_RETRY_MAX_MS 200      /* ... up to this */
#define SHM_RETRY_TOTAL_MS 5000   /* no new attempt this long after the first one */
#define SHM_MS(x) ((uint64_t)(x) * 1000000ULL)

enum shm_phase {
	SHM_RETRY_WAIT = 0,         /* the target closed the handshake: connect again at retry_ns */
	SHM_SOCK_CONNECT,           /* the listener's backlog was full: try again */
	SHM_SEND_CONNECT,           /* the CONNECT message waits for socket space */
	SHM_WAIT_RESP,
	SHM_UP,
};

/* The control channel of one association (c->tctx). */
struct shm_assoc {
	int fd;                     /* -1 in SHM_RETRY_WAIT */
	enum shm_phase phase;
	bool unsent;                /* an admin command waits for socket space */
	uint64_t first_ns;          /* the first attempt (retries stop SHM_RETRY_TOTAL_MS later) */
	uint64_t retry_ns;          /* SHM_RETRY_WAIT: when to connect again */
	uint32_t retry_ms;          /* the next wait */
	unsigned retries;
	struct nvl_shm_connect msg;
	/* nvme+fn:// (the URI has no NQN): OPEN_FN instead of CONNECT */
	bool fn;
	struct nvl_shm_open_fn fn_msg;
};

/* A queue pair being made (qp->tconn): Create I/O CQ, then SQ. */
struct shm_qconn {
	struct host_ctrlr *c;
	struct host_qpair *qp;
	struct shm_hq *q;
	int fds[HOST_ADMIN_MAX_FDS];
	int nfds;
	bool cq_made;
};

/* ---- control channel ------------------------------------------------------------------ */

static int
ctl_send(int fd, void *msg, size_t len, uint16_t type)
{
	struct nvl_shm_msg_hdr *hd = msg;
	ssize_t n;

	hd->magic = NVL_SHM_MAGIC;
	hd->version = NVL_SHM_VERSION;
	hd->type = type;
	hd->len = (uint32_t)len;
	hd->rsvd = 0;
	do {
		n = send(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		return errno == EPIPE || errno == ECONNRESET ? -ENOTCONN : -errno;
	}
	return 0;
}

/* SGL data block: one descriptor, an offset into the window. */
static void
set_sgl(const struct host_window *w, struct nvl_nvme_cmd *cmd, const void *buf, uint32_t len)
{
	cmd->flags = (uint8_t)((cmd->flags & ~0xc0u) | (NVL_NVME_PSDT_SGL_MPTR_CONTIG << 6));
	cmd->dptr.sgl1.addr = host_window_offset(w, buf);
	cmd->dptr.sgl1.length = len;
	memset(cmd->dptr.sgl1.rsvd, 0, sizeof(cmd->dptr.sgl1.rsvd));
	cmd->dptr.sgl1.type = NVL_NVME_SGL_TYPE_DATA_BLOCK << 4;
}

static int
admin_put(struct host_ctrlr *c, struct shm_assoc *a, struct host_admin_req *r)
{
	struct nvl_shm_admin_cmd m = { 0 };
	int rc;

	m.sqe = r->cmd;
	if (r->len)
		set_sgl(c->win, &m.sqe, r->buf, r->len);
	rc = ctl_send(a->fd, &m, sizeof(m), NVL_SHM_MSG_ADMIN_CMD);
	if (rc == -EAGAIN) {
		r->sent = false;
		a->unsent = true;
		return 0;
	}
	r->sent = rc == 0;
	return rc;
}

static int
shm_admin_send(struct host_ctrlr *c, struct host_admin_req *r)
{
	return admin_put(c, c->tctx, r);
}

static int
connect_refusal_errno(uint32_t reason)
{
	switch (reason) {
	case NVL_SHM_REFUSED_NO_SUBSYSTEM: return -ENODEV;
	case NVL_SHM_REFUSED_HOST: return -EACCES;
	case NVL_SHM_REFUSED_RESOURCES: return -ENOMEM;
	case NVL_SHM_REFUSED_INVALID: return -EREMOTEIO; /* -EINVAL: the caller's own mistake */
	case NVL_SHM_REFUSED_CREDENTIALS: return -EPERM;
	case NVL_SHM_REFUSED_NOT_LISTENING: return -EADDRNOTAVAIL;
	case NVL_SHM_REFUSED_BUSY: return -EBUSY;
	default: return -EREMOTEIO;
	}
}

static void
close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

static void
connect_resp(struct host_ctrlr *c, struct shm_assoc *a, struct nvl_shm_connect_resp *r, int *fds,
	     int nfds)
{
	int rc;

	if (r->status != 0) {
		r->message[sizeof(r->message) - 1] = '\0';
		close_all(fds, nfds);
		host_assoc_fail(c, connect_refusal_errno(r->reason),
				"%s refused the connection: %s", c->uri.path, r->message);
		return;
	}
	if (nfds != 1 || r->window_bytes == 0 || r->window_bytes % NVL_NVME_PAGE_SIZE) {
		close_all(fds, nfds);
		host_assoc_fail(c, -EPROTO, "connect to %s: malformed answer", c->uri.path);
		return;
	}
	rc = host_window_create(fds[0], r->window_bytes, &c->win);
	close(fds[0]);
	if (rc < 0) {
		host_assoc_fail(c, rc, "connect to %s: cannot map the data window", c->uri.path);
		return;
	}
	c->cntlid = r->cntlid;
	c->authreq = r->authreq;
	c->max_io_queues = r->max_io_queues;
	c->max_queue_entries = r->max_queue_entries;
	a->phase = SHM_UP;
	host_assoc_transport_ready(c);
}

/* Receive and dispatch one message. \return 1 handled, 0 nothing there, -errno. */
static int
ctl_recv_one(struct host_ctrlr *c, struct shm_assoc *a)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * HOST_ADMIN_MAX_FDS)];
		struct cmsghdr align;
	} u;
	union {
		struct nvl_shm_msg_hdr hdr;
		struct nvl_shm_connect_resp resp;
		struct nvl_shm_admin_cpl cpl;
	} m;
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	int fds[HOST_ADMIN_MAX_FDS], nfds = 0;
	struct cmsghdr *cm;
	ssize_t n;

	do {
		n = recvmsg(a->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -ENOTCONN;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int *f = (int *)CMSG_DATA(cm);
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < k; i++) {
				if (nfds < HOST_ADMIN_MAX_FDS)
					fds[nfds++] = f[i];
				else
					close(f[i]);
			}
		}
	}
	if (n == 0) {
		/* EOF (descriptors sent with an empty message were collected above) */
		close_all(fds, nfds);
		return -ENOTCONN;
	}
	if ((size_t)n < sizeof(m.hdr) || m.hdr.magic != NVL_SHM_MAGIC || m.hdr.len != (size_t)n) {
		close_all(fds, nfds);
		return -EPROTO;
	}
	if (m.hdr.type == NVL_SHM_MSG_CONNECT_RESP && a->phase == SHM_WAIT_RESP &&
	    n == sizeof(m.resp)) {
		connect_resp(c, a, &m.resp, fds, nfds);
		return 1;
	}
	if (m.hdr.type == NVL_SHM_MSG_ADMIN_CPL && a->phase == SHM_UP && n == sizeof(m.cpl)) {
		struct host_admin_req *r = host_admin_by_cid(c, m.cpl.cqe.cid);

		/* an unknown cid: a late answer to a command we gave up on */
		if (r && r->sent)
			host_admin_complete(c, r, &m.cpl.cqe, fds, nfds);
		else
			close_all(fds, nfds);
		return 1;
	}
	close_all(fds, nfds);
	return -EPROTO;
}

/* ---- association ------------------------------------------------------------------------ */

static int
sock_open(struct shm_assoc *a)
{
	a->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	return a->fd < 0 ? -errno : 0;
}

static int
sock_connect(struct host_ctrlr *c, struct shm_assoc *a)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	nvl_strlcpy(sa.sun_path, c->uri.path, sizeof(sa.sun_path));
	if (connect(a->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return 0;
	/* a full backlog: EAGAIN on a non-blocking Unix socket, tried again from process */
	return errno == EAGAIN || errno == EINPROGRESS ? -EAGAIN : -errno;
}

static int
shm_assoc_start(struct host_ctrlr *c, uint64_t now)
{
	struct shm_assoc *a;
	int rc;

	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	rc = sock_open(a);
	if (rc < 0) {
		free(a);
		return rc;
	}
	a->first_ns = now;
	a->retry_ms = SHM_RETRY_FIRST_MS;
	nvl_strlcpy(a->msg.subnqn, c->uri.nqn, sizeof(a->msg.subnqn));
	nvl_strlcpy(a->msg.hostnqn, c->hostnqn, sizeof(a->msg.hostnqn));
	memcpy(a->msg.hostid, c->opts.hostid, 16);
	a->msg.kato_ms = c->opts.kato_ms;
	a->msg.window_bytes = c->opts.window_bytes;
	a->fn = c->uri.nqn[0] == '\0';
	a->fn_msg.kato_ms = c->opts.kato_ms;
	a->fn_msg.window_bytes = c->opts.window_bytes;
	rc = sock_connect(c, a);
	if (rc < 0 && rc != -EAGAIN) {
		host_ctrlr_set_error(c, "cannot reach %s: %s", c->uri.path, strerror(-rc));
		close(a->fd);
		free(a);
		return rc;
	}
	a->phase = rc == 0 ? SHM_SEND_CONNECT : SHM_SOCK_CONNECT;
	c->tctx = a;
	return 0;
}

static void
shm_assoc_stop(struct host_ctrlr *c)
{
	struct shm_assoc *a = c->tctx;

	if (a == NULL)
		return;
	/* every queue's duplicate of the socket sees the hang-up */
	if (a->fd >= 0) {
		shutdown(a->fd, SHUT_RDWR);
		close(a->fd);
	}
	free(a);
	c->tctx = NULL;
}

static void
shm_assoc_bye(struct host_ctrlr *c)
{
	struct shm_assoc *a = c->tctx;
	struct nvl_shm_msg_hdr m = { 0 };

	if (a && a->phase == SHM_UP)
		ctl_send(a->fd, &m, sizeof(m), NVL_SHM_MSG_DISCONNECT);
}

/*
 * The target closed or reset the connection before answering CONNECT (rc:
 * -ENOTCONN). \return true if a new connection is scheduled (the old socket
 * is closed), false if that is final (retries used up).
 */
static bool
handshake_closed(struct host_ctrlr *c, struct shm_assoc *a, uint64_t now, const char *what)
{
	if (now + SHM_MS(a->retry_ms) > a->first_ns + SHM_MS(SHM_RETRY_TOTAL_MS))
		return false;
	close(a->fd);
	a->fd = -1;
	a->phase = SHM_RETRY_WAIT;
	a->retry_ns = now + SHM_MS(a->retry_ms);
	a->retries++;
	NVL_NOTICELOG("%s %s the connection during the handshake (a hand-over?): "
		      "connecting again in %u ms (retry %u)",
		      c->uri.path, what, a->retry_ms, a->retries);
	a->retry_ms = NVL_MIN(a->retry_ms * 2, (uint32_t)SHM_RETRY_MAX_MS);
	host_ctrlr_wake_at(c, a->retry_ns);
	return true;
}

static int
shm_process(struct host_ctrlr *c, uint64_t now)
{
	struct shm_assoc *a = c->tctx;
	int work = 0, rc = 0;

	if (a->phase == SHM_RETRY_WAIT) {
		if (now < a->retry_ns)
			return 0;
		rc = sock_open(a);
		if (rc < 0) {
			host_assoc_fail(c, rc, "cannot reach %s: %s", c->uri.path, strerror(-rc));
			return 1;
		}
		a->phase = SHM_SOCK_CONNECT;
		work++;
	}
	if (a->phase == SHM_SOCK_CONNECT) {
		rc = sock_connect(c, a);
		if (rc == -EAGAIN)
			return 0;
		if (rc < 0) {
			host_assoc_fail(c, rc, "cannot reach %s: %s", c->uri.path, strerror(-rc));
			return 1;
		}
		a->phase = SHM_SEND_CONNECT;
	}
	if (a->phase == SHM_SEND_CONNECT) {
		rc = a->fn ? ctl_send(a->fd, &a->fn_msg, sizeof(a->fn_msg), NVL_SHM_MSG_OPEN_FN)
			   : ctl_send(a->fd, &a->msg, sizeof(a->msg), NVL_SHM_MSG_CONNECT);
		if (rc == -EAGAIN)
			return work;
		if (rc == -ENOTCONN && handshake_closed(c, a, now, "reset"))
			return 1;
		if (rc < 0) {
			host_assoc_fail(c, rc == -ENOTCONN ? -ECONNRESET : rc, "connect to %s: %s",
					c->uri.path, strerror(-rc));
			return 1;
		}
		a->phase = SHM_WAIT_RESP;
		work++;
	}
	if (a->unsent) {
		a->unsent = false;
		for (unsigned i = 0; i < HOST_ADMIN_SLOTS && rc == 0; i++)
			if (c->admin[i].busy && !c->admin[i].sent)
				rc = admin_put(c, a, &c->admin[i]);
	}
	for (int i = 0; rc == 0 && i < SHM_RECV_BUDGET && c->tctx == a; i++) {
		rc = ctl_recv_one(c, a);
		if (rc <= 0)
			break;
		work++;
		rc = 0;
	}
	if (rc == -ENOTCONN && c->tctx == a && a->phase == SHM_WAIT_RESP &&
	    handshake_closed(c, a, now, "closed"))
		return work + 1;
	if (rc < 0 && c->tctx == a) {
		if (a->phase != SHM_UP)
			host_assoc_fail(c, rc == -ENOTCONN ? -ECONNRESET : rc, "connect to %s: %s",
					c->uri.path,
					rc == -ENOTCONN ? "the target closed the connection"
							: strerror(-rc));
		else
			host_assoc_fail(c, -ENOTCONN,
					"the target closed the controller's connection");
		work++;
	}
	return work;
}

static int
shm_fds(struct host_ctrlr *c, struct pollfd *p, int max)
{
	struct shm_assoc *a = c->tctx;

	(void)max;
	if (a->phase == SHM_RETRY_WAIT)
		return 0; /* (a timer: host_ctrlr_wake_at) */
	p[0].fd = a->fd;
	p[0].events = POLLIN;
	if (a->phase == SHM_SOCK_CONNECT || a->phase == SHM_SEND_CONNECT || a->unsent)
		p[0].events |= POLLOUT;
	p[0].revents = 0;
	return 1;
}

/* ---- making queues ------------------------------------------------------------------------ */

static void *
map_region(int fd, size_t *size)
{
	off_t end = lseek(fd, 0, SEEK_END);
	void *p;

	if (end < (off_t)NVL_SHM_RING_OFFSET)
		return NULL;
	p = mmap(NULL, (size_t)end, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (p == MAP_FAILED)
		return NULL;
	*size = (size_t)end;
	return p;
}

static void
hq_free(struct shm_hq *q)
{
	if (q == NULL)
		return;
	if (q->sq_map)
		munmap(q->sq_map, q->sq_size);
	if (q->cq_map)
		munmap(q->cq_map, q->cq_size);
	if (q->irq_fd >= 0)
		close(q->irq_fd);
	if (q->kick_fd >= 0)
		close(q->kick_fd);
	if (q->ctl_fd >= 0)
		close(q->ctl_fd);
	for (uint32_t i = 0; i < q->nprp; i++)
		host_window_free(q->base.win, q->prp[i]);
	free(q->prp);
	host_window_put(q->base.win);
	free(q);
}

static void
shm_tq_destroy(struct host_tq *tq)
{
	hq_free((struct shm_hq *)tq);
}

static void
ignore_cpl(void *arg, const struct nvl_nvme_cpl *cpl, int rc)
{
	(void)arg;
	(void)cpl;
	(void)rc;
}

static void
delete_queue(struct host_ctrlr *c, uint8_t opc, uint16_t qid)
{
	struct nvl_nvme_cmd cmd = { 0 };

	cmd.opc = opc;
	cmd.cdw10 = qid;
	(void)host_admin_submit(c, &cmd, NULL, 0, NVL_XFER_NONE, 0, ignore_cpl, NULL, NULL, NULL);
}

/* The queue could not be made: undo what the controller has, report. */
static void
qconn_fail(struct shm_qconn *qc, bool del_sq, int rc, const char *what)
{
	struct host_ctrlr *c = qc->c;
	struct host_qpair *qp = qc->qp;

	close_all(qc->fds, qc->nfds);
	if (c->assoc_live && !c->dropping) {
		if (del_sq)
			delete_queue(c, NVL_NVME_ADM_DELETE_SQ, qp->qid);
		if (qc->cq_made)
			delete_queue(c, NVL_NVME_ADM_DELETE_CQ, qp->qid);
	}
	hq_free(qc->q);
	free(qc);
	host_tq_failed(c, qp, rc, "I/O queue %u: %s", qp->qid, what);
}

static bool
qconn_status_ok(struct shm_qconn *qc, const struct nvl_nvme_cpl *cpl, int rc, const char *what)
{
	char why[160];

	if (rc < 0) {
		qconn_fail(qc, false, rc, rc == -ETIMEDOUT ? "timed out" : "connection lost");
		return false;
	}
	if (nvl_cpl_status(cpl) != 0) {
		snprintf(why, sizeof(why), "%s: %s (status 0x%03x)", what,
			 nvl_status_str(nvl_cpl_status(cpl)), nvl_cpl_status(cpl));
		qconn_fail(qc, false, -EREMOTEIO, why);
		return false;
	}
	return true;
}

static void
sq_done(void *arg, const struct nvl_nvme_cpl *cpl, int rc)
{
	struct shm_qconn *qc = arg;
	struct host_qpair *qp = qc->qp;
	struct host_ctrlr *c = qc->c;
	struct shm_hq *q = qc->q;

	if (!qconn_status_ok(qc, cpl, rc, "Create I/O SQ"))
		return;
	if (qc->nfds != 2) {
		qconn_fail(qc, true, -EPROTO, "Create I/O SQ: no descriptors");
		return;
	}
	q->sq_map = map_region(qc->fds[0], &q->sq_size);
	close(qc->fds[0]);
	q->kick_fd = qc->fds[1];
	qc->nfds = 0;
	if (q->sq_map == NULL) {
		qconn_fail(qc, true, -ENOMEM, "cannot map the SQ");
		return;
	}
	q->sqp = (void *)q->sq_map;
	q->cqp = (void *)q->cq_map;
	q->sq = (void *)(q->sq_map + NVL_SHM_RING_OFFSET);
	q->cq = (void *)(q->cq_map + NVL_SHM_RING_OFFSET);
	if (q->sqp->magic != NVL_SHM_SQ_MAGIC || q->sqp->entries != q->entries ||
	    q->cqp->magic != NVL_SHM_CQ_MAGIC || q->cqp->entries != q->entries ||
	    q->sq_size < NVL_SHM_RING_OFFSET + q->entries * sizeof(struct nvl_nvme_cmd) ||
	    q->cq_size < NVL_SHM_RING_OFFSET + q->entries * sizeof(struct nvl_nvme_cpl)) {
		qconn_fail(qc, true, -EPROTO, "rings do not match the queue");
		return;
	}
	q->phase = 1;
	host_window_get(c->win);
	q->base.win = c->win;
	if (qp->opts.use_prp) {
		q->prp = calloc(qp->entries, sizeof(*q->prp));
		for (uint32_t i = 0; q->prp && i < qp->entries; i++) {
			q->prp[i] = host_window_alloc(c->win, NVL_NVME_PAGE_SIZE);
			if (q->prp[i] == NULL)
				break;
			q->nprp++;
		}
		if (q->nprp != qp->entries) {
			qconn_fail(qc, true, -ENOMEM, "no window space for PRP lists");
			return;
		}
	}
	q->ctl_fd = fcntl(((struct shm_assoc *)c->tctx)->fd, F_DUPFD_CLOEXEC, 0);
	if (q->ctl_fd < 0) {
		qconn_fail(qc, true, -errno, "cannot duplicate the control socket");
		return;
	}
	qc->q = NULL;
	free(qc);
	host_tq_connected(c, qp, &q->base);
}

static void
cq_done(void *arg, const struct nvl_nvme_cpl *cpl, int rc)
{
	struct shm_qconn *qc = arg;
	struct host_qpair *qp = qc->qp;
	struct shm_hq *q = qc->q;
	struct nvl_nvme_cmd cmd = { 0 };
	int want = qp->opts.interrupts ? 2 : 1;
	char uri[300];

	if (!qconn_status_ok(qc, cpl, rc, "Create I/O CQ"))
		return;
	qc->cq_made = true;
	/* one descriptor less than asked: the target's vector budget is spent
	 * and it made the CQ without a vector; this queue is polled */
	if (qc->nfds != want && !(want == 2 && qc->nfds == 1)) {
		qconn_fail(qc, false, -EPROTO, "Create I/O CQ: no descriptors");
		return;
	}
	q->cq_map = map_region(qc->fds[0], &q->cq_size);
	close(qc->fds[0]);
	if (qc->nfds == 2) {
		q->irq_fd = qc->fds[1];
	} else if (want == 2) {
		qp->opts.interrupts = false;
		NVL_NOTICELOG("%s: queue %u has no interrupt vector (the target's budget): polled",
			      host_ctrlr_uri_str(qc->c, uri, sizeof(uri)), qp->qid);
	}
	qc->nfds = 0;
	if (q->cq_map == NULL) {
		qconn_fail(qc, false, -ENOMEM, "cannot map the CQ");
		return;
	}
	cmd.opc = NVL_NVME_ADM_CREATE_SQ;
	cmd.cdw10 = qp->qid | ((qp->entries - 1) << 16);
	cmd.cdw11 = 1u | ((uint32_t)qp->qid << 16);
	rc = host_admin_submit(qc->c, &cmd, NULL, 0, NVL_XFER_NONE, 0, sq_done, qc, qc->fds,
			       &qc->nfds);
	if (rc < 0)
		qconn_fail(qc, false, rc, "cannot send Create I/O SQ");
}

static int
shm_tq_connect(struct host_ctrlr *c, struct host_qpair *qp)
{
	struct nvl_nvme_cmd cmd = { 0 };
	struct shm_qconn *qc;
	int rc;

	qc = calloc(1, sizeof(*qc));
	if (qc == NULL)
		return -ENOMEM;
	qc->q = calloc(1, sizeof(*qc->q));
	if (qc->q == NULL) {
		free(qc);
		return -ENOMEM;
	}
	qc->c = c;
	qc->qp = qp;
	qc->q->base.ops = &g_host_shm_ops;
	qc->q->entries = qp->entries;
	qc->q->irq_fd = -1;
	qc->q->kick_fd = -1;
	qc->q->ctl_fd = -1;
	/* completion queue, interrupt vector = qid */
	cmd.opc = NVL_NVME_ADM_CREATE_CQ;
	cmd.cdw10 = qp->qid | ((qp->entries - 1) << 16);
	cmd.cdw11 = 1u | (qp->opts.interrupts ? 2u : 0) | ((uint32_t)qp->qid << 16);
	rc = host_admin_submit(c, &cmd, NULL, 0, NVL_XFER_NONE, 0, cq_done, qc, qc->fds, &qc->nfds);
	if (rc < 0) {
		free(qc->q);
		free(qc);
		return rc;
	}
	qp->tconn = qc;
	return 0;
}

struct shm_hq *
host_shm_hq(struct host_qpair *qp)
{
	return qp->tq && qp->ops == &g_host_shm_ops ? (struct shm_hq *)qp->tq : NULL;
}

uint8_t *
host_shm_window(struct host_ctrlr *c, uint64_t *size)
{
	*size = c->win ? c->win->size : 0;
	return c->win ? c->win->base : NULL;
}

/* ---- I/O (the queue pair's thread) --------------------------------------------------------- */

static void
set_prp(const struct host_window *w, void *list_page, struct nvl_nvme_cmd *cmd, const void *buf,
	uint32_t len)
{
	uint64_t off = host_window_offset(w, buf);
	uint64_t first = NVL_NVME_PAGE_SIZE - (off & (NVL_NVME_PAGE_SIZE - 1));
	uint64_t *list = list_page;
	uint64_t page, left;
	unsigned n = 0;

	cmd->flags &= ~0xc0u;
	cmd->dptr.prp.prp1 = off;
	cmd->dptr.prp.prp2 = 0;
	if (len <= first)
		return;
	if (len - first <= NVL_NVME_PAGE_SIZE) {
		cmd->dptr.prp.prp2 = off + first;
		return;
	}
	page = off + first;
	left = len - first;
	while (left > 0) {
		list[n++] = page;
		page += NVL_NVME_PAGE_SIZE;
		left = left > NVL_NVME_PAGE_SIZE ? left - NVL_NVME_PAGE_SIZE : 0;
	}
	cmd->dptr.prp.prp2 = host_window_offset(w, list);
}

static int
shm_submit(struct host_qpair *qp, struct host_tq *tq, struct host_req *r, struct nvl_nvme_cmd *cmd,
	   const struct iovec *iov, int iovcnt)
{
	struct shm_hq *q = (struct shm_hq *)tq;
	uint64_t one = 1;

	(void)iovcnt;
	if (shm_ring_full(q->sq_head, q->sq_tail, q->entries))
		return -EAGAIN;
	if (r->len) {
		if (q->prp)
			set_prp(tq->win, q->prp[r->cid], cmd, iov[0].iov_base, r->len);
		else
			set_sgl(tq->win, cmd, iov[0].iov_base, r->len);
	}
	memcpy(&q->sq[q->sq_tail], cmd, sizeof(*cmd));
	if (nvl_unlikely((++q->submits & 255) == 1))
		__atomic_store_n(&q->sqp->host_cpu, (uint32_t)sched_getcpu(), __ATOMIC_RELAXED);
	q->sq_tail = shm_ring_next(q->sq_tail, q->entries);
	/* Publish the SQE before the tail; pairs with the acquire in the target's sq_poll(). */
	nvl_smp_store_release(&q->sqp->tail, q->sq_tail);
	if (shm_take_wakeup(&q->sqp->need_kick))
		(void)!write(q->kick_fd, &one, sizeof(one));
	(void)qp;
	return 0;
}

static bool
hung_up(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };

	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

static int
shm_poll(struct host_qpair *qp, struct host_tq *tq, uint32_t max)
{
	struct shm_hq *q = (struct shm_hq *)tq;
	uint32_t n = 0;

	while ((max == 0 || n < max) && shm_cqe_ready(&q->cq[q->cq_head], q->phase)) {
		struct nvl_nvme_cpl cpl = q->cq[q->cq_head];

		q->cq_head = shm_ring_next(q->cq_head, q->entries);
		if (q->cq_head == 0)
			q->phase ^= 1;
		if (cpl.sqhd < q->entries)
			q->sq_head = cpl.sqhd;
		n++;
		/*
		 * Free the slot before the callback (pairs with the acquire in the
		 * target's cq_post()): the callback may submit, and a target on
		 * this CPU then runs before we return. Publishing only after the
		 * loop let a QD1 ping-pong go a whole lap on a stale head until
		 * the target saw its CQ as full.
		 */
		nvl_smp_store_release(&q->cqp->head, q->cq_head);
		host_qpair_complete(qp, &cpl);
	}
	if (n) {
		q->idle_polls = 0;
	} else if (++q->idle_polls >= SHM_HANGUP_CHECK) {
		/* busy-polling hosts never sleep: look for a hang-up now and then */
		q->idle_polls = 0;
		if (hung_up(q->ctl_fd))
			host_qpair_lost(qp, "the target closed the controller's connection");
	}
	return (int)n;
}

static int
shm_tq_fds(const struct host_tq *tq, struct pollfd *p, int max)
{
	const struct shm_hq *q = (const struct shm_hq *)tq;
	int n = 0;

	if (q->irq_fd >= 0 && n < max) {
		p[n].fd = q->irq_fd;
		p[n].events = POLLIN;
		p[n++].revents = 0;
	}
	if (n < max) {
		/* notice a controller that went away: its socket hangs up */
		p[n].fd = q->ctl_fd;
		p[n].events = POLLRDHUP;
		p[n++].revents = 0;
	}
	return n;
}

static int
shm_arm(struct host_tq *tq)
{
	struct shm_hq *q = (struct shm_hq *)tq;

	if (q->irq_fd < 0)
		return 0; /* polled queue: nothing to arm */
	shm_arm_wakeup(&q->cqp->irq_armed);
	if (shm_cqe_ready(&q->cq[q->cq_head], q->phase)) {
		__atomic_store_n(&q->cqp->irq_armed, 0, __ATOMIC_RELAXED);
		return -EAGAIN;
	}
	return 0;
}

static int
shm_ack(struct host_qpair *qp, struct host_tq *tq, const struct pollfd *pfds, int n)
{
	struct shm_hq *q = (struct shm_hq *)tq;

	for (int i = 0; i < n; i++) {
		if (pfds[i].fd == q->irq_fd && (pfds[i].revents & POLLIN)) {
			uint64_t v;

			(void)!read(q->irq_fd, &v, sizeof(v)); /* non-blocking eventfd */
		} else if (pfds[i].fd == q->ctl_fd &&
			   (pfds[i].revents & (POLLHUP | POLLRDHUP | POLLERR))) {
			host_qpair_lost(qp, "the target closed the controller's connection");
			return -ENOTCONN;
		}
	}
	return 0;
}

static int
shm_peer_cpu(const struct host_tq *tq)
{
	const struct shm_hq *q = (const struct shm_hq *)tq;

	return (int)__atomic_load_n(&q->sqp->ctrl_cpu, __ATOMIC_RELAXED);
}

const struct host_transport_ops g_host_shm_ops = {
	.name = "shm",
	.kind = NVL_URI_NVME_SHM,
	.fabrics = false,
	.delete_queues = true,
	.spin_yields = true,
	.assoc_start = shm_assoc_start,
	.assoc_stop = shm_assoc_stop,
	.assoc_bye = shm_assoc_bye,
	.process = shm_process,
	.fds = shm_fds,
	.admin_send = shm_admin_send,
	.tq_connect = shm_tq_connect,
	.tq_destroy = shm_tq_destroy,
	.submit = shm_submit,
	.poll = shm_poll,
	.tq_fds = shm_tq_fds,
	.arm = shm_arm,
	.ack = shm_ack,
	.peer_cpu = shm_peer_cpu,
};
