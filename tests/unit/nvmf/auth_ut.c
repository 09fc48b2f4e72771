/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the target's DH-HMAC-CHAP state machine (src/nvmf/auth.c),
 * driven through nvl_nvme_execute() (the dispatch and the gate of
 * src/nvme/nvme.c) by a host built from src/proto/nvme_auth.c: complete
 * transactions for every hash with and without DH, bidirectional, and the
 * failures — messages out of order, bad lengths, wrong transaction ids,
 * unusable hashes and groups, wrong responses, AUTH_Failure2, timeouts —
 * each ending in AUTH_Failure1 (or the host's refusal) and a queue that
 * runs nothing more and asks to be torn down.
 */
#include "nvmf/auth.c"
#include "common/ut.h"

static const char g_host[] = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555";
static const char g_sub[] = "nqn.2026-01.io.nvlend.test:ut";

static struct nvl_nvmf_ctrlr g_c;
static struct nvl_dhchap_key g_hkey, g_ckey;
static struct nvmf_auth *g_a;

struct done {
	int n;
	uint16_t status;        /* SCT<<8 | SC */
	uint32_t xfer_len;
};

static void
done_cb(struct nvl_nvme_req *req)
{
	struct done *d = req->transport_ctx;

	d->n++;
	d->status = (uint16_t)(NVL_NVME_STATUS_SCT(req->cpl.status) << 8 |
			       NVL_NVME_STATUS_SC(req->cpl.status));
	d->xfer_len = req->xfer_len;
}

/* Run one command on the queue whose state is a; buf/len is its data. */
static uint16_t
run(struct nvl_nvme_auth *a, const struct nvl_nvme_cmd *cmd, void *buf, uint32_t len,
    uint32_t *xfer)
{
	struct nvl_nvme_req r;
	struct done d = { 0 };

	memset(&r, 0, sizeof(r));
	r.cmd = *cmd;
	r.ctrlr = &g_c.nvme;
	r.qid = 0;
	r.iov = r.iov_inline;
	r.iov_inline[0].iov_base = buf;
	r.iov_inline[0].iov_len = len;
	r.iovcnt = len ? 1 : 0;
	r.data_len = len;
	r.done = done_cb;
	r.transport_ctx = &d;
	r.auth = a;
	nvl_nvme_execute(&r);
	assert_int_equal(d.n, 1);
	if (xfer)
		*xfer = d.xfer_len;
	return d.status;
}

static struct nvl_nvme_cmd
auth_cmd(bool send, uint32_t len)
{
	struct nvl_nvme_cmd c;
	struct nvl_nvmf_auth_cmd *a = (void *)&c;

	memset(&c, 0, sizeof(c));
	a->opc = NVL_NVME_ADM_FABRICS;
	a->fctype = send ? NVL_NVMF_FCTYPE_AUTH_SEND : NVL_NVMF_FCTYPE_AUTH_RECV;
	a->secp = NVL_NVMF_AUTH_SECP;
	a->spsp0 = a->spsp1 = NVL_NVMF_AUTH_SPSP;
	a->al_tl = len;
	return c;
}

static uint16_t
send_msg(const void *msg, size_t len)
{
	struct nvl_nvme_cmd c = auth_cmd(true, (uint32_t)len);

	return run(&g_a->base, &c, (void *)msg, (uint32_t)len, NULL);
}

static uint16_t
recv_msg(uint8_t *buf, uint32_t al, uint32_t *got)
{
	struct nvl_nvme_cmd c = auth_cmd(false, al);

	memset(buf, 0xee, al);
	return run(&g_a->base, &c, buf, al, got);
}

static uint16_t
keep_alive(void)
{
	struct nvl_nvme_cmd c;

	memset(&c, 0, sizeof(c));
	c.opc = NVL_NVME_ADM_KEEP_ALIVE;
	return run(&g_a->base, &c, NULL, 0, NULL);
}

static void
send_negotiate(uint16_t tid, const uint8_t *h, unsigned nh, const uint8_t *g, unsigned ng)
{
	uint8_t m[128];
	int n = nvl_dhchap_negotiate_encode(m, sizeof(m), tid, h, nh, g, ng);

	assert_true(n > 0);
	assert_int_equal(send_msg(m, (size_t)n), 0);
}

/* The next Receive must be AUTH_Failure1 with explanation rce; then the
 * queue runs nothing and wants its controller torn down. */
static void
expect_failure1(uint8_t rce)
{
	uint8_t buf[4096];
	uint32_t got = 0;
	uint16_t tid;
	uint8_t e;
	const char *why = NULL;

	assert_int_equal(recv_msg(buf, sizeof(buf), &got), 0);
	assert_int_equal(got, 8);
	assert_int_equal(buf[0], NVL_NVMF_AUTH_TYPE_COMMON);
	assert_int_equal(buf[1], NVL_NVMF_AUTH_ID_FAILURE1);
	assert_int_equal(nvl_dhchap_failure_decode(buf, got, &tid, &e), 0);
	assert_int_equal(e, rce);
	assert_int_equal(g_a->state, AUTH_FAILED);
	assert_int_equal(keep_alive(), NVL_NVME_SC_AUTH_REQUIRED);
	assert_false(nvl_nvmf_auth_expired(&g_a->base, g_a->failed_ns + 1, &why));
	assert_true(nvl_nvmf_auth_expired(&g_a->base, g_a->failed_ns + AUTH_FAIL_GRACE_NS + 1, &why));
	assert_non_null(why);
}

struct host_txn {
	uint16_t tid;
	uint8_t hashid, dhgid, hl;
	uint8_t c2[64];
	uint8_t sess[1024];
	size_t sl;
	uint32_t s2;
};

/* Receive the challenge and build the reply (optionally asking for R2). */
static int
host_reply(struct host_txn *t, bool bidir, const struct nvl_dhchap_key *hk, uint8_t *out,
	   size_t cap)
{
	uint8_t buf[4096], r1[64], tkey[64], dhv[1024];
	struct nvl_dhchap_challenge_info ci;
	struct nvl_dhchap_dh *dh = NULL;
	size_t tl;
	uint32_t got;

	assert_int_equal(recv_msg(buf, sizeof(buf), &got), 0);
	assert_int_equal(nvl_dhchap_challenge_decode(buf, got, &ci), 0);
	assert_int_equal(got, 16 + ci.hl + ci.dhvlen);
	assert_int_equal(ci.tid, t->tid);
	t->hashid = ci.hashid;
	t->dhgid = ci.dhgid;
	t->hl = ci.hl;
	t->sl = ci.dhvlen;
	assert_int_not_equal(ci.seqnum, 0);
	if (ci.dhvlen) {
		assert_int_equal(nvl_dhchap_dh_create(ci.dhgid, &dh), 0);
		assert_int_equal(nvl_dhchap_dh_public(dh, dhv, ci.dhvlen), 0);
		assert_int_equal(nvl_dhchap_dh_derive(dh, ci.dhv, ci.dhvlen, t->sess, ci.dhvlen), 0);
		nvl_dhchap_dh_destroy(dh);
	}
	assert_int_equal(nvl_dhchap_key_transform(hk, g_host, tkey, &tl), 0);
	assert_int_equal(nvl_dhchap_response(ci.hashid, tkey, tl, ci.c1, t->sess, t->sl, ci.seqnum,
					     t->tid, 0, false, g_host, g_sub, r1),
			 0);
	t->s2 = bidir ? 0x1234 : 0;
	nvl_dhchap_random(t->c2, ci.hl);
	return nvl_dhchap_reply_encode(out, cap, t->tid, ci.hl, r1, bidir ? t->c2 : NULL, t->s2,
				       ci.dhvlen ? dhv : NULL, ci.dhvlen);
}

/* A whole transaction; the host checks R2 with ckey when bidir. */
static void
authenticate(uint16_t tid, const uint8_t *h, unsigned nh, const uint8_t *g, unsigned ng,
	     bool bidir, uint8_t want_hash, uint8_t want_group)
{
	struct host_txn t = { .tid = tid };
	uint8_t msg[4096], r2[64], ck[64];
	struct nvl_dhchap_success1_info si;
	uint32_t got;
	size_t ckl;
	int n;

	send_negotiate(tid, h, nh, g, ng);
	n = host_reply(&t, bidir, &g_hkey, msg, sizeof(msg));
	assert_true(n > 0);
	assert_int_equal(t.hashid, want_hash);
	assert_int_equal(t.dhgid, want_group);
	assert_int_equal(send_msg(msg, (size_t)n), 0);
	assert_int_equal(recv_msg(msg, sizeof(msg), &got), 0);
	assert_int_equal(nvl_dhchap_success1_decode(msg, got, t.hl, &si), 0);
	assert_int_equal(si.tid, tid);
	assert_int_equal(si.rvalid, bidir);
	if (bidir) {
		assert_int_equal(nvl_dhchap_key_transform(&g_ckey, g_sub, ck, &ckl), 0);
		assert_int_equal(nvl_dhchap_response(t.hashid, ck, ckl, t.c2, t.sess, t.sl, t.s2, tid,
						     0, true, g_host, g_sub, r2),
				 0);
		assert_memory_equal(si.r2, r2, t.hl);
		assert_int_equal(nvl_dhchap_success2_encode(msg, sizeof(msg), tid), 16);
		assert_int_equal(send_msg(msg, 16), 0);
	}
	assert_int_equal(g_a->state, AUTH_DONE);
}

static int
setup(void **state)
{
	struct nvmf_auth_keys *k;
	struct nvmf_auth *a = NULL;

	(void)state;
	memset(&g_c, 0, sizeof(g_c));
	assert_int_equal(nvl_nvme_ctrlr_init(&g_c.nvme), 0);
	nvl_strlcpy(g_c.nvme.hostnqn, g_host, sizeof(g_c.nvme.hostnqn));
	nvl_strlcpy(g_c.nvme.subnqn, g_sub, sizeof(g_c.nvme.subnqn));
	g_c.nvme.cntlid = 1;
	g_c.nvme.csts = NVL_NVME_CSTS_RDY;
	g_c.nvme.auth_required = true;
	assert_int_equal(nvl_dhchap_key_generate(1, 32, &g_hkey), 0);
	assert_int_equal(nvl_dhchap_key_generate(3, 64, &g_ckey), 0);
	k = calloc(1, sizeof(*k));
	k->refs = 1;
	assert_int_equal(nvl_dhchap_key_transform(&g_hkey, g_host, k->host, &k->host_len), 0);
	assert_int_equal(nvl_dhchap_key_transform(&g_ckey, g_sub, k->ctrl, &k->ctrl_len), 0);
	g_c.auth_keys = k;
	assert_int_equal(auth_create(&g_c, 0, &a), 0);
	g_c.auth = &a->base;
	g_a = a;
	__atomic_store_n(&g_digests, 0xe, __ATOMIC_RELAXED);
	__atomic_store_n(&g_dhgroups, 0x3f, __ATOMIC_RELAXED);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	nvmf_auth_ctrlr_fini(&g_c);
	nvl_nvme_ctrlr_fini(&g_c.nvme);
	return 0;
}

static const uint8_t ALL_H[] = { 1, 2, 3 }, ALL_G[] = { 0, 1, 2, 3, 4, 5 };

static void
test_success_each_hash(void **state)
{
	(void)state;
	/* nothing but the transaction before it succeeded */
	assert_int_equal(keep_alive(), NVL_NVME_SC_AUTH_REQUIRED);
	for (uint8_t h = 1; h <= 3; h++) {
		const uint8_t groups[] = { 0, 1 };

		for (unsigned g = 0; g < 2; g++) {
			/* re-authentication on an authenticated queue after the first */
			authenticate((uint16_t)(h * 10 + g), &h, 1, &groups[g], 1, false, h,
				     groups[g]);
			assert_true(g_a->authenticated);
			assert_int_equal(keep_alive(), 0);
		}
	}
}

static void
test_strongest_and_allowed(void **state)
{
	const uint8_t h[] = { 1, 3, 2 }, g[] = { 2, 0, 1 };
	const char *d[] = { "sha256", "sha384" }, *grp[] = { "null", "ffdhe2048" };
	char err[128];

	(void)state;
	authenticate(1, h, 3, g, 3, false, 3, 2);
	assert_int_equal(nvmf_auth_set_algorithms(d, 2, grp, 2, err, sizeof(err)), 0);
	authenticate(2, ALL_H, 3, ALL_G, 6, true, 2, 1);
	/* nothing allowed offered */
	send_negotiate(3, (const uint8_t[]){ 3 }, 1, ALL_G, 6);
	expect_failure1(NVL_NVMF_AUTH_RCE_HASH_UNUSABLE);
}

static void
test_group_unusable(void **state)
{
	const char *grp[] = { "ffdhe4096" };
	char err[128];

	(void)state;
	assert_int_equal(nvmf_auth_set_algorithms(NULL, 0, grp, 1, err, sizeof(err)), 0);
	send_negotiate(3, ALL_H, 3, (const uint8_t[]){ 0, 1, 5 }, 3);
	expect_failure1(NVL_NVMF_AUTH_RCE_DHGROUP_UNUSABLE);
	assert_int_equal(nvmf_auth_set_algorithms((const char *[]){ "md5" }, 1, NULL, 0, err,
						  sizeof(err)),
			 -EINVAL);
}

static void
test_bidirectional(void **state)
{
	(void)state;
	authenticate(5, ALL_H, 3, ALL_G, 6, true, 3, 5);
	assert_true(auth_ready(&g_a->base));
}

static void
test_failure2(void **state)
{
	struct host_txn t = { .tid = 6 };
	uint8_t msg[4096];
	uint32_t got;
	int n;

	(void)state;
	send_negotiate(6, ALL_H, 3, (const uint8_t[]){ 0 }, 1);
	n = host_reply(&t, true, &g_hkey, msg, sizeof(msg));
	assert_int_equal(send_msg(msg, (size_t)n), 0);
	assert_int_equal(recv_msg(msg, sizeof(msg), &got), 0);
	/* the host does not like R2 */
	n = nvl_dhchap_failure_encode(msg, sizeof(msg), false, 6, NVL_NVMF_AUTH_RCE_FAILED);
	assert_int_equal(send_msg(msg, (size_t)n), 0);
	assert_int_equal(g_a->state, AUTH_FAILED);
	assert_int_equal(keep_alive(), NVL_NVME_SC_AUTH_REQUIRED);
}

static void
test_wrong_response(void **state)
{
	struct host_txn t = { .tid = 8 };
	struct nvl_dhchap_key wrong;
	uint8_t msg[4096];
	int n;

	(void)state;
	assert_int_equal(nvl_dhchap_key_generate(1, 32, &wrong), 0);
	send_negotiate(8, ALL_H, 3, ALL_G, 6);
	n = host_reply(&t, false, &wrong, msg, sizeof(msg));
	assert_int_equal(send_msg(msg, (size_t)n), 0);
	expect_failure1(NVL_NVMF_AUTH_RCE_FAILED);
}

static void
test_wrong_order(void **state)
{
	uint8_t msg[4096] = { 0 };
	uint32_t got;
	int n;

	(void)state;
	/* a Reply before any negotiation */
	n = nvl_dhchap_reply_encode(msg, sizeof(msg), 1, 32, msg + 2048, NULL, 0, NULL, 0);
	assert_int_equal(send_msg(msg, (size_t)n), 0);
	/* further Sends change nothing; the Receive says why */
	assert_int_equal(send_msg(msg, (size_t)n), 0);
	expect_failure1(NVL_NVMF_AUTH_RCE_INCORRECT_MESSAGE);
	teardown(state);
	setup(state);
	/* a Receive with nothing to receive */
	assert_int_equal(recv_msg(msg, sizeof(msg), &got), 0);
	assert_int_equal(msg[1], NVL_NVMF_AUTH_ID_FAILURE1);
	assert_int_equal(msg[7], NVL_NVMF_AUTH_RCE_INCORRECT_MESSAGE);
	assert_int_equal(g_a->state, AUTH_FAILED);
	teardown(state);
	setup(state);
	/* Success2 right after the negotiation */
	send_negotiate(2, ALL_H, 3, ALL_G, 6);
	assert_int_equal(nvl_dhchap_success2_encode(msg, sizeof(msg), 2), 16);
	assert_int_equal(send_msg(msg, 16), 0);
	expect_failure1(NVL_NVMF_AUTH_RCE_INCORRECT_MESSAGE);
	teardown(state);
	setup(state);
	/* a second Negotiate in the middle of a transaction */
	send_negotiate(2, ALL_H, 3, ALL_G, 6);
	send_negotiate(3, ALL_H, 3, ALL_G, 6);
	expect_failure1(NVL_NVMF_AUTH_RCE_INCORRECT_MESSAGE);
	teardown(state);
	setup(state);
	/* a message only a controller sends */
	n = nvl_dhchap_success1_encode(msg, sizeof(msg), 1, 32, NULL);
	assert_int_equal(send_msg(msg, (size_t)n), 0);
	expect_failure1(NVL_NVMF_AUTH_RCE_INCORRECT_MESSAGE);
}

static void
test_bad_lengths_and_fields(void **state)
{
	struct host_txn t = { .tid = 4 };
	uint8_t msg[4096];
	struct nvl_nvme_cmd c;
	uint32_t got;
	int n;

	(void)state;
	/* TL 0, TL beyond the limit, data shorter than TL, SECP, SPSP: Invalid Field */
	c = auth_cmd(true, 0);
	assert_int_equal(run(&g_a->base, &c, msg, 0, NULL), NVL_NVME_SC_INVALID_FIELD);
	c = auth_cmd(true, 100);
	assert_int_equal(run(&g_a->base, &c, msg, 50, NULL), NVL_NVME_SC_INVALID_FIELD);
	c = auth_cmd(false, NVL_NVME_AUTH_MAX_RECV + 1);
	{
		struct nvl_nvme_req r = { .cmd = c };
		uint32_t len;
		uint8_t dir;

		assert_int_equal(nvl_nvme_req_xfer(&r, &len, &dir) & 0x7ff,
				 NVL_NVME_SC_INVALID_FIELD);
		r.cmd = auth_cmd(true, 200);
		assert_int_equal(nvl_nvme_req_xfer(&r, &len, &dir), 0);
		assert_int_equal(len, 200);
		assert_int_equal(dir, NVL_NVME_XFER_H2C);
	}
	c = auth_cmd(true, 72);
	((struct nvl_nvmf_auth_cmd *)&c)->secp = 0xea;
	assert_int_equal(run(&g_a->base, &c, msg, 72, NULL), NVL_NVME_SC_INVALID_FIELD);
	c = auth_cmd(false, 4096);
	((struct nvl_nvmf_auth_cmd *)&c)->spsp1 = 2;
	assert_int_equal(run(&g_a->base, &c, msg, 4096, NULL), NVL_NVME_SC_INVALID_FIELD);
	assert_int_equal(g_a->state, AUTH_NEGOTIATE);
	/* a Negotiate one byte short */
	n = nvl_dhchap_negotiate_encode(msg, sizeof(msg), 4, ALL_H, 3, ALL_G, 6);
	assert_int_equal(send_msg(msg, (size_t)n - 1), 0);
	expect_failure1(NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD);
	teardown(state);
	setup(state);
	/* AL too small for the challenge: refused, then asked again */
	send_negotiate(4, ALL_H, 3, (const uint8_t[]){ 5 }, 1);
	assert_int_equal(recv_msg(msg, 100, &got), NVL_NVME_SC_INVALID_FIELD);
	assert_int_equal(g_a->state, AUTH_CHALLENGE);
	n = host_reply(&t, false, &g_hkey, msg, sizeof(msg));
	/* the Reply with one byte too many */
	assert_int_equal(send_msg(msg, (size_t)n + 1), 0);
	expect_failure1(NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD);
	teardown(state);
	setup(state);
	/* a Reply whose DH value has the wrong length */
	t = (struct host_txn){ .tid = 4 };
	send_negotiate(4, ALL_H, 3, (const uint8_t[]){ 1 }, 1);
	n = host_reply(&t, false, &g_hkey, msg, sizeof(msg));
	msg[10] = 0x80; /* dhvlen 256 -> 128: lengths disagree */
	msg[11] = 0;
	assert_int_equal(send_msg(msg, (size_t)n - 128), 0);
	expect_failure1(NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD);
}

static void
test_wrong_tid(void **state)
{
	struct host_txn t = { .tid = 9 };
	uint8_t msg[4096];
	uint32_t got;
	int n;

	(void)state;
	send_negotiate(9, ALL_H, 3, ALL_G, 6);
	n = host_reply(&t, false, &g_hkey, msg, sizeof(msg));
	msg[4] ^= 1; /* T_ID */
	assert_int_equal(send_msg(msg, (size_t)n), 0);
	expect_failure1(NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD);
	teardown(state);
	setup(state);
	t = (struct host_txn){ .tid = 9 };
	send_negotiate(9, ALL_H, 3, ALL_G, 6);
	n = host_reply(&t, true, &g_hkey, msg, sizeof(msg));
	assert_int_equal(send_msg(msg, (size_t)n), 0);
	assert_int_equal(recv_msg(msg, sizeof(msg), &got), 0);
	assert_int_equal(nvl_dhchap_success2_encode(msg, sizeof(msg), 10), 16);
	assert_int_equal(send_msg(msg, 16), 0);
	expect_failure1(NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD);
}

static void
test_unusable_proposals(void **state)
{
	uint8_t msg[256];
	struct nvl_nvmf_auth_negotiate *m = (void *)msg;
	int n;

	(void)state;
	/* unknown hash ids only */
	send_negotiate(1, (const uint8_t[]){ 0, 4, 200 }, 3, ALL_G, 6);
	expect_failure1(NVL_NVMF_AUTH_RCE_HASH_UNUSABLE);
	teardown(state);
	setup(state);
	/* unknown group ids only */
	send_negotiate(1, ALL_H, 3, (const uint8_t[]){ 6, 255 }, 2);
	expect_failure1(NVL_NVMF_AUTH_RCE_DHGROUP_UNUSABLE);
	teardown(state);
	setup(state);
	/* secure channel concatenation */
	n = nvl_dhchap_negotiate_encode(msg, sizeof(msg), 1, ALL_H, 3, ALL_G, 6);
	m->sc_c = 1;
	assert_int_equal(send_msg(msg, (size_t)n), 0);
	expect_failure1(NVL_NVMF_AUTH_RCE_SCC_MISMATCH);
	teardown(state);
	setup(state);
	/* another protocol */
	n = nvl_dhchap_negotiate_encode(msg, sizeof(msg), 1, ALL_H, 3, ALL_G, 6);
	m->desc[0].authid = 2;
	assert_int_equal(send_msg(msg, (size_t)n), 0);
	expect_failure1(NVL_NVMF_AUTH_RCE_PROTOCOL_UNUSABLE);
}

static void
test_controller_key_needed(void **state)
{
	struct host_txn t = { .tid = 3 };
	uint8_t msg[4096];
	int n;

	(void)state;
	/* the host asks for R2; the controller has no controller key */
	g_c.auth_keys->ctrl_len = 0;
	send_negotiate(3, ALL_H, 3, (const uint8_t[]){ 0 }, 1);
	n = host_reply(&t, true, &g_hkey, msg, sizeof(msg));
	assert_int_equal(send_msg(msg, (size_t)n), 0);
	expect_failure1(NVL_NVMF_AUTH_RCE_FAILED);
	teardown(state);
	setup(state);
	/* C2 without a sequence number */
	t = (struct host_txn){ .tid = 3 };
	send_negotiate(3, ALL_H, 3, (const uint8_t[]){ 0 }, 1);
	n = host_reply(&t, true, &g_hkey, msg, sizeof(msg));
	memset(msg + 12, 0, 4);
	assert_int_equal(send_msg(msg, (size_t)n), 0);
	expect_failure1(NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD);
}

static void
test_timeouts(void **state)
{
	const char *why = NULL;
	struct host_txn t = { .tid = 2 };
	uint8_t msg[4096];

	(void)state;
	/* the step timeout: the keep-alive timeout clamped to 30..120 s */
	g_c.nvme.kato_ms = 0;
	assert_int_equal(step_timeout_ns(g_a), AUTH_STEP_MIN_NS);
	g_c.nvme.kato_ms = 5000;
	assert_int_equal(step_timeout_ns(g_a), 30000000000ULL);
	g_c.nvme.kato_ms = 60000;
	assert_int_equal(step_timeout_ns(g_a), 60000000000ULL);
	g_c.nvme.kato_ms = 3600000;
	assert_int_equal(step_timeout_ns(g_a), AUTH_STEP_MAX_NS);
	/* never authenticated: torn down at the deadline */
	assert_false(nvl_nvmf_auth_expired(&g_a->base, g_a->deadline_ns - 1, &why));
	assert_true(nvl_nvmf_auth_expired(&g_a->base, g_a->deadline_ns + 1, &why));
	assert_string_equal(why, "authentication timed out");
	assert_int_equal(keep_alive(), NVL_NVME_SC_AUTH_REQUIRED);
	teardown(state);
	setup(state);
	/* a stalled re-authentication is abandoned; the queue keeps working */
	authenticate(1, ALL_H, 3, ALL_G, 6, false, 3, 5);
	assert_false(nvl_nvmf_auth_expired(&g_a->base, UINT64_MAX, &why)); /* done: no deadline */
	send_negotiate(2, ALL_H, 3, ALL_G, 6);
	assert_int_equal(keep_alive(), 0); /* usable while re-authenticating */
	assert_int_equal(host_reply(&t, false, &g_hkey, msg, sizeof(msg)) > 0, 1);
	assert_false(nvl_nvmf_auth_expired(&g_a->base, g_a->deadline_ns + 1, &why));
	assert_int_equal(g_a->state, AUTH_DONE);
	assert_null(g_a->dh);
	assert_int_equal(keep_alive(), 0);
}

static void
test_gate_without_state(void **state)
{
	struct nvl_nvme_cmd c;

	(void)state;
	/* a queue the transport gave no state, on a controller that requires it */
	memset(&c, 0, sizeof(c));
	c.opc = NVL_NVME_ADM_KEEP_ALIVE;
	assert_int_equal(run(NULL, &c, NULL, 0, NULL), NVL_NVME_SC_AUTH_REQUIRED);
	c = auth_cmd(true, 8);
	assert_int_equal(run(NULL, &c, &c, 8, NULL), NVL_NVME_SC_AUTH_REQUIRED);
	/* a controller that needs none: Authentication Send is not offered */
	g_c.nvme.auth_required = false;
	assert_int_equal(run(NULL, &c, &c, 8, NULL), NVL_NVME_SC_INVALID_OPCODE);
	c.opc = NVL_NVME_ADM_KEEP_ALIVE;
	assert_int_equal(run(NULL, &c, NULL, 0, NULL), 0);
	assert_int_equal(nvl_nvmf_auth_connect_flags(&g_c), 0);
	g_c.nvme.auth_required = true;
	assert_int_equal(nvl_nvmf_auth_connect_flags(&g_c), NVL_NVMF_CONNECT_AUTHREQ_ATR);
}

static void
test_seqnum(void **state)
{
	uint32_t a = next_seqnum(), b = next_seqnum();

	(void)state;
	assert_int_not_equal(a, 0);
	assert_int_equal(b, a + 1 == 0 ? 1 : a + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_success_each_hash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strongest_and_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_unusable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bidirectional, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_response, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_lengths_and_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_tid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_proposals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_controller_key_needed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeouts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_without_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seqnum, setup, teardown),
	};

	return UT_RUN(tests);
}
