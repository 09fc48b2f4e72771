/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost-user back-end protocol (QEMU docs/interop/vhost-user.rst) on one
 * listening Unix socket, one front-end at a time.
 *
 * Messages are received header first, then the payload (vu_rx_want /
 * vu_rx_feed, socket-free so that the fuzzer drives them; SCM_RIGHTS fds may
 * come with any read of a message); the size is checked against
 * VHOST_MSG_MAX_PAYLOAD before anything is read, every payload against the
 * exact size its request needs.
 * Requests that change what a running queue uses (SET_MEM_TABLE,
 * GET_VRING_BASE, SET_VRING_ENABLE 0, SET_FEATURES, resets, disconnect) stop
 * the affected queues first: the device finishes their in-flight I/O and
 * reports back (vhost_dev_queue_stopped); meanwhile the socket is not read,
 * so the front-end's next message waits, and the reply goes out when the
 * operation is complete. A ring runs when it has a size, addresses, a base,
 * a kick fd (or polling) and is enabled (rings start disabled once
 * VHOST_USER_F_PROTOCOL_FEATURES is negotiated).
 *
 * Errors: a message that breaks the protocol (bad version, oversized, wrong
 * payload size for a request with a reply) drops the connection; a request
 * we refuse gets a REPLY_ACK failure when the front-end asked for one and a
 * log line otherwise.
 *
 * Threading: reactor 0 only.
 */
#include "function/vhost_internal.h"
#include "util/fault_guard.h"
#include "util/log.h"
#include "util/sock.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(vhost)

#define VU_PROTOCOL_FEATURES                                                                       \
	((1ULL << NVL_VHOST_USER_PROTOCOL_F_MQ) | (1ULL << NVL_VHOST_USER_PROTOCOL_F_REPLY_ACK) |  \
	 (1ULL << NVL_VHOST_USER_PROTOCOL_F_CONFIG) |                                              \
	 (1ULL << NVL_VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |                                      \
	 (1ULL << NVL_VHOST_USER_PROTOCOL_F_RESET_DEVICE))

/* Handler results besides -errno */
#define VU_OK 0
#define VU_ASYNC 1          /* reply will be sent when the operation completes */
#define VU_REPLIED 2        /* the handler sent its own reply */

static const char *const g_req_names[] = {
	[NVL_VHOST_USER_GET_FEATURES] = "GET_FEATURES",
	[NVL_VHOST_USER_SET_FEATURES] = "SET_FEATURES",
	[NVL_VHOST_USER_SET_OWNER] = "SET_OWNER",
	[NVL_VHOST_USER_RESET_OWNER] = "RESET_OWNER",
	[NVL_VHOST_USER_SET_MEM_TABLE] = "SET_MEM_TABLE",
	[NVL_VHOST_USER_SET_LOG_BASE] = "SET_LOG_BASE",
	[NVL_VHOST_USER_SET_LOG_FD] = "SET_LOG_FD",
	[NVL_VHOST_USER_SET_VRING_NUM] = "SET_VRING_NUM",
	[NVL_VHOST_USER_SET_VRING_ADDR] = "SET_VRING_ADDR",
	[NVL_VHOST_USER_SET_VRING_BASE] = "SET_VRING_BASE",
	[NVL_VHOST_USER_GET_VRING_BASE] = "GET_VRING_BASE",
	[NVL_VHOST_USER_SET_VRING_KICK] = "SET_VRING_KICK",
	[NVL_VHOST_USER_SET_VRING_CALL] = "SET_VRING_CALL",
	[NVL_VHOST_USER_SET_VRING_ERR] = "SET_VRING_ERR",
	[NVL_VHOST_USER_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
	[NVL_VHOST_USER_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
	[NVL_VHOST_USER_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
	[NVL_VHOST_USER_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
	[NVL_VHOST_USER_SEND_RARP] = "SEND_RARP",
	[NVL_VHOST_USER_NET_SET_MTU] = "NET_SET_MTU",
	[NVL_VHOST_USER_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
	[NVL_VHOST_USER_IOTLB_MSG] = "IOTLB_MSG",
	[NVL_VHOST_USER_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
	[NVL_VHOST_USER_GET_CONFIG] = "GET_CONFIG",
	[NVL_VHOST_USER_SET_CONFIG] = "SET_CONFIG",
	[NVL_VHOST_USER_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
	[NVL_VHOST_USER_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
	[NVL_VHOST_USER_RESET_DEVICE] = "RESET_DEVICE",
	[NVL_VHOST_USER_VRING_KICK] = "VRING_KICK",
	[NVL_VHOST_USER_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
	[NVL_VHOST_USER_ADD_MEM_REG] = "ADD_MEM_REG",
	[NVL_VHOST_USER_REM_MEM_REG] = "REM_MEM_REG",
	[NVL_VHOST_USER_SET_STATUS] = "SET_STATUS",
	[NVL_VHOST_USER_GET_STATUS] = "GET_STATUS",
};

const char *
vhost_req_name(uint32_t req)
{
	if (req < NVL_ARRAY_SIZE(g_req_names) && g_req_names[req])
		return g_req_names[req];
	return "UNKNOWN";
}

static void vu_resume_conn(struct vhost_dev *d);
static void vu_close_conn(struct vhost_dev *d);
static void vu_op_finish(struct vhost_dev *d);
static void vu_stop_step(struct vhost_dev *d);

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void
vq_cfg_reset(struct vhost_vq_cfg *vq)
{
	close_fd(&vq->kickfd);
	close_fd(&vq->callfd);
	close_fd(&vq->errfd);
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

static int
vu_reply(struct vhost_dev *d, const struct nvl_vhost_user_hdr *req, const void *payload,
	 uint32_t size, int fd)
{
	uint8_t buf[sizeof(struct nvl_vhost_user_hdr) + sizeof(struct nvl_vhost_user_config)];
	struct nvl_vhost_user_hdr h = {
		.request = req->request,
		.flags = NVL_VHOST_USER_VERSION | NVL_VHOST_USER_FLAG_REPLY,
		.size = size,
	};
	int rc;

	if (size > sizeof(buf) - sizeof(h))
		return -EINVAL;
	memcpy(buf, &h, sizeof(h));
	if (size)
		memcpy(buf + sizeof(h), payload, size);
	rc = d->xmit(d, buf, sizeof(h) + size, fd);
	if (rc < 0)
		NVL_ERRLOG("vhost %s: cannot send the %s reply: %s", d->name,
			   vhost_req_name(req->request), strerror(-rc));
	return rc;
}

static int
vu_reply_u64(struct vhost_dev *d, const struct nvl_vhost_user_hdr *req, uint64_t v)
{
	return vu_reply(d, req, &v, sizeof(v), -1);
}

/* REPLY_ACK: 0 = success, non-zero = failure */
static int
vu_ack(struct vhost_dev *d, const struct nvl_vhost_user_hdr *req, int rc)
{
	if (!(d->protocol_features & (1ULL << NVL_VHOST_USER_PROTOCOL_F_REPLY_ACK)) ||
	    !(req->flags & NVL_VHOST_USER_FLAG_NEED_REPLY))
		return 0;
	return vu_reply_u64(d, req, rc < 0 ? 1 : 0);
}

bool
vhost_dev_inflight_active(const struct vhost_dev *d)
{
	return d->inflight_base != NULL;
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

static int
vu_start_queue(struct vhost_dev *d, unsigned q)
{
	struct vhost_vq_cfg *vq = &d->vq[q];
	struct vhost_queue_params p = { .kickfd = -1, .callfd = -1 };
	uint64_t dsz, asz, usz;
	int rc;

	if (!vq_ready(d, vq))
		return 0;
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
	if (vq->kickfd >= 0) {
		p.kickfd = fcntl(vq->kickfd, F_DUPFD_CLOEXEC, 0);
		if (p.kickfd < 0)
			return -errno;
	}
	if (vq->callfd >= 0) {
		p.callfd = fcntl(vq->callfd, F_DUPFD_CLOEXEC, 0);
		if (p.callfd < 0) {
			rc = -errno;
			close_fd(&p.kickfd);
			return rc;
		}
	}
	rc = d->ops->queue_start(d, q, &p);
	if (rc < 0) {
		NVL_ERRLOG("vhost %s: queue %u: cannot start: %s", d->name, q, strerror(-rc));
		close_fd(&p.kickfd);
		close_fd(&p.callfd);
		return rc;
	}
	vq->running = true;
	NVL_DEBUGLOG(vhost, "%s: queue %u running (size %u base %u inflight %s)", d->name, q,
		     vq->num, vq->base, p.ring.inflight ? "yes" : "no");
	return 0;
}

static void
vu_start_all(struct vhost_dev *d)
{
	for (unsigned q = 0; q < d->max_queues; q++)
		vu_start_queue(d, q);
}

/* Begin an asynchronous operation: stop the queues in mask, then run cont. */
static void
vu_op_begin(struct vhost_dev *d, uint64_t mask, vhost_dev_cont_fn cont)
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
		vu_op_finish(d);
}

static void
vu_op_finish(struct vhost_dev *d)
{
	vhost_dev_cont_fn cont = d->op_cont;

	d->op_cont = NULL;
	cont(d);
	d->op_active = false;
	if (d->stop_requested) {
		vu_stop_step(d);
		return;
	}
	if (d->close_requested && d->state == VHOST_DEV_CONNECTED) {
		vu_close_conn(d);
		return;
	}
	vu_resume_conn(d);
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
	NVL_DEBUGLOG(vhost, "%s: queue %u stopped at avail index %u", d->name, q,
		     last_avail_idx);
	if (d->op_active && d->op_pending > 0 && --d->op_pending == 0)
		vu_op_finish(d);
}

static uint64_t
vu_all_queues(const struct vhost_dev *d)
{
	return d->max_queues >= 64 ? ~0ULL : (1ULL << d->max_queues) - 1;
}

/* ---- message handlers ------------------------------------------------------- */

static int
need_size(const struct nvl_vhost_user_hdr *h, uint32_t size)
{
	if (h->size != size) {
		NVL_ERRLOG("vhost: %s with %u payload bytes (expected %u)",
			   vhost_req_name(h->request), h->size, size);
		return -EINVAL;
	}
	return 0;
}

static int
vring_index(const struct vhost_dev *d, uint32_t idx)
{
	if (idx >= d->max_queues) {
		NVL_ERRLOG("vhost %s: vring index %u out of range (%u queues)", d->name, idx,
			   d->max_queues);
		return -ERANGE;
	}
	return (int)idx;
}

static uint64_t
vu_offered_features(const struct vhost_dev *d)
{
	return d->dev_features | (1ULL << NVL_VIRTIO_F_VERSION_1) |
	       (1ULL << NVL_VIRTIO_RING_F_INDIRECT_DESC) | (1ULL << NVL_VIRTIO_RING_F_EVENT_IDX) |
	       (1ULL << NVL_VHOST_USER_F_PROTOCOL_FEATURES);
}

static void
cont_set_features(struct vhost_dev *d)
{
	vu_start_all(d);
	vu_ack(d, &d->op_hdr, 0);
}

static int
h_set_features(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p)
{
	uint64_t f;
	bool was_running = false;

	if (need_size(h, 8) < 0)
		return -EINVAL;
	memcpy(&f, p, 8);
	if (f & ~vu_offered_features(d)) {
		NVL_ERRLOG("vhost %s: front-end acked features 0x%" PRIx64 " we did not offer",
			   d->name, f & ~vu_offered_features(d));
		return -EINVAL;
	}
	for (unsigned q = 0; q < d->max_queues; q++)
		was_running |= d->vq[q].running;
	d->features = f;
	d->features_set = true;
	/* Without protocol features rings are enabled from the start. */
	if (!(f & (1ULL << NVL_VHOST_USER_F_PROTOCOL_FEATURES))) {
		for (unsigned q = 0; q < d->max_queues; q++)
			d->vq[q].enabled = true;
	}
	if (was_running) {
		/* ring behaviour (event idx) changes: restart the queues with it */
		d->op_hdr = *h;
		d->op_mem = NULL;
		vu_op_begin(d, vu_all_queues(d), cont_set_features);
		return VU_ASYNC;
	}
	return VU_OK;
}

static void
cont_set_mem_table(struct vhost_dev *d)
{
	vhost_mem_free(d->mem);
	d->mem = d->op_mem;
	d->op_mem = NULL;
	vu_start_all(d);
	vu_ack(d, &d->op_hdr, 0);
}

static int
h_set_mem_table(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p,
		int *fds, unsigned nfds)
{
	struct nvl_vhost_memory tbl;
	struct vhost_mem *m;
	int rc;

	memset(&tbl, 0, sizeof(tbl));
	if (h->size < 8 || h->size > sizeof(tbl))
		return -EINVAL;
	memcpy(&tbl, p, h->size);
	if (tbl.nregions == 0 || tbl.nregions > NVL_VHOST_MEMORY_BASELINE_NREGIONS ||
	    h->size != 8 + tbl.nregions * sizeof(struct nvl_vhost_memory_region)) {
		NVL_ERRLOG("vhost %s: SET_MEM_TABLE with %u regions in %u bytes", d->name,
			   tbl.nregions, h->size);
		return -EINVAL;
	}
	rc = vhost_mem_map(&tbl, fds, nfds, &m);
	if (rc < 0) {
		NVL_ERRLOG("vhost %s: cannot map guest memory: %s", d->name, strerror(-rc));
		return rc;
	}
	for (unsigned i = 0; i < m->nregions; i++)
		NVL_DEBUGLOG(vhost, "%s: region %u gpa 0x%" PRIx64 " size 0x%" PRIx64
			     " uva 0x%" PRIx64, d->name, i, m->r[i].gpa, m->r[i].size,
			     m->r[i].uva);
	d->op_hdr = *h;
	d->op_mem = m;
	/* queues translate through the old table until they stopped */
	vu_op_begin(d, vu_all_queues(d), cont_set_mem_table);
	return VU_ASYNC;
}

static int
h_set_vring_num(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p)
{
	struct nvl_vhost_vring_state s;
	int q;

	if (need_size(h, sizeof(s)) < 0)
		return -EINVAL;
	memcpy(&s, p, sizeof(s));
	q = vring_index(d, s.index);
	if (q < 0)
		return q;
	if (s.num == 0 || s.num > VHOST_MAX_RING || !NVL_IS_POW2(s.num)) {
		NVL_ERRLOG("vhost %s: queue %d: ring size %u (a power of two up to %u)", d->name,
			   q, s.num, VHOST_MAX_RING);
		return -EINVAL;
	}
	if (d->vq[q].running)
		return -EBUSY;
	d->vq[q].num = (uint16_t)s.num;
	d->vq[q].num_set = true;
	return VU_OK;
}

static int
h_set_vring_addr(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p)
{
	struct nvl_vhost_vring_addr a;
	int q;

	if (need_size(h, sizeof(a)) < 0)
		return -EINVAL;
	memcpy(&a, p, sizeof(a));
	q = vring_index(d, a.index);
	if (q < 0)
		return q;
	if (a.flags & NVL_VHOST_VRING_F_LOG) {
		NVL_ERRLOG("vhost %s: queue %d: used ring logging asked, not offered", d->name, q);
		return -ENOTSUP;
	}
	if (d->vq[q].running)
		return -EBUSY;
	d->vq[q].addr = a;
	d->vq[q].addr_set = true;
	return VU_OK;
}

static int
h_set_vring_base(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p)
{
	struct nvl_vhost_vring_state s;
	int q;

	if (need_size(h, sizeof(s)) < 0)
		return -EINVAL;
	memcpy(&s, p, sizeof(s));
	q = vring_index(d, s.index);
	if (q < 0)
		return q;
	if (s.num > UINT16_MAX)
		return -EINVAL;
	if (d->vq[q].running)
		return -EBUSY;
	d->vq[q].base = (uint16_t)s.num;
	return VU_OK;
}

static void
cont_get_vring_base(struct vhost_dev *d)
{
	struct vhost_vq_cfg *vq = &d->vq[d->op_index];
	struct nvl_vhost_vring_state s = { .index = d->op_index, .num = vq->base };

	/* the ring is stopped now; it restarts with a new SET_VRING_KICK */
	vq->kick_set = false;
	close_fd(&vq->kickfd);
	if (vu_reply(d, &d->op_hdr, &s, sizeof(s), -1) < 0)
		d->close_requested = true;
}

static int
h_get_vring_base(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p)
{
	struct nvl_vhost_vring_state s;
	int q;

	if (need_size(h, sizeof(s)) < 0)
		return -EINVAL;
	memcpy(&s, p, sizeof(s));
	q = vring_index(d, s.index);
	if (q < 0)
		return q;
	d->op_hdr = *h;
	d->op_index = (uint32_t)q;
	vu_op_begin(d, 1ULL << q, cont_get_vring_base);
	return VU_ASYNC;
}

/* SET_VRING_KICK / CALL / ERR: u64 index | NOFD flag, fd in the message */
static int
vring_file(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p, int *fds,
	   unsigned nfds, int *fd_out)
{
	uint64_t v;
	int q;

	if (need_size(h, 8) < 0)
		return -EINVAL;
	memcpy(&v, p, 8);
	if (v & ~(uint64_t)(NVL_VHOST_USER_VRING_IDX_MASK | NVL_VHOST_USER_VRING_NOFD_MASK))
		return -EINVAL;
	q = vring_index(d, (uint32_t)(v & NVL_VHOST_USER_VRING_IDX_MASK));
	if (q < 0)
		return q;
	if (v & NVL_VHOST_USER_VRING_NOFD_MASK) {
		if (nfds != 0)
			return -EINVAL;
		*fd_out = -1;
	} else {
		if (nfds != 1)
			return -EINVAL;
		*fd_out = fds[0];
		fds[0] = -1;
	}
	return q;
}

static int
h_set_vring_kick(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p,
		 int *fds, unsigned nfds)
{
	int fd, q = vring_file(d, h, p, fds, nfds, &fd);

	if (q < 0)
		return q;
	if (d->vq[q].running) {
		/* a new kick fd for a running ring: not something QEMU does */
		close_fd(&fd);
		return -EBUSY;
	}
	close_fd(&d->vq[q].kickfd);
	d->vq[q].kickfd = fd;
	d->vq[q].kick_set = true;
	if (!(d->features & (1ULL << NVL_VHOST_USER_F_PROTOCOL_FEATURES)))
		d->vq[q].enabled = true;
	return vu_start_queue(d, (unsigned)q) < 0 ? -EIO : VU_OK;
}

static int
h_set_vring_call(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p,
		 int *fds, unsigned nfds)
{
	int fd, q = vring_file(d, h, p, fds, nfds, &fd);

	if (q < 0)
		return q;
	close_fd(&d->vq[q].callfd);
	d->vq[q].callfd = fd;
	if (d->vq[q].running) {
		/* QEMU swaps call fds on the fly (interrupt masking) */
		int dup = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;

		if (fd >= 0 && dup < 0)
			return -errno;
		d->ops->queue_set_call(d, (unsigned)q, dup);
	}
	return VU_OK;
}

static int
h_set_vring_err(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p,
		int *fds, unsigned nfds)
{
	int fd, q = vring_file(d, h, p, fds, nfds, &fd);

	if (q < 0)
		return q;
	close_fd(&d->vq[q].errfd);
	d->vq[q].errfd = fd;
	return VU_OK;
}

static void
cont_vring_disable(struct vhost_dev *d)
{
	vu_ack(d, &d->op_hdr, 0);
}

static int
h_set_vring_enable(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p)
{
	struct nvl_vhost_vring_state s;
	int q;

	if (need_size(h, sizeof(s)) < 0)
		return -EINVAL;
	memcpy(&s, p, sizeof(s));
	q = vring_index(d, s.index);
	if (q < 0)
		return q;
	if (s.num > 1)
		return -EINVAL;
	d->vq[q].enabled = s.num == 1;
	if (s.num == 1)
		return vu_start_queue(d, (unsigned)q) < 0 ? -EIO : VU_OK;
	if (d->vq[q].running) {
		d->op_hdr = *h;
		vu_op_begin(d, 1ULL << q, cont_vring_disable);
		return VU_ASYNC;
	}
	return VU_OK;
}

static int
h_get_config(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p)
{
	struct nvl_vhost_user_config c;
	uint32_t end;

	memset(&c, 0, sizeof(c));
	if (h->size < NVL_VHOST_USER_CONFIG_HDR_SIZE || h->size > sizeof(c))
		return -EINVAL;
	memcpy(&c, p, h->size);
	if (c.size > NVL_VHOST_USER_MAX_CONFIG_SIZE ||
	    h->size != NVL_VHOST_USER_CONFIG_HDR_SIZE + c.size ||
	    __builtin_add_overflow(c.offset, c.size, &end) || end > NVL_VHOST_USER_MAX_CONFIG_SIZE) {
		NVL_ERRLOG("vhost %s: GET_CONFIG offset %u size %u in %u bytes", d->name, c.offset,
			   c.size, h->size);
		return -EINVAL;
	}
	memset(c.region, 0, sizeof(c.region));
	d->ops->get_config(d, c.region, c.offset, c.size);
	return vu_reply(d, h, &c, NVL_VHOST_USER_CONFIG_HDR_SIZE + c.size, -1) < 0 ? -EPIPE
										     : VU_REPLIED;
}

static int
h_get_inflight_fd(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p)
{
	struct nvl_vhost_inflight_msg m;
	uint64_t size;
	int fd, rc;

	memset(&m, 0, sizeof(m));
	if (h->size < NVL_VHOST_INFLIGHT_MSG_MIN || h->size > sizeof(m))
		return -EINVAL;
	memcpy(&m, p, h->size);
	if (m.num_queues == 0 || m.num_queues > d->max_queues || m.queue_size == 0 ||
	    m.queue_size > VHOST_MAX_RING || !NVL_IS_POW2(m.queue_size)) {
		NVL_ERRLOG("vhost %s: GET_INFLIGHT_FD for %u queues of %u entries", d->name,
			   m.num_queues, m.queue_size);
		return -EINVAL;
	}
	size = vring_inflight_queue_bytes(m.queue_size) * m.num_queues;
	fd = memfd_create("nvlend-vblk-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	/* sealed before it leaves: the front-end maps it and hands it back on
	 * SET_INFLIGHT_FD, and must never be able to shrink what we then map */
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	/* a new memfd reads as zeroes: every queue region starts at version 0 */
	m.mmap_size = size;
	m.mmap_offset = 0;
	rc = vu_reply(d, h, &m, sizeof(m), fd);
	close(fd);
	NVL_DEBUGLOG(vhost, "%s: inflight region of %" PRIu64 " bytes for %u x %u", d->name,
		     size, m.num_queues, m.queue_size);
	return rc < 0 ? -EPIPE : VU_REPLIED;
}

static void
vu_unmap_inflight(struct vhost_dev *d)
{
	nvl_fault_guard_del(d->inflight_guard - 1);
	d->inflight_guard = 0;
	d->inflight_tripped = false;
	if (d->inflight_map)
		munmap(d->inflight_map, d->inflight_map_len);
	d->inflight_map = NULL;
	d->inflight_map_len = 0;
	d->inflight_base = NULL;
	d->inflight_nq = 0;
	d->inflight_qs = 0;
}

static int
h_set_inflight_fd(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p,
		  int *fds, unsigned nfds)
{
	struct nvl_vhost_inflight_msg m;
	struct stat st;
	uint64_t need, end;
	void *map;

	memset(&m, 0, sizeof(m));
	if (h->size < NVL_VHOST_INFLIGHT_MSG_MIN || h->size > sizeof(m) || nfds != 1)
		return -EINVAL;
	memcpy(&m, p, h->size);
	for (unsigned q = 0; q < d->max_queues; q++) {
		if (d->vq[q].running)
			return -EBUSY;
	}
	if (m.num_queues == 0 || m.num_queues > d->max_queues || m.queue_size == 0 ||
	    m.queue_size > VHOST_MAX_RING || !NVL_IS_POW2(m.queue_size))
		return -EINVAL;
	need = vring_inflight_queue_bytes(m.queue_size) * m.num_queues;
	if (m.mmap_size < need || m.mmap_size > VHOST_INFLIGHT_MAX_BYTES ||
	    (m.mmap_offset & 4095) || __builtin_add_overflow(m.mmap_offset, m.mmap_size, &end)) {
		NVL_ERRLOG("vhost %s: SET_INFLIGHT_FD size %" PRIu64 " offset %" PRIu64
			   " for %u x %u (needs %" PRIu64 ")", d->name, m.mmap_size,
			   m.mmap_offset, m.num_queues, m.queue_size, need);
		return -EINVAL;
	}
	if (fstat(fds[0], &st) < 0 || (S_ISREG(st.st_mode) && (uint64_t)st.st_size < end))
		return -EINVAL;
	map = mmap(NULL, (size_t)m.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0],
		   (off_t)m.mmap_offset);
	if (map == MAP_FAILED)
		return -errno;
	vu_unmap_inflight(d);
	if (!vhost_fd_sealed(fds[0])) {
		/* not the sealed memfd we made: a truncation must not fault us */
		int g = nvl_fault_guard_add(map, (size_t)m.mmap_size, &d->inflight_tripped);

		if (g < 0) {
			munmap(map, (size_t)m.mmap_size);
			return g;
		}
		d->inflight_guard = g + 1;
	}
	d->inflight_map = map;
	d->inflight_map_len = (size_t)m.mmap_size;
	d->inflight_base = map;
	d->inflight_nq = m.num_queues;
	d->inflight_qs = m.queue_size;
	NVL_DEBUGLOG(vhost, "%s: inflight region installed: %u x %u", d->name, m.num_queues,
		     m.queue_size);
	return VU_OK;
}

static void
vu_reset_state(struct vhost_dev *d)
{
	for (unsigned q = 0; q < VHOST_MAX_QUEUES; q++)
		vq_cfg_reset(&d->vq[q]);
	vhost_mem_free(d->mem);
	d->mem = NULL;
	vu_unmap_inflight(d);
	d->features = 0;
	d->features_set = false;
	d->protocol_features = 0;
	d->owner = false;
}

static void
cont_reset(struct vhost_dev *d)
{
	uint64_t pf = d->protocol_features;

	/* rings, memory and inflight region go; the session's protocol
	 * negotiation stays (the front-end keeps ownership through a reset) */
	vu_reset_state(d);
	d->protocol_features = pf;
	d->owner = true;
	vu_ack(d, &d->op_hdr, 0);
}

static int
vu_dispatch(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p, int *fds,
	    unsigned nfds)
{
	uint64_t v;

	switch (h->request) {
	case NVL_VHOST_USER_GET_FEATURES:
		return vu_reply_u64(d, h, vu_offered_features(d)) < 0 ? -EPIPE : VU_REPLIED;
	case NVL_VHOST_USER_SET_FEATURES:
		return h_set_features(d, h, p);
	case NVL_VHOST_USER_SET_OWNER:
		d->owner = true;
		return VU_OK;
	case NVL_VHOST_USER_RESET_OWNER:
	case NVL_VHOST_USER_RESET_DEVICE:
		d->op_hdr = *h;
		vu_op_begin(d, vu_all_queues(d), cont_reset);
		return VU_ASYNC;
	case NVL_VHOST_USER_GET_PROTOCOL_FEATURES:
		return vu_reply_u64(d, h, VU_PROTOCOL_FEATURES) < 0 ? -EPIPE : VU_REPLIED;
	case NVL_VHOST_USER_SET_PROTOCOL_FEATURES:
		if (need_size(h, 8) < 0)
			return -EINVAL;
		memcpy(&v, p, 8);
		if (v & ~VU_PROTOCOL_FEATURES) {
			NVL_ERRLOG("vhost %s: protocol features 0x%" PRIx64 " not offered",
				   d->name, (uint64_t)(v & ~VU_PROTOCOL_FEATURES));
			return -EINVAL;
		}
		d->protocol_features = v;
		return VU_OK;
	case NVL_VHOST_USER_GET_QUEUE_NUM:
		return vu_reply_u64(d, h, d->max_queues) < 0 ? -EPIPE : VU_REPLIED;
	case NVL_VHOST_USER_SET_MEM_TABLE:
		return h_set_mem_table(d, h, p, fds, nfds);
	case NVL_VHOST_USER_SET_VRING_NUM:
		return h_set_vring_num(d, h, p);
	case NVL_VHOST_USER_SET_VRING_ADDR:
		return h_set_vring_addr(d, h, p);
	case NVL_VHOST_USER_SET_VRING_BASE:
		return h_set_vring_base(d, h, p);
	case NVL_VHOST_USER_GET_VRING_BASE:
		return h_get_vring_base(d, h, p);
	case NVL_VHOST_USER_SET_VRING_KICK:
		return h_set_vring_kick(d, h, p, fds, nfds);
	case NVL_VHOST_USER_SET_VRING_CALL:
		return h_set_vring_call(d, h, p, fds, nfds);
	case NVL_VHOST_USER_SET_VRING_ERR:
		return h_set_vring_err(d, h, p, fds, nfds);
	case NVL_VHOST_USER_SET_VRING_ENABLE:
		return h_set_vring_enable(d, h, p);
	case NVL_VHOST_USER_GET_CONFIG:
		return h_get_config(d, h, p);
	case NVL_VHOST_USER_SET_CONFIG:
		/* nothing in our config is writable (no VIRTIO_BLK_F_CONFIG_WCE) */
		return -ENOTSUP;
	case NVL_VHOST_USER_GET_INFLIGHT_FD:
		return h_get_inflight_fd(d, h, p);
	case NVL_VHOST_USER_SET_INFLIGHT_FD:
		return h_set_inflight_fd(d, h, p, fds, nfds);
	default:
		NVL_WARNLOG("vhost %s: %s (%u) not supported", d->name,
			    vhost_req_name(h->request), h->request);
		return -ENOTSUP;
	}
}

/* Requests whose reply is not a REPLY_ACK: failing them must drop the
 * connection, or the front-end waits forever. */
static bool
has_own_reply(uint32_t req)
{
	switch (req) {
	case NVL_VHOST_USER_GET_FEATURES:
	case NVL_VHOST_USER_GET_PROTOCOL_FEATURES:
	case NVL_VHOST_USER_GET_QUEUE_NUM:
	case NVL_VHOST_USER_GET_VRING_BASE:
	case NVL_VHOST_USER_GET_CONFIG:
	case NVL_VHOST_USER_GET_INFLIGHT_FD:
	case NVL_VHOST_USER_GET_MAX_MEM_SLOTS:
	case NVL_VHOST_USER_GET_STATUS:
		return true;
	default:
		return false;
	}
}

int
vhost_dev_handle_msg(struct vhost_dev *d, const struct nvl_vhost_user_hdr *hdr,
		     const uint8_t *payload, int *fds, unsigned nfds)
{
	int rc;

	d->msgs++;
	if ((hdr->flags & NVL_VHOST_USER_VERSION_MASK) != NVL_VHOST_USER_VERSION ||
	    (hdr->flags & NVL_VHOST_USER_FLAG_REPLY) || hdr->size > VHOST_MSG_MAX_PAYLOAD) {
		NVL_ERRLOG("vhost %s: bad message header (request %u flags 0x%x size %u)", d->name,
			   hdr->request, hdr->flags, hdr->size);
		d->bad_msgs++;
		return -EPROTO;
	}
	NVL_DEBUGLOG(vhost, "%s: %s size %u fds %u", d->name, vhost_req_name(hdr->request),
		     hdr->size, nfds);
	rc = vu_dispatch(d, hdr, payload, fds, nfds);
	if (rc == VU_ASYNC || rc == VU_REPLIED)
		return 0;
	if (rc == -EPIPE)
		return rc;
	if (rc < 0) {
		d->bad_msgs++;
		if (has_own_reply(hdr->request)) {
			NVL_ERRLOG("vhost %s: %s failed (%s): dropping the front-end", d->name,
				   vhost_req_name(hdr->request), strerror(-rc));
			return rc;
		}
		if (!(d->protocol_features & (1ULL << NVL_VHOST_USER_PROTOCOL_F_REPLY_ACK)) ||
		    !(hdr->flags & NVL_VHOST_USER_FLAG_NEED_REPLY))
			NVL_WARNLOG("vhost %s: %s failed: %s", d->name,
				    vhost_req_name(hdr->request), strerror(-rc));
	}
	return vu_ack(d, hdr, rc) < 0 ? -EPIPE : 0;
}

/* ---- connection ------------------------------------------------------------- */

static void
rx_reset(struct vhost_dev *d)
{
	for (unsigned i = 0; i < d->rx_nfds; i++)
		close_fd(&d->rx_fds[i]);
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
static size_t
vu_rx_want(struct vhost_dev *d, void **buf)
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
 * Account one read: n bytes stored where vu_rx_want() said (n == 0: the peer
 * closed), with fds[0..nfds) that came with it (taken over: kept for the
 * message, or closed beyond VHOST_MAX_FDS), truncated when the kernel had to
 * cut the control data (more fds than we have room for).
 * \return 1 message complete, 0 need more, -ECONNRESET, -EPROTO.
 */
static int
vu_rx_feed(struct vhost_dev *d, size_t n, const int *fds, size_t nfds, bool truncated)
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
	if (n > vu_rx_want(d, &unused)) {
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
	return d->rx_got >= hs && vu_rx_want(d, &unused) == 0 ? 1 : 0;
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

		iov.iov_len = vu_rx_want(d, &iov.iov_base);
		if (iov.iov_len == 0)
			return 1;
		/* more than VHOST_MAX_FDS descriptors: the rest are closed, MSG_CTRUNC */
		n = nvl_sock_recv_fds(d->conn_fd, &iov, 1, fds, VHOST_MAX_FDS, &nfds, MSG_DONTWAIT,
				      &mflags);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		rc = vu_rx_feed(d, (size_t)n, fds, nfds, mflags & MSG_CTRUNC);
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
			vu_close_conn(d);
			return;
		}
		rc = vhost_dev_handle_msg(d, &d->rx_hdr, d->rx_payload, d->rx_fds, d->rx_nfds);
		rx_reset(d);
		if (rc < 0) {
			vu_close_conn(d);
			return;
		}
	}
}

static void
vu_resume_conn(struct vhost_dev *d)
{
	if (d->conn_fd < 0 || d->conn_h != NULL || d->op_active || d->xmit != vu_xmit_socket)
		return;
	d->conn_h = nvl_fd_add(d->conn_fd, EPOLLIN, vu_conn_cb, d);
	if (d->conn_h == NULL) {
		NVL_ERRLOG("vhost %s: cannot watch the connection: %s", d->name, strerror(errno));
		vu_close_conn(d);
	}
}

static void
cont_close(struct vhost_dev *d)
{
	if (d->conn_h) {
		nvl_fd_del(d->conn_h);
		d->conn_h = NULL;
	}
	close_fd(&d->conn_fd);
	rx_reset(d);
	vu_reset_state(d);
	vhost_mem_free(d->op_mem);
	d->op_mem = NULL;
	d->close_requested = false;
	d->peer_pid = 0;
	d->peer_comm[0] = '\0';
	d->state = d->listen_fd >= 0 ? VHOST_DEV_LISTENING : VHOST_DEV_IDLE;
	if (d->ops->disconnected)
		d->ops->disconnected(d);
}

static void
vu_close_conn(struct vhost_dev *d)
{
	if (d->state != VHOST_DEV_CONNECTED)
		return;
	if (d->op_active) {
		d->close_requested = true;
		return;
	}
	d->state = VHOST_DEV_CLOSING;
	vu_op_begin(d, vu_all_queues(d), cont_close);
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
	vu_resume_conn(d);
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
	d->xmit = vu_xmit_socket;
	for (unsigned i = 0; i < VHOST_MAX_FDS; i++)
		d->rx_fds[i] = -1;
	for (unsigned q = 0; q < VHOST_MAX_QUEUES; q++) {
		d->vq[q].kickfd = -1;
		d->vq[q].callfd = -1;
		d->vq[q].errfd = -1;
	}
}

int
vhost_dev_listen(struct vhost_dev *d, const char *path)
{
	char name[96];
	int fd, rc;

	if (strlen(path) >= sizeof(d->path))
		return -ENAMETOOLONG;
	rc = nvl_sock_listen_unix(path, SOCK_STREAM, 0, 4, &fd);
	if (rc < 0)
		return rc == -EINVAL ? -ENAMETOOLONG : rc;
	snprintf(name, sizeof(name), "vhost %s", d->name);
	d->listen_h = nvl_acceptor_create(fd, name, 0, vu_accept_cb, d);
	if (d->listen_h == NULL) {
		rc = errno ? -errno : -EIO;
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

static void
vu_stop_step(struct vhost_dev *d)
{
	if (d->op_active)
		return;   /* vu_op_finish() calls again */
	if (d->state == VHOST_DEV_CONNECTED || d->state == VHOST_DEV_CLOSING) {
		d->state = VHOST_DEV_CLOSING;
		vu_op_begin(d, vu_all_queues(d), cont_close);
		return;   /* ends in vu_op_finish() -> here, with the connection gone */
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
		close_fd(&d->listen_fd);
		unlink(d->path);
	}
	vu_stop_step(d);
}
