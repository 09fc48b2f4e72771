/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvlend discover: a target's discovery log, read from userspace with
 * libnvlend (attach_all.c's discovery_log_read) and printed as `nvme
 * discover` prints it. And nvlend nvme discover start|stop|list: the
 * daemon's discovery services (bdev_nvme_start_discovery and friends,
 * src/module/bdev_nvme_discovery.c).
 * CLI process, single-threaded.
 */
#include "attach.h"
#include "cli.h"
#include "nvlend/nvlend.h"
#include "util/util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DISCOVER_DEFAULT_PORT "8009"

/* ---- names of the log's codes (NVMe over Fabrics 1.1, Figure 38) -------------------- */

static const char *
trtype_str(uint8_t t)
{
	switch (t) {
	case NVL_NVMF_TRTYPE_RDMA: return "rdma";
	case NVL_NVMF_TRTYPE_FC: return "fc";
	case NVL_NVMF_TRTYPE_TCP: return "tcp";
	case NVL_NVMF_TRTYPE_LOOP: return "loop";
	default: return "unrecognized";
	}
}

static const char *
adrfam_str(uint8_t a)
{
	switch (a) {
	case NVL_NVMF_ADRFAM_IPV4: return "ipv4";
	case NVL_NVMF_ADRFAM_IPV6: return "ipv6";
	case 3: return "infiniband";
	case 4: return "fibre-channel";
	case NVL_NVMF_ADRFAM_INTRA_HOST: return "pci";
	default: return "unrecognized";
	}
}

static const char *
subtype_str(uint8_t s)
{
	switch (s) {
	case NVL_NVMF_SUBTYPE_DISCOVERY_REFERRAL: return "discovery subsystem referral";
	case NVL_NVMF_SUBTYPE_NVME: return "nvme subsystem";
	case NVL_NVMF_SUBTYPE_DISCOVERY_CURRENT: return "current discovery subsystem";
	default: return "unrecognized";
	}
}

/* TREQ bits 1:0 secure channel, bit 2 SQ flow control disable supported */
static const char *
treq_str(uint8_t t, char *buf, size_t len)
{
	static const char *const sc[] = { "not specified", "required", "not required",
					  "reserved" };

	snprintf(buf, len, "%s%s", sc[t & 3],
		 t & 4 ? ", sq flow control disable supported" : "");
	return buf;
}

/* TSAS of a TCP entry: byte 0 SECTYPE */
static const char *
sectype_str(const struct nvl_nvmf_discovery_entry *e)
{
	if (e->trtype != NVL_NVMF_TRTYPE_TCP)
		return "none";
	switch (e->tsas[0]) {
	case 0: return "none";
	case 1: return "tls";
	case 2: return "tls13";
	default: return "unrecognized";
	}
}

/* ---- nvlend discover ------------------------------------------------------------------ */

/*
 * nvme+tcp://HOST[:PORT][/NQN], nvme+rdma://... or HOST[:PORT] (NVMe/TCP)
 * into the URI of a discovery controller (port 8009, the discovery NQN by
 * default).
 * \return 0, -EINVAL.
 */
static int
discover_uri(const char *arg, char *out, size_t len)
{
	const char *hp = arg, *slash, *nqn = NVL_NVME_DISCOVERY_NQN, *close;
	const char *scheme = "nvme+tcp";
	char host[300];
	size_t hlen;
	struct nvl_uri u;
	bool has_port;

	if (strncmp(arg, "nvme+tcp://", 11) == 0) {
		hp = arg + 11;
	} else if (strncmp(arg, "nvme+rdma://", 12) == 0) {
		hp = arg + 12;
		scheme = "nvme+rdma";
	} else if (strstr(arg, "://")) {
		return -EINVAL;
	}
	slash = strchr(hp[0] == '[' && strchr(hp, ']') ? strchr(hp, ']') : hp, '/');
	hlen = slash ? (size_t)(slash - hp) : strlen(hp);
	if (slash && slash[1])
		nqn = slash + 1;
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, hp, hlen);
	host[hlen] = '\0';
	if (host[0] == '[') {
		close = strchr(host, ']');
		if (close == NULL)
			return -EINVAL;
		has_port = close[1] == ':';
	} else if (strchr(host, ':') != strrchr(host, ':')) {
		/* a bare IPv6 address: no port can follow it */
		if (snprintf(out, len, "%s://[%s]:%s/%s", scheme, host, DISCOVER_DEFAULT_PORT,
			     nqn) >= (int)len)
			return -EINVAL;
		return nvl_uri_parse(out, &u) < 0 ? -EINVAL : 0;
	} else {
		has_port = strchr(host, ':') != NULL;
	}
	if (snprintf(out, len, "%s://%s%s%s/%s", scheme, host, has_port ? "" : ":",
		     has_port ? "" : DISCOVER_DEFAULT_PORT, nqn) >= (int)len)
		return -EINVAL;
	return nvl_uri_parse(out, &u) < 0 ? -EINVAL : 0;
}

static json_t *
entry_json(const struct nvl_nvmf_discovery_entry *e)
{
	char addr[257], port[33], nqn[257], treq[64];

	discovery_field(addr, sizeof(addr), e->traddr, sizeof(e->traddr));
	discovery_field(port, sizeof(port), e->trsvcid, sizeof(e->trsvcid));
	discovery_field(nqn, sizeof(nqn), e->subnqn, sizeof(e->subnqn));
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:i, s:s}", "trtype",
			 trtype_str(e->trtype), "adrfam", adrfam_str(e->adrfam), "subtype",
			 subtype_str(e->subtype), "treq", treq_str(e->treq, treq, sizeof(treq)),
			 "portid", (int)e->portid, "trsvcid", port, "subnqn", nqn, "traddr", addr,
			 "cntlid", (int)e->cntlid, "sectype", sectype_str(e));
}

static int
cmd_discover(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "hostnqn", required_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	struct nvl_nvmf_discovery_log hdr;
	struct nvl_nvmf_discovery_entry *e;
	const char *hostnqn = NULL;
	char uri[ATTACH_URI_MAX], why[512];
	int c, n;

	optind = 0;
	while ((c = getopt_long(argc, argv, "q:", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			hostnqn = optarg;
			break;
		default:
			return cli_bad_option(cli, argv, opts);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(cli, "expected nvme+tcp://HOST[:PORT] or HOST[:PORT]");
	if (discover_uri(argv[optind], uri, sizeof(uri)) < 0)
		return cli_usage_error(cli, "'%s' is not nvme+tcp://HOST[:PORT][/NQN] nor "
					    "HOST[:PORT]", argv[optind]);
	if (strncmp(uri, "nvme+rdma://", 12) == 0)
		return cli_usage_error(cli, "it reads the log over NVMe/TCP only; "
					    "'nvlend nvme discover start NAME %s' follows it over "
					    "NVMe/RDMA", argv[optind]);
	n = discovery_log_read(uri, hostnqn, &hdr, &e, why, sizeof(why));
	if (n < 0) {
		fprintf(stderr, "nvlend discover: %s\n", why);
		return CLI_ERR;
	}
	if (cli->json) {
		json_t *recs = json_array(), *out;

		for (int i = 0; i < n; i++)
			json_array_append_new(recs, entry_json(&e[i]));
		out = json_pack("{s:I, s:I, s:o}", "genctr", (json_int_t)hdr.genctr, "numrec",
				(json_int_t)hdr.numrec, "records", recs);
		cli_print_json(out);
		json_decref(out);
		free(e);
		return CLI_OK;
	}
	printf("Discovery Log Number of Records %llu, Generation counter %llu\n",
	       (unsigned long long)hdr.numrec, (unsigned long long)hdr.genctr);
	for (int i = 0; i < n; i++) {
		json_t *j = entry_json(&e[i]);

		printf("=====Discovery Log Entry %d======\n", i);
		printf("trtype:  %s\n", json_string_value(json_object_get(j, "trtype")));
		printf("adrfam:  %s\n", json_string_value(json_object_get(j, "adrfam")));
		printf("subtype: %s\n", json_string_value(json_object_get(j, "subtype")));
		printf("treq:    %s\n", json_string_value(json_object_get(j, "treq")));
		printf("portid:  %d\n", (int)json_integer_value(json_object_get(j, "portid")));
		printf("trsvcid: %s\n", json_string_value(json_object_get(j, "trsvcid")));
		printf("subnqn:  %s\n", json_string_value(json_object_get(j, "subnqn")));
		printf("traddr:  %s\n", json_string_value(json_object_get(j, "traddr")));
		printf("sectype: %s\n", json_string_value(json_object_get(j, "sectype")));
		json_decref(j);
	}
	if ((uint64_t)n < hdr.numrec)
		printf("(%llu more records not shown)\n", (unsigned long long)(hdr.numrec - n));
	free(e);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_discover, "discover", "print a target's NVMe discovery log",
"NAME\n"
"    nvlend discover - print the discovery log of an NVMe/TCP target\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] discover nvme+tcp://HOST[:PORT][/NQN] [--hostnqn NQN]\n"
"    nvlend [--json] discover HOST[:PORT] [--hostnqn NQN]\n"
"\n"
"DESCRIPTION\n"
"    Connects to the target's discovery controller from userspace (libnvlend;\n"
"    no kernel module, no daemon needed), reads its discovery log page and\n"
"    prints it as 'nvme discover' does: the record count and generation\n"
"    counter, then one block per entry (trtype, adrfam, subtype, treq, portid,\n"
"    trsvcid, subnqn, traddr, sectype). The entries list what the target offers\n"
"    this host: its NVMe subsystems and its discovery subsystem, per port.\n"
"    PORT defaults to 8009 (the NVMe/TCP discovery port); an nvlendd target\n"
"    answers discovery on every NVMe/TCP listener, so its I/O port (4420)\n"
"    works too. NQN defaults to nqn.2014-08.org.nvmexpress.discovery.\n"
"    An IPv6 address goes in brackets when a port follows: [fd00::1]:8009.\n"
"\n"
"    Attach what it lists with 'nvlend attach --all HOST:PORT' (this host), or\n"
"    let the daemon follow it with 'nvlend nvme discover start'.\n"
"\n"
"OPTIONS\n"
"    --hostnqn NQN   this host's NQN (default: from /etc/machine-id); the log\n"
"                    lists what the target allows this NQN\n"
"    --json          (global) {\"genctr\", \"numrec\", \"records\": [...]}, the\n"
"                    records with the fields above plus cntlid\n"
"\n"
"EXIT STATUS\n"
"    0 the log was printed; 1 it could not be read: no such host, connection\n"
"    refused (nothing listens there), no answer, not NVMe/TCP, not a\n"
"    discovery controller (the NQN names an NVMe subsystem), the host is not\n"
"    allowed; 2 the command line is wrong.\n"
"\n"
"EXAMPLES\n"
"    nvlend discover 192.0.2.10\n"
"    nvlend discover nvme+tcp://192.0.2.10:4420\n"
"    nvlend --json discover [fd00::1]:8009 --hostnqn nqn.2026-01.io.example:hosta\n",
		cmd_discover)

/* ---- nvlend nvme discover start|stop|list (the daemon's discovery services) ------------ */

static int
cmd_nvme_discover_start(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "hostnqn", required_argument, NULL, 'q' },
		{ "wait", no_argument, NULL, 'w' },
		{ "ctrlr-loss-timeout", required_argument, NULL, 'l' },
		{ "reconnect-delay", required_argument, NULL, 'r' },
		{ "fast-io-fail-timeout", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *hostnqn = NULL;
	json_t *params, *result, *info;
	char uri[ATTACH_URI_MAX];
	struct nvl_uri u;
	bool wait = false;
	int c, rc;
	int64_t loss = 0;
	uint64_t delay = 0, fast = 0, v;
	bool has_loss = false, has_delay = false, has_fast = false;

	optind = 0;
	while ((c = getopt_long(argc, argv, "q:wl:r:f:", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			hostnqn = optarg;
			break;
		case 'w':
			wait = true;
			break;
		case 'l':
			if (strcmp(optarg, "-1") == 0) {
				loss = -1;
			} else {
				if (cli_parse_u64(optarg, "--ctrlr-loss-timeout", INT32_MAX, &v) !=
				    CLI_OK)
					return CLI_USAGE;
				loss = (int64_t)v;
			}
			has_loss = true;
			break;
		case 'r':
			if (cli_parse_u64(optarg, "--reconnect-delay", 3600, &delay) != CLI_OK)
				return CLI_USAGE;
			has_delay = true;
			break;
		case 'f':
			if (cli_parse_u64(optarg, "--fast-io-fail-timeout", INT32_MAX, &fast) !=
			    CLI_OK)
				return CLI_USAGE;
			has_fast = true;
			break;
		default:
			return cli_bad_option(cli, argv, opts);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(cli, "expected NAME nvme+tcp://HOST[:PORT]");
	if (discover_uri(argv[optind + 1], uri, sizeof(uri)) < 0 || nvl_uri_parse(uri, &u) < 0)
		return cli_usage_error(cli,
				       "'%s' is not nvme+tcp://HOST[:PORT], nvme+rdma://HOST[:PORT] "
				       "nor HOST[:PORT]",
				       argv[optind + 1]);
	params = json_pack("{s:s, s:s, s:s, s:s, s:b}", "name", argv[optind], "trtype",
			   u.kind == NVL_URI_NVME_RDMA ? "rdma" : "tcp", "traddr", u.host, "trsvcid",
			   u.port, "wait_for_attach", wait);
	if (strcmp(u.nqn, NVL_NVME_DISCOVERY_NQN) != 0)
		json_object_set_new(params, "subnqn", json_string(u.nqn));
	if (hostnqn)
		json_object_set_new(params, "hostnqn", json_string(hostnqn));
	if (has_loss)
		json_object_set_new(params, "ctrlr_loss_timeout_sec", json_integer(loss));
	if (has_delay)
		json_object_set_new(params, "reconnect_delay_sec", json_integer((json_int_t)delay));
	if (has_fast)
		json_object_set_new(params, "fast_io_fail_timeout_sec",
				    json_integer((json_int_t)fast));
	rc = cli_call(cli, "bdev_nvme_start_discovery", params, &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	info = cli_get_object(cli, "bdev_nvme_get_discovery_info", "name", argv[optind]);
	{
		json_t *ctrlrs = json_object_get(info, "ctrlrs"), *x;
		char names[512] = "";
		size_t k, off = 0;

		json_array_foreach(ctrlrs, k, x) {
			const char *nm = json_string_value(json_object_get(x, "name"));

			if (nm && off < sizeof(names) - 1)
				off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s",
							off ? ", " : "", nm);
		}
		return cli_done(cli, info,
				"started discovery %s at %s port %s: %zu NVMe subsystem%s%s%s%s",
				argv[optind], u.host, u.port, json_array_size(ctrlrs),
				json_array_size(ctrlrs) == 1 ? "" : "s",
				off ? " (controllers " : "", names, off ? ")" : "");
	}
}
NVL_CLI_COMMAND(g_cmd_nvme_discover_start, "nvme discover start",
		"attach what a discovery service offers, and follow it",
"NAME\n"
"    nvlend nvme discover start - attach every subsystem a target's discovery\n"
"    log offers, and follow its changes\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] nvme discover start NAME nvme+tcp://HOST[:PORT] [--hostnqn NQN]\n"
"           [--wait] [--ctrlr-loss-timeout SECS] [--reconnect-delay SECS]\n"
"           [--fast-io-fail-timeout SECS]\n"
"    nvlend [--json] nvme discover start NAME nvme+rdma://HOST[:PORT] ...\n"
"\n"
"DESCRIPTION\n"
"    The daemon keeps a connection to the discovery controller at HOST:PORT\n"
"    (default port 8009) and attaches each NVMe subsystem entry of its log as\n"
"    an NVMe controller named NAME0, NAME1, ... (its bdevs NAMEin<nsid>), as\n"
"    SPDK's bdev_nvme_start_discovery does; fails at once if nothing answers\n"
"    there. Over nvme+tcp:// only the log's NVMe/TCP entries are attached,\n"
"    over nvme+rdma:// (NVMe/RDMA) only its NVMe/RDMA entries. When the log\n"
"    changes (the target sends a Discovery Log Page Change event), new\n"
"    entries are attached and controllers of removed entries are detached.\n"
"    The discovery service is kept by save_config; 'nvlend nvme discover\n"
"    stop NAME' ends it and detaches its controllers.\n"
"\n"
"OPTIONS\n"
"    --hostnqn NQN                  this host's NQN (default: the machine's)\n"
"    --wait                         return once the first log's controllers are\n"
"                                   attached (else once the log is read)\n"
"    --ctrlr-loss-timeout SECS      per controller, as bdev_nvme_attach_controller\n"
"                                   (-1 never gives up; default -1)\n"
"    --reconnect-delay SECS         first delay between reconnect attempts (default 1)\n"
"    --fast-io-fail-timeout SECS    fail I/O after this long without the controller\n"
"\n"
"EXAMPLES\n"
"    nvlend nvme discover start tgt nvme+tcp://192.0.2.10:8009\n"
"    nvlend nvme discover start rtgt nvme+rdma://192.0.2.10:4420\n"
"    nvlend bdev list            # tgt0n1, tgt1n1, ...\n",
		cmd_nvme_discover_start)

static int
cmd_nvme_discover_stop(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *result;
	int rc;

	if (argc != 2)
		return cli_usage_error(cli, "expected NAME");
	rc = cli_call(cli, "bdev_nvme_stop_discovery", json_pack("{s:s}", "name", argv[1]),
		      &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	return cli_done(cli, NULL, "stopped discovery %s and detached its controllers", argv[1]);
}
NVL_CLI_COMMAND(g_cmd_nvme_discover_stop, "nvme discover stop",
		"stop a discovery service and detach its controllers",
"NAME\n"
"    nvlend nvme discover stop - stop following a discovery service\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] nvme discover stop NAME\n"
"\n"
"DESCRIPTION\n"
"    Closes the discovery connection NAME and detaches every controller it\n"
"    attached (refused while one of their bdevs is in use: stop that user\n"
"    first).\n",
		cmd_nvme_discover_stop)

static int
cmd_nvme_discover_list(struct nvl_cli *cli, int argc, char **argv)
{
	static const char *const hdr[] = { "NAME", "TARGET", "STATE", "GENCTR", "CONTROLLERS" };
	json_t *result, *d;
	struct cli_table *t;
	size_t i;
	int rc;

	(void)argv;
	if (argc != 1)
		return cli_usage_error(cli, "expected no argument");
	rc = cli_call(cli, "bdev_nvme_get_discovery_info", NULL, &result);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		cli_print_json(result);
		json_decref(result);
		return CLI_OK;
	}
	t = cli_table_new(5, hdr);
	json_array_foreach(result, i, d) {
		json_t *trid = json_object_get(d, "trid");
		json_t *ctrlrs = json_object_get(d, "ctrlrs"), *x;
		const char *tt = json_string_value(json_object_get(trid, "trtype"));
		char target[300], gen[24], names[512] = "";
		size_t k, off = 0;

		snprintf(target, sizeof(target), "%s:%s%s",
			 json_string_value(json_object_get(trid, "traddr")),
			 json_string_value(json_object_get(trid, "trsvcid")),
			 tt && strcmp(tt, "RDMA") == 0 ? " (rdma)" : "");
		snprintf(gen, sizeof(gen), "%lld",
			 (long long)json_integer_value(json_object_get(d, "genctr")));
		json_array_foreach(ctrlrs, k, x) {
			const char *nm = json_string_value(json_object_get(x, "name"));

			if (nm && off < sizeof(names) - 1)
				off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s",
							off ? "," : "", nm);
		}
		cli_table_add(t, json_string_value(json_object_get(d, "name")), target,
			      json_string_value(json_object_get(d, "state")), gen,
			      off ? names : "-");
	}
	if (json_array_size(result) == 0)
		printf("no discovery services (start one with 'nvlend nvme discover start NAME "
		       "nvme+tcp://HOST:PORT')\n");
	else
		cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_nvme_discover_list, "nvme discover list",
		"list the daemon's discovery services",
"NAME\n"
"    nvlend nvme discover list - the daemon's discovery services\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] nvme discover list\n"
"\n"
"DESCRIPTION\n"
"    One line per discovery service: its name, the discovery controller it\n"
"    follows (\"(rdma)\" after it over NVMe/RDMA), its state (connecting, ready,\n"
"    waiting to reconnect), the generation counter of the log last read, and\n"
"    the controllers it attached. --json prints bdev_nvme_get_discovery_info's\n"
"    answer.\n",
		cmd_nvme_discover_list)
