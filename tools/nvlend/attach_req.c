/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The attach mechanisms' request checks (attach_req.h): what a ublk
 * descriptor or a FUSE request may ask of a namespace. Pure functions.
 */
#include "attach_req.h"
#include "util/util.h"

#include <errno.h>
#include <linux/falloc.h>
#include <linux/ublk_cmd.h>
#include <string.h>

int
attach_ublk_req(uint8_t op, uint32_t flags, uint64_t start_sector, uint32_t nr_sectors,
		uint64_t dev_size, uint64_t max_rw, struct host_session_io *io)
{
	/* a start sector beyond 2^55 would wrap the shift into a small offset
	 * that passes the range check below: saturate instead */
	uint64_t off = start_sector > (UINT64_MAX >> 9) ? UINT64_MAX : start_sector << 9;
	uint64_t len = (uint64_t)nr_sectors << 9;

	io->offset = off;
	io->len = len;
	io->flags = 0;
	switch (op) {
	case UBLK_IO_OP_READ:
		io->op = HOST_SESSION_READ;
		break;
	case UBLK_IO_OP_WRITE:
		io->op = HOST_SESSION_WRITE;
		io->flags = (flags & UBLK_IO_F_FUA) ? HOST_SESSION_F_FUA : 0;
		break;
	case UBLK_IO_OP_FLUSH:
		io->op = HOST_SESSION_FLUSH;
		io->offset = io->len = 0;
		return 0;
	case UBLK_IO_OP_DISCARD:
		io->op = HOST_SESSION_DISCARD;
		break;
	case UBLK_IO_OP_WRITE_ZEROES:
		io->op = HOST_SESSION_WRITE_ZEROES;
		io->flags = ((flags & UBLK_IO_F_NOUNMAP) ? 0 : HOST_SESSION_F_DEALLOC) |
			    ((flags & UBLK_IO_F_FUA) ? HOST_SESSION_F_FUA : 0);
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (len == 0 || off > dev_size || len > dev_size - off)
		return -EINVAL;
	if ((io->op == HOST_SESSION_READ || io->op == HOST_SESSION_WRITE) && len > max_rw)
		return -EINVAL;
	return 0;
}

int
attach_fuse_read_range(off_t off, size_t size, uint64_t dev_size, uint32_t bs, uint64_t io_max,
		       struct attach_fuse_range *r)
{
	memset(r, 0, sizeof(*r));
	if (off < 0 || (uint64_t)off >= dev_size || size == 0)
		return 0;
	r->start = (uint64_t)off;
	r->end = NVL_MIN(r->start + NVL_MIN((uint64_t)size, io_max), dev_size);
	/* unaligned reads read the covering blocks */
	r->a0 = NVL_ALIGN_DOWN(r->start, (uint64_t)bs);
	r->a1 = NVL_ALIGN_UP(r->end, (uint64_t)bs);
	if (r->a1 - r->a0 > io_max + bs)
		r->a1 = r->a0 + io_max;
	r->end = NVL_MIN(r->end, r->a1);
	return 0;
}

int64_t
attach_fuse_write_len(off_t off, size_t size, uint64_t dev_size, uint32_t bs, bool ro)
{
	if (ro)
		return -EROFS;
	if (off < 0 || (uint64_t)off >= dev_size)
		return (off >= 0 && (uint64_t)off == dev_size) ? -ENOSPC : -EFBIG;
	/* no read-modify-write: blocks are written whole (O_DIRECT semantics) */
	if ((uint64_t)off % bs || size % bs)
		return -EINVAL;
	return (int64_t)NVL_MIN((uint64_t)size, dev_size - (uint64_t)off);
}

int
attach_fuse_fallocate(int mode, off_t off, off_t len, uint64_t dev_size, uint32_t bs, bool ro,
		      struct host_session_io *io)
{
	uint64_t start = (uint64_t)off, end;

	if (off < 0 || len <= 0)
		return -EINVAL;
	if (ro)
		return -EROFS;
	end = start + (uint64_t)len;
	if (end < start)
		return -EFBIG;
	if (end > dev_size) {
		if (!(mode & FALLOC_FL_KEEP_SIZE))
			return -EFBIG; /* the file cannot grow */
		end = dev_size;
	}
	if (start >= end)
		return 0;
	switch (mode & ~FALLOC_FL_KEEP_SIZE) {
	case 0:
		return 0; /* every block exists already */
	case FALLOC_FL_PUNCH_HOLE:
	case FALLOC_FL_ZERO_RANGE:
		if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
			return -EOPNOTSUPP;
		if (start % bs || end % bs)
			return -EOPNOTSUPP; /* whole blocks only; callers fall back to writing */
		io->op = HOST_SESSION_WRITE_ZEROES;
		io->flags = (mode & FALLOC_FL_PUNCH_HOLE) ? HOST_SESSION_F_DEALLOC : 0;
		io->offset = start;
		io->len = end - start;
		return 1;
	default:
		return -EOPNOTSUPP;
	}
}
