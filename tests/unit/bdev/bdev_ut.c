/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the bdev core (src/bdev/bdev.c) and the ram backend
 * (src/bdev/bdev_ram.c): registration rules, open/close and claims, every
 * validation of nvl_bdev_submit (which must fail before the backend sees the
 * I/O), statistics and histograms, JSON and save_config output, UUIDs.
 * A counting test backend checks what reaches a backend.
 */
#include "bdev/bdev.c"
#include "bdev/bdev_ram.c"
#include "common/ut.h"

/* ---- a test backend that records what reaches it ------------------------- */

struct ut_bdev {
	struct nvl_bdev bdev;
	int submits;
	int complete_with; /* status for inline completion; 1 = return -EIO instead */
	bool destroyed;
};

static int
ut_submit(struct nvl_bdev *b, struct nvl_bdev_io *io)
{
	struct ut_bdev *u = container_of(b, struct ut_bdev, bdev);

	u->submits++;
	if (u->complete_with == 1)
		return -EIO;
	nvl_bdev_io_complete(io, u->complete_with);
	return 0;
}

static void
ut_destroy(struct nvl_bdev *b)
{
	container_of(b, struct ut_bdev, bdev)->destroyed = true;
}

static const struct nvl_bdev_ops ut_ops = {
	.name = "ut",
	.submit = ut_submit,
	.destroy = ut_destroy,
};

static void
ut_bdev_init(struct ut_bdev *u, const char *name, uint32_t bs, uint64_t nb, uint32_t types)
{
	memset(u, 0, sizeof(*u));
	nvl_strlcpy(u->bdev.name, name, sizeof(u->bdev.name));
	u->bdev.ops = &ut_ops;
	u->bdev.block_size = bs;
	u->bdev.num_blocks = nb;
	u->bdev.io_types = types;
}

#define ALL_TYPES ((1u << NVL_BDEV_IO_NTYPES) - 1)

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

static int
submit(struct nvl_bdev_desc *d, uint8_t type, uint32_t flags, uint64_t off, uint64_t len,
       struct iovec *iov, int iovcnt, struct done *dn)
{
	static struct nvl_bdev_io io;

	memset(&io, 0, sizeof(io));
	io.type = type;
	io.flags = flags;
	io.offset = off;
	io.length = len;
	io.iov = iov;
	io.iovcnt = iovcnt;
	io.cb = io_done;
	io.cb_arg = dn;
	return nvl_bdev_submit(d, &io);
}

static int
setup(void **state)
{
	(void)state;
	return ut_reactors_init(1);
}

static int
teardown(void **state)
{
	(void)state;
	nvl_bdev_fini();
	nvl_reactors_fini();
	return 0;
}

/* ---- registration --------------------------------------------------------- */

static void
test_register_rules(void **state)
{
	struct ut_bdev a, b;

	(void)state;
	ut_bdev_init(&a, "", 512, 8, ALL_TYPES);
	assert_int_equal(nvl_bdev_register(&a.bdev), -EINVAL);
	ut_bdev_init(&a, "a", 0, 8, ALL_TYPES);
	assert_int_equal(nvl_bdev_register(&a.bdev), -EINVAL);
	ut_bdev_init(&a, "a", 1000, 8, ALL_TYPES);
	assert_int_equal(nvl_bdev_register(&a.bdev), -EINVAL);
	ut_bdev_init(&a, "a", 512, 0, ALL_TYPES);
	assert_int_equal(nvl_bdev_register(&a.bdev), -EINVAL);
	ut_bdev_init(&a, "a", 4096, UINT64_MAX / 2048, ALL_TYPES); /* size overflows */
	assert_int_equal(nvl_bdev_register(&a.bdev), -EINVAL);
	ut_bdev_init(&a, "a", 512, 8, ALL_TYPES);
	a.bdev.ops = NULL;
	assert_int_equal(nvl_bdev_register(&a.bdev), -EINVAL);

	ut_bdev_init(&a, "a", 512, 8, ALL_TYPES);
	assert_int_equal(nvl_bdev_register(&a.bdev), 0);
	/* a random RFC 4122 v4 UUID was filled in, product name defaults to the type */
	assert_int_equal(a.bdev.uuid[6] >> 4, 4);
	assert_int_equal(a.bdev.uuid[8] & 0xc0, 0x80);
	assert_string_equal(a.bdev.product_name, "ut");
	ut_bdev_init(&b, "a", 512, 8, ALL_TYPES);
	assert_int_equal(nvl_bdev_register(&b.bdev), -EEXIST);
	assert_ptr_equal(nvl_bdev_get_by_name("a"), &a.bdev);
	assert_null(nvl_bdev_get_by_name("b"));
	ut_bdev_init(&b, "b", 4096, 8, ALL_TYPES);
	memset(b.bdev.uuid, 0x11, 16); /* given UUIDs are kept */
	assert_int_equal(nvl_bdev_register(&b.bdev), 0);
	assert_int_equal(b.bdev.uuid[6], 0x11);
	assert_ptr_equal(nvl_bdev_first(), &a.bdev);
	assert_ptr_equal(nvl_bdev_next(&a.bdev), &b.bdev);
	assert_null(nvl_bdev_next(&b.bdev));
	assert_int_equal(nvl_bdev_unregister(&a.bdev), 0);
	assert_true(a.destroyed);
	nvl_bdev_fini();
	assert_true(b.destroyed);
	assert_null(nvl_bdev_first());
}

static void
test_open_close_claims(void **state)
{
	struct ut_bdev a;
	struct nvl_bdev_desc *d1, *d2;

	(void)state;
	ut_bdev_init(&a, "a", 512, 8, ALL_TYPES);
	assert_int_equal(nvl_bdev_register(&a.bdev), 0);
	assert_int_equal(nvl_bdev_open("nosuch", false, "x", &d1), -ENOENT);
	assert_int_equal(nvl_bdev_open("a", true, "nvmf cnode1 ns 1", &d1), 0);
	assert_int_equal(nvl_bdev_open("a", false, "nbd export e0", &d2), 0);
	assert_int_equal(a.bdev.open_count, 2);
	assert_int_equal(a.bdev.open_writers, 1);
	assert_string_equal(a.bdev.claimed_by, "nvmf cnode1 ns 1");
	/* delete refused while open, and the message can name the user */
	assert_int_equal(nvl_bdev_unregister(&a.bdev), -EBUSY);
	assert_false(a.bdev.read_only);
	nvl_bdev_close(d1);
	assert_int_equal(nvl_bdev_unregister(&a.bdev), -EBUSY);
	nvl_bdev_close(d2);
	assert_int_equal(a.bdev.open_count, 0);
	assert_int_equal(a.bdev.open_writers, 0);
	assert_string_equal(a.bdev.claimed_by, "");
	nvl_bdev_close(NULL);
	/* read-only bdevs refuse writable opens */
	a.bdev.read_only = true;
	assert_int_equal(nvl_bdev_open("a", true, "w", &d1), -EROFS);
	assert_int_equal(nvl_bdev_open("a", false, "r", &d1), 0);
	nvl_bdev_close(d1);
	assert_int_equal(nvl_bdev_unregister(&a.bdev), 0);
	assert_true(a.destroyed);
}

/* ---- submit validation ---------------------------------------------------- */

static void
test_submit_validation(void **state)
{
	struct ut_bdev a;
	struct nvl_bdev_desc *rw, *ro;
	struct done dn = { 0 };
	char buf[8192];
	struct iovec iov[2] = { { buf, 4096 }, { buf + 4096, 4096 } };
	struct iovec big[IOV_MAX + 1];
	struct nvl_bdev_stats st;
	const uint64_t size = 64 * 4096;

	(void)state;
	ut_bdev_init(&a, "a", 4096, 64, ALL_TYPES);
	assert_int_equal(nvl_bdev_register(&a.bdev), 0);
	assert_int_equal(nvl_bdev_open("a", true, "t", &rw), 0);
	assert_int_equal(nvl_bdev_open("a", false, "t", &ro), 0);

	/* every case fails with the stated error before the backend is called */
	assert_int_equal(submit(rw, NVL_BDEV_IO_NTYPES, 0, 0, 4096, iov, 1, &dn), -EINVAL);
	assert_int_equal(submit(rw, 200, 0, 0, 4096, iov, 1, &dn), -EINVAL);
	assert_int_equal(submit(rw, NVL_BDEV_IO_READ, 0, 512, 4096, iov, 1, &dn), -EINVAL);
	assert_int_equal(submit(rw, NVL_BDEV_IO_READ, 0, 0, 512, iov, 1, &dn), -EINVAL);
	assert_int_equal(submit(rw, NVL_BDEV_IO_READ, 0, size, 4096, iov, 1, &dn), -EINVAL);
	assert_int_equal(submit(rw, NVL_BDEV_IO_READ, 0, size - 4096, 8192, iov, 2, &dn), -EINVAL);
	assert_int_equal(submit(rw, NVL_BDEV_IO_READ, 0, UINT64_MAX - 4095, 8192, iov, 2, &dn),
			 -EINVAL); /* offset + length wraps */
	assert_int_equal(submit(rw, NVL_BDEV_IO_WRITE_ZEROES, 0, UINT64_MAX & ~4095ULL,
				8192, NULL, 0, &dn), -EINVAL);
	assert_int_equal(submit(rw, NVL_BDEV_IO_UNMAP, 0, 0, size + 4096, NULL, 0, &dn), -EINVAL);
	assert_int_equal(submit(rw, NVL_BDEV_IO_FLUSH, 0, 4096, 100, NULL, 0, &dn), -EINVAL);
	assert_int_equal(submit(rw, NVL_BDEV_IO_READ, 0, 0, 0, iov, 1, &dn), -EINVAL);
	assert_int_equal(submit(rw, NVL_BDEV_IO_READ, 0, 0, 4096, iov, 0, &dn), -EINVAL);
	assert_int_equal(submit(rw, NVL_BDEV_IO_READ, 0, 0, 4096, iov, -1, &dn), -EINVAL);
	assert_int_equal(submit(rw, NVL_BDEV_IO_READ, 0, 0, 4096, iov, 2, &dn), -EINVAL);
	assert_int_equal(submit(rw, NVL_BDEV_IO_WRITE, 0, 0, 8192, iov, 1, &dn), -EINVAL);
	for (int i = 0; i <= IOV_MAX; i++) {
		big[i].iov_base = buf;
		big[i].iov_len = 4096;
	}
	assert_int_equal(submit(rw, NVL_BDEV_IO_READ, 0, 0, 4096ULL * (IOV_MAX + 1), big,
				IOV_MAX + 1, &dn), -EINVAL);
	/* read-only descriptor: no write, write-zeroes, unmap */
	assert_int_equal(submit(ro, NVL_BDEV_IO_WRITE, 0, 0, 4096, iov, 1, &dn), -EBADF);
	assert_int_equal(submit(ro, NVL_BDEV_IO_WRITE_ZEROES, 0, 0, 4096, NULL, 0, &dn), -EBADF);
	assert_int_equal(submit(ro, NVL_BDEV_IO_UNMAP, 0, 0, 4096, NULL, 0, &dn), -EBADF);
	assert_int_equal(a.submits, 0);
	assert_int_equal(dn.calls, 0);

	/* the valid ones reach it; read and flush are fine on a read-only descriptor */
	assert_int_equal(submit(ro, NVL_BDEV_IO_READ, 0, size - 8192, 8192, iov, 2, &dn), 0);
	assert_int_equal(submit(ro, NVL_BDEV_IO_FLUSH, 0, 0, 0, NULL, 0, &dn), 0);
	assert_int_equal(submit(rw, NVL_BDEV_IO_FLUSH, 0, 0, size, NULL, 0, &dn), 0);
	assert_int_equal(submit(rw, NVL_BDEV_IO_WRITE, NVL_BDEV_IO_FUA, 0, 4096, iov, 1, &dn), 0);
	assert_int_equal(submit(rw, NVL_BDEV_IO_READ, 0, 0, 4096ULL * IOV_MAX, big, IOV_MAX, &dn),
			 -EINVAL); /* beyond the 64-block device */
	assert_int_equal(a.submits, 4);
	assert_int_equal(dn.calls, 4);

	/* unsupported types */
	a.bdev.io_types = 1u << NVL_BDEV_IO_READ;
	assert_int_equal(submit(rw, NVL_BDEV_IO_UNMAP, 0, 0, 4096, NULL, 0, &dn), -ENOTSUP);
	a.bdev.io_types = ALL_TYPES;

	/* backend failures: returned error -> no callback, counted; async error -> callback */
	a.complete_with = 1;
	assert_int_equal(submit(rw, NVL_BDEV_IO_READ, 0, 0, 4096, iov, 1, &dn), -EIO);
	assert_int_equal(dn.calls, 4);
	a.complete_with = -ENOSPC;
	assert_int_equal(submit(rw, NVL_BDEV_IO_WRITE, 0, 0, 4096, iov, 1, &dn), 0);
	assert_int_equal(dn.calls, 5);
	assert_int_equal(dn.status, -ENOSPC);
	nvl_bdev_get_stats(&a.bdev, &st);
	assert_int_equal(st.errors, 2);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.ops[NVL_BDEV_IO_READ], 1);
	assert_int_equal(st.ops[NVL_BDEV_IO_FLUSH], 2);
	assert_int_equal(st.ops[NVL_BDEV_IO_WRITE], 1);
	assert_int_equal(st.bytes[NVL_BDEV_IO_READ], 8192);
	assert_int_equal(nvl_bdev_inflight(&a.bdev), 0);
	nvl_bdev_close(rw);
	nvl_bdev_close(ro);
	assert_int_equal(nvl_bdev_unregister(&a.bdev), 0);
}

/* ---- ram backend ---------------------------------------------------------- */

static void
test_ram_create_bounds(void **state)
{
	struct nvl_bdev_ram_opts o = { .name = "r", .num_blocks = 16, .block_size = 512 };
	struct nvl_bdev *b;
	char longname[NVL_BDEV_NAME_MAX + 1];

	(void)state;
	o.block_size = 256;
	assert_int_equal(nvl_bdev_ram_create(&o, &b), -EINVAL);
	o.block_size = 131072;
	assert_int_equal(nvl_bdev_ram_create(&o, &b), -EINVAL);
	o.block_size = 1536;
	assert_int_equal(nvl_bdev_ram_create(&o, &b), -EINVAL);
	o.block_size = 512;
	o.num_blocks = 0;
	assert_int_equal(nvl_bdev_ram_create(&o, &b), -EINVAL);
	o.num_blocks = (1ULL << 40) / 512 + 1;
	assert_int_equal(nvl_bdev_ram_create(&o, &b), -EINVAL);
	o.num_blocks = 16;
	o.name = "";
	assert_int_equal(nvl_bdev_ram_create(&o, &b), -EINVAL);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	o.name = longname;
	assert_int_equal(nvl_bdev_ram_create(&o, &b), -EINVAL);
	longname[NVL_BDEV_NAME_MAX - 1] = '\0'; /* 63 characters fit */
	assert_int_equal(nvl_bdev_ram_create(&o, &b), 0);
	assert_int_equal(nvl_bdev_ram_create(&o, &b), -EEXIST);
	/* more than this machine's memory: refused cleanly, not an OOM kill */
	o.name = "huge";
	o.block_size = 65536;
	o.num_blocks = (1ULL << 40) / 65536;
	assert_int_equal(nvl_bdev_ram_create(&o, &b), -ENOMEM);
	assert_null(nvl_bdev_get_by_name("huge"));
}

static void
test_ram_io(void **state)
{
	struct nvl_bdev_ram_opts o = { .name = "r0", .num_blocks = 256, .block_size = 512 };
	struct nvl_bdev *b;
	struct nvl_bdev_desc *d;
	struct done dn = { 0 };
	uint8_t *w = malloc(65536), *r = malloc(65536);
	struct iovec wv[3], rv[2];
	struct nvl_bdev_stats st;

	(void)state;
	assert_int_equal(nvl_bdev_ram_create(&o, &b), 0);
	assert_string_equal(b->product_name, "Malloc disk");
	assert_int_equal(nvl_bdev_open("r0", true, "t", &d), 0);
	/* fresh memory reads as zeroes */
	rv[0] = (struct iovec){ r, 65536 };
	memset(r, 0xee, 65536);
	assert_int_equal(submit(d, NVL_BDEV_IO_READ, 0, 0, 65536, rv, 1, &dn), 0);
	assert_int_equal(dn.calls, 1); /* ram completes inline */
	assert_true(ut_is_zero(r, 65536));
	/* scatter write, gather read with other boundaries */
	ut_fill(w, 65536, 1);
	wv[0] = (struct iovec){ w, 1000 };
	wv[1] = (struct iovec){ w + 1000, 24 };
	wv[2] = (struct iovec){ w + 1024, 8192 - 1024 };
	assert_int_equal(submit(d, NVL_BDEV_IO_WRITE, NVL_BDEV_IO_FUA, 4096, 8192, wv, 3, &dn), 0);
	rv[0] = (struct iovec){ r, 3 };
	rv[1] = (struct iovec){ r + 3, 8192 - 3 };
	assert_int_equal(submit(d, NVL_BDEV_IO_READ, 0, 4096, 8192, rv, 2, &dn), 0);
	assert_memory_equal(r, w, 8192);
	/* write-zeroes and unmap read back as zeroes, neighbours intact */
	assert_int_equal(submit(d, NVL_BDEV_IO_WRITE_ZEROES, 0, 4096, 512, NULL, 0, &dn), 0);
	assert_int_equal(submit(d, NVL_BDEV_IO_UNMAP, NVL_BDEV_IO_NO_HOLE, 4096 + 7680, 512, NULL, 0,
				&dn), 0);
	rv[0] = (struct iovec){ r, 8192 };
	assert_int_equal(submit(d, NVL_BDEV_IO_READ, 0, 4096, 8192, rv, 1, &dn), 0);
	assert_true(ut_is_zero(r, 512));
	assert_memory_equal(r + 512, w + 512, 8192 - 1024);
	assert_true(ut_is_zero(r + 7680, 512));
	assert_int_equal(submit(d, NVL_BDEV_IO_FLUSH, 0, 0, 0, NULL, 0, &dn), 0);
	assert_int_equal(dn.status, 0);
	assert_int_equal(dn.calls, 7);

	nvl_bdev_get_stats(b, &st);
	assert_int_equal(st.ops[NVL_BDEV_IO_READ], 3);
	assert_int_equal(st.bytes[NVL_BDEV_IO_READ], 65536 + 8192 + 8192);
	assert_int_equal(st.ops[NVL_BDEV_IO_WRITE], 1);
	assert_int_equal(st.bytes[NVL_BDEV_IO_WRITE], 8192);
	assert_int_equal(st.ops[NVL_BDEV_IO_WRITE_ZEROES], 1);
	assert_int_equal(st.ops[NVL_BDEV_IO_UNMAP], 1);
	assert_int_equal(st.ops[NVL_BDEV_IO_FLUSH], 1);
	assert_int_equal(st.hist_read.count, 3);
	assert_int_equal(st.hist_write.count, 1);
	assert_true(st.lat_max_ns[NVL_BDEV_IO_READ] >= st.hist_read.min);
	assert_int_equal(st.errors, 0);

	assert_int_equal(nvl_bdev_unregister(b), -EBUSY);
	nvl_bdev_close(d);
	assert_int_equal(nvl_bdev_unregister(b), 0);
	free(w);
	free(r);
}


/* ---- block status --------------------------------------------------------------------- */

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

/* Ask and expect an inline answer: \return its status or the call's error. */
static int
bstat(struct nvl_bdev_desc *d, uint64_t off, uint64_t len, struct nvl_bdev_extent *ext,
      unsigned max, unsigned *n)
{
	static struct nvl_bdev_bstat q;
	struct bs_done dn = { 0 };
	int rc;

	memset(&q, 0, sizeof(q));
	q.offset = off;
	q.length = len;
	q.ext = ext;
	q.max_ext = max;
	q.cb = bs_cb;
	q.cb_arg = &dn;
	rc = nvl_bdev_block_status(d, &q);
	if (rc < 0) {
		assert_int_equal(dn.calls, 0);
		return rc;
	}
	assert_int_equal(dn.calls, 1);
	*n = q.next;
	return dn.status;
}

#define HZ (NVL_BDEV_EXT_HOLE | NVL_BDEV_EXT_ZERO)

static void
expect_ext(const struct nvl_bdev_extent *e, uint64_t len, uint32_t flags)
{
	assert_int_equal(e->length, len);
	assert_int_equal(e->flags, flags);
}

/* A backend answering more than it was asked (the core must not pass it on). */
static int
ut_bad_bstat(struct nvl_bdev *b, struct nvl_bdev_bstat *q)
{
	(void)b;
	q->ext[0].length = q->length + 512;
	q->ext[0].flags = HZ;
	q->next = 1;
	nvl_bdev_bstat_complete(q, 0);
	return 0;
}

static const struct nvl_bdev_ops ut_bad_ops = {
	.name = "ut",
	.submit = ut_submit,
	.destroy = ut_destroy,
	.block_status = ut_bad_bstat,
};

static void
test_block_status_core(void **state)
{
	struct ut_bdev u, v;
	struct nvl_bdev_desc *d;
	struct nvl_bdev_extent ext[4];
	unsigned n = 0;

	(void)state;
	ut_bdev_init(&u, "u0", 512, 64, ALL_TYPES);
	assert_int_equal(nvl_bdev_register(&u.bdev), 0);
	assert_int_equal(nvl_bdev_open("u0", false, "t", &d), 0);
	/* no op: everything is allocated data, inline; read-only descriptors may ask */
	assert_int_equal(bstat(d, 1024, 4096, ext, 4, &n), 0);
	assert_int_equal(n, 1);
	expect_ext(&ext[0], 4096, 0);
	/* the range is checked like I/O */
	assert_int_equal(bstat(d, 0, 0, ext, 4, &n), -EINVAL);
	assert_int_equal(bstat(d, 100, 512, ext, 4, &n), -EINVAL);
	assert_int_equal(bstat(d, 0, 500, ext, 4, &n), -EINVAL);
	assert_int_equal(bstat(d, 0, 64 * 512 + 512, ext, 4, &n), -EINVAL);
	assert_int_equal(bstat(d, UINT64_MAX - 511, 512, ext, 4, &n), -EINVAL);
	assert_int_equal(bstat(d, 0, 512, ext, 0, &n), -EINVAL);
	assert_int_equal(bstat(d, 0, 512, NULL, 4, &n), -EINVAL);
	assert_int_equal(bstat(d, 63 * 512, 512, ext, 1, &n), 0);
	nvl_bdev_close(d);
	/* a backend's answer that breaks the contract becomes "allocated" */
	ut_bdev_init(&v, "u1", 512, 64, ALL_TYPES);
	v.bdev.ops = &ut_bad_ops;
	assert_int_equal(nvl_bdev_register(&v.bdev), 0);
	assert_int_equal(nvl_bdev_open("u1", false, "t", &d), 0);
	assert_int_equal(bstat(d, 0, 4096, ext, 4, &n), 0);
	assert_int_equal(n, 1);
	expect_ext(&ext[0], 4096, 0);
	nvl_bdev_close(d);
	assert_int_equal(nvl_bdev_unregister(&u.bdev), 0);
	assert_int_equal(nvl_bdev_unregister(&v.bdev), 0);
}

static void
test_ram_block_status(void **state)
{
	/* 320 KiB: five 64 KiB chunks; 1 KiB blocks */
	struct nvl_bdev_ram_opts o = { .name = "r0", .num_blocks = 320, .block_size = 1024 };
	const uint64_t K = 1024, C = 64 * K;
	struct nvl_bdev *b;
	struct nvl_bdev_desc *d;
	struct nvl_bdev_extent ext[8];
	struct done dn = { 0 };
	uint8_t w[2048];
	struct iovec wv = { w, sizeof(w) };
	unsigned n = 0;

	(void)state;
	assert_int_equal(nvl_bdev_ram_create(&o, &b), 0);
	assert_non_null(b->ops->block_status);
	assert_int_equal(nvl_bdev_open("r0", true, "t", &d), 0);
	/* fresh: one hole that reads as zeroes */
	assert_int_equal(bstat(d, 0, 5 * C, ext, 8, &n), 0);
	assert_int_equal(n, 1);
	expect_ext(&ext[0], 5 * C, HZ);
	/* a write across the boundary of chunks 1 and 2 makes both data */
	memset(w, 0xa5, sizeof(w));
	assert_int_equal(submit(d, NVL_BDEV_IO_WRITE, 0, 2 * C - K, 2 * K, &wv, 1, &dn), 0);
	assert_int_equal(bstat(d, 0, 5 * C, ext, 8, &n), 0);
	assert_int_equal(n, 3);
	expect_ext(&ext[0], C, HZ);
	expect_ext(&ext[1], 2 * C, 0);
	expect_ext(&ext[2], 2 * C, HZ);
	/* the range is clipped to the question, inside chunks too */
	assert_int_equal(bstat(d, C - 2 * K, 4 * K, ext, 8, &n), 0);
	assert_int_equal(n, 2);
	expect_ext(&ext[0], 2 * K, HZ);
	expect_ext(&ext[1], 2 * K, 0);
	/* room for one extent (NBD's REQ_ONE): the first run only */
	assert_int_equal(bstat(d, 0, 5 * C, ext, 1, &n), 0);
	assert_int_equal(n, 1);
	expect_ext(&ext[0], C, HZ);
	/* zeroing part of chunk 1 that leaves data there: still data */
	assert_int_equal(submit(d, NVL_BDEV_IO_WRITE_ZEROES, 0, C, K, NULL, 0, &dn), 0);
	assert_int_equal(bstat(d, C, C, ext, 8, &n), 0);
	expect_ext(&ext[0], C, 0);
	/* unmapping the written kilobyte of chunk 1: the chunk reads as zeroes again */
	assert_int_equal(submit(d, NVL_BDEV_IO_UNMAP, 0, 2 * C - K, K, NULL, 0, &dn), 0);
	assert_int_equal(bstat(d, 0, 5 * C, ext, 8, &n), 0);
	assert_int_equal(n, 3);
	expect_ext(&ext[0], 2 * C, HZ);
	expect_ext(&ext[1], C, 0);
	expect_ext(&ext[2], 2 * C, HZ);
	/* write-zeroes covering chunk 2 whole */
	assert_int_equal(submit(d, NVL_BDEV_IO_WRITE_ZEROES, NVL_BDEV_IO_NO_HOLE, 2 * C, C, NULL, 0,
				&dn), 0);
	assert_int_equal(bstat(d, 0, 5 * C, ext, 8, &n), 0);
	assert_int_equal(n, 1);
	expect_ext(&ext[0], 5 * C, HZ);
	/* memory taken back with contents: the scan finds the nonzero chunks */
	{
		struct bdev_ram *r = container_of(b, struct bdev_ram, bdev);

		r->mem[4 * C + 100] = 7;
		ram_scan(r);
		assert_int_equal(bstat(d, 0, 5 * C, ext, 8, &n), 0);
		assert_int_equal(n, 2);
		expect_ext(&ext[0], 4 * C, HZ);
		expect_ext(&ext[1], C, 0);
	}
	nvl_bdev_close(d);
}

static void
test_json_and_config(void **state)
{
	struct nvl_bdev_ram_opts o = { .name = "r1", .num_blocks = 2048, .block_size = 4096 };
	static const uint8_t uuid[16] = { 0x2b, 0x66, 0x01, 0xba, 0xea, 0xda, 0x44, 0xfb,
					  0x9a, 0x83, 0xa2, 0x0e, 0xb9, 0xeb, 0x9e, 0x90 };
	struct nvl_bdev *b;
	struct nvl_bdev_desc *d;
	json_t *j, *cfg, *arr;

	(void)state;
	o.uuid = uuid;
	assert_int_equal(nvl_bdev_ram_create(&o, &b), 0);
	j = nvl_bdev_to_json(b);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "r1");
	assert_string_equal(json_string_value(json_object_get(j, "product_name")), "Malloc disk");
	assert_int_equal(json_integer_value(json_object_get(j, "block_size")), 4096);
	assert_int_equal(json_integer_value(json_object_get(j, "num_blocks")), 2048);
	assert_string_equal(json_string_value(json_object_get(j, "uuid")),
			    "2b6601ba-eada-44fb-9a83-a20eb9eb9e90");
	assert_true(json_is_false(json_object_get(j, "claimed")));
	assert_null(json_object_get(j, "claimed_by"));
	assert_true(json_is_array(json_object_get(j, "aliases")));
	assert_true(json_is_true(json_object_get(json_object_get(j, "supported_io_types"), "unmap")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(
				 j, "driver_specific"), "ram"), "size_bytes")), 8 << 20);
	json_decref(j);
	assert_int_equal(nvl_bdev_open("r1", false, "exporter", &d), 0);
	j = nvl_bdev_to_json(b);
	assert_true(json_is_true(json_object_get(j, "claimed")));
	assert_string_equal(json_string_value(json_object_get(j, "claimed_by")), "exporter");
	json_decref(j);
	nvl_bdev_close(d);

	arr = json_array();
	nvl_bdev_write_config(arr);
	assert_int_equal(json_array_size(arr), 1);
	cfg = json_array_get(arr, 0);
	assert_string_equal(json_string_value(json_object_get(cfg, "method")), "bdev_malloc_create");
	j = json_object_get(cfg, "params");
	assert_string_equal(json_string_value(json_object_get(j, "name")), "r1");
	assert_int_equal(json_integer_value(json_object_get(j, "num_blocks")), 2048);
	assert_int_equal(json_integer_value(json_object_get(j, "block_size")), 4096);
	assert_string_equal(json_string_value(json_object_get(j, "uuid")),
			    "2b6601ba-eada-44fb-9a83-a20eb9eb9e90");
	json_decref(arr);
}

static void
test_uuid(void **state)
{
	static const struct {
		const char *s;
		int rc;
	} cases[] = {
		{ "2b6601ba-eada-44fb-9a83-a20eb9eb9e90", 0 },
		{ "2B6601BA-EADA-44FB-9A83-A20EB9EB9E90", 0 },
		{ "2b6601baeada44fb9a83a20eb9eb9e90", 0 },
		{ "", -EINVAL },
		{ "2b6601ba", -EINVAL },
		{ "2b6601ba-eada-44fb-9a83-a20eb9eb9e9", -EINVAL },
		{ "2b6601ba-eada-44fb-9a83-a20eb9eb9e900", -EINVAL },
		{ "2b6601ba-eada-44fb-9a83-a20eb9eb9e9g", -EINVAL },
		{ "zz6601ba-eada-44fb-9a83-a20eb9eb9e90", -EINVAL },
	};
	uint8_t u[16];
	char out[40];

	(void)state;
	for (size_t i = 0; i < UT_N(cases); i++) {
		int rc = nvl_uuid_parse(cases[i].s, u);

		if (rc != cases[i].rc)
			fail_msg("uuid_parse(\"%s\") = %d", cases[i].s, rc);
		if (rc == 0) {
			nvl_uuid_fmt(u, out);
			assert_string_equal(out, "2b6601ba-eada-44fb-9a83-a20eb9eb9e90");
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_close_claims, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submit_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ram_create_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ram_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_block_status_core, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ram_block_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_and_config, setup, teardown),
		cmocka_unit_test(test_uuid),
	};

	return UT_RUN(tests);
}
