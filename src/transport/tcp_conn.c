/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/TCP target transport, connections (tcp.c says how the transport is
 * split and who owns what): accepting one, its socket I/O (non-blocking
 * receive straight into command buffers, the parser fed from the staging
 * buffer, batched scatter-gather sends), its poller, fd handler and timer
 * (connect and stall timeouts), an I/O queue's move to its reactor, and its
 * end: close, drain of its commands in flight, free from a message on its
 * own reactor, and the "gone" message home. A connection is touched only on
 * its reactor (reactor 0 before Connect and for admin queues).
 */
#include "transport/tcp_internal.h"
#include "nvmf/auth.h"
#include "util/log.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

NVL_LOG_DECLARE_COMPONENT(nvmf_tcp);

/* ---- transmit --------------------------------------------------------------- */

void
tcp_tx_queue(struct tcp_conn *c, struct nvl_tcp_tx *tx)
{
	if (nvl_tcp_txq_empty(&c->txq))
		c->last_tx_ns = nvl_now_ns();
	nvl_tcp_txq_push(&c->txq, tx);
}

static void tcp_peer_put(const uint8_t key[17]);
static int tcp_peer_key(int fd, uint8_t key[17]);
static int tcp_peer_get(const uint8_t key[17]);
static void tcp_peer_name(int fd, char *out, size_t len);

/* Send as much of the queue as the socket takes. \return bytes sent, or -1
 * on a socket error (the caller closes). */
static ssize_t
tcp_conn_flush(struct tcp_conn *c)
{
	ssize_t n = nvl_tcp_txq_flush(&c->txq, c->fd, c);

	if (n > 0) {
		c->bytes_out += (uint64_t)n;
		c->last_tx_ns = nvl_now_ns();
	}
	return n;
}

/* A fatal transport error: report it with a C2HTermReq, then close. */
static void
tcp_conn_fatal(struct tcp_conn *c, const struct nvl_tcp_err *err)
{
	size_t n, bad = NVL_MIN((size_t)c->rx.hgot, (size_t)NVL_TCP_TERM_MAX_DATA);

	if (!tcp_conn_reading(c) || c->terminated)
		return;
	NVL_WARNLOG("tcp: %s qid %u: %s (%s, FES 0x%x FEI %u): terminating the connection",
		    c->peer, c->qid, err->why ? err->why : "protocol error",
		    nvl_tcp_fes_str(err->fes), err->fes, err->fei);
	nvl_tcp_txq_remove(&c->txq, &c->aux_tx);
	n = nvl_tcp_term_build(c->aux_buf, true, err->fes, err->fei, c->rx.hdr.raw, bad);
	c->aux_tx.iovcnt = 1;
	c->aux_tx.iov[0] = (struct iovec){ c->aux_buf, n };
	c->aux_tx.done = NULL;
	tcp_tx_queue(c, &c->aux_tx);
	c->terminated = true;
	tcp_conn_error(c, "fatal transport error");
}

static int
tcp_conn_parse(struct tcp_conn *c)
{
	struct nvl_tcp_err err = { 0 };
	ssize_t n = nvl_tcp_rx_feed(&c->rx, c->stage + c->stage_off, c->stage_len - c->stage_off,
				    &g_tcp_rx_ops, c, &err);

	if (n < 0) {
		tcp_conn_fatal(c, &err);
		return -1;
	}
	c->stage_off += (uint32_t)n;
	return 0;
}

/* Receive and parse what the socket has. \return > 0 if anything came. */
static int
tcp_conn_rx(struct tcp_conn *c)
{
	int work = 0;

	for (int budget = 16; budget > 0 && tcp_conn_reading(c); budget--) {
		struct iovec iov[NVL_TCP_RX_SINK_IOV + 1];
		struct nvl_tcp_err err = { 0 };
		size_t dlen = 0, want;
		ssize_t n;
		int nd;

		/* an upgrade stops it here: what the stage holds goes to the next worker */
		if (tcp_keep_stopped(c))
			break;
		if (c->stage_off < c->stage_len) {
			/* left over from a pause: parse before reading more */
			if (tcp_conn_parse(c) < 0)
				return -1;
			if (c->stage_off < c->stage_len)
				break;
			continue;
		}
		c->stage_off = c->stage_len = 0;
		nd = nvl_tcp_rx_direct(&c->rx, iov, NVL_TCP_RX_SINK_IOV, &dlen);
		if (dlen < TCP_DIRECT_MIN)
			nd = 0;
		if (nd == 0) {
			want = TCP_STAGE_SIZE;
			n = recv(c->fd, c->stage, TCP_STAGE_SIZE, MSG_DONTWAIT);
		} else {
			struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)nd + 1 };

			iov[nd].iov_base = c->stage;
			iov[nd].iov_len = TCP_STAGE_SIZE;
			want = dlen + TCP_STAGE_SIZE;
			n = recvmsg(c->fd, &mh, MSG_DONTWAIT);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			tcp_conn_error(c, errno == ECONNRESET ? "connection reset by the host"
							  : "receive error");
			return -1;
		}
		if (n == 0) {
			tcp_conn_error(c, "the host closed the connection");
			return -1;
		}
		work++;
		c->bytes_in += (uint64_t)n;
		c->last_rx_ns = nvl_now_ns();
		if (nd) {
			size_t k = NVL_MIN((size_t)n, dlen);

			if (nvl_tcp_rx_direct_done(&c->rx, k, &g_tcp_rx_ops, c, &err) < 0) {
				tcp_conn_fatal(c, &err);
				return -1;
			}
			c->stage_len = (uint32_t)((size_t)n - k);
		} else {
			c->stage_len = (uint32_t)n;
		}
		if (c->stage_len && tcp_conn_reading(c) && !tcp_keep_stopped(c) &&
		    tcp_conn_parse(c) < 0)
			return -1;
		if ((size_t)n < want)
			break; /* drained the socket */
	}
	return work;
}

/* ---- connection lifecycle ------------------------------------------------------- */

static void tcp_conn_fd_event(void *arg, uint32_t events);
static int tcp_conn_poll(void *arg);
static void tcp_conn_tick(void *arg);
static void tcp_ioq_close_on_reactor(void *arg);

/* Register fd, poller and timer on the calling reactor. */
int
tcp_conn_attach(struct tcp_conn *c)
{
	c->reactor = nvl_reactor_self();
	c->fd_events = EPOLLIN;
	c->fdh = nvl_fd_add(c->fd, EPOLLIN, tcp_conn_fd_event, c);
	c->poller = nvl_poller_create(tcp_conn_poll, c, "nvmf-tcp");
	c->timer = nvl_timer_create(tcp_conn_tick, c, 1000000, 1000000);
	if (c->fdh == NULL || c->poller == NULL || c->timer == NULL)
		return -ENOMEM;
	return 0;
}

void
tcp_conn_detach(struct tcp_conn *c)
{
	nvl_fd_del(c->fdh);
	c->fdh = NULL;
	nvl_poller_destroy(c->poller);
	c->poller = NULL;
	nvl_timer_destroy(c->timer);
	c->timer = NULL;
}

struct tcp_ioq_msg {
	struct tcp_ctrlr *ctl;
	struct tcp_conn *conn;       /* compared, never dereferenced on reactor 0 */
	struct nvl_nvmf_ctrlr *tc;
	uint16_t qid;
	bool gone;
};

/* reactor 0: close I/O queue qid of ctl (table slot cleared here, once). */
void
tcp_ioq_close(struct tcp_ctrlr *ctl, uint16_t qid)
{
	struct tcp_conn *c = ctl->ioq[qid];

	if (c == NULL)
		return;
	ctl->ioq[qid] = NULL;
	if (nvl_reactor_msg(ctl->ioq_reactor[qid], tcp_ioq_close_on_reactor, c) < 0)
		NVL_ERRLOG("tcp: cannot reach the reactor of I/O queue %u", qid);
}

static void
tcp_ioq_msg_home(void *arg)
{
	struct tcp_ioq_msg *m = arg;
	struct tcp_ctrlr *ctl = m->ctl;

	if (m->gone) {
		ctl->nio_alive--;
		nvl_nvmf_ctrlr_put(m->tc);
		tcp_ctrlr_try_free(ctl);
	} else if (ctl->ioq[m->qid] == m->conn) {
		tcp_ioq_close(ctl, m->qid);
	}
	free(m);
}

static void
tcp_ioq_tell_home(struct tcp_conn *c, bool gone)
{
	struct tcp_ioq_msg *m = calloc(1, sizeof(*m));

	if (m == NULL)
		abort(); /* tiny control-path allocation; nothing sane to do */
	m->ctl = c->ctl;
	m->conn = c;
	m->tc = c->tc;
	m->qid = c->qid;
	m->gone = gone;
	if (nvl_reactor_msg(nvl_reactor_get(0), tcp_ioq_msg_home, m) < 0) {
		NVL_ERRLOG("tcp: cannot reach reactor 0 about I/O queue %u", c->qid);
		free(m);
	}
}

static void
tcp_conn_free(void *arg)
{
	struct tcp_conn *c = arg;

	if (c->fd >= 0)
		close(c->fd);
	for (uint32_t i = 0; i < c->nreqs; i++)
		free(c->reqs[i].buf);
	free(c->reqs);
	free(c->stage);
	if (c->qid != 0)
		nvl_nvmf_auth_queue_destroy(c->auth); /* the admin queue's is the controller's */
	nvl_reactor_unpick(c->placed);
	if (c->ctl == NULL) {
		TAILQ_REMOVE(&g_tcp_pending, c, link);
	} else if (c->qid == 0) {
		c->ctl->admin = NULL;
		tcp_ctrlr_try_free(c->ctl);
	} else {
		tcp_ioq_tell_home(c, true);
	}
	if (c->peer_counted)
		tcp_peer_put(c->peer_key);
	__atomic_fetch_sub(&g_tcp_nconns, 1, __ATOMIC_RELAXED);
	free(c);
}

void
tcp_conn_try_free(struct tcp_conn *c)
{
	if (c->state != TC_CLOSING || c->executing > 0 || c->free_scheduled)
		return;
	/* freed from a message: never inside the call chain that ended it */
	c->free_scheduled = true;
	if (nvl_reactor_msg(nvl_reactor_self(), tcp_conn_free, c) < 0)
		NVL_ERRLOG("tcp: cannot schedule the release of a connection");
}

void
tcp_conn_close(struct tcp_conn *c, const char *why)
{
	/* kept for the next worker: its socket must stay exactly as it is */
	if (c->state == TC_CLOSING || c->state == TC_KEPT)
		return;
	tcp_keep_closing(c);
	if (c->ctl)
		NVL_NOTICELOG("tcp: %s: cntlid %u qid %u closed: %s", c->peer,
			      c->tc ? c->tc->nvme.cntlid : 0, c->qid, why);
	else
		NVL_DEBUGLOG(nvmf_tcp, "%s: connection closed before Connect: %s", c->peer, why);
	c->state = TC_CLOSING;
	tcp_conn_detach(c);
	if (c->terminated || c->close_after_flush)
		(void)tcp_conn_flush(c); /* best effort: the termination request, last responses */
	nvl_tcp_txq_drop(&c->txq, c);
	for (uint32_t i = 0; i < c->nreqs; i++) {
		struct tcp_req *r = &c->reqs[i];

		if (r->state == TR_RX_ICD || r->state == TR_WAIT_H2C)
			tcp_req_release(r);
	}
	c->rx_req = NULL;
	shutdown(c->fd, SHUT_RDWR);
	if (c->ctl && c->qid == 0 && c->ctl->admin == c)
		tcp_ctrlr_teardown(c->ctl, why);
	tcp_conn_try_free(c);
}

/* A connection ends. Admin and unbound connections close at once (reactor
 * 0); an I/O queue asks reactor 0, which owns its table slot, to close it. */
void
tcp_conn_error(struct tcp_conn *c, const char *why)
{
	if (c->state == TC_CLOSING || c->state == TC_FAILED || c->state == TC_KEPT)
		return;
	if (c->ctl && c->qid != 0 && c->state == TC_ACTIVE) {
		NVL_DEBUGLOG(nvmf_tcp, "%s: I/O queue %u failed: %s", c->peer, c->qid, why);
		c->state = TC_FAILED;
		c->fail_why = why;
		tcp_ioq_tell_home(c, false);
		return;
	}
	tcp_conn_close(c, why);
}

static void
tcp_ioq_close_on_reactor(void *arg)
{
	struct tcp_conn *c = arg;

	tcp_conn_close(c, c->state == TC_FAILED && c->fail_why ? c->fail_why : "queue deleted");
}

static void
tcp_conn_update_events(struct tcp_conn *c)
{
	uint32_t want = (tcp_keep_stopped(c) ? 0 : EPOLLIN) |
			(nvl_tcp_txq_empty(&c->txq) ? 0 : EPOLLOUT);

	if (c->fdh && want != c->fd_events && nvl_fd_mod(c->fdh, want) == 0)
		c->fd_events = want;
}

/* reactor 0: hand a freshly connected I/O queue to its reactor. */
static void
tcp_conn_migrate(struct tcp_conn *c)
{
	struct nvl_reactor *to = c->ctl->ioq_reactor[c->qid];

	tcp_conn_detach(c);
	if (nvl_reactor_msg(to, tcp_conn_attach_io, c) < 0) {
		NVL_ERRLOG("tcp: cannot hand I/O queue %u to its reactor", c->qid);
		c->state = TC_FAILED;
		tcp_ioq_tell_home(c, false);
	}
}

int
tcp_conn_service(struct tcp_conn *c, bool force_rx)
{
	int work = 0;

	if (c->state == TC_CLOSING || c->state == TC_MIGRATING || c->state == TC_KEPT)
		return 0;
	if (!nvl_tcp_txq_empty(&c->txq)) {
		ssize_t n = tcp_conn_flush(c);

		if (n < 0) {
			tcp_conn_error(c, "send error");
			return 1;
		}
		work += n > 0;
	}
	if (tcp_conn_reading(c) &&
	    (force_rx || nvl_now_ns() - c->last_rx_ns < nvl_reactor_get_spin_us() * 1000)) {
		int n = tcp_conn_rx(c);

		if (n < 0)
			return 1;
		work += n;
		if (c->state == TC_MIGRATING) {
			tcp_conn_migrate(c);
			return 1;
		}
		if (!nvl_tcp_txq_empty(&c->txq) && tcp_conn_flush(c) < 0) {
			tcp_conn_error(c, "send error");
			return 1;
		}
	}
	if (c->close_after_flush && nvl_tcp_txq_empty(&c->txq) && c->state != TC_CLOSING) {
		tcp_conn_error(c, c->qid ? "Disconnect" : "Connect refused");
		return 1;
	}
	if (c->state != TC_CLOSING)
		tcp_conn_update_events(c);
	if (c->keep == TK_STOPPING && c->state != TC_CLOSING)
		tcp_keep_check(c); /* may store it (TC_KEPT) */
	return work;
}

static int
tcp_conn_poll(void *arg)
{
	return tcp_conn_service(arg, false);
}

static void
tcp_conn_fd_event(void *arg, uint32_t events)
{
	(void)events;
	tcp_conn_service(arg, true);
}

static void
tcp_conn_tick(void *arg)
{
	struct tcp_conn *c = arg;
	uint64_t now = nvl_now_ns();

	if ((c->state == TC_IC_WAIT || c->state == TC_CONNECT_WAIT) &&
	    now - c->accepted_ns > TCP_CONNECT_TIMEOUT_NS) {
		tcp_conn_close(c, "no ICReq/Connect within 10 s");
		return;
	}
	/* an I/O queue's DH-HMAC-CHAP failed or stalled: that queue goes, not the
	 * controller, which someone else may own (the admin queue's is checked by
	 * the target's keep-alive timer, and takes the controller with it) */
	if (c->qid != 0 && c->auth && c->state == TC_ACTIVE) {
		const char *why;

		if (nvl_nvmf_auth_expired(c->auth, now, &why)) {
			tcp_conn_error(c, why);
			return;
		}
	}
	if (!nvl_tcp_txq_empty(&c->txq) && now - c->last_tx_ns > (uint64_t)g_tcp_opts.stall_ms * 1000000ULL) {
		NVL_WARNLOG("tcp: %s qid %u: the host has not read for %u ms; dropping the connection",
			    c->peer, c->qid, g_tcp_opts.stall_ms);
		tcp_conn_error(c, "the host stopped reading");
	}
}

void
tcp_conn_attach_io(void *arg)
{
	struct tcp_conn *c = arg;

	c->state = TC_ACTIVE;
	if (tcp_conn_attach(c) < 0) {
		NVL_ERRLOG("tcp: cannot start I/O queue %u on reactor %u", c->qid,
			   nvl_reactor_id(nvl_reactor_self()));
		tcp_conn_error(c, "out of memory");
		return;
	}
	c->last_rx_ns = nvl_now_ns();
	tcp_conn_service(c, true);
}

void
tcp_conn_count_peer(struct tcp_conn *c)
{
	c->peer_counted = tcp_peer_key(c->fd, c->peer_key) == 0 && tcp_peer_get(c->peer_key) == 0;
	tcp_peer_name(c->fd, c->peer, sizeof(c->peer));
}

/* ---- connections per peer address ---------------------------------------------------- */

/* a refused accept can repeat thousands of times a second: one line a second */
#define TCP_WARNLOG_RL(...)                                                                        \
	do {                                                                                       \
		static uint64_t _rl_last;                                                          \
		static uint64_t _rl_supp;                                                          \
		if (nvl_log_ratelimit(&_rl_last, &_rl_supp))                                       \
			NVL_WARNLOG(__VA_ARGS__);                                                  \
	} while (0)

/* One slot per distinct peer address with connections (at most TCP_MAX_CONNS);
 * taken on reactor 0 at accept, given back on whichever reactor frees the
 * connection, hence the lock. */
static struct tcp_peer_count {
	uint8_t key[17];
	uint32_t n;
} g_tcp_peers[TCP_MAX_CONNS];
static pthread_mutex_t g_tcp_peers_lock = PTHREAD_MUTEX_INITIALIZER;

/* family + address of the peer, IPv4-mapped IPv6 folded into IPv4 (the same
 * host through a dual-stack listener counts once); -ENOTCONN when unknown */
static int
tcp_peer_key(int fd, uint8_t key[17])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	memset(key, 0, 17);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		return -ENOTCONN;
	if (ss.ss_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((struct sockaddr_in *)&ss)->sin_addr, 4);
	} else if (ss.ss_family == AF_INET6) {
		const uint8_t *a = ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr;

		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			key[0] = 4;
			memcpy(key + 1, a + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, a, 16);
		}
	} else {
		return -ENOTCONN;
	}
	return 0;
}

/* Count one more connection from key: -EBUSY at max_conns_per_peer. */
static int
tcp_peer_get(const uint8_t key[17])
{
	struct tcp_peer_count *free_slot = NULL;
	int rc = -EBUSY;

	pthread_mutex_lock(&g_tcp_peers_lock);
	for (unsigned i = 0; i < TCP_MAX_CONNS; i++) {
		struct tcp_peer_count *p = &g_tcp_peers[i];

		if (p->n == 0) {
			if (free_slot == NULL)
				free_slot = p;
			continue;
		}
		if (memcmp(p->key, key, 17) != 0)
			continue;
		if (p->n < g_tcp_opts.max_conns_per_peer) {
			p->n++;
			rc = 0;
		}
		goto out;
	}
	/* fewer than TCP_MAX_CONNS connections exist, so a slot is free */
	if (free_slot != NULL) {
		memcpy(free_slot->key, key, 17);
		free_slot->n = 1;
		rc = 0;
	}
out:
	pthread_mutex_unlock(&g_tcp_peers_lock);
	return rc;
}

static void
tcp_peer_put(const uint8_t key[17])
{
	pthread_mutex_lock(&g_tcp_peers_lock);
	for (unsigned i = 0; i < TCP_MAX_CONNS; i++) {
		if (g_tcp_peers[i].n && memcmp(g_tcp_peers[i].key, key, 17) == 0) {
			g_tcp_peers[i].n--;
			break;
		}
	}
	pthread_mutex_unlock(&g_tcp_peers_lock);
}

static void
tcp_peer_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s = (void *)&ss;

			inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
			port = ntohs(s->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s = (void *)&ss;

			inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
			port = ntohs(s->sin6_port);
		}
	}
	snprintf(out, len, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

void
tcp_conn_new(const struct nvl_listen_addr *la, int fd)
{
	struct tcp_conn *c;
	int one = 1;

	uint8_t key[17];
	unsigned n = __atomic_load_n(&g_tcp_nconns, __ATOMIC_RELAXED);
	bool counted;

	if (tcp_keep_suspended()) {
		/* an upgrade is handing over: only connected queues move */
		NVL_DEBUGLOG(nvmf_tcp, "refusing a connection during an upgrade's hand-over");
		close(fd);
		return;
	}
	if (n >= TCP_MAX_CONNS) {
		TCP_WARNLOG_RL("tcp: refusing a connection beyond %d", TCP_MAX_CONNS);
		close(fd);
		return;
	}
	counted = tcp_peer_key(fd, key) == 0;
	if (counted && tcp_peer_get(key) < 0) {
		char peer[64];

		tcp_peer_name(fd, peer, sizeof(peer));
		TCP_WARNLOG_RL("tcp: refusing a connection from %s: it has %u already "
				      "(max_conns_per_peer)", peer, g_tcp_opts.max_conns_per_peer);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->stage = malloc(TCP_STAGE_SIZE)) == NULL) {
		free(c);
		if (counted)
			tcp_peer_put(key);
		close(fd);
		return;
	}
	memcpy(c->peer_key, key, sizeof(key));
	c->peer_counted = counted;
	/* the last reserved_conns slots are for hosts an NVM subsystem allows */
	c->reserve_only = n + g_tcp_opts.reserved_conns >= TCP_MAX_CONNS;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (g_tcp_opts.sock_priority)
		setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &g_tcp_opts.sock_priority,
			   sizeof(g_tcp_opts.sock_priority));
	c->fd = fd;
	c->state = TC_IC_WAIT;
	c->listener = *la;
	c->accepted_ns = nvl_now_ns();
	c->last_rx_ns = c->accepted_ns;
	c->hpda_align = 4;
	c->maxh2cdata = g_tcp_opts.maxh2cdata;
	c->icd_max = NVL_MAX((uint32_t)TCP_ADMIN_ICD, g_tcp_opts.icd); /* queue type not known yet */
	nvl_tcp_txq_init(&c->txq);
	tcp_peer_name(fd, c->peer, sizeof(c->peer));
	nvl_tcp_rx_init(&c->rx, false, tcp_parser_max_data());
	__atomic_fetch_add(&g_tcp_nconns, 1, __ATOMIC_RELAXED);
	TAILQ_INSERT_TAIL(&g_tcp_pending, c, link);
	if (tcp_conn_attach(c) < 0) {
		tcp_conn_close(c, "out of memory");
		return;
	}
	NVL_DEBUGLOG(nvmf_tcp, "accepted %s on %s:%s", c->peer, la->traddr, la->trsvcid);
}
