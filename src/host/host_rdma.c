/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The host side of NVMe/RDMA behind the host core's ops table:
 * nvme+rdma://HOST:PORT/SUBNQN[/NSID] (NVMe-oF 1.1 section 7.3, RDMA
 * Transport Specification 1.0b), on rdma-core's librdmacm and libibverbs.
 *
 * Every queue (admin included) is one reliable-connected queue pair set up
 * by the RDMA connection manager with the binding's private data (record
 * format 0, QID, HRQSIZE = entries, HSQSIZE = entries - 1, CNTLID), then a
 * Fabrics Connect. Command capsules go by RDMA SEND from a registered
 * capsule area (one 64-byte SQE per command slot); responses arrive by RDMA
 * RECV into one registered 16-byte buffer per queue entry, reposted as soon
 * as the CQE is copied out. Command data lives in the association's data
 * window, one memfd mapping registered once as a memory region the target
 * may read and write (REMOTE_READ | REMOTE_WRITE): a keyed SGL data block
 * descriptor names it (the target RDMA READs write data and RDMA WRITEs
 * read data), or, for writes up to what the controller's IOCCSZ allows on
 * I/O queues, the data follows the SQE in the same SEND (second gather
 * element, in-capsule data at offset 0). Buffers from nvl_buf_alloc() are
 * in the window (zero copy); the core bounces others through it.
 *
 * What the target sends is interpreted by the pure functions of
 * host_rdma_wire.c (reject and accept data, Connect response, response
 * capsules and command slots), which the fuzz target tests/fuzz/rdma_host
 * drives without verbs.
 *
 * Threads and ownership: the protection domain, the window and its memory
 * region belong to the association (struct rdma_res, reference counted by
 * the admin queue and every I/O queue made on it, so they outlive the last
 * queue that may still be polled). Each queue has its own CM event channel,
 * completion channel and CQ. The controller's owner drives the admin queue
 * and I/O queues being connected (CM events, Fabrics Connect: the CQ is
 * re-armed before process() returns, so the completion channel's fd wakes
 * a waiter); a connected I/O queue belongs to its queue pair's thread,
 * which polls the CQ, checks the CM channel for a disconnect when idle (at
 * most every RDMA_CM_CHECK_MS) and waits on both fds. Ending a queue:
 * rdma_disconnect() first (the queue pair goes to the error state, so no
 * RDMA by the target reaches our memory after it), then the verbs objects,
 * then the CM id and channel.
 */
#include "host/host_internal.h"
#include "host/host_rdma.h"
#include "proto/nvme_rdma.h"

#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <netdb.h>
#include <rdma/rdma_cma.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RDMA_ADMIN_ENTRIES NVL_RDMA_AQ_DEPTH
#define RDMA_RESOLVE_MS 2000         /* address and route resolution */
#define RDMA_WC_BATCH 32
#define RDMA_CM_CHECK_MS 100         /* an idle I/O queue looks for a disconnect this often */
#define RDMA_SQE_SIZE 64
#define RDMA_CQE_SIZE 16
#define RDMA_MAX_RD_ATOM 16          /* RDMA READs the target may have in flight to us */

#define WR_SEND 0u
#define WR_RECV 1u
#define WR_ID(idx, kind) (((uint64_t)(idx) << 1) | (kind))

const char *const g_host_rdma_nodev =
	"no RDMA device (is rdma_rxe / a NIC driver loaded?)";

/* For the controller's life (c->tstate): the resolved address. */
struct rdma_state {
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

/* What the association's queues share. */
struct rdma_res {
	int refs;                    /* atomic: admin queue + every I/O queue */
	struct ibv_context *verbs;   /* librdmacm's, not ours to close */
	struct ibv_pd *pd;
	struct ibv_device_attr attr;
	struct host_window *win;     /* reference */
	struct ibv_mr *win_mr;
};

enum rdma_q_state {
	RQ_ADDR = 0,                 /* rdma_resolve_addr() */
	RQ_ROUTE,                    /* rdma_resolve_route() */
	RQ_CM_CONNECT,               /* rdma_connect(): accept or reject */
	RQ_FABRIC_CONNECT,           /* Fabrics Connect sent */
	RQ_READY,
	RQ_FAILED,
};

struct rdma_assoc;

/* One queue; an I/O queue is the core's transport queue (base first). */
struct rdma_q {
	struct host_tq base;
	struct host_ctrlr *c;        /* set-up: the controller (its owner's) */
	struct rdma_assoc *ta;       /* admin queue: its association */
	struct host_qpair *qp;       /* I/O queue: its queue pair */
	struct rdma_res *res;        /* reference; admin: NULL until the address resolved */
	uint16_t qid, entries, cntlid;
	uint32_t nslots;             /* entries - 1 commands at once (slot = wire cid) */
	uint32_t icd_max;            /* in-capsule data the controller takes (I/O queues) */
	uint32_t kato_ms;
	enum rdma_q_state state;
	int err;
	char why[256];
	bool lost_reported;
	struct rdma_event_channel *ch;
	struct rdma_cm_id *id;
	struct ibv_comp_channel *cc;
	struct ibv_cq *cq;
	bool qp_made;
	uint8_t *mem;                /* SQEs | CQEs | Connect data, registered */
	size_t memlen;
	struct ibv_mr *mr;
	struct host_rdma_slot *slots;
	struct ibv_wc stash[RDMA_WC_BATCH]; /* reaped by arm(), handled by the next poll */
	int nstash;
	uint64_t cm_check_ns;
};

/* One association (c->tctx). */
struct rdma_assoc {
	struct rdma_q *admin;
	bool ready;
	bool in_process;             /* inside the admin queue's processing */
	bool stopped;                /* the core ended it meanwhile: free once process returns */
};

static void q_fail(struct rdma_q *q, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline uint8_t *
q_sqe(struct rdma_q *q, uint32_t idx)
{
	return q->mem + (size_t)idx * RDMA_SQE_SIZE;
}

static inline uint8_t *
q_cqe(struct rdma_q *q, uint32_t idx)
{
	return q->mem + (size_t)q->nslots * RDMA_SQE_SIZE + (size_t)idx * RDMA_CQE_SIZE;
}

static inline struct nvl_nvmf_connect_data *
q_cdata(struct rdma_q *q)
{
	return (struct nvl_nvmf_connect_data *)(q->mem + (size_t)q->nslots * RDMA_SQE_SIZE +
						(size_t)q->entries * RDMA_CQE_SIZE);
}

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* ---- the association's resources --------------------------------------------------------- */

static void
res_put(struct rdma_res *r)
{
	if (r == NULL || __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	if (r->win_mr)
		ibv_dereg_mr(r->win_mr);
	if (r->pd)
		ibv_dealloc_pd(r->pd);
	host_window_put(r->win);
	free(r);
}

/* The protection domain on the device the address resolved to, and the
 * data window registered in it. */
static int
res_create(struct host_ctrlr *c, struct ibv_context *verbs, struct rdma_res **out)
{
	struct rdma_res *r;
	int fd, rc;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->refs = 1;
	r->verbs = verbs;
	if (ibv_query_device(verbs, &r->attr) != 0) {
		rc = -ENODEV;
		goto err_free;
	}
	r->pd = ibv_alloc_pd(verbs);
	if (r->pd == NULL) {
		rc = -ENOMEM;
		goto err_free;
	}
	fd = memfd_create("nvlend-rdma-window", MFD_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto err_pd;
	}
	if (ftruncate(fd, (off_t)c->opts.window_bytes) < 0) {
		rc = -errno;
		close(fd);
		goto err_pd;
	}
	rc = host_window_create(fd, c->opts.window_bytes, &r->win);
	close(fd); /* the mapping keeps the memory */
	if (rc < 0)
		goto err_pd;
	r->win_mr = ibv_reg_mr(r->pd, r->win->base, r->win->size,
			       IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ |
				       IBV_ACCESS_REMOTE_WRITE);
	if (r->win_mr == NULL) {
		rc = errno ? -errno : -ENOMEM;
		goto err_win;
	}
	*out = r;
	return 0;
err_win:
	host_window_put(r->win);
err_pd:
	ibv_dealloc_pd(r->pd);
err_free:
	free(r);
	return rc;
}

/* ---- one queue: set-up and end ------------------------------------------------------------- */

static void
q_destroy(struct rdma_q *q)
{
	if (q == NULL)
		return;
	if (q->id) {
		if (q->qp_made) {
			/* error state first: nothing the target sends lands after this */
			(void)rdma_disconnect(q->id);
			rdma_destroy_qp(q->id);
		}
	}
	if (q->cq)
		ibv_destroy_cq(q->cq);
	if (q->cc)
		ibv_destroy_comp_channel(q->cc);
	if (q->mr)
		ibv_dereg_mr(q->mr);
	free(q->mem);
	if (q->id)
		rdma_destroy_id(q->id);
	if (q->ch)
		rdma_destroy_event_channel(q->ch);
	host_window_put(q->base.win);
	res_put(q->res);
	free(q->slots);
	free(q);
}

/* The queue is dead: say why once, stop the target's access to our memory. */
static void
q_fail(struct rdma_q *q, int err, const char *fmt, ...)
{
	va_list ap;

	if (q->state == RQ_FAILED)
		return;
	q->state = RQ_FAILED;
	q->err = err;
	va_start(ap, fmt);
	vsnprintf(q->why, sizeof(q->why), fmt, ap);
	va_end(ap);
	if (q->qp_made)
		(void)rdma_disconnect(q->id);
	NVL_DEBUGLOG(host, "rdma queue %u failed: %s", q->qid, q->why);
}

static int
q_create(struct host_ctrlr *c, const struct rdma_state *ts, uint16_t qid, uint16_t entries,
	 uint16_t cntlid, struct rdma_res *res, struct rdma_q **out)
{
	struct rdma_q *q;
	int rc;

	if (entries < 2)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	q->c = c;
	q->qid = qid;
	q->entries = entries;
	q->nslots = (uint32_t)entries - 1;
	q->cntlid = cntlid;
	q->slots = calloc(q->nslots, sizeof(*q->slots));
	if (q->slots == NULL) {
		free(q);
		return -ENOMEM;
	}
	if (res) {
		__atomic_add_fetch(&res->refs, 1, __ATOMIC_RELAXED);
		q->res = res;
	}
	q->ch = rdma_create_event_channel();
	if (q->ch == NULL) {
		rc = -ENETDOWN;
		host_ctrlr_set_error(c, "%s: no RDMA connection manager (/dev/infiniband/rdma_cm: "
					"is rdma_ucm loaded?)",
				     g_host_rdma_nodev);
		goto err;
	}
	rc = set_nonblock(q->ch->fd);
	if (rc < 0)
		goto err;
	if (rdma_create_id(q->ch, &q->id, q, RDMA_PS_TCP) != 0) {
		rc = -errno;
		q->id = NULL;
		goto err;
	}
	if (rdma_resolve_addr(q->id, NULL, (struct sockaddr *)&ts->addr, RDMA_RESOLVE_MS) != 0) {
		rc = errno == ENODEV || errno == EADDRNOTAVAIL ? -ENETDOWN : -EHOSTUNREACH;
		host_ctrlr_set_error(c, "%s:%s: no RDMA device reaches it (%s)", c->uri.host,
				     c->uri.port, strerror(errno));
		goto err;
	}
	q->state = RQ_ADDR;
	*out = q;
	return 0;
err:
	q_destroy(q);
	return rc;
}

static int
q_post_recv(struct rdma_q *q, uint32_t idx)
{
	struct ibv_sge sge = { .addr = (uintptr_t)q_cqe(q, idx), .length = RDMA_CQE_SIZE,
			       .lkey = q->mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = WR_ID(idx, WR_RECV), .sg_list = &sge, .num_sge = 1 };
	struct ibv_recv_wr *bad;

	return -ibv_post_recv(q->id->qp, &wr, &bad);
}

/* SEND the SQE of slot idx (cmd), with icd_len bytes of in-capsule data at icd. */
static int
q_post_cmd(struct rdma_q *q, uint32_t idx, const struct nvl_nvme_cmd *cmd, const void *icd,
	   uint32_t icd_len)
{
	struct ibv_sge sge[2] = {
		{ .addr = (uintptr_t)q_sqe(q, idx), .length = RDMA_SQE_SIZE, .lkey = q->mr->lkey },
		{ .addr = (uintptr_t)icd, .length = icd_len,
		  .lkey = icd_len ? q->res->win_mr->lkey : 0 },
	};
	struct ibv_send_wr wr = { 0 }, *bad;

	memcpy(q_sqe(q, idx), cmd, RDMA_SQE_SIZE);
	wr.wr_id = WR_ID(idx, WR_SEND);
	wr.sg_list = sge;
	wr.num_sge = icd_len ? 2 : 1;
	wr.opcode = IBV_WR_SEND;
	wr.send_flags = IBV_SEND_SIGNALED;
	return -ibv_post_send(q->id->qp, &wr, &bad);
}

/* Route resolved: the verbs objects, the receives, then the CM request. */
static int
q_setup_verbs(struct rdma_q *q)
{
	struct ibv_context *verbs = q->id->verbs;
	struct ibv_qp_init_attr qa = { 0 };
	struct rdma_conn_param cp = { 0 };
	struct nvl_rdma_cm_req req;
	int rc;

	if (q->res == NULL) {
		rc = res_create(q->c, verbs, &q->res);
		if (rc < 0) {
			q_fail(q, rc, "cannot register a %llu-byte data window on %s: %s",
			       (unsigned long long)q->c->opts.window_bytes,
			       ibv_get_device_name(verbs->device), strerror(-rc));
			return rc;
		}
	} else if (q->res->verbs != verbs) {
		q_fail(q, -EHOSTUNREACH, "queue %u resolved to another RDMA device (%s)", q->qid,
		       ibv_get_device_name(verbs->device));
		return -EHOSTUNREACH;
	}
	q->cc = ibv_create_comp_channel(verbs);
	if (q->cc == NULL || set_nonblock(q->cc->fd) < 0)
		goto err_verbs;
	q->cq = ibv_create_cq(verbs, (int)(q->nslots + q->entries), q, q->cc, 0);
	if (q->cq == NULL)
		goto err_verbs;
	qa.send_cq = q->cq;
	qa.recv_cq = q->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = q->nslots;
	qa.cap.max_recv_wr = q->entries;
	qa.cap.max_send_sge = 2;
	qa.cap.max_recv_sge = 1;
	if (rdma_create_qp(q->id, q->res->pd, &qa) != 0)
		goto err_verbs;
	q->qp_made = true;
	q->memlen = NVL_ALIGN_UP((size_t)q->nslots * RDMA_SQE_SIZE +
					 (size_t)q->entries * RDMA_CQE_SIZE +
					 sizeof(struct nvl_nvmf_connect_data),
				 4096);
	if (posix_memalign((void **)&q->mem, 4096, q->memlen) != 0) {
		q->mem = NULL;
		goto err_verbs;
	}
	memset(q->mem, 0, q->memlen);
	/* REMOTE_READ: the target reads the Connect data from here */
	q->mr = ibv_reg_mr(q->res->pd, q->mem, q->memlen,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ);
	if (q->mr == NULL)
		goto err_verbs;
	for (uint32_t i = 0; i < q->entries; i++) {
		rc = q_post_recv(q, i);
		if (rc < 0) {
			q_fail(q, rc, "cannot post receive buffers: %s", strerror(-rc));
			return rc;
		}
	}
	if (ibv_req_notify_cq(q->cq, 0) != 0)
		goto err_verbs;
	nvl_rdma_cm_req_encode(&req, q->qid, q->entries, q->cntlid);
	cp.private_data = &req;
	cp.private_data_len = sizeof(req);
	cp.responder_resources =
		(uint8_t)NVL_MIN(NVL_MAX(q->res->attr.max_qp_rd_atom, 0), RDMA_MAX_RD_ATOM);
	cp.initiator_depth = 0;  /* we never RDMA READ from the target */
	cp.flow_control = 1;
	cp.retry_count = 7;
	cp.rnr_retry_count = 7;  /* receives are reposted at once; retry without end */
	if (rdma_connect(q->id, &cp) != 0) {
		rc = -errno;
		q_fail(q, rc, "RDMA connect: %s", strerror(errno));
		return rc;
	}
	q->state = RQ_CM_CONNECT;
	return 0;
err_verbs:
	rc = errno ? -errno : -ENOMEM;
	q_fail(q, rc, "cannot make the RDMA queue pair on %s: %s",
	       ibv_get_device_name(verbs->device), strerror(-rc));
	return rc;
}

/* Connection made: the Fabrics Connect in slot 0, its data by keyed SGL. */
static void
q_send_connect(struct rdma_q *q)
{
	struct host_ctrlr *c = q->c;
	struct nvl_nvmf_connect_cmd cc = { 0 };
	struct nvl_nvmf_connect_data *d = q_cdata(q);
	int rc;

	memset(d, 0, sizeof(*d));
	memcpy(d->hostid, c->opts.hostid, 16);
	d->cntlid = q->cntlid;
	nvl_strlcpy(d->subnqn, c->uri.nqn, sizeof(d->subnqn));
	nvl_strlcpy(d->hostnqn, c->hostnqn, sizeof(d->hostnqn));
	cc.opc = NVL_NVME_ADM_FABRICS;
	cc.fctype = NVL_NVMF_FCTYPE_CONNECT;
	cc.cid = 0;
	cc.qid = q->qid;
	cc.sqsize = (uint16_t)(q->entries - 1);
	cc.kato = q->qid == 0 ? q->kato_ms : 0;
	nvl_rdma_sgl_set_keyed((struct nvl_nvme_cmd *)&cc, (uintptr_t)d, sizeof(*d), q->mr->rkey);
	(void)host_rdma_slot_take(q->slots, q->nslots, 0);
	q->state = RQ_FABRIC_CONNECT;
	rc = q_post_cmd(q, 0, (const struct nvl_nvme_cmd *)&cc, NULL, 0);
	if (rc < 0)
		q_fail(q, rc, "cannot send the Connect command: %s", strerror(-rc));
}

/* One CM event of the queue's own channel. */
static void
q_cm_event(struct rdma_q *q, const struct rdma_cm_event *ev)
{
	struct host_ctrlr *c = q->c;
	char why[256];
	int rc;

	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		if (q->state != RQ_ADDR)
			break;
		if (rdma_resolve_route(q->id, RDMA_RESOLVE_MS) != 0) {
			q_fail(q, -EHOSTUNREACH, "no RDMA route to %s: %s", c->uri.host,
			       strerror(errno));
			break;
		}
		q->state = RQ_ROUTE;
		break;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		if (q->state == RQ_ROUTE)
			(void)q_setup_verbs(q);
		break;
	case RDMA_CM_EVENT_ESTABLISHED:
		if (q->state != RQ_CM_CONNECT)
			break;
		rc = host_rdma_accept_check(ev->param.conn.private_data,
					    ev->param.conn.private_data_len, q->entries, why,
					    sizeof(why));
		if (rc < 0) {
			q_fail(q, rc, "queue %u: %s", q->qid, why);
			break;
		}
		q_send_connect(q);
		break;
	case RDMA_CM_EVENT_REJECTED:
		rc = host_rdma_reject_errno(ev->status, ev->param.conn.private_data,
					    ev->param.conn.private_data_len, q->qid, why,
					    sizeof(why));
		q_fail(q, rc, "%s", why);
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
		q_fail(q, -EHOSTUNREACH, "no RDMA device reaches %s (%s)", c->uri.host,
		       strerror(ev->status < 0 ? -ev->status : EHOSTUNREACH));
		break;
	case RDMA_CM_EVENT_ROUTE_ERROR:
		q_fail(q, -EHOSTUNREACH, "no RDMA route to %s (%s)", c->uri.host,
		       strerror(ev->status < 0 ? -ev->status : EHOSTUNREACH));
		break;
	case RDMA_CM_EVENT_UNREACHABLE:
		q_fail(q, -ETIMEDOUT, "%s:%s did not answer the RDMA connection request (queue %u)",
		       c->uri.host, c->uri.port, q->qid);
		break;
	case RDMA_CM_EVENT_CONNECT_ERROR:
		q_fail(q, -ECONNREFUSED, "RDMA connection error (queue %u, status %d)", q->qid,
		       ev->status);
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
	case RDMA_CM_EVENT_ADDR_CHANGE:
		q_fail(q, -ENOTCONN, "queue %u: the target closed the connection (%s)", q->qid,
		       rdma_event_str(ev->event));
		break;
	default:
		break; /* TIMEWAIT_EXIT and others: nothing to do */
	}
}

/* Read every pending CM event. \return how many. */
static int
q_cm_poll(struct rdma_q *q)
{
	struct rdma_cm_event *ev;
	int n = 0;

	while (rdma_get_cm_event(q->ch, &ev) == 0) {
		struct rdma_cm_event copy = *ev;
		uint8_t pd[256];

		/* the private data lives in the event: keep a copy past the ack */
		if (copy.param.conn.private_data && copy.param.conn.private_data_len) {
			size_t l = NVL_MIN((size_t)copy.param.conn.private_data_len, sizeof(pd));

			memcpy(pd, copy.param.conn.private_data, l);
			copy.param.conn.private_data = pd;
			copy.param.conn.private_data_len = (uint8_t)l;
		}
		rdma_ack_cm_event(ev);
		q_cm_event(q, &copy);
		n++;
	}
	return n;
}

/* ---- completions ------------------------------------------------------------------------- */

static void admin_deliver(struct rdma_q *q, uint32_t idx);

static void
io_deliver(struct rdma_q *q, uint32_t idx)
{
	struct nvl_nvme_cpl cpl = q->slots[idx].cpl;

	host_rdma_slot_free(q->slots, q->nslots, idx);
	cpl.cid = (uint16_t)idx;
	host_qpair_complete(q->qp, &cpl);
}

/* Slot idx has its response and its SEND is done. */
static void
q_deliver(struct rdma_q *q, uint32_t idx)
{
	if (q->state == RQ_FABRIC_CONNECT && idx == 0) {
		struct nvl_nvme_cpl cpl = q->slots[0].cpl;
		uint16_t cntlid;
		char why[256];
		int rc;

		host_rdma_slot_free(q->slots, q->nslots, 0);
		rc = host_rdma_connect_result(&cpl, q->qid, q->cntlid, q->c->uri.nqn,
					      q->c->hostnqn, &cntlid, why, sizeof(why));
		if (rc < 0) {
			q_fail(q, rc, "%s", why);
			return;
		}
		q->cntlid = cntlid;
		q->state = RQ_READY;
		return;
	}
	if (q->qid == 0)
		admin_deliver(q, idx);
	else
		io_deliver(q, idx);
}

/* \return 1 if a slot completed, 0 if not, -1 if the queue failed. */
static int
q_handle_wc(struct rdma_q *q, const struct ibv_wc *wc)
{
	uint32_t idx = (uint32_t)(wc->wr_id >> 1), sidx;
	char why[160];
	int rc;

	if (nvl_unlikely(wc->status != IBV_WC_SUCCESS)) {
		q_fail(q, wc->status == IBV_WC_WR_FLUSH_ERR ? -ENOTCONN : -EIO,
		       "queue %u: %s completion failed: %s", q->qid,
		       (wc->wr_id & 1) == WR_RECV ? "receive" : "send",
		       ibv_wc_status_str(wc->status));
		return -1;
	}
	if ((wc->wr_id & 1) == WR_SEND) {
		rc = host_rdma_slot_send_done(q->slots, q->nslots, idx);
		if (rc < 0) {
			q_fail(q, -EPROTO, "queue %u: send completion for slot %u without a command",
			       q->qid, idx);
			return -1;
		}
		if (rc == HOST_RDMA_EV_COMPLETE)
			q_deliver(q, idx);
		return rc == HOST_RDMA_EV_COMPLETE;
	}
	if (nvl_unlikely(idx >= q->entries || wc->opcode != IBV_WC_RECV ||
			 (wc->wc_flags & IBV_WC_WITH_INV))) {
		/* we never offer a key to invalidate: the window's rkey must stay */
		q_fail(q, -EPROTO, "queue %u: unexpected receive (opcode %d, flags 0x%x)", q->qid,
		       wc->opcode, wc->wc_flags);
		return -1;
	}
	rc = host_rdma_rsp_recv(q->slots, q->nslots, q_cqe(q, idx), wc->byte_len, &sidx, why,
				sizeof(why));
	if (rc < 0) {
		q_fail(q, -EPROTO, "queue %u: %s", q->qid, why);
		return -1;
	}
	/* the CQE is copied into the slot: the buffer takes the next response */
	if (q_post_recv(q, idx) < 0) {
		q_fail(q, -EIO, "queue %u: cannot repost a receive buffer", q->qid);
		return -1;
	}
	if (rc == HOST_RDMA_EV_COMPLETE)
		q_deliver(q, sidx);
	return rc == HOST_RDMA_EV_COMPLETE;
}

/* Reap the stash and the CQ. \return slots completed, or -1 once the queue failed. */
static int
q_drain(struct rdma_q *q)
{
	struct ibv_wc wc[RDMA_WC_BATCH];
	int done = 0, n;

	if (q->cq == NULL)
		return 0;
	if (nvl_unlikely(q->nstash)) {
		int k = q->nstash;

		q->nstash = 0;
		for (int i = 0; i < k; i++) {
			int rc = q_handle_wc(q, &q->stash[i]);

			if (rc < 0)
				return -1;
			done += rc;
		}
	}
	do {
		n = ibv_poll_cq(q->cq, RDMA_WC_BATCH, wc);
		if (nvl_unlikely(n < 0)) {
			q_fail(q, -EIO, "queue %u: cannot poll the completion queue", q->qid);
			return -1;
		}
		for (int i = 0; i < n; i++) {
			int rc = q_handle_wc(q, &wc[i]);

			if (rc < 0)
				return -1;
			done += rc;
		}
	} while (n == RDMA_WC_BATCH);
	return done;
}

static void
q_consume_cq_events(struct rdma_q *q)
{
	struct ibv_cq *cq;
	void *ctx;

	if (q->cc == NULL)
		return;
	while (ibv_get_cq_event(q->cc, &cq, &ctx) == 0)
		ibv_ack_cq_events(cq, 1);
}

/* The controller's owner: CM events and completions of a queue being set
 * up (or the admin queue); the CQ is armed when this returns. \return work. */
static int
q_process_ctrl(struct rdma_q *q)
{
	int work = q_cm_poll(q), n;

	q_consume_cq_events(q);
	if (q->state != RQ_FABRIC_CONNECT && q->state != RQ_READY)
		return work;
	for (;;) {
		n = q_drain(q);
		if (n < 0)
			return work + 1;
		work += n;
		if (ibv_req_notify_cq(q->cq, 0) != 0) {
			q_fail(q, -EIO, "queue %u: cannot arm the completion queue", q->qid);
			return work + 1;
		}
		/* a completion between the last poll and the arm raised no event */
		n = q_drain(q);
		if (n < 0)
			return work + 1;
		if (n == 0)
			return work;
		work += n;
	}
}

/* ---- controller ------------------------------------------------------------------------------- */

static int
rdma_ctrlr_init(struct host_ctrlr *c)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct ibv_device **l;
	struct rdma_state *ts;
	int n = 0, rc;

	l = ibv_get_device_list(&n);
	if (l)
		ibv_free_device_list(l);
	if (l == NULL || n == 0) {
		host_ctrlr_set_error(c, "%s", g_host_rdma_nodev);
		return -ENETDOWN;
	}
	ts = calloc(1, sizeof(*ts));
	if (ts == NULL)
		return -ENOMEM;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (c->opts.numeric_host ? AI_NUMERICHOST : 0);
	rc = getaddrinfo(c->uri.host, c->uri.port, &hints, &ai);
	if (rc != 0 || ai->ai_addrlen > sizeof(ts->addr)) {
		host_ctrlr_set_error(c, "cannot resolve %s port %s", c->uri.host, c->uri.port);
		if (rc == 0)
			freeaddrinfo(ai);
		free(ts);
		return rc == EAI_NONAME || rc == EAI_AGAIN ? -EHOSTUNREACH : -EINVAL;
	}
	memcpy(&ts->addr, ai->ai_addr, ai->ai_addrlen);
	ts->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	c->tstate = ts;
	return 0;
}

static void
rdma_ctrlr_fini(struct host_ctrlr *c)
{
	free(c->tstate);
	c->tstate = NULL;
}

static void
assoc_free(struct rdma_assoc *ta)
{
	q_destroy(ta->admin);
	free(ta);
}

static int
rdma_assoc_start(struct host_ctrlr *c, uint64_t now)
{
	struct rdma_assoc *ta;
	int rc;

	(void)now;
	ta = calloc(1, sizeof(*ta));
	if (ta == NULL)
		return -ENOMEM;
	rc = q_create(c, c->tstate, 0, RDMA_ADMIN_ENTRIES, 0xffff, NULL, &ta->admin);
	if (rc < 0) {
		free(ta);
		return rc;
	}
	ta->admin->ta = ta;
	ta->admin->kato_ms = c->opts.kato_ms;
	c->tctx = ta;
	return 0;
}

static void
rdma_assoc_stop(struct host_ctrlr *c)
{
	struct rdma_assoc *ta = c->tctx;

	if (ta == NULL)
		return;
	c->tctx = NULL;
	if (ta->in_process) {
		ta->stopped = true; /* rdma_process frees it when the queue's processing returns */
		return;
	}
	/* outstanding admin commands are forgotten: the core completes them */
	assoc_free(ta);
}

static void
admin_deliver(struct rdma_q *q, uint32_t idx)
{
	struct host_rdma_slot *s = &q->slots[idx];
	struct host_admin_req *a = s->arg;
	struct host_ctrlr *c = q->c;
	struct nvl_nvme_cpl cpl = s->cpl;
	void *bounce = s->bounce;

	host_rdma_slot_free(q->slots, q->nslots, idx);
	if (bounce) {
		if (a->dir == NVL_XFER_FROM_CTRLR)
			memcpy(a->buf, bounce, a->len);
		host_window_free(q->res->win, bounce);
	}
	if (q->ta->stopped || c->tctx != q->ta)
		return; /* the association ended: the core answered it already */
	cpl.cid = a->cmd.cid;
	host_admin_complete(c, a, &cpl, NULL, 0);
}

static int
rdma_admin_send(struct host_ctrlr *c, struct host_admin_req *a)
{
	struct rdma_assoc *ta = c->tctx;
	struct rdma_q *q = ta->admin;
	struct nvl_nvme_cmd cmd = a->cmd;
	struct host_rdma_slot *s;
	void *buf = a->buf;
	int rc;

	a->sent = false;
	if (q->state != RQ_READY)
		return -ENOTCONN;
	rc = host_rdma_slot_take(q->slots, q->nslots, a->slot);
	if (rc < 0)
		return rc == -EBUSY ? -EAGAIN : rc;
	s = &q->slots[a->slot];
	s->arg = a;
	if (a->len && !host_window_contains(q->res->win, a->buf, a->len)) {
		buf = host_window_alloc(q->res->win, a->len);
		if (buf == NULL) {
			host_rdma_slot_free(q->slots, q->nslots, a->slot);
			return -ENOMEM;
		}
		if (a->dir == NVL_XFER_TO_CTRLR)
			memcpy(buf, a->buf, a->len);
		else
			memset(buf, 0, a->len);
		s->bounce = buf;
	}
	cmd.cid = a->slot; /* the wire's id is the slot; the core's comes back in admin_deliver */
	nvl_rdma_sgl_set_keyed(&cmd, (uintptr_t)buf, a->len, a->len ? q->res->win_mr->rkey : 0);
	rc = q_post_cmd(q, a->slot, &cmd, NULL, 0);
	if (rc < 0) {
		if (s->bounce)
			host_window_free(q->res->win, s->bounce);
		host_rdma_slot_free(q->slots, q->nslots, a->slot);
		return rc;
	}
	a->sent = true;
	return 0;
}

/* Drive the I/O queues being connected. \return work done. */
static int
process_connecting(struct host_ctrlr *c, struct rdma_assoc *ta)
{
	struct host_qpair *qp, *tmp;
	int work = 0;

	TAILQ_FOREACH_SAFE(qp, &c->qpairs, link, tmp) {
		struct rdma_q *q = qp->tconn;

		if (qp->cstate != HOST_QP_CONNECTING || q == NULL)
			continue;
		work += q_process_ctrl(q);
		if (q->state != RQ_READY && q->state != RQ_FAILED)
			continue;
		work++;
		qp->tconn = NULL;
		if (q->state == RQ_READY) {
			q->c = NULL; /* from now on its queue pair's thread's */
			host_tq_connected(c, qp, &q->base);
		} else {
			int rc = q->err ? q->err : -EPROTO;
			char why[256];

			snprintf(why, sizeof(why), "%s", q->why);
			q_destroy(q);
			host_tq_failed(c, qp, rc, "I/O queue %u: %s", qp->qid, why);
		}
		if (c->tctx != ta)
			break; /* that ended the association */
	}
	return work;
}

static int
rdma_process(struct host_ctrlr *c, uint64_t now)
{
	struct rdma_assoc *ta = c->tctx;
	struct rdma_q *q = ta->admin;
	int n;

	(void)now;
	ta->in_process = true;
	n = q_process_ctrl(q);
	ta->in_process = false;
	if (ta->stopped) {
		assoc_free(ta);
		return 1;
	}
	if (q->state == RQ_FAILED) {
		if (!ta->ready)
			host_assoc_fail(c, q->err ? q->err : -EPROTO, "%s:%s: %s", c->uri.host,
					c->uri.port, q->why);
		else
			host_assoc_fail(c, -ENOTCONN, "admin queue: %s", q->why);
		return 1;
	}
	if (!ta->ready && q->state == RQ_READY) {
		ta->ready = true;
		c->cntlid = q->cntlid;
		host_window_get(q->res->win);
		c->win = q->res->win;
		host_assoc_transport_ready(c);
		n++;
		if (c->tctx != ta)
			return n;
	}
	return (n > 0) + process_connecting(c, ta);
}

static int
q_fds(const struct rdma_q *q, struct pollfd *p, int max)
{
	int n = 0;

	if (n < max && q->ch) {
		p[n].fd = q->ch->fd;
		p[n].events = POLLIN;
		p[n++].revents = 0;
	}
	if (n < max && q->cc) {
		p[n].fd = q->cc->fd;
		p[n].events = POLLIN;
		p[n++].revents = 0;
	}
	return n;
}

static int
rdma_fds(struct host_ctrlr *c, struct pollfd *p, int max)
{
	struct rdma_assoc *ta = c->tctx;
	struct host_qpair *qp;
	int n = q_fds(ta->admin, p, max);

	TAILQ_FOREACH(qp, &c->qpairs, link) {
		if (n >= max)
			break;
		if (qp->cstate != HOST_QP_CONNECTING || qp->tconn == NULL)
			continue;
		n += q_fds(qp->tconn, p + n, max - n);
	}
	return n;
}

/* ---- I/O queues --------------------------------------------------------------------------------- */

static int
rdma_tq_connect(struct host_ctrlr *c, struct host_qpair *qp)
{
	struct rdma_assoc *ta = c->tctx;
	struct rdma_q *q;
	int rc;

	if (ta == NULL || ta->admin->res == NULL)
		return -ENOTCONN;
	rc = q_create(c, c->tstate, qp->qid, (uint16_t)qp->entries, c->cntlid, ta->admin->res, &q);
	if (rc < 0)
		return rc;
	/* IOCCSZ counts 16-byte units of the capsule, the 64-byte SQE included */
	q->icd_max = c->id.ioccsz >= 4 ? c->id.ioccsz * 16u - RDMA_SQE_SIZE : 0;
	q->base.ops = &g_host_rdma_ops;
	host_window_get(q->res->win);
	q->base.win = q->res->win;
	q->qp = qp;
	qp->tconn = q;
	return 0;
}

static void
rdma_tq_cancel(struct host_ctrlr *c, struct host_qpair *qp)
{
	(void)c;
	q_destroy(qp->tconn);
	qp->tconn = NULL;
}

static void
rdma_tq_destroy(struct host_tq *tq)
{
	/* the disconnect deletes the I/O queue on the controller */
	q_destroy((struct rdma_q *)tq);
}

static int
rdma_submit(struct host_qpair *qp, struct host_tq *tq, struct host_req *r, struct nvl_nvme_cmd *cmd,
	    const struct iovec *iov, int iovcnt)
{
	struct rdma_q *q = (struct rdma_q *)tq;
	const void *icd = NULL;
	uint32_t icd_len = 0;
	int rc;

	(void)qp;
	if (nvl_unlikely(q->state != RQ_READY))
		return -ENOTCONN;
	/* the core bounces anything outside the window into one piece of it */
	if (nvl_unlikely(r->len && (iovcnt != 1 || !host_window_contains(q->base.win,
									 iov[0].iov_base, r->len))))
		return -EINVAL;
	rc = host_rdma_slot_take(q->slots, q->nslots, r->cid);
	if (nvl_unlikely(rc < 0))
		return rc == -EBUSY ? -EAGAIN : rc;
	if (r->len == 0) {
		nvl_rdma_sgl_set_keyed(cmd, 0, 0, 0);
	} else if (r->dir == NVL_XFER_TO_CTRLR && r->len <= q->icd_max) {
		nvl_rdma_sgl_set_icd(cmd, r->len);
		icd = iov[0].iov_base;
		icd_len = r->len;
	} else {
		nvl_rdma_sgl_set_keyed(cmd, (uintptr_t)iov[0].iov_base, r->len,
				       q->res->win_mr->rkey);
	}
	rc = q_post_cmd(q, r->cid, cmd, icd, icd_len);
	if (nvl_unlikely(rc < 0)) {
		host_rdma_slot_free(q->slots, q->nslots, r->cid);
		q_fail(q, rc, "queue %u: cannot post a send: %s", q->qid, strerror(-rc));
		return -ENOTCONN;
	}
	return 0;
}

/* The queue failed: every command it had dies with the connection (not a
 * controller status), and the core hears of it once. */
static void
io_lost(struct host_qpair *qp, struct rdma_q *q)
{
	if (q->lost_reported)
		return;
	q->lost_reported = true;
	for (uint32_t i = 0; i < q->nslots; i++) {
		if (!q->slots[i].busy)
			continue;
		host_rdma_slot_free(q->slots, q->nslots, i);
		host_qpair_path_lost(qp, (uint16_t)i);
	}
	host_qpair_lost(qp, "I/O queue %u: %s", q->qid, q->why);
}

static int
rdma_poll(struct host_qpair *qp, struct host_tq *tq, uint32_t max)
{
	struct rdma_q *q = (struct rdma_q *)tq;
	int n;

	(void)max;
	if (nvl_unlikely(q->state == RQ_FAILED)) {
		io_lost(qp, q);
		return 0;
	}
	n = q_drain(q);
	if (nvl_unlikely(n < 0)) {
		io_lost(qp, q);
		return 0;
	}
	if (n == 0) {
		uint64_t now = nvl_now_ns();

		/* idle: has the target gone? (its DISCONNECTED is a CM event) */
		if (now >= q->cm_check_ns) {
			q->cm_check_ns = now + RDMA_CM_CHECK_MS * 1000000ULL;
			(void)q_cm_poll(q);
			if (q->state == RQ_FAILED)
				io_lost(qp, q);
		}
	}
	return n;
}

static int
rdma_tq_fds(const struct host_tq *tq, struct pollfd *p, int max)
{
	return q_fds((const struct rdma_q *)tq, p, max);
}

static int
rdma_arm(struct host_tq *tq)
{
	struct rdma_q *q = (struct rdma_q *)tq;
	int n;

	if (q->state == RQ_FAILED)
		return -ENOTCONN;
	if (q->nstash)
		return -EAGAIN;
	if (ibv_req_notify_cq(q->cq, 0) != 0)
		return -ENOTCONN;
	/* completions that came before the arm raise no event: keep them */
	n = ibv_poll_cq(q->cq, RDMA_WC_BATCH, q->stash);
	if (n < 0)
		return -ENOTCONN;
	q->nstash = n;
	return n ? -EAGAIN : 0;
}

static int
rdma_ack(struct host_qpair *qp, struct host_tq *tq, const struct pollfd *pfds, int n)
{
	struct rdma_q *q = (struct rdma_q *)tq;

	for (int i = 0; i < n; i++) {
		if (pfds[i].revents == 0)
			continue;
		if (q->cc && pfds[i].fd == q->cc->fd)
			q_consume_cq_events(q);
		else if (q->ch && pfds[i].fd == q->ch->fd)
			(void)q_cm_poll(q);
	}
	if (q->state == RQ_FAILED) {
		io_lost(qp, q);
		return -ENOTCONN;
	}
	return 0;
}

const struct host_transport_ops g_host_rdma_ops = {
	.name = "rdma",
	.kind = NVL_URI_NVME_RDMA,
	.fabrics = true,
	.delete_queues = false,
	.spin_yields = false,
	.admin_bounces = true, /* rdma_admin_send */
	.ctrlr_init = rdma_ctrlr_init,
	.ctrlr_fini = rdma_ctrlr_fini,
	.assoc_start = rdma_assoc_start,
	.assoc_stop = rdma_assoc_stop,
	.process = rdma_process,
	.fds = rdma_fds,
	.admin_send = rdma_admin_send,
	.tq_connect = rdma_tq_connect,
	.tq_cancel = rdma_tq_cancel,
	.tq_destroy = rdma_tq_destroy,
	.submit = rdma_submit,
	.poll = rdma_poll,
	.tq_fds = rdma_tq_fds,
	.arm = rdma_arm,
	.ack = rdma_ack,
};
