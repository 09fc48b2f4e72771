/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DH-HMAC-CHAP, host side (NVMe Base 2.0 section 8.13, TP 8006): one queue's
 * authentication transaction as a state machine that makes no I/O. Its
 * driver (the controller's set-up for the admin queue, host_tcp.c for an
 * NVMe/TCP I/O queue) asks for the next command, sends it with the buffer
 * this file filled or expects filled, and hands back the completion:
 *
 *   NEGOTIATE --Send AUTH_Negotiate--> CHALLENGE
 *   CHALLENGE --Receive: Challenge--> REPLY      (R1 computed, maybe C2/S2)
 *             --Receive: AUTH_Failure1--> FAILED
 *   REPLY --Send DH-HMAC-CHAP_Reply--> SUCCESS1
 *   SUCCESS1 --Receive: Success1--> DONE         (no controller key)
 *                               \-> SUCCESS2     (R2 correct)
 *                               \-> FAILURE2     (R2 wrong or missing)
 *            --Receive: AUTH_Failure1--> FAILED (the controller refused R1)
 *   SUCCESS2 --Send Success2--> DONE
 *   FAILURE2 --Send AUTH_Failure2--> FAILED
 *
 * The host offers SHA-256/384/512 and the null group and ffdhe2048 ..
 * ffdhe8192; the controller picks. With a controller key the host asks the
 * controller to prove itself (bidirectional) and fails the queue when it
 * does not. Secrets are wiped when the transaction ends.
 */
#include "host/host_internal.h"
#include "proto/nvme_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

enum hauth_state {
	HA_NEGOTIATE = 0,
	HA_CHALLENGE,
	HA_REPLY,
	HA_SUCCESS1,
	HA_SUCCESS2,
	HA_FAILURE2,
	HA_DONE,
	HA_FAILED,
};

struct host_auth {
	enum hauth_state state;
	uint16_t qid;
	uint16_t tid;
	uint8_t hashid, dhgid, hl;
	bool bidir;                     /* we ask the controller to prove itself */
	uint8_t hkey[NVL_DHCHAP_MAX_HASH];
	size_t hkey_len;
	uint8_t ckey[NVL_DHCHAP_MAX_HASH];
	size_t ckey_len;
	uint8_t c2[NVL_DHCHAP_MAX_HASH];
	uint32_t s2;
	uint8_t sess[NVL_DHCHAP_MAX_DH];
	size_t sess_len;
	/* the next message to send (REPLY, SUCCESS2, FAILURE2) */
	uint8_t out[NVL_DHCHAP_MAX_MSG];
	int out_len;
	char hostnqn[NVL_NVME_NQN_LEN];
	char subnqn[NVL_NVME_NQN_LEN];
	char err[HOST_ERR_LEN];
	int rc;                         /* HA_FAILED: what the driver returns */
};

static const uint8_t g_hashes[] = { NVL_NVMF_AUTH_HASH_SHA256, NVL_NVMF_AUTH_HASH_SHA384,
				    NVL_NVMF_AUTH_HASH_SHA512 };
static const uint8_t g_groups[] = { NVL_NVMF_AUTH_DHGROUP_NULL, NVL_NVMF_AUTH_DHGROUP_2048,
				    NVL_NVMF_AUTH_DHGROUP_3072, NVL_NVMF_AUTH_DHGROUP_4096,
				    NVL_NVMF_AUTH_DHGROUP_6144, NVL_NVMF_AUTH_DHGROUP_8192 };

static const char *
rce_str(uint8_t rce)
{
	switch (rce) {
	case NVL_NVMF_AUTH_RCE_FAILED: return "authentication failed (wrong key?)";
	case NVL_NVMF_AUTH_RCE_PROTOCOL_UNUSABLE: return "authentication protocol not usable";
	case NVL_NVMF_AUTH_RCE_SCC_MISMATCH: return "secure channel concatenation mismatch";
	case NVL_NVMF_AUTH_RCE_HASH_UNUSABLE: return "no hash function usable";
	case NVL_NVMF_AUTH_RCE_DHGROUP_UNUSABLE: return "no DH group usable";
	case NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD: return "incorrect payload";
	case NVL_NVMF_AUTH_RCE_INCORRECT_MESSAGE: return "incorrect message";
	default: return "unknown reason";
	}
}

static void
wipe_txn(struct host_auth *a)
{
	OPENSSL_cleanse(a->sess, sizeof(a->sess));
	OPENSSL_cleanse(a->c2, sizeof(a->c2));
	OPENSSL_cleanse(a->out, sizeof(a->out));
	a->sess_len = 0;
	a->out_len = 0;
}

static int
fail(struct host_auth *a, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
fail(struct host_auth *a, int rc, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(a->err, sizeof(a->err), "queue %u: DH-HMAC-CHAP: ", a->qid);

	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(a->err))
		vsnprintf(a->err + n, sizeof(a->err) - (size_t)n, fmt, ap);
	va_end(ap);
	wipe_txn(a);
	a->state = HA_FAILED;
	a->rc = rc;
	return rc;
}

int
host_auth_create(const struct nvl_dhchap_key *key, const struct nvl_dhchap_key *ckey,
		 const char *hostnqn, const char *subnqn, uint16_t qid, struct host_auth **out)
{
	struct host_auth *a;
	uint16_t tid;
	int rc;

	if (key == NULL || key->len == 0)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	a->qid = qid;
	if (nvl_strlcpy(a->hostnqn, hostnqn, sizeof(a->hostnqn)) < 0 ||
	    nvl_strlcpy(a->subnqn, subnqn, sizeof(a->subnqn)) < 0) {
		free(a);
		return -EINVAL;
	}
	rc = nvl_dhchap_key_transform(key, hostnqn, a->hkey, &a->hkey_len);
	if (rc == 0 && ckey && ckey->len) {
		rc = nvl_dhchap_key_transform(ckey, subnqn, a->ckey, &a->ckey_len);
		a->bidir = true;
	}
	if (rc == 0)
		rc = nvl_dhchap_random(&tid, sizeof(tid));
	if (rc < 0) {
		host_auth_destroy(a);
		return rc;
	}
	a->tid = tid;
	*out = a;
	return 0;
}

void
host_auth_destroy(struct host_auth *a)
{
	if (a == NULL)
		return;
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}

const char *
host_auth_error(const struct host_auth *a)
{
	return a->err;
}

const char *
host_auth_summary(const struct host_auth *a, char *buf, size_t len)
{
	snprintf(buf, len, "DH-HMAC-CHAP %s, %s%s", nvl_dhchap_hash_name(a->hashid),
		 nvl_dhchap_dhgroup_name(a->dhgid),
		 a->bidir ? ", the controller authenticated too" : "");
	return buf;
}

static void
auth_cmd(struct nvl_nvme_cmd *cmd, bool send, uint32_t len)
{
	struct nvl_nvmf_auth_cmd *ac = (struct nvl_nvmf_auth_cmd *)cmd;

	memset(cmd, 0, sizeof(*cmd));
	ac->opc = NVL_NVME_ADM_FABRICS;
	ac->fctype = send ? NVL_NVMF_FCTYPE_AUTH_SEND : NVL_NVMF_FCTYPE_AUTH_RECV;
	ac->secp = NVL_NVMF_AUTH_SECP;
	ac->spsp0 = NVL_NVMF_AUTH_SPSP;
	ac->spsp1 = NVL_NVMF_AUTH_SPSP;
	ac->al_tl = len;
}

int
host_auth_next(struct host_auth *a, struct nvl_nvme_cmd *cmd, uint8_t *buf, uint32_t cap,
	       uint32_t *len, uint8_t *dir)
{
	int n;

	switch (a->state) {
	case HA_NEGOTIATE:
		n = nvl_dhchap_negotiate_encode(buf, cap, a->tid, g_hashes, NVL_ARRAY_SIZE(g_hashes),
						g_groups, NVL_ARRAY_SIZE(g_groups));
		if (n < 0)
			return fail(a, n, "cannot encode AUTH_Negotiate");
		break;
	case HA_CHALLENGE:
	case HA_SUCCESS1:
		n = (int)NVL_MIN(cap, (uint32_t)NVL_DHCHAP_MAX_MSG);
		memset(buf, 0, (size_t)n);
		auth_cmd(cmd, false, (uint32_t)n);
		*len = (uint32_t)n;
		*dir = NVL_XFER_FROM_CTRLR;
		return 1;
	case HA_REPLY:
	case HA_SUCCESS2:
	case HA_FAILURE2:
		if ((uint32_t)a->out_len > cap)
			return fail(a, -ENOSPC, "message larger than the buffer");
		memcpy(buf, a->out, (size_t)a->out_len);
		n = a->out_len;
		break;
	case HA_DONE:
		return 0;
	case HA_FAILED:
	default:
		return a->rc ? a->rc : -EACCES;
	}
	auth_cmd(cmd, true, (uint32_t)n);
	*len = (uint32_t)n;
	*dir = NVL_XFER_TO_CTRLR;
	return 1;
}

/* A received message that is AUTH_Failure1: the controller's verdict. */
static int
on_failure1(struct host_auth *a, const uint8_t *buf, uint32_t len, const char *what)
{
	uint16_t tid;
	uint8_t rce;

	if (nvl_dhchap_failure_decode(buf, len, &tid, &rce) < 0)
		return fail(a, -EPROTO, "malformed AUTH_Failure1 instead of %s", what);
	return fail(a, rce == NVL_NVMF_AUTH_RCE_FAILED ? -EACCES : -EPROTO,
		    "the controller refused: %s", rce_str(rce));
}

static bool
is_failure1(const uint8_t *buf, uint32_t len)
{
	struct nvl_nvmf_auth_hdr h;

	return nvl_dhchap_hdr_decode(buf, len, &h) == 0 &&
	       h.auth_type == NVL_NVMF_AUTH_TYPE_COMMON && h.auth_id == NVL_NVMF_AUTH_ID_FAILURE1;
}

static bool
offered(const uint8_t *ids, size_t n, uint8_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

static int
on_challenge(struct host_auth *a, const uint8_t *buf, uint32_t len)
{
	struct nvl_dhchap_challenge_info ci;
	struct nvl_dhchap_dh *dh = NULL;
	uint8_t r1[NVL_DHCHAP_MAX_HASH], pub[NVL_DHCHAP_MAX_DH];
	size_t dl;
	int rc;

	if (is_failure1(buf, len))
		return on_failure1(a, buf, len, "a Challenge");
	rc = nvl_dhchap_challenge_decode(buf, len, &ci);
	if (rc == -EPROTO)
		return fail(a, -EPROTO, "the controller sent another message than a Challenge");
	if (rc < 0)
		return fail(a, -EPROTO, "malformed Challenge");
	if (ci.tid != a->tid)
		return fail(a, -EPROTO, "Challenge of another transaction (T_ID %u, ours %u)",
			    ci.tid, a->tid);
	if (!offered(g_hashes, NVL_ARRAY_SIZE(g_hashes), ci.hashid) ||
	    !offered(g_groups, NVL_ARRAY_SIZE(g_groups), ci.dhgid))
		return fail(a, -EPROTO, "the controller chose what was not offered (hash %u, "
					"DH group %u)",
			    ci.hashid, ci.dhgid);
	a->hashid = ci.hashid;
	a->dhgid = ci.dhgid;
	a->hl = ci.hl;
	dl = nvl_dhchap_dhgroup_len(ci.dhgid);
	if (dl) {
		rc = nvl_dhchap_dh_create(ci.dhgid, &dh);
		if (rc == 0)
			rc = nvl_dhchap_dh_public(dh, pub, dl);
		if (rc == 0)
			rc = nvl_dhchap_dh_derive(dh, ci.dhv, ci.dhvlen, a->sess, dl);
		nvl_dhchap_dh_destroy(dh);
		if (rc < 0)
			return fail(a, rc == -EINVAL ? -EPROTO : rc, "%s",
				    rc == -EINVAL ? "the controller's DH value is invalid"
						  : "DH computation failed");
		a->sess_len = dl;
	}
	rc = nvl_dhchap_response(a->hashid, a->hkey, a->hkey_len, ci.c1, a->sess, a->sess_len,
				 ci.seqnum, a->tid, NVL_NVMF_AUTH_SCC_NONE, false, a->hostnqn,
				 a->subnqn, r1);
	if (rc == 0 && a->bidir) {
		rc = nvl_dhchap_random(a->c2, a->hl);
		do {
			if (rc == 0)
				rc = nvl_dhchap_random(&a->s2, sizeof(a->s2));
		} while (rc == 0 && a->s2 == 0);
	}
	if (rc < 0) {
		OPENSSL_cleanse(r1, sizeof(r1));
		return fail(a, rc, "cannot compute the response");
	}
	rc = nvl_dhchap_reply_encode(a->out, sizeof(a->out), a->tid, a->hl, r1,
				     a->bidir ? a->c2 : NULL, a->bidir ? a->s2 : 0, dl ? pub : NULL,
				     dl);
	OPENSSL_cleanse(r1, sizeof(r1));
	if (rc < 0)
		return fail(a, rc, "cannot encode the Reply");
	a->out_len = rc;
	a->state = HA_REPLY;
	return 0;
}

static int
on_success1(struct host_auth *a, const uint8_t *buf, uint32_t len)
{
	struct nvl_dhchap_success1_info si;
	uint8_t r2[NVL_DHCHAP_MAX_HASH];
	int rc;

	if (is_failure1(buf, len))
		return on_failure1(a, buf, len, "Success1");
	rc = nvl_dhchap_success1_decode(buf, len, a->hl, &si);
	if (rc == -EPROTO)
		return fail(a, -EPROTO, "the controller sent another message than Success1");
	if (rc < 0 || si.tid != a->tid)
		return fail(a, -EPROTO, "%s", rc < 0 ? "malformed Success1"
						    : "Success1 of another transaction");
	if (!a->bidir) {
		wipe_txn(a);
		a->state = HA_DONE;
		return 0;
	}
	rc = -EACCES;
	if (si.rvalid) {
		rc = nvl_dhchap_response(a->hashid, a->ckey, a->ckey_len, a->c2, a->sess,
					 a->sess_len, a->s2, a->tid, NVL_NVMF_AUTH_SCC_NONE, true,
					 a->hostnqn, a->subnqn, r2);
		if (rc == 0 && !nvl_dhchap_equal(r2, si.r2, a->hl))
			rc = -EACCES;
		OPENSSL_cleanse(r2, sizeof(r2));
	}
	wipe_txn(a);
	if (rc == 0) {
		rc = nvl_dhchap_success2_encode(a->out, sizeof(a->out), a->tid);
		a->state = HA_SUCCESS2;
	} else {
		snprintf(a->err, sizeof(a->err),
			 "queue %u: DH-HMAC-CHAP: the controller did not prove itself (%s)", a->qid,
			 si.rvalid ? "wrong response: is the controller key the same on both sides?"
				   : "it sent no response: it has no controller key for this host");
		rc = nvl_dhchap_failure_encode(a->out, sizeof(a->out), false, a->tid,
					       NVL_NVMF_AUTH_RCE_FAILED);
		a->state = HA_FAILURE2;
	}
	if (rc < 0)
		return fail(a, rc, "cannot encode a message");
	a->out_len = rc;
	return 0;
}

int
host_auth_complete(struct host_auth *a, const struct nvl_nvme_cpl *cpl, const uint8_t *buf,
		   uint32_t len)
{
	uint16_t st = nvl_cpl_status(cpl);

	if (a->state == HA_FAILED || a->state == HA_DONE)
		return a->state == HA_DONE ? 0 : a->rc;
	if (st != 0)
		return fail(a, -EREMOTEIO, "Authentication %s: %s (status 0x%03x)",
			    a->state == HA_CHALLENGE || a->state == HA_SUCCESS1 ? "Receive"
										 : "Send",
			    nvl_status_str(st), st);
	switch (a->state) {
	case HA_NEGOTIATE:
		a->state = HA_CHALLENGE;
		return 0;
	case HA_CHALLENGE:
		return on_challenge(a, buf, len);
	case HA_REPLY:
		OPENSSL_cleanse(a->out, sizeof(a->out));
		a->state = HA_SUCCESS1;
		return 0;
	case HA_SUCCESS1:
		return on_success1(a, buf, len);
	case HA_SUCCESS2:
		wipe_txn(a);
		a->state = HA_DONE;
		return 0;
	case HA_FAILURE2: {
		char why[HOST_ERR_LEN];

		nvl_strlcpy(why, a->err, sizeof(why));
		wipe_txn(a);
		a->state = HA_FAILED;
		a->rc = -EKEYREJECTED;
		nvl_strlcpy(a->err, why, sizeof(a->err));
		return a->rc;
	}
	default:
		return a->rc;
	}
}

/* ---- keys ---------------------------------------------------------------------------------- */

/* A key from text: a DHHC-1 secret, or the path of a file holding one (which
 * only its owner may read, as nvme-cli's and the keyring's key files). */
static int
key_from(const char *what, const char *text, struct nvl_dhchap_key *out, char *why, size_t wlen)
{
	char buf[NVL_DHCHAP_SECRET_MAX + 64];
	struct stat st;
	ssize_t n;
	int fd, rc;

	if (strncmp(text, "DHHC-1:", 7) == 0) {
		rc = nvl_dhchap_key_parse(text, strlen(text), out);
		if (rc < 0)
			snprintf(why, wlen, "%s: not a valid DHHC-1 secret%s", what,
				 rc == -EBADMSG ? " (its CRC does not match)" : "");
		return rc < 0 ? -ENOKEY : 0;
	}
	fd = open(text, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(why, wlen, "%s: cannot open key file %s: %s", what, text, strerror(errno));
		return -ENOKEY;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		snprintf(why, wlen, "%s: key file %s must be a regular file with no group/other "
				    "access (chmod 600)",
			 what, text);
		close(fd);
		return -ENOKEY;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(why, wlen, "%s: cannot read key file %s", what, text);
		return -ENOKEY;
	}
	buf[n] = '\0';
	rc = nvl_dhchap_key_parse(buf, (size_t)n, out);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rc < 0) {
		snprintf(why, wlen, "%s: key file %s does not hold a DHHC-1 secret%s", what, text,
			 rc == -EBADMSG ? " (its CRC does not match)" : "");
		return -ENOKEY;
	}
	return 0;
}

int
host_dhchap_from_env(struct host_ctrlr_opts *o, char *why, size_t wlen)
{
	const char *k = getenv("NVLEND_DHCHAP_KEY");
	const char *ck = getenv("NVLEND_DHCHAP_CTRLR_KEY");
	int rc;

	memset(&o->dhchap_key, 0, sizeof(o->dhchap_key));
	memset(&o->dhchap_ctrlr_key, 0, sizeof(o->dhchap_ctrlr_key));
	if (ck && *ck && !(k && *k)) {
		snprintf(why, wlen, "NVLEND_DHCHAP_CTRLR_KEY without NVLEND_DHCHAP_KEY: the "
				    "controller proves itself only to a host that authenticates");
		return -ENOKEY;
	}
	if (k && *k) {
		rc = key_from("NVLEND_DHCHAP_KEY", k, &o->dhchap_key, why, wlen);
		if (rc < 0)
			return rc;
	}
	if (ck && *ck) {
		rc = key_from("NVLEND_DHCHAP_CTRLR_KEY", ck, &o->dhchap_ctrlr_key, why, wlen);
		if (rc < 0) {
			nvl_dhchap_key_wipe(&o->dhchap_key);
			return rc;
		}
	}
	return 0;
}
