/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NVMe command set (DESIGN.md section 3: src/nvme): admin and I/O
 * command handling, namespaces, reservations, log pages, features,
 * properties. It knows nothing of transports or of how subsystems are
 * organised: the target gives each controller an ops table for what only it
 * can do (namespace lookup, queue creation, discovery log, notifications).
 *
 * Request flow (every transport):
 *   1. copy the SQE into req->cmd (never use peer-writable memory after that)
 *   2. nvl_nvme_req_prepare(req, map, ctx) sizes the data transfer from the
 *      command's fields and has the transport's map() make it reachable in
 *      req->iov (PRPs/SGLs onto shared memory, a buffer for in-capsule or
 *      H2C data); a status from either step completes the command instead
 *   3. nvl_nvme_execute(req) (once any H2C data arrived): the command runs;
 *      req->done(req) is called exactly once, possibly before execute
 *      returns. req->cpl is filled (cid, status without phase; sqhd/sqid are
 *      the transport's to set), and for C2H transfers req->xfer_len says how
 *      many bytes were produced.
 *
 * Statuses are (SCT << 8) | SC, with NVL_NVME_DNR() the one way to mark one
 * Do Not Retry. A controller's namespace lookups go to the target's ops
 * (struct nvl_nvme_ctrlr_ops, installed by the target); queue commands and
 * resets to the transport's (struct nvl_nvme_queue_ops).
 *
 * Threading: I/O commands run on the queue's reactor. Admin commands run on
 * the controller's home reactor (ctrlr->home). Controller-wide state touched
 * from several reactors (error log, notifications) is under ctrlr->lock;
 * namespace reservation state under ns->resv.lock; counters are per reactor.
 */
#ifndef NVL_NVME_H
#define NVL_NVME_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "bdev/bdev.h"
#include "nvlend/spec/nvme.h"
#include "reactor/reactor.h"

#define NVL_NVME_MAX_REGISTRANTS 64
#define NVL_NVME_AERL 4                 /* outstanding AERs per controller (AERL+1) */
#define NVL_NVME_ERRLOG_ENTRIES 64
#define NVL_NVME_CHANGED_NS_MAX 1024
#define NVL_NVME_RESV_NOTIF_MAX 255
#define NVL_NVME_REQ_INLINE_IOV 8
#define NVL_NVME_MDTS 7                 /* largest MDTS: 2^7 pages = 512 KiB per command */
#define NVL_NVME_MAX_XFER (NVL_NVME_PAGE_SIZE << NVL_NVME_MDTS)

struct nvl_nvme_ctrlr;
struct nvl_nvme_ns;
struct nvl_nvme_req;
struct nvl_nvme_auth;

/* ---- in-band authentication (Base 2.0 8.13) ------------------------------ */

/** Largest Authentication Send (TL) and Receive (AL) transfers accepted. */
#define NVL_NVME_AUTH_MAX_SEND 4096u
#define NVL_NVME_AUTH_MAX_RECV 65536u

/** One queue's authentication state. The target (src/nvmf/auth.c) embeds it
 *  first in its own object; src/nvme only calls through the ops. */
struct nvl_nvme_auth_ops {
	/** required: run a Fabrics Authentication Send/Receive (fctype 05h/06h)
	 *  on the queue's transaction and complete req. */
	void (*execute)(struct nvl_nvme_auth *a, struct nvl_nvme_req *req);
	/** required: may other commands run on the queue (authenticated, not failed)? */
	bool (*ready)(const struct nvl_nvme_auth *a);
};

struct nvl_nvme_auth {
	const struct nvl_nvme_auth_ops *ops;
};

enum nvl_nvme_xfer {
	NVL_NVME_XFER_NONE = 0,
	NVL_NVME_XFER_H2C,      /**< host to controller (write data) */
	NVL_NVME_XFER_C2H,      /**< controller to host (read data) */
};

/* ---- reservations ------------------------------------------------------- */

struct nvl_nvme_registrant {
	uint8_t hostid[16];
	uint64_t rkey;
};

struct nvl_nvme_resv {
	pthread_mutex_t lock;
	uint8_t rtype;                  /**< enum nvl_nvme_resv_type, 0 = none */
	int holder;                     /**< index into reg[], -1 = none (or all-regs type) */
	uint32_t gen;
	bool ptpl;                      /**< persist through power loss active */
	unsigned nreg;
	struct nvl_nvme_registrant reg[NVL_NVME_MAX_REGISTRANTS];
	volatile uint8_t active;        /**< fast-path hint: rtype != 0 (racy read ok) */
};

/** A namespace: nsid -> bdev, plus identity and reservation state. */
struct nvl_nvme_ns {
	uint32_t nsid;
	struct nvl_bdev_desc *desc;
	struct nvl_bdev *bdev;
	uint32_t block_size;
	uint8_t lbads;
	uint64_t nlb;
	uint8_t nguid[16];
	uint8_t uuid[16];
	uint8_t eui64[8];
	bool read_only;
	char *ptpl_file;                /**< where PTPL state lives (NULL: PTPL unsupported) */
	struct nvl_nvme_resv resv;
	uint64_t inflight;              /**< commands in flight (atomic) */
	/** target callback: tell every controller of host `hostid` about a
	 *  reservation event (type NVL_NVME_RESV_NOTIF_*). Any thread. */
	void (*notify)(struct nvl_nvme_ns *ns, const uint8_t hostid[16], uint8_t type);
	void *owner;                    /**< the target's namespace object */
};

/** Initialize ns fields derived from its bdev; resv state empty. */
int nvl_nvme_ns_init(struct nvl_nvme_ns *ns, uint32_t nsid, struct nvl_bdev_desc *desc);
void nvl_nvme_ns_fini(struct nvl_nvme_ns *ns);
/** Load persisted reservation state (PTPL) from ns->ptpl_file if it exists.
 *  \return 0, or -errno / -EINVAL for an unreadable or malformed file. */
int nvl_nvme_ns_load_ptpl(struct nvl_nvme_ns *ns);
/** Drop reservation state of nobody in particular: host lost (nothing to do:
 *  registrations belong to hosts and survive controllers, per the spec). */

/* ---- statuses ------------------------------------------------------------ */

/** The Do Not Retry mark in a status (SCT << 8) | SC: outside the 11 bits of
 *  SCT and SC, where nvl_nvme_req_complete() finds it. */
#define NVL_NVME_DNR_FLAG 0x8000u
/**
 * The one spelling of Do Not Retry: nvl_nvme_req_complete() sets DNR in the
 * completion of a status so marked. (Errors a retry may cure, internal error,
 * namespace not ready, aborts, transient transport error, are completed
 * without DNR unless marked; every other error gets it anyway.)
 */
#define NVL_NVME_DNR(sct_sc) ((uint16_t)((sct_sc) | NVL_NVME_DNR_FLAG))

/* ---- controllers -------------------------------------------------------- */

/** What the NVMe layer asks of the target: the target installs it on every
 *  controller it creates (nvl_nvme_ctrlr.ops). Home reactor unless marked
 *  "any thread". */
struct nvl_nvme_ctrlr_ops {
	/** any thread: active namespace nsid visible to this controller, or NULL. */
	struct nvl_nvme_ns *(*get_ns)(struct nvl_nvme_ctrlr *c, uint32_t nsid);
	/** any thread: the first active nsid greater than `after`, 0 when none is left. */
	uint32_t (*next_nsid)(struct nvl_nvme_ctrlr *c, uint32_t after);
	/** discovery controllers: fill the discovery log (whole page) into *out
	 *  (malloc'ed) and its size. \return 0 or -ENOMEM. */
	int (*discovery_log)(struct nvl_nvme_ctrlr *c, void **out, size_t *len);
};

/** What a queue op did with its request (never a status value: a status
 *  could be a real one). */
enum nvl_nvme_qop {
	NVL_NVME_QOP_DONE = 0,   /**< *status says how it ended: the NVMe layer completes req */
	NVL_NVME_QOP_PENDING,    /**< the op completes req itself later (nvl_nvme_req_complete) */
};

/** What the NVMe layer asks of the transport (nvl_nvme_ctrlr.queue_ops; NULL
 *  for transports whose queues come from Fabrics Connect). Home reactor.
 *  Fabrics Connect/Disconnect on the admin queue are transport-level too;
 *  Property Get/Set are handled here. */
struct nvl_nvme_queue_ops {
	/** Create/Delete I/O queue commands (PCIe-style queues, shm). NULL = not
	 *  supported on this transport (Invalid Opcode). */
	enum nvl_nvme_qop (*create_io_cq)(struct nvl_nvme_ctrlr *c, struct nvl_nvme_req *req,
					  uint16_t *status);
	enum nvl_nvme_qop (*create_io_sq)(struct nvl_nvme_ctrlr *c, struct nvl_nvme_req *req,
					  uint16_t *status);
	enum nvl_nvme_qop (*delete_io_sq)(struct nvl_nvme_ctrlr *c, struct nvl_nvme_req *req,
					  uint16_t *status);
	enum nvl_nvme_qop (*delete_io_cq)(struct nvl_nvme_ctrlr *c, struct nvl_nvme_req *req,
					  uint16_t *status);
	/** optional: controller disabled (CC.EN 1->0) or shut down: drop I/O queues. */
	void (*reset)(struct nvl_nvme_ctrlr *c);
};

struct nvl_nvme_ctrlr_stats {
	uint64_t read_cmds, write_cmds;
	uint64_t read_bytes, write_bytes;
	uint64_t errors;
	uint64_t resv_conflicts;   /**< of errors, Reservation Conflict */
} __attribute__((aligned(64)));

struct nvl_nvme_ctrlr {
	uint16_t cntlid;
	uint8_t type;                   /**< NVL_NVME_CNTRLTYPE_IO / _DISCOVERY */
	const struct nvl_nvme_ctrlr_ops *ops;         /**< the target's */
	const struct nvl_nvme_queue_ops *queue_ops;   /**< the transport's, or NULL */
	struct nvl_reactor *home;
	void *owner;                    /**< the target's controller */

	/* identity (set by the target before use) */
	char subnqn[NVL_NVME_NQN_LEN];
	char hostnqn[NVL_NVME_NQN_LEN];
	uint8_t hostid[16];
	char sn[21];
	char mn[41];
	char fr[9];
	uint32_t max_nsid;              /**< NN */
	uint16_t max_io_queues;         /**< granted by Set Features NOQ (per direction) */
	uint16_t max_queue_entries;     /**< CAP.MQES + 1 */
	uint32_t ioccsz, iorcsz;        /**< fabrics: capsule sizes in 16-byte units, 0 = n/a */
	uint8_t msdbd;
	uint8_t mdts;                   /**< MDTS, 1..NVL_NVME_MDTS (init: NVL_NVME_MDTS) */
	bool fabrics;
	bool sgl_supported;
	/** every queue must authenticate (DH-HMAC-CHAP) before other commands run;
	 *  set by the target at Connect, never cleared */
	bool auth_required;

	/* registers */
	uint32_t cc;
	uint32_t csts;

	/* features */
	uint32_t feat_arbitration;
	uint32_t feat_power_mgmt;
	uint32_t feat_temp_thresh;
	uint32_t feat_err_recovery;
	uint32_t feat_vwc;              /**< bit 0 WCE */
	uint32_t feat_num_queues;       /**< as returned: NCQA<<16 | NSQA, 0's based */
	bool num_queues_set;
	uint32_t feat_int_coalescing;
	uint32_t feat_write_atomicity;
	uint32_t feat_aec;
	uint32_t kato_ms;
	uint32_t feat_resv_notif_mask;
	uint64_t last_keep_alive_ns;    /**< atomic */

	/* async events (home reactor) */
	struct nvl_nvme_req *aer[NVL_NVME_AERL];
	unsigned naer;
	uint32_t pending_events[16];
	unsigned npending;
	uint32_t masked_types;          /**< bit per AER type reported and not yet cleared */

	/* logs (ctrlr->lock) */
	pthread_mutex_t lock;
	struct nvl_nvme_error_log errlog[NVL_NVME_ERRLOG_ENTRIES];
	uint64_t err_count;
	uint32_t changed_ns[NVL_NVME_CHANGED_NS_MAX];
	unsigned nchanged_ns;
	bool changed_ns_overflow;
	struct nvl_nvme_resv_notification_log notif[NVL_NVME_RESV_NOTIF_MAX];
	unsigned nnotif;
	uint64_t notif_count;

	struct nvl_nvme_ctrlr_stats *stats;  /**< one per reactor */
	unsigned nstats;
	uint64_t created_ns;
};

int nvl_nvme_ctrlr_init(struct nvl_nvme_ctrlr *c);

/** Largest data transfer of one command on c, in bytes (MDTS in CAP.MPSMIN pages). */
static inline uint32_t
nvl_nvme_ctrlr_max_xfer(const struct nvl_nvme_ctrlr *c)
{
	return (uint32_t)NVL_NVME_PAGE_SIZE << c->mdts;
}

/**
 * The MDTS allowing at most bytes per command: the largest power of two of
 * CAP.MPSMIN (4 KiB) pages not above bytes (Identify Controller MDTS, Base
 * spec 1.4 section 5.15.2.1), clamped to 1..NVL_NVME_MDTS (0 means no limit).
 */
static inline uint8_t
nvl_nvme_mdts_for(uint32_t bytes)
{
	uint8_t m = 1;

	while (m < NVL_NVME_MDTS && ((uint64_t)NVL_NVME_PAGE_SIZE << (m + 1)) <= bytes)
		m++;
	return m;
}

/** Complete outstanding AERs with "aborted SQ deletion" and free resources. */
void nvl_nvme_ctrlr_fini(struct nvl_nvme_ctrlr *c);
/** Home reactor: complete outstanding AERs now (the admin queue is going). */
void nvl_nvme_ctrlr_abort_aers(struct nvl_nvme_ctrlr *c);

/** Home reactor: record a namespace change (add/remove/resize) and raise the
 *  namespace-attribute-changed AER if the host enabled it. */
void nvl_nvme_ctrlr_ns_changed(struct nvl_nvme_ctrlr *c, uint32_t nsid);
/** Home reactor: raise a discovery-log-changed AER (discovery controllers). */
void nvl_nvme_ctrlr_discovery_changed(struct nvl_nvme_ctrlr *c);
/** Any thread: queue a reservation notification log entry (+ AER on home). */
void nvl_nvme_ctrlr_resv_notify(struct nvl_nvme_ctrlr *c, uint32_t nsid, uint8_t type);
/** Home reactor: an invalid doorbell write or value (AER error type). */
void nvl_nvme_ctrlr_doorbell_error(struct nvl_nvme_ctrlr *c, bool bad_value);
/** Sum the per-reactor counters. */
void nvl_nvme_ctrlr_get_stats(const struct nvl_nvme_ctrlr *c, struct nvl_nvme_ctrlr_stats *out);

/* ---- requests ----------------------------------------------------------- */

struct nvl_nvme_req {
	struct nvl_nvme_cmd cmd;        /**< private copy of the SQE */
	struct nvl_nvme_cpl cpl;
	struct nvl_nvme_ctrlr *ctrlr;
	uint16_t qid;
	uint8_t xfer;                   /**< enum nvl_nvme_xfer */
	uint32_t data_len;              /**< bytes the transport mapped in iov */
	uint32_t xfer_len;              /**< C2H: bytes produced */
	struct iovec *iov;
	int iovcnt;
	struct iovec iov_inline[NVL_NVME_REQ_INLINE_IOV];

	/* execution state, private to src/nvme */
	struct nvl_nvme_ns *ns;
	struct nvl_bdev_io bio;
	struct iovec bio_iov;
	void *scratch;
	uint32_t sub_pending;
	int sub_status;
	uint64_t start_ns;

	/** completion: called exactly once per nvl_nvme_execute() */
	void (*done)(struct nvl_nvme_req *req);
	void *transport_ctx;
	/** the authentication state of the queue the command came in on (set by
	 *  the transport for every command; NULL: the queue has none). When
	 *  ctrlr->auth_required, a command runs only if this says ready. */
	struct nvl_nvme_auth *auth;
};

/**
 * How much data a command moves and in which direction, derived from the
 * opcode and its fields (not from the transport's descriptor). For I/O
 * commands the namespace must be active for len to be known; an unknown
 * nsid yields len 0 and the command will fail with Invalid Namespace.
 * \return 0, or an NVMe status (sct<<8|sc) if the fields are invalid
 *         (e.g. a transfer larger than MDTS).
 */
uint16_t nvl_nvme_req_xfer(struct nvl_nvme_req *req, uint32_t *len, uint8_t *dir);

/**
 * How a transport makes a command's data reachable (nvl_nvme_req_prepare()):
 * for `len` bytes moving in direction `dir` (enum nvl_nvme_xfer; len 0: no
 * data, but the transport may still check its descriptor), fill req->iov,
 * req->iovcnt and req->data_len (req->iov starts as req->iov_inline, empty).
 * \return 0, or the NVMe status to complete the command with.
 */
typedef uint16_t (*nvl_nvme_map_fn)(struct nvl_nvme_req *req, uint32_t len, uint8_t dir,
				    void *ctx);

/**
 * Step 2 of the request flow in one call: size the transfer
 * (nvl_nvme_req_xfer()), set req->xfer, then map(req, len, dir, ctx).
 * \return 0: the command may be executed (at once, or once its H2C data
 *         arrived); else the NVMe status the transport completes it with
 *         (nvl_nvme_req_complete()).
 */
uint16_t nvl_nvme_req_prepare(struct nvl_nvme_req *req, nvl_nvme_map_fn map, void *ctx);

/** Execute. Calls req->done(req) exactly once. */
void nvl_nvme_execute(struct nvl_nvme_req *req);

/** Complete req with a status now (transports use it for errors they find
 *  while mapping data). */
void nvl_nvme_req_complete(struct nvl_nvme_req *req, uint16_t sct_sc);

/** One errno -> NVMe status conversion (STYLE.md: exactly one per protocol). */
uint16_t nvl_nvme_status_from_errno(int rc);

/** Copy from a flat buffer into the request's iovecs (C2H); returns bytes copied. */
uint32_t nvl_nvme_req_copy_to(struct nvl_nvme_req *req, const void *buf, uint32_t len);
/** Copy from the request's iovecs (H2C) into a flat buffer; returns bytes copied. */
uint32_t nvl_nvme_req_copy_from(struct nvl_nvme_req *req, void *buf, uint32_t len);

/** Human-readable name of a status, for logs and the CLI. */
const char *nvl_nvme_status_str(uint16_t sct_sc);

#endif
