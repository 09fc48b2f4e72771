/* SPDX-License-Identifier: BSD-3-Clause */
/* nvlend nbd ...: the daemon's NBD server (start/stop/status) and its exports
 * (add/remove/list). Thin wrappers over the nbd_* RPCs (docs/nbd.md). */
#include "cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The daemon resolves paths from its own cwd: send an absolute one. */
/* After start/stop: one line naming where it listens; --json: nbd_get_server. */
static int
server_done(struct nvl_cli *cli, const char *verb)
{
	json_t *r = cli_get_object(cli, "nbd_get_server", NULL, NULL);
	char where[512] = "";

	if (r && json_object_get(r, "port"))
		snprintf(where, sizeof(where), " on %s port %lld",
			 json_string_value(json_object_get(r, "address")),
			 (long long)json_integer_value(json_object_get(r, "port")));
	if (r && json_object_get(r, "unix_socket"))
		snprintf(where + strlen(where), sizeof(where) - strlen(where), "%s unix %s",
			 where[0] ? " and" : " on",
			 json_string_value(json_object_get(r, "unix_socket")));
	return cli_done(cli, r, "NBD server %s%s", verb, strcmp(verb, "stopped") ? where : "");
}

/* After an export change: one line; --json: the export (or {name, removed}). */
static json_t *
export_obj(struct nvl_cli *cli, const char *name)
{
	json_t *e = cli_get_object(cli, "nbd_get_exports", "name", name);

	return e ? e : json_pack("{s:s, s:b}", "name", name, "removed", true);
}

static int
cmd_nbd_start(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "address", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "socket", required_argument, NULL, 'S' },
		{ "max-connections", required_argument, NULL, 'm' },
		{ "no-read-hold", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *params = json_object(), *result;
	char path[PATH_MAX];
	uint64_t v;
	int c, rc;

	optind = 0; /* full re-initialisation: main() ran getopt on another argv */
	while ((c = getopt_long(argc, argv, "a:p:S:m:H", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			json_object_set_new(params, "address", json_string(optarg));
			break;
		case 'p':
			if (cli_parse_u64(optarg, "--port", 65535, &v) != CLI_OK) {
				json_decref(params);
				return CLI_USAGE;
			}
			json_object_set_new(params, "port", json_integer((json_int_t)v));
			break;
		case 'S':
			if (cli_abs_path(optarg, path, sizeof(path)) < 0) {
				json_decref(params);
				return cli_usage_error(cli, "--socket: path too long");
			}
			json_object_set_new(params, "unix_socket", json_string(path));
			break;
		case 'm':
			if (cli_parse_u64(optarg, "--max-connections", 65536, &v) != CLI_OK || v == 0) {
				json_decref(params);
				return cli_usage_error(cli, "--max-connections must be 1..65536");
			}
			json_object_set_new(params, "max_connections", json_integer((json_int_t)v));
			break;
		case 'H':
			json_object_set_new(params, "read_hold", json_false());
			break;
		default:
			json_decref(params);
			return cli_bad_option(cli, argv, opts);
		}
	}
	if (optind != argc) {
		json_decref(params);
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	}
	rc = cli_call(cli, "nbd_server_start", params, &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	return server_done(cli, "listening");
}
NVL_CLI_COMMAND(g_cmd_nbd_start, "nbd start", "start the NBD server",
"NAME\n"
"    nvlend nbd start - serve exports over NBD (the protocol of qemu, nbd-client,\n"
"    libnbd tools and the Linux kernel's NBD driver)\n"
"\n"
"SYNOPSIS\n"
"    nvlend nbd start [--address ADDR] [--port PORT] [--socket PATH]\n"
"                     [--max-connections N] [--no-read-hold]\n"
"\n"
"DESCRIPTION\n"
"    Listens on TCP ADDR:PORT and, with --socket, also on a Unix socket.\n"
"    Fixed newstyle handshake, structured replies, multi-connection safe.\n"
"    Clients beyond --max-connections are told so (NBD_REP_ERR_POLICY) and\n"
"    disconnected. Exports can be added before or after starting.\n"
"    RPC: nbd_server_start.\n"
"\n"
"    Read hold: a connection's reads may be held so that several requests\n"
"    are read at once and their replies leave together; a client with many\n"
"    requests in flight then takes its replies in fewer wake-ups. On a\n"
"    reactor that spins (nvlendd --spin-us 50 or more) a hold waits 8-32 us;\n"
"    on one that sleeps at once (--spin-us 0, sharing its CPU with the\n"
"    client) it yields the CPU once, so the client sends more first. Each\n"
"    connection measures its request rate and keeps the hold that serves it\n"
"    best (none, for a client at queue depth 1 or 2). The 'held_reads'\n"
"    counter of 'nvlend --json nbd export list' counts holds.\n"
"\n"
"OPTIONS\n"
"    -a, --address ADDR        127.0.0.1 (default), ::1, 0.0.0.0, ::, a host name\n"
"    -p, --port PORT           10809 (default); 0 = Unix socket only\n"
"    -S, --socket PATH         also listen on this Unix socket\n"
"    -m, --max-connections N   concurrent clients (default 64)\n"
"    -H, --no-read-hold        never hold reads (answer each request as soon\n"
"                              as it lands)\n"
"\n"
"EXAMPLES\n"
"    nvlend nbd start\n"
"    nvlend nbd export add disk0 r0\n"
"    nbdinfo nbd://127.0.0.1/disk0\n"
"    nvlend nbd start --port 0 --socket /run/nvlend/nbd.sock\n"
"    nbdinfo 'nbd+unix:///disk0?socket=/run/nvlend/nbd.sock'\n",
		cmd_nbd_start)

static int
cmd_nbd_stop(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *result;
	int rc;

	(void)argv;
	if (argc != 1)
		return cli_usage_error(cli, "no arguments expected");
	rc = cli_call(cli, "nbd_server_stop", NULL, &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	return server_done(cli, "stopped");
}
NVL_CLI_COMMAND(g_cmd_nbd_stop, "nbd stop", "stop the NBD server (exports stay)",
"NAME\n"
"    nvlend nbd stop - stop listening and disconnect NBD clients\n"
"\n"
"SYNOPSIS\n"
"    nvlend nbd stop\n"
"\n"
"DESCRIPTION\n"
"    Each client's in-flight requests are completed and answered before it is\n"
"    disconnected; the command returns when the last one is gone. Exports stay\n"
"    defined (and keep their bdevs open) for the next 'nvlend nbd start'.\n"
"    RPC: nbd_server_stop.\n",
		cmd_nbd_stop)

static int
cmd_nbd_status(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *r;
	int rc;

	(void)argv;
	if (argc != 1)
		return cli_usage_error(cli, "no arguments expected");
	rc = cli_call(cli, "nbd_get_server", NULL, &r);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		cli_print_json(r);
	} else if (!json_is_true(json_object_get(r, "running"))) {
		printf("NBD server: stopped\n");
	} else {
		printf("NBD server: running\n");
		if (json_object_get(r, "port"))
			printf("  tcp:         %s port %lld\n",
			       json_string_value(json_object_get(r, "address")),
			       (long long)json_integer_value(json_object_get(r, "port")));
		if (json_object_get(r, "unix_socket"))
			printf("  unix:        %s\n",
			       json_string_value(json_object_get(r, "unix_socket")));
		printf("  connections: %lld of %lld (refused so far: %lld)\n",
		       (long long)json_integer_value(json_object_get(r, "connections")),
		       (long long)json_integer_value(json_object_get(r, "max_connections")),
		       (long long)json_integer_value(json_object_get(r, "refused_connections")));
		printf("  read hold:   %s\n",
		       json_is_true(json_object_get(r, "read_hold")) ? "adaptive" : "off");
	}
	json_decref(r);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_nbd_status, "nbd status", "NBD server state: addresses, connections",
"NAME\n"
"    nvlend nbd status - is the NBD server running, where, how many clients\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] nbd status\n"
"\n"
"    RPC: nbd_get_server.\n",
		cmd_nbd_status)

static int
cmd_nbd_export_add(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "read-only", no_argument, NULL, 'r' },
		{ "description", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const char *desc = NULL;
	bool ro = false;
	json_t *params, *result;
	int c, rc;

	optind = 0; /* full re-initialisation: main() ran getopt on another argv */
	while ((c = getopt_long(argc, argv, "rd:", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			ro = true;
			break;
		case 'd':
			desc = optarg;
			break;
		default:
			return cli_bad_option(cli, argv, opts);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(cli, "expected NAME BDEV");
	params = json_pack("{s:s, s:s, s:b}", "name", argv[optind], "bdev", argv[optind + 1],
			   "read_only", ro);
	if (desc)
		json_object_set_new(params, "description", json_string(desc));
	rc = cli_call(cli, "nbd_server_add_export", params, &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	return cli_done(cli, export_obj(cli, argv[optind]), "exporting '%s' over NBD: bdev %s%s",
			argv[optind], argv[optind + 1], ro ? ", read-only" : "");
}
NVL_CLI_COMMAND(g_cmd_nbd_export_add, "nbd export add", "export a bdev over NBD",
"NAME\n"
"    nvlend nbd export add - make a bdev available to NBD clients by name\n"
"\n"
"SYNOPSIS\n"
"    nvlend nbd export add NAME BDEV [--read-only] [--description TEXT]\n"
"\n"
"DESCRIPTION\n"
"    The export holds the bdev open: 'nvlend bdev delete' is refused, naming\n"
"    the export, until it is removed. The minimum block size clients see is\n"
"    the bdev's block size; requests are at most 32 MiB. A client asking for\n"
"    the default export (empty name) gets this one only while it is the only\n"
"    export. RPC: nbd_server_add_export.\n"
"\n"
"OPTIONS\n"
"    -r, --read-only           writes, trims and zeroing fail with EPERM\n"
"    -d, --description TEXT    shown by 'nbdinfo --list'\n"
"\n"
"EXAMPLE\n"
"    nvlend nbd export add disk0 r0 --description 'scratch disk'\n"
"    qemu-img info nbd://127.0.0.1:10809/disk0\n",
		cmd_nbd_export_add)

static int
cmd_nbd_export_remove(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *result;
	int rc;

	if (argc != 2)
		return cli_usage_error(cli, "expected NAME");
	rc = cli_call(cli, "nbd_server_remove_export", json_pack("{s:s}", "name", argv[1]),
		      &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	return cli_done(cli, export_obj(cli, argv[1]), "removed NBD export '%s'", argv[1]);
}
NVL_CLI_COMMAND(g_cmd_nbd_export_remove, "nbd export remove", "remove an NBD export",
"NAME\n"
"    nvlend nbd export remove - stop exporting a bdev\n"
"\n"
"SYNOPSIS\n"
"    nvlend nbd export remove NAME\n"
"\n"
"DESCRIPTION\n"
"    New clients are refused at once; connected clients get their in-flight\n"
"    requests answered and are then disconnected; then the bdev is released.\n"
"    The command returns when that is done. RPC: nbd_server_remove_export.\n",
		cmd_nbd_export_remove)

static int
cmd_nbd_export_list(struct nvl_cli *cli, int argc, char **argv)
{
	static const char *const hdr[] = { "NAME", "BDEV", "SIZE", "BLOCK", "MODE", "CONNS",
					   "READS", "WRITES", "ERRORS", "DESCRIPTION" };
	json_t *params = NULL, *result, *e;
	struct cli_table *t;
	size_t i;
	int rc;

	if (argc > 2)
		return cli_usage_error(cli, "expected at most one NAME");
	if (argc == 2)
		params = json_pack("{s:s}", "name", argv[1]);
	rc = cli_call(cli, "nbd_get_exports", params, &result);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		cli_print_json(result);
		json_decref(result);
		return CLI_OK;
	}
	if (json_array_size(result) == 0) {
		printf("no NBD exports (add one with 'nvlend nbd export add NAME BDEV')\n");
		json_decref(result);
		return CLI_OK;
	}
	t = cli_table_new(10, hdr);
	json_array_foreach(result, i, e) {
		json_t *st = json_object_get(e, "stats");
		char size[32], bs[16], conns[16], rd[48], wr[48], er[24], rb[24], wb[24];

		cli_fmt_size((uint64_t)json_integer_value(json_object_get(e, "size_bytes")), size,
			     sizeof(size));
		snprintf(bs, sizeof(bs), "%lld",
			 (long long)json_integer_value(json_object_get(e, "block_size")));
		snprintf(conns, sizeof(conns), "%lld%s",
			 (long long)json_integer_value(json_object_get(e, "connections")),
			 json_is_true(json_object_get(e, "removing")) ? " (removing)" : "");
		cli_fmt_size((uint64_t)json_integer_value(json_object_get(st, "read_bytes")), rb,
			     sizeof(rb));
		cli_fmt_size((uint64_t)json_integer_value(json_object_get(st, "write_bytes")), wb,
			     sizeof(wb));
		snprintf(rd, sizeof(rd), "%lld (%s)",
			 (long long)json_integer_value(json_object_get(st, "read_ops")), rb);
		snprintf(wr, sizeof(wr), "%lld (%s)",
			 (long long)json_integer_value(json_object_get(st, "write_ops")), wb);
		snprintf(er, sizeof(er), "%lld",
			 (long long)json_integer_value(json_object_get(st, "errors")));
		cli_table_add(t, json_string_value(json_object_get(e, "name")),
			      json_string_value(json_object_get(e, "bdev_name")), size, bs,
			      json_is_true(json_object_get(e, "read_only")) ? "ro" : "rw", conns, rd,
			      wr, er, json_string_value(json_object_get(e, "description")));
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_nbd_export_list, "nbd export list", "list NBD exports and their counters",
"NAME\n"
"    nvlend nbd export list - NBD exports: bdev, size, mode, clients, I/O counters\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] nbd export list [NAME]\n"
"\n"
"DESCRIPTION\n"
"    READS/WRITES count answered requests (and bytes) over all connections,\n"
"    past and present; ERRORS counts requests answered with an NBD error.\n"
"    --json adds flush, trim, zero and cache counters, held_reads (reads the\n"
"    server held to gather requests: see 'nvlend nbd start --help'), block size\n"
"    limits and the transmission flags. RPC: nbd_get_exports.\n",
		cmd_nbd_export_list)
