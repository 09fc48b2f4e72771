/* SPDX-License-Identifier: BSD-3-Clause */
/* URI parsing for libnvlend (DESIGN.md section 7). */
#include "host/host_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decode %XX escapes in place; reject malformed ones. */
static int
pct_decode(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (*r == '%') {
			unsigned v;

			/* exactly two hex digits: sscanf("%2x") alone would take "%-1",
			 * "% 1" or "%1g" (eating the 'g') */
			if (!isxdigit((unsigned char)r[1]) || !isxdigit((unsigned char)r[2]) ||
			    sscanf(r + 1, "%2x", &v) != 1 || v == 0)
				return -EINVAL;
			*w++ = (char)v;
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return 0;
}

static int
copy_field(char *dst, size_t size, const char *src, size_t len)
{
	if (len >= size)
		return -ENAMETOOLONG;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return pct_decode(dst);
}

static int
parse_nsid(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v == 0 || v >= 0xffffffffUL)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* host:port with IPv6 in brackets */
static int
parse_hostport(struct nvl_uri *u, const char *hp, size_t len)
{
	const char *colon;

	if (len == 0)
		return -EINVAL;
	if (hp[0] == '[') {
		const char *rb = memchr(hp, ']', len);

		if (rb == NULL)
			return -EINVAL;
		if (copy_field(u->host, sizeof(u->host), hp + 1, (size_t)(rb - hp - 1)) < 0)
			return -EINVAL;
		colon = rb + 1 < hp + len && rb[1] == ':' ? rb + 1 : NULL;
		if (rb + 1 < hp + len && colon == NULL)
			return -EINVAL;
	} else {
		colon = memchr(hp, ':', len);
		if (copy_field(u->host, sizeof(u->host), hp, colon ? (size_t)(colon - hp) : len) < 0)
			return -EINVAL;
	}
	if (u->host[0] == '\0')
		return -EINVAL;
	if (colon) {
		size_t plen = (size_t)(hp + len - colon - 1);

		if (plen == 0 || copy_field(u->port, sizeof(u->port), colon + 1, plen) < 0)
			return -EINVAL;
		{
			unsigned long port;

			for (const char *p = u->port; *p; p++)
				if (*p < '0' || *p > '9')
					return -EINVAL;
			/* decimal, as getaddrinfo() reads it (nvl_parse_u64 takes a
			 * leading 0 as octal); at most 15 digits, no overflow */
			port = strtoul(u->port, NULL, 10);
			if (port == 0 || port > 65535)
				return -EINVAL;
		}
	}
	return 0;
}

NVL_EXPORT int
nvl_uri_parse(const char *uri, struct nvl_uri *out)
{
	struct nvl_uri u;
	const char *rest, *q;
	bool fn = false;
	int rc;

	memset(&u, 0, sizeof(u));
	if (uri == NULL)
		return -EINVAL;
	if (strncmp(uri, "nvme+shm://", 11) == 0) {
		u.kind = NVL_URI_NVME_SHM;
		rest = uri + 11;
	} else if (strncmp(uri, "nvme+fn://", 10) == 0) {
		/* a function's endpoint (docs/functions.md): shm, opened without a
		 * Connect, so without an NQN (nqn stays empty: that says "function") */
		u.kind = NVL_URI_NVME_SHM;
		fn = true;
		rest = uri + 10;
	} else if (strncmp(uri, "brick+shm://", 12) == 0) {
		u.kind = NVL_URI_BRICK_SHM;
		rest = uri + 12;
	} else if (strncmp(uri, "nvme+tcp://", 11) == 0) {
		u.kind = NVL_URI_NVME_TCP;
		rest = uri + 11;
	} else if (strncmp(uri, "brick+tcp://", 12) == 0) {
		u.kind = NVL_URI_BRICK_TCP;
		rest = uri + 12;
	} else if (strncmp(uri, "nvme+rdma://", 12) == 0) {
		u.kind = NVL_URI_NVME_RDMA;
		rest = uri + 12;
	} else {
		return strstr(uri, "://") ? -EPROTONOSUPPORT : -EINVAL;
	}
	if (u.kind == NVL_URI_NVME_SHM || u.kind == NVL_URI_BRICK_SHM) {
		/* nvme+shm:///abs/path?nqn=X&nsid=N (empty authority) */
		if (rest[0] != '/')
			return -EINVAL;
		q = strchr(rest, '?');
		rc = copy_field(u.path, sizeof(u.path), rest, q ? (size_t)(q - rest) : strlen(rest));
		if (rc < 0)
			return rc;
		if (u.path[0] != '/' || u.path[1] == '\0')
			return -EINVAL;
		while (q && *q) {
			const char *k = q + 1, *amp = strchr(k, '&'), *eq = strchr(k, '=');
			size_t klen, vlen;
			char val[NVL_NVME_NQN_LEN];

			if (eq == NULL || (amp && eq > amp))
				return -EINVAL;
			klen = (size_t)(eq - k);
			vlen = amp ? (size_t)(amp - eq - 1) : strlen(eq + 1);
			if (copy_field(val, sizeof(val), eq + 1, vlen) < 0)
				return -EINVAL;
			if (klen == 3 && strncmp(k, "nqn", 3) == 0 && u.kind == NVL_URI_NVME_SHM && !fn)
				rc = nvl_strlcpy(u.nqn, val, sizeof(u.nqn));
			else if (klen == 4 && strncmp(k, "nsid", 4) == 0 && u.kind == NVL_URI_NVME_SHM)
				rc = parse_nsid(val, &u.nsid);
			else if (klen == 4 && strncmp(k, "name", 4) == 0 && u.kind == NVL_URI_BRICK_SHM)
				rc = nvl_strlcpy(u.name, val, sizeof(u.name));
			else
				return -EINVAL;
			if (rc < 0)
				return rc;
			q = amp;
		}
		if (u.kind == NVL_URI_NVME_SHM && u.nqn[0] == '\0' && !fn)
			return -EINVAL;
		if (u.kind == NVL_URI_BRICK_SHM && u.name[0] == '\0')
			return -EINVAL;
	} else {
		/* nvme+tcp://host:port/NQN[/NSID] (nvme+rdma:// alike);
		 * brick+tcp://host:port/NAME */
		const char *slash = strchr(rest, '/');
		const char *tail;

		if (slash == NULL)
			return -EINVAL;
		if (rest[0] == '[') {
			const char *rb = strchr(rest, ']');

			if (rb == NULL)
				return -EINVAL;
			slash = strchr(rb, '/');
			if (slash == NULL)
				return -EINVAL;
		}
		rc = parse_hostport(&u, rest, (size_t)(slash - rest));
		if (rc < 0)
			return rc;
		if (u.port[0] == '\0')
			nvl_strlcpy(u.port, u.kind == NVL_URI_BRICK_TCP ? "4430" : "4420",
				    sizeof(u.port));
		tail = slash + 1;
		if (u.kind == NVL_URI_NVME_TCP || u.kind == NVL_URI_NVME_RDMA) {
			/* the NQN may contain ':' but not '/'; an optional /NSID follows */
			const char *s2 = strrchr(tail, '/');

			if (s2 && s2 > tail) {
				rc = copy_field(u.nqn, sizeof(u.nqn), tail, (size_t)(s2 - tail));
				if (rc < 0 || parse_nsid(s2 + 1, &u.nsid) < 0)
					return -EINVAL;
			} else {
				rc = copy_field(u.nqn, sizeof(u.nqn), tail, strlen(tail));
				if (rc < 0)
					return rc;
			}
			if (u.nqn[0] == '\0')
				return -EINVAL;
		} else {
			rc = copy_field(u.name, sizeof(u.name), tail, strlen(tail));
			if (rc < 0 || u.name[0] == '\0' || strchr(u.name, '/'))
				return -EINVAL;
		}
	}
	*out = u;
	return 0;
}
