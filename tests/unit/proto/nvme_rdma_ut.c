/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the NVMe/RDMA binding helpers (src/proto/nvme_rdma.c): the
 * RDMA_CM private data of connection requests (every reject status),
 * accepts and rejects, and the data descriptor of command capsules (keyed,
 * keyed with invalidate, in-capsule, none, and each malformed case with the
 * NVMe status it completes with), with the host-side encoders round-tripped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "proto/nvme_rdma.c"

static const struct nvl_rdma_cm_limits g_lim = {
	.max_aq_entries = 32, .max_io_entries = 128, .max_qid = 4,
};

static void
test_cm_req(void **state)
{
	struct nvl_rdma_cm_req r, out;
	uint8_t padded[56] = { 0 };
	uint16_t sts = 0;

	(void)state;
	nvl_rdma_cm_req_encode(&r, 0, 32, 0xffff);
	assert_int_equal(r.hsqsize, 31);
	assert_int_equal(r.hrqsize, 32);
	assert_int_equal(nvl_rdma_cm_req_decode(&r, sizeof(r), &g_lim, &out, &sts), 0);
	assert_int_equal(out.qid, 0);
	/* RoCE pads private data: longer is fine */
	memcpy(padded, &r, sizeof(r));
	assert_int_equal(nvl_rdma_cm_req_decode(padded, sizeof(padded), &g_lim, &out, &sts), 0);

	assert_int_equal(nvl_rdma_cm_req_decode(&r, sizeof(r) - 1, &g_lim, &out, &sts), -EINVAL);
	assert_int_equal(sts, NVL_RDMA_CM_INVALID_LEN);
	assert_int_equal(nvl_rdma_cm_req_decode(NULL, 0, &g_lim, &out, &sts), -EINVAL);
	assert_int_equal(sts, NVL_RDMA_CM_INVALID_LEN);

	r.recfmt = 1;
	assert_int_equal(nvl_rdma_cm_req_decode(&r, sizeof(r), &g_lim, &out, &sts), -EINVAL);
	assert_int_equal(sts, NVL_RDMA_CM_INVALID_RECFMT);

	nvl_rdma_cm_req_encode(&r, 5, 16, 1);
	assert_int_equal(nvl_rdma_cm_req_decode(&r, sizeof(r), &g_lim, &out, &sts), -EINVAL);
	assert_int_equal(sts, NVL_RDMA_CM_INVALID_QID);

	/* admin queue larger than the admin limit, I/O queue within its own */
	nvl_rdma_cm_req_encode(&r, 0, 64, 0xffff);
	assert_int_equal(nvl_rdma_cm_req_decode(&r, sizeof(r), &g_lim, &out, &sts), -EINVAL);
	assert_int_equal(sts, NVL_RDMA_CM_INVALID_HSQSIZE);
	nvl_rdma_cm_req_encode(&r, 1, 64, 1);
	assert_int_equal(nvl_rdma_cm_req_decode(&r, sizeof(r), &g_lim, &out, &sts), 0);
	nvl_rdma_cm_req_encode(&r, 1, 129, 1);
	assert_int_equal(nvl_rdma_cm_req_decode(&r, sizeof(r), &g_lim, &out, &sts), -EINVAL);
	assert_int_equal(sts, NVL_RDMA_CM_INVALID_HSQSIZE);
	nvl_rdma_cm_req_encode(&r, 1, 1, 1); /* a queue of one entry holds nothing */
	assert_int_equal(nvl_rdma_cm_req_decode(&r, sizeof(r), &g_lim, &out, &sts), -EINVAL);
	assert_int_equal(sts, NVL_RDMA_CM_INVALID_HSQSIZE);

	/* the host must take a response for every command it may have out */
	nvl_rdma_cm_req_encode(&r, 1, 64, 1);
	r.hrqsize = 62;
	assert_int_equal(nvl_rdma_cm_req_decode(&r, sizeof(r), &g_lim, &out, &sts), -EINVAL);
	assert_int_equal(sts, NVL_RDMA_CM_INVALID_HRQSIZE);
	r.hrqsize = 63;
	assert_int_equal(nvl_rdma_cm_req_decode(&r, sizeof(r), &g_lim, &out, &sts), 0);
}

static void
test_cm_rep_rej(void **state)
{
	struct nvl_rdma_cm_rep rep;
	struct nvl_rdma_cm_rej rej;

	(void)state;
	nvl_rdma_cm_rep_encode(&rep, 128);
	assert_int_equal(nvl_rdma_cm_rep_decode(&rep, sizeof(rep), 128), 0);
	assert_int_equal(nvl_rdma_cm_rep_decode(&rep, sizeof(rep), 200), -EPROTO);
	assert_int_equal(nvl_rdma_cm_rep_decode(NULL, 0, 200), 0);
	rep.recfmt = 3;
	assert_int_equal(nvl_rdma_cm_rep_decode(&rep, sizeof(rep), 128), -EPROTO);

	nvl_rdma_cm_rej_encode(&rej, NVL_RDMA_CM_INVALID_CNTLID);
	assert_int_equal(nvl_rdma_cm_rej_decode(&rej, sizeof(rej)), NVL_RDMA_CM_INVALID_CNTLID);
	assert_int_equal(nvl_rdma_cm_rej_decode(&rej, 2), 0);
	assert_string_equal(nvl_rdma_cm_status_str(NVL_RDMA_CM_NO_RSC), "no resources");
	assert_string_equal(nvl_rdma_cm_status_str(0x77), "unknown reject status");
}

static void
test_sgl(void **state)
{
	struct nvl_nvme_cmd cmd;
	struct nvl_rdma_sgl s;
	uint8_t *d = (uint8_t *)&cmd.dptr;

	(void)state;
	memset(&cmd, 0, sizeof(cmd));
	nvl_rdma_sgl_set_keyed(&cmd, 0x1122334455667788ull, 0x123456, 0xdeadbeef);
	assert_int_equal(d[15], 0x40);
	assert_int_equal(d[8], 0x56);
	assert_int_equal(d[10], 0x12);
	assert_int_equal(nvl_rdma_sgl_decode(&cmd, 0, &s), 0);
	assert_int_equal(s.kind, NVL_RDMA_SGL_KEYED);
	assert_true(s.addr == 0x1122334455667788ull);
	assert_int_equal(s.len, 0x123456);
	assert_int_equal(s.key, 0xdeadbeef);
	assert_false(s.invalidate);
	/* data in the capsule with a keyed descriptor */
	assert_int_equal(nvl_rdma_sgl_decode(&cmd, 16, &s), NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);

	d[15] = NVL_RDMA_SGL_KEYED_INV;
	assert_int_equal(nvl_rdma_sgl_decode(&cmd, 0, &s), 0);
	assert_true(s.invalidate);
	d[15] = 0x4e; /* a keyed subtype the binding does not use */
	assert_int_equal(nvl_rdma_sgl_decode(&cmd, 0, &s), NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);

	nvl_rdma_sgl_set_keyed(&cmd, 0x1000, 0, 7);
	assert_int_equal(nvl_rdma_sgl_decode(&cmd, 0, &s), 0);
	assert_int_equal(s.kind, NVL_RDMA_SGL_NONE);
	assert_int_equal(s.key, 0);

	nvl_rdma_sgl_set_icd(&cmd, 512);
	assert_int_equal(nvl_rdma_sgl_decode(&cmd, 512, &s), 0);
	assert_int_equal(s.kind, NVL_RDMA_SGL_INCAPSULE);
	assert_int_equal(s.len, 512);
	assert_int_equal(nvl_rdma_sgl_decode(&cmd, 511, &s), NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
	cmd.dptr.sgl1.addr = 600;
	assert_int_equal(nvl_rdma_sgl_decode(&cmd, 512, &s), NVL_NVME_SC_SGL_OFFSET_INVALID);
	cmd.dptr.sgl1.addr = 256;
	cmd.dptr.sgl1.length = 256;
	assert_int_equal(nvl_rdma_sgl_decode(&cmd, 512, &s), 0);
	assert_int_equal(s.addr, 256);
	nvl_rdma_sgl_set_icd(&cmd, 0);
	assert_int_equal(nvl_rdma_sgl_decode(&cmd, 0, &s), 0);
	assert_int_equal(s.kind, NVL_RDMA_SGL_NONE);

	/* PRPs are not a fabrics data pointer */
	cmd.flags = 0;
	assert_int_equal(nvl_rdma_sgl_decode(&cmd, 0, &s), NVL_NVME_SC_INVALID_FIELD);
	/* a plain data block descriptor (host address) is not allowed either */
	nvl_rdma_sgl_set_icd(&cmd, 0);
	d[15] = NVL_NVME_SGL_TYPE_DATA_BLOCK << 4;
	assert_int_equal(nvl_rdma_sgl_decode(&cmd, 0, &s), NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cm_req),
		cmocka_unit_test(test_cm_rep_rej),
		cmocka_unit_test(test_sgl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
