/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libnvlend brick client (include/nvlend/brick.h). Blocking sockets, one
 * request in flight per connection, serialised by a mutex. Every response is
 * validated (brick_proto_check_resp) before its payload is read, and payloads
 * land directly in the caller's buffer. A transport failure marks the
 * connection broken (-EPIPE from then on): the stream position is unknown.
 *
 * Local ("shm") connections receive a block's fd with each map response and
 * mmap it; the mappings are tracked per connection so unmap/free/disconnect
 * can take them down again.
 *
 * RDMA ("brick+rdma") connections carry the same messages as SEND/RECV
 * (client_rdma.c); a MAP answer there adds the block's memory region (remote
 * address, rkey), kept per connection (struct client_rmap) so that READ and
 * WRITE through a handle key of this connection become one-sided RDMA READ
 * and WRITE; unmap/free/disconnect forget them.
 *
 * Ownership (docs/brick.md "Who may use a block"): HELLO carries the
 * client's identity secret, read from NVLEND_BRICK_IDENTITY or
 * ~/.config/nvlend/brick-identity (created 0600 on first use), and its name
 * (NVLEND_BRICK_CLIENT, else login@host). Block keys the connection learns
 * (ALLOC, MAP, KEY answers, nvl_brick_key_add) are kept per connection and
 * sent with MAP and FREE of their block, so callers never handle keys
 * unless they hand a block to someone else.
 */
#include "brick/client_rdma.h"
#include "proto/brick.h"
#include "nvlend/brick.h"
#include "util/sock.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLIENT_TIMEOUT_S 60

struct client_map {
	uint64_t addr;
	void *ptr;
};

struct client_key {
	uint64_t addr;
	uint8_t key[NVL_BRICK_KEY_SIZE];
};

/* A block mapped over RDMA by this connection. */
struct client_rmap {
	uint64_t key;     /* handle key */
	uint64_t addr;
	uint64_t raddr;   /* remote address of the block's first byte */
	uint32_t rkey;
	uint32_t flags;
};

/* Client transport operations (an RDMA transport adds a table here). */
struct brick_client_transport {
	const char *scheme;
	bool passes_fds;
	int (*connect)(const struct nvl_brick_uri *u, int *fd);
};

struct nvl_brick {
	int fd;
	struct brick_rdma_client *rdma; /* brick+rdma (fd is -1) */
	const struct brick_client_transport *tr;
	pthread_mutex_t lock;
	uint64_t next_id;
	uint8_t version;
	bool broken;
	struct nvl_brick_info info;
	struct client_map *maps;
	size_t nmaps, cap_maps;
	struct client_key *keys;  /* block keys this connection knows */
	size_t nkeys, cap_keys;
	struct client_rmap *rmaps; /* RDMA maps of this connection */
	size_t nrmaps, cap_rmaps;
};

/* ---- URI --------------------------------------------------------------- */

static bool
name_ok(const char *s, size_t n)
{
	if (n == 0 || n > NVL_BRICK_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '/' || s[i] == '?' || s[i] == '&')
			return false;
	return true;
}

static int
copy_part(char *dst, size_t size, const char *src, size_t n)
{
	if (n >= size)
		return -ENAMETOOLONG;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

NVL_EXPORT int
nvl_brick_uri_parse(const char *uri, struct nvl_brick_uri *u)
{
	static const char shm[] = "brick+shm://", tcp[] = "brick+tcp://", rdma[] = "brick+rdma://";
	const char *p, *q;
	int rc;

	memset(u, 0, sizeof(*u));
	if (uri == NULL)
		return -EINVAL;
	if (strncmp(uri, shm, sizeof(shm) - 1) == 0) {
		p = uri + sizeof(shm) - 1;
		if (*p != '/')
			return -EINVAL; /* brick+shm:///ABSOLUTE/PATH */
		q = strchr(p, '?');
		if (q == NULL || strncmp(q, "?name=", 6) != 0)
			return -EINVAL;
		rc = copy_part(u->path, sizeof(u->path), p, (size_t)(q - p));
		if (rc < 0)
			return rc;
		q += 6;
		if (!name_ok(q, strlen(q)))
			return -EINVAL;
		return copy_part(u->name, sizeof(u->name), q, strlen(q));
	}
	if (strncmp(uri, rdma, sizeof(rdma) - 1) == 0) {
		u->rdma = true; /* HOST:PORT/NAME as brick+tcp */
		p = uri + sizeof(rdma) - 1;
	} else if (strncmp(uri, tcp, sizeof(tcp) - 1) == 0) {
		u->tcp = true;
		p = uri + sizeof(tcp) - 1;
	} else {
		return -EINVAL;
	}
	if (*p == '[') {
		q = strchr(p, ']');
		if (q == NULL || q[1] != ':')
			return -EINVAL;
		rc = copy_part(u->host, sizeof(u->host), p + 1, (size_t)(q - p - 1));
		p = q + 2;
	} else {
		q = strchr(p, ':');
		if (q == NULL || memchr(p, '/', (size_t)(q - p)))
			return -EINVAL;
		rc = copy_part(u->host, sizeof(u->host), p, (size_t)(q - p));
		p = q + 1;
	}
	if (rc < 0)
		return rc;
	if (u->host[0] == '\0')
		return -EINVAL;
	q = strchr(p, '/');
	if (q == NULL || q == p || (size_t)(q - p) > 5)
		return -EINVAL;
	for (const char *d = p; d < q; d++)
		if (*d < '0' || *d > '9')
			return -EINVAL;
	rc = copy_part(u->port, sizeof(u->port), p, (size_t)(q - p));
	if (rc < 0)
		return rc;
	q++;
	if (!name_ok(q, strlen(q)))
		return -EINVAL;
	return copy_part(u->name, sizeof(u->name), q, strlen(q));
}

/* ---- transports -------------------------------------------------------- */

static void
set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = CLIENT_TIMEOUT_S };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int
brick_shm_connect(const struct nvl_brick_uri *u, int *out)
{
	return nvl_sock_connect_unix(u->path, SOCK_STREAM, 0, out);
}

static int
brick_tcp_connect(const struct nvl_brick_uri *u, int *out)
{
	int one = 1, rc;

	rc = nvl_sock_connect_tcp(u->host, u->port, 0, out);
	if (rc == 0)
		setsockopt(*out, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return rc;
}

static const struct brick_client_transport g_client_shm = {
	.scheme = "brick+shm",
	.passes_fds = true,
	.connect = brick_shm_connect,
};

static const struct brick_client_transport g_client_tcp = {
	.scheme = "brick+tcp",
	.passes_fds = false,
	.connect = brick_tcp_connect,
};

/* connect NULL: the RDMA CM connects (client_rdma.c), there is no socket */
static const struct brick_client_transport g_client_rdma = {
	.scheme = "brick+rdma",
	.passes_fds = false,
	.connect = NULL,
};

/* ---- message exchange -------------------------------------------------- */

static int
io_err(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK ? -ETIMEDOUT : -e;
}

static int
send_all(struct nvl_brick *b, struct iovec *iov, int cnt)
{
	if (b->rdma)
		return brick_rdma_client_send(b->rdma, iov, cnt);
	while (cnt > 0) {
		ssize_t n = nvl_sock_send_fds(b->fd, iov, cnt, NULL, 0, 0);

		if (n < 0)
			return io_err((int)-n);
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Receive exactly len bytes; file descriptors that arrive are collected in
 * *fd (the first one; extra ones are closed). */
static int
recv_all(struct nvl_brick *b, void *buf, size_t len, int *fd)
{
	uint8_t *p = buf;

	if (b->rdma)
		return brick_rdma_client_recv(b->rdma, buf, len);
	while (len > 0) {
		struct iovec iov = { .iov_base = p, .iov_len = len };
		int got[1];
		unsigned nfds;
		ssize_t n;

		n = nvl_sock_recv_fds(b->fd, &iov, 1, got, fd ? 1 : 0, &nfds, 0, NULL);
		if (n < 0)
			return io_err((int)-n);
		if (nfds && *fd < 0)
			*fd = got[0];
		else if (nfds)
			close(got[0]);
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

struct xfer {
	const void *out;      /* request payload */
	size_t out_len;
	void *in;             /* response payload destination */
	size_t in_cap;
	int fd;               /* received fd (-1) */
	struct nvl_brick_hdr resp;
};

/* One request/response exchange. \return the response's errno (0 or <0), or a
 * transport/protocol error (which breaks the connection). Caller holds the lock. */
static int
exchange(struct nvl_brick *b, struct nvl_brick_hdr *req, struct xfer *x)
{
	uint8_t wire[NVL_BRICK_HDR_SIZE];
	struct iovec iov[2];
	int rc;

	x->fd = -1;
	if (b->broken)
		return -EPIPE;
	req->magic = NVL_BRICK_MAGIC;
	req->version = b->version;
	req->req_id = ++b->next_id;
	req->data_len = (uint32_t)x->out_len;
	brick_proto_hdr_encode(req, wire);
	iov[0].iov_base = wire;
	iov[0].iov_len = sizeof(wire);
	iov[1].iov_base = (void *)x->out;
	iov[1].iov_len = x->out_len;
	rc = send_all(b, iov, x->out_len ? 2 : 1);
	if (rc < 0)
		goto broken;
	rc = recv_all(b, wire, sizeof(wire), b->tr->passes_fds ? &x->fd : NULL);
	if (rc < 0)
		goto broken;
	brick_proto_hdr_decode(wire, &x->resp);
	rc = brick_proto_check_resp(&x->resp, req);
	if (rc == 0 && x->resp.data_len > x->in_cap)
		rc = -EPROTO;
	if (rc == 0 && (x->resp.flags & NVL_BRICK_HF_FD) && x->fd < 0)
		rc = -EPROTO; /* announced an fd that did not come */
	if (rc < 0)
		goto broken;
	if (x->resp.data_len) {
		rc = recv_all(b, x->in, x->resp.data_len, NULL);
		if (rc < 0)
			goto broken;
	}
	if (x->fd >= 0 && !(x->resp.flags & NVL_BRICK_HF_FD)) {
		close(x->fd);
		x->fd = -1;
	}
	return brick_proto_errno_from_status(x->resp.status);
broken:
	if (x->fd >= 0)
		close(x->fd);
	x->fd = -1;
	b->broken = true;
	return rc == -EPIPE || rc == -ETIMEDOUT ? rc : rc == -EPROTO ? -EPROTO : rc;
}

static void
info_from_wire(const struct nvl_brick_info_wire *w, struct nvl_brick_info *i)
{
	memset(i, 0, sizeof(*i));
	i->version = w->version;
	i->block_size = w->block_size;
	i->capacity_blocks = w->capacity_blocks;
	i->fast_blocks = w->fast_blocks;
	i->allocated_blocks = w->allocated_blocks;
	i->mapped_blocks = w->mapped_blocks;
	i->fast_tier_blocks = w->fast_tier_blocks;
	i->slow_tier_blocks = w->slow_tier_blocks;
	i->persistence = w->persistence;
	i->is_volatile = (w->flags & NVL_BRICK_INFO_VOLATILE) != 0;
	i->local = (w->flags & NVL_BRICK_INFO_LOCAL) != 0;
}

/* ---- identity ---------------------------------------------------------- */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
parse_hex(const char *s, size_t slen, uint8_t *out, size_t n)
{
	if (slen != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* Create an identity file: 32 random bytes in hex, mode 0600, never over an
 * existing file. Written under a temporary name and linked into place, so a
 * process racing to create the same file reads a whole one or none.
 * \return 0, -EEXIST, -errno. */
static int
identity_create(const char *path)
{
	uint8_t sec[NVL_BRICK_ID_SIZE];
	char hex[2 * NVL_BRICK_ID_SIZE + 2], tmp[PATH_MAX];
	ssize_t n;
	int fd, rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	rc = nvl_random_bytes(sec, sizeof(sec));
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < sizeof(sec); i++)
		snprintf(hex + 2 * i, 3, "%02x", sec[i]);
	hex[2 * NVL_BRICK_ID_SIZE] = '\n';
	explicit_bzero(sec, sizeof(sec));
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		explicit_bzero(hex, sizeof(hex));
		return -errno;
	}
	n = write(fd, hex, 2 * NVL_BRICK_ID_SIZE + 1);
	rc = n == 2 * NVL_BRICK_ID_SIZE + 1 ? 0 : n < 0 ? -errno : -EIO;
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	explicit_bzero(hex, sizeof(hex));
	if (rc == 0 && link(tmp, path) < 0)
		rc = -errno; /* -EEXIST: someone else's is there: use that one */
	unlink(tmp);
	return rc;
}

/* Read an identity file: ours, regular, no access for group or others. */
static int
identity_read(const char *path, uint8_t *secret)
{
	char buf[2 * NVL_BRICK_ID_SIZE + 2];
	struct stat st;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077)) {
		close(fd);
		return -EPERM; /* someone else could read (or write) it */
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return -errno;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	rc = parse_hex(buf, (size_t)n, secret, NVL_BRICK_ID_SIZE);
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

static void
client_name(char *name, size_t size)
{
	const char *env = getenv("NVLEND_BRICK_CLIENT");
	char host[64] = "", user[64] = "", tmp[2 * 64 + 2];
	struct passwd pw, *res = NULL;
	char pwbuf[1024];
	size_t i;

	if (env && *env) {
		snprintf(tmp, sizeof(tmp), "%s", env);
	} else {
		if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res)
			snprintf(user, sizeof(user), "%s", res->pw_name);
		else
			snprintf(user, sizeof(user), "uid%u", (unsigned)geteuid());
		if (gethostname(host, sizeof(host) - 1) < 0)
			host[0] = '\0';
		snprintf(tmp, sizeof(tmp), "%s@%s", user, host);
	}
	/* the wire takes printable ASCII without '/' */
	for (i = 0; tmp[i] && i + 1 < size && i < NVL_BRICK_CLIENT_MAX; i++)
		name[i] = tmp[i] < 0x21 || tmp[i] > 0x7e || tmp[i] == '/' ? '_' : tmp[i];
	name[i] = '\0';
}

/* The client part of HELLO. \return 0 (cl->has_id false: anonymous), or
 * -errno for an identity file named by NVLEND_BRICK_IDENTITY that cannot be
 * used. */
static int
load_identity(struct brick_proto_client *cl)
{
	const char *path = getenv("NVLEND_BRICK_IDENTITY");
	char def[PATH_MAX], home[PATH_MAX];
	int rc;

	memset(cl, 0, sizeof(*cl));
	client_name(cl->name, sizeof(cl->name));
	if (path && strcmp(path, "none") == 0)
		return 0;
	if (path && *path) {
		rc = identity_read(path, cl->secret);
		if (rc == -ENOENT) {
			rc = identity_create(path);
			if (rc == 0 || rc == -EEXIST)
				rc = identity_read(path, cl->secret);
		}
		cl->has_id = rc == 0;
		return rc;
	}
	path = getenv("HOME");
	if (path == NULL || *path != '/') {
		/* a service started without HOME: the user's home directory */
		struct passwd pw, *res = NULL;
		char pwbuf[1024];

		if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &res) != 0 || res == NULL ||
		    res->pw_dir == NULL || res->pw_dir[0] != '/')
			return 0; /* nowhere to keep one: anonymous, keys only */
		snprintf(home, sizeof(home), "%s", res->pw_dir);
		path = home;
	}
	if ((size_t)snprintf(def, sizeof(def), "%s/.config/nvlend/brick-identity", path) >=
	    sizeof(def))
		return 0; /* no room for the name: anonymous */
	/* the two directories above the file (0700), made where missing */
	*strrchr(def, '/') = '\0';
	*strrchr(def, '/') = '\0';
	(void)mkdir(def, 0700);
	def[strlen(def)] = '/';
	(void)mkdir(def, 0700);
	def[strlen(def)] = '/';
	rc = identity_read(def, cl->secret);
	if (rc == -ENOENT) {
		rc = identity_create(def);
		if (rc == 0 || rc == -EEXIST)
			rc = identity_read(def, cl->secret);
	}
	if (rc == -EPERM)
		return rc; /* a default file others can read: say so rather than ignore it */
	cl->has_id = rc == 0;
	return 0;
}

/* ---- block keys this connection knows (caller holds the lock) ---------- */

static struct client_key *
key_find(struct nvl_brick *b, uint64_t addr)
{
	for (size_t i = 0; i < b->nkeys; i++)
		if (b->keys[i].addr == addr)
			return &b->keys[i];
	return NULL;
}

static int
key_remember(struct nvl_brick *b, uint64_t addr, const uint8_t *key)
{
	struct client_key *k = key_find(b, addr);

	if (k == NULL) {
		if (b->nkeys == b->cap_keys) {
			size_t ncap = b->cap_keys ? b->cap_keys * 2 : 16;
			struct client_key *nk = realloc(b->keys, ncap * sizeof(*nk));

			if (nk == NULL)
				return -ENOMEM;
			b->keys = nk;
			b->cap_keys = ncap;
		}
		k = &b->keys[b->nkeys++];
		k->addr = addr;
	}
	memcpy(k->key, key, NVL_BRICK_KEY_SIZE);
	return 0;
}

static void
key_forget(struct nvl_brick *b, uint64_t addr)
{
	struct client_key *k = key_find(b, addr);

	if (k == NULL)
		return;
	explicit_bzero(k->key, sizeof(k->key));
	*k = b->keys[--b->nkeys];
}

/* ---- RDMA maps of this connection (caller holds the lock) -------------- */

static struct client_rmap *
rmap_find_key(struct nvl_brick *b, uint64_t key)
{
	for (size_t i = 0; i < b->nrmaps; i++)
		if (b->rmaps[i].key == key)
			return &b->rmaps[i];
	return NULL;
}

static uint64_t
get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* A MAP answer over RDMA: remember the block's memory region. */
static int
rmap_add(struct nvl_brick *b, const struct nvl_brick_hdr *resp, const uint8_t *wire)
{
	struct client_rmap *m;

	if (b->nrmaps == b->cap_rmaps) {
		size_t ncap = b->cap_rmaps ? b->cap_rmaps * 2 : 16;
		struct client_rmap *nm = realloc(b->rmaps, ncap * sizeof(*nm));

		if (nm == NULL)
			return -ENOMEM;
		b->rmaps = nm;
		b->cap_rmaps = ncap;
	}
	m = &b->rmaps[b->nrmaps++];
	m->key = resp->key;
	m->addr = resp->addr;
	m->raddr = get_le(wire, 8);
	m->rkey = (uint32_t)get_le(wire + 8, 4);
	m->flags = resp->arg;
	return 0;
}

/* One-sided READ/WRITE through a handle of this connection. */
static int
rmap_rw(struct nvl_brick *b, const struct client_rmap *m, bool write, uint64_t addr,
	uint64_t off, void *buf, size_t len)
{
	if (m->addr != addr)
		return -EACCES; /* the key of another block */
	if (write && !(m->flags & NVL_BRICK_MAP_RW))
		return -EROFS;
	return brick_rdma_client_rw(b->rdma, write, m->raddr + off, m->rkey, buf, len);
}

/* ---- API --------------------------------------------------------------- */

NVL_EXPORT int
nvl_brick_connect(const char *uri, struct nvl_brick **out)
{
	uint8_t hello[BRICK_PROTO_HELLO_MAX];
	struct brick_proto_client cl;
	uint8_t infow[sizeof(struct nvl_brick_info_wire)];
	struct nvl_brick_info_wire iw;
	struct nvl_brick_hdr req = { .opcode = NVL_BRICK_OP_HELLO };
	struct xfer x = { .in = infow, .in_cap = sizeof(infow) };
	struct nvl_brick_uri u;
	struct nvl_brick *b;
	int rc;

	rc = nvl_brick_uri_parse(uri, &u);
	if (rc < 0)
		return rc;
	rc = load_identity(&cl);
	if (rc < 0)
		return rc;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	b->tr = u.rdma ? &g_client_rdma : u.tcp ? &g_client_tcp : &g_client_shm;
	b->version = NVL_BRICK_VERSION_MAX;
	b->fd = -1;
	pthread_mutex_init(&b->lock, NULL);
	if (u.rdma) {
		rc = brick_rdma_client_connect(u.host, u.port, CLIENT_TIMEOUT_S * 1000, &b->rdma);
		if (rc < 0)
			goto err_free;
	} else {
		rc = b->tr->connect(&u, &b->fd);
		if (rc < 0)
			goto err_free;
		set_timeouts(b->fd);
	}
	x.out = hello;
	x.out_len = brick_proto_hello_encode_id(u.name, &cl, hello, sizeof(hello));
	explicit_bzero(&cl, sizeof(cl));
	rc = exchange(b, &req, &x);
	explicit_bzero(hello, sizeof(hello));
	if (rc == -EINVAL)
		rc = -EPROTONOSUPPORT; /* our HELLO is well formed: a v1 daemon says EINVAL */
	if (rc < 0)
		goto err_close;
	if (x.resp.version < NVL_BRICK_VERSION_MIN || x.resp.version > NVL_BRICK_VERSION_MAX) {
		rc = -EPROTONOSUPPORT;
		goto err_close;
	}
	b->version = x.resp.version;
	brick_proto_info_decode(infow, &iw);
	info_from_wire(&iw, &b->info);
	b->info.version = b->version;
	*out = b;
	return 0;
err_close:
	if (b->rdma)
		brick_rdma_client_close(b->rdma);
	else
		close(b->fd);
err_free:
	pthread_mutex_destroy(&b->lock);
	free(b);
	return rc;
}

static void
drop_local_maps(struct nvl_brick *b, uint64_t addr, bool all)
{
	size_t i = 0;

	while (i < b->nrmaps) {
		if (all || b->rmaps[i].addr == addr) {
			b->rmaps[i] = b->rmaps[--b->nrmaps];
			continue;
		}
		i++;
	}
	i = 0;

	while (i < b->nmaps) {
		if (all || b->maps[i].addr == addr) {
			munmap(b->maps[i].ptr, NVL_BRICK_BLOCK_SIZE);
			b->maps[i] = b->maps[--b->nmaps];
			continue;
		}
		i++;
	}
}

NVL_EXPORT void
nvl_brick_disconnect(struct nvl_brick *b)
{
	if (b == NULL)
		return;
	drop_local_maps(b, 0, true);
	free(b->maps);
	if (b->keys)
		explicit_bzero(b->keys, b->cap_keys * sizeof(*b->keys));
	free(b->keys);
	free(b->rmaps);
	if (b->rdma)
		brick_rdma_client_close(b->rdma);
	else
		close(b->fd);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static int
simple_op(struct nvl_brick *b, uint8_t opc, uint64_t addr)
{
	struct nvl_brick_hdr req = { .opcode = opc, .addr = addr };
	uint8_t key[NVL_BRICK_KEY_SIZE];
	struct xfer x = { 0 };
	struct client_key *k;
	int rc;

	pthread_mutex_lock(&b->lock);
	if (opc == NVL_BRICK_OP_FREE && (k = key_find(b, addr)) != NULL) {
		x.out = k->key;
		x.out_len = NVL_BRICK_KEY_SIZE;
	}
	if (opc == NVL_BRICK_OP_ALLOC || opc == NVL_BRICK_OP_KEY) {
		x.in = key;
		x.in_cap = sizeof(key);
	}
	if (opc == NVL_BRICK_OP_UNMAP)
		drop_local_maps(b, addr, false); /* before the daemon cuts them off */
	rc = exchange(b, &req, &x);
	if (rc == 0 && (opc == NVL_BRICK_OP_ALLOC || opc == NVL_BRICK_OP_KEY))
		rc = key_remember(b, addr, key);
	if (rc == 0 && opc == NVL_BRICK_OP_FREE) {
		/* a refused FREE (not ours) leaves our mappings alone */
		drop_local_maps(b, addr, false);
		key_forget(b, addr);
	}
	pthread_mutex_unlock(&b->lock);
	explicit_bzero(key, sizeof(key));
	return rc;
}

NVL_EXPORT int
nvl_brick_info(struct nvl_brick *b, struct nvl_brick_info *out)
{
	uint8_t infow[sizeof(struct nvl_brick_info_wire)];
	struct nvl_brick_hdr req = { .opcode = NVL_BRICK_OP_INFO };
	struct xfer x = { .in = infow, .in_cap = sizeof(infow) };
	struct nvl_brick_info_wire iw;
	int rc;

	pthread_mutex_lock(&b->lock);
	rc = exchange(b, &req, &x);
	pthread_mutex_unlock(&b->lock);
	if (rc < 0)
		return rc;
	brick_proto_info_decode(infow, &iw);
	info_from_wire(&iw, out);
	out->version = b->version;
	return 0;
}

NVL_EXPORT int
nvl_brick_alloc(struct nvl_brick *b, uint64_t addr)
{
	if (addr & (NVL_BRICK_BLOCK_SIZE - 1))
		return -EINVAL;
	return simple_op(b, NVL_BRICK_OP_ALLOC, addr);
}

NVL_EXPORT int
nvl_brick_free(struct nvl_brick *b, uint64_t addr)
{
	if (addr & (NVL_BRICK_BLOCK_SIZE - 1))
		return -EINVAL;
	return simple_op(b, NVL_BRICK_OP_FREE, addr);
}

NVL_EXPORT int
nvl_brick_unmap(struct nvl_brick *b, uint64_t addr)
{
	if (addr & (NVL_BRICK_BLOCK_SIZE - 1))
		return -EINVAL;
	return simple_op(b, NVL_BRICK_OP_UNMAP, addr);
}

NVL_EXPORT int
nvl_brick_map(struct nvl_brick *b, uint64_t addr, uint32_t flags, struct nvl_brick_handle *h)
{
	struct nvl_brick_hdr req = { .opcode = NVL_BRICK_OP_MAP, .addr = addr, .arg = flags };
	uint8_t bkey[NVL_BRICK_KEY_SIZE + NVL_BRICK_RDMA_HANDLE_SIZE];
	struct xfer x = { .in = bkey, .in_cap = sizeof(bkey) };
	struct client_key *k;
	void *p = NULL;
	int rc;

	if (addr & (NVL_BRICK_BLOCK_SIZE - 1))
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	k = key_find(b, addr);
	if (k != NULL) {
		x.out = k->key;
		x.out_len = NVL_BRICK_KEY_SIZE;
	}
	rc = exchange(b, &req, &x);
	if (rc < 0)
		goto out;
	/* the handle is for this block, all of it (a server that says otherwise
	 * is not one to trust with the caller's memory) */
	if (x.resp.addr != addr || x.resp.length != NVL_BRICK_BLOCK_SIZE ||
	    x.resp.data_len != NVL_BRICK_KEY_SIZE + (b->rdma ? NVL_BRICK_RDMA_HANDLE_SIZE : 0)) {
		rc = -EPROTO;
		goto err_unmap;
	}
	if (b->rdma) {
		rc = rmap_add(b, &x.resp, bkey + NVL_BRICK_KEY_SIZE);
		if (rc < 0)
			goto err_unmap;
	}
	if (x.fd >= 0) {
		int prot = PROT_READ | ((x.resp.arg & NVL_BRICK_MAP_RW) ? PROT_WRITE : 0);
		struct client_map *nm;
		struct stat st;

		/* a file shorter than the block would fault (SIGBUS) in the caller
		 * on the first touch beyond its end: refuse it here */
		if (fstat(x.fd, &st) < 0 || !S_ISREG(st.st_mode) ||
		    st.st_size < (off_t)NVL_BRICK_BLOCK_SIZE) {
			rc = -EPROTO;
			goto err_unmap;
		}

		if (b->nmaps == b->cap_maps) {
			size_t ncap = b->cap_maps ? b->cap_maps * 2 : 16;

			nm = realloc(b->maps, ncap * sizeof(*nm));
			if (nm == NULL) {
				rc = -ENOMEM;
				goto err_unmap;
			}
			b->maps = nm;
			b->cap_maps = ncap;
		}
		p = MAP_FAILED;
		if (b->info.persistence == NVL_BRICK_PERSIST_PMEM)
			p = mmap(NULL, NVL_BRICK_BLOCK_SIZE, prot,
				 MAP_SHARED_VALIDATE | MAP_SYNC | MAP_POPULATE, x.fd, 0);
		if (p == MAP_FAILED)
			p = mmap(NULL, NVL_BRICK_BLOCK_SIZE, prot, MAP_SHARED | MAP_POPULATE, x.fd,
				 0);
		if (p == MAP_FAILED) {
			rc = -errno;
			p = NULL;
			goto err_unmap;
		}
		close(x.fd);
		x.fd = -1;
		b->maps[b->nmaps].addr = addr;
		b->maps[b->nmaps].ptr = p;
		b->nmaps++;
	}
	/* remembered: the next MAP or FREE of this block sends it */
	rc = key_remember(b, addr, bkey);
	if (rc < 0) {
		if (p != NULL) {
			munmap(p, NVL_BRICK_BLOCK_SIZE);
			b->nmaps--;
		}
		if (b->rdma)
			b->nrmaps--;
		goto err_unmap;
	}
	h->key = x.resp.key;
	h->addr = x.resp.addr;
	h->length = x.resp.length;
	h->flags = x.resp.arg;
	h->ptr = p;
	goto out;
err_unmap:
	if (x.fd >= 0)
		close(x.fd);
	{
		struct nvl_brick_hdr un = { .opcode = NVL_BRICK_OP_UNMAP, .addr = addr };
		struct xfer ux = { 0 };

		exchange(b, &un, &ux);
	}
out:
	pthread_mutex_unlock(&b->lock);
	explicit_bzero(bkey, sizeof(bkey));
	return rc;
}

NVL_EXPORT int
nvl_brick_key_add(struct nvl_brick *b, uint64_t addr, const uint8_t key[NVL_BRICK_KEY_SIZE])
{
	int rc;

	if (addr & (NVL_BRICK_BLOCK_SIZE - 1))
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	rc = key_remember(b, addr, key);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

NVL_EXPORT int
nvl_brick_key_get(struct nvl_brick *b, uint64_t addr, uint8_t key[NVL_BRICK_KEY_SIZE])
{
	struct client_key *k;
	int rc;

	if (addr & (NVL_BRICK_BLOCK_SIZE - 1))
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	k = key_find(b, addr);
	if (k != NULL)
		memcpy(key, k->key, NVL_BRICK_KEY_SIZE);
	pthread_mutex_unlock(&b->lock);
	if (k != NULL)
		return 0;
	rc = simple_op(b, NVL_BRICK_OP_KEY, addr); /* the owner may ask */
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&b->lock);
	k = key_find(b, addr);
	if (k != NULL)
		memcpy(key, k->key, NVL_BRICK_KEY_SIZE);
	pthread_mutex_unlock(&b->lock);
	return k != NULL ? 0 : -ENOENT;
}

NVL_EXPORT int
nvl_brick_key_parse(const char *hex, uint8_t key[NVL_BRICK_KEY_SIZE])
{
	if (hex == NULL)
		return -EINVAL;
	return parse_hex(hex, strlen(hex), key, NVL_BRICK_KEY_SIZE);
}

NVL_EXPORT void
nvl_brick_key_format(const uint8_t key[NVL_BRICK_KEY_SIZE], char out[2 * NVL_BRICK_KEY_SIZE + 1])
{
	for (size_t i = 0; i < NVL_BRICK_KEY_SIZE; i++)
		snprintf(out + 2 * i, 3, "%02x", key[i]);
}

NVL_EXPORT int
nvl_brick_list(struct nvl_brick *b, struct nvl_brick_extent **ext, size_t *count)
{
	uint8_t *w = malloc(NVL_BRICK_LIST_MAX * sizeof(struct nvl_brick_extent));
	struct nvl_brick_extent *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t start = 0;
	int rc = 0;

	*ext = NULL;
	*count = 0;
	if (w == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&b->lock);
	for (;;) {
		struct nvl_brick_hdr req = { .opcode = NVL_BRICK_OP_LIST, .addr = start };
		struct xfer x = { .in = w, .in_cap = NVL_BRICK_LIST_MAX *
						     sizeof(struct nvl_brick_extent) };
		struct nvl_brick_extent *nv;

		rc = exchange(b, &req, &x);
		if (rc < 0)
			break;
		if (n + x.resp.arg > cap) {
			cap = n + x.resp.arg + 64;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
		}
		for (uint32_t i = 0; i < x.resp.arg; i++)
			brick_proto_extent_decode(w + i * sizeof(*v), &v[n++]);
		if (!(x.resp.flags & NVL_BRICK_HF_MORE))
			break;
		if (x.resp.addr <= start) { /* must make progress */
			rc = -EPROTO;
			break;
		}
		start = x.resp.addr;
	}
	pthread_mutex_unlock(&b->lock);
	free(w);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*ext = v;
	*count = n;
	return 0;
}

static int
split_addr(uint64_t addr, size_t len, uint64_t *blk, uint64_t *off)
{
	*blk = addr & ~((uint64_t)NVL_BRICK_BLOCK_SIZE - 1);
	*off = addr - *blk;
	if (len > NVL_BRICK_BLOCK_SIZE - *off)
		return -EINVAL;
	return 0;
}

NVL_EXPORT int
nvl_brick_read(struct nvl_brick *b, uint64_t key, uint64_t addr, void *buf, size_t len)
{
	struct nvl_brick_hdr req = { .opcode = NVL_BRICK_OP_READ, .key = key, .length = len };
	struct xfer x = { .in = buf, .in_cap = len };
	int rc;

	if (len == 0 || split_addr(addr, len, &req.addr, &req.offset) < 0)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	if (b->rdma && rmap_find_key(b, key) != NULL)
		rc = rmap_rw(b, rmap_find_key(b, key), false, req.addr, req.offset, buf, len);
	else
		rc = exchange(b, &req, &x);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

NVL_EXPORT int
nvl_brick_write(struct nvl_brick *b, uint64_t key, uint64_t addr, const void *buf, size_t len)
{
	struct nvl_brick_hdr req = { .opcode = NVL_BRICK_OP_WRITE, .key = key, .length = len };
	struct xfer x = { .out = buf, .out_len = len };
	int rc;

	if (len == 0 || split_addr(addr, len, &req.addr, &req.offset) < 0)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	if (b->rdma && rmap_find_key(b, key) != NULL)
		rc = rmap_rw(b, rmap_find_key(b, key), true, req.addr, req.offset, (void *)buf,
			     len);
	else
		rc = exchange(b, &req, &x);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

NVL_EXPORT int
nvl_brick_flush(struct nvl_brick *b, uint64_t key, uint64_t addr, size_t len)
{
	struct nvl_brick_hdr req = { .opcode = NVL_BRICK_OP_FLUSH, .key = key, .length = len };
	struct xfer x = { 0 };
	int rc;

	if (split_addr(addr, len, &req.addr, &req.offset) < 0)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	rc = exchange(b, &req, &x);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

NVL_EXPORT int
nvl_brick_flush_all(struct nvl_brick *b)
{
	struct nvl_brick_hdr req = { .opcode = NVL_BRICK_OP_FLUSH_ALL };
	struct xfer x = { 0 };
	int rc;

	pthread_mutex_lock(&b->lock);
	rc = exchange(b, &req, &x);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

NVL_EXPORT int
nvl_brick_rdma_handle(struct nvl_brick *b, uint64_t key, struct nvl_brick_rdma_handle *out)
{
	struct client_rmap *m;
	int rc = -ENOENT;

	if (b->rdma == NULL)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&b->lock);
	m = rmap_find_key(b, key);
	if (m != NULL) {
		out->addr = m->addr;
		out->length = NVL_BRICK_BLOCK_SIZE;
		out->remote_addr = m->raddr;
		out->rkey = m->rkey;
		out->flags = m->flags;
		rc = 0;
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

static int
rdma_handle_rw(struct nvl_brick *b, const struct nvl_brick_rdma_handle *h, bool write,
	       uint64_t offset, void *buf, size_t len)
{
	int rc;

	if (b->rdma == NULL)
		return -EOPNOTSUPP;
	if (len == 0 || offset >= NVL_BRICK_BLOCK_SIZE || len > NVL_BRICK_BLOCK_SIZE - offset)
		return -EINVAL;
	if (write && !(h->flags & NVL_BRICK_MAP_RW))
		return -EROFS;
	pthread_mutex_lock(&b->lock);
	rc = brick_rdma_client_rw(b->rdma, write, h->remote_addr + offset, h->rkey, buf, len);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

NVL_EXPORT int
nvl_brick_rdma_read(struct nvl_brick *b, const struct nvl_brick_rdma_handle *h, uint64_t offset,
		    void *buf, size_t len)
{
	return rdma_handle_rw(b, h, false, offset, buf, len);
}

NVL_EXPORT int
nvl_brick_rdma_write(struct nvl_brick *b, const struct nvl_brick_rdma_handle *h,
		     uint64_t offset, const void *buf, size_t len)
{
	return rdma_handle_rw(b, h, true, offset, (void *)buf, len);
}

NVL_EXPORT int
nvl_brick_rdma_write_post(struct nvl_brick *b, const struct nvl_brick_rdma_handle *h,
			  uint64_t offset, const void *buf, size_t len)
{
	int rc;

	if (b->rdma == NULL)
		return -EOPNOTSUPP;
	if (len == 0 || offset >= NVL_BRICK_BLOCK_SIZE || len > NVL_BRICK_BLOCK_SIZE - offset)
		return -EINVAL;
	if (!(h->flags & NVL_BRICK_MAP_RW))
		return -EROFS;
	pthread_mutex_lock(&b->lock);
	rc = brick_rdma_client_write_post(b->rdma, h->remote_addr + offset, h->rkey, buf, len);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

NVL_EXPORT int
nvl_brick_rdma_wait(struct nvl_brick *b, unsigned max_posted)
{
	int rc;

	if (b->rdma == NULL)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&b->lock);
	rc = brick_rdma_client_wait(b->rdma, max_posted);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

NVL_EXPORT unsigned
nvl_brick_rdma_posted(struct nvl_brick *b)
{
	unsigned n;

	if (b->rdma == NULL)
		return 0;
	pthread_mutex_lock(&b->lock);
	n = brick_rdma_client_posted(b->rdma);
	pthread_mutex_unlock(&b->lock);
	return n;
}

NVL_EXPORT int
nvl_brick_rdma_sync_read(struct nvl_brick *b, const struct nvl_brick_rdma_handle *h)
{
	uint8_t byte;

	/* RC ordering: this READ is executed after the WRITEs posted before it */
	return rdma_handle_rw(b, h, false, 0, &byte, 1);
}

NVL_EXPORT const char *
nvl_brick_persistence_name(unsigned p)
{
	switch (p) {
	case NVL_BRICK_PERSIST_VOLATILE: return "volatile";
	case NVL_BRICK_PERSIST_FSYNC: return "fsync";
	case NVL_BRICK_PERSIST_PMEM: return "pmem";
	default: return "unknown";
	}
}
