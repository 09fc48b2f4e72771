/* SPDX-License-Identifier: BSD-3-Clause */
/* nvlend upgrade: replace the daemon's worker with another nvlendd binary
 * (nvlend_upgrade), wait for the new worker to serve, print the downtime of
 * each function (nvlend_get_upgrade). */
#include "cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int
ll_cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/* The report of the new worker: one line per function, then median and max. */
static int
upgrade_report(struct nvl_cli *cli, json_t *rep, const char *binary)
{
	json_t *fns = json_object_get(rep, "functions"), *f;
	size_t i, n = json_array_size(fns);
	long long *d;

	if (cli->json) {
		cli_print_json(rep);
		return json_is_true(json_object_get(rep, "rolled_back")) ? CLI_ERR : CLI_OK;
	}
	if (json_is_true(json_object_get(rep, "rolled_back"))) {
		fprintf(stderr,
			"nvlend upgrade: %s did not come up; the keeper started the old binary "
			"again (%s, pid %lld): see the daemon's log\n",
			binary, json_string_value(json_object_get(rep, "version")),
			(long long)json_integer_value(json_object_get(rep, "pid")));
		return CLI_ERR;
	}
	printf("upgraded from %s to %s (worker pid %lld)\n",
	       json_string_value(json_object_get(rep, "from_version")),
	       json_string_value(json_object_get(rep, "version")),
	       (long long)json_integer_value(json_object_get(rep, "pid")));
	d = calloc(n ? n : 1, sizeof(*d));
	if (d == NULL)
		return CLI_ERR;
	printf("%-60s %s\n", "FUNCTION", "DOWNTIME");
	json_array_foreach(fns, i, f) {
		d[i] = json_integer_value(json_object_get(f, "downtime_us"));
		printf("%-60s %.1f ms\n", json_string_value(json_object_get(f, "function")),
		       (double)d[i] / 1000.0);
	}
	if (n) {
		qsort(d, n, sizeof(*d), ll_cmp);
		printf("%zu function(s): median %.1f ms, max %.1f ms\n", n,
		       (double)d[n / 2] / 1000.0, (double)d[n - 1] / 1000.0);
	}
	free(d);
	return CLI_OK;
}

static int
cmd_upgrade(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "binary", required_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *params = json_object(), *res = NULL, *rep = NULL, *later = NULL;
	char path[PATH_MAX], binary[PATH_MAX];
	uint64_t timeout_s = 30, v;
	long long old_pid;
	struct timespec t0, now;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "b:t:", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (cli_abs_path(optarg, path, sizeof(path)) < 0) {
				json_decref(params);
				return cli_usage_error(cli, "--binary: path too long");
			}
			json_object_set_new(params, "binary", json_string(path));
			break;
		case 't':
			if (cli_parse_u64(optarg, "--timeout", 3600, &v) != CLI_OK || v == 0) {
				json_decref(params);
				return cli_usage_error(cli, "--timeout must be 1..3600 seconds");
			}
			timeout_s = v;
			break;
		default:
			json_decref(params);
			return cli_bad_option(cli, argv, opts);
		}
	}
	if (optind != argc) {
		json_decref(params);
		return cli_usage_error(cli, "no arguments expected");
	}
	rc = cli_call(cli, "nvlend_upgrade", params, &res);
	if (rc != CLI_OK)
		return rc;
	old_pid = json_integer_value(json_object_get(res, "pid"));
	snprintf(binary, sizeof(binary), "%s", json_string_value(json_object_get(res, "binary")));
	if (!cli->json)
		printf("upgrading %s (worker pid %lld) to %s (nvlendd %s)\n",
		       json_string_value(json_object_get(res, "from_version")), old_pid, binary,
		       json_string_value(json_object_get(res, "to_version")));
	json_decref(res);
	fflush(stdout);
	/* the new worker answers with another pid once it serves */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		rep = NULL;
		if (cli_call_quiet(cli, "nvlend_get_upgrade", NULL, &rep) == CLI_OK &&
		    json_integer_value(json_object_get(rep, "pid")) != old_pid &&
		    json_object_get(rep, "pid")) {
			if (json_object_get(rep, "functions"))
				break;
			/* another worker serves, started as after a crash: the worker
			 * that took over (or the old one, before it handed over) was
			 * killed, and the keeper restarted it with the kept state */
			fprintf(stderr,
				"nvlend upgrade: a worker ended during the upgrade; the keeper "
				"restarted the daemon as after a crash (%s, pid %lld) with its "
				"kept state: see the daemon's log\n",
				json_string_value(json_object_get(rep, "version")),
				(long long)json_integer_value(json_object_get(rep, "pid")));
			json_decref(rep);
			return CLI_ERR;
		}
		json_decref(rep);
		rep = NULL;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((uint64_t)(now.tv_sec - t0.tv_sec) >= timeout_s) {
			fprintf(stderr,
				"nvlend upgrade: no new worker serves after %llu s; see the daemon's "
				"log\n",
				(unsigned long long)timeout_s);
			return CLI_ERR;
		}
		usleep(20000);
	}
	/* functions come back one by one: give the restore a moment to finish */
	usleep(300000);
	if (cli_call_quiet(cli, "nvlend_get_upgrade", NULL, &later) == CLI_OK) {
		if (json_integer_value(json_object_get(later, "pid")) ==
			    json_integer_value(json_object_get(rep, "pid")) &&
		    json_object_get(later, "functions")) {
			json_decref(rep);
			rep = later;
		} else {
			/* the new worker served, then ended: the keeper restarted the new
			 * binary as after a crash; the report is the one it gave */
			fprintf(stderr,
				"nvlend upgrade: note: worker %lld ended after it took over; the "
				"keeper restarted it as after a crash (%s, pid %lld)\n",
				(long long)json_integer_value(json_object_get(rep, "pid")),
				json_string_value(json_object_get(later, "version")),
				(long long)json_integer_value(json_object_get(later, "pid")));
			json_decref(later);
		}
	}
	rc = upgrade_report(cli, rep, binary);
	json_decref(rep);
	return rc;
}
NVL_CLI_COMMAND(g_cmd_upgrade, "upgrade", "replace the daemon's worker with a new nvlendd binary",
"NAME\n"
"    nvlend upgrade - move the daemon to another nvlendd binary without its\n"
"    shm, NVMe/TCP or NBD clients reconnecting; report each one's downtime\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] upgrade [--binary PATH] [--timeout SECS]\n"
"\n"
"DESCRIPTION\n"
"    The daemon checks that 'PATH --version' answers as an nvlendd and has\n"
"    the keeper (the nvlendd process that holds the worker's descriptors)\n"
"    start PATH ahead: it loads and waits while the old worker serves. Then\n"
"    the old worker stops: its shm queues stop fetching and finish what they\n"
"    took, its reactors park, and the keeper hands the new one every kept\n"
"    descriptor and state at once (without waiting for the old process to\n"
"    end, unless I/O was still in flight), which takes them back as after a\n"
"    crash. shm hosts keep their controllers and queues (no\n"
"    reconnect; commands in flight run again), RAM bdevs keep their contents,\n"
"    listening sockets keep their backlog, vhost-user front-ends reconnect\n"
"    and resubmit from their inflight regions. NVMe/TCP connections are\n"
"    handed over: each stops at a PDU boundary, its commands in flight\n"
"    complete, and the new worker resumes it with the same controller ID\n"
"    (no reconnect). NBD connections are handed over the same way, between\n"
"    two requests.\n"
"\n"
"    Waits until the new worker serves, then prints per function (the daemon\n"
"    itself, each shm and NVMe/TCP controller, each NBD connection, each\n"
"    vhost-user queue) the time from the old worker's stop (or from when a\n"
"    connection stopped reading) to the new one serving it, with the median\n"
"    and max.\n"
"    If PATH cannot start or its worker ends before serving, the keeper\n"
"    starts the old binary again and this command exits 1. If a worker is\n"
"    killed during the upgrade, the keeper restarts it as after a crash (shm\n"
"    hosts still do not reconnect) and this command says so and exits 1.\n"
"    Needs the keeper: not with nvlendd --no-keeper, not under systemd.\n"
"    RPC: nvlend_upgrade, nvlend_get_upgrade.\n"
"\n"
"OPTIONS\n"
"    --binary PATH     the nvlendd to run (default: the worker's own binary as\n"
"                      it is on disk now, e.g. after a package upgrade)\n"
"    --timeout SECS    how long to wait for the new worker (default 30)\n"
"\n"
"EXAMPLES\n"
"    nvlend upgrade --binary /usr/local/sbin/nvlendd\n"
"    apt install ./nvlend_0.2.0_amd64.deb && nvlend upgrade\n",
		cmd_upgrade)
