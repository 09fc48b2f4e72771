/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reconnecting session on one namespace (see session.h for the contract).
 *
 * Ownership: the session owns the current connection (a controller plus a
 * reference count); every session queue holds a reference on the connection
 * its queue pair belongs to, so a dead controller is disconnected only when
 * the last queue moved off it (nobody touches a queue pair of another
 * thread). Requests live in the caller's memory and sit on exactly one of
 * their queue's two lists until they complete: `pending` (not every command
 * submitted yet) or `inflight` (all submitted, waiting for completions).
 *
 * Locking: s->lock guards the connection pointer, generation, state and
 * reference counts; s->cond wakes threads waiting for a reconnect. Queue
 * state is touched only by the queue's thread. No lock is held across
 * connect, disconnect or I/O.
 *
 * Transport knowledge: host_session_queue_pollfds() and the hang-up check
 * know the shm transport's interrupt eventfd and control socket (shm_hq,
 * shm_host); other transports get -EOPNOTSUPP there and callers wait with
 * a timeout instead.
 */
#include "host/session.h"
#include "host/host_internal.h"
#include "host/host_shm.h"
#include "proto/shm_ring.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SESSION_BACKOFF_MIN_MS 100
#define SESSION_BACKOFF_MAX_MS 1000
#define SESSION_FAILED_RETRY_MS 1000
#define SESSION_DEFAULT_TIMEOUT_MS 60000
#define SESSION_WZ_MAX_BLOCKS 65536u       /* NLB is 16 bits, 0's based */
#define SESSION_DSM_MAX_BLOCKS 0x40000000u /* one range per command, bounded */

struct sess_conn {
	struct nvl_ctrlr *c;
	uint64_t gen;
	int refs;                      /* under s->lock */
};

struct host_session {
	char *uri;
	char *hostnqn;
	struct host_session_opts opts;
	struct nvl_ctrlr_opts copts;
	uint32_t nsid;
	struct nvl_ns_info ns;
	uint32_t max_xfer;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct sess_conn *conn;        /* NULL while disconnected */
	uint64_t gen;
	enum host_session_state state;
	bool reconnecting;             /* a thread is in reconnect_loop() */
	bool shutdown;
	uint64_t down_since_ns;
	uint64_t last_attempt_ns;
	uint64_t reconnects;
	char last_error[256];
};

struct host_session_queue {
	struct host_session *s;
	struct sess_conn *conn;        /* reference held while qp exists */
	struct nvl_qpair *qp;
	uint32_t depth;
	struct host_session_io_list pending;
	struct host_session_io_list inflight;
	uint32_t outstanding;
	uint32_t completed;
	bool broken;                   /* the queue pair is unusable: repair before use */
	bool detaching;                /* ignore completions: everything will be resubmitted */
	uint64_t epoch;                /* queue pairs created so far */
};

/* ---- helpers ---------------------------------------------------------------------- */

static void
sleep_ms(uint32_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void
cond_wait_ms(struct host_session *s, uint32_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&s->cond, &s->lock, &ts);
}

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

/* Statuses that say "this path failed", not "this command failed": the
 * command is resubmitted on a repaired queue (NVMe Base 2.0, 4.2.3.1: no DNR). */
static bool
session_status_is_path_error(uint16_t st)
{
	return st == NVL_NVME_SC_ABORTED_SQ_DELETION ||
	       st == NVL_NVME_SC_TRANSIENT_TRANSPORT_ERROR ||
	       st == NVL_NVME_SC_ABORTED_POWER_LOSS || st == NVL_NVME_SC_NS_NOT_READY;
}

static void session_set_error(struct host_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
session_set_error(struct host_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->last_error, sizeof(s->last_error), fmt, ap);
	va_end(ap);
}

/* State, generation and reconnect count are written under s->lock and read
 * without it (from any thread): relaxed atomics both ways. */
static void
session_set_state(struct host_session *s, enum host_session_state st)
{
	__atomic_store_n(&s->state, st, __ATOMIC_RELAXED);
}

/* libnvlend marks a controller dead from whichever thread notices (its
 * keep-alive thread, a queue's wait). */
static bool
ctrlr_dead(struct nvl_ctrlr *c)
{
	return __atomic_load_n(&c->dead, __ATOMIC_RELAXED);
}

/* ---- connections ------------------------------------------------------------------ */

/* Drop a reference (s->lock held); returns the connection to disconnect
 * after unlocking, or NULL. */
static struct sess_conn *
conn_put_locked(struct sess_conn *conn)
{
	if (--conn->refs > 0)
		return NULL;
	return conn;
}

static void
conn_free(struct sess_conn *conn)
{
	if (conn == NULL)
		return;
	nvl_ctrlr_disconnect(conn->c);
	free(conn);
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

/* One connect + identify. On success *out is a new connection (refs 1). */
static int
session_connect_once(struct host_session *s, bool first, struct sess_conn **out)
{
	struct nvl_ctrlr *c;
	struct nvl_ns_info info;
	struct sess_conn *conn;
	uint32_t nsid;
	int rc;

	rc = nvl_ctrlr_connect(s->uri, &s->copts, &c);
	if (rc < 0)
		return rc;
	nsid = first ? (s->opts.nsid ? s->opts.nsid : nvl_ctrlr_default_nsid(c)) : s->nsid;
	rc = nsid ? nvl_ns_get_info(c, nsid, &info) : -ENOENT;
	if (rc < 0) {
		pthread_mutex_lock(&s->lock);
		session_set_error(s, "namespace %u: %s", nsid,
				  rc == -ENOENT ? "not active" : nvl_ctrlr_last_error(c));
		pthread_mutex_unlock(&s->lock);
		nvl_ctrlr_disconnect(c);
		return rc;
	}
	if (first) {
		s->nsid = nsid;
		s->ns = info;
		s->max_xfer = NVL_ALIGN_DOWN(nvl_ctrlr_max_xfer(c), info.block_size);
		if (s->max_xfer == 0) {
			nvl_ctrlr_disconnect(c);
			return -EINVAL;
		}
	} else if (!ns_same(&s->ns, &info)) {
		nvl_ctrlr_disconnect(c);
		return -ESTALE;
	}
	conn = calloc(1, sizeof(*conn));
	if (conn == NULL) {
		nvl_ctrlr_disconnect(c);
		return -ENOMEM;
	}
	conn->c = c;
	conn->refs = 1;
	*out = conn;
	return 0;
}

/*
 * Reconnect until it works, the deadline passes or the session shuts down
 * (one attempt only when `once`). Called with s->reconnecting set and the
 * lock NOT held. Installs the new connection on success.
 */
static int
session_reconnect_loop(struct host_session *s, uint64_t deadline_ns, bool once)
{
	uint32_t backoff = SESSION_BACKOFF_MIN_MS;
	struct sess_conn *conn = NULL;
	int rc;

	for (;;) {
		pthread_mutex_lock(&s->lock);
		if (s->shutdown) {
			pthread_mutex_unlock(&s->lock);
			return -ESHUTDOWN;
		}
		s->last_attempt_ns = nvl_now_ns();
		pthread_mutex_unlock(&s->lock);
		NVL_VERBOSELOG(host, "session %s: reconnecting", s->uri);
		rc = session_connect_once(s, false, &conn);
		pthread_mutex_lock(&s->lock);
		if (rc == 0) {
			NVL_VERBOSELOG(host, "session %s: reconnected (reconnect %llu)", s->uri,
				       (unsigned long long)s->reconnects + 1);
			conn->gen = __atomic_add_fetch(&s->gen, 1, __ATOMIC_RELAXED);
			s->conn = conn;
			session_set_state(s, HOST_SESSION_CONNECTED);
			__atomic_add_fetch(&s->reconnects, 1, __ATOMIC_RELAXED);
			s->down_since_ns = 0;
			s->last_error[0] = '\0';
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
		if (rc == -ESTALE) {
			session_set_error(s, "the namespace changed identity (size, block size or "
					     "NGUID/UUID) while disconnected: not resuming");
			session_set_state(s, HOST_SESSION_GONE);
			pthread_mutex_unlock(&s->lock);
			return rc;
		}
		if (rc != -ENOENT || s->last_error[0] == '\0')
			session_set_error(s, "reconnect: %s", strerror(-rc));
		NVL_VERBOSELOG(host, "session %s: reconnect failed: %s; next try in %u ms", s->uri,
			       strerror(-rc), backoff);
		if (once || nvl_now_ns() + (uint64_t)backoff * 1000000ULL > deadline_ns) {
			session_set_state(s, HOST_SESSION_FAILED);
			pthread_mutex_unlock(&s->lock);
			return -EIO;
		}
		pthread_mutex_unlock(&s->lock);
		sleep_ms(backoff);
		backoff = NVL_MIN(backoff * 2, SESSION_BACKOFF_MAX_MS);
	}
}

/*
 * A live connection with a reference for the caller, reconnecting if the
 * current one has generation dead_gen (or its controller is gone). NULL when the session
 * failed or shut down (I/O must fail).
 */
static struct sess_conn *
session_get_conn(struct host_session *s, uint64_t dead_gen)
{
	struct sess_conn *retire = NULL, *got = NULL;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		uint64_t deadline;
		bool once;
		int rc;

		if (s->shutdown || s->state == HOST_SESSION_GONE)
			break;
		if (s->conn && s->conn->gen != dead_gen && !ctrlr_dead(s->conn->c)) {
			s->conn->refs++;
			got = s->conn;
			break;
		}
		if (s->conn) {
			/* retire the dead connection: the session's reference goes */
			retire = conn_put_locked(s->conn);
			s->conn = NULL;
			session_set_state(s, HOST_SESSION_RECONNECTING);
			s->down_since_ns = nvl_now_ns();
			if (retire) {
				pthread_mutex_unlock(&s->lock);
				conn_free(retire);
				retire = NULL;
				pthread_mutex_lock(&s->lock);
			}
			continue;
		}
		if (s->reconnecting) {
			if (s->state == HOST_SESSION_FAILED)
				break; /* someone retries; fail this I/O now */
			cond_wait_ms(s, 100);
			continue;
		}
		once = s->state == HOST_SESSION_FAILED;
		if (once &&
		    nvl_now_ns() - s->last_attempt_ns < SESSION_FAILED_RETRY_MS * 1000000ULL)
			break;
		deadline = s->down_since_ns + (uint64_t)s->opts.reconnect_timeout_ms * 1000000ULL;
		s->reconnecting = true;
		pthread_mutex_unlock(&s->lock);
		rc = session_reconnect_loop(s, deadline, once);
		pthread_mutex_lock(&s->lock);
		s->reconnecting = false;
		pthread_cond_broadcast(&s->cond);
		if (rc < 0)
			break;
	}
	pthread_mutex_unlock(&s->lock);
	return got;
}

static void
session_put_conn(struct host_session *s, struct sess_conn *conn)
{
	struct sess_conn *f;

	pthread_mutex_lock(&s->lock);
	f = conn_put_locked(conn);
	pthread_mutex_unlock(&s->lock);
	conn_free(f);
}

/* ---- session ---------------------------------------------------------------------- */

int
host_session_create(const char *uri, const struct host_session_opts *opts,
		    struct host_session **out)
{
	struct host_session *s;
	pthread_condattr_t ca;
	int rc;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	if (opts)
		s->opts = *opts;
	if (s->opts.reconnect_timeout_ms == 0)
		s->opts.reconnect_timeout_ms = SESSION_DEFAULT_TIMEOUT_MS;
	s->uri = strdup(uri);
	s->hostnqn = s->opts.hostnqn ? strdup(s->opts.hostnqn) : NULL;
	if (s->uri == NULL || (s->opts.hostnqn && s->hostnqn == NULL)) {
		rc = -ENOMEM;
		goto err_free;
	}
	s->opts.hostnqn = s->hostnqn;
	nvl_ctrlr_opts_default(&s->copts);
	s->copts.hostnqn = s->hostnqn;
	if (s->opts.window_bytes)
		s->copts.window_bytes = s->opts.window_bytes;
	/* notice a dead target within a few seconds even when idle */
	s->copts.kato_ms = 6000;
	s->copts.timeout_ms = 5000;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = session_connect_once(s, true, &s->conn);
	if (rc < 0)
		goto err_locks;
	s->conn->gen = __atomic_add_fetch(&s->gen, 1, __ATOMIC_RELAXED);
	if (s->ns.read_only)
		s->opts.readonly = true;
	NVL_VERBOSELOG(host, "session %s: namespace %u, %llu blocks of %u, reconnect timeout %u ms",
		       s->uri, s->nsid, (unsigned long long)s->ns.num_blocks, s->ns.block_size,
		       s->opts.reconnect_timeout_ms);
	*out = s;
	return 0;
err_locks:
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
err_free:
	free(s->uri);
	free(s->hostnqn);
	free(s);
	return rc;
}

void
host_session_destroy(struct host_session *s)
{
	if (s == NULL)
		return;
	if (s->conn)
		conn_free(conn_put_locked(s->conn));
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s->uri);
	free(s->hostnqn);
	free(s);
}

void
host_session_shutdown(struct host_session *s)
{
	pthread_mutex_lock(&s->lock);
	s->shutdown = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
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
	return __atomic_load_n(&s->state, __ATOMIC_RELAXED);
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
	nvl_strlcpy(buf, s->last_error, len);
	pthread_mutex_unlock(&s->lock);
}

enum host_session_state
host_session_check(struct host_session *s)
{
	struct sess_conn *retire = NULL, *conn = NULL;
	uint64_t now = nvl_now_ns();
	int rc;

	/* at most one connect attempt here: the caller (a monitor thread) must
	 * stay responsive; I/O threads run the backoff loop when they need to */
	pthread_mutex_lock(&s->lock);
	if (s->shutdown || s->state == HOST_SESSION_GONE || s->reconnecting ||
	    (s->conn && !ctrlr_dead(s->conn->c))) {
		pthread_mutex_unlock(&s->lock);
		return host_session_state(s);
	}
	if (s->conn) {
		retire = conn_put_locked(s->conn);
		s->conn = NULL;
		session_set_state(s, HOST_SESSION_RECONNECTING);
		s->down_since_ns = now;
	}
	if (now - s->last_attempt_ns < SESSION_BACKOFF_MAX_MS * 1000000ULL) {
		pthread_mutex_unlock(&s->lock);
		conn_free(retire);
		return host_session_state(s);
	}
	s->reconnecting = true;
	s->last_attempt_ns = now;
	pthread_mutex_unlock(&s->lock);
	conn_free(retire);
	rc = session_connect_once(s, false, &conn);
	pthread_mutex_lock(&s->lock);
	s->reconnecting = false;
	if (rc == 0) {
		conn->gen = __atomic_add_fetch(&s->gen, 1, __ATOMIC_RELAXED);
		s->conn = conn;
		session_set_state(s, HOST_SESSION_CONNECTED);
		__atomic_add_fetch(&s->reconnects, 1, __ATOMIC_RELAXED);
		s->down_since_ns = 0;
		s->last_error[0] = '\0';
	} else if (rc == -ESTALE) {
		session_set_error(s, "the namespace changed identity (size, block size or "
				     "NGUID/UUID) while disconnected: not resuming");
		session_set_state(s, HOST_SESSION_GONE);
	} else {
		session_set_error(s, "reconnect: %s", strerror(-rc));
		if (s->state == HOST_SESSION_RECONNECTING &&
		    nvl_now_ns() > s->down_since_ns +
					   (uint64_t)s->opts.reconnect_timeout_ms * 1000000ULL)
			session_set_state(s, HOST_SESSION_FAILED);
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return host_session_state(s);
}

/* ---- queues ----------------------------------------------------------------------- */

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
	if (q->detaching)
		return; /* the queue pair is being replaced: everything is resubmitted */
	if (st && session_status_is_path_error(st)) {
		/* resubmitted whole once the queue is repaired */
		q->broken = true;
		return;
	}
	if (st && io->status == 0)
		io->status = session_errno_from_status(st);
	if (io->chunks == 0 && io->next == io_end(io) && !q->broken)
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
	struct nvl_range r;
	uint32_t fl;
	int rc;

	switch (io->op) {
	case HOST_SESSION_READ:
	case HOST_SESSION_WRITE:
		n = NVL_MIN(left, (uint64_t)s->max_xfer);
		cmd.opc = io->op == HOST_SESSION_READ ? NVL_NVME_IO_READ : NVL_NVME_IO_WRITE;
		cmd.nsid = s->nsid;
		cmd.cdw10 = (uint32_t)slba;
		cmd.cdw11 = (uint32_t)(slba >> 32);
		cmd.cdw12 = (uint32_t)(n / bs - 1) |
			    ((io->flags & HOST_SESSION_F_FUA) ? NVL_NVME_RW_FUA : 0);
		rc = nvl_submit_raw(q->qp, &cmd, (uint8_t *)io->buf + io->next, (uint32_t)n,
				    io->op == HOST_SESSION_READ ? NVL_XFER_FROM_CTRLR
								: NVL_XFER_TO_CTRLR,
				    chunk_done, io);
		break;
	case HOST_SESSION_WRITE_ZEROES:
		n = NVL_MIN(left, (uint64_t)SESSION_WZ_MAX_BLOCKS * bs);
		fl = ((io->flags & HOST_SESSION_F_DEALLOC) ? NVL_IO_DEALLOC : 0) |
		     ((io->flags & HOST_SESSION_F_FUA) ? NVL_IO_FUA : 0);
		rc = nvl_write_zeroes(q->qp, s->nsid, slba, (uint32_t)(n / bs), fl, chunk_done, io);
		break;
	case HOST_SESSION_DISCARD:
		n = NVL_MIN(left, (uint64_t)SESSION_DSM_MAX_BLOCKS * bs);
		r.slba = slba;
		r.nlb = (uint32_t)(n / bs);
		rc = nvl_deallocate(q->qp, s->nsid, &r, 1, chunk_done, io);
		break;
	case HOST_SESSION_FLUSH:
		n = 1;
		rc = nvl_flush(q->qp, s->nsid, chunk_done, io);
		break;
	default:
		return -EINVAL;
	}
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

	while (q->qp && !q->broken && (io = TAILQ_FIRST(&q->pending)) != NULL) {
		int rc = submit_chunk(q, io);

		if (rc == -EAGAIN || rc == -ENOMEM)
			return; /* queue or data window full: after completions */
		if (rc == -ENOTCONN) {
			q->broken = true;
			return;
		}
		if (rc < 0) {
			/* refused outright: send no more of it, finish when its commands drain */
			if (io->status == 0)
				io->status = rc;
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
queue_needs_repair(struct host_session_queue *q)
{
	return q->broken || q->qp == NULL || ctrlr_dead(q->conn->c) ||
	       q->conn->gen != __atomic_load_n(&q->s->gen, __ATOMIC_RELAXED);
}

/*
 * Put the queue on a live controller: drop the old queue pair, wait for (or
 * do) the reconnect, create a new queue pair and line every unfinished
 * request up for resubmission from its start. Without a controller (the
 * reconnect timed out, or shutdown), fail them all.
 */
static void
queue_repair(struct host_session_queue *q)
{
	struct host_session *s = q->s;
	struct host_session_io *io;
	struct nvl_qpair_opts qo;
	uint64_t dead_gen = 0;

	if (q->qp) {
		q->detaching = true;
		nvl_qpair_destroy(q->qp);
		q->detaching = false;
		q->qp = NULL;
	}
	if (q->conn) {
		if (ctrlr_dead(q->conn->c) || q->conn->gen != __atomic_load_n(&s->gen, __ATOMIC_RELAXED))
			dead_gen = q->conn->gen;
		session_put_conn(s, q->conn);
		q->conn = NULL;
	}
	/* in-flight requests are older than pending ones: keep the order */
	while ((io = TAILQ_LAST(&q->inflight, host_session_io_list)) != NULL) {
		io_unlink(q, io);
		TAILQ_INSERT_HEAD(&q->pending, io, link);
		io->where = IO_PENDING;
	}
	TAILQ_FOREACH(io, &q->pending, link) {
		io->next = 0;
		io->chunks = 0;
		io->status = 0;
		NVL_TRACELOG(host, "session %s: resubmitting op %u offset %llu len %llu", s->uri,
			     io->op, (unsigned long long)io->offset, (unsigned long long)io->len);
	}
	q->broken = false;
	nvl_qpair_opts_default(&qo);
	qo.entries = q->depth + 1;
	if (s->opts.spin_us)
		qo.spin_us = s->opts.spin_us;
	for (;;) {
		struct sess_conn *conn = session_get_conn(s, dead_gen);
		struct nvl_qpair *qp;
		int rc;

		if (conn == NULL) {
			queue_fail_all(q, s->shutdown ? -ESHUTDOWN : -EIO);
			return;
		}
		rc = nvl_qpair_create(conn->c, &qo, &qp);
		if (rc == 0) {
			q->conn = conn;
			q->qp = qp;
			q->epoch++;
			return;
		}
		dead_gen = conn->gen;
		session_put_conn(s, conn);
		/* over TCP a target that died is noticed here first: a new queue's
		 * connection is refused or reset while the admin queue has not seen
		 * the hang-up yet; that controller is gone, reconnect */
		if (rc != -ENOTCONN && rc != -ECONNREFUSED && rc != -ECONNRESET && rc != -EPIPE &&
		    rc != -ETIMEDOUT && rc != -ECONNABORTED && rc != -EHOSTUNREACH &&
		    rc != -ENETUNREACH) {
			pthread_mutex_lock(&s->lock);
			session_set_error(s, "cannot create an I/O queue: %s", strerror(-rc));
			pthread_mutex_unlock(&s->lock);
			queue_fail_all(q, -EIO);
			return;
		}
	}
}

/* shm: notice a controller whose connection hung up (a killed daemon). */
static void
queue_check_hangup(struct host_session_queue *q)
{
	struct nvl_ctrlr *c = q->conn ? q->conn->c : NULL;
	struct shm_host *h;
	struct pollfd p;

	if (c == NULL || c->t != &g_host_shm || c->tctx == NULL)
		return;
	h = c->tctx;
	p.fd = h->fd;
	p.events = POLLRDHUP;
	p.revents = 0;
	if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)))
		__atomic_store_n(&c->dead, true, __ATOMIC_RELAXED);
}

int
host_session_queue_create(struct host_session *s, uint32_t depth, struct host_session_queue **out)
{
	struct host_session_queue *q;

	if (depth == 0 || depth > 4095)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	q->s = s;
	q->depth = depth;
	TAILQ_INIT(&q->pending);
	TAILQ_INIT(&q->inflight);
	for (;;) {
		struct nvl_qpair_opts qo;
		struct sess_conn *conn = session_get_conn(s, 0);
		int rc;

		if (conn == NULL) {
			free(q);
			return -EIO;
		}
		nvl_qpair_opts_default(&qo);
		qo.entries = depth + 1;
		if (s->opts.spin_us)
			qo.spin_us = s->opts.spin_us;
		rc = nvl_qpair_create(conn->c, &qo, &q->qp);
		if (rc == 0) {
			q->conn = conn;
			break;
		}
		session_put_conn(s, conn);
		if (rc != -ENOTCONN) {
			free(q);
			return rc;
		}
	}
	*out = q;
	return 0;
}

void
host_session_queue_destroy(struct host_session_queue *q)
{
	if (q == NULL)
		return;
	queue_fail_all(q, -ESHUTDOWN);
	if (q->qp) {
		q->detaching = true;
		nvl_qpair_destroy(q->qp);
	}
	if (q->conn)
		session_put_conn(q->s, q->conn);
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
	if (!queue_needs_repair(q))
		queue_kick(q);
	return 0;
}

int
host_session_queue_poll(struct host_session_queue *q, int timeout_ms)
{
	uint32_t start = q->completed;
	uint64_t t0 = nvl_now_ns();

	while (q->outstanding) {
		int rc = 0;

		if (queue_needs_repair(q))
			queue_repair(q);
		queue_kick(q);
		if (q->qp && nvl_qpair_outstanding(q->qp)) {
			if (timeout_ms == 0 || q->completed != start) {
				rc = nvl_qpair_process_completions(q->qp, 0);
				if (rc == 0 && timeout_ms == 0)
					queue_check_hangup(q);
			} else {
				int left = -1;

				if (timeout_ms > 0) {
					uint64_t el = (nvl_now_ns() - t0) / 1000000;

					left = el >= (uint64_t)timeout_ms ? 0
									  : timeout_ms - (int)el;
				}
				rc = nvl_qpair_wait(q->qp, left);
			}
			if (rc == -ENOTCONN) {
				q->broken = true;
				continue;
			}
			queue_kick(q);
		} else if (q->outstanding && q->qp && !q->broken && timeout_ms != 0) {
			/* nothing of ours in flight yet still pending: the shared data
			 * window is full of other queues' I/O */
			sleep_ms(1);
		}
		if (q->completed != start || timeout_ms == 0)
			break;
		if (timeout_ms > 0 && nvl_now_ns() - t0 >= (uint64_t)timeout_ms * 1000000ULL)
			break;
	}
	return (int)(q->completed - start);
}

uint64_t
host_session_queue_epoch(const struct host_session_queue *q)
{
	return q->epoch;
}

uint32_t
host_session_queue_outstanding(const struct host_session_queue *q)
{
	return q->outstanding;
}

int
host_session_queue_pollfds(struct host_session_queue *q, struct pollfd *pfds, int max)
{
	struct nvl_ctrlr *c;
	struct shm_host *h;
	struct shm_hq *hq;
	struct pollfd p;
	uint64_t v;

	if (q->outstanding == 0)
		return 0;
	if (queue_needs_repair(q) || !TAILQ_EMPTY(&q->pending) || nvl_qpair_outstanding(q->qp) == 0)
		return -EAGAIN;
	c = q->conn->c;
	if (c->t != &g_host_shm || max < 2)
		return -EOPNOTSUPP;
	hq = q->qp->tq;
	h = c->tctx;
	if (hq == NULL || hq->irq_fd < 0 || h == NULL)
		return -EOPNOTSUPP;
	/* consume an interrupt that already fired, then ask for the next one */
	p.fd = hq->irq_fd;
	p.events = POLLIN;
	if (poll(&p, 1, 0) > 0 && (p.revents & POLLIN))
		(void)!read(hq->irq_fd, &v, sizeof(v));
	shm_arm_wakeup(&hq->cqp->irq_armed);
	if (shm_cqe_ready(&hq->cq[hq->cq_head], hq->phase))
		return -EAGAIN;
	pfds[0].fd = hq->irq_fd;
	pfds[0].events = POLLIN;
	pfds[0].revents = 0;
	pfds[1].fd = h->fd;
	pfds[1].events = POLLRDHUP;
	pfds[1].revents = 0;
	return 2;
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
