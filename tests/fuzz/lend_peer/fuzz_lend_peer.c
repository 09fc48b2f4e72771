/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the lending peer protocol (src/lend/lend_proto.c):
 * every parser a peer's bytes reach. The first input byte picks the role;
 * the rest is the line as it came off the socket:
 *   0  the server's greeting, as a client parses it
 *   1  a signed request, as a server parses it (the MAC check in front)
 *   2  a request body after authentication (nvl_lend_body_decode)
 *   3  an answer, as a client parses it
 *   4  a request re-signed with the fuzz key, so the body parser behind the
 *      MAC check is reached through the envelope too
 * Checks: no crash or leak, results NUL-terminated and within bounds, a
 * decoded request always carries an object body.
 */
#include "lend/lend_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SNONCE "00112233445566778899aabbccddeeff"
#define CNONCE "ffeeddccbbaa99887766554433221100"

static void
check_str(const char *s, size_t cap)
{
	if (memchr(s, '\0', cap) == NULL)
		__builtin_trap();
}

static void
check_body(const json_t *body)
{
	struct nvl_lend_body b;
	char err[128];

	if (nvl_lend_body_decode(body, &b, err, sizeof(err)) == 0) {
		check_str(b.lease, sizeof(b.lease));
		check_str(b.hostnqn, sizeof(b.hostnqn));
		check_str(b.addr, sizeof(b.addr));
		check_str(b.reason, sizeof(b.reason));
		if (nvl_lend_op_name(b.op) == NULL)
			__builtin_trap();
	}
	check_str(err, sizeof(err));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct nvl_lend_key key = { .len = 32 };
	struct nvl_lend_greeting g;
	struct nvl_lend_request r;
	json_t *body = NULL;
	char err[256], *line;
	int rc;

	if (size < 1 || size > NVL_LEND_LINE_MAX + 2)
		return 0;
	memset(key.bytes, 'k', key.len);
	line = malloc(size);
	memcpy(line, data + 1, size - 1);
	line[size - 1] = '\0';
	switch (data[0] % 5) {
	case 0:
		if (nvl_lend_greeting_decode(line, size - 1, &g) == 0) {
			check_str(g.node, sizeof(g.node));
			if (!nvl_lend_name_valid(g.node) || !nvl_lend_uuid_valid(g.node_id))
				__builtin_trap();
		}
		break;
	case 1:
		rc = nvl_lend_request_decode(&key, SNONCE, line, size - 1, &r);
		if (rc == 0) {
			if (!json_is_object(r.body))
				__builtin_trap();
			check_body(r.body);
			nvl_lend_request_fini(&r);
		}
		break;
	case 2: {
		json_error_t je;
		json_t *j = json_loadb(line, size - 1, 0, &je);

		if (j) {
			check_body(j);
			json_decref(j);
		}
		break;
	}
	case 3:
		rc = nvl_lend_response_decode(&key, CNONCE, SNONCE, line, size - 1, &body, err,
					      sizeof(err));
		if (rc == 0 && !json_is_object(body))
			__builtin_trap();
		if (rc != 0 && body != NULL)
			__builtin_trap();
		check_str(err, sizeof(err));
		json_decref(body);
		break;
	case 4: {
		json_error_t je;
		json_t *j = json_loadb(line, size - 1, 0, &je);
		char *req;

		if (j && json_is_object(j)) {
			req = nvl_lend_request_encode(&key, SNONCE, "fuzz",
						      "12345678-1234-4234-8234-123456789abc", CNONCE,
						      j);
			if (req) {
				if (nvl_lend_request_decode(&key, SNONCE, req, strlen(req), &r) ==
				    0) {
					check_body(r.body);
					nvl_lend_request_fini(&r);
				} else if (strlen(req) <= NVL_LEND_LINE_MAX) {
					__builtin_trap(); /* our own request must verify */
				}
				free(req);
			}
		}
		json_decref(j);
		break;
	}
	}
	free(line);
	return 0;
}
