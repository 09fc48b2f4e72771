/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the NVMe admin command set (src/nvme/nvme_admin.c and the
 * core in nvme.c): Identify (all CNS values we serve), Get Log Page (error,
 * SMART, changed namespaces, reservation notifications, offsets), Get/Set
 * Features, asynchronous events, Abort, Keep Alive, queue management ops,
 * fabrics properties, controller enable rules and transfer sizing. Runs
 * against a fake controller over RAM-bdev namespaces; single-threaded.
 */
#include "nvme/nvme.c"
#include "nvme/nvme_admin.c"
#include "nvme/nvme_io.c"
#include "nvme/nvme_resv.c"

#include "common/nvme_ut_helpers.h"

#include <unistd.h>

struct fx {
	struct ut_ns ns1, ns2, ns5;
	struct nvl_nvme_ns *tab[UT_NVME_MAX_NS];
	struct ut_ctrlr u;
	uint8_t buf[64 * 1024];
};

static const uint8_t uuid1[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x47, 0x88,
				   0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01 };

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	ut_ns_create(&f->ns1, "adm_ns1", 1, 1024, 512, false, uuid1);
	ut_ns_create(&f->ns2, "adm_ns2", 2, 256, 4096, true, NULL);
	ut_ns_create(&f->ns5, "adm_ns5", 5, 64, 512, false, NULL);
	f->tab[0] = &f->ns1.ns;
	f->tab[1] = &f->ns2.ns;
	f->tab[4] = &f->ns5.ns;
	ut_ctrlr_init(&f->u, f->tab, 0xa1, 7);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	ut_ctrlr_fini(&f->u);
	ut_ns_destroy(&f->ns1);
	ut_ns_destroy(&f->ns2);
	ut_ns_destroy(&f->ns5);
	free(f);
	return 0;
}

static uint16_t
adm(struct fx *f, const struct nvl_nvme_cmd *cmd, uint32_t len)
{
	memset(f->buf, 0xcc, sizeof(f->buf));
	return ut_nvme_exec(&f->u.c, 0, cmd, f->buf, len);
}

static bool
all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* ---- Identify ------------------------------------------------------------ */

static void
test_identify_ctrlr(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_cmd cmd = ut_cmd_identify(NVL_NVME_CNS_CTRLR, 0);
	struct nvl_nvme_id_ctrl *id = (void *)f->buf;

	assert_int_equal(adm(f, &cmd, 4096), 0);
	assert_int_equal(id->cntlid, 7);
	assert_int_equal(id->mdts, NVL_NVME_MDTS);
	assert_int_equal(id->sqes, 0x66);
	assert_int_equal(id->cqes, 0x44);
	assert_int_equal(id->nn, UT_NVME_MAX_NS);
	assert_int_equal(id->aerl, NVL_NVME_AERL - 1);
	assert_int_equal(id->elpe, NVL_NVME_ERRLOG_ENTRIES - 1);
	assert_true(id->lpa & NVL_NVME_LPA_EXTENDED);
	assert_int_equal(id->kas, 1);
	assert_true(id->ctratt & NVL_NVME_CTRATT_HOSTID128);
	assert_int_equal(id->cntrltype, NVL_NVME_CNTRLTYPE_IO);
	assert_true(id->oaes & NVL_NVME_OAES_NS_ATTR);
	assert_int_equal(id->oncs, NVL_NVME_ONCS_COMPARE | NVL_NVME_ONCS_DSM |
					   NVL_NVME_ONCS_WRITE_ZEROES | NVL_NVME_ONCS_RESERVATIONS);
	assert_int_equal(id->fuses, 0);
	assert_int_equal(id->vwc & 7, NVL_NVME_VWC_PRESENT | NVL_NVME_VWC_NSID_FFFF_FLUSH);
	assert_int_equal(id->sgls & 3, NVL_NVME_SGLS_SUPPORTED);
	assert_int_equal(id->maxcmd, 1024);
	assert_memory_equal(id->sn, "UTSERIAL            ", 20);
	assert_memory_equal(id->mn, "nvlend unit test", 16);
	assert_int_equal(id->mn[16], ' ');
	assert_string_equal(id->subnqn, "nqn.2024-01.io.nvlend:ut");
	/* not a fabrics controller: the fabrics-only fields stay zero */
	assert_int_equal(id->ioccsz, 0);
	assert_int_equal(id->iorcsz, 0);
}

static void
test_identify_ns(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_cmd cmd = ut_cmd_identify(NVL_NVME_CNS_NS, 1);
	struct nvl_nvme_id_ns *id = (void *)f->buf;

	assert_int_equal(adm(f, &cmd, 4096), 0);
	assert_int_equal(id->nsze, 1024);
	assert_int_equal(id->ncap, 1024);
	assert_int_equal(id->nlbaf, 0);
	assert_int_equal(id->flbas, 0);
	assert_int_equal(id->lbaf[0].lbads, 9);
	assert_int_equal(id->nmic, NVL_NVME_NMIC_SHARED);
	assert_int_equal(id->rescap, NVL_NVME_RESCAP_ALL_TYPES | NVL_NVME_RESCAP_IEKEY);
	assert_int_equal(id->nsattr, 0);
	assert_memory_equal(id->nguid, uuid1, 16);
	assert_int_equal(id->eui64[0], 0x02);
	assert_memory_equal(id->eui64, f->ns1.ns.eui64, 8);
	assert_true(all_zero(id->vs, sizeof(id->vs)));

	/* read-only namespace: write protected attribute, its own block size */
	cmd = ut_cmd_identify(NVL_NVME_CNS_NS, 2);
	assert_int_equal(adm(f, &cmd, 4096), 0);
	assert_int_equal(id->nsattr, 1);
	assert_int_equal(id->lbaf[0].lbads, 12);
	assert_int_equal(id->nsze, 256);

	/* a namespace with a PTPL file advertises Persist Through Power Loss */
	f->ns1.ns.ptpl_file = strdup("/nonexistent/ptpl");
	cmd = ut_cmd_identify(NVL_NVME_CNS_NS, 1);
	assert_int_equal(adm(f, &cmd, 4096), 0);
	assert_true(id->rescap & NVL_NVME_RESCAP_PTPL);

	/* an inactive but valid nsid: all-zero structure */
	cmd = ut_cmd_identify(NVL_NVME_CNS_NS, 3);
	assert_int_equal(adm(f, &cmd, 4096), 0);
	assert_true(all_zero(f->buf, 4096));

	/* nsid 0, beyond NN, and broadcast: Invalid Namespace, DNR */
	static const uint32_t bad[] = { 0, UT_NVME_MAX_NS + 1, 0xfffffffe, NVL_NVME_NSID_ALL };
	for (size_t i = 0; i < NVL_ARRAY_SIZE(bad); i++) {
		uint16_t st;

		cmd = ut_cmd_identify(NVL_NVME_CNS_NS, bad[i]);
		st = adm(f, &cmd, 4096);
		assert_int_equal(ut_sc(st), NVL_NVME_SC_INVALID_NAMESPACE);
		assert_true(ut_dnr(st));
	}
}

static void
test_identify_active_list(void **state)
{
	struct fx *f = *state;
	uint32_t *l = (void *)f->buf;
	static const struct {
		uint32_t start;
		uint32_t expect[4];
	} cases[] = {
		{ 0, { 1, 2, 5, 0 } },
		{ 1, { 2, 5, 0 } },
		{ 2, { 5, 0 } },
		{ 4, { 5, 0 } },
		{ 5, { 0 } },
		{ 0xfffffffd, { 0 } },
	};

	for (size_t i = 0; i < NVL_ARRAY_SIZE(cases); i++) {
		struct nvl_nvme_cmd cmd = ut_cmd_identify(NVL_NVME_CNS_ACTIVE_NS_LIST,
							  cases[i].start);
		size_t n = 0;

		assert_int_equal(adm(f, &cmd, 4096), 0);
		while (cases[i].expect[n]) {
			assert_int_equal(l[n], cases[i].expect[n]);
			n++;
		}
		/* the rest of the list is zero */
		assert_true(all_zero(l + n, 4096 - n * 4));
		/* CNS 7 (I/O command set active list, CSI 0) is the same list */
		cmd = ut_cmd_identify(NVL_NVME_CNS_IO_CMD_SET_ACTIVE_NS_LIST, cases[i].start);
		assert_int_equal(adm(f, &cmd, 4096), 0);
		for (size_t j = 0; j < n; j++)
			assert_int_equal(l[j], cases[i].expect[j]);
		assert_true(all_zero(l + n, 4096 - n * 4));
	}
	for (uint32_t nsid = 0xfffffffe; nsid != 0; nsid++) {
		struct nvl_nvme_cmd cmd = ut_cmd_identify(NVL_NVME_CNS_ACTIVE_NS_LIST, nsid);

		assert_int_equal(ut_sc(adm(f, &cmd, 4096)), NVL_NVME_SC_INVALID_NAMESPACE);
	}
	/* CNS 7 with another command set */
	struct nvl_nvme_cmd cmd = ut_cmd_identify(NVL_NVME_CNS_IO_CMD_SET_ACTIVE_NS_LIST, 0);

	cmd.cdw11 = 2u << 24;
	assert_int_equal(ut_sc(adm(f, &cmd, 4096)), NVL_NVME_SC_INVALID_FIELD);
}

static void
test_identify_ns_descs(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_cmd cmd = ut_cmd_identify(NVL_NVME_CNS_NS_ID_DESCRIPTORS, 1);
	const uint8_t *p = f->buf;

	assert_int_equal(adm(f, &cmd, 4096), 0);
	/* EUI64: NIDT 1, NIDL 8 */
	assert_int_equal(p[0], NVL_NVME_NIDT_EUI64);
	assert_int_equal(p[1], 8);
	assert_int_equal(p[2] | p[3], 0);
	assert_memory_equal(p + 4, f->ns1.ns.eui64, 8);
	p += 12;
	/* NGUID: NIDT 2, NIDL 16 */
	assert_int_equal(p[0], NVL_NVME_NIDT_NGUID);
	assert_int_equal(p[1], 16);
	assert_memory_equal(p + 4, uuid1, 16);
	p += 20;
	/* UUID: NIDT 3, NIDL 16 */
	assert_int_equal(p[0], NVL_NVME_NIDT_UUID);
	assert_int_equal(p[1], 16);
	assert_memory_equal(p + 4, uuid1, 16);
	p += 20;
	/* CSI: NIDT 4, NIDL 1, NVM command set */
	assert_int_equal(p[0], NVL_NVME_NIDT_CSI);
	assert_int_equal(p[1], 1);
	assert_int_equal(p[4], 0);
	p += 5;
	/* a zero descriptor ends the list */
	assert_true(all_zero(p, 4096 - (size_t)(p - f->buf)));

	/* stable: the same identifiers again, and different ones for ns 5 */
	uint8_t first[4096];

	memcpy(first, f->buf, 4096);
	assert_int_equal(adm(f, &cmd, 4096), 0);
	assert_memory_equal(first, f->buf, 4096);
	cmd = ut_cmd_identify(NVL_NVME_CNS_NS_ID_DESCRIPTORS, 5);
	assert_int_equal(adm(f, &cmd, 4096), 0);
	assert_memory_not_equal(first + 16, f->buf + 16, 16);

	cmd = ut_cmd_identify(NVL_NVME_CNS_NS_ID_DESCRIPTORS, 3);
	assert_int_equal(ut_sc(adm(f, &cmd, 4096)), NVL_NVME_SC_INVALID_NAMESPACE);
	cmd = ut_cmd_identify(NVL_NVME_CNS_NS_ID_DESCRIPTORS, 0);
	assert_int_equal(ut_sc(adm(f, &cmd, 4096)), NVL_NVME_SC_INVALID_NAMESPACE);
}

static void
test_identify_cmd_set_and_invalid_cns(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_cmd cmd;
	uint16_t st;

	cmd = ut_cmd_identify(NVL_NVME_CNS_IO_CMD_SET_NS, 1);
	assert_int_equal(adm(f, &cmd, 4096), 0);
	assert_true(all_zero(f->buf, 4096));
	cmd = ut_cmd_identify(NVL_NVME_CNS_IO_CMD_SET_NS, 3);
	assert_int_equal(ut_sc(adm(f, &cmd, 4096)), NVL_NVME_SC_INVALID_NAMESPACE);
	cmd = ut_cmd_identify(NVL_NVME_CNS_IO_CMD_SET_NS, 1);
	cmd.cdw11 = 2u << 24; /* zoned command set: not ours */
	assert_int_equal(ut_sc(adm(f, &cmd, 4096)), NVL_NVME_SC_INVALID_FIELD);
	cmd = ut_cmd_identify(NVL_NVME_CNS_IO_CMD_SET_CTRLR, 0);
	assert_int_equal(adm(f, &cmd, 4096), 0);
	assert_true(all_zero(f->buf, 4096));
	cmd.cdw11 = 1u << 24;
	assert_int_equal(ut_sc(adm(f, &cmd, 4096)), NVL_NVME_SC_INVALID_FIELD);

	static const uint8_t bad_cns[] = { 0x04, 0x08, 0x10, 0x11, 0x12, 0x13, 0x1c, 0x55, 0xff };
	for (size_t i = 0; i < NVL_ARRAY_SIZE(bad_cns); i++) {
		cmd = ut_cmd_identify(bad_cns[i], 1);
		st = adm(f, &cmd, 4096);
		assert_int_equal(ut_sc(st), NVL_NVME_SC_INVALID_FIELD);
		assert_true(ut_dnr(st));
	}
	/* a buffer shorter than the 4 KiB structure */
	cmd = ut_cmd_identify(NVL_NVME_CNS_CTRLR, 0);
	assert_int_equal(ut_sc(adm(f, &cmd, 2048)), NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
}

/* ---- Get Log Page --------------------------------------------------------- */

static void
test_log_error_newest_first(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_error_log *e = (void *)f->buf;
	struct nvl_nvme_cmd cmd;
	uint16_t cids[3];

	/* 1. invalid admin opcode */
	cmd = ut_cmd(0x80, 0);
	cids[0] = cmd.cid;
	assert_int_equal(ut_sc(adm(f, &cmd, 0)), NVL_NVME_SC_INVALID_OPCODE);
	/* 2. an I/O read beyond the end of ns 1 on queue 3 */
	uint8_t data[512];

	cmd = ut_cmd_rw(NVL_NVME_IO_READ, 1, 1024, 1);
	cids[1] = cmd.cid;
	assert_int_equal(ut_sc(ut_nvme_exec(&f->u.c, 3, &cmd, data, sizeof(data))),
			 NVL_NVME_SC_LBA_OUT_OF_RANGE);
	/* 3. an invalid namespace */
	cmd = ut_cmd_rw(NVL_NVME_IO_WRITE, 9, 0, 1);
	cids[2] = cmd.cid;
	assert_int_equal(ut_sc(ut_nvme_exec(&f->u.c, 2, &cmd, data, sizeof(data))),
			 NVL_NVME_SC_INVALID_NAMESPACE);

	cmd = ut_cmd_get_log(NVL_NVME_LOG_ERROR, 0, 4096, 0, false);
	assert_int_equal(adm(f, &cmd, 4096), 0);
	assert_int_equal(e[0].error_count, 3);
	assert_int_equal(e[0].sqid, 2);
	assert_int_equal(e[0].cid, cids[2]);
	assert_int_equal(e[0].nsid, 9);
	assert_int_equal(ut_sc(e[0].status), NVL_NVME_SC_INVALID_NAMESPACE);
	assert_int_equal(e[0].status & 1, 0); /* phase tag bit is 0 in the log */
	assert_int_equal(e[1].error_count, 2);
	assert_int_equal(e[1].sqid, 3);
	assert_int_equal(e[1].cid, cids[1]);
	assert_int_equal(e[1].lba, 1024);
	assert_int_equal(e[1].nsid, 1);
	assert_int_equal(ut_sc(e[1].status), NVL_NVME_SC_LBA_OUT_OF_RANGE);
	assert_true(ut_dnr(e[1].status));
	assert_int_equal(e[2].error_count, 1);
	assert_int_equal(e[2].sqid, 0);
	assert_int_equal(e[2].cid, cids[0]);
	assert_int_equal(ut_sc(e[2].status), NVL_NVME_SC_INVALID_OPCODE);
	assert_int_equal(e[2].parm_error_location, 0xffff);
	/* unused entries are zero */
	assert_true(all_zero(&e[3], sizeof(*e) * (NVL_NVME_ERRLOG_ENTRIES - 3)));

	/* more errors than entries: the newest 64 remain, newest first */
	for (int i = 0; i < 70; i++) {
		cmd = ut_cmd(0x81, 0);
		adm(f, &cmd, 0);
	}
	cmd = ut_cmd_get_log(NVL_NVME_LOG_ERROR, 0, 4096, 0, false);
	assert_int_equal(adm(f, &cmd, 4096), 0);
	for (int i = 0; i < NVL_NVME_ERRLOG_ENTRIES; i++)
		assert_int_equal(e[i].error_count, 73 - i);
	/* SMART reports the error count */
	cmd = ut_cmd_get_log(NVL_NVME_LOG_SMART, 0, 512, 0, false);
	assert_int_equal(adm(f, &cmd, 512), 0);
	assert_int_equal(((struct nvl_nvme_smart_log *)f->buf)->num_err_log_entries[0], 73);
}

static void
rw_blocks(struct fx *f, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, uint32_t bs)
{
	struct nvl_nvme_cmd cmd = ut_cmd_rw(opc, nsid, slba, nlb);
	uint8_t *data = calloc(nlb, bs);

	assert_int_equal(ut_nvme_exec(&f->u.c, 1, &cmd, data, nlb * bs), 0);
	free(data);
}

static void
test_log_smart_counters(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_smart_log *s = (void *)f->buf;
	struct nvl_nvme_cmd cmd = ut_cmd_get_log(NVL_NVME_LOG_SMART, 0, 512, 0, false);

	assert_int_equal(adm(f, &cmd, 512), 0);
	assert_int_equal(s->data_units_read[0], 0);
	assert_int_equal(s->data_units_written[0], 0);
	assert_int_equal(s->host_reads[0], 0);
	assert_int_equal(s->power_cycles[0], 1);
	assert_int_equal(s->avail_spare, 100);
	assert_true(s->temperature > 273);

	/* 1000 units of 512 bytes written in 2 commands: exactly one data unit */
	rw_blocks(f, NVL_NVME_IO_WRITE, 1, 0, 600, 512);
	rw_blocks(f, NVL_NVME_IO_WRITE, 1, 600, 400, 512);
	/* one 512-byte unit read: rounds up to one data unit */
	rw_blocks(f, NVL_NVME_IO_READ, 1, 3, 1, 512);
	assert_int_equal(adm(f, &cmd, 512), 0);
	assert_int_equal(s->data_units_written[0], 1);
	assert_int_equal(s->data_units_written[1], 0);
	assert_int_equal(s->host_writes[0], 2);
	assert_int_equal(s->data_units_read[0], 1);
	assert_int_equal(s->host_reads[0], 1);

	/* one more unit written: 1001 units -> 2 */
	rw_blocks(f, NVL_NVME_IO_WRITE, 1, 0, 1, 512);
	/* 4 KiB blocks count as 8 units each: 2 x 4096 = 16 units read -> 2 total */
	rw_blocks(f, NVL_NVME_IO_READ, 2, 0, 2, 4096);
	assert_int_equal(adm(f, &cmd, 512), 0);
	assert_int_equal(s->data_units_written[0], 2);
	assert_int_equal(s->host_writes[0], 3);
	assert_int_equal(s->data_units_read[0], 1);
	assert_int_equal(s->host_reads[0], 2);

	/* failed commands do not count */
	cmd = ut_cmd_rw(NVL_NVME_IO_WRITE, 2, 0, 1); /* read-only namespace */
	assert_int_equal(ut_sc(ut_nvme_exec(&f->u.c, 1, &cmd, f->buf, 4096)),
			 NVL_NVME_SC_NS_WRITE_PROTECTED);
	cmd = ut_cmd_get_log(NVL_NVME_LOG_SMART, NVL_NVME_NSID_ALL, 512, 0, false);
	assert_int_equal(adm(f, &cmd, 512), 0);
	assert_int_equal(s->host_writes[0], 3);

	/* per-namespace SMART is not supported (LPA bit 0 clear) */
	cmd = ut_cmd_get_log(NVL_NVME_LOG_SMART, 1, 512, 0, false);
	assert_int_equal(ut_sc(adm(f, &cmd, 512)), NVL_NVME_SC_INVALID_FIELD);
}

static void
test_log_offsets_and_lengths(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_cmd cmd;
	uint8_t whole[512];

	cmd = ut_cmd_get_log(NVL_NVME_LOG_SMART, 0, 512, 0, false);
	assert_int_equal(adm(f, &cmd, 512), 0);
	memcpy(whole, f->buf, 512);
	/* offset inside: the tail, then zeroes up to the requested length */
	cmd = ut_cmd_get_log(NVL_NVME_LOG_SMART, 0, 512, 32, false);
	assert_int_equal(adm(f, &cmd, 512), 0);
	assert_memory_equal(f->buf, whole + 32, 480);
	assert_true(all_zero(f->buf + 480, 32));
	/* a longer read than the log: zero-filled beyond it */
	cmd = ut_cmd_get_log(NVL_NVME_LOG_FW_SLOT, 0, 1024, 0, false);
	assert_int_equal(adm(f, &cmd, 1024), 0);
	assert_int_equal(f->buf[0], 1);
	assert_memory_equal(f->buf + 8, "ut1     ", 8);
	assert_true(all_zero(f->buf + 512, 512));
	/* offset at the very end: allowed, all zero */
	cmd = ut_cmd_get_log(NVL_NVME_LOG_SMART, 0, 64, 512, false);
	assert_int_equal(adm(f, &cmd, 64), 0);
	assert_true(all_zero(f->buf, 64));
	/* beyond the end, misaligned, huge */
	static const uint64_t bad_off[] = { 516, 4096, 2, 0x100000000ULL, UINT64_MAX - 3 };
	for (size_t i = 0; i < NVL_ARRAY_SIZE(bad_off); i++) {
		uint16_t st;

		cmd = ut_cmd_get_log(NVL_NVME_LOG_SMART, 0, 64, bad_off[i], false);
		st = adm(f, &cmd, 64);
		assert_int_equal(ut_sc(st), NVL_NVME_SC_INVALID_FIELD);
		assert_true(ut_dnr(st));
	}
	/* unknown and not-ours log pages */
	static const uint8_t bad_lid[] = { 0x06, 0x42, NVL_NVME_LOG_DISCOVERY, 0xff };
	for (size_t i = 0; i < NVL_ARRAY_SIZE(bad_lid); i++) {
		cmd = ut_cmd_get_log(bad_lid[i], 0, 64, 0, false);
		assert_int_equal(ut_sc(adm(f, &cmd, 64)), NVL_NVME_SC_INVALID_LOG_PAGE);
	}
}

static void
test_log_changed_ns(void **state)
{
	struct fx *f = *state;
	uint32_t *l = (void *)f->buf;
	struct nvl_nvme_cmd rae = ut_cmd_get_log(NVL_NVME_LOG_CHANGED_NS, 0, 4096, 0, true);
	struct nvl_nvme_cmd clr = ut_cmd_get_log(NVL_NVME_LOG_CHANGED_NS, 0, 4096, 0, false);

	assert_int_equal(adm(f, &clr, 4096), 0);
	assert_true(all_zero(l, 4096));
	nvl_nvme_ctrlr_ns_changed(&f->u.c, 3);
	nvl_nvme_ctrlr_ns_changed(&f->u.c, 1);
	nvl_nvme_ctrlr_ns_changed(&f->u.c, 3); /* duplicate: listed once */
	/* RAE=1: read without clearing */
	assert_int_equal(adm(f, &rae, 4096), 0);
	assert_int_equal(l[0], 3);
	assert_int_equal(l[1], 1);
	assert_true(all_zero(l + 2, 4096 - 8));
	/* RAE=0: read and clear */
	assert_int_equal(adm(f, &clr, 4096), 0);
	assert_int_equal(l[0], 3);
	assert_int_equal(l[1], 1);
	assert_int_equal(adm(f, &clr, 4096), 0);
	assert_true(all_zero(l, 4096));

	/* more than 1024 changes: the list is one entry FFFFFFFFh */
	for (uint32_t id = 1; id <= NVL_NVME_CHANGED_NS_MAX; id++)
		nvl_nvme_ctrlr_ns_changed(&f->u.c, id);
	assert_int_equal(adm(f, &rae, 4096), 0);
	assert_int_equal(l[0], 1);
	assert_int_equal(l[1023], 1024);
	nvl_nvme_ctrlr_ns_changed(&f->u.c, 5000);
	assert_int_equal(adm(f, &rae, 4096), 0);
	assert_int_equal(l[0], 0xffffffffu);
	assert_true(all_zero(l + 1, 4096 - 4));
	assert_int_equal(adm(f, &clr, 4096), 0);
	assert_int_equal(l[0], 0xffffffffu);
	/* cleared: starts over */
	nvl_nvme_ctrlr_ns_changed(&f->u.c, 2);
	assert_int_equal(adm(f, &clr, 4096), 0);
	assert_int_equal(l[0], 2);
	assert_int_equal(l[1], 0);
	/* a partial read at an offset */
	nvl_nvme_ctrlr_ns_changed(&f->u.c, 7);
	nvl_nvme_ctrlr_ns_changed(&f->u.c, 8);
	struct nvl_nvme_cmd part = ut_cmd_get_log(NVL_NVME_LOG_CHANGED_NS, 0, 8, 4, true);

	assert_int_equal(adm(f, &part, 8), 0);
	assert_int_equal(l[0], 8);
	assert_int_equal(l[1], 0);
}

static void
test_log_resv_notification(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_resv_notification_log *n = (void *)f->buf;
	struct nvl_nvme_cmd cmd = ut_cmd_get_log(NVL_NVME_LOG_RESV_NOTIFICATION, 0, 64, 0, false);

	/* empty log: an empty entry */
	assert_int_equal(adm(f, &cmd, 64), 0);
	assert_true(all_zero(n, 64));

	nvl_nvme_ctrlr_resv_notify(&f->u.c, 1, NVL_NVME_RESV_NOTIF_REGISTRATION_PREEMPTED);
	nvl_nvme_ctrlr_resv_notify(&f->u.c, 5, NVL_NVME_RESV_NOTIF_RESERVATION_RELEASED);
	nvl_nvme_ctrlr_resv_notify(&f->u.c, 2, NVL_NVME_RESV_NOTIF_RESERVATION_PREEMPTED);
	/* each read consumes the oldest entry */
	assert_int_equal(adm(f, &cmd, 64), 0);
	assert_int_equal(n->log_page_count, 1);
	assert_int_equal(n->type, NVL_NVME_RESV_NOTIF_REGISTRATION_PREEMPTED);
	assert_int_equal(n->nsid, 1);
	assert_int_equal(n->num_avail, 2);
	assert_int_equal(adm(f, &cmd, 64), 0);
	assert_int_equal(n->log_page_count, 2);
	assert_int_equal(n->type, NVL_NVME_RESV_NOTIF_RESERVATION_RELEASED);
	assert_int_equal(n->nsid, 5);
	assert_int_equal(n->num_avail, 1);
	assert_int_equal(adm(f, &cmd, 64), 0);
	assert_int_equal(n->log_page_count, 3);
	assert_int_equal(n->nsid, 2);
	assert_int_equal(n->num_avail, 0);
	assert_int_equal(adm(f, &cmd, 64), 0);
	assert_true(all_zero(n, 64));

	/* masked types (feature 0x82) are not logged */
	struct nvl_nvme_cmd mask = ut_cmd_feat(NVL_NVME_ADM_SET_FEATURES,
					       NVL_NVME_FEAT_RESV_NOTIFICATION_MASK, 1u << 2);

	assert_int_equal(adm(f, &mask, 0), 0);
	nvl_nvme_ctrlr_resv_notify(&f->u.c, 1, NVL_NVME_RESV_NOTIF_RESERVATION_RELEASED);
	nvl_nvme_ctrlr_resv_notify(&f->u.c, 1, NVL_NVME_RESV_NOTIF_RESERVATION_PREEMPTED);
	assert_int_equal(adm(f, &cmd, 64), 0);
	assert_int_equal(n->type, NVL_NVME_RESV_NOTIF_RESERVATION_PREEMPTED);
	assert_int_equal(n->log_page_count, 4);
	assert_int_equal(n->num_avail, 0);

	/* overflow: the oldest go, the count keeps counting */
	for (int i = 0; i < 300; i++)
		nvl_nvme_ctrlr_resv_notify(&f->u.c, 1, NVL_NVME_RESV_NOTIF_RESERVATION_PREEMPTED);
	assert_int_equal(adm(f, &cmd, 64), 0);
	assert_int_equal(n->log_page_count, 4 + 300 - NVL_NVME_RESV_NOTIF_MAX + 1);
	assert_int_equal(n->num_avail, NVL_NVME_RESV_NOTIF_MAX - 1);

	/* not on a discovery controller */
	f->u.c.type = NVL_NVME_CNTRLTYPE_DISCOVERY;
	assert_int_equal(ut_sc(adm(f, &cmd, 64)), NVL_NVME_SC_INVALID_LOG_PAGE);
	f->u.c.type = NVL_NVME_CNTRLTYPE_IO;
}

/* ---- asynchronous events ---------------------------------------------------- */

static void
test_aer_ns_changed(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_cmd aec =
		ut_cmd_feat(NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_ASYNC_EVENT_CONFIG,
			    NVL_NVME_AEC_NS_ATTR);
	struct nvl_nvme_cmd aer = ut_cmd(NVL_NVME_ADM_ASYNC_EVENT, 0);
	struct nvl_nvme_cmd rae = ut_cmd_get_log(NVL_NVME_LOG_CHANGED_NS, 0, 4096, 0, true);
	struct nvl_nvme_cmd clr = ut_cmd_get_log(NVL_NVME_LOG_CHANGED_NS, 0, 4096, 0, false);
	const uint32_t expect = NVL_NVME_AER_CDW0(NVL_NVME_AER_TYPE_NOTICE,
						  NVL_NVME_AER_NOTICE_NS_CHANGED,
						  NVL_NVME_LOG_CHANGED_NS);
	struct ut_io a[NVL_NVME_AERL + 1];

	/* events disabled: a change completes nothing */
	ut_nvme_start(&a[0], &f->u.c, 0, &aer, NULL, 0);
	assert_int_equal(a[0].ndone, 0);
	nvl_nvme_ctrlr_ns_changed(&f->u.c, 1);
	assert_int_equal(a[0].ndone, 0);
	assert_int_equal(adm(f, &clr, 4096), 0);

	assert_int_equal(adm(f, &aec, 0), 0);
	nvl_nvme_ctrlr_ns_changed(&f->u.c, 2);
	assert_int_equal(a[0].ndone, 1);
	assert_int_equal(a[0].req.cpl.status, 0);
	assert_int_equal(a[0].req.cpl.cdw0, expect);

	/* masked until the log is read with RAE=0 */
	ut_nvme_start(&a[1], &f->u.c, 0, &aer, NULL, 0);
	nvl_nvme_ctrlr_ns_changed(&f->u.c, 5);
	assert_int_equal(a[1].ndone, 0);
	assert_int_equal(adm(f, &rae, 4096), 0);
	nvl_nvme_ctrlr_ns_changed(&f->u.c, 1);
	assert_int_equal(a[1].ndone, 0);
	assert_int_equal(adm(f, &clr, 4096), 0);
	assert_int_equal(a[1].ndone, 0);
	nvl_nvme_ctrlr_ns_changed(&f->u.c, 1);
	assert_int_equal(a[1].ndone, 1);
	assert_int_equal(a[1].req.cpl.cdw0, expect);

	/* an event with no AER outstanding waits for the next AER */
	assert_int_equal(adm(f, &clr, 4096), 0);
	nvl_nvme_ctrlr_ns_changed(&f->u.c, 2);
	ut_nvme_start(&a[2], &f->u.c, 0, &aer, NULL, 0);
	assert_int_equal(a[2].ndone, 1);
	assert_int_equal(a[2].req.cpl.cdw0, expect);
	assert_int_equal(adm(f, &clr, 4096), 0);

	/* AER limit: AERL+1 outstanding, the next one fails */
	for (int i = 0; i < NVL_NVME_AERL; i++) {
		ut_nvme_start(&a[i], &f->u.c, 0, &aer, NULL, 0);
		assert_int_equal(a[i].ndone, 0);
	}
	ut_nvme_start(&a[NVL_NVME_AERL], &f->u.c, 0, &aer, NULL, 0);
	assert_int_equal(a[NVL_NVME_AERL].ndone, 1);
	assert_int_equal(ut_sc(a[NVL_NVME_AERL].req.cpl.status), NVL_NVME_SC_AER_LIMIT);
	assert_true(ut_dnr(a[NVL_NVME_AERL].req.cpl.status));
	/* the admin queue goes: held AERs complete as aborted, exactly once */
	nvl_nvme_ctrlr_abort_aers(&f->u.c);
	for (int i = 0; i < NVL_NVME_AERL; i++) {
		assert_int_equal(a[i].ndone, 1);
		assert_int_equal(ut_sc(a[i].req.cpl.status), NVL_NVME_SC_ABORTED_SQ_DELETION);
	}
	nvl_nvme_ctrlr_abort_aers(&f->u.c);
	for (int i = 0; i < NVL_NVME_AERL; i++)
		assert_int_equal(a[i].ndone, 1);
}

static void
test_aer_resv_and_error(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_cmd aer = ut_cmd(NVL_NVME_ADM_ASYNC_EVENT, 0);
	struct ut_io a, b;

	ut_nvme_start(&a, &f->u.c, 0, &aer, NULL, 0);
	nvl_nvme_ctrlr_resv_notify(&f->u.c, 1, NVL_NVME_RESV_NOTIF_RESERVATION_RELEASED);
	assert_int_equal(a.ndone, 1);
	assert_int_equal(a.req.cpl.cdw0,
			 NVL_NVME_AER_CDW0(NVL_NVME_AER_TYPE_IO_SPECIFIC, NVL_NVME_AER_IO_RESV_LOG,
					   NVL_NVME_LOG_RESV_NOTIFICATION));
	ut_nvme_start(&b, &f->u.c, 0, &aer, NULL, 0);
	nvl_nvme_ctrlr_doorbell_error(&f->u.c, true);
	assert_int_equal(b.ndone, 1);
	assert_int_equal(b.req.cpl.cdw0, NVL_NVME_AER_CDW0(NVL_NVME_AER_TYPE_ERROR,
							  NVL_NVME_AER_ERROR_INVALID_DB_VALUE,
							  NVL_NVME_LOG_ERROR));
	/* the failed AER completions themselves never enter the error log */
	struct nvl_nvme_cmd cmd = ut_cmd_get_log(NVL_NVME_LOG_ERROR, 0, 64, 0, false);

	assert_int_equal(adm(f, &cmd, 64), 0);
	assert_int_equal(((struct nvl_nvme_error_log *)f->buf)->error_count, 0);
}

/* ---- Features ---------------------------------------------------------------- */

static uint16_t
feat(struct fx *f, uint8_t opc, uint32_t cdw10, uint32_t cdw11, uint32_t nsid, uint32_t *cdw0)
{
	struct nvl_nvme_cmd cmd = ut_cmd(opc, nsid);
	uint32_t dummy;

	cmd.cdw10 = cdw10;
	cmd.cdw11 = cdw11;
	return ut_nvme_exec_cdw0(&f->u.c, 0, &cmd, f->buf, 16, cdw0 ? cdw0 : &dummy);
}

static void
test_features_capabilities(void **state)
{
	struct fx *f = *state;
	static const struct {
		uint8_t fid;
		uint32_t caps;
	} t[] = {
		{ NVL_NVME_FEAT_ARBITRATION, 4 },
		{ NVL_NVME_FEAT_POWER_MGMT, 4 },
		{ NVL_NVME_FEAT_TEMP_THRESHOLD, 4 },
		{ NVL_NVME_FEAT_ERROR_RECOVERY, 4 },
		{ NVL_NVME_FEAT_VOLATILE_WRITE_CACHE, 4 },
		{ NVL_NVME_FEAT_NUMBER_OF_QUEUES, 4 },
		{ NVL_NVME_FEAT_INTERRUPT_COALESCING, 4 },
		{ NVL_NVME_FEAT_INTERRUPT_VECTOR_CONFIG, 4 },
		{ NVL_NVME_FEAT_WRITE_ATOMICITY, 4 },
		{ NVL_NVME_FEAT_ASYNC_EVENT_CONFIG, 4 },
		{ NVL_NVME_FEAT_KEEP_ALIVE_TIMER, 4 },
		{ NVL_NVME_FEAT_HOST_IDENTIFIER, 4 },
		{ NVL_NVME_FEAT_RESV_NOTIFICATION_MASK, 6 },
		{ NVL_NVME_FEAT_RESV_PERSISTENCE, 6 },
	};
	uint32_t v;

	for (size_t i = 0; i < NVL_ARRAY_SIZE(t); i++) {
		/* SEL = 3: supported capabilities; never saveable (bit 0) */
		assert_int_equal(feat(f, NVL_NVME_ADM_GET_FEATURES, t[i].fid | (3u << 8), 0, 1, &v),
				 0);
		assert_int_equal(v, t[i].caps);
		/* every feature refuses SV=1 */
		assert_int_equal(ut_sc(feat(f, NVL_NVME_ADM_SET_FEATURES, t[i].fid | (1u << 31), 0,
					    1, NULL)),
				 NVL_NVME_SC_FEATURE_NOT_SAVEABLE);
	}
	/* unsupported features and selects */
	static const uint8_t bad_fid[] = { 0x00, 0x03, 0x0c, 0x0e, 0x10, 0x80, 0x84, 0xff };
	for (size_t i = 0; i < NVL_ARRAY_SIZE(bad_fid); i++) {
		assert_int_equal(ut_sc(feat(f, NVL_NVME_ADM_GET_FEATURES, bad_fid[i], 0, 0, NULL)),
				 NVL_NVME_SC_INVALID_FIELD);
		assert_int_equal(ut_sc(feat(f, NVL_NVME_ADM_GET_FEATURES, bad_fid[i] | (3u << 8), 0,
					    0, NULL)),
				 NVL_NVME_SC_INVALID_FIELD);
		assert_int_equal(ut_sc(feat(f, NVL_NVME_ADM_SET_FEATURES, bad_fid[i], 0, 0, NULL)),
				 NVL_NVME_SC_INVALID_FIELD);
	}
	for (uint32_t sel = 4; sel < 8; sel++)
		assert_int_equal(ut_sc(feat(f, NVL_NVME_ADM_GET_FEATURES,
					    NVL_NVME_FEAT_ARBITRATION | (sel << 8), 0, 0, NULL)),
				 NVL_NVME_SC_INVALID_FIELD);
}

static void
test_features_values(void **state)
{
	struct fx *f = *state;
	uint32_t v;

	/* volatile write cache: on by default, switchable */
	assert_int_equal(feat(f, NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_VOLATILE_WRITE_CACHE, 0,
			      0, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(feat(f, NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_VOLATILE_WRITE_CACHE, 0,
			      0, NULL), 0);
	assert_int_equal(feat(f, NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_VOLATILE_WRITE_CACHE, 0,
			      0, &v), 0);
	assert_int_equal(v, 0);
	/* SEL 1: the default stays "enabled"; Identify still reports the cache */
	assert_int_equal(feat(f, NVL_NVME_ADM_GET_FEATURES,
			      NVL_NVME_FEAT_VOLATILE_WRITE_CACHE | (1u << 8), 0, 0, &v), 0);
	assert_int_equal(v, NVL_NVME_FEAT_VWC_WCE);
	assert_int_equal(feat(f, NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_VOLATILE_WRITE_CACHE,
			      0xfffffffe | NVL_NVME_FEAT_VWC_WCE, 0, NULL), 0);
	assert_int_equal(feat(f, NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_VOLATILE_WRITE_CACHE, 0,
			      0, &v), 0);
	assert_int_equal(v, NVL_NVME_FEAT_VWC_WCE); /* reserved bits are not kept */
	/* power management: only power state 0 */
	assert_int_equal(ut_sc(feat(f, NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_POWER_MGMT, 1, 0,
				    NULL)), NVL_NVME_SC_INVALID_FIELD);
	assert_int_equal(feat(f, NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_POWER_MGMT, 0, 0, NULL),
			 0);
	/* async event config round trip */
	assert_int_equal(feat(f, NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_ASYNC_EVENT_CONFIG,
			      NVL_NVME_AEC_NS_ATTR, 0, NULL), 0);
	assert_int_equal(feat(f, NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_ASYNC_EVENT_CONFIG, 0, 0,
			      &v), 0);
	assert_int_equal(v, NVL_NVME_AEC_NS_ATTR);
	/* reservation notification mask keeps only bits 1..3 */
	assert_int_equal(feat(f, NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_RESV_NOTIFICATION_MASK,
			      0xffffffff, 1, NULL), 0);
	assert_int_equal(feat(f, NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_RESV_NOTIFICATION_MASK,
			      0, 1, &v), 0);
	assert_int_equal(v, 0xe);
	/* interrupt vector config echoes the vector */
	assert_int_equal(feat(f, NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_INTERRUPT_VECTOR_CONFIG,
			      0x10005, 0, &v), 0);
	assert_int_equal(v, 5);
}

static void
test_features_num_queues(void **state)
{
	struct fx *f = *state;
	uint32_t v;
	static const struct {
		uint32_t req;
		uint32_t granted;
	} t[] = {
		{ 0x00000000, 0x00000000 },
		{ 0x00030003, 0x00030003 },
		{ 0x00010004, 0x00010004 },
		{ 0x00070007, 0x00070007 },
		{ 0x00080008, 0x00070007 }, /* capped at max_io_queues (8) */
		{ 0xfffe0002, 0x00070002 },
	};

	/* before Set Features: the maximum */
	assert_int_equal(feat(f, NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_NUMBER_OF_QUEUES, 0, 0,
			      &v), 0);
	assert_int_equal(v, 0x00070007);
	for (size_t i = 0; i < NVL_ARRAY_SIZE(t); i++) {
		assert_int_equal(feat(f, NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_NUMBER_OF_QUEUES,
				      t[i].req, 0, &v), 0);
		assert_int_equal(v, t[i].granted);
		assert_int_equal(feat(f, NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_NUMBER_OF_QUEUES,
				      0, 0, &v), 0);
		assert_int_equal(v, t[i].granted);
	}
	/* 0xffff (65536 queues) is invalid in either half */
	static const uint32_t bad[] = { 0x0000ffff, 0xffff0000, 0xffffffff };
	for (size_t i = 0; i < NVL_ARRAY_SIZE(bad); i++) {
		uint16_t st = feat(f, NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_NUMBER_OF_QUEUES,
				   bad[i], 0, NULL);

		assert_int_equal(ut_sc(st), NVL_NVME_SC_INVALID_FIELD);
		assert_true(ut_dnr(st));
	}
}

static void
test_features_kato(void **state)
{
	struct fx *f = *state;
	static const struct {
		uint32_t set, got;
	} t[] = {
		{ 0, 0 },	  { 1, 100 },	  { 99, 100 },	    { 100, 100 },
		{ 101, 200 },	  { 150, 200 },	  { 1000, 1000 },   { 1001, 1100 },
		{ 12345, 12400 }, { 120000, 120000 }, { 4294967200u, 4294967200u },
		{ 4294967201u, 4294967200u }, { 0xffffffffu, 4294967200u },
	};
	uint32_t v;

	for (size_t i = 0; i < NVL_ARRAY_SIZE(t); i++) {
		assert_int_equal(feat(f, NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_KEEP_ALIVE_TIMER,
				      t[i].set, 0, NULL), 0);
		assert_int_equal(feat(f, NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_KEEP_ALIVE_TIMER,
				      0, 0, &v), 0);
		assert_int_equal(v, t[i].got);
	}
}

static void
test_features_host_identifier(void **state)
{
	struct fx *f = *state;
	static const uint8_t id[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	uint32_t len;
	uint8_t dir;
	struct ut_io io;
	struct nvl_nvme_cmd cmd;

	/* Get: EXHID must be 1 (only 128-bit identifiers) */
	assert_int_equal(ut_sc(feat(f, NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_HOST_IDENTIFIER, 0,
				    0, NULL)), NVL_NVME_SC_INVALID_FIELD);
	cmd = ut_cmd_feat(NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_HOST_IDENTIFIER, 1);
	memset(f->buf, 0, 32);
	assert_int_equal(ut_nvme_exec_io(&io, &f->u.c, 0, &cmd, f->buf, 16), 0);
	assert_int_equal(io.req.xfer_len, 16);
	assert_memory_equal(f->buf, f->u.c.hostid, 16);
	/* transfer sizes */
	io.req.qid = 0;
	assert_int_equal(nvl_nvme_req_xfer(&io.req, &len, &dir), 0);
	assert_int_equal(len, 16);
	assert_int_equal(dir, NVL_NVME_XFER_C2H);
	io.req.cmd.cdw11 = 0;
	assert_int_equal(nvl_nvme_req_xfer(&io.req, &len, &dir), 0);
	assert_int_equal(len, 8);
	io.req.cmd.opc = NVL_NVME_ADM_SET_FEATURES;
	io.req.cmd.cdw11 = 1;
	assert_int_equal(nvl_nvme_req_xfer(&io.req, &len, &dir), 0);
	assert_int_equal(len, 16);
	assert_int_equal(dir, NVL_NVME_XFER_H2C);

	/* Set: refused once a host identifier exists */
	cmd = ut_cmd_feat(NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_HOST_IDENTIFIER, 1);
	memcpy(f->buf, id, 16);
	assert_int_equal(ut_sc(ut_nvme_exec(&f->u.c, 0, &cmd, f->buf, 16)),
			 NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
	/* a host without one may set it, once, with EXHID=1 and 16 bytes */
	memset(f->u.c.hostid, 0, 16);
	cmd.cdw11 = 0;
	assert_int_equal(ut_sc(ut_nvme_exec(&f->u.c, 0, &cmd, f->buf, 8)),
			 NVL_NVME_SC_INVALID_FIELD);
	cmd.cdw11 = 1;
	assert_int_equal(ut_sc(ut_nvme_exec(&f->u.c, 0, &cmd, f->buf, 8)),
			 NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
	assert_true(all_zero(f->u.c.hostid, 16));
	assert_int_equal(ut_nvme_exec(&f->u.c, 0, &cmd, f->buf, 16), 0);
	assert_memory_equal(f->u.c.hostid, id, 16);
	assert_int_equal(ut_sc(ut_nvme_exec(&f->u.c, 0, &cmd, f->buf, 16)),
			 NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
	/* fabrics: Connect set it, Set Features never may */
	memset(f->u.c.hostid, 0, 16);
	f->u.c.fabrics = true;
	assert_int_equal(ut_sc(ut_nvme_exec(&f->u.c, 0, &cmd, f->buf, 16)),
			 NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
}

static void
test_features_ptpl(void **state)
{
	struct fx *f = *state;
	char path[] = "/tmp/nvl_ut_ptpl_XXXXXX";
	int fd = mkstemp(path);
	uint32_t v;

	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	/* no PTPL file: PTPL cannot be switched on; off is fine */
	assert_int_equal(ut_sc(feat(f, NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_RESV_PERSISTENCE,
				    1, 1, NULL)), NVL_NVME_SC_FEATURE_NOT_CHANGEABLE);
	assert_int_equal(feat(f, NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_RESV_PERSISTENCE, 0, 1,
			      NULL), 0);
	assert_int_equal(feat(f, NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_RESV_PERSISTENCE, 0, 1,
			      &v), 0);
	assert_int_equal(v, 0);
	/* namespace-specific: a valid active nsid is needed */
	assert_int_equal(ut_sc(feat(f, NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_RESV_PERSISTENCE,
				    0, 3, NULL)), NVL_NVME_SC_INVALID_NAMESPACE);
	assert_int_equal(ut_sc(feat(f, NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_RESV_PERSISTENCE,
				    0, 0, NULL)), NVL_NVME_SC_INVALID_NAMESPACE);
	/* with a file: on writes the state, off removes it */
	f->ns1.ns.ptpl_file = strdup(path);
	assert_int_equal(feat(f, NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_RESV_PERSISTENCE, 1, 1,
			      NULL), 0);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(feat(f, NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_RESV_PERSISTENCE, 0, 1,
			      &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(feat(f, NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_RESV_PERSISTENCE, 0, 1,
			      NULL), 0);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(feat(f, NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_RESV_PERSISTENCE, 0, 1,
			      &v), 0);
	assert_int_equal(v, 0);
}

/* ---- the rest of the admin set ------------------------------------------------- */

static void
test_abort_keepalive_unknown(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_cmd cmd = ut_cmd(NVL_NVME_ADM_ABORT, 0);
	uint32_t v = 0;
	uint64_t before = f->u.c.last_keep_alive_ns;

	cmd.cdw10 = 1u << 16 | 5; /* cid 1 on SQ 5 */
	assert_int_equal(ut_nvme_exec_cdw0(&f->u.c, 0, &cmd, NULL, 0, &v), 0);
	assert_int_equal(v & 1, 1); /* not aborted */
	cmd = ut_cmd(NVL_NVME_ADM_KEEP_ALIVE, 0);
	usleep(1000);
	assert_int_equal(adm(f, &cmd, 0), 0);
	assert_true(f->u.c.last_keep_alive_ns > before);
	static const uint8_t bad[] = { 0x03, 0x07, 0x0d, 0x10, 0x11, 0x80, 0xc0, 0xff };
	for (size_t i = 0; i < NVL_ARRAY_SIZE(bad); i++) {
		uint16_t st;

		cmd = ut_cmd(bad[i], 0);
		st = adm(f, &cmd, 0);
		assert_int_equal(ut_sc(st), NVL_NVME_SC_INVALID_OPCODE);
		assert_true(ut_dnr(st));
	}
}

static void
test_queue_ops(void **state)
{
	struct fx *f = *state;
	static const uint8_t opc[] = { NVL_NVME_ADM_CREATE_CQ, NVL_NVME_ADM_CREATE_SQ,
				       NVL_NVME_ADM_DELETE_SQ, NVL_NVME_ADM_DELETE_CQ };
	struct ut_io io;

	for (size_t i = 0; i < NVL_ARRAY_SIZE(opc); i++) {
		struct nvl_nvme_cmd cmd = ut_cmd(opc[i], 0);

		f->u.queue_op_status = 0;
		f->u.queue_op_pending = false;
		assert_int_equal(adm(f, &cmd, 0), 0);
		f->u.queue_op_status = NVL_NVME_DNR(NVL_NVME_SC_INVALID_QID);
		uint16_t st = adm(f, &cmd, 0);

		assert_int_equal(ut_sc(st), NVL_NVME_SC_INVALID_QID);
		assert_true(ut_dnr(st));
		/* the op completes the request itself later (whatever *status says) */
		f->u.queue_op_status = NVL_NVME_SC_INTERNAL;
		f->u.queue_op_pending = true;
		ut_nvme_start(&io, &f->u.c, 0, &cmd, NULL, 0);
		assert_int_equal(io.ndone, 0);
		assert_ptr_equal(f->u.last_queue_req, &io.req);
		nvl_nvme_req_complete(&io.req, 0);
		assert_int_equal(io.ndone, 1);
	}
	assert_int_equal(f->u.create_cq_calls, 3);
	assert_int_equal(f->u.create_sq_calls, 3);
	assert_int_equal(f->u.delete_sq_calls, 3);
	assert_int_equal(f->u.delete_cq_calls, 3);
	f->u.queue_op_pending = false;
	/* transports without PCIe-style queues: Invalid Opcode */
	f->u.c.queue_ops = NULL;
	for (size_t i = 0; i < NVL_ARRAY_SIZE(opc); i++) {
		struct nvl_nvme_cmd cmd = ut_cmd(opc[i], 0);

		assert_int_equal(ut_sc(adm(f, &cmd, 0)), NVL_NVME_SC_INVALID_OPCODE);
	}
}

static void
test_enable_and_fused(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_cmd cmd = ut_cmd_identify(NVL_NVME_CNS_CTRLR, 0);
	uint8_t data[512];
	uint16_t st;

	/* fused commands are refused (FUSES = 0), admin and I/O */
	cmd.flags = 1;
	assert_int_equal(ut_sc(adm(f, &cmd, 4096)), NVL_NVME_SC_INVALID_FIELD);
	cmd.flags = 2;
	assert_int_equal(ut_sc(adm(f, &cmd, 4096)), NVL_NVME_SC_INVALID_FIELD);
	struct nvl_nvme_cmd rd = ut_cmd_rw(NVL_NVME_IO_READ, 1, 0, 1);

	rd.flags = 1;
	assert_int_equal(ut_sc(ut_nvme_exec(&f->u.c, 1, &rd, data, 512)),
			 NVL_NVME_SC_INVALID_FIELD);
	/* before CSTS.RDY: only fabrics commands */
	f->u.c.csts = 0;
	cmd.flags = 0;
	st = adm(f, &cmd, 4096);
	assert_int_equal(ut_sc(st), NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
	assert_true(ut_dnr(st));
	rd.flags = 0;
	assert_int_equal(ut_sc(ut_nvme_exec(&f->u.c, 1, &rd, data, 512)),
			 NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
	struct nvl_nvme_cmd ka = ut_cmd(NVL_NVME_ADM_KEEP_ALIVE, 0);

	assert_int_equal(ut_sc(adm(f, &ka, 0)), NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
}

static uint16_t
prop(struct fx *f, uint8_t fctype, uint8_t attrib, uint32_t ofst, uint64_t value, uint64_t *out)
{
	struct nvl_nvme_cmd cmd = ut_cmd(NVL_NVME_ADM_FABRICS, 0);
	struct nvl_nvmf_property_cmd *p = (void *)&cmd;
	struct ut_io io;
	uint16_t st;

	p->fctype = fctype;
	p->attrib = attrib;
	p->ofst = ofst;
	p->value = value;
	st = ut_nvme_exec_io(&io, &f->u.c, 0, &cmd, NULL, 0);
	if (out)
		*out = io.req.cpl.cdw0 | ((uint64_t)io.req.cpl.cdw1 << 32);
	return st;
}

static void
test_fabrics_properties(void **state)
{
	struct fx *f = *state;
	uint64_t v;

	f->u.c.cc = 0;
	f->u.c.csts = 0;
	assert_int_equal(prop(f, NVL_NVMF_FCTYPE_PROPERTY_GET, 1, NVL_NVME_REG_CAP, 0, &v), 0);
	assert_int_equal(v & 0xffff, 1023);     /* MQES */
	assert_true(v & (1ull << 16));          /* CQR */
	assert_true(v & (1ull << 37));          /* NVM command set */
	assert_int_equal((v >> 48) & 0xf, 0);   /* MPSMIN 4 KiB */
	assert_int_equal(prop(f, NVL_NVMF_FCTYPE_PROPERTY_GET, 0, NVL_NVME_REG_CAP, 0, &v), 0);
	assert_int_equal(v >> 32, 0);
	assert_int_equal(prop(f, NVL_NVMF_FCTYPE_PROPERTY_GET, 0, NVL_NVME_REG_VS, 0, &v), 0);
	assert_int_equal(v, NVL_NVME_VS_1_3);
	assert_int_equal(ut_sc(prop(f, NVL_NVMF_FCTYPE_PROPERTY_GET, 0, 0x30, 0, NULL)),
			 NVL_NVME_SC_INVALID_FIELD);
	assert_int_equal(ut_sc(prop(f, NVL_NVMF_FCTYPE_PROPERTY_GET, 2, NVL_NVME_REG_VS, 0, NULL)),
			 NVL_NVME_SC_INVALID_FIELD);
	/* enabling with bad queue entry sizes: CFS and Invalid Field */
	assert_int_equal(ut_sc(prop(f, NVL_NVMF_FCTYPE_PROPERTY_SET, 0, NVL_NVME_REG_CC,
				    NVL_NVME_CC_EN | (7u << 16) | (4u << 20), NULL)),
			 NVL_NVME_SC_INVALID_FIELD);
	assert_true(f->u.c.csts & NVL_NVME_CSTS_CFS);
	assert_false(f->u.c.csts & NVL_NVME_CSTS_RDY);
	f->u.c.csts = 0;
	/* only CC is writable, only with 4 bytes */
	assert_int_equal(ut_sc(prop(f, NVL_NVMF_FCTYPE_PROPERTY_SET, 0, NVL_NVME_REG_CSTS, 1,
				    NULL)), NVL_NVME_SC_INVALID_FIELD);
	assert_int_equal(ut_sc(prop(f, NVL_NVMF_FCTYPE_PROPERTY_SET, 1, NVL_NVME_REG_CC, 1, NULL)),
			 NVL_NVME_SC_INVALID_FIELD);
	/* enable */
	assert_int_equal(prop(f, NVL_NVMF_FCTYPE_PROPERTY_SET, 0, NVL_NVME_REG_CC,
			      NVL_NVME_CC_EN | (6u << 16) | (4u << 20), NULL), 0);
	assert_int_equal(prop(f, NVL_NVMF_FCTYPE_PROPERTY_GET, 0, NVL_NVME_REG_CSTS, 0, &v), 0);
	assert_int_equal(v & NVL_NVME_CSTS_RDY, NVL_NVME_CSTS_RDY);
	struct nvl_nvme_cmd ka = ut_cmd(NVL_NVME_ADM_KEEP_ALIVE, 0);

	assert_int_equal(adm(f, &ka, 0), 0);
	/* shutdown: SHST complete, queues dropped */
	assert_int_equal(prop(f, NVL_NVMF_FCTYPE_PROPERTY_SET, 0, NVL_NVME_REG_CC,
			      NVL_NVME_CC_EN | (1u << 14) | (6u << 16) | (4u << 20), NULL), 0);
	assert_int_equal(f->u.c.csts & NVL_NVME_CSTS_SHST_MASK, NVL_NVME_CSTS_SHST_COMPLETE);
	assert_int_equal(f->u.reset_calls, 1);
	/* disable: not ready, features reset */
	assert_int_equal(prop(f, NVL_NVMF_FCTYPE_PROPERTY_SET, 0, NVL_NVME_REG_CC, 0, NULL), 0);
	assert_int_equal(f->u.c.csts & NVL_NVME_CSTS_RDY, 0);
	assert_int_equal(f->u.reset_calls, 2);
	assert_int_equal(ut_sc(adm(f, &ka, 0)), NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
	/* Connect on an established admin queue; other fabrics types */
	assert_int_equal(ut_sc(prop(f, NVL_NVMF_FCTYPE_CONNECT, 0, 0, 0, NULL)),
			 NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
	assert_int_equal(ut_sc(prop(f, NVL_NVMF_FCTYPE_DISCONNECT, 0, 0, 0, NULL)),
			 NVL_NVME_SC_INVALID_OPCODE);
	assert_int_equal(ut_sc(prop(f, 0x42, 0, 0, 0, NULL)), NVL_NVME_SC_INVALID_OPCODE);
}

static uint8_t
disc_pat(unsigned i)
{
	return (uint8_t)((i >> 2) ^ (i >> 10));
}

static int
disc_log(struct nvl_nvme_ctrlr *c, void **out, size_t *len)
{
	uint8_t *p = malloc(3072);

	ut_ctrlr_of(c)->disc_calls++;
	for (unsigned i = 0; i < 3072; i++)
		p[i] = disc_pat(i);
	*out = p;
	*len = 3072;
	return 0;
}

static void
test_discovery_controller(void **state)
{
	struct fx *f = *state;
	static const struct nvl_nvme_ctrlr_ops dops = {
		.get_ns = ut_get_ns,
		.next_nsid = ut_next_nsid,
		.discovery_log = disc_log,
	};
	struct nvl_nvme_cmd cmd;
	uint8_t data[512];

	f->u.c.type = NVL_NVME_CNTRLTYPE_DISCOVERY;
	f->u.c.ops = &dops;
	cmd = ut_cmd_identify(NVL_NVME_CNS_CTRLR, 0);
	assert_int_equal(adm(f, &cmd, 4096), 0);
	assert_int_equal(((struct nvl_nvme_id_ctrl *)f->buf)->cntrltype,
			 NVL_NVME_CNTRLTYPE_DISCOVERY);
	assert_int_equal(((struct nvl_nvme_id_ctrl *)f->buf)->oaes, NVL_NVME_OAES_DISC_LOG);
	assert_int_equal(((struct nvl_nvme_id_ctrl *)f->buf)->oncs, 0);
	/* no volatile write cache, so no feature to get or set (Base 5.27.1.4) */
	assert_int_equal(((struct nvl_nvme_id_ctrl *)f->buf)->vwc, 0);
	cmd = ut_cmd_feat(NVL_NVME_ADM_GET_FEATURES, NVL_NVME_FEAT_VOLATILE_WRITE_CACHE, 0);
	assert_int_equal(ut_sc(adm(f, &cmd, 0)), NVL_NVME_SC_INVALID_FIELD);
	cmd = ut_cmd_feat(NVL_NVME_ADM_SET_FEATURES, NVL_NVME_FEAT_VOLATILE_WRITE_CACHE, 0);
	assert_int_equal(ut_sc(adm(f, &cmd, 0)), NVL_NVME_SC_INVALID_FIELD);
	cmd = ut_cmd_identify(NVL_NVME_CNS_ACTIVE_NS_LIST, 0);
	assert_int_equal(adm(f, &cmd, 4096), 0);
	assert_true(all_zero(f->buf, 4096));
	/* the discovery log with an offset */
	cmd = ut_cmd_get_log(NVL_NVME_LOG_DISCOVERY, 0, 1024, 2048, false);
	assert_int_equal(adm(f, &cmd, 1024), 0);
	for (unsigned i = 0; i < 1024; i++)
		assert_int_equal(f->buf[i], disc_pat(2048 + i));
	assert_int_equal(f->u.disc_calls, 1);
	cmd = ut_cmd_get_log(NVL_NVME_LOG_DISCOVERY, 0, 64, 3076, false);
	assert_int_equal(ut_sc(adm(f, &cmd, 64)), NVL_NVME_SC_INVALID_FIELD);
	/* the subset only */
	cmd = ut_cmd(NVL_NVME_ADM_CREATE_CQ, 0);
	assert_int_equal(ut_sc(adm(f, &cmd, 0)), NVL_NVME_SC_INVALID_OPCODE);
	assert_int_equal(f->u.create_cq_calls, 0);
	cmd = ut_cmd(NVL_NVME_ADM_ABORT, 0);
	assert_int_equal(ut_sc(adm(f, &cmd, 0)), NVL_NVME_SC_INVALID_OPCODE);
	cmd = ut_cmd(NVL_NVME_ADM_KEEP_ALIVE, 0);
	assert_int_equal(adm(f, &cmd, 0), 0);
	/* no I/O on a discovery controller */
	cmd = ut_cmd_rw(NVL_NVME_IO_READ, 1, 0, 1);
	assert_int_equal(ut_sc(ut_nvme_exec(&f->u.c, 1, &cmd, data, 512)),
			 NVL_NVME_SC_INVALID_OPCODE);
}

/* ---- transfer sizing ---------------------------------------------------------- */

static void
test_req_xfer(void **state)
{
	struct fx *f = *state;
	struct {
		uint16_t qid;
		uint8_t opc;
		uint32_t nsid, cdw10, cdw11, cdw12;
		uint16_t status;
		uint32_t len;
		uint8_t dir;
	} t[] = {
		/* admin */
		{ 0, NVL_NVME_ADM_IDENTIFY, 0, 1, 0, 0, 0, 4096, NVL_NVME_XFER_C2H },
		{ 0, NVL_NVME_ADM_GET_LOG_PAGE, 0, 0x007f0002, 0, 0, 0, 512, NVL_NVME_XFER_C2H },
		{ 0, NVL_NVME_ADM_GET_LOG_PAGE, 0, 0x00000001, 0, 0, 0, 4, NVL_NVME_XFER_C2H },
		{ 0, NVL_NVME_ADM_GET_LOG_PAGE, 0, 0xffff0001, 0x000f, 0, 0, 4u << 20,
		  NVL_NVME_XFER_C2H },
		{ 0, NVL_NVME_ADM_GET_LOG_PAGE, 0, 0x00000001, 0x0010, 0, 0x8002, 0, 0 },
		{ 0, NVL_NVME_ADM_GET_LOG_PAGE, 0, 0xffff0001, 0xffff, 0, 0x8002, 0, 0 },
		{ 0, NVL_NVME_ADM_GET_FEATURES, 0, 0x81, 1, 0, 0, 16, NVL_NVME_XFER_C2H },
		{ 0, NVL_NVME_ADM_GET_FEATURES, 0, 0x07, 1, 0, 0, 0, 0 },
		{ 0, NVL_NVME_ADM_SET_FEATURES, 0, 0x81, 0, 0, 0, 8, NVL_NVME_XFER_H2C },
		{ 0, NVL_NVME_ADM_SET_FEATURES, 0, 0x07, 0, 0, 0, 0, 0 },
		{ 0, NVL_NVME_ADM_ASYNC_EVENT, 0, 0, 0, 0, 0, 0, 0 },
		{ 0, NVL_NVME_ADM_KEEP_ALIVE, 0, 0, 0, 0, 0, 0, 0 },
		{ 0, NVL_NVME_ADM_CREATE_SQ, 0, 0, 0, 0, 0, 0, 0 },
		{ 0, NVL_NVME_ADM_ABORT, 0, 0, 0, 0, 0, 0, 0 },
		/* opcode 0x02 on the admin queue is Get Log Page, not Read */
		{ 0, NVL_NVME_IO_READ, 0, 0x10002, 0, 0, 0, 8, NVL_NVME_XFER_C2H },
		/* I/O on ns 1 (512-byte blocks) and ns 2 (4 KiB blocks) */
		{ 1, NVL_NVME_IO_READ, 1, 0, 0, 7, 0, 4096, NVL_NVME_XFER_C2H },
		{ 1, NVL_NVME_IO_WRITE, 1, 0, 0, 0, 0, 512, NVL_NVME_XFER_H2C },
		{ 1, NVL_NVME_IO_COMPARE, 1, 0, 0, 1, 0, 1024, NVL_NVME_XFER_H2C },
		{ 1, NVL_NVME_IO_READ, 1, 0, 0, 1023, 0, 512 * 1024, NVL_NVME_XFER_C2H },
		{ 1, NVL_NVME_IO_READ, 1, 0, 0, 1024, 0x8002, 0, 0 },
		{ 1, NVL_NVME_IO_WRITE, 2, 0, 0, 127, 0, 512 * 1024, NVL_NVME_XFER_H2C },
		{ 1, NVL_NVME_IO_WRITE, 2, 0, 0, 128, 0x8002, 0, 0 },
		{ 1, NVL_NVME_IO_WRITE, 2, 0, 0, 0xffff | NVL_NVME_RW_FUA, 0x8002, 0, 0 },
		{ 1, NVL_NVME_IO_READ, 9, 0, 0, 7, 0, 0, 0 }, /* unknown ns: fails later */
		{ 1, NVL_NVME_IO_FLUSH, 1, 0, 0, 0, 0, 0, 0 },
		{ 1, NVL_NVME_IO_WRITE_ZEROES, 1, 0, 0, 0xffff, 0, 0, 0 },
		{ 1, NVL_NVME_IO_DSM, 1, 0, 4, 0, 0, 16, NVL_NVME_XFER_H2C },
		{ 1, NVL_NVME_IO_DSM, 1, 255, 4, 0, 0, 4096, NVL_NVME_XFER_H2C },
		{ 1, NVL_NVME_IO_RESV_REGISTER, 1, 0, 0, 0, 0, 16, NVL_NVME_XFER_H2C },
		{ 1, NVL_NVME_IO_RESV_ACQUIRE, 1, 0, 0, 0, 0, 16, NVL_NVME_XFER_H2C },
		{ 1, NVL_NVME_IO_RESV_RELEASE, 1, 0, 0, 0, 0, 8, NVL_NVME_XFER_H2C },
		{ 1, NVL_NVME_IO_RESV_REPORT, 1, 1023, 1, 0, 0, 4096, NVL_NVME_XFER_C2H },
		{ 1, NVL_NVME_IO_RESV_REPORT, 1, 0xffffffff, 1, 0, 0x8002, 0, 0 },
		{ 1, NVL_NVME_IO_RESV_REPORT, 1, 1u << 18, 1, 0, 0x8002, 0, 0 },
		{ 1, 0x99, 1, 0, 0, 0, 0, 0, 0 },
	};

	for (size_t i = 0; i < NVL_ARRAY_SIZE(t); i++) {
		struct nvl_nvme_req req;
		uint32_t len = 123;
		uint8_t dir = 99;

		memset(&req, 0, sizeof(req));
		req.ctrlr = &f->u.c;
		req.qid = t[i].qid;
		req.cmd.opc = t[i].opc;
		req.cmd.nsid = t[i].nsid;
		req.cmd.cdw10 = t[i].cdw10;
		req.cmd.cdw11 = t[i].cdw11;
		req.cmd.cdw12 = t[i].cdw12;
		assert_int_equal(nvl_nvme_req_xfer(&req, &len, &dir), t[i].status);
		if (t[i].status == 0) {
			assert_int_equal(len, t[i].len);
			assert_int_equal(dir, t[i].dir);
		}
	}
	/* fabrics Connect carries 1 KiB of host data; other fabrics commands none */
	struct nvl_nvme_req req;
	uint32_t len;
	uint8_t dir;

	memset(&req, 0, sizeof(req));
	req.ctrlr = &f->u.c;
	req.cmd.opc = NVL_NVME_ADM_FABRICS;
	((struct nvl_nvmf_cmd *)&req.cmd)->fctype = NVL_NVMF_FCTYPE_CONNECT;
	assert_int_equal(nvl_nvme_req_xfer(&req, &len, &dir), 0);
	assert_int_equal(len, 1024);
	assert_int_equal(dir, NVL_NVME_XFER_H2C);
	((struct nvl_nvmf_cmd *)&req.cmd)->fctype = NVL_NVMF_FCTYPE_PROPERTY_GET;
	assert_int_equal(nvl_nvme_req_xfer(&req, &len, &dir), 0);
	assert_int_equal(len, 0);
}

static void
test_status_from_errno(void **state)
{
	static const struct {
		int rc;
		uint16_t sc;
	} t[] = {
		{ 0, 0 },
		{ -EINVAL, 0x8000 | NVL_NVME_SC_INVALID_FIELD },
		{ -ERANGE, 0x8000 | NVL_NVME_SC_LBA_OUT_OF_RANGE },
		{ -ENOSPC, 0x8000 | NVL_NVME_SC_CAPACITY_EXCEEDED },
		{ -EROFS, 0x8000 | NVL_NVME_SC_NS_WRITE_PROTECTED },
		{ -EBADF, 0x8000 | NVL_NVME_SC_NS_WRITE_PROTECTED },
		{ -EOPNOTSUPP, 0x8000 | NVL_NVME_SC_INVALID_OPCODE },
		{ -ENOMEM, NVL_NVME_SC_INTERNAL },
		{ -EIO, NVL_NVME_SC_DATA_TRANSFER_ERROR },
		{ -ECANCELED, NVL_NVME_SC_ABORT_REQUESTED },
		{ -EXDEV, NVL_NVME_SC_INTERNAL },
	};

	(void)state;
	for (size_t i = 0; i < NVL_ARRAY_SIZE(t); i++)
		assert_int_equal(nvl_nvme_status_from_errno(t[i].rc), t[i].sc);
	assert_string_equal(nvl_nvme_status_str(NVL_NVME_SC_RESERVATION_CONFLICT),
			    "reservation conflict");
	assert_string_equal(nvl_nvme_status_str(0x7ff), "error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_identify_ctrlr),
		T(test_identify_ns),
		T(test_identify_active_list),
		T(test_identify_ns_descs),
		T(test_identify_cmd_set_and_invalid_cns),
		T(test_log_error_newest_first),
		T(test_log_smart_counters),
		T(test_log_offsets_and_lengths),
		T(test_log_changed_ns),
		T(test_log_resv_notification),
		T(test_aer_ns_changed),
		T(test_aer_resv_and_error),
		T(test_features_capabilities),
		T(test_features_values),
		T(test_features_num_queues),
		T(test_features_kato),
		T(test_features_host_identifier),
		T(test_features_ptpl),
		T(test_abort_keepalive_unknown),
		T(test_queue_ops),
		T(test_enable_and_fused),
		T(test_fabrics_properties),
		T(test_discovery_controller),
		T(test_req_xfer),
		T(test_status_from_errno),
#undef T
	};

	nvl_log_set_level(0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
