/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NVMe host core: one asynchronous controller state machine for every
 * initiator of nvlend. It connects (shm and tcp transports, behind one ops
 * table), identifies the controller and its namespaces, runs admin commands,
 * creates and deletes I/O queue pairs, sends keep-alives, notices a lost
 * association, reconnects with backoff and resubmits the idempotent I/O that
 * was in flight. Its faces: libnvlend's synchronous API (nvlend.c,
 * nvlend_io.c), the reconnecting session of `nvlend attach` (session.c) and
 * the nvme bdev module (src/module/bdev_nvme*.c).
 *
 * Threads: the core owns no thread and never sleeps. A controller is driven
 * by one owner at a time (a reactor poller, or whichever thread holds the
 * face's lock): host_ctrlr_*() calls, its event callback and everything the
 * controller does to set up queue pairs run there. Each queue pair belongs
 * to one thread (its owner) for I/O: host_qpair_submit/poll/arm/ack/fds/stop
 * run there only, take no lock and make no system call beyond the
 * transport's doorbell. The two sides meet through atomics: the controller's
 * association generation and failure mode, a loss reported by a queue pair,
 * and a connected transport queue the controller offers to a queue pair.
 * Time is read from the monotonic clock or passed in.
 *
 * Reconnect policy (all owner-side): when the association is lost (a queue
 * or the admin connection fails, an admin command or keep-alive times out,
 * a completion carries a path error) every queue pair drops its transport
 * queue and keeps its idempotent commands (read, write, write zeroes,
 * dataset management, flush); the controller retries after a backoff; once
 * reconnected and identified (the owner may refuse the result, e.g. a
 * changed namespace), every queue pair gets a new transport queue and
 * resubmits what it kept. fast_io_fail_ms after the loss, kept and new I/O
 * fail until the association is back; ctrlr_loss_ms after it (0: at once,
 * i.e. no reconnect) the controller is given up for good.
 *
 * Files: ctrlr.c (controller), qpair.c (queue pairs), host_shm.c and
 * host_tcp.c (+ tcp_hostq.c) (transports), window.c (the shm data window),
 * identity.c (host identity, namespace info, status names); the faces
 * nvlend.c, nvlend_io.c (libnvlend) and session.c. libnvlend is built from
 * src/host and src/proto, plus the brick client (Makefile: LIB_SRCS).
 */
#ifndef NVL_HOST_H
#define NVL_HOST_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "nvlend/nvlend.h"
#include "proto/nvme_auth.h"

#define HOST_MAX_QUEUES 64   /**< I/O queue pairs per controller */
#define HOST_MAX_NS 256      /**< namespaces a scan identifies */
#define HOST_MAX_IOV 16      /**< data segments of one command (NVMe/TCP initiator limit) */

struct host_ctrlr;
struct host_qpair;

enum host_ctrlr_state {
	HOST_CTRLR_CONNECTING = 0,  /**< first association being set up */
	HOST_CTRLR_READY,
	HOST_CTRLR_WAIT_RECONNECT,  /**< lost; the next attempt is scheduled */
	HOST_CTRLR_RECONNECTING,
	HOST_CTRLR_FAILED,          /**< given up (or never connected): terminal */
	HOST_CTRLR_CLOSING,         /**< orderly shutdown in progress */
	HOST_CTRLR_CLOSED,
};

/** How I/O fares while the association is away (any thread may read it). */
enum host_fail_mode {
	HOST_FAIL_NONE = 0,  /**< I/O waits for the association (or flows) */
	HOST_FAIL_FAST,      /**< fast_io_fail_ms passed: I/O fails until it is back */
	HOST_FAIL_GONE,      /**< given up, or closed: I/O fails for good */
};

enum host_event {
	HOST_EV_CONNECTED = 0,   /**< the first association is ready */
	HOST_EV_CONNECT_FAILED,  /**< the first association failed (terminal; see host_ctrlr_errno) */
	HOST_EV_LOST,            /**< a ready association was lost */
	HOST_EV_RECONNECTED,     /**< a new association is identified: return 0 to resume, -EAGAIN
				  *   to count it as a failed attempt, another -errno to give up */
	HOST_EV_READY,           /**< the reconnected association resumed (queue pairs offered) */
	HOST_EV_FAST_FAIL,       /**< fast_io_fail_ms passed */
	HOST_EV_GIVEN_UP,        /**< ctrlr_loss_ms passed, or reconnecting refused (terminal) */
	HOST_EV_CLOSED,          /**< host_ctrlr_close() finished */
};

/** Owner thread: an event. The return value matters for HOST_EV_RECONNECTED only. */
typedef int (*host_event_fn)(void *arg, struct host_ctrlr *c, enum host_event ev);
/** Any thread: the controller's owner should call host_ctrlr_poll() soon. */
typedef void (*host_kick_fn)(void *arg);
/** Owner thread of the controller: qp's owner should call host_qpair_poll()
 *  soon (a transport queue is offered, or the association went away). */
typedef void (*host_qpair_kick_fn)(void *arg, struct host_qpair *qp);

struct host_ctrlr_opts {
	const struct nvl_uri *uri;       /**< nvme+shm or nvme+tcp (copied) */
	const char *hostnqn;             /**< required (copied) */
	uint8_t hostid[16];
	uint32_t kato_ms;                /**< keep-alive timeout asked of the target; 0: none */
	bool send_keepalive;             /**< send Keep Alive every kato_ms / 3 from host_ctrlr_poll */
	uint32_t connect_timeout_ms;     /**< one association's set-up (default 10000) */
	uint32_t admin_timeout_ms;       /**< each admin command (default 10000) */
	uint64_t window_bytes;           /**< shm data window; rdma: the registered one (default 64 MiB) */
	bool hdgst, ddgst;               /**< NVMe/TCP digests to ask for */
	bool numeric_host;               /**< tcp: the URI's host is a numeric address (no DNS) */
	uint16_t io_queues;              /**< tcp: I/O queues asked for (default HOST_MAX_QUEUES) */
	bool scan_ns;                    /**< identify every active namespace at each association */
	/* DH-HMAC-CHAP (host_auth.c): used when the controller asks for it at
	 * Connect (the admin queue; over TCP each I/O queue too). len 0: none. */
	struct nvl_dhchap_key dhchap_key;       /**< the host's secret */
	struct nvl_dhchap_key dhchap_ctrlr_key; /**< set: the controller must prove itself too */
	/* reconnect policy */
	int64_t ctrlr_loss_ms;           /**< give up this long after a loss; 0 at once; -1 never */
	uint32_t reconnect_delay_ms;     /**< delay before attempt n: delay << n, at most ... */
	uint32_t reconnect_delay_max_ms; /**< ... this (default 8 x the delay) */
	bool reconnect_at_once;          /**< first attempt without delay (then delay, 2 x delay...) */
	uint32_t fast_io_fail_ms;        /**< 0: I/O waits until reconnected or given up */
	/* the owner */
	host_event_fn event;             /**< optional */
	host_kick_fn kick;               /**< optional */
	host_qpair_kick_fn qpair_kick;   /**< optional */
	void *arg;
};

/** Fill opts with the defaults above (no reconnect: ctrlr_loss_ms 0). */
void host_ctrlr_opts_default(struct host_ctrlr_opts *o);
/** NVMe/TCP digests as NVLEND_TCP_DIGESTS names them ("header", "data"). */
void host_digests_from_env(struct host_ctrlr_opts *o);
/**
 * DH-HMAC-CHAP keys from NVLEND_DHCHAP_KEY and NVLEND_DHCHAP_CTRLR_KEY: each a
 * DHHC-1 secret, or the path of a file holding one that no one else may read
 * (mode 0600). Unset: no key. \return 0, or -ENOKEY with *why filled
 * (malformed, unreadable, a controller key without a host key).
 */
int host_dhchap_from_env(struct host_ctrlr_opts *o, char *why, size_t wlen);

/* ---- controller: its owner only ------------------------------------------------ */

/**
 * Create a controller and start connecting (HOST_EV_CONNECTED or
 * HOST_EV_CONNECT_FAILED follow from host_ctrlr_poll()).
 * \return 0; -EINVAL (options, URI kind); -EPROTONOSUPPORT (transport);
 *         -EHOSTUNREACH (tcp: no such host); -ENOMEM; a socket's -errno.
 */
int host_ctrlr_create(const struct host_ctrlr_opts *o, struct host_ctrlr **out);
/** Free. Every queue pair must be destroyed. Closes without shutdown if still open. */
void host_ctrlr_destroy(struct host_ctrlr *c);

/** Make progress: transport I/O, admin completions, keep-alive, timeouts,
 *  reconnects, queue-pair set-up. \return > 0 if something happened. */
int host_ctrlr_poll(struct host_ctrlr *c, uint64_t now_ns);
/** The fds to wait on before the next host_ctrlr_poll() (at most max). */
int host_ctrlr_fds(struct host_ctrlr *c, struct pollfd *pfds, int max);
/** Latest time host_ctrlr_poll() must run again (UINT64_MAX: only on fd events). */
uint64_t host_ctrlr_next_ns(const struct host_ctrlr *c);
/** Commands or a connection in progress: poll eagerly. */
bool host_ctrlr_busy(const struct host_ctrlr *c);

/** Admin completion: rc 0 (cpl valid), -ETIMEDOUT (the association is being
 *  dropped because of it), -ENOTCONN (the association went away). */
typedef void (*host_admin_cb)(void *arg, const struct nvl_nvme_cpl *cpl, int rc);
#define HOST_ADMIN_NO_TIMEOUT (1u << 0) /**< e.g. Asynchronous Event Request */

/**
 * Queue an admin command (cid and data pointer are set here); buf must be
 * reachable (host_ctrlr_buf_reachable) on shm; NVMe/RDMA copies any other
 * memory through its window. \return 0 (cb runs once, from a
 * later host_ctrlr_poll or the association's end), -ENOTCONN (not ready),
 * -EAGAIN (too many outstanding), -EINVAL.
 */
int host_ctrlr_admin(struct host_ctrlr *c, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len,
		     enum nvl_xfer_dir dir, uint32_t flags, host_admin_cb cb, void *arg);

/** Give up now (terminal; queue pairs fail their I/O). */
void host_ctrlr_give_up(struct host_ctrlr *c, const char *why);
/** Begin an orderly shutdown (tcp: CC.SHN; shm: DISCONNECT); HOST_EV_CLOSED follows. */
void host_ctrlr_close(struct host_ctrlr *c);

/* ---- controller: getters (owner; the atomics from any thread) -------------------- */

enum host_ctrlr_state host_ctrlr_state(const struct host_ctrlr *c);
const char *host_ctrlr_state_str(enum host_ctrlr_state st);
/** Any thread. */
enum host_fail_mode host_ctrlr_fail_mode(const struct host_ctrlr *c);
/** Why the first connect or the last attempt failed (-errno), 0 if it did not. */
int host_ctrlr_errno(const struct host_ctrlr *c);
const char *host_ctrlr_last_error(const struct host_ctrlr *c);
void host_ctrlr_set_error(struct host_ctrlr *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/** Remember, for this thread's nvl_strerror(err), why a public call failed
 *  (errors.c). reason may be NULL. Any thread. */
void host_error_note(int err, const char *reason);
const struct nvl_uri *host_ctrlr_uri(const struct host_ctrlr *c);
/** "nvme+tcp://HOST:PORT/NQN" or "nvme+shm://PATH/NQN", for messages. */
const char *host_ctrlr_uri_str(const struct host_ctrlr *c, char *buf, size_t len);
const char *host_ctrlr_hostnqn(const struct host_ctrlr *c);
const uint8_t *host_ctrlr_hostid(const struct host_ctrlr *c);
uint16_t host_ctrlr_cntlid(const struct host_ctrlr *c);
const struct nvl_nvme_id_ctrl *host_ctrlr_id(const struct host_ctrlr *c);
uint32_t host_ctrlr_max_xfer(const struct host_ctrlr *c);
uint16_t host_ctrlr_max_io_queues(const struct host_ctrlr *c);
uint16_t host_ctrlr_max_queue_entries(const struct host_ctrlr *c);
/** The first active namespace of the last association (0: none). */
uint32_t host_ctrlr_first_nsid(const struct host_ctrlr *c);
/** scan_ns: the namespaces found (block size 0 = unusable format). */
unsigned host_ctrlr_ns_count(const struct host_ctrlr *c);
const struct nvl_ns_info *host_ctrlr_ns(const struct host_ctrlr *c, unsigned idx);
const struct nvl_ns_info *host_ctrlr_ns_find(const struct host_ctrlr *c, uint32_t nsid);
/** Losses of a ready association, successful reconnects, attempts since the loss. */
uint64_t host_ctrlr_losses(const struct host_ctrlr *c);
uint64_t host_ctrlr_reconnects(const struct host_ctrlr *c);
unsigned host_ctrlr_attempts(const struct host_ctrlr *c);
/** When the current outage began (0: none). */
uint64_t host_ctrlr_lost_ns(const struct host_ctrlr *c);

/** Is [p, p + len) inside the data window of the current association, or
 *  has the transport none? (Admin command buffers must be, but over RDMA.) */
bool host_ctrlr_buf_reachable(const struct host_ctrlr *c, const void *p, size_t len);

/* ---- identity ------------------------------------------------------------------- */

/** This machine's host identifier (from /etc/machine-id): hosts are machines. */
void host_default_hostid(uint8_t id[16]);
/** A host named by its NQN keeps one identity: the NQN's UUID if it has one,
 *  else a hash of the NQN. */
void host_hostid_from_nqn(const char *nqn, uint8_t id[16]);
/** nqn.2014-08.org.nvmexpress:uuid:<id> */
void host_hostnqn_from_id(const uint8_t id[16], char *nqn, size_t len);
/** Namespace info from Identify Namespace data (block size 0 if its LBA
 *  format is outside 512 B .. 64 KiB). */
void host_ns_info_from_id(const struct nvl_nvme_id_ns *id, uint32_t nsid,
			  struct nvl_ns_info *out);
/** The UUID from a Namespace Identification Descriptor list (4 KiB), if any. */
void host_ns_uuid_from_desc(const uint8_t *desc, uint8_t uuid[16]);

/* ---- queue pairs ------------------------------------------------------------------ */

struct host_qpair_opts {
	uint32_t entries;    /**< SQ/CQ entries (2 .. max_queue_entries): entries - 1 in flight */
	bool interrupts;     /**< shm: ask for a completion interrupt (eventfd) */
	bool use_prp;        /**< shm: PRP lists instead of one SGL descriptor */
};

/**
 * Controller owner: a queue pair with the next free qid; it gets a
 * transport queue when the association is ready (host_qpair_connect_rc).
 * \return 0, -ENOSPC (no queue id left), -EINVAL (entries), -ENOMEM.
 */
int host_qpair_create(struct host_ctrlr *c, const struct host_qpair_opts *o,
		      struct host_qpair **out);
/** Controller owner: -EINPROGRESS until the first transport queue is made,
 *  then 0, or the -errno it failed with (the queue pair is then unusable). */
int host_qpair_connect_rc(const struct host_qpair *qp);
/** Controller owner, after host_qpair_stop() on the queue pair's thread:
 *  delete the queues on the controller and free; done runs from a later
 *  host_ctrlr_poll (or at once). */
typedef void (*host_done_fn)(void *arg);
void host_qpair_destroy(struct host_qpair *qp, host_done_fn done, void *arg);

/** The owner's pointer for the queue pair (e.g. for host_qpair_kick_fn). */
void host_qpair_set_ctx(struct host_qpair *qp, void *ctx);
void *host_qpair_ctx(const struct host_qpair *qp);
uint16_t host_qpair_qid(const struct host_qpair *qp);
struct host_ctrlr *host_qpair_ctrlr(const struct host_qpair *qp);
uint32_t host_qpair_entries(const struct host_qpair *qp);

/* The queue pair's owner thread: */

/**
 * Submit a command (cmd's cid and data pointer are filled in). iov holds len
 * bytes (any memory: shm bounces what is outside the window); dir says
 * which way. \return 0 (cb runs exactly once, from host_qpair_poll or stop),
 * -EAGAIN (no free slot), -ENOTCONN (host_ctrlr_fail_mode says why),
 * -EINVAL (too long, too many segments), -ENOMEM (no window space to bounce).
 */
int host_qpair_submit(struct host_qpair *qp, struct nvl_nvme_cmd *cmd, const struct iovec *iov,
		      int iovcnt, uint32_t len, enum nvl_xfer_dir dir, nvl_io_cb cb, void *arg);
/** Reap up to max completions (0: all), adopting a new transport queue or
 *  failing kept commands as the controller's state says.
 *  \return completions (>= 0), or -ENOTCONN: none, and no association to wait for. */
int host_qpair_poll(struct host_qpair *qp, uint32_t max);
/** Commands submitted and not completed (kept ones included). */
uint32_t host_qpair_outstanding(const struct host_qpair *qp);
/** Bumped whenever the queue pair adopted a transport queue: fds change. */
uint64_t host_qpair_epoch(const struct host_qpair *qp);
/** Has it a usable transport queue now? */
bool host_qpair_connected(const struct host_qpair *qp);
/** True if completions raise the queue's interrupt fd; false for a queue
 *  asked without interrupts, or made without a vector by a target whose
 *  vector budget was spent (then the queue is polled). */
bool host_qpair_interrupts(const struct host_qpair *qp);
/** The fds (and events) to wait on: the interrupt or socket, and hang-ups. */
int host_qpair_fds(const struct host_qpair *qp, struct pollfd *pfds, int max);
/** Before sleeping: arm the completion interrupt. \return 0, -EAGAIN
 *  (completions are ready, or the queue pair needs polling: do not sleep). */
int host_qpair_arm(struct host_qpair *qp);
/** After waking from a wait on host_qpair_fds(): consume the interrupt and
 *  notice hang-ups (pfds as poll(2) left them; n entries). */
void host_qpair_ack(struct host_qpair *qp, const struct pollfd *pfds, int n);
/** Transport hints for spinning waiters: the peer polls on this CPU (-1: unknown),
 *  and whether spinning should offer the CPU now and then. */
int host_qpair_peer_cpu(const struct host_qpair *qp);
bool host_qpair_spin_yields(const struct host_qpair *qp);
/**
 * Stop: drop the transport queue. Commands outstanding complete with
 * "aborted: SQ deleted" if complete is true, else are forgotten (their
 * callbacks never run). Then host_qpair_destroy() from the controller side.
 */
void host_qpair_stop(struct host_qpair *qp, bool complete);

/** Statuses that say "this path failed", not "this command failed" (NVMe
 *  Base 2.0, 4.2.3.1): a reconnecting controller resubmits the command. */
bool host_status_is_path_error(uint16_t sct_sc);

#endif
