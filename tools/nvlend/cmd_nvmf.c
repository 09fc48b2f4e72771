/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvlend subsystem ...: friendly wrappers over the nvmf_* RPCs (create,
 * delete, add-ns, remove-ns, add-listener, remove-listener, add-host,
 * remove-host, list, controllers). Tables by default, the RPC's JSON with
 * --json; a command that changes something says what in one line (--json:
 * the subsystem as it is afterwards).
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* After a change: one line, or with --json the subsystem as it is now. */
static int
subsys_done(struct nvl_cli *cli, json_t *result, const char *nqn, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int
subsys_done(struct nvl_cli *cli, json_t *result, const char *nqn, const char *fmt, ...)
{
	json_t *o = NULL;
	char line[1024];
	va_list ap;

	json_decref(result);
	if (cli->json) {
		o = cli_get_object(cli, "nvmf_get_subsystems", "nqn", nqn);
		if (o == NULL)
			o = json_pack("{s:s, s:b}", "nqn", nqn, "deleted", true);
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	return cli_done(cli, o, "%s", line);
}

/* "TCP 192.0.2.1:4420", "SHM /run/x.sock" for messages */
static void
addr_text(json_t *addr, char *out, size_t len)
{
	const char *tr = json_string_value(json_object_get(addr, "trtype"));
	const char *a = json_string_value(json_object_get(addr, "traddr"));
	const char *p = json_string_value(json_object_get(addr, "trsvcid"));

	if (p)
		snprintf(out, len, "%s %s%s%s:%s", tr, strchr(a, ':') ? "[" : "", a,
			 strchr(a, ':') ? "]" : "", p);
	else
		snprintf(out, len, "%s %s", tr, a);
}

/* listen_address from "tcp|rdma IP PORT" or "shm PATH" (argv[0] is the transport) */
static json_t *
parse_addr(struct nvl_cli *cli, int argc, char **argv)
{
	if (argc >= 1 && (strcasecmp(argv[0], "tcp") == 0 || strcasecmp(argv[0], "rdma") == 0)) {
		bool rdma = strcasecmp(argv[0], "rdma") == 0;

		if (argc != 3) {
			cli_usage_error(cli, "expected NQN %s IP PORT", rdma ? "rdma" : "tcp");
			return NULL;
		}
		return json_pack("{s:s, s:s, s:s, s:s}", "trtype", rdma ? "RDMA" : "TCP", "adrfam",
				 strchr(argv[1], ':') ? "IPv6" : "IPv4", "traddr", argv[1],
				 "trsvcid", argv[2]);
	}
	if (argc >= 1 && strcasecmp(argv[0], "shm") == 0) {
		char path[4096];

		if (argc != 2) {
			cli_usage_error(cli, "expected NQN shm PATH");
			return NULL;
		}
		if (cli_abs_path(argv[1], path, sizeof(path)) < 0) {
			cli_usage_error(cli, "PATH too long");
			return NULL;
		}
		return json_pack("{s:s, s:s}", "trtype", "SHM", "traddr", path);
	}
	cli_usage_error(cli, "expected NQN tcp IP PORT, NQN rdma IP PORT, or NQN shm PATH");
	return NULL;
}

static int
cmd_subsys_create(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "allow-any-host", no_argument, NULL, 'a' },
		{ "serial", required_argument, NULL, 's' },
		{ "model", required_argument, NULL, 'm' },
		{ "max-namespaces", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *serial = NULL, *model = NULL;
	uint64_t maxns = 0;
	bool any = false;
	json_t *params, *result;
	int c, rc;

	optind = 0; /* 0: glibc re-initializes (main() parsed with "+") */
	while ((c = getopt_long(argc, argv, "as:m:n:", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			any = true;
			break;
		case 's':
			serial = optarg;
			break;
		case 'm':
			model = optarg;
			break;
		case 'n':
			if (cli_parse_u64(optarg, "--max-namespaces", 1024, &maxns) != CLI_OK)
				return CLI_USAGE;
			break;
		default:
			return cli_bad_option(cli, argv, opts);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(cli, "expected NQN");
	params = json_pack("{s:s, s:b}", "nqn", argv[optind], "allow_any_host", any);
	if (serial)
		json_object_set_new(params, "serial_number", json_string(serial));
	if (model)
		json_object_set_new(params, "model_number", json_string(model));
	if (maxns)
		json_object_set_new(params, "max_namespaces", json_integer((json_int_t)maxns));
	rc = cli_call(cli, "nvmf_create_subsystem", params, &result);
	if (rc != CLI_OK)
		return rc;
	return subsys_done(cli, result, argv[optind], "created subsystem %s (%s)", argv[optind],
			   any ? "any host may connect" : "no host may connect yet: add-host");
}
NVL_CLI_COMMAND(g_cmd_subsys_create, "subsystem create", "create an NVMe subsystem (NQN)",
"NAME\n"
"    nvlend subsystem create - create an NVMe-oF subsystem\n"
"\n"
"SYNOPSIS\n"
"    nvlend subsystem create NQN [--allow-any-host] [--serial S] [--model M]\n"
"                                [--max-namespaces N]\n"
"\n"
"DESCRIPTION\n"
"    A subsystem groups namespaces (bdevs) that hosts reach through its\n"
"    listeners. Only the host NQNs added with 'subsystem add-host' may connect,\n"
"    unless --allow-any-host. NQN looks like nqn.2026-01.com.example:name.\n"
"    RPC: nvmf_create_subsystem.\n"
"\n"
"OPTIONS\n"
"    -a, --allow-any-host     every host may connect\n"
"    -s, --serial S           serial number (20 characters; default: from the NQN)\n"
"    -m, --model M            model number (40 characters)\n"
"    -n, --max-namespaces N   namespace slots (default 32, at most 1024)\n"
"\n"
"EXAMPLE\n"
"    nvlend subsystem create nqn.2026-01.io.nvlend:ns0 --allow-any-host\n",
		cmd_subsys_create)

static int
cmd_subsys_add_ns(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "nsid", required_argument, NULL, 'n' },
		{ "ptpl-file", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *ns, *result;
	uint64_t nsid = 0;
	const char *ptpl = NULL;
	char path[4096];
	int c, rc;

	optind = 0; /* 0: glibc re-initializes (main() parsed with "+") */
	while ((c = getopt_long(argc, argv, "n:p:", opts, NULL)) != -1) {
		if (c == 'p') {
			ptpl = optarg;
			continue;
		}
		if (c != 'n')
			return cli_bad_option(cli, argv, opts);
		if (cli_parse_u64(optarg, "--nsid", 0xfffffffe, &nsid) != CLI_OK || nsid == 0)
			return cli_usage_error(cli, "--nsid must be 1..4294967294");
	}
	if (argc - optind != 2)
		return cli_usage_error(cli, "expected NQN BDEV");
	ns = json_pack("{s:s}", "bdev_name", argv[optind + 1]);
	if (nsid)
		json_object_set_new(ns, "nsid", json_integer((json_int_t)nsid));
	if (ptpl) {
		if (cli_abs_path(ptpl, path, sizeof(path)) < 0) {
			json_decref(ns);
			return cli_usage_error(cli, "--ptpl-file: path too long");
		}
		ptpl = path;
		json_object_set_new(ns, "ptpl_file", json_string(ptpl));
	}
	rc = cli_call(cli, "nvmf_subsystem_add_ns",
		      json_pack("{s:s, s:o}", "nqn", argv[optind], "namespace", ns), &result);
	if (rc != CLI_OK)
		return rc;
	nsid = (uint64_t)json_integer_value(result);
	return subsys_done(cli, result, argv[optind], "added namespace %llu (bdev %s) to %s%s%s",
			   (unsigned long long)nsid, argv[optind + 1], argv[optind],
			   ptpl ? "; reservations persist in " : "", ptpl ? ptpl : "");
}
NVL_CLI_COMMAND(g_cmd_subsys_add_ns, "subsystem add-ns", "share a bdev as a namespace",
"NAME\n"
"    nvlend subsystem add-ns - add a namespace backed by a bdev\n"
"\n"
"SYNOPSIS\n"
"    nvlend subsystem add-ns NQN BDEV [--nsid N] [--ptpl-file PATH]\n"
"\n"
"DESCRIPTION\n"
"    Every connected host sees the new namespace (and gets a namespace-changed\n"
"    event). Says which namespace id it got (--json: the subsystem).\n"
"    RPC: nvmf_subsystem_add_ns.\n"
"\n"
"OPTIONS\n"
"    -n, --nsid N           namespace id (default: the first free one)\n"
"    -p, --ptpl-file PATH   keep reservations that ask for Persist Through\n"
"                           Power Loss in PATH (JSON), restored at start\n"
"\n"
"EXAMPLE\n"
"    nvlend subsystem add-ns nqn.2026-01.io.nvlend:ns0 r0\n",
		cmd_subsys_add_ns)

static int
cmd_subsys_add_listener(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *addr, *result;
	char text[4200];
	int rc;

	if (argc < 3)
		return cli_usage_error(cli, "expected NQN tcp IP PORT, NQN rdma IP PORT, or NQN shm PATH");
	addr = parse_addr(cli, argc - 2, argv + 2);
	if (addr == NULL)
		return CLI_USAGE;
	addr_text(addr, text, sizeof(text));
	rc = cli_call(cli, "nvmf_subsystem_add_listener",
		      json_pack("{s:s, s:o}", "nqn", argv[1], "listen_address", addr), &result);
	if (rc != CLI_OK)
		return rc;
	return subsys_done(cli, result, argv[1], "%s listens on %s", argv[1], text);
}
NVL_CLI_COMMAND(g_cmd_subsys_add_listener, "subsystem add-listener",
		"let hosts reach a subsystem at an address",
"NAME\n"
"    nvlend subsystem add-listener - offer a subsystem on NVMe/TCP, NVMe/RDMA or shm\n"
"\n"
"SYNOPSIS\n"
"    nvlend subsystem add-listener NQN tcp IP PORT\n"
"    nvlend subsystem add-listener NQN rdma IP PORT\n"
"    nvlend subsystem add-listener NQN shm PATH\n"
"\n"
"DESCRIPTION\n"
"    tcp: standard NVMe/TCP on IP (IPv4, or IPv6 without brackets) and PORT\n"
"    (4420 by convention); any NVMe/TCP host (Linux 'nvme connect', SPDK,\n"
"    nvlend) can connect. The discovery subsystem\n"
"    (nqn.2014-08.org.nvmexpress.discovery) listens for 'nvme discover' the\n"
"    same way, conventionally on port 8009. rdma: NVMe over RDMA (RoCE,\n"
"    InfiniBand, iWARP) on an IP address that an RDMA device owns; needs the\n"
"    rdma_cm kernel module (docs/rdma.md). shm: a Unix socket PATH for local\n"
"    hosts using libnvlend's shared-memory queues. RPC:\n"
"    nvmf_subsystem_add_listener.\n"
"\n"
"EXAMPLES\n"
"    nvlend subsystem add-listener nqn.2026-01.io.nvlend:ns0 tcp 192.0.2.10 4420\n"
"    nvlend subsystem add-listener nqn.2014-08.org.nvmexpress.discovery tcp 192.0.2.10 8009\n"
"    nvlend subsystem add-listener nqn.2026-01.io.nvlend:ns0 shm /run/nvlend/ns0.sock\n",
		cmd_subsys_add_listener)

/* A user or group given by name or number. */
static int
parse_id(struct nvl_cli *cli, const char *s, bool group, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s && *end == '\0' && errno == 0 && v <= UINT32_MAX - 1) {
		*out = (uint32_t)v;
		return CLI_OK;
	}
	if (group) {
		struct group *g = getgrnam(s);

		if (g) {
			*out = g->gr_gid;
			return CLI_OK;
		}
	} else {
		struct passwd *p = getpwnam(s);

		if (p) {
			*out = p->pw_uid;
			return CLI_OK;
		}
	}
	return cli_usage_error(cli, "no such %s '%s'", group ? "group" : "user", s);
}

static int
cmd_subsys_add_host(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "uid", required_argument, NULL, 'u' },
		{ "gid", required_argument, NULL, 'g' },
		{ "dhchap-key", required_argument, NULL, 'k' },
		{ "dhchap-ctrlr-key", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *key = NULL, *ckey = NULL;
	json_t *params, *result;
	uint32_t uid = 0, gid = 0;
	bool has_uid = false, has_gid = false;
	int c, rc;

	optind = 0; /* 0: glibc re-initializes (main() parsed with "+") */
	while ((c = getopt_long(argc, argv, "u:g:k:c:", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			key = optarg;
			break;
		case 'c':
			ckey = optarg;
			break;
		case 'u':
			if (parse_id(cli, optarg, false, &uid) != CLI_OK)
				return CLI_USAGE;
			has_uid = true;
			break;
		case 'g':
			if (parse_id(cli, optarg, true, &gid) != CLI_OK)
				return CLI_USAGE;
			has_gid = true;
			break;
		default:
			return cli_bad_option(cli, argv, opts);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(cli, "expected NQN HOSTNQN");
	params = json_pack("{s:s, s:s}", "nqn", argv[optind], "host", argv[optind + 1]);
	if (has_uid)
		json_object_set_new(params, "uid", json_integer(uid));
	if (has_gid)
		json_object_set_new(params, "gid", json_integer(gid));
	if (key)
		json_object_set_new(params, "dhchap_key", json_string(key));
	if (ckey)
		json_object_set_new(params, "dhchap_ctrlr_key", json_string(ckey));
	rc = cli_call(cli, "nvmf_subsystem_add_host", params, &result);
	if (rc != CLI_OK)
		return rc;
	return subsys_done(cli, result, argv[optind], "host %s may connect to %s%s%s",
			   argv[optind + 1], argv[optind],
			   key ? (ckey ? " (DH-HMAC-CHAP, both ways)" : " (DH-HMAC-CHAP)") : "",
			   has_uid || has_gid ? " (bound to local credentials over shm)" : "");
}
NVL_CLI_COMMAND(g_cmd_subsys_add_host, "subsystem add-host", "allow a host NQN to connect",
"NAME\n"
"    nvlend subsystem add-host - allow one more host; bind it to a local user\n"
"    or make it authenticate\n"
"\n"
"SYNOPSIS\n"
"    nvlend subsystem add-host NQN HOSTNQN [--uid USER] [--gid GROUP]\n"
"                              [--dhchap-key KEY [--dhchap-ctrlr-key KEY]]\n"
"\n"
"DESCRIPTION\n"
"    HOSTNQN may then connect (a Linux host's is in /etc/nvme/hostnqn). Other\n"
"    hosts are refused with 'Connect Invalid Host' and do not see the\n"
"    subsystem in their discovery log. RPC: nvmf_subsystem_add_host.\n"
"\n"
"    A host NQN is only a name: any peer can send it. Two ways to tie it to\n"
"    who is really there (docs/security.md):\n"
"\n"
"    --uid, --gid (nvlend extension) bind HOSTNQN to local credentials: over\n"
"    shm, where the kernel tells the daemon who connected (SO_PEERCRED), only a\n"
"    process of that user, of a member of that group (primary or\n"
"    supplementary), or root may connect under HOSTNQN; others are refused\n"
"    with the reason. Both given: either suffices. Over NVMe/TCP, which carries\n"
"    no credentials, a bound HOSTNQN is refused unless it also has a key.\n"
"\n"
"    --dhchap-key makes every controller of HOSTNQN run NVMe in-band\n"
"    authentication (DH-HMAC-CHAP, NVMe Base 2.0 8.13) on each queue before\n"
"    anything else, over TCP and shm: the host proves it knows the secret of\n"
"    KEY (a keyring name: 'nvlend keyring add'). With --dhchap-ctrlr-key the\n"
"    controller proves itself with that key's secret when the host asks\n"
"    (bidirectional; the Linux host asks when given --dhchap-ctrl-secret).\n"
"    Hashes and DH groups: nvmf_set_config dhchap_digests / dhchap_dhgroups\n"
"    (default: all; the strongest the host offers is used).\n"
"\n"
"    An NQN without --uid/--gid/--dhchap-key (and, with --allow-any-host, any\n"
"    NQN not listed) may be claimed by any peer that reaches a listener.\n"
"\n"
"OPTIONS\n"
"    -u, --uid USER              user name or number that may claim HOSTNQN (shm)\n"
"    -g, --gid GROUP             group name or number whose members may claim it\n"
"    -k, --dhchap-key KEY        keyring key the host authenticates with\n"
"    -c, --dhchap-ctrlr-key KEY  keyring key the controller authenticates with\n"
"\n"
"EXAMPLES\n"
"    nvlend subsystem add-host nqn.2026-01.io.nvlend:ns0 \\\n"
"        nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555\n"
"    nvlend subsystem add-host nqn.2026-01.io.nvlend:ns0 nqn.2026-01.io.nvlend:db --uid postgres\n"
"    nvlend keyring gen --hmac sha256 /etc/nvlend/keys/h1.key\n"
"    nvlend keyring gen --hmac sha256 /etc/nvlend/keys/c1.key\n"
"    nvlend keyring add h1 /etc/nvlend/keys/h1.key\n"
"    nvlend keyring add c1 /etc/nvlend/keys/c1.key\n"
"    nvlend subsystem add-host nqn.2026-01.io.nvlend:ns0 $(cat /etc/nvme/hostnqn) \\\n"
"        --dhchap-key h1 --dhchap-ctrlr-key c1\n",
		cmd_subsys_add_host)

static void
join_listeners(json_t *ls, char *out, size_t len)
{
	json_t *l;
	size_t i, n = 0;

	out[0] = '\0';
	json_array_foreach(ls, i, l) {
		const char *tr = json_string_value(json_object_get(l, "trtype"));
		const char *a = json_string_value(json_object_get(l, "traddr"));
		const char *p = json_string_value(json_object_get(l, "trsvcid"));
		int w;

		if (p && *p)
			w = snprintf(out + n, len - n, "%s%s %s%s%s%s", i ? ", " : "", tr ? tr : "?",
				     strchr(a ? a : "", ':') ? "[" : "", a ? a : "?",
				     strchr(a ? a : "", ':') ? "]:" : ":", p);
		else
			w = snprintf(out + n, len - n, "%s%s %s", i ? ", " : "", tr ? tr : "?",
				     a ? a : "?");
		if (w < 0 || (size_t)w >= len - n)
			break;
		n += (size_t)w;
	}
	if (n == 0)
		snprintf(out, len, "-");
}

static int
cmd_subsys_list(struct nvl_cli *cli, int argc, char **argv)
{
	static const char *const hdr[] = { "NQN", "NAMESPACES", "HOSTS", "CONTROLLERS",
					   "LISTENERS" };
	json_t *result, *s;
	struct cli_table *t;
	size_t i;
	int rc;

	(void)argv;
	if (argc != 1)
		return cli_usage_error(cli, "no arguments expected");
	rc = cli_call(cli, "nvmf_get_subsystems", NULL, &result);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		cli_print_json(result);
		json_decref(result);
		return CLI_OK;
	}
	t = cli_table_new(5, hdr);
	json_array_foreach(result, i, s) {
		char nss[256] = "", hosts[64], ctrls[16], ls[512];
		json_t *ns, *hs = json_object_get(s, "hosts");
		size_t k, n = 0;

		json_array_foreach(json_object_get(s, "namespaces"), k, ns) {
			int w = snprintf(nss + n, sizeof(nss) - n, "%s%lld:%s", k ? " " : "",
					 (long long)json_integer_value(json_object_get(ns, "nsid")),
					 json_string_value(json_object_get(ns, "bdev_name")));

			if (w < 0 || (size_t)w >= sizeof(nss) - n)
				break;
			n += (size_t)w;
		}
		if (n == 0)
			snprintf(nss, sizeof(nss), "-");
		if (json_is_true(json_object_get(s, "allow_any_host")))
			snprintf(hosts, sizeof(hosts), "any");
		else
			snprintf(hosts, sizeof(hosts), "%zu allowed", json_array_size(hs));
		snprintf(ctrls, sizeof(ctrls), "%lld",
			 (long long)json_integer_value(json_object_get(s, "controllers")));
		join_listeners(json_object_get(s, "listen_addresses"), ls, sizeof(ls));
		cli_table_add(t, json_string_value(json_object_get(s, "nqn")), nss, hosts, ctrls, ls);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_subsys_list, "subsystem list", "list subsystems",
"NAME\n"
"    nvlend subsystem list - subsystems: namespaces (nsid:bdev), hosts,\n"
"    connected controllers, listeners\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] subsystem list\n",
		cmd_subsys_list)

static int
cmd_subsys_controllers(struct nvl_cli *cli, int argc, char **argv)
{
	static const char *const hdr[] = { "CNTLID", "HOST NQN", "TRANSPORT", "ADDRESS",
					   "I/O QUEUES", "READS", "WRITES", "KATO" };
	json_t *result, *c;
	struct cli_table *t;
	size_t i;
	int rc;

	if (argc != 2)
		return cli_usage_error(cli, "expected NQN");
	rc = cli_call(cli, "nvmf_subsystem_get_controllers", json_pack("{s:s}", "nqn", argv[1]),
		      &result);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		cli_print_json(result);
		json_decref(result);
		return CLI_OK;
	}
	t = cli_table_new(8, hdr);
	json_array_foreach(result, i, c) {
		char id[16], q[16], rd[32], wr[32], ka[24], addr[320];
		json_t *la = json_object_get(c, "listen_address"), *io = json_object_get(c, "io");
		json_t *one = json_array();

		json_array_append(one, la);
		join_listeners(one, addr, sizeof(addr));
		json_decref(one);
		snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(c, "cntlid")));
		snprintf(q, sizeof(q), "%lld",
			 (long long)json_integer_value(json_object_get(c, "num_io_qpairs")));
		snprintf(rd, sizeof(rd), "%lld",
			 (long long)json_integer_value(json_object_get(io, "read_cmds")));
		snprintf(wr, sizeof(wr), "%lld",
			 (long long)json_integer_value(json_object_get(io, "write_cmds")));
		snprintf(ka, sizeof(ka), "%lld ms",
			 (long long)json_integer_value(json_object_get(c, "kato_ms")));
		cli_table_add(t, id, json_string_value(json_object_get(c, "hostnqn")),
			      json_string_value(json_object_get(c, "trtype")), addr, q, rd, wr, ka);
	}
	if (json_array_size(result) == 0)
		printf("no host is connected to %s\n", argv[1]);
	else
		cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_subsys_controllers, "subsystem controllers",
		"controllers (connected hosts) of a subsystem",
"NAME\n"
"    nvlend subsystem controllers - who is connected, how, and their I/O\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] subsystem controllers NQN\n"
"\n"
"DESCRIPTION\n"
"    One line per controller: its id, the host NQN, the transport and the\n"
"    listener the host came in on, its I/O queues, commands and keep-alive\n"
"    timeout. --json adds every queue (nvmf_subsystem_get_qpairs has more).\n"
"    RPC: nvmf_subsystem_get_controllers.\n",
		cmd_subsys_controllers)

static int
cmd_subsys_delete(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *result;
	int rc;

	if (argc != 2)
		return cli_usage_error(cli, "expected NQN");
	rc = cli_call(cli, "nvmf_delete_subsystem", json_pack("{s:s}", "nqn", argv[1]), &result);
	if (rc != CLI_OK)
		return rc;
	return subsys_done(cli, result, argv[1], "deleted subsystem %s", argv[1]);
}
NVL_CLI_COMMAND(g_cmd_subsys_delete, "subsystem delete", "delete a subsystem",
"NAME\n"
"    nvlend subsystem delete - delete a subsystem\n"
"\n"
"SYNOPSIS\n"
"    nvlend subsystem delete NQN\n"
"\n"
"DESCRIPTION\n"
"    Its controllers are disconnected (hosts see the connection end), its\n"
"    listeners stop when no other subsystem uses them, its namespaces release\n"
"    their bdevs once in-flight I/O finished. RPC: nvmf_delete_subsystem.\n",
		cmd_subsys_delete)

static int
cmd_subsys_remove_ns(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *result;
	uint64_t nsid;
	int rc;

	if (argc != 3)
		return cli_usage_error(cli, "expected NQN NSID");
	if (cli_parse_u64(argv[2], "NSID", 0xfffffffe, &nsid) != CLI_OK || nsid == 0)
		return cli_usage_error(cli, "NSID must be 1..4294967294");
	rc = cli_call(cli, "nvmf_subsystem_remove_ns",
		      json_pack("{s:s, s:I}", "nqn", argv[1], "nsid", (json_int_t)nsid), &result);
	if (rc != CLI_OK)
		return rc;
	return subsys_done(cli, result, argv[1], "removed namespace %llu from %s (its bdev is free)",
			   (unsigned long long)nsid, argv[1]);
}
NVL_CLI_COMMAND(g_cmd_subsys_remove_ns, "subsystem remove-ns", "stop sharing a namespace",
"NAME\n"
"    nvlend subsystem remove-ns - remove a namespace from a subsystem\n"
"\n"
"SYNOPSIS\n"
"    nvlend subsystem remove-ns NQN NSID\n"
"\n"
"DESCRIPTION\n"
"    Connected hosts get a namespace-changed event; the command returns once\n"
"    the commands in flight on the namespace finished and its bdev is released\n"
"    (then 'nvlend bdev delete' may delete it). RPC: nvmf_subsystem_remove_ns.\n"
"\n"
"EXAMPLE\n"
"    nvlend subsystem remove-ns nqn.2026-01.io.nvlend:ns0 1\n",
		cmd_subsys_remove_ns)

static int
cmd_subsys_remove_listener(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *addr, *result;
	char text[4200];
	int rc;

	if (argc < 3)
		return cli_usage_error(cli, "expected NQN tcp IP PORT, NQN rdma IP PORT, or NQN shm PATH");
	addr = parse_addr(cli, argc - 2, argv + 2);
	if (addr == NULL)
		return CLI_USAGE;
	addr_text(addr, text, sizeof(text));
	rc = cli_call(cli, "nvmf_subsystem_remove_listener",
		      json_pack("{s:s, s:o}", "nqn", argv[1], "listen_address", addr), &result);
	if (rc != CLI_OK)
		return rc;
	return subsys_done(cli, result, argv[1], "%s no longer listens on %s", argv[1], text);
}
NVL_CLI_COMMAND(g_cmd_subsys_remove_listener, "subsystem remove-listener",
		"stop offering a subsystem at an address",
"NAME\n"
"    nvlend subsystem remove-listener - stop offering a subsystem at an address\n"
"\n"
"SYNOPSIS\n"
"    nvlend subsystem remove-listener NQN tcp IP PORT\n"
"    nvlend subsystem remove-listener NQN rdma IP PORT\n"
"    nvlend subsystem remove-listener NQN shm PATH\n"
"\n"
"DESCRIPTION\n"
"    Controllers of hosts that came in on that address are disconnected; the\n"
"    address stops listening when no other subsystem uses it.\n"
"    RPC: nvmf_subsystem_remove_listener.\n"
"\n"
"EXAMPLE\n"
"    nvlend subsystem remove-listener nqn.2026-01.io.nvlend:ns0 tcp 192.0.2.10 4420\n",
		cmd_subsys_remove_listener)

static int
cmd_subsys_remove_host(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *result;
	int rc;

	if (argc != 3)
		return cli_usage_error(cli, "expected NQN HOSTNQN");
	rc = cli_call(cli, "nvmf_subsystem_remove_host",
		      json_pack("{s:s, s:s}", "nqn", argv[1], "host", argv[2]), &result);
	if (rc != CLI_OK)
		return rc;
	return subsys_done(cli, result, argv[1], "host %s may no longer connect to %s", argv[2],
			   argv[1]);
}
NVL_CLI_COMMAND(g_cmd_subsys_remove_host, "subsystem remove-host",
		"stop allowing a host NQN",
"NAME\n"
"    nvlend subsystem remove-host - take a host off a subsystem's allowed list\n"
"\n"
"SYNOPSIS\n"
"    nvlend subsystem remove-host NQN HOSTNQN\n"
"\n"
"DESCRIPTION\n"
"    The host's controllers are disconnected (as SPDK does); it may connect\n"
"    again only while the subsystem allows any host.\n"
"    RPC: nvmf_subsystem_remove_host.\n"
"\n"
"EXAMPLE\n"
"    nvlend subsystem remove-host nqn.2026-01.io.nvlend:ns0 \\\n"
"        nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555\n",
		cmd_subsys_remove_host)
