/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for SQE handling: what a hostile shm client controls.
 *
 * Input: [n] then n records of [64-byte SQE][queue byte], then bytes copied
 * into a 64 KiB fake data window (n = 1 + input[0] % 4; the rest of the
 * window is zero). Each command goes the way the shm transport sends it:
 * nvl_nvme_req_prepare() with nvl_shm_map_data() against the window, then
 * nvl_nvme_execute() on a fake controller with two RAM-bdev namespaces (one
 * read-only). The queue byte picks the queue (bits 0..2: 0 = admin) and the
 * controller (bits 4..5: three hosts, one without a host identifier), so a
 * single input can register, reserve and fence. Checked after each command:
 * the completion ran exactly once (a held AER is completed by aborting it),
 * every iovec stayed inside the window, no namespace reference leaked.
 * State is rebuilt for every input (deterministic); PTPL state lives in a
 * /dev/shm file removed at exit.
 */
#include "bdev/bdev.h"
#include "nvme/nvme.h"
#include "transport/shm_map.h"
#include "util/log.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WIN_SIZE (64 * 1024)
#define NCTRL 3

struct fz_ctrlr {
	struct nvl_nvme_ctrlr c;
	bool live;
};

static uint8_t *g_win;
static struct nvl_bdev_desc *g_desc[2];
static struct nvl_nvme_ns g_ns[2];
static struct fz_ctrlr g_ctrl[NCTRL];
static char g_ptpl[64];

static struct nvl_nvme_ns *
fz_get_ns(struct nvl_nvme_ctrlr *c, uint32_t nsid)
{
	(void)c;
	if (nsid == 1)
		return &g_ns[0];
	if (nsid == 3)
		return &g_ns[1];
	return NULL;
}

static uint32_t
fz_next_nsid(struct nvl_nvme_ctrlr *c, uint32_t after)
{
	(void)c;
	if (after < 1)
		return 1;
	if (after < 3)
		return 3;
	return 0;
}

static enum nvl_nvme_qop
fz_queue_op(struct nvl_nvme_ctrlr *c, struct nvl_nvme_req *req, uint16_t *status)
{
	(void)c;
	/* qid 1..4 exist, others do not */
	uint16_t qid = req->cmd.cdw10 & 0xffff;

	*status = (qid >= 1 && qid <= 4) ? 0 : NVL_NVME_DNR(NVL_NVME_SC_INVALID_QID);
	return NVL_NVME_QOP_DONE;
}

static void
fz_reset(struct nvl_nvme_ctrlr *c)
{
	(void)c;
}

static int
fz_disc_log(struct nvl_nvme_ctrlr *c, void **out, size_t *len)
{
	(void)c;
	*out = calloc(1, 2048);
	if (*out == NULL)
		return -ENOMEM;
	*len = 2048;
	return 0;
}

static const struct nvl_nvme_ctrlr_ops fz_ops = {
	.get_ns = fz_get_ns,
	.next_nsid = fz_next_nsid,
	.discovery_log = fz_disc_log,
};

static const struct nvl_nvme_queue_ops fz_queue_ops = {
	.create_io_cq = fz_queue_op,
	.create_io_sq = fz_queue_op,
	.delete_io_sq = fz_queue_op,
	.delete_io_cq = fz_queue_op,
	.reset = fz_reset,
};

static void
fz_notify(struct nvl_nvme_ns *ns, const uint8_t hostid[16], uint8_t type)
{
	for (int i = 0; i < NCTRL; i++)
		if (g_ctrl[i].live && memcmp(g_ctrl[i].c.hostid, hostid, 16) == 0)
			nvl_nvme_ctrlr_resv_notify(&g_ctrl[i].c, ns->nsid, type);
}

static void
cleanup(void)
{
	char tmp[80];

	unlink(g_ptpl);
	snprintf(tmp, sizeof(tmp), "%s.tmp", g_ptpl);
	unlink(tmp);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct nvl_bdev_ram_opts o[2] = {
		{ .name = "fz_ns1", .num_blocks = 256, .block_size = 512 },
		{ .name = "fz_ns3", .num_blocks = 32, .block_size = 4096 },
	};
	struct nvl_bdev *b;

	(void)argc;
	(void)argv;
	nvl_log_set_level(0);
	nvl_log_set_fd(-1, false);
	g_win = aligned_alloc(4096, WIN_SIZE);
	for (int i = 0; i < 2; i++) {
		if (nvl_bdev_ram_create(&o[i], &b) < 0 ||
		    nvl_bdev_open(o[i].name, i == 0, "fuzz", &g_desc[i]) < 0)
			abort();
	}
	snprintf(g_ptpl, sizeof(g_ptpl), "/dev/shm/nvl_fuzz_sqe_%d", (int)getpid());
	atexit(cleanup);
	return 0;
}

static void
setup_state(void)
{
	cleanup();
	for (int i = 0; i < 2; i++) {
		memset(&g_ns[i], 0, sizeof(g_ns[i]));
		if (nvl_nvme_ns_init(&g_ns[i], i == 0 ? 1 : 3, g_desc[i]) < 0)
			abort();
		g_ns[i].notify = fz_notify;
	}
	g_ns[0].ptpl_file = strdup(g_ptpl);
	for (int i = 0; i < NCTRL; i++) {
		struct nvl_nvme_ctrlr *c = &g_ctrl[i].c;

		memset(c, 0, sizeof(*c));
		if (nvl_nvme_ctrlr_init(c) < 0)
			abort();
		c->cntlid = (uint16_t)(i + 1);
		c->type = NVL_NVME_CNTRLTYPE_IO;
		c->ops = &fz_ops;
		c->queue_ops = &fz_queue_ops;
		c->max_nsid = 8;
		c->max_io_queues = 4;
		c->max_queue_entries = 256;
		c->sgl_supported = true;
		c->cc = NVL_NVME_CC_EN | (6u << 16) | (4u << 20);
		c->csts = NVL_NVME_CSTS_RDY;
		memset(c->hostid, i == 2 ? 0 : 0x10 + i, 16); /* controller 2: no host id */
		nvl_strlcpy(c->subnqn, "nqn.2024-01.io.nvlend:fuzz", sizeof(c->subnqn));
		g_ctrl[i].live = true;
	}
}

static void
teardown_state(void)
{
	for (int i = 0; i < NCTRL; i++) {
		nvl_nvme_ctrlr_fini(&g_ctrl[i].c);
		g_ctrl[i].live = false;
	}
	for (int i = 0; i < 2; i++) {
		if (__atomic_load_n(&g_ns[i].inflight, __ATOMIC_RELAXED) != 0)
			__builtin_trap(); /* a command kept its namespace */
		nvl_nvme_ns_fini(&g_ns[i]);
	}
}

struct fz_req {
	struct nvl_nvme_req req;
	unsigned ndone;
};

static void
fz_done(struct nvl_nvme_req *r)
{
	container_of(r, struct fz_req, req)->ndone++;
}

static void
check_iov(const struct nvl_nvme_req *r)
{
	uint64_t sum = 0;

	for (int i = 0; i < r->iovcnt; i++) {
		const uint8_t *p = r->iov[i].iov_base;

		if (p < g_win || r->iov[i].iov_len > WIN_SIZE ||
		    p + r->iov[i].iov_len > g_win + WIN_SIZE)
			__builtin_trap(); /* outside the peer's window */
		sum += r->iov[i].iov_len;
	}
	if (sum != r->data_len)
		__builtin_trap();
}

/* nvl_nvme_map_fn: as the shm transport maps, remembering what was asked */
static uint16_t
fz_map(struct nvl_nvme_req *r, uint32_t len, uint8_t dir, void *ctx)
{
	uint32_t *want = ctx;

	(void)dir;
	*want = len;
	return len ? nvl_shm_map_data(r, g_win, WIN_SIZE, len) : 0;
}

static void
run_one(const struct nvl_nvme_cmd *sqe, uint8_t qbyte)
{
	struct fz_ctrlr *fc = &g_ctrl[((qbyte >> 4) & 3) % NCTRL];
	struct nvl_nvme_ctrlr *c = &fc->c;
	struct fz_req *fr = calloc(1, sizeof(*fr));
	struct nvl_nvme_req *r = &fr->req;
	uint32_t len = 0;
	uint16_t st;

	memcpy(&r->cmd, sqe, sizeof(r->cmd));
	r->ctrlr = c;
	r->qid = qbyte & 7;
	r->done = fz_done;
	/* bit 3: this controller plays a discovery controller for the command */
	c->type = (qbyte & 8) ? NVL_NVME_CNTRLTYPE_DISCOVERY : NVL_NVME_CNTRLTYPE_IO;
	st = nvl_nvme_req_prepare(r, fz_map, &len);
	if (st == 0) {
		if (len && r->data_len != len)
			__builtin_trap();
		check_iov(r);
	}
	if (st)
		nvl_nvme_req_complete(r, st);
	else
		nvl_nvme_execute(r);
	if (fr->ndone == 0 && r->qid == 0 && r->cmd.opc == NVL_NVME_ADM_ASYNC_EVENT)
		nvl_nvme_ctrlr_abort_aers(c); /* held AER: the admin queue goes */
	if (fr->ndone != 1)
		__builtin_trap(); /* completion must run exactly once */
	if (r->xfer_len > r->data_len || r->scratch != NULL || r->ns != NULL)
		__builtin_trap();
	check_iov(r);
	c->type = NVL_NVME_CNTRLTYPE_IO;
	nvl_shm_unmap_data(r);
	free(fr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvl_nvme_cmd sqe[4];
	uint8_t qb[4];
	size_t n, off = 1;

	if (size < 1 + 65)
		return 0;
	n = 1 + data[0] % 4;
	if (size < 1 + n * 65)
		n = (size - 1) / 65;
	for (size_t i = 0; i < n; i++) {
		memcpy(&sqe[i], data + off, 64);
		qb[i] = data[off + 64];
		off += 65;
	}
	memset(g_win, 0, WIN_SIZE);
	memcpy(g_win, data + off, NVL_MIN(size - off, (size_t)WIN_SIZE));
	setup_state();
	for (size_t i = 0; i < n; i++)
		run_one(&sqe[i], qb[i]);
	teardown_state();
	return 0;
}
