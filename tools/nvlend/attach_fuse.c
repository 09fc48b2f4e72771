/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Attach mechanism "fuse": a FUSE file (libfuse3 low-level API) whose size
 * is the namespace's, mounted over STATE/NAME.disk, with a loop device on
 * it. Works wherever FUSE and loop devices do (this machine's kernel has no
 * nbd or ublk).
 *
 * Data path: loop (direct I/O when FUSE allows it, the namespace's logical
 * block size) -> FUSE READ/WRITE/FSYNC/FALLOCATE -> libnvlend. FSYNC is an
 * NVMe Flush (the namespace has a volatile write cache); FALLOCATE
 * PUNCH_HOLE (what loop sends for discard and for write-zeroes that may
 * unmap) is Write Zeroes with Deallocate, so the range reads back zero as a
 * file must; ZERO_RANGE is Write Zeroes that keeps the blocks.
 *
 * Threads: libfuse's multi-threaded loop with a fixed number of workers
 * (--queues; clone_fd so each has its own /dev/fuse fd). A worker takes a
 * session queue (one NVMe queue pair) on its first request and keeps it: a
 * worker serves one FUSE request at a time, synchronously, so the FUSE
 * side's concurrency is the number of workers (FUSE async direct I/O keeps
 * that many requests coming). All signals are blocked in these threads.
 */
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "attach.h"
#include "attach_req.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/loop.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define FA_IO_MAX (1u << 20)          /* libfuse's buffer: 256 pages of payload */
#define FA_MAX_WORKERS (2 * ATTACH_MAX_QUEUES)

struct fa_worker {
	struct host_session_queue *q;
	uint8_t *buf;                 /* FA_IO_MAX + one block, page aligned */
	bool claimed;
};

struct fuse_attach {
	struct attach_ctx *a;
	struct fuse_session *se;
	pthread_t thread;
	bool thread_started;
	bool loop_done;               /* atomic: set by the loop thread */
	pthread_mutex_t lock;
	struct fa_worker w[FA_MAX_WORKERS];
	uint32_t nw;                  /* workers created */
	uint32_t max_threads;
	pthread_key_t key;
	uint64_t size;
	uint32_t bs;
	bool ro;
	char mnt[PATH_MAX];
	unsigned fuse_conn;           /* /sys/fs/fuse/connections/N */
	int loop_fd;
	int loop_nr;
	struct timespec t0;
};

/* ---- workers ---------------------------------------------------------------------- */

static int
worker_init(struct fuse_attach *fa, struct fa_worker *w)
{
	int rc = host_session_queue_create(fa->a->s, fa->a->o.qd, &w->q);

	if (rc < 0)
		return rc;
	if (posix_memalign((void **)&w->buf, 4096, FA_IO_MAX + fa->bs)) {
		host_session_queue_destroy(w->q);
		w->q = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void
worker_release(void *arg)
{
	struct fa_worker *w = arg;

	/* a FUSE thread ended: its queue goes back to the pool */
	__atomic_store_n(&w->claimed, false, __ATOMIC_RELEASE);
}

/* The calling FUSE thread's worker (claimed on first use, kept for life). */
static struct fa_worker *
worker_get(struct fuse_attach *fa)
{
	struct fa_worker *w = pthread_getspecific(fa->key);

	if (w)
		return w;
	pthread_mutex_lock(&fa->lock);
	for (uint32_t i = 0; i < fa->nw && w == NULL; i++)
		if (!fa->w[i].claimed)
			w = &fa->w[i];
	if (w == NULL && fa->nw < FA_MAX_WORKERS && worker_init(fa, &fa->w[fa->nw]) == 0)
		w = &fa->w[fa->nw++];
	if (w)
		w->claimed = true;
	pthread_mutex_unlock(&fa->lock);
	if (w)
		pthread_setspecific(fa->key, w);
	return w;
}

static int
fa_io(struct fa_worker *w, uint8_t op, uint32_t flags, uint64_t off, uint64_t len, void *buf)
{
	struct host_session_io io = { .op = op, .flags = flags, .offset = off, .len = len,
				      .buf = buf, .cb = NULL };
	int rc = host_session_queue_run(w->q, &io);

	return rc == -ESHUTDOWN ? -EIO : rc;
}

/* ---- FUSE operations -------------------------------------------------------------------- */

static void
fa_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fuse_attach *fa = userdata;
	uint32_t bg = NVL_MIN(fa->max_threads * 4, 1024u);

	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
			FUSE_CAP_WRITEBACK_CACHE);
	conn->max_write = FA_IO_MAX;
	conn->max_background = bg;
	conn->congestion_threshold = bg * 3 / 4;
}

static void
fa_stat(struct fuse_attach *fa, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = FUSE_ROOT_ID;
	st->st_mode = S_IFREG | (fa->ro ? 0400 : 0600);
	st->st_uid = geteuid();
	st->st_gid = getegid();
	st->st_nlink = 1;
	st->st_size = (off_t)fa->size;
	st->st_blksize = fa->bs;
	st->st_blocks = (blkcnt_t)(fa->size / 512);
	st->st_atim = fa->t0;
	st->st_mtim = fa->t0;
	st->st_ctim = fa->t0;
}

static void
fa_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_attach *fa = fuse_req_userdata(req);
	struct stat st;

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fa_stat(fa, &st);
	fuse_reply_attr(req, &st, 86400.0);
}

static void
fa_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
	   struct fuse_file_info *fi)
{
	struct fuse_attach *fa = fuse_req_userdata(req);
	struct stat st;

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* the size is the namespace's; times and modes are not kept */
	if ((to_set & FUSE_SET_ATTR_SIZE) && (uint64_t)attr->st_size != fa->size) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fa_stat(fa, &st);
	fuse_reply_attr(req, &st, 86400.0);
}

static void
fa_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_attach *fa = fuse_req_userdata(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* the namespace is this user's (root's): nobody else opens it, whatever
	 * the mount options say */
	if (ctx->uid != 0 && ctx->uid != geteuid()) {
		fuse_reply_err(req, EACCES);
		return;
	}
	if (fa->ro && (fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/* no page cache on top of the namespace: other hosts write it too */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fuse_reply_open(req, fi);
}

static void
fa_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse_attach *fa = fuse_req_userdata(req);
	struct fa_worker *w = worker_get(fa);
	struct attach_fuse_range r;
	int rc;

	if (w == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* unaligned reads read the covering blocks (attach_req.c) */
	attach_fuse_read_range(off, size, fa->size, fa->bs, FA_IO_MAX, &r);
	if (r.end == r.start) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	rc = fa_io(w, HOST_SESSION_READ, 0, r.a0, r.a1 - r.a0, w->buf);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, (char *)w->buf + (r.start - r.a0), r.end - r.start);
}

static void
fa_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	 struct fuse_file_info *fi)
{
	struct fuse_attach *fa = fuse_req_userdata(req);
	struct fa_worker *w = worker_get(fa);
	int64_t n;
	int rc;

	if (w == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* whole blocks inside the namespace (attach_req.c) */
	n = attach_fuse_write_len(off, size, fa->size, fa->bs, fa->ro);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	size = (size_t)n;
	/* the buffer stays valid until we reply: no copy but libnvlend's into its window */
	rc = fa_io(w, HOST_SESSION_WRITE, (fi->flags & O_DSYNC) ? HOST_SESSION_F_FUA : 0,
		   (uint64_t)off, size, (void *)buf);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

static void
fa_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fuse_attach *fa = fuse_req_userdata(req);
	struct fa_worker *w = worker_get(fa);

	if (w == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (fa->ro) {
		fuse_reply_err(req, 0);
		return;
	}
	fuse_reply_err(req, -fa_io(w, HOST_SESSION_FLUSH, 0, 0, 0, NULL));
}

static void
fa_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* close(): nothing is cached here; fsync is the durability point */
	fuse_reply_err(req, 0);
}

static void
fa_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void
fa_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
	     struct fuse_file_info *fi)
{
	struct fuse_attach *fa = fuse_req_userdata(req);
	struct fa_worker *w = worker_get(fa);
	struct host_session_io io = { 0 };
	int rc;

	if (w == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* PUNCH_HOLE / ZERO_RANGE of whole blocks: Write Zeroes (attach_req.c) */
	rc = attach_fuse_fallocate(mode, off, len, fa->size, fa->bs, fa->ro, &io);
	if (rc > 0)
		rc = fa_io(w, io.op, io.flags, io.offset, io.len, NULL);
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static const struct fuse_lowlevel_ops fa_ops = {
	.init = fa_init,
	.getattr = fa_getattr,
	.setattr = fa_setattr,
	.open = fa_open,
	.read = fa_read,
	.write = fa_write,
	.flush = fa_flush,
	.release = fa_release,
	.fsync = fa_fsync,
	.fallocate = fa_fallocate,
};

static void *
fa_loop_thread(void *arg)
{
	struct fuse_attach *fa = arg;
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	int rc;

	if (cfg == NULL) {
		__atomic_store_n(&fa->loop_done, true, __ATOMIC_RELEASE);
		return NULL;
	}
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	fuse_loop_cfg_set_max_threads(cfg, fa->max_threads);
	fuse_loop_cfg_set_idle_threads(cfg, fa->max_threads);
	rc = fuse_session_loop_mt(fa->se, cfg);
	if (rc != 0)
		attach_log("%s: FUSE loop ended: %d", fa->a->rec.name, rc);
	fuse_loop_cfg_destroy(cfg);
	__atomic_store_n(&fa->loop_done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* ---- loop device ------------------------------------------------------------------------ */

static int
loop_attach(struct fuse_attach *fa, bool *dio_used)
{
	int ctl, fd, rc = -EBUSY;
	bool dio = true;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		rc = -errno;
		fprintf(stderr, "nvlend attach: /dev/loop-control: %s\n", strerror(errno));
		return rc;
	}
	fd = open(fa->mnt, (fa->ro ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC);
	if (fd < 0 && errno == EINVAL) {
		dio = false;
		fd = open(fa->mnt, (fa->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	}
	if (fd < 0) {
		rc = -errno;
		fprintf(stderr, "nvlend attach: opening the FUSE file %s: %s\n", fa->mnt,
			strerror(errno));
		close(ctl);
		return rc;
	}
	for (int tries = 0; tries < 20; tries++) {
		struct loop_config cfg;
		char path[64];
		int nr = ioctl(ctl, LOOP_CTL_GET_FREE), lfd;

		if (nr < 0) {
			rc = -errno;
			break;
		}
		snprintf(path, sizeof(path), "/dev/loop%d", nr);
		if (!attach_wait_path(path, true, 2000)) {
			rc = -ENOENT;
			break;
		}
		lfd = open(path, O_RDWR | O_CLOEXEC);
		if (lfd < 0) {
			rc = -errno;
			break;
		}
		memset(&cfg, 0, sizeof(cfg));
		cfg.fd = (uint32_t)fd;
		cfg.block_size = fa->bs;
		cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN |
				    (dio ? LO_FLAGS_DIRECT_IO : 0) |
				    (fa->ro ? LO_FLAGS_READ_ONLY : 0);
		snprintf((char *)cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "nvlend:%s",
			 fa->a->rec.name);
		if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0) {
			fa->loop_fd = lfd;
			fa->loop_nr = nr;
			*dio_used = dio;
			rc = 0;
			break;
		}
		rc = -errno;
		close(lfd);
		if (rc == -EINVAL && dio) {
			dio = false; /* FUSE direct I/O refused: buffered loop */
			continue;
		}
		if (rc != -EBUSY)
			break; /* EBUSY: someone took that device first */
	}
	close(fd);
	close(ctl);
	if (rc < 0)
		fprintf(stderr, "nvlend attach: cannot set up a loop device: %s\n", strerror(-rc));
	return rc;
}

/* Clear a loop device if it is still backed by `backing`, wait until released. */
static void
loop_release(const char *dev, const char *backing, int wait_ms)
{
	char sys[128], cur[PATH_MAX];
	const char *base = strrchr(dev, '/');
	int fd;

	base = base ? base + 1 : dev;
	snprintf(sys, sizeof(sys), "/sys/block/%s/loop/backing_file", base);
	if (attach_read_file(sys, cur, sizeof(cur)) <= 0 || strcmp(cur, backing) != 0)
		return;
	fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		/* busy devices get autoclear: released on the last close */
		ioctl(fd, LOOP_CLR_FD, 0);
		close(fd);
	}
	attach_wait_path(sys, false, wait_ms);
}

/* Abort a FUSE connection (requests fail, the loop ends). */
static void
fuse_abort(unsigned conn)
{
	char path[96];

	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort", conn);
	attach_write_file(path, "1");
}

/* FUSE connection of the mount at path (from mountinfo: works on dead mounts too). */
static int
fuse_conn_of(const char *path, unsigned *conn)
{
	char *line = NULL;
	size_t cap = 0;
	int rc = -ENOENT;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (f == NULL)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		unsigned ma, mi;
		char mp[PATH_MAX], fstype[64];

		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &ma, &mi, mp) != 3)
			continue;
		if (strcmp(mp, path) != 0)
			continue;
		{
			char *sep = strstr(line, " - ");

			if (sep == NULL || sscanf(sep + 3, "%63s", fstype) != 1 ||
			    strncmp(fstype, "fuse", 4) != 0)
				continue;
		}
		*conn = ma == 0 ? mi : (unsigned)makedev(ma, mi);
		rc = 0;
	}
	free(line);
	fclose(f);
	return rc;
}

/* ---- mechanism ops -------------------------------------------------------------------------- */

static bool
fa_available(const struct attach_opts *o, char *why, size_t len)
{
	if (access("/dev/fuse", R_OK | W_OK) < 0) {
		snprintf(why, len, "/dev/fuse: %s", strerror(errno));
		return false;
	}
	if (access("/dev/loop-control", R_OK | W_OK) < 0) {
		snprintf(why, len, "/dev/loop-control: %s (loop devices need root)",
			 strerror(errno));
		return false;
	}
	return true;
}

static void fa_stop(struct attach_ctx *a);

static int
fa_start(struct attach_ctx *a)
{
	struct fuse_attach *fa;
	char dir[PATH_MAX - 64], opts[256];
	char *argv[] = { "nvlend-attach", "-o", opts, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct stat st;
	bool dio = false;
	int fd, rc;

	fa = calloc(1, sizeof(*fa));
	if (fa == NULL)
		return -ENOMEM;
	a->priv = fa;
	fa->a = a;
	fa->loop_fd = -1;
	fa->size = host_session_size(a->s);
	fa->bs = host_session_ns(a->s)->block_size;
	fa->ro = host_session_readonly(a->s);
	fa->max_threads = a->o.queues;
	clock_gettime(CLOCK_REALTIME, &fa->t0);
	pthread_mutex_init(&fa->lock, NULL);
	pthread_key_create(&fa->key, worker_release);
	if (fa->bs < 512 || fa->bs > 4096 || !NVL_IS_POW2(fa->bs)) {
		fprintf(stderr, "nvlend attach: block size %u: loop devices take 512..4096\n",
			fa->bs);
		rc = -EINVAL;
		goto err;
	}
	/* every worker's queue pair now: a controller out of queues fails here */
	for (uint32_t i = 0; i < a->o.queues; i++) {
		rc = worker_init(fa, &fa->w[i]);
		if (rc < 0) {
			fprintf(stderr, "nvlend attach: I/O queue %u: %s\n", i + 1, strerror(-rc));
			goto err;
		}
		fa->nw++;
	}
	attach_state_dir(dir, sizeof(dir));
	snprintf(fa->mnt, sizeof(fa->mnt), "%s/%s.disk", dir, a->rec.name);
	umount2(fa->mnt, MNT_DETACH); /* a stale mount of a dead attach process */
	fd = open(fa->mnt, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		fprintf(stderr, "nvlend attach: %s: %s\n", fa->mnt, strerror(errno));
		goto err;
	}
	close(fd);
	/*
	 * No allow_other: only the mounting user (root) reaches the file; the
	 * kernel refuses everyone else before a request reaches us. The file
	 * lives in a 0700 directory too, and fa_open checks the caller again.
	 * default_permissions makes the kernel apply the 0600 mode as well.
	 */
	snprintf(opts, sizeof(opts), "default_permissions,fsname=nvlend:%s,subtype=nvlend",
		 a->rec.name);
	fa->se = fuse_session_new(&args, &fa_ops, sizeof(fa_ops), fa);
	fuse_opt_free_args(&args);
	if (fa->se == NULL) {
		rc = -EINVAL;
		goto err;
	}
	if (fuse_session_mount(fa->se, fa->mnt) != 0) {
		fprintf(stderr, "nvlend attach: cannot mount the FUSE file on %s\n", fa->mnt);
		fuse_session_destroy(fa->se);
		fa->se = NULL;
		rc = -EIO;
		goto err;
	}
	if (fuse_conn_of(fa->mnt, &fa->fuse_conn) < 0 && stat(fa->mnt, &st) == 0)
		fa->fuse_conn = minor(st.st_dev);
	if (pthread_create(&fa->thread, NULL, fa_loop_thread, fa) != 0) {
		rc = -EAGAIN;
		goto err;
	}
	fa->thread_started = true;
	nvl_strlcpy(a->rec.backing, fa->mnt, sizeof(a->rec.backing));
	rc = loop_attach(fa, &dio);
	if (rc < 0)
		goto err;
	snprintf(a->rec.device, sizeof(a->rec.device), "/dev/loop%d", fa->loop_nr);
	if (!dio)
		fprintf(stderr, "nvlend attach: FUSE refused direct I/O: the loop device is "
				"buffered\n");
	return 0;
err:
	fa_stop(a);
	return rc;
}

static void
fa_stop(struct attach_ctx *a)
{
	struct fuse_attach *fa = a->priv;
	char sys[96];

	if (fa == NULL)
		return;
	if (fa->loop_fd >= 0) {
		/* LOOP_CLR_FD on a busy device sets autoclear: released at the last close */
		ioctl(fa->loop_fd, LOOP_CLR_FD, 0);
		close(fa->loop_fd);
		fa->loop_fd = -1;
		snprintf(sys, sizeof(sys), "/sys/block/loop%d/loop/backing_file", fa->loop_nr);
		for (bool said = false; !attach_wait_path(sys, false, 1000); said = true) {
			if (__atomic_load_n(&a->force, __ATOMIC_RELAXED)) {
				if (!attach_wait_path(sys, false, 5000))
					attach_log("%s: loop%d still busy; aborting the FUSE "
						   "file under it", a->rec.name, fa->loop_nr);
				break;
			}
			if (!said)
				attach_log("%s: waiting for loop%d to be released (still open or "
					   "mounted)", a->rec.name, fa->loop_nr);
		}
	}
	if (fa->se) {
		fuse_session_exit(fa->se);
		fuse_session_unmount(fa->se);
		if (fa->thread_started) {
			for (int i = 0; i < 100 && !__atomic_load_n(&fa->loop_done, __ATOMIC_ACQUIRE); i++)
				usleep(20000);
			if (!__atomic_load_n(&fa->loop_done, __ATOMIC_ACQUIRE) && fa->fuse_conn)
				fuse_abort(fa->fuse_conn);
			pthread_join(fa->thread, NULL);
		}
		fuse_session_destroy(fa->se);
	}
	for (uint32_t i = 0; i < fa->nw; i++) {
		host_session_queue_destroy(fa->w[i].q);
		free(fa->w[i].buf);
	}
	if (fa->mnt[0])
		unlink(fa->mnt);
	pthread_key_delete(fa->key);
	pthread_mutex_destroy(&fa->lock);
	free(fa);
	a->priv = NULL;
}

static bool
fa_alive(struct attach_ctx *a)
{
	struct fuse_attach *fa = a->priv;

	return fa && !__atomic_load_n(&fa->loop_done, __ATOMIC_ACQUIRE);
}

/* Leftovers of a dead attach process: its loop device, its FUSE mount. */
static int
fa_detach_record(const struct attach_record *r)
{
	unsigned conn;

	if (r->backing[0] == '\0')
		return 0;
	if (fuse_conn_of(r->backing, &conn) == 0)
		fuse_abort(conn); /* a dead daemon's requests fail at once */
	if (r->device[0])
		loop_release(r->device, r->backing, 5000);
	umount2(r->backing, MNT_DETACH);
	unlink(r->backing);
	return 0;
}

const struct attach_mech g_attach_fuse = {
	.name = "fuse",
	.available = fa_available,
	.start = fa_start,
	.stop = fa_stop,
	.alive = fa_alive,
	.detach_record = fa_detach_record,
};
