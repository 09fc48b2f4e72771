/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit-test scaffolding for src/nvme and its users: a fake controller whose
 * ops table serves namespaces built with nvl_nvme_ns_init() over real RAM
 * bdevs, stubbed queue-management ops that record their calls, and a
 * request runner that executes one command against a local buffer and
 * checks that the completion ran exactly once.
 *
 * Include after the .c files under test (or after nvme/nvme.h) and after
 * <cmocka.h>. Single-threaded: no reactor exists (nvl_reactor_count() is 0),
 * the RAM bdev completes inline, so every command has completed when
 * ut_nvme_exec() returns, except AERs and requests the test holds on purpose.
 */
#ifndef NVL_TESTS_NVME_UT_HELPERS_H
#define NVL_TESTS_NVME_UT_HELPERS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bdev/bdev.h"
#include "nvme/nvme.h"
#include "util/util.h"

#define UT_NVME_MAX_NS 32
#define UT_NVME_MAX_CTRLRS 4

/* ---- status helpers ------------------------------------------------------ */

/** (SCT << 8) | SC of a completion status word. */
static inline uint16_t
ut_sc(uint16_t status)
{
	return (uint16_t)((status >> 1) & 0x7ff);
}

static inline bool
ut_dnr(uint16_t status)
{
	return (status & NVL_NVME_STATUS_DNR) != 0;
}

/* ---- namespaces over RAM bdevs ------------------------------------------- */

struct ut_ns {
	struct nvl_nvme_ns ns;
	struct nvl_bdev *bdev;
	struct nvl_bdev_desc *desc;
	bool live;
};

/** A namespace over a fresh RAM bdev `name`; read_only opens it read-only. */
static inline void
ut_ns_create(struct ut_ns *u, const char *name, uint32_t nsid, uint64_t nblocks, uint32_t bs,
	     bool read_only, const uint8_t *uuid)
{
	struct nvl_bdev_ram_opts o = {
		.name = name, .num_blocks = nblocks, .block_size = bs, .uuid = uuid,
	};

	memset(u, 0, sizeof(*u));
	assert_int_equal(nvl_bdev_ram_create(&o, &u->bdev), 0);
	assert_int_equal(nvl_bdev_open(name, !read_only, "ut", &u->desc), 0);
	assert_int_equal(nvl_nvme_ns_init(&u->ns, nsid, u->desc), 0);
	u->live = true;
}

static inline void
ut_ns_destroy(struct ut_ns *u)
{
	if (!u->live)
		return;
	nvl_nvme_ns_fini(&u->ns);
	nvl_bdev_close(u->desc);
	assert_int_equal(nvl_bdev_unregister(u->bdev), 0);
	u->live = false;
}

/* ---- the fake controller ------------------------------------------------- */

struct ut_ctrlr {
	struct nvl_nvme_ctrlr c;        /* first */
	struct nvl_nvme_ns **ns;        /* [UT_NVME_MAX_NS], indexed by nsid - 1; shared */
	/* queue-op stubs: what they were called with and what they answer */
	unsigned create_cq_calls, create_sq_calls, delete_sq_calls, delete_cq_calls;
	unsigned reset_calls, disc_calls;
	uint16_t queue_op_status;
	bool queue_op_pending;          /* the op completes the request itself later */
	struct nvl_nvme_req *last_queue_req;
};

static inline struct ut_ctrlr *
ut_ctrlr_of(struct nvl_nvme_ctrlr *c)
{
	return container_of(c, struct ut_ctrlr, c);
}

static struct nvl_nvme_ns *
ut_get_ns(struct nvl_nvme_ctrlr *c, uint32_t nsid)
{
	struct ut_ctrlr *u = ut_ctrlr_of(c);

	if (nsid == 0 || nsid > UT_NVME_MAX_NS)
		return NULL;
	return u->ns[nsid - 1];
}

static uint32_t
ut_next_nsid(struct nvl_nvme_ctrlr *c, uint32_t after)
{
	struct ut_ctrlr *u = ut_ctrlr_of(c);

	for (uint64_t id = (uint64_t)after + 1; id <= UT_NVME_MAX_NS; id++)
		if (u->ns[id - 1])
			return (uint32_t)id;
	return 0;
}

static enum nvl_nvme_qop
ut_create_io_cq(struct nvl_nvme_ctrlr *c, struct nvl_nvme_req *req, uint16_t *status)
{
	ut_ctrlr_of(c)->create_cq_calls++;
	ut_ctrlr_of(c)->last_queue_req = req;
	*status = ut_ctrlr_of(c)->queue_op_status;
	return ut_ctrlr_of(c)->queue_op_pending ? NVL_NVME_QOP_PENDING : NVL_NVME_QOP_DONE;
}

static enum nvl_nvme_qop
ut_create_io_sq(struct nvl_nvme_ctrlr *c, struct nvl_nvme_req *req, uint16_t *status)
{
	ut_ctrlr_of(c)->create_sq_calls++;
	ut_ctrlr_of(c)->last_queue_req = req;
	*status = ut_ctrlr_of(c)->queue_op_status;
	return ut_ctrlr_of(c)->queue_op_pending ? NVL_NVME_QOP_PENDING : NVL_NVME_QOP_DONE;
}

static enum nvl_nvme_qop
ut_delete_io_sq(struct nvl_nvme_ctrlr *c, struct nvl_nvme_req *req, uint16_t *status)
{
	ut_ctrlr_of(c)->delete_sq_calls++;
	ut_ctrlr_of(c)->last_queue_req = req;
	*status = ut_ctrlr_of(c)->queue_op_status;
	return ut_ctrlr_of(c)->queue_op_pending ? NVL_NVME_QOP_PENDING : NVL_NVME_QOP_DONE;
}

static enum nvl_nvme_qop
ut_delete_io_cq(struct nvl_nvme_ctrlr *c, struct nvl_nvme_req *req, uint16_t *status)
{
	ut_ctrlr_of(c)->delete_cq_calls++;
	ut_ctrlr_of(c)->last_queue_req = req;
	*status = ut_ctrlr_of(c)->queue_op_status;
	return ut_ctrlr_of(c)->queue_op_pending ? NVL_NVME_QOP_PENDING : NVL_NVME_QOP_DONE;
}

static void
ut_reset(struct nvl_nvme_ctrlr *c)
{
	ut_ctrlr_of(c)->reset_calls++;
}

/** The target's side: namespace lookups. */
static NVL_UNUSED const struct nvl_nvme_ctrlr_ops ut_ctrlr_ops = {
	.get_ns = ut_get_ns,
	.next_nsid = ut_next_nsid,
};

/** The transport's side: queue commands (PCIe-style, as shm) and reset. */
static NVL_UNUSED const struct nvl_nvme_queue_ops ut_queue_ops = {
	.create_io_cq = ut_create_io_cq,
	.create_io_sq = ut_create_io_sq,
	.delete_io_sq = ut_delete_io_sq,
	.delete_io_cq = ut_delete_io_cq,
	.reset = ut_reset,
};

/** An enabled I/O controller with host identifier byte `hostbyte` repeated
 *  (0 = no host identifier), seeing the namespaces in nstab. */
static inline void
ut_ctrlr_init(struct ut_ctrlr *u, struct nvl_nvme_ns **nstab, uint8_t hostbyte, uint16_t cntlid)
{
	memset(u, 0, sizeof(*u));
	assert_int_equal(nvl_nvme_ctrlr_init(&u->c), 0);
	u->ns = nstab;
	u->c.cntlid = cntlid;
	u->c.type = NVL_NVME_CNTRLTYPE_IO;
	u->c.ops = &ut_ctrlr_ops;
	u->c.queue_ops = &ut_queue_ops;
	u->c.home = NULL; /* == nvl_reactor_self() here: notifications run inline */
	u->c.max_nsid = UT_NVME_MAX_NS;
	u->c.max_io_queues = 8;
	u->c.max_queue_entries = 1024;
	u->c.sgl_supported = true;
	memset(u->c.hostid, hostbyte, sizeof(u->c.hostid));
	snprintf(u->c.subnqn, sizeof(u->c.subnqn), "nqn.2024-01.io.nvlend:ut");
	snprintf(u->c.hostnqn, sizeof(u->c.hostnqn), "nqn.2024-01.io.nvlend:host%u", hostbyte);
	nvl_strlcpy(u->c.sn, "UTSERIAL", sizeof(u->c.sn));
	nvl_strlcpy(u->c.mn, "nvlend unit test", sizeof(u->c.mn));
	nvl_strlcpy(u->c.fr, "ut1", sizeof(u->c.fr));
	u->c.cc = NVL_NVME_CC_EN | (6u << 16) | (4u << 20);
	u->c.csts = NVL_NVME_CSTS_RDY;
}

static inline void
ut_ctrlr_fini(struct ut_ctrlr *u)
{
	nvl_nvme_ctrlr_fini(&u->c);
}

/* ---- requests ------------------------------------------------------------ */

struct ut_io {
	struct nvl_nvme_req req;
	unsigned ndone;
};

static void
ut_io_done(struct nvl_nvme_req *r)
{
	container_of(r, struct ut_io, req)->ndone++;
}

/** Start a command on queue qid with `len` bytes of `buf` as its data (one
 *  iovec); does not check completion (AERs stay outstanding). */
static inline void
ut_nvme_start(struct ut_io *io, struct nvl_nvme_ctrlr *c, uint16_t qid,
	      const struct nvl_nvme_cmd *cmd, void *buf, uint32_t len)
{
	memset(io, 0, sizeof(*io));
	io->req.cmd = *cmd;
	io->req.ctrlr = c;
	io->req.qid = qid;
	io->req.iov = io->req.iov_inline;
	if (len) {
		io->req.iov_inline[0].iov_base = buf;
		io->req.iov_inline[0].iov_len = len;
		io->req.iovcnt = 1;
	}
	io->req.data_len = len;
	io->req.done = ut_io_done;
	nvl_nvme_execute(&io->req);
}

/** Execute a command that must complete inline; returns the status word. */
static inline uint16_t
ut_nvme_exec_io(struct ut_io *io, struct nvl_nvme_ctrlr *c, uint16_t qid,
		const struct nvl_nvme_cmd *cmd, void *buf, uint32_t len)
{
	ut_nvme_start(io, c, qid, cmd, buf, len);
	assert_int_equal(io->ndone, 1);
	assert_int_equal(io->req.cpl.cid, cmd->cid);
	assert_null(io->req.scratch);
	assert_null(io->req.ns);
	return io->req.cpl.status;
}

static inline uint16_t
ut_nvme_exec(struct nvl_nvme_ctrlr *c, uint16_t qid, const struct nvl_nvme_cmd *cmd, void *buf,
	     uint32_t len)
{
	struct ut_io io;

	return ut_nvme_exec_io(&io, c, qid, cmd, buf, len);
}

/** Same, returning cdw0 through *cdw0. */
static inline uint16_t
ut_nvme_exec_cdw0(struct nvl_nvme_ctrlr *c, uint16_t qid, const struct nvl_nvme_cmd *cmd,
		  void *buf, uint32_t len, uint32_t *cdw0)
{
	struct ut_io io;
	uint16_t st = ut_nvme_exec_io(&io, c, qid, cmd, buf, len);

	*cdw0 = io.req.cpl.cdw0;
	return st;
}

/* ---- command builders ---------------------------------------------------- */

static inline struct nvl_nvme_cmd
ut_cmd(uint8_t opc, uint32_t nsid)
{
	static uint16_t cid;
	struct nvl_nvme_cmd c;

	memset(&c, 0, sizeof(c));
	c.opc = opc;
	c.nsid = nsid;
	c.cid = ++cid;
	return c;
}

static inline struct nvl_nvme_cmd
ut_cmd_rw(uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb)
{
	struct nvl_nvme_cmd c = ut_cmd(opc, nsid);

	c.cdw10 = (uint32_t)slba;
	c.cdw11 = (uint32_t)(slba >> 32);
	c.cdw12 = (nlb - 1) & 0xffff;
	return c;
}

static inline struct nvl_nvme_cmd
ut_cmd_identify(uint8_t cns, uint32_t nsid)
{
	struct nvl_nvme_cmd c = ut_cmd(NVL_NVME_ADM_IDENTIFY, nsid);

	c.cdw10 = cns;
	return c;
}

/** Get Log Page for `len` bytes (multiple of 4) at byte offset `off`. */
static inline struct nvl_nvme_cmd
ut_cmd_get_log(uint8_t lid, uint32_t nsid, uint32_t len, uint64_t off, bool rae)
{
	struct nvl_nvme_cmd c = ut_cmd(NVL_NVME_ADM_GET_LOG_PAGE, nsid);
	uint32_t numd = len / 4 - 1;

	c.cdw10 = lid | (rae ? 1u << 15 : 0) | ((numd & 0xffff) << 16);
	c.cdw11 = numd >> 16;
	c.cdw12 = (uint32_t)off;
	c.cdw13 = (uint32_t)(off >> 32);
	return c;
}

static inline struct nvl_nvme_cmd
ut_cmd_feat(uint8_t opc, uint8_t fid, uint32_t cdw11)
{
	struct nvl_nvme_cmd c = ut_cmd(opc, 0);

	c.cdw10 = fid;
	c.cdw11 = cdw11;
	return c;
}

#endif
