/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DH-HMAC-CHAP, target side: each queue's transaction (what is allowed when,
 * failures, timeouts), the keys of host entries and controllers, and the
 * allowed hashes and DH groups. The rules and the threading are in auth.h.
 *
 * A transaction, as the controller sees it (Base 2.0 8.13.5):
 *
 *   NEGOTIATE --Send AUTH_Negotiate--> CHALLENGE --Receive Challenge--> REPLY
 *   REPLY --Send Reply (R1 correct)--> SUCCESS1
 *   SUCCESS1 --Receive Success1--> DONE            (the host asked nothing)
 *                               \-> SUCCESS2 --Send Success2--> DONE
 *   any step --wrong message, payload, response--> FAILURE1
 *   FAILURE1 --Receive AUTH_Failure1--> FAILED     (torn down shortly)
 *   SUCCESS2 --Send AUTH_Failure2--> FAILED
 *   DONE --Send AUTH_Negotiate--> CHALLENGE        (re-authentication)
 *
 * As SPDK's target does, a failed step completes its Authentication Send
 * successfully and the following Receive carries AUTH_Failure1. The
 * controller sends the minimum of each message (no AL padding).
 */
#include "nvmf/auth.h"
#include "nvmf/nvmf_internal.h"
#include "proto/nvme_auth.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

NVL_LOG_REGISTER_COMPONENT(nvmf_auth)

/* A step may take this long at least: a host computes ffdhe8192 in software,
 * and a kernel's first use of a DH group runs its crypto self-tests (15 s for
 * ffdhe8192 in an emulated guest); SPDK and Linux nvmet allow the keep-alive
 * timeout, 5 s from a Linux host, which such a host cannot make. */
#define AUTH_STEP_MIN_NS (30ULL * 1000000000ULL)
#define AUTH_STEP_MAX_NS (120ULL * 1000000000ULL)  /* ... and at most (SPDK's default) */
#define AUTH_FAIL_GRACE_NS (500ULL * 1000000ULL)   /* for the Failure1 to reach the host */
#define INVALID_FIELD_DNR (NVL_NVME_SC_INVALID_FIELD | NVL_NVME_STATUS_DNR)

/* ---- configuration (nvmf_set_config) ------------------------------------- */

/* bit per HashID / DHgID; written on reactor 0, read anywhere (atomic) */
static uint32_t g_digests = (1u << NVL_NVMF_AUTH_HASH_SHA256) | (1u << NVL_NVMF_AUTH_HASH_SHA384) |
			    (1u << NVL_NVMF_AUTH_HASH_SHA512);
static uint32_t g_dhgroups = 0x3f; /* null, ffdhe2048 .. ffdhe8192 */
/* nvlend's dhchap_step_timeout_ms: 0 = from the KATO, clamped to 30..120 s */
static uint32_t g_step_timeout_ms;

/* ---- keys ------------------------------------------------------------------ */

/* What a controller authenticates with: the transformed keys (Kt). Immutable
 * once built; reference counted (a transaction holds one while it runs). */
struct nvmf_auth_keys {
	unsigned refs;                  /* atomic */
	uint8_t host[NVL_DHCHAP_MAX_HASH];
	size_t host_len;
	uint8_t ctrl[NVL_DHCHAP_MAX_HASH];
	size_t ctrl_len;                /* 0: no controller key */
	char host_name[NVL_KEYRING_NAME_MAX];
};

static void
keys_put(struct nvmf_auth_keys *k)
{
	if (k && __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		OPENSSL_cleanse(k, sizeof(*k));
		free(k);
	}
}

static struct nvmf_auth_keys *
keys_get(struct nvmf_auth_keys *k)
{
	__atomic_fetch_add(&k->refs, 1, __ATOMIC_RELAXED);
	return k;
}

/* Read the key files of host entry h and transform them for this pair of NQNs. */
static int
keys_load(const struct nvmf_host *h, const char *subnqn, struct nvmf_auth_keys **out,
	  char *why, size_t why_len)
{
	struct nvmf_auth_keys *k = calloc(1, sizeof(*k));
	struct nvl_dhchap_key raw;
	int rc;

	if (k == NULL)
		return -ENOMEM;
	k->refs = 1;
	nvl_strlcpy(k->host_name, h->dhchap_key, sizeof(k->host_name));
	rc = nvl_keyring_load(h->dhchap_key, &raw);
	if (rc == 0)
		rc = nvl_dhchap_key_transform(&raw, h->nqn, k->host, &k->host_len);
	nvl_dhchap_key_wipe(&raw);
	if (rc < 0) {
		snprintf(why, why_len, "the DH-HMAC-CHAP key %s of host %s cannot be used: %s",
			 h->dhchap_key, h->nqn, rc == -ENOENT ? "not in the keyring" : strerror(-rc));
		goto err;
	}
	if (h->dhchap_ctrlr_key[0]) {
		rc = nvl_keyring_load(h->dhchap_ctrlr_key, &raw);
		if (rc == 0)
			rc = nvl_dhchap_key_transform(&raw, subnqn, k->ctrl, &k->ctrl_len);
		nvl_dhchap_key_wipe(&raw);
		if (rc < 0) {
			snprintf(why, why_len,
				 "the DH-HMAC-CHAP controller key %s of host %s cannot be used: %s",
				 h->dhchap_ctrlr_key, h->nqn,
				 rc == -ENOENT ? "not in the keyring" : strerror(-rc));
			goto err;
		}
	}
	*out = k;
	return 0;
err:
	keys_put(k);
	return -EACCES;
}

bool
nvmf_auth_host_has_key(const struct nvmf_host *h)
{
	return h && h->dhchap_key[0] != '\0';
}

void
nvmf_auth_host_clear(struct nvmf_host *h)
{
	if (h->dhchap_key[0])
		nvl_keyring_put(h->dhchap_key);
	if (h->dhchap_ctrlr_key[0])
		nvl_keyring_put(h->dhchap_ctrlr_key);
	h->dhchap_key[0] = h->dhchap_ctrlr_key[0] = '\0';
}

int
nvmf_auth_host_set_keys(struct nvmf_host *h, const char *key, const char *ckey, char *err,
			size_t errlen)
{
	bool has_key = key && key[0], has_ckey = ckey && ckey[0];

	if (has_ckey && !has_key) {
		snprintf(err, errlen, "a controller key (dhchap_ctrlr_key) needs a host key "
				      "(dhchap_key)");
		return -EINVAL;
	}
	if (has_key && nvl_keyring_get(key) < 0) {
		snprintf(err, errlen, "no key %s in the keyring (keyring_file_add_key)", key);
		return -ENOENT;
	}
	if (has_ckey && nvl_keyring_get(ckey) < 0) {
		nvl_keyring_put(key);
		snprintf(err, errlen, "no key %s in the keyring (keyring_file_add_key)", ckey);
		return -ENOENT;
	}
	nvmf_auth_host_clear(h);
	if (has_key)
		nvl_strlcpy(h->dhchap_key, key, sizeof(h->dhchap_key));
	if (has_ckey)
		nvl_strlcpy(h->dhchap_ctrlr_key, ckey, sizeof(h->dhchap_ctrlr_key));
	return 0;
}

/* ---- a queue's transaction ------------------------------------------------ */

enum nvmf_auth_state {
	AUTH_NEGOTIATE,         /* waiting for AUTH_Negotiate */
	AUTH_CHALLENGE,         /* negotiated: the host reads the Challenge */
	AUTH_REPLY,             /* waiting for the Reply */
	AUTH_SUCCESS1,          /* the host proved itself: it reads Success1 */
	AUTH_SUCCESS2,          /* waiting for Success2 (the host checks our R2) */
	AUTH_FAILURE1,          /* failed: the host reads AUTH_Failure1 */
	AUTH_DONE,              /* authenticated; re-authentication may start */
	AUTH_FAILED,            /* over: the controller goes */
};

static const char *const g_state_names[] = {
	[AUTH_NEGOTIATE] = "negotiate", [AUTH_CHALLENGE] = "challenge", [AUTH_REPLY] = "reply",
	[AUTH_SUCCESS1] = "success1",	[AUTH_SUCCESS2] = "success2",	[AUTH_FAILURE1] = "failure1",
	[AUTH_DONE] = "done",		[AUTH_FAILED] = "failed",
};

struct nvmf_auth {
	struct nvl_nvme_auth base;      /* first */
	struct nvl_nvmf_ctrlr *ctrlr;   /* outlives its queues' states */
	uint16_t qid;
	enum nvmf_auth_state state;
	bool authenticated;             /* a transaction succeeded (kept during re-auth) */
	uint8_t rce;                    /* AUTH_Failure1 explanation */
	const char *fail_why;           /* static: the log's reason */
	uint16_t tid;
	uint8_t hashid, dhgid, hl;
	uint32_t s1;
	uint8_t c1[NVL_DHCHAP_MAX_HASH];
	bool cvalid;                    /* the host asked for R2 */
	bool bidir;                     /* ... in the last transaction that succeeded */
	uint8_t r2[NVL_DHCHAP_MAX_HASH];
	struct nvl_dhchap_dh *dh;
	struct nvmf_auth_keys *keys;    /* this transaction's */
	uint64_t deadline_ns;           /* this step must be over by then (0: none) */
	uint64_t failed_ns;
};

static const struct nvl_nvme_auth_ops g_auth_ops;

static struct nvmf_auth *
to_auth(struct nvl_nvme_auth *a)
{
	return container_of(a, struct nvmf_auth, base);
}

static uint64_t
step_timeout_ns(const struct nvmf_auth *a)
{
	uint64_t t = (uint64_t)a->ctrlr->nvme.kato_ms * 1000000ULL;
	uint32_t fixed = __atomic_load_n(&g_step_timeout_ms, __ATOMIC_RELAXED);

	if (fixed)
		return (uint64_t)fixed * 1000000ULL;
	return t < AUTH_STEP_MIN_NS ? AUTH_STEP_MIN_NS : t > AUTH_STEP_MAX_NS ? AUTH_STEP_MAX_NS : t;
}

static void
arm(struct nvmf_auth *a)
{
	a->deadline_ns = nvl_now_ns() + step_timeout_ns(a);
}

/* Forget the transaction's secrets. */
static void
txn_clear(struct nvmf_auth *a)
{
	nvl_dhchap_dh_destroy(a->dh);
	a->dh = NULL;
	keys_put(a->keys);
	a->keys = NULL;
	a->cvalid = false;
	OPENSSL_cleanse(a->c1, sizeof(a->c1));
	OPENSSL_cleanse(a->r2, sizeof(a->r2));
}

static int
auth_create(struct nvl_nvmf_ctrlr *c, uint16_t qid, struct nvmf_auth **out)
{
	struct nvmf_auth *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return -ENOMEM;
	a->base.ops = &g_auth_ops;
	a->ctrlr = c;
	a->qid = qid;
	a->state = AUTH_NEGOTIATE;
	arm(a);
	*out = a;
	return 0;
}

static void
auth_destroy(struct nvmf_auth *a)
{
	if (a == NULL)
		return;
	txn_clear(a);
	free(a);
}

int
nvl_nvmf_auth_queue_create(struct nvl_nvmf_ctrlr *c, uint16_t qid, struct nvl_nvme_auth **out)
{
	struct nvmf_auth *a;
	int rc;

	if (!c->nvme.auth_required)
		return -EINVAL;
	rc = auth_create(c, qid, &a);
	if (rc == 0)
		*out = &a->base;
	return rc;
}

void
nvl_nvmf_auth_queue_destroy(struct nvl_nvme_auth *a)
{
	if (a)
		auth_destroy(to_auth(a));
}

uint32_t
nvl_nvmf_auth_connect_flags(const struct nvl_nvmf_ctrlr *c)
{
	return c->nvme.auth_required ? NVL_NVMF_CONNECT_AUTHREQ_ATR : 0;
}

static bool
auth_ready(const struct nvl_nvme_auth *base)
{
	const struct nvmf_auth *a = (const struct nvmf_auth *)base; /* base is first */

	return a->authenticated && a->state != AUTH_FAILURE1 && a->state != AUTH_FAILED;
}

bool
nvl_nvmf_auth_authenticated(const struct nvl_nvme_auth *a)
{
	return a && auth_ready(a);
}

void
nvl_nvmf_auth_restore(struct nvl_nvme_auth *base)
{
	struct nvmf_auth *a = to_auth(base);

	txn_clear(a);
	a->authenticated = true;
	a->state = AUTH_DONE;
	a->deadline_ns = 0;
}

static void
failed(struct nvmf_auth *a, const char *why)
{
	a->state = AUTH_FAILED;
	a->failed_ns = nvl_now_ns();
	a->fail_why = why;
	txn_clear(a);
}

bool
nvl_nvmf_auth_expired(struct nvl_nvme_auth *base, uint64_t now_ns, const char **why)
{
	struct nvmf_auth *a = to_auth(base);

	if (a->state == AUTH_FAILED) {
		*why = a->fail_why ? a->fail_why : "authentication failed";
		return now_ns - a->failed_ns > AUTH_FAIL_GRACE_NS;
	}
	if (a->state == AUTH_DONE || a->deadline_ns == 0 || now_ns < a->deadline_ns)
		return false;
	if (a->authenticated && a->state != AUTH_FAILURE1) {
		/* a re-authentication stalled: the queue keeps what it had proved */
		NVL_WARNLOG("%s: controller %u qid %u: re-authentication by %s abandoned in state "
			    "%s (timeout)",
			    a->ctrlr->nvme.subnqn, a->ctrlr->nvme.cntlid, a->qid,
			    a->ctrlr->nvme.hostnqn, g_state_names[a->state]);
		txn_clear(a);
		a->state = AUTH_DONE;
		a->deadline_ns = 0;
		return false;
	}
	NVL_WARNLOG("%s: controller %u qid %u: host %s did not complete DH-HMAC-CHAP in time "
		    "(state %s)",
		    a->ctrlr->nvme.subnqn, a->ctrlr->nvme.cntlid, a->qid, a->ctrlr->nvme.hostnqn,
		    g_state_names[a->state]);
	failed(a, "authentication timed out");
	*why = a->fail_why;
	return true;
}

/* A step failed: the next Authentication Receive returns AUTH_Failure1. */
static void
fail1(struct nvmf_auth *a, uint8_t rce, const char *why)
{
	NVL_WARNLOG("%s: controller %u qid %u: DH-HMAC-CHAP with host %s failed: %s", a->ctrlr->nvme.subnqn,
		    a->ctrlr->nvme.cntlid, a->qid, a->ctrlr->nvme.hostnqn, why);
	txn_clear(a);
	a->state = AUTH_FAILURE1;
	a->rce = rce;
	a->fail_why = "authentication failed";
	arm(a);
}

/* The strongest allowed id the host offers, or -1. */
static int
pick(const uint8_t *offered, unsigned n, uint32_t allowed, int hi)
{
	for (int id = hi; id >= 0; id--) {
		if (!(allowed & (1u << id)))
			continue;
		for (unsigned i = 0; i < n; i++)
			if (offered[i] == id)
				return id;
	}
	return -1;
}

static uint32_t
next_seqnum(void)
{
	static uint32_t seq; /* atomic; starts at a random value */
	uint32_t s = __atomic_load_n(&seq, __ATOMIC_RELAXED);

	if (s == 0) {
		uint32_t r = 0;

		if (nvl_dhchap_random(&r, sizeof(r)) < 0)
			r = (uint32_t)nvl_now_ns();
		__atomic_compare_exchange_n(&seq, &s, r | 1, false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
	}
	do {
		s = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
	} while (s == 0); /* 0 means "no sequence number" in a Reply */
	return s;
}

static void
on_negotiate(struct nvmf_auth *a, const void *msg, size_t len)
{
	struct nvl_dhchap_negotiate_info ni;
	int h, g;

	if (a->state != AUTH_NEGOTIATE && a->state != AUTH_DONE) {
		fail1(a, NVL_NVMF_AUTH_RCE_INCORRECT_MESSAGE, "AUTH_Negotiate in the middle of a "
							      "transaction");
		return;
	}
	if (nvl_dhchap_negotiate_decode(msg, len, &ni) < 0) {
		fail1(a, NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD, "malformed AUTH_Negotiate");
		return;
	}
	txn_clear(a);
	a->tid = ni.tid;
	if (ni.sc_c != NVL_NVMF_AUTH_SCC_NONE) {
		fail1(a, NVL_NVMF_AUTH_RCE_SCC_MISMATCH, "secure channel concatenation asked for "
							 "(not offered)");
		return;
	}
	if (!ni.dhchap) {
		fail1(a, NVL_NVMF_AUTH_RCE_PROTOCOL_UNUSABLE, "no DH-HMAC-CHAP protocol descriptor");
		return;
	}
	h = pick(ni.hashids, ni.nhash, __atomic_load_n(&g_digests, __ATOMIC_RELAXED),
		 NVL_NVMF_AUTH_HASH_SHA512);
	if (h < 0) {
		fail1(a, NVL_NVMF_AUTH_RCE_HASH_UNUSABLE, "no allowed hash function offered");
		return;
	}
	g = pick(ni.dhgids, ni.ndh, __atomic_load_n(&g_dhgroups, __ATOMIC_RELAXED),
		 NVL_NVMF_AUTH_DHGROUP_8192);
	if (g < 0) {
		fail1(a, NVL_NVMF_AUTH_RCE_DHGROUP_UNUSABLE, "no allowed DH group offered");
		return;
	}
	pthread_mutex_lock(&g_nvmf.lock);
	a->keys = a->ctrlr->auth_keys ? keys_get(a->ctrlr->auth_keys) : NULL;
	pthread_mutex_unlock(&g_nvmf.lock);
	if (a->keys == NULL) {
		fail1(a, NVL_NVMF_AUTH_RCE_FAILED, "the host has no key any more");
		return;
	}
	a->hashid = (uint8_t)h;
	a->dhgid = (uint8_t)g;
	a->hl = (uint8_t)nvl_dhchap_hash_len(a->hashid);
	a->state = AUTH_CHALLENGE;
	arm(a);
	NVL_DEBUGLOG(nvmf_auth, "%s: controller %u qid %u: T_ID %u, %s, %s", a->ctrlr->nvme.subnqn,
		     a->ctrlr->nvme.cntlid, a->qid, a->tid, nvl_dhchap_hash_name(a->hashid),
		     nvl_dhchap_dhgroup_name(a->dhgid));
}

static void
on_reply(struct nvmf_auth *a, const void *msg, size_t len)
{
	struct nvl_dhchap_reply_info ri;
	struct nvl_nvme_ctrlr *nc = &a->ctrlr->nvme;
	uint8_t sess[NVL_DHCHAP_MAX_DH], r1[NVL_DHCHAP_MAX_HASH];
	size_t sl = nvl_dhchap_dhgroup_len(a->dhgid);
	int rc;

	if (a->state != AUTH_REPLY) {
		fail1(a, NVL_NVMF_AUTH_RCE_INCORRECT_MESSAGE, "Reply out of order");
		return;
	}
	if (nvl_dhchap_reply_decode(msg, len, a->hl, &ri) < 0) {
		fail1(a, NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD, "malformed Reply");
		return;
	}
	if (ri.tid != a->tid) {
		fail1(a, NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD, "Reply of another transaction");
		return;
	}
	if (ri.dhvlen != sl) {
		fail1(a, NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD, "DH value of the wrong length");
		return;
	}
	if (ri.cvalid && ri.seqnum == 0) {
		fail1(a, NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD, "controller challenge without a "
							      "sequence number");
		return;
	}
	if (sl) {
		rc = nvl_dhchap_dh_derive(a->dh, ri.dhv, ri.dhvlen, sess, sl);
		if (rc < 0) {
			fail1(a, NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD,
			      rc == -EINVAL ? "invalid DH value" : "DH computation failed");
			return;
		}
	}
	rc = nvl_dhchap_response(a->hashid, a->keys->host, a->keys->host_len, a->c1, sess, sl, a->s1,
				 a->tid, NVL_NVMF_AUTH_SCC_NONE, false, nc->hostnqn, nc->subnqn, r1);
	if (rc < 0 || !nvl_dhchap_equal(r1, ri.r1, a->hl)) {
		OPENSSL_cleanse(sess, sizeof(sess));
		fail1(a, NVL_NVMF_AUTH_RCE_FAILED,
		      rc < 0 ? "cannot compute the response" : "wrong response (wrong host key)");
		return;
	}
	if (ri.cvalid) {
		if (a->keys->ctrl_len == 0) {
			OPENSSL_cleanse(sess, sizeof(sess));
			fail1(a, NVL_NVMF_AUTH_RCE_FAILED, "the host asks the controller to "
							   "authenticate, but it has no controller key");
			return;
		}
		rc = nvl_dhchap_response(a->hashid, a->keys->ctrl, a->keys->ctrl_len, ri.c2, sess,
					 sl, ri.seqnum, a->tid, NVL_NVMF_AUTH_SCC_NONE, true,
					 nc->hostnqn, nc->subnqn, a->r2);
		if (rc < 0) {
			OPENSSL_cleanse(sess, sizeof(sess));
			fail1(a, NVL_NVMF_AUTH_RCE_FAILED, "cannot compute the controller response");
			return;
		}
		a->cvalid = true;
	}
	OPENSSL_cleanse(sess, sizeof(sess));
	OPENSSL_cleanse(r1, sizeof(r1));
	nvl_dhchap_dh_destroy(a->dh);
	a->dh = NULL;
	a->state = AUTH_SUCCESS1;
	arm(a);
}

static void
succeeded(struct nvmf_auth *a)
{
	if (a->qid == 0) /* I/O queues: one line per queue would be noise */
		NVL_NOTICELOG("%s: controller %u: host %s authenticated (DH-HMAC-CHAP %s, %s%s)",
			      a->ctrlr->nvme.subnqn, a->ctrlr->nvme.cntlid, a->ctrlr->nvme.hostnqn,
			      nvl_dhchap_hash_name(a->hashid), nvl_dhchap_dhgroup_name(a->dhgid),
			      a->cvalid ? ", controller authenticated to the host" : "");
	else
		NVL_DEBUGLOG(nvmf_auth, "%s: controller %u qid %u authenticated", a->ctrlr->nvme.subnqn,
			     a->ctrlr->nvme.cntlid, a->qid);
	a->bidir = a->cvalid;
	txn_clear(a);
	a->authenticated = true;
	a->state = AUTH_DONE;
	a->deadline_ns = 0;
	/* the keep-alive period starts now (nothing counted while authenticating) */
	if (a->qid == 0)
		__atomic_store_n(&a->ctrlr->nvme.last_keep_alive_ns, nvl_now_ns(), __ATOMIC_RELAXED);
}

static void
on_success2(struct nvmf_auth *a, const void *msg, size_t len)
{
	uint16_t tid;

	if (a->state != AUTH_SUCCESS2) {
		fail1(a, NVL_NVMF_AUTH_RCE_INCORRECT_MESSAGE, "Success2 out of order");
		return;
	}
	if (nvl_dhchap_success2_decode(msg, len, &tid) < 0 || tid != a->tid) {
		fail1(a, NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD, "malformed Success2");
		return;
	}
	succeeded(a);
}

static void
on_failure2(struct nvmf_auth *a, const void *msg, size_t len)
{
	uint16_t tid;
	uint8_t rce;

	/* the host refuses our response (or gives up): only expected after Success1 */
	if (nvl_dhchap_failure_decode(msg, len, &tid, &rce) < 0 || tid != a->tid ||
	    a->state != AUTH_SUCCESS2) {
		fail1(a, NVL_NVMF_AUTH_RCE_INCORRECT_MESSAGE, "unexpected AUTH_Failure2");
		return;
	}
	NVL_WARNLOG("%s: controller %u qid %u: host %s did not accept the controller's response "
		    "(AUTH_Failure2, explanation %u): wrong controller key?",
		    a->ctrlr->nvme.subnqn, a->ctrlr->nvme.cntlid, a->qid, a->ctrlr->nvme.hostnqn,
		    rce);
	failed(a, "the host refused the controller's authentication");
}

static void
auth_send(struct nvmf_auth *a, struct nvl_nvme_req *req)
{
	uint8_t msg[NVL_NVME_AUTH_MAX_SEND];
	const struct nvl_nvmf_auth_cmd *cmd = (const void *)&req->cmd;
	struct nvl_nvmf_auth_hdr h;
	uint32_t tl = cmd->al_tl;

	if (tl == 0 || tl > sizeof(msg) || req->data_len != tl ||
	    nvl_nvme_req_copy_from(req, msg, tl) != tl) {
		nvl_nvme_req_complete(req, INVALID_FIELD_DNR);
		return;
	}
	if (a->state == AUTH_FAILED || a->state == AUTH_FAILURE1) {
		/* nothing more to negotiate; the Receive tells the host */
		nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
		return;
	}
	if (nvl_dhchap_hdr_decode(msg, tl, &h) < 0) {
		fail1(a, NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD, "message shorter than its header");
	} else if (h.auth_type == NVL_NVMF_AUTH_TYPE_COMMON &&
		   h.auth_id == NVL_NVMF_AUTH_ID_NEGOTIATE) {
		on_negotiate(a, msg, tl);
	} else if (h.auth_type == NVL_NVMF_AUTH_TYPE_COMMON &&
		   h.auth_id == NVL_NVMF_AUTH_ID_FAILURE2) {
		on_failure2(a, msg, tl);
	} else if (h.auth_type == NVL_NVMF_AUTH_TYPE_DHCHAP && h.auth_id == NVL_NVMF_AUTH_ID_REPLY) {
		on_reply(a, msg, tl);
	} else if (h.auth_type == NVL_NVMF_AUTH_TYPE_DHCHAP &&
		   h.auth_id == NVL_NVMF_AUTH_ID_SUCCESS2) {
		on_success2(a, msg, tl);
	} else {
		fail1(a, NVL_NVMF_AUTH_RCE_INCORRECT_MESSAGE, "not a message a host sends");
	}
	OPENSSL_cleanse(msg, tl);
	nvl_nvme_req_complete(req, NVL_NVME_SC_SUCCESS);
}

/* Build the Challenge: C1, S1 and, with a DH group, our key pair. */
static int
make_challenge(struct nvmf_auth *a, uint8_t *buf, size_t cap)
{
	uint8_t dhv[NVL_DHCHAP_MAX_DH];
	size_t dl = nvl_dhchap_dhgroup_len(a->dhgid);
	int rc;

	nvl_dhchap_dh_destroy(a->dh); /* a Receive asked again with a larger AL */
	a->dh = NULL;
	rc = nvl_dhchap_random(a->c1, a->hl);
	if (rc == 0 && dl) {
		rc = nvl_dhchap_dh_create(a->dhgid, &a->dh);
		if (rc == 0)
			rc = nvl_dhchap_dh_public(a->dh, dhv, dl);
	}
	if (rc < 0)
		return rc;
	a->s1 = next_seqnum();
	return nvl_dhchap_challenge_encode(buf, cap, a->tid, a->hashid, a->dhgid, a->s1, a->c1,
					   dl ? dhv : NULL, dl);
}

static void
auth_recv(struct nvmf_auth *a, struct nvl_nvme_req *req)
{
	uint8_t msg[NVL_DHCHAP_MAX_MSG];
	const struct nvl_nvmf_auth_cmd *cmd = (const void *)&req->cmd;
	size_t cap = NVL_MIN((size_t)cmd->al_tl, sizeof(msg));
	int n;

	if (cmd->al_tl == 0 || req->data_len != cmd->al_tl) {
		nvl_nvme_req_complete(req, INVALID_FIELD_DNR);
		return;
	}
	switch (a->state) {
	case AUTH_CHALLENGE:
		n = make_challenge(a, msg, cap);
		if (n == -ENOSPC) {
			/* AL too small for the challenge: the host may ask again */
			nvl_nvme_req_complete(req, INVALID_FIELD_DNR);
			return;
		}
		if (n < 0) {
			fail1(a, NVL_NVMF_AUTH_RCE_FAILED, "cannot build the challenge");
			n = nvl_dhchap_failure_encode(msg, cap, true, a->tid, a->rce);
			failed(a, "authentication failed");
			break;
		}
		a->state = AUTH_REPLY;
		arm(a);
		break;
	case AUTH_SUCCESS1:
		n = nvl_dhchap_success1_encode(msg, cap, a->tid, a->hl, a->cvalid ? a->r2 : NULL);
		if (n == -ENOSPC) {
			nvl_nvme_req_complete(req, INVALID_FIELD_DNR);
			return;
		}
		if (a->cvalid) {
			a->state = AUTH_SUCCESS2;
			arm(a);
		} else {
			succeeded(a);
		}
		break;
	case AUTH_FAILURE1:
		n = nvl_dhchap_failure_encode(msg, cap, true, a->tid, a->rce);
		failed(a, "authentication failed");
		break;
	default:
		/* nothing to receive now: a protocol violation, as SPDK treats it */
		NVL_WARNLOG("%s: controller %u qid %u: host %s: Authentication Receive in state %s",
			    a->ctrlr->nvme.subnqn, a->ctrlr->nvme.cntlid, a->qid,
			    a->ctrlr->nvme.hostnqn, g_state_names[a->state]);
		n = nvl_dhchap_failure_encode(msg, cap, true, a->tid,
					      NVL_NVMF_AUTH_RCE_INCORRECT_MESSAGE);
		failed(a, "authentication failed");
		break;
	}
	if (n > 0)
		nvl_nvme_req_copy_to(req, msg, (uint32_t)n);
	OPENSSL_cleanse(msg, sizeof(msg));
	nvl_nvme_req_complete(req, n > 0 ? NVL_NVME_SC_SUCCESS : INVALID_FIELD_DNR);
}

static void
auth_execute(struct nvl_nvme_auth *base, struct nvl_nvme_req *req)
{
	struct nvmf_auth *a = to_auth(base);
	const struct nvl_nvmf_auth_cmd *cmd = (const void *)&req->cmd;

	/* SECP E9h, SPSP 01h 01h: DH-HMAC-CHAP (Base 2.0 Figures 290, 292) */
	if (cmd->secp != NVL_NVMF_AUTH_SECP || cmd->spsp0 != NVL_NVMF_AUTH_SPSP ||
	    cmd->spsp1 != NVL_NVMF_AUTH_SPSP) {
		nvl_nvme_req_complete(req, INVALID_FIELD_DNR);
		return;
	}
	if (cmd->fctype == NVL_NVMF_FCTYPE_AUTH_SEND)
		auth_send(a, req);
	else
		auth_recv(a, req);
}

static const struct nvl_nvme_auth_ops g_auth_ops = {
	.execute = auth_execute,
	.ready = auth_ready,
};

json_t *
nvl_nvmf_auth_json(const struct nvl_nvme_auth *base)
{
	const struct nvmf_auth *a = (const struct nvmf_auth *)base; /* base is first */
	json_t *o = json_pack("{s:s, s:b}", "state", g_state_names[a->state], "authenticated",
			      auth_ready(base));

	if (a->authenticated) {
		json_object_set_new(o, "digest", json_string(nvl_dhchap_hash_name(a->hashid)));
		json_object_set_new(o, "dhgroup", json_string(nvl_dhchap_dhgroup_name(a->dhgid)));
		json_object_set_new(o, "bidirectional", json_boolean(a->bidir));
	}
	return o;
}

/* ---- controllers ------------------------------------------------------------ */

int
nvmf_auth_ctrlr_init(struct nvl_nvmf_ctrlr *c, const struct nvmf_host *h,
		     const struct nvl_connect_info *ci)
{
	struct nvmf_auth *a;
	char why[256];
	int rc;

	if (!nvmf_auth_host_has_key(h))
		return 0;
	rc = keys_load(h, c->nvme.subnqn, &c->auth_keys, why, sizeof(why));
	if (rc < 0) {
		NVL_ERRLOG("%s: refusing host %s: %s", c->nvme.subnqn, h->nqn, why);
		if (ci->why && ci->why_len)
			snprintf(ci->why, ci->why_len, "the subsystem cannot authenticate this host");
		return rc;
	}
	rc = auth_create(c, 0, &a);
	if (rc < 0) {
		keys_put(c->auth_keys);
		c->auth_keys = NULL;
		return rc;
	}
	c->auth = &a->base;
	c->nvme.auth_required = true;
	return 0;
}

void
nvmf_auth_ctrlr_fini(struct nvl_nvmf_ctrlr *c)
{
	if (c->auth)
		auth_destroy(to_auth(c->auth));
	c->auth = NULL;
	keys_put(c->auth_keys);
	c->auth_keys = NULL;
}

/* nvmf_subsystem_set_keys: live controllers of host h take the new keys for
 * their next transaction (reactor 0, g_nvmf.lock held). A host entry without
 * keys leaves them their current ones until they reconnect. */
int
nvmf_auth_host_keys_changed(struct nvl_subsys *s, const struct nvmf_host *h, char *err,
			    size_t errlen)
{
	struct nvl_nvmf_ctrlr *c;
	struct nvmf_auth_keys *k = NULL;
	int rc;

	if (!nvmf_auth_host_has_key(h))
		return 0;
	rc = keys_load(h, s->nqn, &k, err, errlen);
	if (rc < 0)
		return rc;
	TAILQ_FOREACH(c, &s->ctrlrs, link) {
		if (strcmp(c->nvme.hostnqn, h->nqn) != 0 || !c->nvme.auth_required)
			continue;
		keys_put(c->auth_keys);
		c->auth_keys = keys_get(k);
	}
	keys_put(k);
	return 0;
}

/* ---- nvmf_set_config ---------------------------------------------------------- */

int
nvmf_auth_set_algorithms(const char *const *digests, unsigned ndigests,
			 const char *const *dhgroups, unsigned ndhgroups, char *err, size_t errlen)
{
	uint32_t d = 0, g = 0;

	for (unsigned i = 0; i < ndigests; i++) {
		int id = nvl_dhchap_hash_id(digests[i]);

		if (id < 0) {
			snprintf(err, errlen, "unknown digest '%s' (sha256, sha384, sha512)",
				 digests[i]);
			return -EINVAL;
		}
		d |= 1u << id;
	}
	for (unsigned i = 0; i < ndhgroups; i++) {
		int id = nvl_dhchap_dhgroup_id(dhgroups[i]);

		if (id < 0) {
			snprintf(err, errlen,
				 "unknown DH group '%s' (null, ffdhe2048, ffdhe3072, ffdhe4096, "
				 "ffdhe6144, ffdhe8192)",
				 dhgroups[i]);
			return -EINVAL;
		}
		g |= 1u << id;
	}
	if (digests && d == 0) {
		snprintf(err, errlen, "dhchap_digests may not be empty");
		return -EINVAL;
	}
	if (dhgroups && g == 0) {
		snprintf(err, errlen, "dhchap_dhgroups may not be empty");
		return -EINVAL;
	}
	if (digests)
		__atomic_store_n(&g_digests, d, __ATOMIC_RELAXED);
	if (dhgroups)
		__atomic_store_n(&g_dhgroups, g, __ATOMIC_RELAXED);
	return 0;
}

json_t *
nvmf_auth_config_json(void)
{
	json_t *d = json_array(), *g = json_array();
	uint32_t dm = __atomic_load_n(&g_digests, __ATOMIC_RELAXED);
	uint32_t gm = __atomic_load_n(&g_dhgroups, __ATOMIC_RELAXED);

	for (uint8_t id = 1; id <= NVL_NVMF_AUTH_HASH_SHA512; id++)
		if (dm & (1u << id))
			json_array_append_new(d, json_string(nvl_dhchap_hash_name(id)));
	for (uint8_t id = 0; id <= NVL_NVMF_AUTH_DHGROUP_8192; id++)
		if (gm & (1u << id))
			json_array_append_new(g, json_string(nvl_dhchap_dhgroup_name(id)));
	json_t *o = json_pack("{s:o, s:o}", "dhchap_digests", d, "dhchap_dhgroups", g);
	uint32_t st = __atomic_load_n(&g_step_timeout_ms, __ATOMIC_RELAXED);

	if (o && st)
		json_object_set_new(o, "dhchap_step_timeout_ms", json_integer(st));
	return o;
}

int
nvmf_auth_set_step_timeout(uint32_t ms, char *err, size_t errlen)
{
	if (ms != 0 && (ms < AUTH_STEP_TIMEOUT_MIN_MS || ms > AUTH_STEP_TIMEOUT_MAX_MS)) {
		snprintf(err, errlen, "dhchap_step_timeout_ms must be 0 (from the keep-alive "
				      "timeout) or %u..%u",
			 AUTH_STEP_TIMEOUT_MIN_MS, AUTH_STEP_TIMEOUT_MAX_MS);
		return -EINVAL;
	}
	__atomic_store_n(&g_step_timeout_ms, ms, __ATOMIC_RELAXED);
	return 0;
}

void
nvmf_auth_write_config(json_t *calls)
{
	json_array_append_new(calls, json_pack("{s:s, s:o}", "method", "nvmf_set_config", "params",
					       nvmf_auth_config_json()));
}
