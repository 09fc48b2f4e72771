/* SPDX-License-Identifier: BSD-3-Clause */
/* Log-linear histogram; see histogram.h. */
#include "util/histogram.h"

#include <math.h>
#include <string.h>

void
nvl_histogram_init(struct nvl_histogram *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void
nvl_histogram_merge(struct nvl_histogram *dst, const struct nvl_histogram *src)
{
	for (unsigned i = 0; i < NVL_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t
nvl_histogram_bucket_start(unsigned i)
{
	unsigned grp, sub;

	if (i < NVL_HIST_SUB)
		return i;
	grp = i / NVL_HIST_SUB; /* msb = grp + SUB_BITS - 1 */
	sub = i % NVL_HIST_SUB;
	return ((uint64_t)(NVL_HIST_SUB + sub)) << (grp - 1);
}

uint64_t
nvl_histogram_percentile(const struct nvl_histogram *h, double p)
{
	uint64_t target, seen = 0;

	if (h->count == 0)
		return 0;
	if (p <= 0)
		return h->min;
	if (p >= 100)
		return h->max;
	/* nearest rank: the ceil(p% * count)-th smallest value; the epsilon keeps
	 * 99.9% of 1000 at rank 999 although 99.9 is not exact in binary */
	target = (uint64_t)ceil((double)h->count * p / 100.0 - 1e-9);
	if (target == 0)
		target = 1;
	if (target > h->count)
		target = h->count;
	for (unsigned i = 0; i < NVL_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= target) {
			uint64_t hi = i + 1 < NVL_HIST_BUCKETS ? nvl_histogram_bucket_start(i + 1) - 1
							       : UINT64_MAX;
			uint64_t lo = nvl_histogram_bucket_start(i);
			/* midpoint of the bucket, clamped to what was observed */
			uint64_t v = lo + (hi - lo) / 2;

			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}
