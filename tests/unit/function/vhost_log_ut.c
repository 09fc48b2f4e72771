/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of dirty page logging for live migration: the bit math of the
 * log (one bit per 4 KiB guest page, little-endian bytes, partial ranges at
 * the log's end, overflow), translating our addresses back to guest physical
 * ones, the used-ring bytes a ring marks (elements across the wrap, idx,
 * flags, avail_event), and the vhost-user messages: SET_LOG_BASE (reply,
 * validation against guest memory, offsets, sizes, fds), SET_LOG_FD,
 * VHOST_F_LOG_ALL on and off on running queues, SET_VRING_ADDR with
 * VHOST_VRING_F_LOG on a running ring, and the hand-over (GET_VRING_BASE
 * waits for the queue, the destination starts from SET_VRING_BASE). The
 * device side is a fake that records what it is asked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "function/vhost_user.c"
#include "function/vhost_dev.c"
#include "unit/function/fake_guest.h"

#include <sys/eventfd.h>

/* ---- bit math ------------------------------------------------------------------ */

static struct vhost_log
mk_log(uint8_t *bits, uint64_t size)
{
	memset(bits, 0, size);
	return (struct vhost_log){ .bits = bits, .size = size };
}

static void
test_log_bits(void **state)
{
	uint8_t b[8];
	struct vhost_log l = mk_log(b, 4);   /* 32 pages: gpa [0, 128 KiB) */

	(void)state;
	assert_int_equal(vhost_log_bytes_for(0), 0);
	assert_int_equal(vhost_log_bytes_for(1), 1);
	assert_int_equal(vhost_log_bytes_for(4096), 1);
	assert_int_equal(vhost_log_bytes_for(8 * 4096), 1);
	assert_int_equal(vhost_log_bytes_for(8 * 4096 + 1), 2);
	assert_int_equal(vhost_log_bytes_for(512ULL << 20), 16384); /* QEMU's log for 512 MiB */

	/* one byte: page 0 */
	assert_int_equal(vhost_log_gpa(&l, 0, 1), 0);
	assert_int_equal(b[0], 0x01);
	/* two bytes across a page boundary: pages 0 and 1 */
	assert_int_equal(vhost_log_gpa(&l, 4095, 2), 0);
	assert_int_equal(b[0], 0x03);
	/* the last byte of page 7 and pages 8, 9: bit 7 of byte 0, bits 0-1 of byte 1 */
	l = mk_log(b, 4);
	assert_int_equal(vhost_log_gpa(&l, 8 * 4096 - 1, 2 * 4096 + 1), 0);
	assert_int_equal(b[0], 0x80);
	assert_int_equal(b[1], 0x03);
	assert_int_equal(b[2], 0);
	/* pages 3..20: partial, whole, partial bytes */
	l = mk_log(b, 4);
	assert_int_equal(vhost_log_gpa(&l, 3 * 4096 + 100, 18 * 4096 - 200), 0);
	assert_int_equal(b[0], 0xf8);
	assert_int_equal(b[1], 0xff);
	assert_int_equal(b[2], 0x1f);
	assert_int_equal(b[3], 0);
	/* bits already set stay set; len 0 marks nothing */
	assert_int_equal(vhost_log_gpa(&l, 3 * 4096, 1), 0);
	assert_int_equal(b[0], 0xf8);
	assert_int_equal(vhost_log_gpa(&l, 31 * 4096, 0), 0);
	assert_int_equal(b[3], 0);
	/* the last page of the log */
	assert_int_equal(vhost_log_gpa(&l, 32 * 4096 - 1, 1), 0);
	assert_int_equal(b[3], 0x80);
	/* a range past the log: the part inside is marked, -EFAULT */
	l = mk_log(b, 4);
	b[4] = 0x5a;   /* a byte beyond the log must not change */
	assert_int_equal(vhost_log_gpa(&l, 30 * 4096, 4 * 4096), -EFAULT);
	assert_int_equal(b[3], 0xc0);
	assert_int_equal(b[4], 0x5a);
	/* wholly past the log, and a range that wraps 2^64 */
	l = mk_log(b, 4);
	b[4] = 0x5a;
	assert_int_equal(vhost_log_gpa(&l, 32 * 4096, 1), -EFAULT);
	assert_int_equal(vhost_log_gpa(&l, UINT64_MAX - 10, 100), -EFAULT);
	assert_int_equal(vhost_log_gpa(&l, UINT64_MAX, 1), -EFAULT);
	for (int i = 0; i < 4; i++)
		assert_int_equal(b[i], 0);
	assert_int_equal(b[4], 0x5a);

	/* coverage */
	assert_true(vhost_log_covers(&l, 0, 32 * 4096));
	assert_false(vhost_log_covers(&l, 0, 32 * 4096 + 1));
	assert_true(vhost_log_covers(&l, 31 * 4096 + 4095, 1));
	assert_false(vhost_log_covers(&l, 32 * 4096, 1));
	assert_true(vhost_log_covers(&l, 123, 0));
	assert_false(vhost_log_covers(&l, UINT64_MAX, 2));
	assert_false(vhost_log_covers(NULL, 0, 1));
}

/* Our addresses back to guest physical ones, in both regions of the fake guest. */
static void
test_log_hva(void **state)
{
	struct fake_guest g;
	uint64_t pages = (FG_GPA0 + FG_SIZE0 + FG_SIZE1) / 4096;
	uint8_t *b = calloc(1, pages / 8);
	struct vhost_log l = { .bits = b, .size = pages / 8 };
	uint64_t p;

	(void)state;
	fg_init(&g, 16);
	assert_int_equal(vhost_log_hva(&l, &g.mem, g.r0 + 5 * 4096 + 7, 10), 0);
	p = (FG_GPA0 >> 12) + 5;
	assert_int_equal(b[p / 8], 1u << (p % 8));
	b[p / 8] = 0;
	assert_int_equal(vhost_log_hva(&l, &g.mem, g.r1 + 4096, 4096), 0);
	p = ((FG_GPA0 + FG_SIZE0) >> 12) + 1;
	assert_int_equal(b[p / 8], 1u << (p % 8));
	b[p / 8] = 0;
	/* not guest memory: nothing marked */
	assert_int_equal(vhost_log_hva(&l, &g.mem, &p, 8), -EFAULT);
	/* running past the end of a region: its part is marked, -EFAULT */
	assert_int_equal(vhost_log_hva(&l, &g.mem, g.r1 + FG_SIZE1 - 1, 2), -EFAULT);
	p = ((FG_GPA0 + FG_SIZE0 + FG_SIZE1) >> 12) - 1;
	assert_int_equal(b[p / 8], 1u << (p % 8));
	b[p / 8] = 0;
	for (uint64_t i = 0; i < pages / 8; i++)
		assert_int_equal(b[i], 0);
	fg_fini(&g);
	free(b);
}

/* The used ring's bytes a ring marks, by the used ring's guest physical address. */
static bool
page_set(const uint8_t *b, uint64_t gpa)
{
	uint64_t p = gpa >> 12;

	return b[p / 8] & (1u << (p % 8));
}

static void
test_log_used_ring(void **state)
{
	struct fake_guest g;
	struct vring_setup s;
	struct vring vr;
	uint16_t batch[1024];
	uint64_t pages = (FG_GPA0 + FG_SIZE0 + FG_SIZE1) / 4096;
	uint8_t *b = calloc(1, pages / 8);
	struct vhost_log l = { .bits = b, .size = pages / 8 };
	uint64_t used = fg_gpa(FG_USED_OFF);   /* 1024 entries: 3 pages + 6 bytes */

	(void)state;
	fg_init(&g, 1024);
	fg_setup(&g, &s, 1ULL << NVL_VIRTIO_RING_F_EVENT_IDX, false, 0);
	s.log = &l;
	s.log_used = true;
	s.log_used_gpa = used;
	assert_int_equal(vring_init(&vr, &s, batch), 0);
	/* two elements at the start: the first page only (header + ring[0..1]) */
	vring_used_add(&vr, 3, 512);
	vring_used_add(&vr, 4, 512);
	vring_used_flush(&vr);
	assert_true(page_set(b, used));
	assert_false(page_set(b, used + 4096));
	assert_false(page_set(b, used + 8192));
	assert_false(page_set(b, used - 1));
	/* elements 1020..1027 wrap: the last page of the ring and the first */
	memset(b, 0, pages / 8);
	vr.used_idx = vr.used_published = 1020;
	for (uint16_t i = 0; i < 8; i++)
		vring_used_add(&vr, i, 1);
	vring_used_flush(&vr);
	assert_true(page_set(b, used));                   /* ring[0..3] and idx */
	assert_true(page_set(b, used + 4096));            /* ring[1020..1023]: bytes */
	assert_true(page_set(b, used + 8192));            /* 8164..8195 */
	assert_false(page_set(b, used + 3 * 4096));
	/* elements 100..101 alone: page 0 only, no neighbours */
	memset(b, 0, pages / 8);
	vr.used_idx = vr.used_published = 100;
	vring_used_add(&vr, 1, 1);
	vring_used_add(&vr, 2, 1);
	vring_used_flush(&vr);
	assert_true(page_set(b, used));
	assert_false(page_set(b, used + 4096));
	/* elements 600..601: page 1 and the idx on page 0, nothing on page 2 */
	memset(b, 0, pages / 8);
	vr.used_idx = vr.used_published = 600;
	vring_used_add(&vr, 1, 1);
	vring_used_add(&vr, 2, 1);
	vring_used_flush(&vr);
	assert_true(page_set(b, used));
	assert_true(page_set(b, used + 4096));
	assert_false(page_set(b, used + 8192));
	assert_int_equal(fg_used(&g)->idx, 602);
	/* kick enable writes avail_event after ring[1023]: its page */
	memset(b, 0, pages / 8);
	vring_kick_enable(&vr);
	assert_true(page_set(b, used + 4 + 1024 * 8));
	assert_false(page_set(b, used));
	/* without event idx, flags at offset 0 */
	memset(b, 0, pages / 8);
	vr.event_idx = false;
	vring_kick_disable(&vr);
	assert_true(page_set(b, used));
	/* a ring without VHOST_VRING_F_LOG marks nothing of the used ring */
	memset(b, 0, pages / 8);
	s.log_used = false;
	assert_int_equal(vring_init(&vr, &s, batch), 0);
	vring_used_add(&vr, 1, 1);
	vring_used_flush(&vr);
	for (uint64_t i = 0; i < pages / 8; i++)
		assert_int_equal(b[i], 0);
	/* vring_log_write marks data by our address */
	vring_log_write(&vr, g.r0 + FG_DATA_OFF, 3 * 4096);
	assert_true(page_set(b, fg_gpa(FG_DATA_OFF)));
	assert_true(page_set(b, fg_gpa(FG_DATA_OFF) + 2 * 4096));
	assert_false(page_set(b, fg_gpa(FG_DATA_OFF) + 3 * 4096));
	fg_fini(&g);
	free(b);
}

/* ---- vhost-user messages ----------------------------------------------------- */

static uint8_t g_reply[512];
static size_t g_reply_len;
static unsigned g_replies;
static unsigned g_started, g_stop_asked;
static bool g_stop_sync = true;
static struct vhost_queue_params g_params;
static bool g_logfd_seen;

static int
xmit_capture(struct vhost_dev *d, const void *buf, size_t len, int fd)
{
	(void)d;
	(void)fd;
	assert_true(len <= sizeof(g_reply));
	memcpy(g_reply, buf, len);
	g_reply_len = len;
	g_replies++;
	return 0;
}

static int
st_queue_start(struct vhost_dev *d, unsigned q, const struct vhost_queue_params *p)
{
	(void)d;
	(void)q;
	g_params = *p;
	g_started++;
	g_logfd_seen = p->logfd >= 0;
	if (p->kickfd >= 0)
		close(p->kickfd);
	if (p->callfd >= 0)
		close(p->callfd);
	if (p->logfd >= 0)
		close(p->logfd);
	return 0;
}

static void
st_queue_stop(struct vhost_dev *d, unsigned q)
{
	g_stop_asked++;
	if (g_stop_sync)
		vhost_dev_queue_stopped(d, q, 42);
}

static void
st_set_call(struct vhost_dev *d, unsigned q, int fd)
{
	(void)d;
	(void)q;
	if (fd >= 0)
		close(fd);
}

static void
st_get_config(struct vhost_dev *d, uint8_t *buf, uint32_t off, uint32_t len)
{
	(void)d;
	(void)off;
	memset(buf, 0, len);
}

static const struct vhost_dev_ops st_ops = {
	.queue_start = st_queue_start,
	.queue_stop = st_queue_stop,
	.queue_set_call = st_set_call,
	.get_config = st_get_config,
};

static int
send_msg(struct vhost_dev *d, uint32_t req, uint32_t flags, const void *p, uint32_t size,
	 int *fds, unsigned nfds)
{
	struct nvl_vhost_user_hdr h = { .request = req, .flags = NVL_VHOST_USER_VERSION | flags,
					 .size = size };
	int rc = vhost_dev_handle_msg(d, &h, p, fds, nfds);

	for (unsigned i = 0; i < nfds; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
	}
	return rc;
}

static uint64_t
reply_u64(void)
{
	uint64_t v;

	assert_int_equal(g_reply_len, 12 + 8);
	memcpy(&v, g_reply + 12, 8);
	return v;
}

static int
mk_memfd(size_t size)
{
	int fd = memfd_create("ut", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

#define BASE_FEATURES                                                                              \
	((1ULL << NVL_VIRTIO_F_VERSION_1) | (1ULL << NVL_VHOST_USER_F_PROTOCOL_FEATURES) |         \
	 (1ULL << NVL_VIRTIO_RING_F_EVENT_IDX))
#define MEM_GPA 0x100000ULL          /* guest memory: gpa [1 MiB, 2 MiB) */
#define MEM_UVA 0x7f0000000000ULL

/* A connected device with 1 MiB of guest memory at MEM_GPA and ring 0 running
 * (64 entries; used ring at gpa MEM_GPA + 0x2000). */
static void
dev_setup(struct vhost_dev *d, uint64_t protocol)
{
	struct nvl_vhost_memory tbl = { .nregions = 1 };
	struct nvl_vhost_vring_state s;
	struct nvl_vhost_vring_addr a;
	uint64_t v;
	int fd;

	vhost_dev_init(d);
	d->ops = &st_ops;
	d->name = "ut";
	d->max_queues = 2;
	d->xmit = xmit_capture;
	d->state = VHOST_DEV_CONNECTED;
	g_replies = g_started = g_stop_asked = 0;
	g_stop_sync = true;
	v = BASE_FEATURES;
	assert_int_equal(send_msg(d, NVL_VHOST_USER_SET_FEATURES, 0, &v, 8, NULL, 0), 0);
	assert_int_equal(send_msg(d, NVL_VHOST_USER_SET_PROTOCOL_FEATURES, 0, &protocol, 8, NULL,
				  0), 0);
	fd = mk_memfd(1 << 20);
	tbl.regions[0] = (struct nvl_vhost_memory_region){ MEM_GPA, 1 << 20, MEM_UVA, 0 };
	assert_int_equal(send_msg(d, NVL_VHOST_USER_SET_MEM_TABLE, 0, &tbl, 8 + 32, &fd, 1), 0);
	s = (struct nvl_vhost_vring_state){ 0, 64 };
	assert_int_equal(send_msg(d, NVL_VHOST_USER_SET_VRING_NUM, 0, &s, 8, NULL, 0), 0);
	a = (struct nvl_vhost_vring_addr){ .index = 0, .desc_user_addr = MEM_UVA,
					   .avail_user_addr = MEM_UVA + 0x1000,
					   .used_user_addr = MEM_UVA + 0x2000 };
	assert_int_equal(send_msg(d, NVL_VHOST_USER_SET_VRING_ADDR, 0, &a, 40, NULL, 0), 0);
	v = 0;
	fd = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(send_msg(d, NVL_VHOST_USER_SET_VRING_KICK, 0, &v, 8, &fd, 1), 0);
	s = (struct nvl_vhost_vring_state){ 0, 1 };
	assert_int_equal(send_msg(d, NVL_VHOST_USER_SET_VRING_ENABLE, 0, &s, 8, NULL, 0), 0);
	assert_int_equal(g_started, 1);
	assert_true(d->vq[0].running);
	assert_null(g_params.ring.log);
}

/* SET_LOG_BASE: size, offset and fd checks; each failure drops the front-end. */
static int
set_log_base(struct vhost_dev *d, int fd, uint64_t size, uint64_t offset)
{
	struct nvl_vhost_user_log lg = { .mmap_size = size, .mmap_offset = offset };

	return send_msg(d, NVL_VHOST_USER_SET_LOG_BASE, 0, &lg, sizeof(lg), &fd, fd >= 0 ? 1 : 0);
}

static void
test_set_log_base(void **state)
{
	const uint64_t proto = VU_PROTOCOL_FEATURES;
	const uint64_t need = vhost_log_bytes_for(MEM_GPA + (1 << 20)); /* 64 bytes */
	struct nvl_vhost_user_log lg = { .mmap_size = 4096 };
	struct vhost_dev d;
	uint64_t v;
	int fd;

	(void)state;
	/* offered: VHOST_F_LOG_ALL and LOG_SHMFD */
	dev_setup(&d, proto);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_GET_FEATURES, 0, NULL, 0, NULL, 0), 0);
	assert_true(reply_u64() & (1ULL << NVL_VHOST_F_LOG_ALL));
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_GET_PROTOCOL_FEATURES, 0, NULL, 0, NULL, 0), 0);
	assert_true(reply_u64() & (1ULL << NVL_VHOST_USER_PROTOCOL_F_LOG_SHMFD));
	/* a good log: mapped, answered with a u64 0 (the front-end waits for it) */
	g_replies = 0;
	assert_int_equal(set_log_base(&d, mk_memfd(8192), need, 0), 0);
	assert_int_equal(g_replies, 1);
	assert_int_equal(((struct nvl_vhost_user_hdr *)g_reply)->request,
			 NVL_VHOST_USER_SET_LOG_BASE);
	assert_int_equal(reply_u64(), 0);
	assert_non_null(d.log);
	assert_int_equal(d.log->size, need);
	/* not logging yet: the running queue was not restarted */
	assert_int_equal(g_stop_asked, 0);
	/* an unaligned offset inside the file maps too */
	assert_int_equal(set_log_base(&d, mk_memfd(8192), need, 4000), 0);
	assert_int_equal(reply_u64(), 0);
	vhost_reset_state(&d);

	/* refusals: each drops the front-end (-EPROTO), the old log stays */
	dev_setup(&d, proto);
	assert_int_equal(set_log_base(&d, mk_memfd(8192), need - 1, 0), -EPROTO);  /* short */
	assert_int_equal(set_log_base(&d, mk_memfd(4096), need, 4096), -EPROTO);   /* past EOF */
	assert_int_equal(set_log_base(&d, mk_memfd(4096), 0, 0), -EPROTO);         /* empty */
	assert_int_equal(set_log_base(&d, mk_memfd(4096), VHOST_LOG_MAX_BYTES + 1, 0), -EPROTO);
	assert_int_equal(set_log_base(&d, mk_memfd(4096), 64, UINT64_MAX - 10), -EPROTO);
	assert_int_equal(set_log_base(&d, -1, need, 0), -EPROTO);                  /* no fd */
	assert_int_equal(set_log_base(&d, eventfd(0, EFD_CLOEXEC), need, 0), -EPROTO);
	fd = mk_memfd(4096);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_LOG_BASE, 0, &lg, 8, &fd, 1), -EPROTO);
	assert_null(d.log);
	/* VHOST_F_LOG_ALL before any log */
	v = BASE_FEATURES | (1ULL << NVL_VHOST_F_LOG_ALL);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_FEATURES, 0, &v, 8, NULL, 0), -EPROTO);
	vhost_reset_state(&d);

	/* without LOG_SHMFD the log would be in the front-end's private memory */
	dev_setup(&d, proto & ~(1ULL << NVL_VHOST_USER_PROTOCOL_F_LOG_SHMFD));
	assert_int_equal(set_log_base(&d, mk_memfd(8192), need, 0), -EPROTO);
	vhost_reset_state(&d);

	/* SET_LOG_FD: exactly one fd */
	dev_setup(&d, proto);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_LOG_FD, 0, NULL, 0, NULL, 0), -EPROTO);
	fd = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_LOG_FD, 0, NULL, 2, &fd, 1), -EPROTO);
	fd = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_LOG_FD, 0, NULL, 0, &fd, 1), 0);
	assert_true(d.log_fd >= 0);
	vhost_reset_state(&d);
	assert_int_equal(d.log_fd, -1);
}

/* What QEMU does when a migration starts and ends, on a running ring. */
static void
test_log_all_runtime(void **state)
{
	const uint64_t need = vhost_log_bytes_for(MEM_GPA + (1 << 20));
	struct vhost_dev d;
	struct nvl_vhost_vring_addr a;
	struct nvl_vhost_memory tbl = { .nregions = 1 };
	uint64_t v;
	int fd;

	(void)state;
	dev_setup(&d, VU_PROTOCOL_FEATURES);
	fd = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_LOG_FD, 0, NULL, 0, &fd, 1), 0);
	assert_int_equal(set_log_base(&d, mk_memfd(4096), need, 0), 0);
	/* LOG_ALL on: the running queue restarts with the log (after its drain) */
	g_replies = 0;
	v = BASE_FEATURES | (1ULL << NVL_VHOST_F_LOG_ALL);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_FEATURES, NVL_VHOST_USER_FLAG_NEED_REPLY,
				  &v, 8, NULL, 0), 0);
	assert_int_equal(reply_u64(), 0);
	assert_int_equal(g_stop_asked, 1);
	assert_int_equal(g_started, 2);
	assert_ptr_equal(g_params.ring.log, d.log);
	assert_false(g_params.ring.log_used);
	assert_true(g_logfd_seen);
	assert_int_equal(g_params.ring.base, 42);   /* from where it stopped */
	assert_true(d.vq[0].logging);
	assert_int_equal(d.log_starts, 1);
	/* SET_VRING_ADDR with VHOST_VRING_F_LOG on the running ring: stop, restart */
	a = d.vq[0].addr;
	a.flags = NVL_VHOST_VRING_F_LOG;
	a.log_guest_addr = MEM_GPA + 0x2000;
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_ADDR, NVL_VHOST_USER_FLAG_NEED_REPLY,
				  &a, 40, NULL, 0), 0);
	assert_int_equal(reply_u64(), 0);
	assert_int_equal(g_stop_asked, 2);
	assert_int_equal(g_started, 3);
	assert_true(g_params.ring.log_used);
	assert_int_equal(g_params.ring.log_used_gpa, MEM_GPA + 0x2000);
	/* unknown flags are refused, the ring keeps running */
	a.flags = 2;
	send_msg(&d, NVL_VHOST_USER_SET_VRING_ADDR, NVL_VHOST_USER_FLAG_NEED_REPLY, &a, 40, NULL, 0);
	assert_int_not_equal(reply_u64(), 0);
	assert_true(d.vq[0].running);
	/* a log address past the log drops the front-end */
	a.flags = NVL_VHOST_VRING_F_LOG;
	a.log_guest_addr = need * 8 * 4096;
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_ADDR, 0, &a, 40, NULL, 0), -EPROTO);
	/* a memory table that outgrows the log while logging drops the front-end */
	fd = mk_memfd(2 << 20);
	tbl.regions[0] = (struct nvl_vhost_memory_region){ MEM_GPA, 2 << 20, MEM_UVA, 0 };
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_MEM_TABLE, 0, &tbl, 8 + 32, &fd, 1),
			 -EPROTO);
	/* a resize of the log while logging: the logging queue stops first, then
	 * restarts with the new one; the reply comes after */
	g_stop_sync = false;
	g_replies = 0;
	assert_int_equal(set_log_base(&d, mk_memfd(8192), 2 * need, 0), 0);
	assert_int_equal(g_stop_asked, 3);
	assert_int_equal(g_replies, 0);
	vhost_dev_queue_stopped(&d, 0, 50);
	assert_int_equal(g_replies, 1);
	assert_int_equal(reply_u64(), 0);
	assert_int_equal(d.log->size, 2 * need);
	assert_ptr_equal(g_params.ring.log, d.log);
	assert_int_equal(g_params.ring.base, 50);
	g_stop_sync = true;
	/* LOG_ALL off: restart without the log; the log stays mapped until replaced */
	v = BASE_FEATURES;
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_FEATURES, 0, &v, 8, NULL, 0), 0);
	assert_int_equal(g_stop_asked, 4);
	assert_null(g_params.ring.log);
	assert_false(g_params.ring.log_used);
	assert_false(d.vq[0].logging);
	assert_non_null(d.log);
	assert_false(vhost_dev_logging(&d));
	/* on again; then a log address that is not the used ring: the ring cannot
	 * start and the front-end is dropped */
	v = BASE_FEATURES | (1ULL << NVL_VHOST_F_LOG_ALL);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_FEATURES, 0, &v, 8, NULL, 0), 0);
	assert_true(g_params.ring.log_used);
	a.flags = NVL_VHOST_VRING_F_LOG;
	a.log_guest_addr = MEM_GPA + 0x3000;
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_ADDR, NVL_VHOST_USER_FLAG_NEED_REPLY,
				  &a, 40, NULL, 0), 0);
	assert_int_not_equal(reply_u64(), 0);
	assert_false(d.vq[0].running);
	assert_int_equal(d.state, VHOST_DEV_IDLE);   /* connection closed, state forgotten */
	assert_null(d.log);
	assert_null(d.mem);
	vhost_reset_state(&d);
}

/* The hand-over: the source answers GET_VRING_BASE once its requests are done,
 * the destination starts from the base it is given. */
static void
test_handover(void **state)
{
	struct vhost_dev src, dst;
	struct nvl_vhost_vring_state s;
	uint64_t v;
	int fd;

	(void)state;
	dev_setup(&src, VU_PROTOCOL_FEATURES);
	/* QEMU stops the source's ring: disable, then GET_VRING_BASE */
	g_stop_sync = false;
	g_replies = 0;
	s = (struct nvl_vhost_vring_state){ 0, 0 };
	assert_int_equal(send_msg(&src, NVL_VHOST_USER_GET_VRING_BASE, 0, &s, 8, NULL, 0), 0);
	assert_int_equal(g_replies, 0);           /* requests still in flight */
	vhost_dev_queue_stopped(&src, 0, 1234);   /* the last one completed */
	assert_int_equal(g_replies, 1);
	memcpy(&s, g_reply + 12, 8);
	assert_int_equal(s.num, 1234);
	g_stop_sync = true;
	vhost_reset_state(&src);

	/* the destination: ring base from the migration stream, then kick */
	dev_setup(&dst, VU_PROTOCOL_FEATURES);
	s = (struct nvl_vhost_vring_state){ 1, 64 };
	assert_int_equal(send_msg(&dst, NVL_VHOST_USER_SET_VRING_NUM, 0, &s, 8, NULL, 0), 0);
	s = (struct nvl_vhost_vring_state){ 1, 1234 };
	assert_int_equal(send_msg(&dst, NVL_VHOST_USER_SET_VRING_BASE, 0, &s, 8, NULL, 0), 0);
	{
		struct nvl_vhost_vring_addr a = { .index = 1, .desc_user_addr = MEM_UVA + 0x4000,
						  .avail_user_addr = MEM_UVA + 0x5000,
						  .used_user_addr = MEM_UVA + 0x6000 };

		assert_int_equal(send_msg(&dst, NVL_VHOST_USER_SET_VRING_ADDR, 0, &a, 40, NULL, 0),
				 0);
	}
	v = 1;
	fd = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(send_msg(&dst, NVL_VHOST_USER_SET_VRING_KICK, 0, &v, 8, &fd, 1), 0);
	s = (struct nvl_vhost_vring_state){ 1, 1 };
	assert_int_equal(send_msg(&dst, NVL_VHOST_USER_SET_VRING_ENABLE, 0, &s, 8, NULL, 0), 0);
	assert_int_equal(g_params.ring.base, 1234);
	assert_null(g_params.ring.log);
	vhost_reset_state(&dst);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_bits),
		cmocka_unit_test(test_log_hva),
		cmocka_unit_test(test_log_used_ring),
		cmocka_unit_test(test_set_log_base),
		cmocka_unit_test(test_log_all_runtime),
		cmocka_unit_test(test_handover),
	};

	nvl_log_set_level(0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
