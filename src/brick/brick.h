/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the daemon's other parts (src/app: the upgrade hand-over) may call of
 * the brick service beyond its RPCs. The client API is include/nvlend/brick.h.
 * Any thread.
 */
#ifndef NVL_BRICK_BRICK_H
#define NVL_BRICK_BRICK_H

/**
 * Quiet every brick's spare-file pool thread in this process before a
 * hand-over: none starts making or zeroing a ".spare-*" file any more, and
 * the one job in progress (if any) is waited for, at most 100 ms. Call it
 * once the reactors are parked and before the new worker may recover a
 * brick's fast tier (which deletes spare files); pools started later are
 * quiet too. Undone by nvl_brick_pool_resume().
 *
 * \return 0 when no pool thread works on a file any more;
 *         -ETIMEDOUT if one still did after 100 ms (it starts nothing new).
 */
int nvl_brick_pool_quiesce(void);

/** Let the pool threads work again (the hand-over was called off). */
void nvl_brick_pool_resume(void);

#endif /* NVL_BRICK_BRICK_H */
