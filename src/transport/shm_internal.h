/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * shm transport internals, shared by shm.c (the control channel) and
 * shm_queue.c (the queues); the shm_ctrl fuzz harness includes both.
 * Ownership and threads are described at the top of shm.c: a controller
 * (struct shm_ctrlr) and its queue tables belong to reactor 0; a CQ and its
 * SQs, their requests and rings belong to the CQ's reactor.
 */
#ifndef NVL_TRANSPORT_SHM_INTERNAL_H
#define NVL_TRANSPORT_SHM_INTERNAL_H

#include "nvmf/nvmf.h"
#include "proto/shm_ring.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h> /* struct ucred */

#define SHM_MAX_QUEUES 64               /* I/O queues per controller, each direction */
#define SHM_MAX_VECTORS (SHM_MAX_QUEUES + 1)
#define SHM_CONNECT_TIMEOUT_US 10000000
#define SHM_MAX_CONNECTIONS 256
#define SHM_MAX_ADMIN_OUTSTANDING 64
#define SHM_DEFAULT_WINDOW (64ULL << 20)

struct shm_opts {
	uint64_t max_window;
	uint64_t max_window_per_host;    /* bytes of windows one host NQN may hold */
	uint64_t max_window_total;       /* bytes of windows of every host */
	uint32_t max_queue_depth;
	uint32_t max_io_queues;
};

struct shm_ctrlr;
struct shm_cq;
struct shm_sq;

struct shm_req {
	struct nvl_nvme_req nvme;
	struct shm_sq *sq;
	struct shm_req *next_free;
	TAILQ_ENTRY(shm_req) link;      /* waiting for CQ space */
};

enum shm_q_state { Q_ACTIVE, Q_DELETING, Q_GONE };

struct shm_region {
	int fd;                          /* sealed memfd (see shm_region_create) */
	void *map;
	size_t size;
};

struct shm_admin_req {
	struct nvl_nvme_req nvme;
	struct shm_ctrlr *sc;
	int fds[2];
	int nfds;
};

struct shm_sq {
	struct shm_ctrlr *sc;
	struct shm_cq *cq;
	uint16_t qid;
	uint32_t entries;
	uint32_t head;
	struct shm_region region;
	struct nvl_shm_sq_page *page;
	struct nvl_nvme_cmd *ring;
	int kick_fd;
	struct nvl_fdh *kick_fdh;
	struct nvl_poller *poller;
	struct shm_req *reqs;
	struct shm_req *free_reqs;
	uint32_t outstanding;
	enum shm_q_state state;
	struct shm_admin_req *delete_req;  /* Delete I/O SQ waiting for the drain */
	bool fatal;
	uint64_t submitted, completed, aborted;
};

struct shm_cq {
	struct shm_ctrlr *sc;
	uint16_t qid;
	uint16_t iv;
	bool ien;
	uint32_t entries;
	uint32_t tail;
	uint32_t head_cache;
	uint16_t phase;
	struct shm_region region;
	struct nvl_shm_cq_page *page;
	struct nvl_nvme_cpl *ring;
	int irq_fd;                      /* the vector's eventfd (owned by the ctrlr) */
	struct nvl_reactor *reactor;
	unsigned nsqs;                   /* reactor 0 */
	TAILQ_HEAD(, shm_req) waiting;   /* completions waiting for CQ space */
	struct nvl_poller *poller;
	uint64_t interrupts;
	uint64_t full_waits;             /* completions that found the CQ full */
};

enum shm_conn_state { C_CONNECTING, C_ACTIVE, C_CLOSING };

struct shm_ctrlr {
	int fd;
	struct nvl_fdh *fdh;
	enum shm_conn_state state;
	struct nvl_listen_addr listener;
	struct nvl_nvmf_ctrlr *tc;
	struct nvl_timer *connect_timer;
	struct shm_region window;
	char window_host[256];           /* host NQN the window counts against (budgets) */
	struct shm_cq *cqs[SHM_MAX_QUEUES + 1];
	struct shm_sq *sqs[SHM_MAX_QUEUES + 1];
	int vectors[SHM_MAX_VECTORS];
	unsigned admin_outstanding;
	unsigned nsq_alive;              /* created and not yet freed on their reactor */
	unsigned ncq_alive;
	bool in_try_free;
	bool free_scheduled;
	bool in_event;                   /* shm_conn_event() runs: freeing is deferred to it */
	TAILQ_ENTRY(shm_ctrlr) link;
	/* the peer's credentials, from the kernel at accept (host identity binding) */
	bool has_cred;
	struct ucred cred;
	uint32_t *groups;                /* supplementary groups (SO_PEERGROUPS) */
	unsigned ngroups;
};

/* shm.c */
extern struct shm_opts g_shm_opts;      /* nvmf_create_transport; reactor 0 writes */
/** A sealed, pre-faulted anonymous memfd region of size bytes ("nvlend-what").
 *  \return 0 or -errno. */
int shm_region_create(struct shm_region *r, const char *what, size_t size);
void shm_region_destroy(struct shm_region *r);
/** reactor 0: end the connection (queues deleted, controller released, freed). */
void shm_conn_teardown(struct shm_ctrlr *sc, const char *why);
/** reactor 0: free a closing connection once its queues and commands are gone. */
void shm_conn_try_free(struct shm_ctrlr *sc);
/** reactor 0: complete an admin command (reply sent to the host). */
void shm_admin_complete(struct shm_admin_req *a, uint16_t status);

/* shm_queue.c */
extern const struct nvl_nvme_queue_ops g_shm_queue_ops;
/** nvl_nvme_map_fn: PRPs/SGLs are offsets into the window of ctx (the shm_ctrlr). */
uint16_t shm_map_window(struct nvl_nvme_req *req, uint32_t len, uint8_t dir, void *ctx);
/** reactor 0: start deleting an SQ (areq: the Delete I/O SQ to complete, or NULL). */
void shm_sq_delete(struct shm_ctrlr *sc, struct shm_sq *sq, struct shm_admin_req *areq);
/** reactor 0: delete a CQ without SQs. */
void shm_cq_delete(struct shm_ctrlr *sc, struct shm_cq *cq);
/** the CQ's reactor, after the connection closed: drop what waits for CQ space. */
void shm_cq_host_gone(void *arg);

#endif
