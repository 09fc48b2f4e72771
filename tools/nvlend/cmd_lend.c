/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvlend lend ...: SmartIO's Device Lending verbs (connect, add,
 * available, unavailable, list, borrow, return) over the daemon's lend_*
 * RPCs, plus listen, node, remove and keygen. docs/lending.md.
 *
 * `borrow` also takes the reservation (exclusive offers: Write Exclusive,
 * held under this node's host NQN, so a second path cannot write) and
 * attaches the device by running `nvlend attach` (this same binary) with
 * the node's host NQN; `return` detaches it (refused while mounted),
 * releases the reservation and returns the lend. Single-threaded.
 */
#include "cli.h"
#include "nvlend/nvlend.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *
jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static uint64_t
jint(const json_t *o, const char *k)
{
	json_int_t v = json_integer_value(json_object_get(o, k));

	return v < 0 ? 0 : (uint64_t)v;
}

/* The operand after the options; CLI_USAGE (said why) if not exactly one. */
static int
one_operand(struct nvl_cli *cli, int argc, char **argv, const char *what, const char **out)
{
	*out = "";
	if (optind != argc - 1)
		return cli_usage_error(cli, "expected %s", what);
	*out = argv[optind];
	return CLI_OK;
}

static int
parse_id(struct nvl_cli *cli, const char *s, uint32_t *id)
{
	uint64_t v;

	if (nvl_parse_u64(s, UINT32_MAX, &v) < 0)
		return cli_usage_error(cli, "'%s' is not a lend id (see 'nvlend lend list')", s);
	*id = (uint32_t)v;
	return CLI_OK;
}

/* Options-free commands: reject any option but --help (handled earlier). */
static int
no_options(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { { NULL, 0, NULL, 0 } };
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1)
		return cli_bad_option(cli, argv, lo);
	return CLI_OK;
}

/* ---- listen, node, keygen, connect -------------------------------------------------------- */

static int
cmd_listen(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "nvme-port", required_argument, NULL, 'n' },
		{ "discovery-port", required_argument, NULL, 'd' },
		{ "lease", required_argument, NULL, 'l' },
		{ "mdns", no_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *p = json_object(), *res = NULL;
	const char *addr;
	uint64_t v;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "p:n:d:l:m", lo, NULL)) != -1) {
		switch (c) {
		case 'm':
			json_object_set_new(p, "mdns", json_true());
			break;
		case 'p':
			json_object_set_new(p, "trsvcid", json_string(optarg));
			break;
		case 'n':
			json_object_set_new(p, "nvme_trsvcid", json_string(optarg));
			break;
		case 'd':
			json_object_set_new(p, "discovery_trsvcid",
					    json_string(strcmp(optarg, "none") ? optarg : ""));
			break;
		case 'l':
			if (cli_parse_u64(optarg, "--lease", 3600, &v) || v == 0) {
				json_decref(p);
				return cli_usage_error(cli, "--lease must be 1..3600 seconds");
			}
			json_object_set_new(p, "lease_ms", json_integer((json_int_t)v * 1000));
			break;
		default:
			json_decref(p);
			return cli_bad_option(cli, argv, lo);
		}
	}
	rc = one_operand(cli, argc, argv, "this node's ADDRESS", &addr);
	if (rc != CLI_OK) {
		json_decref(p);
		return rc;
	}
	json_object_set_new(p, "traddr", json_string(addr));
	rc = cli_call(cli, "lend_listen", p, &res);
	if (rc != CLI_OK)
		return rc;
	{
		json_t *l = json_object_get(res, "listener");
		char line[512];

		snprintf(line, sizeof(line),
			 "node %s listens for peers on %s port %s; lent devices on NVMe/TCP port %s%s%s",
			 jstr(res, "name"), jstr(l, "traddr"), jstr(l, "trsvcid"),
			 jstr(l, "nvme_trsvcid"), jstr(l, "discovery_trsvcid")[0] ? ", discovery port " : "",
			 jstr(l, "discovery_trsvcid"));
		return cli_done(cli, res, "%s", line);
	}
}
NVL_CLI_COMMAND(g_cmd_lend_listen, "lend listen", "serve the lending peer protocol on an address",
"NAME\n"
"    nvlend lend listen - make this node reachable by its lending peers\n"
"\n"
"SYNOPSIS\n"
"    nvlend lend listen ADDRESS [--port N] [--nvme-port N] [--discovery-port N|none]\n"
"                       [--lease SECS] [--mdns]\n"
"\n"
"DESCRIPTION\n"
"    Serves the peer protocol (JSON lines over TCP, every message authenticated\n"
"    with HMAC-SHA256 under the cluster key: nvlendd --cluster-key) on ADDRESS,\n"
"    and sets where the devices this node lends are served over NVMe/TCP and\n"
"    listed in its NVMe discovery log. Saved in the state dir: a restarted\n"
"    daemon listens again by itself.\n"
"\n"
"OPTIONS\n"
"    --port N             peer protocol port (default 4430)\n"
"    --nvme-port N        NVMe/TCP port of lent devices (default 4420)\n"
"    --discovery-port N   NVMe discovery listener listing the offers (default\n"
"                         8009; none: no extra listener)\n"
"    --lease SECS         a borrower whose daemon is silent this long loses the\n"
"                         device (default 10)\n"
"    --mdns               advertise the discovery port over mDNS as\n"
"                         _nvme-disc._tcp (TP 8009, as nvme-stas finds it)\n"
"                         through avahi (nvlendd --avahi-services-dir)\n",
		cmd_listen)

static int
cmd_node(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *res = NULL;
	int rc = no_options(cli, argc, argv);

	if (rc != CLI_OK)
		return rc;
	if (optind != argc)
		return cli_usage_error(cli, "no operands expected");
	rc = cli_call(cli, "lend_get_node", NULL, &res);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		cli_print_json(res);
	} else {
		json_t *l = json_object_get(res, "listener"), *it;
		size_t i;

		printf("name      %s\nnode_id   %s\nhostnqn   %s\nstate dir %s\nkey       %s%s\n",
		       jstr(res, "name"), jstr(res, "node_id"), jstr(res, "hostnqn"),
		       jstr(res, "state_dir"), jstr(res, "key_file"),
		       json_is_true(json_object_get(res, "key_loaded")) ? " (loaded)" : "");
		if (l)
			printf("listener  %s port %s (NVMe/TCP %s)\n", jstr(l, "traddr"),
			       jstr(l, "trsvcid"), jstr(l, "nvme_trsvcid"));
		json_array_foreach(json_object_get(res, "peers"), i, it)
			printf("peer      %s at %s port %d\n", jstr(it, "name"), jstr(it, "addr"),
			       (int)jint(it, "port"));
	}
	json_decref(res);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_lend_node, "lend node", "this node's lending identity and peers",
"NAME\n"
"    nvlend lend node - this node's name, node id, host NQN, key and peers\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] lend node\n"
"\n"
"DESCRIPTION\n"
"    The host NQN is what lenders allow on their subsystem when this node\n"
"    borrows (it derives from the node id, kept in the state dir).\n",
		cmd_node)

static int
cmd_keygen(struct nvl_cli *cli, int argc, char **argv)
{
	uint8_t key[32];
	char hex[65];
	const char *path;
	int fd, rc = no_options(cli, argc, argv);

	if (rc != CLI_OK)
		return rc;
	rc = one_operand(cli, argc, argv, "the key FILE to create", &path);
	if (rc != CLI_OK)
		return rc;
	if (nvl_random_bytes(key, sizeof(key)) < 0) {
		fprintf(stderr, "nvlend lend keygen: no randomness\n");
		return CLI_ERR;
	}
	for (size_t i = 0; i < sizeof(key); i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		fprintf(stderr, "nvlend lend keygen: %s: %s%s\n", path, strerror(errno),
			errno == EEXIST ? " (not overwriting a key)" : "");
		return CLI_ERR;
	}
	if (nvl_write_all(fd, hex, 64) < 0 || nvl_write_all(fd, "\n", 1) < 0 || fsync(fd) < 0) {
		fprintf(stderr, "nvlend lend keygen: writing %s: %s\n", path, strerror(errno));
		close(fd);
		unlink(path);
		return CLI_ERR;
	}
	close(fd);
	return cli_done(cli, json_pack("{s:s}", "key_file", path),
			"wrote a 256-bit cluster key to %s (mode 0600): copy it to every node "
			"that lends or borrows",
			path);
}
NVL_CLI_COMMAND(g_cmd_lend_keygen, "lend keygen", "make a cluster key file",
"NAME\n"
"    nvlend lend keygen - write a new random cluster key\n"
"\n"
"SYNOPSIS\n"
"    nvlend lend keygen FILE\n"
"\n"
"DESCRIPTION\n"
"    Writes 256 random bits as hex to FILE (created 0600, never overwritten).\n"
"    Every node of the cluster starts nvlendd with --cluster-key FILE (a copy\n"
"    of the same key): peers prove they hold it on every request.\n",
		cmd_keygen)

/* "ADDR", "ADDR:PORT", "[V6]:PORT", "V6" */
static int
split_addr(const char *s, char *addr, size_t len, uint32_t *port)
{
	const char *colon;
	uint64_t v;

	*port = 0;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL || (size_t)(end - s - 1) >= len)
			return -EINVAL;
		memcpy(addr, s + 1, (size_t)(end - s - 1));
		addr[end - s - 1] = '\0';
		if (end[1] == '\0')
			return 0;
		if (end[1] != ':' || nvl_parse_u64(end + 2, 65535, &v) < 0 || v == 0)
			return -EINVAL;
		*port = (uint32_t)v;
		return 0;
	}
	colon = strchr(s, ':');
	if (colon && strchr(colon + 1, ':') == NULL) {
		if ((size_t)(colon - s) >= len || nvl_parse_u64(colon + 1, 65535, &v) < 0 || v == 0)
			return -EINVAL;
		memcpy(addr, s, (size_t)(colon - s));
		addr[colon - s] = '\0';
		*port = (uint32_t)v;
		return 0;
	}
	return nvl_strlcpy(addr, s, len) < 0 ? -EINVAL : 0;
}

static int
cmd_connect(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *p, *res = NULL;
	const char *node;
	char addr[128];
	uint32_t port;
	int rc = no_options(cli, argc, argv);

	if (rc != CLI_OK)
		return rc;
	rc = one_operand(cli, argc, argv, "the peer NODE's ADDRESS[:PORT]", &node);
	if (rc != CLI_OK)
		return rc;
	if (split_addr(node, addr, sizeof(addr), &port) < 0)
		return cli_usage_error(cli, "'%s': expected ADDRESS, ADDRESS:PORT or [IPv6]:PORT",
				       node);
	p = json_pack("{s:s}", "address", addr);
	if (port)
		json_object_set_new(p, "port", json_integer(port));
	rc = cli_call(cli, "lend_connect", p, &res);
	if (rc != CLI_OK)
		return rc;
	{
		char line[300];

		snprintf(line, sizeof(line), "connected to node %s (%s) at %s port %d",
			 jstr(res, "name"), jstr(res, "node_id"), jstr(res, "addr"),
			 (int)jint(res, "port"));
		return cli_done(cli, res, "%s", line);
	}
}
NVL_CLI_COMMAND(g_cmd_lend_connect, "lend connect", "make this node and a peer node known to each other",
"NAME\n"
"    nvlend lend connect - make this node known to a peer node (and it here)\n"
"\n"
"SYNOPSIS\n"
"    nvlend lend connect ADDRESS[:PORT]\n"
"\n"
"DESCRIPTION\n"
"    SmartIO's connect: afterwards each node lists the other's offers and may\n"
"    borrow them. The peer's lend listener is at ADDRESS (port 4430 unless\n"
"    given; IPv6 as [ADDR]:PORT). Both nodes must hold the same cluster key:\n"
"    the request and the answer are authenticated with it.\n",
		cmd_connect)

/* ---- add, remove, available, unavailable ------------------------------------------------- */

static int
cmd_add(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "shared", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	char abs[4096];
	const char *dev;
	json_t *p, *res = NULL;
	bool shared = false;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "s", lo, NULL)) != -1) {
		if (c == 's')
			shared = true;
		else
			return cli_bad_option(cli, argv, lo);
	}
	rc = one_operand(cli, argc, argv, "one DEVICE (a path, a bdev name or brick:NAME)", &dev);
	if (rc != CLI_OK)
		return rc;
	if (strchr(dev, '/') && strncmp(dev, "brick:", 6) != 0 && strncmp(dev, "bdev:", 5) != 0) {
		if (cli_abs_path(dev, abs, sizeof(abs)) < 0)
			return cli_usage_error(cli, "path too long");
		dev = abs;
	}
	p = json_pack("{s:s, s:b}", "device", dev, "shared", shared);
	rc = cli_call(cli, "lend_add", p, &res);
	if (rc != CLI_OK)
		return rc;
	{
		char line[4300];

		snprintf(line, sizeof(line), "lend %d: %s offered%s; 'nvlend lend available %d' lends it",
			 (int)jint(res, "id"), jstr(res, "device"), shared ? " (shared)" : "",
			 (int)jint(res, "id"));
		return cli_done(cli, res, "%s", line);
	}
}
NVL_CLI_COMMAND(g_cmd_lend_add, "lend add", "offer a local device to the connected nodes",
"NAME\n"
"    nvlend lend add - offer a local device\n"
"\n"
"SYNOPSIS\n"
"    nvlend lend add DEVICE [--shared]\n"
"\n"
"DESCRIPTION\n"
"    DEVICE is a file or block device (a path), a bdev of this daemon (its name,\n"
"    or bdev:NAME) or a brick (brick:NAME, all of it). It gets a lend id and is\n"
"    listed by every connected node as unavailable: it stays in local use until\n"
"    'nvlend lend available ID'.\n"
"\n"
"OPTIONS\n"
"    --shared   shared lending (as Dolphin's dis_nvme shares one drive among\n"
"               hosts): many nodes borrow it at once,\n"
"               each with its own controller; no reservation is taken\n",
		cmd_add)

enum simple_kind { SIMPLE_REMOVE, SIMPLE_AVAILABLE, SIMPLE_UNAVAILABLE };

static int
simple_id_call(struct nvl_cli *cli, int argc, char **argv, enum simple_kind kind)
{
	static const char *const methods[] = { "lend_remove", "lend_available",
					       "lend_unavailable" };
	bool has_force = kind == SIMPLE_UNAVAILABLE;
	static const struct option lo[] = {
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *p, *res = NULL;
	const char *s;
	bool force = false;
	uint32_t id = 0;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, has_force ? "f" : "", has_force ? lo : lo + 1,
				NULL)) != -1) {
		if (c == 'f')
			force = true;
		else
			return cli_bad_option(cli, argv, has_force ? lo : lo + 1);
	}
	rc = one_operand(cli, argc, argv, "one lend ID", &s);
	if (rc == CLI_OK)
		rc = parse_id(cli, s, &id);
	if (rc != CLI_OK)
		return rc;
	p = json_pack("{s:i}", "id", (int)id);
	if (force)
		json_object_set_new(p, "force", json_true());
	rc = cli_call(cli, methods[kind], p, &res);
	if (rc != CLI_OK)
		return rc;
	if (kind == SIMPLE_REMOVE)
		return cli_done(cli, res, "lend %d withdrawn", (int)id);
	if (kind == SIMPLE_AVAILABLE)
		return cli_done(cli, res, "lend %d: %s is available to the connected nodes",
				(int)id, jstr(res, "device"));
	return cli_done(cli, res, "lend %d: %s is back for local use", (int)id,
			jstr(res, "device"));
}

static int
cmd_remove(struct nvl_cli *cli, int argc, char **argv)
{
	return simple_id_call(cli, argc, argv, SIMPLE_REMOVE);
}
NVL_CLI_COMMAND(g_cmd_lend_remove, "lend remove", "withdraw an offer",
"NAME\n"
"    nvlend lend remove - withdraw an offer (it must be unavailable)\n"
"\n"
"SYNOPSIS\n"
"    nvlend lend remove ID\n",
		cmd_remove)

static int
cmd_available(struct nvl_cli *cli, int argc, char **argv)
{
	return simple_id_call(cli, argc, argv, SIMPLE_AVAILABLE);
}
NVL_CLI_COMMAND(g_cmd_lend_available, "lend available", "give a device up for remote use",
"NAME\n"
"    nvlend lend available - let remote nodes borrow a device\n"
"\n"
"SYNOPSIS\n"
"    nvlend lend available ID\n"
"\n"
"DESCRIPTION\n"
"    SmartIO's available: the device leaves local use. Refused while it is used\n"
"    here: mounted, open in a process, a loop device on it, attached, exported\n"
"    over NBD or vhost, a namespace or a bdev stack on it. From then on the\n"
"    daemon holds it exclusively (O_EXCL for a block device, an exclusive lock\n"
"    for a file, an exclusive claim for a bdev) and serves it over NVMe/TCP as\n"
"    nqn.2014-08.io.nvlend:lend:NODE:ID, listed in the discovery log.\n",
		cmd_available)

static int
cmd_unavailable(struct nvl_cli *cli, int argc, char **argv)
{
	return simple_id_call(cli, argc, argv, SIMPLE_UNAVAILABLE);
}
NVL_CLI_COMMAND(g_cmd_lend_unavailable, "lend unavailable", "take a lent device back for local use",
"NAME\n"
"    nvlend lend unavailable - take a device back for local use\n"
"\n"
"SYNOPSIS\n"
"    nvlend lend unavailable ID [--force]\n"
"\n"
"DESCRIPTION\n"
"    SmartIO's unavailable. Refused while the device is borrowed.\n"
"\n"
"OPTIONS\n"
"    --force   revoke the borrow: the borrower's controller is torn down and\n"
"              its I/O fails (data it had not written is lost to it); the\n"
"              daemon log says so\n",
		cmd_unavailable)

/* ---- list ------------------------------------------------------------------------------ */

static int
cmd_list(struct nvl_cli *cli, int argc, char **argv)
{
	static const char *const hdr[] = { "ID", "LENDER", "DEVICE", "SIZE", "STATE", "MODE" };
	json_t *res = NULL, *it;
	struct cli_table *t;
	size_t i;
	int rc = no_options(cli, argc, argv);

	if (rc != CLI_OK)
		return rc;
	if (optind != argc)
		return cli_usage_error(cli, "no operands expected");
	rc = cli_call(cli, "lend_list", NULL, &res);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		cli_print_json(res);
		json_decref(res);
		return CLI_OK;
	}
	t = cli_table_new(6, hdr);
	json_array_foreach(json_object_get(res, "offers"), i, it) {
		char id[96], size[32], state[160];

		snprintf(id, sizeof(id), "%s:%d", jstr(it, "lender"), (int)jint(it, "id"));
		if (jint(it, "size"))
			cli_fmt_size(jint(it, "size"), size, sizeof(size));
		else
			snprintf(size, sizeof(size), "-");
		snprintf(state, sizeof(state), "%s%s", jstr(it, "state"),
			 json_is_true(json_object_get(it, "borrowed_here")) ? " (here)" : "");
		cli_table_add(t, id, jstr(it, "lender"), jstr(it, "device"), size, state,
			      json_is_true(json_object_get(it, "shared")) ? "shared" : "exclusive");
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	json_array_foreach(json_object_get(res, "peers"), i, it)
		if (!json_is_true(json_object_get(it, "reachable")))
			fprintf(stderr, "nvlend lend list: %s is unreachable: %s\n", jstr(it, "name"),
				jstr(it, "error"));
	json_decref(res);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_lend_list, "lend list", "devices offered by this node and its peers",
"NAME\n"
"    nvlend lend list - what this node and every connected lender offer\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] lend list\n"
"\n"
"DESCRIPTION\n"
"    One line per offer: ID (LENDER:N, what borrow and return take), lender,\n"
"    device, size, state (unavailable, available, borrowed by NODE; '(here)'\n"
"    when this node holds it) and mode (exclusive or shared). A lender that\n"
"    does not answer is named on stderr.\n",
		cmd_list)

/* ---- borrow / return ---------------------------------------------------------------------- */

/*
 * Run this binary with argv (argv[0] ignored), stdout captured into out
 * (when out != NULL), stderr passed through. \return the exit status, or -1.
 */
static int
run_self(char **argv, char *out, size_t outlen)
{
	int pfd[2] = { -1, -1 }, st;
	size_t got = 0;
	pid_t pid;

	if (out && pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (out)
			dup2(pfd[1], 1);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	if (out) {
		close(pfd[1]);
		for (;;) {
			ssize_t n = read(pfd[0], out + got, outlen - 1 - got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
			if (got == outlen - 1)
				break;
		}
		out[got] = '\0';
		close(pfd[0]);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * One reservation command, waited for. The 16-byte data lives here until the
 * completion (libnvlend's nvl_resv_* helpers pass stack data that NVMe/TCP
 * may send after they returned), so the command is built by hand.
 */
static int
resv_cmd(struct nvl_qpair *qp, uint8_t opc, uint32_t nsid, uint32_t cdw10, uint64_t k1,
	 uint64_t k2, struct nvl_nvme_cpl *cpl)
{
	struct nvl_sync_state st = { 0 };
	struct nvl_nvme_cmd cmd = { 0 };
	uint64_t data[2] = { k1, k2 };

	cmd.opc = opc;
	cmd.nsid = nsid;
	cmd.cdw10 = cdw10;
	return nvl_sync_wait(qp, &st,
			     nvl_submit_raw(qp, &cmd, data, opc == NVL_NVME_IO_RESV_RELEASE ? 8 : 16,
					    NVL_XFER_TO_CTRLR, nvl_sync_cb, &st),
			     cpl);
}

#define RESV_WE ((uint32_t)NVL_NVME_RESV_WRITE_EXCLUSIVE << 8)

/*
 * Take (or release and drop) the Write Exclusive reservation of an
 * exclusive borrow under the node's host NQN. Register (replacing any key
 * this host had), acquire; if the previous borrower's reservation lingers
 * (it expired or was reclaimed), preempt it with its key, which the lender
 * handed over. \return 0, or -errno with a message.
 */
/*
 * The borrow's DH-HMAC-CHAP secrets (in lend_borrow's answer only) into this
 * process's environment, where libnvlend finds them: for the reservation's
 * connection here and for the attach process we start (never its command
 * line), which keeps them for its reconnects.
 */
static void
secrets_to_env(const json_t *r)
{
	if (*jstr(r, "dhchap_key") && *jstr(r, "dhchap_ctrlr_key")) {
		setenv("NVLEND_DHCHAP_KEY", jstr(r, "dhchap_key"), 1);
		setenv("NVLEND_DHCHAP_CTRLR_KEY", jstr(r, "dhchap_ctrlr_key"), 1);
	}
}

static int
borrow_reservation(const json_t *b, bool take)
{
	const char *uri = jstr(b, "uri");
	struct nvl_ctrlr_opts co;
	struct nvl_ctrlr *c = NULL;
	struct nvl_qpair *qp = NULL;
	struct nvl_nvme_cpl cpl = { 0 };
	uint64_t rkey = jint(b, "rkey"), prkey = jint(b, "prkey");
	uint32_t nsid = (uint32_t)jint(b, "nsid");
	const char *what = "connect";
	int rc;

	nvl_ctrlr_opts_default(&co);
	co.hostnqn = jstr(b, "hostnqn");
	co.keepalive_thread = false;
	rc = nvl_ctrlr_connect(uri, &co, &c);
	if (rc < 0) {
		fprintf(stderr, "nvlend lend: cannot connect to %s for the reservation: %s\n", uri,
			nvl_strerror(rc));
		nvl_ctrlr_disconnect(c);
		return rc;
	}
	rc = nvl_qpair_create(c, NULL, &qp);
	if (rc < 0)
		goto out;
	if (take) {
		what = "register";
		/* RREGA replace, IEKEY, CPTPL persist: the lender keeps it across restarts */
		rc = resv_cmd(qp, NVL_NVME_IO_RESV_REGISTER, nsid,
			      NVL_NVME_RESV_REGISTER_REPLACE | 1u << 3 |
				      (uint32_t)NVL_NVME_RESV_CPTPL_PERSIST << 30,
			      0, rkey, &cpl);
		if (rc < 0)
			goto out;
		what = "acquire";
		rc = resv_cmd(qp, NVL_NVME_IO_RESV_ACQUIRE, nsid,
			      NVL_NVME_RESV_ACQUIRE_ACQUIRE | RESV_WE, rkey, 0, &cpl);
		if (rc < 0 && prkey) {
			what = "preempt";
			rc = resv_cmd(qp, NVL_NVME_IO_RESV_ACQUIRE, nsid,
				      NVL_NVME_RESV_ACQUIRE_PREEMPT | RESV_WE, rkey, prkey, &cpl);
		}
	} else {
		what = "release";
		resv_cmd(qp, NVL_NVME_IO_RESV_RELEASE, nsid, NVL_NVME_RESV_RELEASE_RELEASE | RESV_WE,
			 rkey, 0, &cpl);
		what = "unregister";
		rc = resv_cmd(qp, NVL_NVME_IO_RESV_REGISTER, nsid, NVL_NVME_RESV_REGISTER_UNREGISTER,
			      rkey, 0, &cpl);
	}
out:
	if (rc < 0)
		fprintf(stderr, "nvlend lend: reservation (%s) on %s: %s\n", what, uri,
			rc == -EREMOTEIO ? nvl_status_str(nvl_cpl_status(&cpl)) : strerror(-rc));
	nvl_qpair_destroy(qp);
	nvl_ctrlr_disconnect(c);
	return rc;
}

static void
return_quietly(struct nvl_cli *cli, const char *ref)
{
	json_t *res = NULL;

	if (cli_call_quiet(cli, "lend_return", json_pack("{s:s}", "id", ref), &res) == CLI_OK)
		json_decref(res);
}

static int
cmd_borrow(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "via", required_argument, NULL, 'v' },
		{ "queues", required_argument, NULL, 'q' },
		{ "qd", required_argument, NULL, 'd' },
		{ "reconnect-timeout", required_argument, NULL, 'T' },
		{ "no-attach", no_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	char *av[24], dev[4096], ref[128];
	const char *id, *via = NULL, *queues = NULL, *qd = NULL, *rto = NULL;
	json_t *res = NULL;
	bool attach = true;
	int c, rc, n = 0;

	optind = 0;
	while ((c = getopt_long(argc, argv, "v:q:d:T:N", lo, NULL)) != -1) {
		switch (c) {
		case 'v': via = optarg; break;
		case 'q': queues = optarg; break;
		case 'd': qd = optarg; break;
		case 'T': rto = optarg; break;
		case 'N': attach = false; break;
		default: return cli_bad_option(cli, argv, lo);
		}
	}
	rc = one_operand(cli, argc, argv, "one lend ID (LENDER:N, see 'nvlend lend list')", &id);
	if (rc != CLI_OK)
		return rc;
	rc = cli_call(cli, "lend_borrow", json_pack("{s:s}", "id", id), &res);
	if (rc != CLI_OK)
		return rc;
	secrets_to_env(res);
	snprintf(ref, sizeof(ref), "%s:%d", jstr(res, "lender"), (int)jint(res, "id"));
	if (!json_is_true(json_object_get(res, "shared")) && borrow_reservation(res, true) < 0) {
		fprintf(stderr, "nvlend lend borrow: %s: cannot take the reservation; returning it\n",
			ref);
		return_quietly(cli, ref);
		json_decref(res);
		return CLI_ERR;
	}
	if (!attach) {
		cli_done(cli, res, "borrowed %s: %s (host NQN %s)", ref, jstr(res, "uri"),
			 jstr(res, "hostnqn"));
		return CLI_OK;
	}

	av[n++] = "nvlend";
	av[n++] = "attach";
	av[n++] = (char *)jstr(res, "uri");
	av[n++] = "--hostnqn";
	av[n++] = (char *)jstr(res, "hostnqn");
	av[n++] = "--name";
	av[n++] = (char *)jstr(res, "attach_name");
	if (via) {
		av[n++] = "--via";
		av[n++] = (char *)via;
	}
	if (queues) {
		av[n++] = "--queues";
		av[n++] = (char *)queues;
	}
	if (qd) {
		av[n++] = "--qd";
		av[n++] = (char *)qd;
	}
	if (rto) {
		av[n++] = "--reconnect-timeout";
		av[n++] = (char *)rto;
	}
	av[n] = NULL;
	rc = run_self(av, dev, sizeof(dev));
	dev[strcspn(dev, "\n")] = '\0';
	if (rc != 0 || dev[0] == '\0') {
		fprintf(stderr, "nvlend lend borrow: %s: attaching failed; returning it\n", ref);
		if (!json_is_true(json_object_get(res, "shared")))
			borrow_reservation(res, false);
		return_quietly(cli, ref);
		json_decref(res);
		return CLI_ERR;
	}
	json_object_set_new(res, "device", json_string(dev));
	json_object_del(res, "dhchap_key"); /* the attachment has them; not for the terminal */
	json_object_del(res, "dhchap_ctrlr_key");
	return cli_done(cli, res, "%s", dev);
}
NVL_CLI_COMMAND(g_cmd_lend_borrow, "lend borrow", "borrow a device and attach it here",
"NAME\n"
"    nvlend lend borrow - borrow a device and make it a block device here\n"
"\n"
"SYNOPSIS\n"
"    nvlend lend borrow ID [--via MECH] [--queues N] [--qd N]\n"
"                      [--reconnect-timeout SECS] [--no-attach]\n"
"\n"
"DESCRIPTION\n"
"    SmartIO's borrow. ID is LENDER:N as 'nvlend lend list' shows it (N alone\n"
"    when one lender is connected). The lender allows this node's host NQN\n"
"    (nvlend lend node) on the device's subsystem, exclusively unless the offer\n"
"    is shared; this node's daemon keeps the lease alive (if it dies, the\n"
"    lender takes the device back after the lease). For an exclusive borrow\n"
"    the Write Exclusive reservation is taken under this node's host NQN, so a\n"
"    second path cannot write. Then the device is attached with 'nvlend attach'\n"
"    (attachment name lend-LENDER-N) and its path printed; it survives a\n"
"    lender restart like any attachment.\n"
"\n"
"OPTIONS\n"
"    --via, --queues, --qd, --reconnect-timeout   as for 'nvlend attach'\n"
"    --no-attach   only borrow (and reserve); print the URI\n",
		cmd_borrow)

static int
cmd_return(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *bs = NULL, *b = NULL, *it, *res = NULL;
	const char *id, *colon;
	char *av[8], ref[128];
	bool force = false;
	size_t i;
	int c, rc, n = 0;

	optind = 0;
	while ((c = getopt_long(argc, argv, "f", lo, NULL)) != -1) {
		if (c == 'f')
			force = true;
		else
			return cli_bad_option(cli, argv, lo);
	}
	rc = one_operand(cli, argc, argv, "one lend ID (LENDER:N)", &id);
	if (rc != CLI_OK)
		return rc;
	rc = cli_call(cli, "lend_get_borrows", NULL, &bs);
	if (rc != CLI_OK)
		return rc;
	colon = strrchr(id, ':');
	json_array_foreach(bs, i, it) {
		char r[128];

		snprintf(r, sizeof(r), "%s:%d", jstr(it, "lender"), (int)jint(it, "id"));
		if (strcmp(r, id) == 0 ||
		    (colon == NULL && strcmp(strchr(r, ':') + 1, id) == 0)) {
			b = it;
			break;
		}
	}
	if (b == NULL) {
		fprintf(stderr, "nvlend lend return: this node has not borrowed %s\n", id);
		json_decref(bs);
		return CLI_ERR;
	}
	snprintf(ref, sizeof(ref), "%s:%d", jstr(b, "lender"), (int)jint(b, "id"));
	av[n++] = "nvlend";
	av[n++] = "detach";
	if (force)
		av[n++] = "--force";
	av[n++] = (char *)jstr(b, "attach_name");
	av[n] = NULL;
	/* detach refuses while mounted; an attachment already gone is fine */
	{
		char out[1024];

		rc = run_self(av, out, sizeof(out));
		if (rc != 0 && strstr(out, "is not attached") == NULL) {
			char *av2[] = { "nvlend", "attachments", NULL };
			char list[8192];

			run_self(av2, list, sizeof(list));
			if (strstr(list, jstr(b, "attach_name"))) {
				fprintf(stderr, "nvlend lend return: %s stays borrowed\n", ref);
				json_decref(bs);
				return CLI_ERR;
			}
		}
	}
	if (!json_is_true(json_object_get(b, "shared"))) {
		json_t *again = NULL;

		/* asking for a borrow we hold answers it again, with its secrets */
		if (cli_call(cli, "lend_borrow", json_pack("{s:s}", "id", ref), &again) == CLI_OK)
			secrets_to_env(again);
		json_decref(again);
		borrow_reservation(b, false);
	}
	rc = cli_call(cli, "lend_return", json_pack("{s:s}", "id", ref), &res);
	json_decref(bs);
	if (rc != CLI_OK)
		return rc;
	if (json_object_get(res, "warning"))
		fprintf(stderr, "nvlend lend return: %s\n", jstr(res, "warning"));
	return cli_done(cli, res, "returned %s", ref);
}
NVL_CLI_COMMAND(g_cmd_lend_return, "lend return", "detach a borrowed device and give it back",
"NAME\n"
"    nvlend lend return - give a borrowed device back\n"
"\n"
"SYNOPSIS\n"
"    nvlend lend return ID [--force]\n"
"\n"
"DESCRIPTION\n"
"    SmartIO's return: detaches the device (refused while it or a partition is\n"
"    mounted, as 'nvlend detach' is), releases the reservation and tells the\n"
"    lender, which makes it available to others again. If the lender does not\n"
"    answer, the borrow ends when its lease runs out there.\n"
"\n"
"OPTIONS\n"
"    --force   detach with 'nvlend detach --force' (lazy unmount first)\n",
		cmd_return)
