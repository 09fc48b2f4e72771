/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the vhost-user message handler. The input is a stream of
 * records [fd byte][12-byte header][payload of header.size bytes]; the low
 * two bits of the fd byte attach that many memfds (1 MiB each) or eventfds
 * (bit 2), as SCM_RIGHTS would. Every record goes through
 * vhost_dev_handle_msg() against a stub device whose queues stop at once, so
 * the whole protocol state machine (memory tables, rings, inflight regions,
 * resets) is reachable. The handler must never crash, leak or touch memory
 * outside what the messages mapped.
 */
#include "function/vhost_user.c"

#include <sys/eventfd.h>

static int g_memfd = -1;

static int
fz_xmit(struct vhost_dev *d, const void *buf, size_t len, int fd)
{
	(void)d;
	(void)buf;
	(void)len;
	(void)fd;
	return 0;
}

static int
fz_start(struct vhost_dev *d, unsigned q, const struct vhost_queue_params *p)
{
	volatile uint16_t sink;

	(void)d;
	(void)q;
	/* touch the translated rings like a queue would */
	sink = ((struct nvl_vring_avail *)p->ring.avail)->idx;
	sink = ((struct nvl_vring_used *)p->ring.used)->idx;
	sink = ((struct nvl_vring_desc *)p->ring.desc)[p->ring.size - 1].next;
	(void)sink;
	if (p->ring.inflight)
		p->ring.inflight->desc[p->ring.size - 1].inflight = 0;
	if (p->kickfd >= 0)
		close(p->kickfd);
	if (p->callfd >= 0)
		close(p->callfd);
	return 0;
}

static void
fz_stop(struct vhost_dev *d, unsigned q)
{
	vhost_dev_queue_stopped(d, q, 0);
}

static void
fz_set_call(struct vhost_dev *d, unsigned q, int fd)
{
	(void)d;
	(void)q;
	if (fd >= 0)
		close(fd);
}

static void
fz_get_config(struct vhost_dev *d, uint8_t *buf, uint32_t off, uint32_t len)
{
	(void)d;
	(void)off;
	memset(buf, 0x11, len);
}

static const struct vhost_dev_ops fz_ops = {
	.queue_start = fz_start,
	.queue_stop = fz_stop,
	.queue_set_call = fz_set_call,
	.get_config = fz_get_config,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vhost_dev d;
	unsigned nmsg = 0;

	if (g_memfd < 0) {
		nvl_log_set_level(0);
		nvl_log_set_fd(-1, false);
		g_memfd = memfd_create("fuzz-guest", MFD_CLOEXEC);
		if (g_memfd < 0 || ftruncate(g_memfd, 1 << 20) < 0)
			abort();
	}
	vhost_dev_init(&d);
	d.ops = &fz_ops;
	d.name = "fuzz";
	d.max_queues = 4;
	d.xmit = fz_xmit;
	d.state = VHOST_DEV_CONNECTED;
	while (size >= 1 + sizeof(struct nvl_vhost_user_hdr) && nmsg++ < 64) {
		struct nvl_vhost_user_hdr h;
		uint8_t payload[VHOST_MSG_MAX_PAYLOAD];
		int fds[VHOST_MAX_FDS];
		unsigned nfds = data[0] & 3, plen;
		bool efd = data[0] & 4;

		memcpy(&h, data + 1, sizeof(h));
		data += 1 + sizeof(h);
		size -= 1 + sizeof(h);
		plen = h.size <= VHOST_MSG_MAX_PAYLOAD ? h.size : 0;
		if (plen > size)
			plen = (unsigned)size;
		/* the socket layer never hands over a short payload: neither do we */
		h.size = h.size <= VHOST_MSG_MAX_PAYLOAD ? plen : h.size;
		memset(payload, 0, sizeof(payload));
		memcpy(payload, data, plen);
		data += plen;
		size -= plen;
		for (unsigned i = 0; i < nfds; i++)
			fds[i] = efd ? eventfd(0, EFD_CLOEXEC) : dup(g_memfd);
		if (vhost_dev_handle_msg(&d, &h, payload, fds, nfds) < 0) {
			for (unsigned i = 0; i < nfds; i++)
				if (fds[i] >= 0)
					close(fds[i]);
			break;
		}
		for (unsigned i = 0; i < nfds; i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	vu_reset_state(&d);
	vhost_mem_free(d.op_mem);
	return 0;
}
