/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-blk functions served to VMs over vhost-user-blk (the "function"
 * part of DESIGN.md, SNAP's virtio-blk emulation on commodity machines).
 *
 * A controller owns one bdev, one vhost-user socket and up to
 * NVL_VBLK_MAX_QUEUES virtqueues, each served on its own reactor
 * (queue i on reactor (base + i) mod reactor count). Guest buffers are mapped
 * from the front-end and handed to the bdev as they are (zero copy).
 * Requests in flight are tracked in the front-end's inflight region, so a
 * daemon killed with -9 and restarted with the same configuration resubmits
 * them when QEMU reconnects.
 *
 * Threading: everything here is called on reactor 0 (RPC, config replay,
 * shutdown).
 */
#ifndef NVL_FUNCTION_VBLK_H
#define NVL_FUNCTION_VBLK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define NVL_VBLK_NAME_MAX 64
#define NVL_VBLK_MAX_QUEUES 32
#define NVL_VBLK_DEFAULT_QUEUE_SIZE 256

struct nvl_vblk;

struct nvl_vblk_opts {
	const char *name;         /**< controller name, unique */
	const char *bdev;         /**< bdev to serve */
	const char *socket;       /**< vhost-user socket path (created; a stale one is replaced);
				   *   a relative one is taken inside the socket directory */
	uint16_t num_queues;      /**< 1..NVL_VBLK_MAX_QUEUES (0 = 1) */
	uint16_t queue_size;      /**< largest ring accepted, power of two 1..1024 (0 = 256) */
	bool read_only;
	bool force_in_order;      /**< complete requests in submission order */
	bool suspended;           /**< SNAP's create suspended: no queue served until resumed */
};

/**
 * Directory where relative socket paths are created (SPDK's vhost -S); default:
 * the daemon's working directory. dir is made absolute here, so a controller's
 * socket (and the save_config call that recreates it) never depends on the cwd.
 * \return 0; -ENOENT (no such directory); -ENOTDIR; -ENAMETOOLONG.
 */
int nvl_vblk_set_socket_dir(const char *dir);
/** The absolute path of a socket: a relative one goes in the socket
 *  directory above (also NVMe functions' endpoints, src/function/fn_rpc.c).
 *  \return 0, -ENAMETOOLONG, -errno of getcwd(). */
int nvl_vblk_socket_path(const char *socket, char *out, size_t len);

/** Create and start listening.
 *  \return 0; -EINVAL (bad option); -EEXIST (name taken or socket path is not a socket);
 *  -ENOENT (no such bdev); -EROFS (writable use of a read-only bdev);
 *  -EADDRINUSE (a live server on the socket); -ENAMETOOLONG; -ENOMEM. */
int nvl_vblk_create(const struct nvl_vblk_opts *o, struct nvl_vblk **out);

typedef void (*nvl_vblk_done_fn)(void *arg);
/** Stop: drop the front-end after its in-flight I/O completed, remove the
 *  socket, close the bdev, free. done(arg) runs later from the reactor loop. */
void nvl_vblk_destroy(struct nvl_vblk *c, nvl_vblk_done_fn done, void *arg);

struct nvl_vblk *nvl_vblk_find(const char *name);
struct nvl_vblk *nvl_vblk_first(void);
struct nvl_vblk *nvl_vblk_next(struct nvl_vblk *c);
/** True while a destroy is in progress (the name is still taken). */
bool nvl_vblk_destroying(const struct nvl_vblk *c);

/** SNAP's suspend: stop serving the controller's queues once the requests in
 *  flight completed; done(arg) then. The front-end stays connected. Reactor 0.
 *  \return 0; -EBUSY (being destroyed, or a vhost-user operation runs). */
int nvl_vblk_suspend(struct nvl_vblk *c, nvl_vblk_done_fn done, void *arg);
/** Serve the queues again. Reactor 0. */
void nvl_vblk_resume(struct nvl_vblk *c);

/** State, front-end, per-queue counters and recovery figures (virtio_blk_controller_list). */
json_t *nvl_vblk_to_json(struct nvl_vblk *c);
/** The virtio_blk_controller_create call that recreates c. */
json_t *nvl_vblk_config_call(struct nvl_vblk *c);

#endif
