/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The borrower's side of device lending (docs/lending.md): connect, list
 * (ours and every peer's offers), borrow, return, and keeping the leases of
 * what this node borrowed alive. Peer calls run in lend_peer.c's threads;
 * their answers arrive here on reactor 0.
 */
#include "lend/lend_internal.h"
#include "proto/nvme_auth.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

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
	snprintf(msg, len, "%s", lend_jstr(res->body, "error")[0] ? lend_jstr(res->body, "error")
							      : "refused");
	return e > 0 && e < 4096 ? -(int)e : -EIO;
}

static int
need_key(char *err, size_t errlen)
{
	const char *why;
	int rc = lend_key_ensure(&why);

	if (rc < 0)
		snprintf(err, errlen, "cluster key %.200s: %s", g_lend.key_file, why);
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
		lend_peer_learn(res->greet.node, res->greet.node_id, c->addr, c->port);
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
			if (b->id == (uint32_t)lend_jint(it, "id") && strcmp(b->lender, lend_jstr(it, "lender")) == 0)
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

/*
 * The borrow's DH-HMAC-CHAP secrets (the lender derives the same: see
 * lend_offer.c) into the lend_borrow answer, for the `nvlend attach` the CLI
 * runs (NVLEND_DHCHAP_KEY / NVLEND_DHCHAP_CTRLR_KEY). Only that answer has
 * them (the RPC socket is the daemon's user's); lists do not.
 */
static json_t *
with_secrets(json_t *j, const struct lend_borrow *b)
{
	char host[NVL_DHCHAP_SECRET_MAX], ctrl[NVL_DHCHAP_SECRET_MAX];
	const char *why;

	if (j && lend_key_ensure(&why) == 0 &&
	    nvl_lend_dhchap_secret(&g_lend.key, "host", b->nqn, g_lend.hostnqn, b->lease, host,
				   sizeof(host)) == 0 &&
	    nvl_lend_dhchap_secret(&g_lend.key, "ctrl", b->nqn, g_lend.hostnqn, b->lease, ctrl,
				   sizeof(ctrl)) == 0) {
		json_object_set_new(j, "dhchap_key", json_string(host));
		json_object_set_new(j, "dhchap_ctrlr_key", json_string(ctrl));
	}
	OPENSSL_cleanse(host, sizeof(host));
	OPENSSL_cleanse(ctrl, sizeof(ctrl));
	return j;
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
	b->id = (uint32_t)lend_jint(res->body, "id");
	nvl_strlcpy(b->lease, lend_jstr(res->body, "lease"), sizeof(b->lease));
	nvl_strlcpy(b->uri, lend_jstr(res->body, "uri"), sizeof(b->uri));
	nvl_strlcpy(b->nqn, lend_jstr(res->body, "nqn"), sizeof(b->nqn));
	b->nsid = (uint32_t)lend_jint(res->body, "nsid");
	b->rkey = lend_jint(res->body, "rkey");
	b->prkey = lend_jint(res->body, "prkey");
	b->shared = json_is_true(json_object_get(res->body, "shared"));
	b->lease_ms = (uint32_t)lend_jint(res->body, "lease_ms");
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
	j = with_secrets(borrow_json(b), b);
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
		done(arg, 0, NULL, with_secrets(borrow_json(b), b));
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

/* ---- leases: the borrower's side ------------------------------------------------------------- */

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

void
lend_borrows_renew(uint64_t now)
{
	struct lend_borrow *b;

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
