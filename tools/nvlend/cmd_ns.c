/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvlend ns ...: act as a host on a namespace through libnvlend (any URI:
 * nvme+shm, nvme+tcp or nvme+rdma): info, read, write, flush, and the reservation
 * commands a shared-disk cluster uses to fence a dead host.
 */
#include "../exitcode.h"
#include "cli.h"
#include "nvlend/nvlend.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ns_ctx {
	struct nvl_ctrlr *c;
	struct nvl_qpair *qp;
	uint32_t nsid;
	struct nvl_ns_info info;
};

static int
ns_open(struct nvl_cli *cli, const char *uri, const char *hostnqn, uint32_t nsid,
	struct ns_ctx *x)
{
	struct nvl_ctrlr_opts o;
	int rc;

	memset(x, 0, sizeof(*x));
	nvl_ctrlr_opts_default(&o);
	o.hostnqn = hostnqn;
	o.keepalive_thread = false; /* short-lived: no keep-alive traffic needed */
	o.window_bytes = 8ULL << 20;
	rc = nvl_ctrlr_connect(uri, &o, &x->c);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot connect to %s: %s\n", cli->prog, uri, nvl_strerror(rc));
		return nvl_exit_for(rc);
	}
	x->nsid = nsid ? nsid : nvl_ctrlr_default_nsid(x->c);
	rc = x->nsid ? nvl_ns_get_info(x->c, x->nsid, &x->info) : -ENOENT;
	if (rc < 0) {
		rc = rc == -ENOENT ? -ENXIO : rc; /* nvl_ns_get_info's "not active" */
		fprintf(stderr, "%s: namespace %u: %s\n", cli->prog, x->nsid, nvl_strerror(rc));
		nvl_ctrlr_disconnect(x->c);
		return nvl_exit_for(rc);
	}
	rc = nvl_qpair_create(x->c, NULL, &x->qp);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot create an I/O queue: %s\n", cli->prog, strerror(-rc));
		nvl_ctrlr_disconnect(x->c);
		return CLI_ERR;
	}
	return CLI_OK;
}

static void
ns_close(struct ns_ctx *x)
{
	nvl_qpair_destroy(x->qp);
	nvl_ctrlr_disconnect(x->c);
}

static int
report_cpl(struct nvl_cli *cli, const char *what, int rc, const struct nvl_nvme_cpl *cpl)
{
	if (rc == -EREMOTEIO) {
		fprintf(stderr, "%s: %s: %s (NVMe status 0x%03x)\n", cli->prog, what,
			nvl_status_str(nvl_cpl_status(cpl)), nvl_cpl_status(cpl));
		return CLI_ERR;
	}
	if (rc < 0) {
		fprintf(stderr, "%s: %s: %s\n", cli->prog, what, strerror(-rc));
		return CLI_ERR;
	}
	return CLI_OK;
}

static void
hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* The authentication options every ns command takes (docs/security.md). */
#define NS_DHCHAP_HELP                                                                           \
	"\n"                                                                                     \
	"    --dhchap-key KEY        authenticate with DH-HMAC-CHAP when the subsystem\n"          \
	"                            asks (NVMe in-band authentication): KEY is a file\n"         \
	"                            holding a DHHC-1 secret (mode 0600, e.g. made by\n"          \
	"                            `nvlend keyring gen`) or the secret itself (seen by\n"       \
	"                            ps: prefer the file); default $NVLEND_DHCHAP_KEY\n"         \
	"    --dhchap-ctrlr-key KEY  the controller must prove itself with this key too\n"        \
	"                            (bidirectional); default $NVLEND_DHCHAP_CTRLR_KEY\n"

/* Common options: --hostnqn, --nsid; returns index of the first operand. */
struct common_opts {
	const char *hostnqn;
	uint32_t nsid;
	uint64_t lba, count, crkey, nrkey, prkey;
	bool have_crkey, have_nrkey, have_prkey;
	const char *action, *type, *ptpl, *output;
	bool fua, iekey, eds;
};

static int
parse_common(struct nvl_cli *cli, int argc, char **argv, struct common_opts *co)
{
	static const struct option lo[] = {
		{ "hostnqn", required_argument, NULL, 'H' },
		{ "nsid", required_argument, NULL, 'n' },
		{ "lba", required_argument, NULL, 'l' },
		{ "count", required_argument, NULL, 'c' },
		{ "crkey", required_argument, NULL, 'C' },
		{ "nrkey", required_argument, NULL, 'N' },
		{ "prkey", required_argument, NULL, 'P' },
		{ "action", required_argument, NULL, 'a' },
		{ "type", required_argument, NULL, 't' },
		{ "ptpl", required_argument, NULL, 'p' },
		{ "output", required_argument, NULL, 'o' },
		{ "fua", no_argument, NULL, 'F' },
		{ "iekey", no_argument, NULL, 'I' },
		{ "eds", no_argument, NULL, 'E' },
		{ "dhchap-key", required_argument, NULL, 'k' },
		{ "dhchap-ctrlr-key", required_argument, NULL, 'K' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int ch;

	memset(co, 0, sizeof(*co));
	co->count = 1;
	optind = 0; /* glibc: full re-initialisation (main already parsed) */
	while ((ch = getopt_long(argc, argv, "H:n:l:c:o:", lo, NULL)) != -1) {
		switch (ch) {
		case 'H': co->hostnqn = optarg; break;
		/* libnvlend reads the keys from its environment (host.h) */
		case 'k': setenv("NVLEND_DHCHAP_KEY", optarg, 1); break;
		case 'K': setenv("NVLEND_DHCHAP_CTRLR_KEY", optarg, 1); break;
		case 'n':
			if (cli_parse_u64(optarg, "--nsid", 0xfffffffe, &v) != CLI_OK || v == 0)
				return -1;
			co->nsid = (uint32_t)v;
			break;
		case 'l':
			if (cli_parse_u64(optarg, "--lba", UINT64_MAX >> 1, &co->lba) != CLI_OK)
				return -1;
			break;
		case 'c':
			if (cli_parse_u64(optarg, "--count", 65536, &co->count) != CLI_OK ||
			    co->count == 0)
				return -1;
			break;
		case 'C':
			if (cli_parse_u64(optarg, "--crkey", UINT64_MAX, &co->crkey) != CLI_OK)
				return -1;
			co->have_crkey = true;
			break;
		case 'N':
			if (cli_parse_u64(optarg, "--nrkey", UINT64_MAX, &co->nrkey) != CLI_OK)
				return -1;
			co->have_nrkey = true;
			break;
		case 'P':
			if (cli_parse_u64(optarg, "--prkey", UINT64_MAX, &co->prkey) != CLI_OK)
				return -1;
			co->have_prkey = true;
			break;
		case 'a': co->action = optarg; break;
		case 't': co->type = optarg; break;
		case 'p': co->ptpl = optarg; break;
		case 'o': co->output = optarg; break;
		case 'F': co->fua = true; break;
		case 'I': co->iekey = true; break;
		case 'E': co->eds = true; break;
		default:
			cli_bad_option(cli, argv, lo);
			return -1;
		}
	}
	return optind;
}

static int
cmd_ns_info(struct nvl_cli *cli, int argc, char **argv)
{
	struct common_opts co;
	struct ns_ctx x;
	const struct nvl_nvme_id_ctrl *id;
	char nguid[33], uuid[33], eui[17], mn[41], sn[21];
	int i, rc;

	i = parse_common(cli, argc, argv, &co);
	if (i < 0)
		return CLI_USAGE;
	if (argc - i != 1)
		return cli_usage_error(cli, "expected URI");
	rc = ns_open(cli, argv[i], co.hostnqn, co.nsid, &x);
	if (rc != CLI_OK)
		return rc;
	id = nvl_ctrlr_identify(x.c);
	hex(x.info.nguid, 16, nguid);
	hex(x.info.uuid, 16, uuid);
	hex(x.info.eui64, 8, eui);
	memcpy(mn, id->mn, 40);
	mn[40] = '\0';
	memcpy(sn, id->sn, 20);
	sn[20] = '\0';
	for (int k = 39; k >= 0 && mn[k] == ' '; k--)
		mn[k] = '\0';
	for (int k = 19; k >= 0 && sn[k] == ' '; k--)
		sn[k] = '\0';
	if (cli->json) {
		json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:s, s:i, s:I, s:I, s:s, s:s, s:s, s:b, "
				      "s:b, s:i}",
				      "subnqn", id->subnqn, "cntlid", (int)nvl_ctrlr_cntlid(x.c),
				      "model", mn, "serial", sn, "hostnqn", nvl_ctrlr_hostnqn(x.c),
				      "nsid", (int)x.nsid, "num_blocks", (json_int_t)x.info.num_blocks,
				      "block_size", (json_int_t)x.info.block_size, "nguid", nguid,
				      "uuid", uuid, "eui64", eui, "read_only", x.info.read_only,
				      "shared", x.info.shared, "rescap", (int)x.info.rescap);
		cli_print_json(o);
		json_decref(o);
	} else {
		char size[32];

		cli_fmt_size(x.info.num_blocks * x.info.block_size, size, sizeof(size));
		printf("subsystem:  %s\ncontroller: %u (%s, serial %s)\nhost:       %s\n",
		       id->subnqn, nvl_ctrlr_cntlid(x.c), mn, sn, nvl_ctrlr_hostnqn(x.c));
		printf("namespace:  %u, %s (%" PRIu64 " blocks of %u bytes)%s%s\n", x.nsid, size,
		       x.info.num_blocks, x.info.block_size, x.info.read_only ? ", read-only" : "",
		       x.info.shared ? ", shared" : "");
		printf("nguid:      %s\nuuid:       %s\neui64:      %s\n", nguid, uuid, eui);
		printf("reservations: %s%s\n", x.info.rescap & 0x7e ? "all six types" : "none",
		       x.info.rescap & 1 ? ", persist through power loss" : "");
	}
	ns_close(&x);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_ns_info, "ns info", "identify a namespace as a host sees it",
"NAME\n"
"    nvlend ns info - connect as a host and identify a namespace\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] ns info URI [--hostnqn NQN] [--nsid N]\n"
"        [--dhchap-key KEY [--dhchap-ctrlr-key KEY]]\n"
"\n"
"    URI: nvme+shm:///SOCKET?nqn=NQN[&nsid=N], nvme+tcp://HOST:PORT/NQN[/NSID],\n"
"    nvme+rdma://HOST:PORT/NQN[/NSID] (NVMe/RDMA: docs/rdma.md) or\n"
"    nvme+fn:///SOCKET[?nsid=N] (a function's endpoint, docs/functions.md).\n"
"    Does not need the daemon's RPC socket: it is a host, like nvme-cli.\n"
NS_DHCHAP_HELP,
		cmd_ns_info)

static int
cmd_ns_read(struct nvl_cli *cli, int argc, char **argv)
{
	struct common_opts co;
	struct nvl_nvme_cpl cpl;
	struct ns_ctx x;
	FILE *out = stdout;
	void *buf;
	int i, rc;

	i = parse_common(cli, argc, argv, &co);
	if (i < 0)
		return CLI_USAGE;
	if (argc - i != 1)
		return cli_usage_error(cli, "expected URI");
	rc = ns_open(cli, argv[i], co.hostnqn, co.nsid, &x);
	if (rc != CLI_OK)
		return rc;
	if (co.count * x.info.block_size > nvl_ctrlr_max_xfer(x.c)) {
		uint32_t most = nvl_ctrlr_max_xfer(x.c) / x.info.block_size;

		ns_close(&x); /* frees x.c */
		return cli_usage_error(cli, "--count too large (at most %u blocks per command)",
				       most);
	}
	buf = nvl_buf_alloc(x.c, co.count * x.info.block_size);
	rc = nvl_read_sync(x.qp, x.nsid, buf, co.lba, (uint32_t)co.count, &cpl);
	rc = report_cpl(cli, "read", rc, &cpl);
	if (rc == CLI_OK) {
		if (co.output && (out = fopen(co.output, "wb")) == NULL) {
			fprintf(stderr, "%s: cannot write %s\n", cli->prog, co.output);
			rc = CLI_ERR;
		} else if (fwrite(buf, x.info.block_size, co.count, out) != co.count) {
			rc = CLI_ERR;
		}
		if (out && out != stdout)
			fclose(out);
	}
	nvl_buf_free(x.c, buf);
	ns_close(&x);
	return rc;
}
NVL_CLI_COMMAND(g_cmd_ns_read, "ns read", "read blocks to stdout",
"NAME\n"
"    nvlend ns read - read logical blocks as a host\n"
"\n"
"SYNOPSIS\n"
"    nvlend ns read URI [--lba N] [--count N] [-o FILE] [--hostnqn NQN] [--nsid N]\n"
"        [--dhchap-key KEY [--dhchap-ctrlr-key KEY]]\n"
"\n"
"    Writes count blocks starting at lba to stdout (or FILE). Exit 1 with the\n"
"    NVMe status (e.g. reservation conflict, LBA out of range) on failure.\n"
NS_DHCHAP_HELP,
		cmd_ns_read)

static int
cmd_ns_write(struct nvl_cli *cli, int argc, char **argv)
{
	struct common_opts co;
	struct nvl_nvme_cpl cpl;
	struct ns_ctx x;
	uint8_t *buf;
	size_t len = 0, cap;
	uint32_t nlb;
	int i, rc;

	i = parse_common(cli, argc, argv, &co);
	if (i < 0)
		return CLI_USAGE;
	if (argc - i != 1)
		return cli_usage_error(cli, "expected URI (data comes from stdin)");
	rc = ns_open(cli, argv[i], co.hostnqn, co.nsid, &x);
	if (rc != CLI_OK)
		return rc;
	cap = nvl_ctrlr_max_xfer(x.c);
	buf = nvl_buf_alloc(x.c, cap);
	while (len < cap) {
		ssize_t n = read(0, buf + len, cap - len);

		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (len == 0) {
		nvl_buf_free(x.c, buf);
		ns_close(&x);
		return cli_usage_error(cli, "no data on stdin");
	}
	nlb = (uint32_t)((len + x.info.block_size - 1) / x.info.block_size);
	memset(buf + len, 0, (size_t)nlb * x.info.block_size - len); /* pad the last block */
	rc = nvl_write_sync(x.qp, x.nsid, buf, co.lba, nlb, co.fua ? NVL_IO_FUA : 0, &cpl);
	rc = report_cpl(cli, "write", rc, &cpl);
	nvl_buf_free(x.c, buf);
	ns_close(&x);
	if (rc != CLI_OK)
		return rc;
	{
		size_t padded = (size_t)nlb * x.info.block_size - len;
		char pad[96] = "";

		if (padded)
			snprintf(pad, sizeof(pad), "; the last block was padded with %zu zero byte%s",
				 padded, padded == 1 ? "" : "s");
		return cli_done(cli,
				json_pack("{s:I, s:I, s:I, s:I, s:I}", "nsid", (json_int_t)x.nsid,
					  "lba", (json_int_t)co.lba, "blocks", (json_int_t)nlb,
					  "bytes", (json_int_t)len, "padding", (json_int_t)padded),
				"wrote %zu bytes to namespace %u: %u block%s at LBA %llu%s%s", len,
				x.nsid, nlb, nlb == 1 ? "" : "s", (unsigned long long)co.lba,
				co.fua ? " (FUA)" : "", pad);
	}
}
NVL_CLI_COMMAND(g_cmd_ns_write, "ns write", "write stdin to blocks",
"NAME\n"
"    nvlend ns write - write logical blocks as a host\n"
"\n"
"SYNOPSIS\n"
"    nvlend ns write URI [--lba N] [--fua] [--hostnqn NQN] [--nsid N]\n"
"        [--dhchap-key KEY [--dhchap-ctrlr-key KEY]] < DATA\n"
"\n"
"    Writes stdin (up to one command's maximum transfer, zero-padded to whole\n"
"    blocks) at lba.\n"
NS_DHCHAP_HELP,
		cmd_ns_write)

static int
resv_type(const char *s)
{
	static const char *const names[] = { NULL, "we", "ea", "we-ro", "ea-ro", "we-ar", "ea-ar" };

	if (s == NULL)
		return -1;
	for (int t = 1; t <= 6; t++)
		if (strcmp(s, names[t]) == 0)
			return t;
	if (s[0] >= '1' && s[0] <= '6' && s[1] == '\0')
		return s[0] - '0';
	return -1;
}

static const char *
resv_type_name(int t)
{
	static const char *const n[] = { "none", "write exclusive", "exclusive access",
					 "write exclusive, registrants only",
					 "exclusive access, registrants only",
					 "write exclusive, all registrants",
					 "exclusive access, all registrants" };

	return t >= 0 && t <= 6 ? n[t] : "?";
}

static int
cmd_ns_resv(struct nvl_cli *cli, int argc, char **argv)
{
	const char *sub = argv[0];
	struct nvl_sync_state st = { 0 };
	struct common_opts co;
	struct nvl_nvme_cpl cpl;
	struct ns_ctx x;
	int i, rc, type = 0, action = 0;

	i = parse_common(cli, argc, argv, &co);
	if (i < 0)
		return CLI_USAGE;
	if (argc - i != 1)
		return cli_usage_error(cli, "expected URI");
	if (strcmp(sub, "register") == 0) {
		if (!co.have_nrkey && (!co.action || strcmp(co.action, "unregister")))
			return cli_usage_error(cli, "--nrkey is required");
		action = !co.action || !strcmp(co.action, "register") ? 0
			 : !strcmp(co.action, "unregister")	      ? 1
			 : !strcmp(co.action, "replace")		      ? 2
								      : -1;
		if (co.ptpl && strcmp(co.ptpl, "on") && strcmp(co.ptpl, "off"))
			return cli_usage_error(cli, "--ptpl takes on or off");
	} else if (strcmp(sub, "acquire") == 0) {
		type = resv_type(co.type);
		action = !co.action || !strcmp(co.action, "acquire") ? 0
			 : !strcmp(co.action, "preempt")	     ? 1
			 : !strcmp(co.action, "preempt-abort")     ? 2
								     : -1;
		if (type < 0)
			return cli_usage_error(cli, "--type: we, ea, we-ro, ea-ro, we-ar, ea-ar or 1-6");
	} else if (strcmp(sub, "release") == 0) {
		type = co.type ? resv_type(co.type) : 0;
		action = !co.action || !strcmp(co.action, "release") ? 0
			 : !strcmp(co.action, "clear")		     ? 1
								     : -1;
		if (type < 0)
			return cli_usage_error(cli, "--type: we, ea, we-ro, ea-ro, we-ar, ea-ar or 1-6");
	}
	if (action < 0)
		return cli_usage_error(cli, "unknown --action '%s'", co.action);
	rc = ns_open(cli, argv[i], co.hostnqn, co.nsid, &x);
	if (rc != CLI_OK)
		return rc;
	if (strcmp(sub, "register") == 0) {
		uint8_t cptpl = !co.ptpl ? 0 : strcmp(co.ptpl, "on") == 0 ? 3 : 2;

		rc = nvl_sync_wait(x.qp, &st,
				   nvl_resv_register(x.qp, x.nsid, (uint8_t)action, co.crkey, co.nrkey,
						     co.iekey, cptpl, nvl_sync_cb, &st),
				   &cpl);
		rc = report_cpl(cli, "reservation register", rc, &cpl);
		if (rc == CLI_OK)
			rc = cli_done(cli, json_pack("{s:s, s:I}", "action",
						     co.action ? co.action : "register", "key",
						     (json_int_t)co.nrkey),
				      action == 1 ? "unregistered from namespace %u"
				      : action == 2 ? "replaced the key on namespace %u"
						    : "registered on namespace %u",
				      x.nsid);
	} else if (strcmp(sub, "acquire") == 0) {
		rc = nvl_sync_wait(x.qp, &st,
				   nvl_resv_acquire(x.qp, x.nsid, (uint8_t)action, (uint8_t)type,
						    co.crkey, co.prkey, nvl_sync_cb, &st),
				   &cpl);
		rc = report_cpl(cli, "reservation acquire", rc, &cpl);
		if (rc == CLI_OK)
			rc = cli_done(cli, json_pack("{s:s, s:i}", "action",
						     co.action ? co.action : "acquire", "type", type),
				      "%s a reservation of type %d on namespace %u",
				      action == 0 ? "acquired" : "preempted and took", type, x.nsid);
	} else if (strcmp(sub, "release") == 0) {
		rc = nvl_sync_wait(x.qp, &st,
				   nvl_resv_release(x.qp, x.nsid, (uint8_t)action, (uint8_t)type,
						    co.crkey, nvl_sync_cb, &st),
				   &cpl);
		rc = report_cpl(cli, "reservation release", rc, &cpl);
		if (rc == CLI_OK)
			rc = cli_done(cli, json_pack("{s:s}", "action",
						     co.action ? co.action : "release"),
				      "%s the reservation on namespace %u",
				      action == 1 ? "cleared" : "released", x.nsid);
	} else {
		uint8_t *buf = nvl_buf_alloc(x.c, 4096);
		const struct nvl_nvme_resv_status *h = (void *)buf;

		rc = nvl_sync_wait(x.qp, &st,
				   nvl_resv_report(x.qp, x.nsid, buf, 4096, true, nvl_sync_cb, &st),
				   &cpl);
		rc = report_cpl(cli, "reservation report", rc, &cpl);
		if (rc == CLI_OK) {
			json_t *regs = json_array();
			unsigned n = h->regctl > 63 ? 63 : h->regctl;

			for (unsigned k = 0; k < n; k++) {
				const struct nvl_nvme_registered_ctrlr_ext *e =
					(const void *)(buf + 64 + k * 64);
				char hid[33];

				hex(e->hostid, 16, hid);
				json_array_append_new(regs, json_pack("{s:s, s:I, s:b}", "hostid",
								      hid, "rkey", (json_int_t)e->rkey,
								      "holder", e->rcsts & 1));
			}
			if (cli->json) {
				json_t *o = json_pack("{s:I, s:i, s:s, s:b, s:o}", "generation",
						      (json_int_t)h->gen, "rtype", (int)h->rtype,
						      "type", resv_type_name(h->rtype), "ptpl",
						      h->ptpls & 1, "registrants", regs);

				cli_print_json(o);
				json_decref(o);
			} else {
				size_t k;
				json_t *e;

				printf("generation %u, reservation: %s%s, %u registrant(s)\n", h->gen,
				       resv_type_name(h->rtype), h->ptpls ? " (persists)" : "",
				       h->regctl);
				json_array_foreach(regs, k, e)
					printf("  host %s key 0x%llx%s\n",
					       json_string_value(json_object_get(e, "hostid")),
					       (unsigned long long)json_integer_value(json_object_get(e, "rkey")),
					       json_is_true(json_object_get(e, "holder")) ? " (holder)" : "");
				json_decref(regs);
			}
		}
		nvl_buf_free(x.c, buf);
	}
	ns_close(&x);
	return rc;
}

#define RESV_COMMON                                                                                \
	"    URI: nvme+shm:///SOCKET?nqn=NQN, nvme+tcp://HOST:PORT/NQN or\n"                     \
	"    nvme+rdma://HOST:PORT/NQN. The host is\n"                                         \
	"    --hostnqn (default: this machine's); registrations belong to hosts and\n"           \
	"    outlive their connections, so a dead host stays registered until another\n"        \
	"    preempts it. Keys accept decimal or 0x hex. Exit 1 with the NVMe status\n"         \
	"    (e.g. \"reservation conflict\") when refused. --dhchap-key and\n"                  \
	"    --dhchap-ctrlr-key as for 'nvlend ns info'.\n"

NVL_CLI_COMMAND(g_cmd_ns_resv_register, "ns resv register", "register (or unregister/replace) a key",
"NAME\n"
"    nvlend ns resv register - Reservation Register\n"
"\n"
"SYNOPSIS\n"
"    nvlend ns resv register URI --nrkey KEY [--crkey KEY]\n"
"          [--action register|unregister|replace] [--iekey] [--ptpl on|off]\n"
"\n" RESV_COMMON
"    --ptpl on makes registrations and the reservation survive a daemon restart\n"
"    (the namespace needs a ptpl_file).\n",
		cmd_ns_resv)
NVL_CLI_COMMAND(g_cmd_ns_resv_acquire, "ns resv acquire", "acquire or preempt a reservation",
"NAME\n"
"    nvlend ns resv acquire - Reservation Acquire\n"
"\n"
"SYNOPSIS\n"
"    nvlend ns resv acquire URI --crkey KEY --type TYPE\n"
"          [--action acquire|preempt|preempt-abort --prkey KEY]\n"
"\n"
"    TYPE: we (write exclusive), ea (exclusive access), we-ro / ea-ro\n"
"    (registrants only), we-ar / ea-ar (all registrants), or 1-6.\n"
"    Fencing a dead host: preempt with its key as --prkey.\n"
"\n" RESV_COMMON,
		cmd_ns_resv)
NVL_CLI_COMMAND(g_cmd_ns_resv_release, "ns resv release", "release or clear a reservation",
"NAME\n"
"    nvlend ns resv release - Reservation Release\n"
"\n"
"SYNOPSIS\n"
"    nvlend ns resv release URI --crkey KEY [--type TYPE] [--action release|clear]\n"
"\n" RESV_COMMON,
		cmd_ns_resv)
NVL_CLI_COMMAND(g_cmd_ns_resv_report, "ns resv report", "show registrants and the reservation",
"NAME\n"
"    nvlend ns resv report - Reservation Report (extended: 128-bit host ids)\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] ns resv report URI [--hostnqn NQN]\n",
		cmd_ns_resv)
