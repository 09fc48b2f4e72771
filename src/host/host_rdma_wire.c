/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the NVMe/RDMA host transport makes of what a target sends
 * (host_rdma.h): reject and accept private data, the Connect response,
 * response capsules and the command slots they complete. Pure functions
 * over caller memory, no verbs: the fuzz target tests/fuzz/rdma_host and
 * tests/unit/host/host_rdma_wire_ut.c call them directly. Any thread; the
 * slots belong to the queue's owner.
 */
#include "host/host_rdma.h"
#include "proto/nvme_rdma.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

int
host_rdma_slot_take(struct host_rdma_slot *slots, uint32_t n, uint32_t idx)
{
	if (idx >= n)
		return -EINVAL;
	if (slots[idx].busy)
		return -EBUSY;
	memset(&slots[idx], 0, sizeof(slots[idx]));
	slots[idx].busy = true;
	return 0;
}

void
host_rdma_slot_free(struct host_rdma_slot *slots, uint32_t n, uint32_t idx)
{
	if (idx < n)
		memset(&slots[idx], 0, sizeof(slots[idx]));
}

int
host_rdma_slot_send_done(struct host_rdma_slot *slots, uint32_t n, uint32_t idx)
{
	struct host_rdma_slot *s;

	if (idx >= n)
		return -EPROTO;
	s = &slots[idx];
	if (!s->busy || s->send_done)
		return -EPROTO;
	s->send_done = true;
	return s->rsp_done ? HOST_RDMA_EV_COMPLETE : HOST_RDMA_EV_PENDING;
}

int
host_rdma_rsp_recv(struct host_rdma_slot *slots, uint32_t n, const void *buf, uint32_t len,
		   uint32_t *idx, char *why, size_t whylen)
{
	struct nvl_nvme_cpl cpl;
	struct host_rdma_slot *s;

	/* a response capsule is exactly one CQE (RDMA Transport 1.0b 3.2) */
	if (len != sizeof(cpl)) {
		snprintf(why, whylen, "response capsule of %u bytes (a CQE is 16)", len);
		return -EPROTO;
	}
	memcpy(&cpl, buf, sizeof(cpl));
	if (cpl.cid >= n) {
		snprintf(why, whylen, "response for command id %u (the queue has %u)", cpl.cid, n);
		return -EPROTO;
	}
	s = &slots[cpl.cid];
	if (!s->busy) {
		snprintf(why, whylen, "response for command id %u, which is not outstanding",
			 cpl.cid);
		return -EPROTO;
	}
	if (s->rsp_done) {
		snprintf(why, whylen, "second response for command id %u", cpl.cid);
		return -EPROTO;
	}
	s->cpl = cpl;
	s->rsp_done = true;
	*idx = cpl.cid;
	return s->send_done ? HOST_RDMA_EV_COMPLETE : HOST_RDMA_EV_PENDING;
}

/* RDMA CM reject reasons (IB CM REJ reasons, as rdma_cm reports them in the
 * event status) worth naming: IBTA 12.6.7.2 Table 112. */
#define IB_CM_REJ_CONSUMER_DEFINED 28   /* the controller's own reject (private data) */
#define IB_CM_REJ_INVALID_SERVICE_ID 8  /* nothing listens on that port */

int
host_rdma_reject_errno(int cm_status, const void *pd, size_t len, uint16_t qid, char *why,
		       size_t whylen)
{
	uint16_t sts = nvl_rdma_cm_rej_decode(pd, len);

	if (sts == 0) {
		/* no NVMe/RDMA reject data: a CM (or the target's stack) refused
		 * before an NVMe controller looked at the request */
		snprintf(why, whylen, "RDMA connection refused (queue %u, CM reason %d%s)", qid,
			 cm_status,
			 cm_status == IB_CM_REJ_INVALID_SERVICE_ID ? ": nothing listens on that port"
			 : cm_status == IB_CM_REJ_CONSUMER_DEFINED ? ": by the peer, not NVMe/RDMA's way"
								   : "");
		return -ECONNREFUSED;
	}
	snprintf(why, whylen, "RDMA connection for queue %u rejected: %s (NVMe/RDMA status %u)",
		 qid, nvl_rdma_cm_status_str(sts), sts);
	return sts == NVL_RDMA_CM_NO_RSC ? -EBUSY : -EREMOTEIO;
}

int
host_rdma_accept_check(const void *pd, size_t len, uint16_t entries, char *why, size_t whylen)
{
	if (nvl_rdma_cm_rep_decode(pd, len, entries) == 0)
		return 0;
	snprintf(why, whylen,
		 "the controller's accept is not NVMe/RDMA's (record format, or fewer than %u "
		 "receive entries)",
		 (unsigned)(entries ? entries - 1 : 0));
	return -EPROTO;
}

/* Connect Invalid Parameters names the field in DW0: an attribute bit (the
 * field is in the Connect data) and the field's offset: the offset in bits
 * 15:0 and the attribute in bit 16 (NVMe-oF 1.1; Linux's nvmet, SPDK and
 * nvlendd since 2026-12-07); nvlendd before put the offset in 31:16 and the
 * attribute in bit 0: both are read. */
static bool
connect_bad_subnqn(uint32_t dw0)
{
	const uint32_t off = offsetof(struct nvl_nvmf_connect_data, subnqn);

	return ((dw0 & 1u) && (dw0 >> 16) == off) || ((dw0 & (1u << 16)) && (dw0 & 0xffff) == off);
}

int
host_rdma_connect_result(const struct nvl_nvme_cpl *cpl, uint16_t qid, uint16_t want_cntlid,
			 const char *subnqn, const char *hostnqn, uint16_t *cntlid, char *why,
			 size_t whylen)
{
	uint16_t st = (uint16_t)((cpl->status >> 1) & 0x7ff);
	uint16_t id = (uint16_t)(cpl->cdw0 & 0xffff);

	if (st == 0) {
		if (cpl->cdw0 & (NVL_NVMF_CONNECT_AUTHREQ_ATR | NVL_NVMF_CONNECT_AUTHREQ_ASCR)) {
			snprintf(why, whylen,
				 "%s requires DH-HMAC-CHAP, which libnvlend's RDMA transport does "
				 "not do (use nvme+tcp://)",
				 subnqn);
			return -EOPNOTSUPP;
		}
		/* controller ids 0xfff0..0xffff are reserved (NVMe Base 2.0 Figure 312) */
		if (id >= 0xfff0 || (qid != 0 && id != want_cntlid)) {
			snprintf(why, whylen, "Connect (queue %u) answered with controller id 0x%x",
				 qid, id);
			return -EPROTO;
		}
		*cntlid = id;
		return 0;
	}
	if (st == NVL_NVME_SC_CONNECT_INVALID_HOST) {
		snprintf(why, whylen, "Connect refused: host %s not allowed on %s", hostnqn, subnqn);
		return -EACCES;
	}
	if (st == NVL_NVME_SC_CONNECT_INVALID_PARAM && connect_bad_subnqn(cpl->cdw0)) {
		snprintf(why, whylen, "Connect refused: no subsystem %s at this address", subnqn);
		return -ENODEV;
	}
	if (st == NVL_NVME_SC_CONNECT_RESTART_DISCOVERY) {
		snprintf(why, whylen,
			 "Connect refused: %s is not offered at this address (restart discovery)",
			 subnqn);
		return -EADDRNOTAVAIL;
	}
	if (st == NVL_NVME_SC_CONNECT_CTRL_BUSY) {
		snprintf(why, whylen, "Connect refused: busy");
		return -EBUSY;
	}
	snprintf(why, whylen, "Connect (queue %u) refused with NVMe status 0x%03x (%s, IPO %u)", qid,
		 st,
		 st == NVL_NVME_SC_CONNECT_INVALID_PARAM	   ? "Connect Invalid Parameters"
		 : st == NVL_NVME_SC_CONNECT_INCOMPATIBLE_FORMAT ? "Incompatible Format"
								   : "not a Connect status",
		 cpl->cdw0 & 0xffff);
	return -EREMOTEIO;
}
