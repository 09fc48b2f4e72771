/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * \file
 * Minimal JSON-RPC 2.0 client for nvlendd's Unix socket (part of libnvlend).
 * Blocking, one call at a time per handle; not thread-safe per handle.
 * Values are jansson json_t objects. The daemon closes a connection left
 * idle longer than its --rpc-idle-timeout (default 10 min): a later call on
 * it returns -EPIPE, and the caller reconnects.
 */
#ifndef NVLEND_RPC_CLIENT_H
#define NVLEND_RPC_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct nvl_rpc_client;

/**
 * Connect to a daemon.
 * \param path socket path; NULL = $NVLEND_SOCKET or the default path.
 * \param timeout_ms per-call timeout (0 = 30 s).
 * \return 0, -ENOENT (no socket there: daemon not running), -ECONNREFUSED
 *         (stale socket), -EPERM (the default path holds a socket of another
 *         user, or something that is not a socket: not trusted),
 *         -ENAMETOOLONG, -ENOMEM, or another -errno.
 */
int nvl_rpc_client_connect(const char *path, int timeout_ms, struct nvl_rpc_client **out);

/** Close and free. NULL is ignored. */
void nvl_rpc_client_close(struct nvl_rpc_client *c);

/**
 * Call method with params (borrowed; may be NULL).
 * On success *result holds the result (new reference). If the daemon
 * answered with an error object, returns -EREMOTEIO and *error holds it (new
 * reference, {code, message}).
 * \return 0, -EREMOTEIO (error object), -ETIMEDOUT, -EPIPE (daemon went
 *         away), -EPROTO (malformed answer), -ENOMEM.
 */
int nvl_rpc_client_call(struct nvl_rpc_client *c, const char *method, json_t *params,
			json_t **result, json_t **error);

/** The path actually used (after defaults). */
const char *nvl_rpc_client_path(const struct nvl_rpc_client *c);

/** Default socket path: $NVLEND_SOCKET, else nvlendd's default
 *  (/run/nvlend/nvlend.sock for root, else $XDG_RUNTIME_DIR/nvlend.sock, else
 *  /tmp/nvlend-UID/nvlend.sock). */
const char *nvl_rpc_default_socket(char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
