/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD connections on reactor 0: the handshake, the move to a serving
 * reactor, and the end of a connection's life.
 *
 * - A connection accepted by listen.c starts here: this file moves the
 *   handshake's bytes (non-blocking; never reading more options while
 *   replies are queued, which bounds the output), and proto/nbd.c does the
 *   protocol. A handshake that does not finish within NBD_HS_TIMEOUT_US is
 *   closed.
 * - After NBD_OPT_GO / NBD_OPT_EXPORT_NAME the connection joins its export
 *   and moves, for life, to the least-loaded reactor (conn.c takes it over
 *   there by message).
 * - Its end is ordered so that no message ever finds it freed: reactor 0
 *   asks the owner to drain it (nbd_conn_drain); the owner closes the socket
 *   and reports the close here (nbd_conn_closed_msg); reactor 0 unlinks it
 *   from the server and the export and sends the free back to the owner,
 *   behind any message it queued to the owner before.
 *
 * Threads: reactor 0 only; g_nbd_load counts connections per reactor.
 */
#include "nbd/nbd_internal.h"
#include "reactor/reactor.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connections in transmission per reactor, for placing the next one. */
static struct {
	unsigned load[NVL_REACTOR_MAX];
	unsigned rr;
} g_nbd_load;

/* Unlink from the export and the server. */
static void
nbd_conn_unlink(struct nbd_conn *c)
{
	TAILQ_REMOVE(&g_nbd_srv.conns, c, link);
	if (c->refused)
		g_nbd_srv.nrefused--;
	else
		g_nbd_srv.nconns--;
	if (c->exp)
		nbd_export_conn_del(c);
}

static void
nbd_conn_hs_close(struct nbd_conn *c, const char *why)
{
	NVL_DEBUGLOG(nbd, "conn %llu (%s): handshake ended: %s", (unsigned long long)c->id,
		     c->peer, why);
	nvl_fd_del(c->fdh);
	nvl_timer_destroy(c->timer);
	close(c->fd);
	nbd_conn_unlink(c);
	nbd_conn_free(c);
	nbd_server_check_idle();
}

void
nbd_conn_hs_timeout(void *arg)
{
	struct nbd_conn *c = arg;

	nvl_timer_destroy(c->timer); /* a fired one-shot still needs freeing */
	c->timer = NULL;
	NVL_NOTICELOG("nbd: %s: handshake not finished within %llu s, closing", c->peer,
		      (unsigned long long)(NBD_HS_TIMEOUT_US / 1000000));
	nbd_conn_hs_close(c, "timeout");
}

void
nbd_load_add(unsigned reactor)
{
	g_nbd_load.load[reactor]++;
}

unsigned
nbd_pick_reactor(void)
{
	unsigned n = nvl_reactor_count(), best = 0, bestload = UINT32_MAX;

	if (n <= 1)
		return 0;
	for (unsigned k = 1; k <= n; k++) {
		unsigned i = (g_nbd_load.rr + k) % n;

		if (g_nbd_load.load[i] < bestload) {
			best = i;
			bestload = g_nbd_load.load[i];
		}
	}
	g_nbd_load.rr = best;
	return best;
}

/* GO/EXPORT_NAME succeeded and its reply is sent: move to the serving reactor. */
static void
nbd_conn_hs_go(struct nbd_conn *c)
{
	struct nbd_hs *hs = c->hs;
	struct nbd_export *e = c->exp;

	if (nbd_conn_alloc_reqs(c) < 0) {
		NVL_ERRLOG("nbd: %s: out of memory", c->peer);
		nbd_conn_hs_close(c, "out of memory");
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
	c->xp.meta_alloc = hs->chosen_meta_alloc;
	c->desc = e->desc;
	c->can_flush = e->desc->bdev->io_types & (1u << NVL_BDEV_IO_FLUSH);
	c->flush_needed = c->can_flush && e->desc->bdev->write_cache;
	c->rx = NBD_RX_HDR;
	c->state = NBD_CONN_XMIT;
	nbd_hold_init(c, g_nbd_srv.read_hold);
	c->reactor = nbd_pick_reactor();
	g_nbd_load.load[c->reactor]++;
	NVL_NOTICELOG("nbd: %s: export '%s' (%s replies%s%s) on reactor %u", c->peer, e->name,
		      c->xp.structured ? "structured" : "simple",
		      hs->block_size_asked ? ", block size agreed" : "",
		      c->xp.meta_alloc ? ", base:allocation" : "", c->reactor);
	nbd_hs_fini(hs);
	free(hs);
	c->hs = NULL;
	if (nvl_reactor_msg(nvl_reactor_get(c->reactor), nbd_conn_adopt_msg, c) < 0) {
		g_nbd_load.load[c->reactor]--;
		c->reactor = 0;
		g_nbd_load.load[0]++;
		nbd_conn_adopt_msg(c);
	}
}

static void
nbd_conn_hs_set_events(struct nbd_conn *c, uint32_t ev)
{
	if (ev != c->events && nvl_fd_mod(c->fdh, ev) == 0)
		c->events = ev;
}

/* Move bytes for the handshake until it blocks or ends. */
void
nbd_conn_hs_pump(struct nbd_conn *c)
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
				nbd_conn_hs_set_events(c, EPOLLOUT);
				return;
			}
			if (n <= 0) {
				nbd_conn_hs_close(c, "send failed");
				return;
			}
			nbd_hs_out_consume(hs, (size_t)n);
		}
		/* 2. a finished handshake */
		if (hs->state == NBD_HS_GO) {
			nbd_conn_hs_go(c);
			return;
		}
		if (hs->state == NBD_HS_ABORT) {
			nbd_conn_hs_close(c, "client sent NBD_OPT_ABORT");
			return;
		}
		if (hs->state == NBD_HS_FAIL) {
			NVL_NOTICELOG("nbd: %s: handshake failed: %s", c->peer, hs->fail_reason);
			nbd_conn_hs_close(c, hs->fail_reason);
			return;
		}
		/* 3. options already received */
		if (c->rpos < c->rlen) {
			c->rpos += (uint32_t)nbd_hs_feed(hs, c->rbuf + c->rpos, c->rlen - c->rpos);
			/* join the export now, so that removing it finds this connection */
			if (hs->state == NBD_HS_GO && c->exp == NULL)
				nbd_export_conn_add(hs->chosen.handle, c);
			if (c->rpos == c->rlen)
				c->rpos = c->rlen = 0;
			continue;
		}
		/* 4. more input */
		n = recv(c->fd, c->rbuf, NBD_RBUF_SIZE, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			nbd_conn_hs_set_events(c, EPOLLIN);
			return;
		}
		if (n <= 0) {
			nbd_conn_hs_close(c, n == 0 ? "client closed" : "recv failed");
			return;
		}
		c->rpos = 0;
		c->rlen = (uint32_t)n;
	}
}

void
nbd_conn_hs_fd_cb(void *arg, uint32_t events)
{
	struct nbd_conn *c = arg;

	if ((events & EPOLLERR) || ((events & EPOLLHUP) && !(events & EPOLLIN))) {
		nbd_conn_hs_close(c, "socket error");
		return;
	}
	nbd_conn_hs_pump(c);
}

/* Reactor 0: finish in-flight requests, send their replies, then close. */
void
nbd_conn_drain(struct nbd_conn *c, const char *why)
{
	if (c->state == NBD_CONN_HANDSHAKE) {
		nbd_conn_hs_close(c, why);
		return;
	}
	if (c->state != NBD_CONN_XMIT || c->drain_why)
		return;
	c->drain_why = why; /* published to the owner by the message queue */
	if (nvl_reactor_msg(nvl_reactor_get(c->reactor), nbd_conn_drain_msg, c) < 0)
		NVL_ERRLOG("nbd: %s: cannot reach reactor %u to disconnect", c->peer, c->reactor);
}

void
nbd_conn_closed_msg(void *arg)
{
	struct nbd_conn *c = arg;
	unsigned owner = c->reactor;

	g_nbd_load.load[owner]--;
	nbd_conn_unlink(c);
	/* freed by the owner, after any message reactor 0 queued to it before */
	if (nvl_reactor_msg(nvl_reactor_get(owner), nbd_conn_free_msg, c) < 0)
		nbd_conn_free(c);
	nbd_server_check_idle();
}
