/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the PTPL loader (nvl_nvme_ns_load_ptpl() in
 * src/nvme/nvme_resv.c): the input is the content of a namespace's
 * reservation state file (ptpl_file), which survives restarts and which
 * whoever can write that path controls. The loader must refuse anything
 * malformed (wrong types, integers out of range, a holder that does not fit
 * the reservation type, registrants beyond the table, duplicate hosts,
 * host identifiers that are not 32 hex digits) and leave no half-loaded
 * state behind.
 *
 * Checks (__builtin_trap): after a successful load the state is coherent
 * (at most NVL_NVME_MAX_REGISTRANTS registrants, distinct host
 * identifiers, a reservation type 0..6 with a holder exactly when the type
 * has a single holder, the holder a registrant); after a refused load no
 * registrant is left; and what loaded, saved again by nvme_ptpl_save() and
 * loaded into a fresh namespace, comes back equal.
 */
#include "nvme/nvme_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_path[64];

static void
cleanup(void)
{
	char tmp[80];

	unlink(g_path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", g_path);
	unlink(tmp);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	nvl_log_set_level(getenv("NVL_FUZZ_VERBOSE") ? 1 : 0);
	if (getenv("NVL_FUZZ_VERBOSE") == NULL)
		nvl_log_set_fd(-1, false);
	snprintf(g_path, sizeof(g_path), "/dev/shm/nvl-fuzz-ptpl-%d", (int)getpid());
	atexit(cleanup);
	return 0;
}

static void
ns_setup(struct nvl_nvme_ns *ns)
{
	memset(ns, 0, sizeof(*ns));
	ns->nsid = 1;
	pthread_mutex_init(&ns->resv.lock, NULL);
	ns->resv.holder = -1;
	ns->ptpl_file = g_path;
}

static bool
single_holder(uint8_t rtype)
{
	/* Write/Exclusive Access, and their Registrants Only forms: one holder */
	return rtype >= 1 && rtype <= 4;
}

static void
check_coherent(const struct nvl_nvme_resv *r)
{
	CHECK(r->nreg <= NVL_NVME_MAX_REGISTRANTS);
	CHECK(r->rtype <= 6);
	for (unsigned i = 0; i < r->nreg; i++)
		for (unsigned k = i + 1; k < r->nreg; k++)
			CHECK(memcmp(r->reg[i].hostid, r->reg[k].hostid, 16) != 0);
	if (r->rtype == 0) {
		CHECK(r->holder == -1);
	} else if (single_holder(r->rtype)) {
		CHECK(r->holder >= 0 && (unsigned)r->holder < r->nreg);
	} else {
		CHECK(r->holder == -1);
		CHECK(r->nreg > 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvl_nvme_ns ns, again;
	FILE *f;
	int rc;

	f = fopen(g_path, "w");
	if (f == NULL)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	ns_setup(&ns);
	rc = nvl_nvme_ns_load_ptpl(&ns);
	if (rc < 0) {
		CHECK(rc == -EINVAL);
		CHECK(ns.resv.nreg == 0);
		pthread_mutex_destroy(&ns.resv.lock);
		return 0;
	}
	CHECK(rc == 0 && ns.resv.ptpl);
	check_coherent(&ns.resv);
	/* round trip: what the daemon writes it must read back the same */
	CHECK(nvme_ptpl_save(&ns) == 0);
	ns_setup(&again);
	CHECK(nvl_nvme_ns_load_ptpl(&again) == 0);
	CHECK(again.resv.rtype == ns.resv.rtype && again.resv.holder == ns.resv.holder &&
	      again.resv.gen == ns.resv.gen && again.resv.nreg == ns.resv.nreg);
	for (unsigned i = 0; i < ns.resv.nreg; i++)
		CHECK(memcmp(&again.resv.reg[i], &ns.resv.reg[i], sizeof(ns.resv.reg[i])) == 0);
	pthread_mutex_destroy(&ns.resv.lock);
	pthread_mutex_destroy(&again.resv.lock);
	return 0;
}
