/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libnvlend's synchronous face, controller half (include/nvlend/nvlend.h):
 * connect and disconnect, identify, admin commands, asynchronous events,
 * the keep-alive thread and data-window buffers, all over the host core
 * (host.h) with reconnecting turned off: a lost controller stays lost
 * (-ENOTCONN), as the API promises.
 *
 * Threads: see nvlend_internal.h. Each blocking call drives the core itself
 * under admin_lock (poll, then wait on the core's fds until its next
 * deadline); the keep-alive thread does the same every so often.
 */
#include "host/nvlend_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIB_MAX_FDS (HOST_MAX_QUEUES + 2)
#define LIB_SLICE_MS 100            /* longest single wait: re-check deadlines */
#define LIB_CLOSE_MS 2000           /* orderly disconnect, at most */

int
host_lib_drive(struct nvl_ctrlr *c, uint64_t deadline, bool (*done)(void *arg), void *arg)
{
	struct pollfd pfds[LIB_MAX_FDS];

	for (;;) {
		uint64_t now = nvl_now_ns(), until;
		int n;

		host_ctrlr_poll(c->hc, now);
		if (done(arg))
			return 0;
		now = nvl_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		until = NVL_MIN(deadline, host_ctrlr_next_ns(c->hc));
		n = host_ctrlr_fds(c->hc, pfds, LIB_MAX_FDS);
		(void)poll(pfds, (nfds_t)n,
			   until <= now ? 0
					: (int)NVL_MIN((until - now + 999999) / 1000000,
						       (uint64_t)LIB_SLICE_MS));
	}
}

NVL_EXPORT const char *
nvl_ctrlr_last_error(const struct nvl_ctrlr *c)
{
	return host_ctrlr_last_error(c->hc);
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

/* ---- buffers ---------------------------------------------------------------------------- */

NVL_EXPORT void *
nvl_buf_alloc(struct nvl_ctrlr *c, size_t size)
{
	void *p = NULL;

	if (size == 0)
		size = 1;
	if (c->win)
		return host_window_alloc(c->win, size);
	if (posix_memalign(&p, NVL_NVME_PAGE_SIZE, NVL_ALIGN_UP(size, NVL_NVME_PAGE_SIZE)))
		return NULL;
	return p;
}

NVL_EXPORT void
nvl_buf_free(struct nvl_ctrlr *c, void *buf)
{
	if (buf == NULL)
		return;
	if (c->win)
		host_window_free(c->win, buf);
	else
		free(buf);
}

/* ---- admin ---------------------------------------------------------------------------- */

struct lib_admin_wait {
	bool done;
	int rc;
	struct nvl_nvme_cpl cpl;
};

static void
lib_admin_cb(void *arg, const struct nvl_nvme_cpl *cpl, int rc)
{
	struct lib_admin_wait *w = arg;

	w->cpl = *cpl;
	w->rc = rc;
	w->done = true;
}

static bool
lib_admin_done(void *arg)
{
	return ((struct lib_admin_wait *)arg)->done;
}

NVL_EXPORT int
nvl_ctrlr_admin(struct nvl_ctrlr *c, struct nvl_nvme_cmd *cmd, void *buf, uint32_t len,
		enum nvl_xfer_dir dir, struct nvl_nvme_cpl *cpl)
{
	struct lib_admin_wait w = { 0 };
	struct nvl_nvme_cpl local;
	void *b = buf;
	int rc;

	if (cpl == NULL)
		cpl = &local;
	memset(cpl, 0, sizeof(*cpl));
	if (lib_dead(c))
		return -ENOTCONN;
	if (len && c->win && !host_window_contains(c->win, buf, len)) {
		b = host_window_alloc(c->win, len);
		if (b == NULL)
			return -ENOMEM;
		if (dir == NVL_XFER_TO_CTRLR)
			memcpy(b, buf, len);
		else
			memset(b, 0, len);
	}
	pthread_mutex_lock(&c->admin_lock);
	rc = host_ctrlr_admin(c->hc, cmd, b, len, dir, 0, lib_admin_cb, &w);
	if (rc == 0) {
		/* the core enforces the command's deadline; this one only guards it */
		rc = host_lib_drive(c, nvl_now_ns() + (uint64_t)(c->opts.timeout_ms + 1000) * 1000000ULL,
			       lib_admin_done, &w);
		if (rc == 0)
			rc = w.rc;
	}
	pthread_mutex_unlock(&c->admin_lock);
	if (b != buf) {
		if (rc == 0 && dir == NVL_XFER_FROM_CTRLR)
			memcpy(buf, b, len);
		host_window_free(c->win, b);
	}
	if (rc < 0)
		return rc;
	*cpl = w.cpl;
	if (nvl_cpl_status(cpl) != 0) {
		host_ctrlr_set_error(c->hc, "admin opcode 0x%02x: %s (status 0x%03x)", cmd->opc,
				     nvl_status_str(nvl_cpl_status(cpl)), nvl_cpl_status(cpl));
		return -EREMOTEIO;
	}
	return 0;
}

static int
lib_identify(struct nvl_ctrlr *c, uint8_t cns, uint32_t nsid, void *buf)
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
	rc = lib_identify(c, NVL_NVME_CNS_ACTIVE_NS_LIST, 0, list);
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
	uint8_t *d;
	int rc;

	if (id == NULL)
		return -ENOMEM;
	rc = lib_identify(c, NVL_NVME_CNS_NS, nsid, id);
	if (rc == 0 && id->nsze == 0)
		rc = -ENOENT;
	if (rc == 0)
		host_ns_info_from_id(id, nsid, out);
	free(id);
	if (rc < 0)
		return rc;
	/* the UUID comes from the namespace identification descriptors */
	d = malloc(4096);
	if (d && lib_identify(c, NVL_NVME_CNS_NS_ID_DESCRIPTORS, nsid, d) == 0)
		host_ns_uuid_from_desc(d, out->uuid);
	free(d);
	return 0;
}

/* ---- asynchronous events ----------------------------------------------------------------- */

static void
lib_aer_cb(void *arg, const struct nvl_nvme_cpl *cpl, int rc)
{
	struct nvl_ctrlr *c = arg;
	uint16_t st = nvl_cpl_status(cpl);

	c->aer_outstanding = false;
	c->aen_arrived = true;
	if (rc < 0 || st != 0) {
		/* AER limit, or the admin queue is going: stop asking */
		c->aen_enabled = false;
		c->aer_status = rc < 0 ? 0 : st;
		return;
	}
	if (c->naen < LIB_AEN_QUEUE)
		c->aen[(c->aen_head + c->naen++) % LIB_AEN_QUEUE] = cpl->cdw0;
}

/* admin_lock held: keep one AER outstanding while events are enabled. */
static int
lib_aer_arm(struct nvl_ctrlr *c)
{
	struct nvl_nvme_cmd cmd = { 0 };
	int rc;

	if (!c->aen_enabled || c->aer_outstanding)
		return 0;
	cmd.opc = NVL_NVME_ADM_ASYNC_EVENT;
	rc = host_ctrlr_admin(c->hc, &cmd, NULL, 0, NVL_XFER_NONE, HOST_ADMIN_NO_TIMEOUT,
			      lib_aer_cb, c);
	if (rc < 0) {
		host_ctrlr_set_error(c->hc, "asynchronous event request: %s", strerror(-rc));
		return rc;
	}
	c->aer_outstanding = true;
	return 0;
}

NVL_EXPORT int
nvl_ctrlr_aen_enable(struct nvl_ctrlr *c, uint32_t aec)
{
	int rc;

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
	if (lib_dead(c)) {
		rc = -ENOTCONN;
	} else {
		c->aen_enabled = true;
		c->aer_status = 0;
		rc = lib_aer_arm(c);
	}
	pthread_mutex_unlock(&c->admin_lock);
	return rc;
}

static bool
lib_aen_arrived(void *arg)
{
	struct nvl_ctrlr *c = arg;

	return c->aen_arrived || lib_dead(c);
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
		if (c->naen == 0 && c->aen_enabled && !lib_dead(c)) {
			rc = lib_aer_arm(c);
			if (rc == 0) {
				uint64_t now = nvl_now_ns();

				c->aen_arrived = false;
				(void)host_lib_drive(c, NVL_MIN(deadline, now + 100000000ULL),
						lib_aen_arrived, c);
			}
		}
		if (c->naen > 0) {
			cdw0 = c->aen[c->aen_head];
			c->aen_head = (c->aen_head + 1) % LIB_AEN_QUEUE;
			c->naen--;
			got = true;
		} else if (rc == 0 && lib_dead(c)) {
			rc = -ENOTCONN;
		} else if (rc == 0 && !c->aen_enabled) {
			if (c->aer_status)
				host_ctrlr_set_error(c->hc, "asynchronous event request: %s",
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

/* ---- keep-alive -------------------------------------------------------------------------- */

static bool
lib_admin_idle(void *arg)
{
	struct nvl_ctrlr *c = arg;

	return !host_ctrlr_busy(c->hc) || lib_dead(c);
}

/*
 * The core sends Keep Alive when it is due; this thread only drives it:
 * poll, wait for what it sent (under admin_lock, as any admin command
 * waits), then sleep until the core's next deadline.
 */
static void *
lib_keepalive_thread(void *arg)
{
	struct nvl_ctrlr *c = arg;
	uint64_t next = nvl_now_ns();

	pthread_mutex_lock(&c->ka_lock);
	while (!c->ka_stop) {
		uint64_t now = nvl_now_ns();

		if (now < next) {
			uint64_t wait = NVL_MIN(next - now, 1000000000ULL);
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)(wait / 1000000000ULL);
			ts.tv_nsec += (long)(wait % 1000000000ULL);
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&c->ka_cond, &c->ka_lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&c->ka_lock);
		pthread_mutex_lock(&c->admin_lock);
		(void)host_lib_drive(c, nvl_now_ns() + (uint64_t)c->opts.timeout_ms * 1000000ULL,
				lib_admin_idle, c);
		next = host_ctrlr_next_ns(c->hc);
		pthread_mutex_unlock(&c->admin_lock);
		pthread_mutex_lock(&c->ka_lock);
		if (lib_dead(c))
			break;
	}
	pthread_mutex_unlock(&c->ka_lock);
	return NULL;
}

/* ---- connect ------------------------------------------------------------------------------- */

static bool
lib_connected(void *arg)
{
	struct nvl_ctrlr *c = arg;

	return host_ctrlr_state(c->hc) != HOST_CTRLR_CONNECTING;
}

static void
lib_locks_init(struct nvl_ctrlr *c)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&c->admin_lock, NULL);
	pthread_mutex_init(&c->ka_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->ka_cond, &ca);
	pthread_condattr_destroy(&ca);
}

static void
lib_locks_fini(struct nvl_ctrlr *c)
{
	pthread_mutex_destroy(&c->admin_lock);
	pthread_mutex_destroy(&c->ka_lock);
	pthread_cond_destroy(&c->ka_cond);
}

NVL_EXPORT int
nvl_ctrlr_connect(const char *uri, const struct nvl_ctrlr_opts *opts, struct nvl_ctrlr **out)
{
	static const uint8_t zero[16];
	struct host_ctrlr_opts ho;
	struct nvl_ctrlr *c;
	char why[256] = "";
	int rc;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	rc = nvl_uri_parse(uri, &c->uri);
	if (rc < 0)
		goto err_free;
	if (c->uri.kind != NVL_URI_NVME_SHM && c->uri.kind != NVL_URI_NVME_TCP &&
	    c->uri.kind != NVL_URI_NVME_RDMA) {
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
		host_hostid_from_nqn(c->opts.hostnqn, c->hostid);
	else
		host_default_hostid(c->hostid);
	if (c->opts.hostnqn) {
		rc = nvl_strlcpy(c->hostnqn, c->opts.hostnqn, sizeof(c->hostnqn));
		if (rc < 0)
			goto err_free;
	} else {
		host_hostnqn_from_id(c->hostid, c->hostnqn, sizeof(c->hostnqn));
	}
	c->opts.hostnqn = NULL; /* the caller's string need not outlive the call */

	host_ctrlr_opts_default(&ho);
	ho.uri = &c->uri;
	ho.hostnqn = c->hostnqn;
	memcpy(ho.hostid, c->hostid, 16);
	ho.kato_ms = c->opts.kato_ms;
	ho.send_keepalive = c->opts.keepalive_thread;
	ho.connect_timeout_ms = c->opts.timeout_ms;
	ho.admin_timeout_ms = c->opts.timeout_ms;
	ho.window_bytes = c->opts.window_bytes;
	host_digests_from_env(&ho);
	rc = host_dhchap_from_env(&ho, why, sizeof(why));
	if (rc < 0)
		goto err_free;
	ho.ctrlr_loss_ms = 0; /* the API has no reconnect: a lost controller stays lost */
	lib_locks_init(c);
	rc = host_ctrlr_create(&ho, &c->hc);
	nvl_dhchap_key_wipe(&ho.dhchap_key); /* the controller has its copy */
	nvl_dhchap_key_wipe(&ho.dhchap_ctrlr_key);
	if (rc < 0)
		goto err_locks;
	(void)host_lib_drive(c, UINT64_MAX, lib_connected, c); /* the core's connect timeout ends it */
	if (host_ctrlr_state(c->hc) != HOST_CTRLR_READY) {
		rc = host_ctrlr_errno(c->hc) ? host_ctrlr_errno(c->hc) : -EIO;
		nvl_strlcpy(why, host_ctrlr_last_error(c->hc), sizeof(why));
		host_ctrlr_destroy(c->hc);
		goto err_locks;
	}
	c->max_xfer = host_ctrlr_max_xfer(c->hc);
	c->win = host_ctrlr_window_get(c->hc);
	c->default_nsid = c->uri.nsid ? c->uri.nsid : host_ctrlr_first_nsid(c->hc);
	if (c->opts.keepalive_thread && c->opts.kato_ms) {
		if (pthread_create(&c->ka_thread, NULL, lib_keepalive_thread, c) == 0)
			c->ka_running = true;
	}
	*out = c;
	return 0;
err_locks:
	lib_locks_fini(c);
err_free:
	host_error_note(rc, why);
	free(c);
	return rc;
}

static bool
lib_closed(void *arg)
{
	struct nvl_ctrlr *c = arg;

	return host_ctrlr_state(c->hc) == HOST_CTRLR_CLOSED;
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
	pthread_mutex_lock(&c->admin_lock);
	host_ctrlr_close(c->hc);
	(void)host_lib_drive(c, nvl_now_ns() + LIB_CLOSE_MS * 1000000ULL, lib_closed, c);
	pthread_mutex_unlock(&c->admin_lock);
	host_ctrlr_destroy(c->hc);
	host_window_put(c->win);
	lib_locks_fini(c);
	free(c);
}

NVL_EXPORT const struct nvl_nvme_id_ctrl *
nvl_ctrlr_identify(const struct nvl_ctrlr *c)
{
	return host_ctrlr_id(c->hc);
}

NVL_EXPORT uint16_t
nvl_ctrlr_cntlid(const struct nvl_ctrlr *c)
{
	return host_ctrlr_cntlid(c->hc);
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
