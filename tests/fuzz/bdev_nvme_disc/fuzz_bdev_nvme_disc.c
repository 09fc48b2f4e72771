/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the nvme bdev's discovery service
 * (src/module/bdev_nvme_discovery.c, bdev_nvme_start_discovery): what a
 * hostile discovery controller answers. The service and the host core
 * (src/host/ctrlr.c, qpair.c) are included; the host transport ops table is
 * a fake defined here (the NVMe/TCP fabrics sequence, no socket), and the
 * controllers the service attaches are stand-ins (bdev_nvme_attach/detach
 * as in tests/unit/module/bdev_nvme_discovery_ut.c) that record what was
 * asked. One reactor driven by hand; time virtual in the included files
 * (as in tests/fuzz/bdev_nvme_cpl).
 *
 * The set-up is answered healthily (Identify: a discovery controller, with
 * or without the log change event); then the input answers the admin
 * commands the service keeps sending: Get Log Page of the discovery log
 * (header and records, 1 KiB each, at any offset), the Asynchronous Event
 * Request, Set Features (Asynchronous Event Configuration), Keep Alive.
 *
 * Input: byte 0 the mode: bit 0 poll_only, bit 1 wait_for_attach, bit 2 the
 * controller has no change events (OAES), bit 3 it answers Identify as an
 * NVMe subsystem (not a discovery controller), bit 4 attach_timeout_ms 3000,
 * bit 5 the stand-in controllers take a round to report their first
 * outcome (else at once); then records [op][len][payload], op % 8:
 *   0 answer the oldest Get Log Page: payload is the page: at offset 0 a
 *     header [genctr u64][numrec u64][recfmt u16], else a record:
 *     [trtype][adrfam][subtype][trsvcid 4][traddr 12][subnqn ...] (short
 *     fields, space or NUL padded by payload byte 0 bit 7; the rest of the
 *     1 KiB as the input leaves it: bytes of the previous page, so fields
 *     without a terminator come too)
 *   1 answer the AER: [status u16][cdw0 u32]
 *   2 any admin CQE: [sel] < 0x80 the sel-th outstanding, else raw cid
 *     [u16]; [status u16][cdw0 u32]; data for its buffer
 *   3 the association fails        4 time passes ([0] + 1) * 100 ms
 *   5 switches [0]: bit 0 admin answered automatically (but the AER, and Get
 *     Log Page unless bit 2: then an empty log), bit 1 detaches refused
 *     ("a bdev is open")
 *   6 the stand-ins' pending first outcomes are reported
 *   7 nothing
 *
 * Checks (__builtin_trap): the start's callback runs at most once; every
 * controller attached has a fresh name NAME<n>, NUL-terminated fields within
 * their sizes, trtype TCP, and no other live controller of the service has
 * its (subnqn, traddr, trsvcid); no controller is detached twice or while
 * its first outcome is pending; at most 256 entries. At the end the target
 * heals (auto answers, an empty log, detaches allowed) and the service is
 * stopped: its callback runs exactly once, every controller it attached is
 * detached, the service is freed, nothing leaks (LeakSanitizer).
 */
#include <stdint.h>
#include <time.h>

/* the included files' clock: virtual (CLOCK_MONOTONIC only) */
int fz_clock_gettime(clockid_t id, struct timespec *ts);
#define clock_gettime fz_clock_gettime

#include "module/bdev_nvme_discovery.c"
#include "host/ctrlr.c"
#include "host/qpair.c"

#undef clock_gettime

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "fuzz_bdev_nvme_disc: line %d: %s\n", __LINE__, #x);       \
			__builtin_trap();                                                          \
		}                                                                                  \
	} while (0)

/* defined by bdev_nvme_ctrlr.c, which is replaced here */
NVL_LOG_REGISTER_COMPONENT(bdev_nvme)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_T0_NS (1000ull * 1000000000ull)
#define FZ_MAX_CTRLRS 512

static uint64_t g_vnow_ns = FZ_T0_NS;

int
fz_clock_gettime(clockid_t id, struct timespec *ts)
{
	if (id != CLOCK_MONOTONIC)
		return clock_gettime(id, ts);
	ts->tv_sec = (time_t)(g_vnow_ns / 1000000000ull);
	ts->tv_nsec = (long)(g_vnow_ns % 1000000000ull);
	return 0;
}

/* ---- stand-in controllers (bdev_nvme_ctrlr.c's face) ------------------------------------ */

struct fz_ctrlr {
	struct nvme_ctrlr c;
	bool live;
};

static struct fz_ctrlr g_ctrlrs_fz[FZ_MAX_CTRLRS];
static unsigned g_nctrlrs;
static bool g_busy, g_deferred;

static bool
str_ok(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

int
bdev_nvme_attach(const struct nvme_ctrlr_opts *o, nvme_done_fn done, void *arg,
		 struct nvme_ctrlr **out)
{
	struct fz_ctrlr *f;

	CHECK(str_ok(o->name, sizeof(o->name)) && str_ok(o->traddr, sizeof(o->traddr)) &&
	      str_ok(o->trsvcid, sizeof(o->trsvcid)) && str_ok(o->subnqn, sizeof(o->subnqn)) &&
	      str_ok(o->adrfam, sizeof(o->adrfam)));
	CHECK(strcmp(o->trtype, "TCP") == 0 && o->retry_first_connect);
	CHECK(strncmp(o->name, "fzd", 3) == 0);
	for (unsigned i = 0; i < g_nctrlrs; i++) {
		const struct nvme_ctrlr *c = &g_ctrlrs_fz[i].c;

		CHECK(strcmp(c->o.name, o->name) != 0); /* names are never reused */
		if (g_ctrlrs_fz[i].live)
			CHECK(strcmp(c->o.subnqn, o->subnqn) != 0 ||
			      strcmp(c->o.traddr, o->traddr) != 0 ||
			      strcmp(c->o.trsvcid, o->trsvcid) != 0);
	}
	if (g_nctrlrs == FZ_MAX_CTRLRS)
		return -ENOMEM;
	f = &g_ctrlrs_fz[g_nctrlrs++];
	memset(f, 0, sizeof(*f));
	f->c.o = *o;
	f->live = true;
	*out = &f->c;
	if (g_deferred) {
		f->c.done = done;
		f->c.done_arg = arg;
	} else {
		done(arg, &f->c, 0, NULL);
	}
	return 0;
}

int
bdev_nvme_detach(struct nvme_ctrlr *c, nvme_done_fn done, void *arg, char *why, size_t why_len)
{
	struct fz_ctrlr *f = container_of(c, struct fz_ctrlr, c);

	CHECK(f >= g_ctrlrs_fz && f < g_ctrlrs_fz + g_nctrlrs && f->live);
	CHECK(c->done == NULL); /* its attach outcome is in */
	if (g_busy) {
		snprintf(why, why_len, "bdev %sn1 is in use by fuzz", c->o.name);
		return -EBUSY;
	}
	f->live = false;
	done(arg, c, 0, NULL);
	return 0;
}

struct nvme_ctrlr *
bdev_nvme_ctrlr_find(const char *name)
{
	for (unsigned i = 0; i < g_nctrlrs; i++)
		if (g_ctrlrs_fz[i].live && strcmp(g_ctrlrs_fz[i].c.o.name, name) == 0)
			return &g_ctrlrs_fz[i].c;
	return NULL;
}

const char *
bdev_nvme_ctrlr_state(const struct nvme_ctrlr *c)
{
	return c->done ? "attaching" : "ready";
}

bool
bdev_nvme_ctrlr_in_use(const struct nvme_ctrlr *c, char *why, size_t why_len)
{
	(void)c;
	if (g_busy)
		snprintf(why, why_len, "in use");
	return g_busy;
}

/* The stand-ins' first outcomes, when they take their time. */
static void
report_pending(void)
{
	for (unsigned i = 0; i < g_nctrlrs; i++) {
		struct nvme_ctrlr *c = &g_ctrlrs_fz[i].c;
		nvme_done_fn done = c->done;

		if (!g_ctrlrs_fz[i].live || done == NULL)
			continue;
		c->done = NULL;
		done(c->done_arg, c, 0, NULL);
	}
}

/* ---- the fake transport: a discovery controller over "tcp" ---------------------------------- */

struct fz_acqe {
	struct nvl_nvme_cpl cpl;
	uint8_t data[1024];
	uint32_t len;
	bool by_opc;                 /* answer the oldest command of opcode opc */
	uint8_t opc;
};

#define FZ_ACQ 8

static struct {
	bool as_nvme, no_events;
	bool auto_admin;
	bool auto_log;               /* auto_admin answers Get Log Page too (an empty log) */
	bool fail_assoc;
	int token;
	bool up;
	struct host_admin_req *sent[HOST_ADMIN_SLOTS * 2];
	unsigned nsent;
	struct fz_acqe acq[FZ_ACQ];
	unsigned nacq;
	uint8_t page[1024];          /* the last page the input gave */
} g_fz;

static int
fz_assoc_start(struct host_ctrlr *c, uint64_t now)
{
	(void)now;
	c->tctx = &g_fz.token;
	g_fz.up = false;
	g_fz.nsent = 0;
	return 0;
}

static void
fz_assoc_stop(struct host_ctrlr *c)
{
	g_fz.nsent = 0;
	g_fz.nacq = 0;
	c->tctx = NULL;
}

static int
fz_admin_send(struct host_ctrlr *c, struct host_admin_req *a)
{
	(void)c;
	CHECK(g_fz.nsent < sizeof(g_fz.sent) / sizeof(g_fz.sent[0]));
	g_fz.sent[g_fz.nsent++] = a;
	a->sent = true;
	return 0;
}

static void
fz_admin_forget(struct host_admin_req *a)
{
	for (unsigned i = 0; i < g_fz.nsent; i++) {
		if (g_fz.sent[i] == a) {
			memmove(&g_fz.sent[i], &g_fz.sent[i + 1],
				(g_fz.nsent - i - 1) * sizeof(g_fz.sent[0]));
			g_fz.nsent--;
			return;
		}
	}
}

/* A healthy discovery controller; false: left unanswered (an AER). */
static bool
fz_admin_answer(struct host_ctrlr *c, struct host_admin_req *a)
{
	struct nvl_nvme_cpl cpl = { 0 };
	uint8_t *b = a->buf;

	cpl.cid = a->cmd.cid;
	switch (a->cmd.opc) {
	case NVL_NVME_ADM_IDENTIFY:
		memset(b, 0, a->len);
		if (a->cmd.cdw10 == NVL_NVME_CNS_CTRLR) {
			struct nvl_nvme_id_ctrl *id = (void *)b;

			id->mdts = 1;
			id->cntrltype = g_fz.as_nvme ? 1 : NVL_NVME_CNTRLTYPE_DISCOVERY;
			id->oaes = g_fz.no_events ? 0 : NVL_NVME_OAES_DISC_LOG;
		}
		break;
	case NVL_NVME_ADM_FABRICS: {
		const struct nvl_nvmf_property_cmd *p = (const void *)&a->cmd;

		if (p->ofst == NVL_NVME_REG_CAP)
			cpl.cdw0 = 31 | (1u << 24);
		else if (p->ofst == NVL_NVME_REG_CSTS)
			cpl.cdw0 = NVL_NVME_CSTS_RDY | NVL_NVME_CSTS_SHST_COMPLETE;
		break;
	}
	case NVL_NVME_ADM_SET_FEATURES:
		if ((a->cmd.cdw10 & 0xff) == NVL_NVME_FEAT_NUMBER_OF_QUEUES)
			cpl.status = NVL_NVME_SC_TO_STATUS(NVL_NVME_SC_INVALID_FIELD);
		break;
	case NVL_NVME_ADM_GET_LOG_PAGE:
		memset(b, 0, a->len); /* an empty log, generation 0 */
		break;
	case NVL_NVME_ADM_ASYNC_EVENT:
		return false;
	default:
		break;
	}
	host_admin_complete(c, a, &cpl, NULL, 0);
	return true;
}

static struct host_admin_req *
fz_oldest(uint8_t opc)
{
	for (unsigned i = 0; i < g_fz.nsent; i++)
		if (g_fz.sent[i]->cmd.opc == opc)
			return g_fz.sent[i];
	return NULL;
}

static int
fz_process(struct host_ctrlr *c, uint64_t now)
{
	int n = 0;

	(void)now;
	if (g_fz.fail_assoc) {
		g_fz.fail_assoc = false;
		host_assoc_fail(c, -ECONNRESET, "fuzz: connection lost");
		return 1;
	}
	if (!g_fz.up) {
		g_fz.up = true;
		c->cntlid = 1;
		host_assoc_transport_ready(c);
		return 1;
	}
	while (g_fz.nacq > 0 && c->tctx) {
		struct fz_acqe *e = &g_fz.acq[0];
		struct host_admin_req *a;
		struct nvl_nvme_cpl cpl = e->cpl;

		if (e->by_opc) {
			a = fz_oldest(e->opc);
			if (a)
				cpl.cid = a->cmd.cid;
		} else {
			a = host_admin_by_cid(c, cpl.cid);
		}
		if (a) {
			fz_admin_forget(a);
			if (a->dir == NVL_XFER_FROM_CTRLR && a->buf && e->len)
				memcpy(a->buf, e->data, NVL_MIN(e->len, a->len));
		}
		memmove(g_fz.acq, g_fz.acq + 1, --g_fz.nacq * sizeof(g_fz.acq[0]));
		n++;
		if (a)
			host_admin_complete(c, a, &cpl, NULL, 0);
	}
	for (unsigned i = 0; g_fz.auto_admin && i < g_fz.nsent && c->tctx;) {
		struct host_admin_req *a = g_fz.sent[i];

		if (a->cmd.opc == NVL_NVME_ADM_ASYNC_EVENT ||
		    (a->cmd.opc == NVL_NVME_ADM_GET_LOG_PAGE && !g_fz.auto_log)) {
			i++;
			continue;
		}
		memmove(&g_fz.sent[i], &g_fz.sent[i + 1], (g_fz.nsent - i - 1) * sizeof(g_fz.sent[0]));
		g_fz.nsent--;
		fz_admin_answer(c, a);
		n++;
	}
	return n;
}

static int
fz_fds(struct host_ctrlr *c, struct pollfd *p, int max)
{
	(void)c;
	(void)p;
	(void)max;
	return 0;
}

/* a discovery controller has no I/O queues: none of these may be reached */
static int
fz_tq_connect(struct host_ctrlr *c, struct host_qpair *qp)
{
	(void)c;
	(void)qp;
	CHECK(0);
	return -EINVAL;
}

static void
fz_tq_destroy(struct host_tq *tq)
{
	(void)tq;
	CHECK(0);
}

static int
fz_submit(struct host_qpair *qp, struct host_tq *tq, struct host_req *r, struct nvl_nvme_cmd *cmd,
	  const struct iovec *iov, int iovcnt)
{
	(void)qp;
	(void)tq;
	(void)r;
	(void)cmd;
	(void)iov;
	(void)iovcnt;
	CHECK(0);
	return -EINVAL;
}

static int
fz_poll(struct host_qpair *qp, struct host_tq *tq, uint32_t max)
{
	(void)qp;
	(void)tq;
	(void)max;
	CHECK(0);
	return -ENOTCONN;
}

static int
fz_tq_fds(const struct host_tq *tq, struct pollfd *p, int max)
{
	(void)tq;
	(void)p;
	(void)max;
	return 0;
}

const struct host_transport_ops g_host_tcp_ops = {
	.name = "fuzz-tcp",
	.kind = NVL_URI_NVME_TCP,
	.fabrics = true,
	.assoc_start = fz_assoc_start,
	.assoc_stop = fz_assoc_stop,
	.process = fz_process,
	.fds = fz_fds,
	.admin_send = fz_admin_send,
	.tq_connect = fz_tq_connect,
	.tq_destroy = fz_tq_destroy,
	.submit = fz_submit,
	.poll = fz_poll,
	.tq_fds = fz_tq_fds,
};

const struct host_transport_ops g_host_shm_ops = {
	.name = "fuzz-shm (unused)",
	.kind = NVL_URI_NVME_SHM,
	.assoc_start = fz_assoc_start,
	.assoc_stop = fz_assoc_stop,
	.process = fz_process,
	.fds = fz_fds,
	.admin_send = fz_admin_send,
	.tq_connect = fz_tq_connect,
	.tq_destroy = fz_tq_destroy,
	.submit = fz_submit,
	.poll = fz_poll,
	.tq_fds = fz_tq_fds,
};

void
host_digests_from_env(struct host_ctrlr_opts *o)
{
	(void)o;
}

/* ---- driving ---------------------------------------------------------------------------- */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct nvl_reactor_opts ro;

	(void)argc;
	(void)argv;
	nvl_log_set_level(getenv("NVL_FUZZ_VERBOSE") ? 1 : 0);
	if (getenv("NVL_FUZZ_VERBOSE") == NULL)
		nvl_log_set_fd(-1, false);
	nvl_reactor_opts_default(&ro);
	ro.spin_us = 0;
	ro.uring_entries = 8;
	if (nvl_reactors_init(&ro) < 0)
		abort();
	return 0;
}

static unsigned g_start_done, g_stop_done;

static void
start_done(void *arg, struct nvme_disc *d, int rc, const char *why)
{
	(void)arg;
	(void)d;
	(void)rc;
	(void)why;
	g_start_done++;
	CHECK(g_start_done == 1);
}

static void
stop_done(void *arg, struct nvme_disc *d, int rc, const char *why)
{
	(void)arg;
	(void)d;
	(void)rc;
	(void)why;
	g_stop_done++;
	CHECK(g_stop_done == 1);
}

/* The service's poll (as its timer would; it may free the service) and the reactor. */
static void
rounds(int n)
{
	for (int i = 0; i < n; i++) {
		struct nvme_disc *d = TAILQ_FIRST(&g_discs);

		if (d) {
			CHECK(d->nents <= DISC_MAX_ENTRIES);
			disc_poll(d);
		}
		nvl_reactor_poll_once();
	}
}

static uint16_t
get16(const uint8_t *p, size_t len, size_t at)
{
	uint16_t v = 0;

	if (at < len)
		v = p[at];
	if (at + 1 < len)
		v |= (uint16_t)(p[at + 1] << 8);
	return v;
}

static uint32_t
get32(const uint8_t *p, size_t len, size_t at)
{
	return (uint32_t)get16(p, len, at) | (uint32_t)get16(p, len, at + 2) << 16;
}

static uint64_t
get64(const uint8_t *p, size_t len, size_t at)
{
	return (uint64_t)get32(p, len, at) | (uint64_t)get32(p, len, at + 4) << 32;
}

/* A short field of the input into a fixed one (space or NUL padded). */
static size_t
put_field(char *dst, size_t dlen, const uint8_t *p, size_t len, size_t at, size_t n, bool spaces)
{
	memset(dst, spaces ? ' ' : '\0', dlen);
	for (size_t i = 0; i < n && at + i < len; i++)
		dst[i] = (char)p[at + i];
	return at + n;
}

/* op 0: the oldest Get Log Page answered with a page from the input. */
static void
fz_log_page(const uint8_t *p, size_t len)
{
	struct fz_acqe *e;
	struct host_admin_req *a = fz_oldest(NVL_NVME_ADM_GET_LOG_PAGE);
	uint64_t off;

	if (a == NULL || g_fz.nacq == FZ_ACQ)
		return;
	off = (uint64_t)a->cmd.cdw12 | (uint64_t)a->cmd.cdw13 << 32;
	if (off == 0) {
		struct nvl_nvmf_discovery_log *h = (void *)g_fz.page;

		h->genctr = get64(p, len, 0);
		h->numrec = get64(p, len, 8) & (len > 16 && (p[16] & 1) ? ~0ull : 0x1ff);
		h->recfmt = get16(p, len, 17);
	} else {
		struct nvl_nvmf_discovery_entry *r = (void *)g_fz.page;
		bool spaces = len > 0 && (p[0] & 0x80);
		size_t at;

		r->trtype = len > 0 && (p[0] & 0x40) ? p[0] : NVL_NVMF_TRTYPE_TCP;
		r->adrfam = len > 1 ? p[1] % 4 : NVL_NVMF_ADRFAM_IPV4;
		r->subtype = len > 2 ? p[2] % 4 : NVL_NVMF_SUBTYPE_NVME;
		at = put_field(r->trsvcid, sizeof(r->trsvcid), p, len, 3, 4, spaces);
		at = put_field(r->traddr, sizeof(r->traddr), p, len, at, 12, spaces);
		/* the rest of the input is the subsystem NQN: long ones fill the field */
		put_field(r->subnqn, sizeof(r->subnqn), p, len, at, len > at ? len - at : 0, false);
		if (len > 0 && (p[0] & 0x20)) /* no terminator anywhere */
			memset(r->subnqn + (len > at ? len - at : 0), 'q',
			       sizeof(r->subnqn) - (len > at ? len - at : 0));
	}
	e = &g_fz.acq[g_fz.nacq++];
	memset(e, 0, sizeof(*e));
	e->by_opc = true;
	e->opc = NVL_NVME_ADM_GET_LOG_PAGE;
	memcpy(e->data, g_fz.page, sizeof(g_fz.page));
	e->len = sizeof(g_fz.page);
}

static void
fz_acqe(const uint8_t *p, size_t len, bool aer)
{
	struct fz_acqe *e;
	uint8_t sel = len > 0 ? p[0] : 0;

	if (g_fz.nacq == FZ_ACQ)
		return;
	e = &g_fz.acq[g_fz.nacq];
	memset(e, 0, sizeof(*e));
	if (aer) {
		e->by_opc = true;
		e->opc = NVL_NVME_ADM_ASYNC_EVENT;
		e->cpl.status = get16(p, len, 0) & (uint16_t)~NVL_NVME_STATUS_P;
		e->cpl.cdw0 = get32(p, len, 2);
	} else {
		if (sel < 0x80 && g_fz.nsent > 0)
			e->cpl.cid = g_fz.sent[sel % g_fz.nsent]->cmd.cid;
		else
			e->cpl.cid = get16(p, len, 1);
		e->cpl.status = get16(p, len, 3) & (uint16_t)~NVL_NVME_STATUS_P;
		e->cpl.cdw0 = get32(p, len, 5);
		if (len > 9) {
			e->len = (uint32_t)NVL_MIN(len - 9, sizeof(e->data));
			memcpy(e->data, p + 9, e->len);
		}
	}
	g_fz.nacq++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvme_disc_opts o;
	size_t off = 1;
	uint8_t mode;
	char why[256];
	bool stopped = false;

	if (size < 1)
		return 0;
	mode = data[0];
	memset(&g_fz, 0, sizeof(g_fz));
	g_fz.as_nvme = (mode & 8) != 0;
	g_fz.no_events = (mode & 4) != 0;
	g_fz.auto_admin = true;
	g_nctrlrs = 0;
	g_busy = false;
	g_deferred = (mode & 0x20) != 0;
	g_start_done = g_stop_done = 0;
	g_vnow_ns = FZ_T0_NS;

	memset(&o, 0, sizeof(o));
	nvl_strlcpy(o.name, "fzd", sizeof(o.name));
	nvl_strlcpy(o.traddr, "192.0.2.1", sizeof(o.traddr));
	nvl_strlcpy(o.trsvcid, "8009", sizeof(o.trsvcid));
	nvl_strlcpy(o.adrfam, "IPv4", sizeof(o.adrfam));
	nvl_strlcpy(o.hostnqn, "nqn.2024-01.io.nvlend:fuzz-host", sizeof(o.hostnqn));
	o.ctrlr_loss_timeout_sec = -1;
	o.reconnect_delay_sec = 1;
	o.attach_timeout_ms = (mode & 0x10) ? 3000 : 0;
	o.wait_for_attach = (mode & 2) != 0;
	o.poll_only = (mode & 1) != 0;
	CHECK(bdev_nvme_discovery_start(&o, start_done, NULL) == 0);
	rounds(16); /* the set-up, answered healthily; the first Get Log Page waits */
	/* from here the input answers what the service asks */
	g_fz.auto_admin = false;

	while (off + 2 <= size) {
		uint8_t op = data[off] % 8;
		size_t len = NVL_MIN((size_t)data[off + 1], size - off - 2);
		const uint8_t *p = data + off + 2;

		off += 2 + len;
		switch (op) {
		case 0:
			fz_log_page(p, len);
			break;
		case 1:
			fz_acqe(p, len, true);
			break;
		case 2:
			fz_acqe(p, len, false);
			break;
		case 3:
			g_fz.fail_assoc = true;
			break;
		case 4:
			g_vnow_ns += ((uint64_t)(len ? p[0] : 0) + 1) * 100000000ull;
			break;
		case 5:
			g_fz.auto_admin = len && (p[0] & 1);
			g_busy = len && (p[0] & 2);
			g_fz.auto_log = len && (p[0] & 4);
			break;
		case 6:
			report_pending();
			break;
		default:
			break;
		}
		rounds(3);
	}

	/* heal, then stop: everything it attached goes, the service is freed */
	g_fz.auto_admin = true;
	g_fz.auto_log = true;
	g_busy = false;
	report_pending();
	for (int i = 0; i < 200 && !TAILQ_EMPTY(&g_discs); i++) {
		struct nvme_disc *d;

		rounds(2);
		report_pending();
		g_vnow_ns += 500000000ull;
		d = TAILQ_FIRST(&g_discs);
		/* a service whose start failed (defunct) goes by itself */
		if (d && !stopped && !d->defunct && d->done == NULL && d->state != DISC_STOPPING) {
			CHECK(bdev_nvme_discovery_stop(d, stop_done, NULL, why, sizeof(why)) == 0);
			stopped = true;
		}
	}
	rounds(2);
	CHECK(TAILQ_EMPTY(&g_discs));
	CHECK(g_start_done == 1);
	CHECK(!stopped || g_stop_done == 1);
	for (unsigned i = 0; i < g_nctrlrs; i++)
		CHECK(!g_ctrlrs_fz[i].live);
	return 0;
}
