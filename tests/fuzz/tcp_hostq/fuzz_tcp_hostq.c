/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the NVMe/TCP initiator queue pair
 * (src/host/tcp_hostq.c, included): everything a hostile controller can
 * send to libnvlend's TCP transport and the nvme_tcp bdev. The queue pair
 * runs over one end of a socketpair; the input supplies the controller's
 * byte stream (ICResp, CapsuleResp, C2HData, R2T, C2HTermReq, garbage) and
 * the commands the owner submits between chunks of it.
 *
 * Input: byte 0 is the mode:
 *   bit 0/1  ask for header / data digests    bit 2  disable SQ flow control
 *   bit 3    an I/O queue (qid 1) instead of the admin queue
 *   bit 4-5  queue entries 2, 4, 8 or 32     bit 6  the harness plays a valid
 *            ICResp and Connect response first (inputs start READY)
 *   bit 7    the in-capsule data limit is 0 (writes all go through R2T)
 * then records [op][len lo][len hi][payload]:
 *   op % 4 == 0  controller bytes: payload written to the socket
 *            1   submit: [dir][len u32 LE][iovecs] (dir % 3: none, H2C, C2H)
 *            2   process only
 *            3   the owner fails the queue (timeout), if payload[0] is 0xA5
 * After each record the queue is processed and what it sent is drained.
 *
 * Checks (__builtin_trap): every submitted command completes exactly once
 * and only with its own argument, no completion comes for a command that
 * was not submitted, received data lands only inside each command's own
 * buffers (each a separate allocation of exactly its length, so ASan sees
 * any byte beyond), outstanding never exceeds the queue, and a failed queue
 * stays failed and completes everything it had.
 */
#include "host/tcp_hostq.c"

#include <fcntl.h>
#include <sys/socket.h>

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

#define FZ_MAX_CMDS 64
#define FZ_MAX_DATA (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_cmd {
	bool used, done;
	uint32_t len;
	int iovcnt;
	uint8_t *bufs[4];
	struct iovec iov[4];
};

static struct fz_cmd g_cmds[FZ_MAX_CMDS];
static unsigned g_ncmds, g_pending;

static void
fz_cb(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct fz_cmd *c = arg;

	(void)cpl;
	CHECK(c >= g_cmds && c < g_cmds + FZ_MAX_CMDS && c->used);
	CHECK(!c->done);
	c->done = true;
	CHECK(g_pending > 0);
	g_pending--;
}

/* nvl_tcp_hq_create() over an already connected socket (the harness's end). */
static struct nvl_tcp_hq *
fz_hq_create(const struct nvl_tcp_hq_opts *o, int fd)
{
	struct nvl_tcp_hq *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->o = *o;
	nvl_strlcpy(q->subnqn, o->subnqn, sizeof(q->subnqn));
	nvl_strlcpy(q->hostnqn, o->hostnqn, sizeof(q->hostnqn));
	memcpy(q->hostid, o->hostid, 16);
	q->o.subnqn = q->subnqn;
	q->o.hostnqn = q->hostnqn;
	q->o.hostid = q->hostid;
	q->nreqs = o->entries;
	q->reqs = calloc(q->nreqs, sizeof(*q->reqs));
	q->stage = malloc(HQ_STAGE_SIZE);
	if (q->reqs == NULL || q->stage == NULL)
		abort();
	for (uint32_t i = q->nreqs; i-- > 0;) {
		q->reqs[i].cid = (uint16_t)i;
		q->reqs[i].next_free = q->free_reqs;
		q->free_reqs = &q->reqs[i];
	}
	nvl_tcp_txq_init(&q->txq);
	nvl_tcp_rx_init(&q->rx, true, NVL_MAX(o->max_data, 4096u));
	q->cpda_align = 4;
	q->fd = fd;
	q->phase = HQ_TCP_CONNECT;
	return q;
}

static void
drain(int fd)
{
	uint8_t buf[65536];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

static void
send_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len > 0) {
		ssize_t n = send(fd, b, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n <= 0)
			return; /* buffer full: the rest is lost, as on a reset */
		b += n;
		len -= (size_t)n;
	}
}

static void
process(struct nvl_tcp_hq *q, int peer)
{
	for (int i = 0; i < 4; i++) {
		int rc = nvl_tcp_hq_process(q);

		CHECK(nvl_tcp_hq_outstanding(q) < q->nreqs);
		drain(peer);
		if (rc <= 0)
			break;
	}
	if (nvl_tcp_hq_state(q) == NVL_TCP_HQ_FAILED)
		CHECK(nvl_tcp_hq_outstanding(q) == 0);
}

/* The controller's side of a good start: ICResp, then the Connect response. */
static void
prologue(struct nvl_tcp_hq *q, int peer, uint8_t mode)
{
	struct nvl_tcp_icresp ic = { 0 };
	uint8_t buf[sizeof(struct nvl_tcp_resp) + NVL_TCP_DIGEST_LEN];
	struct nvl_tcp_resp *rp = (void *)buf;

	process(q, peer); /* sends the ICReq */
	ic.ch.pdu_type = NVL_TCP_PDU_ICRESP;
	ic.ch.hlen = sizeof(ic);
	ic.ch.plen = sizeof(ic);
	ic.pfv = NVL_TCP_PFV_1_0;
	ic.dgst = (uint8_t)(mode & 3);
	ic.maxh2cdata = 8192;
	send_all(peer, &ic, sizeof(ic));
	memset(buf, 0, sizeof(buf));
	nvl_tcp_ch_init(&rp->ch, NVL_TCP_PDU_CAPSULE_RESP, mode & 1, false, 0, 0);
	rp->rccqe.cid = 0; /* the Connect takes the first slot */
	rp->rccqe.cdw0 = 1;
	if (mode & 1)
		nvl_tcp_hdgst_set(rp);
	send_all(peer, buf, rp->ch.plen);
	process(q, peer);
}

static void
submit(struct nvl_tcp_hq *q, const uint8_t *p, size_t len)
{
	struct nvl_nvme_cmd cmd = { 0 };
	struct fz_cmd *c;
	uint8_t dir;
	uint32_t dlen, left;
	int rc;

	if (len < 5 || g_ncmds == FZ_MAX_CMDS)
		return;
	dir = p[0] % 3;
	memcpy(&dlen, p + 1, 4);
	dlen = dir ? dlen % (FZ_MAX_DATA + 1) : 0;
	c = &g_cmds[g_ncmds];
	memset(c, 0, sizeof(*c));
	/* the data in up to 4 separate pieces whose sizes the input picks */
	left = dlen;
	for (size_t i = 5; left > 0 && c->iovcnt < 4; i++) {
		uint32_t piece = c->iovcnt == 3 || i >= len ? left
				 : NVL_MIN(left, ((uint32_t)p[i] + 1) * 512u);

		c->bufs[c->iovcnt] = malloc(piece);
		if (c->bufs[c->iovcnt] == NULL)
			abort();
		memset(c->bufs[c->iovcnt], 0x5a, piece);
		c->iov[c->iovcnt] = (struct iovec){ c->bufs[c->iovcnt], piece };
		c->iovcnt++;
		left -= piece;
	}
	c->len = dlen;
	cmd.opc = dir == 2 ? NVL_NVME_IO_READ : dir == 1 ? NVL_NVME_IO_WRITE : NVL_NVME_IO_FLUSH;
	cmd.nsid = 1;
	rc = nvl_tcp_hq_submit(q, &cmd, c->iov, c->iovcnt, dlen, dir, fz_cb, c);
	if (rc == 0) {
		c->used = true;
		g_ncmds++;
		g_pending++;
		CHECK(cmd.cid < q->nreqs);
		return;
	}
	CHECK(rc == -EAGAIN || rc == -ENOTCONN || rc == -EINVAL);
	for (int i = 0; i < c->iovcnt; i++)
		free(c->bufs[i]);
	memset(c, 0, sizeof(*c));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t entries[4] = { 2, 4, 8, 32 };
	static const uint8_t hostid[16] = { 1, 2, 3 };
	struct nvl_tcp_hq_opts o = { 0 };
	struct nvl_tcp_hq *q;
	uint8_t mode;
	size_t off = 1;
	int sv[2];

	if (size < 1)
		return 0;
	mode = data[0];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	o.subnqn = "nqn.2024-01.io.nvlend:fuzz";
	o.hostnqn = "nqn.2024-01.io.nvlend:host";
	o.hostid = hostid;
	o.qid = (mode & 8) ? 1 : 0;
	o.entries = entries[(mode >> 4) & 3];
	o.cntlid = o.qid ? 1 : 0xffff;
	o.kato_ms = 10000;
	o.hdgst = mode & 1;
	o.ddgst = (mode & 2) != 0;
	o.disable_sqflow = (mode & 4) != 0;
	o.icd_max = (mode & 0x80) ? 0 : 8192;
	o.max_data = FZ_MAX_DATA;
	q = fz_hq_create(&o, sv[0]);
	if (q == NULL)
		abort();
	g_ncmds = 0;
	g_pending = 0;
	if (mode & 0x40)
		prologue(q, sv[1], mode);
	while (off + 3 <= size) {
		uint8_t op = data[off] % 4;
		size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
		const uint8_t *p = data + off + 3;
		bool was_failed = nvl_tcp_hq_state(q) == NVL_TCP_HQ_FAILED;

		off += 3;
		len = NVL_MIN(len, size - off);
		off += len;
		switch (op) {
		case 0:
			send_all(sv[1], p, len);
			break;
		case 1:
			submit(q, p, len);
			break;
		case 3:
			if (len > 0 && p[0] == 0xa5)
				nvl_tcp_hq_fail(q, "fuzz: owner timeout", NVL_NVME_SC_ABORTED_SQ_DELETION);
			break;
		default:
			break;
		}
		process(q, sv[1]);
		if (was_failed)
			CHECK(nvl_tcp_hq_state(q) == NVL_TCP_HQ_FAILED);
	}
	/* what never completed is forgotten by destroy (no callback), by contract */
	if (nvl_tcp_hq_state(q) == NVL_TCP_HQ_FAILED)
		CHECK(g_pending == 0);
	CHECK(g_pending == nvl_tcp_hq_outstanding(q) - (q->phase == HQ_CONNECT_WAIT ? 1 : 0));
	if (getenv("NVL_FUZZ_VERBOSE"))
		fprintf(stderr, "fuzz_tcp_hostq: phase %d, %u commands, error: %s\n", q->phase,
			g_ncmds, q->err);
	nvl_tcp_hq_destroy(q);
	close(sv[1]);
	for (unsigned i = 0; i < g_ncmds; i++)
		for (int k = 0; k < g_cmds[i].iovcnt; k++)
			free(g_cmds[i].bufs[k]);
	return 0;
}
