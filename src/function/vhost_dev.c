/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost-user back-end device (vhost_user.c has the protocol and its
 * handlers): the listening socket and its one front-end at a time, reading
 * a message header first then its payload with the descriptors that come
 * along (vhost_rx_want/vhost_rx_feed, socket-free for the fuzzers), sending
 * replies, the connection's end, and the queue operations handlers wait on:
 * vhost_op_begin() stops the affected queues, the device reports each
 * stopped (vhost_dev_queue_stopped) and the operation's continuation runs
 * once all have; meanwhile the socket is not read.
 *
 * Threading: reactor 0 only.
 */
#include "function/vhost_internal.h"
#include "util/fault_guard.h"
#include "util/fdstore.h"
#include "util/log.h"
#include "util/sock.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

NVL_LOG_DECLARE_COMPONENT(vhost);

void
vhost_vq_cfg_reset(struct vhost_vq_cfg *vq)
{
	vhost_close_fd(&vq->kickfd);
	vhost_close_fd(&vq->callfd);
	vhost_close_fd(&vq->errfd);
	memset(vq, 0, sizeof(*vq));
	vq->kickfd = -1;
	vq->callfd = -1;
	vq->errfd = -1;
}

static int
vu_xmit_socket(struct vhost_dev *d, const void *buf, size_t len, int fd)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	ssize_t n;

	if (d->conn_fd < 0)
		return -ENOTCONN;
	n = nvl_sock_send_fds(d->conn_fd, &iov, 1, &fd, fd >= 0 ? 1 : 0, MSG_DONTWAIT);
	if (n < 0)
		return (int)n;
	/* replies are a few hundred bytes; a socket buffer that cannot take one
	 * means the front-end stopped reading */
	if ((size_t)n != len)
		return -EPIPE;
	return 0;
}

bool
vhost_dev_inflight_active(const struct vhost_dev *d)
{
	return d->inflight_base != NULL;
}

bool
vhost_dev_logging(const struct vhost_dev *d)
{
	return d->log != NULL && (d->features & (1ULL << NVL_VHOST_F_LOG_ALL));
}

/* ---- queue start/stop ------------------------------------------------------ */

static bool
vq_ready(const struct vhost_dev *d, const struct vhost_vq_cfg *vq)
{
	return d->mem && vq->num_set && vq->addr_set && vq->kick_set && vq->enabled &&
	       !vq->running && !vq->stopping;
}

static struct nvl_vhost_inflight_split *
vq_inflight(struct vhost_dev *d, unsigned q)
{
	const struct vhost_vq_cfg *vq = &d->vq[q];

	if (d->inflight_base == NULL || q >= d->inflight_nq)
		return NULL;
	if (d->inflight_qs != vq->num) {
		NVL_WARNLOG("vhost %s: queue %u: ring size %u but inflight region for %u: "
			    "no crash recovery for this queue", d->name, q, vq->num,
			    d->inflight_qs);
		return NULL;
	}
	return (struct nvl_vhost_inflight_split *)(d->inflight_base +
						   q * vring_inflight_queue_bytes(vq->num));
}

/*
 * While logging, the queue gets the log; with VHOST_VRING_F_LOG also the used
 * ring's guest physical address, which must name the very ring we write
 * (translated it gives the same bytes as used_user_addr) and lie inside the log.
 * \return 0; -EPROTO (a log address that would make us log the wrong pages).
 */
static int
vq_log_setup(struct vhost_dev *d, unsigned q, struct vhost_queue_params *p, uint64_t usz)
{
	const struct vhost_vq_cfg *vq = &d->vq[q];
	uint64_t gpa = vq->addr.log_guest_addr;

	if (!vhost_dev_logging(d))
		return 0;
	p->ring.log = d->log;
	if (!(vq->addr.flags & NVL_VHOST_VRING_F_LOG))
		return 0;
	if (vhost_mem_gpa(d->mem, gpa, usz) != p->ring.used || !vhost_log_covers(d->log, gpa, usz)) {
		NVL_ERRLOG("vhost %s: queue %u: used ring log address 0x%" PRIx64 " is not the used "
			   "ring (0x%" PRIx64 ") or lies beyond the log", d->name, q, gpa,
			   vq->addr.used_user_addr);
		return -EPROTO;
	}
	p->ring.log_used = true;
	p->ring.log_used_gpa = gpa;
	return 0;
}

int
vhost_start_queue(struct vhost_dev *d, unsigned q)
{
	struct vhost_vq_cfg *vq = &d->vq[q];
	struct vhost_queue_params p = { .kickfd = -1, .callfd = -1, .logfd = -1 };
	uint64_t dsz, asz, usz;
	int rc;

	if (!vq_ready(d, vq) || d->suspended)
		return 0; /* suspended: started by vhost_dev_resume() */
	dsz = (uint64_t)vq->num * sizeof(struct nvl_vring_desc);
	asz = sizeof(struct nvl_vring_avail) + (uint64_t)vq->num * 2 + 2;
	usz = sizeof(struct nvl_vring_used) + (uint64_t)vq->num * 8 + 2;
	p.ring.size = vq->num;
	p.ring.mem = d->mem;
	p.ring.features = d->features;
	p.ring.base = vq->base;
	p.ring.force_in_order = d->force_in_order;
	p.ring.desc = vhost_mem_uva(d->mem, vq->addr.desc_user_addr, dsz);
	p.ring.avail = vhost_mem_uva(d->mem, vq->addr.avail_user_addr, asz);
	p.ring.used = vhost_mem_uva(d->mem, vq->addr.used_user_addr, usz);
	if (!p.ring.desc || !p.ring.avail || !p.ring.used) {
		NVL_ERRLOG("vhost %s: queue %u: ring addresses outside guest memory "
			   "(desc 0x%" PRIx64 " avail 0x%" PRIx64 " used 0x%" PRIx64 ")",
			   d->name, q, vq->addr.desc_user_addr, vq->addr.avail_user_addr,
			   vq->addr.used_user_addr);
		return -EFAULT;
	}
	p.ring.inflight = vq_inflight(d, q);
	rc = vq_log_setup(d, q, &p, usz);
	if (rc < 0)
		return rc;
	if (vq->kickfd >= 0) {
		p.kickfd = fcntl(vq->kickfd, F_DUPFD_CLOEXEC, 0);
		if (p.kickfd < 0)
			return -errno;
	}
	if (vq->callfd >= 0) {
		p.callfd = fcntl(vq->callfd, F_DUPFD_CLOEXEC, 0);
		if (p.callfd < 0) {
			rc = -errno;
			goto err_close_kick;
		}
	}
	if (p.ring.log && d->log_fd >= 0) {
		p.logfd = fcntl(d->log_fd, F_DUPFD_CLOEXEC, 0);
		if (p.logfd < 0) {
			rc = -errno;
			goto err_close_call;
		}
	}
	rc = d->ops->queue_start(d, q, &p);
	if (rc < 0) {
		NVL_ERRLOG("vhost %s: queue %u: cannot start: %s", d->name, q, strerror(-rc));
		goto err_close_log;
	}
	vq->running = true;
	vq->logging = p.ring.log != NULL;
	{
		char what[96];

		snprintf(what, sizeof(what), "vhost %.64s queue %u", d->name, q);
		nvl_handover_resumed(what); /* after an upgrade: this queue serves again */
	}
	NVL_DEBUGLOG(vhost, "%s: queue %u running (size %u base %u inflight %s log %s)", d->name,
		     q, vq->num, vq->base, p.ring.inflight ? "yes" : "no",
		     p.ring.log_used ? "data+used" : p.ring.log ? "data" : "no");
	return 0;
err_close_log:
	vhost_close_fd(&p.logfd);
err_close_call:
	vhost_close_fd(&p.callfd);
err_close_kick:
	vhost_close_fd(&p.kickfd);
	return rc;
}

void
vhost_start_all(struct vhost_dev *d)
{
	for (unsigned q = 0; q < d->max_queues; q++) {
		/* a wrong log address ends the connection (after the operation running) */
		if (vhost_start_queue(d, q) == -EPROTO)
			d->close_requested = true;
	}
}

/* Begin an asynchronous operation: stop the queues in mask, then run cont. */
void
vhost_op_begin(struct vhost_dev *d, uint64_t mask, vhost_dev_cont_fn cont)
{
	if (d->op_active) {
		/* cannot happen: the socket is not read while an operation runs */
		NVL_ERRLOG("vhost %s: operation already active", d->name);
		abort();
	}
	d->op_active = true;
	d->op_cont = cont;
	d->op_pending = 1;  /* guard: completions inside queue_stop must not finish early */
	if (d->conn_h) {
		nvl_fd_del(d->conn_h);
		d->conn_h = NULL;
	}
	for (unsigned q = 0; q < d->max_queues; q++) {
		struct vhost_vq_cfg *vq = &d->vq[q];

		if (!(mask & (1ULL << q)) || !vq->running || vq->stopping)
			continue;
		vq->stopping = true;
		d->op_pending++;
		d->ops->queue_stop(d, q);
	}
	if (--d->op_pending == 0)
		vhost_op_finish(d);
}

int
vhost_dev_suspend(struct vhost_dev *d, vhost_dev_cont_fn cont)
{
	bool running = false;

	if (d->op_active)
		return -EBUSY;
	d->suspended = true;
	for (unsigned q = 0; q < d->max_queues; q++)
		running |= d->vq[q].running;
	if (d->state == VHOST_DEV_CONNECTED && running)
		vhost_op_begin(d, vhost_all_queues(d), cont);
	else
		cont(d);
	return 0;
}

void
vhost_dev_resume(struct vhost_dev *d)
{
	d->suspended = false;
	if (d->state == VHOST_DEV_CONNECTED && !d->op_active) {
		vhost_start_all(d);
		if (d->close_requested)
			vhost_close_conn(d);
	}
}

void
vhost_op_finish(struct vhost_dev *d)
{
	vhost_dev_cont_fn cont = d->op_cont;

	d->op_cont = NULL;
	cont(d);
	d->op_active = false;
	if (d->stop_requested) {
		vhost_stop_step(d);
		return;
	}
	if (d->close_requested && d->state == VHOST_DEV_CONNECTED) {
		vhost_close_conn(d);
		return;
	}
	vhost_resume_conn(d);
}

void
vhost_dev_queue_stopped(struct vhost_dev *d, unsigned q, uint16_t last_avail_idx)
{
	struct vhost_vq_cfg *vq;

	if (q >= d->max_queues)
		return;
	vq = &d->vq[q];
	vq->base = last_avail_idx;
	vq->running = false;
	vq->stopping = false;
	vq->logging = false;
	NVL_DEBUGLOG(vhost, "%s: queue %u stopped at avail index %u", d->name, q,
		     last_avail_idx);
	if (d->op_active && d->op_pending > 0 && --d->op_pending == 0)
		vhost_op_finish(d);
}

uint64_t
vhost_all_queues(const struct vhost_dev *d)
{
	return d->max_queues >= 64 ? ~0ULL : (1ULL << d->max_queues) - 1;
}

/* ---- connection ------------------------------------------------------------- */

static void
rx_reset(struct vhost_dev *d)
{
	for (unsigned i = 0; i < d->rx_nfds; i++)
		vhost_close_fd(&d->rx_fds[i]);
	d->rx_nfds = 0;
	d->rx_got = 0;
}

/*
 * Framing of the received byte stream, without the socket (the fuzzer drives
 * it with any split of the bytes and any fds): the header first, then exactly
 * the payload size it announces, checked against VHOST_MSG_MAX_PAYLOAD before
 * a payload byte is read. fds may come with any read of the message.
 */

/* Where the next bytes of the current message go. \return bytes wanted; 0: complete. */
size_t
vhost_rx_want(struct vhost_dev *d, void **buf)
{
	const size_t hs = sizeof(struct nvl_vhost_user_hdr);

	if (d->rx_got < hs) {
		*buf = (uint8_t *)&d->rx_hdr + d->rx_got;
		return hs - d->rx_got;
	}
	*buf = d->rx_payload + (d->rx_got - hs);
	return hs + d->rx_hdr.size - d->rx_got;
}

/*
 * Account one read: n bytes stored where vhost_rx_want() said (n == 0: the peer
 * closed), with fds[0..nfds) that came with it (taken over: kept for the
 * message, or closed beyond VHOST_MAX_FDS), truncated when the kernel had to
 * cut the control data (more fds than we have room for).
 * \return 1 message complete, 0 need more, -ECONNRESET, -EPROTO.
 */
int
vhost_rx_feed(struct vhost_dev *d, size_t n, const int *fds, size_t nfds, bool truncated)
{
	const size_t hs = sizeof(struct nvl_vhost_user_hdr);
	void *unused;

	for (size_t i = 0; i < nfds; i++) {
		if (d->rx_nfds < VHOST_MAX_FDS)
			d->rx_fds[d->rx_nfds++] = fds[i];
		else
			close(fds[i]);
	}
	if (truncated) {
		NVL_ERRLOG("vhost %s: too many file descriptors in one message", d->name);
		return -EPROTO;
	}
	if (n == 0)
		return -ECONNRESET;
	if (n > vhost_rx_want(d, &unused)) {
		/* our own invariant: reads never ask for more than that */
		NVL_ERRLOG("vhost %s: read of %zu bytes past the message", d->name, n);
		return -EPROTO;
	}
	d->rx_got += n;
	if (d->rx_got == hs && d->rx_hdr.size > VHOST_MSG_MAX_PAYLOAD) {
		NVL_ERRLOG("vhost %s: %s with a %u-byte payload (max %u)", d->name,
			   vhost_req_name(d->rx_hdr.request), d->rx_hdr.size,
			   VHOST_MSG_MAX_PAYLOAD);
		return -EPROTO;
	}
	return d->rx_got >= hs && vhost_rx_want(d, &unused) == 0 ? 1 : 0;
}

/* Read what is there of the current message. \return 1 complete, 0 need more, <0 drop. */
static int
vu_recv(struct vhost_dev *d)
{
	for (;;) {
		struct iovec iov;
		int fds[VHOST_MAX_FDS];
		unsigned nfds;
		int mflags = 0;
		ssize_t n;
		int rc;

		iov.iov_len = vhost_rx_want(d, &iov.iov_base);
		if (iov.iov_len == 0)
			return 1;
		/* more than VHOST_MAX_FDS descriptors: the rest are closed, MSG_CTRUNC */
		n = nvl_sock_recv_fds(d->conn_fd, &iov, 1, fds, VHOST_MAX_FDS, &nfds, MSG_DONTWAIT,
				      &mflags);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		rc = vhost_rx_feed(d, (size_t)n, fds, nfds, mflags & MSG_CTRUNC);
		if (rc != 0)
			return rc;
	}
}

static void
vu_conn_cb(void *arg, uint32_t events)
{
	struct vhost_dev *d = arg;
	int rc;

	(void)events;
	while (d->conn_fd >= 0 && !d->op_active) {
		rc = vu_recv(d);
		if (rc == 0)
			return;
		if (rc < 0) {
			if (rc == -ECONNRESET)
				NVL_NOTICELOG("vhost %s: front-end disconnected", d->name);
			else
				NVL_ERRLOG("vhost %s: connection error: %s", d->name,
					   strerror(-rc));
			rx_reset(d);
			vhost_close_conn(d);
			return;
		}
		rc = vhost_dev_handle_msg(d, &d->rx_hdr, d->rx_payload, d->rx_fds, d->rx_nfds);
		rx_reset(d);
		if (rc < 0) {
			vhost_close_conn(d);
			return;
		}
	}
}

void
vhost_resume_conn(struct vhost_dev *d)
{
	if (d->conn_fd < 0 || d->conn_h != NULL || d->op_active || d->xmit != vu_xmit_socket)
		return;
	d->conn_h = nvl_fd_add(d->conn_fd, EPOLLIN, vu_conn_cb, d);
	if (d->conn_h == NULL) {
		NVL_ERRLOG("vhost %s: cannot watch the connection: %s", d->name, strerror(errno));
		vhost_close_conn(d);
	}
}

static void
cont_close(struct vhost_dev *d)
{
	if (d->conn_h) {
		nvl_fd_del(d->conn_h);
		d->conn_h = NULL;
	}
	vhost_close_fd(&d->conn_fd);
	rx_reset(d);
	vhost_reset_state(d);
	vhost_mem_free(d->op_mem);
	d->op_mem = NULL;
	vhost_log_free(d->op_log);
	d->op_log = NULL;
	vhost_close_fd(&d->op_fd);
	d->close_requested = false;
	d->peer_pid = 0;
	d->peer_comm[0] = '\0';
	d->state = d->listen_fd >= 0 ? VHOST_DEV_LISTENING : VHOST_DEV_IDLE;
	if (d->ops->disconnected)
		d->ops->disconnected(d);
}

void
vhost_close_conn(struct vhost_dev *d)
{
	if (d->state != VHOST_DEV_CONNECTED)
		return;
	if (d->op_active) {
		d->close_requested = true;
		return;
	}
	d->state = VHOST_DEV_CLOSING;
	vhost_op_begin(d, vhost_all_queues(d), cont_close);
}

static void
vu_peer_info(struct vhost_dev *d)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char path[64];
	FILE *f;

	d->peer_pid = 0;
	d->peer_comm[0] = '\0';
	if (getsockopt(d->conn_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return;
	d->peer_pid = cred.pid;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)cred.pid);
	f = fopen(path, "re");
	if (f) {
		if (fgets(d->peer_comm, sizeof(d->peer_comm), f))
			d->peer_comm[strcspn(d->peer_comm, "\n")] = '\0';
		fclose(f);
	}
}

int
vhost_dev_attach(struct vhost_dev *d, int fd)
{
	d->conn_fd = fd;
	d->state = VHOST_DEV_CONNECTED;
	d->connect_ns = nvl_now_ns();
	d->connections++;
	vu_peer_info(d);
	if (d->ops->connected)
		d->ops->connected(d);
	vhost_resume_conn(d);
	return d->conn_fd >= 0 ? 0 : -EIO;
}

static void
vu_accept_cb(void *arg, int fd)
{
	struct vhost_dev *d = arg;

	if (d->state != VHOST_DEV_LISTENING || d->stop_requested) {
		/* one front-end at a time; QEMU retries (reconnect=N) */
		NVL_WARNLOG("vhost %s: refusing a second front-end while one is attached", d->name);
		close(fd);
		return;
	}
	NVL_NOTICELOG("vhost %s: front-end connected on %s", d->name, d->path);
	vhost_dev_attach(d, fd);
}

void
vhost_dev_init(struct vhost_dev *d)
{
	memset(d, 0, sizeof(*d));
	d->listen_fd = -1;
	d->conn_fd = -1;
	d->log_fd = -1;
	d->op_fd = -1;
	d->xmit = vu_xmit_socket;
	for (unsigned i = 0; i < VHOST_MAX_FDS; i++)
		d->rx_fds[i] = -1;
	for (unsigned q = 0; q < VHOST_MAX_QUEUES; q++) {
		d->vq[q].kickfd = -1;
		d->vq[q].callfd = -1;
		d->vq[q].errfd = -1;
	}
}

static int
vu_open_listener(void *arg, int *fd)
{
	return nvl_sock_listen_unix(arg, SOCK_STREAM, 0, 4, fd);
}

/* Its fd-store name: a worker that restarts listens on the same socket (a
 * front-end that reconnects meanwhile waits in the backlog). */
static void
vu_store_name(const char *path, char buf[NVL_FDSTORE_NAME_MAX + 1])
{
	nvl_fdstore_name(buf, "vhost.listen", path);
}

int
vhost_dev_listen(struct vhost_dev *d, const char *path)
{
	char name[96], sname[NVL_FDSTORE_NAME_MAX + 1];
	int fd, rc;

	if (strlen(path) >= sizeof(d->path))
		return -ENAMETOOLONG;
	vu_store_name(path, sname);
	rc = nvl_fdstore_listener(sname, vu_open_listener, (void *)path, &fd, NULL);
	if (rc < 0)
		return rc == -EINVAL ? -ENAMETOOLONG : rc;
	snprintf(name, sizeof(name), "vhost %s", d->name);
	d->listen_h = nvl_acceptor_create(fd, name, 0, vu_accept_cb, d);
	if (d->listen_h == NULL) {
		rc = errno ? -errno : -EIO;
		(void)nvl_fdstore_remove(sname);
		close(fd);
		unlink(path);
		return rc;
	}
	d->listen_fd = fd;
	nvl_strlcpy(d->path, path, sizeof(d->path));
	d->state = VHOST_DEV_LISTENING;
	return 0;
}

static void
vu_stop_done_msg(void *arg)
{
	struct vhost_dev *d = arg;
	vhost_dev_done_fn done = d->stop_done;

	d->stop_done = NULL;
	/* from the reactor loop: the callback may free d */
	if (done)
		done(d, d->stop_arg);
}

void
vhost_stop_step(struct vhost_dev *d)
{
	if (d->op_active)
		return;   /* vhost_op_finish() calls again */
	if (d->state == VHOST_DEV_CONNECTED || d->state == VHOST_DEV_CLOSING) {
		d->state = VHOST_DEV_CLOSING;
		vhost_op_begin(d, vhost_all_queues(d), cont_close);
		return;   /* ends in vhost_op_finish() -> here, with the connection gone */
	}
	d->state = VHOST_DEV_IDLE;
	d->stop_requested = false;
	if (d->stop_done && nvl_reactor_msg(nvl_reactor_self(), vu_stop_done_msg, d) < 0)
		vu_stop_done_msg(d);
}

void
vhost_dev_stop(struct vhost_dev *d, vhost_dev_done_fn done, void *arg)
{
	d->stop_requested = true;
	d->stop_done = done;
	d->stop_arg = arg;
	if (d->listen_h) {
		nvl_acceptor_destroy(d->listen_h);
		d->listen_h = NULL;
	}
	if (d->listen_fd >= 0) {
		char sname[NVL_FDSTORE_NAME_MAX + 1];

		vu_store_name(d->path, sname);
		(void)nvl_fdstore_remove(sname);
		vhost_close_fd(&d->listen_fd);
		unlink(d->path);
	}
	vhost_stop_step(d);
}
