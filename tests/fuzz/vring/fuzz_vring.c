/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the descriptor-chain walker and the virtio-blk request
 * parser over a fake guest memory map (two regions, adjacent in guest-physical
 * space, apart in ours). Input: [size byte][flags byte][descriptor table]
 * [avail heads...] followed by bytes copied into the guest's data area, where
 * indirect tables and request headers can live. Descriptor addresses with a
 * zero top byte are folded into guest memory so chains are often valid; the
 * others stay as they are and must be refused. Every head is walked directly,
 * then the whole ring is served by a queue on a RAM bdev (data really moves
 * between bdev and guest buffers), with or without force_in_order and the
 * inflight region, then "crashed" and recovered.
 */
#include "function/vblk.c"
#include "function/vblk_queue.c"
#include "unit/function/fake_guest.h"

static struct fake_guest g_g;
static struct nvl_vblk *g_c;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fz_init(void)
{
	struct nvl_bdev_ram_opts o = { .name = "fz0", .num_blocks = 4096, .block_size = 512 };
	struct nvl_bdev *b;

	nvl_log_set_level(0);
	nvl_log_set_fd(-1, false);
	if (nvl_bdev_ram_create(&o, &b) < 0)
		abort();
	fg_init(&g_g, 64);
	g_c = calloc(1, sizeof(*g_c));
	nvl_strlcpy(g_c->name, "fuzz", sizeof(g_c->name));
	g_c->num_queues = 1;
	g_c->queue_size = 64;
	if (nvl_bdev_open("fz0", true, "fuzz", &g_c->desc) < 0)
		abort();
	g_c->bdev = g_c->desc->bdev;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhost_queue_params p = { .kickfd = -1, .callfd = -1 };
	struct nvl_vring_desc *t;
	struct vblk_queue *q;
	struct iovec iov[32];
	struct vring_chain ch = { .iov = iov, .max_iov = 32 };
	uint16_t qsize, nheads;
	uint64_t features = 0;
	uint8_t flags;

	if (g_c == NULL)
		fz_init();
	if (size < 2)
		return 0;
	qsize = (uint16_t)(1u << (data[0] % 7));   /* 1..64 */
	flags = data[1];
	data += 2;
	size -= 2;
	g_g.size = qsize;
	g_g.avail_idx = 0;
	memset(g_g.r0, 0, FG_DATA_OFF + 0x10000);
	memset(g_g.inflight, 0, g_g.inflight_len);
	t = fg_desc_table(&g_g);
	for (uint16_t i = 0; i < qsize && size >= 16; i++) {
		memcpy(&t[i], data, 16);
		if ((t[i].addr >> 56) == 0)
			t[i].addr = FG_GPA0 + t[i].addr % (FG_SIZE0 + FG_SIZE1);
		data += 16;
		size -= 16;
	}
	nheads = size > 0 ? (uint16_t)(data[0] % (qsize + 1)) : 0;
	if (size > 0) {
		data++;
		size--;
	}
	for (uint16_t i = 0; i < nheads && size >= 1; i++) {
		fg_push(&g_g, (uint16_t)(data[0] % (qsize + (flags & 0x80 ? 1 : 0))));
		data++;
		size--;
	}
	memcpy(g_g.r0 + FG_DATA_OFF, data, NVL_MIN(size, 0x10000));

	if (flags & 1)
		features |= 1ULL << NVL_VIRTIO_RING_F_INDIRECT_DESC;
	if (flags & 2)
		features |= 1ULL << NVL_VIRTIO_RING_F_EVENT_IDX;
	/* the walker alone, on every index */
	{
		struct vring vr;
		uint16_t batch[64];
		struct vring_setup s;

		fg_setup(&g_g, &s, features, false, 0);
		if (vring_init(&vr, &s, batch) == 0) {
			for (uint16_t h = 0; h < qsize; h++)
				vring_walk(&vr, h, &ch);
		}
	}
	/* the device: serve the ring, then crash and recover */
	g_c->force_in_order = flags & 4;
	fg_setup(&g_g, &p.ring, features, flags & 8, 0);
	if (vblk_queue_alloc(g_c, 0, &p, &q) < 0)
		return 0;
	g_c->queues[0] = q;
	vblk_q_resubmit(q);
	vblk_q_poll(q);
	vblk_q_free(q);
	g_c->queues[0] = NULL;
	if (vblk_queue_alloc(g_c, 0, &p, &q) == 0) {
		vblk_q_resubmit(q);
		vblk_q_poll(q);
		vblk_q_free(q);
	}
	g_c->queues[0] = NULL;
	return 0;
}
