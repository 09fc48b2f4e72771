/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the NVMe/RDMA target's command handling
 * (src/transport/rdma_capsule.c) with fake posting ops instead of verbs, on
 * an I/O queue of a controller with a RAM-bdev namespace and on a queue
 * waiting for its Connect: in-capsule writes, keyed writes fetched by RDMA
 * READ (at most the negotiated number in flight), keyed reads answered by
 * an RDMA WRITE of exactly the data and Send with Invalidate, receive
 * buffers given back, the statuses of malformed descriptors, a capsule
 * shorter than an SQE failing the queue, commands before Connect, and a
 * refused Connect closing the queue once its response is sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "transport/rdma_capsule.c"

#include "bdev/bdev.h"
#include "proto/nvme_rdma.h"

NVL_LOG_REGISTER_COMPONENT(nvmf_rdma)

/* what rdma.c and rdma_conn.c provide in the daemon */
struct rdma_opts g_rdma_opts = { .max_queue_depth = 16, .max_aq_depth = 16,
				 .max_io_qpairs = 4, .icd = 1024, .max_io_size = 131072 };
struct rdma_conn_list g_rdma_pending = TAILQ_HEAD_INITIALIZER(g_rdma_pending);
struct rdma_ctrlr_list g_rdma_ctrlrs = TAILQ_HEAD_INITIALIZER(g_rdma_ctrlrs);
struct nvl_transport_ops g_rdma_ops = { .name = "RDMA" };
const struct nvl_nvme_queue_ops g_rdma_queue_ops;

static int g_failed;

void
rdma_conn_error(struct rdma_conn *c, const char *why)
{
	(void)why;
	c->state = RC_FAILED;
	g_failed++;
}

void
rdma_conn_try_free(struct rdma_conn *c)
{
	(void)c;
}

#define ENTRIES 4

static bool g_posted[ENTRIES];
static unsigned g_nreads, g_nsends;
static struct rdma_req *g_last_read;
static struct {
	uint16_t cid, status;
	uint32_t xfer;
	bool inv;
	uint32_t key;
	uint8_t data[8192];
} g_rsp;

static int
t_post_recv(struct rdma_conn *c, uint32_t idx)
{
	assert_true(idx < c->nrecv);
	assert_false(g_posted[idx]);
	g_posted[idx] = true;
	return 0;
}

static int
t_post_read(struct rdma_conn *c, struct rdma_req *r)
{
	assert_true(c->reads <= c->max_reads);
	assert_true(r->len <= r->buf_cap);
	g_nreads++;
	g_last_read = r;
	return 0;
}

static int
t_post_response(struct rdma_conn *c, struct rdma_req *r, uint32_t xfer, bool inv, uint32_t key)
{
	(void)c;
	g_nsends++;
	g_rsp.cid = r->rsp->cid;
	g_rsp.status = r->rsp->status;
	g_rsp.xfer = xfer;
	g_rsp.inv = inv;
	g_rsp.key = key;
	assert_true(xfer <= sizeof(g_rsp.data));
	if (xfer)
		memcpy(g_rsp.data, r->buf, xfer);
	return 0;
}

static int
t_buf_reserve(struct rdma_conn *c, struct rdma_req *r, uint32_t len)
{
	(void)c;
	if (len > r->buf_cap) {
		r->buf = realloc(r->buf, len);
		assert_non_null(r->buf);
		r->buf_cap = len;
	}
	return 0;
}

static const struct rdma_post_ops t_ops = {
	.post_recv = t_post_recv,
	.post_read = t_post_read,
	.post_response = t_post_response,
	.buf_reserve = t_buf_reserve,
};

static struct nvl_bdev_desc *g_desc;
static struct nvl_nvme_ns g_ns;
static struct nvl_nvmf_ctrlr g_tc;

static struct nvl_nvme_ns *
t_get_ns(struct nvl_nvme_ctrlr *c, uint32_t nsid)
{
	(void)c;
	return nsid == 1 ? &g_ns : NULL;
}

static uint32_t
t_next_nsid(struct nvl_nvme_ctrlr *c, uint32_t after)
{
	(void)c;
	return after < 1 ? 1 : 0;
}

static const struct nvl_nvme_ctrlr_ops t_ctrlr_ops = { .get_ns = t_get_ns,
						       .next_nsid = t_next_nsid };

static struct rdma_conn g_c;

static void
conn_setup(bool live)
{
	struct nvl_nvme_ctrlr *n = &g_tc.nvme;

	memset(&g_c, 0, sizeof(g_c));
	g_c.ops = &t_ops;
	g_c.state = live ? RC_ACTIVE : RC_CONNECT_WAIT;
	g_c.qid = g_c.cm_qid = live ? 1 : 0;
	g_c.entries = g_c.nrecv = ENTRIES;
	g_c.icd_max = 1024;
	g_c.rsize = 64 + g_c.icd_max;
	g_c.max_reads = 1;
	g_c.rbuf = calloc(ENTRIES, g_c.rsize);
	g_c.rsps = calloc(ENTRIES, sizeof(*g_c.rsps));
	assert_int_equal(rdma_capsule_init(&g_c), 0);
	for (int i = 0; i < ENTRIES; i++)
		g_posted[i] = true;
	g_failed = 0;
	g_nreads = g_nsends = 0;
	if (!live)
		return;
	memset(&g_tc, 0, sizeof(g_tc));
	memset(&g_ns, 0, sizeof(g_ns));
	assert_int_equal(nvl_nvme_ns_init(&g_ns, 1, g_desc), 0);
	assert_int_equal(nvl_nvme_ctrlr_init(n), 0);
	n->cntlid = 1;
	n->type = NVL_NVME_CNTRLTYPE_IO;
	n->ops = &t_ctrlr_ops;
	n->max_nsid = 1;
	n->max_io_queues = 1;
	n->max_queue_entries = ENTRIES;
	n->sgl_supported = true;
	n->fabrics = true;
	n->cc = NVL_NVME_CC_EN | (6u << 16) | (4u << 20);
	n->csts = NVL_NVME_CSTS_RDY;
	g_c.tc = &g_tc;
}

static void
conn_teardown(bool live)
{
	for (uint32_t i = 0; i < g_c.nreqs; i++)
		free(g_c.reqs[i].buf);
	rdma_capsule_fini(&g_c);
	free(g_c.rbuf);
	free(g_c.rsps);
	if (live) {
		nvl_nvme_ctrlr_fini(&g_tc.nvme);
		nvl_nvme_ns_fini(&g_ns);
	}
}

/* Deliver a capsule (SQE + icd bytes of data) in the lowest posted buffer. */
static uint32_t
deliver(const struct nvl_nvme_cmd *cmd, const void *icd, uint32_t icd_len)
{
	uint32_t idx;

	for (idx = 0; idx < ENTRIES && !g_posted[idx]; idx++)
		;
	assert_true(idx < ENTRIES);
	g_posted[idx] = false;
	memcpy(g_c.rbuf + idx * g_c.rsize, cmd, sizeof(*cmd));
	if (icd_len)
		memcpy(g_c.rbuf + idx * g_c.rsize + sizeof(*cmd), icd, icd_len);
	rdma_capsule_recv(&g_c, idx, (uint32_t)sizeof(*cmd) + icd_len);
	return idx;
}

static void
io_cmd(struct nvl_nvme_cmd *cmd, uint8_t opc, uint16_t cid, uint64_t slba, uint16_t nblocks)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->opc = opc;
	cmd->cid = cid;
	cmd->nsid = 1;
	cmd->cdw10 = (uint32_t)slba;
	cmd->cdw11 = (uint32_t)(slba >> 32);
	cmd->cdw12 = (uint32_t)(nblocks - 1);
}

static uint16_t
sc(uint16_t status)
{
	return (status >> 1) & 0x7ff;
}

static void
send_done_all(void)
{
	for (uint32_t i = 0; i < g_c.nreqs; i++)
		if (g_c.reqs[i].state == RR_TX)
			rdma_capsule_send_done(&g_c, i);
}

static void
test_data_paths(void **state)
{
	struct nvl_nvme_cmd cmd;
	uint8_t icd[512], pat[4096];
	struct rdma_req *first;

	(void)state;
	conn_setup(true);
	/* a 512-byte write inside the capsule */
	memset(icd, 0x5a, sizeof(icd));
	io_cmd(&cmd, NVL_NVME_IO_WRITE, 1, 0, 1);
	nvl_rdma_sgl_set_icd(&cmd, sizeof(icd));
	deliver(&cmd, icd, sizeof(icd));
	assert_int_equal(g_nsends, 1);
	assert_int_equal(g_rsp.cid, 1);
	assert_int_equal(sc(g_rsp.status), 0);
	assert_int_equal(g_rsp.xfer, 0);
	assert_int_equal(g_nreads, 0);
	for (int i = 0; i < ENTRIES; i++)
		assert_true(g_posted[i]); /* the buffer came back before the response */
	send_done_all();
	assert_int_equal(g_c.busy, 0);

	/* two 4 KiB keyed writes with one READ allowed in flight */
	memset(pat, 0xc3, sizeof(pat));
	io_cmd(&cmd, NVL_NVME_IO_WRITE, 2, 1, 8);
	nvl_rdma_sgl_set_keyed(&cmd, 0x10000, 4096, 0x77);
	deliver(&cmd, NULL, 0);
	first = g_last_read;
	io_cmd(&cmd, NVL_NVME_IO_WRITE, 3, 16, 8);
	nvl_rdma_sgl_set_keyed(&cmd, 0x20000, 4096, 0x78);
	deliver(&cmd, NULL, 0);
	assert_int_equal(g_nreads, 1);
	assert_int_equal(g_nsends, 1); /* nothing runs before its data came */
	memcpy(first->buf, pat, 4096);
	rdma_capsule_read_done(&g_c, first->idx);
	assert_int_equal(g_nreads, 2); /* the slot went to the waiting one */
	assert_int_equal(g_nsends, 2);
	assert_int_equal(g_rsp.cid, 2);
	assert_int_equal(sc(g_rsp.status), 0);
	memset(g_last_read->buf, 0x3c, 4096);
	rdma_capsule_read_done(&g_c, g_last_read->idx);
	assert_int_equal(g_rsp.cid, 3);
	send_done_all();

	/* keyed read with invalidate: an RDMA WRITE of exactly the data */
	io_cmd(&cmd, NVL_NVME_IO_READ, 4, 0, 9);
	nvl_rdma_sgl_set_keyed(&cmd, 0x30000, 4608, 0x99);
	((uint8_t *)&cmd.dptr)[15] = NVL_RDMA_SGL_KEYED_INV;
	deliver(&cmd, NULL, 0);
	assert_int_equal(g_rsp.cid, 4);
	assert_int_equal(sc(g_rsp.status), 0);
	assert_int_equal(g_rsp.xfer, 4608);
	assert_true(g_rsp.inv);
	assert_int_equal(g_rsp.key, 0x99);
	assert_memory_equal(g_rsp.data, icd, 512);
	assert_memory_equal(g_rsp.data + 512, pat, 4096);
	send_done_all();
	assert_int_equal(g_c.busy, 0);
	assert_int_equal(g_failed, 0);
	conn_teardown(true);
}

static void
test_bad_descriptors(void **state)
{
	struct nvl_nvme_cmd cmd;

	(void)state;
	conn_setup(true);
	/* PRP: not a fabrics data pointer */
	io_cmd(&cmd, NVL_NVME_IO_READ, 1, 0, 1);
	deliver(&cmd, NULL, 0);
	assert_int_equal(sc(g_rsp.status), NVL_NVME_SC_INVALID_FIELD);
	assert_true(g_rsp.status & NVL_NVME_STATUS_DNR);
	/* a keyed descriptor shorter than the transfer */
	io_cmd(&cmd, NVL_NVME_IO_READ, 2, 0, 2);
	nvl_rdma_sgl_set_keyed(&cmd, 0x1000, 512, 1);
	deliver(&cmd, NULL, 0);
	assert_int_equal(sc(g_rsp.status), NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
	assert_int_equal(g_rsp.xfer, 0);
	/* in-capsule data beyond what arrived */
	io_cmd(&cmd, NVL_NVME_IO_WRITE, 3, 0, 1);
	nvl_rdma_sgl_set_icd(&cmd, 512);
	deliver(&cmd, "x", 1);
	assert_int_equal(sc(g_rsp.status), NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
	assert_int_equal(g_nreads, 0);
	send_done_all();
	for (int i = 0; i < ENTRIES; i++)
		assert_true(g_posted[i]);
	assert_int_equal(g_failed, 0);
	/* a capsule shorter than an SQE ends the queue */
	g_posted[0] = false;
	rdma_capsule_recv(&g_c, 0, 40);
	assert_int_equal(g_failed, 1);
	assert_int_equal(g_c.busy, 0);
	conn_teardown(true);
}

static void
test_before_connect(void **state)
{
	struct nvl_nvme_cmd cmd;
	struct nvl_nvmf_connect_cmd *cc = (void *)&cmd;
	struct nvl_nvmf_connect_data d;

	(void)state;
	conn_setup(false);
	io_cmd(&cmd, NVL_NVME_IO_READ, 1, 0, 1);
	nvl_rdma_sgl_set_keyed(&cmd, 0x1000, 512, 1);
	deliver(&cmd, NULL, 0);
	assert_int_equal(sc(g_rsp.status), NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
	send_done_all();
	assert_int_equal(g_failed, 0);

	/* Connect to a subsystem that does not exist: refused, then the queue closes */
	memset(&cmd, 0, sizeof(cmd));
	cc->opc = NVL_NVME_ADM_FABRICS;
	cc->cid = 2;
	cc->fctype = NVL_NVMF_FCTYPE_CONNECT;
	cc->qid = 0;
	cc->sqsize = ENTRIES - 1;
	memset(&d, 0, sizeof(d));
	d.cntlid = 0xffff;
	nvl_strlcpy(d.subnqn, "nqn.2024-01.io.nvlend:nothing", sizeof(d.subnqn));
	nvl_strlcpy(d.hostnqn, "nqn.2024-01.io.nvlend:host", sizeof(d.hostnqn));
	nvl_rdma_sgl_set_icd(&cmd, sizeof(d));
	deliver(&cmd, &d, sizeof(d));
	assert_int_equal(g_rsp.cid, 2);
	assert_int_equal(sc(g_rsp.status), NVL_NVME_SC_CONNECT_INVALID_PARAM);
	assert_int_equal(g_failed, 0);
	send_done_all();
	assert_int_equal(g_failed, 1);
	conn_teardown(false);
}

static int
group_setup(void **state)
{
	struct nvl_bdev_ram_opts o = { .name = "rdma_ut0", .num_blocks = 64, .block_size = 512 };
	struct nvl_bdev *b;

	(void)state;
	nvl_log_set_level(0);
	nvl_log_set_fd(-1, false);
	if (nvl_bdev_ram_create(&o, &b) < 0 || nvl_bdev_open(o.name, true, "ut", &g_desc) < 0)
		return -1;
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_paths),
		cmocka_unit_test(test_bad_descriptors),
		cmocka_unit_test(test_before_connect),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
