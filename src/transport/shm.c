/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * shm transport, controller side (DESIGN.md section 5; protocol in
 * include/nvlend/spec/shm.h): the control channel. Listeners, a host's
 * control connection (CONNECT, admin commands the target runs on the host's
 * behalf, DISCONNECT), the regions handed out (window, SQ, CQ: sealed
 * memfds), connection teardown and the transport's ops. The queues (I/O
 * path, queue lifecycle, Create/Delete I/O SQ/CQ) are in shm_queue.c;
 * shm_internal.h has the structures.
 *
 * Ownership and threads:
 *  - listeners and control connections live on reactor 0; every admin
 *    command runs there (the controller's home reactor), and the queue
 *    tables sc->cqs[] / sc->sqs[] are only touched there;
 *  - each I/O completion queue is bound for life to the reactor
 *    nvl_reactor_pick() chose (given back when the CQ is freed); its
 *    submission queues are polled on that same reactor, so posting
 *    completions needs no lock;
 *  - queue start/stop cross reactors with messages (FIFO per sender, so a
 *    queue's start always precedes its stop); a connection is freed on
 *    reactor 0 only after every queue drained and went.
 * Data never passes through the daemon: bdev I/O reads and writes the host's
 * data window directly (zero copy).
 */
#include "nvmf/auth.h"
#include "transport/shm_internal.h"
#include "transport/shm_map.h"
#include "util/log.h"
#include "util/sock.h"
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
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(shm)

struct shm_opts g_shm_opts = {
	.max_window = 1ULL << 30,
	.max_window_per_host = 4ULL << 30,
	.max_window_total = 16ULL << 30,
	.max_queue_depth = 1024,
	.max_io_queues = SHM_MAX_QUEUES,
	.max_queues_per_host = 512,
	.max_queues_total = 8192,
	.max_vectors_per_host = 256,
	.max_vectors_total = 4096,
};

struct shm_conn_list g_shm_conns = TAILQ_HEAD_INITIALIZER(g_shm_conns);
unsigned g_shm_nconns;

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

int
shm_region_create(struct shm_region *r, const char *what, size_t size)
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
		goto err_close;
	}
	rc = posix_fallocate(r->fd, 0, (off_t)size);
	if (rc != 0) {
		rc = -rc;
		goto err_close;
	}
	if (fcntl(r->fd, F_ADD_SEALS, SHM_REGION_SEALS) < 0) {
		rc = -errno;
		goto err_close;
	}
	/* pre-fault: first touch costs milliseconds per 2 MiB on these VMs */
	r->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, 0);
	if (r->map == MAP_FAILED) {
		r->map = NULL;
		rc = -errno;
		goto err_close;
	}
	r->size = size;
	return 0;
err_close:
	close(r->fd);
	r->fd = -1;
	return rc;
}

void
shm_region_destroy(struct shm_region *r)
{
	if (r->map)
		munmap(r->map, r->size);
	if (r->fd >= 0)
		close(r->fd);
	r->map = NULL;
	r->fd = -1;
}

/* ---- control messages ------------------------------------------------------ */

int
shm_conn_send(struct shm_ctrlr *sc, void *msg, size_t len, uint16_t type, const int *fds, int nfds)
{
	struct nvl_shm_msg_hdr *h = msg;
	struct iovec iov = { .iov_base = msg, .iov_len = len };
	ssize_t n;

	h->magic = NVL_SHM_MAGIC;
	h->version = NVL_SHM_VERSION;
	h->type = type;
	h->len = (uint32_t)len;
	h->rsvd = 0;
	/* SOCK_SEQPACKET: the message goes whole or not at all */
	n = nvl_sock_send_fds(sc->fd, &iov, 1, fds, nfds > 0 ? (unsigned)nfds : 0, MSG_DONTWAIT);
	return n < 0 ? (int)n : 0;
}

/* ---- admin commands over the control socket --------------------------------- */

static void
shm_admin_done(struct nvl_nvme_req *nreq)
{
	struct shm_admin_req *a = container_of(nreq, struct shm_admin_req, nvme);
	struct shm_ctrlr *sc = a->sc;
	struct nvl_shm_admin_cpl m = { 0 };

	sc->admin_outstanding--;
	if (sc->state == C_ACTIVE) {
		m.cqe = nreq->cpl;
		m.cqe.sqid = 0;
		/* kept: what the command changed, then "being sent" (a restart
		 * sends it again: the host drops a completion it already had) */
		shm_keep_snapshot(sc);
		shm_keep_admin_set(sc, a->kslot, SHM_KS_POSTING);
		/* descriptors only travel with a successful create */
		if (shm_conn_send(sc, &m, sizeof(m), NVL_SHM_MSG_ADMIN_CPL, a->fds,
			      (nreq->cpl.status >> 1) == 0 ? a->nfds : 0) < 0)
			shm_conn_teardown(sc, "control socket write failed");
	}
	shm_keep_admin_set(sc, a->kslot, SHM_KS_FREE);
	nvl_shm_unmap_data(nreq);
	free(a);
	if (sc->state == C_CLOSING)
		shm_conn_try_free(sc);
}

void
shm_admin_complete(struct shm_admin_req *a, uint16_t status)
{
	nvl_nvme_req_complete(&a->nvme, status);
}

void
shm_admin_start(struct shm_ctrlr *sc, const struct nvl_nvme_cmd *sqe, int kslot, bool redo)
{
	struct shm_admin_req *a;
	uint16_t st;

	if (sc->admin_outstanding >= SHM_MAX_ADMIN_OUTSTANDING) {
		shm_conn_teardown(sc, "too many admin commands outstanding");
		return;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		shm_conn_teardown(sc, "out of memory");
		return;
	}
	a->sc = sc;
	a->kslot = kslot;
	a->redo = redo;
	memcpy(&a->nvme.cmd, sqe, sizeof(a->nvme.cmd));
	a->nvme.ctrlr = &sc->tc->nvme;
	a->nvme.qid = 0;
	a->nvme.done = shm_admin_done;
	a->nvme.iov = a->nvme.iov_inline;
	sc->admin_outstanding++;
	a->nvme.auth = sc->tc->auth; /* DH-HMAC-CHAP of the association (nvmf/auth.h) */
	if (a->nvme.cmd.opc == NVL_NVME_ADM_FABRICS &&
	    ((const struct nvl_nvmf_cmd *)&a->nvme.cmd)->fctype != NVL_NVMF_FCTYPE_AUTH_SEND &&
	    ((const struct nvl_nvmf_cmd *)&a->nvme.cmd)->fctype != NVL_NVMF_FCTYPE_AUTH_RECV) {
		/* no Connect/Property commands on the shm admin queue: the socket is
		 * the association and the controller is already enabled */
		nvl_nvme_req_complete(&a->nvme, NVL_NVME_DNR(NVL_NVME_SC_INVALID_OPCODE));
		return;
	}
	st = nvl_nvme_req_prepare(&a->nvme, shm_map_window, sc);
	if (st) {
		nvl_nvme_req_complete(&a->nvme, st);
		return;
	}
	nvl_nvme_execute(&a->nvme);
}

/* ---- connect ----------------------------------------------------------------- */

static void
shm_connect_refuse(struct shm_ctrlr *sc, uint16_t status, uint32_t reason, const char *why)
{
	struct nvl_shm_connect_resp r = { 0 };

	r.status = status;
	r.reason = reason;
	nvl_strlcpy(r.message, why, sizeof(r.message));
	shm_conn_send(sc, &r, sizeof(r), NVL_SHM_MSG_CONNECT_RESP, NULL, 0);
	shm_conn_teardown(sc, why);
}

static bool
shm_str_terminated(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

/* Bytes of data windows held by hostnqn's connections (every host's when
 * NULL). Reactor 0, which owns the connection list. */
static uint64_t
shm_windows_held(const char *hostnqn)
{
	const struct shm_ctrlr *sc;
	uint64_t sum = 0;

	TAILQ_FOREACH(sc, &g_shm_conns, link)
		if (hostnqn == NULL || strcmp(sc->window_host, hostnqn) == 0)
			sum += (sc->window.map ? sc->window.size : 0) + shm_window_pending_bytes(sc);
	return sum;
}

/* Queues (SQs + CQs) and vectors of hostnqn's connections (every host's when NULL). */
static void
shm_queues_held(const char *hostnqn, unsigned *queues, unsigned *vectors)
{
	const struct shm_ctrlr *sc;

	*queues = *vectors = 0;
	TAILQ_FOREACH(sc, &g_shm_conns, link) {
		if (hostnqn && strcmp(sc->window_host, hostnqn) != 0)
			continue;
		*queues += sc->ncq_alive + sc->nsq_alive;
		for (unsigned v = 0; v < SHM_MAX_VECTORS; v++)
			*vectors += sc->vectors[v] >= 0;
	}
}

int
shm_budget_check(const struct shm_ctrlr *sc, bool vector, char *why, size_t len)
{
	unsigned hq, hv, aq, av;

	shm_queues_held(sc->window_host, &hq, &hv);
	shm_queues_held(NULL, &aq, &av);
	if (!vector && hq + 1 > g_shm_opts.max_queues_per_host)
		snprintf(why, len, "host %.64s holds %u queues (max_queues_per_host)",
			 sc->window_host, hq);
	else if (!vector && aq + 1 > g_shm_opts.max_queues_total)
		snprintf(why, len, "the daemon's hosts hold %u queues (max_queues_total)", aq);
	else if (vector && hv + 1 > g_shm_opts.max_vectors_per_host)
		snprintf(why, len, "host %.64s holds %u interrupt vectors (max_vectors_per_host)",
			 sc->window_host, hv);
	else if (vector && av + 1 > g_shm_opts.max_vectors_total)
		snprintf(why, len, "the daemon's hosts hold %u interrupt vectors (max_vectors_total)",
			 av);
	else
		return 0;
	return -ENOSPC;
}

/* The window budgets (max_window_per_host_mib, max_window_total_mib): 0 when
 * win fits, else a refusal message in why. */
static int
shm_window_budget(const char *hostnqn, uint64_t win, char *why, size_t len)
{
	uint64_t host = shm_windows_held(hostnqn), all = shm_windows_held(NULL);

	if (host + win > g_shm_opts.max_window_per_host) {
		snprintf(why, len,
			 "data window of %llu MiB refused: host %.64s holds %llu MiB of its %llu MiB "
			 "budget (max_window_per_host_mib)",
			 (unsigned long long)(win >> 20), hostnqn, (unsigned long long)(host >> 20),
			 (unsigned long long)(g_shm_opts.max_window_per_host >> 20));
		return -ENOSPC;
	}
	if (all + win > g_shm_opts.max_window_total) {
		snprintf(why, len,
			 "data window of %llu MiB refused: the daemon's windows hold %llu MiB of "
			 "%llu MiB (max_window_total_mib)",
			 (unsigned long long)(win >> 20), (unsigned long long)(all >> 20),
			 (unsigned long long)(g_shm_opts.max_window_total >> 20));
		return -ENOSPC;
	}
	return 0;
}


/* What every shm controller tells the target at Connect (and at a restore):
 * the transport's limits, its queue ops, and who the kernel says connected. */
void
shm_connect_info_fill(struct shm_ctrlr *sc, struct nvl_connect_info *ci)
{
	ci->max_queue_entries = (uint16_t)g_shm_opts.max_queue_depth;
	ci->max_io_queues = (uint16_t)g_shm_opts.max_io_queues;
	ci->fabrics = false;
	ci->sgl = true;
	ci->transport = &g_shm_ops;
	ci->listener = &sc->listener;
	ci->queue_ops = &g_shm_queue_ops;
	ci->tctx = sc;
	ci->has_cred = sc->has_cred;
	ci->uid = sc->cred.uid;
	ci->gid = sc->cred.gid;
	ci->pid = (uint32_t)sc->cred.pid;
	ci->groups = sc->groups;
	ci->ngroups = sc->ngroups;
}

/* CONNECT and OPEN_FN alike, once ci names subsystem, host and controller id:
 * the window's size and budgets, the target's Connect, then the window. */
static void
shm_connect_go(struct shm_ctrlr *sc, struct nvl_connect_info *ci, uint64_t window_bytes)
{
	struct nvl_nvmf_ctrlr *tc;
	uint64_t win;
	uint16_t status;
	char what[32], why[200];
	int rc;

	win = window_bytes ? window_bytes : SHM_DEFAULT_WINDOW;
	win = NVL_ALIGN_UP(win, 2ULL << 20);
	if (win > g_shm_opts.max_window) {
		snprintf(why, sizeof(why), "data window of %llu MiB above the limit of %llu MiB",
			 (unsigned long long)(win >> 20),
			 (unsigned long long)(g_shm_opts.max_window >> 20));
		shm_connect_refuse(sc, NVL_NVME_SC_CONNECT_INVALID_PARAM, NVL_SHM_REFUSED_RESOURCES, why);
		return;
	}
	if (shm_window_budget(ci->hostnqn, win, why, sizeof(why)) < 0) {
		NVL_WARNLOG("shm: %s", why);
		shm_connect_refuse(sc, NVL_NVME_SC_CONNECT_INVALID_PARAM, NVL_SHM_REFUSED_RESOURCES, why);
		return;
	}
	why[0] = '\0';
	ci->why = why;
	ci->why_len = sizeof(why);
	rc = nvl_nvmf_connect(ci, &tc, &status);
	if (rc < 0) {
		if (why[0] == '\0')
			snprintf(why, sizeof(why), "%s",
				 rc == -ENOENT	 ? "no such subsystem"
				 : rc == -EACCES ? "host not allowed on this subsystem/listener"
						 : strerror(-rc));
		shm_connect_refuse(sc, status,
				   rc == -ENOENT			  ? NVL_SHM_REFUSED_NO_SUBSYSTEM
				   : rc == -EACCES || rc == -EADDRINUSE ? NVL_SHM_REFUSED_HOST
				   : rc == -EPERM			  ? NVL_SHM_REFUSED_CREDENTIALS
				   : rc == -EADDRNOTAVAIL ? NVL_SHM_REFUSED_NOT_LISTENING
									  : NVL_SHM_REFUSED_OTHER,
				   why);
		return;
	}
	sc->tc = tc;
	snprintf(what, sizeof(what), "c%u-window", tc->nvme.cntlid);
	nvl_strlcpy(sc->window_host, ci->hostnqn, sizeof(sc->window_host));
	/* reserving and pre-faulting the window takes ~0.7 s per GiB: not here,
	 * where RPC and every other host's admin commands wait (shm_window.c) */
	sc->state = C_WINDOW;
	tc->connecting = true; /* no keep-alive before the host has its answer */
	rc = shm_window_request(sc, what, win);
	if (rc < 0)
		shm_connect_window_ready(sc, rc, NULL);
}

const struct shm_fn_ops *g_shm_fn_ops;

void
shm_fn_register(const struct shm_fn_ops *ops)
{
	g_shm_fn_ops = ops;
}

static void
shm_do_connect(struct shm_ctrlr *sc, const struct nvl_shm_connect *m)
{
	struct nvl_connect_info ci = { 0 };

	if (!shm_str_terminated(m->subnqn, sizeof(m->subnqn)) ||
	    !shm_str_terminated(m->hostnqn, sizeof(m->hostnqn)) || nvl_nqn_validate(m->hostnqn) < 0) {
		shm_connect_refuse(sc, NVL_NVME_SC_CONNECT_INVALID_PARAM, NVL_SHM_REFUSED_INVALID,
			       "malformed NQN");
		return;
	}
	if (g_shm_fn_ops && g_shm_fn_ops->is_endpoint(sc->listener.traddr)) {
		shm_connect_refuse(sc, NVL_NVME_SC_CONNECT_INVALID_PARAM, NVL_SHM_REFUSED_INVALID,
				   "this socket is a function's endpoint: open it without a "
				   "Connect (OPEN_FN, URI nvme+fn://)");
		return;
	}
	ci.subnqn = m->subnqn;
	ci.hostnqn = m->hostnqn;
	ci.hostid = m->hostid;
	ci.kato_ms = m->kato_ms;
	ci.cntlid = 0xffff;
	shm_connect_info_fill(sc, &ci);
	shm_connect_go(sc, &ci, m->window_bytes);
}

/* A consumer opens a pre-provisioned function (docs/functions.md): the
 * function says which controller it gets. */
static void
shm_do_open_fn(struct shm_ctrlr *sc, const struct nvl_shm_open_fn *m)
{
	struct nvl_connect_info ci = { 0 };
	struct shm_fn_open *o;
	char why[200];
	int rc;

	o = calloc(1, sizeof(*o));
	if (o == NULL) {
		shm_connect_refuse(sc, NVL_NVME_SC_INTERNAL, NVL_SHM_REFUSED_RESOURCES,
				   "out of memory");
		return;
	}
	why[0] = '\0';
	rc = g_shm_fn_ops ? g_shm_fn_ops->open(sc->listener.traddr, sc, o, why, sizeof(why))
			  : -ENOENT;
	if (rc < 0) {
		free(o);
		if (rc == -ENOENT)
			shm_connect_refuse(sc, NVL_NVME_SC_CONNECT_INVALID_PARAM,
					   NVL_SHM_REFUSED_INVALID,
					   "no function on this socket (a plain listener: CONNECT)");
		else
			shm_connect_refuse(sc, NVL_NVME_SC_CONNECT_CTRL_BUSY,
					   rc == -EBUSY ? NVL_SHM_REFUSED_BUSY : NVL_SHM_REFUSED_OTHER,
					   why[0] ? why : strerror(-rc));
		return;
	}
	/* from here the function counts sc as its consumer until sc is freed */
	sc->fn = o->fn;
	sc->fn_gen = o->vector_gen;
	sc->suspended = o->suspended;
	for (unsigned v = 0; v < o->nvectors && v < SHM_MAX_VECTORS; v++)
		sc->vectors[v] = o->vectors[v];
	ci.subnqn = o->subnqn;
	ci.hostnqn = o->hostnqn;
	ci.hostid = o->hostid;
	ci.kato_ms = m->kato_ms;
	ci.cntlid = o->cntlid;
	ci.fixed_cntlid = true; /* exactly this cntlid: the function's */
	shm_connect_info_fill(sc, &ci);
	if (o->max_io_queues)
		ci.max_io_queues = (uint16_t)NVL_MIN(o->max_io_queues, ci.max_io_queues);
	ci.mdts = o->mdts;
	shm_connect_go(sc, &ci, m->window_bytes);
	free(o);
}

void
shm_fn_set_suspended(struct shm_ctrlr *sc, bool on)
{
	/* read by the SQ pollers (shm_sq_poll) on their reactors */
	__atomic_store_n(&sc->suspended, on, __ATOMIC_SEQ_CST);
	if (on)
		return;
	/* wake the SQs whose reactors sleep: commands may wait */
	for (unsigned q = 1; q <= SHM_MAX_QUEUES; q++) {
		uint64_t one = 1;

		if (sc->sqs[q] && sc->sqs[q]->kick_fd >= 0 &&
		    write(sc->sqs[q]->kick_fd, &one, sizeof(one)) < 0)
			NVL_DEBUGLOG(shm, "shm: kick of SQ %u: %s", q, strerror(errno));
	}
}

uint64_t
shm_fn_inflight(const struct shm_ctrlr *sc)
{
	uint64_t n = 0;

	for (unsigned q = 1; q <= SHM_MAX_QUEUES; q++)
		if (sc->sqs[q])
			n += NVL_STAT_GET(sc->sqs[q]->outstanding);
	return n;
}

uint32_t
shm_fn_consumer_pid(const struct shm_ctrlr *sc)
{
	return sc->has_cred ? (uint32_t)sc->cred.pid : 0;
}

unsigned
shm_fn_queues(const struct shm_ctrlr *sc)
{
	return sc->nsq_alive;
}

void
shm_connect_window_ready(struct shm_ctrlr *sc, int rc, struct shm_region *win)
{
	struct nvl_shm_connect_resp r = { 0 };
	struct nvl_nvmf_ctrlr *tc = sc->tc;
	char why[200];

	if (sc->state != C_WINDOW || tc == NULL) {
		/* the host went meanwhile: the window goes too */
		if (win)
			shm_region_destroy(win);
		return;
	}
	if (rc < 0) {
		snprintf(why, sizeof(why), "cannot allocate a %llu MiB data window: %s",
			 (unsigned long long)(win ? win->size : 0), strerror(-rc));
		NVL_ERRLOG("%s", why);
		if (win)
			shm_region_destroy(win);
		shm_connect_refuse(sc, NVL_NVME_SC_INTERNAL, NVL_SHM_REFUSED_RESOURCES, why);
		return;
	}
	sc->window = *win;
	tc->connecting = false;
	__atomic_store_n(&tc->nvme.last_keep_alive_ns, nvl_now_ns(), __ATOMIC_RELAXED);
	/* the manager has reset and enabled the controller for this host */
	tc->nvme.cc = NVL_NVME_CC_EN | (6u << 16) | (4u << 20);
	tc->nvme.csts = NVL_NVME_CSTS_RDY;
	sc->state = C_ACTIVE;
	/* kept for a restart, a function's consumer too (shm_keep.c) */
	shm_keep_connect(sc);
	nvl_timer_destroy(sc->connect_timer);
	sc->connect_timer = NULL;
	r.status = 0;
	r.cntlid = tc->nvme.cntlid;
	r.max_io_queues = tc->nvme.max_io_queues;
	r.max_queue_entries = (uint16_t)g_shm_opts.max_queue_depth;
	r.window_bytes = sc->window.size;
	r.max_vectors = SHM_MAX_VECTORS;
	if (sc->fn) {
		/* the function's vectors: those it holds from its PF's pool */
		r.max_vectors = 0;
		while (r.max_vectors < SHM_MAX_VECTORS && sc->vectors[r.max_vectors] >= 0)
			r.max_vectors++;
	}
	r.authreq = nvl_nvmf_auth_connect_flags(tc);
	if (shm_conn_send(sc, &r, sizeof(r), NVL_SHM_MSG_CONNECT_RESP, &sc->window.fd, 1) < 0)
		shm_conn_teardown(sc, "control socket write failed");
	else
		shm_keep_connected(sc);
}

/* ---- connection ----------------------------------------------------------------- */

static void
shm_conn_event_dispatch(struct shm_ctrlr *sc)
{
	union {
		struct nvl_shm_msg_hdr hdr;
		struct nvl_shm_connect connect;
		struct nvl_shm_open_fn open_fn;
		struct nvl_shm_admin_cmd admin;
		uint8_t raw[NVL_SHM_MAX_MSG];
	} msg;

	for (int budget = 32; budget > 0 && sc->state != C_CLOSING; budget--) {
		struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
		unsigned nfds;
		int mflags = 0, kslot = -1;
		/* hosts send no descriptors: any that come along (also with a
		 * 0-byte message) are closed and reported as MSG_CTRUNC.
		 * Kept controllers look at an admin command before taking it off
		 * the socket, and take it once its slot says "receiving": a worker
		 * killed in between finds it either still queued or in the slot. */
		ssize_t n = nvl_sock_recv_fds(sc->fd, &iov, 1, NULL, 0, &nfds,
					      MSG_DONTWAIT | (sc->keep ? MSG_PEEK : 0), &mflags);

		if (sc->keep && n > 0) {
			if (sc->state == C_ACTIVE && n == sizeof(msg.admin) &&
			    msg.hdr.type == NVL_SHM_MSG_ADMIN_CMD && !(mflags & (MSG_TRUNC | MSG_CTRUNC)))
				kslot = shm_keep_admin_begin(sc, &msg.admin.sqe);
			iov.iov_base = &msg;
			iov.iov_len = sizeof(msg);
			mflags = 0;
			n = nvl_sock_recv_fds(sc->fd, &iov, 1, NULL, 0, &nfds, MSG_DONTWAIT, &mflags);
		}

		if (n < 0) {
			if (n == -EAGAIN)
				return;
			shm_conn_teardown(sc, "control socket error");
			return;
		}
		if (n == 0) {
			shm_conn_teardown(sc, "host closed its control socket");
			return;
		}
		if ((mflags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n < sizeof(msg.hdr) ||
		    msg.hdr.magic != NVL_SHM_MAGIC || msg.hdr.version != NVL_SHM_VERSION ||
		    msg.hdr.len != (uint32_t)n) {
			shm_conn_teardown(sc, "malformed control message");
			return;
		}
		switch (msg.hdr.type) {
		case NVL_SHM_MSG_CONNECT:
			if (sc->state != C_CONNECTING || n != sizeof(msg.connect)) {
				shm_conn_teardown(sc, "unexpected CONNECT");
				return;
			}
			shm_do_connect(sc, &msg.connect);
			break;
		case NVL_SHM_MSG_OPEN_FN:
			if (sc->state != C_CONNECTING || n != sizeof(msg.open_fn)) {
				shm_conn_teardown(sc, "unexpected OPEN_FN");
				return;
			}
			shm_do_open_fn(sc, &msg.open_fn);
			break;
		case NVL_SHM_MSG_ADMIN_CMD:
			if (sc->state != C_ACTIVE || n != sizeof(msg.admin)) {
				shm_conn_teardown(sc, "unexpected admin command");
				return;
			}
			shm_keep_admin_set(sc, kslot, SHM_KS_ACTIVE);
			shm_admin_start(sc, &msg.admin.sqe, kslot, false);
			break;
		case NVL_SHM_MSG_DISCONNECT:
			shm_conn_teardown(sc, "host disconnected");
			return;
		default:
			shm_conn_teardown(sc, "unknown control message");
			return;
		}
	}
}

void
shm_conn_event(void *arg, uint32_t events)
{
	struct shm_ctrlr *sc = arg;

	(void)events;
	/* A teardown in there (refused CONNECT, failed reply, ...) must not free
	 * sc while the receive loop still looks at it: free it here instead. */
	sc->in_event = true;
	shm_conn_event_dispatch(sc);
	sc->in_event = false;
	if (sc->state == C_CLOSING)
		shm_conn_try_free(sc);
}

static void
shm_conn_connect_timeout(void *arg)
{
	struct shm_ctrlr *sc = arg;

	/* the fired one-shot timer is freed with the connection */
	if (sc->state == C_CONNECTING)
		shm_conn_teardown(sc, "no CONNECT within 10 s");
}

static void
shm_conn_free(void *arg)
{
	struct shm_ctrlr *sc = arg;

	shm_window_forget(sc);
	shm_region_destroy(&sc->window);
	/* a function's vectors are its pool's: they stay open */
	for (unsigned v = 0; v < SHM_MAX_VECTORS && sc->fn == NULL; v++)
		if (sc->vectors[v] >= 0)
			close(sc->vectors[v]);
	if (sc->fn && g_shm_fn_ops)
		g_shm_fn_ops->closed(sc->fn, sc);
	nvl_timer_destroy(sc->connect_timer);
	shm_keep_free(sc);
	close(sc->fd);
	free(sc->groups);
	TAILQ_REMOVE(&g_shm_conns, sc, link);
	g_shm_nconns--;
	free(sc);
}

void
shm_conn_try_free(struct shm_ctrlr *sc)
{
	/* completions below can call back in here: only the outermost call acts */
	if (sc->state != C_CLOSING || sc->in_try_free || sc->in_event)
		return;
	sc->in_try_free = true;
	/* 1. submission queues (they drain their in-flight commands first) */
	for (unsigned q = 1; q <= SHM_MAX_QUEUES; q++)
		if (sc->sqs[q])
			shm_sq_delete(sc, sc->sqs[q], NULL);
	if (sc->nsq_alive)
		goto out;
	/* 2. completion queues */
	for (unsigned q = 1; q <= SHM_MAX_QUEUES; q++)
		if (sc->cqs[q])
			shm_cq_delete(sc, sc->cqs[q]);
	if (sc->ncq_alive)
		goto out;
	/* 3. the controller (finishes held AERs, which come back through shm_admin_done) */
	nvl_nvmf_ctrlr_release_once(&sc->tc);
	if (sc->admin_outstanding || sc->free_scheduled)
		goto out;
	/* 4. memory and descriptors, from the loop: handlers up the stack may
	 * still hold sc (a CONNECT refused inside the receive loop, ...) */
	sc->free_scheduled = true;
	if (nvl_reactor_msg(nvl_reactor_self(), shm_conn_free, sc) < 0)
		NVL_ERRLOG("shm: cannot schedule connection release; leaking it");
out:
	sc->in_try_free = false;
}

void
shm_conn_teardown(struct shm_ctrlr *sc, const char *why)
{
	if (sc->state == C_CLOSING)
		return;
	if (sc->tc)
		NVL_NOTICELOG("shm: controller %u of %s: %s", sc->tc->nvme.cntlid,
			      sc->tc->nvme.hostnqn, why);
	else
		NVL_DEBUGLOG(shm, "shm: connection closed before connect: %s", why);
	sc->state = C_CLOSING;
	shm_keep_teardown(sc);
	if (sc->tc)
		sc->tc->state = NVL_TCTRLR_DISCONNECTING;
	/* wake each CQ's reactor to drop completions that wait for CQ space
	 * (a cq is freed by a later message from here, so it outlives this one) */
	for (unsigned q = 1; q <= SHM_MAX_QUEUES; q++)
		if (sc->cqs[q])
			nvl_reactor_msg(sc->cqs[q]->reactor, shm_cq_host_gone, sc->cqs[q]);
	nvl_fd_del(sc->fdh);
	sc->fdh = NULL;
	shutdown(sc->fd, SHUT_RDWR);
	shm_conn_try_free(sc);
}

/* Who is on the other end: the kernel's record from the peer's connect(2)
 * (SO_PEERCRED), which the peer cannot forge, and its supplementary groups
 * (SO_PEERGROUPS). Without them the connection has no credentials and host
 * NQNs bound to a uid/gid are refused to it. */
void
shm_conn_peer_cred(struct shm_ctrlr *sc)
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

/* A host connected to the listener of a (reactor 0). */
static void
shm_accept(const struct nvl_listen_addr *a, int fd)
{
	struct shm_ctrlr *sc;

	if (g_shm_nconns >= SHM_MAX_CONNECTIONS) {
		NVL_WARNLOG("shm: refusing a host beyond %d connections", SHM_MAX_CONNECTIONS);
		close(fd);
		return;
	}
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL) {
		close(fd);
		return;
	}
	sc->fd = fd;
	sc->listener = *a;
	shm_conn_peer_cred(sc);
	sc->keep_fd = -1;
	sc->window.fd = -1;
	for (unsigned v = 0; v < SHM_MAX_VECTORS; v++)
		sc->vectors[v] = -1;
	sc->fdh = nvl_fd_add(fd, EPOLLIN, shm_conn_event, sc);
	sc->connect_timer = nvl_timer_create(shm_conn_connect_timeout, sc, SHM_CONNECT_TIMEOUT_US, 0);
	if (sc->fdh == NULL || sc->connect_timer == NULL) {
		nvl_fd_del(sc->fdh);
		nvl_timer_destroy(sc->connect_timer);
		close(fd);
		free(sc);
		return;
	}
	TAILQ_INSERT_TAIL(&g_shm_conns, sc, link);
	g_shm_nconns++;
}

/* ---- transport ops ---------------------------------------------------------------- */

static int
shm_listen(const struct nvl_listen_addr *a, int *fd)
{
	int rc;

	/* group members may connect: access is decided per host NQN at Connect */
	rc = nvl_sock_listen_unix(a->traddr, SOCK_SEQPACKET, 0660, 64, fd);
	if (rc < 0)
		return rc;
	NVL_NOTICELOG("shm: listening on %s", a->traddr);
	return 0;
}

static void
shm_stop_listen(const struct nvl_listen_addr *a)
{
	unlink(a->traddr);
}

static void
shm_ctrlr_disconnect(struct nvl_nvmf_ctrlr *tc)
{
	shm_conn_teardown(tc->tctx, "disconnected by the target");
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
		g_shm_opts.max_window = (uint64_t)mib << 20;
	}
	if ((v = json_object_get(opts, "max_window_per_host_mib")) != NULL) {
		json_int_t mib = json_integer_value(v);

		if (mib < 2 || mib > 1048576) {
			snprintf(err, errlen, "max_window_per_host_mib must be 2..1048576");
			return -EINVAL;
		}
		g_shm_opts.max_window_per_host = (uint64_t)mib << 20;
	}
	if ((v = json_object_get(opts, "max_window_total_mib")) != NULL) {
		json_int_t mib = json_integer_value(v);

		if (mib < 2 || mib > 1048576) {
			snprintf(err, errlen, "max_window_total_mib must be 2..1048576");
			return -EINVAL;
		}
		g_shm_opts.max_window_total = (uint64_t)mib << 20;
	}
	{
		static const struct {
			const char *name;
			uint32_t *field;
		} budgets[] = {
			{ "max_queues_per_host", &g_shm_opts.max_queues_per_host },
			{ "max_queues_total", &g_shm_opts.max_queues_total },
			{ "max_vectors_per_host", &g_shm_opts.max_vectors_per_host },
			{ "max_vectors_total", &g_shm_opts.max_vectors_total },
		};

		for (size_t i = 0; i < NVL_ARRAY_SIZE(budgets); i++) {
			json_int_t n;

			if ((v = json_object_get(opts, budgets[i].name)) == NULL)
				continue;
			n = json_integer_value(v);
			if (!json_is_integer(v) || n < 0 || n > 1048576) {
				snprintf(err, errlen, "%s must be 0..1048576", budgets[i].name);
				return -EINVAL;
			}
			*budgets[i].field = (uint32_t)n;
		}
	}
	if ((v = json_object_get(opts, "max_queue_depth")) != NULL) {
		json_int_t d = json_integer_value(v);

		if (d < 2 || d > 4096) {
			snprintf(err, errlen, "max_queue_depth must be 2..4096");
			return -EINVAL;
		}
		g_shm_opts.max_queue_depth = (uint32_t)d;
	}
	if ((v = json_object_get(opts, "max_io_qpairs_per_ctrlr")) != NULL) {
		json_int_t q = json_integer_value(v);

		if (q < 1 || q > SHM_MAX_QUEUES) {
			snprintf(err, errlen, "max_io_qpairs_per_ctrlr must be 1..%d", SHM_MAX_QUEUES);
			return -EINVAL;
		}
		g_shm_opts.max_io_queues = (uint32_t)q;
	}
	return 0;
}

static json_t *
shm_dump_opts(void)
{
	return json_pack("{s:I, s:i, s:i, s:I, s:I, s:i, s:i, s:i, s:i}", "max_window_mib",
			 (json_int_t)(g_shm_opts.max_window >> 20), "max_queue_depth",
			 (int)g_shm_opts.max_queue_depth, "max_io_qpairs_per_ctrlr",
			 (int)g_shm_opts.max_io_queues, "max_window_per_host_mib",
			 (json_int_t)(g_shm_opts.max_window_per_host >> 20), "max_window_total_mib",
			 (json_int_t)(g_shm_opts.max_window_total >> 20), "max_queues_per_host",
			 (int)g_shm_opts.max_queues_per_host, "max_queues_total",
			 (int)g_shm_opts.max_queues_total, "max_vectors_per_host",
			 (int)g_shm_opts.max_vectors_per_host, "max_vectors_total",
			 (int)g_shm_opts.max_vectors_total);
}

static bool
shm_drained(void *arg)
{
	(void)arg;
	return TAILQ_EMPTY(&g_shm_conns);
}

static void (*g_shm_fini_done)(void);

static void
shm_fini_done(void)
{
	shm_window_stop();
	g_shm_fini_done();
}

static void
shm_fini(void (*done)(void))
{
	struct shm_ctrlr *sc, *tmp;

	/* the listeners went with the subsystems (nvl_nvmf_fini) */
	TAILQ_FOREACH_SAFE(sc, &g_shm_conns, link, tmp)
		shm_conn_teardown(sc, "daemon shutting down");
	g_shm_fini_done = done;
	if (nvl_reactor_drain_fini(shm_drained, NULL, shm_fini_done, 1000) < 0)
		shm_fini_done();
}

bool g_shm_quiesced;

/* an upgrade hands over next: no SQ fetches again in this worker (its
 * controllers stay in the store for the next one) */
static void
shm_quiesce(void)
{
	__atomic_store_n(&g_shm_quiesced, true, __ATOMIC_SEQ_CST);
}

struct nvl_transport_ops g_shm_ops = {
	.name = "SHM",
	.nvmf_trtype = 0,  /* not a standard NVMe-oF transport: not in discovery logs */
	.listen = shm_listen,
	.accept = shm_accept,
	.stop_listen = shm_stop_listen,
	.ctrlr_disconnect = shm_ctrlr_disconnect,
	.ctrlr_qpairs = shm_ctrlr_qpairs,
	.configure = shm_configure,
	.dump_opts = shm_dump_opts,
	.fini = shm_fini,
	.restore = shm_keep_restore_all,
	.restore_ahead = shm_keep_restore_ahead,
	.quiesce = shm_quiesce,
};
NVL_TRANSPORT_REGISTER(shm, &g_shm_ops)
