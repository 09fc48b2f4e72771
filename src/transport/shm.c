/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * shm transport, controller side (DESIGN.md section 5; protocol in
 * include/nvlend/spec/shm.h).
 *
 * Ownership and threads:
 *  - listeners and control connections live on reactor 0; every admin
 *    command runs there (the controller's home reactor), and the queue
 *    tables sc->cqs[] / sc->sqs[] are only touched there;
 *  - each I/O completion queue is bound for life to one reactor (round robin
 *    over the reactors); its submission queues are polled on that same
 *    reactor, so posting completions needs no lock;
 *  - queue start/stop cross reactors with messages (FIFO per sender, so a
 *    queue's start always precedes its stop); a connection is freed on
 *    reactor 0 only after every queue drained and went.
 * Data never passes through the daemon: bdev I/O reads and writes the host's
 * data window directly (zero copy).
 */
#include "nvmf/auth.h"
#include "nvmf/nvmf.h"
#include "transport/shm_map.h"
#include "proto/shm_ring.h"
#include "app/app.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(shm)

#define SHM_MAX_QUEUES 64               /* I/O queues per controller, each direction */
#define SHM_MAX_VECTORS (SHM_MAX_QUEUES + 1)
#define SHM_CONNECT_TIMEOUT_US 10000000
#define SHM_MAX_CONNECTIONS 256
#define SHM_MAX_ADMIN_OUTSTANDING 64
#define SHM_DEFAULT_WINDOW (64ULL << 20)

static struct {
	uint64_t max_window;
	uint32_t max_queue_depth;
	uint32_t max_io_queues;
} g_opts = {
	.max_window = 1ULL << 30,
	.max_queue_depth = 1024,
	.max_io_queues = SHM_MAX_QUEUES,
};

struct shm_ctrlr;
struct shm_cq;
struct shm_sq;

struct shm_req {
	struct nvl_nvme_req nvme;
	struct shm_sq *sq;
	struct shm_req *next_free;
	TAILQ_ENTRY(shm_req) link;      /* waiting for CQ space */
};

enum shm_q_state { Q_ACTIVE, Q_DELETING, Q_GONE };

struct shm_region {
	int fd;                          /* sealed memfd (see region_create) */
	void *map;
	size_t size;
};

struct shm_admin_req {
	struct nvl_nvme_req nvme;
	struct shm_ctrlr *sc;
	int fds[2];
	int nfds;
};

struct shm_sq {
	struct shm_ctrlr *sc;
	struct shm_cq *cq;
	uint16_t qid;
	uint32_t entries;
	uint32_t head;
	struct shm_region region;
	struct nvl_shm_sq_page *page;
	struct nvl_nvme_cmd *ring;
	int kick_fd;
	struct nvl_fdh *kick_fdh;
	struct nvl_poller *poller;
	struct shm_req *reqs;
	struct shm_req *free_reqs;
	uint32_t outstanding;
	enum shm_q_state state;
	struct shm_admin_req *delete_req;  /* Delete I/O SQ waiting for the drain */
	bool fatal;
	uint64_t submitted, completed, aborted;
};

struct shm_cq {
	struct shm_ctrlr *sc;
	uint16_t qid;
	uint16_t iv;
	bool ien;
	uint32_t entries;
	uint32_t tail;
	uint32_t head_cache;
	uint16_t phase;
	struct shm_region region;
	struct nvl_shm_cq_page *page;
	struct nvl_nvme_cpl *ring;
	int irq_fd;                      /* the vector's eventfd (owned by the ctrlr) */
	struct nvl_reactor *reactor;
	unsigned nsqs;                   /* reactor 0 */
	TAILQ_HEAD(, shm_req) waiting;   /* completions waiting for CQ space */
	struct nvl_poller *poller;
	uint64_t interrupts;
	uint64_t full_waits;             /* completions that found the CQ full */
};

enum shm_conn_state { C_CONNECTING, C_ACTIVE, C_CLOSING };

struct shm_listener {
	struct nvl_listen_addr addr;
	int fd;
	struct nvl_fdh *fdh;
	TAILQ_ENTRY(shm_listener) link;
};

struct shm_ctrlr {
	int fd;
	struct nvl_fdh *fdh;
	enum shm_conn_state state;
	struct nvl_listen_addr listener;
	struct nvl_nvmf_ctrlr *tc;
	struct nvl_timer *connect_timer;
	struct shm_region window;
	struct shm_cq *cqs[SHM_MAX_QUEUES + 1];
	struct shm_sq *sqs[SHM_MAX_QUEUES + 1];
	int vectors[SHM_MAX_VECTORS];
	unsigned admin_outstanding;
	unsigned nsq_alive;              /* created and not yet freed on their reactor */
	unsigned ncq_alive;
	bool in_try_free;
	bool free_scheduled;
	bool in_event;                   /* conn_event() runs: freeing is deferred to it */
	TAILQ_ENTRY(shm_ctrlr) link;
	/* the peer's credentials, from the kernel at accept (host identity binding) */
	bool has_cred;
	struct ucred cred;
	uint32_t *groups;                /* supplementary groups (SO_PEERGROUPS) */
	unsigned ngroups;
};

static TAILQ_HEAD(, shm_listener) g_listeners = TAILQ_HEAD_INITIALIZER(g_listeners);
static TAILQ_HEAD(, shm_ctrlr) g_conns = TAILQ_HEAD_INITIALIZER(g_conns);
static unsigned g_nconns;
static unsigned g_next_reactor;
static struct nvl_transport_ops g_shm_ops;
static const struct nvl_nvme_ctrlr_ops g_shm_nvme_ops;

static void conn_teardown(struct shm_ctrlr *sc, const char *why);
static void conn_try_free(struct shm_ctrlr *sc);

/* ---- regions: anonymous sealed memfds ------------------------------------ */

/*
 * Every region a host maps (data window, SQ, CQ) is an anonymous memfd,
 * sized, pre-faulted and sealed against shrinking and growing *before* its
 * fd leaves the daemon (DESIGN.md section 5). The host gets a read-write fd,
 * so without the seals one ftruncate() would make the daemon's next access
 * raise SIGBUS; with them ftruncate() fails with EPERM. No name exists in
 * /dev/shm for anyone to pre-create (O_EXCL denial of service) or open; the
 * label only shows in /proc/PID/fd ("/memfd:nvlend-c1-window").
 * A host may still punch holes (FALLOC_FL_PUNCH_HOLE needs no seal against
 * shrinking): the pages read back as zeroes, nothing faults, and only that
 * host's own data suffers.
 */
#define SHM_REGION_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static int
region_create(struct shm_region *r, const char *what, size_t size)
{
	char label[64];
	int rc;

	r->map = NULL;
	snprintf(label, sizeof(label), "nvlend-%s", what);
	r->fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (r->fd < 0)
		return -errno;
	/* reserve the memory now: a full tmpfs must fail here, not SIGBUS later */
	if (ftruncate(r->fd, (off_t)size) < 0) {
		rc = -errno;
		goto err;
	}
	rc = posix_fallocate(r->fd, 0, (off_t)size);
	if (rc != 0) {
		rc = -rc;
		goto err;
	}
	if (fcntl(r->fd, F_ADD_SEALS, SHM_REGION_SEALS) < 0) {
		rc = -errno;
		goto err;
	}
	/* pre-fault: first touch costs milliseconds per 2 MiB on these VMs */
	r->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, 0);
	if (r->map == MAP_FAILED) {
		r->map = NULL;
		rc = -errno;
		goto err;
	}
	r->size = size;
	return 0;
err:
	close(r->fd);
	r->fd = -1;
	return rc;
}

static void
region_destroy(struct shm_region *r)
{
	if (r->map)
		munmap(r->map, r->size);
	if (r->fd >= 0)
		close(r->fd);
	r->map = NULL;
	r->fd = -1;
}

/* ---- control messages ------------------------------------------------------ */

static int
conn_send(struct shm_ctrlr *sc, void *msg, size_t len, uint16_t type, const int *fds, int nfds)
{
	struct nvl_shm_msg_hdr *h = msg;
	struct iovec iov = { .iov_base = msg, .iov_len = len };
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	h->magic = NVL_SHM_MAGIC;
	h->version = NVL_SHM_VERSION;
	h->type = type;
	h->len = (uint32_t)len;
	h->rsvd = 0;
	if (nfds > 0) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	do {
		n = sendmsg(sc->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

/* ---- I/O path (the CQ's reactor) ------------------------------------------- */

static void
cq_interrupt(struct shm_cq *cq)
{
	uint64_t one = 1;

	if (cq->ien && shm_take_wakeup(&cq->page->irq_armed)) {
		NVL_STAT_INC(cq->interrupts);
		(void)!write(cq->irq_fd, &one, sizeof(one));
	}
}

static void sq_fatal(struct shm_sq *sq);

/* Post one completion for sq; false if the CQ is full (the caller waits). */
static bool
cq_post(struct shm_cq *cq, struct shm_sq *sq, const struct nvl_nvme_cpl *in)
{
	struct nvl_nvme_cpl cpl = *in;

	if (shm_ring_full(cq->head_cache, cq->tail, cq->entries)) {
		/* Pairs with the host's release store of the CQ head doorbell. */
		uint32_t head = nvl_smp_load_acquire(&cq->page->head);

		if (head >= cq->entries) {
			sq_fatal(sq);
			return false;
		}
		cq->head_cache = head;
		if (shm_ring_full(head, cq->tail, cq->entries))
			return false;
	}
	cpl.sqhd = (uint16_t)sq->head;
	cpl.sqid = sq->qid;
	shm_cqe_post(&cq->ring[cq->tail], &cpl, cq->phase);
	cq->tail = shm_ring_next(cq->tail, cq->entries);
	if (cq->tail == 0)
		cq->phase ^= 1;
	NVL_STAT_INC(sq->completed);
	return true;
}

static void sq_maybe_gone(struct shm_sq *sq);

/* Any reactor: the connection is closing, so nobody will consume CQ entries
 * any more (state is written on reactor 0; a racy read only delays this). */
static bool
host_gone(const struct shm_ctrlr *sc)
{
	return __atomic_load_n(&sc->state, __ATOMIC_RELAXED) == C_CLOSING;
}

static void
req_release(struct shm_req *r)
{
	struct shm_sq *sq = r->sq;

	nvl_shm_unmap_data(&r->nvme);
	r->next_free = sq->free_reqs;
	sq->free_reqs = r;
	NVL_STAT_DEC(sq->outstanding);
	if (nvl_unlikely(sq->state != Q_ACTIVE))
		sq_maybe_gone(sq);
}

static void
io_done(struct nvl_nvme_req *nreq)
{
	struct shm_req *r = container_of(nreq, struct shm_req, nvme);
	struct shm_sq *sq = r->sq;
	struct shm_cq *cq = sq->cq;

	if (nvl_unlikely(sq->fatal || host_gone(sq->sc))) {
		req_release(r);
		return;
	}
	if (nvl_unlikely(!TAILQ_EMPTY(&cq->waiting)) || !cq_post(cq, sq, &r->nvme.cpl)) {
		NVL_STAT_INC(cq->full_waits);
		TAILQ_INSERT_TAIL(&cq->waiting, r, link);
		return;
	}
	req_release(r);
	cq_interrupt(cq);
}

/* CQ poller: post completions that waited for CQ space. */
static int
cq_poll(void *arg)
{
	struct shm_cq *cq = arg;
	struct shm_req *r;
	int n = 0;

	while ((r = TAILQ_FIRST(&cq->waiting)) != NULL) {
		/* fatal queue or host gone: drop, nobody reads this CQ any more */
		if (!r->sq->fatal && !host_gone(r->sq->sc) && !cq_post(cq, r->sq, &r->nvme.cpl))
			break;
		TAILQ_REMOVE(&cq->waiting, r, link);
		req_release(r);
		n++;
	}
	if (n)
		cq_interrupt(cq);
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
cq_sleep(void *arg)
{
	struct shm_cq *cq = arg;

	if (TAILQ_EMPTY(&cq->waiting))
		return 0;
	if (cq_poll(cq) > 0)
		return 1;
	nvl_reactor_sleep_at_most(1);
	return 0;
}

static void
sq_exec(struct shm_sq *sq, struct shm_req *r)
{
	struct shm_ctrlr *sc = sq->sc;
	uint32_t len;
	uint8_t dir;
	uint16_t st;

	r->nvme.ctrlr = &sc->tc->nvme;
	r->nvme.qid = sq->qid;
	r->nvme.auth = sc->tc->auth; /* made by an authenticated admin queue: its state */
	r->nvme.done = io_done;
	r->nvme.iov = r->nvme.iov_inline;
	r->nvme.iovcnt = 0;
	r->nvme.data_len = 0;
	st = nvl_nvme_req_xfer(&r->nvme, &len, &dir);
	if (st == 0 && len)
		st = nvl_shm_map_data(&r->nvme, sc->window.map, sc->window.size, len);
	r->nvme.xfer = dir;
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
sq_poll(void *arg)
{
	struct shm_sq *sq = arg;
	uint32_t tail;
	int n = 0;

	if (nvl_unlikely(sq->state != Q_ACTIVE || sq->fatal))
		return 0;
	/* Pairs with the host's release store of its SQ tail doorbell. */
	tail = nvl_smp_load_acquire(&sq->page->tail);
	if (nvl_unlikely(tail >= sq->entries)) {
		sq_fatal(sq);
		return 0;
	}
	while (sq->head != tail && sq->free_reqs) {
		struct shm_req *r = sq->free_reqs;

		sq->free_reqs = r->next_free;
		NVL_STAT_INC(sq->outstanding);
		/* private copy: the host may rewrite the slot at any time */
		memcpy(&r->nvme.cmd, &sq->ring[sq->head], sizeof(r->nvme.cmd));
		sq->head = shm_ring_next(sq->head, sq->entries);
		NVL_STAT_INC(sq->submitted);
		n++;
		sq_exec(sq, r);
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
sq_sleep(void *arg)
{
	struct shm_sq *sq = arg;

	if (sq->state != Q_ACTIVE || sq->fatal)
		return 0;
	shm_arm_wakeup(&sq->page->need_kick);
	/* work that raced with arming must not be slept on */
	return nvl_smp_load_acquire(&sq->page->tail) != sq->head;
}

static void
sq_kick(void *arg, uint32_t events)
{
	/* only a wake-up: the loop polls the SQ. The kick eventfd is watched
	 * edge-triggered (every write is an edge) and never read, which saves
	 * a syscall on each wake-up of a sleeping reactor. */
	(void)arg;
	(void)events;
}

/* ---- queue lifecycle ------------------------------------------------------- */

static void admin_complete(struct shm_admin_req *a, uint16_t status);

static void
fatal_on_home(void *arg)
{
	struct shm_ctrlr *sc = arg;

	if (sc->state != C_ACTIVE)
		return;
	nvl_nvme_ctrlr_doorbell_error(&sc->tc->nvme, true);
	NVL_WARNLOG("cntlid %u of host %s: invalid doorbell value; controller fatal, "
		    "disconnecting", sc->tc->nvme.cntlid, sc->tc->nvme.hostnqn);
	sc->tc->nvme.csts |= NVL_NVME_CSTS_CFS;
	conn_teardown(sc, "invalid doorbell write");
}

static void
sq_fatal(struct shm_sq *sq)
{
	if (sq->fatal)
		return;
	sq->fatal = true;
	nvl_reactor_msg(nvl_reactor_get(0), fatal_on_home, sq->sc);
}

struct sq_gone_msg {
	struct shm_ctrlr *sc;
	struct shm_cq *cq;
	struct shm_admin_req *areq;
};

static void
sq_gone_home(void *arg)
{
	struct sq_gone_msg *m = arg;
	struct shm_ctrlr *sc = m->sc;

	m->cq->nsqs--;
	sc->nsq_alive--;
	if (m->areq)
		admin_complete(m->areq, NVL_NVME_SC_SUCCESS);
	if (sc->state == C_CLOSING)
		conn_try_free(sc);
	free(m);
}

static void
sq_free(struct shm_sq *sq)
{
	nvl_fd_del(sq->kick_fdh);
	nvl_poller_destroy(sq->poller);
	region_destroy(&sq->region);
	if (sq->kick_fd >= 0)
		close(sq->kick_fd);
	free(sq->reqs);
	free(sq);
}

/* CQ's reactor: free the SQ once deleting and drained. */
static void
sq_maybe_gone(struct shm_sq *sq)
{
	struct sq_gone_msg *m;

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
	sq_free(sq);
	nvl_reactor_msg(nvl_reactor_get(0), sq_gone_home, m);
}

/* CQ's reactor: stop fetching; commands not fetched yet are aborted (5.6). */
static void
sq_stop_on_reactor(void *arg)
{
	struct shm_sq *sq = arg;

	nvl_poller_destroy(sq->poller);
	sq->poller = NULL;
	nvl_fd_del(sq->kick_fdh);
	sq->kick_fdh = NULL;
	if (host_gone(sq->sc)) {
		struct shm_req *r, *tmp;

		/* Completions waiting for space in a CQ nobody consumes any more
		 * would hold the SQ, and so the connection, forever. Released
		 * while the SQ is still active, so none of them frees it. */
		TAILQ_FOREACH_SAFE(r, &sq->cq->waiting, link, tmp) {
			if (r->sq == sq) {
				TAILQ_REMOVE(&sq->cq->waiting, r, link);
				req_release(r);
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
			if (!TAILQ_EMPTY(&sq->cq->waiting) || !cq_post(sq->cq, sq, &cpl))
				break; /* no room: the host loses those, as on a real drive */
			NVL_STAT_INC(sq->aborted);
		}
		cq_interrupt(sq->cq);
	}
	sq->state = Q_DELETING;
	sq_maybe_gone(sq);
}

static void
sq_start_on_reactor(void *arg)
{
	struct shm_sq *sq = arg;

	sq->poller = nvl_poller_create(sq_poll, sq, "shm-sq");
	if (sq->poller)
		nvl_poller_set_sleep_hook(sq->poller, sq_sleep);
	sq->kick_fdh = nvl_fd_add(sq->kick_fd, EPOLLIN | EPOLLET, sq_kick, sq);
	if (sq->poller == NULL || sq->kick_fdh == NULL)
		NVL_ERRLOG("SQ %u: cannot start its poller; it will not be served", sq->qid);
}

/* reactor 0: start deleting an SQ (admin Delete SQ or teardown) */
static void
sq_delete(struct shm_ctrlr *sc, struct shm_sq *sq, struct shm_admin_req *areq)
{
	sc->sqs[sq->qid] = NULL;
	sq->delete_req = areq;
	nvl_reactor_msg(sq->cq->reactor, sq_stop_on_reactor, sq);
}

static void
cq_start_on_reactor(void *arg)
{
	struct shm_cq *cq = arg;

	cq->poller = nvl_poller_create(cq_poll, cq, "shm-cq");
	if (cq->poller == NULL)
		NVL_ERRLOG("CQ %u: cannot start its poller", cq->qid);
	else
		nvl_poller_set_sleep_hook(cq->poller, cq_sleep);
}

static void
cq_gone_home(void *arg)
{
	struct shm_ctrlr *sc = arg;

	sc->ncq_alive--;
	if (sc->state == C_CLOSING)
		conn_try_free(sc);
}

static void
cq_free_on_reactor(void *arg)
{
	struct shm_cq *cq = arg;
	struct shm_ctrlr *sc = cq->sc;

	nvl_poller_destroy(cq->poller);
	region_destroy(&cq->region);
	free(cq);
	nvl_reactor_msg(nvl_reactor_get(0), cq_gone_home, sc);
}

static void
cq_delete(struct shm_ctrlr *sc, struct shm_cq *cq)
{
	sc->cqs[cq->qid] = NULL;
	nvl_reactor_msg(cq->reactor, cq_free_on_reactor, cq);
}

static struct nvl_reactor *
pick_reactor(void)
{
	unsigned n = nvl_reactor_count();

	if (n <= 1)
		return nvl_reactor_get(0);
	/* reactor 0 also serves RPC and admin: give I/O queues to the others first */
	return nvl_reactor_get(1 + (g_next_reactor++ % (n - 1)));
}

/* ---- admin queue operations (reactor 0) ------------------------------------- */

static uint16_t
shm_create_io_cq(struct nvl_nvme_ctrlr *nc, struct nvl_nvme_req *req)
{
	struct shm_admin_req *a = container_of(req, struct shm_admin_req, nvme);
	struct shm_ctrlr *sc = a->sc;
	uint16_t qid = req->cmd.cdw10 & 0xffff;
	uint32_t entries = (req->cmd.cdw10 >> 16) + 1;
	bool pc = req->cmd.cdw11 & 1, ien = (req->cmd.cdw11 >> 1) & 1;
	uint16_t iv = (uint16_t)(req->cmd.cdw11 >> 16);
	struct shm_cq *cq;
	char what[32];
	int rc;

	(void)nc;
	if (qid == 0 || qid > g_opts.max_io_queues || sc->cqs[qid])
		return NVL_NVME_SC_INVALID_QID | 0x8000;
	if (entries < 2 || entries > g_opts.max_queue_depth)
		return NVL_NVME_SC_INVALID_QUEUE_SIZE | 0x8000;
	if (!pc)
		return NVL_NVME_SC_INVALID_FIELD | 0x8000; /* CAP.CQR: contiguous only */
	if (ien && iv >= SHM_MAX_VECTORS)
		return NVL_NVME_SC_INVALID_VECTOR | 0x8000;
	cq = calloc(1, sizeof(*cq));
	if (cq == NULL)
		return NVL_NVME_SC_INTERNAL;
	snprintf(what, sizeof(what), "c%u-cq%u", sc->tc->nvme.cntlid, qid);
	rc = region_create(&cq->region, what,
			   NVL_ALIGN_UP(NVL_SHM_RING_OFFSET + entries * sizeof(struct nvl_nvme_cpl),
					4096));
	if (rc < 0) {
		free(cq);
		NVL_ERRLOG("cannot create CQ region: %s", strerror(-rc));
		return NVL_NVME_SC_INTERNAL;
	}
	if (ien && sc->vectors[iv] < 0) {
		sc->vectors[iv] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (sc->vectors[iv] < 0) {
			region_destroy(&cq->region);
			free(cq);
			return NVL_NVME_SC_INTERNAL;
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
	cq->reactor = pick_reactor();
	TAILQ_INIT(&cq->waiting);
	cq->page->magic = NVL_SHM_CQ_MAGIC;
	cq->page->qid = qid;
	cq->page->iv = iv;
	cq->page->entries = entries;
	cq->page->flags = ien ? 1 : 0;
	sc->cqs[qid] = cq;
	sc->ncq_alive++;
	nvl_reactor_msg(cq->reactor, cq_start_on_reactor, cq);
	a->fds[0] = cq->region.fd;
	a->nfds = 1;
	if (ien)
		a->fds[a->nfds++] = cq->irq_fd;
	NVL_DEBUGLOG(shm, "cntlid %u: CQ %u (%u entries, %s vector %u) on reactor %u",
		     sc->tc->nvme.cntlid, qid, entries, ien ? "interrupts on" : "polled", iv,
		     nvl_reactor_id(cq->reactor));
	return NVL_NVME_SC_SUCCESS;
}

static uint16_t
shm_create_io_sq(struct nvl_nvme_ctrlr *nc, struct nvl_nvme_req *req)
{
	struct shm_admin_req *a = container_of(req, struct shm_admin_req, nvme);
	struct shm_ctrlr *sc = a->sc;
	uint16_t qid = req->cmd.cdw10 & 0xffff;
	uint32_t entries = (req->cmd.cdw10 >> 16) + 1;
	bool pc = req->cmd.cdw11 & 1;
	uint16_t cqid = (uint16_t)(req->cmd.cdw11 >> 16);
	struct shm_cq *cq;
	struct shm_sq *sq;
	char what[32];
	int rc;

	(void)nc;
	if (qid == 0 || qid > g_opts.max_io_queues || sc->sqs[qid])
		return NVL_NVME_SC_INVALID_QID | 0x8000;
	if (entries < 2 || entries > g_opts.max_queue_depth)
		return NVL_NVME_SC_INVALID_QUEUE_SIZE | 0x8000;
	if (!pc)
		return NVL_NVME_SC_INVALID_FIELD | 0x8000;
	if (cqid == 0 || cqid > g_opts.max_io_queues || (cq = sc->cqs[cqid]) == NULL)
		return NVL_NVME_SC_CQ_INVALID | 0x8000;
	sq = calloc(1, sizeof(*sq));
	if (sq == NULL)
		return NVL_NVME_SC_INTERNAL;
	sq->reqs = calloc(entries, sizeof(*sq->reqs));
	sq->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	snprintf(what, sizeof(what), "c%u-sq%u", sc->tc->nvme.cntlid, qid);
	rc = sq->reqs && sq->kick_fd >= 0
		     ? region_create(&sq->region, what,
				     NVL_ALIGN_UP(NVL_SHM_RING_OFFSET +
							  entries * sizeof(struct nvl_nvme_cmd),
						  4096))
		     : -ENOMEM;
	if (rc < 0) {
		if (sq->kick_fd >= 0)
			close(sq->kick_fd);
		free(sq->reqs);
		free(sq);
		return NVL_NVME_SC_INTERNAL;
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
	cq->nsqs++;
	sc->nsq_alive++;
	sc->sqs[qid] = sq;
	nvl_reactor_msg(cq->reactor, sq_start_on_reactor, sq);
	a->fds[0] = sq->region.fd;
	a->fds[1] = sq->kick_fd;
	a->nfds = 2;
	NVL_DEBUGLOG(shm, "cntlid %u: SQ %u (%u entries) -> CQ %u on reactor %u",
		     sc->tc->nvme.cntlid, qid, entries, cqid, nvl_reactor_id(cq->reactor));
	return NVL_NVME_SC_SUCCESS;
}

static uint16_t
shm_delete_io_sq(struct nvl_nvme_ctrlr *nc, struct nvl_nvme_req *req)
{
	struct shm_admin_req *a = container_of(req, struct shm_admin_req, nvme);
	struct shm_ctrlr *sc = a->sc;
	uint16_t qid = req->cmd.cdw10 & 0xffff;

	(void)nc;
	if (qid == 0 || qid > g_opts.max_io_queues || sc->sqs[qid] == NULL)
		return NVL_NVME_SC_INVALID_QID | 0x8000;
	sq_delete(sc, sc->sqs[qid], a);
	return NVL_NVME_ASYNC;
}

static uint16_t
shm_delete_io_cq(struct nvl_nvme_ctrlr *nc, struct nvl_nvme_req *req)
{
	struct shm_admin_req *a = container_of(req, struct shm_admin_req, nvme);
	struct shm_ctrlr *sc = a->sc;
	uint16_t qid = req->cmd.cdw10 & 0xffff;

	(void)nc;
	if (qid == 0 || qid > g_opts.max_io_queues || sc->cqs[qid] == NULL)
		return NVL_NVME_SC_INVALID_QID | 0x8000;
	if (sc->cqs[qid]->nsqs > 0)
		return NVL_NVME_SC_INVALID_QUEUE_DELETION | 0x8000;
	cq_delete(sc, sc->cqs[qid]);
	return NVL_NVME_SC_SUCCESS;
}

static void
shm_reset(struct nvl_nvme_ctrlr *nc)
{
	struct shm_ctrlr *sc = ((struct nvl_nvmf_ctrlr *)nc->owner)->tctx;

	/* CC.EN cleared: the queues go (the host re-creates them after re-enabling) */
	for (unsigned q = 1; q <= SHM_MAX_QUEUES; q++)
		if (sc->sqs[q])
			sq_delete(sc, sc->sqs[q], NULL);
}

static int
shm_discovery_log(struct nvl_nvme_ctrlr *nc, void **out, size_t *len)
{
	return nvl_nvmf_discovery_log(nc->hostnqn, out, len);
}

static const struct nvl_nvme_ctrlr_ops g_shm_nvme_ops = {
	.discovery_log = shm_discovery_log,
	.get_ns = nvl_nvmf_get_ns,
	.next_nsid = nvl_nvmf_next_nsid,
	.create_io_cq = shm_create_io_cq,
	.create_io_sq = shm_create_io_sq,
	.delete_io_sq = shm_delete_io_sq,
	.delete_io_cq = shm_delete_io_cq,
	.reset = shm_reset,
};

/* ---- admin commands over the control socket --------------------------------- */

static void
admin_done(struct nvl_nvme_req *nreq)
{
	struct shm_admin_req *a = container_of(nreq, struct shm_admin_req, nvme);
	struct shm_ctrlr *sc = a->sc;
	struct nvl_shm_admin_cpl m = { 0 };

	sc->admin_outstanding--;
	if (sc->state == C_ACTIVE) {
		m.cqe = nreq->cpl;
		m.cqe.sqid = 0;
		/* descriptors only travel with a successful create */
		if (conn_send(sc, &m, sizeof(m), NVL_SHM_MSG_ADMIN_CPL, a->fds,
			      (nreq->cpl.status >> 1) == 0 ? a->nfds : 0) < 0)
			conn_teardown(sc, "control socket write failed");
	}
	nvl_shm_unmap_data(nreq);
	free(a);
	if (sc->state == C_CLOSING)
		conn_try_free(sc);
}

static void
admin_complete(struct shm_admin_req *a, uint16_t status)
{
	nvl_nvme_req_complete(&a->nvme, status);
}

static void
admin_submit(struct shm_ctrlr *sc, const struct nvl_shm_admin_cmd *m)
{
	struct shm_admin_req *a;
	uint32_t len;
	uint8_t dir;
	uint16_t st;

	if (sc->admin_outstanding >= SHM_MAX_ADMIN_OUTSTANDING) {
		conn_teardown(sc, "too many admin commands outstanding");
		return;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		conn_teardown(sc, "out of memory");
		return;
	}
	a->sc = sc;
	memcpy(&a->nvme.cmd, &m->sqe, sizeof(a->nvme.cmd));
	a->nvme.ctrlr = &sc->tc->nvme;
	a->nvme.qid = 0;
	a->nvme.done = admin_done;
	a->nvme.iov = a->nvme.iov_inline;
	sc->admin_outstanding++;
	a->nvme.auth = sc->tc->auth; /* DH-HMAC-CHAP of the association (nvmf/auth.h) */
	if (a->nvme.cmd.opc == NVL_NVME_ADM_FABRICS &&
	    ((const struct nvl_nvmf_cmd *)&a->nvme.cmd)->fctype != NVL_NVMF_FCTYPE_AUTH_SEND &&
	    ((const struct nvl_nvmf_cmd *)&a->nvme.cmd)->fctype != NVL_NVMF_FCTYPE_AUTH_RECV) {
		/* no Connect/Property commands on the shm admin queue: the socket is
		 * the association and the controller is already enabled */
		nvl_nvme_req_complete(&a->nvme, NVL_NVME_SC_INVALID_OPCODE | 0x8000);
		return;
	}
	st = nvl_nvme_req_xfer(&a->nvme, &len, &dir);
	if (st == 0 && len)
		st = nvl_shm_map_data(&a->nvme, sc->window.map, sc->window.size, len);
	a->nvme.xfer = dir;
	if (st) {
		nvl_nvme_req_complete(&a->nvme, st);
		return;
	}
	nvl_nvme_execute(&a->nvme);
}

/* ---- connect ----------------------------------------------------------------- */

static void
connect_refuse(struct shm_ctrlr *sc, uint16_t status, uint32_t reason, const char *why)
{
	struct nvl_shm_connect_resp r = { 0 };

	r.status = status;
	r.reason = reason;
	nvl_strlcpy(r.message, why, sizeof(r.message));
	conn_send(sc, &r, sizeof(r), NVL_SHM_MSG_CONNECT_RESP, NULL, 0);
	conn_teardown(sc, why);
}

static bool
str_terminated(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

static void
do_connect(struct shm_ctrlr *sc, const struct nvl_shm_connect *m)
{
	struct nvl_shm_connect_resp r = { 0 };
	struct nvl_connect_info ci = { 0 };
	struct nvl_nvmf_ctrlr *tc;
	uint64_t win;
	uint16_t status;
	char what[32], why[200];
	int rc;

	if (!str_terminated(m->subnqn, sizeof(m->subnqn)) ||
	    !str_terminated(m->hostnqn, sizeof(m->hostnqn)) || nvl_nqn_validate(m->hostnqn) < 0) {
		connect_refuse(sc, NVL_NVME_SC_CONNECT_INVALID_PARAM, NVL_SHM_REFUSED_INVALID,
			       "malformed NQN");
		return;
	}
	win = m->window_bytes ? m->window_bytes : SHM_DEFAULT_WINDOW;
	win = NVL_ALIGN_UP(win, 2ULL << 20);
	if (win > g_opts.max_window) {
		snprintf(why, sizeof(why), "data window of %llu MiB above the limit of %llu MiB",
			 (unsigned long long)(win >> 20),
			 (unsigned long long)(g_opts.max_window >> 20));
		connect_refuse(sc, NVL_NVME_SC_CONNECT_INVALID_PARAM, NVL_SHM_REFUSED_RESOURCES, why);
		return;
	}
	ci.subnqn = m->subnqn;
	ci.hostnqn = m->hostnqn;
	ci.hostid = m->hostid;
	ci.kato_ms = m->kato_ms;
	ci.cntlid = 0xffff;
	ci.max_queue_entries = (uint16_t)g_opts.max_queue_depth;
	ci.max_io_queues = (uint16_t)g_opts.max_io_queues;
	ci.fabrics = false;
	ci.sgl = true;
	ci.transport = &g_shm_ops;
	ci.listener = &sc->listener;
	ci.nvme_ops = &g_shm_nvme_ops;
	ci.tctx = sc;
	ci.has_cred = sc->has_cred;
	ci.uid = sc->cred.uid;
	ci.gid = sc->cred.gid;
	ci.pid = (uint32_t)sc->cred.pid;
	ci.groups = sc->groups;
	ci.ngroups = sc->ngroups;
	why[0] = '\0';
	ci.why = why;
	ci.why_len = sizeof(why);
	rc = nvl_nvmf_connect(&ci, &tc, &status);
	if (rc < 0) {
		if (why[0] == '\0')
			snprintf(why, sizeof(why), "%s",
				 rc == -ENOENT	 ? "no such subsystem"
				 : rc == -EACCES ? "host not allowed on this subsystem/listener"
						 : strerror(-rc));
		connect_refuse(sc, status,
			       rc == -ENOENT			      ? NVL_SHM_REFUSED_NO_SUBSYSTEM
			       : rc == -EACCES || rc == -EADDRINUSE ? NVL_SHM_REFUSED_HOST
			       : rc == -EPERM			      ? NVL_SHM_REFUSED_CREDENTIALS
								      : NVL_SHM_REFUSED_OTHER,
			       why);
		return;
	}
	sc->tc = tc;
	snprintf(what, sizeof(what), "c%u-window", tc->nvme.cntlid);
	rc = region_create(&sc->window, what, win);
	if (rc < 0) {
		snprintf(why, sizeof(why), "cannot allocate a %llu MiB data window: %s",
			 (unsigned long long)(win >> 20), strerror(-rc));
		NVL_ERRLOG("%s", why);
		connect_refuse(sc, NVL_NVME_SC_INTERNAL, NVL_SHM_REFUSED_RESOURCES, why);
		return;
	}
	/* the manager has reset and enabled the controller for this host */
	tc->nvme.cc = NVL_NVME_CC_EN | (6u << 16) | (4u << 20);
	tc->nvme.csts = NVL_NVME_CSTS_RDY;
	sc->state = C_ACTIVE;
	nvl_timer_destroy(sc->connect_timer);
	sc->connect_timer = NULL;
	r.status = 0;
	r.cntlid = tc->nvme.cntlid;
	r.max_io_queues = (uint16_t)g_opts.max_io_queues;
	r.max_queue_entries = (uint16_t)g_opts.max_queue_depth;
	r.window_bytes = win;
	r.max_vectors = SHM_MAX_VECTORS;
	r.authreq = nvl_nvmf_auth_connect_flags(tc);
	if (conn_send(sc, &r, sizeof(r), NVL_SHM_MSG_CONNECT_RESP, &sc->window.fd, 1) < 0)
		conn_teardown(sc, "control socket write failed");
}

/* ---- connection ----------------------------------------------------------------- */

static void
conn_event_dispatch(struct shm_ctrlr *sc)
{
	union {
		struct nvl_shm_msg_hdr hdr;
		struct nvl_shm_connect connect;
		struct nvl_shm_admin_cmd admin;
		uint8_t raw[NVL_SHM_MAX_MSG];
	} msg;
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} u;

	for (int budget = 32; budget > 0 && sc->state != C_CLOSING; budget--) {
		struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				     .msg_controllen = sizeof(u.buf) };
		struct cmsghdr *cm;
		bool had_fds = false;
		ssize_t n = recvmsg(sc->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_teardown(sc, "control socket error");
			return;
		}
		/* hosts send no descriptors: close any, then refuse the message
		 * (before the EOF check: a 0-byte message can carry some too) */
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
				int *fds = (int *)CMSG_DATA(cm);
				size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

				for (size_t i = 0; i < nfd; i++)
					close(fds[i]);
				had_fds = true;
			}
		}
		if (n == 0) {
			conn_teardown(sc, "host closed its control socket");
			return;
		}
		if (had_fds || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
		    (size_t)n < sizeof(msg.hdr) || msg.hdr.magic != NVL_SHM_MAGIC ||
		    msg.hdr.version != NVL_SHM_VERSION || msg.hdr.len != (uint32_t)n) {
			conn_teardown(sc, "malformed control message");
			return;
		}
		switch (msg.hdr.type) {
		case NVL_SHM_MSG_CONNECT:
			if (sc->state != C_CONNECTING || n != sizeof(msg.connect)) {
				conn_teardown(sc, "unexpected CONNECT");
				return;
			}
			do_connect(sc, &msg.connect);
			break;
		case NVL_SHM_MSG_ADMIN_CMD:
			if (sc->state != C_ACTIVE || n != sizeof(msg.admin)) {
				conn_teardown(sc, "unexpected admin command");
				return;
			}
			admin_submit(sc, &msg.admin);
			break;
		case NVL_SHM_MSG_DISCONNECT:
			conn_teardown(sc, "host disconnected");
			return;
		default:
			conn_teardown(sc, "unknown control message");
			return;
		}
	}
}

static void
conn_event(void *arg, uint32_t events)
{
	struct shm_ctrlr *sc = arg;

	(void)events;
	/* A teardown in there (refused CONNECT, failed reply, ...) must not free
	 * sc while the receive loop still looks at it: free it here instead. */
	sc->in_event = true;
	conn_event_dispatch(sc);
	sc->in_event = false;
	if (sc->state == C_CLOSING)
		conn_try_free(sc);
}

static void
conn_connect_timeout(void *arg)
{
	struct shm_ctrlr *sc = arg;

	/* the fired one-shot timer is freed with the connection */
	if (sc->state == C_CONNECTING)
		conn_teardown(sc, "no CONNECT within 10 s");
}

static void
conn_free(void *arg)
{
	struct shm_ctrlr *sc = arg;

	region_destroy(&sc->window);
	for (unsigned v = 0; v < SHM_MAX_VECTORS; v++)
		if (sc->vectors[v] >= 0)
			close(sc->vectors[v]);
	nvl_timer_destroy(sc->connect_timer);
	close(sc->fd);
	free(sc->groups);
	TAILQ_REMOVE(&g_conns, sc, link);
	g_nconns--;
	free(sc);
}

static void
conn_try_free(struct shm_ctrlr *sc)
{
	/* completions below can call back in here: only the outermost call acts */
	if (sc->state != C_CLOSING || sc->in_try_free || sc->in_event)
		return;
	sc->in_try_free = true;
	/* 1. submission queues (they drain their in-flight commands first) */
	for (unsigned q = 1; q <= SHM_MAX_QUEUES; q++)
		if (sc->sqs[q])
			sq_delete(sc, sc->sqs[q], NULL);
	if (sc->nsq_alive)
		goto out;
	/* 2. completion queues */
	for (unsigned q = 1; q <= SHM_MAX_QUEUES; q++)
		if (sc->cqs[q])
			cq_delete(sc, sc->cqs[q]);
	if (sc->ncq_alive)
		goto out;
	/* 3. the controller (finishes held AERs, which come back through admin_done) */
	if (sc->tc) {
		struct nvl_nvmf_ctrlr *tc = sc->tc;

		sc->tc = NULL;
		nvl_nvmf_ctrlr_release(tc);
	}
	if (sc->admin_outstanding || sc->free_scheduled)
		goto out;
	/* 4. memory and descriptors, from the loop: handlers up the stack may
	 * still hold sc (a CONNECT refused inside the receive loop, ...) */
	sc->free_scheduled = true;
	if (nvl_reactor_msg(nvl_reactor_self(), conn_free, sc) < 0)
		NVL_ERRLOG("shm: cannot schedule connection release; leaking it");
out:
	sc->in_try_free = false;
}

/* CQ's reactor, after the connection closed: drop what waits for CQ space
 * (also for SQs whose Delete SQ was still waiting for it). */
static void
cq_host_gone(void *arg)
{
	cq_poll(arg);
}

static void
conn_teardown(struct shm_ctrlr *sc, const char *why)
{
	if (sc->state == C_CLOSING)
		return;
	if (sc->tc)
		NVL_NOTICELOG("shm: controller %u of %s: %s", sc->tc->nvme.cntlid,
			      sc->tc->nvme.hostnqn, why);
	else
		NVL_DEBUGLOG(shm, "shm: connection closed before connect: %s", why);
	sc->state = C_CLOSING;
	if (sc->tc)
		sc->tc->state = NVL_TCTRLR_DISCONNECTING;
	/* wake each CQ's reactor to drop completions that wait for CQ space
	 * (a cq is freed by a later message from here, so it outlives this one) */
	for (unsigned q = 1; q <= SHM_MAX_QUEUES; q++)
		if (sc->cqs[q])
			nvl_reactor_msg(sc->cqs[q]->reactor, cq_host_gone, sc->cqs[q]);
	nvl_fd_del(sc->fdh);
	sc->fdh = NULL;
	shutdown(sc->fd, SHUT_RDWR);
	conn_try_free(sc);
}

/* Who is on the other end: the kernel's record from the peer's connect(2)
 * (SO_PEERCRED), which the peer cannot forge, and its supplementary groups
 * (SO_PEERGROUPS). Without them the connection has no credentials and host
 * NQNs bound to a uid/gid are refused to it. */
static void
conn_peer_cred(struct shm_ctrlr *sc)
{
	socklen_t len = sizeof(sc->cred);
	gid_t gbuf[64], *g = gbuf;

	sc->has_cred = getsockopt(sc->fd, SOL_SOCKET, SO_PEERCRED, &sc->cred, &len) == 0 &&
		       len == sizeof(sc->cred);
	if (!sc->has_cred)
		return;
	len = sizeof(gbuf);
	if (getsockopt(sc->fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0) {
		if (errno != ERANGE || (g = malloc(len)) == NULL)
			return; /* primary group only */
		if (getsockopt(sc->fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0)
			len = 0;
	}
	sc->groups = calloc(len / sizeof(gid_t) + 1, sizeof(*sc->groups));
	if (sc->groups) {
		sc->ngroups = len / sizeof(gid_t);
		for (unsigned i = 0; i < sc->ngroups; i++)
			sc->groups[i] = g[i];
	}
	if (g != gbuf)
		free(g);
}

static void
listener_accept(void *arg, uint32_t events)
{
	struct shm_listener *l = arg;

	(void)events;
	for (;;) {
		struct shm_ctrlr *sc;
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				NVL_WARNLOG("shm accept on %s: %s", l->addr.traddr, strerror(errno));
			if (errno == EINTR)
				continue;
			return;
		}
		if (g_nconns >= SHM_MAX_CONNECTIONS) {
			NVL_WARNLOG("shm: refusing a host beyond %d connections", SHM_MAX_CONNECTIONS);
			close(fd);
			continue;
		}
		sc = calloc(1, sizeof(*sc));
		if (sc == NULL) {
			close(fd);
			continue;
		}
		sc->fd = fd;
		sc->listener = l->addr;
		conn_peer_cred(sc);
		sc->window.fd = -1;
		for (unsigned v = 0; v < SHM_MAX_VECTORS; v++)
			sc->vectors[v] = -1;
		sc->fdh = nvl_fd_add(fd, EPOLLIN, conn_event, sc);
		sc->connect_timer = nvl_timer_create(conn_connect_timeout, sc,
						     SHM_CONNECT_TIMEOUT_US, 0);
		if (sc->fdh == NULL || sc->connect_timer == NULL) {
			nvl_fd_del(sc->fdh);
			nvl_timer_destroy(sc->connect_timer);
			close(fd);
			free(sc);
			continue;
		}
		TAILQ_INSERT_TAIL(&g_conns, sc, link);
		g_nconns++;
	}
}

/* ---- transport ops ---------------------------------------------------------------- */

static int
shm_listen(const struct nvl_listen_addr *a)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct shm_listener *l;
	struct stat st;
	int fd, rc;

	if (strlen(a->traddr) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	if (lstat(a->traddr, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		/* a socket left by a dead daemon is taken over; a live one is not */
		probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		nvl_strlcpy(sa.sun_path, a->traddr, sizeof(sa.sun_path));
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		unlink(a->traddr);
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		free(l);
		return -errno;
	}
	nvl_strlcpy(sa.sun_path, a->traddr, sizeof(sa.sun_path));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		rc = -errno;
		close(fd);
		free(l);
		return rc;
	}
	chmod(a->traddr, 0660);
	l->fd = fd;
	l->addr = *a;
	l->fdh = nvl_fd_add(fd, EPOLLIN, listener_accept, l);
	if (l->fdh == NULL) {
		rc = -errno;
		close(fd);
		unlink(a->traddr);
		free(l);
		return rc;
	}
	TAILQ_INSERT_TAIL(&g_listeners, l, link);
	NVL_NOTICELOG("shm: listening on %s", a->traddr);
	return 0;
}

static void
shm_stop_listen(const struct nvl_listen_addr *a)
{
	struct shm_listener *l;

	TAILQ_FOREACH(l, &g_listeners, link) {
		if (strcmp(l->addr.traddr, a->traddr) == 0) {
			TAILQ_REMOVE(&g_listeners, l, link);
			nvl_fd_del(l->fdh);
			close(l->fd);
			unlink(l->addr.traddr);
			free(l);
			return;
		}
	}
}

static void
shm_ctrlr_disconnect(struct nvl_nvmf_ctrlr *tc)
{
	conn_teardown(tc->tctx, "disconnected by the target");
}

static void
shm_ctrlr_qpairs(struct nvl_nvmf_ctrlr *tc, json_t *arr)
{
	struct shm_ctrlr *sc = tc->tctx;

	json_array_append_new(arr, json_pack("{s:i, s:s, s:s, s:i}", "qid", 0, "state",
					     sc->state == C_ACTIVE ? "active" : "closing",
					     "trtype", "SHM", "admin_outstanding",
					     (int)sc->admin_outstanding));
	for (unsigned q = 1; q <= SHM_MAX_QUEUES; q++) {
		struct shm_sq *sq = sc->sqs[q];

		if (sq == NULL)
			continue;
		json_array_append_new(
			arr, json_pack("{s:i, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:i, s:I, s:I}", "qid",
				       (int)q, "state", NVL_STAT_GET(sq->fatal) ? "fatal" : "active", "trtype",
				       "SHM", "cqid", (int)sq->cq->qid, "entries",
				       (int)sq->entries, "reactor",
				       (int)nvl_reactor_id(sq->cq->reactor), "submitted",
				       (json_int_t)NVL_STAT_GET(sq->submitted), "completed",
				       (json_int_t)NVL_STAT_GET(sq->completed), "outstanding",
				       (int)NVL_STAT_GET(sq->outstanding), "interrupts",
				       (json_int_t)NVL_STAT_GET(sq->cq->interrupts), "cq_full_waits",
				       (json_int_t)NVL_STAT_GET(sq->cq->full_waits)));
	}
}

static int
shm_configure(json_t *opts, char *err, size_t errlen)
{
	json_t *v;

	if ((v = json_object_get(opts, "max_window_mib")) != NULL) {
		json_int_t mib = json_integer_value(v);

		if (mib < 2 || mib > 65536) {
			snprintf(err, errlen, "max_window_mib must be 2..65536");
			return -EINVAL;
		}
		g_opts.max_window = (uint64_t)mib << 20;
	}
	if ((v = json_object_get(opts, "max_queue_depth")) != NULL) {
		json_int_t d = json_integer_value(v);

		if (d < 2 || d > 4096) {
			snprintf(err, errlen, "max_queue_depth must be 2..4096");
			return -EINVAL;
		}
		g_opts.max_queue_depth = (uint32_t)d;
	}
	if ((v = json_object_get(opts, "max_io_qpairs_per_ctrlr")) != NULL) {
		json_int_t q = json_integer_value(v);

		if (q < 1 || q > SHM_MAX_QUEUES) {
			snprintf(err, errlen, "max_io_qpairs_per_ctrlr must be 1..%d", SHM_MAX_QUEUES);
			return -EINVAL;
		}
		g_opts.max_io_queues = (uint32_t)q;
	}
	return 0;
}

static json_t *
shm_dump_opts(void)
{
	return json_pack("{s:I, s:i, s:i}", "max_window_mib", (json_int_t)(g_opts.max_window >> 20),
			 "max_queue_depth", (int)g_opts.max_queue_depth, "max_io_qpairs_per_ctrlr",
			 (int)g_opts.max_io_queues);
}

static void (*g_fini_done)(void);
static struct nvl_timer *g_fini_timer;

static void
shm_fini_poll(void *arg)
{
	(void)arg;
	if (!TAILQ_EMPTY(&g_conns))
		return;
	nvl_timer_destroy(g_fini_timer);
	g_fini_timer = NULL;
	g_fini_done();
}

static void
shm_fini(void (*done)(void))
{
	struct shm_ctrlr *sc, *tmp;
	struct shm_listener *l;

	while ((l = TAILQ_FIRST(&g_listeners)) != NULL)
		shm_stop_listen(&l->addr);
	TAILQ_FOREACH_SAFE(sc, &g_conns, link, tmp)
		conn_teardown(sc, "daemon shutting down");
	g_fini_done = done;
	if (TAILQ_EMPTY(&g_conns)) {
		done();
		return;
	}
	g_fini_timer = nvl_timer_create(shm_fini_poll, NULL, 1000, 1000);
	if (g_fini_timer == NULL)
		done();
}

static struct nvl_transport_ops g_shm_ops = {
	.name = "SHM",
	.nvmf_trtype = 0,  /* not a standard NVMe-oF transport: not in discovery logs */
	.listen = shm_listen,
	.stop_listen = shm_stop_listen,
	.ctrlr_disconnect = shm_ctrlr_disconnect,
	.ctrlr_qpairs = shm_ctrlr_qpairs,
	.configure = shm_configure,
	.dump_opts = shm_dump_opts,
	.fini = shm_fini,
};
NVL_TRANSPORT_REGISTER(shm, &g_shm_ops)
