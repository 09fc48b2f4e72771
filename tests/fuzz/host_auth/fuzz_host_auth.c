/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the host's DH-HMAC-CHAP transaction
 * (src/host/host_auth.c): what a hostile controller controls, the
 * Challenge, Success1 and Failure1 it returns to Authentication Receive and
 * the status of every command.
 *
 * Input: byte 0: bit 0 bidirectional (a controller key), bit 1 DH group
 * ffdhe2048 (else null), bits 2-3 the hash; then per command one step
 * [mode][a][b] and, for mode 2, [len lo][len hi][len bytes]:
 *   mode % 4 == 0  the correct answer (a Receive: what an honest controller
 *                  with the right keys returns)
 *             1  the correct answer with byte a flipped by b (b 0: none)
 *             2  the bytes given (a Receive; a Send completes normally)
 *             3  an error status
 * Checked: the transaction ends within 8 commands; what host_auth_next()
 * returns never changes once it ended; and it succeeds only if the
 * controller proved itself: with a controller key, the Success1 it accepted
 * carried the right R2.
 */
#include "host/host_auth.c"

#define HOSTNQN "nqn.2026-01.io.nvlend.fuzz:host"
#define SUBNQN "nqn.2026-01.io.nvlend.fuzz:sub"

static struct nvl_dhchap_key g_hkey, g_ckey;
static uint8_t g_buf[NVL_DHCHAP_MAX_MSG];

struct fz {
	const uint8_t *p;
	size_t n;
	uint8_t hashid, dhgid, hl;
	uint16_t tid;
	uint8_t c1[NVL_DHCHAP_MAX_HASH];
	struct nvl_dhchap_dh *dh;
	uint8_t r2[NVL_DHCHAP_MAX_HASH];
	bool have_r2;
	bool r2_accepted_ok; /* the last Success1 delivered carried the right R2 */
};

static int
take(struct fz *f)
{
	if (f->n == 0)
		return 0;
	f->n--;
	return *f->p++;
}

/* What an honest controller answers to Receive number step (1: Challenge). */
static int
honest_recv(struct fz *f, uint8_t *buf, uint32_t al, int step)
{
	uint8_t dhv[NVL_DHCHAP_MAX_DH];
	size_t dl = nvl_dhchap_dhgroup_len(f->dhgid);

	if (step == 1) {
		memset(f->c1, 0x5a, f->hl);
		nvl_dhchap_dh_destroy(f->dh);
		f->dh = NULL;
		if (dl && (nvl_dhchap_dh_create(f->dhgid, &f->dh) < 0 ||
			   nvl_dhchap_dh_public(f->dh, dhv, dl) < 0))
			abort();
		return nvl_dhchap_challenge_encode(buf, al, f->tid, f->hashid, f->dhgid, 1, f->c1,
						   dl ? dhv : NULL, dl);
	}
	return nvl_dhchap_success1_encode(buf, al, f->tid, f->hl, f->have_r2 ? f->r2 : NULL);
}

/* The controller's side of a Reply: compute the R2 an honest one sends. */
static void
honest_on_reply(struct fz *f, const uint8_t *msg, uint32_t len)
{
	struct nvl_dhchap_reply_info ri;
	uint8_t sess[NVL_DHCHAP_MAX_DH], tk[NVL_DHCHAP_MAX_HASH];
	size_t sl = nvl_dhchap_dhgroup_len(f->dhgid), tkl;

	f->have_r2 = false;
	if (nvl_dhchap_reply_decode(msg, len, f->hl, &ri) < 0 || !ri.cvalid)
		return;
	if (sl && (f->dh == NULL || nvl_dhchap_dh_derive(f->dh, ri.dhv, ri.dhvlen, sess, sl) < 0))
		return;
	if (nvl_dhchap_key_transform(&g_ckey, SUBNQN, tk, &tkl) < 0 ||
	    nvl_dhchap_response(f->hashid, tk, tkl, ri.c2, sess, sl, ri.seqnum, f->tid, 0, true,
				HOSTNQN, SUBNQN, f->r2) < 0)
		return;
	f->have_r2 = true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	struct fz f = { .p = data, .n = size };
	struct host_auth *a;
	uint8_t flags;
	bool bidir;
	int rc = 1, recv_step = 0, steps = 0;

	if (!init) {
		if (nvl_dhchap_key_generate(1, 32, &g_hkey) < 0 ||
		    nvl_dhchap_key_generate(2, 48, &g_ckey) < 0)
			abort();
		init = true;
	}
	flags = (uint8_t)take(&f);
	bidir = flags & 1;
	f.dhgid = (flags & 2) ? NVL_NVMF_AUTH_DHGROUP_2048 : NVL_NVMF_AUTH_DHGROUP_NULL;
	f.hashid = (uint8_t)(1 + ((flags >> 2) & 3) % 3);
	f.hl = (uint8_t)nvl_dhchap_hash_len(f.hashid);
	if (host_auth_create(&g_hkey, bidir ? &g_ckey : NULL, HOSTNQN, SUBNQN, 0, &a) < 0)
		abort();
	f.tid = a->tid;
	for (;;) {
		struct nvl_nvme_cmd cmd;
		struct nvl_nvme_cpl cpl = { 0 };
		const struct nvl_nvmf_auth_cmd *ac = (const void *)&cmd;
		uint32_t len = 0;
		uint8_t dir = 0;
		int mode, x, y, n;

		rc = host_auth_next(a, &cmd, g_buf, sizeof(g_buf), &len, &dir);
		if (rc <= 0)
			break;
		if (++steps > 8 || len > sizeof(g_buf))
			abort();
		mode = take(&f) % 4;
		x = take(&f);
		y = take(&f);
		if (mode == 3) {
			cpl.status = (uint16_t)(NVL_NVME_SC_INVALID_FIELD << 1);
			(void)host_auth_complete(a, &cpl, g_buf, len);
			continue;
		}
		if (ac->fctype == NVL_NVMF_FCTYPE_AUTH_SEND) {
			struct nvl_nvmf_auth_hdr h;

			if (nvl_dhchap_hdr_decode(g_buf, len, &h) == 0 &&
			    h.auth_type == NVL_NVMF_AUTH_TYPE_DHCHAP &&
			    h.auth_id == NVL_NVMF_AUTH_ID_REPLY)
				honest_on_reply(&f, g_buf, len);
			(void)host_auth_complete(a, &cpl, NULL, 0);
			continue;
		}
		recv_step++;
		if (mode == 2) {
			n = take(&f) | take(&f) << 8;
			n = (int)NVL_MIN((size_t)n, NVL_MIN(f.n, (size_t)len));
			memset(g_buf, 0, len);
			memcpy(g_buf, f.p, (size_t)n);
			f.p += n;
			f.n -= (size_t)n;
		} else {
			memset(g_buf, 0, len);
			n = honest_recv(&f, g_buf, len, recv_step);
			if (n < 0)
				abort();
			if (mode == 1 && n > 0)
				g_buf[x % n] ^= (uint8_t)y;
		}
		/* what the host sees: was the R2 in it right? */
		{
			struct nvl_dhchap_success1_info si;

			f.r2_accepted_ok =
				f.have_r2 &&
				nvl_dhchap_success1_decode(g_buf, len, f.hl, &si) == 0 &&
				si.rvalid && memcmp(si.r2, f.r2, f.hl) == 0;
		}
		(void)host_auth_complete(a, &cpl, g_buf, mode == 2 ? (uint32_t)n : len);
	}
	if (rc == 0 && bidir && !f.r2_accepted_ok)
		abort(); /* authenticated a controller that did not prove itself */
	{
		struct nvl_nvme_cmd cmd;
		uint32_t len;
		uint8_t dir;

		if (host_auth_next(a, &cmd, g_buf, sizeof(g_buf), &len, &dir) != rc)
			abort();
	}
	nvl_dhchap_dh_destroy(f.dh);
	host_auth_destroy(a);
	return 0;
}
