/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD listeners and the server's life: listen on TCP and/or a Unix socket,
 * accept (each new connection starts its handshake, handshake.c), stop
 * (stop listening, drain every connection, then tell the caller), and
 * shutdown (stop, close the exports, free each reactor's context).
 *
 * Threads: reactor 0 only. Owns the listening sockets (g_nbd_listen), the
 * server-wide state the other files share (g_nbd_srv, nbd_internal.h) and
 * the waiters called when the last connection is gone.
 *
 * Bounds: max_connections (+ NBD_REFUSE_MAX refusals answered with
 * NBD_REP_ERR_POLICY), NBD_ACCEPT_BATCH accepts per wake-up.
 */
#include "nbd/nbd_internal.h"
#include "reactor/reactor.h"
#include "util/fdstore.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(nbd)

struct nbd_waiter {
	void (*fn)(void *arg);
	void *arg;
};

struct nbd_srv g_nbd_srv = {
	.conns = TAILQ_HEAD_INITIALIZER(g_nbd_srv.conns),
};

static struct {
	bool listening;
	char address[64];
	uint16_t port;
	char unix_path[108];
	int tcp_fd, unix_fd;
	struct nvl_fdh *tcp_h, *unix_h;
	struct nbd_waiter idle[4];       /* called when no connection is left */
	unsigned nidle;
} g_nbd_listen = {
	.tcp_fd = -1,
	.unix_fd = -1,
};

/* ---- accept ------------------------------------------------------------------- */

static void
nbd_srv_accept(int lfd, bool is_tcp)
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
		if (g_nbd_srv.stopping) {
			close(fd);
			continue;
		}
		if (g_nbd_srv.nconns >= g_nbd_srv.max_conns) {
			g_nbd_srv.refused_total++;
			if (g_nbd_srv.nrefused >= NBD_REFUSE_MAX) {
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
		c->id = ++g_nbd_srv.next_id;
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
		    nbd_hs_init(c->hs, &nbd_export_hs_ops, NULL,
				refuse ? g_nbd_srv.refuse_msg : NULL) < 0) {
			close(fd);
			nbd_conn_free(c);
			continue;
		}
		c->fdh = nvl_fd_add(fd, EPOLLOUT, nbd_conn_hs_fd_cb, c);
		c->events = EPOLLOUT;
		c->timer = nvl_timer_create(nbd_conn_hs_timeout, c, NBD_HS_TIMEOUT_US, 0);
		if (c->fdh == NULL || c->timer == NULL) {
			nvl_fd_del(c->fdh);
			nvl_timer_destroy(c->timer);
			close(fd);
			nbd_conn_free(c);
			continue;
		}
		TAILQ_INSERT_TAIL(&g_nbd_srv.conns, c, link);
		if (refuse) {
			g_nbd_srv.nrefused++;
			NVL_NOTICELOG("nbd: %s: refused: %u connections already (max_connections)",
				      c->peer, g_nbd_srv.nconns);
		} else {
			g_nbd_srv.nconns++;
			NVL_DEBUGLOG(nbd, "conn %llu from %s", (unsigned long long)c->id, c->peer);
		}
		nbd_conn_hs_pump(c);
	}
}

static void
nbd_srv_tcp_cb(void *arg, uint32_t events)
{
	(void)arg;
	(void)events;
	nbd_srv_accept(g_nbd_listen.tcp_fd, true);
}

static void
nbd_srv_unix_cb(void *arg, uint32_t events)
{
	(void)arg;
	(void)events;
	nbd_srv_accept(g_nbd_listen.unix_fd, false);
}

/* ---- listeners and server life ------------------------------------------------ */

void
nbd_server_check_idle(void)
{
	if (!TAILQ_EMPTY(&g_nbd_srv.conns) || g_nbd_listen.nidle == 0)
		return;
	while (g_nbd_listen.nidle) {
		struct nbd_waiter w = g_nbd_listen.idle[--g_nbd_listen.nidle];

		w.fn(w.arg);
	}
}

static int
nbd_open_tcp(const char *address, uint16_t port, char *err, size_t errlen)
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
		goto out_free_res;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot listen on %s port %u: %s", address, port,
			 strerror(errno));
		close(fd);
		goto out_free_res;
	}
	rc = fd;
out_free_res:
	freeaddrinfo(res);
	return rc;
}

static int
nbd_open_unix(const char *path, char *err, size_t errlen)
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

/* The listeners live in the fd store (a worker that restarts listens on the
 * same sockets: clients that connect meanwhile wait in the backlog). */
struct nbd_open {
	const char *address;
	uint16_t port;
	const char *path;
	char *err;
	size_t errlen;
};

static int
nbd_open_cb(void *arg, int *fd)
{
	struct nbd_open *o = arg;
	int rc = o->path ? nbd_open_unix(o->path, o->err, o->errlen)
			 : nbd_open_tcp(o->address, o->port, o->err, o->errlen);

	if (rc < 0)
		return rc;
	*fd = rc;
	return 0;
}

static void
nbd_store_name(const char *address, uint16_t port, const char *path,
	       char buf[NVL_FDSTORE_NAME_MAX + 1])
{
	char key[256];

	if (path)
		snprintf(key, sizeof(key), "unix/%s", path);
	else
		snprintf(key, sizeof(key), "tcp/%s/%u", address ? address : "*", port);
	nvl_fdstore_name(buf, "nbd.listen", key);
}

static int
nbd_listen_kept(const char *address, uint16_t port, const char *path, char *err, size_t errlen)
{
	struct nbd_open o = { address, port, path, err, errlen };
	char name[NVL_FDSTORE_NAME_MAX + 1];
	bool kept;
	int fd, rc;

	nbd_store_name(address, port, path, name);
	rc = nvl_fdstore_listener(name, nbd_open_cb, &o, &fd, &kept);
	if (rc < 0)
		return rc;
	if (kept)
		NVL_NOTICELOG("nbd: listening again on %s%s (kept across the restart)",
			      path ? path : address ? address : "*", path ? "" : " (TCP)");
	return fd;
}

static int
nbd_listen_tcp(const char *address, uint16_t port, char *err, size_t errlen)
{
	return nbd_listen_kept(address, port, NULL, err, errlen);
}

static int
nbd_listen_unix(const char *path, char *err, size_t errlen)
{
	return nbd_listen_kept(NULL, 0, path, err, errlen);
}

int
nbd_server_listen(const struct nbd_listen_opts *o, char *err, size_t errlen)
{
	char name[NVL_FDSTORE_NAME_MAX + 1];
	int rc;

	if (g_nbd_listen.listening) {
		snprintf(err, errlen, "the NBD server is already running");
		return -EALREADY;
	}
	if (g_nbd_srv.stopping) {
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
	if (strlen(o->address) >= sizeof(g_nbd_listen.address)) {
		snprintf(err, errlen, "address too long");
		return -EINVAL;
	}
	g_nbd_listen.tcp_fd = g_nbd_listen.unix_fd = -1;
	if (o->port) {
		rc = nbd_listen_tcp(o->address, o->port, err, errlen);
		if (rc < 0)
			return rc;
		g_nbd_listen.tcp_fd = rc;
		g_nbd_listen.tcp_h = nvl_fd_add(g_nbd_listen.tcp_fd, EPOLLIN, nbd_srv_tcp_cb, NULL);
		if (g_nbd_listen.tcp_h == NULL) {
			rc = -errno;
			snprintf(err, errlen, "cannot watch the listener: %s", strerror(-rc));
			goto err_close_tcp;
		}
	}
	if (o->unix_path && o->unix_path[0]) {
		rc = nbd_listen_unix(o->unix_path, err, errlen);
		if (rc < 0)
			goto err_close_tcp;
		g_nbd_listen.unix_fd = rc;
		g_nbd_listen.unix_h =
			nvl_fd_add(g_nbd_listen.unix_fd, EPOLLIN, nbd_srv_unix_cb, NULL);
		if (g_nbd_listen.unix_h == NULL) {
			rc = -errno;
			snprintf(err, errlen, "cannot watch the listener: %s", strerror(-rc));
			goto err_close_unix;
		}
		nvl_strlcpy(g_nbd_listen.unix_path, o->unix_path, sizeof(g_nbd_listen.unix_path));
	} else {
		g_nbd_listen.unix_path[0] = '\0';
	}
	nvl_strlcpy(g_nbd_listen.address, o->address, sizeof(g_nbd_listen.address));
	g_nbd_listen.port = o->port;
	g_nbd_srv.max_conns = o->max_conns;
	g_nbd_srv.read_hold = o->read_hold;
	snprintf(g_nbd_srv.refuse_msg, sizeof(g_nbd_srv.refuse_msg),
		 "server at its connection limit (max_connections %u)", o->max_conns);
	g_nbd_listen.listening = true;
	if (o->port)
		NVL_NOTICELOG("nbd: listening on %s port %u (max %u connections)", o->address,
			      o->port, o->max_conns);
	if (g_nbd_listen.unix_path[0])
		NVL_NOTICELOG("nbd: listening on %s (max %u connections)", g_nbd_listen.unix_path,
			      o->max_conns);
	return 0;
err_close_unix:
	nbd_store_name(NULL, 0, o->unix_path, name);
	(void)nvl_fdstore_remove(name);
	close(g_nbd_listen.unix_fd);
	unlink(o->unix_path);
	g_nbd_listen.unix_fd = -1;
err_close_tcp:
	nvl_fd_del(g_nbd_listen.tcp_h);
	g_nbd_listen.tcp_h = NULL;
	if (g_nbd_listen.tcp_fd >= 0) {
		nbd_store_name(o->address, o->port, NULL, name);
		(void)nvl_fdstore_remove(name);
		close(g_nbd_listen.tcp_fd);
	}
	g_nbd_listen.tcp_fd = -1;
	return rc;
}

bool
nbd_server_is_listening(void)
{
	return g_nbd_listen.listening;
}

void
nbd_server_get_info(struct nbd_server_info *i)
{
	i->listening = g_nbd_listen.listening;
	i->stopping = g_nbd_srv.stopping;
	i->address = g_nbd_listen.address;
	i->port = g_nbd_listen.port;
	i->unix_path = g_nbd_listen.unix_path;
	i->max_conns = g_nbd_srv.max_conns;
	i->read_hold = g_nbd_srv.read_hold;
	i->conns = g_nbd_srv.nconns;
	i->refused_total = g_nbd_srv.refused_total;
}

static void
nbd_srv_stop_listening(void)
{
	if (!g_nbd_listen.listening)
		return;
	nvl_fd_del(g_nbd_listen.tcp_h);
	nvl_fd_del(g_nbd_listen.unix_h);
	g_nbd_listen.tcp_h = g_nbd_listen.unix_h = NULL;
	if (g_nbd_listen.tcp_fd >= 0) {
		char name[NVL_FDSTORE_NAME_MAX + 1];

		nbd_store_name(g_nbd_listen.address, g_nbd_listen.port, NULL, name);
		(void)nvl_fdstore_remove(name);
		close(g_nbd_listen.tcp_fd);
	}
	if (g_nbd_listen.unix_fd >= 0) {
		char name[NVL_FDSTORE_NAME_MAX + 1];

		nbd_store_name(NULL, 0, g_nbd_listen.unix_path, name);
		(void)nvl_fdstore_remove(name);
		close(g_nbd_listen.unix_fd);
		unlink(g_nbd_listen.unix_path);
	}
	g_nbd_listen.tcp_fd = g_nbd_listen.unix_fd = -1;
	g_nbd_listen.listening = false;
	NVL_NOTICELOG("nbd: stopped listening");
}

struct nbd_stop_ctx {
	void (*done)(void *arg);
	void *arg;
};

static void
nbd_srv_stopped(void *arg)
{
	struct nbd_stop_ctx *s = arg;

	g_nbd_srv.stopping = false;
	s->done(s->arg);
	free(s);
}

int
nbd_server_stop(void (*done)(void *arg), void *arg)
{
	struct nbd_conn *c, *tmp;
	struct nbd_stop_ctx *s;

	if (g_nbd_listen.nidle >= NVL_ARRAY_SIZE(g_nbd_listen.idle))
		return -EBUSY;
	s = malloc(sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->done = done;
	s->arg = arg;
	nbd_srv_stop_listening();
	g_nbd_srv.stopping = true;
	g_nbd_listen.idle[g_nbd_listen.nidle].fn = nbd_srv_stopped;
	g_nbd_listen.idle[g_nbd_listen.nidle].arg = s;
	g_nbd_listen.nidle++;
	TAILQ_FOREACH_SAFE(c, &g_nbd_srv.conns, link, tmp)
		nbd_conn_drain(c, "server stopped");
	nbd_server_check_idle();
	return 0;
}

/* ---- shutdown (reactor 0) ------------------------------------------------------ */

static struct {
	void (*done)(void);
	unsigned pending;
} g_nbd_fini;

static void
nbd_rctx_freed_msg(void *arg)
{
	(void)arg;
	if (--g_nbd_fini.pending == 0)
		g_nbd_fini.done();
}

static void
nbd_rctx_free_msg(void *arg)
{
	nbd_rctx_free((unsigned)(uintptr_t)arg);
	if (nvl_reactor_msg(nvl_reactor_get(0), nbd_rctx_freed_msg, NULL) < 0)
		nbd_rctx_freed_msg(NULL);
}

static void
nbd_fini_conns_gone(void *arg)
{
	(void)arg;
	nbd_export_free_all();
	g_nbd_fini.pending = 1;
	for (unsigned i = 0; i < nvl_reactor_count(); i++) {
		g_nbd_fini.pending++;
		if (nvl_reactor_msg(nvl_reactor_get(i), nbd_rctx_free_msg,
				    (void *)(uintptr_t)i) < 0)
			g_nbd_fini.pending--;
	}
	nbd_rctx_freed_msg(NULL);
}

void
nbd_server_fini(void (*done)(void))
{
	g_nbd_fini.done = done;
	if (nbd_server_stop(nbd_fini_conns_gone, NULL) < 0)
		nbd_fini_conns_gone(NULL);
}
