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

struct bdev_ram {
	struct nvl_bdev bdev;
	uint8_t *mem;
	size_t size;
	bool stored;          /* the memory is a memfd in the fd store */
};

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
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
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
		break;
	case NVL_BDEV_IO_WRITE_ZEROES:
	case NVL_BDEV_IO_UNMAP:
		memset(p, 0, io->length);
		break;
	case NVL_BDEV_IO_FLUSH:
		break;
	default:
		return -ENOTSUP;
	}
	nvl_bdev_io_complete(io, 0);
	return 0;
}

static void
ram_destroy(struct nvl_bdev *b)
{
	struct bdev_ram *r = container_of(b, struct bdev_ram, bdev);
	char sname[NVL_FDSTORE_NAME_MAX + 1];

	munmap(r->mem, r->size);
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
	{
		bool taken_back;

		r->mem = ram_map(o->name, size, &r->stored, &taken_back);
		if (r->mem != MAP_FAILED && taken_back)
			NVL_NOTICELOG("%s: memory taken back from the fd store (contents kept)",
				      o->name);
	}
	if (r->mem == MAP_FAILED) {
		rc = -ENOMEM;
		goto err_free;
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
err_free:
	free(r);
	return rc;
}
