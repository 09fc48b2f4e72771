/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * shm transport, kept state: what a worker that is killed (or replaced)
 * leaves behind so that the next one resumes every shm controller without
 * its host noticing (DESIGN.md section 10; docs/lifetime.md).
 *
 * With a supervisor that holds descriptors (the keeper or systemd:
 * util/fdstore.h), each connected controller keeps in the fd store, under
 * "shm.ID.NAME":
 *   state      a private memfd: struct shm_keep (identity, features, admin
 *              slots, queue table) and one slot per request of each SQ
 *   sock       the control socket (the host never sees it close)
 *   win        the data window
 *   cqQ sqQ    each queue's region, kickQ each SQ's doorbell eventfd,
 *   vV         each interrupt vector's eventfd
 * The host holds the same regions and eventfds, so nothing changes on its
 * side: its SQ entries wait in shared memory while no worker runs.
 *
 * Write order (a kill between any two stores leaves a state that restores):
 *  - fetch: the slot gets the SQE and fetch number f+1, then ACTIVE, then the
 *    SQ's fetch count becomes f+1 (restore: an ACTIVE slot numbered one past
 *    the count was fetched, the count moves on);
 *  - completion: the slot gets the CQE and the CQ's post number p, then
 *    POSTING; the CQE goes into the ring; the CQ's post count becomes p+1;
 *    the slot becomes FREE (restore: a POSTING slot whose number is still
 *    the count is posted again at the same place with the same phase, which
 *    the host cannot tell from the first time; one below is done);
 *  - ACTIVE slots are executed again: a command the host has no completion
 *    for runs twice at worst, which NVMe allows for every I/O command
 *    nvlend serves (its data still sits in the window, unchanged);
 *  - admin commands: peeked from the socket into a RECEIVING slot, then
 *    taken off it (ACTIVE), answered (POSTING while the answer is sent),
 *    then FREE. A RECEIVING slot whose command is still first in the socket
 *    is dropped (it is read again), else it runs again like ACTIVE and
 *    POSTING ones; the host drops an answer it already had (libnvlend gives
 *    every admin command a new id). Creating a queue that came back, or
 *    deleting one that is gone, succeeds when run again.
 *  - queues: regions and eventfds go to the store first, then the table
 *    entry turns valid; leaving, the entry turns invalid first.
 *  - connect: the state region is stored first; a controller whose
 *    CONNECT_RESP may not have gone is not restored (its host sees the
 *    socket close and connects again).
 * What is lost: pending asynchronous events not yet reported (the host's
 * outstanding Asynchronous Event Requests are re-armed), the error log, and
 * a DH-HMAC-CHAP transaction in progress (one completed is kept).
 *
 * A controller whose restore keeps killing the worker (3 restarts within 5 s
 * of each other) is dropped instead: its host reconnects.
 *
 * A function's consumer (OPEN_FN, docs/functions.md) is kept the same way,
 * its record marked as such (version 2: a worker that predates it drops the
 * record rather than restore it as a Connect-ed host) with the generation
 * of the function's vectors. Its interrupt vectors are the function's, from
 * its PF's pool, which the pool keeps itself (function/fn.c): they are not
 * stored here. The restarted worker has replayed the configuration (PF,
 * subsystem, namespaces, the function's controller with its cntlid and
 * endpoint) before it restores; the consumer comes back onto the function
 * served on the endpoint it had opened (shm_fn_ops.restore), when that
 * function still has the same controller id, host identity and vectors;
 * else it is dropped with a log line and its socket closes.
 *
 * Threads: reactor 0 for the controller's table and the admin slots; each
 * SQ's slots and the CQ counters on the CQ's reactor (as the queues).
 */
#include "nvmf/auth.h"
#include "transport/shm_internal.h"
#include "util/fdstore.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

NVL_LOG_DECLARE_COMPONENT(shm);

#define SHM_KEEP_MAGIC 0x504b4d53u      /* "SMKP" */
#define SHM_KEEP_VERSION 1
#define SHM_KEEP_VERSION_FN 2           /* a function's consumer */
#define SHM_KEEP_MAX_DEPTH 4096u        /* slots per SQ: shm_configure's depth limit */
#define SHM_KEEP_MAX_RESTORES 3
#define SHM_KEEP_SETTLE_US 5000000      /* a restore that lasts this long clears the count */

enum shm_keep_state { SHM_KEEP_GONE = 0, SHM_KEEP_CONNECTING = 1, SHM_KEEP_ACTIVE = 2 };

struct shm_keep_features {
	uint32_t cc, csts;
	uint32_t arbitration, power_mgmt, temp_thresh, err_recovery, vwc;
	uint32_t num_queues, num_queues_set;
	uint32_t int_coalescing, write_atomicity, aec, resv_notif_mask;
	uint32_t authenticated;
};

struct shm_keep {
	uint32_t magic;
	uint32_t version;
	uint32_t id;
	uint32_t state;                 /* enum shm_keep_state */
	uint32_t restores;              /* restores in a row that did not last */
	uint16_t cntlid;
	uint16_t rsvd0;
	uint32_t kato_ms;
	uint32_t fn_gen;                /* version 2: the function's vector generation */
	uint64_t window_bytes;
	char subnqn[NVL_NVME_NQN_LEN];
	char hostnqn[NVL_NVME_NQN_LEN];
	uint8_t hostid[16];
	struct nvl_listen_addr listener;
	uint8_t vectors[SHM_MAX_VECTORS]; /* 1: vector V's eventfd is stored */
	struct shm_keep_features feat;
	struct shm_keep_slot admin[SHM_MAX_ADMIN_OUTSTANDING];
	struct shm_keep_cq cq[SHM_MAX_QUEUES + 1];
	struct shm_keep_sq sq[SHM_MAX_QUEUES + 1];
};

#define SHM_KEEP_SLOTS_OFF NVL_ALIGN_UP(sizeof(struct shm_keep), 4096)
#define SHM_KEEP_SQ_BYTES ((size_t)SHM_KEEP_MAX_DEPTH * sizeof(struct shm_keep_slot))
/* sparse: only the slots of queues that exist are ever touched */
#define SHM_KEEP_SIZE (SHM_KEEP_SLOTS_OFF + (size_t)SHM_MAX_QUEUES * SHM_KEEP_SQ_BYTES)

static uint32_t g_keep_next_id = 1;

static struct shm_keep_slot *
keep_sq_slots(struct shm_keep *k, uint16_t qid)
{
	return (struct shm_keep_slot *)((uint8_t *)k + SHM_KEEP_SLOTS_OFF +
					(size_t)(qid - 1) * SHM_KEEP_SQ_BYTES);
}

static void
keep_name(char *buf, size_t len, uint32_t id, const char *what, int n)
{
	if (n < 0)
		snprintf(buf, len, "shm.%u.%s", id, what);
	else
		snprintf(buf, len, "shm.%u.%s%d", id, what, n);
}

static int
keep_put(uint32_t id, const char *what, int n, int fd)
{
	char name[64];
	int rc;

	keep_name(name, sizeof(name), id, what, n);
	rc = nvl_fdstore_put(name, fd);
	if (rc < 0)
		NVL_WARNLOG("shm: cannot keep %s in the fd store: %s", name, strerror(-rc));
	return rc;
}

static void
keep_remove(uint32_t id, const char *what, int n)
{
	char name[64];

	keep_name(name, sizeof(name), id, what, n);
	(void)nvl_fdstore_remove(name);
}

static int
keep_take(uint32_t id, const char *what, int n)
{
	char name[64];

	keep_name(name, sizeof(name), id, what, n);
	return nvl_fdstore_take(name);
}

/* Forget everything stored for controller id (names that are not there are
 * ignored by the store). */
static void
keep_remove_all(uint32_t id)
{
	keep_remove(id, "state", -1);
	keep_remove(id, "sock", -1);
	keep_remove(id, "win", -1);
	for (int q = 1; q <= SHM_MAX_QUEUES; q++) {
		keep_remove(id, "cq", q);
		keep_remove(id, "sq", q);
		keep_remove(id, "kick", q);
	}
	for (int v = 0; v < SHM_MAX_VECTORS; v++)
		keep_remove(id, "v", v);
}

/* The controller will not survive a restart after all: its state goes from
 * the store (the rest is dropped at the next start, or when it closes). */
static void
keep_abandon(struct shm_ctrlr *sc, const char *why)
{
	if (sc->keep->state == SHM_KEEP_GONE)
		return;
	NVL_WARNLOG("shm: controller %u of %s will not survive a restart of the daemon: %s",
		    sc->tc ? sc->tc->nvme.cntlid : 0, sc->tc ? sc->tc->nvme.hostnqn : "?", why);
	__atomic_store_n(&sc->keep->state, SHM_KEEP_GONE, __ATOMIC_RELEASE);
	keep_remove(sc->keep_id, "state", -1);
}

/* ---- while serving ------------------------------------------------------------------------ */

void
shm_keep_snapshot(struct shm_ctrlr *sc)
{
	struct shm_keep_features *f;
	const struct nvl_nvme_ctrlr *n;

	if (sc->keep == NULL || sc->tc == NULL)
		return;
	f = &sc->keep->feat;
	n = &sc->tc->nvme;
	f->cc = n->cc;
	f->csts = n->csts;
	f->arbitration = n->feat_arbitration;
	f->power_mgmt = n->feat_power_mgmt;
	f->temp_thresh = n->feat_temp_thresh;
	f->err_recovery = n->feat_err_recovery;
	f->vwc = n->feat_vwc;
	f->num_queues = n->feat_num_queues;
	f->num_queues_set = n->num_queues_set;
	f->int_coalescing = n->feat_int_coalescing;
	f->write_atomicity = n->feat_write_atomicity;
	f->aec = n->feat_aec;
	f->resv_notif_mask = n->feat_resv_notif_mask;
	f->authenticated = nvl_nvmf_auth_authenticated(sc->tc->auth);
}

static void
keep_apply_features(struct shm_ctrlr *sc)
{
	const struct shm_keep_features *f = &sc->keep->feat;
	struct nvl_nvme_ctrlr *n = &sc->tc->nvme;

	n->cc = f->cc;
	n->csts = f->csts;
	n->feat_arbitration = f->arbitration;
	n->feat_power_mgmt = f->power_mgmt;
	n->feat_temp_thresh = f->temp_thresh;
	n->feat_err_recovery = f->err_recovery;
	n->feat_vwc = f->vwc;
	n->feat_num_queues = f->num_queues;
	n->num_queues_set = f->num_queues_set != 0;
	n->feat_int_coalescing = f->int_coalescing;
	n->feat_write_atomicity = f->write_atomicity;
	n->feat_aec = f->aec;
	n->feat_resv_notif_mask = f->resv_notif_mask;
}

void
shm_keep_connect(struct shm_ctrlr *sc)
{
	struct shm_keep *k;
	uint32_t id;
	int fd;

	if (!nvl_fdstore_available())
		return;
	fd = memfd_create("nvlend-shm-state", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)SHM_KEEP_SIZE) < 0) {
		NVL_WARNLOG("shm: controller %u: no state region (%s): it will not survive a "
			    "restart of the daemon", sc->tc->nvme.cntlid, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	k = mmap(NULL, SHM_KEEP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (k == MAP_FAILED) {
		NVL_WARNLOG("shm: controller %u: cannot map its state region: %s",
			    sc->tc->nvme.cntlid, strerror(errno));
		close(fd);
		return;
	}
	id = g_keep_next_id++;
	k->magic = SHM_KEEP_MAGIC;
	k->version = sc->fn ? SHM_KEEP_VERSION_FN : SHM_KEEP_VERSION;
	k->fn_gen = sc->fn ? sc->fn_gen : 0;
	k->id = id;
	k->state = SHM_KEEP_CONNECTING;
	k->cntlid = sc->tc->nvme.cntlid;
	k->kato_ms = sc->tc->nvme.kato_ms;
	k->window_bytes = sc->window.size;
	nvl_strlcpy(k->subnqn, sc->tc->nvme.subnqn, sizeof(k->subnqn));
	nvl_strlcpy(k->hostnqn, sc->tc->nvme.hostnqn, sizeof(k->hostnqn));
	memcpy(k->hostid, sc->tc->nvme.hostid, sizeof(k->hostid));
	k->listener = sc->listener;
	sc->keep = k;
	sc->keep_fd = fd;
	sc->keep_id = id;
	shm_keep_snapshot(sc);
	/* the state first: without it nothing else of id is taken back */
	if (keep_put(id, "state", -1, fd) < 0 || keep_put(id, "sock", -1, sc->fd) < 0 ||
	    keep_put(id, "win", -1, sc->window.fd) < 0)
		keep_abandon(sc, "the fd store refused a descriptor");
}

void
shm_keep_connected(struct shm_ctrlr *sc)
{
	if (sc->keep && sc->keep->state == SHM_KEEP_CONNECTING)
		__atomic_store_n(&sc->keep->state, SHM_KEEP_ACTIVE, __ATOMIC_RELEASE);
}

void
shm_keep_teardown(struct shm_ctrlr *sc)
{
	if (sc->keep == NULL)
		return;
	/* not to come back: a worker killed while this one drains restores nothing */
	__atomic_store_n(&sc->keep->state, SHM_KEEP_GONE, __ATOMIC_RELEASE);
	keep_remove(sc->keep_id, "state", -1);
}

void
shm_keep_free(struct shm_ctrlr *sc)
{
	if (sc->keep == NULL)
		return;
	/* the queues removed their own names when they went */
	keep_remove(sc->keep_id, "sock", -1);
	keep_remove(sc->keep_id, "win", -1);
	for (int v = 0; v < SHM_MAX_VECTORS; v++)
		if (sc->keep->vectors[v])
			keep_remove(sc->keep_id, "v", v);
	munmap(sc->keep, SHM_KEEP_SIZE);
	close(sc->keep_fd);
	sc->keep = NULL;
	sc->keep_fd = -1;
	nvl_timer_destroy(sc->restore_timer);
	sc->restore_timer = NULL;
}

int
shm_keep_admin_begin(struct shm_ctrlr *sc, const struct nvl_nvme_cmd *sqe)
{
	struct shm_keep *k = sc->keep;

	for (int i = 0; i < SHM_MAX_ADMIN_OUTSTANDING; i++) {
		if (k->admin[i].state == SHM_KS_FREE) {
			k->admin[i].sqe = *sqe;
			__atomic_store_n(&k->admin[i].state, SHM_KS_RECEIVING, __ATOMIC_RELEASE);
			return i;
		}
	}
	return -1; /* more than the admin limit: the connection closes anyway */
}

void
shm_keep_admin_set(struct shm_ctrlr *sc, int kslot, uint32_t state)
{
	if (sc->keep && kslot >= 0 && kslot < SHM_MAX_ADMIN_OUTSTANDING)
		__atomic_store_n(&sc->keep->admin[kslot].state, state, __ATOMIC_RELEASE);
}

void
shm_keep_cq_created(struct shm_ctrlr *sc, struct shm_cq *cq, bool new_vector)
{
	struct shm_keep *k = sc->keep;
	struct shm_keep_cq *kc;

	if (k == NULL || k->state == SHM_KEEP_GONE)
		return;
	if (keep_put(sc->keep_id, "cq", cq->qid, cq->region.fd) < 0) {
		keep_abandon(sc, "the fd store refused a queue");
		return;
	}
	if (new_vector) {
		if (keep_put(sc->keep_id, "v", cq->iv, cq->irq_fd) < 0) {
			keep_abandon(sc, "the fd store refused an interrupt vector");
			return;
		}
		k->vectors[cq->iv] = 1;
	}
	kc = &k->cq[cq->qid];
	kc->entries = cq->entries;
	kc->iv = cq->iv;
	kc->ien = cq->ien;
	kc->posted = 0;
	cq->kcq = kc;
	__atomic_store_n(&kc->valid, 1, __ATOMIC_RELEASE);
}

void
shm_keep_sq_created(struct shm_ctrlr *sc, struct shm_sq *sq)
{
	struct shm_keep *k = sc->keep;
	struct shm_keep_sq *ks;

	if (k == NULL || k->state == SHM_KEEP_GONE)
		return;
	if (sq->entries > SHM_KEEP_MAX_DEPTH) {
		keep_abandon(sc, "a queue deeper than the kept state holds");
		return;
	}
	if (keep_put(sc->keep_id, "sq", sq->qid, sq->region.fd) < 0 ||
	    keep_put(sc->keep_id, "kick", sq->qid, sq->kick_fd) < 0) {
		keep_abandon(sc, "the fd store refused a queue");
		return;
	}
	ks = &k->sq[sq->qid];
	sq->kslots = keep_sq_slots(k, sq->qid);
	memset(sq->kslots, 0, sq->entries * sizeof(*sq->kslots));
	ks->entries = sq->entries;
	ks->cqid = sq->cq->qid;
	ks->fetched = 0;
	sq->ksq = ks;
	__atomic_store_n(&ks->valid, 1, __ATOMIC_RELEASE);
}

void
shm_keep_sq_gone(struct shm_sq *sq)
{
	if (sq->ksq == NULL)
		return;
	__atomic_store_n(&sq->ksq->valid, 0, __ATOMIC_RELEASE);
	keep_remove(sq->sc->keep_id, "sq", sq->qid);
	keep_remove(sq->sc->keep_id, "kick", sq->qid);
	sq->ksq = NULL;
	sq->kslots = NULL;
}

void
shm_keep_cq_gone(struct shm_cq *cq)
{
	if (cq->kcq == NULL)
		return;
	__atomic_store_n(&cq->kcq->valid, 0, __ATOMIC_RELEASE);
	keep_remove(cq->sc->keep_id, "cq", cq->qid);
	cq->kcq = NULL;
}

/* ---- restore ------------------------------------------------------------------------------ */

/* What one kept controller brings back, taken and checked before anything
 * is built from it. */
struct keep_restore {
	uint32_t id;
	bool fn;                        /* a function's consumer */
	struct shm_keep *k;
	int state_fd, sock, win;
	int vec[SHM_MAX_VECTORS];
	struct shm_region cqr[SHM_MAX_QUEUES + 1], sqr[SHM_MAX_QUEUES + 1];
	int kick[SHM_MAX_QUEUES + 1];
	struct shm_region window;
	/* built ahead: queue objects allocated (and their pages touched) early */
	struct shm_cq *pcq[SHM_MAX_QUEUES + 1];
	struct shm_sq *psq[SHM_MAX_QUEUES + 1];
};

/* The queue objects allocated ahead for queue q (restore_prealloc). */
static void
restore_free_prealloc(struct keep_restore *kr, int q)
{
	if (kr->psq[q])
		free(kr->psq[q]->reqs);
	free(kr->psq[q]);
	free(kr->pcq[q]);
	kr->psq[q] = NULL;
	kr->pcq[q] = NULL;
}

static void
restore_release(struct keep_restore *kr)
{
	if (kr->k)
		munmap(kr->k, SHM_KEEP_SIZE);
	kr->k = NULL;
	if (kr->state_fd >= 0)
		close(kr->state_fd);
	kr->state_fd = -1;
	if (kr->sock >= 0)
		close(kr->sock);
	kr->sock = -1;
	shm_region_destroy(&kr->window);
	for (int v = 0; v < SHM_MAX_VECTORS; v++) {
		if (kr->vec[v] >= 0)
			close(kr->vec[v]);
		kr->vec[v] = -1;
	}
	for (int q = 0; q <= SHM_MAX_QUEUES; q++) {
		shm_region_destroy(&kr->cqr[q]);
		shm_region_destroy(&kr->sqr[q]);
		if (kr->kick[q] >= 0)
			close(kr->kick[q]);
		kr->kick[q] = -1;
		restore_free_prealloc(kr, q);
	}
	/* the store's copies too: the host's socket closes (it connects again) */
	keep_remove_all(kr->id);
}

static void
keep_give_back(uint32_t id, const char *what, int n, int *fd)
{
	char name[64];

	if (*fd < 0)
		return;
	keep_name(name, sizeof(name), id, what, n);
	if (nvl_fdstore_give_back(name, *fd) < 0)
		close(*fd);   /* removed or stored again meanwhile */
	*fd = -1;
}

static void
region_give_back(uint32_t id, const char *what, int n, struct shm_region *r)
{
	if (r->map)
		munmap(r->map, r->size);
	r->map = NULL;
	keep_give_back(id, what, n, &r->fd);
}

/* A worker built ahead leaves a controller for the hand-over after all: what
 * it took goes back to the store untaken (nothing is removed: the old worker
 * still serves it), to be restored then from the store as it is then. */
static void
restore_give_back(struct keep_restore *kr)
{
	if (kr->k)
		munmap(kr->k, SHM_KEEP_SIZE);
	kr->k = NULL;
	keep_give_back(kr->id, "state", -1, &kr->state_fd);
	keep_give_back(kr->id, "sock", -1, &kr->sock);
	region_give_back(kr->id, "win", -1, &kr->window);
	for (int v = 0; v < SHM_MAX_VECTORS; v++)
		keep_give_back(kr->id, "v", v, &kr->vec[v]);
	for (int q = 0; q <= SHM_MAX_QUEUES; q++) {
		region_give_back(kr->id, "cq", q, &kr->cqr[q]);
		region_give_back(kr->id, "sq", q, &kr->sqr[q]);
		keep_give_back(kr->id, "kick", q, &kr->kick[q]);
		restore_free_prealloc(kr, q);
	}
}

/* Map a kept region fd of exactly size bytes (0: whatever it is, at least
 * min). Queues are small and touched at once: pre-faulted. A data window
 * (up to a GiB) is not: pre-faulting 64 MiB took 3-15 ms here, which was
 * most of an upgrade's downtime; its pages (in memory already, the memfd
 * kept them) are mapped on first touch instead. */
static int
restore_map(struct shm_region *r, int fd, size_t size, size_t min, bool populate)
{
	struct stat st;

	r->fd = fd;
	r->map = NULL;
	if (fd < 0)
		return -ENOENT;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (size ? (size_t)st.st_size != size : (size_t)st.st_size < min)
		return -EBADMSG;
	r->size = (size_t)st.st_size;
	r->map = mmap(NULL, r->size, PROT_READ | PROT_WRITE,
		      MAP_SHARED | (populate ? MAP_POPULATE : 0), fd, 0);
	if (r->map == MAP_FAILED) {
		r->map = NULL;
		return -errno;
	}
	return 0;
}

static size_t
cq_region_size(uint32_t entries)
{
	return NVL_ALIGN_UP(NVL_SHM_RING_OFFSET + entries * sizeof(struct nvl_nvme_cpl), 4096);
}

static size_t
sq_region_size(uint32_t entries)
{
	return NVL_ALIGN_UP(NVL_SHM_RING_OFFSET + entries * sizeof(struct nvl_nvme_cmd), 4096);
}

/* Take and check everything of kr->id; \return 0 or a reason. */
static const char *restore_take_queues(struct keep_restore *kr);

static const char *
restore_take(struct keep_restore *kr)
{
	struct shm_keep *k;
	struct stat st;

	kr->state_fd = keep_take(kr->id, "state", -1);
	if (kr->state_fd < 0 || fstat(kr->state_fd, &st) < 0 || (size_t)st.st_size != SHM_KEEP_SIZE)
		return "its state region is missing or of the wrong size";
	k = mmap(NULL, SHM_KEEP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, kr->state_fd, 0);
	if (k == MAP_FAILED)
		return "its state region cannot be mapped";
	kr->k = k;
	if (k->magic != SHM_KEEP_MAGIC ||
	    (k->version != SHM_KEEP_VERSION && k->version != SHM_KEEP_VERSION_FN) ||
	    k->id != kr->id)
		return "its state region is not one this version understands";
	kr->fn = k->version == SHM_KEEP_VERSION_FN;
	if (k->state != SHM_KEEP_ACTIVE)
		return "it was still connecting";
	/* a worker that crashes on what it restores must not do so forever; a
	 * kill from outside (an operator, the OOM killer) is not such a crash */
	if (!nvl_fdstore_ahead() && nvl_fdstore_predecessor_crashed() &&
	    ++k->restores > SHM_KEEP_MAX_RESTORES)
		return "the daemon crashed each time it came back";
	if (memchr(k->subnqn, 0, sizeof(k->subnqn)) == NULL ||
	    memchr(k->hostnqn, 0, sizeof(k->hostnqn)) == NULL ||
	    memchr(k->listener.traddr, 0, sizeof(k->listener.traddr)) == NULL ||
	    memchr(k->listener.trtype, 0, sizeof(k->listener.trtype)) == NULL)
		return "its state region is damaged";
	kr->sock = keep_take(kr->id, "sock", -1);
	if (kr->sock < 0)
		return "its control socket was not kept";
	if (restore_map(&kr->window, keep_take(kr->id, "win", -1), k->window_bytes, 0, false) < 0)
		return "its data window was not kept";
	return restore_take_queues(kr);
}

/* Its vectors and queues; those taken already are left (a controller built
 * ahead takes at the hand-over the queues its host made meanwhile). */
static const char *
restore_take_queues(struct keep_restore *kr)
{
	struct shm_keep *k = kr->k;

	for (int v = 0; v < SHM_MAX_VECTORS; v++)
		if (k->vectors[v] && kr->vec[v] < 0 && (kr->vec[v] = keep_take(kr->id, "v", v)) < 0)
			return "an interrupt vector was not kept";
	for (int q = 1; q <= SHM_MAX_QUEUES; q++) {
		const struct shm_keep_cq *kc = &k->cq[q];
		const struct shm_keep_sq *ks = &k->sq[q];
		const struct nvl_shm_cq_page *cp;
		const struct nvl_shm_sq_page *sp;

		if (kc->valid && kr->cqr[q].map == NULL) {
			/* a function's vectors are its pool's: checked once it is found */
			if (kc->entries < 2 || kc->entries > SHM_KEEP_MAX_DEPTH ||
			    kc->iv >= SHM_MAX_VECTORS || (kc->ien && !kr->fn && kr->vec[kc->iv] < 0) ||
			    restore_map(&kr->cqr[q], keep_take(kr->id, "cq", q),
					cq_region_size(kc->entries), 0, true) < 0)
				return "a completion queue was not kept whole";
			cp = kr->cqr[q].map;
			if (cp->magic != NVL_SHM_CQ_MAGIC || cp->qid != q || cp->entries != kc->entries)
				return "a completion queue region is not the one kept";
		}
		if (ks->valid && kr->sqr[q].map == NULL) {
			if (ks->entries < 2 || ks->entries > SHM_KEEP_MAX_DEPTH || ks->cqid == 0 ||
			    ks->cqid > SHM_MAX_QUEUES || !k->cq[ks->cqid].valid ||
			    restore_map(&kr->sqr[q], keep_take(kr->id, "sq", q),
					sq_region_size(ks->entries), 0, true) < 0 ||
			    (kr->kick[q] = keep_take(kr->id, "kick", q)) < 0)
				return "a submission queue was not kept whole";
			sp = kr->sqr[q].map;
			if (sp->magic != NVL_SHM_SQ_MAGIC || sp->qid != q || sp->entries != ks->entries)
				return "a submission queue region is not the one kept";
		}
	}
	return NULL;
}

/* The restored controller lived long enough: a later restart counts anew. */
static void
restore_settled(void *arg)
{
	struct shm_ctrlr *sc = arg;

	if (sc->keep)
		sc->keep->restores = 0;
}

struct keep_cq_restore {
	struct shm_cq *cq;
	unsigned nsq;
	struct shm_sq *sqs[SHM_MAX_QUEUES];
};

static void
cq_set_posted(struct shm_cq *cq, uint64_t posted)
{
	cq->posted = posted;
	cq->tail = (uint32_t)(posted % cq->entries);
	cq->phase = (uint16_t)(1u ^ ((posted / cq->entries) & 1u));
}

/* The CQ's reactor: the queues run again, in this order: the completion a
 * kill interrupted, the fetch whose count did not move, then every command
 * the host has no completion for (all of this CQ's SQs before any new post). */
static void
keep_cq_restore_on_reactor(void *arg)
{
	struct keep_cq_restore *m = arg;
	struct shm_cq *cq = m->cq;
	bool posted = false;

	shm_cq_start_on_reactor(cq);
	for (unsigned i = 0; i < m->nsq; i++)
		shm_sq_start_on_reactor(m->sqs[i]);
	for (unsigned i = 0; i < m->nsq; i++) {
		struct shm_sq *sq = m->sqs[i];

		for (uint32_t s = 0; s < sq->entries; s++) {
			struct shm_keep_slot *k = &sq->kslots[s];

			if (k->state != SHM_KS_POSTING)
				continue;
			if (k->seq == cq->posted) {
				uint16_t phase = (uint16_t)(1u ^ ((k->seq / cq->entries) & 1u));

				shm_cqe_post(&cq->ring[k->seq % cq->entries], &k->cpl, phase);
				cq_set_posted(cq, cq->posted + 1);
				__atomic_store_n(&cq->kcq->posted, cq->posted, __ATOMIC_RELEASE);
				posted = true;
			}
			__atomic_store_n(&k->state, SHM_KS_FREE, __ATOMIC_RELEASE);
		}
	}
	for (unsigned i = 0; i < m->nsq; i++) {
		struct shm_sq *sq = m->sqs[i];

		for (uint32_t s = 0; s < sq->entries; s++) {
			if (sq->kslots[s].state == SHM_KS_ACTIVE && sq->kslots[s].seq == sq->fetched + 1) {
				sq->fetched++;
				__atomic_store_n(&sq->ksq->fetched, sq->fetched, __ATOMIC_RELEASE);
				break;
			}
		}
		sq->head = (uint32_t)(sq->fetched % sq->entries);
		__atomic_store_n(&sq->page->head, sq->head, __ATOMIC_RELEASE);
	}
	for (unsigned i = 0; i < m->nsq; i++) {
		struct shm_sq *sq = m->sqs[i];

		for (uint32_t s = 0; s < sq->entries && sq->state == Q_ACTIVE; s++) {
			struct shm_req *r = &sq->reqs[s];

			if (sq->kslots[s].state != SHM_KS_ACTIVE)
				continue;
			r->nvme.cmd = sq->kslots[s].sqe;
			NVL_STAT_INC(sq->outstanding);
			NVL_STAT_INC(sq->submitted);
			shm_sq_exec(sq, r);
		}
	}
	if (posted)
		shm_cq_interrupt(cq);
	free(m);
}

/* Build the queues of a restored controller (reactor 0) and start them on
 * their reactors; \return the commands that run again. */
static unsigned
restore_queues(struct shm_ctrlr *sc, struct keep_restore *kr, struct keep_cq_restore **here,
	       unsigned *nhere)
{
	struct shm_keep *k = sc->keep;
	unsigned again = 0;

	for (int q = 1; q <= SHM_MAX_QUEUES; q++) {
		struct shm_keep_cq *kc = &k->cq[q];
		struct shm_cq *cq;

		if (!kc->valid)
			continue;
		cq = kr->pcq[q] ? kr->pcq[q] : calloc(1, sizeof(*cq));
		kr->pcq[q] = NULL;
		if (cq == NULL)
			abort(); /* small control-path allocation at start-up */
		cq->sc = sc;
		cq->qid = (uint16_t)q;
		cq->iv = kc->iv;
		cq->ien = kc->ien;
		cq->entries = kc->entries;
		cq->region = kr->cqr[q];
		kr->cqr[q].fd = -1;
		kr->cqr[q].map = NULL;
		cq->page = cq->region.map;
		cq->ring = (void *)((uint8_t *)cq->region.map + NVL_SHM_RING_OFFSET);
		cq->irq_fd = cq->ien ? sc->vectors[cq->iv] : -1;
		cq->head_cache = __atomic_load_n(&cq->page->head, __ATOMIC_ACQUIRE) % cq->entries;
		cq_set_posted(cq, kc->posted);
		cq->kcq = kc;
		cq->reactor = nvl_reactor_pick();
		TAILQ_INIT(&cq->waiting);
		sc->cqs[q] = cq;
		sc->ncq_alive++;
	}
	for (int q = 1; q <= SHM_MAX_QUEUES; q++) {
		struct shm_keep_sq *ks = &k->sq[q];
		struct shm_sq *sq;

		if (!ks->valid)
			continue;
		sq = kr->psq[q];
		kr->psq[q] = NULL;
		if (sq && sq->entries != ks->entries) {
			free(sq->reqs);
			free(sq);
			sq = NULL;
		}
		if (sq == NULL) {
			sq = calloc(1, sizeof(*sq));
			if (sq == NULL || (sq->reqs = calloc(ks->entries, sizeof(*sq->reqs))) == NULL)
				abort();
		}
		sq->sc = sc;
		sq->cq = sc->cqs[ks->cqid];
		sq->qid = (uint16_t)q;
		sq->entries = ks->entries;
		sq->region = kr->sqr[q];
		kr->sqr[q].fd = -1;
		kr->sqr[q].map = NULL;
		sq->kick_fd = kr->kick[q];
		kr->kick[q] = -1;
		sq->page = sq->region.map;
		sq->ring = (void *)((uint8_t *)sq->region.map + NVL_SHM_RING_OFFSET);
		sq->ksq = ks;
		sq->kslots = keep_sq_slots(k, (uint16_t)q);
		sq->fetched = ks->fetched;
		sq->head = (uint32_t)(sq->fetched % sq->entries);
		for (uint32_t i = sq->entries; i-- > 0;) {
			sq->reqs[i].sq = sq;
			if (sq->kslots[i].state == SHM_KS_ACTIVE) {
				again++;
				continue; /* runs again: not free */
			}
			sq->reqs[i].next_free = sq->free_reqs;
			sq->free_reqs = &sq->reqs[i];
		}
		sq->cq->nsqs++;
		sc->nsq_alive++;
		sc->sqs[q] = sq;
	}
	for (int q = 1; q <= SHM_MAX_QUEUES; q++) {
		struct keep_cq_restore *m;

		if (sc->cqs[q] == NULL)
			continue;
		m = calloc(1, sizeof(*m));
		if (m == NULL)
			abort();
		m->cq = sc->cqs[q];
		for (int s = 1; s <= SHM_MAX_QUEUES; s++)
			if (sc->sqs[s] && sc->sqs[s]->cq == m->cq)
				m->sqs[m->nsq++] = sc->sqs[s];
		/* this reactor's own: run by the caller once the controller is set up
		 * (a message would wait for every other controller restored now) */
		if (m->cq->reactor == nvl_reactor_self())
			here[(*nhere)++] = m;
		else
			nvl_reactor_msg(m->cq->reactor, keep_cq_restore_on_reactor, m);
	}
	return again;
}

/* Admin commands in flight when the worker died run again (reactor 0). */
static unsigned
restore_admin(struct shm_ctrlr *sc)
{
	struct shm_keep *k = sc->keep;
	unsigned again = 0;

	for (int i = 0; i < SHM_MAX_ADMIN_OUTSTANDING && sc->state == C_ACTIVE; i++) {
		struct shm_keep_slot *s = &k->admin[i];

		if (s->state == SHM_KS_FREE)
			continue;
		if (s->state == SHM_KS_RECEIVING) {
			struct nvl_shm_admin_cmd m;
			ssize_t n = recv(sc->fd, &m, sizeof(m), MSG_PEEK | MSG_DONTWAIT);

			if (n == (ssize_t)sizeof(m) && m.hdr.type == NVL_SHM_MSG_ADMIN_CMD &&
			    memcmp(&m.sqe, &s->sqe, sizeof(m.sqe)) == 0) {
				/* still queued: it is read again */
				__atomic_store_n(&s->state, SHM_KS_FREE, __ATOMIC_RELEASE);
				continue;
			}
		}
		__atomic_store_n(&s->state, SHM_KS_ACTIVE, __ATOMIC_RELEASE);
		again++;
		shm_admin_start(sc, &s->sqe, i, true);
	}
	return again;
}

/* A kept function consumer (reactor 0): the function served on the endpoint
 * it had opened takes sc as its consumer again, when it is the same one (a
 * function re-created by the configuration with the same controller id,
 * host identity and pool). Fills the Connect's function fields; \return NULL
 * or why it is dropped (the function no longer counts sc then). */
static const char *
restore_fn_open(struct shm_ctrlr *sc, const struct keep_restore *kr, struct nvl_connect_info *ci,
		char *why, size_t len)
{
	const struct shm_keep *k = kr->k;
	struct shm_fn_open *o;
	bool vectors_used = false;
	const char *bad = NULL;
	int rc;

	if (g_shm_fn_ops == NULL || g_shm_fn_ops->restore == NULL)
		return "this daemon serves no functions";
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return "out of memory";
	why[0] = '\0';
	rc = g_shm_fn_ops->restore(k->listener.traddr, sc, o, why, len);
	if (rc < 0) {
		free(o);
		if (rc == -ENOENT)
			return "the replayed configuration has no function on its endpoint";
		return why[0] ? why : "the function refused it";
	}
	for (int q = 1; q <= SHM_MAX_QUEUES; q++) {
		if (k->cq[q].valid && k->cq[q].ien) {
			vectors_used = true;
			if (k->cq[q].iv >= o->nvectors)
				bad = "the function has fewer interrupt vectors than its queues use";
		}
	}
	if (o->cntlid != k->cntlid)
		bad = "the function has another controller id now";
	else if (strcmp(o->subnqn, k->subnqn) != 0 || strcmp(o->hostnqn, k->hostnqn) != 0)
		bad = "the function is on another subsystem or host identity now";
	else if (vectors_used && o->vector_gen != k->fn_gen)
		bad = "the function's interrupt vectors are not the ones it had (its PF's pool was "
		      "made anew)";
	if (bad) {
		g_shm_fn_ops->closed(o->fn, sc);
		free(o);
		return bad;
	}
	sc->fn = o->fn;
	sc->fn_gen = o->vector_gen;
	sc->suspended = o->suspended;
	for (unsigned v = 0; v < o->nvectors && v < SHM_MAX_VECTORS; v++)
		sc->vectors[v] = o->vectors[v];
	ci->fixed_cntlid = true;
	if (o->max_io_queues)
		ci->max_io_queues = (uint16_t)NVL_MIN(o->max_io_queues, ci->max_io_queues);
	ci->mdts = o->mdts;
	free(o);
	return NULL;
}

/* Built ahead: the queue objects of the queues kept now, their request
 * tables' pages touched (a 1024-entry table faulted in 50 pages at the
 * hand-over, some 40 us per controller). */
static void
restore_prealloc(struct keep_restore *kr)
{
	for (int q = 1; q <= SHM_MAX_QUEUES; q++) {
		const struct shm_keep_sq *ks = &kr->k->sq[q];
		struct shm_sq *sq;

		if (kr->k->cq[q].valid && kr->pcq[q] == NULL)
			kr->pcq[q] = calloc(1, sizeof(*kr->pcq[q]));
		if (!ks->valid || kr->psq[q] || ks->entries < 2 || ks->entries > SHM_KEEP_MAX_DEPTH)
			continue;
		/* the SQ's kept slots (a page of the state memfd apart from the
		 * others): mapped now, not by a fault at the hand-over (5-9 us) */
		{
			const uint8_t *slots = (const uint8_t *)keep_sq_slots(kr->k, (uint16_t)q);
			size_t len = (size_t)ks->entries * sizeof(struct shm_keep_slot);

			for (size_t off = 0; off < len; off += 4096)
				(void)__atomic_load_n(&slots[off], __ATOMIC_RELAXED);
			(void)__atomic_load_n(&slots[len - 1], __ATOMIC_RELAXED);
		}
		sq = calloc(1, sizeof(*sq));
		if (sq == NULL || (sq->reqs = calloc(ks->entries, sizeof(*sq->reqs))) == NULL) {
			free(sq);
			continue;
		}
		sq->entries = ks->entries;
		for (uint32_t i = 0; i < sq->entries; i++)
			sq->reqs[i].sq = sq;
		kr->psq[q] = sq;
	}
}

/*
 * A kept controller comes back in two halves: restore_connect() takes its
 * descriptors and regions and makes the target's controller again (a worker
 * built ahead of an upgrade does this while the old one still serves: none
 * of it runs the queues), restore_finish() reads where the queues stopped
 * and runs them (at the hand-over). \return 0 (sc and tc set; for a
 * function's consumer built ahead: taken only, *scp NULL), -1 (logged, the
 * host connects again).
 */
static int
restore_connect(uint32_t id, struct keep_restore *kr, struct shm_ctrlr **scp,
		struct nvl_nvmf_ctrlr **tcp, bool ahead)
{
	struct nvl_connect_info ci = { 0 };
	struct nvl_nvmf_ctrlr *tc;
	struct shm_ctrlr *sc;
	const char *why;
	uint16_t status;
	char cwhy[200] = "";
	int rc;

	*scp = NULL;
	*tcp = NULL;
	if (kr->k == NULL) {
		*kr = (struct keep_restore){ .id = id, .state_fd = -1, .sock = -1 };
		kr->window.fd = -1;
		for (int v = 0; v < SHM_MAX_VECTORS; v++)
			kr->vec[v] = -1;
		for (int q = 0; q <= SHM_MAX_QUEUES; q++) {
			kr->cqr[q].fd = kr->sqr[q].fd = kr->kick[q] = -1;
			kr->cqr[q].map = kr->sqr[q].map = NULL;
		}
		why = restore_take(kr);
		if (why && ahead) {
			/* a host connecting, making or deleting a queue now: the old
			 * worker still serves it; the hand-over looks again */
			NVL_NOTICELOG("shm: kept controller %u (host %s) not built ahead: %s; "
				      "restored at the hand-over",
				      kr->k ? kr->k->cntlid : 0, kr->k ? kr->k->hostnqn : "?", why);
			restore_give_back(kr);
			return -1;
		}
		if (why) {
			NVL_WARNLOG("shm: kept controller %u (%s, host %s) not restored: %s; its host "
				    "connects again",
				    kr->k ? kr->k->cntlid : 0, kr->k ? kr->k->subnqn : "?",
				    kr->k ? kr->k->hostnqn : "?", why);
			restore_release(kr);
			return -1;
		}
		/* a function's consumer opens its function: that subsystem starts at
		 * the hand-over */
		if (ahead && kr->fn)
			return 0;
	}
	if (ahead)
		restore_prealloc(kr);
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL) {
		if (ahead)
			restore_give_back(kr);
		else
			restore_release(kr);
		return -1;
	}
	sc->fd = kr->sock;
	sc->listener = kr->k->listener;
	sc->keep_fd = -1;
	sc->window.fd = -1;
	for (int v = 0; v < SHM_MAX_VECTORS; v++)
		sc->vectors[v] = -1;
	shm_conn_peer_cred(sc);
	ci.subnqn = kr->k->subnqn;
	ci.hostnqn = kr->k->hostnqn;
	ci.hostid = kr->k->hostid;
	ci.kato_ms = kr->k->kato_ms;
	ci.cntlid = kr->k->cntlid;
	ci.restore = true;
	ci.restore_authenticated = kr->k->feat.authenticated != 0;
	shm_connect_info_fill(sc, &ci);
	if (kr->fn) {
		why = restore_fn_open(sc, kr, &ci, cwhy, sizeof(cwhy));
		if (why) {
			NVL_WARNLOG("shm: kept consumer (pid %u) of the function on %s (controller "
				    "%u of %s) dropped: %s; its socket closes, it may open the "
				    "function again",
				    shm_fn_consumer_pid(sc), kr->k->listener.traddr, kr->k->cntlid,
				    kr->k->subnqn, why);
			free(sc->groups);
			free(sc);
			restore_release(kr);
			return -1;
		}
		cwhy[0] = '\0';
	}
	ci.why = cwhy;
	ci.why_len = sizeof(cwhy);
	rc = nvl_nvmf_connect(&ci, &tc, &status);
	if (rc < 0 && ahead) {
		NVL_NOTICELOG("shm: kept controller %u (host %s) not built ahead: %s; restored at "
			      "the hand-over",
			      kr->k->cntlid, kr->k->hostnqn,
			      cwhy[0] ? cwhy : rc == -ENOENT ? "no such subsystem yet" : strerror(-rc));
		free(sc->groups);
		free(sc);
		restore_give_back(kr);
		return -1;
	}
	if (rc < 0) {
		NVL_WARNLOG("shm: kept controller %u (%s, host %s) not restored: %s; its host "
			    "connects again",
			    kr->k->cntlid, kr->k->subnqn, kr->k->hostnqn,
			    cwhy[0] ? cwhy : rc == -ENOENT ? "the subsystem is gone" : strerror(-rc));
		if (sc->fn)
			g_shm_fn_ops->closed(sc->fn, sc);
		free(sc->groups);
		free(sc);
		restore_release(kr);
		return -1;
	}
	*scp = sc;
	*tcp = tc;
	return 0;
}

/* The hand-over's "restored" lines are written once every controller runs
 * again: a log write took 5-8 us each, which every later controller waited. */
static struct {
	bool on;
	unsigned n, cap;
	char **v;
} g_keep_lines;

static void
keep_log_restored(const char *line)
{
	if (g_keep_lines.on && g_keep_lines.n == g_keep_lines.cap) {
		unsigned cap = g_keep_lines.cap ? g_keep_lines.cap * 2 : 64;
		char **v = realloc(g_keep_lines.v, sizeof(*v) * cap);

		if (v) {
			g_keep_lines.v = v;
			g_keep_lines.cap = cap;
		}
	}
	if (g_keep_lines.on && g_keep_lines.n < g_keep_lines.cap &&
	    (g_keep_lines.v[g_keep_lines.n] = strdup(line)) != NULL) {
		g_keep_lines.n++;
		return;
	}
	NVL_NOTICELOG("%s", line);
}

static void
keep_log_write(void *arg)
{
	char **v = arg;

	for (unsigned i = 0; v && v[i]; i++) {
		NVL_NOTICELOG("%s", v[i]);
		free(v[i]);
	}
	free(v);
}

/* after what else the hand-over restores now (NVMe/TCP, the listeners) */
static void
keep_log_flush(void)
{
	char **v = g_keep_lines.v;

	g_keep_lines.on = false;
	g_keep_lines.v = NULL;
	if (v && g_keep_lines.n == g_keep_lines.cap) {
		char **w = realloc(v, sizeof(*v) * (g_keep_lines.n + 1));

		if (w == NULL) {
			for (unsigned i = 0; i < g_keep_lines.n; i++) {
				NVL_NOTICELOG("%s", v[i]);
				free(v[i]);
			}
			free(v);
			v = NULL;
		}
		v = w;
	}
	if (v)
		v[g_keep_lines.n] = NULL;
	g_keep_lines.n = g_keep_lines.cap = 0;
	if (v && nvl_reactor_msg(nvl_reactor_self(), keep_log_write, v) < 0)
		keep_log_write(v);
}

/* What the second half of a controller's finish needs from the first. */
struct keep_finished {
	unsigned nq, io_again;
	bool fn;
};

/*
 * Finishing a controller is two passes. The first makes its queues run and
 * counts it as served again: all controllers of a hand-over have that
 * first, one after the other. The second watches its control socket (its
 * admin commands waited in it meanwhile), runs again the admin commands it
 * had in flight and writes its line: 5-6 us of each controller that had
 * made every later one wait.
 */
static void
restore_finish_io(uint32_t id, struct keep_restore *kr, struct shm_ctrlr *sc,
		  struct nvl_nvmf_ctrlr *tc, struct keep_finished *fin)
{
	struct keep_cq_restore *here[SHM_MAX_QUEUES];
	unsigned nhere = 0;
	char what[96];

	/* from here on the controller is sc's; the descriptors move over */
	sc->tc = tc;
	sc->keep = kr->k;
	sc->keep_fd = kr->state_fd;
	sc->keep_id = id;
	sc->window = kr->window;
	/* the window budget counts it against its host again */
	nvl_strlcpy(sc->window_host, kr->k->hostnqn, sizeof(sc->window_host));
	/* a function's consumer has its function's (restore_fn_open) */
	for (int v = 0; v < SHM_MAX_VECTORS && !kr->fn; v++)
		sc->vectors[v] = kr->vec[v];
	keep_apply_features(sc);
	sc->state = C_ACTIVE;
	fin->fn = kr->fn;
	fin->io_again = restore_queues(sc, kr, here, &nhere);
	fin->nq = 0;
	for (int q = 1; q <= SHM_MAX_QUEUES; q++)
		fin->nq += sc->sqs[q] != NULL;
	TAILQ_INSERT_TAIL(&g_shm_conns, sc, link);
	g_shm_nconns++;
	/* its queues on this reactor run now (the others' by their message),
	 * then it counts as served again */
	for (unsigned i = 0; i < nhere; i++)
		keep_cq_restore_on_reactor(here[i]);
	snprintf(what, sizeof(what), "shm %.48s controller %u", tc->nvme.subnqn, tc->nvme.cntlid);
	nvl_handover_resumed(what);
}

static void
restore_finish_admin(struct shm_ctrlr *sc, const struct keep_finished *fin)
{
	struct nvl_nvmf_ctrlr *tc = sc->tc;
	unsigned admin_again;
	char line[800];

	sc->restore_timer = nvl_timer_create(restore_settled, sc, SHM_KEEP_SETTLE_US, 0);
	sc->fdh = nvl_fd_add(sc->fd, EPOLLIN, shm_conn_event, sc);
	if (sc->fdh == NULL) {
		shm_conn_teardown(sc, "cannot watch the control socket");
		return;
	}
	admin_again = restore_admin(sc);
	shm_keep_snapshot(sc);
	if (sc->fn && g_shm_fn_ops->restored)
		g_shm_fn_ops->restored(sc->fn, sc);
	snprintf(line, sizeof(line),
		 "shm: controller %u of %s (%s) restored after a restart%s: %u I/O queue(s), %u "
		 "I/O and %u admin command(s) run again",
		 tc->nvme.cntlid, tc->nvme.hostnqn, tc->nvme.subnqn,
		 fin->fn ? " (a function's consumer, not opened again)" : "", fin->nq,
		 fin->io_again, admin_again);
	keep_log_restored(line);
}

static void
restore_one(uint32_t id)
{
	struct keep_restore kr = { .k = NULL };
	struct keep_finished fin;
	struct nvl_nvmf_ctrlr *tc;
	struct shm_ctrlr *sc;


	if (restore_connect(id, &kr, &sc, &tc, false) == 0) {
		restore_finish_io(id, &kr, sc, tc, &fin);
		restore_finish_admin(sc, &fin);
	}
}

struct keep_ids {
	uint32_t ids[SHM_MAX_CONNECTIONS * 2];
	unsigned n;
	uint32_t max;
};

static void
collect_id(void *arg, const char *name, int fd)
{
	struct keep_ids *ids = arg;
	unsigned id;
	char word[16];
	int end = 0;

	(void)fd;
	if (sscanf(name, "shm.%u.%15[a-z]%n", &id, word, &end) != 2 || end == 0)
		return;
	if (id > ids->max)
		ids->max = id;
	if (strcmp(word, "state") == 0 && name[end] == '\0' &&
	    ids->n < sizeof(ids->ids) / sizeof(ids->ids[0]))
		ids->ids[ids->n++] = id;
}

/* controllers built ahead of an upgrade, finished at the hand-over */
struct keep_ahead {
	uint32_t id;
	bool revoked;                 /* its host changed it meanwhile: built again */
	bool running;                 /* its queues run: the admin half is left */
	struct keep_finished fin;
	struct keep_restore kr;
	struct shm_ctrlr *sc;         /* NULL: taken only (a function's consumer) */
	struct nvl_nvmf_ctrlr *tc;
};
static struct keep_ahead *g_keep_ahead;
static unsigned g_keep_nahead;

/*
 * The store's hand-over (util/fdstore.h): a descriptor of a controller built
 * ahead was removed or stored again after the snapshot (its host
 * disconnected, made or deleted a queue while the old worker served it).
 * Only that controller is built again, from the store as it is at the
 * hand-over; the others, and the rest of what was built, stand.
 */
static bool
keep_ahead_revoke(const char *name)
{
	unsigned id;
	int end = 0;

	if (sscanf(name, "shm.%u.%n", &id, &end) != 1 || end == 0)
		return false;
	for (unsigned i = 0; i < g_keep_nahead; i++) {
		if (g_keep_ahead[i].id == id) {
			g_keep_ahead[i].revoked = true;
			return true;
		}
	}
	return false;
}

/* A controller built ahead that is not finished: as if never built. */
static void
keep_ahead_drop(struct keep_ahead *a)
{
	if (a->tc)
		nvl_nvmf_ctrlr_release(a->tc);
	if (a->sc) {
		free(a->sc->groups);
		free(a->sc);
	}
	a->sc = NULL;
	a->tc = NULL;
	restore_give_back(&a->kr);
}

void
shm_keep_restore_ahead(void)
{
	struct keep_ids *ids = calloc(1, sizeof(*ids));
	unsigned connected = 0;

	if (ids == NULL)
		return;
	nvl_fdstore_for_each_untaken(collect_id, ids);
	if (ids->max >= g_keep_next_id)
		g_keep_next_id = ids->max + 1;
	g_keep_ahead = ids->n ? calloc(ids->n, sizeof(*g_keep_ahead)) : NULL;
	for (unsigned i = 0; g_keep_ahead && i < ids->n; i++) {
		struct keep_ahead *a = &g_keep_ahead[g_keep_nahead];

		*a = (struct keep_ahead){ .id = ids->ids[i] };
		if (restore_connect(a->id, &a->kr, &a->sc, &a->tc, true) == 0) {
			connected += a->sc != NULL;
			g_keep_nahead++;
		}
	}
	free(ids);
	if (g_keep_nahead)
		nvl_fdstore_ahead_revoker(keep_ahead_revoke);
	if (g_keep_nahead)
		NVL_NOTICELOG("shm: %u kept controller(s) built ahead (%u connected, their queues "
			      "run at the hand-over)",
			      g_keep_nahead, connected);
}

/* The admin halves of the controllers built ahead (reactor 0). One that
 * went meanwhile (a shutdown right at the start) is no longer listed. */
static void
keep_ahead_admin_all(void *arg)
{
	(void)arg;
	g_keep_lines.on = true;
	for (unsigned i = 0; i < g_keep_nahead; i++) {
		struct keep_ahead *a = &g_keep_ahead[i];
		struct shm_ctrlr *sc;

		if (!a->running)
			continue;
		TAILQ_FOREACH(sc, &g_shm_conns, link)
			if (sc == a->sc)
				break;
		if (sc && sc->state == C_ACTIVE && sc->keep_id == a->id)
			restore_finish_admin(sc, &a->fin);
	}
	free(g_keep_ahead);
	g_keep_ahead = NULL;
	g_keep_nahead = 0;
	keep_log_flush();
}

void
shm_keep_restore_all(void)
{
	struct keep_ids *ids;

	nvl_fdstore_ahead_revoker(NULL);
	g_keep_lines.on = true;
	/* built ahead first: only their queues are left */
	for (unsigned i = 0; i < g_keep_nahead; i++) {
		struct keep_ahead *a = &g_keep_ahead[i];
		const char *why;

		if (a->revoked) {
			NVL_NOTICELOG("shm: controller %u built ahead: its host changed it meanwhile "
				      "(a queue or its connection came or went): restored from the "
				      "store as it is now",
				      a->kr.k ? a->kr.k->cntlid : 0);
			keep_ahead_drop(a);
			continue;   /* untaken again: restored below if it is still kept */
		}
		why = restore_take_queues(&a->kr);

		if (why) {
			/* its host made a queue meanwhile that was not kept whole */
			NVL_ERRLOG("shm: controller %u built ahead: %s", a->kr.k->cntlid, why);
			nvl_fdstore_ahead_afresh("a controller built ahead cannot be finished");
		}

		if (a->sc == NULL &&
		    restore_connect(a->id, &a->kr, &a->sc, &a->tc, false) < 0)
			continue;
		restore_finish_io(a->id, &a->kr, a->sc, a->tc, &a->fin);
		a->running = true;
	}
	/* their admin halves once the rest of the hand-over (NVMe/TCP, the
	 * listeners) is done too */
	if (g_keep_nahead && nvl_reactor_msg(nvl_reactor_self(), keep_ahead_admin_all, NULL) < 0)
		keep_ahead_admin_all(NULL);
	/* then those that came after the snapshot */
	ids = calloc(1, sizeof(*ids));
	if (ids == NULL) {
		keep_log_flush();
		return;
	}
	nvl_fdstore_for_each_untaken(collect_id, ids);
	if (ids->max >= g_keep_next_id)
		g_keep_next_id = ids->max + 1;
	for (unsigned i = 0; i < ids->n; i++)
		restore_one(ids->ids[i]);
	free(ids);
	keep_log_flush();
}
