/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe core: namespace and controller objects, request dispatch, transfer
 * sizing, completion, status conversion, error log and asynchronous events.
 * Threading rules are in nvme.h.
 */
#include "nvme/nvme_internal.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

NVL_LOG_REGISTER_COMPONENT(nvme)

/* ---- namespaces ---------------------------------------------------------- */

int
nvl_nvme_ns_init(struct nvl_nvme_ns *ns, uint32_t nsid, struct nvl_bdev_desc *desc)
{
	struct nvl_bdev *b = desc->bdev;

	if (nsid == 0 || nsid == NVL_NVME_NSID_ALL)
		return -EINVAL;
	ns->nsid = nsid;
	ns->desc = desc;
	ns->bdev = b;
	ns->block_size = b->block_size;
	ns->lbads = (uint8_t)__builtin_ctz(b->block_size);
	ns->nlb = b->num_blocks;
	ns->read_only = !desc->writable;
	/* Identity follows the bdev's UUID, which save_config keeps: stable
	 * across restarts. EUI-64 folds the UUID; NGUID and UUID are it. */
	memcpy(ns->uuid, b->uuid, 16);
	memcpy(ns->nguid, b->uuid, 16);
	for (int i = 0; i < 8; i++)
		ns->eui64[i] = b->uuid[i] ^ b->uuid[i + 8];
	ns->eui64[0] = 0x02; /* locally administered */
	pthread_mutex_init(&ns->resv.lock, NULL);
	ns->resv.holder = -1;
	return 0;
}

void
nvl_nvme_ns_fini(struct nvl_nvme_ns *ns)
{
	pthread_mutex_destroy(&ns->resv.lock);
	free(ns->ptpl_file);
	ns->ptpl_file = NULL;
}

/* ---- controllers --------------------------------------------------------- */

int
nvl_nvme_ctrlr_init(struct nvl_nvme_ctrlr *c)
{
	unsigned n = nvl_reactor_count() ? nvl_reactor_count() : 1;

	pthread_mutex_init(&c->lock, NULL);
	c->stats = aligned_alloc(64, NVL_ALIGN_UP(sizeof(*c->stats) * n, 64));
	if (c->stats == NULL)
		return -ENOMEM;
	memset(c->stats, 0, sizeof(*c->stats) * n);
	c->nstats = n;
	c->mdts = NVL_NVME_MDTS;
	c->feat_vwc = NVL_NVME_FEAT_VWC_WCE; /* cache enabled until the host turns it off */
	c->feat_err_recovery = 0;
	c->feat_temp_thresh = 0x157; /* 343 K, a common default */
	c->created_ns = nvl_now_ns();
	__atomic_store_n(&c->last_keep_alive_ns, nvl_now_ns(), __ATOMIC_RELAXED);
	return 0;
}

void
nvl_nvme_ctrlr_abort_aers(struct nvl_nvme_ctrlr *c)
{
	while (c->naer > 0) {
		struct nvl_nvme_req *r = c->aer[--c->naer];

		c->aer[c->naer] = NULL;
		nvl_nvme_req_complete(r, NVL_NVME_SC_ABORTED_SQ_DELETION);
	}
}

void
nvl_nvme_ctrlr_fini(struct nvl_nvme_ctrlr *c)
{
	nvl_nvme_ctrlr_abort_aers(c);
	free(c->stats);
	c->stats = NULL;
	pthread_mutex_destroy(&c->lock);
}

struct nvl_nvme_ctrlr_stats *
nvme_ctrlr_stats(struct nvl_nvme_ctrlr *c)
{
	struct nvl_reactor *r = nvl_reactor_self();
	unsigned i = r ? nvl_reactor_id(r) : 0;

	return &c->stats[i < c->nstats ? i : 0];
}

void
nvl_nvme_ctrlr_get_stats(const struct nvl_nvme_ctrlr *c, struct nvl_nvme_ctrlr_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < c->nstats; i++) {
		out->read_cmds += NVL_STAT_GET(c->stats[i].read_cmds);
		out->write_cmds += NVL_STAT_GET(c->stats[i].write_cmds);
		out->read_bytes += NVL_STAT_GET(c->stats[i].read_bytes);
		out->write_bytes += NVL_STAT_GET(c->stats[i].write_bytes);
		out->errors += NVL_STAT_GET(c->stats[i].errors);
		out->resv_conflicts += NVL_STAT_GET(c->stats[i].resv_conflicts);
	}
}

void
nvme_ctrlr_add_error(struct nvl_nvme_ctrlr *c, const struct nvl_nvme_req *req, uint16_t status,
		     uint64_t lba)
{
	struct nvl_nvme_error_log *e;

	pthread_mutex_lock(&c->lock);
	c->err_count++;
	e = &c->errlog[(c->err_count - 1) % NVL_NVME_ERRLOG_ENTRIES];
	memset(e, 0, sizeof(*e));
	e->error_count = c->err_count;
	e->sqid = req->qid;
	e->cid = req->cmd.cid;
	e->status = status;
	e->parm_error_location = 0xffff;
	e->lba = lba;
	e->nsid = req->cmd.nsid;
	pthread_mutex_unlock(&c->lock);
}

/* ---- asynchronous events (home reactor) --------------------------------- */

void
nvme_aer_flush(struct nvl_nvme_ctrlr *c)
{
	while (c->naer > 0 && c->npending > 0) {
		struct nvl_nvme_req *r = c->aer[--c->naer];
		uint32_t ev = c->pending_events[0];

		memmove(&c->pending_events[0], &c->pending_events[1],
			(c->npending - 1) * sizeof(c->pending_events[0]));
		c->npending--;
		c->aer[c->naer] = NULL;
		r->cpl.cdw0 = ev;
		nvl_nvme_req_complete(r, NVL_NVME_SC_SUCCESS);
	}
}

/* Queue an event unless its type is masked (reported and its log not yet read). */
static void
aer_raise(struct nvl_nvme_ctrlr *c, uint8_t type, uint8_t info, uint8_t lid)
{
	if (c->masked_types & (1u << type))
		return;
	if (c->npending == NVL_ARRAY_SIZE(c->pending_events))
		return;
	c->masked_types |= 1u << type;
	c->pending_events[c->npending++] = NVL_NVME_AER_CDW0(type, info, lid);
	nvme_aer_flush(c);
}

void
nvme_aer_unmask(struct nvl_nvme_ctrlr *c, uint8_t type)
{
	c->masked_types &= ~(1u << type);
}

void
nvl_nvme_ctrlr_ns_changed(struct nvl_nvme_ctrlr *c, uint32_t nsid)
{
	pthread_mutex_lock(&c->lock);
	if (!c->changed_ns_overflow) {
		bool dup = false;

		for (unsigned i = 0; i < c->nchanged_ns; i++)
			dup |= c->changed_ns[i] == nsid;
		if (!dup) {
			if (c->nchanged_ns == NVL_NVME_CHANGED_NS_MAX)
				c->changed_ns_overflow = true;
			else
				c->changed_ns[c->nchanged_ns++] = nsid;
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (c->feat_aec & NVL_NVME_AEC_NS_ATTR)
		aer_raise(c, NVL_NVME_AER_TYPE_NOTICE, NVL_NVME_AER_NOTICE_NS_CHANGED,
			  NVL_NVME_LOG_CHANGED_NS);
}

void
nvl_nvme_ctrlr_discovery_changed(struct nvl_nvme_ctrlr *c)
{
	if (c->feat_aec & NVL_NVME_AEC_DISC_LOG)
		aer_raise(c, NVL_NVME_AER_TYPE_NOTICE, NVL_NVME_AER_NOTICE_DISCOVERY_CHANGED,
			  NVL_NVME_LOG_DISCOVERY);
}

void
nvl_nvme_ctrlr_doorbell_error(struct nvl_nvme_ctrlr *c, bool bad_value)
{
	aer_raise(c, NVL_NVME_AER_TYPE_ERROR,
		  bad_value ? NVL_NVME_AER_ERROR_INVALID_DB_VALUE : NVL_NVME_AER_ERROR_INVALID_DB,
		  NVL_NVME_LOG_ERROR);
}

struct resv_aer_msg {
	struct nvl_nvme_ctrlr *c;
};

static void
resv_aer_on_home(void *arg)
{
	struct nvl_nvme_ctrlr *c = arg;

	aer_raise(c, NVL_NVME_AER_TYPE_IO_SPECIFIC, NVL_NVME_AER_IO_RESV_LOG,
		  NVL_NVME_LOG_RESV_NOTIFICATION);
}

void
nvl_nvme_ctrlr_resv_notify(struct nvl_nvme_ctrlr *c, uint32_t nsid, uint8_t type)
{
	struct nvl_nvme_resv_notification_log *n;

	/* masked notification types (feature 0x82 bits 1..3) are not logged */
	if (c->feat_resv_notif_mask & (1u << type))
		return;
	pthread_mutex_lock(&c->lock);
	c->notif_count++;
	if (c->nnotif == NVL_NVME_RESV_NOTIF_MAX) {
		memmove(&c->notif[0], &c->notif[1], sizeof(c->notif[0]) * (c->nnotif - 1));
		c->nnotif--;
	}
	n = &c->notif[c->nnotif++];
	memset(n, 0, sizeof(*n));
	n->log_page_count = c->notif_count;
	n->type = type;
	n->nsid = nsid;
	pthread_mutex_unlock(&c->lock);
	if (nvl_reactor_self() == c->home)
		resv_aer_on_home(c);
	else if (c->home)
		nvl_reactor_msg(c->home, resv_aer_on_home, c);
}

/* ---- requests ------------------------------------------------------------ */

uint16_t
nvl_nvme_status_from_errno(int rc)
{
	switch (rc) {
	case 0: return NVL_NVME_SC_SUCCESS;
	case -EINVAL: return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
	case -ERANGE: return NVL_NVME_DNR(NVL_NVME_SC_LBA_OUT_OF_RANGE);
	case -ENOSPC: return NVL_NVME_DNR(NVL_NVME_SC_CAPACITY_EXCEEDED);
	case -EROFS: case -EBADF: return NVL_NVME_DNR(NVL_NVME_SC_NS_WRITE_PROTECTED);
	case -EOPNOTSUPP: return NVL_NVME_DNR(NVL_NVME_SC_INVALID_OPCODE);
	case -EAGAIN: case -ENOMEM: case -EBUSY: return NVL_NVME_SC_INTERNAL; /* retryable */
	case -EACCES: return NVL_NVME_DNR(NVL_NVME_SC_ACCESS_DENIED);
	case -EIO: return NVL_NVME_SC_DATA_TRANSFER_ERROR;
	case -ECANCELED: return NVL_NVME_SC_ABORT_REQUESTED;
	default: return NVL_NVME_SC_INTERNAL;
	}
}

void
nvl_nvme_req_complete(struct nvl_nvme_req *req, uint16_t sct_sc)
{
	uint16_t st = NVL_NVME_SC_TO_STATUS(sct_sc & 0x7ff);

	if ((sct_sc & 0x7ff) != NVL_NVME_SC_SUCCESS) {
		/* DNR unless the error is one a retry may cure */
		if ((sct_sc & NVL_NVME_DNR_FLAG) || ((sct_sc & 0x7ff) != NVL_NVME_SC_INTERNAL &&
					  (sct_sc & 0x7ff) != NVL_NVME_SC_NS_NOT_READY &&
					  (sct_sc & 0x7ff) != NVL_NVME_SC_ABORT_REQUESTED &&
					  (sct_sc & 0x7ff) != NVL_NVME_SC_DATA_TRANSFER_ERROR &&
					  (sct_sc & 0x7ff) != NVL_NVME_SC_ABORTED_SQ_DELETION &&
					  (sct_sc & 0x7ff) != NVL_NVME_SC_TRANSIENT_TRANSPORT_ERROR))
			st |= NVL_NVME_STATUS_DNR;
		if (req->ctrlr) {
			NVL_STAT_INC(nvme_ctrlr_stats(req->ctrlr)->errors);
			if ((sct_sc & 0x7ff) == NVL_NVME_SC_RESERVATION_CONFLICT)
				NVL_STAT_INC(nvme_ctrlr_stats(req->ctrlr)->resv_conflicts);
			if ((sct_sc & 0x7ff) != NVL_NVME_SC_ABORTED_SQ_DELETION &&
			    !(req->qid == 0 && req->cmd.opc == NVL_NVME_ADM_ASYNC_EVENT))
				nvme_ctrlr_add_error(req->ctrlr, req, st,
						     req->qid ? nvme_cmd_slba(&req->cmd) : 0);
		}
	}
	req->cpl.cid = req->cmd.cid;
	req->cpl.status = st;
	if (req->ns) {
		__atomic_fetch_sub(&req->ns->inflight, 1, __ATOMIC_RELEASE);
		req->ns = NULL;
	}
	if (req->scratch) {
		free(req->scratch);
		req->scratch = NULL;
	}
	req->done(req);
}

uint32_t
nvl_nvme_req_copy_to(struct nvl_nvme_req *req, const void *buf, uint32_t len)
{
	const uint8_t *p = buf;
	uint32_t done = 0;

	if (len > req->data_len)
		len = req->data_len;
	for (int i = 0; i < req->iovcnt && done < len; i++) {
		uint32_t n = (uint32_t)NVL_MIN((uint64_t)req->iov[i].iov_len, (uint64_t)(len - done));

		memcpy(req->iov[i].iov_base, p + done, n);
		done += n;
	}
	req->xfer_len = done;
	return done;
}

uint32_t
nvl_nvme_req_copy_from(struct nvl_nvme_req *req, void *buf, uint32_t len)
{
	uint8_t *p = buf;
	uint32_t done = 0;

	if (len > req->data_len)
		len = req->data_len;
	for (int i = 0; i < req->iovcnt && done < len; i++) {
		uint32_t n = (uint32_t)NVL_MIN((uint64_t)req->iov[i].iov_len, (uint64_t)(len - done));

		memcpy(p + done, req->iov[i].iov_base, n);
		done += n;
	}
	return done;
}

uint16_t
nvl_nvme_req_xfer(struct nvl_nvme_req *req, uint32_t *len, uint8_t *dir)
{
	const struct nvl_nvme_cmd *cmd = &req->cmd;
	uint64_t numd;

	*len = 0;
	*dir = NVL_NVME_XFER_NONE;
	if (cmd->opc == NVL_NVME_ADM_FABRICS) {
		const struct nvl_nvmf_cmd *f = (const void *)cmd;

		if (f->fctype == NVL_NVMF_FCTYPE_CONNECT) {
			*len = sizeof(struct nvl_nvmf_connect_data);
			*dir = NVL_NVME_XFER_H2C;
		} else if (f->fctype == NVL_NVMF_FCTYPE_AUTH_SEND ||
			   f->fctype == NVL_NVMF_FCTYPE_AUTH_RECV) {
			/* TL / AL (Base 2.0 6.2, 6.3): bytes of the message */
			bool send = f->fctype == NVL_NVMF_FCTYPE_AUTH_SEND;
			uint32_t l = ((const struct nvl_nvmf_auth_cmd *)cmd)->al_tl;

			if (l == 0 || l > (send ? NVL_NVME_AUTH_MAX_SEND : NVL_NVME_AUTH_MAX_RECV))
				return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
			*len = l;
			*dir = send ? NVL_NVME_XFER_H2C : NVL_NVME_XFER_C2H;
		}
		return 0;
	}
	if (req->qid == 0) {
		switch (cmd->opc) {
		case NVL_NVME_ADM_IDENTIFY:
			*len = NVL_NVME_IDENTIFY_SIZE;
			*dir = NVL_NVME_XFER_C2H;
			return 0;
		case NVL_NVME_ADM_GET_LOG_PAGE:
			/* NUMDU:NUMDL is 0's based: 0xffffffff means 2^32 dwords */
			numd = ((uint64_t)(cmd->cdw11 & 0xffffu) << 16 | (cmd->cdw10 >> 16)) + 1;
			if (numd > (1u << 20)) /* 4 MiB: far beyond any log we have */
				return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
			*len = (uint32_t)numd * 4;
			*dir = NVL_NVME_XFER_C2H;
			return 0;
		case NVL_NVME_ADM_GET_FEATURES:
			if ((cmd->cdw10 & 0xff) == NVL_NVME_FEAT_HOST_IDENTIFIER) {
				*len = (cmd->cdw11 & 1) ? 16 : 8;
				*dir = NVL_NVME_XFER_C2H;
			}
			return 0;
		case NVL_NVME_ADM_SET_FEATURES:
			if ((cmd->cdw10 & 0xff) == NVL_NVME_FEAT_HOST_IDENTIFIER) {
				*len = (cmd->cdw11 & 1) ? 16 : 8;
				*dir = NVL_NVME_XFER_H2C;
			}
			return 0;
		default:
			return 0;
		}
	}
	switch (cmd->opc) {
	case NVL_NVME_IO_READ:
	case NVL_NVME_IO_WRITE:
	case NVL_NVME_IO_COMPARE: {
		struct nvl_nvme_ns *ns = req->ctrlr->ops->get_ns(req->ctrlr, cmd->nsid);
		uint64_t bytes;

		if (ns == NULL)
			return 0; /* Invalid Namespace at execution */
		bytes = (uint64_t)nvme_cmd_nlb(cmd) << ns->lbads;
		/* Base spec 1.4 5.15.2.1 (MDTS): above it is Invalid Field in Command */
		if (bytes > nvl_nvme_ctrlr_max_xfer(req->ctrlr))
			return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
		*len = (uint32_t)bytes;
		*dir = cmd->opc == NVL_NVME_IO_READ ? NVL_NVME_XFER_C2H : NVL_NVME_XFER_H2C;
		return 0;
	}
	case NVL_NVME_IO_DSM:
		*len = ((cmd->cdw10 & 0xff) + 1) * (uint32_t)sizeof(struct nvl_nvme_dsm_range);
		*dir = NVL_NVME_XFER_H2C;
		return 0;
	case NVL_NVME_IO_RESV_REGISTER:
	case NVL_NVME_IO_RESV_ACQUIRE:
		*len = 16;
		*dir = NVL_NVME_XFER_H2C;
		return 0;
	case NVL_NVME_IO_RESV_RELEASE:
		*len = 8;
		*dir = NVL_NVME_XFER_H2C;
		return 0;
	case NVL_NVME_IO_RESV_REPORT:
		numd = (uint64_t)cmd->cdw10 + 1;
		if (numd > (1u << 18))
			return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
		*len = (uint32_t)numd * 4;
		*dir = NVL_NVME_XFER_C2H;
		return 0;
	default:
		return 0;
	}
}

uint16_t
nvl_nvme_req_prepare(struct nvl_nvme_req *req, nvl_nvme_map_fn map, void *ctx)
{
	uint32_t len;
	uint8_t dir;
	uint16_t st;

	req->iov = req->iov_inline;
	req->iovcnt = 0;
	req->data_len = 0;
	st = nvl_nvme_req_xfer(req, &len, &dir);
	req->xfer = st ? NVL_NVME_XFER_NONE : dir;
	if (st)
		return st;
	return map ? map(req, len, dir, ctx) : 0;
}

void
nvl_nvme_execute(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;

	req->cpl.cdw0 = 0;
	req->cpl.cdw1 = 0;
	req->xfer_len = 0;
	req->ns = NULL;
	req->scratch = NULL;
	if ((req->cmd.flags & NVL_NVME_CMD_FUSE_MASK) != 0) {
		/* fused operations (compare and write) are not supported (FUSES = 0) */
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
		return;
	}
	if (req->cmd.opc == NVL_NVME_ADM_FABRICS) {
		uint8_t fctype = ((const struct nvl_nvmf_cmd *)&req->cmd)->fctype;

		/* Authentication Send/Receive, on any queue: the queue's transaction */
		if (fctype == NVL_NVMF_FCTYPE_AUTH_SEND || fctype == NVL_NVMF_FCTYPE_AUTH_RECV) {
			if (req->auth)
				req->auth->ops->execute(req->auth, req);
			else
				nvl_nvme_req_complete(req, NVL_NVME_DNR(c->auth_required
								  ? NVL_NVME_SC_AUTH_REQUIRED
								  : NVL_NVME_SC_INVALID_OPCODE));
			return;
		}
	}
	if (nvl_unlikely(c->auth_required) && (req->auth == NULL || !req->auth->ops->ready(req->auth))) {
		/* nothing but the authentication transaction before it succeeded */
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_AUTH_REQUIRED));
		return;
	}
	if (req->cmd.opc == NVL_NVME_ADM_FABRICS && req->qid == 0) {
		nvme_fabrics_property(req);
		return;
	}
	if (!(c->csts & NVL_NVME_CSTS_RDY)) {
		/* only fabrics commands before the controller is enabled */
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_COMMAND_SEQUENCE_ERROR));
		return;
	}
	if (req->qid == 0)
		nvme_admin_execute(req);
	else
		nvme_io_execute(req);
}

/* ---- Fabrics Property Get/Set (NVMe-oF 1.1, 3.4/3.5) --------------------- */

static uint64_t
ctrlr_cap(const struct nvl_nvme_ctrlr *c)
{
	uint64_t mqes = (uint64_t)(c->max_queue_entries ? c->max_queue_entries - 1 : 127);

	/* MQES, CQR=1 (contiguous queues required), TO = 15 (7.5 s, in 500 ms
	 * units), CSS bit 37 (NVM command set), MPSMIN = MPSMAX = 0 (4 KiB) */
	return mqes | (1ULL << 16) | (15ULL << 24) | (1ULL << 37);
}

void
nvme_fabrics_property(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;
	const struct nvl_nvmf_property_cmd *p = (const void *)&req->cmd;
	bool eight = (p->attrib & 7) == 1;
	uint64_t v;

	if (p->fctype != NVL_NVMF_FCTYPE_PROPERTY_GET && p->fctype != NVL_NVMF_FCTYPE_PROPERTY_SET) {
		/* Connect twice, Disconnect or Authentication on an admin queue we
		 * already own: the transport handles Connect before we see it */
		nvl_nvme_req_complete(req, NVL_NVME_DNR(p->fctype == NVL_NVMF_FCTYPE_CONNECT
						 ? NVL_NVME_SC_COMMAND_SEQUENCE_ERROR
						 : NVL_NVME_SC_INVALID_OPCODE));
		return;
	}
	if ((p->attrib & 7) > 1) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
		return;
	}
	if (p->fctype == NVL_NVMF_FCTYPE_PROPERTY_GET) {
		switch (p->ofst) {
		case NVL_NVME_REG_CAP:
			v = ctrlr_cap(c);
			break;
		case NVL_NVME_REG_VS:
			v = NVL_NVME_VS_1_3;
			break;
		case NVL_NVME_REG_CC:
			v = c->cc;
			break;
		case NVL_NVME_REG_CSTS:
			v = c->csts;
			break;
		default:
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
			return;
		}
		if (!eight && p->ofst == NVL_NVME_REG_CAP) {
			/* CAP is 8 bytes; a 4-byte read gets the low half */
			v &= 0xffffffffu;
		}
		req->cpl.cdw0 = (uint32_t)v;
		req->cpl.cdw1 = eight ? (uint32_t)(v >> 32) : 0;
		nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
		return;
	}
	/* Property Set: only CC is writable */
	if (p->ofst != NVL_NVME_REG_CC || eight) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
		return;
	}
	{
		uint32_t newcc = (uint32_t)p->value;
		uint32_t oldcc = c->cc;

		/* IOSQES must be 6 (64 bytes) and IOCQES 4 (16 bytes) when enabling */
		if ((newcc & NVL_NVME_CC_EN) && !(oldcc & NVL_NVME_CC_EN)) {
			uint32_t iosqes = (newcc >> 16) & 0xf, iocqes = (newcc >> 20) & 0xf;
			uint32_t mps = (newcc >> 7) & 0xf, css = (newcc >> 4) & 0x7;

			if ((iosqes && iosqes != 6) || (iocqes && iocqes != 4) || mps != 0 ||
			    (css != 0 && css != 6)) {
				c->csts |= NVL_NVME_CSTS_CFS;
				nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
				return;
			}
			c->csts |= NVL_NVME_CSTS_RDY;
		} else if (!(newcc & NVL_NVME_CC_EN) && (oldcc & NVL_NVME_CC_EN)) {
			/* reset: I/O queues go away, features back to defaults */
			if (c->queue_ops && c->queue_ops->reset)
				c->queue_ops->reset(c);
			c->csts &= ~(NVL_NVME_CSTS_RDY | NVL_NVME_CSTS_SHST_MASK);
			c->num_queues_set = false;
		}
		if ((newcc & NVL_NVME_CC_SHN_MASK) && !(oldcc & NVL_NVME_CC_SHN_MASK)) {
			if (c->queue_ops && c->queue_ops->reset)
				c->queue_ops->reset(c);
			c->csts = (c->csts & ~NVL_NVME_CSTS_SHST_MASK) | NVL_NVME_CSTS_SHST_COMPLETE;
		}
		c->cc = newcc;
		nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
	}
}

const char *
nvl_nvme_status_str(uint16_t sct_sc)
{
	switch (sct_sc & 0x7ff) {
	case NVL_NVME_SC_SUCCESS: return "success";
	case NVL_NVME_SC_INVALID_OPCODE: return "invalid opcode";
	case NVL_NVME_SC_INVALID_FIELD: return "invalid field in command";
	case NVL_NVME_SC_CID_CONFLICT: return "command id conflict";
	case NVL_NVME_SC_DATA_TRANSFER_ERROR: return "data transfer error";
	case NVL_NVME_SC_INTERNAL: return "internal error";
	case NVL_NVME_SC_ABORT_REQUESTED: return "command abort requested";
	case NVL_NVME_SC_ABORTED_SQ_DELETION: return "aborted: queue deleted";
	case NVL_NVME_SC_INVALID_NAMESPACE: return "invalid namespace or format";
	case NVL_NVME_SC_COMMAND_SEQUENCE_ERROR: return "command sequence error";
	case NVL_NVME_SC_INVALID_SGL_SEG_DESCRIPTOR: return "invalid SGL segment descriptor";
	case NVL_NVME_SC_DATA_SGL_LENGTH_INVALID: return "data SGL length invalid";
	case NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID: return "SGL descriptor type invalid";
	case NVL_NVME_SC_INVALID_PRP_OFFSET: return "PRP offset invalid";
	case NVL_NVME_SC_NS_WRITE_PROTECTED: return "namespace is write protected";
	case NVL_NVME_SC_LBA_OUT_OF_RANGE: return "LBA out of range";
	case NVL_NVME_SC_CAPACITY_EXCEEDED: return "capacity exceeded";
	case NVL_NVME_SC_NS_NOT_READY: return "namespace not ready";
	case NVL_NVME_SC_RESERVATION_CONFLICT: return "reservation conflict";
	case NVL_NVME_SC_CQ_INVALID: return "completion queue invalid";
	case NVL_NVME_SC_INVALID_QID: return "invalid queue identifier";
	case NVL_NVME_SC_INVALID_QUEUE_SIZE: return "invalid queue size";
	case NVL_NVME_SC_AER_LIMIT: return "async event request limit exceeded";
	case NVL_NVME_SC_INVALID_VECTOR: return "invalid interrupt vector";
	case NVL_NVME_SC_INVALID_LOG_PAGE: return "invalid log page";
	case NVL_NVME_SC_INVALID_QUEUE_DELETION: return "invalid queue deletion";
	case NVL_NVME_SC_FEATURE_NOT_SAVEABLE: return "feature not saveable";
	case NVL_NVME_SC_FEATURE_NOT_CHANGEABLE: return "feature not changeable";
	case NVL_NVME_SC_CONNECT_INVALID_PARAM: return "connect: invalid parameters";
	case NVL_NVME_SC_CONNECT_INVALID_HOST: return "connect: host not allowed";
	case NVL_NVME_SC_CONNECT_CTRL_BUSY: return "connect: controller busy";
	case NVL_NVME_SC_AUTH_REQUIRED: return "authentication required";
	case NVL_NVME_SC_COMPARE_FAILURE: return "compare failure";
	case NVL_NVME_SC_ACCESS_DENIED: return "access denied";
	case NVL_NVME_SC_WRITE_FAULT: return "write fault";
	case NVL_NVME_SC_UNRECOVERED_READ: return "unrecovered read error";
	default: return "error";
	}
}
