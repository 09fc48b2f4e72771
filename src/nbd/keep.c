/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live NBD connections across `nvlend upgrade` (issue 16; docs/nbd.md,
 * docs/lifetime.md), the same way as NVMe/TCP's (src/transport/tcp_keep.c):
 *
 * Old worker (nbd_keep_suspend, an fd store hand-over step, reactor 0):
 * connections still in their handshake close (the client retries);
 * every connection in transmission is asked, on its reactor, to stop
 * between two requests: the request being received (its WRITE payload)
 * is finished, nothing after it is parsed (bytes already read stay in the
 * staging buffer), every request in flight is answered and its reply sent.
 * Then its record ("nbd.ID.state", a sealed memfd: the export's name, the
 * negotiated parameters -- size, block sizes, transmission flags,
 * structured replies, base:allocation -- the peer, and the unparsed bytes)
 * goes to the fd store, then its socket ("nbd.ID.sock"), and this worker
 * never touches it again. When every connection is kept or given up (2 s at
 * most) the hand-over goes on.
 *
 * New worker (nbd_keep_restore, the nbd subsystem's start hook, after the
 * configuration -- exports included -- was replayed): each record whose
 * export exists with the same size becomes a connection in transmission
 * again, on a reactor picked as for a new one; it reads nothing before the
 * worker told the keeper READY=1 (a rollback to the previous binary finds
 * the records as they were), then the records leave the store and it is
 * served. A record that does not check out closes its connection.
 *
 * A kill -9 while serving leaves no record: connections close as before.
 *
 * Threads: suspend bookkeeping and restore on reactor 0; a connection's
 * stop, record and store on its own reactor, reported to reactor 0.
 */
#include "nbd/nbd_internal.h"
#include "reactor/reactor.h"
#include "util/fdstore.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

NVL_LOG_DECLARE_COMPONENT(nbd);

#define NBD_KEEP_MAGIC 0x504b424eu /* "NBKP" */
#define NBD_KEEP_VERSION 1
#define NBD_KEEP_DEADLINE_US 2000000

struct nbd_keep_rec {
	uint32_t magic;
	uint32_t version;
	uint32_t size;              /* with the leftover bytes that follow */
	uint32_t id;
	uint32_t xp_size;           /* sizeof(struct nbd_xparams) of the writer */
	uint32_t leftover;
	uint64_t stopped_ns;        /* CLOCK_MONOTONIC: when it was asked to stop */
	char export[NBD_NAME_MAX + 1];
	char peer[96];
	struct nbd_xparams xp;
};

static struct {
	bool active;
	unsigned waiting, kept, dropped;
	unsigned gen;
	uint64_t start_ns;
	void (*done)(void);
	uint32_t next_id;
	bool resume_armed;
} g_keep = { .next_id = 1 };

/* ---- old worker ------------------------------------------------------------------------------ */

static void keep_finish(void);

static void
keep_report_home(void *arg)
{
	bool kept = arg != NULL;

	if (kept)
		g_keep.kept++;
	else
		g_keep.dropped++;
	if (g_keep.waiting && --g_keep.waiting == 0)
		keep_finish();
}

static void
keep_report(struct nbd_conn *c, bool kept)
{
	if (nvl_reactor_msg(nvl_reactor_get(0), keep_report_home, kept ? c : NULL) < 0)
		NVL_ERRLOG("nbd: %s: cannot report its hand-over to reactor 0", c->peer);
}

static void
keep_name(char *buf, size_t len, uint32_t id, bool state)
{
	snprintf(buf, len, "nbd.%u.%s", id, state ? "state" : "sock");
}

static int
keep_record(struct nbd_conn *c)
{
	struct nbd_keep_rec rec;
	uint32_t left = c->rlen - c->rpos;
	int fd;

	memset(&rec, 0, sizeof(rec));
	rec.magic = NBD_KEEP_MAGIC;
	rec.version = NBD_KEEP_VERSION;
	rec.size = (uint32_t)sizeof(rec) + left;
	rec.id = c->keep_id;
	rec.xp_size = sizeof(rec.xp);
	rec.leftover = left;
	rec.stopped_ns = g_keep.start_ns;
	nvl_strlcpy(rec.export, c->exp->name, sizeof(rec.export));
	nvl_strlcpy(rec.peer, c->peer, sizeof(rec.peer));
	rec.xp = c->xp;
	fd = memfd_create("nvlend-nbd-keep", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (write(fd, &rec, sizeof(rec)) != (ssize_t)sizeof(rec) ||
	    (left && write(fd, c->rbuf + c->rpos, left) != (ssize_t)left) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
		int rc = errno ? -errno : -EIO;

		close(fd);
		return rc;
	}
	return fd;
}

void
nbd_keep_check(struct nbd_conn *c)
{
	char name[64];
	int fd, rc;

	if (c->rx_stopped || c->tx_dead || c->fdh == NULL) {
		/* it is ending anyway: it closes as usual */
		c->keep = NBD_KEEP_NONE;
		keep_report(c, false);
		return;
	}
	if (c->rx != NBD_RX_HDR || c->nbusy || c->bdev_inflight || !TAILQ_EMPTY(&c->sendq))
		return;
	fd = keep_record(c);
	rc = fd;
	if (fd >= 0) {
		/* the record first: a socket without one is never taken back */
		keep_name(name, sizeof(name), c->keep_id, true);
		rc = nvl_fdstore_put(name, fd);
		close(fd);
		if (rc == 0) {
			keep_name(name, sizeof(name), c->keep_id, false);
			rc = nvl_fdstore_put(name, c->fd);
			if (rc < 0) {
				keep_name(name, sizeof(name), c->keep_id, true);
				(void)nvl_fdstore_remove(name);
			}
		}
	}
	if (rc < 0) {
		NVL_WARNLOG("nbd: %s: cannot be handed to the next worker (%s): closing it", c->peer,
			    strerror(-rc));
		c->keep = NBD_KEEP_NONE;
		keep_report(c, false);
		c->drain_why = "upgrade: cannot be handed over";
		nbd_conn_drain_msg(c);
		return;
	}
	/* never touched again here */
	nvl_fd_del(c->fdh);
	c->fdh = NULL;
	nvl_timer_destroy(c->timer);
	c->timer = NULL;
	nbd_hold_cancel(c);
	c->keep = NBD_KEEP_DONE;
	NVL_DEBUGLOG(nbd, "%s: kept for the next worker (%u bytes carried)", c->peer,
		     c->rlen - c->rpos);
	keep_report(c, true);
}

static void
keep_stop_msg(void *arg)
{
	struct nbd_conn *c = arg;

	if (c->state != NBD_CONN_XMIT || c->rx_stopped) {
		keep_report(c, false);
		return;
	}
	nbd_hold_cancel(c);
	c->keep = NBD_KEEP_STOPPING;
	nbd_conn_service(c);
}

static void
keep_finish(void)
{
	void (*done)(void) = g_keep.done;

	g_keep.gen++;
	g_keep.done = NULL;
	if (g_keep.kept + g_keep.dropped)
		NVL_NOTICELOG("nbd: upgrade: %u connection(s) stopped between two requests and kept "
			      "in %llu us, %u closed",
			      g_keep.kept,
			      (unsigned long long)((nvl_now_ns() - g_keep.start_ns) / 1000),
			      g_keep.dropped);
	if (done)
		done();
}

static void
keep_deadline(void *arg)
{
	if ((unsigned)(uintptr_t)arg != g_keep.gen || g_keep.done == NULL)
		return;
	NVL_WARNLOG("nbd: upgrade: %u connection(s) did not stop within %u ms: they close with "
		    "this worker", g_keep.waiting, NBD_KEEP_DEADLINE_US / 1000);
	g_keep.dropped += g_keep.waiting;
	g_keep.waiting = 0;
	keep_finish();
}

static void
nbd_keep_suspend(void (*done)(void))
{
	struct nbd_conn *c, *t;

	if (!nvl_fdstore_available() || g_keep.active) {
		done();
		return;
	}
	g_keep.active = true;
	g_keep.done = done;
	g_keep.start_ns = nvl_now_ns();
	g_keep.waiting = 1;
	TAILQ_FOREACH_SAFE(c, &g_nbd_srv.conns, link, t) {
		if (c->state == NBD_CONN_HANDSHAKE) {
			nbd_conn_drain(c, "daemon upgrading: handshake not finished");
			continue;
		}
		if (c->state != NBD_CONN_XMIT)
			continue;
		c->keep_id = g_keep.next_id++;
		g_keep.waiting++;
		if (nvl_reactor_msg(nvl_reactor_get(c->reactor), keep_stop_msg, c) < 0) {
			g_keep.waiting--;
			g_keep.dropped++;
		}
	}
	if (nvl_timer_create(keep_deadline, (void *)(uintptr_t)g_keep.gen, NBD_KEEP_DEADLINE_US,
			     0) == NULL)
		NVL_WARNLOG("nbd: upgrade: no deadline timer");
	if (--g_keep.waiting == 0)
		keep_finish();
}

static void __attribute__((constructor))
nbd_keep_register(void)
{
	(void)nvl_fdstore_at_suspend(nbd_keep_suspend);
}

/* ---- new worker ------------------------------------------------------------------------------ */

struct keep_scan {
	uint32_t ids[1024];
	unsigned n;
	uint32_t max_id;
};

static void
keep_scan_name(void *arg, const char *name, int fd)
{
	struct keep_scan *s = arg;
	unsigned id;
	int end = 0;

	(void)fd;
	if (sscanf(name, "nbd.%u.%n", &id, &end) != 1 || end == 0)
		return;
	if (id > s->max_id)
		s->max_id = id;
	if (strcmp(name + end, "state") == 0 && s->n < NVL_ARRAY_SIZE(s->ids))
		s->ids[s->n++] = id;
}

static void
keep_forget(uint32_t id)
{
	char name[64];

	keep_name(name, sizeof(name), id, true);
	(void)nvl_fdstore_remove(name);
	keep_name(name, sizeof(name), id, false);
	(void)nvl_fdstore_remove(name);
}

static void
keep_resume_all(void *arg)
{
	struct nbd_conn *c;

	(void)arg;
	g_keep.resume_armed = false;
	TAILQ_FOREACH(c, &g_nbd_srv.conns, link) {
		char what[96];

		if (c->keep != NBD_KEEP_RESTORED)
			continue;
		c->keep = NBD_KEEP_NONE;
		keep_forget(c->keep_id);
		snprintf(what, sizeof(what), "nbd %.40s %.40s", c->exp->name, c->peer);
		if (nvl_reactor_msg(nvl_reactor_get(c->reactor), nbd_conn_adopt_msg, c) < 0)
			nbd_conn_adopt_msg(c); /* reactor 0 then, as handshake.c does */
		nvl_handover_resumed_since(what, c->keep_since);
	}
}

/* One record: a connection in transmission again (not reading yet). */
static const char *
keep_restore_one(uint32_t id)
{
	struct nbd_keep_rec *rec = NULL;
	struct nbd_export *e;
	struct nbd_conn *c;
	struct stat st;
	char name[64];
	int fd, sock;
	ssize_t n;
	const char *why;

	keep_name(name, sizeof(name), id, false);
	sock = nvl_fdstore_take(name);
	keep_name(name, sizeof(name), id, true);
	fd = nvl_fdstore_take(name);
	why = "the record or the socket is missing";
	if (fd < 0 || sock < 0)
		goto fail;
	why = "the record is damaged";
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(*rec) ||
	    st.st_size > (off_t)(sizeof(*rec) + NBD_RBUF_SIZE))
		goto fail;
	rec = malloc((size_t)st.st_size);
	if (rec == NULL)
		goto fail;
	n = pread(fd, rec, (size_t)st.st_size, 0);
	if (n != st.st_size || rec->magic != NBD_KEEP_MAGIC || rec->version != NBD_KEEP_VERSION ||
	    rec->xp_size != sizeof(rec->xp) || rec->size != (uint32_t)n ||
	    rec->leftover != rec->size - sizeof(*rec) || rec->id != id ||
	    memchr(rec->export, '\0', sizeof(rec->export)) == NULL ||
	    memchr(rec->peer, '\0', sizeof(rec->peer)) == NULL)
		goto fail;
	why = "its export is gone or changed size";
	e = nbd_export_get(rec->export);
	if (e == NULL || e->removing || e->size != rec->xp.size || e->desc == NULL)
		goto fail;
	why = "out of memory";
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->rbuf = malloc(NBD_RBUF_SIZE);
	if (c->rbuf == NULL || nbd_conn_alloc_reqs(c) < 0) {
		nbd_conn_free(c);
		goto fail;
	}
	c->fd = sock;
	c->id = ++g_nbd_srv.next_id;
	nvl_strlcpy(c->peer, rec->peer, sizeof(c->peer));
	c->state = NBD_CONN_XMIT;
	c->xp = rec->xp;
	c->desc = e->desc;
	c->can_flush = e->desc->bdev->io_types & (1u << NVL_BDEV_IO_FLUSH);
	c->flush_needed = c->can_flush && e->desc->bdev->write_cache;
	c->rx = NBD_RX_HDR;
	memcpy(c->rbuf, rec + 1, rec->leftover);
	c->rlen = rec->leftover;
	c->keep = NBD_KEEP_RESTORED;
	c->keep_id = id;
	c->keep_since = rec->stopped_ns;
	nbd_hold_init(c, g_nbd_srv.read_hold);
	nbd_export_conn_add(e, c);
	TAILQ_INSERT_TAIL(&g_nbd_srv.conns, c, link);
	g_nbd_srv.nconns++;
	c->reactor = nbd_pick_reactor();
	nbd_load_add(c->reactor);
	NVL_NOTICELOG("nbd: %s: export '%s' (%s replies%s) taken back from the previous worker, "
		      "%u byte(s) carried; reading again once this worker serves",
		      c->peer, e->name, c->xp.structured ? "structured" : "simple",
		      c->xp.meta_alloc ? ", base:allocation" : "", rec->leftover);
	close(fd);
	free(rec);
	return NULL;
fail:
	NVL_WARNLOG("nbd: kept connection %u%s%s not taken back: %s; its client connects again", id,
		    rec && rec->magic == NBD_KEEP_MAGIC ? " of " : "",
		    rec && rec->magic == NBD_KEEP_MAGIC ? rec->peer : "", why);
	if (fd >= 0)
		close(fd);
	if (sock >= 0)
		close(sock);
	free(rec);
	keep_forget(id);
	return why;
}

void
nbd_keep_restore(void)
{
	struct keep_scan *s = calloc(1, sizeof(*s));
	bool any = false;

	if (s == NULL)
		return;
	nvl_fdstore_for_each_untaken(keep_scan_name, s);
	if (s->max_id >= g_keep.next_id)
		g_keep.next_id = s->max_id + 1;
	for (unsigned i = 0; i < s->n; i++)
		any |= keep_restore_one(s->ids[i]) == NULL;
	free(s);
	if (any && !g_keep.resume_armed) {
		if (nvl_fdstore_at_ready(keep_resume_all, NULL) == 0)
			g_keep.resume_armed = true;
		else
			keep_resume_all(NULL);
	}
}
