/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the vhost-user message handling: the handshake QEMU's
 * vhost-user-blk does, replies and REPLY_ACKs, payload-size and index
 * validation, memory-table and inflight-fd messages with real memfds,
 * queue start/stop sequencing (GET_VRING_BASE and SET_VRING_ENABLE 0 wait
 * for the queue to stop, a disabled ring resumes where it stopped), resets,
 * and the framing of received bytes and fds (vhost_rx_want / vhost_rx_feed). The
 * device side is a fake that records what it is asked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "function/vhost_user.c"
#include "function/vhost_dev.c"

#include <sys/eventfd.h>

static uint8_t g_reply[512];
static size_t g_reply_len;
static int g_reply_fd = -1;
static unsigned g_replies;
static unsigned g_started, g_stop_asked;
static bool g_stop_sync = true;
static struct vhost_queue_params g_params;

static int
xmit_capture(struct vhost_dev *d, const void *buf, size_t len, int fd)
{
	(void)d;
	assert_true(len <= sizeof(g_reply));
	memcpy(g_reply, buf, len);
	g_reply_len = len;
	if (g_reply_fd >= 0)
		close(g_reply_fd);
	g_reply_fd = fd >= 0 ? dup(fd) : -1;
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
	if (p->kickfd >= 0)
		close(p->kickfd);
	if (p->callfd >= 0)
		close(p->callfd);
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
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(off + i);
}

static const struct vhost_dev_ops st_ops = {
	.queue_start = st_queue_start,
	.queue_stop = st_queue_stop,
	.queue_set_call = st_set_call,
	.get_config = st_get_config,
};

static void
dev_init(struct vhost_dev *d)
{
	vhost_dev_init(d);
	d->ops = &st_ops;
	d->name = "ut";
	d->max_queues = 2;
	d->xmit = xmit_capture;
	d->state = VHOST_DEV_CONNECTED;
	g_replies = 0;
	g_started = 0;
	g_stop_asked = 0;
	g_stop_sync = true;
}

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

static void
test_handshake(void **state)
{
	struct vhost_dev d;
	uint64_t v;

	(void)state;
	dev_init(&d);
	d.dev_features = 1ULL << 9;
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_GET_FEATURES, 0, NULL, 0, NULL, 0), 0);
	v = reply_u64();
	assert_true(v & (1ULL << NVL_VHOST_USER_F_PROTOCOL_FEATURES));
	assert_true(v & (1ULL << NVL_VIRTIO_F_VERSION_1));
	assert_true(v & (1ULL << 9));
	assert_int_equal(((struct nvl_vhost_user_hdr *)g_reply)->flags,
			 NVL_VHOST_USER_VERSION | NVL_VHOST_USER_FLAG_REPLY);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_GET_PROTOCOL_FEATURES, 0, NULL, 0, NULL, 0), 0);
	v = reply_u64();
	assert_true(v & (1ULL << NVL_VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	assert_true(v & (1ULL << NVL_VHOST_USER_PROTOCOL_F_CONFIG));
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_PROTOCOL_FEATURES, 0, &v, 8, NULL, 0), 0);
	/* with REPLY_ACK, a refused request gets a non-zero ack */
	g_replies = 0;
	v = 1ULL << 60;
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_FEATURES, NVL_VHOST_USER_FLAG_NEED_REPLY,
				  &v, 8, NULL, 0), 0);
	assert_int_equal(g_replies, 1);
	assert_int_not_equal(reply_u64(), 0);
	v = (1ULL << NVL_VIRTIO_F_VERSION_1) | (1ULL << NVL_VHOST_USER_F_PROTOCOL_FEATURES);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_FEATURES, NVL_VHOST_USER_FLAG_NEED_REPLY,
				  &v, 8, NULL, 0), 0);
	assert_int_equal(reply_u64(), 0);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_GET_QUEUE_NUM, 0, NULL, 0, NULL, 0), 0);
	assert_int_equal(reply_u64(), 2);
	/* GET_CONFIG answers exactly the size asked */
	{
		struct nvl_vhost_user_config c = { .offset = 4, .size = 60 };

		assert_int_equal(send_msg(&d, NVL_VHOST_USER_GET_CONFIG, 0, &c, 12 + 60, NULL, 0),
				 0);
		assert_int_equal(g_reply_len, 12 + 12 + 60);
		assert_int_equal(g_reply[12 + 12], 4);
		c.size = 300;
		assert_true(send_msg(&d, NVL_VHOST_USER_GET_CONFIG, 0, &c, 12 + 60, NULL, 0) < 0);
		c.size = 60;
		c.offset = 0xfffffff0;
		assert_true(send_msg(&d, NVL_VHOST_USER_GET_CONFIG, 0, &c, 12 + 60, NULL, 0) < 0);
	}
	/* bad version, reply flag set, oversized payload */
	{
		struct nvl_vhost_user_hdr h = { NVL_VHOST_USER_GET_FEATURES, 2, 0 };

		assert_int_equal(vhost_dev_handle_msg(&d, &h, NULL, NULL, 0), -EPROTO);
		h.flags = NVL_VHOST_USER_VERSION | NVL_VHOST_USER_FLAG_REPLY;
		assert_int_equal(vhost_dev_handle_msg(&d, &h, NULL, NULL, 0), -EPROTO);
		h.flags = NVL_VHOST_USER_VERSION;
		h.size = VHOST_MSG_MAX_PAYLOAD + 1;
		assert_int_equal(vhost_dev_handle_msg(&d, &h, NULL, NULL, 0), -EPROTO);
	}
	/* a GET_* with a wrong payload size drops the connection */
	assert_true(send_msg(&d, NVL_VHOST_USER_GET_VRING_BASE, 0, &v, 4, NULL, 0) < 0);
	vhost_reset_state(&d);
}

static int
mk_memfd(size_t size)
{
	int fd = memfd_create("ut", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static void
test_rings(void **state)
{
	struct vhost_dev d;
	struct nvl_vhost_memory tbl = { .nregions = 1 };
	struct nvl_vhost_vring_state s;
	struct nvl_vhost_vring_addr a = { 0 };
	struct nvl_vhost_inflight_msg im = { .num_queues = 2, .queue_size = 64 };
	uint64_t v;
	int fds[2];

	(void)state;
	dev_init(&d);
	v = (1ULL << NVL_VIRTIO_F_VERSION_1) | (1ULL << NVL_VHOST_USER_F_PROTOCOL_FEATURES);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_FEATURES, 0, &v, 8, NULL, 0), 0);
	v = VU_PROTOCOL_FEATURES;
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_PROTOCOL_FEATURES, 0, &v, 8, NULL, 0), 0);

	/* inflight region: GET returns a memfd, SET maps it */
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_GET_INFLIGHT_FD, 0, &im, 24, NULL, 0), 0);
	assert_true(g_reply_fd >= 0);
	memcpy(&im, g_reply + 12, sizeof(im));
	assert_int_equal(im.mmap_size, 2 * vring_inflight_queue_bytes(64));
	fds[0] = g_reply_fd;
	g_reply_fd = -1;
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_INFLIGHT_FD,
				  NVL_VHOST_USER_FLAG_NEED_REPLY, &im, 24, fds, 1), 0);
	assert_int_equal(reply_u64(), 0);
	assert_non_null(d.inflight_base);
	/* a region too small for what it claims, or too many queues */
	im.mmap_size = 100;
	fds[0] = mk_memfd(4096);
	send_msg(&d, NVL_VHOST_USER_SET_INFLIGHT_FD, NVL_VHOST_USER_FLAG_NEED_REPLY, &im, 24,
		 fds, 1);
	assert_int_not_equal(reply_u64(), 0);
	im.num_queues = 3;
	assert_true(send_msg(&d, NVL_VHOST_USER_GET_INFLIGHT_FD, 0, &im, 24, NULL, 0) < 0);

	/* memory table with one memfd region */
	fds[0] = mk_memfd(1 << 20);
	tbl.regions[0] = (struct nvl_vhost_memory_region){ 0, 1 << 20, 0x500000, 0 };
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_MEM_TABLE, NVL_VHOST_USER_FLAG_NEED_REPLY,
				  &tbl, 8 + 32, fds, 1), 0);
	assert_int_equal(reply_u64(), 0);
	assert_non_null(d.mem);
	/* region count and fd count disagree */
	fds[0] = mk_memfd(1 << 20);
	tbl.nregions = 2;
	send_msg(&d, NVL_VHOST_USER_SET_MEM_TABLE, NVL_VHOST_USER_FLAG_NEED_REPLY, &tbl, 8 + 64,
		 fds, 1);
	assert_int_not_equal(reply_u64(), 0);
	assert_non_null(d.mem);

	/* ring 1: size, base, addresses, kick; starts only once enabled */
	s = (struct nvl_vhost_vring_state){ 1, 64 };
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_NUM, 0, &s, 8, NULL, 0), 0);
	s = (struct nvl_vhost_vring_state){ 1, 7 };
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_BASE, 0, &s, 8, NULL, 0), 0);
	a = (struct nvl_vhost_vring_addr){ .index = 1, .desc_user_addr = 0x500000,
					   .avail_user_addr = 0x501000,
					   .used_user_addr = 0x502000 };
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_ADDR, 0, &a, 40, NULL, 0), 0);
	v = 1;
	fds[0] = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_KICK, 0, &v, 8, fds, 1), 0);
	assert_int_equal(g_started, 0);
	s = (struct nvl_vhost_vring_state){ 1, 1 };
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_ENABLE, 0, &s, 8, NULL, 0), 0);
	assert_int_equal(g_started, 1);
	assert_int_equal(g_params.ring.size, 64);
	assert_int_equal(g_params.ring.base, 7);
	assert_ptr_equal(g_params.ring.avail, d.mem->r[0].hva + 0x1000);
	assert_non_null(g_params.ring.inflight);
	assert_true(g_params.kickfd >= 0);
	/* changing a running ring is refused */
	s = (struct nvl_vhost_vring_state){ 1, 32 };
	send_msg(&d, NVL_VHOST_USER_SET_VRING_NUM, NVL_VHOST_USER_FLAG_NEED_REPLY, &s, 8, NULL, 0);
	assert_int_not_equal(reply_u64(), 0);
	/* a call fd can change on the fly */
	v = 1;
	fds[0] = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_CALL, 0, &v, 8, fds, 1), 0);
	/* NOFD flag with an fd attached, index out of range */
	v = 1 | NVL_VHOST_USER_VRING_NOFD_MASK;
	fds[0] = eventfd(0, EFD_CLOEXEC);
	send_msg(&d, NVL_VHOST_USER_SET_VRING_CALL, NVL_VHOST_USER_FLAG_NEED_REPLY, &v, 8, fds, 1);
	assert_int_not_equal(reply_u64(), 0);
	s = (struct nvl_vhost_vring_state){ 5, 64 };
	send_msg(&d, NVL_VHOST_USER_SET_VRING_NUM, NVL_VHOST_USER_FLAG_NEED_REPLY, &s, 8, NULL, 0);
	assert_int_not_equal(reply_u64(), 0);

	/* GET_VRING_BASE: the reply waits until the device stopped the queue */
	g_stop_sync = false;
	g_replies = 0;
	s = (struct nvl_vhost_vring_state){ 1, 0 };
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_GET_VRING_BASE, 0, &s, 8, NULL, 0), 0);
	assert_int_equal(g_stop_asked, 1);
	assert_int_equal(g_replies, 0);
	assert_true(d.op_active);
	vhost_dev_queue_stopped(&d, 1, 99);
	assert_int_equal(g_replies, 1);
	memcpy(&s, g_reply + 12, 8);
	assert_int_equal(s.index, 1);
	assert_int_equal(s.num, 99);
	assert_false(d.vq[1].running);
	assert_false(d.vq[1].kick_set);
	g_stop_sync = true;

	/* a memory table change restarts running queues around the swap */
	v = 1;
	fds[0] = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_KICK, 0, &v, 8, fds, 1), 0);
	assert_int_equal(g_started, 2);
	tbl.nregions = 1;
	fds[0] = mk_memfd(1 << 20);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_MEM_TABLE, 0, &tbl, 8 + 32, fds, 1), 0);
	assert_int_equal(g_stop_asked, 2);
	assert_int_equal(g_started, 3);
	assert_int_equal(g_params.ring.base, 42);

	/* RESET_DEVICE stops everything and forgets the rings */
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_RESET_DEVICE, NVL_VHOST_USER_FLAG_NEED_REPLY,
				  NULL, 0, NULL, 0), 0);
	assert_int_equal(reply_u64(), 0);
	assert_false(d.vq[1].running);
	assert_null(d.mem);
	assert_null(d.inflight_base);
	/* unknown requests are refused, not fatal */
	send_msg(&d, 999, NVL_VHOST_USER_FLAG_NEED_REPLY, NULL, 0, NULL, 0);
	assert_int_not_equal(reply_u64(), 0);
	vhost_reset_state(&d);
	if (g_reply_fd >= 0)
		close(g_reply_fd);
	g_reply_fd = -1;
}

/* SET_VRING_ENABLE 0 stops a running ring before it answers; a disabled ring
 * is not started by anything but SET_VRING_ENABLE 1, which resumes it at the
 * index where it stopped. */
static void
test_vring_enable(void **state)
{
	struct vhost_dev d;
	struct nvl_vhost_memory tbl = { .nregions = 1 };
	struct nvl_vhost_vring_state s;
	struct nvl_vhost_vring_addr a = { .index = 0, .desc_user_addr = 0x500000,
					  .avail_user_addr = 0x501000,
					  .used_user_addr = 0x502000 };
	uint64_t v;
	int fds[1];

	(void)state;
	dev_init(&d);
	v = (1ULL << NVL_VIRTIO_F_VERSION_1) | (1ULL << NVL_VHOST_USER_F_PROTOCOL_FEATURES);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_FEATURES, 0, &v, 8, NULL, 0), 0);
	v = VU_PROTOCOL_FEATURES;
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_PROTOCOL_FEATURES, 0, &v, 8, NULL, 0), 0);
	fds[0] = mk_memfd(1 << 20);
	tbl.regions[0] = (struct nvl_vhost_memory_region){ 0, 1 << 20, 0x500000, 0 };
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_MEM_TABLE, 0, &tbl, 8 + 32, fds, 1), 0);
	s = (struct nvl_vhost_vring_state){ 0, 64 };
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_NUM, 0, &s, 8, NULL, 0), 0);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_ADDR, 0, &a, 40, NULL, 0), 0);
	v = 0;
	fds[0] = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_KICK, 0, &v, 8, fds, 1), 0);
	assert_int_equal(g_started, 0);
	/* disabling a ring that does not run answers at once */
	g_replies = 0;
	s = (struct nvl_vhost_vring_state){ 0, 0 };
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_ENABLE,
				  NVL_VHOST_USER_FLAG_NEED_REPLY, &s, 8, NULL, 0), 0);
	assert_int_equal(g_replies, 1);
	assert_int_equal(reply_u64(), 0);
	assert_int_equal(g_stop_asked, 0);
	/* only 0 and 1 are valid */
	s = (struct nvl_vhost_vring_state){ 0, 2 };
	send_msg(&d, NVL_VHOST_USER_SET_VRING_ENABLE, NVL_VHOST_USER_FLAG_NEED_REPLY, &s, 8, NULL,
		 0);
	assert_int_not_equal(reply_u64(), 0);
	assert_int_equal(g_started, 0);
	s = (struct nvl_vhost_vring_state){ 0, 1 };
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_ENABLE, 0, &s, 8, NULL, 0), 0);
	assert_int_equal(g_started, 1);
	assert_int_equal(g_params.ring.base, 0);

	/* disable a running ring: the ack waits for the queue to stop (requests in flight) */
	g_stop_sync = false;
	g_replies = 0;
	s = (struct nvl_vhost_vring_state){ 0, 0 };
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_ENABLE,
				  NVL_VHOST_USER_FLAG_NEED_REPLY, &s, 8, NULL, 0), 0);
	assert_int_equal(g_stop_asked, 1);
	assert_int_equal(g_replies, 0);
	assert_true(d.op_active);
	assert_true(d.vq[0].stopping);
	vhost_dev_queue_stopped(&d, 0, 5);
	assert_int_equal(g_replies, 1);
	assert_int_equal(reply_u64(), 0);
	assert_false(d.op_active);
	assert_false(d.vq[0].running);
	assert_false(d.vq[0].enabled);
	/* a new kick fd, or a second disable, does not start a disabled ring */
	v = 0;
	fds[0] = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_KICK, 0, &v, 8, fds, 1), 0);
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_ENABLE, 0, &s, 8, NULL, 0), 0);
	assert_int_equal(g_started, 1);
	assert_int_equal(g_stop_asked, 1);
	/* enable again: resumes at the index where it stopped, nothing skipped or redone */
	s = (struct nvl_vhost_vring_state){ 0, 1 };
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_ENABLE, 0, &s, 8, NULL, 0), 0);
	assert_int_equal(g_started, 2);
	assert_int_equal(g_params.ring.base, 5);
	assert_true(d.vq[0].running);
	/* enabling a running ring again does not start it twice */
	assert_int_equal(send_msg(&d, NVL_VHOST_USER_SET_VRING_ENABLE, 0, &s, 8, NULL, 0), 0);
	assert_int_equal(g_started, 2);
	g_stop_sync = true;
	vhost_reset_state(&d);
	if (g_reply_fd >= 0)
		close(g_reply_fd);
	g_reply_fd = -1;
}

/* Store bytes where vhost_rx_want() says and account them, as vu_recv() does. */
static int
rx_put(struct vhost_dev *d, const void *bytes, size_t n, const int *fds, size_t nfds)
{
	void *buf;

	assert_true(n <= vhost_rx_want(d, &buf));
	memcpy(buf, bytes, n);
	return vhost_rx_feed(d, n, fds, nfds, false);
}

static bool
fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void
test_rx_framing(void **state)
{
	struct nvl_vhost_user_hdr h = { NVL_VHOST_USER_SET_PROTOCOL_FEATURES,
					NVL_VHOST_USER_VERSION, 8 };
	uint64_t v = 0x1234;
	struct vhost_dev d;
	void *buf;
	int fds[10];

	(void)state;
	dev_init(&d);
	/* a header in two reads, the payload in two, an fd with the payload */
	assert_int_equal(vhost_rx_want(&d, &buf), 12);
	assert_int_equal(rx_put(&d, &h, 5, NULL, 0), 0);
	assert_int_equal(vhost_rx_want(&d, &buf), 7);
	assert_int_equal(rx_put(&d, (uint8_t *)&h + 5, 7, NULL, 0), 0);
	assert_int_equal(vhost_rx_want(&d, &buf), 8);
	fds[0] = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(rx_put(&d, &v, 3, fds, 1), 0);
	assert_int_equal(rx_put(&d, (uint8_t *)&v + 3, 5, NULL, 0), 1);
	assert_int_equal(vhost_rx_want(&d, &buf), 0);
	assert_int_equal(d.rx_hdr.request, NVL_VHOST_USER_SET_PROTOCOL_FEATURES);
	assert_memory_equal(d.rx_payload, &v, 8);
	assert_int_equal(d.rx_nfds, 1);
	assert_int_equal(d.rx_fds[0], fds[0]);
	rx_reset(&d);
	assert_false(fd_open(fds[0]));
	/* a message without payload is complete with its header */
	h.size = 0;
	assert_int_equal(rx_put(&d, &h, 12, NULL, 0), 1);
	rx_reset(&d);
	/* an oversized payload is refused before any of it is read */
	h.size = VHOST_MSG_MAX_PAYLOAD + 1;
	assert_int_equal(rx_put(&d, &h, 12, NULL, 0), -EPROTO);
	rx_reset(&d);
	/* more fds than a message may carry: the extra ones are closed */
	for (unsigned i = 0; i < 10; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	h.size = 8;
	assert_int_equal(rx_put(&d, &h, 12, fds, 6), 0);
	assert_int_equal(rx_put(&d, &v, 8, fds + 6, 4), 1);
	assert_int_equal(d.rx_nfds, VHOST_MAX_FDS);
	assert_true(fd_open(fds[7]));
	assert_false(fd_open(fds[8]));
	assert_false(fd_open(fds[9]));
	rx_reset(&d);
	for (unsigned i = 0; i < 10; i++)
		assert_false(fd_open(fds[i]));
	/* control data cut by the kernel; the peer closing; a read past the message */
	fds[0] = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(vhost_rx_feed(&d, 4, fds, 1, true), -EPROTO);
	rx_reset(&d);
	assert_false(fd_open(fds[0]));
	assert_int_equal(rx_put(&d, &h, 4, NULL, 0), 0);
	assert_int_equal(vhost_rx_feed(&d, 0, NULL, 0, false), -ECONNRESET);
	rx_reset(&d);
	assert_int_equal(vhost_rx_feed(&d, 13, NULL, 0, false), -EPROTO);
	rx_reset(&d);
}

static void
test_listen_stale(void **state)
{
	char path[] = "/tmp/nvl-vhost-ut-XXXXXX";
	char sock[64];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	(void)state;
	assert_non_null(mkdtemp(path));
	snprintf(sock, sizeof(sock), "%s/s", path);
	/* a dead server's socket file */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	nvl_strlcpy(sa.sun_path, sock, sizeof(sa.sun_path));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	/* vhost_dev_listen needs a reactor for its fd handler: check only the probe logic */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0);
	close(fd);
	unlink(sock);
	/* a regular file where the socket should be */
	fd = open(sock, O_CREAT | O_WRONLY, 0600);
	close(fd);
	{
		struct vhost_dev d;

		dev_init(&d);
		assert_int_equal(vhost_dev_listen(&d, sock), -EEXIST);
		assert_int_equal(vhost_dev_listen(&d, "/tmp/this/path/is/much/too/long/for/a/unix/"
						  "socket/address/so/it/must/be/refused/before/"
						  "anything/else/happens/xxxxxxxxxxxxxx"),
				 -ENAMETOOLONG);
	}
	unlink(sock);
	rmdir(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_rings),
		cmocka_unit_test(test_vring_enable),
		cmocka_unit_test(test_rx_framing),
		cmocka_unit_test(test_listen_stale),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
