/* SPDX-License-Identifier: BSD-3-Clause */
/* nvlend vblk ...: virtio-blk functions for VMs over vhost-user-blk (create, destroy, list);
 * nvlend function list: the function tree (PFs, VFs, vectors; docs/functions.md). */
#include "cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
cmd_vblk_create(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "queues", required_argument, NULL, 'q' },
		{ "queue-size", required_argument, NULL, 'Q' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "force-in-order", no_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t nq = 1, qs = 0;
	bool ro = false, in_order = false;
	char path[PATH_MAX];
	const char *sock;
	json_t *params, *result;
	int c, rc;

	optind = 0;   /* 0: full re-initialisation, so options may follow operands */
	while ((c = getopt_long(argc, argv, "q:Q:ro", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			if (cli_parse_u64(optarg, "--queues", 32, &nq) != CLI_OK)
				return CLI_USAGE;
			if (nq == 0)
				return cli_usage_error(cli, "--queues must be 1..32");
			break;
		case 'Q':
			if (cli_parse_u64(optarg, "--queue-size", 1024, &qs) != CLI_OK)
				return CLI_USAGE;
			if (qs == 0 || (qs & (qs - 1)))
				return cli_usage_error(cli, "--queue-size must be a power of two "
							    "up to 1024");
			break;
		case 'r':
			ro = true;
			break;
		case 'o':
			in_order = true;
			break;
		default:
			return cli_bad_option(cli, argv, opts);
		}
	}
	if (argc - optind != 3)
		return cli_usage_error(cli, "expected NAME BDEV SOCKET");
	/* the daemon resolves relative paths from its own cwd: send an absolute one */
	sock = argv[optind + 2];
	if (sock[0] != '/') {
		if (cli_abs_path(sock, path, sizeof(path)) < 0) {
			fprintf(stderr, "nvlend: cannot make %s absolute\n", sock);
			return CLI_ERR;
		}
		sock = path;
	}
	params = json_pack("{s:s, s:s, s:s, s:I, s:b, s:b}", "name", argv[optind], "bdev",
			   argv[optind + 1], "socket", sock, "num_queues", (json_int_t)nq,
			   "read_only", ro, "force_in_order", in_order);
	if (qs)
		json_object_set_new(params, "queue_size", json_integer((json_int_t)qs));
	rc = cli_call(cli, "virtio_blk_controller_create", params, &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	return cli_done(cli, cli_get_object(cli, "virtio_blk_controller_list", "name", argv[optind]),
			"virtio-blk controller %s serves bdev %s on %s (%llu queue%s%s)",
			argv[optind], argv[optind + 1], sock, (unsigned long long)nq,
			nq == 1 ? "" : "s", ro ? ", read-only" : "");
}
NVL_CLI_COMMAND(g_cmd_vblk_create, "vblk create", "serve a bdev to a VM as a virtio-blk disk",
"NAME\n"
"    nvlend vblk create - serve a bdev to a VM over vhost-user-blk\n"
"\n"
"SYNOPSIS\n"
"    nvlend vblk create NAME BDEV SOCKET [--queues N] [--queue-size N]\n"
"                       [--read-only] [--force-in-order]\n"
"\n"
"DESCRIPTION\n"
"    Creates a virtio-blk controller listening on the Unix socket SOCKET for a\n"
"    vhost-user front-end (QEMU, cloud-hypervisor, crosvm). The guest's memory\n"
"    is mapped into the daemon and requests go from the virtqueues straight to\n"
"    the bdev. Requests in flight are recorded in the front-end's inflight\n"
"    region: if the daemon dies (even kill -9) and is restarted with the same\n"
"    configuration (nvlendd -c, after `nvlend save-config`), the front-end\n"
"    reconnects and every interrupted request is resubmitted; the guest sees\n"
"    a delay, not an error. Give QEMU the socket with reconnect=1 so that it\n"
"    reconnects. NAME is also the disk serial the guest reads (20 bytes).\n"
"    RPC: virtio_blk_controller_create.\n"
"\n"
"OPTIONS\n"
"    -q, --queues N         virtqueues, 1..32 (default 1); queue i is served by\n"
"                           reactor i mod the reactor count\n"
"    -Q, --queue-size N     largest ring accepted, a power of two up to 1024\n"
"                           (default 256; QEMU uses 128 unless queue-size=)\n"
"    -r, --read-only        offer a read-only disk\n"
"    -o, --force-in-order   complete requests in submission order; needed for\n"
"                           crash recovery only with front-ends that do not\n"
"                           support inflight I/O tracking\n"
"\n"
"EXAMPLE\n"
"    nvlend bdev create file d0 /var/tmp/vm0.img\n"
"    nvlend vblk create vm0 d0 /run/vm0.sock --queues 2\n"
"    qemu-system-x86_64 ... -object memory-backend-memfd,id=m,size=2G,share=on \\\n"
"        -numa node,memdev=m -chardev socket,id=c0,path=/run/vm0.sock,reconnect=1 \\\n"
"        -device vhost-user-blk-pci,chardev=c0,num-queues=2\n",
		cmd_vblk_create)

static int
cmd_vblk_destroy(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *result;
	int rc;

	if (argc != 2)
		return cli_usage_error(cli, "expected NAME");
	rc = cli_call(cli, "virtio_blk_controller_destroy", json_pack("{s:s}", "name", argv[1]),
		      &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	return cli_done(cli, json_pack("{s:s, s:b}", "name", argv[1], "destroyed", true),
			"destroyed virtio-blk controller %s", argv[1]);
}
NVL_CLI_COMMAND(g_cmd_vblk_destroy, "vblk destroy", "destroy a virtio-blk controller",
"NAME\n"
"    nvlend vblk destroy - stop serving a virtio-blk controller\n"
"\n"
"SYNOPSIS\n"
"    nvlend vblk destroy NAME\n"
"\n"
"DESCRIPTION\n"
"    Requests in flight complete first; then the front-end is disconnected,\n"
"    the socket removed and the bdev released. A guest still using the disk\n"
"    sees its requests wait until a controller is created on the same socket\n"
"    again. RPC: virtio_blk_controller_destroy.\n",
		cmd_vblk_destroy)

/* suspend/resume: SNAP's virtio_blk_controller_suspend/_resume */
static int
vblk_suspend_resume(struct nvl_cli *cli, int argc, char **argv, bool suspend)
{
	json_t *result;
	int rc;

	if (argc != 2)
		return cli_usage_error(cli, "expected NAME");
	rc = cli_call(cli, suspend ? "virtio_blk_controller_suspend" : "virtio_blk_controller_resume",
		      json_pack("{s:s}", "name", argv[1]), &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	return cli_done(cli, json_pack("{s:s, s:s}", "name", argv[1], "state",
				       suspend ? "suspended" : "running"),
			suspend ? "suspended virtio-blk controller %s (its requests in flight completed; "
				  "new ones wait)"
				: "resumed virtio-blk controller %s",
			argv[1]);
}

static int
cmd_vblk_suspend(struct nvl_cli *cli, int argc, char **argv)
{
	return vblk_suspend_resume(cli, argc, argv, true);
}
NVL_CLI_COMMAND(g_cmd_vblk_suspend, "vblk suspend", "stop serving a controller's queues for now",
"NAME\n"
"    nvlend vblk suspend - stop serving a virtio-blk controller's queues\n"
"\n"
"SYNOPSIS\n"
"    nvlend vblk suspend NAME\n"
"\n"
"DESCRIPTION\n"
"    SNAP's suspend: returns once the requests in flight completed; the\n"
"    front-end (the VM) stays connected and its new requests wait until\n"
"    'nvlend vblk resume NAME'. RPC: virtio_blk_controller_suspend.\n",
		cmd_vblk_suspend)

static int
cmd_vblk_resume(struct nvl_cli *cli, int argc, char **argv)
{
	return vblk_suspend_resume(cli, argc, argv, false);
}
NVL_CLI_COMMAND(g_cmd_vblk_resume, "vblk resume", "serve a suspended controller's queues again",
"NAME\n"
"    nvlend vblk resume - serve a suspended virtio-blk controller again\n"
"\n"
"SYNOPSIS\n"
"    nvlend vblk resume NAME\n"
"\n"
"DESCRIPTION\n"
"    The requests that waited go first. Also starts a controller created\n"
"    suspended. RPC: virtio_blk_controller_resume.\n",
		cmd_vblk_resume)

static int
cmd_vblk_list(struct nvl_cli *cli, int argc, char **argv)
{
	static const char *const hdr[] = { "NAME", "BDEV", "STATE", "QUEUES", "FRONT-END",
					   "REQUESTS", "INFLIGHT", "ERRORS", "RESUBMITTED",
					   "SOCKET" };
	json_t *params = NULL, *result, *c, *q;
	struct cli_table *t;
	size_t i, j;
	int rc;

	if (argc > 2)
		return cli_usage_error(cli, "expected at most one NAME");
	if (argc == 2)
		params = json_pack("{s:s}", "name", argv[1]);
	rc = cli_call(cli, "virtio_blk_controller_list", params, &result);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		cli_print_json(result);
		json_decref(result);
		return CLI_OK;
	}
	t = cli_table_new(10, hdr);
	json_array_foreach(result, i, c) {
		char qs[16], fe[64], reqs[24], infl[24], errs[24], resub[24];
		long long nreq = 0, nerr = 0;
		json_t *f = json_object_get(c, "frontend");

		json_array_foreach(json_object_get(c, "queues"), j, q) {
			nreq += json_integer_value(json_object_get(q, "requests"));
			nerr += json_integer_value(json_object_get(q, "ioerr")) +
				json_integer_value(json_object_get(q, "unsupp"));
		}
		snprintf(qs, sizeof(qs), "%lld",
			 (long long)json_integer_value(json_object_get(c, "num_queues")));
		if (json_is_object(f))
			snprintf(fe, sizeof(fe), "%s[%lld]",
				 json_string_value(json_object_get(f, "comm")),
				 (long long)json_integer_value(json_object_get(f, "pid")));
		else
			snprintf(fe, sizeof(fe), "-");
		snprintf(reqs, sizeof(reqs), "%lld", nreq);
		snprintf(infl, sizeof(infl), "%lld",
			 (long long)json_integer_value(json_object_get(c, "inflight")));
		snprintf(errs, sizeof(errs), "%lld", nerr);
		snprintf(resub, sizeof(resub), "%lld",
			 (long long)json_integer_value(json_object_get(
				 json_object_get(c, "recovery"), "total_resubmitted")));
		cli_table_add(t, json_string_value(json_object_get(c, "name")),
			      json_string_value(json_object_get(c, "bdev")),
			      json_string_value(json_object_get(c, "state")), qs, fe, reqs, infl,
			      errs, resub, json_string_value(json_object_get(c, "socket")));
	}
	if (json_array_size(result) == 0)
		printf("no virtio-blk controllers (create one with 'nvlend vblk create')\n");
	else
		cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_vblk_list, "vblk list", "list virtio-blk controllers",
"NAME\n"
"    nvlend vblk list - virtio-blk controllers and their front-ends\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] vblk list [NAME]\n"
"\n"
"DESCRIPTION\n"
"    STATE is listening (no front-end), connected, running (queues served),\n"
"    disconnecting or stopping. REQUESTS and ERRORS (IOERR + UNSUPP statuses)\n"
"    add up all queues; RESUBMITTED counts requests found in flight after a\n"
"    restart. --json prints everything, per queue, with the recovery figures\n"
"    (time from creation and from connection to the first completed request).\n"
"    RPC: virtio_blk_controller_list.\n",
		cmd_vblk_list)

/* ---- nvlend function list: SNAP's function tree --------------------------------- */

static int
cmd_function_list(struct nvl_cli *cli, int argc, char **argv)
{
	static const char *const hdr[] = { "FUNCTION", "NAME", "TYPE", "STATE", "CONSUMER",
					   "QUEUES", "VECTORS" };
	json_t *result, *pf, *f;
	struct cli_table *t;
	size_t i, j;
	int rc;

	(void)argv;
	if (argc > 1)
		return cli_usage_error(cli, "expected no argument");
	rc = cli_call(cli, "emulation_function_list", NULL, &result);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		cli_print_json(result);
		json_decref(result);
		return CLI_OK;
	}
	t = cli_table_new(7, hdr);
	json_array_foreach(result, i, pf) {
		char id[32], vec[48];
		long long pfid = json_integer_value(json_object_get(pf, "pf_id"));

		snprintf(id, sizeof(id), "pf%lld", pfid);
		snprintf(vec, sizeof(vec), "%lld free of %lld",
			 (long long)json_integer_value(json_object_get(pf, "num_free_msix")),
			 (long long)json_integer_value(json_object_get(pf, "num_msix")));
		cli_table_add(t, id, "-", json_string_value(json_object_get(pf, "type")), "-", "-",
			      "-", vec);
		json_array_foreach(json_object_get(pf, "functions"), j, f) {
			json_t *vf = json_object_get(f, "vf_id");
			long long pid = json_integer_value(json_object_get(f, "consumer_pid"));
			char cons[24], qs[32], v[24];

			if (json_is_integer(vf))
				snprintf(id, sizeof(id), "  pf%lld.vf%lld", pfid,
					 (long long)json_integer_value(vf));
			else
				snprintf(id, sizeof(id), "  pf%lld", pfid);
			if (pid > 0)
				snprintf(cons, sizeof(cons), "pid %lld", pid);
			else
				snprintf(cons, sizeof(cons), "-");
			if (json_object_get(f, "num_queues"))
				snprintf(qs, sizeof(qs), "%lld/%lld",
					 (long long)json_integer_value(json_object_get(f, "queues")),
					 (long long)json_integer_value(
						 json_object_get(f, "num_queues")));
			else
				snprintf(qs, sizeof(qs), "-");
			snprintf(v, sizeof(v), "%lld used",
				 (long long)json_integer_value(json_object_get(f, "num_msix")));
			cli_table_add(t, id, json_string_value(json_object_get(f, "name")),
				      json_string_value(json_object_get(f, "type")),
				      json_string_value(json_object_get(f, "state")), cons, qs, v);
		}
	}
	if (json_array_size(result) == 0)
		printf("no functions (make a PF with 'nvlend rpc function_create_pf')\n");
	else
		cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_function_list, "function list", "list PFs, VFs and their functions",
"NAME\n"
"    nvlend function list - the function tree (SNAP's PFs and VFs)\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] function list\n"
"\n"
"DESCRIPTION\n"
"    One line per PF (its type and its pool of interrupt vectors: free of\n"
"    total), then one per function on it (the PF's own, or pfP.vfV): name,\n"
"    type, state (running or suspended), the consumer's pid (NVMe functions\n"
"    opened with nvme+fn://SOCKET), I/O queues made of those allowed, and\n"
"    the vectors it holds. See docs/functions.md.\n"
"    RPC: emulation_function_list.\n",
		cmd_function_list)
