/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the virtio-blk device over a fake guest: every request type
 * end to end against a RAM bdev (data really lands in / comes from guest
 * buffers), the statuses a malicious or buggy guest gets, force_in_order
 * completion order, and resubmission of held requests after a simulated
 * daemon crash. No reactor runs: the tests call the queue's poll directly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "function/vblk.c"
#include "function/vblk_queue.c"
#include "unit/function/fake_guest.h"
#include "common/ut.h"

#include <sys/eventfd.h>

#define R 0
#define W NVL_VRING_DESC_F_WRITE
#define N NVL_VRING_DESC_F_NEXT
#define SLOT(k) (FG_DATA_OFF + (uint64_t)(k) * 0x10000)   /* per-request area */
#define HDR(k) SLOT(k)
#define STATUS(k) (SLOT(k) + 0x100)
#define DATA(k) (SLOT(k) + 0x1000)

/* ---- a bdev that holds I/Os until the test completes them ---- */
static struct nvl_bdev_io *g_held[64];
static unsigned g_nheld;
static int g_hold_refuse = -1;   /* refuse the I/O that would be held at this index */

static int
hold_submit(struct nvl_bdev *b, struct nvl_bdev_io *io)
{
	(void)b;
	if ((int)g_nheld == g_hold_refuse)
		return -ENOSPC;
	assert_true(g_nheld < 64);
	g_held[g_nheld++] = io;
	return 0;
}

static void
hold_destroy(struct nvl_bdev *b)
{
	(void)b;
}

static const struct nvl_bdev_ops hold_ops = {
	.name = "hold", .submit = hold_submit, .destroy = hold_destroy,
};
static struct nvl_bdev g_hold_bdev = {
	.name = "hold0", .ops = &hold_ops, .block_size = 512, .num_blocks = 8192,
	.io_types = (1u << NVL_BDEV_IO_READ) | (1u << NVL_BDEV_IO_WRITE) | (1u << NVL_BDEV_IO_FLUSH),
};

static int
setup_bdevs(void **state)
{
	struct nvl_bdev_ram_opts o = { .name = "ram0", .num_blocks = 16384, .block_size = 512 };
	struct nvl_bdev_ram_opts o4 = { .name = "ram4k", .num_blocks = 2048, .block_size = 4096 };
	struct nvl_bdev *b;

	(void)state;
	assert_int_equal(nvl_bdev_ram_create(&o, &b), 0);
	assert_int_equal(nvl_bdev_ram_create(&o4, &b), 0);
	assert_int_equal(nvl_bdev_register(&g_hold_bdev), 0);
	return 0;
}

static int
teardown_bdevs(void **state)
{
	(void)state;
	nvl_bdev_fini();
	return 0;
}

struct t {
	struct fake_guest g;
	struct nvl_vblk *c;
	struct vblk_queue *q;
	uint16_t seen_used;
};

static void
t_queue(struct t *t, uint16_t base)
{
	struct vhost_queue_params p = { .kickfd = -1, .callfd = -1 };

	fg_setup(&t->g, &p.ring, (1ULL << NVL_VIRTIO_RING_F_INDIRECT_DESC), true, base);
	assert_int_equal(vblk_queue_alloc(t->c, 0, &p, &t->q), 0);
	t->c->queues[0] = t->q;
	vblk_q_resubmit(t->q);
}

static void
t_init(struct t *t, const char *bdev, bool ro, bool in_order)
{
	memset(t, 0, sizeof(*t));
	fg_init(&t->g, 64);
	t->c = calloc(1, sizeof(*t->c));
	nvl_strlcpy(t->c->name, "ut-ctrl", sizeof(t->c->name));
	t->c->num_queues = 1;
	t->c->queue_size = 256;
	t->c->read_only = ro;
	t->c->force_in_order = in_order;
	assert_int_equal(nvl_bdev_open(bdev, !ro, "ut", &t->c->desc), 0);
	t->c->bdev = t->c->desc->bdev;
	t_queue(t, 0);
}

static void
t_crash(struct t *t)
{
	/* the daemon dies: its queue vanishes with whatever was in flight */
	t->c->queues[0] = NULL;
	vblk_q_free(t->q);
	t->q = NULL;
	g_nheld = 0;
}

static void
t_fini(struct t *t)
{
	if (t->q)
		vblk_q_free(t->q);
	nvl_bdev_close(t->c->desc);
	free(t->c);
	fg_fini(&t->g);
	g_nheld = 0;
}

static void *
gptr(struct t *t, uint64_t off)
{
	return t->g.r0 + off;
}

/* Build a request in slot k on descriptors 3k..3k+2: header, data, status. */
static uint16_t
req3(struct t *t, unsigned k, uint32_t type, uint64_t sector, uint32_t dlen, uint16_t dflags)
{
	struct nvl_virtio_blk_outhdr *h = gptr(t, HDR(k));
	uint16_t d0 = (uint16_t)(3 * k);

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	*(uint8_t *)gptr(t, STATUS(k)) = 0xee;
	if (dlen) {
		fg_desc(&t->g, d0, fg_gpa(HDR(k)), 16, R | N, d0 + 1);
		fg_desc(&t->g, d0 + 1, fg_gpa(DATA(k)), dlen, dflags | N, d0 + 2);
	} else {
		fg_desc(&t->g, d0, fg_gpa(HDR(k)), 16, R | N, d0 + 2);
	}
	fg_desc(&t->g, d0 + 2, fg_gpa(STATUS(k)), 1, W, 0);
	return d0;
}

static uint8_t
status(struct t *t, unsigned k)
{
	return *(uint8_t *)gptr(t, STATUS(k));
}

/* Submit head, poll, return the used element it got. */
static struct nvl_vring_used_elem
run(struct t *t, uint16_t head)
{
	struct nvl_vring_used_elem e;

	fg_push(&t->g, head);
	vblk_q_poll(t->q);
	assert_int_equal(fg_used(&t->g)->idx, (uint16_t)(t->seen_used + 1));
	e = fg_used(&t->g)->ring[t->seen_used % t->g.size];
	t->seen_used++;
	assert_int_equal(e.id, head);
	return e;
}

static void
test_rw_flush_id(void **state)
{
	struct t t;
	struct nvl_vring_used_elem e;
	uint16_t h;

	(void)state;
	t_init(&t, "ram0", false, false);
	for (unsigned i = 0; i < 4096; i++)
		((uint8_t *)gptr(&t, DATA(0)))[i] = (uint8_t)(i * 7 + 1);
	h = req3(&t, 0, NVL_VIRTIO_BLK_T_OUT, 8, 4096, R);
	e = run(&t, h);
	assert_int_equal(status(&t, 0), NVL_VIRTIO_BLK_S_OK);
	assert_int_equal(e.len, 1);
	h = req3(&t, 1, NVL_VIRTIO_BLK_T_IN, 8, 4096, W);
	e = run(&t, h);
	assert_int_equal(status(&t, 1), NVL_VIRTIO_BLK_S_OK);
	assert_int_equal(e.len, 4097);
	assert_memory_equal(gptr(&t, DATA(0)), gptr(&t, DATA(1)), 4096);

	h = req3(&t, 2, NVL_VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	run(&t, h);
	assert_int_equal(status(&t, 2), NVL_VIRTIO_BLK_S_OK);
	h = req3(&t, 3, NVL_VIRTIO_BLK_T_GET_ID, 0, 20, W);
	e = run(&t, h);
	assert_int_equal(status(&t, 3), NVL_VIRTIO_BLK_S_OK);
	assert_int_equal(e.len, 21);
	assert_string_equal((char *)gptr(&t, DATA(3)), "ut-ctrl");
	h = req3(&t, 4, 77, 0, 0, 0);
	run(&t, h);
	assert_int_equal(status(&t, 4), NVL_VIRTIO_BLK_S_UNSUPP);

	/* data crossing the region 0 / region 1 boundary: two iovecs, one I/O */
	{
		uint64_t off = FG_SIZE0 - 1024;
		uint8_t *p0 = t.g.r0 + off, *p1 = t.g.r1;

		memset(p0, 0xab, 1024);
		memset(p1, 0xcd, 1024);
		h = req3(&t, 5, NVL_VIRTIO_BLK_T_OUT, 64, 2048, R);
		fg_desc(&t.g, h + 1, fg_gpa(off), 2048, R | N, h + 2);
		run(&t, h);
		assert_int_equal(status(&t, 5), NVL_VIRTIO_BLK_S_OK);
		h = req3(&t, 6, NVL_VIRTIO_BLK_T_IN, 64, 2048, W);
		run(&t, h);
		assert_memory_equal(gptr(&t, DATA(6)), p0, 1024);
		assert_memory_equal((uint8_t *)gptr(&t, DATA(6)) + 1024, p1, 1024);
	}
	assert_int_equal(t.q->inflight, 0);
	t_fini(&t);
}

static void
test_discard_write_zeroes(void **state)
{
	struct nvl_virtio_blk_discard_write_zeroes *seg;
	struct t t;
	uint16_t h;

	(void)state;
	t_init(&t, "ram0", false, false);
	memset(gptr(&t, DATA(0)), 0x5a, 4096);
	run(&t, req3(&t, 0, NVL_VIRTIO_BLK_T_OUT, 0, 4096, R));
	/* write zeroes (unmap allowed) over the first 1024 bytes */
	h = req3(&t, 1, NVL_VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, R);
	seg = gptr(&t, DATA(1));
	*seg = (struct nvl_virtio_blk_discard_write_zeroes){ 0, 2, NVL_VIRTIO_BLK_WZ_FLAG_UNMAP };
	run(&t, h);
	assert_int_equal(status(&t, 1), NVL_VIRTIO_BLK_S_OK);
	/* discard sectors 2..3 */
	h = req3(&t, 2, NVL_VIRTIO_BLK_T_DISCARD, 0, 16, R);
	seg = gptr(&t, DATA(2));
	*seg = (struct nvl_virtio_blk_discard_write_zeroes){ 2, 2, 0 };
	run(&t, h);
	assert_int_equal(status(&t, 2), NVL_VIRTIO_BLK_S_OK);
	memset(gptr(&t, DATA(3)), 0xff, 4096);
	run(&t, req3(&t, 3, NVL_VIRTIO_BLK_T_IN, 0, 4096, W));
	for (unsigned i = 0; i < 4096; i++)
		assert_int_equal(((uint8_t *)gptr(&t, DATA(3)))[i], i < 2048 ? 0 : 0x5a);
	/* discard with the unmap flag, unknown flags, two segments: UNSUPP */
	h = req3(&t, 4, NVL_VIRTIO_BLK_T_DISCARD, 0, 16, R);
	*(struct nvl_virtio_blk_discard_write_zeroes *)gptr(&t, DATA(4)) =
		(struct nvl_virtio_blk_discard_write_zeroes){ 0, 1, NVL_VIRTIO_BLK_WZ_FLAG_UNMAP };
	run(&t, h);
	assert_int_equal(status(&t, 4), NVL_VIRTIO_BLK_S_UNSUPP);
	h = req3(&t, 5, NVL_VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, R);
	*(struct nvl_virtio_blk_discard_write_zeroes *)gptr(&t, DATA(5)) =
		(struct nvl_virtio_blk_discard_write_zeroes){ 0, 1, 0x80 };
	run(&t, h);
	assert_int_equal(status(&t, 5), NVL_VIRTIO_BLK_S_UNSUPP);
	h = req3(&t, 6, NVL_VIRTIO_BLK_T_DISCARD, 0, 32, R);
	run(&t, h);
	assert_int_equal(status(&t, 6), NVL_VIRTIO_BLK_S_UNSUPP);
	/* past the end, zero sectors, a bad segment size: IOERR */
	h = req3(&t, 7, NVL_VIRTIO_BLK_T_DISCARD, 0, 16, R);
	*(struct nvl_virtio_blk_discard_write_zeroes *)gptr(&t, DATA(7)) =
		(struct nvl_virtio_blk_discard_write_zeroes){ 16383, 2, 0 };
	run(&t, h);
	assert_int_equal(status(&t, 7), NVL_VIRTIO_BLK_S_IOERR);
	*(struct nvl_virtio_blk_discard_write_zeroes *)gptr(&t, DATA(7)) =
		(struct nvl_virtio_blk_discard_write_zeroes){ 0, 0, 0 };
	run(&t, h);
	assert_int_equal(status(&t, 7), NVL_VIRTIO_BLK_S_IOERR);
	h = req3(&t, 8, NVL_VIRTIO_BLK_T_DISCARD, 0, 12, R);
	run(&t, h);
	assert_int_equal(status(&t, 8), NVL_VIRTIO_BLK_S_IOERR);
	t_fini(&t);
}

static void
test_malicious(void **state)
{
	struct nvl_vring_used_elem e;
	struct t t;
	uint16_t h;

	(void)state;
	t_init(&t, "ram4k", false, false);
	/* out of range, misaligned for 4 KiB blocks, sector overflow */
	run(&t, req3(&t, 0, NVL_VIRTIO_BLK_T_IN, 2048 * 8, 4096, W));
	assert_int_equal(status(&t, 0), NVL_VIRTIO_BLK_S_IOERR);
	e = run(&t, req3(&t, 1, NVL_VIRTIO_BLK_T_IN, 1, 4096, W));
	assert_int_equal(status(&t, 1), NVL_VIRTIO_BLK_S_IOERR);
	assert_int_equal(e.len, 1);
	run(&t, req3(&t, 2, NVL_VIRTIO_BLK_T_OUT, UINT64_MAX / 256, 4096, R));
	assert_int_equal(status(&t, 2), NVL_VIRTIO_BLK_S_IOERR);
	/* wrong directions: read into device-readable data, write from writable data */
	run(&t, req3(&t, 3, NVL_VIRTIO_BLK_T_IN, 0, 4096, R));
	assert_int_equal(status(&t, 3), NVL_VIRTIO_BLK_S_IOERR);
	run(&t, req3(&t, 4, NVL_VIRTIO_BLK_T_OUT, 0, 4096, W));
	assert_int_equal(status(&t, 4), NVL_VIRTIO_BLK_S_IOERR);
	/* zero-length read/write */
	run(&t, req3(&t, 5, NVL_VIRTIO_BLK_T_IN, 0, 0, 0));
	assert_int_equal(status(&t, 5), NVL_VIRTIO_BLK_S_IOERR);
	run(&t, req3(&t, 6, NVL_VIRTIO_BLK_T_OUT, 0, 0, 0));
	assert_int_equal(status(&t, 6), NVL_VIRTIO_BLK_S_IOERR);
	/* short header */
	h = req3(&t, 7, NVL_VIRTIO_BLK_T_IN, 0, 4096, W);
	fg_desc(&t.g, h, fg_gpa(HDR(7)), 8, R | N, h + 1);
	run(&t, h);
	assert_int_equal(status(&t, 7), NVL_VIRTIO_BLK_S_IOERR);
	/* no device-writable byte at all: no status, used length 0 */
	h = req3(&t, 8, NVL_VIRTIO_BLK_T_OUT, 0, 4096, R);
	fg_desc(&t.g, h + 1, fg_gpa(DATA(8)), 4096, R, 0);
	e = run(&t, h);
	assert_int_equal(e.len, 0);
	assert_int_equal(status(&t, 8), 0xee);
	/* a descriptor loop, a buffer outside guest memory: used length 0, no write */
	h = req3(&t, 9, NVL_VIRTIO_BLK_T_IN, 0, 4096, W);
	fg_desc(&t.g, h + 2, fg_gpa(STATUS(9)), 1, W | N, h);
	e = run(&t, h);
	assert_int_equal(e.len, 0);
	h = req3(&t, 10, NVL_VIRTIO_BLK_T_IN, 0, 4096, W);
	fg_desc(&t.g, h + 1, 0x10000000000ULL, 4096, W | N, h + 2);
	e = run(&t, h);
	assert_int_equal(e.len, 0);
	assert_int_equal(status(&t, 10), 0xee);
	/* a status split over two descriptors: the last byte is the status */
	h = req3(&t, 11, NVL_VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	fg_desc(&t.g, h + 2, fg_gpa(STATUS(11) - 3), 4, W, 0);
	run(&t, h);
	assert_int_equal(status(&t, 11), NVL_VIRTIO_BLK_S_OK);
	assert_int_equal(t.q->inflight, 0);
	assert_false(t.q->broken);
	/* a head taken twice while in flight: the queue stops, nothing is touched twice */
	t_fini(&t);

	t_init(&t, "hold0", false, false);
	h = req3(&t, 0, NVL_VIRTIO_BLK_T_IN, 0, 512, W);
	fg_push(&t.g, h);
	fg_push(&t.g, h);
	vblk_q_poll(t.q);
	assert_true(t.q->broken);
	assert_int_equal(g_nheld, 1);
	nvl_bdev_io_complete(g_held[0], 0);
	assert_int_equal(fg_used(&t.g)->idx, 1);
	assert_int_equal(vblk_q_poll(t.q), 0);
	t_fini(&t);
}

static void
test_read_only(void **state)
{
	struct t t;

	(void)state;
	t_init(&t, "ram0", true, false);
	assert_true(vblk_features(t.c) & (1ULL << NVL_VIRTIO_BLK_F_RO));
	assert_false(vblk_features(t.c) & (1ULL << NVL_VIRTIO_BLK_F_DISCARD));
	run(&t, req3(&t, 0, NVL_VIRTIO_BLK_T_OUT, 0, 512, R));
	assert_int_equal(status(&t, 0), NVL_VIRTIO_BLK_S_IOERR);
	run(&t, req3(&t, 1, NVL_VIRTIO_BLK_T_IN, 0, 512, W));
	assert_int_equal(status(&t, 1), NVL_VIRTIO_BLK_S_OK);
	t_fini(&t);
}

static void
test_config(void **state)
{
	struct nvl_virtio_blk_config cfg;
	struct t t;
	uint8_t buf[256];

	(void)state;
	t_init(&t, "ram4k", false, false);
	t.c->num_queues = 4;
	t.c->vdev.ctx = t.c;
	vblk_fill_config(t.c, &cfg);
	assert_int_equal(cfg.capacity, 2048 * 8);
	assert_int_equal(cfg.blk_size, 4096);
	assert_int_equal(cfg.seg_max, VBLK_SEG_MAX);
	assert_int_equal(cfg.num_queues, 4);
	assert_int_equal(cfg.max_discard_seg, 1);
	assert_int_equal(cfg.discard_sector_alignment, 8);
	assert_int_equal(cfg.max_write_zeroes_seg, 1);
	assert_int_equal(cfg.write_zeroes_may_unmap, 1);
	memset(buf, 0xff, sizeof(buf));
	vblk_get_config(&t.c->vdev, buf, 20, 4);
	assert_int_equal(*(uint32_t *)buf, 4096);
	memset(buf, 0, sizeof(buf));
	vblk_get_config(&t.c->vdev, buf, 60, 100);   /* partly past our struct: zeroes */
	vblk_get_config(&t.c->vdev, buf, 200, 50);
	t.c->num_queues = 1;
	t_fini(&t);
}

static void
test_in_order(void **state)
{
	struct t t;
	uint16_t heads[4];

	(void)state;
	t_init(&t, "hold0", false, true);
	for (unsigned k = 0; k < 4; k++) {
		heads[k] = req3(&t, k, NVL_VIRTIO_BLK_T_OUT, k * 8, 512, R);
		fg_push(&t.g, heads[k]);
	}
	vblk_q_poll(t.q);
	assert_int_equal(g_nheld, 4);
	/* the bdev finishes them backwards; nothing may be used before the first */
	nvl_bdev_io_complete(g_held[3], 0);
	nvl_bdev_io_complete(g_held[2], 0);
	assert_int_equal(fg_used(&t.g)->idx, 0);
	nvl_bdev_io_complete(g_held[0], 0);
	assert_int_equal(fg_used(&t.g)->idx, 1);
	nvl_bdev_io_complete(g_held[1], -EIO);
	assert_int_equal(fg_used(&t.g)->idx, 4);
	for (unsigned k = 0; k < 4; k++)
		assert_int_equal(fg_used(&t.g)->ring[k].id, heads[k]);
	assert_int_equal(status(&t, 1), NVL_VIRTIO_BLK_S_IOERR);
	assert_int_equal(status(&t, 2), NVL_VIRTIO_BLK_S_OK);
	t_fini(&t);
}

static void
run_crash_recovery(bool in_order)
{
	struct t t;
	uint16_t heads[5];

	t_init(&t, "hold0", false, in_order);
	for (unsigned k = 0; k < 5; k++) {
		heads[k] = req3(&t, k, NVL_VIRTIO_BLK_T_OUT, k * 8, 512, R);
		fg_push(&t.g, heads[k]);
	}
	vblk_q_poll(t.q);
	assert_int_equal(g_nheld, 5);
	/* 1 and 3 finish (published unless in order), then the daemon is killed */
	nvl_bdev_io_complete(g_held[1], 0);
	nvl_bdev_io_complete(g_held[3], 0);
	t_crash(&t);
	/* the new daemon gets the same region; QEMU's base is its used index */
	t.c->last_resubmitted = 0;
	t_queue(&t, fg_used(&t.g)->idx);
	assert_int_equal(t.c->last_resubmitted, in_order ? 5 : 3);
	assert_int_equal(g_nheld, in_order ? 5 : 3);
	/* resubmitted in submission order */
	if (in_order) {
		for (unsigned i = 0; i < 5; i++)
			assert_int_equal(g_held[i]->offset, i * 8 * 512);
	} else {
		assert_int_equal(g_held[0]->offset, 0);
		assert_int_equal(g_held[1]->offset, 2 * 8 * 512);
		assert_int_equal(g_held[2]->offset, 4 * 8 * 512);
	}
	for (unsigned i = 0; i < g_nheld; i++)
		nvl_bdev_io_complete(g_held[i], 0);
	assert_int_equal(fg_used(&t.g)->idx, 5);
	assert_int_equal(t.q->inflight, 0);
	/* every head exactly once in the used ring */
	{
		unsigned seen = 0;

		for (unsigned i = 0; i < 5; i++)
			seen |= 1u << (fg_used(&t.g)->ring[i].id / 3);
		assert_int_equal(seen, 0x1f);
	}
	/* new requests continue after the recovered ones */
	g_nheld = 0;
	fg_push(&t.g, req3(&t, 5, NVL_VIRTIO_BLK_T_OUT, 80, 512, R));
	vblk_q_poll(t.q);
	assert_int_equal(g_nheld, 1);
	nvl_bdev_io_complete(g_held[0], 0);
	assert_int_equal(fg_used(&t.g)->idx, 6);
	t_fini(&t);
}

static void
test_crash_recovery(void **state)
{
	(void)state;
	run_crash_recovery(false);
	run_crash_recovery(true);
}

static uint64_t
iov_total(const struct nvl_bdev_io *io)
{
	uint64_t n = 0;

	for (int i = 0; i < io->iovcnt; i++)
		n += io->iov[i].iov_len;
	return n;
}

/* Requests longer than the bdev's max_io_bytes are split, not failed. */
static void
test_split_large(void **state)
{
	struct nvl_bdev *ram = nvl_bdev_get_by_name("ram0");
	struct nvl_vring_used_elem e;
	uint64_t off = FG_SIZE0 - 6000;   /* data crosses into region 1 mid-part */
	uint8_t *pat;
	struct t t;
	uint16_t h;

	(void)state;
	/* data round trip through parts that straddle iovec boundaries */
	t_init(&t, "ram0", false, false);
	ram->max_io_bytes = 4096 + 100;   /* parts of 4096: rounded down to blocks */
	pat = malloc(20480);
	for (unsigned i = 0; i < 20480; i++)
		pat[i] = (uint8_t)(i * 31 + 7);
	memcpy(t.g.r0 + off, pat, 6000);
	memcpy(t.g.r1, pat + 6000, 20480 - 6000);
	h = req3(&t, 0, NVL_VIRTIO_BLK_T_OUT, 40, 20480, R);
	fg_desc(&t.g, h + 1, fg_gpa(off), 20480, R | N, h + 2);
	run(&t, h);
	assert_int_equal(status(&t, 0), NVL_VIRTIO_BLK_S_OK);
	ram->max_io_bytes = 0;
	e = run(&t, req3(&t, 1, NVL_VIRTIO_BLK_T_IN, 40, 20480, W));
	assert_int_equal(status(&t, 1), NVL_VIRTIO_BLK_S_OK);
	assert_int_equal(e.len, 20481);
	assert_memory_equal(gptr(&t, DATA(1)), pat, 20480);
	/* and a split read of what an unsplit write stored */
	ram->max_io_bytes = 8192;
	memset(gptr(&t, DATA(2)), 0, 20480);
	e = run(&t, req3(&t, 2, NVL_VIRTIO_BLK_T_IN, 40, 20480, W));
	assert_int_equal(status(&t, 2), NVL_VIRTIO_BLK_S_OK);
	assert_int_equal(e.len, 20481);
	assert_memory_equal(gptr(&t, DATA(2)), pat, 20480);
	/* a limit below one block cannot be met */
	ram->max_io_bytes = 256;
	run(&t, req3(&t, 3, NVL_VIRTIO_BLK_T_IN, 40, 4096, W));
	assert_int_equal(status(&t, 3), NVL_VIRTIO_BLK_S_IOERR);
	ram->max_io_bytes = 0;
	free(pat);
	assert_int_equal(t.q->inflight, 0);
	t_fini(&t);

	/* parts: sizes, offsets, guest addresses; done only when the last one is */
	t_init(&t, "hold0", false, false);
	g_hold_bdev.max_io_bytes = 4096;
	h = req3(&t, 0, NVL_VIRTIO_BLK_T_OUT, 8, 10240, R);
	fg_push(&t.g, h);
	vblk_q_poll(t.q);
	assert_int_equal(g_nheld, 3);
	for (unsigned k = 0; k < 3; k++) {
		assert_int_equal(g_held[k]->type, NVL_BDEV_IO_WRITE);
		assert_int_equal(g_held[k]->offset, 8 * 512 + k * 4096);
		assert_int_equal(g_held[k]->length, k < 2 ? 4096 : 2048);
		assert_true(g_held[k]->length <= g_hold_bdev.max_io_bytes);
		assert_int_equal(iov_total(g_held[k]), g_held[k]->length);
		assert_ptr_equal(g_held[k]->iov[0].iov_base, (uint8_t *)gptr(&t, DATA(0)) + k * 4096);
	}
	nvl_bdev_io_complete(g_held[2], 0);
	nvl_bdev_io_complete(g_held[0], 0);
	assert_int_equal(fg_used(&t.g)->idx, 0);
	assert_int_equal(t.q->inflight, 1);
	nvl_bdev_io_complete(g_held[1], 0);
	assert_int_equal(fg_used(&t.g)->idx, 1);
	assert_int_equal(status(&t, 0), NVL_VIRTIO_BLK_S_OK);
	assert_null(t.q->reqs[h].split);
	t.seen_used = 1;

	/* one failing part fails the request, after all parts finished */
	g_nheld = 0;
	h = req3(&t, 1, NVL_VIRTIO_BLK_T_IN, 64, 12288, W);
	fg_push(&t.g, h);
	vblk_q_poll(t.q);
	assert_int_equal(g_nheld, 3);
	nvl_bdev_io_complete(g_held[1], -EIO);
	nvl_bdev_io_complete(g_held[0], 0);
	assert_int_equal(fg_used(&t.g)->idx, 1);
	nvl_bdev_io_complete(g_held[2], 0);
	assert_int_equal(fg_used(&t.g)->idx, 2);
	assert_int_equal(status(&t, 1), NVL_VIRTIO_BLK_S_IOERR);
	assert_int_equal(fg_used(&t.g)->ring[1].len, 1);
	t.seen_used = 2;

	/* the bdev refuses a later part: the submitted ones still finish the request */
	g_nheld = 0;
	g_hold_refuse = 1;
	h = req3(&t, 2, NVL_VIRTIO_BLK_T_OUT, 64, 12288, R);
	fg_push(&t.g, h);
	vblk_q_poll(t.q);
	assert_int_equal(g_nheld, 1);
	assert_int_equal(fg_used(&t.g)->idx, 2);
	nvl_bdev_io_complete(g_held[0], 0);
	assert_int_equal(fg_used(&t.g)->idx, 3);
	assert_int_equal(status(&t, 2), NVL_VIRTIO_BLK_S_IOERR);
	/* ... or the first one: nothing in flight, IOERR at once */
	g_nheld = 0;
	g_hold_refuse = 0;
	h = req3(&t, 3, NVL_VIRTIO_BLK_T_OUT, 64, 12288, R);
	fg_push(&t.g, h);
	vblk_q_poll(t.q);
	assert_int_equal(fg_used(&t.g)->idx, 4);
	assert_int_equal(status(&t, 3), NVL_VIRTIO_BLK_S_IOERR);
	g_hold_refuse = -1;
	assert_int_equal(t.q->inflight, 0);

	/* a crash with parts in flight: the request is resubmitted, split again */
	g_nheld = 0;
	h = req3(&t, 4, NVL_VIRTIO_BLK_T_OUT, 128, 8192 + 512, R);
	fg_push(&t.g, h);
	vblk_q_poll(t.q);
	assert_int_equal(g_nheld, 3);
	nvl_bdev_io_complete(g_held[0], 0);
	t_crash(&t);
	t_queue(&t, fg_used(&t.g)->idx);
	assert_int_equal(g_nheld, 3);
	assert_int_equal(g_held[2]->length, 512);
	for (unsigned k = 0; k < 3; k++)
		nvl_bdev_io_complete(g_held[k], 0);
	assert_int_equal(fg_used(&t.g)->idx, 5);
	assert_int_equal(status(&t, 4), NVL_VIRTIO_BLK_S_OK);
	g_hold_bdev.max_io_bytes = 0;
	t_fini(&t);
}

/* ---- SET_VRING_ENABLE through the vhost-user layer, with a reactor ---- */

static unsigned g_acks;
static uint64_t g_last_ack;

static int
xmit_ack(struct vhost_dev *d, const void *buf, size_t len, int fd)
{
	(void)d;
	(void)fd;
	assert_int_equal(len, sizeof(struct nvl_vhost_user_hdr) + 8);
	memcpy(&g_last_ack, (const uint8_t *)buf + sizeof(struct nvl_vhost_user_hdr), 8);
	g_acks++;
	return 0;
}

static void
vu_send(struct nvl_vblk *c, uint32_t req, const void *p, uint32_t size, int fd)
{
	struct nvl_vhost_user_hdr h = {
		.request = req,
		.flags = NVL_VHOST_USER_VERSION | NVL_VHOST_USER_FLAG_NEED_REPLY,
		.size = size,
	};
	int fds[1] = { fd };

	assert_int_equal(vhost_dev_handle_msg(&c->vdev, &h, p, fds, fd >= 0 ? 1 : 0), 0);
	if (fds[0] >= 0)
		close(fds[0]);
}

static void
vu_enable(struct nvl_vblk *c, unsigned on)
{
	struct nvl_vhost_vring_state st = { 0, on };

	vu_send(c, NVL_VHOST_USER_SET_VRING_ENABLE, &st, sizeof(st), -1);
}

static void
kick(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

/* A disabled ring is not served, kicked or not; the disable is acknowledged
 * only once the request in flight completed; re-enabling resumes where the
 * queue stopped, so nothing is lost or served twice. */
static void
test_vring_disable(void **state)
{
	struct nvl_vhost_vring_addr a = { 0 };
	struct nvl_vhost_vring_state st;
	struct t t;
	uint64_t v;
	uint16_t ha, hb;
	unsigned acks;
	int kfd;

	(void)state;
	assert_int_equal(ut_reactors_init(1), 0);
	memset(&t, 0, sizeof(t));
	fg_init(&t.g, 64);
	t.c = calloc(1, sizeof(*t.c));
	nvl_strlcpy(t.c->name, "ut-ctrl", sizeof(t.c->name));
	t.c->num_queues = 1;
	t.c->queue_size = 256;
	assert_int_equal(nvl_bdev_open("hold0", true, "ut", &t.c->desc), 0);
	t.c->bdev = t.c->desc->bdev;
	vhost_dev_init(&t.c->vdev);
	t.c->vdev.ops = &vblk_vhost_ops;
	t.c->vdev.ctx = t.c;
	t.c->vdev.name = t.c->name;
	t.c->vdev.max_queues = 1;
	t.c->vdev.dev_features = vblk_features(t.c);
	t.c->vdev.state = VHOST_DEV_CONNECTED;
	t.c->vdev.xmit = xmit_ack;
	t.c->vdev.mem = malloc(sizeof(*t.c->vdev.mem));
	*t.c->vdev.mem = t.g.mem;   /* no map: vhost_mem_free leaves the test's buffers */
	g_acks = 0;

	v = (1ULL << NVL_VIRTIO_F_VERSION_1) | (1ULL << NVL_VHOST_USER_F_PROTOCOL_FEATURES);
	vu_send(t.c, NVL_VHOST_USER_SET_FEATURES, &v, 8, -1);
	v = 1ULL << NVL_VHOST_USER_PROTOCOL_F_REPLY_ACK;
	vu_send(t.c, NVL_VHOST_USER_SET_PROTOCOL_FEATURES, &v, 8, -1);
	st = (struct nvl_vhost_vring_state){ 0, 64 };
	vu_send(t.c, NVL_VHOST_USER_SET_VRING_NUM, &st, sizeof(st), -1);
	st = (struct nvl_vhost_vring_state){ 0, 0 };
	vu_send(t.c, NVL_VHOST_USER_SET_VRING_BASE, &st, sizeof(st), -1);
	a.desc_user_addr = t.g.mem.r[0].uva + FG_DESC_OFF;
	a.avail_user_addr = t.g.mem.r[0].uva + FG_AVAIL_OFF;
	a.used_user_addr = t.g.mem.r[0].uva + FG_USED_OFF;
	vu_send(t.c, NVL_VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), -1);
	kfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	v = 0;
	vu_send(t.c, NVL_VHOST_USER_SET_VRING_KICK, &v, 8, dup(kfd));
	/* rings start disabled once protocol features are negotiated */
	assert_false(t.c->vdev.vq[0].running);
	vu_enable(t.c, 1);
	assert_true(t.c->vdev.vq[0].running);
	assert_true(UT_POLL_UNTIL(t.c->queues[0] && t.c->queues[0]->poller, 1000));
	assert_int_not_equal(g_acks, 0);
	assert_int_equal(g_last_ack, 0);
	acks = g_acks;

	/* A is taken on a kick and held by the bdev */
	ha = req3(&t, 0, NVL_VIRTIO_BLK_T_OUT, 0, 512, R);
	fg_push(&t.g, ha);
	kick(kfd);
	assert_true(UT_POLL_UNTIL(g_nheld == 1, 1000));

	/* disable: the queue drains A before the front-end hears back */
	vu_enable(t.c, 0);
	ut_poll_for(20);
	assert_int_equal(g_acks, acks);
	assert_true(t.c->vdev.vq[0].stopping);
	/* B arrives and is kicked while the ring is disabled: not taken */
	hb = req3(&t, 1, NVL_VIRTIO_BLK_T_OUT, 8, 512, R);
	fg_push(&t.g, hb);
	kick(kfd);
	ut_poll_for(20);
	assert_int_equal(g_nheld, 1);
	nvl_bdev_io_complete(g_held[0], 0);
	assert_true(UT_POLL_UNTIL(g_acks == acks + 1, 1000));
	assert_int_equal(g_last_ack, 0);
	assert_false(t.c->vdev.vq[0].running);
	assert_null(t.c->queues[0]);
	assert_int_equal(t.c->vdev.vq[0].base, 1);
	assert_int_equal(fg_used(&t.g)->idx, 1);
	assert_int_equal(fg_used(&t.g)->ring[0].id, ha);
	assert_int_equal(status(&t, 0), NVL_VIRTIO_BLK_S_OK);
	/* still disabled: more kicks change nothing */
	kick(kfd);
	ut_poll_for(20);
	assert_int_equal(g_nheld, 1);
	assert_int_equal(fg_used(&t.g)->idx, 1);

	/* re-enable: resumes at avail index 1, so B and only B is served */
	vu_enable(t.c, 1);
	assert_int_equal(g_acks, acks + 2);
	assert_true(UT_POLL_UNTIL(g_nheld == 2, 1000));
	assert_int_equal(g_held[1]->offset, 8 * 512);
	nvl_bdev_io_complete(g_held[1], 0);
	assert_true(UT_POLL_UNTIL(fg_used(&t.g)->idx == 2, 1000));
	assert_int_equal(fg_used(&t.g)->ring[1].id, hb);
	assert_int_equal(status(&t, 1), NVL_VIRTIO_BLK_S_OK);
	ut_poll_for(20);
	assert_int_equal(g_nheld, 2);

	/* disabling an idle ring answers at once; the front-end goes away */
	vu_enable(t.c, 0);
	assert_true(UT_POLL_UNTIL(g_acks == acks + 3, 1000));
	assert_null(t.c->queues[0]);
	close(t.c->vdev.vq[0].kickfd);
	vhost_mem_free(t.c->vdev.mem);
	close(kfd);
	nvl_bdev_close(t.c->desc);
	free(t.c);
	fg_fini(&t.g);
	g_nheld = 0;
	nvl_reactors_fini();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rw_flush_id),
		cmocka_unit_test(test_discard_write_zeroes),
		cmocka_unit_test(test_malicious),
		cmocka_unit_test(test_read_only),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_crash_recovery),
		cmocka_unit_test(test_split_large),
		cmocka_unit_test(test_vring_disable),
	};

	return cmocka_run_group_tests(tests, setup_bdevs, teardown_bdevs);
}
