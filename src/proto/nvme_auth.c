/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DH-HMAC-CHAP computations and messages (NVMe Base 2.0 section 8.13). See
 * nvme_auth.h for what is computed; OpenSSL does the hashing, HMAC, DH and
 * randomness. Stateless and reentrant; secrets on the stack are wiped before
 * returning.
 */
#include "proto/nvme_auth.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/dh.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

/* ---- identifiers -------------------------------------------------------- */

static const struct {
	const char *name;
	const char *md;                 /* OpenSSL digest name */
	size_t len;
} g_hashes[] = {
	[NVL_NVMF_AUTH_HASH_SHA256] = { "sha256", "SHA256", 32 },
	[NVL_NVMF_AUTH_HASH_SHA384] = { "sha384", "SHA384", 48 },
	[NVL_NVMF_AUTH_HASH_SHA512] = { "sha512", "SHA512", 64 },
};

static const struct {
	const char *name;               /* also OpenSSL's group name */
	size_t len;
} g_dhgroups[] = {
	[NVL_NVMF_AUTH_DHGROUP_NULL] = { "null", 0 },
	[NVL_NVMF_AUTH_DHGROUP_2048] = { "ffdhe2048", 256 },
	[NVL_NVMF_AUTH_DHGROUP_3072] = { "ffdhe3072", 384 },
	[NVL_NVMF_AUTH_DHGROUP_4096] = { "ffdhe4096", 512 },
	[NVL_NVMF_AUTH_DHGROUP_6144] = { "ffdhe6144", 768 },
	[NVL_NVMF_AUTH_DHGROUP_8192] = { "ffdhe8192", 1024 },
};

size_t
nvl_dhchap_hash_len(uint8_t hashid)
{
	return hashid < NVL_ARRAY_SIZE(g_hashes) ? g_hashes[hashid].len : 0;
}

const char *
nvl_dhchap_hash_name(uint8_t hashid)
{
	return hashid < NVL_ARRAY_SIZE(g_hashes) ? g_hashes[hashid].name : NULL;
}

int
nvl_dhchap_hash_id(const char *name)
{
	for (unsigned i = 0; i < NVL_ARRAY_SIZE(g_hashes); i++)
		if (g_hashes[i].name && strcasecmp(g_hashes[i].name, name) == 0)
			return (int)i;
	return -EINVAL;
}

static const EVP_MD *
hash_md(uint8_t hashid)
{
	if (nvl_dhchap_hash_len(hashid) == 0)
		return NULL;
	switch (hashid) {
	case NVL_NVMF_AUTH_HASH_SHA256: return EVP_sha256();
	case NVL_NVMF_AUTH_HASH_SHA384: return EVP_sha384();
	default: return EVP_sha512();
	}
}

size_t
nvl_dhchap_dhgroup_len(uint8_t dhgid)
{
	return dhgid < NVL_ARRAY_SIZE(g_dhgroups) ? g_dhgroups[dhgid].len : 0;
}

const char *
nvl_dhchap_dhgroup_name(uint8_t dhgid)
{
	return dhgid < NVL_ARRAY_SIZE(g_dhgroups) ? g_dhgroups[dhgid].name : NULL;
}

int
nvl_dhchap_dhgroup_id(const char *name)
{
	for (unsigned i = 0; i < NVL_ARRAY_SIZE(g_dhgroups); i++)
		if (strcasecmp(g_dhgroups[i].name, name) == 0)
			return (int)i;
	return -EINVAL;
}

/* ---- helpers ------------------------------------------------------------ */

bool
nvl_dhchap_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

int
nvl_dhchap_random(void *buf, size_t len)
{
	if (len > (size_t)INT32_MAX || RAND_bytes(buf, (int)len) != 1)
		return -EIO;
	return 0;
}

/* CRC-32 of IEEE 802.3 (reflected 0xEDB88320), as in the secret representation. */
static uint32_t
crc32_ieee(const uint8_t *p, size_t len)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

static const char g_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
b64_val(char c)
{
	const char *p = c ? strchr(g_b64, c) : NULL;

	return p ? (int)(p - g_b64) : -1;
}

/* Standard base64 with '=' padding; the text length must be a multiple of 4. */
static int
b64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
	size_t n = 0;

	if (len == 0 || len % 4 != 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;

		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad)
				return -EINVAL; /* data after padding */
			v[k] = b64_val(in[i + k]);
			if (v[k] < 0)
				return -EINVAL;
		}
		if (n + 3 - (size_t)pad > cap)
			return -EINVAL;
		out[n++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[n++] = (uint8_t)((v[1] & 0xf) << 4 | v[2] >> 2);
		if (pad < 1)
			out[n++] = (uint8_t)((v[2] & 3) << 6 | v[3]);
	}
	*out_len = n;
	return 0;
}

static size_t
b64_encode(const uint8_t *in, size_t len, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[n++] = g_b64[v >> 18 & 63];
		out[n++] = g_b64[v >> 12 & 63];
		out[n++] = i + 1 < len ? g_b64[v >> 6 & 63] : '=';
		out[n++] = i + 2 < len ? g_b64[v & 63] : '=';
	}
	out[n] = '\0';
	return n;
}

/* ---- secrets ------------------------------------------------------------ */

int
nvl_dhchap_key_parse(const char *text, size_t len, struct nvl_dhchap_key *out)
{
	uint8_t raw[72];
	size_t n = 0, b64_len;
	uint32_t crc;
	int hmac;

	memset(out, 0, sizeof(*out));
	while (len > 0 && isspace((unsigned char)text[0])) {
		text++;
		len--;
	}
	while (len > 0 && (isspace((unsigned char)text[len - 1]) || text[len - 1] == '\0'))
		len--;
	if (len > 0 && text[len - 1] == ':')
		len--;
	/* "DHHC-1:" NN ":" base64 */
	if (len < 10 || memcmp(text, "DHHC-1:", 7) != 0 || !isdigit((unsigned char)text[7]) ||
	    !isdigit((unsigned char)text[8]) || text[9] != ':')
		return -EINVAL;
	hmac = (text[7] - '0') * 10 + (text[8] - '0');
	if (hmac > NVL_NVMF_AUTH_HASH_SHA512)
		return -EINVAL;
	b64_len = len - 10;
	if (memchr(text + 10, ':', b64_len) != NULL ||
	    b64_decode(text + 10, b64_len, raw, sizeof(raw), &n) < 0 ||
	    (n != 36 && n != 52 && n != 68)) {
		OPENSSL_cleanse(raw, sizeof(raw));
		return -EINVAL;
	}
	n -= 4;
	crc = crc32_ieee(raw, n);
	if (raw[n] != (uint8_t)crc || raw[n + 1] != (uint8_t)(crc >> 8) ||
	    raw[n + 2] != (uint8_t)(crc >> 16) || raw[n + 3] != (uint8_t)(crc >> 24)) {
		OPENSSL_cleanse(raw, sizeof(raw));
		return -EBADMSG;
	}
	out->hmac = (uint8_t)hmac;
	out->len = (uint8_t)n;
	memcpy(out->key, raw, n);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

int
nvl_dhchap_key_format(const struct nvl_dhchap_key *k, char *buf, size_t len)
{
	uint8_t raw[68];
	char b64[100];
	uint32_t crc;
	int n;

	if ((k->len != 32 && k->len != 48 && k->len != 64) || k->hmac > NVL_NVMF_AUTH_HASH_SHA512)
		return -EINVAL;
	memcpy(raw, k->key, k->len);
	crc = crc32_ieee(k->key, k->len);
	for (int i = 0; i < 4; i++)
		raw[k->len + i] = (uint8_t)(crc >> (8 * i));
	b64_encode(raw, k->len + 4u, b64);
	n = snprintf(buf, len, "DHHC-1:%02u:%s:", k->hmac, b64);
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(b64, sizeof(b64));
	if (n < 0 || (size_t)n >= len) {
		if (len)
			OPENSSL_cleanse(buf, len);
		return -ENOSPC;
	}
	return 0;
}

int
nvl_dhchap_key_generate(uint8_t hmac, uint8_t len, struct nvl_dhchap_key *out)
{
	memset(out, 0, sizeof(*out));
	if ((len != 32 && len != 48 && len != 64) || hmac > NVL_NVMF_AUTH_HASH_SHA512)
		return -EINVAL;
	out->hmac = hmac;
	out->len = len;
	return nvl_dhchap_random(out->key, len);
}

void
nvl_dhchap_key_wipe(struct nvl_dhchap_key *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
}

/* One HMAC over a list of pieces. */
struct piece {
	const void *p;
	size_t len;
};

static int
hmac_pieces(uint8_t hashid, const uint8_t *key, size_t key_len, const struct piece *pc,
	    unsigned n, uint8_t *out)
{
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t outl = 0;
	int rc = -EIO;

	if (nvl_dhchap_hash_len(hashid) == 0 || key_len == 0)
		return -EINVAL;
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (mac == NULL)
		return -EIO;
	ctx = EVP_MAC_CTX_new(mac);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     (char *)g_hashes[hashid].md, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (ctx == NULL || EVP_MAC_init(ctx, key, key_len, params) != 1)
		goto out;
	for (unsigned i = 0; i < n; i++)
		if (pc[i].len && EVP_MAC_update(ctx, pc[i].p, pc[i].len) != 1)
			goto out;
	if (EVP_MAC_final(ctx, out, &outl, NVL_DHCHAP_MAX_HASH) != 1 ||
	    outl != nvl_dhchap_hash_len(hashid))
		goto out;
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx); /* clears its key material */
	EVP_MAC_free(mac);
	return rc;
}

int
nvl_dhchap_key_transform(const struct nvl_dhchap_key *k, const char *nqn, uint8_t *out,
			 size_t *out_len)
{
	struct piece pc[2] = { { nqn, strlen(nqn) }, { "NVMe-over-Fabrics", 17 } };
	int rc;

	if (k->len != 32 && k->len != 48 && k->len != 64)
		return -EINVAL;
	if (k->hmac == 0) {
		memcpy(out, k->key, k->len);
		*out_len = k->len;
		return 0;
	}
	rc = hmac_pieces(k->hmac, k->key, k->len, pc, 2, out);
	if (rc == 0)
		*out_len = nvl_dhchap_hash_len(k->hmac);
	return rc;
}

/* ---- responses ---------------------------------------------------------- */

int
nvl_dhchap_augment(uint8_t hashid, const uint8_t *sess, size_t sess_len, const uint8_t *chal,
		   uint8_t *out)
{
	const EVP_MD *md = hash_md(hashid);
	size_t hl = nvl_dhchap_hash_len(hashid);
	uint8_t hk[NVL_DHCHAP_MAX_HASH];
	unsigned int hkl = 0;
	struct piece pc = { chal, hl };
	int rc;

	if (md == NULL)
		return -EINVAL;
	if (EVP_Digest(sess, sess_len, hk, &hkl, md, NULL) != 1 || hkl != hl)
		return -EIO;
	rc = hmac_pieces(hashid, hk, hl, &pc, 1, out);
	OPENSSL_cleanse(hk, sizeof(hk));
	return rc;
}

int
nvl_dhchap_response(uint8_t hashid, const uint8_t *tkey, size_t tkey_len, const uint8_t *chal,
		    const uint8_t *sess, size_t sess_len, uint32_t seqnum, uint16_t tid,
		    uint8_t sc_c, bool controller, const char *hostnqn, const char *subnqn,
		    uint8_t *out)
{
	size_t hl = nvl_dhchap_hash_len(hashid);
	uint8_t aug[NVL_DHCHAP_MAX_HASH];
	uint8_t s[4] = { (uint8_t)seqnum, (uint8_t)(seqnum >> 8), (uint8_t)(seqnum >> 16),
			 (uint8_t)(seqnum >> 24) };
	uint8_t t[2] = { (uint8_t)tid, (uint8_t)(tid >> 8) };
	const char *nqn1 = controller ? subnqn : hostnqn;
	const char *nqn2 = controller ? hostnqn : subnqn;
	static const uint8_t zero;
	int rc;

	if (hl == 0)
		return -EINVAL;
	if (sess_len > 0) {
		rc = nvl_dhchap_augment(hashid, sess, sess_len, chal, aug);
		if (rc < 0)
			return rc;
		chal = aug;
	}
	{
		struct piece pc[] = {
			{ chal, hl },
			{ s, 4 },
			{ t, 2 },
			{ &sc_c, 1 },
			{ controller ? "Controller" : "HostHost", controller ? 10 : 8 },
			{ nqn1, strlen(nqn1) },
			{ &zero, 1 },
			{ nqn2, strlen(nqn2) },
		};

		rc = hmac_pieces(hashid, tkey, tkey_len, pc, NVL_ARRAY_SIZE(pc), out);
	}
	OPENSSL_cleanse(aug, sizeof(aug));
	return rc;
}

/* ---- Diffie-Hellman ------------------------------------------------------ */

struct nvl_dhchap_dh {
	EVP_PKEY *pkey;
	uint8_t dhgid;
};

int
nvl_dhchap_dh_create(uint8_t dhgid, struct nvl_dhchap_dh **out)
{
	struct nvl_dhchap_dh *dh;
	EVP_PKEY_CTX *pctx;
	OSSL_PARAM params[2];
	int rc = -EIO;

	if (nvl_dhchap_dhgroup_len(dhgid) == 0)
		return -EINVAL;
	dh = calloc(1, sizeof(*dh));
	if (dh == NULL)
		return -ENOMEM;
	dh->dhgid = dhgid;
	pctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     (char *)g_dhgroups[dhgid].name, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (pctx == NULL || EVP_PKEY_keygen_init(pctx) != 1 ||
	    EVP_PKEY_CTX_set_params(pctx, params) != 1 || EVP_PKEY_generate(pctx, &dh->pkey) != 1)
		goto err;
	EVP_PKEY_CTX_free(pctx);
	*out = dh;
	return 0;
err:
	EVP_PKEY_CTX_free(pctx);
	free(dh);
	return rc;
}

void
nvl_dhchap_dh_destroy(struct nvl_dhchap_dh *dh)
{
	if (dh == NULL)
		return;
	EVP_PKEY_free(dh->pkey);
	free(dh);
}

int
nvl_dhchap_dh_public(const struct nvl_dhchap_dh *dh, uint8_t *out, size_t len)
{
	BIGNUM *pub = NULL;
	int rc = -EIO;

	if (len != nvl_dhchap_dhgroup_len(dh->dhgid))
		return -EINVAL;
	if (EVP_PKEY_get_bn_param(dh->pkey, OSSL_PKEY_PARAM_PUB_KEY, &pub) == 1 &&
	    BN_bn2binpad(pub, out, (int)len) == (int)len)
		rc = 0;
	BN_free(pub);
	return rc;
}

/* The peer's public value as a key of our group. */
static int
peer_key(const struct nvl_dhchap_dh *dh, const uint8_t *peer, size_t len, EVP_PKEY **out)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *y = NULL, *p = NULL;
	int rc = -EIO;

	y = BN_bin2bn(peer, (int)len, NULL);
	if (y == NULL || EVP_PKEY_get_bn_param(dh->pkey, OSSL_PKEY_PARAM_FFC_P, &p) != 1)
		goto out;
	/* 1 < y < p - 1 (y = 0, 1, p - 1 would confine the secret to a tiny subgroup) */
	if (BN_cmp(y, BN_value_one()) <= 0 || !BN_sub_word(p, 1) || BN_cmp(y, p) >= 0) {
		rc = -EINVAL;
		goto out;
	}
	bld = OSSL_PARAM_BLD_new();
	if (bld == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					    g_dhgroups[dh->dhgid].name, 0) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, y) != 1)
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	rc = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(y);
	BN_free(p);
	return rc;
}

int
nvl_dhchap_dh_derive(const struct nvl_dhchap_dh *dh, const uint8_t *peer, size_t peer_len,
		     uint8_t *out, size_t len)
{
	size_t glen = nvl_dhchap_dhgroup_len(dh->dhgid), outl = len;
	EVP_PKEY *pk = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	int rc;

	if (peer_len != glen || len != glen)
		return -EINVAL;
	rc = peer_key(dh, peer, peer_len, &pk);
	if (rc < 0)
		return rc;
	rc = -EIO;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, dh->pkey, NULL);
	if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_CTX_set_dh_pad(ctx, 1) != 1)
		goto out;
	/* validate_peer 0: peer_key() checked 1 < y < p - 1, which is what the
	 * Linux kernel checks outside FIPS mode. OpenSSL's full check (y^q = 1)
	 * costs a modular exponentiation with a full-size exponent, up to 190 ms
	 * for ffdhe8192 on the reactor, for any peer that sends a Reply; what it
	 * would add is excluding the other coset of order 2q, which reveals at most
	 * the low bit of an exponent that is used once and thrown away. */
	if (EVP_PKEY_derive_set_peer_ex(ctx, pk, 0) != 1) {
		rc = -EINVAL;
		goto out;
	}
	if (EVP_PKEY_derive(ctx, out, &outl) != 1 || outl != len) {
		OPENSSL_cleanse(out, len);
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return rc;
}

/* ---- messages ----------------------------------------------------------- */

static void
hdr_put(void *buf, uint8_t type, uint8_t id, uint16_t tid)
{
	struct nvl_nvmf_auth_hdr *h = buf;

	h->auth_type = type;
	h->auth_id = id;
	h->rsvd2[0] = h->rsvd2[1] = 0;
	h->t_id = tid;
}

int
nvl_dhchap_hdr_decode(const void *buf, size_t len, struct nvl_nvmf_auth_hdr *out)
{
	if (len < sizeof(*out))
		return -EBADMSG;
	memcpy(out, buf, sizeof(*out));
	return 0;
}

int
nvl_dhchap_negotiate_decode(const void *buf, size_t len, struct nvl_dhchap_negotiate_info *out)
{
	const struct nvl_nvmf_auth_negotiate *m = buf;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(*m))
		return -EBADMSG;
	out->tid = m->hdr.t_id;
	out->sc_c = m->sc_c;
	if (m->napd == 0 || len != sizeof(*m) + (size_t)m->napd * sizeof(m->desc[0]))
		return -EBADMSG;
	for (unsigned i = 0; i < m->napd; i++) {
		const struct nvl_nvmf_auth_desc *d = &m->desc[i];

		if (d->authid != NVL_NVMF_AUTH_PROTO_DHCHAP)
			continue;
		if (d->halen > NVL_NVMF_AUTH_MAX_IDS || d->dhlen > NVL_NVMF_AUTH_MAX_IDS)
			return -EBADMSG;
		out->dhchap = true;
		out->nhash = d->halen;
		out->ndh = d->dhlen;
		memcpy(out->hashids, d->idlist, d->halen);
		memcpy(out->dhgids, d->idlist + NVL_NVMF_AUTH_MAX_IDS, d->dhlen);
		break;
	}
	return 0;
}

int
nvl_dhchap_negotiate_encode(void *buf, size_t cap, uint16_t tid, const uint8_t *hashids,
			    unsigned nhash, const uint8_t *dhgids, unsigned ndh)
{
	struct nvl_nvmf_auth_negotiate *m = buf;
	size_t len = sizeof(*m) + sizeof(m->desc[0]);

	if (nhash > NVL_NVMF_AUTH_MAX_IDS || ndh > NVL_NVMF_AUTH_MAX_IDS)
		return -EINVAL;
	if (cap < len)
		return -ENOSPC;
	memset(buf, 0, len);
	hdr_put(buf, NVL_NVMF_AUTH_TYPE_COMMON, NVL_NVMF_AUTH_ID_NEGOTIATE, tid);
	m->sc_c = NVL_NVMF_AUTH_SCC_NONE;
	m->napd = 1;
	m->desc[0].authid = NVL_NVMF_AUTH_PROTO_DHCHAP;
	m->desc[0].halen = (uint8_t)nhash;
	m->desc[0].dhlen = (uint8_t)ndh;
	memcpy(m->desc[0].idlist, hashids, nhash);
	memcpy(m->desc[0].idlist + NVL_NVMF_AUTH_MAX_IDS, dhgids, ndh);
	return (int)len;
}

int
nvl_dhchap_challenge_encode(void *buf, size_t cap, uint16_t tid, uint8_t hashid, uint8_t dhgid,
			    uint32_t seqnum, const uint8_t *c1, const uint8_t *dhv, size_t dhvlen)
{
	struct nvl_nvmf_auth_challenge *m = buf;
	size_t hl = nvl_dhchap_hash_len(hashid);
	size_t len = sizeof(*m) + hl + dhvlen;

	if (hl == 0 || nvl_dhchap_dhgroup_name(dhgid) == NULL ||
	    dhvlen != nvl_dhchap_dhgroup_len(dhgid))
		return -EINVAL;
	if (cap < len)
		return -ENOSPC;
	memset(m, 0, sizeof(*m));
	hdr_put(buf, NVL_NVMF_AUTH_TYPE_DHCHAP, NVL_NVMF_AUTH_ID_CHALLENGE, tid);
	m->hl = (uint8_t)hl;
	m->hashid = hashid;
	m->dhgid = dhgid;
	m->dhvlen = (uint16_t)dhvlen;
	m->seqnum = seqnum;
	memcpy(m->cval, c1, hl);
	if (dhvlen)
		memcpy(m->cval + hl, dhv, dhvlen);
	return (int)len;
}

int
nvl_dhchap_challenge_decode(const void *buf, size_t len, struct nvl_dhchap_challenge_info *out)
{
	const struct nvl_nvmf_auth_challenge *m = buf;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(*m))
		return -EBADMSG;
	out->tid = m->hdr.t_id;
	if (m->hdr.auth_type != NVL_NVMF_AUTH_TYPE_DHCHAP ||
	    m->hdr.auth_id != NVL_NVMF_AUTH_ID_CHALLENGE)
		return -EPROTO;
	out->hashid = m->hashid;
	out->dhgid = m->dhgid;
	out->hl = m->hl;
	out->seqnum = m->seqnum;
	out->dhvlen = m->dhvlen;
	if (m->hl == 0 || m->hl != nvl_dhchap_hash_len(m->hashid) ||
	    nvl_dhchap_dhgroup_name(m->dhgid) == NULL ||
	    m->dhvlen != nvl_dhchap_dhgroup_len(m->dhgid) ||
	    len < sizeof(*m) + (size_t)m->hl + m->dhvlen)
		return -EBADMSG;
	out->c1 = m->cval;
	out->dhv = m->dhvlen ? m->cval + m->hl : NULL;
	return 0;
}

int
nvl_dhchap_reply_encode(void *buf, size_t cap, uint16_t tid, uint8_t hl, const uint8_t *r1,
			const uint8_t *c2, uint32_t seqnum, const uint8_t *dhv, size_t dhvlen)
{
	struct nvl_nvmf_auth_reply *m = buf;
	size_t len = sizeof(*m) + 2 * (size_t)hl + dhvlen;

	if (hl == 0 || hl > NVL_DHCHAP_MAX_HASH || dhvlen > NVL_DHCHAP_MAX_DH)
		return -EINVAL;
	if (cap < len)
		return -ENOSPC;
	memset(buf, 0, len);
	hdr_put(buf, NVL_NVMF_AUTH_TYPE_DHCHAP, NVL_NVMF_AUTH_ID_REPLY, tid);
	m->hl = hl;
	m->cvalid = c2 != NULL;
	m->dhvlen = (uint16_t)dhvlen;
	m->seqnum = c2 ? seqnum : 0;
	memcpy(m->rval, r1, hl);
	if (c2)
		memcpy(m->rval + hl, c2, hl);
	if (dhvlen)
		memcpy(m->rval + 2 * hl, dhv, dhvlen);
	return (int)len;
}

int
nvl_dhchap_reply_decode(const void *buf, size_t len, uint8_t hl, struct nvl_dhchap_reply_info *out)
{
	const struct nvl_nvmf_auth_reply *m = buf;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(*m))
		return -EBADMSG;
	out->tid = m->hdr.t_id;
	out->hl = m->hl;
	out->cvalid = m->cvalid == 1;
	out->seqnum = m->seqnum;
	out->dhvlen = m->dhvlen;
	if (hl == 0 || m->hl != hl || m->cvalid > 1 ||
	    len != sizeof(*m) + 2 * (size_t)m->hl + m->dhvlen)
		return -EBADMSG;
	out->r1 = m->rval;
	out->c2 = m->rval + hl;
	out->dhv = m->dhvlen ? m->rval + 2 * hl : NULL;
	return 0;
}

int
nvl_dhchap_success1_encode(void *buf, size_t cap, uint16_t tid, uint8_t hl, const uint8_t *r2)
{
	struct nvl_nvmf_auth_success1 *m = buf;
	size_t len = sizeof(*m) + (r2 ? hl : 0);

	if (hl == 0 || hl > NVL_DHCHAP_MAX_HASH)
		return -EINVAL;
	if (cap < len)
		return -ENOSPC;
	memset(buf, 0, len);
	hdr_put(buf, NVL_NVMF_AUTH_TYPE_DHCHAP, NVL_NVMF_AUTH_ID_SUCCESS1, tid);
	m->hl = hl;
	m->rvalid = r2 != NULL;
	if (r2)
		memcpy(m->rval, r2, hl);
	return (int)len;
}

int
nvl_dhchap_success1_decode(const void *buf, size_t len, uint8_t hl,
			   struct nvl_dhchap_success1_info *out)
{
	const struct nvl_nvmf_auth_success1 *m = buf;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(*m))
		return -EBADMSG;
	out->tid = m->hdr.t_id;
	if (m->hdr.auth_type != NVL_NVMF_AUTH_TYPE_DHCHAP ||
	    m->hdr.auth_id != NVL_NVMF_AUTH_ID_SUCCESS1)
		return -EPROTO;
	out->hl = m->hl;
	out->rvalid = m->rvalid != 0;
	if (m->hl != hl || (out->rvalid && len < sizeof(*m) + (size_t)hl))
		return -EBADMSG;
	out->r2 = out->rvalid ? m->rval : NULL;
	return 0;
}

int
nvl_dhchap_success2_encode(void *buf, size_t cap, uint16_t tid)
{
	if (cap < sizeof(struct nvl_nvmf_auth_success2))
		return -ENOSPC;
	memset(buf, 0, sizeof(struct nvl_nvmf_auth_success2));
	hdr_put(buf, NVL_NVMF_AUTH_TYPE_DHCHAP, NVL_NVMF_AUTH_ID_SUCCESS2, tid);
	return (int)sizeof(struct nvl_nvmf_auth_success2);
}

int
nvl_dhchap_success2_decode(const void *buf, size_t len, uint16_t *tid)
{
	const struct nvl_nvmf_auth_success2 *m = buf;

	if (len != sizeof(*m))
		return -EBADMSG;
	*tid = m->hdr.t_id;
	return 0;
}

int
nvl_dhchap_failure_encode(void *buf, size_t cap, bool failure1, uint16_t tid, uint8_t rce)
{
	struct nvl_nvmf_auth_failure *m = buf;

	if (cap < sizeof(*m))
		return -ENOSPC;
	memset(buf, 0, sizeof(*m));
	hdr_put(buf, NVL_NVMF_AUTH_TYPE_COMMON,
		failure1 ? NVL_NVMF_AUTH_ID_FAILURE1 : NVL_NVMF_AUTH_ID_FAILURE2, tid);
	m->rc = NVL_NVMF_AUTH_RC_FAILURE;
	m->rce = rce;
	return (int)sizeof(*m);
}

int
nvl_dhchap_failure_decode(const void *buf, size_t len, uint16_t *tid, uint8_t *rce)
{
	const struct nvl_nvmf_auth_failure *m = buf;

	if (len < sizeof(*m))
		return -EBADMSG;
	*tid = m->hdr.t_id;
	*rce = m->rce;
	return 0;
}
