/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libnvlend shm transport: the host side of include/nvlend/spec/shm.h.
 * Admin commands go over the control socket (serialized by the caller's
 * admin lock); I/O goes straight into the shared rings, with doorbell
 * eventfds only when the controller sleeps and interrupt eventfds only when
 * we sleep.
 */
#include "host/host_internal.h"
#include "proto/shm_ring.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "host/host_shm.h"

/* shm_wait's offers of the CPU while spinning; see shm_spin_yield() */
#define SHM_YIELD_MIN_NS  4000ull
#define SHM_YIELD_MAX_NS  256000ull
#define SHM_YIELD_RAN_NS  5000ull /* a yield this long: another task ran */

/* ---- control channel ------------------------------------------------------------- */

static int
ctl_send(struct shm_host *h, void *msg, size_t len, uint16_t type)
{
	struct nvl_shm_msg_hdr *hd = msg;
	ssize_t n;

	hd->magic = NVL_SHM_MAGIC;
	hd->version = NVL_SHM_VERSION;
	hd->type = type;
	hd->len = (uint32_t)len;
	hd->rsvd = 0;
	do {
		n = send(h->fd, msg, len, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EPIPE || errno == ECONNRESET ? -ENOTCONN : -errno;
	return 0;
}

/* Receive one message of `type` (exact size len), collecting up to 4 fds. */
static int
ctl_recv(struct shm_host *h, void *msg, size_t len, uint16_t type, int *fds, int *nfds,
	 int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} u;
	struct nvl_shm_msg_hdr *hd = msg;
	int got = 0;

	for (;;) {
		struct pollfd pfd = { .fd = h->fd, .events = POLLIN };
		struct iovec iov = { .iov_base = msg, .iov_len = len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				     .msg_controllen = sizeof(u.buf) };
		struct cmsghdr *cm;
		ssize_t n;
		int prc = poll(&pfd, 1, timeout_ms);

		if (prc < 0 && errno == EINTR)
			continue;
		if (prc == 0)
			return -ETIMEDOUT;
		n = recvmsg(h->fd, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -ENOTCONN;
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
				int *f = (int *)CMSG_DATA(cm);
				size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

				for (size_t i = 0; i < k; i++) {
					if (fds && got < 4)
						fds[got++] = f[i];
					else
						close(f[i]);
				}
			}
		}
		if (n == 0) {
			/* EOF (descriptors sent with an empty message were collected above) */
			for (int i = 0; i < got; i++)
				close(fds[i]);
			return -ENOTCONN;
		}
		if ((size_t)n != len || hd->magic != NVL_SHM_MAGIC || hd->type != type ||
		    hd->len != len) {
			for (int i = 0; i < got; i++)
				close(fds[i]);
			return -EPROTO;
		}
		if (nfds)
			*nfds = got;
		return 0;
	}
}

static int
shm_connect(struct nvl_ctrlr *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct nvl_shm_connect m = { 0 };
	struct nvl_shm_connect_resp r = { 0 };
	struct shm_host *h;
	int fds[4], nfds = 0, rc;

	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (h->fd < 0) {
		rc = -errno;
		free(h);
		return rc;
	}
	nvl_strlcpy(sa.sun_path, c->uri.path, sizeof(sa.sun_path));
	if (connect(h->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		host_set_error(c, "cannot reach %s: %s", c->uri.path, strerror(errno));
		goto err;
	}
	nvl_strlcpy(m.subnqn, c->uri.nqn, sizeof(m.subnqn));
	nvl_strlcpy(m.hostnqn, c->hostnqn, sizeof(m.hostnqn));
	memcpy(m.hostid, c->hostid, 16);
	m.kato_ms = c->opts.kato_ms;
	m.window_bytes = c->opts.window_bytes;
	rc = ctl_send(h, &m, sizeof(m), NVL_SHM_MSG_CONNECT);
	if (rc == 0)
		rc = ctl_recv(h, &r, sizeof(r), NVL_SHM_MSG_CONNECT_RESP, fds, &nfds,
			      (int)c->opts.timeout_ms);
	if (rc < 0) {
		host_set_error(c, "connect to %s: %s", c->uri.path,
			       rc == -ENOTCONN ? "the target closed the connection" : strerror(-rc));
		goto err;
	}
	if (r.status != 0) {
		r.message[sizeof(r.message) - 1] = '\0';
		host_set_error(c, "%s refused the connection: %s", c->uri.path, r.message);
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		rc = r.reason == NVL_SHM_REFUSED_NO_SUBSYSTEM ? -ENODEV
		     : r.reason == NVL_SHM_REFUSED_HOST	  ? -EACCES
		     : r.reason == NVL_SHM_REFUSED_RESOURCES ? -ENOMEM
		     : r.reason == NVL_SHM_REFUSED_INVALID	  ? -EINVAL
							  : -EREMOTEIO;
		goto err;
	}
	if (nfds != 1 || r.window_bytes == 0 || r.window_bytes % NVL_NVME_PAGE_SIZE) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		rc = -EPROTO;
		goto err;
	}
	c->win = mmap(NULL, r.window_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		      fds[0], 0);
	close(fds[0]);
	if (c->win == MAP_FAILED) {
		c->win = NULL;
		rc = -ENOMEM;
		goto err;
	}
	c->win_size = r.window_bytes;
	c->cntlid = r.cntlid;
	c->max_io_queues = r.max_io_queues;
	c->max_queue_entries = r.max_queue_entries;
	c->tctx = h;
	return 0;
err:
	close(h->fd);
	free(h);
	return rc;
}

static void
shm_disconnect(struct nvl_ctrlr *c)
{
	struct shm_host *h = c->tctx;
	struct nvl_shm_msg_hdr m = { 0 };

	if (h == NULL)
		return;
	ctl_send(h, &m, sizeof(m), NVL_SHM_MSG_DISCONNECT);
	close(h->fd);
	free(h);
	c->tctx = NULL;
	if (c->win)
		munmap(c->win, c->win_size);
	c->win = NULL;
}

/* SGL data block: one descriptor, an offset into the window. */
static void
set_sgl(struct nvl_ctrlr *c, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len)
{
	cmd->flags = (uint8_t)((cmd->flags & ~0xc0u) | (NVL_NVME_PSDT_SGL_MPTR_CONTIG << 6));
	cmd->dptr.sgl1.addr = (uint64_t)((uint8_t *)buf - c->win);
	cmd->dptr.sgl1.length = len;
	memset(cmd->dptr.sgl1.rsvd, 0, sizeof(cmd->dptr.sgl1.rsvd));
	cmd->dptr.sgl1.type = NVL_NVME_SGL_TYPE_DATA_BLOCK << 4;
}

static int
shm_admin_fds(struct nvl_ctrlr *c, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len,
	      enum nvl_xfer_dir dir, struct nvl_nvme_cpl *cpl, int *fds, int *nfds)
{
	struct shm_host *h = c->tctx;
	struct nvl_shm_admin_cmd m = { 0 };
	struct nvl_shm_admin_cpl r;
	int rc;

	(void)dir;
	if (len)
		set_sgl(c, cmd, buf, len);
	m.sqe = *cmd;
	rc = ctl_send(h, &m, sizeof(m), NVL_SHM_MSG_ADMIN_CMD);
	for (; rc == 0;) {
		int got = 0, tmp[4];

		rc = ctl_recv(h, &r, sizeof(r), NVL_SHM_MSG_ADMIN_CPL, fds ? fds : tmp, &got,
			      (int)c->opts.timeout_ms);
		if (rc < 0)
			break;
		if (r.cqe.cid != cmd->cid) {
			/* the outstanding AER completing, or a late answer to a
			 * command we gave up on (dropped) */
			if (host_is_aer_cpl(c, &r.cqe))
				host_aen_complete(c, &r.cqe);
			for (int i = 0; i < got; i++)
				close((fds ? fds : tmp)[i]);
			continue;
		}
		if (fds)
			*nfds = got;
		else
			for (int i = 0; i < got; i++)
				close(tmp[i]);
		*cpl = r.cqe;
		return 0;
	}
	if (rc == -ENOTCONN || rc == -EPROTO) {
		host_set_dead(c);
		host_set_error(c, "the target closed the controller's connection");
		return -ENOTCONN;
	}
	host_set_error(c, "admin opcode 0x%02x: %s", cmd->opc, strerror(-rc));
	return rc;
}

static int
shm_admin(struct nvl_ctrlr *c, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len,
	  enum nvl_xfer_dir dir, struct nvl_nvme_cpl *cpl)
{
	return shm_admin_fds(c, cmd, buf, len, dir, cpl, NULL, NULL);
}

static int
shm_aer_submit(struct nvl_ctrlr *c, struct nvl_nvme_cmd *cmd)
{
	struct shm_host *h = c->tctx;
	struct nvl_shm_admin_cmd m = { 0 };
	int rc;

	m.sqe = *cmd;
	rc = ctl_send(h, &m, sizeof(m), NVL_SHM_MSG_ADMIN_CMD);
	if (rc == -ENOTCONN)
		host_set_dead(c);
	return rc;
}

static int
shm_admin_poll(struct nvl_ctrlr *c, int timeout_ms)
{
	struct shm_host *h = c->tctx;
	uint64_t deadline = nvl_now_ns() + (uint64_t)timeout_ms * 1000000ULL;

	while (!c->aen_arrived) {
		struct nvl_shm_admin_cpl r;
		uint64_t now = nvl_now_ns();
		int fds[4], got = 0, rc;

		rc = ctl_recv(h, &r, sizeof(r), NVL_SHM_MSG_ADMIN_CPL, fds, &got,
			      now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000));
		if (rc == -ETIMEDOUT)
			return 0;
		if (rc < 0) {
			host_set_dead(c);
			host_set_error(c, "the target closed the controller's connection");
			return -ENOTCONN;
		}
		for (int i = 0; i < got; i++)
			close(fds[i]);
		if (host_is_aer_cpl(c, &r.cqe))
			host_aen_complete(c, &r.cqe);
	}
	return 0;
}

/* Admin with descriptors returned, under the admin lock. */
static int
admin_locked(struct nvl_ctrlr *c, struct nvl_nvme_cmd *cmd, struct nvl_nvme_cpl *cpl, int *fds,
	     int *nfds)
{
	int rc;

	pthread_mutex_lock(&c->admin_lock);
	cmd->cid = host_admin_cid(c);
	rc = shm_admin_fds(c, cmd, NULL, 0, NVL_XFER_NONE, cpl, fds, nfds);
	pthread_mutex_unlock(&c->admin_lock);
	if (rc == 0 && nvl_cpl_status(cpl)) {
		host_set_error(c, "admin opcode 0x%02x: %s", cmd->opc,
			       nvl_status_str(nvl_cpl_status(cpl)));
		return -EREMOTEIO;
	}
	return rc;
}

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
delete_queue(struct nvl_ctrlr *c, uint8_t opc, uint16_t qid)
{
	struct nvl_nvme_cmd cmd = { 0 };
	struct nvl_nvme_cpl cpl;

	cmd.opc = opc;
	cmd.cdw10 = qid;
	admin_locked(c, &cmd, &cpl, NULL, NULL);
}

static int
shm_qpair_create(struct nvl_qpair *qp)
{
	struct nvl_ctrlr *c = qp->c;
	struct shm_hq *q;
	struct nvl_nvme_cmd cmd = { 0 };
	struct nvl_nvme_cpl cpl;
	int fds[4], nfds = 0, rc;

	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	q->irq_fd = -1;
	q->yield_gap_ns = SHM_YIELD_MIN_NS;
	q->kick_fd = -1;
	/* completion queue, interrupt vector = qid */
	cmd.opc = NVL_NVME_ADM_CREATE_CQ;
	cmd.cdw10 = qp->qid | ((qp->entries - 1) << 16);
	cmd.cdw11 = 1u | (qp->opts.interrupts ? 2u : 0) | ((uint32_t)qp->qid << 16);
	rc = admin_locked(c, &cmd, &cpl, fds, &nfds);
	if (rc < 0)
		goto err;
	if (nfds != (qp->opts.interrupts ? 2 : 1)) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		rc = -EPROTO;
		goto err_cq;
	}
	q->cq_map = map_region(fds[0], &q->cq_size);
	close(fds[0]);
	if (qp->opts.interrupts)
		q->irq_fd = fds[1];
	if (q->cq_map == NULL) {
		rc = -ENOMEM;
		goto err_cq;
	}
	/* submission queue */
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVL_NVME_ADM_CREATE_SQ;
	cmd.cdw10 = qp->qid | ((qp->entries - 1) << 16);
	cmd.cdw11 = 1u | ((uint32_t)qp->qid << 16);
	rc = admin_locked(c, &cmd, &cpl, fds, &nfds);
	if (rc < 0)
		goto err_cq;
	if (nfds != 2) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		rc = -EPROTO;
		goto err_sq;
	}
	q->sq_map = map_region(fds[0], &q->sq_size);
	close(fds[0]);
	q->kick_fd = fds[1];
	if (q->sq_map == NULL) {
		rc = -ENOMEM;
		goto err_sq;
	}
	q->sqp = (void *)q->sq_map;
	q->cqp = (void *)q->cq_map;
	q->sq = (void *)(q->sq_map + NVL_SHM_RING_OFFSET);
	q->cq = (void *)(q->cq_map + NVL_SHM_RING_OFFSET);
	if (q->sqp->magic != NVL_SHM_SQ_MAGIC || q->sqp->entries != qp->entries ||
	    q->cqp->magic != NVL_SHM_CQ_MAGIC || q->cqp->entries != qp->entries ||
	    q->sq_size < NVL_SHM_RING_OFFSET + qp->entries * sizeof(struct nvl_nvme_cmd) ||
	    q->cq_size < NVL_SHM_RING_OFFSET + qp->entries * sizeof(struct nvl_nvme_cpl)) {
		rc = -EPROTO;
		goto err_sq;
	}
	q->phase = 1;
	if (qp->opts.use_prp) {
		for (uint32_t i = 0; i < qp->entries; i++) {
			qp->reqs[i].prp_list = nvl_buf_alloc(c, NVL_NVME_PAGE_SIZE);
			if (qp->reqs[i].prp_list == NULL) {
				rc = -ENOMEM;
				goto err_sq;
			}
		}
	}
	qp->tq = q;
	return 0;
err_sq:
	delete_queue(c, NVL_NVME_ADM_DELETE_SQ, qp->qid);
err_cq:
	delete_queue(c, NVL_NVME_ADM_DELETE_CQ, qp->qid);
err:
	if (q->sq_map)
		munmap(q->sq_map, q->sq_size);
	if (q->cq_map)
		munmap(q->cq_map, q->cq_size);
	if (q->irq_fd >= 0)
		close(q->irq_fd);
	if (q->kick_fd >= 0)
		close(q->kick_fd);
	free(q);
	return rc;
}

static void
shm_qpair_destroy(struct nvl_qpair *qp)
{
	struct shm_hq *q = qp->tq;

	if (q == NULL)
		return;
	if (!host_is_dead(qp->c)) {
		delete_queue(qp->c, NVL_NVME_ADM_DELETE_SQ, qp->qid);
		delete_queue(qp->c, NVL_NVME_ADM_DELETE_CQ, qp->qid);
	}
	munmap(q->sq_map, q->sq_size);
	munmap(q->cq_map, q->cq_size);
	if (q->irq_fd >= 0)
		close(q->irq_fd);
	close(q->kick_fd);
	free(q);
	qp->tq = NULL;
}

static void
set_prp(struct nvl_ctrlr *c, struct host_req *r, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len)
{
	uint64_t off = (uint64_t)((uint8_t *)buf - c->win);
	uint64_t first = NVL_NVME_PAGE_SIZE - (off & (NVL_NVME_PAGE_SIZE - 1));

	cmd->flags &= ~0xc0u;
	cmd->dptr.prp.prp1 = off;
	cmd->dptr.prp.prp2 = 0;
	if (len <= first)
		return;
	if (len - first <= NVL_NVME_PAGE_SIZE) {
		cmd->dptr.prp.prp2 = off + first;
		return;
	}
	{
		uint64_t *list = r->prp_list;
		uint64_t page = off + first, left = len - first;
		unsigned n = 0;

		while (left > 0) {
			list[n++] = page;
			page += NVL_NVME_PAGE_SIZE;
			left = left > NVL_NVME_PAGE_SIZE ? left - NVL_NVME_PAGE_SIZE : 0;
		}
		cmd->dptr.prp.prp2 = (uint64_t)((uint8_t *)list - c->win);
	}
}

static int
shm_submit(struct nvl_qpair *qp, struct nvl_nvme_cmd *cmd, struct host_req *r, void *buf,
	   uint32_t len, enum nvl_xfer_dir dir)
{
	struct shm_hq *q = qp->tq;
	struct nvl_ctrlr *c = qp->c;
	uint64_t one = 1;

	(void)dir;
	if (shm_ring_full(q->sq_head, q->sq_tail, qp->entries))
		return -EAGAIN;
	if (len) {
		if (qp->opts.use_prp && r->prp_list)
			set_prp(c, r, cmd, buf, len);
		else
			set_sgl(c, cmd, buf, len);
	}
	memcpy(&q->sq[q->sq_tail], cmd, sizeof(*cmd));
	if (nvl_unlikely((++q->submits & 255) == 1))
		__atomic_store_n(&q->sqp->host_cpu, (uint32_t)sched_getcpu(), __ATOMIC_RELAXED);
	q->sq_tail = shm_ring_next(q->sq_tail, qp->entries);
	/* Publish the SQE before the tail; pairs with the acquire in the target's sq_poll(). */
	nvl_smp_store_release(&q->sqp->tail, q->sq_tail);
	if (shm_take_wakeup(&q->sqp->need_kick))
		(void)!write(q->kick_fd, &one, sizeof(one));
	return 0;
}

static int
shm_poll(struct nvl_qpair *qp, uint32_t max)
{
	struct shm_hq *q = qp->tq;
	uint32_t n = 0;

	if (q == NULL)
		return 0;
	while ((max == 0 || n < max) && shm_cqe_ready(&q->cq[q->cq_head], q->phase)) {
		struct nvl_nvme_cpl cpl = q->cq[q->cq_head];

		q->cq_head = shm_ring_next(q->cq_head, qp->entries);
		if (q->cq_head == 0)
			q->phase ^= 1;
		if (cpl.sqhd < qp->entries)
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
		host_complete(qp, &cpl);
	}
	if (n) {
		uint64_t now = nvl_now_ns();

		q->idle_polls = 0;
		/* how far apart batches of completions arrive (devices complete in
		 * bursts), for the adaptive spin in shm_wait */
		if (q->last_cpl_ns) {
			uint64_t gap = now - q->last_cpl_ns;

			q->gap_ewma_ns = q->gap_ewma_ns ? q->gap_ewma_ns - q->gap_ewma_ns / 8 + gap / 8 : gap;
		}
		q->last_cpl_ns = now;
	} else if (++q->idle_polls >= 65536) {
		/* busy-polling hosts never sleep in shm_wait: look for a hang-up now and then */
		struct shm_host *h = qp->c->tctx;
		struct pollfd pfd = { .fd = h->fd, .events = POLLRDHUP };

		q->idle_polls = 0;
		if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR)))
			host_set_dead(qp->c);
	}
	return (int)n;
}

/*
 * Spinning must not starve other work on this CPU: other hosts' processes
 * (several nvlend-perf or application processes pinned to one CPU) or the
 * application's own threads. While spinning, offer the CPU now and then; a
 * sched_yield() that comes back at once (~1.3 us here) says nobody else wanted
 * it, so offer it half as often next time, up to SHM_YIELD_MAX_NS apart, which
 * a lone spinner hardly pays for; one that took longer says another task ran,
 * so offer it every SHM_YIELD_MIN_NS. Measured on 2 vCPUs: 4 clients at QD8
 * on one CPU against a disk file went from ~75 K to ~140 K IOPS.
 */
static void
shm_spin_yield(struct shm_hq *q, uint64_t now)
{
	sched_yield();
	if (nvl_now_ns() - now >= SHM_YIELD_RAN_NS)
		q->yield_gap_ns = SHM_YIELD_MIN_NS;
	else
		q->yield_gap_ns = NVL_MIN(2 * q->yield_gap_ns, SHM_YIELD_MAX_NS);
}

static int
shm_wait(struct nvl_qpair *qp, int timeout_ms)
{
	struct shm_hq *q = qp->tq;
	uint64_t start = nvl_now_ns(), spin_ns = (uint64_t)qp->opts.spin_us * 1000, spin_end;
	uint64_t now = start, last_yield;
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms * 1000000;
	int n;

	/*
	 * Delayed on: spin while completions are likely, then sleep. With
	 * commands outstanding, the next batch of completions is likely within
	 * twice the usual gap between batches: a device that answers every
	 * 100 us keeps us polling (a sleep and a cross-CPU wake-up cost ~35 us
	 * each here), a quiet queue sleeps after spin_us. Bounded to 2 ms so a
	 * stalled device does not burn a CPU.
	 */
	if (qp->outstanding && q->gap_ewma_ns && qp->opts.spin_us)
		spin_ns = NVL_MAX(spin_ns, NVL_MIN(2 * q->gap_ewma_ns, 2000000ULL));
	spin_end = start + spin_ns;
	last_yield = start;
	do {
		n = shm_poll(qp, 0);
		if (n)
			return n;
		if (spin_ns == 0)
			break; /* no spinning asked for: sleep at once, no yield first */
		now = nvl_now_ns();
		if ((int)__atomic_load_n(&q->sqp->ctrl_cpu, __ATOMIC_RELAXED) == sched_getcpu()) {
			/* a daemon reactor sharing this CPU gets to run at once */
			sched_yield();
		} else if (now - last_yield >= q->yield_gap_ns) {
			shm_spin_yield(q, now);
			now = last_yield = nvl_now_ns();
		} else {
			nvl_cpu_relax();
		}
	} while (now < spin_end && now < deadline);
	for (;;) {
		struct shm_host *h = qp->c->tctx;
		/* sleep on the interrupt, and notice a controller that went away:
		 * its control socket hangs up (a daemon killed with -9 included) */
		struct pollfd pfd[2] = { { .fd = q->irq_fd, .events = POLLIN },
					 { .fd = h->fd, .events = POLLRDHUP } };
		int tmo;

		now = nvl_now_ns();
		if (now >= deadline)
			return 0;
		tmo = deadline == UINT64_MAX ? 1000 : (int)NVL_MIN((deadline - now) / 1000000 + 1, 1000u);
		if (q->irq_fd < 0) {
			/* polled queue: yield briefly */
			usleep(50);
			if (poll(&pfd[1], 1, 0) > 0 && (pfd[1].revents & (POLLHUP | POLLRDHUP | POLLERR)))
				host_set_dead(qp->c);
		} else {
			shm_arm_wakeup(&q->cqp->irq_armed);
			if (shm_cqe_ready(&q->cq[q->cq_head], q->phase)) {
				__atomic_store_n(&q->cqp->irq_armed, 0, __ATOMIC_RELAXED);
			} else if (poll(pfd, 2, tmo) > 0) {
				uint64_t v;

				if (pfd[0].revents & POLLIN)
					(void)!read(q->irq_fd, &v, sizeof(v));
				if (pfd[1].revents & (POLLHUP | POLLRDHUP | POLLERR))
					host_set_dead(qp->c);
			}
		}
		n = shm_poll(qp, 0);
		if (n)
			return n;
		if (host_is_dead(qp->c))
			return -ENOTCONN;
	}
}

const struct host_transport g_host_shm = {
	.kind = NVL_URI_NVME_SHM,
	.connect = shm_connect,
	.disconnect = shm_disconnect,
	.admin = shm_admin,
	.aer_submit = shm_aer_submit,
	.admin_poll = shm_admin_poll,
	.qpair_create = shm_qpair_create,
	.qpair_destroy = shm_qpair_destroy,
	.submit = shm_submit,
	.poll = shm_poll,
	.wait = shm_wait,
};
