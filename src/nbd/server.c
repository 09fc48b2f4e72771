/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD server: listeners, exports, connections, I/O (docs/nbd.md).
 *
 * Ownership and threads
 * - Reactor 0 owns the listeners, the export table, the list of all
 *   connections and every connection's handshake (src/proto/nbd.c does the
 *   protocol; this file moves the bytes, non-blocking, with a handshake
 *   timeout).
 * - After NBD_OPT_GO / NBD_OPT_EXPORT_NAME a connection moves, for life, to
 *   the least-loaded reactor. There it is served run-to-completion: one
 *   readv() pulls request headers and write payloads (a payload that has not
 *   arrived yet is received straight into the request's I/O buffer), each
 *   request goes to the bdev from that reactor, and replies leave in batches
 *   with one sendmsg() of header + data iovecs (READ data is sent from the
 *   buffer the bdev filled: no staging copy).
 * - Reactor 0 never touches a moved connection except through messages; the
 *   owner reports the close to reactor 0, which unlinks it and sends the free
 *   back, so a message already queued for the connection never finds it gone.
 *   Statistics are written by the owner only (relaxed atomic stores) and read
 *   by reactor 0 for nbd_get_exports.
 *
 * Multi-connection consistency (NBD_FLAG_CAN_MULTI_CONN): all connections to
 * an export submit to the same bdev and nothing here caches data; a reply is
 * sent only after the bdev completed the request, and a FLUSH is submitted to
 * the bdev, whose flush covers every write it completed before, whichever
 * reactor or connection submitted it (fdatasync of the one file; nothing to do
 * for RAM). So a FLUSH answered on one connection covers every write answered
 * on any connection, and FUA writes are durable when answered.
 *
 * Bounds: max_connections (+ a few refusals answered with NBD_REP_ERR_POLICY),
 * NBD_CONN_REQS requests and NBD_CONN_BUDGET payload bytes in flight per
 * connection (reading stops, TCP pushes back), NBD_MAX_PAYLOAD per request,
 * option data NBD_OPT_DATA_MAX, handshake NBD_HS_TIMEOUT_US.
 */
#include "nbd/nbd_internal.h"
#include "bdev/bdev.h"
#include "reactor/reactor.h"
#include "util/dim.h"
#include "util/log.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(nbd)

#define NBD_CONN_REQS        256               /* requests in flight per connection */
#define NBD_CONN_BUDGET      (64ull << 20)     /* payload bytes in flight per connection */
#define NBD_CONN_CACHE       (32ull << 20)     /* payload buffers kept for reuse per connection */
#define NBD_BUF_KEEP_MAX     (2u << 20)        /* larger buffers are freed after use */
#define NBD_RBUF_SIZE        (64u << 10)       /* receive staging buffer */
#define NBD_SEND_IOV         64
#define NBD_RX_ROUNDS        16                /* readv()s per wake-up before yielding */
#define NBD_HS_TIMEOUT_US    (30ull * 1000000)
#define NBD_DRAIN_TIMEOUT_US (10ull * 1000000)
#define NBD_REFUSE_MAX       8                 /* over-limit connections told why at once */
#define NBD_EXPORTS_MAX      1024
#define NBD_ACCEPT_BATCH     64
/* Read holding (conn_hold_rx): see the comment there. */
#define NBD_HOLD_MIN_SPIN_US 50                /* hold only on a reactor that spins anyway */
#define NBD_PROBE_GAP_MIN    16                /* reads between trial holds, after a miss */
#define NBD_PROBE_GAP_MAX    1024
#define NBD_DIM_EPOCH        1024              /* requests per hold-time measurement */
#define NBD_HOLD_LEVELS_NS   { 0, 8000, 16000, 32000 } /* hold times tried (conn_hold_rx) */
#define NBD_DIM_EPOCH_MAX_NS (200ull * 1000000) /* longer: the client idled, no verdict */

enum nbd_conn_state {
	NBD_CONN_HANDSHAKE = 0, /* on reactor 0 */
	NBD_CONN_XMIT,          /* handed to its reactor */
	NBD_CONN_CLOSED,        /* socket closed, waiting for reactor 0 to unlink it */
};

enum nbd_rx_state {
	NBD_RX_HDR = 0,     /* next bytes are a request header */
	NBD_RX_PAYLOAD,     /* receiving rx_req's WRITE payload */
	NBD_RX_DISCARD,     /* skipping the payload of a refused WRITE */
};

struct nbd_req {
	struct nvl_bdev_io io;
	struct nbd_conn *conn;
	struct nbd_req_hdr h;
	uint8_t *buf;              /* payload, 4 KiB aligned (O_DIRECT-friendly) */
	uint32_t buf_cap;
	uint32_t data_len;         /* payload bytes sent after hdr */
	uint16_t hdr_len;
	bool flush_after;          /* FUA on TRIM/WRITE_ZEROES: a flush follows */
	uint32_t budget;           /* payload bytes charged to conn->busy_bytes */
	struct iovec iov;
	TAILQ_ENTRY(nbd_req) link; /* free list or send queue */
	uint8_t hdr[NBD_SR_ERR_MAX];
};

struct nbd_rctx;

struct nbd_conn {
	/* reactor 0 */
	TAILQ_ENTRY(nbd_conn) link;     /* g_srv.conns */
	TAILQ_ENTRY(nbd_conn) elink;    /* exp->conns */
	struct nbd_export *exp;
	uint64_t id;
	char peer[96];
	unsigned reactor;
	bool refused;
	const char *drain_why;          /* set by reactor 0 before it sends the drain message */
	struct nbd_hs *hs;

	/* owner reactor */
	enum nbd_conn_state state;
	int fd;
	struct nvl_fdh *fdh;
	uint32_t events;
	struct nvl_timer *timer;        /* handshake or drain timeout */
	struct nbd_rctx *rctx;
	struct nbd_xparams xp;
	struct nvl_bdev_desc *desc;
	bool flush_needed;              /* FUA on trim/zero needs a flush */
	bool can_flush;
	uint8_t *rbuf;
	uint32_t rpos, rlen;
	enum nbd_rx_state rx;
	struct nbd_req *rx_req;
	uint32_t rx_got;
	uint64_t rx_left;
	struct nbd_req *reqs;
	TAILQ_HEAD(, nbd_req) free_reqs;
	TAILQ_HEAD(, nbd_req) sendq;
	size_t send_off;
	unsigned nbusy;
	unsigned bdev_inflight;
	uint64_t busy_bytes;
	uint64_t cached_bytes;
	bool rx_stopped;                /* no more requests: DISC, EOF, drain, error */
	bool tx_dead;                   /* cannot send: drop replies */
	bool paused;                    /* out of request slots or budget */
	bool want_out;
	bool in_dirty;
	bool read_hold;                 /* the server's read_hold, when this one connected */
	bool holding;                   /* timed holds bring 2+ requests on average */
	const char *close_reason;
	TAILQ_ENTRY(nbd_conn) dlink;
	uint64_t hold_until;            /* a held read is due then (0: none held) */
	uint32_t hdrs;                  /* request headers parsed */
	uint32_t hold_hdrs;             /* hdrs when the held read was taken */
	uint32_t probe_in;              /* unheld reads left before a trial hold */
	uint32_t probe_gap;
	uint32_t hold_avg16;            /* requests per held read, x16, moving average */
	uint32_t dim_hdrs;              /* hdrs at the epoch's start */
	uint64_t dim_start;             /* epoch start, ns */
	struct nvl_dim dim;             /* chooses hold_level */
	uint8_t hold_level;             /* index in g_hold_ns */
	TAILQ_ENTRY(nbd_conn) hlink;    /* rctx->held */
	struct nbd_stats st;
};

/* Per-reactor state, touched only by its reactor. */
struct nbd_rctx {
	struct nvl_poller *poller;
	TAILQ_HEAD(, nbd_conn) dirty;   /* replies to send, parsing to resume, closes to check */
	TAILQ_HEAD(nbd_held, nbd_conn) held; /* held reads, in due order */
	unsigned nconns;
};

struct nbd_waiter {
	void (*fn)(void *arg);
	void *arg;
};

static struct {
	bool listening;
	bool stopping;
	char address[64];
	uint16_t port;
	char unix_path[108];
	uint32_t max_conns;
	bool read_hold;
	int tcp_fd, unix_fd;
	struct nvl_fdh *tcp_h, *unix_h;
	TAILQ_HEAD(, nbd_export) exports;
	unsigned nexports;
	TAILQ_HEAD(, nbd_conn) conns;
	unsigned nconns;                 /* counted against max_conns */
	unsigned nrefused;
	unsigned load[NVL_REACTOR_MAX];
	unsigned rr;
	uint64_t next_id;
	uint64_t refused_total;
	struct nbd_waiter idle[4];       /* called when no connection is left */
	unsigned nidle;
	char refuse_msg[96];
} g_srv = {
	.tcp_fd = -1,
	.unix_fd = -1,
	.exports = TAILQ_HEAD_INITIALIZER(g_srv.exports),
	.conns = TAILQ_HEAD_INITIALIZER(g_srv.conns),
};

static struct nbd_rctx *g_rctx[NVL_REACTOR_MAX];
static const uint32_t g_hold_ns[] = NBD_HOLD_LEVELS_NS;

#define ST_ADD(c, field, v)                                                                        \
	__atomic_store_n(&(c)->st.field, (c)->st.field + (v), __ATOMIC_RELAXED)

static void conn_service(struct nbd_conn *c);
static void conn_held_rx(struct nbd_conn *c);
static void conn_flush(struct nbd_conn *c);
static void conn_maybe_close(struct nbd_conn *c);
static void conn_fd_cb(void *arg, uint32_t events);
static void conn_closed_msg(void *arg);
static void srv_check_idle(void);

/* ---- exports (reactor 0) ---------------------------------------------- */

static struct nbd_export *
export_find(const char *name, size_t len)
{
	struct nbd_export *e;

	TAILQ_FOREACH(e, &g_srv.exports, link)
		if (strlen(e->name) == len && memcmp(e->name, name, len) == 0)
			return e;
	return NULL;
}

struct nbd_export *
nbd_export_get(const char *name)
{
	return export_find(name, strlen(name));
}

struct nbd_export *
nbd_export_first(void)
{
	return TAILQ_FIRST(&g_srv.exports);
}

struct nbd_export *
nbd_export_next(struct nbd_export *e)
{
	return TAILQ_NEXT(e, link);
}

static void
export_fill(const struct nbd_export *e, struct nbd_hs_export *out)
{
	out->name = e->name;
	out->description = e->description;
	out->size = e->size;
	out->min_block = e->block_size;
	out->pref_block = e->pref_block;
	out->max_block = e->max_block;
	out->tflags = e->tflags;
	out->handle = (void *)e;
}

static uint32_t
srv_lookup(void *ctx, const char *name, size_t len, struct nbd_hs_export *out, char *msg,
	   size_t msglen)
{
	struct nbd_export *e, *only = NULL;
	unsigned n = 0;
	char safe[80];

	(void)ctx;
	if (len == 0) {
		/* the default export: only when exactly one exists (docs/nbd.md) */
		TAILQ_FOREACH(e, &g_srv.exports, link) {
			if (!e->removing) {
				only = e;
				n++;
			}
		}
		if (n != 1) {
			snprintf(msg, msglen,
				 "no default export: the server has %u exports; name one "
				 "(NBD_OPT_LIST lists them)", n);
			return NVL_NBD_REP_ERR_UNKNOWN;
		}
		export_fill(only, out);
		return 0;
	}
	e = export_find(name, len);
	if (e == NULL || e->removing) {
		nbd_sanitize(safe, sizeof(safe), (const uint8_t *)name, len);
		snprintf(msg, msglen, "export '%s' does not exist%s", safe,
			 e ? " (being removed)" : "");
		return NVL_NBD_REP_ERR_UNKNOWN;
	}
	export_fill(e, out);
	return 0;
}

static void
srv_list(void *ctx, void (*emit)(void *arg, const struct nbd_hs_export *e), void *arg)
{
	struct nbd_export *e;
	struct nbd_hs_export he;

	(void)ctx;
	TAILQ_FOREACH(e, &g_srv.exports, link) {
		if (e->removing)
			continue;
		export_fill(e, &he);
		emit(arg, &he);
	}
}

static const struct nbd_hs_ops g_hs_ops = {
	.lookup = srv_lookup,
	.list = srv_list,
};

int
nbd_export_add(const struct nbd_export_opts *o, char *err, size_t errlen)
{
	struct nbd_export *e;
	struct nvl_bdev *b;
	char who[NBD_NAME_MAX + 32];
	uint32_t maxb;
	int rc;

	if (o->name == NULL || o->name[0] == '\0' || strlen(o->name) > NBD_NAME_MAX) {
		snprintf(err, errlen, "export name must be 1..%d bytes", NBD_NAME_MAX);
		return -EINVAL;
	}
	if (o->description && strlen(o->description) > NBD_DESC_MAX) {
		snprintf(err, errlen, "description must be at most %d bytes", NBD_DESC_MAX);
		return -EINVAL;
	}
	if (nbd_export_get(o->name)) {
		snprintf(err, errlen, "export '%s' already exists", o->name);
		return -EEXIST;
	}
	if (g_srv.nexports >= NBD_EXPORTS_MAX) {
		snprintf(err, errlen, "too many exports (at most %d)", NBD_EXPORTS_MAX);
		return -ENOSPC;
	}
	b = nvl_bdev_get_by_name(o->bdev);
	if (b == NULL) {
		snprintf(err, errlen, "bdev '%s' does not exist", o->bdev);
		return -ENOENT;
	}
	if (b->read_only && !o->read_only) {
		snprintf(err, errlen, "bdev '%s' is read-only: add the export with read_only", o->bdev);
		return -EROFS;
	}
	if (b->block_size > NVL_NBD_MAX_MIN_BLOCK) {
		snprintf(err, errlen, "bdev block size %u exceeds NBD's limit of %u", b->block_size,
			 NVL_NBD_MAX_MIN_BLOCK);
		return -EINVAL;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	e->description = strdup(o->description ? o->description : "");
	if (e->description == NULL) {
		rc = -ENOMEM;
		goto err_free;
	}
	nvl_strlcpy(e->name, o->name, sizeof(e->name));
	snprintf(who, sizeof(who), "nbd export '%s'", o->name);
	rc = nvl_bdev_open(o->bdev, !o->read_only, who, &e->desc);
	if (rc < 0) {
		snprintf(err, errlen, "cannot open bdev '%s': %s", o->bdev, strerror(-rc));
		goto err_desc;
	}
	nvl_strlcpy(e->bdev_name, b->name, sizeof(e->bdev_name));
	e->read_only = o->read_only;
	e->size = b->num_blocks * b->block_size;
	e->block_size = b->block_size;
	e->pref_block = NVL_MAX(b->block_size, NBD_PREF_BLOCK);
	maxb = NBD_MAX_PAYLOAD;
	if (b->max_io_bytes && b->max_io_bytes < maxb)
		maxb = b->max_io_bytes;
	maxb = NVL_ALIGN_DOWN(maxb, b->block_size);
	e->max_block = NVL_MAX(maxb, b->block_size);
	e->tflags = NVL_NBD_FLAG_HAS_FLAGS | NVL_NBD_FLAG_SEND_FLUSH | NVL_NBD_FLAG_SEND_CACHE |
		    NVL_NBD_FLAG_CAN_MULTI_CONN;
	if (o->read_only) {
		e->tflags |= NVL_NBD_FLAG_READ_ONLY;
	} else {
		e->tflags |= NVL_NBD_FLAG_SEND_FUA;
		if (b->io_types & (1u << NVL_BDEV_IO_UNMAP))
			e->tflags |= NVL_NBD_FLAG_SEND_TRIM;
		if (b->io_types & (1u << NVL_BDEV_IO_WRITE_ZEROES))
			e->tflags |= NVL_NBD_FLAG_SEND_WRITE_ZEROES | NVL_NBD_FLAG_SEND_FAST_ZERO;
	}
	TAILQ_INIT(&e->conns);
	TAILQ_INSERT_TAIL(&g_srv.exports, e, link);
	g_srv.nexports++;
	NVL_NOTICELOG("nbd: export '%s' of bdev %s (%llu bytes, block %u, %s)", e->name,
		      e->bdev_name, (unsigned long long)e->size, e->block_size,
		      e->read_only ? "read-only" : "read-write");
	return 0;
err_desc:
	free(e->description);
err_free:
	free(e);
	return rc;
}

static void
export_free(struct nbd_export *e)
{
	TAILQ_REMOVE(&g_srv.exports, e, link);
	g_srv.nexports--;
	nvl_bdev_close(e->desc);
	free(e->description);
	free(e);
}

static void conn_drain(struct nbd_conn *c, const char *why);

int
nbd_export_remove(const char *name, void (*done)(void *arg), void *arg)
{
	struct nbd_export *e = nbd_export_get(name);
	struct nbd_conn *c, *tmp;

	if (e == NULL)
		return -ENOENT;
	if (e->removing)
		return -EALREADY;
	e->removing = true;
	e->remove_done = done;
	e->remove_arg = arg;
	NVL_NOTICELOG("nbd: removing export '%s' (%u connection(s))", e->name, e->nconns);
	/* handshake connections close right here: complete only after the loop */
	TAILQ_FOREACH_SAFE(c, &e->conns, elink, tmp)
		conn_drain(c, "export removed");
	if (e->nconns == 0) {
		export_free(e);
		done(arg);
		return 0;
	}
	e->remove_armed = true;
	return 0;
}

void
nbd_export_stats(const struct nbd_export *e, struct nbd_stats *out)
{
	const struct nbd_conn *c;

	*out = e->done_stats;
	TAILQ_FOREACH(c, &e->conns, elink) {
		for (int i = 0; i < NBD_ST_NTYPES; i++) {
			out->ops[i] += __atomic_load_n(&c->st.ops[i], __ATOMIC_RELAXED);
			out->bytes[i] += __atomic_load_n(&c->st.bytes[i], __ATOMIC_RELAXED);
		}
		out->errors += __atomic_load_n(&c->st.errors, __ATOMIC_RELAXED);
		out->held_reads += __atomic_load_n(&c->st.held_reads, __ATOMIC_RELAXED);
	}
}

/* ---- per-reactor context (owner reactor) ------------------------------------ */

static int
rctx_poll(void *arg)
{
	struct nbd_rctx *x = arg;
	TAILQ_HEAD(, nbd_conn) work = TAILQ_HEAD_INITIALIZER(work);
	struct nbd_conn *c;
	int n = 0;

	if (!TAILQ_EMPTY(&x->held)) {
		uint64_t now = nvl_now_ns();

		while ((c = TAILQ_FIRST(&x->held)) != NULL && c->hold_until <= now) {
			TAILQ_REMOVE(&x->held, c, hlink);
			c->hold_until = 0;
			conn_held_rx(c);
		}
		n++; /* a held read counts as work: the reactor must not sleep past it */
	}
	if (TAILQ_EMPTY(&x->dirty))
		return n;
	/* take the list: connections marked again while serviced wait for the next round */
	TAILQ_CONCAT(&work, &x->dirty, dlink);
	while ((c = TAILQ_FIRST(&work)) != NULL) {
		TAILQ_REMOVE(&work, c, dlink);
		c->in_dirty = false;
		conn_service(c);
		n++;
	}
	return n;
}

static struct nbd_rctx *
rctx_get(void)
{
	struct nvl_reactor *r = nvl_reactor_self();
	unsigned i = r ? nvl_reactor_id(r) : 0;
	struct nbd_rctx *x = g_rctx[i];

	if (x)
		return x;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return NULL;
	TAILQ_INIT(&x->dirty);
	TAILQ_INIT(&x->held);
	x->poller = nvl_poller_create(rctx_poll, x, "nbd");
	if (x->poller == NULL) {
		free(x);
		return NULL;
	}
	g_rctx[i] = x;
	return x;
}

static void
conn_mark_dirty(struct nbd_conn *c)
{
	if (!c->in_dirty && c->rctx) {
		c->in_dirty = true;
		TAILQ_INSERT_TAIL(&c->rctx->dirty, c, dlink);
	}
}

/* ---- connection: common ----------------------------------------------------- */

static void
conn_set_events(struct nbd_conn *c)
{
	uint32_t ev = 0;

	if (c->fdh == NULL)
		return;
	if (!c->rx_stopped && !c->paused)
		ev |= EPOLLIN;
	if (c->want_out)
		ev |= EPOLLOUT;
	if (ev != c->events && nvl_fd_mod(c->fdh, ev) == 0)
		c->events = ev;
}

static void
conn_free_mem(struct nbd_conn *c)
{
	if (c->reqs) {
		for (unsigned i = 0; i < NBD_CONN_REQS; i++)
			free(c->reqs[i].buf);
		free(c->reqs);
	}
	free(c->rbuf);
	if (c->hs) {
		nbd_hs_fini(c->hs);
		free(c->hs);
	}
	free(c);
}

static int
conn_alloc_reqs(struct nbd_conn *c)
{
	c->reqs = calloc(NBD_CONN_REQS, sizeof(*c->reqs));
	if (c->reqs == NULL)
		return -ENOMEM;
	TAILQ_INIT(&c->free_reqs);
	TAILQ_INIT(&c->sendq);
	for (unsigned i = NBD_CONN_REQS; i-- > 0;) {
		c->reqs[i].conn = c;
		TAILQ_INSERT_HEAD(&c->free_reqs, &c->reqs[i], link);
	}
	return 0;
}

/* Unlink from the export and the server (reactor 0). */
static void
conn_unlink(struct nbd_conn *c)
{
	struct nbd_export *e = c->exp;

	TAILQ_REMOVE(&g_srv.conns, c, link);
	if (c->refused)
		g_srv.nrefused--;
	else
		g_srv.nconns--;
	if (e) {
		for (int i = 0; i < NBD_ST_NTYPES; i++) {
			e->done_stats.ops[i] += c->st.ops[i];
			e->done_stats.bytes[i] += c->st.bytes[i];
		}
		e->done_stats.errors += c->st.errors;
		e->done_stats.held_reads += c->st.held_reads;
		TAILQ_REMOVE(&e->conns, c, elink);
		e->nconns--;
		c->exp = NULL;
		if (e->remove_armed && e->nconns == 0) {
			void (*done)(void *) = e->remove_done;
			void *arg = e->remove_arg;

			NVL_NOTICELOG("nbd: export '%s' removed", e->name);
			export_free(e);
			done(arg);
		}
	}
}

/* ---- handshake (reactor 0) ---------------------------------------------------- */

static void
hs_close(struct nbd_conn *c, const char *why)
{
	NVL_DEBUGLOG(nbd, "conn %llu (%s): handshake ended: %s", (unsigned long long)c->id,
		     c->peer, why);
	nvl_fd_del(c->fdh);
	nvl_timer_destroy(c->timer);
	close(c->fd);
	conn_unlink(c);
	conn_free_mem(c);
	srv_check_idle();
}

static void
hs_timeout(void *arg)
{
	struct nbd_conn *c = arg;

	nvl_timer_destroy(c->timer); /* a fired one-shot still needs freeing */
	c->timer = NULL;
	NVL_NOTICELOG("nbd: %s: handshake not finished within %llu s, closing", c->peer,
		      (unsigned long long)(NBD_HS_TIMEOUT_US / 1000000));
	hs_close(c, "timeout");
}

static unsigned
pick_reactor(void)
{
	unsigned n = nvl_reactor_count(), best = 0, bestload = UINT32_MAX;

	if (n <= 1)
		return 0;
	for (unsigned k = 1; k <= n; k++) {
		unsigned i = (g_srv.rr + k) % n;

		if (g_srv.load[i] < bestload) {
			best = i;
			bestload = g_srv.load[i];
		}
	}
	g_srv.rr = best;
	return best;
}

static void
conn_adopt_msg(void *arg)
{
	struct nbd_conn *c = arg;

	c->rctx = rctx_get();
	if (c->rctx) {
		c->rctx->nconns++;
		c->fdh = nvl_fd_add(c->fd, EPOLLIN, conn_fd_cb, c);
	}
	if (c->fdh == NULL) {
		NVL_ERRLOG("nbd: %s: cannot serve the connection on reactor %u", c->peer,
			   c->reactor);
		c->rx_stopped = true;
		c->tx_dead = true;
		c->close_reason = "out of resources";
	} else {
		c->events = EPOLLIN;
	}
	/* bytes that came with the handshake, and the close check */
	if (c->rctx)
		conn_mark_dirty(c);
	else
		conn_service(c);
}

/* GO/EXPORT_NAME succeeded and its reply is sent: move to the serving reactor. */
static void
hs_go(struct nbd_conn *c)
{
	struct nbd_hs *hs = c->hs;
	struct nbd_export *e = c->exp;

	if (conn_alloc_reqs(c) < 0) {
		NVL_ERRLOG("nbd: %s: out of memory", c->peer);
		hs_close(c, "out of memory");
		return;
	}
	nvl_fd_del(c->fdh);
	c->fdh = NULL;
	nvl_timer_destroy(c->timer);
	c->timer = NULL;
	c->xp.size = hs->chosen.size;
	c->xp.min_block = hs->chosen.min_block;
	c->xp.max_block = hs->chosen.max_block;
	c->xp.tflags = hs->chosen.tflags;
	c->xp.structured = hs->structured;
	c->desc = e->desc;
	c->can_flush = e->desc->bdev->io_types & (1u << NVL_BDEV_IO_FLUSH);
	c->flush_needed = c->can_flush && e->desc->bdev->write_cache;
	c->rx = NBD_RX_HDR;
	c->state = NBD_CONN_XMIT;
	c->read_hold = g_srv.read_hold;
	nvl_dim_init(&c->dim, NVL_ARRAY_SIZE(g_hold_ns));
	c->dim_start = nvl_now_ns();
	c->reactor = pick_reactor();
	g_srv.load[c->reactor]++;
	NVL_NOTICELOG("nbd: %s: export '%s' (%s replies%s) on reactor %u", c->peer, e->name,
		      c->xp.structured ? "structured" : "simple",
		      hs->block_size_asked ? ", block size agreed" : "", c->reactor);
	nbd_hs_fini(hs);
	free(hs);
	c->hs = NULL;
	if (nvl_reactor_msg(nvl_reactor_get(c->reactor), conn_adopt_msg, c) < 0) {
		g_srv.load[c->reactor]--;
		c->reactor = 0;
		g_srv.load[0]++;
		conn_adopt_msg(c);
	}
}

static void
hs_set_events(struct nbd_conn *c, uint32_t ev)
{
	if (ev != c->events && nvl_fd_mod(c->fdh, ev) == 0)
		c->events = ev;
}

/* Move bytes for the handshake until it blocks or ends. */
static void
hs_pump(struct nbd_conn *c)
{
	struct nbd_hs *hs = c->hs;

	for (;;) {
		ssize_t n;

		/* 1. output first: never read more while replies are queued */
		while (hs->out_len) {
			n = send(c->fd, hs->out, hs->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				hs_set_events(c, EPOLLOUT);
				return;
			}
			if (n <= 0) {
				hs_close(c, "send failed");
				return;
			}
			nbd_hs_out_consume(hs, (size_t)n);
		}
		/* 2. a finished handshake */
		if (hs->state == NBD_HS_GO) {
			hs_go(c);
			return;
		}
		if (hs->state == NBD_HS_ABORT) {
			hs_close(c, "client sent NBD_OPT_ABORT");
			return;
		}
		if (hs->state == NBD_HS_FAIL) {
			NVL_NOTICELOG("nbd: %s: handshake failed: %s", c->peer, hs->fail_reason);
			hs_close(c, hs->fail_reason);
			return;
		}
		/* 3. options already received */
		if (c->rpos < c->rlen) {
			c->rpos += (uint32_t)nbd_hs_feed(hs, c->rbuf + c->rpos, c->rlen - c->rpos);
			if (hs->state == NBD_HS_GO && c->exp == NULL) {
				struct nbd_export *e = hs->chosen.handle;

				/* attach now, so that removing the export finds this connection */
				c->exp = e;
				TAILQ_INSERT_TAIL(&e->conns, c, elink);
				e->nconns++;
				e->total_conns++;
			}
			if (c->rpos == c->rlen)
				c->rpos = c->rlen = 0;
			continue;
		}
		/* 4. more input */
		n = recv(c->fd, c->rbuf, NBD_RBUF_SIZE, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			hs_set_events(c, EPOLLIN);
			return;
		}
		if (n <= 0) {
			hs_close(c, n == 0 ? "client closed" : "recv failed");
			return;
		}
		c->rpos = 0;
		c->rlen = (uint32_t)n;
	}
}

static void
hs_fd_cb(void *arg, uint32_t events)
{
	struct nbd_conn *c = arg;

	if ((events & EPOLLERR) || ((events & EPOLLHUP) && !(events & EPOLLIN))) {
		hs_close(c, "socket error");
		return;
	}
	hs_pump(c);
}

static void
srv_accept(int lfd, bool is_tcp)
{
	for (int i = 0; i < NBD_ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct nbd_conn *c;
		bool refuse = false;
		int fd, one = 1;

		fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				NVL_ERRLOG_RL("nbd: accept: %s", strerror(errno));
			return;
		}
		if (g_srv.stopping) {
			close(fd);
			continue;
		}
		if (g_srv.nconns >= g_srv.max_conns) {
			g_srv.refused_total++;
			if (g_srv.nrefused >= NBD_REFUSE_MAX) {
				close(fd); /* too many at once even to say why */
				continue;
			}
			refuse = true;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->id = ++g_srv.next_id;
		c->refused = refuse;
		c->state = NBD_CONN_HANDSHAKE;
		if (is_tcp) {
			char host[INET6_ADDRSTRLEN] = "?";

			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			if (ss.ss_family == AF_INET) {
				struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

				inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
				snprintf(c->peer, sizeof(c->peer), "%s:%u", host, ntohs(s4->sin_port));
			} else if (ss.ss_family == AF_INET6) {
				struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

				inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
				snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host,
					 ntohs(s6->sin6_port));
			}
		} else {
			snprintf(c->peer, sizeof(c->peer), "unix#%llu", (unsigned long long)c->id);
		}
		c->rbuf = malloc(NBD_RBUF_SIZE);
		c->hs = calloc(1, sizeof(*c->hs));
		if (c->rbuf == NULL || c->hs == NULL ||
		    nbd_hs_init(c->hs, &g_hs_ops, NULL, refuse ? g_srv.refuse_msg : NULL) < 0) {
			close(fd);
			conn_free_mem(c);
			continue;
		}
		c->fdh = nvl_fd_add(fd, EPOLLOUT, hs_fd_cb, c);
		c->events = EPOLLOUT;
		c->timer = nvl_timer_create(hs_timeout, c, NBD_HS_TIMEOUT_US, 0);
		if (c->fdh == NULL || c->timer == NULL) {
			nvl_fd_del(c->fdh);
			nvl_timer_destroy(c->timer);
			close(fd);
			conn_free_mem(c);
			continue;
		}
		TAILQ_INSERT_TAIL(&g_srv.conns, c, link);
		if (refuse) {
			g_srv.nrefused++;
			NVL_NOTICELOG("nbd: %s: refused: %u connections already (max_connections)",
				      c->peer, g_srv.nconns);
		} else {
			g_srv.nconns++;
			NVL_DEBUGLOG(nbd, "conn %llu from %s", (unsigned long long)c->id, c->peer);
		}
		hs_pump(c);
	}
}

static void
srv_tcp_cb(void *arg, uint32_t events)
{
	(void)arg;
	(void)events;
	srv_accept(g_srv.tcp_fd, true);
}

static void
srv_unix_cb(void *arg, uint32_t events)
{
	(void)arg;
	(void)events;
	srv_accept(g_srv.unix_fd, false);
}

/* ---- transmission (owner reactor) ----------------------------------------------- */

static int
req_get_buf(struct nbd_conn *c, struct nbd_req *r, uint32_t len)
{
	uint32_t cap;
	void *p;

	if (r->buf_cap >= len)
		return 0;
	if (r->buf) {
		c->cached_bytes -= r->buf_cap;
		free(r->buf);
		r->buf = NULL;
		r->buf_cap = 0;
	}
	cap = NVL_ALIGN_UP(NVL_MAX(len, 4096u), 4096u);
	p = aligned_alloc(4096, cap);
	if (p == NULL)
		return -ENOMEM;
	r->buf = p;
	r->buf_cap = cap;
	c->cached_bytes += cap;
	return 0;
}

static struct nbd_req *
req_alloc(struct nbd_conn *c)
{
	struct nbd_req *r = TAILQ_FIRST(&c->free_reqs);

	TAILQ_REMOVE(&c->free_reqs, r, link);
	c->nbusy++;
	r->data_len = 0;
	r->budget = 0;
	r->flush_after = false;
	return r;
}

static void
req_release(struct nbd_conn *c, struct nbd_req *r)
{
	c->busy_bytes -= r->budget;
	r->budget = 0;
	if (r->buf && (r->buf_cap > NBD_BUF_KEEP_MAX || c->cached_bytes > NBD_CONN_CACHE)) {
		c->cached_bytes -= r->buf_cap;
		free(r->buf);
		r->buf = NULL;
		r->buf_cap = 0;
	}
	c->nbusy--;
	TAILQ_INSERT_HEAD(&c->free_reqs, r, link); /* LIFO: warm buffers first */
	if (c->paused && c->busy_bytes < NBD_CONN_BUDGET) {
		c->paused = false;
		conn_set_events(c);
		conn_mark_dirty(c); /* parse what is already buffered */
	}
}

static void
req_queue_reply(struct nbd_conn *c, struct nbd_req *r)
{
	if (c->tx_dead) {
		req_release(c, r);
		conn_mark_dirty(c);
		return;
	}
	TAILQ_INSERT_TAIL(&c->sendq, r, link);
	conn_mark_dirty(c);
}

static void
req_reply_error(struct nbd_conn *c, struct nbd_req *r, uint32_t err, const char *why)
{
	ST_ADD(c, errors, 1);
	NVL_DEBUGLOG(nbd, "%s: %s offset %llu length %u: error %u (%s)", c->peer,
		     nbd_cmd_name(r->h.type), (unsigned long long)r->h.offset, r->h.length, err,
		     why);
	if (c->xp.structured)
		r->hdr_len = (uint16_t)nbd_enc_sr_error(r->hdr, r->h.handle, err, why);
	else
		r->hdr_len = (uint16_t)nbd_enc_simple(r->hdr, r->h.handle, err);
	r->data_len = 0;
	req_queue_reply(c, r);
}

static int
st_index(uint16_t type)
{
	switch (type) {
	case NVL_NBD_CMD_READ: return NBD_ST_READ;
	case NVL_NBD_CMD_WRITE: return NBD_ST_WRITE;
	case NVL_NBD_CMD_FLUSH: return NBD_ST_FLUSH;
	case NVL_NBD_CMD_TRIM: return NBD_ST_TRIM;
	case NVL_NBD_CMD_WRITE_ZEROES: return NBD_ST_WRITE_ZEROES;
	default: return NBD_ST_CACHE;
	}
}

static void
req_complete(struct nbd_conn *c, struct nbd_req *r, int status)
{
	uint32_t err;
	int si;

	if (status < 0) {
		err = nbd_errno_to_nbd(status);
		/* ENOTSUP only answers FAST_ZERO ("Error values") */
		if (err == NVL_NBD_ENOTSUP && !(r->h.flags & NVL_NBD_CMD_FLAG_FAST_ZERO))
			err = NVL_NBD_EINVAL;
		if (err != NVL_NBD_ENOTSUP)
			NVL_ERRLOG_RL("nbd: %s: %s offset %llu length %u failed: %s", c->peer,
				      nbd_cmd_name(r->h.type), (unsigned long long)r->h.offset,
				      r->h.length, strerror(-status));
		req_reply_error(c, r,  err, err == NVL_NBD_ENOTSUP ?
			"zeroing here is not faster than writing" : strerror(-status));
		return;
	}
	si = st_index(r->h.type);
	ST_ADD(c, ops[si], 1);
	if (r->h.type != NVL_NBD_CMD_FLUSH)
		ST_ADD(c, bytes[si], r->h.length);
	if (r->h.type == NVL_NBD_CMD_READ) {
		if (c->xp.structured)
			r->hdr_len = (uint16_t)nbd_enc_sr_data(r->hdr, r->h.handle, r->h.offset,
								r->h.length, true);
		else
			r->hdr_len = (uint16_t)nbd_enc_simple(r->hdr, r->h.handle, 0);
		r->data_len = r->h.length;
	} else {
		/* a simple reply is allowed for anything but READ even when structured */
		r->hdr_len = (uint16_t)nbd_enc_simple(r->hdr, r->h.handle, 0);
	}
	req_queue_reply(c, r);
}

static void req_submit(struct nbd_conn *c, struct nbd_req *r);

static void
req_io_done(struct nvl_bdev_io *io, int status)
{
	struct nbd_req *r = container_of(io, struct nbd_req, io);
	struct nbd_conn *c = r->conn;

	c->bdev_inflight--;
	if (status == 0 && r->flush_after) {
		/* FUA on TRIM/WRITE_ZEROES: the bdev's FUA covers writes only */
		r->flush_after = false;
		memset(&r->io, 0, sizeof(r->io));
		r->io.type = NVL_BDEV_IO_FLUSH;
		req_submit(c, r);
		return;
	}
	req_complete(c, r, status);
}

static void
req_submit(struct nbd_conn *c, struct nbd_req *r)
{
	int rc;

	r->io.cb = req_io_done;
	r->io.cb_arg = r;
	c->bdev_inflight++;
	rc = nvl_bdev_submit(c->desc, &r->io);
	if (rc < 0) {
		c->bdev_inflight--;
		req_complete(c, r, rc);
	}
}

/* A request's header was parsed (and its WRITE payload, if any, received). */
static void
req_start(struct nbd_conn *c, struct nbd_req *r)
{
	struct nvl_bdev_io *io = &r->io;

	memset(io, 0, sizeof(*io));
	io->offset = r->h.offset;
	io->length = r->h.length;
	switch (r->h.type) {
	case NVL_NBD_CMD_READ:
	case NVL_NBD_CMD_WRITE:
		io->type = r->h.type == NVL_NBD_CMD_READ ? NVL_BDEV_IO_READ : NVL_BDEV_IO_WRITE;
		if (r->h.type == NVL_NBD_CMD_WRITE && (r->h.flags & NVL_NBD_CMD_FLAG_FUA))
			io->flags = NVL_BDEV_IO_FUA;
		r->iov.iov_base = r->buf;
		r->iov.iov_len = r->h.length;
		io->iov = &r->iov;
		io->iovcnt = 1;
		break;
	case NVL_NBD_CMD_FLUSH:
		if (!c->can_flush) {
			req_complete(c, r, 0); /* no volatile cache: nothing to make durable */
			return;
		}
		io->type = NVL_BDEV_IO_FLUSH;
		io->offset = 0;
		io->length = 0;
		break;
	case NVL_NBD_CMD_TRIM:
		io->type = NVL_BDEV_IO_UNMAP;
		r->flush_after = (r->h.flags & NVL_NBD_CMD_FLAG_FUA) && c->flush_needed;
		break;
	case NVL_NBD_CMD_WRITE_ZEROES:
		io->type = NVL_BDEV_IO_WRITE_ZEROES;
		if (r->h.flags & NVL_NBD_CMD_FLAG_NO_HOLE)
			io->flags |= NVL_BDEV_IO_NO_HOLE;
		if (r->h.flags & NVL_NBD_CMD_FLAG_FAST_ZERO)
			io->flags |= NVL_BDEV_IO_FAST_ZERO;
		r->flush_after = (r->h.flags & NVL_NBD_CMD_FLAG_FUA) && c->flush_needed;
		break;
	default: /* NBD_CMD_CACHE: validated; no server-side cache to fill (docs/nbd.md) */
		req_complete(c, r, 0);
		return;
	}
	req_submit(c, r);
}

/* Stop reading for good; the connection closes once in-flight work is answered. */
static void
conn_stop_rx(struct nbd_conn *c, const char *why)
{
	if (!c->rx_stopped) {
		c->rx_stopped = true;
		c->close_reason = why;
	}
	conn_set_events(c);
	conn_mark_dirty(c);
}

static void
conn_fatal(struct nbd_conn *c, const char *why)
{
	NVL_NOTICELOG("nbd: %s: %s; disconnecting", c->peer, why);
	c->tx_dead = true;
	conn_stop_rx(c, why);
}

/* One request header at c->rbuf + c->rpos (NBD_REQ_HDR_SIZE bytes available). */
static void
conn_handle_hdr(struct nbd_conn *c)
{
	struct nbd_req_hdr h;
	struct nbd_req *r;
	const char *why = "";
	uint32_t err;

	if (!nbd_req_decode(c->rbuf + c->rpos, &h)) {
		conn_fatal(c, "bad request magic");
		return;
	}
	c->rpos += NBD_REQ_HDR_SIZE;
	c->hdrs++;
	if (h.type == NVL_NBD_CMD_DISC) {
		NVL_DEBUGLOG(nbd, "%s: NBD_CMD_DISC", c->peer);
		conn_stop_rx(c, "client disconnected");
		return;
	}
	r = req_alloc(c);
	r->h = h;
	err = nbd_req_check(&c->xp, &h, &why);
	if (err == 0 && (h.type == NVL_NBD_CMD_READ || h.type == NVL_NBD_CMD_WRITE)) {
		if (req_get_buf(c, r, h.length) < 0) {
			err = NVL_NBD_ENOMEM;
			why = "out of memory";
		} else {
			r->budget = h.length;
			c->busy_bytes += h.length;
		}
	}
	if (err) {
		if (h.type == NVL_NBD_CMD_WRITE) {
			/* the payload follows whatever we think of the request */
			c->rx = NBD_RX_DISCARD;
			c->rx_left = h.length;
		}
		req_reply_error(c, r, err, why);
		return;
	}
	if (h.type == NVL_NBD_CMD_WRITE) {
		c->rx = NBD_RX_PAYLOAD;
		c->rx_req = r;
		c->rx_got = 0;
		return;
	}
	req_start(c, r);
}

/*
 * Consume buffered bytes: headers, payloads, discards. \return true if more
 * input is wanted, false if parsing must stop (paused, stopped).
 */
static bool
conn_parse(struct nbd_conn *c)
{
	for (;;) {
		uint32_t avail = c->rlen - c->rpos;

		switch (c->rx) {
		case NBD_RX_PAYLOAD: {
			struct nbd_req *r = c->rx_req;
			uint32_t n = NVL_MIN(r->h.length - c->rx_got, avail);

			if (n) {
				memcpy(r->buf + c->rx_got, c->rbuf + c->rpos, n);
				c->rpos += n;
				c->rx_got += n;
			}
			if (c->rx_got < r->h.length)
				return !c->rx_stopped;
			c->rx = NBD_RX_HDR;
			c->rx_req = NULL;
			req_start(c, r);
			continue;
		}
		case NBD_RX_DISCARD: {
			uint64_t n = NVL_MIN(c->rx_left, (uint64_t)avail);

			c->rpos += (uint32_t)n;
			c->rx_left -= n;
			if (c->rx_left)
				return !c->rx_stopped;
			c->rx = NBD_RX_HDR;
			continue;
		}
		case NBD_RX_HDR:
			if (c->rx_stopped)
				return false;
			if (avail < NBD_REQ_HDR_SIZE)
				return true;
			if (TAILQ_EMPTY(&c->free_reqs) || c->busy_bytes >= NBD_CONN_BUDGET) {
				c->paused = true;
				conn_set_events(c);
				return false;
			}
			conn_handle_hdr(c);
			continue;
		}
	}
}

/* One readv(): the rest of the current payload straight into its buffer, then staging. */
static ssize_t
conn_read(struct nbd_conn *c, size_t *asked)
{
	struct iovec iov[2];
	int cnt = 0;
	ssize_t n;

	if (c->rpos == c->rlen) {
		c->rpos = c->rlen = 0;
	} else if (c->rpos) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	*asked = 0;
	if (c->rx == NBD_RX_PAYLOAD) {
		iov[cnt].iov_base = c->rx_req->buf + c->rx_got;
		iov[cnt].iov_len = c->rx_req->h.length - c->rx_got;
		*asked += iov[cnt].iov_len;
		cnt++;
	}
	iov[cnt].iov_base = c->rbuf + c->rlen;
	iov[cnt].iov_len = NBD_RBUF_SIZE - c->rlen;
	*asked += iov[cnt].iov_len;
	cnt++;
	do {
		n = readv(c->fd, iov, cnt);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n;
	if (c->rx == NBD_RX_PAYLOAD) {
		size_t p = NVL_MIN((size_t)n, iov[0].iov_len);

		c->rx_got += (uint32_t)p;
		c->rlen += (uint32_t)((size_t)n - p);
	} else {
		c->rlen += (uint32_t)n;
	}
	return n;
}

static void
conn_rx(struct nbd_conn *c)
{
	for (unsigned round = 0; round < NBD_RX_ROUNDS; round++) {
		size_t asked;
		ssize_t n;

		if (!conn_parse(c))
			return;
		n = conn_read(c, &asked);
		if (n == 0) {
			conn_stop_rx(c, c->rx == NBD_RX_HDR && c->rpos == c->rlen
						? "client closed the connection"
						: "client closed the connection mid-request");
			return;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_fatal(c, strerror(errno));
			return;
		}
		if ((size_t)n < asked) {
			conn_parse(c); /* the socket is drained: no second readv() to learn it */
			return;
		}
	}
	conn_mark_dirty(c); /* fairness: continue on the next loop iteration */
}

/* Every NBD_DIM_EPOCH requests: report the epoch's request rate. */
static void
conn_dim_epoch(struct nbd_conn *c, uint64_t now)
{
	uint64_t elapsed = now - c->dim_start;
	uint32_t n = c->hdrs - c->dim_hdrs;

	c->dim_start = now;
	c->dim_hdrs = c->hdrs;
	/* an idle stretch says nothing about the hold: rate 0 */
	c->hold_level = (uint8_t)nvl_dim_epoch(
		&c->dim, elapsed == 0 || elapsed > NBD_DIM_EPOCH_MAX_NS
				 ? 0 : (uint64_t)n * 1000000000ull / elapsed);
}

/*
 * Read holding. A client that keeps many requests in flight (fio or qemu at
 * a high queue depth) is often the bottleneck: its CPU pays per wake-up and
 * per segment, while a spinning reactor answers each request the moment it
 * lands, so the client takes its replies one wake-up at a time. Holding a
 * connection's read for a few microseconds lets several requests gather in
 * the socket; one readv() takes them and their replies leave in one
 * sendmsg(), which the client takes in one wake-up.
 *
 * Whether that pays depends on the client, which we cannot see: at queue
 * depth 8-32 it saves the client's CPU (+2-14% IOPS measured, most for
 * writes); at depth 2-4 the client waits for us and loses more than it saves
 * (-9% at depth 2 with an 8 us hold). So the hold time is chosen by
 * measurement, per connection, the way the kernel's dynamic interrupt
 * moderation (lib/dim) chooses its moderation: the requests per second of
 * an epoch (NBD_DIM_EPOCH requests) are compared with the previous epoch's;
 * a step that helped is followed by another in the same direction, one that
 * hurt is taken back, and after NVL_DIM_TIRED epochs with no clear change
 * the controller tries a step (util/dim.h).
 *
 * A hold is a wait only on a reactor that spins anyway (--spin-us >=
 * NBD_HOLD_MIN_SPIN_US): the held read is done by rctx_poll() when due, and
 * the reactor stays awake until then. While the holds do not bring at least
 * two requests per read on average (a queue-depth-1 client) holding stops;
 * the next trial comes after a gap that doubles with each miss, up to one
 * per NBD_PROBE_GAP_MAX reads, so such a client hardly pays for the search.
 * A reactor that sleeps at once (--spin-us 0) most likely shares its CPU
 * with its client and must not burn it: there a hold is one sched_yield()
 * before the read, so the client runs on and sends more first (+15-18% at
 * queue depth 32 on one CPU, measured); a yield that finds nobody to run
 * costs a syscall, and the rate alone judges it.
 *
 * conn_hold_rx() is called on EPOLLIN before the read. \return true if the
 * read is held for rctx_poll() to do when due; false: read now (after a
 * yield, maybe).
 */
static bool
conn_hold_rx(struct nbd_conn *c)
{
	struct nbd_conn *prev;
	uint64_t now;

	if (!c->read_hold || c->rx != NBD_RX_HDR || c->rctx == NULL)
		return false;
	if (c->hdrs - c->dim_hdrs >= NBD_DIM_EPOCH)
		conn_dim_epoch(c, nvl_now_ns());
	if (c->hold_level == 0)
		return false;
	if (nvl_reactor_get_spin_us() < NBD_HOLD_MIN_SPIN_US) {
		/* a reactor that sleeps at once likely shares its CPU with the
		 * client: let the client run on and send more before we read.
		 * A yield costs a syscall, not a wait: the rate alone judges it. */
		ST_ADD(c, held_reads, 1);
		sched_yield();
		return false;
	}
	if (!c->holding && c->probe_in) {
		c->probe_in--;
		return false;
	}
	c->hold_hdrs = c->hdrs;
	if (!c->holding)
		c->hold_avg16 = 2 * 16; /* a trial: its own result decides */
	ST_ADD(c, held_reads, 1);
	now = nvl_now_ns();
	c->hold_until = now + g_hold_ns[c->hold_level];
	/* keep the list in due order (connections may hold for different times) */
	prev = TAILQ_LAST(&c->rctx->held, nbd_held);
	while (prev && prev->hold_until > c->hold_until)
		prev = TAILQ_PREV(prev, nbd_held, hlink);
	if (prev)
		TAILQ_INSERT_AFTER(&c->rctx->held, prev, c, hlink);
	else
		TAILQ_INSERT_HEAD(&c->rctx->held, c, hlink);
	return true;
}

/* After a timed hold's read: did holds bring batches? */
static void
conn_hold_judge(struct nbd_conn *c)
{
	uint32_t n = NVL_MIN(c->hdrs - c->hold_hdrs, 16u);

	/* requests per held read, moving mean (x16, weight 1/8): one hold that
	 * catches a lull does not stop holding; going on needs a mean of 2+ */
	c->hold_avg16 = c->hold_avg16 - c->hold_avg16 / 8 + n * 16 / 8;
	if (c->hold_avg16 >= 2 * 16) {
		c->holding = true;
		c->probe_gap = NBD_PROBE_GAP_MIN;
	} else {
		c->holding = false;
		c->probe_gap = c->probe_gap ? NVL_MIN(c->probe_gap * 2, NBD_PROBE_GAP_MAX)
					    : NBD_PROBE_GAP_MIN;
		c->probe_in = c->probe_gap;
	}
}

/* A timed hold is due (rctx_poll). */
static void
conn_held_rx(struct nbd_conn *c)
{
	if (c->state != NBD_CONN_XMIT)
		return;
	conn_rx(c);
	conn_hold_judge(c);
	conn_flush(c);
	conn_maybe_close(c);
}

static void
conn_want_out(struct nbd_conn *c, bool on)
{
	if (c->want_out != on) {
		c->want_out = on;
		conn_set_events(c);
	}
}

static void
conn_drop_sendq(struct nbd_conn *c)
{
	struct nbd_req *r;

	while ((r = TAILQ_FIRST(&c->sendq)) != NULL) {
		TAILQ_REMOVE(&c->sendq, r, link);
		req_release(c, r);
	}
	c->send_off = 0;
}

/* Send queued replies: header and data iovecs, many replies per sendmsg(). */
static void
conn_flush(struct nbd_conn *c)
{
	if (c->tx_dead) {
		conn_drop_sendq(c);
		return;
	}
	while (!TAILQ_EMPTY(&c->sendq)) {
		struct iovec iov[NBD_SEND_IOV];
		struct msghdr m = { 0 };
		struct nbd_req *r;
		size_t skip = c->send_off, total = 0, left;
		int cnt = 0;
		ssize_t n;

		TAILQ_FOREACH(r, &c->sendq, link) {
			if (cnt + 2 > NBD_SEND_IOV)
				break;
			if (skip < r->hdr_len) {
				iov[cnt].iov_base = r->hdr + skip;
				iov[cnt].iov_len = r->hdr_len - skip;
				total += iov[cnt++].iov_len;
				skip = 0;
			} else {
				skip -= r->hdr_len;
			}
			if (r->data_len) {
				iov[cnt].iov_base = r->buf + skip;
				iov[cnt].iov_len = r->data_len - skip;
				total += iov[cnt++].iov_len;
			}
			skip = 0;
		}
		m.msg_iov = iov;
		m.msg_iovlen = (size_t)cnt;
		n = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_want_out(c, true);
				return;
			}
			conn_fatal(c, strerror(errno));
			conn_drop_sendq(c);
			return;
		}
		left = (size_t)n;
		while (left && (r = TAILQ_FIRST(&c->sendq)) != NULL) {
			size_t rem = r->hdr_len + r->data_len - c->send_off;

			if (left < rem) {
				c->send_off += left;
				break;
			}
			left -= rem;
			c->send_off = 0;
			TAILQ_REMOVE(&c->sendq, r, link);
			req_release(c, r);
		}
		if ((size_t)n < total) {
			conn_want_out(c, true);
			return;
		}
	}
	conn_want_out(c, false);
}

static void
conn_free_msg(void *arg)
{
	conn_free_mem(arg);
}

/* Everything answered (or undeliverable) and no bdev I/O left: close. */
static void
conn_maybe_close(struct nbd_conn *c)
{
	if (c->state != NBD_CONN_XMIT || !c->rx_stopped || c->bdev_inflight ||
	    (!TAILQ_EMPTY(&c->sendq) && !c->tx_dead))
		return;
	c->state = NBD_CONN_CLOSED;
	NVL_NOTICELOG("nbd: %s: closed (%s)", c->peer, c->close_reason ? c->close_reason : "?");
	nvl_fd_del(c->fdh);
	c->fdh = NULL;
	nvl_timer_destroy(c->timer);
	c->timer = NULL;
	close(c->fd);
	c->fd = -1;
	conn_drop_sendq(c);
	if (c->in_dirty) {
		TAILQ_REMOVE(&c->rctx->dirty, c, dlink);
		c->in_dirty = false;
	}
	if (c->hold_until) {
		TAILQ_REMOVE(&c->rctx->held, c, hlink);
		c->hold_until = 0;
	}
	if (c->rctx)
		c->rctx->nconns--;
	if (nvl_reactor_msg(nvl_reactor_get(0), conn_closed_msg, c) < 0)
		NVL_ERRLOG("nbd: %s: cannot report the close to reactor 0", c->peer);
}

static void
conn_service(struct nbd_conn *c)
{
	if (c->state != NBD_CONN_XMIT)
		return;
	if (!c->paused && !c->rx_stopped && c->rpos < c->rlen)
		conn_parse(c);
	conn_flush(c);
	conn_maybe_close(c);
}

static void
conn_fd_cb(void *arg, uint32_t events)
{
	struct nbd_conn *c = arg;

	if (c->state != NBD_CONN_XMIT)
		return;
	if (events & EPOLLOUT)
		conn_flush(c);
	/* a timed hold's read is done by rctx_poll() when due; until then EPOLLIN repeats */
	if ((events & EPOLLIN) && c->hold_until == 0 && !conn_hold_rx(c))
		conn_rx(c);
	if (events & (EPOLLERR | EPOLLHUP)) {
		/* level-triggered and always reported: stop watching the socket */
		c->tx_dead = true;
		conn_stop_rx(c, "connection reset");
		nvl_fd_del(c->fdh);
		c->fdh = NULL;
	}
	conn_flush(c);
	conn_maybe_close(c);
}

static void
conn_drain_timeout(void *arg)
{
	struct nbd_conn *c = arg;

	nvl_timer_destroy(c->timer);
	c->timer = NULL;
	if (c->state != NBD_CONN_XMIT)
		return;
	NVL_NOTICELOG("nbd: %s: replies not taken within %llu s, dropping them", c->peer,
		      (unsigned long long)(NBD_DRAIN_TIMEOUT_US / 1000000));
	c->tx_dead = true;
	conn_mark_dirty(c);
}

static void
conn_drain_msg(void *arg)
{
	struct nbd_conn *c = arg;

	if (c->state != NBD_CONN_XMIT)
		return;
	conn_stop_rx(c, c->drain_why);
	if (c->timer == NULL)
		c->timer = nvl_timer_create(conn_drain_timeout, c, NBD_DRAIN_TIMEOUT_US, 0);
}

/* Reactor 0: finish in-flight requests, send their replies, then close. */
static void
conn_drain(struct nbd_conn *c, const char *why)
{
	if (c->state == NBD_CONN_HANDSHAKE) {
		hs_close(c, why);
		return;
	}
	if (c->state != NBD_CONN_XMIT || c->drain_why)
		return;
	c->drain_why = why; /* published to the owner by the message queue */
	if (nvl_reactor_msg(nvl_reactor_get(c->reactor), conn_drain_msg, c) < 0)
		NVL_ERRLOG("nbd: %s: cannot reach reactor %u to disconnect", c->peer, c->reactor);
}

static void
conn_closed_msg(void *arg)
{
	struct nbd_conn *c = arg;
	unsigned owner = c->reactor;

	g_srv.load[owner]--;
	conn_unlink(c);
	/* freed by the owner, after any message reactor 0 queued to it before */
	if (nvl_reactor_msg(nvl_reactor_get(owner), conn_free_msg, c) < 0)
		conn_free_mem(c);
	srv_check_idle();
}

/* ---- listeners and server life (reactor 0) ------------------------------------ */

static void
srv_check_idle(void)
{
	if (!TAILQ_EMPTY(&g_srv.conns) || g_srv.nidle == 0)
		return;
	while (g_srv.nidle) {
		struct nbd_waiter w = g_srv.idle[--g_srv.nidle];

		w.fn(w.arg);
	}
}

static int
listen_tcp(const char *address, uint16_t port, char *err, size_t errlen)
{
	struct addrinfo hints = { 0 }, *res = NULL;
	char portstr[8];
	int fd, one = 1, rc;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", port);
	rc = getaddrinfo(address, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "address '%s': %s", address, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot listen on %s port %u: %s", address, port,
			 strerror(errno));
		close(fd);
		goto out;
	}
	rc = fd;
out:
	freeaddrinfo(res);
	return rc;
}

static int
listen_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "unix_socket path longer than %zu bytes",
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	nvl_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	if (lstat(path, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", path);
			return -EEXIST;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			snprintf(err, errlen, "%s: another server listens there", path);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		unlink(path); /* left behind by a dead server */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	return fd;
}

int
nbd_server_listen(const struct nbd_listen_opts *o, char *err, size_t errlen)
{
	int rc;

	if (g_srv.listening) {
		snprintf(err, errlen, "the NBD server is already running");
		return -EALREADY;
	}
	if (g_srv.stopping) {
		snprintf(err, errlen, "the NBD server is stopping");
		return -EBUSY;
	}
	if (o->port == 0 && (o->unix_path == NULL || !o->unix_path[0])) {
		snprintf(err, errlen, "nothing to listen on: port 0 needs a unix_socket");
		return -EINVAL;
	}
	if (o->max_conns == 0 || o->max_conns > 65536) {
		snprintf(err, errlen, "max_connections must be 1..65536");
		return -EINVAL;
	}
	if (strlen(o->address) >= sizeof(g_srv.address)) {
		snprintf(err, errlen, "address too long");
		return -EINVAL;
	}
	g_srv.tcp_fd = g_srv.unix_fd = -1;
	if (o->port) {
		rc = listen_tcp(o->address, o->port, err, errlen);
		if (rc < 0)
			return rc;
		g_srv.tcp_fd = rc;
		g_srv.tcp_h = nvl_fd_add(g_srv.tcp_fd, EPOLLIN, srv_tcp_cb, NULL);
		if (g_srv.tcp_h == NULL) {
			rc = -errno;
			snprintf(err, errlen, "cannot watch the listener: %s", strerror(-rc));
			goto err_tcp;
		}
	}
	if (o->unix_path && o->unix_path[0]) {
		rc = listen_unix(o->unix_path, err, errlen);
		if (rc < 0)
			goto err_tcp;
		g_srv.unix_fd = rc;
		g_srv.unix_h = nvl_fd_add(g_srv.unix_fd, EPOLLIN, srv_unix_cb, NULL);
		if (g_srv.unix_h == NULL) {
			rc = -errno;
			snprintf(err, errlen, "cannot watch the listener: %s", strerror(-rc));
			goto err_unix;
		}
		nvl_strlcpy(g_srv.unix_path, o->unix_path, sizeof(g_srv.unix_path));
	} else {
		g_srv.unix_path[0] = '\0';
	}
	nvl_strlcpy(g_srv.address, o->address, sizeof(g_srv.address));
	g_srv.port = o->port;
	g_srv.max_conns = o->max_conns;
	g_srv.read_hold = o->read_hold;
	snprintf(g_srv.refuse_msg, sizeof(g_srv.refuse_msg),
		 "server at its connection limit (max_connections %u)", o->max_conns);
	g_srv.listening = true;
	if (o->port)
		NVL_NOTICELOG("nbd: listening on %s port %u (max %u connections)", o->address,
			      o->port, o->max_conns);
	if (g_srv.unix_path[0])
		NVL_NOTICELOG("nbd: listening on %s (max %u connections)", g_srv.unix_path,
			      o->max_conns);
	return 0;
err_unix:
	close(g_srv.unix_fd);
	unlink(o->unix_path);
	g_srv.unix_fd = -1;
err_tcp:
	nvl_fd_del(g_srv.tcp_h);
	g_srv.tcp_h = NULL;
	if (g_srv.tcp_fd >= 0)
		close(g_srv.tcp_fd);
	g_srv.tcp_fd = -1;
	return rc;
}

bool
nbd_server_is_listening(void)
{
	return g_srv.listening;
}

void
nbd_server_get_info(struct nbd_server_info *i)
{
	i->listening = g_srv.listening;
	i->stopping = g_srv.stopping;
	i->address = g_srv.address;
	i->port = g_srv.port;
	i->unix_path = g_srv.unix_path;
	i->max_conns = g_srv.max_conns;
	i->read_hold = g_srv.read_hold;
	i->conns = g_srv.nconns;
	i->refused_total = g_srv.refused_total;
}

static void
srv_stop_listening(void)
{
	if (!g_srv.listening)
		return;
	nvl_fd_del(g_srv.tcp_h);
	nvl_fd_del(g_srv.unix_h);
	g_srv.tcp_h = g_srv.unix_h = NULL;
	if (g_srv.tcp_fd >= 0)
		close(g_srv.tcp_fd);
	if (g_srv.unix_fd >= 0) {
		close(g_srv.unix_fd);
		unlink(g_srv.unix_path);
	}
	g_srv.tcp_fd = g_srv.unix_fd = -1;
	g_srv.listening = false;
	NVL_NOTICELOG("nbd: stopped listening");
}

struct stop_ctx {
	void (*done)(void *arg);
	void *arg;
};

static void
srv_stopped(void *arg)
{
	struct stop_ctx *s = arg;

	g_srv.stopping = false;
	s->done(s->arg);
	free(s);
}

int
nbd_server_stop(void (*done)(void *arg), void *arg)
{
	struct nbd_conn *c, *tmp;
	struct stop_ctx *s;

	if (g_srv.nidle >= NVL_ARRAY_SIZE(g_srv.idle))
		return -EBUSY;
	s = malloc(sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->done = done;
	s->arg = arg;
	srv_stop_listening();
	g_srv.stopping = true;
	g_srv.idle[g_srv.nidle].fn = srv_stopped;
	g_srv.idle[g_srv.nidle].arg = s;
	g_srv.nidle++;
	TAILQ_FOREACH_SAFE(c, &g_srv.conns, link, tmp)
		conn_drain(c, "server stopped");
	srv_check_idle();
	return 0;
}

/* ---- shutdown (reactor 0) ------------------------------------------------------ */

static struct {
	void (*done)(void);
	unsigned pending;
} g_fini;

static void
rctx_freed_msg(void *arg)
{
	(void)arg;
	if (--g_fini.pending == 0)
		g_fini.done();
}

static void
rctx_free_msg(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	struct nbd_rctx *x = g_rctx[i];

	if (x) {
		nvl_poller_destroy(x->poller);
		free(x);
		g_rctx[i] = NULL;
	}
	if (nvl_reactor_msg(nvl_reactor_get(0), rctx_freed_msg, NULL) < 0)
		rctx_freed_msg(NULL);
}

static void
fini_conns_gone(void *arg)
{
	struct nbd_export *e;

	(void)arg;
	while ((e = TAILQ_FIRST(&g_srv.exports)) != NULL)
		export_free(e);
	g_fini.pending = 1;
	for (unsigned i = 0; i < nvl_reactor_count(); i++) {
		g_fini.pending++;
		if (nvl_reactor_msg(nvl_reactor_get(i), rctx_free_msg, (void *)(uintptr_t)i) < 0)
			g_fini.pending--;
	}
	rctx_freed_msg(NULL);
}

void
nbd_server_fini(void (*done)(void))
{
	g_fini.done = done;
	if (nbd_server_stop(fini_conns_gone, NULL) < 0)
		fini_conns_gone(NULL);
}
