/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe in-band authentication, DH-HMAC-CHAP (NVMe Base 2.0 section 8.13,
 * TP 8006): what both sides of the wire compute and exchange, with no I/O and
 * no state machine (the target's is src/nvmf/auth.c; a host's would sit in
 * src/host).
 *
 *  - identifiers: hash functions (SHA-256/384/512) and DH groups (null,
 *    ffdhe2048 .. ffdhe8192 of RFC 7919), by number and by name;
 *  - secrets in the representation nvme-cli and the kernel use,
 *    "DHHC-1:NN:base64(key || crc32(key)):", NN the hash that transforms the
 *    key: Kt = HMAC-H(key, NQN || "NVMe-over-Fabrics") (00: no transform);
 *  - responses: R = HMAC-H(Kt, C' || S || T_ID || SC_C || role || NQN1 || 00h
 *    || NQN2), role "HostHost" (NQN1 = host) or "Controller" (NQN1 =
 *    subsystem), C' = C, or with a DH group the augmented challenge
 *    HMAC-H(H(g^xy mod p), C);
 *  - the finite field Diffie-Hellman exchange (OpenSSL's named groups);
 *  - encoders and bounds-checking decoders of the seven messages
 *    (include/nvlend/spec/nvme.h has their layouts).
 *
 * Every function is reentrant and may run on any thread. Buffers holding
 * secrets are wiped (OPENSSL_cleanse) before they are released.
 */
#ifndef NVL_PROTO_NVME_AUTH_H
#define NVL_PROTO_NVME_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvlend/spec/nvme.h"

#define NVL_DHCHAP_MAX_HASH 64          /* SHA-512 */
#define NVL_DHCHAP_MAX_DH 1024          /* ffdhe8192 public value / shared secret */
#define NVL_DHCHAP_MAX_MSG 4096         /* largest message accepted or produced */
#define NVL_DHCHAP_SECRET_MAX 128       /* "DHHC-1:03:" + base64(68 bytes) + ":" + NUL */

/* ---- identifiers -------------------------------------------------------- */

/** Digest length of a HashID: 32, 48, 64; 0 for an unknown id. */
size_t nvl_dhchap_hash_len(uint8_t hashid);
/** "sha256", "sha384", "sha512"; NULL for an unknown id. */
const char *nvl_dhchap_hash_name(uint8_t hashid);
/** HashID of a name (as above, case-insensitive). \return id, or -EINVAL. */
int nvl_dhchap_hash_id(const char *name);
/** Bytes of a DH group's prime (= public value and shared secret length):
 *  256 .. 1024; 0 for the null group and unknown ids. */
size_t nvl_dhchap_dhgroup_len(uint8_t dhgid);
/** "null", "ffdhe2048" .. "ffdhe8192"; NULL for an unknown id. */
const char *nvl_dhchap_dhgroup_name(uint8_t dhgid);
/** DHgID of a name (as above, case-insensitive). \return id, or -EINVAL. */
int nvl_dhchap_dhgroup_id(const char *name);

/* ---- secrets ------------------------------------------------------------ */

struct nvl_dhchap_key {
	uint8_t hmac;                   /**< transforming HashID, 0 = none */
	uint8_t len;                    /**< 32, 48 or 64 */
	uint8_t key[64];
};

/**
 * Parse "DHHC-1:NN:base64:" (the trailing ':' optional; leading and trailing
 * white space ignored). NN is 00..03; the base64 text decodes to 36, 52 or 68
 * bytes: the key and its CRC-32 (IEEE 802.3, little-endian).
 * \return 0, -EINVAL (not that form, bad NN, bad base64 or length),
 *         -EBADMSG (the CRC does not match).
 */
int nvl_dhchap_key_parse(const char *text, size_t len, struct nvl_dhchap_key *out);
/** Format k as "DHHC-1:NN:base64:" into buf. \return 0, -EINVAL, -ENOSPC. */
int nvl_dhchap_key_format(const struct nvl_dhchap_key *k, char *buf, size_t len);
/** A random key of len bytes (32/48/64) for transform hmac (0..3).
 *  \return 0, -EINVAL, -EIO (no randomness). */
int nvl_dhchap_key_generate(uint8_t hmac, uint8_t len, struct nvl_dhchap_key *out);
/** Wipe a key. */
void nvl_dhchap_key_wipe(struct nvl_dhchap_key *k);
/**
 * The transformed key Kt for NQN (the host NQN for a host key, the subsystem
 * NQN for a controller key): HMAC-H(key, NQN || "NVMe-over-Fabrics") with H
 * the key's transform hash, or the key itself when it has none.
 * out holds at least NVL_DHCHAP_MAX_HASH bytes; *out_len gets the length.
 * \return 0, -EINVAL (unknown transform), -EIO (OpenSSL failed).
 */
int nvl_dhchap_key_transform(const struct nvl_dhchap_key *k, const char *nqn, uint8_t *out,
			     size_t *out_len);

/* ---- responses ---------------------------------------------------------- */

/**
 * The augmented challenge of a DH exchange: HMAC-H(H(sess), chal), H the
 * negotiated hash, chal and out hash_len(hashid) bytes.
 * \return 0, -EINVAL (unknown hash), -EIO.
 */
int nvl_dhchap_augment(uint8_t hashid, const uint8_t *sess, size_t sess_len, const uint8_t *chal,
		       uint8_t *out);

/**
 * A DH-HMAC-CHAP response with the negotiated hash hashid:
 *   controller == false (R1, the host proves itself):
 *     HMAC-H(tkey, C' || le32(seqnum) || le16(tid) || sc_c || "HostHost" ||
 *            hostnqn || 00h || subnqn)
 *   controller == true (R2, the controller proves itself):
 *     HMAC-H(tkey, C' || le32(seqnum) || le16(tid) || sc_c || "Controller" ||
 *            subnqn || 00h || hostnqn)
 * C' is chal (hash_len bytes), augmented with sess when sess_len > 0.
 * tkey is the transformed key of the side that proves (host key / controller
 * key). out gets hash_len(hashid) bytes.
 * \return 0, -EINVAL (unknown hash, empty key), -EIO.
 */
int nvl_dhchap_response(uint8_t hashid, const uint8_t *tkey, size_t tkey_len, const uint8_t *chal,
			const uint8_t *sess, size_t sess_len, uint32_t seqnum, uint16_t tid,
			uint8_t sc_c, bool controller, const char *hostnqn, const char *subnqn,
			uint8_t *out);

/** Constant-time comparison of len bytes. */
bool nvl_dhchap_equal(const void *a, const void *b, size_t len);
/** Cryptographic randomness. \return 0, -EIO. */
int nvl_dhchap_random(void *buf, size_t len);

/* ---- finite field Diffie-Hellman (RFC 7919 groups) ----------------------- */

struct nvl_dhchap_dh;

/** Generate a key pair in group dhgid (not the null group).
 *  \return 0, -EINVAL (null or unknown group), -ENOMEM, -EIO. */
int nvl_dhchap_dh_create(uint8_t dhgid, struct nvl_dhchap_dh **out);
/** The public value g^x mod p, big-endian, left-padded to the prime's length;
 *  len must be nvl_dhchap_dhgroup_len(). \return 0, -EINVAL, -EIO. */
int nvl_dhchap_dh_public(const struct nvl_dhchap_dh *dh, uint8_t *out, size_t len);
/**
 * The shared secret peer^x mod p, left-padded to the prime's length (len).
 * The peer's value must be exactly that long and 1 < y < p-1.
 * \return 0, -EINVAL (bad length or value), -ENOMEM, -EIO.
 */
int nvl_dhchap_dh_derive(const struct nvl_dhchap_dh *dh, const uint8_t *peer, size_t peer_len,
			 uint8_t *out, size_t len);
/** Free a key pair (NULL ignored); the private value is wiped by OpenSSL. */
void nvl_dhchap_dh_destroy(struct nvl_dhchap_dh *dh);

/* ---- messages ----------------------------------------------------------- */

/** The common header of a message. \return 0, -EBADMSG (shorter than it). */
int nvl_dhchap_hdr_decode(const void *buf, size_t len, struct nvl_nvmf_auth_hdr *out);

struct nvl_dhchap_negotiate_info {
	uint16_t tid;
	uint8_t sc_c;
	bool dhchap;                    /**< a DH-HMAC-CHAP descriptor is present */
	uint8_t nhash, ndh;
	uint8_t hashids[NVL_NVMF_AUTH_MAX_IDS];
	uint8_t dhgids[NVL_NVMF_AUTH_MAX_IDS];
};

/** AUTH_Negotiate: exactly 8 + 64 * NAPD bytes (NAPD >= 1), HALEN/DHLEN <= 30
 *  in the DH-HMAC-CHAP descriptor. \return 0, -EBADMSG. */
int nvl_dhchap_negotiate_decode(const void *buf, size_t len,
				struct nvl_dhchap_negotiate_info *out);
/** Encode AUTH_Negotiate with one DH-HMAC-CHAP descriptor.
 *  \return bytes written, -EINVAL (more than 30 ids), -ENOSPC. */
int nvl_dhchap_negotiate_encode(void *buf, size_t cap, uint16_t tid, const uint8_t *hashids,
				unsigned nhash, const uint8_t *dhgids, unsigned ndh);

struct nvl_dhchap_challenge_info {
	uint16_t tid;
	uint8_t hashid, dhgid, hl;
	uint32_t seqnum;
	const uint8_t *c1;              /**< hl bytes, inside buf */
	const uint8_t *dhv;             /**< dhvlen bytes, inside buf (NULL if none) */
	uint16_t dhvlen;
};

/** Encode DH-HMAC-CHAP_Challenge. \return bytes, -EINVAL, -ENOSPC. */
int nvl_dhchap_challenge_encode(void *buf, size_t cap, uint16_t tid, uint8_t hashid,
				uint8_t dhgid, uint32_t seqnum, const uint8_t *c1,
				const uint8_t *dhv, size_t dhvlen);
/** Decode a challenge (buf may be longer than the message: AL padding).
 *  HL must match the hash, DHVLEN the group (0 for null).
 *  \return 0, -EBADMSG, -EPROTO (not a challenge: header in *out is valid). */
int nvl_dhchap_challenge_decode(const void *buf, size_t len,
				struct nvl_dhchap_challenge_info *out);

struct nvl_dhchap_reply_info {
	uint16_t tid;
	uint8_t hl;
	bool cvalid;
	uint32_t seqnum;
	const uint8_t *r1;              /**< hl bytes */
	const uint8_t *c2;              /**< hl bytes (meaningful if cvalid) */
	const uint8_t *dhv;             /**< dhvlen bytes (NULL if none) */
	uint16_t dhvlen;
};

/** Encode DH-HMAC-CHAP_Reply (c2 NULL: no controller authentication asked,
 *  seqnum should be 0). \return bytes, -EINVAL, -ENOSPC. */
int nvl_dhchap_reply_encode(void *buf, size_t cap, uint16_t tid, uint8_t hl, const uint8_t *r1,
			    const uint8_t *c2, uint32_t seqnum, const uint8_t *dhv, size_t dhvlen);
/** Decode a reply: exactly 16 + 2*HL + DHVLEN bytes, HL == hl, CVALID 0 or 1.
 *  \return 0, -EBADMSG. */
int nvl_dhchap_reply_decode(const void *buf, size_t len, uint8_t hl,
			    struct nvl_dhchap_reply_info *out);

struct nvl_dhchap_success1_info {
	uint16_t tid;
	uint8_t hl;
	bool rvalid;
	const uint8_t *r2;              /**< hl bytes if rvalid */
};

/** Encode DH-HMAC-CHAP_Success1 (r2 NULL: RVALID 0; HL is set either way,
 *  as the Linux host checks it). \return bytes, -EINVAL, -ENOSPC. */
int nvl_dhchap_success1_encode(void *buf, size_t cap, uint16_t tid, uint8_t hl,
			       const uint8_t *r2);
/** \return 0, -EBADMSG, -EPROTO (not a Success1; header valid). */
int nvl_dhchap_success1_decode(const void *buf, size_t len, uint8_t hl,
			       struct nvl_dhchap_success1_info *out);

/** Encode DH-HMAC-CHAP_Success2. \return 16, -ENOSPC. */
int nvl_dhchap_success2_encode(void *buf, size_t cap, uint16_t tid);
/** Decode Success2: exactly 16 bytes. \return 0, -EBADMSG. */
int nvl_dhchap_success2_decode(const void *buf, size_t len, uint16_t *tid);

/** Encode AUTH_Failure1 (failure1 true) or AUTH_Failure2 with explanation rce.
 *  \return 8, -ENOSPC. */
int nvl_dhchap_failure_encode(void *buf, size_t cap, bool failure1, uint16_t tid, uint8_t rce);
/** Decode a failure message (at least 8 bytes). \return 0, -EBADMSG. */
int nvl_dhchap_failure_decode(const void *buf, size_t len, uint16_t *tid, uint8_t *rce);

#endif
