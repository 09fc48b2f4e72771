/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A u64 -> pointer hash table (open addressing, linear probing, backward-shift
 * deletion: no tombstones, so lookups stay short after churn). Used for the
 * block map (logical address -> block) and the key table (key -> handle).
 * Not thread-safe: owned by whoever owns the brick (reactor 0).
 */
#ifndef NVL_BRICK_HTAB_H
#define NVL_BRICK_HTAB_H

#include <stddef.h>
#include <stdint.h>

struct brick_htab_ent {
	uint64_t key;
	void *val; /* NULL = empty slot */
};

struct brick_htab {
	struct brick_htab_ent *ents;
	size_t cap;  /* power of two */
	size_t count;
};

void brick_htab_init(struct brick_htab *t);
void brick_htab_fini(struct brick_htab *t);
void *brick_htab_get(const struct brick_htab *t, uint64_t key);
/** Insert (val != NULL). \return 0, -EEXIST, -ENOMEM. */
int brick_htab_put(struct brick_htab *t, uint64_t key, void *val);
/** Remove; \return the value or NULL. */
void *brick_htab_del(struct brick_htab *t, uint64_t key);

/** Iterate: for (size_t i = 0; (v = brick_htab_next(t, &i)) != NULL;) — no changes meanwhile. */
void *brick_htab_next(const struct brick_htab *t, size_t *pos);

#endif
