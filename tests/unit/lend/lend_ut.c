/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of src/lend/lend.c (and the offer and borrow halves it
 * records) without a running daemon: the node identity
 * (created once, kept across starts, renamed by --node-name), lend records
 * written by add and read back by the replay's loader with every field,
 * refusals of add and remove, and LENDER:ID references.
 */
#include "lend/lend.c"
#include "lend/lend_borrow.c"
#include "lend/lend_offer.c"
#include "common/ut.h"

static char g_dir[64];

static void
reset_globals(void)
{
	struct lend_offer *o;
	struct lend_peer *p;
	struct lend_borrow *b;

	while ((o = TAILQ_FIRST(&g_lend.offers)) != NULL) {
		TAILQ_REMOVE(&g_lend.offers, o, link);
		free(o);
	}
	while ((p = TAILQ_FIRST(&g_lend.peers)) != NULL) {
		TAILQ_REMOVE(&g_lend.peers, p, link);
		free(p);
	}
	while ((b = TAILQ_FIRST(&g_lend.borrows)) != NULL) {
		TAILQ_REMOVE(&g_lend.borrows, b, link);
		free(b);
	}
	free(g_lend.opt_name);
	g_lend.opt_name = NULL;
	g_lend.node[0] = g_lend.node_id[0] = '\0';
	g_lend.identity_saved = false;
	g_lend.next_id = 1;
	memset(&g_lend.listener, 0, sizeof(g_lend.listener));
}

static int
setup(void **state)
{
	struct nvl_lend_opts o = { .state_dir = g_dir, .key_file = "/nonexistent" };

	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/lend_ut.%d", (int)getpid());
	reset_globals();
	assert_int_equal(nvl_lend_configure(&o), 0);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	reset_globals();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void
test_identity(void **state)
{
	struct nvl_lend_opts o = { .node_name = "alpha" };
	char id[NVL_LEND_UUID_LEN];

	(void)state;
	/* a daemon that never lends writes nothing */
	assert_int_equal(lend_init(), 0);
	assert_int_equal(access(g_dir, F_OK), -1);
	assert_true(nvl_lend_uuid_valid(g_lend.node_id));
	assert_int_equal(lend_identity_ensure(), 0);
	assert_int_equal(access(g_dir, F_OK), 0);
	memcpy(id, g_lend.node_id, sizeof(id));
	assert_non_null(strstr(g_lend.hostnqn, id));
	/* the next start keeps the id */
	reset_globals();
	assert_int_equal(lend_init(), 0);
	assert_string_equal(g_lend.node_id, id);
	/* --node-name renames and persists; the id stays */
	reset_globals();
	assert_int_equal(nvl_lend_configure(&o), 0);
	assert_int_equal(lend_init(), 0);
	assert_string_equal(g_lend.node, "alpha");
	assert_string_equal(g_lend.node_id, id);
	reset_globals();
	assert_int_equal(lend_init(), 0);
	assert_string_equal(g_lend.node, "alpha");
	/* bad names are refused */
	o.node_name = "-bad";
	assert_int_equal(nvl_lend_configure(&o), -EINVAL);
	o.node_name = "a b";
	assert_int_equal(nvl_lend_configure(&o), -EINVAL);
}

static void
test_records_roundtrip(void **state)
{
	char img[96], err[512];
	struct lend_offer *o;
	struct lend_borrow *b;
	uint32_t id1, id2;
	int fd;

	(void)state;
	assert_int_equal(lend_init(), 0);
	assert_int_equal(lend_identity_ensure(), 0);
	snprintf(img, sizeof(img), "%s/disk.img", g_dir);
	fd = open(img, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	assert_int_equal(lend_add(img, false, &id1, err, sizeof(err)), 0);
	assert_int_equal(lend_add(img, true, &id2, err, sizeof(err)), -EEXIST);
	assert_int_equal(lend_add("/nonexistent/x", false, &id2, err, sizeof(err)), -ENOENT);
	assert_int_equal(lend_add("/dev/null", false, &id2, err, sizeof(err)), -EINVAL);
	assert_int_equal(lend_add("nosuchbdev", false, &id2, err, sizeof(err)), -ENODEV);
	assert_int_equal(lend_add("brick:b0", true, &id2, err, sizeof(err)), 0);
	assert_int_equal(id2, id1 + 1);
	/* an available offer with a borrower, a peer and a borrow of ours, as the
	 * service would hold them */
	o = lend_offer_find(id1);
	assert_non_null(o);
	assert_int_equal(o->kind, LEND_KIND_FILE);
	assert_string_equal(o->bdev, "lend-1");
	o->state = LEND_AVAILABLE;
	o->last_rkey = 0x1234;
	nvl_strlcpy(o->borrowers[0].node, "b1", sizeof(o->borrowers[0].node));
	nvl_strlcpy(o->borrowers[0].node_id, "12345678-1234-4234-8234-123456789abc",
		    sizeof(o->borrowers[0].node_id));
	nvl_strlcpy(o->borrowers[0].hostnqn, "nqn.2014-08.org.nvmexpress:uuid:x",
		    sizeof(o->borrowers[0].hostnqn));
	nvl_strlcpy(o->borrowers[0].lease, "00112233445566778899aabbccddeeff",
		    sizeof(o->borrowers[0].lease));
	o->borrowers[0].rkey = 0x1234;
	o->nborrowers = 1;
	assert_int_equal(lend_remove(id1, err, sizeof(err)), -EBUSY);
	b = calloc(1, sizeof(*b));
	nvl_strlcpy(b->lender, "l9", sizeof(b->lender));
	b->id = 7;
	b->port = 4430;
	b->lease_ms = 3000;
	nvl_strlcpy(b->uri, "nvme+tcp://10.0.0.9:4420/nqn.2014-08.io.nvlend:lend:l9:7/1",
		    sizeof(b->uri));
	TAILQ_INSERT_TAIL(&g_lend.borrows, b, link);
	lend_peer_learn("l9", "22345678-1234-4234-8234-123456789abc", "10.0.0.9", 4430);
	g_lend.listener = (struct lend_listener){ .on = true, .traddr = "10.0.0.1", .trsvcid = "4430",
						  .nvme_trsvcid = "4420", .disc_trsvcid = "8009",
						  .lease_ms = 5000, .mdns = true };
	assert_int_equal(lend_save(), 0);

	reset_globals();
	assert_int_equal(lend_init(), 0);
	assert_int_equal(g_lend.next_id, id2 + 1);
	o = lend_offer_find(id1);
	assert_non_null(o);
	assert_int_equal(o->state, LEND_AVAILABLE);
	assert_string_equal(o->device, img);
	assert_int_equal(o->nborrowers, 1);
	assert_string_equal(o->borrowers[0].lease, "00112233445566778899aabbccddeeff");
	assert_int_equal(o->borrowers[0].rkey, 0x1234);
	assert_int_equal(o->last_rkey, 0x1234);
	o = lend_offer_find(id2);
	assert_non_null(o);
	assert_int_equal(o->kind, LEND_KIND_BRICK);
	assert_true(o->shared);
	assert_string_equal(o->device, "b0");
	assert_int_equal(o->state, LEND_UNAVAILABLE);
	assert_true(g_lend.listener.on);
	assert_true(g_lend.listener.mdns);
	assert_int_equal(g_lend.listener.lease_ms, 5000);
	b = lend_borrow_find("l9", 7);
	assert_non_null(b);
	assert_int_equal(b->lease_ms, 3000);
	assert_non_null(lend_peer_find("l9"));
	assert_int_equal(lend_remove(id2, err, sizeof(err)), 0);
	assert_null(lend_offer_find(id2));
	assert_int_equal(lend_remove(id2, err, sizeof(err)), -ENOENT);
}

static void
test_refs(void **state)
{
	struct lend_peer *p;
	char err[256];
	uint32_t id;

	(void)state;
	assert_int_equal(lend_init(), 0);
	assert_int_equal(parse_lend_ref("3", &p, &id, err, sizeof(err)), -EINVAL); /* nobody */
	lend_peer_learn("l1", "12345678-1234-4234-8234-123456789abc", "10.0.0.1", 4430);
	assert_int_equal(parse_lend_ref("3", &p, &id, err, sizeof(err)), 0);
	assert_string_equal(p->name, "l1");
	assert_int_equal(id, 3);
	lend_peer_learn("l2", "22345678-1234-4234-8234-123456789abc", "10.0.0.2", 4430);
	assert_int_equal(parse_lend_ref("3", &p, &id, err, sizeof(err)), -EINVAL); /* which? */
	assert_int_equal(parse_lend_ref("l2:4", &p, &id, err, sizeof(err)), 0);
	assert_string_equal(p->name, "l2");
	assert_int_equal(id, 4);
	assert_int_equal(parse_lend_ref("l3:4", &p, &id, err, sizeof(err)), -ENOENT);
	assert_int_equal(parse_lend_ref("l2:x", &p, &id, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse_lend_ref("l2:4294967296", &p, &id, err, sizeof(err)), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_records_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refs, setup, teardown),
	};

	nvl_log_set_level(0);
	return UT_RUN(tests);
}
