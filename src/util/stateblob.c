/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * State blob (see stateblob.h): two slots in a memfd, the newer complete one
 * wins. The order of stores in a write, so that a kill between any two of
 * them is harmless:
 *   1. slot.seq = 0            (the slot is invalid from here on)
 *   2. slot.data, slot.len, slot.crc
 *   3. slot.seq = next         (release: 2 is complete before 3 is seen)
 * A kill before 3 leaves the slot invalid or with a CRC over data that no
 * longer matches; the other slot still holds the previous version.
 */
#include "util/stateblob.h"
#include "util/fdstore.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SB_MAGIC 0x424c4253564e4cULL  /* "NVLSBLB" */
#define SB_HDR 4096u

struct sb_slot {
	uint64_t seq;        /* 0: empty or being written */
	uint64_t len;
	uint32_t crc;
	uint32_t rsvd;
};

struct sb_header {
	uint64_t magic;
	uint64_t cap;        /* data bytes per slot */
	struct sb_slot slot[2];
};

struct nvl_stateblob {
	char name[NVL_FDSTORE_NAME_MAX + 1];
	uint8_t *map;
	size_t map_len;
	uint64_t cap;
	bool stored;
};

static uint8_t *
sb_data(struct nvl_stateblob *b, int i)
{
	return b->map + SB_HDR + (size_t)i * b->cap;
}

static struct sb_header *
sb_hdr(struct nvl_stateblob *b)
{
	return (struct sb_header *)b->map;
}

int
nvl_stateblob_open(const char *name, size_t cap, struct nvl_stateblob **out, bool *existed)
{
	struct nvl_stateblob *b;
	struct stat st;
	int fd, rc;

	*existed = false;
	if (!nvl_fdstore_name_ok(name) || cap == 0 || cap > (1ULL << 40))
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	nvl_strlcpy(b->name, name, sizeof(b->name));
	cap = NVL_ALIGN_UP(cap, 4096);
	fd = nvl_fdstore_take(name);
	if (fd >= 0) {
		struct sb_header h;

		/* a previous worker's blob: its own capacity rules */
		if (fstat(fd, &st) < 0 || (size_t)st.st_size < SB_HDR ||
		    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.magic != SB_MAGIC ||
		    h.cap == 0 || (uint64_t)st.st_size != SB_HDR + 2 * h.cap) {
			close(fd);
			nvl_fdstore_remove(name);
			fd = -1;
		} else {
			cap = h.cap;
			*existed = true;
		}
	}
	if (fd < 0) {
		fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0) {
			rc = -errno;
			goto err_free;
		}
		if (ftruncate(fd, (off_t)(SB_HDR + 2 * cap)) < 0 ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
			rc = -errno;
			goto err_close;
		}
	}
	b->cap = cap;
	b->map_len = SB_HDR + 2 * cap;
	b->map = mmap(NULL, b->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (b->map == MAP_FAILED) {
		rc = -errno;
		goto err_close;
	}
	if (!*existed) {
		sb_hdr(b)->cap = cap;
		/* Publish the header: readers check the magic first. */
		__atomic_store_n(&sb_hdr(b)->magic, SB_MAGIC, __ATOMIC_RELEASE);
		b->stored = nvl_fdstore_put(name, fd) == 0;
	} else {
		b->stored = true;
	}
	close(fd);
	*out = b;
	return 0;
err_close:
	close(fd);
err_free:
	free(b);
	return rc;
}

static bool
sb_slot_ok(struct nvl_stateblob *b, int i)
{
	struct sb_slot *s = &sb_hdr(b)->slot[i];
	/* Pairs with the release store of seq in nvl_stateblob_write(). */
	uint64_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);

	return seq != 0 && s->len <= b->cap && nvl_crc32c(sb_data(b, i), s->len) == s->crc;
}

int
nvl_stateblob_read(struct nvl_stateblob *b, const void **data, size_t *len, uint64_t *seq)
{
	struct sb_header *h = sb_hdr(b);
	bool ok0 = sb_slot_ok(b, 0), ok1 = sb_slot_ok(b, 1);
	int i;

	*data = NULL;
	*len = 0;
	*seq = 0;
	if (!ok0 && !ok1) {
		/* never written is fine; written but both damaged is not */
		return h->slot[0].seq || h->slot[1].seq ? -EBADMSG : 0;
	}
	i = ok0 && (!ok1 || h->slot[0].seq > h->slot[1].seq) ? 0 : 1;
	*data = sb_data(b, i);
	*len = h->slot[i].len;
	*seq = h->slot[i].seq;
	return 0;
}

int
nvl_stateblob_write(struct nvl_stateblob *b, const void *data, size_t len)
{
	struct sb_header *h = sb_hdr(b);
	uint64_t s0 = sb_slot_ok(b, 0) ? h->slot[0].seq : 0;
	uint64_t s1 = sb_slot_ok(b, 1) ? h->slot[1].seq : 0;
	int i = s0 <= s1 ? 0 : 1;   /* overwrite the older (or broken) one */
	struct sb_slot *s = &h->slot[i];

	if (len > b->cap)
		return -E2BIG;
	/* 1: invalid while it is rewritten */
	__atomic_store_n(&s->seq, 0, __ATOMIC_RELEASE);
	memcpy(sb_data(b, i), data, len);
	s->len = len;
	s->crc = nvl_crc32c(data, len);
	/* 3: publish; pairs with the acquire in sb_slot_ok() */
	__atomic_store_n(&s->seq, NVL_MAX(s0, s1) + 1, __ATOMIC_RELEASE);
	return 0;
}

void
nvl_stateblob_close(struct nvl_stateblob *b, bool drop)
{
	if (b == NULL)
		return;
	munmap(b->map, b->map_len);
	if (drop && b->stored)
		nvl_fdstore_remove(b->name);
	free(b);
}
