/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libnvlend NVMe/TCP transport: nvme+tcp://HOST:PORT/SUBNQN[/NSID] URIs.
 * Each queue pair (admin included) is one NVMe/TCP connection driven by the
 * shared initiator queue (src/host/tcp_hostq.c). Admin commands run
 * under the caller's admin lock and wait for their completion; I/O queue
 * pairs belong to one thread at a time and poll their socket: waiting
 * spins for spin_us (completions on a busy queue come back within
 * microseconds, and a sleeping thread costs a cross-CPU wake-up), then
 * sleeps in poll(2).
 *
 * Buffers are plain memory (no data window): data goes straight between the
 * socket and the caller's buffer. Digests are off unless NVLEND_TCP_DIGESTS
 * names "header" and/or "data".
 */
#include "host/host_internal.h"
#include "host/tcp_hostq.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TCP_ADMIN_ENTRIES 32
#define TCP_ADMIN_ICD 8192

struct tcp_host {
	struct nvl_tcp_hq *admin;
	struct nvl_tcp_hq_opts base;
};

struct sync_wait {
	bool done;
	struct nvl_nvme_cpl cpl;
};

static void
sync_cb(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct sync_wait *s = arg;

	s->cpl = *cpl;
	s->done = true;
}

/* Drive q until *done, failure or timeout; spin first, then poll(2).
 * \return 0, -ETIMEDOUT, -ENOTCONN. */
static int
hq_wait(struct nvl_tcp_hq *q, const bool *done, int timeout_ms, uint32_t spin_us)
{
	uint64_t start = nvl_now_ns();
	uint64_t spin_end = start + (uint64_t)spin_us * 1000;
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		int n = nvl_tcp_hq_process(q);
		uint64_t now;

		if (*done)
			return 0;
		if (n < 0 || nvl_tcp_hq_state(q) == NVL_TCP_HQ_FAILED)
			return -ENOTCONN;
		now = nvl_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		if (now < spin_end) {
			nvl_cpu_relax();
			continue;
		}
		{
			struct pollfd p = { .fd = nvl_tcp_hq_fd(q), .events = POLLIN };
			uint64_t left = deadline - now;

			if (nvl_tcp_hq_want_write(q))
				p.events |= POLLOUT;
			(void)poll(&p, 1, (int)NVL_MIN(left / 1000000 + 1, (uint64_t)100));
		}
	}
}

static int
wait_ready(struct nvl_ctrlr *c, struct nvl_tcp_hq *q)
{
	bool never = false;
	uint64_t deadline = nvl_now_ns() + (uint64_t)c->opts.timeout_ms * 1000000;

	while (nvl_tcp_hq_state(q) == NVL_TCP_HQ_CONNECTING) {
		int rc;

		if (nvl_now_ns() >= deadline) {
			host_set_error(c, "%s:%s: no answer within %u ms", c->uri.host, c->uri.port,
				       c->opts.timeout_ms);
			return -ETIMEDOUT;
		}
		rc = hq_wait(q, &never, 20, 0);
		if (rc == -ENOTCONN)
			break;
	}
	if (nvl_tcp_hq_state(q) != NVL_TCP_HQ_READY) {
		host_set_error(c, "%s:%s: %s", c->uri.host, c->uri.port, nvl_tcp_hq_error(q));
		return nvl_tcp_hq_errno(q) ? nvl_tcp_hq_errno(q) : -EPROTO;
	}
	return 0;
}

static int
tcp_admin_raw(struct nvl_ctrlr *c, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len,
	      enum nvl_xfer_dir dir, struct nvl_nvme_cpl *cpl)
{
	struct tcp_host *h = c->tctx;
	struct sync_wait s = { 0 };
	struct iovec iov = { buf, len };
	uint16_t cid = cmd->cid;
	int rc;

	rc = nvl_tcp_hq_submit(h->admin, cmd, &iov, len ? 1 : 0, len, (uint8_t)dir, sync_cb, &s);
	if (rc == -ENOTCONN) {
		c->dead = true;
		host_set_error(c, "admin queue: %s", nvl_tcp_hq_error(h->admin));
		return -ENOTCONN;
	}
	if (rc < 0)
		return rc;
	rc = hq_wait(h->admin, &s.done, (int)c->opts.timeout_ms, 20);
	if (rc == -ETIMEDOUT) {
		/* the buffer must not be written later: the association ends here */
		nvl_tcp_hq_fail(h->admin, "admin command timed out", NVL_NVME_SC_ABORT_REQUESTED);
		c->dead = true;
		host_set_error(c, "admin opcode 0x%02x timed out after %u ms", cmd->opc,
			       c->opts.timeout_ms);
		return -ETIMEDOUT;
	}
	if (rc < 0 || (!s.done)) {
		c->dead = true;
		host_set_error(c, "admin queue: %s", nvl_tcp_hq_error(h->admin));
		return -ENOTCONN;
	}
	*cpl = s.cpl;
	cpl->cid = cid;
	return 0;
}

static int
property(struct nvl_ctrlr *c, bool set, uint32_t ofst, bool eight, uint64_t value, uint64_t *out)
{
	struct nvl_nvmf_property_cmd p = { 0 };
	struct nvl_nvme_cpl cpl;
	int rc;

	p.opc = NVL_NVME_ADM_FABRICS;
	p.fctype = set ? NVL_NVMF_FCTYPE_PROPERTY_SET : NVL_NVMF_FCTYPE_PROPERTY_GET;
	p.attrib = eight ? 1 : 0;
	p.ofst = ofst;
	p.value = value;
	rc = tcp_admin_raw(c, (struct nvl_nvme_cmd *)&p, NULL, 0, NVL_XFER_NONE, &cpl);
	if (rc < 0)
		return rc;
	if (nvl_cpl_status(&cpl)) {
		host_set_error(c, "Property %s 0x%x: %s", set ? "Set" : "Get", ofst,
			       nvl_status_str(nvl_cpl_status(&cpl)));
		return -EREMOTEIO;
	}
	if (out)
		*out = (uint64_t)cpl.cdw0 | ((uint64_t)cpl.cdw1 << 32);
	return 0;
}

static void
base_opts(struct nvl_ctrlr *c, struct tcp_host *h)
{
	const char *d = getenv("NVLEND_TCP_DIGESTS");

	h->base.subnqn = c->uri.nqn;
	h->base.hostnqn = c->hostnqn;
	h->base.hostid = c->hostid;
	h->base.hdgst = d && strstr(d, "header");
	h->base.ddgst = d && strstr(d, "data");
}

/* Enable the controller (CC.EN, then CSTS.RDY within CAP.TO) and ask for queues. */
static int
enable(struct nvl_ctrlr *c)
{
	struct nvl_nvme_cmd cmd = { 0 };
	struct nvl_nvme_cpl cpl;
	uint64_t cap, csts = 0, deadline;
	unsigned to_ms;
	int rc;

	rc = property(c, false, NVL_NVME_REG_CAP, true, 0, &cap);
	if (rc < 0)
		return rc;
	c->max_queue_entries = (uint16_t)NVL_MIN((cap & 0xffff) + 1, 4096u);
	to_ms = (unsigned)((cap >> 24) & 0xff) * 500;
	rc = property(c, true, NVL_NVME_REG_CC, false,
		      NVL_NVME_CC_EN | (6u << 16) | (4u << 20), NULL);
	if (rc < 0)
		return rc;
	deadline = nvl_now_ns() + (uint64_t)NVL_MAX(to_ms, 1000u) * 1000000;
	for (;;) {
		rc = property(c, false, NVL_NVME_REG_CSTS, false, 0, &csts);
		if (rc < 0)
			return rc;
		if (csts & NVL_NVME_CSTS_CFS) {
			host_set_error(c, "controller fatal status while enabling");
			return -EIO;
		}
		if (csts & NVL_NVME_CSTS_RDY)
			break;
		if (nvl_now_ns() > deadline) {
			host_set_error(c, "controller not ready after %u ms", to_ms);
			return -ETIMEDOUT;
		}
		usleep(1000);
	}
	/* Number of Queues; discovery controllers refuse it: then no I/O queues */
	cmd.opc = NVL_NVME_ADM_SET_FEATURES;
	cmd.cdw10 = NVL_NVME_FEAT_NUMBER_OF_QUEUES;
	cmd.cdw11 = (HOST_MAX_QUEUES - 1) | ((uint32_t)(HOST_MAX_QUEUES - 1) << 16);
	rc = tcp_admin_raw(c, &cmd, NULL, 0, NVL_XFER_NONE, &cpl);
	if (rc < 0)
		return rc;
	if (nvl_cpl_status(&cpl) == 0)
		c->max_io_queues = (uint16_t)NVL_MIN(
			NVL_MIN((cpl.cdw0 & 0xffff) + 1, (cpl.cdw0 >> 16) + 1), (uint32_t)HOST_MAX_QUEUES);
	else
		c->max_io_queues = 0;
	return 0;
}

static int
tcp_connect(struct nvl_ctrlr *c)
{
	struct tcp_host *h;
	struct nvl_tcp_hq_opts o;
	int rc;

	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	rc = nvl_tcp_hq_resolve(c->uri.host, c->uri.port, false, &h->base);
	if (rc < 0) {
		host_set_error(c, "cannot resolve %s port %s", c->uri.host, c->uri.port);
		free(h);
		return rc;
	}
	base_opts(c, h);
	o = h->base;
	o.qid = 0;
	o.entries = TCP_ADMIN_ENTRIES;
	o.cntlid = 0xffff;
	o.kato_ms = c->opts.kato_ms;
	o.icd_max = TCP_ADMIN_ICD;
	o.max_data = 1u << 20;
	rc = nvl_tcp_hq_create(&o, &h->admin);
	if (rc < 0) {
		host_set_error(c, "cannot open a socket to %s:%s: %s", c->uri.host, c->uri.port,
			       strerror(-rc));
		free(h);
		return rc;
	}
	c->tctx = h;
	rc = wait_ready(c, h->admin);
	if (rc < 0)
		goto err;
	c->cntlid = nvl_tcp_hq_cntlid(h->admin);
	rc = enable(c);
	if (rc < 0)
		goto err;
	return 0;
err:
	nvl_tcp_hq_destroy(h->admin);
	free(h);
	c->tctx = NULL;
	return rc;
}

static void
tcp_disconnect(struct nvl_ctrlr *c)
{
	struct tcp_host *h = c->tctx;

	if (h == NULL)
		return;
	if (!c->dead && nvl_tcp_hq_state(h->admin) == NVL_TCP_HQ_READY) {
		uint64_t csts = 0, deadline = nvl_now_ns() + 1000000000ULL;

		/* normal shutdown (CC.SHN = 01b), then wait for CSTS.SHST complete */
		if (property(c, true, NVL_NVME_REG_CC, false,
			     NVL_NVME_CC_EN | (1u << NVL_NVME_CC_SHN_SHIFT) | (6u << 16) | (4u << 20),
			     NULL) == 0) {
			while (property(c, false, NVL_NVME_REG_CSTS, false, 0, &csts) == 0 &&
			       (csts & NVL_NVME_CSTS_SHST_MASK) != NVL_NVME_CSTS_SHST_COMPLETE &&
			       nvl_now_ns() < deadline)
				usleep(1000);
		}
	}
	nvl_tcp_hq_destroy(h->admin);
	free(h);
	c->tctx = NULL;
}

static int
tcp_admin(struct nvl_ctrlr *c, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len,
	  enum nvl_xfer_dir dir, struct nvl_nvme_cpl *cpl)
{
	if (c->tctx == NULL)
		return -ENOTCONN;
	return tcp_admin_raw(c, cmd, buf, len, dir, cpl);
}

/* The AER's completion, reaped by whichever admin wait drives the queue
 * (all of them run under the admin lock). */
static void
aer_cb(void *arg, const struct nvl_nvme_cpl *cpl)
{
	host_aen_complete(arg, cpl);
}

static int
tcp_aer_submit(struct nvl_ctrlr *c, struct nvl_nvme_cmd *cmd)
{
	struct tcp_host *h = c->tctx;
	struct iovec none = { NULL, 0 };  /* no data; the queue copies iovcnt = 0 of these */
	int rc;

	if (h == NULL)
		return -ENOTCONN;
	rc = nvl_tcp_hq_submit(h->admin, cmd, &none, 0, 0, NVL_XFER_NONE, aer_cb, c);
	if (rc == -ENOTCONN)
		host_set_dead(c);
	return rc;
}

static int
tcp_admin_poll(struct nvl_ctrlr *c, int timeout_ms)
{
	struct tcp_host *h = c->tctx;
	int rc;

	if (h == NULL)
		return -ENOTCONN;
	rc = hq_wait(h->admin, &c->aen_arrived, timeout_ms, 0);
	if (rc == -ENOTCONN) {
		host_set_dead(c);
		host_set_error(c, "admin queue: %s", nvl_tcp_hq_error(h->admin));
		return -ENOTCONN;
	}
	return 0;
}

static int
tcp_qpair_create(struct nvl_qpair *qp)
{
	struct nvl_ctrlr *c = qp->c;
	struct tcp_host *h = c->tctx;
	struct nvl_tcp_hq_opts o = h->base;
	struct nvl_tcp_hq *q;
	int rc;

	o.qid = qp->qid;
	o.entries = (uint16_t)qp->entries;
	o.cntlid = c->cntlid;
	o.kato_ms = 0;
	o.icd_max = c->id.ioccsz >= 4 ? c->id.ioccsz * 16 - (uint32_t)sizeof(struct nvl_nvme_cmd) : 0;
	o.max_data = c->max_xfer;
	o.disable_sqflow = true; /* no SQHD needed: lets the target skip responses after reads */
	rc = nvl_tcp_hq_create(&o, &q);
	if (rc < 0)
		return rc;
	rc = wait_ready(c, q);
	if (rc < 0) {
		nvl_tcp_hq_destroy(q);
		return rc;
	}
	qp->tq = q;
	return 0;
}

static void
tcp_qpair_destroy(struct nvl_qpair *qp)
{
	/* closing the connection deletes the I/O queue on the controller */
	nvl_tcp_hq_destroy(qp->tq);
	qp->tq = NULL;
}

static void
io_cb(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct host_req *r = arg;
	struct nvl_qpair *qp = r->tctx;
	struct nvl_nvme_cpl c = *cpl;

	c.cid = r->cid;
	host_complete(qp, &c);
}

static int
tcp_submit(struct nvl_qpair *qp, struct nvl_nvme_cmd *cmd, struct host_req *r, void *buf,
	   uint32_t len, enum nvl_xfer_dir dir)
{
	struct iovec iov = { buf, len };
	int rc;

	r->tctx = qp;
	rc = nvl_tcp_hq_submit(qp->tq, cmd, &iov, len ? 1 : 0, len, (uint8_t)dir, io_cb, r);
	if (rc == -ENOTCONN)
		qp->c->dead = true;
	return rc;
}

static int
tcp_poll(struct nvl_qpair *qp, uint32_t max)
{
	int n;

	(void)max;
	if (qp->tq == NULL)
		return 0;
	n = nvl_tcp_hq_process(qp->tq);
	if (n < 0) {
		if (!qp->c->dead)
			host_set_error(qp->c, "I/O queue %u: %s", qp->qid, nvl_tcp_hq_error(qp->tq));
		qp->c->dead = true;
		return 0;
	}
	return n;
}

static int
tcp_wait(struct nvl_qpair *qp, int timeout_ms)
{
	struct nvl_tcp_hq *q = qp->tq;
	uint64_t start = nvl_now_ns(), spin_end = start + (uint64_t)qp->opts.spin_us * 1000;
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		int n = tcp_poll(qp, 0);
		uint64_t now;

		if (n > 0)
			return n;
		if (qp->c->dead)
			return -ENOTCONN;
		now = nvl_now_ns();
		if (now >= deadline)
			return 0;
		if (now < spin_end && qp->opts.interrupts) {
			nvl_cpu_relax();
			continue;
		}
		if (!qp->opts.interrupts) {
			nvl_cpu_relax(); /* polled queue: never sleep */
			continue;
		}
		{
			struct pollfd p = { .fd = nvl_tcp_hq_fd(q), .events = POLLIN };

			if (nvl_tcp_hq_want_write(q))
				p.events |= POLLOUT;
			(void)poll(&p, 1,
				   (int)NVL_MIN((deadline - now) / 1000000 + 1, (uint64_t)1000));
		}
	}
}

static const struct host_transport g_host_tcp_transport = {
	.kind = NVL_URI_NVME_TCP,
	.connect = tcp_connect,
	.disconnect = tcp_disconnect,
	.admin = tcp_admin,
	.aer_submit = tcp_aer_submit,
	.admin_poll = tcp_admin_poll,
	.qpair_create = tcp_qpair_create,
	.qpair_destroy = tcp_qpair_destroy,
	.submit = tcp_submit,
	.poll = tcp_poll,
	.wait = tcp_wait,
};

/* Defined here (not in ctrlr.c) so that linking nvl_ctrlr_connect() from the
 * static library pulls this transport in. */
const struct host_transport *g_host_tcp = &g_host_tcp_transport;
