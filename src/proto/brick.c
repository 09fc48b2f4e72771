/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Brick protocol helpers (see proto.h): serialisation of the little-endian
 * wire structs of include/nvlend/spec/brick.h, stateless validation, and the
 * single errno <-> status mapping. Linked into both nvlendd and libnvlend.
 * Pure functions; thread-safe.
 */
#include "proto/brick.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

void
brick_proto_hdr_encode(const struct nvl_brick_hdr *h, void *wire)
{
	uint8_t *p = wire;

	brick_st32(p + 0, h->magic);
	p[4] = h->version;
	p[5] = h->opcode;
	brick_st16(p + 6, h->flags);
	brick_st32(p + 8, h->status);
	brick_st32(p + 12, h->data_len);
	brick_st64(p + 16, h->req_id);
	brick_st64(p + 24, h->key);
	brick_st64(p + 32, h->addr);
	brick_st64(p + 40, h->offset);
	brick_st64(p + 48, h->length);
	brick_st32(p + 56, h->arg);
	brick_st32(p + 60, h->rsvd);
}

void
brick_proto_hdr_decode(const void *wire, struct nvl_brick_hdr *h)
{
	const uint8_t *p = wire;

	h->magic = brick_ld32(p + 0);
	h->version = p[4];
	h->opcode = p[5];
	h->flags = brick_ld16(p + 6);
	h->status = brick_ld32(p + 8);
	h->data_len = brick_ld32(p + 12);
	h->req_id = brick_ld64(p + 16);
	h->key = brick_ld64(p + 24);
	h->addr = brick_ld64(p + 32);
	h->offset = brick_ld64(p + 40);
	h->length = brick_ld64(p + 48);
	h->arg = brick_ld32(p + 56);
	h->rsvd = brick_ld32(p + 60);
}

#define BLK_MASK ((uint64_t)NVL_BRICK_BLOCK_SIZE - 1)
#define HELLO_MIN (sizeof(struct nvl_brick_hello) + 1)
#define HELLO_MAX BRICK_PROTO_HELLO_MAX

bool
brick_proto_payload_ok(const struct nvl_brick_hdr *h)
{
	return h->data_len <= NVL_BRICK_MAX_DATA;
}

/* Range inside one block: offset < 2 MiB, 1 <= length <= 2 MiB - offset. */
static bool
range_ok(uint64_t offset, uint64_t length)
{
	return offset < NVL_BRICK_BLOCK_SIZE && length >= 1 &&
	       length <= NVL_BRICK_BLOCK_SIZE - offset;
}

static bool
map_flags_ok(uint32_t f)
{
	uint32_t acc = f & (NVL_BRICK_MAP_RO | NVL_BRICK_MAP_RW);
	uint32_t shr = f & (NVL_BRICK_MAP_SHARED | NVL_BRICK_MAP_EXCL);

	if (f & ~NVL_BRICK_MAP_VALID)
		return false;
	if (acc != NVL_BRICK_MAP_RO && acc != NVL_BRICK_MAP_RW)
		return false;
	return shr != (NVL_BRICK_MAP_SHARED | NVL_BRICK_MAP_EXCL);
}

int
brick_proto_check_req(const struct nvl_brick_hdr *h, uint8_t version)
{
	bool only_addr;

	if (h->magic != NVL_BRICK_MAGIC || h->flags != 0 || h->status != 0 || h->rsvd != 0)
		return -EPROTO;
	if (h->opcode == 0 || h->opcode > NVL_BRICK_OP_MAX)
		return -EOPNOTSUPP;
	if (h->opcode != NVL_BRICK_OP_HELLO && h->version != version)
		return -EPROTO;
	switch (h->opcode) {
	case NVL_BRICK_OP_HELLO:
		if (h->data_len < HELLO_MIN || h->data_len > HELLO_MAX)
			return -EINVAL;
		if (h->key | h->addr | h->offset | h->length | h->arg)
			return -EINVAL;
		return 0;
	case NVL_BRICK_OP_INFO:
	case NVL_BRICK_OP_FLUSH_ALL:
		if (h->data_len || h->key | h->addr | h->offset | h->length | h->arg)
			return -EINVAL;
		return 0;
	case NVL_BRICK_OP_ALLOC:
	case NVL_BRICK_OP_FREE:
	case NVL_BRICK_OP_UNMAP:
	case NVL_BRICK_OP_KEY:
		only_addr = !(h->key | h->offset | h->length | h->arg);
		if (!only_addr || (h->addr & BLK_MASK))
			return -EINVAL;
		/* FREE may carry the block key; ALLOC and UNMAP carry nothing */
		if (h->data_len && !(h->opcode == NVL_BRICK_OP_FREE &&
				     h->data_len == NVL_BRICK_KEY_SIZE))
			return -EINVAL;
		return 0;
	case NVL_BRICK_OP_MAP:
		if ((h->data_len && h->data_len != NVL_BRICK_KEY_SIZE) ||
		    h->key | h->offset | h->length || (h->addr & BLK_MASK))
			return -EINVAL;
		return map_flags_ok(h->arg) ? 0 : -EINVAL;
	case NVL_BRICK_OP_LIST:
		if (h->data_len || h->key | h->offset | h->length || (h->addr & BLK_MASK) ||
		    h->arg > NVL_BRICK_LIST_MAX)
			return -EINVAL;
		return 0;
	case NVL_BRICK_OP_READ:
	case NVL_BRICK_OP_WRITE:
		if ((h->addr & BLK_MASK) || h->arg || !range_ok(h->offset, h->length))
			return -EINVAL;
		if (h->opcode == NVL_BRICK_OP_READ ? h->data_len != 0 : h->data_len != h->length)
			return -EINVAL;
		return 0;
	case NVL_BRICK_OP_FLUSH:
		/* length 0 = up to the end of the block */
		if (h->data_len || h->arg || (h->addr & BLK_MASK) ||
		    h->offset >= NVL_BRICK_BLOCK_SIZE ||
		    h->length > NVL_BRICK_BLOCK_SIZE - h->offset)
			return -EINVAL;
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

int
brick_proto_check_resp(const struct nvl_brick_hdr *r, const struct nvl_brick_hdr *req)
{
	uint32_t want = 0;

	if (r->magic != NVL_BRICK_MAGIC || !(r->flags & NVL_BRICK_HF_RESPONSE) ||
	    (r->flags & ~NVL_BRICK_HF_VALID) || r->rsvd != 0)
		return -EPROTO;
	if (r->req_id != req->req_id || r->opcode != req->opcode)
		return -EPROTO;
	if ((r->flags & NVL_BRICK_HF_FD) && r->opcode != NVL_BRICK_OP_MAP)
		return -EPROTO;
	if ((r->flags & NVL_BRICK_HF_MORE) && r->opcode != NVL_BRICK_OP_LIST)
		return -EPROTO;
	if (r->status != NVL_BRICK_S_OK)
		return r->data_len == 0 && !(r->flags & NVL_BRICK_HF_FD) ? 0 : -EPROTO;
	switch (r->opcode) {
	case NVL_BRICK_OP_HELLO:
	case NVL_BRICK_OP_INFO:
		want = sizeof(struct nvl_brick_info_wire);
		break;
	case NVL_BRICK_OP_READ:
		want = (uint32_t)req->length;
		break;
	case NVL_BRICK_OP_LIST: {
		uint32_t max = req->arg ? req->arg : NVL_BRICK_LIST_MAX;

		if (r->arg > max)
			return -EPROTO;
		want = r->arg * (uint32_t)sizeof(struct nvl_brick_extent);
		break;
	}
	case NVL_BRICK_OP_MAP:
		if (r->addr != req->addr || r->length != NVL_BRICK_BLOCK_SIZE || r->key == 0)
			return -EPROTO;
		want = NVL_BRICK_KEY_SIZE; /* the block key */
		if (r->data_len == NVL_BRICK_KEY_SIZE + NVL_BRICK_RDMA_HANDLE_SIZE)
			want = r->data_len; /* + the RDMA handle (the client checks its transport) */
		break;
	case NVL_BRICK_OP_ALLOC:
	case NVL_BRICK_OP_KEY:
		want = NVL_BRICK_KEY_SIZE;
		break;
	default:
		break;
	}
	return r->data_len == want ? 0 : -EPROTO;
}

uint32_t
brick_proto_status_from_errno(int rc)
{
	switch (rc) {
	case 0: return NVL_BRICK_S_OK;
	case -EINVAL: return NVL_BRICK_S_INVAL;
	case -ENOENT: return NVL_BRICK_S_NOENT;
	case -EEXIST: return NVL_BRICK_S_EXIST;
	case -ENOSPC: return NVL_BRICK_S_NOSPC;
	case -EACCES: return NVL_BRICK_S_ACCES;
	case -EROFS: return NVL_BRICK_S_ROFS;
	case -EBUSY: return NVL_BRICK_S_BUSY;
	case -ENOMEM: return NVL_BRICK_S_NOMEM;
	case -EIO: return NVL_BRICK_S_IO;
	case -EPROTO: return NVL_BRICK_S_PROTO;
	case -EOPNOTSUPP: return NVL_BRICK_S_NOTSUP;
	case -EPROTONOSUPPORT: return NVL_BRICK_S_VERSION;
	case -ENXIO: return NVL_BRICK_S_NOTMAPPED;
	default: return NVL_BRICK_S_INTERNAL;
	}
}

int
brick_proto_errno_from_status(uint32_t status)
{
	switch (status) {
	case NVL_BRICK_S_OK: return 0;
	case NVL_BRICK_S_INVAL: return -EINVAL;
	case NVL_BRICK_S_NOENT: return -ENOENT;
	case NVL_BRICK_S_EXIST: return -EEXIST;
	case NVL_BRICK_S_NOSPC: return -ENOSPC;
	case NVL_BRICK_S_ACCES: return -EACCES;
	case NVL_BRICK_S_ROFS: return -EROFS;
	case NVL_BRICK_S_BUSY: return -EBUSY;
	case NVL_BRICK_S_NOMEM: return -ENOMEM;
	case NVL_BRICK_S_IO: return -EIO;
	case NVL_BRICK_S_PROTO: return -EPROTO;
	case NVL_BRICK_S_NOTSUP: return -EOPNOTSUPP;
	case NVL_BRICK_S_VERSION: return -EPROTONOSUPPORT;
	case NVL_BRICK_S_NOTMAPPED: return -ENXIO;
	default: return -EREMOTEIO;
	}
}

static bool
printable(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '/')
			return false;
	return true;
}

size_t
brick_proto_hello_encode_id(const char *name, const struct brick_proto_client *cl, void *buf,
			    size_t len)
{
	size_t n = strlen(name), cn = cl ? strlen(cl->name) : 0;
	size_t clen = cl && cl->has_id ? NVL_BRICK_ID_SIZE + cn : 0;
	uint8_t *p = buf;

	if (n == 0 || n > NVL_BRICK_NAME_MAX || cn > NVL_BRICK_CLIENT_MAX ||
	    len < sizeof(struct nvl_brick_hello) + n + clen)
		return 0;
	memset(p, 0, sizeof(struct nvl_brick_hello));
	p[0] = NVL_BRICK_VERSION_MIN;
	p[1] = NVL_BRICK_VERSION_MAX;
	brick_st32(p + 4, 0);
	brick_st32(p + 8, (uint32_t)n);
	brick_st32(p + 12, (uint32_t)clen);
	p += sizeof(struct nvl_brick_hello);
	memcpy(p, name, n);
	if (clen) {
		memcpy(p + n, cl->secret, NVL_BRICK_ID_SIZE);
		memcpy(p + n + NVL_BRICK_ID_SIZE, cl->name, cn);
	}
	return sizeof(struct nvl_brick_hello) + n + clen;
}

size_t
brick_proto_hello_encode(const char *name, void *buf, size_t len)
{
	return brick_proto_hello_encode_id(name, NULL, buf, len);
}

int
brick_proto_hello_decode(const void *buf, size_t len, uint8_t *version, char *name,
			 struct brick_proto_client *cl)
{
	const uint8_t *p = buf;
	uint8_t vmin, vmax;
	uint32_t n, clen;

	if (len < HELLO_MIN || len > HELLO_MAX)
		return -EINVAL;
	vmin = p[0];
	vmax = p[1];
	/* versions first: a version 1 client hears "version", not "malformed" */
	if (vmin > vmax || vmin > NVL_BRICK_VERSION_MAX || vmax < NVL_BRICK_VERSION_MIN)
		return -EPROTONOSUPPORT;
	n = brick_ld32(p + 8);
	clen = brick_ld32(p + 12);
	if (brick_ld16(p + 2) || n == 0 || n > NVL_BRICK_NAME_MAX ||
	    (clen != 0 && (clen < NVL_BRICK_ID_SIZE ||
			   clen > NVL_BRICK_ID_SIZE + NVL_BRICK_CLIENT_MAX)) ||
	    (size_t)n + clen != len - sizeof(struct nvl_brick_hello))
		return -EINVAL;
	p += sizeof(struct nvl_brick_hello);
	if (!printable(p, n) || (clen && !printable(p + n + NVL_BRICK_ID_SIZE,
						    clen - NVL_BRICK_ID_SIZE)))
		return -EINVAL;
	*version = vmax < NVL_BRICK_VERSION_MAX ? vmax : NVL_BRICK_VERSION_MAX;
	memcpy(name, p, n);
	name[n] = '\0';
	if (cl) {
		memset(cl, 0, sizeof(*cl));
		cl->has_id = clen != 0;
		if (clen) {
			memcpy(cl->secret, p + n, NVL_BRICK_ID_SIZE);
			memcpy(cl->name, p + n + NVL_BRICK_ID_SIZE, clen - NVL_BRICK_ID_SIZE);
		}
	}
	return 0;
}

void
brick_proto_info_encode(const struct nvl_brick_info_wire *in, void *wire)
{
	uint8_t *p = wire;

	memset(p, 0, sizeof(*in));
	brick_st32(p + 0, in->version);
	brick_st32(p + 4, in->features);
	brick_st64(p + 8, in->block_size);
	brick_st64(p + 16, in->capacity_blocks);
	brick_st64(p + 24, in->fast_blocks);
	brick_st64(p + 32, in->allocated_blocks);
	brick_st64(p + 40, in->mapped_blocks);
	brick_st64(p + 48, in->fast_tier_blocks);
	brick_st64(p + 56, in->slow_tier_blocks);
	brick_st32(p + 64, in->persistence);
	brick_st32(p + 68, in->flags);
}

void
brick_proto_info_decode(const void *wire, struct nvl_brick_info_wire *out)
{
	const uint8_t *p = wire;

	memset(out, 0, sizeof(*out));
	out->version = brick_ld32(p + 0);
	out->features = brick_ld32(p + 4);
	out->block_size = brick_ld64(p + 8);
	out->capacity_blocks = brick_ld64(p + 16);
	out->fast_blocks = brick_ld64(p + 24);
	out->allocated_blocks = brick_ld64(p + 32);
	out->mapped_blocks = brick_ld64(p + 40);
	out->fast_tier_blocks = brick_ld64(p + 48);
	out->slow_tier_blocks = brick_ld64(p + 56);
	out->persistence = brick_ld32(p + 64);
	out->flags = brick_ld32(p + 68);
}

void
brick_proto_extent_encode(const struct nvl_brick_extent *in, void *wire)
{
	uint8_t *p = wire;

	brick_st64(p + 0, in->addr);
	brick_st64(p + 8, in->length);
	brick_st32(p + 16, in->state);
	brick_st32(p + 20, 0);
}

void
brick_proto_extent_decode(const void *wire, struct nvl_brick_extent *out)
{
	const uint8_t *p = wire;

	out->addr = brick_ld64(p + 0);
	out->length = brick_ld64(p + 8);
	out->state = brick_ld32(p + 16);
	out->rsvd = brick_ld32(p + 20);
}

const char *
brick_proto_opc_name(uint8_t opc)
{
	static const char *const names[] = {
		[NVL_BRICK_OP_HELLO] = "HELLO", [NVL_BRICK_OP_INFO] = "INFO",
		[NVL_BRICK_OP_ALLOC] = "ALLOC", [NVL_BRICK_OP_FREE] = "FREE",
		[NVL_BRICK_OP_MAP] = "MAP",     [NVL_BRICK_OP_UNMAP] = "UNMAP",
		[NVL_BRICK_OP_LIST] = "LIST",   [NVL_BRICK_OP_READ] = "READ",
		[NVL_BRICK_OP_WRITE] = "WRITE", [NVL_BRICK_OP_FLUSH] = "FLUSH",
		[NVL_BRICK_OP_FLUSH_ALL] = "FLUSH_ALL", [NVL_BRICK_OP_KEY] = "KEY",
	};

	return opc <= NVL_BRICK_OP_MAX && names[opc] ? names[opc] : "UNKNOWN";
}
