/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-blk device behind vhost-user (VIRTIO 1.2 section 5.2): controllers
 * (create, destroy, the vhost-user device ops, config space, JSON) in this
 * file; their queues (request parsing, bdev submission, completion, queue
 * life cycle and crash recovery) in vblk_queue.c; vblk_internal.h has the
 * structures.
 *
 * Request path (queue reactor): take a head from the avail ring, flag it in
 * the inflight region, walk its chain into iovecs that point into guest
 * memory, split header / data / status byte, check directions and ranges,
 * submit one bdev I/O straight on those iovecs (several, on slices of them,
 * when the request is longer than the bdev's max_io_bytes), and on completion
 * write the status byte and put the head in the used ring. Completions of one poll are
 * published together (one used->idx store, one interrupt when the driver
 * wants one). With force_in_order, completions are published in the order
 * the requests were taken.
 *
 * A request the guest got wrong (bad chain, address outside its memory,
 * wrong direction, short buffers, range past the end) completes with
 * VIRTIO_BLK_S_IOERR, or VIRTIO_BLK_S_UNSUPP for an unknown type; a chain
 * without a device-writable byte cannot carry a status and is returned with
 * used length 0. A ring the guest broke (an avail index more than the ring
 * size ahead, a head out of range or already in flight) stops that queue
 * until the front-end restarts it.
 *
 * Threading: controllers on reactor 0; a running queue on the reactor
 * nvl_reactor_pick() chose when it started (given back in vblk_q_free()), which
 * alone touches its requests, ring and counters (counters are read racily by
 * reactor 0 for the list RPC). Start, stop and call-fd changes reach the
 * queue through reactor messages; the queue reports back the same way.
 */
#include "function/vblk_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

NVL_LOG_DECLARE_COMPONENT(vhost);

static TAILQ_HEAD(, nvl_vblk) g_vblks = TAILQ_HEAD_INITIALIZER(g_vblks);
static char g_socket_dir[108];   /* absolute; empty: the working directory */

uint64_t
vblk_features(const struct nvl_vblk *c)
{
	uint64_t f = (1ULL << NVL_VIRTIO_BLK_F_SEG_MAX) | (1ULL << NVL_VIRTIO_BLK_F_BLK_SIZE) |
		     (1ULL << NVL_VIRTIO_BLK_F_FLUSH) | (1ULL << NVL_VIRTIO_BLK_F_MQ);

	if (c->read_only) {
		f |= 1ULL << NVL_VIRTIO_BLK_F_RO;
	} else {
		if (c->bdev->io_types & (1u << NVL_BDEV_IO_UNMAP))
			f |= 1ULL << NVL_VIRTIO_BLK_F_DISCARD;
		if (c->bdev->io_types & (1u << NVL_BDEV_IO_WRITE_ZEROES))
			f |= 1ULL << NVL_VIRTIO_BLK_F_WRITE_ZEROES;
	}
	return f;
}

static void
vblk_fill_config(const struct nvl_vblk *c, struct nvl_virtio_blk_config *cfg)
{
	const struct nvl_bdev *b = c->bdev;
	uint64_t f = vblk_features(c);

	memset(cfg, 0, sizeof(*cfg));
	cfg->capacity = b->num_blocks * b->block_size / NVL_VIRTIO_BLK_SECTOR_SIZE;
	cfg->seg_max = VBLK_SEG_MAX;
	cfg->blk_size = b->block_size;
	cfg->num_queues = c->num_queues;
	if (f & (1ULL << NVL_VIRTIO_BLK_F_DISCARD)) {
		cfg->max_discard_sectors = VBLK_MAX_DWZ_SECTORS;
		cfg->max_discard_seg = 1;
		cfg->discard_sector_alignment = b->block_size / NVL_VIRTIO_BLK_SECTOR_SIZE;
	}
	if (f & (1ULL << NVL_VIRTIO_BLK_F_WRITE_ZEROES)) {
		cfg->max_write_zeroes_sectors = VBLK_MAX_DWZ_SECTORS;
		cfg->max_write_zeroes_seg = 1;
		cfg->write_zeroes_may_unmap =
			(b->io_types & (1u << NVL_BDEV_IO_UNMAP)) ? 1 : 0;
	}
}

static void
vblk_get_config(struct vhost_dev *d, uint8_t *buf, uint32_t off, uint32_t len)
{
	struct nvl_virtio_blk_config cfg;

	vblk_fill_config(d->ctx, &cfg);
	if (off < sizeof(cfg))
		memcpy(buf, (uint8_t *)&cfg + off, NVL_MIN(len, sizeof(cfg) - off));
}

static void
vblk_connected(struct vhost_dev *d)
{
	struct nvl_vblk *c = d->ctx;

	c->first_io_ns = 0;
	c->last_resubmitted = 0;
}

static void
vblk_disconnected(struct vhost_dev *d)
{
	struct nvl_vblk *c = d->ctx;

	if (c->last_resubmitted)
		c->recoveries++;
	NVL_NOTICELOG("vblk %s: front-end gone; waiting for it on %s", c->name, c->socket);
}

static const struct vhost_dev_ops vblk_vhost_ops = {
	.queue_start = vblk_queue_start,
	.queue_stop = vblk_queue_stop,
	.queue_set_call = vblk_queue_set_call,
	.get_config = vblk_get_config,
	.connected = vblk_connected,
	.disconnected = vblk_disconnected,
};

/* ---- controllers ------------------------------------------------------------ */

struct nvl_vblk *
nvl_vblk_find(const char *name)
{
	struct nvl_vblk *c;

	TAILQ_FOREACH(c, &g_vblks, link) {
		if (strcmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

struct nvl_vblk *
nvl_vblk_first(void)
{
	return TAILQ_FIRST(&g_vblks);
}

struct nvl_vblk *
nvl_vblk_next(struct nvl_vblk *c)
{
	return TAILQ_NEXT(c, link);
}

bool
nvl_vblk_destroying(const struct nvl_vblk *c)
{
	return c->destroying;
}

int
nvl_vblk_set_socket_dir(const char *dir)
{
	struct stat st;
	char *abs;
	int rc = 0;

	abs = realpath(dir, NULL);
	if (abs == NULL)
		return errno == ENAMETOOLONG || errno == ENOTDIR ? -errno : -ENOENT;
	if (stat(abs, &st) < 0 || !S_ISDIR(st.st_mode))
		rc = -ENOTDIR;
	else if (strlen(abs) + 2 > sizeof(g_socket_dir))   /* room for "/x" */
		rc = -ENAMETOOLONG;
	else
		nvl_strlcpy(g_socket_dir, abs, sizeof(g_socket_dir));
	free(abs);
	return rc;
}

/* The absolute path of socket: relative ones go in the socket directory. */
static int
vblk_socket_path(const char *socket, char *out, size_t len)
{
	char cwd[PATH_MAX];
	const char *dir = g_socket_dir;
	int n;

	if (socket[0] == '/') {
		n = snprintf(out, len, "%s", socket);
	} else {
		if (dir[0] == '\0') {
			if (getcwd(cwd, sizeof(cwd)) == NULL)
				return errno == ERANGE ? -ENAMETOOLONG : -errno;
			dir = cwd;
		}
		n = snprintf(out, len, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", socket);
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int
nvl_vblk_socket_path(const char *socket, char *out, size_t len)
{
	return vblk_socket_path(socket, out, len);
}

int
nvl_vblk_create(const struct nvl_vblk_opts *o, struct nvl_vblk **out)
{
	struct nvl_vblk *c;
	char who[96], sock[sizeof(((struct nvl_vblk *)0)->socket)];
	int rc;

	if (o->name == NULL || o->name[0] == '\0' || strlen(o->name) >= NVL_VBLK_NAME_MAX ||
	    o->bdev == NULL || o->socket == NULL || o->socket[0] == '\0')
		return -EINVAL;
	rc = vblk_socket_path(o->socket, sock, sizeof(sock));
	if (rc < 0)
		return rc;
	if (o->num_queues > NVL_VBLK_MAX_QUEUES)
		return -EINVAL;
	if (o->queue_size && (o->queue_size > VHOST_MAX_RING || !NVL_IS_POW2(o->queue_size)))
		return -EINVAL;
	if (nvl_vblk_find(o->name))
		return -EEXIST;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	nvl_strlcpy(c->name, o->name, sizeof(c->name));
	nvl_strlcpy(c->bdev_name, o->bdev, sizeof(c->bdev_name));
	nvl_strlcpy(c->socket, sock, sizeof(c->socket));
	c->num_queues = o->num_queues ? o->num_queues : 1;
	c->queue_size = o->queue_size ? o->queue_size : NVL_VBLK_DEFAULT_QUEUE_SIZE;
	c->read_only = o->read_only;
	c->force_in_order = o->force_in_order;
	c->created_ns = nvl_now_ns();
	snprintf(who, sizeof(who), "virtio-blk controller %s", c->name);
	rc = nvl_bdev_open(o->bdev, !o->read_only, who, &c->desc);
	if (rc < 0)
		goto err_free;
	c->bdev = c->desc->bdev;
	if ((uint64_t)c->bdev->num_blocks * c->bdev->block_size < NVL_VIRTIO_BLK_SECTOR_SIZE ||
	    c->bdev->block_size < NVL_VIRTIO_BLK_SECTOR_SIZE) {
		rc = -EINVAL;
		goto err_close;
	}
	vhost_dev_init(&c->vdev);
	c->vdev.ops = &vblk_vhost_ops;
	c->vdev.ctx = c;
	c->vdev.name = c->name;
	c->vdev.max_queues = c->num_queues;
	c->vdev.dev_features = vblk_features(c);
	c->vdev.config_size = sizeof(struct nvl_virtio_blk_config);
	c->vdev.force_in_order = c->force_in_order;
	c->vdev.suspended = o->suspended;
	rc = vhost_dev_listen(&c->vdev, c->socket);
	if (rc < 0)
		goto err_close;
	TAILQ_INSERT_TAIL(&g_vblks, c, link);
	NVL_NOTICELOG("vblk %s: serving bdev %s on %s (%u queue(s) of up to %u, %s%s)", c->name,
		      c->bdev_name, c->socket, c->num_queues, c->queue_size,
		      c->read_only ? "read-only" : "read-write",
		      c->force_in_order ? ", in order" : "");
	*out = c;
	return 0;
err_close:
	nvl_bdev_close(c->desc);
err_free:
	free(c);
	return rc;
}

static void
vblk_stopped(struct vhost_dev *d, void *arg)
{
	struct nvl_vblk *c = arg;
	nvl_vblk_done_fn done = c->done;
	void *done_arg = c->done_arg;

	(void)d;
	TAILQ_REMOVE(&g_vblks, c, link);
	nvl_bdev_close(c->desc);
	NVL_NOTICELOG("vblk %s: destroyed", c->name);
	free(c);
	if (done)
		done(done_arg);
}

void
nvl_vblk_destroy(struct nvl_vblk *c, nvl_vblk_done_fn done, void *arg)
{
	c->destroying = true;
	c->done = done;
	c->done_arg = arg;
	vhost_dev_stop(&c->vdev, vblk_stopped, c);
}

/* ---- suspend / resume (SNAP) ------------------------------------------------- */

static void
vblk_suspended(struct vhost_dev *d)
{
	struct nvl_vblk *c = d->ctx;
	nvl_vblk_done_fn done = c->suspend_done;

	c->suspend_done = NULL;
	NVL_NOTICELOG("vblk %s: suspended", c->name);
	if (done)
		done(c->suspend_arg);
}

int
nvl_vblk_suspend(struct nvl_vblk *c, nvl_vblk_done_fn done, void *arg)
{
	int rc;

	if (c->destroying || c->suspend_done)
		return -EBUSY;
	c->suspend_done = done;
	c->suspend_arg = arg;
	rc = vhost_dev_suspend(&c->vdev, vblk_suspended);
	if (rc < 0)
		c->suspend_done = NULL;
	return rc;
}

void
nvl_vblk_resume(struct nvl_vblk *c)
{
	vhost_dev_resume(&c->vdev);
	NVL_NOTICELOG("vblk %s: resumed", c->name);
}

/* ---- JSON ------------------------------------------------------------------- */

static const char *
vblk_state_name(const struct nvl_vblk *c)
{
	if (c->destroying)
		return "stopping";
	if (c->vdev.suspended)
		return "suspended";
	switch (c->vdev.state) {
	case VHOST_DEV_LISTENING:
		return "listening";
	case VHOST_DEV_CONNECTED:
		for (unsigned i = 0; i < c->num_queues; i++) {
			if (c->vdev.vq[i].running)
				return "running";
		}
		return "connected";
	case VHOST_DEV_CLOSING:
		return "disconnecting";
	default:
		return "stopped";
	}
}

json_t *
nvl_vblk_to_json(struct nvl_vblk *c)
{
	json_t *o, *qs = json_array();
	uint64_t inflight = 0;

	for (unsigned i = 0; i < c->num_queues; i++) {
		struct vblk_qstats *s = &c->qstats[i];
		const struct vhost_vq_cfg *vq = &c->vdev.vq[i];
		struct vblk_queue *q = c->queues[i];
		const char *st = !vq->running ? "stopped" : vq->stopping ? "stopping" : "running";

		if (q && STAT_GET(s->broken) && vq->running)
			st = "broken";
		if (vq->running)
			inflight += STAT_GET(s->inflight);
		json_array_append_new(
			qs, json_pack("{s:i, s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
				      "s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
				      "index", (int)i, "state", st, "reactor",
				      q ? (int)nvl_reactor_id(q->reactor) : -1, "size",
				      (int)vq->num, "inflight",
				      (json_int_t)(vq->running ? STAT_GET(s->inflight) : 0),
				      "requests", (json_int_t)STAT_GET(s->requests), "read_ops",
				      (json_int_t)STAT_GET(s->reads), "write_ops",
				      (json_int_t)STAT_GET(s->writes), "flush_ops",
				      (json_int_t)STAT_GET(s->flushes), "discard_ops",
				      (json_int_t)STAT_GET(s->discards), "write_zeroes_ops",
				      (json_int_t)STAT_GET(s->write_zeroes), "get_id_ops",
				      (json_int_t)STAT_GET(s->get_id), "bytes_read",
				      (json_int_t)STAT_GET(s->bytes_read), "bytes_written",
				      (json_int_t)STAT_GET(s->bytes_written), "ioerr",
				      (json_int_t)STAT_GET(s->ioerr), "unsupp",
				      (json_int_t)STAT_GET(s->unsupp), "no_status",
				      (json_int_t)STAT_GET(s->no_status), "kicks",
				      (json_int_t)STAT_GET(s->kicks), "interrupts",
				      (json_int_t)STAT_GET(s->interrupts), "resubmitted",
				      (json_int_t)STAT_GET(s->resubmitted), "dirty_log_marks",
				      (json_int_t)STAT_GET(s->log_marks), "last_avail_idx",
				      (json_int_t)STAT_GET(s->last_avail), "used_idx",
				      (json_int_t)STAT_GET(s->used_idx)));
	}
	o = json_pack("{s:s, s:s, s:s, s:i, s:i, s:b, s:b, s:s, s:o}", "name", c->name, "bdev",
		      c->bdev_name, "socket", c->socket, "num_queues", (int)c->num_queues,
		      "queue_size", (int)c->queue_size, "read_only", c->read_only,
		      "force_in_order", c->force_in_order, "state", vblk_state_name(c), "queues",
		      qs);
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "inflight", json_integer((json_int_t)inflight));
	if (c->vdev.state == VHOST_DEV_CONNECTED) {
		json_object_set_new(o, "frontend",
				    json_pack("{s:i, s:s, s:I, s:I, s:I, s:b}", "pid",
					      (int)c->vdev.peer_pid, "comm", c->vdev.peer_comm,
					      "features", (json_int_t)c->vdev.features,
					      "protocol_features",
					      (json_int_t)c->vdev.protocol_features, "messages",
					      (json_int_t)c->vdev.msgs, "inflight_tracking",
					      vhost_dev_inflight_active(&c->vdev)));
	} else {
		json_object_set_new(o, "frontend", json_null());
	}
	{
		uint64_t first = __atomic_load_n(&c->first_io_ns, __ATOMIC_RELAXED);
		json_t *rec = json_pack("{s:I, s:I, s:I, s:I}", "connections",
					(json_int_t)c->vdev.connections, "last_resubmitted",
					(json_int_t)c->last_resubmitted, "total_resubmitted",
					(json_int_t)c->total_resubmitted, "recoveries",
					(json_int_t)c->recoveries);

		if (first && c->vdev.connect_ns) {
			json_object_set_new(rec, "create_to_first_io_us",
					    json_integer((json_int_t)((first - c->created_ns) /
								      1000)));
			json_object_set_new(rec, "connect_to_first_io_us",
					    json_integer((json_int_t)(first > c->vdev.connect_ns
						    ? (first - c->vdev.connect_ns) / 1000 : 0)));
		}
		json_object_set_new(o, "recovery", rec);
	}
	return o;
}

json_t *
nvl_vblk_config_call(struct nvl_vblk *c)
{
	json_t *call = json_pack("{s:s, s:{s:s, s:s, s:s, s:i, s:i, s:b, s:b}}", "method",
				 "virtio_blk_controller_create", "params", "name", c->name, "bdev",
				 c->bdev_name, "socket", c->socket, "num_queues",
				 (int)c->num_queues, "queue_size", (int)c->queue_size, "read_only",
				 c->read_only, "force_in_order", c->force_in_order);

	/* a suspended controller comes back suspended */
	if (call && c->vdev.suspended)
		json_object_set_new(json_object_get(call, "params"), "suspended", json_true());
	return call;
}
