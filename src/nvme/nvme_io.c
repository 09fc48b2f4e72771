/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVM command set I/O commands: Read, Write (FUA, forced while the host has
 * the volatile write cache disabled), Flush (one namespace or
 * all), Write Zeroes (DEAC), Dataset Management (deallocate), Compare, and
 * the reservation commands (nvme_resv.c). Runs on the queue's reactor; data
 * moves between the bdev and req->iov (host memory) without copies.
 */
#include "nvme/nvme_internal.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void
io_done(struct nvl_bdev_io *bio, int status)
{
	struct nvl_nvme_req *req = bio->cb_arg;
	struct nvl_nvme_ctrlr_stats *st = nvme_ctrlr_stats(req->ctrlr);

	if (status == 0) {
		if (req->cmd.opc == NVL_NVME_IO_READ) {
			NVL_STAT_INC(st->read_cmds);
			NVL_STAT_ADD(st->read_bytes, bio->length);
			req->xfer_len = (uint32_t)bio->length;
		} else if (req->cmd.opc == NVL_NVME_IO_WRITE) {
			NVL_STAT_INC(st->write_cmds);
			NVL_STAT_ADD(st->write_bytes, bio->length);
		}
		nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
		return;
	}
	NVL_ERRLOG_RL("nsid %u opc 0x%02x cid %u: bdev error %d", req->cmd.nsid, req->cmd.opc,
		      req->cmd.cid, status);
	if (status == -EIO)
		nvl_nvme_req_complete(req, req->cmd.opc == NVL_NVME_IO_READ
						   ? NVL_NVME_SC_UNRECOVERED_READ
						   : NVL_NVME_SC_WRITE_FAULT);
	else
		nvl_nvme_req_complete(req, nvl_nvme_status_from_errno(status));
}

static void
nvme_io_submit(struct nvl_nvme_req *req, uint8_t type, uint64_t off, uint64_t len, uint32_t flags,
       struct iovec *iov, int iovcnt, nvl_bdev_io_cb cb)
{
	struct nvl_bdev_io *bio = &req->bio;
	int rc;

	memset(bio, 0, sizeof(*bio));
	bio->type = type;
	bio->flags = flags;
	bio->offset = off;
	bio->length = len;
	bio->iov = iov;
	bio->iovcnt = iovcnt;
	bio->cb = cb;
	bio->cb_arg = req;
	rc = nvl_bdev_submit(req->ns->desc, bio);
	if (rc < 0)
		nvl_nvme_req_complete(req, nvl_nvme_status_from_errno(rc));
}

/*
 * Write Cache Enable off (Set Features 06h, WCE = 0, Base 5.27.1.4): nothing
 * may sit in a volatile cache at completion, so every write is FUA. The
 * feature is written on the home reactor; a relaxed load is enough because
 * the host only relies on it for writes submitted after Set Features
 * completed, and that completion orders them.
 */
static uint32_t
fua_flag(const struct nvl_nvme_req *req, bool write)
{
	if (req->cmd.cdw12 & NVL_NVME_RW_FUA)
		return NVL_BDEV_IO_FUA;
	if (write && !(__atomic_load_n(&req->ctrlr->feat_vwc, __ATOMIC_RELAXED) &
		       NVL_NVME_FEAT_VWC_WCE))
		return NVL_BDEV_IO_FUA;
	return 0;
}

/* Range check; returns 0 or a status. */
static uint16_t
check_range(const struct nvl_nvme_ns *ns, uint64_t slba, uint64_t nlb)
{
	if (slba >= ns->nlb || nlb > ns->nlb - slba)
		return NVL_NVME_DNR(NVL_NVME_SC_LBA_OUT_OF_RANGE);
	return 0;
}

static void
cmd_rw(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ns *ns = req->ns;
	const struct nvl_nvme_cmd *cmd = &req->cmd;
	uint64_t slba = nvme_cmd_slba(cmd);
	uint32_t nlb = nvme_cmd_nlb(cmd);
	bool write = cmd->opc == NVL_NVME_IO_WRITE;
	uint64_t len = (uint64_t)nlb << ns->lbads;
	uint16_t st;

	st = check_range(ns, slba, nlb);
	if (st) {
		nvl_nvme_req_complete(req, st);
		return;
	}
	if (len > req->data_len) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID));
		return;
	}
	if (write && ns->read_only) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_NS_WRITE_PROTECTED));
		return;
	}
	st = nvme_resv_check(ns, req->ctrlr, write);
	if (st) {
		nvl_nvme_req_complete(req, st);
		return;
	}
	if (len < req->data_len) {
		/* the host described more buffer than the command moves: use the prefix */
		uint64_t left = len;
		int n = 0;

		while (n < req->iovcnt && left > 0) {
			if (req->iov[n].iov_len > left)
				req->iov[n].iov_len = left;
			left -= req->iov[n].iov_len;
			n++;
		}
		req->iovcnt = n;
	}
	nvme_io_submit(req, write ? NVL_BDEV_IO_WRITE : NVL_BDEV_IO_READ, slba << ns->lbads, len,
	       fua_flag(req, write), req->iov, req->iovcnt, io_done);
}

static void
compare_done(struct nvl_bdev_io *bio, int status)
{
	struct nvl_nvme_req *req = bio->cb_arg;
	uint8_t *host;
	uint32_t n;

	if (status) {
		nvl_nvme_req_complete(req, nvl_nvme_status_from_errno(status));
		return;
	}
	host = malloc(bio->length);
	if (host == NULL) {
		nvl_nvme_req_complete(req, NVL_NVME_SC_INTERNAL);
		return;
	}
	n = nvl_nvme_req_copy_from(req, host, (uint32_t)bio->length);
	status = (n == bio->length && memcmp(host, req->scratch, n) == 0) ? 0 : 1;
	free(host);
	nvl_nvme_req_complete(req, status ? NVL_NVME_DNR(NVL_NVME_SC_COMPARE_FAILURE)
					  : NVL_NVME_SC_SUCCESS);
}

static void
cmd_compare(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ns *ns = req->ns;
	uint64_t slba = nvme_cmd_slba(&req->cmd);
	uint32_t nlb = nvme_cmd_nlb(&req->cmd);
	uint64_t len = (uint64_t)nlb << ns->lbads;
	uint16_t st = check_range(ns, slba, nlb);

	if (st == 0 && len > req->data_len)
		st = NVL_NVME_DNR(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
	if (st == 0)
		st = nvme_resv_check(ns, req->ctrlr, false);
	if (st) {
		nvl_nvme_req_complete(req, st);
		return;
	}
	req->scratch = aligned_alloc(4096, NVL_ALIGN_UP(len, 4096));
	if (req->scratch == NULL) {
		nvl_nvme_req_complete(req, NVL_NVME_SC_INTERNAL);
		return;
	}
	req->bio_iov.iov_base = req->scratch;
	req->bio_iov.iov_len = len;
	nvme_io_submit(req, NVL_BDEV_IO_READ, slba << ns->lbads, len, 0, &req->bio_iov, 1, compare_done);
}

static void
cmd_write_zeroes(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ns *ns = req->ns;
	const struct nvl_nvme_cmd *cmd = &req->cmd;
	uint64_t slba = nvme_cmd_slba(cmd);
	uint32_t nlb = nvme_cmd_nlb(cmd);
	uint32_t flags = 0;
	uint16_t st = check_range(ns, slba, nlb);

	if (st == 0 && ns->read_only)
		st = NVL_NVME_DNR(NVL_NVME_SC_NS_WRITE_PROTECTED);
	if (st == 0)
		st = nvme_resv_check(ns, req->ctrlr, true);
	if (st) {
		nvl_nvme_req_complete(req, st);
		return;
	}
	if (!(cmd->cdw12 & NVL_NVME_WZ_DEAC))
		flags |= NVL_BDEV_IO_NO_HOLE;
	flags |= fua_flag(req, true);
	nvme_io_submit(req, NVL_BDEV_IO_WRITE_ZEROES, slba << ns->lbads, (uint64_t)nlb << ns->lbads, flags,
	       NULL, 0, io_done);
}

/* DSM: ranges are deallocated one bdev I/O each, all in flight at once. */
static void
dsm_range_done(struct nvl_bdev_io *bio, int status)
{
	struct nvl_nvme_req *req = bio->cb_arg;

	if (status && req->sub_status == 0)
		req->sub_status = status;
	free(bio);
	if (--req->sub_pending == 0)
		nvl_nvme_req_complete(req, nvl_nvme_status_from_errno(req->sub_status));
}

static void
cmd_dsm(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ns *ns = req->ns;
	uint32_t nr = (req->cmd.cdw10 & 0xff) + 1;
	struct nvl_nvme_dsm_range *r;
	uint16_t st = 0;

	if (!(req->cmd.cdw11 & NVL_NVME_DSM_AD)) {
		/* only hints: nothing to do */
		nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
		return;
	}
	if (ns->read_only) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_NS_WRITE_PROTECTED));
		return;
	}
	st = nvme_resv_check(ns, req->ctrlr, true);
	if (st) {
		nvl_nvme_req_complete(req, st);
		return;
	}
	r = calloc(nr, sizeof(*r));
	if (r == NULL) {
		nvl_nvme_req_complete(req, NVL_NVME_SC_INTERNAL);
		return;
	}
	if (nvl_nvme_req_copy_from(req, r, nr * (uint32_t)sizeof(*r)) != nr * sizeof(*r)) {
		free(r);
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID));
		return;
	}
	for (uint32_t i = 0; i < nr && st == 0; i++)
		st = check_range(ns, r[i].slba, r[i].nlb);
	if (st) {
		free(r);
		nvl_nvme_req_complete(req, st);
		return;
	}
	req->scratch = r;
	req->sub_status = 0;
	req->sub_pending = 1; /* held until every range is submitted */
	for (uint32_t i = 0; i < nr; i++) {
		struct nvl_bdev_io *bio;
		int rc;

		if (r[i].nlb == 0)
			continue;
		bio = calloc(1, sizeof(*bio));
		if (bio == NULL) {
			req->sub_status = -ENOMEM;
			break;
		}
		bio->type = NVL_BDEV_IO_UNMAP;
		bio->offset = r[i].slba << ns->lbads;
		bio->length = (uint64_t)r[i].nlb << ns->lbads;
		bio->cb = dsm_range_done;
		bio->cb_arg = req;
		req->sub_pending++;
		rc = nvl_bdev_submit(ns->desc, bio);
		if (rc < 0) {
			free(bio);
			req->sub_pending--;
			req->sub_status = rc;
			break;
		}
	}
	if (--req->sub_pending == 0)
		nvl_nvme_req_complete(req, nvl_nvme_status_from_errno(req->sub_status));
}

/* Flush: one namespace, or NSID FFFFFFFFh = every active namespace. */
static void
flush_all_done(struct nvl_bdev_io *bio, int status)
{
	struct nvl_nvme_req *req = bio->cb_arg;
	struct nvl_nvme_ns *ns = (struct nvl_nvme_ns *)bio->priv[3];

	if (status && req->sub_status == 0)
		req->sub_status = status;
	__atomic_fetch_sub(&ns->inflight, 1, __ATOMIC_RELEASE);
	free(bio);
	if (--req->sub_pending == 0)
		nvl_nvme_req_complete(req, nvl_nvme_status_from_errno(req->sub_status));
}

static void
cmd_flush_all(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;

	req->sub_status = 0;
	req->sub_pending = 1;
	for (uint32_t id = c->ops->next_nsid(c, 0); id; id = c->ops->next_nsid(c, id)) {
		struct nvl_nvme_ns *ns = c->ops->get_ns(c, id);
		struct nvl_bdev_io *bio;
		int rc;

		if (ns == NULL || !(ns->bdev->io_types & (1u << NVL_BDEV_IO_FLUSH)))
			continue;
		bio = calloc(1, sizeof(*bio));
		if (bio == NULL) {
			req->sub_status = -ENOMEM;
			break;
		}
		__atomic_fetch_add(&ns->inflight, 1, __ATOMIC_ACQUIRE);
		bio->type = NVL_BDEV_IO_FLUSH;
		bio->cb = flush_all_done;
		bio->cb_arg = req;
		bio->priv[3] = (uint64_t)(uintptr_t)ns;
		req->sub_pending++;
		rc = nvl_bdev_submit(ns->desc, bio);
		if (rc < 0) {
			__atomic_fetch_sub(&ns->inflight, 1, __ATOMIC_RELEASE);
			free(bio);
			req->sub_pending--;
			req->sub_status = rc;
			break;
		}
	}
	if (--req->sub_pending == 0)
		nvl_nvme_req_complete(req, nvl_nvme_status_from_errno(req->sub_status));
}

void
nvme_io_execute(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;
	struct nvl_nvme_ns *ns;

	if (c->type != NVL_NVME_CNTRLTYPE_IO) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_OPCODE));
		return;
	}
	if (req->cmd.opc == NVL_NVME_IO_FLUSH && req->cmd.nsid == NVL_NVME_NSID_ALL) {
		cmd_flush_all(req);
		return;
	}
	ns = c->ops->get_ns(c, req->cmd.nsid);
	if (ns == NULL) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_NAMESPACE));
		return;
	}
	/* hold the namespace for the command's life (removal waits for zero) */
	__atomic_fetch_add(&ns->inflight, 1, __ATOMIC_ACQUIRE);
	req->ns = ns;
	switch (req->cmd.opc) {
	case NVL_NVME_IO_READ:
	case NVL_NVME_IO_WRITE:
		cmd_rw(req);
		return;
	case NVL_NVME_IO_FLUSH: {
		/* Flush is in the reservation write command group (Base 8.19) */
		uint16_t st = nvme_resv_check(ns, c, true);

		if (st) {
			nvl_nvme_req_complete(req, st);
			return;
		}
		nvme_io_submit(req, NVL_BDEV_IO_FLUSH, 0, 0, 0, NULL, 0, io_done);
		return;
	}
	case NVL_NVME_IO_WRITE_ZEROES:
		cmd_write_zeroes(req);
		return;
	case NVL_NVME_IO_DSM:
		cmd_dsm(req);
		return;
	case NVL_NVME_IO_COMPARE:
		cmd_compare(req);
		return;
	case NVL_NVME_IO_RESV_REGISTER:
	case NVL_NVME_IO_RESV_REPORT:
	case NVL_NVME_IO_RESV_ACQUIRE:
	case NVL_NVME_IO_RESV_RELEASE:
		nvme_resv_execute(req);
		return;
	default:
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_OPCODE));
		return;
	}
}
