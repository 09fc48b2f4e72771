/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/RDMA target transport (NVM Express RDMA Transport Specification
 * 1.0b; NVMe over Fabrics 1.1 for Connect/Property/Disconnect and the
 * RDMA_CM private data). Three files by job, like NVMe/TCP: this one is the
 * transport's face (options, listeners and the RDMA connection manager's
 * event channel, the table of controllers and their teardown, the ops the
 * target calls); rdma_conn.c owns queue pairs (verbs resources, completion
 * polling, posting, an I/O queue's move to its reactor, the end of a
 * connection); rdma_capsule.c owns commands (capsules, data descriptors,
 * RDMA READ/WRITE of data, Fabrics Connect). rdma_internal.h has the
 * structures and says who owns what.
 *
 * Ownership and threads:
 *  - the CM event channel, the listeners (one RDMA CM id each), every
 *    connection before its Fabrics Connect, admin connections and every
 *    struct rdma_ctrlr live on reactor 0, which is also every controller's
 *    home reactor;
 *  - an I/O queue's connection is polled, once its Connect succeeded, on the
 *    reactor nvl_reactor_pick() chose for it; reactor 0 alone decides that
 *    it closes (rdma_conn.c says in which order it ends).
 *
 * Listeners: the target core watches a socket per listener; an RDMA
 * listener has none (connection requests arrive as CM events on the
 * transport's event channel, which this file watches on reactor 0), so
 * listen() answers with *fd = -1 and the core keeps no acceptor for it.
 */
#include "transport/rdma_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <rdma/rdma_cma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

NVL_LOG_REGISTER_COMPONENT(nvmf_rdma)

struct rdma_opts g_rdma_opts = {
	.max_queue_depth = 128,
	.max_aq_depth = 128,
	.max_io_qpairs = 127,
	.icd = 4096,
	.max_io_size = 131072,
	.io_unit_size = 131072,
	.max_srq_depth = 4096,
	.no_srq = true,
	.num_cqe = 4096,
	.acceptor_backlog = 100,
	.no_wr_batching = false,
};

struct rdma_conn_list g_rdma_pending = TAILQ_HEAD_INITIALIZER(g_rdma_pending);
struct rdma_ctrlr_list g_rdma_ctrlrs = TAILQ_HEAD_INITIALIZER(g_rdma_ctrlrs);
unsigned g_rdma_nconns;

/* ---- controllers (reactor 0) ------------------------------------------------------ */

void
rdma_ctrlr_try_free(struct rdma_ctrlr *ctl)
{
	if (!ctl->closing || ctl->in_try_free)
		return;
	ctl->in_try_free = true;
	if (ctl->nio_alive)
		goto out;
	/* finishes held AERs, which come back through rdma_req_done */
	nvl_nvmf_ctrlr_release_once(&ctl->tc);
	if (ctl->admin)
		goto out;
	TAILQ_REMOVE(&g_rdma_ctrlrs, ctl, link);
	free(ctl);
	return;
out:
	ctl->in_try_free = false;
}

void
rdma_ctrlr_teardown(struct rdma_ctrlr *ctl, const char *why)
{
	if (ctl->closing)
		return;
	ctl->closing = true;
	if (ctl->tc)
		ctl->tc->state = NVL_TCTRLR_DISCONNECTING;
	for (unsigned q = 1; q <= RDMA_MAX_IO_QUEUES; q++)
		rdma_ioq_close(ctl, (uint16_t)q);
	if (ctl->admin)
		rdma_conn_close(ctl->admin, why);
	rdma_ctrlr_try_free(ctl);
}

/* ---- NVMe layer hooks ---------------------------------------------------------------- */

static void
rdma_nvme_reset(struct nvl_nvme_ctrlr *nc)
{
	struct nvl_nvmf_ctrlr *tc = nc->owner;
	struct rdma_ctrlr *ctl = tc->tctx;

	/* CC.EN cleared or shutdown: the I/O queues go; the host reconnects them */
	for (unsigned q = 1; q <= RDMA_MAX_IO_QUEUES; q++)
		rdma_ioq_close(ctl, (uint16_t)q);
}

const struct nvl_nvme_queue_ops g_rdma_queue_ops = {
	.reset = rdma_nvme_reset,
};

/* ---- the connection manager (reactor 0) ------------------------------------------------ */

struct rdma_listener {
	struct nvl_listen_addr addr;
	struct rdma_cm_id *id;
	TAILQ_ENTRY(rdma_listener) link;
};

static TAILQ_HEAD(, rdma_listener) g_rdma_listeners = TAILQ_HEAD_INITIALIZER(g_rdma_listeners);
static struct rdma_event_channel *g_rdma_chan;
static struct nvl_fdh *g_rdma_chan_fdh;

static struct rdma_listener *
rdma_listener_of(const struct rdma_cm_id *id)
{
	struct rdma_listener *l;

	TAILQ_FOREACH(l, &g_rdma_listeners, link)
		if (l->id == id)
			return l;
	return NULL;
}

static void
rdma_cm_dispatch(const struct rdma_cm_event *ev, struct rdma_cm_id *id,
		 struct rdma_cm_id *listen_id, const void *pd, uint8_t pd_len)
{
	struct rdma_listener *l;
	struct rdma_conn *c;

	switch (ev->event) {
	case RDMA_CM_EVENT_CONNECT_REQUEST:
		l = listen_id ? rdma_listener_of(listen_id) : NULL;
		if (l == NULL) {
			/* the listener closed while the request was queued */
			rdma_reject(id, NULL, 0);
			rdma_destroy_id(id);
			return;
		}
		rdma_conn_request(id, &l->addr, pd, pd_len, ev->param.conn.initiator_depth);
		return;
	case RDMA_CM_EVENT_ESTABLISHED:
		c = id->context;
		if (c)
			NVL_DEBUGLOG(nvmf_rdma, "%s: qid %u established", c->peer, c->cm_qid);
		return;
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_REJECTED:
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_CONNECT_ERROR:
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		l = rdma_listener_of(id);
		if (l) {
			NVL_WARNLOG("rdma: listener %s port %s: %s", l->addr.traddr,
				    l->addr.trsvcid, rdma_event_str(ev->event));
			return;
		}
		c = id->context;
		if (c)
			rdma_conn_cm_gone(c, rdma_event_str(ev->event));
		return;
	default:
		NVL_DEBUGLOG(nvmf_rdma, "CM event %s ignored", rdma_event_str(ev->event));
		return;
	}
}

static void
rdma_cm_events(void *arg, uint32_t events)
{
	struct rdma_cm_event *ev;

	(void)arg;
	(void)events;
	while (g_rdma_chan && rdma_get_cm_event(g_rdma_chan, &ev) == 0) {
		struct rdma_cm_event copy = *ev;
		struct rdma_cm_id *id = ev->id, *listen_id = ev->listen_id;
		uint8_t pd[256];
		uint8_t pd_len = 0;

		if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST && ev->param.conn.private_data) {
			pd_len = ev->param.conn.private_data_len;
			memcpy(pd, ev->param.conn.private_data, pd_len);
		}
		/* acked first: destroying an id waits for its events to be acked */
		rdma_ack_cm_event(ev);
		rdma_cm_dispatch(&copy, id, listen_id, pd_len ? pd : NULL, pd_len);
	}
}

static int
rdma_chan_get(void)
{
	int fl, rc;

	if (g_rdma_chan)
		return 0;
	g_rdma_chan = rdma_create_event_channel();
	if (g_rdma_chan == NULL)
		return errno ? -errno : -ENODEV;
	fl = fcntl(g_rdma_chan->fd, F_GETFL);
	if (fl < 0 || fcntl(g_rdma_chan->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		rc = -errno;
		goto err_chan;
	}
	g_rdma_chan_fdh = nvl_fd_add(g_rdma_chan->fd, EPOLLIN, rdma_cm_events, NULL);
	if (g_rdma_chan_fdh == NULL) {
		rc = -ENOMEM;
		goto err_chan;
	}
	return 0;
err_chan:
	rdma_destroy_event_channel(g_rdma_chan);
	g_rdma_chan = NULL;
	return rc;
}

/* The channel goes once nothing uses it (no listener, no connection). */
static void
rdma_chan_put(void)
{
	if (g_rdma_chan == NULL || !TAILQ_EMPTY(&g_rdma_listeners) ||
	    __atomic_load_n(&g_rdma_nconns, __ATOMIC_RELAXED) != 0)
		return;
	nvl_fd_del(g_rdma_chan_fdh);
	g_rdma_chan_fdh = NULL;
	rdma_destroy_event_channel(g_rdma_chan);
	g_rdma_chan = NULL;
}

/* ---- listeners ----------------------------------------------------------------------- */

static int
rdma_tgt_listen(const struct nvl_listen_addr *a, int *fd)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct rdma_listener *l;
	const char *why;
	int rc;

	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_family = strcasecmp(a->adrfam, "IPv6") == 0 ? AF_INET6 : AF_INET;
	if (getaddrinfo(a->traddr, a->trsvcid, &hints, &ai) != 0 || ai == NULL) {
		NVL_ERRLOG("rdma: cannot listen on %s port %s: not a numeric address and port",
			   a->traddr, a->trsvcid);
		return -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		rc = -ENOMEM;
		goto err_ai;
	}
	l->addr = *a;
	rc = rdma_chan_get();
	if (rc < 0) {
		why = "no RDMA connection manager (rdma_ucm loaded? /dev/infiniband/rdma_cm)";
		goto err_log;
	}
	if (rdma_create_id(g_rdma_chan, &l->id, NULL, RDMA_PS_TCP) != 0) {
		rc = -errno;
		why = strerror(-rc);
		goto err_chan;
	}
	if (rdma_bind_addr(l->id, ai->ai_addr) != 0) {
		rc = -errno;
		why = rc == -ENODEV || rc == -EADDRNOTAVAIL ? "no RDMA device has this address"
							     : strerror(-rc);
		goto err_id;
	}
	if (rdma_listen(l->id, (int)g_rdma_opts.acceptor_backlog) != 0) {
		rc = -errno;
		why = strerror(-rc);
		goto err_id;
	}
	TAILQ_INSERT_TAIL(&g_rdma_listeners, l, link);
	freeaddrinfo(ai);
	NVL_NOTICELOG("rdma: listening on %s port %s", a->traddr, a->trsvcid);
	*fd = -1; /* connection requests come as CM events (rdma_cm_events) */
	return 0;
err_id:
	rdma_destroy_id(l->id);
err_chan:
	rdma_chan_put();
err_log:
	NVL_ERRLOG("rdma: cannot listen on %s port %s: %s", a->traddr, a->trsvcid, why);
	free(l);
err_ai:
	freeaddrinfo(ai);
	return rc;
}

static void
rdma_stop_listen(const struct nvl_listen_addr *a)
{
	struct rdma_listener *l;

	TAILQ_FOREACH(l, &g_rdma_listeners, link) {
		if (strcmp(l->addr.traddr, a->traddr) == 0 &&
		    strcmp(l->addr.trsvcid, a->trsvcid) == 0) {
			TAILQ_REMOVE(&g_rdma_listeners, l, link);
			rdma_destroy_id(l->id);
			free(l);
			NVL_NOTICELOG("rdma: stopped listening on %s port %s", a->traddr,
				      a->trsvcid);
			rdma_chan_put();
			return;
		}
	}
}

static void
rdma_accept_fd(const struct nvl_listen_addr *a, int fd)
{
	/* never called: an RDMA listener has no socket for the core to accept on */
	(void)a;
	(void)fd;
}

/* ---- transport ops --------------------------------------------------------------------- */

static void
rdma_ctrlr_disconnect(struct nvl_nvmf_ctrlr *tc)
{
	rdma_ctrlr_teardown(tc->tctx, "disconnected by the target");
}

static json_t *
rdma_conn_json(const struct rdma_conn *c)
{
	static const char *const names[] = { "connect_wait", "migrating", "active", "failed",
					     "closing" };

	return json_pack("{s:i, s:s, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:i}",
			 "qid", (int)c->qid, "state", names[c->state], "trtype", "RDMA", "peer",
			 c->peer, "entries", (int)c->entries, "reactor",
			 c->reactor ? (int)nvl_reactor_id(c->reactor) : -1, "max_reads",
			 (int)c->max_reads, "commands", (json_int_t)c->cmds, "bytes_in",
			 (json_int_t)c->bytes_in, "bytes_out", (json_int_t)c->bytes_out,
			 "rdma_reads", (json_int_t)c->rdma_reads, "rdma_writes",
			 (json_int_t)c->rdma_writes, "outstanding", (int)c->busy);
}

static void
rdma_ctrlr_qpairs(struct nvl_nvmf_ctrlr *tc, json_t *arr)
{
	struct rdma_ctrlr *ctl = tc->tctx;

	/* racy reads of other reactors' counters: monitoring only */
	if (ctl->admin)
		json_array_append_new(arr, rdma_conn_json(ctl->admin));
	for (unsigned q = 1; q <= RDMA_MAX_IO_QUEUES; q++)
		if (ctl->ioq[q])
			json_array_append_new(arr, rdma_conn_json(ctl->ioq[q]));
}

static int
rdma_configure(json_t *opts, char *err, size_t errlen)
{
	struct rdma_opts o = g_rdma_opts;
	json_t *v;

	if (nvl_nvmf_opt_u32(opts, "max_queue_depth", 2, 4096, &o.max_queue_depth, err, errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "max_aq_depth", 32, 4096, &o.max_aq_depth, err, errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "max_io_qpairs_per_ctrlr", 1, RDMA_MAX_IO_QUEUES, &o.max_io_qpairs,
			 err, errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "in_capsule_data_size", 0, 65536, &o.icd, err, errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "max_io_size", 2 * NVL_NVME_PAGE_SIZE, NVL_NVME_MAX_XFER,
			 &o.max_io_size, err, errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "io_unit_size", 4096, NVL_NVME_MAX_XFER, &o.io_unit_size, err,
			 errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "max_srq_depth", 2, 65536, &o.max_srq_depth, err, errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "num_cqe", 2, 1u << 20, &o.num_cqe, err, errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "acceptor_backlog", 1, 4096, &o.acceptor_backlog, err, errlen) < 0)
		return -EINVAL;
	if (o.icd % 16) {
		snprintf(err, errlen, "in_capsule_data_size must be a multiple of 16");
		return -EINVAL;
	}
	if ((v = json_object_get(opts, "no_srq")) != NULL)
		o.no_srq = json_is_true(v);
	if ((v = json_object_get(opts, "no_wr_batching")) != NULL)
		o.no_wr_batching = json_is_true(v);
	/* MDTS counts a power of two of pages: what is in force is the value rounded down */
	if (o.max_io_size != (uint32_t)NVL_NVME_PAGE_SIZE << nvl_nvme_mdts_for(o.max_io_size)) {
		uint32_t was = o.max_io_size;

		o.max_io_size = (uint32_t)NVL_NVME_PAGE_SIZE << nvl_nvme_mdts_for(was);
		NVL_NOTICELOG("rdma: max_io_size %u rounded down to %u (MDTS %u)", was,
			      o.max_io_size, nvl_nvme_mdts_for(was));
	}
	/* keyed transfers are one RDMA READ/WRITE: the 24-bit length of a descriptor bounds them */
	if (o.max_io_size > NVL_RDMA_KEYED_MAX_LEN + 1u) {
		snprintf(err, errlen, "max_io_size must be at most %u", NVL_RDMA_KEYED_MAX_LEN + 1u);
		return -EINVAL;
	}
	g_rdma_opts = o;
	return 0;
}

static json_t *
rdma_dump_opts(void)
{
	return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:i, s:i, s:b}",
			 "max_queue_depth", (int)g_rdma_opts.max_queue_depth, "max_aq_depth",
			 (int)g_rdma_opts.max_aq_depth, "max_io_qpairs_per_ctrlr",
			 (int)g_rdma_opts.max_io_qpairs, "in_capsule_data_size",
			 (int)g_rdma_opts.icd, "max_io_size", (int)g_rdma_opts.max_io_size,
			 "io_unit_size", (int)g_rdma_opts.io_unit_size, "max_srq_depth",
			 (int)g_rdma_opts.max_srq_depth, "no_srq", g_rdma_opts.no_srq, "num_cqe",
			 (int)g_rdma_opts.num_cqe, "acceptor_backlog",
			 (int)g_rdma_opts.acceptor_backlog, "no_wr_batching",
			 g_rdma_opts.no_wr_batching);
}

static bool
rdma_drained(void *arg)
{
	(void)arg;
	return TAILQ_EMPTY(&g_rdma_ctrlrs) && TAILQ_EMPTY(&g_rdma_pending) &&
	       __atomic_load_n(&g_rdma_nconns, __ATOMIC_RELAXED) == 0;
}

static void (*g_rdma_fini_done)(void);

static void
rdma_fini_done(void)
{
	if (rdma_drained(NULL)) {
		rdma_chan_put();
		rdma_devices_release();
	}
	g_rdma_fini_done();
}

static void
rdma_fini(void (*done)(void))
{
	struct rdma_ctrlr *ctl, *tctl;
	struct rdma_conn *c, *tc;

	/* the listeners went with the subsystems (nvl_nvmf_fini) */
	TAILQ_FOREACH_SAFE(c, &g_rdma_pending, link, tc)
		rdma_conn_close(c, "daemon shutting down");
	TAILQ_FOREACH_SAFE(ctl, &g_rdma_ctrlrs, link, tctl)
		rdma_ctrlr_teardown(ctl, "daemon shutting down");
	g_rdma_fini_done = done;
	if (nvl_reactor_drain_fini(rdma_drained, NULL, rdma_fini_done, 1000) < 0)
		rdma_fini_done();
}

struct nvl_transport_ops g_rdma_ops = {
	.name = "RDMA",
	.nvmf_trtype = NVL_NVMF_TRTYPE_RDMA,
	.listen = rdma_tgt_listen,
	.accept = rdma_accept_fd,
	.stop_listen = rdma_stop_listen,
	.ctrlr_disconnect = rdma_ctrlr_disconnect,
	.ctrlr_qpairs = rdma_ctrlr_qpairs,
	.configure = rdma_configure,
	.dump_opts = rdma_dump_opts,
	.fini = rdma_fini,
};
NVL_TRANSPORT_REGISTER(rdma, &g_rdma_ops)
