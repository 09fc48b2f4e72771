/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/RDMA target transport internals, shared by rdma.c (the transport's
 * face: options, listeners, connection manager events, controllers and
 * their teardown), rdma_conn.c (queue pairs: verbs resources, completion
 * polling, posting, the move of an I/O queue to its reactor, the end of a
 * connection) and rdma_capsule.c (commands: capsules received, their data
 * descriptor, RDMA READ of write data, execution, Fabrics Connect, RDMA
 * WRITE of read data and the response capsule). rdma_capsule.c posts work
 * only through struct rdma_post_ops, so the fuzz harness runs it without
 * verbs. Ownership:
 *  - struct rdma_conn: one RDMA queue pair = one NVMe queue. Its verbs
 *    resources, requests and buffers belong to the reactor that polls it:
 *    reactor 0 until its Fabrics Connect (and for life for admin queues),
 *    then the reactor chosen for its I/O queue. Its RDMA CM id and the
 *    fields marked "reactor 0" belong to reactor 0, which receives every
 *    connection manager event and alone decides that a connection closes.
 *  - struct rdma_ctrlr: the transport's side of a controller (its admin
 *    connection and I/O queue table); reactor 0 only.
 */
#ifndef NVL_TRANSPORT_RDMA_INTERNAL_H
#define NVL_TRANSPORT_RDMA_INTERNAL_H

#include "nvmf/nvmf.h"
#include "proto/nvme_rdma.h"
#include "util/util.h"

#include <sys/queue.h>

#define RDMA_MAX_IO_QUEUES 128          /* per controller */
#define RDMA_MAX_CONNS 1024             /* per daemon, every state */
#define RDMA_ADMIN_MAX_XFER (1u << 20)  /* largest admin data transfer */
#define RDMA_CONNECT_TIMEOUT_NS (10ULL * 1000000000ULL)
#define RDMA_CQ_BATCH 32

/* wr_id of a work request: index << 2 | what it is */
enum rdma_wr_kind {
	RDMA_WR_RECV = 0,                /* a receive buffer (index: buffer) */
	RDMA_WR_SEND = 1,                /* a response capsule (index: request) */
	RDMA_WR_READ = 2,                /* RDMA READ of write data (index: request) */
	RDMA_WR_WRITE = 3,               /* RDMA WRITE of read data (unsignaled; index: request) */
};
#define RDMA_WR_ID(idx, kind) (((uint64_t)(idx) << 2) | (uint64_t)(kind))

struct rdma_conn;

enum rdma_req_state {
	RR_FREE = 0,
	RR_WAIT_READ,        /* waiting for an RDMA READ slot */
	RR_READING,          /* RDMA READ of the host's data in flight */
	RR_EXEC,             /* in the NVMe layer */
	RR_TX,               /* response (and read data) posted */
};

struct rdma_req {
	struct nvl_nvme_req nvme;
	struct rdma_conn *conn;
	enum rdma_req_state state;
	uint16_t idx;
	uint8_t dir;                 /* enum nvl_nvme_xfer */
	uint32_t len;                /* data length of the command */
	struct nvl_rdma_sgl sgl;
	int32_t rx;                  /* receive buffer held for in-capsule data, -1: none */
	uint16_t early_status;       /* found before execution: complete with it */
	uint8_t *buf;                /* registered data buffer (keyed transfers) */
	uint32_t buf_cap;
	uint32_t lkey;
	void *mr;                    /* struct ibv_mr of buf (rdma_conn.c) */
	struct nvl_nvme_cpl *rsp;    /* its slot of the registered response array */
	STAILQ_ENTRY(rdma_req) rd_link;  /* waiting for an RDMA READ slot */
	struct rdma_req *next_free;
};

/* How rdma_capsule.c reaches the queue pair (rdma_conn.c: verbs; fuzz: fakes). */
struct rdma_post_ops {
	/** give receive buffer idx back to the queue pair. \return 0 or -errno */
	int (*post_recv)(struct rdma_conn *c, uint32_t idx);
	/** RDMA READ r->len bytes of host memory (r->sgl) into r->buf, signaled */
	int (*post_read)(struct rdma_conn *c, struct rdma_req *r);
	/** the response capsule r->rsp, after an RDMA WRITE of xfer bytes of r->buf
	 *  when xfer > 0; Send with Invalidate of inv_key when inv */
	int (*post_response)(struct rdma_conn *c, struct rdma_req *r, uint32_t xfer, bool inv,
			     uint32_t inv_key);
	/** make r->buf at least len bytes of registered memory. \return 0 or -ENOMEM */
	int (*buf_reserve)(struct rdma_conn *c, struct rdma_req *r, uint32_t len);
};

enum rdma_conn_state {
	RC_CONNECT_WAIT = 0, /* accepted: waiting for the Fabrics Connect */
	RC_MIGRATING,        /* an I/O queue on its way to its reactor */
	RC_ACTIVE,
	RC_FAILED,           /* I/O queue with a fatal error: reactor 0 will close it */
	RC_CLOSING,          /* no more input; draining commands in flight */
};

struct rdma_ctrlr;

struct rdma_conn {
	/* reactor 0 */
	void *cm_id;                 /* struct rdma_cm_id */
	bool r0_closing;             /* reactor 0 decided the end (disconnect sent) */
	bool r0_linked;              /* on g_rdma_pending (not yet bound to a controller) */
	bool r0_migrated;            /* an I/O queue handed to its reactor */
	uint16_t cm_qid;             /* the queue id of the connection request */
	TAILQ_ENTRY(rdma_conn) link;

	/* the polling reactor */
	const struct rdma_post_ops *ops;
	enum rdma_conn_state state;
	struct nvl_reactor *reactor;
	struct nvl_fdh *fdh;
	struct nvl_poller *poller;
	struct nvl_timer *timer;
	struct nvl_listen_addr listener;
	char peer[64];
	uint64_t accepted_ns;
	uint64_t last_work_ns;

	uint16_t qid;
	uint32_t entries;            /* queue size: HSQSIZE + 1 */
	uint32_t icd_max;            /* in-capsule data a receive buffer holds */
	uint16_t sqhd;
	uint32_t max_reads;          /* RDMA READs in flight at most (ORD) */
	uint32_t reads;

	struct rdma_ctrlr *ctl;
	struct nvl_nvmf_ctrlr *tc;
	struct nvl_reactor *placed;  /* I/O queue: its nvl_reactor_pick() */
	struct nvl_nvme_auth *auth;  /* DH-HMAC-CHAP state (nvmf/auth.h), as tcp */

	/* command slots */
	struct rdma_req *reqs;
	uint32_t nreqs;
	struct rdma_req *free_reqs;
	uint32_t busy;
	uint32_t executing;
	STAILQ_HEAD(, rdma_req) read_wait;

	/* receive buffers: nrecv of (64 + icd_max) bytes */
	uint8_t *rbuf;
	uint32_t nrecv;
	uint32_t rsize;
	struct nvl_nvme_cpl *rsps;   /* one response capsule per request */

	/* verbs (rdma_conn.c) */
	void *pd, *cq, *channel, *qp;
	void *rbuf_mr, *rsp_mr;
	uint32_t rbuf_lkey, rsp_lkey;
	bool send_inv;               /* the device does Send with Invalidate */
	unsigned cq_events_unacked;
	bool free_scheduled;
	bool close_after_send;       /* Connect refused / Disconnect: close once sent */
	uint32_t sends_out;          /* response sends not yet completed */
	void *deferred;              /* commands that came while moving: (index, length) */
	uint32_t ndeferred;
	const char *fail_why;        /* reactor 0: why it closes (read by the queue after the message) */
	const char *io_why;          /* the polling reactor: why an I/O queue failed (read by reactor 0) */

	/* statistics */
	uint64_t cmds, bytes_in, bytes_out, rdma_reads, rdma_writes;
};

struct rdma_ctrlr {
	struct nvl_nvmf_ctrlr *tc;
	struct rdma_conn *admin;
	struct rdma_conn *ioq[RDMA_MAX_IO_QUEUES + 1];
	struct nvl_reactor *ioq_reactor[RDMA_MAX_IO_QUEUES + 1];
	unsigned nio_alive;          /* I/O connections not yet gone */
	bool closing;
	bool in_try_free;
	TAILQ_ENTRY(rdma_ctrlr) link;
};

struct rdma_opts {
	uint32_t max_queue_depth;
	uint32_t max_aq_depth;
	uint32_t max_io_qpairs;
	uint32_t icd;                /* in-capsule data bytes */
	uint32_t max_io_size;        /* MDTS of new controllers */
	uint32_t io_unit_size;       /* accepted (SPDK); transfers are one work request */
	uint32_t max_srq_depth;      /* accepted (SPDK); no shared receive queue is used */
	bool no_srq;
	uint32_t num_cqe;            /* accepted (SPDK); each queue pair has its own CQ */
	uint32_t acceptor_backlog;
	bool no_wr_batching;
};

TAILQ_HEAD(rdma_conn_list, rdma_conn);
TAILQ_HEAD(rdma_ctrlr_list, rdma_ctrlr);

/* rdma.c */
extern struct rdma_opts g_rdma_opts;          /* nvmf_create_transport; reactor 0 writes */
extern struct rdma_conn_list g_rdma_pending;  /* reactor 0 */
extern struct rdma_ctrlr_list g_rdma_ctrlrs;  /* reactor 0 */
extern unsigned g_rdma_nconns;                /* atomic */
extern struct nvl_transport_ops g_rdma_ops;
extern const struct nvl_nvme_queue_ops g_rdma_queue_ops;
void rdma_ctrlr_try_free(struct rdma_ctrlr *ctl);
void rdma_ctrlr_teardown(struct rdma_ctrlr *ctl, const char *why);

/* rdma_conn.c (verbs) */
/** reactor 0: a connection request on a listener (takes the CM id) */
void rdma_conn_request(void *cm_id, const struct nvl_listen_addr *la, const void *pd,
		       uint8_t pd_len, uint8_t initiator_depth);
/** reactor 0: the CM says the connection ended (or failed to come up) */
void rdma_conn_cm_gone(struct rdma_conn *c, const char *why);
/** reactor 0: end the connection (disconnect, then its reactor drains and frees it) */
void rdma_conn_close(struct rdma_conn *c, const char *why);
/** the polling reactor: the connection failed (admin/unbound close, I/O queue tells reactor 0) */
void rdma_conn_error(struct rdma_conn *c, const char *why);
/** reactor 0: close I/O queue qid of ctl */
void rdma_ioq_close(struct rdma_ctrlr *ctl, uint16_t qid);
/** the polling reactor: free once nothing is in flight */
void rdma_conn_try_free(struct rdma_conn *c);
/** reactor 0: the last connection is gone and the listeners closed: release devices */
void rdma_devices_release(void);

/* rdma_capsule.c (no verbs) */
/** set up the command slots and response array of c (entries of them) */
int rdma_capsule_init(struct rdma_conn *c);
void rdma_capsule_fini(struct rdma_conn *c);
/** a command capsule arrived in receive buffer idx (len bytes). \return 0, or
 *  -1 after a fatal error (the connection is failing) */
int rdma_capsule_recv(struct rdma_conn *c, uint32_t idx, uint32_t len);
/** the RDMA READ of request idx completed */
void rdma_capsule_read_done(struct rdma_conn *c, uint32_t idx);
/** the response send of request idx completed */
void rdma_capsule_send_done(struct rdma_conn *c, uint32_t idx);
/** release requests that will never complete (closing: reads in flight, waiting ones) */
void rdma_capsule_drop_pending(struct rdma_conn *c);

/** the connection still takes input */
static inline bool
rdma_conn_reading(const struct rdma_conn *c)
{
	return c->state == RC_CONNECT_WAIT || c->state == RC_ACTIVE;
}

#endif
