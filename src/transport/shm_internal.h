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
	/* descriptor budgets (security issue, item 5): I/O queues (SQs and CQs,
	 * each a region; an SQ also a doorbell eventfd) and interrupt vectors
	 * (eventfds) one host NQN may hold over all its controllers, and all
	 * hosts together; a CQ asked with a vector beyond the vector budget is
	 * made without one (the host polls it) */
	uint32_t max_queues_per_host;
	uint32_t max_queues_total;
	uint32_t max_vectors_per_host;
	uint32_t max_vectors_total;
};

struct shm_ctrlr;
struct shm_cq;
struct shm_sq;
struct shm_keep;

/*
 * Kept state (shm_keep.c): with a supervisor holding descriptors (the keeper
 * or systemd: util/fdstore.h), each controller's queue state lives in a
 * memfd in the store, written so that a worker killed between any two stores
 * leaves a state the next worker can resume from without the host noticing.
 * A slot per command of an SQ (index = the request's), one per admin command.
 */
enum shm_keep_slot_state {
	SHM_KS_FREE = 0,
	SHM_KS_RECEIVING = 1,  /* admin: peeked, maybe not yet consumed from the socket */
	SHM_KS_ACTIVE = 2,     /* fetched / received: executing (re-executed on restore) */
	SHM_KS_POSTING = 3,    /* I/O: completion being posted at CQ post number seq;
				* admin: completion being sent */
};

struct shm_keep_slot {
	uint32_t state;                 /* enum shm_keep_slot_state, release-stored last */
	uint32_t rsvd;
	uint64_t seq;                   /* ACTIVE: fetch number + 1; POSTING: post number */
	struct nvl_nvme_cmd sqe;
	struct nvl_nvme_cpl cpl;        /* POSTING: the completion, sqhd and sqid set */
};

struct shm_keep_cq {
	uint32_t valid;
	uint32_t entries;
	uint16_t iv;
	uint8_t ien;
	uint8_t rsvd[5];
	uint64_t posted;                /* completions posted: tail and phase follow from it */
};

struct shm_keep_sq {
	uint32_t valid;
	uint32_t entries;
	uint16_t cqid;
	uint16_t rsvd[3];
	uint64_t fetched;               /* commands fetched: the head follows from it */
};

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
	int kslot;                       /* its kept slot, -1: not kept */
	bool redo;                       /* run again after a restart (shm_keep.c) */
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
	uint64_t fetched;                /* head = fetched % entries */
	struct shm_keep_sq *ksq;         /* kept state, NULL when not kept */
	struct shm_keep_slot *kslots;    /* one per request */
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
	uint64_t posted;                 /* tail and phase follow from it */
	struct shm_keep_cq *kcq;         /* kept state, NULL when not kept */
};

/* C_WINDOW: the target accepted the CONNECT, the data window is being made
 * (shm_window.c); the host waits for the answer */
enum shm_conn_state { C_CONNECTING, C_WINDOW, C_ACTIVE, C_CLOSING };
struct shm_window_job;

struct shm_ctrlr {
	int fd;
	struct nvl_fdh *fdh;
	enum shm_conn_state state;
	struct nvl_listen_addr listener;
	struct nvl_nvmf_ctrlr *tc;
	struct nvl_timer *connect_timer;
	struct shm_region window;
	struct shm_window_job *window_job; /* C_WINDOW: the window being made */
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
	/* kept state (shm_keep.c), NULL when not kept */
	struct shm_keep *keep;
	int keep_fd;
	uint32_t keep_id;                /* names in the fd store: shm.ID.* */
	struct nvl_timer *restore_timer; /* a restored controller: its crash counter clears */
	/* a function's consumer (OPEN_FN): the function (its vectors are
	 * borrowed from its pool: sc->vectors[] not closed here), and whether
	 * its SQs fetch commands (written on reactor 0, read by the SQ pollers) */
	void *fn;
	bool suspended;
	uint32_t fn_gen;                 /* the generation of the function's vectors (kept) */
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

/** reactor 0: run an admin command (kslot: its kept slot, or -1; redo: it
 *  ran before a restart already, so a queue it made or deleted is taken as
 *  made or deleted). */
void shm_admin_start(struct shm_ctrlr *sc, const struct nvl_nvme_cmd *sqe, int kslot, bool redo);
/** Send an admin completion; \return 0 or -errno. */
int shm_conn_send(struct shm_ctrlr *sc, void *msg, size_t len, uint16_t type, const int *fds,
		  int nfds);
void shm_conn_event(void *arg, uint32_t events);
void shm_conn_peer_cred(struct shm_ctrlr *sc);
/** Fill the transport-side fields of a Connect (limits, ops, peer credentials). */
void shm_connect_info_fill(struct shm_ctrlr *sc, struct nvl_connect_info *ci);
extern struct nvl_transport_ops g_shm_ops;
extern TAILQ_HEAD(shm_conn_list, shm_ctrlr) g_shm_conns;
extern unsigned g_shm_nconns;

/** reactor 0: the CONNECT goes on once its window is made (rc 0, win taken)
 *  or could not be (rc < 0, refused). shm.c. */
void shm_connect_window_ready(struct shm_ctrlr *sc, int rc, struct shm_region *win);

/** reactor 0: may sc's host make one more queue (vector: an interrupt
 *  vector)? 0, or -ENOSPC with the budget's name in why. shm.c. */
int shm_budget_check(const struct shm_ctrlr *sc, bool vector, char *why, size_t len);

/* ---- functions (src/function/fn_nvme.c): pre-provisioned controllers ---- */
struct shm_fn_open {
	char subnqn[NVL_NVME_NQN_LEN];
	char hostnqn[NVL_NVME_NQN_LEN];  /* the function's own host identity */
	uint8_t hostid[16];
	uint16_t cntlid;                 /* fixed */
	uint16_t max_io_queues;
	uint8_t mdts;
	bool suspended;
	unsigned nvectors;               /* vectors 0..nvectors-1; others: polled */
	int vectors[SHM_MAX_VECTORS];    /* borrowed eventfds */
	uint32_t vector_gen;             /* nvl_fn_vector_gen(): the same after a restart
					  * when the vectors are the same eventfds */
	void *fn;
};

struct shm_fn_ops {
	/** is traddr a function's endpoint? (CONNECT is refused there) */
	bool (*is_endpoint)(const char *traddr);
	/** a consumer opens the function served on traddr; it remembers sc.
	 *  \return 0, -ENOENT (no function there), -EBUSY (why: the holder). */
	int (*open)(const char *traddr, struct shm_ctrlr *sc, struct shm_fn_open *o, char *why,
		    size_t len);
	/** sc, opened with o.fn, is freed (its controller released) */
	void (*closed)(void *fn, struct shm_ctrlr *sc);
	/** a consumer kept by a previous worker comes back on the function
	 *  served on traddr (shm_keep.c): as open, logged as a restore.
	 *  Optional (NULL: kept consumers are dropped). */
	int (*restore)(const char *traddr, struct shm_ctrlr *sc, struct shm_fn_open *o,
		       char *why, size_t len);
	/** sc, taken back with restore, serves again (optional) */
	void (*restored)(void *fn, struct shm_ctrlr *sc);
};
/** reactor 0, once at start-up. shm.c. */
void shm_fn_register(const struct shm_fn_ops *ops);
extern const struct shm_fn_ops *g_shm_fn_ops; /* shm.c; NULL: no functions */
/** reactor 0: stop / start fetching commands of sc's SQs. shm.c. */
void shm_fn_set_suspended(struct shm_ctrlr *sc, bool on);
/** commands fetched and not yet completed over sc's SQs (reactor 0). shm.c. */
uint64_t shm_fn_inflight(const struct shm_ctrlr *sc);
/** the consumer's pid (0: unknown) and I/O queue pairs now (reactor 0). shm.c. */
uint32_t shm_fn_consumer_pid(const struct shm_ctrlr *sc);
unsigned shm_fn_queues(const struct shm_ctrlr *sc);

/* shm_window.c: windows made by one allocator thread, off the reactors */
/** reactor 0: make sc's window of size bytes; shm_connect_window_ready()
 *  follows on this reactor. \return 0, -ENOMEM, -errno of pthread_create. */
int shm_window_request(struct shm_ctrlr *sc, const char *what, uint64_t size);
/** reactor 0: bytes of sc's window still being made (budgets count them). */
uint64_t shm_window_pending_bytes(const struct shm_ctrlr *sc);
/** reactor 0: sc goes; a window being made for it is dropped when done. */
void shm_window_forget(struct shm_ctrlr *sc);
/** Stop the allocator thread (transport fini, after the connections went). */
void shm_window_stop(void);
/** Fuzzers and unit tests that drive the reactor by hand: make windows on
 *  the calling thread, inside shm_window_request() (deterministic). */
extern bool g_shm_window_inline;
/* set once before an upgrade's hand-over: no SQ is fetched any more (any reactor reads it) */
extern bool g_shm_quiesced;

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
/** CQ's reactor: start a queue's poller (and kick watch). */
void shm_sq_start_on_reactor(void *arg);
void shm_cq_start_on_reactor(void *arg);
/** CQ's reactor: run a command of sq (a restored one: r already taken). */
void shm_sq_exec(struct shm_sq *sq, struct shm_req *r);
/** CQ's reactor: raise the CQ's interrupt if the host asked for one. */
void shm_cq_interrupt(struct shm_cq *cq);

/* shm_keep.c: the kept state (crash recovery) */
/** Keep a controller that just connected (before CONNECT_RESP goes): its
 *  state memfd, socket and window go to the fd store. Not kept (no store,
 *  or it failed: logged) leaves sc->keep NULL. reactor 0. */
void shm_keep_connect(struct shm_ctrlr *sc);
/** CONNECT_RESP went: a restart resumes this controller from now on. */
void shm_keep_connected(struct shm_ctrlr *sc);
/** The controller's features and authentication, after an admin command. */
void shm_keep_snapshot(struct shm_ctrlr *sc);
/** reactor 0: the connection closes: not to be restored any more. */
void shm_keep_teardown(struct shm_ctrlr *sc);
/** reactor 0: the connection is freed: drop the rest of what was kept. */
void shm_keep_free(struct shm_ctrlr *sc);
/** reactor 0: a peeked admin command; \return its slot, -1 when not kept. */
int shm_keep_admin_begin(struct shm_ctrlr *sc, const struct nvl_nvme_cmd *sqe);
void shm_keep_admin_set(struct shm_ctrlr *sc, int kslot, uint32_t state);
/** reactor 0: queue made (regions and eventfds to the store, then valid). */
void shm_keep_cq_created(struct shm_ctrlr *sc, struct shm_cq *cq, bool new_vector);
void shm_keep_sq_created(struct shm_ctrlr *sc, struct shm_sq *sq);
/** the queue's reactor: the queue is gone. */
void shm_keep_sq_gone(struct shm_sq *sq);
void shm_keep_cq_gone(struct shm_cq *cq);
/** reactor 0, at start: take back every controller a previous worker kept. */
void shm_keep_restore_all(void);
/* Built ahead of an upgrade: take and connect every kept controller, its
 * queues not run (shm_keep_restore_all finishes them at the hand-over). */
void shm_keep_restore_ahead(void);

/* hot path (the CQ's reactor) */
static inline void
shm_keep_fetched(struct shm_sq *sq, struct shm_req *r)
{
	sq->fetched++;
	if (sq->kslots) {
		struct shm_keep_slot *k = &sq->kslots[r - sq->reqs];

		k->sqe = r->nvme.cmd;
		k->seq = sq->fetched;
		__atomic_store_n(&k->state, SHM_KS_ACTIVE, __ATOMIC_RELEASE);
		__atomic_store_n(&sq->ksq->fetched, sq->fetched, __ATOMIC_RELEASE);
	}
}

static inline void
shm_keep_skipped(struct shm_sq *sq)
{
	sq->fetched++;
	if (sq->ksq)
		__atomic_store_n(&sq->ksq->fetched, sq->fetched, __ATOMIC_RELEASE);
}

#endif
