/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of PRP/SGL translation for the shm transport
 * (src/transport/shm_map.c): every address and length checked against the
 * data window, PRP lists incl. chained ones, SGL data blocks, segments and
 * last segments, refused descriptor types, length and count limits,
 * merging of contiguous iovecs and the heap iovec array (run under valgrind
 * for the frees).
 */
#include "transport/shm_map.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define WIN_PAGES 1024
#define WIN (WIN_PAGES * 4096ull)

struct fx {
	uint8_t *win;
	struct nvl_nvme_req req;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->win = aligned_alloc(4096, WIN);
	memset(f->win, 0, WIN);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	nvl_shm_unmap_data(&f->req);
	free(f->win);
	free(f);
	return 0;
}

#define DNR_SC(sc) ((uint16_t)((sc) | 0x8000))

static void
prp(struct fx *f, uint64_t prp1, uint64_t prp2)
{
	nvl_shm_unmap_data(&f->req);
	memset(&f->req, 0, sizeof(f->req));
	f->req.iov = f->req.iov_inline;
	f->req.cmd.dptr.prp.prp1 = prp1;
	f->req.cmd.dptr.prp.prp2 = prp2;
}

static void
sgl(struct fx *f, uint64_t addr, uint32_t len, uint8_t type)
{
	nvl_shm_unmap_data(&f->req);
	memset(&f->req, 0, sizeof(f->req));
	f->req.iov = f->req.iov_inline;
	f->req.cmd.flags = NVL_NVME_PSDT_SGL_MPTR_CONTIG << NVL_NVME_CMD_PSDT_SHIFT;
	f->req.cmd.dptr.sgl1.addr = addr;
	f->req.cmd.dptr.sgl1.length = len;
	f->req.cmd.dptr.sgl1.type = type;
}

/* Map again: what an earlier successful map allocated is released first,
 * as the transport does (nvl_shm_map_data() does not free it). */
static uint16_t
map(struct fx *f, uint32_t len)
{
	nvl_shm_unmap_data(&f->req);
	return nvl_shm_map_data(&f->req, f->win, WIN, len);
}

static void
put_u64(struct fx *f, uint64_t off, uint64_t v)
{
	memcpy(f->win + off, &v, 8);
}

static void
put_desc(struct fx *f, uint64_t off, uint64_t addr, uint32_t len, uint8_t type)
{
	struct nvl_nvme_sgl d = { .addr = addr, .length = len, .type = type };

	memcpy(f->win + off, &d, sizeof(d));
}

/* every iovec lies inside the window, and they add up to data_len */
static void
check_inside(struct fx *f)
{
	uint64_t sum = 0;

	for (int i = 0; i < f->req.iovcnt; i++) {
		uint8_t *p = f->req.iov[i].iov_base;

		assert_true(p >= f->win);
		assert_true(p + f->req.iov[i].iov_len <= f->win + WIN);
		sum += f->req.iov[i].iov_len;
	}
	assert_int_equal(sum, f->req.data_len);
}

static void
expect_iov(struct fx *f, int i, uint64_t off, size_t len)
{
	assert_true(i < f->req.iovcnt);
	assert_ptr_equal(f->req.iov[i].iov_base, f->win + off);
	assert_int_equal(f->req.iov[i].iov_len, len);
}

#define SGL_DATA 0x00
#define SGL_SEG 0x20
#define SGL_LAST 0x30

/* ---- PRP ------------------------------------------------------------------- */

static void
test_prp_simple(void **state)
{
	struct fx *f = *state;

	prp(f, 0x1000, 0);
	assert_int_equal(map(f, 0), 0);
	assert_int_equal(f->req.iovcnt, 0);
	assert_int_equal(f->req.data_len, 0);
	/* PRP1 only */
	assert_int_equal(map(f, 4096), 0);
	assert_int_equal(f->req.iovcnt, 1);
	expect_iov(f, 0, 0x1000, 4096);
	assert_int_equal(f->req.data_len, 4096);
	/* PRP1 with an offset, inside one page: PRP2 unused */
	prp(f, 0x1200, 0xdeadbeef);
	assert_int_equal(map(f, 512), 0);
	expect_iov(f, 0, 0x1200, 512);
	/* dword-aligned offset crossing a page: PRP2 is the rest */
	prp(f, 0x1804, 0x5000);
	assert_int_equal(map(f, 4096), 0);
	assert_int_equal(f->req.iovcnt, 2);
	expect_iov(f, 0, 0x1804, 4096 - 0x804);
	expect_iov(f, 1, 0x5000, 0x804);
	/* PRP2 as the second page */
	prp(f, 0x1000, 0x7000);
	assert_int_equal(map(f, 8192), 0);
	assert_int_equal(f->req.iovcnt, 2);
	expect_iov(f, 1, 0x7000, 4096);
	/* contiguous pages merge */
	prp(f, 0x1800, 0x2000);
	assert_int_equal(map(f, 4096), 0);
	assert_int_equal(f->req.iovcnt, 1);
	expect_iov(f, 0, 0x1800, 4096);
	/* offset + more than a page: PRP2 is then a list pointer */
	put_u64(f, 0x10000, 0x2000);
	put_u64(f, 0x10008, 0x3000);
	prp(f, 0x1800, 0x10000);
	assert_int_equal(map(f, 8192), 0);
	assert_int_equal(f->req.iovcnt, 1);
	expect_iov(f, 0, 0x1800, 8192);
	check_inside(f);
}

static void
test_prp_list(void **state)
{
	struct fx *f = *state;
	static const uint64_t pages[] = { 0x9000, 0x4000, 0x6000, 0x8000 };

	/* PRP1 + a list of 4 */
	for (int i = 0; i < 4; i++)
		put_u64(f, 0x10000 + 8 * i, pages[i]);
	prp(f, 0x3000, 0x10000);
	assert_int_equal(map(f, 5 * 4096), 0);
	assert_int_equal(f->req.iovcnt, 5);
	expect_iov(f, 0, 0x3000, 4096);
	for (int i = 0; i < 4; i++)
		expect_iov(f, i + 1, pages[i], 4096);
	/* last entry used partially */
	assert_int_equal(map(f, 4 * 4096 + 100), 0);
	assert_int_equal(f->req.iovcnt, 5);
	expect_iov(f, 4, 0x8000, 100);
	/* the list may start inside a page (qword aligned) */
	for (int i = 0; i < 2; i++)
		put_u64(f, 0x10f00 + 8 * i, pages[i]);
	prp(f, 0x3000, 0x10f00);
	assert_int_equal(map(f, 3 * 4096), 0);
	expect_iov(f, 2, 0x4000, 4096);
	/* list near the end of its page: two entries room, the second chains */
	put_u64(f, 0x11ff0, 0x20000);
	put_u64(f, 0x11ff8, 0x30000);          /* chain */
	put_u64(f, 0x30000, 0x22000);
	put_u64(f, 0x30008, 0x24000);
	put_u64(f, 0x30010, 0x26000);
	prp(f, 0x1000, 0x11ff0);
	assert_int_equal(map(f, 5 * 4096), 0);
	assert_int_equal(f->req.iovcnt, 5);
	expect_iov(f, 1, 0x20000, 4096);
	expect_iov(f, 2, 0x22000, 4096);
	expect_iov(f, 4, 0x26000, 4096);
	check_inside(f);
}

static void
test_prp_chained_two_pages(void **state)
{
	struct fx *f = *state;
	const unsigned npages = 600; /* PRP1 + 511 in list 1 + 88 in list 2 */

	/* data pages in descending order so that nothing merges */
	for (unsigned i = 0; i < 511; i++)
		put_u64(f, 0x100000 + 8 * i, (uint64_t)(900 - i) * 4096);
	put_u64(f, 0x100000 + 8 * 511, 0x101000); /* chain */
	for (unsigned i = 0; i < npages - 512; i++)
		put_u64(f, 0x101000 + 8 * i, (uint64_t)(389 - i) * 4096);
	prp(f, 0, 0x100000);
	assert_int_equal(map(f, npages * 4096), 0);
	assert_int_equal(f->req.iovcnt, (int)npages);
	assert_ptr_not_equal(f->req.iov, f->req.iov_inline);
	expect_iov(f, 0, 0, 4096);
	expect_iov(f, 1, 900 * 4096ull, 4096);
	expect_iov(f, 511, 390 * 4096ull, 4096);
	expect_iov(f, 512, 389 * 4096ull, 4096);
	expect_iov(f, npages - 1, (389 - 87) * 4096ull, 4096);
	check_inside(f);
	nvl_shm_unmap_data(&f->req);
	assert_ptr_equal(f->req.iov, f->req.iov_inline);
	assert_int_equal(f->req.iovcnt, 0);
	/* a bad entry in the second list fails, and frees the heap iovecs */
	put_u64(f, 0x101000 + 8 * 50, 0x12340);
	assert_int_equal(map(f, npages * 4096), DNR_SC(NVL_NVME_SC_INVALID_PRP_OFFSET));
	assert_ptr_equal(f->req.iov, f->req.iov_inline);
	assert_int_equal(f->req.iovcnt, 0);
	assert_int_equal(f->req.data_len, 0);
}

static void
test_prp_misaligned(void **state)
{
	struct fx *f = *state;

	/* PRP1 must be dword aligned */
	for (uint64_t o = 1; o < 4; o++) {
		prp(f, 0x1000 + o, 0);
		assert_int_equal(map(f, 16), DNR_SC(NVL_NVME_SC_INVALID_PRP_OFFSET));
	}
	/* PRP2 as a data page must be page aligned */
	prp(f, 0x1000, 0x2008);
	assert_int_equal(map(f, 8192), DNR_SC(NVL_NVME_SC_INVALID_PRP_OFFSET));
	/* PRP2 as a list pointer must be qword aligned */
	prp(f, 0x1000, 0x10004);
	assert_int_equal(map(f, 3 * 4096), DNR_SC(NVL_NVME_SC_INVALID_PRP_OFFSET));
	/* list entries must be page aligned */
	put_u64(f, 0x10000, 0x4000);
	put_u64(f, 0x10008, 0x6010);
	prp(f, 0x1000, 0x10000);
	assert_int_equal(map(f, 3 * 4096), DNR_SC(NVL_NVME_SC_INVALID_PRP_OFFSET));
	/* and so must a chain entry: here one pointing at itself, which must not
	 * loop forever */
	put_u64(f, 0x10ff8, 0x10ff8);
	prp(f, 0x1000, 0x10ff8);
	assert_int_equal(map(f, 3 * 4096), DNR_SC(NVL_NVME_SC_INVALID_PRP_OFFSET));
	put_u64(f, 0x10ff8, 0x10ff0);
	assert_int_equal(map(f, 3 * 4096), DNR_SC(NVL_NVME_SC_INVALID_PRP_OFFSET));
	/* a page-aligned chain back to the same list page is bounded by the length */
	for (int i = 0; i < 511; i++)
		put_u64(f, 0x40000 + 8 * i, 0x5000);
	put_u64(f, 0x40000 + 8 * 511, 0x40000);
	prp(f, 0x1000, 0x40000);
	assert_int_equal(map(f, 2000 * 4096), 0);
	assert_int_equal(f->req.data_len, 2000 * 4096);
	check_inside(f);
}

static void
test_prp_out_of_window(void **state)
{
	struct fx *f = *state;
	const uint16_t dte = DNR_SC(NVL_NVME_SC_DATA_TRANSFER_ERROR);

	/* PRP1 outside, at the edge, near 2^64 */
	prp(f, WIN, 0);
	assert_int_equal(map(f, 4), dte);
	prp(f, WIN - 4, WIN);
	assert_int_equal(map(f, 4), 0);
	assert_int_equal(map(f, 8), dte);
	prp(f, UINT64_MAX & ~3ull, 0);
	assert_int_equal(map(f, 4), dte);
	prp(f, 0xfffffffffffff000ull, 0);
	assert_int_equal(map(f, 4096), dte);
	/* PRP2 as the second page */
	prp(f, 0x1000, WIN);
	assert_int_equal(map(f, 8192), dte);
	prp(f, 0x1000, 0xfffffffffffff000ull);
	assert_int_equal(map(f, 8192), dte);
	/* PRP2 as the list pointer, and a list that runs off the end */
	prp(f, 0x1000, WIN);
	assert_int_equal(map(f, 3 * 4096), dte);
	put_u64(f, WIN - 8, WIN); /* the only entry of a list at a page's end chains out */
	prp(f, 0x1000, WIN - 8);
	assert_int_equal(map(f, 4 * 4096), dte);
	/* an entry outside, first or last */
	put_u64(f, 0x10000, WIN);
	put_u64(f, 0x10008, 0x4000);
	prp(f, 0x1000, 0x10000);
	assert_int_equal(map(f, 3 * 4096), dte);
	put_u64(f, 0x10000, 0x4000);
	put_u64(f, 0x10008, 0xfffffffffffff000ull);
	assert_int_equal(map(f, 3 * 4096), dte);
	/* a chain pointer outside */
	prp(f, 0x1000, 0x11ff0);
	put_u64(f, 0x11ff0, 0x6000);
	put_u64(f, 0x11ff8, WIN);
	assert_int_equal(map(f, 5 * 4096), dte);
	/* a window whose size is not a page multiple: the last page is partial */
	prp(f, WIN - 4096, 0);
	assert_int_equal(nvl_shm_map_data(&f->req, f->win, WIN - 100, 4096), dte);
	assert_int_equal(f->req.iovcnt, 0);
}

/* ---- SGL ------------------------------------------------------------------- */

static void
test_sgl_data_block(void **state)
{
	struct fx *f = *state;

	sgl(f, 0x3000, 8192, SGL_DATA);
	assert_int_equal(map(f, 8192), 0);
	assert_int_equal(f->req.iovcnt, 1);
	expect_iov(f, 0, 0x3000, 8192);
	/* any byte alignment works for SGLs */
	sgl(f, 0x3001, 100, SGL_DATA);
	assert_int_equal(map(f, 100), 0);
	expect_iov(f, 0, 0x3001, 100);
	/* longer than the transfer: the prefix */
	sgl(f, 0x3000, 8192, SGL_DATA);
	assert_int_equal(map(f, 512), 0);
	expect_iov(f, 0, 0x3000, 512);
	/* shorter */
	assert_int_equal(map(f, 8193), DNR_SC(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID));
	/* outside the window, incl. overflow of addr + length */
	sgl(f, WIN - 100, 101, SGL_DATA);
	assert_int_equal(map(f, 101), DNR_SC(NVL_NVME_SC_DATA_TRANSFER_ERROR));
	sgl(f, UINT64_MAX - 10, 100, SGL_DATA);
	assert_int_equal(map(f, 100), DNR_SC(NVL_NVME_SC_DATA_TRANSFER_ERROR));
	/* offset subtype, bit bucket, keyed, transport data blocks: refused */
	static const uint8_t bad[] = { 0x01, 0x0a, 0x10, 0x40, 0x41, 0x50, 0x5a, 0x60, 0xe0, 0xf0 };
	for (size_t i = 0; i < NVL_ARRAY_SIZE(bad); i++) {
		sgl(f, 0x3000, 512, bad[i]);
		assert_int_equal(map(f, 512), DNR_SC(NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID));
	}
	/* PSDT 3 is reserved */
	sgl(f, 0x3000, 512, SGL_DATA);
	f->req.cmd.flags = 3 << NVL_NVME_CMD_PSDT_SHIFT;
	assert_int_equal(map(f, 512), DNR_SC(NVL_NVME_SC_INVALID_FIELD));
	/* PSDT 2 (SGL for metadata too) maps data the same way */
	sgl(f, 0x3000, 512, SGL_DATA);
	f->req.cmd.flags = NVL_NVME_PSDT_SGL_MPTR_SGL << NVL_NVME_CMD_PSDT_SHIFT;
	assert_int_equal(map(f, 512), 0);
}

static void
test_sgl_last_segment(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0x8000, 0x1000, 100, SGL_DATA);
	put_desc(f, 0x8010, 0x2000, 200, SGL_DATA);
	put_desc(f, 0x8020, 0x3000, 300, SGL_DATA);
	sgl(f, 0x8000, 48, SGL_LAST);
	assert_int_equal(map(f, 600), 0);
	assert_int_equal(f->req.iovcnt, 3);
	expect_iov(f, 0, 0x1000, 100);
	expect_iov(f, 1, 0x2000, 200);
	expect_iov(f, 2, 0x3000, 300);
	/* shorter than the transfer */
	assert_int_equal(map(f, 601), DNR_SC(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID));
	/* longer: the last descriptor is cut */
	assert_int_equal(map(f, 350), 0);
	assert_int_equal(f->req.iovcnt, 3);
	expect_iov(f, 2, 0x3000, 50);
	/* contiguous descriptors merge */
	put_desc(f, 0x8010, 0x1064, 200, SGL_DATA);
	assert_int_equal(map(f, 600), 0);
	assert_int_equal(f->req.iovcnt, 2);
	expect_iov(f, 0, 0x1000, 300);
	/* a segment descriptor inside a last segment */
	put_desc(f, 0x8010, 0x9000, 16, SGL_LAST);
	assert_int_equal(map(f, 600), DNR_SC(NVL_NVME_SC_INVALID_SGL_SEG_DESCRIPTOR));
	put_desc(f, 0x8020, 0x9000, 16, SGL_SEG);
	put_desc(f, 0x8010, 0x2000, 200, SGL_DATA);
	assert_int_equal(map(f, 600), DNR_SC(NVL_NVME_SC_INVALID_SGL_SEG_DESCRIPTOR));
	put_desc(f, 0x8020, 0x3000, 300, SGL_DATA);
	/* refused types inside the list */
	static const uint8_t bad[] = { 0x01, 0x10, 0x40, 0x50 };
	for (size_t i = 0; i < NVL_ARRAY_SIZE(bad); i++) {
		put_desc(f, 0x8010, 0x2000, 200, bad[i]);
		assert_int_equal(map(f, 600), DNR_SC(NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID));
	}
	/* a data block outside the window, even past the data needed */
	put_desc(f, 0x8010, 0x2000, 200, SGL_DATA);
	put_desc(f, 0x8020, WIN - 10, 300, SGL_DATA);
	assert_int_equal(map(f, 300), DNR_SC(NVL_NVME_SC_DATA_TRANSFER_ERROR));
	put_desc(f, 0x8020, UINT64_MAX - 200, 300, SGL_DATA);
	assert_int_equal(map(f, 600), DNR_SC(NVL_NVME_SC_DATA_TRANSFER_ERROR));
	/* the segment itself outside or malformed */
	sgl(f, WIN - 32, 48, SGL_LAST);
	assert_int_equal(map(f, 600), DNR_SC(NVL_NVME_SC_DATA_TRANSFER_ERROR));
	sgl(f, 0x8000, 40, SGL_LAST);
	assert_int_equal(map(f, 600), DNR_SC(NVL_NVME_SC_INVALID_SGL_SEG_DESCRIPTOR));
	sgl(f, 0x8000, 0, SGL_LAST);
	assert_int_equal(map(f, 600), DNR_SC(NVL_NVME_SC_INVALID_SGL_SEG_DESCRIPTOR));
	sgl(f, 0x8000, 48, SGL_LAST | 1);
	assert_int_equal(map(f, 600), DNR_SC(NVL_NVME_SC_INVALID_SGL_SEG_DESCRIPTOR));
	/* too many descriptors in one segment */
	sgl(f, 0x8000, 16 * (NVL_SHM_MAX_SGL_DESC + 1), SGL_LAST);
	assert_int_equal(map(f, 600), DNR_SC(NVL_NVME_SC_INVALID_NUM_SGL_DESCIRPTORS));
}

static void
test_sgl_segment_chain(void **state)
{
	struct fx *f = *state;

	/* segment A: one data block, then the last segment B */
	put_desc(f, 0x8000, 0x1000, 512, SGL_DATA);
	put_desc(f, 0x8010, 0x9000, 32, SGL_LAST);
	put_desc(f, 0x9000, 0x4000, 512, SGL_DATA);
	put_desc(f, 0x9010, 0x2000, 512, SGL_DATA);
	sgl(f, 0x8000, 32, SGL_SEG);
	assert_int_equal(map(f, 1536), 0);
	assert_int_equal(f->req.iovcnt, 3);
	expect_iov(f, 0, 0x1000, 512);
	expect_iov(f, 1, 0x4000, 512);
	expect_iov(f, 2, 0x2000, 512);
	/* a segment (not last) may also chain to another segment */
	put_desc(f, 0x8010, 0xa000, 32, SGL_SEG);
	put_desc(f, 0xa000, 0x6000, 256, SGL_DATA);
	put_desc(f, 0xa010, 0x9000, 32, SGL_LAST);
	assert_int_equal(map(f, 1792), 0);
	assert_int_equal(f->req.iovcnt, 4);
	/* the chain must be the last descriptor of its segment */
	put_desc(f, 0xa000, 0x9000, 32, SGL_LAST);
	put_desc(f, 0xa010, 0x6000, 256, SGL_DATA);
	assert_int_equal(map(f, 1792), DNR_SC(NVL_NVME_SC_INVALID_SGL_SEG_DESCRIPTOR));
	/* a segment chaining to itself is bounded */
	put_desc(f, 0xb000, 0x1000, 16, SGL_DATA);
	put_desc(f, 0xb010, 0xb000, 32, SGL_SEG);
	sgl(f, 0xb000, 32, SGL_SEG);
	assert_int_equal(map(f, 100000), DNR_SC(NVL_NVME_SC_INVALID_NUM_SGL_DESCIRPTORS));
	/* a segment that ends without reaching the length */
	put_desc(f, 0xb010, 0x2000, 16, SGL_DATA);
	assert_int_equal(map(f, 64), DNR_SC(NVL_NVME_SC_DATA_SGL_LENGTH_INVALID));
}

static void
test_sgl_many_descriptors(void **state)
{
	struct fx *f = *state;

	/* 64 separate blocks: more than the inline iovecs, on the heap */
	for (int i = 0; i < NVL_SHM_MAX_SGL_DESC; i++)
		put_desc(f, 0x8000 + 16 * i, 0x20000 + 0x2000 * (uint64_t)i, 1000, SGL_DATA);
	sgl(f, 0x8000, 16 * NVL_SHM_MAX_SGL_DESC, SGL_LAST);
	assert_int_equal(map(f, 64000), 0);
	assert_int_equal(f->req.iovcnt, 64);
	assert_ptr_not_equal(f->req.iov, f->req.iov_inline);
	expect_iov(f, 63, 0x20000 + 0x2000 * 63, 1000);
	check_inside(f);
	/* an error after the array grew frees it */
	put_desc(f, 0x8000 + 16 * 40, WIN, 1000, SGL_DATA);
	assert_int_equal(map(f, 64000), DNR_SC(NVL_NVME_SC_DATA_TRANSFER_ERROR));
	assert_ptr_equal(f->req.iov, f->req.iov_inline);
	/* 16 chained full segments hit the total descriptor limit */
	for (int s = 0; s < 8; s++) {
		uint64_t base = 0x40000 + 0x1000 * (uint64_t)s;

		for (int i = 0; i < NVL_SHM_MAX_SGL_DESC - 1; i++)
			put_desc(f, base + 16 * i, 0x100000 + 0x40 * (uint64_t)(s * 64 + i), 16,
				 SGL_DATA);
		put_desc(f, base + 16 * 63, base + 0x1000, 16 * 64, SGL_SEG);
	}
	sgl(f, 0x40000, 16 * 64, SGL_SEG);
	assert_int_equal(map(f, 1u << 20), DNR_SC(NVL_NVME_SC_INVALID_NUM_SGL_DESCIRPTORS));
	assert_ptr_equal(f->req.iov, f->req.iov_inline);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_prp_simple),
		T(test_prp_list),
		T(test_prp_chained_two_pages),
		T(test_prp_misaligned),
		T(test_prp_out_of_window),
		T(test_sgl_data_block),
		T(test_sgl_last_segment),
		T(test_sgl_segment_chain),
		T(test_sgl_many_descriptors),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
