/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvlend status: the page an operator opens first (issue 22 item 9).
 *
 * One page, one section per kind of object, each built only from the
 * daemon's RPCs (nvlend_get_status, framework_get_reactors, bdev_get_bdevs,
 * nvmf_get_subsystems + nvmf_subsystem_get_controllers,
 * bdev_nvme_get_controllers, nbd_get_server/exports/disks,
 * vhost_get_controllers, virtio_blk_controller_list, brick_get_bricks,
 * lend_list, lend_get_borrows, nvlend_get_log). A call that fails (a method
 * an older daemon lacks, an error) turns only its own section into
 * "unavailable: REASON". The page is gathered into one JSON document first
 * (what --json prints); the text page is rendered from that document, so
 * both always say the same.
 *
 * --watch redraws the page every SECS with rates over the interval (bdev
 * IOPS and MiB/s from bdev_get_iostat, reactor busy % from busy_ns). Single
 * threaded; SIGINT/SIGTERM during --watch end the loop after the current
 * page (exit 0).
 */
#include "cli.h"
#include "nvlend/rpc_client.h"
#include "util/util.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define STATUS_WARNINGS 5 /* recent warnings on the page */

/* ---- small JSON helpers ----------------------------------------------------------------- */

static const char *
jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static long long
jll(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* ---- calling the daemon ------------------------------------------------------------------ */

struct status {
	struct nvl_cli *cli;
	struct nvl_rpc_client *c;       /* one connection per page */
	char socket[256];
	json_t *doc;                    /* the page being built */
	json_t *unavailable;            /* section -> reason (in doc) */
	/* --watch: the previous page's raw counters, for rates */
	json_t *prev_iostat, *prev_reactors;
	uint64_t prev_us, interval_us;
	/* the daemon stopped answering during this page: no more calls (each
	 * would wait for the timeout again) */
	bool gone;
	char gone_why[1100];
};

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * Call method (params stolen). \return the result (new reference), or NULL
 * with the reason in why: the daemon's error message, "method ... not found"
 * for an older daemon, or the transport error.
 */
static json_t *
st_call(struct status *st, const char *method, json_t *params, char *why, size_t len)
{
	json_t *res = NULL, *err = NULL;
	int rc;

	if (st->gone) {
		nvl_strlcpy(why, st->gone_why, len);
		json_decref(params);
		return NULL;
	}
	if (st->c == NULL) {
		rc = nvl_rpc_client_connect(st->cli->socket, st->cli->timeout_ms, &st->c);
		if (rc < 0) {
			st->c = NULL;
			snprintf(why, len, "daemon not reachable: %s", strerror(-rc));
			st->gone = true;
			nvl_strlcpy(st->gone_why, why, sizeof(st->gone_why));
			json_decref(params);
			return NULL;
		}
	}
	rc = nvl_rpc_client_call(st->c, method, params, &res, &err);
	json_decref(params);
	if (rc == -EREMOTEIO) {
		if (json_integer_value(json_object_get(err, "code")) == -32601)
			snprintf(why, len, "this daemon has no %s (older version?)", method);
		else
			snprintf(why, len, "%s: %s", method, jstr(err, "message"));
		json_decref(err);
		return NULL;
	}
	if (rc < 0) {
		snprintf(why, len, "%s: %s", method,
			 rc == -ETIMEDOUT ? "the daemon did not answer in time"
			 : rc == -EPIPE	  ? "the daemon closed the connection"
					  : strerror(-rc));
		/* a daemon that does not answer (or hangs up) will not answer the
		 * next call either: the rest of the page says so at once */
		nvl_rpc_client_close(st->c);
		st->c = NULL;
		st->gone = true;
		nvl_strlcpy(st->gone_why, why, sizeof(st->gone_why));
		return NULL;
	}
	return res;
}

/* Set doc[section] = v (stolen); NULL: the section is unavailable for `why`. */
static void
st_section(struct status *st, const char *section, json_t *v, const char *why)
{
	if (v == NULL) {
		json_object_set_new(st->doc, section, json_null());
		json_object_set_new(st->unavailable, section, json_string(why));
		return;
	}
	json_object_set_new(st->doc, section, v);
}

/* ---- gathering: one function per section, each into st->doc ------------------------------ */

static void
gather_daemon(struct status *st)
{
	char why[512];
	json_t *s = st_call(st, "nvlend_get_status", NULL, why, sizeof(why));

	if (s == NULL) {
		/* an older daemon: at least its version */
		char why2[512];
		json_t *v = st_call(st, "nvlend_get_version", NULL, why2, sizeof(why2));

		if (v == NULL) {
			/* both reasons: a refusal ("too many RPC clients") comes as an
			 * error answer, then the daemon hangs up */
			if (st->gone && strcmp(why, why2) != 0)
				snprintf(st->gone_why, sizeof(st->gone_why), "%s; then %s", why,
					 why2);
			st_section(st, "daemon", NULL, why2);
			return;
		}
		s = json_pack("{s:s}", "version", jstr(v, "version"));
		json_object_set_new(st->unavailable, "daemon_details", json_string(why));
		json_decref(v);
	}
	json_object_set_new(s, "socket", json_string(st->socket));
	{
		/* the last upgrade, if this worker came from one (older daemons: none) */
		char why3[512];
		json_t *u = st_call(st, "nvlend_get_upgrade", NULL, why3, sizeof(why3));

		if (u && (json_is_true(json_object_get(u, "upgraded")) ||
			  json_is_true(json_object_get(u, "rolled_back"))))
			json_object_set_new(s, "upgrade", u);
		else
			json_decref(u);
	}
	st_section(st, "daemon", s, NULL);
}

static void
gather_reactors(struct status *st)
{
	char why[512];
	json_t *r = st_call(st, "framework_get_reactors", NULL, why, sizeof(why));
	json_t *arr, *it, *out;
	size_t i;

	if (r == NULL) {
		st_section(st, "reactors", NULL, why);
		return;
	}
	arr = json_array();
	json_array_foreach(json_object_get(r, "reactors"), i, it) {
		double busy = (double)jll(it, "busy_ns"), idle = (double)jll(it, "idle_ns");
		double sleep = (double)jll(it, "sleep_ns");
		json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "id", jll(it, "id"), "cpu",
				      jll(it, "cpu"), "tid", jll(it, "tid"), "queues",
				      jll(it, "queues"), "pollers", jll(it, "pollers"), "fds",
				      jll(it, "fds"));

		/* time doing work over all time accounted (working, spinning, asleep) */
		json_object_set_new(o, "busy_pct",
				    busy + idle + sleep > 0
					    ? json_real(100.0 * busy / (busy + idle + sleep))
					    : json_null());
		if (st->prev_reactors) {
			json_t *pr = json_object_get(st->prev_reactors, "reactors");
			json_t *p = json_array_get(pr, i);
			double db = busy - (double)jll(p, "busy_ns");
			double dt = db + idle - (double)jll(p, "idle_ns") + sleep -
				    (double)jll(p, "sleep_ns");

			if (p && dt > 0 && db >= 0)
				json_object_set_new(o, "busy_pct_interval",
						    json_real(100.0 * db / dt));
		}
		json_array_append_new(arr, o);
	}
	out = json_pack("{s:I, s:o}", "spin_us", jll(r, "spin_us"), "reactors", arr);
	json_decref(st->prev_reactors);
	st->prev_reactors = r;
	st_section(st, "reactors", out, NULL);
}

/* the iostat entry named `name` in a bdev_get_iostat result */
static json_t *
iostat_of(json_t *iostat, const char *name)
{
	json_t *it;
	size_t i;

	json_array_foreach(json_object_get(iostat, "bdevs"), i, it)
		if (strcmp(jstr(it, "name"), name) == 0)
			return it;
	return NULL;
}

/* o.iops and o.mib_per_s (reads and writes) between iostat entries p and c */
static void
bdev_rates(json_t *o, const json_t *c, const json_t *p, double secs)
{
	double ops = (double)(jll(c, "num_read_ops") - jll(p, "num_read_ops") +
			      jll(c, "num_write_ops") - jll(p, "num_write_ops"));
	double by = (double)(jll(c, "bytes_read") - jll(p, "bytes_read") +
			     jll(c, "bytes_written") - jll(p, "bytes_written"));

	if (ops < 0 || by < 0)
		return; /* counters went back: a restarted daemon, rates next time */
	json_object_set_new(o, "iops", json_real(ops / secs));
	json_object_set_new(o, "mib_per_s", json_real(by / secs / 1048576.0));
}

static void
gather_bdevs(struct status *st)
{
	char why[512], why_io[512];
	json_t *b = st_call(st, "bdev_get_bdevs", NULL, why, sizeof(why));
	json_t *io = NULL, *arr, *it;
	double secs = 0;
	size_t i;

	if (b == NULL) {
		st_section(st, "bdevs", NULL, why);
		return;
	}
	if (st->interval_us) {
		io = st_call(st, "bdev_get_iostat", NULL, why_io, sizeof(why_io));
		if (io == NULL)
			json_object_set_new(st->unavailable, "bdev_rates", json_string(why_io));
		if (io && st->prev_iostat) {
			double dt = (double)(jll(io, "ticks") - jll(st->prev_iostat, "ticks"));
			double rate = (double)jll(io, "tick_rate");

			secs = rate > 0 ? dt / rate : 0;
		}
	}
	arr = json_array();
	json_array_foreach(b, i, it) {
		const char *claim = json_string_value(json_object_get(it, "claimed_by"));
		json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:b}", "name", jstr(it, "name"),
				      "type", jstr(it, "type"), "size_bytes",
				      jll(it, "num_blocks") * jll(it, "block_size"), "block_size",
				      jll(it, "block_size"), "num_blocks", jll(it, "num_blocks"),
				      "read_only", json_is_true(json_object_get(it, "read_only")));

		if (claim == NULL && json_is_true(json_object_get(it, "claimed")))
			claim = "(claimed)";
		json_object_set_new(o, "claimed_by", claim ? json_string(claim) : json_null());
		if (secs > 0) {
			json_t *c = iostat_of(io, jstr(it, "name"));
			json_t *p = iostat_of(st->prev_iostat, jstr(it, "name"));

			if (c && p)
				bdev_rates(o, c, p, secs);
		}
		json_array_append_new(arr, o);
	}
	if (secs > 0)
		json_object_set_new(st->doc, "rate_interval_s", json_real(secs));
	if (io) {
		json_decref(st->prev_iostat);
		st->prev_iostat = io;
	}
	json_decref(b);
	st_section(st, "bdevs", arr, NULL);
}

static json_t *
listen_json(const json_t *l)
{
	return json_pack("{s:s, s:s, s:s}", "trtype", jstr(l, "trtype"), "traddr",
			 jstr(l, "traddr"), "trsvcid", jstr(l, "trsvcid"));
}

static void
gather_subsystems(struct status *st)
{
	char why[512];
	json_t *s = st_call(st, "nvmf_get_subsystems", NULL, why, sizeof(why));
	json_t *arr, *it, *x;
	size_t i, j;

	if (s == NULL) {
		st_section(st, "subsystems", NULL, why);
		return;
	}
	arr = json_array();
	json_array_foreach(s, i, it) {
		json_t *o, *ls = json_array(), *ns = json_array(), *hosts;
		bool discovery = strcmp(jstr(it, "subtype"), "Discovery") == 0;

		/* the discovery subsystem always exists: worth a line only when it listens */
		if (discovery && json_array_size(json_object_get(it, "listen_addresses")) == 0) {
			json_decref(ls);
			json_decref(ns);
			continue;
		}
		json_array_foreach(json_object_get(it, "listen_addresses"), j, x)
			json_array_append_new(ls, listen_json(x));
		json_array_foreach(json_object_get(it, "namespaces"), j, x)
			json_array_append_new(ns, json_pack("{s:I, s:s}", "nsid", jll(x, "nsid"),
							    "bdev", jstr(x, "bdev_name")));
		o = json_pack("{s:s, s:s, s:b, s:o, s:o}", "nqn", jstr(it, "nqn"), "subtype",
			      jstr(it, "subtype"), "allow_any_host",
			      json_is_true(json_object_get(it, "allow_any_host")), "listeners", ls,
			      "namespaces", ns);
		hosts = st_call(st, "nvmf_subsystem_get_controllers",
				json_pack("{s:s}", "nqn", jstr(it, "nqn")), why, sizeof(why));
		if (hosts == NULL) {
			json_object_set_new(o, "hosts", json_null());
			json_object_set_new(o, "hosts_unavailable", json_string(why));
		} else {
			json_t *h = json_array();

			json_array_foreach(hosts, j, x)
				json_array_append_new(
					h, json_pack("{s:s, s:I, s:s, s:I}", "hostnqn",
						     jstr(x, "hostnqn"), "cntlid", jll(x, "cntlid"),
						     "trtype", jstr(x, "trtype"), "io_queues",
						     jll(x, "num_io_qpairs")));
			json_object_set_new(o, "hosts", h);
			json_decref(hosts);
		}
		json_array_append_new(arr, o);
	}
	json_decref(s);
	st_section(st, "subsystems", arr, NULL);
}

static void
gather_nvme(struct status *st)
{
	char why[512];
	json_t *c = st_call(st, "bdev_nvme_get_controllers", NULL, why, sizeof(why));
	json_t *arr, *it;
	size_t i;

	if (c == NULL) {
		st_section(st, "nvme_controllers", NULL, why);
		return;
	}
	arr = json_array();
	json_array_foreach(c, i, it) {
		json_t *trid = json_object_get(it, "trid");
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O}", "name",
				      jstr(it, "name"), "state", jstr(it, "state"), "trtype",
				      jstr(trid, "trtype"), "traddr", jstr(trid, "traddr"),
				      "trsvcid", jstr(trid, "trsvcid"), "subnqn",
				      jstr(trid, "subnqn"), "bdevs",
				      json_object_get(it, "bdevs") ? json_object_get(it, "bdevs")
								   : json_array());

		if (json_object_get(it, "last_error"))
			json_object_set(o, "last_error", json_object_get(it, "last_error"));
		json_array_append_new(arr, o);
	}
	json_decref(c);
	st_section(st, "nvme_controllers", arr, NULL);
}

static void
gather_nbd(struct status *st)
{
	char why[512];
	json_t *e = st_call(st, "nbd_get_exports", NULL, why, sizeof(why));
	json_t *srv, *disks, *arr, *it, *o;
	size_t i;

	if (e == NULL) {
		st_section(st, "nbd", NULL, why);
		return;
	}
	arr = json_array();
	json_array_foreach(e, i, it)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:b, s:I}", "name",
						     jstr(it, "name"), "bdev",
						     jstr(it, "bdev_name"), "size_bytes",
						     jll(it, "size_bytes"), "read_only",
						     json_is_true(json_object_get(it, "read_only")),
						     "connections", jll(it, "connections")));
	json_decref(e);
	o = json_pack("{s:o}", "exports", arr);
	srv = st_call(st, "nbd_get_server", NULL, why, sizeof(why));
	if (srv == NULL)
		json_object_set_new(st->unavailable, "nbd_server", json_string(why));
	json_object_set_new(o, "server", srv ? srv : json_null());
	/* SPDK's kernel /dev/nbdX attachments */
	disks = st_call(st, "nbd_get_disks", NULL, why, sizeof(why));
	if (disks == NULL)
		json_object_set_new(st->unavailable, "nbd_disks", json_string(why));
	json_object_set_new(o, "disks", disks ? disks : json_null());
	st_section(st, "nbd", o, NULL);
}

/* sections shown as the RPC gives them */
static void
gather_plain(struct status *st, const char *section, const char *method)
{
	char why[512];
	json_t *r = st_call(st, method, NULL, why, sizeof(why));

	st_section(st, section, r, why);
}

static void
gather_bricks(struct status *st)
{
	char why[512];
	json_t *b = st_call(st, "brick_get_bricks", NULL, why, sizeof(why));
	json_t *arr, *it, *x;
	size_t i, j;

	if (b == NULL) {
		st_section(st, "bricks", NULL, why);
		return;
	}
	arr = json_array();
	json_array_foreach(b, i, it) {
		json_t *ls = json_array();

		json_array_foreach(json_object_get(it, "listeners"), j, x)
			json_array_append_new(ls, json_pack("{s:s, s:s, s:s}", "trtype",
							    jstr(x, "trtype"), "traddr",
							    jstr(x, "traddr"), "trsvcid",
							    jstr(x, "trsvcid")));
		json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "name",
				      jstr(it, "name"), "block_size", jll(it, "block_size"),
				      "capacity_blocks", jll(it, "capacity_blocks"),
				      "allocated_blocks", jll(it, "allocated_blocks"),
				      "fast_blocks_budget", jll(it, "fast_blocks"),
				      "fast_tier_blocks", jll(it, "fast_tier_blocks"),
				      "slow_tier_blocks", jll(it, "slow_tier_blocks"));

		json_object_update_new(o, json_pack("{s:s, s:s, s:s, s:I, s:o}", "fast_dir",
						    jstr(it, "fast_dir"), "slow_dir",
						    jstr(it, "slow_dir"), "persistence",
						    jstr(it, "persistence"), "connections",
						    jll(it, "connections"), "listeners", ls));
		json_array_append_new(arr, o);
	}
	json_decref(b);
	st_section(st, "bricks", arr, NULL);
}

static void
gather_lending(struct status *st)
{
	char why[512];
	json_t *l = st_call(st, "lend_list", NULL, why, sizeof(why)), *b, *o;

	if (l == NULL) {
		st_section(st, "lending", NULL, why);
		return;
	}
	o = json_pack("{s:s, s:O}", "node", jstr(l, "node"), "offers",
		      json_object_get(l, "offers") ? json_object_get(l, "offers") : json_array());
	json_decref(l);
	b = st_call(st, "lend_get_borrows", NULL, why, sizeof(why));
	if (b == NULL)
		json_object_set_new(st->unavailable, "lend_borrows", json_string(why));
	json_object_set_new(o, "borrows", b ? b : json_null());
	st_section(st, "lending", o, NULL);
}

static void
gather_warnings(struct status *st)
{
	char why[512];
	json_t *l = st_call(st, "nvlend_get_log", json_pack("{s:i}", "count", STATUS_WARNINGS), why,
			    sizeof(why));

	st_section(st, "warnings", l, why);
}

/*
 * Build one page into st->doc. \return CLI_OK, or CLI_NODAEMON (said why)
 * when no daemon answers at all.
 */
static int
status_gather(struct status *st)
{
	struct timeval tv;
	char when[64];
	struct tm tm;
	int rc;

	rc = nvl_rpc_client_connect(st->cli->socket, st->cli->timeout_ms, &st->c);
	if (rc < 0) {
		json_t *res;

		st->c = NULL;
		/* cli_call says it the way every command does (and exits 3) */
		rc = cli_call(st->cli, "nvlend_get_version", NULL, &res);
		if (rc == CLI_OK) {
			json_decref(res);
			rc = CLI_ERR;
		}
		return rc;
	}
	json_decref(st->doc);
	st->doc = json_object();
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	json_object_set_new(st->doc, "time", json_string(when));
	st->unavailable = json_object();
	/* the doc owns it; sections add to it as they fail */
	json_object_set_new(st->doc, "unavailable", st->unavailable);
	st->gone = false;
	gather_daemon(st);
	if (st->gone) {
		/* it accepted the connection but does not serve: no page */
		fprintf(stderr, "%s: nvlendd on %s does not answer: %s\n", st->cli->prog,
			st->socket, st->gone_why);
		nvl_rpc_client_close(st->c);
		st->c = NULL;
		return CLI_ERR;
	}
	gather_reactors(st);
	gather_bdevs(st);
	gather_subsystems(st);
	gather_nvme(st);
	gather_nbd(st);
	gather_plain(st, "vhost_controllers", "vhost_get_controllers");
	gather_plain(st, "functions", "virtio_blk_controller_list");
	gather_bricks(st);
	gather_lending(st);
	gather_warnings(st);
	nvl_rpc_client_close(st->c);
	st->c = NULL;
	return CLI_OK;
}

/* ---- rendering ---------------------------------------------------------------------------- */

/* A section's header; \return true when it has data to print, after printing
 * "unavailable: REASON" or "none" otherwise. */
static bool
sec_begin(struct status *st, const char *title, const char *key, const char *extra)
{
	json_t *v = json_object_get(st->doc, key);
	const char *why = json_string_value(json_object_get(st->unavailable, key));

	printf("\n%s%s%s\n", title, extra && *extra ? "  " : "", extra ? extra : "");
	if (why) {
		printf("  unavailable: %s\n", why);
		return false;
	}
	if (v == NULL || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0)) {
		printf("  none\n");
		return false;
	}
	return true;
}

/* a table indented under its section header */
static void
table_print_indented(struct cli_table *t)
{
	char *buf = NULL, *line, *end;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return;
	cli_table_print(t, f);
	fclose(f);
	for (line = buf; line && *line; line = end ? end + 1 : NULL) {
		size_t n;

		end = strchr(line, '\n');
		if (end)
			*end = '\0';
		n = strlen(line);
		while (n && line[n - 1] == ' ')
			line[--n] = '\0';
		printf("  %s\n", line);
	}
	free(buf);
}

/* append to buf at *off, cut at its end (always terminated) */
static void __attribute__((format(printf, 4, 5)))
buf_add(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off + 1 >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (n > 0)
		*off = *off + (size_t)n < len ? *off + (size_t)n : len - 1;
}

static const char *
fmt_duration(long long s, char *buf, size_t len)
{
	if (s < 60)
		snprintf(buf, len, "%llds", s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm %llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh %lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%lldd %lldh", s / 86400, s % 86400 / 3600);
	return buf;
}

/* "2026-12-07T07:21:44.202Z" (UTC) as local "2026-12-07 07:21:44" */
static const char *
fmt_local(const char *rfc3339, char *buf, size_t len)
{
	struct tm tm = { 0 };
	time_t t;

	if (strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm) == NULL) {
		snprintf(buf, len, "%s", rfc3339);
		return buf;
	}
	t = timegm(&tm);
	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

static void
render_daemon(struct status *st)
{
	json_t *d = json_object_get(st->doc, "daemon");
	const char *details = json_string_value(json_object_get(st->unavailable, "daemon_details"));
	char a[64], b[64];

	if (!sec_begin(st, "DAEMON", "daemon", NULL))
		return;
	printf("  version    %s\n", jstr(d, "version"));
	printf("  socket     %s\n", jstr(d, "socket"));
	if (details) {
		printf("  pid, uptime, config: unavailable: %s\n", details);
		return;
	}
	printf("  pid        %lld", jll(d, "pid"));
	if (json_is_integer(json_object_get(d, "keeper_pid")))
		printf(" (worker; keeper %lld)", jll(d, "keeper_pid"));
	printf("\n  started    %s, up %s\n", fmt_local(jstr(d, "start_time"), a, sizeof(a)),
	       fmt_duration(jll(d, "uptime_s"), b, sizeof(b)));
	if (json_is_integer(json_object_get(d, "restarts"))) {
		printf("  restarts   %lld by the keeper", jll(d, "restarts"));
		if (jll(d, "restarts"))
			printf(" (this worker up %s%s%s)",
			       fmt_duration(jll(d, "worker_uptime_s"), a, sizeof(a)),
			       json_is_string(json_object_get(d, "last_death_signal"))
				       ? ", the last one died of SIG"
				       : "",
			       jstr(d, "last_death_signal"));
		printf("\n");
	} else {
		printf("  restarts   unknown (supervisor: %s)\n",
		       json_is_string(json_object_get(d, "supervisor")) ? jstr(d, "supervisor")
								      : "none");
	}
	if (json_is_object(json_object_get(d, "upgrade"))) {
		json_t *u = json_object_get(d, "upgrade"), *f;
		long long max = 0;
		size_t i;

		json_array_foreach(json_object_get(u, "functions"), i, f)
			max = NVL_MAX(max, (long long)json_integer_value(
						   json_object_get(f, "downtime_us")));
		if (json_is_true(json_object_get(u, "rolled_back")))
			printf("  upgrade    failed and rolled back to this binary: ");
		else
			printf("  upgrade    from %s: ", jstr(u, "from_version"));
		printf("%zu function(s) taken over, longest downtime %.1f ms\n",
		       json_array_size(json_object_get(u, "functions")), (double)max / 1000.0);
	}
	printf("  config     %s\n", json_is_string(json_object_get(d, "config_file"))
					    ? jstr(d, "config_file")
					    : "none (built by RPCs; 'nvlend save-config -o FILE')");
	printf("  log        %s\n", json_is_string(json_object_get(d, "log_file"))
					    ? jstr(d, "log_file")
					    : "stderr");
}

static void
render_reactors(struct status *st)
{
	static const char *const hdr[] = { "ID", "CPU", "TID", "BUSY", "QUEUES", "POLLERS", "FDS" };
	json_t *r = json_object_get(st->doc, "reactors"), *it;
	char extra[128];
	struct cli_table *t;
	size_t i;

	snprintf(extra, sizeof(extra), "(spin %lld us after the last work, then sleep; busy %s)",
		 jll(r, "spin_us"),
		 json_object_get(json_array_get(json_object_get(r, "reactors"), 0),
				 "busy_pct_interval")
			 ? "over the interval"
			 : "since start");
	if (json_object_get(st->unavailable, "reactors")) {
		sec_begin(st, "REACTORS", "reactors", NULL);
		return;
	}
	if (!sec_begin(st, "REACTORS", "reactors", extra))
		return;
	if (json_array_size(json_object_get(r, "reactors")) == 0) {
		printf("  none\n");
		return;
	}
	t = cli_table_new(7, hdr);
	json_array_foreach(json_object_get(r, "reactors"), i, it) {
		char id[16], cpu[16], tid[16], busy[16], q[16], p[16], f[16];
		json_t *bp = json_object_get(it, "busy_pct_interval");

		if (bp == NULL)
			bp = json_object_get(it, "busy_pct");
		snprintf(id, sizeof(id), "%lld", jll(it, "id"));
		if (jll(it, "cpu") >= 0)
			snprintf(cpu, sizeof(cpu), "%lld", jll(it, "cpu"));
		else
			snprintf(cpu, sizeof(cpu), "any");
		snprintf(tid, sizeof(tid), "%lld", jll(it, "tid"));
		if (json_is_real(bp))
			snprintf(busy, sizeof(busy), "%.1f%%", json_real_value(bp));
		else
			snprintf(busy, sizeof(busy), "-");
		snprintf(q, sizeof(q), "%lld", jll(it, "queues"));
		snprintf(p, sizeof(p), "%lld", jll(it, "pollers"));
		snprintf(f, sizeof(f), "%lld", jll(it, "fds"));
		cli_table_add(t, id, cpu, tid, busy, q, p, f);
	}
	table_print_indented(t);
	cli_table_free(t);
}

static void
render_bdevs(struct status *st)
{
	static const char *const hdr[] = { "NAME", "TYPE", "SIZE", "BLOCK", "CLAIMED BY", "IOPS",
					   "MiB/s" };
	json_t *b = json_object_get(st->doc, "bdevs"), *it;
	json_t *secs = json_object_get(st->doc, "rate_interval_s");
	const char *norate = json_string_value(json_object_get(st->unavailable, "bdev_rates"));
	bool rates = st->interval_us != 0;
	struct cli_table *t;
	char extra[160];
	size_t i;

	extra[0] = '\0';
	if (rates && norate)
		snprintf(extra, sizeof(extra), "(rates unavailable: %s)", norate);
	else if (rates && secs)
		snprintf(extra, sizeof(extra), "(rates over the last %.1f s)",
			 json_real_value(secs));
	else if (rates)
		snprintf(extra, sizeof(extra), "(rates from the next page on)");
	if (!sec_begin(st, "BDEVS", "bdevs", extra))
		return;
	t = cli_table_new(rates ? 7 : 5, hdr);
	json_array_foreach(b, i, it) {
		char size[32], bs[16], iops[32] = "-", mibs[32] = "-", claim[300];

		cli_fmt_size((uint64_t)jll(it, "size_bytes"), size, sizeof(size));
		snprintf(bs, sizeof(bs), "%lld", jll(it, "block_size"));
		snprintf(claim, sizeof(claim), "%s%s",
			 json_is_string(json_object_get(it, "claimed_by")) ? jstr(it, "claimed_by")
									   : "-",
			 json_is_true(json_object_get(it, "read_only")) ? " (read-only)" : "");
		if (json_is_real(json_object_get(it, "iops"))) {
			snprintf(iops, sizeof(iops), "%.0f",
				 json_real_value(json_object_get(it, "iops")));
			snprintf(mibs, sizeof(mibs), "%.1f",
				 json_real_value(json_object_get(it, "mib_per_s")));
		}
		cli_table_add(t, jstr(it, "name"), jstr(it, "type"), size, bs, claim, iops, mibs);
	}
	table_print_indented(t);
	cli_table_free(t);
}

static void
render_subsystems(struct status *st)
{
	json_t *s = json_object_get(st->doc, "subsystems"), *it, *x;
	size_t i, j;

	if (!sec_begin(st, "SUBSYSTEMS", "subsystems", NULL))
		return;
	json_array_foreach(s, i, it) {
		json_t *hosts = json_object_get(it, "hosts");

		printf("  %s", jstr(it, "nqn"));
		if (json_array_size(json_object_get(it, "namespaces"))) {
			printf("  ns");
			json_array_foreach(json_object_get(it, "namespaces"), j, x)
				printf("%s%lld:%s", j ? "," : " ", jll(x, "nsid"), jstr(x, "bdev"));
		} else if (strcmp(jstr(it, "subtype"), "Discovery") == 0) {
			printf("  (discovery)");
		} else {
			printf("  no namespaces");
		}
		printf("%s\n", json_is_true(json_object_get(it, "allow_any_host"))
				       ? "  any host"
				       : "  listed hosts only");
		printf("    listeners:");
		if (json_array_size(json_object_get(it, "listeners")) == 0)
			printf(" none");
		json_array_foreach(json_object_get(it, "listeners"), j, x) {
			bool v6 = strchr(jstr(x, "traddr"), ':') != NULL;

			if (jstr(x, "trsvcid")[0])
				printf("%s %s %s%s%s:%s", j ? "," : "", jstr(x, "trtype"),
				       v6 ? "[" : "", jstr(x, "traddr"), v6 ? "]" : "",
				       jstr(x, "trsvcid"));
			else
				printf("%s %s %s", j ? "," : "", jstr(x, "trtype"),
				       jstr(x, "traddr"));
		}
		printf("\n    hosts:");
		if (hosts == NULL || json_is_null(hosts)) {
			printf(" unavailable: %s\n", jstr(it, "hosts_unavailable"));
			continue;
		}
		if (json_array_size(hosts) == 0)
			printf(" none connected\n");
		else
			printf("\n");
		json_array_foreach(hosts, j, x)
			printf("      %s  via %s, controller %lld, %lld I/O queue%s\n",
			       jstr(x, "hostnqn"), jstr(x, "trtype"), jll(x, "cntlid"),
			       jll(x, "io_queues"), jll(x, "io_queues") == 1 ? "" : "s");
	}
}

static void
render_nvme(struct status *st)
{
	static const char *const hdr[] = { "NAME", "STATE", "TARGET", "SUBSYSTEM", "BDEVS" };
	json_t *c = json_object_get(st->doc, "nvme_controllers"), *it, *x;
	struct cli_table *t;
	size_t i, j;

	if (!sec_begin(st, "IMPORTED CONTROLLERS", "nvme_controllers", NULL))
		return;
	t = cli_table_new(5, hdr);
	json_array_foreach(c, i, it) {
		char target[300], bdevs[512] = "", state[400];
		size_t off = 0;

		snprintf(target, sizeof(target), "%s %s%s%s", jstr(it, "trtype"),
			 jstr(it, "traddr"), jstr(it, "trsvcid")[0] ? ":" : "",
			 jstr(it, "trsvcid"));
		json_array_foreach(json_object_get(it, "bdevs"), j, x)
			buf_add(bdevs, sizeof(bdevs), &off, "%s%s", j ? "," : "",
				json_string_value(x));
		/* the state string as the daemon gives it; the last error beside it */
		snprintf(state, sizeof(state), "%s%s%s%s", jstr(it, "state"),
			 json_is_string(json_object_get(it, "last_error")) ? " (" : "",
			 jstr(it, "last_error"),
			 json_is_string(json_object_get(it, "last_error")) ? ")" : "");
		cli_table_add(t, jstr(it, "name"), state, target, jstr(it, "subnqn"),
			      bdevs[0] ? bdevs : "-");
	}
	table_print_indented(t);
	cli_table_free(t);
}

static void
render_nbd(struct status *st)
{
	static const char *const hdr[] = { "NAME", "BDEV", "SIZE", "MODE", "CONNECTIONS" };
	json_t *n = json_object_get(st->doc, "nbd"), *srv, *it;
	char extra[300] = "";
	struct cli_table *t;
	size_t i;

	srv = json_object_get(n, "server");
	if (json_is_true(json_object_get(srv, "running")))
		snprintf(extra, sizeof(extra), "(server on %s port %lld, %lld connection%s)",
			 jstr(srv, "address"), jll(srv, "port"), jll(srv, "connections"),
			 jll(srv, "connections") == 1 ? "" : "s");
	else if (srv && json_is_object(srv))
		snprintf(extra, sizeof(extra), "(server not started: 'nvlend nbd start')");
	if (!sec_begin(st, "NBD EXPORTS", "nbd", extra))
		return;
	if (json_array_size(json_object_get(n, "exports")) == 0) {
		printf("  none\n");
	} else {
		t = cli_table_new(5, hdr);
		json_array_foreach(json_object_get(n, "exports"), i, it) {
			char size[32], conns[16];

			cli_fmt_size((uint64_t)jll(it, "size_bytes"), size, sizeof(size));
			snprintf(conns, sizeof(conns), "%lld", jll(it, "connections"));
			cli_table_add(t, jstr(it, "name"), jstr(it, "bdev"), size,
				      json_is_true(json_object_get(it, "read_only")) ? "read-only"
										     : "read-write",
				      conns);
		}
		table_print_indented(t);
		cli_table_free(t);
	}
	json_array_foreach(json_object_get(n, "disks"), i, it)
		printf("  kernel %s <- bdev %s\n", jstr(it, "nbd_device"), jstr(it, "bdev_name"));
}

/* vhost controllers and functions: name plus the fields that say most */
static void
render_named(struct status *st, const char *title, const char *key)
{
	json_t *arr = json_object_get(st->doc, key), *it;
	size_t i;

	if (!sec_begin(st, title, key, NULL))
		return;
	json_array_foreach(arr, i, it) {
		static const char *const keys[] = { "ctrlr", "name" };
		static const char *const more[] = { "type", "state", "bdev", "bdev_name",
						    "socket", "cpumask" };
		const char *name = "";

		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]) && !*name; k++)
			name = jstr(it, keys[k]);
		printf("  %s", *name ? name : "?");
		for (size_t k = 0; k < sizeof(more) / sizeof(more[0]); k++)
			if (jstr(it, more[k])[0])
				printf("  %s %s", more[k], jstr(it, more[k]));
		printf("\n");
	}
}

static void
render_bricks(struct status *st)
{
	static const char *const hdr[] = { "NAME", "BLOCKS USED", "FAST TIER", "SLOW TIER",
					   "PERSISTENCE", "LISTENERS" };
	json_t *b = json_object_get(st->doc, "bricks"), *it, *x;
	struct cli_table *t;
	size_t i, j;

	if (!sec_begin(st, "BRICKS", "bricks", NULL))
		return;
	t = cli_table_new(6, hdr);
	json_array_foreach(b, i, it) {
		char used[64], fast[400], slow[400], ls[512] = "";
		size_t off = 0;

		snprintf(used, sizeof(used), "%lld of %lld", jll(it, "allocated_blocks"),
			 jll(it, "capacity_blocks"));
		snprintf(fast, sizeof(fast), "%lld of %lld in %s", jll(it, "fast_tier_blocks"),
			 jll(it, "fast_blocks_budget"), jstr(it, "fast_dir"));
		if (jstr(it, "slow_dir")[0])
			snprintf(slow, sizeof(slow), "%lld in %s", jll(it, "slow_tier_blocks"),
				 jstr(it, "slow_dir"));
		else
			snprintf(slow, sizeof(slow), "none");
		json_array_foreach(json_object_get(it, "listeners"), j, x)
			buf_add(ls, sizeof(ls), &off, "%s%s %s%s%s", j ? ", " : "",
				jstr(x, "trtype"), jstr(x, "traddr"),
				jstr(x, "trsvcid")[0] ? ":" : "", jstr(x, "trsvcid"));
		cli_table_add(t, jstr(it, "name"), used, fast, slow, jstr(it, "persistence"),
			      ls[0] ? ls : "none");
	}
	table_print_indented(t);
	cli_table_free(t);
	printf("  (blocks of 2 MiB; the fast tier holds at most its budget, the rest moves "
	       "to the slow tier)\n");
}

static void
render_lending(struct status *st)
{
	json_t *l = json_object_get(st->doc, "lending"), *it;
	json_t *b = json_object_get(l, "borrows");
	size_t i;

	if (!sec_begin(st, "LENDING", "lending", NULL))
		return;
	printf("  offers:");
	if (json_array_size(json_object_get(l, "offers")) == 0)
		printf(" none\n");
	else
		printf("\n");
	json_array_foreach(json_object_get(l, "offers"), i, it)
		printf("    %s:%lld  %s  %s%s\n", jstr(it, "lender"), jll(it, "id"),
		       jstr(it, "device"), jstr(it, "state"),
		       json_is_true(json_object_get(it, "borrowed_here")) ? " (here)" : "");
	printf("  borrowed here:");
	if (b == NULL || json_is_null(b)) {
		printf(" unavailable: %s\n",
		       jstr(st->unavailable, "lend_borrows"));
		return;
	}
	if (json_array_size(b) == 0)
		printf(" none\n");
	else
		printf("\n");
	json_array_foreach(b, i, it)
		printf("    %s:%lld  %s\n", jstr(it, "lender"), jll(it, "id"),
		       jstr(it, "attach_name"));
}

static void
render_warnings(struct status *st)
{
	json_t *w = json_object_get(st->doc, "warnings"), *it;
	char extra[96] = "";
	size_t i;

	if (json_is_object(w))
		snprintf(extra, sizeof(extra), "(%lld since start; 'nvlend rpc nvlend_get_log' "
			 "has the last %lld)", jll(w, "total"), jll(w, "capacity"));
	if (!sec_begin(st, "RECENT WARNINGS", "warnings", extra))
		return;
	if (json_array_size(json_object_get(w, "entries")) == 0) {
		printf("  none\n");
		return;
	}
	json_array_foreach(json_object_get(w, "entries"), i, it) {
		char when[64];

		printf("  %s  %-7s %s\n", fmt_local(jstr(it, "time"), when, sizeof(when)),
		       strcmp(jstr(it, "level"), "error") == 0 ? "ERROR" : "WARNING",
		       jstr(it, "message"));
	}
}

static void
status_render(struct status *st)
{
	printf("nvlendd running on %s, %s\n", st->socket, jstr(st->doc, "time"));
	render_daemon(st);
	render_reactors(st);
	render_bdevs(st);
	render_subsystems(st);
	render_nvme(st);
	render_nbd(st);
	render_named(st, "VHOST CONTROLLERS", "vhost_controllers");
	render_named(st, "FUNCTIONS", "functions");
	render_bricks(st);
	render_lending(st);
	render_warnings(st);
}

/* ---- the command -------------------------------------------------------------------------- */

static volatile sig_atomic_t g_stop;

static void
status_on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

/* Sleep us microseconds unless a stop signal comes first. */
static void
status_sleep(uint64_t us)
{
	struct timespec ts = { .tv_sec = (time_t)(us / 1000000u),
			       .tv_nsec = (long)(us % 1000000u) * 1000 };

	while (!g_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int
cmd_status(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "watch", optional_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	struct status st = { .cli = cli };
	uint64_t secs = 0, count = 0;
	bool watch = false, tty;
	int c, rc = CLI_OK;

	optind = 0;
	while ((c = getopt_long(argc, argv, "w::c:", opts, NULL)) != -1) {
		if (c == 'w') {
			const char *v = optarg;

			watch = true;
			/* "--watch 5" as well as "--watch=5" */
			if (v == NULL && optind < argc && argv[optind][0] >= '0' &&
			    argv[optind][0] <= '9')
				v = argv[optind++];
			if (v && (cli_parse_u64(v, "--watch", 86400, &secs) != CLI_OK || secs == 0))
				return cli_usage_error(cli, "--watch takes 1..86400 seconds");
		} else if (c == 'c') {
			if (cli_parse_u64(optarg, "--count", UINT32_MAX, &count) != CLI_OK ||
			    count == 0)
				return cli_usage_error(cli, "--count must be at least 1");
		} else {
			return cli_bad_option(cli, argv, opts);
		}
	}
	if (optind != argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (count && !watch)
		return cli_usage_error(cli, "--count goes with --watch");
	if (watch && secs == 0)
		secs = 2;
	if (cli->socket)
		snprintf(st.socket, sizeof(st.socket), "%s", cli->socket);
	else
		nvl_rpc_default_socket(st.socket, sizeof(st.socket));
	st.interval_us = watch ? secs * 1000000u : 0;
	if (watch) {
		struct sigaction sa = { .sa_handler = status_on_signal };

		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	tty = isatty(STDOUT_FILENO) && !cli->json;
	for (uint64_t n = 0; !g_stop && (count == 0 || n < count); n++) {
		uint64_t t0 = now_us();

		if (n > 0)
			status_sleep(t0 - st.prev_us < st.interval_us
					     ? st.interval_us - (t0 - st.prev_us)
					     : 0);
		if (g_stop)
			break;
		rc = status_gather(&st);
		if (rc != CLI_OK && watch && rc != CLI_USAGE) {
			/* a watch outlives a daemon restart: say so, try again next time */
			if (tty)
				printf("\033[H\033[2J");
			else if (!cli->json)
				printf("%s--- not answering ---\n", n ? "\n" : "");
			if (!cli->json)
				printf("nvlendd is not answering on %s; "
				       "trying again every %llu s\n",
				       st.socket, (unsigned long long)secs);
			json_decref(st.prev_iostat);
			json_decref(st.prev_reactors);
			st.prev_iostat = st.prev_reactors = NULL;
			fflush(stdout);
			st.prev_us = now_us();
			continue;
		}
		if (rc != CLI_OK)
			break;
		if (cli->json) {
			cli_print_json(st.doc);
		} else {
			if (watch && tty)
				/* home, clear: a fresh screen like watch(1) */
				printf("\033[H\033[2J");
			else if (watch)
				printf("%s--- %s ---\n", n ? "\n" : "", jstr(st.doc, "time"));
			status_render(&st);
			if (watch && tty)
				printf("\nevery %llu s; Ctrl-C stops\n", (unsigned long long)secs);
		}
		fflush(stdout);
		st.prev_us = now_us();
		if (!watch)
			break;
	}
	json_decref(st.doc);
	json_decref(st.prev_iostat);
	json_decref(st.prev_reactors);
	return rc;
}
NVL_CLI_COMMAND(g_cmd_status, "status", "the operator's first page: daemon, objects, warnings",
"NAME\n"
"    nvlend status - one page on everything nvlendd runs, and what went wrong lately\n"
"\n"
"SYNOPSIS\n"
"    nvlend [-s SOCKET] [--json] status [--watch [SECS] [--count N]]\n"
"\n"
"DESCRIPTION\n"
"    Prints one page in sections, each built from the daemon's RPCs:\n"
"\n"
"    DAEMON       version, socket, pid (and its keeper's), start time and\n"
"                 uptime, restarts by the keeper, configuration file (-c),\n"
"                 log file                     (nvlend_get_status)\n"
"    REACTORS     CPU, thread, busy % (time doing work over time accounted:\n"
"                 working, spinning idle, asleep), queues, pollers, fds\n"
"                                              (framework_get_reactors)\n"
"    BDEVS        name, type, size, block size, who claims it\n"
"                                              (bdev_get_bdevs)\n"
"    SUBSYSTEMS   NQN, namespaces, listeners (transport address:port) and\n"
"                 connected hosts: host NQN, transport, controller, I/O\n"
"                 queues        (nvmf_get_subsystems,\n"
"                                nvmf_subsystem_get_controllers)\n"
"    IMPORTED CONTROLLERS  remote controllers this daemon uses and their\n"
"                 state as the daemon names it (ready, reconnecting,\n"
"                 waiting to reconnect, failed, ...) with the last error\n"
"                                              (bdev_nvme_get_controllers)\n"
"    NBD EXPORTS  server address, exports, kernel NBD disks\n"
"                 (nbd_get_server, nbd_get_exports, nbd_get_disks)\n"
"    VHOST CONTROLLERS, FUNCTIONS\n"
"                 (vhost_get_controllers, virtio_blk_controller_list)\n"
"    BRICKS       blocks used of capacity, fast tier use of its budget,\n"
"                 slow tier, persistence, listeners   (brick_get_bricks)\n"
"    LENDING      offers seen and devices borrowed here\n"
"                 (lend_list, lend_get_borrows)\n"
"    RECENT WARNINGS  the last 5 warnings and errors with their time\n"
"                 (nvlend_get_log; the daemon keeps the last 32)\n"
"\n"
"    A section with nothing in it says \"none\". A section whose call fails\n"
"    (an older daemon without the method, an error) says \"unavailable:\n"
"    REASON\"; the rest of the page is still printed.\n"
"\n"
"OPTIONS\n"
"    --watch [SECS]  redraw the page every SECS seconds (default 2), with\n"
"                    IOPS and MiB/s per bdev and busy % per reactor over the\n"
"                    interval. On a terminal the screen is cleared each time\n"
"                    (like watch(1)); otherwise each page follows a line\n"
"                    '--- YYYY-MM-DD HH:MM:SS ---'. A daemon that stops\n"
"                    answering (a restart) gets a line saying so and is\n"
"                    asked again next time. Ctrl-C stops.\n"
"    --count N       with --watch: stop after N pages\n"
"    --json          one object per page with the keys time, daemon,\n"
"                    reactors, bdevs, subsystems, nvme_controllers, nbd,\n"
"                    vhost_controllers, functions, bricks, lending, warnings\n"
"                    (null when unavailable) and unavailable (section ->\n"
"                    reason); with --watch, bdevs carry iops and mib_per_s\n"
"\n"
"EXIT STATUS\n"
"    0 the page was printed (even with unavailable sections), 1 the daemon\n"
"    accepted the connection but does not answer, 2 bad command line, 3 no\n"
"    daemon listens on the socket.\n"
"\n"
"EXAMPLES\n"
"    nvlend status\n"
"    nvlend status --watch 1\n"
"    nvlend --json status | jq .nvme_controllers\n",
		cmd_status)
