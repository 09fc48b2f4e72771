/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of DH-HMAC-CHAP computations and messages (src/proto/nvme_auth.c).
 * Known answers were computed independently with Python's hashlib/hmac/zlib
 * from the formulas of NVMe Base 2.0 8.13.5 (secret representation, key
 * transformation, augmented challenge, HostHost/Controller responses); the
 * DH shared secret is checked against OpenSSL's own derivation.
 */
#include "proto/nvme_auth.c"
#include "common/ut.h"

static const char g_hostnqn[] = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555";
static const char g_subnqn[] = "nqn.2024-01.io.nvlend:kat";

static void
unhex(const char *h, uint8_t *out, size_t len)
{
	assert_int_equal(strlen(h), len * 2);
	for (size_t i = 0; i < len; i++) {
		unsigned v;

		assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* key bytes of the known answers: (i * 7 + hmac) & 0xff */
static void
kat_key(uint8_t hmac, uint8_t len, struct nvl_dhchap_key *k)
{
	k->hmac = hmac;
	k->len = len;
	for (unsigned i = 0; i < len; i++)
		k->key[i] = (uint8_t)(i * 7 + hmac);
}

static const struct {
	uint8_t hmac, len;
	const char *secret;
	const char *tkey;       /* transformed with g_hostnqn */
} g_keys[] = {
	{ 0, 32, "DHHC-1:00:AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk/PUPo:",
	  "00070e151c232a31383f464d545b626970777e858c939aa1a8afb6bdc4cbd2d9" },
	{ 1, 32, "DHHC-1:01:AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1OOC:",
	  "77952565517053600c6112992e17d9c0f225c6cb02bb806650b574e7f7631089" },
	{ 2, 48, "DHHC-1:02:AgkQFx4lLDM6QUhPVl1ka3J5gIeOlZyjqrG4v8bN1Nvi6fD3/gUMExohKC82PURLIrqU+w==:",
	  "d1437de857c7c96f3226b3f689cec570a66a06b026a411e6e2c5fdf7a569a72190a796eb150342a9b2b8f32346"
	  "ac3eb2" },
	{ 3, 64,
	  "DHHC-1:03:AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dzj6vH4/wYNFBsiKTA3PkVMU1phaG92fYSLkpmg"
	  "p661vPDs2cs=:",
	  "660bb9a613a63092f45b325330010600bcf4d3763d3a1c039d56ebc764cc73f4e07c93ed93ebd8b6111d2c01d1"
	  "d452c15fc4070b7d6561ac8fe55d9e0915044b" },
};

static void
test_identifiers(void **state)
{
	(void)state;
	assert_int_equal(nvl_dhchap_hash_len(1), 32);
	assert_int_equal(nvl_dhchap_hash_len(2), 48);
	assert_int_equal(nvl_dhchap_hash_len(3), 64);
	assert_int_equal(nvl_dhchap_hash_len(0), 0);
	assert_int_equal(nvl_dhchap_hash_len(4), 0);
	assert_int_equal(nvl_dhchap_hash_len(255), 0);
	assert_null(nvl_dhchap_hash_name(0));
	assert_null(nvl_dhchap_hash_name(200));
	for (uint8_t h = 1; h <= 3; h++)
		assert_int_equal(nvl_dhchap_hash_id(nvl_dhchap_hash_name(h)), h);
	assert_int_equal(nvl_dhchap_hash_id("SHA384"), 2);
	assert_int_equal(nvl_dhchap_hash_id("md5"), -EINVAL);
	assert_int_equal(nvl_dhchap_dhgroup_len(0), 0);
	assert_int_equal(nvl_dhchap_dhgroup_len(1), 256);
	assert_int_equal(nvl_dhchap_dhgroup_len(5), 1024);
	assert_int_equal(nvl_dhchap_dhgroup_len(6), 0);
	assert_null(nvl_dhchap_dhgroup_name(6));
	for (uint8_t g = 0; g <= 5; g++)
		assert_int_equal(nvl_dhchap_dhgroup_id(nvl_dhchap_dhgroup_name(g)), g);
	assert_int_equal(nvl_dhchap_dhgroup_id("ffdhe1024"), -EINVAL);
}

static void
test_key_known_answers(void **state)
{
	(void)state;
	for (size_t i = 0; i < UT_N(g_keys); i++) {
		struct nvl_dhchap_key k, want;
		uint8_t t[64], twant[64];
		char buf[NVL_DHCHAP_SECRET_MAX];
		size_t tl = 0;

		kat_key(g_keys[i].hmac, g_keys[i].len, &want);
		assert_int_equal(nvl_dhchap_key_parse(g_keys[i].secret, strlen(g_keys[i].secret), &k),
				 0);
		assert_int_equal(k.hmac, want.hmac);
		assert_int_equal(k.len, want.len);
		assert_memory_equal(k.key, want.key, k.len);
		/* formatting gives the same text back */
		assert_int_equal(nvl_dhchap_key_format(&k, buf, sizeof(buf)), 0);
		assert_string_equal(buf, g_keys[i].secret);
		assert_int_equal(nvl_dhchap_key_format(&k, buf, strlen(g_keys[i].secret)), -ENOSPC);
		/* the transform: HMAC-H(key, NQN || "NVMe-over-Fabrics"), none for 00 */
		assert_int_equal(nvl_dhchap_key_transform(&k, g_hostnqn, t, &tl), 0);
		assert_int_equal(tl, strlen(g_keys[i].tkey) / 2);
		unhex(g_keys[i].tkey, twant, tl);
		assert_memory_equal(t, twant, tl);
	}
}

static void
test_key_parse_bad(void **state)
{
	static const struct {
		const char *what, *text;
		int want;
	} c[] = {
		{ "ok, no trailing colon", "DHHC-1:01:AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1OOC", 0 },
		{ "ok, white space", "  DHHC-1:01:AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1OOC:\n", 0 },
		{ "bad CRC", "DHHC-1:01:AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1OOD:", -EBADMSG },
		{ "key changed", "DHHC-1:01:BQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1OOC:", -EBADMSG },
		{ "empty", "", -EINVAL },
		{ "prefix", "DHHC-2:01:AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1OOC:", -EINVAL },
		{ "hash 04", "DHHC-1:04:AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1OOC:", -EINVAL },
		{ "hash 1", "DHHC-1:1:AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1OOC:", -EINVAL },
		{ "hash x1", "DHHC-1:x1:AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1OOC:", -EINVAL },
		{ "no key", "DHHC-1:01::", -EINVAL },
		{ "not base64", "DHHC-1:01:AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1O*C:", -EINVAL },
		{ "base64 length", "DHHC-1:01:AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1OO:", -EINVAL },
		{ "36 -> 33 bytes", "DHHC-1:01:AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl:", -EINVAL },
		{ "second colon", "DHHC-1:01:AQgPFh0kKzI5QEdOVVxjanF4f4aN:JuiqbC3vsXM09pl1OOC:", -EINVAL },
		{ "two colons at end", "DHHC-1:01:AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1OOC::",
		  -EINVAL },
		{ "pad in middle", "DHHC-1:01:AQ==Fh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1OOC:", -EINVAL },
		{ "garbage after", "DHHC-1:01:AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09pl1OOC:x",
		  -EINVAL },
	};
	struct nvl_dhchap_key k;

	(void)state;
	for (size_t i = 0; i < UT_N(c); i++) {
		int rc = nvl_dhchap_key_parse(c[i].text, strlen(c[i].text), &k);

		if (rc != c[i].want)
			fail_msg("%s: got %d, want %d", c[i].what, rc, c[i].want);
	}
	/* a 100-byte key: base64 of 104 bytes is refused (too long) */
	{
		char txt[200] = "DHHC-1:00:";
		uint8_t raw[104] = { 0 };

		b64_encode(raw, sizeof(raw), txt + 10);
		assert_int_equal(nvl_dhchap_key_parse(txt, strlen(txt), &k), -EINVAL);
	}
}

static void
test_key_generate(void **state)
{
	struct nvl_dhchap_key a, b, p;
	char buf[NVL_DHCHAP_SECRET_MAX];

	(void)state;
	assert_int_equal(nvl_dhchap_key_generate(2, 48, &a), 0);
	assert_int_equal(nvl_dhchap_key_generate(2, 48, &b), 0);
	assert_memory_not_equal(a.key, b.key, 48);
	assert_int_equal(nvl_dhchap_key_format(&a, buf, sizeof(buf)), 0);
	assert_int_equal(nvl_dhchap_key_parse(buf, strlen(buf), &p), 0);
	assert_memory_equal(&a, &p, sizeof(a));
	assert_int_equal(nvl_dhchap_key_generate(4, 32, &a), -EINVAL);
	assert_int_equal(nvl_dhchap_key_generate(1, 40, &a), -EINVAL);
	nvl_dhchap_key_wipe(&p);
	for (size_t i = 0; i < sizeof(p.key); i++)
		assert_int_equal(p.key[i], 0);
}

/* R1 (HostHost, seq 0x12345678) and R2 (Controller, seq 0x9abcdef0), T_ID
 * 0xbeef, SC_C 0, with the DHHC-1:01 key transformed for g_hostnqn, challenge
 * bytes 0xa0 + i; with DH, session key bytes (13 i + 5) & 0xff (256 of them). */
static const struct {
	uint8_t hashid;
	bool dh;
	const char *r1, *r2;
} g_resp[] = {
	{ 1, false, "9d4ae365118ddfe686cf5a13225c5f24d4dec7aa149d3b839e63280a523f705e",
	  "bb0316de33202e6afb468b069c051579fad390d1167d51b74d9976958ba67bcd" },
	{ 1, true, "eaba36cdb406185c944213c60307a358181e39fe3f2e0bc13cee4208892e8b36",
	  "cf54601cf9fb574dd4d1a5f0a19bcdc0fc24192913b8ba514b52a6fd4bff1d96" },
	{ 2, false,
	  "071bbf554c66ce14c2ce4277261b37b9301b6c21f54422e52a12378b3f68a21bbac3ff708938d9155b333cd3"
	  "0043b3bd",
	  "c50cd77609929084ad019e2764b89a6c23e671fde269d521203240ce31a791aa457e2b9c612c0821ce9b4c75"
	  "4b145d08" },
	{ 2, true,
	  "b17b3ba70dc229beb48d79b436e003a66e5d553bc053fc8b407a4d3c4e86fc6e4e71d13bf603dd2da1f95e50"
	  "cb67ff0e",
	  "9456d35ecf7cf2c133d9dac5942646929ef4361d20b6dcc9d0c6f631dedcc5ae450287995a40776da0e0cf74"
	  "d4460a8a" },
	{ 3, false,
	  "ea3fa0cd4bd7d85970288fc542ad415279f15487a7b3c55e0c4672f59874bb0040dbeb1ec02fad4eaa6f4858"
	  "37e7a5d05e0527353c863162d2914d57e2ea6eb9",
	  "38f0d8f7906a9465fa003f5013a47b287e1d3ef2609e58aaad6a62db26e450341213564adb3a61d44182c5c5"
	  "ddc5767320fa777d7e08bc4a3c9cbcdd8558447c" },
	{ 3, true,
	  "165c82d70a2e084a54d47560f3c35ea1c472199ad602fb852bd311bb946a3fc582e10b0f836641d3d061d0d1"
	  "99f7b8cc9c0834d3e2b5d927b42b7aafb7704caf",
	  "c4f696d758b900d5154361155c5cbef3a77ebf0d83afbc66cde37a5037fbd6e73026c2f9fc92195fdfb1788c"
	  "c20d375e2ef7842da5b4bb18085a4adb7e0986e6" },
};

static void
test_response_known_answers(void **state)
{
	struct nvl_dhchap_key k;
	uint8_t tkey[64], chal[64], sess[256], out[64], want[64];
	size_t tl;

	(void)state;
	kat_key(1, 32, &k);
	assert_int_equal(nvl_dhchap_key_transform(&k, g_hostnqn, tkey, &tl), 0);
	for (size_t i = 0; i < sizeof(chal); i++)
		chal[i] = (uint8_t)(0xa0 + i);
	for (size_t i = 0; i < sizeof(sess); i++)
		sess[i] = (uint8_t)(i * 13 + 5);
	for (size_t i = 0; i < UT_N(g_resp); i++) {
		size_t hl = nvl_dhchap_hash_len(g_resp[i].hashid);
		size_t sl = g_resp[i].dh ? sizeof(sess) : 0;

		assert_int_equal(nvl_dhchap_response(g_resp[i].hashid, tkey, tl, chal, sess, sl,
						     0x12345678, 0xbeef, 0, false, g_hostnqn,
						     g_subnqn, out),
				 0);
		unhex(g_resp[i].r1, want, hl);
		assert_memory_equal(out, want, hl);
		assert_int_equal(nvl_dhchap_response(g_resp[i].hashid, tkey, tl, chal, sess, sl,
						     0x9abcdef0, 0xbeef, 0, true, g_hostnqn,
						     g_subnqn, out),
				 0);
		unhex(g_resp[i].r2, want, hl);
		assert_memory_equal(out, want, hl);
		/* any change of an input changes the response */
		assert_int_equal(nvl_dhchap_response(g_resp[i].hashid, tkey, tl, chal, sess, sl,
						     0x9abcdef0, 0xbeee, 0, true, g_hostnqn,
						     g_subnqn, out),
				 0);
		assert_memory_not_equal(out, want, hl);
	}
	assert_int_equal(nvl_dhchap_response(0, tkey, tl, chal, NULL, 0, 1, 1, 0, false, g_hostnqn,
					     g_subnqn, out),
			 -EINVAL);
	assert_int_equal(nvl_dhchap_response(4, tkey, tl, chal, NULL, 0, 1, 1, 0, false, g_hostnqn,
					     g_subnqn, out),
			 -EINVAL);
	assert_true(nvl_dhchap_equal(want, want, 64));
	memcpy(out, want, 64);
	out[63] ^= 1;
	assert_false(nvl_dhchap_equal(out, want, 64));
}

/* OpenSSL's own derivation from the raw keys, to compare ours with. */
static size_t
openssl_derive(EVP_PKEY *mine, EVP_PKEY *peer, uint8_t *out, size_t cap)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, mine, NULL);
	size_t len = cap;

	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_derive_init(ctx), 1);
	assert_int_equal(EVP_PKEY_derive_set_peer(ctx, peer), 1);
	assert_int_equal(EVP_PKEY_derive(ctx, out, &len), 1);
	EVP_PKEY_CTX_free(ctx);
	return len;
}

static void
test_dh_groups(void **state)
{
	(void)state;
	assert_int_equal(nvl_dhchap_dh_create(0, &(struct nvl_dhchap_dh *){ NULL }), -EINVAL);
	assert_int_equal(nvl_dhchap_dh_create(6, &(struct nvl_dhchap_dh *){ NULL }), -EINVAL);
	for (uint8_t g = 1; g <= 5; g++) {
		size_t glen = nvl_dhchap_dhgroup_len(g), ol;
		struct nvl_dhchap_dh *a, *b;
		uint8_t pa[1024], pb[1024], sa[1024], sb[1024], so[1024], bad[1024];

		assert_int_equal(nvl_dhchap_dh_create(g, &a), 0);
		assert_int_equal(nvl_dhchap_dh_create(g, &b), 0);
		assert_int_equal(nvl_dhchap_dh_public(a, pa, glen), 0);
		assert_int_equal(nvl_dhchap_dh_public(b, pb, glen), 0);
		assert_int_equal(nvl_dhchap_dh_public(a, pa, glen - 1), -EINVAL);
		assert_memory_not_equal(pa, pb, glen);
		assert_int_equal(nvl_dhchap_dh_derive(a, pb, glen, sa, glen), 0);
		assert_int_equal(nvl_dhchap_dh_derive(b, pa, glen, sb, glen), 0);
		assert_memory_equal(sa, sb, glen);
		/* OpenSSL computes the same (it strips leading zeros unless padded) */
		memset(so, 0, sizeof(so));
		ol = openssl_derive(a->pkey, b->pkey, so, sizeof(so));
		assert_true(ol <= glen);
		assert_memory_equal(so, sa + (glen - ol), ol);
		for (size_t i = 0; i < glen - ol; i++)
			assert_int_equal(sa[i], 0);
		/* bad peer values: wrong length, 0, 1, p - 1, p, all ones */
		assert_int_equal(nvl_dhchap_dh_derive(a, pb, glen - 1, sa, glen), -EINVAL);
		assert_int_equal(nvl_dhchap_dh_derive(a, pb, glen, sa, glen - 1), -EINVAL);
		memset(bad, 0, glen);
		assert_int_equal(nvl_dhchap_dh_derive(a, bad, glen, sa, glen), -EINVAL);
		bad[glen - 1] = 1;
		assert_int_equal(nvl_dhchap_dh_derive(a, bad, glen, sa, glen), -EINVAL);
		{
			BIGNUM *p = NULL;

			assert_int_equal(EVP_PKEY_get_bn_param(a->pkey, OSSL_PKEY_PARAM_FFC_P, &p), 1);
			assert_int_equal(BN_bn2binpad(p, bad, (int)glen), (int)glen);
			assert_int_equal(nvl_dhchap_dh_derive(a, bad, glen, sa, glen), -EINVAL);
			bad[glen - 1] -= 1; /* p - 1 (p is odd) */
			assert_int_equal(nvl_dhchap_dh_derive(a, bad, glen, sa, glen), -EINVAL);
			bad[glen - 1] -= 1; /* p - 2: a legal value */
			assert_int_equal(nvl_dhchap_dh_derive(a, bad, glen, sa, glen), 0);
			BN_free(p);
		}
		memset(bad, 0xff, glen);
		assert_int_equal(nvl_dhchap_dh_derive(a, bad, glen, sa, glen), -EINVAL);
		nvl_dhchap_dh_destroy(a);
		nvl_dhchap_dh_destroy(b);
	}
	nvl_dhchap_dh_destroy(NULL);
}

/* Every message decodes what its encoder wrote; every shorter length fails. */
static void
test_message_roundtrip(void **state)
{
	uint8_t buf[NVL_DHCHAP_MAX_MSG], c1[64], r1[64], c2[64], dhv[1024];
	const uint8_t hashes[] = { 1, 2, 3 }, groups[] = { 0, 1, 2, 3, 4, 5 };
	struct nvl_dhchap_negotiate_info ni;
	struct nvl_dhchap_challenge_info ci;
	struct nvl_dhchap_reply_info ri;
	struct nvl_dhchap_success1_info si;
	uint16_t tid;
	uint8_t rce;
	int n;

	(void)state;
	memset(c1, 0x11, sizeof(c1));
	memset(r1, 0x22, sizeof(r1));
	memset(c2, 0x33, sizeof(c2));
	memset(dhv, 0x44, sizeof(dhv));

	n = nvl_dhchap_negotiate_encode(buf, sizeof(buf), 7, hashes, 3, groups, 6);
	assert_int_equal(n, 72);
	assert_int_equal(nvl_dhchap_negotiate_decode(buf, (size_t)n, &ni), 0);
	assert_int_equal(ni.tid, 7);
	assert_true(ni.dhchap);
	assert_int_equal(ni.nhash, 3);
	assert_int_equal(ni.ndh, 6);
	assert_memory_equal(ni.hashids, hashes, 3);
	assert_memory_equal(ni.dhgids, groups, 6);
	for (int l = 0; l < n; l++)
		assert_int_equal(nvl_dhchap_negotiate_decode(buf, (size_t)l, &ni), -EBADMSG);
	assert_int_equal(nvl_dhchap_negotiate_decode(buf, (size_t)n + 1, &ni), -EBADMSG);
	assert_int_equal(nvl_dhchap_negotiate_encode(buf, 71, 7, hashes, 3, groups, 6), -ENOSPC);
	assert_int_equal(nvl_dhchap_negotiate_encode(buf, sizeof(buf), 7, hashes, 31, groups, 6),
			 -EINVAL);

	for (uint8_t h = 1; h <= 3; h++) {
		for (uint8_t g = 0; g <= 5; g++) {
			size_t hl = nvl_dhchap_hash_len(h), dl = nvl_dhchap_dhgroup_len(g);

			n = nvl_dhchap_challenge_encode(buf, sizeof(buf), 9, h, g, 0xdeadbeef, c1,
							dl ? dhv : NULL, dl);
			assert_int_equal(n, (int)(16 + hl + dl));
			assert_int_equal(nvl_dhchap_challenge_decode(buf, sizeof(buf), &ci), 0);
			assert_int_equal(ci.tid, 9);
			assert_int_equal(ci.hashid, h);
			assert_int_equal(ci.dhgid, g);
			assert_int_equal(ci.seqnum, 0xdeadbeef);
			assert_memory_equal(ci.c1, c1, hl);
			assert_int_equal(ci.dhvlen, dl);
			for (int l = 0; l < n; l++)
				assert_int_not_equal(nvl_dhchap_challenge_decode(buf, (size_t)l, &ci),
						     0);

			n = nvl_dhchap_reply_encode(buf, sizeof(buf), 9, (uint8_t)hl, r1, c2, 77,
						    dl ? dhv : NULL, dl);
			assert_int_equal(n, (int)(16 + 2 * hl + dl));
			assert_int_equal(nvl_dhchap_reply_decode(buf, (size_t)n, (uint8_t)hl, &ri), 0);
			assert_true(ri.cvalid);
			assert_int_equal(ri.seqnum, 77);
			assert_memory_equal(ri.r1, r1, hl);
			assert_memory_equal(ri.c2, c2, hl);
			assert_int_equal(ri.dhvlen, dl);
			if (dl)
				assert_memory_equal(ri.dhv, dhv, dl);
			for (int l = 0; l < n; l++)
				assert_int_equal(nvl_dhchap_reply_decode(buf, (size_t)l, (uint8_t)hl,
									 &ri),
						 -EBADMSG);
			/* a reply for another hash length, or with trailing bytes */
			assert_int_equal(nvl_dhchap_reply_decode(buf, (size_t)n, (uint8_t)(hl + 16),
								 &ri),
					 -EBADMSG);
			assert_int_equal(nvl_dhchap_reply_decode(buf, (size_t)n + 1, (uint8_t)hl,
								 &ri),
					 -EBADMSG);
		}
	}
	/* reply without controller authentication: cvalid 0, seqnum 0 */
	n = nvl_dhchap_reply_encode(buf, sizeof(buf), 3, 32, r1, NULL, 5, NULL, 0);
	assert_int_equal(n, 16 + 64);
	assert_int_equal(nvl_dhchap_reply_decode(buf, (size_t)n, 32, &ri), 0);
	assert_false(ri.cvalid);
	assert_int_equal(ri.seqnum, 0);
	buf[8] = 2; /* cvalid 2 */
	assert_int_equal(nvl_dhchap_reply_decode(buf, (size_t)n, 32, &ri), -EBADMSG);

	n = nvl_dhchap_success1_encode(buf, sizeof(buf), 4, 48, r1);
	assert_int_equal(n, 16 + 48);
	assert_int_equal(nvl_dhchap_success1_decode(buf, (size_t)n, 48, &si), 0);
	assert_true(si.rvalid);
	assert_memory_equal(si.r2, r1, 48);
	for (int l = 0; l < n; l++)
		assert_int_not_equal(nvl_dhchap_success1_decode(buf, (size_t)l, 48, &si), 0);
	n = nvl_dhchap_success1_encode(buf, sizeof(buf), 4, 48, NULL);
	assert_int_equal(n, 16);
	assert_int_equal(nvl_dhchap_success1_decode(buf, (size_t)n, 48, &si), 0);
	assert_false(si.rvalid);
	assert_int_equal(buf[6], 48); /* HL set without RVALID: the Linux host checks it */
	assert_int_equal(nvl_dhchap_success1_decode(buf, (size_t)n, 32, &si), -EBADMSG);

	n = nvl_dhchap_success2_encode(buf, sizeof(buf), 11);
	assert_int_equal(n, 16);
	assert_int_equal(nvl_dhchap_success2_decode(buf, 16, &tid), 0);
	assert_int_equal(tid, 11);
	assert_int_equal(nvl_dhchap_success2_decode(buf, 15, &tid), -EBADMSG);
	assert_int_equal(nvl_dhchap_success2_decode(buf, 17, &tid), -EBADMSG);

	n = nvl_dhchap_failure_encode(buf, sizeof(buf), true, 12, NVL_NVMF_AUTH_RCE_FAILED);
	assert_int_equal(n, 8);
	assert_int_equal(buf[0], NVL_NVMF_AUTH_TYPE_COMMON);
	assert_int_equal(buf[1], NVL_NVMF_AUTH_ID_FAILURE1);
	assert_int_equal(nvl_dhchap_failure_decode(buf, 8, &tid, &rce), 0);
	assert_int_equal(tid, 12);
	assert_int_equal(rce, NVL_NVMF_AUTH_RCE_FAILED);
	assert_int_equal(nvl_dhchap_failure_decode(buf, 7, &tid, &rce), -EBADMSG);
	assert_int_equal(nvl_dhchap_failure_encode(buf, 7, false, 12, 1), -ENOSPC);
}

/* Malformed negotiations, table-driven. */
static void
test_negotiate_bounds(void **state)
{
	uint8_t buf[256];
	const uint8_t h[] = { 1 }, g[] = { 0 };
	struct nvl_dhchap_negotiate_info ni;
	struct nvl_nvmf_auth_negotiate *m = (void *)buf;

	(void)state;
	nvl_dhchap_negotiate_encode(buf, sizeof(buf), 1, h, 1, g, 1);
	m->desc[0].halen = 31;
	assert_int_equal(nvl_dhchap_negotiate_decode(buf, 72, &ni), -EBADMSG);
	m->desc[0].halen = 1;
	m->desc[0].dhlen = 200;
	assert_int_equal(nvl_dhchap_negotiate_decode(buf, 72, &ni), -EBADMSG);
	m->desc[0].dhlen = 1;
	m->napd = 0;
	assert_int_equal(nvl_dhchap_negotiate_decode(buf, 8, &ni), -EBADMSG);
	m->napd = 2; /* says two descriptors, carries one */
	assert_int_equal(nvl_dhchap_negotiate_decode(buf, 72, &ni), -EBADMSG);
	m->napd = 1;
	m->desc[0].authid = 2; /* not DH-HMAC-CHAP: parsed, but no usable protocol */
	assert_int_equal(nvl_dhchap_negotiate_decode(buf, 72, &ni), 0);
	assert_false(ni.dhchap);
	/* a second descriptor is DH-HMAC-CHAP */
	memset(buf + 72, 0, 64);
	m->napd = 2;
	m->desc[1].authid = NVL_NVMF_AUTH_PROTO_DHCHAP;
	m->desc[1].halen = 1;
	m->desc[1].idlist[0] = 3;
	assert_int_equal(nvl_dhchap_negotiate_decode(buf, 136, &ni), 0);
	assert_true(ni.dhchap);
	assert_int_equal(ni.hashids[0], 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identifiers),
		cmocka_unit_test(test_key_known_answers),
		cmocka_unit_test(test_key_parse_bad),
		cmocka_unit_test(test_key_generate),
		cmocka_unit_test(test_response_known_answers),
		cmocka_unit_test(test_dh_groups),
		cmocka_unit_test(test_message_roundtrip),
		cmocka_unit_test(test_negotiate_bounds),
	};

	return UT_RUN(tests);
}
