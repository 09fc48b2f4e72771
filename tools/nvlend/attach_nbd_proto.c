/* SPDX-License-Identifier: BSD-3-Clause */
/* NBD transmission-phase codec for the attach process (see attach_nbd_proto.h).
 * Pure functions; fuzzed by tests/fuzz/attach_nbd. */
#include "attach_nbd_proto.h"

#include <errno.h>
#include <string.h>

static uint16_t
be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t
be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t
be64(const uint8_t *p)
{
	return ((uint64_t)be32(p) << 32) | be32(p + 4);
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int
attach_nbd_req_parse(const uint8_t *b, size_t len, struct attach_nbd_req *out)
{
	if (len != ATTACH_NBD_REQUEST_SIZE || be32(b) != ATTACH_NBD_REQUEST_MAGIC)
		return -EPROTO;
	out->flags = be16(b + 4);
	out->type = be16(b + 6);
	out->handle = be64(b + 8);
	out->offset = be64(b + 16);
	out->length = be32(b + 24);
	return 0;
}

uint32_t
attach_nbd_req_check(const struct attach_nbd_req *r, uint64_t size, uint32_t bs, bool ro)
{
	uint32_t allowed;

	switch (r->type) {
	case ATTACH_NBD_CMD_READ:
	case ATTACH_NBD_CMD_CACHE:
		allowed = 0;
		break;
	case ATTACH_NBD_CMD_WRITE:
		allowed = ATTACH_NBD_CMD_FLAG_FUA;
		break;
	case ATTACH_NBD_CMD_WRITE_ZEROES:
		allowed = ATTACH_NBD_CMD_FLAG_FUA | ATTACH_NBD_CMD_FLAG_NO_HOLE;
		break;
	case ATTACH_NBD_CMD_TRIM:
		allowed = ATTACH_NBD_CMD_FLAG_FUA;
		break;
	case ATTACH_NBD_CMD_FLUSH:
	case ATTACH_NBD_CMD_DISC:
		/* no range: offset and length must be zero (proto.md) */
		if (r->flags || r->offset || r->length)
			return ATTACH_NBD_EINVAL;
		return 0;
	default:
		return ATTACH_NBD_EINVAL;
	}
	if (r->flags & ~allowed)
		return ATTACH_NBD_EINVAL;
	if (r->length == 0 || bs == 0 || r->offset % bs || r->length % bs)
		return ATTACH_NBD_EINVAL;
	if (r->length > ATTACH_NBD_MAX_LEN &&
	    (r->type == ATTACH_NBD_CMD_READ || r->type == ATTACH_NBD_CMD_WRITE))
		return ATTACH_NBD_EOVERFLOW;
	if (r->offset > size || r->length > size - r->offset)
		return ATTACH_NBD_ENOSPC;
	if (ro && (r->type == ATTACH_NBD_CMD_WRITE || r->type == ATTACH_NBD_CMD_WRITE_ZEROES ||
		   r->type == ATTACH_NBD_CMD_TRIM))
		return ATTACH_NBD_EPERM;
	return 0;
}

void
attach_nbd_reply_build(uint8_t out[ATTACH_NBD_REPLY_SIZE], uint32_t error, uint64_t handle)
{
	put32(out, ATTACH_NBD_REPLY_MAGIC);
	put32(out + 4, error);
	put32(out + 8, (uint32_t)(handle >> 32));
	put32(out + 12, (uint32_t)handle);
}

uint32_t
attach_nbd_err_from_errno(int rc)
{
	switch (rc) {
	case 0: return 0;
	case -EROFS:
	case -EACCES:
	case -EPERM: return ATTACH_NBD_EPERM;
	case -EINVAL: return ATTACH_NBD_EINVAL;
	case -ENOSPC: return ATTACH_NBD_ENOSPC;
	case -ENOMEM: return ATTACH_NBD_ENOMEM;
	case -EOPNOTSUPP: return ATTACH_NBD_ENOTSUP;
	case -ESHUTDOWN: return ATTACH_NBD_ESHUTDOWN;
	default: return ATTACH_NBD_EIO;
	}
}
