/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe target core (DESIGN.md sections 2 and 3: src/nvmf, SPDK's lib/nvmf): subsystems
 * (NQN, serial, model), namespaces (nsid -> bdev), allowed hosts, listeners,
 * and controllers (one per connected host association) with keep-alive.
 * Transports (src/transport) register an ops table and call
 * nvl_nvmf_connect() when a host connects; the target answers NVMe
 * questions through src/nvme.
 *
 * Threading: subsystems, hosts, listeners and namespaces are changed on
 * reactor 0 (RPC). Controllers live on their home reactor (where their admin
 * queue is served). Cross-thread membership (a subsystem's controller list)
 * is under g_nvmf.lock; the namespace table is read lock-free on the I/O
 * path (atomic pointer loads) and emptied with a reactor barrier plus an
 * in-flight drain before a namespace is freed. Controllers are reference
 * counted: messages to a controller hold a reference.
 */
#ifndef NVL_NVMF_H
#define NVL_NVMF_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "nvme/nvme.h"

#define NVL_NVMF_MAX_NS 1024
#define NVL_NVMF_TRADDR_MAX 256
#define NVL_NVMF_TRSVCID_MAX 32
#define NVL_NVMF_NS_MAX_HOSTS 64

struct nvl_subsys;
struct nvl_nvmf_ctrlr;
struct nvmf_auth_keys;

/* ---- transports ---------------------------------------------------------- */

struct nvl_listen_addr {
	char trtype[16];      /**< "SHM", "TCP" (case-insensitive on input) */
	char adrfam[16];      /**< "IPv4", "IPv6", "" for SHM */
	char traddr[NVL_NVMF_TRADDR_MAX];
	char trsvcid[NVL_NVMF_TRSVCID_MAX];
};

struct nvl_transport_ops {
	const char *name;                /**< "SHM", "TCP" */
	uint8_t nvmf_trtype;             /**< discovery log code, 0 = not listed */
	/** required: open a listening socket for a (non-blocking, close-on-exec:
	 *  util/sock.h). The target watches it and hands each connection to
	 *  accept(); it closes the socket when no subsystem is offered at a any
	 *  more (called once per address: the core refcounts them).
	 *  \return 0 with the socket in *fd, or -errno. */
	int (*listen)(const struct nvl_listen_addr *a, int *fd);
	/** required: a host connected to the listener of a (reactor 0; takes fd). */
	void (*accept)(const struct nvl_listen_addr *a, int fd);
	/** optional: the listener of a was closed (remove what it left, a socket file...). */
	void (*stop_listen)(const struct nvl_listen_addr *a);
	/** required: tear down a controller's queues and connections (home reactor),
	 *  ending with nvl_nvmf_ctrlr_release(). Called at most once per ctrlr. */
	void (*ctrlr_disconnect)(struct nvl_nvmf_ctrlr *c);
	/** optional: append one object per queue pair of c to arr. */
	void (*ctrlr_qpairs)(struct nvl_nvmf_ctrlr *c, json_t *arr);
	/** optional: nvmf_create_transport options. */
	int (*configure)(json_t *opts, char *err, size_t errlen);
	/** optional: options as saved by save_config / shown by nvmf_get_transports. */
	json_t *(*dump_opts)(void);
	/** optional: stop everything (shutdown), then done(). */
	void (*fini)(void (*done)(void));
	/** optional: take back the controllers a previous worker kept in the fd
	 *  store (crash recovery), once the configuration is replayed (reactor 0) */
	void (*restore)(void);
	/** optional: a worker built ahead of an upgrade (util/fdstore.h) prepares
	 *  what restore() will take back, without running anything the old worker
	 *  still runs (reactor 0, before the hand-over; restore() follows it) */
	void (*restore_ahead)(void);
	/** optional: an upgrade is about to hand over (nvlend upgrade): stop
	 *  every live connection that can move at a protocol boundary, keep it
	 *  in the fd store for the next worker's restore(), close the others;
	 *  then done() (reactor 0, exactly once). */
	void (*suspend)(void (*done)(void));
	/** optional: the last step before an upgrade's hand-over: stop taking
	 *  new commands from the queues that stay in the store (they are not
	 *  closed; what was taken completes). Any reactor may still be polling;
	 *  it must see the stop at its next poll. Reactor 0. */
	void (*quiesce)(void);
	struct nvl_transport_ops *next;
};

void nvl_transport_register(struct nvl_transport_ops *ops);
#define NVL_TRANSPORT_REGISTER(sym, ops)                                                           \
	static void __attribute__((constructor)) nvl_transport_reg_##sym(void)                     \
	{                                                                                          \
		nvl_transport_register(ops);                                                       \
	}
const struct nvl_transport_ops *nvl_transport_find(const char *name);

/* ---- subsystems ---------------------------------------------------------- */

struct nvl_nvmf_ns {
	struct nvl_nvme_ns nvme;        /* first */
	struct nvl_subsys *subsys;
	char bdev_name[NVL_BDEV_NAME_MAX];
	bool auto_visible;
	unsigned nhosts;
	char (*hosts)[NVL_NVME_NQN_LEN]; /* visible to these when !auto_visible */
	bool removing;
};

struct nvl_subsys_opts {
	const char *nqn;
	const char *serial_number;
	const char *model_number;
	bool allow_any_host;
	uint32_t max_namespaces;
	uint16_t min_cntlid;
	uint16_t max_cntlid;
	/** component that manages it (e.g. "lend"): save_config leaves it out, its owner
	 *  rebuilds it from its own records; NULL: the configuration's */
	const char *owner;
	/** listed in every host's discovery log, also hosts not (yet) allowed to connect
	 *  (device lending's offers) */
	bool listed_to_any_host;
};

/** Reactor 0. \return 0, -EEXIST, -EINVAL (bad NQN or ranges), -ENOMEM. */
int nvl_subsys_create(const struct nvl_subsys_opts *o, struct nvl_subsys **out);
struct nvl_subsys *nvl_subsys_find(const char *nqn);
bool nvl_subsys_is_discovery(const struct nvl_subsys *s);
const char *nvl_subsys_nqn(const struct nvl_subsys *s);

/* ---- controllers --------------------------------------------------------- */

enum nvl_nvmf_ctrlr_state {
	NVL_TCTRLR_ACTIVE = 0,
	NVL_TCTRLR_DISCONNECTING,
};

struct nvl_nvmf_ctrlr {
	struct nvl_nvme_ctrlr nvme;     /* first: the NVMe state */
	struct nvl_subsys *subsys;
	const struct nvl_transport_ops *transport;
	void *tctx;                      /**< the transport's controller state */
	struct nvl_listen_addr listener; /**< where the host came in */
	enum nvl_nvmf_ctrlr_state state;
	unsigned refs;                   /**< atomic */
	struct nvl_timer *kato_timer;
	/** the transport has not answered the Connect yet (shm: the data window
	 *  is being made): the keep-alive period has not started. The
	 *  controller's home reactor writes it; the transport sets
	 *  nvme.last_keep_alive_ns when it clears it. */
	bool connecting;
	uint64_t connect_ns;
	TAILQ_ENTRY(nvl_nvmf_ctrlr) link;
	/* host identity (src/nvmf/auth_identity.c, auth.c) */
	bool has_cred;                   /**< uid/gid/pid of the peer are known (shm) */
	uint32_t uid, gid, pid;
	/** DH-HMAC-CHAP (auth.h): the admin queue's transaction (NULL when the
	 *  host needs none; transports point their admin requests at it) and the
	 *  keys every queue authenticates with (g_nvmf.lock) */
	struct nvl_nvme_auth *auth;
	struct nvmf_auth_keys *auth_keys;
};

struct nvl_connect_info {
	const char *subnqn;
	const char *hostnqn;
	const uint8_t *hostid;           /**< 16 bytes */
	uint32_t kato_ms;
	uint16_t cntlid;                 /**< 0xffff (dynamic) or 0xfffe; others refused
					  *   unless restore */
	/** a controller a previous worker served comes back (crash recovery,
	 *  upgrade: the transport kept its state): it gets exactly cntlid (which
	 *  must be free), and with restore_authenticated its DH-HMAC-CHAP is
	 *  taken as done (the host proved itself to the previous worker) */
	bool restore;
	bool restore_authenticated;
	/** a pre-provisioned function's controller (src/function/fn_rpc.c): it
	 *  gets exactly cntlid, which must be free, like a restored one */
	bool fixed_cntlid;
	/** no log line when the subsystem is missing, the host not (yet) allowed
	 *  or the listener not (yet) the subsystem's: a restore that waits for a
	 *  subsystem built after it (lending's targets) tries again quietly */
	bool quiet_refusal;
	/** no log line for the controller made: the transport writes it later
	 *  (an upgrade's hand-over, where a line is downtime) */
	bool log_later;
	uint16_t max_queue_entries;      /**< what the transport's queues can hold */
	uint16_t max_io_queues;
	bool fabrics;
	bool sgl;
	uint32_t ioccsz, iorcsz;
	uint8_t msdbd;
	uint8_t mdts;                    /**< MDTS for the controller, 0 = NVL_NVME_MDTS */
	const struct nvl_transport_ops *transport;
	const struct nvl_listen_addr *listener;
	/** the transport's queue commands and reset (or NULL); the target
	 *  installs its own namespace lookups (nvl_nvme_ctrlr.ops) */
	const struct nvl_nvme_queue_ops *queue_ops;
	void *tctx;
	/** The peer's credentials, for transports that have them (shm: SO_PEERCRED
	 *  and SO_PEERGROUPS at accept); checked against host entries bound to a
	 *  uid/gid (src/nvmf/auth_identity.c). */
	bool has_cred;
	uint32_t uid, gid, pid;
	const uint32_t *groups;          /**< supplementary groups (ngroups of them) */
	unsigned ngroups;
	/** out, optional: why a Connect was refused, for the transport's reply/log */
	char *why;
	size_t why_len;
};

/**
 * A host connects (any reactor; that reactor becomes the controller's home).
 * On refusal *status holds the NVMe status (Connect Invalid Host,
 * Invalid Parameters, Controller Busy...) and \return is -errno.
 */
int nvl_nvmf_connect(const struct nvl_connect_info *ci, struct nvl_nvmf_ctrlr **out,
		       uint16_t *status);

/** The transport noticed the host is gone (or finished ctrlr_disconnect):
 *  drop the controller from its subsystem, finish its AERs, free it when the
 *  last reference goes. Home reactor. Idempotent. */
void nvl_nvmf_ctrlr_release(struct nvl_nvmf_ctrlr *c);

/**
 * Keep-alive timeout given to a discovery controller whose host asked for none
 * (Connect KATO 0, or Set Features KATO 0 later), so that an idle discovery
 * association cannot hold a connection forever (default 120000 ms, Linux
 * nvmet's NVMET_DISC_KATO_MS). Any thread; applies to new and existing
 * controllers. No error returns.
 */
void nvl_nvmf_set_discovery_kato_ms(uint32_t ms);
/** A transport's teardown releases its controller once: *cp is cleared
 *  first, since releasing finishes held AERs, whose completions come back
 *  into the transport. NULL *cp: nothing to do. Home reactor. */
static inline void
nvl_nvmf_ctrlr_release_once(struct nvl_nvmf_ctrlr **cp)
{
	struct nvl_nvmf_ctrlr *c = *cp;

	if (c) {
		*cp = NULL;
		nvl_nvmf_ctrlr_release(c);
	}
}
/** Ask for a controller's teardown (keep-alive expiry, subsystem deletion,
 *  RPC). Any thread, g_nvmf.lock may be held: the teardown runs later on
 *  the home reactor, never inside this call. */
void nvl_nvmf_ctrlr_disconnect(struct nvl_nvmf_ctrlr *c, const char *why);
/** Find a live controller by subsystem and cntlid, with a reference (TCP
 *  I/O queue Connect). NULL if none. Any thread. */
struct nvl_nvmf_ctrlr *nvl_nvmf_ctrlr_lookup(const char *subnqn, uint16_t cntlid);
void nvl_nvmf_ctrlr_get(struct nvl_nvmf_ctrlr *c);
void nvl_nvmf_ctrlr_put(struct nvl_nvmf_ctrlr *c);

/** The target's namespace lookups, which it installs on every controller
 *  (nvl_nvme_ctrlr_ops get_ns, next_nsid). Any thread. */
struct nvl_nvme_ns *nvl_nvmf_get_ns(struct nvl_nvme_ctrlr *c, uint32_t nsid);
uint32_t nvl_nvmf_next_nsid(struct nvl_nvme_ctrlr *c, uint32_t after);

/** Reactor 0: listeners registered for a trtype (for transports' bookkeeping). */
bool nvl_nvmf_listener_allowed(const struct nvl_subsys *s, const struct nvl_listen_addr *a);
/** Discovery log page for a host (any thread): all subsystems it may see and
 *  their listeners with a standard trtype. Malloc'ed. */
int nvl_nvmf_discovery_log(const char *hostnqn, void **out, size_t *len);
/** Bump the discovery generation and raise discovery AENs (reactor 0). */
void nvl_nvmf_discovery_changed(void);

/** Parse an NQN for validity (NVMe Base 4.5): "nqn.yyyy-mm.reverse.domain:..." or
 *  "nqn.2014-08.org.nvmexpress:uuid:..." and the discovery NQN; \return 0/-EINVAL. */
int nvl_nqn_validate(const char *nqn);

/** Shutdown (reactor 0): delete every subsystem (controllers disconnected,
 *  in-flight commands drained, namespaces released), then stop every
 *  transport, then done(). */
void nvl_nvmf_fini(void (*done)(void));
/** Once the configuration is replayed: every transport takes back the
 *  controllers a previous worker kept (transport restore ops; reactor 0). */
void nvl_nvmf_restore(void);
/** Built ahead of an upgrade: every transport's restore_ahead op (reactor 0). */
void nvl_nvmf_restore_ahead(void);
/** Before an upgrade's hand-over: every transport's suspend op, one after
 *  the other, then done() (reactor 0; done runs exactly once). */
void nvl_nvmf_suspend(void (*done)(void));
/** Then, right before the hand-over: every transport's quiesce op (reactor 0). */
void nvl_nvmf_quiesce(void);

/**
 * One unsigned transport option of nvmf_create_transport: opts[key], if
 * present, must be an integer in min..max; it is then stored in *out.
 * \return 0 (absent or stored), -EINVAL with the reason in err.
 */
int nvl_nvmf_opt_u32(json_t *opts, const char *key, uint64_t min, uint64_t max, uint32_t *out,
		     char *err, size_t errlen);

/** Normalize "shm"/"tcp" to "SHM"/"TCP". */
void nvl_trtype_normalize(char *trtype);

#endif
