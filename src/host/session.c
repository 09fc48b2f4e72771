/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reconnecting session on one namespace (see session.h for the contract),
 * the host core's face for `nvlend attach`.
 *
 * The core does the reconnecting: one controller with a policy of
 * immediate first attempt, then 100 ms doubling to 1 s between attempts,
 * fast_io_fail at the reconnect timeout (the session's "failed" state:
 * I/O fails, attempts go on once a second) and no loss timeout; its queue
 * pairs keep and resubmit the idempotent commands in flight. This file
 * adds byte-addressed requests split into commands, the namespace identity
 * check after a reconnect (a changed namespace ends the session: "gone"),
 * and the waiting of threads that have nothing else to do.
 *
 * Threads and locks: s->lock serializes every call into the core's
 * controller side; whichever thread needs progress (the monitor's
 * host_session_check, a queue thread whose requests wait for the
 * controller) takes it, polls the core and waits on its fds with the lock
 * released (at most 100 ms at a time). A queue (and its core queue pair)
 * belongs to one thread and takes no lock on its I/O path. The core wakes
 * a queue's thread through the queue's eventfd (qpair kick) when its
 * connection went away or a new one is offered.
 */
#include "host/session.h"
#include "host/host.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

NVL_LOG_DECLARE_COMPONENT(host);

#define SESSION_BACKOFF_MIN_MS 100
#define SESSION_BACKOFF_MAX_MS 1000
#define SESSION_DEFAULT_TIMEOUT_MS 60000
#define SESSION_KATO_MS 6000               /* notice a dead target within seconds, idle too */
#define SESSION_ADMIN_TIMEOUT_MS 5000
#define SESSION_SLICE_MS 100               /* longest wait before re-checking */
#define SESSION_CLOSE_MS 2000
#define SESSION_WZ_MAX_BLOCKS 65536u       /* NLB is 16 bits, 0's based */
#define SESSION_DSM_MAX_BLOCKS 0x40000000u /* one range per command, bounded */
#define SESSION_MAX_FDS (HOST_MAX_QUEUES + 2)

struct host_session {
	struct nvl_uri uri;
	char hostnqn[NVL_NVME_NQN_LEN];
	struct host_session_opts opts;
	uint32_t nsid;
	struct nvl_ns_info ns;
	uint32_t max_xfer;

	pthread_mutex_t lock;          /* the core's controller side */
	struct host_ctrlr *c;
	bool shutdown;                 /* atomic: host_session_shutdown() was called */
	bool shutdown_done;            /* the controller was given up for it */
	bool gone;                     /* atomic: the namespace changed, or shut down */
	uint64_t reconnects;           /* atomic */
};

struct host_session_queue {
	struct host_session *s;
	struct host_qpair *qp;
	uint32_t depth;
	int wake_fd;                   /* eventfd the core kicks */
	struct host_session_io_list pending;
	struct host_session_io_list inflight;
	uint32_t outstanding;
	uint32_t completed;
};

/* ---- helpers ---------------------------------------------------------------------------- */

/* The one NVMe status -> errno mapping of the session. */
static int
session_errno_from_status(uint16_t st)
{
	switch (st) {
	case NVL_NVME_SC_SUCCESS:
		return 0;
	case NVL_NVME_SC_NS_WRITE_PROTECTED:
		return -EROFS;
	case NVL_NVME_SC_LBA_OUT_OF_RANGE:
		return -EINVAL;
	case NVL_NVME_SC_CAPACITY_EXCEEDED:
		return -ENOSPC;
	case NVL_NVME_SC_RESERVATION_CONFLICT:
		return -EACCES;
	case NVL_NVME_SC_INVALID_OPCODE:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

static bool
session_shut(const struct host_session *s)
{
	return __atomic_load_n(&s->shutdown, __ATOMIC_ACQUIRE);
}

/* What a request that cannot reach the controller fails with. */
static int
session_fail_errno(const struct host_session *s)
{
	return session_shut(s) ? -ESHUTDOWN : -EIO;
}

static bool
ns_same(const struct nvl_ns_info *a, const struct nvl_ns_info *b)
{
	static const uint8_t zero[16];

	if (a->block_size != b->block_size || a->num_blocks != b->num_blocks)
		return false;
	if (memcmp(a->nguid, zero, 16) && memcmp(b->nguid, zero, 16) &&
	    memcmp(a->nguid, b->nguid, 16))
		return false;
	if (memcmp(a->uuid, zero, 16) && memcmp(b->uuid, zero, 16) && memcmp(a->uuid, b->uuid, 16))
		return false;
	return true;
}

/* ---- the core's owner ------------------------------------------------------------------- */

/* s->lock held (the core calls it from host_ctrlr_poll). */
static int
session_event(void *arg, struct host_ctrlr *c, enum host_event ev)
{
	struct host_session *s = arg;
	const struct nvl_ns_info *info;

	switch (ev) {
	case HOST_EV_RECONNECTED:
		/* the same namespace, or nothing: a restarted target keeps its identity */
		info = host_ctrlr_ns_find(c, s->nsid);
		if (info == NULL) {
			host_ctrlr_set_error(c, "namespace %u: not active", s->nsid);
			return -EAGAIN;
		}
		if (!ns_same(&s->ns, info)) {
			host_ctrlr_set_error(c, "the namespace changed identity (size, block size or "
						"NGUID/UUID) while disconnected: not resuming");
			__atomic_store_n(&s->gone, true, __ATOMIC_RELAXED);
			return -ESTALE;
		}
		return 0;
	case HOST_EV_READY:
		__atomic_add_fetch(&s->reconnects, 1, __ATOMIC_RELAXED);
		return 0;
	case HOST_EV_GIVEN_UP:
		__atomic_store_n(&s->gone, true, __ATOMIC_RELAXED);
		return 0;
	default:
		return 0;
	}
}

/* Any thread: a queue's connection changed; wake its thread. */
static void
session_qpair_kick(void *arg, struct host_qpair *qp)
{
	struct host_session_queue *q = host_qpair_ctx(qp);
	uint64_t one = 1;

	(void)arg;
	if (q)
		(void)!write(q->wake_fd, &one, sizeof(one));
}

/* s->lock held: one round of the controller (and the shutdown request). */
static void
session_poll_locked(struct host_session *s)
{
	if (session_shut(s) && !s->shutdown_done) {
		s->shutdown_done = true;
		host_ctrlr_give_up(s->c, "shut down");
	}
	host_ctrlr_poll(s->c, nvl_now_ns());
}

/*
 * Drive the controller until stop(s, arg) or until_ns: poll under the lock,
 * wait on its fds without it (several threads may; each wake-up is
 * harmless).
 */
static void
session_drive(struct host_session *s, uint64_t until_ns,
	      bool (*stop)(struct host_session *s, void *arg), void *arg)
{
	struct pollfd pfds[SESSION_MAX_FDS];

	for (;;) {
		uint64_t now, next;
		int n;

		pthread_mutex_lock(&s->lock);
		session_poll_locked(s);
		if (stop(s, arg) || (now = nvl_now_ns()) >= until_ns) {
			pthread_mutex_unlock(&s->lock);
			return;
		}
		next = NVL_MIN(until_ns, host_ctrlr_next_ns(s->c));
		n = host_ctrlr_fds(s->c, pfds, SESSION_MAX_FDS);
		pthread_mutex_unlock(&s->lock);
		(void)poll(pfds, (nfds_t)n,
			   next <= now ? 0
				       : (int)NVL_MIN((next - now + 999999) / 1000000,
						      (uint64_t)SESSION_SLICE_MS));
	}
}

static bool
stop_connected(struct host_session *s, void *arg)
{
	(void)arg;
	return host_ctrlr_state(s->c) != HOST_CTRLR_CONNECTING;
}

static bool
stop_closed(struct host_session *s, void *arg)
{
	(void)arg;
	return host_ctrlr_state(s->c) == HOST_CTRLR_CLOSED;
}

static bool
stop_attempt_over(struct host_session *s, void *arg)
{
	(void)arg;
	return host_ctrlr_state(s->c) != HOST_CTRLR_RECONNECTING;
}

/* ---- session ---------------------------------------------------------------------------- */

int
host_session_create(const char *uri, const struct host_session_opts *opts,
		    struct host_session **out)
{
	struct host_ctrlr_opts co;
	const struct nvl_ns_info *info;
	struct host_session *s;
	uint8_t hostid[16];
	int rc;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	if (opts)
		s->opts = *opts;
	if (s->opts.reconnect_timeout_ms == 0)
		s->opts.reconnect_timeout_ms = SESSION_DEFAULT_TIMEOUT_MS;
	rc = nvl_uri_parse(uri, &s->uri);
	if (rc < 0)
		goto err_early;
	if (s->opts.hostnqn) {
		rc = nvl_strlcpy(s->hostnqn, s->opts.hostnqn, sizeof(s->hostnqn));
		if (rc < 0)
			goto err_early;
		host_hostid_from_nqn(s->hostnqn, hostid);
	} else {
		host_default_hostid(hostid);
		host_hostnqn_from_id(hostid, s->hostnqn, sizeof(s->hostnqn));
	}
	s->opts.hostnqn = NULL; /* the caller's string need not outlive the call */

	host_ctrlr_opts_default(&co);
	co.uri = &s->uri;
	co.hostnqn = s->hostnqn;
	memcpy(co.hostid, hostid, 16);
	co.kato_ms = SESSION_KATO_MS;
	co.send_keepalive = true;
	co.connect_timeout_ms = SESSION_ADMIN_TIMEOUT_MS;
	co.admin_timeout_ms = SESSION_ADMIN_TIMEOUT_MS;
	if (s->opts.window_bytes)
		co.window_bytes = s->opts.window_bytes;
	host_digests_from_env(&co);
	{
		char why[256];

		rc = host_dhchap_from_env(&co, why, sizeof(why));
		if (rc < 0) {
			host_error_note(rc, why);
			free(s);
			return rc;
		}
	}
	co.scan_ns = true;
	co.ctrlr_loss_ms = -1;
	co.reconnect_at_once = true;
	co.reconnect_delay_ms = SESSION_BACKOFF_MIN_MS;
	co.reconnect_delay_max_ms = SESSION_BACKOFF_MAX_MS;
	co.fast_io_fail_ms = s->opts.reconnect_timeout_ms;
	co.event = session_event;
	co.qpair_kick = session_qpair_kick;
	co.arg = s;
	pthread_mutex_init(&s->lock, NULL);
	rc = host_ctrlr_create(&co, &s->c);
	nvl_dhchap_key_wipe(&co.dhchap_key); /* the controller has its copy */
	nvl_dhchap_key_wipe(&co.dhchap_ctrlr_key);
	if (rc < 0)
		goto err_noted;
	session_drive(s, UINT64_MAX, stop_connected, NULL); /* the core's timeout ends it */
	if (host_ctrlr_state(s->c) != HOST_CTRLR_READY) {
		rc = host_ctrlr_errno(s->c) ? host_ctrlr_errno(s->c) : -EIO;
		goto err_ctrlr;
	}
	s->nsid = s->opts.nsid ? s->opts.nsid
			       : (s->uri.nsid ? s->uri.nsid : host_ctrlr_first_nsid(s->c));
	info = s->nsid ? host_ctrlr_ns_find(s->c, s->nsid) : NULL;
	if (info == NULL) {
		host_ctrlr_set_error(s->c, "namespace %u: not active", s->nsid);
		rc = -ENXIO;
		goto err_ctrlr;
	}
	s->ns = *info;
	s->max_xfer = NVL_ALIGN_DOWN(host_ctrlr_max_xfer(s->c), info->block_size);
	if (info->block_size == 0 || s->max_xfer == 0) {
		rc = -EINVAL;
		goto err_ctrlr;
	}
	if (s->ns.read_only)
		s->opts.readonly = true;
	char ustr[640];

	NVL_VERBOSELOG(host, "session %s: namespace %u, %llu blocks of %u, reconnect timeout %u ms",
		       host_ctrlr_uri_str(s->c, ustr, sizeof(ustr)), s->nsid, (unsigned long long)s->ns.num_blocks,
		       s->ns.block_size, s->opts.reconnect_timeout_ms);
	*out = s;
	return 0;
err_ctrlr:
	host_error_note(rc, host_ctrlr_last_error(s->c));
	host_ctrlr_destroy(s->c);
	goto err_lock;
err_noted:
	host_error_note(rc, NULL);
err_lock:
	pthread_mutex_destroy(&s->lock);
	free(s);
	return rc;
err_early:
	host_error_note(rc, NULL);
	free(s);
	return rc;
}

void
host_session_destroy(struct host_session *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	host_ctrlr_close(s->c);
	pthread_mutex_unlock(&s->lock);
	session_drive(s, nvl_now_ns() + SESSION_CLOSE_MS * 1000000ULL, stop_closed, NULL);
	host_ctrlr_destroy(s->c);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void
host_session_shutdown(struct host_session *s)
{
	/* applied by the next thread that polls the controller */
	__atomic_store_n(&s->shutdown, true, __ATOMIC_RELEASE);
	__atomic_store_n(&s->gone, true, __ATOMIC_RELAXED);
}

const struct nvl_ns_info *
host_session_ns(const struct host_session *s)
{
	return &s->ns;
}

uint64_t
host_session_size(const struct host_session *s)
{
	return s->ns.num_blocks * s->ns.block_size;
}

uint32_t
host_session_max_xfer(const struct host_session *s)
{
	return s->max_xfer;
}

bool
host_session_readonly(const struct host_session *s)
{
	return s->opts.readonly;
}

enum host_session_state
host_session_state(const struct host_session *s)
{
	if (__atomic_load_n(&s->gone, __ATOMIC_RELAXED))
		return HOST_SESSION_GONE;
	switch (host_ctrlr_state(s->c)) {
	case HOST_CTRLR_CONNECTING:
	case HOST_CTRLR_READY:
		return HOST_SESSION_CONNECTED;
	case HOST_CTRLR_WAIT_RECONNECT:
	case HOST_CTRLR_RECONNECTING:
		return host_ctrlr_fail_mode(s->c) == HOST_FAIL_NONE ? HOST_SESSION_RECONNECTING
								    : HOST_SESSION_FAILED;
	default:
		return HOST_SESSION_GONE;
	}
}

const char *
host_session_state_str(enum host_session_state st)
{
	switch (st) {
	case HOST_SESSION_CONNECTED: return "attached";
	case HOST_SESSION_RECONNECTING: return "reconnecting";
	case HOST_SESSION_FAILED: return "failed";
	case HOST_SESSION_GONE: return "gone";
	}
	return "?";
}

uint64_t
host_session_reconnects(const struct host_session *s)
{
	return __atomic_load_n(&s->reconnects, __ATOMIC_RELAXED);
}

void
host_session_last_error(struct host_session *s, char *buf, size_t len)
{
	pthread_mutex_lock(&s->lock);
	nvl_strlcpy(buf, host_ctrlr_last_error(s->c), len);
	pthread_mutex_unlock(&s->lock);
}

enum host_session_state
host_session_check(struct host_session *s)
{
	/* keep-alive, loss detection and the reconnect schedule live in the core:
	 * one round, and if an attempt is under way, its end (bounded by the
	 * core's connect timeout) so an idle session comes back promptly */
	session_drive(s, nvl_now_ns(), stop_attempt_over, NULL);
	if (host_ctrlr_state(s->c) == HOST_CTRLR_RECONNECTING)
		session_drive(s, nvl_now_ns() + SESSION_ADMIN_TIMEOUT_MS * 1000000ULL,
			      stop_attempt_over, NULL);
	return host_session_state(s);
}

/* ---- queues ------------------------------------------------------------------------------ */

enum { IO_NOWHERE = 0, IO_PENDING, IO_INFLIGHT };

static uint64_t
io_end(const struct host_session_io *io)
{
	return io->op == HOST_SESSION_FLUSH ? 1 : io->len;
}

static void
io_unlink(struct host_session_queue *q, struct host_session_io *io)
{
	if (io->where == IO_PENDING)
		TAILQ_REMOVE(&q->pending, io, link);
	else if (io->where == IO_INFLIGHT)
		TAILQ_REMOVE(&q->inflight, io, link);
	io->where = IO_NOWHERE;
}

static void
io_finish(struct host_session_queue *q, struct host_session_io *io, int status)
{
	io_unlink(q, io);
	q->outstanding--;
	q->completed++;
	io->cb(io, status);
}

static void
chunk_done(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct host_session_io *io = arg;
	struct host_session_queue *q = io->q;
	uint16_t st = nvl_cpl_status(cpl);

	io->chunks--;
	if (st && io->status == 0)
		/* a path error reaching us means the core gave the command up */
		io->status = host_status_is_path_error(st) ? session_fail_errno(q->s)
							   : session_errno_from_status(st);
	if (io->chunks == 0 && io->next == io_end(io) && io->where == IO_INFLIGHT)
		io_finish(q, io, io->status);
}

static int
submit_chunk(struct host_session_queue *q, struct host_session_io *io)
{
	struct host_session *s = q->s;
	uint32_t bs = s->ns.block_size;
	uint64_t left = io->len - io->next, n = 0;
	uint64_t slba = (io->offset + io->next) / bs;
	struct nvl_nvme_cmd cmd = { 0 };
	struct nvl_nvme_dsm_range r;
	struct iovec iov = { 0 };
	enum nvl_xfer_dir dir = NVL_XFER_NONE;
	uint32_t len = 0;
	int rc;

	cmd.nsid = s->nsid;
	switch (io->op) {
	case HOST_SESSION_READ:
	case HOST_SESSION_WRITE:
		n = NVL_MIN(left, (uint64_t)s->max_xfer);
		cmd.opc = io->op == HOST_SESSION_READ ? NVL_NVME_IO_READ : NVL_NVME_IO_WRITE;
		cmd.cdw10 = (uint32_t)slba;
		cmd.cdw11 = (uint32_t)(slba >> 32);
		cmd.cdw12 = (uint32_t)(n / bs - 1) |
			    ((io->flags & HOST_SESSION_F_FUA) ? NVL_NVME_RW_FUA : 0);
		iov.iov_base = (uint8_t *)io->buf + io->next;
		iov.iov_len = (size_t)n;
		len = (uint32_t)n;
		dir = io->op == HOST_SESSION_READ ? NVL_XFER_FROM_CTRLR : NVL_XFER_TO_CTRLR;
		break;
	case HOST_SESSION_WRITE_ZEROES:
		n = NVL_MIN(left, (uint64_t)SESSION_WZ_MAX_BLOCKS * bs);
		cmd.opc = NVL_NVME_IO_WRITE_ZEROES;
		cmd.cdw10 = (uint32_t)slba;
		cmd.cdw11 = (uint32_t)(slba >> 32);
		cmd.cdw12 = (uint32_t)(n / bs - 1) |
			    ((io->flags & HOST_SESSION_F_DEALLOC) ? NVL_NVME_WZ_DEAC : 0) |
			    ((io->flags & HOST_SESSION_F_FUA) ? NVL_NVME_RW_FUA : 0);
		break;
	case HOST_SESSION_DISCARD:
		/* the range is copied (bounced into the window, or kept) by the core */
		n = NVL_MIN(left, (uint64_t)SESSION_DSM_MAX_BLOCKS * bs);
		r.attributes = 0;
		r.slba = slba;
		r.nlb = (uint32_t)(n / bs);
		cmd.opc = NVL_NVME_IO_DSM;
		cmd.cdw10 = 0;
		cmd.cdw11 = NVL_NVME_DSM_AD;
		iov.iov_base = &r;
		iov.iov_len = sizeof(r);
		len = sizeof(r);
		dir = NVL_XFER_TO_CTRLR;
		break;
	case HOST_SESSION_FLUSH:
		n = 1;
		cmd.opc = NVL_NVME_IO_FLUSH;
		break;
	default:
		return -EINVAL;
	}
	rc = host_qpair_submit(q->qp, &cmd, &iov, len ? 1 : 0, len, dir, chunk_done, io);
	if (rc < 0)
		return rc;
	io->chunks++;
	io->next += n;
	return 0;
}

/* Submit as much of the pending list as the queue pair takes. */
static void
queue_kick(struct host_session_queue *q)
{
	struct host_session_io *io;

	while (q->qp && (io = TAILQ_FIRST(&q->pending)) != NULL) {
		int rc = submit_chunk(q, io);

		if (rc == -EAGAIN || rc == -ENOMEM)
			return; /* queue or data window full: after completions */
		if (rc < 0) {
			/* refused outright (-ENOTCONN: failing): send no more of it,
			 * finish when its commands drain */
			if (io->status == 0)
				io->status = rc == -ENOTCONN ? session_fail_errno(q->s) : rc;
			io->next = io_end(io);
		}
		if (io->next == io_end(io)) {
			io_unlink(q, io);
			TAILQ_INSERT_TAIL(&q->inflight, io, link);
			io->where = IO_INFLIGHT;
			if (io->chunks == 0)
				io_finish(q, io, io->status);
		}
	}
}

static void
queue_fail_all(struct host_session_queue *q, int status)
{
	struct host_session_io *io;

	/* callbacks may queue new requests: those are failed too */
	while ((io = TAILQ_FIRST(&q->inflight)) != NULL || (io = TAILQ_FIRST(&q->pending)) != NULL)
		io_finish(q, io, status);
}

static bool
stop_queue_made(struct host_session *s, void *arg)
{
	struct host_session_queue *q = arg;

	return host_qpair_connect_rc(q->qp) != -EINPROGRESS ||
	       host_session_state(s) == HOST_SESSION_GONE ||
	       host_session_state(s) == HOST_SESSION_FAILED;
}

/* A queue with requests but no connection waits here for the controller to
 * come back (or to give its requests up), driving it itself. */
static bool
stop_queue_usable(struct host_session *s, void *arg)
{
	(void)arg;
	/* ready: every queue pair has been offered its connection */
	return host_ctrlr_state(s->c) == HOST_CTRLR_READY ||
	       host_ctrlr_fail_mode(s->c) != HOST_FAIL_NONE || session_shut(s);
}

static void
queue_wait_reconnect(struct host_session_queue *q, uint64_t until_ns)
{
	session_drive(q->s, until_ns, stop_queue_usable, q);
}

int
host_session_queue_create(struct host_session *s, uint32_t depth, struct host_session_queue **out)
{
	struct host_qpair_opts qo = { 0 };
	struct host_session_queue *q;
	int rc;

	if (depth == 0 || depth > 4095)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	q->s = s;
	q->depth = depth;
	TAILQ_INIT(&q->pending);
	TAILQ_INIT(&q->inflight);
	q->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->wake_fd < 0) {
		rc = -errno;
		free(q);
		return rc;
	}
	qo.entries = depth + 1;
	qo.interrupts = true;
	pthread_mutex_lock(&s->lock);
	rc = host_session_state(s) == HOST_SESSION_GONE ? -EIO
							: host_qpair_create(s->c, &qo, &q->qp);
	if (rc == 0)
		host_qpair_set_ctx(q->qp, q);
	pthread_mutex_unlock(&s->lock);
	if (rc == 0) {
		/* made now if the controller is ready, else once it is back */
		session_drive(s, UINT64_MAX, stop_queue_made, q);
		rc = host_qpair_connect_rc(q->qp);
		if (rc == -EINPROGRESS)
			rc = -EIO;
	}
	if (rc < 0) {
		if (q->qp) {
			host_qpair_stop(q->qp, false);
			pthread_mutex_lock(&s->lock);
			host_qpair_destroy(q->qp, NULL, NULL);
			pthread_mutex_unlock(&s->lock);
		}
		close(q->wake_fd);
		free(q);
		return rc;
	}
	(void)host_qpair_poll(q->qp, 0); /* this thread owns it: take its connection */
	NVL_VERBOSELOG(host, "controller %u: I/O queue %u created: %u entries, interrupts, spin %u us",
		       host_ctrlr_cntlid(s->c), host_qpair_qid(q->qp), host_qpair_entries(q->qp),
		       s->opts.spin_us);
	*out = q;
	return 0;
}

static void
queue_freed(void *arg)
{
	*(bool *)arg = true;
}

static bool
stop_flag(struct host_session *s, void *arg)
{
	(void)s;
	return *(bool *)arg;
}

void
host_session_queue_destroy(struct host_session_queue *q)
{
	struct host_session *s;
	bool freed = false;

	if (q == NULL)
		return;
	s = q->s;
	queue_fail_all(q, -ESHUTDOWN);
	if (q->qp) {
		host_qpair_stop(q->qp, false);
		pthread_mutex_lock(&s->lock);
		host_qpair_destroy(q->qp, queue_freed, &freed);
		pthread_mutex_unlock(&s->lock);
		/* deleting its queues on the controller: two admin commands at most */
		session_drive(s, nvl_now_ns() + SESSION_ADMIN_TIMEOUT_MS * 1000000ULL, stop_flag,
			      &freed);
		if (!freed) {
			/* the controller did not answer: forget the deletion */
			pthread_mutex_lock(&s->lock);
			host_ctrlr_give_up(s->c, "queue deletion timed out");
			session_poll_locked(s);
			pthread_mutex_unlock(&s->lock);
		}
	}
	if (q->wake_fd >= 0)
		close(q->wake_fd);
	free(q);
}

int
host_session_queue_submit(struct host_session_queue *q, struct host_session_io *io)
{
	struct host_session *s = q->s;
	uint64_t size = host_session_size(s), bs = s->ns.block_size;

	switch (io->op) {
	case HOST_SESSION_WRITE:
	case HOST_SESSION_WRITE_ZEROES:
	case HOST_SESSION_DISCARD:
		if (s->opts.readonly)
			return -EROFS;
		/* fallthrough */
	case HOST_SESSION_READ:
		if (io->len == 0 || io->offset % bs || io->len % bs || io->offset > size ||
		    io->len > size - io->offset)
			return -EINVAL;
		if ((io->op == HOST_SESSION_READ || io->op == HOST_SESSION_WRITE) &&
		    io->buf == NULL)
			return -EINVAL;
		break;
	case HOST_SESSION_FLUSH:
		break;
	default:
		return -EINVAL;
	}
	if (io->cb == NULL)
		return -EINVAL;
	io->q = q;
	io->next = 0;
	io->chunks = 0;
	io->status = 0;
	NVL_TRACELOG(host, "session request: op %u offset %llu len %llu flags 0x%x", io->op,
		     (unsigned long long)io->offset, (unsigned long long)io->len, io->flags);
	TAILQ_INSERT_TAIL(&q->pending, io, link);
	io->where = IO_PENDING;
	q->outstanding++;
	queue_kick(q);
	return 0;
}

/* Consume the wake-ups and the interrupt, then arm it. \return 0 (sleep on
 * the fds), -EAGAIN (something to do). */
static int
queue_prepare_sleep(struct host_session_queue *q, struct pollfd *pfds, int *n, int max)
{
	uint64_t v;
	int k;

	(void)!read(q->wake_fd, &v, sizeof(v));
	if (!host_qpair_connected(q->qp) || !TAILQ_EMPTY(&q->pending) ||
	    host_qpair_outstanding(q->qp) == 0)
		return -EAGAIN;
	if (!host_qpair_interrupts(q->qp)) {
		/* made without an interrupt vector (the target's budget): polled,
		 * with naps short next to a device's latency */
		usleep(50);
		return -EAGAIN;
	}
	k = host_qpair_fds(q->qp, pfds, max);
	if (k > 0 && poll(pfds, (nfds_t)k, 0) > 0)
		host_qpair_ack(q->qp, pfds, k);
	if (host_qpair_arm(q->qp) != 0)
		return -EAGAIN;
	k = host_qpair_fds(q->qp, pfds, max);
	if (k < max) {
		/* the core's kick: the connection went away without a hang-up */
		pfds[k].fd = q->wake_fd;
		pfds[k].events = POLLIN;
		pfds[k++].revents = 0;
	}
	*n = k;
	return 0;
}

/* --spin-us (dis_nvme's polling): before a waiter sleeps, poll the queue pair
 * for up to spin_us; true if something completed (the caller looks again). */
static bool
queue_spin(struct host_session_queue *q)
{
	uint64_t end;
	uint32_t start = q->completed;

	if (q->s->opts.spin_us == 0 || !host_qpair_connected(q->qp))
		return false;
	end = nvl_now_ns() + (uint64_t)q->s->opts.spin_us * 1000;
	do {
		(void)host_qpair_poll(q->qp, 0);
		queue_kick(q);
		if (q->completed != start || q->outstanding == 0)
			return true;
		if (host_qpair_spin_yields(q->qp))
			sched_yield(); /* the peer is a local process: let it run */
	} while (nvl_now_ns() < end);
	return false;
}

int
host_session_queue_poll(struct host_session_queue *q, int timeout_ms)
{
	uint32_t start = q->completed;
	uint64_t t0 = nvl_now_ns();
	uint64_t until = timeout_ms < 0 ? UINT64_MAX : t0 + (uint64_t)timeout_ms * 1000000ULL;

	while (q->outstanding) {
		struct pollfd pfds[4];
		int n = 0;

		queue_kick(q);
		(void)host_qpair_poll(q->qp, 0);
		queue_kick(q);
		if (q->completed != start || q->outstanding == 0)
			break;
		if (!host_qpair_connected(q->qp) && host_qpair_outstanding(q->qp)) {
			/* the controller is away: help it back (bounded by timeout_ms
			 * only when one was given: a non-blocking poll waits for the
			 * reconnect, as requests cannot move without it) */
			queue_wait_reconnect(q, timeout_ms > 0 ? until : UINT64_MAX);
			continue;
		}
		if (timeout_ms == 0 || nvl_now_ns() >= until)
			break;
		if (queue_spin(q))
			continue;
		if (queue_prepare_sleep(q, pfds, &n, 4) < 0) {
			if (host_qpair_outstanding(q->qp) == 0 && !TAILQ_EMPTY(&q->pending)) {
				/* nothing of ours in flight yet still pending: the shared
				 * data window is full of other queues' I/O */
				usleep(1000);
			}
			continue;
		}
		{
			uint64_t now = nvl_now_ns();
			int tmo = until == UINT64_MAX ? 1000
						      : (int)NVL_MIN((until - now) / 1000000 + 1,
								     (uint64_t)1000);

			if (poll(pfds, (nfds_t)n, tmo) > 0)
				host_qpair_ack(q->qp, pfds, n);
		}
	}
	return (int)(q->completed - start);
}

uint64_t
host_session_queue_epoch(const struct host_session_queue *q)
{
	return host_qpair_epoch(q->qp);
}

uint32_t
host_session_queue_outstanding(const struct host_session_queue *q)
{
	return q->outstanding;
}

int
host_session_queue_pollfds(struct host_session_queue *q, struct pollfd *pfds, int max)
{
	int n = 0;

	if (q->outstanding == 0)
		return 0;
	if (max < 2)
		return -EOPNOTSUPP;
	if (queue_spin(q))
		return -EAGAIN;
	if (queue_prepare_sleep(q, pfds, &n, max) < 0)
		return -EAGAIN;
	return n;
}

struct run_state {
	bool done;
	int status;
};

static void
run_cb(struct host_session_io *io, int status)
{
	struct run_state *st = io->ctx;

	st->status = status;
	st->done = true;
}

int
host_session_queue_run(struct host_session_queue *q, struct host_session_io *io)
{
	struct run_state st = { 0 };
	host_session_io_cb cb = io->cb;
	void *ctx = io->ctx;
	int rc;

	io->cb = run_cb;
	io->ctx = &st;
	rc = host_session_queue_submit(q, io);
	while (rc == 0 && !st.done)
		host_session_queue_poll(q, -1);
	io->cb = cb;
	io->ctx = ctx;
	return rc < 0 ? rc : st.status;
}
