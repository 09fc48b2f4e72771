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
 * Threading: built and freed on reactor 0; read-only afterwards, so queue
 * reactors translate through it without locks (see vhost_internal.h for the
 * rule that keeps it alive while they do).
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
