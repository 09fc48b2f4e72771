/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Lending peer protocol codec: greeting, signed requests and answers, the
 * request bodies, the cluster key file. Pure functions over caller-owned
 * buffers; any thread. Everything parsed here comes from the network and is
 * bounds-checked before use (tests/fuzz/lend_peer).
 */
#include "lend/lend_proto.h"
#include "proto/nvme_auth.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAG_REQ "nvlend-peer-v1 req\n"
#define TAG_RESP "nvlend-peer-v1 resp\n"

/* ---- key ------------------------------------------------------------------- */

int
nvl_lend_key_load(const char *path, struct nvl_lend_key *key, const char **why)
{
	struct stat st;
	ssize_t n;
	int fd, rc = 0;

	*why = "";
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		*why = errno == ELOOP ? "is a symbolic link" : strerror(errno);
		return errno == ELOOP ? -EINVAL : -errno;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		*why = strerror(errno);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		*why = "is not a regular file";
		rc = -EINVAL;
		goto out;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		*why = "belongs to another user";
		rc = -EPERM;
		goto out;
	}
	if (st.st_mode & 077) {
		*why = "may be read by its group or others (chmod 600 it)";
		rc = -EPERM;
		goto out;
	}
	n = read(fd, key->bytes, sizeof(key->bytes));
	if (n < 0) {
		rc = -errno;
		*why = strerror(errno);
		goto out;
	}
	if ((size_t)n == sizeof(key->bytes)) {
		*why = "is longer than 1024 bytes";
		rc = -EINVAL;
		goto out;
	}
	while (n > 0 && isspace(key->bytes[n - 1]))
		n--;
	if (n < NVL_LEND_KEY_MIN) {
		*why = "holds fewer than 32 bytes of key (make one with 'nvlend lend keygen')";
		rc = -EINVAL;
		goto out;
	}
	key->len = (size_t)n;
out:
	close(fd);
	return rc;
}

/* ---- small validators ------------------------------------------------------------ */

bool
nvl_lend_name_valid(const char *s)
{
	size_t n = 0;

	if (s == NULL || s[0] == '\0' || s[0] == '-' || s[0] == '.')
		return false;
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (n >= NVL_LEND_NAME_MAX - 1)
			return false;
		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

bool
nvl_lend_hex_valid(const char *s, size_t n)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[n] == '\0';
}

bool
nvl_lend_uuid_valid(const char *s)
{
	static const int dash[] = { 8, 13, 18, 23 };

	if (s == NULL || strlen(s) != 36)
		return false;
	for (int i = 0, d = 0; i < 36; i++) {
		if (d < 4 && i == dash[d]) {
			if (s[i] != '-')
				return false;
			d++;
			continue;
		}
		if (!isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

int
nvl_lend_random_hex(char *out, size_t n)
{
	uint8_t b[64];
	int rc;

	if (n % 2 || n / 2 > sizeof(b))
		return -EINVAL;
	rc = nvl_random_bytes(b, n / 2);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	out[n] = '\0';
	return 0;
}

/* ---- MAC ------------------------------------------------------------------------- */

/* HMAC-SHA256 over the concatenation of parts, as 64 hex digits into out. */
static int
mac_hex(const struct nvl_lend_key *key, const char *const *parts, size_t nparts, char *out)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t total = 0, off = 0;
	char *buf;

	for (size_t i = 0; i < nparts; i++)
		total += strlen(parts[i]);
	buf = malloc(total + 1);
	if (buf == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < nparts; i++) {
		size_t l = strlen(parts[i]);

		memcpy(buf + off, parts[i], l);
		off += l;
	}
	if (HMAC(EVP_sha256(), key->bytes, (int)key->len, (const uint8_t *)buf, total, md,
		 &mdlen) == NULL ||
	    mdlen != 32) {
		free(buf);
		return -EIO;
	}
	free(buf);
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static bool
mac_equal(const char *a, const char *b)
{
	return CRYPTO_memcmp(a, b, NVL_LEND_MAC_HEX) == 0;
}

/* ---- lines ------------------------------------------------------------------------- */

static char *
dump_line(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	char *line;
	size_t l;

	if (s == NULL)
		return NULL;
	l = strlen(s);
	line = realloc(s, l + 2);
	if (line == NULL) {
		free(s);
		return NULL;
	}
	line[l] = '\n';
	line[l + 1] = '\0';
	return line;
}

/* Parse one line (len bytes, optional trailing newline) into an object. */
static int
load_line(const char *line, size_t len, json_t **out)
{
	json_error_t err;
	json_t *o;

	if (len == 0 || len > NVL_LEND_LINE_MAX)
		return -EINVAL;
	if (line[len - 1] == '\n')
		len--;
	if (memchr(line, '\n', len) != NULL)
		return -EPROTO;
	o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
	if (o == NULL)
		return -EPROTO;
	if (!json_is_object(o)) {
		json_decref(o);
		return -EPROTO;
	}
	*out = o;
	return 0;
}

/* Copy string member `k` of o into dst (cap bytes). \return 0 or -EINVAL. */
static int
get_str(const json_t *o, const char *k, char *dst, size_t cap)
{
	const json_t *v = json_object_get(o, k);

	if (!json_is_string(v) || json_string_length(v) >= cap ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return -EINVAL;
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

char *
nvl_lend_greeting_encode(const struct nvl_lend_greeting *g)
{
	json_t *o = json_pack("{s:i, s:s, s:s, s:s}", "nvlend_peer", NVL_LEND_PROTO_VERSION, "node",
			      g->node, "node_id", g->node_id, "nonce", g->nonce);
	char *line;

	if (o == NULL)
		return NULL;
	line = dump_line(o);
	json_decref(o);
	return line;
}

int
nvl_lend_greeting_decode(const char *line, size_t len, struct nvl_lend_greeting *g)
{
	json_t *o, *v;
	int rc;

	rc = load_line(line, len, &o);
	if (rc < 0)
		return rc;
	v = json_object_get(o, "nvlend_peer");
	rc = -EINVAL;
	if (!json_is_integer(v) || json_integer_value(v) != NVL_LEND_PROTO_VERSION)
		goto out;
	if (get_str(o, "node", g->node, sizeof(g->node)) < 0 || !nvl_lend_name_valid(g->node) ||
	    get_str(o, "node_id", g->node_id, sizeof(g->node_id)) < 0 ||
	    !nvl_lend_uuid_valid(g->node_id) ||
	    get_str(o, "nonce", g->nonce, sizeof(g->nonce)) < 0 ||
	    !nvl_lend_hex_valid(g->nonce, NVL_LEND_NONCE_HEX))
		goto out;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

char *
nvl_lend_request_encode(const struct nvl_lend_key *key, const char *snonce, const char *me_node,
			const char *me_id, const char *cnonce, const json_t *body)
{
	char mac[NVL_LEND_MAC_HEX + 1], *btext, *line = NULL;
	json_t *o;

	if (!json_is_object(body))
		return NULL;
	btext = json_dumps(body, JSON_COMPACT);
	if (btext == NULL)
		return NULL;
	{
		const char *parts[] = { TAG_REQ, snonce, "\n", cnonce, "\n", me_id, "\n", btext };

		if (mac_hex(key, parts, NVL_ARRAY_SIZE(parts), mac) < 0)
			goto out;
	}
	o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "node", me_node, "node_id", me_id, "nonce",
		      cnonce, "mac", mac, "body", btext);
	if (o) {
		line = dump_line(o);
		json_decref(o);
	}
out:
	free(btext);
	return line;
}

void
nvl_lend_request_fini(struct nvl_lend_request *r)
{
	json_decref(r->body);
	free(r->body_text);
	r->body = NULL;
	r->body_text = NULL;
}

int
nvl_lend_request_decode(const struct nvl_lend_key *key, const char *snonce, const char *line,
			size_t len, struct nvl_lend_request *r)
{
	char mac[NVL_LEND_MAC_HEX + 1];
	json_error_t jerr;
	const json_t *bv;
	json_t *o;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = load_line(line, len, &o);
	if (rc < 0)
		return rc;
	rc = -EINVAL;
	bv = json_object_get(o, "body");
	if (get_str(o, "node", r->node, sizeof(r->node)) < 0 || !nvl_lend_name_valid(r->node) ||
	    get_str(o, "node_id", r->node_id, sizeof(r->node_id)) < 0 ||
	    !nvl_lend_uuid_valid(r->node_id) ||
	    get_str(o, "nonce", r->nonce, sizeof(r->nonce)) < 0 ||
	    !nvl_lend_hex_valid(r->nonce, NVL_LEND_NONCE_HEX) ||
	    get_str(o, "mac", r->mac, sizeof(r->mac)) < 0 ||
	    !nvl_lend_hex_valid(r->mac, NVL_LEND_MAC_HEX) || !json_is_string(bv) ||
	    strlen(json_string_value(bv)) != json_string_length(bv))
		goto out;
	r->body_text = strdup(json_string_value(bv));
	if (r->body_text == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	{
		const char *parts[] = { TAG_REQ,   snonce,	   "\n", r->nonce,
					"\n",	   r->node_id, "\n", r->body_text };

		rc = mac_hex(key, parts, NVL_ARRAY_SIZE(parts), mac);
		if (rc < 0)
			goto out;
	}
	if (!mac_equal(mac, r->mac)) {
		rc = -EACCES;
		goto out;
	}
	/* authenticated: now the body is worth parsing */
	r->body = json_loads(r->body_text, JSON_REJECT_DUPLICATES, &jerr);
	if (r->body == NULL || !json_is_object(r->body)) {
		rc = -EPROTO;
		goto out;
	}
	rc = 0;
out:
	json_decref(o);
	if (rc < 0)
		nvl_lend_request_fini(r);
	return rc;
}

char *
nvl_lend_response_encode(const struct nvl_lend_key *key, const char *cnonce, const char *snonce,
			 const json_t *body)
{
	char mac[NVL_LEND_MAC_HEX + 1], *btext, *line = NULL;
	json_t *o;

	if (!json_is_object(body))
		return NULL;
	btext = json_dumps(body, JSON_COMPACT);
	if (btext == NULL)
		return NULL;
	{
		const char *parts[] = { TAG_RESP, cnonce, "\n", snonce, "\n", btext };

		if (mac_hex(key, parts, NVL_ARRAY_SIZE(parts), mac) < 0)
			goto out;
	}
	o = json_pack("{s:s, s:s}", "mac", mac, "body", btext);
	if (o) {
		line = dump_line(o);
		json_decref(o);
	}
out:
	free(btext);
	return line;
}

int
nvl_lend_response_decode(const struct nvl_lend_key *key, const char *cnonce, const char *snonce,
			 const char *line, size_t len, json_t **body, char *errbuf, size_t errlen)
{
	char mac[NVL_LEND_MAC_HEX + 1], got[NVL_LEND_MAC_HEX + 1];
	const json_t *bv, *ev;
	json_error_t jerr;
	json_t *o, *b;
	int rc;

	*body = NULL;
	if (errlen)
		errbuf[0] = '\0';
	rc = load_line(line, len, &o);
	if (rc < 0)
		return rc;
	ev = json_object_get(o, "error");
	if (json_is_string(ev)) {
		if (errlen)
			snprintf(errbuf, errlen, "%.200s", json_string_value(ev));
		rc = -ECONNREFUSED;
		goto out;
	}
	rc = -EINVAL;
	bv = json_object_get(o, "body");
	if (get_str(o, "mac", got, sizeof(got)) < 0 || !nvl_lend_hex_valid(got, NVL_LEND_MAC_HEX) ||
	    !json_is_string(bv) || strlen(json_string_value(bv)) != json_string_length(bv))
		goto out;
	{
		const char *parts[] = { TAG_RESP, cnonce, "\n", snonce, "\n", json_string_value(bv) };

		rc = mac_hex(key, parts, NVL_ARRAY_SIZE(parts), mac);
		if (rc < 0)
			goto out;
	}
	if (!mac_equal(mac, got)) {
		rc = -EACCES;
		goto out;
	}
	b = json_loads(json_string_value(bv), JSON_REJECT_DUPLICATES, &jerr);
	if (b == NULL || !json_is_object(b)) {
		json_decref(b);
		rc = -EPROTO;
		goto out;
	}
	*body = b;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

char *
nvl_lend_refusal_encode(const char *text)
{
	json_t *o = json_pack("{s:s}", "error", text);
	char *line;

	if (o == NULL)
		return NULL;
	line = dump_line(o);
	json_decref(o);
	return line;
}

/* ---- bodies ------------------------------------------------------------------------- */

static const struct {
	const char *name;
	enum nvl_lend_op op;
} g_ops[] = {
	{ "hello", NVL_LEND_OP_HELLO },	  { "list", NVL_LEND_OP_LIST },
	{ "borrow", NVL_LEND_OP_BORROW }, { "renew", NVL_LEND_OP_RENEW },
	{ "return", NVL_LEND_OP_RETURN }, { "revoked", NVL_LEND_OP_REVOKED },
};

const char *
nvl_lend_op_name(enum nvl_lend_op op)
{
	for (size_t i = 0; i < NVL_ARRAY_SIZE(g_ops); i++)
		if (g_ops[i].op == op)
			return g_ops[i].name;
	return NULL;
}

static int
get_u32(const json_t *o, const char *k, uint64_t max, uint64_t *out)
{
	const json_t *v = json_object_get(o, k);

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return -EINVAL;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* Printable ASCII only (reasons are logged). */
static bool
printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

int
nvl_lend_body_decode(const json_t *body, struct nvl_lend_body *b, char *err, size_t errlen)
{
	char op[16];
	uint64_t v;
	size_t i;

	memset(b, 0, sizeof(*b));
	if (!json_is_object(body) || get_str(body, "op", op, sizeof(op)) < 0) {
		snprintf(err, errlen, "no \"op\"");
		return -EINVAL;
	}
	for (i = 0; i < NVL_ARRAY_SIZE(g_ops); i++)
		if (strcmp(g_ops[i].name, op) == 0)
			break;
	if (i == NVL_ARRAY_SIZE(g_ops)) {
		snprintf(err, errlen, "unknown op");
		return -EINVAL;
	}
	b->op = g_ops[i].op;
	switch (b->op) {
	case NVL_LEND_OP_HELLO:
		/* port 0: the sender serves no peer port (it only borrows) */
		if (get_str(body, "addr", b->addr, sizeof(b->addr)) < 0 || !printable(b->addr) ||
		    get_u32(body, "port", 65535, &v) < 0) {
			snprintf(err, errlen, "hello needs addr and port (0..65535)");
			return -EINVAL;
		}
		b->port = (uint16_t)v;
		return 0;
	case NVL_LEND_OP_LIST:
		return 0;
	case NVL_LEND_OP_BORROW:
		if (get_u32(body, "id", UINT32_MAX, &v) < 0) {
			snprintf(err, errlen, "borrow needs an id");
			return -EINVAL;
		}
		b->id = (uint32_t)v;
		if (get_str(body, "hostnqn", b->hostnqn, sizeof(b->hostnqn)) < 0 ||
		    strncmp(b->hostnqn, "nqn.", 4) != 0 || !printable(b->hostnqn)) {
			snprintf(err, errlen, "borrow needs a host NQN");
			return -EINVAL;
		}
		return 0;
	case NVL_LEND_OP_RENEW:
	case NVL_LEND_OP_RETURN:
	case NVL_LEND_OP_REVOKED:
		if (get_u32(body, "id", UINT32_MAX, &v) < 0 ||
		    get_str(body, "lease", b->lease, sizeof(b->lease)) < 0 ||
		    !nvl_lend_hex_valid(b->lease, NVL_LEND_NONCE_HEX)) {
			snprintf(err, errlen, "%s needs an id and a lease", op);
			return -EINVAL;
		}
		b->id = (uint32_t)v;
		if (b->op == NVL_LEND_OP_REVOKED &&
		    (get_str(body, "reason", b->reason, sizeof(b->reason)) < 0 ||
		     !printable(b->reason)))
			nvl_strlcpy(b->reason, "revoked", sizeof(b->reason));
		return 0;
	}
	snprintf(err, errlen, "unknown op");
	return -EINVAL;
}

int
nvl_lend_dhchap_secret(const struct nvl_lend_key *key, const char *role, const char *nqn,
		       const char *hostnqn, const char *lease, char *out, size_t outlen)
{
	struct nvl_dhchap_key k = { .hmac = 0, .len = 32 };
	char buf[1024];
	unsigned int mdlen = 0;
	int n, rc;

	if (key->len == 0 || !role[0] || !nqn[0] || !hostnqn[0] || !lease[0])
		return -EINVAL;
	/* the 0 bytes separate the fields: a byte no NQN or lease holds */
	n = snprintf(buf, sizeof(buf), "nvlend lend dhchap %s%c%s%c%s%c%s", role, 0, nqn, 0, hostnqn,
		     0, lease);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -EINVAL;
	if (HMAC(EVP_sha256(), key->bytes, (int)key->len, (const uint8_t *)buf, (size_t)n, k.key,
		 &mdlen) == NULL ||
	    mdlen != 32)
		rc = -EIO;
	else
		rc = nvl_dhchap_key_format(&k, out, outlen);
	nvl_dhchap_key_wipe(&k);
	return rc;
}
