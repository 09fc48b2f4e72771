/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * "ram" backend (RPC bdev_malloc_create): an anonymous mapping, pre-faulted at
 * creation because first touch costs milliseconds per 2 MiB on these VMs
 * (MACHINE-NOTES.md). I/O is a memcpy on the submitting reactor and completes
 * inline. Any reactor may read/write concurrently; overlapping writes from
 * two hosts race exactly as they would on a real disk.
 */
#include "bdev/bdev.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct bdev_ram {
	struct nvl_bdev bdev;
	uint8_t *mem;
	size_t size;
};

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

	munmap(r->mem, r->size);
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
	r->mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
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
err_free:
	free(r);
	return rc;
}
