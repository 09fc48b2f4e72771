/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Target core: transport registry, subsystems, namespaces, hosts, listeners,
 * controllers, keep-alive, discovery log, and the removal of namespaces and
 * subsystems and the target's shutdown (barrier, drain, then free).
 * Threading rules in nvmf.h.
 */
#include "nvmf/nvmf_internal.h"
#include "nvmf/auth.h"
#include "util/fdstore.h"
#include "util/util.h"
#include "util/version.h"
#include "nvlend/spec/nvme_rdma.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(nvmf)

struct nvl_target g_nvmf = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.subsystems = TAILQ_HEAD_INITIALIZER(g_nvmf.subsystems),
	.listeners = TAILQ_HEAD_INITIALIZER(g_nvmf.listeners),
};

/* ---- transports ---------------------------------------------------------- */

static struct nvl_transport_ops *g_transports;

void
nvl_transport_register(struct nvl_transport_ops *ops)
{
	ops->next = g_transports;
	g_transports = ops;
}

int
nvl_nvmf_opt_u32(json_t *opts, const char *key, uint64_t min, uint64_t max, uint32_t *out,
		 char *err, size_t errlen)
{
	json_t *v = json_object_get(opts, key);
	json_int_t x;

	if (v == NULL)
		return 0;
	x = json_integer_value(v);
	if (!json_is_integer(v) || x < (json_int_t)min || (uint64_t)x > max) {
		snprintf(err, errlen, "%s must be %llu..%llu", key, (unsigned long long)min,
			 (unsigned long long)max);
		return -EINVAL;
	}
	*out = (uint32_t)x;
	return 0;
}

void
nvl_nvmf_restore(void)
{
	/* those that built their controllers ahead first: the least is left */
	for (struct nvl_transport_ops *t = g_transports; t; t = t->next)
		if (t->restore && t->restore_ahead)
			t->restore();
	for (struct nvl_transport_ops *t = g_transports; t; t = t->next)
		if (t->restore && !t->restore_ahead)
			t->restore();
}

void
nvl_nvmf_restore_ahead(void)
{
	for (struct nvl_transport_ops *t = g_transports; t; t = t->next)
		if (t->restore_ahead)
			t->restore_ahead();
}

static struct {
	struct nvl_transport_ops *next;
	void (*done)(void);
} g_suspend;

static void
nvmf_suspend_next(void)
{
	struct nvl_transport_ops *t = g_suspend.next;

	while (t && t->suspend == NULL)
		t = t->next;
	if (t == NULL) {
		g_suspend.done();
		return;
	}
	g_suspend.next = t->next;
	t->suspend(nvmf_suspend_next);
}

void
nvl_nvmf_suspend(void (*done)(void))
{
	g_suspend.next = g_transports;
	g_suspend.done = done;
	nvmf_suspend_next();
}

void
nvl_nvmf_quiesce(void)
{
	for (struct nvl_transport_ops *t = g_transports; t; t = t->next)
		if (t->quiesce)
			t->quiesce();
}

const struct nvl_transport_ops *
nvl_transport_find(const char *name)
{
	for (struct nvl_transport_ops *t = g_transports; t; t = t->next)
		if (strcasecmp(t->name, name) == 0)
			return t;
	return NULL;
}

const struct nvl_transport_ops *
nvmf_transports(void)
{
	return g_transports;
}

void
nvl_trtype_normalize(char *trtype)
{
	for (char *p = trtype; *p; p++)
		*p = (char)toupper((unsigned char)*p);
}

/* ---- NQN ----------------------------------------------------------------- */

int
nvl_nqn_validate(const char *nqn)
{
	size_t len = strnlen(nqn, NVL_NVME_NQN_LEN);
	const char *p;

	if (len == 0 || len >= NVL_NVME_NQN_LEN - 32 /* 223 bytes max (4.5) */ + 32 ||
	    len > 223)
		return -EINVAL;
	if (strcmp(nqn, NVL_NVME_DISCOVERY_NQN) == 0)
		return 0;
	if (strncmp(nqn, "nqn.2014-08.org.nvmexpress:uuid:", 32) == 0) {
		/* 8-4-4-4-12 hex digits (4.5, RFC 4122 text form) */
		if (len != 32 + 36)
			return -EINVAL;
		for (int i = 0; i < 36; i++) {
			char ch = nqn[32 + i];

			if ((i == 8 || i == 13 || i == 18 || i == 23) ? ch != '-'
								      : !isxdigit((unsigned char)ch))
				return -EINVAL;
		}
		return 0;
	}
	/* nqn.yyyy-mm.reverse-domain[:anything] */
	if (len < 12 || strncmp(nqn, "nqn.", 4) != 0)
		return -EINVAL;
	p = nqn + 4;
	for (int i = 0; i < 4; i++)
		if (!isdigit((unsigned char)p[i]))
			return -EINVAL;
	if (p[4] != '-' || !isdigit((unsigned char)p[5]) || !isdigit((unsigned char)p[6]) ||
	    p[7] != '.' || p[8] == '\0' || p[8] == ':')
		return -EINVAL;
	for (p = nqn; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			return -EINVAL;
	return 0;
}

/* ---- subsystems ---------------------------------------------------------- */

struct nvl_subsys *
nvl_subsys_find(const char *nqn)
{
	struct nvl_subsys *s;

	TAILQ_FOREACH(s, &g_nvmf.subsystems, link)
		if (strcmp(s->nqn, nqn) == 0)
			return s;
	return NULL;
}

bool
nvl_subsys_is_discovery(const struct nvl_subsys *s)
{
	return s->discovery;
}

const char *
nvl_subsys_nqn(const struct nvl_subsys *s)
{
	return s->nqn;
}

int
nvl_subsys_create(const struct nvl_subsys_opts *o, struct nvl_subsys **out)
{
	struct nvl_subsys *s;
	uint32_t maxns = o->max_namespaces ? o->max_namespaces : 32;

	if (nvl_nqn_validate(o->nqn) < 0)
		return -EINVAL;
	if (nvl_subsys_find(o->nqn))
		return -EEXIST;
	if (maxns > NVL_NVMF_MAX_NS)
		return -EINVAL;
	if (o->serial_number && strlen(o->serial_number) > 20)
		return -EINVAL;
	if (o->model_number && strlen(o->model_number) > 40)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->ns = calloc(maxns, sizeof(*s->ns));
	if (s->ns == NULL) {
		free(s);
		return -ENOMEM;
	}
	nvl_strlcpy(s->nqn, o->nqn, sizeof(s->nqn));
	s->discovery = strcmp(o->nqn, NVL_NVME_DISCOVERY_NQN) == 0;
	if (o->serial_number) {
		nvl_strlcpy(s->sn, o->serial_number, sizeof(s->sn));
	} else {
		/* a stable serial derived from the NQN, so restarts keep it */
		uint32_t h = nvl_crc32c(o->nqn, strlen(o->nqn));

		snprintf(s->sn, sizeof(s->sn), "NVL%08X", h);
	}
	nvl_strlcpy(s->mn, o->model_number ? o->model_number : "nvlend shared namespace",
		    sizeof(s->mn));
	s->allow_any_host = o->allow_any_host || s->discovery;
	s->listed_to_any_host = o->listed_to_any_host;
	if (o->owner)
		nvl_strlcpy(s->owner, o->owner, sizeof(s->owner));
	s->max_ns = maxns;
	s->min_cntlid = o->min_cntlid ? o->min_cntlid : 1;
	s->max_cntlid = o->max_cntlid ? o->max_cntlid : 0xffef;
	if (s->min_cntlid > s->max_cntlid || s->max_cntlid > 0xffef) {
		free(s->ns);
		free(s);
		return -EINVAL;
	}
	s->next_cntlid = s->min_cntlid;
	TAILQ_INIT(&s->ctrlrs);
	TAILQ_INIT(&s->hosts);
	TAILQ_INIT(&s->listeners);
	pthread_mutex_lock(&g_nvmf.lock);
	TAILQ_INSERT_TAIL(&g_nvmf.subsystems, s, link);
	pthread_mutex_unlock(&g_nvmf.lock);
	NVL_NOTICELOG("subsystem %s created", s->nqn);
	*out = s;
	return 0;
}

bool
nvmf_host_allowed(const struct nvl_subsys *s, const char *hostnqn)
{
	struct nvmf_host *h;

	if (s->allow_any_host)
		return true;
	TAILQ_FOREACH(h, &s->hosts, link)
		if (strcmp(h->nqn, hostnqn) == 0)
			return true;
	return false;
}

static bool
addr_eq(const struct nvl_listen_addr *a, const struct nvl_listen_addr *b)
{
	return strcasecmp(a->trtype, b->trtype) == 0 && strcmp(a->traddr, b->traddr) == 0 &&
	       strcmp(a->trsvcid, b->trsvcid) == 0;
}

bool
nvl_nvmf_listener_allowed(const struct nvl_subsys *s, const struct nvl_listen_addr *a)
{
	struct nvmf_sub_listener *l;

	if (s->discovery)
		return true; /* discovery answers on every listener */
	TAILQ_FOREACH(l, &s->listeners, link)
		if (addr_eq(&l->addr, a))
			return true;
	return false;
}

/* A host connected to a listener: the transport takes the connection. */
static void
nvmf_listener_accept(void *arg, int fd)
{
	struct nvmf_listener *l = arg;

	l->transport->accept(&l->addr, fd);
}

/*
 * Global listener registry: one listening socket per address, refcounted
 * by the subsystems offered there. The transport opens the socket; the
 * target watches it with an acceptor (the one accept loop, which survives a
 * full descriptor table) and closes it when the last subsystem goes.
 */
struct listen_open {
	const struct nvl_transport_ops *t;
	const struct nvl_listen_addr *a;
};

static int
listener_open(void *arg, int *fd)
{
	struct listen_open *o = arg;

	return o->t->listen(o->a, fd);
}

/* Its name in the fd store: a worker that restarts listens on the same socket. */
static void
listener_store_name(const struct nvl_listen_addr *a, char buf[NVL_FDSTORE_NAME_MAX + 1])
{
	char key[sizeof(a->trtype) + sizeof(a->traddr) + sizeof(a->trsvcid) + 4];

	snprintf(key, sizeof(key), "%s/%s/%s", a->trtype, a->traddr, a->trsvcid);
	nvl_fdstore_name(buf, "nvmf.listen", key);
}

int
nvmf_listener_get(const struct nvl_listen_addr *a)
{
	struct nvmf_listener *l;
	const struct nvl_transport_ops *t;
	char name[sizeof(a->trtype) + sizeof(a->traddr) + sizeof(a->trsvcid) + 8];
	char sname[NVL_FDSTORE_NAME_MAX + 1];
	struct listen_open o = { .a = a };
	bool kept;
	int rc;

	TAILQ_FOREACH(l, &g_nvmf.listeners, link) {
		if (addr_eq(&l->addr, a)) {
			l->refs++;
			return 0;
		}
	}
	t = nvl_transport_find(a->trtype);
	if (t == NULL)
		return -EPROTONOSUPPORT;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->addr = *a;
	l->transport = t;
	o.t = t;
	listener_store_name(a, sname);
	rc = nvl_fdstore_listener(sname, listener_open, &o, &l->fd, &kept);
	if (rc < 0)
		goto err_free;
	if (l->fd < 0)
		goto done; /* the transport watches its own listener (RDMA: CM events) */
	if (kept)
		NVL_NOTICELOG("%s: listening again on %s%s%s (kept across the restart)", a->trtype,
			      a->traddr, a->trsvcid[0] ? " port " : "", a->trsvcid);
	snprintf(name, sizeof(name), "nvmf %s %s%s%s", a->trtype, a->traddr, a->trsvcid[0] ? ":" : "",
		 a->trsvcid);
	l->acceptor = nvl_acceptor_create(l->fd, name, 0, nvmf_listener_accept, l);
	if (l->acceptor == NULL) {
		rc = -errno;
		goto err_close;
	}
done:
	l->refs = 1;
	TAILQ_INSERT_TAIL(&g_nvmf.listeners, l, link);
	return 0;
err_close:
	close(l->fd);
	(void)nvl_fdstore_remove(sname);
	if (t->stop_listen)
		t->stop_listen(a);
err_free:
	free(l);
	return rc;
}

void
nvmf_listener_put(const struct nvl_listen_addr *a)
{
	struct nvmf_listener *l;

	TAILQ_FOREACH(l, &g_nvmf.listeners, link) {
		if (addr_eq(&l->addr, a)) {
			if (--l->refs == 0) {
				char sname[NVL_FDSTORE_NAME_MAX + 1];

				TAILQ_REMOVE(&g_nvmf.listeners, l, link);
				if (l->fd >= 0) {
					nvl_acceptor_destroy(l->acceptor);
					listener_store_name(&l->addr, sname);
					(void)nvl_fdstore_remove(sname);
					close(l->fd);
				}
				if (l->transport->stop_listen)
					l->transport->stop_listen(&l->addr);
				free(l);
			}
			return;
		}
	}
}

/* ---- namespaces ----------------------------------------------------------- */

struct nvl_nvme_ns *
nvl_nvmf_get_ns(struct nvl_nvme_ctrlr *nc, uint32_t nsid)
{
	struct nvl_nvmf_ctrlr *c = (struct nvl_nvmf_ctrlr *)nc;
	struct nvl_subsys *s = c->subsys;
	struct nvl_nvmf_ns *ns;

	if (nsid == 0 || nsid > s->max_ns)
		return NULL;
	ns = __atomic_load_n(&s->ns[nsid - 1], __ATOMIC_ACQUIRE);
	if (ns == NULL || ns->removing)
		return NULL;
	if (nvl_unlikely(!ns->auto_visible)) {
		for (unsigned i = 0; i < ns->nhosts; i++)
			if (strcmp(ns->hosts[i], nc->hostnqn) == 0)
				return &ns->nvme;
		return NULL;
	}
	return &ns->nvme;
}

uint32_t
nvl_nvmf_next_nsid(struct nvl_nvme_ctrlr *nc, uint32_t after)
{
	struct nvl_nvmf_ctrlr *c = (struct nvl_nvmf_ctrlr *)nc;

	/* 64-bit: after = FFFFFFFFh must not wrap around to nsid 1 */
	for (uint64_t id = (uint64_t)after + 1; id <= c->subsys->max_ns; id++)
		if (nvl_nvmf_get_ns(nc, (uint32_t)id))
			return (uint32_t)id;
	return 0;
}

static int
nvmf_discovery_log_op(struct nvl_nvme_ctrlr *nc, void **out, size_t *len)
{
	return nvl_nvmf_discovery_log(nc->hostnqn, out, len);
}

/* What the NVMe layer asks of the target, installed on every controller. */
static const struct nvl_nvme_ctrlr_ops g_nvmf_ctrlr_ops = {
	.get_ns = nvl_nvmf_get_ns,
	.next_nsid = nvl_nvmf_next_nsid,
	.discovery_log = nvmf_discovery_log_op,
};

/* Reservation notifications go to every controller of the host, on its home. */
struct resv_note {
	struct nvl_nvmf_ctrlr *c;
	uint32_t nsid;
	uint8_t type;
};

static void
resv_note_on_home(void *arg)
{
	struct resv_note *n = arg;

	if (n->c->state == NVL_TCTRLR_ACTIVE)
		nvl_nvme_ctrlr_resv_notify(&n->c->nvme, n->nsid, n->type);
	nvl_nvmf_ctrlr_put(n->c);
	free(n);
}

void
nvmf_ns_notify(struct nvl_nvme_ns *nns, const uint8_t hostid[16], uint8_t type)
{
	struct nvl_nvmf_ns *ns = (struct nvl_nvmf_ns *)nns;
	struct nvl_nvmf_ctrlr *c;

	pthread_mutex_lock(&g_nvmf.lock);
	TAILQ_FOREACH(c, &ns->subsys->ctrlrs, link) {
		struct resv_note *n;

		if (memcmp(c->nvme.hostid, hostid, 16) != 0 || c->state != NVL_TCTRLR_ACTIVE)
			continue;
		n = calloc(1, sizeof(*n));
		if (n == NULL)
			continue;
		nvl_nvmf_ctrlr_get(c);
		n->c = c;
		n->nsid = nns->nsid;
		n->type = type;
		if (nvl_reactor_msg(c->nvme.home, resv_note_on_home, n) < 0) {
			nvl_nvmf_ctrlr_put(c);
			free(n);
		}
	}
	pthread_mutex_unlock(&g_nvmf.lock);
}

/* Tell every controller of s that nsid changed (namespace attribute AEN). */
struct ns_change {
	struct nvl_nvmf_ctrlr *c;
	uint32_t nsid;
};

static void
ns_change_on_home(void *arg)
{
	struct ns_change *m = arg;

	if (m->c->state == NVL_TCTRLR_ACTIVE)
		nvl_nvme_ctrlr_ns_changed(&m->c->nvme, m->nsid);
	nvl_nvmf_ctrlr_put(m->c);
	free(m);
}

void
nvmf_subsys_ns_changed(struct nvl_subsys *s, uint32_t nsid)
{
	struct nvl_nvmf_ctrlr *c;

	pthread_mutex_lock(&g_nvmf.lock);
	TAILQ_FOREACH(c, &s->ctrlrs, link) {
		struct ns_change *m = calloc(1, sizeof(*m));

		if (m == NULL)
			continue;
		nvl_nvmf_ctrlr_get(c);
		m->c = c;
		m->nsid = nsid;
		if (nvl_reactor_msg(c->nvme.home, ns_change_on_home, m) < 0) {
			nvl_nvmf_ctrlr_put(c);
			free(m);
		}
	}
	pthread_mutex_unlock(&g_nvmf.lock);
}

/* ---- controllers ---------------------------------------------------------- */

void
nvl_nvmf_ctrlr_get(struct nvl_nvmf_ctrlr *c)
{
	__atomic_fetch_add(&c->refs, 1, __ATOMIC_RELAXED);
}

static void
nvmf_ctrlr_free(struct nvl_nvmf_ctrlr *c)
{
	nvmf_auth_ctrlr_fini(c);
	nvl_nvme_ctrlr_fini(&c->nvme);
	free(c);
}

void
nvl_nvmf_ctrlr_put(struct nvl_nvmf_ctrlr *c)
{
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		nvmf_ctrlr_free(c);
}

/* keep-alive of a discovery controller whose host asked for none */
static uint32_t g_disc_kato_ms = 120000;

void
nvl_nvmf_set_discovery_kato_ms(uint32_t ms)
{
	__atomic_store_n(&g_disc_kato_ms, ms, __ATOMIC_RELAXED);
}

static void
kato_tick(void *arg)
{
	struct nvl_nvmf_ctrlr *c = arg;
	uint64_t kato = c->nvme.kato_ms;
	uint64_t last = __atomic_load_n(&c->nvme.last_keep_alive_ns, __ATOMIC_RELAXED);
	const char *why;

	/* the admin queue's DH-HMAC-CHAP failed or stalled (auth.c) */
	if (c->auth && c->state == NVL_TCTRLR_ACTIVE &&
	    nvl_nvmf_auth_expired(c->auth, nvl_now_ns(), &why)) {
		nvl_nvmf_ctrlr_disconnect(c, why);
		return;
	}
	/* The host cannot send Keep Alive before its admin queue authenticated
	 * (Authentication Required): until then the authentication's own step
	 * timeout is in charge, and the keep-alive period starts at its success. */
	if (kato == 0 && c->nvme.type == NVL_NVME_CNTRLTYPE_DISCOVERY)
		kato = __atomic_load_n(&g_disc_kato_ms, __ATOMIC_RELAXED);
	if (kato == 0 || c->state != NVL_TCTRLR_ACTIVE || c->connecting ||
	    (c->auth && !c->auth->ops->ready(c->auth)))
		return;
	if (nvl_now_ns() - last > kato * 1000000ULL) {
		NVL_WARNLOG("%s: controller %u of host %s: keep-alive timeout (%llu ms); "
			    "tearing it down", c->subsys->nqn, c->nvme.cntlid, c->nvme.hostnqn,
			    (unsigned long long)kato);
		__atomic_fetch_add(&c->subsys->kato_expiries, 1, __ATOMIC_RELAXED);
		nvl_nvmf_ctrlr_disconnect(c, "keep-alive timeout");
	}
}

static int
alloc_cntlid(struct nvl_subsys *s, uint16_t *out)
{
	unsigned span = (unsigned)s->max_cntlid - s->min_cntlid + 1;

	for (unsigned i = 0; i < span; i++) {
		uint16_t id = s->next_cntlid;
		struct nvl_nvmf_ctrlr *c;
		bool used = false;

		s->next_cntlid = id == s->max_cntlid ? s->min_cntlid : id + 1;
		TAILQ_FOREACH(c, &s->ctrlrs, link)
			used |= c->nvme.cntlid == id;
		if (!used) {
			*out = id;
			return 0;
		}
	}
	return -EBUSY;
}

/* A kept controller comes back with its own id, if nobody has it now. */
static int
restore_cntlid(struct nvl_subsys *s, uint16_t id, uint16_t *out)
{
	struct nvl_nvmf_ctrlr *c;

	TAILQ_FOREACH(c, &s->ctrlrs, link)
		if (c->nvme.cntlid == id)
			return -EBUSY;
	*out = id;
	return 0;
}

int
nvl_nvmf_connect(const struct nvl_connect_info *ci, struct nvl_nvmf_ctrlr **out,
		   uint16_t *status)
{
	struct nvl_nvmf_ctrlr *c;
	struct nvl_subsys *s;
	int rc;

	*status = NVL_NVME_SC_CONNECT_INVALID_PARAM;
	if (ci->restore || ci->fixed_cntlid ? ci->cntlid == 0 || ci->cntlid > 0xffef
			: ci->cntlid != 0xffff && ci->cntlid != 0xfffe)
		return -EINVAL; /* static controllers are not offered */
	pthread_mutex_lock(&g_nvmf.lock);
	s = nvl_subsys_find(ci->subnqn);
	if (s == NULL || s->deleting) {
		pthread_mutex_unlock(&g_nvmf.lock);
		if (!ci->quiet_refusal)
			NVL_WARNLOG("connect from %s: no such subsystem %s", ci->hostnqn,
				    ci->subnqn);
		return -ENOENT;
	}
	if (!nvmf_host_allowed(s, ci->hostnqn)) {
		pthread_mutex_unlock(&g_nvmf.lock);
		*status = NVL_NVME_SC_CONNECT_INVALID_HOST;
		if (!ci->quiet_refusal)
			NVL_WARNLOG("%s: host %s is not allowed", s->nqn, ci->hostnqn);
		return -EACCES;
	}
	if (!nvl_nvmf_listener_allowed(s, ci->listener)) {
		pthread_mutex_unlock(&g_nvmf.lock);
		if (!ci->quiet_refusal)
			NVL_WARNLOG("%s: host %s came in on %s %s:%s, not a listener of this "
				    "subsystem", s->nqn, ci->hostnqn, ci->listener->trtype,
				    ci->listener->traddr, ci->listener->trsvcid);
		/* the spec's "restart discovery": the subsystem exists but is not
		 * offered here (a host should look it up in the discovery log) */
		*status = NVL_NVME_SC_CONNECT_RESTART_DISCOVERY;
		if (ci->why)
			snprintf(ci->why, ci->why_len, "%s does not listen on %s %s%s%s", ci->subnqn,
				 ci->listener->trtype, ci->listener->traddr,
				 ci->listener->trsvcid[0] ? ":" : "", ci->listener->trsvcid);
		return -EADDRNOTAVAIL;
	}
	/* credential binding and host identifier (auth_identity.c) */
	rc = nvmf_host_identity_check(s, ci);
	if (rc < 0) {
		pthread_mutex_unlock(&g_nvmf.lock);
		*status = NVL_NVME_SC_CONNECT_INVALID_HOST;
		return rc;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		pthread_mutex_unlock(&g_nvmf.lock);
		*status = NVL_NVME_SC_INTERNAL;
		return -ENOMEM;
	}
	rc = ci->restore || ci->fixed_cntlid ? restore_cntlid(s, ci->cntlid, &c->nvme.cntlid)
			 : alloc_cntlid(s, &c->nvme.cntlid);
	if (rc < 0) {
		pthread_mutex_unlock(&g_nvmf.lock);
		free(c);
		*status = NVL_NVME_SC_CONNECT_CTRL_BUSY;
		return rc;
	}
	rc = nvl_nvme_ctrlr_init(&c->nvme);
	if (rc < 0) {
		pthread_mutex_unlock(&g_nvmf.lock);
		free(c);
		*status = NVL_NVME_SC_INTERNAL;
		return rc;
	}
	c->refs = 1; /* the connection's */
	c->subsys = s;
	c->transport = ci->transport;
	c->tctx = ci->tctx;
	c->listener = *ci->listener;
	c->connect_ns = nvl_now_ns();
	c->has_cred = ci->has_cred;
	c->uid = ci->uid;
	c->gid = ci->gid;
	c->pid = ci->pid;
	c->nvme.owner = c;
	c->nvme.home = nvl_reactor_self();
	c->nvme.type = s->discovery ? NVL_NVME_CNTRLTYPE_DISCOVERY : NVL_NVME_CNTRLTYPE_IO;
	c->nvme.ops = &g_nvmf_ctrlr_ops;
	c->nvme.queue_ops = ci->queue_ops;
	nvl_strlcpy(c->nvme.subnqn, s->nqn, sizeof(c->nvme.subnqn));
	nvl_strlcpy(c->nvme.hostnqn, ci->hostnqn, sizeof(c->nvme.hostnqn));
	if (ci->hostid)
		memcpy(c->nvme.hostid, ci->hostid, 16);
	nvl_strlcpy(c->nvme.sn, s->sn, sizeof(c->nvme.sn));
	nvl_strlcpy(c->nvme.mn, s->mn, sizeof(c->nvme.mn));
	nvl_strlcpy(c->nvme.fr, NVL_VERSION_STRING, sizeof(c->nvme.fr));
	c->nvme.max_nsid = s->max_ns;
	c->nvme.max_io_queues = ci->max_io_queues;
	c->nvme.max_queue_entries = ci->max_queue_entries;
	c->nvme.fabrics = ci->fabrics;
	c->nvme.sgl_supported = ci->sgl;
	c->nvme.ioccsz = ci->ioccsz;
	c->nvme.iorcsz = ci->iorcsz;
	c->nvme.msdbd = ci->msdbd;
	if (ci->mdts)
		c->nvme.mdts = (uint8_t)NVL_MIN(ci->mdts, (uint8_t)NVL_NVME_MDTS);
	/* round up to the 100 ms KAS granularity (NVL_ALIGN_UP needs a power of two) */
	c->nvme.kato_ms =
		(uint32_t)NVL_MIN(((uint64_t)ci->kato_ms + 99) / 100 * 100, 4294967200ULL);
	/* an idle discovery association must not hold its connection forever */
	if (s->discovery && c->nvme.kato_ms == 0)
		c->nvme.kato_ms = __atomic_load_n(&g_disc_kato_ms, __ATOMIC_RELAXED);
	/* DH-HMAC-CHAP: the host entry's keys, the admin queue's transaction */
	rc = nvmf_auth_ctrlr_init(c, nvmf_host_find(s, ci->hostnqn), ci);
	if (rc < 0) {
		pthread_mutex_unlock(&g_nvmf.lock);
		nvl_nvme_ctrlr_fini(&c->nvme);
		free(c);
		*status = NVL_NVME_SC_CONNECT_INVALID_HOST;
		return rc;
	}
	if (ci->restore && ci->restore_authenticated && c->auth)
		nvl_nvmf_auth_restore(c->auth);
	TAILQ_INSERT_TAIL(&s->ctrlrs, c, link);
	pthread_mutex_unlock(&g_nvmf.lock);
	c->kato_timer = nvl_timer_create(kato_tick, c, 100000, 100000);
	if (!ci->log_later)
		NVL_NOTICELOG("%s: controller %u %sfor host %s (%s %s%s%s), keep-alive %u ms", s->nqn,
		      c->nvme.cntlid, ci->restore ? "restored " : "", ci->hostnqn, ci->listener->trtype, ci->listener->traddr,
		      ci->listener->trsvcid[0] ? ":" : "", ci->listener->trsvcid, c->nvme.kato_ms);
	*status = NVL_NVME_SC_SUCCESS;
	*out = c;
	return 0;
}

void
nvl_nvmf_ctrlr_release(struct nvl_nvmf_ctrlr *c)
{
	struct nvl_subsys *s = c->subsys;

	c->state = NVL_TCTRLR_DISCONNECTING;
	/* the admin queue is going: its held AERs complete now, not at free */
	nvl_nvme_ctrlr_abort_aers(&c->nvme);
	nvl_timer_destroy(c->kato_timer);
	c->kato_timer = NULL;
	pthread_mutex_lock(&g_nvmf.lock);
	TAILQ_REMOVE(&s->ctrlrs, c, link);
	pthread_mutex_unlock(&g_nvmf.lock);
	NVL_NOTICELOG("%s: controller %u of host %s gone", s->nqn, c->nvme.cntlid,
		      c->nvme.hostnqn);
	nvl_nvmf_ctrlr_put(c);
}

struct disc_msg {
	struct nvl_nvmf_ctrlr *c;
};

static void
disconnect_on_home(void *arg)
{
	struct nvl_nvmf_ctrlr *c = arg;

	if (c->state == NVL_TCTRLR_ACTIVE) {
		c->state = NVL_TCTRLR_DISCONNECTING;
		c->transport->ctrlr_disconnect(c);
	}
	nvl_nvmf_ctrlr_put(c);
}

void
nvl_nvmf_ctrlr_disconnect(struct nvl_nvmf_ctrlr *c, const char *why)
{
	NVL_DEBUGLOG(nvmf, "%s: disconnect controller %u: %s", c->subsys->nqn, c->nvme.cntlid, why);
	nvl_nvmf_ctrlr_get(c);
	/* Through the home reactor's inbox even when called there: callers hold
	 * g_nvmf.lock while walking s->ctrlrs, and a teardown run inline may
	 * release the controller at once (taking that lock, unlinking c). */
	if (c->nvme.home == NULL)
		disconnect_on_home(c); /* no reactors (unit tests) */
	else if (nvl_reactor_msg(c->nvme.home, disconnect_on_home, c) < 0)
		nvl_nvmf_ctrlr_put(c);
}

struct nvl_nvmf_ctrlr *
nvl_nvmf_ctrlr_lookup(const char *subnqn, uint16_t cntlid)
{
	struct nvl_subsys *s;
	struct nvl_nvmf_ctrlr *c, *found = NULL;

	pthread_mutex_lock(&g_nvmf.lock);
	s = nvl_subsys_find(subnqn);
	if (s)
		TAILQ_FOREACH(c, &s->ctrlrs, link)
			if (c->nvme.cntlid == cntlid && c->state == NVL_TCTRLR_ACTIVE) {
				nvl_nvmf_ctrlr_get(c);
				found = c;
				break;
			}
	pthread_mutex_unlock(&g_nvmf.lock);
	return found;
}

/* ---- discovery ------------------------------------------------------------ */

int
nvl_nvmf_discovery_log(const char *hostnqn, void **out, size_t *len)
{
	struct nvl_nvmf_discovery_log *h;
	struct nvl_nvmf_discovery_entry *e;
	struct nvl_subsys *s;
	size_t n = 0, cap = 16;
	uint8_t *buf;

	buf = calloc(1, sizeof(*h) + cap * sizeof(*e));
	if (buf == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&g_nvmf.lock);
	TAILQ_FOREACH(s, &g_nvmf.subsystems, link) {
		struct nvmf_sub_listener *l;

		if (!s->discovery && !s->listed_to_any_host && !nvmf_host_allowed(s, hostnqn))
			continue;
		TAILQ_FOREACH(l, &s->listeners, link) {
			const struct nvl_transport_ops *t = nvl_transport_find(l->addr.trtype);

			if (t == NULL || t->nvmf_trtype == 0)
				continue;
			if (n == cap) {
				uint8_t *nb = realloc(buf, sizeof(*h) + cap * 2 * sizeof(*e));

				if (nb == NULL)
					break;
				buf = nb;
				memset(buf + sizeof(*h) + cap * sizeof(*e), 0, cap * sizeof(*e));
				cap *= 2;
			}
			e = (void *)(buf + sizeof(*h) + n * sizeof(*e));
			e->trtype = t->nvmf_trtype;
			e->adrfam = strcasecmp(l->addr.adrfam, "IPv6") == 0 ? NVL_NVMF_ADRFAM_IPV6
									 : NVL_NVMF_ADRFAM_IPV4;
			e->subtype = s->discovery ? NVL_NVMF_SUBTYPE_DISCOVERY_CURRENT
						  : NVL_NVMF_SUBTYPE_NVME;
			e->treq = NVL_NVMF_TREQ_SECURE_CHANNEL_NOT_REQUIRED;
			e->portid = l->portid;
			e->cntlid = 0xffff;
			e->asqsz = 128;
			e->eflags = 0;
			nvl_strpad(e->trsvcid, sizeof(e->trsvcid), l->addr.trsvcid);
			nvl_strlcpy(e->subnqn, s->nqn, sizeof(e->subnqn));
			nvl_strpad(e->traddr, sizeof(e->traddr), l->addr.traddr);
			/* TCP: TSAS security type none (sectype 0) */
			if (e->trtype == NVL_NVMF_TRTYPE_RDMA) {
				e->tsas[0] = NVL_RDMA_TSAS_QPTYPE_CONNECTED;
				e->tsas[1] = NVL_RDMA_TSAS_PRTYPE_NOT_SPECIFIED;
				e->tsas[2] = NVL_RDMA_TSAS_CMS_RDMA_CM;
			}
			n++;
		}
	}
	h = (void *)buf;
	h->genctr = g_nvmf.discovery_genctr;
	h->numrec = n;
	h->recfmt = 0;
	pthread_mutex_unlock(&g_nvmf.lock);
	*out = buf;
	*len = sizeof(*h) + n * sizeof(*e);
	return 0;
}

static void
disc_changed_on_home(void *arg)
{
	struct nvl_nvmf_ctrlr *c = arg;

	if (c->state == NVL_TCTRLR_ACTIVE)
		nvl_nvme_ctrlr_discovery_changed(&c->nvme);
	nvl_nvmf_ctrlr_put(c);
}

void
nvl_nvmf_discovery_changed(void)
{
	struct nvl_subsys *s;

	pthread_mutex_lock(&g_nvmf.lock);
	g_nvmf.discovery_genctr++;
	s = nvl_subsys_find(NVL_NVME_DISCOVERY_NQN);
	if (s) {
		struct nvl_nvmf_ctrlr *c;

		TAILQ_FOREACH(c, &s->ctrlrs, link) {
			nvl_nvmf_ctrlr_get(c);
			if (nvl_reactor_msg(c->nvme.home, disc_changed_on_home, c) < 0)
				nvl_nvmf_ctrlr_put(c);
		}
	}
	pthread_mutex_unlock(&g_nvmf.lock);
}

/* ---- removal and teardown (reactor 0) -------------------------------------- */

/*
 * A namespace goes in three steps: it leaves the table (nobody finds it any
 * more), every reactor passes a barrier (nobody still holds the pointer it
 * found before), then what is in flight on it drains; only then are its
 * bdev descriptor and memory released.
 */
struct nvmf_ns_removal {
	struct nvl_subsys *s;
	struct nvl_nvmf_ns *ns;
	void (*done)(void *arg, int rc);
	void *arg;
};

static void
nvmf_ns_free(struct nvl_nvmf_ns *ns)
{
	nvl_bdev_close(ns->nvme.desc);
	nvl_nvme_ns_fini(&ns->nvme);
	free(ns->hosts);
	free(ns);
}

static bool
nvmf_ns_idle(void *arg)
{
	struct nvmf_ns_removal *r = arg;

	return __atomic_load_n(&r->ns->nvme.inflight, __ATOMIC_ACQUIRE) == 0;
}

static void
nvmf_ns_drained(void *arg)
{
	struct nvmf_ns_removal *r = arg;

	NVL_NOTICELOG("%s: namespace %u (%s) removed", r->s->nqn, r->ns->nvme.nsid,
		      r->ns->bdev_name);
	nvmf_ns_free(r->ns);
	r->done(r->arg, 0);
	free(r);
}

static void
nvmf_ns_after_barrier(void *arg, int rc)
{
	struct nvmf_ns_removal *r = arg;

	if (rc < 0)
		NVL_WARNLOG("%s: namespace %u: not every reactor passed the barrier",
			    r->s->nqn, r->ns->nvme.nsid);
	/* nobody can find the namespace now; wait for what is in flight */
	rc = nvl_reactor_drain(nvmf_ns_idle, nvmf_ns_drained, r, 1000);
	if (rc < 0) {
		NVL_ERRLOG("cannot wait for namespace %u to drain; leaking it", r->ns->nvme.nsid);
		r->done(r->arg, rc);
		free(r);
	}
}

int
nvmf_ns_remove(struct nvl_subsys *s, uint32_t nsid, void (*done)(void *arg, int rc), void *arg)
{
	struct nvl_nvmf_ns *ns;
	struct nvmf_ns_removal *r;

	if (nsid == 0 || nsid > s->max_ns || s->ns[nsid - 1] == NULL)
		return -ENOENT;
	ns = s->ns[nsid - 1];
	if (ns->removing)
		return -EBUSY;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->s = s;
	r->ns = ns;
	r->done = done;
	r->arg = arg;
	ns->removing = true;
	__atomic_store_n(&s->ns[nsid - 1], NULL, __ATOMIC_RELEASE);
	nvmf_subsys_ns_changed(s, nsid);
	if (nvl_reactor_for_each(NULL, NULL, nvmf_ns_after_barrier, r) < 0)
		nvmf_ns_after_barrier(r, -ENOMEM);
	return 0;
}

/*
 * A subsystem goes once its controllers are gone (each was asked to
 * disconnect) and then its namespaces, one after the other.
 */
struct nvmf_subsys_deletion {
	struct nvl_subsys *s;
	uint32_t next_nsid;
	void (*done)(void *arg);
	void *arg;
};

void
nvmf_subsys_free(struct nvl_subsys *s)
{
	struct nvmf_host *h;
	struct nvmf_sub_listener *l;

	while ((l = TAILQ_FIRST(&s->listeners)) != NULL) {
		TAILQ_REMOVE(&s->listeners, l, link);
		nvmf_listener_put(&l->addr);
		free(l);
	}
	while ((h = TAILQ_FIRST(&s->hosts)) != NULL) {
		TAILQ_REMOVE(&s->hosts, h, link);
		nvmf_auth_host_clear(h);
		free(h);
	}
	pthread_mutex_lock(&g_nvmf.lock);
	TAILQ_REMOVE(&g_nvmf.subsystems, s, link);
	pthread_mutex_unlock(&g_nvmf.lock);
	free(s->ns);
	free(s);
}

static void nvmf_subsys_delete_next_ns(struct nvmf_subsys_deletion *d);

static void
nvmf_subsys_delete_ns_done(void *arg, int rc)
{
	(void)rc;
	nvmf_subsys_delete_next_ns(arg);
}

static void
nvmf_subsys_delete_next_ns(struct nvmf_subsys_deletion *d)
{
	struct nvl_subsys *s = d->s;

	while (d->next_nsid <= s->max_ns) {
		uint32_t nsid = d->next_nsid++;

		if (s->ns[nsid - 1] && nvmf_ns_remove(s, nsid, nvmf_subsys_delete_ns_done, d) == 0)
			return;
	}
	NVL_NOTICELOG("subsystem %s deleted", s->nqn);
	nvmf_subsys_free(s);
	nvl_nvmf_discovery_changed();
	d->done(d->arg);
	free(d);
}

static bool
nvmf_subsys_no_ctrlrs(void *arg)
{
	struct nvmf_subsys_deletion *d = arg;
	bool empty;

	pthread_mutex_lock(&g_nvmf.lock);
	empty = TAILQ_EMPTY(&d->s->ctrlrs);
	pthread_mutex_unlock(&g_nvmf.lock);
	return empty;
}

static void
nvmf_subsys_ctrlrs_gone(void *arg)
{
	struct nvmf_subsys_deletion *d = arg;

	d->next_nsid = 1;
	nvmf_subsys_delete_next_ns(d);
}

int
nvmf_subsys_delete(struct nvl_subsys *s, void (*done)(void *arg), void *arg)
{
	struct nvmf_subsys_deletion *d;
	struct nvl_nvmf_ctrlr *c;
	int rc;

	if (s->deleting)
		return -EBUSY;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->s = s;
	d->done = done;
	d->arg = arg;
	rc = nvl_reactor_drain(nvmf_subsys_no_ctrlrs, nvmf_subsys_ctrlrs_gone, d, 1000);
	if (rc < 0) {
		free(d);
		return rc;
	}
	s->deleting = true;
	pthread_mutex_lock(&g_nvmf.lock);
	TAILQ_FOREACH(c, &s->ctrlrs, link)
		nvl_nvmf_ctrlr_disconnect(c, "subsystem deleted");
	pthread_mutex_unlock(&g_nvmf.lock);
	return 0;
}

/*
 * Shutdown: every subsystem is deleted (controllers disconnected, in-flight
 * commands drained, namespaces released), then every transport stops.
 */
static struct {
	void (*done)(void);
	const struct nvl_transport_ops *transport;
} g_nvmf_fini;

static void
nvmf_fini_transports(void)
{
	const struct nvl_transport_ops *t;

	while (g_nvmf_fini.transport && g_nvmf_fini.transport->fini == NULL)
		g_nvmf_fini.transport = g_nvmf_fini.transport->next;
	t = g_nvmf_fini.transport;
	if (t) {
		g_nvmf_fini.transport = t->next;
		t->fini(nvmf_fini_transports);
		return;
	}
	g_nvmf_fini.done();
}

static void
nvmf_fini_next_subsys(void *arg)
{
	struct nvl_subsys *s = TAILQ_FIRST(&g_nvmf.subsystems);

	(void)arg;
	if (s && nvmf_subsys_delete(s, nvmf_fini_next_subsys, NULL) == 0)
		return;
	if (s) {
		/* deletion could not start: free what is left without waiting */
		nvmf_subsys_free(s);
		nvmf_fini_next_subsys(NULL);
		return;
	}
	g_nvmf_fini.transport = g_transports;
	nvmf_fini_transports();
}

void
nvl_nvmf_fini(void (*done)(void))
{
	g_nvmf_fini.done = done;
	nvmf_fini_next_subsys(NULL);
}
