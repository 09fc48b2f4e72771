/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of what a virtio-blk queue marks in the dirty log while the
 * front-end migrates the VM: exactly the guest pages the back-end writes —
 * READ data (also across a memory-region boundary), the GET_ID serial, every
 * status byte, the used ring — and not the pages it only reads (WRITE data,
 * request headers on their own page); a READ still in the bdev marks nothing
 * until it completes; the per-queue counter and the SET_LOG_FD eventfd. A
 * fake guest and a RAM bdev; no reactor runs: the tests call the poll.
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
#define SLOT(k) (FG_DATA_OFF + (uint64_t)(k) * 0x10000)
#define HDR(k) SLOT(k)                  /* header and status share the slot's first page */
#define STATUS(k) (SLOT(k) + 0x100)
#define DATA(k) (SLOT(k) + 0x1000)      /* data from the slot's second page on */
#define LOG_BYTES ((FG_GPA0 + FG_SIZE0 + FG_SIZE1) / 4096 / 8)

/* ---- a bdev that holds I/Os until the test completes them ---- */
static struct nvl_bdev_io *g_held[8];
static unsigned g_nheld;

static int
hold_submit(struct nvl_bdev *b, struct nvl_bdev_io *io)
{
	(void)b;
	assert_true(g_nheld < 8);
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
	.io_types = (1u << NVL_BDEV_IO_READ) | (1u << NVL_BDEV_IO_WRITE),
};

static int
setup_bdevs(void **state)
{
	struct nvl_bdev_ram_opts o = { .name = "ram0", .num_blocks = 16384, .block_size = 512 };
	struct nvl_bdev *b;

	(void)state;
	assert_int_equal(nvl_bdev_ram_create(&o, &b), 0);
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
	uint8_t bits[LOG_BYTES];
	struct vhost_log log;
	int logfd;
	uint16_t seen_used;
};

static void
t_init(struct t *t, const char *bdev)
{
	struct vhost_queue_params p = { .kickfd = -1, .callfd = -1, .logfd = -1 };

	memset(t, 0, sizeof(*t));
	fg_init(&t->g, 64);
	t->c = calloc(1, sizeof(*t->c));
	nvl_strlcpy(t->c->name, "ut-log", sizeof(t->c->name));
	t->c->num_queues = 1;
	t->c->queue_size = 256;
	assert_int_equal(nvl_bdev_open(bdev, true, "ut", &t->c->desc), 0);
	t->c->bdev = t->c->desc->bdev;
	t->log = (struct vhost_log){ .bits = t->bits, .size = sizeof(t->bits) };
	fg_setup(&t->g, &p.ring, 0, true, 0);
	p.ring.log = &t->log;
	p.ring.log_used = true;
	p.ring.log_used_gpa = fg_gpa(FG_USED_OFF);
	assert_int_equal(vblk_queue_alloc(t->c, 0, &p, &t->q), 0);
	t->logfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(t->logfd >= 0);
	t->q->logfd = dup(t->logfd);
	t->c->queues[0] = t->q;
	vblk_q_resubmit(t->q);
	memset(t->bits, 0, sizeof(t->bits));   /* start from a clean log */
}

static void
t_fini(struct t *t)
{
	vblk_q_free(t->q);
	nvl_bdev_close(t->c->desc);
	free(t->c);
	fg_fini(&t->g);
	close(t->logfd);
	g_nheld = 0;
}

static bool
marked(struct t *t, uint64_t gpa)
{
	uint64_t p = gpa >> 12;

	return t->bits[p / 8] & (1u << (p % 8));
}

static unsigned
nmarked(struct t *t)
{
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(t->bits); i++)
		n += (unsigned)__builtin_popcount(t->bits[i]);
	return n;
}

static uint16_t
req3(struct t *t, unsigned k, uint32_t type, uint64_t sector, uint32_t dlen, uint16_t dflags)
{
	struct nvl_virtio_blk_outhdr *h = (void *)(t->g.r0 + HDR(k));
	uint16_t d0 = (uint16_t)(3 * k);

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	if (dlen) {
		fg_desc(&t->g, d0, fg_gpa(HDR(k)), 16, R | N, d0 + 1);
		fg_desc(&t->g, d0 + 1, fg_gpa(DATA(k)), dlen, dflags | N, d0 + 2);
	} else {
		fg_desc(&t->g, d0, fg_gpa(HDR(k)), 16, R | N, d0 + 2);
	}
	fg_desc(&t->g, d0 + 2, fg_gpa(STATUS(k)), 1, W, 0);
	return d0;
}

static void
run(struct t *t, uint16_t head)
{
	fg_push(&t->g, head);
	vblk_q_poll(t->q);
	assert_int_equal(fg_used(&t->g)->idx, (uint16_t)(t->seen_used + 1));
	t->seen_used++;
}

static void
test_marks(void **state)
{
	struct t t;
	uint64_t ev = 0;
	uint16_t h;

	(void)state;
	t_init(&t, "ram0");
	/* WRITE: the status byte (its page) and the used ring; not the data it read */
	memset(t.g.r0 + DATA(0), 0x3c, 8192);
	run(&t, req3(&t, 0, NVL_VIRTIO_BLK_T_OUT, 0, 8192, R));
	assert_true(marked(&t, fg_gpa(STATUS(0))));
	assert_true(marked(&t, fg_gpa(FG_USED_OFF)));
	assert_false(marked(&t, fg_gpa(DATA(0))));
	assert_false(marked(&t, fg_gpa(DATA(0)) + 4096));
	assert_int_equal(nmarked(&t), 2);
	assert_int_equal(read(t.logfd, &ev, 8), 8);   /* SET_LOG_FD signalled */
	assert_true(ev >= 1);
	/* READ of 8 KiB + 512 bytes: the three data pages, the status page, the used ring */
	memset(t.bits, 0, sizeof(t.bits));
	run(&t, req3(&t, 1, NVL_VIRTIO_BLK_T_IN, 0, 8704, W));
	assert_int_equal(*(t.g.r0 + STATUS(1)), NVL_VIRTIO_BLK_S_OK);
	assert_int_equal(memcmp(t.g.r0 + DATA(1), t.g.r0 + DATA(0), 8192), 0);
	assert_true(marked(&t, fg_gpa(DATA(1))));
	assert_true(marked(&t, fg_gpa(DATA(1)) + 4096));
	assert_true(marked(&t, fg_gpa(DATA(1)) + 8192));
	assert_false(marked(&t, fg_gpa(DATA(1)) + 12288));
	assert_true(marked(&t, fg_gpa(STATUS(1))));
	assert_true(marked(&t, fg_gpa(FG_USED_OFF)));
	assert_int_equal(nmarked(&t), 5);
	/* GET_ID: the serial's page and the status page */
	memset(t.bits, 0, sizeof(t.bits));
	run(&t, req3(&t, 2, NVL_VIRTIO_BLK_T_GET_ID, 0, 20, W));
	assert_string_equal((char *)t.g.r0 + DATA(2), "ut-log");
	assert_true(marked(&t, fg_gpa(DATA(2))));
	assert_true(marked(&t, fg_gpa(STATUS(2))));
	assert_int_equal(nmarked(&t), 3);
	/* FLUSH and an unknown type: the status only */
	memset(t.bits, 0, sizeof(t.bits));
	run(&t, req3(&t, 3, 77, 0, 0, 0));
	assert_int_equal(*(t.g.r0 + STATUS(3)), NVL_VIRTIO_BLK_S_UNSUPP);
	assert_true(marked(&t, fg_gpa(STATUS(3))));
	assert_int_equal(nmarked(&t), 2);
	/* a READ across the boundary of the two regions: the last page of region 0
	 * and the first of region 1, by their guest physical addresses */
	memset(t.bits, 0, sizeof(t.bits));
	h = req3(&t, 4, NVL_VIRTIO_BLK_T_IN, 0, 2048, W);
	fg_desc(&t.g, h + 1, fg_gpa(FG_SIZE0 - 1024), 2048, W | N, h + 2);
	run(&t, h);
	assert_true(marked(&t, fg_gpa(FG_SIZE0 - 1)));
	assert_true(marked(&t, fg_gpa(FG_SIZE0)));
	assert_false(marked(&t, fg_gpa(FG_SIZE0) + 4096));
	assert_int_equal(nmarked(&t), 4);
	assert_true(t.q->st->log_marks > 0);
	t_fini(&t);
}

/* A READ in the bdev has written nothing yet: its pages are marked when it
 * completes, after the data is in place. */
static void
test_mark_at_completion(void **state)
{
	struct t t;

	(void)state;
	t_init(&t, "hold0");
	fg_push(&t.g, req3(&t, 0, NVL_VIRTIO_BLK_T_IN, 8, 4096, W));
	vblk_q_poll(t.q);
	assert_int_equal(g_nheld, 1);
	assert_int_equal(nmarked(&t), 0);
	memset(t.g.r0 + DATA(0), 0x77, 4096);   /* the bdev writes the data ... */
	nvl_bdev_io_complete(g_held[0], 0);     /* ... then completes */
	assert_true(marked(&t, fg_gpa(DATA(0))));
	assert_true(marked(&t, fg_gpa(STATUS(0))));
	assert_true(marked(&t, fg_gpa(FG_USED_OFF)));
	assert_int_equal(nmarked(&t), 3);
	assert_int_equal(fg_used(&t.g)->idx, 1);
	t_fini(&t);
}

/* Not logging: nothing is marked (the queue has no log). */
static void
test_no_log(void **state)
{
	struct t t;

	(void)state;
	t_init(&t, "ram0");
	t.q->vr.log = NULL;
	t.q->vr.log_used = false;
	run(&t, req3(&t, 0, NVL_VIRTIO_BLK_T_IN, 0, 4096, W));
	assert_int_equal(nmarked(&t), 0);
	t_fini(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_marks),
		cmocka_unit_test(test_mark_at_completion),
		cmocka_unit_test(test_no_log),
	};

	return cmocka_run_group_tests(tests, setup_bdevs, teardown_bdevs);
}
