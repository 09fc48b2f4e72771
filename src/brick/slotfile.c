/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Slow tier in one file or block device (brick_create slow_file): a header,
 * a table of one 512-byte record per slot, then 2 MiB slots (layout in
 * brick_internal.h, contract in docs/brick.md). This file owns the format:
 * encoding, validation, opening/formatting and raw slot I/O. The ordering
 * of data, record and fdatasync that keeps it crash consistent, and the
 * recovery decisions, live in store.c. Reactor 0 only, no locks.
 */
#include "brick/brick_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t
brick_sf_data_off(uint64_t nslots)
{
	return NVL_ALIGN_UP(BRICK_SF_HDR_SIZE + nslots * BRICK_SF_REC_SIZE, BRICK_BLOCK_SIZE);
}

uint64_t
brick_sf_slots_for_size(uint64_t size)
{
	uint64_t n;

	if (size < BRICK_SF_HDR_SIZE)
		return 0;
	n = (size - BRICK_SF_HDR_SIZE) / (BRICK_BLOCK_SIZE + BRICK_SF_REC_SIZE);
	while (n > 0 && brick_sf_data_off(n) + n * BRICK_BLOCK_SIZE > size)
		n--;
	return NVL_MIN(n, BRICK_MAX_BLOCKS);
}

void
brick_sf_hdr_encode(const struct brick_sf_hdr *h, uint8_t *buf)
{
	memset(buf, 0, BRICK_SF_HDR_SIZE);
	brick_st64(buf + 0, BRICK_SF_MAGIC);
	brick_st32(buf + 8, BRICK_SF_VERSION);
	brick_st32(buf + 12, BRICK_SF_HDR_SIZE);
	brick_st64(buf + 16, BRICK_BLOCK_SIZE);
	brick_st64(buf + 24, h->nslots);
	brick_st32(buf + 32, BRICK_SF_REC_SIZE);
	brick_st64(buf + 40, BRICK_SF_HDR_SIZE);
	brick_st64(buf + 48, h->data_off);
	brick_st64(buf + 56, h->id);
	brick_st32(buf + 64, nvl_crc32c(buf, 64));
}

int
brick_sf_hdr_decode(const uint8_t *buf, struct brick_sf_hdr *h)
{
	size_t i;

	for (i = 0; i < BRICK_SF_HDR_SIZE && buf[i] == 0; i++)
		;
	if (i == BRICK_SF_HDR_SIZE)
		return -ENOENT; /* never formatted */
	if (brick_ld64(buf) != BRICK_SF_MAGIC || brick_ld32(buf + 64) != nvl_crc32c(buf, 64))
		return -EINVAL; /* another format, or a damaged header */
	if (brick_ld32(buf + 8) != BRICK_SF_VERSION || brick_ld32(buf + 12) != BRICK_SF_HDR_SIZE ||
	    brick_ld64(buf + 16) != BRICK_BLOCK_SIZE || brick_ld32(buf + 32) != BRICK_SF_REC_SIZE ||
	    brick_ld64(buf + 40) != BRICK_SF_HDR_SIZE)
		return -EINVAL;
	h->nslots = brick_ld64(buf + 24);
	h->data_off = brick_ld64(buf + 48);
	h->id = brick_ld64(buf + 56);
	if (h->nslots == 0 || h->nslots > BRICK_MAX_BLOCKS ||
	    h->data_off != brick_sf_data_off(h->nslots))
		return -EINVAL;
	return 0;
}

void
brick_sf_rec_encode(const struct brick_sf_rec *r, uint64_t id, uint64_t slot, uint8_t *buf)
{
	memset(buf, 0, BRICK_SF_REC_SIZE);
	brick_st32(buf + 0, BRICK_SF_REC_MAGIC);
	brick_st32(buf + 4, r->valid ? BRICK_SF_REC_VALID : 0);
	brick_st64(buf + 8, slot);
	brick_st64(buf + 16, r->addr);
	brick_st64(buf + 24, r->gen);
	brick_st64(buf + 32, id);
	brick_st32(buf + 40, nvl_crc32c(buf, 40));
}

bool
brick_sf_rec_decode(const uint8_t *buf, uint64_t id, uint64_t slot, struct brick_sf_rec *r)
{
	memset(r, 0, sizeof(*r));
	/* a record of another slot or of an earlier format of this file is garbage */
	if (brick_ld32(buf) != BRICK_SF_REC_MAGIC || brick_ld32(buf + 40) != nvl_crc32c(buf, 40) ||
	    brick_ld64(buf + 8) != slot || brick_ld64(buf + 32) != id)
		return false;
	r->addr = brick_ld64(buf + 16);
	r->gen = brick_ld64(buf + 24);
	r->valid = brick_ld32(buf + 4) == BRICK_SF_REC_VALID && !(r->addr & (BRICK_BLOCK_SIZE - 1));
	return true;
}

static int
pio(int fd, void *buf, size_t len, uint64_t off, bool wr)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = wr ? pwrite(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done))
			       : pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the file shrank under us */
		done += (size_t)n;
	}
	return 0;
}

int
brick_sf_rec_write(struct brick_slotfile *sf, uint64_t slot, uint64_t addr, bool valid)
{
	struct brick_sf_rec r = { .addr = addr, .gen = sf->next_gen++, .valid = valid };
	uint8_t rec[BRICK_SF_REC_SIZE];

	/* one aligned sector: a crash leaves the old or the new record, or a
	 * torn one whose checksum fails (= a free slot) */
	brick_sf_rec_encode(&r, sf->id, slot, rec);
	return pio(sf->fd, rec, sizeof(rec), BRICK_SF_HDR_SIZE + slot * BRICK_SF_REC_SIZE, true);
}

int
brick_sf_rec_read(struct brick_slotfile *sf, uint64_t slot, struct brick_sf_rec *r)
{
	uint8_t rec[BRICK_SF_REC_SIZE];
	int rc;

	rc = pio(sf->fd, rec, sizeof(rec), BRICK_SF_HDR_SIZE + slot * BRICK_SF_REC_SIZE, false);
	if (rc < 0)
		return rc;
	brick_sf_rec_decode(rec, sf->id, slot, r);
	return 0;
}

int
brick_sf_data_io(struct brick_slotfile *sf, uint64_t slot, void *buf, bool wr)
{
	return pio(sf->fd, buf, BRICK_BLOCK_SIZE, sf->data_off + slot * BRICK_BLOCK_SIZE, wr);
}

int
brick_sf_sync(struct brick_slotfile *sf)
{
	return fdatasync(sf->fd) < 0 ? -errno : 0;
}

static int
sf_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size) < 0 ? -errno : 0;
	return -EINVAL;
}

int
brick_sf_open(struct brick_slotfile *sf, const char *path)
{
	struct brick_sf_hdr h;
	uint8_t *hdr;
	uint64_t size;
	int rc;

	sf->fd = -1;
	sf->path = strdup(path);
	hdr = calloc(1, BRICK_SF_HDR_SIZE);
	if (sf->path == NULL || hdr == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	sf->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (sf->fd < 0) {
		rc = -errno;
		NVL_ERRLOG("slow_file %s: %s", path, strerror(-rc));
		goto out;
	}
	rc = sf_size(sf->fd, &size);
	if (rc < 0) {
		NVL_ERRLOG("slow_file %s: not a regular file or block device", path);
		goto out;
	}
	if (flock(sf->fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto out;
	}
	rc = size < BRICK_SF_HDR_SIZE ? -ENOENT : pio(sf->fd, hdr, BRICK_SF_HDR_SIZE, 0, false);
	if (rc == 0)
		rc = brick_sf_hdr_decode(hdr, &h);
	if (rc == -ENOENT) {
		/* all zero (a new sparse file, a blank device): format it */
		h.nslots = brick_sf_slots_for_size(size);
		if (h.nslots == 0) {
			NVL_ERRLOG("slow_file %s: %" PRIu64 " bytes, too small for one 2 MiB slot",
				   path, size);
			rc = -ERANGE;
			goto out;
		}
		h.data_off = brick_sf_data_off(h.nslots);
		rc = nvl_random_bytes(&h.id, sizeof(h.id));
		if (rc < 0)
			goto out;
		brick_sf_hdr_encode(&h, hdr);
		rc = pio(sf->fd, hdr, BRICK_SF_HDR_SIZE, 0, true);
		if (rc == 0)
			rc = brick_sf_sync(sf);
		if (rc < 0)
			goto out;
		NVL_NOTICELOG("slow_file %s: formatted, %" PRIu64 " slots", path, h.nslots);
	} else if (rc < 0) {
		NVL_ERRLOG("slow_file %s: not an nvlend slot file (unknown header): refusing to "
			   "overwrite it", path);
		rc = -EINVAL;
		goto out;
	}
	if (h.data_off + h.nslots * BRICK_BLOCK_SIZE > size) {
		NVL_ERRLOG("slow_file %s: %" PRIu64 " bytes, its header needs %" PRIu64, path, size,
			   h.data_off + h.nslots * BRICK_BLOCK_SIZE);
		rc = -ERANGE;
		goto out;
	}
	sf->id = h.id;
	sf->nslots = h.nslots;
	sf->data_off = h.data_off;
	sf->next_gen = 1;
	sf->slot_blk = calloc(h.nslots, sizeof(*sf->slot_blk));
	sf->free = calloc(h.nslots, sizeof(*sf->free));
	sf->buf = malloc(BRICK_BLOCK_SIZE);
	if (sf->slot_blk == NULL || sf->free == NULL || sf->buf == NULL)
		rc = -ENOMEM;
out:
	free(hdr);
	return rc;
}

void
brick_sf_close(struct brick_slotfile *sf)
{
	if (sf->fd >= 0)
		close(sf->fd);
	free(sf->path);
	free(sf->slot_blk);
	free(sf->free);
	free(sf->buf);
	memset(sf, 0, sizeof(*sf));
	sf->fd = -1;
}

int
brick_sf_purge(const char *path)
{
	struct brick_slotfile sf = { .fd = -1 };
	uint8_t *zero;
	int rc;

	rc = brick_sf_open(&sf, path);
	if (rc < 0) {
		brick_sf_close(&sf);
		return rc;
	}
	/* a zero header: the next open formats it with a new id, so every
	 * record of this format stops counting */
	zero = calloc(1, BRICK_SF_HDR_SIZE);
	rc = zero ? pio(sf.fd, zero, BRICK_SF_HDR_SIZE, 0, true) : -ENOMEM;
	if (rc == 0)
		rc = brick_sf_sync(&sf);
	free(zero);
	brick_sf_close(&sf);
	return rc;
}
