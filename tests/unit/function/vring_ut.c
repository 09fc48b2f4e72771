/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the guest memory table and the split virtqueue: address
 * translation at and across region boundaries, the descriptor-chain walker
 * against hostile chains, avail/used rings, event-idx notification, and the
 * inflight-region recovery after a simulated crash at each step.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "function/vhost_mem.c"
#include "function/vring.c"
#include "unit/function/fake_guest.h"

#define F_EVENT (1ULL << NVL_VIRTIO_RING_F_EVENT_IDX)
#define F_INDIRECT (1ULL << NVL_VIRTIO_RING_F_INDIRECT_DESC)
#define R 0
#define W NVL_VRING_DESC_F_WRITE
#define N NVL_VRING_DESC_F_NEXT

struct ctx {
	struct fake_guest g;
	struct vring vr;
	uint16_t batch[VHOST_MAX_RING];
	struct iovec iov[16];
	struct vring_chain ch;
};

static void
ctx_init(struct ctx *c, uint16_t size, uint64_t features, bool inflight)
{
	struct vring_setup s;

	fg_init(&c->g, size);
	fg_setup(&c->g, &s, features, inflight, 0);
	assert_int_equal(vring_init(&c->vr, &s, c->batch), 0);
	assert_int_equal(vring_recover(&c->vr, c->batch, false, 0), 0);
	memset(&c->ch, 0, sizeof(c->ch));
	c->ch.iov = c->iov;
	c->ch.max_iov = 16;
}

static void
test_mem_translate(void **state)
{
	struct ctx c;
	struct iovec iov[4];

	(void)state;
	ctx_init(&c, 16, 0, false);
	assert_ptr_equal(vhost_mem_gpa(&c.g.mem, FG_GPA0, 1), c.g.r0);
	assert_ptr_equal(vhost_mem_gpa(&c.g.mem, FG_GPA0 + FG_SIZE0 - 1, 1), c.g.r0 + FG_SIZE0 - 1);
	assert_null(vhost_mem_gpa(&c.g.mem, FG_GPA0 + FG_SIZE0 - 1, 2));   /* crosses: not contiguous */
	assert_null(vhost_mem_gpa(&c.g.mem, FG_GPA0 - 1, 1));
	assert_null(vhost_mem_gpa(&c.g.mem, UINT64_MAX, 2));
	assert_null(vhost_mem_gpa(&c.g.mem, FG_GPA0, UINT64_MAX));
	/* across the boundary: two iovecs, each in its own mapping */
	assert_int_equal(vhost_mem_gpa_iov(&c.g.mem, FG_GPA0 + FG_SIZE0 - 100, 300, iov, 4), 2);
	assert_ptr_equal(iov[0].iov_base, c.g.r0 + FG_SIZE0 - 100);
	assert_int_equal(iov[0].iov_len, 100);
	assert_ptr_equal(iov[1].iov_base, c.g.r1);
	assert_int_equal(iov[1].iov_len, 200);
	assert_int_equal(vhost_mem_gpa_iov(&c.g.mem, FG_GPA0 + FG_SIZE0 - 100, 300, iov, 1), -E2BIG);
	/* past the end of region 1, and wrapping past 2^64 */
	assert_int_equal(vhost_mem_gpa_iov(&c.g.mem, FG_GPA0 + FG_SIZE0 + FG_SIZE1 - 1, 2, iov, 4),
			 -EFAULT);
	assert_int_equal(vhost_mem_gpa_iov(&c.g.mem, UINT64_MAX - 10, 100, iov, 4), -EFAULT);
	assert_int_equal(vhost_mem_gpa_iov(&c.g.mem, FG_GPA0, 0, iov, 4), 0);
	/* front-end virtual addresses */
	assert_ptr_equal(vhost_mem_uva(&c.g.mem, 0x7f0000000000ULL + 8, 8), c.g.r0 + 8);
	assert_null(vhost_mem_uva(&c.g.mem, 0x7f0000000000ULL - 8, 16));
	fg_fini(&c.g);
}

static void
test_mem_map_rejects(void **state)
{
	struct nvl_vhost_memory tbl = { .nregions = 1 };
	struct vhost_mem *m = NULL;
	int fd = memfd_create("ut", MFD_CLOEXEC);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	tbl.regions[0] = (struct nvl_vhost_memory_region){ 0, 1 << 20, 0x1000, 0 };
	assert_int_equal(vhost_mem_map(&tbl, &fd, 1, &m), 0);
	assert_non_null(vhost_mem_gpa(m, 4096, 4096));
	vhost_mem_free(m);
	/* beyond the file, wrapping ranges, zero size, fd count mismatch */
	tbl.regions[0].memory_size = 2 << 20;
	assert_int_equal(vhost_mem_map(&tbl, &fd, 1, &m), -EINVAL);
	tbl.regions[0] = (struct nvl_vhost_memory_region){ UINT64_MAX - 10, 4096, 0, 0 };
	assert_int_equal(vhost_mem_map(&tbl, &fd, 1, &m), -EINVAL);
	tbl.regions[0] = (struct nvl_vhost_memory_region){ 0, 4096, UINT64_MAX, 0 };
	assert_int_equal(vhost_mem_map(&tbl, &fd, 1, &m), -EINVAL);
	tbl.regions[0] = (struct nvl_vhost_memory_region){ 0, 0, 0, 0 };
	assert_int_equal(vhost_mem_map(&tbl, &fd, 1, &m), -EINVAL);
	tbl.regions[0] = (struct nvl_vhost_memory_region){ 0, 4096, 0, UINT64_MAX - 100 };
	assert_int_equal(vhost_mem_map(&tbl, &fd, 1, &m), -EINVAL);
	tbl.regions[0] = (struct nvl_vhost_memory_region){ 0, 4096, 0, 0 };
	assert_int_equal(vhost_mem_map(&tbl, &fd, 0, &m), -EINVAL);
	tbl.nregions = 9;
	assert_int_equal(vhost_mem_map(&tbl, &fd, 1, &m), -EINVAL);
	close(fd);
}

static void
test_walk_good(void **state)
{
	struct ctx c;

	(void)state;
	ctx_init(&c, 16, 0, false);
	fg_desc(&c.g, 0, fg_gpa(FG_DATA_OFF), 16, R | N, 1);
	fg_desc(&c.g, 1, fg_gpa(FG_DATA_OFF + 4096), 4096, W | N, 2);
	fg_desc(&c.g, 2, fg_gpa(FG_DATA_OFF + 16), 1, W, 0);
	assert_int_equal(vring_walk(&c.vr, 0, &c.ch), 0);
	assert_int_equal(c.ch.niov, 3);
	assert_int_equal(c.ch.nread, 1);
	assert_int_equal(c.ch.rlen, 16);
	assert_int_equal(c.ch.wlen, 4097);
	assert_int_equal(c.ch.ndesc, 3);
	/* zero-length descriptors add nothing */
	fg_desc(&c.g, 1, fg_gpa(FG_DATA_OFF + 4096), 0, W | N, 2);
	assert_int_equal(vring_walk(&c.vr, 0, &c.ch), 0);
	assert_int_equal(c.ch.niov, 2);
	fg_fini(&c.g);
}

static void
test_walk_hostile(void **state)
{
	struct ctx c;

	(void)state;
	ctx_init(&c, 8, 0, false);
	/* a loop */
	fg_desc(&c.g, 0, fg_gpa(FG_DATA_OFF), 16, R | N, 1);
	fg_desc(&c.g, 1, fg_gpa(FG_DATA_OFF), 16, R | N, 0);
	assert_int_equal(vring_walk(&c.vr, 0, &c.ch), -EINVAL);
	/* a self loop on the last entry */
	fg_desc(&c.g, 7, fg_gpa(FG_DATA_OFF), 16, R | N, 7);
	assert_int_equal(vring_walk(&c.vr, 7, &c.ch), -EINVAL);
	/* next out of range, head out of range */
	fg_desc(&c.g, 0, fg_gpa(FG_DATA_OFF), 16, R | N, 8);
	assert_int_equal(vring_walk(&c.vr, 0, &c.ch), -EINVAL);
	assert_int_equal(vring_walk(&c.vr, 8, &c.ch), -EINVAL);
	/* readable after writable */
	fg_desc(&c.g, 0, fg_gpa(FG_DATA_OFF), 16, W | N, 1);
	fg_desc(&c.g, 1, fg_gpa(FG_DATA_OFF), 16, R, 0);
	assert_int_equal(vring_walk(&c.vr, 0, &c.ch), -EINVAL);
	/* outside guest memory, and wrapping */
	fg_desc(&c.g, 0, 0x1000, 16, R, 0);
	assert_int_equal(vring_walk(&c.vr, 0, &c.ch), -EFAULT);
	fg_desc(&c.g, 0, UINT64_MAX - 4, 16, R, 0);
	assert_int_equal(vring_walk(&c.vr, 0, &c.ch), -EFAULT);
	fg_desc(&c.g, 0, fg_gpa(FG_SIZE0 + FG_SIZE1 - 8), 16, R, 0);
	assert_int_equal(vring_walk(&c.vr, 0, &c.ch), -EFAULT);
	/* more iovecs than the caller has room for */
	for (uint16_t i = 0; i < 8; i++)
		fg_desc(&c.g, i, fg_gpa(FG_SIZE0 - 8), 16, R | (i < 7 ? N : 0), i + 1);
	c.ch.max_iov = 4;
	assert_int_equal(vring_walk(&c.vr, 0, &c.ch), -E2BIG);
	/* indirect without the feature */
	fg_desc(&c.g, 0, fg_gpa(FG_DATA_OFF), 32, NVL_VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(vring_walk(&c.vr, 0, &c.ch), -EINVAL);
	fg_fini(&c.g);
}

static void
test_walk_indirect(void **state)
{
	struct ctx c;
	struct nvl_vring_desc *t;

	(void)state;
	ctx_init(&c, 8, F_INDIRECT, false);
	t = (struct nvl_vring_desc *)(c.g.r0 + FG_DATA_OFF + 0x10000);
	t[0] = (struct nvl_vring_desc){ fg_gpa(FG_DATA_OFF), 16, N, 1 };
	t[1] = (struct nvl_vring_desc){ fg_gpa(FG_DATA_OFF + 512), 512, W | N, 2 };
	t[2] = (struct nvl_vring_desc){ fg_gpa(FG_DATA_OFF + 16), 1, W, 0 };
	fg_desc(&c.g, 3, fg_gpa(FG_DATA_OFF + 0x10000), 3 * 16, NVL_VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(vring_walk(&c.vr, 3, &c.ch), 0);
	assert_int_equal(c.ch.niov, 3);
	assert_int_equal(c.ch.wlen, 513);
	/* a loop inside the table */
	t[2] = (struct nvl_vring_desc){ fg_gpa(FG_DATA_OFF + 16), 1, W | N, 0 };
	assert_int_equal(vring_walk(&c.vr, 3, &c.ch), -EINVAL);
	/* nested indirect */
	t[2] = (struct nvl_vring_desc){ fg_gpa(FG_DATA_OFF), 16, NVL_VRING_DESC_F_INDIRECT, 0 };
	assert_int_equal(vring_walk(&c.vr, 3, &c.ch), -EINVAL);
	/* INDIRECT together with NEXT; bad table lengths; table outside memory */
	fg_desc(&c.g, 3, fg_gpa(FG_DATA_OFF + 0x10000), 48, NVL_VRING_DESC_F_INDIRECT | N, 4);
	assert_int_equal(vring_walk(&c.vr, 3, &c.ch), -EINVAL);
	fg_desc(&c.g, 3, fg_gpa(FG_DATA_OFF + 0x10000), 47, NVL_VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(vring_walk(&c.vr, 3, &c.ch), -EINVAL);
	fg_desc(&c.g, 3, fg_gpa(FG_DATA_OFF + 0x10000), 0, NVL_VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(vring_walk(&c.vr, 3, &c.ch), -EINVAL);
	fg_desc(&c.g, 3, 0x10, 48, NVL_VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(vring_walk(&c.vr, 3, &c.ch), -EFAULT);
	/* a huge table made of the whole region: bounded by its own length */
	fg_desc(&c.g, 3, fg_gpa(0), 32768 * 16, NVL_VRING_DESC_F_INDIRECT, 0);
	memset(c.g.r0, 0, 32768 * 16);
	for (unsigned i = 0; i < 32768; i++)
		((struct nvl_vring_desc *)c.g.r0)[i] = (struct nvl_vring_desc){ 0, 0, N,
			(uint16_t)((i + 1) % 32768) };
	assert_int_equal(vring_walk(&c.vr, 3, &c.ch), -EINVAL);
	fg_fini(&c.g);
}

static void
test_pop_broken(void **state)
{
	struct ctx c;
	uint16_t head;

	(void)state;
	ctx_init(&c, 8, 0, false);
	assert_int_equal(vring_pop(&c.vr, &head), 0);
	fg_push(&c.g, 5);
	assert_int_equal(vring_pop(&c.vr, &head), 1);
	assert_int_equal(head, 5);
	fg_push(&c.g, 8);           /* head out of range */
	assert_int_equal(vring_pop(&c.vr, &head), -EIO);
	fg_avail(&c.g)->idx = 100;  /* more than the ring size ahead */
	assert_int_equal(vring_avail_count(&c.vr), -EIO);
	fg_fini(&c.g);
}

static void
test_used_and_notify(void **state)
{
	struct ctx c;
	uint16_t *used_event;

	(void)state;
	ctx_init(&c, 8, F_EVENT, false);
	used_event = &fg_avail(&c.g)->ring[8];
	vring_used_add(&c.vr, 3, 10);
	assert_int_equal(fg_used(&c.g)->idx, 0);    /* not visible before the flush */
	assert_true(vring_used_flush(&c.vr));        /* first one always notifies */
	assert_int_equal(fg_used(&c.g)->idx, 1);
	assert_int_equal(fg_used(&c.g)->ring[0].id, 3);
	assert_int_equal(fg_used(&c.g)->ring[0].len, 10);
	assert_false(vring_used_flush(&c.vr));       /* nothing new */
	*used_event = 5;                             /* driver: wake me after entry 5 */
	vring_used_add(&c.vr, 1, 1);
	assert_false(vring_used_flush(&c.vr));       /* idx 2 */
	for (int i = 0; i < 4; i++)
		vring_used_add(&c.vr, (uint16_t)i, 1);
	assert_true(vring_used_flush(&c.vr));        /* idx 6 crossed 5 */
	/* kick suppression: avail_event follows last_avail_idx */
	c.vr.last_avail_idx = 7;
	fg_avail(&c.g)->idx = 7;
	assert_false(vring_kick_enable(&c.vr));
	assert_int_equal(*vring_avail_event(&c.vr), 7);
	fg_fini(&c.g);

	ctx_init(&c, 8, 0, false);
	fg_avail(&c.g)->flags = NVL_VRING_AVAIL_F_NO_INTERRUPT;
	vring_used_add(&c.vr, 0, 1);
	assert_false(vring_used_flush(&c.vr));
	fg_avail(&c.g)->flags = 0;
	vring_used_add(&c.vr, 1, 1);
	assert_true(vring_used_flush(&c.vr));
	vring_kick_disable(&c.vr);
	assert_int_equal(fg_used(&c.g)->flags, NVL_VRING_USED_F_NO_NOTIFY);
	assert_false(vring_kick_enable(&c.vr));
	assert_int_equal(fg_used(&c.g)->flags, 0);
	fg_push(&c.g, 0);
	assert_true(vring_kick_enable(&c.vr));
	fg_fini(&c.g);
}

/* Take n heads from the ring and flag them in flight. */
static void
take(struct ctx *c, const uint16_t *heads, unsigned n)
{
	uint16_t h;

	for (unsigned i = 0; i < n; i++) {
		fg_push(&c->g, heads[i]);
		assert_int_equal(vring_pop(&c->vr, &h), 1);
		assert_int_equal(h, heads[i]);
		vring_inflight_start(&c->vr, h);
	}
}

/* A "restarted daemon": a new vring over the same guest memory and region. */
static int
restart(struct ctx *c, uint16_t *heads, uint16_t base)
{
	struct vring_setup s;

	fg_setup(&c->g, &s, 0, true, base);
	assert_int_equal(vring_init(&c->vr, &s, c->batch), 0);
	return vring_recover(&c->vr, heads, false, base);
}

static void
test_inflight_recovery(void **state)
{
	static const uint16_t taken[] = { 4, 0, 6, 2 };
	struct ctx c;
	uint16_t heads[8];
	int n;

	(void)state;
	ctx_init(&c, 8, 0, true);
	assert_int_equal(((struct nvl_vhost_inflight_split *)c.g.inflight)->version, 1);
	take(&c, taken, 4);
	/* complete out of order: 0 and 2; 4 and 6 stay in flight */
	vring_used_add(&c.vr, 0, 1);
	vring_used_add(&c.vr, 2, 1);
	vring_used_flush(&c.vr);
	/* crash; QEMU hands back the region and its used index as base */
	n = restart(&c, heads, fg_used(&c.g)->idx);
	assert_int_equal(n, 2);
	assert_int_equal(heads[0], 4);   /* submission order */
	assert_int_equal(heads[1], 6);
	assert_int_equal(c.vr.last_avail_idx, 4);   /* 2 used + 2 in flight */
	assert_int_equal(c.vr.used_idx, 2);
	/* the new life goes on with larger counters: complete 6 then recover again */
	vring_used_add(&c.vr, 6, 1);
	vring_used_flush(&c.vr);
	{
		static const uint16_t more[] = { 1 };

		take(&c, more, 1);
	}
	n = restart(&c, heads, 0);
	assert_int_equal(n, 2);
	assert_int_equal(heads[0], 4);
	assert_int_equal(heads[1], 1);
	assert_int_equal(c.vr.last_avail_idx, 5);
	fg_fini(&c.g);
}

static void
test_inflight_crash_mid_batch(void **state)
{
	static const uint16_t taken[] = { 1, 2, 3 };
	struct ctx c;
	struct nvl_vhost_inflight_split *inf;
	uint16_t heads[8];
	int n;

	(void)state;
	ctx_init(&c, 8, 0, true);
	inf = c.g.inflight;
	take(&c, taken, 3);
	/* a batch of two reaches used->idx, then the daemon dies before the flags clear */
	vring_used_add(&c.vr, 3, 1);
	vring_used_add(&c.vr, 1, 1);
	__atomic_store_n(&fg_used(&c.g)->idx, c.vr.used_idx, __ATOMIC_RELEASE);
	assert_int_equal(inf->desc[1].inflight, 1);
	assert_int_equal(inf->used_idx, 0);
	n = restart(&c, heads, 2);
	assert_int_equal(n, 1);
	assert_int_equal(heads[0], 2);
	assert_int_equal(inf->used_idx, 2);
	assert_int_equal(inf->desc[3].inflight, 0);
	assert_int_equal(c.vr.last_avail_idx, 3);

	/* died after the used element, before used->idx: still in flight */
	vring_used_add(&c.vr, 2, 1);
	n = restart(&c, heads, 2);
	assert_int_equal(n, 1);
	assert_int_equal(heads[0], 2);

	/* a corrupt region (used index far off, wrong size) is refused */
	inf->used_idx = 200;
	assert_int_equal(restart(&c, heads, 2), -EINVAL);
	inf->used_idx = 2;
	inf->desc_num = 16;
	assert_int_equal(restart(&c, heads, 2), -EINVAL);
	fg_fini(&c.g);
}

static void
test_in_order_without_region(void **state)
{
	struct ctx c;
	struct vring_setup s;
	uint16_t heads[8];

	(void)state;
	ctx_init(&c, 8, 0, false);
	fg_used(&c.g)->idx = 5;
	fg_setup(&c.g, &s, 0, false, 9);
	assert_int_equal(vring_init(&c.vr, &s, c.batch), 0);
	assert_int_equal(vring_recover(&c.vr, heads, true, 9), 0);
	assert_int_equal(c.vr.last_avail_idx, 5);
	assert_int_equal(vring_recover(&c.vr, heads, false, 9), 0);
	assert_int_equal(c.vr.last_avail_idx, 9);
	fg_fini(&c.g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mem_translate),
		cmocka_unit_test(test_mem_map_rejects),
		cmocka_unit_test(test_walk_good),
		cmocka_unit_test(test_walk_hostile),
		cmocka_unit_test(test_walk_indirect),
		cmocka_unit_test(test_pop_broken),
		cmocka_unit_test(test_used_and_notify),
		cmocka_unit_test(test_inflight_recovery),
		cmocka_unit_test(test_inflight_crash_mid_batch),
		cmocka_unit_test(test_in_order_without_region),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
