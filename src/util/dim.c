/* SPDX-License-Identifier: BSD-3-Clause */
/* Dynamic moderation: a hill-climbing level chooser (util/dim.h). */
#include "util/dim.h"

void
nvl_dim_init(struct nvl_dim *d, unsigned nlevels)
{
	d->rate = 0;
	d->level = 0;
	d->nlevels = (uint8_t)(nlevels ? (nlevels > 255 ? 255 : nlevels) : 1);
	d->dir = 1;
	d->tired = 0;
}

unsigned
nvl_dim_epoch(struct nvl_dim *d, uint64_t rate)
{
	uint64_t prev = d->rate;
	int next;

	d->rate = rate;
	if (rate == 0 || prev == 0)
		return d->level; /* nothing to compare yet */
	/* 128-bit products: rates up to UINT64_MAX compare without overflow */
	if ((unsigned __int128)rate * 100 > (unsigned __int128)prev * (100 + NVL_DIM_SAME_PCT)) {
		d->tired = 0; /* better: go on */
	} else if ((unsigned __int128)rate * 100 <
		   (unsigned __int128)prev * (100 - NVL_DIM_SAME_PCT)) {
		d->tired = 0; /* worse: take the step back */
		d->dir = (int8_t)-d->dir;
	} else if (++d->tired >= NVL_DIM_TIRED) {
		d->tired = 0; /* no clear change for long: try a step */
	} else {
		return d->level;
	}
	next = d->level + d->dir;
	if (next < 0 || next >= d->nlevels)
		d->dir = (int8_t)-d->dir; /* at an end: turn, and stay */
	else
		d->level = (uint8_t)next;
	return d->level;
}
