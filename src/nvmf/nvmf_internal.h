/* SPDX-License-Identifier: BSD-3-Clause */
/* Target internals shared by nvmf.c and nvmf_rpc.c. */
#ifndef NVL_NVMF_INTERNAL_H
#define NVL_NVMF_INTERNAL_H

#include "nvmf/nvmf.h"
#include "util/log.h"

#include <pthread.h>

NVL_LOG_DECLARE_COMPONENT(nvmf);

struct nvmf_host {
	char nqn[NVL_NVME_NQN_LEN];
	TAILQ_ENTRY(nvmf_host) link;
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

#endif
