/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the target core (src/nvmf/nvmf.c) without RPC, on one
 * reactor driven by nobody (the listeners' acceptors are registered on it):
 * NQN validation, subsystem creation rules, the discovery log a
 * host receives (the subsystems it may and may not see, listeners of transports
 * without a standard trtype omitted, growth past the initial capacity), and
 * namespace visibility through nvl_nvmf_get_ns / next_nsid.
 */
#include "nvmf/nvmf.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <sys/eventfd.h>
#include <cmocka.h>

/* ---- fake transports -------------------------------------------------------- */

static unsigned g_listens, g_stops;

/* the target watches what listen() opens: an eventfd does (nothing connects) */
static int
fake_listen(const struct nvl_listen_addr *a, int *fd)
{
	(void)a;
	*fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (*fd < 0)
		return -errno;
	g_listens++;
	return 0;
}

static void
fake_accept(const struct nvl_listen_addr *a, int fd)
{
	(void)a;
	close(fd);
}

static void
fake_stop_listen(const struct nvl_listen_addr *a)
{
	(void)a;
	g_stops++;
}

static void
fake_disconnect(struct nvl_nvmf_ctrlr *c)
{
	(void)c;
}

static struct nvl_transport_ops fake_tcp = {
	.name = "TCP",
	.nvmf_trtype = NVL_NVMF_TRTYPE_TCP,
	.listen = fake_listen,
	.accept = fake_accept,
	.stop_listen = fake_stop_listen,
	.ctrlr_disconnect = fake_disconnect,
};

static struct nvl_transport_ops fake_shm = {
	.name = "SHM",
	.nvmf_trtype = 0,
	.listen = fake_listen,
	.accept = fake_accept,
	.stop_listen = fake_stop_listen,
	.ctrlr_disconnect = fake_disconnect,
};

/* ---- NQN ------------------------------------------------------------------------ */

static char *
nqn_of_len(size_t len)
{
	const char *pfx = "nqn.2024-01.io.nvlend:";
	char *s = malloc(len + 1);

	memcpy(s, pfx, strlen(pfx));
	memset(s + strlen(pfx), 'x', len - strlen(pfx));
	s[len] = '\0';
	return s;
}

static void
test_nqn_validate(void **state)
{
	static const char *const good[] = {
		NVL_NVME_DISCOVERY_NQN,
		"nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
		"nqn.2014-08.org.nvmexpress:uuid:1B4E28BA-2FA1-11D2-883F-0016D3CCA427",
		"nqn.2024-01.io.nvlend:disk1",
		"nqn.2024-01.io.nvlend",
		"nqn.1999-12.com.example:sub:with:colons",
		"nqn.2024-01.io.nvlend:caf\xc3\xa9", /* UTF-8 */
		"nqn.2014-08.org.nvmexpress:NVMf:uuid:x", /* not the uuid form: generic rules */
	};
	static const char *const bad[] = {
		"",
		"nqn",
		"nqn.",
		"nqn.2024-01",
		"nqn.2024-01.",
		"nqn.2024-01.:x",
		"nqn2024-01.io.nvlend:x",
		"nqn.24-01.io.nvlend:x",
		"nqn.2024-1.io.nvlend:x",
		"nqn.2024_01.io.nvlend:x",
		"nqn.2024-01io.nvlend:x",
		"nqn.202a-01.io.nvlend:x",
		"NQN.2024-01.io.nvlend:x",
		"iqn.2024-01.io.nvlend:x",
		"nqn.2024-01.io.nvlend:tab\there",
		"nqn.2024-01.io.nvlend:nl\n",
		"nqn.2024-01.io.nvlend:del\x7f",
		"nqn.2014-08.org.nvmexpress:uuid:",
		"nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca42",
		"nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca4277",
		"nqn.2014-08.org.nvmexpress:uuid:zzzzzzzz-2fa1-11d2-883f-0016d3cca427",
		"nqn.2014-08.org.nvmexpress:uuid:1b4e28ba+2fa1-11d2-883f-0016d3cca427",
		"nqn.2014-08.org.nvmexpress:uuid:1b4e28ba2-fa1-11d2-883f-0016d3cca427",
		"nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca\x01\x02",
		"nqn.2014-08.org.nvmexpress:uuid:------------------------------------",
	};
	char *s;

	(void)state;
	for (size_t i = 0; i < NVL_ARRAY_SIZE(good); i++)
		if (nvl_nqn_validate(good[i]) != 0)
			fail_msg("valid NQN refused: %s", good[i]);
	for (size_t i = 0; i < NVL_ARRAY_SIZE(bad); i++)
		if (nvl_nqn_validate(bad[i]) != -EINVAL)
			fail_msg("invalid NQN accepted: %s", bad[i]);
	/* 223 bytes is the maximum (Base 4.5) */
	s = nqn_of_len(223);
	assert_int_equal(nvl_nqn_validate(s), 0);
	free(s);
	s = nqn_of_len(224);
	assert_int_equal(nvl_nqn_validate(s), -EINVAL);
	free(s);
	s = nqn_of_len(255);
	assert_int_equal(nvl_nqn_validate(s), -EINVAL);
	free(s);
	/* an unterminated field of exactly 256 bytes is read no further */
	char field[NVL_NVME_NQN_LEN + 8];

	memset(field, 'x', sizeof(field));
	memcpy(field, "nqn.2024-01.io.nvlend:", 22);
	field[sizeof(field) - 1] = '\0';
	assert_int_equal(nvl_nqn_validate(field), -EINVAL);
}

/* ---- subsystems and the discovery log -------------------------------------------- */

#define HOST_A "nqn.2024-01.io.nvlend:host-a"
#define HOST_B "nqn.2024-01.io.nvlend:host-b"
#define HOST_C "nqn.2024-01.io.nvlend:host-c"

static struct nvl_subsys *
mk_subsys(const char *nqn, bool any, uint32_t maxns)
{
	struct nvl_subsys_opts o = { .nqn = nqn, .allow_any_host = any, .max_namespaces = maxns };
	struct nvl_subsys *s = NULL;

	assert_int_equal(nvl_subsys_create(&o, &s), 0);
	return s;
}

static void
add_host(struct nvl_subsys *s, const char *nqn)
{
	struct nvmf_host *h = calloc(1, sizeof(*h));

	nvl_strlcpy(h->nqn, nqn, sizeof(h->nqn));
	TAILQ_INSERT_TAIL(&s->hosts, h, link);
}

/* What nvmf_subsystem_add_listener does, minus the RPC. */
static uint16_t
add_listener(struct nvl_subsys *s, const char *trtype, const char *adrfam, const char *traddr,
	     const char *trsvcid)
{
	struct nvmf_sub_listener *l = calloc(1, sizeof(*l));

	nvl_strlcpy(l->addr.trtype, trtype, sizeof(l->addr.trtype));
	nvl_strlcpy(l->addr.adrfam, adrfam, sizeof(l->addr.adrfam));
	nvl_strlcpy(l->addr.traddr, traddr, sizeof(l->addr.traddr));
	nvl_strlcpy(l->addr.trsvcid, trsvcid, sizeof(l->addr.trsvcid));
	assert_int_equal(nvmf_listener_get(&l->addr), 0);
	l->portid = ++g_nvmf.next_portid;
	TAILQ_INSERT_TAIL(&s->listeners, l, link);
	return l->portid;
}

static void
free_all_subsystems(void)
{
	struct nvl_subsys *s;

	while ((s = TAILQ_FIRST(&g_nvmf.subsystems)) != NULL) {
		struct nvmf_host *h;
		struct nvmf_sub_listener *l;

		while ((l = TAILQ_FIRST(&s->listeners)) != NULL) {
			TAILQ_REMOVE(&s->listeners, l, link);
			nvmf_listener_put(&l->addr);
			free(l);
		}
		while ((h = TAILQ_FIRST(&s->hosts)) != NULL) {
			TAILQ_REMOVE(&s->hosts, h, link);
			free(h);
		}
		TAILQ_REMOVE(&g_nvmf.subsystems, s, link);
		free(s->ns);
		free(s);
	}
	assert_true(TAILQ_EMPTY(&g_nvmf.listeners));
}

static int
teardown(void **state)
{
	(void)state;
	free_all_subsystems();
	return 0;
}

static void
test_subsys_create(void **state)
{
	struct nvl_subsys_opts o = { .nqn = "nqn.2024-01.io.nvlend:s1" };
	struct nvl_subsys *s, *d;

	(void)state;
	assert_int_equal(nvl_subsys_create(&o, &s), 0);
	assert_ptr_equal(nvl_subsys_find("nqn.2024-01.io.nvlend:s1"), s);
	assert_false(nvl_subsys_is_discovery(s));
	assert_false(s->allow_any_host);
	assert_int_equal(s->max_ns, 32);
	/* a stable serial derived from the NQN */
	assert_memory_equal(s->sn, "NVL", 3);
	assert_int_equal(strlen(s->sn), 11);
	assert_int_equal(nvl_subsys_create(&o, &d), -EEXIST);
	o.nqn = "not an nqn";
	assert_int_equal(nvl_subsys_create(&o, &d), -EINVAL);
	o.nqn = "nqn.2024-01.io.nvlend:s2";
	o.max_namespaces = NVL_NVMF_MAX_NS + 1;
	assert_int_equal(nvl_subsys_create(&o, &d), -EINVAL);
	o.max_namespaces = 0;
	o.serial_number = "123456789012345678901";
	assert_int_equal(nvl_subsys_create(&o, &d), -EINVAL);
	o.serial_number = NULL;
	o.model_number = "12345678901234567890123456789012345678901";
	assert_int_equal(nvl_subsys_create(&o, &d), -EINVAL);
	o.model_number = NULL;
	o.min_cntlid = 10;
	o.max_cntlid = 9;
	assert_int_equal(nvl_subsys_create(&o, &d), -EINVAL);
	o.max_cntlid = 0xfff0;
	assert_int_equal(nvl_subsys_create(&o, &d), -EINVAL);
	assert_null(nvl_subsys_find("nqn.2024-01.io.nvlend:s2"));
	/* the discovery subsystem lets every host in */
	o = (struct nvl_subsys_opts){ .nqn = NVL_NVME_DISCOVERY_NQN };
	assert_int_equal(nvl_subsys_create(&o, &d), 0);
	assert_true(nvl_subsys_is_discovery(d));
	assert_true(nvmf_host_allowed(d, HOST_C));
	/* hosts */
	assert_false(nvmf_host_allowed(s, HOST_A));
	add_host(s, HOST_A);
	assert_true(nvmf_host_allowed(s, HOST_A));
	assert_false(nvmf_host_allowed(s, HOST_B));
}

struct disc_view {
	struct nvl_nvmf_discovery_log *h;
	struct nvl_nvmf_discovery_entry *e;
	size_t len;
};

static void
disc_get(const char *host, struct disc_view *v)
{
	void *p = NULL;

	assert_int_equal(nvl_nvmf_discovery_log(host, &p, &v->len), 0);
	v->h = p;
	v->e = (void *)((uint8_t *)p + sizeof(*v->h));
	assert_int_equal(v->len, sizeof(*v->h) + v->h->numrec * sizeof(*v->e));
	assert_int_equal(v->h->recfmt, 0);
}

static const struct nvl_nvmf_discovery_entry *
disc_find(const struct disc_view *v, const char *subnqn, const char *traddr)
{
	char pad[256];

	nvl_strpad(pad, sizeof(pad), traddr);
	for (uint64_t i = 0; i < v->h->numrec; i++)
		if (strcmp(v->e[i].subnqn, subnqn) == 0 &&
		    memcmp(v->e[i].traddr, pad, sizeof(pad)) == 0)
			return &v->e[i];
	return NULL;
}

static void
test_discovery_log(void **state)
{
	struct nvl_subsys *disc, *s1, *s2, *s3;
	struct disc_view v;
	const struct nvl_nvmf_discovery_entry *e;
	uint16_t p_s1v4;
	uint64_t gen;

	(void)state;
	disc = mk_subsys(NVL_NVME_DISCOVERY_NQN, false, 0);
	s1 = mk_subsys("nqn.2024-01.io.nvlend:open", true, 0);
	s2 = mk_subsys("nqn.2024-01.io.nvlend:for-a", false, 0);
	s3 = mk_subsys("nqn.2024-01.io.nvlend:for-b", false, 0);
	mk_subsys("nqn.2024-01.io.nvlend:no-listeners", true, 0);
	add_host(s2, HOST_A);
	add_host(s3, HOST_B);
	add_listener(disc, "TCP", "IPv4", "127.0.0.1", "8009");
	p_s1v4 = add_listener(s1, "TCP", "IPv4", "10.0.0.1", "4420");
	add_listener(s1, "TCP", "IPv6", "::1", "4421");
	add_listener(s1, "SHM", "", "/run/nvlend/s1.sock", "");
	add_listener(s2, "TCP", "IPv4", "10.0.0.2", "4420");
	add_listener(s2, "SHM", "", "/run/nvlend/s2.sock", "");
	add_listener(s3, "TCP", "IPv4", "10.0.0.3", "4420");
	/* one transport listen() per distinct address */
	add_listener(s2, "TCP", "IPv4", "10.0.0.1", "4420");
	assert_int_equal(g_listens, 7);

	/* host A: discovery, both TCP listeners of s1, both of s2; no SHM, no s3 */
	disc_get(HOST_A, &v);
	assert_int_equal(v.h->numrec, 5);
	e = disc_find(&v, NVL_NVME_DISCOVERY_NQN, "127.0.0.1");
	assert_non_null(e);
	assert_int_equal(e->subtype, NVL_NVMF_SUBTYPE_DISCOVERY_CURRENT);
	e = disc_find(&v, "nqn.2024-01.io.nvlend:open", "10.0.0.1");
	assert_non_null(e);
	assert_int_equal(e->trtype, NVL_NVMF_TRTYPE_TCP);
	assert_int_equal(e->adrfam, NVL_NVMF_ADRFAM_IPV4);
	assert_int_equal(e->subtype, NVL_NVMF_SUBTYPE_NVME);
	assert_int_equal(e->treq, NVL_NVMF_TREQ_SECURE_CHANNEL_NOT_REQUIRED);
	assert_int_equal(e->portid, p_s1v4);
	assert_int_equal(e->cntlid, 0xffff);
	assert_true(e->asqsz >= 32);
	assert_memory_equal(e->trsvcid, "4420                            ", 32);
	assert_int_equal(e->subnqn[strlen("nqn.2024-01.io.nvlend:open")], '\0');
	assert_int_equal(e->traddr[8], ' ');
	e = disc_find(&v, "nqn.2024-01.io.nvlend:open", "::1");
	assert_non_null(e);
	assert_int_equal(e->adrfam, NVL_NVMF_ADRFAM_IPV6);
	assert_non_null(disc_find(&v, "nqn.2024-01.io.nvlend:for-a", "10.0.0.2"));
	assert_non_null(disc_find(&v, "nqn.2024-01.io.nvlend:for-a", "10.0.0.1"));
	assert_null(disc_find(&v, "nqn.2024-01.io.nvlend:for-b", "10.0.0.3"));
	for (uint64_t i = 0; i < v.h->numrec; i++) {
		assert_int_not_equal(v.e[i].trtype, 0);
		assert_null(strstr(v.e[i].traddr, "/run"));
	}
	gen = v.h->genctr;
	free(v.h);

	/* host B sees s3 instead of s2 */
	disc_get(HOST_B, &v);
	assert_int_equal(v.h->numrec, 4);
	assert_non_null(disc_find(&v, "nqn.2024-01.io.nvlend:for-b", "10.0.0.3"));
	assert_null(disc_find(&v, "nqn.2024-01.io.nvlend:for-a", "10.0.0.2"));
	free(v.h);
	/* host C only the open ones */
	disc_get(HOST_C, &v);
	assert_int_equal(v.h->numrec, 3);
	free(v.h);

	/* a change bumps the generation counter */
	nvl_nvmf_discovery_changed();
	disc_get(HOST_C, &v);
	assert_int_equal(v.h->genctr, gen + 1);
	free(v.h);

	/* past the initial capacity of 16 entries */
	for (unsigned i = 0; i < 40; i++) {
		char port[16];

		snprintf(port, sizeof(port), "%u", 5000 + i);
		add_listener(s1, "TCP", "IPv4", "10.0.0.9", port);
	}
	disc_get(HOST_C, &v);
	assert_int_equal(v.h->numrec, 43);
	for (unsigned i = 0; i < 40; i++) {
		char port[33];
		bool found = false;

		nvl_strpad(port, 32, "");
		snprintf(port, sizeof(port), "%u", 5000 + i);
		port[4] = ' ';
		for (uint64_t k = 0; k < v.h->numrec; k++)
			found |= memcmp(v.e[k].trsvcid, port, 32) == 0;
		assert_true(found);
	}
	free(v.h);
	/* a host on no list, with no discovery subsystem at all: empty log */
	free_all_subsystems();
	disc_get(HOST_A, &v);
	assert_int_equal(v.h->numrec, 0);
	assert_int_equal(v.len, 1024);
	free(v.h);
	assert_int_equal(g_stops, g_listens);
}

/* ---- namespace visibility -------------------------------------------------------- */

static void
test_ns_visibility(void **state)
{
	struct nvl_subsys *s = mk_subsys("nqn.2024-01.io.nvlend:vis", true, 8);
	struct nvl_nvmf_ns ns[3];
	struct nvl_nvmf_ctrlr ca, cb;
	char hosts[1][NVL_NVME_NQN_LEN];

	(void)state;
	memset(ns, 0, sizeof(ns));
	memset(&ca, 0, sizeof(ca));
	memset(&cb, 0, sizeof(cb));
	ca.subsys = cb.subsys = s;
	nvl_strlcpy(ca.nvme.hostnqn, HOST_A, sizeof(ca.nvme.hostnqn));
	nvl_strlcpy(cb.nvme.hostnqn, HOST_B, sizeof(cb.nvme.hostnqn));
	for (int i = 0; i < 3; i++) {
		ns[i].subsys = s;
		ns[i].auto_visible = true;
	}
	ns[0].nvme.nsid = 2;
	ns[1].nvme.nsid = 5;
	ns[2].nvme.nsid = 8;
	/* nsid 5 only for host A */
	ns[1].auto_visible = false;
	nvl_strlcpy(hosts[0], HOST_A, sizeof(hosts[0]));
	ns[1].hosts = hosts;
	ns[1].nhosts = 1;
	s->ns[1] = &ns[0];
	s->ns[4] = &ns[1];
	s->ns[7] = &ns[2];

	assert_ptr_equal(nvl_nvmf_get_ns(&ca.nvme, 2), &ns[0].nvme);
	assert_ptr_equal(nvl_nvmf_get_ns(&ca.nvme, 5), &ns[1].nvme);
	assert_null(nvl_nvmf_get_ns(&cb.nvme, 5));
	assert_null(nvl_nvmf_get_ns(&ca.nvme, 0));
	assert_null(nvl_nvmf_get_ns(&ca.nvme, 1));
	assert_null(nvl_nvmf_get_ns(&ca.nvme, 9));
	assert_null(nvl_nvmf_get_ns(&ca.nvme, NVL_NVME_NSID_ALL));
	assert_int_equal(nvl_nvmf_next_nsid(&ca.nvme, 0), 2);
	assert_int_equal(nvl_nvmf_next_nsid(&ca.nvme, 2), 5);
	assert_int_equal(nvl_nvmf_next_nsid(&cb.nvme, 2), 8);
	assert_int_equal(nvl_nvmf_next_nsid(&ca.nvme, 8), 0);
	assert_int_equal(nvl_nvmf_next_nsid(&ca.nvme, 0xfffffffd), 0);
	assert_int_equal(nvl_nvmf_next_nsid(&ca.nvme, NVL_NVME_NSID_ALL), 0);
	/* a namespace being removed is gone for everyone */
	ns[0].removing = true;
	assert_null(nvl_nvmf_get_ns(&ca.nvme, 2));
	assert_int_equal(nvl_nvmf_next_nsid(&ca.nvme, 0), 5);
	memset(s->ns, 0, sizeof(*s->ns) * s->max_ns);
}

static int
group_setup(void **state)
{
	struct nvl_reactor_opts o;

	(void)state;
	nvl_reactor_opts_default(&o);
	return nvl_reactors_init(&o);
}

static int
group_teardown(void **state)
{
	(void)state;
	nvl_reactors_fini();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nqn_validate),
		cmocka_unit_test_teardown(test_subsys_create, teardown),
		cmocka_unit_test_teardown(test_discovery_log, teardown),
		cmocka_unit_test_teardown(test_ns_visibility, teardown),
	};

	nvl_transport_register(&fake_tcp);
	nvl_transport_register(&fake_shm);
	nvl_log_set_level(0);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
