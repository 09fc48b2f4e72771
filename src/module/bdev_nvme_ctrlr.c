/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The nvme bdev module's controllers (bdev_nvme_internal.h): one core
 * controller each (src/host/host.h) driven on reactor 0, its I/O queues,
 * its bdevs, attach and detach.
 *
 *  - attach: the core connects and identifies (every namespace); then one
 *    queue pair per I/O queue is made, each queue starts on its reactor,
 *    and one bdev NAMEn<nsid> per usable namespace is registered. Any
 *    failure until then undoes everything and fails the attach.
 *  - afterwards the core keeps the association: on a loss it reconnects
 *    with backoff (reconnect_delay_sec doubling up to 8x), fails I/O after
 *    fast_io_fail_timeout_sec and gives the controller up after
 *    ctrlr_loss_timeout_sec (-1: never); this file logs what happens and,
 *    after a reconnect, warns about namespaces that changed under a bdev.
 *    The bdevs stay registered throughout.
 *  - detach (or a failed attach, or shutdown): the queues stop on their
 *    reactors (what they hold fails with -ENXIO), their queue pairs are
 *    deleted, the controller is shut down (CC.SHN) and everything freed.
 *
 * Threads: all of it on reactor 0; the queues (bdev_nvme.c) are reached by
 * messages and answer by messages. Reactor 0 drives the core from a poller
 * while it is busy (with sleeps bounded to 1 ms then), a 100 ms timer
 * (keep-alive, reconnect schedule) and kicks from the queues.
 */
#include "module/bdev_nvme_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

NVL_LOG_REGISTER_COMPONENT(bdev_nvme)

#define NVME_TICK_US 100000
#define NVME_ADMIN_TIMEOUT_MS 10000
#define NVME_MAX_BACKOFF 8

static TAILQ_HEAD(, nvme_ctrlr) g_ctrlrs = TAILQ_HEAD_INITIALIZER(g_ctrlrs);

static void ctrlr_teardown(struct nvme_ctrlr *c);

static enum nvme_phase
ctrlr_phase(const struct nvme_ctrlr *c)
{
	return (enum nvme_phase)__atomic_load_n(&c->phase, __ATOMIC_RELAXED);
}

static void
ctrlr_set_phase(struct nvme_ctrlr *c, enum nvme_phase p)
{
	__atomic_store_n(&c->phase, p, __ATOMIC_RELAXED);
}

int
bdev_nvme_fail_errno(const struct nvme_ctrlr *c)
{
	if (ctrlr_phase(c) == NVME_DETACHING || c->hc == NULL)
		return -ENXIO;
	switch (host_ctrlr_fail_mode(c->hc)) {
	case HOST_FAIL_FAST: return -EIO;
	case HOST_FAIL_GONE: return -ENXIO;
	default: return 0;
	}
}

const char *
bdev_nvme_ctrlr_state(const struct nvme_ctrlr *c)
{
	switch (ctrlr_phase(c)) {
	case NVME_ATTACHING: return c->wait_since_ns ? "reconnecting" : "attaching";
	case NVME_WAITING: return c->given_up ? "failed" : "waiting to reconnect";
	case NVME_DETACHING: return "detaching";
	default: break;
	}
	switch (host_ctrlr_state(c->hc)) {
	case HOST_CTRLR_READY: return "ready";
	case HOST_CTRLR_WAIT_RECONNECT: return "waiting to reconnect";
	case HOST_CTRLR_RECONNECTING: return "reconnecting";
	case HOST_CTRLR_FAILED: return "failed";
	default: return "detaching";
	}
}

/* ---- finishing ---------------------------------------------------------------------------- */

static void
ctrlr_report(struct nvme_ctrlr *c, int rc, const char *why)
{
	nvme_done_fn done = c->done;

	c->done = NULL;
	if (done)
		done(c->done_arg, c, rc, why);
}

static void ctrlr_park(struct nvme_ctrlr *c);
static void ctrlr_waiting_tick(struct nvme_ctrlr *c);

/* A controller that waits for its target (not given up): waiting, trying,
 * or undoing a failed try before it waits again (c->park). */
static bool
ctrlr_will_attach(const struct nvme_ctrlr *c)
{
	enum nvme_phase ph = ctrlr_phase(c);

	if (c->given_up)
		return false;
	return ph == NVME_WAITING || ph == NVME_ATTACHING || (ph == NVME_DETACHING && c->park);
}

/* nvl_bdev_pending(): a controller waiting for its target (not given up)
 * will bring bdevs NAMEn<nsid>. */
static bool
bdev_nvme_bdev_pending(const char *name)
{
	for (struct nvme_ctrlr *c = bdev_nvme_ctrlr_first(); c; c = bdev_nvme_ctrlr_next(c)) {
		size_t n = strlen(c->o.name);
		const char *p = name + n;

		if (!ctrlr_will_attach(c))
			continue;
		if (strncmp(name, c->o.name, n) != 0 || p[0] != 'n' || p[1] < '1' || p[1] > '9')
			continue;
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
		if (*p == '\0')
			return true;
	}
	return false;
}

static void
nvme_ctrlr_free(struct nvme_ctrlr *c)
{
	if (c->park) {
		/* a failed attach of a controller that waits for its target */
		c->park = false;
		ctrlr_park(c);
		return;
	}
	nvl_timer_destroy(c->timer);
	nvl_poller_destroy(c->poller);
	for (unsigned i = 0; i < c->nbdevs; i++)
		if (c->bdevs[i])
			c->bdevs[i]->ctrlr = NULL;
	TAILQ_REMOVE(&g_ctrlrs, c, link);
	NVL_DEBUGLOG(bdev_nvme, "%s: freed", c->o.name);
	ctrlr_report(c, c->fail_rc, c->last_error);
	host_ctrlr_destroy(c->hc);
	for (unsigned i = 0; i < c->nioq; i++)
		free(c->ioq[i]);
	free(c);
}

/* Attaching failed: log, undo, and tell the caller when all is gone. */
static void
attach_fail(struct nvme_ctrlr *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
attach_fail(struct nvme_ctrlr *c, int rc, const char *fmt, ...)
{
	va_list ap;

	if (ctrlr_phase(c) == NVME_DETACHING)
		return; /* already being undone (a detach, or an earlier failure) */
	va_start(ap, fmt);
	vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
	va_end(ap);
	c->fail_rc = rc;
	if (c->o.retry_first_connect) {
		/* try again later: logged once, when it starts waiting */
		NVL_DEBUGLOG(bdev_nvme, "%s: attempt %u failed: %s", c->o.name, c->attempts,
			     c->last_error);
		c->park = true;
	} else {
		NVL_ERRLOG("%s: cannot attach %s:%s %s: %s", c->o.name, c->o.traddr,
			   c->o.trsvcid, c->o.subnqn, c->last_error);
	}
	ctrlr_teardown(c);
}

/* ---- driving the core ------------------------------------------------------------------------ */

static void attach_check_queues(struct nvme_ctrlr *c);

static int
ctrlr_poll_now(struct nvme_ctrlr *c)
{
	int work;

	if (c->closed) {
		nvme_ctrlr_free(c);
		return 1;
	}
	if (c->hc == NULL) {
		ctrlr_waiting_tick(c);
		return 0;
	}
	work = host_ctrlr_poll(c->hc, nvl_now_ns());
	if (ctrlr_phase(c) == NVME_ATTACHING && c->queues_made && !c->queues_started)
		attach_check_queues(c);
	if (host_ctrlr_state(c->hc) != HOST_CTRLR_READY && host_ctrlr_last_error(c->hc)[0])
		nvl_strlcpy(c->last_error, host_ctrlr_last_error(c->hc), sizeof(c->last_error));
	return work;
}

static int
ctrlr_poller(void *arg)
{
	struct nvme_ctrlr *c = arg;

	if (!c->closed && (c->hc == NULL || !host_ctrlr_busy(c->hc)))
		return 0;
	return ctrlr_poll_now(c) > 0;
}

/* While the core waits for answers, the reactor sleeps 1 ms at most. */
static int
ctrlr_sleep(void *arg)
{
	struct nvme_ctrlr *c = arg;

	if (c->closed || (c->hc && host_ctrlr_busy(c->hc)))
		nvl_reactor_sleep_at_most(1);
	return 0;
}

static void
ctrlr_tick(void *arg)
{
	ctrlr_poll_now(arg);
}

static void
ctrlr_kick_msg(void *arg)
{
	ctrlr_poll_now(arg);
}

/* Any thread (a queue saw its connection fail): poll on reactor 0 soon. */
static void
ctrlr_kick(void *arg)
{
	if (nvl_reactor_msg(nvl_reactor_get(0), ctrlr_kick_msg, arg) < 0)
		NVL_WARNLOG("%s: cannot reach reactor 0", ((struct nvme_ctrlr *)arg)->o.name);
}

/* Reactor 0 (the core): a queue pair's connection changed. */
static void
ctrlr_qpair_kick(void *arg, struct host_qpair *qp)
{
	struct nvme_ioq *q = host_qpair_ctx(qp);

	(void)arg;
	if (q && q->ctrlr->queues_started && !q->stopping)
		bdev_nvme_ioq_kick(q);
}

/* ---- bdevs -------------------------------------------------------------------------------------- */

static int
bdevs_create(struct nvme_ctrlr *c)
{
	const struct nvl_nvme_id_ctrl *id = host_ctrlr_id(c->hc);
	bool shm = strcmp(c->o.trtype, "SHM") == 0;

	unsigned max = c->o.max_bdevs ? NVL_MIN(c->o.max_bdevs, (unsigned)HOST_MAX_NS) : HOST_MAX_NS;

	for (unsigned i = 0; i < host_ctrlr_ns_count(c->hc) && c->nbdevs < max; i++) {
		const struct nvl_ns_info *ns = host_ctrlr_ns(c->hc, i);
		static const uint8_t zero[16];
		struct nvme_bdev *nb;
		int rc;

		if (ns->block_size == 0)
			continue; /* an LBA format a bdev cannot have */
		nb = calloc(1, sizeof(*nb));
		if (nb == NULL)
			return -ENOMEM;
		nb->ctrlr = c;
		nb->nsid = ns->nsid;
		nb->lbads = (uint8_t)__builtin_ctz(ns->block_size);
		snprintf(nb->bdev.name, sizeof(nb->bdev.name), "%sn%u", c->o.name, nb->nsid);
		nb->bdev.product_name = shm				  ? "NVMe/shm disk"
					: strcmp(c->o.trtype, "RDMA") == 0 ? "NVMe/RDMA disk"
									   : "NVMe/TCP disk";
		nb->bdev.ops = &g_nvme_bdev_ops;
		nb->bdev.block_size = ns->block_size;
		nb->bdev.num_blocks = ns->num_blocks;
		nb->bdev.read_only = ns->read_only;
		nb->bdev.write_cache = true;
		nb->bdev.io_types = (1u << NVL_BDEV_IO_READ) | (1u << NVL_BDEV_IO_WRITE) |
				    (1u << NVL_BDEV_IO_FLUSH);
		if (id->oncs & NVL_NVME_ONCS_WRITE_ZEROES)
			nb->bdev.io_types |= 1u << NVL_BDEV_IO_WRITE_ZEROES;
		if (id->oncs & NVL_NVME_ONCS_DSM)
			nb->bdev.io_types |= 1u << NVL_BDEV_IO_UNMAP;
		if (memcmp(ns->nguid, zero, 16) != 0)
			memcpy(nb->bdev.uuid, ns->nguid, 16);
		rc = nvl_bdev_register(&nb->bdev);
		if (rc < 0) {
			NVL_ERRLOG("%s: cannot register bdev %s: %s", c->o.name, nb->bdev.name,
				   strerror(-rc));
			free(nb);
			return rc;
		}
		c->bdevs[c->nbdevs++] = nb;
	}
	return 0;
}

static void
bdevs_unregister(struct nvme_ctrlr *c)
{
	for (unsigned i = 0; i < c->nbdevs; i++) {
		struct nvme_bdev *nb = c->bdevs[i];

		if (nb == NULL)
			continue;
		nb->ctrlr = NULL;
		c->bdevs[i] = NULL;
		nvl_bdev_unregister(&nb->bdev);
	}
}

/* After a reconnect: the namespaces must still be what the bdevs describe. */
static void
bdevs_check(struct nvme_ctrlr *c)
{
	for (unsigned i = 0; i < c->nbdevs; i++) {
		struct nvme_bdev *nb = c->bdevs[i];
		const struct nvl_ns_info *ns;

		if (nb == NULL)
			continue;
		ns = host_ctrlr_ns_find(c->hc, nb->nsid);
		if (ns == NULL || ns->block_size != nb->bdev.block_size ||
		    ns->num_blocks < nb->bdev.num_blocks)
			NVL_WARNLOG("%s: namespace %u changed or vanished across the reconnect; "
				    "its I/O will fail", c->o.name, nb->nsid);
	}
}

/* ---- attaching ------------------------------------------------------------------------------------- */

/* The association is up: make one queue pair per I/O queue. */
static void
attach_connected(struct nvme_ctrlr *c)
{
	const struct nvl_nvme_id_ctrl *id = host_ctrlr_id(c->hc);
	unsigned nr = nvl_reactor_count() ? nvl_reactor_count() : 1;
	struct host_qpair_opts qo = { 0 };

	if (id->cntrltype == NVL_NVME_CNTRLTYPE_DISCOVERY) {
		attach_fail(c, -ECONNREFUSED, "%s is a discovery controller", c->o.subnqn);
		return;
	}
	if (host_ctrlr_max_io_queues(c->hc) < c->nioq) {
		attach_fail(c, -ECONNREFUSED, "the controller grants %u I/O queues, %u wanted",
			    host_ctrlr_max_io_queues(c->hc), c->nioq);
		return;
	}
	qo.entries = NVL_MIN(c->o.io_queue_size, (uint32_t)host_ctrlr_max_queue_entries(c->hc));
	qo.interrupts = true;
	for (unsigned i = 0; i < c->nioq; i++) {
		struct nvme_ioq *q = c->ioq[i];
		unsigned r = i % nr;
		int rc;

		q->ctrlr = c;
		q->idx = i;
		q->reactor = nvl_reactor_get(r);
		rc = host_qpair_create(c->hc, &qo, &q->qp);
		if (rc < 0) {
			attach_fail(c, -ECONNREFUSED, "I/O queue %u: %s", i + 1, strerror(-rc));
			return;
		}
		host_qpair_set_ctx(q->qp, q);
		c->by_reactor[r][c->nby_reactor[r]++] = q;
	}
	c->queues_made = true;
}

/* Every queue pair connected: hand the queues to their reactors. */
static void
attach_check_queues(struct nvme_ctrlr *c)
{
	for (unsigned i = 0; i < c->nioq; i++) {
		int rc = host_qpair_connect_rc(c->ioq[i]->qp);

		if (rc == -EINPROGRESS)
			return;
		if (rc < 0) {
			attach_fail(c, -ECONNREFUSED, "%s", host_ctrlr_last_error(c->hc));
			return;
		}
	}
	c->queues_started = true;
	c->started = 0;
	for (unsigned i = 0; i < c->nioq; i++) {
		if (nvl_reactor_msg(c->ioq[i]->reactor, bdev_nvme_ioq_start, c->ioq[i]) < 0) {
			NVL_ERRLOG("%s: cannot reach the reactor of I/O queue %u", c->o.name, i + 1);
			bdev_nvme_ctrlr_ioq_started(c);
		}
	}
}

void
bdev_nvme_ctrlr_ioq_started(void *arg)
{
	struct nvme_ctrlr *c = arg;
	int rc;

	if (++c->started < c->nioq || ctrlr_phase(c) != NVME_ATTACHING)
		return;
	rc = bdevs_create(c);
	if (rc < 0) {
		bdevs_unregister(c);
		attach_fail(c, rc, "cannot register the bdevs");
		return;
	}
	ctrlr_set_phase(c, NVME_ACTIVE);
	NVL_NOTICELOG("%s: attached %s at %s:%s (cntlid %u, %u I/O queues, %u namespaces)%s",
		      c->o.name, c->o.subnqn, c->o.traddr, c->o.trsvcid, host_ctrlr_cntlid(c->hc),
		      c->nioq, c->nbdevs, c->wait_since_ns ? " after waiting for it" : "");
	c->wait_since_ns = 0;
	c->last_error[0] = '\0';
	ctrlr_report(c, 0, NULL);
}

static int
nvme_ctrlr_event(void *arg, struct host_ctrlr *hc, enum host_event ev)
{
	struct nvme_ctrlr *c = arg;
	double out;

	switch (ev) {
	case HOST_EV_CONNECTED:
		attach_connected(c);
		break;
	case HOST_EV_CONNECT_FAILED:
		/* the host core's own errno: no such subsystem, not allowed, ... */
		attach_fail(c, host_ctrlr_errno(hc) ? host_ctrlr_errno(hc) : -ECONNREFUSED, "%s",
			    host_ctrlr_last_error(hc));
		break;
	case HOST_EV_LOST:
		nvl_strlcpy(c->last_error, host_ctrlr_last_error(hc), sizeof(c->last_error));
		if (ctrlr_phase(c) == NVME_ATTACHING) {
			attach_fail(c, -ECONNREFUSED, "%s", c->last_error);
			break;
		}
		if (ctrlr_phase(c) == NVME_ACTIVE)
			NVL_WARNLOG("%s: connection to %s:%s lost: %s; reconnecting", c->o.name,
				    c->o.traddr, c->o.trsvcid, c->last_error);
		break;
	case HOST_EV_RECONNECTED:
		bdevs_check(c);
		break;
	case HOST_EV_READY:
		out = (double)(nvl_now_ns() - host_ctrlr_lost_ns(hc)) / 1e9;
		NVL_NOTICELOG("%s: reconnected to %s:%s after %.1f s (%u attempt%s)", c->o.name,
			      c->o.traddr, c->o.trsvcid, out, host_ctrlr_attempts(hc),
			      host_ctrlr_attempts(hc) == 1 ? "" : "s");
		break;
	case HOST_EV_FAST_FAIL:
		NVL_WARNLOG("%s: down for %u s: failing its I/O until it is back", c->o.name,
			    c->o.fast_io_fail_timeout_sec);
		break;
	case HOST_EV_GIVEN_UP:
		if (ctrlr_phase(c) == NVME_ACTIVE)
			NVL_ERRLOG("%s: no controller at %s:%s for %lld s: giving up (its I/O "
				   "fails until it is detached)",
				   c->o.name, c->o.traddr, c->o.trsvcid,
				   (long long)c->o.ctrlr_loss_timeout_sec);
		break;
	case HOST_EV_CLOSED:
		c->closed = true; /* freed by the next tick, outside the core's call */
		break;
	}
	return 0;
}

static int
ctrlr_uri(const struct nvme_ctrlr_opts *o, struct nvl_uri *u)
{
	memset(u, 0, sizeof(*u));
	if (strcmp(o->trtype, "SHM") == 0) {
		u->kind = NVL_URI_NVME_SHM;
		if (o->traddr[0] != '/' || nvl_strlcpy(u->path, o->traddr, sizeof(u->path)) < 0)
			return -EINVAL;
	} else {
		u->kind = strcmp(o->trtype, "RDMA") == 0 ? NVL_URI_NVME_RDMA : NVL_URI_NVME_TCP;
		if (nvl_strlcpy(u->host, o->traddr, sizeof(u->host)) < 0 ||
		    nvl_strlcpy(u->port, o->trsvcid, sizeof(u->port)) < 0)
			return -EINVAL;
	}
	nvl_strlcpy(u->nqn, o->subnqn, sizeof(u->nqn));
	return 0;
}

/* A new core controller for c's options; the first association starts. */
static int
ctrlr_connect(struct nvme_ctrlr *c)
{
	struct host_ctrlr_opts ho;
	struct nvl_uri uri;
	int rc;

	rc = ctrlr_uri(&c->o, &uri);
	if (rc < 0)
		return rc;
	host_ctrlr_opts_default(&ho);
	ho.uri = &uri;
	ho.hostnqn = c->o.hostnqn;
	memcpy(ho.hostid, c->o.hostid, 16);
	ho.kato_ms = c->o.kato_ms;
	ho.send_keepalive = true;
	ho.connect_timeout_ms = c->o.connect_timeout_ms;
	ho.admin_timeout_ms = NVME_ADMIN_TIMEOUT_MS;
	ho.hdgst = c->o.hdgst;
	ho.ddgst = c->o.ddgst;
	ho.numeric_host = true;
	ho.io_queues = (uint16_t)c->nioq;
	ho.scan_ns = true;
	ho.ctrlr_loss_ms = c->o.ctrlr_loss_timeout_sec < 0 ? -1 : c->o.ctrlr_loss_timeout_sec * 1000;
	ho.reconnect_delay_ms = NVL_MAX(c->o.reconnect_delay_sec, 1u) * 1000;
	ho.reconnect_delay_max_ms = ho.reconnect_delay_ms * NVME_MAX_BACKOFF;
	ho.fast_io_fail_ms = c->o.fast_io_fail_timeout_sec * 1000;
	ho.event = nvme_ctrlr_event;
	ho.kick = ctrlr_kick;
	ho.qpair_kick = ctrlr_qpair_kick;
	ho.arg = c;
	if (c->o.dhchap_key[0]) {
		/* read at each connect: a key file replaced meanwhile is used */
		rc = nvl_keyring_load(c->o.dhchap_key, &ho.dhchap_key);
		if (rc == 0 && c->o.dhchap_ctrlr_key[0])
			rc = nvl_keyring_load(c->o.dhchap_ctrlr_key, &ho.dhchap_ctrlr_key);
		if (rc < 0) {
			snprintf(c->last_error, sizeof(c->last_error),
				 "DH-HMAC-CHAP keys %s%s%s: %s", c->o.dhchap_key,
				 c->o.dhchap_ctrlr_key[0] ? "/" : "", c->o.dhchap_ctrlr_key,
				 rc == -ENOENT ? "not in the keyring" : strerror(-rc));
			nvl_dhchap_key_wipe(&ho.dhchap_key);
			return rc;
		}
	}
	c->attempts++;
	rc = host_ctrlr_create(&ho, &c->hc);
	nvl_dhchap_key_wipe(&ho.dhchap_key); /* the core has its copy */
	nvl_dhchap_key_wipe(&ho.dhchap_ctrlr_key);
	if (rc == 0)
		ctrlr_set_phase(c, NVME_ATTACHING);
	return rc;
}

/* ---- waiting for a controller that was never reached ------------------------------------------- */

/*
 * retry_first_connect (a configuration being loaded, a discovery entry): an
 * attach that failed leaves the controller waiting (no core controller, no
 * queue pairs, no bdevs) and tries again every reconnect_delay_sec until it
 * attaches, ctrlr_loss_timeout_sec passes (then it stays "failed" until
 * detached) or it is detached. One log line per change of state.
 */
static void
ctrlr_park(struct nvme_ctrlr *c)
{
	uint64_t now = nvl_now_ns();

	host_ctrlr_destroy(c->hc);
	c->hc = NULL;
	c->queues_made = c->queues_started = c->closed = false;
	c->started = c->stopped = c->qp_left = 0;
	memset(c->nby_reactor, 0, sizeof(c->nby_reactor));
	memset(c->rr, 0, sizeof(c->rr));
	for (unsigned i = 0; i < c->nioq; i++)
		memset(c->ioq[i], 0, sizeof(*c->ioq[i]));
	if (c->wait_since_ns == 0) {
		c->wait_since_ns = now;
		NVL_WARNLOG("%s: cannot reach %s at %s:%s (%s); waiting to reconnect every %u s",
			    c->o.name, c->o.subnqn, c->o.traddr, c->o.trsvcid, c->last_error,
			    NVL_MAX(c->o.reconnect_delay_sec, 1u));
	}
	ctrlr_set_phase(c, NVME_WAITING);
	/* a configuration that uses its bdevs waits for them (app.c) */
	(void)nvl_bdev_pending_register(bdev_nvme_bdev_pending);
	if (c->o.ctrlr_loss_timeout_sec >= 0 &&
	    now - c->wait_since_ns >= (uint64_t)c->o.ctrlr_loss_timeout_sec * 1000000000ull) {
		c->given_up = true;
		NVL_ERRLOG("%s: no controller at %s:%s for %lld s: giving up (detach it, or "
			   "attach it again)",
			   c->o.name, c->o.traddr, c->o.trsvcid,
			   (long long)c->o.ctrlr_loss_timeout_sec);
	}
	c->retry_at_ns = now + (uint64_t)NVL_MAX(c->o.reconnect_delay_sec, 1u) * 1000000000ull;
	c->fail_rc = 0;
	ctrlr_report(c, 0, NULL); /* the caller's attach is done: it waits */
}

/* Reactor 0, the tick of a waiting controller: time for the next attempt? */
static void
ctrlr_waiting_tick(struct nvme_ctrlr *c)
{
	int rc;

	if (c->given_up || nvl_now_ns() < c->retry_at_ns)
		return;
	rc = ctrlr_connect(c);
	if (rc < 0) {
		NVL_DEBUGLOG(bdev_nvme, "%s: attempt %u: %s", c->o.name, c->attempts,
			     strerror(-rc));
		c->retry_at_ns =
			nvl_now_ns() + (uint64_t)NVL_MAX(c->o.reconnect_delay_sec, 1u) * 1000000000ull;
	}
}

int
bdev_nvme_attach(const struct nvme_ctrlr_opts *o, nvme_done_fn done, void *arg,
		 struct nvme_ctrlr **out)
{
	unsigned nr = nvl_reactor_count() ? nvl_reactor_count() : 1;
	struct nvme_ctrlr *c;
	struct nvl_uri uri;
	int rc;

	if (bdev_nvme_ctrlr_find(o->name))
		return -EEXIST;
	rc = ctrlr_uri(o, &uri);
	if (rc < 0)
		return rc;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->o = *o;
	c->nioq = NVL_MIN(NVL_MAX(o->num_io_queues, nr), (unsigned)NVME_MAX_IOQ);
	for (unsigned i = 0; i < c->nioq; i++) {
		c->ioq[i] = calloc(1, sizeof(*c->ioq[i]));
		if (c->ioq[i] == NULL) {
			rc = -ENOMEM;
			goto err_free;
		}
	}
	c->poller = nvl_poller_create(ctrlr_poller, c, "bdev-nvme-ctrlr");
	c->timer = nvl_timer_create(ctrlr_tick, c, NVME_TICK_US, NVME_TICK_US);
	if (c->poller == NULL || c->timer == NULL) {
		rc = -ENOMEM;
		goto err_driver;
	}
	nvl_poller_set_sleep_hook(c->poller, ctrlr_sleep);
	rc = ctrlr_connect(c);
	if (rc < 0 && !(o->retry_first_connect && rc != -EINVAL && rc != -EHOSTUNREACH))
		goto err_driver;
	c->done = done;
	c->done_arg = arg;
	TAILQ_INSERT_TAIL(&g_ctrlrs, c, link);
	if (rc < 0) {
		snprintf(c->last_error, sizeof(c->last_error), "%s", strerror(-rc));
		ctrlr_park(c);
	}
	if (out)
		*out = c;
	return 0;
err_driver:
	nvl_timer_destroy(c->timer);
	nvl_poller_destroy(c->poller);
err_free:
	for (unsigned i = 0; i < c->nioq; i++)
		free(c->ioq[i]);
	free(c);
	return rc;
}

/* ---- detaching ---------------------------------------------------------------------------------- */

static void
qpair_freed(void *arg)
{
	struct nvme_ctrlr *c = arg;

	if (--c->qp_left == 0)
		host_ctrlr_close(c->hc); /* HOST_EV_CLOSED follows */
}

/* The queues stopped: delete their queue pairs, then close. */
static void
teardown_qpairs(struct nvme_ctrlr *c)
{
	c->qp_left = 1; /* held while destroying */
	for (unsigned i = 0; i < c->nioq; i++) {
		struct nvme_ioq *q = c->ioq[i];

		if (q->qp == NULL)
			continue;
		c->qp_left++;
		host_qpair_destroy(q->qp, qpair_freed, c);
		q->qp = NULL;
	}
	qpair_freed(c);
}

void
bdev_nvme_ctrlr_ioq_stopped(void *arg)
{
	struct nvme_ctrlr *c = arg;

	if (++c->stopped == c->nioq)
		teardown_qpairs(c);
}

static void
ctrlr_teardown(struct nvme_ctrlr *c)
{
	if (ctrlr_phase(c) == NVME_DETACHING)
		return; /* already under way */
	ctrlr_set_phase(c, NVME_DETACHING);
	c->stopped = 0;
	if (!c->queues_started) {
		/* the queues never left reactor 0: stop them here */
		for (unsigned i = 0; i < c->nioq; i++)
			if (c->ioq[i]->qp)
				host_qpair_stop(c->ioq[i]->qp, false);
		teardown_qpairs(c);
		return;
	}
	for (unsigned i = 0; i < c->nioq; i++) {
		c->ioq[i]->stopping = true;
		if (nvl_reactor_msg(c->ioq[i]->reactor, bdev_nvme_ioq_stop, c->ioq[i]) < 0) {
			NVL_ERRLOG("%s: cannot reach the reactor of I/O queue %u", c->o.name, i + 1);
			bdev_nvme_ctrlr_ioq_stopped(c);
		}
	}
}

int
bdev_nvme_detach(struct nvme_ctrlr *c, nvme_done_fn done, void *arg, char *why, size_t why_len)
{
	if (c->o.retry_first_connect && c->done == NULL &&
	    (ctrlr_phase(c) == NVME_WAITING || ctrlr_phase(c) == NVME_ATTACHING)) {
		/* waiting for its target (or trying it again): nothing to undo but the attempt */
		c->o.retry_first_connect = false;
		c->park = false;
		c->done = done;
		c->done_arg = arg;
		c->fail_rc = 0;
		c->last_error[0] = '\0';
		if (ctrlr_phase(c) == NVME_WAITING) {
			ctrlr_set_phase(c, NVME_DETACHING);
			c->closed = true; /* freed by the next tick */
		} else {
			ctrlr_teardown(c);
		}
		return 0;
	}
	if (ctrlr_phase(c) != NVME_ACTIVE) {
		snprintf(why, why_len, "controller %s is %s", c->o.name, bdev_nvme_ctrlr_state(c));
		return -EBUSY;
	}
	for (unsigned i = 0; i < c->nbdevs; i++) {
		if (c->bdevs[i] && c->bdevs[i]->bdev.open_count > 0) {
			snprintf(why, why_len, "bdev %s is in use by %s", c->bdevs[i]->bdev.name,
				 c->bdevs[i]->bdev.claimed_by);
			return -EBUSY;
		}
	}
	bdevs_unregister(c);
	c->done = done;
	c->done_arg = arg;
	c->fail_rc = 0;
	c->last_error[0] = '\0';
	ctrlr_teardown(c);
	return 0;
}

bool
bdev_nvme_ctrlr_in_use(const struct nvme_ctrlr *c, char *why, size_t why_len)
{
	for (unsigned i = 0; i < c->nbdevs; i++) {
		if (c->bdevs[i] && c->bdevs[i]->bdev.open_count > 0) {
			snprintf(why, why_len, "bdev %s is in use by %s", c->bdevs[i]->bdev.name,
				 c->bdevs[i]->bdev.claimed_by);
			return true;
		}
	}
	return false;
}

static void (*g_all_done)(void);
static struct nvl_timer *g_all_timer;

static void
detach_all_poll(void *arg)
{
	(void)arg;
	if (!TAILQ_EMPTY(&g_ctrlrs))
		return;
	nvl_timer_destroy(g_all_timer);
	g_all_timer = NULL;
	g_all_done();
}

void
bdev_nvme_detach_all(void (*done)(void))
{
	struct nvme_ctrlr *c, *t;

	TAILQ_FOREACH_SAFE(c, &g_ctrlrs, link, t) {
		c->o.retry_first_connect = false;
		c->park = false;
		if (ctrlr_phase(c) == NVME_DETACHING)
			continue;
		if (ctrlr_phase(c) == NVME_WAITING) {
			ctrlr_set_phase(c, NVME_DETACHING);
			c->done = NULL;
			c->closed = true;
			continue;
		}
		if (ctrlr_phase(c) == NVME_ATTACHING)
			ctrlr_report(c, -ESHUTDOWN, "the daemon is shutting down");
		bdevs_unregister(c);
		c->done = NULL;
		ctrlr_teardown(c);
	}
	g_all_done = done;
	if (TAILQ_EMPTY(&g_ctrlrs)) {
		done();
		return;
	}
	g_all_timer = nvl_timer_create(detach_all_poll, NULL, 1000, 1000);
	if (g_all_timer == NULL)
		done();
}

/* ---- lookup and description ---------------------------------------------------------------------- */

struct nvme_ctrlr *
bdev_nvme_ctrlr_find(const char *name)
{
	struct nvme_ctrlr *c;

	TAILQ_FOREACH(c, &g_ctrlrs, link)
		if (strcmp(c->o.name, name) == 0)
			return c;
	return NULL;
}

struct nvme_ctrlr *
bdev_nvme_ctrlr_first(void)
{
	return TAILQ_FIRST(&g_ctrlrs);
}

struct nvme_ctrlr *
bdev_nvme_ctrlr_next(struct nvme_ctrlr *c)
{
	return TAILQ_NEXT(c, link);
}

json_t *
bdev_nvme_ctrlr_info(struct nvme_ctrlr *c)
{
	json_t *bd = json_array(), *o;

	for (unsigned i = 0; i < c->nbdevs; i++)
		if (c->bdevs[i])
			json_array_append_new(bd, json_string(c->bdevs[i]->bdev.name));
	o = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:i, s:i, s:o, s:I, s:I, s:i, "
		      "s:b, s:b}",
		      "name", c->o.name, "state", bdev_nvme_ctrlr_state(c), "trid", "trtype",
		      c->o.trtype, "adrfam", c->o.adrfam, "traddr", c->o.traddr, "trsvcid",
		      c->o.trsvcid, "subnqn", c->o.subnqn, "hostnqn", c->o.hostnqn, "cntlid",
		      c->hc ? (int)host_ctrlr_cntlid(c->hc) : 0, "num_io_queues", (int)c->nioq,
		      "bdevs", bd, "resets", c->hc ? (json_int_t)host_ctrlr_losses(c->hc) : 0,
		      "reconnects", c->hc ? (json_int_t)host_ctrlr_reconnects(c->hc) : 0,
		      "reconnect_attempts",
		      c->wait_since_ns ? (int)c->attempts : c->hc ? (int)host_ctrlr_attempts(c->hc) : 0,
		      "hdgst", c->o.hdgst, "ddgst", c->o.ddgst);
	if (c->last_error[0])
		json_object_set_new(o, "last_error", json_string(c->last_error));
	if (c->disc_name[0])
		json_object_set_new(o, "discovery", json_string(c->disc_name));
	return o;
}

json_t *
bdev_nvme_ctrlr_config(const struct nvme_ctrlr *c)
{
	char hostid[40];
	json_t *call;

	if (c->disc_name[0])
		return NULL; /* its discovery service's call recreates it */
	nvl_uuid_fmt(c->o.hostid, hostid);
	call = json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:i, s:i, s:I, "
			 "s:i, s:i, s:i}}",
			 "method", "bdev_nvme_attach_controller", "params", "name", c->o.name,
			 "trtype",
			 strcmp(c->o.trtype, "SHM") == 0	  ? "shm"
			 : strcmp(c->o.trtype, "RDMA") == 0 ? "rdma"
							    : "tcp",
			 "adrfam",
			 c->o.adrfam, "traddr", c->o.traddr, "trsvcid", c->o.trsvcid, "subnqn",
			 c->o.subnqn, "hostnqn", c->o.hostnqn, "hostid", hostid, "hdgst", c->o.hdgst,
			 "ddgst", c->o.ddgst, "num_io_queues", (int)c->o.num_io_queues,
			 "io_queue_size", (int)c->o.io_queue_size, "ctrlr_loss_timeout_sec",
			 (json_int_t)c->o.ctrlr_loss_timeout_sec, "reconnect_delay_sec",
			 (int)c->o.reconnect_delay_sec, "fast_io_fail_timeout_sec",
			 (int)c->o.fast_io_fail_timeout_sec, "keep_alive_timeout_ms", (int)c->o.kato_ms);

	if (call && c->o.dhchap_key[0])
		json_object_set_new(json_object_get(call, "params"), "dhchap_key",
				    json_string(c->o.dhchap_key));
	if (call && c->o.dhchap_ctrlr_key[0])
		json_object_set_new(json_object_get(call, "params"), "dhchap_ctrlr_key",
				    json_string(c->o.dhchap_ctrlr_key));
	if (call && c->o.max_bdevs)
		json_object_set_new(json_object_get(call, "params"), "max_bdevs",
				    json_integer(c->o.max_bdevs));
	return call;
}
