/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The lending service (docs/lending.md): node identity, lend records and
 * their state machine, leases, persistence and replay.
 *
 * Owns: g_lend (offers this node lends, peers it knows, borrows it holds),
 * STATE/node.json and STATE/lend.json. Reactor 0 only; peer client calls
 * finish here too (lend_peer.c posts them back).
 *
 * Targets are built through the RPC surface (nvl_rpc_call_local): one
 * subsystem per available offer, nqn.2014-08.io.nvlend:lend:NODE:ID, with
 * namespace 1 on the offer's bdev, a TCP listener, listed in every host's
 * discovery log (listed_to_any_host) and owned by "lend" (not written by
 * save_config: lend.json rebuilds it). Borrowing adds the borrower's host
 * NQN (nvmf_subsystem_add_host); returning, expiry and a forced reclaim
 * remove it, which disconnects the borrower's controllers.
 *
 * Crash safety: lend.json is rewritten (temp file, fsync, rename) after
 * every change of a record, before the change is answered; a kill -9
 * between the target change and the rename leaves the old record, which the
 * replay rebuilds (a borrow that was not answered is simply not there).
 */
#include "lend/lend_internal.h"
#include "app/app.h"
#include "bdev/bdev.h"
#include "rpc/rpc.h"
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
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(lend)

struct lend_global g_lend = {
	.offers = TAILQ_HEAD_INITIALIZER(g_lend.offers),
	.peers = TAILQ_HEAD_INITIALIZER(g_lend.peers),
	.borrows = TAILQ_HEAD_INITIALIZER(g_lend.borrows),
	.next_id = 1,
};

static const char g_default_key[] = "/etc/nvlend/cluster.key";

/* ---- options, identity -------------------------------------------------------------- */

const char *
nvl_lend_default_state_dir(char *buf, size_t len)
{
	const char *x = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (getuid() == 0)
		snprintf(buf, len, "/var/lib/nvlend");
	else if (x && *x)
		snprintf(buf, len, "%s/nvlend", x);
	else
		snprintf(buf, len, "%s/.local/state/nvlend", home ? home : "/tmp");
	return buf;
}

int
nvl_lend_configure(const struct nvl_lend_opts *o)
{
	if (o->node_name && !nvl_lend_name_valid(o->node_name))
		return -EINVAL;
	free(g_lend.opt_name);
	g_lend.opt_name = o->node_name ? strdup(o->node_name) : NULL;
	if (o->node_name && g_lend.opt_name == NULL)
		return -ENOMEM;
	if (o->state_dir && nvl_strlcpy(g_lend.state_dir, o->state_dir,
					sizeof(g_lend.state_dir)) < 0)
		return -EINVAL;
	if (o->key_file && nvl_strlcpy(g_lend.key_file, o->key_file, sizeof(g_lend.key_file)) < 0)
		return -EINVAL;
	if (o->avahi_dir && nvl_strlcpy(g_lend.avahi_dir, o->avahi_dir, sizeof(g_lend.avahi_dir)) < 0)
		return -EINVAL;
	return 0;
}

static int
write_json_atomic(const char *path, json_t *doc)
{
	char tmp[PATH_MAX];
	int fd, rc = 0;
	char *text;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	text = json_dumps(doc, JSON_INDENT(2));
	if (text == NULL)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(text);
		return -errno;
	}
	rc = nvl_write_all(fd, text, strlen(text));
	if (rc == 0 && nvl_write_all(fd, "\n", 1) == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	free(text);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

static void
uuid_random(char *out)
{
	uint8_t u[16] = { 0 };

	nvl_random_bytes(u, sizeof(u));
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	nvl_uuid_fmt(u, out);
}

/* STATE/node.json: {"node_id", "name"}; written (when save) if new or renamed. */
static int
node_identity_load(bool save)
{
	char path[PATH_MAX], host[NVL_LEND_NAME_MAX] = "";
	json_t *doc;
	const char *id = NULL, *name = NULL;
	bool dirty = false;
	int rc;

	snprintf(path, sizeof(path), "%s/node.json", g_lend.state_dir);
	doc = json_load_file(path, 0, NULL);
	if (doc) {
		id = json_string_value(json_object_get(doc, "node_id"));
		name = json_string_value(json_object_get(doc, "name"));
	}
	if (id && nvl_lend_uuid_valid(id)) {
		nvl_strlcpy(g_lend.node_id, id, sizeof(g_lend.node_id));
	} else if (g_lend.node_id[0] == '\0') {
		uuid_random(g_lend.node_id);
		dirty = true;
	} else {
		dirty = true;
	}
	if (g_lend.opt_name) {
		dirty |= name == NULL || strcmp(name, g_lend.opt_name) != 0;
		name = g_lend.opt_name;
	} else if (name == NULL || !nvl_lend_name_valid(name)) {
		gethostname(host, sizeof(host) - 1);
		for (char *p = host; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
				*p = '-';
		name = nvl_lend_name_valid(host) ? host : "node";
		dirty = true;
	}
	nvl_strlcpy(g_lend.node, name, sizeof(g_lend.node));
	json_decref(doc);
	/* this node's host NQN, for the subsystems it borrows */
	snprintf(g_lend.hostnqn, sizeof(g_lend.hostnqn), "nqn.2014-08.org.nvmexpress:uuid:%s",
		 g_lend.node_id);
	if (!dirty || !save) {
		g_lend.identity_saved = !dirty;
		return 0;
	}
	doc = json_pack("{s:s, s:s}", "node_id", g_lend.node_id, "name", g_lend.node);
	rc = doc ? write_json_atomic(path, doc) : -ENOMEM;
	json_decref(doc);
	g_lend.identity_saved = rc == 0;
	if (rc == 0)
		NVL_NOTICELOG("lend: node %s (%s), host NQN %s", g_lend.node, g_lend.node_id,
			      g_lend.hostnqn);
	return rc;
}

int
lend_key_ensure(const char **why)
{
	int rc;

	*why = "";
	if (g_lend.have_key)
		return 0;
	rc = nvl_lend_key_load(g_lend.key_file, &g_lend.key, why);
	if (rc == 0)
		g_lend.have_key = true;
	return rc;
}

/* ---- records ---------------------------------------------------------------------------- */

const char *
lend_kind_str(enum lend_kind k)
{
	switch (k) {
	case LEND_KIND_FILE: return "file";
	case LEND_KIND_BLOCKDEV: return "blockdev";
	case LEND_KIND_BDEV: return "bdev";
	case LEND_KIND_BRICK: return "brick";
	}
	return "?";
}

static int
kind_parse(const char *s, enum lend_kind *k)
{
	for (int i = LEND_KIND_FILE; i <= LEND_KIND_BRICK; i++)
		if (strcmp(s, lend_kind_str((enum lend_kind)i)) == 0) {
			*k = (enum lend_kind)i;
			return 0;
		}
	return -EINVAL;
}

struct lend_offer *
lend_offer_find(uint32_t id)
{
	struct lend_offer *o;

	TAILQ_FOREACH(o, &g_lend.offers, link)
		if (o->id == id)
			return o;
	return NULL;
}

struct lend_peer *
lend_peer_find(const char *name)
{
	struct lend_peer *p;

	TAILQ_FOREACH(p, &g_lend.peers, link)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

struct lend_borrow *
lend_borrow_find(const char *lender, uint32_t id)
{
	struct lend_borrow *b;

	TAILQ_FOREACH(b, &g_lend.borrows, link)
		if (b->id == id && (lender == NULL || strcmp(b->lender, lender) == 0))
			return b;
	return NULL;
}

static const char *
offer_state_str(const struct lend_offer *o, char *buf, size_t len)
{
	if (o->state == LEND_UNAVAILABLE)
		return "unavailable";
	if (o->nborrowers == 0)
		return "available";
	snprintf(buf, len, "borrowed by %s%s", o->borrowers[0].node,
		 o->nborrowers > 1 ? " and others" : "");
	return buf;
}

json_t *
lend_offer_json(const struct lend_offer *o, bool local)
{
	char st[160];
	json_t *bs = json_array(), *j;

	for (unsigned i = 0; i < o->nborrowers; i++)
		json_array_append_new(bs, json_string(o->borrowers[i].node));
	j = json_pack("{s:i, s:s, s:s, s:s, s:I, s:i, s:s, s:b, s:o, s:s}", "id", (int)o->id,
		      "lender", g_lend.node, "device", o->device, "kind", lend_kind_str(o->kind),
		      "size", (json_int_t)o->size, "block_size", (int)o->block_size, "state",
		      offer_state_str(o, st, sizeof(st)), "shared", o->shared, "borrowers", bs,
		      "nqn", o->nqn);
	if (j && local) {
		json_object_set_new(j, "bdev", json_string(o->bdev));
		json_object_set_new(j, "uuid", json_string(o->uuid));
	}
	return j;
}

static json_t *
state_json(void)
{
	json_t *offers = json_array(), *peers = json_array(), *borrows = json_array(), *doc;
	struct lend_offer *o;
	struct lend_peer *p;
	struct lend_borrow *b;

	TAILQ_FOREACH(o, &g_lend.offers, link) {
		json_t *bs = json_array();

		for (unsigned i = 0; i < o->nborrowers; i++) {
			const struct lend_borrower *w = &o->borrowers[i];

			json_array_append_new(bs, json_pack("{s:s, s:s, s:s, s:s, s:I}", "node",
							    w->node, "node_id", w->node_id,
							    "hostnqn", w->hostnqn, "lease", w->lease,
							    "rkey", (json_int_t)w->rkey));
		}
		json_array_append_new(
			offers, json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:I, s:o}", "id",
					  (int)o->id, "kind", lend_kind_str(o->kind), "device",
					  o->device, "bdev", o->bdev, "nqn", o->nqn, "uuid", o->uuid,
					  "shared", o->shared, "state",
					  o->state == LEND_AVAILABLE ? "available" : "unavailable",
					  "last_rkey", (json_int_t)o->last_rkey, "borrowers", bs));
	}
	TAILQ_FOREACH(p, &g_lend.peers, link)
		json_array_append_new(peers, json_pack("{s:s, s:s, s:s, s:i}", "name", p->name,
						       "node_id", p->node_id, "addr", p->addr,
						       "port", (int)p->port));
	TAILQ_FOREACH(b, &g_lend.borrows, link)
		json_array_append_new(
			borrows,
			json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:i, s:I, s:I, s:b, s:i, "
				  "s:s}",
				  "lender", b->lender, "lender_id", b->lender_id, "addr", b->addr,
				  "port", (int)b->port, "id", (int)b->id, "lease", b->lease, "uri",
				  b->uri, "nqn", b->nqn, "nsid", (int)b->nsid, "rkey",
				  (json_int_t)b->rkey, "prkey", (json_int_t)b->prkey, "shared",
				  b->shared, "lease_ms", (int)b->lease_ms, "attach_name",
				  b->attach_name));
	doc = json_pack("{s:i, s:I, s:o, s:o, s:o}", "version", 1, "next_id",
			(json_int_t)g_lend.next_id, "offers", offers, "peers", peers, "borrows",
			borrows);
	if (doc && g_lend.listener.on)
		json_object_set_new(doc, "listener",
				    json_pack("{s:s, s:s, s:s, s:s, s:i, s:b}", "traddr",
					      g_lend.listener.traddr, "trsvcid",
					      g_lend.listener.trsvcid, "nvme_trsvcid",
					      g_lend.listener.nvme_trsvcid, "discovery_trsvcid",
					      g_lend.listener.disc_trsvcid, "lease_ms",
					      (int)g_lend.listener.lease_ms, "mdns",
					      g_lend.listener.mdns));
	return doc;
}

int
lend_save(void)
{
	char path[PATH_MAX];
	json_t *doc;
	int rc;

	rc = lend_identity_ensure();
	if (rc < 0)
		return rc;
	doc = state_json();
	if (doc == NULL)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/lend.json", g_lend.state_dir);
	rc = write_json_atomic(path, doc);
	json_decref(doc);
	if (rc < 0)
		NVL_ERRLOG("cannot save lend records to %s: %s", path, strerror(-rc));
	return rc;
}

static const char *
jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static uint64_t
jint(const json_t *o, const char *k)
{
	json_int_t v = json_integer_value(json_object_get(o, k));

	return v < 0 ? 0 : (uint64_t)v;
}

/* ---- RPC sequences ------------------------------------------------------------------------- */

/*
 * A list of RPC calls run one after the other in-process, stopping at the
 * first error that is not tolerated. Each call: {"method", "params", "ok":
 * SEQ_OK_EXISTS (an "already exists" answer counts as success) | SEQ_OK_ANY
 * (any error does: best-effort teardown)}.
 */
#define SEQ_OK_EXISTS 1
#define SEQ_OK_ANY 2
struct lend_seq {
	json_t *calls;
	size_t idx;
	void (*done)(void *arg, int rc, const char *msg);
	void *arg;
	char msg[256];
};

static void seq_next(void *arg);

static void
seq_finish(struct lend_seq *s, int rc)
{
	s->done(s->arg, rc, s->msg);
	json_decref(s->calls);
	free(s);
}

static void
seq_call_done(void *arg, json_t *result, json_t *error)
{
	struct lend_seq *s = arg;
	json_t *call = json_array_get(s->calls, s->idx);

	(void)result;
	if (error) {
		const char *m = json_string_value(json_object_get(error, "message"));
		json_int_t code = json_integer_value(json_object_get(error, "code"));

		int ok = (int)json_integer_value(json_object_get(call, "ok"));

		if (!((ok & SEQ_OK_ANY) ||
		      ((ok & SEQ_OK_EXISTS) && (code == -EEXIST || (m && strstr(m, "already")))))) {
			snprintf(s->msg, sizeof(s->msg), "%s: %s", jstr(call, "method"),
				 m ? m : "failed");
			seq_finish(s, code < 0 && code > -4096 ? (int)code : -EIO);
			return;
		}
	}
	s->idx++;
	nvl_reactor_msg(nvl_reactor_get(0), seq_next, s);
}

static void
seq_next(void *arg)
{
	struct lend_seq *s = arg;
	json_t *call = json_array_get(s->calls, s->idx);
	int rc;

	if (call == NULL) {
		seq_finish(s, 0);
		return;
	}
	NVL_VERBOSELOG(lend, "rpc %s", jstr(call, "method"));
	rc = nvl_rpc_call_local(jstr(call, "method"), json_object_get(call, "params"),
				seq_call_done, s);
	if (rc < 0) {
		snprintf(s->msg, sizeof(s->msg), "%s: not available (%s)", jstr(call, "method"),
			 strerror(-rc));
		seq_finish(s, rc);
	}
}

/* Run calls (stolen); done(arg, rc, msg) runs exactly once, later. */
static void
seq_run(json_t *calls, void (*done)(void *, int, const char *), void *arg)
{
	struct lend_seq *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		json_decref(calls);
		done(arg, -ENOMEM, "out of memory");
		return;
	}
	s->calls = calls;
	s->done = done;
	s->arg = arg;
	nvl_reactor_msg(nvl_reactor_get(0), seq_next, s);
}

static void
seq_add(json_t *calls, const char *method, json_t *params, int ok)
{
	json_array_append_new(calls, json_pack("{s:s, s:o, s:i}", "method", method, "params",
					       params, "ok", ok));
}

static json_t *
listen_addr_json(const char *port)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "trtype", "TCP", "adrfam",
			 strchr(g_lend.listener.traddr, ':') ? "IPv6" : "IPv4", "traddr",
			 g_lend.listener.traddr, "trsvcid", port);
}

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
		if (pid_uses(e->d_name, st)) {
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
	uuid_random(o->uuid);
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
			 jstr(error, "message")[0] ? jstr(error, "message") : "failed");
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
		blocks = jint(br, "capacity_blocks");
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
	seq_add(calls, "nvmf_delete_subsystem", json_pack("{s:s}", "nqn", o->nqn), SEQ_OK_ANY);
	seq_run(calls, teardown_seq_done, t);
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

static int
offer_make_available(struct lend_offer *o, bool replay, lend_done_fn done, void *arg, char *err,
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
	seq_add(calls, "nvmf_create_subsystem",
		json_pack("{s:s, s:s, s:s, s:b, s:i, s:s, s:b}", "nqn", o->nqn, "serial_number",
			  serial, "model_number", "nvlend lent device", "allow_any_host", 0,
			  "max_namespaces", 1, "owner", "lend", "listed_to_any_host", 1),
		0);
	seq_add(calls, "nvmf_subsystem_add_ns",
		json_pack("{s:s, s:{s:s, s:i, s:s, s:s, s:s}}", "nqn", o->nqn, "namespace",
			  "bdev_name", o->bdev, "nsid", 1, "uuid", o->uuid, "nguid", nguid,
			  "ptpl_file", ptpl),
		0);
	seq_add(calls, "nvmf_subsystem_add_listener",
		json_pack("{s:s, s:o}", "nqn", o->nqn, "listen_address",
			  listen_addr_json(g_lend.listener.nvme_trsvcid)),
		0);
	for (unsigned i = 0; i < o->nborrowers; i++)
		seq_add(calls, "nvmf_subsystem_add_host",
			json_pack("{s:s, s:s}", "nqn", o->nqn, "host", o->borrowers[i].hostnqn),
			SEQ_OK_EXISTS);
	seq_run(calls, avail_seq_done, c);
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
	return offer_make_available(o, false, done, arg, err, errlen);
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

static void
remove_host_done(void *arg, int rc, const char *msg)
{
	char *what = arg;

	if (rc < 0)
		NVL_ERRLOG("%s: %s", what, msg);
	free(what);
}

/* Drop borrower i of o: its host NQN leaves the subsystem, which disconnects its controllers. */
static void
offer_drop_borrower(struct lend_offer *o, unsigned i, const char *reason, bool notify)
{
	struct lend_borrower w = o->borrowers[i];
	json_t *calls = json_array();
	char *what = NULL;

	memmove(&o->borrowers[i], &o->borrowers[i + 1],
		(o->nborrowers - i - 1) * sizeof(o->borrowers[0]));
	o->nborrowers--;
	lend_save();
	if (asprintf(&what, "lend %u: removing %s's host", o->id, w.node) < 0)
		what = NULL;
	seq_add(calls, "nvmf_subsystem_remove_host",
		json_pack("{s:s, s:s}", "nqn", o->nqn, "host", w.hostnqn), SEQ_OK_ANY);
	seq_run(calls, remove_host_done, what);
	if (notify)
		notify_revoked(o, &w, reason);
}

/* ---- unavailable ---------------------------------------------------------------------------- */

struct unavail_ctx {
	struct lend_offer *o;
	lend_done_fn done;
	void *arg;
};

static void
unavail_done(void *arg)
{
	struct unavail_ctx *u = arg;

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

static void
peer_learn(const char *name, const char *node_id, const char *addr, uint16_t port)
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
	seq_add(calls, "nvmf_subsystem_add_host",
		json_pack("{s:s, s:s}", "nqn", o->nqn, "host", b->hostnqn), SEQ_OK_EXISTS);
	seq_run(calls, borrow_host_added, c);
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
			peer_learn(r->node, r->node_id,
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

/* ---- the borrower's side ------------------------------------------------------------------------ */

/* The answer of a peer as (rc, message): ok, or its errno and text. */
static int
answer_rc(const struct lend_call_result *res, char *msg, size_t len)
{
	json_int_t e;

	if (res->rc < 0) {
		snprintf(msg, len, "%s", res->err[0] ? res->err : strerror(-res->rc));
		return res->rc;
	}
	if (json_is_true(json_object_get(res->body, "ok")))
		return 0;
	e = json_integer_value(json_object_get(res->body, "errno"));
	snprintf(msg, len, "%s", jstr(res->body, "error")[0] ? jstr(res->body, "error")
							      : "refused");
	return e > 0 && e < 4096 ? -(int)e : -EIO;
}

static int
need_key(char *err, size_t errlen)
{
	const char *why;
	int rc = lend_key_ensure(&why);

	if (rc < 0)
		snprintf(err, errlen, "cluster key %s: %s", g_lend.key_file, why);
	return rc;
}

struct call_ctx {
	lend_done_fn done;
	void *arg;
	char addr[64];
	uint16_t port;
	char id[96];
};

static void
connect_done(void *arg, const struct lend_call_result *res)
{
	struct call_ctx *c = arg;
	char msg[300];
	int rc = answer_rc(res, msg, sizeof(msg));

	if (rc == 0) {
		peer_learn(res->greet.node, res->greet.node_id, c->addr, c->port);
		c->done(c->arg, 0, NULL,
			json_pack("{s:s, s:s, s:s, s:i}", "name", res->greet.node, "node_id",
				  res->greet.node_id, "addr", c->addr, "port", (int)c->port));
	} else {
		char m[400];

		snprintf(m, sizeof(m), "%s:%u: %s", c->addr, c->port, msg);
		c->done(c->arg, rc, m, NULL);
	}
	free(c);
}

int
lend_connect(const char *addr, uint16_t port, lend_done_fn done, void *arg)
{
	struct call_ctx *c;
	char err[300];
	uint64_t myport = 0;
	int rc = need_key(err, sizeof(err));

	if (rc < 0) {
		done(arg, rc, err, NULL);
		return 0;
	}
	if (g_lend.listener.on)
		nvl_parse_u64(g_lend.listener.trsvcid, 65535, &myport);
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->done = done;
	c->arg = arg;
	nvl_strlcpy(c->addr, addr, sizeof(c->addr));
	c->port = port;
	rc = lend_peer_call(addr, port,
			    json_pack("{s:s, s:s, s:i}", "op", "hello", "addr",
				      g_lend.listener.on ? g_lend.listener.traddr : "", "port",
				      (int)myport),
			    connect_done, c);
	if (rc < 0)
		free(c);
	return rc;
}

/* list: ours and every peer's, gathered */
struct list_ctx {
	lend_done_fn done;
	void *arg;
	json_t *offers, *peers;
	unsigned pending;
};

static void
list_finish(struct list_ctx *l)
{
	struct lend_borrow *b;
	size_t i;
	json_t *it;

	/* what this node holds, seen from here */
	json_array_foreach(l->offers, i, it) {
		TAILQ_FOREACH(b, &g_lend.borrows, link)
			if (b->id == (uint32_t)jint(it, "id") && strcmp(b->lender, jstr(it, "lender")) == 0)
				json_object_set_new(it, "borrowed_here", json_true());
	}
	l->done(l->arg, 0, NULL, json_pack("{s:s, s:o, s:o}", "node", g_lend.node, "offers",
					   l->offers, "peers", l->peers));
	free(l);
}

struct list_one {
	struct list_ctx *l;
	char name[NVL_LEND_NAME_MAX];
	char addr[64];
	uint16_t port;
};

static void
list_one_done(void *arg, const struct lend_call_result *res)
{
	struct list_one *one = arg;
	struct list_ctx *l = one->l;
	char msg[300];
	int rc = answer_rc(res, msg, sizeof(msg));
	json_t *pj = json_pack("{s:s, s:s, s:i, s:b}", "name", one->name, "addr", one->addr,
			       "port", (int)one->port, "reachable", rc == 0);

	if (rc == 0) {
		json_t *offs = json_object_get(res->body, "offers"), *it;
		size_t i;

		json_array_foreach(offs, i, it) {
			if (!json_is_object(it) || !json_is_integer(json_object_get(it, "id")))
				continue;
			/* the lender's name as it said it, not as it is stored here */
			json_object_set_new(it, "lender", json_string(res->greet.node));
			json_array_append(l->offers, it);
		}
	} else {
		json_object_set_new(pj, "error", json_string(msg));
	}
	json_array_append_new(l->peers, pj);
	free(one);
	if (--l->pending == 0)
		list_finish(l);
}

int
lend_list(lend_done_fn done, void *arg)
{
	struct list_ctx *l = calloc(1, sizeof(*l));
	struct lend_offer *o;
	struct lend_peer *p;
	char err[300];

	if (l == NULL)
		return -ENOMEM;
	l->done = done;
	l->arg = arg;
	l->offers = json_array();
	l->peers = json_array();
	l->pending = 1;
	TAILQ_FOREACH(o, &g_lend.offers, link)
		json_array_append_new(l->offers, lend_offer_json(o, true));
	if (need_key(err, sizeof(err)) == 0) {
		TAILQ_FOREACH(p, &g_lend.peers, link) {
			struct list_one *one;

			if (p->port == 0)
				continue;
			one = calloc(1, sizeof(*one));
			if (one == NULL)
				break;
			one->l = l;
			nvl_strlcpy(one->name, p->name, sizeof(one->name));
			nvl_strlcpy(one->addr, p->addr, sizeof(one->addr));
			one->port = p->port;
			l->pending++;
			if (lend_peer_call(p->addr, p->port, json_pack("{s:s}", "op", "list"),
					   list_one_done, one) < 0) {
				l->pending--;
				free(one);
			}
		}
	}
	if (--l->pending == 0)
		list_finish(l);
	return 0;
}

/* "LENDER:ID" or "ID" (one lender connected) -> peer and id. */
static int
parse_lend_ref(const char *ref, struct lend_peer **peer, uint32_t *id, char *err, size_t errlen)
{
	char name[NVL_LEND_NAME_MAX];
	const char *colon = strrchr(ref, ':');
	struct lend_peer *p, *only = NULL;
	unsigned n = 0;
	uint64_t v;

	if (colon) {
		if ((size_t)(colon - ref) >= sizeof(name)) {
			snprintf(err, errlen, "'%s': lender name too long", ref);
			return -EINVAL;
		}
		memcpy(name, ref, (size_t)(colon - ref));
		name[colon - ref] = '\0';
		p = lend_peer_find(name);
		if (p == NULL) {
			snprintf(err, errlen, "no connected lender named '%s' (see 'nvlend lend "
					      "list')", name);
			return -ENOENT;
		}
		ref = colon + 1;
	} else {
		TAILQ_FOREACH(p, &g_lend.peers, link) {
			if (p->port) {
				only = p;
				n++;
			}
		}
		if (n != 1) {
			snprintf(err, errlen, "%s: say which lender: LENDER:ID (see 'nvlend lend "
					      "list')", n ? "several lenders are connected"
							  : "no lender is connected");
			return -EINVAL;
		}
		p = only;
	}
	if (nvl_parse_u64(ref, UINT32_MAX, &v) < 0) {
		snprintf(err, errlen, "'%s' is not a lend id", ref);
		return -EINVAL;
	}
	*peer = p;
	*id = (uint32_t)v;
	return 0;
}

static json_t *
borrow_json(const struct lend_borrow *b)
{
	return json_pack("{s:s, s:i, s:s, s:s, s:s, s:i, s:I, s:I, s:b, s:s, s:s, s:i}", "lender",
			 b->lender, "id", (int)b->id, "uri", b->uri, "hostnqn", g_lend.hostnqn, "nqn",
			 b->nqn, "nsid", (int)b->nsid, "rkey", (json_int_t)b->rkey, "prkey",
			 (json_int_t)b->prkey, "shared", b->shared, "attach_name", b->attach_name,
			 "ref", "", "lease_ms", (int)b->lease_ms);
}

static void
borrow_done(void *arg, const struct lend_call_result *res)
{
	struct call_ctx *c = arg;
	struct lend_borrow *b;
	char msg[300], m[400];
	int rc = answer_rc(res, msg, sizeof(msg));
	json_t *j;

	if (rc < 0) {
		snprintf(m, sizeof(m), "borrow %.90s: %.300s", c->id, msg);
		c->done(c->arg, rc, m, NULL);
		free(c);
		return;
	}
	b = calloc(1, sizeof(*b));
	if (b == NULL) {
		c->done(c->arg, -ENOMEM, "out of memory", NULL);
		free(c);
		return;
	}
	nvl_strlcpy(b->lender, res->greet.node, sizeof(b->lender));
	nvl_strlcpy(b->lender_id, res->greet.node_id, sizeof(b->lender_id));
	nvl_strlcpy(b->addr, c->addr, sizeof(b->addr));
	b->port = c->port;
	b->id = (uint32_t)jint(res->body, "id");
	nvl_strlcpy(b->lease, jstr(res->body, "lease"), sizeof(b->lease));
	nvl_strlcpy(b->uri, jstr(res->body, "uri"), sizeof(b->uri));
	nvl_strlcpy(b->nqn, jstr(res->body, "nqn"), sizeof(b->nqn));
	b->nsid = (uint32_t)jint(res->body, "nsid");
	b->rkey = jint(res->body, "rkey");
	b->prkey = jint(res->body, "prkey");
	b->shared = json_is_true(json_object_get(res->body, "shared"));
	b->lease_ms = (uint32_t)jint(res->body, "lease_ms");
	if (b->lease_ms < 300 || b->lease_ms > 3600000)
		b->lease_ms = LEND_DEFAULT_LEASE_MS;
	snprintf(b->attach_name, sizeof(b->attach_name), "lend-%.15s-%u", b->lender, b->id);
	if (!nvl_lend_hex_valid(b->lease, NVL_LEND_NONCE_HEX) ||
	    strncmp(b->uri, "nvme+tcp://", 11) != 0) {
		free(b);
		c->done(c->arg, -EPROTO, "the lender's answer lacks a lease or a URI", NULL);
		free(c);
		return;
	}
	b->last_ok_us = nvl_now_us();
	b->next_renew_us = b->last_ok_us + b->lease_ms * 1000ULL / 3;
	TAILQ_INSERT_TAIL(&g_lend.borrows, b, link);
	lend_save();
	NVL_NOTICELOG("lend: borrowed %s:%u (%s), lease %u ms kept alive from here", b->lender,
		      b->id, b->uri, b->lease_ms);
	j = borrow_json(b);
	c->done(c->arg, 0, NULL, j);
	free(c);
}

int
lend_borrow(const char *ref, lend_done_fn done, void *arg, char *err, size_t errlen)
{
	struct lend_peer *p;
	struct lend_borrow *b;
	struct call_ctx *c;
	uint32_t id;
	int rc;

	rc = need_key(err, errlen);
	if (rc < 0)
		return rc;
	rc = parse_lend_ref(ref, &p, &id, err, errlen);
	if (rc < 0)
		return rc;
	b = lend_borrow_find(p->name, id);
	if (b) {
		/* already ours: say so again (the CLI attaches it) */
		done(arg, 0, NULL, borrow_json(b));
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->done = done;
	c->arg = arg;
	nvl_strlcpy(c->addr, p->addr, sizeof(c->addr));
	c->port = p->port;
	snprintf(c->id, sizeof(c->id), "%s:%u", p->name, id);
	rc = lend_peer_call(p->addr, p->port,
			    json_pack("{s:s, s:i, s:s}", "op", "borrow", "id", (int)id, "hostnqn",
				      g_lend.hostnqn),
			    borrow_done, c);
	if (rc < 0) {
		free(c);
		snprintf(err, errlen, "cannot reach %s: %s", p->name, strerror(-rc));
	}
	return rc;
}

struct return_ctx {
	lend_done_fn done;
	void *arg;
	char lender[NVL_LEND_NAME_MAX];
	uint32_t id;
};

static void
return_done(void *arg, const struct lend_call_result *res)
{
	struct return_ctx *c = arg;
	struct lend_borrow *b = lend_borrow_find(c->lender, c->id);
	char msg[300];
	int rc = answer_rc(res, msg, sizeof(msg));
	json_t *j = json_pack("{s:s, s:i}", "lender", c->lender, "id", (int)c->id);

	if (rc < 0 && rc != -ENOENT) {
		/* the lender is away: stop renewing, the lease runs out there */
		NVL_WARNLOG("lend: returning %s:%u: %s; the borrow ends when its lease expires",
			    c->lender, c->id, msg);
		json_object_set_new(j, "warning", json_string(msg));
	}
	if (b) {
		TAILQ_REMOVE(&g_lend.borrows, b, link);
		free(b);
		lend_save();
	}
	NVL_NOTICELOG("lend: returned %s:%u", c->lender, c->id);
	c->done(c->arg, 0, NULL, j);
	free(c);
}

int
lend_return(const char *ref, lend_done_fn done, void *arg, char *err, size_t errlen)
{
	struct lend_borrow *b = NULL;
	struct return_ctx *c;
	const char *colon = strrchr(ref, ':');
	uint64_t v;
	int rc;

	if (nvl_parse_u64(colon ? colon + 1 : ref, UINT32_MAX, &v) < 0) {
		snprintf(err, errlen, "'%s' is not a lend id", ref);
		return -EINVAL;
	}
	TAILQ_FOREACH(b, &g_lend.borrows, link) {
		if (b->id != v)
			continue;
		if (colon && (strncmp(b->lender, ref, (size_t)(colon - ref)) != 0 ||
			      b->lender[colon - ref] != '\0'))
			continue;
		break;
	}
	if (b == NULL) {
		snprintf(err, errlen, "this node has not borrowed %s", ref);
		return -ENOENT;
	}
	rc = need_key(err, errlen);
	if (rc < 0)
		return rc;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->done = done;
	c->arg = arg;
	nvl_strlcpy(c->lender, b->lender, sizeof(c->lender));
	c->id = b->id;
	rc = lend_peer_call(b->addr, b->port,
			    json_pack("{s:s, s:i, s:s}", "op", "return", "id", (int)b->id, "lease",
				      b->lease),
			    return_done, c);
	if (rc < 0)
		free(c);
	return rc;
}

json_t *
lend_borrows_json(void)
{
	json_t *arr = json_array();
	struct lend_borrow *b;

	TAILQ_FOREACH(b, &g_lend.borrows, link) {
		json_t *j = borrow_json(b);

		json_object_set_new(j, "lease_age_ms",
				    json_integer((json_int_t)((nvl_now_us() - b->last_ok_us) / 1000)));
		json_array_append_new(arr, j);
	}
	return arr;
}

json_t *
lend_node_json(void)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "name", g_lend.node, "node_id",
			      g_lend.node_id, "hostnqn", g_lend.hostnqn, "state_dir",
			      g_lend.state_dir, "key_file", g_lend.key_file, "key_loaded",
			      g_lend.have_key);
	struct lend_peer *p;
	json_t *peers = json_array();

	if (g_lend.listener.on)
		json_object_set_new(j, "listener",
				    json_pack("{s:s, s:s, s:s, s:s, s:i, s:b}", "traddr",
					      g_lend.listener.traddr, "trsvcid",
					      g_lend.listener.trsvcid, "nvme_trsvcid",
					      g_lend.listener.nvme_trsvcid, "discovery_trsvcid",
					      g_lend.listener.disc_trsvcid, "lease_ms",
					      (int)g_lend.listener.lease_ms, "mdns",
					      g_lend.listener.mdns));
	TAILQ_FOREACH(p, &g_lend.peers, link)
		json_array_append_new(peers, json_pack("{s:s, s:s, s:s, s:i}", "name", p->name,
						       "node_id", p->node_id, "addr", p->addr,
						       "port", (int)p->port));
	json_object_set_new(j, "peers", peers);
	return j;
}

/* ---- leases: expiry (lender) and renewal (borrower) ---------------------------------------------- */

struct renew_ctx {
	char lender[NVL_LEND_NAME_MAX];
	uint32_t id;
	char lease[NVL_LEND_NONCE_HEX + 1];
};

static void
renew_done(void *arg, const struct lend_call_result *res)
{
	struct renew_ctx *c = arg;
	struct lend_borrow *b = lend_borrow_find(c->lender, c->id);
	char msg[300];
	int rc = answer_rc(res, msg, sizeof(msg));
	uint64_t now = nvl_now_us();

	if (b == NULL || strcmp(b->lease, c->lease) != 0 || g_lend.stopping) {
		free(c);
		return;
	}
	b->renewing = false;
	if (rc == 0) {
		if (now - b->last_ok_us > b->lease_ms * 1000ULL / 2)
			NVL_NOTICELOG("lend: lease of %s:%u renewed again", b->lender, b->id);
		b->last_ok_us = now;
		b->next_renew_us = now + b->lease_ms * 1000ULL / 3;
		NVL_TRACELOG(lend, "lease of %s:%u renewed", b->lender, b->id);
	} else if (rc == -ENOENT) {
		NVL_WARNLOG("lend: %s says our borrow of its lend %u is gone (%s); device %s fails "
			    "its I/O now",
			    b->lender, b->id, msg, b->attach_name);
		TAILQ_REMOVE(&g_lend.borrows, b, link);
		free(b);
		lend_save();
	} else {
		NVL_LOGLVL(1, lend, "lend: cannot renew the lease of %s:%u: %s", b->lender, b->id,
			   msg);
		b->next_renew_us = now + 500000;
	}
	free(c);
}

static void
lend_tick(void *arg)
{
	uint64_t now = nvl_now_us();
	struct lend_offer *o;
	struct lend_borrow *b;

	(void)arg;
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
	TAILQ_FOREACH(b, &g_lend.borrows, link) {
		struct renew_ctx *c;

		if (b->renewing || now < b->next_renew_us || !g_lend.have_key)
			continue;
		c = calloc(1, sizeof(*c));
		if (c == NULL)
			continue;
		nvl_strlcpy(c->lender, b->lender, sizeof(c->lender));
		c->id = b->id;
		nvl_strlcpy(c->lease, b->lease, sizeof(c->lease));
		b->renewing = true;
		if (lend_peer_call(b->addr, b->port,
				   json_pack("{s:s, s:i, s:s}", "op", "renew", "id", (int)b->id,
					     "lease", b->lease),
				   renew_done, c) < 0) {
			b->renewing = false;
			free(c);
		}
	}
}

/* ---- listener --------------------------------------------------------------------------------- */

static void
disc_listener_done(void *arg, int rc, const char *msg)
{
	(void)arg;
	if (rc < 0)
		NVL_ERRLOG("lend: discovery listener: %s", msg);
}

int
lend_listen(const struct lend_listener *l, char *err, size_t errlen)
{
	const char *why;
	int rc;

	rc = lend_key_ensure(&why);
	if (rc < 0) {
		snprintf(err, errlen, "no cluster key, so no peer can be authenticated: %s: %s",
			 g_lend.key_file, why);
		return rc;
	}
	lend_peer_stop();
	rc = lend_peer_listen(l->traddr, l->trsvcid);
	if (rc < 0) {
		snprintf(err, errlen, "cannot listen on %s port %s: %s", l->traddr, l->trsvcid,
			 strerror(-rc));
		if (g_lend.listener.on)
			lend_peer_listen(g_lend.listener.traddr, g_lend.listener.trsvcid);
		return rc;
	}
	g_lend.listener = *l;
	g_lend.listener.on = true;
	if (l->mdns) {
		char merr[300];

		rc = lend_mdns_publish(merr, sizeof(merr));
		if (rc < 0) {
			snprintf(err, errlen, "mDNS: %s", merr);
			g_lend.listener.mdns = false;
			lend_save();
			return rc;
		}
	} else {
		lend_mdns_withdraw();
	}
	if (l->disc_trsvcid[0]) {
		json_t *calls = json_array();

		seq_add(calls, "nvmf_subsystem_add_listener",
			json_pack("{s:s, s:o}", "nqn", "nqn.2014-08.org.nvmexpress.discovery",
				  "listen_address", listen_addr_json(l->disc_trsvcid)),
			SEQ_OK_EXISTS);
		seq_run(calls, disc_listener_done, NULL);
	}
	NVL_NOTICELOG("lend: node %s (%s) listens for peers on %s port %s; lent devices on NVMe/TCP "
		      "port %s; leases %u ms",
		      g_lend.node, g_lend.node_id, l->traddr, l->trsvcid, l->nvme_trsvcid,
		      l->lease_ms);
	return lend_save();
}

/* ---- the "lend" subsystem of the daemon: load, replay, stop ------------------------------------ */

static int
load_state(void)
{
	char path[PATH_MAX];
	json_error_t jerr;
	json_t *doc, *it, *w;
	size_t i, j;

	snprintf(path, sizeof(path), "%s/lend.json", g_lend.state_dir);
	if (access(path, F_OK) != 0)
		return 0;
	doc = json_load_file(path, 0, &jerr);
	if (doc == NULL) {
		NVL_ERRLOG("lend: cannot read %s: %s (line %d)", path, jerr.text, jerr.line);
		return -EINVAL;
	}
	g_lend.next_id = (uint32_t)jint(doc, "next_id");
	if (g_lend.next_id == 0)
		g_lend.next_id = 1;
	it = json_object_get(doc, "listener");
	if (json_is_object(it)) {
		struct lend_listener *l = &g_lend.listener;

		nvl_strlcpy(l->traddr, jstr(it, "traddr"), sizeof(l->traddr));
		nvl_strlcpy(l->trsvcid, jstr(it, "trsvcid"), sizeof(l->trsvcid));
		nvl_strlcpy(l->nvme_trsvcid, jstr(it, "nvme_trsvcid"), sizeof(l->nvme_trsvcid));
		nvl_strlcpy(l->disc_trsvcid, jstr(it, "discovery_trsvcid"), sizeof(l->disc_trsvcid));
		l->lease_ms = (uint32_t)jint(it, "lease_ms");
		if (l->lease_ms == 0)
			l->lease_ms = LEND_DEFAULT_LEASE_MS;
		l->mdns = json_is_true(json_object_get(it, "mdns"));
		l->on = true; /* started in lend_start */
	}
	json_array_foreach(json_object_get(doc, "offers"), i, it) {
		struct lend_offer *o = calloc(1, sizeof(*o));

		if (o == NULL || kind_parse(jstr(it, "kind"), &o->kind) < 0) {
			free(o);
			continue;
		}
		o->id = (uint32_t)jint(it, "id");
		o->hold_fd = -1;
		nvl_strlcpy(o->device, jstr(it, "device"), sizeof(o->device));
		nvl_strlcpy(o->bdev, jstr(it, "bdev"), sizeof(o->bdev));
		nvl_strlcpy(o->nqn, jstr(it, "nqn"), sizeof(o->nqn));
		nvl_strlcpy(o->uuid, jstr(it, "uuid"), sizeof(o->uuid));
		o->shared = json_is_true(json_object_get(it, "shared"));
		o->state = strcmp(jstr(it, "state"), "available") == 0 ? LEND_AVAILABLE
								      : LEND_UNAVAILABLE;
		o->last_rkey = jint(it, "last_rkey");
		json_array_foreach(json_object_get(it, "borrowers"), j, w) {
			struct lend_borrower *b;

			if (o->nborrowers == LEND_MAX_BORROWERS)
				break;
			b = &o->borrowers[o->nborrowers++];
			nvl_strlcpy(b->node, jstr(w, "node"), sizeof(b->node));
			nvl_strlcpy(b->node_id, jstr(w, "node_id"), sizeof(b->node_id));
			nvl_strlcpy(b->hostnqn, jstr(w, "hostnqn"), sizeof(b->hostnqn));
			nvl_strlcpy(b->lease, jstr(w, "lease"), sizeof(b->lease));
			b->rkey = jint(w, "rkey");
		}
		if (o->id >= g_lend.next_id)
			g_lend.next_id = o->id + 1;
		TAILQ_INSERT_TAIL(&g_lend.offers, o, link);
	}
	json_array_foreach(json_object_get(doc, "peers"), i, it) {
		struct lend_peer *p = calloc(1, sizeof(*p));

		if (p == NULL)
			break;
		nvl_strlcpy(p->name, jstr(it, "name"), sizeof(p->name));
		nvl_strlcpy(p->node_id, jstr(it, "node_id"), sizeof(p->node_id));
		nvl_strlcpy(p->addr, jstr(it, "addr"), sizeof(p->addr));
		p->port = (uint16_t)jint(it, "port");
		TAILQ_INSERT_TAIL(&g_lend.peers, p, link);
	}
	json_array_foreach(json_object_get(doc, "borrows"), i, it) {
		struct lend_borrow *b = calloc(1, sizeof(*b));

		if (b == NULL)
			break;
		nvl_strlcpy(b->lender, jstr(it, "lender"), sizeof(b->lender));
		nvl_strlcpy(b->lender_id, jstr(it, "lender_id"), sizeof(b->lender_id));
		nvl_strlcpy(b->addr, jstr(it, "addr"), sizeof(b->addr));
		b->port = (uint16_t)jint(it, "port");
		b->id = (uint32_t)jint(it, "id");
		nvl_strlcpy(b->lease, jstr(it, "lease"), sizeof(b->lease));
		nvl_strlcpy(b->uri, jstr(it, "uri"), sizeof(b->uri));
		nvl_strlcpy(b->nqn, jstr(it, "nqn"), sizeof(b->nqn));
		b->nsid = (uint32_t)jint(it, "nsid");
		b->rkey = jint(it, "rkey");
		b->prkey = jint(it, "prkey");
		b->shared = json_is_true(json_object_get(it, "shared"));
		b->lease_ms = (uint32_t)jint(it, "lease_ms");
		if (b->lease_ms < 300)
			b->lease_ms = LEND_DEFAULT_LEASE_MS;
		nvl_strlcpy(b->attach_name, jstr(it, "attach_name"), sizeof(b->attach_name));
		b->last_ok_us = nvl_now_us();
		TAILQ_INSERT_TAIL(&g_lend.borrows, b, link);
	}
	json_decref(doc);
	return 0;
}

/*
 * The state dir and this node's identity exist from the first use of
 * lending (or --node-name) on: a daemon that never lends writes nothing.
 * \return 0 or -errno (logged).
 */
int
lend_identity_ensure(void)
{
	int rc;

	if (g_lend.node_id[0] && g_lend.identity_saved)
		return 0;
	rc = nvl_mkdir_private(g_lend.state_dir);
	if (rc < 0) {
		NVL_ERRLOG("lend: state dir %s: %s", g_lend.state_dir,
			   rc == -EPERM ? "belongs to another user" : strerror(-rc));
		return rc;
	}
	rc = node_identity_load(true);
	if (rc < 0)
		NVL_ERRLOG("lend: cannot save the node identity in %s: %s", g_lend.state_dir,
			   strerror(-rc));
	return rc;
}

static int
lend_init(void)
{
	char def[PATH_MAX];
	int rc;

	if (g_lend.state_dir[0] == '\0')
		nvl_strlcpy(g_lend.state_dir, nvl_lend_default_state_dir(def, sizeof(def)),
			    sizeof(g_lend.state_dir));
	if (g_lend.key_file[0] == '\0')
		nvl_strlcpy(g_lend.key_file, g_default_key, sizeof(g_lend.key_file));
	if (g_lend.opt_name)
		return lend_identity_ensure() < 0 ? -EIO : load_state();
	rc = node_identity_load(false);
	if (rc < 0)
		return rc;
	return load_state();
}

static void
replay_done(void *arg, int rc, const char *msg, json_t *result)
{
	(void)arg;
	(void)rc;
	(void)msg;
	json_decref(result);
}

/* After the -c configuration: the listener, then every available offer with its borrowers. */
static void
lend_start(void)
{
	uint64_t now = nvl_now_us();
	struct lend_offer *o;
	char err[300];

	g_lend.started = true;
	g_lend.tick = nvl_timer_create(lend_tick, NULL, 250000, 250000);
	if (g_lend.listener.on) {
		struct lend_listener l = g_lend.listener;

		g_lend.listener.on = false;
		if (lend_listen(&l, err, sizeof(err)) < 0) {
			NVL_ERRLOG("lend: %s; lent devices stay unavailable until 'nvlend lend "
				   "listen'", err);
			g_lend.listener = l;
			g_lend.listener.on = false;
		}
	}
	if (!TAILQ_EMPTY(&g_lend.borrows)) {
		const char *why;

		/* our borrows' leases need the key even if this node does not listen */
		if (lend_key_ensure(&why) < 0)
			NVL_ERRLOG("lend: cluster key %s: %s; the leases of this node's borrows "
				   "cannot be renewed",
				   g_lend.key_file, why);
	}
	TAILQ_FOREACH(o, &g_lend.offers, link) {
		if (o->state != LEND_AVAILABLE)
			continue;
		/* live leases are honoured: a full lease from now to renew them */
		for (unsigned i = 0; i < o->nborrowers; i++)
			o->borrowers[i].deadline_us = now + (uint64_t)g_lend.listener.lease_ms * 1000;
		o->state = LEND_UNAVAILABLE;
		if (offer_make_available(o, true, replay_done, NULL, err, sizeof(err)) < 0) {
			NVL_ERRLOG("lend %u: %s stays unavailable: %s", o->id, o->device, err);
			o->nborrowers = 0;
			lend_save();
		}
	}
}

static nvl_app_done_fn g_fini_done;
static struct nvl_timer *g_fini_wait;
static unsigned g_fini_polls;

static void
fini_poll(void *arg)
{
	struct lend_offer *o;
	struct lend_peer *p;
	struct lend_borrow *b;

	(void)arg;
	if (lend_peer_calls_inflight() && ++g_fini_polls < 200)
		return;
	nvl_timer_destroy(g_fini_wait);
	while ((o = TAILQ_FIRST(&g_lend.offers)) != NULL) {
		if (o->hold_fd >= 0)
			close(o->hold_fd);
		TAILQ_REMOVE(&g_lend.offers, o, link);
		free(o);
	}
	while ((p = TAILQ_FIRST(&g_lend.peers)) != NULL) {
		TAILQ_REMOVE(&g_lend.peers, p, link);
		free(p);
	}
	while ((b = TAILQ_FIRST(&g_lend.borrows)) != NULL) {
		TAILQ_REMOVE(&g_lend.borrows, b, link);
		free(b);
	}
	free(g_lend.opt_name);
	g_lend.opt_name = NULL;
	g_fini_done();
}

static void
lend_fini(nvl_app_done_fn done)
{
	g_lend.stopping = true;
	lend_mdns_withdraw();
	nvl_timer_destroy(g_lend.tick);
	g_lend.tick = NULL;
	lend_peer_stop();
	g_fini_done = done;
	g_fini_wait = nvl_timer_create(fini_poll, NULL, 0, 25000);
	if (g_fini_wait == NULL)
		done();
}

static struct nvl_subsystem g_lend_subsys = {
	.name = "lend",
	.order = 40, /* after nvmf (30): stops before the target does */
	.init = lend_init,
	.start = lend_start,
	.fini = lend_fini,
};
NVL_SUBSYSTEM_REGISTER(g_lend_subsys)
