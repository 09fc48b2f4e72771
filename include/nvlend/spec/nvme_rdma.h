/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * \file
 * NVMe/RDMA transport binding wire formats (NVM Express RDMA Transport
 * Specification 1.0b; NVMe over Fabrics 1.1 section 7.3 for the RDMA_CM
 * private data). A queue pair is one reliable-connected RDMA queue pair set
 * up with the RDMA connection manager: the host's RDMA_CM_REQUEST carries
 * struct nvl_rdma_cm_req, the controller answers RDMA_CM_ACCEPT with struct
 * nvl_rdma_cm_rep or RDMA_CM_REJECT with struct nvl_rdma_cm_rej. Command
 * capsules (the 64-byte SQE, then any in-capsule data) travel by RDMA SEND,
 * response capsules (the 16-byte CQE) by RDMA SEND the other way; command
 * data moves with RDMA READ (host to controller) and RDMA WRITE (controller
 * to host) against the host's memory named by a keyed SGL data block
 * descriptor, or inside the capsule (an SGL data block descriptor with the
 * offset subtype). Little-endian host assumed (checked in nvme.h).
 */
#ifndef NVLEND_SPEC_NVME_RDMA_H
#define NVLEND_SPEC_NVME_RDMA_H

#include <stdint.h>

#include "nvlend/spec/nvme.h"

#define NVL_RDMA_IO_PORT 4420           /**< the NVMe-oF port (IANA), also used for discovery */
#define NVL_RDMA_CM_FMT_1_0 0x0000      /**< record format of the private data */
#define NVL_RDMA_AQ_DEPTH 32            /**< admin queue entries Linux hosts ask for */

/** RDMA_CM_REQUEST private data (NVMe-oF 1.1 Figure 50): 32 bytes. */
struct nvl_rdma_cm_req {
	uint16_t recfmt;        /**< NVL_RDMA_CM_FMT_1_0 */
	uint16_t qid;           /**< 0 = admin queue */
	uint16_t hrqsize;       /**< host receive queue size: response capsules it can take (1's based) */
	uint16_t hsqsize;       /**< host send queue size, 0's based (the queue's SQSIZE) */
	uint16_t cntlid;        /**< the controller an I/O queue joins (0xffff admin) */
	uint8_t rsvd[22];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_rdma_cm_req) == 32, "RDMA CM request private data");

/** RDMA_CM_ACCEPT private data (Figure 51): 32 bytes. */
struct nvl_rdma_cm_rep {
	uint16_t recfmt;
	uint16_t crqsize;       /**< controller receive queue size: command capsules it takes */
	uint8_t rsvd[28];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_rdma_cm_rep) == 32, "RDMA CM accept private data");

/** RDMA_CM_REJECT private data (Figure 52). */
struct nvl_rdma_cm_rej {
	uint16_t recfmt;
	uint16_t sts;           /**< enum nvl_rdma_cm_status */
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_rdma_cm_rej) == 4, "RDMA CM reject private data");

/** RDMA_CM_REJECT status (Figure 53). */
enum nvl_rdma_cm_status {
	NVL_RDMA_CM_INVALID_LEN = 0x01,      /**< private data too short */
	NVL_RDMA_CM_INVALID_RECFMT = 0x02,
	NVL_RDMA_CM_INVALID_QID = 0x03,
	NVL_RDMA_CM_INVALID_HSQSIZE = 0x04,
	NVL_RDMA_CM_INVALID_HRQSIZE = 0x05,
	NVL_RDMA_CM_NO_RSC = 0x06,           /**< no resources (queues, memory) */
	NVL_RDMA_CM_INVALID_IRD = 0x07,
	NVL_RDMA_CM_INVALID_ORD = 0x08,
	NVL_RDMA_CM_INVALID_CNTLID = 0x09,
};

/*
 * SGL descriptors of an RDMA command (NVMe Base 4.3.2; RDMA Transport 1.0b
 * section 3.3): byte 15 of SGL1 is the type (bits 7:4) and subtype (3:0).
 *   - keyed SGL data block (type 4h): bytes 0-7 address, 8-10 length (24
 *     bits), 11-14 key (the host's rkey); subtype 0h address, Fh address
 *     with the controller asked to invalidate the key (Send with Invalidate);
 *   - SGL data block (type 0h) with subtype offset (1h): in-capsule data at
 *     the given offset from the start of the capsule's data.
 * A command without data carries a keyed descriptor of length 0.
 */
#define NVL_RDMA_SGL_KEYED_ADDR ((NVL_NVME_SGL_TYPE_KEYED_DATA_BLOCK << 4) | 0x0)
#define NVL_RDMA_SGL_KEYED_INV ((NVL_NVME_SGL_TYPE_KEYED_DATA_BLOCK << 4) | 0xf)
#define NVL_RDMA_SGL_ICD ((NVL_NVME_SGL_TYPE_DATA_BLOCK << 4) | NVL_NVME_SGL_SUBTYPE_OFFSET)
#define NVL_RDMA_KEYED_MAX_LEN 0xffffffu     /**< 24-bit length of a keyed descriptor */

/** A keyed SGL data block descriptor as it sits in the SQE (16 bytes). */
struct nvl_rdma_keyed_sgl {
	uint64_t addr;
	uint8_t length[3];      /**< little endian, 24 bits */
	uint32_t key;
	uint8_t type;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_rdma_keyed_sgl) == 16, "keyed SGL descriptor");

/*
 * Transport specific address subtype of a discovery log entry for RDMA
 * (RDMA Transport 1.0b Figure 3): bytes 0 QP type, 1 provider type, 2
 * connection management service, 8-9 partition key.
 */
#define NVL_RDMA_TSAS_QPTYPE_CONNECTED 1
#define NVL_RDMA_TSAS_PRTYPE_NOT_SPECIFIED 1
#define NVL_RDMA_TSAS_CMS_RDMA_CM 1

#endif
