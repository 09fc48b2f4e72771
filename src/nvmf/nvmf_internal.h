/* SPDX-License-Identifier: BSD-3-Clause */
/* Target internals shared by nvmf.c and nvmf_rpc.c. */
#ifndef NVL_NVMF_INTERNAL_H
#define NVL_NVMF_INTERNAL_H

#include "nvmf/keyring.h"
#include "nvmf/nvmf.h"
#include "util/log.h"

#include <pthread.h>

NVL_LOG_DECLARE_COMPONENT(nvmf);

struct nvmf_host {
	char nqn[NVL_NVME_NQN_LEN];
	TAILQ_ENTRY(nvmf_host) link;
	/* credential binding (nvlend extension, src/nvmf/auth_identity.c): only a
	 * local peer with this uid, or in this group, may claim the NQN */
	bool has_uid, has_gid;
	uint32_t uid, gid;
	/* DH-HMAC-CHAP keys, keyring names ("" = none; auth.c) */
	char dhchap_key[NVL_KEYRING_NAME_MAX];
	char dhchap_ctrlr_key[NVL_KEYRING_NAME_MAX];
};

struct nvmf_sub_listener {
	struct nvl_listen_addr addr;
	uint16_t portid;
	TAILQ_ENTRY(nvmf_sub_listener) link;
};

struct nvmf_listener {
	struct nvl_listen_addr addr;
	const struct nvl_transport_ops *transport;
	unsigned refs;
	int fd;                              /* the transport's listening socket */
	struct nvl_acceptor *acceptor;       /* reactor 0 */
	TAILQ_ENTRY(nvmf_listener) link;
};

struct nvl_subsys {
	char nqn[NVL_NVME_NQN_LEN];
	char sn[21];
	char mn[41];
	bool discovery;
	bool allow_any_host;
	bool deleting;
	bool listed_to_any_host;  /* in every host's discovery log */
	char owner[16];           /* "" or the managing component: not in save_config */
	uint32_t max_ns;
	uint16_t min_cntlid, max_cntlid, next_cntlid;
	uint64_t kato_expiries;           /* controllers ended by keep-alive timeout (atomic) */
	struct nvl_nvmf_ns **ns;          /* [max_ns], atomic pointer loads */
	TAILQ_HEAD(, nvl_nvmf_ctrlr) ctrlrs;  /* g_nvmf.lock */
	TAILQ_HEAD(, nvmf_host) hosts;
	TAILQ_HEAD(, nvmf_sub_listener) listeners;
	TAILQ_ENTRY(nvl_subsys) link;
};

struct nvl_target {
	pthread_mutex_t lock;
	TAILQ_HEAD(, nvl_subsys) subsystems;
	TAILQ_HEAD(, nvmf_listener) listeners;
	uint64_t discovery_genctr;
	uint16_t next_portid;
};

extern struct nvl_target g_nvmf;

bool nvmf_host_allowed(const struct nvl_subsys *s, const char *hostnqn);
int nvmf_listener_get(const struct nvl_listen_addr *a);
void nvmf_listener_put(const struct nvl_listen_addr *a);
void nvmf_ns_notify(struct nvl_nvme_ns *ns, const uint8_t hostid[16], uint8_t type);
void nvmf_subsys_ns_changed(struct nvl_subsys *s, uint32_t nsid);
const struct nvl_transport_ops *nvmf_transports(void);

/** Remove namespace nsid: it leaves the table, every reactor passes a barrier,
 *  what is in flight drains, then it is released and done(arg, 0) runs (or
 *  done(arg, -ENOMEM) if the drain could not be waited for). Reactor 0.
 *  \return 0 (done runs exactly once, later); -ENOENT; -EBUSY (being
 *  removed); -ENOMEM. */
int nvmf_ns_remove(struct nvl_subsys *s, uint32_t nsid, void (*done)(void *arg, int rc),
		   void *arg);
/** Delete a subsystem: disconnect its controllers, wait until they are gone,
 *  remove its namespaces, free it, then done(arg). Reactor 0.
 *  \return 0 (done runs exactly once, later); -EBUSY (being deleted); -ENOMEM. */
int nvmf_subsys_delete(struct nvl_subsys *s, void (*done)(void *arg), void *arg);
/** Free a subsystem at once (its listeners are released); no controller may be left. */
void nvmf_subsys_free(struct nvl_subsys *s);

/* host identity (auth_identity.c); g_nvmf.lock held */
struct nvmf_host *nvmf_host_find(const struct nvl_subsys *s, const char *hostnqn);
int nvmf_host_identity_check(const struct nvl_subsys *s, const struct nvl_connect_info *ci);
/** {"nqn": host NQN, "uid"?, "gid"?, ...}: nvmf_get_subsystems' host entries and,
 *  with nqn/host renamed, the params of the nvmf_subsystem_add_host that rebuilds it. */
json_t *nvmf_host_json(const struct nvmf_host *h);

/* DH-HMAC-CHAP (auth.c) */
struct nvmf_auth_keys;
/** Does the host entry carry a DH-HMAC-CHAP key? (h may be NULL) */
bool nvmf_auth_host_has_key(const struct nvmf_host *h);
/** Set (or clear, with NULL/"") a host entry's keys, taking keyring references.
 *  \return 0, -ENOENT (no such key: err says which), -EINVAL (a controller key
 *  without a host key). */
int nvmf_auth_host_set_keys(struct nvmf_host *h, const char *key, const char *ckey, char *err,
			    size_t errlen);
/** Drop a host entry's keyring references (before freeing it). */
void nvmf_auth_host_clear(struct nvmf_host *h);
/** Connect, g_nvmf.lock held: load the keys of host entry h (NULL: none) into
 *  c and create its admin queue's transaction; sets c->nvme.auth_required.
 *  \return 0, -EACCES (a key file cannot be read or parsed: why says so), -ENOMEM. */
int nvmf_auth_ctrlr_init(struct nvl_nvmf_ctrlr *c, const struct nvmf_host *h,
			 const struct nvl_connect_info *ci);
/** Free c's authentication state (the controller is being freed). */
void nvmf_auth_ctrlr_fini(struct nvl_nvmf_ctrlr *c);
/** nvmf_subsystem_set_keys: reload host entry h's keys into its live
 *  controllers (g_nvmf.lock held). \return 0, -EACCES (err says why), -ENOMEM. */
int nvmf_auth_host_keys_changed(struct nvl_subsys *s, const struct nvmf_host *h, char *err,
				size_t errlen);
/** nvmf_set_config: allowed digests and DH groups by name (NULL: unchanged).
 *  \return 0, -EINVAL (unknown or empty list; err says why). */
int nvmf_auth_set_algorithms(const char *const *digests, unsigned ndigests,
			     const char *const *dhgroups, unsigned ndhgroups, char *err,
			     size_t errlen);
/** nvmf_set_config dhchap_step_timeout_ms (nvlend's): how long a host may
 *  take per DH-HMAC-CHAP step before the controller is torn down; 0 = from
 *  the keep-alive timeout, clamped to 30..120 s (the default).
 *  \return 0, -EINVAL (out of range; err says why). */
#define AUTH_STEP_TIMEOUT_MIN_MS 1000u
#define AUTH_STEP_TIMEOUT_MAX_MS 600000u
int nvmf_auth_set_step_timeout(uint32_t ms, char *err, size_t errlen);
/** {"dhchap_digests": [...], "dhchap_dhgroups": [...]} now in force, and
 *  "dhchap_step_timeout_ms" when it is not the default. */
json_t *nvmf_auth_config_json(void);
/** Append nvmf_set_config with the above (save_config). */
void nvmf_auth_write_config(json_t *calls);

#endif
