/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/RDMA binding helpers (proto/nvme_rdma.h): RDMA_CM private data and
 * the data descriptor of command capsules. Pure functions, any thread.
 */
#include "proto/nvme_rdma.h"

#include <errno.h>
#include <string.h>

_Static_assert(__builtin_offsetof(struct nvl_rdma_cm_req, hsqsize) == 6, "hsqsize at byte 6");
_Static_assert(__builtin_offsetof(struct nvl_rdma_keyed_sgl, key) == 11, "key at byte 11");

int
nvl_rdma_cm_req_decode(const void *pd, size_t len, const struct nvl_rdma_cm_limits *lim,
		       struct nvl_rdma_cm_req *out, uint16_t *sts)
{
	struct nvl_rdma_cm_req r;
	uint32_t entries;

	/* RoCE and IB CMs may pad the private data: at least 32 bytes, the rest ignored */
	if (pd == NULL || len < sizeof(r)) {
		*sts = NVL_RDMA_CM_INVALID_LEN;
		return -EINVAL;
	}
	memcpy(&r, pd, sizeof(r));
	if (r.recfmt != NVL_RDMA_CM_FMT_1_0) {
		*sts = NVL_RDMA_CM_INVALID_RECFMT;
		return -EINVAL;
	}
	if (r.qid > lim->max_qid) {
		*sts = NVL_RDMA_CM_INVALID_QID;
		return -EINVAL;
	}
	/* HSQSIZE is 0's based (the queue's SQSIZE): at least 2 entries */
	entries = (uint32_t)r.hsqsize + 1;
	if (entries < 2 || entries > (r.qid == 0 ? lim->max_aq_entries : lim->max_io_entries)) {
		*sts = NVL_RDMA_CM_INVALID_HSQSIZE;
		return -EINVAL;
	}
	/* the host must be able to take a response for every command it may send */
	if (r.hrqsize < entries - 1) {
		*sts = NVL_RDMA_CM_INVALID_HRQSIZE;
		return -EINVAL;
	}
	*out = r;
	return 0;
}

void
nvl_rdma_cm_req_encode(struct nvl_rdma_cm_req *r, uint16_t qid, uint16_t entries, uint16_t cntlid)
{
	memset(r, 0, sizeof(*r));
	r->recfmt = NVL_RDMA_CM_FMT_1_0;
	r->qid = qid;
	r->hrqsize = entries;
	r->hsqsize = (uint16_t)(entries - 1);
	r->cntlid = cntlid;
}

void
nvl_rdma_cm_rep_encode(struct nvl_rdma_cm_rep *r, uint16_t crqsize)
{
	memset(r, 0, sizeof(*r));
	r->recfmt = NVL_RDMA_CM_FMT_1_0;
	r->crqsize = crqsize;
}

int
nvl_rdma_cm_rep_decode(const void *pd, size_t len, uint16_t entries)
{
	struct nvl_rdma_cm_rep r;

	if (pd == NULL || len < 4)
		return 0; /* nothing said: the controller took the request as asked */
	memset(&r, 0, sizeof(r));
	memcpy(&r, pd, len < sizeof(r) ? len : sizeof(r));
	if (r.recfmt != NVL_RDMA_CM_FMT_1_0)
		return -EPROTO;
	if (r.crqsize != 0 && r.crqsize < entries - 1)
		return -EPROTO;
	return 0;
}

void
nvl_rdma_cm_rej_encode(struct nvl_rdma_cm_rej *r, uint16_t sts)
{
	r->recfmt = NVL_RDMA_CM_FMT_1_0;
	r->sts = sts;
}

uint16_t
nvl_rdma_cm_rej_decode(const void *pd, size_t len)
{
	struct nvl_rdma_cm_rej r;

	if (pd == NULL || len < sizeof(r))
		return 0;
	memcpy(&r, pd, sizeof(r));
	return r.recfmt == NVL_RDMA_CM_FMT_1_0 ? r.sts : 0;
}

const char *
nvl_rdma_cm_status_str(uint16_t sts)
{
	switch (sts) {
	case NVL_RDMA_CM_INVALID_LEN: return "invalid private data length";
	case NVL_RDMA_CM_INVALID_RECFMT: return "invalid record format";
	case NVL_RDMA_CM_INVALID_QID: return "invalid queue id";
	case NVL_RDMA_CM_INVALID_HSQSIZE: return "invalid host send queue size";
	case NVL_RDMA_CM_INVALID_HRQSIZE: return "invalid host receive queue size";
	case NVL_RDMA_CM_NO_RSC: return "no resources";
	case NVL_RDMA_CM_INVALID_IRD: return "invalid IRD";
	case NVL_RDMA_CM_INVALID_ORD: return "invalid ORD";
	case NVL_RDMA_CM_INVALID_CNTLID: return "invalid controller id";
	default: return "unknown reject status";
	}
}

uint16_t
nvl_rdma_sgl_decode(const struct nvl_nvme_cmd *cmd, uint32_t icd_len, struct nvl_rdma_sgl *out)
{
	const uint8_t *d = (const uint8_t *)&cmd->dptr;
	uint8_t type = d[15], psdt = (uint8_t)(cmd->flags >> NVL_NVME_CMD_PSDT_SHIFT);

	memset(out, 0, sizeof(*out));
	/* fabrics commands always carry SGLs (NVMe-oF 1.1 2.2: PSDT 01b or 10b) */
	if (psdt != NVL_NVME_PSDT_SGL_MPTR_CONTIG && psdt != NVL_NVME_PSDT_SGL_MPTR_SGL)
		return NVL_NVME_SC_INVALID_FIELD;
	if ((type >> 4) == NVL_NVME_SGL_TYPE_KEYED_DATA_BLOCK &&
	    (type == NVL_RDMA_SGL_KEYED_ADDR || type == NVL_RDMA_SGL_KEYED_INV)) {
		struct nvl_rdma_keyed_sgl k;

		memcpy(&k, d, sizeof(k));
		out->len = (uint32_t)k.length[0] | (uint32_t)k.length[1] << 8 |
			   (uint32_t)k.length[2] << 16;
		if (icd_len != 0)
			return NVL_NVME_SC_DATA_SGL_LENGTH_INVALID; /* data came, but not in the descriptor */
		out->kind = out->len ? NVL_RDMA_SGL_KEYED : NVL_RDMA_SGL_NONE;
		out->addr = k.addr;
		out->key = k.key;
		out->invalidate = type == NVL_RDMA_SGL_KEYED_INV;
		return 0;
	}
	if (type == NVL_RDMA_SGL_ICD) {
		uint64_t off = cmd->dptr.sgl1.addr;
		uint32_t len = cmd->dptr.sgl1.length;

		if (off > icd_len)
			return NVL_NVME_SC_SGL_OFFSET_INVALID;
		if (len > icd_len - off)
			return NVL_NVME_SC_DATA_SGL_LENGTH_INVALID;
		out->kind = len ? NVL_RDMA_SGL_INCAPSULE : NVL_RDMA_SGL_NONE;
		out->addr = off;
		out->len = len;
		return 0;
	}
	return NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID;
}

void
nvl_rdma_sgl_set_keyed(struct nvl_nvme_cmd *cmd, uint64_t addr, uint32_t len, uint32_t key)
{
	struct nvl_rdma_keyed_sgl k;

	cmd->flags = (uint8_t)((cmd->flags & ~0xc0u) |
			       (NVL_NVME_PSDT_SGL_MPTR_CONTIG << NVL_NVME_CMD_PSDT_SHIFT));
	memset(&k, 0, sizeof(k));
	k.addr = len ? addr : 0;
	k.length[0] = (uint8_t)len;
	k.length[1] = (uint8_t)(len >> 8);
	k.length[2] = (uint8_t)(len >> 16);
	k.key = len ? key : 0;
	k.type = NVL_RDMA_SGL_KEYED_ADDR;
	memcpy(&cmd->dptr, &k, sizeof(k));
}

void
nvl_rdma_sgl_set_icd(struct nvl_nvme_cmd *cmd, uint32_t len)
{
	cmd->flags = (uint8_t)((cmd->flags & ~0xc0u) |
			       (NVL_NVME_PSDT_SGL_MPTR_CONTIG << NVL_NVME_CMD_PSDT_SHIFT));
	memset(&cmd->dptr, 0, sizeof(cmd->dptr));
	cmd->dptr.sgl1.addr = 0;
	cmd->dptr.sgl1.length = len;
	cmd->dptr.sgl1.type = NVL_RDMA_SGL_ICD;
}
