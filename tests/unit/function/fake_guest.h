/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A fake guest for the function/ unit tests and fuzzers: two memory regions
 * adjacent in guest-physical space but apart in our address space (so a
 * buffer crossing the boundary must become two iovecs), a split ring of
 * `size` entries at the start of region 0, data buffers after it, and an
 * inflight region in private memory. Include after function/vhost_internal.h.
 */
#ifndef NVL_TEST_FAKE_GUEST_H
#define NVL_TEST_FAKE_GUEST_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FG_GPA0 0x100000ULL         /* region 0 guest-physical base */
#define FG_SIZE0 (4ULL << 20)
#define FG_SIZE1 (1ULL << 20)       /* region 1 follows region 0 in gpa */
#define FG_DESC_OFF 0x0
#define FG_AVAIL_OFF 0x8000
#define FG_USED_OFF 0xc000
#define FG_DATA_OFF 0x20000         /* first data byte offset in region 0 */

struct fake_guest {
	uint8_t *r0, *r1;
	struct vhost_mem mem;
	uint16_t size;
	uint16_t avail_idx;
	void *inflight;
	size_t inflight_len;
};

static inline uint64_t
fg_gpa(uint64_t off)
{
	return FG_GPA0 + off;
}

static inline void
fg_init(struct fake_guest *g, uint16_t size)
{
	memset(g, 0, sizeof(*g));
	g->r0 = aligned_alloc(4096, FG_SIZE0);
	g->r1 = aligned_alloc(4096, FG_SIZE1);
	memset(g->r0, 0, FG_SIZE0);
	memset(g->r1, 0, FG_SIZE1);
	g->size = size;
	g->mem.nregions = 2;
	g->mem.r[0] = (struct vhost_mem_region){ .gpa = FG_GPA0, .size = FG_SIZE0,
						 .uva = 0x7f0000000000ULL, .hva = g->r0 };
	g->mem.r[1] = (struct vhost_mem_region){ .gpa = FG_GPA0 + FG_SIZE0, .size = FG_SIZE1,
						 .uva = 0x7f0000000000ULL + FG_SIZE0,
						 .hva = g->r1 };
	g->inflight_len = vring_inflight_queue_bytes(size);
	g->inflight = aligned_alloc(64, g->inflight_len);
	memset(g->inflight, 0, g->inflight_len);
}

static inline void
fg_fini(struct fake_guest *g)
{
	free(g->r0);
	free(g->r1);
	free(g->inflight);
}

static inline struct nvl_vring_desc *
fg_desc_table(struct fake_guest *g)
{
	return (struct nvl_vring_desc *)(g->r0 + FG_DESC_OFF);
}

static inline struct nvl_vring_avail *
fg_avail(struct fake_guest *g)
{
	return (struct nvl_vring_avail *)(g->r0 + FG_AVAIL_OFF);
}

static inline struct nvl_vring_used *
fg_used(struct fake_guest *g)
{
	return (struct nvl_vring_used *)(g->r0 + FG_USED_OFF);
}

static inline void
fg_desc(struct fake_guest *g, uint16_t i, uint64_t gpa, uint32_t len, uint16_t flags,
	uint16_t next)
{
	struct nvl_vring_desc *d = &fg_desc_table(g)[i];

	d->addr = gpa;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

static inline void
fg_push(struct fake_guest *g, uint16_t head)
{
	struct nvl_vring_avail *a = fg_avail(g);

	a->ring[g->avail_idx % g->size] = head;
	g->avail_idx++;
	__atomic_store_n(&a->idx, g->avail_idx, __ATOMIC_RELEASE);
}

/* Ring parameters as vhost_user.c would hand them to a queue. */
static inline void
fg_setup(struct fake_guest *g, struct vring_setup *s, uint64_t features, bool inflight,
	 uint16_t base)
{
	memset(s, 0, sizeof(*s));
	s->size = g->size;
	s->desc = fg_desc_table(g);
	s->avail = fg_avail(g);
	s->used = fg_used(g);
	s->mem = &g->mem;
	s->features = features;
	s->inflight = inflight ? g->inflight : NULL;
	s->base = base;
}

#endif
