/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inside the NVMe host core (src/host): the controller and queue-pair
 * objects, request and admin slots, the data window, and the host-side
 * transport ops table that host_shm.c and host_tcp.c implement. Not for
 * other components (they use host.h).
 *
 * Which thread touches what is written beside each field group: "owner"
 * is the controller's owner (host.h), "qp owner" the queue pair's thread;
 * fields marked atomic are read across them.
 */
#ifndef NVL_HOST_INTERNAL_H
#define NVL_HOST_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "host/host.h"
#include "util/log.h"
#include "util/util.h"

/* libnvlend's log component (host_log.c): verbose lines on the admin path,
 * connects and queue creation, trace lines per command and request */
NVL_LOG_DECLARE_COMPONENT(host);

#define HOST_ADMIN_SLOTS 16         /* admin commands outstanding at once */
#define HOST_ADMIN_MAX_FDS 4        /* shm: descriptors one admin completion carries */
#define HOST_ERR_LEN 256

/* ---- the shm data window (window.c) ------------------------------------------------ */

/*
 * A shared memory region the controller reads and writes directly; command
 * data pointers are offsets into it. Reference counted: the association and
 * every transport queue made on it hold one, so the mapping outlives the
 * last queue that may still copy into it. Allocation is page granular,
 * first fit, under a mutex (any thread).
 */
struct host_window {
	uint8_t *base;
	uint64_t size;
	int refs;                   /* atomic */
	pthread_mutex_t lock;
	uint32_t npages;
	uint32_t hint;
	uint32_t *alloc_len;        /* pages of the allocation starting here, 0 = no start */
	uint8_t *used;
};

/** Map size bytes of fd (shared, populated). \return 0, -ENOMEM, -EINVAL. */
int host_window_create(int fd, uint64_t size, struct host_window **out);
void host_window_get(struct host_window *w);
void host_window_put(struct host_window *w);
void *host_window_alloc(struct host_window *w, size_t size);
/** The window of c's current association with a reference (NULL: none). */
struct host_window *host_ctrlr_window_get(struct host_ctrlr *c);
void host_window_free(struct host_window *w, void *p);
static inline bool
host_window_contains(const struct host_window *w, const void *p, size_t len)
{
	const uint8_t *b = p;

	return b >= w->base && len <= w->size && (size_t)(b - w->base) <= w->size - len;
}
static inline uint64_t
host_window_offset(const struct host_window *w, const void *p)
{
	return (uint64_t)((const uint8_t *)p - w->base);
}

/* ---- transport queues and requests --------------------------------------------------- */

/** A connected transport queue; transports embed it first. */
struct host_tq {
	const struct host_transport_ops *ops;
	uint32_t gen;               /* the association it belongs to */
	struct host_window *win;    /* reference, or NULL (no window) */
};

enum host_req_state {
	HOST_REQ_FREE = 0,
	HOST_REQ_INFLIGHT,          /* handed to the transport queue */
	HOST_REQ_KEPT,              /* waiting for a transport queue (kept across a loss) */
};

#define HOST_REQ_INLINE 64          /* small payloads (DSM ranges, reservation data) copied */

/** One command slot of a queue pair; cid = index. */
struct host_req {
	uint16_t cid;
	uint8_t state;              /* enum host_req_state */
	uint8_t dir;                /* enum nvl_xfer_dir */
	bool saved;                 /* cmd and iov below hold the submission */
	uint32_t len;
	nvl_io_cb cb;
	void *arg;
	void *bounce;               /* window copy of the data, or NULL */
	struct host_qpair *qp;
	int iovcnt;
	struct nvl_nvme_cmd cmd;
	struct iovec iov[HOST_MAX_IOV];
	uint8_t small[HOST_REQ_INLINE]; /* a copy of a small payload the caller may not keep */
};

enum host_qpair_cstate {
	HOST_QP_IDLE = 0,           /* waits for a ready association */
	HOST_QP_CONNECTING,         /* the transport is making its queue */
	HOST_QP_CONNECTED,          /* offered for the current association */
	HOST_QP_FAILED,             /* its first connect failed */
	HOST_QP_DELETING,           /* destroy: queues being deleted */
};

struct host_qpair {
	/* fixed at creation */
	struct host_ctrlr *c;
	const struct host_transport_ops *ops;
	uint16_t qid;
	uint32_t entries;
	struct host_qpair_opts opts;
	bool keep;                  /* the controller reconnects: keep idempotent commands */
	void *ctx;                  /* the owner's */

	/* qp owner */
	struct host_tq *tq;         /* NULL: none */
	uint32_t gen;               /* association of tq, or of the last one (atomic store) */
	struct host_req *reqs;      /* entries - 1 slots */
	uint16_t *free_cids;
	uint32_t nfree;
	uint32_t outstanding;
	uint32_t nkept;
	uint64_t epoch;
	bool tq_broken;             /* tq failed: drop it at the next chance */
	bool stopped;               /* host_qpair_stop(): no more I/O */
	bool lost_reported;         /* a loss of gen was reported (atomic) */
	char lost_why[160];         /* written before lost_gen is published */

	/* controller owner */
	TAILQ_ENTRY(host_qpair) link;
	enum host_qpair_cstate cstate;
	int connect_rc;
	bool ever_connected;
	void *tconn;                /* transport's connect in progress */
	host_done_fn done;
	void *done_arg;
	bool destroy_asked;
	unsigned deletes_left;

	/* shared */
	struct host_tq *offer;      /* atomic: a transport queue for the current association */
};

/* ---- admin slots ---------------------------------------------------------------------- */

struct host_admin_req {
	struct host_ctrlr *c;
	bool busy;
	bool sent;                  /* transport: on the wire (else retried) */
	uint16_t slot;
	uint32_t flags;             /* HOST_ADMIN_* */
	uint64_t deadline_ns;
	struct nvl_nvme_cmd cmd;    /* cid = slot (transports may renumber on the wire) */
	void *buf;
	uint32_t len;
	uint8_t dir;
	host_admin_cb cb;
	void *arg;
	int *fds_out;               /* descriptors of the completion go here ... */
	int *nfds_out;              /* ... (else they are closed) */
};

/* ---- the controller --------------------------------------------------------------------- */

enum host_step {
	HOST_STEP_TRANSPORT = 0,    /* transport connect (shm CONNECT, tcp ICReq + Connect) */
	HOST_STEP_AUTH,             /* DH-HMAC-CHAP, when the Connect asked for it */
	HOST_STEP_CAP,              /* fabrics: Property Get CAP */
	HOST_STEP_CC,               /* fabrics: Property Set CC.EN */
	HOST_STEP_CSTS,             /* fabrics: Property Get CSTS until RDY */
	HOST_STEP_ID_CTRL,
	HOST_STEP_NOQ,              /* fabrics: Set Features Number of Queues */
	HOST_STEP_NS_LIST,
	HOST_STEP_ID_NS,
	HOST_STEP_NS_DESC,
	HOST_STEP_VERIFY,           /* the owner checks a reconnected association */
	HOST_STEP_QPAIRS,           /* transport queues for every queue pair */
	HOST_STEP_DONE,
};

enum host_close_step {
	HOST_CLOSE_NONE = 0,
	HOST_CLOSE_SHN,             /* fabrics: Property Set CC.SHN */
	HOST_CLOSE_SHST,            /* fabrics: Property Get CSTS until SHST complete */
	HOST_CLOSE_DONE,
};

struct host_ctrlr {
	struct host_ctrlr_opts opts;
	struct nvl_uri uri;
	char hostnqn[NVL_NVME_NQN_LEN];
	const struct host_transport_ops *ops;
	void *tstate;               /* transport's state for the controller's life */
	void *tctx;                 /* transport's state of the current association */

	/* atomics, read by queue-pair owners */
	uint32_t gen;               /* current association (bumped when one ends) */
	uint32_t fail_mode;         /* enum host_fail_mode */
	uint32_t lost_gen;          /* a queue pair lost this association */
	uint32_t state;             /* enum host_ctrlr_state */

	int err;
	char last_error[HOST_ERR_LEN];
	bool dropping;              /* inside assoc_drop(): late callbacks are ignored */

	/* association set-up (owner) */
	enum host_step step;
	bool assoc_live;            /* transport connected, not yet dropped */
	uint64_t assoc_deadline_ns;
	uint64_t step_at_ns;        /* CSTS: next poll */
	uint64_t csts_deadline_ns;
	uint8_t *idbuf;             /* 4 KiB the controller can reach */
	uint32_t authreq;           /* the Connect's AUTHREQ bits (transport sets them) */
	struct host_auth *auth;     /* HOST_STEP_AUTH: the admin queue's transaction */
	uint64_t cap;
	struct nvl_nvme_id_ctrl id;
	uint16_t cntlid;
	uint16_t max_io_queues;
	uint16_t max_queue_entries;
	uint32_t max_xfer;
	uint32_t *ns_list;          /* HOST_MAX_NS */
	unsigned nns_list, ns_idx;
	struct nvl_ns_info *ns;     /* HOST_MAX_NS */
	unsigned nns;
	uint32_t first_nsid;
	struct host_window *win;    /* shm: the association's window (reference) */

	/* admin (owner) */
	struct host_admin_req admin[HOST_ADMIN_SLOTS];
	unsigned admin_busy;
	/* command ids are slot + HOST_ADMIN_SLOTS * admin_gen (a new generation
	 * per command): a late or repeated completion (a shm target worker that
	 * restarted answers what was in flight again) never matches a newer
	 * command in the same slot */
	uint16_t admin_gen;

	/* keep-alive (owner) */
	uint64_t next_ka_ns;
	bool ka_busy;

	/* reconnect (owner) */
	uint64_t lost_ns;
	uint64_t next_attempt_ns;
	unsigned attempts;
	uint64_t losses, reconnects;
	bool connected_once;

	/* close (owner) */
	enum host_close_step close_step;
	uint64_t close_deadline_ns;

	/* queue pairs (owner) */
	TAILQ_HEAD(, host_qpair) qpairs;
	bool qid_used[HOST_MAX_QUEUES + 1];
	unsigned qp_waiting;        /* HOST_STEP_QPAIRS: transport queues still to come */
};

/* ---- DH-HMAC-CHAP, host side (host_auth.c) -------------------------------------------------- */

struct host_auth;

/** A transaction for queue qid with the host key (required) and, if ckey is
 *  not NULL and has a length, the controller key (bidirectional).
 *  \return 0, -EINVAL, -ENOMEM, -EIO. */
int host_auth_create(const struct nvl_dhchap_key *key, const struct nvl_dhchap_key *ckey,
		     const char *hostnqn, const char *subnqn, uint16_t qid, struct host_auth **out);
void host_auth_destroy(struct host_auth *a);
/**
 * The next command: \return 1 with *cmd, *len and *dir filled (an
 * Authentication Send of buf's first *len bytes, or a Receive into buf;
 * cap >= NVL_DHCHAP_MAX_MSG), 0 once authenticated, or a -errno once failed
 * (-EACCES the controller refused us, -EKEYREJECTED the controller did not
 * prove itself, -EPROTO,
 * -EREMOTEIO; host_auth_error() says why).
 */
int host_auth_next(struct host_auth *a, struct nvl_nvme_cmd *cmd, uint8_t *buf, uint32_t cap,
		   uint32_t *len, uint8_t *dir);
/** That command's completion; buf holds what a Receive got (len: its size).
 *  \return 0 or the failure (also what host_auth_next() returns next). */
int host_auth_complete(struct host_auth *a, const struct nvl_nvme_cpl *cpl, const uint8_t *buf,
		       uint32_t len);
const char *host_auth_error(const struct host_auth *a);
/** "DH-HMAC-CHAP sha512, ffdhe8192[, the controller authenticated too]" */
const char *host_auth_summary(const struct host_auth *a, char *buf, size_t len);

/* ---- transport ops ------------------------------------------------------------------------ */

/*
 * The host side of a transport. Controller-side ops run on the controller's
 * owner; queue ops on the queue pair's owner (tq_destroy: whoever holds the
 * transport queue). Required unless marked optional.
 */
struct host_transport_ops {
	const char *name;
	enum nvl_uri_kind kind;
	bool fabrics;               /* enable through properties, ask for queues (NVMe-oF) */
	bool delete_queues;         /* destroy sends Delete I/O SQ/CQ (else closing deletes) */
	bool spin_yields;           /* the peer is a local process: spinners offer the CPU */
	bool admin_bounces;         /* admin_send copies data outside the window through it */

	/** optional: the controller's lifetime state (tcp: the resolved address). */
	int (*ctrlr_init)(struct host_ctrlr *c);
	void (*ctrlr_fini)(struct host_ctrlr *c);
	/** Start an association: host_assoc_transport_ready() or host_assoc_fail() follow. */
	int (*assoc_start)(struct host_ctrlr *c, uint64_t now);
	/** End it now: close, no callbacks (the core completes what was outstanding). */
	void (*assoc_stop)(struct host_ctrlr *c);
	/** optional: tell the controller we leave (shm DISCONNECT); fabrics use CC.SHN. */
	void (*assoc_bye)(struct host_ctrlr *c);
	/** Progress (connect steps, admin completions, queues being made).
	 *  \return > 0 if something happened. */
	int (*process)(struct host_ctrlr *c, uint64_t now);
	int (*fds)(struct host_ctrlr *c, struct pollfd *p, int max);
	/** Send an admin command; its completion: host_admin_complete(). \return 0, -errno. */
	int (*admin_send)(struct host_ctrlr *c, struct host_admin_req *a);
	/** Start making qp's transport queue: host_tq_connected() / host_tq_failed() follow. */
	int (*tq_connect)(struct host_ctrlr *c, struct host_qpair *qp);
	/** optional: forget a tq_connect in progress (the association is gone). */
	void (*tq_cancel)(struct host_ctrlr *c, struct host_qpair *qp);
	void (*tq_destroy)(struct host_tq *tq);
	/** Queue cmd (cid set) with its data (in the window if the queue has one). */
	int (*submit)(struct host_qpair *qp, struct host_tq *tq, struct host_req *r,
		      struct nvl_nvme_cmd *cmd, const struct iovec *iov, int iovcnt);
	/** Reap up to max (0: all) completions through host_qpair_complete().
	 *  \return how many, or -ENOTCONN once the queue failed (host_qpair_lost() called). */
	int (*poll)(struct host_qpair *qp, struct host_tq *tq, uint32_t max);
	int (*tq_fds)(const struct host_tq *tq, struct pollfd *p, int max);
	/** optional: arm the interrupt; -EAGAIN completions ready, -ENOTCONN hung up. */
	int (*arm)(struct host_tq *tq);
	/** optional: after a wait on tq_fds: consume the interrupt; a hang-up
	 *  among pfds is reported (host_qpair_lost) and returns -ENOTCONN. */
	int (*ack)(struct host_qpair *qp, struct host_tq *tq, const struct pollfd *pfds, int n);
	/** optional: the CPU the peer polls this queue from (-1: unknown). */
	int (*peer_cpu)(const struct host_tq *tq);
};

extern const struct host_transport_ops g_host_shm_ops;
extern const struct host_transport_ops g_host_tcp_ops;
extern const struct host_transport_ops g_host_rdma_ops;
/** nvl_strerror's text for -ENETDOWN: no RDMA device (host_rdma.c). */
extern const char *const g_host_rdma_nodev;

/* ---- the controller's side of queue pairs (qpair.c) --------------------------------------------- */

/** The association ended: connects in progress are forgotten, offers taken back. */
void host_qpairs_assoc_dropped(struct host_ctrlr *c);
/** Tell every queue pair's owner to poll (loss, failure mode, offers). */
void host_qpairs_kick(struct host_ctrlr *c);
/** Set-up: start connecting every idle queue pair. \return how many, or -errno
 *  (the association failed). */
int host_qpairs_connect_all(struct host_ctrlr *c);
/** Every queue pair of the set-up is connected. */
void host_assoc_qpairs_done(struct host_ctrlr *c);
/** READY: start connecting queue pairs created since. \return how many. */
int host_qpairs_connect_new(struct host_ctrlr *c);
bool host_qpairs_connecting(const struct host_ctrlr *c);

/* ---- what transports call ------------------------------------------------------------------ */

/** The transport is connected: c->cntlid (and shm's c->win, max_io_queues,
 *  max_queue_entries) are set. */
void host_assoc_transport_ready(struct host_ctrlr *c);
/** The association (or its set-up) failed. */
void host_assoc_fail(struct host_ctrlr *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/** A transport's timer: poll the controller again by now_ns >= ns (owner). */
void host_ctrlr_wake_at(struct host_ctrlr *c, uint64_t ns);
/** Admin completion for slot a (fds: descriptors that came with it, taken over). */
void host_admin_complete(struct host_ctrlr *c, struct host_admin_req *a,
			 const struct nvl_nvme_cpl *cpl, int *fds, int nfds);
/** The busy slot whose command has this cid, or NULL (late or repeated completions). */
struct host_admin_req *host_admin_by_cid(struct host_ctrlr *c, uint16_t cid);
/** An admin command of the core or a transport, also while setting up.
 *  \return the command id (>= 0), or -ENOTCONN, -EAGAIN, the transport's -errno. */
int host_admin_submit(struct host_ctrlr *c, const struct nvl_nvme_cmd *cmd, void *buf,
		      uint32_t len, uint8_t dir, uint32_t flags, host_admin_cb cb, void *arg,
		      int *fds_out, int *nfds_out);
/** qp's transport queue is made (tq->gen set here). */
void host_tq_connected(struct host_ctrlr *c, struct host_qpair *qp, struct host_tq *tq);
void host_tq_failed(struct host_ctrlr *c, struct host_qpair *qp, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/** qp owner: one completion from the transport. */
void host_qpair_complete(struct host_qpair *qp, const struct nvl_nvme_cpl *cpl);
/** qp owner: the command of cid died with its connection (not a controller status). */
void host_qpair_path_lost(struct host_qpair *qp, uint16_t cid);
/** qp owner: the transport queue failed; report it to the controller. */
void host_qpair_lost(struct host_qpair *qp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
