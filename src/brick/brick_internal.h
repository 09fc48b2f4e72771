/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Memory brick, daemon side (docs/brick.md). Visible only inside src/brick.
 *
 * Objects:
 *   struct brick          a named store of 2 MiB blocks: fast-tier directory,
 *                         optional slow-tier directory, block map, key table
 *   struct brick_block    one allocated logical block (addr -> tier, storage)
 *   struct brick_mem      one incarnation of a fast-tier block: its file and
 *                         the daemon's mapping; reference-counted so TCP I/O in
 *                         flight keeps it valid across a revocation
 *   struct brick_handle   a map: unguessable key, flags, owner session
 *   struct brick_session  who owns handles: a connection or a brick bdev
 *
 * Threading: every brick, its blocks, handles, sessions, listeners and
 * connections live on reactor 0 (the RPC reactor). The local data path (the
 * client's mmap of a block file) involves no daemon thread at all.
 *
 * On-disk layout of a tier directory (docs/brick.md, "Block map"):
 *   .nvlend-brick       marker + flock(LOCK_EX) against a second daemon
 *   blk-<16 hex digits> one 2 MiB file per allocated block, named by address
 *   .tmp-<16 hex>       a block being created/copied (deleted by recovery)
 * A block exists iff its blk- file exists in one tier; files appear only by
 * rename() after their data (and, on durable tiers, an fsync) is complete,
 * so the directory itself is the crash-consistent block map.
 *
 * On-disk layout of a slow-tier file or block device (slow_file; slotfile.c,
 * docs/brick.md "Slow file"), little endian:
 *   [0, 4096)           header: magic "NVLBSLF1", version 1, header size,
 *                       block size, slot count, record size, table offset,
 *                       data offset, format id (random), crc32c of bytes 0..63
 *   [4096, +512*slots)  one 512-byte record per slot, each written by one
 *                       aligned pwrite: magic, flags (valid), slot index, addr,
 *                       generation, format id, crc32c of bytes 0..39
 *   [data_off, ...)     2 MiB slots; data_off = the table's end rounded up to 2 MiB
 * A slow block exists iff its slot's record is valid (checksum, slot index
 * and format id match, valid flag set); data is synced before its record.
 */
#ifndef NVL_BRICK_INTERNAL_H
#define NVL_BRICK_INTERNAL_H

#include "brick/client_rdma.h"
#include "brick/htab.h"
#include "proto/brick.h"
#include "nvlend/spec/brick.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/queue.h>
#include <sys/uio.h>

#define BRICK_BLOCK_SIZE ((uint64_t)NVL_BRICK_BLOCK_SIZE)
#define BRICK_MAX_BLOCKS (1ULL << 24)   /* 32 TiB per brick: bounds the tables */
#define BRICK_MAX_LISTENERS 8

enum brick_tier_id {
	BRICK_TIER_FAST = 0,
	BRICK_TIER_SLOW = 1,
};

struct brick_tier {
	char *path;
	int dfd;                  /* O_DIRECTORY, -1 = no such tier */
	int lock_fd;
	enum nvl_brick_persistence kind;
	const char *fs;           /* "tmpfs", "tmpfs-huge", "hugetlbfs", "dax", "file" */
	bool huge;                /* 2 MiB pages: one page per block */
};

#define BRICK_SF_MAGIC 0x31464c53424c564eULL /* "NVLBSLF1" stored little endian */
#define BRICK_SF_VERSION 1
#define BRICK_SF_HDR_SIZE 4096u
#define BRICK_SF_REC_SIZE 512u
#define BRICK_SF_REC_MAGIC 0x52534c4eu /* "NLSR" */
#define BRICK_SF_REC_VALID 1u

struct brick_block;

struct brick_sf_hdr {
	uint64_t nslots;
	uint64_t data_off;
	uint64_t id;              /* format id: records of an older format are garbage */
};

struct brick_sf_rec {
	uint64_t addr;
	uint64_t gen;             /* higher = written later (duplicates: it wins) */
	bool valid;
};

struct brick_slotfile {
	char *path;
	int fd;                   /* -1 = no slow file */
	uint64_t id, nslots, data_off;
	uint64_t next_gen;
	struct brick_block **slot_blk; /* slot -> its slow block, NULL = free */
	uint32_t *free;           /* stack of free slots (lowest on top) */
	uint64_t nfree;
	uint8_t *buf;             /* 2 MiB bounce buffer for tier moves */
};

struct brick_mem {
	int fd;
	uint8_t *va;              /* daemon's MAP_SHARED mapping, pre-faulted */
	unsigned refs;
	bool exported;            /* an fd of this inode went to a local client */
};

struct brick_handle;

#define BRICK_ID_HASH_SIZE 32            /* SHA-256 of a client's identity secret */
#define BRICK_UID_NONE 0xffffffffu       /* no uid: not a local client */
#define BRICK_ACL_UID_OWNS (1u << 0)     /* a local client of acl.uid owns the block */
#define BRICK_ACL_SIZE 256u              /* acl-ADDR record (acl.c) */

/** Who sends requests (a connection: server.c fills it from HELLO and the
 *  socket). NULL where a principal is asked for: the daemon itself. */
struct brick_principal {
	bool has_id;                          /* false: anonymous (keys only) */
	uint8_t id_hash[BRICK_ID_HASH_SIZE];
	bool local;                           /* shm: uid is the kernel's (SO_PEERCRED) */
	uint32_t uid;
	char name[NVL_BRICK_CLIENT_MAX + 1];  /* declared: a label, proves nothing */
};

/** A block's owner and key (acl.c), kept in acl-ADDR of the fast tier dir. */
struct brick_acl {
	uint8_t key[NVL_BRICK_KEY_SIZE];
	bool has_id;                          /* the owner is an identity (id_hash) */
	uint8_t id_hash[BRICK_ID_HASH_SIZE];
	uint32_t uid;                         /* allocator's uid (local), else BRICK_UID_NONE */
	uint32_t flags;                       /* BRICK_ACL_* */
	char name[NVL_BRICK_CLIENT_MAX + 1];  /* allocator's declared name */
};

struct brick_block {
	struct brick_acl acl;
	bool acl_ok;              /* recovery: its record was found */
	uint64_t addr;
	enum brick_tier_id tier;
	struct brick_mem *mem;    /* FAST only */
	uint64_t slot;            /* SLOW in a slow file: its slot */
	unsigned nhandles;
	unsigned nrw;             /* read-write handles */
	bool exclusive;
	bool maybe_dirty;         /* written through some handle since flush_all */
	TAILQ_ENTRY(brick_block) lru;     /* FAST and unmapped: eviction order */
	TAILQ_HEAD(, brick_handle) handles;
};

struct brick_session;

struct brick_handle {
	uint64_t key;
	uint32_t flags;           /* NVL_BRICK_MAP_* */
	struct brick_block *blk;
	struct brick_session *sess;
	/** Set by a transport that exported the block (RDMA: a memory region);
	 *  called when the handle goes, before anything else (rdma.c). */
	void (*unexport)(struct brick_handle *h);
	void *xp;                 /* the transport's export (RDMA: struct brick_rdma_mr) */
	TAILQ_ENTRY(brick_handle) blk_link;
	TAILQ_ENTRY(brick_handle) sess_link;
};

struct brick;

struct brick_session {
	struct brick *b;
	TAILQ_HEAD(, brick_handle) handles;
	TAILQ_ENTRY(brick_session) link;
	/** Called when the brick is deleted under the session (connections close). */
	void (*kill)(struct brick_session *s);
};

struct brick_stats {
	uint64_t allocs, frees, maps, unmaps;
	uint64_t flushes, bytes_flushed;
	uint64_t evictions, fetches, revocations;
	uint64_t bytes_read, bytes_written;   /* READ/WRITE messages */
	uint64_t denied;          /* requests refused by block ownership (EACCES) */
};

struct brick_listener;
struct brick_pool;

struct brick {
	char name[NVL_BRICK_NAME_MAX + 1];
	struct brick_tier fast, slow;
	struct brick_slotfile sf; /* slow tier in a file (then slow.dfd = -1) */
	struct brick_pool *pool;  /* fast tier's free store (pool.c) */
	uint64_t capacity;        /* blocks */
	uint64_t fast_budget;     /* blocks resident in the fast tier at most */
	struct brick_htab blocks; /* addr -> brick_block */
	struct brick_htab keys;   /* key -> brick_handle */
	uint64_t nfast, nslow, nmapped;
	TAILQ_HEAD(, brick_block) lru;
	TAILQ_HEAD(, brick_session) sessions;
	struct brick_stats st;
	unsigned refs;            /* registry + brick bdevs + in-flight flushes */
	unsigned users;           /* brick bdevs: brick_delete refuses while > 0 */
	bool deleted;
	struct brick_listener *listeners[BRICK_MAX_LISTENERS];
	unsigned nlisteners;
	TAILQ_ENTRY(brick) link;
};

struct brick_opts {
	const char *name;
	const char *fast_dir;
	const char *slow_dir;     /* NULL: no slow tier (capacity <= fast budget) */
	const char *slow_file;    /* instead of slow_dir: a file or block device of slots */
	uint64_t capacity_blocks;
	uint64_t fast_blocks;     /* 0 = capacity */
};

typedef void (*brick_done_fn)(void *arg, int rc);

/* ---- store.c ---- */
/** Open (and recover) a brick on its tier directories (or slow file).
 *  \return 0, -EINVAL (options, a slow_file of another format), -ENOSPC (more
 *  blocks on disk than capacity), -ERANGE (slow_file has fewer slots than
 *  capacity - fast budget + 1), -EBUSY (another daemon holds the directories
 *  or the file), -errno (file system). */
int brick_create(const struct brick_opts *o, struct brick **out);
/** Revoke everything and drop the registry's reference (files stay on disk). */
void brick_close(struct brick *b);
void brick_get(struct brick *b);
void brick_put(struct brick *b);
struct brick *brick_find(const char *name);
struct brick *brick_first(void);
struct brick *brick_next(struct brick *b);
/** Remove every block file (purge on brick_delete). \return 0 or -errno. */
int brick_purge_files(const struct brick_opts *o);

/** Allocate the block at addr, owned by p (NULL: the daemon itself); its new
 *  key goes to key_out (may be NULL).
 *  \return 0, -EINVAL, -EEXIST, -ENOSPC, -ENOMEM, -EIO, -errno (ACL file). */
int brick_alloc(struct brick *b, uint64_t addr, const struct brick_principal *p,
		uint8_t *key_out);
/** The block at addr, if the principal may use it (owner, or key matches).
 *  \return 0 (*out set), -ENOENT (no such block), -EACCES (counted). */
int brick_block_access(struct brick *b, uint64_t addr, const struct brick_principal *p,
		       const uint8_t *key, struct brick_block **out);
int brick_free(struct brick *b, uint64_t addr);
/** \return 0, -EINVAL (alignment/flags), -ENOENT, -EBUSY (exclusive conflict),
 *  -ENOMEM (fast tier full of mapped blocks), -EIO. */
int brick_map(struct brick *b, struct brick_session *s, uint64_t addr, uint32_t flags,
	      struct brick_handle **out);
/** Revoke the session's handles to addr. \return 0, -EINVAL, -ENOENT, -ENXIO. */
int brick_unmap(struct brick *b, struct brick_session *s, uint64_t addr);
/** Revoke one handle. */
void brick_handle_revoke(struct brick *b, struct brick_handle *h);
/** Look a key up; NULL if unknown/revoked. */
struct brick_handle *brick_key_lookup(struct brick *b, uint64_t key);
/** Extents from address `start` on. \return number filled (more/next for paging) or -ENOMEM. */
int brick_list(struct brick *b, uint64_t start, struct nvl_brick_extent *ext, uint32_t max,
		    bool *more, uint64_t *next);
/** brick_list of the blocks p owns (p NULL: every block). */
int brick_list_owned(struct brick *b, const struct brick_principal *p, uint64_t start,
		     struct nvl_brick_extent *ext, uint32_t max, bool *more, uint64_t *next);
/** Extent state of a block (NVL_BRICK_EXT_*). */
uint32_t brick_blk_state(const struct brick_block *blk);
/** Make [off, off+len) of the handle's block durable; cb runs exactly once (maybe inline). */
void brick_flush(struct brick *b, struct brick_handle *h, uint64_t off, uint64_t len,
		 brick_done_fn cb, void *arg);
/** Make every block written since the last flush_all durable; cb exactly once. */
void brick_flush_all(struct brick *b, brick_done_fn cb, void *arg);
void brick_info(struct brick *b, struct nvl_brick_info_wire *info);
/** A fast block whose file a local client truncated (it holds a read-write fd):
 *  grow the file back to 2 MiB, the lost part reads as zeroes.
 *  The caller logs (rate-limited: it is found on the I/O path).
 *  \return 1 restored, 0 it had its size, -errno from fstat/ftruncate. */
int brick_block_restore(struct brick *b, struct brick_block *blk);
/** Open an O_RDONLY fd of a fast block (read-only maps over SHM). \return fd or -errno. */
int brick_block_open_ro(struct brick *b, struct brick_block *blk);

void brick_session_init(struct brick_session *s, struct brick *b);
/** Revoke all handles of the session and detach it. */
void brick_session_fini(struct brick_session *s);

/** What the store tells those above it (the network server) about a brick's
 *  life, so that it never calls up into them. Reactor 0. */
struct brick_events {
	/** the brick is being closed (brick_delete, or the daemon stops): its
	 *  sessions are gone already; drop whatever else refers to it */
	void (*closing)(struct brick *b, void *arg);
	void *arg;
	TAILQ_ENTRY(brick_events) link;
};
/** Hear about every brick from now on (ev stays the caller's; subscribed once). */
void brick_events_subscribe(struct brick_events *ev);
void brick_events_unsubscribe(struct brick_events *ev);

static inline void
brick_mem_get(struct brick_mem *m)
{
	m->refs++;
}
void brick_mem_put(struct brick_mem *m);

/* ---- inside the store (store.c, store_tier.c, store_recover.c) ---- */
#define BRICK_MARKER ".nvlend-brick"

static inline void
brick_blk_name(char *buf, size_t len, const char *prefix, uint64_t addr)
{
	snprintf(buf, len, "%s%016" PRIx64, prefix, addr);
}

static inline bool
brick_tier_durable(const struct brick_tier *t)
{
	return t->kind != NVL_BRICK_PERSIST_VOLATILE;
}

static inline bool
brick_has_slow(const struct brick *b)
{
	return b->slow.dfd >= 0 || b->sf.fd >= 0;
}

/* store.c */
struct brick_block *brick_blk_new(struct brick *b, uint64_t addr, enum brick_tier_id tier, struct brick_mem *mem);
int brick_mem_create(struct brick *b, int fd, struct brick_mem **out);

/* store_tier.c */
int brick_blk_evict(struct brick *b, struct brick_block *blk);
int brick_blk_fetch(struct brick *b, struct brick_block *blk);
void brick_blk_swap_inode(struct brick *b, struct brick_block *blk);
int brick_fast_make_room(struct brick *b);
int brick_sf_alloc_block(struct brick *b, uint64_t addr);
void brick_tier_close(struct brick_tier *t);
int brick_tier_make_block(struct brick_tier *t, struct brick_pool *pool, uint64_t addr, int src_fd,
		const uint8_t *src_buf, int *out_fd);
int brick_tier_open(struct brick_tier *t, const char *path, const char *role);
int brick_tier_remove_block(struct brick_tier *t, uint64_t addr, bool sync);

/* store_recover.c */
int brick_recover(struct brick *b);
bool brick_parse_blk_name(const char *n, uint64_t *addr);

/* ---- acl.c: block ownership ---- */
/** Set p's identity from its secret (stores the hash). \return 0, -EIO. */
int brick_principal_set_id(struct brick_principal *p, const uint8_t secret[NVL_BRICK_ID_SIZE]);
/** A new ACL owned by p (NULL: the daemon) with a fresh random key. \return 0 or -errno. */
int brick_acl_init(struct brick_acl *a, const struct brick_principal *p);
/** A fresh key owned by local root (recovered blocks without a record). */
int brick_acl_init_root(struct brick_acl *a);
/** Is p the owner? (constant-time comparison of identities) */
bool brick_acl_owner(const struct brick_acl *a, const struct brick_principal *p);
/** Owner, or key (may be NULL) equal to the block's (constant time).
 *  \return 0 or -EACCES (counted in st.denied). */
int brick_acl_check(struct brick *b, const struct brick_block *blk,
		    const struct brick_principal *p, const uint8_t *key);
void brick_acl_encode(const struct brick_acl *a, uint64_t addr, uint8_t *buf);
/** \return 0, -EINVAL (size, magic, checksum, another address, fields). */
int brick_acl_decode(const uint8_t *buf, size_t len, uint64_t addr, struct brick_acl *a);
/** Write acl-ADDR atomically (durable tiers: synced with the directory). \return 0/-errno. */
int brick_acl_store(struct brick *b, uint64_t addr, const struct brick_acl *a);
void brick_acl_remove(struct brick *b, uint64_t addr);
/** After the block map is rebuilt: load every record, drop orphans, give
 *  blocks without one a fresh root-owned key. \return 0 or -errno. */
int brick_acl_recover(struct brick *b);

/* ---- slotfile.c: the slow file's format and raw I/O ---- */
uint64_t brick_sf_data_off(uint64_t nslots);
/** Slots a file of `size` bytes holds (0: too small), at most BRICK_MAX_BLOCKS. */
uint64_t brick_sf_slots_for_size(uint64_t size);
void brick_sf_hdr_encode(const struct brick_sf_hdr *h, uint8_t *buf);
/** \return 0, -ENOENT (all zero: unformatted), -EINVAL (another format or damaged). */
int brick_sf_hdr_decode(const uint8_t *buf, struct brick_sf_hdr *h);
void brick_sf_rec_encode(const struct brick_sf_rec *r, uint64_t id, uint64_t slot, uint8_t *buf);
/** false: garbage (bad magic/checksum, other slot or format); r->valid: a live block. */
bool brick_sf_rec_decode(const uint8_t *buf, uint64_t id, uint64_t slot, struct brick_sf_rec *r);
/** Open, lock, read or format. \return 0, -EBUSY, -EINVAL, -ERANGE (too small), -errno. */
int brick_sf_open(struct brick_slotfile *sf, const char *path);
void brick_sf_close(struct brick_slotfile *sf);
/** Write slot's record (next generation); no sync. */
int brick_sf_rec_write(struct brick_slotfile *sf, uint64_t slot, uint64_t addr, bool valid);
int brick_sf_rec_read(struct brick_slotfile *sf, uint64_t slot, struct brick_sf_rec *r);
/** Read or write a slot's 2 MiB. */
int brick_sf_data_io(struct brick_slotfile *sf, uint64_t slot, void *buf, bool wr);
int brick_sf_sync(struct brick_slotfile *sf);
/** Forget every block of the file (zero its header). \return 0 or -errno. */
int brick_sf_purge(const char *path);

/* ---- pool.c: pre-faulted spare block files of the fast tier ---- */
#define BRICK_POOL_SPARES 4
int brick_pool_start(int dfd, bool durable, unsigned target, struct brick_pool **out);
void brick_pool_stop(struct brick_pool *p);
/** A ready spare (zeroed, 2 MiB, named brick_pool_name(id)). \return 0 or -EAGAIN. */
int brick_pool_take(struct brick_pool *p, int *fd, uint64_t *id);
/** Hand back a freed block file already renamed to brick_pool_name(id); takes fd. */
void brick_pool_give(struct brick_pool *p, int fd, uint64_t id);
uint64_t brick_pool_new_id(struct brick_pool *p);
void brick_pool_name(uint64_t id, char *buf, size_t len);
void brick_pool_stats(struct brick_pool *p, unsigned *ready, uint64_t *made, uint64_t *recycled);

/* ---- server.c ---- */
struct brick_conn;

/** Transport operations: one table per transport ("SHM", "TCP", "RDMA"). */
struct brick_transport_ops {
	const char *name;
	bool passes_fds;          /**< map responses carry the block fd (one-sided mmap) */
	/** no listening socket: listen() sets l->fd = -1 and the transport
	 *  accepts by itself (RDMA: CM events); no fd store, no acceptor */
	bool own_accept;
	/** required: bind + listen on l->traddr/l->trsvcid; set l->fd. \return 0/-errno */
	int (*listen)(struct brick_listener *l);
	/** required: unbind (close fd, unlink socket file). */
	void (*stop)(struct brick_listener *l);
	/** optional: tune an accepted socket (TCP_NODELAY...). */
	void (*accepted)(int fd);
};

struct brick_listener {
	const struct brick_transport_ops *ops;
	char trtype[8];
	char traddr[256];
	char trsvcid[32];
	int fd;
	struct nvl_acceptor *acceptor;
	void *priv;               /* own_accept transports: their listener (RDMA: CM id) */
	unsigned refs;            /* bricks served */
	unsigned nconns;
	TAILQ_ENTRY(brick_listener) link;
};

#define BRICK_MAX_CONNS_PER_LISTENER 256

int brick_listener_add(struct brick *b, const char *trtype, const char *traddr,
		       const char *trsvcid);
int brick_listener_remove(struct brick *b, const char *trtype, const char *traddr,
			  const char *trsvcid);
const struct brick_transport_ops *brick_transport_find(const char *trtype);
unsigned brick_conn_count(struct brick *b);

/* Connection core, also driven directly by the fuzz target. */
struct brick_conn_io {
	/** Receive up to len bytes: >0 bytes, 0 EOF, -EAGAIN, -errno. */
	long (*recv)(void *ctx, void *buf, size_t len);
	/** Send iov (+ fd if >= 0): bytes sent, -EAGAIN, -errno. */
	long (*sendv)(void *ctx, const struct iovec *iov, int iovcnt, int fd);
	void *ctx;
	bool passes_fds;
	/** optional (RDMA): export a newly mapped block to the peer's NIC; fills
	 *  `out` (NVL_BRICK_RDMA_HANDLE_SIZE bytes) and sets h->unexport.
	 *  \return 0 or -errno (the map is then refused). */
	int (*map_export)(void *ctx, struct brick_handle *h, uint8_t *out);
	/** optional: the connection core closed the connection (brick_conn_destroy) */
	void (*closed)(void *ctx);
};
struct brick_conn *brick_conn_create(const struct brick_conn_io *io, struct brick_listener *l);
/** Run the connection until it would block. \return 0, or <0 when it must be closed. */
int brick_conn_process(struct brick_conn *c);
void brick_conn_destroy(struct brick_conn *c);

#ifdef NVL_FUZZING
extern uint64_t brick_fuzz_next_key; /* fuzz builds: keys are 1, 2, ... from here */
#endif

extern const struct brick_transport_ops brick_transport_shm;
extern const struct brick_transport_ops brick_transport_tcp;
extern const struct brick_transport_ops brick_transport_rdma;

#endif
