/* SPDX-License-Identifier: BSD-3-Clause */
/* nvlend nvme attach/detach/list: controllers the daemon imports from other
 * NVMe targets (its bdev_nvme module) and the bdevs they bring. Thin wrappers
 * over bdev_nvme_attach_controller / _detach_controller / _get_controllers
 * (docs/nvme-tcp.md, "Importing a namespace"). The daemon connects, not this
 * process: the URI is what the daemon can reach. */
#include "cli.h"
#include "nvlend/nvlend.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The controller's bdev names joined by ", " into buf. */
static const char *
bdev_names(const json_t *ctrlr, char *buf, size_t len)
{
	json_t *b;
	size_t i, off = 0;

	buf[0] = '\0';
	json_array_foreach(json_object_get(ctrlr, "bdevs"), i, b) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", json_string_value(b));

		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	return buf[0] ? buf : "none";
}

static int
cmd_nvme_attach(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "hostnqn", required_argument, NULL, 'H' },
		{ "queues", required_argument, NULL, 'q' },
		{ "queue-size", required_argument, NULL, 'Q' },
		{ "reconnect-delay", required_argument, NULL, 'r' },
		{ "fast-io-fail", required_argument, NULL, 'f' },
		{ "ctrlr-loss", required_argument, NULL, 'l' },
		{ "hdgst", no_argument, NULL, 'g' },
		{ "ddgst", no_argument, NULL, 'G' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *params = json_object(), *result = NULL, *ctrlr;
	struct nvl_uri u;
	char names[512];
	uint64_t v;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "H:q:Q:r:f:l:gG", opts, NULL)) != -1) {
		const char *key = NULL, *what = NULL;
		uint64_t max = UINT32_MAX;

		switch (c) {
		case 'H':
			json_object_set_new(params, "hostnqn", json_string(optarg));
			continue;
		case 'g':
			json_object_set_new(params, "hdgst", json_true());
			continue;
		case 'G':
			json_object_set_new(params, "ddgst", json_true());
			continue;
		case 'q': key = "num_io_queues", what = "--queues", max = 64; break;
		case 'Q': key = "io_queue_size", what = "--queue-size", max = 65536; break;
		case 'r': key = "reconnect_delay_sec", what = "--reconnect-delay"; break;
		case 'f': key = "fast_io_fail_timeout_sec", what = "--fast-io-fail"; break;
		case 'l':
			/* -1: never give up */
			if (strcmp(optarg, "-1") == 0 || strcmp(optarg, "never") == 0) {
				json_object_set_new(params, "ctrlr_loss_timeout_sec", json_integer(-1));
				continue;
			}
			key = "ctrlr_loss_timeout_sec", what = "--ctrlr-loss";
			break;
		default:
			json_decref(params);
			return cli_bad_option(cli, argv, opts);
		}
		if (cli_parse_u64(optarg, what, max, &v) != CLI_OK) {
			json_decref(params);
			return CLI_USAGE;
		}
		json_object_set_new(params, key, json_integer((json_int_t)v));
	}
	if (argc - optind != 2) {
		json_decref(params);
		return cli_usage_error(cli, "expected NAME URI");
	}
	rc = nvl_uri_parse(argv[optind + 1], &u);
	if (rc == 0 && u.kind != NVL_URI_NVME_TCP && u.kind != NVL_URI_NVME_SHM &&
	    u.kind != NVL_URI_NVME_RDMA)
		rc = -EPROTONOSUPPORT;
	if (rc < 0) {
		json_decref(params);
		return cli_usage_error(cli, "'%s': %s", argv[optind + 1], nvl_strerror(rc));
	}
	json_object_set_new(params, "name", json_string(argv[optind]));
	json_object_set_new(params, "subnqn", json_string(u.nqn));
	if (u.kind == NVL_URI_NVME_TCP || u.kind == NVL_URI_NVME_RDMA) {
		json_object_set_new(params, "trtype",
				    json_string(u.kind == NVL_URI_NVME_TCP ? "tcp" : "rdma"));
		json_object_set_new(params, "traddr", json_string(u.host));
		json_object_set_new(params, "trsvcid", json_string(u.port));
	} else {
		json_object_set_new(params, "trtype", json_string("shm"));
		json_object_set_new(params, "traddr", json_string(u.path));
	}
	rc = cli_call(cli, "bdev_nvme_attach_controller", params, &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	ctrlr = cli_get_object(cli, "bdev_nvme_get_controllers", "name", argv[optind]);
	if (ctrlr == NULL)
		return cli_done(cli, json_pack("{s:s}", "name", argv[optind]), "imported %s from %s",
				argv[optind], argv[optind + 1]);
	bdev_names(ctrlr, names, sizeof(names));
	return cli_done(cli, ctrlr, "imported %s from %s: bdevs %s", argv[optind],
			argv[optind + 1], names);
}
NVL_CLI_COMMAND(g_cmd_nvme_attach, "nvme attach", "import a remote NVMe controller's namespaces as bdevs",
"NAME\n"
"    nvlend nvme attach - make the daemon import an NVMe controller; each\n"
"    active namespace becomes a bdev NAMEn<nsid>\n"
"\n"
"SYNOPSIS\n"
"    nvlend nvme attach NAME URI [--hostnqn NQN] [--queues N] [--queue-size N]\n"
"                       [--reconnect-delay SECS] [--fast-io-fail SECS]\n"
"                       [--ctrlr-loss SECS|-1] [--hdgst] [--ddgst]\n"
"\n"
"DESCRIPTION\n"
"    URI is nvme+tcp://HOST:PORT/NQN (any NVMe/TCP target: nvlendd, SPDK,\n"
"    the Linux target), nvme+rdma://HOST:PORT/NQN (any NVMe/RDMA target, over\n"
"    an RDMA device of this host) or nvme+shm:///SOCK?nqn=NQN (an nvlendd shm\n"
"    listener).\n"
"    The daemon connects, keeps the controller, and reconnects when it is\n"
"    lost. Its bdevs are used like any other: share them (subsystem add-ns),\n"
"    export them over NBD, lend them. Prints the bdevs it brought.\n"
"    RPC: bdev_nvme_attach_controller (SPDK's method and names).\n"
"\n"
"OPTIONS\n"
"    --hostnqn NQN          the host NQN the daemon presents (default: the\n"
"                           machine's nqn.2014-08.org.nvmexpress:uuid:...)\n"
"    --queues N             I/O queue pairs (default one per reactor)\n"
"    --queue-size N         entries per I/O queue (default 128)\n"
"    --reconnect-delay SECS first delay between reconnect attempts (default 1)\n"
"    --fast-io-fail SECS    fail I/O this long after a loss instead of\n"
"                           queueing it (default 0: queue)\n"
"    --ctrlr-loss SECS|-1   give the controller up this long after a loss\n"
"                           (default -1: never)\n"
"    --hdgst, --ddgst       NVMe/TCP header / data digests\n"
"\n"
"EXAMPLES\n"
"    nvlend nvme attach Nvme0 nvme+tcp://192.0.2.10:4420/nqn.2026-01.io.nvlend:ns0\n"
"    nvlend nvme attach Far nvme+tcp://192.0.2.11/nqn.2026-01.io.nvlend:ns1 --hdgst \\\n"
"        --fast-io-fail 5 --ctrlr-loss 60\n",
		cmd_nvme_attach)

static int
cmd_nvme_detach(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *result = NULL;
	int rc;

	if (argc != 2)
		return cli_usage_error(cli, "expected NAME");
	rc = cli_call(cli, "bdev_nvme_detach_controller", json_pack("{s:s}", "name", argv[1]),
		      &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	return cli_done(cli, json_pack("{s:s, s:b}", "name", argv[1], "detached", true),
			"detached %s (its bdevs are gone)", argv[1]);
}
NVL_CLI_COMMAND(g_cmd_nvme_detach, "nvme detach", "drop an imported controller and its bdevs",
"NAME\n"
"    nvlend nvme detach - disconnect an imported controller; its bdevs go away\n"
"\n"
"SYNOPSIS\n"
"    nvlend nvme detach NAME\n"
"\n"
"DESCRIPTION\n"
"    Refused while one of its bdevs is in use (shared in a subsystem,\n"
"    exported over NBD): the error names the user. RPC:\n"
"    bdev_nvme_detach_controller.\n",
		cmd_nvme_detach)

static int
cmd_nvme_list(struct nvl_cli *cli, int argc, char **argv)
{
	static const char *const hdr[] = { "NAME", "STATE", "TARGET", "NQN", "QUEUES",
					   "RECONNECTS", "BDEVS" };
	json_t *params = NULL, *result, *e;
	struct cli_table *t;
	size_t i;
	int rc;

	if (argc > 2)
		return cli_usage_error(cli, "expected at most one NAME");
	if (argc == 2)
		params = json_pack("{s:s}", "name", argv[1]);
	rc = cli_call(cli, "bdev_nvme_get_controllers", params, &result);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		cli_print_json(result);
		json_decref(result);
		return CLI_OK;
	}
	if (json_array_size(result) == 0) {
		printf("no imported controllers (add one with 'nvlend nvme attach NAME URI')\n");
		json_decref(result);
		return CLI_OK;
	}
	t = cli_table_new(7, hdr);
	json_array_foreach(result, i, e) {
		json_t *trid = json_object_get(e, "trid");
		const char *tt = json_string_value(json_object_get(trid, "trtype"));
		char target[300], queues[16], rec[16], names[512];

		if (tt && strcasecmp(tt, "shm") == 0)
			snprintf(target, sizeof(target), "shm %s",
				 json_string_value(json_object_get(trid, "traddr")));
		else
			snprintf(target, sizeof(target), "%s %s:%s", tt ? tt : "?",
				 json_string_value(json_object_get(trid, "traddr")),
				 json_string_value(json_object_get(trid, "trsvcid")));
		snprintf(queues, sizeof(queues), "%lld",
			 (long long)json_integer_value(json_object_get(e, "num_io_queues")));
		snprintf(rec, sizeof(rec), "%lld",
			 (long long)json_integer_value(json_object_get(e, "reconnects")));
		cli_table_add(t, json_string_value(json_object_get(e, "name")),
			      json_string_value(json_object_get(e, "state")), target,
			      json_string_value(json_object_get(trid, "subnqn")), queues, rec,
			      bdev_names(e, names, sizeof(names)));
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_nvme_list, "nvme list", "imported controllers, their state and bdevs",
"NAME\n"
"    nvlend nvme list - the controllers the daemon imports\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] nvme list [NAME]\n"
"\n"
"DESCRIPTION\n"
"    One line per controller: name, state (ready, resetting, reconnecting,\n"
"    failed, ...), target address, subsystem NQN, I/O queues, reconnects\n"
"    so far, bdevs. RPC: bdev_nvme_get_controllers.\n",
		cmd_nvme_list)
