/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/TCP target transport, live connections across `nvlend upgrade`
 * (issue 16; docs/lifetime.md, docs/nvme-tcp.md): the old worker stops each
 * connection at a PDU boundary and hands its socket and a record of its
 * state to the fd store; the new worker takes them back, makes the
 * controller again with the same controller ID and resumes reading where
 * the old one stopped. The host sees a pause, no error, no reconnect.
 *
 * Old worker (tcp_keep_suspend, the transport's suspend op, reactor 0):
 *  1. connections not yet bound to a controller are closed (the host
 *     retries; the listener itself is kept by the target), and so are
 *     controllers whose admin queue is in the middle of DH-HMAC-CHAP;
 *  2. every other queue (admin on reactor 0, each I/O queue on its own
 *     reactor) is asked to stop: it finishes the PDU it is receiving and
 *     parses nothing after it (the parser's on_pdu says stop); bytes of
 *     later PDUs already read stay in its staging buffer;
 *  3. it waits until every command it started has completed and every
 *     response (C2HData, R2T, CapsuleResp) is written to the socket. Two
 *     kinds of commands are carried instead of waited for: Asynchronous
 *     Event Requests the controller holds (the next worker holds them
 *     again), and writes waiting for H2CData after an R2T (their SQE, the
 *     R2T window and the data received so far are carried);
 *  4. its record goes to the store first ("tcp.ID.qQ.state", a sealed
 *     memfd), then its socket ("tcp.ID.qQ"); the connection is TC_KEPT and
 *     this worker never reads, writes or shuts it down again;
 *  5. when every queue is kept or dropped (or after 2 s: what is not
 *     stopped by then closes with the process) the worker exits for the
 *     keeper to start the new binary.
 * A kill -9 in the middle leaves records that are valid (a record is
 * written only once its queue stopped for good) and the keeper's restart
 * takes them back. A kill -9 while serving leaves no record: connections
 * close and their hosts reconnect, as before.
 *
 * New worker (tcp_keep_restore, the transport's restore op, reactor 0,
 * after the configuration was replayed): per controller ID the admin record
 * first (nvl_nvmf_connect with restore: same cntlid, DH-HMAC-CHAP taken as
 * done if it was, features, CC/CSTS, keep-alive), then its I/O queues
 * (each placed on a reactor); carried AERs are submitted again, carried
 * writes wait for their H2CData again, carried bytes are parsed first.
 * Nothing is read from the sockets yet: the records stay in the store
 * until the worker told the keeper READY=1 (before that the keeper rolls
 * back to the previous binary, which must find them as they were). At
 * READY the names are removed and each queue starts reading on its reactor.
 * A record that does not check out, or a controller that cannot be made
 * again, closes its connections (logged; the host reconnects). A controller
 * whose subsystem is built after the restore (lending's targets) waits for
 * it, up to TCP_PARK_MAX_US (keep_park).
 *
 * Lost across the hand-over: asynchronous events raised but not yet
 * reported (as for shm), a DH-HMAC-CHAP transaction in progress (those
 * queues are closed), connections that had not sent their Connect.
 *
 * Threads: the suspend state and the restore on reactor 0; a queue's stop,
 * record and store on its own reactor, which reports to reactor 0 with a
 * message.
 */
#include "transport/tcp_internal.h"
#include "nvmf/auth.h"
#include "util/fdstore.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

NVL_LOG_DECLARE_COMPONENT(nvmf_tcp);

#define TCP_KEEP_MAGIC 0x504b4354u /* "TCKP" */
#define TCP_KEEP_VERSION 1
#define TCP_KEEP_DEADLINE_US 2000000
#define TCP_KEEP_MAX_RECORD (64u << 20)

/* the controller, in the admin queue's record */
struct tcp_keep_ctrlr {
	uint16_t cntlid;
	uint16_t max_io_queues;
	uint16_t max_queue_entries;
	uint8_t mdts;
	uint8_t authenticated;
	uint32_t kato_ms;
	uint32_t ioccsz, iorcsz;
	uint32_t cc, csts;
	uint32_t arbitration, power_mgmt, temp_thresh, err_recovery, vwc;
	uint32_t num_queues, num_queues_set;
	uint32_t int_coalescing, write_atomicity, aec, resv_notif_mask;
};

struct tcp_keep_rec {
	uint32_t magic;
	uint32_t version;
	uint32_t size;              /* the whole record with what follows it */
	uint32_t id;                /* the controller's id in the store names */
	uint16_t qid;
	uint16_t cntlid;
	uint16_t sqhd;
	uint8_t hdgst, ddgst;
	uint8_t sqflow_off;
	uint8_t ic_done;
	uint8_t authenticated;      /* I/O queue: its own DH-HMAC-CHAP succeeded */
	uint8_t rsvd0;
	uint32_t hpda_align;
	uint32_t entries;
	uint32_t nreqs;
	uint32_t icd_max;
	uint32_t maxh2cdata;
	uint32_t rx_align, rx_max_data;
	uint64_t cmds, bytes_in, bytes_out, r2ts, c2h_success;
	char subnqn[NVL_NVME_NQN_LEN];
	char hostnqn[NVL_NVME_NQN_LEN];
	uint8_t hostid[16];
	struct nvl_listen_addr listener;
	struct tcp_keep_ctrlr ctrlr; /* qid 0 only */
	uint32_t nheld;              /* struct tcp_keep_held follow */
	uint32_t npart;              /* then struct tcp_keep_part, each with h2c_off bytes */
	uint32_t leftover;           /* then the bytes read but not parsed */
	uint32_t rsvd1;
	uint64_t stopped_ns;         /* CLOCK_MONOTONIC: when it was asked to stop reading */
};

struct tcp_keep_held {
	uint16_t ttag;
	uint16_t rsvd[3];
	struct nvl_nvme_cmd cmd;
};

struct tcp_keep_part {
	uint16_t ttag;
	uint8_t data_error;
	uint8_t rsvd;
	uint32_t len;
	uint32_t h2c_off;
	uint32_t r2t_end;
	struct nvl_nvme_cmd cmd;
};

/* ---- the old worker: stop and keep ----------------------------------------------------------- */

static struct {
	bool active;                /* suspended: every new connection is refused */
	unsigned waiting;           /* queues asked to stop that did not report yet */
	unsigned kept, dropped, ctrlrs;
	uint64_t start_ns;
	unsigned gen;               /* the deadline timer of an older round does nothing */
	void (*done)(void);
	uint32_t next_id;
} g_keep = { .next_id = 1 };

struct keep_msg {
	struct tcp_conn *conn;
	uint32_t id;
	bool kept;
};

static void keep_finish(void);

static void
keep_report_home(void *arg)
{
	struct keep_msg *m = arg;

	if (m->kept)
		g_keep.kept++;
	else
		g_keep.dropped++;
	free(m);
	if (g_keep.waiting && --g_keep.waiting == 0)
		keep_finish();
}

/* the queue's reactor: it is kept or it is not; reactor 0 counts */
static void
keep_report(struct tcp_conn *c, bool kept)
{
	struct keep_msg *m = calloc(1, sizeof(*m));

	c->keep = TK_NONE;
	if (m == NULL)
		abort(); /* tiny control-path allocation */
	m->kept = kept;
	if (nvl_reactor_msg(nvl_reactor_get(0), keep_report_home, m) < 0) {
		NVL_ERRLOG("tcp: cannot reach reactor 0 about a kept connection");
		free(m);
	}
}

static void
keep_name(char *buf, size_t len, uint32_t id, uint16_t qid, bool state)
{
	snprintf(buf, len, "tcp.%u.q%u%s", id, qid, state ? ".state" : "");
}

static int
keep_write(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
keep_fill_ctrlr(struct tcp_keep_ctrlr *k, const struct nvl_nvmf_ctrlr *tc)
{
	const struct nvl_nvme_ctrlr *n = &tc->nvme;

	k->cntlid = n->cntlid;
	k->max_io_queues = n->max_io_queues;
	k->max_queue_entries = n->max_queue_entries;
	k->mdts = n->mdts;
	k->authenticated = nvl_nvmf_auth_authenticated(tc->auth);
	k->kato_ms = n->kato_ms;
	k->ioccsz = n->ioccsz;
	k->iorcsz = n->iorcsz;
	k->cc = n->cc;
	k->csts = n->csts;
	k->arbitration = n->feat_arbitration;
	k->power_mgmt = n->feat_power_mgmt;
	k->temp_thresh = n->feat_temp_thresh;
	k->err_recovery = n->feat_err_recovery;
	k->vwc = n->feat_vwc;
	k->num_queues = n->feat_num_queues;
	k->num_queues_set = n->num_queues_set;
	k->int_coalescing = n->feat_int_coalescing;
	k->write_atomicity = n->feat_write_atomicity;
	k->aec = n->feat_aec;
	k->resv_notif_mask = n->feat_resv_notif_mask;
}

static void
keep_apply_ctrlr(const struct tcp_keep_ctrlr *k, struct nvl_nvmf_ctrlr *tc)
{
	struct nvl_nvme_ctrlr *n = &tc->nvme;

	n->cc = k->cc;
	n->csts = k->csts;
	n->feat_arbitration = k->arbitration;
	n->feat_power_mgmt = k->power_mgmt;
	n->feat_temp_thresh = k->temp_thresh;
	n->feat_err_recovery = k->err_recovery;
	n->feat_vwc = k->vwc;
	n->feat_num_queues = k->num_queues;
	n->num_queues_set = k->num_queues_set != 0;
	n->feat_int_coalescing = k->int_coalescing;
	n->feat_write_atomicity = k->write_atomicity;
	n->feat_aec = k->aec;
	n->feat_resv_notif_mask = k->resv_notif_mask;
	n->kato_ms = k->kato_ms;
}

/* The record of a stopped queue into a sealed memfd. \return the fd or -errno. */
static int
keep_record(struct tcp_conn *c)
{
	struct tcp_keep_rec rec;
	uint32_t leftover = c->stage_len - c->stage_off;
	size_t size = sizeof(rec);
	int fd, rc;

	memset(&rec, 0, sizeof(rec));
	rec.magic = TCP_KEEP_MAGIC;
	rec.version = TCP_KEEP_VERSION;
	rec.id = c->keep_id;
	rec.qid = c->qid;
	rec.cntlid = c->tc->nvme.cntlid;
	rec.sqhd = c->sqhd;
	rec.hdgst = c->hdgst;
	rec.ddgst = c->ddgst;
	rec.sqflow_off = c->sqflow_off;
	rec.ic_done = c->rx.ic_done;
	rec.authenticated = c->qid != 0 && nvl_nvmf_auth_authenticated(c->auth);
	rec.hpda_align = c->hpda_align;
	rec.entries = c->entries;
	rec.nreqs = c->nreqs;
	rec.icd_max = c->icd_max;
	rec.maxh2cdata = c->maxh2cdata;
	rec.rx_align = c->rx.align;
	rec.rx_max_data = c->rx.max_data;
	rec.cmds = c->cmds;
	rec.bytes_in = c->bytes_in;
	rec.bytes_out = c->bytes_out;
	rec.r2ts = c->r2ts;
	rec.c2h_success = c->c2h_success;
	rec.stopped_ns = g_keep.start_ns;
	nvl_strlcpy(rec.subnqn, c->tc->nvme.subnqn, sizeof(rec.subnqn));
	nvl_strlcpy(rec.hostnqn, c->tc->nvme.hostnqn, sizeof(rec.hostnqn));
	memcpy(rec.hostid, c->tc->nvme.hostid, sizeof(rec.hostid));
	rec.listener = c->listener;
	if (c->qid == 0)
		keep_fill_ctrlr(&rec.ctrlr, c->tc);
	for (uint32_t i = 0; i < c->nreqs; i++) {
		const struct tcp_req *r = &c->reqs[i];

		if (r->state == TR_EXEC) {
			rec.nheld++;
			size += sizeof(struct tcp_keep_held);
		} else if (r->state == TR_WAIT_H2C) {
			rec.npart++;
			size += sizeof(struct tcp_keep_part) + r->h2c_off;
		}
	}
	rec.leftover = leftover;
	size += leftover;
	if (size > TCP_KEEP_MAX_RECORD)
		return -EFBIG;
	rec.size = (uint32_t)size;

	fd = memfd_create("nvlend-tcp-keep", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	rc = keep_write(fd, &rec, sizeof(rec));
	for (uint32_t i = 0; i < c->nreqs && rc == 0; i++) {
		const struct tcp_req *r = &c->reqs[i];

		if (r->state == TR_EXEC) {
			struct tcp_keep_held h = { .ttag = r->ttag, .cmd = r->nvme.cmd };

			rc = keep_write(fd, &h, sizeof(h));
		}
	}
	for (uint32_t i = 0; i < c->nreqs && rc == 0; i++) {
		const struct tcp_req *r = &c->reqs[i];

		if (r->state == TR_WAIT_H2C) {
			struct tcp_keep_part p = {
				.ttag = r->ttag, .data_error = r->data_error, .len = r->len,
				.h2c_off = r->h2c_off, .r2t_end = r->r2t_end, .cmd = r->nvme.cmd,
			};

			rc = keep_write(fd, &p, sizeof(p));
			if (rc == 0 && r->h2c_off)
				rc = keep_write(fd, r->buf, r->h2c_off);
		}
	}
	if (rc == 0 && leftover)
		rc = keep_write(fd, c->stage + c->stage_off, leftover);
	if (rc == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
		rc = -errno;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

void
tcp_keep_check(struct tcp_conn *c)
{
	char name[64];
	const char *why = NULL;
	int fd, rc;

	if (c->state != TC_ACTIVE || c->terminated || c->close_after_flush) {
		why = "it is ending";
		goto drop;
	}
	if (c->qid != 0 && c->auth && !nvl_nvmf_auth_authenticated(c->auth)) {
		why = "DH-HMAC-CHAP in progress";
		goto drop;
	}
	if (!tcp_rx_at_boundary(c) || !nvl_tcp_txq_empty(&c->txq))
		return;
	for (uint32_t i = 0; i < c->nreqs; i++) {
		const struct tcp_req *r = &c->reqs[i];

		switch (r->state) {
		case TR_FREE:
		case TR_WAIT_H2C:
			break;
		case TR_EXEC:
			/* a held Asynchronous Event Request is carried; the rest completes */
			if (c->qid == 0 && r->nvme.cmd.opc == NVL_NVME_ADM_ASYNC_EVENT)
				break;
			return;
		default:
			return;
		}
	}
	fd = keep_record(c);
	if (fd < 0) {
		why = "cannot write its record";
		goto drop;
	}
	/* the record first: a socket without one is never taken back */
	keep_name(name, sizeof(name), c->keep_id, c->qid, true);
	rc = nvl_fdstore_put(name, fd);
	close(fd);
	if (rc == 0) {
		keep_name(name, sizeof(name), c->keep_id, c->qid, false);
		rc = nvl_fdstore_put(name, c->fd);
		if (rc < 0) {
			keep_name(name, sizeof(name), c->keep_id, c->qid, true);
			(void)nvl_fdstore_remove(name);
		}
	}
	if (rc < 0) {
		why = "the fd store refused it";
		goto drop;
	}
	/* never touched again here: no shutdown, no more reads or writes */
	tcp_conn_detach(c);
	c->state = TC_KEPT;
	NVL_DEBUGLOG(nvmf_tcp, "%s: cntlid %u qid %u kept for the next worker (%u bytes carried)",
		     c->peer, c->tc->nvme.cntlid, c->qid, c->stage_len - c->stage_off);
	keep_report(c, true);
	return;
drop:
	NVL_WARNLOG("tcp: %s: cntlid %u qid %u cannot move to the next worker (%s): closing it",
		    c->peer, c->tc ? c->tc->nvme.cntlid : 0, c->qid, why);
	keep_report(c, false);
	tcp_conn_error(c, "upgrade: cannot be handed over");
}

/* the queue's reactor: stop it at the next PDU boundary */
static void
keep_stop_on_reactor(void *arg)
{
	struct keep_msg *m = arg;
	struct tcp_conn *c = m->conn;

	free(m);
	c->keep = TK_STOPPING;
	tcp_conn_service(c, false);
}

static void
keep_stop(struct tcp_conn *c, uint32_t id, struct nvl_reactor *on)
{
	struct keep_msg *m;

	g_keep.waiting++;
	if (on == nvl_reactor_get(0)) {
		c->keep_id = id;
		c->keep = TK_STOPPING;
		tcp_conn_service(c, false);
		return;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		abort();
	m->conn = c;
	m->id = id;
	c->keep_id = id; /* written before the message: the queue's reactor reads it after */
	if (nvl_reactor_msg(on, keep_stop_on_reactor, m) < 0) {
		free(m);
		g_keep.waiting--;
		g_keep.dropped++;
	}
}

static void
keep_finish(void)
{
	void (*done)(void) = g_keep.done;

	g_keep.gen++;
	g_keep.done = NULL;
	NVL_NOTICELOG("tcp: upgrade: %u queue(s) of %u controller(s) stopped at a PDU boundary and "
		      "kept in %llu us, %u closed",
		      g_keep.kept, g_keep.ctrlrs,
		      (unsigned long long)((nvl_now_ns() - g_keep.start_ns) / 1000), g_keep.dropped);
	if (done)
		done();
}

static void
keep_deadline(void *arg)
{
	if ((unsigned)(uintptr_t)arg != g_keep.gen || g_keep.done == NULL)
		return;
	NVL_WARNLOG("tcp: upgrade: %u queue(s) did not stop within %u ms: they close with this "
		    "worker", g_keep.waiting, TCP_KEEP_DEADLINE_US / 1000);
	g_keep.dropped += g_keep.waiting;
	g_keep.waiting = 0;
	keep_finish();
}

void
tcp_keep_closing(struct tcp_conn *c)
{
	if (c->keep == TK_STOPPING)
		keep_report(c, false);
}

bool
tcp_keep_suspended(void)
{
	return g_keep.active;
}

void
tcp_keep_suspend(void (*done)(void))
{
	struct tcp_ctrlr *ctl, *tctl;
	struct tcp_conn *c, *tc;

	if (!nvl_fdstore_available() || g_keep.active) {
		done();
		return;
	}
	g_keep.active = true;
	g_keep.done = done;
	g_keep.start_ns = nvl_now_ns();
	g_keep.waiting = 1; /* this call's own: nothing finishes before the loop is over */
	TAILQ_FOREACH_SAFE(c, &g_tcp_pending, link, tc)
		tcp_conn_close(c, "daemon upgrading: no Connect yet, cannot be handed over");
	TAILQ_FOREACH_SAFE(ctl, &g_tcp_ctrlrs, link, tctl) {
		uint32_t id;

		if (ctl->closing || ctl->admin == NULL || ctl->tc == NULL)
			continue;
		if (ctl->tc->auth && !nvl_nvmf_auth_authenticated(ctl->tc->auth)) {
			NVL_WARNLOG("tcp: controller %u of %s: DH-HMAC-CHAP in progress, cannot be "
				    "handed over: closing it", ctl->tc->nvme.cntlid,
				    ctl->tc->nvme.hostnqn);
			tcp_ctrlr_teardown(ctl, "upgrade during authentication");
			continue;
		}
		id = g_keep.next_id++;
		g_keep.ctrlrs++;
		keep_stop(ctl->admin, id, nvl_reactor_get(0));
		for (unsigned q = 1; q <= TCP_MAX_IO_QUEUES; q++)
			if (ctl->ioq[q])
				keep_stop(ctl->ioq[q], id, ctl->ioq_reactor[q]);
	}
	if (nvl_timer_create(keep_deadline, (void *)(uintptr_t)g_keep.gen, TCP_KEEP_DEADLINE_US,
			     0) == NULL)
		NVL_WARNLOG("tcp: upgrade: no deadline timer");
	if (--g_keep.waiting == 0)
		keep_finish();
}

/* ---- the new worker: take back and resume ---------------------------------------------------- */

struct keep_found {
	uint32_t id;
	uint16_t qid;
};

struct keep_scan {
	struct keep_found *f;
	unsigned n, cap;
	uint32_t max_id;
};

static void
keep_scan_name(void *arg, const char *name, int fd)
{
	struct keep_scan *s = arg;
	unsigned id, qid;
	int end = 0;

	(void)fd;
	if (sscanf(name, "tcp.%u.q%u%n", &id, &qid, &end) != 2 || end == 0 || qid > 0xffff)
		return;
	if (id > s->max_id)
		s->max_id = id;
	if (strcmp(name + end, ".state") != 0)
		return;
	if (s->n == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 64;
		struct keep_found *f = realloc(s->f, cap * sizeof(*f));

		if (f == NULL)
			return;
		s->f = f;
		s->cap = cap;
	}
	s->f[s->n].id = id;
	s->f[s->n++].qid = (uint16_t)qid;
}

static int
keep_found_cmp(const void *a, const void *b)
{
	const struct keep_found *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return (int)x->qid - (int)y->qid;
}

static void
keep_forget(uint32_t id, uint16_t qid)
{
	char name[64];

	keep_name(name, sizeof(name), id, qid, true);
	(void)nvl_fdstore_remove(name);
	keep_name(name, sizeof(name), id, qid, false);
	(void)nvl_fdstore_remove(name);
}

/* Take the record and socket of (id, qid); the record is checked whole. */
static const char *
keep_take(uint32_t id, uint16_t qid, struct tcp_keep_rec **out, int *sock)
{
	char name[64];
	struct tcp_keep_rec *rec;
	struct stat st;
	int fd, type = 0;
	socklen_t tl = sizeof(type);
	size_t need;
	ssize_t n;

	*out = NULL;
	*sock = -1;
	keep_name(name, sizeof(name), id, qid, false);
	*sock = nvl_fdstore_take(name);
	keep_name(name, sizeof(name), id, qid, true);
	fd = nvl_fdstore_take(name);
	if (fd < 0 || *sock < 0) {
		if (fd >= 0)
			close(fd);
		return "the record or the socket is missing";
	}
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(*rec) ||
	    st.st_size > (off_t)TCP_KEEP_MAX_RECORD) {
		close(fd);
		return "the record has a wrong size";
	}
	rec = malloc((size_t)st.st_size);
	if (rec == NULL) {
		close(fd);
		return "out of memory";
	}
	n = pread(fd, rec, (size_t)st.st_size, 0);
	close(fd);
	if (n != st.st_size || rec->magic != TCP_KEEP_MAGIC || rec->size != (uint32_t)n) {
		free(rec);
		return "the record is damaged";
	}
	if (rec->version != TCP_KEEP_VERSION) {
		free(rec);
		return "the record is of another version";
	}
	/* the previous worker is trusted no more than its memory: every bound checked */
	need = sizeof(*rec) + (size_t)rec->nheld * sizeof(struct tcp_keep_held) + rec->leftover;
	if (rec->id != id || rec->qid != qid || rec->nreqs == 0 || rec->nreqs > 4096 ||
	    rec->entries < 2 || rec->entries > 65536 || rec->nheld > rec->nreqs ||
	    rec->npart > rec->nreqs || rec->leftover > TCP_STAGE_SIZE || need > rec->size ||
	    memchr(rec->subnqn, '\0', sizeof(rec->subnqn)) == NULL ||
	    memchr(rec->hostnqn, '\0', sizeof(rec->hostnqn)) == NULL ||
	    memchr(rec->listener.traddr, '\0', sizeof(rec->listener.traddr)) == NULL ||
	    memchr(rec->listener.trsvcid, '\0', sizeof(rec->listener.trsvcid)) == NULL ||
	    memchr(rec->listener.trtype, '\0', sizeof(rec->listener.trtype)) == NULL ||
	    memchr(rec->listener.adrfam, '\0', sizeof(rec->listener.adrfam)) == NULL ||
	    rec->hpda_align == 0 || rec->hpda_align > 128 || rec->rx_align == 0 ||
	    rec->maxh2cdata < NVL_TCP_MIN_MAXH2CDATA || rec->maxh2cdata > NVL_NVME_MAX_XFER) {
		free(rec);
		return "the record does not check out";
	}
	if (getsockopt(*sock, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM) {
		free(rec);
		return "the descriptor is not a stream socket";
	}
	*out = rec;
	return NULL;
}

/* A connection from a record (not attached to any reactor yet). */
static struct tcp_conn *
keep_conn_new(const struct tcp_keep_rec *rec, int sock)
{
	struct tcp_conn *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->stage = malloc(TCP_STAGE_SIZE)) == NULL) {
		free(c);
		return NULL;
	}
	c->fd = sock;
	c->listener = rec->listener;
	c->accepted_ns = nvl_now_ns();
	c->last_rx_ns = c->accepted_ns;
	c->hdgst = rec->hdgst;
	c->ddgst = rec->ddgst;
	c->hpda_align = rec->hpda_align;
	c->sqflow_off = rec->sqflow_off;
	c->qid = rec->qid;
	c->entries = rec->entries;
	c->icd_max = rec->icd_max;
	c->maxh2cdata = rec->maxh2cdata;
	c->sqhd = rec->sqhd;
	c->cmds = rec->cmds;
	c->bytes_in = rec->bytes_in;
	c->bytes_out = rec->bytes_out;
	c->r2ts = rec->r2ts;
	c->c2h_success = rec->c2h_success;
	c->keep = TK_RESTORED;
	c->keep_id = rec->id;
	c->keep_since = rec->stopped_ns;
	nvl_tcp_txq_init(&c->txq);
	nvl_tcp_rx_init(&c->rx, false, rec->rx_max_data);
	c->rx.hdgst = c->hdgst;
	c->rx.ddgst = c->ddgst;
	c->rx.align = rec->rx_align;
	c->rx.ic_done = rec->ic_done;
	tcp_conn_count_peer(c);
	__atomic_fetch_add(&g_tcp_nconns, 1, __ATOMIC_RELAXED);
	if (tcp_conn_alloc_slots(c, rec->nreqs) < 0) {
		__atomic_fetch_sub(&g_tcp_nconns, 1, __ATOMIC_RELAXED);
		free(c->stage);
		free(c);
		return NULL;
	}
	return c;
}

/* Free a restored connection that never served (its socket is closed). */
static void
keep_conn_discard(struct tcp_conn *c)
{
	c->ctl = NULL;
	c->state = TC_CLOSING;
	c->keep = TK_NONE;
	TAILQ_INSERT_TAIL(&g_tcp_pending, c, link); /* tcp_conn_free takes it off */
	tcp_conn_try_free(c);
}

/* The carried commands and bytes of rec into c (whose tc is set). \return NULL or why not. */
static const char *
keep_conn_fill(struct tcp_conn *c, const struct tcp_keep_rec *rec, unsigned *held,
	       unsigned *parts)
{
	const uint8_t *p = (const uint8_t *)(rec + 1), *end = (const uint8_t *)rec + rec->size;
	struct tcp_req *r;

	for (uint32_t i = 0; i < rec->nheld; i++, p += sizeof(struct tcp_keep_held)) {
		struct tcp_keep_held h;

		memcpy(&h, p, sizeof(h));
		if (c->qid != 0 || h.cmd.opc != NVL_NVME_ADM_ASYNC_EVENT)
			return "a carried command is not an Asynchronous Event Request";
		if (tcp_req_revive(c, h.ttag, &h.cmd, &r) < 0)
			return "a carried Asynchronous Event Request does not fit";
		tcp_req_run(c, r);
		(*held)++;
	}
	for (uint32_t i = 0; i < rec->npart; i++) {
		struct tcp_keep_part pt;

		if ((size_t)(end - p) < sizeof(pt))
			return "the record is short";
		memcpy(&pt, p, sizeof(pt));
		p += sizeof(pt);
		if (pt.h2c_off > pt.len || pt.r2t_end > pt.len || pt.h2c_off >= pt.r2t_end ||
		    (size_t)(end - p) < pt.h2c_off)
			return "a carried write does not check out";
		if (tcp_req_revive(c, pt.ttag, &pt.cmd, &r) < 0 || r->len != pt.len ||
		    r->dir != NVL_NVME_XFER_H2C)
			return "a carried write does not map as before";
		memcpy(r->buf, p, pt.h2c_off);
		p += pt.h2c_off;
		r->h2c_off = pt.h2c_off;
		r->r2t_end = pt.r2t_end;
		r->data_error = pt.data_error != 0;
		r->state = TR_WAIT_H2C;
		(*parts)++;
	}
	if ((size_t)(end - p) != rec->leftover)
		return "the record's carried bytes do not add up";
	memcpy(c->stage, p, rec->leftover);
	c->stage_off = 0;
	c->stage_len = rec->leftover;
	return NULL;
}

static bool g_keep_resume_armed;

static void keep_resume_all(void *arg);

/* A refusal that a subsystem built later (lending's targets, at the start
 * after the restore) may lift: no subsystem, host or listener yet. */
static bool
keep_may_wait(int rc)
{
	return rc == -ENOENT || rc == -EACCES || rc == -EADDRNOTAVAIL;
}

/*
 * The admin queue of a record taken from the store (rec, sock: its, freed or
 * closed here unless *wait is set): the controller again, with its cntlid.
 * With wait non-NULL a refusal keep_may_wait() allows sets *wait and leaves
 * rec and sock to the caller, quietly (the controller waits for its
 * subsystem, keep_park).
 */
static struct tcp_ctrlr *
keep_restore_admin_rec(uint32_t id, struct tcp_keep_rec *rec, int sock, unsigned *held,
		       unsigned *parts, bool *wait)
{
	struct nvl_connect_info ci = { 0 };
	struct nvl_nvmf_ctrlr *tc;
	struct tcp_ctrlr *ctl;
	struct tcp_conn *c;
	const char *why;
	char cwhy[200] = "";
	uint16_t status;
	int rc;

	why = "out of memory";
	ctl = calloc(1, sizeof(*ctl));
	if (ctl == NULL)
		goto fail;
	c = keep_conn_new(rec, sock);
	if (c == NULL) {
		free(ctl);
		goto fail;
	}
	sock = -1; /* c's */
	ci.subnqn = rec->subnqn;
	ci.hostnqn = rec->hostnqn;
	ci.hostid = rec->hostid;
	ci.kato_ms = rec->ctrlr.kato_ms;
	ci.cntlid = rec->ctrlr.cntlid;
	ci.restore = true;
	ci.restore_authenticated = rec->ctrlr.authenticated != 0;
	ci.max_queue_entries = rec->ctrlr.max_queue_entries;
	ci.max_io_queues = rec->ctrlr.max_io_queues;
	ci.fabrics = true;
	ci.sgl = true;
	ci.ioccsz = rec->ctrlr.ioccsz;
	ci.iorcsz = rec->ctrlr.iorcsz;
	ci.msdbd = 1;
	ci.mdts = rec->ctrlr.mdts;
	ci.transport = &g_tcp_ops;
	ci.listener = &c->listener;
	ci.queue_ops = &g_tcp_queue_ops;
	ci.tctx = ctl;
	ci.why = cwhy;
	ci.why_len = sizeof(cwhy);
	ci.quiet_refusal = wait != NULL;
	ci.log_later = true; /* keep_log_taken_back, once it reads again */
	rc = nvl_nvmf_connect(&ci, &tc, &status);
	if (rc < 0) {
		free(ctl);
		if (wait && keep_may_wait(rc)) {
			c->fd = -1; /* the socket stays the caller's */
			keep_conn_discard(c);
			*wait = true;
			return NULL;
		}
		why = cwhy[0] ? cwhy : rc == -ENOENT ? "the subsystem is gone" : strerror(-rc);
		keep_conn_discard(c);
		goto fail;
	}
	keep_apply_ctrlr(&rec->ctrlr, tc);
	__atomic_store_n(&tc->nvme.last_keep_alive_ns, nvl_now_ns(), __ATOMIC_RELAXED);
	ctl->tc = tc;
	ctl->admin = c;
	TAILQ_INSERT_TAIL(&g_tcp_ctrlrs, ctl, link);
	c->ctl = ctl;
	c->tc = tc;
	c->auth = tc->auth;
	c->state = TC_ACTIVE;
	why = keep_conn_fill(c, rec, held, parts);
	if (why) {
		tcp_ctrlr_teardown(ctl, why);
		goto fail;
	}
	free(rec);
	return ctl;
fail:
	NVL_WARNLOG("tcp: kept controller (store id %u%s%s) not taken back: %s; its host connects "
		    "again", id, rec ? ", host " : "", rec ? rec->hostnqn : "", why);
	if (sock >= 0)
		close(sock);
	free(rec);
	keep_forget(id, 0);
	return NULL;
}

/* The admin queue of id, from the store (keep_restore_admin_rec). */
static struct tcp_ctrlr *
keep_restore_admin(uint32_t id, unsigned *held, unsigned *parts, struct tcp_keep_rec **rec,
		   int *sock, bool *wait)
{
	const char *why = keep_take(id, 0, rec, sock);

	if (why) {
		NVL_WARNLOG("tcp: kept controller (store id %u) not taken back: %s; its host "
			    "connects again", id, why);
		if (*sock >= 0)
			close(*sock);
		keep_forget(id, 0);
		return NULL;
	}
	return keep_restore_admin_rec(id, *rec, *sock, held, parts, wait);
}

/* I/O queue qid of ctl from its record (rec and sock taken from the store, or
 * why they could not be: then rec is NULL). */
static bool
keep_restore_io_rec(struct tcp_ctrlr *ctl, uint32_t id, uint16_t qid, struct tcp_keep_rec *rec,
		    int sock, const char *why, unsigned *held, unsigned *parts)
{
	struct nvl_nvmf_ctrlr *tc = ctl->tc;
	struct tcp_conn *c;

	if (why)
		goto fail;
	why = "it does not belong to its controller";
	if (rec->cntlid != tc->nvme.cntlid || strcmp(rec->subnqn, tc->nvme.subnqn) != 0 ||
	    qid > TCP_MAX_IO_QUEUES || qid > tc->nvme.max_io_queues || ctl->ioq[qid] || ctl->closing)
		goto fail;
	why = "out of memory";
	c = keep_conn_new(rec, sock);
	if (c == NULL)
		goto fail;
	sock = -1;
	if (tc->nvme.auth_required) {
		if (nvl_nvmf_auth_queue_create(tc, qid, &c->auth) < 0) {
			keep_conn_discard(c);
			goto fail;
		}
		if (rec->authenticated)
			nvl_nvmf_auth_restore(c->auth);
	}
	nvl_nvmf_ctrlr_get(tc);
	ctl->ioq[qid] = c;
	ctl->ioq_reactor[qid] = nvl_reactor_pick();
	c->placed = ctl->ioq_reactor[qid];
	ctl->nio_alive++;
	c->ctl = ctl;
	c->tc = tc;
	/* on reactor 0 until READY; nothing serves it before it moves */
	c->state = TC_MIGRATING;
	why = keep_conn_fill(c, rec, held, parts);
	if (why) {
		/* the table slot is cleared and the queue closes on its reactor */
		tcp_ioq_close(ctl, qid);
		c = NULL;
		goto fail;
	}
	free(rec);
	return true;
fail:
	NVL_WARNLOG("tcp: kept I/O queue %u of controller %u (%s) not taken back: %s; its host "
		    "recovers the queue", qid, tc->nvme.cntlid, tc->nvme.hostnqn, why);
	if (sock >= 0)
		close(sock);
	free(rec);
	keep_forget(id, qid);
	return false;
}

static bool
keep_restore_io(struct tcp_ctrlr *ctl, uint32_t id, uint16_t qid, unsigned *held,
		unsigned *parts)
{
	struct tcp_keep_rec *rec;
	int sock;
	const char *why = keep_take(id, qid, &rec, &sock);

	return keep_restore_io_rec(ctl, id, qid, rec, sock, why, held, parts);
}

/* ---- a controller whose subsystem comes after the restore ------------------------------------ */

/*
 * Lending's targets are not in the kept configuration: the lend service
 * builds them again at the start, after the transports restored. A kept
 * controller of such a subsystem (or of one whose host or listener is not
 * there yet) waits, its records and sockets taken but its names left in the
 * store (a rollback or a crash finds them as they were), not reading, and
 * is tried again every TCP_PARK_TRY_US until its subsystem admits it or
 * TCP_PARK_MAX_US pass (then it closes and its host connects again).
 */
#define TCP_PARK_TRY_US 5000
#define TCP_PARK_MAX_US 5000000

struct keep_parked_q {
	uint16_t qid;
	struct tcp_keep_rec *rec; /* NULL: why */
	int sock;
	const char *why;
};

struct keep_parked {
	TAILQ_ENTRY(keep_parked) link;
	uint32_t id;
	struct tcp_keep_rec *rec; /* the admin queue's */
	int sock;
	unsigned nq;
	struct keep_parked_q *q;
	uint64_t since_ns;
};

static TAILQ_HEAD(, keep_parked) g_parked = TAILQ_HEAD_INITIALIZER(g_parked);
static struct nvl_timer *g_park_timer;
static bool g_keep_ready_passed;

static void
keep_parked_free(struct keep_parked *pk, bool forget)
{
	for (unsigned i = 0; i < pk->nq; i++) {
		if (pk->q[i].sock >= 0)
			close(pk->q[i].sock);
		free(pk->q[i].rec);
		if (forget)
			keep_forget(pk->id, pk->q[i].qid);
	}
	if (pk->sock >= 0)
		close(pk->sock);
	free(pk->rec);
	if (forget)
		keep_forget(pk->id, 0);
	free(pk->q);
	free(pk);
}

static void
keep_ready_passed(void *arg)
{
	(void)arg;
	g_keep_ready_passed = true;
}

static void keep_park_tick(void *arg);

/* Park id (rec, sock: its admin queue's) with its I/O queues qids[0..n). */
static void
keep_park(uint32_t id, struct tcp_keep_rec *rec, int sock, const struct keep_found *io,
	  unsigned n)
{
	struct keep_parked *pk = calloc(1, sizeof(*pk));

	if (pk == NULL || (n && (pk->q = calloc(n, sizeof(*pk->q))) == NULL)) {
		NVL_WARNLOG("tcp: kept controller (store id %u, host %s) not taken back: out of "
			    "memory; its host connects again", id, rec->hostnqn);
		free(pk);
		close(sock);
		free(rec);
		keep_forget(id, 0);
		for (unsigned i = 0; i < n; i++)
			keep_forget(id, io[i].qid);
		return;
	}
	pk->id = id;
	pk->rec = rec;
	pk->sock = sock;
	pk->since_ns = nvl_now_ns();
	for (unsigned i = 0; i < n; i++) {
		struct keep_parked_q *q = &pk->q[pk->nq++];

		q->qid = io[i].qid;
		q->why = keep_take(id, q->qid, &q->rec, &q->sock);
	}
	NVL_NOTICELOG("tcp: kept controller %u of %s (%s) waits for its subsystem, which is built "
		      "later (up to %u s)", rec->ctrlr.cntlid, rec->hostnqn, rec->subnqn,
		      TCP_PARK_MAX_US / 1000000);
	if (TAILQ_EMPTY(&g_parked)) {
		(void)nvl_fdstore_at_ready(keep_ready_passed, NULL);
		g_park_timer = nvl_timer_create(keep_park_tick, NULL, TCP_PARK_TRY_US,
						TCP_PARK_TRY_US);
	}
	TAILQ_INSERT_TAIL(&g_parked, pk, link);
}

/* A restored controller reads again at READY, or now if that has passed. */
static void
keep_arm_resume(void)
{
	if (g_keep_ready_passed)
		keep_resume_all(NULL);
	else if (!g_keep_resume_armed && nvl_fdstore_at_ready(keep_resume_all, NULL) == 0)
		g_keep_resume_armed = true;
}

static void
keep_park_tick(void *arg)
{
	struct keep_parked *pk, *t;
	uint64_t now = nvl_now_ns();

	(void)arg;
	TAILQ_FOREACH_SAFE(pk, &g_parked, link, t) {
		unsigned held = 0, parts = 0, nq = 0;
		struct tcp_ctrlr *ctl = NULL;
		/* cheap first: no connection object is built while the subsystem is
		 * not there at all (the usual wait: lending builds its targets after
		 * READY) */
		bool wait = nvl_subsys_find(pk->rec->subnqn) == NULL;

		if (!wait)
			ctl = keep_restore_admin_rec(pk->id, pk->rec, pk->sock, &held, &parts,
						     &wait);
		if (wait) {
			if (now - pk->since_ns < TCP_PARK_MAX_US * 1000ull)
				continue;
			NVL_WARNLOG("tcp: kept controller %u of %s (%s) not taken back: its subsystem "
				    "did not admit it within %u s; its host connects again",
				    pk->rec->ctrlr.cntlid, pk->rec->hostnqn, pk->rec->subnqn,
				    TCP_PARK_MAX_US / 1000000);
			TAILQ_REMOVE(&g_parked, pk, link);
			keep_parked_free(pk, true);
			continue;
		}
		/* the admin record and socket are ctl's now, or closed and forgotten */
		pk->rec = NULL;
		pk->sock = -1;
		TAILQ_REMOVE(&g_parked, pk, link);
		for (unsigned i = 0; i < pk->nq; i++) {
			struct keep_parked_q *q = &pk->q[i];

			if (ctl && !ctl->closing)
				nq += keep_restore_io_rec(ctl, pk->id, q->qid, q->rec, q->sock,
							  q->why, &held, &parts);
			else
				keep_forget(pk->id, q->qid);
			if (!ctl || ctl->closing) {
				if (q->sock >= 0)
					close(q->sock);
				free(q->rec);
			}
			q->rec = NULL;
			q->sock = -1;
		}
		if (ctl && !ctl->closing) {
			NVL_NOTICELOG("tcp: controller %u of %s (%s) taken back from the previous "
				      "worker once its subsystem came (%.1f ms): %u I/O queue(s), %u "
				      "held request(s) and %u write(s) mid-transfer carried",
				      ctl->tc->nvme.cntlid, ctl->tc->nvme.hostnqn,
				      ctl->tc->nvme.subnqn, (double)(now - pk->since_ns) / 1e6, nq,
				      held, parts);
			keep_arm_resume();
		}
		keep_parked_free(pk, false);
	}
	if (TAILQ_EMPTY(&g_parked)) {
		nvl_timer_destroy(g_park_timer);
		g_park_timer = NULL;
	}
}

/* The transport stops: controllers still waiting close (their hosts connect again). */
void
tcp_keep_fini(void)
{
	struct keep_parked *pk;

	while ((pk = TAILQ_FIRST(&g_parked)) != NULL) {
		TAILQ_REMOVE(&g_parked, pk, link);
		keep_parked_free(pk, false);
	}
	nvl_timer_destroy(g_park_timer);
	g_park_timer = NULL;
}

void
tcp_keep_restore(void)
{
	struct keep_scan s = { 0 };
	unsigned i = 0;

	nvl_fdstore_for_each_untaken(keep_scan_name, &s);
	if (s.max_id >= g_keep.next_id)
		g_keep.next_id = s.max_id + 1;
	if (s.n == 0) {
		free(s.f);
		return;
	}
	qsort(s.f, s.n, sizeof(*s.f), keep_found_cmp);
	while (i < s.n) {
		uint32_t id = s.f[i].id;
		unsigned held = 0, parts = 0, nq = 0, j;
		struct tcp_ctrlr *ctl = NULL;
		struct tcp_keep_rec *rec = NULL;
		bool wait = false;
		int sock = -1;

		if (s.f[i].qid == 0)
			ctl = keep_restore_admin(id, &held, &parts, &rec, &sock, &wait);
		else
			NVL_WARNLOG("tcp: kept I/O queues of store id %u have no admin queue: closing "
				    "them", id);
		if (wait) {
			for (j = i + 1; j < s.n && s.f[j].id == id; j++)
				;
			keep_park(id, rec, sock, &s.f[i + 1], j - i - 1);
			i = j;
			continue;
		}
		for (j = i + (s.f[i].qid == 0); j < s.n && s.f[j].id == id; j++) {
			if (ctl && !ctl->closing)
				nq += keep_restore_io(ctl, id, s.f[j].qid, &held, &parts);
			else
				keep_forget(id, s.f[j].qid);
		}
		if (ctl && !ctl->closing) {
			/* its line once it reads again: a line here is downtime */
			ctl->kept_line = true;
			ctl->kept_nq = nq;
			ctl->kept_held = held;
			ctl->kept_parts = parts;
			keep_arm_resume();
		}
		i = j;
	}
	free(s.f);
	if (!g_keep_resume_armed && !TAILQ_EMPTY(&g_tcp_ctrlrs))
		keep_resume_all(NULL);
}

/* The worker told the keeper it serves: no rollback any more. Each restored
 * queue leaves the store and reads again, on its reactor. */
static void
keep_resume_all(void *arg)
{
	struct tcp_ctrlr *ctl, *tctl;

	(void)arg;
	g_keep_resume_armed = false;
	TAILQ_FOREACH_SAFE(ctl, &g_tcp_ctrlrs, link, tctl) {
		struct tcp_conn *a = ctl->admin;
		char what[96];

		if (ctl->closing || a == NULL || a->keep != TK_RESTORED)
			continue;
		__atomic_store_n(&ctl->tc->nvme.last_keep_alive_ns, nvl_now_ns(), __ATOMIC_RELAXED);
		for (unsigned q = 1; q <= TCP_MAX_IO_QUEUES; q++) {
			struct tcp_conn *c = ctl->ioq[q];

			if (c == NULL || c->keep != TK_RESTORED)
				continue;
			c->keep = TK_NONE;
			keep_forget(c->keep_id, c->qid);
			if (nvl_reactor_msg(ctl->ioq_reactor[q], tcp_conn_attach_io, c) < 0) {
				NVL_ERRLOG("tcp: cannot hand I/O queue %u to its reactor", q);
				c->state = TC_FAILED;
				tcp_ioq_close(ctl, (uint16_t)q);
			}
		}
		a->keep = TK_NONE;
		keep_forget(a->keep_id, 0);
		if (tcp_conn_attach(a) < 0) {
			tcp_conn_close(a, "out of memory");
			continue;
		}
		a->last_rx_ns = nvl_now_ns();
		tcp_conn_service(a, true);
		snprintf(what, sizeof(what), "tcp %.48s controller %u", ctl->tc->nvme.subnqn,
			 ctl->tc->nvme.cntlid);
		/* from when it stopped reading in the old worker, if that was earlier */
		nvl_handover_resumed_since(what, a->keep_since);
	}
	/* every one reads again: now the lines */
	TAILQ_FOREACH(ctl, &g_tcp_ctrlrs, link) {
		struct tcp_conn *a = ctl->admin;

		if (!ctl->kept_line || ctl->closing || a == NULL)
			continue;
		ctl->kept_line = false;
		NVL_NOTICELOG("tcp: controller %u of %s (%s, TCP %s:%s, keep-alive %u ms) taken back "
			      "from the previous worker: %u I/O queue(s), %u held request(s) and %u "
			      "write(s) mid-transfer carried; reading again",
			      ctl->tc->nvme.cntlid, ctl->tc->nvme.hostnqn, ctl->tc->nvme.subnqn,
			      a->listener.traddr, a->listener.trsvcid, ctl->tc->nvme.kato_ms,
			      ctl->kept_nq, ctl->kept_held, ctl->kept_parts);
	}
}
