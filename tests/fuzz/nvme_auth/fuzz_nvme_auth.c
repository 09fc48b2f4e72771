/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the target's DH-HMAC-CHAP transactions: what a
 * hostile host controls with Authentication Send/Receive (src/nvmf/auth.c,
 * the message decoders of src/proto/nvme_auth.c, the dispatch and gate of
 * src/nvme/nvme.c).
 *
 * Input: a series of operations [op][len lo][len hi][len bytes of payload]:
 *   op % 8 == 0  Authentication Send of the payload (any bytes)
 *             1  Authentication Receive with AL = len (data to a buffer of AL)
 *             2  a well-formed AUTH_Negotiate offering the payload's bytes as
 *                hash ids (first half) and DH group ids (second half)
 *             3  a correct Reply to the last Challenge received (the harness
 *                knows the keys, so the fuzzer reaches the later states),
 *                payload[0] bit 0: ask the controller to authenticate,
 *                payload[1..2]: byte to flip and its mask (0: none)
 *             4  Success2 for the transaction (payload[0]: T_ID change)
 *             5  a Keep Alive (the gate), then the periodic check at a time
 *                past the deadline if payload[0] is odd
 *             6  Authentication Send with SECP/SPSP/TL taken from the payload
 *                (the rest as the message)
 *             7  re-create the queue's state (a new I/O queue)
 * Every command goes through nvl_nvme_req_xfer() first, as the transports
 * do. Checked after each: its completion ran exactly once, no more data came
 * back than AL allowed. The allowed DH groups are null and ffdhe2048 (key
 * generation stays cheap); state is rebuilt for every input.
 */
#include "nvmf/auth.c"

#define MAX_OPS 64

static struct nvl_nvmf_ctrlr g_c;
static struct nvl_dhchap_key g_hkey, g_ckey;
static struct nvmf_auth *g_a;
static uint8_t g_chal[NVL_DHCHAP_MAX_MSG];
static size_t g_chal_len;
static uint16_t g_tid;

struct fz_done {
	int n;
	uint32_t xfer;
};

static void
fz_done_cb(struct nvl_nvme_req *req)
{
	struct fz_done *d = req->transport_ctx;

	d->n++;
	d->xfer = req->xfer_len;
}

static void
fz_run(struct nvl_nvme_cmd *cmd, void *buf, uint32_t cap)
{
	struct nvl_nvme_req r;
	struct fz_done d = { 0 };
	uint32_t len = 0;
	uint8_t dir;
	uint16_t st;

	memset(&r, 0, sizeof(r));
	r.cmd = *cmd;
	r.ctrlr = &g_c.nvme;
	r.done = fz_done_cb;
	r.transport_ctx = &d;
	r.auth = g_a ? &g_a->base : NULL;
	r.iov = r.iov_inline;
	st = nvl_nvme_req_xfer(&r, &len, &dir);
	if (st == 0 && len > cap)
		st = NVL_NVME_SC_INVALID_FIELD | NVL_NVME_STATUS_DNR;
	r.iov_inline[0].iov_base = buf;
	r.iov_inline[0].iov_len = len;
	r.iovcnt = len ? 1 : 0;
	r.data_len = len;
	r.xfer = dir;
	if (st)
		nvl_nvme_req_complete(&r, st);
	else
		nvl_nvme_execute(&r);
	if (d.n != 1 || d.xfer > len)
		abort();
	if (cmd->opc == NVL_NVME_ADM_FABRICS &&
	    ((struct nvl_nvmf_auth_cmd *)cmd)->fctype == NVL_NVMF_FCTYPE_AUTH_RECV && d.xfer) {
		g_chal_len = d.xfer;
		memcpy(g_chal, buf, NVL_MIN((size_t)d.xfer, sizeof(g_chal)));
	}
}

static struct nvl_nvme_cmd
fz_auth_cmd(bool send, uint32_t len)
{
	struct nvl_nvme_cmd c;
	struct nvl_nvmf_auth_cmd *a = (void *)&c;

	memset(&c, 0, sizeof(c));
	a->opc = NVL_NVME_ADM_FABRICS;
	a->fctype = send ? NVL_NVMF_FCTYPE_AUTH_SEND : NVL_NVMF_FCTYPE_AUTH_RECV;
	a->secp = NVL_NVMF_AUTH_SECP;
	a->spsp0 = a->spsp1 = NVL_NVMF_AUTH_SPSP;
	a->al_tl = len;
	return c;
}

static void
fz_send(const void *msg, size_t len)
{
	uint8_t buf[NVL_NVME_AUTH_MAX_SEND];
	struct nvl_nvme_cmd c = fz_auth_cmd(true, (uint32_t)len);

	memcpy(buf, msg, NVL_MIN(len, sizeof(buf)));
	fz_run(&c, buf, sizeof(buf));
}

/* The correct Reply to the last Challenge (if it is one). */
static void
fz_reply(const uint8_t *p, size_t n)
{
	struct nvl_dhchap_challenge_info ci;
	struct nvl_dhchap_dh *dh = NULL;
	uint8_t msg[NVL_DHCHAP_MAX_MSG], r1[64], tk[64], c2[64] = { 1 }, dhv[1024], sess[1024];
	size_t tl = 0;
	int len;

	if (nvl_dhchap_challenge_decode(g_chal, g_chal_len, &ci) < 0)
		return;
	if (ci.dhvlen) {
		if (nvl_dhchap_dh_create(ci.dhgid, &dh) < 0 ||
		    nvl_dhchap_dh_public(dh, dhv, ci.dhvlen) < 0 ||
		    nvl_dhchap_dh_derive(dh, ci.dhv, ci.dhvlen, sess, ci.dhvlen) < 0) {
			nvl_dhchap_dh_destroy(dh);
			return;
		}
		nvl_dhchap_dh_destroy(dh);
	}
	if (nvl_dhchap_key_transform(&g_hkey, g_c.nvme.hostnqn, tk, &tl) < 0 ||
	    nvl_dhchap_response(ci.hashid, tk, tl, ci.c1, sess, ci.dhvlen, ci.seqnum, ci.tid, 0,
				false, g_c.nvme.hostnqn, g_c.nvme.subnqn, r1) < 0)
		return;
	g_tid = ci.tid;
	len = nvl_dhchap_reply_encode(msg, sizeof(msg), ci.tid, ci.hl, r1,
				      n > 0 && (p[0] & 1) ? c2 : NULL, 77, ci.dhvlen ? dhv : NULL,
				      ci.dhvlen);
	if (len <= 0)
		return;
	if (n > 2 && p[2])
		msg[p[1] % len] ^= p[2];
	fz_send(msg, (size_t)len);
}

static void
fz_setup(void)
{
	struct nvmf_auth_keys *k;
	struct nvmf_auth *a = NULL;

	memset(&g_c, 0, sizeof(g_c));
	if (nvl_nvme_ctrlr_init(&g_c.nvme) < 0)
		abort();
	nvl_strlcpy(g_c.nvme.hostnqn, "nqn.2026-01.io.nvlend.fuzz:host", sizeof(g_c.nvme.hostnqn));
	nvl_strlcpy(g_c.nvme.subnqn, "nqn.2026-01.io.nvlend.fuzz:sub", sizeof(g_c.nvme.subnqn));
	g_c.nvme.csts = NVL_NVME_CSTS_RDY;
	g_c.nvme.auth_required = true;
	g_c.nvme.kato_ms = 5000;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		abort();
	k->refs = 1;
	nvl_dhchap_key_transform(&g_hkey, g_c.nvme.hostnqn, k->host, &k->host_len);
	nvl_dhchap_key_transform(&g_ckey, g_c.nvme.subnqn, k->ctrl, &k->ctrl_len);
	g_c.auth_keys = k;
	if (auth_create(&g_c, 0, &a) < 0)
		abort();
	g_c.auth = &a->base;
	g_a = a;
	g_chal_len = 0;
	g_tid = 0;
}

static void
fz_teardown(void)
{
	if (g_a && &g_a->base != g_c.auth)
		auth_destroy(g_a);
	g_a = NULL;
	nvmf_auth_ctrlr_fini(&g_c);
	nvl_nvme_ctrlr_fini(&g_c.nvme);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *d[] = { "sha256", "sha384", "sha512" }, *g[] = { "null", "ffdhe2048" };
	char err[64];

	(void)argc;
	(void)argv;
	nvl_log_set_level(0);
	nvl_log_set_fd(-1, false);
	nvmf_auth_set_algorithms(d, 3, g, 2, err, sizeof(err));
	/* fixed keys: inputs replay the same way */
	g_hkey.hmac = 1;
	g_hkey.len = 32;
	g_ckey.hmac = 2;
	g_ckey.len = 48;
	for (int i = 0; i < 64; i++) {
		g_hkey.key[i] = (uint8_t)(i * 3 + 1);
		g_ckey.key[i] = (uint8_t)(i * 5 + 2);
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[NVL_NVME_AUTH_MAX_RECV];
	size_t off = 0;
	unsigned ops = 0;

	fz_setup();
	while (off + 3 <= size && ops++ < MAX_OPS) {
		uint8_t op = data[off] % 8;
		size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
		const uint8_t *p = data + off + 3;
		size_t n = NVL_MIN(len, size - off - 3);
		struct nvl_nvme_cmd c;

		off += 3 + n;
		switch (op) {
		case 0:
			c = fz_auth_cmd(true, (uint32_t)n);
			memcpy(buf, p, n);
			fz_run(&c, buf, sizeof(buf));
			break;
		case 1:
			c = fz_auth_cmd(false, (uint32_t)len);
			fz_run(&c, buf, sizeof(buf));
			break;
		case 2: {
			uint8_t m[128];
			unsigned nh = (unsigned)NVL_MIN(n / 2, (size_t)NVL_NVMF_AUTH_MAX_IDS);
			unsigned ng = (unsigned)NVL_MIN(n - n / 2, (size_t)NVL_NVMF_AUTH_MAX_IDS);
			int l = nvl_dhchap_negotiate_encode(m, sizeof(m), (uint16_t)len, p, nh, p + n / 2,
							    ng);

			if (l > 0)
				fz_send(m, (size_t)l);
			break;
		}
		case 3:
			fz_reply(p, n);
			break;
		case 4: {
			uint8_t m[16];

			nvl_dhchap_success2_encode(m, sizeof(m), (uint16_t)(g_tid + (n ? p[0] : 0)));
			fz_send(m, sizeof(m));
			break;
		}
		case 5: {
			const char *why;

			memset(&c, 0, sizeof(c));
			c.opc = NVL_NVME_ADM_KEEP_ALIVE;
			fz_run(&c, buf, 0);
			if (n && (p[0] & 1) && g_a)
				(void)nvl_nvmf_auth_expired(&g_a->base, UINT64_MAX / 2, &why);
			break;
		}
		case 6:
			if (n >= 7) {
				struct nvl_nvmf_auth_cmd *a = (void *)&c;

				c = fz_auth_cmd(true, 0);
				a->secp = p[0];
				a->spsp0 = p[1];
				a->spsp1 = p[2];
				memcpy(&a->al_tl, p + 3, 4);
				memset(buf, 0, 64);
				memcpy(buf, p + 7, NVL_MIN(n - 7, sizeof(buf)));
				fz_run(&c, buf, sizeof(buf));
			}
			break;
		case 7: {
			struct nvl_nvme_auth *q = NULL;

			if (g_a && &g_a->base != g_c.auth)
				auth_destroy(g_a);
			if (nvl_nvmf_auth_queue_create(&g_c, 1, &q) == 0)
				g_a = to_auth(q);
			break;
		}
		}
	}
	fz_teardown();
	return 0;
}
