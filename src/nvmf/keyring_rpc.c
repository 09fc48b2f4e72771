/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Keyring RPCs with SPDK's names and parameters (keyring_file_add_key,
 * keyring_file_remove_key, keyring_get_keys) and the "keyring" subsystem,
 * whose save_config calls are replayed before "nvmf" (host entries name
 * keys). Reactor 0 only.
 */
#include "nvmf/keyring.h"
#include "app/app.h"
#include "rpc/rpc.h"

#include <errno.h>
#include <string.h>

struct rpc_key {
	const char *name;
	const char *path;
};

static const struct nvl_rpc_param add_key_params[] = {
	NVL_RPC_PARAM(struct rpc_key, name, NVL_RPC_T_STR, true,
		      "key name (letters, digits, ._-:), as nvmf_subsystem_add_host's dhchap_key "
		      "and dhchap_ctrlr_key refer to it"),
	NVL_RPC_PARAM(struct rpc_key, path, NVL_RPC_T_STR, true,
		      "absolute path of a file holding one DHHC-1 secret (nvme gen-dhchap-key); "
		      "owned by the daemon's user, no group/other access (mode 0600 or 0400); "
		      "read again at every use"),
};

static void
rpc_keyring_file_add_key(struct nvl_rpc_request *req, struct rpc_key *a)
{
	char err[512] = "";
	int rc = nvl_keyring_add(a->name, a->path, err, sizeof(err));

	if (rc == -EINVAL || rc == -EPERM) {
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "%s", err);
		return;
	}
	if (rc < 0) {
		if (err[0])
			nvl_rpc_error(req, rc, "%s", err);
		else
			nvl_rpc_error_errno(req, rc, "cannot add the key");
		return;
	}
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("keyring_file_add_key", rpc_keyring_file_add_key, struct rpc_key, add_key_params,
		 NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Add a named DH-HMAC-CHAP key kept in a file (the daemon keeps the name and path, "
		 "not the secret).")

static const struct nvl_rpc_param remove_key_params[] = {
	NVL_RPC_PARAM(struct rpc_key, name, NVL_RPC_T_STR, true, "key name"),
};

static void
rpc_keyring_file_remove_key(struct nvl_rpc_request *req, struct rpc_key *a)
{
	int rc = nvl_keyring_remove(a->name);

	if (rc == -ENOENT) {
		nvl_rpc_error(req, -ENOENT, "no key %s", a->name);
		return;
	}
	if (rc == -EBUSY) {
		nvl_rpc_error(req, -EBUSY,
			      "key %s is used by a host entry (nvmf_subsystem_remove_host or "
			      "nvmf_subsystem_set_keys first)",
			      a->name);
		return;
	}
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER("keyring_file_remove_key", rpc_keyring_file_remove_key, struct rpc_key,
		 remove_key_params, NVL_RPC_RUNTIME,
		 "Remove a key from the keyring (refused while a host entry uses it).")

static void
rpc_keyring_get_keys(struct nvl_rpc_request *req, void *args)
{
	(void)args;
	nvl_rpc_result(req, nvl_keyring_list());
}
NVL_RPC_REGISTER_NOARGS("keyring_get_keys", rpc_keyring_get_keys, NVL_RPC_RUNTIME,
			"Keys of the keyring: name, path, how many host entries use each.")

static void
keyring_fini(nvl_app_done_fn done)
{
	nvl_keyring_clear();
	done();
}

static struct nvl_subsystem g_keyring_subsys = {
	.name = "keyring",
	.order = 8, /* before "nvmf" (30): host entries name keys on replay */
	.fini = keyring_fini,
	.write_config = nvl_keyring_write_config,
};
NVL_SUBSYSTEM_REGISTER(g_keyring_subsys)
