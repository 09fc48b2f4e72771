/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The keyring: named DH-HMAC-CHAP secrets kept in files, as SPDK's file
 * keyring does (keyring_file_add_key {name, path}). The daemon remembers the
 * name and the path, never the secret: the file is read when the key is
 * used (at a host's Connect), so a key is rotated by rewriting its file, and
 * save_config writes names and paths only. A key file is accepted only if
 * its path is absolute, it is a regular file owned by the daemon's user and
 * neither group nor others may access it (mode & 077 == 0) — checked when
 * the key is added and every time it is read.
 *
 * Host entries refer to keys by name (nvmf_subsystem_add_host dhchap_key,
 * dhchap_ctrlr_key); a key in use by a host entry cannot be removed.
 *
 * Threading: changed on reactor 0 (RPC); read from any reactor at Connect.
 * Everything is under the keyring's own mutex (taken after g_nvmf.lock when
 * both are held).
 */
#ifndef NVL_NVMF_KEYRING_H
#define NVL_NVMF_KEYRING_H

#include <jansson.h>
#include <stddef.h>

#include "proto/nvme_auth.h"

#define NVL_KEYRING_NAME_MAX 64   /**< bytes of a key name, NUL included */
#define NVL_KEYRING_MAX_KEYS 1024

/**
 * Add key `name` whose secret is in the file at path. The file is checked
 * and parsed now (a DHHC-1 secret, as nvme gen-dhchap-key writes it).
 * \return 0; -EEXIST (name taken), -EINVAL (bad name, relative path, the file
 *         holds no valid secret: err says why), -EPERM (not a regular file of
 *         ours with mode & 077 == 0), -ENOSPC (too many keys), -ENOMEM, or the
 *         -errno of stat/open/read.
 */
int nvl_keyring_add(const char *name, const char *path, char *err, size_t errlen);
/** The same for a key a service makes and removes itself (owner, e.g.
 *  "lend"): keyring_get_keys shows the owner; save_config leaves it out. */
int nvl_keyring_add_owned(const char *name, const char *path, const char *owner, char *err,
			  size_t errlen);
/** Remove key name. \return 0, -ENOENT, -EBUSY (a host entry uses it). */
int nvl_keyring_remove(const char *name);
/** Read and parse key name's file now (the same checks as at add).
 *  \return 0 (secret in *out, wipe it after use), -ENOENT (no such key), or
 *  what nvl_keyring_add returns for the file. */
int nvl_keyring_load(const char *name, struct nvl_dhchap_key *out);
/** A host entry starts (get) or stops (put) using key name.
 *  \return 0, -ENOENT. */
int nvl_keyring_get(const char *name);
void nvl_keyring_put(const char *name);
/** [{"name", "path", "module": "keyring_file", "users"}] (keyring_get_keys). */
json_t *nvl_keyring_list(void);
/** Append a keyring_file_add_key call per key (names and paths only). */
void nvl_keyring_write_config(json_t *calls);
/** Drop every key (shutdown). */
void nvl_keyring_clear(void);

#endif
