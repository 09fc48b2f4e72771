/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the nvme bdev module's discovery services
 * (src/module/bdev_nvme_discovery.c): from a discovery log to the
 * controllers attached and detached. The controllers are stubbed: attach
 * records the options and makes a fake controller, detach removes it (or
 * refuses while "in use").
 */
#include "module/bdev_nvme_discovery.c"
#include "common/ut.h"

/* defined by bdev_nvme_ctrlr.c, which is stubbed here */
NVL_LOG_REGISTER_COMPONENT(bdev_nvme)

#define FAKE_MAX 16

static struct nvme_ctrlr g_fake[FAKE_MAX];
static bool g_fake_used[FAKE_MAX];
static struct nvme_ctrlr_opts g_attached[FAKE_MAX];
static unsigned g_nattached, g_ndetached;
static bool g_busy; /* detach refused */

int
bdev_nvme_attach(const struct nvme_ctrlr_opts *o, nvme_done_fn done, void *arg,
		 struct nvme_ctrlr **out)
{
	for (unsigned i = 0; i < FAKE_MAX; i++) {
		if (g_fake_used[i])
			continue;
		memset(&g_fake[i], 0, sizeof(g_fake[i]));
		g_fake[i].o = *o;
		g_fake_used[i] = true;
		g_attached[g_nattached++ % FAKE_MAX] = *o;
		*out = &g_fake[i];
		done(arg, &g_fake[i], 0, NULL); /* at once, as a target that is up */
		return 0;
	}
	return -ENOMEM;
}

int
bdev_nvme_detach(struct nvme_ctrlr *c, nvme_done_fn done, void *arg, char *why, size_t why_len)
{
	if (g_busy) {
		snprintf(why, why_len, "bdev %sn1 is in use by nbd", c->o.name);
		return -EBUSY;
	}
	g_fake_used[c - g_fake] = false;
	g_ndetached++;
	done(arg, c, 0, NULL);
	return 0;
}

struct nvme_ctrlr *
bdev_nvme_ctrlr_find(const char *name)
{
	for (unsigned i = 0; i < FAKE_MAX; i++)
		if (g_fake_used[i] && strcmp(g_fake[i].o.name, name) == 0)
			return &g_fake[i];
	return NULL;
}

const char *
bdev_nvme_ctrlr_state(const struct nvme_ctrlr *c)
{
	(void)c;
	return "ready";
}

bool
bdev_nvme_ctrlr_in_use(const struct nvme_ctrlr *c, char *why, size_t why_len)
{
	(void)c;
	if (g_busy)
		snprintf(why, why_len, "in use");
	return g_busy;
}

/* A discovery service with no connection, fed logs by hand. */
static struct nvme_disc *
fake_disc(void)
{
	struct nvme_disc *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	nvl_strlcpy(d->o.name, "tgt", sizeof(d->o.name));
	nvl_strlcpy(d->o.traddr, "192.0.2.10", sizeof(d->o.traddr));
	nvl_strlcpy(d->o.trsvcid, "8009", sizeof(d->o.trsvcid));
	nvl_strlcpy(d->o.adrfam, "IPv4", sizeof(d->o.adrfam));
	nvl_strlcpy(d->o.hostnqn, "nqn.2026-01.io.example:h", sizeof(d->o.hostnqn));
	d->o.ctrlr_loss_timeout_sec = -1;
	d->o.reconnect_delay_sec = 2;
	d->state = DISC_READY;
	return d;
}

static void
fake_free(struct nvme_disc *d)
{
	for (unsigned i = 0; i < d->nents; i++)
		free(d->ents[i]);
	free(d->recs);
	free(d);
}

/* The log: each record "TYPE SUBNQN ADDR PORT" (TYPE n: NVMe/TCP, d: discovery, r: RDMA). */
static void
set_log(struct nvme_disc *d, const char *const *recs, unsigned n)
{
	free(d->recs);
	d->recs = calloc(n ? n : 1, sizeof(*d->recs));
	assert_non_null(d->recs);
	d->nrecs = n;
	for (unsigned i = 0; i < n; i++) {
		struct nvl_nvmf_discovery_entry *e = &d->recs[i];
		char type, nqn[64], addr[64], port[16];

		assert_int_equal(sscanf(recs[i], "%c %63s %63s %15s", &type, nqn, addr, port), 4);
		e->trtype = type == 'r' ? NVL_NVMF_TRTYPE_RDMA : NVL_NVMF_TRTYPE_TCP;
		e->adrfam = strchr(addr, ':') ? NVL_NVMF_ADRFAM_IPV6 : NVL_NVMF_ADRFAM_IPV4;
		e->subtype = type == 'd' ? NVL_NVMF_SUBTYPE_DISCOVERY_CURRENT : NVL_NVMF_SUBTYPE_NVME;
		/* fixed fields: space padded, as targets send them */
		memset(e->subnqn, 0, sizeof(e->subnqn));
		memcpy(e->subnqn, nqn, strlen(nqn));
		memset(e->traddr, ' ', sizeof(e->traddr));
		memcpy(e->traddr, addr, strlen(addr));
		memset(e->trsvcid, ' ', sizeof(e->trsvcid));
		memcpy(e->trsvcid, port, strlen(port));
	}
}

static void
reset(void)
{
	memset(g_fake_used, 0, sizeof(g_fake_used));
	g_nattached = g_ndetached = 0;
	g_busy = false;
}

static void
test_attach_and_follow(void **state)
{
	static const char *const log1[] = {
		"d nqn.2014-08.org.nvmexpress.discovery 192.0.2.10 8009",
		"n nqn.2026-01.io.example:a 192.0.2.10 4420",
		"n nqn.2026-01.io.example:b 192.0.2.11 4420",
		"r nqn.2026-01.io.example:rdma 192.0.2.10 4420",
	};
	static const char *const log2[] = {
		"n nqn.2026-01.io.example:b 192.0.2.11 4420",
		"n nqn.2026-01.io.example:c 0.0.0.0 4421",
	};
	struct nvme_disc *d = fake_disc();

	(void)state;
	reset();
	set_log(d, log1, 4);
	disc_process_log(d);
	/* the NVMe/TCP subsystems only, named NAME0, NAME1 */
	assert_int_equal(g_nattached, 2);
	assert_string_equal(g_attached[0].name, "tgt0");
	assert_string_equal(g_attached[0].subnqn, "nqn.2026-01.io.example:a");
	assert_string_equal(g_attached[0].traddr, "192.0.2.10");
	assert_string_equal(g_attached[0].trsvcid, "4420");
	assert_string_equal(g_attached[0].trtype, "TCP");
	assert_string_equal(g_attached[0].hostnqn, "nqn.2026-01.io.example:h");
	assert_true(g_attached[0].retry_first_connect);
	assert_int_equal(g_attached[0].reconnect_delay_sec, 2);
	assert_string_equal(g_attached[1].name, "tgt1");
	assert_string_equal(g_attached[1].traddr, "192.0.2.11");
	assert_string_equal(bdev_nvme_ctrlr_find("tgt0")->disc_name, "tgt");
	assert_true(d->log_read);

	/* the same log again: nothing new */
	disc_process_log(d);
	assert_int_equal(g_nattached, 2);
	assert_int_equal(g_ndetached, 0);

	/* a gone, c new (on every address: reached where discovery answered) */
	set_log(d, log2, 2);
	disc_process_log(d);
	assert_int_equal(g_ndetached, 1);
	assert_null(bdev_nvme_ctrlr_find("tgt0"));
	assert_non_null(bdev_nvme_ctrlr_find("tgt1"));
	assert_int_equal(g_nattached, 3);
	assert_string_equal(g_attached[2].name, "tgt2");
	assert_string_equal(g_attached[2].traddr, "192.0.2.10");
	assert_string_equal(g_attached[2].trsvcid, "4421");
	/* the detached entry is forgotten once its controller is gone */
	assert_int_equal(d->nents, 3);
	assert_int_equal(disc_reap(d), 2);
	fake_free(d);
}

static void
test_busy_removal_retried(void **state)
{
	static const char *const log1[] = { "n nqn.2026-01.io.example:a 192.0.2.10 4420" };
	struct nvme_disc *d = fake_disc();

	(void)state;
	reset();
	set_log(d, log1, 1);
	disc_process_log(d);
	assert_int_equal(g_nattached, 1);
	/* it leaves the log while its bdev is open: kept, retried */
	g_busy = true;
	set_log(d, NULL, 0);
	disc_process_log(d);
	assert_int_equal(g_ndetached, 0);
	assert_int_equal(d->nents, 1);
	assert_true(d->ents[0]->busy_warned);
	assert_int_equal(disc_reap(d), 1);
	/* the user let go: the next reap detaches it, the one after forgets it */
	g_busy = false;
	assert_int_equal(disc_reap(d), 1);
	assert_int_equal(g_ndetached, 1);
	assert_int_equal(disc_reap(d), 0);
	fake_free(d);
}

static void
test_stopping_detaches_all(void **state)
{
	static const char *const log1[] = {
		"n nqn.2026-01.io.example:a 192.0.2.10 4420",
		"n nqn.2026-01.io.example:b 192.0.2.10 4420",
	};
	struct nvme_disc *d = fake_disc();

	(void)state;
	reset();
	set_log(d, log1, 2);
	disc_process_log(d);
	assert_int_equal(g_nattached, 2);
	d->state = DISC_STOPPING;
	assert_int_equal(disc_reap(d), 2); /* detaches issued */
	assert_int_equal(g_ndetached, 2);
	assert_int_equal(disc_reap(d), 0); /* all gone: the service may close */
	fake_free(d);
}

/* trtype RDMA: its NVMe/RDMA entries attached as RDMA controllers, the TCP ones left */
static void
test_rdma_service(void **state)
{
	static const char *const log1[] = {
		"d nqn.2014-08.org.nvmexpress.discovery 192.0.2.10 4420",
		"n nqn.2026-01.io.example:tcp 192.0.2.10 4420",
		"r nqn.2026-01.io.example:rdma 192.0.2.10 4421",
		"r nqn.2026-01.io.example:any 0.0.0.0 4422",
	};
	struct nvme_disc *d = fake_disc();
	json_t *calls, *info;

	(void)state;
	reset();
	nvl_strlcpy(d->o.trtype, "RDMA", sizeof(d->o.trtype));
	set_log(d, log1, 4);
	disc_process_log(d);
	assert_int_equal(g_nattached, 2);
	assert_string_equal(g_attached[0].name, "tgt0");
	assert_string_equal(g_attached[0].subnqn, "nqn.2026-01.io.example:rdma");
	assert_string_equal(g_attached[0].trtype, "RDMA");
	assert_string_equal(g_attached[0].trsvcid, "4421");
	assert_string_equal(g_attached[1].subnqn, "nqn.2026-01.io.example:any");
	assert_string_equal(g_attached[1].trtype, "RDMA");
	assert_string_equal(g_attached[1].traddr, "192.0.2.10");

	/* what it shows and saves says RDMA */
	TAILQ_INSERT_TAIL(&g_discs, d, link);
	info = bdev_nvme_discovery_info_all();
	assert_int_equal(json_array_size(info), 1);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_array_get(info, 0), "trid"), "trtype")),
			    "RDMA");
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_array_get(json_object_get(json_array_get(info, 0),
								       "ctrlrs"),
						       0),
					"trid"),
			"trtype")),
		"RDMA");
	json_decref(info);
	calls = json_array();
	bdev_nvme_discovery_write_config(calls);
	assert_int_equal(json_array_size(calls), 1);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_array_get(calls, 0), "params"), "trtype")),
			    "rdma");
	json_decref(calls);
	TAILQ_REMOVE(&g_discs, d, link);
	fake_free(d);
}

/* Which entries a service attaches: NVMe subsystems over IP of its own transport. */
static void
test_entry_filter(void **state)
{
	static const struct {
		const char *svc;
		uint8_t subtype, trtype, adrfam;
		bool want;
	} t[] = {
		{ "TCP", NVL_NVMF_SUBTYPE_NVME, NVL_NVMF_TRTYPE_TCP, NVL_NVMF_ADRFAM_IPV4, true },
		{ "TCP", NVL_NVMF_SUBTYPE_NVME, NVL_NVMF_TRTYPE_TCP, NVL_NVMF_ADRFAM_IPV6, true },
		{ "TCP", NVL_NVMF_SUBTYPE_NVME, NVL_NVMF_TRTYPE_RDMA, NVL_NVMF_ADRFAM_IPV4, false },
		{ "", NVL_NVMF_SUBTYPE_NVME, NVL_NVMF_TRTYPE_TCP, NVL_NVMF_ADRFAM_IPV4, true },
		{ "", NVL_NVMF_SUBTYPE_NVME, NVL_NVMF_TRTYPE_RDMA, NVL_NVMF_ADRFAM_IPV4, false },
		{ "RDMA", NVL_NVMF_SUBTYPE_NVME, NVL_NVMF_TRTYPE_RDMA, NVL_NVMF_ADRFAM_IPV4, true },
		{ "RDMA", NVL_NVMF_SUBTYPE_NVME, NVL_NVMF_TRTYPE_RDMA, NVL_NVMF_ADRFAM_IPV6, true },
		{ "RDMA", NVL_NVMF_SUBTYPE_NVME, NVL_NVMF_TRTYPE_TCP, NVL_NVMF_ADRFAM_IPV4, false },
		{ "RDMA", NVL_NVMF_SUBTYPE_NVME, NVL_NVMF_TRTYPE_FC, NVL_NVMF_ADRFAM_IPV4, false },
		{ "RDMA", NVL_NVMF_SUBTYPE_NVME, NVL_NVMF_TRTYPE_RDMA, 3 /* InfiniBand */, false },
		{ "RDMA", NVL_NVMF_SUBTYPE_DISCOVERY_CURRENT, NVL_NVMF_TRTYPE_RDMA,
		  NVL_NVMF_ADRFAM_IPV4, false },
		{ "RDMA", NVL_NVMF_SUBTYPE_DISCOVERY_REFERRAL, NVL_NVMF_TRTYPE_RDMA,
		  NVL_NVMF_ADRFAM_IPV4, false },
	};
	struct nvme_disc_opts o;
	struct nvl_nvmf_discovery_entry x;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&o, 0, sizeof(o));
		memset(&x, 0, sizeof(x));
		nvl_strlcpy(o.trtype, t[i].svc, sizeof(o.trtype));
		x.subtype = t[i].subtype;
		x.trtype = t[i].trtype;
		x.adrfam = t[i].adrfam;
		if (disc_entry_wanted(&o, &x) != t[i].want)
			fail_msg("case %zu: service %s, entry type %u trtype %u adrfam %u", i,
				 t[i].svc, t[i].subtype, t[i].trtype, t[i].adrfam);
	}
}

static void
test_fixed_field(void **state)
{
	char out[8];

	(void)state;
	disc_field(out, sizeof(out), "4420    ", 8);
	assert_string_equal(out, "4420");
	disc_field(out, sizeof(out), "abcdefghij", 10); /* no terminator, longer than out */
	assert_string_equal(out, "abcdefg");
	disc_field(out, sizeof(out), "        ", 8);
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attach_and_follow),
		cmocka_unit_test(test_busy_removal_retried),
		cmocka_unit_test(test_stopping_detaches_all),
		cmocka_unit_test(test_rdma_service),
		cmocka_unit_test(test_entry_filter),
		cmocka_unit_test(test_fixed_field),
	};

	return UT_RUN(tests);
}
