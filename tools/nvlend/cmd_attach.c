/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvlend attach / attachments / detach: give this host a block device for a
 * namespace (DESIGN.md section 7), list and remove such devices.
 *
 * `nvlend attach` picks a mechanism (kernel NVMe/TCP initiator > ublk > NBD
 * > FUSE file + loop), then, for every mechanism but the kernel initiator,
 * runs the attach process: it holds a reconnecting libnvlend session
 * (src/host/session.h) and serves the device until `nvlend detach` sends it
 * SIGTERM (SIGUSR1 when forced). Without --foreground the CLI forks the
 * attach process, which reports the device path (or dies with the error on
 * the terminal) before it detaches from the terminal and logs to
 * STATE/NAME.log.
 *
 * Threads: the attach process's main thread waits for signals and refreshes
 * the record every 500 ms; every other thread (the mechanism's) runs with
 * all signals blocked.
 */
#include "../exitcode.h"
#include "attach.h"
#include "cli.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers shared with the mechanisms ---------------------------------------------- */

void
attach_block_signals(void)
{
	sigset_t all;

	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGABRT);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
}

bool
attach_wait_path(const char *path, bool want_exist, int ms)
{
	for (int i = 0; ms < 0 || i <= ms / 20; i++) {
		if ((access(path, F_OK) == 0) == want_exist)
			return true;
		usleep(20000);
	}
	return false;
}

int
attach_read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return (int)n;
}

int
attach_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -errno;
	rc = nvl_write_all(fd, text, strlen(text));
	close(fd);
	return rc;
}

void
attach_log(const char *fmt, ...)
{
	char ts[32], line[512];
	struct tm tm;
	time_t now = time(NULL);
	va_list ap;

	localtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s [%d] %s\n", ts, (int)getpid(), line);
}

static const struct attach_mech *const g_mechs[] = {
	&g_attach_kernel,
	&g_attach_ublk,
	&g_attach_nbd,
	&g_attach_fuse,
};

const struct attach_mech *
attach_mech_by_name(const char *name)
{
	for (size_t i = 0; i < NVL_ARRAY_SIZE(g_mechs); i++)
		if (strcmp(g_mechs[i]->name, name) == 0)
			return g_mechs[i];
	return NULL;
}

/* ---- the attach process --------------------------------------------------------------- */

static void *
force_watch_thread(void *arg)
{
	struct attach_ctx *a = arg;
	sigset_t set;
	int sig;

	/* while the device is being torn down, a second SIGTERM or a SIGUSR1
	 * (`nvlend detach --force`) stops waiting for a target that is away */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		__atomic_store_n(&a->force, 1, __ATOMIC_RELAXED);
		host_session_shutdown(a->s);
		attach_log("%s: forced detach (signal %d)", a->rec.name, sig);
	}
	return NULL;
}

static void
update_state(struct attach_ctx *a, const char *state)
{
	uint64_t rec = host_session_reconnects(a->s);

	if (strcmp(a->rec.state, state) == 0 && a->rec.reconnects == rec)
		return;
	if (strcmp(a->rec.state, state) != 0)
		attach_log("%s: %s -> %s", a->rec.name, a->rec.state, state);
	nvl_strlcpy(a->rec.state, state, sizeof(a->rec.state));
	a->rec.reconnects = rec;
	attach_record_write(&a->rec);
}

/* The new device: its path, or (--json) the whole record. */
static void
attach_print_record(const struct attach_record *r, bool json)
{
	if (json) {
		char *j = attach_record_json(r);

		printf("%s\n", j ? j : "{}");
		free(j);
	} else {
		printf("%s\n", r->device);
	}
}

/*
 * Run an attachment to its end. notify_fd >= 0: tell the waiting CLI "OK
 * DEVICE" there and move stdio to the log once the device exists.
 */
static int
attach_process(const struct attach_mech *m, struct attach_ctx *a, int notify_fd,
	       const char *logpath, bool json)
{
	struct host_session_opts so = { 0 };
	char err[256];
	sigset_t set;
	pthread_t tid;
	int rc, sig, status = CLI_ERR;

	attach_block_signals();
	so.hostnqn = a->o.hostnqn;
	so.nsid = a->o.nsid;
	so.readonly = a->o.readonly;
	so.reconnect_timeout_ms = a->o.reconnect_timeout_s * 1000;
	so.spin_us = a->o.spin_us;
	/* room for the data of every queue's commands (libnvlend copies buffers
	 * outside the window into it): queues x qd x 256 KiB, 16..256 MiB; when
	 * full, requests wait for completions */
	so.window_bytes = NVL_MIN(NVL_MAX((uint64_t)a->o.queues * a->o.qd * (256 << 10),
					  16ULL << 20),
				  256ULL << 20);
	rc = host_session_create(a->o.uri, &so, &a->s);
	if (rc < 0) {
		fprintf(stderr, "nvlend attach: cannot connect to %s: %s\n", a->o.uri,
			nvl_strerror(rc));
		status = nvl_exit_for(rc);
		goto err_record;
	}
	a->rec.size = host_session_size(a->s);
	a->rec.block_size = host_session_ns(a->s)->block_size;
	a->rec.readonly = host_session_readonly(a->s);
	a->rec.pid = getpid();
	rc = m->start(a);
	if (rc < 0)
		goto err_session;
	nvl_strlcpy(a->rec.state, "attached", sizeof(a->rec.state));
	attach_record_write(&a->rec);
	attach_link_add(&a->rec, host_session_ns(a->s)->nsid);
	attach_print_record(&a->rec, json);
	fflush(stdout);
	if (notify_fd >= 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (nul >= 0) {
			dup2(nul, 0);
			close(nul);
		}
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		(void)!write(notify_fd, "OK\n", 3);
		close(notify_fd);
	}
	attach_log("%s: %s on %s via %s", a->rec.name, a->rec.device, a->rec.uri, a->rec.mechanism);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		struct timespec tmo = { .tv_sec = 0, .tv_nsec = 500000000L };
		enum host_session_state st;

		sig = sigtimedwait(&set, NULL, &tmo);
		if (sig == SIGUSR1) {
			__atomic_store_n(&a->force, 1, __ATOMIC_RELAXED);
			host_session_shutdown(a->s);
			break;
		}
		if (sig > 0)
			break;
		st = host_session_check(a->s);
		update_state(a, host_session_state_str(st));
		if (m->alive && !m->alive(a)) {
			attach_log("%s: the device went away", a->rec.name);
			break;
		}
	}
	update_state(a, "detaching");
	if (pthread_create(&tid, NULL, force_watch_thread, a) == 0)
		pthread_detach(tid);
	attach_link_remove(&a->rec);
	m->stop(a);
	host_session_last_error(a->s, err, sizeof(err));
	attach_log("%s: detached%s%s", a->rec.name, err[0] ? "; last error: " : "", err);
	host_session_destroy(a->s);
	attach_record_remove(a->rec.name);
	if (notify_fd >= 0 && !__atomic_load_n(&a->force, __ATOMIC_RELAXED))
		unlink(logpath); /* a clean detach leaves nothing behind */
	return CLI_OK;
err_session:
	host_session_destroy(a->s);
err_record:
	attach_record_remove(a->rec.name);
	return status;
}

/* ---- nvlend attach --------------------------------------------------------------------- */

static int
pick_name(char *name, size_t len)
{
	struct attach_record r;

	for (int i = 0; i < 1024; i++) {
		snprintf(name, len, "nvl%d", i);
		if (attach_record_read(name, &r) == -ENOENT)
			return 0;
	}
	return -ENOSPC;
}

/* A record whose attach process is gone: undo what it left behind. */
static void
cleanup_dead(const struct attach_record *r)
{
	const struct attach_mech *m = attach_mech_by_name(r->mechanism);

	if (m && m->detach_record)
		m->detach_record(r);
	attach_link_remove(r);
	attach_record_remove(r->name);
}

static bool
record_live(const struct attach_record *r, char *state, size_t len)
{
	const struct attach_mech *m = attach_mech_by_name(r->mechanism);

	if (m && m->in_kernel) {
		const char *st = m->record_state ? m->record_state(r, state, len) : "attached";

		if (st != state)
			nvl_strlcpy(state, st, len);
		return strcmp(state, "dead") != 0;
	}
	nvl_strlcpy(state, r->state, len);
	if (!attach_pid_alive(r->pid)) {
		nvl_strlcpy(state, "dead", len);
		return false;
	}
	return true;
}

/* The options of `nvlend attach` into o. \return CLI_OK or CLI_USAGE (said why). */
static int
attach_parse_args(struct nvl_cli *cli, int argc, char **argv, struct attach_opts *o)
{
	static const struct option lo[] = {
		{ "via", required_argument, NULL, 'v' },
		{ "name", required_argument, NULL, 'N' },
		{ "readonly", no_argument, NULL, 'r' },
		{ "queues", required_argument, NULL, 'q' },
		{ "qd", required_argument, NULL, 'd' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "reconnect-timeout", required_argument, NULL, 'T' },
		{ "hostnqn", required_argument, NULL, 'H' },
		{ "nsid", required_argument, NULL, 'n' },
		{ "spin-us", required_argument, NULL, 'S' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "all", no_argument, NULL, 'A' },
		{ "dhchap-key", required_argument, NULL, 'k' },
		{ "dhchap-ctrlr-key", required_argument, NULL, 'K' },
		{ NULL, 0, NULL, 0 },
	};
	struct nvl_uri u;
	uint64_t v;
	int c, rc;

	o->via = "auto";
	o->queues = 2;
	o->qd = 32;
	o->reconnect_timeout_s = 60;
	optind = 0; /* 0: glibc re-initializes (permuting: options may follow the operand) */
	while ((c = getopt_long(argc, argv, "v:N:rq:d:fT:H:n:S:L:A", lo, NULL)) != -1) {
		switch (c) {
		case 'v':
			o->via = optarg;
			break;
		case 'N':
			if (nvl_strlcpy(o->name, optarg, sizeof(o->name)) < 0)
				return cli_usage_error(cli, "--name is too long");
			break;
		case 'r':
			o->readonly = true;
			break;
		case 'q':
			if (cli_parse_u64(optarg, "--queues", ATTACH_MAX_QUEUES, &v) || v == 0)
				return cli_usage_error(cli, "--queues must be 1..%d",
						       ATTACH_MAX_QUEUES);
			o->queues = (uint32_t)v;
			break;
		case 'd':
			if (cli_parse_u64(optarg, "--qd", ATTACH_MAX_QD, &v) || v == 0)
				return cli_usage_error(cli, "--qd must be 1..%d", ATTACH_MAX_QD);
			o->qd = (uint32_t)v;
			break;
		case 'f':
			o->foreground = true;
			break;
		case 'T':
			if (cli_parse_u64(optarg, "--reconnect-timeout", 86400, &v) || v == 0)
				return cli_usage_error(cli,
						       "--reconnect-timeout must be 1..86400 s");
			o->reconnect_timeout_s = (uint32_t)v;
			break;
		case 'H':
			o->hostnqn = optarg;
			break;
		case 'n':
			if (cli_parse_u64(optarg, "--nsid", 0xfffffffe, &v) || v == 0)
				return cli_usage_error(cli, "--nsid must be 1..4294967294");
			o->nsid = (uint32_t)v;
			break;
		case 'S':
			if (cli_parse_u64(optarg, "--spin-us", 10000000, &v))
				return cli_usage_error(cli, "--spin-us must be 0..10000000");
			o->spin_us = (uint32_t)v;
			break;
		case 'L':
			if (cli_parse_u64(optarg, "--log-level", 3, &v))
				return cli_usage_error(cli, "--log-level must be 0..3");
			nvl_log_set_level((int)v);
			break;
		case 'A':
			o->all = true;
			break;
		case 'k': /* libnvlend (and kn_start) read the keys from the environment */
			setenv("NVLEND_DHCHAP_KEY", optarg, 1);
			break;
		case 'K':
			setenv("NVLEND_DHCHAP_CTRLR_KEY", optarg, 1);
			break;
		default:
			return cli_bad_option(cli, argv, lo);
		}
	}
	if (optind != argc - 1)
		return cli_usage_error(cli, "expected one URI");
	o->uri = argv[optind];
	if (o->all)
		return CLI_OK; /* a target address, maybe without a subsystem: attach_all() */
	rc = nvl_uri_parse(o->uri, &u);
	if (rc == 0 && u.kind != NVL_URI_NVME_SHM && u.kind != NVL_URI_NVME_TCP &&
	    u.kind != NVL_URI_NVME_RDMA)
		rc = -EPROTONOSUPPORT;
	if (rc < 0)
		return cli_usage_error(cli, "'%s': %s", o->uri, nvl_strerror(rc));
	return CLI_OK;
}

/* --via: the one asked for, or the best this host offers. \return CLI_OK, CLI_ERR, CLI_USAGE. */
static int
attach_pick_mech(struct nvl_cli *cli, const struct attach_opts *o, const struct attach_mech **out)
{
	const struct attach_mech *m = NULL;
	char why[ATTACH_NAME_MAX * 8] = "", skipped[ATTACH_NAME_MAX * 8] = "";
	size_t off = 0, soff = 0;

	if (strcmp(o->via, "auto") != 0) {
		m = attach_mech_by_name(o->via);
		if (m == NULL)
			return cli_usage_error(cli,
					       "--via must be auto, kernel, ublk, nbd or fuse");
		if (!m->available(o, why, sizeof(why))) {
			fprintf(stderr, "nvlend attach: --via %s is not usable here: %s\n", m->name,
				why);
			return CLI_ERR;
		}
		*out = m;
		return CLI_OK;
	}
	for (size_t i = 0; i < NVL_ARRAY_SIZE(g_mechs) && m == NULL; i++) {
		char w[128] = "";

		if (g_mechs[i]->available(o, w, sizeof(w))) {
			m = g_mechs[i];
		} else if (off < sizeof(why)) {
			off += (size_t)snprintf(why + off, sizeof(why) - off, "\n    %s: %s",
						g_mechs[i]->name, w);
			if (soff < sizeof(skipped))
				soff += (size_t)snprintf(skipped + soff, sizeof(skipped) - soff,
							 "%snot %s: %s", soff ? "; " : "",
							 g_mechs[i]->name, w);
		}
	}
	if (m == NULL) {
		fprintf(stderr, "nvlend attach: no mechanism can give this host a block "
				"device:%s\n", why);
		return CLI_ERR;
	}
	/* say what was chosen and why the better ones were not (stderr: stdout
	 * is the device path alone, for scripts) */
	if (skipped[0])
		fprintf(stderr, "nvlend attach: via %s (%s)\n", m->name, skipped);
	else
		fprintf(stderr, "nvlend attach: via %s (the first choice)\n", m->name);
	*out = m;
	return CLI_OK;
}

/*
 * Name the attachment (--name or the first free nvlN), clear a dead record
 * of that name, and claim it with a fresh record in a->rec.
 * \return CLI_OK or CLI_ERR (said why).
 */
static int
attach_claim(struct attach_ctx *a, const struct attach_mech *m)
{
	struct attach_record old;
	int rc;

	if (a->o.name[0] == '\0' && pick_name(a->o.name, sizeof(a->o.name)) < 0) {
		fprintf(stderr, "nvlend attach: no free attachment name\n");
		return CLI_ERR;
	}
	if (attach_record_read(a->o.name, &old) == 0) {
		char st[32];

		if (record_live(&old, st, sizeof(st))) {
			fprintf(stderr, "nvlend attach: '%s' is already attached (%s, pid %d)\n",
				old.name, old.device[0] ? old.device : "starting", (int)old.pid);
			return CLI_ERR;
		}
		cleanup_dead(&old);
	}
	nvl_strlcpy(a->rec.name, a->o.name, sizeof(a->rec.name));
	nvl_strlcpy(a->rec.uri, a->o.uri, sizeof(a->rec.uri));
	nvl_strlcpy(a->rec.mechanism, m->name, sizeof(a->rec.mechanism));
	nvl_strlcpy(a->rec.state, "attaching", sizeof(a->rec.state));
	nvl_strlcpy(a->rec.hostnqn, a->o.hostnqn ? a->o.hostnqn : "", sizeof(a->rec.hostnqn));
	a->rec.pid = m->in_kernel ? 0 : getpid();
	a->rec.readonly = a->o.readonly;
	a->rec.queues = a->o.queues;
	a->rec.qd = a->o.qd;
	a->rec.reconnect_timeout_s = a->o.reconnect_timeout_s;
	a->rec.started = (int64_t)time(NULL);
	rc = attach_record_claim(&a->rec);
	if (rc < 0) {
		fprintf(stderr, "nvlend attach: cannot claim the name '%s': %s\n", a->o.name,
			rc == -EEXIST ? "being attached right now" : strerror(-rc));
		return CLI_ERR;
	}
	return CLI_OK;
}

/* A kernel mechanism: the kernel serves the device, no attach process. */
static int
attach_in_kernel(const struct attach_mech *m, struct attach_ctx *a, bool json)
{
	struct nvl_uri u;

	if (m->start(a) < 0) {
		attach_record_remove(a->rec.name);
		return CLI_ERR;
	}
	nvl_strlcpy(a->rec.state, "attached", sizeof(a->rec.state));
	attach_record_write(&a->rec);
	if (nvl_uri_parse(a->o.uri, &u) == 0)
		attach_link_add(&a->rec, a->o.nsid ? a->o.nsid : u.nsid ? u.nsid : 1);
	attach_print_record(&a->rec, json);
	return CLI_OK;
}

/*
 * Fork the attach process and wait until it says the device is there ("OK"
 * on the pipe) or exits (it printed why on our stderr and removed its
 * record). \return CLI_OK or CLI_ERR.
 */
static int
attach_spawn(const struct attach_mech *m, struct attach_ctx *a, const char *logpath, bool json)
{
	char buf[8] = "";
	int pfd[2], st = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		attach_record_remove(a->rec.name);
		return CLI_ERR;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "nvlend attach: fork: %s\n", strerror(errno));
		attach_record_remove(a->rec.name);
		return CLI_ERR;
	}
	if (pid == 0) {
		close(pfd[0]);
		setsid();
		if (chdir("/") < 0) {
			/* keep going: only relative paths would care */
		}
		_exit(attach_process(m, a, pfd[1], logpath, json));
	}
	close(pfd[1]);
	do {
		n = read(pfd[0], buf, sizeof(buf) - 1);
	} while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n >= 2 && strncmp(buf, "OK", 2) == 0)
		return CLI_OK;
	/* it failed and exits: its status names the failure (tools/exitcode.h) */
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) != 0 ? WEXITSTATUS(st) : CLI_ERR;
}

static int
cmd_attach(struct nvl_cli *cli, int argc, char **argv)
{
	struct attach_ctx a = { 0 };
	const struct attach_mech *m = NULL;
	char dir[PATH_MAX - 64], logpath[PATH_MAX];
	int rc;

	rc = attach_parse_args(cli, argc, argv, &a.o);
	if (rc != CLI_OK)
		return rc;
	if (a.o.all)
		return attach_all(&a.o, argc, argv, cli->json);
	rc = attach_pick_mech(cli, &a.o, &m);
	if (rc != CLI_OK)
		return rc;
	rc = attach_state_dir(dir, sizeof(dir));
	if (rc < 0) {
		attach_state_dir_complain("nvlend attach", dir, rc);
		return CLI_ERR;
	}
	rc = attach_claim(&a, m);
	if (rc != CLI_OK)
		return rc;
	if (m->in_kernel)
		return attach_in_kernel(m, &a, cli->json);
	snprintf(logpath, sizeof(logpath), "%s/%s.log", dir, a.o.name);
	if (a.o.foreground)
		return attach_process(m, &a, -1, logpath, cli->json);
	return attach_spawn(m, &a, logpath, cli->json);
}
NVL_CLI_COMMAND(g_cmd_attach, "attach", "give this host a block device for a namespace",
"NAME\n"
"    nvlend attach - give this host a block device for a namespace\n"
"\n"
"SYNOPSIS\n"
"    nvlend attach URI [--via auto|kernel|ublk|nbd|fuse] [--name NAME] [--readonly]\n"
"                  [--queues N] [--qd N] [--reconnect-timeout SECS] [--hostnqn NQN]\n"
"                  [--nsid N] [--spin-us N] [--log-level 0..3] [--foreground]\n"
"    nvlend attach --all nvme+tcp://HOST:PORT[/NQN] [options]\n"
"\n"
"DESCRIPTION\n"
"    Makes the namespace URI names (nvme+shm:///SOCKET?nqn=NQN[&nsid=N],\n"
"    nvme+tcp://HOST:PORT/NQN[/NSID], nvme+rdma://HOST:PORT/NQN[/NSID], or a\n"
"    function: nvme+fn:///SOCKET[?nsid=N]) a block device of this host, which can be\n"
"    partitioned, formatted and mounted, and prints its path (--json: the whole\n"
"    record). Does not need the daemon's RPC socket: this host is an NVMe host.\n"
"\n"
"    Mechanisms, best first (--via auto takes the first this kernel offers):\n"
"      kernel  the kernel's NVMe/TCP initiator (tcp URIs; /dev/nvme-fabrics,\n"
"              after modprobe nvme-tcp): /dev/nvmeXnY, no attach process\n"
"      ublk    a ublk device (/dev/ublk-control): /dev/ublkbN, one io_uring\n"
"              queue per --queues, each with its own NVMe queue pair\n"
"      nbd     the kernel NBD client (/dev/nbd*) on socket pairs: /dev/nbdN\n"
"      fuse    a FUSE file backed by libnvlend plus a loop device on it:\n"
"              /dev/loopN (works wherever FUSE and loop devices do)\n"
"    Every mechanism but the kernel initiator runs in an attach process that\n"
"    stays in the foreground with --foreground, else runs in the background,\n"
"    logging to STATE/NAME.log. It survives a target restart: I/O pauses while\n"
"    it reconnects (100 ms .. 1 s backoff) and resumes, resubmitting what was in\n"
"    flight; after --reconnect-timeout the waiting I/O fails with EIO, and\n"
"    new I/O fails at once until the target is back.\n"
"\n"
"OPTIONS\n"
"    --via MECH              auto (default), kernel, ublk, nbd or fuse\n"
"    --name NAME             name of the attachment (default nvl0, nvl1, ...)\n"
"    --readonly              a read-only device (writes fail locally)\n"
"    --queues N              I/O queue pairs, each served by its own thread\n"
"                            (default 2; fuse: worker threads)\n"
"    --qd N                  commands in flight per queue (default 32)\n"
"    --reconnect-timeout S   how long I/O waits for a lost target (default 60)\n"
"    --hostnqn NQN           this host's NQN (default: from /etc/machine-id);\n"
"                            give each attachment meant as a separate host its own\n"
"    --nsid N                namespace (default: the URI's, else the first active)\n"
"    --dhchap-key KEY        authenticate with DH-HMAC-CHAP when the subsystem asks:\n"
"                            a file holding a DHHC-1 secret (mode 0600) or the\n"
"                            secret itself (default $NVLEND_DHCHAP_KEY); kept for\n"
"                            every reconnect\n"
"    --dhchap-ctrlr-key KEY  the controller must prove itself with this key too\n"
"                            (default $NVLEND_DHCHAP_CTRLR_KEY)\n"
"    --foreground            stay in the foreground; Ctrl-C detaches\n"
"    --spin-us N             queue pairs poll this long for a completion before\n"
"                            sleeping (dis_nvme's polling; default 50)\n"
"    --log-level N           0 info, 1 debug, 2 verbose (admin commands, queue\n"
"                            creation, connects), 3 trace (every command, every\n"
"                            request); in STATE/NAME.log once detached. The\n"
"                            environment's NVLEND_LOG_LEVEL does the same for any\n"
"                            libnvlend program\n"
"    --all                   attach every namespace the target offers this host:\n"
"                            with HOST:PORT alone, every NVMe subsystem its\n"
"                            discovery log lists (those this host may not use are\n"
"                            skipped), with /NQN every namespace of that\n"
"                            subsystem; one attachment each, named nvlN\n"
"\n"
"STABLE NAMES\n"
"    Each attached device gets a link /dev/disk/by-id/nvlend-SUBNQN-nNSID (or in\n"
"    $NVLEND_BYID_DIR), removed on detach: the same name whichever /dev/loopN,\n"
"    /dev/nbdN or /dev/ublkbN it got.\n"
"\n"
"STATE\n"
"    One JSON record per attachment in $NVLEND_ATTACH_DIR, else /run/nvlend/attach\n"
"    as root, else $XDG_RUNTIME_DIR/nvlend/attach.\n"
"\n"
"EXAMPLES\n"
"    dev=$(nvlend attach 'nvme+shm:///run/nvlend/shm.sock?nqn=nqn.2026-01.io.nvlend:ns0')\n"
"    mkfs.ext4 $dev && mount $dev /mnt\n"
"    umount /mnt && nvlend detach $dev\n"
"    nvlend attach --readonly --hostnqn nqn.2026-01.io.example:hostb URI\n",
		cmd_attach)

/* ---- nvlend attachments ------------------------------------------------------------------ */

static int
cmd_attachments(struct nvl_cli *cli, int argc, char **argv)
{
	static const char *const hdr[] = { "NAME", "DEVICE", "MECHANISM", "PID", "STATE", "SIZE",
					   "URI" };
	struct attach_record *v;
	struct cli_table *t;
	json_t *arr = NULL;
	int n;

	if (argc > 1)
		return cli_usage_error(cli, "no operands expected");
	n = attach_record_list(&v);
	if (n < 0) {
		char dir[PATH_MAX - 64] = "";

		attach_state_dir(dir, sizeof(dir));
		attach_state_dir_complain("nvlend attachments", dir, n);
		return CLI_ERR;
	}
	t = cli_table_new(7, hdr);
	if (cli->json)
		arr = json_array();
	for (int i = 0; i < n; i++) {
		char st[32], pid[16], size[32];
		bool live = record_live(&v[i], st, sizeof(st));

		nvl_strlcpy(v[i].state, st, sizeof(v[i].state));
		if (!live)
			cleanup_dead(&v[i]); /* shown once as dead, then gone */
		snprintf(pid, sizeof(pid), "%d", (int)v[i].pid);
		cli_fmt_size(v[i].size, size, sizeof(size));
		cli_table_add(t, v[i].name, v[i].device[0] ? v[i].device : "-", v[i].mechanism,
			      v[i].pid ? pid : "-", st, size, v[i].uri);
		if (arr) {
			char *j = attach_record_json(&v[i]);

			json_array_append_new(arr, j ? json_loads(j, 0, NULL) : json_object());
			free(j);
		}
	}
	if (arr) {
		cli_print_json(arr);
		json_decref(arr);
	} else {
		cli_table_print(t, stdout);   /* the header, also when nothing is attached */
		if (n == 0)
			printf("none\n");
	}
	cli_table_free(t);
	free(v);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_attachments, "attachments", "list the block devices attached on this host",
"NAME\n"
"    nvlend attachments - list what `nvlend attach` attached on this host\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] attachments\n"
"\n"
"DESCRIPTION\n"
"    One line per attachment: name, device, mechanism, attach process id, state\n"
"    (attaching, attached, reconnecting, failed, detaching; dead when the attach\n"
"    process is gone: it is then cleaned up - loop device and FUSE mount, NBD or\n"
"    ublk device released - and its record removed), size and URI. The header is\n"
"    printed in any case, and \"none\" under it when nothing is attached.\n",
		cmd_attachments)

/* ---- nvlend detach ------------------------------------------------------------------------- */

static int
cmd_detach(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	char mnts[8][PATH_MAX], st[32];
	struct attach_record r;
	const struct attach_mech *m;
	bool force = false;
	uint64_t tmo = 120, v;
	int c, n, rc;

	optind = 0; /* 0: glibc re-initializes (permuting: options may follow the operand) */
	while ((c = getopt_long(argc, argv, "ft:", lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = true;
			break;
		case 't':
			if (cli_parse_u64(optarg, "--timeout", 86400, &v) || v == 0)
				return cli_usage_error(cli, "--timeout must be 1..86400 s");
			tmo = v;
			break;
		default:
			return cli_bad_option(cli, argv, lo);
		}
	}
	if (optind != argc - 1)
		return cli_usage_error(cli, "expected one DEVICE or NAME");
	rc = attach_record_find(argv[optind], &r);
	if (rc < 0) {
		fprintf(stderr, "nvlend detach: '%s' is not attached (see 'nvlend attachments')\n",
			argv[optind]);
		return CLI_ERR;
	}
	m = attach_mech_by_name(r.mechanism);
	n = r.device[0] ? attach_device_mounts(r.device, mnts, (int)NVL_ARRAY_SIZE(mnts)) : 0;
	if (n > 0 && !force) {
		fprintf(stderr, "nvlend detach: %s is mounted on %s%s; unmount it first (or use "
				"--force)\n",
			r.device, mnts[0], n > 1 ? " and elsewhere" : "");
		return CLI_ERR;
	}
	for (int i = 0; i < n && i < (int)NVL_ARRAY_SIZE(mnts); i++) {
		if (umount2(mnts[i], MNT_DETACH) < 0)
			fprintf(stderr, "nvlend detach: lazy unmount of %s: %s\n", mnts[i],
				strerror(errno));
		else
			fprintf(stderr, "nvlend detach: lazily unmounted %s\n", mnts[i]);
	}
	if (m && m->in_kernel) {
		rc = m->detach_record(&r);
		if (rc < 0 && !force) {
			fprintf(stderr, "nvlend detach: %s: %s\n", r.device, strerror(-rc));
			return CLI_ERR;
		}
		attach_link_remove(&r);
		attach_record_remove(r.name);
		printf("detached %s (%s)\n", r.name, r.device);
		return CLI_OK;
	}
	if (!record_live(&r, st, sizeof(st))) {
		cleanup_dead(&r);
		printf("detached %s (%s; its attach process had died)\n", r.name, r.device);
		return CLI_OK;
	}
	if (kill(r.pid, force ? SIGUSR1 : SIGTERM) < 0) {
		fprintf(stderr, "nvlend detach: cannot signal pid %d: %s\n", (int)r.pid,
			strerror(errno));
		return CLI_ERR;
	}
	for (uint64_t i = 0; i < tmo * 50; i++) {
		if (!attach_pid_alive(r.pid)) {
			printf("detached %s (%s)\n", r.name, r.device);
			return CLI_OK;
		}
		usleep(20000);
	}
	fprintf(stderr, "nvlend detach: the attach process (pid %d) has not finished after %" PRIu64
			" s; it is still detaching (a lost target?): 'nvlend detach --force %s'\n",
		(int)r.pid, tmo, r.name);
	return CLI_ERR;
}
NVL_CLI_COMMAND(g_cmd_detach, "detach", "detach a block device made by 'nvlend attach'",
"NAME\n"
"    nvlend detach - detach a block device that `nvlend attach` made\n"
"\n"
"SYNOPSIS\n"
"    nvlend detach DEVICE|NAME [--force] [--timeout SECS]\n"
"\n"
"DESCRIPTION\n"
"    Refuses while the device or one of its partitions is mounted (naming the\n"
"    mount point). Otherwise tells the attach process to detach and waits for\n"
"    it: the loop/NBD/ublk device is released, written data is flushed to the\n"
"    namespace, the FUSE file is unmounted and the controller disconnected.\n"
"\n"
"OPTIONS\n"
"    --force          unmount lazily first, and do not wait for a target that is\n"
"                     away: I/O still waiting fails\n"
"    --timeout SECS   how long to wait for the attach process (default 120)\n",
		cmd_detach)
