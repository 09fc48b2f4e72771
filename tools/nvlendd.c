/* SPDX-License-Identifier: BSD-3-Clause */
/* nvlendd: the nvlend daemon. Parses options and hands over to src/app. */
#include "app/app.h"
#include "app/keeper.h"
#include "app/metrics.h"
#include "function/vblk.h"
#include "lend/lend.h"
#include "rpc/rpc.h"
#include "util/fdstore.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static void
usage(FILE *f)
{
	char sock[256];

	fprintf(f,
"NAME\n"
"    nvlendd - the nvlend daemon: serves bdevs to hosts over shared memory,\n"
"    NVMe/TCP, NBD and vhost-user-blk, controlled by JSON-RPC\n"
"\n"
"SYNOPSIS\n"
"    nvlendd [-c FILE] [-s PATH] [--cores LIST] [--log-level N] [options]\n"
"\n"
"DESCRIPTION\n"
"    Runs in the foreground until SIGTERM or SIGINT, then stops accepting\n"
"    work, lets in-flight I/O finish, and exits. Configure it at run time with\n"
"    `nvlend` (or any JSON-RPC 2.0 client, e.g. SPDK's rpc.py -s PATH) on its\n"
"    Unix socket. A socket left behind by a daemon that died is taken over; a\n"
"    second daemon on the socket of a live one refuses to start.\n"
"\n"
"    Two processes: nvlendd is a small keeper that starts the worker (the\n"
"    daemon proper) and holds the descriptors it serves from (listening\n"
"    sockets, the memory of RAM bdevs, the configuration). A worker that\n"
"    crashes is started again at once with all of them: clients that connect\n"
"    meanwhile wait, and RAM bdevs keep their contents. Signals to the keeper\n"
"    go to the worker; the keeper ends with it on a clean stop. Under systemd\n"
"    (Type=notify, FileDescriptorStoreMax=) there is no keeper: systemd keeps\n"
"    the descriptors. --no-keeper runs a single process that keeps nothing.\n"
"    The keeper, and a worker started ahead of an upgrade until it has taken\n"
"    over, run at the lowest real-time priority (SCHED_FIFO 1) when allowed:\n"
"    they only wait, then pass the service on, and their wake-ups are part of\n"
"    every function's downtime. NVLEND_NO_REALTIME=1 in the environment keeps\n"
"    them in the normal class.\n"
"\n"
"OPTIONS\n"
"    -c, --config FILE      replay a saved configuration at start-up: the\n"
"                           output of `nvlend save-config` or of SPDK's\n"
"                           save_config ({\"subsystems\": [...]}), or a plain\n"
"                           JSON array of {\"method\", \"params\"} calls. Any\n"
"                           failing call aborts start-up with an error.\n"
"        --json FILE        the same as -c (SPDK's name)\n"
"        --wait-for-rpc     as SPDK's: after -c, wait in the start-up state\n"
"                           until a client calls framework_start_init (until\n"
"                           then only the methods rpc_get_methods lists with\n"
"                           current=true are callable)\n"
"    -s, -r, --rpc-socket PATH\n"
"                           JSON-RPC socket (default: %s)\n"
"    -m, --cores LIST       run one reactor per listed CPU and pin it there,\n"
"                           e.g. 0, 0-1, 0,2, or SPDK's mask 0x3 or list [0,1]\n"
"                           (default: one unpinned reactor)\n"
"        --reactors N       run N unpinned reactors (alternative to --cores)\n"
"    -L, --log-level N      debug level: 0 info and warnings only (default),\n"
"                           1 debug, 2 verbose, 3 trace; change at run time\n"
"                           with `nvlend log level N`\n"
"        --log-file FILE    append log lines to FILE instead of stderr\n"
"        --spin-us N        adaptive polling: keep polling queues N us after\n"
"                           the last work before sleeping (default 200;\n"
"                           0 sleeps at once)\n"
"        --io-sleep-us N    while file I/O is in flight and its completions\n"
"                           come at least N us apart on average (a slow disk\n"
"                           at low depth), sleep at once and let the\n"
"                           completion wake the reactor instead of spinning\n"
"                           (default 20; 0 always spins for --spin-us)\n"
"        --rpc-max-request BYTES\n"
"                           largest JSON-RPC request accepted (default 1M)\n"
"        --rpc-max-clients N\n"
"                           concurrent RPC connections (default 128)\n"
"        --rpc-request-timeout SEC\n"
"                           close an RPC connection whose request stays\n"
"                           incomplete (or whose answer stays unread) for SEC\n"
"                           seconds without progress; a request the daemon is\n"
"                           still working on never times out (default 30,\n"
"                           0 never)\n"
"        --rpc-idle-timeout SEC\n"
"                           close an RPC connection silent for SEC seconds\n"
"                           with nothing outstanding, so idle clients cannot\n"
"                           hold every --rpc-max-clients slot (default 600,\n"
"                           0 never)\n"
"        --pid-file FILE    write the daemon's pid to FILE once it serves its\n"
"                           socket and the -c configuration is applied\n"
"        --no-keeper        one process: no keeper, nothing survives a crash\n"
"        --max-restarts N[/SECS]\n"
"                           the keeper gives up (and ends with status 1) when\n"
"                           the worker dies more than N times within SECS\n"
"                           seconds (default 10/60, as systemd's start limit)\n"
"        --metrics [ADDR:]PORT\n"
"                           serve Prometheus/OpenMetrics metrics over HTTP at\n"
"                           http://ADDR:PORT/metrics (ADDR default 127.0.0.1;\n"
"                           [::1]:PORT for IPv6); the metrics_start_exporter\n"
"                           RPC does the same at run time\n"
"    -S, --vhost-socket-dir DIR\n"
"                           where vhost-user sockets given without a\n"
"                           directory go (SPDK's vhost_create_blk_controller\n"
"                           CTRLR, relative virtio_blk_controller_create paths)\n"
"                           and NVMe functions' endpoints (nvme_controller_create:\n"
"                           NAME.nvme by default, docs/functions.md);\n"
"                           default: the working directory at start-up.\n"
"                           save-config records the absolute path\n"
"        --node-name NAME   this node's name for device lending (peers list its\n"
"                           offers under it); saved in the state dir, so later\n"
"                           starts keep it (default: the saved one, else the\n"
"                           host name)\n"
"        --state-dir DIR    where the node identity and the lend records live\n"
"                           (default /var/lib/nvlend as root, else\n"
"                           $XDG_STATE_HOME/nvlend); lend records are replayed\n"
"                           from there at start, after -c\n"
"        --cluster-key FILE the key every lending peer proves it holds (HMAC-\n"
"                           SHA256); mode 0600, refused otherwise (default\n"
"                           /etc/nvlend/cluster.key; make one with\n"
"                           `nvlend lend keygen FILE`)\n"
"        --avahi-services-dir DIR\n"
"                           where `nvlend lend listen --mdns` puts the avahi\n"
"                           static service advertising the discovery port\n"
"                           (default /etc/avahi/services)\n"
"    -V, --version          print the version and exit\n"
"    -h, --help             this text\n"
"\n"
"FILES\n"
"    /run/nvlend/nvlend.sock   default RPC socket when run as root (0660); other\n"
"                              users: $XDG_RUNTIME_DIR/nvlend.sock, else\n"
"                              /tmp/nvlend-UID/nvlend.sock in a 0700 directory\n"
"    shm regions               anonymous sealed memfds (no names in /dev/shm)\n"
"\n"
"EXAMPLES\n"
"    nvlendd &\n"
"    nvlend bdev create ram r0 64M\n"
"    nvlend save-config > nvlend.json; kill %%1; nvlendd -c nvlend.json\n",
		nvl_default_rpc_socket(sock, sizeof(sock)));
}

static const char *g_pidfile;
static bool g_pid_written;
static char g_metrics_addr[256], g_metrics_port[8];

/* --metrics [ADDR:]PORT, [V6ADDR]:PORT */
static int
parse_metrics(const char *arg)
{
	const char *colon = strrchr(arg, ':');
	const char *port = colon ? colon + 1 : arg;
	uint64_t v;
	int n;

	if (nvl_parse_u64(port, 65535, &v) < 0 || v == 0)
		return -EINVAL;
	snprintf(g_metrics_port, sizeof(g_metrics_port), "%u", (unsigned)v);
	if (colon == NULL)
		n = snprintf(g_metrics_addr, sizeof(g_metrics_addr), "127.0.0.1");
	else if (arg[0] == '[' && colon > arg && colon[-1] == ']')
		n = snprintf(g_metrics_addr, sizeof(g_metrics_addr), "%.*s", (int)(colon - arg - 2),
			     arg + 1);
	else
		n = snprintf(g_metrics_addr, sizeof(g_metrics_addr), "%.*s", (int)(colon - arg),
			     arg);
	return n <= 0 || (size_t)n >= sizeof(g_metrics_addr) ? -EINVAL : 0;
}

/* Written once the daemon serves its socket (a refused second daemon must not
 * overwrite, then delete, the running one's pid file). */
static void
write_pidfile(void *arg)
{
	FILE *f;

	(void)arg;
	if (g_metrics_port[0]) {
		int rc = nvl_metrics_start(g_metrics_addr, g_metrics_port);

		/* a replayed configuration may have started it already */
		if (rc < 0 && rc != -EALREADY) {
			NVL_ERRLOG("--metrics %s:%s: %s", g_metrics_addr, g_metrics_port,
				   strerror(-rc));
			nvl_app_shutdown(1);
			return;
		}
	}
	if (g_pidfile == NULL)
		return;
	f = fopen(g_pidfile, "w");
	if (f == NULL) {
		NVL_ERRLOG("cannot write pid file %s: %s", g_pidfile, strerror(errno));
		nvl_app_shutdown(1);
		return;
	}
	/* the process to signal: the keeper when there is one */
	fprintf(f, "%d\n", getenv(NVL_KEEPER_ENV) ? (int)getppid() : (int)getpid());
	if (fclose(f) != 0) {
		NVL_ERRLOG("cannot write pid file %s: %s", g_pidfile, strerror(errno));
		unlink(g_pidfile);
		nvl_app_shutdown(1);
		return;
	}
	g_pid_written = true;
}

/* /tmp/nvlend-UID, the parent of a non-root keeper's directory: this user's own */
static int
keeper_tmp_parent(void)
{
	char p[64];

	snprintf(p, sizeof(p), "/tmp/nvlend-%u", (unsigned)getuid());
	return nvl_mkdir_private(p);
}

/*
 * Which process this is: the keeper (starts the worker and keeps its
 * descriptors), the worker under a keeper or under systemd (takes its
 * descriptors back), or a lone process (--no-keeper).
 * \return -1 to go on as the daemon, else an exit status.
 */
static int
nvlendd_role(int argc, char **argv, const char *rpc_socket, bool no_keeper,
	     unsigned max_restarts, unsigned restart_window_ms)
{
	const char *keeper = getenv(NVL_KEEPER_ENV);
	char exe[4096], dir[4096];
	ssize_t n;

	if (keeper && *keeper) {
		/* die with the keeper: a kill -9 of nvlendd ends the whole daemon */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != (pid_t)strtol(keeper, NULL, 10))
			return 1;   /* the keeper died before we could follow it */
		return nvl_fdstore_init() < 0 ? 1 : -1;
	}
	if (getenv("NOTIFY_SOCKET"))
		return nvl_fdstore_init() < 0 ? 1 : -1;   /* systemd keeps our descriptors */
	if (no_keeper)
		return -1;
	/* the keeper: the same binary as the worker, with the same arguments */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		fprintf(stderr, "nvlendd: cannot find my own binary: %s\n", strerror(errno));
		return 1;
	}
	exe[n] = '\0';
	/* its notification socket: in a directory of its own that only this user
	 * may enter (the RPC socket's directory may be anywhere, even read-only) */
	{
		const char *xdg = getenv("XDG_RUNTIME_DIR");
		int rc;

		if (getuid() == 0)
			rc = snprintf(dir, sizeof(dir), "/run/nvlend/keeper.%d", (int)getpid());
		else if (xdg && *xdg)
			rc = snprintf(dir, sizeof(dir), "%s/nvlend-keeper.%d", xdg, (int)getpid());
		else
			rc = snprintf(dir, sizeof(dir), "/tmp/nvlend-%u/keeper.%d",
				      (unsigned)getuid(), (int)getpid());
		if (rc < 0 || (size_t)rc >= sizeof(dir) ||
		    (getuid() != 0 && !xdg && (rc = keeper_tmp_parent()) < 0) ||
		    nvl_mkdir_private(dir) < 0) {
			fprintf(stderr, "nvlendd: cannot make the keeper's directory %s: running "
					"without a keeper (nothing survives a crash)\n", dir);
			return -1;
		}
	}
	(void)rpc_socket;
	{
		char **wargv = calloc((size_t)argc + 1, sizeof(char *));
		struct nvl_keeper_opts ko = { .worker_argv = wargv,
					      .state_dir = dir,
					      .max_restarts = max_restarts,
					      .restart_window_ms = restart_window_ms };
		int rc;

		if (wargv == NULL)
			return 1;
		wargv[0] = exe;
		for (int i = 1; i < argc; i++)
			wargv[i] = argv[i];
		rc = nvl_keeper_run(&ko);
		free(wargv);
		rmdir(dir);
		return rc;
	}
}

/* long options without a short letter */
enum {
	OPT_NODE_NAME = 0x100,
	OPT_STATE_DIR,
	OPT_CLUSTER_KEY,
	OPT_AVAHI_DIR,
	OPT_MAX_RESTARTS,
	OPT_WAIT_FOR_RPC,
};

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", required_argument, NULL, 'c' },
		{ "wait-for-rpc", no_argument, NULL, OPT_WAIT_FOR_RPC },
		{ "rpc-socket", required_argument, NULL, 's' },
		{ "cores", required_argument, NULL, 'm' },
		{ "reactors", required_argument, NULL, 'R' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "log-file", required_argument, NULL, 'F' },
		{ "no-keeper", no_argument, NULL, 'K' },
		{ "max-restarts", required_argument, NULL, OPT_MAX_RESTARTS },
		{ "spin-us", required_argument, NULL, 'U' },
		{ "io-sleep-us", required_argument, NULL, 'W' },
		{ "rpc-max-request", required_argument, NULL, 'Q' },
		{ "rpc-max-clients", required_argument, NULL, 'C' },
		{ "rpc-request-timeout", required_argument, NULL, 'T' },
		{ "rpc-idle-timeout", required_argument, NULL, 'I' },
		{ "pid-file", required_argument, NULL, 'P' },
		{ "metrics", required_argument, NULL, 'M' },
		{ "vhost-socket-dir", required_argument, NULL, 'S' },
		{ "node-name", required_argument, NULL, OPT_NODE_NAME },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "cluster-key", required_argument, NULL, OPT_CLUSTER_KEY },
		{ "avahi-services-dir", required_argument, NULL, OPT_AVAHI_DIR },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct nvl_app_opts o = { 0 };
	struct nvl_lend_opts lo = { 0 };
	char sock[256];
	const char *pidfile = NULL;
	bool no_keeper = false;
	unsigned max_restarts = 0, restart_window_ms = 0;
	uint64_t v;
	int c, rc;

	nvl_log_set_ident("nvlendd");
	nvl_reactor_opts_default(&o.reactors);
	o.rpc_socket = getenv("NVLEND_SOCKET");
	while ((c = getopt_long(argc, argv, "c:s:r:m:L:S:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o.config_file = optarg;
			break;
		case 's':
		case 'r': /* SPDK's letter */
			o.rpc_socket = optarg;
			break;
		case OPT_WAIT_FOR_RPC:
			o.wait_for_rpc = true;
			break;
		case 'm':
			rc = nvl_reactor_parse_cpus(optarg, &o.reactors);
			if (rc < 0) {
				fprintf(stderr, "nvlendd: --cores %s: expected a CPU list like 0-1 "
						"or 0,2 (at most 64 CPUs)\n", optarg);
				return 2;
			}
			break;
		case 'R':
			if (nvl_parse_u64(optarg, 64, &v) < 0 || v == 0) {
				fprintf(stderr, "nvlendd: --reactors must be 1..64\n");
				return 2;
			}
			o.reactors.count = (unsigned)v;
			break;
		case 'L':
			if (nvl_parse_u64(optarg, 3, &v) < 0) {
				fprintf(stderr, "nvlendd: --log-level must be 0, 1, 2 or 3\n");
				return 2;
			}
			o.log_level = (int)v;
			break;
		case 'F':
			rc = nvl_log_set_file(optarg);
			if (rc < 0) {
				fprintf(stderr, "nvlendd: cannot open log file %s: %s\n", optarg,
					strerror(-rc));
				return 1;
			}
			break;
		case 'K':
			no_keeper = true;
			break;
		case 'U':
			if (nvl_parse_u64(optarg, 10000000, &v) < 0) {
				fprintf(stderr, "nvlendd: --spin-us must be 0..10000000\n");
				return 2;
			}
			o.reactors.spin_us = v;
			break;
		case 'W':
			if (nvl_parse_u64(optarg, 10000000, &v) < 0) {
				fprintf(stderr, "nvlendd: --io-sleep-us must be 0..10000000\n");
				return 2;
			}
			o.reactors.io_sleep_us = v;
			break;
		case 'Q':
			if (nvl_parse_size(optarg, &v) < 0 || v < 4096 || v > (1u << 30)) {
				fprintf(stderr, "nvlendd: --rpc-max-request must be 4K..1G\n");
				return 2;
			}
			o.rpc_max_request = v;
			break;
		case 'C':
			if (nvl_parse_u64(optarg, 65536, &v) < 0 || v == 0) {
				fprintf(stderr, "nvlendd: --rpc-max-clients must be 1..65536\n");
				return 2;
			}
			o.rpc_max_clients = (unsigned)v;
			break;
		case 'T':
		case 'I':
			if (nvl_parse_u64(optarg, 86400 * 365, &v) < 0) {
				fprintf(stderr, "nvlendd: --rpc-%s-timeout must be 0..31536000 "
						"seconds\n", c == 'T' ? "request" : "idle");
				return 2;
			}
			v = v ? v * 1000 : NVL_RPC_TIMEOUT_NONE;
			if (c == 'T')
				o.rpc_request_timeout_ms = v;
			else
				o.rpc_idle_timeout_ms = v;
			break;
		case 'P':
			pidfile = optarg;
			break;
		case 'M':
			if (parse_metrics(optarg) < 0) {
				fprintf(stderr, "nvlendd: --metrics takes [ADDR:]PORT, e.g. "
						"127.0.0.1:9455 or [::1]:9455\n");
				return 2;
			}
			break;
		case 'S':
			rc = nvl_vblk_set_socket_dir(optarg);
			if (rc < 0) {
				fprintf(stderr, "nvlendd: --vhost-socket-dir %s: %s\n", optarg,
					strerror(-rc));
				return 2;
			}
			break;
		case OPT_MAX_RESTARTS: {
			char *slash = strchr(optarg, '/');
			uint64_t n, secs = 60;

			if (slash)
				*slash = '\0';
			if (nvl_parse_u64(optarg, 100000, &n) < 0 || n == 0 ||
			    (slash && (nvl_parse_u64(slash + 1, 86400, &secs) < 0 || secs == 0))) {
				fprintf(stderr, "nvlendd: --max-restarts wants N[/SECS], N 1..100000, "
						"SECS 1..86400\n");
				return 2;
			}
			if (slash)
				*slash = '/';   /* the worker parses the same arguments */
			max_restarts = (unsigned)n;
			restart_window_ms = (unsigned)(secs * 1000);
			break;
		}
		case OPT_NODE_NAME:
			lo.node_name = optarg;
			break;
		case OPT_STATE_DIR:
			lo.state_dir = optarg;
			break;
		case OPT_CLUSTER_KEY:
			lo.key_file = optarg;
			break;
		case OPT_AVAHI_DIR:
			lo.avahi_dir = optarg;
			break;
		case 'V':
			printf("nvlendd %s\n", NVL_VERSION_STRING);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'nvlendd --help'.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "nvlendd: unexpected argument '%s'\nTry 'nvlendd --help'.\n",
			argv[optind]);
		return 2;
	}
	rc = nvl_lend_configure(&lo);
	if (rc < 0) {
		fprintf(stderr, "nvlendd: %s\n",
			rc == -EINVAL ? "--node-name must be 1..63 of A-Z a-z 0-9 . _ - (not "
					"starting with . or -), paths shorter than 4096"
				      : strerror(-rc));
		return 2;
	}
	if (o.rpc_socket == NULL || *o.rpc_socket == '\0')
		o.rpc_socket = nvl_default_rpc_socket(sock, sizeof(sock));
	rc = nvlendd_role(argc, argv, o.rpc_socket, no_keeper, max_restarts, restart_window_ms);
	if (rc >= 0)
		return rc;   /* the keeper's life is over, or the worker cannot run */
	g_pidfile = pidfile;
	o.started = write_pidfile;
	rc = nvl_app_run(&o);
	if (g_pid_written)
		unlink(pidfile);
	return rc == 0 ? 0 : 1;
}
