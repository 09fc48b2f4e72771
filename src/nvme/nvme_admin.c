/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Admin command set (Base spec section 5): Identify, Get Log Page, Get/Set
 * Features, Asynchronous Event Request, Abort, Keep Alive, and queue
 * management through the target's ops. Runs on the controller's home reactor.
 */
#include "nvme/nvme_internal.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * I/O controllers report a volatile write cache (the bdevs below may cache:
 * page cache, drive caches) and honour Write Cache Enable; discovery
 * controllers have no media and no cache, so the feature does not exist there
 * (Base 5.27.1.4: Invalid Field when VWC.present is 0).
 */
static bool
ctrlr_has_vwc(const struct nvl_nvme_ctrlr *c)
{
	return c->type == NVL_NVME_CNTRLTYPE_IO;
}

/* ---- Identify ------------------------------------------------------------ */

static void
identify_ctrlr(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;
	struct nvl_nvme_id_ctrl *id = calloc(1, sizeof(*id));

	if (id == NULL) {
		nvl_nvme_req_complete(req, NVL_NVME_SC_INTERNAL);
		return;
	}
	id->vid = 0x1b36;   /* PCI id space of virtual devices; informational only */
	id->ssvid = 0x1b36;
	nvl_strpad(id->sn, sizeof(id->sn), c->sn);
	nvl_strpad(id->mn, sizeof(id->mn), c->mn);
	nvl_strpad(id->fr, sizeof(id->fr), c->fr);
	id->rab = 6;
	id->ieee[0] = 0x00;
	id->ieee[1] = 0x54;
	id->ieee[2] = 0x52;
	id->cmic = NVL_NVME_CMIC_MULTI_PORT | NVL_NVME_CMIC_MULTI_CTRL;
	id->mdts = c->mdts;
	id->cntlid = c->cntlid;
	id->ver = NVL_NVME_VS_1_3;
	id->oaes = c->type == NVL_NVME_CNTRLTYPE_DISCOVERY ? NVL_NVME_OAES_DISC_LOG
							   : NVL_NVME_OAES_NS_ATTR;
	id->ctratt = NVL_NVME_CTRATT_HOSTID128;
	id->cntrltype = c->type;
	memcpy(id->fguid, c->hostid, 0); /* no FRU GUID */
	id->acl = 3;
	id->aerl = NVL_NVME_AERL - 1;
	id->frmw = (1u << 1) | 1u; /* one slot, read-only */
	id->lpa = NVL_NVME_LPA_EXTENDED;
	id->elpe = NVL_NVME_ERRLOG_ENTRIES - 1;
	id->npss = 0;
	id->wctemp = 0x157;
	id->cctemp = 0x175;
	id->kas = 1; /* keep-alive granularity: 100 ms units */
	id->sqes = (6 << 4) | 6;
	id->cqes = (4 << 4) | 4;
	id->maxcmd = c->max_queue_entries;
	id->nn = c->max_nsid;
	if (c->type == NVL_NVME_CNTRLTYPE_IO) {
		id->oncs = NVL_NVME_ONCS_COMPARE | NVL_NVME_ONCS_DSM | NVL_NVME_ONCS_WRITE_ZEROES |
			   NVL_NVME_ONCS_RESERVATIONS;
	}
	if (ctrlr_has_vwc(c))
		id->vwc = NVL_NVME_VWC_PRESENT | NVL_NVME_VWC_NSID_FFFF_FLUSH;
	id->awun = 0;
	id->awupf = 0;
	if (c->sgl_supported)
		id->sgls = NVL_NVME_SGLS_SUPPORTED | (c->fabrics ? NVL_NVME_SGLS_KEYED | NVL_NVME_SGLS_OFFSET : 0);
	nvl_strlcpy(id->subnqn, c->subnqn, sizeof(id->subnqn));
	if (c->fabrics) {
		id->ioccsz = c->ioccsz;
		id->iorcsz = c->iorcsz;
		id->icdoff = 0;
		id->fcatt = 0; /* dynamic controller model */
		id->msdbd = c->msdbd;
	}
	id->psd[0].mp = 2500; /* 25 W, informational */
	id->psd[0].enlat = 16;
	id->psd[0].exlat = 4;
	nvl_nvme_req_copy_to(req, id, sizeof(*id));
	free(id);
	nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
}

static void
fill_id_ns(const struct nvl_nvme_ns *ns, const struct nvl_nvme_ctrlr *c, struct nvl_nvme_id_ns *id)
{
	id->nsze = ns->nlb;
	id->ncap = ns->nlb;
	id->nuse = ns->nlb;
	id->nsfeat = 0;
	id->nlbaf = 0;
	id->flbas = 0;
	id->nmic = NVL_NVME_NMIC_SHARED;
	id->rescap = NVL_NVME_RESCAP_ALL_TYPES | NVL_NVME_RESCAP_IEKEY |
		     (ns->ptpl_file ? NVL_NVME_RESCAP_PTPL : 0);
	/* deallocated blocks read as zeroes; Write Zeroes may deallocate */
	id->dlfeat = NVL_NVME_DLFEAT_READ_ZEROES | NVL_NVME_DLFEAT_WZ_DEALLOC;
	id->nsattr = ns->read_only ? 1 : 0;
	id->lbaf[0].lbads = ns->lbads;
	id->lbaf[0].ms = 0;
	id->lbaf[0].rp = 0;
	memcpy(id->nguid, ns->nguid, 16);
	memcpy(id->eui64, ns->eui64, 8);
	(void)c;
}

static void
identify_ns(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;
	uint32_t nsid = req->cmd.nsid;
	struct nvl_nvme_id_ns *id;
	struct nvl_nvme_ns *ns;

	if (nsid == 0 || (nsid > c->max_nsid && nsid != NVL_NVME_NSID_ALL) ||
	    nsid == NVL_NVME_NSID_ALL) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_NAMESPACE));
		return;
	}
	id = calloc(1, sizeof(*id));
	if (id == NULL) {
		nvl_nvme_req_complete(req, NVL_NVME_SC_INTERNAL);
		return;
	}
	ns = c->ops->get_ns(c, nsid);
	if (ns)
		fill_id_ns(ns, c, id);
	/* an inactive but valid nsid gets an all-zero structure (5.17.2.1) */
	nvl_nvme_req_copy_to(req, id, sizeof(*id));
	free(id);
	nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
}

static void
identify_active_list(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;
	uint32_t *list;
	uint32_t nsid = req->cmd.nsid, n = 0;

	if (nsid >= 0xfffffffeu) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_NAMESPACE));
		return;
	}
	list = calloc(1024, sizeof(uint32_t));
	if (list == NULL) {
		nvl_nvme_req_complete(req, NVL_NVME_SC_INTERNAL);
		return;
	}
	if (c->type == NVL_NVME_CNTRLTYPE_IO)
		for (uint32_t id = c->ops->next_nsid(c, nsid); id && n < 1024;
		     id = c->ops->next_nsid(c, id))
			list[n++] = id;
	nvl_nvme_req_copy_to(req, list, 4096);
	free(list);
	nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
}

static void
identify_ns_descs(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;
	struct nvl_nvme_ns *ns = c->ops->get_ns(c, req->cmd.nsid);
	uint8_t *buf, *p;

	if (ns == NULL) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_NAMESPACE));
		return;
	}
	buf = calloc(1, 4096);
	if (buf == NULL) {
		nvl_nvme_req_complete(req, NVL_NVME_SC_INTERNAL);
		return;
	}
	p = buf;
	p[0] = NVL_NVME_NIDT_EUI64;
	p[1] = 8;
	memcpy(p + 4, ns->eui64, 8);
	p += 12;
	p[0] = NVL_NVME_NIDT_NGUID;
	p[1] = 16;
	memcpy(p + 4, ns->nguid, 16);
	p += 20;
	p[0] = NVL_NVME_NIDT_UUID;
	p[1] = 16;
	memcpy(p + 4, ns->uuid, 16);
	p += 20;
	p[0] = NVL_NVME_NIDT_CSI;
	p[1] = 1;
	p[4] = 0; /* NVM command set */
	nvl_nvme_req_copy_to(req, buf, 4096);
	free(buf);
	nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
}

static void
identify_zeroes(struct nvl_nvme_req *req)
{
	void *buf = calloc(1, 4096);

	if (buf == NULL) {
		nvl_nvme_req_complete(req, NVL_NVME_SC_INTERNAL);
		return;
	}
	nvl_nvme_req_copy_to(req, buf, 4096);
	free(buf);
	nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
}

static void
nvme_identify(struct nvl_nvme_req *req)
{
	uint8_t cns = req->cmd.cdw10 & 0xff;
	uint8_t csi = (uint8_t)(req->cmd.cdw11 >> 24);

	if (req->data_len < NVL_NVME_IDENTIFY_SIZE) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID));
		return;
	}
	switch (cns) {
	case NVL_NVME_CNS_NS:
		identify_ns(req);
		return;
	case NVL_NVME_CNS_CTRLR:
		identify_ctrlr(req);
		return;
	case NVL_NVME_CNS_ACTIVE_NS_LIST:
		identify_active_list(req);
		return;
	case NVL_NVME_CNS_NS_ID_DESCRIPTORS:
		identify_ns_descs(req);
		return;
	case NVL_NVME_CNS_IO_CMD_SET_NS:
	case NVL_NVME_CNS_IO_CMD_SET_CTRLR:
		/* the NVM command set has no command-set specific structures */
		if (csi != 0) {
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
			return;
		}
		if (cns == NVL_NVME_CNS_IO_CMD_SET_NS &&
		    req->ctrlr->ops->get_ns(req->ctrlr, req->cmd.nsid) == NULL) {
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_NAMESPACE));
			return;
		}
		identify_zeroes(req);
		return;
	case NVL_NVME_CNS_IO_CMD_SET_ACTIVE_NS_LIST:
		if (csi != 0) {
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
			return;
		}
		identify_active_list(req);
		return;
	default:
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
		return;
	}
}

/* ---- Get Log Page -------------------------------------------------------- */

/* 128-bit little-endian counters: low half, high half zero (calloc'ed) */
#define u128_set(field, v) ((field)[0] = (v))

/*
 * One function per log page, as the Linux nvmet target has: each builds the
 * whole page in a buffer it allocates (*buf, *size) and returns
 * NVL_NVME_SC_SUCCESS, or the status to complete the command with
 * (NVL_NVME_SC_INTERNAL when out of memory). A page that clears state when
 * read does so here unless rae (Retain Asynchronous Event) is set;
 * get_log_page() then copies out the requested window.
 */

/* Error Information (Base 5.16.1.2): the newest NVL_NVME_ERRLOG_ENTRIES, newest first. */
static uint16_t
nvme_log_error(struct nvl_nvme_req *req, bool rae, uint8_t **buf, size_t *size)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;
	struct nvl_nvme_error_log *e;
	uint64_t n;

	*size = sizeof(*e) * NVL_NVME_ERRLOG_ENTRIES;
	e = calloc(1, *size);
	if (e == NULL)
		return NVL_NVME_SC_INTERNAL;
	pthread_mutex_lock(&c->lock);
	n = NVL_MIN(c->err_count, (uint64_t)NVL_NVME_ERRLOG_ENTRIES);
	for (uint64_t i = 0; i < n; i++)
		e[i] = c->errlog[(c->err_count - 1 - i) % NVL_NVME_ERRLOG_ENTRIES];
	pthread_mutex_unlock(&c->lock);
	*buf = (uint8_t *)e;
	return NVL_NVME_SC_SUCCESS;
}

/* SMART / Health Information (Base 5.16.1.3), controller-wide only. */
static uint16_t
nvme_log_smart(struct nvl_nvme_req *req, bool rae, uint8_t **buf, size_t *size)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;
	struct nvl_nvme_smart_log *s;
	struct nvl_nvme_ctrlr_stats st;

	if (req->cmd.nsid != 0 && req->cmd.nsid != NVL_NVME_NSID_ALL)
		return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD); /* LPA bit 0 clear: no per-ns SMART */
	*size = sizeof(*s);
	s = calloc(1, *size);
	if (s == NULL)
		return NVL_NVME_SC_INTERNAL;
	nvl_nvme_ctrlr_get_stats(c, &st);
	s->temperature = 0x13e; /* 318 K */
	s->avail_spare = 100;
	s->spare_thresh = 10;
	/* data units: thousands of 512-byte units, rounded up (5.16.1.3) */
	u128_set(s->data_units_read, (st.read_bytes / 512 + 999) / 1000);
	u128_set(s->data_units_written, (st.write_bytes / 512 + 999) / 1000);
	u128_set(s->host_reads, st.read_cmds);
	u128_set(s->host_writes, st.write_cmds);
	u128_set(s->power_cycles, 1);
	u128_set(s->power_on_hours, (nvl_now_ns() - c->created_ns) / 3600000000000ULL);
	u128_set(s->num_err_log_entries, c->err_count);
	*buf = (uint8_t *)s;
	return NVL_NVME_SC_SUCCESS;
}

/* Firmware Slot Information (Base 5.16.1.4): one read-only slot, active. */
static uint16_t
nvme_log_fw_slot(struct nvl_nvme_req *req, bool rae, uint8_t **buf, size_t *size)
{
	uint8_t *b;

	*size = 512;
	b = calloc(1, *size);
	if (b == NULL)
		return NVL_NVME_SC_INTERNAL;
	b[0] = 1; /* active slot 1 */
	nvl_strpad(b + 8, 8, req->ctrlr->fr);
	*buf = b;
	return NVL_NVME_SC_SUCCESS;
}

/* Changed Namespace List (Base 5.16.1.5): cleared when read without rae. */
static uint16_t
nvme_log_changed_ns(struct nvl_nvme_req *req, bool rae, uint8_t **buf, size_t *size)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;
	uint32_t *l;

	*size = 4096;
	l = calloc(1, *size);
	if (l == NULL)
		return NVL_NVME_SC_INTERNAL;
	pthread_mutex_lock(&c->lock);
	if (c->changed_ns_overflow)
		l[0] = 0xffffffffu;
	else
		memcpy(l, c->changed_ns, c->nchanged_ns * sizeof(uint32_t));
	if (!rae) {
		c->nchanged_ns = 0;
		c->changed_ns_overflow = false;
	}
	pthread_mutex_unlock(&c->lock);
	*buf = (uint8_t *)l;
	return NVL_NVME_SC_SUCCESS;
}

/* Discovery (Fabrics 5.3): discovery controllers only; the target builds it. */
static uint16_t
nvme_log_discovery(struct nvl_nvme_req *req, bool rae, uint8_t **buf, size_t *size)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;
	void *d = NULL;
	size_t dl = 0;

	if (c->type != NVL_NVME_CNTRLTYPE_DISCOVERY || c->ops->discovery_log == NULL)
		return NVL_NVME_DNR(NVL_NVME_SC_INVALID_LOG_PAGE);
	if (c->ops->discovery_log(c, &d, &dl) < 0 || d == NULL)
		return NVL_NVME_SC_INTERNAL;
	*buf = d;
	*size = dl;
	return NVL_NVME_SC_SUCCESS;
}

/* Reservation Notification (Base 5.16.1.14): I/O controllers; each read takes one entry. */
static uint16_t
nvme_log_resv_notification(struct nvl_nvme_req *req, bool rae, uint8_t **buf, size_t *size)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;
	struct nvl_nvme_resv_notification_log *n;

	if (c->type != NVL_NVME_CNTRLTYPE_IO)
		return NVL_NVME_DNR(NVL_NVME_SC_INVALID_LOG_PAGE);
	*size = sizeof(*n);
	n = calloc(1, *size);
	if (n == NULL)
		return NVL_NVME_SC_INTERNAL;
	pthread_mutex_lock(&c->lock);
	if (c->nnotif > 0) {
		*n = c->notif[0];
		memmove(&c->notif[0], &c->notif[1], sizeof(c->notif[0]) * (c->nnotif - 1));
		c->nnotif--;
		n->num_avail = (uint8_t)NVL_MIN(c->nnotif, 255u);
	}
	pthread_mutex_unlock(&c->lock);
	*buf = (uint8_t *)n;
	return NVL_NVME_SC_SUCCESS;
}

/* The log pages we have, and the asynchronous event type reading each one re-arms. */
static const struct {
	uint8_t lid;
	int aer_type;              /* -1: none */
	uint16_t (*build)(struct nvl_nvme_req *req, bool rae, uint8_t **buf, size_t *size);
} g_nvme_log_pages[] = {
	{ NVL_NVME_LOG_ERROR, NVL_NVME_AER_TYPE_ERROR, nvme_log_error },
	{ NVL_NVME_LOG_SMART, NVL_NVME_AER_TYPE_SMART, nvme_log_smart },
	{ NVL_NVME_LOG_FW_SLOT, -1, nvme_log_fw_slot },
	{ NVL_NVME_LOG_CHANGED_NS, NVL_NVME_AER_TYPE_NOTICE, nvme_log_changed_ns },
	{ NVL_NVME_LOG_DISCOVERY, NVL_NVME_AER_TYPE_NOTICE, nvme_log_discovery },
	{ NVL_NVME_LOG_RESV_NOTIFICATION, NVL_NVME_AER_TYPE_IO_SPECIFIC,
	  nvme_log_resv_notification },
};

/* Copy bytes [off, off + len) of the page out; bytes past its end read as zero. */
static uint16_t
nvme_log_copy_out(struct nvl_nvme_req *req, const uint8_t *buf, size_t size, uint64_t off)
{
	uint32_t len = req->data_len;
	uint8_t *out;

	if (off > size)
		return NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD);
	out = calloc(1, len);
	if (out == NULL)
		return NVL_NVME_SC_INTERNAL;
	memcpy(out, buf + off, NVL_MIN((size_t)len, size - (size_t)off));
	nvl_nvme_req_copy_to(req, out, len);
	free(out);
	return NVL_NVME_SC_SUCCESS;
}

static void
get_log_page(struct nvl_nvme_req *req)
{
	const struct nvl_nvme_cmd *cmd = &req->cmd;
	uint8_t lid = cmd->cdw10 & 0xff;
	bool rae = (cmd->cdw10 >> 15) & 1;
	uint64_t off = (uint64_t)cmd->cdw12 | ((uint64_t)cmd->cdw13 << 32);
	uint8_t *buf = NULL;
	size_t size = 0, i;
	uint16_t sc;

	if (off & 3) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
		return;
	}
	for (i = 0; i < NVL_ARRAY_SIZE(g_nvme_log_pages); i++)
		if (g_nvme_log_pages[i].lid == lid)
			break;
	if (i == NVL_ARRAY_SIZE(g_nvme_log_pages)) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_LOG_PAGE));
		return;
	}
	sc = g_nvme_log_pages[i].build(req, rae, &buf, &size);
	if (sc == NVL_NVME_SC_SUCCESS) {
		sc = nvme_log_copy_out(req, buf, size, off);
		free(buf);
	}
	if (sc == NVL_NVME_SC_SUCCESS && !rae && g_nvme_log_pages[i].aer_type >= 0)
		nvme_aer_unmask(req->ctrlr, (uint8_t)g_nvme_log_pages[i].aer_type);
	nvl_nvme_req_complete(req, sc);
}

/* ---- Features ------------------------------------------------------------ */

static void
set_features(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;
	const struct nvl_nvme_cmd *cmd = &req->cmd;
	uint8_t fid = cmd->cdw10 & 0xff;
	uint32_t v = cmd->cdw11;

	if (cmd->cdw10 & (1u << 31)) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_FEATURE_NOT_SAVEABLE));
		return;
	}
	switch (fid) {
	case NVL_NVME_FEAT_ARBITRATION:
		c->feat_arbitration = v;
		break;
	case NVL_NVME_FEAT_POWER_MGMT:
		if ((v & 0x1f) != 0) { /* only power state 0 exists */
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
			return;
		}
		c->feat_power_mgmt = v;
		break;
	case NVL_NVME_FEAT_TEMP_THRESHOLD:
		c->feat_temp_thresh = v;
		break;
	case NVL_NVME_FEAT_ERROR_RECOVERY:
		c->feat_err_recovery = v;
		break;
	case NVL_NVME_FEAT_VOLATILE_WRITE_CACHE:
		if (!ctrlr_has_vwc(c)) {
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
			return;
		}
		/* read by the I/O path on other reactors (nvme_io.c fua_flag) */
		__atomic_store_n(&c->feat_vwc, v & NVL_NVME_FEAT_VWC_WCE, __ATOMIC_RELAXED);
		break;
	case NVL_NVME_FEAT_NUMBER_OF_QUEUES: {
		uint32_t nsqr = v & 0xffff, ncqr = v >> 16;
		uint32_t max = c->max_io_queues ? c->max_io_queues : 1;

		if (nsqr == 0xffff || ncqr == 0xffff) {
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
			return;
		}
		nsqr = NVL_MIN(nsqr + 1, max);
		ncqr = NVL_MIN(ncqr + 1, max);
		c->feat_num_queues = ((ncqr - 1) << 16) | (nsqr - 1);
		c->num_queues_set = true;
		req->cpl.cdw0 = c->feat_num_queues;
		break;
	}
	case NVL_NVME_FEAT_INTERRUPT_COALESCING:
		c->feat_int_coalescing = v & 0xffff;
		break;
	case NVL_NVME_FEAT_INTERRUPT_VECTOR_CONFIG:
		break;
	case NVL_NVME_FEAT_WRITE_ATOMICITY:
		c->feat_write_atomicity = v & 1;
		break;
	case NVL_NVME_FEAT_ASYNC_EVENT_CONFIG:
		c->feat_aec = v;
		break;
	case NVL_NVME_FEAT_KEEP_ALIVE_TIMER:
		/* KATO in ms; rounded up to the 100 ms granularity (KAS). Not
		 * NVL_ALIGN_UP: it masks, so it only works for powers of two. The
		 * largest multiple of 100 that fits 32 bits caps the result. */
		c->kato_ms = (uint32_t)NVL_MIN(((uint64_t)v + 99) / 100 * 100, 4294967200ULL);
		__atomic_store_n(&c->last_keep_alive_ns, nvl_now_ns(), __ATOMIC_RELAXED);
		break;
	case NVL_NVME_FEAT_HOST_IDENTIFIER: {
		static const uint8_t zero[16];
		uint8_t id[16] = { 0 };

		if (!(v & 1)) {
			/* only 128-bit host identifiers (CTRATT bit 0) */
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
			return;
		}
		if (c->fabrics || memcmp(c->hostid, zero, 16) != 0) {
			/* set by Connect (or already set): changing it would move the
			 * host's reservations out from under it */
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_COMMAND_SEQUENCE_ERROR));
			return;
		}
		if (nvl_nvme_req_copy_from(req, id, 16) != 16) {
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID));
			return;
		}
		memcpy(c->hostid, id, 16);
		break;
	}
	case NVL_NVME_FEAT_RESV_NOTIFICATION_MASK:
		c->feat_resv_notif_mask = v & 0xe;
		break;
	case NVL_NVME_FEAT_RESV_PERSISTENCE: {
		struct nvl_nvme_ns *ns = c->ops->get_ns(c, cmd->nsid);
		int rc;

		if (ns == NULL) {
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_NAMESPACE));
			return;
		}
		if ((v & 1) && ns->ptpl_file == NULL) {
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_FEATURE_NOT_CHANGEABLE));
			return;
		}
		pthread_mutex_lock(&ns->resv.lock);
		ns->resv.ptpl = v & 1;
		rc = nvme_ptpl_save(ns);
		pthread_mutex_unlock(&ns->resv.lock);
		if (rc < 0) {
			nvl_nvme_req_complete(req, NVL_NVME_SC_INTERNAL);
			return;
		}
		break;
	}
	default:
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
		return;
	}
	nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
}

static void
get_features(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;
	const struct nvl_nvme_cmd *cmd = &req->cmd;
	uint8_t fid = cmd->cdw10 & 0xff;
	uint8_t sel = (cmd->cdw10 >> 8) & 7;
	uint32_t outv = 0, *out = &outv;

	if (sel > 3 || (fid == NVL_NVME_FEAT_VOLATILE_WRITE_CACHE && !ctrlr_has_vwc(c))) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
		return;
	}
	if (sel == 3) {
		/* capabilities: changeable, namespace specific (bit 1) for 0x83 */
		switch (fid) {
		case NVL_NVME_FEAT_ARBITRATION: case NVL_NVME_FEAT_POWER_MGMT:
		case NVL_NVME_FEAT_TEMP_THRESHOLD: case NVL_NVME_FEAT_ERROR_RECOVERY:
		case NVL_NVME_FEAT_VOLATILE_WRITE_CACHE: case NVL_NVME_FEAT_NUMBER_OF_QUEUES:
		case NVL_NVME_FEAT_INTERRUPT_COALESCING: case NVL_NVME_FEAT_WRITE_ATOMICITY:
		case NVL_NVME_FEAT_ASYNC_EVENT_CONFIG: case NVL_NVME_FEAT_KEEP_ALIVE_TIMER:
		case NVL_NVME_FEAT_HOST_IDENTIFIER: case NVL_NVME_FEAT_INTERRUPT_VECTOR_CONFIG:
			*out = 1u << 2;
			break;
		case NVL_NVME_FEAT_RESV_NOTIFICATION_MASK:
		case NVL_NVME_FEAT_RESV_PERSISTENCE:
			*out = (1u << 2) | (1u << 1);
			break;
		default:
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
			return;
		}
		req->cpl.cdw0 = outv;
		nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
		return;
	}
	switch (fid) {
	case NVL_NVME_FEAT_ARBITRATION: *out = c->feat_arbitration; break;
	case NVL_NVME_FEAT_POWER_MGMT: *out = c->feat_power_mgmt; break;
	case NVL_NVME_FEAT_TEMP_THRESHOLD: *out = c->feat_temp_thresh; break;
	case NVL_NVME_FEAT_ERROR_RECOVERY: *out = c->feat_err_recovery; break;
	case NVL_NVME_FEAT_VOLATILE_WRITE_CACHE:
		/* SEL 1 (default): the cache starts enabled; 0 and 2 (nothing is
		 * saveable) report what the I/O path uses now */
		*out = sel == 1 ? NVL_NVME_FEAT_VWC_WCE
				: __atomic_load_n(&c->feat_vwc, __ATOMIC_RELAXED);
		break;
	case NVL_NVME_FEAT_NUMBER_OF_QUEUES: {
		uint32_t max = c->max_io_queues ? c->max_io_queues : 1;

		*out = c->num_queues_set ? c->feat_num_queues : ((max - 1) << 16) | (max - 1);
		break;
	}
	case NVL_NVME_FEAT_INTERRUPT_COALESCING: *out = c->feat_int_coalescing; break;
	case NVL_NVME_FEAT_INTERRUPT_VECTOR_CONFIG: *out = cmd->cdw11 & 0xffff; break;
	case NVL_NVME_FEAT_WRITE_ATOMICITY: *out = c->feat_write_atomicity; break;
	case NVL_NVME_FEAT_ASYNC_EVENT_CONFIG: *out = c->feat_aec; break;
	case NVL_NVME_FEAT_KEEP_ALIVE_TIMER: *out = c->kato_ms; break;
	case NVL_NVME_FEAT_HOST_IDENTIFIER:
		if (!(cmd->cdw11 & 1)) {
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
			return;
		}
		nvl_nvme_req_copy_to(req, c->hostid, 16);
		break;
	case NVL_NVME_FEAT_RESV_NOTIFICATION_MASK: *out = c->feat_resv_notif_mask; break;
	case NVL_NVME_FEAT_RESV_PERSISTENCE: {
		struct nvl_nvme_ns *ns = c->ops->get_ns(c, cmd->nsid);

		if (ns == NULL) {
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_NAMESPACE));
			return;
		}
		*out = ns->resv.ptpl ? 1 : 0;
		break;
	}
	default:
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
		return;
	}
	req->cpl.cdw0 = outv;
	nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
}

/* ---- the rest ------------------------------------------------------------ */

static void
async_event_request(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;

	if (c->naer >= NVL_NVME_AERL) {
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_AER_LIMIT));
		return;
	}
	c->aer[c->naer++] = req;
	nvme_aer_flush(c);
}

static void
queue_op(struct nvl_nvme_req *req,
	 enum nvl_nvme_qop (*op)(struct nvl_nvme_ctrlr *, struct nvl_nvme_req *, uint16_t *))
{
	uint16_t st = NVL_NVME_SC_INTERNAL;

	if (op == NULL) {
		/* fabrics controllers create queues with Connect, not these */
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_OPCODE));
		return;
	}
	if (op(req->ctrlr, req, &st) == NVL_NVME_QOP_DONE)
		nvl_nvme_req_complete(req, st);
}

void
nvme_admin_execute(struct nvl_nvme_req *req)
{
	struct nvl_nvme_ctrlr *c = req->ctrlr;
	const struct nvl_nvme_queue_ops *qops = c->queue_ops;

	__atomic_store_n(&c->last_keep_alive_ns, nvl_now_ns(), __ATOMIC_RELAXED);
	NVL_VERBOSELOG(nvme, "controller %u (%s): admin opc 0x%02x cid %u nsid %u", c->cntlid,
		       c->hostnqn, req->cmd.opc, req->cmd.cid, req->cmd.nsid);
	NVL_TRACELOG(nvme, "controller %u: admin cdw10 0x%08x cdw11 0x%08x cdw12 0x%08x "
			   "cdw13 0x%08x cdw14 0x%08x cdw15 0x%08x",
		     c->cntlid, req->cmd.cdw10, req->cmd.cdw11, req->cmd.cdw12, req->cmd.cdw13,
		     req->cmd.cdw14, req->cmd.cdw15);
	if (c->type == NVL_NVME_CNTRLTYPE_DISCOVERY) {
		/* discovery controllers implement a small subset (NVMe-oF 5.2) */
		switch (req->cmd.opc) {
		case NVL_NVME_ADM_IDENTIFY:
		case NVL_NVME_ADM_GET_LOG_PAGE:
		case NVL_NVME_ADM_SET_FEATURES:
		case NVL_NVME_ADM_GET_FEATURES:
		case NVL_NVME_ADM_ASYNC_EVENT:
		case NVL_NVME_ADM_KEEP_ALIVE:
			break;
		default:
			nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_OPCODE));
			return;
		}
	}
	switch (req->cmd.opc) {
	case NVL_NVME_ADM_IDENTIFY:
		nvme_identify(req);
		return;
	case NVL_NVME_ADM_GET_LOG_PAGE:
		get_log_page(req);
		return;
	case NVL_NVME_ADM_SET_FEATURES:
		set_features(req);
		return;
	case NVL_NVME_ADM_GET_FEATURES:
		get_features(req);
		return;
	case NVL_NVME_ADM_ASYNC_EVENT:
		async_event_request(req);
		return;
	case NVL_NVME_ADM_KEEP_ALIVE:
		nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
		return;
	case NVL_NVME_ADM_ABORT:
		/* commands here complete without queueing; report "not aborted" */
		req->cpl.cdw0 = 1;
		nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
		return;
	case NVL_NVME_ADM_CREATE_CQ:
		queue_op(req, qops ? qops->create_io_cq : NULL);
		return;
	case NVL_NVME_ADM_CREATE_SQ:
		queue_op(req, qops ? qops->create_io_sq : NULL);
		return;
	case NVL_NVME_ADM_DELETE_SQ:
		queue_op(req, qops ? qops->delete_io_sq : NULL);
		return;
	case NVL_NVME_ADM_DELETE_CQ:
		queue_op(req, qops ? qops->delete_io_cq : NULL);
		return;
	default:
		nvl_nvme_req_complete(req, NVL_NVME_DNR(NVL_NVME_SC_INVALID_OPCODE));
		return;
	}
}
