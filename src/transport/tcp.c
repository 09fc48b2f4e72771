/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/TCP target transport (DESIGN.md section 6; NVMe/TCP Transport
 * Specification 1.0; NVMe over Fabrics 1.1 for Connect/Property/Disconnect).
 * Three files by job: this one is the transport's face (options, listeners,
 * the table of controllers and their teardown, the ops the target calls);
 * tcp_conn.c owns connections (lifecycle, socket I/O, migration to their
 * reactor); tcp_capsule.c owns commands (PDU handlers, Fabrics Connect,
 * requests, R2T and responses). tcp_internal.h has the structures.
 *
 * Ownership and threads:
 *  - listeners, accepted connections before their Fabrics Connect, admin
 *    connections and every struct tcp_ctrlr live on reactor 0, which is
 *    also every controller's home reactor (admin commands run there);
 *  - an I/O queue's connection moves, once its Connect succeeded, to the
 *    reactor nvl_reactor_pick() chose for it (given back when it is freed)
 *    and stays there for life: its socket, its requests, its buffers are
 *    only touched there;
 *  - reactor 0 owns the I/O queue table of a controller: it alone decides
 *    that a queue closes (controller teardown, reset, Disconnect, or a
 *    fatal error the queue reports with a message), clears the table slot
 *    and sends the queue one close message; the queue drains its commands
 *    in flight, frees itself on its reactor and sends "gone" back. The
 *    controller is released (nvl_nvmf_ctrlr_release) only after every
 *    I/O queue is gone, and freed after its admin connection drained.
 *  - nothing is freed from inside the call chain that noticed the end:
 *    connection memory goes in a message to its own reactor.
 *
 * Data path: each connection has a poller that, while the connection is
 * busy (received something within the reactor's spin window), does
 * non-blocking recv/send every loop iteration; otherwise the reactor's
 * epoll wakes it. Payload is received straight into the command's buffer
 * (readv of the buffer plus the staging buffer for the headers that
 * follow); responses go out with sendmsg scatter-gather (header, data,
 * digest, response capsule), batched per loop iteration. Every request
 * slot keeps its data buffer for reuse (bounded: queue depth x largest
 * transfer seen).
 */
#include "transport/tcp_internal.h"
#include "util/log.h"
#include "util/sock.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(nvmf_tcp)

struct tcp_opts g_tcp_opts = {
	.max_queue_depth = 128,
	.max_aq_depth = 128,
	.max_io_qpairs = 127,
	.icd = 8192,
	.max_io_size = 131072,
	.maxh2cdata = 131072,
	.c2h_success = true,
	.sock_priority = 0,
	.stall_ms = 30000,
	.max_conns_per_peer = 256,
	.reserved_conns = 64,
};

struct tcp_conn_list g_tcp_pending = TAILQ_HEAD_INITIALIZER(g_tcp_pending);
struct tcp_ctrlr_list g_tcp_ctrlrs = TAILQ_HEAD_INITIALIZER(g_tcp_ctrlrs);
unsigned g_tcp_nconns;

/* ---- controllers (reactor 0) ------------------------------------------------------ */

void
tcp_ctrlr_try_free(struct tcp_ctrlr *ctl)
{
	if (!ctl->closing || ctl->in_try_free)
		return;
	ctl->in_try_free = true;
	if (ctl->nio_alive)
		goto out;
	/* finishes held AERs, which come back through tcp_req_done */
	nvl_nvmf_ctrlr_release_once(&ctl->tc);
	if (ctl->admin)
		goto out;
	TAILQ_REMOVE(&g_tcp_ctrlrs, ctl, link);
	free(ctl);
	return;
out:
	ctl->in_try_free = false;
}

void
tcp_ctrlr_teardown(struct tcp_ctrlr *ctl, const char *why)
{
	if (ctl->closing)
		return;
	ctl->closing = true;
	if (ctl->tc)
		ctl->tc->state = NVL_TCTRLR_DISCONNECTING;
	for (unsigned q = 1; q <= TCP_MAX_IO_QUEUES; q++)
		tcp_ioq_close(ctl, (uint16_t)q);
	if (ctl->admin && ctl->admin->state != TC_CLOSING)
		tcp_conn_close(ctl->admin, why);
	tcp_ctrlr_try_free(ctl);
}

/* ---- NVMe layer hooks ---------------------------------------------------------------- */

static void
tcp_nvme_reset(struct nvl_nvme_ctrlr *nc)
{
	struct nvl_nvmf_ctrlr *tc = nc->owner;
	struct tcp_ctrlr *ctl = tc->tctx;

	/* CC.EN cleared or shutdown: the I/O queues go; the host reconnects them */
	for (unsigned q = 1; q <= TCP_MAX_IO_QUEUES; q++)
		tcp_ioq_close(ctl, (uint16_t)q);
}

const struct nvl_nvme_queue_ops g_tcp_queue_ops = {
	.reset = tcp_nvme_reset,
};

/* ---- listeners ----------------------------------------------------------------------- */

static int
tcp_listen(const struct nvl_listen_addr *a, int *fd)
{
	int rc;

	rc = nvl_sock_listen_tcp(a->traddr, a->trsvcid,
				 strcasecmp(a->adrfam, "IPv6") == 0 ? AF_INET6 : AF_INET, 128, fd);
	if (rc < 0) {
		NVL_ERRLOG("tcp: cannot listen on %s port %s: %s", a->traddr, a->trsvcid,
			   rc == -EINVAL ? "not a numeric address and port" : strerror(-rc));
		return rc;
	}
	NVL_NOTICELOG("tcp: listening on %s port %s", a->traddr, a->trsvcid);
	return 0;
}

static void
tcp_stop_listen(const struct nvl_listen_addr *a)
{
	NVL_NOTICELOG("tcp: stopped listening on %s port %s", a->traddr, a->trsvcid);
}

/* ---- transport ops --------------------------------------------------------------------- */

static void
tcp_ctrlr_disconnect(struct nvl_nvmf_ctrlr *tc)
{
	tcp_ctrlr_teardown(tc->tctx, "disconnected by the target");
}

static json_t *
tcp_conn_json(const struct tcp_conn *c)
{
	static const char *const names[] = { "ic_wait", "connect_wait", "migrating",
					     "active", "failed", "closing", "kept" };

	return json_pack("{s:i, s:s, s:s, s:s, s:i, s:i, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:i}",
			 "qid", (int)c->qid, "state", names[c->state], "trtype", "TCP", "peer",
			 c->peer, "entries", (int)c->entries, "reactor",
			 c->reactor ? (int)nvl_reactor_id(c->reactor) : -1, "header_digest",
			 c->hdgst, "data_digest", c->ddgst, "commands", (json_int_t)c->cmds,
			 "bytes_in", (json_int_t)c->bytes_in, "bytes_out",
			 (json_int_t)c->bytes_out, "r2ts", (json_int_t)c->r2ts, "c2h_success",
			 (json_int_t)c->c2h_success, "outstanding", (int)c->busy);
}

static void
tcp_ctrlr_qpairs(struct nvl_nvmf_ctrlr *tc, json_t *arr)
{
	struct tcp_ctrlr *ctl = tc->tctx;

	/* racy reads of other reactors' counters: monitoring only */
	if (ctl->admin)
		json_array_append_new(arr, tcp_conn_json(ctl->admin));
	for (unsigned q = 1; q <= TCP_MAX_IO_QUEUES; q++)
		if (ctl->ioq[q])
			json_array_append_new(arr, tcp_conn_json(ctl->ioq[q]));
}

static int
tcp_configure(json_t *opts, char *err, size_t errlen)
{
	__typeof__(g_tcp_opts) o = g_tcp_opts;
	json_t *v;

	if (nvl_nvmf_opt_u32(opts, "max_queue_depth", 2, 4096, &o.max_queue_depth, err, errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "max_aq_depth", 32, 4096, &o.max_aq_depth, err, errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "max_io_qpairs_per_ctrlr", 1, TCP_MAX_IO_QUEUES, &o.max_io_qpairs, err,
		    errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "in_capsule_data_size", 0, 65536, &o.icd, err, errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "max_io_size", 2 * NVL_NVME_PAGE_SIZE, NVL_NVME_MAX_XFER, &o.max_io_size,
		    err, errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "io_unit_size", NVL_TCP_MIN_MAXH2CDATA, NVL_NVME_MAX_XFER, &o.maxh2cdata,
		    err, errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "sock_priority", 0, 6, &o.sock_priority, err, errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "ack_timeout", 100, 3600000, &o.stall_ms, err, errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "max_conns_per_peer", 1, TCP_MAX_CONNS, &o.max_conns_per_peer, err,
		    errlen) < 0 ||
	    nvl_nvmf_opt_u32(opts, "reserved_conns", 0, TCP_MAX_CONNS - 1, &o.reserved_conns, err,
		    errlen) < 0)
		return -EINVAL;
	if (o.icd % 16) {
		snprintf(err, errlen, "in_capsule_data_size must be a multiple of 16");
		return -EINVAL;
	}
	if (o.maxh2cdata % 4) {
		snprintf(err, errlen, "io_unit_size must be a multiple of 4");
		return -EINVAL;
	}
	if ((v = json_object_get(opts, "c2h_success")) != NULL)
		o.c2h_success = json_is_true(v);
	/* MDTS counts a power of two of pages: what is in force is the value rounded down */
	if (o.max_io_size != (uint32_t)NVL_NVME_PAGE_SIZE << nvl_nvme_mdts_for(o.max_io_size)) {
		uint32_t was = o.max_io_size;

		o.max_io_size = (uint32_t)NVL_NVME_PAGE_SIZE << nvl_nvme_mdts_for(was);
		NVL_NOTICELOG("tcp: max_io_size %u rounded down to %u (MDTS %u)", was,
			      o.max_io_size, nvl_nvme_mdts_for(was));
	}
	g_tcp_opts = o;
	return 0;
}

static json_t *
tcp_dump_opts(void)
{
	return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:i, s:i, s:i, s:i}", "max_queue_depth",
			 (int)g_tcp_opts.max_queue_depth, "max_aq_depth", (int)g_tcp_opts.max_aq_depth,
			 "max_io_qpairs_per_ctrlr", (int)g_tcp_opts.max_io_qpairs,
			 "in_capsule_data_size", (int)g_tcp_opts.icd, "max_io_size",
			 (int)g_tcp_opts.max_io_size, "io_unit_size", (int)g_tcp_opts.maxh2cdata,
			 "c2h_success", g_tcp_opts.c2h_success, "sock_priority",
			 (int)g_tcp_opts.sock_priority, "ack_timeout", (int)g_tcp_opts.stall_ms,
			 "max_conns_per_peer", (int)g_tcp_opts.max_conns_per_peer, "reserved_conns",
			 (int)g_tcp_opts.reserved_conns);
}

static bool
tcp_drained(void *arg)
{
	(void)arg;
	return TAILQ_EMPTY(&g_tcp_ctrlrs) && TAILQ_EMPTY(&g_tcp_pending) &&
	       __atomic_load_n(&g_tcp_nconns, __ATOMIC_RELAXED) == 0;
}

static void
tcp_fini(void (*done)(void))
{
	struct tcp_ctrlr *ctl, *tctl;
	struct tcp_conn *c, *tc;

	/* the listeners went with the subsystems (nvl_nvmf_fini) */
	tcp_keep_fini();
	TAILQ_FOREACH_SAFE(c, &g_tcp_pending, link, tc)
		tcp_conn_close(c, "daemon shutting down");
	TAILQ_FOREACH_SAFE(ctl, &g_tcp_ctrlrs, link, tctl)
		tcp_ctrlr_teardown(ctl, "daemon shutting down");
	if (nvl_reactor_drain_fini(tcp_drained, NULL, done, 1000) < 0)
		done();
}

struct nvl_transport_ops g_tcp_ops = {
	.name = "TCP",
	.nvmf_trtype = NVL_NVMF_TRTYPE_TCP,
	.listen = tcp_listen,
	.accept = tcp_conn_new,
	.stop_listen = tcp_stop_listen,
	.ctrlr_disconnect = tcp_ctrlr_disconnect,
	.ctrlr_qpairs = tcp_ctrlr_qpairs,
	.configure = tcp_configure,
	.dump_opts = tcp_dump_opts,
	.fini = tcp_fini,
	.restore = tcp_keep_restore,
	.suspend = tcp_keep_suspend,
};
NVL_TRANSPORT_REGISTER(tcp, &g_tcp_ops)
