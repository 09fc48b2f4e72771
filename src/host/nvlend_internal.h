/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libnvlend's synchronous face over the host core (nvlend.c: controllers,
 * admin, events, keep-alive thread, buffers; nvlend_io.c: queue pairs,
 * command builders, waiting). The public objects wrap the core's.
 *
 * Threads: every call into the core's controller side happens under
 * admin_lock (an application thread's admin call, queue-pair creation or
 * destruction, or the keep-alive thread's poll). A queue pair is used by
 * one thread at a time and never takes the lock on its I/O path.
 */
#ifndef NVL_HOST_NVLEND_INTERNAL_H
#define NVL_HOST_NVLEND_INTERNAL_H

#include <pthread.h>

#include "host/host_internal.h"
#include "util/util.h"
#include "nvlend/nvlend.h"

#define LIB_AEN_QUEUE 8              /* events kept for nvl_ctrlr_aen_poll() */

struct nvl_ctrlr {
	struct host_ctrlr *hc;
	struct nvl_uri uri;
	struct nvl_ctrlr_opts opts;
	char hostnqn[NVL_NVME_NQN_LEN];
	uint8_t hostid[16];
	uint32_t default_nsid;
	uint32_t max_xfer;
	/* shm: the data window, held until disconnect (buffers from
	 * nvl_buf_alloc stay mapped after the controller is lost) */
	struct host_window *win;
	pthread_mutex_t admin_lock;

	/* keep-alive thread */
	pthread_t ka_thread;
	bool ka_running;
	pthread_mutex_t ka_lock;
	pthread_cond_t ka_cond;
	bool ka_stop;

	/* asynchronous events (under admin_lock) */
	bool aen_enabled;
	bool aer_outstanding;
	bool aen_arrived;
	uint16_t aer_status;          /* error status that ended event reporting, 0 = none */
	uint32_t aen[LIB_AEN_QUEUE];  /* cdw0 of events not yet polled */
	unsigned aen_head, naen;

	struct nvl_qpair *qpairs[HOST_MAX_QUEUES + 1];
};

struct nvl_qpair {
	struct host_qpair *hq;
	struct nvl_ctrlr *c;
	struct nvl_qpair_opts opts;
	uint16_t qid;
	/* nvl_qpair_wait's adaptive spinning (transports whose peer is local) */
	uint64_t last_cpl_ns;
	uint64_t gap_ewma_ns;         /* time between completion batches (EWMA 1/8) */
	uint64_t yield_gap_ns;        /* spin this long between sched_yield()s */
};

/* Any thread: is the controller gone for good (no reconnect here)? */
static inline bool
lib_dead(const struct nvl_ctrlr *c)
{
	/* pairs with the release stores of the core (ctrlr.c, qpair.c) */
	return __atomic_load_n(&c->hc->fail_mode, __ATOMIC_ACQUIRE) != HOST_FAIL_NONE;
}

/** admin_lock held: drive the core until done(arg) or the deadline.
 *  \return 0, -ETIMEDOUT. */
int host_lib_drive(struct nvl_ctrlr *c, uint64_t deadline_ns, bool (*done)(void *arg), void *arg);

#endif
