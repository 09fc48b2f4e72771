/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The adaptive read hold of an NBD connection in transmission (docs/nbd.md
 * "Read hold"): whether, and how long, to delay a connection's read so that
 * several requests gather in its socket. The hold time is chosen per
 * connection by util/dim (the comment above nbd_hold_rx says why and how).
 *
 * Owns struct nbd_hold of each connection and the due-ordered list of held
 * reads of each reactor (struct nbd_rctx.held). Threads: the connection's
 * reactor only (nbd_hold_init runs on reactor 0 before the connection moves,
 * and the move is a message, which orders it).
 */
#include "nbd/nbd_internal.h"
#include "reactor/reactor.h"
#include "util/util.h"

#include <sched.h>

/* Read holding (nbd_hold_rx): see the comment there. */
#define NBD_HOLD_MIN_SPIN_US 50                /* hold only on a reactor that spins anyway */
#define NBD_PROBE_GAP_MIN    16                /* reads between trial holds, after a miss */
#define NBD_PROBE_GAP_MAX    1024
#define NBD_DIM_EPOCH        1024              /* requests per hold-time measurement */
#define NBD_HOLD_LEVELS_NS   { 0, 8000, 16000, 32000 } /* hold times tried (nbd_hold_rx) */
#define NBD_DIM_EPOCH_MAX_NS (200ull * 1000000) /* longer: the client idled, no verdict */

static const uint32_t g_nbd_hold_ns[] = NBD_HOLD_LEVELS_NS;

void
nbd_hold_init(struct nbd_conn *c, bool on)
{
	c->hold.on = on;
	nvl_dim_init(&c->hold.dim, NVL_ARRAY_SIZE(g_nbd_hold_ns));
	c->hold.dim_start = nvl_now_ns();
}

/* Every NBD_DIM_EPOCH requests: report the epoch's request rate. */
static void
nbd_hold_dim_epoch(struct nbd_conn *c, uint64_t now)
{
	uint64_t elapsed = now - c->hold.dim_start;
	uint32_t n = c->hdrs - c->hold.dim_hdrs;
	uint64_t rate;

	c->hold.dim_start = now;
	c->hold.dim_hdrs = c->hdrs;
	/* an idle stretch says nothing about the hold: rate 0 */
	if (elapsed == 0 || elapsed > NBD_DIM_EPOCH_MAX_NS)
		rate = 0;
	else
		rate = (uint64_t)n * 1000000000ull / elapsed;
	c->hold.level = (uint8_t)nvl_dim_epoch(&c->hold.dim, rate);
}

/*
 * Read holding. A client that keeps many requests in flight (fio or qemu at
 * a high queue depth) is often the bottleneck: its CPU pays per wake-up and
 * per segment, while a spinning reactor answers each request the moment it
 * lands, so the client takes its replies one wake-up at a time. Holding a
 * connection's read for a few microseconds lets several requests gather in
 * the socket; one readv() takes them and their replies leave in one
 * sendmsg(), which the client takes in one wake-up.
 *
 * Whether that pays depends on the client, which we cannot see: at queue
 * depth 8-32 it saves the client's CPU (+2-14% IOPS measured, most for
 * writes); at depth 2-4 the client waits for us and loses more than it saves
 * (-9% at depth 2 with an 8 us hold). So the hold time is chosen by
 * measurement, per connection, the way the kernel's dynamic interrupt
 * moderation (lib/dim) chooses its moderation: the requests per second of
 * an epoch (NBD_DIM_EPOCH requests) are compared with the previous epoch's;
 * a step that helped is followed by another in the same direction, one that
 * hurt is taken back, and after NVL_DIM_TIRED epochs with no clear change
 * the controller tries a step (util/dim.h).
 *
 * A hold is a wait only on a reactor that spins anyway (--spin-us >=
 * NBD_HOLD_MIN_SPIN_US): the held read is done by nbd_hold_poll() when due, and
 * the reactor stays awake until then. While the holds do not bring at least
 * two requests per read on average (a queue-depth-1 client) holding stops;
 * the next trial comes after a gap that doubles with each miss, up to one
 * per NBD_PROBE_GAP_MAX reads, so such a client hardly pays for the search.
 * A reactor that sleeps at once (--spin-us 0) most likely shares its CPU
 * with its client and must not burn it: there a hold is one sched_yield()
 * before the read, so the client runs on and sends more first (+15-18% at
 * queue depth 32 on one CPU, measured); a yield that finds nobody to run
 * costs a syscall, and the rate alone judges it.
 *
 * nbd_hold_rx() is called on EPOLLIN before the read. \return true if the
 * read is held for nbd_hold_poll() to do when due; false: read now (after a
 * yield, maybe).
 */
bool
nbd_hold_rx(struct nbd_conn *c)
{
	struct nbd_conn *prev;
	uint64_t now;

	if (!c->hold.on || c->rx != NBD_RX_HDR || c->rctx == NULL)
		return false;
	if (c->hdrs - c->hold.dim_hdrs >= NBD_DIM_EPOCH)
		nbd_hold_dim_epoch(c, nvl_now_ns());
	if (c->hold.level == 0)
		return false;
	if (nvl_reactor_get_spin_us() < NBD_HOLD_MIN_SPIN_US) {
		/* a reactor that sleeps at once likely shares its CPU with the
		 * client: let the client run on and send more before we read.
		 * A yield costs a syscall, not a wait: the rate alone judges it. */
		NBD_ST_ADD(c, held_reads, 1);
		sched_yield();
		return false;
	}
	if (!c->hold.holding && c->hold.probe_in) {
		c->hold.probe_in--;
		return false;
	}
	c->hold.hdrs = c->hdrs;
	if (!c->hold.holding)
		c->hold.avg16 = 2 * 16; /* a trial: its own result decides */
	NBD_ST_ADD(c, held_reads, 1);
	now = nvl_now_ns();
	c->hold.until = now + g_nbd_hold_ns[c->hold.level];
	/* keep the list in due order (connections may hold for different times) */
	prev = TAILQ_LAST(&c->rctx->held, nbd_held);
	while (prev && prev->hold.until > c->hold.until)
		prev = TAILQ_PREV(prev, nbd_held, hold.link);
	if (prev)
		TAILQ_INSERT_AFTER(&c->rctx->held, prev, c, hold.link);
	else
		TAILQ_INSERT_HEAD(&c->rctx->held, c, hold.link);
	return true;
}

/* After a timed hold's read: did holds bring batches? */
void
nbd_hold_judge(struct nbd_conn *c)
{
	uint32_t n = NVL_MIN(c->hdrs - c->hold.hdrs, 16u);

	/* requests per held read, moving mean (x16, weight 1/8): one hold that
	 * catches a lull does not stop holding; going on needs a mean of 2+ */
	c->hold.avg16 = c->hold.avg16 - c->hold.avg16 / 8 + n * 16 / 8;
	if (c->hold.avg16 >= 2 * 16) {
		c->hold.holding = true;
		c->hold.probe_gap = NBD_PROBE_GAP_MIN;
	} else {
		c->hold.holding = false;
		c->hold.probe_gap = c->hold.probe_gap
					    ? NVL_MIN(c->hold.probe_gap * 2, NBD_PROBE_GAP_MAX)
					    : NBD_PROBE_GAP_MIN;
		c->hold.probe_in = c->hold.probe_gap;
	}
}

void
nbd_hold_cancel(struct nbd_conn *c)
{
	if (c->hold.until) {
		TAILQ_REMOVE(&c->rctx->held, c, hold.link);
		c->hold.until = 0;
	}
}

int
nbd_hold_poll(struct nbd_rctx *x)
{
	struct nbd_conn *c;
	uint64_t now;

	if (TAILQ_EMPTY(&x->held))
		return 0;
	now = nvl_now_ns();
	while ((c = TAILQ_FIRST(&x->held)) != NULL && c->hold.until <= now) {
		TAILQ_REMOVE(&x->held, c, hold.link);
		c->hold.until = 0;
		nbd_conn_held_rx(c);
	}
	return 1;
}
