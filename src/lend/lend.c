/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The lending service (docs/lending.md): node identity, lend records,
 * their persistence and replay, the RPC sequences that build targets, the
 * listener, the lease timer, start and stop. The lender's side of the state
 * machine is lend_offer.c, the borrower's lend_borrow.c, the peer protocol
 * lend_proto.c (codec) and lend_peer.c (sockets).
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
#include "bdev/bdev.h"
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

void
lend_uuid_random(char *out)
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
		lend_uuid_random(g_lend.node_id);
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

const char *
lend_jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

uint64_t
lend_jint(const json_t *o, const char *k)
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
			snprintf(s->msg, sizeof(s->msg), "%s: %s", lend_jstr(call, "method"),
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
	NVL_VERBOSELOG(lend, "rpc %s", lend_jstr(call, "method"));
	rc = nvl_rpc_call_local(lend_jstr(call, "method"), json_object_get(call, "params"),
				seq_call_done, s);
	if (rc < 0) {
		snprintf(s->msg, sizeof(s->msg), "%s: not available (%s)", lend_jstr(call, "method"),
			 strerror(-rc));
		seq_finish(s, rc);
	}
}

/* Run calls (stolen); done(arg, rc, msg) runs exactly once, later. */
void
lend_seq_run(json_t *calls, void (*done)(void *, int, const char *), void *arg)
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

void
lend_seq_add(json_t *calls, const char *method, json_t *params, int ok)
{
	json_array_append_new(calls, json_pack("{s:s, s:o, s:i}", "method", method, "params",
					       params, "ok", ok));
}

json_t *
lend_listen_addr_json(const char *port)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "trtype", "TCP", "adrfam",
			 strchr(g_lend.listener.traddr, ':') ? "IPv6" : "IPv4", "traddr",
			 g_lend.listener.traddr, "trsvcid", port);
}

/* ---- leases: expiry (lender, lend_offer.c) and renewal (borrower, lend_borrow.c) ---------- */

static void
lend_tick(void *arg)
{
	uint64_t now = nvl_now_us();

	(void)arg;
	lend_offers_expire(now);
	lend_borrows_renew(now);
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
	if (lend_peer_listening() && g_lend.listener.on &&
	    strcmp(g_lend.listener.traddr, l->traddr) == 0 &&
	    strcmp(g_lend.listener.trsvcid, l->trsvcid) == 0) {
		/* the same address: the socket stays (closed, the fd store's copy
		 * would still hold the port a moment, and the new bind fail) */
		rc = 0;
	} else {
		lend_peer_stop();
		rc = lend_peer_listen(l->traddr, l->trsvcid);
	}
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

		lend_seq_add(calls, "nvmf_subsystem_add_listener",
			json_pack("{s:s, s:o}", "nqn", "nqn.2014-08.org.nvmexpress.discovery",
				  "listen_address", lend_listen_addr_json(l->disc_trsvcid)),
			SEQ_OK_EXISTS);
		lend_seq_run(calls, disc_listener_done, NULL);
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
	g_lend.next_id = (uint32_t)lend_jint(doc, "next_id");
	if (g_lend.next_id == 0)
		g_lend.next_id = 1;
	it = json_object_get(doc, "listener");
	if (json_is_object(it)) {
		struct lend_listener *l = &g_lend.listener;

		nvl_strlcpy(l->traddr, lend_jstr(it, "traddr"), sizeof(l->traddr));
		nvl_strlcpy(l->trsvcid, lend_jstr(it, "trsvcid"), sizeof(l->trsvcid));
		nvl_strlcpy(l->nvme_trsvcid, lend_jstr(it, "nvme_trsvcid"), sizeof(l->nvme_trsvcid));
		nvl_strlcpy(l->disc_trsvcid, lend_jstr(it, "discovery_trsvcid"), sizeof(l->disc_trsvcid));
		l->lease_ms = (uint32_t)lend_jint(it, "lease_ms");
		if (l->lease_ms == 0)
			l->lease_ms = LEND_DEFAULT_LEASE_MS;
		l->mdns = json_is_true(json_object_get(it, "mdns"));
		l->on = true; /* started in lend_start */
	}
	json_array_foreach(json_object_get(doc, "offers"), i, it) {
		struct lend_offer *o = calloc(1, sizeof(*o));

		if (o == NULL || kind_parse(lend_jstr(it, "kind"), &o->kind) < 0) {
			free(o);
			continue;
		}
		o->id = (uint32_t)lend_jint(it, "id");
		o->hold_fd = -1;
		nvl_strlcpy(o->device, lend_jstr(it, "device"), sizeof(o->device));
		nvl_strlcpy(o->bdev, lend_jstr(it, "bdev"), sizeof(o->bdev));
		nvl_strlcpy(o->nqn, lend_jstr(it, "nqn"), sizeof(o->nqn));
		nvl_strlcpy(o->uuid, lend_jstr(it, "uuid"), sizeof(o->uuid));
		o->shared = json_is_true(json_object_get(it, "shared"));
		o->state = strcmp(lend_jstr(it, "state"), "available") == 0 ? LEND_AVAILABLE
								      : LEND_UNAVAILABLE;
		o->last_rkey = lend_jint(it, "last_rkey");
		json_array_foreach(json_object_get(it, "borrowers"), j, w) {
			struct lend_borrower *b;

			if (o->nborrowers == LEND_MAX_BORROWERS)
				break;
			b = &o->borrowers[o->nborrowers++];
			nvl_strlcpy(b->node, lend_jstr(w, "node"), sizeof(b->node));
			nvl_strlcpy(b->node_id, lend_jstr(w, "node_id"), sizeof(b->node_id));
			nvl_strlcpy(b->hostnqn, lend_jstr(w, "hostnqn"), sizeof(b->hostnqn));
			nvl_strlcpy(b->lease, lend_jstr(w, "lease"), sizeof(b->lease));
			b->rkey = lend_jint(w, "rkey");
		}
		if (o->id >= g_lend.next_id)
			g_lend.next_id = o->id + 1;
		TAILQ_INSERT_TAIL(&g_lend.offers, o, link);
	}
	json_array_foreach(json_object_get(doc, "peers"), i, it) {
		struct lend_peer *p = calloc(1, sizeof(*p));

		if (p == NULL)
			break;
		nvl_strlcpy(p->name, lend_jstr(it, "name"), sizeof(p->name));
		nvl_strlcpy(p->node_id, lend_jstr(it, "node_id"), sizeof(p->node_id));
		nvl_strlcpy(p->addr, lend_jstr(it, "addr"), sizeof(p->addr));
		p->port = (uint16_t)lend_jint(it, "port");
		TAILQ_INSERT_TAIL(&g_lend.peers, p, link);
	}
	json_array_foreach(json_object_get(doc, "borrows"), i, it) {
		struct lend_borrow *b = calloc(1, sizeof(*b));

		if (b == NULL)
			break;
		nvl_strlcpy(b->lender, lend_jstr(it, "lender"), sizeof(b->lender));
		nvl_strlcpy(b->lender_id, lend_jstr(it, "lender_id"), sizeof(b->lender_id));
		nvl_strlcpy(b->addr, lend_jstr(it, "addr"), sizeof(b->addr));
		b->port = (uint16_t)lend_jint(it, "port");
		b->id = (uint32_t)lend_jint(it, "id");
		nvl_strlcpy(b->lease, lend_jstr(it, "lease"), sizeof(b->lease));
		nvl_strlcpy(b->uri, lend_jstr(it, "uri"), sizeof(b->uri));
		nvl_strlcpy(b->nqn, lend_jstr(it, "nqn"), sizeof(b->nqn));
		b->nsid = (uint32_t)lend_jint(it, "nsid");
		b->rkey = lend_jint(it, "rkey");
		b->prkey = lend_jint(it, "prkey");
		b->shared = json_is_true(json_object_get(it, "shared"));
		b->lease_ms = (uint32_t)lend_jint(it, "lease_ms");
		if (b->lease_ms < 300)
			b->lease_ms = LEND_DEFAULT_LEASE_MS;
		nvl_strlcpy(b->attach_name, lend_jstr(it, "attach_name"), sizeof(b->attach_name));
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

int
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
	/* its listeners are taken (or made): what is left in the store may go */
	nvl_fdstore_unhold_untaken();
}

/* After the -c configuration: the listener, then every available offer with its borrowers. */
void
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
		/* a restart's or upgrade's kept listeners wait for the target */
		nvl_fdstore_hold_untaken();
		if (lend_offer_make_available(o, true, replay_done, NULL, err, sizeof(err)) < 0) {
			nvl_fdstore_unhold_untaken();
			NVL_ERRLOG("lend %u: %s stays unavailable: %s", o->id, o->device, err);
			o->nborrowers = 0;
			lend_save();
		}
	}
}

/* An upgrade's hand-over (the old worker, which never serves again): the
 * O_EXCL holds of lent block devices go now, not when this process ends,
 * so the new worker's rebuild of the targets can take them (a rolled-back
 * upgrade starts this binary afresh, which takes them again). */
static void
lend_keep_suspend(void (*done)(void))
{
	struct lend_offer *o;

	TAILQ_FOREACH(o, &g_lend.offers, link) {
		if (o->hold_fd >= 0) {
			close(o->hold_fd);
			o->hold_fd = -1;
		}
	}
	done();
}

static void __attribute__((constructor))
lend_keep_register(void)
{
	(void)nvl_fdstore_at_suspend(lend_keep_suspend);
}

static void (*g_fini_done)(void);
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

void
lend_fini(void (*done)(void))
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
