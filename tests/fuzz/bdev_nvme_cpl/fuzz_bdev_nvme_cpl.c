/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the nvme bdev's completion path: what a hostile or
 * broken NVMe controller answers to the commands the nvme bdev module
 * (src/module/bdev_nvme.c, bdev_nvme_ctrlr.c) sends through the host core
 * (src/host/ctrlr.c, qpair.c). All four files are included; the host
 * transport ops table (host_internal.h) is a fake defined here, standing in
 * for both shm (no fabrics) and tcp (fabrics), so no socket is needed and
 * every input is deterministic. The real reactor (one, driven by hand with
 * nvl_reactor_poll_once()) and the real bdev layer (nvl_bdev_submit, the
 * harness holding an open descriptor) carry the I/O.
 *
 * Time is virtual in the included files: their nvl_now_ns() reads a clock
 * that only the input moves (so keep-alive, admin timeouts, reconnect
 * backoff, fast_io_fail and ctrlr_loss happen within an input, the same way
 * every run).
 *
 * Each input: attach controller fz0 (namespaces fz0n1, 512 B blocks, and
 * fz0n2, 4 KiB blocks; the set-up answered healthily), open both bdevs,
 * then play records, then heal and check.
 *
 * Input: byte 0 the mode:
 *   bit 0    fabrics (trtype TCP: CAP/CC/CSTS, Number of Queues) else SHM
 *   bit 1-2  I/O queues 1..4                bit 3-4  queue entries 2, 4, 8, 32
 *   bit 5    ctrlr_loss_timeout_sec 3 (else -1: never give up)
 *   bit 6    fast_io_fail_timeout_sec 2 (else 0)
 *   bit 7    after attach, admin commands are answered only by the input
 * byte 1: MDTS 1..4 (bits 0-1: transfers of 8..64 KiB), bit 2: no DSM
 * then records [op][len][payload], op % 9:
 *   0 submit a bdev I/O: [ns|type|FUA|NO_HOLE][offset blocks u16][blocks-1]
 *     [iovec piece sizes (n+1) * 64 bytes ...]
 *   1 a CQE on I/O queue [qidx]: for the [pick]-th command in flight there
 *     (cid order), with cid [mode]: 0 its own, 1 raw [u16], 2 its own + 1,
 *     3 the last cid answered on that queue (a duplicate); status [sel]: bit 7
 *     an entry of an "interesting" table (path errors, ANA, aborted-SQ-
 *     deletion, ...), else raw [u16]; [DNR|More|CRD]; sqhd [u16]; cdw0 [u32]
 *   2 answer everything in flight successfully ([0] bit 0: newest first)
 *   3 an admin CQE: [sel] < 0x80 the sel-th admin command outstanding, else
 *     raw cid [u16]; status [u16]; cdw0 [u32]; then data for its buffer
 *     (identify data on a reconnect, a log page): unsolicited CQEs (an AEN
 *     the core never asked for) go through the same cid matching
 *   4 I/O queue [qidx] fails (its next poll reports the loss)
 *   5 the association fails (the admin connection drops)
 *   6 time passes: ([0] + 1) * ([1] bit 0 ? 1000 : 50) ms
 *   7 switches [0]: bit 0 admin answered automatically, bit 1 new I/O queue
 *     connects fail, bit 2 every I/O command answered successfully at once
 *   8 nothing (just reactor rounds)
 * After each record: a few rounds of the controller's poll and the reactor.
 *
 * Checks (__builtin_trap): every bdev I/O whose submit returned 0 completes
 * exactly once, with 0 or -errno, and one whose submit failed never does;
 * one that succeeds had each of its blocks answered with success exactly
 * once (a read: every byte of its buffers written by the target);
 * when it completes no command of it is still in flight or kept by the core
 * (its buffers are freed then, so ASan sees any late write); every command
 * the bdev sends has a cid the core gave out and is not in flight, lies
 * inside the bdev I/O it serves (LBA range, buffers: the iovecs of a piece
 * sum to its NLB, within MDTS; a DSM range may be the core's slot copy);
 * a completion for an in-flight cid retires it
 * from the core. At the end the target heals (admin and I/O answered, no
 * failures) and time passes until everything completed (bounded: nothing
 * may hang), a new read and write complete with 0 if the controller is
 * ready (or fail if it gave up), the bdevs detach and everything is freed
 * (LeakSanitizer).
 */
#include <stdint.h>
#include <time.h>

/* the included files' clock: virtual (CLOCK_MONOTONIC only) */
int fz_clock_gettime(clockid_t id, struct timespec *ts);
#define clock_gettime fz_clock_gettime

#include "module/bdev_nvme.c"
#include "module/bdev_nvme_ctrlr.c"
#include "host/ctrlr.c"
#include "host/qpair.c"

#undef clock_gettime

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "fuzz_bdev_nvme_cpl: line %d: %s\n", __LINE__, #x);        \
			__builtin_trap();                                                          \
		}                                                                                  \
	} while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_T0_NS (1000ull * 1000000000ull)
#define FZ_MAX_IOS 64
#define FZ_MAX_PIECES 8
#define FZ_QMAX 64             /* cids of an I/O queue (entries <= 32 here) */
#define FZ_MAX_Q 4
#define FZ_ACQ 16              /* admin CQEs queued by the input */
#define FZ_NS1_BLOCKS 4096u    /* 512 B blocks */
#define FZ_NS2_BLOCKS 1024u    /* 4 KiB blocks */

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

/* ---- the fake transport ------------------------------------------------------------- */

struct fz_ent {
	bool live;
	struct nvl_nvme_cmd cmd;
	struct iovec iov[HOST_MAX_IOV];
	int iovcnt;
	void *arg;                 /* the bdev I/O the command serves */
};

struct fz_tq {
	struct host_tq base;
	struct host_qpair *qp;
	struct fz_ent ent[FZ_QMAX];
	struct nvl_nvme_cpl cq[FZ_QMAX];
	unsigned ncq;
	bool fail;
	uint16_t last_cid;
};

struct fz_acqe {
	struct nvl_nvme_cpl cpl;
	uint8_t data[256];
	uint32_t len;
};

static struct {
	/* the input's switches */
	bool fabrics;
	bool auto_admin;
	bool auto_io;
	bool tq_connect_fail;
	bool fail_assoc;
	uint8_t mdts;
	bool dsm;
	/* the association */
	int token;
	bool up;
	struct host_admin_req *sent[HOST_ADMIN_SLOTS * 2];
	unsigned nsent;
	struct host_qpair *connecting[HOST_MAX_QUEUES];
	unsigned nconnecting;
	struct fz_acqe acq[FZ_ACQ];
	unsigned nacq;
	struct fz_tq *tq[FZ_MAX_Q + 1]; /* by qid */
} g_fz;

/* ---- the harness's bdev I/O -------------------------------------------------------- */

struct fz_io {
	struct nvl_bdev_io io;
	struct iovec iov[FZ_MAX_PIECES];
	uint8_t *bufs[FZ_MAX_PIECES];
	int nbufs;
	uint8_t lbads;
	bool live;                 /* submitted (rc 0) */
	int ncb;
	int status;
	uint64_t blocks_done;      /* by commands the target answered with success */
};

static struct fz_io g_ios[FZ_MAX_IOS];
static unsigned g_nios, g_pending;
static struct nvme_ctrlr *g_c;
static struct nvl_bdev_desc *g_desc[2];

static void fz_check_not_held(const struct fz_io *f);

static struct fz_io *
fz_io_of(void *arg)
{
	struct fz_io *f = container_of((struct nvl_bdev_io *)arg, struct fz_io, io);

	CHECK(f >= g_ios && f < g_ios + g_nios);
	return f;
}

static void
fz_io_cb(struct nvl_bdev_io *io, int status)
{
	struct fz_io *f = fz_io_of(io);

	CHECK(f->live && f->ncb == 0);
	CHECK(status <= 0);
	f->ncb++;
	f->status = status;
	CHECK(g_pending > 0);
	g_pending--;
	fz_check_not_held(f);
	/* success means every block was transferred, exactly once */
	if (status == 0 && f->io.type != NVL_BDEV_IO_FLUSH && f->io.type != NVL_BDEV_IO_UNMAP)
		CHECK(f->blocks_done == f->io.length >> f->lbads);
	if (status == 0 && f->io.type == NVL_BDEV_IO_READ)
		for (int i = 0; i < f->nbufs; i++)
			for (size_t k = 0; k < f->iov[i].iov_len; k++)
				CHECK(f->bufs[i][k] == 0xa5);
	for (int i = 0; i < f->nbufs; i++) {
		free(f->bufs[i]);
		f->bufs[i] = NULL;
	}
}

/* [p, p + len) inside f's own buffers (or, a DSM range, inside f itself)? */
static bool
fz_io_owns(const struct fz_io *f, const void *p, size_t len)
{
	const uint8_t *b = p;

	if (b >= (const uint8_t *)f && b + len <= (const uint8_t *)(f + 1))
		return true;
	for (int i = 0; i < f->nbufs; i++)
		if (f->bufs[i] && b >= f->bufs[i] && b + len <= f->bufs[i] + f->iov[i].iov_len)
			return true;
	return false;
}

static uint8_t
fz_ns_lbads(uint32_t nsid)
{
	return nsid == 1 ? 9 : 12;
}

static uint64_t
fz_ns_blocks(uint32_t nsid)
{
	return nsid == 1 ? FZ_NS1_BLOCKS : FZ_NS2_BLOCKS;
}

/* A command the bdev sent: is it what its bdev I/O asked for? */
static void
fz_check_cmd(const struct nvl_nvme_cmd *cmd, const struct iovec *iov, int iovcnt,
	     const struct host_req *r)
{
	struct fz_io *f = fz_io_of(r->arg);
	uint64_t slba = (uint64_t)cmd->cdw10 | (uint64_t)cmd->cdw11 << 32;
	uint64_t sum = 0, nlb = 0, lbads, first, end;

	CHECK(f->live && f->ncb == 0);
	CHECK(cmd->nsid == 1 || cmd->nsid == 2);
	CHECK(iovcnt >= 0 && iovcnt <= HOST_MAX_IOV);
	lbads = fz_ns_lbads(cmd->nsid);
	CHECK(lbads == f->lbads);
	for (int i = 0; i < iovcnt; i++) {
		CHECK(iov[i].iov_len > 0);
		/* small parameter blocks travel in the core's slot copy */
		CHECK(fz_io_owns(f, iov[i].iov_base, iov[i].iov_len) ||
		      ((const uint8_t *)iov[i].iov_base >= r->small &&
		       (const uint8_t *)iov[i].iov_base + iov[i].iov_len <=
			       r->small + sizeof(r->small)));
		sum += iov[i].iov_len;
	}
	first = f->io.offset >> lbads;
	end = (f->io.offset + f->io.length) >> lbads;
	switch (cmd->opc) {
	case NVL_NVME_IO_READ:
	case NVL_NVME_IO_WRITE:
		nlb = (cmd->cdw12 & 0xffff) + 1;
		CHECK(sum == nlb << lbads);
		/* within MDTS when built; a command kept across a reconnect is sent
		 * again as it was, even if the new association has a smaller MDTS
		 * (the target refuses it then, the core fails it) */
		if (r->state != HOST_REQ_KEPT)
			CHECK(sum <= host_ctrlr_max_xfer(g_c->hc));
		CHECK(f->io.type == (cmd->opc == NVL_NVME_IO_READ ? NVL_BDEV_IO_READ
								  : NVL_BDEV_IO_WRITE));
		break;
	case NVL_NVME_IO_WRITE_ZEROES:
		nlb = (cmd->cdw12 & 0xffff) + 1;
		CHECK(iovcnt == 0 && f->io.type == NVL_BDEV_IO_WRITE_ZEROES);
		break;
	case NVL_NVME_IO_DSM: {
		struct nvl_nvme_dsm_range range;

		CHECK(iovcnt == 1 && sum == sizeof(range) && f->io.type == NVL_BDEV_IO_UNMAP);
		memcpy(&range, iov[0].iov_base, sizeof(range));
		slba = range.slba;
		nlb = range.nlb;
		break;
	}
	case NVL_NVME_IO_FLUSH:
		CHECK(iovcnt == 0 && f->io.type == NVL_BDEV_IO_FLUSH);
		return;
	default:
		CHECK(0);
	}
	CHECK(nlb > 0 && slba >= first && slba + nlb <= end && end <= fz_ns_blocks(cmd->nsid));
}

static int
fz_assoc_start(struct host_ctrlr *c, uint64_t now)
{
	(void)now;
	c->tctx = &g_fz.token;
	g_fz.up = false;
	g_fz.nsent = 0;
	g_fz.nconnecting = 0;
	return 0;
}

static void
fz_assoc_stop(struct host_ctrlr *c)
{
	g_fz.nsent = 0;
	g_fz.nconnecting = 0;
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

/* A healthy controller's answer: two namespaces, everything succeeds. */
static void
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

			id->mdts = g_fz.mdts;
			id->oncs = NVL_NVME_ONCS_WRITE_ZEROES | (g_fz.dsm ? NVL_NVME_ONCS_DSM : 0);
			id->ioccsz = 4;
		} else if (a->cmd.cdw10 == NVL_NVME_CNS_ACTIVE_NS_LIST) {
			((uint32_t *)b)[0] = 1;
			((uint32_t *)b)[1] = 2;
		} else if (a->cmd.cdw10 == NVL_NVME_CNS_NS) {
			struct nvl_nvme_id_ns *ns = (void *)b;

			ns->nsze = fz_ns_blocks(a->cmd.nsid);
			ns->ncap = ns->nsze;
			ns->lbaf[0].lbads = fz_ns_lbads(a->cmd.nsid);
			ns->nguid[0] = (uint8_t)a->cmd.nsid;
		} else if (a->cmd.cdw10 == NVL_NVME_CNS_NS_ID_DESCRIPTORS) {
			b[0] = NVL_NVME_NIDT_UUID;
			b[1] = 16;
			b[4] = (uint8_t)a->cmd.nsid;
		}
		break;
	case NVL_NVME_ADM_FABRICS: {
		const struct nvl_nvmf_property_cmd *p = (const void *)&a->cmd;

		if (p->ofst == NVL_NVME_REG_CAP)
			cpl.cdw0 = 63 | (1u << 24); /* MQES 63, TO 500 ms */
		else if (p->ofst == NVL_NVME_REG_CSTS)
			cpl.cdw0 = NVL_NVME_CSTS_RDY | NVL_NVME_CSTS_SHST_COMPLETE;
		break;
	}
	case NVL_NVME_ADM_SET_FEATURES:
		cpl.cdw0 = a->cmd.cdw11;
		break;
	default:
		break;
	}
	host_admin_complete(c, a, &cpl, NULL, 0);
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
		if (!c->ops->fabrics) {
			c->max_io_queues = FZ_MAX_Q;
			c->max_queue_entries = FZ_QMAX;
		}
		host_assoc_transport_ready(c);
		return 1;
	}
	/* the input's CQEs first, matched by cid as the real transports do */
	while (g_fz.nacq > 0 && c->tctx) {
		struct fz_acqe e = g_fz.acq[0];
		struct host_admin_req *a;

		memmove(g_fz.acq, g_fz.acq + 1, --g_fz.nacq * sizeof(g_fz.acq[0]));
		a = host_admin_by_cid(c, e.cpl.cid);
		n++;
		if (a == NULL)
			continue; /* late, repeated or never sent: dropped */
		fz_admin_forget(a);
		if (a->dir == NVL_XFER_FROM_CTRLR && a->buf && e.len)
			memcpy(a->buf, e.data, NVL_MIN(e.len, a->len));
		host_admin_complete(c, a, &e.cpl, NULL, 0);
	}
	while (g_fz.auto_admin && g_fz.nsent > 0 && c->tctx) {
		struct host_admin_req *a = g_fz.sent[0];

		memmove(g_fz.sent, g_fz.sent + 1, --g_fz.nsent * sizeof(g_fz.sent[0]));
		fz_admin_answer(c, a);
		n++;
	}
	while (g_fz.nconnecting > 0 && c->tctx) {
		struct host_qpair *qp = g_fz.connecting[0];
		struct fz_tq *t;

		memmove(g_fz.connecting, g_fz.connecting + 1,
			--g_fz.nconnecting * sizeof(g_fz.connecting[0]));
		n++;
		if (g_fz.tq_connect_fail) {
			host_tq_failed(c, qp, -EREMOTEIO, "fuzz: queue refused");
			continue;
		}
		t = calloc(1, sizeof(*t));
		CHECK(t != NULL);
		CHECK(qp->qid >= 1 && qp->qid <= FZ_MAX_Q);
		t->base.ops = c->ops;
		t->qp = qp;
		g_fz.tq[qp->qid] = t;
		host_tq_connected(c, qp, &t->base);
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

static int
fz_tq_connect(struct host_ctrlr *c, struct host_qpair *qp)
{
	(void)c;
	CHECK(g_fz.nconnecting < HOST_MAX_QUEUES);
	g_fz.connecting[g_fz.nconnecting++] = qp;
	return 0;
}

static void
fz_tq_cancel(struct host_ctrlr *c, struct host_qpair *qp)
{
	(void)c;
	for (unsigned i = 0; i < g_fz.nconnecting; i++) {
		if (g_fz.connecting[i] == qp) {
			memmove(&g_fz.connecting[i], &g_fz.connecting[i + 1],
				(g_fz.nconnecting - i - 1) * sizeof(g_fz.connecting[0]));
			g_fz.nconnecting--;
			return;
		}
	}
}

static void
fz_tq_destroy(struct host_tq *tq)
{
	struct fz_tq *t = (struct fz_tq *)tq;

	for (unsigned q = 0; q <= FZ_MAX_Q; q++)
		if (g_fz.tq[q] == t)
			g_fz.tq[q] = NULL;
	free(t);
}

static int
fz_submit(struct host_qpair *qp, struct host_tq *tq, struct host_req *r, struct nvl_nvme_cmd *cmd,
	  const struct iovec *iov, int iovcnt)
{
	struct fz_tq *t = (struct fz_tq *)tq;
	struct fz_ent *e;
	uint64_t sum = 0;

	CHECK(t->qp == qp);
	if (t->fail)
		return -ENOTCONN;
	CHECK(cmd->cid < qp->entries - 1 && cmd->cid < FZ_QMAX && r->cid == cmd->cid);
	e = &t->ent[cmd->cid];
	CHECK(!e->live);
	fz_check_cmd(cmd, iov, iovcnt, r);
	/* a write's data is read now, as a transport sends it */
	if (cmd->opc == NVL_NVME_IO_WRITE || cmd->opc == NVL_NVME_IO_DSM)
		for (int i = 0; i < iovcnt; i++)
			for (size_t k = 0; k < iov[i].iov_len; k++)
				sum += ((const uint8_t *)iov[i].iov_base)[k];
	(void)sum;
	e->live = true;
	e->cmd = *cmd;
	e->iovcnt = iovcnt;
	memcpy(e->iov, iov, sizeof(*iov) * (size_t)iovcnt);
	e->arg = r->arg;
	return 0;
}

/* One CQE reaches the core; a read's data arrives first. */
static void
fz_deliver(struct fz_tq *t, const struct nvl_nvme_cpl *cpl)
{
	struct host_qpair *qp = t->qp;
	struct fz_ent *e = cpl->cid < FZ_QMAX ? &t->ent[cpl->cid] : NULL;
	bool was_live = e && e->live;

	if (was_live) {
		if (e->cmd.opc == NVL_NVME_IO_READ)
			for (int i = 0; i < e->iovcnt; i++)
				memset(e->iov[i].iov_base, 0xa5, e->iov[i].iov_len);
		e->live = false;
		if (nvl_cpl_status(cpl) == 0 && (e->cmd.opc == NVL_NVME_IO_READ ||
						 e->cmd.opc == NVL_NVME_IO_WRITE ||
						 e->cmd.opc == NVL_NVME_IO_WRITE_ZEROES))
			fz_io_of(e->arg)->blocks_done += (e->cmd.cdw12 & 0xffff) + 1;
	}
	t->last_cid = cpl->cid;
	host_qpair_complete(qp, cpl);
	/* the core retired it: finished, or kept for a reconnect */
	if (was_live)
		CHECK(qp->reqs[cpl->cid].state != HOST_REQ_INFLIGHT);
}

static int
fz_poll(struct host_qpair *qp, struct host_tq *tq, uint32_t max)
{
	struct fz_tq *t = (struct fz_tq *)tq;
	struct nvl_nvme_cpl cq[FZ_QMAX];
	unsigned n;

	(void)max;
	if (t->fail) {
		host_qpair_lost(qp, "fuzz: I/O queue %u lost", qp->qid);
		return -ENOTCONN;
	}
	n = t->ncq;
	memcpy(cq, t->cq, sizeof(cq[0]) * n);
	t->ncq = 0;
	for (unsigned i = 0; i < n; i++)
		fz_deliver(t, &cq[i]);
	if (g_fz.auto_io) {
		for (unsigned cid = 0; cid < FZ_QMAX && !qp->tq_broken; cid++) {
			struct nvl_nvme_cpl cpl = { 0 };

			if (!t->ent[cid].live)
				continue;
			cpl.cid = (uint16_t)cid;
			cpl.sqid = qp->qid;
			fz_deliver(t, &cpl);
			n++;
		}
	}
	return (int)n;
}

static int
fz_tq_fds(const struct host_tq *tq, struct pollfd *p, int max)
{
	(void)tq;
	(void)p;
	(void)max;
	return 0;
}

const struct host_transport_ops g_host_shm_ops = {
	.name = "fuzz-shm",
	.kind = NVL_URI_NVME_SHM,
	.delete_queues = true,
	.assoc_start = fz_assoc_start,
	.assoc_stop = fz_assoc_stop,
	.process = fz_process,
	.fds = fz_fds,
	.admin_send = fz_admin_send,
	.tq_connect = fz_tq_connect,
	.tq_cancel = fz_tq_cancel,
	.tq_destroy = fz_tq_destroy,
	.submit = fz_submit,
	.poll = fz_poll,
	.tq_fds = fz_tq_fds,
};

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
	.tq_cancel = fz_tq_cancel,
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

/* Completed f: nothing of it may still be in flight on a transport queue or kept by the core. */
static void
fz_check_not_held(const struct fz_io *f)
{
	if (g_c == NULL)
		return;
	for (unsigned q = 0; q <= FZ_MAX_Q; q++) {
		const struct fz_tq *t = g_fz.tq[q];

		for (unsigned cid = 0; t && cid < FZ_QMAX; cid++)
			CHECK(!t->ent[cid].live || t->ent[cid].arg != &f->io);
	}
	for (unsigned i = 0; i < g_c->nioq; i++) {
		const struct host_qpair *qp = g_c->ioq[i]->qp;

		for (uint32_t k = 0; qp && k + 1 < qp->entries; k++)
			CHECK(qp->reqs[k].state == HOST_REQ_FREE || qp->reqs[k].arg != &f->io);
	}
}

/* ---- driving --------------------------------------------------------------------------- */

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

/* The controller's poll (as its timer and poller would) and the reactor. */
static void
rounds(int n)
{
	for (int i = 0; i < n; i++) {
		if (g_c)
			ctrlr_poll_now(g_c);
		nvl_reactor_poll_once();
	}
}

static void
advance_ms(uint64_t ms)
{
	g_vnow_ns += ms * 1000000ull;
	rounds(2);
}

static bool g_attach_done, g_detach_done;
static int g_attach_rc;

static void
attach_done(void *arg, struct nvme_ctrlr *c, int rc, const char *why)
{
	(void)arg;
	(void)c;
	(void)why;
	g_attach_done = true;
	g_attach_rc = rc;
}

static void
detach_done(void *arg, struct nvme_ctrlr *c, int rc, const char *why)
{
	(void)arg;
	(void)c;
	(void)why;
	CHECK(!g_detach_done);
	g_detach_done = true;
	g_c = NULL;
}

/* A bdev I/O from the input (or the end's check); returns submit's rc. */
static int
fz_submit_io(const uint8_t *p, size_t len, bool *submitted)
{
	static const uint8_t types[5] = { NVL_BDEV_IO_READ, NVL_BDEV_IO_WRITE, NVL_BDEV_IO_FLUSH,
					  NVL_BDEV_IO_WRITE_ZEROES, NVL_BDEV_IO_UNMAP };
	uint8_t b[4] = { 0 };
	struct fz_io *f;
	unsigned ns;
	uint64_t nblocks, off, cnt, left;
	int rc;

	*submitted = false;
	if (g_nios == FZ_MAX_IOS)
		return -ENOSPC;
	memcpy(b, p, NVL_MIN(len, sizeof(b)));
	ns = b[0] & 1;
	nblocks = fz_ns_blocks(ns + 1);
	f = &g_ios[g_nios];
	memset(f, 0, sizeof(*f));
	f->lbads = fz_ns_lbads(ns + 1);
	f->io.type = types[((b[0] >> 1) & 7) % 5];
	f->io.flags = ((b[0] & 0x10) ? NVL_BDEV_IO_FUA : 0) | ((b[0] & 0x20) ? NVL_BDEV_IO_NO_HOLE : 0);
	off = ((uint64_t)b[1] | (uint64_t)b[2] << 8) % nblocks;
	cnt = NVL_MIN((uint64_t)b[3] + 1, nblocks - off);
	f->io.offset = off << f->lbads;
	f->io.length = f->io.type == NVL_BDEV_IO_FLUSH && (b[0] & 0x40) ? 0 : cnt << f->lbads;
	f->io.cb = fz_io_cb;
	if (f->io.type == NVL_BDEV_IO_READ || f->io.type == NVL_BDEV_IO_WRITE) {
		/* in pieces of the input's sizes, each its own allocation */
		left = f->io.length;
		for (size_t i = 4; left > 0 && f->nbufs < FZ_MAX_PIECES; i++) {
			size_t piece = f->nbufs == FZ_MAX_PIECES - 1 || i >= len
					       ? left
					       : NVL_MIN(left, ((uint64_t)p[i] + 1) * 64);

			f->bufs[f->nbufs] = malloc(piece);
			CHECK(f->bufs[f->nbufs] != NULL);
			memset(f->bufs[f->nbufs], 0x3c, piece);
			f->iov[f->nbufs] = (struct iovec){ f->bufs[f->nbufs], piece };
			f->nbufs++;
			left -= piece;
		}
		f->io.iov = f->iov;
		f->io.iovcnt = f->nbufs;
	}
	g_nios++;
	f->live = true; /* before submit: the completion may come inline */
	g_pending++;
	rc = nvl_bdev_submit(g_desc[ns], &f->io);
	if (rc < 0) {
		CHECK(f->ncb == 0);
		f->live = false;
		g_pending--;
		for (int i = 0; i < f->nbufs; i++) {
			free(f->bufs[i]);
			f->bufs[i] = NULL;
		}
		return rc;
	}
	*submitted = true;
	return 0;
}

static const uint16_t g_interesting[] = {
	0x000, 0x002, 0x004, 0x006, 0x007, 0x008, 0x00b, 0x080, 0x081, 0x082, 0x083,
	0x022, 0x005, 0x280, 0x281, 0x286, 0x300, 0x301, 0x302, 0x303, 0x360, 0x370,
	0x371, 0x1ff, 0x7ff, 0x0ff, 0x020, 0x00d,
};

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

static uint8_t
get8(const uint8_t *p, size_t len, size_t at)
{
	return at < len ? p[at] : 0;
}

/* op 1: a CQE for an I/O queue. */
static void
fz_io_cqe(const uint8_t *p, size_t len)
{
	struct fz_tq *t = g_fz.tq[1 + get8(p, len, 0) % FZ_MAX_Q];
	struct nvl_nvme_cpl cpl = { 0 };
	unsigned pick = get8(p, len, 1), nlive = 0, cid = 0;
	uint8_t sel = get8(p, len, 5), fl = get8(p, len, 8);
	uint16_t sct_sc;

	if (t == NULL || t->ncq == FZ_QMAX)
		return;
	for (unsigned i = 0; i < FZ_QMAX; i++)
		nlive += t->ent[i].live;
	if (nlive) {
		pick %= nlive;
		for (cid = 0; cid < FZ_QMAX; cid++)
			if (t->ent[cid].live && pick-- == 0)
				break;
	}
	switch (get8(p, len, 2) % 4) {
	case 0: cpl.cid = (uint16_t)cid; break;
	case 1: cpl.cid = get16(p, len, 3); break;
	case 2: cpl.cid = (uint16_t)(cid + 1); break;
	default: cpl.cid = t->last_cid; break;
	}
	if (sel & 0x80)
		sct_sc = g_interesting[(sel & 0x7f) % (sizeof(g_interesting) / sizeof(g_interesting[0]))];
	else
		sct_sc = get16(p, len, 6);
	cpl.status = NVL_NVME_SC_TO_STATUS(sct_sc) | ((fl & 1) ? NVL_NVME_STATUS_DNR : 0) |
		     ((fl & 2) ? NVL_NVME_STATUS_MORE : 0) | (uint16_t)(((fl >> 2) & 3) << 12) |
		     (fl >> 7);
	cpl.sqhd = get16(p, len, 9);
	cpl.sqid = t->qp->qid;
	cpl.cdw0 = get32(p, len, 11);
	t->cq[t->ncq++] = cpl;
}

/* op 2: everything in flight answered successfully. */
static void
fz_io_all_ok(bool newest_first)
{
	for (unsigned q = 1; q <= FZ_MAX_Q; q++) {
		struct fz_tq *t = g_fz.tq[q];

		for (unsigned i = 0; t && i < FZ_QMAX && t->ncq < FZ_QMAX; i++) {
			unsigned cid = newest_first ? FZ_QMAX - 1 - i : i;
			struct nvl_nvme_cpl cpl = { 0 };

			if (!t->ent[cid].live)
				continue;
			cpl.cid = (uint16_t)cid;
			cpl.sqid = (uint16_t)q;
			t->cq[t->ncq++] = cpl;
		}
	}
}

/* op 3: an admin CQE. */
static void
fz_admin_cqe(const uint8_t *p, size_t len)
{
	struct fz_acqe *e;
	uint8_t sel = get8(p, len, 0);

	if (g_fz.nacq == FZ_ACQ)
		return;
	e = &g_fz.acq[g_fz.nacq];
	memset(e, 0, sizeof(*e));
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
	g_fz.nacq++;
}

static bool
all_done(void)
{
	return g_pending == 0;
}

/* The target behaves from now on: time passes until every I/O completed. */
static void
heal(unsigned max_steps)
{
	g_fz.auto_admin = true;
	g_fz.auto_io = true;
	g_fz.tq_connect_fail = false;
	for (unsigned i = 0; i < max_steps && !all_done(); i++) {
		rounds(2);
		advance_ms(250);
	}
	rounds(2);
}

static void
fz_reset(uint8_t mode, uint8_t mode2)
{
	memset(&g_fz, 0, sizeof(g_fz));
	g_fz.fabrics = mode & 1;
	g_fz.auto_admin = true;
	g_fz.mdts = (uint8_t)(1 + (mode2 & 3));
	g_fz.dsm = !(mode2 & 4);
	g_nios = 0;
	g_pending = 0;
	g_c = NULL;
	g_attach_done = g_detach_done = false;
	g_attach_rc = 0;
	g_vnow_ns = FZ_T0_NS;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t entries[4] = { 2, 4, 8, 32 };
	struct nvme_ctrlr_opts o;
	size_t off = 2;
	uint8_t mode;
	bool sub;
	int rc;

	if (size < 2)
		return 0;
	mode = data[0];
	fz_reset(mode, data[1]);

	memset(&o, 0, sizeof(o));
	nvl_strlcpy(o.name, "fz0", sizeof(o.name));
	nvl_strlcpy(o.trtype, g_fz.fabrics ? "TCP" : "SHM", sizeof(o.trtype));
	nvl_strlcpy(o.traddr, g_fz.fabrics ? "127.0.0.1" : "/nonexistent/fuzz.sock",
		    sizeof(o.traddr));
	nvl_strlcpy(o.trsvcid, "4420", sizeof(o.trsvcid));
	nvl_strlcpy(o.adrfam, "IPv4", sizeof(o.adrfam));
	nvl_strlcpy(o.subnqn, "nqn.2024-01.io.nvlend:fuzz", sizeof(o.subnqn));
	nvl_strlcpy(o.hostnqn, "nqn.2024-01.io.nvlend:fuzz-host", sizeof(o.hostnqn));
	o.num_io_queues = 1 + ((mode >> 1) & 3);
	o.io_queue_size = entries[(mode >> 3) & 3];
	o.kato_ms = 10000;
	o.ctrlr_loss_timeout_sec = (mode & 0x20) ? 3 : -1;
	o.reconnect_delay_sec = 1;
	o.fast_io_fail_timeout_sec = (mode & 0x40) ? 2 : 0;
	o.connect_timeout_ms = 10000;

	rc = bdev_nvme_attach(&o, attach_done, NULL, &g_c);
	CHECK(rc == 0);
	for (int i = 0; i < 64 && !g_attach_done; i++)
		rounds(1);
	CHECK(g_attach_done && g_attach_rc == 0);
	CHECK(nvl_bdev_open("fz0n1", true, "fuzz", &g_desc[0]) == 0);
	CHECK(nvl_bdev_open("fz0n2", true, "fuzz", &g_desc[1]) == 0);
	g_fz.auto_admin = !(mode & 0x80);

	while (off + 2 <= size) {
		uint8_t op = data[off] % 9;
		size_t len = NVL_MIN((size_t)data[off + 1], size - off - 2);
		const uint8_t *p = data + off + 2;

		off += 2 + len;
		switch (op) {
		case 0:
			if (g_nios < FZ_MAX_IOS - 2) /* two kept for the end's check */
				(void)fz_submit_io(p, len, &sub);
			break;
		case 1:
			fz_io_cqe(p, len);
			break;
		case 2:
			fz_io_all_ok(len > 0 && (p[0] & 1));
			break;
		case 3:
			fz_admin_cqe(p, len);
			break;
		case 4:
			if (g_fz.tq[1 + get8(p, len, 0) % FZ_MAX_Q])
				g_fz.tq[1 + get8(p, len, 0) % FZ_MAX_Q]->fail = true;
			break;
		case 5:
			g_fz.fail_assoc = true;
			break;
		case 6:
			advance_ms(((uint64_t)get8(p, len, 0) + 1) * ((get8(p, len, 1) & 1) ? 1000 : 50));
			break;
		case 7:
			g_fz.auto_admin = get8(p, len, 0) & 1;
			g_fz.tq_connect_fail = (get8(p, len, 0) & 2) != 0;
			g_fz.auto_io = (get8(p, len, 0) & 4) != 0;
			break;
		default:
			break;
		}
		rounds(3);
	}

	/* nothing may hang: with a healthy target every I/O ends */
	heal(600);
	CHECK(all_done());

	/* the bdevs stay usable (or fail cleanly once the controller gave up) */
	{
		static const uint8_t rd[4] = { 0x00, 5, 0, 7 };  /* n1 read 8 blocks at 5 */
		static const uint8_t wr[5] = { 0x03, 9, 0, 2, 3 }; /* n2 write 3 blocks at 9 */
		bool ready = host_ctrlr_state(g_c->hc) == HOST_CTRLR_READY &&
			     host_ctrlr_fail_mode(g_c->hc) == HOST_FAIL_NONE;
		unsigned first = g_nios;
		bool s1, s2;
		int r1 = fz_submit_io(rd, sizeof(rd), &s1);
		int r2 = fz_submit_io(wr, sizeof(wr), &s2);

		heal(600);
		CHECK(all_done());
		if (ready) {
			CHECK(r1 == 0 && r2 == 0);
			CHECK(g_ios[first].ncb == 1 && g_ios[first].status == 0);
			CHECK(g_ios[first + 1].ncb == 1 && g_ios[first + 1].status == 0);
		} else if (host_ctrlr_state(g_c->hc) == HOST_CTRLR_FAILED) {
			CHECK(r1 < 0 || g_ios[first].status < 0);
			CHECK(r2 < 0 || g_ios[first + 1].status < 0);
		}
	}

	/* exactly once, and the counters agree */
	for (unsigned i = 0; i < g_nios; i++)
		CHECK(g_ios[i].ncb == (g_ios[i].live ? 1 : 0));
	for (unsigned i = 0; i < g_c->nioq; i++) {
		CHECK(g_c->ioq[i]->inflight == 0 && g_c->ioq[i]->pend_head == NULL);
		CHECK(host_qpair_outstanding(g_c->ioq[i]->qp) == 0);
	}
	CHECK(nvl_bdev_inflight(g_desc[0]->bdev) == 0 && nvl_bdev_inflight(g_desc[1]->bdev) == 0);

	if (getenv("NVL_FUZZ_VERBOSE"))
		fprintf(stderr, "fuzz_bdev_nvme_cpl: %u I/O, state %s, losses %llu, reconnects %llu\n",
			g_nios, host_ctrlr_state_str(host_ctrlr_state(g_c->hc)),
			(unsigned long long)host_ctrlr_losses(g_c->hc),
			(unsigned long long)host_ctrlr_reconnects(g_c->hc));

	/* detach: everything goes */
	nvl_bdev_close(g_desc[0]);
	nvl_bdev_close(g_desc[1]);
	{
		char why[256];

		CHECK(bdev_nvme_detach(g_c, detach_done, NULL, why, sizeof(why)) == 0);
	}
	for (int i = 0; i < 400 && !g_detach_done; i++) {
		nvl_reactor_poll_once();
		if (!g_detach_done && i % 4 == 3)
			advance_ms(100);
	}
	CHECK(g_detach_done);
	rounds(2);
	CHECK(bdev_nvme_ctrlr_first() == NULL);
	CHECK(nvl_bdev_get_by_name("fz0n1") == NULL && nvl_bdev_get_by_name("fz0n2") == NULL);
	for (unsigned q = 0; q <= FZ_MAX_Q; q++)
		CHECK(g_fz.tq[q] == NULL);
	return 0;
}
