/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fake vhost-user device for the vhost fuzz targets (include after
 * function/vhost_user.c): queues touch their translated rings like a real
 * queue would, mark them in the dirty log when they are given one (as a
 * logging queue marks the used ring and the data it writes), stop at once,
 * and close the fds they are given; replies go nowhere. g_memfd is a 1 MiB
 * memfd the harness dups for "guest memory" fds; fz_memfd() makes one of a
 * given size.
 */
#ifndef NVL_FUZZ_VHOST_FAKE_DEV_H
#define NVL_FUZZ_VHOST_FAKE_DEV_H

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

/* A fresh memfd of size bytes (SET_LOG_BASE and friends with random file sizes);
 * inline: not every target that includes this header uses it. */
static inline int
fz_memfd(size_t size)
{
	int fd = memfd_create("fuzz-sized", MFD_CLOEXEC);

	if (fd >= 0 && ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
fz_start(struct vhost_dev *d, unsigned q, const struct vhost_queue_params *p)
{
	volatile uint16_t sink;

	(void)d;
	(void)q;
	if (p->ring.log) {
		/* what a logging queue marks: the used ring (by its log address,
		 * which the handlers checked against the log) and ring memory by our
		 * address; every bit must land inside the log's mapping */
		uint64_t usz = sizeof(struct nvl_vring_used) +
			       (uint64_t)p->ring.size * sizeof(struct nvl_vring_used_elem) + 2;

		if (p->ring.log_used && vhost_log_gpa(p->ring.log, p->ring.log_used_gpa, usz) < 0)
			abort();
		if (vhost_log_hva(p->ring.log, p->ring.mem, p->ring.desc,
				  (uint64_t)p->ring.size * sizeof(struct nvl_vring_desc)) < 0)
			abort();   /* guest memory is covered by the log (SET_LOG_BASE checks) */
	}
	if (p->logfd >= 0)
		close(p->logfd);
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

/* d ready for messages from a connected front-end, with the fake device. */
static void
fz_dev_init(struct vhost_dev *d)
{
	if (g_memfd < 0) {
		nvl_log_set_level(0);
		nvl_log_set_fd(-1, false);
		g_memfd = memfd_create("fuzz-guest", MFD_CLOEXEC);
		if (g_memfd < 0 || ftruncate(g_memfd, 1 << 20) < 0)
			abort();
	}
	vhost_dev_init(d);
	d->ops = &fz_ops;
	d->name = "fuzz";
	d->max_queues = 4;
	d->xmit = fz_xmit;
	d->state = VHOST_DEV_CONNECTED;
}

#endif
