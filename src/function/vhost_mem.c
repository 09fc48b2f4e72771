/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest memory table of a vhost-user front-end (SET_MEM_TABLE): each region
 * comes with a file descriptor that we map MAP_SHARED, so bdev I/O reads and
 * writes guest buffers in place (zero copy). Every translation checks the
 * whole range against one region with arithmetic that cannot overflow.
 *
 * A front-end keeps a writable descriptor of each file and may truncate it.
 * A memfd sealed against shrinking (QEMU's memory-backend-memfd seals by
 * default) cannot fault; any other file (memory-backend-file on /dev/shm or
 * hugetlbfs) is mapped under the fault guard (util/fault_guard.h): a
 * truncation then sets m->tripped instead of killing the daemon.
 *
 * The dirty log of a live migration (SET_LOG_BASE) is mapped here too, under
 * the same rules, with the bit math that marks the guest pages we write.
 *
 * Threading: built and freed on reactor 0; read-only afterwards, so queue
 * reactors translate through it without locks (see vhost_internal.h for the
 * rule that keeps it alive while they do). Queue reactors set bits in a log
 * with atomic ORs, concurrently with each other and with the front-end,
 * which fetches and clears them.
 */
#include "function/vhost_internal.h"
#include "util/fault_guard.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void
vhost_mem_free(struct vhost_mem *m)
{
	if (m == NULL)
		return;
	for (unsigned i = 0; i < m->nregions; i++) {
		nvl_fault_guard_del(m->r[i].guard - 1);
		if (m->r[i].map)
			munmap(m->r[i].map, m->r[i].map_len);
	}
	free(m);
}

bool
vhost_fd_sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);

	return seals >= 0 && (seals & F_SEAL_SHRINK);
}

static int
mem_region_check(const struct nvl_vhost_memory_region *mr)
{
	uint64_t end;

	if (mr->memory_size == 0)
		return -EINVAL;
	/* none of the three ranges may wrap */
	if (__builtin_add_overflow(mr->guest_phys_addr, mr->memory_size - 1, &end) ||
	    __builtin_add_overflow(mr->userspace_addr, mr->memory_size - 1, &end) ||
	    __builtin_add_overflow(mr->mmap_offset, mr->memory_size, &end))
		return -EINVAL;
	if (mr->memory_size > (uint64_t)SIZE_MAX / 2)
		return -EINVAL;
	return 0;
}

int
vhost_mem_map(const struct nvl_vhost_memory *tbl, const int *fds, unsigned nfds,
	      struct vhost_mem **out)
{
	struct vhost_mem *m;
	int rc;

	if (tbl->nregions == 0 || tbl->nregions > NVL_VHOST_MEMORY_BASELINE_NREGIONS ||
	    nfds != tbl->nregions)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < tbl->nregions; i++) {
		const struct nvl_vhost_memory_region *mr = &tbl->regions[i];
		struct vhost_mem_region *r = &m->r[i];
		struct stat st;
		uint64_t len, page;
		void *p;

		rc = mem_region_check(mr);
		if (rc < 0) {
			NVL_ERRLOG("memory region %u: invalid gpa 0x%" PRIx64 " size 0x%" PRIx64
				   " uva 0x%" PRIx64 " offset 0x%" PRIx64,
				   i, mr->guest_phys_addr, mr->memory_size, mr->userspace_addr,
				   mr->mmap_offset);
			goto err_free;
		}
		if (fds[i] < 0 || fstat(fds[i], &st) < 0) {
			rc = -EBADF;
			goto err_free;
		}
		len = mr->mmap_offset + mr->memory_size;
		/* A region past the end of its file would SIGBUS on first touch. */
		if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < len) {
			NVL_ERRLOG("memory region %u: offset+size 0x%" PRIx64
				   " beyond its file (0x%" PRIx64 " bytes)",
				   i, len, (uint64_t)st.st_size);
			rc = -EINVAL;
			goto err_free;
		}
		/* hugetlbfs wants whole huge pages; st_blksize is the page size there */
		page = st.st_blksize > 0 ? (uint64_t)st.st_blksize : 4096;
		if (!NVL_IS_POW2(page))
			page = 4096;
		len = NVL_ALIGN_UP(len, page);
		if (len > (uint64_t)SIZE_MAX / 2) {
			rc = -EINVAL;
			goto err_free;
		}
		p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			 fds[i], 0);
		if (p == MAP_FAILED) {
			rc = -errno;
			NVL_ERRLOG("memory region %u: mmap of 0x%" PRIx64 " bytes: %s", i, len,
				   strerror(errno));
			goto err_free;
		}
		/* no core dumps of guest memory */
		madvise(p, (size_t)len, MADV_DONTDUMP);
		r->map = p;
		r->map_len = (size_t)len;
		m->nregions = i + 1;
		if (!vhost_fd_sealed(fds[i])) {
			rc = nvl_fault_guard_add(p, (size_t)len, &m->tripped);
			if (rc < 0) {
				NVL_ERRLOG("memory region %u: cannot guard an unsealed mapping: %s",
					   i, strerror(-rc));
				goto err_free;
			}
			r->guard = rc + 1;
		}
		r->hva = (uint8_t *)p + mr->mmap_offset;
		r->gpa = mr->guest_phys_addr;
		r->size = mr->memory_size;
		r->uva = mr->userspace_addr;
	}
	*out = m;
	return 0;
err_free:
	vhost_mem_free(m);
	return rc;
}

void *
vhost_mem_uva(const struct vhost_mem *m, uint64_t uva, uint64_t len)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct vhost_mem_region *r = &m->r[i];
		uint64_t off = uva - r->uva;

		if (off < r->size && len <= r->size - off)
			return r->hva + off;
	}
	return NULL;
}

int
vhost_mem_gpa_iov(const struct vhost_mem *m, uint64_t gpa, uint64_t len, struct iovec *iov,
		  unsigned max)
{
	unsigned n = 0;

	while (len > 0) {
		const struct vhost_mem_region *hit = NULL;
		uint64_t off = 0, chunk;

		for (unsigned i = 0; i < m->nregions; i++) {
			off = gpa - m->r[i].gpa;
			if (off < m->r[i].size) {
				hit = &m->r[i];
				break;
			}
		}
		if (hit == NULL)
			return -EFAULT;
		if (n == max)
			return -E2BIG;
		chunk = NVL_MIN(len, hit->size - off);
		iov[n].iov_base = hit->hva + off;
		iov[n].iov_len = (size_t)chunk;
		n++;
		len -= chunk;
		/* the next byte is the first one past this region; wrapping means
		 * the range ran past 2^64 and is outside guest memory */
		if (len > 0 && __builtin_add_overflow(gpa, chunk, &gpa))
			return -EFAULT;
	}
	return (int)n;
}

/* ---- dirty page log ----------------------------------------------------------- */

uint64_t
vhost_mem_gpa_end(const struct vhost_mem *m)
{
	uint64_t end = 0;

	for (unsigned i = 0; m && i < m->nregions; i++) {
		/* mem_region_check() made gpa + size - 1 fit: only the +1 can wrap */
		uint64_t e = m->r[i].gpa + m->r[i].size;

		if (e == 0)
			return UINT64_MAX;
		end = NVL_MAX(end, e);
	}
	return end;
}

bool
vhost_log_covers(const struct vhost_log *l, uint64_t gpa, uint64_t len)
{
	uint64_t last;

	if (len == 0)
		return true;
	if (l == NULL || __builtin_add_overflow(gpa, len - 1, &last))
		return false;
	/* l->size <= VHOST_LOG_MAX_BYTES: size * 8 pages cannot overflow */
	return (last >> NVL_VHOST_LOG_PAGE_SHIFT) < l->size * 8;
}

int
vhost_log_gpa(const struct vhost_log *l, uint64_t gpa, uint64_t len)
{
	uint64_t first, last, npages = l->size * 8;
	int rc = 0;

	if (len == 0)
		return 0;
	first = gpa >> NVL_VHOST_LOG_PAGE_SHIFT;
	if (__builtin_add_overflow(gpa, len - 1, &last)) {
		last = UINT64_MAX;
		rc = -EFAULT;
	}
	last >>= NVL_VHOST_LOG_PAGE_SHIFT;
	if (last >= npages) {
		rc = -EFAULT;
		if (first >= npages)
			return rc;
		last = npages - 1;
	}
	/* one atomic OR per log byte (8 pages); release: the caller's writes to
	 * those pages are visible before the bit is. The front-end fetches and
	 * clears words of the log, then copies the pages: a write marked after
	 * its clear is caught by its next pass. */
	for (uint64_t b = first / 8; b <= last / 8; b++) {
		unsigned lo = b == first / 8 ? (unsigned)(first % 8) : 0;
		unsigned hi = b == last / 8 ? (unsigned)(last % 8) : 7;
		uint8_t mask = (uint8_t)((0xffu >> (7 - hi)) & (0xffu << lo));

		__atomic_fetch_or(&l->bits[b], mask, __ATOMIC_RELEASE);
	}
	return rc;
}

int
vhost_log_hva(const struct vhost_log *l, const struct vhost_mem *m, const void *hva,
	      uint64_t len)
{
	const uint8_t *p = hva;

	for (unsigned i = 0; i < m->nregions; i++) {
		const struct vhost_mem_region *r = &m->r[i];
		uint64_t off = (uint64_t)((uintptr_t)p - (uintptr_t)r->hva);

		/* unsigned wrap makes p < r->hva fail the test; iovecs never cross
		 * a region (vhost_mem_gpa_iov splits there) */
		if (off < r->size) {
			int rc = vhost_log_gpa(l, r->gpa + off, NVL_MIN(len, r->size - off));

			return len > r->size - off ? -EFAULT : rc;
		}
	}
	return -EFAULT;
}

void
vhost_log_free(struct vhost_log *l)
{
	if (l == NULL)
		return;
	nvl_fault_guard_del(l->guard - 1);
	if (l->map)
		munmap(l->map, l->map_len);
	free(l);
}

int
vhost_log_map(int fd, uint64_t size, uint64_t offset, struct vhost_log **out)
{
	struct vhost_log *l;
	struct stat st;
	uint64_t end, delta = offset & (NVL_VHOST_LOG_PAGE - 1), len;
	void *p;
	int rc;

	if (size == 0 || size > VHOST_LOG_MAX_BYTES ||
	    __builtin_add_overflow(offset, size, &end) || end > (uint64_t)INT64_MAX)
		return -EINVAL;
	if (fd < 0 || fstat(fd, &st) < 0)
		return -EBADF;
	/* a memfd or a file: a log past the end of its file would SIGBUS at the first mark */
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < end)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	len = NVL_ALIGN_UP(size + delta, NVL_VHOST_LOG_PAGE);
	p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)(offset - delta));
	if (p == MAP_FAILED) {
		rc = -errno;
		free(l);
		return rc;
	}
	l->map = p;
	l->map_len = (size_t)len;
	if (!vhost_fd_sealed(fd)) {
		/* the front-end may shrink the file under us: no SIGBUS for that */
		rc = nvl_fault_guard_add(p, (size_t)len, &l->tripped);
		if (rc < 0) {
			vhost_log_free(l);
			return rc;
		}
		l->guard = rc + 1;
	}
	l->bits = (uint8_t *)p + delta;
	l->size = size;
	*out = l;
	return 0;
}
