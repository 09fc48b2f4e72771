/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Attach mechanism "nbd": the kernel's NBD client on /dev/nbdN, fed over
 * socket pairs. The attach process configures the device with the NBD
 * ioctls (NBD_SET_BLKSIZE, NBD_SET_SIZE_BLOCKS, NBD_SET_FLAGS, one
 * NBD_SET_SOCK per queue: the kernel makes one hardware queue per socket,
 * which needs NBD_FLAG_CAN_MULTI_CONN), runs NBD_DO_IT in a thread, and
 * serves the transmission phase on its end of each pair, with the one NBD
 * codec (src/proto/nbd.c) and the parameters of attach_nbd.h. No NBD
 * timeout is set: while the target is away requests wait (the kernel only
 * reports them as stuck), bounded by the session's reconnect timeout.
 *
 * Threads: one per connection, owning its socket and its session queue (one
 * NVMe queue pair) with up to --qd requests in flight; it waits on the
 * socket and on the queue's completion interrupt at once. One more thread
 * sits in NBD_DO_IT. All signals are blocked in them.
 */
#include "attach.h"
#include "attach_nbd.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nbd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

struct na_conn;

struct na_slot {
	struct host_session_io io;
	struct nbd_req_hdr req;
	struct na_conn *c;
	uint8_t *buf;
	size_t cap;
	uint32_t err;             /* answer without I/O (validation failed) */
	struct na_slot *next_free;
};

struct na_conn {
	struct nbd_attach *na;
	unsigned idx;
	int sock;
	pthread_t thread;
	bool started;
	struct host_session_queue *q;
	struct na_slot *slots;
	struct na_slot *free;
	uint32_t busy;
	/* receive state */
	uint8_t hdr[NBD_REQ_HDR_SIZE];
	size_t hdr_got;
	struct na_slot *rx;      /* a write whose payload is arriving */
	size_t rx_got;
	size_t rx_discard;        /* payload bytes of a refused write still to skip */
	bool eof;                 /* the kernel closed its end or sent DISC */
	bool broken;              /* protocol error or send failure */
};

struct nbd_attach {
	struct attach_ctx *a;
	int fd;                   /* /dev/nbdN */
	int nr;
	uint32_t nconn;
	struct na_conn conn[ATTACH_MAX_QUEUES];
	pthread_t doit;
	bool doit_started;
	bool doit_done;           /* atomic: set by the NBD_DO_IT thread */
	int stop_efd;
	struct nbd_xparams xp;    /* what the kernel was told (attach_nbd_xparams) */
};

/* ---- sending --------------------------------------------------------------------- */

static int
na_send_all(struct na_conn *c, struct iovec *iov, int n)
{
	while (n > 0) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(c->sock, &mh, MSG_NOSIGNAL);

		if (w < 0) {
			struct pollfd p = { .fd = c->sock, .events = POLLOUT };

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			poll(&p, 1, 1000);
			continue;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static void
na_slot_put(struct na_conn *c, struct na_slot *s)
{
	s->next_free = c->free;
	c->free = s;
	c->busy--;
}

static void
na_reply(struct na_conn *c, struct na_slot *s, uint32_t err)
{
	uint8_t hdr[NBD_SIMPLE_HDR_SIZE];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { s->buf, 0 } };
	int n = 1;

	nbd_enc_simple(hdr, s->req.handle, err);
	if (err == 0 && s->req.type == NVL_NBD_CMD_READ) {
		iov[1].iov_len = s->req.length;
		n = 2;
	}
	if (!c->broken && na_send_all(c, iov, n) < 0)
		c->broken = true; /* the kernel side is gone: stop serving */
	na_slot_put(c, s);
}

static void
na_io_done(struct host_session_io *io, int status)
{
	struct na_slot *s = io->ctx;

	na_reply(s->c, s, nbd_errno_to_nbd(status));
}

/* ---- receiving ---------------------------------------------------------------------- */

static int
na_slot_reserve(struct na_slot *s, size_t len)
{
	void *p;

	if (s->cap >= len)
		return 0;
	free(s->buf);
	s->buf = NULL;
	s->cap = 0;
	if (posix_memalign(&p, 4096, NVL_ALIGN_UP(len, 4096)))
		return -ENOMEM;
	s->buf = p;
	s->cap = len;
	return 0;
}

/* A request is complete (header, and payload for writes): run it. */
static void
na_request_start(struct na_conn *c, struct na_slot *s)
{
	struct host_session_io *io = &s->io;
	int rc;

	if (s->err) {
		na_reply(c, s, s->err);
		return;
	}
	memset(io, 0, sizeof(*io));
	io->offset = s->req.offset;
	io->len = s->req.length;
	io->buf = s->buf;
	io->cb = na_io_done;
	io->ctx = s;
	switch (s->req.type) {
	case NVL_NBD_CMD_READ:
		io->op = HOST_SESSION_READ;
		break;
	case NVL_NBD_CMD_WRITE:
		io->op = HOST_SESSION_WRITE;
		io->flags = (s->req.flags & NVL_NBD_CMD_FLAG_FUA) ? HOST_SESSION_F_FUA : 0;
		break;
	case NVL_NBD_CMD_FLUSH:
		io->op = HOST_SESSION_FLUSH;
		break;
	case NVL_NBD_CMD_TRIM:
		/* TRIM may leave any content: Deallocate is exactly that */
		io->op = HOST_SESSION_DISCARD;
		break;
	case NVL_NBD_CMD_WRITE_ZEROES:
		io->op = HOST_SESSION_WRITE_ZEROES;
		/* NO_HOLE: the zeroes must be allocated; else deallocating is fine */
		io->flags = (s->req.flags & NVL_NBD_CMD_FLAG_NO_HOLE) ? 0
									 : HOST_SESSION_F_DEALLOC;
		if (s->req.flags & NVL_NBD_CMD_FLAG_FUA)
			io->flags |= HOST_SESSION_F_FUA;
		break;
	case NVL_NBD_CMD_CACHE:
		na_reply(c, s, 0); /* a hint: nothing cached here */
		return;
	default:
		na_reply(c, s, NVL_NBD_EINVAL);
		return;
	}
	rc = host_session_queue_submit(c->q, io);
	if (rc < 0)
		na_reply(c, s, nbd_errno_to_nbd(rc));
}

/* A full header arrived. */
static void
na_header_done(struct na_conn *c)
{
	struct nbd_attach *na = c->na;
	struct nbd_req_hdr req;
	struct na_slot *s;
	const char *why;

	c->hdr_got = 0;
	if (!nbd_req_decode(c->hdr, &req)) {
		attach_log("%s: nbd%d: bad request magic: dropping the connection",
			   na->a->rec.name, na->nr);
		c->broken = true;
		return;
	}
	if (req.type == NVL_NBD_CMD_DISC) {
		c->eof = true;
		return;
	}
	s = c->free;
	c->free = s->next_free;
	c->busy++;
	s->req = req;
	s->err = nbd_req_check(&na->xp, &req, &why);
	if (s->err == 0 && (req.type == NVL_NBD_CMD_READ || req.type == NVL_NBD_CMD_WRITE) &&
	    na_slot_reserve(s, req.length) < 0)
		s->err = NVL_NBD_ENOMEM;
	if (req.type == NVL_NBD_CMD_WRITE) {
		if (s->err) {
			/* the payload follows anyway: skip it, then answer */
			if (req.length > NBD_MAX_PAYLOAD) {
				c->broken = true; /* cannot resynchronize safely */
				na_slot_put(c, s);
				return;
			}
			c->rx_discard = req.length;
			if (req.length == 0) {
				na_request_start(c, s); /* nothing follows: answer now */
				return;
			}
		}
		c->rx = s;
		c->rx_got = 0;
		return;
	}
	na_request_start(c, s);
}

/* Read what the socket has, as long as a slot is free. \return bytes consumed. */
static size_t
na_rx_pump(struct na_conn *c)
{
	size_t total = 0;

	while (!c->eof && !c->broken) {
		ssize_t n;

		if (c->rx) {
			struct na_slot *s = c->rx;

			if (c->rx_discard) {
				uint8_t junk[4096];

				n = recv(c->sock, junk, NVL_MIN(sizeof(junk), c->rx_discard),
					 MSG_DONTWAIT);
				if (n > 0)
					c->rx_discard -= (size_t)n;
			} else {
				n = recv(c->sock, s->buf + c->rx_got, s->req.length - c->rx_got,
					 MSG_DONTWAIT);
				if (n > 0)
					c->rx_got += (size_t)n;
			}
			if (n > 0 && c->rx_discard == 0 && (s->err || c->rx_got == s->req.length)) {
				c->rx = NULL;
				na_request_start(c, s);
			}
		} else {
			if (c->free == NULL)
				break; /* --qd requests in flight: back-pressure on the socket */
			n = recv(c->sock, c->hdr + c->hdr_got, sizeof(c->hdr) - c->hdr_got,
				 MSG_DONTWAIT);
			if (n > 0) {
				c->hdr_got += (size_t)n;
				if (c->hdr_got == sizeof(c->hdr))
					na_header_done(c);
			}
		}
		if (n == 0) {
			c->eof = true;
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				c->broken = true;
			break;
		}
		total += (size_t)n;
	}
	return total;
}

static void *
na_conn_thread(void *arg)
{
	struct na_conn *c = arg;
	struct nbd_attach *na = c->na;

	while (!c->broken && !(c->eof && host_session_queue_outstanding(c->q) == 0)) {
		struct pollfd pfd[4];
		int nq, n = 0, tmo = -1;
		size_t got = na_rx_pump(c);
		int done = host_session_queue_poll(c->q, 0);

		if (got || done)
			continue;
		pfd[n].fd = na->stop_efd;
		pfd[n++].events = POLLIN;
		if (!c->eof) {
			pfd[n].fd = c->sock;
			pfd[n++].events = c->free || c->rx ? POLLIN | POLLRDHUP : POLLRDHUP;
		}
		nq = host_session_queue_pollfds(c->q, pfd + n, 2);
		if (nq == -EAGAIN)
			continue;
		if (nq == -EOPNOTSUPP)
			tmo = 1; /* no completion fd: check again in 1 ms */
		else if (nq > 0)
			n += nq;
		if (poll(pfd, (nfds_t)n, tmo) < 0 && errno != EINTR)
			break;
		if ((pfd[0].revents & POLLIN) && host_session_queue_outstanding(c->q) == 0)
			break;
	}
	return NULL;
}

static void *
na_doit_thread(void *arg)
{
	struct nbd_attach *na = arg;

	/* serves until NBD_DISCONNECT (or all sockets closed) */
	if (ioctl(na->fd, NBD_DO_IT) < 0 && errno != EPIPE && errno != ENOTCONN)
		attach_log("%s: NBD_DO_IT: %s", na->a->rec.name, strerror(errno));
	__atomic_store_n(&na->doit_done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* ---- mechanism ops ------------------------------------------------------------------ */

static bool
na_available(const struct attach_opts *o, char *why, size_t len)
{
	if (access("/sys/block/nbd0", F_OK) < 0 || access("/dev/nbd0", F_OK) < 0) {
		snprintf(why, len, "no /dev/nbd* (modprobe nbd)");
		return false;
	}
	if (access("/dev/nbd0", R_OK | W_OK) < 0) {
		snprintf(why, len, "/dev/nbd0: %s", strerror(errno));
		return false;
	}
	return true;
}

static void na_stop(struct attach_ctx *a);

static bool
na_in_use(int nr)
{
	char p[64];
	struct stat st;

	snprintf(p, sizeof(p), "/sys/block/nbd%d/pid", nr);
	return stat(p, &st) == 0;
}

/* One NVMe queue, its request slots and a socket pair per connection; ks[i]
 * gets the kernel's end of connection i. \return 0 or -errno (said why). */
static int
na_conns_create(struct nbd_attach *na, int ks[])
{
	struct attach_ctx *a = na->a;
	int rc;

	for (unsigned i = 0; i < na->nconn; i++) {
		struct na_conn *c = &na->conn[i];
		int sv[2];

		c->na = na;
		c->idx = i;
		rc = host_session_queue_create(a->s, a->o.qd, &c->q);
		if (rc < 0) {
			fprintf(stderr, "nvlend attach: I/O queue %u: %s\n", i + 1, strerror(-rc));
			return rc;
		}
		c->slots = calloc(a->o.qd, sizeof(*c->slots));
		if (c->slots == NULL)
			return -ENOMEM;
		for (uint32_t k = 0; k < a->o.qd; k++) {
			c->slots[k].c = c;
			c->slots[k].next_free = c->free;
			c->free = &c->slots[k];
		}
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return -errno;
		c->sock = sv[0];
		ks[i] = sv[1];
		fcntl(c->sock, F_SETFL, fcntl(c->sock, F_GETFL) | O_NONBLOCK);
	}
	return 0;
}

/* Configure the first free /dev/nbdN with na->xp and the kernel's ends of
 * the sockets. \return 0 (na->fd, na->nr set) or -errno (said why). */
static int
na_device_claim(struct nbd_attach *na, const int ks[])
{
	char path[64];
	int rc;

	/* NBD_SET_SOCK refuses a device that someone else set up: try the next */
	for (int nr = 0; nr < 1024; nr++) {
		snprintf(path, sizeof(path), "/sys/block/nbd%d", nr);
		if (access(path, F_OK) < 0)
			break;
		if (na_in_use(nr))
			continue;
		snprintf(path, sizeof(path), "/dev/nbd%d", nr);
		na->fd = open(path, O_RDWR | O_CLOEXEC);
		if (na->fd < 0)
			continue;
		rc = 0;
		if (ioctl(na->fd, NBD_SET_BLKSIZE, (unsigned long)na->xp.min_block) < 0 ||
		    ioctl(na->fd, NBD_SET_SIZE_BLOCKS,
			  (unsigned long)(na->xp.size / na->xp.min_block)) < 0 ||
		    ioctl(na->fd, NBD_SET_FLAGS, (unsigned long)na->xp.tflags) < 0)
			rc = -errno;
		for (unsigned i = 0; rc == 0 && i < na->nconn; i++)
			if (ioctl(na->fd, NBD_SET_SOCK, (unsigned long)ks[i]) < 0)
				rc = -errno;
		if (rc == 0) {
			na->nr = nr;
			return 0;
		}
		ioctl(na->fd, NBD_CLEAR_SOCK);
		close(na->fd);
		na->fd = -1;
		if (rc != -EBUSY) {
			fprintf(stderr, "nvlend attach: configuring /dev/nbd%d: %s\n", nr,
				strerror(-rc));
			return rc;
		}
	}
	fprintf(stderr, "nvlend attach: no free NBD device\n");
	return -EBUSY;
}

/* A thread per connection, and the one in NBD_DO_IT. \return 0 or -EAGAIN. */
static int
na_threads_start(struct nbd_attach *na)
{
	for (unsigned i = 0; i < na->nconn; i++) {
		if (pthread_create(&na->conn[i].thread, NULL, na_conn_thread, &na->conn[i]) != 0)
			return -EAGAIN;
		na->conn[i].started = true;
	}
	if (pthread_create(&na->doit, NULL, na_doit_thread, na) != 0)
		return -EAGAIN;
	na->doit_started = true;
	return 0;
}

/* Live when the kernel published the serving pid (5 s at most). \return 0 or -EIO. */
static int
na_wait_live(struct nbd_attach *na)
{
	for (int i = 0; i < 250 && !na_in_use(na->nr) &&
			!__atomic_load_n(&na->doit_done, __ATOMIC_ACQUIRE);
	     i++)
		usleep(20000);
	if (!na_in_use(na->nr)) {
		fprintf(stderr, "nvlend attach: /dev/nbd%d did not come up\n", na->nr);
		return -EIO;
	}
	return 0;
}

static int
na_start(struct attach_ctx *a)
{
	struct nbd_attach *na;
	char path[64], v[16];
	int rc, ks[ATTACH_MAX_QUEUES]; /* the kernel's ends of the socket pairs */

	na = calloc(1, sizeof(*na));
	if (na == NULL)
		return -ENOMEM;
	a->priv = na;
	na->a = a;
	na->fd = -1;
	na->nr = -1;
	attach_nbd_xparams(host_session_size(a->s), host_session_ns(a->s)->block_size,
			   host_session_readonly(a->s), &na->xp);
	na->nconn = a->o.queues;
	na->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (unsigned i = 0; i < ATTACH_MAX_QUEUES; i++) {
		ks[i] = -1;
		na->conn[i].sock = -1;
	}
	if (na->stop_efd < 0) {
		rc = -errno;
		goto err_stop;
	}
	if (na->xp.min_block < 512 || na->xp.min_block > 4096 ||
	    (na->xp.min_block & (na->xp.min_block - 1))) {
		fprintf(stderr, "nvlend attach: block size %u: NBD takes 512..4096\n",
			na->xp.min_block);
		rc = -EINVAL;
		goto err_stop;
	}
	rc = na_conns_create(na, ks);
	if (rc < 0)
		goto err_stop;
	rc = na_device_claim(na, ks);
	if (rc < 0)
		goto err_stop;
	rc = na_threads_start(na);
	if (rc < 0)
		goto err_stop;
	/* the kernel holds its ends now */
	for (unsigned i = 0; i < na->nconn; i++) {
		close(ks[i]);
		ks[i] = -1;
	}
	rc = na_wait_live(na);
	if (rc < 0)
		goto err_stop;
	snprintf(a->rec.device, sizeof(a->rec.device), "/dev/nbd%d", na->nr);
	/* keep requests within one NVMe transfer where the kernel lets us */
	snprintf(path, sizeof(path), "/sys/block/nbd%d/queue/max_sectors_kb", na->nr);
	snprintf(v, sizeof(v), "%u", NVL_MAX(host_session_max_xfer(a->s) / 1024, 4u));
	attach_write_file(path, v);
	return 0;
err_stop:
	/* the kernel's ends not handed over yet, then everything na_stop() undoes */
	for (unsigned i = 0; i < ATTACH_MAX_QUEUES; i++)
		if (ks[i] >= 0)
			close(ks[i]);
	na_stop(a);
	return rc;
}

static void
na_stop(struct attach_ctx *a)
{
	struct nbd_attach *na = a->priv;
	uint64_t one = 1;

	if (na == NULL)
		return;
	if (na->fd >= 0) {
		/* the kernel sends NBD_CMD_DISC and shuts its ends: NBD_DO_IT returns */
		ioctl(na->fd, NBD_DISCONNECT);
	}
	if (na->doit_started) {
		for (int i = 0; i < 500 && !__atomic_load_n(&na->doit_done, __ATOMIC_ACQUIRE); i++)
			usleep(20000);
		if (!__atomic_load_n(&na->doit_done, __ATOMIC_ACQUIRE)) {
			/* requests stuck on a lost target: fail them so the kernel lets go */
			host_session_shutdown(a->s);
			for (unsigned i = 0; i < na->nconn; i++)
				if (na->conn[i].sock >= 0)
					shutdown(na->conn[i].sock, SHUT_RDWR);
		}
		pthread_join(na->doit, NULL);
	}
	if (na->stop_efd >= 0)
		(void)!write(na->stop_efd, &one, sizeof(one));
	for (unsigned i = 0; i < na->nconn; i++) {
		struct na_conn *c = &na->conn[i];

		if (c->started)
			pthread_join(c->thread, NULL);
		host_session_queue_destroy(c->q);
		if (c->slots)
			for (uint32_t k = 0; k < a->o.qd; k++)
				free(c->slots[k].buf);
		free(c->slots);
		if (c->sock >= 0)
			close(c->sock);
	}
	if (na->fd >= 0) {
		ioctl(na->fd, NBD_CLEAR_QUE);
		ioctl(na->fd, NBD_CLEAR_SOCK);
		close(na->fd);
	}
	if (na->stop_efd >= 0)
		close(na->stop_efd);
	free(na);
	a->priv = NULL;
}

static bool
na_alive(struct attach_ctx *a)
{
	struct nbd_attach *na = a->priv;

	return na && !__atomic_load_n(&na->doit_done, __ATOMIC_ACQUIRE);
}

/* Leftovers of a dead attach process: the kernel already failed its
 * sockets; make sure the device is disconnected and cleared. */
static int
na_detach_record(const struct attach_record *r)
{
	int fd;

	if (strncmp(r->device, "/dev/nbd", 8) != 0)
		return 0;
	fd = open(r->device, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ioctl(fd, NBD_DISCONNECT);
	ioctl(fd, NBD_CLEAR_SOCK);
	close(fd);
	return 0;
}

const struct attach_mech g_attach_nbd = {
	.name = "nbd",
	.available = na_available,
	.start = na_start,
	.stop = na_stop,
	.alive = na_alive,
	.detach_record = na_detach_record,
};
