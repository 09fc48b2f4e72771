/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of reservations (src/nvme/nvme_resv.c): a state machine over all
 * six reservation types with three hosts (distinct host identifiers) and a
 * second controller of one host: Register/Unregister/Replace with IEKEY and
 * key mismatches, Acquire conflicts, Preempt (holder, non-holder
 * registrants, all-registrants types with PRKEY 0), Preempt and Abort,
 * Release with type mismatch, Clear, Report in both layouts, the access
 * check of every command class for holder / registrant / non-registrant,
 * notifications through ns->notify into each controller's log, and Persist
 * Through Power Loss: save, re-init, load, compare; malformed files refused.
 */
#include "nvme/nvme.c"
#include "nvme/nvme_admin.c"
#include "nvme/nvme_io.c"
#include "nvme/nvme_resv.c"

#include "common/nvme_ut_helpers.h"

#include <unistd.h>

/* short names for the table-like calls below */
#define WE NVL_NVME_RESV_WRITE_EXCLUSIVE
#define EA NVL_NVME_RESV_EXCLUSIVE_ACCESS
#define WE_RO NVL_NVME_RESV_WRITE_EXCLUSIVE_REG_ONLY
#define EA_RO NVL_NVME_RESV_EXCLUSIVE_ACCESS_REG_ONLY
#define WE_AR NVL_NVME_RESV_WRITE_EXCLUSIVE_ALL_REGS
#define EA_AR NVL_NVME_RESV_EXCLUSIVE_ACCESS_ALL_REGS
#define REGISTER NVL_NVME_RESV_REGISTER_REGISTER
#define UNREGISTER NVL_NVME_RESV_REGISTER_UNREGISTER
#define REPLACE NVL_NVME_RESV_REGISTER_REPLACE
#define ACQUIRE NVL_NVME_RESV_ACQUIRE_ACQUIRE
#define PREEMPT NVL_NVME_RESV_ACQUIRE_PREEMPT
#define PREEMPT_ABORT NVL_NVME_RESV_ACQUIRE_PREEMPT_ABORT
#define RELEASE NVL_NVME_RESV_RELEASE_RELEASE
#define CLEAR NVL_NVME_RESV_RELEASE_CLEAR

enum { A, A2, B, C, NCTRL };

#define KA 0xa1a1a1a1a1a1a1a1ull
#define KB 0xb2b2b2b2b2b2b2b2ull
#define KC 0xc3c3c3c3c3c3c3c3ull

struct note {
	uint8_t hostid[16];
	uint8_t type;
};

struct fx {
	struct ut_ns ns1;
	struct nvl_nvme_ns *tab[UT_NVME_MAX_NS];
	struct ut_ctrlr u[NCTRL];
	struct note notes[256];
	unsigned nnotes;
	char ptpl[64];
	uint8_t buf[16384];
};

static struct fx *g_fx;

/* What the target does: every controller of the host gets the notification. */
static void
notify(struct nvl_nvme_ns *ns, const uint8_t hostid[16], uint8_t type)
{
	struct fx *f = g_fx;

	assert_true(f->nnotes < NVL_ARRAY_SIZE(f->notes));
	memcpy(f->notes[f->nnotes].hostid, hostid, 16);
	f->notes[f->nnotes++].type = type;
	for (int i = 0; i < NCTRL; i++)
		if (memcmp(f->u[i].c.hostid, hostid, 16) == 0)
			nvl_nvme_ctrlr_resv_notify(&f->u[i].c, ns->nsid, type);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int fd;

	g_fx = f;
	ut_ns_create(&f->ns1, "resv_ns1", 1, 256, 512, false, NULL);
	f->ns1.ns.notify = notify;
	f->tab[0] = &f->ns1.ns;
	ut_ctrlr_init(&f->u[A], f->tab, 0xaa, 1);
	ut_ctrlr_init(&f->u[A2], f->tab, 0xaa, 2);
	ut_ctrlr_init(&f->u[B], f->tab, 0xbb, 3);
	ut_ctrlr_init(&f->u[C], f->tab, 0xcc, 4);
	snprintf(f->ptpl, sizeof(f->ptpl), "/tmp/nvl_ut_resv_XXXXXX");
	fd = mkstemp(f->ptpl);
	assert_true(fd >= 0);
	close(fd);
	unlink(f->ptpl);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char tmp[80];

	for (int i = 0; i < NCTRL; i++)
		ut_ctrlr_fini(&f->u[i]);
	ut_ns_destroy(&f->ns1);
	unlink(f->ptpl);
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->ptpl);
	unlink(tmp);
	free(f);
	g_fx = NULL;
	return 0;
}

/* ---- command helpers --------------------------------------------------------- */

static uint16_t
resv_cmd(struct fx *f, int who, uint8_t opc, uint32_t cdw10, uint64_t k1, uint64_t k2,
	 uint32_t len)
{
	struct nvl_nvme_cmd cmd = ut_cmd(opc, 1);
	uint8_t data[16];

	cmd.cdw10 = cdw10;
	memcpy(data, &k1, 8);
	memcpy(data + 8, &k2, 8);
	return ut_nvme_exec(&f->u[who].c, 1, &cmd, data, len);
}

static uint16_t
reg(struct fx *f, int who, uint8_t rrega, bool iekey, uint8_t cptpl, uint64_t crkey,
    uint64_t nrkey)
{
	return resv_cmd(f, who, NVL_NVME_IO_RESV_REGISTER,
			rrega | (iekey ? 8u : 0) | ((uint32_t)cptpl << 30), crkey, nrkey, 16);
}

static uint16_t
acq(struct fx *f, int who, uint8_t racqa, uint8_t rtype, uint64_t crkey, uint64_t prkey)
{
	return resv_cmd(f, who, NVL_NVME_IO_RESV_ACQUIRE, racqa | ((uint32_t)rtype << 8), crkey,
			prkey, 16);
}

static uint16_t
rel(struct fx *f, int who, uint8_t rrela, uint8_t rtype, uint64_t crkey)
{
	return resv_cmd(f, who, NVL_NVME_IO_RESV_RELEASE, rrela | ((uint32_t)rtype << 8), crkey, 0,
			8);
}

static uint16_t
rw1(struct fx *f, int who, uint8_t opc)
{
	struct nvl_nvme_cmd cmd = ut_cmd_rw(opc, 1, 0, 1);
	uint8_t data[512] = { 0 };

	if (opc == NVL_NVME_IO_DSM) {
		struct nvl_nvme_dsm_range r = { .nlb = 1, .slba = 0 };

		cmd = ut_cmd(NVL_NVME_IO_DSM, 1);
		cmd.cdw11 = NVL_NVME_DSM_AD;
		memcpy(data, &r, sizeof(r));
	} else if (opc == NVL_NVME_IO_FLUSH) {
		cmd = ut_cmd(NVL_NVME_IO_FLUSH, 1);
	}
	return ut_nvme_exec(&f->u[who].c, 1, &cmd, data, sizeof(data));
}

static uint32_t
gen(struct fx *f)
{
	return f->ns1.ns.resv.gen;
}

#define ST_CONFLICT                                                                                \
	(NVL_NVME_SC_TO_STATUS(NVL_NVME_SC_RESERVATION_CONFLICT) | NVL_NVME_STATUS_DNR)
#define ST_INVALID (NVL_NVME_SC_TO_STATUS(NVL_NVME_SC_INVALID_FIELD) | NVL_NVME_STATUS_DNR)
#define OK(x) assert_int_equal((x), 0)
#define CONFLICT(x) assert_int_equal((x), ST_CONFLICT)
#define INVALID(x) assert_int_equal((x), ST_INVALID)

static unsigned
notes_for(struct fx *f, uint8_t hostbyte, uint8_t type)
{
	unsigned n = 0;

	for (unsigned i = 0; i < f->nnotes; i++)
		if (f->notes[i].hostid[0] == hostbyte && f->notes[i].type == type)
			n++;
	return n;
}

/* ---- Register ------------------------------------------------------------------ */

static void
test_register_unregister_replace(void **state)
{
	struct fx *f = *state;

	OK(reg(f, A, REGISTER, false, 0, 0, KA));
	assert_int_equal(gen(f), 1);
	/* the same key again: success, nothing changes */
	OK(reg(f, A, REGISTER, false, 0, 0, KA));
	OK(reg(f, A2, REGISTER, false, 0, 0, KA)); /* same host */
	assert_int_equal(gen(f), 1);
	assert_int_equal(f->ns1.ns.resv.nreg, 1);
	/* another key for a registered host: conflict (IEKEY does not apply) */
	CONFLICT(reg(f, A, REGISTER, false, 0, 0, KB));
	CONFLICT(reg(f, A, REGISTER, true, 0, 0, KB));
	OK(reg(f, B, REGISTER, false, 0, 0, KB));
	assert_int_equal(gen(f), 2);
	/* unregister: key must match unless IEKEY */
	CONFLICT(reg(f, B, UNREGISTER, false, 0, KA, 0));
	OK(reg(f, B, UNREGISTER, true, 0, 12345, 0));
	assert_int_equal(gen(f), 3);
	CONFLICT(reg(f, B, UNREGISTER, true, 0, KB, 0)); /* not registered */
	/* replace */
	CONFLICT(reg(f, A, REPLACE, false, 0, KB, KC));
	OK(reg(f, A2, REPLACE, false, 0, KA, KC));
	assert_int_equal(f->ns1.ns.resv.reg[0].rkey, KC);
	assert_int_equal(gen(f), 4);
	OK(reg(f, A, REPLACE, true, 0, 999, KA));
	assert_int_equal(f->ns1.ns.resv.reg[0].rkey, KA);
	/* replace by a non-registrant: conflict, or a registration with IEKEY */
	CONFLICT(reg(f, C, REPLACE, false, 0, 0, KC));
	OK(reg(f, C, REPLACE, true, 0, 0, KC));
	assert_int_equal(f->ns1.ns.resv.nreg, 2);
	assert_int_equal(gen(f), 6);
	/* reserved RREGA values, CPTPL = 01b, PTPL without a PTPL file */
	for (uint8_t r = 3; r < 8; r++)
		INVALID(reg(f, B, r, false, 0, 0, KB));
	INVALID(reg(f, B, REGISTER, false, 1, 0, KB));
	INVALID(reg(f, B, REGISTER, false, 3, 0, KB));
	assert_int_equal(f->ns1.ns.resv.nreg, 2);
	/* data shorter than the 16-byte structure */
	uint16_t st = resv_cmd(f, B, NVL_NVME_IO_RESV_REGISTER, 0, 0, KB, 8);

	assert_int_equal(ut_sc(st), NVL_NVME_SC_DATA_SGL_LENGTH_INVALID);
	/* a controller without a host identifier cannot register */
	memset(f->u[B].c.hostid, 0, 16);
	st = reg(f, B, REGISTER, false, 0, 0, KB);
	assert_int_equal(ut_sc(st), NVL_NVME_SC_COMMAND_SEQUENCE_ERROR);
	assert_int_equal(f->ns1.ns.resv.nreg, 2);
	/* no reservation was ever acquired: nobody got a notification */
	assert_int_equal(f->nnotes, 0);
}

static void
test_register_capacity(void **state)
{
	struct fx *f = *state;
	struct ut_ctrlr *x = &f->u[C];

	for (int i = 0; i < NVL_NVME_MAX_REGISTRANTS; i++) {
		x->c.hostid[15] = (uint8_t)i;
		x->c.hostid[14] = 1;
		OK(reg(f, C, REGISTER, false, 0, 0, (uint64_t)i));
	}
	assert_int_equal(ut_sc(reg(f, A, REGISTER, false, 0, 0, KA)),
			 NVL_NVME_SC_CAPACITY_EXCEEDED);
	assert_int_equal(ut_sc(reg(f, A, REPLACE, true, 0, 0, KA)),
			 NVL_NVME_SC_CAPACITY_EXCEEDED);
	/* one leaves, one more fits */
	x->c.hostid[15] = 7;
	OK(reg(f, C, UNREGISTER, false, 0, 7, 0));
	OK(reg(f, A, REGISTER, false, 0, 0, KA));
	assert_int_equal(f->ns1.ns.resv.nreg, NVL_NVME_MAX_REGISTRANTS);
}

/* ---- the access matrix ----------------------------------------------------------- */

static void
test_access_by_type(void **state)
{
	struct fx *f = *state;
	/* expected outcome: bit 0 read allowed, bit 1 write allowed */
	static const struct {
		uint8_t type;
		uint8_t holder, registrant, other;
	} t[] = {
		{ WE, 3, 1, 1 },
		{ EA, 3, 0, 0 },
		{ WE_RO, 3, 3, 1 },
		{ EA_RO, 3, 3, 0 },
		{ WE_AR, 3, 3, 1 },
		{ EA_AR, 3, 3, 0 },
	};
	static const uint8_t reads[] = { NVL_NVME_IO_READ, NVL_NVME_IO_COMPARE };
	static const uint8_t writes[] = { NVL_NVME_IO_WRITE, NVL_NVME_IO_WRITE_ZEROES,
					  NVL_NVME_IO_DSM, NVL_NVME_IO_FLUSH };

	OK(reg(f, A, REGISTER, false, 0, 0, KA));
	OK(reg(f, B, REGISTER, false, 0, 0, KB));
	for (size_t i = 0; i < NVL_ARRAY_SIZE(t); i++) {
		const int who[] = { A, A2, B, C };
		const uint8_t allow[] = { t[i].holder, t[i].holder, t[i].registrant, t[i].other };

		OK(acq(f, A, ACQUIRE, t[i].type, KA, 0));
		assert_int_equal(f->ns1.ns.resv.rtype, t[i].type);
		for (size_t w = 0; w < NVL_ARRAY_SIZE(who); w++) {
			for (size_t r = 0; r < NVL_ARRAY_SIZE(reads); r++) {
				uint16_t st = rw1(f, who[w], reads[r]);

				if (allow[w] & 1)
					assert_true(ut_sc(st) == 0 ||
						    ut_sc(st) == NVL_NVME_SC_COMPARE_FAILURE);
				else
					CONFLICT(st);
			}
			for (size_t r = 0; r < NVL_ARRAY_SIZE(writes); r++) {
				uint16_t st = rw1(f, who[w], writes[r]);

				if (allow[w] & 2)
					OK(st);
				else
					CONFLICT(st);
			}
		}
		/* Report and the reservation commands themselves are never blocked */
		struct nvl_nvme_cmd rep = ut_cmd(NVL_NVME_IO_RESV_REPORT, 1);

		rep.cdw10 = 16 - 1;
		rep.cdw11 = 1;
		OK(ut_nvme_exec(&f->u[C].c, 1, &rep, f->buf, 64));
		/* release: everyone may access again */
		OK(rel(f, A, RELEASE, t[i].type, KA));
		assert_int_equal(f->ns1.ns.resv.rtype, 0);
		assert_int_equal(f->ns1.ns.resv.active, 0);
		OK(rw1(f, C, NVL_NVME_IO_WRITE));
		OK(rw1(f, C, NVL_NVME_IO_FLUSH));
	}
}

/* ---- Acquire ----------------------------------------------------------------------- */

static void
test_acquire(void **state)
{
	struct fx *f = *state;

	OK(reg(f, A, REGISTER, false, 0, 0, KA));
	OK(reg(f, B, REGISTER, false, 0, 0, KB));
	/* bad fields */
	INVALID(acq(f, A, ACQUIRE, 0, KA, 0));
	INVALID(acq(f, A, ACQUIRE, 7, KA, 0));
	INVALID(acq(f, A, 3, WE, KA, 0));
	/* non-registrant, wrong key */
	CONFLICT(acq(f, C, ACQUIRE, WE, 0, 0));
	CONFLICT(acq(f, A, ACQUIRE, WE, KB, 0));
	OK(acq(f, A, ACQUIRE, WE, KA, 0));
	/* the holder again with the same type: success; another type: conflict */
	OK(acq(f, A2, ACQUIRE, WE, KA, 0));
	CONFLICT(acq(f, A, ACQUIRE, EA, KA, 0));
	/* another registrant: conflict */
	CONFLICT(acq(f, B, ACQUIRE, WE, KB, 0));
	assert_int_equal(f->ns1.ns.resv.holder, 0);
	/* acquire does not change the generation */
	assert_int_equal(gen(f), 2);
	OK(rel(f, A, RELEASE, WE, KA));
	/* all-registrants: any registrant is a holder, acquiring again is fine */
	OK(acq(f, B, ACQUIRE, EA_AR, KB, 0));
	OK(acq(f, A, ACQUIRE, EA_AR, KA, 0));
	CONFLICT(acq(f, A, ACQUIRE, WE_AR,
		     KA, 0));
	assert_int_equal(f->ns1.ns.resv.holder, -1);
	assert_int_equal(f->nnotes, 0);
}

/* ---- Preempt ----------------------------------------------------------------------- */

static void
three_registered(struct fx *f)
{
	OK(reg(f, A, REGISTER, false, 0, 0, KA));
	OK(reg(f, B, REGISTER, false, 0, 0, KB));
	OK(reg(f, C, REGISTER, false, 0, 0, KC));
}

static void
test_preempt_holder(void **state)
{
	struct fx *f = *state;
	uint32_t g;

	for (uint8_t racqa = PREEMPT;
	     racqa <= PREEMPT_ABORT; racqa++) {
		three_registered(f);
		OK(acq(f, A, ACQUIRE, EA, KA, 0));
		g = gen(f);
		/* B fences dead host A: A is unregistered, B holds the new type */
		OK(acq(f, B, racqa, WE, KB, KA));
		assert_int_equal(gen(f), g + 1);
		assert_int_equal(f->ns1.ns.resv.rtype, WE);
		assert_int_equal(f->ns1.ns.resv.nreg, 2);
		assert_int_equal(notes_for(f, 0xaa, NVL_NVME_RESV_NOTIF_REGISTRATION_PREEMPTED), 1);
		/* both controllers of host A got it in their log */
		for (int who = A; who <= A2; who++) {
			struct nvl_nvme_cmd lp = ut_cmd_get_log(NVL_NVME_LOG_RESV_NOTIFICATION, 0,
								64, 0, false);
			struct nvl_nvme_resv_notification_log *n = (void *)f->buf;

			OK(ut_nvme_exec(&f->u[who].c, 0, &lp, f->buf, 64));
			assert_int_equal(n->type, NVL_NVME_RESV_NOTIF_REGISTRATION_PREEMPTED);
			assert_int_equal(n->nsid, 1);
		}
		/* A is fenced: no writes; reads are allowed by Write Exclusive */
		CONFLICT(rw1(f, A, NVL_NVME_IO_WRITE));
		OK(rw1(f, A, NVL_NVME_IO_READ));
		/* A cannot do anything with its old key */
		CONFLICT(rel(f, A, RELEASE, WE, KA));
		CONFLICT(acq(f, A, PREEMPT, WE, KA,
			     KB));
		/* C is still registered, B is the holder */
		OK(rw1(f, B, NVL_NVME_IO_WRITE));
		CONFLICT(rw1(f, C, NVL_NVME_IO_WRITE));
		/* clean slate for the next action */
		OK(rel(f, B, CLEAR, 0, KB));
		assert_int_equal(f->ns1.ns.resv.nreg, 0);
		f->nnotes = 0;
	}
}

static void
test_preempt_registrants(void **state)
{
	struct fx *f = *state;
	uint32_t g;

	three_registered(f);
	OK(acq(f, B, ACQUIRE, WE_RO, KB, 0));
	g = gen(f);
	/* a non-holder registrant is removed; the reservation stays */
	OK(acq(f, B, PREEMPT, WE_RO, KB, KC));
	assert_int_equal(gen(f), g + 1);
	assert_int_equal(f->ns1.ns.resv.rtype, WE_RO);
	assert_int_equal(f->ns1.ns.resv.nreg, 2);
	assert_int_equal(notes_for(f, 0xcc, NVL_NVME_RESV_NOTIF_REGISTRATION_PREEMPTED), 1);
	{
		struct nvl_nvme_ctrlr_stats before, after;

		nvl_nvme_ctrlr_get_stats(&f->u[C].c, &before);
		CONFLICT(rw1(f, C, NVL_NVME_IO_WRITE));
		nvl_nvme_ctrlr_get_stats(&f->u[C].c, &after);
		/* counted, as a conflict and as an error (metrics) */
		assert_int_equal(after.resv_conflicts, before.resv_conflicts + 1);
		assert_int_equal(after.errors, before.errors + 1);
	}
	OK(rw1(f, A, NVL_NVME_IO_WRITE));
	/* a key nobody has: conflict; PRKEY 0 with a holder: invalid field */
	CONFLICT(acq(f, A, PREEMPT, WE, KA, KC));
	INVALID(acq(f, A, PREEMPT, WE, KA, 0));
	/* a non-registrant cannot preempt */
	CONFLICT(acq(f, C, PREEMPT, WE, KC, KB));
	/* two registrants share the holder's key: both go */
	OK(reg(f, C, REGISTER, false, 0, 0, KB));
	f->nnotes = 0;
	OK(acq(f, A, PREEMPT, EA, KA, KB));
	assert_int_equal(f->ns1.ns.resv.nreg, 1);
	assert_int_equal(f->ns1.ns.resv.rtype, EA);
	assert_int_equal(f->ns1.ns.resv.holder, 0);
	assert_memory_equal(f->ns1.ns.resv.reg[0].hostid, f->u[A].c.hostid, 16);
	assert_int_equal(notes_for(f, 0xbb, NVL_NVME_RESV_NOTIF_REGISTRATION_PREEMPTED), 1);
	assert_int_equal(notes_for(f, 0xcc, NVL_NVME_RESV_NOTIF_REGISTRATION_PREEMPTED), 1);
	/* the holder preempts itself to change the type */
	OK(acq(f, A, PREEMPT, WE, KA, KA));
	assert_int_equal(f->ns1.ns.resv.rtype, WE);
	assert_int_equal(f->ns1.ns.resv.nreg, 1);
	assert_int_equal(f->ns1.ns.resv.holder, 0);
}

static void
test_preempt_no_reservation(void **state)
{
	struct fx *f = *state;

	three_registered(f);
	CONFLICT(acq(f, A, PREEMPT, WE, KA, 42));
	OK(acq(f, A, PREEMPT, WE, KA, KB));
	assert_int_equal(f->ns1.ns.resv.rtype, 0); /* no reservation is created */
	assert_int_equal(f->ns1.ns.resv.nreg, 2);
	assert_int_equal(notes_for(f, 0xbb, NVL_NVME_RESV_NOTIF_REGISTRATION_PREEMPTED), 1);
}

static void
test_preempt_all_regs(void **state)
{
	struct fx *f = *state;
	static const uint8_t all[] = { WE_AR,
				       EA_AR };

	for (size_t i = 0; i < NVL_ARRAY_SIZE(all); i++) {
		three_registered(f);
		OK(acq(f, A, ACQUIRE, all[i], KA, 0));
		/* PRKEY != 0: those registrants go, the reservation stays */
		OK(acq(f, B, PREEMPT, all[i], KB, KC));
		assert_int_equal(f->ns1.ns.resv.rtype, all[i]);
		assert_int_equal(f->ns1.ns.resv.nreg, 2);
		CONFLICT(acq(f, B, PREEMPT, all[i], KB, 77));
		/* PRKEY 0: every other registrant goes, new reservation for B */
		OK(reg(f, C, REGISTER, false, 0, 0, KC));
		f->nnotes = 0;
		OK(acq(f, B, PREEMPT_ABORT, EA,
		       KB, 0));
		assert_int_equal(f->ns1.ns.resv.rtype, EA);
		assert_int_equal(f->ns1.ns.resv.nreg, 1);
		assert_int_equal(f->ns1.ns.resv.holder, 0);
		assert_memory_equal(f->ns1.ns.resv.reg[0].hostid, f->u[B].c.hostid, 16);
		assert_int_equal(notes_for(f, 0xaa, NVL_NVME_RESV_NOTIF_REGISTRATION_PREEMPTED), 1);
		assert_int_equal(notes_for(f, 0xcc, NVL_NVME_RESV_NOTIF_REGISTRATION_PREEMPTED), 1);
		assert_int_equal(notes_for(f, 0xbb, NVL_NVME_RESV_NOTIF_REGISTRATION_PREEMPTED), 0);
		CONFLICT(rw1(f, A, NVL_NVME_IO_READ));
		OK(rw1(f, B, NVL_NVME_IO_WRITE));
		OK(rel(f, B, CLEAR, 0, KB));
		f->nnotes = 0;
	}
}

/* ---- Release, Clear, Unregister of the holder ----------------------------------------- */

static void
test_release_and_clear(void **state)
{
	struct fx *f = *state;
	uint32_t g;

	three_registered(f);
	OK(acq(f, A, ACQUIRE, EA_RO, KA, 0));
	g = gen(f);
	/* not the holder: success without effect */
	OK(rel(f, B, RELEASE, EA_RO, KB));
	assert_int_equal(f->ns1.ns.resv.rtype, EA_RO);
	/* wrong key, non-registrant, type mismatch, reserved action */
	CONFLICT(rel(f, A, RELEASE, EA_RO,
		     KB));
	OK(reg(f, C, UNREGISTER, false, 0, KC, 0));
	CONFLICT(rel(f, C, RELEASE, EA_RO,
		     KC));
	INVALID(rel(f, A, RELEASE, WE, KA));
	INVALID(rel(f, A, 2, EA_RO, KA));
	assert_int_equal(f->ns1.ns.resv.rtype, EA_RO);
	/* release of a registrants-only type tells the other registrants */
	f->nnotes = 0;
	OK(rel(f, A, RELEASE, EA_RO, KA));
	assert_int_equal(f->ns1.ns.resv.rtype, 0);
	assert_int_equal(gen(f), g + 1); /* only C's unregistration counted */
	assert_int_equal(f->nnotes, 1);
	assert_int_equal(notes_for(f, 0xbb, NVL_NVME_RESV_NOTIF_RESERVATION_RELEASED), 1);
	/* Write Exclusive / Exclusive Access releases tell nobody */
	OK(acq(f, A, ACQUIRE, WE, KA, 0));
	f->nnotes = 0;
	OK(rel(f, A, RELEASE, WE, KA));
	assert_int_equal(f->nnotes, 0);
	/* Clear: by any registrant with its key; everyone else is told */
	OK(reg(f, C, REGISTER, false, 0, 0, KC));
	OK(acq(f, A, ACQUIRE, WE, KA, 0));
	CONFLICT(rel(f, B, CLEAR, 0, KC));
	g = gen(f);
	OK(rel(f, B, CLEAR, 0, KB));
	assert_int_equal(gen(f), g + 1);
	assert_int_equal(f->ns1.ns.resv.rtype, 0);
	assert_int_equal(f->ns1.ns.resv.nreg, 0);
	assert_int_equal(notes_for(f, 0xaa, NVL_NVME_RESV_NOTIF_RESERVATION_PREEMPTED), 1);
	assert_int_equal(notes_for(f, 0xcc, NVL_NVME_RESV_NOTIF_RESERVATION_PREEMPTED), 1);
	assert_int_equal(notes_for(f, 0xbb, NVL_NVME_RESV_NOTIF_RESERVATION_PREEMPTED), 0);
	OK(rw1(f, C, NVL_NVME_IO_WRITE));
}

static void
test_unregister_holder(void **state)
{
	struct fx *f = *state;

	/* Write Exclusive: released silently */
	three_registered(f);
	OK(acq(f, A, ACQUIRE, WE, KA, 0));
	OK(reg(f, A, UNREGISTER, false, 0, KA, 0));
	assert_int_equal(f->ns1.ns.resv.rtype, 0);
	assert_int_equal(f->nnotes, 0);
	/* holder index follows removals of registrants before it */
	OK(acq(f, C, ACQUIRE, WE, KC, 0));
	OK(reg(f, B, UNREGISTER, false, 0, KB, 0));
	OK(rw1(f, C, NVL_NVME_IO_WRITE));
	CONFLICT(rw1(f, A, NVL_NVME_IO_WRITE));
	OK(reg(f, C, UNREGISTER, false, 0, KC, 0));
	assert_int_equal(f->ns1.ns.resv.rtype, 0);
	/* registrants only: released, the others are told */
	three_registered(f);
	OK(acq(f, B, ACQUIRE, WE_RO, KB, 0));
	OK(reg(f, B, UNREGISTER, false, 0, KB, 0));
	assert_int_equal(f->ns1.ns.resv.rtype, 0);
	assert_int_equal(notes_for(f, 0xaa, NVL_NVME_RESV_NOTIF_RESERVATION_RELEASED), 1);
	assert_int_equal(notes_for(f, 0xcc, NVL_NVME_RESV_NOTIF_RESERVATION_RELEASED), 1);
	assert_int_equal(f->nnotes, 2);
	/* all registrants: held until the last one goes */
	OK(reg(f, B, REGISTER, false, 0, 0, KB));
	OK(acq(f, B, ACQUIRE, WE_AR, KB, 0));
	OK(reg(f, B, UNREGISTER, false, 0, KB, 0));
	OK(reg(f, A, UNREGISTER, false, 0, KA, 0));
	assert_int_equal(f->ns1.ns.resv.rtype, WE_AR);
	CONFLICT(rw1(f, A, NVL_NVME_IO_WRITE));
	OK(rw1(f, C, NVL_NVME_IO_WRITE));
	OK(reg(f, C, UNREGISTER, false, 0, KC, 0));
	assert_int_equal(f->ns1.ns.resv.rtype, 0);
	OK(rw1(f, A, NVL_NVME_IO_WRITE));
}

/* ---- Report ---------------------------------------------------------------------------- */

static uint16_t
report(struct fx *f, int who, bool eds, uint32_t len)
{
	struct nvl_nvme_cmd cmd = ut_cmd(NVL_NVME_IO_RESV_REPORT, 1);

	cmd.cdw10 = len / 4 - 1;
	cmd.cdw11 = eds ? 1 : 0;
	memset(f->buf, 0xee, sizeof(f->buf));
	return ut_nvme_exec(&f->u[who].c, 1, &cmd, f->buf, len);
}

static void
test_report(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_resv_status *h = (void *)f->buf;

	OK(report(f, C, true, 4096));
	assert_int_equal(h->gen, 0);
	assert_int_equal(h->rtype, 0);
	assert_int_equal(h->regctl, 0);
	assert_int_equal(f->buf[64], 0xee); /* nothing past the header */

	OK(reg(f, A, REGISTER, false, 0, 0, KA));
	OK(reg(f, B, REGISTER, false, 0, 0, KB));
	OK(acq(f, B, ACQUIRE, EA, KB, 0));
	/* extended: 64-byte header and 64-byte entries with 128-bit host ids */
	OK(report(f, C, true, 4096));
	assert_int_equal(h->gen, 2);
	assert_int_equal(h->rtype, EA);
	assert_int_equal(h->regctl, 2);
	assert_int_equal(h->ptpls, 0);
	for (int i = 24; i < 64; i++)
		assert_int_equal(f->buf[i], 0);
	struct nvl_nvme_registered_ctrlr_ext *e = (void *)(f->buf + 64);

	assert_int_equal(e[0].cntlid, 0xffff);
	assert_int_equal(e[0].rcsts, 0);
	assert_int_equal(e[0].rkey, KA);
	assert_memory_equal(e[0].hostid, f->u[A].c.hostid, 16);
	assert_int_equal(e[1].rcsts, 1);
	assert_int_equal(e[1].rkey, KB);
	assert_memory_equal(e[1].hostid, f->u[B].c.hostid, 16);
	assert_int_equal(f->buf[64 + 128], 0xee);
	/* the 64-bit layout cannot carry 128-bit host identifiers: refused */
	assert_int_equal((report(f, C, false, 4096) >> 1) & 0x7ff, NVL_NVME_SC_HOSTID_INCONSISTENT);
	/* a short buffer gets the prefix */
	OK(report(f, C, true, 96));
	assert_int_equal(h->regctl, 2);
	assert_int_equal(e[0].rkey, KA);
	assert_int_equal(f->buf[96], 0xee);
	/* all registrants: everyone is a holder */
	OK(rel(f, B, RELEASE, EA, KB));
	OK(acq(f, A, ACQUIRE, WE_AR, KA, 0));
	OK(report(f, B, true, 4096));
	assert_int_equal(h->rtype, WE_AR);
	assert_int_equal(e[0].rcsts, 1);
	assert_int_equal(e[1].rcsts, 1);
	/* the generation counts registration changes, not acquire/release */
	assert_int_equal(h->gen, 2);
	OK(reg(f, A, REPLACE, false, 0, KA, KC));
	OK(report(f, B, true, 4096));
	assert_int_equal(h->gen, 3);
}

/* ---- Persist Through Power Loss ------------------------------------------------------ */

/* A namespace as the daemon would build it again after a restart. */
static void
reinit_ns(struct fx *f, struct nvl_nvme_ns *ns)
{
	memset(ns, 0, sizeof(*ns));
	assert_int_equal(nvl_nvme_ns_init(ns, 1, f->ns1.desc), 0);
	ns->ptpl_file = strdup(f->ptpl);
	ns->notify = notify;
}

static void
test_ptpl_roundtrip(void **state)
{
	struct fx *f = *state;
	struct nvl_nvme_ns again;
	uint8_t before[4096];
	const uint64_t bigkey = 0xfedcba9876543210ull; /* above INT64_MAX */

	f->ns1.ns.ptpl_file = strdup(f->ptpl);
	/* CPTPL = 11b on register turns persistence on and writes the file */
	OK(reg(f, A, REGISTER, false, 3, 0, bigkey));
	assert_int_equal(access(f->ptpl, F_OK), 0);
	OK(reg(f, B, REGISTER, false, 0, 0, KB));
	OK(reg(f, C, REGISTER, false, 0, 0, KC));
	OK(acq(f, B, ACQUIRE, EA_RO, KB, 0));
	OK(report(f, A, true, 4096));
	assert_int_equal(((struct nvl_nvme_resv_status *)f->buf)->ptpls, 1);
	memcpy(before, f->buf, sizeof(before));

	/* restart: a fresh namespace loads the same state */
	reinit_ns(f, &again);
	assert_int_equal(nvl_nvme_ns_load_ptpl(&again), 0);
	assert_int_equal(again.resv.nreg, 3);
	assert_int_equal(again.resv.rtype, EA_RO);
	assert_int_equal(again.resv.holder, 1);
	assert_int_equal(again.resv.gen, gen(f));
	assert_true(again.resv.ptpl);
	assert_int_equal(again.resv.active, 1);
	assert_int_equal(again.resv.reg[0].rkey, bigkey);
	for (unsigned i = 0; i < 3; i++) {
		assert_memory_equal(again.resv.reg[i].hostid, f->ns1.ns.resv.reg[i].hostid, 16);
		assert_int_equal(again.resv.reg[i].rkey, f->ns1.ns.resv.reg[i].rkey);
	}
	/* the restored namespace serves the same report and fences the same way */
	f->tab[0] = &again;
	OK(report(f, A, true, 4096));
	assert_memory_equal(before, f->buf, sizeof(before));
	OK(rw1(f, C, NVL_NVME_IO_READ));
	f->u[C].c.hostid[0] = 0xdd; /* a host that was never registered */
	CONFLICT(rw1(f, C, NVL_NVME_IO_READ));
	f->u[C].c.hostid[0] = 0xcc;
	/* changes keep persisting; CPTPL = 10b switches it off and removes the file */
	OK(reg(f, C, UNREGISTER, false, 0, KC, 0));
	struct nvl_nvme_ns third;

	reinit_ns(f, &third);
	assert_int_equal(nvl_nvme_ns_load_ptpl(&third), 0);
	assert_int_equal(third.resv.nreg, 2);
	nvl_nvme_ns_fini(&third);
	OK(reg(f, A, REGISTER, false, 2, 0, bigkey));
	assert_int_not_equal(access(f->ptpl, F_OK), 0);
	reinit_ns(f, &third);
	assert_int_equal(nvl_nvme_ns_load_ptpl(&third), 0); /* no file: nothing to load */
	assert_int_equal(third.resv.nreg, 0);
	assert_false(third.resv.ptpl);
	nvl_nvme_ns_fini(&third);
	f->tab[0] = &f->ns1.ns;
	nvl_nvme_ns_fini(&again);
}

/* A failed save changes nothing: the state is the one before the command,
 * and the status is Internal Error (issue 22: the change used to stick). */
static void
test_ptpl_save_fails(void **state)
{
	struct fx *f = *state;

	f->ns1.ns.ptpl_file = strdup("/nonexistent-nvlend-dir/ptpl.json");
	OK(reg(f, A, REGISTER, false, 0, 0, KA)); /* no persistence asked: no save */
	/* CPTPL = 11b needs a save, which fails: not registered, PTPL still off */
	assert_int_equal(reg(f, B, REGISTER, false, 3, 0, KB), NVL_NVME_SC_TO_STATUS(NVL_NVME_SC_INTERNAL));
	assert_int_equal(f->ns1.ns.resv.nreg, 1);
	assert_false(f->ns1.ns.resv.ptpl);
	OK(report(f, A, true, 4096));
	assert_int_equal(((struct nvl_nvme_resv_status *)f->buf)->ptpls, 0);
	/* persistence on, then the directory goes: an acquire is undone whole */
	free(f->ns1.ns.ptpl_file);
	f->ns1.ns.ptpl_file = strdup(f->ptpl);
	OK(reg(f, B, REGISTER, false, 3, 0, KB));
	assert_true(f->ns1.ns.resv.ptpl);
	free(f->ns1.ns.ptpl_file);
	f->ns1.ns.ptpl_file = strdup("/nonexistent-nvlend-dir/ptpl.json");
	assert_int_equal(acq(f, B, ACQUIRE, EA_RO, KB, 0), NVL_NVME_SC_TO_STATUS(NVL_NVME_SC_INTERNAL));
	assert_int_equal(f->ns1.ns.resv.rtype, 0);
	assert_int_equal(f->ns1.ns.resv.holder, -1);
	assert_int_equal(f->ns1.ns.resv.nreg, 2);
	OK(rw1(f, C, NVL_NVME_IO_WRITE)); /* nothing fences */
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

#define HID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void
test_ptpl_malformed(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {
		"",
		"not json",
		"[]",
		"{\"ptpl\": true, \"rtype\": 0, \"holder\": -1, \"gen\": 1}",
		"{\"rtype\": 0, \"holder\": -1, \"registrants\": {}}",
		"{\"rtype\": 7, \"holder\": -1, \"registrants\": []}",
		"{\"rtype\": -1, \"holder\": -1, \"registrants\": []}",
		"{\"rtype\": 4294967297, \"holder\": 0, \"registrants\": "
		"[{\"hostid\": \"" HID_A "\", \"rkey\": 1}]}",
		"{\"rtype\": 1, \"holder\": 1, \"registrants\": "
		"[{\"hostid\": \"" HID_A "\", \"rkey\": 1}]}",
		"{\"rtype\": 1, \"holder\": -2, \"registrants\": []}",
		/* a single-holder type with no holder */
		"{\"rtype\": 2, \"holder\": -1, \"registrants\": "
		"[{\"hostid\": \"" HID_A "\", \"rkey\": 1}]}",
		/* a holder without a reservation */
		"{\"rtype\": 0, \"holder\": 0, \"registrants\": "
		"[{\"hostid\": \"" HID_A "\", \"rkey\": 1}]}",
		"{\"rtype\": 0, \"holder\": -1, \"registrants\": "
		"[{\"hostid\": \"aa\", \"rkey\": 1}]}",
		"{\"rtype\": 0, \"holder\": -1, \"registrants\": [{\"rkey\": 1}]}",
		"{\"rtype\": 0, \"holder\": -1, \"registrants\": [5]}",
		"{\"rtype\": 0, \"holder\": -1, \"registrants\": "
		"[{\"hostid\": \"zzaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"rkey\": 1}]}",
		"{\"rtype\": 0, \"holder\": -1, \"registrants\": "
		"[{\"hostid\": \"-1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"rkey\": 1}]}",
		"{\"rtype\": 0, \"holder\": -1, \"registrants\": "
		"[{\"hostid\": \" aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"rkey\": 1}]}",
		/* the same host twice */
		"{\"rtype\": 0, \"holder\": -1, \"registrants\": "
		"[{\"hostid\": \"" HID_A "\", \"rkey\": 1}, "
		"{\"hostid\": \"" HID_A "\", \"rkey\": 2}]}",
		/* keys and counters must be integers */
		"{\"rtype\": 0, \"holder\": -1, \"registrants\": "
		"[{\"hostid\": \"" HID_A "\", \"rkey\": \"1\"}]}",
		"{\"rtype\": \"1\", \"holder\": 0, \"registrants\": "
		"[{\"hostid\": \"" HID_A "\", \"rkey\": 1}]}",
		/* an all-registrants reservation without a registrant (fuzz_ptpl) */
		"{\"rtype\": 5, \"holder\": -1, \"gen\": 0, \"registrants\": []}",
		"{\"rtype\": 6, \"holder\": -1, \"gen\": 3, \"registrants\": []}",
	};
	struct nvl_nvme_ns ns;

	for (size_t i = 0; i < NVL_ARRAY_SIZE(bad); i++) {
		write_file(f->ptpl, bad[i]);
		reinit_ns(f, &ns);
		if (nvl_nvme_ns_load_ptpl(&ns) != -EINVAL)
			fail_msg("malformed PTPL file %zu accepted: %s", i, bad[i]);
		/* nothing half-loaded */
		assert_int_equal(ns.resv.nreg, 0);
		assert_int_equal(ns.resv.rtype, 0);
		assert_int_equal(ns.resv.active, 0);
		nvl_nvme_ns_fini(&ns);
	}
	/* more registrants than the namespace holds */
	{
		char *big = malloc(65 * 80 + 128), *p = big;

		p += snprintf(p, 128, "{\"rtype\": 0, \"holder\": -1, \"registrants\": [");
		for (int i = 0; i < NVL_NVME_MAX_REGISTRANTS + 1; i++)
			p += snprintf(p, 80, "%s{\"hostid\": \"%032x\", \"rkey\": 1}", i ? "," : "",
				      i + 1);
		snprintf(p, 8, "]}");
		write_file(f->ptpl, big);
		free(big);
		reinit_ns(f, &ns);
		assert_int_equal(nvl_nvme_ns_load_ptpl(&ns), -EINVAL);
		nvl_nvme_ns_fini(&ns);
	}
	/* and a well-formed one is accepted */
	write_file(f->ptpl, "{\"ptpl\": true, \"rtype\": 6, \"holder\": -1, \"gen\": 9, "
			    "\"registrants\": [{\"hostid\": \"" HID_A "\", \"rkey\": 1}, "
			    "{\"hostid\": \"" HID_B "\", \"rkey\": 2}]}");
	reinit_ns(f, &ns);
	assert_int_equal(nvl_nvme_ns_load_ptpl(&ns), 0);
	assert_int_equal(ns.resv.nreg, 2);
	assert_int_equal(ns.resv.rtype, 6);
	assert_int_equal(ns.resv.gen, 9);
	assert_int_equal(ns.resv.reg[1].hostid[0], 0xbb);
	nvl_nvme_ns_fini(&ns);
	/* a directory is not a state file */
	reinit_ns(f, &ns);
	free(ns.ptpl_file);
	ns.ptpl_file = strdup("/tmp");
	assert_int_equal(nvl_nvme_ns_load_ptpl(&ns), -EINVAL);
	nvl_nvme_ns_fini(&ns);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_register_unregister_replace),
		T(test_register_capacity),
		T(test_access_by_type),
		T(test_acquire),
		T(test_preempt_holder),
		T(test_preempt_registrants),
		T(test_preempt_no_reservation),
		T(test_preempt_all_regs),
		T(test_release_and_clear),
		T(test_unregister_holder),
		T(test_report),
		T(test_ptpl_roundtrip),
		T(test_ptpl_malformed),
		T(test_ptpl_save_fails),
#undef T
	};

	nvl_log_set_level(0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
