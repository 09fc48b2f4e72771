/* SPDX-License-Identifier: BSD-3-Clause */
/* Lending service internals shared by lend.c, lend_peer.c and lend_rpc.c (reactor 0). */
#ifndef NVL_LEND_INTERNAL_H
#define NVL_LEND_INTERNAL_H

#include "lend/lend.h"
#include "lend/lend_proto.h"
#include "util/log.h"

#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <sys/queue.h>

NVL_LOG_DECLARE_COMPONENT(lend);

#define LEND_MAX_BORROWERS 16
#define LEND_MAX_OFFERS 256
#define LEND_MAX_PEERS 64
#define LEND_NQN_MAX 224
#define LEND_URI_MAX 512
#define LEND_DEFAULT_PEER_PORT "4430"
#define LEND_DEFAULT_NVME_PORT "4420"
#define LEND_DEFAULT_DISC_PORT "8009"
#define LEND_DEFAULT_LEASE_MS 10000
#define LEND_CALL_TIMEOUT_MS 3000

enum lend_kind {
	LEND_KIND_FILE = 1,   /**< a regular file: bdev lend-N, advisory lock while lent */
	LEND_KIND_BLOCKDEV,   /**< a block device: bdev lend-N, O_EXCL held while lent */
	LEND_KIND_BDEV,       /**< an existing bdev of this daemon */
	LEND_KIND_BRICK,      /**< a brick: brick bdev lend-N over all of it */
};

/** The lender's view of an offer: offered (unavailable) or available. */
enum lend_state {
	LEND_UNAVAILABLE = 0, /**< offered; the device is for local use */
	LEND_AVAILABLE,       /**< lent out: borrowers (if any) in borrowers[] */
};

struct lend_borrower {
	char node[NVL_LEND_NAME_MAX];
	char node_id[NVL_LEND_UUID_LEN];
	char hostnqn[LEND_NQN_MAX];
	char lease[NVL_LEND_NONCE_HEX + 1];
	uint64_t rkey;           /**< reservation key handed out (exclusive) */
	uint64_t deadline_us;    /**< lease expiry (monotonic, not persisted) */
};

struct lend_offer {
	uint32_t id;
	enum lend_kind kind;
	char device[PATH_MAX];   /**< as added: path, bdev name or brick name */
	char bdev[64];           /**< the bdev served (lend-N or the user's) */
	char nqn[LEND_NQN_MAX];
	char uuid[NVL_LEND_UUID_LEN];
	bool shared;
	enum lend_state state;
	bool busy;               /**< a transition is under way */
	uint64_t size;           /**< bytes, known once available */
	uint32_t block_size;
	int hold_fd;             /**< O_EXCL descriptor of a block device, -1 */
	uint64_t last_rkey;      /**< the last exclusive borrower's key (may linger) */
	struct lend_borrower borrowers[LEND_MAX_BORROWERS];
	unsigned nborrowers;
	TAILQ_ENTRY(lend_offer) link;
};

struct lend_peer {
	char name[NVL_LEND_NAME_MAX];
	char node_id[NVL_LEND_UUID_LEN];
	char addr[64];
	uint16_t port;           /**< 0: it serves no peer port */
	TAILQ_ENTRY(lend_peer) link;
};

/** What this node borrowed. */
struct lend_borrow {
	char lender[NVL_LEND_NAME_MAX];
	char lender_id[NVL_LEND_UUID_LEN];
	char addr[64];
	uint16_t port;
	uint32_t id;
	char lease[NVL_LEND_NONCE_HEX + 1];
	char uri[LEND_URI_MAX];
	char nqn[LEND_NQN_MAX];
	uint32_t nsid;
	uint64_t rkey, prkey;
	bool shared;
	uint32_t lease_ms;
	char attach_name[32];
	bool renewing;
	uint64_t next_renew_us;
	uint64_t last_ok_us;
	TAILQ_ENTRY(lend_borrow) link;
};

struct lend_listener {
	bool on;
	char traddr[64];
	char trsvcid[8];
	char nvme_trsvcid[8];
	char disc_trsvcid[8];
	uint32_t lease_ms;
	bool mdns;               /**< advertise the discovery port over mDNS (avahi) */
};

struct lend_global {
	char node[NVL_LEND_NAME_MAX];
	char node_id[NVL_LEND_UUID_LEN];
	char hostnqn[LEND_NQN_MAX];
	char state_dir[PATH_MAX - 32];
	char key_file[PATH_MAX];
	char avahi_dir[PATH_MAX];
	char *opt_name;
	struct nvl_lend_key key;
	bool have_key;
	bool identity_saved;
	struct lend_listener listener;
	uint32_t next_id;
	bool started, stopping;
	TAILQ_HEAD(, lend_offer) offers;
	TAILQ_HEAD(, lend_peer) peers;
	TAILQ_HEAD(, lend_borrow) borrows;
	struct nvl_timer *tick;
};

extern struct lend_global g_lend;

/* lend.c */
struct lend_offer *lend_offer_find(uint32_t id);
struct lend_borrow *lend_borrow_find(const char *lender, uint32_t id);
struct lend_peer *lend_peer_find(const char *name);
int lend_save(void);
/** Create the state dir and node.json if not yet. \return 0 or -errno (logged). */
int lend_identity_ensure(void);
const char *lend_kind_str(enum lend_kind k);
/** An offer as JSON (list): id, device, kind, size, state, borrowers... */
json_t *lend_offer_json(const struct lend_offer *o, bool local);
/** Load the cluster key if not yet. \return 0 or -errno (logged, with why in *why). */
int lend_key_ensure(const char **why);

typedef void (*lend_done_fn)(void *arg, int rc, const char *msg, json_t *result);
int lend_add(const char *device, bool shared, uint32_t *id, char *err, size_t errlen);
int lend_remove(uint32_t id, char *err, size_t errlen);
/** Make available (async). \return 0 (done runs) or -errno with err set. */
int lend_available(uint32_t id, lend_done_fn done, void *arg, char *err, size_t errlen);
int lend_unavailable(uint32_t id, bool force, lend_done_fn done, void *arg, char *err,
		     size_t errlen);
int lend_listen(const struct lend_listener *l, char *err, size_t errlen);
/** Serve one authenticated peer request; reply(conn, body) exactly once. */
typedef void (*lend_reply_fn)(void *conn, json_t *body);
void lend_serve(const struct nvl_lend_request *r, const struct nvl_lend_body *b,
		const char *local_addr, const char *remote_addr, lend_reply_fn reply, void *conn);
/* borrower side (async) */
int lend_connect(const char *addr, uint16_t port, lend_done_fn done, void *arg);
int lend_list(lend_done_fn done, void *arg);
int lend_borrow(const char *id, lend_done_fn done, void *arg, char *err, size_t errlen);
int lend_return(const char *id, lend_done_fn done, void *arg, char *err, size_t errlen);
json_t *lend_borrows_json(void);
json_t *lend_node_json(void);

/* lend.c: the daemon's "lend" subsystem (registered in lend_rpc.c) */
/** Defaults; node identity and lend.json if they exist. \return 0 or -errno. */
int lend_init(void);
/** After the -c configuration: listen again, replay the available offers. */
void lend_start(void);
/** Stop serving, wait for peer calls in flight, free; then done(). */
void lend_fini(void (*done)(void));

/* lend.c: helpers shared by the service's files */
const char *lend_jstr(const json_t *o, const char *k);
uint64_t lend_jint(const json_t *o, const char *k);
void lend_uuid_random(char *out);
/* RPC sequences: calls run one after the other in-process (lend.c) */
#define SEQ_OK_EXISTS 1 /**< an "already exists" answer counts as success */
#define SEQ_OK_ANY 2    /**< any error does: best-effort teardown */
void lend_seq_add(json_t *calls, const char *method, json_t *params, int ok);
/** Run calls (stolen); done(arg, rc, msg) runs exactly once, later. */
void lend_seq_run(json_t *calls, void (*done)(void *, int, const char *), void *arg);
/** listen_address of the lend listener's address on port. */
json_t *lend_listen_addr_json(const char *port);

/* lend_offer.c */
void lend_peer_learn(const char *name, const char *node_id, const char *addr, uint16_t port);
int lend_offer_make_available(struct lend_offer *o, bool replay, lend_done_fn done, void *arg,
			      char *err, size_t errlen);
/** Expire the leases of borrowers silent past their deadline. */
void lend_offers_expire(uint64_t now_us);

/* lend_borrow.c */
/** Send the renewals that are due. */
void lend_borrows_renew(uint64_t now_us);

/* lend_mdns.c */
/** Write the avahi static service of the discovery listener. \return 0 or -errno (err says why). */
int lend_mdns_publish(char *err, size_t errlen);
void lend_mdns_withdraw(void);

/* lend_peer.c */
int lend_peer_listen(const char *traddr, const char *port);
void lend_peer_stop(void);
/** the peer listener is up */
bool lend_peer_listening(void);
/** Result of a client call, delivered on reactor 0. */
struct lend_call_result {
	int rc;                        /**< 0: body is the (authenticated) answer */
	json_t *body;                  /**< borrowed during the callback */
	char err[256];
	struct nvl_lend_greeting greet; /**< who answered (when rc >= 0 or -EACCES) */
};
typedef void (*lend_call_fn)(void *arg, const struct lend_call_result *res);
/** Send body (stolen) to addr:port in a thread. \return 0 (cb runs on reactor 0) or -errno. */
int lend_peer_call(const char *addr, uint16_t port, json_t *body, lend_call_fn cb, void *arg);
/** Calls still running (shutdown waits for them). */
unsigned lend_peer_calls_inflight(void);

#endif
