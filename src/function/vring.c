/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Split virtqueue, device side (VIRTIO 1.2 section 2.7), with the inflight
 * I/O tracking of the vhost-user specification ("Inflight I/O tracking").
 *
 * Everything here reads memory the guest (and the front-end) can change at
 * any time. Rules: read each guest field once into a local (NVL_READ_ONCE or
 * a copy followed by a compiler barrier), validate the local, use only the
 * local; every index is checked against the ring size; every address goes
 * through the memory table. A broken ring is reported to the caller, which
 * stops the queue; it never makes us touch memory outside the guest's.
 *
 * Crash consistency of the inflight region (the daemon may be killed between
 * any two stores; stores to a shared mapping survive the process):
 *   pop:      desc[h].counter = N; then desc[h].inflight = 1
 *   complete: desc[h].next = last_batch_head; last_batch_head = h; used elem;
 *             then used->idx; then desc[h].inflight = 0; then region used_idx
 * so on restart (vring_recover) every request is either visibly completed in
 * the used ring or flagged in flight, and a batch whose used->idx store
 * happened but whose flags were not cleared yet is recognised by
 * region used_idx != used->idx and cleared by walking the `next` links.
 *
 * Dirty logging (live migration): while the front-end logs, every byte we
 * store into the used ring (elements, idx, flags, avail_event) is marked in
 * the log by its guest physical address (the ring's log_guest_addr plus the
 * offset), after the store; the device marks the data it writes
 * (vring_log_write).
 *
 * Threading: a struct vring belongs to the reactor of its queue.
 */
#include "function/vhost_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

NVL_LOG_DECLARE_COMPONENT(vhost);

#define compiler_barrier() __asm__ __volatile__("" ::: "memory")

static inline uint16_t *
vring_used_event(const struct vring *vr)
{
	return &vr->avail->ring[vr->size];
}

static inline uint16_t *
vring_avail_event(const struct vring *vr)
{
	/* the le16 after the last used element (2.7.8) */
	return (uint16_t *)((uint8_t *)vr->used + sizeof(struct nvl_vring_used) +
			    (size_t)vr->size * sizeof(struct nvl_vring_used_elem));
}

/* VIRTIO 2.7.7.2: notify if new_idx moved past event_idx since old_idx. */
static inline bool
vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

int
vring_init(struct vring *vr, const struct vring_setup *s, uint16_t *batch)
{
	memset(vr, 0, sizeof(*vr));
	if (s->size == 0 || s->size > VHOST_MAX_RING || !NVL_IS_POW2(s->size))
		return -EINVAL;
	if (((uintptr_t)s->desc & (NVL_VRING_DESC_ALIGN - 1)) ||
	    ((uintptr_t)s->avail & (NVL_VRING_AVAIL_ALIGN - 1)) ||
	    ((uintptr_t)s->used & (NVL_VRING_USED_ALIGN - 1)))
		return -EINVAL;
	vr->size = s->size;
	vr->mask = s->size - 1;
	vr->desc = s->desc;
	vr->avail = s->avail;
	vr->used = s->used;
	vr->mem = s->mem;
	vr->event_idx = s->features & (1ULL << NVL_VIRTIO_RING_F_EVENT_IDX);
	vr->indirect = s->features & (1ULL << NVL_VIRTIO_RING_F_INDIRECT_DESC);
	vr->inflight = s->inflight;
	vr->batch = batch;
	vr->last_avail_idx = s->base;
	vr->log = s->log;
	vr->log_used = s->log != NULL && s->log_used;
	vr->log_used_gpa = s->log_used_gpa;
	vr->used_idx = NVL_READ_ONCE(vr->used->idx);
	vr->used_published = vr->used_idx;
	vr->counter = 1;
	return 0;
}

struct inflight_ent {
	uint64_t counter;
	uint16_t head;
};

static int
inflight_cmp(const void *a, const void *b)
{
	const struct inflight_ent *x = a, *y = b;

	if (x->counter != y->counter)
		return x->counter < y->counter ? -1 : 1;
	return (int)x->head - (int)y->head;
}

int
vring_recover(struct vring *vr, uint16_t *heads, bool force_in_order, uint16_t base)
{
	struct nvl_vhost_inflight_split *inf = vr->inflight;
	struct inflight_ent *ents;
	uint16_t used_ring, region_used;
	uint64_t maxc = 0;
	unsigned n = 0;

	/* pairs with our own release store of used->idx in an earlier life */
	used_ring = nvl_smp_load_acquire(&vr->used->idx);
	vr->used_idx = used_ring;
	vr->used_published = used_ring;
	vr->nbatch = 0;
	if (inf == NULL) {
		/* No tracking: the front-end's base is right after a clean stop. After a
		 * crash it is not (QEMU falls back to its own used index), but when
		 * completions are in submission order every entry before the used
		 * index is done and every one after it was not: resume from there. */
		if (base != used_ring && force_in_order) {
			NVL_NOTICELOG("vring: resuming in order at used index %u (base was %u)",
				      used_ring, base);
			vr->last_avail_idx = used_ring;
		} else {
			vr->last_avail_idx = base;
		}
		return 0;
	}
	if (NVL_READ_ONCE(inf->version) == 0) {
		/* fresh region: nothing was ever in flight */
		inf->desc_num = vr->size;
		inf->last_batch_head = 0;
		inf->used_idx = used_ring;
		inf->features = 0;
		nvl_smp_store_release(&inf->version, NVL_VHOST_INFLIGHT_VERSION);
		vr->last_avail_idx = base;
		vr->counter = 1;
		return 0;
	}
	if (NVL_READ_ONCE(inf->desc_num) != vr->size) {
		NVL_ERRLOG("vring: inflight region is for %u entries, ring has %u",
			   NVL_READ_ONCE(inf->desc_num), vr->size);
		return -EINVAL;
	}
	region_used = NVL_READ_ONCE(inf->used_idx);
	if (region_used != used_ring) {
		/* crashed after publishing a batch, before clearing its flags */
		uint16_t batch = (uint16_t)(used_ring - region_used);
		uint16_t idx = NVL_READ_ONCE(inf->last_batch_head);

		if (batch > vr->size) {
			NVL_ERRLOG("vring: inflight used index %u and ring used index %u are %u apart",
				   region_used, used_ring, batch);
			return -EINVAL;
		}
		for (uint16_t k = 0; k < batch && idx < vr->size; k++) {
			NVL_WRITE_ONCE(inf->desc[idx].inflight, 0);
			idx = NVL_READ_ONCE(inf->desc[idx].next);
		}
		nvl_smp_store_release(&inf->used_idx, used_ring);
	}
	ents = malloc(sizeof(*ents) * vr->size);
	if (ents == NULL)
		return -ENOMEM;
	for (uint16_t i = 0; i < vr->size; i++) {
		if (NVL_READ_ONCE(inf->desc[i].inflight)) {
			ents[n].head = i;
			ents[n].counter = NVL_READ_ONCE(inf->desc[i].counter);
			if (ents[n].counter > maxc)
				maxc = ents[n].counter;
			n++;
		}
	}
	qsort(ents, n, sizeof(*ents), inflight_cmp);
	for (unsigned i = 0; i < n; i++)
		heads[i] = ents[i].head;
	free(ents);
	vr->counter = maxc + 1;
	/* every entry taken before the crash is either in the used ring or in flight */
	vr->last_avail_idx = (uint16_t)(used_ring + n);
	return (int)n;
}

int
vring_avail_count(const struct vring *vr)
{
	/* acquire: the ring entries the driver wrote before idx are visible after */
	uint16_t idx = nvl_smp_load_acquire(&vr->avail->idx);
	uint16_t n = (uint16_t)(idx - vr->last_avail_idx);

	if (nvl_unlikely(n > vr->size))
		return -EIO;
	return n;
}

int
vring_pop(struct vring *vr, uint16_t *head)
{
	int n = vring_avail_count(vr);
	uint16_t h;

	if (n <= 0)
		return n;
	h = NVL_READ_ONCE(vr->avail->ring[vr->last_avail_idx & vr->mask]);
	if (nvl_unlikely(h >= vr->size))
		return -EIO;
	vr->last_avail_idx++;
	*head = h;
	return 1;
}

void
vring_inflight_start(struct vring *vr, uint16_t head)
{
	struct nvl_vhost_inflight_desc *d;

	if (vr->inflight == NULL)
		return;
	d = &vr->inflight->desc[head];
	NVL_WRITE_ONCE(d->counter, vr->counter++);
	/* counter before flag: a recovered flag always has its counter */
	nvl_smp_store_release(&d->inflight, 1);
}

int
vring_walk(const struct vring *vr, uint16_t head, struct vring_chain *c)
{
	const struct nvl_vring_desc *table = vr->desc;
	uint32_t n = vr->size, idx = head, budget = vr->size;
	bool in_indirect = false, writing = false;
	int rc;

	c->niov = 0;
	c->nread = 0;
	c->rlen = 0;
	c->wlen = 0;
	c->ndesc = 0;
	for (;;) {
		struct nvl_vring_desc d;

		if (idx >= n)
			return -EINVAL;
		if (budget == 0)
			return -EINVAL;   /* a loop, or a chain longer than its table */
		budget--;
		/* one private copy; indirect tables need not be aligned, hence memcpy */
		memcpy(&d, &table[idx], sizeof(d));
		compiler_barrier();
		c->ndesc++;
		if (d.flags & NVL_VRING_DESC_F_INDIRECT) {
			if (!vr->indirect || in_indirect || (d.flags & NVL_VRING_DESC_F_NEXT))
				return -EINVAL;
			if (d.len == 0 || d.len % sizeof(struct nvl_vring_desc) ||
			    d.len / sizeof(struct nvl_vring_desc) > NVL_VRING_MAX_SIZE)
				return -EINVAL;
			table = vhost_mem_gpa(vr->mem, d.addr, d.len);
			if (table == NULL)
				return -EFAULT;
			n = d.len / sizeof(struct nvl_vring_desc);
			budget = n;
			idx = 0;
			in_indirect = true;
			continue;
		}
		if (d.flags & NVL_VRING_DESC_F_WRITE)
			writing = true;
		else if (writing)
			return -EINVAL;   /* device-readable after device-writable */
		if (d.len > 0) {
			rc = vhost_mem_gpa_iov(vr->mem, d.addr, d.len, c->iov + c->niov,
					       c->max_iov - c->niov);
			if (rc < 0)
				return rc;
			c->niov += (unsigned)rc;
			if (writing) {
				c->wlen += d.len;
			} else {
				c->rlen += d.len;
				c->nread = c->niov;
			}
		}
		if (!(d.flags & NVL_VRING_DESC_F_NEXT))
			return 0;
		idx = d.next;
	}
}

void
vring_used_add(struct vring *vr, uint16_t head, uint32_t len)
{
	struct nvl_vring_used_elem *e = &vr->used->ring[vr->used_idx & vr->mask];

	if (vr->inflight) {
		/* link the batch so a crash after used->idx can be undone (see top) */
		NVL_WRITE_ONCE(vr->inflight->desc[head].next, vr->inflight->last_batch_head);
		NVL_WRITE_ONCE(vr->inflight->last_batch_head, head);
	}
	NVL_WRITE_ONCE(e->id, head);
	NVL_WRITE_ONCE(e->len, len);
	vr->used_idx++;
	vr->batch[vr->nbatch++] = head;
}

/* Mark bytes [off, off+len) of the used ring dirty (after storing them). */
static inline void
vring_log_used(struct vring *vr, uint64_t off, uint64_t len)
{
	if (nvl_unlikely(vr->log_used)) {
		vhost_log_gpa(vr->log, vr->log_used_gpa + off, len);
		vr->logged++;
	}
}

/* Log the used elements [from, to) (ring positions wrap) and the index. */
static void
vring_log_used_elems(struct vring *vr, uint16_t from, uint16_t to)
{
	const uint64_t es = sizeof(struct nvl_vring_used_elem), hs = sizeof(struct nvl_vring_used);
	uint16_t n = (uint16_t)(to - from), start = from & vr->mask;

	if (n >= vr->size) {
		vring_log_used(vr, hs, (uint64_t)vr->size * es);
	} else if ((uint32_t)start + n <= vr->size) {
		vring_log_used(vr, hs + start * es, n * es);
	} else {
		vring_log_used(vr, hs + start * es, (uint64_t)(vr->size - start) * es);
		vring_log_used(vr, hs, (uint64_t)(start + n - vr->size) * es);
	}
	vring_log_used(vr, offsetof(struct nvl_vring_used, idx), sizeof(uint16_t));
}

bool
vring_used_flush(struct vring *vr)
{
	uint16_t old, now = vr->used_idx;

	if (now == vr->used_published)
		return false;
	/* release: used elements (and batch links) before the index the driver reads */
	nvl_smp_store_release(&vr->used->idx, now);
	/* after the stores: a page the front-end copies once it cleared the bit
	 * holds them (see vhost_log_gpa) */
	if (nvl_unlikely(vr->log_used))
		vring_log_used_elems(vr, vr->used_published, now);
	if (vr->inflight) {
		for (uint16_t i = 0; i < vr->nbatch; i++)
			nvl_smp_store_release(&vr->inflight->desc[vr->batch[i]].inflight, 0);
		/* flags cleared before the region says this batch is done */
		nvl_smp_store_release(&vr->inflight->used_idx, now);
	}
	vr->nbatch = 0;
	vr->used_published = now;
	/* full barrier: our used->idx store before reading the driver's
	 * suppression fields; pairs with the driver's barrier between its
	 * update of used_event/flags and its read of used->idx */
	nvl_smp_mb();
	if (vr->event_idx) {
		bool valid = vr->signalled_valid;

		old = vr->signalled_used;
		vr->signalled_used = now;
		vr->signalled_valid = true;
		return !valid || vring_need_event(NVL_READ_ONCE(*vring_used_event(vr)), now, old);
	}
	return !(NVL_READ_ONCE(vr->avail->flags) & NVL_VRING_AVAIL_F_NO_INTERRUPT);
}

bool
vring_kick_enable(struct vring *vr)
{
	if (vr->event_idx) {
		NVL_WRITE_ONCE(*vring_avail_event(vr), vr->last_avail_idx);
		vring_log_used(vr, (uint64_t)((uint8_t *)vring_avail_event(vr) - (uint8_t *)vr->used),
			       sizeof(uint16_t));
	} else {
		NVL_WRITE_ONCE(vr->used->flags,
			       NVL_READ_ONCE(vr->used->flags) & ~NVL_VRING_USED_F_NO_NOTIFY);
		vring_log_used(vr, offsetof(struct nvl_vring_used, flags), sizeof(uint16_t));
	}
	/* our request for kicks before re-reading avail->idx; pairs with the
	 * driver's barrier between its avail->idx store and its flags read */
	nvl_smp_mb();
	return vring_avail_count(vr) != 0;
}

void
vring_kick_disable(struct vring *vr)
{
	/* with event idx a stale avail_event already suppresses kicks */
	if (!vr->event_idx) {
		NVL_WRITE_ONCE(vr->used->flags,
			       NVL_READ_ONCE(vr->used->flags) | NVL_VRING_USED_F_NO_NOTIFY);
		vring_log_used(vr, offsetof(struct nvl_vring_used, flags), sizeof(uint16_t));
	}
}
