/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of src/lend/lend_proto.c: the cluster key file rules, the
 * validators at their bounds, a request and an answer that round-trip and
 * every way a forged, replayed, altered or malformed one is refused, and
 * the request bodies.
 */
#include "lend/lend_proto.c"
#include "common/ut.h"

#define SNONCE "00112233445566778899aabbccddeeff"
#define CNONCE "ffeeddccbbaa99887766554433221100"
#define NODE_ID "12345678-1234-4234-8234-123456789abc"

static struct nvl_lend_key g_key;

static void
key_init(struct nvl_lend_key *k, char fill)
{
	memset(k->bytes, fill, 40);
	k->len = 40;
}

static void
test_key_file(void **state)
{
	char dir[] = "/tmp/lend_ut.XXXXXX", path[64];
	struct nvl_lend_key k;
	const char *why;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/key", dir);
	assert_int_equal(nvl_lend_key_load(path, &k, &why), -ENOENT);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "short\n", 6), 6);
	close(fd);
	assert_int_equal(nvl_lend_key_load(path, &k, &why), -EINVAL);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "0123456789abcdef0123456789abcdef0123\n\n", 38), 38);
	close(fd);
	assert_int_equal(nvl_lend_key_load(path, &k, &why), 0);
	assert_int_equal(k.len, 36); /* trailing whitespace is not key */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(nvl_lend_key_load(path, &k, &why), -EPERM);
	assert_non_null(strstr(why, "chmod 600"));
	assert_int_equal(chmod(path, 0604), 0);
	assert_int_equal(nvl_lend_key_load(path, &k, &why), -EPERM);
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(nvl_lend_key_load(path, &k, &why), 0);
	assert_int_equal(nvl_lend_key_load(dir, &k, &why), -EINVAL); /* a directory */
	unlink(path);
	rmdir(dir);
}

static void
test_validators(void **state)
{
	char n63[64], n64[65];

	(void)state;
	memset(n63, 'a', 63);
	n63[63] = '\0';
	memset(n64, 'a', 64);
	n64[64] = '\0';
	assert_true(nvl_lend_name_valid("node-1.a_b"));
	assert_true(nvl_lend_name_valid(n63));
	assert_false(nvl_lend_name_valid(n64));
	assert_false(nvl_lend_name_valid(""));
	assert_false(nvl_lend_name_valid("-x"));
	assert_false(nvl_lend_name_valid(".x"));
	assert_false(nvl_lend_name_valid("a b"));
	assert_false(nvl_lend_name_valid("a/b"));
	assert_false(nvl_lend_name_valid(NULL));
	assert_true(nvl_lend_uuid_valid(NODE_ID));
	assert_false(nvl_lend_uuid_valid("12345678-1234-4234-8234-123456789ab"));
	assert_false(nvl_lend_uuid_valid("12345678+1234-4234-8234-123456789abc"));
	assert_false(nvl_lend_uuid_valid("g2345678-1234-4234-8234-123456789abc"));
	assert_true(nvl_lend_hex_valid(SNONCE, 32));
	assert_false(nvl_lend_hex_valid(SNONCE, 31));
	assert_false(nvl_lend_hex_valid("00112233445566778899AABBCCDDEEFF", 32));
}

static void
test_greeting(void **state)
{
	struct nvl_lend_greeting g = { "lender", NODE_ID, SNONCE }, o;
	char *line = nvl_lend_greeting_encode(&g);

	(void)state;
	assert_non_null(line);
	assert_int_equal(nvl_lend_greeting_decode(line, strlen(line), &o), 0);
	assert_string_equal(o.node, "lender");
	assert_string_equal(o.nonce, SNONCE);
	free(line);
	/* wrong version, bad nonce, not JSON, two lines */
	line = "{\"nvlend_peer\":2,\"node\":\"a\",\"node_id\":\"" NODE_ID "\",\"nonce\":\"" SNONCE "\"}\n";
	assert_int_equal(nvl_lend_greeting_decode(line, strlen(line), &o), -EINVAL);
	line = "{\"nvlend_peer\":1,\"node\":\"a\",\"node_id\":\"" NODE_ID "\",\"nonce\":\"00\"}\n";
	assert_int_equal(nvl_lend_greeting_decode(line, strlen(line), &o), -EINVAL);
	line = "nvlend\n";
	assert_int_equal(nvl_lend_greeting_decode(line, strlen(line), &o), -EPROTO);
	line = "{}\n{}\n";
	assert_int_equal(nvl_lend_greeting_decode(line, strlen(line), &o), -EPROTO);
	assert_int_equal(nvl_lend_greeting_decode(line, 0, &o), -EINVAL);
}

static void
test_request_roundtrip_and_forgery(void **state)
{
	struct nvl_lend_request r;
	struct nvl_lend_key other;
	json_t *body = json_pack("{s:s, s:i, s:s}", "op", "borrow", "id", 7, "hostnqn",
				 "nqn.2014-08.org.nvmexpress:uuid:" NODE_ID);
	char *line, *bad;
	size_t len;

	(void)state;
	line = nvl_lend_request_encode(&g_key, SNONCE, "b1", NODE_ID, CNONCE, body);
	assert_non_null(line);
	len = strlen(line);
	assert_int_equal(nvl_lend_request_decode(&g_key, SNONCE, line, len, &r), 0);
	assert_string_equal(r.node, "b1");
	assert_int_equal(json_integer_value(json_object_get(r.body, "id")), 7);
	nvl_lend_request_fini(&r);
	/* another key: not an allowed peer */
	key_init(&other, 'o');
	assert_int_equal(nvl_lend_request_decode(&other, SNONCE, line, len, &r), -EACCES);
	/* a replay on another connection (another server nonce) */
	assert_int_equal(nvl_lend_request_decode(&g_key, CNONCE, line, len, &r), -EACCES);
	/* one byte of the body changed ("id":7 -> "id":8) */
	bad = strdup(line);
	*strstr(bad, "7") = '8';
	assert_int_equal(nvl_lend_request_decode(&g_key, SNONCE, bad, len, &r), -EACCES);
	free(bad);
	/* another node id claimed with the same MAC */
	bad = strdup(line);
	memcpy(strstr(bad, NODE_ID), "22345678", 8);
	assert_int_equal(nvl_lend_request_decode(&g_key, SNONCE, bad, len, &r), -EACCES);
	free(bad);
	/* no MAC, not an object, truncated */
	assert_int_equal(nvl_lend_request_decode(&g_key, SNONCE, "{\"body\":\"{}\"}", 13, &r),
			 -EINVAL);
	assert_int_equal(nvl_lend_request_decode(&g_key, SNONCE, "[1]\n", 4, &r), -EPROTO);
	assert_int_equal(nvl_lend_request_decode(&g_key, SNONCE, line, len / 2, &r), -EPROTO);
	assert_int_equal(nvl_lend_request_decode(&g_key, SNONCE, line, NVL_LEND_LINE_MAX + 1, &r),
			 -EINVAL);
	free(line);
	json_decref(body);
}

static void
test_response(void **state)
{
	json_t *body = json_pack("{s:b, s:s}", "ok", 1, "uri", "nvme+tcp://10.0.0.1:4420/x/1"), *got;
	char err[64], *line = nvl_lend_response_encode(&g_key, CNONCE, SNONCE, body);
	struct nvl_lend_key other;

	(void)state;
	assert_non_null(line);
	assert_int_equal(nvl_lend_response_decode(&g_key, CNONCE, SNONCE, line, strlen(line), &got,
						  err, sizeof(err)),
			 0);
	assert_true(json_equal(got, body));
	json_decref(got);
	/* an answer for another request, or from a node without the key */
	assert_int_equal(nvl_lend_response_decode(&g_key, SNONCE, CNONCE, line, strlen(line), &got,
						  err, sizeof(err)),
			 -EACCES);
	key_init(&other, 'o');
	assert_int_equal(nvl_lend_response_decode(&other, CNONCE, SNONCE, line, strlen(line), &got,
						  err, sizeof(err)),
			 -EACCES);
	assert_null(got);
	free(line);
	line = nvl_lend_refusal_encode("not an allowed peer");
	assert_int_equal(nvl_lend_response_decode(&g_key, CNONCE, SNONCE, line, strlen(line), &got,
						  err, sizeof(err)),
			 -ECONNREFUSED);
	assert_string_equal(err, "not an allowed peer");
	free(line);
	json_decref(body);
}

static void
test_bodies(void **state)
{
	struct nvl_lend_body b;
	char err[128];
	json_t *j;

	(void)state;
	j = json_pack("{s:s, s:i, s:s}", "op", "renew", "id", 3, "lease", SNONCE);
	assert_int_equal(nvl_lend_body_decode(j, &b, err, sizeof(err)), 0);
	assert_int_equal(b.op, NVL_LEND_OP_RENEW);
	assert_int_equal(b.id, 3);
	json_decref(j);
	j = json_pack("{s:s, s:I, s:s}", "op", "renew", "id", (json_int_t)UINT32_MAX + 1, "lease",
		      SNONCE);
	assert_int_equal(nvl_lend_body_decode(j, &b, err, sizeof(err)), -EINVAL);
	json_decref(j);
	j = json_pack("{s:s, s:i, s:s}", "op", "renew", "id", 3, "lease", "short");
	assert_int_equal(nvl_lend_body_decode(j, &b, err, sizeof(err)), -EINVAL);
	json_decref(j);
	j = json_pack("{s:s, s:i, s:s}", "op", "borrow", "id", 3, "hostnqn", "not-an-nqn");
	assert_int_equal(nvl_lend_body_decode(j, &b, err, sizeof(err)), -EINVAL);
	json_decref(j);
	j = json_pack("{s:s, s:s, s:i}", "op", "hello", "addr", "10.0.0.2", "port", 65536);
	assert_int_equal(nvl_lend_body_decode(j, &b, err, sizeof(err)), -EINVAL);
	json_decref(j);
	j = json_pack("{s:s, s:s, s:i}", "op", "hello", "addr", "10.0.0.2", "port", 0);
	assert_int_equal(nvl_lend_body_decode(j, &b, err, sizeof(err)), 0);
	json_decref(j);
	j = json_pack("{s:s}", "op", "steal");
	assert_int_equal(nvl_lend_body_decode(j, &b, err, sizeof(err)), -EINVAL);
	json_decref(j);
	j = json_pack("{s:s, s:i, s:s, s:s}", "op", "revoked", "id", 1, "lease", SNONCE, "reason",
		      "bad\x01");
	assert_int_equal(nvl_lend_body_decode(j, &b, err, sizeof(err)), 0);
	assert_string_equal(b.reason, "revoked"); /* unprintable reasons are not kept */
	json_decref(j);
	assert_string_equal(nvl_lend_op_name(NVL_LEND_OP_RETURN), "return");
}

/* The borrow secrets: DHHC-1 keys both sides derive alike, distinct per role,
 * subsystem, host, lease and cluster key. */
static void
test_dhchap_secret(void **state)
{
	char a[NVL_DHCHAP_SECRET_MAX], b[NVL_DHCHAP_SECRET_MAX];
	struct nvl_lend_key other;
	struct nvl_dhchap_key k;
	const char *nqn = "nqn.2014-08.io.nvlend:lend:l:1", *h = "nqn.2014-08.org.nvmexpress:uuid:x";
	const char *lease = "00112233445566778899aabbccddeeff";

	(void)state;
	key_init(&other, 'o');
	assert_int_equal(nvl_lend_dhchap_secret(&g_key, "host", nqn, h, lease, a, sizeof(a)), 0);
	assert_int_equal(nvl_dhchap_key_parse(a, strlen(a), &k), 0);
	assert_int_equal(k.len, 32);
	assert_int_equal(k.hmac, 0);
	assert_int_equal(nvl_lend_dhchap_secret(&g_key, "host", nqn, h, lease, b, sizeof(b)), 0);
	assert_string_equal(a, b);
	assert_int_equal(nvl_lend_dhchap_secret(&g_key, "ctrl", nqn, h, lease, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(nvl_lend_dhchap_secret(&g_key, "host", "nqn.2014-08.io.nvlend:lend:l:2", h,
						lease, b, sizeof(b)),
			 0);
	assert_string_not_equal(a, b);
	assert_int_equal(nvl_lend_dhchap_secret(&g_key, "host", nqn, "nqn.2014-08.org.x:y", lease, b,
						sizeof(b)),
			 0);
	assert_string_not_equal(a, b);
	assert_int_equal(nvl_lend_dhchap_secret(&g_key, "host", nqn, h,
						"00112233445566778899aabbccddeef0", b, sizeof(b)),
			 0);
	assert_string_not_equal(a, b);
	assert_int_equal(nvl_lend_dhchap_secret(&other, "host", nqn, h, lease, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	/* the fields are separated: moving a character across them changes the key */
	assert_int_equal(nvl_lend_dhchap_secret(&g_key, "host", "ab", "c", lease, a, sizeof(a)), 0);
	assert_int_equal(nvl_lend_dhchap_secret(&g_key, "host", "a", "bc", lease, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(nvl_lend_dhchap_secret(&g_key, "host", nqn, h, "", a, sizeof(a)), -EINVAL);
	assert_int_equal(nvl_lend_dhchap_secret(&g_key, "host", nqn, h, lease, a, 8), -ENOSPC);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dhchap_secret),
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_validators),
		cmocka_unit_test(test_greeting),
		cmocka_unit_test(test_request_roundtrip_and_forgery),
		cmocka_unit_test(test_response),
		cmocka_unit_test(test_bodies),
	};

	key_init(&g_key, 'k');
	return UT_RUN(tests);
}
