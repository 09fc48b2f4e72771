/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-blk internals shared by vblk.c (controllers) and vblk_queue.c
 * (queues); the unit test and the vring fuzzer include both. Ownership and
 * threads: vblk.c.
 */
#ifndef NVL_FUNCTION_VBLK_INTERNAL_H
#define NVL_FUNCTION_VBLK_INTERNAL_H

#include "function/vblk.h"
#include "function/vhost_internal.h"
#include "bdev/bdev.h"
#include "nvlend/spec/virtio_blk.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#define VBLK_MAX_IOV 256
#define VBLK_SEG_MAX 126            /* data segments; region splits fit in VBLK_MAX_IOV */
#define VBLK_MAX_DWZ_SECTORS (1u << 21)   /* 1 GiB per discard / write-zeroes */
#define VBLK_POLL_BUDGET 64

#define STAT_ADD(x, v) __atomic_store_n(&(x), (x) + (v), __ATOMIC_RELAXED)
#define STAT_INC(x) STAT_ADD(x, 1)
#define STAT_GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

struct vblk_qstats {
	uint64_t requests;
	uint64_t reads;
	uint64_t writes;
	uint64_t flushes;
	uint64_t discards;
	uint64_t write_zeroes;
	uint64_t get_id;
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t ioerr;
	uint64_t unsupp;
	uint64_t no_status;
	uint64_t kicks;
	uint64_t interrupts;
	uint64_t resubmitted;
	uint64_t inflight;      /* gauge */
	uint64_t last_avail;    /* gauge */
	uint64_t used_idx;      /* gauge */
	uint64_t broken;        /* times the guest broke the ring */
	uint64_t log_marks;     /* writes into guest memory marked in a dirty log (migration) */
} __attribute__((aligned(64)));

enum vblk_qstate {
	VQ_STARTING = 0,
	VQ_RUNNING,
	VQ_DRAINING,
	VQ_STOPPED,
};

struct vblk_queue;
struct vblk_split;

struct vblk_req {
	struct nvl_bdev_io io;
	struct vblk_queue *q;
	uint16_t head;
	bool busy;            /* taken from the ring, not yet in the used ring */
	bool done;            /* finished, waiting for its turn (force_in_order) */
	uint8_t type;
	uint8_t *status;      /* in guest memory; NULL: the chain has no writable byte */
	uint32_t used_len;
	uint16_t wiov;        /* iov[wiov, wiov + nwiov): data we write (IN, GET_ID) */
	uint16_t nwiov;
	struct vblk_split *split;   /* larger than the bdev takes: several bdev I/Os */
	struct iovec iov[VBLK_MAX_IOV];
};

/* One bdev I/O of a split request. */
struct vblk_part {
	struct nvl_bdev_io io;
	struct vblk_req *r;
};

/* A read or write longer than the bdev's max_io_bytes, submitted as parts of
 * at most that size (allocated per request: only such requests pay for it). */
struct vblk_split {
	unsigned pending;          /* parts not completed, +1 while submitting */
	int status;                /* first failure */
	struct iovec *iov;         /* the parts' slices of the request's iovecs */
	struct vblk_part parts[];
};

struct vblk_queue {
	struct nvl_vblk *c;
	unsigned idx;
	struct nvl_reactor *reactor;
	enum vblk_qstate state;
	struct vring vr;
	int kickfd;
	int callfd;
	int logfd;                /* SET_LOG_FD eventfd while logging, or -1 */
	uint64_t log_signalled;   /* vr.logged when logfd was last signalled */
	uint64_t log_counted;     /* vr.logged already added to st->log_marks */
	struct nvl_fdh *kick_h;
	struct nvl_poller *poller;
	bool broken;
	bool in_poll;
	bool kick_armed;
	unsigned inflight;
	uint16_t *batch;
	uint16_t *order;          /* force_in_order: heads in the order taken */
	uint16_t order_head;
	uint16_t order_len;
	uint16_t *recover;
	int nrecover;
	struct vblk_qstats *st;
	struct vblk_req *reqs;
};

struct nvl_vblk {
	char name[NVL_VBLK_NAME_MAX];
	char bdev_name[NVL_BDEV_NAME_MAX];
	char socket[108];
	uint16_t num_queues;
	uint16_t queue_size;
	bool read_only;
	bool force_in_order;
	bool destroying;
	struct nvl_bdev_desc *desc;
	struct nvl_bdev *bdev;
	struct vhost_dev vdev;
	struct vblk_queue *queues[NVL_VBLK_MAX_QUEUES];
	struct vblk_qstats qstats[NVL_VBLK_MAX_QUEUES];
	/* recovery figures */
	uint64_t created_ns;
	uint64_t first_io_ns;          /* first completion since the last connection */
	uint64_t last_resubmitted;
	uint64_t total_resubmitted;
	uint64_t recoveries;           /* connections that found requests in flight */
	nvl_vblk_done_fn done;
	void *done_arg;
	nvl_vblk_done_fn suspend_done; /* a suspend waits for its queues */
	void *suspend_arg;
	TAILQ_ENTRY(nvl_vblk) link;
};

/* vblk.c */
uint64_t vblk_features(const struct nvl_vblk *c);

/* vblk_queue.c */
void vblk_q_free(struct vblk_queue *q);
void vblk_queue_set_call(struct vhost_dev *d, unsigned qi, int fd);
int vblk_queue_start(struct vhost_dev *d, unsigned qi, const struct vhost_queue_params *p);
void vblk_queue_stop(struct vhost_dev *d, unsigned qi);

#endif
