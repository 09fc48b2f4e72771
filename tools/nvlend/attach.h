/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `nvlend attach`: give this host a block device for a namespace. Shared by
 * cmd_attach.c (CLI, attach process lifecycle) and the mechanisms
 * (attach_fuse.c, attach_nbd.c, attach_ublk.c, attach_kernel.c) and the
 * records (attach_record.c).
 *
 * An attach process (every mechanism but the kernel initiator) owns one
 * host_session and the mechanism's threads; its main thread handles signals
 * (SIGTERM: detach; SIGUSR1: forced detach) and keeps the record current.
 * Mechanism threads run with every signal blocked.
 */
#ifndef NVL_ATTACH_H
#define NVL_ATTACH_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "host/session.h"

#define ATTACH_NAME_MAX 32
#define ATTACH_DEV_MAX 64
#define ATTACH_URI_MAX 1024
#define ATTACH_MAX_QUEUES 32
#define ATTACH_MAX_QD 1024

struct attach_opts {
	const char *uri;
	char name[ATTACH_NAME_MAX];
	const char *via;              /* auto | kernel | ublk | nbd | fuse */
	const char *hostnqn;
	uint32_t nsid;
	bool readonly;
	bool foreground;
	uint32_t queues;
	uint32_t qd;
	uint32_t reconnect_timeout_s;
	uint32_t spin_us;             /* queue pairs spin this long before sleeping (0: default) */
	bool all;                     /* --all: every namespace the target offers this host */
};

/** One attachment as recorded in the state dir (NAME.json). */
struct attach_record {
	char name[ATTACH_NAME_MAX];
	char device[ATTACH_DEV_MAX];  /* /dev/loop3, /dev/nbd0, /dev/ublkb0, /dev/nvme0n1 */
	char uri[ATTACH_URI_MAX];
	char mechanism[16];
	pid_t pid;                    /* attach process; 0 for the kernel initiator */
	char state[32];               /* attaching attached reconnecting failed detaching dead */
	bool readonly;
	uint32_t queues;
	uint32_t qd;
	uint32_t reconnect_timeout_s;
	uint64_t size;
	uint32_t block_size;
	char backing[PATH_MAX];       /* fuse: the FUSE file; kernel: the controller (nvme0) */
	char hostnqn[256];
	int64_t started;              /* unix time */
	uint64_t reconnects;
};

/* ---- records (attach_record.c) ---- */

/** The state dir ($NVLEND_ATTACH_DIR, /run/nvlend/attach as root, else
 *  $XDG_RUNTIME_DIR/nvlend/attach, else /tmp/nvlend-UID/attach), created
 *  0700 if missing, made 0700 if not. It holds the FUSE files and the records
 *  detach trusts, so it must be this user's own (nvl_mkdir_private).
 *  \return 0; -EPERM (it, or /tmp/nvlend-UID, belongs to someone else); -errno. */
int attach_state_dir(char *buf, size_t len);
/** Print why the state dir cannot be used (after attach_state_dir failed with rc). */
void attach_state_dir_complain(const char *who, const char *dir, int rc);
/** Write atomically (temp file + rename). \return 0, -errno. */
int attach_record_write(const struct attach_record *r);
/** \return 0, -ENOENT, -EINVAL (unparsable), -errno. */
int attach_record_read(const char *name, struct attach_record *r);
int attach_record_remove(const char *name);
/** Claim NAME (exclusive create of its record). \return 0, -EEXIST. */
int attach_record_claim(const struct attach_record *r);
/** Every record (sorted by name); *out is malloc'ed. \return count, -errno. */
int attach_record_list(struct attach_record **out);
/** Find by name or device path. \return 0, -ENOENT. */
int attach_record_find(const char *name_or_dev, struct attach_record *r);
/** Is the attach process of r alive (and is it ours: its cmdline)? */
bool attach_pid_alive(pid_t pid);
/** JSON text of a record (malloc'ed). */
char *attach_record_json(const struct attach_record *r);

/**
 * Mount points of a block device and of its partitions (from
 * /proc/self/mountinfo, matched by major:minor). Fills up to max entries
 * of mnt (each PATH_MAX). \return how many are mounted (may exceed max),
 * -errno (not a block device).
 */
int attach_device_mounts(const char *dev, char (*mnt)[PATH_MAX], int max);

/* ---- the attach process ---- */

struct attach_ctx {
	struct attach_opts o;
	struct attach_record rec;
	struct host_session *s;
	void *priv;                   /* the mechanism's */
	int force;                    /* atomic; detach: do not wait for I/O to drain */
};

struct attach_mech {
	const char *name;
	/** Can this host use it? If not, a one-line reason in why. */
	bool (*available)(const struct attach_opts *o, char *why, size_t len);
	/** Create the device; fill a->rec.device (and backing). \return 0, -errno
	 *  with a message printed to stderr. */
	int (*start)(struct attach_ctx *a);
	/** Tear the device down (after start succeeded). */
	void (*stop)(struct attach_ctx *a);
	/** Still serving? (false: the attach process ends.) NULL: always. */
	bool (*alive)(struct attach_ctx *a);
	/** true: no attach process (kernel initiator); start/stop run in the CLI */
	bool in_kernel;
	/** kernel: detach from a record alone (no ctx). */
	int (*detach_record)(const struct attach_record *r);
	/** kernel: current state for `nvlend attachments` */
	const char *(*record_state)(const struct attach_record *r, char *buf, size_t len);
};

extern const struct attach_mech g_attach_fuse;
extern const struct attach_mech g_attach_nbd;
extern const struct attach_mech g_attach_ublk;
extern const struct attach_mech g_attach_kernel;

const struct attach_mech *attach_mech_by_name(const char *name);

/* ---- attach --all and stable names (attach_all.c) ---- */

/** Attach every namespace the target at o->uri offers this host (its discovery
 *  log, or one subsystem's namespaces), running `nvlend attach` per namespace
 *  with the options of argv. \return a CLI exit code. */
int attach_all(const struct attach_opts *o, int argc, char **argv, bool json);
/** Make the stable link BYID/nvlend-NQN-nNSID -> r->device (BYID:
 *  $NVLEND_BYID_DIR, else /dev/disk/by-id). Failures are only logged. */
void attach_link_add(const struct attach_record *r, uint32_t nsid);
/** Remove every stable link that points at r->device. */
void attach_link_remove(const struct attach_record *r);

struct nvl_nvmf_discovery_log;
struct nvl_nvmf_discovery_entry;
/**
 * Read the discovery log of the discovery controller uri names
 * (nvme+tcp://HOST:PORT/NQN) as hostnqn (NULL: this machine's): header into
 * *hdr, records (at most 1024) into *entries (free() it). why gets a
 * sentence for any failure.
 * \return the records read; -EINVAL (uri), -EHOSTUNREACH (no such host),
 *         -ECONNREFUSED/-ENOENT (nothing listens), -ETIMEDOUT, -EPROTO (not
 *         NVMe/TCP), -ENODEV (no such subsystem), -EACCES (host not allowed),
 *         -EMEDIUMTYPE (not a discovery controller), -EAGAIN (the log kept
 *         changing), -EREMOTEIO, -ENOMEM.
 */
int discovery_log_read(const char *uri, const char *hostnqn, struct nvl_nvmf_discovery_log *hdr,
		       struct nvl_nvmf_discovery_entry **entries, char *why, size_t why_len);
/** A space-padded fixed field of a log entry as a NUL-terminated string. */
void discovery_field(char *out, size_t outlen, const char *in, size_t inlen);

/* helpers shared by mechanisms (cmd_attach.c) */
/** Block every signal in the calling thread (before creating threads). */
void attach_block_signals(void);
/** Wait until path no longer exists (or exists, if want_exist), up to ms. */
bool attach_wait_path(const char *path, bool want_exist, int ms);
/** Read a small sysfs/proc file (trailing newline stripped). \return length, -errno. */
int attach_read_file(const char *path, char *buf, size_t len);
int attach_write_file(const char *path, const char *text);
/** One line on stderr (the attach log once detached from the terminal), time-stamped. */
void attach_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
