/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-blk queues (vblk.c describes the request path, what a guest that
 * gets a request wrong receives, and who runs where): parsing chains into
 * iovecs over guest memory, bdev submission (split at the bdev's
 * max_io_bytes), completion and publication in the used ring, the queue's
 * poller and kick handling, and its life cycle: start on its reactor
 * (resubmitting what was in flight when a previous daemon died), drain and
 * stop, call-fd changes. Runs on the queue's reactor; start/stop come from
 * reactor 0 in messages.
 *
 * While the front-end logs dirty pages (live migration) a request marks what
 * it wrote into guest memory when it finishes, before its used element: the
 * data of a READ or GET_ID and the status byte (the ring marks the used ring).
 */
#include "function/vblk_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

NVL_LOG_DECLARE_COMPONENT(vhost);

static void vblk_q_flush(struct vblk_queue *q);

/* ---- helpers ---------------------------------------------------------------- */

/* The one errno -> virtio-blk status conversion. */
static uint8_t
vblk_status_from_errno(int rc)
{
	switch (rc) {
	case 0:
		return NVL_VIRTIO_BLK_S_OK;
	case -ENOTSUP:
		return NVL_VIRTIO_BLK_S_UNSUPP;
	default:
		return NVL_VIRTIO_BLK_S_IOERR;
	}
}

/* Copy len bytes out of guest iovecs (after skipping skip bytes). \return bytes copied. */
static size_t
iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *dst, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l = NVL_MIN(l - skip, len - done);
		memcpy((uint8_t *)dst + done, (uint8_t *)iov[i].iov_base + skip, l);
		done += l;
		skip = 0;
	}
	return done;
}

static size_t
buf_to_iov(const struct iovec *iov, unsigned n, const void *src, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = NVL_MIN(iov[i].iov_len, len - done);

		memcpy(iov[i].iov_base, (const uint8_t *)src + done, l);
		done += l;
	}
	return done;
}

/* Drop the first skip bytes of an iovec array in place. \return new start index. */
static unsigned
iov_advance(struct iovec *iov, unsigned n, size_t skip)
{
	unsigned i = 0;

	while (i < n && skip >= iov[i].iov_len) {
		skip -= iov[i].iov_len;
		i++;
	}
	if (i < n && skip) {
		iov[i].iov_base = (uint8_t *)iov[i].iov_base + skip;
		iov[i].iov_len -= skip;
	}
	return i;
}

/* ---- completion ------------------------------------------------------------- */

static void
vblk_q_notify(struct vblk_queue *q)
{
	uint64_t one = 1;

	if (q->callfd < 0)
		return;
	if (write(q->callfd, &one, sizeof(one)) == sizeof(one))
		STAT_INC(q->st->interrupts);
}

static void
vblk_q_put_used(struct vblk_queue *q, struct vblk_req *r)
{
	vring_used_add(&q->vr, r->head, r->used_len);
	r->busy = false;
	r->done = false;
	q->inflight--;
	if (nvl_unlikely(q->c->first_io_ns == 0))
		__atomic_store_n(&q->c->first_io_ns, nvl_now_ns(), __ATOMIC_RELAXED);
}

static void
vblk_q_drained(struct vblk_queue *q);

/* Mark the guest memory r wrote (the data is in place, the status byte just stored). */
static void
vblk_req_log(struct vblk_req *r)
{
	struct vring *vr = &r->q->vr;

	for (unsigned i = r->wiov; i < (unsigned)r->wiov + r->nwiov; i++)
		vring_log_write(vr, r->iov[i].iov_base, r->iov[i].iov_len);
	if (r->status)
		vring_log_write(vr, r->status, 1);
}

static void
vblk_req_finish(struct vblk_req *r, uint8_t status)
{
	struct vblk_queue *q = r->q;

	if (r->status) {
		NVL_WRITE_ONCE(*r->status, status);
		if (nvl_unlikely(q->vr.log != NULL))
			vblk_req_log(r);
	} else {
		r->used_len = 0;
		STAT_INC(q->st->no_status);
	}
	if (status == NVL_VIRTIO_BLK_S_IOERR)
		STAT_INC(q->st->ioerr);
	else if (status == NVL_VIRTIO_BLK_S_UNSUPP)
		STAT_INC(q->st->unsupp);
	if (q->order) {
		r->done = true;
		while (q->order_len > 0) {
			struct vblk_req *o = &q->reqs[q->order[q->order_head]];

			if (!o->done)
				break;
			q->order_head = (uint16_t)((q->order_head + 1) & q->vr.mask);
			q->order_len--;
			vblk_q_put_used(q, o);
		}
	} else {
		vblk_q_put_used(q, r);
	}
	if (!q->in_poll)
		vblk_q_flush(q);
	if (q->state == VQ_DRAINING && q->inflight == 0)
		vblk_q_drained(q);
}

static void
vblk_log_io_error(const struct vblk_req *r, const struct nvl_bdev_io *io, int status)
{
	NVL_ERRLOG_RL("vblk %s: queue %u: %s at offset %" PRIu64 " length %" PRIu64 " failed: %s",
		      r->q->c->name, r->q->idx, io->type == NVL_BDEV_IO_READ ? "read" : "write",
		      io->offset, io->length, strerror(-status));
}

/* The bdev side of r is over (status 0 or -errno). */
static void
vblk_req_io_done(struct vblk_req *r, int status)
{
	if (status < 0 && r->type == NVL_VIRTIO_BLK_T_IN)
		r->used_len = 1;
	vblk_req_finish(r, vblk_status_from_errno(status < 0 ? -EIO : 0));
}

static void
vblk_bdev_done(struct nvl_bdev_io *io, int status)
{
	struct vblk_req *r = container_of(io, struct vblk_req, io);

	if (status < 0)
		vblk_log_io_error(r, io, status);
	vblk_req_io_done(r, status);
}

static void
vblk_split_finish(struct vblk_req *r)
{
	int status = r->split->status;

	free(r->split);
	r->split = NULL;
	vblk_req_io_done(r, status);
}

static void
vblk_split_done(struct nvl_bdev_io *io, int status)
{
	struct vblk_part *p = container_of(io, struct vblk_part, io);
	struct vblk_req *r = p->r;
	struct vblk_split *s = r->split;

	if (status < 0) {
		vblk_log_io_error(r, io, status);
		if (s->status == 0)
			s->status = status;
	}
	if (--s->pending == 0)
		vblk_split_finish(r);
}

/* ---- request parsing -------------------------------------------------------- */

/* Point out[] at bytes [off, off + len) of iov[0..n). \return iovecs used. */
static unsigned
iov_slice(const struct iovec *iov, unsigned n, uint64_t off, uint64_t len, struct iovec *out)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len > 0; i++) {
		uint64_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l = NVL_MIN(l - off, len);
		out[k].iov_base = (uint8_t *)iov[i].iov_base + off;
		out[k].iov_len = (size_t)l;
		k++;
		len -= l;
		off = 0;
	}
	return k;
}

/* Submit a read or write of length bytes as parts of at most chunk bytes.
 * \return 0 (r completes when its last part does) or -errno (nothing submitted). */
static int
vblk_submit_split(struct vblk_req *r, uint8_t type, uint64_t offset, uint64_t length,
		  struct iovec *iov, unsigned niov, uint64_t chunk)
{
	struct vblk_queue *q = r->q;
	unsigned nparts = (unsigned)((length + chunk - 1) / chunk), k, used = 0;
	struct vblk_split *s;
	int rc = 0;

	/* each part adds at most one iovec: the one it shares with the previous part */
	s = calloc(1, sizeof(*s) + nparts * sizeof(s->parts[0]) +
			      (niov + nparts) * sizeof(struct iovec));
	if (s == NULL)
		return -ENOMEM;
	s->iov = (struct iovec *)&s->parts[nparts];
	s->pending = 1;
	r->split = s;
	for (k = 0; k < nparts; k++) {
		struct vblk_part *p = &s->parts[k];
		uint64_t off = (uint64_t)k * chunk, len = NVL_MIN(chunk, length - off);

		p->r = r;
		p->io.type = type;
		p->io.offset = offset + off;
		p->io.length = len;
		p->io.iov = &s->iov[used];
		p->io.iovcnt = (int)iov_slice(iov, niov, off, len, &s->iov[used]);
		p->io.cb = vblk_split_done;
		p->io.cb_arg = r;
		used += (unsigned)p->io.iovcnt;
		s->pending++;
		rc = nvl_bdev_submit(q->c->desc, &p->io);
		if (rc < 0) {
			s->pending--;
			NVL_ERRLOG_RL("vblk %s: queue %u: head %u: bdev refused part %u/%u (offset "
				      "%" PRIu64 " length %" PRIu64 "): %s", q->c->name, q->idx,
				      r->head, k + 1, nparts, p->io.offset, len, strerror(-rc));
			if (s->status == 0)
				s->status = rc;
			break;
		}
	}
	if (k == 0) {
		r->split = NULL;
		free(s);
		return rc;
	}
	/* parts already submitted finish the request; the ones not submitted failed it */
	if (--s->pending == 0)
		vblk_split_finish(r);
	return 0;
}

static int
vblk_submit(struct vblk_req *r, uint8_t type, uint32_t flags, uint64_t offset, uint64_t length,
	    struct iovec *iov, unsigned niov)
{
	struct vblk_queue *q = r->q;
	uint64_t max = q->c->bdev->max_io_bytes;
	int rc;

	if (max && length > max && (type == NVL_BDEV_IO_READ || type == NVL_BDEV_IO_WRITE)) {
		max &= ~(uint64_t)(q->c->bdev->block_size - 1);
		if (max == 0)
			return -EINVAL;
		return vblk_submit_split(r, type, offset, length, iov, niov, max);
	}
	memset(&r->io, 0, sizeof(r->io));
	r->io.type = type;
	r->io.flags = flags;
	r->io.offset = offset;
	r->io.length = length;
	r->io.iov = iov;
	r->io.iovcnt = (int)niov;
	r->io.cb = vblk_bdev_done;
	r->io.cb_arg = r;
	rc = nvl_bdev_submit(q->c->desc, &r->io);
	if (rc < 0)
		NVL_ERRLOG_RL("vblk %s: queue %u: head %u: bdev refused type %u offset %" PRIu64
			      " length %" PRIu64 ": %s", q->c->name, q->idx, r->head, type,
			      offset, length, strerror(-rc));
	return rc;
}

/* Byte offset of a sector range, checked for overflow and block alignment. */
static int
vblk_range(const struct nvl_vblk *c, uint64_t sector, uint64_t bytes, uint64_t *off)
{
	uint64_t end, cap = c->bdev->num_blocks * c->bdev->block_size;

	if (sector > UINT64_MAX / NVL_VIRTIO_BLK_SECTOR_SIZE)
		return -EINVAL;
	*off = sector * NVL_VIRTIO_BLK_SECTOR_SIZE;
	if (__builtin_add_overflow(*off, bytes, &end) || end > cap)
		return -EINVAL;
	if ((*off | bytes) & (c->bdev->block_size - 1))
		return -EINVAL;
	return 0;
}

static int
vblk_dwz(struct vblk_req *r, uint32_t type, struct iovec *data, unsigned ndata, uint64_t dlen)
{
	struct nvl_vblk *c = r->q->c;
	struct nvl_virtio_blk_discard_write_zeroes seg;
	uint64_t feat = vblk_features(c), off, len;
	bool discard = type == NVL_VIRTIO_BLK_T_DISCARD;
	int rc;

	if (!(feat & (1ULL << (discard ? NVL_VIRTIO_BLK_F_DISCARD :
					 NVL_VIRTIO_BLK_F_WRITE_ZEROES))))
		return -ENOTSUP;
	if (dlen == 0 || dlen % sizeof(seg))
		return -EINVAL;
	if (dlen > sizeof(seg))
		return -ENOTSUP;   /* max_discard_seg / max_write_zeroes_seg is 1 */
	iov_to_buf(data, ndata, 0, &seg, sizeof(seg));
	/* 5.2.6.2: unknown flags, or unmap on a discard, are UNSUPP */
	if (seg.flags & ~NVL_VIRTIO_BLK_WZ_FLAG_UNMAP || (discard && seg.flags))
		return -ENOTSUP;
	if (seg.num_sectors == 0 || seg.num_sectors > VBLK_MAX_DWZ_SECTORS)
		return -EINVAL;
	len = (uint64_t)seg.num_sectors * NVL_VIRTIO_BLK_SECTOR_SIZE;
	rc = vblk_range(c, seg.sector, len, &off);
	if (rc < 0)
		return rc;
	if (discard) {
		STAT_INC(r->q->st->discards);
		return vblk_submit(r, NVL_BDEV_IO_UNMAP, 0, off, len, NULL, 0);
	}
	STAT_INC(r->q->st->write_zeroes);
	return vblk_submit(r, NVL_BDEV_IO_WRITE_ZEROES,
			   (seg.flags & NVL_VIRTIO_BLK_WZ_FLAG_UNMAP) ? 0 : NVL_BDEV_IO_NO_HOLE, off,
			   len, NULL, 0);
}

/* Parse and submit request r (its chain starts at r->head). On a negative
 * return the caller completes r with the status that errno maps to. */
static int
vblk_parse(struct vblk_req *r)
{
	struct vblk_queue *q = r->q;
	struct nvl_vblk *c = q->c;
	struct vring_chain ch = { .iov = r->iov, .max_iov = VBLK_MAX_IOV };
	struct nvl_virtio_blk_outhdr hdr;
	struct iovec *last;
	unsigned rstart, nrd, nwr;
	uint64_t off, dlen;
	int rc;

	r->status = NULL;
	r->used_len = 0;
	r->type = 0xff;
	r->wiov = 0;
	r->nwiov = 0;
	rc = vring_walk(&q->vr, r->head, &ch);
	if (rc < 0) {
		NVL_ERRLOG_RL("vblk %s: queue %u: head %u: bad descriptor chain: %s", c->name,
			      q->idx, r->head, strerror(-rc));
		return -EIO;   /* no trustworthy status byte: returned with length 0 */
	}
	/* the status byte is the last device-writable byte */
	if (ch.wlen == 0)
		return -EIO;
	last = &r->iov[ch.niov - 1];
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	r->used_len = 1;
	if (--last->iov_len == 0)
		ch.niov--;
	ch.wlen--;
	if (ch.rlen < sizeof(hdr)) {
		NVL_ERRLOG_RL("vblk %s: queue %u: head %u: %" PRIu64 "-byte request header",
			      c->name, q->idx, r->head, ch.rlen);
		return -EINVAL;
	}
	iov_to_buf(r->iov, ch.nread, 0, &hdr, sizeof(hdr));
	r->type = (uint8_t)NVL_MIN(hdr.type, 0xffu);
	rstart = iov_advance(r->iov, ch.nread, sizeof(hdr));
	nrd = ch.nread - rstart;
	nwr = ch.niov - ch.nread;
	dlen = ch.rlen - sizeof(hdr);
	STAT_INC(q->st->requests);

	switch (hdr.type) {
	case NVL_VIRTIO_BLK_T_IN:
		if (dlen != 0 || ch.wlen == 0)
			return -EINVAL;   /* data must be device-writable */
		rc = vblk_range(c, hdr.sector, ch.wlen, &off);
		if (rc < 0)
			return rc;
		STAT_INC(q->st->reads);
		STAT_ADD(q->st->bytes_read, ch.wlen);
		r->wiov = (uint16_t)ch.nread;
		r->nwiov = (uint16_t)nwr;
		r->used_len = (uint32_t)NVL_MIN(ch.wlen + 1, UINT32_MAX);
		return vblk_submit(r, NVL_BDEV_IO_READ, 0, off, ch.wlen, &r->iov[ch.nread], nwr);
	case NVL_VIRTIO_BLK_T_OUT:
		if (ch.wlen != 0 || dlen == 0)
			return -EINVAL;   /* data must be device-readable */
		if (c->read_only)
			return -EROFS;
		rc = vblk_range(c, hdr.sector, dlen, &off);
		if (rc < 0)
			return rc;
		STAT_INC(q->st->writes);
		STAT_ADD(q->st->bytes_written, dlen);
		return vblk_submit(r, NVL_BDEV_IO_WRITE, 0, off, dlen, &r->iov[rstart], nrd);
	case NVL_VIRTIO_BLK_T_FLUSH:
		STAT_INC(q->st->flushes);
		if (!(c->bdev->io_types & (1u << NVL_BDEV_IO_FLUSH)))
			return 1;   /* nothing volatile to flush: done */
		return vblk_submit(r, NVL_BDEV_IO_FLUSH, 0, 0, 0, NULL, 0);
	case NVL_VIRTIO_BLK_T_GET_ID: {
		char id[NVL_VIRTIO_BLK_ID_BYTES];
		size_t n;

		if (ch.wlen == 0)
			return -EINVAL;
		memset(id, 0, sizeof(id));
		memcpy(id, c->name, NVL_MIN(strlen(c->name), sizeof(id)));
		n = buf_to_iov(&r->iov[ch.nread], nwr, id, sizeof(id));
		r->wiov = (uint16_t)ch.nread;
		r->nwiov = (uint16_t)nwr;
		STAT_INC(q->st->get_id);
		r->used_len = (uint32_t)n + 1;
		return 1;
	}
	case NVL_VIRTIO_BLK_T_DISCARD:
	case NVL_VIRTIO_BLK_T_WRITE_ZEROES:
		if (ch.wlen != 0)
			return -EINVAL;
		if (c->read_only)
			return -EROFS;
		return vblk_dwz(r, hdr.type, &r->iov[rstart], nrd, dlen);
	default:
		return -ENOTSUP;
	}
}

/* Serve head (taken from the ring now, or recovered after a restart). */
static void
vblk_q_process(struct vblk_queue *q, uint16_t head)
{
	struct vblk_req *r = &q->reqs[head];
	int rc;

	r->busy = true;
	r->done = false;
	q->inflight++;
	if (q->order) {
		q->order[(q->order_head + q->order_len) & q->vr.mask] = head;
		q->order_len++;
	}
	rc = vblk_parse(r);
	if (rc == 0)
		return;   /* the bdev completes it */
	if (rc > 0) {
		vblk_req_finish(r, NVL_VIRTIO_BLK_S_OK);
		return;
	}
	if (r->type == NVL_VIRTIO_BLK_T_IN)
		r->used_len = 1;   /* nothing but the status was written */
	vblk_req_finish(r, vblk_status_from_errno(rc));
}

static bool
vblk_q_mem_tripped(const struct vblk_queue *q)
{
	return vhost_mem_tripped(q->vr.mem) || q->c->vdev.inflight_tripped;
}

static void
vblk_q_broken(struct vblk_queue *q, const char *what, unsigned v)
{
	if (!q->broken && vblk_q_mem_tripped(q))
		/* the fault guard replaced the mapping with zeroes: whatever the ring
		 * looked like afterwards, this is the cause */
		NVL_ERRLOG("vblk %s: queue %u: guest memory or the inflight region was truncated "
			   "by the front-end: queue stopped until the device is reset",
			   q->c->name, q->idx);
	else if (!q->broken)
		NVL_ERRLOG("vblk %s: queue %u: the guest broke the ring (%s %u): queue stopped "
			   "until the device is reset", q->c->name, q->idx, what, v);
	q->broken = true;
	STAT_INC(q->st->broken);
}

static void
vblk_q_flush(struct vblk_queue *q)
{
	if (vring_used_flush(&q->vr))
		vblk_q_notify(q);
	if (nvl_unlikely(q->vr.logged != q->log_counted)) {
		STAT_ADD(q->st->log_marks, q->vr.logged - q->log_counted);
		q->log_counted = q->vr.logged;
	}
	if (nvl_unlikely(q->logfd >= 0) && q->vr.logged != q->log_signalled) {
		uint64_t one = 1;

		/* SET_LOG_FD: tell the front-end the log changed (the kernel vhost's log_ctx) */
		q->log_signalled = q->vr.logged;
		if (write(q->logfd, &one, sizeof(one)) != sizeof(one))
			NVL_ERRLOG_RL("vblk %s: queue %u: cannot signal the log fd: %s",
				      q->c->name, q->idx, strerror(errno));
	}
	__atomic_store_n(&q->st->inflight, q->inflight, __ATOMIC_RELAXED);
	__atomic_store_n(&q->st->used_idx, q->vr.used_published, __ATOMIC_RELAXED);
	__atomic_store_n(&q->st->last_avail, q->vr.last_avail_idx, __ATOMIC_RELAXED);
}

static int
vblk_q_poll(void *arg)
{
	struct vblk_queue *q = arg;
	unsigned n = 0;
	uint16_t head;
	int rc = 0;

	if (q->state != VQ_RUNNING || q->broken)
		return 0;
	if (nvl_unlikely(vblk_q_mem_tripped(q))) {
		vblk_q_broken(q, "truncated memory", 0);
		return 0;
	}
	if (q->kick_armed) {
		vring_kick_disable(&q->vr);
		q->kick_armed = false;
	}
	q->in_poll = true;
	while (n < VBLK_POLL_BUDGET) {
		rc = vring_pop(&q->vr, &head);
		if (rc <= 0)
			break;
		if (nvl_unlikely(q->reqs[head].busy)) {
			vblk_q_broken(q, "head already in flight", head);
			rc = 0;
			break;
		}
		vring_inflight_start(&q->vr, head);
		vblk_q_process(q, head);
		n++;
	}
	if (rc < 0)
		vblk_q_broken(q, "avail index/head", q->vr.last_avail_idx);
	q->in_poll = false;
	vblk_q_flush(q);
	return (int)n;
}

/* Before the reactor sleeps: ask for kicks, and do not sleep if work came. */
static int
vblk_q_sleep(void *arg)
{
	struct vblk_queue *q = arg;

	if (q->state != VQ_RUNNING || q->broken)
		return 0;
	if (q->kickfd < 0)
		return 1;   /* polling mode: nothing would wake us */
	q->kick_armed = true;
	return vring_kick_enable(&q->vr) ? 1 : 0;
}

static void
vblk_q_kick_cb(void *arg, uint32_t events)
{
	struct vblk_queue *q = arg;
	uint64_t v;

	/* one reader, and epoll said readable: this read does not block */
	if ((events & EPOLLIN) && read(q->kickfd, &v, sizeof(v)) == sizeof(v))
		STAT_INC(q->st->kicks);
	/* the poller runs next in the loop */
}

/* ---- queue life cycle ------------------------------------------------------- */

void
vblk_q_free(struct vblk_queue *q)
{
	/* a running queue is freed only when drained; tests simulating a crash are not */
	for (unsigned i = 0; q->reqs && i < q->vr.size; i++)
		free(q->reqs[i].split);
	if (q->kickfd >= 0)
		close(q->kickfd);
	if (q->callfd >= 0)
		close(q->callfd);
	if (q->logfd >= 0)
		close(q->logfd);
	free(q->reqs);
	free(q->batch);
	free(q->order);
	free(q->recover);
	nvl_reactor_unpick(q->reactor);
	free(q);
}

/* Resubmit what was in flight when the previous daemon died, in submission order. */
static void
vblk_q_resubmit(struct vblk_queue *q)
{
	q->state = VQ_RUNNING;
	q->in_poll = true;
	for (int i = 0; i < q->nrecover; i++) {
		STAT_INC(q->st->resubmitted);
		vblk_q_process(q, q->recover[i]);
	}
	q->nrecover = 0;
	q->in_poll = false;
	vblk_q_flush(q);
	/* an interrupt may have been lost with the previous connection */
	vblk_q_notify(q);
}

static void
vblk_q_start_msg(void *arg)
{
	struct vblk_queue *q = arg;

	q->poller = nvl_poller_create(vblk_q_poll, q, "vblk");
	if (q->poller)
		nvl_poller_set_sleep_hook(q->poller, vblk_q_sleep);
	if (q->kickfd >= 0)
		q->kick_h = nvl_fd_add(q->kickfd, EPOLLIN, vblk_q_kick_cb, q);
	if (q->poller == NULL || (q->kickfd >= 0 && q->kick_h == NULL)) {
		NVL_ERRLOG("vblk %s: queue %u: cannot register its poller on reactor %u",
			   q->c->name, q->idx, nvl_reactor_id(q->reactor));
		q->broken = true;
	}
	vblk_q_resubmit(q);
}

static void
vblk_q_stopped_msg(void *arg)
{
	struct vblk_queue *q = arg;
	struct nvl_vblk *c = q->c;
	unsigned idx = q->idx;
	uint16_t last = q->vr.last_avail_idx;

	c->queues[idx] = NULL;
	vblk_q_free(q);
	vhost_dev_queue_stopped(&c->vdev, idx, last);
}

static void
vblk_q_drained(struct vblk_queue *q)
{
	vblk_q_flush(q);
	q->state = VQ_STOPPED;
	if (nvl_reactor_msg(nvl_reactor_get(0), vblk_q_stopped_msg, q) < 0)
		NVL_ERRLOG("vblk %s: queue %u: cannot report the stop", q->c->name, q->idx);
}

static void
vblk_q_stop_msg(void *arg)
{
	struct vblk_queue *q = arg;

	q->state = VQ_DRAINING;
	nvl_poller_destroy(q->poller);
	q->poller = NULL;
	nvl_fd_del(q->kick_h);
	q->kick_h = NULL;
	if (q->inflight == 0)
		vblk_q_drained(q);
}

struct vblk_q_call_msg {
	struct vblk_queue *q;
	int fd;
};

static void
vblk_q_set_call_msg(void *arg)
{
	struct vblk_q_call_msg *m = arg;

	if (m->q->callfd >= 0)
		close(m->q->callfd);
	m->q->callfd = m->fd;
	free(m);
}

/* Allocate queue qi of c over the ring in p and rebuild its state from the
 * inflight region (no reactor involved: unit tests and fuzzers use it too). */
static int
vblk_queue_alloc(struct nvl_vblk *c, unsigned qi, const struct vhost_queue_params *p,
		 struct vblk_queue **out)
{
	struct vblk_queue *q;
	uint16_t size = p->ring.size;
	int rc, n;

	if (qi >= c->num_queues || c->queues[qi])
		return -EINVAL;
	if (size > c->queue_size) {
		NVL_ERRLOG("vblk %s: queue %u: ring of %u entries, the controller takes up to %u",
			   c->name, qi, size, c->queue_size);
		return -EINVAL;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	q->c = c;
	q->idx = qi;
	q->kickfd = -1;
	q->callfd = -1;
	q->logfd = -1;
	q->st = &c->qstats[qi];
	q->reqs = calloc(size, sizeof(*q->reqs));
	q->batch = calloc(size, sizeof(*q->batch));
	q->recover = calloc(size, sizeof(*q->recover));
	if (c->force_in_order)
		q->order = calloc(size, sizeof(*q->order));
	if (!q->reqs || !q->batch || !q->recover || (c->force_in_order && !q->order)) {
		rc = -ENOMEM;
		goto err_free;
	}
	for (unsigned i = 0; i < size; i++) {
		q->reqs[i].q = q;
		q->reqs[i].head = (uint16_t)i;
	}
	rc = vring_init(&q->vr, &p->ring, q->batch);
	if (rc < 0) {
		NVL_ERRLOG("vblk %s: queue %u: misaligned ring", c->name, qi);
		goto err_free;
	}
	n = vring_recover(&q->vr, q->recover, c->force_in_order, p->ring.base);
	if (n < 0) {
		NVL_ERRLOG("vblk %s: queue %u: inflight region unusable: serving without "
			   "crash recovery", c->name, qi);
		q->vr.inflight = NULL;
		n = vring_recover(&q->vr, q->recover, c->force_in_order, p->ring.base);
		if (n < 0) {
			rc = n;
			goto err_free;
		}
	}
	q->nrecover = n;
	if (n > 0) {
		NVL_NOTICELOG("vblk %s: queue %u: resubmitting %d request(s) that were in flight "
			      "(used index %u, resuming at avail index %u)", c->name, qi, n,
			      q->vr.used_idx, q->vr.last_avail_idx);
		c->last_resubmitted += (uint64_t)n;
		c->total_resubmitted += (uint64_t)n;
	}
	*out = q;
	return 0;
err_free:
	vblk_q_free(q);
	return rc;
}

int
vblk_queue_start(struct vhost_dev *d, unsigned qi, const struct vhost_queue_params *p)
{
	struct nvl_vblk *c = d->ctx;
	struct vblk_queue *q;
	int rc;

	rc = vblk_queue_alloc(c, qi, p, &q);
	if (rc < 0)
		return rc;
	q->reactor = nvl_reactor_pick();
	q->kickfd = p->kickfd;
	q->callfd = p->callfd;
	q->logfd = p->logfd;
	c->queues[qi] = q;
	rc = nvl_reactor_msg(q->reactor, vblk_q_start_msg, q);
	if (rc < 0) {
		c->queues[qi] = NULL;
		q->kickfd = q->callfd = q->logfd = -1;   /* the caller closes the fds it gave */
		vblk_q_free(q);
		return rc;
	}
	return 0;
}

void
vblk_queue_stop(struct vhost_dev *d, unsigned qi)
{
	struct nvl_vblk *c = d->ctx;
	struct vblk_queue *q = qi < NVL_VBLK_MAX_QUEUES ? c->queues[qi] : NULL;

	if (q == NULL || nvl_reactor_msg(q->reactor, vblk_q_stop_msg, q) < 0) {
		NVL_ERRLOG("vblk %s: queue %u: cannot stop", c->name, qi);
		vhost_dev_queue_stopped(d, qi, q ? q->vr.last_avail_idx : 0);
	}
}

void
vblk_queue_set_call(struct vhost_dev *d, unsigned qi, int fd)
{
	struct nvl_vblk *c = d->ctx;
	struct vblk_queue *q = qi < NVL_VBLK_MAX_QUEUES ? c->queues[qi] : NULL;
	struct vblk_q_call_msg *m;

	if (q == NULL || (m = malloc(sizeof(*m))) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	m->q = q;
	m->fd = fd;
	if (nvl_reactor_msg(q->reactor, vblk_q_set_call_msg, m) < 0) {
		if (fd >= 0)
			close(fd);
		free(m);
	}
}
