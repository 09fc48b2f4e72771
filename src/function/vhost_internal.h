/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internals of the vhost-user back-end (src/function/), shared by
 *   vhost_mem.c   guest memory table: mapping and address translation
 *   vring.c       split virtqueue: descriptor-chain walker, avail/used rings,
 *                 notification suppression, inflight I/O tracking
 *   vhost_user.c  the vhost-user protocol on one Unix socket (reactor 0)
 *   vblk.c        the virtio-blk device on top (queues on their reactors)
 *
 * Threading: a struct vhost_dev and everything it owns (socket, memory table,
 * inflight region, per-queue configuration) lives on reactor 0. A running
 * queue (vblk.c) lives on its own reactor and reads the memory table and the
 * inflight region; reactor 0 changes or unmaps them only after every queue
 * that uses them reported itself stopped (vhost_dev_queue_stopped()), which
 * happens after its in-flight I/O finished. That hand-off is the only
 * synchronisation: no lock on the I/O path.
 */
#ifndef NVL_FUNCTION_VHOST_INTERNAL_H
#define NVL_FUNCTION_VHOST_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "nvlend/spec/vhost_user.h"
#include "reactor/reactor.h"
#include "util/util.h"

#define VHOST_MAX_QUEUES 32          /* per device; QEMU's vhost-user-blk allows up to 1024 */
#define VHOST_MAX_FDS 8              /* per message: SET_MEM_TABLE carries the most */
#define VHOST_MSG_MAX_PAYLOAD 4096   /* largest payload accepted (ours are < 300 bytes) */
#define VHOST_MAX_RING 1024          /* largest ring we serve (QEMU's VIRTQUEUE_MAX_SIZE) */
#define VHOST_INFLIGHT_MAX_BYTES (64u << 20)
#define VHOST_LOG_MAX_BYTES (256ULL << 20) /* a dirty log covering 8 TiB of guest address */

/* ---- guest memory -------------------------------------------------------- */

struct vhost_mem_region {
	uint64_t gpa;      /* guest physical start */
	uint64_t size;
	uint64_t uva;      /* the front-end's virtual address of gpa */
	uint8_t *hva;      /* our mapping of gpa */
	void *map;         /* what to munmap (NULL: not ours, e.g. a test buffer) */
	size_t map_len;
	int guard;         /* fault-guard slot + 1 (file not sealed against shrinking), or 0 */
};

struct vhost_mem {
	unsigned nregions;
	/* set (from the SIGBUS handler) when the front-end shrank a region's file
	 * under us: the region now reads as zeroes and the device must stop */
	volatile bool tripped;
	struct vhost_mem_region r[NVL_VHOST_MEMORY_BASELINE_NREGIONS];
};

/** True once the front-end truncated one of the memory table's files. */
static inline bool
vhost_mem_tripped(const struct vhost_mem *m)
{
	return m != NULL && nvl_unlikely(m->tripped);
}

/** True when fd is sealed against shrinking (F_SEAL_SHRINK): mapping it cannot fault. */
bool vhost_fd_sealed(int fd);

/** Map a SET_MEM_TABLE payload; fds[i] belongs to region i (not consumed).
 *  \return 0; -EINVAL (bad table, sizes, overflow, fd count); -errno of mmap/fstat. */
int vhost_mem_map(const struct nvl_vhost_memory *tbl, const int *fds, unsigned nfds,
		  struct vhost_mem **out);
void vhost_mem_free(struct vhost_mem *m);

/** Host address of [gpa, gpa+len) if it lies inside one region, else NULL. */
static inline void *
vhost_mem_gpa(const struct vhost_mem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct vhost_mem_region *r = &m->r[i];
		uint64_t off = gpa - r->gpa;

		/* unsigned wrap makes gpa < r->gpa fail the first test */
		if (off < r->size && len <= r->size - off)
			return r->hva + off;
	}
	return NULL;
}

/** Same for an address in the front-end's virtual address space (ring addresses). */
void *vhost_mem_uva(const struct vhost_mem *m, uint64_t uva, uint64_t len);

/** Translate [gpa, gpa+len) into iovecs, splitting at region boundaries.
 *  \return iovecs used (len 0 uses none); -EFAULT outside guest memory; -E2BIG if more
 *  than max are needed. */
int vhost_mem_gpa_iov(const struct vhost_mem *m, uint64_t gpa, uint64_t len, struct iovec *iov,
		      unsigned max);

/* ---- dirty page log (live migration) ------------------------------------- */

/*
 * The front-end's dirty log (SET_LOG_BASE with VHOST_USER_PROTOCOL_F_LOG_SHMFD):
 * one bit per 4 KiB page of guest physical address, set after the write it
 * records (see vhost_log_gpa). Built and freed on reactor 0; queues write bits
 * into it while they run, so it is replaced or freed only once every queue that
 * was given it reported itself stopped (the rule of the memory table).
 */
struct vhost_log {
	uint8_t *bits;     /* byte p / 8, bit p % 8: guest page p */
	uint64_t size;     /* bytes of bits */
	void *map;         /* what to munmap (NULL: not ours, e.g. a test buffer) */
	size_t map_len;
	int guard;         /* fault-guard slot + 1 (file not sealed against shrinking), or 0 */
	volatile bool tripped;
};

/** Bytes of log that cover guest physical addresses [0, gpa_end). */
static inline uint64_t
vhost_log_bytes_for(uint64_t gpa_end)
{
	uint64_t pages = (gpa_end >> NVL_VHOST_LOG_PAGE_SHIFT) +
			 ((gpa_end & (NVL_VHOST_LOG_PAGE - 1)) != 0);

	return pages / 8 + (pages % 8 != 0);
}

/** True when the log has a bit for every page of [gpa, gpa+len) (len 0: true). */
bool vhost_log_covers(const struct vhost_log *l, uint64_t gpa, uint64_t len);
/** Highest guest physical address + 1 of the memory table (0 for none). */
uint64_t vhost_mem_gpa_end(const struct vhost_mem *m);

/**
 * Mark the pages of [gpa, gpa+len) dirty, after the caller's writes to them
 * (release: those writes are visible to whoever sees the bit).
 * \return 0; -EFAULT when part of the range lies beyond the log (that part is
 * not marked: the message checks make this unreachable with a valid front-end).
 */
int vhost_log_gpa(const struct vhost_log *l, uint64_t gpa, uint64_t len);
/** Same for bytes of guest memory at our address hva (translated back to guest
 *  physical through m). \return 0; -EFAULT (outside guest memory or the log). */
int vhost_log_hva(const struct vhost_log *l, const struct vhost_mem *m, const void *hva,
		  uint64_t len);
/** Map a SET_LOG_BASE region (fd not consumed).
 *  \return 0; -EINVAL (size 0 or above VHOST_LOG_MAX_BYTES, overflow, beyond the file);
 *  -ENOMEM; -errno of fstat/mmap. */
int vhost_log_map(int fd, uint64_t size, uint64_t offset, struct vhost_log **out);
void vhost_log_free(struct vhost_log *l);

/* ---- split virtqueue ------------------------------------------------------- */

struct vring {
	uint16_t size;               /* power of two, <= VHOST_MAX_RING */
	uint16_t mask;
	bool event_idx;              /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;               /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	struct nvl_vring_desc *desc; /* all four live in guest memory */
	struct nvl_vring_avail *avail;
	struct nvl_vring_used *used;
	const struct vhost_mem *mem;
	uint16_t last_avail_idx;     /* next avail entry to take */
	uint16_t used_idx;           /* next used entry to fill (private shadow) */
	uint16_t used_published;     /* what used->idx holds */
	uint16_t signalled_used;     /* used idx at the last interrupt (event idx) */
	bool signalled_valid;
	/* inflight tracking (NULL when not negotiated) */
	struct nvl_vhost_inflight_split *inflight;
	uint64_t counter;            /* next submission counter */
	uint16_t *batch;             /* heads added since the last publish, size entries */
	uint16_t nbatch;
	/* dirty logging (NULL: off): pages of the used ring we write, by log_used_gpa */
	const struct vhost_log *log;
	uint64_t log_used_gpa;       /* guest physical address of the used ring */
	bool log_used;               /* VHOST_VRING_F_LOG: log the used ring */
	uint64_t logged;             /* pages' worth of marks made (statistics) */
};

/* Addresses already translated to host pointers. */
struct vring_setup {
	uint16_t size;
	void *desc, *avail, *used;
	const struct vhost_mem *mem;
	uint64_t features;
	struct nvl_vhost_inflight_split *inflight;
	uint16_t base;               /* last_avail_idx from SET_VRING_BASE */
	bool force_in_order;         /* may resume from the used index without inflight data */
	const struct vhost_log *log; /* dirty log while migrating, else NULL */
	bool log_used;               /* log used-ring writes at log_used_gpa */
	uint64_t log_used_gpa;
};

/** Attach to rings in guest memory. batch must hold size entries (caller-owned).
 *  \return 0 or -EINVAL (misaligned ring, bad size). */
int vring_init(struct vring *vr, const struct vring_setup *s, uint16_t *batch);

/**
 * Rebuild state after (re)connection: with an inflight region, clear the
 * entries of a batch that reached the used ring before a crash, return in
 * `heads` (capacity vr->size) the requests still in flight ordered by their
 * submission counter, and set last_avail_idx = used idx + number in flight.
 * A fresh region (version 0) is initialised instead.
 * \return number of heads (>= 0), or -EINVAL for a region that does not match the ring.
 */
int vring_recover(struct vring *vr, uint16_t *heads, bool force_in_order, uint16_t base);

/** Entries the driver made available and we have not taken (0 if none; the
 *  driver claiming more than size returns -EIO). */
int vring_avail_count(const struct vring *vr);
/** Take the next available head. \return 1 (head set), 0 (none), -EIO broken ring. */
int vring_pop(struct vring *vr, uint16_t *head);
/** Record head as in flight in the shared region (call in pop order). */
void vring_inflight_start(struct vring *vr, uint16_t head);

/** One descriptor chain, as iovecs into guest memory: first nread are
 *  device-readable, the rest device-writable (the spec orders them so). */
struct vring_chain {
	struct iovec *iov;
	unsigned max_iov;
	unsigned niov;
	unsigned nread;
	uint64_t rlen;
	uint64_t wlen;
	unsigned ndesc;
};

/**
 * Walk the chain starting at head: copies each descriptor once, follows
 * indirect tables (one level), translates every address through the memory
 * table with overflow-safe checks.
 * \return 0; -EINVAL (index out of range, loop / longer than the ring, bad
 * indirect table, readable after writable); -EFAULT (address outside guest
 * memory); -E2BIG (more iovecs than max_iov).
 */
int vring_walk(const struct vring *vr, uint16_t head, struct vring_chain *c);

/** Mark [hva, hva+len) of guest memory dirty if the ring is logging (a no-op otherwise). */
static inline void
vring_log_write(struct vring *vr, const void *hva, uint64_t len)
{
	if (nvl_unlikely(vr->log != NULL) && len > 0) {
		vhost_log_hva(vr->log, vr->mem, hva, len);
		vr->logged++;
	}
}

/** Put a used element (not yet visible to the driver). */
void vring_used_add(struct vring *vr, uint16_t head, uint32_t len);
/** Publish added used elements; keep the inflight region consistent.
 *  \return true if the driver wants an interrupt now. */
bool vring_used_flush(struct vring *vr);
/** Before sleeping: ask the driver for kicks; \return true if work is already there. */
bool vring_kick_enable(struct vring *vr);
/** While polling: tell the driver kicks are not needed. */
void vring_kick_disable(struct vring *vr);

/** Size of one queue's inflight region for a ring of queue_size entries. */
static inline uint64_t
vring_inflight_queue_bytes(uint16_t queue_size)
{
	uint64_t n = sizeof(struct nvl_vhost_inflight_split) +
		     (uint64_t)queue_size * sizeof(struct nvl_vhost_inflight_desc);

	return (n + NVL_VHOST_INFLIGHT_ALIGN - 1) & ~(uint64_t)(NVL_VHOST_INFLIGHT_ALIGN - 1);
}

/* ---- vhost-user device (one socket, one front-end at a time) ---------------- */

struct vhost_dev;

/** What a queue needs to run; pointers valid until the queue reports stopped. */
struct vhost_queue_params {
	struct vring_setup ring;
	int kickfd;   /* dup'ed for the queue (it closes it); -1 = no kick fd, poll */
	int callfd;   /* dup'ed for the queue; -1 = no interrupts */
	int logfd;    /* dup'ed for the queue: eventfd to signal after logging (SET_LOG_FD); -1 */
};

struct vhost_dev_ops {
	/** required: start serving queue q (reactor 0). \return 0 or -errno. */
	int (*queue_start)(struct vhost_dev *d, unsigned q, const struct vhost_queue_params *p);
	/** required: stop queue q, finish its in-flight requests, then call
	 *  vhost_dev_queue_stopped() on reactor 0 (may be from inside this call). */
	void (*queue_stop)(struct vhost_dev *d, unsigned q);
	/** required: new call fd (owned by the callee; -1 = none) for running queue q. */
	void (*queue_set_call)(struct vhost_dev *d, unsigned q, int fd);
	/** required: read len bytes of the device config at off into buf (zero beyond). */
	void (*get_config)(struct vhost_dev *d, uint8_t *buf, uint32_t off, uint32_t len);
	/** optional: a front-end connected / was torn down. */
	void (*connected)(struct vhost_dev *d);
	void (*disconnected)(struct vhost_dev *d);
};

enum vhost_dev_state {
	VHOST_DEV_IDLE = 0,     /* not listening (created or stopped) */
	VHOST_DEV_LISTENING,    /* waiting for a front-end */
	VHOST_DEV_CONNECTED,    /* a front-end is attached */
	VHOST_DEV_CLOSING,      /* stopping queues before closing the connection */
};

struct vhost_vq_cfg {
	uint16_t num;
	bool num_set;
	bool addr_set;
	struct nvl_vhost_vring_addr addr;
	uint16_t base;
	int kickfd;
	int callfd;
	int errfd;
	bool kick_set;     /* SET_VRING_KICK seen: the ring is started */
	bool enabled;
	bool running;      /* the back-end queue is serving */
	bool stopping;
	bool logging;      /* the running queue was given the dirty log */
};

typedef void (*vhost_dev_cont_fn)(struct vhost_dev *d);
typedef void (*vhost_dev_done_fn)(struct vhost_dev *d, void *arg);

struct vhost_dev {
	const struct vhost_dev_ops *ops;
	void *ctx;                   /* the device's own pointer */
	const char *name;            /* for log lines */
	unsigned max_queues;
	uint64_t dev_features;       /* offered, besides the vhost-user ones */
	uint32_t config_size;        /* bytes of device config we know */
	bool force_in_order;
	bool suspended;              /* SNAP's suspend: queues configured but not served */
	enum vhost_dev_state state;

	char path[108];
	int listen_fd;
	struct nvl_acceptor *listen_h;
	int conn_fd;
	struct nvl_fdh *conn_h;
	/* reply transport; default sends on conn_fd (tests and fuzzers replace it) */
	int (*xmit)(struct vhost_dev *d, const void *buf, size_t len, int fd);

	/* one message being received */
	struct nvl_vhost_user_hdr rx_hdr;
	uint8_t rx_payload[VHOST_MSG_MAX_PAYLOAD];
	size_t rx_got;               /* bytes of header+payload received */
	int rx_fds[VHOST_MAX_FDS];
	unsigned rx_nfds;

	/* negotiated state */
	uint64_t features;
	bool features_set;
	uint64_t protocol_features;
	bool owner;
	struct vhost_mem *mem;
	void *inflight_map;
	size_t inflight_map_len;
	uint8_t *inflight_base;
	uint16_t inflight_nq;
	uint16_t inflight_qs;
	int inflight_guard;          /* fault-guard slot + 1 (unsealed region), or 0 */
	volatile bool inflight_tripped; /* the front-end shrank the inflight file */
	struct vhost_vq_cfg vq[VHOST_MAX_QUEUES];
	/* live migration: the dirty log and the eventfd of SET_LOG_FD */
	struct vhost_log *log;
	int log_fd;
	uint64_t log_bases;          /* SET_LOG_BASE messages taken (information) */
	uint64_t log_starts;         /* times VHOST_F_LOG_ALL went on */

	/* one asynchronous operation at a time (queues stopping) */
	bool op_active;
	unsigned op_pending;
	vhost_dev_cont_fn op_cont;
	struct nvl_vhost_user_hdr op_hdr;   /* the message waiting for its reply */
	uint32_t op_index;
	struct vhost_mem *op_mem;
	struct vhost_log *op_log;           /* SET_LOG_BASE: installed once queues stopped */
	int op_fd;                          /* SET_LOG_FD: same */
	struct nvl_vhost_vring_addr op_addr; /* SET_VRING_ADDR on a running ring: same */
	bool close_requested;
	bool stop_requested;
	vhost_dev_done_fn stop_done;
	void *stop_arg;

	/* information */
	pid_t peer_pid;
	char peer_comm[32];
	uint64_t connect_ns;
	uint64_t connections;
	uint64_t msgs;
	uint64_t bad_msgs;
};

/** Initialise d (no socket yet); caller fills ops/ctx/name/max_queues/dev_features/config_size. */
void vhost_dev_init(struct vhost_dev *d);
/** Listen on path (taking over a stale socket). Reactor 0.
 *  \return 0; -ENAMETOOLONG; -EADDRINUSE (a live server there); -EEXIST (not a socket); -errno. */
int vhost_dev_listen(struct vhost_dev *d, const char *path);
/** Stop listening, stop queues, drop the front-end; done(d, arg) when finished
 *  (possibly before this returns). */
void vhost_dev_stop(struct vhost_dev *d, vhost_dev_done_fn done, void *arg);
/** The back-end reports queue q stopped with last_avail_idx (reactor 0). */
void vhost_dev_queue_stopped(struct vhost_dev *d, unsigned q, uint16_t last_avail_idx);
/** Handle one complete message (takes the fds it keeps by setting them to -1). For the
 *  fuzzer and tests; the socket path calls it too. \return 0, or <0 to drop the connection. */
int vhost_dev_handle_msg(struct vhost_dev *d, const struct nvl_vhost_user_hdr *hdr,
			 const uint8_t *payload, int *fds, unsigned nfds);
/** Adopt an already connected socket (tests). */
int vhost_dev_attach(struct vhost_dev *d, int fd);
/** Name of a request for logs. */
const char *vhost_req_name(uint32_t req);
/** Inflight tracking negotiated and a region installed. */
bool vhost_dev_inflight_active(const struct vhost_dev *d);
/** VHOST_F_LOG_ALL negotiated and a log installed: queues log what they write. */
bool vhost_dev_logging(const struct vhost_dev *d);

/* ---- shared by vhost_user.c (handlers) and vhost_dev.c (device) ---- */

static inline void
vhost_close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* vhost_user.c */
void vhost_reset_state(struct vhost_dev *d);

/* vhost_dev.c */
void vhost_vq_cfg_reset(struct vhost_vq_cfg *vq);
uint64_t vhost_all_queues(const struct vhost_dev *d);
void vhost_close_conn(struct vhost_dev *d);
void vhost_op_begin(struct vhost_dev *d, uint64_t mask, vhost_dev_cont_fn cont);
void vhost_op_finish(struct vhost_dev *d);
void vhost_resume_conn(struct vhost_dev *d);
int vhost_rx_feed(struct vhost_dev *d, size_t n, const int *fds, size_t nfds, bool truncated);
size_t vhost_rx_want(struct vhost_dev *d, void **buf);
void vhost_start_all(struct vhost_dev *d);
/** Stop serving every queue (their in-flight requests finish first) and keep
 *  them stopped until vhost_dev_resume(); the front-end stays connected and
 *  may go on configuring. cont runs once all are stopped (maybe at once).
 *  \return 0; -EBUSY a vhost-user operation runs (try again). */
int vhost_dev_suspend(struct vhost_dev *d, vhost_dev_cont_fn cont);
/** Serve the queues again (those the front-end configured). */
void vhost_dev_resume(struct vhost_dev *d);
int vhost_start_queue(struct vhost_dev *d, unsigned q);
void vhost_stop_step(struct vhost_dev *d);

#endif
