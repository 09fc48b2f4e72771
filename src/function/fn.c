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
 * Kept pools (fn.h): the vectors go to the fd store before the record that
 * names them, and the record goes before anything is linked, so a kill
 * between any two stores leaves either no record (the next worker makes a
 * new pool; the orphan eventfds are released as untaken) or a record whose
 * every vector is stored. Links change one int32 at a time in the record;
 * a function made or released with release_msix when the worker dies has
 * some of its vectors linked and some not: the replayed configuration then
 * sees the VF holding fewer vectors than it asks for and says so (reclaim
 * frees them). A worker that takes a pool back writes nothing to the record
 * before the configuration asks it to (nvlend upgrade may still roll back
 * to the previous worker, which must find it unchanged), except to free
 * links to VF ids beyond a max_vfs the configuration lowered.
 *
 * Threading: reactor 0 only (RPC and configuration replay). No locks.
 */
#include "function/fn.h"
#include "util/log.h"
#include "util/util.h"

#include "util/fdstore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define FN_KEEP_MAGIC 0x4b504e46u     /* "FNPK" */
#define FN_KEEP_VERSION 1

/* the record of a kept pool, a memfd in the fd store ("fn.pf.P.pool") */
struct fn_keep_pool {
	uint32_t magic;
	uint32_t version;
	uint16_t pf_id;
	uint16_t type;                   /* enum nvl_fn_type */
	uint32_t pool_size;
	uint32_t max_vfs;
	uint32_t gen;
	uint32_t rsvd[2];
	int32_t holder[];                /* [pool_size] */
};

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

static size_t
fn_keep_size(uint32_t pool_size)
{
	return NVL_ALIGN_UP(sizeof(struct fn_keep_pool) + (size_t)pool_size * sizeof(int32_t),
			    4096);
}

static void
fn_keep_name(char *buf, size_t len, uint16_t pf_id, int vec)
{
	if (vec < 0)
		snprintf(buf, len, "fn.pf.%u.pool", pf_id);
	else
		snprintf(buf, len, "fn.pf.%u.v%d", pf_id, vec);
}

/* Forget pf_id's kept pool in the store: the record first, then up to n vectors. */
static void
fn_keep_forget(uint16_t pf_id, uint32_t n)
{
	char name[64];

	fn_keep_name(name, sizeof(name), pf_id, -1);
	(void)nvl_fdstore_remove(name);
	for (uint32_t i = 0; i < n; i++) {
		fn_keep_name(name, sizeof(name), pf_id, (int)i);
		(void)nvl_fdstore_remove(name);
	}
}

struct fn_kept_vecs {
	uint16_t pf_id;
	uint8_t bits[NVL_FN_MAX_POOL / 8];
};

static void
fn_kept_vec(void *arg, const char *name, int fd)
{
	struct fn_kept_vecs *kv = arg;
	unsigned pf_id, i;
	int end = 0;

	(void)fd;
	if (sscanf(name, "fn.pf.%u.v%u%n", &pf_id, &i, &end) == 2 && name[end] == '\0' &&
	    pf_id == kv->pf_id && i < NVL_FN_MAX_POOL)
		kv->bits[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* A kept pool that is not taken back: its record and vectors leave the
 * store now (the new pool stores under the same names), those taken
 * (0..ntaken-1, closed by the caller) and those still untaken alike. */
static void
fn_keep_drop(uint16_t pf_id, uint32_t ntaken)
{
	struct fn_kept_vecs kv = { .pf_id = pf_id };
	char name[64];

	fn_keep_forget(pf_id, ntaken);
	nvl_fdstore_for_each_untaken(fn_kept_vec, &kv);
	for (uint32_t i = 0; i < NVL_FN_MAX_POOL; i++) {
		int fd;

		if (!(kv.bits[i / 8] & (1u << (i % 8))))
			continue;
		fn_keep_name(name, sizeof(name), pf_id, (int)i);
		fd = nvl_fdstore_take(name);
		if (fd >= 0)
			close(fd);
		(void)nvl_fdstore_remove(name);
	}
}

static uint32_t
fn_new_gen(void)
{
	uint32_t g = 0;

	if (nvl_random_bytes(&g, sizeof(g)) < 0)
		g = (uint32_t)(nvl_now_ns() ^ ((uint64_t)getpid() << 16));
	return g ? g : 1;
}

/*
 * Take back the pool a previous worker kept for o->pf_id into pf (pool_fds
 * and holder arrays allocated, pool_fds all -1). \return 1 when taken back,
 * 0 when nothing usable was kept (what was is dropped and forgotten).
 */
static int
fn_keep_take(struct nvl_fn_pf *pf, const struct nvl_fn_pf_opts *o)
{
	struct fn_keep_pool *k = MAP_FAILED;
	const char *why = NULL;
	uint32_t ntaken = 0, bad = 0, vf = 0, own = 0;
	char name[64];
	struct stat st;
	int fd;

	fn_keep_name(name, sizeof(name), o->pf_id, -1);
	fd = nvl_fdstore_take(name);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(*k) ||
	    (size_t)st.st_size > fn_keep_size(NVL_FN_MAX_POOL)) {
		why = "its record has the wrong size";
		goto err_drop;
	}
	k = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (k == MAP_FAILED) {
		why = "its record cannot be mapped";
		goto err_drop;
	}
	if (k->magic != FN_KEEP_MAGIC || k->version != FN_KEEP_VERSION || k->pf_id != o->pf_id ||
	    k->pool_size > NVL_FN_MAX_POOL || fn_keep_size(k->pool_size) != (size_t)st.st_size) {
		why = "its record is not one this version understands";
		goto err_drop;
	}
	if (k->type != (uint16_t)o->type || k->pool_size != o->num_msix) {
		why = "the configuration asks for another type or num_msix";
		goto err_drop;
	}
	for (uint32_t i = 0; i < o->num_msix; i++) {
		fn_keep_name(name, sizeof(name), o->pf_id, (int)i);
		pf->pool_fds[i] = nvl_fdstore_take(name);
		if (pf->pool_fds[i] < 0) {
			why = "a vector's eventfd was not kept";
			goto err_drop;
		}
		ntaken = i + 1;
	}
	/* links to VF ids the PF no longer has count as free: read only, the
	 * record is not written before the configuration changes a link */
	for (uint32_t i = 0; i < o->num_msix; i++) {
		int32_t h = k->holder[i];

		if (h == NVL_FN_VEC_FREE)
			continue;
		if (h != NVL_FN_VEC_PF && (h < 0 || (uint32_t)h >= o->max_vfs)) {
			bad++;
			k->holder[i] = NVL_FN_VEC_FREE;
			continue;
		}
		vf += h >= 0;
		own += h == NVL_FN_VEC_PF;
	}
	free(pf->holder);
	pf->holder = k->holder;
	pf->keep_fd = fd;
	pf->keep_map = k;
	pf->keep_size = (size_t)st.st_size;
	pf->gen = k->gen;
	pf->taken_back = true;
	pf->nfree = o->num_msix - vf - own;
	NVL_NOTICELOG("function: PF %u: its %u vectors taken back after a restart (%u linked to "
		      "VFs, %u to the PF, %u free)%s",
		      o->pf_id, o->num_msix, vf, own, pf->nfree,
		      bad ? "; links to VFs beyond max_vfs were freed" : "");
	return 1;
err_drop:
	NVL_WARNLOG("function: PF %u: the vectors a previous worker kept are dropped (%s): new "
		    "ones are made, and a kept consumer of one of its functions is not restored",
		    o->pf_id, why);
	for (uint32_t i = 0; i < o->num_msix; i++) {
		if (pf->pool_fds[i] >= 0)
			close(pf->pool_fds[i]);
		pf->pool_fds[i] = -1;
	}
	if (k != MAP_FAILED)
		munmap(k, (size_t)st.st_size);
	close(fd);
	fn_keep_drop(o->pf_id, ntaken);
	return 0;
}

/* Keep pf's new pool in the store: vectors first, then the record that
 * names them; the holder table moves into the record. Failing leaves the
 * pool working, not kept (logged). */
static void
fn_keep_new(struct nvl_fn_pf *pf)
{
	struct fn_keep_pool *k;
	size_t size = fn_keep_size(pf->pool_size);
	char name[64];
	int fd, rc = 0;

	fd = memfd_create("nvlend-fn-pool", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		rc = -errno;
		goto err_close;
	}
	k = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (k == MAP_FAILED) {
		rc = -errno;
		goto err_close;
	}
	k->magic = FN_KEEP_MAGIC;
	k->version = FN_KEEP_VERSION;
	k->pf_id = pf->pf_id;
	k->type = (uint16_t)pf->type;
	k->pool_size = pf->pool_size;
	k->max_vfs = pf->max_vfs;
	k->gen = pf->gen;
	memcpy(k->holder, pf->holder, (size_t)pf->pool_size * sizeof(int32_t));
	for (uint32_t i = 0; i < pf->pool_size && rc == 0; i++) {
		fn_keep_name(name, sizeof(name), pf->pf_id, (int)i);
		rc = nvl_fdstore_put(name, pf->pool_fds[i]);
	}
	if (rc == 0) {
		fn_keep_name(name, sizeof(name), pf->pf_id, -1);
		rc = nvl_fdstore_put(name, fd);
	}
	if (rc < 0)
		goto err_forget;
	free(pf->holder);
	pf->holder = k->holder;
	pf->keep_fd = fd;
	pf->keep_map = k;
	pf->keep_size = size;
	return;
err_forget:
	fn_keep_forget(pf->pf_id, pf->pool_size);
	munmap(k, size);
err_close:
	if (fd >= 0)
		close(fd);
	NVL_WARNLOG("function: PF %u: its vectors will not survive a restart of the worker (%s)",
		    pf->pf_id, strerror(-rc));
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
	pf->keep_fd = -1;
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
	if (!nvl_fdstore_available() || fn_keep_take(pf, o) == 0) {
		for (uint32_t i = 0; i < o->num_msix; i++) {
			pf->pool_fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			if (pf->pool_fds[i] < 0) {
				rc = -errno;
				goto err_close_pool;
			}
			pf->holder[i] = NVL_FN_VEC_FREE;
		}
		pf->nfree = o->num_msix;
		pf->gen = fn_new_gen();
	}
	pf->pf_id = o->pf_id;
	pf->type = o->type;
	pf->max_vfs = o->max_vfs;
	pf->pool_size = o->num_msix;
	if (!pf->taken_back && nvl_fdstore_available())
		fn_keep_new(pf);
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
	if (pf->keep_fd >= 0) {
		/* the record first: without it the vectors are not taken back */
		fn_keep_forget(pf->pf_id, pf->pool_size);
		munmap(pf->keep_map, pf->keep_size);
		close(pf->keep_fd);
	} else {
		free(pf->holder);
	}
	fn_pool_close(pf->pool_fds, pf->pool_size);
	g_fd_used -= pf->pool_size;
	NVL_NOTICELOG("function: PF %u removed", pf->pf_id);
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

uint32_t
nvl_fn_vector_gen(const struct nvl_fn *f)
{
	return f->pf->gen;
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
