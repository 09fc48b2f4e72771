/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of src/util/dim.c: the step rules (better goes on, worse goes
 * back, noise waits NVL_DIM_TIRED epochs, the ends turn, a zero rate starts
 * a new comparison), and convergence on simulated workloads with noise:
 * one that gains from batching (a deep queue) and one that loses (a shallow
 * queue); the controller must spend most epochs at the best level of each.
 */
#include "util/dim.c"
#include "common/ut.h"

static void
test_first_epochs_compare_only(void **state)
{
	struct nvl_dim d;

	(void)state;
	nvl_dim_init(&d, 4);
	assert_int_equal(d.level, 0);
	assert_int_equal(nvl_dim_epoch(&d, 1000), 0); /* nothing to compare with */
	assert_int_equal(nvl_dim_epoch(&d, 1010), 0); /* +1%: noise */
}

static void
test_better_climbs_worse_returns(void **state)
{
	struct nvl_dim d;

	(void)state;
	nvl_dim_init(&d, 4);
	nvl_dim_epoch(&d, 1000);
	assert_int_equal(nvl_dim_epoch(&d, 1100), 1);
	assert_int_equal(nvl_dim_epoch(&d, 1200), 2);
	assert_int_equal(nvl_dim_epoch(&d, 1300), 3);
	/* better again at the top: turn, stay */
	assert_int_equal(nvl_dim_epoch(&d, 1400), 3);
	assert_int_equal(d.dir, -1);
	/* a step down that hurts is taken back */
	assert_int_equal(nvl_dim_epoch(&d, 1500), 2);
	assert_int_equal(nvl_dim_epoch(&d, 1300), 3);
	assert_int_equal(d.dir, 1);
}

static void
test_noise_waits_then_tries(void **state)
{
	struct nvl_dim d;

	(void)state;
	nvl_dim_init(&d, 3);
	nvl_dim_epoch(&d, 1000);
	for (int i = 1; i < NVL_DIM_TIRED; i++)
		assert_int_equal(nvl_dim_epoch(&d, i & 1 ? 1030 : 1000), 0);
	assert_int_equal(nvl_dim_epoch(&d, 1000), 1); /* tired: a trial step */
	assert_int_equal(d.tired, 0);
	/* the trial hurt: back to 0, then at the bottom end it turns again */
	assert_int_equal(nvl_dim_epoch(&d, 800), 0);
	assert_int_equal(d.dir, -1);
	assert_int_equal(nvl_dim_epoch(&d, 1000), 0);
	assert_int_equal(d.dir, 1);
}

static void
test_zero_rate_restarts(void **state)
{
	struct nvl_dim d;

	(void)state;
	nvl_dim_init(&d, 4);
	nvl_dim_epoch(&d, 1000);
	assert_int_equal(nvl_dim_epoch(&d, 0), 0);
	/* after an idle epoch, a big change is not taken as the step's effect */
	assert_int_equal(nvl_dim_epoch(&d, 5000), 0);
	assert_int_equal(nvl_dim_epoch(&d, 6000), 1);
	/* huge rates do not overflow the comparison */
	nvl_dim_init(&d, 2);
	nvl_dim_epoch(&d, UINT64_MAX / 2);
	assert_int_equal(nvl_dim_epoch(&d, UINT64_MAX), 1);
}

static void
test_single_level(void **state)
{
	struct nvl_dim d;

	(void)state;
	nvl_dim_init(&d, 1);
	nvl_dim_epoch(&d, 10);
	for (int i = 0; i < 100; i++)
		assert_int_equal(nvl_dim_epoch(&d, (uint64_t)(i % 3 + 1) * 10), 0);
	nvl_dim_init(&d, 0);
	assert_int_equal(d.nlevels, 1);
}

/* xorshift: the same noise on every run */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Run the controller for n epochs on a workload whose rate at level i is
 * plant[i] +- noise_pct %; \return the epochs spent at each level. */
static void
simulate(const uint64_t *plant, unsigned nlevels, unsigned noise_pct, unsigned n,
	 unsigned *at)
{
	struct nvl_dim d;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	unsigned level;

	nvl_dim_init(&d, nlevels);
	level = 0;
	for (unsigned i = 0; i < nlevels; i++)
		at[i] = 0;
	for (unsigned e = 0; e < n; e++) {
		uint64_t base = plant[level];
		int64_t jitter = (int64_t)(rnd(&seed) % (2 * noise_pct + 1)) - (int64_t)noise_pct;
		uint64_t rate = base * (uint64_t)(1000 + 10 * jitter) / 1000;

		at[level]++;
		level = nvl_dim_epoch(&d, rate);
	}
}

static void
test_converges_on_deep_queue(void **state)
{
	/* measured shape: a deep-queue writer gains 6-14% from holding reads */
	const uint64_t plant[4] = { 64000, 68000, 71000, 72000 };
	unsigned at[4];

	(void)state;
	simulate(plant, 4, 2, 2000, at);
	print_message("deep queue: epochs per level %u %u %u %u\n", at[0], at[1], at[2], at[3]);
	assert_true(at[2] + at[3] >= 2000 * 7 / 10);
	assert_true(at[0] <= 2000 / 10);
}

static void
test_converges_on_shallow_queue(void **state)
{
	/* measured shape: a queue-depth-2 writer loses 9%, 31%, 50% */
	const uint64_t plant[4] = { 59000, 54000, 40000, 29000 };
	unsigned at[4];

	(void)state;
	simulate(plant, 4, 2, 2000, at);
	print_message("shallow queue: epochs per level %u %u %u %u\n", at[0], at[1], at[2],
		      at[3]);
	assert_true(at[0] >= 2000 * 8 / 10);
	assert_true(at[2] + at[3] <= 2000 / 50);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_epochs_compare_only),
		cmocka_unit_test(test_better_climbs_worse_returns),
		cmocka_unit_test(test_noise_waits_then_tries),
		cmocka_unit_test(test_zero_rate_restarts),
		cmocka_unit_test(test_single_level),
		cmocka_unit_test(test_converges_on_deep_queue),
		cmocka_unit_test(test_converges_on_shallow_queue),
	};

	return UT_RUN(tests);
}
