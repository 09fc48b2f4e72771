/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost-user back-end protocol (QEMU docs/interop/vhost-user.rst) on one
 * listening Unix socket, one front-end at a time.
 *
 * Messages are received header first, then the payload (vhost_rx_want /
 * vhost_rx_feed, socket-free so that the fuzzer drives them; SCM_RIGHTS fds may
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
 * payload size for a request with a reply, a dirty log that does not fit the
 * memory it must record) drops the connection; a request we refuse gets a
 * REPLY_ACK failure when the front-end asked for one and a log line otherwise.
 *
 * Live migration (docs/vhost.md "Live migration"): SET_LOG_BASE maps the
 * front-end's dirty log, SET_FEATURES with VHOST_F_LOG_ALL turns logging on
 * and off, SET_VRING_ADDR with VHOST_VRING_F_LOG names the used ring's guest
 * address. A running queue takes the log (and the SET_LOG_FD eventfd) when it
 * starts, so each of these messages restarts the queues it changes: they
 * stop with their in-flight requests finished (still logging into the log
 * they had), the change is made, they start again from where they stopped.
 * No request is dropped; the pause is one drain. GET_VRING_BASE answers only
 * after the ring's in-flight requests completed, so the front-end hands the
 * destination a base with nothing in flight behind it.
 *
 * This file has the message handlers and their dispatch; vhost_dev.c the
 * device's socket, connection and queue operations (vhost_op_begin/finish)
 * the handlers wait on.
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
	 (1ULL << NVL_VHOST_USER_PROTOCOL_F_LOG_SHMFD) |                                           \
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
	       (1ULL << NVL_VHOST_USER_F_PROTOCOL_FEATURES) | (1ULL << NVL_VHOST_F_LOG_ALL);
}

/* Bytes of the used ring of a ring of num entries (VIRTIO 1.2 2.7.8: flags, idx,
 * num elements, avail_event). */
static uint64_t
vu_used_bytes(uint16_t num)
{
	return sizeof(struct nvl_vring_used) + (uint64_t)num * sizeof(struct nvl_vring_used_elem) +
	       2;
}

/* The log must have a bit for every page we may write: all of guest memory. */
static int
vu_log_check_mem(const struct vhost_dev *d, const struct vhost_log *l, const struct vhost_mem *m,
		 const char *what)
{
	uint64_t end = vhost_mem_gpa_end(m);

	if (m == NULL || vhost_log_covers(l, 0, end))
		return 0;
	NVL_ERRLOG("vhost %s: %s: a dirty log of %" PRIu64 " bytes covers guest memory up to "
		   "0x%" PRIx64 ", the memory table reaches 0x%" PRIx64, d->name, what,
		   l ? l->size : 0, l ? l->size * 8 * NVL_VHOST_LOG_PAGE : 0, end);
	return -EPROTO;
}

static uint64_t
vu_logging_queues(const struct vhost_dev *d)
{
	uint64_t mask = 0;

	for (unsigned q = 0; q < d->max_queues; q++) {
		if (d->vq[q].running && d->vq[q].logging)
			mask |= 1ULL << q;
	}
	return mask;
}

static void
cont_set_features(struct vhost_dev *d)
{
	vhost_start_all(d);
	vu_ack(d, &d->op_hdr, 0);
}

static void
vu_log_transition(struct vhost_dev *d, uint64_t old, uint64_t now)
{
	const uint64_t bit = 1ULL << NVL_VHOST_F_LOG_ALL;

	if ((now & bit) && !(old & bit)) {
		d->log_starts++;
		NVL_NOTICELOG("vhost %s: dirty logging on (migration): log of %" PRIu64
			      " bytes covering 0x%" PRIx64 " bytes of guest address", d->name,
			      d->log->size, d->log->size * 8 * NVL_VHOST_LOG_PAGE);
	} else if (!(now & bit) && (old & bit)) {
		NVL_NOTICELOG("vhost %s: dirty logging off", d->name);
	}
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
	if (f & (1ULL << NVL_VHOST_F_LOG_ALL)) {
		/* the log comes first (SET_LOG_BASE), and must fit guest memory */
		if (d->log == NULL) {
			NVL_ERRLOG("vhost %s: VHOST_F_LOG_ALL without a log (SET_LOG_BASE)",
				   d->name);
			return -EPROTO;
		}
		if (vu_log_check_mem(d, d->log, d->mem, "VHOST_F_LOG_ALL") < 0)
			return -EPROTO;
	}
	for (unsigned q = 0; q < d->max_queues; q++)
		was_running |= d->vq[q].running;
	vu_log_transition(d, d->features, f);
	d->features = f;
	d->features_set = true;
	/* Without protocol features rings are enabled from the start. */
	if (!(f & (1ULL << NVL_VHOST_USER_F_PROTOCOL_FEATURES))) {
		for (unsigned q = 0; q < d->max_queues; q++)
			d->vq[q].enabled = true;
	}
	if (was_running) {
		/* ring behaviour (event idx, logging) changes: restart the queues with it;
		 * they log into the old setting until they stopped */
		d->op_hdr = *h;
		d->op_mem = NULL;
		vhost_op_begin(d, vhost_all_queues(d), cont_set_features);
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
	vhost_start_all(d);
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
	/* while logging, memory beyond the log could not be recorded (QEMU grows
	 * the log before it grows the table) */
	if (vhost_dev_logging(d) && vu_log_check_mem(d, d->log, m, "SET_MEM_TABLE") < 0) {
		vhost_mem_free(m);
		return -EPROTO;
	}
	for (unsigned i = 0; i < m->nregions; i++)
		NVL_DEBUGLOG(vhost, "%s: region %u gpa 0x%" PRIx64 " size 0x%" PRIx64
			     " uva 0x%" PRIx64, d->name, i, m->r[i].gpa, m->r[i].size,
			     m->r[i].uva);
	d->op_hdr = *h;
	d->op_mem = m;
	/* queues translate through the old table until they stopped */
	vhost_op_begin(d, vhost_all_queues(d), cont_set_mem_table);
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

static void
cont_set_vring_addr(struct vhost_dev *d)
{
	int rc;

	d->vq[d->op_index].addr = d->op_addr;
	d->vq[d->op_index].addr_set = true;
	rc = vhost_start_queue(d, d->op_index);
	if (rc == -EPROTO)
		d->close_requested = true;
	vu_ack(d, &d->op_hdr, rc < 0 ? rc : 0);
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
	if (a.flags & ~NVL_VHOST_VRING_F_LOG) {
		NVL_ERRLOG("vhost %s: queue %d: unknown vring address flags 0x%x", d->name, q,
			   a.flags);
		return -EINVAL;
	}
	if ((a.flags & NVL_VHOST_VRING_F_LOG) && d->log != NULL &&
	    !vhost_log_covers(d->log, a.log_guest_addr,
			      vu_used_bytes(d->vq[q].num_set ? d->vq[q].num : VHOST_MAX_RING))) {
		NVL_ERRLOG("vhost %s: queue %d: used ring log address 0x%" PRIx64
			   " beyond the dirty log (%" PRIu64 " bytes)", d->name, q,
			   a.log_guest_addr, d->log->size);
		return -EPROTO;
	}
	if (d->vq[q].running) {
		/* QEMU turns used-ring logging on and off on running rings: restart
		 * the ring with the new addresses once its in-flight requests are done */
		d->op_hdr = *h;
		d->op_index = (uint32_t)q;
		d->op_addr = a;
		vhost_op_begin(d, 1ULL << q, cont_set_vring_addr);
		return VU_ASYNC;
	}
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
	vhost_close_fd(&vq->kickfd);
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
	vhost_op_begin(d, 1ULL << q, cont_get_vring_base);
	return VU_ASYNC;
}

/* A ring that cannot start is refused; one whose log address is wrong drops the front-end. */
static int
vu_start_rc(int rc)
{
	if (rc == -EPROTO)
		return rc;
	return rc < 0 ? -EIO : VU_OK;
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
		vhost_close_fd(&fd);
		return -EBUSY;
	}
	vhost_close_fd(&d->vq[q].kickfd);
	d->vq[q].kickfd = fd;
	d->vq[q].kick_set = true;
	if (!(d->features & (1ULL << NVL_VHOST_USER_F_PROTOCOL_FEATURES)))
		d->vq[q].enabled = true;
	return vu_start_rc(vhost_start_queue(d, (unsigned)q));
}

static int
h_set_vring_call(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p,
		 int *fds, unsigned nfds)
{
	int fd, q = vring_file(d, h, p, fds, nfds, &fd);

	if (q < 0)
		return q;
	vhost_close_fd(&d->vq[q].callfd);
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
	vhost_close_fd(&d->vq[q].errfd);
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
		return vu_start_rc(vhost_start_queue(d, (unsigned)q));
	if (d->vq[q].running) {
		d->op_hdr = *h;
		vhost_op_begin(d, 1ULL << q, cont_vring_disable);
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
cont_set_log_base(struct vhost_dev *d)
{
	/* the queues that logged into the old log have stopped: it may go */
	vhost_log_free(d->log);
	d->log = d->op_log;
	d->op_log = NULL;
	d->log_bases++;
	vhost_start_all(d);
	/* with LOG_SHMFD the front-end waits for this reply (a u64 0, as
	 * libvhost-user sends) before it frees or reads the old log */
	if (vu_reply_u64(d, &d->op_hdr, 0) < 0)
		d->close_requested = true;
}

static int
h_set_log_base(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, const uint8_t *p,
	       int *fds, unsigned nfds)
{
	struct nvl_vhost_user_log lg;
	struct vhost_log *l;
	int rc;

	if (!(d->protocol_features & (1ULL << NVL_VHOST_USER_PROTOCOL_F_LOG_SHMFD))) {
		/* without a shared fd the log is in the front-end's private memory */
		NVL_ERRLOG("vhost %s: SET_LOG_BASE without VHOST_USER_PROTOCOL_F_LOG_SHMFD",
			   d->name);
		return -EPROTO;
	}
	if (need_size(h, sizeof(lg)) < 0 || nfds != 1) {
		NVL_ERRLOG("vhost %s: SET_LOG_BASE with %u bytes and %u fds", d->name, h->size,
			   nfds);
		return -EPROTO;
	}
	memcpy(&lg, p, sizeof(lg));
	rc = vhost_log_map(fds[0], lg.mmap_size, lg.mmap_offset, &l);
	if (rc < 0) {
		NVL_ERRLOG("vhost %s: cannot map a dirty log of %" PRIu64 " bytes at offset %" PRIu64
			   ": %s", d->name, lg.mmap_size, lg.mmap_offset, strerror(-rc));
		return -EPROTO;
	}
	if (vu_log_check_mem(d, l, d->mem, "SET_LOG_BASE") < 0) {
		vhost_log_free(l);
		return -EPROTO;
	}
	for (unsigned q = 0; q < d->max_queues; q++) {
		const struct vhost_vq_cfg *vq = &d->vq[q];

		if (vq->addr_set && (vq->addr.flags & NVL_VHOST_VRING_F_LOG) &&
		    !vhost_log_covers(l, vq->addr.log_guest_addr,
				      vu_used_bytes(vq->num_set ? vq->num : VHOST_MAX_RING))) {
			NVL_ERRLOG("vhost %s: SET_LOG_BASE: queue %u's used ring (0x%" PRIx64
				   ") is beyond the log", d->name, q, vq->addr.log_guest_addr);
			vhost_log_free(l);
			return -EPROTO;
		}
	}
	NVL_DEBUGLOG(vhost, "%s: dirty log of %" PRIu64 " bytes at offset %" PRIu64, d->name,
		     lg.mmap_size, lg.mmap_offset);
	d->op_hdr = *h;
	d->op_log = l;
	/* queues logging into the old log stop first (a resize while migrating) */
	vhost_op_begin(d, vu_logging_queues(d), cont_set_log_base);
	return VU_ASYNC;
}

static void
cont_set_log_fd(struct vhost_dev *d)
{
	vhost_close_fd(&d->log_fd);
	d->log_fd = d->op_fd;
	d->op_fd = -1;
	vhost_start_all(d);
	vu_ack(d, &d->op_hdr, 0);
}

/* SET_LOG_FD: an eventfd we signal after marking pages (as the kernel's vhost
 * signals its log_ctx). No payload; exactly one fd. */
static int
h_set_log_fd(struct vhost_dev *d, const struct nvl_vhost_user_hdr *h, int *fds, unsigned nfds)
{
	if ((h->size != 0 && h->size != 8) || nfds != 1) {
		NVL_ERRLOG("vhost %s: SET_LOG_FD with %u bytes and %u fds", d->name, h->size,
			   nfds);
		return -EPROTO;
	}
	d->op_hdr = *h;
	vhost_close_fd(&d->op_fd);
	d->op_fd = fds[0];
	fds[0] = -1;
	vhost_op_begin(d, vu_logging_queues(d), cont_set_log_fd);
	return VU_ASYNC;
}

void
vhost_reset_state(struct vhost_dev *d)
{
	for (unsigned q = 0; q < VHOST_MAX_QUEUES; q++)
		vhost_vq_cfg_reset(&d->vq[q]);
	vhost_mem_free(d->mem);
	d->mem = NULL;
	vu_unmap_inflight(d);
	vhost_log_free(d->log);
	d->log = NULL;
	vhost_close_fd(&d->log_fd);
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
	vhost_reset_state(d);
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
		vhost_op_begin(d, vhost_all_queues(d), cont_reset);
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
	case NVL_VHOST_USER_SET_LOG_BASE:
		return h_set_log_base(d, h, p, fds, nfds);
	case NVL_VHOST_USER_SET_LOG_FD:
		return h_set_log_fd(d, h, fds, nfds);
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
	if (rc == -EPROTO) {
		/* a message that would make us fault or log wrongly: never served again */
		d->bad_msgs++;
		NVL_ERRLOG("vhost %s: %s refused: dropping the front-end", d->name,
			   vhost_req_name(hdr->request));
		return rc;
	}
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
