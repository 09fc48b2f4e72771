/* SPDX-License-Identifier: BSD-3-Clause */
/* u64 -> pointer hash table, see htab.h. Single owner, no locking. */
#include "brick/htab.h"

#include <errno.h>
#include <stdlib.h>

static inline size_t
htab_hash(uint64_t k, size_t mask)
{
	/* splitmix64 finaliser: block addresses differ only above bit 21 */
	k ^= k >> 30;
	k *= 0xbf58476d1ce4e5b9ULL;
	k ^= k >> 27;
	k *= 0x94d049bb133111ebULL;
	k ^= k >> 31;
	return (size_t)k & mask;
}

void
brick_htab_init(struct brick_htab *t)
{
	t->ents = NULL;
	t->cap = 0;
	t->count = 0;
}

void
brick_htab_fini(struct brick_htab *t)
{
	free(t->ents);
	brick_htab_init(t);
}

void *
brick_htab_get(const struct brick_htab *t, uint64_t key)
{
	size_t mask, i;

	if (t->cap == 0)
		return NULL;
	mask = t->cap - 1;
	for (i = htab_hash(key, mask); t->ents[i].val; i = (i + 1) & mask)
		if (t->ents[i].key == key)
			return t->ents[i].val;
	return NULL;
}

static int
htab_grow(struct brick_htab *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 64;
	struct brick_htab_ent *n = calloc(ncap, sizeof(*n)), *old = t->ents;
	size_t ocap = t->cap;

	if (n == NULL)
		return -ENOMEM;
	t->ents = n;
	t->cap = ncap;
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].val) {
			size_t j = htab_hash(old[i].key, ncap - 1);

			while (n[j].val)
				j = (j + 1) & (ncap - 1);
			n[j] = old[i];
		}
	}
	free(old);
	return 0;
}

int
brick_htab_put(struct brick_htab *t, uint64_t key, void *val)
{
	size_t mask, i;

	if ((t->count + 1) * 4 > t->cap * 3) { /* load factor <= 3/4 */
		int rc = htab_grow(t);

		if (rc < 0)
			return rc;
	}
	mask = t->cap - 1;
	for (i = htab_hash(key, mask); t->ents[i].val; i = (i + 1) & mask)
		if (t->ents[i].key == key)
			return -EEXIST;
	t->ents[i].key = key;
	t->ents[i].val = val;
	t->count++;
	return 0;
}

void *
brick_htab_del(struct brick_htab *t, uint64_t key)
{
	size_t mask, i, j;
	void *val;

	if (t->cap == 0)
		return NULL;
	mask = t->cap - 1;
	for (i = htab_hash(key, mask); t->ents[i].val; i = (i + 1) & mask)
		if (t->ents[i].key == key)
			break;
	if (t->ents[i].val == NULL)
		return NULL;
	val = t->ents[i].val;
	/* backward shift: pull later members of the probe run into the hole */
	for (j = (i + 1) & mask; t->ents[j].val; j = (j + 1) & mask) {
		size_t home = htab_hash(t->ents[j].key, mask);

		/* can entry j move to i? only if its home is not in (i, j] cyclically */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			t->ents[i] = t->ents[j];
			i = j;
		}
	}
	t->ents[i].val = NULL;
	t->count--;
	return val;
}

void *
brick_htab_next(const struct brick_htab *t, size_t *pos)
{
	while (*pos < t->cap) {
		void *v = t->ents[(*pos)++].val;

		if (v)
			return v;
	}
	return NULL;
}
