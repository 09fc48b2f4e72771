/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The lender's side of device lending (docs/lending.md): what uses a device
 * locally, add / remove, available (prepare the device, build its
 * subsystem through the RPC surface, claim it) and its teardown,
 * unavailable (with --force: revoke borrowers), lease expiry, and the
 * answers to peers' hello, list, borrow, renew and return. Reactor 0; the
 * records themselves and their persistence are lend.c's.
 */
#include "lend/lend_internal.h"
#include "bdev/bdev.h"
#include "nvmf/keyring.h"
#include "proto/nvme_auth.h"
#include "rpc/rpc.h"
#include "util/fdstore.h"
#include "util/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* ---- who uses a device locally --------------------------------------------------------- */

/* Does process `pid` hold a descriptor on the file st names? */
static bool
pid_uses(const char *pid, const struct stat *st)
{
	char dir[64], path[PATH_MAX];
	struct dirent *e;
	struct stat fs;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%.32s/fd", pid);
	d = opendir(dir);
	if (d == NULL)
		return false;
	while (!found && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &fs) < 0)
			continue;
		if (S_ISBLK(st->st_mode))
			found = S_ISBLK(fs.st_mode) && fs.st_rdev == st->st_rdev;
		else
			found = fs.st_dev == st->st_dev && fs.st_ino == st->st_ino;
	}
	closedir(d);
	return found;
}

/* Is pid (a /proc name) another worker of our keeper: the one an upgrade
 * replaces, still ending while this one rebuilds the lent targets? */
static bool
pid_is_sibling_worker(const char *pid)
{
	char p[300], buf[512], *close_paren;
	long ppid = -1;
	ssize_t n;
	int fd;

	if (!nvl_fdstore_available())
		return false; /* no keeper: our parent is anybody's */
	snprintf(p, sizeof(p), "/proc/%s/stat", pid);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold spaces and parentheses */
	close_paren = strrchr(buf, ')');
	if (close_paren == NULL || sscanf(close_paren + 1, " %*c %ld", &ppid) != 1)
		return false;
	return ppid == (long)getppid();
}

/*
 * Is the device at path used on this host? Another process holding it open,
 * a loop device on the file, a mount (or any exclusive holder) of the block
 * device. \return 0 (free), -EBUSY with who[] saying by whom, -errno.
 */
static int
local_users(const char *path, const struct stat *st, char *who, size_t len)
{
	char me[16], comm[64] = "", p[PATH_MAX], real[PATH_MAX], back[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int fd;

	snprintf(me, sizeof(me), "%d", (int)getpid());
	if (S_ISBLK(st->st_mode)) {
		fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC);
		if (fd < 0 && errno == EBUSY) {
			snprintf(who, len, "it is mounted or held exclusively (a file system, "
					   "device mapper, md or another exclusive opener)");
			return -EBUSY;
		}
		if (fd >= 0)
			close(fd);
	} else if (realpath(path, real) != NULL && (d = opendir("/sys/block")) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strncmp(e->d_name, "loop", 4) != 0)
				continue;
			snprintf(p, sizeof(p), "/sys/block/%s/loop/backing_file", e->d_name);
			fd = open(p, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			memset(back, 0, sizeof(back));
			if (read(fd, back, sizeof(back) - 1) > 0) {
				back[strcspn(back, "\n")] = '\0';
				if (strcmp(back, real) == 0) {
					snprintf(who, len, "loop device /dev/%.32s is attached to it",
						 e->d_name);
					close(fd);
					closedir(d);
					return -EBUSY;
				}
			}
			close(fd);
		}
		closedir(d);
	}
	d = opendir("/proc");
	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)e->d_name[0]) || strcmp(e->d_name, me) == 0)
			continue;
		if (pid_uses(e->d_name, st) && !pid_is_sibling_worker(e->d_name)) {
			snprintf(p, sizeof(p), "/proc/%s/comm", e->d_name);
			fd = open(p, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				ssize_t n = read(fd, comm, sizeof(comm) - 1);

				comm[n > 0 ? n : 0] = '\0';
				comm[strcspn(comm, "\n")] = '\0';
				close(fd);
			}
			snprintf(who, len, "it is open in process %.32s (%.32s)", e->d_name, comm);
			closedir(d);
			return -EBUSY;
		}
	}
	closedir(d);
	return 0;
}

/* A bdev of this daemon on the same file or block device (the /proc scan skips us). */
static int
daemon_users(const struct stat *st, char *who, size_t len)
{
	for (struct nvl_bdev *b = nvl_bdev_first(); b; b = nvl_bdev_next(b)) {
		json_t *j = nvl_bdev_to_json(b);
		const char *fn = json_string_value(
			json_object_get(json_object_get(json_object_get(j, "driver_specific"), "file"),
					"filename"));
		struct stat bs;
		bool same = false;

		if (fn && stat(fn, &bs) == 0)
			same = S_ISBLK(st->st_mode) ? S_ISBLK(bs.st_mode) && bs.st_rdev == st->st_rdev
						    : bs.st_dev == st->st_dev && bs.st_ino == st->st_ino;
		json_decref(j);
		if (same) {
			snprintf(who, len, "bdev %s of this daemon serves it", b->name);
			return -EBUSY;
		}
	}
	return 0;
}

/* ---- add, remove --------------------------------------------------------------------------- */

int
lend_add(const char *device, bool shared, uint32_t *id, char *err, size_t errlen)
{
	struct lend_offer *o, *it;
	enum lend_kind kind;
	const char *name = device;
	struct stat st;
	unsigned n = 0;

	TAILQ_FOREACH(it, &g_lend.offers, link)
		n++;
	if (n >= LEND_MAX_OFFERS) {
		snprintf(err, errlen, "this node already offers %d devices", LEND_MAX_OFFERS);
		return -ENOSPC;
	}
	if (device[0] == '/') {
		if (stat(device, &st) < 0) {
			snprintf(err, errlen, "%s: %s", device, strerror(errno));
			return -ENOENT;
		}
		if (S_ISBLK(st.st_mode)) {
			kind = LEND_KIND_BLOCKDEV;
		} else if (S_ISREG(st.st_mode)) {
			kind = LEND_KIND_FILE;
		} else {
			snprintf(err, errlen, "%s is neither a regular file nor a block device",
				 device);
			return -EINVAL;
		}
	} else if (strncmp(device, "brick:", 6) == 0) {
		kind = LEND_KIND_BRICK;
		name = device + 6;
	} else {
		kind = LEND_KIND_BDEV;
		if (strncmp(device, "bdev:", 5) == 0)
			name = device + 5;
		if (nvl_bdev_get_by_name(name) == NULL) {
			snprintf(err, errlen, "no bdev named '%s' (a device is an absolute path, "
					      "a bdev name or brick:NAME)", name);
			return -ENODEV;
		}
	}
	if (name[0] == '\0' || strlen(name) >= 48) {
		snprintf(err, errlen, "device name '%s' is empty or too long", name);
		return -EINVAL;
	}
	TAILQ_FOREACH(it, &g_lend.offers, link) {
		if (it->kind == kind && strcmp(it->device, name) == 0) {
			snprintf(err, errlen, "%s is already offered as lend %u", name, it->id);
			return -EEXIST;
		}
	}
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return -ENOMEM;
	o->id = g_lend.next_id++;
	o->kind = kind;
	o->shared = shared;
	o->hold_fd = -1;
	nvl_strlcpy(o->device, name, sizeof(o->device));
	if (kind == LEND_KIND_BDEV)
		nvl_strlcpy(o->bdev, name, sizeof(o->bdev));
	else
		snprintf(o->bdev, sizeof(o->bdev), "lend-%u", o->id);
	snprintf(o->nqn, sizeof(o->nqn), "nqn.2014-08.io.nvlend:lend:%s:%u", g_lend.node, o->id);
	lend_uuid_random(o->uuid);
	TAILQ_INSERT_TAIL(&g_lend.offers, o, link);
	lend_save();
	NVL_NOTICELOG("lend %u: %s %s offered%s (unavailable until 'lend available %u')", o->id,
		      lend_kind_str(kind), name, shared ? " for shared use" : "", o->id);
	*id = o->id;
	return 0;
}

int
lend_remove(uint32_t id, char *err, size_t errlen)
{
	struct lend_offer *o = lend_offer_find(id);

	if (o == NULL) {
		snprintf(err, errlen, "no lend %u on this node", id);
		return -ENOENT;
	}
	if (o->state != LEND_UNAVAILABLE || o->busy) {
		snprintf(err, errlen, "lend %u is available; make it unavailable first", id);
		return -EBUSY;
	}
	TAILQ_REMOVE(&g_lend.offers, o, link);
	lend_save();
	NVL_NOTICELOG("lend %u: %s withdrawn", o->id, o->device);
	free(o);
	return 0;
}

/* ---- available ------------------------------------------------------------------------------ */

struct avail_ctx {
	struct lend_offer *o;
	lend_done_fn done;
	void *arg;
	bool created_bdev;
	bool replay;
};

static void
ptpl_path(const struct lend_offer *o, char *buf, size_t len)
{
	snprintf(buf, len, "%s/lend-%u.ptpl", g_lend.state_dir, o->id);
}

struct capture {
	bool done;
	json_t *result;
	char msg[200];
};

static void
capture_done(void *arg, json_t *result, json_t *error)
{
	struct capture *c = arg;

	c->done = true;
	if (error)
		snprintf(c->msg, sizeof(c->msg), "%s",
			 lend_jstr(error, "message")[0] ? lend_jstr(error, "message") : "failed");
	else
		c->result = json_incref(result);
}

/* Undo what prepare made: the lend bdev (file, block device, brick), the O_EXCL hold. */
static void
offer_release_device(struct lend_offer *o)
{
	struct nvl_bdev *b = nvl_bdev_get_by_name(o->bdev);

	if (b)
		nvl_bdev_clear_exclusive(b);
	if (o->kind == LEND_KIND_FILE || o->kind == LEND_KIND_BLOCKDEV) {
		if (b && nvl_bdev_unregister(b) < 0)
			NVL_ERRLOG("lend %u: bdev %s is still open by %s", o->id, o->bdev,
				   b->claimed_by);
	} else if (o->kind == LEND_KIND_BRICK && b) {
		json_t *p = json_pack("{s:s}", "name", o->bdev);
		struct capture c = { 0 };

		/* completes in-process, before the call returns */
		nvl_rpc_call_local("bdev_brick_delete", p, capture_done, &c);
		json_decref(p);
		json_decref(c.result);
		if (c.msg[0])
			NVL_ERRLOG("lend %u: %s", o->id, c.msg);
	}
	if (o->hold_fd >= 0) {
		close(o->hold_fd);
		o->hold_fd = -1;
	}
}

/*
 * Make the offer's bdev and take the device away from local use.
 * \return 0, or -errno with err set. Bricks: the brick bdev is created here.
 */
static int
offer_prepare_device(struct lend_offer *o, char *err, size_t errlen)
{
	struct nvl_bdev *b;
	struct stat st;
	char who[256];
	int rc;

	switch (o->kind) {
	case LEND_KIND_FILE:
	case LEND_KIND_BLOCKDEV: {
		struct nvl_bdev_file_opts fo = { .name = o->bdev, .filename = o->device };
		uint8_t u[16];

		if (stat(o->device, &st) < 0) {
			snprintf(err, errlen, "%s: %s", o->device, strerror(errno));
			return -errno;
		}
		rc = local_users(o->device, &st, who, sizeof(who));
		if (rc == 0)
			rc = daemon_users(&st, who, sizeof(who));
		if (rc < 0) {
			snprintf(err, errlen, "%s is in use on this node: %s", o->device, who);
			return rc;
		}
		if (S_ISBLK(st.st_mode)) {
			/* nothing local can mount or claim it while we hold this */
			o->hold_fd = open(o->device, O_RDONLY | O_EXCL | O_CLOEXEC);
			if (o->hold_fd < 0) {
				snprintf(err, errlen, "cannot hold %s exclusively: %s", o->device,
					 strerror(errno));
				return -errno;
			}
		}
		nvl_uuid_parse(o->uuid, u);
		fo.uuid = u;
		fo.rpc_method = "bdev_uring_create";
		rc = nvl_bdev_file_create(&fo, &b);
		if (rc < 0) {
			snprintf(err, errlen, "cannot open %s: %s", o->device,
				 rc == -EBUSY ? "another process serves it (one daemon per "
						"backing device)"
					      : strerror(-rc));
			offer_release_device(o);
			return rc;
		}
		/* the lend record, not save_config, rebuilds it */
		b->no_config = true;
		return 0;
	}
	case LEND_KIND_BDEV:
		b = nvl_bdev_get_by_name(o->bdev);
		if (b == NULL) {
			snprintf(err, errlen, "no bdev named '%s'", o->bdev);
			return -ENODEV;
		}
		if (b->open_count > 0 || b->exclusive_by[0]) {
			snprintf(err, errlen, "bdev %s is in use on this node by %s", o->bdev,
				 b->exclusive_by[0] ? b->exclusive_by : b->claimed_by);
			return -EBUSY;
		}
		return 0;
	case LEND_KIND_BRICK: {
		struct capture c = { 0 };
		json_t *p = json_pack("{s:s}", "name", o->device), *br;
		uint64_t blocks;

		rc = nvl_rpc_call_local("brick_get_bricks", p, capture_done, &c);
		json_decref(p);
		br = c.result ? json_array_get(c.result, 0) : NULL;
		if (rc < 0 || !c.done || br == NULL) {
			snprintf(err, errlen, "no brick named '%s'%s%s", o->device,
				 c.msg[0] ? ": " : "", c.msg);
			json_decref(c.result);
			return -ENODEV;
		}
		blocks = lend_jint(br, "capacity_blocks");
		json_decref(c.result);
		memset(&c, 0, sizeof(c));
		p = json_pack("{s:s, s:s, s:i, s:I, s:s}", "name", o->bdev, "brick", o->device,
			      "base_addr", 0, "size_mib", (json_int_t)(blocks * 2), "uuid", o->uuid);
		rc = nvl_rpc_call_local("bdev_brick_create", p, capture_done, &c);
		json_decref(p);
		json_decref(c.result);
		if (rc < 0 || !c.done || c.msg[0]) {
			snprintf(err, errlen, "cannot make a bdev of brick %s: %s", o->device,
				 c.msg[0] ? c.msg : "not done");
			return -EIO;
		}
		b = nvl_bdev_get_by_name(o->bdev);
		if (b)
			b->no_config = true;
		return b ? 0 : -EIO;
	}
	}
	return -EINVAL;
}

/* ---- teardown: the subsystem (its controllers with it), then the device ---------------------- */

struct teardown_ctx {
	struct lend_offer *o;
	void (*done)(void *arg);
	void *arg;
};

static void
teardown_seq_done(void *arg, int rc, const char *msg)
{
	struct teardown_ctx *t = arg;
	struct lend_offer *o = t->o;
	char ptpl[PATH_MAX];

	(void)rc;
	(void)msg;
	offer_release_device(o);
	ptpl_path(o, ptpl, sizeof(ptpl));
	unlink(ptpl); /* a new lending starts without reservations */
	o->state = LEND_UNAVAILABLE;
	o->busy = false;
	if (t->done)
		t->done(t->arg);
	free(t);
}

/* ---- the borrowers' DH-HMAC-CHAP keys ------------------------------------------------------ */

/*
 * Each borrow has its own pair of secrets, derived from the cluster key, the
 * subsystem, the borrower's host NQN and the lease (nvl_lend_dhchap_secret):
 * the borrower computes the same and authenticates with them (both ways),
 * so a peer that knows the borrower's NQN is not let in. The lender keeps
 * them as files in STATE/keys (0600) behind keyring entries owned by
 * "lend" (not in save_config), named lend-ID-LEASE16-host / -ctrl.
 */
static const char *const g_key_roles[2] = { "host", "ctrl" };

/* \return 0, -ENAMETOOLONG (the state dir's path is too long). */
static int
borrower_key(uint32_t id, const char *lease, int role, char *name, size_t nlen, char *path,
	     size_t plen)
{
	int n;

	snprintf(name, nlen, "lend-%u-%.16s-%s", id, lease, g_key_roles[role]);
	n = snprintf(path, plen, "%s/keys/%s", g_lend.state_dir, name);
	return n < 0 || (size_t)n >= plen ? -ENAMETOOLONG : 0;
}

static int
write_secret(const char *path, const char *secret)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	int rc;

	if (fd < 0)
		return -errno;
	rc = fchmod(fd, 0600) < 0 ? -errno : nvl_write_all(fd, secret, strlen(secret));
	if (close(fd) < 0 && rc >= 0)
		rc = -errno;
	return rc < 0 ? rc : 0;
}

/* Make borrower w's keys (files and keyring entries). \return true if it has
 * them; false (logged): it is let in by its host NQN alone. */
static bool
borrower_keys_make(const struct lend_offer *o, const struct lend_borrower *w)
{
	char dir[PATH_MAX], name[NVL_KEYRING_NAME_MAX], path[PATH_MAX],
		secret[NVL_DHCHAP_SECRET_MAX], err[256] = "";
	const char *why;
	int rc = lend_key_ensure(&why);

	snprintf(dir, sizeof(dir), "%s/keys", g_lend.state_dir);
	if (rc == 0)
		rc = nvl_mkdir_private(dir);
	for (int r = 0; r < 2 && rc == 0; r++) {
		rc = borrower_key(o->id, w->lease, r, name, sizeof(name), path, sizeof(path));
		if (rc == 0)
			rc = nvl_lend_dhchap_secret(&g_lend.key, g_key_roles[r], o->nqn, w->hostnqn,
					    w->lease, secret, sizeof(secret));
		if (rc == 0)
			rc = write_secret(path, secret);
		OPENSSL_cleanse(secret, sizeof(secret));
		if (rc == 0) {
			rc = nvl_keyring_add_owned(name, path, "lend", err, sizeof(err));
			if (rc == -EEXIST)
				rc = 0;
		}
	}
	if (rc < 0)
		NVL_ERRLOG("lend %u: no DH-HMAC-CHAP keys for %s's borrow (%s%s%s): it is let in by "
			   "its host NQN alone",
			   o->id, w->node, strerror(-rc), err[0] ? ": " : "", err);
	return rc == 0;
}

/* Forget a borrow's keys (its host entry is gone). */
static void
borrower_keys_drop(uint32_t id, const char *lease)
{
	char name[NVL_KEYRING_NAME_MAX], path[PATH_MAX];

	for (int r = 0; r < 2; r++) {
		int rc = borrower_key(id, lease, r, name, sizeof(name), path, sizeof(path));

		(void)nvl_keyring_remove(name);
		if (rc == 0)
			(void)unlink(path);
	}
}

/* nvmf_subsystem_add_host for borrower w, with its keys when it has them. */
static void
add_borrower_host(json_t *calls, const struct lend_offer *o, const struct lend_borrower *w)
{
	char hk[NVL_KEYRING_NAME_MAX], ck[NVL_KEYRING_NAME_MAX], path[PATH_MAX];
	json_t *p = json_pack("{s:s, s:s}", "nqn", o->nqn, "host", w->hostnqn);

	if (p && borrower_keys_make(o, w)) {
		(void)borrower_key(o->id, w->lease, 0, hk, sizeof(hk), path, sizeof(path));
		(void)borrower_key(o->id, w->lease, 1, ck, sizeof(ck), path, sizeof(path));
		json_object_set_new(p, "dhchap_key", json_string(hk));
		json_object_set_new(p, "dhchap_ctrlr_key", json_string(ck));
	}
	lend_seq_add(calls, "nvmf_subsystem_add_host", p, SEQ_OK_EXISTS);
}

/* Delete the offer's subsystem, release the device; done (may be NULL) runs after. */
static void
offer_teardown(struct lend_offer *o, void (*done)(void *), void *arg)
{
	struct teardown_ctx *t = calloc(1, sizeof(*t));
	json_t *calls = json_array();

	o->busy = true;
	if (t == NULL) {
		json_decref(calls);
		offer_release_device(o);
		o->busy = false;
		o->state = LEND_UNAVAILABLE;
		if (done)
			done(arg);
		return;
	}
	t->o = o;
	t->done = done;
	t->arg = arg;
	lend_seq_add(calls, "nvmf_delete_subsystem", json_pack("{s:s}", "nqn", o->nqn), SEQ_OK_ANY);
	lend_seq_run(calls, teardown_seq_done, t);
}

static void
avail_seq_done(void *arg, int rc, const char *msg)
{
	struct avail_ctx *c = arg;
	struct lend_offer *o = c->o;
	struct nvl_bdev *b = nvl_bdev_get_by_name(o->bdev);
	char who[96], m[600];

	o->busy = false;
	if (rc == 0 && b == NULL)
		rc = -ENODEV;
	if (rc == 0) {
		snprintf(who, sizeof(who), "lend %u (lent out as lend:%.40s)", o->id, g_lend.node);
		/* the namespace is the only opener; nobody local may open it now */
		if (b->open_count != 1 || nvl_bdev_set_exclusive(b, who) < 0) {
			rc = -EBUSY;
			msg = "someone opened the device meanwhile";
		}
	}
	if (rc < 0) {
		snprintf(m, sizeof(m), "lend %u: cannot make %.200s available: %.300s", o->id, o->device,
			 msg);
		NVL_ERRLOG("%s", m);
		o->nborrowers = 0;
		if (!c->replay)
			lend_save();
		offer_teardown(o, NULL, NULL);
		if (c->done)
			c->done(c->arg, rc, m, NULL);
		free(c);
		return;
	}
	o->size = b->num_blocks * b->block_size;
	o->block_size = b->block_size;
	o->state = LEND_AVAILABLE;
	lend_save();
	NVL_NOTICELOG("lend %u: %s is available%s (%s, %" PRIu64 " bytes)%s", o->id, o->device,
		      o->shared ? " for shared use" : "", o->nqn, o->size,
		      c->replay && o->nborrowers ? "; borrowers kept" : "");
	if (c->done)
		c->done(c->arg, 0, NULL, lend_offer_json(o, true));
	free(c);
}

int
lend_offer_make_available(struct lend_offer *o, bool replay, lend_done_fn done, void *arg, char *err,
		     size_t errlen)
{
	char ptpl[PATH_MAX], nguid[33], serial[21];
	struct avail_ctx *c;
	json_t *calls;
	int rc, k = 0;

	if (!g_lend.listener.on) {
		snprintf(err, errlen, "this node has no lend listener: run 'nvlend lend listen "
				      "ADDRESS' first");
		return -ENOTCONN;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	rc = offer_prepare_device(o, err, errlen);
	if (rc < 0) {
		free(c);
		return rc;
	}
	c->o = o;
	c->done = done;
	c->arg = arg;
	c->replay = replay;
	o->busy = true;
	ptpl_path(o, ptpl, sizeof(ptpl));
	for (const char *p = o->uuid; *p && k < 32; p++)
		if (*p != '-')
			nguid[k++] = *p;
	nguid[k] = '\0';
	snprintf(serial, sizeof(serial), "NVLEND%u", o->id);
	calls = json_array();
	lend_seq_add(calls, "nvmf_create_subsystem",
		json_pack("{s:s, s:s, s:s, s:b, s:i, s:s, s:b}", "nqn", o->nqn, "serial_number",
			  serial, "model_number", "nvlend lent device", "allow_any_host", 0,
			  "max_namespaces", 1, "owner", "lend", "listed_to_any_host", 1),
		0);
	lend_seq_add(calls, "nvmf_subsystem_add_ns",
		json_pack("{s:s, s:{s:s, s:i, s:s, s:s, s:s}}", "nqn", o->nqn, "namespace",
			  "bdev_name", o->bdev, "nsid", 1, "uuid", o->uuid, "nguid", nguid,
			  "ptpl_file", ptpl),
		0);
	lend_seq_add(calls, "nvmf_subsystem_add_listener",
		json_pack("{s:s, s:o}", "nqn", o->nqn, "listen_address",
			  lend_listen_addr_json(g_lend.listener.nvme_trsvcid)),
		0);
	for (unsigned i = 0; i < o->nborrowers; i++)
		add_borrower_host(calls, o, &o->borrowers[i]);
	lend_seq_run(calls, avail_seq_done, c);
	return 0;
}

int
lend_available(uint32_t id, lend_done_fn done, void *arg, char *err, size_t errlen)
{
	struct lend_offer *o = lend_offer_find(id);

	if (o == NULL) {
		snprintf(err, errlen, "no lend %u on this node", id);
		return -ENOENT;
	}
	if (o->busy) {
		snprintf(err, errlen, "lend %u is changing state; try again", id);
		return -EAGAIN;
	}
	if (o->state == LEND_AVAILABLE) {
		snprintf(err, errlen, "lend %u is already available", id);
		return -EALREADY;
	}
	o->nborrowers = 0;
	return lend_offer_make_available(o, false, done, arg, err, errlen);
}

/* ---- revoking a borrower ------------------------------------------------------------------ */

static void
notify_done(void *arg, const struct lend_call_result *res)
{
	(void)arg;
	if (res->rc < 0)
		NVL_DEBUGLOG(lend, "revocation notice not delivered: %s", res->err);
}

/* Tell the borrower's daemon (best effort) that its borrow is gone. */
static void
notify_revoked(const struct lend_offer *o, const struct lend_borrower *w, const char *reason)
{
	struct lend_peer *p;

	TAILQ_FOREACH(p, &g_lend.peers, link)
		if (strcmp(p->node_id, w->node_id) == 0 && p->port)
			break;
	if (p == NULL)
		return;
	lend_peer_call(p->addr, p->port,
		       json_pack("{s:s, s:i, s:s, s:s}", "op", "revoked", "id", (int)o->id, "lease",
				 w->lease, "reason", reason),
		       notify_done, NULL);
}

struct remove_host_ctx {
	uint32_t id;
	char lease[NVL_LEND_NONCE_HEX + 1];
	char what[160];
};

static void
remove_host_done(void *arg, int rc, const char *msg)
{
	struct remove_host_ctx *x = arg;

	if (rc < 0)
		NVL_ERRLOG("%s: %s", x->what, msg);
	borrower_keys_drop(x->id, x->lease);
	free(x);
}

/* Drop borrower i of o: its host NQN leaves the subsystem, which disconnects its controllers. */
static void
offer_drop_borrower(struct lend_offer *o, unsigned i, const char *reason, bool notify)
{
	struct lend_borrower w = o->borrowers[i];
	json_t *calls = json_array();
	struct remove_host_ctx *x = calloc(1, sizeof(*x));

	memmove(&o->borrowers[i], &o->borrowers[i + 1],
		(o->nborrowers - i - 1) * sizeof(o->borrowers[0]));
	o->nborrowers--;
	lend_save();
	lend_seq_add(calls, "nvmf_subsystem_remove_host",
		json_pack("{s:s, s:s}", "nqn", o->nqn, "host", w.hostnqn), SEQ_OK_ANY);
	if (x == NULL) {
		borrower_keys_drop(o->id, w.lease); /* the files at least */
		json_decref(calls);
	} else {
		x->id = o->id;
		nvl_strlcpy(x->lease, w.lease, sizeof(x->lease));
		snprintf(x->what, sizeof(x->what), "lend %u: removing %.63s's host", o->id, w.node);
		lend_seq_run(calls, remove_host_done, x);
	}
	if (notify)
		notify_revoked(o, &w, reason);
}

/* ---- unavailable ---------------------------------------------------------------------------- */

struct unavail_ctx {
	struct lend_offer *o;
	lend_done_fn done;
	void *arg;
	/* borrows revoked by a forced reclaim: their keys go with the subsystem */
	char leases[LEND_MAX_BORROWERS][NVL_LEND_NONCE_HEX + 1];
	unsigned nleases;
};

static void
unavail_done(void *arg)
{
	struct unavail_ctx *u = arg;

	for (unsigned i = 0; i < u->nleases; i++)
		borrower_keys_drop(u->o->id, u->leases[i]);
	lend_save();
	NVL_NOTICELOG("lend %u: %s is unavailable: back for local use", u->o->id, u->o->device);
	u->done(u->arg, 0, NULL, lend_offer_json(u->o, true));
	free(u);
}

int
lend_unavailable(uint32_t id, bool force, lend_done_fn done, void *arg, char *err, size_t errlen)
{
	struct lend_offer *o = lend_offer_find(id);
	struct unavail_ctx *u;

	if (o == NULL) {
		snprintf(err, errlen, "no lend %u on this node", id);
		return -ENOENT;
	}
	if (o->busy) {
		snprintf(err, errlen, "lend %u is changing state; try again", id);
		return -EAGAIN;
	}
	if (o->state != LEND_AVAILABLE) {
		snprintf(err, errlen, "lend %u is not available", id);
		return -EALREADY;
	}
	if (o->nborrowers && !force) {
		snprintf(err, errlen, "lend %u is borrowed by %s: it must be returned first "
				      "('--force' revokes the borrow: the borrower's I/O fails)",
			 id, o->borrowers[0].node);
		return -EBUSY;
	}
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return -ENOMEM;
	while (o->nborrowers) {
		NVL_WARNLOG("lend %u: forced reclaim: revoking %s's borrow; its controller is torn "
			    "down and its I/O fails",
			    o->id, o->borrowers[0].node);
		notify_revoked(o, &o->borrowers[0], "reclaimed by the lender (--force)");
		nvl_strlcpy(u->leases[u->nleases++], o->borrowers[0].lease, sizeof(u->leases[0]));
		memmove(&o->borrowers[0], &o->borrowers[1],
			(o->nborrowers - 1) * sizeof(o->borrowers[0]));
		o->nborrowers--;
	}
	u->o = o;
	u->done = done;
	u->arg = arg;
	offer_teardown(o, unavail_done, u);
	return 0;
}

/* ---- the lender's side of the peer protocol -------------------------------------------------- */

static json_t *
peer_error(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static json_t *
peer_error(int rc, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:i, s:s}", "ok", 0, "errno", -rc, "error", msg);
}

static struct lend_borrower *
borrower_by_lease(struct lend_offer *o, const char *node_id, const char *lease, unsigned *idx)
{
	for (unsigned i = 0; i < o->nborrowers; i++)
		if (strcmp(o->borrowers[i].lease, lease) == 0 &&
		    strcmp(o->borrowers[i].node_id, node_id) == 0) {
			if (idx)
				*idx = i;
			return &o->borrowers[i];
		}
	return NULL;
}

void
lend_peer_learn(const char *name, const char *node_id, const char *addr, uint16_t port)
{
	struct lend_peer *p;

	TAILQ_FOREACH(p, &g_lend.peers, link)
		if (strcmp(p->node_id, node_id) == 0 || strcmp(p->name, name) == 0)
			break;
	if (p == NULL) {
		unsigned n = 0;

		TAILQ_FOREACH(p, &g_lend.peers, link)
			n++;
		if (n >= LEND_MAX_PEERS)
			return;
		p = calloc(1, sizeof(*p));
		if (p == NULL)
			return;
		TAILQ_INSERT_TAIL(&g_lend.peers, p, link);
	} else if (strcmp(p->name, name) == 0 && strcmp(p->addr, addr) == 0 && p->port == port &&
		   strcmp(p->node_id, node_id) == 0) {
		return;
	}
	nvl_strlcpy(p->name, name, sizeof(p->name));
	nvl_strlcpy(p->node_id, node_id, sizeof(p->node_id));
	nvl_strlcpy(p->addr, addr, sizeof(p->addr));
	p->port = port;
	lend_save();
	NVL_NOTICELOG("lend: peer %s (%s) at %s:%u", name, node_id, addr, port);
}

struct borrow_ctx {
	struct lend_offer *o;
	struct lend_borrower w;
	char uri[LEND_URI_MAX];
	lend_reply_fn reply;
	void *conn;
};

static void
borrow_host_added(void *arg, int rc, const char *msg)
{
	struct borrow_ctx *c = arg;
	struct lend_offer *o = c->o;
	uint64_t prkey = o->last_rkey;

	o->busy = false;
	if (rc < 0) {
		c->reply(c->conn, peer_error(rc, "lend %u: %s", o->id, msg));
		free(c);
		return;
	}
	o->borrowers[o->nborrowers++] = c->w;
	if (!o->shared)
		o->last_rkey = c->w.rkey;
	lend_save();
	NVL_NOTICELOG("lend %u: %s borrowed by %s (%s)%s", o->id, o->device, c->w.node,
		      c->w.hostnqn, o->shared ? ", shared" : "");
	c->reply(c->conn, json_pack("{s:b, s:i, s:s, s:s, s:i, s:s, s:s, s:i, s:I, s:I, s:b, "
				    "s:I, s:i}",
				    "ok", 1, "id", (int)o->id, "nqn", o->nqn, "uri", c->uri, "nsid", 1,
				    "lease", c->w.lease, "lender", g_lend.node, "lease_ms",
				    (int)g_lend.listener.lease_ms, "rkey", (json_int_t)c->w.rkey,
				    "prkey", (json_int_t)prkey, "shared", o->shared, "size",
				    (json_int_t)o->size, "block_size", (int)o->block_size));
	free(c);
}

static void
serve_borrow(const struct nvl_lend_request *r, const struct nvl_lend_body *b,
	     const char *local_addr, lend_reply_fn reply, void *conn)
{
	struct lend_offer *o = lend_offer_find(b->id);
	struct borrow_ctx *c;
	json_t *calls;

	if (o == NULL) {
		reply(conn, peer_error(-ENOENT, "%s has no lend %u", g_lend.node, b->id));
		return;
	}
	if (o->busy) {
		reply(conn, peer_error(-EAGAIN, "lend %u is changing state; try again", b->id));
		return;
	}
	if (o->state != LEND_AVAILABLE) {
		reply(conn, peer_error(-ENODEV, "lend %u is unavailable (in local use on %s)",
				       b->id, g_lend.node));
		return;
	}
	for (unsigned i = 0; i < o->nborrowers; i++) {
		if (strcmp(o->borrowers[i].node_id, r->node_id) == 0 &&
		    strcmp(o->borrowers[i].hostnqn, b->hostnqn) == 0) {
			reply(conn, peer_error(-EALREADY, "lend %u is already borrowed by %s",
					       b->id, r->node));
			return;
		}
	}
	if (!o->shared && o->nborrowers) {
		reply(conn, peer_error(-EBUSY, "lend %u is borrowed by %s (exclusively)", b->id,
				       o->borrowers[0].node));
		return;
	}
	if (o->nborrowers == LEND_MAX_BORROWERS) {
		reply(conn, peer_error(-ENOSPC, "lend %u has %d borrowers already", b->id,
				       LEND_MAX_BORROWERS));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		reply(conn, peer_error(-ENOMEM, "out of memory"));
		return;
	}
	c->o = o;
	c->reply = reply;
	c->conn = conn;
	nvl_strlcpy(c->w.node, r->node, sizeof(c->w.node));
	nvl_strlcpy(c->w.node_id, r->node_id, sizeof(c->w.node_id));
	nvl_strlcpy(c->w.hostnqn, b->hostnqn, sizeof(c->w.hostnqn));
	nvl_lend_random_hex(c->w.lease, NVL_LEND_NONCE_HEX);
	/* reservation keys travel as JSON integers: 63 bits, never 0 */
	if (!o->shared)
		while (c->w.rkey == 0) {
			nvl_random_bytes(&c->w.rkey, sizeof(c->w.rkey));
			c->w.rkey &= INT64_MAX;
		}
	c->w.deadline_us = nvl_now_us() + (uint64_t)g_lend.listener.lease_ms * 1000;
	snprintf(c->uri, sizeof(c->uri), "nvme+tcp://%s%s%s:%s/%s/1",
		 strchr(local_addr, ':') ? "[" : "", local_addr, strchr(local_addr, ':') ? "]" : "",
		 g_lend.listener.nvme_trsvcid, o->nqn);
	o->busy = true;
	calls = json_array();
	add_borrower_host(calls, o, &c->w);
	lend_seq_run(calls, borrow_host_added, c);
}

void
lend_serve(const struct nvl_lend_request *r, const struct nvl_lend_body *b, const char *local_addr,
	   const char *remote_addr, lend_reply_fn reply, void *conn)
{
	struct lend_offer *o;
	struct lend_borrow *bw;
	unsigned idx;

	NVL_VERBOSELOG(lend, "peer %s (%s): %s", r->node, r->node_id, nvl_lend_op_name(b->op));
	switch (b->op) {
	case NVL_LEND_OP_HELLO:
		/* a node listening on a wildcard is reached where it came from */
		if (b->port)
			lend_peer_learn(r->node, r->node_id,
				   b->addr[0] && strcmp(b->addr, "0.0.0.0") && strcmp(b->addr, "::")
					   ? b->addr
					   : remote_addr,
				   b->port);
		reply(conn, json_pack("{s:b, s:s, s:s}", "ok", 1, "node", g_lend.node, "node_id",
				      g_lend.node_id));
		return;
	case NVL_LEND_OP_LIST: {
		json_t *arr = json_array();

		TAILQ_FOREACH(o, &g_lend.offers, link)
			json_array_append_new(arr, lend_offer_json(o, false));
		reply(conn, json_pack("{s:b, s:s, s:o}", "ok", 1, "node", g_lend.node, "offers",
				      arr));
		return;
	}
	case NVL_LEND_OP_BORROW:
		serve_borrow(r, b, local_addr, reply, conn);
		return;
	case NVL_LEND_OP_RENEW:
	case NVL_LEND_OP_RETURN:
		o = lend_offer_find(b->id);
		if (o == NULL || borrower_by_lease(o, r->node_id, b->lease, &idx) == NULL) {
			reply(conn, peer_error(-ENOENT, "no such borrow of lend %u by %s (expired "
							"or revoked)", b->id, r->node));
			return;
		}
		if (b->op == NVL_LEND_OP_RENEW) {
			o->borrowers[idx].deadline_us =
				nvl_now_us() + (uint64_t)g_lend.listener.lease_ms * 1000;
		} else {
			NVL_NOTICELOG("lend %u: returned by %s; available again", o->id, r->node);
			offer_drop_borrower(o, idx, "returned", false);
		}
		reply(conn, json_pack("{s:b, s:i}", "ok", 1, "lease_ms",
				      (int)g_lend.listener.lease_ms));
		return;
	case NVL_LEND_OP_REVOKED:
		bw = lend_borrow_find(NULL, b->id);
		if (bw && strcmp(bw->lender_id, r->node_id) == 0 && strcmp(bw->lease, b->lease) == 0) {
			NVL_WARNLOG("lend: %s revoked our borrow of its lend %u (%s): the device "
				    "%s fails its I/O now",
				    r->node, b->id, b->reason, bw->attach_name);
			TAILQ_REMOVE(&g_lend.borrows, bw, link);
			free(bw);
			lend_save();
		}
		reply(conn, json_pack("{s:b}", "ok", 1));
		return;
	}
	reply(conn, peer_error(-EINVAL, "unknown op"));
}

/* ---- leases: the lender's side ------------------------------------------------------------- */

void
lend_offers_expire(uint64_t now)
{
	struct lend_offer *o;

	TAILQ_FOREACH(o, &g_lend.offers, link) {
		if (o->busy || o->state != LEND_AVAILABLE)
			continue;
		for (unsigned i = 0; i < o->nborrowers;) {
			if (o->borrowers[i].deadline_us > now) {
				i++;
				continue;
			}
			NVL_WARNLOG("lend %u: the lease of %s expired: its controller is torn "
				    "down; available again",
				    o->id, o->borrowers[i].node);
			offer_drop_borrower(o, i, "lease expired", true);
		}
	}
}
