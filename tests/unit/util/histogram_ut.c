/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of src/util/histogram.c: bucket geometry over the whole 64-bit
 * range, percentiles against the exact nearest-rank values of known data
 * (within the documented bucket error), merge, edge cases.
 */
#include "util/histogram.c"
#include "common/ut.h"

#include <math.h>

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* exact nearest-rank percentile of sorted v[0..n) */
static uint64_t
exact_pct(const uint64_t *v, size_t n, double p)
{
	size_t rank = (size_t)ceil(p / 100.0 * (double)n);

	if (rank == 0)
		rank = 1;
	return v[rank - 1];
}

static void
test_bucket_geometry(void **state)
{
	(void)state;
	/* small values are exact */
	for (uint64_t v = 0; v < NVL_HIST_SUB; v++) {
		assert_int_equal(nvl_histogram_index(v), v);
		assert_int_equal(nvl_histogram_bucket_start((unsigned)v), v);
	}
	/* every value lies in [start(i), start(i+1)) of its bucket; buckets are monotonic */
	for (unsigned shift = 0; shift < 64; shift++) {
		for (uint64_t d = 0; d < 64; d++) {
			uint64_t v = (1ULL << shift) + d * ((1ULL << shift) / 64 + 1);
			unsigned i;

			if (v < (1ULL << shift))
				continue; /* wrapped */
			i = nvl_histogram_index(v);
			assert_true(i < NVL_HIST_BUCKETS);
			assert_true(nvl_histogram_bucket_start(i) <= v);
			if (i + 1 < NVL_HIST_BUCKETS && nvl_histogram_bucket_start(i + 1) != 0)
				assert_true(v < nvl_histogram_bucket_start(i + 1));
		}
	}
	for (unsigned i = 1; i < NVL_HIST_BUCKETS; i++)
		assert_true(nvl_histogram_bucket_start(i) > nvl_histogram_bucket_start(i - 1));
	/* the largest value fits without clamping, in the last bucket */
	assert_int_equal(nvl_histogram_index(UINT64_MAX), NVL_HIST_BUCKETS - 1);
	assert_int_equal(nvl_histogram_bucket_start(NVL_HIST_BUCKETS - 1),
			 (uint64_t)(2 * NVL_HIST_SUB - 1) << (64 - NVL_HIST_SUB_BITS - 1));
	/* a bucket is at most 1/SUB of its smallest value wide */
	for (unsigned i = NVL_HIST_SUB; i + 1 < NVL_HIST_BUCKETS; i++) {
		uint64_t lo = nvl_histogram_bucket_start(i), w = nvl_histogram_bucket_start(i + 1) - lo;

		assert_true(w * NVL_HIST_SUB <= lo);
	}
}

static void
check_data(uint64_t *v, size_t n)
{
	static const double ps[] = { 1, 10, 25, 50, 75, 90, 99, 99.9 };
	struct nvl_histogram h;
	uint64_t sum = 0;

	nvl_histogram_init(&h);
	for (size_t i = 0; i < n; i++) {
		nvl_histogram_add(&h, v[i]);
		sum += v[i];
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	assert_int_equal(h.count, n);
	assert_int_equal(h.sum, sum);
	assert_int_equal(h.min, v[0]);
	assert_int_equal(h.max, v[n - 1]);
	assert_int_equal(nvl_histogram_percentile(&h, 0), v[0]);
	assert_int_equal(nvl_histogram_percentile(&h, 100), v[n - 1]);
	for (size_t k = 0; k < UT_N(ps); k++) {
		uint64_t ex = exact_pct(v, n, ps[k]);
		uint64_t got = nvl_histogram_percentile(&h, ps[k]);
		/* same bucket as the exact value: the midpoint is within half a bucket,
		 * 1/(2 SUB) of it (header: 1.6%) */
		double err = ex ? fabs((double)got - (double)ex) / (double)ex : (double)got;

		if (nvl_histogram_index(got) != nvl_histogram_index(ex) ||
		    err > 0.5 / NVL_HIST_SUB + 1e-9)
			fail_msg("p%.1f of %zu values: got %llu, exact %llu", ps[k], n,
				 (unsigned long long)got, (unsigned long long)ex);
	}
}

static void
test_percentiles_known_data(void **state)
{
	uint64_t *v = malloc(100000 * sizeof(*v));
	uint32_t seed = 7;

	(void)state;
	assert_non_null(v);
	/* 1..1000 */
	for (size_t i = 0; i < 1000; i++)
		v[i] = i + 1;
	check_data(v, 1000);
	/* few values: nearest rank matters (p50 of {1,2,3} is 2) */
	v[0] = 3;
	v[1] = 1;
	v[2] = 2;
	check_data(v, 3);
	v[0] = 5;
	check_data(v, 1);
	/* latency-like: most around 10 us, a tail at ms */
	for (size_t i = 0; i < 100000; i++) {
		seed = seed * 1103515245u + 12345u;
		v[i] = 9000 + (seed >> 8) % 3000;
		if (i % 100 == 0)
			v[i] = 1000000 + (seed >> 4) % 5000000;
	}
	check_data(v, 100000);
	/* huge values */
	for (size_t i = 0; i < 64; i++)
		v[i] = UINT64_MAX - i * 1000000007ULL;
	check_data(v, 64);
	free(v);
}

static void
test_empty_and_merge(void **state)
{
	struct nvl_histogram a, b;

	(void)state;
	nvl_histogram_init(&a);
	nvl_histogram_init(&b);
	assert_int_equal(nvl_histogram_percentile(&a, 50), 0);
	assert_int_equal(nvl_histogram_percentile(&a, 0), 0);
	nvl_histogram_merge(&a, &b);
	assert_int_equal(a.count, 0);
	assert_int_equal(a.min, UINT64_MAX);
	for (uint64_t i = 1; i <= 100; i++)
		nvl_histogram_add(&a, i);
	for (uint64_t i = 101; i <= 200; i++)
		nvl_histogram_add(&b, i * 1000);
	nvl_histogram_merge(&a, &b);
	assert_int_equal(a.count, 200);
	assert_int_equal(a.min, 1);
	assert_int_equal(a.max, 200000);
	/* p50 is the 100th value (100), p51 the 101st (101000) */
	assert_int_equal(nvl_histogram_index(nvl_histogram_percentile(&a, 50)),
			 nvl_histogram_index(100));
	assert_int_equal(nvl_histogram_index(nvl_histogram_percentile(&a, 51)),
			 nvl_histogram_index(101000));
	/* merging into an empty one copies min/max */
	nvl_histogram_init(&b);
	nvl_histogram_merge(&b, &a);
	assert_int_equal(b.min, 1);
	assert_int_equal(b.max, 200000);
	assert_int_equal(b.sum, a.sum);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_geometry),
		cmocka_unit_test(test_percentiles_known_data),
		cmocka_unit_test(test_empty_and_merge),
	};

	return UT_RUN(tests);
}
