/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * shm transport, queues (shm.c says who owns what): the I/O path on a CQ's
 * reactor (SQ pollers copying each SQE out of shared memory once, then
 * checking and executing it; completions posted with the phase bit,
 * waiting for CQ space when the host is slow; interrupts through the
 * vector's eventfd) and each queue's lifecycle (created by the admin
 * commands Create I/O CQ/SQ on reactor 0, started and stopped on its
 * reactor by messages, freed there once drained, "gone" reported home).
 * An out-of-range doorbell makes the controller fatal, never the daemon.
 */
#include "transport/shm_internal.h"
#include "transport/shm_map.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* a hostile host must not fill the log: one line a second per call site */
#define SHM_LOG_RL(logfn, ...)                                                                     \
	do {                                                                                       \
		static uint64_t _rl_last, _rl_supp;                                                \
		if (nvl_log_ratelimit(&_rl_last, &_rl_supp))                                       \
			logfn(__VA_ARGS__);                                                        \
	} while (0)

NVL_LOG_DECLARE_COMPONENT(shm);

/* ---- I/O path (the CQ's reactor) ------------------------------------------- */

void
shm_cq_interrupt(struct shm_cq *cq)
{
	uint64_t one = 1;

	if (cq->ien && shm_take_wakeup(&cq->page->irq_armed)) {
		NVL_STAT_INC(cq->interrupts);
		(void)!write(cq->irq_fd, &one, sizeof(one));
	}
}

static void shm_sq_fatal(struct shm_sq *sq);
static void shm_sq_maybe_gone(struct shm_sq *sq);

/* Post one completion for sq (of request r, NULL: a command never fetched);
 * false if the CQ is full (the caller waits). When kept, r's slot records the
 * completion and its post number first (a worker killed before the CQ's
 * post count moved posts it again at the same place; after, finds it done). */
static bool
shm_cq_post(struct shm_cq *cq, struct shm_sq *sq, struct shm_req *r, const struct nvl_nvme_cpl *in)
{
	struct nvl_nvme_cpl cpl = *in;

	if (shm_ring_full(cq->head_cache, cq->tail, cq->entries)) {
		/* Pairs with the host's release store of the CQ head doorbell. */
		uint32_t head = nvl_smp_load_acquire(&cq->page->head);

		if (head >= cq->entries) {
			shm_sq_fatal(sq);
			return false;
		}
		cq->head_cache = head;
		if (shm_ring_full(head, cq->tail, cq->entries))
			return false;
	}
	cpl.sqhd = (uint16_t)sq->head;
	cpl.sqid = sq->qid;
	if (r && sq->kslots) {
		struct shm_keep_slot *k = &sq->kslots[r - sq->reqs];

		k->cpl = cpl;
		k->seq = cq->posted;
		__atomic_store_n(&k->state, SHM_KS_POSTING, __ATOMIC_RELEASE);
	}
	shm_cqe_post(&cq->ring[cq->tail], &cpl, cq->phase);
	cq->tail = shm_ring_next(cq->tail, cq->entries);
	if (cq->tail == 0)
		cq->phase ^= 1;
	cq->posted++;
	if (cq->kcq)
		__atomic_store_n(&cq->kcq->posted, cq->posted, __ATOMIC_RELEASE);
	NVL_STAT_INC(sq->completed);
	return true;
}

/* Any reactor: the connection is closing, so nobody will consume CQ entries
 * any more (state is written on reactor 0; a racy read only delays this). */
static bool
shm_host_gone(const struct shm_ctrlr *sc)
{
	return __atomic_load_n(&sc->state, __ATOMIC_RELAXED) == C_CLOSING;
}

static void
shm_req_release(struct shm_req *r)
{
	struct shm_sq *sq = r->sq;

	nvl_shm_unmap_data(&r->nvme);
	if (sq->kslots)
		__atomic_store_n(&sq->kslots[r - sq->reqs].state, SHM_KS_FREE, __ATOMIC_RELEASE);
	r->next_free = sq->free_reqs;
	sq->free_reqs = r;
	NVL_STAT_DEC(sq->outstanding);
	if (nvl_unlikely(sq->state != Q_ACTIVE))
		shm_sq_maybe_gone(sq);
}

static void
shm_io_done(struct nvl_nvme_req *nreq)
{
	struct shm_req *r = container_of(nreq, struct shm_req, nvme);
	struct shm_sq *sq = r->sq;
	struct shm_cq *cq = sq->cq;

	if (nvl_unlikely(sq->fatal || shm_host_gone(sq->sc))) {
		shm_req_release(r);
		return;
	}
	if (nvl_unlikely(!TAILQ_EMPTY(&cq->waiting)) || !shm_cq_post(cq, sq, r, &r->nvme.cpl)) {
		NVL_STAT_INC(cq->full_waits);
		TAILQ_INSERT_TAIL(&cq->waiting, r, link);
		return;
	}
	shm_req_release(r);
	shm_cq_interrupt(cq);
}

/* CQ poller: post completions that waited for CQ space. */
static int
shm_cq_poll(void *arg)
{
	struct shm_cq *cq = arg;
	struct shm_req *r;
	int n = 0;

	while ((r = TAILQ_FIRST(&cq->waiting)) != NULL) {
		/* fatal queue or host gone: drop, nobody reads this CQ any more */
		if (!r->sq->fatal && !shm_host_gone(r->sq->sc) &&
		    !shm_cq_post(cq, r->sq, r, &r->nvme.cpl))
			break;
		TAILQ_REMOVE(&cq->waiting, r, link);
		shm_req_release(r);
		n++;
	}
	if (n)
		shm_cq_interrupt(cq);
	return n;
}

/*
 * Sleep hook of the CQ poller. Completions waiting for CQ space wait on the
 * host's CQ head doorbell, a plain store that wakes nobody: post what fits
 * now, and while any still wait, sleep at most 1 ms so they are not left
 * until some unrelated event (a host that frees slots but stays asleep on
 * its interrupt would otherwise wait for the next keep-alive tick).
 */
static int
shm_cq_sleep(void *arg)
{
	struct shm_cq *cq = arg;

	if (TAILQ_EMPTY(&cq->waiting))
		return 0;
	if (shm_cq_poll(cq) > 0)
		return 1;
	nvl_reactor_sleep_at_most(1);
	return 0;
}

/* nvl_nvme_map_fn: PRPs/SGLs are offsets into the host's data window. */
uint16_t
shm_map_window(struct nvl_nvme_req *req, uint32_t len, uint8_t dir, void *ctx)
{
	struct shm_ctrlr *sc = ctx;

	(void)dir;
	return len ? nvl_shm_map_data(req, sc->window.map, sc->window.size, len) : 0;
}

void
shm_sq_exec(struct shm_sq *sq, struct shm_req *r)
{
	struct shm_ctrlr *sc = sq->sc;
	uint16_t st;

	r->nvme.ctrlr = &sc->tc->nvme;
	r->nvme.qid = sq->qid;
	r->nvme.auth = sc->tc->auth; /* made by an authenticated admin queue: its state */
	r->nvme.done = shm_io_done;
	st = nvl_nvme_req_prepare(&r->nvme, shm_map_window, sc);
	if (nvl_unlikely(st)) {
		NVL_DEBUGLOG(shm, "cntlid %u qid %u cid %u opc 0x%02x: refused, status 0x%03x",
			     sc->tc->nvme.cntlid, sq->qid, r->nvme.cmd.cid, r->nvme.cmd.opc,
			     st & 0x7ff);
		nvl_nvme_req_complete(&r->nvme, st);
		return;
	}
	nvl_nvme_execute(&r->nvme);
}

static int
shm_sq_poll(void *arg)
{
	struct shm_sq *sq = arg;
	uint32_t tail;
	int n = 0;

	if (nvl_unlikely(sq->state != Q_ACTIVE || sq->fatal))
		return 0;
	/* a suspended function fetches nothing (shm_fn_set_suspended), nor does
	 * a worker that is handing over (shm_quiesce) */
	if (nvl_unlikely(__atomic_load_n(&sq->sc->suspended, __ATOMIC_ACQUIRE) ||
			 __atomic_load_n(&g_shm_quiesced, __ATOMIC_RELAXED)))
		return 0;
	/* Pairs with the host's release store of its SQ tail doorbell. */
	tail = nvl_smp_load_acquire(&sq->page->tail);
	if (nvl_unlikely(tail >= sq->entries)) {
		shm_sq_fatal(sq);
		return 0;
	}
	while (sq->head != tail && sq->free_reqs) {
		struct shm_req *r = sq->free_reqs;

		sq->free_reqs = r->next_free;
		NVL_STAT_INC(sq->outstanding);
		/* private copy: the host may rewrite the slot at any time */
		memcpy(&r->nvme.cmd, &sq->ring[sq->head], sizeof(r->nvme.cmd));
		sq->head = shm_ring_next(sq->head, sq->entries);
		shm_keep_fetched(sq, r);
		NVL_STAT_INC(sq->submitted);
		n++;
		shm_sq_exec(sq, r);
		if (sq->state != Q_ACTIVE || sq->fatal)
			break;
	}
	if (n) {
		__atomic_store_n(&sq->page->head, sq->head, __ATOMIC_RELEASE);
		__atomic_store_n(&sq->page->ctrl_cpu, (uint32_t)nvl_reactor_cpu_now(),
				 __ATOMIC_RELAXED);
	} else if ((int)__atomic_load_n(&sq->page->host_cpu, __ATOMIC_RELAXED) ==
		   nvl_reactor_cpu_now()) {
		nvl_reactor_yield_hint();
	}
	return n;
}

static int
shm_sq_sleep(void *arg)
{
	struct shm_sq *sq = arg;

	if (sq->state != Q_ACTIVE || sq->fatal)
		return 0;
	shm_arm_wakeup(&sq->page->need_kick);
	/* suspended: sleep until resumed (its kick) */
	if (__atomic_load_n(&sq->sc->suspended, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&g_shm_quiesced, __ATOMIC_RELAXED))
		return 0;
	/* work that raced with arming must not be slept on */
	return nvl_smp_load_acquire(&sq->page->tail) != sq->head;
}

static void
shm_sq_kick(void *arg, uint32_t events)
{
	/* only a wake-up: the loop polls the SQ. The kick eventfd is watched
	 * edge-triggered (every write is an edge) and never read, which saves
	 * a syscall on each wake-up of a sleeping reactor. */
	(void)arg;
	(void)events;
}

/* CQ's reactor, after the connection closed: drop what waits for CQ space
 * (also for SQs whose Delete SQ was still waiting for it). */
void
shm_cq_host_gone(void *arg)
{
	shm_cq_poll(arg);
}

/* ---- queue lifecycle ------------------------------------------------------- */

static void
shm_fatal_on_home(void *arg)
{
	struct shm_ctrlr *sc = arg;

	if (sc->state != C_ACTIVE)
		return;
	nvl_nvme_ctrlr_doorbell_error(&sc->tc->nvme, true);
	NVL_WARNLOG("cntlid %u of host %s: invalid doorbell value; controller fatal, "
		    "disconnecting", sc->tc->nvme.cntlid, sc->tc->nvme.hostnqn);
	sc->tc->nvme.csts |= NVL_NVME_CSTS_CFS;
	shm_conn_teardown(sc, "invalid doorbell write");
}

static void
shm_sq_fatal(struct shm_sq *sq)
{
	if (sq->fatal)
		return;
	sq->fatal = true;
	nvl_reactor_msg(nvl_reactor_get(0), shm_fatal_on_home, sq->sc);
}

struct shm_sq_gone_msg {
	struct shm_ctrlr *sc;
	struct shm_cq *cq;
	struct shm_admin_req *areq;
};

static void
shm_sq_gone_home(void *arg)
{
	struct shm_sq_gone_msg *m = arg;
	struct shm_ctrlr *sc = m->sc;

	m->cq->nsqs--;
	sc->nsq_alive--;
	if (m->areq)
		shm_admin_complete(m->areq, NVL_NVME_SC_SUCCESS);
	if (sc->state == C_CLOSING)
		shm_conn_try_free(sc);
	free(m);
}

static void
shm_sq_free(struct shm_sq *sq)
{
	shm_keep_sq_gone(sq);
	nvl_fd_del(sq->kick_fdh);
	nvl_poller_destroy(sq->poller);
	shm_region_destroy(&sq->region);
	if (sq->kick_fd >= 0)
		close(sq->kick_fd);
	free(sq->reqs);
	free(sq);
}

/* CQ's reactor: free the SQ once deleting and drained. */
static void
shm_sq_maybe_gone(struct shm_sq *sq)
{
	struct shm_sq_gone_msg *m;

	if (sq->state != Q_DELETING || sq->outstanding != 0)
		return;
	sq->state = Q_GONE;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		abort(); /* tiny control-path allocation; nothing sane to do */
	m->sc = sq->sc;
	m->cq = sq->cq;
	m->areq = sq->delete_req;
	NVL_DEBUGLOG(shm, "SQ %u gone: %llu submitted, %llu completed, %llu aborted", sq->qid,
		     (unsigned long long)sq->submitted, (unsigned long long)sq->completed,
		     (unsigned long long)sq->aborted);
	shm_sq_free(sq);
	nvl_reactor_msg(nvl_reactor_get(0), shm_sq_gone_home, m);
}

/* CQ's reactor: stop fetching; commands not fetched yet are aborted (5.6). */
static void
shm_sq_stop_on_reactor(void *arg)
{
	struct shm_sq *sq = arg;

	nvl_poller_destroy(sq->poller);
	sq->poller = NULL;
	nvl_fd_del(sq->kick_fdh);
	sq->kick_fdh = NULL;
	if (shm_host_gone(sq->sc)) {
		struct shm_req *r, *tmp;

		/* Completions waiting for space in a CQ nobody consumes any more
		 * would hold the SQ, and so the connection, forever. Released
		 * while the SQ is still active, so none of them frees it. */
		TAILQ_FOREACH_SAFE(r, &sq->cq->waiting, link, tmp) {
			if (r->sq == sq) {
				TAILQ_REMOVE(&sq->cq->waiting, r, link);
				shm_req_release(r);
			}
		}
	} else if (!sq->fatal && sq->cq->page) {
		uint32_t tail = nvl_smp_load_acquire(&sq->page->tail);

		while (tail < sq->entries && sq->head != tail) {
			struct nvl_nvme_cpl cpl = { 0 };
			struct nvl_nvme_cmd cmd;

			memcpy(&cmd, &sq->ring[sq->head], sizeof(cmd));
			cpl.cid = cmd.cid;
			cpl.status = NVL_NVME_SC_TO_STATUS(NVL_NVME_SC_ABORTED_SQ_DELETION);
			sq->head = shm_ring_next(sq->head, sq->entries);
			shm_keep_skipped(sq);
			if (!TAILQ_EMPTY(&sq->cq->waiting) || !shm_cq_post(sq->cq, sq, NULL, &cpl))
				break; /* no room: the host loses those, as on a real drive */
			NVL_STAT_INC(sq->aborted);
		}
		shm_cq_interrupt(sq->cq);
	}
	sq->state = Q_DELETING;
	shm_sq_maybe_gone(sq);
}

void
shm_sq_start_on_reactor(void *arg)
{
	struct shm_sq *sq = arg;

	sq->poller = nvl_poller_create(shm_sq_poll, sq, "shm-sq");
	if (sq->poller)
		nvl_poller_set_sleep_hook(sq->poller, shm_sq_sleep);
	sq->kick_fdh = nvl_fd_add(sq->kick_fd, EPOLLIN | EPOLLET, shm_sq_kick, sq);
	if (sq->poller == NULL || sq->kick_fdh == NULL)
		NVL_ERRLOG("SQ %u: cannot start its poller; it will not be served", sq->qid);
}

/* reactor 0: start deleting an SQ (admin Delete SQ or teardown) */
void
shm_sq_delete(struct shm_ctrlr *sc, struct shm_sq *sq, struct shm_admin_req *areq)
{
	sc->sqs[sq->qid] = NULL;
	sq->delete_req = areq;
	nvl_reactor_msg(sq->cq->reactor, shm_sq_stop_on_reactor, sq);
}

void
shm_cq_start_on_reactor(void *arg)
{
	struct shm_cq *cq = arg;

	cq->poller = nvl_poller_create(shm_cq_poll, cq, "shm-cq");
	if (cq->poller == NULL)
		NVL_ERRLOG("CQ %u: cannot start its poller", cq->qid);
	else
		nvl_poller_set_sleep_hook(cq->poller, shm_cq_sleep);
}

static void
shm_cq_gone_home(void *arg)
{
	struct shm_ctrlr *sc = arg;

	sc->ncq_alive--;
	if (sc->state == C_CLOSING)
		shm_conn_try_free(sc);
}

static void
shm_cq_free_on_reactor(void *arg)
{
	struct shm_cq *cq = arg;
	struct shm_ctrlr *sc = cq->sc;

	shm_keep_cq_gone(cq);
	nvl_poller_destroy(cq->poller);
	shm_region_destroy(&cq->region);
	nvl_reactor_unpick(cq->reactor);
	free(cq);
	nvl_reactor_msg(nvl_reactor_get(0), shm_cq_gone_home, sc);
}

void
shm_cq_delete(struct shm_ctrlr *sc, struct shm_cq *cq)
{
	sc->cqs[cq->qid] = NULL;
	nvl_reactor_msg(cq->reactor, shm_cq_free_on_reactor, cq);
}

/* ---- admin queue operations (reactor 0) ------------------------------------- */

/* A queue command ends now with status st. */
static enum nvl_nvme_qop
shm_qop_done(uint16_t *status, uint16_t st)
{
	*status = st;
	return NVL_NVME_QOP_DONE;
}

static enum nvl_nvme_qop
shm_create_io_cq(struct nvl_nvme_ctrlr *nc, struct nvl_nvme_req *req, uint16_t *status)
{
	struct shm_admin_req *a = container_of(req, struct shm_admin_req, nvme);
	struct shm_ctrlr *sc = a->sc;
	uint16_t qid = req->cmd.cdw10 & 0xffff;
	uint32_t entries = (req->cmd.cdw10 >> 16) + 1;
	bool pc = req->cmd.cdw11 & 1, ien = (req->cmd.cdw11 >> 1) & 1, new_vector;
	uint16_t iv = (uint16_t)(req->cmd.cdw11 >> 16);
	struct shm_cq *cq;
	char what[32], why[160];
	int rc;

	(void)nc;
	if (a->redo && qid > 0 && qid <= SHM_MAX_QUEUES && (cq = sc->cqs[qid]) != NULL &&
	    cq->entries == entries && cq->ien == ien && (!ien || cq->iv == iv)) {
		/* made before the restart, answered maybe not: the same answer */
		a->fds[0] = cq->region.fd;
		a->nfds = 1;
		if (ien)
			a->fds[a->nfds++] = cq->irq_fd;
		return shm_qop_done(status, NVL_NVME_SC_SUCCESS);
	}
	if (qid == 0 || qid > g_shm_opts.max_io_queues || sc->cqs[qid])
		return shm_qop_done(status, NVL_NVME_DNR(NVL_NVME_SC_INVALID_QID));
	if (entries < 2 || entries > g_shm_opts.max_queue_depth)
		return shm_qop_done(status, NVL_NVME_DNR(NVL_NVME_SC_INVALID_QUEUE_SIZE));
	if (!pc) /* CAP.CQR: contiguous only */
		return shm_qop_done(status, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
	if (ien && iv >= SHM_MAX_VECTORS)
		return shm_qop_done(status, NVL_NVME_DNR(NVL_NVME_SC_INVALID_VECTOR));
	if (shm_budget_check(sc, false, why, sizeof(why)) < 0) {
		SHM_LOG_RL(NVL_WARNLOG, "shm: cntlid %u: Create I/O CQ %u refused: %s",
				      sc->tc->nvme.cntlid, qid, why);
		return shm_qop_done(status, NVL_NVME_DNR(NVL_NVME_SC_INVALID_QID));
	}
	if (ien && sc->fn && sc->vectors[iv] < 0) {
		/* a function has the vectors it took from its PF's pool: no more */
		SHM_LOG_RL(NVL_NOTICELOG, "shm: cntlid %u: CQ %u: the function has no vector %u: "
					"the host polls it", sc->tc->nvme.cntlid, qid, iv);
		ien = false;
	}
	if (ien && sc->vectors[iv] < 0 && shm_budget_check(sc, true, why, sizeof(why)) < 0) {
		/* no vector: the queue is made all the same, and polled */
		SHM_LOG_RL(NVL_NOTICELOG, "shm: cntlid %u: CQ %u without interrupt vector %u (%s): "
					"the host polls it", sc->tc->nvme.cntlid, qid, iv, why);
		ien = false;
	}
	cq = calloc(1, sizeof(*cq));
	if (cq == NULL)
		return shm_qop_done(status, NVL_NVME_SC_INTERNAL);
	snprintf(what, sizeof(what), "c%u-cq%u", sc->tc->nvme.cntlid, qid);
	rc = shm_region_create(&cq->region, what,
			   NVL_ALIGN_UP(NVL_SHM_RING_OFFSET + entries * sizeof(struct nvl_nvme_cpl),
					4096));
	if (rc < 0) {
		free(cq);
		NVL_ERRLOG("cannot create CQ region: %s", strerror(-rc));
		return shm_qop_done(status, NVL_NVME_SC_INTERNAL);
	}
	new_vector = ien && sc->vectors[iv] < 0;
	if (new_vector) {
		sc->vectors[iv] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (sc->vectors[iv] < 0) {
			shm_region_destroy(&cq->region);
			free(cq);
			return shm_qop_done(status, NVL_NVME_SC_INTERNAL);
		}
	}
	cq->sc = sc;
	cq->qid = qid;
	cq->iv = iv;
	cq->ien = ien;
	cq->entries = entries;
	cq->phase = 1;
	cq->page = cq->region.map;
	cq->ring = (void *)((uint8_t *)cq->region.map + NVL_SHM_RING_OFFSET);
	cq->irq_fd = ien ? sc->vectors[iv] : -1;
	cq->reactor = nvl_reactor_pick();
	TAILQ_INIT(&cq->waiting);
	cq->page->magic = NVL_SHM_CQ_MAGIC;
	cq->page->qid = qid;
	cq->page->iv = iv;
	cq->page->entries = entries;
	cq->page->flags = ien ? 1 : 0;
	shm_keep_cq_created(sc, cq, new_vector);
	sc->cqs[qid] = cq;
	sc->ncq_alive++;
	nvl_reactor_msg(cq->reactor, shm_cq_start_on_reactor, cq);
	a->fds[0] = cq->region.fd;
	a->nfds = 1;
	if (ien)
		a->fds[a->nfds++] = cq->irq_fd;
	NVL_DEBUGLOG(shm, "cntlid %u: CQ %u (%u entries, %s vector %u) on reactor %u",
		     sc->tc->nvme.cntlid, qid, entries, ien ? "interrupts on" : "polled", iv,
		     nvl_reactor_id(cq->reactor));
	return shm_qop_done(status, NVL_NVME_SC_SUCCESS);
}

static enum nvl_nvme_qop
shm_create_io_sq(struct nvl_nvme_ctrlr *nc, struct nvl_nvme_req *req, uint16_t *status)
{
	struct shm_admin_req *a = container_of(req, struct shm_admin_req, nvme);
	struct shm_ctrlr *sc = a->sc;
	uint16_t qid = req->cmd.cdw10 & 0xffff;
	uint32_t entries = (req->cmd.cdw10 >> 16) + 1;
	bool pc = req->cmd.cdw11 & 1;
	uint16_t cqid = (uint16_t)(req->cmd.cdw11 >> 16);
	struct shm_cq *cq;
	struct shm_sq *sq;
	char what[32], why[160];
	int rc;

	(void)nc;
	if (a->redo && qid > 0 && qid <= SHM_MAX_QUEUES && (sq = sc->sqs[qid]) != NULL &&
	    sq->entries == entries && sq->cq->qid == cqid) {
		a->fds[0] = sq->region.fd;
		a->fds[1] = sq->kick_fd;
		a->nfds = 2;
		return shm_qop_done(status, NVL_NVME_SC_SUCCESS);
	}
	if (qid == 0 || qid > g_shm_opts.max_io_queues || sc->sqs[qid])
		return shm_qop_done(status, NVL_NVME_DNR(NVL_NVME_SC_INVALID_QID));
	if (entries < 2 || entries > g_shm_opts.max_queue_depth)
		return shm_qop_done(status, NVL_NVME_DNR(NVL_NVME_SC_INVALID_QUEUE_SIZE));
	if (!pc)
		return shm_qop_done(status, NVL_NVME_DNR(NVL_NVME_SC_INVALID_FIELD));
	if (cqid == 0 || cqid > g_shm_opts.max_io_queues || (cq = sc->cqs[cqid]) == NULL)
		return shm_qop_done(status, NVL_NVME_DNR(NVL_NVME_SC_CQ_INVALID));
	if (shm_budget_check(sc, false, why, sizeof(why)) < 0) {
		SHM_LOG_RL(NVL_WARNLOG, "shm: cntlid %u: Create I/O SQ %u refused: %s",
				      sc->tc->nvme.cntlid, qid, why);
		return shm_qop_done(status, NVL_NVME_DNR(NVL_NVME_SC_INVALID_QID));
	}
	sq = calloc(1, sizeof(*sq));
	if (sq == NULL)
		return shm_qop_done(status, NVL_NVME_SC_INTERNAL);
	sq->reqs = calloc(entries, sizeof(*sq->reqs));
	sq->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	snprintf(what, sizeof(what), "c%u-sq%u", sc->tc->nvme.cntlid, qid);
	rc = sq->reqs && sq->kick_fd >= 0
		     ? shm_region_create(&sq->region, what,
				     NVL_ALIGN_UP(NVL_SHM_RING_OFFSET +
							  entries * sizeof(struct nvl_nvme_cmd),
						  4096))
		     : -ENOMEM;
	if (rc < 0) {
		if (sq->kick_fd >= 0)
			close(sq->kick_fd);
		free(sq->reqs);
		free(sq);
		return shm_qop_done(status, NVL_NVME_SC_INTERNAL);
	}
	sq->sc = sc;
	sq->cq = cq;
	sq->qid = qid;
	sq->entries = entries;
	sq->page = sq->region.map;
	sq->ring = (void *)((uint8_t *)sq->region.map + NVL_SHM_RING_OFFSET);
	sq->page->magic = NVL_SHM_SQ_MAGIC;
	sq->page->qid = qid;
	sq->page->cqid = cqid;
	sq->page->entries = entries;
	for (uint32_t i = 0; i < entries; i++) {
		sq->reqs[i].sq = sq;
		sq->reqs[i].next_free = sq->free_reqs;
		sq->free_reqs = &sq->reqs[i];
	}
	shm_keep_sq_created(sc, sq);
	cq->nsqs++;
	sc->nsq_alive++;
	sc->sqs[qid] = sq;
	nvl_reactor_msg(cq->reactor, shm_sq_start_on_reactor, sq);
	a->fds[0] = sq->region.fd;
	a->fds[1] = sq->kick_fd;
	a->nfds = 2;
	NVL_DEBUGLOG(shm, "cntlid %u: SQ %u (%u entries) -> CQ %u on reactor %u",
		     sc->tc->nvme.cntlid, qid, entries, cqid, nvl_reactor_id(cq->reactor));
	return shm_qop_done(status, NVL_NVME_SC_SUCCESS);
}

static enum nvl_nvme_qop
shm_delete_io_sq(struct nvl_nvme_ctrlr *nc, struct nvl_nvme_req *req, uint16_t *status)
{
	struct shm_admin_req *a = container_of(req, struct shm_admin_req, nvme);
	struct shm_ctrlr *sc = a->sc;
	uint16_t qid = req->cmd.cdw10 & 0xffff;

	(void)nc;
	if (a->redo && qid > 0 && qid <= SHM_MAX_QUEUES && sc->sqs[qid] == NULL)
		return shm_qop_done(status, NVL_NVME_SC_SUCCESS); /* went before the restart */
	if (qid == 0 || qid > g_shm_opts.max_io_queues || sc->sqs[qid] == NULL)
		return shm_qop_done(status, NVL_NVME_DNR(NVL_NVME_SC_INVALID_QID));
	shm_sq_delete(sc, sc->sqs[qid], a);
	return NVL_NVME_QOP_PENDING;
}

static enum nvl_nvme_qop
shm_delete_io_cq(struct nvl_nvme_ctrlr *nc, struct nvl_nvme_req *req, uint16_t *status)
{
	struct shm_admin_req *a = container_of(req, struct shm_admin_req, nvme);
	struct shm_ctrlr *sc = a->sc;
	uint16_t qid = req->cmd.cdw10 & 0xffff;

	(void)nc;
	if (a->redo && qid > 0 && qid <= SHM_MAX_QUEUES && sc->cqs[qid] == NULL)
		return shm_qop_done(status, NVL_NVME_SC_SUCCESS); /* went before the restart */
	if (qid == 0 || qid > g_shm_opts.max_io_queues || sc->cqs[qid] == NULL)
		return shm_qop_done(status, NVL_NVME_DNR(NVL_NVME_SC_INVALID_QID));
	if (sc->cqs[qid]->nsqs > 0)
		return shm_qop_done(status, NVL_NVME_DNR(NVL_NVME_SC_INVALID_QUEUE_DELETION));
	shm_cq_delete(sc, sc->cqs[qid]);
	return shm_qop_done(status, NVL_NVME_SC_SUCCESS);
}

static void
shm_reset(struct nvl_nvme_ctrlr *nc)
{
	struct shm_ctrlr *sc = ((struct nvl_nvmf_ctrlr *)nc->owner)->tctx;

	/* CC.EN cleared: the queues go (the host re-creates them after re-enabling) */
	for (unsigned q = 1; q <= SHM_MAX_QUEUES; q++)
		if (sc->sqs[q])
			shm_sq_delete(sc, sc->sqs[q], NULL);
}

const struct nvl_nvme_queue_ops g_shm_queue_ops = {
	.create_io_cq = shm_create_io_cq,
	.create_io_sq = shm_create_io_sq,
	.delete_io_sq = shm_delete_io_sq,
	.delete_io_cq = shm_delete_io_cq,
	.reset = shm_reset,
};
