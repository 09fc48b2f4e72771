/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Dynamic moderation: a hill-climbing choice among a few levels of some
 * batching knob (how long to hold a read, how many completions to gather),
 * driven by the rate it gets, the way the kernel's lib/dim moderates NIC
 * interrupts. The caller measures a rate (operations per second) over an
 * epoch of its choosing and reports it; the controller compares it with the
 * previous epoch's:
 *   better by more than NVL_DIM_SAME_PCT  -> another step the same way;
 *   worse by more than NVL_DIM_SAME_PCT   -> the step is taken back;
 *   otherwise (noise)                     -> stay, and after NVL_DIM_TIRED
 *                                            such epochs try a step.
 * A step past either end turns the direction and stays. Level 0 should be
 * "no batching": the controller starts there, climbing.
 * No allocation, no clock, not thread-safe: one per connection.
 */
#ifndef NVL_DIM_H
#define NVL_DIM_H

#include <stdint.h>

#define NVL_DIM_SAME_PCT 4  /* rate changes this small are noise */
#define NVL_DIM_TIRED    16 /* epochs without change before a trial step */

struct nvl_dim {
	uint64_t rate;    /* the previous epoch's rate; 0: none to compare with */
	uint8_t level;    /* current level, 0 .. nlevels - 1 */
	uint8_t nlevels;
	int8_t dir;       /* +1 climbing, -1 descending */
	uint8_t tired;    /* epochs in a row without a clear change */
};

void nvl_dim_init(struct nvl_dim *d, unsigned nlevels);
/**
 * One epoch ended with this rate (any unit, the same every time; 0 for an
 * epoch that says nothing, e.g. the workload idled: the next epoch starts a
 * new comparison). \return the level to use from now on.
 */
unsigned nvl_dim_epoch(struct nvl_dim *d, uint64_t rate);

#endif
