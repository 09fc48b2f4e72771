/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The brick over RDMA (docs/brick.md "RDMA"): the "RDMA" listener and its
 * connections, daemon side. A passive target: the brick's control messages
 * (HELLO, ALLOC, FREE, MAP, UNMAP, LIST, FLUSH, ... with the TCP encoding of
 * src/proto/brick.c) travel as RDMA SEND/RECV and are parsed by the shared
 * connection core (server.c, brick_conn_process), which sees them as the
 * byte stream the messages carry in order; data moves with one-sided RDMA
 * READ/WRITE by the client against memory regions this file registers.
 *
 * What this file owns:
 *   - one RDMA CM event channel for every brick RDMA listener and
 *     connection, watched on reactor 0;
 *   - per listener (struct brick_rdma_lis): its listening CM id;
 *   - per connection (struct brick_rdma_conn): its CM id, protection domain,
 *     completion channel + CQ (watched on reactor 0), RC queue pair,
 *     BRDMA_NRECV receive and BRDMA_NSEND send buffers of BRDMA_MSG bytes,
 *     and the connection core's struct brick_conn;
 *   - per handle mapped over RDMA (struct brick_rdma_mr): the block's memory
 *     region on that connection's PD (REMOTE_READ, plus REMOTE_WRITE and
 *     LOCAL_WRITE for read-write handles) and a reference on the block's
 *     memory. The store calls h->unexport when the handle goes (UNMAP, FREE,
 *     the connection's end, the brick's deletion): the region is
 *     deregistered there, before the request is answered, so the rkey stops
 *     working and a client that kept it gets a remote access error.
 *
 * Flow control: the receiver reposts a receive buffer once the core has
 * consumed its bytes, and the core stops reading while BRICK_CONN_QD answers
 * are pending; both sides connect with an infinite RNR retry count, so a
 * sender whose message finds no receive buffer waits in its NIC.
 *
 * Threads: reactor 0 only (bricks, the connection core and this file).
 * Teardown order: the connection core first (it revokes the session's
 * handles: every MR is deregistered), then the QP, CQ, channel, buffers,
 * PD and CM id. A connection that must close while sends are still in its
 * send queue (a refused HELLO's answer) waits for their completions first.
 */
#include "brick/brick_internal.h"
#include "reactor/reactor.h"
#include "util/log.h"
#include "util/util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <rdma/rdma_cma.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>

NVL_LOG_DECLARE_COMPONENT(brick);

#define BRDMA_MSG BRICK_RDMA_MSG_SIZE
#define BRDMA_NRECV 16
#define BRDMA_NSEND 16
#define BRDMA_BACKLOG 128
#define BRDMA_RNR_INFINITE 7  /* IB spec: rnr_retry 7 = retry forever */
#define BRDMA_RD_ATOM_MAX 16  /* RDMA READs a client may have in flight, at most */

enum brdma_kind {
	BRDMA_LISTENER = 1,
	BRDMA_CONN,
};

enum brdma_conn_state {
	BRDMA_ACCEPTING = 0,  /* accepted, not established yet */
	BRDMA_CONNECTED,
	BRDMA_DRAINING,       /* the core is done: waiting for our last sends */
	BRDMA_CLOSED,
};

struct brick_rdma_lis {
	enum brdma_kind kind; /* first: CM ids' context tells listeners from conns */
	struct rdma_cm_id *id;
	struct brick_listener *l;
	TAILQ_ENTRY(brick_rdma_lis) link;
};

struct brick_rdma_conn {
	enum brdma_kind kind;
	enum brdma_conn_state state;
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	struct nvl_fdh *ch_fdh;
	bool qp_made;
	struct brick_conn *bc;
	uint8_t *rbuf, *sbuf;
	struct ibv_mr *rmr, *smr;
	/* completed receives in arrival order, consumed by the core */
	uint32_t rx_idx[BRDMA_NRECV], rx_len[BRDMA_NRECV];
	unsigned rx_head, rx_n;
	size_t rx_off;
	bool sbusy[BRDMA_NSEND];
	unsigned nsend;       /* sends posted, not completed */
	unsigned nmr;         /* memory regions exported */
	unsigned in_cb;       /* inside one of our callbacks: free at its end */
	bool dead;            /* resources to be freed when in_cb drops to 0 */
	char peer[64];
	TAILQ_ENTRY(brick_rdma_conn) link;
};

/* An exported block: what h->xp points at. */
struct brick_rdma_mr {
	struct ibv_mr *mr;
	struct brick_mem *mem;
	struct brick_rdma_conn *rc;
};

static TAILQ_HEAD(, brick_rdma_lis) g_lis = TAILQ_HEAD_INITIALIZER(g_lis);
static TAILQ_HEAD(, brick_rdma_conn) g_rconns = TAILQ_HEAD_INITIALIZER(g_rconns);
static struct rdma_event_channel *g_chan;
static struct nvl_fdh *g_chan_fdh;

static void rconn_close(struct brick_rdma_conn *rc, const char *why);

/* ---- event channel ----------------------------------------------------- */

static void brdma_cm_events(void *arg, uint32_t events);

static int
brdma_chan_get(void)
{
	int fl;

	if (g_chan)
		return 0;
	g_chan = rdma_create_event_channel();
	if (g_chan == NULL)
		return -ENODEV;
	fl = fcntl(g_chan->fd, F_GETFL);
	if (fl < 0 || fcntl(g_chan->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		goto err_chan;
	g_chan_fdh = nvl_fd_add(g_chan->fd, EPOLLIN, brdma_cm_events, NULL);
	if (g_chan_fdh == NULL)
		goto err_chan;
	return 0;
err_chan:
	rdma_destroy_event_channel(g_chan);
	g_chan = NULL;
	return -ENOMEM;
}

/* The channel goes once no listener and no connection uses it. */
static void
brdma_chan_put(void)
{
	if (g_chan == NULL || !TAILQ_EMPTY(&g_lis) || !TAILQ_EMPTY(&g_rconns))
		return;
	nvl_fd_del(g_chan_fdh);
	g_chan_fdh = NULL;
	rdma_destroy_event_channel(g_chan);
	g_chan = NULL;
}

/* ---- connections: buffers ---------------------------------------------- */

static int
rconn_post_recv(struct brick_rdma_conn *rc, uint32_t idx)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(rc->rbuf + (size_t)idx * BRDMA_MSG),
		.length = BRDMA_MSG,
		.lkey = rc->rmr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = idx, .sg_list = &sge, .num_sge = 1 }, *bad;

	return -ibv_post_recv(rc->id->qp, &wr, &bad);
}

/* brick_conn_io.recv: bytes of the received messages, in order. */
static long
rconn_recv(void *ctx, void *buf, size_t len)
{
	struct brick_rdma_conn *rc = ctx;
	size_t done = 0;

	while (done < len && rc->rx_n > 0) {
		uint32_t idx = rc->rx_idx[rc->rx_head];
		size_t have = rc->rx_len[rc->rx_head] - rc->rx_off;
		size_t n = NVL_MIN(have, len - done);

		memcpy((uint8_t *)buf + done, rc->rbuf + (size_t)idx * BRDMA_MSG + rc->rx_off, n);
		done += n;
		rc->rx_off += n;
		if (rc->rx_off == rc->rx_len[rc->rx_head]) {
			/* consumed: the buffer takes the next message */
			rc->rx_off = 0;
			rc->rx_head = (rc->rx_head + 1) % BRDMA_NRECV;
			rc->rx_n--;
			if (rconn_post_recv(rc, idx) < 0)
				return -EIO;
		}
	}
	return done ? (long)done : -EAGAIN;
}

/* brick_conn_io.sendv: as much as the free send buffers take, one SEND each. */
static long
rconn_sendv(void *ctx, const struct iovec *iov, int iovcnt, int fd)
{
	struct brick_rdma_conn *rc = ctx;
	long total = 0;
	int i = 0;
	size_t off = 0;

	(void)fd; /* never set: the RDMA transport passes no descriptors */
	if (rc->state != BRDMA_CONNECTED && rc->state != BRDMA_ACCEPTING)
		return -EPIPE;
	while (i < iovcnt) {
		struct ibv_send_wr wr = { 0 }, *bad;
		struct ibv_sge sge;
		unsigned s;
		size_t n = 0;
		uint8_t *dst;

		for (s = 0; s < BRDMA_NSEND && rc->sbusy[s]; s++)
			;
		if (s == BRDMA_NSEND)
			break;
		dst = rc->sbuf + (size_t)s * BRDMA_MSG;
		while (i < iovcnt && n < BRDMA_MSG) {
			size_t k = NVL_MIN(iov[i].iov_len - off, BRDMA_MSG - n);

			memcpy(dst + n, (const uint8_t *)iov[i].iov_base + off, k);
			n += k;
			off += k;
			if (off == iov[i].iov_len) {
				i++;
				off = 0;
			}
		}
		if (n == 0)
			break;
		sge.addr = (uintptr_t)dst;
		sge.length = (uint32_t)n;
		sge.lkey = rc->smr->lkey;
		wr.wr_id = BRDMA_NRECV + s;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.opcode = IBV_WR_SEND;
		wr.send_flags = IBV_SEND_SIGNALED;
		if (ibv_post_send(rc->id->qp, &wr, &bad) != 0)
			return total ? total : -EIO;
		rc->sbusy[s] = true;
		rc->nsend++;
		total += (long)n;
	}
	return total ? total : -EAGAIN;
}

/* ---- connections: memory regions --------------------------------------- */

static void
put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
rconn_unexport(struct brick_handle *h)
{
	struct brick_rdma_mr *x = h->xp;
	int rc;

	rc = ibv_dereg_mr(x->mr);
	if (rc != 0)
		NVL_ERRLOG("brick rdma %s: block 0x%" PRIx64 ": cannot deregister its memory "
			   "region: %s", x->rc->peer, h->blk->addr, strerror(rc));
	/* one-sided writes may have landed since the map: flush_all covers it */
	if (h->flags & NVL_BRICK_MAP_RW)
		h->blk->maybe_dirty = true;
	x->rc->nmr--;
	brick_mem_put(x->mem);
	free(x);
	h->xp = NULL;
	h->unexport = NULL;
}

/* brick_conn_io.map_export: the block becomes a memory region of this PD. */
static int
rconn_map_export(void *ctx, struct brick_handle *h, uint8_t *out)
{
	struct brick_rdma_conn *rc = ctx;
	struct brick_mem *m = h->blk->mem;
	struct brick_rdma_mr *x;
	int access = IBV_ACCESS_REMOTE_READ;

	if (h->flags & NVL_BRICK_MAP_RW)
		access |= IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return -ENOMEM;
	x->mr = ibv_reg_mr(rc->pd, m->va, BRICK_BLOCK_SIZE, access);
	if (x->mr == NULL) {
		int e = errno ? errno : ENOMEM;

		NVL_ERRLOG_RL("brick rdma %s: block 0x%" PRIx64 ": cannot register it: %s",
			      rc->peer, h->blk->addr, strerror(e));
		free(x);
		return e == EFAULT ? -EIO : -ENOMEM;
	}
	brick_mem_get(m);
	x->mem = m;
	x->rc = rc;
	rc->nmr++;
	h->xp = x;
	h->unexport = rconn_unexport;
	put_le(out, (uintptr_t)m->va, 8);
	put_le(out + 8, x->mr->rkey, 4);
	put_le(out + 12, 0, 4);
	return 0;
}

/* ---- connections: life ------------------------------------------------- */

static void
rconn_free(struct brick_rdma_conn *rc)
{
	nvl_fd_del(rc->ch_fdh);
	rc->ch_fdh = NULL;
	if (rc->qp_made)
		rdma_destroy_qp(rc->id);
	if (rc->cq)
		ibv_destroy_cq(rc->cq);
	if (rc->ch)
		ibv_destroy_comp_channel(rc->ch);
	if (rc->rmr)
		ibv_dereg_mr(rc->rmr);
	if (rc->smr)
		ibv_dereg_mr(rc->smr);
	free(rc->rbuf);
	free(rc->sbuf);
	if (rc->pd)
		ibv_dealloc_pd(rc->pd);
	rdma_destroy_id(rc->id);
	TAILQ_REMOVE(&g_rconns, rc, link);
	free(rc);
	brdma_chan_put();
}

/* The core closed the connection (brick_conn_destroy): its handles, and so
 * their memory regions, are gone already. */
static void
rconn_core_closed(void *ctx)
{
	struct brick_rdma_conn *rc = ctx;

	rc->bc = NULL;
	if (rc->state == BRDMA_CONNECTED && rc->nsend > 0) {
		/* its last answers (a refused HELLO's...) are still being sent */
		rc->state = BRDMA_DRAINING;
		return;
	}
	rconn_close(rc, NULL);
}

static void
rconn_close(struct brick_rdma_conn *rc, const char *why)
{
	struct brick_conn *bc = rc->bc;

	if (rc->state == BRDMA_CLOSED)
		return;
	rc->state = BRDMA_CLOSED;
	if (why)
		NVL_DEBUGLOG(brick, "brick rdma %s: connection closed: %s", rc->peer, why);
	if (bc != NULL) {
		rc->bc = NULL;
		brick_conn_destroy(bc); /* revokes the handles: every MR deregistered */
	}
	assert(rc->nmr == 0);
	rdma_disconnect(rc->id);
	rc->dead = true;
	if (rc->in_cb == 0)
		rconn_free(rc);
}

/* Let the core run; close what it is done with. */
static void
rconn_drive(struct brick_rdma_conn *rc)
{
	if (rc->state == BRDMA_DRAINING) {
		if (rc->nsend == 0)
			rconn_close(rc, "done");
		return;
	}
	if (rc->state != BRDMA_CONNECTED || rc->bc == NULL)
		return;
	if (brick_conn_process(rc->bc) < 0) {
		struct brick_conn *bc = rc->bc;

		/* the core is done with it (rconn_core_closed drains or closes) */
		rc->bc = NULL;
		brick_conn_destroy(bc);
	}
}

static void
rconn_cq_cb(void *arg, uint32_t events)
{
	struct brick_rdma_conn *rc = arg;
	struct ibv_cq *cq;
	void *cq_ctx;
	struct ibv_wc wc[16];
	int n = 0;

	(void)events;
	rc->in_cb++;
	while (ibv_get_cq_event(rc->ch, &cq, &cq_ctx) == 0)
		ibv_ack_cq_events(cq, 1);
	if (rc->state == BRDMA_CLOSED)
		goto out;
	ibv_req_notify_cq(rc->cq, 0);
	while (rc->state != BRDMA_CLOSED && (n = ibv_poll_cq(rc->cq, 16, wc)) > 0) {
		for (int i = 0; i < n && rc->state != BRDMA_CLOSED; i++) {
			if (wc[i].status != IBV_WC_SUCCESS) {
				if (wc[i].status != IBV_WC_WR_FLUSH_ERR)
					NVL_ERRLOG_RL("brick rdma %s: work completion failed: %s",
						      rc->peer, ibv_wc_status_str(wc[i].status));
				rconn_close(rc, ibv_wc_status_str(wc[i].status));
				break;
			}
			if (wc[i].wr_id < BRDMA_NRECV) {
				unsigned t = (rc->rx_head + rc->rx_n) % BRDMA_NRECV;

				rc->rx_idx[t] = (uint32_t)wc[i].wr_id;
				rc->rx_len[t] = wc[i].byte_len;
				rc->rx_n++;
			} else {
				rc->sbusy[wc[i].wr_id - BRDMA_NRECV] = false;
				rc->nsend--;
			}
		}
		rconn_drive(rc);
	}
	if (n < 0 && rc->state != BRDMA_CLOSED)
		rconn_close(rc, "CQ poll failed");
out:
	if (--rc->in_cb == 0 && rc->dead)
		rconn_free(rc);
}

static int
rconn_setup(struct brick_rdma_conn *rc)
{
	struct ibv_qp_init_attr qa = { 0 };
	int fl;

	rc->pd = ibv_alloc_pd(rc->id->verbs);
	if (rc->pd == NULL)
		return -ENOMEM;
	rc->ch = ibv_create_comp_channel(rc->id->verbs);
	if (rc->ch == NULL)
		return -ENOMEM;
	fl = fcntl(rc->ch->fd, F_GETFL);
	if (fl < 0 || fcntl(rc->ch->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	rc->cq = ibv_create_cq(rc->id->verbs, BRDMA_NRECV + BRDMA_NSEND + 4, rc, rc->ch, 0);
	if (rc->cq == NULL)
		return -ENOMEM;
	if (ibv_req_notify_cq(rc->cq, 0) != 0)
		return -EIO;
	qa.send_cq = rc->cq;
	qa.recv_cq = rc->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = BRDMA_NSEND;
	qa.cap.max_recv_wr = BRDMA_NRECV;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	if (rdma_create_qp(rc->id, rc->pd, &qa) != 0)
		return errno ? -errno : -ENOMEM;
	rc->qp_made = true;
	rc->rbuf = aligned_alloc(4096, (size_t)BRDMA_NRECV * BRDMA_MSG);
	rc->sbuf = aligned_alloc(4096, (size_t)BRDMA_NSEND * BRDMA_MSG);
	if (rc->rbuf == NULL || rc->sbuf == NULL)
		return -ENOMEM;
	rc->rmr = ibv_reg_mr(rc->pd, rc->rbuf, (size_t)BRDMA_NRECV * BRDMA_MSG,
			     IBV_ACCESS_LOCAL_WRITE);
	rc->smr = ibv_reg_mr(rc->pd, rc->sbuf, (size_t)BRDMA_NSEND * BRDMA_MSG, 0);
	if (rc->rmr == NULL || rc->smr == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < BRDMA_NRECV; i++)
		if (rconn_post_recv(rc, i) < 0)
			return -EIO;
	rc->ch_fdh = nvl_fd_add(rc->ch->fd, EPOLLIN, rconn_cq_cb, rc);
	if (rc->ch_fdh == NULL)
		return -ENOMEM;
	return 0;
}

static int
rconn_accept(struct brick_rdma_conn *rc, uint8_t initiator_depth)
{
	struct rdma_conn_param cp = { 0 };
	struct ibv_device_attr da;

	/* the client reads blocks with RDMA READ: as many in flight as it asked
	 * for, up to what the device allows; the target reads nothing */
	cp.responder_resources = NVL_MIN(initiator_depth, BRDMA_RD_ATOM_MAX);
	if (ibv_query_device(rc->id->verbs, &da) == 0)
		cp.responder_resources = (uint8_t)NVL_MIN((int)cp.responder_resources,
							  da.max_qp_rd_atom);
	cp.initiator_depth = 0;
	cp.rnr_retry_count = BRDMA_RNR_INFINITE;
	cp.retry_count = 7;
	if (rdma_accept(rc->id, &cp) != 0)
		return errno ? -errno : -EIO;
	return 0;
}

static void
rconn_request(struct rdma_cm_id *id, struct brick_rdma_lis *lis, uint8_t initiator_depth)
{
	struct brick_conn_io io = {
		.recv = rconn_recv,
		.sendv = rconn_sendv,
		.passes_fds = false,
		.map_export = rconn_map_export,
		.closed = rconn_core_closed,
	};
	struct brick_listener *l = lis->l;
	struct brick_rdma_conn *rc;
	struct sockaddr *sa = rdma_get_peer_addr(id);
	char host[NI_MAXHOST] = "?";
	int err;

	if (sa)
		getnameinfo(sa, sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							  : sizeof(struct sockaddr_in),
			    host, sizeof(host), NULL, 0, NI_NUMERICHOST);
	if (l->nconns >= BRICK_MAX_CONNS_PER_LISTENER) {
		NVL_ERRLOG_RL("brick listener RDMA %s:%s: %u connections, refusing more",
			      l->traddr, l->trsvcid, l->nconns);
		goto err_reject;
	}
	rc = calloc(1, sizeof(*rc));
	if (rc == NULL)
		goto err_reject;
	rc->kind = BRDMA_CONN;
	rc->state = BRDMA_ACCEPTING;
	rc->id = id;
	id->context = rc;
	nvl_strlcpy(rc->peer, host, sizeof(rc->peer));
	TAILQ_INSERT_TAIL(&g_rconns, rc, link);
	err = rconn_setup(rc);
	if (err == 0) {
		io.ctx = rc;
		rc->bc = brick_conn_create(&io, l);
		if (rc->bc == NULL)
			err = -ENOMEM;
	}
	if (err == 0) {
		err = rconn_accept(rc, initiator_depth);
		if (err < 0) {
			NVL_ERRLOG_RL("brick rdma: cannot accept %s: %s", host, strerror(-err));
			rconn_close(rc, "accept failed");
			return;
		}
	}
	if (err < 0) {
		NVL_ERRLOG_RL("brick rdma: connection from %s on %s:%s refused: %s", host,
			      l->traddr, l->trsvcid, strerror(-err));
		rdma_reject(id, NULL, 0);
		rc->state = BRDMA_CLOSED;
		rc->dead = true;
		rconn_free(rc); /* frees the id too */
		return;
	}
	NVL_DEBUGLOG(brick, "brick rdma: connection from %s on %s:%s", host, l->traddr,
		     l->trsvcid);
	return;
err_reject:
	rdma_reject(id, NULL, 0);
	rdma_destroy_id(id);
}

/* ---- CM events --------------------------------------------------------- */

static struct brick_rdma_lis *
brdma_lis_of(const struct rdma_cm_id *id)
{
	struct brick_rdma_lis *lis;

	TAILQ_FOREACH(lis, &g_lis, link)
		if (lis->id == id)
			return lis;
	return NULL;
}

static void
brdma_cm_events(void *arg, uint32_t events)
{
	struct rdma_cm_event *ev;

	(void)arg;
	(void)events;
	while (g_chan && rdma_get_cm_event(g_chan, &ev) == 0) {
		enum rdma_cm_event_type type = ev->event;
		struct rdma_cm_id *id = ev->id, *listen_id = ev->listen_id;
		/* a connection request's values are the client's, swapped to our
		 * side's view: responder_resources = the READs it will have in flight */
		uint8_t depth = ev->param.conn.responder_resources;
		struct brick_rdma_lis *lis;
		struct brick_rdma_conn *rc;

		/* acked first: destroying an id waits for its events' acks */
		rdma_ack_cm_event(ev);
		switch (type) {
		case RDMA_CM_EVENT_CONNECT_REQUEST:
			lis = listen_id ? brdma_lis_of(listen_id) : NULL;
			if (lis == NULL) { /* the listener went while this waited */
				rdma_reject(id, NULL, 0);
				rdma_destroy_id(id);
				break;
			}
			rconn_request(id, lis, depth);
			break;
		case RDMA_CM_EVENT_ESTABLISHED:
			rc = id->context;
			if (rc && rc->kind == BRDMA_CONN && rc->state == BRDMA_ACCEPTING) {
				rc->state = BRDMA_CONNECTED;
				rc->in_cb++;
				rconn_drive(rc); /* a HELLO may have arrived already */
				if (--rc->in_cb == 0 && rc->dead)
					rconn_free(rc);
			}
			break;
		case RDMA_CM_EVENT_DISCONNECTED:
		case RDMA_CM_EVENT_REJECTED:
		case RDMA_CM_EVENT_UNREACHABLE:
		case RDMA_CM_EVENT_CONNECT_ERROR:
		case RDMA_CM_EVENT_DEVICE_REMOVAL:
		case RDMA_CM_EVENT_TIMEWAIT_EXIT:
			lis = brdma_lis_of(id);
			if (lis) {
				NVL_WARNLOG("brick rdma: listener %s:%s: %s", lis->l->traddr,
					    lis->l->trsvcid, rdma_event_str(type));
				break;
			}
			rc = id->context;
			if (rc && rc->kind == BRDMA_CONN && type != RDMA_CM_EVENT_TIMEWAIT_EXIT)
				rconn_close(rc, rdma_event_str(type));
			break;
		default:
			break;
		}
	}
}

/* ---- listener ops ------------------------------------------------------ */

static int
brdma_listen(struct brick_listener *l)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct brick_rdma_lis *lis;
	const char *why;
	int rc;

	if (l->trsvcid[0] == '\0')
		return -EINVAL;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_family = AF_UNSPEC;
	if (getaddrinfo(l->traddr, l->trsvcid, &hints, &ai) != 0 || ai == NULL) {
		NVL_ERRLOG("brick rdma: cannot listen on %s port %s: not a numeric address and "
			   "port", l->traddr, l->trsvcid);
		return -EINVAL;
	}
	lis = calloc(1, sizeof(*lis));
	if (lis == NULL) {
		rc = -ENOMEM;
		goto err_ai;
	}
	lis->kind = BRDMA_LISTENER;
	lis->l = l;
	rc = brdma_chan_get();
	if (rc < 0) {
		why = "no RDMA connection manager (rdma_ucm loaded? /dev/infiniband/rdma_cm)";
		goto err_log;
	}
	if (rdma_create_id(g_chan, &lis->id, lis, RDMA_PS_TCP) != 0) {
		rc = errno == ENOENT || errno == ENODEV ? -ENODEV : -errno;
		why = rc == -ENODEV ? "no RDMA connection manager" : strerror(-rc);
		goto err_chan;
	}
	if (rdma_bind_addr(lis->id, ai->ai_addr) != 0) {
		rc = -errno;
		if (rc == -ENODEV || rc == -EADDRNOTAVAIL)
			rc = -EADDRNOTAVAIL;
		why = rc == -EADDRNOTAVAIL ? "no RDMA device has this address" : strerror(-rc);
		goto err_id;
	}
	if (rdma_listen(lis->id, BRDMA_BACKLOG) != 0) {
		rc = -errno;
		why = strerror(-rc);
		goto err_id;
	}
	TAILQ_INSERT_TAIL(&g_lis, lis, link);
	freeaddrinfo(ai);
	l->fd = -1;
	l->priv = lis;
	return 0;
err_id:
	rdma_destroy_id(lis->id);
err_chan:
	brdma_chan_put();
err_log:
	NVL_ERRLOG("brick rdma: cannot listen on %s port %s: %s", l->traddr, l->trsvcid, why);
	free(lis);
err_ai:
	freeaddrinfo(ai);
	return rc;
}

static void
brdma_stop(struct brick_listener *l)
{
	struct brick_rdma_lis *lis = l->priv;

	if (lis == NULL)
		return;
	TAILQ_REMOVE(&g_lis, lis, link);
	rdma_destroy_id(lis->id);
	free(lis);
	l->priv = NULL;
	brdma_chan_put();
}

const struct brick_transport_ops brick_transport_rdma = {
	.name = "RDMA",
	.passes_fds = false,
	.own_accept = true,
	.listen = brdma_listen,
	.stop = brdma_stop,
	.accepted = NULL,
};
