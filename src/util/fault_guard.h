/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fault guard: memory mappings that a peer can make fault.
 *
 * The daemon maps some files it does not control: a vhost-user front-end's
 * guest memory (memory-backend-file on /dev/shm or hugetlbfs is not sealed)
 * and, in principle, any region a peer hands over. The peer keeps a
 * writable descriptor and can ftruncate() the file; the daemon's next load
 * or store on a page past the new end raises SIGBUS, which would kill the
 * daemon and every other peer with it.
 *
 * Where a region cannot be sealed (F_SEAL_SHRINK) or checked for seals,
 * register it here. A process-wide SIGBUS handler looks the faulting
 * address up in the registered ranges; when it belongs to one, the whole
 * range is replaced in place by anonymous zero-filled memory (the same
 * address, so every pointer into it stays valid), the range's `tripped`
 * flag is set, and the faulting access is retried and succeeds. The owner
 * sees the flag at its next check and stops serving that peer. A SIGBUS
 * elsewhere goes to the previous handler (or the default action).
 *
 * Threads: add/del from any thread (a mutex serialises them); the handler
 * reads the table lock-free. A range must be deleted before it is unmapped,
 * and must not be used by any thread once deleted.
 */
#ifndef NVL_UTIL_FAULT_GUARD_H
#define NVL_UTIL_FAULT_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#define NVL_FAULT_GUARD_SLOTS 1024

/**
 * Guard [addr, addr+len) (a whole mapping: page-aligned start and length,
 * huge-page aligned for hugetlbfs). `tripped` is set to true from the
 * signal handler when the range faulted and was replaced.
 * \return a slot id >= 0; -EINVAL (NULL or zero length); -ENOSPC (table full);
 *         -errno of sigaction when the handler cannot be installed.
 */
int nvl_fault_guard_add(void *addr, size_t len, volatile bool *tripped);

/** Stop guarding a slot returned by nvl_fault_guard_add (negative ids are ignored). */
void nvl_fault_guard_del(int id);

/** Times a guarded range faulted and was replaced, since start (for status and tests). */
unsigned long nvl_fault_guard_trips(void);

#endif
