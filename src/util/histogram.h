/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Log-linear histogram of 64-bit values (latencies in ns): each power of two
 * is split into 32 linear sub-buckets, so a bucket is at most 1/32 (3.1%) of
 * its values wide and a percentile, reported as its bucket's midpoint, is
 * within 1.6% of the true value (fio's latency histogram splits into 64).
 * Values below 32 are exact. Fixed size (16 KiB), no allocation, not
 * thread-safe: keep one per thread and merge.
 */
#ifndef NVL_HISTOGRAM_H
#define NVL_HISTOGRAM_H

#include <stdint.h>

#define NVL_HIST_SUB_BITS 5
#define NVL_HIST_SUB (1u << NVL_HIST_SUB_BITS)
/* groups 0..(64 - SUB_BITS): UINT64_MAX lands in the last bucket */
#define NVL_HIST_BUCKETS ((65u - NVL_HIST_SUB_BITS) * NVL_HIST_SUB)

struct nvl_histogram {
	uint64_t count;
	uint64_t sum;
	uint64_t min;
	uint64_t max;
	uint64_t bucket[NVL_HIST_BUCKETS];
};

void nvl_histogram_init(struct nvl_histogram *h);
void nvl_histogram_merge(struct nvl_histogram *dst, const struct nvl_histogram *src);
/** Value at percentile p (0..100), nearest-rank: the midpoint of the bucket holding
 *  the ceil(p/100 * count)-th smallest value, clamped to [min, max]; p <= 0 gives
 *  min, p >= 100 max, an empty histogram 0. */
uint64_t nvl_histogram_percentile(const struct nvl_histogram *h, double p);
/** Lower edge of bucket i (for dumping). */
uint64_t nvl_histogram_bucket_start(unsigned i);

static inline unsigned
nvl_histogram_index(uint64_t v)
{
	unsigned msb;

	if (v < NVL_HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	return (msb - NVL_HIST_SUB_BITS + 1) * NVL_HIST_SUB +
	       (unsigned)((v >> (msb - NVL_HIST_SUB_BITS)) & (NVL_HIST_SUB - 1));
}

static inline void
nvl_histogram_add(struct nvl_histogram *h, uint64_t v)
{
	unsigned i = nvl_histogram_index(v);

	if (i >= NVL_HIST_BUCKETS)
		i = NVL_HIST_BUCKETS - 1;
	h->bucket[i]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

#endif
