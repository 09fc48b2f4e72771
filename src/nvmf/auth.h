/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe in-band authentication, target side: the DH-HMAC-CHAP transaction
 * state machine of each queue (NVMe Base 2.0 section 8.13; the message
 * formats and computations are src/proto/nvme_auth.c).
 *
 * A host entry with a dhchap_key (nvmf_subsystem_add_host) makes its
 * controllers require authentication: Connect answers with AUTHREQ.ATR, and
 * until the queue's transaction succeeded the controller runs nothing on it
 * but Authentication Send/Receive (others: Authentication Required). The
 * controller picks the strongest hash and DH group the host offers among
 * those allowed (nvmf_set_config dhchap_digests / dhchap_dhgroups; default
 * all: SHA-256/384/512, null and ffdhe2048 .. ffdhe8192); with a
 * dhchap_ctrlr_key it proves itself too when the host asks (bidirectional).
 *
 * Which queues: the admin queue always (its state belongs to the controller,
 * created at Connect); over NVMe/TCP every I/O queue is a connection of its
 * own and authenticates too (the transport creates its state at the I/O
 * queue's Connect). shm I/O queues are made by admin commands of an
 * authenticated admin queue and share its state.
 *
 * Failures: a wrong response, an unusable proposal, a malformed or
 * out-of-order message, or a transaction that stalls longer than the step
 * timeout (the keep-alive timeout clamped to 30..120 s) fails the queue: the
 * next Authentication Receive returns AUTH_Failure1 with the reason, every
 * other command is refused from then on, and the queue is closed
 * (nvl_nvmf_auth_expired() tells the periodic checks): for the admin queue
 * that is the controller's teardown; a TCP I/O queue closes alone, since a
 * peer that knows a controller's ID, host NQN and host ID may connect one to
 * someone else's controller and must not be able to tear that down. The
 * host's AUTH_Failure2 (it did not accept the controller's response) does
 * the same.
 * Re-authentication (a new AUTH_Negotiate on an authenticated queue) is
 * allowed; the queue stays usable while it runs, and its failure tears the
 * controller down too. The keep-alive timeout does not run while the admin
 * queue has not authenticated (the host cannot send Keep Alive before): the
 * step timeout is in charge, and the keep-alive period starts at success.
 *
 * Threading: a queue's state is used on the queue's reactor only (admin:
 * the controller's home; TCP I/O queues: their reactor). The keys a
 * transaction uses are a reference-counted snapshot taken at AUTH_Negotiate
 * from the controller (under g_nvmf.lock); key files are read at Connect and
 * when nvmf_subsystem_set_keys changes the keys.
 */
#ifndef NVL_NVMF_AUTH_H
#define NVL_NVMF_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "nvmf/nvmf.h"

/**
 * The authentication state of I/O queue qid of c (a transport whose I/O
 * queues connect on their own: TCP). Only for controllers that require
 * authentication (c->nvme.auth_required). Call on reactor 0 at the queue's
 * Connect; use on the queue's reactor afterwards.
 * \return 0, -EINVAL (c requires no authentication), -ENOMEM.
 */
int nvl_nvmf_auth_queue_create(struct nvl_nvmf_ctrlr *c, uint16_t qid,
			       struct nvl_nvme_auth **out);
/** Free a queue's authentication state (the queue's reactor). NULL ignored. */
void nvl_nvmf_auth_queue_destroy(struct nvl_nvme_auth *a);

/**
 * Periodic check (the queue's reactor): true when the queue's controller
 * must be torn down because the authentication failed (once the Failure1 had
 * time to reach the host) or did not complete within the step timeout; *why
 * is then a static string for the log.
 */
bool nvl_nvmf_auth_expired(struct nvl_nvme_auth *a, uint64_t now_ns, const char **why);

/** {"state", "authenticated", and after a success "digest", "dhgroup",
 *  "bidirectional"} of a queue, as nvmf_subsystem_get_controllers shows it
 *  (a racy snapshot when read from another reactor). */
json_t *nvl_nvmf_auth_json(const struct nvl_nvme_auth *a);

/** Has the queue authenticated (a transaction succeeded and none failed
 *  since)? False for NULL. */
bool nvl_nvmf_auth_authenticated(const struct nvl_nvme_auth *a);

/** A queue whose host authenticated to a previous worker comes back (its
 *  transport kept the fact): it is authenticated, with no transaction
 *  running. Re-authentication works as usual. */
void nvl_nvmf_auth_restore(struct nvl_nvme_auth *a);

/** The AUTHREQ bits of a Connect response for a queue of c (ATR or 0). */
uint32_t nvl_nvmf_auth_connect_flags(const struct nvl_nvmf_ctrlr *c);

#endif
