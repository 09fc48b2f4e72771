/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the file backend (src/bdev/bdev_file.c) against real temp
 * files, driven by one reactor with its io_uring:
 *  - /var/tmp (ext4 or xfs here: O_DIRECT): aligned I/O goes direct, misaligned
 *    buffers and odd iovecs through the bounce buffer; FUA, flush;
 *    write-zeroes with and without NO_HOLE and unmap read back zeroes (and
 *    punch holes / keep blocks as promised); the zero-write fallback; short
 *    transfers when the file shrinks; more I/Os than the ring holds;
 *  - /dev/shm (tmpfs): served inline in auto mode, through the ring in uring mode;
 *  - errors: out of range / misaligned (-EINVAL before the backend), read-only
 *    descriptor (-EBADF), read-only bdev, delete while open, bad files.
 * FUA is checked where it takes effect: every write's flags are recorded on
 * both paths (pwritev2 inline, the SQE on the ring), as data read back from
 * the page cache looks the same with or without RWF_DSYNC.
 */
#include "bdev/bdev.c"

#include <sys/uio.h>

struct ut_writes {
	unsigned n;
	int flags; /* of the last one */
};
static struct ut_writes g_sync_writes, g_ring_writes;

static ssize_t
ut_pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	g_sync_writes.n++;
	g_sync_writes.flags = flags;
	return pwritev2(fd, iov, cnt, off, flags);
}

static void
ut_uring_op_set(struct io_uring_sqe *sqe, struct nvl_uring_op *op)
{
	if (sqe->opcode == IORING_OP_WRITEV || sqe->opcode == IORING_OP_WRITE) {
		g_ring_writes.n++;
		g_ring_writes.flags = (int)sqe->rw_flags;
	}
	nvl_uring_op_set(sqe, op);
}

#define pwritev2 ut_pwritev2
#define nvl_uring_op_set ut_uring_op_set
#include "bdev/bdev_file.c"
#undef pwritev2
#undef nvl_uring_op_set
#include "common/ut.h"

#include <sys/stat.h>
#include <sys/statfs.h>
#include <valgrind/memcheck.h>

#define DISK_DIR "/var/tmp"
#define SHM_DIR "/dev/shm"
#define DISK_SIZE (8ULL << 20)

static char g_path[PATH_MAX];
static int g_fd = -1;

struct done {
	int calls;
	int status;
};

static void
io_done(struct nvl_bdev_io *io, int status)
{
	struct done *d = io->cb_arg;

	d->calls++;
	d->status = status;
}

/* Submit one I/O and run the reactor until it completes; returns its status or the submit error. */
static int
do_io(struct nvl_bdev_desc *d, uint8_t type, uint32_t flags, uint64_t off, uint64_t len,
      struct iovec *iov, int iovcnt)
{
	struct nvl_bdev_io io;
	struct done dn = { 0 };
	int rc;

	memset(&io, 0, sizeof(io));
	io.type = type;
	io.flags = flags;
	io.offset = off;
	io.length = len;
	io.iov = iov;
	io.iovcnt = iovcnt;
	io.cb = io_done;
	io.cb_arg = &dn;
	rc = nvl_bdev_submit(d, &io);
	if (rc < 0) {
		assert_int_equal(dn.calls, 0);
		return rc;
	}
	assert_true(UT_POLL_UNTIL(dn.calls > 0, 10000));
	ut_poll_for(0);
	assert_int_equal(dn.calls, 1);
	/* the kernel filled the buffers through io_uring, which valgrind cannot see */
	if (type == NVL_BDEV_IO_READ && dn.status == 0)
		for (int i = 0; i < iovcnt; i++)
			VALGRIND_MAKE_MEM_DEFINED(iov[i].iov_base, iov[i].iov_len);
	return dn.status;
}

static int
rw1(struct nvl_bdev_desc *d, uint8_t type, uint32_t flags, uint64_t off, void *buf, uint64_t len)
{
	struct iovec v = { buf, len };

	return do_io(d, type, flags, off, len, &v, 1);
}

static int
setup(void **state)
{
	(void)state;
	if (ut_reactors_init(1) < 0)
		return -1;
	g_fd = ut_tmpfile(DISK_DIR, DISK_SIZE, g_path);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	nvl_bdev_fini();
	nvl_reactors_fini();
	if (g_fd >= 0) {
		close(g_fd);
		unlink(g_path);
		g_fd = -1;
	}
	return 0;
}

static struct nvl_bdev *
make_file_bdev(const char *name, const char *path, uint32_t bs, int mode, bool ro)
{
	/* shared: several tests open one file through several bdevs */
	struct nvl_bdev_file_opts o = { .name = name, .filename = path, .block_size = bs,
					.io_mode = mode, .read_only = ro, .shared = true };
	struct nvl_bdev *b = NULL;

	assert_int_equal(nvl_bdev_file_create(&o, &b), 0);
	return b;
}

static uint64_t
allocated_bytes(void)
{
	struct stat st;

	assert_int_equal(fstat(g_fd, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static void
test_direct_io_roundtrip(void **state)
{
	struct nvl_bdev *b = make_file_bdev("f0", g_path, 0, NVL_BDEV_FILE_AUTO, false);
	struct bdev_file *f = to_file(b);
	struct nvl_bdev_desc *d;
	uint8_t *w, *r, *chk = malloc(65536);
	struct nvl_bdev_stats st;

	(void)state;
	assert_true(f->direct); /* /var/tmp takes O_DIRECT */
	assert_false(f->sync_inline);
	assert_int_equal(b->block_size, f->off_align);
	assert_int_equal(b->num_blocks, DISK_SIZE / b->block_size);
	assert_true(b->write_cache);
	w = ut_aligned(65536);
	r = ut_aligned(65536);
	assert_int_equal(nvl_bdev_open("f0", true, "ut", &d), 0);

	ut_fill(w, 65536, 3);
	g_ring_writes = (struct ut_writes){ 0 };
	g_sync_writes = (struct ut_writes){ 0 };
	assert_int_equal(rw1(d, NVL_BDEV_IO_WRITE, 0, 1 << 20, w, 65536), 0);
	assert_int_equal(g_ring_writes.n, 1);
	assert_int_equal(g_ring_writes.flags & RWF_DSYNC, 0); /* no FUA: no sync */
	memset(r, 0, 65536);
	assert_int_equal(rw1(d, NVL_BDEV_IO_READ, 0, 1 << 20, r, 65536), 0);
	assert_memory_equal(r, w, 65536);
	assert_int_equal(f->bounced, 0);
	/* what the bdev wrote is in the file */
	assert_int_equal(pread(g_fd, chk, 65536, 1 << 20), 65536);
	assert_memory_equal(chk, w, 65536);
	/* FUA write and flush */
	ut_fill(w, 4096, 4);
	assert_int_equal(rw1(d, NVL_BDEV_IO_WRITE, NVL_BDEV_IO_FUA, 0, w, 4096), 0);
	assert_int_equal(g_ring_writes.n, 2);
	assert_int_equal(g_ring_writes.flags & RWF_DSYNC, RWF_DSYNC); /* FUA: durable write */
	/* FUA through the bounce buffer (misaligned) too */
	memcpy(r + 1, w, 4096);
	assert_int_equal(rw1(d, NVL_BDEV_IO_WRITE, NVL_BDEV_IO_FUA, 0, r + 1, 4096), 0);
	assert_int_equal(f->bounced, 1);
	assert_int_equal(g_ring_writes.n, 3);
	assert_int_equal(g_ring_writes.flags & RWF_DSYNC, RWF_DSYNC);
	assert_int_equal(g_sync_writes.n, 0); /* all through the ring */
	assert_int_equal(do_io(d, NVL_BDEV_IO_FLUSH, 0, 0, 0, NULL, 0), 0);
	assert_int_equal(pread(g_fd, chk, 4096, 0), 4096);
	assert_memory_equal(chk, w, 4096);
	/* the last block */
	assert_int_equal(rw1(d, NVL_BDEV_IO_WRITE, 0, DISK_SIZE - 4096, w, 4096), 0);
	assert_int_equal(g_ring_writes.flags & RWF_DSYNC, 0); /* FUA does not stick */
	assert_int_equal(rw1(d, NVL_BDEV_IO_READ, 0, DISK_SIZE - 4096, r, 4096), 0);
	assert_memory_equal(r, w, 4096);

	nvl_bdev_get_stats(b, &st);
	assert_int_equal(st.ops[NVL_BDEV_IO_WRITE], 4);
	assert_int_equal(st.bytes[NVL_BDEV_IO_WRITE], 65536 + 12288);
	assert_int_equal(st.ops[NVL_BDEV_IO_READ], 2);
	assert_int_equal(st.ops[NVL_BDEV_IO_FLUSH], 1);
	assert_int_equal(st.hist_read.count, 2);
	assert_int_equal(st.hist_write.count, 4);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.inflight, 0);

	/* delete refused while open */
	assert_int_equal(nvl_bdev_unregister(b), -EBUSY);
	nvl_bdev_close(d);
	assert_int_equal(nvl_bdev_unregister(b), 0);
	free(w);
	free(r);
	free(chk);
}

static void
test_bounce_path(void **state)
{
	struct nvl_bdev *b = make_file_bdev("f1", g_path, 512, NVL_BDEV_FILE_AUTO, false);
	struct bdev_file *f = to_file(b);
	struct nvl_bdev_desc *d;
	uint8_t *wraw = malloc(65536 + 64), *rraw = malloc(65536 + 64);
	uint8_t *w = wraw + 1, *r = rraw + 3; /* misaligned for O_DIRECT */
	uint8_t chk[8192];
	struct iovec wv[4], rv[3];

	(void)state;
	assert_true(f->direct);
	assert_int_equal(nvl_bdev_open("f1", true, "ut", &d), 0);
	ut_fill(w, 65536, 5);
	assert_int_equal(rw1(d, NVL_BDEV_IO_WRITE, 0, 512, w, 8192), 0);
	assert_int_equal(f->bounced, 1);
	assert_int_equal(pread(g_fd, chk, 8192, 512), 8192);
	assert_memory_equal(chk, w, 8192);
	memset(r, 0, 8192);
	assert_int_equal(rw1(d, NVL_BDEV_IO_READ, 0, 512, r, 8192), 0);
	assert_memory_equal(r, w, 8192);
	assert_int_equal(f->bounced, 2);
	/* odd segment lengths adding up to whole blocks */
	wv[0] = (struct iovec){ w, 100 };
	wv[1] = (struct iovec){ w + 100, 412 };
	wv[2] = (struct iovec){ w + 512, 1 };
	wv[3] = (struct iovec){ w + 513, 1535 };
	assert_int_equal(do_io(d, NVL_BDEV_IO_WRITE, NVL_BDEV_IO_FUA, 16384, 2048, wv, 4), 0);
	rv[0] = (struct iovec){ r, 7 };
	rv[1] = (struct iovec){ r + 7, 2000 };
	rv[2] = (struct iovec){ r + 2007, 41 };
	memset(r, 0, 2048);
	assert_int_equal(do_io(d, NVL_BDEV_IO_READ, 0, 16384, 2048, rv, 3), 0);
	assert_memory_equal(r, w, 2048);
	assert_int_equal(f->bounced, 4);
	nvl_bdev_close(d);
	free(wraw);
	free(rraw);
}

static void
test_zeroes_and_unmap(void **state)
{
	struct nvl_bdev *b = make_file_bdev("f2", g_path, 4096, NVL_BDEV_FILE_AUTO, false);
	struct bdev_file *f = to_file(b);
	struct nvl_bdev_desc *d;
	uint8_t *w, *r;
	const uint64_t len = 1 << 20;
	uint64_t before;

	(void)state;
	w = ut_aligned(len);
	r = ut_aligned(len);
	assert_int_equal(nvl_bdev_open("f2", true, "ut", &d), 0);
	ut_fill(w, len, 6);

	/* write-zeroes (hole allowed): punched, reads zeroes, blocks freed */
	assert_int_equal(rw1(d, NVL_BDEV_IO_WRITE, 0, 0, w, len), 0);
	assert_int_equal(do_io(d, NVL_BDEV_IO_FLUSH, 0, 0, 0, NULL, 0), 0);
	before = allocated_bytes();
	assert_int_equal(do_io(d, NVL_BDEV_IO_WRITE_ZEROES, 0, 4096, len - 8192, NULL, 0), 0);
	assert_int_equal(rw1(d, NVL_BDEV_IO_READ, 0, 0, r, len), 0);
	assert_memory_equal(r, w, 4096);
	assert_true(ut_is_zero(r + 4096, len - 8192));
	assert_memory_equal(r + len - 4096, w + len - 4096, 4096);
	assert_true(allocated_bytes() <= before - (len - 8192));

	/* NO_HOLE: zeroes, and the range stays allocated */
	assert_int_equal(rw1(d, NVL_BDEV_IO_WRITE, 0, 0, w, len), 0);
	assert_int_equal(do_io(d, NVL_BDEV_IO_FLUSH, 0, 0, 0, NULL, 0), 0);
	before = allocated_bytes();
	assert_int_equal(do_io(d, NVL_BDEV_IO_WRITE_ZEROES, NVL_BDEV_IO_NO_HOLE, 8192, len - 8192,
			       NULL, 0), 0);
	assert_int_equal(rw1(d, NVL_BDEV_IO_READ, 0, 0, r, len), 0);
	assert_memory_equal(r, w, 8192);
	assert_true(ut_is_zero(r + 8192, len - 8192));
	assert_true(allocated_bytes() >= before);

	/* unmap: punched, zeroes, the file keeps its size */
	assert_int_equal(rw1(d, NVL_BDEV_IO_WRITE, 0, 0, w, len), 0);
	assert_int_equal(do_io(d, NVL_BDEV_IO_UNMAP, 0, 0, len / 2, NULL, 0), 0);
	assert_int_equal(rw1(d, NVL_BDEV_IO_READ, 0, 0, r, len), 0);
	assert_true(ut_is_zero(r, len / 2));
	assert_memory_equal(r + len / 2, w + len / 2, len / 2);
	{
		struct stat st;

		fstat(g_fd, &st);
		assert_int_equal(st.st_size, DISK_SIZE);
	}

	/* file systems without fallocate modes: zero-filled writes, in chunks */
	f->no_zero_range = true;
	f->no_punch = true;
	assert_int_equal(rw1(d, NVL_BDEV_IO_WRITE, 0, 0, w, len), 0);
	assert_int_equal(do_io(d, NVL_BDEV_IO_WRITE_ZEROES, NVL_BDEV_IO_NO_HOLE, 4096,
			       3 * (ZERO_CHUNK / 2) + 4096, NULL, 0), 0);
	assert_int_equal(do_io(d, NVL_BDEV_IO_UNMAP, 0, 6 << 20, 8192, NULL, 0), 0);
	memset(r, 0xff, len);
	assert_int_equal(rw1(d, NVL_BDEV_IO_READ, 0, 0, r, len), 0);
	assert_memory_equal(r, w, 4096);
	assert_true(ut_is_zero(r + 4096, len - 4096));
	assert_int_equal(rw1(d, NVL_BDEV_IO_READ, 0, 1 << 20, r, len), 0);
	assert_true(ut_is_zero(r, (3 * (ZERO_CHUNK / 2) + 8192) - len));
	assert_int_equal(rw1(d, NVL_BDEV_IO_READ, 0, 6 << 20, r, 8192), 0);
	assert_true(ut_is_zero(r, 8192));
	nvl_bdev_close(d);
	free(w);
	free(r);
}

static void
test_errors(void **state)
{
	struct nvl_bdev *b = make_file_bdev("f3", g_path, 4096, NVL_BDEV_FILE_AUTO, false);
	struct nvl_bdev_desc *rw, *ro;
	uint8_t *buf;
	struct nvl_bdev_stats st;

	(void)state;
	buf = ut_aligned(8192);
	memset(buf, 0, 8192);
	assert_int_equal(nvl_bdev_open("f3", true, "ut", &rw), 0);
	assert_int_equal(nvl_bdev_open("f3", false, "ut", &ro), 0);
	/* rejected before the backend */
	assert_int_equal(rw1(rw, NVL_BDEV_IO_READ, 0, DISK_SIZE, buf, 4096), -EINVAL);
	assert_int_equal(rw1(rw, NVL_BDEV_IO_READ, 0, DISK_SIZE - 4096, buf, 8192), -EINVAL);
	assert_int_equal(rw1(rw, NVL_BDEV_IO_READ, 0, 512, buf, 4096), -EINVAL);
	assert_int_equal(rw1(rw, NVL_BDEV_IO_WRITE, 0, 0, buf, 512), -EINVAL);
	assert_int_equal(do_io(rw, NVL_BDEV_IO_UNMAP, 0, 4096, DISK_SIZE, NULL, 0), -EINVAL);
	assert_int_equal(rw1(ro, NVL_BDEV_IO_WRITE, 0, 0, buf, 4096), -EBADF);
	assert_int_equal(do_io(ro, NVL_BDEV_IO_WRITE_ZEROES, 0, 0, 4096, NULL, 0), -EBADF);
	assert_int_equal(rw1(ro, NVL_BDEV_IO_READ, 0, 0, buf, 4096), 0);
	nvl_bdev_get_stats(b, &st);
	assert_int_equal(st.ops[NVL_BDEV_IO_READ], 1);
	assert_int_equal(st.errors, 0);
	assert_int_equal(to_file(b)->bounced, 0);

	/* the file shrinks under the bdev: short transfers fail with -EIO, not garbage */
	assert_int_equal(ftruncate(g_fd, 4096 * 3), 0);
	assert_int_equal(rw1(rw, NVL_BDEV_IO_READ, 0, 4096 * 4, buf, 4096), -EIO);
	assert_int_equal(rw1(rw, NVL_BDEV_IO_READ, 0, 4096 * 2, buf, 8192), -EIO);
	nvl_bdev_get_stats(b, &st);
	assert_int_equal(st.errors, 2);
	assert_int_equal(ftruncate(g_fd, DISK_SIZE), 0);
	nvl_bdev_close(rw);
	nvl_bdev_close(ro);

	/* a read-only bdev: no writable opens, no write types */
	b = make_file_bdev("f3ro", g_path, 4096, NVL_BDEV_FILE_AUTO, true);
	assert_true(b->read_only);
	assert_int_equal(nvl_bdev_open("f3ro", true, "ut", &rw), -EROFS);
	assert_int_equal(nvl_bdev_open("f3ro", false, "ut", &ro), 0);
	assert_int_equal(do_io(ro, NVL_BDEV_IO_UNMAP, 0, 0, 4096, NULL, 0), -ENOTSUP);
	assert_int_equal(rw1(ro, NVL_BDEV_IO_READ, 0, 0, buf, 4096), 0);
	nvl_bdev_close(ro);
	free(buf);
}

static void
test_create_errors(void **state)
{
	struct nvl_bdev_file_opts o = { .name = "bad", .filename = "/nonexistent/x" };
	struct nvl_bdev *b;
	char small[PATH_MAX], odd[PATH_MAX];
	int fd;

	(void)state;
	assert_int_equal(nvl_bdev_file_create(&o, &b), -ENOENT);
	o.filename = "/dev/null"; /* a character device */
	assert_int_equal(nvl_bdev_file_create(&o, &b), -EINVAL);
	o.filename = DISK_DIR;
	assert_true(nvl_bdev_file_create(&o, &b) < 0);
	o.filename = g_path;
	o.block_size = 1000;
	assert_int_equal(nvl_bdev_file_create(&o, &b), -EINVAL);
	o.block_size = 256;
	assert_int_equal(nvl_bdev_file_create(&o, &b), -EINVAL);
	o.block_size = 131072;
	assert_int_equal(nvl_bdev_file_create(&o, &b), -EINVAL);
	o.block_size = 0;
	o.name = "";
	assert_int_equal(nvl_bdev_file_create(&o, &b), -EINVAL);
	o.name = "dup";
	o.shared = true;
	assert_int_equal(nvl_bdev_file_create(&o, &b), 0);
	assert_int_equal(nvl_bdev_file_create(&o, &b), -EEXIST);
	o.name = "dup2";   /* another bdev on the same file, not shared */
	o.shared = false;
	assert_int_equal(nvl_bdev_file_create(&o, &b), -EBUSY);
	/* smaller than one block */
	fd = ut_tmpfile(DISK_DIR, 100, small);
	close(fd);
	o.name = "small";
	o.filename = small;
	assert_int_equal(nvl_bdev_file_create(&o, &b), -EINVAL);
	unlink(small);
	/* a size that is not whole blocks: the tail is ignored */
	fd = ut_tmpfile(DISK_DIR, 3 * 4096 + 100, odd);
	close(fd);
	o.name = "odd";
	o.filename = odd;
	o.block_size = 4096;
	assert_int_equal(nvl_bdev_file_create(&o, &b), 0);
	assert_int_equal(b->num_blocks, 3);
	assert_int_equal(nvl_bdev_unregister(b), 0);
	unlink(odd);
}

struct many {
	struct nvl_bdev_io io;
	struct iovec iov;
	int status;
	int done;
};

static void
many_done(struct nvl_bdev_io *io, int status)
{
	struct many *m = container_of(io, struct many, io);

	m->status = status;
	m->done++;
}

/* More I/Os in flight than the ring has entries. */
static void
test_many_inflight(void **state)
{
	struct nvl_bdev *b = make_file_bdev("f4", g_path, 4096, NVL_BDEV_FILE_AUTO, false);
	struct nvl_bdev_desc *d;
	const int n = 600;
	struct many *m = calloc((size_t)n, sizeof(*m));
	uint8_t *buf;
	int done;

	(void)state;
	buf = ut_aligned((size_t)n * 4096);
	ut_fill(buf, (size_t)n * 4096, 7);
	assert_int_equal(nvl_bdev_open("f4", true, "ut", &d), 0);
	for (int i = 0; i < n; i++) {
		m[i].iov = (struct iovec){ buf + (size_t)i * 4096, 4096 };
		m[i].io = (struct nvl_bdev_io){ .type = NVL_BDEV_IO_WRITE, .offset = (uint64_t)i * 4096,
						.length = 4096, .iov = &m[i].iov, .iovcnt = 1,
						.cb = many_done };
		assert_int_equal(nvl_bdev_submit(d, &m[i].io), 0);
	}
	assert_true(nvl_bdev_inflight(b) > 0);
	assert_true(UT_POLL_UNTIL(({
		done = 0;
		for (int i = 0; i < n; i++)
			done += m[i].done;
		done == n;
	}), 10000));
	for (int i = 0; i < n; i++) {
		assert_int_equal(m[i].done, 1);
		assert_int_equal(m[i].status, 0);
	}
	assert_int_equal(nvl_bdev_inflight(b), 0);
	{
		uint8_t *chk = malloc((size_t)n * 4096);

		assert_int_equal(pread(g_fd, chk, (size_t)n * 4096, 0), n * 4096);
		assert_memory_equal(chk, buf, (size_t)n * 4096);
		free(chk);
	}
	nvl_bdev_close(d);
	free(buf);
	free(m);
}

static void
test_tmpfs_and_modes(void **state)
{
	char shm[PATH_MAX];
	struct statfs sfs;
	int fd;
	struct nvl_bdev *b;
	struct nvl_bdev_desc *d;
	uint8_t *w = malloc(8192 + 1), *r = malloc(8192 + 1);
	json_t *j;

	(void)state;
	if (statfs(SHM_DIR, &sfs) < 0 || sfs.f_type != TMPFS_MAGIC)
		skip();
	fd = ut_tmpfile(SHM_DIR, 1 << 20, shm);
	ut_fill(w, 8193, 8);
	/* auto on tmpfs: inline preadv/pwritev (io_uring would use worker threads) */
	b = make_file_bdev("shm0", shm, 0, NVL_BDEV_FILE_AUTO, false);
	assert_true(to_file(b)->sync_inline);
	assert_false(to_file(b)->direct);
	j = nvl_bdev_to_json(b);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(
				    j, "driver_specific"), "file"), "io_mode")), "sync");
	json_decref(j);
	assert_int_equal(nvl_bdev_open("shm0", true, "ut", &d), 0);
	g_ring_writes = (struct ut_writes){ 0 };
	g_sync_writes = (struct ut_writes){ 0 };
	assert_int_equal(rw1(d, NVL_BDEV_IO_WRITE, 0, 0, w, 4096), 0);
	assert_int_equal(g_sync_writes.n, 1);
	assert_int_equal(g_sync_writes.flags & RWF_DSYNC, 0);
	assert_int_equal(rw1(d, NVL_BDEV_IO_WRITE, NVL_BDEV_IO_FUA, 4096, w + 1, 8192), 0);
	assert_int_equal(g_sync_writes.n, 2);
	assert_int_equal(g_sync_writes.flags & RWF_DSYNC, RWF_DSYNC);
	assert_int_equal(g_ring_writes.n, 0); /* inline, not through the ring */
	assert_int_equal(rw1(d, NVL_BDEV_IO_READ, 0, 4096, r + 1, 8192), 0);
	assert_memory_equal(r + 1, w + 1, 8192);
	assert_int_equal(do_io(d, NVL_BDEV_IO_WRITE_ZEROES, 0, 4096, 4096, NULL, 0), 0);
	assert_int_equal(rw1(d, NVL_BDEV_IO_READ, 0, 4096, r, 8192), 0);
	assert_true(ut_is_zero(r, 4096));
	assert_int_equal(do_io(d, NVL_BDEV_IO_FLUSH, 0, 0, 0, NULL, 0), 0);
	nvl_bdev_close(d);
	/* uring mode on the same file */
	b = make_file_bdev("shm1", shm, 0, NVL_BDEV_FILE_URING, false);
	assert_false(to_file(b)->sync_inline);
	assert_int_equal(nvl_bdev_open("shm1", true, "ut", &d), 0);
	assert_int_equal(rw1(d, NVL_BDEV_IO_READ, 0, 8192, r, 4096), 0);
	assert_memory_equal(r, w + 1 + 4096, 4096);
	nvl_bdev_close(d);
	/* buffered mode on a disk file: no O_DIRECT, through the ring */
	b = make_file_bdev("buf0", g_path, 0, NVL_BDEV_FILE_BUFFERED, false);
	assert_false(to_file(b)->direct);
	assert_false(to_file(b)->sync_inline);
	assert_int_equal(b->block_size, 512);
	assert_int_equal(nvl_bdev_open("buf0", true, "ut", &d), 0);
	assert_int_equal(rw1(d, NVL_BDEV_IO_WRITE, 0, 512, w + 1, 1024), 0);
	assert_int_equal(rw1(d, NVL_BDEV_IO_READ, 0, 512, r + 1, 1024), 0);
	assert_memory_equal(r + 1, w + 1, 1024);
	assert_int_equal(to_file(b)->bounced, 0);
	nvl_bdev_close(d);
	close(fd);
	unlink(shm);
	free(w);
	free(r);
}


/* ---- block status -------------------------------------------------------------------- */

struct bs_done {
	int calls;
	int status;
};

static void
bs_cb(struct nvl_bdev_bstat *q, int status)
{
	struct bs_done *d = q->cb_arg;

	d->calls++;
	d->status = status;
}

static unsigned
bstat(struct nvl_bdev_desc *d, uint64_t off, uint64_t len, struct nvl_bdev_extent *ext,
      unsigned max)
{
	struct nvl_bdev_bstat q = { .offset = off, .length = len, .ext = ext, .max_ext = max,
				    .cb = bs_cb };
	struct bs_done dn = { 0 };

	q.cb_arg = &dn;
	assert_int_equal(nvl_bdev_block_status(d, &q), 0);
	assert_int_equal(dn.calls, 1); /* answered inline */
	assert_int_equal(dn.status, 0);
	return q.next;
}

#define HZ (NVL_BDEV_EXT_HOLE | NVL_BDEV_EXT_ZERO)

static void
expect_ext(const struct nvl_bdev_extent *e, uint64_t len, uint32_t flags)
{
	if (e->length != len || e->flags != flags)
		fail_msg("extent %llu/%u, expected %llu/%u", (unsigned long long)e->length,
			 e->flags, (unsigned long long)len, flags);
}

/* A sparse file on dir, written at 1 MiB (12 KiB) and 5 MiB (4 KiB), as bdev of block bs. */
static void
run_block_status(const char *dir, uint32_t bs, int mode)
{
	const uint64_t M = 1 << 20, K = 1024;
	char path[PATH_MAX];
	int fd = ut_tmpfile(dir, DISK_SIZE, path);
	struct nvl_bdev_extent ext[16];
	struct nvl_bdev_desc *d;
	uint8_t *w = ut_aligned(65536);
	unsigned n;

	ut_fill(w, 65536, 9);
	assert_int_equal(pwrite(fd, w, 12 * K, (off_t)M), (ssize_t)(12 * K));
	assert_int_equal(pwrite(fd, w, 4 * K, (off_t)(5 * M)), (ssize_t)(4 * K));
	make_file_bdev("fbs", path, bs, mode, false);
	assert_int_equal(nvl_bdev_open("fbs", true, "ut", &d), 0);
	n = bstat(d, 0, DISK_SIZE, ext, 16);
	assert_int_equal(n, 5);
	expect_ext(&ext[0], M, HZ);
	expect_ext(&ext[1], 12 * K, 0);
	expect_ext(&ext[2], 4 * M - 12 * K, HZ);
	expect_ext(&ext[3], 4 * K, 0);
	expect_ext(&ext[4], DISK_SIZE - 5 * M - 4 * K, HZ);
	/* a question inside: clipped to it */
	n = bstat(d, M + 8 * K, 8 * K, ext, 16);
	assert_int_equal(n, 2);
	expect_ext(&ext[0], 4 * K, 0);
	expect_ext(&ext[1], 4 * K, HZ);
	/* room for one: the first extent, no longer than asked */
	n = bstat(d, 0, 2 * M, ext, 1);
	assert_int_equal(n, 1);
	expect_ext(&ext[0], M, HZ);
	/* unmap punches a hole: the file's map says so at once */
	assert_int_equal(do_io(d, NVL_BDEV_IO_UNMAP, 0, M, 12 * K, NULL, 0), 0);
	n = bstat(d, 0, 4 * M, ext, 16);
	assert_int_equal(n, 1);
	expect_ext(&ext[0], 4 * M, HZ);
	/* a partly written block is data: 512 bytes at 2 MiB + 512 */
	assert_int_equal(pwrite(fd, w, 512, (off_t)(2 * M + 512)), 512);
	n = bstat(d, 2 * M, M, ext, 16);
	assert_int_equal(n, 2);
	assert_true(ext[0].flags == 0 && ext[0].length >= 4 * K && ext[0].length % bs == 0);
	assert_int_equal(ext[1].flags, HZ);
	nvl_bdev_close(d);
	assert_int_equal(nvl_bdev_unregister(nvl_bdev_get_by_name("fbs")), 0);
	close(fd);
	unlink(path);
	free(w);
}

static void
test_block_status(void **state)
{
	(void)state;
	run_block_status(DISK_DIR, 4096, NVL_BDEV_FILE_AUTO);     /* ext4, O_DIRECT */
	run_block_status(DISK_DIR, 512, NVL_BDEV_FILE_BUFFERED);  /* blocks below the fs's */
	run_block_status(SHM_DIR, 4096, NVL_BDEV_FILE_AUTO);      /* tmpfs, inline */
}

static void
test_save_config(void **state)
{
	struct nvl_bdev_file_opts o = { .name = "cfg", .filename = g_path, .block_size = 4096,
					.read_only = true, .rpc_method = "bdev_aio_create" };
	struct nvl_bdev *b;
	json_t *arr = json_array(), *c, *p;

	(void)state;
	assert_int_equal(nvl_bdev_file_create(&o, &b), 0);
	nvl_bdev_write_config(arr);
	c = json_array_get(arr, 0);
	assert_string_equal(json_string_value(json_object_get(c, "method")), "bdev_aio_create");
	p = json_object_get(c, "params");
	assert_string_equal(json_string_value(json_object_get(p, "name")), "cfg");
	assert_string_equal(json_string_value(json_object_get(p, "filename")), g_path);
	assert_int_equal(json_integer_value(json_object_get(p, "block_size")), 4096);
	assert_true(json_is_true(json_object_get(p, "readonly")));
	assert_non_null(json_object_get(p, "uuid"));
	json_decref(arr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_direct_io_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounce_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zeroes_and_unmap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_inflight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmpfs_and_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_block_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_config, setup, teardown),
	};

	return UT_RUN(tests);
}
