/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * "ram" backend (RPC bdev_malloc_create): memory pre-faulted at creation
 * because first touch costs milliseconds per 2 MiB on these VMs
 * (MACHINE-NOTES.md). I/O is a memcpy on the submitting reactor and completes
 * inline. Any reactor may read/write concurrently; overlapping writes from
 * two hosts race exactly as they would on a real disk.
 *
 * Under a supervisor that keeps descriptors (the keeper, or systemd's fd
 * store: util/fdstore.h) the memory is a memfd stored as "bdev.ram.NAME", so
 * a worker that crashed and was restarted takes the same memory back when
 * its configuration creates the bdev again: the contents survive the crash.
 * Deleting the bdev (or a clean stop) drops it from the store. Without a
 * supervisor it is an anonymous mapping (transparent huge pages apply; for
 * memfds they do only when /sys/kernel/mm/transparent_hugepage/shmem_enabled
 * allows them).
 *
 * Block status: a bitmap with one bit per 64 KiB chunk (RAM_CHUNK; the last
 * one may be shorter) says "may hold data". A fresh bdev is all clear (the
 * memory reads as zeroes); a write sets the bits of the chunks it touches;
 * a write-zeroes or unmap clears the bits of the chunks it covers whole, and
 * of a partly covered chunk that reads as zeroes afterwards. A clear chunk
 * reports hole + zero, a set one data. Memory taken back from the fd store is
 * scanned once at creation to rebuild the bitmap. Reads never touch it;
 * writes pay one fence and a load per chunk (the bit is set with an atomic
 * only when it was clear). The ordering that keeps a racing write's chunk
 * marked is at ram_mark() / ram_zero().
 */
#include "bdev/bdev.h"
#include "util/fdstore.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RAM_CHUNK_SHIFT 16
#define RAM_CHUNK (1ull << RAM_CHUNK_SHIFT) /* block status granule: 64 KiB */

struct bdev_ram {
	struct nvl_bdev bdev;
	uint8_t *mem;
	size_t size;
	bool stored;          /* the memory is a memfd in the fd store */
	uint64_t nchunks;
	uint64_t *written;    /* bit c: chunk c may hold data (atomic; any reactor) */
	bool need_scan;       /* memory taken back: scanned at the first block status
			       * (atomic), not on the restart's critical path */
};

static inline bool
ram_bit(const struct bdev_ram *r, uint64_t c)
{
	return (__atomic_load_n(&r->written[c >> 6], __ATOMIC_RELAXED) >> (c & 63)) & 1;
}

static bool
ram_is_zero(const uint8_t *p, size_t n)
{
	static const uint8_t z[16];

	if (n <= 16)
		return memcmp(p, z, n) == 0;
	/* the first 16 bytes are zero, and every byte equals the one 16 before it */
	return memcmp(p, z, 16) == 0 && memcmp(p, p + 16, n - 16) == 0;
}

/*
 * After a write's memcpy: mark its chunks. The fence orders the copied data
 * before the load of the bit; ram_zero() clears a bit (a full barrier) before
 * it zeroes or scans the chunk. So either this load sees the clear and sets
 * the bit again, or the zeroing/scan comes after the data landed: a chunk
 * holding data is never left clear.
 */
static void
ram_mark(struct bdev_ram *r, uint64_t off, uint64_t len)
{
	uint64_t c = off >> RAM_CHUNK_SHIFT, last = (off + len - 1) >> RAM_CHUNK_SHIFT;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (; c <= last; c++)
		if (!ram_bit(r, c))
			__atomic_fetch_or(&r->written[c >> 6], 1ull << (c & 63), __ATOMIC_SEQ_CST);
}

static void
ram_clear(struct bdev_ram *r, uint64_t c)
{
	__atomic_fetch_and(&r->written[c >> 6], ~(1ull << (c & 63)), __ATOMIC_SEQ_CST);
}

/* Zero [off, off + len) and clear the chunks that read as zeroes afterwards. */
static void
ram_zero(struct bdev_ram *r, uint64_t off, uint64_t len)
{
	uint64_t end = off + len, c = off >> RAM_CHUNK_SHIFT, last = (end - 1) >> RAM_CHUNK_SHIFT;

	for (; c <= last; c++) {
		uint64_t cs = c << RAM_CHUNK_SHIFT, ce = NVL_MIN(cs + RAM_CHUNK, (uint64_t)r->size);
		uint64_t zs = NVL_MAX(cs, off), ze = NVL_MIN(ce, end);

		if (zs == cs && ze == ce) {
			ram_clear(r, c); /* before the zeroing: see ram_mark() */
			memset(r->mem + zs, 0, ze - zs);
			continue;
		}
		memset(r->mem + zs, 0, ze - zs);
		if (!ram_bit(r, c) || !ram_is_zero(r->mem + cs, ce - cs))
			continue;
		ram_clear(r, c);
		/* a write that raced the scan: keep its chunk marked */
		if (!ram_is_zero(r->mem + cs, ce - cs))
			__atomic_fetch_or(&r->written[c >> 6], 1ull << (c & 63), __ATOMIC_SEQ_CST);
	}
}

/* Memory taken back from the fd store: a chunk with a nonzero byte may hold data. */
static void
ram_scan(struct bdev_ram *r)
{
	for (uint64_t c = 0; c < r->nchunks; c++) {
		uint64_t cs = c << RAM_CHUNK_SHIFT, ce = NVL_MIN(cs + RAM_CHUNK, (uint64_t)r->size);

		if (!ram_is_zero(r->mem + cs, ce - cs))
			__atomic_fetch_or(&r->written[c >> 6], 1ull << (c & 63), __ATOMIC_SEQ_CST);
	}
}

static void
ram_store_name(const char *bdev, char *buf, size_t len)
{
	snprintf(buf, len, "bdev.ram.%s", bdev);
}

/*
 * The bdev's memory: taken back from the fd store when a previous worker left
 * it there with the same size (contents kept), else a new memfd stored there,
 * else (no supervisor) an anonymous mapping. \return the mapping or MAP_FAILED.
 */
static void *
ram_map(const char *name, size_t size, bool *stored, bool *taken_back)
{
	char sname[NVL_FDSTORE_NAME_MAX + 1];
	struct stat st;
	void *p;
	int fd;

	*stored = *taken_back = false;
	if (!nvl_fdstore_available())
		return mmap(NULL, size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ram_store_name(name, sname, sizeof(sname));
	fd = nvl_fdstore_take(sname);
	if (fd >= 0 && (fstat(fd, &st) < 0 || (uint64_t)st.st_size != size)) {
		NVL_WARNLOG("%s: stored memory of another size: not reused", name);
		close(fd);
		nvl_fdstore_remove(sname);
		fd = -1;
	}
	if (fd >= 0) {
		*taken_back = true;
	} else {
		fd = memfd_create(sname, MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0)
			return MAP_FAILED;
		if (ftruncate(fd, (off_t)size) < 0 ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
			close(fd);
			return MAP_FAILED;
		}
	}
	/* new memory is pre-faulted (first touch costs ms per 2 MiB here); memory
	 * taken back is resident already: its page tables fill in as I/O touches
	 * it, not before a restarted worker serves */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | (*taken_back ? 0 : MAP_POPULATE), fd, 0);
	if (p != MAP_FAILED && !*taken_back && nvl_fdstore_put(sname, fd) == 0)
		*stored = true;
	else if (p != MAP_FAILED && *taken_back)
		*stored = true;
	close(fd);
	return p;
}

static int
ram_submit(struct nvl_bdev *b, struct nvl_bdev_io *io)
{
	struct bdev_ram *r = container_of(b, struct bdev_ram, bdev);
	uint8_t *p = r->mem + io->offset;

	switch (io->type) {
	case NVL_BDEV_IO_READ:
		for (int i = 0; i < io->iovcnt; i++) {
			memcpy(io->iov[i].iov_base, p, io->iov[i].iov_len);
			p += io->iov[i].iov_len;
		}
		break;
	case NVL_BDEV_IO_WRITE:
		for (int i = 0; i < io->iovcnt; i++) {
			memcpy(p, io->iov[i].iov_base, io->iov[i].iov_len);
			p += io->iov[i].iov_len;
		}
		ram_mark(r, io->offset, io->length);
		break;
	case NVL_BDEV_IO_WRITE_ZEROES:
	case NVL_BDEV_IO_UNMAP:
		if (io->length)
			ram_zero(r, io->offset, io->length);
		break;
	case NVL_BDEV_IO_FLUSH:
		break;
	default:
		return -ENOTSUP;
	}
	nvl_bdev_io_complete(io, 0);
	return 0;
}

/* Inline on the calling reactor: a walk over the bitmap, no I/O. */
static int
ram_block_status(struct nvl_bdev *b, struct nvl_bdev_bstat *q)
{
	struct bdev_ram *r = container_of(b, struct bdev_ram, bdev);
	uint64_t off = q->offset, end = q->offset + q->length;

	/* a rare command: the scan of memory taken back after a restart is done
	 * here, once, rather than before the restarted worker serves (it reads
	 * all of it); writes meanwhile set their bits, trims clear theirs and
	 * zero the memory, so the scan only ever adds "may hold data" */
	if (__atomic_load_n(&r->need_scan, __ATOMIC_ACQUIRE)) {
		ram_scan(r);
		__atomic_store_n(&r->need_scan, false, __ATOMIC_RELEASE);
	}
	while (off < end) {
		uint64_t c = off >> RAM_CHUNK_SHIFT;
		uint64_t ce = NVL_MIN((c + 1) << RAM_CHUNK_SHIFT, end);

		if (!nvl_bdev_bstat_add(q, ce - off,
					ram_bit(r, c) ? 0 : NVL_BDEV_EXT_HOLE | NVL_BDEV_EXT_ZERO))
			break;
		off = ce;
	}
	nvl_bdev_bstat_complete(q, 0);
	return 0;
}

static void
ram_destroy(struct nvl_bdev *b)
{
	struct bdev_ram *r = container_of(b, struct bdev_ram, bdev);
	char sname[NVL_FDSTORE_NAME_MAX + 1];

	munmap(r->mem, r->size);
	free(r->written);
	if (r->stored) {
		/* deleted (or a clean stop): the memory is not coming back */
		ram_store_name(r->bdev.name, sname, sizeof(sname));
		nvl_fdstore_remove(sname);
	}
	free(r);
}

static void
ram_dump_info(struct nvl_bdev *b, json_t *ds)
{
	struct bdev_ram *r = container_of(b, struct bdev_ram, bdev);

	json_object_set_new(ds, "ram", json_pack("{s:I, s:b}", "size_bytes", (json_int_t)r->size,
						 "durable", 0));
}

static json_t *
ram_write_config(struct nvl_bdev *b)
{
	char uuid[40];

	nvl_uuid_fmt(b->uuid, uuid);
	return json_pack("{s:s, s:{s:s, s:I, s:i, s:s}}", "method", "bdev_malloc_create",
			 "params", "name", b->name, "num_blocks", (json_int_t)b->num_blocks,
			 "block_size", (int)b->block_size, "uuid", uuid);
}

/* What the kernel can give without swapping (MemAvailable), in bytes; 0 if unknown. */
static uint64_t
ram_mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned long long kb;
	uint64_t v = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
			v = (uint64_t)kb * 1024;
			break;
		}
	}
	fclose(f);
	return v;
}

static const struct nvl_bdev_ops ram_ops = {
	.name = "ram",
	.submit = ram_submit,
	.destroy = ram_destroy,
	.dump_info = ram_dump_info,
	.write_config = ram_write_config,
	.block_status = ram_block_status,
};

int
nvl_bdev_ram_create(const struct nvl_bdev_ram_opts *o, struct nvl_bdev **out)
{
	struct bdev_ram *r;
	uint64_t size, avail;
	int rc;

	if (o->name == NULL || o->name[0] == '\0' || strlen(o->name) >= NVL_BDEV_NAME_MAX)
		return -EINVAL;
	if (o->block_size < 512 || o->block_size > 65536 || !NVL_IS_POW2(o->block_size))
		return -EINVAL;
	if (o->num_blocks == 0 || o->num_blocks > (1ULL << 40) / o->block_size)
		return -EINVAL;
	size = o->num_blocks * o->block_size;
	/* The mapping is pre-faulted: more than the free memory would invoke the OOM killer. */
	avail = ram_mem_available();
	if (avail && size > avail) {
		NVL_ERRLOG("%s: %llu MiB requested but only %llu MiB of memory are available",
			   o->name, (unsigned long long)(size >> 20),
			   (unsigned long long)(avail >> 20));
		return -ENOMEM;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->size = size;
	r->nchunks = (size + RAM_CHUNK - 1) >> RAM_CHUNK_SHIFT;
	r->written = calloc((r->nchunks + 63) / 64, sizeof(uint64_t));
	if (r->written == NULL) {
		rc = -ENOMEM;
		goto err_free;
	}
	{
		bool taken_back;

		r->mem = ram_map(o->name, size, &r->stored, &taken_back);
		if (r->mem != MAP_FAILED && taken_back) {
			NVL_NOTICELOG("%s: memory taken back from the fd store (contents kept)",
				      o->name);
			r->need_scan = true; /* at the first block status (ram_block_status) */
		}
	}
	if (r->mem == MAP_FAILED) {
		rc = -ENOMEM;
		goto err_free_bitmap;
	}
	madvise(r->mem, size, MADV_HUGEPAGE);
	nvl_strlcpy(r->bdev.name, o->name, sizeof(r->bdev.name));
	r->bdev.product_name = "Malloc disk";
	r->bdev.ops = &ram_ops;
	r->bdev.block_size = o->block_size;
	r->bdev.num_blocks = o->num_blocks;
	r->bdev.io_types = (1u << NVL_BDEV_IO_READ) | (1u << NVL_BDEV_IO_WRITE) |
			   (1u << NVL_BDEV_IO_FLUSH) | (1u << NVL_BDEV_IO_WRITE_ZEROES) |
			   (1u << NVL_BDEV_IO_UNMAP);
	r->bdev.fast_zero = true; /* a memset: never slower than receiving the zeroes */
	if (o->uuid)
		memcpy(r->bdev.uuid, o->uuid, 16);
	rc = nvl_bdev_register(&r->bdev);
	if (rc < 0)
		goto err_unmap;
	*out = &r->bdev;
	return 0;
err_unmap:
	munmap(r->mem, size);
	if (r->stored) {
		char sname[NVL_FDSTORE_NAME_MAX + 1];

		ram_store_name(o->name, sname, sizeof(sname));
		nvl_fdstore_remove(sname);
	}
err_free_bitmap:
	free(r->written);
err_free:
	free(r);
	return rc;
}
