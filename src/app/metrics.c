/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Prometheus / OpenMetrics exporter: `nvlendd --metrics ADDR:PORT` or the
 * metrics_start_exporter RPC serves GET /metrics over HTTP/1.x.
 *
 * A scrape reads the same figures the RPC methods return (bdev_get_iostat,
 * nvmf_subsystem_get_controllers/qpairs, nbd_get_exports, ...), asked
 * in-process with nvl_rpc_call_local, so the exporter knows no component's
 * internals and says nothing they do not: the counters are read as the RPCs
 * read them (relaxed loads, merged per reactor by message, never a lock on
 * the I/O path). Text format: Prometheus 0.0.4 by default, OpenMetrics
 * 1.0.0 when the scraper asks for it in Accept (Prometheus does).
 *
 * Threads: everything on reactor 0 (the RPC reactor). Budgets: 8 scrapes at
 * a time (more get 503), 8 KiB of request headers, 10 s per connection.
 */
#include "app/metrics.h"
#include "app/app.h"
#include "rpc/rpc.h"
#include "util/log.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

NVL_LOG_REGISTER_COMPONENT(metrics)

#define METRICS_MAX_CONNS 8
#define METRICS_MAX_REQ 8192
#define METRICS_TIMEOUT_US (10 * 1000 * 1000)

/* The RPCs one scrape asks, in the order their figures are written. */
enum msrc {
	MS_VERSION,
	MS_REACTORS,
	MS_BDEVS,
	MS_IOSTAT,
	MS_SUBSYS,
	MS_NBD_SERVER,
	MS_NBD_EXPORTS,
	MS_VBLK,
	MS_BRICKS,
	MS_NVME_CTRLRS,
	MS_N,
};

static const char *const g_src_method[MS_N] = {
	[MS_VERSION] = "nvlend_get_version",
	[MS_REACTORS] = "framework_get_reactors",
	[MS_BDEVS] = "bdev_get_bdevs",
	[MS_IOSTAT] = "bdev_get_iostat",
	[MS_SUBSYS] = "nvmf_get_subsystems",
	[MS_NBD_SERVER] = "nbd_get_server",
	[MS_NBD_EXPORTS] = "nbd_get_exports",
	[MS_VBLK] = "virtio_blk_controller_list",
	[MS_BRICKS] = "brick_get_bricks",
	[MS_NVME_CTRLRS] = "bdev_nvme_get_controllers",
};

enum mconn_state { MC_READING, MC_COLLECTING, MC_WRITING };

struct mconn {
	int fd;
	struct nvl_fdh *fdh;
	struct nvl_timer *timeout;
	enum mconn_state state;
	bool openmetrics, head;
	char req[METRICS_MAX_REQ + 1];
	size_t got;
	json_t *src[MS_N];
	json_t *ctrlrs;              /* per subsystem NQN: controllers */
	json_t *qpairs;              /* per subsystem NQN: qpairs */
	unsigned pending;
	bool dead;                   /* closed while answers were pending */
	char *out;
	size_t outlen, off;
	TAILQ_ENTRY(mconn) link;
};

static struct {
	int fd;
	struct nvl_fdh *fdh;
	char address[NI_MAXHOST];
	char port[NI_MAXSERV];
	unsigned nconns;
	uint64_t scrapes, refused;
	uint64_t start_us;
	TAILQ_HEAD(, mconn) conns;
} g_m = { .fd = -1, .conns = TAILQ_HEAD_INITIALIZER(g_m.conns) };

/* ---- text output ------------------------------------------------------------ */

struct mbuf {
	char *p;
	size_t len, cap;
	bool om;          /* OpenMetrics */
};

static void __attribute__((format(printf, 2, 3)))
mb_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (b->p && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = NVL_MAX(b->cap * 2, b->len + (size_t)n + 4096);
		char *p = realloc(b->p, cap);

		if (p == NULL)
			return;
		b->p = p;
		b->cap = cap;
	}
}

/* One metric family: HELP and TYPE lines. Counters: `name` without _total. */
static void
mb_family(struct mbuf *b, const char *name, const char *type, const char *help)
{
	bool counter = strcmp(type, "counter") == 0;
	const char *suffix = counter && !b->om ? "_total" : "";

	mb_printf(b, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, suffix, help, name, suffix, type);
}

/* A label value, escaped (backslash, double quote, newline). */
static void
mb_escape(struct mbuf *b, const char *v)
{
	for (; v && *v; v++) {
		if (*v == '\\' || *v == '"')
			mb_printf(b, "\\%c", *v);
		else if (*v == '\n')
			mb_printf(b, "\\n");
		else
			mb_printf(b, "%c", *v);
	}
}

/* name{labels} value; labels: "k1", v1, "k2", v2, ..., NULL */
static void
mb_sample(struct mbuf *b, const char *name, const char *suffix, double v, ...)
{
	va_list ap;
	const char *k;
	bool first = true;

	mb_printf(b, "%s%s", name, suffix);
	va_start(ap, v);
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *val = va_arg(ap, const char *);

		mb_printf(b, "%s%s=\"", first ? "{" : ",", k);
		mb_escape(b, val ? val : "");
		mb_printf(b, "\"");
		first = false;
	}
	va_end(ap);
	if (!first)
		mb_printf(b, "}");
	if (v == (double)(int64_t)v && v < 9e15 && v > -9e15)
		mb_printf(b, " %" PRId64 "\n", (int64_t)v);
	else
		mb_printf(b, " %.9g\n", v);
}

static double
jnum(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (double)json_integer_value(v) : json_number_value(v);
}

static const char *
jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* A table row: JSON key (in `stats` or the object itself) -> metric. */
struct mmap {
	const char *key;
	const char *name;     /* without prefix and without _total */
	const char *type;     /* counter | gauge */
	const char *help;
};

/* Write one family per table row over every object of `arr`, labelled by
 * `lkey` = the object's `jkey` (and a second label when given). */
static void
mb_table(struct mbuf *b, const char *prefix, const struct mmap *t, size_t n, json_t *arr,
	 const char *stats_key, const char *lkey, const char *jkey)
{
	for (size_t r = 0; r < n; r++) {
		char name[128];
		json_t *o;
		size_t i;

		snprintf(name, sizeof(name), "%s_%s", prefix, t[r].name);
		mb_family(b, name, t[r].type, t[r].help);
		json_array_foreach(arr, i, o) {
			json_t *src = stats_key ? json_object_get(o, stats_key) : o;

			mb_sample(b, name, strcmp(t[r].type, "counter") == 0 ? "_total" : "",
				  jnum(src, t[r].key), lkey, jstr(o, jkey), NULL);
		}
	}
}

/* ---- the figures ----------------------------------------------------------------- */

static void
m_process(struct mbuf *b)
{
	struct rlimit rl;
	unsigned long vsize = 0;
	long rss = 0;
	unsigned long long ut = 0, st = 0;
	unsigned nfds = 0;
	char line[1024], *p;
	FILE *f = fopen("/proc/self/stat", "re");
	long hz = sysconf(_SC_CLK_TCK);
	long page = sysconf(_SC_PAGESIZE);

	if (f) {
		if (fgets(line, sizeof(line), f) && (p = strrchr(line, ')')) != NULL)
			/* after "pid (comm)": state ppid ... utime(14) stime(15) ...
			 * vsize(23) rss(24) */
			sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
				      "%*d %*d %*d %*d %*d %*d %*u %lu %ld",
			       &ut, &st, &vsize, &rss);
		fclose(f);
	}
	{
		DIR *d = opendir("/proc/self/fd");
		struct dirent *de;

		while (d && (de = readdir(d)) != NULL)
			nfds += de->d_name[0] != '.';
		if (d) {
			closedir(d);
			nfds--;   /* the directory's own descriptor */
		}
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	mb_family(b, "process_cpu_seconds", "counter", "User and system CPU time spent.");
	mb_sample(b, "process_cpu_seconds", "_total", (double)(ut + st) / (double)hz, NULL);
	mb_family(b, "process_open_fds", "gauge", "Open file descriptors.");
	mb_sample(b, "process_open_fds", "", nfds, NULL);
	mb_family(b, "process_max_fds", "gauge", "Limit of open file descriptors.");
	mb_sample(b, "process_max_fds", "", (double)rl.rlim_cur, NULL);
	mb_family(b, "process_resident_memory_bytes", "gauge", "Resident memory.");
	mb_sample(b, "process_resident_memory_bytes", "", (double)rss * (double)page, NULL);
	mb_family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory.");
	mb_sample(b, "process_virtual_memory_bytes", "", (double)vsize, NULL);
}

static void
m_daemon(struct mbuf *b, struct mconn *c)
{
	json_t *v = c->src[MS_VERSION];
	json_t *bd;
	double ram = 0;
	size_t i;

	mb_family(b, "nvlend_build_info", "gauge", "The daemon's version (value 1).");
	mb_sample(b, "nvlend_build_info", "", 1, "version", jstr(v, "version"), NULL);
	mb_family(b, "nvlend_uptime_seconds", "gauge", "Seconds since the daemon started.");
	mb_sample(b, "nvlend_uptime_seconds", "",
		  (double)(nvl_now_us() - g_m.start_us) / 1e6, NULL);
	json_array_foreach(c->src[MS_BDEVS], i, bd) {
		if (strcmp(jstr(bd, "type"), "ram") == 0)
			ram += jnum(bd, "num_blocks") * jnum(bd, "block_size");
	}
	mb_family(b, "nvlend_ram_bdev_bytes", "gauge", "Memory held by RAM bdevs.");
	mb_sample(b, "nvlend_ram_bdev_bytes", "", ram, NULL);
	mb_family(b, "nvlend_metrics_scrapes", "counter", "Scrapes served by this exporter.");
	mb_sample(b, "nvlend_metrics_scrapes", "_total", (double)g_m.scrapes, NULL);
}

static void
m_reactors(struct mbuf *b, struct mconn *c)
{
	static const struct mmap t[] = {
		{ "loops", "loops", "counter", "Turns of the reactor's loop." },
		{ "busy_loops", "busy_loops", "counter", "Turns that found work." },
		{ "sleeps", "sleeps", "counter", "Times the reactor slept." },
		{ "msgs", "messages", "counter", "Messages run." },
		{ "busy_ns", "busy_seconds", "counter", "Time spent doing work." },
		{ "idle_ns", "idle_seconds", "counter", "Time spent spinning without work." },
		{ "sleep_ns", "sleep_seconds", "counter", "Time spent asleep waiting for work." },
		{ "pollers", "pollers", "gauge", "Pollers registered." },
		{ "fds", "fds", "gauge", "Descriptors watched." },
	};
	json_t *arr = json_object_get(c->src[MS_REACTORS], "reactors"), *r;
	size_t i;

	for (size_t k = 0; k < NVL_ARRAY_SIZE(t); k++) {
		char name[96];
		bool ns = strstr(t[k].key, "_ns") != NULL;

		if (json_array_size(arr) && !json_object_get(json_array_get(arr, 0), t[k].key))
			continue;   /* figure not reported by this build */
		snprintf(name, sizeof(name), "nvlend_reactor_%s", t[k].name);
		mb_family(b, name, t[k].type, t[k].help);
		json_array_foreach(arr, i, r) {
			char id[16];

			snprintf(id, sizeof(id), "%d", (int)jnum(r, "id"));
			mb_sample(b, name, strcmp(t[k].type, "counter") == 0 ? "_total" : "",
				  jnum(r, t[k].key) / (ns ? 1e9 : 1), "reactor", id, NULL);
		}
	}
}

/* Power-of-two boundaries in ns (1.024 us .. 1.07 s) fall on bucket edges of
 * util/histogram.c, so every cumulative count is exact. */
static void
m_histogram(struct mbuf *b, const char *name, const char *bdev, const json_t *h,
	    double sum_ns)
{
	json_t *buckets = json_object_get(h, "buckets"), *e;
	double cum = 0;
	size_t i = 0, n = json_array_size(buckets);

	for (unsigned k = 10; k <= 30; k++) {
		double le = (double)(1ULL << k);
		char les[32];

		for (; i < n; i++) {
			e = json_array_get(buckets, i);
			if ((double)json_integer_value(json_array_get(e, 0)) >= le)
				break;
			cum += (double)json_integer_value(json_array_get(e, 1));
		}
		snprintf(les, sizeof(les), "%.9g", le / 1e9);
		mb_sample(b, name, "_bucket", cum, "bdev", bdev, "le", les, NULL);
	}
	mb_sample(b, name, "_bucket", jnum(h, "count"), "bdev", bdev, "le", "+Inf", NULL);
	mb_sample(b, name, "_sum", sum_ns / 1e9, "bdev", bdev, NULL);
	mb_sample(b, name, "_count", jnum(h, "count"), "bdev", bdev, NULL);
}

static void
m_bdevs(struct mbuf *b, struct mconn *c)
{
	static const struct mmap t[] = {
		{ "num_read_ops", "read_ops", "counter", "Read operations completed." },
		{ "num_write_ops", "write_ops", "counter", "Write operations completed." },
		{ "num_unmap_ops", "unmap_ops", "counter", "Unmap (deallocate) operations." },
		{ "num_write_zeroes_ops", "write_zeroes_ops", "counter", "Write zeroes operations." },
		{ "num_flush_ops", "flush_ops", "counter", "Flush operations." },
		{ "bytes_read", "read_bytes", "counter", "Bytes read." },
		{ "bytes_written", "written_bytes", "counter", "Bytes written." },
		{ "bytes_unmapped", "unmapped_bytes", "counter", "Bytes deallocated." },
		{ "bytes_zeroed", "zeroed_bytes", "counter", "Bytes written as zeroes." },
		{ "io_errors", "io_errors", "counter", "Operations that failed." },
		{ "queue_depth", "queue_depth", "gauge", "Operations in flight now." },
	};
	json_t *io = json_object_get(c->src[MS_IOSTAT], "bdevs"), *bd;
	size_t i;

	mb_family(b, "nvlend_bdev_size_bytes", "gauge", "Capacity of a bdev.");
	json_array_foreach(c->src[MS_BDEVS], i, bd)
		mb_sample(b, "nvlend_bdev_size_bytes", "",
			  jnum(bd, "num_blocks") * jnum(bd, "block_size"), "bdev", jstr(bd, "name"),
			  "type", jstr(bd, "type"), NULL);
	mb_table(b, "nvlend_bdev", t, NVL_ARRAY_SIZE(t), io, NULL, "bdev", "name");
	for (int w = 0; w < 2; w++) {
		const char *name = w ? "nvlend_bdev_write_latency_seconds"
				     : "nvlend_bdev_read_latency_seconds";

		mb_family(b, name, "histogram",
			  w ? "Write latency inside the daemon (submission to the backend until "
			      "completion)."
			    : "Read latency inside the daemon (submission to the backend until "
			      "completion).");
		json_array_foreach(io, i, bd)
			m_histogram(b, name, jstr(bd, "name"),
				    json_object_get(json_object_get(bd, "latency_histogram"),
						    w ? "write" : "read"),
				    jnum(bd, w ? "write_latency_ticks" : "read_latency_ticks"));
	}
}

static void
m_subsystems(struct mbuf *b, struct mconn *c)
{
	static const struct mmap ct[] = {
		{ "read_cmds", "read_commands", "counter", "Read commands completed." },
		{ "write_cmds", "write_commands", "counter", "Write commands completed." },
		{ "read_bytes", "read_bytes", "counter", "Bytes read." },
		{ "write_bytes", "written_bytes", "counter", "Bytes written." },
		{ "errors", "errors", "counter", "Commands completed with an error status." },
		{ "resv_conflicts", "reservation_conflicts", "counter",
		  "Commands refused with Reservation Conflict." },
	};
	static const struct mmap qt[] = {
		{ "submitted", "submitted", "counter", "Commands taken from the queue." },
		{ "completed", "completed", "counter", "Completions posted." },
		{ "interrupts", "interrupts", "counter", "Interrupts raised." },
		{ "cq_full_waits", "cq_full_waits", "counter", "Completions that found the CQ full." },
		{ "outstanding", "outstanding", "gauge", "Commands in flight." },
	};
	json_t *subs = c->src[MS_SUBSYS], *s, *ctl, *q, *listeners = json_object();
	const char *nqn;
	size_t i, j;

	mb_family(b, "nvlend_subsystem_namespaces", "gauge", "Namespaces of a subsystem.");
	json_array_foreach(subs, i, s)
		mb_sample(b, "nvlend_subsystem_namespaces", "", (double)json_array_size(
				  json_object_get(s, "namespaces")), "nqn", jstr(s, "nqn"), NULL);
	mb_family(b, "nvlend_subsystem_allowed_hosts", "gauge",
		  "Host NQNs allowed (-1: any host).");
	json_array_foreach(subs, i, s)
		mb_sample(b, "nvlend_subsystem_allowed_hosts", "",
			  json_is_true(json_object_get(s, "allow_any_host"))
				  ? -1 : (double)json_array_size(json_object_get(s, "hosts")),
			  "nqn", jstr(s, "nqn"), NULL);
	mb_family(b, "nvlend_subsystem_keep_alive_expiries", "counter",
		  "Controllers ended because their host's keep-alive stopped.");
	json_array_foreach(subs, i, s)
		mb_sample(b, "nvlend_subsystem_keep_alive_expiries", "_total",
			  jnum(s, "keep_alive_expiries"), "nqn", jstr(s, "nqn"), NULL);
	mb_family(b, "nvlend_subsystem_controllers", "gauge", "Connected controllers (hosts).");
	json_array_foreach(subs, i, s)
		mb_sample(b, "nvlend_subsystem_controllers", "", jnum(s, "controllers"), "nqn",
			  jstr(s, "nqn"), NULL);
	mb_family(b, "nvlend_controller_io_queues", "gauge", "I/O queue pairs of a controller.");
	json_object_foreach(c->ctrlrs, nqn, s) {
		json_array_foreach(s, j, ctl) {
			char id[16], key[512];
			json_t *la = json_object_get(ctl, "listen_address");

			snprintf(id, sizeof(id), "%d", (int)jnum(ctl, "cntlid"));
			mb_sample(b, "nvlend_controller_io_queues", "", jnum(ctl, "num_io_qpairs"),
				  "nqn", nqn, "cntlid", id, "hostnqn", jstr(ctl, "hostnqn"),
				  "trtype", jstr(ctl, "trtype"), NULL);
			snprintf(key, sizeof(key), "%s\t%s\t%s", jstr(la, "trtype"),
				 jstr(la, "traddr"), jstr(la, "trsvcid"));
			json_object_set_new(listeners, key,
					    json_integer(json_integer_value(
						    json_object_get(listeners, key)) + 1));
		}
	}
	for (size_t k = 0; k < NVL_ARRAY_SIZE(ct); k++) {
		char name[96];

		snprintf(name, sizeof(name), "nvlend_controller_%s", ct[k].name);
		mb_family(b, name, ct[k].type, ct[k].help);
		json_object_foreach(c->ctrlrs, nqn, s) {
			json_array_foreach(s, j, ctl) {
				char id[16];

				snprintf(id, sizeof(id), "%d", (int)jnum(ctl, "cntlid"));
				mb_sample(b, name, "_total", jnum(json_object_get(ctl, "io"), ct[k].key),
					  "nqn", nqn, "cntlid", id, NULL);
			}
		}
	}
	for (size_t k = 0; k < NVL_ARRAY_SIZE(qt); k++) {
		char name[96];

		snprintf(name, sizeof(name), "nvlend_qpair_%s", qt[k].name);
		mb_family(b, name, qt[k].type, qt[k].help);
		json_object_foreach(c->qpairs, nqn, s) {
			json_array_foreach(s, j, q) {
				char id[16], qid[16];

				if (jnum(q, "qid") == 0 || !json_object_get(q, qt[k].key))
					continue;
				snprintf(id, sizeof(id), "%d", (int)jnum(q, "cntlid"));
				snprintf(qid, sizeof(qid), "%d", (int)jnum(q, "qid"));
				mb_sample(b, name, strcmp(qt[k].type, "counter") ? "" : "_total",
					  jnum(q, qt[k].key), "nqn", nqn, "cntlid", id, "qid", qid,
					  "trtype", jstr(q, "trtype"), NULL);
			}
		}
	}
	mb_family(b, "nvlend_listener_controllers", "gauge",
		  "Controllers connected through a listener address.");
	json_object_foreach(listeners, nqn, s) {
		char tr[16] = "", addr[300] = "", port[32] = "";

		sscanf(nqn, "%15[^\t]\t%299[^\t]\t%31s", tr, addr, port);
		mb_sample(b, "nvlend_listener_controllers", "", (double)json_integer_value(s),
			  "trtype", tr, "traddr", addr, "trsvcid", port, NULL);
	}
	json_decref(listeners);
}

static void
m_nbd(struct mbuf *b, struct mconn *c)
{
	static const struct mmap t[] = {
		{ "read_ops", "read_ops", "counter", "NBD reads." },
		{ "write_ops", "write_ops", "counter", "NBD writes." },
		{ "flush_ops", "flush_ops", "counter", "NBD flushes." },
		{ "trim_ops", "trim_ops", "counter", "NBD trims." },
		{ "write_zeroes_ops", "write_zeroes_ops", "counter", "NBD write zeroes." },
		{ "read_bytes", "read_bytes", "counter", "Bytes read over NBD." },
		{ "write_bytes", "written_bytes", "counter", "Bytes written over NBD." },
		{ "errors", "errors", "counter", "Requests answered with an error." },
		{ "held_reads", "held_reads", "counter", "Reads held by the read hold." },
	};
	json_t *srv = c->src[MS_NBD_SERVER], *e;
	size_t i;

	if (srv == NULL)
		return;
	mb_family(b, "nvlend_nbd_server_running", "gauge", "1 while the NBD server listens.");
	mb_sample(b, "nvlend_nbd_server_running", "",
		  json_is_true(json_object_get(srv, "running")), NULL);
	mb_family(b, "nvlend_nbd_connections", "gauge", "NBD client connections.");
	mb_sample(b, "nvlend_nbd_connections", "", jnum(srv, "connections"), NULL);
	mb_family(b, "nvlend_nbd_refused_connections", "counter",
		  "NBD connections refused (over the connection limit).");
	mb_sample(b, "nvlend_nbd_refused_connections", "_total", jnum(srv, "refused_connections"),
		  NULL);
	mb_family(b, "nvlend_nbd_export_connections", "gauge", "Connections to an export.");
	json_array_foreach(c->src[MS_NBD_EXPORTS], i, e)
		mb_sample(b, "nvlend_nbd_export_connections", "", jnum(e, "connections"), "export",
			  jstr(e, "name"), NULL);
	mb_table(b, "nvlend_nbd_export", t, NVL_ARRAY_SIZE(t), c->src[MS_NBD_EXPORTS], "stats",
		 "export", "name");
}

static void
m_vblk(struct mbuf *b, struct mconn *c)
{
	static const struct mmap t[] = {
		{ "requests", "requests", "counter", "Requests taken from the virtqueue." },
		{ "read_ops", "read_ops", "counter", "Reads." },
		{ "write_ops", "write_ops", "counter", "Writes." },
		{ "flush_ops", "flush_ops", "counter", "Flushes." },
		{ "discard_ops", "discard_ops", "counter", "Discards." },
		{ "bytes_read", "read_bytes", "counter", "Bytes read." },
		{ "bytes_written", "written_bytes", "counter", "Bytes written." },
		{ "ioerr", "io_errors", "counter", "Requests answered VIRTIO_BLK_S_IOERR." },
		{ "kicks", "kicks", "counter", "Kicks (notifications from the guest)." },
		{ "interrupts", "interrupts", "counter", "Interrupts raised to the guest." },
		{ "resubmitted", "resubmitted", "counter", "Requests resubmitted after a restart." },
		{ "inflight", "inflight", "gauge", "Requests in flight." },
	};
	json_t *ctl, *q;
	size_t i, j;

	mb_family(b, "nvlend_vblk_frontend_connected", "gauge",
		  "1 while a vhost-user front-end is connected.");
	json_array_foreach(c->src[MS_VBLK], i, ctl)
		mb_sample(b, "nvlend_vblk_frontend_connected", "",
			  !json_is_null(json_object_get(ctl, "frontend")) &&
				  json_object_get(ctl, "frontend") != NULL,
			  "controller", jstr(ctl, "name"), NULL);
	for (size_t k = 0; k < NVL_ARRAY_SIZE(t); k++) {
		char name[96];

		snprintf(name, sizeof(name), "nvlend_vblk_queue_%s", t[k].name);
		mb_family(b, name, t[k].type, t[k].help);
		json_array_foreach(c->src[MS_VBLK], i, ctl) {
			json_array_foreach(json_object_get(ctl, "queues"), j, q) {
				char qi[16];

				snprintf(qi, sizeof(qi), "%d", (int)jnum(q, "index"));
				mb_sample(b, name, strcmp(t[k].type, "counter") ? "" : "_total",
					  jnum(q, t[k].key), "controller", jstr(ctl, "name"), "queue",
					  qi, NULL);
			}
		}
	}
}

static void
m_bricks(struct mbuf *b, struct mconn *c)
{
	static const struct mmap g[] = {
		{ "capacity_blocks", "capacity_blocks", "gauge", "2 MiB blocks the brick may hold." },
		{ "allocated_blocks", "allocated_blocks", "gauge", "Blocks allocated." },
		{ "mapped_blocks", "mapped_blocks", "gauge", "Blocks mapped by clients." },
		{ "fast_tier_blocks", "fast_tier_blocks", "gauge", "Blocks in the fast tier." },
		{ "slow_tier_blocks", "slow_tier_blocks", "gauge", "Blocks in the slow tier." },
		{ "handles", "handles", "gauge", "Handles held by clients." },
		{ "connections", "connections", "gauge", "Client connections." },
	};
	static const struct mmap s[] = {
		{ "allocs", "allocs", "counter", "Blocks allocated." },
		{ "frees", "frees", "counter", "Blocks freed." },
		{ "maps", "maps", "counter", "Maps." },
		{ "unmaps", "unmaps", "counter", "Unmaps." },
		{ "flushes", "flushes", "counter", "Flushes." },
		{ "bytes_flushed", "flushed_bytes", "counter", "Bytes made durable by flushes." },
		{ "evictions", "evictions", "counter", "Blocks moved to the slow tier." },
		{ "fetches", "fetches", "counter", "Blocks brought back to the fast tier." },
		{ "revocations", "revocations", "counter", "Handles revoked." },
	};

	mb_table(b, "nvlend_brick", g, NVL_ARRAY_SIZE(g), c->src[MS_BRICKS], NULL, "brick",
		 "name");
	mb_table(b, "nvlend_brick", s, NVL_ARRAY_SIZE(s), c->src[MS_BRICKS], "stats", "brick",
		 "name");
}

static void
m_nvme_ctrlrs(struct mbuf *b, struct mconn *c)
{
	json_t *ctl;
	size_t i;

	mb_family(b, "nvlend_nvme_controller_connected", "gauge",
		  "1 while an imported NVMe controller is connected.");
	json_array_foreach(c->src[MS_NVME_CTRLRS], i, ctl) {
		const char *st = jstr(ctl, "state");

		mb_sample(b, "nvlend_nvme_controller_connected", "",
			  strcmp(st, "enabled") == 0 || strcmp(st, "connected") == 0, "controller",
			  jstr(ctl, "name"), "state", st, NULL);
	}
}

/* ---- HTTP ------------------------------------------------------------------------- */

static void mconn_close(struct mconn *c);

static void
mconn_reply(struct mconn *c, const char *status, const char *ctype, const char *body,
	    size_t blen)
{
	struct mbuf h = { 0 };

	mb_printf(&h,
		  "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		  "Connection: close\r\nCache-Control: no-store\r\n\r\n",
		  status, ctype, blen);
	if (!c->head && blen)
		mb_printf(&h, "%.*s", (int)blen, body);
	free(c->out);
	c->out = h.p;
	c->outlen = h.len;
	c->off = 0;
	c->state = MC_WRITING;
	if (nvl_fd_mod(c->fdh, EPOLLOUT) < 0)
		mconn_close(c);
}

static void
mconn_render(struct mconn *c)
{
	struct mbuf b = { .om = c->openmetrics };

	m_process(&b);
	m_daemon(&b, c);
	m_reactors(&b, c);
	m_bdevs(&b, c);
	m_subsystems(&b, c);
	m_nbd(&b, c);
	m_vblk(&b, c);
	m_bricks(&b, c);
	m_nvme_ctrlrs(&b, c);
	if (b.om)
		mb_printf(&b, "# EOF\n");
	g_m.scrapes++;
	mconn_reply(c, "200 OK",
		    c->openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
				   : "text/plain; version=0.0.4; charset=utf-8",
		    b.p ? b.p : "", b.len);
	free(b.p);
}

struct mcall {
	struct mconn *c;
	int src;                     /* enum msrc, or -1 (per subsystem) */
	json_t *into;                /* per subsystem: the object to set */
	char nqn[256];
};

static void mconn_collect_subsystems(struct mconn *c);

/* One answer (or the issuer's own hold) less; the last one moves on. */
static void
mconn_release(struct mconn *c)
{
	if (--c->pending > 0)
		return;
	if (c->dead) {
		mconn_close(c);
		return;
	}
	if (c->ctrlrs == NULL)
		mconn_collect_subsystems(c);
	else
		mconn_render(c);
}

static void
mcall_done(void *arg, json_t *result, json_t *error)
{
	struct mcall *m = arg;
	struct mconn *c = m->c;

	if (result && !error) {
		if (m->src >= 0)
			c->src[m->src] = json_incref(result);
		else
			json_object_set(m->into, m->nqn, result);
	}
	free(m);
	mconn_release(c);
}

static void
mcall(struct mconn *c, int src, const char *method, json_t *params, json_t *into,
      const char *nqn)
{
	struct mcall *m = calloc(1, sizeof(*m));

	if (m == NULL) {
		json_decref(params);
		return;
	}
	m->c = c;
	m->src = src;
	m->into = into;
	if (nqn)
		nvl_strlcpy(m->nqn, nqn, sizeof(m->nqn));
	c->pending++;
	if (nvl_rpc_call_local(method, params, mcall_done, m) < 0) {
		/* not in this build: its figures are left out */
		c->pending--;
		free(m);
	}
	json_decref(params);   /* the call took its own reference */
}

/* Second round: each subsystem's controllers and queue pairs. */
static void
mconn_collect_subsystems(struct mconn *c)
{
	json_t *s;
	size_t i;

	c->ctrlrs = json_object();
	c->qpairs = json_object();
	c->pending++;   /* held while issuing: no answer may finish the round early */
	json_array_foreach(c->src[MS_SUBSYS], i, s) {
		const char *nqn = jstr(s, "nqn");

		if (strcmp(jstr(s, "subtype"), "Discovery") == 0)
			continue;
		mcall(c, -1, "nvmf_subsystem_get_controllers", json_pack("{s:s}", "nqn", nqn),
		      c->ctrlrs, nqn);
		mcall(c, -1, "nvmf_subsystem_get_qpairs", json_pack("{s:s}", "nqn", nqn), c->qpairs,
		      nqn);
	}
	mconn_release(c);
}

/* First round: every source of figures at once. */
static void
mconn_collect(struct mconn *c)
{
	c->state = MC_COLLECTING;
	c->pending++;   /* held while issuing */
	for (int s = 0; s < MS_N; s++)
		mcall(c, s, g_src_method[s], NULL, NULL, NULL);
	mconn_release(c);
}

/* Parse what arrived: the request line and the Accept header. */
static void
mconn_request(struct mconn *c)
{
	char method[16] = "", path[256] = "";
	char *accept;

	if (sscanf(c->req, "%15s %255s HTTP/1.%*c", method, path) != 2) {
		mconn_reply(c, "400 Bad Request", "text/plain", "bad request\n", 12);
		return;
	}
	c->head = strcmp(method, "HEAD") == 0;
	if (strcmp(method, "GET") != 0 && !c->head) {
		mconn_reply(c, "405 Method Not Allowed", "text/plain", "GET only\n", 9);
		return;
	}
	if (strncmp(path, "/metrics", 8) != 0 || (path[8] && path[8] != '?')) {
		static const char body[] = "nvlendd: metrics are at /metrics\n";

		mconn_reply(c, "404 Not Found", "text/plain", body, sizeof(body) - 1);
		return;
	}
	accept = strcasestr(c->req, "\r\nAccept:");
	c->openmetrics = accept && strstr(accept, "application/openmetrics-text") &&
			 strstr(accept, "application/openmetrics-text") < strstr(accept + 2, "\r\n");
	mconn_collect(c);
}

static void
mconn_event(void *arg, uint32_t events)
{
	struct mconn *c = arg;
	ssize_t n;

	if (c->state == MC_READING) {
		n = read(c->fd, c->req + c->got, METRICS_MAX_REQ - c->got);
		if (n <= 0) {
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			mconn_close(c);
			return;
		}
		c->got += (size_t)n;
		c->req[c->got] = '\0';
		if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
			nvl_fd_mod(c->fdh, 0);
			mconn_request(c);
		} else if (c->got == METRICS_MAX_REQ) {
			mconn_reply(c, "431 Request Header Fields Too Large", "text/plain", "", 0);
		}
		return;
	}
	if (c->state == MC_WRITING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		n = send(c->fd, c->out + c->off, c->outlen - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0 || (c->off += (size_t)n) == c->outlen)
			mconn_close(c);
	}
}

static void
mconn_timeout(void *arg)
{
	struct mconn *c = arg;

	c->timeout = NULL;
	NVL_DEBUGLOG(metrics, "scrape connection timed out");
	mconn_close(c);
}

static void
mconn_close(struct mconn *c)
{
	if (c->fdh) {
		nvl_fd_del(c->fdh);
		c->fdh = NULL;
		close(c->fd);
		c->fd = -1;
		nvl_timer_destroy(c->timeout);
		c->timeout = NULL;
		TAILQ_REMOVE(&g_m.conns, c, link);
		g_m.nconns--;
	}
	if (c->pending > 0) {
		c->dead = true;   /* freed when the last answer comes */
		return;
	}
	for (int s = 0; s < MS_N; s++)
		json_decref(c->src[s]);
	json_decref(c->ctrlrs);
	json_decref(c->qpairs);
	free(c->out);
	free(c);
}

static void
metrics_accept(void *arg, uint32_t events)
{
	(void)arg;
	(void)events;
	for (;;) {
		int fd = accept4(g_m.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct mconn *c;

		if (fd < 0)
			return;
		if (g_m.nconns >= METRICS_MAX_CONNS) {
			static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
						   "Content-Length: 0\r\nConnection: close\r\n\r\n";

			g_m.refused++;
			(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->fdh = nvl_fd_add(fd, EPOLLIN, mconn_event, c);
		c->timeout = nvl_timer_create(mconn_timeout, c, METRICS_TIMEOUT_US, 0);
		if (c->fdh == NULL) {
			close(fd);
			nvl_timer_destroy(c->timeout);
			free(c);
			continue;
		}
		TAILQ_INSERT_TAIL(&g_m.conns, c, link);
		g_m.nconns++;
	}
}

/* ---- start / stop ------------------------------------------------------------------ */

int
nvl_metrics_start(const char *address, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	int one = 1, fd, rc;

	if (g_m.fd >= 0)
		return -EALREADY;
	rc = getaddrinfo(address, port, &hints, &ai);
	if (rc != 0)
		return rc == EAI_SYSTEM ? -errno : -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
		rc = -errno;
		close(fd);
		goto out;
	}
	g_m.fdh = nvl_fd_add(fd, EPOLLIN, metrics_accept, NULL);
	if (g_m.fdh == NULL) {
		rc = -ENOMEM;
		close(fd);
		goto out;
	}
	g_m.fd = fd;
	nvl_strlcpy(g_m.address, address, sizeof(g_m.address));
	nvl_strlcpy(g_m.port, port, sizeof(g_m.port));
	NVL_NOTICELOG("metrics: serving http://%s%s%s:%s/metrics", strchr(address, ':') ? "[" : "",
		      address, strchr(address, ':') ? "]" : "", port);
	rc = 0;
out:
	freeaddrinfo(ai);
	return rc;
}

void
nvl_metrics_stop(void)
{
	struct mconn *c;

	if (g_m.fd < 0)
		return;
	nvl_fd_del(g_m.fdh);
	g_m.fdh = NULL;
	close(g_m.fd);
	g_m.fd = -1;
	while ((c = TAILQ_FIRST(&g_m.conns)) != NULL)
		mconn_close(c);
	NVL_NOTICELOG("metrics: stopped");
}

/* ---- RPCs --------------------------------------------------------------------------- */

struct rpc_metrics_start {
	const char *address;
	uint16_t port;
};

static const struct nvl_rpc_param g_metrics_start_params[] = {
	NVL_RPC_PARAM(struct rpc_metrics_start, address, NVL_RPC_T_STR, false,
		      "address to listen on (default 127.0.0.1)"),
	NVL_RPC_PARAM(struct rpc_metrics_start, port, NVL_RPC_T_U16, true,
		      "TCP port (Prometheus' convention for exporters: 9xxx)"),
};

static void
rpc_metrics_start(struct nvl_rpc_request *req, void *arg)
{
	struct rpc_metrics_start *a = arg;
	char port[8];
	int rc;

	snprintf(port, sizeof(port), "%u", a->port);
	rc = nvl_metrics_start(a->address ? a->address : "127.0.0.1", port);
	if (rc == -EALREADY)
		nvl_rpc_error(req, NVL_RPC_INVALID_STATE, "the exporter already serves %s port %s",
			      g_m.address, g_m.port);
	else if (rc < 0)
		nvl_rpc_error(req, NVL_RPC_INVALID_PARAMS, "cannot listen on %s port %u: %s",
			      a->address ? a->address : "127.0.0.1", a->port, strerror(-rc));
	else
		nvl_rpc_result(req, json_true());
}
NVL_RPC_REGISTER("metrics_start_exporter", rpc_metrics_start, struct rpc_metrics_start,
		 g_metrics_start_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "Serve Prometheus/OpenMetrics metrics over HTTP at http://ADDRESS:PORT/metrics.")

static void
rpc_metrics_stop(struct nvl_rpc_request *req, void *arg)
{
	(void)arg;
	if (g_m.fd < 0) {
		nvl_rpc_error(req, NVL_RPC_INVALID_STATE, "the metrics exporter is not running");
		return;
	}
	nvl_metrics_stop();
	nvl_rpc_result(req, json_true());
}
NVL_RPC_REGISTER_NOARGS("metrics_stop_exporter", rpc_metrics_stop, NVL_RPC_RUNTIME,
			"Stop serving metrics (scrapes in progress are dropped).")

static void
rpc_metrics_get(struct nvl_rpc_request *req, void *arg)
{
	(void)arg;
	if (g_m.fd < 0) {
		nvl_rpc_result(req, json_pack("{s:b}", "running", false));
		return;
	}
	nvl_rpc_result(req, json_pack("{s:b, s:s, s:i, s:I, s:I, s:i}", "running", true,
				      "address", g_m.address, "port", (int)strtol(g_m.port, NULL, 10),
				      "scrapes", (json_int_t)g_m.scrapes, "refused",
				      (json_int_t)g_m.refused, "connections", (int)g_m.nconns));
}
NVL_RPC_REGISTER_NOARGS("metrics_get_exporter", rpc_metrics_get, NVL_RPC_RUNTIME,
			"State of the metrics exporter: address, port, scrapes served.")

static void
metrics_write_config(json_t *calls)
{
	if (g_m.fd < 0)
		return;
	json_array_append_new(calls, json_pack("{s:s, s:{s:s, s:i}}", "method",
					       "metrics_start_exporter", "params", "address",
					       g_m.address, "port", (int)strtol(g_m.port, NULL, 10)));
}

static int
metrics_init(void)
{
	g_m.start_us = nvl_now_us();
	return 0;
}

static void
metrics_fini(nvl_app_done_fn done)
{
	nvl_metrics_stop();
	done();
}

static struct nvl_subsystem g_metrics_subsys = {
	.name = "metrics",
	.order = 5,
	.init = metrics_init,
	.fini = metrics_fini,
	.write_config = metrics_write_config,
};
NVL_SUBSYSTEM_REGISTER(g_metrics_subsys)
