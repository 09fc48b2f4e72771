/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inside src/host: what the NVMe/RDMA host transport (host_rdma.c) makes of
 * everything the target sends it, as pure functions over caller memory (no
 * verbs, no allocation), so that a fuzz target (tests/fuzz/rdma_host) and
 * unit tests drive them without an RDMA device: the RDMA_CM reject and
 * accept private data, the Fabrics Connect response, response capsules
 * received by RDMA SEND, and the command slots that pair each response
 * with the completion of the SEND that carried its command.
 *
 * A command slot is free again only when both its response arrived and its
 * SEND completed: the capsule buffer may be reused then, and the command id
 * the core hands out again can no longer meet a late completion of the old
 * command. Threads: the queue's owner (one at a time), no locks.
 */
#ifndef NVL_HOST_RDMA_H
#define NVL_HOST_RDMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvlend/spec/nvme.h"

/** One command slot of an RDMA queue (wire cid = slot index). */
struct host_rdma_slot {
	bool busy;                 /* a command was posted in it */
	bool send_done;            /* its SEND completed */
	bool rsp_done;             /* its response capsule arrived (cpl holds it) */
	struct nvl_nvme_cpl cpl;
	void *arg;                 /* the transport's (admin request, bounce) */
	void *bounce;              /* admin: window copy of the caller's data, or NULL */
};

enum host_rdma_ev {
	HOST_RDMA_EV_PENDING = 0,  /* the slot waits for the other half */
	HOST_RDMA_EV_COMPLETE,     /* both halves came: deliver slots[*idx].cpl, then free it */
};

/** Take slot idx for a new command. \return 0, -EBUSY (in use), -EINVAL (range). */
int host_rdma_slot_take(struct host_rdma_slot *slots, uint32_t n, uint32_t idx);
/** Free slot idx (after delivery, or when the queue dies). */
void host_rdma_slot_free(struct host_rdma_slot *slots, uint32_t n, uint32_t idx);

/**
 * The SEND of slot idx completed.
 * \return HOST_RDMA_EV_COMPLETE / _PENDING, or -EPROTO (no command there, or
 *         its SEND completed twice: our own bug or a broken device).
 */
int host_rdma_slot_send_done(struct host_rdma_slot *slots, uint32_t n, uint32_t idx);

/**
 * A response capsule of len bytes arrived: find its slot by the CQE's
 * command id and keep the CQE there.
 * \return HOST_RDMA_EV_COMPLETE / _PENDING with *idx set, or -EPROTO with
 *         why filled: not exactly a 16-byte CQE, a command id outside the
 *         queue, a response for a slot with no command, a second response.
 */
int host_rdma_rsp_recv(struct host_rdma_slot *slots, uint32_t n, const void *buf, uint32_t len,
		       uint32_t *idx, char *why, size_t whylen);

/**
 * What an RDMA_CM_EVENT_REJECTED means for the connect, in nvl_strerror()'s
 * vocabulary. cm_status is the event's status (the CM's reject reason),
 * pd/len its private data (NVMe-oF 1.1 Figure 52 when the controller
 * refused the queue itself).
 * \return -ECONNREFUSED (no private data: nothing listens on that port, or a
 *         CM refused before the controller saw the request), -EBUSY (the
 *         controller has no resources), -EREMOTEIO (any other NVMe/RDMA
 *         reject status); why says which, with the status.
 */
int host_rdma_reject_errno(int cm_status, const void *pd, size_t len, uint16_t qid, char *why,
			   size_t whylen);

/**
 * The accept's private data (Figure 51) for a request of entries.
 * \return 0 or -EPROTO (record format, a CRQSIZE smaller than asked).
 */
int host_rdma_accept_check(const void *pd, size_t len, uint16_t entries, char *why,
			   size_t whylen);

/**
 * The Fabrics Connect response of queue qid.
 * \return 0 with *cntlid set, or -EACCES (host not allowed), -ENODEV (no
 *         such subsystem), -EADDRNOTAVAIL (not offered here), -EBUSY,
 *         -EOPNOTSUPP (the controller requires DH-HMAC-CHAP, which this
 *         initiator does not do), -EREMOTEIO (other statuses), -EPROTO (a
 *         controller id that cannot be, a different one for an I/O queue);
 *         why filled.
 */
int host_rdma_connect_result(const struct nvl_nvme_cpl *cpl, uint16_t qid, uint16_t want_cntlid,
			     const char *subnqn, const char *hostnqn, uint16_t *cntlid,
			     char *why, size_t whylen);

#endif
