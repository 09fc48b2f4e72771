/* SPDX-License-Identifier: BSD-3-Clause */
/* PRP/SGL -> iovec translation for the shm transport; see shm_map.h. */
#include "transport/shm_map.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

#define PAGE NVL_NVME_PAGE_SIZE

struct iov_builder {
	struct nvl_nvme_req *req;
	struct iovec *iov;
	int cnt, cap;
	bool heap;
};

static bool
in_window(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

static int
iov_add(struct iov_builder *b, uint8_t *p, uint64_t len)
{
	if (len == 0)
		return 0;
	if (b->cnt > 0 && (uint8_t *)b->iov[b->cnt - 1].iov_base + b->iov[b->cnt - 1].iov_len == p) {
		b->iov[b->cnt - 1].iov_len += len; /* contiguous: merge */
		return 0;
	}
	if (b->cnt == b->cap) {
		int ncap = b->cap * 4;
		struct iovec *n = malloc(sizeof(*n) * (size_t)ncap);

		if (n == NULL)
			return -1;
		memcpy(n, b->iov, sizeof(*n) * (size_t)b->cnt);
		if (b->heap)
			free(b->iov);
		b->iov = n;
		b->cap = ncap;
		b->heap = true;
	}
	b->iov[b->cnt].iov_base = p;
	b->iov[b->cnt].iov_len = len;
	b->cnt++;
	return 0;
}

static uint16_t
map_prp(struct iov_builder *b, uint8_t *base, uint64_t size, uint32_t len)
{
	const struct nvl_nvme_cmd *cmd = &b->req->cmd;
	uint64_t prp1 = cmd->dptr.prp.prp1, prp2 = cmd->dptr.prp.prp2;
	uint64_t first, remaining;
	uint64_t list[PAGE / 8];

	if (prp1 & 3)
		return NVL_NVME_DNR(NVL_NVME_SC_INVALID_PRP_OFFSET);
	first = NVL_MIN((uint64_t)len, PAGE - (prp1 & (PAGE - 1)));
	if (!in_window(prp1, first, size))
		return NVL_NVME_DNR(NVL_NVME_SC_DATA_TRANSFER_ERROR);
	if (iov_add(b, base + prp1, first) < 0)
		return NVL_NVME_SC_INTERNAL;
	remaining = len - first;
	if (remaining == 0)
		return 0;
	if (remaining <= PAGE) {
		/* PRP2 is the second (and last) data page */
		if (prp2 & (PAGE - 1))
			return NVL_NVME_DNR(NVL_NVME_SC_INVALID_PRP_OFFSET);
		if (!in_window(prp2, remaining, size))
			return NVL_NVME_DNR(NVL_NVME_SC_DATA_TRANSFER_ERROR);
		return iov_add(b, base + prp2, remaining) < 0 ? NVL_NVME_SC_INTERNAL : 0;
	}
	/* PRP2 points to a PRP list; its last entry chains when more remain */
	while (remaining > 0) {
		uint64_t nent, need, take;

		if (prp2 & 7)
			return NVL_NVME_DNR(NVL_NVME_SC_INVALID_PRP_OFFSET);
		nent = (PAGE - (prp2 & (PAGE - 1))) / 8;
		need = (remaining + PAGE - 1) / PAGE;
		take = need <= nent ? need : nent;
		if (!in_window(prp2, take * 8, size))
			return NVL_NVME_DNR(NVL_NVME_SC_DATA_TRANSFER_ERROR);
		/* copy before looking: the host can rewrite the window at any time */
		memcpy(list, base + prp2, take * 8);
		for (uint64_t i = 0; i < take; i++) {
			uint64_t n;

			if (i == take - 1 && need > nent) {
				/* chain to the next list page: an entry of a PRP list, so
				 * page aligned; a full page of entries also guarantees
				 * progress (a self-pointing entry at a page's last 8 bytes
				 * would otherwise loop forever) */
				if (list[i] & (PAGE - 1))
					return NVL_NVME_DNR(NVL_NVME_SC_INVALID_PRP_OFFSET);
				prp2 = list[i];
				break;
			}
			if (list[i] & (PAGE - 1))
				return NVL_NVME_DNR(NVL_NVME_SC_INVALID_PRP_OFFSET);
			n = NVL_MIN(remaining, (uint64_t)PAGE);
			if (!in_window(list[i], n, size))
				return NVL_NVME_DNR(NVL_NVME_SC_DATA_TRANSFER_ERROR);
			if (iov_add(b, base + list[i], n) < 0)
				return NVL_NVME_SC_INTERNAL;
			remaining -= n;
		}
	}
	return 0;
}

static uint16_t
map_sgl(struct iov_builder *b, uint8_t *base, uint64_t size, uint32_t len)
{
	struct nvl_nvme_sgl desc[NVL_SHM_MAX_SGL_DESC];
	struct nvl_nvme_sgl cur = b->req->cmd.dptr.sgl1;
	uint64_t remaining = len;
	unsigned segments = 0, total = 0;

	for (;;) {
		uint8_t type = cur.type >> 4, sub = cur.type & 0xf;
		unsigned n;

		if (type == NVL_NVME_SGL_TYPE_DATA_BLOCK) {
			uint64_t take;

			if (sub != NVL_NVME_SGL_SUBTYPE_ADDRESS)
				return NVL_NVME_DNR(NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
			if (!in_window(cur.addr, cur.length, size))
				return NVL_NVME_DNR(NVL_NVME_SC_DATA_TRANSFER_ERROR);
			take = NVL_MIN((uint64_t)cur.length, remaining);
			if (iov_add(b, base + cur.addr, take) < 0)
				return NVL_NVME_SC_INTERNAL;
			remaining -= take;
			return remaining ? NVL_NVME_DNR(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID) : 0;
		}
		if (type != NVL_NVME_SGL_TYPE_SEGMENT && type != NVL_NVME_SGL_TYPE_LAST_SEGMENT)
			return NVL_NVME_DNR(NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
		if (sub != NVL_NVME_SGL_SUBTYPE_ADDRESS || cur.length == 0 || cur.length % 16)
			return NVL_NVME_DNR(NVL_NVME_SC_INVALID_SGL_SEG_DESCRIPTOR);
		n = cur.length / 16;
		total += n;
		if (n > NVL_SHM_MAX_SGL_DESC || total > 4 * NVL_SHM_MAX_SGL_DESC || ++segments > 16)
			return NVL_NVME_DNR(NVL_NVME_SC_INVALID_NUM_SGL_DESCIRPTORS);
		if (!in_window(cur.addr, cur.length, size))
			return NVL_NVME_DNR(NVL_NVME_SC_DATA_TRANSFER_ERROR);
		memcpy(desc, base + cur.addr, cur.length); /* private copy first */
		for (unsigned i = 0; i < n; i++) {
			uint8_t t = desc[i].type >> 4;

			if (t == NVL_NVME_SGL_TYPE_SEGMENT || t == NVL_NVME_SGL_TYPE_LAST_SEGMENT) {
				/* only the last descriptor of a (non-last) segment may chain */
				if (i != n - 1 || type == NVL_NVME_SGL_TYPE_LAST_SEGMENT)
					return NVL_NVME_DNR(NVL_NVME_SC_INVALID_SGL_SEG_DESCRIPTOR);
				cur = desc[i];
				goto next_segment;
			}
			if (t == NVL_NVME_SGL_TYPE_BIT_BUCKET)
				return NVL_NVME_DNR(NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
			if (t != NVL_NVME_SGL_TYPE_DATA_BLOCK ||
			    (desc[i].type & 0xf) != NVL_NVME_SGL_SUBTYPE_ADDRESS)
				return NVL_NVME_DNR(NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
			if (!in_window(desc[i].addr, desc[i].length, size))
				return NVL_NVME_DNR(NVL_NVME_SC_DATA_TRANSFER_ERROR);
			if (remaining) {
				uint64_t take = NVL_MIN((uint64_t)desc[i].length, remaining);

				if (iov_add(b, base + desc[i].addr, take) < 0)
					return NVL_NVME_SC_INTERNAL;
				remaining -= take;
			}
		}
		/* a segment without a chain at its end is the last one */
		return remaining ? NVL_NVME_DNR(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID) : 0;
next_segment:;
	}
}

uint16_t
nvl_shm_map_data(struct nvl_nvme_req *req, uint8_t *base, uint64_t size, uint32_t len)
{
	struct iov_builder b = {
		.req = req,
		.iov = req->iov_inline,
		.cap = NVL_NVME_REQ_INLINE_IOV,
	};
	uint8_t psdt = req->cmd.flags >> NVL_NVME_CMD_PSDT_SHIFT;
	uint16_t st;

	req->iov = req->iov_inline;
	req->iovcnt = 0;
	req->data_len = 0;
	if (len == 0)
		return 0;
	if (psdt == NVL_NVME_PSDT_PRP)
		st = map_prp(&b, base, size, len);
	else if (psdt == NVL_NVME_PSDT_SGL_MPTR_CONTIG || psdt == NVL_NVME_PSDT_SGL_MPTR_SGL)
		st = map_sgl(&b, base, size, len);
	else
		st = NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
	if (st) {
		if (b.heap)
			free(b.iov);
		req->iov = req->iov_inline;
		req->iovcnt = 0;
		return st;
	}
	req->iov = b.iov;
	req->iovcnt = b.cnt;
	req->data_len = len;
	return 0;
}

void
nvl_shm_unmap_data(struct nvl_nvme_req *req)
{
	if (req->iov != req->iov_inline)
		free(req->iov);
	req->iov = req->iov_inline;
	req->iovcnt = 0;
}
