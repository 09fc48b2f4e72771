/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ring arithmetic and memory ordering of the shm transport, shared by the
 * controller (src/transport/shm.c) and the host library (src/host). Pure
 * inline helpers, no state. The protocol is described in
 * include/nvlend/spec/shm.h.
 */
#ifndef NVL_SHM_RING_H
#define NVL_SHM_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "nvlend/spec/nvme.h"
#include "nvlend/spec/shm.h"
#include "util/util.h"

static inline uint32_t
shm_ring_next(uint32_t idx, uint32_t entries)
{
	return idx + 1 == entries ? 0 : idx + 1;
}

/** Entries between head and tail (tail may have wrapped). */
static inline uint32_t
shm_ring_used(uint32_t head, uint32_t tail, uint32_t entries)
{
	return tail >= head ? tail - head : entries - head + tail;
}

/** A ring is full when one more entry would make tail == head. */
static inline bool
shm_ring_full(uint32_t head, uint32_t tail, uint32_t entries)
{
	return shm_ring_next(tail, entries) == head;
}

/*
 * The status word of a CQE, for atomic access. The CQE struct is packed, so
 * &slot->status is rejected by clang (-Waddress-of-packed-member); ring slots
 * are 16-byte aligned, so the word at offset 14 is naturally aligned.
 */
static inline uint16_t *
shm_cqe_status_word(const struct nvl_nvme_cpl *slot)
{
	return (uint16_t *)((uintptr_t)slot + __builtin_offsetof(struct nvl_nvme_cpl, status));
}

/**
 * Post a completion: fields first, then the status word with the phase tag,
 * with release semantics, so a host that sees the new phase sees the rest.
 */
static inline void
shm_cqe_post(struct nvl_nvme_cpl *slot, const struct nvl_nvme_cpl *cpl, uint16_t phase)
{
	slot->cdw0 = cpl->cdw0;
	slot->cdw1 = cpl->cdw1;
	slot->sqhd = cpl->sqhd;
	slot->sqid = cpl->sqid;
	slot->cid = cpl->cid;
	/* Publish the CQE; pairs with the acquire in shm_cqe_ready(). */
	nvl_smp_store_release(shm_cqe_status_word(slot),
			      (uint16_t)((cpl->status & ~1u) | (phase & 1u)));
}

/** Host: does the CQE at slot carry the expected phase (i.e. is it new)? */
static inline bool
shm_cqe_ready(const struct nvl_nvme_cpl *slot, uint16_t phase)
{
	/* Pairs with the release in shm_cqe_post(). */
	return (nvl_smp_load_acquire(shm_cqe_status_word(slot)) & 1u) == phase;
}

/**
 * Wake the other side if it asked for it: after publishing work, a full
 * barrier orders our publish before reading the flag (the sleeper sets the
 * flag, barriers, then re-checks for work: one of us always sees the other).
 * Returns true if the caller must signal the eventfd.
 */
static inline bool
shm_take_wakeup(uint32_t *flag)
{
	nvl_smp_mb();
	if (__atomic_load_n(flag, __ATOMIC_RELAXED) == 0)
		return false;
	return __atomic_exchange_n(flag, 0, __ATOMIC_ACQ_REL) != 0;
}

/** Before sleeping: ask for a wake-up, then the caller must re-check for work. */
static inline void
shm_arm_wakeup(uint32_t *flag)
{
	__atomic_store_n(flag, 1, __ATOMIC_RELAXED);
	nvl_smp_mb();
}

#endif
