/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the host's DH-HMAC-CHAP transaction (src/host/host_auth.c)
 * against a controller made here from the shared computations of
 * src/proto/nvme_auth.c: success with and without a DH group, one way and
 * both ways; the controller's Failure1; a controller that does not prove
 * itself (wrong R2, no R2) gets AUTH_Failure2 and the queue fails; a
 * Challenge of another transaction, with what was not offered, truncated,
 * or replaced by another message; a failed command status; keys from the
 * environment (file, secret, loose file, controller key alone).
 */
#include "host/host_auth.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define HOSTNQN "nqn.2026-01.io.nvlend.test:host"
#define SUBNQN "nqn.2026-01.io.nvlend.test:sub"

/* The controller of these tests: what it needs between messages. */
struct fake_ctrl {
	struct nvl_dhchap_key hkey, ckey;  /* what it believes the keys are */
	uint8_t hashid, dhgid, hl;
	uint16_t tid;
	uint32_t s1;
	uint8_t c1[NVL_DHCHAP_MAX_HASH];
	struct nvl_dhchap_dh *dh;
	uint8_t r2[NVL_DHCHAP_MAX_HASH];
	bool cvalid;
	bool r1_ok;
	/* misbehaviour */
	bool wrong_tid, bad_hash, truncate, send_success1_instead, no_r2, flip_r2;
	bool fail_status_at_recv;
	int failure2_seen, success2_seen;
};

static uint8_t g_buf[NVL_DHCHAP_MAX_MSG];

static void
ctrl_on_send(struct fake_ctrl *f, const uint8_t *msg, uint32_t len)
{
	struct nvl_nvmf_auth_hdr h;

	assert_int_equal(nvl_dhchap_hdr_decode(msg, len, &h), 0);
	if (h.auth_type == NVL_NVMF_AUTH_TYPE_COMMON && h.auth_id == NVL_NVMF_AUTH_ID_NEGOTIATE) {
		struct nvl_dhchap_negotiate_info ni;

		assert_int_equal(nvl_dhchap_negotiate_decode(msg, len, &ni), 0);
		assert_true(ni.dhchap);
		assert_int_equal(ni.nhash, 3);
		assert_int_equal(ni.ndh, 6);
		f->tid = ni.tid;
	} else if (h.auth_type == NVL_NVMF_AUTH_TYPE_DHCHAP && h.auth_id == NVL_NVMF_AUTH_ID_REPLY) {
		struct nvl_dhchap_reply_info ri;
		uint8_t sess[NVL_DHCHAP_MAX_DH], r1[NVL_DHCHAP_MAX_HASH], tk[NVL_DHCHAP_MAX_HASH];
		size_t sl = nvl_dhchap_dhgroup_len(f->dhgid), tkl;

		assert_int_equal(nvl_dhchap_reply_decode(msg, len, f->hl, &ri), 0);
		assert_int_equal(ri.tid, f->tid);
		assert_int_equal(ri.dhvlen, sl);
		if (sl)
			assert_int_equal(nvl_dhchap_dh_derive(f->dh, ri.dhv, ri.dhvlen, sess, sl), 0);
		assert_int_equal(nvl_dhchap_key_transform(&f->hkey, HOSTNQN, tk, &tkl), 0);
		assert_int_equal(nvl_dhchap_response(f->hashid, tk, tkl, f->c1, sess, sl, f->s1,
						     f->tid, 0, false, HOSTNQN, SUBNQN, r1),
				 0);
		f->r1_ok = memcmp(r1, ri.r1, f->hl) == 0;
		f->cvalid = ri.cvalid;
		if (ri.cvalid) {
			assert_int_not_equal(ri.seqnum, 0);
			assert_int_equal(nvl_dhchap_key_transform(&f->ckey, SUBNQN, tk, &tkl), 0);
			assert_int_equal(nvl_dhchap_response(f->hashid, tk, tkl, ri.c2, sess, sl,
							     ri.seqnum, f->tid, 0, true, HOSTNQN,
							     SUBNQN, f->r2),
					 0);
			if (f->flip_r2)
				f->r2[0] ^= 1;
		}
	} else if (h.auth_type == NVL_NVMF_AUTH_TYPE_DHCHAP &&
		   h.auth_id == NVL_NVMF_AUTH_ID_SUCCESS2) {
		f->success2_seen++;
	} else if (h.auth_type == NVL_NVMF_AUTH_TYPE_COMMON &&
		   h.auth_id == NVL_NVMF_AUTH_ID_FAILURE2) {
		f->failure2_seen++;
	} else {
		fail_msg("unexpected message %u/%u", h.auth_type, h.auth_id);
	}
}

/* What the controller answers to a Receive; \return bytes. */
static int
ctrl_on_recv(struct fake_ctrl *f, uint8_t *buf, uint32_t al, int step)
{
	uint8_t dhv[NVL_DHCHAP_MAX_DH];
	size_t dl;
	int n;

	if (step == 1) { /* the Challenge */
		if (f->send_success1_instead)
			return nvl_dhchap_success1_encode(buf, al, f->tid, f->hl, NULL);
		dl = nvl_dhchap_dhgroup_len(f->dhgid);
		assert_int_equal(nvl_dhchap_random(f->c1, f->hl), 0);
		if (dl) {
			assert_int_equal(nvl_dhchap_dh_create(f->dhgid, &f->dh), 0);
			assert_int_equal(nvl_dhchap_dh_public(f->dh, dhv, dl), 0);
		}
		f->s1 = 7;
		n = nvl_dhchap_challenge_encode(buf, al, (uint16_t)(f->tid + (f->wrong_tid ? 1 : 0)),
						f->hashid, f->dhgid, f->s1, f->c1, dl ? dhv : NULL, dl);
		assert_true(n > 0);
		if (f->bad_hash)
			buf[offsetof(struct nvl_nvmf_auth_challenge, hashid)] = 4; /* not offered */
		return f->truncate ? n / 2 : n;
	}
	/* Success1, or Failure1 for a wrong R1 */
	if (!f->r1_ok)
		return nvl_dhchap_failure_encode(buf, al, true, f->tid, NVL_NVMF_AUTH_RCE_FAILED);
	return nvl_dhchap_success1_encode(buf, al, f->tid, f->hl,
					  f->cvalid && !f->no_r2 ? f->r2 : NULL);
}

/* Drive a transaction to its end. \return host_auth_next()'s last answer. */
static int
run(struct fake_ctrl *f, const struct nvl_dhchap_key *hk, const struct nvl_dhchap_key *ck,
    struct host_auth **keep)
{
	struct host_auth *a;
	int rc, recv_step = 0, guard = 0;

	f->hl = (uint8_t)nvl_dhchap_hash_len(f->hashid);
	assert_int_equal(host_auth_create(hk, ck, HOSTNQN, SUBNQN, 0, &a), 0);
	for (;;) {
		struct nvl_nvme_cmd cmd;
		struct nvl_nvme_cpl cpl = { 0 };
		const struct nvl_nvmf_auth_cmd *ac = (const void *)&cmd;
		uint32_t len = 0;
		uint8_t dir = 0;

		assert_true(guard++ < 10);
		rc = host_auth_next(a, &cmd, g_buf, sizeof(g_buf), &len, &dir);
		if (rc <= 0)
			break;
		assert_int_equal(ac->opc, NVL_NVME_ADM_FABRICS);
		assert_int_equal(ac->secp, NVL_NVMF_AUTH_SECP);
		assert_int_equal(ac->spsp0, NVL_NVMF_AUTH_SPSP);
		assert_int_equal(ac->al_tl, len);
		if (ac->fctype == NVL_NVMF_FCTYPE_AUTH_SEND) {
			assert_int_equal(dir, NVL_XFER_TO_CTRLR);
			ctrl_on_send(f, g_buf, len);
			rc = host_auth_complete(a, &cpl, NULL, 0);
		} else {
			assert_int_equal(ac->fctype, NVL_NVMF_FCTYPE_AUTH_RECV);
			assert_int_equal(dir, NVL_XFER_FROM_CTRLR);
			if (f->fail_status_at_recv) {
				cpl.status = (uint16_t)(NVL_NVME_SC_INVALID_FIELD << 1);
				rc = host_auth_complete(a, &cpl, g_buf, len);
			} else {
				int n = ctrl_on_recv(f, g_buf, len, ++recv_step);

				assert_true(n > 0 && (uint32_t)n <= len);
				rc = host_auth_complete(a, &cpl, g_buf, (uint32_t)n);
			}
		}
		(void)rc;
	}
	nvl_dhchap_dh_destroy(f->dh);
	f->dh = NULL;
	if (keep)
		*keep = a;
	else
		host_auth_destroy(a);
	return rc;
}

static struct nvl_dhchap_key g_hkey, g_ckey, g_wrong;

static int
setup_keys(void **state)
{
	(void)state;
	assert_int_equal(nvl_dhchap_key_generate(1, 32, &g_hkey), 0);
	assert_int_equal(nvl_dhchap_key_generate(2, 48, &g_ckey), 0);
	assert_int_equal(nvl_dhchap_key_generate(0, 32, &g_wrong), 0);
	return 0;
}

static void
test_success(void **state)
{
	static const uint8_t cases[][3] = {
		/* hash, group, bidirectional */
		{ NVL_NVMF_AUTH_HASH_SHA256, NVL_NVMF_AUTH_DHGROUP_NULL, 0 },
		{ NVL_NVMF_AUTH_HASH_SHA384, NVL_NVMF_AUTH_DHGROUP_2048, 1 },
		{ NVL_NVMF_AUTH_HASH_SHA512, NVL_NVMF_AUTH_DHGROUP_NULL, 1 },
		{ NVL_NVMF_AUTH_HASH_SHA256, NVL_NVMF_AUTH_DHGROUP_3072, 0 },
	};

	(void)state;
	for (size_t i = 0; i < NVL_ARRAY_SIZE(cases); i++) {
		struct fake_ctrl f = { .hkey = g_hkey, .ckey = g_ckey };
		struct host_auth *a;
		char sum[96];

		f.hashid = cases[i][0];
		f.dhgid = cases[i][1];
		assert_int_equal(run(&f, &g_hkey, cases[i][2] ? &g_ckey : NULL, &a), 0);
		assert_true(f.r1_ok);
		assert_int_equal(f.success2_seen, cases[i][2]);
		assert_int_equal(f.failure2_seen, 0);
		host_auth_summary(a, sum, sizeof(sum));
		assert_non_null(strstr(sum, nvl_dhchap_hash_name(f.hashid)));
		assert_non_null(strstr(sum, nvl_dhchap_dhgroup_name(f.dhgid)));
		assert_true((strstr(sum, "controller authenticated") != NULL) == (cases[i][2] != 0));
		host_auth_destroy(a);
	}
}

static void
test_wrong_host_key(void **state)
{
	struct fake_ctrl f = { .hkey = g_hkey, .ckey = g_ckey };
	struct host_auth *a;

	(void)state;
	f.hashid = NVL_NVMF_AUTH_HASH_SHA256;
	f.dhgid = NVL_NVMF_AUTH_DHGROUP_2048;
	assert_int_equal(run(&f, &g_wrong, NULL, &a), -EACCES);
	assert_false(f.r1_ok);
	assert_non_null(strstr(host_auth_error(a), "the controller refused: authentication failed"));
	host_auth_destroy(a);
}

static void
test_controller_does_not_prove_itself(void **state)
{
	struct host_auth *a;

	(void)state;
	for (int mode = 0; mode < 3; mode++) {
		struct fake_ctrl f = { .hkey = g_hkey, .ckey = mode == 2 ? g_wrong : g_ckey };

		f.hashid = NVL_NVMF_AUTH_HASH_SHA512;
		f.dhgid = NVL_NVMF_AUTH_DHGROUP_NULL;
		f.flip_r2 = mode == 0;
		f.no_r2 = mode == 1;
		assert_int_equal(run(&f, &g_hkey, &g_ckey, &a), -EKEYREJECTED);
		assert_int_equal(f.failure2_seen, 1);
		assert_int_equal(f.success2_seen, 0);
		assert_non_null(strstr(host_auth_error(a), "did not prove itself"));
		assert_non_null(strstr(host_auth_error(a), mode == 1 ? "no controller key"
								   : "wrong response"));
		host_auth_destroy(a);
	}
}

static void
test_hostile_challenge(void **state)
{
	(void)state;
	for (int mode = 0; mode < 5; mode++) {
		struct fake_ctrl f = { .hkey = g_hkey, .ckey = g_ckey };
		struct host_auth *a;

		f.hashid = NVL_NVMF_AUTH_HASH_SHA256;
		f.dhgid = NVL_NVMF_AUTH_DHGROUP_NULL;
		f.wrong_tid = mode == 0;
		f.bad_hash = mode == 1;
		f.truncate = mode == 2;
		f.send_success1_instead = mode == 3;
		f.fail_status_at_recv = mode == 4;
		assert_int_equal(run(&f, &g_hkey, NULL, &a), mode == 4 ? -EREMOTEIO : -EPROTO);
		assert_non_null(strstr(host_auth_error(a), "DH-HMAC-CHAP"));
		assert_int_equal(f.success2_seen + f.failure2_seen, 0);
		/* it stays failed */
		{
			struct nvl_nvme_cmd cmd;
			uint32_t len;
			uint8_t dir;

			assert_true(host_auth_next(a, &cmd, g_buf, sizeof(g_buf), &len, &dir) < 0);
		}
		host_auth_destroy(a);
	}
}

static void
test_keys_from_env(void **state)
{
	char dir[] = "/tmp/host_auth_ut.XXXXXX", path[64], text[NVL_DHCHAP_SECRET_MAX], why[256];
	struct host_ctrlr_opts o;
	FILE *fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/k", dir);
	assert_int_equal(nvl_dhchap_key_format(&g_hkey, text, sizeof(text)), 0);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "%s\n", text);
	fclose(fp);
	assert_int_equal(chmod(path, 0600), 0);

	unsetenv("NVLEND_DHCHAP_KEY");
	unsetenv("NVLEND_DHCHAP_CTRLR_KEY");
	assert_int_equal(host_dhchap_from_env(&o, why, sizeof(why)), 0);
	assert_int_equal(o.dhchap_key.len, 0);

	setenv("NVLEND_DHCHAP_KEY", path, 1);
	assert_int_equal(host_dhchap_from_env(&o, why, sizeof(why)), 0);
	assert_int_equal(o.dhchap_key.len, 32);
	assert_memory_equal(o.dhchap_key.key, g_hkey.key, 32);

	setenv("NVLEND_DHCHAP_KEY", text, 1);
	setenv("NVLEND_DHCHAP_CTRLR_KEY", path, 1);
	assert_int_equal(host_dhchap_from_env(&o, why, sizeof(why)), 0);
	assert_int_equal(o.dhchap_ctrlr_key.len, 32);

	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(host_dhchap_from_env(&o, why, sizeof(why)), -ENOKEY);
	assert_non_null(strstr(why, "no group/other access"));
	assert_int_equal(o.dhchap_key.len, 0); /* nothing half-loaded */

	setenv("NVLEND_DHCHAP_KEY", "DHHC-1:01:AAAA:", 1);
	assert_int_equal(host_dhchap_from_env(&o, why, sizeof(why)), -ENOKEY);
	unsetenv("NVLEND_DHCHAP_KEY");
	assert_int_equal(host_dhchap_from_env(&o, why, sizeof(why)), -ENOKEY);
	assert_non_null(strstr(why, "without NVLEND_DHCHAP_KEY"));
	unsetenv("NVLEND_DHCHAP_CTRLR_KEY");
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_success),
		cmocka_unit_test(test_wrong_host_key),
		cmocka_unit_test(test_controller_does_not_prove_itself),
		cmocka_unit_test(test_hostile_challenge),
		cmocka_unit_test(test_keys_from_env),
	};

	return cmocka_run_group_tests(tests, setup_keys, NULL);
}
