/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Lending peer protocol transport (lend_proto.h): the server, on reactor
 * 0 (non-blocking sockets, one request per connection, at most
 * LEND_MAX_CONNS at once, LEND_CONN_TIMEOUT_MS each), and the client, which
 * runs each call in a short-lived thread with blocking sockets and
 * timeouts and posts the result to reactor 0. A client thread touches only
 * its own call (copies of the key, the identity and the body); the count
 * of calls in flight lets shutdown wait for them.
 */
#include "lend/lend_internal.h"
#include "reactor/reactor.h"
#include "util/fdstore.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define LEND_MAX_CONNS 64
#define LEND_CONN_TIMEOUT_MS 10000

/* ---- server ------------------------------------------------------------------------ */

struct lend_conn {
	int fd;
	struct nvl_fdh *fdh;
	struct nvl_timer *timer;
	char snonce[NVL_LEND_NONCE_HEX + 1];
	char cnonce[NVL_LEND_NONCE_HEX + 1];
	char local[64];
	char remote[64];
	char *in;
	size_t inlen;
	char *out;
	size_t outlen, outoff;
	bool serving;     /* a request is being served: wait for its answer */
	bool closing;     /* the answer is being written */
	struct lend_conn *next;
};

static struct {
	int fd;
	struct nvl_fdh *fdh;
	struct lend_conn *conns;
	unsigned nconns;
	char store_name[NVL_FDSTORE_NAME_MAX + 1]; /* the listener's name in the fd store */
} g_srv = { .fd = -1 };

static unsigned g_calls_inflight;

static void
conn_free(struct lend_conn *c)
{
	struct lend_conn **pp;

	for (pp = &g_srv.conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	g_srv.nconns--;
	nvl_fd_del(c->fdh);
	nvl_timer_destroy(c->timer);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

static void
conn_flush(struct lend_conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			nvl_fd_mod(c->fdh, EPOLLOUT);
			return;
		}
		if (n <= 0)
			break;
		c->outoff += (size_t)n;
	}
	conn_free(c);
}

/* Queue a line (stolen) and close once it is sent. */
static void
conn_send_and_close(struct lend_conn *c, char *line)
{
	if (line == NULL) {
		conn_free(c);
		return;
	}
	free(c->out);
	c->out = line;
	c->outlen = strlen(line);
	c->outoff = 0;
	c->closing = true;
	conn_flush(c);
}

/* lend_serve's answer: sign it for this connection's client. */
static void
conn_reply(void *arg, json_t *body)
{
	struct lend_conn *c = arg;
	char *line;

	if (body == NULL)
		body = json_pack("{s:b, s:i, s:s}", "ok", 0, "errno", ENOMEM, "error",
				 "out of memory");
	line = nvl_lend_response_encode(&g_lend.key, c->cnonce, c->snonce, body);
	json_decref(body);
	c->serving = false;
	conn_send_and_close(c, line);
}

static void
conn_request(struct lend_conn *c, size_t len)
{
	struct nvl_lend_request r;
	struct nvl_lend_body b;
	char err[128];
	int rc;

	rc = nvl_lend_request_decode(&g_lend.key, c->snonce, c->in, len, &r);
	if (rc == -EACCES) {
		NVL_WARNLOG("lend: refused a request from %s: not an allowed peer (its MAC does not "
			    "verify under the cluster key)",
			    c->remote);
		conn_send_and_close(c, nvl_lend_refusal_encode("not an allowed peer"));
		return;
	}
	if (rc < 0) {
		NVL_WARNLOG("lend: malformed request from %s: %s", c->remote, strerror(-rc));
		conn_send_and_close(c, nvl_lend_refusal_encode("malformed request"));
		return;
	}
	memcpy(c->cnonce, r.nonce, sizeof(c->cnonce));
	c->serving = true;
	nvl_fd_mod(c->fdh, 0);
	if (nvl_lend_body_decode(r.body, &b, err, sizeof(err)) < 0) {
		conn_reply(c, json_pack("{s:b, s:i, s:s}", "ok", 0, "errno", EINVAL, "error", err));
	} else {
		lend_serve(&r, &b, c->local, c->remote, conn_reply, c);
	}
	nvl_lend_request_fini(&r);
}

static void
conn_event(void *arg, uint32_t events)
{
	struct lend_conn *c = arg;
	char *nl;
	ssize_t n;

	if (c->closing) {
		conn_flush(c);
		return;
	}
	if (c->serving)
		return;
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		conn_free(c);
		return;
	}
	for (;;) {
		if (c->inlen == NVL_LEND_LINE_MAX) {
			NVL_WARNLOG("lend: request from %s longer than %d bytes", c->remote,
				    NVL_LEND_LINE_MAX);
			conn_send_and_close(c, nvl_lend_refusal_encode("request too long"));
			return;
		}
		n = recv(c->fd, c->in + c->inlen, NVL_LEND_LINE_MAX - c->inlen, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_free(c);
			return;
		}
		nl = memchr(c->in + c->inlen, '\n', (size_t)n);
		c->inlen += (size_t)n;
		if (nl) {
			conn_request(c, (size_t)(nl - c->in) + 1);
			return;
		}
	}
}

static void
conn_timeout(void *arg)
{
	struct lend_conn *c = arg;

	if (c->serving) {
		/* the answer comes when the work is done; the timer only guards I/O */
		return;
	}
	NVL_DEBUGLOG(lend, "peer connection from %s timed out", c->remote);
	conn_free(c);
}

static void
addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, (socklen_t)len);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf,
			  (socklen_t)len);
	}
}

static void
srv_accept(void *arg, uint32_t events)
{
	struct nvl_lend_greeting g;
	struct sockaddr_storage ss;
	socklen_t sl;
	char *line;

	(void)arg;
	(void)events;
	for (;;) {
		struct lend_conn *c;
		int fd;

		sl = sizeof(ss);
		fd = accept4(g_srv.fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (g_srv.nconns >= LEND_MAX_CONNS) {
			NVL_ERRLOG_RL("lend: %d peer connections open; refusing one", LEND_MAX_CONNS);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL || (c->in = malloc(NVL_LEND_LINE_MAX)) == NULL) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		addr_str(&ss, c->remote, sizeof(c->remote));
		sl = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
			addr_str(&ss, c->local, sizeof(c->local));
		c->next = g_srv.conns;
		g_srv.conns = c;
		g_srv.nconns++;
		c->fdh = nvl_fd_add(fd, EPOLLIN, conn_event, c);
		c->timer = nvl_timer_create(conn_timeout, c, LEND_CONN_TIMEOUT_MS * 1000ULL, 0);
		if (c->fdh == NULL || c->timer == NULL ||
		    nvl_lend_random_hex(c->snonce, NVL_LEND_NONCE_HEX) < 0) {
			conn_free(c);
			continue;
		}
		nvl_strlcpy(g.node, g_lend.node, sizeof(g.node));
		nvl_strlcpy(g.node_id, g_lend.node_id, sizeof(g.node_id));
		memcpy(g.nonce, c->snonce, sizeof(g.nonce));
		line = nvl_lend_greeting_encode(&g);
		/* a fresh socket takes a short line at once */
		if (line == NULL || send(fd, line, strlen(line), MSG_NOSIGNAL) != (ssize_t)strlen(line)) {
			free(line);
			conn_free(c);
			continue;
		}
		free(line);
		NVL_TRACELOG(lend, "peer connection from %s", c->remote);
	}
}

struct peer_open {
	const char *traddr, *port;
};

static int
peer_open_listener(void *arg, int *out)
{
	const struct peer_open *po = arg;
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	int fd, one = 1, rc;

	rc = getaddrinfo(po->traddr, po->port, &hints, &ai);
	if (rc != 0)
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		freeaddrinfo(ai);
		return rc;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		rc = -errno;
		close(fd);
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	*out = fd;
	return 0;
}

/* The peer listener, kept in the fd store: a restart or an upgrade takes it
 * back (peers that connect meanwhile wait in its backlog). */
int
lend_peer_listen(const char *traddr, const char *port)
{
	struct peer_open po = { traddr, port };
	char key[128];
	bool kept;
	int fd, rc;

	snprintf(key, sizeof(key), "%s/%s", traddr, port);
	nvl_fdstore_name(g_srv.store_name, "lend.listen", key);
	rc = nvl_fdstore_listener(g_srv.store_name, peer_open_listener, &po, &fd, &kept);
	if (rc < 0)
		return rc;
	if (kept)
		NVL_NOTICELOG("lend: listening again for peers on %s port %s (kept across the "
			      "restart)", traddr, port);
	g_srv.fd = fd;
	g_srv.fdh = nvl_fd_add(fd, EPOLLIN, srv_accept, NULL);
	if (g_srv.fdh == NULL) {
		(void)nvl_fdstore_remove(g_srv.store_name);
		close(fd);
		g_srv.fd = -1;
		return -ENOMEM;
	}
	return 0;
}

bool
lend_peer_listening(void)
{
	return g_srv.fd >= 0;
}

void
lend_peer_stop(void)
{
	struct lend_conn *c, *next;

	if (g_srv.fd >= 0) {
		nvl_fd_del(g_srv.fdh);
		(void)nvl_fdstore_remove(g_srv.store_name);
		close(g_srv.fd);
		g_srv.fd = -1;
		g_srv.fdh = NULL;
	}
	/* a connection whose request is being served keeps going: its answer
	 * (lend_serve's reply) sends and frees it */
	for (c = g_srv.conns; c; c = next) {
		next = c->next;
		if (!c->serving)
			conn_free(c);
	}
}

/* ---- client ------------------------------------------------------------------------- */

struct lend_call {
	char addr[64];
	char port[8];
	char node[NVL_LEND_NAME_MAX];
	char node_id[NVL_LEND_UUID_LEN];
	struct nvl_lend_key key;
	json_t *body;
	lend_call_fn cb;
	void *arg;
	struct lend_call_result res;
};

/* Read one line (up to max bytes) into buf, NUL-terminated. \return length, -errno. */
static ssize_t
read_line(int fd, char *buf, size_t max, int timeout_ms)
{
	size_t len = 0;

	while (len < max - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		char *nl;

		n = poll(&p, 1, timeout_ms);
		if (n == 0)
			return -ETIMEDOUT;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		n = recv(fd, buf + len, max - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		nl = memchr(buf + len, '\n', (size_t)n);
		len += (size_t)n;
		if (nl) {
			/* one request per connection: nothing may follow the line */
			*(nl + 1) = '\0';
			return nl + 1 - buf;
		}
	}
	return -EMSGSIZE;
}

static int
connect_timeout(const char *addr, const char *port, int timeout_ms, int *out)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	struct pollfd p;
	socklen_t sl;
	int fd, rc, err = 0;

	rc = getaddrinfo(addr, port, &hints, &ai);
	if (rc != 0)
		return -EHOSTUNREACH;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		freeaddrinfo(ai);
		return rc;
	}
	rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc < 0 && errno != EINPROGRESS) {
		rc = -errno;
		close(fd);
		return rc;
	}
	p.fd = fd;
	p.events = POLLOUT;
	rc = poll(&p, 1, timeout_ms);
	sl = sizeof(err);
	if (rc <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0 || err) {
		close(fd);
		return rc == 0 ? -ETIMEDOUT : err ? -err : -EIO;
	}
	*out = fd;
	return 0;
}

static void
call_deliver(void *arg)
{
	struct lend_call *c = arg;

	c->cb(c->arg, &c->res);
	json_decref(c->res.body);
	json_decref(c->body);
	memset(&c->key, 0, sizeof(c->key));
	free(c);
	g_calls_inflight--;
}

static void *
call_thread(void *arg)
{
	struct lend_call *c = arg;
	char cnonce[NVL_LEND_NONCE_HEX + 1], *buf = NULL, *req = NULL;
	struct lend_call_result *res = &c->res;
	ssize_t n;
	int fd = -1, rc;

	rc = connect_timeout(c->addr, c->port, LEND_CALL_TIMEOUT_MS, &fd);
	if (rc < 0) {
		snprintf(res->err, sizeof(res->err), "cannot connect to %s port %s: %s", c->addr,
			 c->port, strerror(-rc));
		goto out;
	}
	buf = malloc(NVL_LEND_LINE_MAX + 1);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	n = read_line(fd, buf, NVL_LEND_LINE_MAX + 1, LEND_CALL_TIMEOUT_MS);
	if (n < 0 || nvl_lend_greeting_decode(buf, (size_t)n, &res->greet) < 0) {
		rc = n < 0 ? (int)n : -EPROTO;
		snprintf(res->err, sizeof(res->err), "%s port %s is not an nvlend peer (%s)",
			 c->addr, c->port, strerror(-rc));
		goto out;
	}
	rc = nvl_lend_random_hex(cnonce, NVL_LEND_NONCE_HEX);
	if (rc < 0)
		goto out;
	req = nvl_lend_request_encode(&c->key, res->greet.nonce, c->node, c->node_id, cnonce,
				      c->body);
	if (req == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = nvl_write_all(fd, req, strlen(req));
	if (rc < 0) {
		snprintf(res->err, sizeof(res->err), "sending to %s: %s", res->greet.node,
			 strerror(-rc));
		goto out;
	}
	n = read_line(fd, buf, NVL_LEND_LINE_MAX + 1, LEND_CALL_TIMEOUT_MS * 3);
	if (n < 0) {
		rc = (int)n;
		snprintf(res->err, sizeof(res->err), "no answer from %s: %s", res->greet.node,
			 strerror(-rc));
		goto out;
	}
	rc = nvl_lend_response_decode(&c->key, cnonce, res->greet.nonce, buf, (size_t)n,
				      &res->body, res->err, sizeof(res->err));
	if (rc == -ECONNREFUSED) {
		char why[200];

		snprintf(why, sizeof(why), "%.190s", res->err);
		snprintf(res->err, sizeof(res->err), "%s refused us: %s", res->greet.node, why);
		rc = -EACCES;
	} else if (rc == -EACCES) {
		snprintf(res->err, sizeof(res->err), "%s's answer does not verify under our "
						     "cluster key: not an allowed peer",
			 res->greet.node);
	} else if (rc < 0) {
		snprintf(res->err, sizeof(res->err), "malformed answer from %s", res->greet.node);
	}
out:
	res->rc = rc;
	if (fd >= 0)
		close(fd);
	free(buf);
	free(req);
	if (nvl_reactor_msg(nvl_reactor_get(0), call_deliver, c) < 0) {
		/* the daemon is going away: nobody waits for this answer */
		json_decref(res->body);
		json_decref(c->body);
		free(c);
	}
	return NULL;
}

int
lend_peer_call(const char *addr, uint16_t port, json_t *body, lend_call_fn cb, void *arg)
{
	struct lend_call *c;
	pthread_attr_t at;
	pthread_t tid;
	int rc;

	if (body == NULL)
		return -ENOMEM;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		json_decref(body);
		return -ENOMEM;
	}
	nvl_strlcpy(c->addr, addr, sizeof(c->addr));
	snprintf(c->port, sizeof(c->port), "%u", port);
	nvl_strlcpy(c->node, g_lend.node, sizeof(c->node));
	nvl_strlcpy(c->node_id, g_lend.node_id, sizeof(c->node_id));
	c->key = g_lend.key;
	c->body = body;
	c->cb = cb;
	c->arg = arg;
	NVL_TRACELOG(lend, "peer call %s to %s port %u",
		     json_string_value(json_object_get(body, "op")), addr, port);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	g_calls_inflight++;
	rc = pthread_create(&tid, &at, call_thread, c);
	pthread_attr_destroy(&at);
	if (rc != 0) {
		g_calls_inflight--;
		json_decref(body);
		free(c);
		return -rc;
	}
	return 0;
}

unsigned
lend_peer_calls_inflight(void)
{
	return g_calls_inflight;
}
