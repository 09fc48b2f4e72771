/* SPDX-License-Identifier: BSD-3-Clause */
/* The host side of the shm transport (host_shm.c): its transport queue,
 * visible to tests that must misbehave on purpose (tests/helpers/shm_hostile.c). */
#ifndef NVL_HOST_SHM_H
#define NVL_HOST_SHM_H

#include "host/host_internal.h"
#include "nvlend/spec/shm.h"

/** One I/O queue pair's rings, doorbells and descriptors (qp owner). */
struct shm_hq {
	struct host_tq base;
	uint32_t entries;
	uint8_t *sq_map;
	size_t sq_size;
	uint8_t *cq_map;
	size_t cq_size;
	struct nvl_shm_sq_page *sqp;
	struct nvl_shm_cq_page *cqp;
	struct nvl_nvme_cmd *sq;
	struct nvl_nvme_cpl *cq;
	uint32_t sq_tail;
	uint32_t sq_head;           /* as reported by completions */
	uint32_t cq_head;
	uint16_t phase;
	int irq_fd;                 /* completion interrupt (eventfd), -1: polled queue */
	int kick_fd;                /* SQ doorbell (eventfd) */
	int ctl_fd;                 /* a duplicate of the controller's socket: its hang-up */
	uint32_t idle_polls;        /* empty polls since the last hang-up check */
	uint32_t submits;
	void **prp;                 /* use_prp: one window page per slot for PRP lists */
	uint32_t nprp;
};

/** The shm queue of a queue pair (NULL if it has none, or it is not shm). */
struct shm_hq *host_shm_hq(struct host_qpair *qp);
/** The data window of the current association (NULL if none) and its size. */
uint8_t *host_shm_window(struct host_ctrlr *c, uint64_t *size);

#endif
