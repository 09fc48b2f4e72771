/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * \file
 * NVMe/TCP transport binding wire formats (NVM Express TCP Transport
 * Specification 1.0, section 3.6 "PDU formats"). Every PDU starts with the
 * 8-byte common header; hlen is the length of the PDU-specific header
 * (common header included), pdo the offset of the data from the start of the
 * PDU, plen the length of the whole PDU on the wire (headers, digests,
 * padding and data). Digests are CRC32C (Castagnoli), stored little-endian.
 * Little-endian host assumed (checked in nvme.h).
 */
#ifndef NVLEND_SPEC_NVME_TCP_H
#define NVLEND_SPEC_NVME_TCP_H

#include <stdint.h>

#include "nvlend/spec/nvme.h"

#define NVL_TCP_DISCOVERY_PORT 8009     /* well-known discovery port (IANA) */
#define NVL_TCP_IO_PORT 4420
#define NVL_TCP_DIGEST_LEN 4
#define NVL_TCP_PFV_1_0 0x0000
#define NVL_TCP_MIN_MAXH2CDATA 4096     /* 3.6.2.3: MAXH2CDATA >= 4096 */
#define NVL_TCP_MAX_HPDA 31             /* 0's based dwords: up to 128-byte alignment */
#define NVL_TCP_TERM_MAX_DATA 128       /* 3.6.2.4: at most 128 bytes of the bad header */

/* PDU types (3.6.1, Figure 15) */
enum nvl_tcp_pdu_type {
	NVL_TCP_PDU_ICREQ = 0x00,
	NVL_TCP_PDU_ICRESP = 0x01,
	NVL_TCP_PDU_H2C_TERM = 0x02,
	NVL_TCP_PDU_C2H_TERM = 0x03,
	NVL_TCP_PDU_CAPSULE_CMD = 0x04,
	NVL_TCP_PDU_CAPSULE_RESP = 0x05,
	NVL_TCP_PDU_H2C_DATA = 0x06,
	NVL_TCP_PDU_C2H_DATA = 0x07,
	NVL_TCP_PDU_R2T = 0x09,
};

/* Common header flags (3.6.1) */
#define NVL_TCP_F_HDGSTF 0x01           /**< header digest present */
#define NVL_TCP_F_DDGSTF 0x02           /**< data digest present */
#define NVL_TCP_F_DATA_LAST 0x04        /**< H2CData/C2HData: last PDU of the transfer */
#define NVL_TCP_F_DATA_SUCCESS 0x08     /**< C2HData: command done, no response capsule */

/* ICReq/ICResp DGST field */
#define NVL_TCP_DGST_HDR 0x01
#define NVL_TCP_DGST_DATA 0x02

/* Fatal error status of C2HTermReq/H2CTermReq (3.6.2.4, Figure 20) */
enum nvl_tcp_fes {
	NVL_TCP_FES_INVALID_HEADER_FIELD = 0x01,
	NVL_TCP_FES_PDU_SEQUENCE_ERROR = 0x02,
	NVL_TCP_FES_HDGST_ERROR = 0x03,
	NVL_TCP_FES_DATA_OUT_OF_RANGE = 0x04,
	NVL_TCP_FES_DATA_LIMIT_EXCEEDED = 0x05, /* also "R2T limit exceeded" */
	NVL_TCP_FES_UNSUPPORTED_PARAMETER = 0x06,
};

/** Common header (3.6.1, Figure 14): 8 bytes. */
struct nvl_tcp_common_hdr {
	uint8_t pdu_type;
	uint8_t flags;
	uint8_t hlen;
	uint8_t pdo;
	uint32_t plen;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_tcp_common_hdr) == 8, "common header");

/** ICReq (3.6.2.2, Figure 16): 128 bytes. */
struct nvl_tcp_icreq {
	struct nvl_tcp_common_hdr ch;
	uint16_t pfv;
	uint8_t hpda;           /**< host PDU data alignment, 0's based dwords */
	uint8_t dgst;           /**< NVL_TCP_DGST_* requested */
	uint32_t maxr2t;        /**< outstanding R2Ts per command, 0's based */
	uint8_t rsvd16[112];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_tcp_icreq) == 128, "ICReq");

/** ICResp (3.6.2.3, Figure 17): 128 bytes. */
struct nvl_tcp_icresp {
	struct nvl_tcp_common_hdr ch;
	uint16_t pfv;
	uint8_t cpda;           /**< controller PDU data alignment, 0's based dwords */
	uint8_t dgst;           /**< NVL_TCP_DGST_* enabled */
	uint32_t maxh2cdata;    /**< largest H2CData payload, bytes */
	uint8_t rsvd16[112];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_tcp_icresp) == 128, "ICResp");

/** H2CTermReq / C2HTermReq header (3.6.2.4/5, Figure 19): 24 bytes, then
 *  up to 128 bytes of the PDU header that caused the error. */
struct nvl_tcp_term_req {
	struct nvl_tcp_common_hdr ch;
	uint16_t fes;
	uint32_t fei;           /**< field offset or digest, depending on fes */
	uint8_t rsvd14[10];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_tcp_term_req) == 24, "TermReq");
_Static_assert(__builtin_offsetof(struct nvl_tcp_term_req, fei) == 10, "FEI offset");

/** CapsuleCmd (3.6.2.6, Figure 21): common header + SQE = 72 bytes, then
 *  optional padding and in-capsule data. */
struct nvl_tcp_cmd {
	struct nvl_tcp_common_hdr ch;
	struct nvl_nvme_cmd ccsqe;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_tcp_cmd) == 72, "CapsuleCmd");

/** CapsuleResp (3.6.2.7, Figure 22): common header + CQE = 24 bytes. */
struct nvl_tcp_resp {
	struct nvl_tcp_common_hdr ch;
	struct nvl_nvme_cpl rccqe;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_tcp_resp) == 24, "CapsuleResp");

/** H2CData / C2HData (3.6.2.8/9, Figures 23/24): 24 bytes. ttag is
 *  reserved in C2HData. */
struct nvl_tcp_data {
	struct nvl_tcp_common_hdr ch;
	uint16_t cccid;         /**< command capsule CID */
	uint16_t ttag;          /**< H2C: the R2T's transfer tag */
	uint32_t datao;         /**< offset from the start of the command's data */
	uint32_t datal;         /**< bytes in this PDU */
	uint8_t rsvd20[4];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_tcp_data) == 24, "H2CData/C2HData");

/** R2T (3.6.2.10, Figure 25): 24 bytes. */
struct nvl_tcp_r2t {
	struct nvl_tcp_common_hdr ch;
	uint16_t cccid;
	uint16_t ttag;
	uint32_t r2to;          /**< offset of the requested data */
	uint32_t r2tl;          /**< bytes requested */
	uint8_t rsvd20[4];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_tcp_r2t) == 24, "R2T");

#define NVL_TCP_MAX_HLEN 128    /* ICReq/ICResp; every other header is shorter */

/* SGL descriptor types a CapsuleCmd uses (NVMe/TCP 3.3): in-capsule data is
 * a Data Block with the Offset subtype, data moved by H2CData/C2HData a
 * Transport Data Block with the Transport-specific subtype. */
#define NVL_TCP_SGL_ICD ((NVL_NVME_SGL_TYPE_DATA_BLOCK << 4) | NVL_NVME_SGL_SUBTYPE_OFFSET)
#define NVL_TCP_SGL_TRANSPORT                                                                      \
	((NVL_NVME_SGL_TYPE_TRANSPORT_DATA_BLOCK << 4) | NVL_NVME_SGL_SUBTYPE_TRANSPORT)

/* Fabrics Connect CATTR bit 2: the host disables SQ flow control (then the
 * controller may use C2HData SUCCESS and need not report SQHD). */
#define NVL_NVMF_CATTR_DISABLE_SQFLOW 0x04

#endif
