/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * "brick" bdev (RPCs bdev_brick_create / bdev_brick_delete): a thin-provisioned
 * volume whose 2 MiB extents live in a memory brick, extent i at logical
 * address base_addr + i * 2 MiB, allocated on first write. Unallocated extents
 * read as zeroes; UNMAP of whole extents frees them again. So a brick can back
 * an NVMe namespace or an NBD export.
 *
 * Two modes, picked by the "brick" parameter:
 *  - a local brick name (the brick lives in this daemon): I/O runs on reactor 0
 *    (the brick's owner; I/O submitted elsewhere hops there and back with
 *    reactor messages) and copies to/from the block's memory through handles of
 *    the bdev's own brick session. FLUSH = brick_flush_all.
 *  - a brick URI (brick+tcp://... or brick+shm://..., any daemon, including
 *    this one): a worker thread owns a libnvlend connection and serves the
 *    I/O queue with blocking calls (READ/WRITE messages over TCP, copies into
 *    the mapping over shm); completions go back to the submitting reactor.
 * Copies to and from block memory are done by the kernel (bb_vm_copy), never by
 * loads and stores that a client truncating the block's file could turn into
 * a SIGBUS of the daemon; such a block fails the I/O with -EIO instead.
 * Both keep at most max_mapped extents mapped (LRU); the rest are unmapped so
 * the brick may move them to its slow tier. A handle revoked by another
 * client (free) is noticed at the next access: the extent is looked up again.
 * Block status (local mode): an extent whose block the brick does not have
 * is a hole that reads as zeroes, asked on reactor 0 like the I/O; remote
 * mode reports data (the allocation map is the worker thread's).
 */
#include "bdev/bdev.h"
#include "brick/brick_internal.h"
#include "nvlend/brick.h"
#include "reactor/reactor.h"
#include "rpc/rpc.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

NVL_LOG_DECLARE_COMPONENT(brick);

#define BB_MAX_MAPPED 64

struct bb_ext {
	bool alloc;          /* remote mode: known to exist (local: asks the brick) */
	uint64_t key;        /* 0: not mapped by us */
	void *ptr;           /* remote shm: our mapping of it */
	TAILQ_ENTRY(bb_ext) lru;
};

struct bdev_brick {
	struct nvl_bdev bdev;
	char *spec;          /* local brick name or URI */
	uint64_t base;
	uint64_t size;
	uint64_t nexts;
	struct bb_ext *ext;
	TAILQ_HEAD(, bb_ext) lru;
	unsigned nmapped, max_mapped;
	bool remote;
	/* local mode */
	struct brick *b;
	struct brick_session sess;
	/* remote mode */
	struct nvl_brick *conn;
	pthread_t th;
	bool th_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct nvl_bdev_io *qhead, *qtail;
	bool stop;
	/* creation in progress (remote) */
	struct nvl_rpc_request *req;
	int init_rc;
};

static inline struct bdev_brick *
to_bb(struct nvl_bdev *b)
{
	return container_of(b, struct bdev_brick, bdev);
}

/* io->priv use: [0] status, [1] next in the remote queue */

static void
bb_complete_msg(void *arg)
{
	struct nvl_bdev_io *io = arg;

	nvl_bdev_io_complete(io, (int)(int64_t)io->priv[0]);
}

/* Complete on the submitting reactor. */
static void
bb_complete(struct nvl_bdev_io *io, int rc)
{
	struct nvl_reactor *self = nvl_reactor_self();

	io->priv[0] = (uint64_t)(int64_t)rc;
	if (self && nvl_reactor_id(self) == io->reactor) {
		nvl_bdev_io_complete(io, rc);
		return;
	}
	if (nvl_reactor_msg(nvl_reactor_get(io->reactor), bb_complete_msg, io) < 0)
		NVL_ERRLOG("%s: cannot complete an I/O on reactor %u", io->bdev->name, io->reactor);
}

/* Walk the I/O's byte range extent by extent, with the iovec position. */
struct bb_walk {
	uint64_t off;        /* device offset of the current piece */
	uint64_t left;
	int iov_i;
	size_t iov_off;
};

typedef int (*bb_piece_fn)(struct bdev_brick *bb, struct nvl_bdev_io *io, uint64_t idx,
			   uint64_t ext_off, uint64_t len, struct bb_walk *w);

static int
bb_walk(struct bdev_brick *bb, struct nvl_bdev_io *io, bb_piece_fn fn)
{
	struct bb_walk w = { .off = io->offset, .left = io->length };

	while (w.left > 0) {
		uint64_t idx = w.off / BRICK_BLOCK_SIZE, eo = w.off % BRICK_BLOCK_SIZE;
		uint64_t len = NVL_MIN(w.left, BRICK_BLOCK_SIZE - eo);
		int rc = fn(bb, io, idx, eo, len, &w);

		if (rc < 0)
			return rc;
		w.off += len;
		w.left -= len;
	}
	return 0;
}

static const uint8_t bb_zero[64 * 1024];

/* Advance w's iovec position by n bytes. */
static void
bb_iov_advance(struct nvl_bdev_io *io, struct bb_walk *w, size_t n)
{
	while (n > 0) {
		struct iovec *v = &io->iov[w->iov_i];
		size_t k = NVL_MIN(n, v->iov_len - w->iov_off);

		n -= k;
		w->iov_off += k;
		if (w->iov_off == v->iov_len) {
			w->iov_i++;
			w->iov_off = 0;
		}
	}
}

/* Zero len bytes of the I/O's buffers (private memory) at w's position. */
static void
bb_iov_zero(struct nvl_bdev_io *io, struct bb_walk *w, uint64_t len)
{
	while (len > 0) {
		struct iovec *v = &io->iov[w->iov_i];
		size_t n = NVL_MIN(len, v->iov_len - w->iov_off);

		memset((uint8_t *)v->iov_base + w->iov_off, 0, n);
		len -= n;
		w->iov_off += n;
		if (w->iov_off == v->iov_len) {
			w->iov_i++;
			w->iov_off = 0;
		}
	}
}

/*
 * Block memory is never loaded from or stored to by the daemon's CPU here.
 * A local client with a read-write handle holds a writable fd of the block's
 * file and may ftruncate it; a load or store on the daemon's mapping of a
 * truncated page raises SIGBUS and would kill the daemon. So the kernel does
 * the copies: process_vm_readv/writev on our own pid (always permitted for the
 * caller itself) copy between the I/O's buffers and the block mapping, and a
 * page that cannot be faulted in ends the copy with a short count or EFAULT,
 * never a signal. (pread/pwrite on the block's fd would not do: hugetlbfs has
 * no write(), and a pwrite past a truncation silently grows the file again.)
 */
#define BB_IOV_BATCH 64

static ssize_t
bb_vm_copy(const struct iovec *local, int nlocal, uint8_t *mem, size_t len, bool to_mem)
{
	struct iovec remote = { .iov_base = mem, .iov_len = len };
	ssize_t n;

	do {
		n = to_mem ? process_vm_writev(getpid(), local, (unsigned long)nlocal, &remote, 1, 0)
			   : process_vm_readv(getpid(), local, (unsigned long)nlocal, &remote, 1, 0);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Copy len bytes between the I/O's buffers (at w's position) and block memory
 * at mem. \return 0, -EIO (the block's memory is gone: its file was truncated),
 * -errno from process_vm_readv/writev. */
static int
bb_mem_copy(struct nvl_bdev_io *io, struct bb_walk *w, uint8_t *mem, uint64_t len, bool to_mem)
{
	while (len > 0) {
		struct iovec local[BB_IOV_BATCH];
		size_t want = 0, off = w->iov_off;
		int n = 0;
		ssize_t got;

		for (int i = w->iov_i; i < io->iovcnt && n < BB_IOV_BATCH && want < len; i++) {
			size_t k = NVL_MIN(len - want, io->iov[i].iov_len - off);

			if (k > 0) {
				local[n].iov_base = (uint8_t *)io->iov[i].iov_base + off;
				local[n].iov_len = k;
				n++;
				want += k;
			}
			off = 0;
		}
		if (want == 0)
			return -EINVAL; /* iovec shorter than the I/O: the bdev layer checks that */
		got = bb_vm_copy(local, n, mem, want, to_mem);
		if (got < 0)
			return got == -EFAULT ? -EIO : (int)got;
		bb_iov_advance(io, w, (size_t)got);
		if ((size_t)got < want)
			return -EIO;
		mem += want;
		len -= want;
	}
	return 0;
}

/* Zero len bytes of block memory, with the same kernel copy. */
static int
bb_mem_zero(uint8_t *mem, uint64_t len)
{
	struct iovec local[BRICK_BLOCK_SIZE / sizeof(bb_zero)] = { 0 };
	int n = 0;
	ssize_t got;

	for (uint64_t d = 0; d < len; d += sizeof(bb_zero)) {
		local[n].iov_base = (void *)bb_zero;
		local[n].iov_len = NVL_MIN(sizeof(bb_zero), len - d);
		n++;
	}
	got = bb_vm_copy(local, n, mem, len, true);
	if (got < 0)
		return got == -EFAULT ? -EIO : (int)got;
	return (uint64_t)got < len ? -EIO : 0;
}

static void
bb_lru_touch(struct bdev_brick *bb, struct bb_ext *e)
{
	TAILQ_REMOVE(&bb->lru, e, lru);
	TAILQ_INSERT_TAIL(&bb->lru, e, lru);
}

/* ---- local mode (reactor 0) -------------------------------------------- */

static void
bb_local_unmap_lru(struct bdev_brick *bb)
{
	struct bb_ext *e = TAILQ_FIRST(&bb->lru);
	struct brick_handle *h;

	if (e == NULL)
		return;
	h = brick_key_lookup(bb->b, e->key);
	if (h && h->sess == &bb->sess)
		brick_handle_revoke(bb->b, h);
	TAILQ_REMOVE(&bb->lru, e, lru);
	e->key = 0;
	bb->nmapped--;
}

/* The block of extent idx, mapped by us; NULL (rc 0) if unallocated and !write. */
static int
bb_local_ext(struct bdev_brick *bb, uint64_t idx, bool write, struct brick_block **out)
{
	uint64_t addr = bb->base + idx * BRICK_BLOCK_SIZE;
	struct bb_ext *e = &bb->ext[idx];
	struct brick_handle *h = NULL;
	int rc;

	*out = NULL;
	if (e->key) {
		h = brick_key_lookup(bb->b, e->key);
		if (h && h->sess == &bb->sess) {
			bb_lru_touch(bb, e);
			*out = h->blk;
			return 0;
		}
		/* revoked under us (someone freed the block) */
		TAILQ_REMOVE(&bb->lru, e, lru);
		e->key = 0;
		bb->nmapped--;
	}
	if (brick_htab_get(&bb->b->blocks, addr) == NULL) {
		if (!write)
			return 0;
		rc = brick_alloc(bb->b, addr, NULL, NULL);
		if (rc < 0 && rc != -EEXIST)
			return rc;
	}
	while (bb->nmapped >= bb->max_mapped)
		bb_local_unmap_lru(bb);
	for (;;) {
		rc = brick_map(bb->b, &bb->sess, addr, NVL_BRICK_MAP_RW | NVL_BRICK_MAP_SHARED, &h);
		if (rc != -ENOMEM || bb->nmapped == 0)
			break;
		bb_local_unmap_lru(bb); /* the fast tier is full: give back our own */
	}
	if (rc < 0)
		return rc;
	e->key = h->key;
	TAILQ_INSERT_TAIL(&bb->lru, e, lru);
	bb->nmapped++;
	*out = h->blk;
	return 0;
}

/* A copy into or out of the block failed with -EIO: its file was truncated by a
 * local client. This I/O fails; the file is grown back to 2 MiB (the lost part
 * reads as zeroes) so later I/O to the extent works again. */
static int
bb_local_damaged(struct bdev_brick *bb, struct brick_block *blk, int rc)
{
	int r;

	if (rc != -EIO)
		return rc;
	r = brick_block_restore(bb->b, blk);
	NVL_ERRLOG_RL("%s: block 0x%" PRIx64 " of brick %s lost its memory (its file was "
		      "truncated through a local client's read-write fd): I/O failed, %s",
		      bb->bdev.name, blk->addr, bb->b->name,
		      r == 1 ? "file grown back to 2 MiB" : r == 0 ? "file size intact"
							     : strerror(-r));
	return rc;
}

static int
bb_local_piece(struct bdev_brick *bb, struct nvl_bdev_io *io, uint64_t idx, uint64_t eo,
	       uint64_t len, struct bb_walk *w)
{
	bool write = io->type == NVL_BDEV_IO_WRITE;
	struct brick_block *blk;
	int rc;

	switch (io->type) {
	case NVL_BDEV_IO_READ:
	case NVL_BDEV_IO_WRITE:
		rc = bb_local_ext(bb, idx, write, &blk);
		if (rc < 0)
			return rc;
		if (blk == NULL) {
			bb_iov_zero(io, w, len);
			return 0;
		}
		rc = bb_mem_copy(io, w, blk->mem->va + eo, len, write);
		return bb_local_damaged(bb, blk, rc);
	case NVL_BDEV_IO_UNMAP:
		if (eo == 0 && len == BRICK_BLOCK_SIZE) {
			uint64_t addr = bb->base + idx * BRICK_BLOCK_SIZE;
			struct bb_ext *e = &bb->ext[idx];

			if (e->key) {
				TAILQ_REMOVE(&bb->lru, e, lru);
				e->key = 0;
				bb->nmapped--;
			}
			rc = brick_free(bb->b, addr); /* revokes our handle too */
			return rc == -ENOENT ? 0 : rc;
		}
		/* a partial extent is zeroed */
		/* fall through */
	case NVL_BDEV_IO_WRITE_ZEROES:
		rc = bb_local_ext(bb, idx, false, &blk);
		if (rc < 0 || blk == NULL)
			return rc;
		return bb_local_damaged(bb, blk, bb_mem_zero(blk->mem->va + eo, len));
	default:
		return -ENOTSUP;
	}
}

static void
bb_local_flush_done(void *arg, int rc)
{
	bb_complete(arg, rc);
}

static void
bb_local_run(void *arg)
{
	struct nvl_bdev_io *io = arg;
	struct bdev_brick *bb = to_bb(io->bdev);
	int rc;

	if (bb->b->deleted) {
		bb_complete(io, -ENODEV);
		return;
	}
	if (io->type == NVL_BDEV_IO_FLUSH) {
		brick_flush_all(bb->b, bb_local_flush_done, io);
		return;
	}
	rc = bb_walk(bb, io, bb_local_piece);
	if (rc == 0 && io->type == NVL_BDEV_IO_WRITE && (io->flags & NVL_BDEV_IO_FUA)) {
		brick_flush_all(bb->b, bb_local_flush_done, io);
		return;
	}
	bb_complete(io, rc);
}

/* ---- remote mode (worker thread) --------------------------------------- */

static void
bb_remote_drop(struct bdev_brick *bb, struct bb_ext *e)
{
	TAILQ_REMOVE(&bb->lru, e, lru);
	e->key = 0;
	e->ptr = NULL;
	bb->nmapped--;
}

/* Give our handle (and the library's mapping) of an extent back. */
static void
bb_remote_unmap(struct bdev_brick *bb, struct bb_ext *e)
{
	nvl_brick_unmap(bb->conn, bb->base + (uint64_t)(e - bb->ext) * BRICK_BLOCK_SIZE);
	bb_remote_drop(bb, e);
}

static void
bb_remote_unmap_lru(struct bdev_brick *bb)
{
	struct bb_ext *e = TAILQ_FIRST(&bb->lru);

	if (e != NULL)
		bb_remote_unmap(bb, e);
}

static int
bb_remote_ext(struct bdev_brick *bb, uint64_t idx, bool write, struct bb_ext **out)
{
	uint64_t addr = bb->base + idx * BRICK_BLOCK_SIZE;
	struct bb_ext *e = &bb->ext[idx];
	struct nvl_brick_handle h;
	int rc, tries = 0;

	*out = NULL;
	if (e->key) {
		bb_lru_touch(bb, e);
		*out = e;
		return 0;
	}
again:
	if (!e->alloc) {
		if (!write)
			return 0;
		rc = nvl_brick_alloc(bb->conn, addr);
		if (rc < 0 && rc != -EEXIST)
			return rc;
		e->alloc = true;
	}
	while (bb->nmapped >= bb->max_mapped)
		bb_remote_unmap_lru(bb);
	for (;;) {
		rc = nvl_brick_map(bb->conn, addr, NVL_BRICK_RW | NVL_BRICK_SHARED, &h);
		if (rc != -ENOMEM || bb->nmapped == 0)
			break;
		bb_remote_unmap_lru(bb);
	}
	if (rc == -ENOENT && tries++ == 0) {
		e->alloc = false; /* freed by someone else */
		goto again;
	}
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	e->key = h.key;
	e->ptr = h.ptr;
	TAILQ_INSERT_TAIL(&bb->lru, e, lru);
	bb->nmapped++;
	*out = e;
	return 0;
}

/* Transfer one extent piece, segment by segment of the iovec. */
static int
bb_remote_xfer(struct bdev_brick *bb, struct nvl_bdev_io *io, struct bb_ext *e, uint64_t addr,
	       uint64_t len, struct bb_walk *w, bool write)
{
	uint64_t done = 0;

	if (e->ptr)
		return bb_mem_copy(io, w, (uint8_t *)e->ptr + (addr % BRICK_BLOCK_SIZE), len, write);
	while (done < len) {
		struct iovec *v = &io->iov[w->iov_i];
		size_t n = NVL_MIN(len - done, v->iov_len - w->iov_off);
		uint8_t *p = (uint8_t *)v->iov_base + w->iov_off;
		int rc = write ? nvl_brick_write(bb->conn, e->key, addr + done, p, n)
			       : nvl_brick_read(bb->conn, e->key, addr + done, p, n);

		if (rc < 0)
			return rc;
		done += n;
		w->iov_off += n;
		if (w->iov_off == v->iov_len) {
			w->iov_i++;
			w->iov_off = 0;
		}
	}
	return 0;
}

static int
bb_remote_piece(struct bdev_brick *bb, struct nvl_bdev_io *io, uint64_t idx, uint64_t eo,
		uint64_t len, struct bb_walk *w)
{
	uint64_t addr = bb->base + idx * BRICK_BLOCK_SIZE + eo;
	bool write = io->type == NVL_BDEV_IO_WRITE;
	struct bb_walk save = *w;
	struct bb_ext *e;
	int rc;

	switch (io->type) {
	case NVL_BDEV_IO_READ:
	case NVL_BDEV_IO_WRITE:
		for (int tries = 0; tries < 2; tries++) {
			rc = bb_remote_ext(bb, idx, write, &e);
			if (rc < 0)
				return rc;
			if (e == NULL) {
				bb_iov_zero(io, w, len);
				return 0;
			}
			*w = save;
			rc = bb_remote_xfer(bb, io, e, addr, len, w, write);
			if (rc == -EIO && e->ptr) {
				/* our mapping lost its memory: the block's file was
				 * truncated (freed by another client, or cut by a local
				 * client holding a read-write fd). This I/O fails; the
				 * next one maps the extent again. */
				bb_remote_unmap(bb, e);
				return rc;
			}
			if (rc != -EACCES)
				break;
			bb_remote_drop(bb, e); /* revoked under us: map again */
		}
		if (rc == 0 && write && (io->flags & NVL_BDEV_IO_FUA))
			rc = nvl_brick_flush(bb->conn, e->key, addr, len);
		return rc;
	case NVL_BDEV_IO_UNMAP:
		if (eo == 0 && len == BRICK_BLOCK_SIZE) {
			e = &bb->ext[idx];
			if (e->key)
				bb_remote_drop(bb, e); /* our mapping goes with the free */
			e->alloc = false;
			rc = nvl_brick_free(bb->conn, addr);
			return rc == -ENOENT ? 0 : rc;
		}
		/* fall through */
	case NVL_BDEV_IO_WRITE_ZEROES:
		rc = bb_remote_ext(bb, idx, false, &e);
		if (rc < 0 || e == NULL)
			return rc;
		if (e->ptr) {
			rc = bb_mem_zero((uint8_t *)e->ptr + eo, len);
			if (rc == -EIO)
				bb_remote_unmap(bb, e); /* lost its memory, as above */
			return rc;
		}
		for (uint64_t d = 0; d < len && rc == 0; d += sizeof(bb_zero))
			rc = nvl_brick_write(bb->conn, e->key, addr + d, bb_zero,
					     NVL_MIN(sizeof(bb_zero), len - d));
		return rc;
	default:
		return -ENOTSUP;
	}
}

static int
bb_remote_init(struct bdev_brick *bb)
{
	struct nvl_brick_extent *ext;
	size_t n;
	int rc;

	rc = nvl_brick_connect(bb->spec, &bb->conn);
	if (rc < 0)
		return rc;
	rc = nvl_brick_list(bb->conn, &ext, &n);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		for (uint64_t a = ext[i].addr; a - ext[i].addr < ext[i].length;
		     a += BRICK_BLOCK_SIZE) {
			if (a >= bb->base && a - bb->base < bb->size)
				bb->ext[(a - bb->base) / BRICK_BLOCK_SIZE].alloc = true;
		}
	}
	free(ext);
	return 0;
}

static void bb_remote_created(void *arg);

static void *
bb_worker(void *arg)
{
	struct bdev_brick *bb = arg;

	bb->init_rc = bb_remote_init(bb);
	nvl_reactor_msg(nvl_reactor_get(0), bb_remote_created, bb);
	if (bb->init_rc < 0)
		return NULL;
	pthread_mutex_lock(&bb->mu);
	for (;;) {
		struct nvl_bdev_io *io;
		int rc;

		while (bb->qhead == NULL && !bb->stop)
			pthread_cond_wait(&bb->cv, &bb->mu);
		if (bb->qhead == NULL && bb->stop)
			break;
		io = bb->qhead;
		bb->qhead = (struct nvl_bdev_io *)(uintptr_t)io->priv[1];
		if (bb->qhead == NULL)
			bb->qtail = NULL;
		pthread_mutex_unlock(&bb->mu);
		if (io->type == NVL_BDEV_IO_FLUSH)
			rc = nvl_brick_flush_all(bb->conn);
		else
			rc = bb_walk(bb, io, bb_remote_piece);
		if (rc < 0)
			NVL_ERRLOG_RL("%s: I/O at %" PRIu64 " (%" PRIu64 " bytes) failed: %s",
				      bb->bdev.name, io->offset, io->length, strerror(-rc));
		bb_complete(io, rc < 0 ? -EIO : 0);
		pthread_mutex_lock(&bb->mu);
	}
	pthread_mutex_unlock(&bb->mu);
	return NULL;
}

/* ---- block status ------------------------------------------------------ */

static void
bb_bstat_complete_msg(void *arg)
{
	struct nvl_bdev_bstat *q = arg;

	nvl_bdev_bstat_complete(q, (int)(int64_t)q->priv[0]);
}

/* Answer on the reactor that asked. */
static void
bb_bstat_done(struct nvl_bdev_bstat *q, int rc)
{
	struct nvl_reactor *self = nvl_reactor_self();

	q->priv[0] = (uint64_t)(int64_t)rc;
	if (self == NULL || nvl_reactor_id(self) == q->reactor) {
		nvl_bdev_bstat_complete(q, rc);
		return;
	}
	if (nvl_reactor_msg(nvl_reactor_get(q->reactor), bb_bstat_complete_msg, q) < 0)
		NVL_ERRLOG("%s: cannot answer a block status on reactor %u", q->bdev->name,
			   q->reactor);
}

/* Reactor 0: which of the range's extents the brick holds. */
static void
bb_bstat_local_run(void *arg)
{
	struct nvl_bdev_bstat *q = arg;
	struct bdev_brick *bb = to_bb(q->bdev);
	uint64_t off = q->offset, end = q->offset + q->length;

	if (bb->b->deleted) {
		bb_bstat_done(q, -ENODEV);
		return;
	}
	while (off < end) {
		uint64_t idx = off / BRICK_BLOCK_SIZE;
		uint64_t pe = NVL_MIN((idx + 1) * BRICK_BLOCK_SIZE, end);
		bool held = brick_htab_get(&bb->b->blocks, bb->base + idx * BRICK_BLOCK_SIZE);

		if (!nvl_bdev_bstat_add(q, pe - off, held ? 0 : NVL_BDEV_EXT_HOLE | NVL_BDEV_EXT_ZERO))
			break;
		off = pe;
	}
	bb_bstat_done(q, 0);
}

static int
bb_block_status(struct nvl_bdev *b, struct nvl_bdev_bstat *q)
{
	struct bdev_brick *bb = to_bb(b);
	struct nvl_reactor *self = nvl_reactor_self();

	if (bb->remote) {
		nvl_bdev_bstat_add(q, q->length, 0); /* not known here: allocated */
		nvl_bdev_bstat_complete(q, 0);
		return 0;
	}
	if (self == NULL || nvl_reactor_id(self) == 0) {
		bb_bstat_local_run(q);
		return 0;
	}
	return nvl_reactor_msg(nvl_reactor_get(0), bb_bstat_local_run, q);
}

/* ---- bdev ops ---------------------------------------------------------- */

static int
bb_submit(struct nvl_bdev *b, struct nvl_bdev_io *io)
{
	struct bdev_brick *bb = to_bb(b);
	struct nvl_reactor *self = nvl_reactor_self();

	io->priv[1] = 0;
	if (bb->remote) {
		pthread_mutex_lock(&bb->mu);
		if (bb->stop) {
			pthread_mutex_unlock(&bb->mu);
			return -ENODEV;
		}
		if (bb->qtail)
			bb->qtail->priv[1] = (uint64_t)(uintptr_t)io;
		else
			bb->qhead = io;
		bb->qtail = io;
		pthread_cond_signal(&bb->cv);
		pthread_mutex_unlock(&bb->mu);
		return 0;
	}
	if (self == NULL || nvl_reactor_id(self) == 0) {
		bb_local_run(io);
		return 0;
	}
	/* the brick belongs to reactor 0 */
	return nvl_reactor_msg(nvl_reactor_get(0), bb_local_run, io);
}

static void
bb_free(struct bdev_brick *bb)
{
	free(bb->ext);
	free(bb->spec);
	free(bb);
}

static void
bb_destroy(struct nvl_bdev *b)
{
	struct bdev_brick *bb = to_bb(b);

	if (bb->remote) {
		pthread_mutex_lock(&bb->mu);
		bb->stop = true;
		pthread_cond_signal(&bb->cv);
		pthread_mutex_unlock(&bb->mu);
		if (bb->th_started)
			pthread_join(bb->th, NULL);
		nvl_brick_disconnect(bb->conn); /* the daemon revokes our handles */
		pthread_mutex_destroy(&bb->mu);
		pthread_cond_destroy(&bb->cv);
	} else {
		brick_session_fini(&bb->sess);
		bb->b->users--;
		brick_put(bb->b);
	}
	bb_free(bb);
}

static void
bb_dump_info(struct nvl_bdev *b, json_t *ds)
{
	struct bdev_brick *bb = to_bb(b);
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I}", "brick", bb->spec, "mode",
			      bb->remote ? "remote" : "local", "base_addr", (json_int_t)bb->base,
			      "size_mib", (json_int_t)(bb->size / NVL_MIB), "extents",
			      (json_int_t)bb->nexts);

	if (!bb->remote) {
		uint64_t n = 0;

		for (uint64_t i = 0; i < bb->nexts; i++)
			n += brick_htab_get(&bb->b->blocks, bb->base + i * BRICK_BLOCK_SIZE) != NULL;
		json_object_set_new(o, "allocated_extents", json_integer((json_int_t)n));
		json_object_set_new(o, "mapped_extents", json_integer(bb->nmapped));
	}
	json_object_set_new(ds, "brick", o);
}

static json_t *
bb_write_config(struct nvl_bdev *b)
{
	struct bdev_brick *bb = to_bb(b);
	char uuid[40];

	nvl_uuid_fmt(b->uuid, uuid);
	return json_pack("{s:s, s:{s:s, s:s, s:I, s:I, s:i, s:s}}", "method", "bdev_brick_create",
			 "params", "name", b->name, "brick", bb->spec, "base_addr",
			 (json_int_t)bb->base, "size_mib", (json_int_t)(bb->size / NVL_MIB),
			 "block_size", (int)b->block_size, "uuid", uuid);
}

static const struct nvl_bdev_ops bb_ops = {
	.name = "brick",
	.submit = bb_submit,
	.destroy = bb_destroy,
	.dump_info = bb_dump_info,
	.write_config = bb_write_config,
	.block_status = bb_block_status,
};

/* ---- RPCs -------------------------------------------------------------- */

struct rpc_bb_create {
	const char *name;
	const char *brick;
	uint64_t base_addr;
	uint64_t size_mib;
	uint32_t block_size;
	const char *uuid;
};

static const struct nvl_rpc_param bb_create_params[] = {
	NVL_RPC_PARAM(struct rpc_bb_create, name, NVL_RPC_T_STR, true, "bdev name"),
	NVL_RPC_PARAM(struct rpc_bb_create, brick, NVL_RPC_T_STR, true,
		      "a brick of this daemon (its name) or a brick URI "
		      "(brick+tcp://HOST:PORT/NAME, brick+shm:///SOCKET?name=NAME)"),
	NVL_RPC_PARAM(struct rpc_bb_create, base_addr, NVL_RPC_T_U64, true,
		      "logical address of the first extent (2 MiB aligned)"),
	NVL_RPC_PARAM(struct rpc_bb_create, size_mib, NVL_RPC_T_U64, true,
		      "volume size in MiB, a multiple of 2"),
	NVL_RPC_PARAM(struct rpc_bb_create, block_size, NVL_RPC_T_U32, false,
		      "block size: 512 or 4096 (default)"),
	NVL_RPC_PARAM(struct rpc_bb_create, uuid, NVL_RPC_T_STR, false, "UUID (default: random)"),
};

static void
bb_register_and_answer(struct bdev_brick *bb, struct nvl_rpc_request *req)
{
	int rc = nvl_bdev_register(&bb->bdev);

	if (rc < 0) {
		if (rc == -EEXIST)
			nvl_rpc_error(req, -EEXIST, "bdev '%s' already exists", bb->bdev.name);
		else
			nvl_rpc_error_errno(req, rc, "cannot register the bdev");
		bb_destroy(&bb->bdev);
		return;
	}
	NVL_NOTICELOG("bdev %s: %" PRIu64 " MiB on brick %s from 0x%" PRIx64 " (%s)",
		      bb->bdev.name, (uint64_t)(bb->size / NVL_MIB), bb->spec, bb->base,
		      bb->remote ? "remote" : "local");
	nvl_rpc_result(req, json_string(bb->bdev.name));
}

static void
bb_remote_created(void *arg)
{
	struct bdev_brick *bb = arg;
	struct nvl_rpc_request *req = bb->req;

	bb->req = NULL;
	if (bb->init_rc < 0) {
		nvl_rpc_error(req, bb->init_rc, "cannot reach brick %s: %s", bb->spec,
			      strerror(-bb->init_rc));
		bb_destroy(&bb->bdev);
		return;
	}
	bb_register_and_answer(bb, req);
}

static void
rpc_bdev_brick_create(struct nvl_rpc_request *req, struct rpc_bb_create *a)
{
	uint32_t bs = a->block_size ? a->block_size : 4096;
	struct bdev_brick *bb;
	uint8_t uuid[16];
	uint64_t end;

	if (strlen(a->name) == 0 || strlen(a->name) >= NVL_BDEV_NAME_MAX) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "bad bdev name");
		return;
	}
	if (bs != 512 && bs != 4096) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "block_size must be 512 or 4096");
		return;
	}
	if (a->base_addr & (BRICK_BLOCK_SIZE - 1)) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "base_addr must be 2 MiB aligned");
		return;
	}
	if (a->size_mib == 0 || a->size_mib % 2 || a->size_mib > (BRICK_MAX_BLOCKS * 2) ||
	    __builtin_add_overflow(a->base_addr, a->size_mib * NVL_MIB - 1, &end)) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "size_mib must be a non-zero multiple of 2 that fits after base_addr");
		return;
	}
	if (a->uuid && nvl_uuid_parse(a->uuid, uuid) < 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "invalid uuid '%s'", a->uuid);
		return;
	}
	if (nvl_bdev_get_by_name(a->name)) {
		nvl_rpc_error(req, -EEXIST, "bdev '%s' already exists", a->name);
		return;
	}
	bb = calloc(1, sizeof(*bb));
	if (bb == NULL) {
		nvl_rpc_error_errno(req, -ENOMEM, "bdev_brick_create");
		return;
	}
	bb->spec = strdup(a->brick);
	bb->base = a->base_addr;
	bb->size = a->size_mib * NVL_MIB;
	bb->nexts = bb->size / BRICK_BLOCK_SIZE;
	bb->ext = calloc(bb->nexts, sizeof(*bb->ext));
	if (bb->spec == NULL || bb->ext == NULL) {
		bb_free(bb);
		nvl_rpc_error_errno(req, -ENOMEM, "bdev_brick_create");
		return;
	}
	TAILQ_INIT(&bb->lru);
	nvl_strlcpy(bb->bdev.name, a->name, sizeof(bb->bdev.name));
	bb->bdev.product_name = "Brick volume";
	bb->bdev.ops = &bb_ops;
	bb->bdev.block_size = bs;
	bb->bdev.num_blocks = bb->size / bs;
	bb->bdev.write_cache = true;
	bb->bdev.io_types = (1u << NVL_BDEV_IO_READ) | (1u << NVL_BDEV_IO_WRITE) |
			    (1u << NVL_BDEV_IO_FLUSH) | (1u << NVL_BDEV_IO_WRITE_ZEROES) |
			    (1u << NVL_BDEV_IO_UNMAP);
	if (a->uuid)
		memcpy(bb->bdev.uuid, uuid, 16);
	bb->max_mapped = BB_MAX_MAPPED;
	if (strstr(a->brick, "://") == NULL) {
		struct brick *b = brick_find(a->brick);

		if (b == NULL) {
			bb_free(bb);
			nvl_rpc_error(req, -ENOENT, "no brick '%s' in this daemon (or give a URI)",
				      a->brick);
			return;
		}
		if (bb->nexts > b->capacity)
			NVL_WARNLOG("bdev %s: %" PRIu64 " extents on a brick of %" PRIu64
				    " blocks: writes will fail with ENOSPC once it is full",
				    a->name, bb->nexts, b->capacity);
		bb->b = b;
		brick_get(b);
		b->users++;
		brick_session_init(&bb->sess, b);
		bb->max_mapped = (unsigned)NVL_MAX(1, NVL_MIN(BB_MAX_MAPPED, b->fast_budget / 2));
		bb_register_and_answer(bb, req);
		return;
	}
	{
		struct nvl_brick_uri u;

		if (nvl_brick_uri_parse(a->brick, &u) < 0) {
			bb_free(bb);
			nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "bad brick URI '%s'", a->brick);
			return;
		}
	}
	bb->remote = true;
	bb->req = req;
	pthread_mutex_init(&bb->mu, NULL);
	pthread_cond_init(&bb->cv, NULL);
	/* connect from the worker: the URI may point at this very daemon */
	if (pthread_create(&bb->th, NULL, bb_worker, bb) != 0) {
		pthread_mutex_destroy(&bb->mu);
		pthread_cond_destroy(&bb->cv);
		bb_free(bb);
		nvl_rpc_error_errno(req, -EAGAIN, "cannot start the brick bdev thread");
		return;
	}
	bb->th_started = true;
}
NVL_RPC_REGISTER("bdev_brick_create", rpc_bdev_brick_create, struct rpc_bb_create,
		 bb_create_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Create a thin-provisioned bdev whose 2 MiB extents are allocated in a memory "
		 "brick on first write (local brick name or brick URI). Returns its name.")

struct rpc_bb_delete {
	const char *name;
};

static const struct nvl_rpc_param bb_delete_params[] = {
	NVL_RPC_PARAM(struct rpc_bb_delete, name, NVL_RPC_T_STR, true, "bdev name"),
};

static void
rpc_bdev_brick_delete(struct nvl_rpc_request *req, struct rpc_bb_delete *a)
{
	struct nvl_bdev *b = nvl_bdev_get_by_name(a->name);
	int rc;

	if (b == NULL || b->ops != &bb_ops) {
		nvl_rpc_error(req, -ENOENT, "no brick bdev '%s'", a->name);
		return;
	}
	rc = nvl_bdev_unregister(b);
	if (rc == -EBUSY) {
		nvl_rpc_error(req, -EBUSY, "bdev '%s' is in use by %s", a->name, b->claimed_by);
		return;
	}
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("bdev_brick_delete", rpc_bdev_brick_delete, struct rpc_bb_delete,
		 bb_delete_params, NVL_RPC_RUNTIME,
		 "Delete a brick bdev (its extents stay allocated in the brick).")
