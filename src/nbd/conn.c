/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD connections in transmission: requests in, bdev I/O, replies out,
 * close (docs/nbd.md "Inside").
 *
 * Ownership and threads
 * - After its handshake (handshake.c) a connection lives on one reactor for
 *   life and is served there run-to-completion: one readv() pulls request
 *   headers and write payloads (a payload that has not arrived yet is
 *   received straight into the request's I/O buffer), each request goes to
 *   the bdev from that reactor, and replies leave in batches with one
 *   sendmsg() of header + data iovecs (READ data is sent from the buffer the
 *   bdev filled: no staging copy). Before a read, the read hold may delay it
 *   to gather requests (conn_hold.c).
 * - Each reactor has one struct nbd_rctx (created on first use, freed at
 *   shutdown) whose poller sends replies of asynchronous completions,
 *   resumes paused connections and runs due held reads.
 * - Reactor 0 reaches a connection here only by message (adopt, drain,
 *   free); the close is reported back to reactor 0 (handshake.c), which
 *   unlinks the connection and sends the free back. Statistics are written
 *   here by the owner only (relaxed atomic stores, NBD_ST_ADD) and read by
 *   reactor 0 for nbd_get_exports.
 *
 * Multi-connection consistency (NBD_FLAG_CAN_MULTI_CONN): all connections to
 * an export submit to the same bdev and nothing here caches data; a reply is
 * sent only after the bdev completed the request, and a FLUSH is submitted to
 * the bdev, whose flush covers every write it completed before, whichever
 * reactor or connection submitted it (fdatasync of the one file; nothing to do
 * for RAM). So a FLUSH answered on one connection covers every write answered
 * on any connection, and FUA writes are durable when answered.
 *
 * BLOCK_STATUS (base:allocation, when the handshake negotiated it) asks the
 * bdev (nvl_bdev_block_status) on this reactor like any I/O, counts as a
 * bdev operation in flight, and is answered with one BLOCK_STATUS chunk of at
 * most NBD_BS_MAX_EXTENTS descriptors encoded in the request's buffer.
 *
 * Bounds: NBD_CONN_REQS requests and NBD_CONN_BUDGET payload bytes in flight
 * per connection (reading stops, TCP pushes back), NBD_MAX_PAYLOAD per
 * request, replies not taken within NBD_DRAIN_TIMEOUT_US of a drain dropped.
 */
#include "nbd/nbd_internal.h"
#include "reactor/reactor.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static struct nbd_rctx *g_nbd_rctx[NVL_REACTOR_MAX];

void nbd_conn_service(struct nbd_conn *c);
static void nbd_conn_flush(struct nbd_conn *c);
static void nbd_conn_maybe_close(struct nbd_conn *c);
static void nbd_conn_fd_cb(void *arg, uint32_t events);

/* ---- per-reactor context ----------------------------------------------------- */

static int
nbd_rctx_poll(void *arg)
{
	struct nbd_rctx *x = arg;
	TAILQ_HEAD(, nbd_conn) work = TAILQ_HEAD_INITIALIZER(work);
	struct nbd_conn *c;
	int n;

	n = nbd_hold_poll(x); /* a held read counts as work: the reactor must not sleep past it */
	if (TAILQ_EMPTY(&x->dirty))
		return n;
	/* take the list: connections marked again while serviced wait for the next round */
	TAILQ_CONCAT(&work, &x->dirty, dlink);
	while ((c = TAILQ_FIRST(&work)) != NULL) {
		TAILQ_REMOVE(&work, c, dlink);
		c->in_dirty = false;
		nbd_conn_service(c);
		n++;
	}
	return n;
}

static struct nbd_rctx *
nbd_rctx_get(void)
{
	struct nvl_reactor *r = nvl_reactor_self();
	unsigned i = r ? nvl_reactor_id(r) : 0;
	struct nbd_rctx *x = g_nbd_rctx[i];

	if (x)
		return x;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return NULL;
	TAILQ_INIT(&x->dirty);
	TAILQ_INIT(&x->held);
	x->poller = nvl_poller_create(nbd_rctx_poll, x, "nbd");
	if (x->poller == NULL) {
		free(x);
		return NULL;
	}
	g_nbd_rctx[i] = x;
	return x;
}

static void
nbd_conn_mark_dirty(struct nbd_conn *c)
{
	if (!c->in_dirty && c->rctx) {
		c->in_dirty = true;
		TAILQ_INSERT_TAIL(&c->rctx->dirty, c, dlink);
	}
}

void
nbd_rctx_free(unsigned i)
{
	struct nbd_rctx *x = g_nbd_rctx[i];

	if (x) {
		nvl_poller_destroy(x->poller);
		free(x);
		g_nbd_rctx[i] = NULL;
	}
}

/* ---- connection: events, memory, take-over ------------------------------------ */

static void
nbd_conn_set_events(struct nbd_conn *c)
{
	uint32_t ev = 0;

	if (c->fdh == NULL)
		return;
	/* an upgrade's stop: finish the payload being received, read no header */
	if (!c->rx_stopped && !c->paused && !(c->keep && c->rx == NBD_RX_HDR))
		ev |= EPOLLIN;
	if (c->want_out)
		ev |= EPOLLOUT;
	if (ev != c->events && nvl_fd_mod(c->fdh, ev) == 0)
		c->events = ev;
}

void
nbd_conn_free(struct nbd_conn *c)
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

int
nbd_conn_alloc_reqs(struct nbd_conn *c)
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

void
nbd_conn_adopt_msg(void *arg)
{
	struct nbd_conn *c = arg;

	c->rctx = nbd_rctx_get();
	if (c->rctx) {
		c->rctx->nconns++;
		c->fdh = nvl_fd_add(c->fd, EPOLLIN, nbd_conn_fd_cb, c);
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
		nbd_conn_mark_dirty(c);
	else
		nbd_conn_service(c);
}

/* ---- transmission (owner reactor) ----------------------------------------------- */

static int
nbd_req_get_buf(struct nbd_conn *c, struct nbd_req *r, uint32_t len)
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
nbd_req_alloc(struct nbd_conn *c)
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
nbd_req_release(struct nbd_conn *c, struct nbd_req *r)
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
		nbd_conn_set_events(c);
		nbd_conn_mark_dirty(c); /* parse what is already buffered */
	}
}

static void
nbd_req_queue_reply(struct nbd_conn *c, struct nbd_req *r)
{
	if (c->tx_dead) {
		nbd_req_release(c, r);
		nbd_conn_mark_dirty(c);
		return;
	}
	TAILQ_INSERT_TAIL(&c->sendq, r, link);
	nbd_conn_mark_dirty(c);
}

static void
nbd_req_reply_error(struct nbd_conn *c, struct nbd_req *r, uint32_t err, const char *why)
{
	NBD_ST_ADD(c, errors, 1);
	NVL_DEBUGLOG(nbd, "%s: %s offset %llu length %u: error %u (%s)", c->peer,
		     nbd_cmd_name(r->h.type), (unsigned long long)r->h.offset, r->h.length, err,
		     why);
	if (c->xp.structured)
		r->hdr_len = (uint16_t)nbd_enc_sr_error(r->hdr, r->h.handle, err, why);
	else
		r->hdr_len = (uint16_t)nbd_enc_simple(r->hdr, r->h.handle, err);
	r->data_len = 0;
	nbd_req_queue_reply(c, r);
}

static int
nbd_st_index(uint16_t type)
{
	switch (type) {
	case NVL_NBD_CMD_READ: return NBD_ST_READ;
	case NVL_NBD_CMD_WRITE: return NBD_ST_WRITE;
	case NVL_NBD_CMD_FLUSH: return NBD_ST_FLUSH;
	case NVL_NBD_CMD_TRIM: return NBD_ST_TRIM;
	case NVL_NBD_CMD_WRITE_ZEROES: return NBD_ST_WRITE_ZEROES;
	case NVL_NBD_CMD_BLOCK_STATUS: return NBD_ST_BLOCK_STATUS;
	default: return NBD_ST_CACHE;
	}
}

/*
 * The bdev's extents (struct nvl_bdev_extent, at the start of r->buf) become
 * the reply's descriptors, encoded in place: descriptor i (8 bytes at 8 i)
 * never overwrites an extent not yet read (16 bytes at 16 i). Each extent is
 * shorter than the request (32 bits), a multiple of the block size; REQ_ONE
 * keeps the first only (max_ext was 1).
 */
static void
nbd_queue_block_status(struct nbd_conn *c, struct nbd_req *r)
{
	const struct nvl_bdev_extent *ext = (const struct nvl_bdev_extent *)(void *)r->buf;
	unsigned n = r->bs.next;

	for (unsigned i = 0; i < n; i++) {
		uint64_t len = ext[i].length;
		uint32_t st = 0;

		if (ext[i].flags & NVL_BDEV_EXT_HOLE)
			st |= NVL_NBD_STATE_HOLE;
		if (ext[i].flags & NVL_BDEV_EXT_ZERO)
			st |= NVL_NBD_STATE_ZERO;
		nbd_enc_bs_desc(r->buf + (size_t)i * NBD_BS_DESC_SIZE, (uint32_t)len, st);
	}
	r->hdr_len = (uint16_t)nbd_enc_sr_block_status(r->hdr, r->h.handle,
						       NBD_META_ID_BASE_ALLOCATION, n);
	r->data_len = n * NBD_BS_DESC_SIZE;
	nbd_req_queue_reply(c, r);
}

static void
nbd_req_complete(struct nbd_conn *c, struct nbd_req *r, int status)
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
		nbd_req_reply_error(c, r,  err, err == NVL_NBD_ENOTSUP ?
			"zeroing here is not faster than writing" : strerror(-status));
		return;
	}
	si = nbd_st_index(r->h.type);
	NBD_ST_ADD(c, ops[si], 1);
	if (r->h.type == NVL_NBD_CMD_BLOCK_STATUS) {
		nbd_queue_block_status(c, r);
		return;
	}
	if (r->h.type != NVL_NBD_CMD_FLUSH)
		NBD_ST_ADD(c, bytes[si], r->h.length);
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
	nbd_req_queue_reply(c, r);
}

static void nbd_req_submit(struct nbd_conn *c, struct nbd_req *r);

static void
nbd_req_bstat_done(struct nvl_bdev_bstat *q, int status)
{
	struct nbd_req *r = q->cb_arg;
	struct nbd_conn *c = r->conn;

	c->bdev_inflight--;
	nbd_req_complete(c, r, status);
}

/* BLOCK_STATUS: the extents land at the start of r->buf (see nbd_queue_block_status). */
static void
nbd_req_block_status(struct nbd_conn *c, struct nbd_req *r)
{
	struct nvl_bdev_bstat *q = &r->bs;
	unsigned max = (r->h.flags & NVL_NBD_CMD_FLAG_REQ_ONE) ? 1 : NBD_BS_MAX_EXTENTS;
	int rc;

	if (nbd_req_get_buf(c, r, max * (uint32_t)sizeof(struct nvl_bdev_extent)) < 0) {
		nbd_req_complete(c, r, -ENOMEM);
		return;
	}
	memset(q, 0, sizeof(*q));
	q->offset = r->h.offset;
	q->length = r->h.length;
	q->ext = (struct nvl_bdev_extent *)(void *)r->buf;
	q->max_ext = max;
	q->cb = nbd_req_bstat_done;
	q->cb_arg = r;
	c->bdev_inflight++;
	rc = nvl_bdev_block_status(c->desc, q);
	if (rc < 0) {
		c->bdev_inflight--;
		nbd_req_complete(c, r, rc);
	}
}

static void
nbd_req_io_done(struct nvl_bdev_io *io, int status)
{
	struct nbd_req *r = container_of(io, struct nbd_req, io);
	struct nbd_conn *c = r->conn;

	c->bdev_inflight--;
	if (status == 0 && r->flush_after) {
		/* FUA on TRIM/WRITE_ZEROES: the bdev's FUA covers writes only */
		r->flush_after = false;
		memset(&r->io, 0, sizeof(r->io));
		r->io.type = NVL_BDEV_IO_FLUSH;
		nbd_req_submit(c, r);
		return;
	}
	nbd_req_complete(c, r, status);
}

static void
nbd_req_submit(struct nbd_conn *c, struct nbd_req *r)
{
	int rc;

	r->io.cb = nbd_req_io_done;
	r->io.cb_arg = r;
	c->bdev_inflight++;
	rc = nvl_bdev_submit(c->desc, &r->io);
	if (rc < 0) {
		c->bdev_inflight--;
		nbd_req_complete(c, r, rc);
	}
}

/* A request's header was parsed (and its WRITE payload, if any, received). */
static void
nbd_req_start(struct nbd_conn *c, struct nbd_req *r)
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
			nbd_req_complete(c, r, 0); /* no volatile cache: nothing to make durable */
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
	case NVL_NBD_CMD_BLOCK_STATUS:
		nbd_req_block_status(c, r);
		return;
	default: /* NBD_CMD_CACHE: validated; no server-side cache to fill (docs/nbd.md) */
		nbd_req_complete(c, r, 0);
		return;
	}
	nbd_req_submit(c, r);
}

/* Stop reading for good; the connection closes once in-flight work is answered. */
static void
nbd_conn_stop_rx(struct nbd_conn *c, const char *why)
{
	if (!c->rx_stopped) {
		c->rx_stopped = true;
		c->close_reason = why;
	}
	nbd_conn_set_events(c);
	nbd_conn_mark_dirty(c);
}

static void
nbd_conn_fatal(struct nbd_conn *c, const char *why)
{
	NVL_NOTICELOG("nbd: %s: %s; disconnecting", c->peer, why);
	c->tx_dead = true;
	nbd_conn_stop_rx(c, why);
}

/* One request header at c->rbuf + c->rpos (NBD_REQ_HDR_SIZE bytes available). */
static void
nbd_conn_handle_hdr(struct nbd_conn *c)
{
	struct nbd_req_hdr h;
	struct nbd_req *r;
	const char *why = "";
	uint32_t err;

	if (!nbd_req_decode(c->rbuf + c->rpos, &h)) {
		nbd_conn_fatal(c, "bad request magic");
		return;
	}
	c->rpos += NBD_REQ_HDR_SIZE;
	c->hdrs++;
	if (h.type == NVL_NBD_CMD_DISC) {
		NVL_DEBUGLOG(nbd, "%s: NBD_CMD_DISC", c->peer);
		nbd_conn_stop_rx(c, "client disconnected");
		return;
	}
	r = nbd_req_alloc(c);
	r->h = h;
	err = nbd_req_check(&c->xp, &h, &why);
	if (err == 0 && (h.type == NVL_NBD_CMD_READ || h.type == NVL_NBD_CMD_WRITE)) {
		if (nbd_req_get_buf(c, r, h.length) < 0) {
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
		nbd_req_reply_error(c, r, err, why);
		return;
	}
	if (h.type == NVL_NBD_CMD_WRITE) {
		c->rx = NBD_RX_PAYLOAD;
		c->rx_req = r;
		c->rx_got = 0;
		return;
	}
	nbd_req_start(c, r);
}

/*
 * Consume buffered bytes: headers, payloads, discards. \return true if more
 * input is wanted, false if parsing must stop (paused, stopped).
 */
static bool
nbd_conn_parse(struct nbd_conn *c)
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
			nbd_req_start(c, r);
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
			/* an upgrade stops it here, between two requests (keep.c) */
			if (c->rx_stopped || c->keep)
				return false;
			if (avail < NBD_REQ_HDR_SIZE)
				return true;
			if (TAILQ_EMPTY(&c->free_reqs) || c->busy_bytes >= NBD_CONN_BUDGET) {
				c->paused = true;
				nbd_conn_set_events(c);
				return false;
			}
			nbd_conn_handle_hdr(c);
			continue;
		}
	}
}

/* One readv(): the rest of the current payload straight into its buffer, then staging. */
static ssize_t
nbd_conn_read(struct nbd_conn *c, size_t *asked)
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
nbd_conn_rx(struct nbd_conn *c)
{
	for (unsigned round = 0; round < NBD_RX_ROUNDS; round++) {
		size_t asked;
		ssize_t n;

		if (!nbd_conn_parse(c))
			return;
		n = nbd_conn_read(c, &asked);
		if (n == 0) {
			nbd_conn_stop_rx(c, c->rx == NBD_RX_HDR && c->rpos == c->rlen
						? "client closed the connection"
						: "client closed the connection mid-request");
			return;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				nbd_conn_fatal(c, strerror(errno));
			return;
		}
		if ((size_t)n < asked) {
			/* the socket is drained: no second readv() to learn it */
			nbd_conn_parse(c);
			return;
		}
	}
	nbd_conn_mark_dirty(c); /* fairness: continue on the next loop iteration */
}

/* A timed hold is due (nbd_hold_poll). */
void
nbd_conn_held_rx(struct nbd_conn *c)
{
	if (c->state != NBD_CONN_XMIT)
		return;
	nbd_conn_rx(c);
	nbd_hold_judge(c);
	nbd_conn_flush(c);
	nbd_conn_maybe_close(c);
}

static void
nbd_conn_want_out(struct nbd_conn *c, bool on)
{
	if (c->want_out != on) {
		c->want_out = on;
		nbd_conn_set_events(c);
	}
}

static void
nbd_conn_drop_sendq(struct nbd_conn *c)
{
	struct nbd_req *r;

	while ((r = TAILQ_FIRST(&c->sendq)) != NULL) {
		TAILQ_REMOVE(&c->sendq, r, link);
		nbd_req_release(c, r);
	}
	c->send_off = 0;
}

/* Send queued replies: header and data iovecs, many replies per sendmsg(). */
static void
nbd_conn_flush(struct nbd_conn *c)
{
	if (c->tx_dead) {
		nbd_conn_drop_sendq(c);
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
				nbd_conn_want_out(c, true);
				return;
			}
			nbd_conn_fatal(c, strerror(errno));
			nbd_conn_drop_sendq(c);
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
			nbd_req_release(c, r);
		}
		if ((size_t)n < total) {
			nbd_conn_want_out(c, true);
			return;
		}
	}
	nbd_conn_want_out(c, false);
}

void
nbd_conn_free_msg(void *arg)
{
	nbd_conn_free(arg);
}

/* Everything answered (or undeliverable) and no bdev I/O left: close. */
static void
nbd_conn_maybe_close(struct nbd_conn *c)
{
	if (c->keep == NBD_KEEP_DONE)
		return;
	if (c->keep == NBD_KEEP_STOPPING && c->state == NBD_CONN_XMIT) {
		nbd_keep_check(c); /* keeps it, or gives up on it (then it closes as usual) */
		if (c->keep)
			return;
	}
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
	nbd_conn_drop_sendq(c);
	if (c->in_dirty) {
		TAILQ_REMOVE(&c->rctx->dirty, c, dlink);
		c->in_dirty = false;
	}
	nbd_hold_cancel(c);
	if (c->rctx)
		c->rctx->nconns--;
	if (nvl_reactor_msg(nvl_reactor_get(0), nbd_conn_closed_msg, c) < 0)
		NVL_ERRLOG("nbd: %s: cannot report the close to reactor 0", c->peer);
}

void
nbd_conn_service(struct nbd_conn *c)
{
	if (c->state != NBD_CONN_XMIT || c->keep == NBD_KEEP_DONE)
		return;
	if (!c->paused && !c->rx_stopped && c->rpos < c->rlen)
		nbd_conn_parse(c);
	nbd_conn_flush(c);
	nbd_conn_maybe_close(c);
}

static void
nbd_conn_fd_cb(void *arg, uint32_t events)
{
	struct nbd_conn *c = arg;

	if (c->state != NBD_CONN_XMIT || c->keep == NBD_KEEP_DONE)
		return;
	if (events & EPOLLOUT)
		nbd_conn_flush(c);
	/* a timed hold's read is done by nbd_hold_poll() when due; until then EPOLLIN repeats */
	if ((events & EPOLLIN) && c->hold.until == 0 && !nbd_hold_rx(c))
		nbd_conn_rx(c);
	if (events & (EPOLLERR | EPOLLHUP)) {
		/* level-triggered and always reported: stop watching the socket */
		c->tx_dead = true;
		nbd_conn_stop_rx(c, "connection reset");
		nvl_fd_del(c->fdh);
		c->fdh = NULL;
	}
	nbd_conn_flush(c);
	nbd_conn_maybe_close(c);
}

static void
nbd_conn_drain_timeout(void *arg)
{
	struct nbd_conn *c = arg;

	nvl_timer_destroy(c->timer);
	c->timer = NULL;
	if (c->state != NBD_CONN_XMIT)
		return;
	NVL_NOTICELOG("nbd: %s: replies not taken within %llu s, dropping them", c->peer,
		      (unsigned long long)(NBD_DRAIN_TIMEOUT_US / 1000000));
	c->tx_dead = true;
	nbd_conn_mark_dirty(c);
}

void
nbd_conn_drain_msg(void *arg)
{
	struct nbd_conn *c = arg;

	if (c->state != NBD_CONN_XMIT)
		return;
	nbd_conn_stop_rx(c, c->drain_why);
	if (c->timer == NULL)
		c->timer = nvl_timer_create(nbd_conn_drain_timeout, c, NBD_DRAIN_TIMEOUT_US, 0);
}

