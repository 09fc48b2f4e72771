/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/RDMA binding helpers shared by the target transport
 * (src/transport/rdma*.c) and an initiator (the encoders, for the host
 * side that is still to be written): the RDMA_CM private data of connection requests,
 * accepts and rejects (encode, decode, validate), and the data descriptor of
 * a command capsule (which of none / in-capsule / keyed it is, with its
 * address, length and key, validated against what the binding allows), and
 * the encoders the host uses to fill one in. Pure functions over caller
 * memory: no verbs, no allocation, any thread.
 */
#ifndef NVL_PROTO_NVME_RDMA_H
#define NVL_PROTO_NVME_RDMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvlend/spec/nvme_rdma.h"

/** Limits the controller applies to a connection request. */
struct nvl_rdma_cm_limits {
	uint32_t max_aq_entries;   /**< admin queue: most entries (HSQSIZE + 1) */
	uint32_t max_io_entries;   /**< I/O queues */
	uint32_t max_qid;          /**< highest I/O queue id */
};

/**
 * Decode and check the private data of an RDMA_CM_REQUEST (controller side).
 * \return 0 with *out filled, or -EINVAL with *sts the reject status to send
 *         (length, record format, queue id, queue sizes).
 */
int nvl_rdma_cm_req_decode(const void *pd, size_t len, const struct nvl_rdma_cm_limits *lim,
			   struct nvl_rdma_cm_req *out, uint16_t *sts);
/** Fill the private data of a connection request (host side). */
void nvl_rdma_cm_req_encode(struct nvl_rdma_cm_req *r, uint16_t qid, uint16_t entries,
			    uint16_t cntlid);
/** Fill the accept's private data (controller side). */
void nvl_rdma_cm_rep_encode(struct nvl_rdma_cm_rep *r, uint16_t crqsize);
/** Check an accept's private data (host side): record format and a crqsize
 *  that holds the entries asked for (a peer may send none: accepted).
 *  \return 0 or -EPROTO. */
int nvl_rdma_cm_rep_decode(const void *pd, size_t len, uint16_t entries);
void nvl_rdma_cm_rej_encode(struct nvl_rdma_cm_rej *r, uint16_t sts);
/** The status of a reject's private data, 0 when there is none to read. */
uint16_t nvl_rdma_cm_rej_decode(const void *pd, size_t len);
/** Human-readable reject status, for logs. */
const char *nvl_rdma_cm_status_str(uint16_t sts);

enum nvl_rdma_sgl_kind {
	NVL_RDMA_SGL_NONE = 0,     /**< no data (keyed descriptor of length 0) */
	NVL_RDMA_SGL_INCAPSULE,    /**< data in the capsule after the SQE */
	NVL_RDMA_SGL_KEYED,        /**< data in host memory: RDMA READ / WRITE */
};

/** A command's data descriptor, decoded. */
struct nvl_rdma_sgl {
	enum nvl_rdma_sgl_kind kind;
	uint64_t addr;             /**< keyed: host address; in-capsule: offset in the data */
	uint32_t len;
	uint32_t key;              /**< keyed: the host's rkey */
	bool invalidate;           /**< keyed subtype Fh: answer with Send with Invalidate */
};

/**
 * Decode SGL1 of a command capsule that arrived with icd_len bytes of
 * in-capsule data (controller side).
 * \return 0, or the NVMe status (SCT << 8 | SC) to complete the command with:
 *         PRP data pointer (Invalid Field), a descriptor type other than
 *         keyed / in-capsule (SGL Descriptor Type Invalid), an in-capsule
 *         range outside the data that came (SGL Offset Invalid / Data SGL
 *         Length Invalid), in-capsule data with a keyed descriptor (Data
 *         SGL Length Invalid).
 */
uint16_t nvl_rdma_sgl_decode(const struct nvl_nvme_cmd *cmd, uint32_t icd_len,
			     struct nvl_rdma_sgl *out);

/** Host side: point cmd's SGL1 at registered memory (len 0: no data). */
void nvl_rdma_sgl_set_keyed(struct nvl_nvme_cmd *cmd, uint64_t addr, uint32_t len, uint32_t key);
/** Host side: len bytes of in-capsule data at offset 0. */
void nvl_rdma_sgl_set_icd(struct nvl_nvme_cmd *cmd, uint32_t len);

#endif
