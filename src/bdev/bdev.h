/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Block devices (bdevs) behind one ops table (DESIGN.md section 3).
 *
 * Threading: bdevs are created, opened, closed and deleted on reactor 0 (the
 * RPC thread). I/O may be submitted from any reactor; a backend serves it on
 * the submitting reactor (its io_uring, its memory) and completes it there.
 * Nothing on the I/O path takes a lock: statistics are kept per reactor.
 *
 * I/O contract: offsets and lengths are in bytes and must be multiples of the
 * block size and inside the device; the core checks that and fails the
 * submission with -EINVAL before the backend sees it. nvl_bdev_submit()
 * returning 0 means io->cb runs exactly once (possibly before submit
 * returns, from inside it: backends such as ram complete inline); a negative
 * return means it never runs.
 *
 * Block status (nvl_bdev_block_status): which parts of a range are allocated
 * and which read as zeroes, for NBD's base:allocation and sparse copies. It
 * is a rare query beside the I/O path, never in it: no read or write waits
 * for it. It follows the I/O rules: submitted on any reactor, answered on
 * that reactor, exactly once if the call returned 0; a backend may hop to
 * its owner reactor and back (brick) or answer inline (ram, file).
 */
#ifndef NVL_BDEV_H
#define NVL_BDEV_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include "reactor/reactor.h"
#include "util/histogram.h"

#define NVL_BDEV_NAME_MAX 64

enum nvl_bdev_io_type {
	NVL_BDEV_IO_READ = 0,
	NVL_BDEV_IO_WRITE,
	NVL_BDEV_IO_FLUSH,
	NVL_BDEV_IO_WRITE_ZEROES,
	NVL_BDEV_IO_UNMAP,          /**< discard / deallocate (punch hole on files) */
	NVL_BDEV_IO_NTYPES
};

/* io->flags */
#define NVL_BDEV_IO_FUA      (1u << 0)  /**< write reaches stable storage before completion */
#define NVL_BDEV_IO_NO_HOLE  (1u << 1)  /**< write-zeroes must keep the range allocated */
/** write-zeroes: fail with -ENOTSUP at once rather than fall back to writing zero
 *  buffers (NBD's FAST_ZERO). The core refuses it for backends without fast_zero. */
#define NVL_BDEV_IO_FAST_ZERO (1u << 2)

struct nvl_bdev;
struct nvl_bdev_io;
struct nvl_bdev_bstat;

typedef void (*nvl_bdev_io_cb)(struct nvl_bdev_io *io, int status);

/** One I/O. Caller-owned storage (embed it in your request); zero it once. */
struct nvl_bdev_io {
	/* filled by the caller */
	uint8_t type;             /**< enum nvl_bdev_io_type */
	uint32_t flags;
	uint64_t offset;          /**< bytes */
	uint64_t length;          /**< bytes; for READ/WRITE the sum of iov lengths */
	struct iovec *iov;
	int iovcnt;
	nvl_bdev_io_cb cb;
	void *cb_arg;

	/* private to the bdev layer and backend */
	struct nvl_bdev *bdev;
	uint64_t start_ns;
	unsigned reactor;
	struct nvl_uring_op uop;
	void *bounce;
	uint64_t priv[4];
};

/* Block status extent flags (the same meaning as NBD's base:allocation). */
#define NVL_BDEV_EXT_HOLE (1u << 0)  /**< not allocated in the backing store */
#define NVL_BDEV_EXT_ZERO (1u << 1)  /**< reads as zeroes */

/** One extent of a block status answer. */
struct nvl_bdev_extent {
	uint64_t length;          /**< bytes, a nonzero multiple of the block size */
	uint32_t flags;           /**< NVL_BDEV_EXT_* (0: allocated data, or not known) */
};

typedef void (*nvl_bdev_bstat_cb)(struct nvl_bdev_bstat *q, int status);

/**
 * One block status query. Caller-owned storage, like struct nvl_bdev_io. On
 * success ext[0..next) describe consecutive extents from `offset`, at least
 * one, their lengths adding up to at most `length` (a backend may stop early:
 * the caller asks again from where the answer ended), adjacent extents with
 * different flags.
 */
struct nvl_bdev_bstat {
	/* filled by the caller */
	uint64_t offset;          /**< bytes, block aligned */
	uint64_t length;          /**< bytes, block aligned, nonzero */
	struct nvl_bdev_extent *ext;
	unsigned max_ext;         /**< room in ext, >= 1 */
	nvl_bdev_bstat_cb cb;
	void *cb_arg;

	/* the answer */
	unsigned next;            /**< extents filled */

	/* private to the bdev layer and backend */
	struct nvl_bdev *bdev;
	unsigned reactor;
	uint64_t priv[2];
};

/** Backend operations. */
struct nvl_bdev_ops {
	const char *name;   /**< backend type, shown in bdev_get_bdevs */
	/** required: start the I/O; 0 => call nvl_bdev_io_complete() exactly once. */
	int (*submit)(struct nvl_bdev *b, struct nvl_bdev_io *io);
	/** required: free backend resources (no I/O in flight, no opener left). */
	void (*destroy)(struct nvl_bdev *b);
	/** optional: add backend details to the "driver_specific" object. */
	void (*dump_info)(struct nvl_bdev *b, json_t *driver_specific);
	/** optional: the RPC call that recreates this bdev, {"method":..,"params":..}. */
	json_t *(*write_config)(struct nvl_bdev *b);
	/**
	 * optional: block status of q's range (the core checked it). 0 => call
	 * nvl_bdev_bstat_complete() exactly once, on the submitting reactor (inline
	 * is fine); <0 => never. Fill q->ext with nvl_bdev_bstat_add(). Without it
	 * every range reports allocated data (flags 0), as nbdkit does.
	 */
	int (*block_status)(struct nvl_bdev *b, struct nvl_bdev_bstat *q);
};

struct nvl_bdev_stats {
	uint64_t ops[NVL_BDEV_IO_NTYPES];
	uint64_t bytes[NVL_BDEV_IO_NTYPES];
	uint64_t errors;
	uint64_t inflight;
	uint64_t lat_ns[NVL_BDEV_IO_NTYPES];
	uint64_t lat_max_ns[NVL_BDEV_IO_NTYPES];
	struct nvl_histogram hist_read;
	struct nvl_histogram hist_write;
} __attribute__((aligned(64)));

struct nvl_bdev {
	char name[NVL_BDEV_NAME_MAX];
	const char *product_name;
	const struct nvl_bdev_ops *ops;
	uint32_t block_size;
	uint64_t num_blocks;
	uint8_t uuid[16];
	uint32_t io_types;           /**< bitmask of 1u << enum nvl_bdev_io_type supported */
	bool write_cache;            /**< volatile cache: flush needed for durability */
	bool read_only;
	bool fast_zero;              /**< honours NVL_BDEV_IO_FAST_ZERO (cheap write-zeroes) */
	uint32_t max_io_bytes;       /**< largest single I/O the backend takes (0 = no limit) */
	int open_count;
	int open_writers;
	char claimed_by[64];         /**< who uses it, for error messages */
	struct nvl_bdev_stats *stats; /**< one per reactor */
	unsigned nstats;
	TAILQ_ENTRY(nvl_bdev) link;
	/** set by nvl_bdev_set_exclusive(): who holds it; every further open fails */
	char exclusive_by[96];
	/** made and rebuilt by a service (lend) from its own records: not in save_config */
	bool no_config;
};

/** An open handle. */
struct nvl_bdev_desc {
	struct nvl_bdev *bdev;
	bool writable;
};

/** Register a backend-created bdev (name must be unique). Fills uuid if all-zero,
 *  allocates stats. \return 0, -EEXIST, -EINVAL (bad geometry), -ENOMEM. */
int nvl_bdev_register(struct nvl_bdev *b);
/** Unregister and destroy. \return 0 or -EBUSY if open (b->claimed_by names the user). */
int nvl_bdev_unregister(struct nvl_bdev *b);

struct nvl_bdev *nvl_bdev_get_by_name(const char *name);

/** Asked of providers of bdevs that will appear later (an imported controller
 *  waiting for its target): true if it will bring a bdev of that name. */
typedef bool (*nvl_bdev_pending_fn)(const char *name);
/** reactor 0: add a provider (registering one twice keeps one). \return 0 or
 *  -ENOSPC (more than a few providers). */
int nvl_bdev_pending_register(nvl_bdev_pending_fn fn);
/** reactor 0: true if no bdev has that name yet but a provider will bring one
 *  (the daemon's configuration waits for it instead of failing). */
bool nvl_bdev_pending(const char *name);
struct nvl_bdev *nvl_bdev_first(void);
struct nvl_bdev *nvl_bdev_next(struct nvl_bdev *b);

/** Open for I/O; `who` is recorded for "in use by" messages.
 *  \return 0, -ENOENT (no such bdev), -EROFS (writable open of a read-only bdev). */
int nvl_bdev_open(const char *name, bool writable, const char *who, struct nvl_bdev_desc **out);
void nvl_bdev_close(struct nvl_bdev_desc *d);

/**
 * Keep b for its current openers: from now on nvl_bdev_open() of b fails
 * with -EBUSY (claimed_by names `who`) until nvl_bdev_clear_exclusive().
 * Device lending uses it so nothing local takes a lent bdev.
 * \return 0, -EBUSY (already held exclusively by someone).
 */
int nvl_bdev_set_exclusive(struct nvl_bdev *b, const char *who);
void nvl_bdev_clear_exclusive(struct nvl_bdev *b);

/** Submit. \return 0 (callback will run), -EINVAL (range/alignment/iov mismatch),
 *  -EBADF (write on a read-only descriptor), -ENOTSUP (type not supported),
 *  or a backend's -errno. */
int nvl_bdev_submit(struct nvl_bdev_desc *d, struct nvl_bdev_io *io);

/** For backends: finish an I/O (status 0 or -errno). */
void nvl_bdev_io_complete(struct nvl_bdev_io *io, int status);

/**
 * Ask which parts of [q->offset, q->offset + q->length) are holes or read as
 * zeroes (see struct nvl_bdev_bstat). Any reactor; q->cb runs on it.
 * \return 0 (the callback will run, maybe before this returns), -EINVAL
 *         (range not block aligned, empty, beyond the end, or max_ext 0 or no
 *         ext), or a backend's -errno (-ENOMEM, -ENODEV).
 */
int nvl_bdev_block_status(struct nvl_bdev_desc *d, struct nvl_bdev_bstat *q);
/**
 * For backends: append `len` bytes of `flags` to q's answer, merged into the
 * last extent when the flags are equal. \return false when the extent did not
 * fit (q->max_ext reached: the backend stops there).
 */
bool nvl_bdev_bstat_add(struct nvl_bdev_bstat *q, uint64_t len, uint32_t flags);
/** For backends: finish a block status query (status 0 or -errno). */
void nvl_bdev_bstat_complete(struct nvl_bdev_bstat *q, int status);

/** Sum of I/Os in flight on all reactors (racy snapshot). */
uint64_t nvl_bdev_inflight(const struct nvl_bdev *b);
/** Merge all reactors' stats into out. */
void nvl_bdev_get_stats(const struct nvl_bdev *b, struct nvl_bdev_stats *out);
/** JSON description as in bdev_get_bdevs. */
json_t *nvl_bdev_to_json(struct nvl_bdev *b);
/** Format uuid as text (37 bytes). */
void nvl_uuid_fmt(const uint8_t uuid[16], char *out);
/** Parse uuid text. \return 0 or -EINVAL. */
int nvl_uuid_parse(const char *s, uint8_t uuid[16]);
/** Append each bdev's recreate-call to array (save_config). */
void nvl_bdev_write_config(json_t *array);
/** Destroy all bdevs (shutdown; in-use ones too, after their users stopped). */
void nvl_bdev_fini(void);

/* Backends' constructors (also used by tests). */
struct nvl_bdev_ram_opts {
	const char *name;
	uint64_t num_blocks;
	uint32_t block_size;
	const uint8_t *uuid;     /**< NULL = random */
};
int nvl_bdev_ram_create(const struct nvl_bdev_ram_opts *o, struct nvl_bdev **out);

struct nvl_bdev_file_opts {
	const char *name;
	const char *filename;
	uint32_t block_size;     /**< 0 = the device's/file system's natural size, min 512 */
	bool read_only;
	bool shared;             /**< another bdev of this daemon may serve the same file
				      if it is shared too (else -EBUSY) */
	const uint8_t *uuid;
	const char *rpc_method;  /**< "bdev_uring_create" or "bdev_aio_create" (save_config) */
	/** NVL_BDEV_FILE_AUTO: O_DIRECT where possible, inline on tmpfs;
	 *  _URING: always through io_uring; _BUFFERED: no O_DIRECT, through io_uring. */
	int io_mode;
};
#define NVL_BDEV_FILE_AUTO 0
#define NVL_BDEV_FILE_URING 1
#define NVL_BDEV_FILE_BUFFERED 2
int nvl_bdev_file_create(const struct nvl_bdev_file_opts *o, struct nvl_bdev **out);

#endif
