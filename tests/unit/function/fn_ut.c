/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the function tree and its vector pools (src/function/fn.c):
 * PF creation limits and the descriptor budget, vectors taken at function
 * creation, exhaustion, release_msix vs. links kept by VF id, reclaim,
 * type and id checks, and that every eventfd is closed again; the pool kept
 * in a (fake) fd store across a restart of the worker: the same eventfds
 * and links come back, a pool that does not match is made anew.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "function/fn.c"
#include "common/ut.h"

#include <dirent.h>
#include <sys/eventfd.h>

/* ---- a fake fd store: what one worker put is passed back to the next ---- */
struct fake_fd {
	char name[64];
	int fd;          /* the store's copy */
	int inherited;   /* the next worker's, until it takes it */
};
static struct fake_fd g_store[64];
static unsigned g_nstore;
static bool g_store_on;

bool
nvl_fdstore_available(void)
{
	return g_store_on;
}

int
nvl_fdstore_put(const char *name, int fd)
{
	assert_true(g_store_on);
	assert_true(g_nstore < sizeof(g_store) / sizeof(g_store[0]));
	for (unsigned i = 0; i < g_nstore; i++)
		assert_string_not_equal(g_store[i].name, name); /* never stored twice */
	snprintf(g_store[g_nstore].name, sizeof(g_store[0].name), "%s", name);
	g_store[g_nstore].fd = dup(fd);
	g_store[g_nstore].inherited = -1;
	assert_true(g_store[g_nstore].fd >= 0);
	g_nstore++;
	return 0;
}

int
nvl_fdstore_remove(const char *name)
{
	for (unsigned i = 0; i < g_nstore; i++) {
		if (strcmp(g_store[i].name, name) == 0) {
			close(g_store[i].fd);
			if (g_store[i].inherited >= 0)
				close(g_store[i].inherited);
			g_store[i] = g_store[--g_nstore];
			return 0;
		}
	}
	return 0;
}

int
nvl_fdstore_take(const char *name)
{
	for (unsigned i = 0; i < g_nstore; i++) {
		if (strcmp(g_store[i].name, name) == 0 && g_store[i].inherited >= 0) {
			int fd = g_store[i].inherited;

			g_store[i].inherited = -1;
			return fd;
		}
	}
	return -ENOENT;
}

void
nvl_fdstore_for_each_untaken(void (*fn)(void *arg, const char *name, int fd), void *arg)
{
	for (unsigned i = 0; i < g_nstore; i++)
		if (g_store[i].inherited >= 0)
			fn(arg, g_store[i].name, g_store[i].inherited);
}

static struct fake_fd *
store_find(const char *name)
{
	for (unsigned i = 0; i < g_nstore; i++)
		if (strcmp(g_store[i].name, name) == 0)
			return &g_store[i];
	return NULL;
}

/* The worker dies: its PFs vanish without a word to the store (their
 * descriptors close with the process), the next worker inherits the store. */
static void
fake_restart(void)
{
	struct nvl_fn_pf *pf;

	while ((pf = TAILQ_FIRST(&g_pfs)) != NULL) {
		struct nvl_fn *f;

		while ((f = TAILQ_FIRST(&pf->fns)) != NULL) {
			TAILQ_REMOVE(&pf->fns, f, link);
			free(f->vec);
			free(f);
		}
		TAILQ_REMOVE(&g_pfs, pf, link);
		fn_pool_close(pf->pool_fds, pf->pool_size);
		if (pf->keep_fd >= 0) {
			munmap(pf->keep_map, pf->keep_size);
			close(pf->keep_fd);
		} else {
			free(pf->holder);
		}
		free(pf->pool_fds);
		free(pf);
	}
	g_fd_used = 0;
	for (unsigned i = 0; i < g_nstore; i++) {
		if (g_store[i].inherited >= 0)
			close(g_store[i].inherited); /* the untaken are released */
		g_store[i].inherited = dup(g_store[i].fd);
	}
}

static void
store_clear(void)
{
	for (unsigned i = 0; i < g_nstore; i++) {
		close(g_store[i].fd);
		if (g_store[i].inherited >= 0)
			close(g_store[i].inherited);
	}
	g_nstore = 0;
	g_store_on = false;
}

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

static void
test_keep_pool_restart(void **state)
{
	struct nvl_fn_pf *pf;
	struct nvl_fn *f1, *f2, *own;
	uint32_t gen, vec1[3];
	uint64_t one = 1, v = 0;
	char why[256];
	int fds = count_fds();

	(void)state;
	g_store_on = true;
	pf = mkpf(0, 8, 4);
	assert_false(pf->taken_back);
	assert_non_null(store_find("fn.pf.0.pool"));
	assert_non_null(store_find("fn.pf.0.v7"));
	assert_int_equal(g_nstore, 9);
	gen = pf->gen;
	assert_int_not_equal(gen, 0);
	assert_int_equal(nvl_fn_create(pf, NVL_FN_NO_VF, NVL_FN_NVME, "own", 1, &own, why,
				       sizeof(why)), 0);
	assert_int_equal(nvl_fn_create(pf, 1, NVL_FN_NVME, "vf1", 3, &f1, why, sizeof(why)), 0);
	assert_int_equal(nvl_fn_create(pf, 2, NVL_FN_NVME, "vf2", 2, &f2, why, sizeof(why)), 0);
	memcpy(vec1, f1->vec, sizeof(vec1));
	nvl_fn_destroy(f2, false); /* VF 2 keeps its two vectors */
	assert_int_equal(pf->nfree, 2);
	/* an interrupt pending on vf1's vector 0 when the worker dies */
	assert_int_equal(write(nvl_fn_vector_fd(f1, 0), &one, sizeof(one)), sizeof(one));

	fake_restart();
	pf = mkpf(0, 8, 4);
	assert_true(pf->taken_back);
	assert_int_equal(pf->gen, gen);
	assert_int_equal(pf->nfree, 2);
	assert_int_equal(nvl_fn_pf_linked(pf, NVL_FN_NO_VF), 1);
	assert_int_equal(nvl_fn_pf_linked(pf, 1), 3);
	assert_int_equal(nvl_fn_pf_linked(pf, 2), 2);
	/* the replayed configuration makes vf1 again: the same vectors, the same eventfds */
	assert_int_equal(nvl_fn_create(pf, 1, NVL_FN_NVME, "vf1", 3, &f1, why, sizeof(why)), 0);
	assert_memory_equal(f1->vec, vec1, sizeof(vec1));
	assert_int_equal(nvl_fn_vector_gen(f1), gen);
	assert_int_equal(read(nvl_fn_vector_fd(f1, 0), &v, sizeof(v)), sizeof(v));
	assert_int_equal(v, 1);
	assert_int_equal(nvl_fn_create(pf, NVL_FN_NO_VF, NVL_FN_NVME, "own", 1, &own, why,
				       sizeof(why)), 0);
	assert_int_equal(pf->nfree, 2);
	/* VF 2 asking for another count is refused as before the restart */
	assert_int_equal(nvl_fn_create(pf, 2, NVL_FN_NVME, "vf2", 1, &f2, why, sizeof(why)),
			 -EINVAL);
	/* links change in the kept record: a second restart sees the reclaim */
	assert_int_equal(nvl_fn_pf_reclaim(pf), 2);
	fake_restart();
	pf = mkpf(0, 8, 4);
	assert_true(pf->taken_back);
	assert_int_equal(pf->nfree, 4);
	assert_int_equal(nvl_fn_pf_linked(pf, 2), 0);
	assert_int_equal(nvl_fn_pf_linked(pf, 1), 3);
	/* the PF goes: so does everything it kept */
	assert_int_equal(nvl_fn_pf_destroy(pf), 0);
	assert_int_equal(g_nstore, 0);
	store_clear();
	assert_int_equal(count_fds(), fds);
}

static void
test_keep_pool_mismatch(void **state)
{
	struct nvl_fn_pf *pf;
	uint32_t gen;
	int fds = count_fds();

	(void)state;
	g_store_on = true;
	pf = mkpf(3, 8, 0);
	gen = pf->gen;
	/* the configuration asks for another pool size: a new pool, the old one forgotten */
	fake_restart();
	pf = mkpf(3, 4, 0);
	assert_false(pf->taken_back);
	assert_int_not_equal(pf->gen, gen);
	assert_int_equal(pf->nfree, 4);
	assert_int_equal(g_nstore, 5);
	assert_null(store_find("fn.pf.3.v4"));
	/* a vector missing from the store: not taken back either */
	fake_restart();
	nvl_fdstore_remove("fn.pf.3.v2");
	pf = mkpf(3, 4, 0);
	assert_false(pf->taken_back);
	assert_int_equal(g_nstore, 5);
	/* without a store nothing is kept */
	assert_int_equal(nvl_fn_pf_destroy(pf), 0);
	store_clear();
	pf = mkpf(3, 4, 0);
	assert_int_equal(pf->keep_fd, -1);
	assert_int_equal(nvl_fn_pf_destroy(pf), 0);
	assert_int_equal(count_fds(), fds);
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
		cmocka_unit_test(test_keep_pool_restart),
		cmocka_unit_test(test_keep_pool_mismatch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
