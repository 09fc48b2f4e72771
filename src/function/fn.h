/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SNAP's function model (docs/functions.md): physical functions (PF) with
 * virtual functions (VF), each function an NVMe or virtio-blk controller
 * made by RPC before any consumer comes, and each PF's pool of interrupt
 * vectors (SNAP's dynamic MSIX). A vector is an eventfd the daemon creates
 * with the pool: the pool is a file-descriptor budget, counted against the
 * daemon's RLIMIT_NOFILE when the PF is made, so vectors can never run the
 * daemon out of descriptors.
 *
 * Vector ownership follows SNAP: a vector is free (in the PF's pool), or
 * linked to the PF or to one VF id. A function takes vf_num_msix vectors at
 * creation (or finds those its VF id still holds); destroying it with
 * release_msix gives them back to the pool, without it they stay linked to
 * the VF id (a later function on that VF gets them again);
 * nvl_fn_pf_reclaim() (nvme_controller_vfs_msix_reclaim) returns every
 * vector linked to a VF id that has no function now.
 *
 * Kept across a restart of the worker (docs/functions.md, docs/lifetime.md):
 * with a supervisor that holds descriptors (util/fdstore.h), a PF's pool
 * goes to the fd store when it is made: each vector's eventfd as
 * "fn.pf.P.vI", then a record "fn.pf.P.pool" (a memfd: pool size, type, a
 * generation number and the holder of every vector, which lives there, so
 * each link or release is one 4-byte store). The replayed function_create_pf
 * takes them back when they match: the same eventfds (a function's consumer
 * holds them) and the same links, so a VF's vectors stay tied to it and the
 * replayed functions find theirs.
 *
 * Threading: reactor 0 (RPC) only. No locks.
 */
#ifndef NVL_FUNCTION_FN_H
#define NVL_FUNCTION_FN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#define NVL_FN_MAX_PFS 256
#define NVL_FN_MAX_VFS 4096          /* per PF (SNAP allows more than 127) */
#define NVL_FN_MAX_POOL 4096         /* vectors per PF */
#define NVL_FN_NAME_MAX 64
#define NVL_FN_NO_VF (-1)            /* the PF's own function */

enum nvl_fn_type {
	NVL_FN_NVME = 0,
	NVL_FN_VIRTIO_BLK = 1,
};

enum nvl_fn_state {
	NVL_FN_RUNNING = 0,
	NVL_FN_SUSPENDED = 1,
};

/* a pool vector's holder: free, the PF, or VF id >= 0 */
#define NVL_FN_VEC_FREE (-2)
#define NVL_FN_VEC_PF (-1)

struct nvl_fn;

struct nvl_fn_pf {
	uint16_t pf_id;
	enum nvl_fn_type type;
	uint32_t max_vfs;
	uint32_t pool_size;
	int *pool_fds;                   /* [pool_size] eventfds */
	int32_t *holder;                 /* [pool_size] NVL_FN_VEC_FREE/_PF or a VF id
					  * (in the kept record when there is one) */
	uint32_t nfree;
	uint32_t gen;                    /* the pool's generation: new eventfds, new number */
	bool taken_back;                 /* the pool came back from the fd store */
	int keep_fd;                     /* the kept record ("fn.pf.P.pool"), -1: none */
	void *keep_map;
	size_t keep_size;
	TAILQ_HEAD(, nvl_fn) fns;
	TAILQ_ENTRY(nvl_fn_pf) link;
};

struct nvl_fn {
	struct nvl_fn_pf *pf;
	int32_t vf_id;                   /* NVL_FN_NO_VF: the PF's own */
	char name[NVL_FN_NAME_MAX];
	uint32_t nvec;
	uint32_t *vec;                   /* [nvec] pool indices, vector i of the function */
	enum nvl_fn_state state;
	void *ctx;                       /* the type's controller (fn_nvme.c, vblk) */
	TAILQ_ENTRY(nvl_fn) link;
};

struct nvl_fn_pf_opts {
	uint16_t pf_id;
	enum nvl_fn_type type;
	uint32_t num_msix;               /* pool size, 0..NVL_FN_MAX_POOL */
	uint32_t max_vfs;                /* 0..NVL_FN_MAX_VFS */
};

/**
 * Make a PF with its vector pool (num_msix eventfds), or take back the pool
 * a previous worker kept for this pf_id (same type and size: its eventfds
 * and links; another one is dropped, logged). Reactor 0.
 * \return 0; -EEXIST (pf_id taken); -EINVAL (a value out of range);
 *         -EMFILE (the pool would exceed the daemon's descriptor budget:
 *         nvl_fn_fd_budget()); -ENOMEM; -errno of eventfd().
 */
int nvl_fn_pf_create(const struct nvl_fn_pf_opts *o, struct nvl_fn_pf **out);
/** Remove a PF and close its pool. \return 0; -EBUSY (it still has functions). */
int nvl_fn_pf_destroy(struct nvl_fn_pf *pf);
struct nvl_fn_pf *nvl_fn_pf_find(uint16_t pf_id);
struct nvl_fn_pf *nvl_fn_pf_first(void);
struct nvl_fn_pf *nvl_fn_pf_next(struct nvl_fn_pf *pf);

/** Vectors linked to a VF id (or the PF: NVL_FN_NO_VF), in use or not. */
uint32_t nvl_fn_pf_linked(const struct nvl_fn_pf *pf, int32_t vf_id);

/**
 * Give back to the pool every vector linked to a VF id without a function
 * now (nvme_controller_vfs_msix_reclaim). \return the number returned.
 */
uint32_t nvl_fn_pf_reclaim(struct nvl_fn_pf *pf);

/** Descriptors all pools hold, and the most they may hold (a quarter of the
 *  soft RLIMIT_NOFILE unless nvl_fn_set_fd_budget() set another). */
uint32_t nvl_fn_fd_used(void);
uint32_t nvl_fn_fd_budget(void);
/** 0: back to the default. */
void nvl_fn_set_fd_budget(uint32_t max);

/**
 * Add a function to a PF (vf_id NVL_FN_NO_VF: the PF's own, else a VF id
 * below max_vfs). It takes num_msix vectors: those still linked to its id
 * when there are any (num_msix must then be 0 or their count), else
 * num_msix free ones. Reactor 0.
 * \return 0; -EINVAL (vf_id out of range, type mismatch, name too long, or
 *         num_msix differs from the vectors linked to the VF: why says so);
 *         -EEXIST (a function on that VF/PF, or that name); -ENOSPC (the pool
 *         has too few free vectors: why says how many); -ENOMEM.
 */
int nvl_fn_create(struct nvl_fn_pf *pf, int32_t vf_id, enum nvl_fn_type type, const char *name,
		  uint32_t num_msix, struct nvl_fn **out, char *why, size_t whylen);
/** Remove a function; release_msix: its vectors go back to the pool, else
 *  they stay linked to its VF id (a PF's own always go back). */
void nvl_fn_destroy(struct nvl_fn *f, bool release_msix);
struct nvl_fn *nvl_fn_find(const char *name);
struct nvl_fn *nvl_fn_find_id(uint16_t pf_id, int32_t vf_id);
/** The eventfd of the function's vector i, or -1 (i >= nvec). */
int nvl_fn_vector_fd(const struct nvl_fn *f, uint32_t i);
/** The generation of the pool the function's vectors come from: equal
 *  numbers before and after a restart mean the same eventfds (never 0). */
uint32_t nvl_fn_vector_gen(const struct nvl_fn *f);

const char *nvl_fn_type_name(enum nvl_fn_type t);
/** "nvme" / "virtio_blk" (also "virtio-blk"). \return 0 or -EINVAL. */
int nvl_fn_type_parse(const char *s, enum nvl_fn_type *out);

/** {"pf_id", "type", "max_vfs", "num_msix", "num_free_msix", ...} */
json_t *nvl_fn_pf_to_json(const struct nvl_fn_pf *pf);

#endif
