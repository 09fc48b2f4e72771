/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the host core (src/host/ctrlr.c, qpair.c) against a mock
 * transport that stands in for both shm and tcp (this file defines the two
 * ops tables, so the real transports are not linked): association set-up
 * with and without the fabrics enable sequence, namespace scan, keep-alive,
 * admin timeouts, loss and the reconnect backoff (time passed in, no
 * sleeping), fast-io-fail and giving up, the owner refusing a reconnected
 * association, and the queue pairs' side: keeping idempotent commands
 * across a loss and resubmitting them in slot order, aborting the rest,
 * failing what is kept once I/O must fail, path-error statuses, and a
 * controller that does not reconnect (libnvlend's policy).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "host/ctrlr.c"
#include "host/qpair.c"

#define S(x) ((uint64_t)(x) * 1000000000ULL)

/* ---- mock transport -------------------------------------------------------------------------- */

struct mock_tq {
	struct host_tq base;
	struct nvl_nvme_cmd cmds[64];
	unsigned ncmds;
	struct nvl_nvme_cpl cpl[64];
	unsigned ncpl;
	bool fail;                    /* poll reports the queue lost */
};

static struct {
	int start_rc;
	bool up;                      /* transport connected (reported once) */
	bool fail_assoc;              /* process fails the association */
	bool hold_admin;              /* leave admin commands unanswered */
	unsigned csts_not_ready;      /* CSTS reads that say "not ready" first */
	uint16_t ka_status;
	unsigned starts, stops, byes, tq_connects, tq_destroys;
	struct host_admin_req *sent[HOST_ADMIN_SLOTS];
	unsigned nsent;
	struct host_qpair *connecting[HOST_MAX_QUEUES];
	unsigned nconnecting;
	bool tq_connect_fail;
	uint32_t nsze;                /* namespace 1's size (2 is always 1000 blocks) */
	uint8_t ns1_uuid;
	unsigned opcodes[256];
} g_mock;

static int g_tok;

static int
mock_assoc_start(struct host_ctrlr *c, uint64_t now)
{
	(void)now;
	g_mock.starts++;
	if (g_mock.start_rc)
		return g_mock.start_rc;
	c->tctx = &g_tok;
	g_mock.up = false;
	return 0;
}

static void
mock_assoc_stop(struct host_ctrlr *c)
{
	g_mock.stops++;
	g_mock.nsent = 0;
	g_mock.nconnecting = 0;
	c->tctx = NULL;
}

static void
mock_bye(struct host_ctrlr *c)
{
	(void)c;
	g_mock.byes++;
}

static int
mock_admin_send(struct host_ctrlr *c, struct host_admin_req *a)
{
	(void)c;
	g_mock.sent[g_mock.nsent++] = a;
	g_mock.opcodes[a->cmd.opc]++;
	a->sent = true;
	return 0;
}

/* Answer one admin command as a healthy controller with two namespaces. */
static void
mock_answer(struct host_ctrlr *c, struct host_admin_req *a)
{
	struct nvl_nvme_cpl cpl = { 0 };
	uint8_t *b = a->buf;

	cpl.cid = a->cmd.cid;
	switch (a->cmd.opc) {
	case NVL_NVME_ADM_IDENTIFY:
		memset(b, 0, a->len);
		if (a->cmd.cdw10 == NVL_NVME_CNS_CTRLR) {
			struct nvl_nvme_id_ctrl *id = (void *)b;

			id->mdts = 5;
			id->oncs = NVL_NVME_ONCS_WRITE_ZEROES;
			id->ioccsz = 4;
		} else if (a->cmd.cdw10 == NVL_NVME_CNS_ACTIVE_NS_LIST) {
			((uint32_t *)b)[0] = 1;
			((uint32_t *)b)[1] = 2;
		} else if (a->cmd.cdw10 == NVL_NVME_CNS_NS) {
			struct nvl_nvme_id_ns *ns = (void *)b;

			ns->nsze = a->cmd.nsid == 1 ? g_mock.nsze : 1000;
			ns->lbaf[0].lbads = 12;
			ns->nguid[0] = (uint8_t)a->cmd.nsid;
		} else if (a->cmd.cdw10 == NVL_NVME_CNS_NS_ID_DESCRIPTORS) {
			b[0] = NVL_NVME_NIDT_UUID;
			b[1] = 16;
			b[4] = a->cmd.nsid == 1 ? g_mock.ns1_uuid : 0x22;
		}
		break;
	case NVL_NVME_ADM_FABRICS: {
		const struct nvl_nvmf_property_cmd *p = (const void *)&a->cmd;

		if (p->ofst == NVL_NVME_REG_CAP) {
			cpl.cdw0 = 127 | (1u << 24); /* MQES 127, TO 500 ms */
		} else if (p->ofst == NVL_NVME_REG_CSTS) {
			if (g_mock.csts_not_ready) {
				g_mock.csts_not_ready--;
				cpl.cdw0 = 0;
			} else {
				cpl.cdw0 = NVL_NVME_CSTS_RDY | NVL_NVME_CSTS_SHST_COMPLETE;
			}
		}
		break;
	}
	case NVL_NVME_ADM_SET_FEATURES:
		cpl.cdw0 = a->cmd.cdw11;
		break;
	case NVL_NVME_ADM_KEEP_ALIVE:
		cpl.status = NVL_NVME_SC_TO_STATUS(g_mock.ka_status);
		break;
	default:
		break;
	}
	host_admin_complete(c, a, &cpl, NULL, 0);
}

static int
mock_process(struct host_ctrlr *c, uint64_t now)
{
	int n = 0;

	(void)now;
	if (g_mock.fail_assoc) {
		g_mock.fail_assoc = false;
		host_assoc_fail(c, -ECONNRESET, "mock: connection lost");
		return 1;
	}
	if (!g_mock.up) {
		g_mock.up = true;
		c->cntlid = 7;
		c->max_io_queues = 4;
		if (!c->ops->fabrics)
			c->max_queue_entries = 256;
		host_assoc_transport_ready(c);
		return 1;
	}
	while (!g_mock.hold_admin && g_mock.nsent > 0 && c->tctx) {
		struct host_admin_req *a = g_mock.sent[0];

		/* shift by hand: valgrind takes a fortified memmove for memcpy */
		for (unsigned i = 1; i < g_mock.nsent; i++)
			g_mock.sent[i - 1] = g_mock.sent[i];
		g_mock.nsent--;
		mock_answer(c, a);
		n++;
	}
	while (g_mock.nconnecting > 0 && c->tctx) {
		struct host_qpair *qp = g_mock.connecting[0];
		struct mock_tq *t;

		for (unsigned i = 1; i < g_mock.nconnecting; i++)
			g_mock.connecting[i - 1] = g_mock.connecting[i];
		g_mock.nconnecting--;
		if (g_mock.tq_connect_fail) {
			host_tq_failed(c, qp, -EREMOTEIO, "mock: queue refused");
			continue;
		}
		t = calloc(1, sizeof(*t));
		t->base.ops = c->ops;
		host_tq_connected(c, qp, &t->base);
		n++;
	}
	return n;
}

static int
mock_fds(struct host_ctrlr *c, struct pollfd *p, int max)
{
	(void)c;
	(void)p;
	(void)max;
	return 0;
}

static int
mock_tq_connect(struct host_ctrlr *c, struct host_qpair *qp)
{
	(void)c;
	g_mock.tq_connects++;
	g_mock.connecting[g_mock.nconnecting++] = qp;
	return 0;
}

static void
mock_tq_destroy(struct host_tq *tq)
{
	g_mock.tq_destroys++;
	free(tq);
}

static int
mock_submit(struct host_qpair *qp, struct host_tq *tq, struct host_req *r, struct nvl_nvme_cmd *cmd,
	    const struct iovec *iov, int iovcnt)
{
	struct mock_tq *t = (struct mock_tq *)tq;

	(void)qp;
	(void)r;
	(void)iov;
	(void)iovcnt;
	if (t->fail)
		return -ENOTCONN;
	t->cmds[t->ncmds++ % 64] = *cmd;
	return 0;
}

static int
mock_poll(struct host_qpair *qp, struct host_tq *tq, uint32_t max)
{
	struct mock_tq *t = (struct mock_tq *)tq;
	unsigned n = t->ncpl;

	(void)max;
	if (t->fail) {
		host_qpair_lost(qp, "mock: I/O queue lost");
		return 0;
	}
	t->ncpl = 0;
	for (unsigned i = 0; i < n; i++)
		host_qpair_complete(qp, &t->cpl[i]);
	return (int)n;
}

static int
mock_tq_fds(const struct host_tq *tq, struct pollfd *p, int max)
{
	(void)tq;
	(void)p;
	(void)max;
	return 0;
}

const struct host_transport_ops g_host_shm_ops = {
	.name = "mock-shm",
	.kind = NVL_URI_NVME_SHM,
	.delete_queues = true,
	.assoc_start = mock_assoc_start,
	.assoc_stop = mock_assoc_stop,
	.assoc_bye = mock_bye,
	.process = mock_process,
	.fds = mock_fds,
	.admin_send = mock_admin_send,
	.tq_connect = mock_tq_connect,
	.tq_destroy = mock_tq_destroy,
	.submit = mock_submit,
	.poll = mock_poll,
	.tq_fds = mock_tq_fds,
};

const struct host_transport_ops g_host_tcp_ops = {
	.name = "mock-tcp",
	.kind = NVL_URI_NVME_TCP,
	.fabrics = true,
	.assoc_start = mock_assoc_start,
	.assoc_stop = mock_assoc_stop,
	.process = mock_process,
	.fds = mock_fds,
	.admin_send = mock_admin_send,
	.tq_connect = mock_tq_connect,
	.tq_destroy = mock_tq_destroy,
	.submit = mock_submit,
	.poll = mock_poll,
	.tq_fds = mock_tq_fds,
};

void
host_digests_from_env(struct host_ctrlr_opts *o)
{
	(void)o;
}

/* ---- the owner --------------------------------------------------------------------------------- */

static struct {
	unsigned ev[HOST_EV_CLOSED + 1];
	int reconnected_rc;
	unsigned kicks;
} g_owner;

static int
owner_event(void *arg, struct host_ctrlr *c, enum host_event ev)
{
	(void)arg;
	(void)c;
	g_owner.ev[ev]++;
	return ev == HOST_EV_RECONNECTED ? g_owner.reconnected_rc : 0;
}

static void
owner_qpair_kick(void *arg, struct host_qpair *qp)
{
	(void)arg;
	(void)qp;
	g_owner.kicks++;
}

static struct nvl_uri g_uri;

static void
opts_for(struct host_ctrlr_opts *o, enum nvl_uri_kind kind)
{
	memset(&g_uri, 0, sizeof(g_uri));
	g_uri.kind = kind;
	snprintf(g_uri.path, sizeof(g_uri.path), "/nonexistent/mock.sock");
	snprintf(g_uri.host, sizeof(g_uri.host), "192.0.2.1");
	snprintf(g_uri.port, sizeof(g_uri.port), "4420");
	snprintf(g_uri.nqn, sizeof(g_uri.nqn), "nqn.2026-01.io.nvlend.test:mock");
	host_ctrlr_opts_default(o);
	o->uri = &g_uri;
	o->hostnqn = "nqn.2026-01.io.nvlend.test:host";
	o->scan_ns = true;
	o->event = owner_event;
	o->qpair_kick = owner_qpair_kick;
}

static int
reset(void **state)
{
	(void)state;
	memset(&g_mock, 0, sizeof(g_mock));
	memset(&g_owner, 0, sizeof(g_owner));
	g_mock.nsze = 2048;
	g_mock.ns1_uuid = 0x11;
	return 0;
}

/* Poll until the state stops changing (the mock answers at once). */
static void
settle(struct host_ctrlr *c, uint64_t now)
{
	for (int i = 0; i < 64; i++)
		host_ctrlr_poll(c, now);
}

static struct host_ctrlr *
connected(const struct host_ctrlr_opts *o)
{
	struct host_ctrlr *c;

	assert_int_equal(host_ctrlr_create(o, &c), 0);
	settle(c, nvl_now_ns());
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_READY);
	assert_int_equal(g_owner.ev[HOST_EV_CONNECTED], 1);
	return c;
}

/* ---- controller ------------------------------------------------------------------------------------ */

static void
test_connect_shm(void **state)
{
	struct host_ctrlr_opts o;
	struct host_ctrlr *c;

	(void)state;
	opts_for(&o, NVL_URI_NVME_SHM);
	c = connected(&o);
	/* no properties, no Number of Queues: the manager enabled it */
	assert_int_equal(g_mock.opcodes[NVL_NVME_ADM_FABRICS], 0);
	assert_int_equal(g_mock.opcodes[NVL_NVME_ADM_SET_FEATURES], 0);
	assert_int_equal(host_ctrlr_cntlid(c), 7);
	assert_int_equal(host_ctrlr_max_xfer(c), 4096u << 5);
	assert_int_equal(host_ctrlr_first_nsid(c), 1);
	assert_int_equal(host_ctrlr_ns_count(c), 2);
	assert_int_equal(host_ctrlr_ns_find(c, 1)->block_size, 4096);
	assert_int_equal(host_ctrlr_ns_find(c, 1)->num_blocks, 2048);
	assert_int_equal(host_ctrlr_ns_find(c, 1)->uuid[0], 0x11);
	assert_int_equal(host_ctrlr_ns_find(c, 2)->nguid[0], 2);
	assert_int_equal(host_ctrlr_fail_mode(c), HOST_FAIL_NONE);
	host_ctrlr_close(c);
	assert_int_equal(g_mock.byes, 1);
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_CLOSED);
	assert_int_equal(g_owner.ev[HOST_EV_CLOSED], 1);
	host_ctrlr_destroy(c);
}

static void
test_connect_fabrics(void **state)
{
	struct host_ctrlr_opts o;
	struct host_ctrlr *c;
	uint64_t t;

	(void)state;
	opts_for(&o, NVL_URI_NVME_TCP);
	o.io_queues = 3;
	g_mock.csts_not_ready = 2;
	assert_int_equal(host_ctrlr_create(&o, &c), 0);
	/* CSTS.RDY is re-read 1 ms apart: time moves only as the caller says */
	t = nvl_now_ns();
	for (int i = 0; i < 6; i++) {
		settle(c, t);
		t += 2000000;
	}
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_READY);
	assert_int_equal(g_mock.opcodes[NVL_NVME_ADM_FABRICS], 5); /* CAP, CC, 3 x CSTS */
	assert_int_equal(host_ctrlr_max_queue_entries(c), 128);
	/* Number of Queues asked for 3 and granted what was asked */
	assert_int_equal(host_ctrlr_max_io_queues(c), 3);
	/* orderly close: CC.SHN, then CSTS.SHST */
	host_ctrlr_close(c);
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_CLOSING);
	settle(c, nvl_now_ns());
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_CLOSED);
	assert_int_equal(g_mock.opcodes[NVL_NVME_ADM_FABRICS], 7);
	host_ctrlr_destroy(c);
}

static void
test_connect_fails(void **state)
{
	struct host_ctrlr_opts o;
	struct host_ctrlr *c;

	(void)state;
	opts_for(&o, NVL_URI_NVME_SHM);
	g_mock.start_rc = -ECONNREFUSED;
	assert_int_equal(host_ctrlr_create(&o, &c), -ECONNREFUSED);
	/* a first association that breaks is not retried, whatever the policy */
	g_mock.start_rc = 0;
	o.ctrlr_loss_ms = -1;
	assert_int_equal(host_ctrlr_create(&o, &c), 0);
	g_mock.up = true; /* the transport never reports ready */
	host_ctrlr_poll(c, nvl_now_ns() + S(11));
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_FAILED);
	assert_int_equal(host_ctrlr_errno(c), -ETIMEDOUT);
	assert_int_equal(g_owner.ev[HOST_EV_CONNECT_FAILED], 1);
	assert_int_equal(host_ctrlr_fail_mode(c), HOST_FAIL_GONE);
	host_ctrlr_destroy(c);
}

static void
test_keepalive(void **state)
{
	struct host_ctrlr_opts o;
	struct host_ctrlr *c;
	uint64_t t = nvl_now_ns();

	(void)state;
	opts_for(&o, NVL_URI_NVME_SHM);
	o.kato_ms = 3000;
	o.ctrlr_loss_ms = -1;
	c = connected(&o);
	assert_int_equal(g_mock.opcodes[NVL_NVME_ADM_KEEP_ALIVE], 0);
	assert_true(host_ctrlr_next_ns(c) <= t + S(2));
	settle(c, t + S(1) + 100000000); /* kato / 3 later */
	assert_int_equal(g_mock.opcodes[NVL_NVME_ADM_KEEP_ALIVE], 1);
	settle(c, t + S(2) + 200000000);
	assert_int_equal(g_mock.opcodes[NVL_NVME_ADM_KEEP_ALIVE], 2);
	/* an error status loses the association (sent, then answered) */
	g_mock.ka_status = NVL_NVME_SC_INTERNAL;
	host_ctrlr_poll(c, t + S(3) + 300000000);
	host_ctrlr_poll(c, nvl_now_ns());
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_WAIT_RECONNECT);
	assert_int_equal(g_owner.ev[HOST_EV_LOST], 1);
	assert_string_equal(host_ctrlr_last_error(c), "Keep Alive failed: internal error");
	host_ctrlr_destroy(c);
}

struct admin_wait {
	int calls, rc;
};

static void
admin_cb(void *arg, const struct nvl_nvme_cpl *cpl, int rc)
{
	struct admin_wait *w = arg;

	(void)cpl;
	w->calls++;
	w->rc = rc;
}

static void
test_admin_timeout(void **state)
{
	struct host_ctrlr_opts o;
	struct host_ctrlr *c;
	struct nvl_nvme_cmd cmd = { .opc = NVL_NVME_ADM_GET_FEATURES };
	struct admin_wait w = { 0 }, aer = { 0 };
	struct nvl_nvme_cmd aercmd = { .opc = NVL_NVME_ADM_ASYNC_EVENT };

	(void)state;
	opts_for(&o, NVL_URI_NVME_SHM);
	o.admin_timeout_ms = 1000;
	c = connected(&o);
	g_mock.hold_admin = true;
	assert_int_equal(host_ctrlr_admin(c, &aercmd, NULL, 0, NVL_XFER_NONE,
					  HOST_ADMIN_NO_TIMEOUT, admin_cb, &aer), 0);
	assert_int_equal(host_ctrlr_admin(c, &cmd, NULL, 0, NVL_XFER_NONE, 0, admin_cb, &w), 0);
	assert_int_equal(cmd.cid % HOST_ADMIN_SLOTS, 1); /* the slot after the AER's */
	assert_true(host_ctrlr_busy(c));
	host_ctrlr_poll(c, nvl_now_ns() + 500000000);
	assert_int_equal(w.calls, 0);
	host_ctrlr_poll(c, nvl_now_ns() + S(2));
	/* the late command times out, the AER ends with the association */
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.rc, -ETIMEDOUT);
	assert_int_equal(aer.calls, 1);
	assert_int_equal(aer.rc, -ENOTCONN);
	/* no reconnect asked for (ctrlr_loss_ms 0): given up */
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_FAILED);
	assert_int_equal(g_owner.ev[HOST_EV_GIVEN_UP], 1);
	assert_int_equal(host_ctrlr_admin(c, &cmd, NULL, 0, NVL_XFER_NONE, 0, admin_cb, &w),
			 -ENOTCONN);
	host_ctrlr_destroy(c);
}

static void
test_backoff(void **state)
{
	struct host_ctrlr_opts o;
	struct host_ctrlr *c;
	uint64_t t;
	static const unsigned want_ms[] = { 1000, 2000, 4000, 8000, 8000 };

	(void)state;
	opts_for(&o, NVL_URI_NVME_SHM);
	o.ctrlr_loss_ms = -1;
	c = connected(&o);
	g_mock.fail_assoc = true;
	host_ctrlr_poll(c, nvl_now_ns());
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_WAIT_RECONNECT);
	assert_int_equal(host_ctrlr_losses(c), 1);
	/* every attempt fails at once: the delay doubles up to 8 x */
	g_mock.start_rc = -ECONNREFUSED;
	for (unsigned i = 0; i < NVL_ARRAY_SIZE(want_ms); i++) {
		t = nvl_now_ns();
		assert_true(c->next_attempt_ns >= t + (uint64_t)want_ms[i] * 1000000 - 50000000);
		assert_true(c->next_attempt_ns <= t + (uint64_t)want_ms[i] * 1000000);
		host_ctrlr_poll(c, c->next_attempt_ns - 1000);
		assert_int_equal(g_mock.starts, 1 + i);
		host_ctrlr_poll(c, c->next_attempt_ns);
		assert_int_equal(g_mock.starts, 2 + i);
		assert_int_equal(host_ctrlr_attempts(c), i + 1);
		assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_WAIT_RECONNECT);
	}
	/* then it works: READY again, counters and the outage reset */
	g_mock.start_rc = 0;
	settle(c, c->next_attempt_ns);
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_READY);
	assert_int_equal(host_ctrlr_reconnects(c), 1);
	assert_int_equal(host_ctrlr_attempts(c), 0);
	assert_int_equal(host_ctrlr_lost_ns(c), 0);
	assert_int_equal(g_owner.ev[HOST_EV_RECONNECTED], 1);
	assert_int_equal(g_owner.ev[HOST_EV_READY], 1);
	host_ctrlr_destroy(c);

	/* the session's shape: at once, then 100 ms doubling to 1 s */
	reset(NULL);
	opts_for(&o, NVL_URI_NVME_SHM);
	o.ctrlr_loss_ms = -1;
	o.reconnect_at_once = true;
	o.reconnect_delay_ms = 100;
	o.reconnect_delay_max_ms = 1000;
	c = connected(&o);
	c->attempts = 0;
	assert_int_equal(backoff_ms(c), 0);
	c->attempts = 1;
	assert_int_equal(backoff_ms(c), 100);
	c->attempts = 4;
	assert_int_equal(backoff_ms(c), 800);
	c->attempts = 5;
	assert_int_equal(backoff_ms(c), 1000);
	c->attempts = 40;
	assert_int_equal(backoff_ms(c), 1000);
	host_ctrlr_destroy(c);
}

static void
test_fast_fail_and_give_up(void **state)
{
	struct host_ctrlr_opts o;
	struct host_ctrlr *c;
	uint64_t lost;

	(void)state;
	opts_for(&o, NVL_URI_NVME_SHM);
	o.ctrlr_loss_ms = 3000;
	o.fast_io_fail_ms = 1000;
	c = connected(&o);
	g_mock.fail_assoc = true;
	host_ctrlr_poll(c, nvl_now_ns());
	lost = host_ctrlr_lost_ns(c);
	g_mock.start_rc = -ECONNREFUSED;
	host_ctrlr_poll(c, lost + 900000000);
	assert_int_equal(host_ctrlr_fail_mode(c), HOST_FAIL_NONE);
	host_ctrlr_poll(c, lost + S(1));
	assert_int_equal(host_ctrlr_fail_mode(c), HOST_FAIL_FAST);
	assert_int_equal(g_owner.ev[HOST_EV_FAST_FAIL], 1);
	host_ctrlr_poll(c, lost + S(3));
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_FAILED);
	assert_int_equal(host_ctrlr_fail_mode(c), HOST_FAIL_GONE);
	assert_int_equal(g_owner.ev[HOST_EV_GIVEN_UP], 1);
	/* given up is terminal */
	host_ctrlr_poll(c, lost + S(100));
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_FAILED);
	host_ctrlr_destroy(c);
}

static void
test_reconnect_refused(void **state)
{
	struct host_ctrlr_opts o;
	struct host_ctrlr *c;

	(void)state;
	opts_for(&o, NVL_URI_NVME_SHM);
	o.ctrlr_loss_ms = -1;
	c = connected(&o);
	/* the owner says "not yet": counted as a failed attempt */
	g_owner.reconnected_rc = -EAGAIN;
	g_mock.fail_assoc = true;
	host_ctrlr_poll(c, nvl_now_ns());
	settle(c, c->next_attempt_ns);
	assert_int_equal(g_owner.ev[HOST_EV_RECONNECTED], 1);
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_WAIT_RECONNECT);
	assert_int_equal(host_ctrlr_attempts(c), 1);
	/* a changed namespace: the owner refuses for good */
	g_owner.reconnected_rc = -ESTALE;
	g_mock.nsze = 4096;
	settle(c, c->next_attempt_ns);
	assert_int_equal(g_owner.ev[HOST_EV_RECONNECTED], 2);
	assert_int_equal(host_ctrlr_ns_find(c, 1)->num_blocks, 4096);
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_FAILED);
	assert_int_equal(g_owner.ev[HOST_EV_GIVEN_UP], 1);
	host_ctrlr_destroy(c);
}

/* ---- queue pairs ------------------------------------------------------------------------------------ */

struct io_result {
	int calls;
	uint16_t status;
};

static void
io_cb(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct io_result *r = arg;

	r->calls++;
	r->status = nvl_cpl_status(cpl);
}

static struct host_qpair *
qpair_up(struct host_ctrlr *c, uint32_t entries)
{
	struct host_qpair_opts qo = { .entries = entries, .interrupts = true };
	struct host_qpair *qp;

	assert_int_equal(host_qpair_create(c, &qo, &qp), 0);
	assert_int_equal(host_qpair_connect_rc(qp), -EINPROGRESS);
	settle(c, nvl_now_ns());
	assert_int_equal(host_qpair_connect_rc(qp), 0);
	assert_true(g_owner.kicks > 0);
	assert_false(host_qpair_connected(qp)); /* offered, not yet taken */
	assert_int_equal(host_qpair_poll(qp, 0), 0);
	assert_true(host_qpair_connected(qp));
	return qp;
}

static int
submit(struct host_qpair *qp, uint8_t opc, struct io_result *r)
{
	struct nvl_nvme_cmd cmd = { .opc = opc, .nsid = 1 };
	static uint8_t data[4096];
	struct iovec iov = { data, sizeof(data) };
	bool rw = opc == NVL_NVME_IO_READ || opc == NVL_NVME_IO_WRITE || opc == NVL_NVME_IO_COMPARE;

	return host_qpair_submit(qp, &cmd, &iov, rw ? 1 : 0, rw ? sizeof(data) : 0,
				 rw ? (opc == NVL_NVME_IO_READ ? NVL_XFER_FROM_CTRLR
							       : NVL_XFER_TO_CTRLR)
				    : NVL_XFER_NONE,
				 io_cb, r);
}

static void
complete_all(struct host_qpair *qp, uint16_t sc)
{
	struct mock_tq *t = (struct mock_tq *)qp->tq;

	for (unsigned i = 0; i < t->ncmds; i++) {
		t->cpl[t->ncpl].cid = t->cmds[i].cid;
		t->cpl[t->ncpl++].status = NVL_NVME_SC_TO_STATUS(sc);
	}
	t->ncmds = 0;
}

static void
destroy_all(struct host_ctrlr *c, struct host_qpair *qp)
{
	host_qpair_stop(qp, false);
	host_qpair_destroy(qp, NULL, NULL);
	settle(c, nvl_now_ns());
	assert_true(TAILQ_EMPTY(&c->qpairs));
	host_ctrlr_destroy(c);
}

static void
test_qpair_io(void **state)
{
	struct host_ctrlr_opts o;
	struct host_ctrlr *c;
	struct host_qpair *qp;
	struct io_result r[4] = { 0 };

	(void)state;
	opts_for(&o, NVL_URI_NVME_SHM);
	c = connected(&o);
	qp = qpair_up(c, 4);
	assert_int_equal(host_qpair_qid(qp), 1);
	/* entries - 1 in flight */
	for (int i = 0; i < 3; i++)
		assert_int_equal(submit(qp, NVL_NVME_IO_READ, &r[i]), 0);
	assert_int_equal(submit(qp, NVL_NVME_IO_READ, &r[3]), -EAGAIN);
	assert_int_equal(host_qpair_outstanding(qp), 3);
	complete_all(qp, 0);
	assert_int_equal(host_qpair_poll(qp, 0), 3);
	assert_int_equal(r[0].calls + r[1].calls + r[2].calls, 3);
	assert_int_equal(host_qpair_outstanding(qp), 0);
	/* too many segments, a payload without segments */
	assert_int_equal(host_qpair_submit(qp, &(struct nvl_nvme_cmd){ 0 }, NULL, 0, 512,
					   NVL_XFER_TO_CTRLR, io_cb, &r[0]),
			 -EINVAL);
	/* a completion nobody asked for is ignored */
	((struct mock_tq *)qp->tq)->cpl[0].cid = 2;
	((struct mock_tq *)qp->tq)->ncpl = 1;
	assert_int_equal(host_qpair_poll(qp, 0), 1);
	assert_int_equal(r[2].calls, 1);
	/* destroy: two queue deletions on shm */
	host_qpair_stop(qp, false);
	host_qpair_destroy(qp, NULL, NULL);
	settle(c, nvl_now_ns());
	assert_int_equal(g_mock.opcodes[NVL_NVME_ADM_DELETE_SQ], 1);
	assert_int_equal(g_mock.opcodes[NVL_NVME_ADM_DELETE_CQ], 1);
	assert_true(TAILQ_EMPTY(&c->qpairs));
	host_ctrlr_destroy(c);
}

static void
test_qpair_keep_resubmit(void **state)
{
	struct host_ctrlr_opts o;
	struct host_ctrlr *c;
	struct host_qpair *qp;
	struct io_result rd = { 0 }, cmp = { 0 }, wr = { 0 }, fl = { 0 };
	struct mock_tq *t;
	uint16_t rd_cid;

	(void)state;
	opts_for(&o, NVL_URI_NVME_SHM);
	o.ctrlr_loss_ms = -1;
	c = connected(&o);
	qp = qpair_up(c, 8);
	assert_int_equal(submit(qp, NVL_NVME_IO_READ, &rd), 0);
	rd_cid = ((struct mock_tq *)qp->tq)->cmds[0].cid;
	assert_int_equal(submit(qp, NVL_NVME_IO_COMPARE, &cmp), 0);
	/* the association goes */
	g_mock.fail_assoc = true;
	g_owner.kicks = 0;
	host_ctrlr_poll(c, nvl_now_ns());
	assert_true(g_owner.kicks > 0);
	assert_false(host_qpair_connected(qp));
	/* the queue pair drops its queue: the read is kept, the compare aborted */
	assert_int_equal(host_qpair_poll(qp, 0), 1);
	assert_int_equal(cmp.calls, 1);
	assert_int_equal(cmp.status, NVL_NVME_SC_ABORTED_SQ_DELETION);
	assert_int_equal(rd.calls, 0);
	assert_int_equal(host_qpair_outstanding(qp), 1);
	/* while away: idempotent I/O waits, the rest is refused */
	assert_int_equal(submit(qp, NVL_NVME_IO_WRITE, &wr), 0);
	assert_int_equal(submit(qp, NVL_NVME_IO_FLUSH, &fl), 0);
	assert_int_equal(submit(qp, NVL_NVME_IO_COMPARE, &cmp), -ENOTCONN);
	assert_int_equal(host_qpair_outstanding(qp), 3);
	assert_int_equal(host_qpair_arm(qp), -EAGAIN);
	/* back: a new queue, everything resubmitted in slot order, same cids */
	settle(c, c->next_attempt_ns);
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_READY);
	assert_int_equal(host_qpair_poll(qp, 0), 0);
	assert_true(host_qpair_connected(qp));
	t = (struct mock_tq *)qp->tq;
	assert_int_equal(t->ncmds, 3);
	assert_int_equal(t->cmds[0].opc, NVL_NVME_IO_READ);
	assert_int_equal(t->cmds[0].cid, rd_cid);
	assert_int_equal(t->cmds[1].opc, NVL_NVME_IO_WRITE);
	assert_int_equal(t->cmds[2].opc, NVL_NVME_IO_FLUSH);
	assert_int_equal(host_qpair_epoch(qp), 2);
	complete_all(qp, 0);
	assert_int_equal(host_qpair_poll(qp, 0), 3);
	assert_int_equal(rd.calls + wr.calls + fl.calls, 3);
	assert_int_equal(rd.status + wr.status + fl.status, 0);
	destroy_all(c, qp);
}

static void
test_qpair_fast_fail(void **state)
{
	struct host_ctrlr_opts o;
	struct host_ctrlr *c;
	struct host_qpair *qp;
	struct io_result rd = { 0 }, wr = { 0 };

	(void)state;
	opts_for(&o, NVL_URI_NVME_SHM);
	o.ctrlr_loss_ms = -1;
	o.fast_io_fail_ms = 1000;
	c = connected(&o);
	qp = qpair_up(c, 8);
	assert_int_equal(submit(qp, NVL_NVME_IO_READ, &rd), 0);
	g_mock.fail_assoc = true;
	host_ctrlr_poll(c, nvl_now_ns());
	g_mock.start_rc = -ECONNREFUSED;
	assert_int_equal(host_qpair_poll(qp, 0), 0); /* kept */
	host_ctrlr_poll(c, host_ctrlr_lost_ns(c) + S(1));
	assert_int_equal(host_ctrlr_fail_mode(c), HOST_FAIL_FAST);
	/* kept I/O fails, new I/O is refused, the queue still waits for a controller */
	assert_int_equal(host_qpair_poll(qp, 0), 1);
	assert_int_equal(rd.status, NVL_NVME_SC_ABORTED_SQ_DELETION);
	assert_int_equal(submit(qp, NVL_NVME_IO_WRITE, &wr), -ENOTCONN);
	assert_int_equal(host_qpair_poll(qp, 0), 0);
	/* back: I/O flows again */
	g_mock.start_rc = 0;
	settle(c, c->next_attempt_ns);
	assert_int_equal(host_ctrlr_fail_mode(c), HOST_FAIL_NONE);
	assert_int_equal(submit(qp, NVL_NVME_IO_WRITE, &wr), 0);
	assert_true(host_qpair_connected(qp));
	destroy_all(c, qp);
}

static void
test_qpair_path_error(void **state)
{
	struct host_ctrlr_opts o;
	struct host_ctrlr *c;
	struct host_qpair *qp;
	struct io_result rd = { 0 }, wr = { 0 };

	(void)state;
	opts_for(&o, NVL_URI_NVME_SHM);
	o.ctrlr_loss_ms = -1;
	c = connected(&o);
	qp = qpair_up(c, 8);
	assert_int_equal(submit(qp, NVL_NVME_IO_READ, &rd), 0);
	assert_int_equal(submit(qp, NVL_NVME_IO_WRITE, &wr), 0);
	/* a transport error on the read: the path failed, not the command */
	((struct mock_tq *)qp->tq)->cpl[0].cid = ((struct mock_tq *)qp->tq)->cmds[0].cid;
	((struct mock_tq *)qp->tq)->cpl[0].status =
		NVL_NVME_SC_TO_STATUS(NVL_NVME_SC_TRANSIENT_TRANSPORT_ERROR);
	((struct mock_tq *)qp->tq)->ncpl = 1;
	assert_int_equal(host_qpair_poll(qp, 0), 1); /* reaped, not completed */
	assert_int_equal(rd.calls, 0);
	assert_int_equal(c->lost_gen, c->gen);
	assert_false(host_qpair_connected(qp));
	/* the controller resets the association */
	host_ctrlr_poll(c, nvl_now_ns());
	assert_int_equal(g_owner.ev[HOST_EV_LOST], 1);
	assert_string_equal(host_ctrlr_last_error(c), "I/O queue 1: error");
	settle(c, c->next_attempt_ns);
	assert_int_equal(host_qpair_poll(qp, 0), 0);
	assert_int_equal(((struct mock_tq *)qp->tq)->ncmds, 2);
	complete_all(qp, 0);
	assert_int_equal(host_qpair_poll(qp, 0), 2);
	assert_int_equal(rd.status + wr.status, 0);
	destroy_all(c, qp);
}

/* A path error with Do Not Retry fails the command; the queue stays up. */
static void
test_qpair_path_error_dnr(void **state)
{
	struct host_ctrlr_opts o;
	struct host_ctrlr *c;
	struct host_qpair *qp;
	struct io_result rd = { 0 };

	(void)state;
	opts_for(&o, NVL_URI_NVME_SHM);
	o.ctrlr_loss_ms = -1;
	c = connected(&o);
	qp = qpair_up(c, 8);
	assert_int_equal(submit(qp, NVL_NVME_IO_READ, &rd), 0);
	((struct mock_tq *)qp->tq)->cpl[0].cid = ((struct mock_tq *)qp->tq)->cmds[0].cid;
	((struct mock_tq *)qp->tq)->cpl[0].status =
		NVL_NVME_SC_TO_STATUS(NVL_NVME_SC_NS_NOT_READY) | NVL_NVME_STATUS_DNR;
	((struct mock_tq *)qp->tq)->ncpl = 1;
	assert_int_equal(host_qpair_poll(qp, 0), 1);
	assert_int_equal(rd.calls, 1);
	assert_int_equal(rd.status, NVL_NVME_SC_NS_NOT_READY);
	assert_true(host_qpair_connected(qp));
	assert_int_equal(g_owner.ev[HOST_EV_LOST], 0);
	destroy_all(c, qp);
}

static void
test_qpair_no_reconnect(void **state)
{
	struct host_ctrlr_opts o;
	struct host_ctrlr *c;
	struct host_qpair *qp;
	struct io_result rd = { 0 }, wr = { 0 };

	(void)state;
	opts_for(&o, NVL_URI_NVME_SHM); /* ctrlr_loss_ms 0: libnvlend's policy */
	c = connected(&o);
	qp = qpair_up(c, 8);
	assert_int_equal(submit(qp, NVL_NVME_IO_READ, &rd), 0);
	/* the queue notices first: every queue fails at once */
	((struct mock_tq *)qp->tq)->fail = true;
	assert_int_equal(host_qpair_poll(qp, 0), 0);
	assert_int_equal(host_ctrlr_fail_mode(c), HOST_FAIL_GONE);
	assert_int_equal(host_qpair_poll(qp, 0), 1); /* dropped: the read is aborted */
	assert_int_equal(rd.status, NVL_NVME_SC_ABORTED_SQ_DELETION);
	assert_int_equal(host_qpair_poll(qp, 0), -ENOTCONN);
	assert_int_equal(submit(qp, NVL_NVME_IO_WRITE, &wr), -ENOTCONN);
	host_ctrlr_poll(c, nvl_now_ns());
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_FAILED);
	assert_string_equal(host_ctrlr_last_error(c), "mock: I/O queue lost");
	destroy_all(c, qp);
}

static void
test_qpair_create_limits(void **state)
{
	struct host_ctrlr_opts o;
	struct host_ctrlr *c;
	struct host_qpair *qp[5];
	struct host_qpair_opts qo = { .entries = 8 };

	(void)state;
	opts_for(&o, NVL_URI_NVME_SHM);
	c = connected(&o);
	qo.entries = 1;
	assert_int_equal(host_qpair_create(c, &qo, &qp[0]), -EINVAL);
	qo.entries = 257; /* above the controller's max_queue_entries */
	assert_int_equal(host_qpair_create(c, &qo, &qp[0]), -EINVAL);
	qo.entries = 8;
	for (int i = 0; i < 4; i++)
		assert_int_equal(host_qpair_create(c, &qo, &qp[i]), 0);
	assert_int_equal(host_qpair_create(c, &qo, &qp[4]), -ENOSPC);
	/* a refused queue fails alone, the controller stays */
	g_mock.tq_connect_fail = true;
	settle(c, nvl_now_ns());
	for (int i = 0; i < 4; i++) {
		assert_int_equal(host_qpair_connect_rc(qp[i]), -EREMOTEIO);
		host_qpair_stop(qp[i], false);
		host_qpair_destroy(qp[i], NULL, NULL);
	}
	assert_int_equal(host_ctrlr_state(c), HOST_CTRLR_READY);
	assert_true(TAILQ_EMPTY(&c->qpairs));
	host_ctrlr_destroy(c);
}

static void
test_status_helpers(void **state)
{
	struct nvl_nvme_id_ns id = { 0 };
	struct nvl_ns_info info;

	(void)state;
	assert_true(host_status_is_path_error(NVL_NVME_SC_ABORTED_SQ_DELETION));
	assert_true(host_status_is_path_error(NVL_NVME_SC_TRANSIENT_TRANSPORT_ERROR));
	assert_true(host_status_is_path_error(NVL_NVME_SC_NS_NOT_READY));
	assert_false(host_status_is_path_error(NVL_NVME_SC_SUCCESS));
	assert_false(host_status_is_path_error(NVL_NVME_SC_LBA_OUT_OF_RANGE));
	assert_false(host_status_is_path_error(NVL_NVME_SC_INTERNAL));
	assert_true(cmd_idempotent(NVL_NVME_IO_DSM));
	assert_false(cmd_idempotent(NVL_NVME_IO_RESV_ACQUIRE));
	/* block sizes outside 512 B .. 64 KiB are not usable */
	id.nsze = 10;
	id.lbaf[0].lbads = 8;
	host_ns_info_from_id(&id, 3, &info);
	assert_int_equal(info.block_size, 0);
	id.lbaf[0].lbads = 9;
	host_ns_info_from_id(&id, 3, &info);
	assert_int_equal(info.block_size, 512);
	id.lbaf[0].lbads = 200;
	host_ns_info_from_id(&id, 3, &info);
	assert_int_equal(info.block_size, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_connect_shm, reset),
		cmocka_unit_test_setup(test_connect_fabrics, reset),
		cmocka_unit_test_setup(test_connect_fails, reset),
		cmocka_unit_test_setup(test_keepalive, reset),
		cmocka_unit_test_setup(test_admin_timeout, reset),
		cmocka_unit_test_setup(test_backoff, reset),
		cmocka_unit_test_setup(test_fast_fail_and_give_up, reset),
		cmocka_unit_test_setup(test_reconnect_refused, reset),
		cmocka_unit_test_setup(test_qpair_io, reset),
		cmocka_unit_test_setup(test_qpair_keep_resubmit, reset),
		cmocka_unit_test_setup(test_qpair_fast_fail, reset),
		cmocka_unit_test_setup(test_qpair_path_error, reset),
		cmocka_unit_test_setup(test_qpair_path_error_dnr, reset),
		cmocka_unit_test_setup(test_qpair_no_reconnect, reset),
		cmocka_unit_test_setup(test_qpair_create_limits, reset),
		cmocka_unit_test_setup(test_status_helpers, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
