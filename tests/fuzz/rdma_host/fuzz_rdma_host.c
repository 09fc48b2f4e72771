/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for what libnvlend's NVMe/RDMA host transport makes of
 * what a target sends (src/host/host_rdma_wire.c, no verbs): response
 * capsules of any length and content, SEND completions in any order, RDMA
 * CM reject and accept private data, Fabrics Connect responses.
 *
 * Input: byte 0 sets the queue's command slots (1 + byte % 64), then
 * records [op][len][payload...]:
 *   op % 6 == 0  the owner takes slot payload[0] for a new command
 *            1   the SEND of slot payload[0] completes
 *            2   a response capsule arrives: payload is the receive buffer
 *                (any length: the wire's byte_len)
 *            3   an RDMA_CM reject: payload[0] the CM status, the rest its
 *                private data
 *            4   an accept: payload[0] the entries asked for, the rest its
 *                private data
 *            5   a Connect response: the payload is the CQE (16 bytes, zero
 *                padded), payload[16] the queue id
 *
 * Checks (__builtin_trap), against a model of the slots: a slot completes
 * exactly when it was taken and both its SEND completion and its response
 * came, once; a response for a slot with no command, a second response, a
 * second SEND completion, a capsule that is not 16 bytes and a command id
 * outside the queue are protocol errors and never complete anything; the
 * errnos are the documented ones and every reason is a terminated string.
 */
#include "host/host_rdma.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

#define FZ_MAX_SLOTS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_model {
	bool taken, sent, rsp;
};

static void
check_why(const char *why, size_t len)
{
	CHECK(memchr(why, '\0', len) != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct host_rdma_slot slots[FZ_MAX_SLOTS];
	struct fz_model m[FZ_MAX_SLOTS];
	uint32_t n;
	size_t off = 1;
	char why[256];

	if (size < 1)
		return 0;
	n = 1u + data[0] % FZ_MAX_SLOTS;
	memset(slots, 0, sizeof(slots));
	memset(m, 0, sizeof(m));
	while (off + 2 <= size) {
		uint8_t op = data[off] % 6;
		size_t len = data[off + 1];
		const uint8_t *p = data + off + 2;
		uint32_t k, idx = UINT32_MAX;
		int rc;

		if (len > size - off - 2)
			len = size - off - 2;
		off += 2 + len;
		k = len ? p[0] : 0;
		memset(why, 0x5a, sizeof(why));
		why[sizeof(why) - 1] = '\0';
		switch (op) {
		case 0:
			rc = host_rdma_slot_take(slots, n, k);
			if (k >= n) {
				CHECK(rc == -EINVAL);
			} else if (m[k].taken) {
				CHECK(rc == -EBUSY);
			} else {
				CHECK(rc == 0);
				m[k].taken = true;
			}
			break;
		case 1:
			rc = host_rdma_slot_send_done(slots, n, k);
			if (k >= n || !m[k].taken || m[k].sent) {
				CHECK(rc == -EPROTO);
				break;
			}
			m[k].sent = true;
			CHECK(rc == (m[k].rsp ? HOST_RDMA_EV_COMPLETE : HOST_RDMA_EV_PENDING));
			idx = k;
			break;
		case 2: {
			uint8_t buf[256];
			struct nvl_nvme_cpl cpl;

			memcpy(buf, p, len);
			rc = host_rdma_rsp_recv(slots, n, buf, (uint32_t)len, &idx, why, sizeof(why));
			if (len != sizeof(cpl)) {
				CHECK(rc == -EPROTO);
				check_why(why, sizeof(why));
				idx = UINT32_MAX;
				break;
			}
			memcpy(&cpl, buf, sizeof(cpl));
			if (cpl.cid >= n || !m[cpl.cid].taken || m[cpl.cid].rsp) {
				CHECK(rc == -EPROTO);
				check_why(why, sizeof(why));
				idx = UINT32_MAX;
				break;
			}
			CHECK(idx == cpl.cid);
			m[idx].rsp = true;
			CHECK(rc == (m[idx].sent ? HOST_RDMA_EV_COMPLETE : HOST_RDMA_EV_PENDING));
			CHECK(memcmp(&slots[idx].cpl, &cpl, sizeof(cpl)) == 0);
			break;
		}
		case 3:
			rc = host_rdma_reject_errno((int)k, len > 1 ? p + 1 : NULL, len ? len - 1 : 0,
						    (uint16_t)k, why, sizeof(why));
			CHECK(rc == -ECONNREFUSED || rc == -EBUSY || rc == -EREMOTEIO);
			check_why(why, sizeof(why));
			break;
		case 4:
			rc = host_rdma_accept_check(len > 1 ? p + 1 : NULL, len ? len - 1 : 0,
						    (uint16_t)(k + 2), why, sizeof(why));
			CHECK(rc == 0 || rc == -EPROTO);
			if (rc < 0)
				check_why(why, sizeof(why));
			break;
		case 5: {
			struct nvl_nvme_cpl cpl;
			uint16_t cntlid = 0xabcd, qid = len > 16 ? p[16] : 0;

			memset(&cpl, 0, sizeof(cpl));
			memcpy(&cpl, p, len < sizeof(cpl) ? len : sizeof(cpl));
			rc = host_rdma_connect_result(&cpl, qid, 7, "nqn.2024-01.io.x:s",
						      "nqn.2024-01.io.x:h", &cntlid, why, sizeof(why));
			CHECK(rc == 0 || rc == -EACCES || rc == -ENODEV || rc == -EADDRNOTAVAIL ||
			      rc == -EBUSY || rc == -EOPNOTSUPP || rc == -EREMOTEIO || rc == -EPROTO);
			if (rc == 0)
				CHECK(cntlid < 0xfff0 && (qid == 0 || cntlid == 7));
			else
				check_why(why, sizeof(why));
			break;
		}
		}
		if (idx != UINT32_MAX && m[idx].taken && m[idx].sent && m[idx].rsp) {
			/* complete: delivered once, then the slot is free for the next command */
			host_rdma_slot_free(slots, n, idx);
			memset(&m[idx], 0, sizeof(m[idx]));
			CHECK(!slots[idx].busy);
		}
	}
	for (uint32_t i = 0; i < n; i++)
		CHECK(slots[i].busy == m[i].taken && slots[i].send_done == m[i].sent &&
		      slots[i].rsp_done == m[i].rsp);
	return 0;
}
