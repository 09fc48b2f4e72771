/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the attach process's "nbd" mechanism (attach_nbd.c) tells the Linux
 * kernel's NBD client, which skips the handshake: the device is configured
 * with ioctls (NBD_SET_BLKSIZE, NBD_SET_SIZE_BLOCKS, NBD_SET_FLAGS), and
 * requests are then checked against the same parameters with the one NBD
 * codec (src/proto/nbd.h). Shared with the tests of that codec
 * (tests/unit/proto/nbd_ut.c, tests/fuzz/attach_nbd), so that they check
 * what the attach process really serves. Threads: pure function.
 */
#ifndef NVL_ATTACH_NBD_H
#define NVL_ATTACH_NBD_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/nbd.h"

/**
 * The transmission parameters of an attached namespace: simple replies (the
 * kernel never negotiates structured ones), flush, FUA, trim and write zeroes
 * offered (the session turns them into NVMe Flush, FUA writes, Dataset
 * Management and Write Zeroes), multi-connection (one socket per queue), and
 * requests up to NBD_MAX_PAYLOAD.
 * \param block_size the namespace's block size, a power of two in 512..4096
 */
static inline void
attach_nbd_xparams(uint64_t size, uint32_t block_size, bool read_only, struct nbd_xparams *x)
{
	x->size = size;
	x->min_block = block_size;
	x->max_block = NBD_MAX_PAYLOAD;
	x->tflags = NVL_NBD_FLAG_HAS_FLAGS | NVL_NBD_FLAG_SEND_FLUSH | NVL_NBD_FLAG_SEND_FUA |
		    NVL_NBD_FLAG_SEND_TRIM | NVL_NBD_FLAG_SEND_WRITE_ZEROES |
		    NVL_NBD_FLAG_CAN_MULTI_CONN | (read_only ? NVL_NBD_FLAG_READ_ONLY : 0);
	x->structured = false;
	x->meta_alloc = false; /* no handshake: no metadata context, no BLOCK_STATUS */
}

#endif
