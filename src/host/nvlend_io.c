/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libnvlend's synchronous face, queue-pair half (include/nvlend/nvlend.h):
 * creating and destroying queue pairs over the host core, the NVM command
 * builders, reaping completions, and waiting for them: spin first, then
 * sleep on the queue's interrupt (or socket).
 *
 * Threads: a queue pair is used by one thread at a time. The I/O path
 * (builders, nvl_submit_raw, process_completions) goes straight to the
 * core's queue pair: no lock, no allocation for buffers in the data window.
 * Creating and destroying take the controller's admin_lock to drive the
 * core (nvlend_internal.h).
 */
#include "host/nvlend_internal.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* nvl_qpair_wait's offers of the CPU while spinning; see lib_spin_yield() */
#define LIB_YIELD_MIN_NS 4000ull
#define LIB_YIELD_MAX_NS 256000ull
#define LIB_YIELD_RAN_NS 5000ull /* a yield this long: another task ran */
#define LIB_POLLED_SLEEP_NS 50000 /* a queue without interrupts naps this long */
#define LIB_DESTROY_WAIT_NS 10000000000ULL

NVL_EXPORT void
nvl_qpair_opts_default(struct nvl_qpair_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->entries = 128;
	o->interrupts = true;
	o->spin_us = 50;
}

/* ---- create, destroy ----------------------------------------------------------------------- */

static bool
lib_qpair_connected(void *arg)
{
	struct nvl_qpair *qp = arg;

	return host_qpair_connect_rc(qp->hq) != -EINPROGRESS || lib_dead(qp->c);
}

static void
lib_flag_done(void *arg)
{
	*(bool *)arg = true;
}

static bool
lib_flag_set(void *arg)
{
	return *(bool *)arg;
}

/* admin_lock held, on the queue pair's thread: stop it, delete its queues, free. */
static void
lib_qpair_release(struct nvl_ctrlr *c, struct host_qpair *hq)
{
	bool freed = false;

	host_qpair_stop(hq, false);
	host_qpair_destroy(hq, lib_flag_done, &freed);
	/* deleting the queues takes two admin commands; a dead controller none */
	(void)host_lib_drive(c, nvl_now_ns() + (uint64_t)c->opts.timeout_ms * 1000000ULL,
			lib_flag_set, &freed);
}

NVL_EXPORT int
nvl_qpair_create(struct nvl_ctrlr *c, const struct nvl_qpair_opts *opts, struct nvl_qpair **out)
{
	struct host_qpair_opts ho = { 0 };
	struct nvl_qpair *qp;
	int rc;

	if (lib_dead(c))
		return -ENOTCONN;
	qp = calloc(1, sizeof(*qp));
	if (qp == NULL)
		return -ENOMEM;
	if (opts)
		qp->opts = *opts;
	else
		nvl_qpair_opts_default(&qp->opts);
	if (qp->opts.entries == 0)
		qp->opts.entries = 128;
	qp->c = c;
	qp->yield_gap_ns = LIB_YIELD_MIN_NS;
	ho.entries = qp->opts.entries;
	ho.interrupts = qp->opts.interrupts;
	ho.use_prp = qp->opts.use_prp;
	pthread_mutex_lock(&c->admin_lock);
	rc = host_qpair_create(c->hc, &ho, &qp->hq);
	if (rc == 0) {
		rc = host_lib_drive(c, nvl_now_ns() + (uint64_t)c->opts.timeout_ms * 1000000ULL,
			       lib_qpair_connected, qp);
		if (rc == 0)
			rc = lib_dead(c) ? -ENOTCONN : host_qpair_connect_rc(qp->hq);
		if (rc < 0)
			lib_qpair_release(c, qp->hq);
	}
	pthread_mutex_unlock(&c->admin_lock);
	if (rc < 0) {
		free(qp);
		return rc;
	}
	/* this thread owns the queue pair: take the queue the controller made */
	(void)host_qpair_poll(qp->hq, 0);
	/* a target out of interrupt vectors makes the queue without one: poll it */
	qp->opts.interrupts = qp->opts.interrupts && host_qpair_interrupts(qp->hq);
	qp->qid = host_qpair_qid(qp->hq);
	c->qpairs[qp->qid] = qp;
	*out = qp;
	return 0;
}

NVL_EXPORT void
nvl_qpair_destroy(struct nvl_qpair *qp)
{
	struct nvl_ctrlr *c;
	uint64_t deadline;

	if (qp == NULL)
		return;
	c = qp->c;
	deadline = nvl_now_ns() + LIB_DESTROY_WAIT_NS;
	while (host_qpair_outstanding(qp->hq) && !lib_dead(c) && nvl_now_ns() < deadline)
		nvl_qpair_wait(qp, 100);
	pthread_mutex_lock(&c->admin_lock);
	lib_qpair_release(c, qp->hq);
	pthread_mutex_unlock(&c->admin_lock);
	c->qpairs[qp->qid] = NULL;
	free(qp);
}

NVL_EXPORT uint16_t
nvl_qpair_id(const struct nvl_qpair *qp)
{
	return qp->qid;
}

NVL_EXPORT uint32_t
nvl_qpair_outstanding(const struct nvl_qpair *qp)
{
	return qp->hq->outstanding; /* called in callers' loops: no call into the core */
}

/* ---- submission ----------------------------------------------------------------------------- */

NVL_EXPORT int
nvl_submit_raw(struct nvl_qpair *qp, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len,
	       enum nvl_xfer_dir dir, nvl_io_cb cb, void *arg)
{
	struct iovec iov = { buf, len };

	if (nvl_unlikely(lib_dead(qp->c)))
		return -ENOTCONN;
	if (len > qp->c->max_xfer && dir != NVL_XFER_NONE)
		return -EINVAL;
	return host_qpair_submit(qp->hq, cmd, &iov, len ? 1 : 0, len, dir, cb, arg);
}

static int
lib_rw(struct nvl_qpair *qp, uint8_t opc, uint32_t nsid, void *buf, uint64_t slba, uint32_t nlb,
       uint32_t flags, nvl_io_cb cb, void *arg, uint32_t bs_hint)
{
	struct nvl_nvme_cmd cmd = { 0 };
	uint64_t bytes = (uint64_t)nlb * bs_hint;

	if (nlb == 0 || nlb > 65536 || bytes > qp->c->max_xfer)
		return -EINVAL;
	cmd.opc = opc;
	cmd.nsid = nsid;
	cmd.cdw10 = (uint32_t)slba;
	cmd.cdw11 = (uint32_t)(slba >> 32);
	cmd.cdw12 = (nlb - 1) | ((flags & NVL_IO_FUA) ? NVL_NVME_RW_FUA : 0);
	return nvl_submit_raw(qp, &cmd, buf, (uint32_t)bytes,
			      opc == NVL_NVME_IO_READ ? NVL_XFER_FROM_CTRLR : NVL_XFER_TO_CTRLR, cb,
			      arg);
}

/* Block size per namespace, learnt once (I/O builders need byte lengths). */
static uint32_t
lib_ns_block_size(struct nvl_qpair *qp, uint32_t nsid)
{
	static __thread struct {
		struct nvl_ctrlr *c;
		uint32_t nsid, bs;
	} cache[8];
	struct nvl_ns_info info;
	unsigned slot = nsid % 8;

	if (cache[slot].c == qp->c && cache[slot].nsid == nsid)
		return cache[slot].bs;
	if (nvl_ns_get_info(qp->c, nsid, &info) < 0)
		return 0;
	cache[slot].c = qp->c;
	cache[slot].nsid = nsid;
	cache[slot].bs = info.block_size;
	return info.block_size;
}

NVL_EXPORT int
nvl_read(struct nvl_qpair *qp, uint32_t nsid, void *buf, uint64_t slba, uint32_t nlb,
	 uint32_t flags, nvl_io_cb cb, void *arg)
{
	uint32_t bs = lib_ns_block_size(qp, nsid);

	if (bs == 0)
		return -ENOENT;
	return lib_rw(qp, NVL_NVME_IO_READ, nsid, buf, slba, nlb, flags, cb, arg, bs);
}

NVL_EXPORT int
nvl_write(struct nvl_qpair *qp, uint32_t nsid, const void *buf, uint64_t slba, uint32_t nlb,
	  uint32_t flags, nvl_io_cb cb, void *arg)
{
	uint32_t bs = lib_ns_block_size(qp, nsid);

	if (bs == 0)
		return -ENOENT;
	return lib_rw(qp, NVL_NVME_IO_WRITE, nsid, (void *)buf, slba, nlb, flags, cb, arg, bs);
}

NVL_EXPORT int
nvl_compare(struct nvl_qpair *qp, uint32_t nsid, const void *buf, uint64_t slba, uint32_t nlb,
	    nvl_io_cb cb, void *arg)
{
	uint32_t bs = lib_ns_block_size(qp, nsid);

	if (bs == 0)
		return -ENOENT;
	return lib_rw(qp, NVL_NVME_IO_COMPARE, nsid, (void *)buf, slba, nlb, 0, cb, arg, bs);
}

NVL_EXPORT int
nvl_flush(struct nvl_qpair *qp, uint32_t nsid, nvl_io_cb cb, void *arg)
{
	struct nvl_nvme_cmd cmd = { 0 };

	cmd.opc = NVL_NVME_IO_FLUSH;
	cmd.nsid = nsid;
	return nvl_submit_raw(qp, &cmd, NULL, 0, NVL_XFER_NONE, cb, arg);
}

NVL_EXPORT int
nvl_write_zeroes(struct nvl_qpair *qp, uint32_t nsid, uint64_t slba, uint32_t nlb,
		 uint32_t flags, nvl_io_cb cb, void *arg)
{
	struct nvl_nvme_cmd cmd = { 0 };

	if (nlb == 0 || nlb > 65536)
		return -EINVAL;
	cmd.opc = NVL_NVME_IO_WRITE_ZEROES;
	cmd.nsid = nsid;
	cmd.cdw10 = (uint32_t)slba;
	cmd.cdw11 = (uint32_t)(slba >> 32);
	cmd.cdw12 = (nlb - 1) | ((flags & NVL_IO_DEALLOC) ? NVL_NVME_WZ_DEAC : 0) |
		    ((flags & NVL_IO_FUA) ? NVL_NVME_RW_FUA : 0);
	return nvl_submit_raw(qp, &cmd, NULL, 0, NVL_XFER_NONE, cb, arg);
}

/* Ranges that outlive the call: a transport without a data window sends
 * them later, from this copy (freed when the command completes). */
struct lib_dsm_copy {
	nvl_io_cb cb;
	void *arg;
	struct nvl_nvme_dsm_range r[];
};

static void
lib_dsm_done(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct lib_dsm_copy *d = arg;
	nvl_io_cb cb = d->cb;
	void *cb_arg = d->arg;

	free(d);
	if (cb)
		cb(cb_arg, cpl);
}

NVL_EXPORT int
nvl_deallocate(struct nvl_qpair *qp, uint32_t nsid, const struct nvl_range *ranges,
	       unsigned nranges, nvl_io_cb cb, void *arg)
{
	struct nvl_nvme_cmd cmd = { 0 };
	struct nvl_nvme_dsm_range r[256];
	uint32_t len = nranges * (uint32_t)sizeof(r[0]);
	struct lib_dsm_copy *d;
	int rc;

	if (nranges == 0 || nranges > 256)
		return -EINVAL;
	for (unsigned i = 0; i < nranges; i++) {
		r[i].attributes = 0;
		r[i].nlb = ranges[i].nlb;
		r[i].slba = ranges[i].slba;
	}
	cmd.opc = NVL_NVME_IO_DSM;
	cmd.nsid = nsid;
	cmd.cdw10 = nranges - 1;
	cmd.cdw11 = NVL_NVME_DSM_AD;
	/* r is on our stack: the core copies it into the window (shm) or, when
	 * small, into the command's slot; larger lists over tcp need a copy */
	if (qp->c->win || len <= HOST_REQ_INLINE)
		return nvl_submit_raw(qp, &cmd, r, len, NVL_XFER_TO_CTRLR, cb, arg);
	d = malloc(sizeof(*d) + len);
	if (d == NULL)
		return -ENOMEM;
	d->cb = cb;
	d->arg = arg;
	memcpy(d->r, r, len);
	rc = nvl_submit_raw(qp, &cmd, d->r, len, NVL_XFER_TO_CTRLR, lib_dsm_done, d);
	if (rc < 0)
		free(d);
	return rc;
}

NVL_EXPORT int
nvl_resv_register(struct nvl_qpair *qp, uint32_t nsid, uint8_t action, uint64_t crkey,
		  uint64_t nrkey, bool iekey, uint8_t cptpl, nvl_io_cb cb, void *arg)
{
	struct nvl_nvme_cmd cmd = { 0 };
	struct nvl_nvme_resv_register_data d = { .crkey = crkey, .nrkey = nrkey };

	cmd.opc = NVL_NVME_IO_RESV_REGISTER;
	cmd.nsid = nsid;
	cmd.cdw10 = (action & 7u) | (iekey ? 1u << 3 : 0) | ((uint32_t)(cptpl & 3) << 30);
	return nvl_submit_raw(qp, &cmd, &d, sizeof(d), NVL_XFER_TO_CTRLR, cb, arg);
}

NVL_EXPORT int
nvl_resv_acquire(struct nvl_qpair *qp, uint32_t nsid, uint8_t action, uint8_t rtype,
		 uint64_t crkey, uint64_t prkey, nvl_io_cb cb, void *arg)
{
	struct nvl_nvme_cmd cmd = { 0 };
	struct nvl_nvme_resv_acquire_data d = { .crkey = crkey, .prkey = prkey };

	cmd.opc = NVL_NVME_IO_RESV_ACQUIRE;
	cmd.nsid = nsid;
	cmd.cdw10 = (action & 7u) | ((uint32_t)rtype << 8);
	return nvl_submit_raw(qp, &cmd, &d, sizeof(d), NVL_XFER_TO_CTRLR, cb, arg);
}

NVL_EXPORT int
nvl_resv_release(struct nvl_qpair *qp, uint32_t nsid, uint8_t action, uint8_t rtype,
		 uint64_t crkey, nvl_io_cb cb, void *arg)
{
	struct nvl_nvme_cmd cmd = { 0 };
	uint64_t d = crkey;

	cmd.opc = NVL_NVME_IO_RESV_RELEASE;
	cmd.nsid = nsid;
	cmd.cdw10 = (action & 7u) | ((uint32_t)rtype << 8);
	return nvl_submit_raw(qp, &cmd, &d, sizeof(d), NVL_XFER_TO_CTRLR, cb, arg);
}

NVL_EXPORT int
nvl_resv_report(struct nvl_qpair *qp, uint32_t nsid, void *buf, uint32_t len, bool eds,
		nvl_io_cb cb, void *arg)
{
	struct nvl_nvme_cmd cmd = { 0 };

	if (len < 4 || len % 4)
		return -EINVAL;
	cmd.opc = NVL_NVME_IO_RESV_REPORT;
	cmd.nsid = nsid;
	cmd.cdw10 = len / 4 - 1;
	cmd.cdw11 = eds ? 1 : 0;
	return nvl_submit_raw(qp, &cmd, buf, len, NVL_XFER_FROM_CTRLR, cb, arg);
}

/* ---- completions and waiting ------------------------------------------------------------------- */

static int
lib_poll(struct nvl_qpair *qp, uint32_t max)
{
	int n = host_qpair_poll(qp->hq, max);

	if (n > 0 && host_qpair_spin_yields(qp->hq)) {
		uint64_t now = nvl_now_ns();

		/* how far apart batches of completions arrive (devices complete in
		 * bursts), for the adaptive spin in lib_wait */
		if (qp->last_cpl_ns) {
			uint64_t gap = now - qp->last_cpl_ns;

			qp->gap_ewma_ns = qp->gap_ewma_ns ? qp->gap_ewma_ns - qp->gap_ewma_ns / 8 + gap / 8
							  : gap;
		}
		qp->last_cpl_ns = now;
	}
	return n;
}

NVL_EXPORT int
nvl_qpair_process_completions(struct nvl_qpair *qp, uint32_t max)
{
	int n = lib_poll(qp, max);

	if (n < 0 || (n == 0 && lib_dead(qp->c)))
		return -ENOTCONN;
	return n;
}

/*
 * Spinning must not starve other work on this CPU: other hosts' processes
 * (several nvlend-perf or application processes pinned to one CPU) or the
 * application's own threads. While spinning, offer the CPU now and then; a
 * sched_yield() that comes back at once (~1.3 us here) says nobody else wanted
 * it, so offer it half as often next time, up to LIB_YIELD_MAX_NS apart, which
 * a lone spinner hardly pays for; one that took longer says another task ran,
 * so offer it every LIB_YIELD_MIN_NS. Measured on 2 vCPUs: 4 clients at QD8
 * on one CPU against a disk file went from ~75 K to ~140 K IOPS.
 */
static void
lib_spin_yield(struct nvl_qpair *qp, uint64_t now)
{
	sched_yield();
	if (nvl_now_ns() - now >= LIB_YIELD_RAN_NS)
		qp->yield_gap_ns = LIB_YIELD_MIN_NS;
	else
		qp->yield_gap_ns = NVL_MIN(2 * qp->yield_gap_ns, LIB_YIELD_MAX_NS);
}

/* Sleep until the queue's fds say something may have happened, or tmo_ns. */
static void
lib_sleep(struct nvl_qpair *qp, uint64_t tmo_ns)
{
	struct pollfd pfds[4];
	struct timespec ts;
	int n;

	if (qp->opts.interrupts && host_qpair_arm(qp->hq) != 0)
		return; /* completions (or news) already there */
	n = host_qpair_fds(qp->hq, pfds, 4);
	if (!qp->opts.interrupts) {
		/* polled queue: nap briefly, watching only for hang-ups */
		for (int i = 0; i < n; i++)
			pfds[i].events &= (short)~POLLIN;
		tmo_ns = NVL_MIN(tmo_ns, (uint64_t)LIB_POLLED_SLEEP_NS);
	}
	ts.tv_sec = (time_t)(tmo_ns / 1000000000ULL);
	ts.tv_nsec = (long)(tmo_ns % 1000000000ULL);
	if (ppoll(pfds, (nfds_t)n, &ts, NULL) > 0)
		host_qpair_ack(qp->hq, pfds, n);
}

static int
lib_wait(struct nvl_qpair *qp, int timeout_ms)
{
	bool yields = host_qpair_spin_yields(qp->hq);
	uint64_t start = nvl_now_ns(), spin_ns = (uint64_t)qp->opts.spin_us * 1000, spin_end;
	uint64_t now = start, last_yield = start;
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms * 1000000;
	int n;

	/*
	 * Delayed on: spin while completions are likely, then sleep. With
	 * commands outstanding, the next batch of completions is likely within
	 * twice the usual gap between batches: a device that answers every
	 * 100 us keeps us polling (a sleep and a cross-CPU wake-up cost ~35 us
	 * each here), a quiet queue sleeps after spin_us. Bounded to 2 ms so a
	 * stalled device does not burn a CPU. A polled queue over a network
	 * never sleeps.
	 */
	if (yields && host_qpair_outstanding(qp->hq) && qp->gap_ewma_ns && qp->opts.spin_us)
		spin_ns = NVL_MAX(spin_ns, NVL_MIN(2 * qp->gap_ewma_ns, 2000000ULL));
	if (!yields && !qp->opts.interrupts)
		spin_ns = UINT64_MAX - start;
	spin_end = start + spin_ns;
	do {
		n = lib_poll(qp, 0);
		if (n)
			return n < 0 ? -ENOTCONN : n;
		if (spin_ns == 0)
			break; /* no spinning asked for: sleep at once, no yield first */
		now = nvl_now_ns();
		if (!yields) {
			nvl_cpu_relax();
		} else if (host_qpair_peer_cpu(qp->hq) == sched_getcpu()) {
			/* a daemon reactor sharing this CPU gets to run at once */
			sched_yield();
		} else if (now - last_yield >= qp->yield_gap_ns) {
			lib_spin_yield(qp, now);
			now = last_yield = nvl_now_ns();
		} else {
			nvl_cpu_relax();
		}
	} while (now < spin_end && now < deadline);
	for (;;) {
		now = nvl_now_ns();
		if (now >= deadline)
			return 0;
		lib_sleep(qp, NVL_MIN(deadline - now, 1000000000ULL));
		n = lib_poll(qp, 0);
		if (n)
			return n < 0 ? -ENOTCONN : n;
		if (lib_dead(qp->c))
			return -ENOTCONN;
	}
}

NVL_EXPORT int
nvl_qpair_wait(struct nvl_qpair *qp, int timeout_ms)
{
	int n = lib_poll(qp, 0);

	if (n)
		return n < 0 ? -ENOTCONN : n;
	if (lib_dead(qp->c))
		return -ENOTCONN;
	return lib_wait(qp, timeout_ms);
}

/* ---- synchronous helpers ----------------------------------------------------------------------- */

NVL_EXPORT void
nvl_sync_cb(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct nvl_sync_state *st = arg;

	st->cpl = *cpl;
	st->done = true;
}

NVL_EXPORT int
nvl_sync_wait(struct nvl_qpair *qp, struct nvl_sync_state *st, int submit_rc,
	      struct nvl_nvme_cpl *cpl)
{
	uint64_t deadline = nvl_now_ns() + (uint64_t)qp->c->opts.timeout_ms * 1000000ULL * 3;

	if (submit_rc < 0)
		return submit_rc;
	while (!st->done) {
		int n = nvl_qpair_wait(qp, 100);

		if (n < 0)
			return n;
		if (!st->done && nvl_now_ns() > deadline)
			return -ETIMEDOUT;
	}
	if (cpl)
		*cpl = st->cpl;
	return nvl_cpl_status(&st->cpl) ? -EREMOTEIO : 0;
}

NVL_EXPORT int
nvl_read_sync(struct nvl_qpair *qp, uint32_t nsid, void *buf, uint64_t slba, uint32_t nlb,
	      struct nvl_nvme_cpl *cpl)
{
	struct nvl_sync_state st = { 0 };

	return nvl_sync_wait(qp, &st, nvl_read(qp, nsid, buf, slba, nlb, 0, nvl_sync_cb, &st), cpl);
}

NVL_EXPORT int
nvl_write_sync(struct nvl_qpair *qp, uint32_t nsid, const void *buf, uint64_t slba, uint32_t nlb,
	       uint32_t flags, struct nvl_nvme_cpl *cpl)
{
	struct nvl_sync_state st = { 0 };

	return nvl_sync_wait(qp, &st, nvl_write(qp, nsid, buf, slba, nlb, flags, nvl_sync_cb, &st),
			     cpl);
}

NVL_EXPORT int
nvl_flush_sync(struct nvl_qpair *qp, uint32_t nsid, struct nvl_nvme_cpl *cpl)
{
	struct nvl_sync_state st = { 0 };

	return nvl_sync_wait(qp, &st, nvl_flush(qp, nsid, nvl_sync_cb, &st), cpl);
}
