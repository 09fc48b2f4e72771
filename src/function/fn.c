/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The function tree and its vector pools (fn.h; docs/functions.md).
 *
 * Owns: the PF list, each PF's pool of eventfds and which VF id (or the PF)
 * each vector is linked to, and the functions (name, PF/VF, vectors, state).
 * What a function serves (an NVMe controller on an shm endpoint: fn_nvme.c;
 * a virtio-blk controller: vblk) hangs off nvl_fn.ctx and is not touched
 * here.
 *
 * Threading: reactor 0 only (RPC and configuration replay). No locks.
 */
#include "function/fn.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

static TAILQ_HEAD(, nvl_fn_pf) g_pfs = TAILQ_HEAD_INITIALIZER(g_pfs);
static uint32_t g_fd_used;      /* eventfds of every pool */
static uint32_t g_fd_budget;    /* 0: a quarter of RLIMIT_NOFILE */

uint32_t
nvl_fn_fd_used(void)
{
	return g_fd_used;
}

uint32_t
nvl_fn_fd_budget(void)
{
	struct rlimit rl;

	if (g_fd_budget)
		return g_fd_budget;
	/* the rest stays for listeners, connections, queues, bdevs and the
	 * per-host budgets of the transports */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 1024;
	return (uint32_t)NVL_MIN(rl.rlim_cur / 4, (rlim_t)UINT32_MAX);
}

void
nvl_fn_set_fd_budget(uint32_t max)
{
	g_fd_budget = max;
}

const char *
nvl_fn_type_name(enum nvl_fn_type t)
{
	return t == NVL_FN_NVME ? "nvme" : "virtio_blk";
}

int
nvl_fn_type_parse(const char *s, enum nvl_fn_type *out)
{
	if (strcmp(s, "nvme") == 0)
		*out = NVL_FN_NVME;
	else if (strcmp(s, "virtio_blk") == 0 || strcmp(s, "virtio-blk") == 0)
		*out = NVL_FN_VIRTIO_BLK;
	else
		return -EINVAL;
	return 0;
}

struct nvl_fn_pf *
nvl_fn_pf_find(uint16_t pf_id)
{
	struct nvl_fn_pf *pf;

	TAILQ_FOREACH(pf, &g_pfs, link)
		if (pf->pf_id == pf_id)
			return pf;
	return NULL;
}

struct nvl_fn_pf *
nvl_fn_pf_first(void)
{
	return TAILQ_FIRST(&g_pfs);
}

struct nvl_fn_pf *
nvl_fn_pf_next(struct nvl_fn_pf *pf)
{
	return TAILQ_NEXT(pf, link);
}

static void
fn_pool_close(int *fds, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int
nvl_fn_pf_create(const struct nvl_fn_pf_opts *o, struct nvl_fn_pf **out)
{
	struct nvl_fn_pf *pf, *at;
	int rc;

	if (o->num_msix > NVL_FN_MAX_POOL || o->max_vfs > NVL_FN_MAX_VFS ||
	    (o->type != NVL_FN_NVME && o->type != NVL_FN_VIRTIO_BLK))
		return -EINVAL;
	if (nvl_fn_pf_find(o->pf_id))
		return -EEXIST;
	if ((uint64_t)g_fd_used + o->num_msix > nvl_fn_fd_budget())
		return -EMFILE;
	pf = calloc(1, sizeof(*pf));
	if (pf == NULL)
		return -ENOMEM;
	pf->pool_fds = calloc(o->num_msix + 1, sizeof(*pf->pool_fds));
	if (pf->pool_fds == NULL) {
		rc = -ENOMEM;
		goto err_free_pf;
	}
	pf->holder = calloc(o->num_msix + 1, sizeof(*pf->holder));
	if (pf->holder == NULL) {
		rc = -ENOMEM;
		goto err_free_fds;
	}
	for (uint32_t i = 0; i < o->num_msix; i++)
		pf->pool_fds[i] = -1;
	for (uint32_t i = 0; i < o->num_msix; i++) {
		pf->pool_fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (pf->pool_fds[i] < 0) {
			rc = -errno;
			goto err_close_pool;
		}
		pf->holder[i] = NVL_FN_VEC_FREE;
	}
	pf->pf_id = o->pf_id;
	pf->type = o->type;
	pf->max_vfs = o->max_vfs;
	pf->pool_size = o->num_msix;
	pf->nfree = o->num_msix;
	TAILQ_INIT(&pf->fns);
	g_fd_used += o->num_msix;
	/* listed in pf_id order */
	TAILQ_FOREACH(at, &g_pfs, link)
		if (at->pf_id > pf->pf_id)
			break;
	if (at)
		TAILQ_INSERT_BEFORE(at, pf, link);
	else
		TAILQ_INSERT_TAIL(&g_pfs, pf, link);
	NVL_NOTICELOG("function: PF %u (%s) with %u vectors, up to %u VFs", pf->pf_id,
		      nvl_fn_type_name(pf->type), pf->pool_size, pf->max_vfs);
	*out = pf;
	return 0;
err_close_pool:
	fn_pool_close(pf->pool_fds, o->num_msix);
	free(pf->holder);
err_free_fds:
	free(pf->pool_fds);
err_free_pf:
	free(pf);
	return rc;
}

int
nvl_fn_pf_destroy(struct nvl_fn_pf *pf)
{
	if (!TAILQ_EMPTY(&pf->fns))
		return -EBUSY;
	TAILQ_REMOVE(&g_pfs, pf, link);
	fn_pool_close(pf->pool_fds, pf->pool_size);
	g_fd_used -= pf->pool_size;
	NVL_NOTICELOG("function: PF %u removed", pf->pf_id);
	free(pf->holder);
	free(pf->pool_fds);
	free(pf);
	return 0;
}

uint32_t
nvl_fn_pf_linked(const struct nvl_fn_pf *pf, int32_t vf_id)
{
	int32_t h = vf_id == NVL_FN_NO_VF ? NVL_FN_VEC_PF : vf_id;
	uint32_t n = 0;

	for (uint32_t i = 0; i < pf->pool_size; i++)
		n += pf->holder[i] == h;
	return n;
}

uint32_t
nvl_fn_pf_reclaim(struct nvl_fn_pf *pf)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < pf->pool_size; i++) {
		int32_t h = pf->holder[i];

		if (h < 0 || nvl_fn_find_id(pf->pf_id, h) != NULL)
			continue;
		pf->holder[i] = NVL_FN_VEC_FREE;
		pf->nfree++;
		n++;
	}
	return n;
}

struct nvl_fn *
nvl_fn_find(const char *name)
{
	struct nvl_fn_pf *pf;
	struct nvl_fn *f;

	TAILQ_FOREACH(pf, &g_pfs, link)
		TAILQ_FOREACH(f, &pf->fns, link)
			if (strcmp(f->name, name) == 0)
				return f;
	return NULL;
}

struct nvl_fn *
nvl_fn_find_id(uint16_t pf_id, int32_t vf_id)
{
	struct nvl_fn_pf *pf = nvl_fn_pf_find(pf_id);
	struct nvl_fn *f;

	if (pf == NULL)
		return NULL;
	TAILQ_FOREACH(f, &pf->fns, link)
		if (f->vf_id == vf_id)
			return f;
	return NULL;
}

int
nvl_fn_create(struct nvl_fn_pf *pf, int32_t vf_id, enum nvl_fn_type type, const char *name,
	      uint32_t num_msix, struct nvl_fn **out, char *why, size_t whylen)
{
	int32_t h = vf_id == NVL_FN_NO_VF ? NVL_FN_VEC_PF : vf_id;
	uint32_t linked, k = 0;
	struct nvl_fn *f;

	if (type != pf->type) {
		snprintf(why, whylen, "PF %u is a %s function, not %s", pf->pf_id,
			 nvl_fn_type_name(pf->type), nvl_fn_type_name(type));
		return -EINVAL;
	}
	if (vf_id != NVL_FN_NO_VF && (vf_id < 0 || (uint32_t)vf_id >= pf->max_vfs)) {
		if (pf->max_vfs == 0)
			snprintf(why, whylen, "vf_id %d: PF %u has no VFs (max_vfs 0)", vf_id,
				 pf->pf_id);
		else
			snprintf(why, whylen, "vf_id %d: PF %u has VFs 0..%d", vf_id, pf->pf_id,
				 (int)pf->max_vfs - 1);
		return -EINVAL;
	}
	if (name == NULL || name[0] == '\0' || strlen(name) >= NVL_FN_NAME_MAX) {
		snprintf(why, whylen, "name: 1..%d bytes", NVL_FN_NAME_MAX - 1);
		return -EINVAL;
	}
	if (nvl_fn_find(name)) {
		snprintf(why, whylen, "a function named '%s' exists", name);
		return -EEXIST;
	}
	if (nvl_fn_find_id(pf->pf_id, vf_id)) {
		if (vf_id == NVL_FN_NO_VF)
			snprintf(why, whylen, "PF %u already has its function", pf->pf_id);
		else
			snprintf(why, whylen, "VF %d of PF %u already has a function", vf_id,
				 pf->pf_id);
		return -EEXIST;
	}
	linked = nvl_fn_pf_linked(pf, vf_id);
	if (linked && num_msix && num_msix != linked) {
		/* SNAP: the link stays until released or reclaimed */
		snprintf(why, whylen,
			 "VF %d of PF %u still holds %u vectors (release them with "
			 "nvme_controller_vfs_msix_reclaim, or ask for %u)",
			 vf_id, pf->pf_id, linked, linked);
		return -EINVAL;
	}
	if (!linked && num_msix > pf->nfree) {
		snprintf(why, whylen,
			 "PF %u has %u free interrupt vectors of %u, the function asks for %u "
			 "(destroy functions with release_msix, or "
			 "nvme_controller_vfs_msix_reclaim)",
			 pf->pf_id, pf->nfree, pf->pool_size, num_msix);
		return -ENOSPC;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	f->nvec = linked ? linked : num_msix;
	f->vec = calloc(f->nvec + 1, sizeof(*f->vec));
	if (f->vec == NULL) {
		free(f);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < pf->pool_size && k < f->nvec; i++) {
		if (linked ? pf->holder[i] == h : pf->holder[i] == NVL_FN_VEC_FREE) {
			if (!linked) {
				pf->holder[i] = h;
				pf->nfree--;
			}
			f->vec[k++] = i;
		}
	}
	f->pf = pf;
	f->vf_id = vf_id;
	nvl_strlcpy(f->name, name, sizeof(f->name));
	f->state = NVL_FN_RUNNING;
	TAILQ_INSERT_TAIL(&pf->fns, f, link);
	*out = f;
	return 0;
}

void
nvl_fn_destroy(struct nvl_fn *f, bool release_msix)
{
	struct nvl_fn_pf *pf = f->pf;

	/* a PF's own vectors have no VF link to keep */
	if (release_msix || f->vf_id == NVL_FN_NO_VF) {
		for (uint32_t i = 0; i < f->nvec; i++) {
			uint64_t junk;

			pf->holder[f->vec[i]] = NVL_FN_VEC_FREE;
			pf->nfree++;
			/* a pending interrupt must not reach the next holder */
			while (read(pf->pool_fds[f->vec[i]], &junk, sizeof(junk)) > 0)
				;
		}
	}
	TAILQ_REMOVE(&pf->fns, f, link);
	free(f->vec);
	free(f);
}

int
nvl_fn_vector_fd(const struct nvl_fn *f, uint32_t i)
{
	return i < f->nvec ? f->pf->pool_fds[f->vec[i]] : -1;
}

json_t *
nvl_fn_pf_to_json(const struct nvl_fn_pf *pf)
{
	uint32_t vf_linked = 0, pf_linked = 0;

	for (uint32_t i = 0; i < pf->pool_size; i++) {
		vf_linked += pf->holder[i] >= 0;
		pf_linked += pf->holder[i] == NVL_FN_VEC_PF;
	}
	return json_pack("{s:i, s:s, s:i, s:i, s:i, s:i, s:i}", "pf_id", (int)pf->pf_id, "type",
			 nvl_fn_type_name(pf->type), "max_vfs", (int)pf->max_vfs, "num_msix",
			 (int)pf->pool_size, "num_free_msix", (int)pf->nfree, "pf_msix",
			 (int)pf_linked, "vf_msix", (int)vf_linked);
}
