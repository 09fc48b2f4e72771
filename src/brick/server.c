/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Brick protocol server: listeners (one per transport address, shared by the
 * bricks added to it), connections and the per-connection state machine.
 * Reactor 0 only, like the bricks it serves. The store never calls up into
 * the server: the server subscribes to its events (brick_events) and drops a
 * closed brick from its listeners; a brick's connections end through their
 * sessions' kill hook.
 *
 * A connection reads one 64-byte header at a time, validates it
 * (brick_proto_check_req, then against the brick's state), and receives a
 * WRITE payload straight into the block's memory (zero copy; the block's
 * storage stays referenced until the write completes, and the key is checked
 * again at the end so a write racing with an unmap is answered EACCES). READ
 * answers are sent with the header and the block memory as one gather list.
 * Payloads of refused requests are read and dropped so the stream stays in
 * step; a header that cannot be trusted (bad magic, version, flags, or a
 * payload above NVL_BRICK_MAX_DATA) is answered and the connection closed.
 * Bounds: BRICK_CONN_QD responses queued or in flight per connection (then
 * the socket is not read), BRICK_MAX_CONNS_PER_LISTENER connections.
 *
 * Ownership (acl.c): a connection's principal is its HELLO identity and, on
 * the shm listener, the SO_PEERCRED uid. MAP, FREE and KEY go through
 * brick_block_access (owner or block key, the key being the request's
 * 16-byte payload); LIST lists only the principal's blocks; READ, WRITE and
 * FLUSH need a handle key, which only an allowed MAP hands out.
 */
#include "brick/brick_internal.h"
#include "reactor/reactor.h"
#include "util/fdstore.h"
#include "util/log.h"
#include "util/sock.h"
#include "util/util.h"

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

NVL_LOG_DECLARE_COMPONENT(brick);

#define BRICK_CONN_QD 128
#define HELLO_MAX BRICK_PROTO_HELLO_MAX
#define DISCARD_CHUNK (64 * 1024)

enum brick_conn_state {
	CONN_HELLO = 0,   /* waiting for HELLO */
	CONN_READY,       /* serving a brick */
	CONN_CLOSING,     /* answer what is queued, read nothing more, then close */
	CONN_DEAD,        /* closed; freed when the last async op returns */
};

struct brick_tx {
	uint8_t hdr[NVL_BRICK_HDR_SIZE];
	const uint8_t *data;
	size_t data_len;
	void *owned;              /* freed when sent */
	struct brick_mem *mem;    /* referenced while data points into it */
	int fd;                   /* passed with the first byte (-1: none) */
	bool fd_owned;
	size_t sent;
	TAILQ_ENTRY(brick_tx) link;
};

struct brick_conn {
	struct brick_conn_io io;
	struct brick_listener *l;
	int sock;
	struct nvl_fdh *fdh;
	uint32_t events;
	enum brick_conn_state state;
	uint8_t version;
	struct brick *b;
	struct brick_session sess;
	struct brick_principal who; /* from HELLO and, over shm, SO_PEERCRED */
	unsigned refs;            /* 1 while open + async ops in flight */
	unsigned inflight;
	bool in_process;
	/* receive side */
	uint8_t rxhdr[NVL_BRICK_HDR_SIZE];
	size_t rx_have;
	struct nvl_brick_hdr req;
	bool in_payload;
	uint8_t *pl_dst;
	size_t pl_len, pl_got;
	int pl_err;               /* refusal decided at the header, sent after the payload */
	struct brick_mem *pl_mem;
	uint8_t pl_small[HELLO_MAX];
	/* send side */
	TAILQ_HEAD(, brick_tx) txq;
	unsigned ntx;
	TAILQ_ENTRY(brick_conn) link;
};

static TAILQ_HEAD(, brick_listener) g_listeners = TAILQ_HEAD_INITIALIZER(g_listeners);
static TAILQ_HEAD(, brick_conn) g_conns = TAILQ_HEAD_INITIALIZER(g_conns);
static uint8_t g_discard[DISCARD_CHUNK];

static void brick_conn_close(struct brick_conn *c);

/* ---- responses --------------------------------------------------------- */

static struct brick_tx *
brick_tx_new(struct brick_conn *c, const struct nvl_brick_hdr *req, int rc)
{
	struct brick_tx *tx = calloc(1, sizeof(*tx));
	struct nvl_brick_hdr h = { 0 };

	if (tx == NULL)
		return NULL;
	tx->fd = -1;
	h.magic = NVL_BRICK_MAGIC;
	h.version = c->version ? c->version : NVL_BRICK_VERSION_MAX;
	h.opcode = req->opcode;
	h.flags = NVL_BRICK_HF_RESPONSE;
	h.status = brick_proto_status_from_errno(rc);
	h.req_id = req->req_id;
	brick_proto_hdr_encode(&h, tx->hdr);
	return tx;
}

static void
brick_tx_free(struct brick_tx *tx)
{
	if (tx->fd_owned && tx->fd >= 0)
		close(tx->fd);
	brick_mem_put(tx->mem);
	free(tx->owned);
	free(tx);
}

static void
brick_tx_queue(struct brick_conn *c, struct brick_tx *tx)
{
	TAILQ_INSERT_TAIL(&c->txq, tx, link);
	c->ntx++;
}

/* Queue a response with no payload and the given header fields. */
static void
brick_respond(struct brick_conn *c, const struct nvl_brick_hdr *req, int rc)
{
	struct brick_tx *tx = brick_tx_new(c, req, rc);

	if (tx == NULL) {
		c->state = CONN_CLOSING; /* cannot answer: the peer would wait forever */
		return;
	}
	brick_tx_queue(c, tx);
}

/* Rewrite selected header fields of a queued response. */
static void
brick_tx_set(struct brick_tx *tx, uint16_t flags, uint64_t key, uint64_t addr, uint64_t length,
       uint32_t arg, uint32_t data_len)
{
	struct nvl_brick_hdr h;

	brick_proto_hdr_decode(tx->hdr, &h);
	h.flags |= flags;
	h.key = key;
	h.addr = addr;
	h.length = length;
	h.arg = arg;
	h.data_len = data_len;
	brick_proto_hdr_encode(&h, tx->hdr);
}

static int
brick_conn_send(struct brick_conn *c)
{
	struct brick_tx *tx;

	while ((tx = TAILQ_FIRST(&c->txq)) != NULL) {
		struct iovec iov[2];
		int n = 0;
		long sent;
		size_t total = NVL_BRICK_HDR_SIZE + tx->data_len;

		if (tx->sent < NVL_BRICK_HDR_SIZE) {
			iov[n].iov_base = tx->hdr + tx->sent;
			iov[n++].iov_len = NVL_BRICK_HDR_SIZE - tx->sent;
			if (tx->data_len) {
				iov[n].iov_base = (void *)tx->data;
				iov[n++].iov_len = tx->data_len;
			}
		} else {
			iov[n].iov_base = (void *)(tx->data + (tx->sent - NVL_BRICK_HDR_SIZE));
			iov[n++].iov_len = total - tx->sent;
		}
		sent = c->io.sendv(c->io.ctx, iov, n, tx->sent == 0 ? tx->fd : -1);
		if (sent == -EAGAIN)
			return 0;
		if (sent < 0)
			return (int)sent;
		tx->sent += (size_t)sent;
		if (tx->sent < total)
			return 0;
		TAILQ_REMOVE(&c->txq, tx, link);
		c->ntx--;
		brick_tx_free(tx);
	}
	return 0;
}

/* ---- request execution ------------------------------------------------- */

struct conn_async {
	struct brick_conn *c;
	struct nvl_brick_hdr req;
};

static void brick_conn_update_events(struct brick_conn *c);

static void
brick_conn_put(struct brick_conn *c)
{
	if (--c->refs == 0)
		free(c);
}

static void
brick_conn_async_done(void *arg, int rc)
{
	struct conn_async *a = arg;
	struct brick_conn *c = a->c;

	c->inflight--;
	if (c->state != CONN_DEAD) {
		brick_respond(c, &a->req, rc);
		if (!c->in_process) {
			if (brick_conn_process(c) < 0 && (c->sock >= 0 || c->io.closed))
				brick_conn_close(c);
			else
				brick_conn_update_events(c);
		}
	}
	free(a);
	brick_conn_put(c);
}

static bool
brick_listener_serves(const struct brick *b, const struct brick_listener *l)
{
	if (l == NULL)
		return true; /* in-process connection (fuzzing, tests) */
	for (unsigned i = 0; i < b->nlisteners; i++)
		if (b->listeners[i] == l)
			return true;
	return false;
}

static void brick_conn_kill(struct brick_session *s);

static void
brick_exec_hello(struct brick_conn *c, const struct nvl_brick_hdr *req)
{
	char name[NVL_BRICK_NAME_MAX + 1];
	struct nvl_brick_info_wire info;
	struct brick_proto_client cl;
	struct brick_tx *tx;
	struct brick *b = NULL;
	uint8_t ver;
	int rc;

	if (c->state != CONN_HELLO) {
		brick_respond(c, req, -EPROTO);
		return;
	}
	rc = brick_proto_hello_decode(c->pl_small, req->data_len, &ver, name, &cl);
	if (rc == -EPROTONOSUPPORT)
		NVL_ERRLOG_RL("brick connection on %s: client speaks protocol v%u..v%u, this "
			      "daemon v%u..v%u (v2: block ownership): refused, upgrade its libnvlend",
			      c->l ? c->l->trtype : "(local)", c->pl_small[0], c->pl_small[1],
			      NVL_BRICK_VERSION_MIN, NVL_BRICK_VERSION_MAX);
	if (rc == 0 && cl.has_id)
		rc = brick_principal_set_id(&c->who, cl.secret);
	if (rc == 0) {
		nvl_strlcpy(c->who.name, cl.name, sizeof(c->who.name));
		b = brick_find(name);
		if (b == NULL || !brick_listener_serves(b, c->l))
			rc = -ENOENT;
	}
	if (rc < 0) {
		brick_respond(c, req, rc);
		c->state = CONN_CLOSING;
		return;
	}
	c->version = ver;
	tx = brick_tx_new(c, req, 0);
	if (tx)
		tx->owned = malloc(sizeof(info));
	if (tx == NULL || tx->owned == NULL) {
		free(tx);
		c->state = CONN_CLOSING;
		return;
	}
	c->b = b;
	brick_get(b);
	brick_session_init(&c->sess, b);
	c->sess.kill = brick_conn_kill;
	c->state = CONN_READY;
	brick_info(b, &info);
	if (c->io.passes_fds)
		info.flags |= NVL_BRICK_INFO_LOCAL;
	brick_proto_info_encode(&info, tx->owned);
	tx->data = tx->owned;
	tx->data_len = sizeof(info);
	brick_tx_set(tx, 0, 0, 0, 0, 0, (uint32_t)sizeof(info));
	brick_tx_queue(c, tx);
	NVL_DEBUGLOG(brick, "%s: connection on %s, protocol v%u, client '%s'%s", b->name,
		     c->l ? c->l->trtype : "(local)", ver, c->who.name,
		     c->who.has_id ? "" : " (anonymous)");
}

static void
brick_exec_info(struct brick_conn *c, const struct nvl_brick_hdr *req)
{
	struct nvl_brick_info_wire info;
	struct brick_tx *tx = brick_tx_new(c, req, 0);

	if (tx)
		tx->owned = malloc(sizeof(info));
	if (tx == NULL || tx->owned == NULL) {
		free(tx);
		brick_respond(c, req, -ENOMEM);
		return;
	}
	brick_info(c->b, &info);
	if (c->io.passes_fds)
		info.flags |= NVL_BRICK_INFO_LOCAL;
	brick_proto_info_encode(&info, tx->owned);
	tx->data = tx->owned;
	tx->data_len = sizeof(info);
	brick_tx_set(tx, 0, 0, 0, 0, 0, (uint32_t)sizeof(info));
	brick_tx_queue(c, tx);
}

/* A request refused by block ownership: logged (rate-limited), counted by the store. */
static void
brick_conn_denied(struct brick_conn *c, const struct nvl_brick_hdr *req)
{
	char who[48];

	if (c->who.local)
		snprintf(who, sizeof(who), "uid %u", c->who.uid);
	else
		snprintf(who, sizeof(who), "%s", c->l ? c->l->trtype : "(local)");
	NVL_ERRLOG_RL("brick %s: %s of 0x%" PRIx64 " by client '%s' (%s%s) refused: permission "
		      "denied (not the block's owner, %s block key)", c->b->name,
		      brick_proto_opc_name(req->opcode), req->addr, c->who.name, who,
		      c->who.has_id ? "" : ", anonymous",
		      req->data_len == NVL_BRICK_KEY_SIZE ? "wrong" : "no");
}

/* The block a MAP, FREE or KEY names, if this connection may use it.
 * The optional block key is the request's payload (in pl_small). */
static int
brick_conn_access(struct brick_conn *c, const struct nvl_brick_hdr *req, struct brick_block **blk)
{
	const uint8_t *key = req->data_len == NVL_BRICK_KEY_SIZE ? c->pl_small : NULL;
	int rc = brick_block_access(c->b, req->addr, &c->who, key, blk);

	if (rc == -EACCES)
		brick_conn_denied(c, req);
	return rc;
}

/* Queue a success response whose payload is a block key. */
static void
brick_respond_key(struct brick_conn *c, const struct nvl_brick_hdr *req, const uint8_t *key)
{
	struct brick_tx *tx = brick_tx_new(c, req, 0);

	if (tx)
		tx->owned = malloc(NVL_BRICK_KEY_SIZE);
	if (tx == NULL || tx->owned == NULL) {
		free(tx);
		brick_respond(c, req, -ENOMEM);
		return;
	}
	memcpy(tx->owned, key, NVL_BRICK_KEY_SIZE);
	tx->data = tx->owned;
	tx->data_len = NVL_BRICK_KEY_SIZE;
	brick_tx_set(tx, 0, 0, req->addr, 0, 0, NVL_BRICK_KEY_SIZE);
	brick_tx_queue(c, tx);
}

static void
brick_exec_alloc(struct brick_conn *c, const struct nvl_brick_hdr *req)
{
	uint8_t key[NVL_BRICK_KEY_SIZE];
	int rc = brick_alloc(c->b, req->addr, &c->who, key);

	if (rc < 0)
		brick_respond(c, req, rc);
	else
		brick_respond_key(c, req, key);
	explicit_bzero(key, sizeof(key));
}

static void
brick_exec_free(struct brick_conn *c, const struct nvl_brick_hdr *req)
{
	struct brick_block *blk;
	int rc = brick_conn_access(c, req, &blk);

	if (rc == 0)
		rc = brick_free(c->b, req->addr);
	brick_respond(c, req, rc);
}

static void
brick_exec_key(struct brick_conn *c, const struct nvl_brick_hdr *req)
{
	struct brick_block *blk;
	int rc = brick_conn_access(c, req, &blk);

	if (rc == 0 && !brick_acl_owner(&blk->acl, &c->who))
		rc = -EACCES; /* unreachable today (KEY carries no key); the owner only */
	if (rc < 0)
		brick_respond(c, req, rc);
	else
		brick_respond_key(c, req, blk->acl.key);
}

static void
brick_exec_map(struct brick_conn *c, const struct nvl_brick_hdr *req)
{
	struct brick_block *blk;
	struct brick_handle *h;
	struct brick_tx *tx;
	uint16_t fl = 0;
	int rc;

	rc = brick_conn_access(c, req, &blk);
	if (rc == 0)
		rc = brick_map(c->b, &c->sess, req->addr, req->arg, &h);
	if (rc < 0) {
		brick_respond(c, req, rc);
		return;
	}
	tx = brick_tx_new(c, req, 0);
	if (tx)
		tx->owned = malloc(NVL_BRICK_KEY_SIZE + NVL_BRICK_RDMA_HANDLE_SIZE);
	if (tx == NULL || tx->owned == NULL) {
		free(tx);
		brick_handle_revoke(c->b, h);
		brick_respond(c, req, -ENOMEM);
		return;
	}
	if (c->io.map_export) {
		/* RDMA: the block becomes a memory region; its handle follows the key */
		rc = c->io.map_export(c->io.ctx, h, (uint8_t *)tx->owned + NVL_BRICK_KEY_SIZE);
		if (rc < 0) {
			brick_tx_free(tx);
			brick_handle_revoke(c->b, h);
			brick_respond(c, req, rc);
			return;
		}
	}
	if (c->io.passes_fds) {
		struct brick_mem *m = h->blk->mem;

		if (h->flags & NVL_BRICK_MAP_RW) {
			tx->fd = m->fd; /* duplicated into the peer by sendmsg */
		} else {
			/* read-only handle: an O_RDONLY fd, so PROT_WRITE mmap is refused */
			tx->fd = brick_block_open_ro(c->b, h->blk);
			tx->fd_owned = true;
		}
		if (tx->fd < 0) {
			tx->fd = -1;
			brick_tx_free(tx);
			brick_handle_revoke(c->b, h);
			brick_respond(c, req, -EIO);
			return;
		}
		brick_mem_get(m);
		tx->mem = m;
		m->exported = true;
		fl = NVL_BRICK_HF_FD;
	}
	/* the block key goes with the handle: it is what another client needs */
	memcpy(tx->owned, blk->acl.key, NVL_BRICK_KEY_SIZE);
	tx->data = tx->owned;
	tx->data_len = NVL_BRICK_KEY_SIZE + (c->io.map_export ? NVL_BRICK_RDMA_HANDLE_SIZE : 0);
	brick_tx_set(tx, fl, h->key, h->blk->addr, BRICK_BLOCK_SIZE, h->flags,
		     (uint32_t)tx->data_len);
	brick_tx_queue(c, tx);
}

static void
brick_exec_list(struct brick_conn *c, const struct nvl_brick_hdr *req)
{
	uint32_t max = req->arg ? req->arg : NVL_BRICK_LIST_MAX;
	struct nvl_brick_extent *ext;
	int n;
	struct brick_tx *tx;
	uint64_t next;
	bool more;
	uint8_t *w;

	ext = malloc(max * sizeof(*ext));
	tx = brick_tx_new(c, req, 0);
	w = malloc(max * sizeof(*ext));
	if (ext == NULL || tx == NULL || w == NULL) {
		free(ext);
		free(tx);
		free(w);
		brick_respond(c, req, -ENOMEM);
		return;
	}
	/* a client sees only its own blocks */
	n = brick_list_owned(c->b, &c->who, req->addr, ext, max, &more, &next);
	if (n < 0) {
		free(ext);
		free(tx);
		free(w);
		brick_respond(c, req, n);
		return;
	}
	for (int i = 0; i < n; i++)
		brick_proto_extent_encode(&ext[i], w + i * sizeof(*ext));
	free(ext);
	tx->owned = w;
	tx->data = w;
	tx->data_len = (size_t)n * sizeof(*ext);
	brick_tx_set(tx, more ? NVL_BRICK_HF_MORE : 0, 0, more ? next : 0, 0, (uint32_t)n,
	       (uint32_t)tx->data_len);
	brick_tx_queue(c, tx);
}

/* Resolve a key for READ/WRITE/FLUSH: \return handle or NULL with *rc. */
static struct brick_handle *
brick_conn_key(struct brick_conn *c, const struct nvl_brick_hdr *req, bool write, int *rc)
{
	struct brick_handle *h = brick_key_lookup(c->b, req->key);

	if (h == NULL || h->blk->addr != req->addr) {
		*rc = -EACCES;
		return NULL;
	}
	if (write && !(h->flags & NVL_BRICK_MAP_RW)) {
		*rc = -EROFS;
		return NULL;
	}
	*rc = 0;
	return h;
}

static void
brick_exec_read(struct brick_conn *c, const struct nvl_brick_hdr *req)
{
	struct brick_handle *h;
	struct brick_tx *tx;
	int rc;

	h = brick_conn_key(c, req, false, &rc);
	if (h == NULL) {
		brick_respond(c, req, rc);
		return;
	}
	tx = brick_tx_new(c, req, 0);
	if (tx == NULL) {
		brick_respond(c, req, -ENOMEM);
		return;
	}
	tx->mem = h->blk->mem;
	brick_mem_get(tx->mem);
	tx->data = tx->mem->va + req->offset;
	tx->data_len = req->length;
	brick_tx_set(tx, 0, 0, req->addr, req->length, 0, (uint32_t)req->length);
	brick_tx_queue(c, tx);
	c->b->st.bytes_read += req->length;
}

static void
brick_exec_write_done(struct brick_conn *c, const struct nvl_brick_hdr *req)
{
	struct brick_handle *h;
	int rc;

	/* The key is checked again: an unmap/free during the transfer revokes it,
	 * and the data then went to the revoked inode, not to the block. */
	h = brick_conn_key(c, req, true, &rc);
	if (h != NULL && h->blk->mem != c->pl_mem)
		rc = -EACCES;
	if (rc == 0) {
		h->blk->maybe_dirty = true;
		c->b->st.bytes_written += req->length;
	}
	brick_respond(c, req, rc);
}

static void
brick_exec_flush(struct brick_conn *c, const struct nvl_brick_hdr *req)
{
	struct conn_async *a;
	struct brick_handle *h = NULL;
	int rc = 0;

	if (req->opcode == NVL_BRICK_OP_FLUSH) {
		h = brick_conn_key(c, req, false, &rc);
		if (h == NULL) {
			brick_respond(c, req, rc);
			return;
		}
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		brick_respond(c, req, -ENOMEM);
		return;
	}
	a->c = c;
	a->req = *req;
	c->refs++;
	c->inflight++;
	if (h)
		brick_flush(c->b, h, req->offset, req->length, brick_conn_async_done, a);
	else
		brick_flush_all(c->b, brick_conn_async_done, a);
}

static void
brick_conn_exec(struct brick_conn *c, const struct nvl_brick_hdr *req)
{
	if (c->state == CONN_HELLO && req->opcode != NVL_BRICK_OP_HELLO) {
		brick_respond(c, req, -EPROTO);
		c->state = CONN_CLOSING;
		return;
	}
	switch (req->opcode) {
	case NVL_BRICK_OP_HELLO:
		brick_exec_hello(c, req);
		break;
	case NVL_BRICK_OP_INFO:
		brick_exec_info(c, req);
		break;
	case NVL_BRICK_OP_ALLOC:
		brick_exec_alloc(c, req);
		break;
	case NVL_BRICK_OP_FREE:
		brick_exec_free(c, req);
		break;
	case NVL_BRICK_OP_KEY:
		brick_exec_key(c, req);
		break;
	case NVL_BRICK_OP_MAP:
		brick_exec_map(c, req);
		break;
	case NVL_BRICK_OP_UNMAP:
		brick_respond(c, req, brick_unmap(c->b, &c->sess, req->addr));
		break;
	case NVL_BRICK_OP_LIST:
		brick_exec_list(c, req);
		break;
	case NVL_BRICK_OP_READ:
		brick_exec_read(c, req);
		break;
	case NVL_BRICK_OP_FLUSH:
	case NVL_BRICK_OP_FLUSH_ALL:
		brick_exec_flush(c, req);
		break;
	default:
		brick_respond(c, req, -EOPNOTSUPP);
		break;
	}
}

/* ---- receive side ------------------------------------------------------ */

/* A header is complete: decide what happens to its payload. */
static void
brick_conn_header(struct brick_conn *c)
{
	struct nvl_brick_hdr *h = &c->req;
	int rc;

	brick_proto_hdr_decode(c->rxhdr, h);
	c->rx_have = 0;
	rc = brick_proto_check_req(h, c->version);
	if (rc == -EPROTO || !brick_proto_payload_ok(h)) {
		/* the stream cannot be trusted any more: answer and close */
		NVL_ERRLOG_RL("brick connection: bad header (opcode %u, data_len %u): %s",
			      h->opcode, h->data_len, rc ? strerror(-rc) : "payload too large");
		brick_respond(c, h, rc ? rc : -EINVAL);
		c->state = CONN_CLOSING;
		return;
	}
	c->pl_err = rc;
	c->pl_dst = NULL;
	c->pl_mem = NULL;
	c->pl_len = h->data_len;
	c->pl_got = 0;
	if (rc == 0 && c->state == CONN_HELLO && h->opcode != NVL_BRICK_OP_HELLO)
		c->pl_err = rc = -EPROTO;
	if (rc == 0 && (h->opcode == NVL_BRICK_OP_HELLO || h->opcode == NVL_BRICK_OP_MAP ||
			h->opcode == NVL_BRICK_OP_FREE)) {
		c->pl_dst = c->pl_small; /* HELLO, or a block key */
	} else if (rc == 0 && h->opcode == NVL_BRICK_OP_WRITE) {
		struct brick_handle *hd = brick_conn_key(c, h, true, &c->pl_err);

		if (hd != NULL) {
			c->pl_mem = hd->blk->mem;
			brick_mem_get(c->pl_mem);
			c->pl_dst = c->pl_mem->va + h->offset;
		}
	}
	if (c->pl_len == 0) {
		if (c->pl_err)
			brick_respond(c, h, c->pl_err);
		else
			brick_conn_exec(c, h);
		if (c->pl_err == -EPROTO && c->state == CONN_HELLO)
			c->state = CONN_CLOSING;
		return;
	}
	c->in_payload = true;
}

static void
brick_conn_payload_done(struct brick_conn *c)
{
	struct nvl_brick_hdr *h = &c->req;

	c->in_payload = false;
	if (c->pl_err) {
		brick_respond(c, h, c->pl_err);
		if (c->state == CONN_HELLO)
			c->state = CONN_CLOSING;
	} else if (h->opcode == NVL_BRICK_OP_WRITE) {
		brick_exec_write_done(c, h);
	} else {
		brick_conn_exec(c, h);
	}
	brick_mem_put(c->pl_mem);
	c->pl_mem = NULL;
}

/* One receive step. \return >0 progress, -EAGAIN nothing to read, <0 close. */
static long
brick_conn_recv_step(struct brick_conn *c)
{
	long n;

	if (!c->in_payload) {
		n = c->io.recv(c->io.ctx, c->rxhdr + c->rx_have, NVL_BRICK_HDR_SIZE - c->rx_have);
		if (n <= 0)
			return n == 0 ? -ECONNRESET : n;
		c->rx_have += (size_t)n;
		if (c->rx_have == NVL_BRICK_HDR_SIZE)
			brick_conn_header(c);
		return n;
	}
	if (c->pl_dst)
		n = c->io.recv(c->io.ctx, c->pl_dst + c->pl_got, c->pl_len - c->pl_got);
	else
		n = c->io.recv(c->io.ctx, g_discard,
			       NVL_MIN(c->pl_len - c->pl_got, sizeof(g_discard)));
	if (n <= 0)
		return n == 0 ? -ECONNRESET : n;
	c->pl_got += (size_t)n;
	if (c->pl_got == c->pl_len)
		brick_conn_payload_done(c);
	return n;
}

int
brick_conn_process(struct brick_conn *c)
{
	int rc = 0;

	if (c->state == CONN_DEAD)
		return -ECONNRESET;
	c->in_process = true;
	for (;;) {
		long n;

		rc = brick_conn_send(c);
		if (rc < 0)
			break;
		if (c->state == CONN_CLOSING) {
			rc = TAILQ_EMPTY(&c->txq) && c->inflight == 0 ? -ECONNRESET : 0;
			break;
		}
		/* backpressure: stop reading while this many answers are pending */
		if (c->ntx + c->inflight >= BRICK_CONN_QD)
			break;
		n = brick_conn_recv_step(c);
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			rc = (int)n;
			break;
		}
	}
	c->in_process = false;
	return rc;
}

struct brick_conn *
brick_conn_create(const struct brick_conn_io *io, struct brick_listener *l)
{
	struct brick_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->io = *io;
	c->l = l;
	c->sock = -1;
	c->refs = 1;
	c->state = CONN_HELLO;
	TAILQ_INIT(&c->txq);
	TAILQ_INSERT_TAIL(&g_conns, c, link);
	if (l)
		l->nconns++;
	return c;
}

static void brick_listener_maybe_free(struct brick_listener *l);

void
brick_conn_destroy(struct brick_conn *c)
{
	struct brick_tx *tx;

	if (c->state == CONN_DEAD)
		return;
	c->state = CONN_DEAD;
	TAILQ_REMOVE(&g_conns, c, link);
	nvl_fd_del(c->fdh);
	c->fdh = NULL;
	if (c->sock >= 0)
		close(c->sock);
	c->sock = -1;
	while ((tx = TAILQ_FIRST(&c->txq)) != NULL) {
		TAILQ_REMOVE(&c->txq, tx, link);
		brick_tx_free(tx);
	}
	c->ntx = 0;
	brick_mem_put(c->pl_mem);
	c->pl_mem = NULL;
	if (c->b) {
		/* handles die with their connection */
		brick_session_fini(&c->sess);
		brick_put(c->b);
		c->b = NULL;
	}
	if (c->l) {
		c->l->nconns--;
		brick_listener_maybe_free(c->l);
		c->l = NULL;
	}
	if (c->io.closed)
		c->io.closed(c->io.ctx); /* after the handles (and their MRs) are gone */
	brick_conn_put(c);
}

static void
brick_conn_close(struct brick_conn *c)
{
	brick_conn_destroy(c);
}

static void
brick_conn_kill(struct brick_session *s)
{
	brick_conn_close(container_of(s, struct brick_conn, sess));
}

unsigned
brick_conn_count(struct brick *b)
{
	struct brick_conn *c;
	unsigned n = 0;

	TAILQ_FOREACH(c, &g_conns, link)
		n += c->b == b;
	return n;
}

/* ---- sockets ----------------------------------------------------------- */

static long
brick_sock_recv(void *ctx, void *buf, size_t len)
{
	int fd = (int)(intptr_t)ctx;

	for (;;) {
		ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

static long
brick_sock_sendv(void *ctx, const struct iovec *iov, int iovcnt, int pass_fd)
{
	return nvl_sock_send_fds((int)(intptr_t)ctx, iov, iovcnt, &pass_fd, pass_fd >= 0 ? 1 : 0,
				 MSG_DONTWAIT);
}

static void
brick_conn_update_events(struct brick_conn *c)
{
	uint32_t ev = 0;

	if (c->fdh == NULL || c->state == CONN_DEAD)
		return;
	if (c->state != CONN_CLOSING && c->ntx + c->inflight < BRICK_CONN_QD)
		ev |= EPOLLIN;
	if (!TAILQ_EMPTY(&c->txq))
		ev |= EPOLLOUT;
	if (ev != c->events && nvl_fd_mod(c->fdh, ev) == 0)
		c->events = ev;
}

static void
brick_conn_sock_cb(void *arg, uint32_t events)
{
	struct brick_conn *c = arg;

	if (brick_conn_process(c) < 0) {
		brick_conn_close(c);
		return;
	}
	if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
		brick_conn_close(c);
		return;
	}
	brick_conn_update_events(c);
}

static void
brick_listener_accept_cb(void *arg, int fd)
{
	struct brick_listener *l = arg;
	struct brick_conn_io io = { .recv = brick_sock_recv, .sendv = brick_sock_sendv };
	struct brick_conn *c;

	if (l->nconns >= BRICK_MAX_CONNS_PER_LISTENER) {
		NVL_ERRLOG_RL("brick listener %s %s: %u connections, refusing more", l->trtype,
			      l->traddr, l->nconns);
		close(fd);
		return;
	}
	if (l->ops->accepted)
		l->ops->accepted(fd);
	io.ctx = (void *)(intptr_t)fd;
	io.passes_fds = l->ops->passes_fds;
	c = brick_conn_create(&io, l);
	if (c == NULL) {
		close(fd);
		return;
	}
	if (l->ops->passes_fds) {
		struct ucred cr;
		socklen_t crl = sizeof(cr);

		/* a Unix socket: the kernel says who connected */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) == 0) {
			c->who.local = true;
			c->who.uid = cr.uid;
		}
	}
	c->sock = fd;
	c->events = EPOLLIN;
	c->fdh = nvl_fd_add(fd, EPOLLIN, brick_conn_sock_cb, c);
	if (c->fdh == NULL)
		brick_conn_close(c);
}

/* ---- transports -------------------------------------------------------- */

static int
brick_shm_listen(struct brick_listener *l)
{
	if (l->traddr[0] != '/' || l->trsvcid[0])
		return -EINVAL;
	/* only the daemon's user: blocks are handed out by descriptor */
	return nvl_sock_listen_unix(l->traddr, SOCK_STREAM, 0600, 128, &l->fd);
}

static void
brick_shm_stop(struct brick_listener *l)
{
	close(l->fd);
	unlink(l->traddr);
}

static int
brick_tcp_listen(struct brick_listener *l)
{
	if (l->trsvcid[0] == '\0')
		return -EINVAL;
	return nvl_sock_listen_tcp(l->traddr, l->trsvcid, AF_UNSPEC, 128, &l->fd);
}

static void
brick_tcp_stop(struct brick_listener *l)
{
	close(l->fd);
}

static void
brick_tcp_accepted(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

const struct brick_transport_ops brick_transport_shm = {
	.name = "SHM",
	.passes_fds = true,
	.listen = brick_shm_listen,
	.stop = brick_shm_stop,
	.accepted = NULL,
};

const struct brick_transport_ops brick_transport_tcp = {
	.name = "TCP",
	.passes_fds = false,
	.listen = brick_tcp_listen,
	.stop = brick_tcp_stop,
	.accepted = brick_tcp_accepted,
};

static const struct brick_transport_ops *const g_transports[] = {
	&brick_transport_shm,
	&brick_transport_tcp,
	&brick_transport_rdma,
};

const struct brick_transport_ops *
brick_transport_find(const char *trtype)
{
	for (size_t i = 0; i < NVL_ARRAY_SIZE(g_transports); i++)
		if (strcasecmp(trtype, g_transports[i]->name) == 0)
			return g_transports[i];
	return NULL;
}

/* ---- listeners --------------------------------------------------------- */

static void server_brick_closing(struct brick *b, void *arg);
static struct brick_events g_store_events = { .closing = server_brick_closing };
static bool g_subscribed;

static struct brick_listener *
brick_listener_find(const struct brick_transport_ops *ops, const char *traddr, const char *trsvcid)
{
	struct brick_listener *l;

	TAILQ_FOREACH(l, &g_listeners, link)
		if (l->ops == ops && strcmp(l->traddr, traddr) == 0 &&
		    strcmp(l->trsvcid, trsvcid) == 0)
			return l;
	return NULL;
}

static void
brick_listener_maybe_free(struct brick_listener *l)
{
	if (l->refs == 0 && l->nconns == 0)
		free(l);
}

/* Listeners live in the fd store: a worker that restarts listens on the same
 * socket (clients that connect meanwhile wait in its backlog). */
static void
brick_store_name(const struct brick_listener *l, char buf[NVL_FDSTORE_NAME_MAX + 1])
{
	char key[sizeof(l->trtype) + sizeof(l->traddr) + sizeof(l->trsvcid) + 4];

	snprintf(key, sizeof(key), "%s/%s/%s", l->trtype, l->traddr, l->trsvcid);
	nvl_fdstore_name(buf, "brick.listen", key);
}

static int
brick_open_listener(void *arg, int *fd)
{
	struct brick_listener *l = arg;
	int rc = l->ops->listen(l);

	if (rc == 0)
		*fd = l->fd;
	return rc;
}

static void
brick_listener_unref(struct brick_listener *l)
{
	char sname[NVL_FDSTORE_NAME_MAX + 1];

	if (--l->refs > 0)
		return;
	nvl_acceptor_destroy(l->acceptor);
	l->acceptor = NULL;
	brick_store_name(l, sname);
	if (!l->ops->own_accept)
		(void)nvl_fdstore_remove(sname);
	l->ops->stop(l);
	TAILQ_REMOVE(&g_listeners, l, link);
	NVL_NOTICELOG("brick listener %s %s%s%s stopped", l->trtype, l->traddr,
		      l->trsvcid[0] ? ":" : "", l->trsvcid);
	brick_listener_maybe_free(l);
}

int
brick_listener_add(struct brick *b, const char *trtype, const char *traddr,
		   const char *trsvcid)
{
	const struct brick_transport_ops *ops = brick_transport_find(trtype);
	struct brick_listener *l;
	char name[320], sname[NVL_FDSTORE_NAME_MAX + 1];
	int rc;

	if (ops == NULL || traddr == NULL || traddr[0] == '\0')
		return -EINVAL;
	if (!g_subscribed) {
		brick_events_subscribe(&g_store_events);
		g_subscribed = true;
	}
	if (trsvcid == NULL)
		trsvcid = "";
	if (strlen(traddr) >= sizeof(l->traddr) || strlen(trsvcid) >= sizeof(l->trsvcid))
		return -ENAMETOOLONG;
	if (b->nlisteners >= BRICK_MAX_LISTENERS)
		return -E2BIG;
	l = brick_listener_find(ops, traddr, trsvcid);
	if (l != NULL) {
		if (brick_listener_serves(b, l))
			return -EEXIST;
		l->refs++;
		b->listeners[b->nlisteners++] = l;
		return 0;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->ops = ops;
	nvl_strlcpy(l->trtype, ops->name, sizeof(l->trtype));
	nvl_strlcpy(l->traddr, traddr, sizeof(l->traddr));
	nvl_strlcpy(l->trsvcid, trsvcid, sizeof(l->trsvcid));
	brick_store_name(l, sname);
	if (ops->own_accept) {
		/* no socket to keep across a restart or to accept on (RDMA CM) */
		rc = ops->listen(l);
		if (rc < 0) {
			free(l);
			return rc;
		}
		goto listening;
	}
	rc = nvl_fdstore_listener(sname, brick_open_listener, l, &l->fd, NULL);
	if (rc < 0) {
		free(l);
		return rc;
	}
	snprintf(name, sizeof(name), "brick %s %s%s%s", l->trtype, l->traddr,
		 l->trsvcid[0] ? ":" : "", l->trsvcid);
	l->acceptor = nvl_acceptor_create(l->fd, name, 0, brick_listener_accept_cb, l);
	if (l->acceptor == NULL) {
		rc = -errno;
		(void)nvl_fdstore_remove(sname);
		ops->stop(l);
		free(l);
		return rc;
	}
listening:
	l->refs = 1;
	TAILQ_INSERT_TAIL(&g_listeners, l, link);
	b->listeners[b->nlisteners++] = l;
	NVL_NOTICELOG("brick %s: listening on %s %s%s%s", b->name, l->trtype, traddr,
		      trsvcid[0] ? ":" : "", trsvcid);
	return 0;
}

int
brick_listener_remove(struct brick *b, const char *trtype, const char *traddr,
		      const char *trsvcid)
{
	const struct brick_transport_ops *ops = brick_transport_find(trtype);
	struct brick_listener *l;

	if (ops == NULL || traddr == NULL)
		return -EINVAL;
	l = brick_listener_find(ops, traddr, trsvcid ? trsvcid : "");
	if (l == NULL)
		return -ENOENT;
	for (unsigned i = 0; i < b->nlisteners; i++) {
		if (b->listeners[i] == l) {
			b->listeners[i] = b->listeners[--b->nlisteners];
			brick_listener_unref(l);
			return 0;
		}
	}
	return -ENOENT;
}

/* The store closes a brick: the listeners serving it drop it. */
static void
server_brick_closing(struct brick *b, void *arg)
{
	(void)arg;
	while (b->nlisteners > 0)
		brick_listener_unref(b->listeners[--b->nlisteners]);
}
