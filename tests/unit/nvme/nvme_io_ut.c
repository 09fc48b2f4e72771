/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the NVM command set I/O commands (src/nvme/nvme_io.c): Read,
 * Write (FUA), Flush (one namespace and broadcast), Write Zeroes (DEAC),
 * Dataset Management, Compare, range checks, read-only namespaces, buffers
 * shorter or longer than the transfer, bdev errors through an
 * error-injecting backend, MDTS (derivation and the transfer check), and the
 * namespace in-flight accounting. RAM
 * bdevs complete inline; single-threaded.
 */
#include "nvme/nvme.c"
#include "nvme/nvme_admin.c"
#include "nvme/nvme_io.c"
#include "nvme/nvme_resv.c"

#include "common/nvme_ut_helpers.h"

/* ---- an error-injecting backend ------------------------------------------ */

struct err_bdev {
	struct nvl_bdev bdev;
	int submit_rc;          /* < 0: submit fails */
	int complete_status;    /* completion status when submit succeeds */
	unsigned submits;
	uint8_t last_type;
};

static int
err_submit(struct nvl_bdev *b, struct nvl_bdev_io *io)
{
	struct err_bdev *e = container_of(b, struct err_bdev, bdev);

	e->submits++;
	e->last_type = io->type;
	if (e->submit_rc < 0)
		return e->submit_rc;
	if (io->type == NVL_BDEV_IO_READ)
		for (int i = 0; i < io->iovcnt; i++)
			memset(io->iov[i].iov_base, 0x5a, io->iov[i].iov_len);
	nvl_bdev_io_complete(io, e->complete_status);
	return 0;
}

static void
err_destroy(struct nvl_bdev *b)
{
	(void)b;
}

static const struct nvl_bdev_ops err_ops = {
	.name = "err",
	.submit = err_submit,
	.destroy = err_destroy,
};

/* ---- fixture --------------------------------------------------------------- */

#define NS1_BLOCKS 1024
#define NS3_BLOCKS (65536 + 8)

struct fx {
	struct ut_ns ns1, ns2, ns3, ns4;
	struct err_bdev eb;
	struct nvl_nvme_ns *tab[UT_NVME_MAX_NS];
	struct ut_ctrlr u;
	uint8_t buf[64 * 1024];
	uint8_t pat[64 * 1024];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	ut_ns_create(&f->ns1, "io_ns1", 1, NS1_BLOCKS, 512, false, NULL);
	ut_ns_create(&f->ns2, "io_ns2", 2, 64, 4096, true, NULL);
	/* ns 4 over the error-injecting backend */
	nvl_strlcpy(f->eb.bdev.name, "io_err", sizeof(f->eb.bdev.name));
	f->eb.bdev.ops = &err_ops;
	f->eb.bdev.block_size = 512;
	f->eb.bdev.num_blocks = 128;
	f->eb.bdev.io_types = 0x1f;
	assert_int_equal(nvl_bdev_register(&f->eb.bdev), 0);
	f->ns4.bdev = &f->eb.bdev;
	assert_int_equal(nvl_bdev_open("io_err", true, "ut", &f->ns4.desc), 0);
	assert_int_equal(nvl_nvme_ns_init(&f->ns4.ns, 4, f->ns4.desc), 0);
	f->ns4.live = true;
	f->tab[0] = &f->ns1.ns;
	f->tab[1] = &f->ns2.ns;
	f->tab[3] = &f->ns4.ns;
	ut_ctrlr_init(&f->u, f->tab, 0xb1, 1);
	for (size_t i = 0; i < sizeof(f->pat); i++)
		f->pat[i] = (uint8_t)(i * 131 + (i >> 9));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	/* every command released its namespace */
	assert_int_equal(f->ns1.ns.inflight, 0);
	assert_int_equal(f->ns2.ns.inflight, 0);
	assert_int_equal(f->ns4.ns.inflight, 0);
	ut_ctrlr_fini(&f->u);
	ut_ns_destroy(&f->ns1);
	ut_ns_destroy(&f->ns2);
	ut_ns_destroy(&f->ns3);
	ut_ns_destroy(&f->ns4);
	free(f);
	return 0;
}

static uint16_t
io(struct fx *f, const struct nvl_nvme_cmd *cmd, void *buf, uint32_t len)
{
	return ut_nvme_exec(&f->u.c, 1, cmd, buf, len);
}

static uint16_t
rw(struct fx *f, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, void *buf,
   uint32_t len)
{
	struct nvl_nvme_cmd cmd = ut_cmd_rw(opc, nsid, slba, nlb);

	return io(f, &cmd, buf, len);
}

/* ---- Read / Write ---------------------------------------------------------- */

static void
test_read_write_roundtrip(void **state)
{
	struct fx *f = *state;
	struct ut_io x;
	struct nvl_nvme_cmd cmd;

	assert_int_equal(rw(f, NVL_NVME_IO_WRITE, 1, 10, 8, f->pat, 4096), 0);
	memset(f->buf, 0, 4096);
	cmd = ut_cmd_rw(NVL_NVME_IO_READ, 1, 10, 8);
	assert_int_equal(ut_nvme_exec_io(&x, &f->u.c, 1, &cmd, f->buf, 4096), 0);
	assert_int_equal(x.req.xfer_len, 4096);
	assert_memory_equal(f->buf, f->pat, 4096);
	/* a block in the middle */
	assert_int_equal(rw(f, NVL_NVME_IO_READ, 1, 13, 1, f->buf, 512), 0);
	assert_memory_equal(f->buf, f->pat + 3 * 512, 512);
	/* the last block of the namespace */
	assert_int_equal(rw(f, NVL_NVME_IO_WRITE, 1, NS1_BLOCKS - 1, 1, f->pat, 512), 0);
	assert_int_equal(rw(f, NVL_NVME_IO_READ, 1, NS1_BLOCKS - 1, 1, f->buf, 512), 0);
	assert_memory_equal(f->buf, f->pat, 512);
	/* the read-only namespace reads */
	assert_int_equal(rw(f, NVL_NVME_IO_READ, 2, 63, 1, f->buf, 4096), 0);
}

static void
test_lba_out_of_range(void **state)
{
	struct fx *f = *state;
	static const struct {
		uint64_t slba;
		uint32_t nlb;
		bool ok;
	} t[] = {
		{ 0, 1, true },
		{ NS1_BLOCKS - 1, 1, true },
		{ NS1_BLOCKS - 8, 8, true },
		{ NS1_BLOCKS, 1, false },
		{ NS1_BLOCKS - 1, 2, false },
		{ NS1_BLOCKS - 7, 8, false },
		{ 0, NS1_BLOCKS + 1, false },
		{ 0x100000000ULL, 1, false },     /* high dword of SLBA */
		{ UINT64_MAX, 1, false },
		{ UINT64_MAX - 1, 2, false },     /* slba + nlb wraps */
		{ UINT64_MAX - 65534, 65536, false },
		{ 1, 65536, false },
	};
	uint8_t *big = calloc(65536, 512);

	for (size_t i = 0; i < NVL_ARRAY_SIZE(t); i++) {
		static const uint8_t opc[] = { NVL_NVME_IO_READ, NVL_NVME_IO_WRITE,
					       NVL_NVME_IO_COMPARE, NVL_NVME_IO_WRITE_ZEROES };

		for (size_t o = 0; o < NVL_ARRAY_SIZE(opc); o++) {
			uint16_t st = rw(f, opc[o], 1, t[i].slba, t[i].nlb, big,
					 t[i].nlb * 512u);

			if (t[i].ok) {
				assert_true(ut_sc(st) == 0 ||
					    ut_sc(st) == NVL_NVME_SC_COMPARE_FAILURE);
			} else {
				assert_int_equal(ut_sc(st), NVL_NVME_SC_LBA_OUT_OF_RANGE);
				assert_true(ut_dnr(st));
			}
		}
	}
	/* NLB at its maximum (0xffff = 65536 blocks) on a large enough namespace */
	ut_ns_create(&f->ns3, "io_ns3", 3, NS3_BLOCKS, 512, false, NULL);
	f->tab[2] = &f->ns3.ns;
	memset(big, 0x77, 65536 * 512u);
	assert_int_equal(rw(f, NVL_NVME_IO_WRITE, 3, 8, 65536, big, 65536 * 512u), 0);
	assert_int_equal(ut_sc(rw(f, NVL_NVME_IO_WRITE, 3, 9, 65536, big, 65536 * 512u)),
			 NVL_NVME_SC_LBA_OUT_OF_RANGE);
	memset(big, 0, 65536 * 512u);
	assert_int_equal(rw(f, NVL_NVME_IO_READ, 3, 8, 65536, big, 65536 * 512u), 0);
	assert_int_equal(big[0], 0x77);
	assert_int_equal(big[65536 * 512u - 1], 0x77);
	assert_int_equal(rw(f, NVL_NVME_IO_READ, 3, 7, 1, big, 512), 0);
	assert_int_equal(big[0], 0);
	f->tab[2] = NULL;
	assert_int_equal(f->ns3.ns.inflight, 0);
	free(big);
}

static void
test_buffer_lengths(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_cmd cmd;
	struct ut_io x;
	uint16_t st;

	/* a buffer shorter than the transfer */
	st = rw(f, NVL_NVME_IO_WRITE, 1, 0, 2, f->pat, 1023);
	assert_int_equal(ut_sc(st), NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
	assert_true(ut_dnr(st));
	st = rw(f, NVL_NVME_IO_READ, 1, 0, 2, f->buf, 0);
	assert_int_equal(ut_sc(st), NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
	/* a longer one spread over three iovecs: only the prefix moves */
	uint8_t a[512], b[256], c[1024];

	memset(c, 0xee, sizeof(c));
	memcpy(a, f->pat, 512);
	memcpy(b, f->pat + 512, 256);
	memcpy(c, f->pat + 768, 256);
	cmd = ut_cmd_rw(NVL_NVME_IO_WRITE, 1, 100, 2);
	memset(&x, 0, sizeof(x));
	x.req.cmd = cmd;
	x.req.ctrlr = &f->u.c;
	x.req.qid = 1;
	x.req.iov = x.req.iov_inline;
	x.req.iov_inline[0] = (struct iovec){ a, sizeof(a) };
	x.req.iov_inline[1] = (struct iovec){ b, sizeof(b) };
	x.req.iov_inline[2] = (struct iovec){ c, sizeof(c) };
	x.req.iovcnt = 3;
	x.req.data_len = sizeof(a) + sizeof(b) + sizeof(c);
	x.req.done = ut_io_done;
	nvl_nvme_execute(&x.req);
	assert_int_equal(x.ndone, 1);
	assert_int_equal(x.req.cpl.status, 0);
	assert_int_equal(x.req.bio.length, 1024);
	assert_int_equal(rw(f, NVL_NVME_IO_READ, 1, 100, 3, f->buf, 1536), 0);
	assert_memory_equal(f->buf, f->pat, 1024);
	/* the block after was not written from c's tail */
	assert_int_not_equal(f->buf[1024], 0xee);
	/* a read into a larger buffer fills only what the command moves */
	memset(f->buf, 0xab, 2048);
	cmd = ut_cmd_rw(NVL_NVME_IO_READ, 1, 100, 1);
	assert_int_equal(ut_nvme_exec_io(&x, &f->u.c, 1, &cmd, f->buf, 2048), 0);
	assert_int_equal(x.req.xfer_len, 512);
	assert_memory_equal(f->buf, f->pat, 512);
	assert_int_equal(f->buf[512], 0xab);
}

static void
test_read_only_namespace(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_cmd cmd;
	uint16_t st;

	st = rw(f, NVL_NVME_IO_WRITE, 2, 0, 1, f->pat, 4096);
	assert_int_equal(ut_sc(st), NVL_NVME_SC_NS_WRITE_PROTECTED);
	assert_true(ut_dnr(st));
	st = rw(f, NVL_NVME_IO_WRITE_ZEROES, 2, 0, 1, NULL, 0);
	assert_int_equal(ut_sc(st), NVL_NVME_SC_NS_WRITE_PROTECTED);
	/* deallocate is a write; hints alone are not */
	struct nvl_nvme_dsm_range r = { .nlb = 1, .slba = 0 };

	cmd = ut_cmd(NVL_NVME_IO_DSM, 2);
	cmd.cdw11 = NVL_NVME_DSM_AD;
	assert_int_equal(ut_sc(io(f, &cmd, &r, sizeof(r))), NVL_NVME_SC_NS_WRITE_PROTECTED);
	cmd.cdw11 = NVL_NVME_DSM_IDR | NVL_NVME_DSM_IDW;
	assert_int_equal(io(f, &cmd, &r, sizeof(r)), 0);
	/* compare only reads */
	assert_int_equal(rw(f, NVL_NVME_IO_READ, 2, 5, 1, f->buf, 4096), 0);
	assert_int_equal(rw(f, NVL_NVME_IO_COMPARE, 2, 5, 1, f->buf, 4096), 0);
	/* flush of a read-only namespace is harmless */
	cmd = ut_cmd(NVL_NVME_IO_FLUSH, 2);
	assert_int_equal(io(f, &cmd, NULL, 0), 0);
}

static void
test_fua_and_flags(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_cmd cmd;
	struct ut_io x;

	cmd = ut_cmd_rw(NVL_NVME_IO_WRITE, 1, 0, 1);
	cmd.cdw12 |= NVL_NVME_RW_FUA;
	assert_int_equal(ut_nvme_exec_io(&x, &f->u.c, 1, &cmd, f->pat, 512), 0);
	assert_int_equal(x.req.bio.type, NVL_BDEV_IO_WRITE);
	assert_true(x.req.bio.flags & NVL_BDEV_IO_FUA);
	cmd = ut_cmd_rw(NVL_NVME_IO_WRITE, 1, 0, 1);
	assert_int_equal(ut_nvme_exec_io(&x, &f->u.c, 1, &cmd, f->pat, 512), 0);
	assert_false(x.req.bio.flags & NVL_BDEV_IO_FUA);
	/* FUA on a read is harmless */
	cmd = ut_cmd_rw(NVL_NVME_IO_READ, 1, 0, 1);
	cmd.cdw12 |= NVL_NVME_RW_FUA | NVL_NVME_RW_LR;
	assert_int_equal(ut_nvme_exec_io(&x, &f->u.c, 1, &cmd, f->buf, 512), 0);
	/* Write Zeroes: DEAC may punch holes, without it the range stays allocated */
	cmd = ut_cmd_rw(NVL_NVME_IO_WRITE_ZEROES, 1, 0, 4);
	assert_int_equal(ut_nvme_exec_io(&x, &f->u.c, 1, &cmd, NULL, 0), 0);
	assert_int_equal(x.req.bio.type, NVL_BDEV_IO_WRITE_ZEROES);
	assert_int_equal(x.req.bio.flags, NVL_BDEV_IO_NO_HOLE);
	assert_int_equal(x.req.bio.offset, 0);
	assert_int_equal(x.req.bio.length, 2048);
	cmd.cdw12 |= NVL_NVME_WZ_DEAC | NVL_NVME_RW_FUA;
	assert_int_equal(ut_nvme_exec_io(&x, &f->u.c, 1, &cmd, NULL, 0), 0);
	assert_int_equal(x.req.bio.flags, NVL_BDEV_IO_FUA);
}

/* Set Features Volatile Write Cache (WCE) on the admin queue; returns the status. */
static uint16_t
set_wce(struct fx *f, bool on)
{
	struct nvl_nvme_cmd cmd = ut_cmd_feat(NVL_NVME_ADM_SET_FEATURES,
					      NVL_NVME_FEAT_VOLATILE_WRITE_CACHE,
					      on ? NVL_NVME_FEAT_VWC_WCE : 0);

	return ut_nvme_exec(&f->u.c, 0, &cmd, NULL, 0);
}

static void
test_write_cache_disabled(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_cmd cmd;
	struct ut_io x;

	/* with the cache disabled every write must be durable at completion */
	assert_int_equal(set_wce(f, false), 0);
	cmd = ut_cmd_rw(NVL_NVME_IO_WRITE, 1, 0, 1);
	assert_int_equal(ut_nvme_exec_io(&x, &f->u.c, 1, &cmd, f->pat, 512), 0);
	assert_int_equal(x.req.bio.type, NVL_BDEV_IO_WRITE);
	assert_true(x.req.bio.flags & NVL_BDEV_IO_FUA);
	/* Write Zeroes too, with or without DEAC, and FUA given explicitly stays FUA */
	cmd = ut_cmd_rw(NVL_NVME_IO_WRITE_ZEROES, 1, 0, 4);
	assert_int_equal(ut_nvme_exec_io(&x, &f->u.c, 1, &cmd, NULL, 0), 0);
	assert_int_equal(x.req.bio.flags, NVL_BDEV_IO_NO_HOLE | NVL_BDEV_IO_FUA);
	cmd.cdw12 |= NVL_NVME_WZ_DEAC;
	assert_int_equal(ut_nvme_exec_io(&x, &f->u.c, 1, &cmd, NULL, 0), 0);
	assert_int_equal(x.req.bio.flags, NVL_BDEV_IO_FUA);
	cmd = ut_cmd_rw(NVL_NVME_IO_WRITE, 1, 0, 1);
	cmd.cdw12 |= NVL_NVME_RW_FUA;
	assert_int_equal(ut_nvme_exec_io(&x, &f->u.c, 1, &cmd, f->pat, 512), 0);
	assert_true(x.req.bio.flags & NVL_BDEV_IO_FUA);
	/* reads are not writes: no FUA forced on them */
	cmd = ut_cmd_rw(NVL_NVME_IO_READ, 1, 0, 1);
	assert_int_equal(ut_nvme_exec_io(&x, &f->u.c, 1, &cmd, f->buf, 512), 0);
	assert_int_equal(x.req.bio.type, NVL_BDEV_IO_READ);
	assert_false(x.req.bio.flags & NVL_BDEV_IO_FUA);
	assert_memory_equal(f->buf, f->pat, 512);
	/* cache enabled again: writes go back to the host's choice */
	assert_int_equal(set_wce(f, true), 0);
	cmd = ut_cmd_rw(NVL_NVME_IO_WRITE, 1, 0, 1);
	assert_int_equal(ut_nvme_exec_io(&x, &f->u.c, 1, &cmd, f->pat, 512), 0);
	assert_false(x.req.bio.flags & NVL_BDEV_IO_FUA);
	cmd = ut_cmd_rw(NVL_NVME_IO_WRITE_ZEROES, 1, 0, 4);
	assert_int_equal(ut_nvme_exec_io(&x, &f->u.c, 1, &cmd, NULL, 0), 0);
	assert_int_equal(x.req.bio.flags, NVL_BDEV_IO_NO_HOLE);
}

static void
test_flush(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_cmd cmd;
	unsigned before = f->eb.submits;
	uint16_t st;

	cmd = ut_cmd(NVL_NVME_IO_FLUSH, 1);
	assert_int_equal(io(f, &cmd, NULL, 0), 0);
	/* nsid 0 and inactive nsids */
	static const uint32_t bad[] = { 0, 3, UT_NVME_MAX_NS + 1, 0xfffffffe };
	for (size_t i = 0; i < NVL_ARRAY_SIZE(bad); i++) {
		cmd = ut_cmd(NVL_NVME_IO_FLUSH, bad[i]);
		st = io(f, &cmd, NULL, 0);
		assert_int_equal(ut_sc(st), NVL_NVME_SC_INVALID_NAMESPACE);
		assert_true(ut_dnr(st));
	}
	/* broadcast: every active namespace is flushed */
	cmd = ut_cmd(NVL_NVME_IO_FLUSH, NVL_NVME_NSID_ALL);
	assert_int_equal(io(f, &cmd, NULL, 0), 0);
	assert_int_equal(f->eb.submits, before + 1);
	assert_int_equal(f->eb.last_type, NVL_BDEV_IO_FLUSH);
	/* one failing namespace fails the broadcast flush */
	f->eb.complete_status = -EIO;
	st = io(f, &cmd, NULL, 0);
	assert_int_equal(ut_sc(st), NVL_NVME_SC_DATA_TRANSFER_ERROR);
	f->eb.complete_status = 0;
	f->eb.submit_rc = -ENOMEM;
	st = io(f, &cmd, NULL, 0);
	assert_int_equal(ut_sc(st), NVL_NVME_SC_INTERNAL);
	assert_false(ut_dnr(st));
	f->eb.submit_rc = 0;
	/* a controller with no namespace at all */
	struct nvl_nvme_ns *none[UT_NVME_MAX_NS] = { 0 };

	f->u.ns = none;
	assert_int_equal(io(f, &cmd, NULL, 0), 0);
	f->u.ns = f->tab;
}

static void
test_write_zeroes(void **state)
{
	struct fx *f = *state;

	assert_int_equal(rw(f, NVL_NVME_IO_WRITE, 1, 0, 8, f->pat, 4096), 0);
	assert_int_equal(rw(f, NVL_NVME_IO_WRITE_ZEROES, 1, 2, 3, NULL, 0), 0);
	assert_int_equal(rw(f, NVL_NVME_IO_READ, 1, 0, 8, f->buf, 4096), 0);
	assert_memory_equal(f->buf, f->pat, 1024);
	for (int i = 1024; i < 2560; i++)
		assert_int_equal(f->buf[i], 0);
	assert_memory_equal(f->buf + 2560, f->pat + 2560, 4096 - 2560);
	/* whole namespace, nlb at its maximum beyond the end */
	assert_int_equal(rw(f, NVL_NVME_IO_WRITE_ZEROES, 1, 0, NS1_BLOCKS, NULL, 0), 0);
	assert_int_equal(ut_sc(rw(f, NVL_NVME_IO_WRITE_ZEROES, 1, 0, 65536, NULL, 0)),
			 NVL_NVME_SC_LBA_OUT_OF_RANGE);
}

static uint16_t
dsm(struct fx *f, uint32_t nsid, uint32_t attr, const struct nvl_nvme_dsm_range *r, uint32_t nr,
    uint32_t len)
{
	struct nvl_nvme_cmd cmd = ut_cmd(NVL_NVME_IO_DSM, nsid);

	cmd.cdw10 = nr - 1;
	cmd.cdw11 = attr;
	return io(f, &cmd, (void *)r, len);
}

static void
test_dsm(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_dsm_range r[256];

	assert_int_equal(rw(f, NVL_NVME_IO_WRITE, 1, 0, 32, f->pat, 16384), 0);
	memset(r, 0, sizeof(r));
	r[0] = (struct nvl_nvme_dsm_range){ .nlb = 2, .slba = 0 };
	r[1] = (struct nvl_nvme_dsm_range){ .nlb = 0, .slba = 5 };  /* empty range: nothing */
	r[2] = (struct nvl_nvme_dsm_range){ .nlb = 1, .slba = 10, .attributes = 0xff };
	assert_int_equal(dsm(f, 1, NVL_NVME_DSM_AD, r, 3, 3 * 16), 0);
	assert_int_equal(rw(f, NVL_NVME_IO_READ, 1, 0, 32, f->buf, 16384), 0);
	for (int i = 0; i < 1024; i++)
		assert_int_equal(f->buf[i], 0); /* deallocated blocks read as zeroes (DLFEAT) */
	assert_memory_equal(f->buf + 1024, f->pat + 1024, 10 * 512 - 1024);
	for (int i = 5120; i < 5632; i++)
		assert_int_equal(f->buf[i], 0);
	assert_memory_equal(f->buf + 5632, f->pat + 5632, 16384 - 5632);

	/* one invalid range fails the command before anything is deallocated */
	assert_int_equal(rw(f, NVL_NVME_IO_WRITE, 1, 0, 32, f->pat, 16384), 0);
	r[0] = (struct nvl_nvme_dsm_range){ .nlb = 2, .slba = 0 };
	r[1] = (struct nvl_nvme_dsm_range){ .nlb = 2, .slba = NS1_BLOCKS - 1 };
	uint16_t st = dsm(f, 1, NVL_NVME_DSM_AD, r, 2, 32);

	assert_int_equal(ut_sc(st), NVL_NVME_SC_LBA_OUT_OF_RANGE);
	assert_true(ut_dnr(st));
	r[1] = (struct nvl_nvme_dsm_range){ .nlb = 1, .slba = UINT64_MAX };
	assert_int_equal(ut_sc(dsm(f, 1, NVL_NVME_DSM_AD, r, 2, 32)),
			 NVL_NVME_SC_LBA_OUT_OF_RANGE);
	r[1] = (struct nvl_nvme_dsm_range){ .nlb = UINT32_MAX, .slba = 1 };
	assert_int_equal(ut_sc(dsm(f, 1, NVL_NVME_DSM_AD, r, 2, 32)),
			 NVL_NVME_SC_LBA_OUT_OF_RANGE);
	assert_int_equal(rw(f, NVL_NVME_IO_READ, 1, 0, 32, f->buf, 16384), 0);
	assert_memory_equal(f->buf, f->pat, 16384);

	/* attributes without AD are hints only: nothing changes */
	r[0] = (struct nvl_nvme_dsm_range){ .nlb = 4, .slba = 0 };
	assert_int_equal(dsm(f, 1, NVL_NVME_DSM_IDR | NVL_NVME_DSM_IDW, r, 1, 16), 0);
	assert_int_equal(rw(f, NVL_NVME_IO_READ, 1, 0, 4, f->buf, 2048), 0);
	assert_memory_equal(f->buf, f->pat, 2048);

	/* range list shorter than NR says */
	assert_int_equal(ut_sc(dsm(f, 1, NVL_NVME_DSM_AD, r, 2, 16)),
			 NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
	/* all 256 ranges, one block each */
	for (int i = 0; i < 256; i++)
		r[i] = (struct nvl_nvme_dsm_range){ .nlb = 1, .slba = (uint64_t)i * 4 };
	assert_int_equal(dsm(f, 1, NVL_NVME_DSM_AD, r, 256, sizeof(r)), 0);
	assert_int_equal(rw(f, NVL_NVME_IO_READ, 1, 4, 1, f->buf, 512), 0);
	for (int i = 0; i < 512; i++)
		assert_int_equal(f->buf[i], 0);
	/* a failing backend: the error reaches the host once */
	r[0] = (struct nvl_nvme_dsm_range){ .nlb = 1, .slba = 0 };
	r[1] = (struct nvl_nvme_dsm_range){ .nlb = 1, .slba = 4 };
	f->eb.complete_status = -EIO;
	assert_int_equal(ut_sc(dsm(f, 4, NVL_NVME_DSM_AD, r, 2, 32)),
			 NVL_NVME_SC_DATA_TRANSFER_ERROR);
	f->eb.complete_status = 0;
	f->eb.submit_rc = -EINVAL;
	assert_int_equal(ut_sc(dsm(f, 4, NVL_NVME_DSM_AD, r, 2, 32)), NVL_NVME_SC_INVALID_FIELD);
	f->eb.submit_rc = 0;
}

static void
test_compare(void **state)
{
	struct fx *f = *state;
	uint16_t st;

	assert_int_equal(rw(f, NVL_NVME_IO_WRITE, 1, 50, 4, f->pat, 2048), 0);
	assert_int_equal(rw(f, NVL_NVME_IO_COMPARE, 1, 50, 4, f->pat, 2048), 0);
	/* one byte differs, in the last block */
	memcpy(f->buf, f->pat, 2048);
	f->buf[2047] ^= 1;
	st = rw(f, NVL_NVME_IO_COMPARE, 1, 50, 4, f->buf, 2048);
	assert_int_equal(ut_sc(st), NVL_NVME_SC_COMPARE_FAILURE);
	assert_int_equal(NVL_NVME_STATUS_SCT(st), 2); /* media and data integrity */
	assert_true(ut_dnr(st));
	/* a prefix of a larger buffer is what is compared */
	memcpy(f->buf, f->pat, 2048);
	f->buf[2048] = 0x99;
	assert_int_equal(rw(f, NVL_NVME_IO_COMPARE, 1, 50, 4, f->buf, 4096), 0);
	/* short buffer */
	assert_int_equal(ut_sc(rw(f, NVL_NVME_IO_COMPARE, 1, 50, 4, f->pat, 2047)),
			 NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
	/* errors while reading the media */
	f->eb.complete_status = -EIO;
	assert_int_equal(ut_sc(rw(f, NVL_NVME_IO_COMPARE, 4, 0, 1, f->pat, 512)),
			 NVL_NVME_SC_DATA_TRANSFER_ERROR);
	f->eb.complete_status = 0;
	/* the data the backend reads (0x5a) */
	memset(f->buf, 0x5a, 512);
	assert_int_equal(rw(f, NVL_NVME_IO_COMPARE, 4, 0, 1, f->buf, 512), 0);
}

static void
test_backend_errors(void **state)
{
	struct fx *f = *state;
	uint16_t st;

	f->eb.complete_status = -EIO;
	st = rw(f, NVL_NVME_IO_READ, 4, 0, 1, f->buf, 512);
	assert_int_equal(ut_sc(st), NVL_NVME_SC_UNRECOVERED_READ);
	st = rw(f, NVL_NVME_IO_WRITE, 4, 0, 1, f->buf, 512);
	assert_int_equal(ut_sc(st), NVL_NVME_SC_WRITE_FAULT);
	f->eb.complete_status = -ENOSPC;
	st = rw(f, NVL_NVME_IO_WRITE, 4, 0, 1, f->buf, 512);
	assert_int_equal(ut_sc(st), NVL_NVME_SC_CAPACITY_EXCEEDED);
	f->eb.complete_status = 0;
	f->eb.submit_rc = -ENOMEM;
	st = rw(f, NVL_NVME_IO_READ, 4, 0, 1, f->buf, 512);
	assert_int_equal(ut_sc(st), NVL_NVME_SC_INTERNAL);
	assert_false(ut_dnr(st)); /* may be retried */
	st = rw(f, NVL_NVME_IO_WRITE_ZEROES, 4, 0, 1, NULL, 0);
	assert_int_equal(ut_sc(st), NVL_NVME_SC_INTERNAL);
	f->eb.submit_rc = 0;
	/* failed commands do not count as host reads */
	struct nvl_nvme_ctrlr_stats s;

	nvl_nvme_ctrlr_get_stats(&f->u.c, &s);
	assert_int_equal(s.read_cmds, 0);
	assert_int_equal(s.errors, 5);
	assert_int_equal(rw(f, NVL_NVME_IO_READ, 4, 0, 1, f->buf, 512), 0);
	nvl_nvme_ctrlr_get_stats(&f->u.c, &s);
	assert_int_equal(s.read_cmds, 1);
	assert_int_equal(s.read_bytes, 512);
}

static void
test_invalid_opcode_and_ns(void **state)
{
	struct fx *f = *state;
	static const uint8_t bad[] = { 0x03, 0x04, 0x06, 0x0c, 0x0f, 0x19, 0x7f, 0x80, 0xff };
	uint16_t st;

	for (size_t i = 0; i < NVL_ARRAY_SIZE(bad); i++) {
		struct nvl_nvme_cmd cmd = ut_cmd(bad[i], 1);

		st = io(f, &cmd, f->buf, 512);
		assert_int_equal(ut_sc(st), NVL_NVME_SC_INVALID_OPCODE);
		assert_true(ut_dnr(st));
	}
	static const uint32_t badns[] = { 0, 3, 5, UT_NVME_MAX_NS, UT_NVME_MAX_NS + 1,
					  0xfffffffe };
	for (size_t i = 0; i < NVL_ARRAY_SIZE(badns); i++) {
		st = rw(f, NVL_NVME_IO_READ, badns[i], 0, 1, f->buf, 512);
		assert_int_equal(ut_sc(st), NVL_NVME_SC_INVALID_NAMESPACE);
		assert_true(ut_dnr(st));
	}
	/* broadcast nsid is only for Flush */
	st = rw(f, NVL_NVME_IO_WRITE, NVL_NVME_NSID_ALL, 0, 1, f->buf, 512);
	assert_int_equal(ut_sc(st), NVL_NVME_SC_INVALID_NAMESPACE);
}

/* MDTS: what a byte limit becomes, and the transfer check the transports rely on */
static void
test_mdts(void **state)
{
	struct fx *f = *state;
	static const struct {
		uint32_t bytes;
		uint8_t mdts;
	} tab[] = {
		{ 0, 1 },        { 4096, 1 },     { 8192, 1 },    { 16383, 1 },
		{ 16384, 2 },    { 65535, 3 },    { 65536, 4 },   { 100000, 4 },
		{ 131072, 5 },   { 524287, 6 },   { 524288, 7 },  { 1u << 20, 7 },
		{ UINT32_MAX, 7 },
	};
	struct nvl_nvme_req r;
	uint32_t len;
	uint8_t dir;

	for (size_t i = 0; i < NVL_ARRAY_SIZE(tab); i++)
		assert_int_equal(nvl_nvme_mdts_for(tab[i].bytes), tab[i].mdts);
	assert_int_equal(f->u.c.mdts, NVL_NVME_MDTS);
	assert_int_equal(nvl_nvme_ctrlr_max_xfer(&f->u.c), NVL_NVME_MAX_XFER);

	f->u.c.mdts = 4; /* 64 KiB */
	memset(&r, 0, sizeof(r));
	r.ctrlr = &f->u.c;
	r.qid = 1;
	r.cmd = ut_cmd_rw(NVL_NVME_IO_READ, 1, 0, 128);
	assert_int_equal(nvl_nvme_req_xfer(&r, &len, &dir), 0);
	assert_int_equal(len, 65536);
	assert_int_equal(dir, NVL_NVME_XFER_C2H);
	r.cmd = ut_cmd_rw(NVL_NVME_IO_WRITE, 1, 0, 129);
	len = 0;
	/* req_xfer's status is sct<<8|sc with the do-not-retry marker in bit 15 */
	assert_int_equal(nvl_nvme_req_xfer(&r, &len, &dir), NVL_NVME_SC_INVALID_FIELD | 0x8000);
	/* 4 KiB blocks: 16 fit, 17 do not */
	r.cmd = ut_cmd_rw(NVL_NVME_IO_READ, 2, 0, 16);
	assert_int_equal(nvl_nvme_req_xfer(&r, &len, &dir), 0);
	assert_int_equal(len, 65536);
	r.cmd = ut_cmd_rw(NVL_NVME_IO_READ, 2, 0, 17);
	assert_int_equal(nvl_nvme_req_xfer(&r, &len, &dir), NVL_NVME_SC_INVALID_FIELD | 0x8000);
	f->u.c.mdts = NVL_NVME_MDTS;
	r.cmd = ut_cmd_rw(NVL_NVME_IO_READ, 2, 0, 128);
	assert_int_equal(nvl_nvme_req_xfer(&r, &len, &dir), 0);
	assert_int_equal(len, NVL_NVME_MAX_XFER);
	r.cmd = ut_cmd_rw(NVL_NVME_IO_READ, 2, 0, 129);
	assert_int_equal(nvl_nvme_req_xfer(&r, &len, &dir), NVL_NVME_SC_INVALID_FIELD | 0x8000);
}

static void
test_copy_helpers(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_req r;
	uint8_t a[3], b[5], out[16];

	(void)f;
	memset(&r, 0, sizeof(r));
	r.iov = r.iov_inline;
	r.iov_inline[0] = (struct iovec){ a, sizeof(a) };
	r.iov_inline[1] = (struct iovec){ b, sizeof(b) };
	r.iovcnt = 2;
	r.data_len = 7; /* less than the iovecs hold */
	assert_int_equal(nvl_nvme_req_copy_to(&r, "abcdefghij", 10), 7);
	assert_int_equal(r.xfer_len, 7);
	assert_memory_equal(a, "abc", 3);
	assert_memory_equal(b, "defg", 4);
	assert_int_equal(nvl_nvme_req_copy_from(&r, out, 16), 7);
	assert_memory_equal(out, "abcdefg", 7);
	assert_int_equal(nvl_nvme_req_copy_to(&r, "XY", 2), 2);
	assert_int_equal(r.xfer_len, 2);
	r.iovcnt = 0;
	assert_int_equal(nvl_nvme_req_copy_to(&r, "XY", 2), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_read_write_roundtrip),
		T(test_lba_out_of_range),
		T(test_buffer_lengths),
		T(test_read_only_namespace),
		T(test_fua_and_flags),
		T(test_write_cache_disabled),
		T(test_flush),
		T(test_write_zeroes),
		T(test_dsm),
		T(test_compare),
		T(test_backend_errors),
		T(test_invalid_opcode_and_ns),
		T(test_mdts),
		T(test_copy_helpers),
#undef T
	};

	nvl_log_set_level(0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
