/* SPDX-License-Identifier: BSD-3-Clause */
/* Host-side shm transport state (host_shm.c); visible to tests that need to
 * misbehave on purpose (tests/helpers/shm_hostile.c). */
#ifndef NVL_HOST_SHM_H
#define NVL_HOST_SHM_H

#include "host/host_internal.h"
#include "nvlend/spec/shm.h"

struct shm_host {
	int fd;
};

struct shm_hq {
	uint8_t *sq_map;
	size_t sq_size;
	uint8_t *cq_map;
	size_t cq_size;
	struct nvl_shm_sq_page *sqp;
	struct nvl_shm_cq_page *cqp;
	struct nvl_nvme_cmd *sq;
	struct nvl_nvme_cpl *cq;
	uint32_t sq_tail;
	uint32_t sq_head;          /* as reported by completions */
	uint32_t cq_head;
	uint16_t phase;
	int irq_fd;
	int kick_fd;
	uint32_t idle_polls;      /* empty polls since the last liveness check */
	uint32_t submits;
	uint64_t last_cpl_ns;       /* when the last completion was reaped */
	uint64_t gap_ewma_ns;       /* average time between completion batches (EWMA 1/8) */
	uint64_t yield_gap_ns;      /* spin this long between sched_yield()s (shm_wait) */
};

#endif
