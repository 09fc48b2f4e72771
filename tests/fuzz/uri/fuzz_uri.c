/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for libnvlend's URI parser (src/host/uri.c). Input: the
 * URI text (not NUL-terminated by libFuzzer: copied first). On success every
 * field must be a NUL-terminated string inside its buffer, the kind one of
 * the schemes with the fields that scheme requires (nvme+fn: a socket and
 * no NQN), the port a decimal
 * 1..65535 for tcp and rdma; on failure the output must be untouched.
 */
#include "nvlend/nvlend.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_str(const char *s, size_t cap)
{
	if (memchr(s, '\0', cap) == NULL)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct nvl_uri u, before;
	int rc;

	memcpy(s, data, size);
	s[size] = '\0';
	memset(&u, 0xa5, sizeof(u));
	before = u;
	rc = nvl_uri_parse(s, &u);
	if (rc < 0) {
		if (rc != -EINVAL && rc != -EPROTONOSUPPORT && rc != -ENAMETOOLONG)
			__builtin_trap();
		if (memcmp(&u, &before, sizeof(u)) != 0)
			__builtin_trap(); /* partial result */
		free(s);
		return 0;
	}
	check_str(u.path, sizeof(u.path));
	check_str(u.host, sizeof(u.host));
	check_str(u.port, sizeof(u.port));
	check_str(u.nqn, sizeof(u.nqn));
	check_str(u.name, sizeof(u.name));
	switch (u.kind) {
	case NVL_URI_NVME_SHM:
		/* an empty NQN only for a function's endpoint (nvme+fn:///SOCKET) */
		if (u.path[0] != '/' ||
		    (u.nqn[0] == '\0') != (strncmp(s, "nvme+fn://", 10) == 0))
			__builtin_trap();
		break;
	case NVL_URI_BRICK_SHM:
		if (u.path[0] != '/' || u.name[0] == '\0')
			__builtin_trap();
		break;
	case NVL_URI_NVME_TCP:
	case NVL_URI_NVME_RDMA:
	case NVL_URI_BRICK_TCP: {
		char *end;
		unsigned long port = strtoul(u.port, &end, 10);

		if (u.host[0] == '\0' || *end != '\0' || port == 0 || port > 65535)
			__builtin_trap();
		if (u.kind != NVL_URI_BRICK_TCP ? u.nqn[0] == '\0'
					       : (u.name[0] == '\0' || strchr(u.name, '/')))
			__builtin_trap();
		break;
	}
	default:
		__builtin_trap();
	}
	if (u.nsid == 0xffffffffu)
		__builtin_trap();
	/* decoded fields never carry a NUL byte from %00 */
	free(s);
	return 0;
}
