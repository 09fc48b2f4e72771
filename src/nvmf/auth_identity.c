/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Host identity at Connect (security issue item 4; docs/security.md):
 * a host NQN bound to local credentials, and host identifiers that cannot be
 * borrowed.
 *
 *  - A host entry of a subsystem may name a uid and/or a gid
 *    (nvmf_subsystem_add_host "uid"/"gid", an nvlend extension). Over a
 *    transport that knows the peer's credentials (shm: SO_PEERCRED and
 *    SO_PEERGROUPS, taken by the kernel at connect(2), not sent by the peer),
 *    only root, that uid, or a member of that group may connect under the
 *    NQN. Over a transport without credentials (TCP) a bound NQN can only be
 *    claimed through DH-HMAC-CHAP (the entry has a dhchap_key, auth.c):
 *    without a key anyone who reaches the port could claim it, so it is
 *    refused.
 *  - An NQN without an entry (reachable through allow_any_host) or with an
 *    entry that names no uid/gid is bound to nobody: any peer may use it.
 *  - A host identifier names one host (Base 2.0 5.27.1.25; reservations key
 *    on it). A Connect whose hostid is in use by a live controller of the
 *    same subsystem under another host NQN is refused, so a host that read a
 *    registrant's hostid from a Reservation Report cannot act as that
 *    registrant. The pairing outlives the controller while the hostid holds
 *    a registration on one of the subsystem's namespaces: a dead registrant's
 *    hostid (a fenced, or not yet fenced, holder) stays bound to its NQN. The
 *    table of pairings (g_ids) keeps only hostids that are live or registered,
 *    so its size is bounded by the controllers and registrants there are. It
 *    lives in memory: after a daemon restart (PTPL registrations come back)
 *    a hostid is bound again by the first NQN that connects with it. The
 *    discovery subsystem, which has no reservations, is exempt.
 *
 * Threading: called by nvl_nvmf_connect() with g_nvmf.lock held, on the
 * reactor the host connects on. Reads host entries (changed on reactor 0
 * under the same lock) and the subsystem's controller list.
 */
#include "nvmf/nvmf_internal.h"
#include "util/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nvmf_host *
nvmf_host_find(const struct nvl_subsys *s, const char *hostnqn)
{
	struct nvmf_host *h;

	TAILQ_FOREACH(h, &s->hosts, link)
		if (strcmp(h->nqn, hostnqn) == 0)
			return h;
	return NULL;
}

static void
set_why(const struct nvl_connect_info *ci, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
set_why(const struct nvl_connect_info *ci, const char *fmt, ...)
{
	va_list ap;

	if (ci->why == NULL || ci->why_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(ci->why, ci->why_len, fmt, ap);
	va_end(ap);
}

static bool
cred_in_group(const struct nvl_connect_info *ci, uint32_t gid)
{
	if (ci->gid == gid)
		return true;
	for (unsigned i = 0; i < ci->ngroups; i++)
		if (ci->groups[i] == gid)
			return true;
	return false;
}

static void
binding_str(const struct nvmf_host *h, char *buf, size_t len)
{
	if (h->has_uid && h->has_gid)
		snprintf(buf, len, "uid %u or group %u", h->uid, h->gid);
	else if (h->has_uid)
		snprintf(buf, len, "uid %u", h->uid);
	else
		snprintf(buf, len, "group %u", h->gid);
}

/* -EPERM when ci may not claim the host entry h (NULL: no entry, unbound). */
static int
cred_check(const struct nvl_subsys *s, const struct nvmf_host *h,
	   const struct nvl_connect_info *ci)
{
	char bound[64];

	if (h == NULL || (!h->has_uid && !h->has_gid))
		return 0;
	binding_str(h, bound, sizeof(bound));
	if (!ci->has_cred) {
		/* no credentials on this transport: only a DH-HMAC-CHAP key proves it */
		if (nvmf_auth_host_has_key(h))
			return 0;
		set_why(ci, "host NQN %s is bound to local %s and has no DH-HMAC-CHAP key: "
			    "it cannot connect over %s", ci->hostnqn, bound, ci->listener->trtype);
		NVL_WARNLOG("%s: refusing host %s over %s: the NQN is bound to local %s and has "
			    "no DH-HMAC-CHAP key", s->nqn, ci->hostnqn, ci->listener->trtype, bound);
		return -EPERM;
	}
	if (ci->uid == 0)
		return 0; /* root may claim any NQN (it could read any key file too) */
	if (h->has_uid && ci->uid == h->uid)
		return 0;
	if (h->has_gid && cred_in_group(ci, h->gid))
		return 0;
	set_why(ci, "host NQN %s is bound to %s; peer uid %u (pid %u) may not claim it",
		ci->hostnqn, bound, ci->uid, ci->pid);
	NVL_WARNLOG("%s: refusing host %s from uid %u gid %u pid %u: the NQN is bound to %s",
		    s->nqn, ci->hostnqn, ci->uid, ci->gid, ci->pid, bound);
	return -EPERM;
}

/* ---- host identifier <-> host NQN pairings ---------------------------------- */

struct id_binding {
	char subnqn[NVL_NVME_NQN_LEN];
	char hostnqn[NVL_NVME_NQN_LEN];
	uint8_t hostid[16];
};

/* g_nvmf.lock */
static struct {
	struct id_binding *v;
	unsigned n, cap;
} g_ids;

static bool
hostid_live(const struct nvl_subsys *s, const uint8_t hostid[16])
{
	struct nvl_nvmf_ctrlr *c;

	TAILQ_FOREACH(c, &s->ctrlrs, link)
		if (c->state == NVL_TCTRLR_ACTIVE && memcmp(c->nvme.hostid, hostid, 16) == 0)
			return true;
	return false;
}

/* Does hostid hold a registration on a namespace of s? (lock order:
 * g_nvmf.lock, then a namespace's resv.lock; notifications are sent after
 * resv.lock is dropped, so nothing takes them the other way round) */
static bool
hostid_registered(const struct nvl_subsys *s, const uint8_t hostid[16])
{
	bool found = false;

	for (uint32_t i = 0; i < s->max_ns && !found; i++) {
		struct nvl_nvmf_ns *ns = s->ns[i];
		struct nvl_nvme_resv *r;

		if (ns == NULL)
			continue;
		r = &ns->nvme.resv;
		pthread_mutex_lock(&r->lock);
		for (unsigned k = 0; k < r->nreg && !found; k++)
			found = memcmp(r->reg[k].hostid, hostid, 16) == 0;
		pthread_mutex_unlock(&r->lock);
	}
	return found;
}

/* An entry matters while its subsystem exists and its hostid is live or registered there. */
static bool
binding_alive(const struct id_binding *b)
{
	struct nvl_subsys *s = nvl_subsys_find(b->subnqn);

	return s && !s->deleting && (hostid_live(s, b->hostid) || hostid_registered(s, b->hostid));
}

static struct id_binding *
binding_find(const struct nvl_subsys *s, const uint8_t hostid[16])
{
	for (unsigned i = 0; i < g_ids.n; i++)
		if (memcmp(g_ids.v[i].hostid, hostid, 16) == 0 &&
		    strcmp(g_ids.v[i].subnqn, s->nqn) == 0)
			return &g_ids.v[i];
	return NULL;
}

/* Remember that hostid connected to s as hostnqn; forget pairings that no
 * longer matter. A failed allocation only loses the memory of a dead pairing. */
static void
binding_record(const struct nvl_subsys *s, const uint8_t hostid[16], const char *hostnqn)
{
	struct id_binding *b;
	unsigned k = 0;

	for (unsigned i = 0; i < g_ids.n; i++)
		if ((memcmp(g_ids.v[i].hostid, hostid, 16) == 0 &&
		     strcmp(g_ids.v[i].subnqn, s->nqn) == 0) ||
		    binding_alive(&g_ids.v[i]))
			g_ids.v[k++] = g_ids.v[i];
	g_ids.n = k;
	b = binding_find(s, hostid);
	if (b == NULL) {
		if (g_ids.n == g_ids.cap) {
			unsigned cap = g_ids.cap ? g_ids.cap * 2 : 16;
			struct id_binding *v = realloc(g_ids.v, cap * sizeof(*v));

			if (v == NULL)
				return;
			g_ids.v = v;
			g_ids.cap = cap;
		}
		b = &g_ids.v[g_ids.n++];
		nvl_strlcpy(b->subnqn, s->nqn, sizeof(b->subnqn));
		memcpy(b->hostid, hostid, 16);
	}
	nvl_strlcpy(b->hostnqn, hostnqn, sizeof(b->hostnqn));
}

/* -EADDRINUSE when ci's hostid belongs to another host NQN on s: a live
 * controller uses it, or a registrant that connected under another NQN. */
static int
hostid_check(const struct nvl_subsys *s, const struct nvl_connect_info *ci)
{
	const struct id_binding *b;
	struct nvl_nvmf_ctrlr *c;
	const char *other = NULL;
	char id[40];

	if (s->discovery || ci->hostid == NULL)
		return 0;
	TAILQ_FOREACH(c, &s->ctrlrs, link) {
		if (c->state == NVL_TCTRLR_ACTIVE && memcmp(c->nvme.hostid, ci->hostid, 16) == 0 &&
		    strcmp(c->nvme.hostnqn, ci->hostnqn) != 0) {
			other = c->nvme.hostnqn;
			break;
		}
	}
	b = binding_find(s, ci->hostid);
	if (other == NULL && b && strcmp(b->hostnqn, ci->hostnqn) != 0 &&
	    hostid_registered(s, ci->hostid))
		other = b->hostnqn;
	if (other) {
		nvl_uuid_fmt(ci->hostid, id);
		/* the peer is not told whose identifier it tried to borrow */
		set_why(ci, "host identifier %s belongs to another host NQN on this subsystem",
			id);
		NVL_WARNLOG("%s: refusing host %s: its host identifier %s belongs to host %s",
			    s->nqn, ci->hostnqn, id, other);
		return -EADDRINUSE;
	}
	binding_record(s, ci->hostid, ci->hostnqn);
	return 0;
}

int
nvmf_host_identity_check(const struct nvl_subsys *s, const struct nvl_connect_info *ci)
{
	int rc;

	rc = cred_check(s, nvmf_host_find(s, ci->hostnqn), ci);
	if (rc < 0)
		return rc;
	return hostid_check(s, ci);
}

json_t *
nvmf_host_json(const struct nvmf_host *h)
{
	json_t *o = json_pack("{s:s}", "nqn", h->nqn);

	if (h->has_uid)
		json_object_set_new(o, "uid", json_integer(h->uid));
	if (h->has_gid)
		json_object_set_new(o, "gid", json_integer(h->gid));
	/* key names only: the secrets stay in their files */
	if (h->dhchap_key[0])
		json_object_set_new(o, "dhchap_key", json_string(h->dhchap_key));
	if (h->dhchap_ctrlr_key[0])
		json_object_set_new(o, "dhchap_ctrlr_key", json_string(h->dhchap_ctrlr_key));
	return o;
}
