/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The nvme bdev module: namespaces of a remote NVMe controller imported as
 * bdevs NAMEn<nsid>, the host core's bdev face (src/host/host.h). Inside
 * the module:
 *  - bdev_nvme_ctrlr.c: a controller (struct nvme_ctrlr) on reactor 0: the
 *    core controller it drives, its I/O queues' lifecycle, its bdevs,
 *    attach / detach, what get_controllers and save_config show;
 *  - bdev_nvme.c: the bdev ops and the I/O queues (struct nvme_ioq), one
 *    core queue pair each, bound for life to one reactor;
 *  - bdev_nvme_discovery.c: discovery services (struct nvme_disc): a
 *    discovery controller followed, its NVMe subsystems attached;
 *  - bdev_nvme_rpc.c: the RPCs (SPDK's names and parameters) and the
 *    daemon subsystem; the only file of the module that includes app/.
 */
#ifndef NVL_MODULE_BDEV_NVME_INTERNAL_H
#define NVL_MODULE_BDEV_NVME_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "nvmf/keyring.h"
#include "bdev/bdev.h"
#include "host/host.h"
#include "reactor/reactor.h"

#define NVME_MAX_IOQ HOST_MAX_QUEUES
#define NVME_NAME_MAX (NVL_BDEV_NAME_MAX - 8)
#define NVME_MAX_IOQ_FDS 3

/** What bdev_nvme_attach_controller asks for (defaults filled by the RPC glue). */
struct nvme_ctrlr_opts {
	char name[NVME_NAME_MAX];
	char trtype[8];              /* "TCP" or "SHM" */
	char traddr[256];            /* IP address, or the shm socket path */
	char trsvcid[32];
	char adrfam[8];
	char subnqn[NVL_NVME_NQN_LEN];
	char hostnqn[NVL_NVME_NQN_LEN];
	uint8_t hostid[16];
	bool hdgst, ddgst;
	uint32_t num_io_queues;      /* asked for; at least one per reactor */
	uint32_t io_queue_size;
	uint32_t kato_ms;
	int64_t ctrlr_loss_timeout_sec;
	uint32_t reconnect_delay_sec;
	uint32_t fast_io_fail_timeout_sec;
	uint32_t connect_timeout_ms;
	uint32_t max_bdevs;          /* 0: a bdev for every active namespace */
	/* a first attach that fails leaves the controller waiting and retries every
	 * reconnect_delay_sec (a configuration being loaded, a discovery entry) */
	bool retry_first_connect;
	/* DH-HMAC-CHAP (SPDK's dhchap_key / dhchap_ctrlr_key): keyring names, ""
	 * none; the files are read at each connect */
	char dhchap_key[NVL_KEYRING_NAME_MAX];
	char dhchap_ctrlr_key[NVL_KEYRING_NAME_MAX];
};

struct nvme_ctrlr;
struct nvme_ioq;

/* One fd of an I/O queue watched by its reactor. */
struct nvme_ioq_fd {
	struct nvme_ioq *q;
	struct nvl_fdh *h;
	struct pollfd pfd;
};

/* One I/O queue pair on one reactor (its owner for life). */
struct nvme_ioq {
	struct nvme_ctrlr *ctrlr;
	struct nvl_reactor *reactor;
	unsigned idx;
	struct host_qpair *qp;
	/* reactor-owned */
	struct nvl_poller *poller;
	struct nvme_ioq_fd fd[NVME_MAX_IOQ_FDS];
	int nfds;
	uint64_t epoch;              /* of the queue pair whose fds are registered */
	struct nvl_bdev_io *pend_head, *pend_tail;
	uint32_t inflight;
	uint64_t last_active_ns;
	uint64_t submitted, completed, failed;
	bool stopping;                 /* reactor 0: its stop was sent, no more kicks */
};

struct nvme_bdev {
	struct nvl_bdev bdev;
	struct nvme_ctrlr *ctrlr;    /* NULL once the controller is detached */
	uint32_t nsid;
	uint8_t lbads;
};

enum nvme_phase {
	NVME_ATTACHING = 0,          /* the first association and the I/O queues */
	NVME_ACTIVE,                 /* bdevs registered; the core reconnects as needed */
	NVME_DETACHING,
	NVME_WAITING,                /* retry_first_connect: not reached yet; no core controller */
};

typedef void (*nvme_done_fn)(void *arg, struct nvme_ctrlr *c, int rc, const char *why);

struct nvme_ctrlr {
	struct nvme_ctrlr_opts o;
	struct host_ctrlr *hc;
	enum nvme_phase phase;
	unsigned nioq;

	/* reactor 0: driving the core */
	struct nvl_poller *poller;
	struct nvl_timer *timer;

	struct nvme_ioq *ioq[NVME_MAX_IOQ];
	struct nvme_ioq *by_reactor[NVL_REACTOR_MAX][NVME_MAX_IOQ];
	unsigned nby_reactor[NVL_REACTOR_MAX];
	unsigned rr[NVL_REACTOR_MAX];  /* round robin per reactor (touched there only) */
	bool queues_made;              /* attaching: queue pairs created, being connected */
	bool queues_started;           /* the queues were handed to their reactors */
	unsigned started, stopped;     /* queues that answered */
	unsigned qp_left;              /* detaching: queue pairs not yet freed */
	bool closed;                   /* the core controller is closed: free at the next tick */
	int fail_rc;                   /* attaching failed with this */

	struct nvme_bdev *bdevs[HOST_MAX_NS];
	unsigned nbdevs;

	/* retry_first_connect (reactor 0) */
	bool park;                     /* the failed attempt being undone: wait, not free */
	bool given_up;                 /* waited ctrlr_loss_timeout_sec: no more attempts */
	unsigned attempts;             /* core controllers created */
	uint64_t wait_since_ns;        /* waiting (or retrying) since; 0: never failed */
	uint64_t retry_at_ns;          /* next attempt */
	char disc_name[NVME_NAME_MAX]; /* the discovery service that attached it, or "" */

	char last_error[256];
	nvme_done_fn done;             /* attach or detach waiting for its outcome */
	void *done_arg;
	TAILQ_ENTRY(nvme_ctrlr) link;
};

/* bdev_nvme_ctrlr.c (reactor 0) */

/** Start attaching; done runs once with the outcome (rc 0: bdevs registered,
 *  or, with o->retry_first_connect, the first attempt failed and the
 *  controller waits for its target). *out (if out) gets the controller.
 *  \return 0, or -EEXIST, -EINVAL (address), -ENOMEM, a socket's -errno
 *  (done will not run). */
int bdev_nvme_attach(const struct nvme_ctrlr_opts *o, nvme_done_fn done, void *arg,
		     struct nvme_ctrlr **out);
/** Detach (done runs once); a controller waiting for its target goes at
 *  once. \return 0, -EBUSY (attaching, detaching or a bdev open: why says
 *  which). */
int bdev_nvme_detach(struct nvme_ctrlr *c, nvme_done_fn done, void *arg, char *why,
		     size_t why_len);
struct nvme_ctrlr *bdev_nvme_ctrlr_find(const char *name);
struct nvme_ctrlr *bdev_nvme_ctrlr_first(void);
struct nvme_ctrlr *bdev_nvme_ctrlr_next(struct nvme_ctrlr *c);
const char *bdev_nvme_ctrlr_state(const struct nvme_ctrlr *c);
/** get_controllers' object for c. */
json_t *bdev_nvme_ctrlr_info(struct nvme_ctrlr *c);
/** The bdev_nvme_attach_controller call that recreates c. */
json_t *bdev_nvme_ctrlr_config(const struct nvme_ctrlr *c);
/** Shutdown: detach everything; done() once all are gone. */
void bdev_nvme_detach_all(void (*done)(void));
/** Fail I/O with this while the controller is away (0: it waits). */
int bdev_nvme_fail_errno(const struct nvme_ctrlr *c);

/** Is a bdev of c open? why says which and by whom. */
bool bdev_nvme_ctrlr_in_use(const struct nvme_ctrlr *c, char *why, size_t why_len);

/* bdev_nvme_discovery.c (reactor 0) */

/** What bdev_nvme_start_discovery asks for (defaults filled by the RPC glue). */
struct nvme_disc_opts {
	char name[NVME_NAME_MAX];    /* controllers are NAME0, NAME1, ... */
	char trtype[8];              /* "TCP" or "RDMA": the discovery controller's and
				      * its entries' (as SPDK: entries of another
				      * transport are not attached) */
	char traddr[256];
	char trsvcid[32];
	char adrfam[8];
	char hostnqn[NVL_NVME_NQN_LEN];
	uint8_t hostid[16];
	int64_t ctrlr_loss_timeout_sec;  /* for each controller, as attach_controller */
	uint32_t reconnect_delay_sec;    /* ... and for the discovery connection */
	uint32_t fast_io_fail_timeout_sec;
	uint32_t attach_timeout_ms;      /* wait_for_attach: fail after this (0: never) */
	bool wait_for_attach;            /* done once the first log's controllers attached */
	bool retry_first_connect;        /* an unreachable discovery controller: keep trying */
	bool poll_only;                  /* no change events: read the log every few seconds */
};

struct nvme_disc;
typedef void (*nvme_disc_done_fn)(void *arg, struct nvme_disc *d, int rc, const char *why);

/** Start a discovery service; done runs once: the first log read (with
 *  wait_for_attach: and its controllers attached or waiting), or, with
 *  retry_first_connect, the discovery controller not reached and retried,
 *  or the failure.
 *  \return 0, -EEXIST, -EINVAL (address), -ENOMEM, -ENETDOWN (trtype RDMA:
 *  no RDMA device), a socket's -errno. */
int bdev_nvme_discovery_start(const struct nvme_disc_opts *o, nvme_disc_done_fn done, void *arg);
/** Stop: detach its controllers, close; done once all are gone.
 *  \return 0, -EBUSY (starting, stopping, a bdev open: why says which). */
int bdev_nvme_discovery_stop(struct nvme_disc *d, nvme_disc_done_fn done, void *arg, char *why,
			     size_t why_len);
struct nvme_disc *bdev_nvme_discovery_find(const char *name);
/** bdev_nvme_get_discovery_info's answer. */
json_t *bdev_nvme_discovery_info_all(void);
/** The bdev_nvme_start_discovery calls that recreate the services. */
void bdev_nvme_discovery_write_config(json_t *calls);
/** Shutdown: drop the discovery connections (their controllers go with detach_all). */
void bdev_nvme_discovery_fini(void);

/* bdev_nvme.c */

extern const struct nvl_bdev_ops g_nvme_bdev_ops;
/** On the queue's reactor: start polling (after the queue pair is made). */
void bdev_nvme_ioq_start(void *ioq);
/** On the queue's reactor: stop, fail what waits, tell reactor 0 (then it may free). */
void bdev_nvme_ioq_stop(void *ioq);
/** Reactor 0: make the queue's reactor look at it soon. */
void bdev_nvme_ioq_kick(struct nvme_ioq *q);
/** Reactor 0, the queues' answers: started, stopped. */
void bdev_nvme_ctrlr_ioq_started(void *ctrlr);
void bdev_nvme_ctrlr_ioq_stopped(void *ctrlr);

#endif
