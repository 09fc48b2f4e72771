/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The lending peer protocol (docs/lending.md, "Peer protocol"): JSON lines
 * over TCP between nvlendd nodes, every request and every answer
 * authenticated with HMAC-SHA256 under the cluster key.
 *
 *   server -> client  {"nvlend_peer":1,"node":N,"node_id":U,"nonce":S}
 *   client -> server  {"node":N,"node_id":U,"nonce":C,"mac":M,"body":B}
 *                     M = HMAC(key, "nvlend-peer-v1 req\n" S "\n" C "\n" U "\n" B)
 *   server -> client  {"mac":M,"body":B}
 *                     M = HMAC(key, "nvlend-peer-v1 resp\n" C "\n" S "\n" B)
 *                  or {"error":TEXT} (unauthenticated refusal), then close.
 *
 * One request per connection. The server's nonce makes every request MAC
 * unique to its connection (no replay); the client's nonce does the same
 * for the answer. B is a JSON object carried as a string, so the MAC covers
 * the exact bytes that are parsed. Every parser here takes untrusted bytes
 * and is bounded: lines of at most NVL_LEND_LINE_MAX bytes, names of at
 * most 63 characters of [A-Za-z0-9._-], fixed-size hex fields. The fuzz
 * target tests/fuzz/lend_peer drives every one of them.
 *
 * No I/O and no global state here: lend_peer.c does the sockets.
 */
#ifndef NVL_LEND_PROTO_H
#define NVL_LEND_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NVL_LEND_PROTO_VERSION 1
#define NVL_LEND_LINE_MAX 65536      /**< bytes of one line, newline included */
#define NVL_LEND_NAME_MAX 64         /**< node names: 1..63 chars + NUL */
#define NVL_LEND_NONCE_HEX 32        /**< 128-bit nonces */
#define NVL_LEND_MAC_HEX 64          /**< HMAC-SHA256 */
#define NVL_LEND_UUID_LEN 37         /**< text UUID + NUL */
#define NVL_LEND_KEY_MIN 32          /**< bytes of key material, at least */
#define NVL_LEND_KEY_MAX 1024

struct nvl_lend_key {
	uint8_t bytes[NVL_LEND_KEY_MAX];
	size_t len;
};

/** The server's first line. */
struct nvl_lend_greeting {
	char node[NVL_LEND_NAME_MAX];
	char node_id[NVL_LEND_UUID_LEN];
	char nonce[NVL_LEND_NONCE_HEX + 1];
};

/** A client's request envelope (body still unparsed, owned by the caller's line buffer). */
struct nvl_lend_request {
	char node[NVL_LEND_NAME_MAX];
	char node_id[NVL_LEND_UUID_LEN];
	char nonce[NVL_LEND_NONCE_HEX + 1];
	char mac[NVL_LEND_MAC_HEX + 1];
	json_t *body;                /**< the parsed body object (a new reference) */
	char *body_text;             /**< malloc'ed copy of B */
};

/**
 * Load the cluster key: a regular file owned by this user (or root) with
 * no group or other permission bits, holding at least NVL_LEND_KEY_MIN
 * bytes (trailing whitespace ignored).
 * \return 0; -ENOENT; -EPERM (group/other may read it, or another user
 *         owns it; *why says which); -EINVAL (not a regular file, too
 *         short or too long); -errno.
 */
int nvl_lend_key_load(const char *path, struct nvl_lend_key *key, const char **why);

/**
 * The DH-HMAC-CHAP secrets of one borrow, as "DHHC-1:00:...:" texts
 * (NVL_DHCHAP_SECRET_MAX bytes each): the host's (role "host") and the
 * controller's (role "ctrl"), each HMAC-SHA256 under the cluster key of
 * ("nvlend lend dhchap " role, 0, nqn, 0, hostnqn, 0, lease). Lender and
 * borrower compute them apart, so no secret crosses the wire; a new lease
 * gives new secrets. \return 0, -EINVAL (empty key or field), -EIO.
 */
int nvl_lend_dhchap_secret(const struct nvl_lend_key *key, const char *role, const char *nqn,
			   const char *hostnqn, const char *lease, char *out, size_t outlen);

/** Is s a valid node name (1..63 of [A-Za-z0-9._-], not starting with '-' or '.')? */
bool nvl_lend_name_valid(const char *s);
/** Is s a text UUID (8-4-4-4-12 hex)? */
bool nvl_lend_uuid_valid(const char *s);
/** Is s exactly n lower-case hex digits? */
bool nvl_lend_hex_valid(const char *s, size_t n);

/** Fill out (n hex digits + NUL) with random bytes. \return 0 or -errno. */
int nvl_lend_random_hex(char *out, size_t n);

/**
 * The greeting line (with newline) into a malloc'ed string.
 * \return NULL on ENOMEM.
 */
char *nvl_lend_greeting_encode(const struct nvl_lend_greeting *g);
/** Parse a greeting line. \return 0, -EINVAL (malformed, wrong version), -EPROTO (not JSON). */
int nvl_lend_greeting_decode(const char *line, size_t len, struct nvl_lend_greeting *g);

/**
 * Encode a request: body (an object, borrowed) signed for the server's
 * nonce. me_* identify this node; cnonce is this request's client nonce.
 * \return a malloc'ed line with newline, NULL on ENOMEM or a bad argument.
 */
char *nvl_lend_request_encode(const struct nvl_lend_key *key, const char *snonce,
			      const char *me_node, const char *me_id, const char *cnonce,
			      const json_t *body);
/**
 * Parse and authenticate a request line against the nonce this server
 * sent. On success r->body and r->body_text must be released with
 * nvl_lend_request_fini().
 * \return 0; -EPROTO (not JSON / not an object); -EINVAL (a field is
 *         missing, of the wrong type or out of bounds); -EACCES (the MAC
 *         does not verify: not an allowed peer).
 */
int nvl_lend_request_decode(const struct nvl_lend_key *key, const char *snonce, const char *line,
			    size_t len, struct nvl_lend_request *r);
void nvl_lend_request_fini(struct nvl_lend_request *r);

/** Encode an answer (body borrowed) for the client's nonce. \return malloc'ed line or NULL. */
char *nvl_lend_response_encode(const struct nvl_lend_key *key, const char *cnonce,
			       const char *snonce, const json_t *body);
/**
 * Parse and authenticate an answer. *body gets a new reference.
 * \return 0; -EPROTO; -EINVAL; -EACCES (bad MAC); -ECONNREFUSED (the server
 *         refused us: its {"error"} text in errbuf).
 */
int nvl_lend_response_decode(const struct nvl_lend_key *key, const char *cnonce,
			     const char *snonce, const char *line, size_t len, json_t **body,
			     char *errbuf, size_t errlen);

/** The unauthenticated refusal line (with newline), malloc'ed. */
char *nvl_lend_refusal_encode(const char *text);

/*
 * Bodies. A request body is {"op": OP, ...}; decode it with
 * nvl_lend_body_decode into a struct whose fields are checked here, so the
 * service sees only values within bounds.
 */
enum nvl_lend_op {
	NVL_LEND_OP_HELLO = 1,  /**< addr, port: "I am here" (connect) */
	NVL_LEND_OP_LIST,       /**< the offers */
	NVL_LEND_OP_BORROW,     /**< id, hostnqn */
	NVL_LEND_OP_RENEW,      /**< id, lease */
	NVL_LEND_OP_RETURN,     /**< id, lease */
	NVL_LEND_OP_REVOKED,    /**< id, lease, reason (lender -> borrower) */
};

struct nvl_lend_body {
	enum nvl_lend_op op;
	uint32_t id;                       /**< lend id */
	char lease[NVL_LEND_NONCE_HEX + 1];
	char hostnqn[224];
	char addr[64];                     /**< hello: the sender's peer address */
	uint16_t port;                     /**< hello: the sender's peer port */
	char reason[128];
};

/** \return 0; -EINVAL (unknown op, missing or bad field: err says which). */
int nvl_lend_body_decode(const json_t *body, struct nvl_lend_body *b, char *err, size_t errlen);
/** Name of an op ("borrow"); NULL for an unknown value. */
const char *nvl_lend_op_name(enum nvl_lend_op op);

#endif
