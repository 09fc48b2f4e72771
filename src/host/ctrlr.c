/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libnvlend core: controller connect/identify/disconnect, admin commands,
 * keep-alive thread, data-window buffer allocator, queue-pair slots and
 * command builders, synchronous helpers. Transport specifics live in
 * host_shm.c (and host_tcp.c).
 */
#include "host/host_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


void
host_set_error(struct nvl_ctrlr *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
	va_end(ap);
}

NVL_EXPORT const char *
nvl_ctrlr_last_error(const struct nvl_ctrlr *c)
{
	return c->last_error;
}

NVL_EXPORT void
nvl_ctrlr_opts_default(struct nvl_ctrlr_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->kato_ms = 10000;
	o->keepalive_thread = true;
	o->window_bytes = 64ULL << 20;
	o->timeout_ms = 10000;
}

NVL_EXPORT void
nvl_qpair_opts_default(struct nvl_qpair_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->entries = 128;
	o->interrupts = true;
	o->spin_us = 50;
}

NVL_EXPORT const char *
nvl_status_str(uint16_t sc)
{
	switch (sc & 0x7ff) {
	case 0x000: return "success";
	case 0x001: return "invalid opcode";
	case 0x002: return "invalid field in command";
	case 0x004: return "data transfer error";
	case 0x006: return "internal error";
	case 0x007: return "abort requested";
	case 0x008: return "aborted: SQ deleted";
	case 0x00b: return "invalid namespace or format";
	case 0x00c: return "command sequence error";
	case 0x00d: return "invalid SGL segment descriptor";
	case 0x00f: return "data SGL length invalid";
	case 0x011: return "SGL descriptor type invalid";
	case 0x013: return "PRP offset invalid";
	case 0x020: return "namespace write protected";
	case 0x080: return "LBA out of range";
	case 0x081: return "capacity exceeded";
	case 0x083: return "reservation conflict";
	case 0x100: return "completion queue invalid";
	case 0x101: return "invalid queue identifier";
	case 0x102: return "invalid queue size";
	case 0x108: return "invalid interrupt vector";
	case 0x10c: return "invalid queue deletion";
	case 0x182: return "connect: invalid parameters";
	case 0x184: return "connect: host not allowed";
	case 0x285: return "compare failure";
	default: return "error";
	}
}

/* ---- buffers ---------------------------------------------------------------- */

bool
host_buf_reachable(const struct nvl_ctrlr *c, const void *p, size_t len)
{
	const uint8_t *b = p;

	if (c->win == NULL)
		return true;
	return b >= c->win && len <= c->win_size && (size_t)(b - c->win) <= c->win_size - len;
}

static int
window_init(struct nvl_ctrlr *c)
{
	c->npages = (uint32_t)(c->win_size / NVL_NVME_PAGE_SIZE);
	c->alloc_len = calloc(c->npages, sizeof(uint32_t));
	c->used = calloc(c->npages, 1);
	return c->alloc_len && c->used ? 0 : -ENOMEM;
}

NVL_EXPORT void *
nvl_buf_alloc(struct nvl_ctrlr *c, size_t size)
{
	uint32_t need, run = 0, start = 0;
	void *p = NULL;

	if (size == 0)
		size = 1;
	if (c->win == NULL) {
		if (posix_memalign(&p, NVL_NVME_PAGE_SIZE, NVL_ALIGN_UP(size, NVL_NVME_PAGE_SIZE)))
			return NULL;
		return p;
	}
	need = (uint32_t)((size + NVL_NVME_PAGE_SIZE - 1) / NVL_NVME_PAGE_SIZE);
	if (need > c->npages)
		return NULL;
	pthread_mutex_lock(&c->buf_lock);
	/* first fit, starting at the hint, wrapping once */
	for (uint32_t n = 0, i = c->hint; n < c->npages + need; n++, i++) {
		if (i >= c->npages) {
			i = 0;
			run = 0;
		}
		if (c->used[i]) {
			run = 0;
			continue;
		}
		if (run == 0)
			start = i;
		if (++run == need) {
			memset(c->used + start, 1, need);
			c->alloc_len[start] = need;
			c->hint = start + need;
			p = c->win + (uint64_t)start * NVL_NVME_PAGE_SIZE;
			break;
		}
	}
	pthread_mutex_unlock(&c->buf_lock);
	return p;
}

NVL_EXPORT void
nvl_buf_free(struct nvl_ctrlr *c, void *buf)
{
	uint32_t page, n;

	if (buf == NULL)
		return;
	if (c->win == NULL) {
		free(buf);
		return;
	}
	if (!host_buf_reachable(c, buf, 1))
		return;
	page = (uint32_t)(((uint8_t *)buf - c->win) / NVL_NVME_PAGE_SIZE);
	pthread_mutex_lock(&c->buf_lock);
	n = c->alloc_len[page];
	if (n) {
		memset(c->used + page, 0, n);
		c->alloc_len[page] = 0;
	}
	pthread_mutex_unlock(&c->buf_lock);
}

/* ---- admin --------------------------------------------------------------------- */

NVL_EXPORT int
nvl_ctrlr_admin(struct nvl_ctrlr *c, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len,
		enum nvl_xfer_dir dir, struct nvl_nvme_cpl *cpl)
{
	struct nvl_nvme_cpl local;
	void *b = buf;
	int rc;

	if (cpl == NULL)
		cpl = &local;
	memset(cpl, 0, sizeof(*cpl));
	if (host_is_dead(c))
		return -ENOTCONN;
	if (len && !host_buf_reachable(c, buf, len)) {
		b = nvl_buf_alloc(c, len);
		if (b == NULL)
			return -ENOMEM;
		if (dir == NVL_XFER_TO_CTRLR)
			memcpy(b, buf, len);
		else
			memset(b, 0, len);
	}
	pthread_mutex_lock(&c->admin_lock);
	cmd->cid = host_admin_cid(c);
	NVL_TRACELOG(host, "admin submit: opc 0x%02x cid %u nsid %u cdw10 0x%08x cdw11 0x%08x "
			   "cdw12 0x%08x cdw13 0x%08x cdw14 0x%08x cdw15 0x%08x, %u bytes %s",
		     cmd->opc, cmd->cid, cmd->nsid, cmd->cdw10, cmd->cdw11, cmd->cdw12, cmd->cdw13,
		     cmd->cdw14, cmd->cdw15, len,
		     dir == NVL_XFER_TO_CTRLR ? "out" : dir == NVL_XFER_FROM_CTRLR ? "in" : "");
	rc = c->t->admin(c, cmd, b, len, dir, cpl);
	pthread_mutex_unlock(&c->admin_lock);
	NVL_VERBOSELOG(host, "admin opc 0x%02x cid %u nsid %u: %s (status 0x%03x, cdw0 0x%x)",
		       cmd->opc, cmd->cid, cmd->nsid,
		       rc < 0 ? strerror(-rc) : nvl_status_str(nvl_cpl_status(cpl)),
		       nvl_cpl_status(cpl), cpl->cdw0);
	if (b != buf) {
		if (rc == 0 && dir == NVL_XFER_FROM_CTRLR)
			memcpy(buf, b, len);
		nvl_buf_free(c, b);
	}
	if (rc == 0 && nvl_cpl_status(cpl) != 0) {
		host_set_error(c, "admin opcode 0x%02x: %s (status 0x%03x)", cmd->opc,
			       nvl_status_str(nvl_cpl_status(cpl)), nvl_cpl_status(cpl));
		return -EREMOTEIO;
	}
	return rc;
}

static int
identify(struct nvl_ctrlr *c, uint8_t cns, uint32_t nsid, void *buf)
{
	struct nvl_nvme_cmd cmd = { 0 };

	cmd.opc = NVL_NVME_ADM_IDENTIFY;
	cmd.nsid = nsid;
	cmd.cdw10 = cns;
	return nvl_ctrlr_admin(c, &cmd, buf, NVL_NVME_IDENTIFY_SIZE, NVL_XFER_FROM_CTRLR, NULL);
}

NVL_EXPORT int
nvl_ctrlr_list_ns(struct nvl_ctrlr *c, uint32_t *ids, int max)
{
	uint32_t *list = malloc(4096);
	int rc, n = 0;

	if (list == NULL)
		return -ENOMEM;
	rc = identify(c, NVL_NVME_CNS_ACTIVE_NS_LIST, 0, list);
	if (rc == 0)
		for (int i = 0; i < 1024 && list[i] && n < max; i++)
			ids[n++] = list[i];
	free(list);
	return rc < 0 ? rc : n;
}

NVL_EXPORT int
nvl_ns_get_info(struct nvl_ctrlr *c, uint32_t nsid, struct nvl_ns_info *out)
{
	struct nvl_nvme_id_ns *id = malloc(sizeof(*id));
	int rc;

	if (id == NULL)
		return -ENOMEM;
	rc = identify(c, NVL_NVME_CNS_NS, nsid, id);
	if (rc == 0) {
		uint8_t lbaf = id->flbas & 0xf;

		if (id->nsze == 0) {
			rc = -ENOENT;
		} else {
			memset(out, 0, sizeof(*out));
			out->nsid = nsid;
			out->block_size = 1u << id->lbaf[lbaf].lbads;
			out->num_blocks = id->nsze;
			memcpy(out->nguid, id->nguid, 16);
			memcpy(out->eui64, id->eui64, 8);
			out->read_only = id->nsattr & 1;
			out->shared = id->nmic & 1;
			out->rescap = id->rescap;
		}
	}
	free(id);
	if (rc == 0) {
		/* the UUID comes from the namespace identification descriptors */
		uint8_t *d = malloc(4096);

		if (d && identify(c, NVL_NVME_CNS_NS_ID_DESCRIPTORS, nsid, d) == 0) {
			for (size_t off = 0; off + 4 <= 4096 && d[off];) {
				uint8_t type = d[off], l = d[off + 1];

				if (off + 4 + l > 4096)
					break;
				if (type == NVL_NVME_NIDT_UUID && l == 16)
					memcpy(out->uuid, d + off + 4, 16);
				off += 4 + l;
			}
		}
		free(d);
	}
	return rc;
}

/* ---- asynchronous events ------------------------------------------------------------ */

uint16_t
host_admin_cid(struct nvl_ctrlr *c)
{
	uint16_t cid = c->next_admin_cid++;

	if (c->aer_outstanding && cid == c->aer_cid)
		cid = c->next_admin_cid++;
	return cid;
}

void
host_aen_complete(struct nvl_ctrlr *c, const struct nvl_nvme_cpl *cpl)
{
	uint16_t st = nvl_cpl_status(cpl);

	c->aer_outstanding = false;
	c->aen_arrived = true;
	if (st != 0) {
		/* AER limit, or aborted because the admin queue is going: stop asking */
		c->aen_enabled = false;
		c->aer_status = st;
		return;
	}
	if (c->naen < HOST_AEN_QUEUE)
		c->aen[(c->aen_head + c->naen++) % HOST_AEN_QUEUE] = cpl->cdw0;
}

/* admin_lock held: keep one AER outstanding while events are enabled. */
static int
aer_arm(struct nvl_ctrlr *c)
{
	struct nvl_nvme_cmd cmd = { 0 };
	int rc;

	if (!c->aen_enabled || c->aer_outstanding)
		return 0;
	cmd.opc = NVL_NVME_ADM_ASYNC_EVENT;
	cmd.cid = host_admin_cid(c);
	rc = c->t->aer_submit(c, &cmd);
	if (rc < 0) {
		host_set_error(c, "asynchronous event request: %s", strerror(-rc));
		return rc;
	}
	c->aer_cid = cmd.cid;
	c->aer_outstanding = true;
	return 0;
}

NVL_EXPORT int
nvl_ctrlr_aen_enable(struct nvl_ctrlr *c, uint32_t aec)
{
	int rc;

	if (c->t->aer_submit == NULL || c->t->admin_poll == NULL)
		return -EOPNOTSUPP;
	if (aec) {
		struct nvl_nvme_cmd cmd = { 0 };

		cmd.opc = NVL_NVME_ADM_SET_FEATURES;
		cmd.cdw10 = NVL_NVME_FEAT_ASYNC_EVENT_CONFIG;
		cmd.cdw11 = aec;
		rc = nvl_ctrlr_admin(c, &cmd, NULL, 0, NVL_XFER_NONE, NULL);
		if (rc < 0)
			return rc;
	}
	pthread_mutex_lock(&c->admin_lock);
	if (host_is_dead(c)) {
		rc = -ENOTCONN;
	} else {
		c->aen_enabled = true;
		c->aer_status = 0;
		rc = aer_arm(c);
	}
	pthread_mutex_unlock(&c->admin_lock);
	return rc;
}

NVL_EXPORT int
nvl_ctrlr_aen_poll(struct nvl_ctrlr *c, struct nvl_aen *ev, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
					   : nvl_now_ns() + (uint64_t)timeout_ms * 1000000ULL;

	for (;;) {
		uint32_t cdw0 = 0;
		bool got = false;
		int rc = 0;

		/* the lock is dropped between slices of at most 100 ms, so other
		 * admin commands (Keep Alive) go on while we wait */
		pthread_mutex_lock(&c->admin_lock);
		if (c->naen == 0 && c->aen_enabled && !host_is_dead(c)) {
			rc = aer_arm(c);
			if (rc == 0) {
				uint64_t now = nvl_now_ns();
				uint64_t left = now >= deadline ? 0 : deadline - now;
				int slice_ms = left >= 100000000ULL ? 100
								    : (int)((left + 999999) / 1000000);

				c->aen_arrived = false;
				rc = c->t->admin_poll(c, slice_ms);
			}
		}
		if (c->naen > 0) {
			cdw0 = c->aen[c->aen_head];
			c->aen_head = (c->aen_head + 1) % HOST_AEN_QUEUE;
			c->naen--;
			got = true;
		} else if (rc == 0 && host_is_dead(c)) {
			rc = -ENOTCONN;
		} else if (rc == 0 && !c->aen_enabled) {
			if (c->aer_status)
				host_set_error(c, "asynchronous event request: %s",
					       nvl_status_str(c->aer_status));
			rc = c->aer_status ? -EREMOTEIO : -EINVAL;
		}
		pthread_mutex_unlock(&c->admin_lock);
		if (got) {
			ev->cdw0 = cdw0;
			ev->type = cdw0 & 0x7;
			ev->info = (uint8_t)(cdw0 >> 8);
			ev->log_page = (uint8_t)(cdw0 >> 16);
			return 1;
		}
		if (rc < 0)
			return rc;
		if (nvl_now_ns() >= deadline)
			return 0;
	}
}

NVL_EXPORT int
nvl_ctrlr_changed_ns(struct nvl_ctrlr *c, uint32_t *ids, int max)
{
	struct nvl_nvme_cmd cmd = { 0 };
	uint32_t *list = malloc(4096);
	int rc, n = 0;

	if (list == NULL)
		return -ENOMEM;
	/* Get Log Page 04h, whole page, RAE clear: clears it and re-arms the event */
	cmd.opc = NVL_NVME_ADM_GET_LOG_PAGE;
	cmd.nsid = NVL_NVME_NSID_ALL;
	cmd.cdw10 = NVL_NVME_LOG_CHANGED_NS | ((4096u / 4 - 1) << 16);
	rc = nvl_ctrlr_admin(c, &cmd, list, 4096, NVL_XFER_FROM_CTRLR, NULL);
	if (rc == 0 && list[0] == 0xffffffffu)
		rc = -E2BIG;
	if (rc == 0)
		for (int i = 0; i < 1024 && list[i] && n < max; i++)
			ids[n++] = list[i];
	free(list);
	return rc < 0 ? rc : n;
}

/* ---- keep-alive ---------------------------------------------------------------------- */

static void *
keepalive_thread(void *arg)
{
	struct nvl_ctrlr *c = arg;
	uint32_t period = c->opts.kato_ms / 3;

	if (period < 100)
		period = 100;
	pthread_mutex_lock(&c->ka_lock);
	while (!c->ka_stop) {
		struct timespec ts;
		struct nvl_nvme_cmd cmd = { 0 };

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += period / 1000;
		ts.tv_nsec += (long)(period % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->ka_cond, &c->ka_lock, &ts);
		if (c->ka_stop || host_is_dead(c))
			break;
		pthread_mutex_unlock(&c->ka_lock);
		cmd.opc = NVL_NVME_ADM_KEEP_ALIVE;
		if (nvl_ctrlr_admin(c, &cmd, NULL, 0, NVL_XFER_NONE, NULL) == -ENOTCONN)
			host_set_dead(c);
		pthread_mutex_lock(&c->ka_lock);
	}
	pthread_mutex_unlock(&c->ka_lock);
	return NULL;
}

/* ---- connect ---------------------------------------------------------------------- */

static void
default_hostid(uint8_t id[16])
{
	char mid[64] = "";
	int fd = open("/etc/machine-id", O_RDONLY | O_CLOEXEC);
	uint32_t h1, h2, h3, h4;

	if (fd >= 0) {
		ssize_t n = read(fd, mid, sizeof(mid) - 1);

		mid[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	/* one identity per machine: hosts are machines, not processes */
	h1 = nvl_crc32c(mid, strlen(mid));
	h2 = nvl_crc32c_update(h1, "nvlend-host", 11);
	h3 = nvl_crc32c_update(h2, mid, strlen(mid));
	h4 = nvl_crc32c_update(h3, "id", 2);
	memcpy(id, &h1, 4);
	memcpy(id + 4, &h2, 4);
	memcpy(id + 8, &h3, 4);
	memcpy(id + 12, &h4, 4);
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

/* A host named by its NQN keeps one identity: the NQN's UUID if it has one,
 * else a hash of the NQN. */
static void
hostid_from_nqn(const char *nqn, uint8_t id[16])
{
	static const char pfx[] = "nqn.2014-08.org.nvmexpress:uuid:";
	uint32_t h[4];

	if (strncmp(nqn, pfx, sizeof(pfx) - 1) == 0) {
		const char *u = nqn + sizeof(pfx) - 1;
		unsigned n = 0;

		for (; *u && n < 16; u++) {
			unsigned v;

			if (*u == '-')
				continue;
			if (sscanf(u, "%2x", &v) != 1)
				break;
			id[n++] = (uint8_t)v;
			u++;
		}
		if (n == 16)
			return;
	}
	h[0] = nvl_crc32c(nqn, strlen(nqn));
	for (int i = 1; i < 4; i++)
		h[i] = nvl_crc32c_update(h[i - 1], nqn, strlen(nqn));
	memcpy(id, h, 16);
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

NVL_EXPORT int
nvl_ctrlr_connect(const char *uri, const struct nvl_ctrlr_opts *opts, struct nvl_ctrlr **out)
{
	static const uint8_t zero[16];
	struct nvl_ctrlr *c;
	int rc;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	rc = nvl_uri_parse(uri, &c->uri);
	if (rc < 0)
		goto err_free;
	if (c->uri.kind == NVL_URI_NVME_SHM) {
		c->t = &g_host_shm;
	} else if (c->uri.kind == NVL_URI_NVME_TCP && g_host_tcp) {
		c->t = g_host_tcp;
	} else {
		rc = -EPROTONOSUPPORT;
		goto err_free;
	}
	if (opts)
		c->opts = *opts;
	else
		nvl_ctrlr_opts_default(&c->opts);
	if (c->opts.timeout_ms == 0)
		c->opts.timeout_ms = 10000;
	if (memcmp(c->opts.hostid, zero, 16) != 0)
		memcpy(c->hostid, c->opts.hostid, 16);
	else if (c->opts.hostnqn)
		hostid_from_nqn(c->opts.hostnqn, c->hostid);
	else
		default_hostid(c->hostid);
	if (c->opts.hostnqn) {
		rc = nvl_strlcpy(c->hostnqn, c->opts.hostnqn, sizeof(c->hostnqn));
		if (rc < 0)
			goto err_free;
	} else {
		char u[40];

		snprintf(u, sizeof(u),
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 c->hostid[0], c->hostid[1], c->hostid[2], c->hostid[3], c->hostid[4],
			 c->hostid[5], c->hostid[6], c->hostid[7], c->hostid[8], c->hostid[9],
			 c->hostid[10], c->hostid[11], c->hostid[12], c->hostid[13], c->hostid[14],
			 c->hostid[15]);
		snprintf(c->hostnqn, sizeof(c->hostnqn), "nqn.2014-08.org.nvmexpress:uuid:%s", u);
	}
	pthread_mutex_init(&c->admin_lock, NULL);
	pthread_mutex_init(&c->buf_lock, NULL);
	pthread_mutex_init(&c->ka_lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->ka_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	rc = c->t->connect(c);
	if (rc < 0)
		goto err_locks;
	if (c->win) {
		rc = window_init(c);
		if (rc < 0)
			goto err_disconnect;
	}
	rc = identify(c, NVL_NVME_CNS_CTRLR, 0, &c->id);
	if (rc < 0)
		goto err_disconnect;
	c->max_xfer = c->id.mdts ? (uint32_t)NVL_NVME_PAGE_SIZE << c->id.mdts : 1u << 20;
	if (c->max_xfer > (1u << 20))
		c->max_xfer = 1u << 20;
	c->default_nsid = c->uri.nsid;
	if (c->default_nsid == 0 && c->id.cntrltype != NVL_NVME_CNTRLTYPE_DISCOVERY) {
		uint32_t first;

		if (nvl_ctrlr_list_ns(c, &first, 1) == 1)
			c->default_nsid = first;
	}
	if (c->opts.keepalive_thread && c->opts.kato_ms) {
		if (pthread_create(&c->ka_thread, NULL, keepalive_thread, c) == 0)
			c->ka_running = true;
	}
	NVL_VERBOSELOG(host, "connected to %s as %s: controller %u (%s), MDTS %u bytes, %u I/O "
			     "queues of up to %u entries, keep-alive %u ms",
		       uri, c->hostnqn, c->cntlid,
		       c->id.cntrltype == NVL_NVME_CNTRLTYPE_DISCOVERY ? "discovery" : "I/O",
		       c->max_xfer, c->max_io_queues, c->max_queue_entries, c->opts.kato_ms);
	*out = c;
	return 0;
err_disconnect:
	c->t->disconnect(c);
err_locks:
	pthread_mutex_destroy(&c->admin_lock);
	pthread_mutex_destroy(&c->buf_lock);
	pthread_mutex_destroy(&c->ka_lock);
	pthread_cond_destroy(&c->ka_cond);
err_free:
	free(c->alloc_len);
	free(c->used);
	free(c);
	return rc;
}

NVL_EXPORT void
nvl_ctrlr_disconnect(struct nvl_ctrlr *c)
{
	if (c == NULL)
		return;
	if (c->ka_running) {
		pthread_mutex_lock(&c->ka_lock);
		c->ka_stop = true;
		pthread_cond_signal(&c->ka_cond);
		pthread_mutex_unlock(&c->ka_lock);
		pthread_join(c->ka_thread, NULL);
	}
	for (unsigned q = 1; q <= HOST_MAX_QUEUES; q++)
		if (c->qpairs[q])
			nvl_qpair_destroy(c->qpairs[q]);
	c->t->disconnect(c);
	pthread_mutex_destroy(&c->admin_lock);
	pthread_mutex_destroy(&c->buf_lock);
	pthread_mutex_destroy(&c->ka_lock);
	pthread_cond_destroy(&c->ka_cond);
	free(c->alloc_len);
	free(c->used);
	free(c);
}

NVL_EXPORT const struct nvl_nvme_id_ctrl *
nvl_ctrlr_identify(const struct nvl_ctrlr *c)
{
	return &c->id;
}

NVL_EXPORT uint16_t
nvl_ctrlr_cntlid(const struct nvl_ctrlr *c)
{
	return c->cntlid;
}

NVL_EXPORT uint32_t
nvl_ctrlr_default_nsid(const struct nvl_ctrlr *c)
{
	return c->default_nsid;
}

NVL_EXPORT const char *
nvl_ctrlr_hostnqn(const struct nvl_ctrlr *c)
{
	return c->hostnqn;
}

NVL_EXPORT const uint8_t *
nvl_ctrlr_hostid(const struct nvl_ctrlr *c)
{
	return c->hostid;
}

NVL_EXPORT uint32_t
nvl_ctrlr_max_xfer(const struct nvl_ctrlr *c)
{
	return c->max_xfer;
}

/* ---- queue pairs ------------------------------------------------------------------ */

NVL_EXPORT int
nvl_qpair_create(struct nvl_ctrlr *c, const struct nvl_qpair_opts *opts, struct nvl_qpair **out)
{
	struct nvl_qpair *qp;
	uint16_t qid = 0;
	int rc;

	if (host_is_dead(c))
		return -ENOTCONN;
	qp = calloc(1, sizeof(*qp));
	if (qp == NULL)
		return -ENOMEM;
	if (opts)
		qp->opts = *opts;
	else
		nvl_qpair_opts_default(&qp->opts);
	if (qp->opts.entries == 0)
		qp->opts.entries = 128;
	if (qp->opts.entries < 2 || (c->max_queue_entries && qp->opts.entries > c->max_queue_entries)) {
		free(qp);
		return -EINVAL;
	}
	pthread_mutex_lock(&c->admin_lock);
	for (uint16_t q = 1; q <= c->max_io_queues && q <= HOST_MAX_QUEUES; q++) {
		if (!c->qid_used[q]) {
			qid = q;
			c->qid_used[q] = true;
			break;
		}
	}
	pthread_mutex_unlock(&c->admin_lock);
	if (qid == 0) {
		free(qp);
		return -ENOSPC;
	}
	qp->c = c;
	qp->qid = qid;
	qp->entries = qp->opts.entries;
	qp->reqs = calloc(qp->entries, sizeof(*qp->reqs));
	qp->free_cids = calloc(qp->entries, sizeof(uint16_t));
	if (qp->reqs == NULL || qp->free_cids == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	/* at most entries - 1 commands in flight (a full ring keeps one slot empty) */
	for (uint32_t i = 0; i < qp->entries - 1; i++) {
		qp->reqs[i].cid = (uint16_t)i;
		qp->free_cids[qp->nfree++] = (uint16_t)(qp->entries - 2 - i);
	}
	rc = c->t->qpair_create(qp);
	if (rc < 0) {
		NVL_VERBOSELOG(host, "controller %u: I/O queue %u not created: %s", c->cntlid,
			       qid, strerror(-rc));
		goto err;
	}
	c->qpairs[qid] = qp;
	NVL_VERBOSELOG(host, "controller %u: I/O queue %u created: %u entries, %s, spin %u us",
		       c->cntlid, qid, qp->entries, qp->opts.interrupts ? "interrupts" : "polled",
		       qp->opts.spin_us);
	*out = qp;
	return 0;
err:
	pthread_mutex_lock(&c->admin_lock);
	c->qid_used[qid] = false;
	pthread_mutex_unlock(&c->admin_lock);
	free(qp->reqs);
	free(qp->free_cids);
	free(qp);
	return rc;
}

NVL_EXPORT void
nvl_qpair_destroy(struct nvl_qpair *qp)
{
	struct nvl_ctrlr *c;
	uint64_t deadline;

	if (qp == NULL)
		return;
	c = qp->c;
	deadline = nvl_now_ns() + 10000000000ULL;
	while (qp->outstanding && !host_is_dead(c) && nvl_now_ns() < deadline)
		nvl_qpair_wait(qp, 100);
	c->t->qpair_destroy(qp);
	for (uint32_t i = 0; i < qp->entries; i++) {
		if (qp->reqs[i].bounce)
			nvl_buf_free(c, qp->reqs[i].bounce);
		if (qp->reqs[i].prp_list)
			nvl_buf_free(c, qp->reqs[i].prp_list);
	}
	c->qpairs[qp->qid] = NULL;
	pthread_mutex_lock(&c->admin_lock);
	c->qid_used[qp->qid] = false;
	pthread_mutex_unlock(&c->admin_lock);
	free(qp->reqs);
	free(qp->free_cids);
	free(qp);
}

NVL_EXPORT uint16_t
nvl_qpair_id(const struct nvl_qpair *qp)
{
	return qp->qid;
}

NVL_EXPORT uint32_t
nvl_qpair_outstanding(const struct nvl_qpair *qp)
{
	return qp->outstanding;
}

void
host_complete(struct nvl_qpair *qp, const struct nvl_nvme_cpl *cpl)
{
	struct host_req *r;
	nvl_io_cb cb;
	void *arg;

	if (cpl->cid >= qp->entries - 1 || !qp->reqs[cpl->cid].busy)
		return; /* not ours (or a duplicate): a misbehaving target; ignore */
	r = &qp->reqs[cpl->cid];
	if (r->bounce) {
		if (r->dir == NVL_XFER_FROM_CTRLR && nvl_cpl_status(cpl) == 0)
			memcpy(r->user, r->bounce, r->len);
		nvl_buf_free(qp->c, r->bounce);
		r->bounce = NULL;
	}
	cb = r->cb;
	arg = r->arg;
	r->busy = false;
	qp->free_cids[qp->nfree++] = r->cid;
	qp->outstanding--;
	if (cb)
		cb(arg, cpl);
}

NVL_EXPORT int
nvl_submit_raw(struct nvl_qpair *qp, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len,
	       enum nvl_xfer_dir dir, nvl_io_cb cb, void *arg)
{
	struct nvl_ctrlr *c = qp->c;
	struct host_req *r;
	void *b = buf;
	int rc;

	if (host_is_dead(c))
		return -ENOTCONN;
	if (len > c->max_xfer && dir != NVL_XFER_NONE)
		return -EINVAL;
	if (qp->nfree == 0)
		return -EAGAIN;
	r = &qp->reqs[qp->free_cids[qp->nfree - 1]];
	r->bounce = NULL;
	if (len && !host_buf_reachable(c, buf, len)) {
		b = nvl_buf_alloc(c, len);
		if (b == NULL)
			return -ENOMEM;
		if (dir == NVL_XFER_TO_CTRLR)
			memcpy(b, buf, len);
		r->bounce = b;
	}
	qp->nfree--;
	r->busy = true;
	r->dir = (uint8_t)dir;
	r->cb = cb;
	r->arg = arg;
	r->user = buf;
	r->len = len;
	cmd->cid = r->cid;
	qp->outstanding++;
	rc = c->t->submit(qp, cmd, r, b, len, dir);
	if (rc < 0) {
		qp->outstanding--;
		r->busy = false;
		if (r->bounce) {
			nvl_buf_free(c, r->bounce);
			r->bounce = NULL;
		}
		qp->free_cids[qp->nfree++] = r->cid;
	}
	return rc;
}

static int
rw(struct nvl_qpair *qp, uint8_t opc, uint32_t nsid, void *buf, uint64_t slba, uint32_t nlb,
   uint32_t flags, nvl_io_cb cb, void *arg, uint32_t bs_hint)
{
	struct nvl_nvme_cmd cmd = { 0 };
	uint64_t bytes = (uint64_t)nlb * bs_hint;

	if (nlb == 0 || nlb > 65536 || bytes > qp->c->max_xfer)
		return -EINVAL;
	cmd.opc = opc;
	cmd.nsid = nsid;
	cmd.cdw10 = (uint32_t)slba;
	cmd.cdw11 = (uint32_t)(slba >> 32);
	cmd.cdw12 = (nlb - 1) | ((flags & NVL_IO_FUA) ? NVL_NVME_RW_FUA : 0);
	return nvl_submit_raw(qp, &cmd, buf, (uint32_t)bytes,
			      opc == NVL_NVME_IO_READ ? NVL_XFER_FROM_CTRLR : NVL_XFER_TO_CTRLR, cb,
			      arg);
}

/* Block size per namespace, learnt once (I/O builders need byte lengths). */
static uint32_t
ns_block_size(struct nvl_qpair *qp, uint32_t nsid)
{
	static __thread struct {
		struct nvl_ctrlr *c;
		uint32_t nsid, bs;
	} cache[8];
	struct nvl_ns_info info;
	unsigned slot = nsid % 8;

	if (cache[slot].c == qp->c && cache[slot].nsid == nsid)
		return cache[slot].bs;
	if (nvl_ns_get_info(qp->c, nsid, &info) < 0)
		return 0;
	cache[slot].c = qp->c;
	cache[slot].nsid = nsid;
	cache[slot].bs = info.block_size;
	return info.block_size;
}

NVL_EXPORT int
nvl_read(struct nvl_qpair *qp, uint32_t nsid, void *buf, uint64_t slba, uint32_t nlb,
	 uint32_t flags, nvl_io_cb cb, void *arg)
{
	uint32_t bs = ns_block_size(qp, nsid);

	if (bs == 0)
		return -ENOENT;
	return rw(qp, NVL_NVME_IO_READ, nsid, buf, slba, nlb, flags, cb, arg, bs);
}

NVL_EXPORT int
nvl_write(struct nvl_qpair *qp, uint32_t nsid, const void *buf, uint64_t slba, uint32_t nlb,
	  uint32_t flags, nvl_io_cb cb, void *arg)
{
	uint32_t bs = ns_block_size(qp, nsid);

	if (bs == 0)
		return -ENOENT;
	return rw(qp, NVL_NVME_IO_WRITE, nsid, (void *)buf, slba, nlb, flags, cb, arg, bs);
}

NVL_EXPORT int
nvl_compare(struct nvl_qpair *qp, uint32_t nsid, const void *buf, uint64_t slba, uint32_t nlb,
	    nvl_io_cb cb, void *arg)
{
	uint32_t bs = ns_block_size(qp, nsid);

	if (bs == 0)
		return -ENOENT;
	return rw(qp, NVL_NVME_IO_COMPARE, nsid, (void *)buf, slba, nlb, 0, cb, arg, bs);
}

NVL_EXPORT int
nvl_flush(struct nvl_qpair *qp, uint32_t nsid, nvl_io_cb cb, void *arg)
{
	struct nvl_nvme_cmd cmd = { 0 };

	cmd.opc = NVL_NVME_IO_FLUSH;
	cmd.nsid = nsid;
	return nvl_submit_raw(qp, &cmd, NULL, 0, NVL_XFER_NONE, cb, arg);
}

NVL_EXPORT int
nvl_write_zeroes(struct nvl_qpair *qp, uint32_t nsid, uint64_t slba, uint32_t nlb,
		 uint32_t flags, nvl_io_cb cb, void *arg)
{
	struct nvl_nvme_cmd cmd = { 0 };

	if (nlb == 0 || nlb > 65536)
		return -EINVAL;
	cmd.opc = NVL_NVME_IO_WRITE_ZEROES;
	cmd.nsid = nsid;
	cmd.cdw10 = (uint32_t)slba;
	cmd.cdw11 = (uint32_t)(slba >> 32);
	cmd.cdw12 = (nlb - 1) | ((flags & NVL_IO_DEALLOC) ? NVL_NVME_WZ_DEAC : 0) |
		    ((flags & NVL_IO_FUA) ? NVL_NVME_RW_FUA : 0);
	return nvl_submit_raw(qp, &cmd, NULL, 0, NVL_XFER_NONE, cb, arg);
}

NVL_EXPORT int
nvl_deallocate(struct nvl_qpair *qp, uint32_t nsid, const struct nvl_range *ranges,
	       unsigned nranges, nvl_io_cb cb, void *arg)
{
	struct nvl_nvme_cmd cmd = { 0 };
	struct nvl_nvme_dsm_range r[256];

	if (nranges == 0 || nranges > 256)
		return -EINVAL;
	for (unsigned i = 0; i < nranges; i++) {
		r[i].attributes = 0;
		r[i].nlb = ranges[i].nlb;
		r[i].slba = ranges[i].slba;
	}
	cmd.opc = NVL_NVME_IO_DSM;
	cmd.nsid = nsid;
	cmd.cdw10 = nranges - 1;
	cmd.cdw11 = NVL_NVME_DSM_AD;
	/* r is on our stack: submit_raw bounces it into the window */
	return nvl_submit_raw(qp, &cmd, r, nranges * (uint32_t)sizeof(r[0]), NVL_XFER_TO_CTRLR, cb,
			      arg);
}

NVL_EXPORT int
nvl_resv_register(struct nvl_qpair *qp, uint32_t nsid, uint8_t action, uint64_t crkey,
		  uint64_t nrkey, bool iekey, uint8_t cptpl, nvl_io_cb cb, void *arg)
{
	struct nvl_nvme_cmd cmd = { 0 };
	struct nvl_nvme_resv_register_data d = { .crkey = crkey, .nrkey = nrkey };

	cmd.opc = NVL_NVME_IO_RESV_REGISTER;
	cmd.nsid = nsid;
	cmd.cdw10 = (action & 7u) | (iekey ? 1u << 3 : 0) | ((uint32_t)(cptpl & 3) << 30);
	return nvl_submit_raw(qp, &cmd, &d, sizeof(d), NVL_XFER_TO_CTRLR, cb, arg);
}

NVL_EXPORT int
nvl_resv_acquire(struct nvl_qpair *qp, uint32_t nsid, uint8_t action, uint8_t rtype,
		 uint64_t crkey, uint64_t prkey, nvl_io_cb cb, void *arg)
{
	struct nvl_nvme_cmd cmd = { 0 };
	struct nvl_nvme_resv_acquire_data d = { .crkey = crkey, .prkey = prkey };

	cmd.opc = NVL_NVME_IO_RESV_ACQUIRE;
	cmd.nsid = nsid;
	cmd.cdw10 = (action & 7u) | ((uint32_t)rtype << 8);
	return nvl_submit_raw(qp, &cmd, &d, sizeof(d), NVL_XFER_TO_CTRLR, cb, arg);
}

NVL_EXPORT int
nvl_resv_release(struct nvl_qpair *qp, uint32_t nsid, uint8_t action, uint8_t rtype,
		 uint64_t crkey, nvl_io_cb cb, void *arg)
{
	struct nvl_nvme_cmd cmd = { 0 };
	uint64_t d = crkey;

	cmd.opc = NVL_NVME_IO_RESV_RELEASE;
	cmd.nsid = nsid;
	cmd.cdw10 = (action & 7u) | ((uint32_t)rtype << 8);
	return nvl_submit_raw(qp, &cmd, &d, sizeof(d), NVL_XFER_TO_CTRLR, cb, arg);
}

NVL_EXPORT int
nvl_resv_report(struct nvl_qpair *qp, uint32_t nsid, void *buf, uint32_t len, bool eds,
		nvl_io_cb cb, void *arg)
{
	struct nvl_nvme_cmd cmd = { 0 };

	if (len < 4 || len % 4)
		return -EINVAL;
	cmd.opc = NVL_NVME_IO_RESV_REPORT;
	cmd.nsid = nsid;
	cmd.cdw10 = len / 4 - 1;
	cmd.cdw11 = eds ? 1 : 0;
	return nvl_submit_raw(qp, &cmd, buf, len, NVL_XFER_FROM_CTRLR, cb, arg);
}

NVL_EXPORT int
nvl_qpair_process_completions(struct nvl_qpair *qp, uint32_t max)
{
	int n = qp->c->t->poll(qp, max);

	if (n == 0 && host_is_dead(qp->c))
		return -ENOTCONN;
	return n;
}

NVL_EXPORT int
nvl_qpair_wait(struct nvl_qpair *qp, int timeout_ms)
{
	int n = qp->c->t->poll(qp, 0);

	if (n)
		return n;
	if (host_is_dead(qp->c))
		return -ENOTCONN;
	return qp->c->t->wait(qp, timeout_ms);
}

/* ---- synchronous helpers ------------------------------------------------------------ */

NVL_EXPORT void
nvl_sync_cb(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct nvl_sync_state *st = arg;

	st->cpl = *cpl;
	st->done = true;
}

NVL_EXPORT int
nvl_sync_wait(struct nvl_qpair *qp, struct nvl_sync_state *st, int submit_rc,
	      struct nvl_nvme_cpl *cpl)
{
	uint64_t deadline = nvl_now_ns() + (uint64_t)qp->c->opts.timeout_ms * 1000000ULL * 3;

	if (submit_rc < 0)
		return submit_rc;
	while (!st->done) {
		int n = nvl_qpair_wait(qp, 100);

		if (n < 0)
			return n;
		if (!st->done && nvl_now_ns() > deadline)
			return -ETIMEDOUT;
	}
	if (cpl)
		*cpl = st->cpl;
	return nvl_cpl_status(&st->cpl) ? -EREMOTEIO : 0;
}

NVL_EXPORT int
nvl_read_sync(struct nvl_qpair *qp, uint32_t nsid, void *buf, uint64_t slba, uint32_t nlb,
	      struct nvl_nvme_cpl *cpl)
{
	struct nvl_sync_state st = { 0 };

	return nvl_sync_wait(qp, &st, nvl_read(qp, nsid, buf, slba, nlb, 0, nvl_sync_cb, &st), cpl);
}

NVL_EXPORT int
nvl_write_sync(struct nvl_qpair *qp, uint32_t nsid, const void *buf, uint64_t slba, uint32_t nlb,
	       uint32_t flags, struct nvl_nvme_cpl *cpl)
{
	struct nvl_sync_state st = { 0 };

	return nvl_sync_wait(qp, &st, nvl_write(qp, nsid, buf, slba, nlb, flags, nvl_sync_cb, &st),
			     cpl);
}

NVL_EXPORT int
nvl_flush_sync(struct nvl_qpair *qp, uint32_t nsid, struct nvl_nvme_cpl *cpl)
{
	struct nvl_sync_state st = { 0 };

	return nvl_sync_wait(qp, &st, nvl_flush(qp, nsid, nvl_sync_cb, &st), cpl);
}
