/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DH-HMAC-CHAP RPCs with SPDK's names: nvmf_set_config (dhchap_digests,
 * dhchap_dhgroups) and nvmf_subsystem_set_keys. Host keys are given with
 * nvmf_subsystem_add_host (nvmf_rpc.c). Reactor 0 only.
 */
#include "nvmf/nvmf_internal.h"
#include "app/app.h"
#include "rpc/rpc.h"
#include "util/util.h"

#include <errno.h>
#include <string.h>

#define MAX_ALGS 8

/* A JSON array of strings into names[] (borrowed). \return count, or -EINVAL. */
static int
str_array(const json_t *arr, const char **names, unsigned cap)
{
	size_t i;
	json_t *v;

	if (json_array_size(arr) > cap)
		return -EINVAL;
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			return -EINVAL;
		names[i] = json_string_value(v);
	}
	return (int)json_array_size(arr);
}

struct rpc_set_config {
	json_t *dhchap_digests;
	json_t *dhchap_dhgroups;
	json_t *dhchap_step_timeout_ms;
};

static const struct nvl_rpc_param set_config_params[] = {
	NVL_RPC_PARAM(struct rpc_set_config, dhchap_digests, NVL_RPC_T_ARRAY, false,
		      "hash functions DH-HMAC-CHAP may use: any of \"sha256\", \"sha384\", "
		      "\"sha512\" (default all); the strongest the host offers is picked"),
	NVL_RPC_PARAM(struct rpc_set_config, dhchap_dhgroups, NVL_RPC_T_ARRAY, false,
		      "DH groups DH-HMAC-CHAP may use: any of \"null\", \"ffdhe2048\", "
		      "\"ffdhe3072\", \"ffdhe4096\", \"ffdhe6144\", \"ffdhe8192\" (default all); the "
		      "strongest the host offers is picked"),
	NVL_RPC_PARAM(struct rpc_set_config, dhchap_step_timeout_ms, NVL_RPC_T_ANY, false,
		      "nvlend's: how long a host may take for each DH-HMAC-CHAP step before "
		      "its controller (or TCP queue) is torn down, in ms (1000..600000); 0, the "
		      "default, takes the Connect's keep-alive timeout clamped to 30..120 s"),
	/* SPDK's save_config emits these (issue 19): accepted, no effect here */
	NVL_RPC_PARAM_IGNORED("admin_cmd_passthru", NVL_RPC_T_OBJ,
			      "SPDK: admin commands passed to an NVMe bdev; nvlend passes none"),
	NVL_RPC_PARAM_IGNORED("poll_groups_mask", NVL_RPC_T_STR,
			      "SPDK: CPUs of the poll groups; nvlend: nvlendd -m"),
	NVL_RPC_PARAM_IGNORED("discovery_filter", NVL_RPC_T_STR,
			      "SPDK: which listeners the discovery log lists; nvlend lists the "
			      "listeners of each subsystem the host may use"),
	NVL_RPC_PARAM_IGNORED("dup_host_policy", NVL_RPC_T_STR,
			      "SPDK: what a second host with the same host NQN gets"),
};

static void
rpc_nvmf_set_config(struct nvl_rpc_request *req, struct rpc_set_config *a)
{
	const char *d[MAX_ALGS], *g[MAX_ALGS];
	int nd = 0, ng = 0;
	char err[256];

	if (a->dhchap_digests)
		nd = str_array(a->dhchap_digests, d, MAX_ALGS);
	if (a->dhchap_dhgroups)
		ng = str_array(a->dhchap_dhgroups, g, MAX_ALGS);
	if (nd < 0 || ng < 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "dhchap_digests and dhchap_dhgroups are arrays of names");
		return;
	}
	if (a->dhchap_step_timeout_ms &&
	    (!json_is_integer(a->dhchap_step_timeout_ms) ||
	     json_integer_value(a->dhchap_step_timeout_ms) < 0 ||
	     (json_integer_value(a->dhchap_step_timeout_ms) > 0 &&
	      json_integer_value(a->dhchap_step_timeout_ms) < AUTH_STEP_TIMEOUT_MIN_MS) ||
	     json_integer_value(a->dhchap_step_timeout_ms) > AUTH_STEP_TIMEOUT_MAX_MS)) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS,
			      "dhchap_step_timeout_ms must be 0 (from the keep-alive timeout) or "
			      "%u..%u",
			      AUTH_STEP_TIMEOUT_MIN_MS, AUTH_STEP_TIMEOUT_MAX_MS);
		return;
	}
	if (nvmf_auth_set_algorithms(a->dhchap_digests ? d : NULL, (unsigned)nd,
				     a->dhchap_dhgroups ? g : NULL, (unsigned)ng, err,
				     sizeof(err)) < 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "%s", err);
		return;
	}
	/* checked above: cannot fail */
	if (a->dhchap_step_timeout_ms)
		(void)nvmf_auth_set_step_timeout(
			(uint32_t)json_integer_value(a->dhchap_step_timeout_ms), err, sizeof(err));
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("nvmf_set_config", rpc_nvmf_set_config, struct rpc_set_config,
		 set_config_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Target-wide settings: the hashes and DH groups DH-HMAC-CHAP may use and its "
		 "per-step timeout (apply to transactions that start afterwards).")

static void
rpc_nvmf_get_config(struct nvl_rpc_request *req, void *args)
{
	(void)args;
	nvl_rpc_result(req, nvmf_auth_config_json());
}
NVL_RPC_REGISTER_NOARGS("nvmf_get_config", rpc_nvmf_get_config, NVL_RPC_RUNTIME,
			"The settings nvmf_set_config changes, as they are now.")

struct rpc_set_keys {
	const char *nqn;
	const char *host;
	const char *dhchap_key;
	const char *dhchap_ctrlr_key;
	const char *tgt_name;
};

static const struct nvl_rpc_param set_keys_params[] = {
	NVL_RPC_PARAM(struct rpc_set_keys, nqn, NVL_RPC_T_STR, true, "subsystem NQN"),
	NVL_RPC_PARAM(struct rpc_set_keys, host, NVL_RPC_T_STR, true,
		      "host NQN (added with nvmf_subsystem_add_host)"),
	NVL_RPC_PARAM(struct rpc_set_keys, dhchap_key, NVL_RPC_T_STR, false,
		      "keyring key the host proves itself with (absent: no authentication for "
		      "new connections)"),
	NVL_RPC_PARAM(struct rpc_set_keys, dhchap_ctrlr_key, NVL_RPC_T_STR, false,
		      "keyring key the controller proves itself with (bidirectional)"),
	NVL_RPC_PARAM(struct rpc_set_keys, tgt_name, NVL_RPC_T_STR, false,
		      "SPDK compatibility; only the default target exists"),
};

static void
rpc_nvmf_subsystem_set_keys(struct nvl_rpc_request *req, struct rpc_set_keys *a)
{
	struct nvl_subsys *s = nvl_subsys_find(a->nqn);
	struct nvmf_host *h, old;
	char err[256];
	int rc;

	if (s == NULL || s->discovery) {
		nvl_rpc_error(req, -ENODEV, "no such subsystem '%s'", a->nqn);
		return;
	}
	h = nvmf_host_find(s, a->host);
	if (h == NULL) {
		nvl_rpc_error(req, -ENOENT, "host %s is not on %s's list", a->host, s->nqn);
		return;
	}
	old = *h;
	pthread_mutex_lock(&g_nvmf.lock);
	/* take references on the new keys first (the old ones stay until it worked) */
	if (old.dhchap_key[0])
		nvl_keyring_get(old.dhchap_key);
	if (old.dhchap_ctrlr_key[0])
		nvl_keyring_get(old.dhchap_ctrlr_key);
	rc = nvmf_auth_host_set_keys(h, a->dhchap_key, a->dhchap_ctrlr_key, err, sizeof(err));
	if (rc == 0)
		rc = nvmf_auth_host_keys_changed(s, h, err, sizeof(err));
	if (rc < 0) {
		nvmf_auth_host_clear(h);
		memcpy(h->dhchap_key, old.dhchap_key, sizeof(h->dhchap_key));
		memcpy(h->dhchap_ctrlr_key, old.dhchap_ctrlr_key, sizeof(h->dhchap_ctrlr_key));
	} else {
		nvmf_auth_host_clear(&old);
	}
	pthread_mutex_unlock(&g_nvmf.lock);
	if (rc < 0) {
		nvl_rpc_error(req, rc == -ENOENT ? -ENOENT : NVL_RPC_INVALID_PARAMS, "%s", err);
		return;
	}
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("nvmf_subsystem_set_keys", rpc_nvmf_subsystem_set_keys, struct rpc_set_keys,
		 set_keys_params, NVL_RPC_RUNTIME,
		 "Change a host's DH-HMAC-CHAP keys: new connections and re-authentications of "
		 "connected controllers use them.")
