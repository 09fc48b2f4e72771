/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of what libnvlend's NVMe/RDMA host transport makes of what a
 * target sends (src/host/host_rdma_wire.c): command slots that complete only
 * when both the response and the SEND completion came, in either order;
 * malformed responses; RDMA CM rejects with and without the binding's
 * private data; accepts; Connect responses in nvl_strerror's errnos,
 * including the invalid-subsystem detail in both DW0 layouts (nvlendd's,
 * Linux nvmet's).
 */
#include "host/host_rdma_wire.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

static struct nvl_nvme_cpl
cqe(uint16_t cid, uint16_t sc, uint32_t cdw0)
{
	struct nvl_nvme_cpl c;

	memset(&c, 0, sizeof(c));
	c.cid = cid;
	c.status = (uint16_t)(sc << 1);
	c.cdw0 = cdw0;
	return c;
}

static void
test_slots(void **state)
{
	struct host_rdma_slot s[4];
	struct nvl_nvme_cpl c;
	char why[160];
	uint32_t idx = 99;

	(void)state;
	memset(s, 0, sizeof(s));
	assert_int_equal(host_rdma_slot_take(s, 4, 4), -EINVAL);
	assert_int_equal(host_rdma_slot_take(s, 4, 1), 0);
	assert_int_equal(host_rdma_slot_take(s, 4, 1), -EBUSY);
	/* response first, then the SEND completion */
	c = cqe(1, 0, 42);
	assert_int_equal(host_rdma_rsp_recv(s, 4, &c, sizeof(c), &idx, why, sizeof(why)),
			 HOST_RDMA_EV_PENDING);
	assert_int_equal(idx, 1);
	assert_int_equal(host_rdma_rsp_recv(s, 4, &c, sizeof(c), &idx, why, sizeof(why)), -EPROTO);
	assert_non_null(strstr(why, "second response"));
	assert_int_equal(host_rdma_slot_send_done(s, 4, 1), HOST_RDMA_EV_COMPLETE);
	assert_int_equal(s[1].cpl.cdw0, 42);
	assert_int_equal(host_rdma_slot_send_done(s, 4, 1), -EPROTO);
	host_rdma_slot_free(s, 4, 1);
	/* SEND first */
	assert_int_equal(host_rdma_slot_take(s, 4, 1), 0);
	assert_int_equal(host_rdma_slot_send_done(s, 4, 1), HOST_RDMA_EV_PENDING);
	assert_int_equal(host_rdma_rsp_recv(s, 4, &c, sizeof(c), &idx, why, sizeof(why)),
			 HOST_RDMA_EV_COMPLETE);
	host_rdma_slot_free(s, 4, 1);
	/* no command there, outside the queue, not a CQE */
	assert_int_equal(host_rdma_rsp_recv(s, 4, &c, sizeof(c), &idx, why, sizeof(why)), -EPROTO);
	assert_non_null(strstr(why, "not outstanding"));
	c = cqe(4, 0, 0);
	assert_int_equal(host_rdma_rsp_recv(s, 4, &c, sizeof(c), &idx, why, sizeof(why)), -EPROTO);
	assert_int_equal(host_rdma_rsp_recv(s, 4, &c, 15, &idx, why, sizeof(why)), -EPROTO);
	assert_int_equal(host_rdma_slot_send_done(s, 4, 2), -EPROTO);
	assert_int_equal(host_rdma_slot_send_done(s, 4, 9), -EPROTO);
}

static void
test_reject_accept(void **state)
{
	struct nvl_rdma_cm_rej rej;
	struct nvl_rdma_cm_rep rep;
	char why[256];

	(void)state;
	assert_int_equal(host_rdma_reject_errno(8, NULL, 0, 0, why, sizeof(why)), -ECONNREFUSED);
	assert_non_null(strstr(why, "nothing listens"));
	nvl_rdma_cm_rej_encode(&rej, NVL_RDMA_CM_INVALID_HSQSIZE);
	assert_int_equal(host_rdma_reject_errno(28, &rej, sizeof(rej), 3, why, sizeof(why)),
			 -EREMOTEIO);
	assert_non_null(strstr(why, "invalid host send queue size"));
	assert_non_null(strstr(why, "queue 3"));
	nvl_rdma_cm_rej_encode(&rej, NVL_RDMA_CM_NO_RSC);
	assert_int_equal(host_rdma_reject_errno(28, &rej, sizeof(rej), 1, why, sizeof(why)), -EBUSY);
	/* short or foreign private data: not the controller's word */
	assert_int_equal(host_rdma_reject_errno(28, &rej, 3, 1, why, sizeof(why)), -ECONNREFUSED);

	nvl_rdma_cm_rep_encode(&rep, 31);
	assert_int_equal(host_rdma_accept_check(&rep, sizeof(rep), 32, why, sizeof(why)), 0);
	assert_int_equal(host_rdma_accept_check(NULL, 0, 32, why, sizeof(why)), 0);
	nvl_rdma_cm_rep_encode(&rep, 8);
	assert_int_equal(host_rdma_accept_check(&rep, sizeof(rep), 32, why, sizeof(why)), -EPROTO);
	rep.recfmt = 1;
	assert_int_equal(host_rdma_accept_check(&rep, sizeof(rep), 2, why, sizeof(why)), -EPROTO);
}

static void
test_connect(void **state)
{
	const uint32_t off = offsetof(struct nvl_nvmf_connect_data, subnqn);
	struct nvl_nvme_cpl c;
	uint16_t id = 0;
	char why[256];

	(void)state;
	c = cqe(0, 0, 5);
	assert_int_equal(host_rdma_connect_result(&c, 0, 0xffff, "s", "h", &id, why, sizeof(why)), 0);
	assert_int_equal(id, 5);
	/* an I/O queue joins the admin queue's controller */
	assert_int_equal(host_rdma_connect_result(&c, 1, 5, "s", "h", &id, why, sizeof(why)), 0);
	assert_int_equal(host_rdma_connect_result(&c, 1, 6, "s", "h", &id, why, sizeof(why)),
			 -EPROTO);
	c = cqe(0, 0, 0xfff0);
	assert_int_equal(host_rdma_connect_result(&c, 0, 0xffff, "s", "h", &id, why, sizeof(why)),
			 -EPROTO);
	c = cqe(0, 0, NVL_NVMF_CONNECT_AUTHREQ_ATR | 5);
	assert_int_equal(host_rdma_connect_result(&c, 0, 0xffff, "s", "h", &id, why, sizeof(why)),
			 -EOPNOTSUPP);
	c = cqe(0, NVL_NVME_SC_CONNECT_INVALID_HOST, 0);
	assert_int_equal(host_rdma_connect_result(&c, 0, 0xffff, "s", "h", &id, why, sizeof(why)),
			 -EACCES);
	c = cqe(0, NVL_NVME_SC_CONNECT_INVALID_PARAM, (off << 16) | 1);  /* nvlendd before 2026-12-07 */
	assert_int_equal(host_rdma_connect_result(&c, 0, 0xffff, "s", "h", &id, why, sizeof(why)),
			 -ENODEV);
	c = cqe(0, NVL_NVME_SC_CONNECT_INVALID_PARAM, (1u << 16) | off); /* NVMe-oF 1.1: Linux nvmet, SPDK, nvlendd */
	assert_int_equal(host_rdma_connect_result(&c, 0, 0xffff, "s", "h", &id, why, sizeof(why)),
			 -ENODEV);
	c = cqe(0, NVL_NVME_SC_CONNECT_INVALID_PARAM, (1u << 16) | 512);
	assert_int_equal(host_rdma_connect_result(&c, 0, 0xffff, "s", "h", &id, why, sizeof(why)),
			 -EREMOTEIO);
	c = cqe(0, NVL_NVME_SC_CONNECT_RESTART_DISCOVERY, 0);
	assert_int_equal(host_rdma_connect_result(&c, 0, 0xffff, "s", "h", &id, why, sizeof(why)),
			 -EADDRNOTAVAIL);
	c = cqe(0, NVL_NVME_SC_CONNECT_CTRL_BUSY, 0);
	assert_int_equal(host_rdma_connect_result(&c, 0, 0xffff, "s", "h", &id, why, sizeof(why)),
			 -EBUSY);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slots),
		cmocka_unit_test(test_reject_accept),
		cmocka_unit_test(test_connect),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
