/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of src/util/fault_guard.c: a guarded mapping whose file is
 * truncated under it reads back zeroes and sets its flag instead of killing
 * the process; stores work too; an unguarded (or no longer guarded) mapping
 * still dies of SIGBUS (checked in a child); the table refuses bad input and
 * reports when full.
 *
 * Resuming a faulting store needs precise register state under valgrind:
 * valgrind-options: --vex-iropt-register-updates=allregs-at-mem-access
 */
#include "util/fault_guard.c"
#include "common/ut.h"

#include <sys/mman.h>
#include <sys/wait.h>

#define FG_LEN (4 * 4096)

static int
fg_file(void **map)
{
	int fd = memfd_create("fg_ut", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, FG_LEN), 0);
	*map = mmap(NULL, FG_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(*map != MAP_FAILED);
	memset(*map, 0xab, FG_LEN);
	return fd;
}

static void
test_truncated_guarded_mapping_reads_zeroes(void **state)
{
	volatile bool tripped = false;
	volatile uint8_t *p;
	void *map;
	unsigned long trips = nvl_fault_guard_trips();
	int fd = fg_file(&map), id;

	(void)state;
	id = nvl_fault_guard_add(map, FG_LEN, &tripped);
	assert_true(id >= 0);
	p = map;
	assert_int_equal(p[FG_LEN - 1], 0xab);  /* nothing happens while the file is whole */
	assert_false(tripped);
	assert_int_equal(ftruncate(fd, 4096), 0);
	/* page 3 is past the end now: the load faults, the guard replaces the range */
	assert_int_equal(p[3 * 4096 + 5], 0);
	assert_true(tripped);
	assert_int_equal(nvl_fault_guard_trips(), trips + 1);
	/* the whole range is private zero memory now, page 0 included; stores work */
	assert_int_equal(p[0], 0);
	p[FG_LEN - 1] = 7;
	assert_int_equal(p[FG_LEN - 1], 7);
	nvl_fault_guard_del(id);
	munmap(map, FG_LEN);
	close(fd);
}

static void
test_store_into_truncated_range(void **state)
{
	volatile bool tripped = false;
	void *map;
	int fd = fg_file(&map), id;

	(void)state;
	id = nvl_fault_guard_add(map, FG_LEN, &tripped);
	assert_true(id >= 0);
	assert_int_equal(ftruncate(fd, 0), 0);
	/* stores, as a bdev read into guest memory does (byte by byte: the
	 * faulting instruction is retried after the handler) */
	for (size_t i = 0; i < FG_LEN; i += 512)
		((volatile uint8_t *)map)[i] = 0x5a;
	((volatile uint8_t *)map)[100] = 0x5a;
	assert_true(tripped);
	assert_int_equal(((uint8_t *)map)[100], 0x5a);
	nvl_fault_guard_del(id);
	munmap(map, FG_LEN);
	close(fd);
}

/* In a child: touch a truncated mapping; guarded says whether it is still guarded. */
static int
child_touch(bool guard_then_delete)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		volatile bool tripped = false;
		void *map;
		int fd;

		/* the default action behind us, not the test framework's handler */
		signal(SIGBUS, SIG_DFL);
		fd = fg_file(&map);
		if (guard_then_delete)
			nvl_fault_guard_del(nvl_fault_guard_add(map, FG_LEN, &tripped));
		else
			/* another range is guarded: the handler is installed, this one is not */
			nvl_fault_guard_add((char *)map + FG_LEN * 16, 4096, &tripped);
		(void)!ftruncate(fd, 0);
		(void)!((volatile uint8_t *)map)[0];
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static void
test_unguarded_still_dies(void **state)
{
	int st;

	(void)state;
	st = child_touch(false);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGBUS);
	st = child_touch(true);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGBUS);
}

static void
test_bad_input_and_full_table(void **state)
{
	static volatile bool flag;
	static char page[4096];
	int ids[NVL_FAULT_GUARD_SLOTS];
	int n = 0, rc;

	(void)state;
	assert_int_equal(nvl_fault_guard_add(NULL, 4096, &flag), -EINVAL);
	assert_int_equal(nvl_fault_guard_add(page, 0, &flag), -EINVAL);
	assert_int_equal(nvl_fault_guard_add(page, 4096, NULL), -EINVAL);
	nvl_fault_guard_del(-1);
	nvl_fault_guard_del(NVL_FAULT_GUARD_SLOTS);
	while ((rc = nvl_fault_guard_add(page, sizeof(page), &flag)) >= 0)
		ids[n++] = rc;
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(n, NVL_FAULT_GUARD_SLOTS);
	nvl_fault_guard_del(ids[7]);
	assert_int_equal(nvl_fault_guard_add(page, sizeof(page), &flag), ids[7]);
	for (int i = 0; i < n; i++)
		nvl_fault_guard_del(ids[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_truncated_guarded_mapping_reads_zeroes),
		cmocka_unit_test(test_store_into_truncated_range),
		cmocka_unit_test(test_unguarded_still_dies),
		cmocka_unit_test(test_bad_input_and_full_table),
	};

	return UT_RUN(tests);
}
