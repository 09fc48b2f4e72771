/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/RDMA target transport, queue pairs (rdma_internal.h says how the
 * transport is split and who owns what): a connection request accepted
 * (protection domain per device, completion channel, CQ and RC queue pair
 * per connection, receive buffers for every command the host may send, one
 * registered response capsule per command slot), completions polled (a
 * poller spins while work flows; before the reactor sleeps it arms the CQ
 * and the completion channel's fd wakes it), work posted for
 * rdma_capsule.c, an I/O queue handed to its reactor after its Connect,
 * and the end of a connection.
 *
 * The end, in order: reactor 0 decides it (a CM event, a controller
 * teardown, a failure an I/O queue reports, a Disconnect) and sends the
 * RDMA disconnect, which moves the queue pair to the error state (nothing
 * more is received or transferred); the connection's reactor stops polling
 * and waits for its commands inside the NVMe layer; then reactor 0 destroys
 * the verbs objects, deregisters the memory, destroys the CM id and frees
 * the connection. Verbs objects are created and destroyed on reactor 0
 * only, the CM id is used on reactor 0 only: the polling reactor never
 * races a CM event that librdmacm handles on the id.
 */
#include "transport/rdma_internal.h"
#include "nvmf/auth.h"
#include "util/log.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

NVL_LOG_DECLARE_COMPONENT(nvmf_rdma);

/* ---- devices (reactor 0) ------------------------------------------------------------ */

struct rdma_dev {
	struct ibv_context *verbs;
	struct ibv_pd *pd;
	struct ibv_device_attr attr;
	bool send_inv;               /* Send with Invalidate is supported */
	TAILQ_ENTRY(rdma_dev) link;
};

static TAILQ_HEAD(, rdma_dev) g_rdma_devs = TAILQ_HEAD_INITIALIZER(g_rdma_devs);

static struct rdma_dev *
rdma_dev_get(struct ibv_context *verbs)
{
	struct rdma_dev *d;

	TAILQ_FOREACH(d, &g_rdma_devs, link)
		if (d->verbs == verbs)
			return d;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	if (ibv_query_device(verbs, &d->attr) != 0) {
		free(d);
		return NULL;
	}
	d->pd = ibv_alloc_pd(verbs);
	if (d->pd == NULL) {
		free(d);
		return NULL;
	}
	d->verbs = verbs;
	d->send_inv = (d->attr.device_cap_flags & IBV_DEVICE_MEM_MGT_EXTENSIONS) != 0;
	TAILQ_INSERT_TAIL(&g_rdma_devs, d, link);
	NVL_NOTICELOG("rdma: using device %s (max %d QP WRs, %d RDMA READs in flight per QP)",
		      ibv_get_device_name(verbs->device), d->attr.max_qp_wr,
		      d->attr.max_qp_init_rd_atom);
	return d;
}

void
rdma_devices_release(void)
{
	struct rdma_dev *d;

	while ((d = TAILQ_FIRST(&g_rdma_devs)) != NULL) {
		TAILQ_REMOVE(&g_rdma_devs, d, link);
		ibv_dealloc_pd(d->pd);
		free(d);
	}
}

/* ---- posting (struct rdma_post_ops) ---------------------------------------------------- */

static int
rdma_post_recv(struct rdma_conn *c, uint32_t idx)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(c->rbuf + (size_t)idx * c->rsize),
		.length = c->rsize,
		.lkey = c->rbuf_lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = RDMA_WR_ID(idx, RDMA_WR_RECV), .sg_list = &sge,
				  .num_sge = 1 }, *bad;

	return -ibv_post_recv(c->qp, &wr, &bad);
}

static int
rdma_post_read(struct rdma_conn *c, struct rdma_req *r)
{
	struct ibv_sge sge = { .addr = (uintptr_t)r->buf, .length = r->len, .lkey = r->lkey };
	struct ibv_send_wr wr = { 0 }, *bad;

	wr.wr_id = RDMA_WR_ID(r->idx, RDMA_WR_READ);
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_RDMA_READ;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.rdma.remote_addr = r->sgl.addr;
	wr.wr.rdma.rkey = r->sgl.key;
	return -ibv_post_send(c->qp, &wr, &bad);
}

static int
rdma_post_response(struct rdma_conn *c, struct rdma_req *r, uint32_t xfer, bool inv,
		   uint32_t inv_key)
{
	struct ibv_sge dsge = { .addr = (uintptr_t)r->buf, .length = xfer, .lkey = r->lkey };
	struct ibv_sge rsge = { .addr = (uintptr_t)r->rsp, .length = sizeof(*r->rsp),
				.lkey = c->rsp_lkey };
	struct ibv_send_wr data = { 0 }, rsp = { 0 }, *bad;

	rsp.wr_id = RDMA_WR_ID(r->idx, RDMA_WR_SEND);
	rsp.sg_list = &rsge;
	rsp.num_sge = 1;
	rsp.opcode = IBV_WR_SEND;
	rsp.send_flags = IBV_SEND_SIGNALED;
	if (inv && c->send_inv) {
		rsp.opcode = IBV_WR_SEND_WITH_INV;
		rsp.invalidate_rkey = inv_key;
	}
	if (xfer == 0)
		return -ibv_post_send(c->qp, &rsp, &bad);
	/* the WRITE is unsignaled: the SEND after it completes only once it did */
	data.wr_id = RDMA_WR_ID(r->idx, RDMA_WR_WRITE);
	data.sg_list = &dsge;
	data.num_sge = 1;
	data.opcode = IBV_WR_RDMA_WRITE;
	data.wr.rdma.remote_addr = r->sgl.addr;
	data.wr.rdma.rkey = r->sgl.key;
	data.next = &rsp;
	return -ibv_post_send(c->qp, &data, &bad);
}

static int
rdma_buf_reserve(struct rdma_conn *c, struct rdma_req *r, uint32_t len)
{
	struct ibv_mr *mr;
	uint32_t cap;
	void *p;

	if (len <= r->buf_cap)
		return 0;
	cap = (uint32_t)NVL_ALIGN_UP((uint64_t)len, 4096);
	if (posix_memalign(&p, 4096, cap) != 0)
		return -ENOMEM;
	mr = ibv_reg_mr(c->pd, p, cap, IBV_ACCESS_LOCAL_WRITE);
	if (mr == NULL) {
		free(p);
		return -ENOMEM;
	}
	if (r->mr)
		ibv_dereg_mr(r->mr);
	free(r->buf);
	r->buf = p;
	r->buf_cap = cap;
	r->mr = mr;
	r->lkey = mr->lkey;
	return 0;
}

static const struct rdma_post_ops g_rdma_verbs_ops = {
	.post_recv = rdma_post_recv,
	.post_read = rdma_post_read,
	.post_response = rdma_post_response,
	.buf_reserve = rdma_buf_reserve,
};

/* ---- completions ---------------------------------------------------------------------- */

struct rdma_deferred {
	uint32_t idx, len;
};

static void rdma_conn_migrate(struct rdma_conn *c);

/* Poll the CQ once. \return completions handled, or -1 when the connection ended. */
static int
rdma_conn_poll_cq(struct rdma_conn *c)
{
	struct ibv_wc wc[RDMA_CQ_BATCH];
	int n;

	if (c->state == RC_CLOSING)
		return 0;
	n = ibv_poll_cq(c->cq, RDMA_CQ_BATCH, wc);
	if (n < 0) {
		rdma_conn_error(c, "cannot poll the completion queue");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		uint32_t idx = (uint32_t)(wc[i].wr_id >> 2);
		enum rdma_wr_kind kind = (enum rdma_wr_kind)(wc[i].wr_id & 3);

		if (c->state == RC_CLOSING || c->state == RC_FAILED)
			break;
		if (wc[i].status != IBV_WC_SUCCESS) {
			if (wc[i].status != IBV_WC_WR_FLUSH_ERR)
				NVL_WARNLOG("rdma: %s qid %u: %s completion failed: %s", c->peer,
					    c->qid,
					    kind == RDMA_WR_RECV   ? "receive"
					    : kind == RDMA_WR_READ ? "RDMA READ"
								   : "send",
					    ibv_wc_status_str(wc[i].status));
			rdma_conn_error(c, "RDMA completion error");
			return -1;
		}
		switch (kind) {
		case RDMA_WR_RECV:
			if (idx >= c->nrecv)
				break;
			if (c->state == RC_MIGRATING) {
				/* the queue's own reactor handles commands that came meanwhile */
				struct rdma_deferred *d = (void *)c->deferred;

				d[c->ndeferred].idx = idx;
				d[c->ndeferred++].len = wc[i].byte_len;
				break;
			}
			if (rdma_capsule_recv(c, idx, wc[i].byte_len) < 0)
				return -1;
			break;
		case RDMA_WR_SEND:
			rdma_capsule_send_done(c, idx);
			break;
		case RDMA_WR_READ:
			rdma_capsule_read_done(c, idx);
			break;
		case RDMA_WR_WRITE:
			break;
		}
	}
	return n;
}

static int
rdma_conn_service(struct rdma_conn *c)
{
	int n, work = 0;

	do {
		n = rdma_conn_poll_cq(c);
		if (n < 0)
			return 1;
		work += n;
	} while (n == RDMA_CQ_BATCH);
	if (c->state == RC_MIGRATING) {
		rdma_conn_migrate(c);
		return 1;
	}
	if (work)
		c->last_work_ns = nvl_now_ns();
	return work;
}

static int
rdma_conn_poll(void *arg)
{
	return rdma_conn_service(arg);
}

/* Before the reactor sleeps: arm the CQ, then look again (a completion may
 * have come between the last poll and the arming). */
static int
rdma_conn_sleep(void *arg)
{
	struct rdma_conn *c = arg;

	if (c->state == RC_CLOSING || c->state == RC_MIGRATING)
		return 0;
	if (ibv_req_notify_cq(c->cq, 0) != 0)
		return 1;
	return rdma_conn_service(c) > 0;
}

static void
rdma_conn_channel_event(void *arg, uint32_t events)
{
	struct rdma_conn *c = arg;
	struct ibv_cq *cq;
	void *ctx;

	(void)events;
	while (ibv_get_cq_event(c->channel, &cq, &ctx) == 0)
		c->cq_events_unacked++;
	if (c->cq_events_unacked >= 16) {
		ibv_ack_cq_events(c->cq, c->cq_events_unacked);
		c->cq_events_unacked = 0;
	}
	rdma_conn_service(c);
}

static void
rdma_conn_tick(void *arg)
{
	struct rdma_conn *c = arg;
	uint64_t now = nvl_now_ns();

	if (c->state == RC_CONNECT_WAIT && now - c->accepted_ns > RDMA_CONNECT_TIMEOUT_NS) {
		rdma_conn_error(c, "no Connect within 10 s");
		return;
	}
	if (c->qid != 0 && c->auth && c->state == RC_ACTIVE) {
		const char *why;

		if (nvl_nvmf_auth_expired(c->auth, now, &why))
			rdma_conn_error(c, why);
	}
}

/* Register poller, channel fd and timer on the calling reactor. */
static int
rdma_conn_attach(struct rdma_conn *c)
{
	struct ibv_comp_channel *ch = c->channel;

	c->reactor = nvl_reactor_self();
	c->poller = nvl_poller_create(rdma_conn_poll, c, "nvmf-rdma");
	if (c->poller)
		nvl_poller_set_sleep_hook(c->poller, rdma_conn_sleep);
	c->fdh = nvl_fd_add(ch->fd, EPOLLIN, rdma_conn_channel_event, c);
	c->timer = nvl_timer_create(rdma_conn_tick, c, 1000000, 1000000);
	if (c->poller == NULL || c->fdh == NULL || c->timer == NULL)
		return -ENOMEM;
	return 0;
}

static void
rdma_conn_detach(struct rdma_conn *c)
{
	nvl_poller_destroy(c->poller);
	c->poller = NULL;
	nvl_fd_del(c->fdh);
	c->fdh = NULL;
	nvl_timer_destroy(c->timer);
	c->timer = NULL;
}

/* ---- the move of an I/O queue -------------------------------------------------------- */

static void
rdma_conn_attach_io(void *arg)
{
	struct rdma_conn *c = arg;
	struct rdma_deferred *d = (void *)c->deferred;
	uint32_t n = c->ndeferred;

	if (c->state != RC_MIGRATING)
		return; /* closed on its way: the close message follows */
	c->state = RC_ACTIVE;
	if (rdma_conn_attach(c) < 0) {
		NVL_ERRLOG("rdma: cannot start I/O queue %u on reactor %u", c->qid,
			   nvl_reactor_id(nvl_reactor_self()));
		rdma_conn_error(c, "out of memory");
		return;
	}
	c->ndeferred = 0;
	for (uint32_t i = 0; i < n && rdma_conn_reading(c); i++)
		if (rdma_capsule_recv(c, d[i].idx, d[i].len) < 0)
			return;
	c->last_work_ns = nvl_now_ns();
	rdma_conn_service(c);
}

/* reactor 0: hand a freshly connected I/O queue to its reactor */
static void
rdma_conn_migrate(struct rdma_conn *c)
{
	struct nvl_reactor *to = c->ctl->ioq_reactor[c->qid];

	rdma_conn_detach(c);
	c->r0_migrated = true;
	if (to == NULL || nvl_reactor_msg(to, rdma_conn_attach_io, c) < 0) {
		NVL_ERRLOG("rdma: cannot hand I/O queue %u to its reactor", c->qid);
		c->r0_migrated = false;
		c->state = RC_FAILED;
		rdma_conn_close(c, "cannot reach the queue's reactor");
	}
}

/* ---- the end of a connection --------------------------------------------------------- */

/* reactor 0: destroy everything (the connection's reactor let go of it). */
static void
rdma_conn_destroy(void *arg)
{
	struct rdma_conn *c = arg;
	struct rdma_cm_id *id = c->cm_id;

	if (c->qp)
		rdma_destroy_qp(id);
	if (c->cq) {
		if (c->cq_events_unacked)
			ibv_ack_cq_events(c->cq, c->cq_events_unacked);
		ibv_destroy_cq(c->cq);
	}
	if (c->channel)
		ibv_destroy_comp_channel(c->channel);
	for (uint32_t i = 0; i < c->nreqs; i++) {
		if (c->reqs[i].mr)
			ibv_dereg_mr(c->reqs[i].mr);
		free(c->reqs[i].buf);
	}
	rdma_capsule_fini(c);
	if (c->rbuf_mr)
		ibv_dereg_mr(c->rbuf_mr);
	if (c->rsp_mr)
		ibv_dereg_mr(c->rsp_mr);
	free(c->rbuf);
	free(c->rsps);
	free(c->deferred);
	if (c->qid != 0)
		nvl_nvmf_auth_queue_destroy(c->auth); /* the admin queue's is the controller's */
	nvl_reactor_unpick(c->placed);
	if (c->r0_linked)
		TAILQ_REMOVE(&g_rdma_pending, c, link);
	if (c->ctl && c->qid == 0 && c->ctl->admin == c) {
		c->ctl->admin = NULL;
		rdma_ctrlr_try_free(c->ctl);
	} else if (c->ctl && c->qid != 0) {
		if (c->ctl->ioq[c->qid] == c)
			c->ctl->ioq[c->qid] = NULL;
		c->ctl->nio_alive--;
		nvl_nvmf_ctrlr_put(c->tc);
		rdma_ctrlr_try_free(c->ctl);
	}
	if (id) {
		id->context = NULL;
		rdma_destroy_id(id);
	}
	__atomic_fetch_sub(&g_rdma_nconns, 1, __ATOMIC_RELAXED);
	free(c);
}

void
rdma_conn_try_free(struct rdma_conn *c)
{
	if (c->state != RC_CLOSING || c->executing > 0 || c->free_scheduled)
		return;
	/* destroyed on reactor 0, from a message: never inside the call chain that ended it */
	c->free_scheduled = true;
	if (nvl_reactor_msg(nvl_reactor_get(0), rdma_conn_destroy, c) < 0)
		NVL_ERRLOG("rdma: cannot schedule the release of a connection");
}

/* the polling reactor: stop serving and drain */
static void
rdma_conn_stop(struct rdma_conn *c, const char *why)
{
	if (c->state == RC_CLOSING)
		return;
	if (c->ctl)
		NVL_NOTICELOG("rdma: %s: cntlid %u qid %u closed: %s", c->peer,
			      c->tc ? c->tc->nvme.cntlid : 0, c->qid, why);
	else
		NVL_DEBUGLOG(nvmf_rdma, "%s: connection closed before Connect: %s", c->peer, why);
	c->state = RC_CLOSING;
	rdma_conn_detach(c);
	rdma_capsule_drop_pending(c);
	rdma_conn_try_free(c);
}

static void
rdma_conn_stop_on_reactor(void *arg)
{
	struct rdma_conn *c = arg;

	rdma_conn_stop(c, c->fail_why ? c->fail_why : "queue deleted");
}

void
rdma_ioq_close(struct rdma_ctrlr *ctl, uint16_t qid)
{
	struct rdma_conn *c = ctl->ioq[qid];

	if (c == NULL)
		return;
	ctl->ioq[qid] = NULL;
	rdma_conn_close(c, "queue deleted");
}

void
rdma_conn_close(struct rdma_conn *c, const char *why)
{
	if (c->r0_closing)
		return;
	c->r0_closing = true;
	if (c->fail_why == NULL)
		c->fail_why = why;
	/* the queue pair goes to the error state: nothing more arrives or moves */
	rdma_disconnect(c->cm_id);
	if (c->ctl && c->qid != 0 && c->ctl->ioq[c->qid] == c)
		c->ctl->ioq[c->qid] = NULL;
	if (c->r0_migrated) {
		if (nvl_reactor_msg(c->ctl->ioq_reactor[c->qid], rdma_conn_stop_on_reactor, c) < 0)
			NVL_ERRLOG("rdma: cannot reach the reactor of I/O queue %u", c->qid);
		return;
	}
	rdma_conn_stop(c, why);
	if (c->ctl && c->qid == 0 && c->ctl->admin == c)
		rdma_ctrlr_teardown(c->ctl, why);
}

void
rdma_conn_cm_gone(struct rdma_conn *c, const char *why)
{
	rdma_conn_close(c, why);
}

static void
rdma_ioq_failed_home(void *arg)
{
	struct rdma_conn *c = arg;

	/* reactor 0 owns the table: close it unless it is going already */
	rdma_conn_close(c, c->io_why ? c->io_why : "I/O queue failed");
}

void
rdma_conn_error(struct rdma_conn *c, const char *why)
{
	if (c->state == RC_CLOSING || c->state == RC_FAILED)
		return;
	if (c->state == RC_ACTIVE && c->ctl && c->qid != 0) {
		/* an I/O queue on its reactor: reactor 0 decides */
		NVL_DEBUGLOG(nvmf_rdma, "%s: I/O queue %u failed: %s", c->peer, c->qid, why);
		c->state = RC_FAILED;
		c->io_why = why;
		if (nvl_reactor_msg(nvl_reactor_get(0), rdma_ioq_failed_home, c) < 0)
			NVL_ERRLOG("rdma: cannot reach reactor 0 about I/O queue %u", c->qid);
		return;
	}
	/* reactor 0: unbound, admin, or an I/O queue that has not moved yet */
	rdma_conn_close(c, why);
}

/* ---- a new connection (reactor 0) --------------------------------------------------------- */

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

static void
rdma_peer_name(struct rdma_cm_id *id, char *out, size_t len)
{
	struct sockaddr *sa = rdma_get_peer_addr(id);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = ntohs(rdma_get_dst_port(id));

	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof(host));
	snprintf(out, len, sa && sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

static void
rdma_conn_reject_id(struct rdma_cm_id *id, uint16_t sts)
{
	struct nvl_rdma_cm_rej rej;

	nvl_rdma_cm_rej_encode(&rej, sts);
	rdma_reject(id, &rej, sizeof(rej));
}

/* Verbs resources of a new connection. \return 0 or a reject status. */
static uint16_t
rdma_conn_setup(struct rdma_conn *c, struct rdma_cm_id *id, struct rdma_dev *d)
{
	struct ibv_qp_init_attr qa = { 0 };
	uint32_t send_wr = 3 * c->entries + 2;
	int cqe;

	c->pd = d->pd;
	c->send_inv = d->send_inv;
	c->channel = ibv_create_comp_channel(id->verbs);
	if (c->channel == NULL)
		return NVL_RDMA_CM_NO_RSC;
	if (set_nonblock(((struct ibv_comp_channel *)c->channel)->fd) < 0)
		return NVL_RDMA_CM_NO_RSC;
	cqe = (int)NVL_MIN(send_wr + c->nrecv, (uint32_t)d->attr.max_cqe);
	c->cq = ibv_create_cq(id->verbs, cqe, c, c->channel, 0);
	if (c->cq == NULL)
		return NVL_RDMA_CM_NO_RSC;
	if ((int)send_wr > d->attr.max_qp_wr || (int)c->nrecv > d->attr.max_qp_wr)
		return NVL_RDMA_CM_INVALID_HSQSIZE;
	qa.send_cq = c->cq;
	qa.recv_cq = c->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = send_wr;
	qa.cap.max_recv_wr = c->nrecv;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	if (rdma_create_qp(id, d->pd, &qa) != 0)
		return NVL_RDMA_CM_NO_RSC;
	c->qp = id->qp;
	c->rsize = (uint32_t)sizeof(struct nvl_nvme_cmd) + c->icd_max;
	if (posix_memalign((void **)&c->rbuf, 4096,
			   NVL_ALIGN_UP((uint64_t)c->nrecv * c->rsize, 4096)) != 0) {
		c->rbuf = NULL;
		return NVL_RDMA_CM_NO_RSC;
	}
	c->rsps = calloc(c->entries, sizeof(*c->rsps));
	c->deferred = calloc(c->nrecv, sizeof(struct rdma_deferred));
	if (c->rsps == NULL || c->deferred == NULL)
		return NVL_RDMA_CM_NO_RSC;
	c->rbuf_mr = ibv_reg_mr(d->pd, c->rbuf, (size_t)c->nrecv * c->rsize,
				IBV_ACCESS_LOCAL_WRITE);
	c->rsp_mr = ibv_reg_mr(d->pd, c->rsps, c->entries * sizeof(*c->rsps), 0);
	if (c->rbuf_mr == NULL || c->rsp_mr == NULL)
		return NVL_RDMA_CM_NO_RSC;
	c->rbuf_lkey = ((struct ibv_mr *)c->rbuf_mr)->lkey;
	c->rsp_lkey = ((struct ibv_mr *)c->rsp_mr)->lkey;
	if (rdma_capsule_init(c) < 0)
		return NVL_RDMA_CM_NO_RSC;
	for (uint32_t i = 0; i < c->nrecv; i++)
		if (rdma_post_recv(c, i) < 0)
			return NVL_RDMA_CM_NO_RSC;
	return 0;
}

void
rdma_conn_request(void *cm_id, const struct nvl_listen_addr *la, const void *pd,
		  uint8_t pd_len, uint8_t initiator_depth)
{
	struct rdma_cm_id *id = cm_id;
	struct nvl_rdma_cm_limits lim = {
		.max_aq_entries = g_rdma_opts.max_aq_depth,
		.max_io_entries = g_rdma_opts.max_queue_depth,
		.max_qid = NVL_MIN(g_rdma_opts.max_io_qpairs, (uint32_t)RDMA_MAX_IO_QUEUES),
	};
	struct rdma_conn_param param = { 0 };
	struct nvl_rdma_cm_rep rep;
	struct nvl_rdma_cm_req req;
	struct rdma_conn *c = NULL;
	struct rdma_dev *d;
	uint16_t sts = 0;
	char peer[64];

	rdma_peer_name(id, peer, sizeof(peer));
	if (nvl_rdma_cm_req_decode(pd, pd_len, &lim, &req, &sts) < 0) {
		NVL_NOTICELOG("rdma: %s: connection request refused: %s", peer,
			      nvl_rdma_cm_status_str(sts));
		goto err_reject;
	}
	if (__atomic_load_n(&g_rdma_nconns, __ATOMIC_RELAXED) >= RDMA_MAX_CONNS) {
		NVL_WARNLOG("rdma: refusing a connection beyond %d", RDMA_MAX_CONNS);
		sts = NVL_RDMA_CM_NO_RSC;
		goto err_reject;
	}
	d = rdma_dev_get(id->verbs);
	c = calloc(1, sizeof(*c));
	if (d == NULL || c == NULL) {
		sts = NVL_RDMA_CM_NO_RSC;
		goto err_reject;
	}
	__atomic_fetch_add(&g_rdma_nconns, 1, __ATOMIC_RELAXED);
	c->cm_id = id;
	id->context = c;
	c->ops = &g_rdma_verbs_ops;
	c->state = RC_CONNECT_WAIT;
	c->listener = *la;
	nvl_strlcpy(c->peer, peer, sizeof(c->peer));
	c->accepted_ns = nvl_now_ns();
	c->last_work_ns = c->accepted_ns;
	c->cm_qid = req.qid;
	c->qid = req.qid;
	c->entries = (uint32_t)req.hsqsize + 1;
	c->nrecv = c->entries;
	c->icd_max = g_rdma_opts.icd;
	c->max_reads = NVL_MAX(1u, (uint32_t)NVL_MIN((int)initiator_depth,
						  d->attr.max_qp_init_rd_atom));
	TAILQ_INSERT_TAIL(&g_rdma_pending, c, link);
	c->r0_linked = true;
	sts = rdma_conn_setup(c, id, d);
	if (sts)
		goto err_conn;
	nvl_rdma_cm_rep_encode(&rep, (uint16_t)c->nrecv);
	param.private_data = &rep;
	param.private_data_len = sizeof(rep);
	param.responder_resources = 0; /* the host never reads our memory */
	param.initiator_depth = (uint8_t)c->max_reads;
	param.rnr_retry_count = 7;
	param.flow_control = 1;
	if (rdma_accept(id, &param) != 0) {
		NVL_WARNLOG("rdma: %s: accept failed: %s", peer, strerror(errno));
		sts = NVL_RDMA_CM_NO_RSC;
		goto err_conn;
	}
	if (rdma_conn_attach(c) < 0) {
		rdma_conn_close(c, "out of memory");
		return;
	}
	NVL_DEBUGLOG(nvmf_rdma, "accepted %s on %s:%s: qid %u, %u entries, %u reads in flight",
		     c->peer, la->traddr, la->trsvcid, req.qid, c->entries, c->max_reads);
	return;
err_conn:
	/* the id is destroyed with the connection (its events are acked already) */
	rdma_conn_reject_id(id, sts ? sts : NVL_RDMA_CM_NO_RSC);
	c->r0_closing = true;
	c->state = RC_CLOSING;
	rdma_conn_try_free(c);
	return;
err_reject:
	free(c);
	rdma_conn_reject_id(id, sts ? sts : NVL_RDMA_CM_NO_RSC);
	rdma_destroy_id(id);
}
