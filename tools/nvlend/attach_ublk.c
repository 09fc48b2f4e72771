/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Attach mechanism "ublk": a userspace block device /dev/ublkbN served
 * through io_uring (Linux Documentation/block/ublk.rst; UAPI
 * linux/ublk_cmd.h). Control: io_uring URING_CMD on /dev/ublk-control
 * (128-byte SQEs) - ADD_DEV (queues, depth, buffer size), SET_PARAMS
 * (basic: sizes, volatile cache + FUA; discard: deallocate and write
 * zeroes), START_DEV once every queue fetched, STOP_DEV and DEL_DEV on
 * detach. Data: per queue, a thread with its own io_uring and its own
 * session queue (one NVMe queue pair) keeps FETCH_REQ / COMMIT_AND_FETCH_REQ
 * commands on /dev/ublkcN for each of its --qd tags; the request lies in
 * the mmap'ed descriptor array and its data in the tag's buffer (the
 * driver copies between that buffer and the request's pages).
 *
 * Commands are sent ioctl-encoded (_IOWR('u', nr, ...), which 6.12 takes
 * always); with a kernel that refuses that encoding, the legacy numbers.
 *
 * Threads: one per queue (the ublk "queue daemon": every command of a queue
 * must come from it), all signals blocked; the control ring is the attach
 * process's main thread's.
 */
#include "attach.h"
#include "attach_req.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/ublk_cmd.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define UB_BUF_BYTES (512u << 10)      /* per-tag buffer = largest request */
#define UB_POLL_MARK (1ULL << 63)       /* user_data of our POLL_ADDs */
#define UB_STOP_MARK (1ULL << 62)
#define UB_POLL_REMOVE 0xffULL          /* user_data slot of a POLL_REMOVE */

/* ioctl-encoded command numbers (ublk.rst; UBLK_U_* in newer headers) */
#define UB_CTRL_OP(nr, legacy) ((legacy) ? (uint32_t)(nr) \
					 : (uint32_t)_IOWR('u', nr, struct ublksrv_ctrl_cmd))
#define UB_IO_OP(nr, legacy) ((legacy) ? (uint32_t)(nr) \
				       : (uint32_t)_IOWR('u', nr, struct ublksrv_io_cmd))
#ifndef UBLK_F_CMD_IOCTL_ENCODE
#define UBLK_F_CMD_IOCTL_ENCODE (1ULL << 6)
#endif

struct ub_queue;

struct ub_tag {
	struct ub_queue *uq;
	uint16_t tag;
	uint8_t *buf;
	struct host_session_io io;
	bool busy;                /* a request is being served */
	bool aborted;             /* the driver is done with this tag */
};

struct ub_queue {
	struct ublk_attach *ua;
	uint16_t qid;
	struct io_uring ring;
	bool ring_ok;
	pthread_t thread;
	bool started;
	struct host_session_queue *q;
	struct ublksrv_io_desc *iods;  /* mmap'ed, read-only */
	size_t iods_len;
	struct ub_tag *tags;
	uint32_t naborted;
	bool poll_armed[2];
	uint64_t poll_epoch[2];    /* session queue epoch the armed poll belongs to */
	bool stop_armed;
	bool fetched;              /* atomic: every tag has its FETCH_REQ in */
	bool done;                 /* atomic: the thread ended */
};

struct ublk_attach {
	struct attach_ctx *a;
	int ctl_fd;                /* /dev/ublk-control */
	struct io_uring ctrl;
	bool ctrl_ok;
	bool legacy;
	int dev_id;
	bool added, started;
	int cdev;                  /* /dev/ublkcN */
	uint16_t nq;
	uint16_t depth;
	struct ub_queue uq[ATTACH_MAX_QUEUES];
	int stop_efd;
	uint64_t size;
	uint32_t bs;
	bool ro;
};

/* ---- control commands ---------------------------------------------------------------- */

/* One control command, waited for. \return the driver's result (>= 0) or -errno. */
static int
ub_ctrl(struct ublk_attach *ua, uint32_t nr, uint64_t addr, uint16_t len, uint64_t data0)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ua->ctrl);
	struct ublksrv_ctrl_cmd *cmd;
	struct io_uring_cqe *cqe;
	int rc;

	if (sqe == NULL)
		return -EBUSY;
	memset(sqe, 0, 2 * sizeof(*sqe)); /* a 128-byte SQE */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = ua->ctl_fd;
	sqe->cmd_op = UB_CTRL_OP(nr, ua->legacy);
	cmd = (struct ublksrv_ctrl_cmd *)sqe->cmd;
	cmd->dev_id = (uint32_t)ua->dev_id;
	cmd->queue_id = (uint16_t)-1;
	cmd->addr = addr;
	cmd->len = len;
	cmd->data[0] = data0;
	rc = io_uring_submit(&ua->ctrl);
	if (rc < 0)
		return rc;
	do {
		rc = io_uring_wait_cqe(&ua->ctrl, &cqe);
	} while (rc == -EINTR);
	if (rc < 0)
		return rc;
	rc = cqe->res;
	io_uring_cqe_seen(&ua->ctrl, cqe);
	return rc;
}

/* ---- I/O commands (queue threads) ----------------------------------------------------- */

static void
ub_queue_cmd(struct ub_queue *uq, uint32_t nr, uint16_t tag, int32_t result)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&uq->ring);
	struct ublksrv_io_cmd *cmd;

	if (sqe == NULL) {
		io_uring_submit(&uq->ring);
		sqe = io_uring_get_sqe(&uq->ring);
		if (sqe == NULL)
			return; /* cannot happen: the ring has a slot per tag and more */
	}
	memset(sqe, 0, 2 * sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = uq->ua->cdev;
	sqe->cmd_op = UB_IO_OP(nr, uq->ua->legacy);
	sqe->user_data = tag;
	cmd = (struct ublksrv_io_cmd *)sqe->cmd;
	cmd->q_id = uq->qid;
	cmd->tag = tag;
	cmd->result = result;
	cmd->addr = (uint64_t)(uintptr_t)uq->tags[tag].buf;
}

static void
ub_io_done(struct host_session_io *io, int status)
{
	struct ub_tag *t = io->ctx;
	int32_t res = status;

	/* a read or write reports its bytes; the others 0 */
	if (status == 0)
		res = io->op == HOST_SESSION_READ || io->op == HOST_SESSION_WRITE ? (int32_t)io->len
										  : 0;
	else if (status == -ESHUTDOWN)
		res = -EIO;
	t->busy = false;
	ub_queue_cmd(t->uq, UBLK_IO_COMMIT_AND_FETCH_REQ, t->tag, res);
}

/* A request arrived for tag: validate the driver's descriptor (copied
 * first: it lives in shared memory), start the I/O. */
static void
ub_request(struct ub_queue *uq, struct ub_tag *t)
{
	struct ublk_attach *ua = uq->ua;
	struct ublksrv_io_desc d = uq->iods[t->tag];
	struct host_session_io *io = &t->io;
	int rc;

	memset(io, 0, sizeof(*io));
	/* what the kernel may ask (attach_req.c) */
	rc = attach_ublk_req((uint8_t)ublksrv_get_op(&d), ublksrv_get_flags(&d), d.start_sector,
			     d.nr_sectors, ua->size, UB_BUF_BYTES, io);
	if (rc < 0) {
		ub_queue_cmd(uq, UBLK_IO_COMMIT_AND_FETCH_REQ, t->tag, rc);
		return;
	}
	io->buf = t->buf;
	io->cb = ub_io_done;
	io->ctx = t;
	t->busy = true;
	rc = host_session_queue_submit(uq->q, io);
	if (rc < 0) {
		t->busy = false;
		ub_queue_cmd(uq, UBLK_IO_COMMIT_AND_FETCH_REQ, t->tag, rc);
	}
}

/* Poll fd (a session queue fd) through the ring. A poll armed on an older
 * queue pair's fd (before a reconnect; the number may even be reused) is
 * removed and armed again. */
static void
ub_arm_poll(struct ub_queue *uq, int slot, int fd, short events)
{
	uint64_t epoch = host_session_queue_epoch(uq->q);
	struct io_uring_sqe *sqe;

	if (uq->poll_armed[slot] && uq->poll_epoch[slot] == epoch)
		return;
	if (uq->poll_armed[slot]) {
		sqe = io_uring_get_sqe(&uq->ring);
		if (sqe == NULL)
			return;
		io_uring_prep_poll_remove(sqe, UB_POLL_MARK | (uq->poll_epoch[slot] << 8) |
						       (uint64_t)slot);
		sqe->user_data = UB_POLL_MARK | UB_POLL_REMOVE;
	}
	sqe = io_uring_get_sqe(&uq->ring);
	if (sqe == NULL)
		return;
	io_uring_prep_poll_add(sqe, fd, (unsigned)events);
	sqe->user_data = UB_POLL_MARK | (epoch << 8) | (uint64_t)slot;
	uq->poll_armed[slot] = true;
	uq->poll_epoch[slot] = epoch;
}

static void *
ub_queue_thread(void *arg)
{
	struct ub_queue *uq = arg;
	struct ublk_attach *ua = uq->ua;
	bool stopping = false;

	for (uint16_t t = 0; t < ua->depth; t++)
		ub_queue_cmd(uq, UBLK_IO_FETCH_REQ, t, -1);
	{
		struct io_uring_sqe *sqe = io_uring_get_sqe(&uq->ring);

		io_uring_prep_poll_add(sqe, ua->stop_efd, POLLIN);
		sqe->user_data = UB_STOP_MARK;
	}
	io_uring_submit(&uq->ring);
	__atomic_store_n(&uq->fetched, true, __ATOMIC_RELEASE);
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		int done, rc;

		io_uring_for_each_cqe(&uq->ring, head, cqe) {
			uint64_t ud = cqe->user_data;

			n++;
			if (ud == UB_STOP_MARK) {
				stopping = true;
			} else if (ud & UB_POLL_MARK) {
				unsigned slot = (unsigned)(ud & 0xff);

				/* a poll fired (or was removed): only the current one counts */
				if (slot < 2 && ((ud & ~UB_POLL_MARK) >> 8) == uq->poll_epoch[slot])
					uq->poll_armed[slot] = false;
			} else if (ud < ua->depth) {
				struct ub_tag *t = &uq->tags[ud];

				if (cqe->res == UBLK_IO_RES_OK) {
					ub_request(uq, t);
				} else if (!t->aborted) {
					/* UBLK_IO_RES_ABORT: the device is going away */
					t->aborted = true;
					uq->naborted++;
					if (cqe->res != UBLK_IO_RES_ABORT)
						attach_log("%s: ublk queue %u tag %u: %s",
							   ua->a->rec.name, uq->qid, t->tag,
							   strerror(-cqe->res));
				}
			}
		}
		io_uring_cq_advance(&uq->ring, n);
		done = host_session_queue_poll(uq->q, 0);
		if (uq->naborted == ua->depth ||
		    (stopping && host_session_queue_outstanding(uq->q) == 0))
			break;
		if (n || done) {
			io_uring_submit(&uq->ring);
			continue;
		}
		{
			struct pollfd pfd[2];
			int np = host_session_queue_pollfds(uq->q, pfd, 2);

			if (np == -EAGAIN) {
				io_uring_submit(&uq->ring);
				continue;
			}
			for (int i = 0; i < np; i++)
				ub_arm_poll(uq, i, pfd[i].fd, pfd[i].events);
			if (np == -EOPNOTSUPP && host_session_queue_outstanding(uq->q)) {
				struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 1000000 };

				io_uring_submit(&uq->ring);
				rc = io_uring_wait_cqe_timeout(&uq->ring, &cqe, &ts);
			} else {
				rc = io_uring_submit_and_wait(&uq->ring, 1);
			}
			if (rc < 0 && rc != -EINTR && rc != -ETIME && rc != -EAGAIN) {
				attach_log("%s: ublk queue %u: io_uring: %s", ua->a->rec.name,
					   uq->qid, strerror(-rc));
				break;
			}
		}
	}
	__atomic_store_n(&uq->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* ---- mechanism ops -------------------------------------------------------------------- */

static bool
ub_available(const struct attach_opts *o, char *why, size_t len)
{
	if (access("/dev/ublk-control", F_OK) < 0) {
		snprintf(why, len, "no /dev/ublk-control (modprobe ublk_drv; Linux 6.0+)");
		return false;
	}
	if (access("/dev/ublk-control", R_OK | W_OK) < 0) {
		snprintf(why, len, "/dev/ublk-control: %s", strerror(errno));
		return false;
	}
	return true;
}

static void ub_stop(struct attach_ctx *a);

static int
ub_add_dev(struct ublk_attach *ua)
{
	struct ublksrv_ctrl_dev_info info;
	int rc;

	for (int attempt = 0; attempt < 2; attempt++) {
		memset(&info, 0, sizeof(info));
		info.nr_hw_queues = ua->nq;
		info.queue_depth = ua->depth;
		info.max_io_buf_bytes = UB_BUF_BYTES;
		info.dev_id = (uint32_t)-1;
		info.ublksrv_pid = getpid();
		info.flags = ua->legacy ? 0 : UBLK_F_CMD_IOCTL_ENCODE;
		ua->dev_id = -1;
		rc = ub_ctrl(ua, UBLK_CMD_ADD_DEV, (uint64_t)(uintptr_t)&info, sizeof(info), 0);
		if (rc >= 0) {
			ua->dev_id = (int)info.dev_id;
			ua->depth = info.queue_depth;
			return 0;
		}
		if (ua->legacy || (rc != -EOPNOTSUPP && rc != -EINVAL))
			break;
		ua->legacy = true; /* a kernel that knows only the first numbering */
	}
	return rc;
}

static int
ub_set_params(struct ublk_attach *ua)
{
	struct ublk_params p;
	unsigned shift = (unsigned)__builtin_ctz(ua->bs);

	memset(&p, 0, sizeof(p));
	p.len = sizeof(p);
	/* no discard parameters on a read-only device: the driver wants them valid or absent */
	p.types = UBLK_PARAM_TYPE_BASIC | (ua->ro ? 0 : UBLK_PARAM_TYPE_DISCARD);
	/* a volatile cache (flush -> NVMe Flush) and FUA, as the namespace has */
	p.basic.attrs = UBLK_ATTR_VOLATILE_CACHE | UBLK_ATTR_FUA |
			(ua->ro ? UBLK_ATTR_READ_ONLY : 0);
	p.basic.logical_bs_shift = (uint8_t)shift;
	p.basic.physical_bs_shift = (uint8_t)shift;
	p.basic.io_min_shift = (uint8_t)shift;
	p.basic.io_opt_shift = (uint8_t)shift;
	p.basic.max_sectors = UB_BUF_BYTES >> 9;
	p.basic.dev_sectors = ua->size >> 9;
	if (!ua->ro) {
		p.discard.discard_granularity = ua->bs;
		p.discard.max_discard_sectors = UINT32_MAX >> 9;
		p.discard.max_write_zeroes_sectors = UINT32_MAX >> 9;
		p.discard.max_discard_segments = 1;
	}
	return ub_ctrl(ua, UBLK_CMD_SET_PARAMS, (uint64_t)(uintptr_t)&p, sizeof(p), 0);
}

static int
ub_start(struct attach_ctx *a)
{
	struct ublk_attach *ua;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char path[64];
	int rc;

	ua = calloc(1, sizeof(*ua));
	if (ua == NULL)
		return -ENOMEM;
	a->priv = ua;
	ua->a = a;
	ua->ctl_fd = -1;
	ua->cdev = -1;
	ua->dev_id = -1;
	ua->size = host_session_size(a->s);
	ua->bs = host_session_ns(a->s)->block_size;
	ua->ro = host_session_readonly(a->s);
	/* the driver takes at most one queue per CPU */
	ua->nq = (uint16_t)NVL_MIN((long)a->o.queues, ncpu > 0 ? ncpu : 1);
	ua->depth = (uint16_t)NVL_MIN(a->o.qd, (uint32_t)UBLK_MAX_QUEUE_DEPTH);
	ua->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ua->stop_efd < 0) {
		rc = -errno;
		goto err;
	}
	if (ua->bs < 512 || ua->bs > 4096) {
		fprintf(stderr, "nvlend attach: block size %u: ublk takes 512..4096\n", ua->bs);
		rc = -EINVAL;
		goto err;
	}
	ua->ctl_fd = open("/dev/ublk-control", O_RDWR | O_CLOEXEC);
	if (ua->ctl_fd < 0) {
		rc = -errno;
		fprintf(stderr, "nvlend attach: /dev/ublk-control: %s\n", strerror(errno));
		goto err;
	}
	rc = io_uring_queue_init(4, &ua->ctrl, IORING_SETUP_SQE128);
	if (rc < 0) {
		fprintf(stderr, "nvlend attach: io_uring with 128-byte SQEs: %s\n", strerror(-rc));
		goto err;
	}
	ua->ctrl_ok = true;
	rc = ub_add_dev(ua);
	if (rc < 0) {
		fprintf(stderr, "nvlend attach: ublk ADD_DEV: %s\n", strerror(-rc));
		goto err;
	}
	ua->added = true;
	rc = ub_set_params(ua);
	if (rc < 0) {
		fprintf(stderr, "nvlend attach: ublk SET_PARAMS: %s\n", strerror(-rc));
		goto err;
	}
	snprintf(path, sizeof(path), "/dev/ublkc%d", ua->dev_id);
	attach_wait_path(path, true, 2000);
	ua->cdev = open(path, O_RDWR | O_CLOEXEC);
	if (ua->cdev < 0) {
		rc = -errno;
		fprintf(stderr, "nvlend attach: %s: %s\n", path, strerror(errno));
		goto err;
	}
	for (uint16_t qi = 0; qi < ua->nq; qi++) {
		struct ub_queue *uq = &ua->uq[qi];
		size_t len = NVL_ALIGN_UP((size_t)ua->depth * sizeof(struct ublksrv_io_desc), page);
		void *m;

		uq->ua = ua;
		uq->qid = qi;
		rc = host_session_queue_create(a->s, ua->depth, &uq->q);
		if (rc < 0) {
			fprintf(stderr, "nvlend attach: I/O queue %u: %s\n", qi + 1, strerror(-rc));
			goto err;
		}
		/* queue qi's descriptors start at qi x the largest array (depth 4096) */
		m = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, ua->cdev,
			 (off_t)(UBLKSRV_CMD_BUF_OFFSET +
				 qi * NVL_ALIGN_UP((size_t)UBLK_MAX_QUEUE_DEPTH *
							   sizeof(struct ublksrv_io_desc),
						   page)));
		if (m == MAP_FAILED) {
			rc = -errno;
			fprintf(stderr, "nvlend attach: mapping the I/O descriptors: %s\n",
				strerror(errno));
			goto err;
		}
		uq->iods = m;
		uq->iods_len = len;
		uq->tags = calloc(ua->depth, sizeof(*uq->tags));
		if (uq->tags == NULL) {
			rc = -ENOMEM;
			goto err;
		}
		for (uint16_t t = 0; t < ua->depth; t++) {
			uq->tags[t].uq = uq;
			uq->tags[t].tag = t;
			if (posix_memalign((void **)&uq->tags[t].buf, page, UB_BUF_BYTES)) {
				rc = -ENOMEM;
				goto err;
			}
		}
		rc = io_uring_queue_init(ua->depth + 8u, &uq->ring, IORING_SETUP_SQE128);
		if (rc < 0)
			goto err;
		uq->ring_ok = true;
	}
	for (uint16_t qi = 0; qi < ua->nq; qi++) {
		if (pthread_create(&ua->uq[qi].thread, NULL, ub_queue_thread, &ua->uq[qi]) != 0) {
			rc = -EAGAIN;
			goto err;
		}
		ua->uq[qi].started = true;
	}
	for (uint16_t qi = 0; qi < ua->nq; qi++)
		while (!__atomic_load_n(&ua->uq[qi].fetched, __ATOMIC_ACQUIRE) &&
		       !__atomic_load_n(&ua->uq[qi].done, __ATOMIC_ACQUIRE))
			usleep(1000);
	/* returns once every queue's FETCH_REQs are in: the device appears */
	rc = ub_ctrl(ua, UBLK_CMD_START_DEV, 0, 0, (uint64_t)getpid());
	if (rc < 0) {
		fprintf(stderr, "nvlend attach: ublk START_DEV: %s\n", strerror(-rc));
		goto err;
	}
	ua->started = true;
	snprintf(a->rec.device, sizeof(a->rec.device), "/dev/ublkb%d", ua->dev_id);
	if (!attach_wait_path(a->rec.device, true, 5000)) {
		fprintf(stderr, "nvlend attach: %s did not appear\n", a->rec.device);
		rc = -ENODEV;
		goto err;
	}
	snprintf(a->rec.backing, sizeof(a->rec.backing), "/dev/ublkc%d", ua->dev_id);
	return 0;
err:
	ub_stop(a);
	return rc;
}

static void
ub_stop(struct attach_ctx *a)
{
	struct ublk_attach *ua = a->priv;
	uint64_t one = 1;

	if (ua == NULL)
		return;
	if (ua->started) {
		/* in-flight requests finish (or fail, when forced) first */
		if (ub_ctrl(ua, UBLK_CMD_STOP_DEV, 0, 0, 0) < 0)
			attach_log("%s: ublk STOP_DEV failed", a->rec.name);
	}
	if (ua->stop_efd >= 0)
		(void)!write(ua->stop_efd, &one, sizeof(one));
	for (uint16_t qi = 0; qi < ua->nq; qi++) {
		struct ub_queue *uq = &ua->uq[qi];

		if (uq->started)
			pthread_join(uq->thread, NULL);
		/* closing the ring cancels the fetch commands still queued */
		if (uq->ring_ok)
			io_uring_queue_exit(&uq->ring);
		host_session_queue_destroy(uq->q);
		if (uq->iods)
			munmap(uq->iods, uq->iods_len);
		if (uq->tags)
			for (uint16_t t = 0; t < ua->depth; t++)
				free(uq->tags[t].buf);
		free(uq->tags);
	}
	if (ua->cdev >= 0)
		close(ua->cdev);
	if (ua->added && ub_ctrl(ua, UBLK_CMD_DEL_DEV, 0, 0, 0) < 0)
		attach_log("%s: ublk DEL_DEV failed", a->rec.name);
	if (ua->ctrl_ok)
		io_uring_queue_exit(&ua->ctrl);
	if (ua->ctl_fd >= 0)
		close(ua->ctl_fd);
	if (ua->stop_efd >= 0)
		close(ua->stop_efd);
	free(ua);
	a->priv = NULL;
}

static bool
ub_alive(struct attach_ctx *a)
{
	struct ublk_attach *ua = a->priv;

	for (uint16_t qi = 0; ua && qi < ua->nq; qi++)
		if (__atomic_load_n(&ua->uq[qi].done, __ATOMIC_ACQUIRE))
			return false;
	return ua != NULL;
}

/* Leftovers of a dead attach process: its device (the driver aborted its
 * I/O when the char device closed); delete it. */
static int
ub_detach_record(const struct attach_record *r)
{
	struct ublk_attach ua = { .ctl_fd = -1 };
	int id, rc;

	if (sscanf(r->device, "/dev/ublkb%d", &id) != 1)
		return 0;
	ua.ctl_fd = open("/dev/ublk-control", O_RDWR | O_CLOEXEC);
	if (ua.ctl_fd < 0)
		return -errno;
	rc = io_uring_queue_init(4, &ua.ctrl, IORING_SETUP_SQE128);
	if (rc == 0) {
		ua.dev_id = id;
		if (ub_ctrl(&ua, UBLK_CMD_STOP_DEV, 0, 0, 0) == -EOPNOTSUPP) {
			ua.legacy = true;
			ub_ctrl(&ua, UBLK_CMD_STOP_DEV, 0, 0, 0);
		}
		rc = ub_ctrl(&ua, UBLK_CMD_DEL_DEV, 0, 0, 0);
		io_uring_queue_exit(&ua.ctrl);
	}
	close(ua.ctl_fd);
	return rc < 0 ? rc : 0;
}

const struct attach_mech g_attach_ublk = {
	.name = "ublk",
	.available = ub_available,
	.start = ub_start,
	.stop = ub_stop,
	.alive = ub_alive,
	.detach_record = ub_detach_record,
};
