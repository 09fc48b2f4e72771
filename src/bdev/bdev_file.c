/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * "file" backend (RPCs bdev_uring_create, bdev_aio_create): an existing
 * regular file or block device, I/O through the submitting reactor's
 * io_uring.
 *
 * - O_DIRECT where the file system takes it (alignment learnt from statx
 *   STATX_DIOALIGN or the device's logical block size); otherwise buffered,
 *   with a log line saying so. Segments that do not meet the DIO alignment go
 *   through a bounce buffer, so callers need not know.
 * - FUA: RWF_DSYNC on the write. Flush: fdatasync through io_uring.
 * - Write-zeroes: fallocate(ZERO_RANGE); file systems without it (tmpfs) get
 *   PUNCH_HOLE (+ re-allocation when NO_HOLE is asked), and as a last resort
 *   zero-filled writes. Unmap: PUNCH_HOLE, same fallbacks, so a discarded
 *   range always reads back as zeroes (the NVMe/NBD layers advertise that).
 * - Files on tmpfs/ramfs in buffered mode: io_uring hands their I/O to kernel
 *   worker threads (MACHINE-NOTES.md: plain pread is ~2x faster there), so
 *   io_mode "auto" serves them inline with preadv/pwritev, which cannot block
 *   on a memory file system. io_mode "uring" forces the ring.
 * - Block status: lseek(SEEK_DATA/SEEK_HOLE) on a regular file, inline on the
 *   asking reactor (io_uring has no seek; the file system answers from its
 *   extent tree and the query is rare and off the I/O path). A hole reports
 *   hole + zero; a block partly data, data. A block device reports data.
 */
#include "bdev/bdev.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

NVL_LOG_DECLARE_COMPONENT(bdev);

#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif

#define ZERO_CHUNK (1u << 20)

enum file_zero_stage {
	ZSTAGE_ZERO_RANGE = 0,
	ZSTAGE_PUNCH,
	ZSTAGE_ALLOC_AFTER_PUNCH,
	ZSTAGE_WRITE,
};

struct bdev_file {
	struct nvl_bdev bdev;
	int fd;
	char *filename;
	const char *rpc_method;
	bool direct;
	bool is_blockdev;
	bool sync_inline;       /* tmpfs/ramfs: preadv/pwritev inline */
	bool no_zero_range;     /* learnt: fallocate ZERO_RANGE unsupported */
	bool no_punch;          /* learnt: PUNCH_HOLE unsupported */
	uint32_t mem_align;
	uint32_t off_align;
	uint64_t bounced;
	struct backing_lock *lock;
};

static void *g_zero_buf;

/*
 * One daemon per backing device (dis_nvme's one manager per device): the
 * first bdev of this process on a file or block device takes an exclusive
 * flock(2) on it (its own descriptor, so the bdev's reopens do not drop it).
 * A second bdev of this process on the same file is refused with -EBUSY
 * unless both say `shared` (then they share the lock, refcounted): two
 * bdevs on one file are two views of the same blocks that nobody orders. A
 * second daemon's bdev on it is refused with -EBUSY. The lock goes with the
 * process (also on kill -9). Reactor 0 only.
 */
struct backing_lock {
	dev_t dev;
	ino_t ino;
	int fd;
	unsigned refs;
	bool shared;
	char first[NVL_BDEV_NAME_MAX];   /* the bdev that took it */
	struct backing_lock *next;
};
static struct backing_lock *g_backing_locks;

/* The pid holding a FLOCK on dev:ino according to /proc/locks, or 0. */
static int
backing_lock_owner(dev_t dev, ino_t ino)
{
	char line[256], want[64];
	FILE *f = fopen("/proc/locks", "re");
	int pid = 0;

	if (f == NULL)
		return 0;
	snprintf(want, sizeof(want), "%02x:%02x:%lu ", major(dev), minor(dev), (unsigned long)ino);
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "FLOCK");

		if (p && strstr(p, want) && sscanf(p, "FLOCK %*s %*s %d", &pid) == 1)
			break;
		pid = 0;
	}
	fclose(f);
	return pid;
}

static int
backing_lock_get(const char *name, const char *path, const struct stat *st, bool shared,
		 struct backing_lock **out)
{
	struct backing_lock *l;
	int pid;

	for (l = g_backing_locks; l; l = l->next)
		if (l->dev == st->st_dev && l->ino == st->st_ino) {
			if (!shared || !l->shared) {
				NVL_ERRLOG("%s: %s is already served by bdev %s (two bdevs on one "
					   "file need shared: true on both)", name, path, l->first);
				return -EBUSY;
			}
			l->refs++;
			*out = l;
			return 0;
		}
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (l->fd < 0) {
		free(l);
		return -errno;
	}
	if (flock(l->fd, LOCK_EX | LOCK_NB) < 0) {
		int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;

		pid = backing_lock_owner(st->st_dev, st->st_ino);
		if (rc == -EBUSY && pid)
			NVL_ERRLOG("%s: %s is served by another process (pid %d): one daemon per "
				   "backing device", name, path, pid);
		else if (rc == -EBUSY)
			NVL_ERRLOG("%s: %s is locked by another process: one daemon per backing "
				   "device", name, path);
		close(l->fd);
		free(l);
		return rc;
	}
	l->dev = st->st_dev;
	l->ino = st->st_ino;
	l->refs = 1;
	l->shared = shared;
	nvl_strlcpy(l->first, name, sizeof(l->first));
	l->next = g_backing_locks;
	g_backing_locks = l;
	*out = l;
	return 0;
}

static void
backing_lock_put(struct backing_lock *l)
{
	struct backing_lock **pp;

	if (l == NULL || --l->refs)
		return;
	for (pp = &g_backing_locks; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	close(l->fd); /* drops the flock */
	free(l);
}

static struct bdev_file *
to_file(struct nvl_bdev *b)
{
	return container_of(b, struct bdev_file, bdev);
}

static bool
iov_aligned(const struct bdev_file *f, const struct nvl_bdev_io *io)
{
	for (int i = 0; i < io->iovcnt; i++) {
		if (((uintptr_t)io->iov[i].iov_base & (f->mem_align - 1)) ||
		    (io->iov[i].iov_len & (f->off_align - 1)))
			return false;
	}
	return true;
}

static void file_uring_done(struct nvl_uring_op *op, int res);

/* priv[0]: bounce iovec base, priv[1]: zero stage, priv[2]: bytes done in stage */

static int
file_sync_rw(struct bdev_file *f, struct nvl_bdev_io *io)
{
	uint64_t done = 0;
	int flags = (io->type == NVL_BDEV_IO_WRITE && (io->flags & NVL_BDEV_IO_FUA)) ? RWF_DSYNC
										      : 0;
	struct iovec iov[IOV_MAX];
	int cnt = io->iovcnt;

	memcpy(iov, io->iov, sizeof(*iov) * (size_t)cnt);
	while (done < io->length) {
		ssize_t n;
		struct iovec *v = iov;
		int vc = cnt;
		uint64_t skip = done;

		while (vc > 0 && skip >= v->iov_len) {
			skip -= v->iov_len;
			v++;
			vc--;
		}
		v->iov_base = (char *)v->iov_base + skip;
		v->iov_len -= skip;
		if (io->type == NVL_BDEV_IO_READ)
			n = preadv2(f->fd, v, vc, (off_t)(io->offset + done), 0);
		else
			n = pwritev2(f->fd, v, vc, (off_t)(io->offset + done), flags);
		v->iov_base = (char *)v->iov_base - skip;
		v->iov_len += skip;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* file shrank under us */
		done += (uint64_t)n;
	}
	return 0;
}

static int
file_queue_rw(struct bdev_file *f, struct nvl_bdev_io *io)
{
	struct io_uring_sqe *sqe;
	struct iovec *iov = io->iov;
	int iovcnt = io->iovcnt;

	if (f->direct && !iov_aligned(f, io)) {
		struct iovec *bv;
		uint8_t *buf;

		/* one allocation: the iovec, then the aligned data */
		bv = aligned_alloc(4096, 4096 + NVL_ALIGN_UP(io->length, 4096));
		if (bv == NULL)
			return -ENOMEM;
		buf = (uint8_t *)bv + 4096;
		bv->iov_base = buf;
		bv->iov_len = io->length;
		if (io->type == NVL_BDEV_IO_WRITE) {
			uint8_t *p = buf;

			for (int i = 0; i < io->iovcnt; i++) {
				memcpy(p, io->iov[i].iov_base, io->iov[i].iov_len);
				p += io->iov[i].iov_len;
			}
		}
		io->bounce = bv;
		iov = bv;
		iovcnt = 1;
		f->bounced++;
	}
	sqe = nvl_uring_sqe();
	if (sqe == NULL) {
		free(io->bounce);
		io->bounce = NULL;
		return -EAGAIN;
	}
	if (io->type == NVL_BDEV_IO_READ) {
		io_uring_prep_readv(sqe, f->fd, iov, (unsigned)iovcnt, io->offset);
	} else {
		io_uring_prep_writev(sqe, f->fd, iov, (unsigned)iovcnt, io->offset);
		if (io->flags & NVL_BDEV_IO_FUA)
			sqe->rw_flags = RWF_DSYNC;
	}
	io->priv[2] = 0;
	io->uop.cb = file_uring_done;
	nvl_uring_op_set(sqe, &io->uop);
	return 0;
}

static int
file_queue_zero_stage(struct bdev_file *f, struct nvl_bdev_io *io)
{
	struct io_uring_sqe *sqe;
	uint64_t stage = io->priv[1];

	if (stage == ZSTAGE_ZERO_RANGE && f->no_zero_range)
		stage = ZSTAGE_PUNCH;
	if (stage == ZSTAGE_PUNCH && f->no_punch)
		stage = ZSTAGE_WRITE;
	io->priv[1] = stage;
	/* no fallocate here: writing zeroes is not faster than a write */
	if (stage == ZSTAGE_WRITE && (io->flags & NVL_BDEV_IO_FAST_ZERO))
		return -ENOTSUP;
	sqe = nvl_uring_sqe();
	if (sqe == NULL)
		return -EAGAIN;
	switch (stage) {
	case ZSTAGE_ZERO_RANGE:
		io_uring_prep_fallocate(sqe, f->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
					io->offset, io->length);
		break;
	case ZSTAGE_PUNCH:
		io_uring_prep_fallocate(sqe, f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					io->offset, io->length);
		break;
	case ZSTAGE_ALLOC_AFTER_PUNCH:
		io_uring_prep_fallocate(sqe, f->fd, FALLOC_FL_KEEP_SIZE, io->offset, io->length);
		break;
	default: {
		uint64_t off = io->offset + io->priv[2];
		uint64_t len = NVL_MIN(io->length - io->priv[2], (uint64_t)ZERO_CHUNK);

		io_uring_prep_write(sqe, f->fd, g_zero_buf, (unsigned)len, off);
		break;
	}
	}
	io->uop.cb = file_uring_done;
	nvl_uring_op_set(sqe, &io->uop);
	return 0;
}

static void
file_finish(struct nvl_bdev_io *io, int status)
{
	if (io->bounce) {
		if (status == 0 && io->type == NVL_BDEV_IO_READ) {
			const uint8_t *p = ((struct iovec *)io->bounce)->iov_base;

			for (int i = 0; i < io->iovcnt; i++) {
				memcpy(io->iov[i].iov_base, p, io->iov[i].iov_len);
				p += io->iov[i].iov_len;
			}
		}
		free(io->bounce);
		io->bounce = NULL;
	}
	nvl_bdev_io_complete(io, status);
}

static void
file_uring_done(struct nvl_uring_op *op, int res)
{
	struct nvl_bdev_io *io = container_of(op, struct nvl_bdev_io, uop);
	struct bdev_file *f = to_file(io->bdev);
	int rc;

	switch (io->type) {
	case NVL_BDEV_IO_READ:
	case NVL_BDEV_IO_WRITE:
		if (res < 0) {
			NVL_ERRLOG_RL("%s: %s at offset %llu len %llu failed: %s", f->bdev.name,
				      io->type == NVL_BDEV_IO_READ ? "read" : "write",
				      (unsigned long long)io->offset,
				      (unsigned long long)io->length, strerror(-res));
			file_finish(io, res);
			return;
		}
		if ((uint64_t)res + io->priv[2] < io->length) {
			/* short transfer: finish synchronously (rare: signals, EOF races) */
			struct nvl_bdev_io tmp = *io;
			struct iovec one;
			uint64_t done = io->priv[2] + (uint64_t)res;

			if (res == 0) {
				file_finish(io, -EIO);
				return;
			}
			if (io->bounce) {
				one.iov_base = (char *)((struct iovec *)io->bounce)->iov_base + done;
				one.iov_len = io->length - done;
				tmp.iov = &one;
				tmp.iovcnt = 1;
				tmp.offset = io->offset + done;
				tmp.length = io->length - done;
				rc = file_sync_rw(f, &tmp);
			} else {
				/* re-run the remainder through the synchronous path */
				struct nvl_bdev_io rest = *io;
				struct iovec v[IOV_MAX];
				int n = 0;
				uint64_t skip = done;

				for (int i = 0; i < io->iovcnt; i++) {
					if (skip >= io->iov[i].iov_len) {
						skip -= io->iov[i].iov_len;
						continue;
					}
					v[n].iov_base = (char *)io->iov[i].iov_base + skip;
					v[n].iov_len = io->iov[i].iov_len - skip;
					skip = 0;
					n++;
				}
				rest.iov = v;
				rest.iovcnt = n;
				rest.offset = io->offset + done;
				rest.length = io->length - done;
				rc = file_sync_rw(f, &rest);
			}
			file_finish(io, rc);
			return;
		}
		file_finish(io, 0);
		return;
	case NVL_BDEV_IO_FLUSH:
		file_finish(io, res < 0 ? res : 0);
		return;
	case NVL_BDEV_IO_WRITE_ZEROES:
	case NVL_BDEV_IO_UNMAP:
		switch (io->priv[1]) {
		case ZSTAGE_ZERO_RANGE:
			if (res == -EOPNOTSUPP || res == -EINVAL) {
				f->no_zero_range = true;
				io->priv[1] = ZSTAGE_PUNCH;
				goto next;
			}
			break;
		case ZSTAGE_PUNCH:
			if (res == -EOPNOTSUPP || res == -EINVAL) {
				f->no_punch = true;
				io->priv[1] = ZSTAGE_WRITE;
				goto next;
			}
			if (res >= 0 && (io->flags & NVL_BDEV_IO_NO_HOLE) && !f->is_blockdev) {
				io->priv[1] = ZSTAGE_ALLOC_AFTER_PUNCH;
				goto next;
			}
			break;
		case ZSTAGE_ALLOC_AFTER_PUNCH:
			break;
		default:
			if (res > 0) {
				io->priv[2] += (uint64_t)res;
				if (io->priv[2] < io->length)
					goto next;
				res = 0;
			} else if (res == 0) {
				res = -EIO;
			}
			break;
		}
		file_finish(io, res < 0 ? res : 0);
		return;
	default:
		file_finish(io, -EINVAL);
		return;
	}
next:
	rc = file_queue_zero_stage(f, io);
	if (rc < 0)
		file_finish(io, rc);
}

static int
file_submit(struct nvl_bdev *b, struct nvl_bdev_io *io)
{
	struct bdev_file *f = to_file(b);
	struct io_uring_sqe *sqe;
	int rc;

	switch (io->type) {
	case NVL_BDEV_IO_READ:
	case NVL_BDEV_IO_WRITE:
		if (f->sync_inline) {
			rc = file_sync_rw(f, io);
			nvl_bdev_io_complete(io, rc);
			return 0;
		}
		return file_queue_rw(f, io);
	case NVL_BDEV_IO_FLUSH:
		if (f->sync_inline) {
			/* tmpfs has nothing to write back; keep the syscall for honesty */
			nvl_bdev_io_complete(io, fdatasync(f->fd) < 0 ? -errno : 0);
			return 0;
		}
		sqe = nvl_uring_sqe();
		if (sqe == NULL)
			return -EAGAIN;
		io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
		io->uop.cb = file_uring_done;
		nvl_uring_op_set(sqe, &io->uop);
		return 0;
	case NVL_BDEV_IO_WRITE_ZEROES:
	case NVL_BDEV_IO_UNMAP:
		if (io->length == 0) {
			nvl_bdev_io_complete(io, 0);
			return 0;
		}
		io->priv[1] = io->type == NVL_BDEV_IO_UNMAP ? ZSTAGE_PUNCH : ZSTAGE_ZERO_RANGE;
		if (io->type == NVL_BDEV_IO_WRITE_ZEROES && !(io->flags & NVL_BDEV_IO_NO_HOLE))
			io->priv[1] = ZSTAGE_PUNCH; /* cheapest: a hole reads as zeroes */
		io->priv[2] = 0;
		return file_queue_zero_stage(f, io);
	default:
		return -ENOTSUP;
	}
}

/* Extents of a regular file; stops early (the caller asks again) after a bounded
 * number of seeks, or where q->ext is full. */
static int
file_block_status(struct nvl_bdev *b, struct nvl_bdev_bstat *q)
{
	struct bdev_file *f = to_file(b);
	uint64_t off = q->offset, end = q->offset + q->length, bs = b->block_size;
	unsigned seeks = 0, max_seeks = 2 * q->max_ext + 16;

	while (off < end && seeks < max_seeks) {
		uint64_t hs, de;
		off_t d, h;

		if (f->is_blockdev)
			goto rest_is_data;
		d = lseek(f->fd, (off_t)off, SEEK_DATA);
		seeks++;
		if (d < 0 && errno == ENXIO) {
			/* no data from off to the end of the file */
			nvl_bdev_bstat_add(q, end - off, NVL_BDEV_EXT_HOLE | NVL_BDEV_EXT_ZERO);
			break;
		}
		if (d < 0)
			goto seek_failed;
		if ((uint64_t)d >= end) {
			nvl_bdev_bstat_add(q, end - off, NVL_BDEV_EXT_HOLE | NVL_BDEV_EXT_ZERO);
			break;
		}
		hs = NVL_ALIGN_DOWN((uint64_t)d, bs); /* a block with any data is data */
		if (hs < off)
			hs = off;
		if (!nvl_bdev_bstat_add(q, hs - off, NVL_BDEV_EXT_HOLE | NVL_BDEV_EXT_ZERO))
			break;
		h = lseek(f->fd, d, SEEK_HOLE);
		seeks++;
		if (h < 0)
			goto seek_failed;
		de = NVL_MIN(NVL_ALIGN_UP((uint64_t)h, bs), end);
		if (de <= hs)
			de = NVL_MIN(hs + bs, end);
		if (!nvl_bdev_bstat_add(q, de - hs, 0))
			break;
		off = de;
	}
	nvl_bdev_bstat_complete(q, 0);
	return 0;
seek_failed:
	NVL_ERRLOG_RL("%s: lseek(SEEK_DATA/SEEK_HOLE) at %llu: %s; reporting data", b->name,
		      (unsigned long long)off, strerror(errno));
rest_is_data:
	nvl_bdev_bstat_add(q, end - off, 0); /* "allocated, or not known": always true */
	nvl_bdev_bstat_complete(q, 0);
	return 0;
}

static void
file_destroy(struct nvl_bdev *b)
{
	struct bdev_file *f = to_file(b);

	close(f->fd);
	backing_lock_put(f->lock);
	free(f->filename);
	free(f);
}

static void
file_dump_info(struct nvl_bdev *b, json_t *ds)
{
	struct bdev_file *f = to_file(b);

	json_object_set_new(ds, "file",
			    json_pack("{s:s, s:b, s:b, s:s, s:i, s:I}", "filename", f->filename,
				      "direct_io", f->direct, "block_device", f->is_blockdev,
				      "io_mode", f->sync_inline ? "sync" : "uring", "dio_mem_align",
				      (int)f->mem_align, "bounced_ios", (json_int_t)f->bounced));
}

static json_t *
file_write_config(struct nvl_bdev *b)
{
	struct bdev_file *f = to_file(b);
	char uuid[40];
	json_t *p;

	nvl_uuid_fmt(b->uuid, uuid);
	p = json_pack("{s:s, s:s, s:i, s:s}", "name", b->name, "filename", f->filename,
		      "block_size", (int)b->block_size, "uuid", uuid);
	if (b->read_only)
		json_object_set_new(p, "readonly", json_true());
	if (f->lock && f->lock->shared)
		json_object_set_new(p, "shared", json_true());
	return json_pack("{s:s, s:o}", "method", f->rpc_method, "params", p);
}

static const struct nvl_bdev_ops file_ops = {
	.name = "file",
	.submit = file_submit,
	.destroy = file_destroy,
	.dump_info = file_dump_info,
	.write_config = file_write_config,
	.block_status = file_block_status,
};

static void
file_learn_dio_align(struct bdev_file *f, int dirfd_path_fd, uint32_t *mem, uint32_t *off)
{
	struct statx stx;

	*mem = 512;
	*off = 512;
	if (statx(dirfd_path_fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		*mem = stx.stx_dio_mem_align ? stx.stx_dio_mem_align : 512;
		*off = stx.stx_dio_offset_align;
	}
	(void)f;
}

/* The zero-filled buffer of the last-resort write-zeroes, made on first use. */
static int
file_zero_buf_init(void)
{
	if (g_zero_buf == NULL) {
		g_zero_buf = aligned_alloc(4096, ZERO_CHUNK);
		if (g_zero_buf == NULL)
			return -ENOMEM;
		memset(g_zero_buf, 0, ZERO_CHUNK);
	}
	return 0;
}

/* Open O_DIRECT unless buffered is asked or refused. \return 0, or -errno (f->fd < 0). */
static int
file_open(struct bdev_file *f, const struct nvl_bdev_file_opts *o, int flags)
{
	struct statfs sfs;

	f->fd = o->io_mode == NVL_BDEV_FILE_BUFFERED ? -1 : open(o->filename, flags | O_DIRECT);
	if (f->fd >= 0) {
		f->direct = true;
		return 0;
	}
	f->fd = open(o->filename, flags);
	if (f->fd < 0)
		return -errno;
	if (o->io_mode != NVL_BDEV_FILE_BUFFERED && fstatfs(f->fd, &sfs) == 0 &&
	    sfs.f_type != TMPFS_MAGIC && sfs.f_type != RAMFS_MAGIC)
		NVL_NOTICELOG("%s: %s does not take O_DIRECT; using buffered I/O", o->name,
			      o->filename);
	return 0;
}

/* Replace the O_DIRECT fd by a buffered one. \return 0, or -errno (the old fd stays). */
static int
file_reopen_buffered(struct bdev_file *f, int flags)
{
	int fd2 = open(f->filename, flags);

	if (fd2 < 0)
		return -errno;
	close(f->fd);
	f->fd = fd2;
	f->direct = false;
	return 0;
}

/* A regular file on tmpfs/ramfs (a device node's fstatfs is /dev's, devtmpfs: not asked). */
static bool
file_on_memfs(int fd, const struct stat *st)
{
	struct statfs sfs;

	return S_ISREG(st->st_mode) && fstatfs(fd, &sfs) == 0 &&
	       (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC);
}

/*
 * Size, DIO alignment and natural block size of a block device or regular
 * file. \return 0, or -errno (BLKGETSIZE64), -EINVAL (anything else).
 */
static int
file_probe(struct bdev_file *f, const struct nvl_bdev_file_opts *o, const struct stat *st,
	   uint64_t *size, uint32_t *natural)
{
	*natural = 512;
	if (S_ISBLK(st->st_mode)) {
		int lbs = 512;

		f->is_blockdev = true;
		if (ioctl(f->fd, BLKGETSIZE64, size) < 0)
			return -errno;
		if (ioctl(f->fd, BLKSSZGET, &lbs) == 0 && lbs > 0)
			*natural = (uint32_t)lbs;
		f->mem_align = *natural;
		f->off_align = *natural;
		return 0;
	}
	if (S_ISREG(st->st_mode)) {
		*size = (uint64_t)st->st_size;
		file_learn_dio_align(f, f->fd, &f->mem_align, &f->off_align);
		if (f->direct && f->off_align > *natural)
			*natural = f->off_align;
		return 0;
	}
	NVL_ERRLOG("%s: %s is neither a regular file nor a block device", o->name, o->filename);
	return -EINVAL;
}

/*
 * The block size (asked, or the natural one), buffered I/O if direct I/O
 * cannot do it, and at least one whole block.
 * \return 0, or -errno (reopening), -EINVAL (smaller than one block).
 */
static int
file_set_block_size(struct bdev_file *f, const struct nvl_bdev_file_opts *o, int flags,
		    uint32_t natural, uint64_t size)
{
	int rc;

	f->bdev.block_size = o->block_size ? o->block_size : natural;
	if (f->direct && f->bdev.block_size < f->off_align) {
		/* DIO cannot do this block size here: reopen buffered */
		rc = file_reopen_buffered(f, flags);
		if (rc < 0)
			return rc;
		NVL_NOTICELOG("%s: block size %u is below the direct-I/O alignment %u of %s; "
			      "using buffered I/O", o->name, f->bdev.block_size, f->off_align,
			      o->filename);
	}
	if (size < f->bdev.block_size) {
		NVL_ERRLOG("%s: %s is smaller than one %u-byte block", o->name, o->filename,
			   f->bdev.block_size);
		return -EINVAL;
	}
	if (size % f->bdev.block_size)
		NVL_WARNLOG("%s: ignoring the last %llu bytes of %s (not a whole block)", o->name,
			    (unsigned long long)(size % f->bdev.block_size), o->filename);
	return 0;
}

/* What the bdev layer sees. */
static void
file_fill_bdev(struct bdev_file *f, const struct nvl_bdev_file_opts *o, uint64_t size)
{
	nvl_strlcpy(f->bdev.name, o->name, sizeof(f->bdev.name));
	f->bdev.product_name = f->is_blockdev ? "Block device" : "File";
	f->bdev.ops = &file_ops;
	f->bdev.num_blocks = size / f->bdev.block_size;
	f->bdev.write_cache = true;
	f->bdev.read_only = o->read_only;
	f->bdev.io_types = (1u << NVL_BDEV_IO_READ) | (1u << NVL_BDEV_IO_FLUSH);
	if (!o->read_only)
		f->bdev.io_types |= (1u << NVL_BDEV_IO_WRITE) | (1u << NVL_BDEV_IO_WRITE_ZEROES) |
				    (1u << NVL_BDEV_IO_UNMAP);
	f->bdev.fast_zero = true; /* fallocate; FAST_ZERO fails -ENOTSUP where only writes work */
	f->rpc_method = o->rpc_method ? o->rpc_method : "bdev_uring_create";
	if (o->uuid)
		memcpy(f->bdev.uuid, o->uuid, 16);
}

int
nvl_bdev_file_create(const struct nvl_bdev_file_opts *o, struct nvl_bdev **out)
{
	struct bdev_file *f;
	struct stat st;
	uint64_t size;
	uint32_t natural;
	bool on_memfs;
	int flags, rc;

	if (o->name == NULL || o->name[0] == '\0' || strlen(o->name) >= NVL_BDEV_NAME_MAX ||
	    o->filename == NULL)
		return -EINVAL;
	if (o->block_size && (o->block_size < 512 || o->block_size > 65536 ||
			      !NVL_IS_POW2(o->block_size)))
		return -EINVAL;
	rc = file_zero_buf_init();
	if (rc < 0)
		return rc;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	f->filename = strdup(o->filename);
	if (f->filename == NULL) {
		rc = -ENOMEM;
		goto err_free;
	}
	flags = (o->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	rc = file_open(f, o, flags);
	if (rc < 0)
		goto err_free;
	if (fstat(f->fd, &st) < 0) {
		rc = -errno;
		goto err_close;
	}
	rc = backing_lock_get(o->name, o->filename, &st, o->shared, &f->lock);
	if (rc < 0)
		goto err_close;
	on_memfs = file_on_memfs(f->fd, &st);
	if (f->direct && on_memfs && o->io_mode == NVL_BDEV_FILE_AUTO) {
		/*
		 * tmpfs accepts O_DIRECT since Linux 6.6 but still copies through the
		 * page cache, and io_uring would hand its I/O to worker threads: in
		 * auto mode a memory file system is served inline, buffered.
		 */
		rc = file_reopen_buffered(f, flags);
		if (rc < 0)
			goto err_close;
	}
	rc = file_probe(f, o, &st, &size, &natural);
	if (rc < 0)
		goto err_close;
	rc = file_set_block_size(f, o, flags, natural, size);
	if (rc < 0)
		goto err_close;
	if (!f->direct && on_memfs && o->io_mode == NVL_BDEV_FILE_AUTO)
		f->sync_inline = true;
	if (!f->direct) {
		f->mem_align = 1;
		f->off_align = 1;
	}
	file_fill_bdev(f, o, size);
	rc = nvl_bdev_register(&f->bdev);
	if (rc < 0)
		goto err_close;
	NVL_NOTICELOG("%s: %s, %llu blocks of %u, %s I/O%s", o->name, o->filename,
		      (unsigned long long)f->bdev.num_blocks, f->bdev.block_size,
		      f->direct ? "direct" : "buffered", f->sync_inline ? " (inline, tmpfs)" : "");
	*out = &f->bdev;
	return 0;
err_close:
	backing_lock_put(f->lock);
	close(f->fd);
err_free:
	free(f->filename);
	free(f);
	return rc;
}
