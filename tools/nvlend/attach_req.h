/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the attach mechanisms accept from the kernel, as pure functions: a
 * ublk I/O descriptor becomes a session I/O (or an error for the kernel), a
 * FUSE read/write/fallocate becomes a block range (or an errno). Kept apart
 * from the mechanisms (attach_ublk.c, attach_fuse.c) so that one fuzz target
 * (tests/fuzz/attach_req) drives exactly the code that runs.
 * Threads: none of their own; no state.
 */
#ifndef NVLEND_ATTACH_REQ_H
#define NVLEND_ATTACH_REQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "host/session.h"

/**
 * The session I/O for a ublk descriptor: op (UBLK_IO_OP_*), flags
 * (UBLK_IO_F_*), start_sector and nr_sectors as the kernel wrote them, on a
 * device of dev_size bytes whose READ/WRITE buffer holds max_rw bytes.
 * Fills io->op, flags, offset, len (not buf, cb, ctx).
 * \return 0; -EOPNOTSUPP an op we do not serve; -EINVAL an empty range, one
 *         beyond the device, or a read/write larger than the buffer.
 */
int attach_ublk_req(uint8_t op, uint32_t flags, uint64_t start_sector, uint32_t nr_sectors,
		    uint64_t dev_size, uint64_t max_rw, struct host_session_io *io);

/** A FUSE read of size bytes at off as whole blocks: [a0, a1) is read, and
 *  [start, end) of it is the answer (end == start: nothing, EOF). */
struct attach_fuse_range {
	uint64_t a0, a1, start, end;
};

/**
 * The blocks a FUSE read needs: clipped to the device and to io_max bytes
 * of answer; the covering range is at most io_max + bs bytes.
 * \return 0 (r filled; r->end == r->start at or past the end).
 */
int attach_fuse_read_range(off_t off, size_t size, uint64_t dev_size, uint32_t bs,
			   uint64_t io_max, struct attach_fuse_range *r);

/**
 * A FUSE write of size bytes at off: whole blocks inside the device.
 * \return the bytes to write (size, or less at the end of the device);
 *         -EROFS read-only; -ENOSPC at the end; -EFBIG beyond it or a
 *         negative offset; -EINVAL not whole blocks.
 */
int64_t attach_fuse_write_len(off_t off, size_t size, uint64_t dev_size, uint32_t bs, bool ro);

/**
 * A FUSE fallocate: the session I/O it becomes (op HOST_SESSION_WRITE_ZEROES
 * with HOST_SESSION_F_DEALLOC for PUNCH_HOLE), or nothing to do.
 * \return 1 with io filled (op, flags, offset, len); 0 nothing to do (mode 0:
 *         every block exists; an empty range); -EINVAL bad offset/length;
 *         -EROFS; -EFBIG the file would grow; -EOPNOTSUPP a mode we do not
 *         do, or a range not of whole blocks (callers fall back to writing).
 */
int attach_fuse_fallocate(int mode, off_t off, off_t len, uint64_t dev_size, uint32_t bs, bool ro,
			  struct host_session_io *io);

#endif
