/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libnvlend internals: controller and queue-pair objects, the host-side
 * transport ops table (shm, tcp), request slots.
 */
#ifndef NVL_HOST_INTERNAL_H
#define NVL_HOST_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "nvlend/nvlend.h"
#include "util/log.h"
#include "util/util.h"

NVL_LOG_DECLARE_COMPONENT(host);

#define HOST_MAX_QUEUES 64
#define HOST_AEN_QUEUE 8     /* events kept for nvl_ctrlr_aen_poll() */

struct host_req {
	uint16_t cid;
	bool busy;
	uint8_t dir;
	nvl_io_cb cb;
	void *arg;
	void *user;          /* caller's buffer (for bounce copy-back) */
	void *bounce;        /* window copy, or NULL */
	uint32_t len;
	void *prp_list;      /* shm + use_prp: one page in the window */
	void *tctx;          /* transport's per-request state */
};

struct host_transport {
	enum nvl_uri_kind kind;
	/** establish the association; fill c->cntlid, c->max_io_queues, c->win... */
	int (*connect)(struct nvl_ctrlr *c);
	void (*disconnect)(struct nvl_ctrlr *c);
	/** one admin command, called with c->admin_lock held; buf is reachable */
	int (*admin)(struct nvl_ctrlr *c, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len,
		     enum nvl_xfer_dir dir, struct nvl_nvme_cpl *cpl);
	int (*qpair_create)(struct nvl_qpair *qp);
	void (*qpair_destroy)(struct nvl_qpair *qp);
	/** queue cmd (cid set) with data buf (reachable) */
	int (*submit)(struct nvl_qpair *qp, struct nvl_nvme_cmd *cmd, struct host_req *r, void *buf,
		      uint32_t len, enum nvl_xfer_dir dir);
	/** reap completions, calling host_complete() for each */
	int (*poll)(struct nvl_qpair *qp, uint32_t max);
	/** block until a completion may be there (spin, then sleep); 0 on timeout */
	int (*wait)(struct nvl_qpair *qp, int timeout_ms);
	/** admin_lock held: send an Asynchronous Event Request (cid set) without
	 *  waiting; its completion goes to host_aen_complete() from whichever
	 *  later admin call or admin_poll reaps it. */
	int (*aer_submit)(struct nvl_ctrlr *c, struct nvl_nvme_cmd *cmd);
	/** admin_lock held: reap admin completions for up to timeout_ms, returning
	 *  early once c->aen_arrived is set. \return 0, -ENOTCONN. */
	int (*admin_poll)(struct nvl_ctrlr *c, int timeout_ms);
};

struct nvl_ctrlr {
	struct nvl_uri uri;
	const struct host_transport *t;
	void *tctx;
	struct nvl_ctrlr_opts opts;
	char hostnqn[NVL_NVME_NQN_LEN];
	uint8_t hostid[16];
	uint16_t cntlid;
	struct nvl_nvme_id_ctrl id;
	uint32_t default_nsid;
	uint32_t max_xfer;
	uint16_t max_io_queues;
	uint16_t max_queue_entries;
	bool qid_used[HOST_MAX_QUEUES + 1];
	pthread_mutex_t admin_lock;
	uint16_t next_admin_cid;
	char last_error[256];
	bool dead;              /* atomic: host_is_dead() / host_set_dead() */

	/* data window (shm), or NULL: buffers from the heap (tcp) */
	uint8_t *win;
	uint64_t win_size;
	pthread_mutex_t buf_lock;
	uint32_t npages;
	uint32_t *alloc_len;   /* pages of the allocation starting here, 0 = not a start */
	uint8_t *used;         /* page in use */
	uint32_t hint;

	/* keep-alive */
	pthread_t ka_thread;
	bool ka_running;
	pthread_mutex_t ka_lock;
	pthread_cond_t ka_cond;
	bool ka_stop;

	struct nvl_qpair *qpairs[HOST_MAX_QUEUES + 1];

	/* asynchronous events (all under admin_lock) */
	bool aen_enabled;
	bool aer_outstanding;
	bool aen_arrived;       /* set by host_aen_complete(), for admin_poll */
	uint16_t aer_cid;
	uint16_t aer_status;    /* error status that ended event reporting, 0 = none */
	uint32_t aen[HOST_AEN_QUEUE];   /* cdw0 of events not yet polled */
	unsigned aen_head, naen;
};

struct nvl_qpair {
	struct nvl_ctrlr *c;
	uint16_t qid;
	uint32_t entries;
	struct nvl_qpair_opts opts;
	struct host_req *reqs;
	uint16_t *free_cids;
	uint32_t nfree;
	uint32_t outstanding;
	void *tq;              /* transport's queue state */
};

/** Transport registry */
extern const struct host_transport g_host_shm;
extern const struct host_transport *g_host_tcp;  /* set by the tcp transport if built */

static inline bool
host_is_dead(const struct nvl_ctrlr *c)
{
	return __atomic_load_n(&c->dead, __ATOMIC_ACQUIRE);
}

static inline void
host_set_dead(struct nvl_ctrlr *c)
{
	__atomic_store_n(&c->dead, true, __ATOMIC_RELEASE);
}

/** admin_lock held: the cid for the next admin command (never the outstanding AER's). */
uint16_t host_admin_cid(struct nvl_ctrlr *c);
/** admin_lock held: is cpl the completion of the outstanding AER (by cid)? */
static inline bool
host_is_aer_cpl(const struct nvl_ctrlr *c, const struct nvl_nvme_cpl *cpl)
{
	return c->aer_outstanding && cpl->cid == c->aer_cid;
}
/** admin_lock held: the outstanding AER completed with cpl. */
void host_aen_complete(struct nvl_ctrlr *c, const struct nvl_nvme_cpl *cpl);
/** Called by transports for every completion they reap. */
void host_complete(struct nvl_qpair *qp, const struct nvl_nvme_cpl *cpl);
void host_set_error(struct nvl_ctrlr *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Is [p, p+len) inside the data window (or is there no window)? */
bool host_buf_reachable(const struct nvl_ctrlr *c, const void *p, size_t len);

#endif
