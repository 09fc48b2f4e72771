/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A state blob: a byte string (a configuration, a reservation table) kept in
 * a memfd in the fd store (util/fdstore.h), written so that a worker killed
 * at any instruction leaves a readable version behind.
 *
 * Layout: a header page, then two slots. A write goes to the slot holding
 * the older version: data, length and CRC32C first, the sequence number last
 * (release store). A read takes the slot with the higher sequence number
 * whose CRC matches. A kill during a write leaves that slot's CRC wrong or
 * its sequence number old, and the other slot (the previous version) is
 * read. The memfd is sparse: capacity costs only what is written.
 *
 * Without a supervisor the blob still works (a plain memfd nobody keeps), so
 * callers need not care whether they are supervised.
 *
 * Threads: one writer at a time (the caller serialises); read at start-up.
 */
#ifndef NVL_UTIL_STATEBLOB_H
#define NVL_UTIL_STATEBLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nvl_stateblob;

/**
 * Take the blob stored as `name` back from the fd store, or make a new one
 * (and store it) with room for `cap` bytes of data.
 * \param existed set true when a previous worker's blob was taken back.
 * \return 0; -EINVAL (bad name, cap 0); -ENOMEM; -errno of memfd/mmap.
 */
int nvl_stateblob_open(const char *name, size_t cap, struct nvl_stateblob **out, bool *existed);

/**
 * The latest complete version. *data points into the blob (valid until the
 * next write or close); *len 0 and *seq 0 when nothing was ever written.
 * \return 0; -EBADMSG when both slots are damaged (nothing usable).
 */
int nvl_stateblob_read(struct nvl_stateblob *b, const void **data, size_t *len, uint64_t *seq);

/** Write a new version. \return 0; -E2BIG (more than cap). */
int nvl_stateblob_write(struct nvl_stateblob *b, const void *data, size_t len);

/** Close; with drop, also remove it from the fd store (it is not coming back). */
void nvl_stateblob_close(struct nvl_stateblob *b, bool drop);

#endif
