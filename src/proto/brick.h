/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Brick protocol helpers shared by the daemon (src/brick/server.c) and the
 * client library (src/brick/client.c): header (de)serialisation, the
 * stateless validation of requests and responses, and the one errno <->
 * wire-status conversion. Pure functions, no state, any thread.
 */
#ifndef NVL_PROTO_BRICK_H
#define NVL_PROTO_BRICK_H

#include "nvlend/spec/brick.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <endian.h>
#include <string.h>
#include <sys/mman.h>

/* Both ends map a fast-tier block MAP_SHARED_VALIDATE | MAP_SYNC when the
 * file is on DAX (the persistence contract, docs/brick.md); older C
 * libraries lack the names, the kernel ABI values are fixed. */
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

/* Little-endian field access for the brick's wire and on-disk formats. */
static inline uint16_t
brick_ld16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static inline uint32_t
brick_ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint64_t
brick_ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline void
brick_st16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static inline void
brick_st32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline void
brick_st64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

/** Serialise a header (host order) into 64 wire bytes. */
void brick_proto_hdr_encode(const struct nvl_brick_hdr *h, void *wire);
/** Parse 64 wire bytes into a host-order header (no validation). */
void brick_proto_hdr_decode(const void *wire, struct nvl_brick_hdr *h);

/**
 * Stateless checks of a request header: magic, version, flags, reserved
 * fields, opcode, address alignment, offset/length inside one block, and the
 * payload length each opcode allows.
 * \return 0; -EPROTO (magic, version, flags, reserved), -EOPNOTSUPP (opcode),
 *         -EINVAL (alignment, range, payload length, map flags).
 */
int brick_proto_check_req(const struct nvl_brick_hdr *h, uint8_t version);

/** Payload bytes a request header announces that the server must consume
 *  even when it refuses the request (0 if data_len is not acceptable at all). */
bool brick_proto_payload_ok(const struct nvl_brick_hdr *h);

/**
 * Checks of a response header against the request it answers (client side):
 * magic, response flag, req_id, opcode, payload length allowed for the op.
 * \return 0 or -EPROTO.
 */
int brick_proto_check_resp(const struct nvl_brick_hdr *resp, const struct nvl_brick_hdr *req);

/** errno (0 or negative) -> wire status. */
uint32_t brick_proto_status_from_errno(int rc);
/** wire status -> 0 or negative errno. */
int brick_proto_errno_from_status(uint32_t status);

/** Largest HELLO payload (v2: brick name, identity secret, client name). */
#define BRICK_PROTO_HELLO_MAX                                                                      \
	(sizeof(struct nvl_brick_hello) + NVL_BRICK_NAME_MAX + NVL_BRICK_ID_SIZE +              \
	 NVL_BRICK_CLIENT_MAX)

/** A client's part of HELLO (v2). */
struct brick_proto_client {
	bool has_id;                              /**< false: anonymous (no secret) */
	uint8_t secret[NVL_BRICK_ID_SIZE];        /**< identity secret */
	char name[NVL_BRICK_CLIENT_MAX + 1];      /**< client name (label; may be empty) */
};

/** HELLO payload of an anonymous client. Serialise into buf (>= 16 + name_len).
 *  \return the payload length, 0 if the name or buf does not fit. */
size_t brick_proto_hello_encode(const char *name, void *buf, size_t len);
/** HELLO payload with the client's identity (cl NULL: anonymous).
 *  \return the payload length, 0 if a name or buf does not fit. */
size_t brick_proto_hello_encode_id(const char *name, const struct brick_proto_client *cl,
				   void *buf, size_t len);
/** Parse a HELLO payload: fills name (NUL-terminated, buffer of NAME_MAX+1) and,
 *  if cl is not NULL, the client's part.
 *  \return 0, -EINVAL (lengths, empty/odd names), -EPROTONOSUPPORT (versions:
 *  checked first, so a client of another version always gets this). */
int brick_proto_hello_decode(const void *buf, size_t len, uint8_t *version, char *name,
			     struct brick_proto_client *cl);

void brick_proto_info_encode(const struct nvl_brick_info_wire *in, void *wire);
void brick_proto_info_decode(const void *wire, struct nvl_brick_info_wire *out);

void brick_proto_extent_encode(const struct nvl_brick_extent *in, void *wire);
void brick_proto_extent_decode(const void *wire, struct nvl_brick_extent *out);

const char *brick_proto_opc_name(uint8_t opc);

#endif
