/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End-to-end checks of libnvlend calls against a real nvlendd, one mode per
 * test script (tests/functional/shm_api.sh, shm_ns_events.sh,
 * shm_subsys_admin.sh):
 *
 *   libnvlend_api io URI
 *       Compare (match and mismatch), Flush (one namespace and broadcast),
 *       Write Zeroes, Deallocate (read back as DLFEAT says), list_ns.
 *   libnvlend_api aen URI RPC_SOCKET NQN BDEV NSID
 *       With an Asynchronous Event Request outstanding, adds BDEV as NSID by
 *       RPC, then removes it: each must complete the request with a
 *       namespace-changed notice whose Changed Namespace List names NSID.
 *   libnvlend_api drain URI RPC_SOCKET NQN NSID
 *       Reads in flight on NSID (a slow bdev) while nvmf_subsystem_remove_ns
 *       runs: the RPC must answer only after every one of them completed;
 *       the namespace is gone afterwards.
 *   libnvlend_api hold URI HOSTNQN
 *       Connects as HOSTNQN, prints "connected", then waits (up to 20 s) for
 *       the target to drop the controller; exit 0 once it did.
 *
 * Prints one line per check; exit status = number of failed checks (2 for
 * usage or setup errors).
 */
#include "nvlend/nvlend.h"
#include "nvlend/rpc_client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BS_MAX 4096
#define NBLK 16

static int g_fail;

static void
check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
check(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s  ", ok ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		g_fail++;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
connect_ctrlr(const char *uri, const char *hostnqn, struct nvl_ctrlr **c)
{
	struct nvl_ctrlr_opts o;
	int rc;

	nvl_ctrlr_opts_default(&o);
	o.hostnqn = hostnqn;
	o.kato_ms = 5000;
	rc = nvl_ctrlr_connect(uri, &o, c);
	if (rc < 0)
		fprintf(stderr, "connect %s: %s\n", uri, strerror(-rc));
	return rc;
}

/* ---- io ------------------------------------------------------------------------ */

static void
fill(uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7 + (i >> 8));
}

static bool
all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static int
get_dlfeat(struct nvl_ctrlr *c, uint32_t nsid, uint8_t *dlfeat)
{
	struct nvl_nvme_id_ns *id = malloc(sizeof(*id));
	struct nvl_nvme_cmd cmd = { 0 };
	int rc;

	if (id == NULL)
		return -ENOMEM;
	cmd.opc = NVL_NVME_ADM_IDENTIFY;
	cmd.nsid = nsid;
	cmd.cdw10 = NVL_NVME_CNS_NS;
	rc = nvl_ctrlr_admin(c, &cmd, id, sizeof(*id), NVL_XFER_FROM_CTRLR, NULL);
	if (rc == 0)
		*dlfeat = id->dlfeat;
	free(id);
	return rc;
}

static int
mode_io(const char *uri)
{
	struct nvl_ctrlr *c;
	struct nvl_qpair *qp;
	struct nvl_ns_info info;
	struct nvl_nvme_cpl cpl;
	struct nvl_sync_state st;
	uint8_t *pat, *buf, dlfeat = 0;
	uint32_t nsid, ids[8], bs;
	size_t len;
	int rc, n;

	if (connect_ctrlr(uri, NULL, &c) < 0)
		return 2;
	nsid = nvl_ctrlr_default_nsid(c);
	if (nvl_qpair_create(c, NULL, &qp) < 0 || nvl_ns_get_info(c, nsid, &info) < 0 ||
	    info.block_size > BS_MAX) {
		fprintf(stderr, "setup: %s\n", nvl_ctrlr_last_error(c));
		nvl_ctrlr_disconnect(c);
		return 2;
	}
	bs = info.block_size;
	len = (size_t)NBLK * bs;
	pat = nvl_buf_alloc(c, len);
	buf = nvl_buf_alloc(c, len);
	if (pat == NULL || buf == NULL) {
		fprintf(stderr, "setup: no window space\n");
		nvl_ctrlr_disconnect(c);
		return 2;
	}

	/* list_ns: exactly the namespaces the script configured (1 and 3) */
	n = nvl_ctrlr_list_ns(c, ids, 8);
	check(n == 2 && ids[0] == 1 && ids[1] == 3, "list_ns: %d namespaces (%u, %u)", n,
	      n > 0 ? ids[0] : 0, n > 1 ? ids[1] : 0);
	n = nvl_ctrlr_list_ns(c, ids, 1);
	check(n == 1 && ids[0] == 1, "list_ns honours max (%d)", n);

	/* a pattern, then Compare: same data matches, one changed byte fails */
	fill(pat, len, 0x31);
	rc = nvl_write_sync(qp, nsid, pat, 8, NBLK, 0, &cpl);
	check(rc == 0, "write pattern (%d)", rc);
	memset(&st, 0, sizeof(st));
	rc = nvl_sync_wait(qp, &st, nvl_compare(qp, nsid, pat, 8, NBLK, nvl_sync_cb, &st), &cpl);
	check(rc == 0 && nvl_cpl_status(&cpl) == 0, "compare equal data: success (%d, 0x%03x)", rc,
	      nvl_cpl_status(&cpl));
	memcpy(buf, pat, len);
	buf[len - 1] ^= 0x01;
	memset(&st, 0, sizeof(st));
	rc = nvl_sync_wait(qp, &st, nvl_compare(qp, nsid, buf, 8, NBLK, nvl_sync_cb, &st), &cpl);
	check(rc == -EREMOTEIO && nvl_cpl_status(&cpl) == NVL_NVME_SC_COMPARE_FAILURE,
	      "compare with one bit changed: Compare Failure (%d, 0x%03x)", rc,
	      nvl_cpl_status(&cpl));
	/* a heap buffer (bounce copy) compares too */
	{
		uint8_t *heap = malloc(bs);

		memcpy(heap, pat, bs);
		memset(&st, 0, sizeof(st));
		rc = nvl_sync_wait(qp, &st, nvl_compare(qp, nsid, heap, 8, 1, nvl_sync_cb, &st),
				   &cpl);
		check(rc == 0, "compare from a heap buffer (%d)", rc);
		free(heap);
	}

	/* Flush: async on one namespace, sync, and broadcast */
	memset(&st, 0, sizeof(st));
	rc = nvl_sync_wait(qp, &st, nvl_flush(qp, nsid, nvl_sync_cb, &st), &cpl);
	check(rc == 0 && nvl_cpl_status(&cpl) == 0, "flush (%d)", rc);
	rc = nvl_flush_sync(qp, nsid, &cpl);
	check(rc == 0, "flush_sync (%d)", rc);
	rc = nvl_flush_sync(qp, NVL_NVME_NSID_ALL, &cpl);
	check(rc == 0, "flush_sync of every namespace (%d)", rc);
	rc = nvl_flush_sync(qp, 2, &cpl);
	check(rc == -EREMOTEIO && nvl_cpl_status(&cpl) == NVL_NVME_SC_INVALID_NAMESPACE,
	      "flush of an inactive nsid: Invalid Namespace (0x%03x)", nvl_cpl_status(&cpl));

	/* Write Zeroes on the middle of the pattern; the neighbours stay */
	memset(&st, 0, sizeof(st));
	rc = nvl_sync_wait(qp, &st, nvl_write_zeroes(qp, nsid, 10, 4, 0, nvl_sync_cb, &st), &cpl);
	check(rc == 0, "write_zeroes (%d)", rc);
	rc = nvl_read_sync(qp, nsid, buf, 8, NBLK, &cpl);
	check(rc == 0 && memcmp(buf, pat, 2 * bs) == 0 && all_zero(buf + 2 * bs, 4 * bs) &&
		      memcmp(buf + 6 * bs, pat + 6 * bs, len - 6 * bs) == 0,
	      "write_zeroes reads back zeroes, neighbours intact");
	/* with DEAC (may deallocate) and FUA */
	rc = nvl_write_sync(qp, nsid, pat, 8, NBLK, 0, &cpl);
	check(rc == 0, "rewrite pattern (%d)", rc);
	memset(&st, 0, sizeof(st));
	rc = nvl_sync_wait(qp, &st,
			   nvl_write_zeroes(qp, nsid, 8, 2, NVL_IO_DEALLOC | NVL_IO_FUA,
					    nvl_sync_cb, &st),
			   &cpl);
	check(rc == 0, "write_zeroes DEAC|FUA (%d)", rc);
	rc = nvl_read_sync(qp, nsid, buf, 8, NBLK, &cpl);
	check(rc == 0 && all_zero(buf, 2 * bs) && memcmp(buf + 2 * bs, pat + 2 * bs,
							 len - 2 * bs) == 0,
	      "write_zeroes DEAC reads back zeroes");
	/* out of range */
	memset(&st, 0, sizeof(st));
	rc = nvl_sync_wait(qp, &st,
			   nvl_write_zeroes(qp, nsid, info.num_blocks - 1, 2, 0, nvl_sync_cb, &st),
			   &cpl);
	check(rc == -EREMOTEIO && nvl_cpl_status(&cpl) == NVL_NVME_SC_LBA_OUT_OF_RANGE,
	      "write_zeroes past the end: LBA Out of Range (0x%03x)", nvl_cpl_status(&cpl));

	/* Deallocate two ranges; DLFEAT says what deallocated blocks read as */
	rc = get_dlfeat(c, nsid, &dlfeat);
	check(rc == 0, "identify namespace: DLFEAT 0x%02x", dlfeat);
	rc = nvl_write_sync(qp, nsid, pat, 8, NBLK, 0, &cpl);
	check(rc == 0, "rewrite pattern (%d)", rc);
	{
		struct nvl_range r[2] = { { 9, 2 }, { 20, 3 } };

		memset(&st, 0, sizeof(st));
		rc = nvl_sync_wait(qp, &st, nvl_deallocate(qp, nsid, r, 2, nvl_sync_cb, &st),
				   &cpl);
		check(rc == 0, "deallocate two ranges (%d)", rc);
	}
	rc = nvl_read_sync(qp, nsid, buf, 8, NBLK, &cpl);
	check(rc == 0, "read after deallocate (%d)", rc);
	if ((dlfeat & 0x7) == NVL_NVME_DLFEAT_READ_ZEROES) {
		check(memcmp(buf, pat, bs) == 0 && all_zero(buf + bs, 2 * bs) &&
			      memcmp(buf + 3 * bs, pat + 3 * bs, 9 * bs) == 0 &&
			      all_zero(buf + 12 * bs, 3 * bs) &&
			      memcmp(buf + 15 * bs, pat + 15 * bs, bs) == 0,
		      "deallocated blocks read as zeroes (DLFEAT), the rest intact");
	} else {
		check(memcmp(buf, pat, bs) == 0 && memcmp(buf + 3 * bs, pat + 3 * bs, 9 * bs) == 0,
		      "blocks outside the deallocated ranges intact");
	}
	{
		struct nvl_range bad = { info.num_blocks, 1 };

		memset(&st, 0, sizeof(st));
		rc = nvl_sync_wait(qp, &st, nvl_deallocate(qp, nsid, &bad, 1, nvl_sync_cb, &st),
				   &cpl);
		check(rc == -EREMOTEIO && nvl_cpl_status(&cpl) == NVL_NVME_SC_LBA_OUT_OF_RANGE,
		      "deallocate past the end: LBA Out of Range (0x%03x)", nvl_cpl_status(&cpl));
	}

	nvl_buf_free(c, pat);
	nvl_buf_free(c, buf);
	nvl_qpair_destroy(qp);
	nvl_ctrlr_disconnect(c);
	return g_fail;
}

/* ---- RPC ---------------------------------------------------------------------------- */

static int
rpc_call(const char *sock, const char *method, json_t *params, int timeout_ms)
{
	struct nvl_rpc_client *rc_;
	json_t *res = NULL, *err = NULL;
	int rc;

	rc = nvl_rpc_client_connect(sock, timeout_ms, &rc_);
	if (rc < 0) {
		json_decref(params);
		return rc;
	}
	rc = nvl_rpc_client_call(rc_, method, params, &res, &err);
	if (rc == -EREMOTEIO && err) {
		char *s = json_dumps(err, 0);

		fprintf(stderr, "%s: %s\n", method, s ? s : "?");
		free(s);
	}
	json_decref(res);
	json_decref(err);
	json_decref(params);
	nvl_rpc_client_close(rc_);
	return rc;
}

static int
rpc_add_ns(const char *sock, const char *nqn, const char *bdev, uint32_t nsid)
{
	return rpc_call(sock, "nvmf_subsystem_add_ns",
			json_pack("{s:s, s:{s:s, s:i}}", "nqn", nqn, "namespace", "bdev_name",
				  bdev, "nsid", (json_int_t)nsid),
			10000);
}

static int
rpc_remove_ns(const char *sock, const char *nqn, uint32_t nsid)
{
	return rpc_call(sock, "nvmf_subsystem_remove_ns",
			json_pack("{s:s, s:i}", "nqn", nqn, "nsid", (json_int_t)nsid), 30000);
}

/* ---- aen --------------------------------------------------------------------------- */

static bool
listed(const uint32_t *ids, int n, uint32_t nsid)
{
	for (int i = 0; i < n; i++)
		if (ids[i] == nsid)
			return true;
	return false;
}

/* Wait for one namespace-changed notice and check the log names nsid. */
static void
expect_ns_event(struct nvl_ctrlr *c, uint32_t nsid, const char *what)
{
	struct nvl_aen ev = { 0 };
	uint32_t ids[16];
	int rc, n;

	rc = nvl_ctrlr_aen_poll(c, &ev, 10000);
	check(rc == 1, "%s: asynchronous event arrived (%d)", what, rc);
	check(rc == 1 && ev.type == NVL_NVME_AER_TYPE_NOTICE &&
		      ev.info == NVL_NVME_AER_NOTICE_NS_CHANGED &&
		      ev.log_page == NVL_NVME_LOG_CHANGED_NS,
	      "%s: notice / namespace attribute changed / log 04h (type %u info 0x%02x log "
	      "0x%02x)",
	      what, ev.type, ev.info, ev.log_page);
	n = nvl_ctrlr_changed_ns(c, ids, 16);
	check(n >= 1 && listed(ids, n, nsid), "%s: changed namespace list names %u (%d entries)",
	      what, nsid, n);
	/* reading the log cleared it */
	n = nvl_ctrlr_changed_ns(c, ids, 16);
	check(n == 0, "%s: changed namespace list empty when read again (%d)", what, n);
}

static int
mode_aen(const char *uri, const char *sock, const char *nqn, const char *bdev, uint32_t nsid)
{
	struct nvl_ctrlr *c;
	struct nvl_aen ev;
	uint32_t ids[16];
	int rc, n;

	if (connect_ctrlr(uri, NULL, &c) < 0)
		return 2;
	check(nvl_ctrlr_aen_poll(c, &ev, 0) == -EINVAL, "poll before enabling: -EINVAL");
	rc = nvl_ctrlr_aen_enable(c, NVL_NVME_AEC_NS_ATTR);
	check(rc == 0, "aen_enable (%d: %s)", rc, rc ? nvl_ctrlr_last_error(c) : "");
	if (rc < 0) {
		nvl_ctrlr_disconnect(c);
		return g_fail;
	}
	rc = nvl_ctrlr_aen_poll(c, &ev, 300);
	check(rc == 0, "nothing to report yet (%d)", rc);

	rc = rpc_add_ns(sock, nqn, bdev, nsid);
	check(rc == 0, "nvmf_subsystem_add_ns nsid %u (%d)", nsid, rc);
	expect_ns_event(c, nsid, "add");
	n = nvl_ctrlr_list_ns(c, ids, 16);
	check(listed(ids, n > 0 ? n : 0, nsid), "the new namespace is active (%d listed)", n);

	/* an admin command while the request is outstanding does not eat the event */
	rc = rpc_remove_ns(sock, nqn, nsid);
	check(rc == 0, "nvmf_subsystem_remove_ns nsid %u (%d)", nsid, rc);
	n = nvl_ctrlr_list_ns(c, ids, 16);
	check(n >= 0 && !listed(ids, n, nsid), "the namespace is gone (%d listed)", n);
	expect_ns_event(c, nsid, "remove");
	rc = nvl_ctrlr_aen_poll(c, &ev, 300);
	check(rc == 0, "no further event (%d)", rc);
	nvl_ctrlr_disconnect(c);
	return g_fail;
}

/* ---- drain ------------------------------------------------------------------------- */

#define DRAIN_QD 32

struct drain_io {
	bool done;
	uint16_t status;
};

static void
drain_cb(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct drain_io *d = arg;

	d->done = true;
	d->status = nvl_cpl_status(cpl);
}

static int
mode_drain(const char *uri, const char *sock, const char *nqn, uint32_t nsid)
{
	struct drain_io io[DRAIN_QD] = { 0 };
	struct nvl_qpair_opts qo;
	struct nvl_ctrlr *c;
	struct nvl_qpair *qp;
	struct nvl_nvme_cpl cpl;
	uint8_t *buf;
	uint64_t t0, ms;
	unsigned ok = 0, gone = 0, other = 0, done = 0;
	int rc;

	if (connect_ctrlr(uri, NULL, &c) < 0)
		return 2;
	nvl_qpair_opts_default(&qo);
	qo.entries = 64;
	if (nvl_qpair_create(c, &qo, &qp) < 0) {
		nvl_ctrlr_disconnect(c);
		return 2;
	}
	buf = nvl_buf_alloc(c, (size_t)DRAIN_QD * 4096);
	if (buf == NULL) {
		nvl_ctrlr_disconnect(c);
		return 2;
	}
	for (int i = 0; i < DRAIN_QD; i++) {
		rc = nvl_read(qp, nsid, buf + (size_t)i * 4096, (uint64_t)i * 8, 8, 0, drain_cb,
			      &io[i]);
		if (rc < 0) {
			check(false, "submit read %d (%d)", i, rc);
			break;
		}
	}
	/* let the controller fetch them: they now sit in the slow bdev */
	usleep(100000);
	check(nvl_qpair_process_completions(qp, 0) == 0 && nvl_qpair_outstanding(qp) == DRAIN_QD,
	      "%u reads in flight in the bdev", nvl_qpair_outstanding(qp));
	t0 = now_ms();
	rc = rpc_remove_ns(sock, nqn, nsid);
	ms = now_ms() - t0;
	check(rc == 0, "nvmf_subsystem_remove_ns with I/O in flight (%d, %llu ms)", rc,
	      (unsigned long long)ms);
	/* the RPC answers after the drain: every completion is already posted */
	while (nvl_qpair_process_completions(qp, 0) > 0)
		;
	for (int i = 0; i < DRAIN_QD; i++) {
		done += io[i].done;
		if (!io[i].done)
			continue;
		if (io[i].status == 0)
			ok++;
		else if (io[i].status == NVL_NVME_SC_INVALID_NAMESPACE)
			gone++;
		else
			other++;
	}
	check(done == DRAIN_QD, "all %u reads had completed when the RPC answered (%u)", DRAIN_QD,
	      done);
	check(ok == DRAIN_QD && other == 0,
	      "reads in flight at removal completed successfully (%u ok, %u invalid ns, %u other)",
	      ok, gone, other);
	/* after the removal the namespace is gone for new commands */
	rc = nvl_read_sync(qp, nsid, buf, 0, 8, &cpl);
	check(rc == -EREMOTEIO && nvl_cpl_status(&cpl) == NVL_NVME_SC_INVALID_NAMESPACE,
	      "read after removal: Invalid Namespace (0x%03x)", nvl_cpl_status(&cpl));
	nvl_buf_free(c, buf);
	nvl_qpair_destroy(qp);
	nvl_ctrlr_disconnect(c);
	return g_fail;
}

/* ---- hold ------------------------------------------------------------------------- */

static int
mode_hold(const char *uri, const char *hostnqn)
{
	struct nvl_ctrlr *c;
	uint64_t deadline;

	if (connect_ctrlr(uri, hostnqn, &c) < 0)
		return 2;
	printf("connected cntlid %u\n", nvl_ctrlr_cntlid(c));
	fflush(stdout);
	deadline = now_ms() + 20000;
	while (now_ms() < deadline) {
		struct nvl_nvme_cmd cmd = { 0 };

		cmd.opc = NVL_NVME_ADM_KEEP_ALIVE;
		if (nvl_ctrlr_admin(c, &cmd, NULL, 0, NVL_XFER_NONE, NULL) == -ENOTCONN) {
			printf("disconnected by the target\n");
			nvl_ctrlr_disconnect(c);
			return 0;
		}
		usleep(50000);
	}
	printf("still connected after 20 s\n");
	nvl_ctrlr_disconnect(c);
	return 1;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "io") == 0)
		return mode_io(argv[2]);
	if (argc == 7 && strcmp(argv[1], "aen") == 0)
		return mode_aen(argv[2], argv[3], argv[4], argv[5],
				(uint32_t)strtoul(argv[6], NULL, 0));
	if (argc == 6 && strcmp(argv[1], "drain") == 0)
		return mode_drain(argv[2], argv[3], argv[4], (uint32_t)strtoul(argv[5], NULL, 0));
	if (argc == 4 && strcmp(argv[1], "hold") == 0)
		return mode_hold(argv[2], argv[3]);
	fprintf(stderr, "usage: %s io URI | aen URI RPC_SOCKET NQN BDEV NSID |\n"
			"       drain URI RPC_SOCKET NQN NSID | hold URI HOSTNQN\n",
		argv[0]);
	return 2;
}
