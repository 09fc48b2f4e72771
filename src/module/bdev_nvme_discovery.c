/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The nvme bdev module's discovery services (bdev_nvme_start_discovery,
 * SPDK's method): a connection to a target's discovery controller, kept for
 * as long as the service runs, and one nvme controller (bdev_nvme_ctrlr.c)
 * per NVMe subsystem entry of its log, named NAME<index> (its bdevs
 * NAME<index>n<nsid>), as SPDK names them.
 *
 *  - one transport per service, NVMe/TCP or NVMe/RDMA (trtype): the
 *    discovery controller is reached over it, and only the log's entries of
 *    that transport are attached (over it), as SPDK's discovery does; a
 *    target that offers a subsystem over both is followed once per
 *    transport, by two services;
 *  - the discovery controller is a core controller (src/host/host.h) that
 *    reconnects on its own after a loss (reconnect_delay_sec, never giving
 *    up); its first connect, if it fails, is tried again every
 *    reconnect_delay_sec when the service came from a configuration, and
 *    fails the RPC otherwise;
 *  - following changes: at each association the service enables the
 *    Discovery Log Page Change event (Set Features 0Bh, AEC bit 31), keeps
 *    one Asynchronous Event Request outstanding and reads the log; each
 *    event (reading the log without RAE re-arms it on the target) reads it
 *    again. The log is read record by record (1 KiB each, fits any MDTS),
 *    header first and last: a generation counter that moved in between
 *    means reading again (NVMe over Fabrics 1.1, 5.3);
 *  - a new subsystem entry of that transport (subnqn, traddr, trsvcid; a wildcard
 *    traddr, 0.0.0.0 or ::, means the discovery controller's address) is attached
 *    with retry_first_connect (the log says it exists: wait for it); an
 *    entry that left the log has its controller detached (while one of its
 *    bdevs is open, the detach is retried each second, warned about once);
 *  - stop detaches every controller of the service, then closes the
 *    discovery connection; the RPC answers when all are gone.
 *
 * Threads: all of it on reactor 0 (the RPC thread): a 100 ms timer drives
 * the core controller (and a poller while it is busy), as for controllers.
 */
#include "module/bdev_nvme_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

NVL_LOG_DECLARE_COMPONENT(bdev_nvme);

#define DISC_TICK_US 100000
#define DISC_MAX_ENTRIES 256
#define DISC_KATO_MS 30000
#define DISC_ADMIN_TIMEOUT_MS 10000
#define NVME_DISC_POLL_SEC 5 /* without change events: read the log this often */
#define DISC_RDMA_WINDOW (1u << 20) /* RDMA: the registered buffer (1 KiB log reads only) */

/* A space-padded fixed field of a log entry as a NUL-terminated string. */
static void
disc_field(char *out, size_t outlen, const char *in, size_t inlen)
{
	size_t n = strnlen(in, inlen);

	while (n > 0 && in[n - 1] == ' ')
		n--;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

static bool
disc_rdma(const struct nvme_disc_opts *o)
{
	return strcmp(o->trtype, "RDMA") == 0;
}

/*
 * Whether a log entry is one this service attaches: an NVMe subsystem (not a
 * discovery controller or referral) over IP (ADRFAM IPv4/IPv6) on the
 * service's own transport (TRTYPE, NVMe over Fabrics 1.1, Figure 38).
 */
static bool
disc_entry_wanted(const struct nvme_disc_opts *o, const struct nvl_nvmf_discovery_entry *x)
{
	uint8_t trtype = disc_rdma(o) ? NVL_NVMF_TRTYPE_RDMA : NVL_NVMF_TRTYPE_TCP;

	return x->subtype == NVL_NVMF_SUBTYPE_NVME && x->trtype == trtype &&
	       (x->adrfam == NVL_NVMF_ADRFAM_IPV4 || x->adrfam == NVL_NVMF_ADRFAM_IPV6);
}

enum disc_state {
	DISC_CONNECTING = 0,   /* first association */
	DISC_READY,            /* connected; the log is followed */
	DISC_LOST,             /* the core reconnects */
	DISC_WAITING,          /* first connect failed; retried every reconnect_delay_sec */
	DISC_STOPPING,         /* detaching the controllers, then closing */
};

enum disc_read {
	READ_IDLE = 0,
	READ_HEADER,           /* the header, before the records */
	READ_ENTRY,            /* record rd_idx */
	READ_HEADER_AGAIN,     /* the header, after the records */
};

/* One NVMe subsystem entry of the log: a controller of the service. */
struct disc_entry {
	char subnqn[NVL_NVME_NQN_LEN];
	char traddr[257];
	char trsvcid[33];
	char adrfam[8];
	char ctrlr[NVME_NAME_MAX];
	bool in_log;             /* in the last log read */
	bool busy_warned;        /* removal refused while a bdev is open: said once */
};

struct nvme_disc {
	struct nvme_disc_opts o;
	enum disc_state state;
	struct host_ctrlr *hc;
	struct nvl_timer *timer;
	struct nvl_poller *poller;
	bool closed;             /* HOST_EV_CLOSED: free at the next tick */
	bool close_sent;         /* stopping: host_ctrlr_close() called */
	bool defunct;            /* its start failed: invisible, freed soon */
	uint64_t polled_ns;      /* poll_only, read_failed: when the log was last read */
	bool read_failed;        /* the last read failed: read again after NVME_DISC_POLL_SEC */
	bool retry;              /* retry the first connect (from a configuration) */
	uint64_t retry_at_ns;
	char last_error[256];

	/* the log */
	enum disc_read rd;
	bool read_again;         /* an event came while reading */
	bool aer_outstanding;
	bool log_read;           /* at least one whole log processed */
	struct nvl_nvmf_discovery_log hdr, hdr2;
	struct nvl_nvmf_discovery_entry *recs;
	uint32_t nrecs, rd_idx;
	uint64_t genctr;
	unsigned next_index;     /* NAME<next_index> for the next new entry */
	struct disc_entry *ents[DISC_MAX_ENTRIES];
	unsigned nents;
	unsigned attaching;      /* attaches whose first outcome is not in yet */

	/* the RPC waiting: start (wait_for_attach), stop */
	nvme_disc_done_fn done;
	void *done_arg;
	uint64_t attach_deadline_ns;

	TAILQ_ENTRY(nvme_disc) link;
};

static TAILQ_HEAD(, nvme_disc) g_discs = TAILQ_HEAD_INITIALIZER(g_discs);

static void disc_read_start(struct nvme_disc *d);
static void disc_aer_arm(struct nvme_disc *d);
static int disc_connect(struct nvme_disc *d);

static void
disc_report(struct nvme_disc *d, int rc, const char *why)
{
	nvme_disc_done_fn done = d->done;

	d->done = NULL;
	if (done)
		done(d->done_arg, d, rc, why);
}

/* ---- controllers of the entries -------------------------------------------------------------- */

static void
entry_attached(void *arg, struct nvme_ctrlr *c, int rc, const char *why)
{
	struct nvme_disc *d = arg;

	(void)c;
	(void)why;
	(void)rc; /* with retry_first_connect a failure leaves it waiting, already logged */
	if (d->attaching > 0)
		d->attaching--;
	if (d->attaching == 0 && d->log_read && d->state != DISC_STOPPING)
		disc_report(d, 0, NULL);
}

static void
entry_attach(struct nvme_disc *d, struct disc_entry *e)
{
	struct nvme_ctrlr_opts o;
	struct nvme_ctrlr *c = NULL;
	int rc;

	memset(&o, 0, sizeof(o));
	nvl_strlcpy(o.name, e->ctrlr, sizeof(o.name));
	nvl_strlcpy(o.trtype, disc_rdma(&d->o) ? "RDMA" : "TCP", sizeof(o.trtype));
	nvl_strlcpy(o.traddr, e->traddr, sizeof(o.traddr));
	nvl_strlcpy(o.trsvcid, e->trsvcid, sizeof(o.trsvcid));
	nvl_strlcpy(o.adrfam, e->adrfam, sizeof(o.adrfam));
	nvl_strlcpy(o.subnqn, e->subnqn, sizeof(o.subnqn));
	nvl_strlcpy(o.hostnqn, d->o.hostnqn, sizeof(o.hostnqn));
	memcpy(o.hostid, d->o.hostid, sizeof(o.hostid));
	o.num_io_queues = nvl_reactor_count() ? nvl_reactor_count() : 1;
	o.io_queue_size = 128;
	o.kato_ms = 10000;
	o.ctrlr_loss_timeout_sec = d->o.ctrlr_loss_timeout_sec;
	o.reconnect_delay_sec = d->o.reconnect_delay_sec;
	o.fast_io_fail_timeout_sec = d->o.fast_io_fail_timeout_sec;
	o.connect_timeout_ms = 10000;
	o.retry_first_connect = true;
	d->attaching++;
	rc = bdev_nvme_attach(&o, entry_attached, d, &c);
	if (rc < 0) {
		d->attaching--;
		NVL_ERRLOG("discovery %s: cannot attach %s at %s:%s as %s: %s", d->o.name,
			   e->subnqn, e->traddr, e->trsvcid, e->ctrlr, strerror(-rc));
		return;
	}
	nvl_strlcpy(c->disc_name, d->o.name, sizeof(c->disc_name));
	NVL_NOTICELOG("discovery %s: new entry %s at %s:%s: attaching it as %s", d->o.name,
		      e->subnqn, e->traddr, e->trsvcid, e->ctrlr);
}

static void
entry_detached(void *arg, struct nvme_ctrlr *c, int rc, const char *why)
{
	(void)arg;
	if (rc < 0)
		NVL_WARNLOG("%s: detach: %s", c->o.name, why ? why : strerror(-rc));
}

/* Detach what should go (left the log, or the service stops); forget
 * entries whose controller is gone. \return entries still held. */
static unsigned
disc_reap(struct nvme_disc *d)
{
	unsigned kept = 0;

	for (unsigned i = 0; i < d->nents; i++) {
		struct disc_entry *e = d->ents[i];
		struct nvme_ctrlr *c = bdev_nvme_ctrlr_find(e->ctrlr);
		char why[256];
		int rc;

		if (c && strcmp(c->disc_name, d->o.name) != 0)
			c = NULL; /* someone else's controller of that name */
		if (e->in_log && d->state != DISC_STOPPING) {
			d->ents[kept++] = e;
			continue;
		}
		if (c == NULL) {
			free(e);
			continue;
		}
		d->ents[kept++] = e;
		if (c->done != NULL || strcmp(bdev_nvme_ctrlr_state(c), "detaching") == 0)
			continue; /* its attach (or detach) outcome is not in yet */
		rc = bdev_nvme_detach(c, entry_detached, d, why, sizeof(why));
		if (rc == 0) {
			NVL_NOTICELOG("discovery %s: %s left the log: detaching %s", d->o.name,
				      e->subnqn, e->ctrlr);
		} else if (!e->busy_warned) {
			e->busy_warned = true;
			NVL_WARNLOG("discovery %s: %s left the log but %s stays: %s (retried "
				    "each second)",
				    d->o.name, e->subnqn, e->ctrlr, why);
		}
	}
	d->nents = kept;
	return kept;
}

/* A whole, consistent log: attach the new entries, detach the gone ones. */
static void
disc_process_log(struct nvme_disc *d)
{
	for (unsigned i = 0; i < d->nents; i++)
		d->ents[i]->in_log = false;
	for (uint32_t r = 0; r < d->nrecs; r++) {
		const struct nvl_nvmf_discovery_entry *x = &d->recs[r];
		struct disc_entry *e = NULL, k;

		if (!disc_entry_wanted(&d->o, x))
			continue;
		memset(&k, 0, sizeof(k));
		disc_field(k.subnqn, sizeof(k.subnqn), x->subnqn, sizeof(x->subnqn));
		disc_field(k.traddr, sizeof(k.traddr), x->traddr, sizeof(x->traddr));
		disc_field(k.trsvcid, sizeof(k.trsvcid), x->trsvcid, sizeof(x->trsvcid));
		nvl_strlcpy(k.adrfam, x->adrfam == NVL_NVMF_ADRFAM_IPV6 ? "IPv6" : "IPv4",
			    sizeof(k.adrfam));
		if (k.traddr[0] == '\0' || strcmp(k.traddr, "0.0.0.0") == 0 ||
		    strcmp(k.traddr, "::") == 0) {
			/* a listener on every address: reach it where discovery answered */
			nvl_strlcpy(k.traddr, d->o.traddr, sizeof(k.traddr));
			nvl_strlcpy(k.adrfam, d->o.adrfam, sizeof(k.adrfam));
		}
		for (unsigned i = 0; i < d->nents && e == NULL; i++)
			if (strcmp(d->ents[i]->subnqn, k.subnqn) == 0 &&
			    strcmp(d->ents[i]->traddr, k.traddr) == 0 &&
			    strcmp(d->ents[i]->trsvcid, k.trsvcid) == 0)
				e = d->ents[i];
		if (e) {
			e->in_log = true;
			continue;
		}
		if (d->nents == DISC_MAX_ENTRIES) {
			NVL_WARNLOG("discovery %s: more than %d entries; %s ignored", d->o.name,
				    DISC_MAX_ENTRIES, k.subnqn);
			continue;
		}
		e = malloc(sizeof(*e));
		if (e == NULL)
			continue;
		*e = k;
		e->in_log = true;
		if (snprintf(e->ctrlr, sizeof(e->ctrlr), "%.*s%u", NVME_NAME_MAX - 12, d->o.name,
			     d->next_index++) < 0)
			e->ctrlr[0] = '\0';
		d->ents[d->nents++] = e;
		entry_attach(d, e);
	}
	disc_reap(d);
	d->log_read = true;
	if (d->attaching == 0 || !d->o.wait_for_attach)
		disc_report(d, 0, NULL);
}

/* ---- reading the log --------------------------------------------------------------------------- */

static void disc_read_cb(void *arg, const struct nvl_nvme_cpl *cpl, int rc);

static int
disc_get_log(struct nvme_disc *d, void *buf, uint64_t off)
{
	struct nvl_nvme_cmd cmd = { 0 };
	uint32_t numd = 1024 / 4 - 1;

	cmd.opc = NVL_NVME_ADM_GET_LOG_PAGE;
	/* RAE clear: reading it re-arms the change event (Base 2.0, 5.16) */
	cmd.cdw10 = NVL_NVME_LOG_DISCOVERY | (numd & 0xffff) << 16;
	cmd.cdw11 = numd >> 16;
	cmd.cdw12 = (uint32_t)off;
	cmd.cdw13 = (uint32_t)(off >> 32);
	return host_ctrlr_admin(d->hc, &cmd, buf, 1024, NVL_XFER_FROM_CTRLR, 0, disc_read_cb, d);
}

static void
disc_read_fail(struct nvme_disc *d, const char *what, int rc)
{
	d->rd = READ_IDLE;
	snprintf(d->last_error, sizeof(d->last_error), "reading the discovery log: %s", what);
	/* a lost association reads it again when it is back; any other failure
	 * (an error status, no memory) after NVME_DISC_POLL_SEC, or the start
	 * would wait (and the service could not be stopped) until a change event */
	if (rc != -ENOTCONN) {
		NVL_WARNLOG("discovery %s: %s; reading it again in %d s", d->o.name, d->last_error,
			    NVME_DISC_POLL_SEC);
		d->read_failed = true;
		d->polled_ns = nvl_now_ns();
	}
}

static void
disc_read_next(struct nvme_disc *d)
{
	int rc;

	switch (d->rd) {
	case READ_HEADER:
		rc = disc_get_log(d, &d->hdr, 0);
		break;
	case READ_ENTRY:
		rc = disc_get_log(d, &d->recs[d->rd_idx], 1024 + (uint64_t)d->rd_idx * 1024);
		break;
	case READ_HEADER_AGAIN:
		rc = disc_get_log(d, &d->hdr2, 0);
		break;
	default:
		return;
	}
	if (rc < 0)
		disc_read_fail(d, strerror(-rc), rc);
}

static void
disc_read_cb(void *arg, const struct nvl_nvme_cpl *cpl, int rc)
{
	struct nvme_disc *d = arg;
	uint16_t st;

	if (d->state == DISC_STOPPING || d->closed) {
		d->rd = READ_IDLE;
		return;
	}
	if (rc < 0) {
		disc_read_fail(d, strerror(-rc), rc);
		return;
	}
	st = nvl_cpl_status(cpl);
	if (st != 0) {
		char why[64];

		snprintf(why, sizeof(why), "status 0x%03x", st);
		disc_read_fail(d, why, -EIO);
		return;
	}
	switch (d->rd) {
	case READ_HEADER:
		d->nrecs = (uint32_t)NVL_MIN(d->hdr.numrec, (uint64_t)DISC_MAX_ENTRIES);
		free(d->recs);
		d->recs = calloc(d->nrecs ? d->nrecs : 1, sizeof(*d->recs));
		if (d->recs == NULL) {
			disc_read_fail(d, "out of memory", -ENOMEM);
			return;
		}
		d->rd_idx = 0;
		d->rd = d->nrecs ? READ_ENTRY : READ_HEADER_AGAIN;
		break;
	case READ_ENTRY:
		if (++d->rd_idx == d->nrecs)
			d->rd = READ_HEADER_AGAIN;
		break;
	case READ_HEADER_AGAIN:
		if (d->hdr2.genctr != d->hdr.genctr || d->read_again) {
			/* changed while being read: once more */
			d->read_again = false;
			d->rd = READ_HEADER;
			break;
		}
		d->rd = READ_IDLE;
		if (d->genctr != d->hdr.genctr || !d->log_read)
			NVL_NOTICELOG("discovery %s: log generation %llu, %llu records", d->o.name,
				      (unsigned long long)d->hdr.genctr,
				      (unsigned long long)d->hdr.numrec);
		d->genctr = d->hdr.genctr;
		d->last_error[0] = '\0';
		disc_process_log(d);
		return;
	default:
		return;
	}
	disc_read_next(d);
}

static void
disc_read_start(struct nvme_disc *d)
{
	if (d->rd != READ_IDLE) {
		d->read_again = true;
		return;
	}
	d->read_again = false;
	d->read_failed = false;
	d->rd = READ_HEADER;
	disc_read_next(d);
}

/* ---- change events ------------------------------------------------------------------------------ */

static void
disc_aer_cb(void *arg, const struct nvl_nvme_cpl *cpl, int rc)
{
	struct nvme_disc *d = arg;
	uint32_t cdw0 = cpl ? cpl->cdw0 : 0;

	d->aer_outstanding = false;
	if (rc < 0 || d->state != DISC_READY || d->closed)
		return; /* the association went away: armed again when it is back */
	if (nvl_cpl_status(cpl) != 0) {
		NVL_WARNLOG("discovery %s: asynchronous event request failed (status 0x%03x); "
			    "the log is read every %d s instead",
			    d->o.name, nvl_cpl_status(cpl), NVME_DISC_POLL_SEC);
		d->o.poll_only = true;
		return;
	}
	/* cdw0: type bits 2:0, info 15:8, log page 23:16 */
	if ((cdw0 & 7) == NVL_NVME_AER_TYPE_NOTICE &&
	    ((cdw0 >> 8) & 0xff) == NVL_NVME_AER_NOTICE_DISCOVERY_CHANGED)
		NVL_DEBUGLOG(bdev_nvme, "discovery %s: log changed", d->o.name);
	disc_aer_arm(d);
	disc_read_start(d);
}

static void
disc_aer_arm(struct nvme_disc *d)
{
	struct nvl_nvme_cmd cmd = { 0 };

	if (d->aer_outstanding || d->o.poll_only)
		return;
	cmd.opc = NVL_NVME_ADM_ASYNC_EVENT;
	if (host_ctrlr_admin(d->hc, &cmd, NULL, 0, NVL_XFER_NONE, HOST_ADMIN_NO_TIMEOUT,
			     disc_aer_cb, d) == 0)
		d->aer_outstanding = true;
}

static void
disc_aec_cb(void *arg, const struct nvl_nvme_cpl *cpl, int rc)
{
	struct nvme_disc *d = arg;

	if (rc < 0 || d->state != DISC_READY || d->closed)
		return;
	if (nvl_cpl_status(cpl) != 0) {
		NVL_NOTICELOG("discovery %s: the target has no log change events (status "
			      "0x%03x); reading the log every %d s",
			      d->o.name, nvl_cpl_status(cpl), NVME_DISC_POLL_SEC);
		d->o.poll_only = true;
		return;
	}
	disc_aer_arm(d);
}

/* A (new) association: events on, then the log. */
static void
disc_associated(struct nvme_disc *d)
{
	const struct nvl_nvme_id_ctrl *id = host_ctrlr_id(d->hc);
	struct nvl_nvme_cmd cmd = { 0 };

	d->state = DISC_READY;
	d->aer_outstanding = false;
	d->rd = READ_IDLE;
	if (id->cntrltype != NVL_NVME_CNTRLTYPE_DISCOVERY) {
		snprintf(d->last_error, sizeof(d->last_error),
			 "%.64s:%.16s answers as an NVMe subsystem, not a discovery controller",
			 d->o.traddr, d->o.trsvcid);
		NVL_ERRLOG("discovery %s: %s", d->o.name, d->last_error);
		disc_report(d, -EMEDIUMTYPE, d->last_error);
		d->state = DISC_STOPPING;
		d->defunct = true;
		return;
	}
	if (!d->o.poll_only && (id->oaes & NVL_NVME_OAES_DISC_LOG)) {
		cmd.opc = NVL_NVME_ADM_SET_FEATURES;
		cmd.cdw10 = NVL_NVME_FEAT_ASYNC_EVENT_CONFIG;
		cmd.cdw11 = NVL_NVME_AEC_DISC_LOG;
		if (host_ctrlr_admin(d->hc, &cmd, NULL, 0, NVL_XFER_NONE, 0, disc_aec_cb, d) < 0)
			d->o.poll_only = true;
	} else if (!d->o.poll_only) {
		NVL_NOTICELOG("discovery %s: the target has no log change events; reading the "
			      "log every %d s",
			      d->o.name, NVME_DISC_POLL_SEC);
		d->o.poll_only = true;
	}
	disc_read_start(d);
}

/* ---- the discovery controller ------------------------------------------------------------------- */

static int
disc_event(void *arg, struct host_ctrlr *hc, enum host_event ev)
{
	struct nvme_disc *d = arg;

	switch (ev) {
	case HOST_EV_CONNECTED:
		if (d->state == DISC_WAITING || d->retry_at_ns)
			NVL_NOTICELOG("discovery %s: connected to %s:%s", d->o.name, d->o.traddr,
				      d->o.trsvcid);
		disc_associated(d);
		break;
	case HOST_EV_READY:
		NVL_NOTICELOG("discovery %s: reconnected to %s:%s", d->o.name, d->o.traddr,
			      d->o.trsvcid);
		disc_associated(d);
		break;
	case HOST_EV_CONNECT_FAILED:
		nvl_strlcpy(d->last_error, host_ctrlr_last_error(hc), sizeof(d->last_error));
		if (!d->retry) {
			disc_report(d, -ECONNREFUSED, d->last_error);
			d->state = DISC_STOPPING;
			d->defunct = true;
			break;
		}
		if (d->state != DISC_WAITING)
			NVL_WARNLOG("discovery %s: cannot reach %s:%s (%s); trying again every %u s",
				    d->o.name, d->o.traddr, d->o.trsvcid, d->last_error,
				    NVL_MAX(d->o.reconnect_delay_sec, 1u));
		d->state = DISC_WAITING;
		d->retry_at_ns = nvl_now_ns() +
				 (uint64_t)NVL_MAX(d->o.reconnect_delay_sec, 1u) * 1000000000ull;
		/* the first outcome is in: the configuration goes on */
		disc_report(d, 0, NULL);
		break;
	case HOST_EV_LOST:
		nvl_strlcpy(d->last_error, host_ctrlr_last_error(hc), sizeof(d->last_error));
		if (d->state == DISC_READY)
			NVL_WARNLOG("discovery %s: connection to %s:%s lost: %s; reconnecting "
				    "(its controllers stay)",
				    d->o.name, d->o.traddr, d->o.trsvcid, d->last_error);
		if (d->state != DISC_STOPPING)
			d->state = DISC_LOST;
		break;
	case HOST_EV_CLOSED:
		d->closed = true;
		break;
	default:
		break;
	}
	return 0;
}

static void
disc_free(struct nvme_disc *d)
{
	nvl_timer_destroy(d->timer);
	nvl_poller_destroy(d->poller);
	host_ctrlr_destroy(d->hc);
	for (unsigned i = 0; i < d->nents; i++)
		free(d->ents[i]);
	free(d->recs);
	TAILQ_REMOVE(&g_discs, d, link);
	disc_report(d, 0, NULL);
	free(d);
}

static int
disc_poll(struct nvme_disc *d)
{
	uint64_t now = nvl_now_ns();

	if (d->closed) {
		disc_free(d);
		return 1;
	}
	if (d->state == DISC_STOPPING) {
		if (disc_reap(d) > 0)
			return d->hc ? host_ctrlr_poll(d->hc, now) : 0;
		if (d->hc == NULL || host_ctrlr_state(d->hc) == HOST_CTRLR_FAILED ||
		    host_ctrlr_state(d->hc) == HOST_CTRLR_CLOSED) {
			d->closed = true; /* nothing to shut down: freed at the next tick */
			return 1;
		}
		if (!d->close_sent) {
			d->close_sent = true;
			host_ctrlr_close(d->hc); /* HOST_EV_CLOSED follows */
		}
		return host_ctrlr_poll(d->hc, now);
	}
	if (d->state == DISC_WAITING && now >= d->retry_at_ns &&
	    (d->hc == NULL || host_ctrlr_state(d->hc) == HOST_CTRLR_FAILED)) {
		/* the next attempt (a failed one sets the time of the one after) */
		host_ctrlr_destroy(d->hc);
		d->hc = NULL;
		d->retry_at_ns = now + (uint64_t)NVL_MAX(d->o.reconnect_delay_sec, 1u) * 1000000000ull;
		if (disc_connect(d) < 0)
			return 0;
	}
	if (d->hc == NULL)
		return 0;
	if (d->state == DISC_READY) {
		disc_reap(d); /* removals a busy bdev held back */
		if ((d->o.poll_only || d->read_failed) && d->rd == READ_IDLE &&
		    now - d->polled_ns >= (uint64_t)NVME_DISC_POLL_SEC * 1000000000ull) {
			d->polled_ns = now;
			disc_read_start(d);
		}
	}
	if (d->done && d->attach_deadline_ns && now > d->attach_deadline_ns) {
		snprintf(d->last_error, sizeof(d->last_error),
			 "the discovered subsystems did not attach within attach_timeout_ms");
		disc_report(d, -ETIMEDOUT, d->last_error);
		d->state = DISC_STOPPING; /* as SPDK: the service goes */
		d->defunct = true;
		return 1;
	}
	return host_ctrlr_poll(d->hc, now);
}

static int
disc_poller(void *arg)
{
	struct nvme_disc *d = arg;

	if (!d->closed && (d->hc == NULL || !host_ctrlr_busy(d->hc)))
		return 0;
	return disc_poll(d) > 0;
}

static int
disc_sleep(void *arg)
{
	struct nvme_disc *d = arg;

	if (d->closed || (d->hc && host_ctrlr_busy(d->hc)))
		nvl_reactor_sleep_at_most(1);
	return 0;
}

static void
disc_tick(void *arg)
{
	disc_poll(arg);
}

static void
disc_kick_msg(void *arg)
{
	disc_poll(arg);
}

static void
disc_kick(void *arg)
{
	if (nvl_reactor_msg(nvl_reactor_get(0), disc_kick_msg, arg) < 0)
		NVL_WARNLOG("discovery %s: cannot reach reactor 0", ((struct nvme_disc *)arg)->o.name);
}

static int
disc_connect(struct nvme_disc *d)
{
	struct host_ctrlr_opts ho;
	struct nvl_uri u;

	memset(&u, 0, sizeof(u));
	u.kind = disc_rdma(&d->o) ? NVL_URI_NVME_RDMA : NVL_URI_NVME_TCP;
	if (nvl_strlcpy(u.host, d->o.traddr, sizeof(u.host)) < 0 ||
	    nvl_strlcpy(u.port, d->o.trsvcid, sizeof(u.port)) < 0)
		return -EINVAL;
	nvl_strlcpy(u.nqn, NVL_NVME_DISCOVERY_NQN, sizeof(u.nqn));
	host_ctrlr_opts_default(&ho);
	ho.uri = &u;
	ho.hostnqn = d->o.hostnqn;
	memcpy(ho.hostid, d->o.hostid, 16);
	ho.kato_ms = DISC_KATO_MS;
	ho.send_keepalive = true;
	ho.connect_timeout_ms = 10000;
	ho.admin_timeout_ms = DISC_ADMIN_TIMEOUT_MS;
	ho.numeric_host = true;
	ho.io_queues = 1;
	ho.scan_ns = false;
	if (disc_rdma(&d->o))
		ho.window_bytes = DISC_RDMA_WINDOW;
	ho.ctrlr_loss_ms = -1; /* the service outlives outages */
	ho.reconnect_delay_ms = NVL_MAX(d->o.reconnect_delay_sec, 1u) * 1000;
	ho.reconnect_delay_max_ms = ho.reconnect_delay_ms * 8;
	ho.event = disc_event;
	ho.kick = disc_kick;
	ho.arg = d;
	if (d->state != DISC_WAITING)
		d->state = DISC_CONNECTING;
	return host_ctrlr_create(&ho, &d->hc);
}

/* ---- the module's face (bdev_nvme_internal.h) ---------------------------------------------------- */

int
bdev_nvme_discovery_start(const struct nvme_disc_opts *o, nvme_disc_done_fn done, void *arg)
{
	struct nvme_disc *d;
	int rc;

	if (bdev_nvme_discovery_find(o->name))
		return -EEXIST;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->o = *o;
	d->retry = o->retry_first_connect;
	d->poller = nvl_poller_create(disc_poller, d, "bdev-nvme-disc");
	d->timer = nvl_timer_create(disc_tick, d, DISC_TICK_US, DISC_TICK_US);
	if (d->poller == NULL || d->timer == NULL) {
		rc = -ENOMEM;
		goto err_driver;
	}
	nvl_poller_set_sleep_hook(d->poller, disc_sleep);
	rc = disc_connect(d);
	if (rc < 0)
		goto err_driver;
	if (o->attach_timeout_ms)
		d->attach_deadline_ns = nvl_now_ns() + (uint64_t)o->attach_timeout_ms * 1000000ull;
	d->done = done;
	d->done_arg = arg;
	TAILQ_INSERT_TAIL(&g_discs, d, link);
	return 0;
err_driver:
	nvl_timer_destroy(d->timer);
	nvl_poller_destroy(d->poller);
	free(d);
	return rc;
}

int
bdev_nvme_discovery_stop(struct nvme_disc *d, nvme_disc_done_fn done, void *arg, char *why,
			 size_t why_len)
{
	if (d->state == DISC_STOPPING || d->done) {
		snprintf(why, why_len, "discovery %s is %s", d->o.name,
			 d->state == DISC_STOPPING ? "stopping" : "starting");
		return -EBUSY;
	}
	for (unsigned i = 0; i < d->nents; i++) {
		struct nvme_ctrlr *c = bdev_nvme_ctrlr_find(d->ents[i]->ctrlr);

		if (c && strcmp(c->disc_name, d->o.name) == 0 &&
		    bdev_nvme_ctrlr_in_use(c, why, why_len))
			return -EBUSY;
	}
	d->state = DISC_STOPPING;
	d->done = done;
	d->done_arg = arg;
	NVL_NOTICELOG("discovery %s: stopping; detaching its %u controller%s", d->o.name, d->nents,
		      d->nents == 1 ? "" : "s");
	disc_poll(d);
	return 0;
}

void
bdev_nvme_discovery_fini(void)
{
	struct nvme_disc *d, *t;

	/* the controllers go with bdev_nvme_detach_all(); the connections now */
	TAILQ_FOREACH_SAFE(d, &g_discs, link, t) {
		d->done = NULL;
		disc_free(d);
	}
}

struct nvme_disc *
bdev_nvme_discovery_find(const char *name)
{
	struct nvme_disc *d;

	TAILQ_FOREACH(d, &g_discs, link)
		if (!d->defunct && strcmp(d->o.name, name) == 0)
			return d;
	return NULL;
}

static const char *
disc_state_str(const struct nvme_disc *d)
{
	switch (d->state) {
	case DISC_CONNECTING: return "connecting";
	case DISC_READY: return "ready";
	case DISC_LOST: return "reconnecting";
	case DISC_WAITING: return "waiting to reconnect";
	case DISC_STOPPING: return "stopping";
	}
	return "?";
}

json_t *
bdev_nvme_discovery_info_all(void)
{
	json_t *arr = json_array();
	struct nvme_disc *d;

	TAILQ_FOREACH(d, &g_discs, link) {
		json_t *ctrlrs, *o;

		if (d->defunct)
			continue;
		ctrlrs = json_array();
		for (unsigned i = 0; i < d->nents; i++) {
			const struct disc_entry *e = d->ents[i];
			struct nvme_ctrlr *c = bdev_nvme_ctrlr_find(e->ctrlr);

			json_array_append_new(
				ctrlrs,
				json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:b}", "name",
					  e->ctrlr, "state",
					  c && strcmp(c->disc_name, d->o.name) == 0
						  ? bdev_nvme_ctrlr_state(c)
						  : "detached",
					  "trid", "trtype", disc_rdma(&d->o) ? "RDMA" : "TCP",
					  "adrfam", e->adrfam, "traddr",
					  e->traddr, "trsvcid", e->trsvcid, "subnqn", e->subnqn,
					  "in_log", e->in_log));
		}
		o = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:I, s:b, s:o, s:[]}",
			      "name", d->o.name, "state", disc_state_str(d), "trid", "trtype",
			      disc_rdma(&d->o) ? "RDMA" : "TCP",
			      "adrfam", d->o.adrfam, "traddr", d->o.traddr, "trsvcid",
			      d->o.trsvcid, "subnqn", NVL_NVME_DISCOVERY_NQN, "hostnqn",
			      d->o.hostnqn, "genctr", (json_int_t)d->genctr, "log_change_events",
			      !d->o.poll_only, "ctrlrs", ctrlrs, "referrals");
		if (d->last_error[0])
			json_object_set_new(o, "last_error", json_string(d->last_error));
		json_array_append_new(arr, o);
	}
	return arr;
}

void
bdev_nvme_discovery_write_config(json_t *calls)
{
	struct nvme_disc *d;

	TAILQ_FOREACH(d, &g_discs, link) {
		if (d->state == DISC_STOPPING || d->defunct)
			continue;
		json_array_append_new(
			calls,
			json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:i, s:i}}",
				  "method", "bdev_nvme_start_discovery", "params", "name", d->o.name,
				  "trtype", disc_rdma(&d->o) ? "rdma" : "tcp", "adrfam", d->o.adrfam, "traddr", d->o.traddr,
				  "trsvcid", d->o.trsvcid, "hostnqn", d->o.hostnqn,
				  "wait_for_attach", false, "ctrlr_loss_timeout_sec",
				  (json_int_t)d->o.ctrlr_loss_timeout_sec, "reconnect_delay_sec",
				  (int)d->o.reconnect_delay_sec, "fast_io_fail_timeout_sec",
				  (int)d->o.fast_io_fail_timeout_sec));
	}
}
