/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the function tree and its vector pools (src/function/fn.c):
 * PF creation limits and the descriptor budget, vectors taken at function
 * creation, exhaustion, release_msix vs. links kept by VF id, reclaim,
 * type and id checks, and that every eventfd is closed again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "function/fn.c"
#include "common/ut.h"

#include <dirent.h>

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static struct nvl_fn_pf *
mkpf(uint16_t id, uint32_t msix, uint32_t vfs)
{
	struct nvl_fn_pf_opts o = { .pf_id = id, .type = NVL_FN_NVME, .num_msix = msix,
				    .max_vfs = vfs };
	struct nvl_fn_pf *pf = NULL;

	assert_int_equal(nvl_fn_pf_create(&o, &pf), 0);
	return pf;
}

static void
test_pf_create_limits(void **state)
{
	struct nvl_fn_pf_opts o = { .pf_id = 0, .type = NVL_FN_NVME };
	struct nvl_fn_pf *pf, *pf2;
	int fds = count_fds();

	(void)state;
	o.num_msix = NVL_FN_MAX_POOL + 1;
	assert_int_equal(nvl_fn_pf_create(&o, &pf), -EINVAL);
	o.num_msix = 8;
	o.max_vfs = NVL_FN_MAX_VFS + 1;
	assert_int_equal(nvl_fn_pf_create(&o, &pf), -EINVAL);
	o.max_vfs = 200; /* more than 127 */
	o.type = (enum nvl_fn_type)7;
	assert_int_equal(nvl_fn_pf_create(&o, &pf), -EINVAL);
	o.type = NVL_FN_NVME;
	assert_int_equal(nvl_fn_pf_create(&o, &pf), 0);
	assert_int_equal(count_fds(), fds + 8);
	assert_int_equal(nvl_fn_fd_used(), 8);
	assert_int_equal(nvl_fn_pf_create(&o, &pf2), -EEXIST);
	/* the pools are a descriptor budget */
	nvl_fn_set_fd_budget(20);
	o.pf_id = 1;
	o.num_msix = 13;
	assert_int_equal(nvl_fn_pf_create(&o, &pf2), -EMFILE);
	assert_int_equal(count_fds(), fds + 8);
	o.num_msix = 12;
	assert_int_equal(nvl_fn_pf_create(&o, &pf2), 0);
	assert_int_equal(nvl_fn_fd_used(), 20);
	/* listed in pf_id order */
	assert_ptr_equal(nvl_fn_pf_first(), pf);
	assert_ptr_equal(nvl_fn_pf_next(pf), pf2);
	assert_int_equal(nvl_fn_pf_destroy(pf2), 0);
	assert_int_equal(nvl_fn_pf_destroy(pf), 0);
	nvl_fn_set_fd_budget(0);
	assert_int_equal(nvl_fn_fd_used(), 0);
	assert_int_equal(count_fds(), fds);
	assert_true(nvl_fn_fd_budget() > 0);
}

static void
test_vectors_exhaust_release(void **state)
{
	struct nvl_fn_pf *pf = mkpf(3, 10, 300);
	struct nvl_fn *a, *b, *c, *d;
	char why[256];

	(void)state;
	assert_int_equal(nvl_fn_create(pf, NVL_FN_NO_VF, NVL_FN_NVME, "pf", 2, &a, why,
				       sizeof(why)), 0);
	assert_int_equal(pf->nfree, 8);
	assert_int_equal(nvl_fn_create(pf, 0, NVL_FN_NVME, "vf0", 4, &b, why, sizeof(why)), 0);
	assert_int_equal(nvl_fn_create(pf, 250, NVL_FN_NVME, "vf250", 4, &c, why, sizeof(why)),
			 0);
	assert_int_equal(pf->nfree, 0);
	/* distinct descriptors per function */
	for (uint32_t i = 0; i < 4; i++)
		for (uint32_t j = 0; j < 4; j++)
			assert_int_not_equal(nvl_fn_vector_fd(b, i), nvl_fn_vector_fd(c, j));
	assert_int_equal(nvl_fn_vector_fd(b, 4), -1);
	/* beyond the pool: refused, with the reason */
	assert_int_equal(nvl_fn_create(pf, 1, NVL_FN_NVME, "vf1", 1, &d, why, sizeof(why)),
			 -ENOSPC);
	assert_non_null(strstr(why, "0 free interrupt vectors of 10"));
	/* a function with none is fine (its queues are polled) */
	assert_int_equal(nvl_fn_create(pf, 1, NVL_FN_NVME, "vf1", 0, &d, why, sizeof(why)), 0);
	assert_int_equal(d->nvec, 0);
	nvl_fn_destroy(d, true);
	/* release_msix: back to the pool */
	nvl_fn_destroy(c, true);
	assert_int_equal(pf->nfree, 4);
	assert_int_equal(nvl_fn_pf_linked(pf, 250), 0);
	/* without: they stay linked to VF 0 */
	nvl_fn_destroy(b, false);
	assert_int_equal(pf->nfree, 4);
	assert_int_equal(nvl_fn_pf_linked(pf, 0), 4);
	/* a new function on VF 0 gets them back; a different count is refused */
	assert_int_equal(nvl_fn_create(pf, 0, NVL_FN_NVME, "vf0", 3, &b, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "still holds 4"));
	assert_int_equal(nvl_fn_create(pf, 0, NVL_FN_NVME, "vf0", 0, &b, why, sizeof(why)), 0);
	assert_int_equal(b->nvec, 4);
	assert_int_equal(pf->nfree, 4);
	/* reclaim returns only links without a live function */
	assert_int_equal(nvl_fn_pf_reclaim(pf), 0);
	nvl_fn_destroy(b, false);
	assert_int_equal(nvl_fn_pf_reclaim(pf), 4);
	assert_int_equal(pf->nfree, 8);
	assert_int_equal(nvl_fn_pf_reclaim(pf), 0);
	/* the PF's own vectors always go back */
	nvl_fn_destroy(a, false);
	assert_int_equal(pf->nfree, 10);
	assert_int_equal(nvl_fn_pf_destroy(pf), 0);
}

static void
test_create_checks(void **state)
{
	struct nvl_fn_pf *pf = mkpf(0, 4, 2);
	struct nvl_fn *a, *b;
	char why[256], longname[NVL_FN_NAME_MAX + 1];

	(void)state;
	assert_int_equal(nvl_fn_create(pf, 2, NVL_FN_NVME, "x", 0, &a, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "VFs 0..1"));
	assert_int_equal(nvl_fn_create(pf, -5, NVL_FN_NVME, "x", 0, &a, why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(nvl_fn_create(pf, 0, NVL_FN_VIRTIO_BLK, "x", 0, &a, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "is a nvme function"));
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(nvl_fn_create(pf, 0, NVL_FN_NVME, longname, 0, &a, why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(nvl_fn_create(pf, 0, NVL_FN_NVME, "x", 1, &a, why, sizeof(why)), 0);
	assert_int_equal(nvl_fn_create(pf, 1, NVL_FN_NVME, "x", 1, &b, why, sizeof(why)),
			 -EEXIST);
	assert_int_equal(nvl_fn_create(pf, 0, NVL_FN_NVME, "y", 1, &b, why, sizeof(why)),
			 -EEXIST);
	assert_ptr_equal(nvl_fn_find("x"), a);
	assert_ptr_equal(nvl_fn_find_id(0, 0), a);
	assert_null(nvl_fn_find_id(0, 1));
	assert_null(nvl_fn_find_id(9, 0));
	assert_int_equal(nvl_fn_pf_destroy(pf), -EBUSY);
	nvl_fn_destroy(a, true);
	assert_int_equal(nvl_fn_pf_destroy(pf), 0);
}

static void
test_stale_interrupt_drained(void **state)
{
	struct nvl_fn_pf *pf = mkpf(0, 1, 2);
	struct nvl_fn *a;
	char why[64];
	uint64_t one = 1, v;

	(void)state;
	assert_int_equal(nvl_fn_create(pf, 0, NVL_FN_NVME, "a", 1, &a, why, sizeof(why)), 0);
	assert_int_equal(write(nvl_fn_vector_fd(a, 0), &one, sizeof(one)), sizeof(one));
	nvl_fn_destroy(a, true);
	assert_int_equal(nvl_fn_create(pf, 1, NVL_FN_NVME, "b", 1, &a, why, sizeof(why)), 0);
	assert_int_equal(read(nvl_fn_vector_fd(a, 0), &v, sizeof(v)), -1);
	assert_int_equal(errno, EAGAIN);
	nvl_fn_destroy(a, true);
	assert_int_equal(nvl_fn_pf_destroy(pf), 0);
}

static void
test_types_and_json(void **state)
{
	enum nvl_fn_type t;
	struct nvl_fn_pf *pf = mkpf(5, 3, 1);
	json_t *j;

	(void)state;
	assert_int_equal(nvl_fn_type_parse("virtio-blk", &t), 0);
	assert_int_equal(t, NVL_FN_VIRTIO_BLK);
	assert_int_equal(nvl_fn_type_parse("nvme", &t), 0);
	assert_int_equal(t, NVL_FN_NVME);
	assert_int_equal(nvl_fn_type_parse("scsi", &t), -EINVAL);
	j = nvl_fn_pf_to_json(pf);
	assert_int_equal(json_integer_value(json_object_get(j, "num_free_msix")), 3);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "nvme");
	json_decref(j);
	assert_int_equal(nvl_fn_pf_destroy(pf), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pf_create_limits),
		cmocka_unit_test(test_vectors_exhaust_release),
		cmocka_unit_test(test_create_checks),
		cmocka_unit_test(test_stale_interrupt_drained),
		cmocka_unit_test(test_types_and_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
