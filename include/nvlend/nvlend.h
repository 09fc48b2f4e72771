/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * \file
 * libnvlend: use an NVMe namespace served by nvlendd (or, over TCP, by any
 * NVMe/TCP target) from your own process, with your own I/O queue pairs.
 *
 * \code
 *   struct nvl_ctrlr *c;
 *   struct nvl_qpair *qp;
 *   nvl_ctrlr_connect("nvme+shm:///run/nvlend/shm.sock?nqn=nqn.2026-01.io.nvlend:ns0",
 *                     NULL, &c);
 *   nvl_qpair_create(c, NULL, &qp);
 *   void *buf = nvl_buf_alloc(c, 4096);
 *   nvl_read_sync(qp, nvl_ctrlr_default_nsid(c), buf, 0, 8, NULL);  // 8 x 512 B
 *   nvl_buf_free(c, buf);
 *   nvl_qpair_destroy(qp);
 *   nvl_ctrlr_disconnect(c);
 * \endcode
 *
 * URIs (DESIGN.md section 7):
 *   nvme+shm:///ABSOLUTE/SOCKET/PATH?nqn=SUBNQN[&nsid=N]
 *   nvme+tcp://HOST:PORT/SUBNQN[/NSID]        (IPv6 hosts in brackets)
 *   nvme+rdma://HOST:PORT/SUBNQN[/NSID]       (NVMe/RDMA: an RDMA device reaches HOST)
 *
 * Threads: a controller may be shared by threads (admin calls are
 * serialized inside); a queue pair belongs to one thread at a time.
 * Buffers from nvl_buf_alloc() live in the controller's data window (shm:
 * the memory the target reads and writes directly, zero copy); other
 * buffers work too, through a bounce copy.
 *
 * Errors: functions return 0 or a negative errno. A command the controller
 * completed with an error status yields -EREMOTEIO from the synchronous
 * calls, with the NVMe status in the cpl you passed; asynchronous callbacks
 * always get the completion entry.
 */
#ifndef NVLEND_NVLEND_H
#define NVLEND_NVLEND_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/uio.h>

#include "nvlend/spec/nvme.h"

#ifdef __cplusplus
extern "C" {
#endif

struct nvl_ctrlr;
struct nvl_qpair;

/* ---- URIs ------------------------------------------------------------------ */

enum nvl_uri_kind {
	NVL_URI_NVME_SHM = 1,
	NVL_URI_NVME_TCP,
	NVL_URI_BRICK_SHM,
	NVL_URI_BRICK_TCP,
	NVL_URI_NVME_RDMA,     /**< nvme+rdma://HOST:PORT/SUBNQN[/NSID] */
};

struct nvl_uri {
	enum nvl_uri_kind kind;
	char path[108];        /**< shm: socket path */
	char host[256];        /**< tcp, rdma: host name or address (no brackets) */
	char port[16];         /**< tcp, rdma: port (default 4420) */
	/** subsystem NQN; empty for nvme+fn:///SOCKET[?nsid=N] (kind
	 *  NVL_URI_NVME_SHM): a function's endpoint, opened without a Connect
	 *  (docs/functions.md) */
	char nqn[NVL_NVME_NQN_LEN];
	char name[128];        /**< brick name */
	uint32_t nsid;         /**< 0 = not given */
};

/** Parse a URI. \return 0, -EINVAL (malformed, with no partial result),
 *  -EPROTONOSUPPORT (unknown scheme), -ENAMETOOLONG. */
int nvl_uri_parse(const char *uri, struct nvl_uri *out);

/* ---- controllers ------------------------------------------------------------ */

struct nvl_ctrlr_opts {
	const char *hostnqn;       /**< NULL: nqn.2014-08.org.nvmexpress:uuid:<hostid> */
	uint8_t hostid[16];        /**< all zero: derived from /etc/machine-id + pid */
	uint32_t kato_ms;          /**< keep-alive timeout asked of the target (default 10000) */
	bool keepalive_thread;     /**< send Keep Alive from a background thread (default true) */
	uint64_t window_bytes;     /**< shm data window; rdma: the registered one (default 64 MiB) */
	uint32_t timeout_ms;       /**< admin command / connect timeout (default 10000) */
};

/** Fill opts with the defaults. */
void nvl_ctrlr_opts_default(struct nvl_ctrlr_opts *opts);

/**
 * Connect to the controller a URI names.
 *
 * When the subsystem requires DH-HMAC-CHAP authentication of this host (NVMe
 * in-band authentication), the host's key comes from the environment:
 * NVLEND_DHCHAP_KEY is a DHHC-1 secret, or the path of a file holding one
 * that no one else may read (mode 0600; `nvlend keyring gen` makes one); with
 * NVLEND_DHCHAP_CTRLR_KEY too the controller must prove itself to the host
 * (bidirectional). The admin queue authenticates, and over NVMe/TCP each I/O
 * queue as well (docs/security.md).
 * \param opts NULL for defaults.
 * \return 0; -EINVAL bad URI; -ENOENT/-ECONNREFUSED nobody listens there;
 *         -EACCES the subsystem does not allow this host; -ENODEV no such
 *         subsystem; -EADDRNOTAVAIL the subsystem does not listen at that
 *         address; -EPERM the host NQN is bound to another local user;
 *         -ENOKEY the DH-HMAC-CHAP key in NVLEND_DHCHAP_KEY /
 *         NVLEND_DHCHAP_CTRLR_KEY cannot be used; -EKEYREJECTED the
 *         controller did not prove itself with NVLEND_DHCHAP_CTRLR_KEY;
 *         -ETIMEDOUT; -EPROTO the peer broke the protocol; -ENETDOWN
 *         nvme+rdma without an RDMA device; -EREMOTEIO
 *         another refusal. nvl_strerror() names each, with the target's
 *         reason.
 */
int nvl_ctrlr_connect(const char *uri, const struct nvl_ctrlr_opts *opts, struct nvl_ctrlr **out);

/** Destroy every queue pair of c, leave the controller, free c. NULL ignored. */
void nvl_ctrlr_disconnect(struct nvl_ctrlr *c);

/**
 * The one text of a failure, as nvlend, nvlend-perf and nvlend attach print
 * it: err is a -errno (or errno) that a libnvlend call returned. When the last
 * failing call of this thread had a reason from the target (its refusal
 * message, the Connect status), it follows in parentheses. The phrases:
 * -EINVAL invalid URI; -ENOENT no such socket; -ECONNREFUSED nothing listens
 * at that address and port; -EADDRNOTAVAIL the subsystem does not listen at
 * that address; -ENODEV no such subsystem; -EACCES this host is not allowed
 * on that subsystem; -EPERM this host NQN is bound to another local user;
 * -ENOKEY the DH-HMAC-CHAP key cannot be used; -EKEYREJECTED the controller
 * did not prove itself (DH-HMAC-CHAP);
 * -ENXIO no such namespace; -ETIMEDOUT the target did not answer in time;
 * -EPROTO the peer broke the protocol; -EREMOTEIO refused by the target;
 * -ENETDOWN no RDMA device (nvme+rdma: is rdma_rxe / a NIC driver loaded?);
 * others: strerror().
 * \return a thread-local string, valid until this thread's next call.
 */
const char *nvl_strerror(int err);

/** Text of the last connect/admin failure (refusal reason, status name). */
const char *nvl_ctrlr_last_error(const struct nvl_ctrlr *c);

/** The Identify Controller data read at connect. */
const struct nvl_nvme_id_ctrl *nvl_ctrlr_identify(const struct nvl_ctrlr *c);
uint16_t nvl_ctrlr_cntlid(const struct nvl_ctrlr *c);
/** The URI's nsid, else the first active namespace (0 if there is none). */
uint32_t nvl_ctrlr_default_nsid(const struct nvl_ctrlr *c);
/** Host NQN and identifier this controller was connected with. */
const char *nvl_ctrlr_hostnqn(const struct nvl_ctrlr *c);
const uint8_t *nvl_ctrlr_hostid(const struct nvl_ctrlr *c);
/** Largest transfer per command, bytes. */
uint32_t nvl_ctrlr_max_xfer(const struct nvl_ctrlr *c);

struct nvl_ns_info {
	uint32_t nsid;
	uint32_t block_size;
	uint64_t num_blocks;
	uint8_t nguid[16];
	uint8_t uuid[16];
	uint8_t eui64[8];
	bool read_only;
	bool shared;
	uint8_t rescap;
};

/** Identify a namespace. \return 0, -ENOENT (inactive nsid), -EREMOTEIO, -errno. */
int nvl_ns_get_info(struct nvl_ctrlr *c, uint32_t nsid, struct nvl_ns_info *out);

/** Active namespace ids (up to max) into ids; \return how many, or -errno. */
int nvl_ctrlr_list_ns(struct nvl_ctrlr *c, uint32_t *ids, int max);

/**
 * Send an admin command and wait. The library fills cid and the data pointer
 * from buf/len (buf may be any memory; dir: NVL_XFER_TO_CTRLR/_FROM_CTRLR).
 * \return 0 (success status), -EREMOTEIO (error status in *cpl), -errno.
 */
enum nvl_xfer_dir { NVL_XFER_NONE = 0, NVL_XFER_TO_CTRLR = 1, NVL_XFER_FROM_CTRLR = 2 };
int nvl_ctrlr_admin(struct nvl_ctrlr *c, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len,
		    enum nvl_xfer_dir dir, struct nvl_nvme_cpl *cpl);

/* ---- asynchronous events ---------------------------------------------------------- */

/** One Asynchronous Event Request completion (Base spec 5.2). */
struct nvl_aen {
	uint8_t type;          /**< NVL_NVME_AER_TYPE_* (notice, error, I/O specific...) */
	uint8_t info;          /**< event information, e.g. NVL_NVME_AER_NOTICE_NS_CHANGED */
	uint8_t log_page;      /**< the log page whose reading re-arms this event type */
	uint32_t cdw0;         /**< completion dword 0 as received */
};

/**
 * Ask for asynchronous events: set the Asynchronous Event Configuration
 * feature to aec (NVL_NVME_AEC_* bits, e.g. NVL_NVME_AEC_NS_ATTR; 0 leaves
 * the feature as it is) and from now on keep one Asynchronous Event Request
 * outstanding. Events that complete while other admin commands run are kept
 * (up to 8) for nvl_ctrlr_aen_poll(). The controller reports an event type
 * once until its log page is read: nvl_ctrlr_changed_ns() for namespace
 * changes.
 * \return 0, -EOPNOTSUPP (transport without events), -EREMOTEIO (refused,
 *         see nvl_ctrlr_last_error()), -ENOTCONN, -ENOMEM.
 */
int nvl_ctrlr_aen_enable(struct nvl_ctrlr *c, uint32_t aec);

/**
 * Wait for the next asynchronous event, up to timeout_ms (-1 = forever,
 * 0 = only what already arrived). Re-arms the request as needed. Other
 * threads' admin commands (Keep Alive) proceed while it waits.
 * \return 1 (event in *ev), 0 (timeout), -EINVAL (events not enabled),
 *         -EREMOTEIO (the controller ended the request with an error
 *         status; enable again to retry), -ENOTCONN (controller gone).
 */
int nvl_ctrlr_aen_poll(struct nvl_ctrlr *c, struct nvl_aen *ev, int timeout_ms);

/**
 * Read the Changed Namespace List log page (Base 5.16.1.5), which clears it
 * and re-arms namespace-change events. Stores up to max nsids in ids.
 * \return how many were stored, -E2BIG (more than 1024 namespaces changed:
 *         rescan them all), -EREMOTEIO, -ENOTCONN, -ENOMEM.
 */
int nvl_ctrlr_changed_ns(struct nvl_ctrlr *c, uint32_t *ids, int max);

/* ---- buffers ------------------------------------------------------------------ */

/** Memory the controller reaches without copies (page aligned), or NULL if
 *  the data window is exhausted. */
void *nvl_buf_alloc(struct nvl_ctrlr *c, size_t size);
void nvl_buf_free(struct nvl_ctrlr *c, void *buf);

/* ---- queue pairs ---------------------------------------------------------------- */

struct nvl_qpair_opts {
	uint32_t entries;      /**< SQ/CQ entries (default 128; outstanding <= entries - 1) */
	bool interrupts;       /**< sleep on an interrupt eventfd in nvl_qpair_wait (default true) */
	uint32_t spin_us;      /**< nvl_qpair_wait spins this long before sleeping (default 50);
				 *  over shm the spin offers the CPU to other tasks now and then */
	bool use_prp;          /**< describe data with PRPs instead of one SGL descriptor */
};

void nvl_qpair_opts_default(struct nvl_qpair_opts *opts);
/** Create an I/O queue pair. \return 0, -ENOSPC (no more queues), -EREMOTEIO, -errno. */
int nvl_qpair_create(struct nvl_ctrlr *c, const struct nvl_qpair_opts *opts,
		     struct nvl_qpair **out);
/** Wait for outstanding commands (up to 10 s), delete the queues, free. NULL ignored. */
void nvl_qpair_destroy(struct nvl_qpair *qp);
uint16_t nvl_qpair_id(const struct nvl_qpair *qp);

typedef void (*nvl_io_cb)(void *arg, const struct nvl_nvme_cpl *cpl);

/** Flags for I/O submissions. */
#define NVL_IO_FUA      (1u << 0)  /**< write: force unit access */
#define NVL_IO_DEALLOC  (1u << 1)  /**< write zeroes: may deallocate */

/**
 * Asynchronous commands. Each returns 0 (cb will run from a later
 * nvl_qpair_process_completions / nvl_qpair_wait on this thread), -EAGAIN
 * (queue full: process completions and retry), -EINVAL, -ENOMEM (no window
 * space for a bounce buffer), -ENOTCONN (the queue or controller is gone).
 * nlb counts logical blocks (1-based here, the library converts).
 */
int nvl_read(struct nvl_qpair *qp, uint32_t nsid, void *buf, uint64_t slba, uint32_t nlb,
	     uint32_t flags, nvl_io_cb cb, void *arg);
int nvl_write(struct nvl_qpair *qp, uint32_t nsid, const void *buf, uint64_t slba, uint32_t nlb,
	      uint32_t flags, nvl_io_cb cb, void *arg);
int nvl_compare(struct nvl_qpair *qp, uint32_t nsid, const void *buf, uint64_t slba,
		uint32_t nlb, nvl_io_cb cb, void *arg);
int nvl_flush(struct nvl_qpair *qp, uint32_t nsid, nvl_io_cb cb, void *arg);
int nvl_write_zeroes(struct nvl_qpair *qp, uint32_t nsid, uint64_t slba, uint32_t nlb,
		     uint32_t flags, nvl_io_cb cb, void *arg);
struct nvl_range {
	uint64_t slba;
	uint32_t nlb;
};
int nvl_deallocate(struct nvl_qpair *qp, uint32_t nsid, const struct nvl_range *ranges,
		   unsigned nranges, nvl_io_cb cb, void *arg);

/* Reservations (cdw10 fields as in the NVM command set). */
int nvl_resv_register(struct nvl_qpair *qp, uint32_t nsid, uint8_t action, uint64_t crkey,
		      uint64_t nrkey, bool iekey, uint8_t cptpl, nvl_io_cb cb, void *arg);
int nvl_resv_acquire(struct nvl_qpair *qp, uint32_t nsid, uint8_t action, uint8_t rtype,
		     uint64_t crkey, uint64_t prkey, nvl_io_cb cb, void *arg);
int nvl_resv_release(struct nvl_qpair *qp, uint32_t nsid, uint8_t action, uint8_t rtype,
		     uint64_t crkey, nvl_io_cb cb, void *arg);
/** Report into buf (len bytes, multiple of 4); extended (128-bit host ids) if eds. */
int nvl_resv_report(struct nvl_qpair *qp, uint32_t nsid, void *buf, uint32_t len, bool eds,
		    nvl_io_cb cb, void *arg);

/** Submit any I/O command (cid and data pointer are filled in). */
int nvl_submit_raw(struct nvl_qpair *qp, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len,
		   enum nvl_xfer_dir dir, nvl_io_cb cb, void *arg);

/** Reap up to max completions (0 = all available), running callbacks.
 *  \return how many, or -ENOTCONN if the controller went away. */
int nvl_qpair_process_completions(struct nvl_qpair *qp, uint32_t max);
/** Process completions, blocking until at least one arrived or timeout_ms
 *  passed (-1 = forever): spins spin_us first, then sleeps on the interrupt.
 *  \return completions processed, 0 on timeout, -ENOTCONN. */
int nvl_qpair_wait(struct nvl_qpair *qp, int timeout_ms);
/** Commands submitted and not yet completed. */
uint32_t nvl_qpair_outstanding(const struct nvl_qpair *qp);

/* ---- synchronous convenience (submit, then wait for that command) ------------ */

int nvl_read_sync(struct nvl_qpair *qp, uint32_t nsid, void *buf, uint64_t slba, uint32_t nlb,
		  struct nvl_nvme_cpl *cpl);
int nvl_write_sync(struct nvl_qpair *qp, uint32_t nsid, const void *buf, uint64_t slba,
		   uint32_t nlb, uint32_t flags, struct nvl_nvme_cpl *cpl);
int nvl_flush_sync(struct nvl_qpair *qp, uint32_t nsid, struct nvl_nvme_cpl *cpl);
/** Run any async submission synchronously: nvl_sync(qp, &cpl, nvl_write_zeroes(qp, ..., nvl_sync_cb, &st)) */
struct nvl_sync_state {
	bool done;
	struct nvl_nvme_cpl cpl;
};
void nvl_sync_cb(void *arg, const struct nvl_nvme_cpl *cpl);
int nvl_sync_wait(struct nvl_qpair *qp, struct nvl_sync_state *st, int submit_rc,
		  struct nvl_nvme_cpl *cpl);

/* ---- status ------------------------------------------------------------------------ */

/** (SCT << 8) | SC of a completion. */
static inline uint16_t
nvl_cpl_status(const struct nvl_nvme_cpl *cpl)
{
	return (uint16_t)((cpl->status >> 1) & 0x7ff);
}
/** Name of an NVMe status ("LBA out of range", ...). */
const char *nvl_status_str(uint16_t sct_sc);

#ifdef __cplusplus
}
#endif
#endif
