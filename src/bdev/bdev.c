/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bdev core: registry, open/close, validation of every I/O before a backend
 * sees it, per-reactor statistics and latency histograms.
 */
#include "bdev/bdev.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

NVL_LOG_REGISTER_COMPONENT(bdev)

static TAILQ_HEAD(, nvl_bdev) g_bdevs = TAILQ_HEAD_INITIALIZER(g_bdevs);

void
nvl_uuid_fmt(const uint8_t u[16], char *out)
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
		 u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
		 u[14], u[15]);
}

int
nvl_uuid_parse(const char *s, uint8_t u[16])
{
	unsigned n = 0;

	for (const char *p = s; *p; p++) {
		int hi, lo;

		if (*p == '-')
			continue;
		if (n >= 16 || !p[1])
			return -EINVAL;
		hi = (*p >= '0' && *p <= '9') ? *p - '0' :
		     (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10 :
		     (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10 : -1;
		p++;
		lo = (*p >= '0' && *p <= '9') ? *p - '0' :
		     (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10 :
		     (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10 : -1;
		if (hi < 0 || lo < 0)
			return -EINVAL;
		u[n++] = (uint8_t)(hi << 4 | lo);
	}
	return n == 16 ? 0 : -EINVAL;
}

int
nvl_bdev_register(struct nvl_bdev *b)
{
	static const uint8_t zero[16];
	unsigned n;

	if (b->name[0] == '\0' || b->block_size < 1 || !NVL_IS_POW2(b->block_size) ||
	    b->num_blocks == 0 || b->ops == NULL || b->ops->submit == NULL ||
	    b->ops->destroy == NULL)
		return -EINVAL;
	if (b->num_blocks > UINT64_MAX / b->block_size)
		return -EINVAL;
	if (nvl_bdev_get_by_name(b->name))
		return -EEXIST;
	if (memcmp(b->uuid, zero, 16) == 0) {
		int rc = nvl_random_bytes(b->uuid, 16);

		if (rc < 0)
			return rc;
		b->uuid[6] = (uint8_t)((b->uuid[6] & 0x0f) | 0x40); /* RFC 4122 v4 */
		b->uuid[8] = (uint8_t)((b->uuid[8] & 0x3f) | 0x80);
	}
	n = nvl_reactor_count() ? nvl_reactor_count() : 1;
	b->stats = aligned_alloc(64, NVL_ALIGN_UP(sizeof(*b->stats) * n, 64));
	if (b->stats == NULL)
		return -ENOMEM;
	memset(b->stats, 0, sizeof(*b->stats) * n);
	for (unsigned i = 0; i < n; i++) {
		nvl_histogram_init(&b->stats[i].hist_read);
		nvl_histogram_init(&b->stats[i].hist_write);
	}
	b->nstats = n;
	if (b->product_name == NULL)
		b->product_name = b->ops->name;
	TAILQ_INSERT_TAIL(&g_bdevs, b, link);
	NVL_DEBUGLOG(bdev, "registered %s (%s, %llu x %u)", b->name, b->ops->name,
		     (unsigned long long)b->num_blocks, b->block_size);
	return 0;
}

static void
bdev_destroy(struct nvl_bdev *b)
{
	struct nvl_bdev_stats *stats = b->stats;

	TAILQ_REMOVE(&g_bdevs, b, link);
	b->ops->destroy(b);
	free(stats);
}

int
nvl_bdev_unregister(struct nvl_bdev *b)
{
	if (b->open_count > 0)
		return -EBUSY;
	NVL_DEBUGLOG(bdev, "unregister %s", b->name);
	bdev_destroy(b);
	return 0;
}

void
nvl_bdev_fini(void)
{
	struct nvl_bdev *b;

	while ((b = TAILQ_FIRST(&g_bdevs)) != NULL) {
		if (b->open_count)
			NVL_WARNLOG("bdev %s still open by %s at shutdown", b->name, b->claimed_by);
		bdev_destroy(b);
	}
}

struct nvl_bdev *
nvl_bdev_get_by_name(const char *name)
{
	struct nvl_bdev *b;

	TAILQ_FOREACH(b, &g_bdevs, link)
		if (strcmp(b->name, name) == 0)
			return b;
	return NULL;
}

static nvl_bdev_pending_fn g_pending[4];

int
nvl_bdev_pending_register(nvl_bdev_pending_fn fn)
{
	for (size_t i = 0; i < NVL_ARRAY_SIZE(g_pending); i++) {
		if (g_pending[i] == fn)
			return 0;
		if (g_pending[i] == NULL) {
			g_pending[i] = fn;
			return 0;
		}
	}
	return -ENOSPC;
}

bool
nvl_bdev_pending(const char *name)
{
	if (nvl_bdev_get_by_name(name))
		return false;
	for (size_t i = 0; i < NVL_ARRAY_SIZE(g_pending) && g_pending[i]; i++)
		if (g_pending[i](name))
			return true;
	return false;
}

struct nvl_bdev *
nvl_bdev_first(void)
{
	return TAILQ_FIRST(&g_bdevs);
}

struct nvl_bdev *
nvl_bdev_next(struct nvl_bdev *b)
{
	return TAILQ_NEXT(b, link);
}

int
nvl_bdev_open(const char *name, bool writable, const char *who, struct nvl_bdev_desc **out)
{
	struct nvl_bdev *b = nvl_bdev_get_by_name(name);
	struct nvl_bdev_desc *d;

	if (b == NULL)
		return -ENOENT;
	if (b->exclusive_by[0]) {
		NVL_ERRLOG("bdev %s is held exclusively by %s", b->name, b->exclusive_by);
		return -EBUSY;
	}
	if (writable && b->read_only)
		return -EROFS;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->bdev = b;
	d->writable = writable;
	b->open_count++;
	if (writable)
		b->open_writers++;
	if (who && b->claimed_by[0] == '\0')
		nvl_strlcpy(b->claimed_by, who, sizeof(b->claimed_by));
	*out = d;
	return 0;
}

void
nvl_bdev_close(struct nvl_bdev_desc *d)
{
	struct nvl_bdev *b;

	if (d == NULL)
		return;
	b = d->bdev;
	b->open_count--;
	if (d->writable)
		b->open_writers--;
	if (b->open_count == 0)
		b->claimed_by[0] = '\0';
	free(d);
}

int
nvl_bdev_set_exclusive(struct nvl_bdev *b, const char *who)
{
	if (b->exclusive_by[0])
		return -EBUSY;
	nvl_strlcpy(b->exclusive_by, who && who[0] ? who : "?", sizeof(b->exclusive_by));
	return 0;
}

void
nvl_bdev_clear_exclusive(struct nvl_bdev *b)
{
	b->exclusive_by[0] = '\0';
}

static inline unsigned
bdev_reactor_idx(const struct nvl_bdev *b)
{
	struct nvl_reactor *r = nvl_reactor_self();
	unsigned i = r ? nvl_reactor_id(r) : 0;

	return i < b->nstats ? i : 0;
}

int
nvl_bdev_submit(struct nvl_bdev_desc *d, struct nvl_bdev_io *io)
{
	struct nvl_bdev *b = d->bdev;
	struct nvl_bdev_stats *st;
	uint64_t end;
	int rc;

	if (nvl_unlikely(io->type >= NVL_BDEV_IO_NTYPES))
		return -EINVAL;
	if (nvl_unlikely(!(b->io_types & (1u << io->type))))
		return -ENOTSUP;
	if (nvl_unlikely(io->type != NVL_BDEV_IO_READ && io->type != NVL_BDEV_IO_FLUSH &&
			 !d->writable))
		return -EBADF;
	if (nvl_unlikely((io->flags & NVL_BDEV_IO_FAST_ZERO) && !b->fast_zero))
		return -ENOTSUP;
	if (io->type != NVL_BDEV_IO_FLUSH || io->length != 0) {
		if (nvl_unlikely((io->offset | io->length) & (b->block_size - 1)))
			return -EINVAL;
		if (nvl_unlikely(__builtin_add_overflow(io->offset, io->length, &end) ||
				 end > b->num_blocks * b->block_size))
			return -EINVAL;
	}
	if (io->type == NVL_BDEV_IO_READ || io->type == NVL_BDEV_IO_WRITE) {
		uint64_t sum = 0;

		if (nvl_unlikely(io->length == 0 || io->iovcnt <= 0 || io->iovcnt > IOV_MAX))
			return -EINVAL;
		for (int i = 0; i < io->iovcnt; i++)
			sum += io->iov[i].iov_len;
		if (nvl_unlikely(sum != io->length))
			return -EINVAL;
	}
	io->bdev = b;
	io->reactor = bdev_reactor_idx(b);
	io->start_ns = nvl_now_ns();
	io->bounce = NULL;
	st = &b->stats[io->reactor];
	NVL_STAT_INC(st->inflight);
	rc = b->ops->submit(b, io);
	if (rc < 0) {
		NVL_STAT_DEC(st->inflight);
		NVL_STAT_INC(st->errors);
	}
	return rc;
}

void
nvl_bdev_io_complete(struct nvl_bdev_io *io, int status)
{
	struct nvl_bdev *b = io->bdev;
	struct nvl_bdev_stats *st = &b->stats[io->reactor];
	uint64_t lat = nvl_now_ns() - io->start_ns;

	NVL_STAT_DEC(st->inflight);
	if (status == 0) {
		NVL_STAT_INC(st->ops[io->type]);
		NVL_STAT_ADD(st->bytes[io->type], io->length);
		NVL_STAT_ADD(st->lat_ns[io->type], lat);
		if (lat > st->lat_max_ns[io->type])
			NVL_STAT_SET(st->lat_max_ns[io->type], lat);
		if (io->type == NVL_BDEV_IO_READ)
			nvl_histogram_add(&st->hist_read, lat);
		else if (io->type == NVL_BDEV_IO_WRITE)
			nvl_histogram_add(&st->hist_write, lat);
	} else {
		NVL_STAT_INC(st->errors);
	}
	io->cb(io, status);
}

/* ---- block status ---------------------------------------------------------------- */

bool
nvl_bdev_bstat_add(struct nvl_bdev_bstat *q, uint64_t len, uint32_t flags)
{
	if (len == 0)
		return true;
	if (q->next > 0 && q->ext[q->next - 1].flags == flags) {
		q->ext[q->next - 1].length += len;
		return true;
	}
	if (q->next >= q->max_ext)
		return false;
	q->ext[q->next].length = len;
	q->ext[q->next].flags = flags;
	q->next++;
	return true;
}

void
nvl_bdev_bstat_complete(struct nvl_bdev_bstat *q, int status)
{
	uint64_t sum = 0;

	if (status == 0) {
		for (unsigned i = 0; i < q->next; i++)
			sum += q->ext[i].length;
		/* the contract the callers build their replies on */
		if (q->next == 0 || sum > q->length || (sum & (q->bdev->block_size - 1))) {
			NVL_ERRLOG("bdev %s: block status of %llu+%llu answered %u extents of %llu "
				   "bytes: reporting it allocated",
				   q->bdev->name, (unsigned long long)q->offset,
				   (unsigned long long)q->length, q->next, (unsigned long long)sum);
			q->next = 1;
			q->ext[0].length = q->length;
			q->ext[0].flags = 0;
		}
	}
	q->cb(q, status);
}

int
nvl_bdev_block_status(struct nvl_bdev_desc *d, struct nvl_bdev_bstat *q)
{
	struct nvl_bdev *b = d->bdev;
	uint64_t end;

	if (q->length == 0 || q->ext == NULL || q->max_ext == 0 ||
	    ((q->offset | q->length) & (b->block_size - 1)) ||
	    __builtin_add_overflow(q->offset, q->length, &end) ||
	    end > b->num_blocks * b->block_size)
		return -EINVAL;
	q->bdev = b;
	q->reactor = bdev_reactor_idx(b);
	q->next = 0;
	if (b->ops->block_status == NULL) {
		/* nothing known: allocated data (a status of 0 is always safe) */
		nvl_bdev_bstat_add(q, q->length, 0);
		nvl_bdev_bstat_complete(q, 0);
		return 0;
	}
	return b->ops->block_status(b, q);
}

uint64_t
nvl_bdev_inflight(const struct nvl_bdev *b)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < b->nstats; i++)
		n += __atomic_load_n(&b->stats[i].inflight, __ATOMIC_RELAXED);
	return n;
}

void
nvl_bdev_get_stats(const struct nvl_bdev *b, struct nvl_bdev_stats *out)
{
	memset(out, 0, sizeof(*out));
	nvl_histogram_init(&out->hist_read);
	nvl_histogram_init(&out->hist_write);
	for (unsigned i = 0; i < b->nstats; i++) {
		const struct nvl_bdev_stats *s = &b->stats[i];

		for (int t = 0; t < NVL_BDEV_IO_NTYPES; t++) {
			out->ops[t] += NVL_STAT_GET(s->ops[t]);
			out->bytes[t] += NVL_STAT_GET(s->bytes[t]);
			out->lat_ns[t] += NVL_STAT_GET(s->lat_ns[t]);
			if (NVL_STAT_GET(s->lat_max_ns[t]) > out->lat_max_ns[t])
				out->lat_max_ns[t] = NVL_STAT_GET(s->lat_max_ns[t]);
		}
		out->errors += NVL_STAT_GET(s->errors);
		out->inflight += NVL_STAT_GET(s->inflight);
		nvl_histogram_merge(&out->hist_read, &s->hist_read);
		nvl_histogram_merge(&out->hist_write, &s->hist_write);
	}
}

json_t *
nvl_bdev_to_json(struct nvl_bdev *b)
{
	char uuid[40];
	json_t *o, *ds;

	nvl_uuid_fmt(b->uuid, uuid);
	o = json_pack("{s:s, s:[], s:s, s:i, s:I, s:s, s:b, s:b, s:s, s:b, s:{s:b, s:b, s:b, "
		      "s:b, s:b}}",
		      "name", b->name, "aliases", "product_name", b->product_name, "block_size",
		      (int)b->block_size, "num_blocks", (json_int_t)b->num_blocks, "uuid", uuid,
		      "claimed", b->open_count > 0, "write_cache", b->write_cache, "type",
		      b->ops->name, "read_only", b->read_only, "supported_io_types", "read",
		      (b->io_types >> NVL_BDEV_IO_READ) & 1, "write",
		      (b->io_types >> NVL_BDEV_IO_WRITE) & 1, "flush",
		      (b->io_types >> NVL_BDEV_IO_FLUSH) & 1, "write_zeroes",
		      (b->io_types >> NVL_BDEV_IO_WRITE_ZEROES) & 1, "unmap",
		      (b->io_types >> NVL_BDEV_IO_UNMAP) & 1);
	if (o == NULL)
		return NULL;
	if (b->open_count > 0)
		json_object_set_new(o, "claimed_by", json_string(b->claimed_by));
	if (b->exclusive_by[0])
		json_object_set_new(o, "exclusive_by", json_string(b->exclusive_by));
	/* fields SPDK's bdev_get_bdevs always has: no QoS limits (0), not zoned */
	json_object_set_new(o, "assigned_rate_limits",
			    json_pack("{s:i, s:i, s:i, s:i}", "rw_ios_per_sec", 0,
				      "rw_mbytes_per_sec", 0, "r_mbytes_per_sec", 0,
				      "w_mbytes_per_sec", 0));
	json_object_set_new(o, "zoned", json_false());
	ds = json_object();
	if (b->ops->dump_info)
		b->ops->dump_info(b, ds);
	json_object_set_new(o, "driver_specific", ds);
	return o;
}

void
nvl_bdev_write_config(json_t *array)
{
	struct nvl_bdev *b;

	TAILQ_FOREACH(b, &g_bdevs, link) {
		if (b->ops->write_config && !b->no_config) {
			json_t *c = b->ops->write_config(b);

			if (c)
				json_array_append_new(array, c);
		}
	}
}
