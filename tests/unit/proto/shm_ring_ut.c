/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the shm ring helpers (src/proto/shm_ring.h): index
 * arithmetic at the wrap, fullness, the phase tag of posted completions as
 * a host sees it around several wraps, and the wake-up flag handshake.
 */
#include "proto/shm_ring.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void
test_next_used_full(void **state)
{
	static const uint32_t sizes[] = { 2, 3, 4, 64, 1024, 4096 };

	(void)state;
	for (size_t s = 0; s < NVL_ARRAY_SIZE(sizes); s++) {
		uint32_t n = sizes[s];

		assert_int_equal(shm_ring_next(0, n), 1 % n);
		assert_int_equal(shm_ring_next(n - 2, n), n - 1);
		assert_int_equal(shm_ring_next(n - 1, n), 0);
		/* used: every head/tail pair, against a reference */
		for (uint32_t h = 0; h < n && h < 70; h++) {
			for (uint32_t t = 0; t < n && t < 70; t++) {
				uint32_t used = (t + n - h) % n;

				assert_int_equal(shm_ring_used(h, t, n), used);
				/* full exactly when one more entry would make tail == head */
				assert_int_equal(shm_ring_full(h, t, n), used == n - 1);
			}
		}
		/* at the wrap */
		assert_int_equal(shm_ring_used(n - 1, 0, n), 1);
		assert_int_equal(shm_ring_used(1, 0, n), n - 1);
		assert_true(shm_ring_full(0, n - 1, n));
		assert_true(shm_ring_full(1, 0, n));
		assert_false(shm_ring_full(0, 0, n));
		assert_int_equal(shm_ring_used(n - 1, n - 1, n), 0);
	}
}

/* The controller's side of a CQ, as src/transport/shm.c posts completions. */
struct cq_ctrl {
	struct nvl_nvme_cpl *ring;
	uint32_t entries, tail;
	uint16_t phase;
};

/* The host's side. */
struct cq_host {
	uint32_t head;
	uint16_t phase;
};

static void
ctrl_post(struct cq_ctrl *c, uint16_t cid, uint16_t status)
{
	struct nvl_nvme_cpl cpl = { .cdw0 = 0x1000u + cid, .cid = cid, .sqhd = cid,
				    .status = status };

	shm_cqe_post(&c->ring[c->tail], &cpl, c->phase);
	c->tail = shm_ring_next(c->tail, c->entries);
	if (c->tail == 0)
		c->phase ^= 1;
}

/* Consume every ready CQE; returns how many, checks they come in cid order. */
static unsigned
host_poll(struct cq_host *h, struct nvl_nvme_cpl *ring, uint32_t entries, uint16_t *next_cid)
{
	unsigned n = 0;

	while (shm_cqe_ready(&ring[h->head], h->phase)) {
		const struct nvl_nvme_cpl *e = &ring[h->head];

		assert_int_equal(e->cid, *next_cid);
		assert_int_equal(e->cdw0, 0x1000u + *next_cid);
		assert_int_equal(e->sqhd, *next_cid);
		/* the status survives, only bit 0 carries the phase */
		assert_int_equal(e->status & ~1u, (uint16_t)((*next_cid % 7) << 1));
		(*next_cid)++;
		h->head = shm_ring_next(h->head, entries);
		if (h->head == 0)
			h->phase ^= 1;
		n++;
	}
	return n;
}

static void
test_phase_around_wraps(void **state)
{
	static const uint32_t sizes[] = { 2, 4, 5, 16 };

	(void)state;
	for (size_t s = 0; s < NVL_ARRAY_SIZE(sizes); s++) {
		uint32_t n = sizes[s];
		struct nvl_nvme_cpl *ring = calloc(n, sizeof(*ring));
		/* a fresh CQ is zeroed: phase 0 everywhere, the first pass posts 1 */
		struct cq_ctrl c = { .ring = ring, .entries = n, .phase = 1 };
		struct cq_host h = { .phase = 1 };
		uint16_t posted = 0, seen = 0;

		assert_int_equal(host_poll(&h, ring, n, &seen), 0);
		/* batches of varying size; the host never lets the ring overflow */
		for (int round = 0; round < 40; round++) {
			uint32_t batch = 1 + (uint32_t)round % (n - 1);

			for (uint32_t i = 0; i < batch; i++) {
				assert_false(shm_ring_full(h.head, c.tail, n));
				ctrl_post(&c, posted, (uint16_t)((posted % 7) << 1));
				posted++;
			}
			assert_int_equal(host_poll(&h, ring, n, &seen), batch);
			assert_int_equal(seen, posted);
			/* nothing stale looks new: the slot at head has the old phase */
			assert_false(shm_cqe_ready(&ring[h.head], h.phase));
			assert_int_equal(h.head, c.tail);
			assert_int_equal(h.phase, c.phase);
		}
		/* fill to the brim (entries - 1), wrap included */
		for (uint32_t i = 0; i < n - 1; i++, posted++)
			ctrl_post(&c, posted, (uint16_t)((posted % 7) << 1));
		assert_true(shm_ring_full(h.head, c.tail, n));
		assert_int_equal(host_poll(&h, ring, n, &seen), n - 1);
		free(ring);
	}
}

static void
test_phase_status_bits(void **state)
{
	struct nvl_nvme_cpl slot = { 0 };
	struct nvl_nvme_cpl cpl = { .cid = 9,
				    .status = NVL_NVME_STATUS_DNR | NVL_NVME_STATUS_MORE |
					      NVL_NVME_SC_TO_STATUS(NVL_NVME_SC_LBA_OUT_OF_RANGE) |
					      1 /* a stray phase bit from the caller */ };

	(void)state;
	shm_cqe_post(&slot, &cpl, 0);
	assert_false(shm_cqe_ready(&slot, 1));
	assert_true(shm_cqe_ready(&slot, 0));
	assert_int_equal(slot.status, cpl.status & ~1u);
	shm_cqe_post(&slot, &cpl, 1);
	assert_true(shm_cqe_ready(&slot, 1));
	assert_int_equal(slot.status >> 1, cpl.status >> 1);
	assert_int_equal(slot.cid, 9);
}

static void
test_wakeup_flags(void **state)
{
	uint32_t flag = 0;

	(void)state;
	/* nobody asked: no signal */
	assert_false(shm_take_wakeup(&flag));
	/* the sleeper arms; the first publisher takes it, the second does not */
	shm_arm_wakeup(&flag);
	assert_int_equal(flag, 1);
	assert_true(shm_take_wakeup(&flag));
	assert_int_equal(flag, 0);
	assert_false(shm_take_wakeup(&flag));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_next_used_full),
		cmocka_unit_test(test_phase_around_wraps),
		cmocka_unit_test(test_phase_status_bits),
		cmocka_unit_test(test_wakeup_flags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
