/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A deliberately hostile shm host. Usage: shm_hostile URI
 * Connects like a normal host, then sends what a broken or malicious host
 * would: data pointers outside its window, misaligned PRPs, bad SGL types,
 * unknown namespaces and opcodes, bad queue ids and sizes, garbage SQEs, and
 * finally a tail doorbell beyond the ring (which must cost it its
 * controller). Prints one line per check; exit status = number of failures.
 */
#include "host/host_shm.h"
#include "host/nvlend_internal.h"
#include "nvlend/nvlend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_fail;

static void
check(bool ok, const char *what, uint16_t got)
{
	printf("%s  %s (status 0x%03x)\n", ok ? "PASS" : "FAIL", what, got);
	if (!ok)
		g_fail++;
}

/* Submit cmd exactly as given (no data-pointer rewrite): len 0 to the library. */
static uint16_t
raw_io(struct nvl_qpair *qp, struct nvl_nvme_cmd *cmd)
{
	struct nvl_sync_state st = { 0 };
	struct nvl_nvme_cpl cpl = { 0 };
	int rc = nvl_sync_wait(qp, &st, nvl_submit_raw(qp, cmd, NULL, 0, NVL_XFER_NONE,
						     nvl_sync_cb, &st),
			       &cpl);

	if (rc < 0 && rc != -EREMOTEIO)
		return 0xfff;
	return nvl_cpl_status(&cpl);
}

static uint16_t
raw_admin(struct nvl_ctrlr *c, struct nvl_nvme_cmd *cmd)
{
	struct nvl_nvme_cpl cpl = { 0 };
	int rc = nvl_ctrlr_admin(c, cmd, NULL, 0, NVL_XFER_NONE, &cpl);

	if (rc < 0 && rc != -EREMOTEIO)
		return 0xfff;
	return nvl_cpl_status(&cpl);
}

static void
read_cmd(struct nvl_nvme_cmd *cmd, uint32_t nsid, uint64_t slba, uint32_t nlb)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->opc = NVL_NVME_IO_READ;
	cmd->nsid = nsid;
	cmd->cdw10 = (uint32_t)slba;
	cmd->cdw11 = (uint32_t)(slba >> 32);
	cmd->cdw12 = nlb - 1;
}

int
main(int argc, char **argv)
{
	struct nvl_ctrlr_opts o;
	struct nvl_ctrlr *c;
	struct nvl_qpair *qp;
	struct nvl_ns_info info;
	struct nvl_nvme_cmd cmd;
	uint32_t nsid;
	uint64_t win;
	uint8_t *wbase;
	uint8_t *buf;
	uint16_t st;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: shm_hostile URI\n");
		return 100;
	}
	nvl_ctrlr_opts_default(&o);
	o.hostnqn = "nqn.2026-01.io.nvlend.test:hostile";
	o.window_bytes = 4ULL << 20;
	o.keepalive_thread = false;
	rc = nvl_ctrlr_connect(argv[1], &o, &c);
	if (rc < 0) {
		fprintf(stderr, "connect: %s\n", strerror(-rc));
		return 100;
	}
	nsid = nvl_ctrlr_default_nsid(c);
	if (nvl_ns_get_info(c, nsid, &info) < 0 || nvl_qpair_create(c, NULL, &qp) < 0) {
		fprintf(stderr, "setup failed\n");
		return 100;
	}
	wbase = host_shm_window(c->hc, &win);
	buf = nvl_buf_alloc(c, 8192);

	/* ---- data pointers ---- */
	read_cmd(&cmd, nsid, 0, 1);
	cmd.dptr.prp.prp1 = win; /* one past the window */
	st = raw_io(qp, &cmd);
	check(st == NVL_NVME_SC_DATA_TRANSFER_ERROR, "PRP1 beyond the window", st);

	read_cmd(&cmd, nsid, 0, 1);
	cmd.dptr.prp.prp1 = win - 256; /* the rest of the block continues at PRP2... */
	cmd.dptr.prp.prp2 = win;       /* ...which is the first page past the window */
	st = raw_io(qp, &cmd);
	check(st == (info.block_size > 256 ? NVL_NVME_SC_DATA_TRANSFER_ERROR : 0),
	      "PRP1 at the window end continuing outside", st);

	read_cmd(&cmd, nsid, 0, 1);
	cmd.dptr.prp.prp1 = UINT64_MAX - 4095; /* page aligned, offset + length wraps */
	st = raw_io(qp, &cmd);
	check(st == NVL_NVME_SC_DATA_TRANSFER_ERROR, "PRP1 near 2^64 (overflow)", st);

	read_cmd(&cmd, nsid, 0, 1);
	cmd.dptr.prp.prp1 = (uint64_t)(buf - wbase) + 2; /* not dword aligned */
	st = raw_io(qp, &cmd);
	check(st == NVL_NVME_SC_INVALID_PRP_OFFSET, "misaligned PRP1", st);

	read_cmd(&cmd, nsid, 0, 4096 / info.block_size * 2); /* 8 KiB: needs PRP2 */
	cmd.dptr.prp.prp1 = (uint64_t)(buf - wbase);
	cmd.dptr.prp.prp2 = win + 4096;
	st = raw_io(qp, &cmd);
	check(st == NVL_NVME_SC_DATA_TRANSFER_ERROR, "PRP2 outside the window", st);

	{
		/* a PRP list whose second entry points outside */
		uint64_t *list = (uint64_t *)(buf + 4096);

		read_cmd(&cmd, nsid, 0, 12288 / info.block_size);
		cmd.dptr.prp.prp1 = (uint64_t)(buf - wbase);
		cmd.dptr.prp.prp2 = (uint64_t)((uint8_t *)list - wbase);
		list[0] = (uint64_t)(buf - wbase);
		list[1] = win * 2;
		st = raw_io(qp, &cmd);
		check(st == NVL_NVME_SC_DATA_TRANSFER_ERROR, "PRP list entry outside the window", st);
	}

	read_cmd(&cmd, nsid, 0, 1);
	cmd.flags = NVL_NVME_PSDT_SGL_MPTR_CONTIG << 6;
	cmd.dptr.sgl1.addr = 0;
	cmd.dptr.sgl1.length = info.block_size;
	cmd.dptr.sgl1.type = NVL_NVME_SGL_TYPE_KEYED_DATA_BLOCK << 4;
	st = raw_io(qp, &cmd);
	check(st == NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID, "keyed SGL on shm", st);

	read_cmd(&cmd, nsid, 0, 1);
	cmd.flags = NVL_NVME_PSDT_SGL_MPTR_CONTIG << 6;
	cmd.dptr.sgl1.addr = win - 8;
	cmd.dptr.sgl1.length = info.block_size;
	st = raw_io(qp, &cmd);
	check(st == NVL_NVME_SC_DATA_TRANSFER_ERROR, "SGL data block outside the window", st);

	read_cmd(&cmd, nsid, 0, 2);
	cmd.flags = NVL_NVME_PSDT_SGL_MPTR_CONTIG << 6;
	cmd.dptr.sgl1.addr = (uint64_t)(buf - wbase);
	cmd.dptr.sgl1.length = info.block_size; /* half of what the command moves */
	st = raw_io(qp, &cmd);
	check(st == NVL_NVME_SC_DATA_SGL_LENGTH_INVALID, "SGL shorter than the transfer", st);

	/* ---- commands ---- */
	read_cmd(&cmd, 99, 0, 1);
	cmd.dptr.prp.prp1 = (uint64_t)(buf - wbase);
	st = raw_io(qp, &cmd);
	check(st == NVL_NVME_SC_INVALID_NAMESPACE, "unknown nsid 99", st);

	read_cmd(&cmd, nsid, info.num_blocks, 1);
	cmd.dptr.prp.prp1 = (uint64_t)(buf - wbase);
	st = raw_io(qp, &cmd);
	check(st == NVL_NVME_SC_LBA_OUT_OF_RANGE, "LBA beyond the namespace", st);

	read_cmd(&cmd, nsid, UINT64_MAX - 1, 4);
	cmd.dptr.prp.prp1 = (uint64_t)(buf - wbase);
	st = raw_io(qp, &cmd);
	check(st == NVL_NVME_SC_LBA_OUT_OF_RANGE, "slba + nlb overflowing 64 bits", st);

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = 0x7e;
	cmd.nsid = nsid;
	st = raw_io(qp, &cmd);
	check(st == NVL_NVME_SC_INVALID_OPCODE, "unknown I/O opcode", st);

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVL_NVME_ADM_CREATE_CQ;
	cmd.cdw10 = 0 | (15u << 16);
	cmd.cdw11 = 1;
	st = raw_admin(c, &cmd);
	check(st == NVL_NVME_SC_INVALID_QID, "create CQ with qid 0", st);

	cmd.cdw10 = 4000 | (15u << 16);
	st = raw_admin(c, &cmd);
	check(st == NVL_NVME_SC_INVALID_QID, "create CQ with qid 4000", st);

	cmd.cdw10 = nvl_qpair_id(qp) | (15u << 16);
	st = raw_admin(c, &cmd);
	check(st == NVL_NVME_SC_INVALID_QID, "create CQ with a qid in use", st);

	cmd.cdw10 = 9 | (0u << 16);
	st = raw_admin(c, &cmd);
	check(st == NVL_NVME_SC_INVALID_QUEUE_SIZE, "create CQ with 1 entry", st);

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVL_NVME_ADM_CREATE_SQ;
	cmd.cdw10 = 9 | (15u << 16);
	cmd.cdw11 = 1 | (33u << 16);
	st = raw_admin(c, &cmd);
	check(st == NVL_NVME_SC_CQ_INVALID, "create SQ on a missing CQ", st);

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVL_NVME_ADM_DELETE_SQ;
	cmd.cdw10 = 31;
	st = raw_admin(c, &cmd);
	check(st == NVL_NVME_SC_INVALID_QID, "delete a missing SQ", st);

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVL_NVME_ADM_DELETE_CQ;
	cmd.cdw10 = nvl_qpair_id(qp);
	st = raw_admin(c, &cmd);
	check(st == NVL_NVME_SC_INVALID_QUEUE_DELETION, "delete a CQ that still has an SQ", st);

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVL_NVME_ADM_IDENTIFY;
	cmd.cdw10 = 0x55;
	st = raw_admin(c, &cmd);
	check(st == NVL_NVME_SC_INVALID_FIELD, "identify with an unknown CNS", st);

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = 0x7e;
	st = raw_admin(c, &cmd);
	check(st == NVL_NVME_SC_INVALID_OPCODE, "unknown admin opcode", st);

	/* ---- garbage SQEs: every one must complete with some status ---- */
	{
		unsigned done = 0, seed = 12345;

		for (unsigned i = 0; i < 2000; i++) {
			uint8_t *p = (uint8_t *)&cmd;

			for (size_t k = 0; k < sizeof(cmd); k++) {
				seed = seed * 1103515245u + 12345u;
				p[k] = (uint8_t)(seed >> 16);
			}
			/* keep the data pointer inside the window half the time */
			if (i & 1) {
				cmd.flags &= 0x3f;
				cmd.dptr.prp.prp1 = (uint64_t)(buf - wbase);
				cmd.dptr.prp.prp2 = (uint64_t)(buf - wbase) + 4096;
			}
			if (cmd.opc == NVL_NVME_IO_WRITE || cmd.opc == NVL_NVME_IO_WRITE_ZEROES ||
			    cmd.opc == NVL_NVME_IO_DSM || cmd.opc == NVL_NVME_IO_RESV_REGISTER ||
			    cmd.opc == NVL_NVME_IO_RESV_ACQUIRE || cmd.opc == NVL_NVME_IO_RESV_RELEASE)
				cmd.opc = NVL_NVME_IO_READ; /* don't scribble on the shared namespace */
			raw_io(qp, &cmd);
			done++;
		}
		check(done == 2000, "2000 garbage SQEs all completed", 0);
	}

	/* ---- the doorbell beyond the ring: the controller must go ---- */
	{
		struct shm_hq *q = host_shm_hq(qp->hq);
		struct nvl_nvme_cmd kad = { 0 };
		int i;

		nvl_smp_store_release(&q->sqp->tail, q->entries + 7);
		/* wake the controller if it sleeps */
		{
			uint64_t one = 1;

			(void)!write(q->kick_fd, &one, sizeof(one));
		}
		kad.opc = NVL_NVME_ADM_KEEP_ALIVE;
		for (i = 0; i < 100; i++) {
			usleep(20000);
			rc = nvl_ctrlr_admin(c, &kad, NULL, 0, NVL_XFER_NONE, NULL);
			if (rc == -ENOTCONN)
				break;
		}
		check(rc == -ENOTCONN, "tail doorbell beyond the ring: controller torn down", 0);
	}
	nvl_buf_free(c, buf);
	nvl_ctrlr_disconnect(c);
	printf("%d failure(s)\n", g_fail);
	return g_fail;
}
