/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The shm data window (host_internal.h): a mapping of the memfd the
 * controller sent at connect, and a page allocator over it for buffers the
 * controller reaches without copies (nvl_buf_alloc, bounce copies, PRP
 * lists, identify data).
 *
 * Threads: allocation and freeing from any thread (one mutex; never on the
 * I/O path of buffers that already live in the window). The reference count
 * is atomic; the last put unmaps.
 */
#include "host/host_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int
host_window_create(int fd, uint64_t size, struct host_window **out)
{
	struct host_window *w;

	if (size == 0 || size % NVL_NVME_PAGE_SIZE || size / NVL_NVME_PAGE_SIZE > UINT32_MAX)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->npages = (uint32_t)(size / NVL_NVME_PAGE_SIZE);
	w->alloc_len = calloc(w->npages, sizeof(uint32_t));
	w->used = calloc(w->npages, 1);
	if (w->alloc_len == NULL || w->used == NULL)
		goto err_free;
	/* populated: first touch costs milliseconds per 2 MiB here (MACHINE-NOTES) */
	w->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (w->base == MAP_FAILED)
		goto err_free;
	w->size = size;
	w->refs = 1;
	pthread_mutex_init(&w->lock, NULL);
	*out = w;
	return 0;
err_free:
	free(w->alloc_len);
	free(w->used);
	free(w);
	return -ENOMEM;
}

void
host_window_get(struct host_window *w)
{
	__atomic_add_fetch(&w->refs, 1, __ATOMIC_RELAXED);
}

void
host_window_put(struct host_window *w)
{
	if (w == NULL || __atomic_sub_fetch(&w->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	munmap(w->base, w->size);
	pthread_mutex_destroy(&w->lock);
	free(w->alloc_len);
	free(w->used);
	free(w);
}

void *
host_window_alloc(struct host_window *w, size_t size)
{
	uint32_t need, run = 0, start = 0;
	void *p = NULL;

	if (size == 0)
		size = 1;
	if (size > w->size)
		return NULL;
	need = (uint32_t)((size + NVL_NVME_PAGE_SIZE - 1) / NVL_NVME_PAGE_SIZE);
	pthread_mutex_lock(&w->lock);
	/* first fit, starting at the hint, wrapping once */
	for (uint32_t n = 0, i = w->hint; n < w->npages + need; n++, i++) {
		if (i >= w->npages) {
			i = 0;
			run = 0;
		}
		if (w->used[i]) {
			run = 0;
			continue;
		}
		if (run == 0)
			start = i;
		if (++run == need) {
			memset(w->used + start, 1, need);
			w->alloc_len[start] = need;
			w->hint = start + need;
			p = w->base + (uint64_t)start * NVL_NVME_PAGE_SIZE;
			break;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return p;
}

void
host_window_free(struct host_window *w, void *p)
{
	uint32_t page, n;

	if (p == NULL || !host_window_contains(w, p, 1))
		return;
	page = (uint32_t)(host_window_offset(w, p) / NVL_NVME_PAGE_SIZE);
	pthread_mutex_lock(&w->lock);
	n = w->alloc_len[page];
	if (n) {
		memset(w->used + page, 0, n);
		w->alloc_len[page] = 0;
	}
	pthread_mutex_unlock(&w->lock);
}
