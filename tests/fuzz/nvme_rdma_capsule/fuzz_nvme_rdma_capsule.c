/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the NVMe/RDMA target's command handling
 * (src/transport/rdma_capsule.c): what a hostile RDMA host controls, without
 * verbs. The capsule code posts work only through struct rdma_post_ops;
 * here those are fakes that record what would go on the wire and check it.
 *
 * Input: [mode][reads][n] then n records of [ctl][len lo][len hi][len bytes]:
 *  - mode bits 0..1: 0 = a queue waiting for its Fabrics Connect (no
 *    subsystem exists: every Connect is refused), 1 = an admin queue of a
 *    live controller, 2/3 = I/O queue 1 of it; bit 2: no in-capsule data
 *    (else 1 KiB); reads: RDMA READs in flight at most (1..4);
 *  - each record is a capsule received in the lowest posted receive buffer
 *    (clipped to the buffer, as a NIC does; skipped when none is posted,
 *    as the NIC would hold it back); ctl bit 0 completes the RDMA READs in
 *    flight first, bit 1 the response sends; data an RDMA READ fetches comes
 *    from the input after the records (zeros once it runs out).
 * The controller (admin and I/O modes) has two RAM-bdev namespaces and the
 * NVMe layer's real command handling. Checked: a receive buffer is never
 * posted twice, READs stay within the descriptor, the buffer and the
 * negotiated depth, an RDMA WRITE never exceeds the descriptor or the
 * buffer, a response goes out for the command it answers; at the end
 * (READs and sends completed, held AERs aborted) every command slot is free
 * and, unless the queue failed, every receive buffer is posted again.
 */
#include "transport/rdma_capsule.c"

#include "bdev/bdev.h"

#include <stdio.h>
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(nvmf_rdma)

/* ---- what rdma.c and rdma_conn.c would provide -------------------------------------- */

struct rdma_opts g_rdma_opts = {
	.max_queue_depth = 16, .max_aq_depth = 16, .max_io_qpairs = 4, .icd = 1024,
	.max_io_size = 131072,
};
struct rdma_conn_list g_rdma_pending = TAILQ_HEAD_INITIALIZER(g_rdma_pending);
struct rdma_ctrlr_list g_rdma_ctrlrs = TAILQ_HEAD_INITIALIZER(g_rdma_ctrlrs);
struct nvl_transport_ops g_rdma_ops = { .name = "RDMA" };
const struct nvl_nvme_queue_ops g_rdma_queue_ops;

static bool g_failed;

void
rdma_conn_error(struct rdma_conn *c, const char *why)
{
	(void)why;
	if (c->state == RC_CLOSING || c->state == RC_FAILED)
		return;
	c->state = RC_FAILED;
	g_failed = true;
}

void
rdma_conn_try_free(struct rdma_conn *c)
{
	(void)c;
}

/* ---- the fake queue pair ------------------------------------------------------------ */

#define ENTRIES 8
#define MAXQ 64

static const uint8_t *g_in;
static size_t g_in_len, g_in_off;
static bool g_posted[ENTRIES];
static uint32_t g_reads[MAXQ], g_nreads, g_sends[MAXQ], g_nsends;

static int
fz_post_recv(struct rdma_conn *c, uint32_t idx)
{
	if (idx >= c->nrecv || g_posted[idx])
		__builtin_trap(); /* a buffer posted twice would take two capsules at once */
	g_posted[idx] = true;
	return 0;
}

static int
fz_post_read(struct rdma_conn *c, struct rdma_req *r)
{
	if (r->state != RR_READING || r->len == 0 || r->len > r->sgl.len || r->len > r->buf_cap ||
	    r->sgl.kind != NVL_RDMA_SGL_KEYED || c->reads > c->max_reads || g_nreads >= MAXQ)
		__builtin_trap();
	g_reads[g_nreads++] = r->idx;
	return 0;
}

static int
fz_post_response(struct rdma_conn *c, struct rdma_req *r, uint32_t xfer, bool inv,
		 uint32_t inv_key)
{
	(void)c;
	(void)inv_key;
	if (r->state != RR_TX || r->rsp->cid != r->nvme.cmd.cid || g_nsends >= MAXQ)
		__builtin_trap();
	if (xfer && (xfer > r->sgl.len || xfer > r->buf_cap || r->sgl.kind != NVL_RDMA_SGL_KEYED))
		__builtin_trap(); /* an RDMA WRITE beyond what the host offered */
	if (inv && r->sgl.kind != NVL_RDMA_SGL_KEYED)
		__builtin_trap();
	g_sends[g_nsends++] = r->idx;
	return 0;
}

static int
fz_buf_reserve(struct rdma_conn *c, struct rdma_req *r, uint32_t len)
{
	uint8_t *p;

	(void)c;
	if (len <= r->buf_cap)
		return 0;
	p = realloc(r->buf, len);
	if (p == NULL)
		return -ENOMEM;
	r->buf = p;
	r->buf_cap = len;
	return 0;
}

static const struct rdma_post_ops fz_ops = {
	.post_recv = fz_post_recv,
	.post_read = fz_post_read,
	.post_response = fz_post_response,
	.buf_reserve = fz_buf_reserve,
};

/* ---- a controller for the admin and I/O modes ------------------------------------------- */

static struct nvl_bdev_desc *g_desc[2];
static struct nvl_nvme_ns g_ns[2];
static struct nvl_nvmf_ctrlr g_tc;

static struct nvl_nvme_ns *
fz_get_ns(struct nvl_nvme_ctrlr *c, uint32_t nsid)
{
	(void)c;
	return nsid == 1 ? &g_ns[0] : nsid == 2 ? &g_ns[1] : NULL;
}

static uint32_t
fz_next_nsid(struct nvl_nvme_ctrlr *c, uint32_t after)
{
	(void)c;
	return after < 2 ? after + 1 : 0;
}

static enum nvl_nvme_qop
fz_queue_op(struct nvl_nvme_ctrlr *c, struct nvl_nvme_req *req, uint16_t *status)
{
	(void)c;
	(void)req;
	*status = NVL_NVME_DNR(NVL_NVME_SC_INVALID_OPCODE);
	return NVL_NVME_QOP_DONE;
}

static void
fz_reset(struct nvl_nvme_ctrlr *c)
{
	(void)c;
}

static const struct nvl_nvme_ctrlr_ops fz_ctrlr_ops = {
	.get_ns = fz_get_ns,
	.next_nsid = fz_next_nsid,
};

static const struct nvl_nvme_queue_ops fz_queue_ops = {
	.create_io_cq = fz_queue_op,
	.create_io_sq = fz_queue_op,
	.delete_io_sq = fz_queue_op,
	.delete_io_cq = fz_queue_op,
	.reset = fz_reset,
};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct nvl_bdev_ram_opts o[2] = {
		{ .name = "fzr_ns1", .num_blocks = 256, .block_size = 512 },
		{ .name = "fzr_ns2", .num_blocks = 32, .block_size = 4096 },
	};
	struct nvl_bdev *b;

	(void)argc;
	(void)argv;
	nvl_log_set_level(0);
	nvl_log_set_fd(-1, false);
	for (int i = 0; i < 2; i++)
		if (nvl_bdev_ram_create(&o[i], &b) < 0 ||
		    nvl_bdev_open(o[i].name, true, "fuzz", &g_desc[i]) < 0)
			abort();
	return 0;
}

static void
ctrlr_setup(void)
{
	struct nvl_nvme_ctrlr *n = &g_tc.nvme;

	memset(&g_tc, 0, sizeof(g_tc));
	for (int i = 0; i < 2; i++) {
		memset(&g_ns[i], 0, sizeof(g_ns[i]));
		if (nvl_nvme_ns_init(&g_ns[i], (uint32_t)i + 1, g_desc[i]) < 0)
			abort();
	}
	if (nvl_nvme_ctrlr_init(n) < 0)
		abort();
	n->cntlid = 1;
	n->type = NVL_NVME_CNTRLTYPE_IO;
	n->ops = &fz_ctrlr_ops;
	n->queue_ops = &fz_queue_ops;
	n->max_nsid = 4;
	n->max_io_queues = 4;
	n->max_queue_entries = ENTRIES;
	n->sgl_supported = true;
	n->fabrics = true;
	n->cc = NVL_NVME_CC_EN | (6u << 16) | (4u << 20);
	n->csts = NVL_NVME_CSTS_RDY;
	memset(n->hostid, 0x11, 16);
	nvl_strlcpy(n->subnqn, "nqn.2024-01.io.nvlend:fuzz", sizeof(n->subnqn));
	g_tc.transport = &g_rdma_ops;
}

static void
ctrlr_teardown(void)
{
	nvl_nvme_ctrlr_fini(&g_tc.nvme);
	for (int i = 0; i < 2; i++) {
		if (__atomic_load_n(&g_ns[i].inflight, __ATOMIC_RELAXED) != 0)
			__builtin_trap(); /* a command kept its namespace */
		nvl_nvme_ns_fini(&g_ns[i]);
	}
}

/* ---- driving it --------------------------------------------------------------------- */

static void
complete_reads(struct rdma_conn *c)
{
	while (g_nreads) {
		uint32_t idx = g_reads[0];
		struct rdma_req *r = &c->reqs[idx];

		memmove(g_reads, g_reads + 1, --g_nreads * sizeof(g_reads[0]));
		if (r->state == RR_READING) {
			size_t n = NVL_MIN((size_t)r->len, g_in_len - g_in_off);

			memset(r->buf, 0, r->len);
			memcpy(r->buf, g_in + g_in_off, n);
			g_in_off += n;
		}
		rdma_capsule_read_done(c, idx);
	}
}

static void
complete_sends(struct rdma_conn *c)
{
	while (g_nsends) {
		uint32_t idx = g_sends[0];

		memmove(g_sends, g_sends + 1, --g_nsends * sizeof(g_sends[0]));
		rdma_capsule_send_done(c, idx);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rdma_conn c;
	uint8_t mode, live;
	size_t off = 3, end = 3;
	unsigned nrec;

	if (size < 3)
		return 0;
	nrec = data[2];
	/* where the records end: what RDMA READs fetch starts there */
	for (unsigned i = 0; i < nrec && end + 3 <= size; i++)
		end += 3 + NVL_MIN((size_t)data[end + 1] | (size_t)data[end + 2] << 8,
				   size - end - 3);
	mode = data[0] & 3;
	live = mode != 0;
	memset(&c, 0, sizeof(c));
	c.ops = &fz_ops;
	c.state = live ? RC_ACTIVE : RC_CONNECT_WAIT;
	c.qid = mode >= 2 ? 1 : 0;
	c.cm_qid = c.qid;
	c.entries = ENTRIES;
	c.nrecv = ENTRIES;
	c.icd_max = (data[0] & 4) ? 0 : 1024;
	c.rsize = (uint32_t)sizeof(struct nvl_nvme_cmd) + c.icd_max;
	c.max_reads = 1 + (data[1] & 3);
	snprintf(c.peer, sizeof(c.peer), "fuzz");
	c.rbuf = calloc(c.nrecv, c.rsize);
	c.rsps = calloc(c.entries, sizeof(*c.rsps));
	if (c.rbuf == NULL || c.rsps == NULL || rdma_capsule_init(&c) < 0)
		abort();
	g_failed = false;
	g_nreads = g_nsends = 0;
	for (uint32_t i = 0; i < ENTRIES; i++)
		g_posted[i] = true;
	if (live) {
		ctrlr_setup();
		c.tc = &g_tc;
	}
	/* the records, then what RDMA READs fetch */
	g_in = data;
	g_in_len = size;
	g_in_off = end;
	while (off + 3 <= end && !g_failed) {
		uint8_t ctl = data[off];
		size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8, n;
		uint32_t idx;

		off += 3;
		n = NVL_MIN(len, end - off);
		if (ctl & 1)
			complete_reads(&c);
		if (ctl & 2)
			complete_sends(&c);
		for (idx = 0; idx < ENTRIES && !g_posted[idx]; idx++)
			;
		if (idx < ENTRIES) {
			uint8_t *buf = c.rbuf + (size_t)idx * c.rsize;

			n = NVL_MIN(n, (size_t)c.rsize);
			memcpy(buf, data + off, n);
			g_posted[idx] = false;
			rdma_capsule_recv(&c, idx, (uint32_t)n);
		}
		off += NVL_MIN(len, end - off);
	}
	/* drain: READs finish, commands run, responses complete, held AERs end */
	for (int round = 0; round < 4 && (g_nreads || g_nsends); round++) {
		complete_reads(&c);
		complete_sends(&c);
	}
	if (live) {
		nvl_nvme_ctrlr_abort_aers(&g_tc.nvme);
		complete_sends(&c);
	}
	if (g_failed) {
		c.state = RC_CLOSING;
		rdma_capsule_drop_pending(&c);
	}
	if (c.busy != 0 || c.executing != 0 || c.reads != 0)
		__builtin_trap(); /* a command slot never came back */
	if (!g_failed)
		for (uint32_t i = 0; i < ENTRIES; i++)
			if (!g_posted[i])
				__builtin_trap(); /* a receive buffer lost */
	if (live)
		ctrlr_teardown();
	for (uint32_t i = 0; i < c.nreqs; i++)
		free(c.reqs[i].buf);
	rdma_capsule_fini(&c);
	free(c.rbuf);
	free(c.rsps);
	return 0;
}
