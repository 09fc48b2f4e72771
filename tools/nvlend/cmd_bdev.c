/* SPDX-License-Identifier: BSD-3-Clause */
/* nvlend bdev ...: create ram/file, list, delete, iostat. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static int
cmd_bdev_create_ram(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "block-size", required_argument, NULL, 'b' },
		{ "uuid", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t size, bs = 512;
	const char *uuid = NULL;
	json_t *params, *result;
	int c, rc;

	optind = 0; /* full re-initialisation: main() ran getopt on another argv */
	while ((c = getopt_long(argc, argv, "b:u:", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (cli_parse_size(optarg, "--block-size", &bs) != CLI_OK)
				return CLI_USAGE;
			break;
		case 'u':
			uuid = optarg;
			break;
		default:
			return cli_usage_error(cli, "unknown option");
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(cli, "expected NAME SIZE");
	if (cli_parse_size(argv[optind + 1], "SIZE", &size) != CLI_OK)
		return CLI_USAGE;
	if (bs < 512 || bs > 65536 || (bs & (bs - 1)))
		return cli_usage_error(cli, "--block-size must be a power of two, 512..64k");
	if (size < bs || size % bs)
		return cli_usage_error(cli, "SIZE must be a non-zero multiple of the block size "
					    "(%llu)", (unsigned long long)bs);
	params = json_pack("{s:s, s:I, s:I}", "name", argv[optind], "num_blocks",
			   (json_int_t)(size / bs), "block_size", (json_int_t)bs);
	if (uuid)
		json_object_set_new(params, "uuid", json_string(uuid));
	rc = cli_call(cli, "bdev_malloc_create", params, &result);
	if (rc != CLI_OK)
		return rc;
	if (cli->json)
		cli_print_json(result);
	else
		printf("%s\n", json_string_value(result));
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_bdev_create_ram, "bdev create ram", "create a RAM bdev",
"NAME\n"
"    nvlend bdev create ram - create a bdev in the daemon's memory\n"
"\n"
"SYNOPSIS\n"
"    nvlend bdev create ram NAME SIZE [--block-size BYTES] [--uuid UUID]\n"
"\n"
"DESCRIPTION\n"
"    SIZE takes suffixes (64M, 1G). The memory is allocated and touched at\n"
"    once; its contents are lost when the daemon stops. RPC: bdev_malloc_create.\n"
"\n"
"OPTIONS\n"
"    -b, --block-size BYTES  512 (default) .. 64k, a power of two\n"
"    -u, --uuid UUID         fixed UUID (default: random)\n"
"\n"
"EXAMPLE\n"
"    nvlend bdev create ram r0 64M\n",
		cmd_bdev_create_ram)

static int
cmd_bdev_create_file(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "block-size", required_argument, NULL, 'b' },
		{ "uuid", required_argument, NULL, 'u' },
		{ "readonly", no_argument, NULL, 'r' },
		{ "io-mode", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t bs = 0;
	const char *uuid = NULL, *mode = NULL;
	bool ro = false;
	json_t *params, *result;
	char path[4096];
	int c, rc;

	optind = 0; /* full re-initialisation: main() ran getopt on another argv */
	while ((c = getopt_long(argc, argv, "b:u:rm:", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (cli_parse_size(optarg, "--block-size", &bs) != CLI_OK)
				return CLI_USAGE;
			break;
		case 'u':
			uuid = optarg;
			break;
		case 'r':
			ro = true;
			break;
		case 'm':
			mode = optarg;
			break;
		default:
			return cli_usage_error(cli, "unknown option");
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(cli, "expected NAME PATH");
	/* the daemon resolves paths from its own cwd: send an absolute one */
	if (realpath(argv[optind + 1], path) == NULL) {
		fprintf(stderr, "nvlend: %s: no such file or device\n", argv[optind + 1]);
		return CLI_ERR;
	}
	params = json_pack("{s:s, s:s}", "name", argv[optind], "filename", path);
	if (bs)
		json_object_set_new(params, "block_size", json_integer((json_int_t)bs));
	if (uuid)
		json_object_set_new(params, "uuid", json_string(uuid));
	if (ro)
		json_object_set_new(params, "readonly", json_true());
	if (mode)
		json_object_set_new(params, "io_mode", json_string(mode));
	rc = cli_call(cli, "bdev_uring_create", params, &result);
	if (rc != CLI_OK)
		return rc;
	if (cli->json)
		cli_print_json(result);
	else
		printf("%s\n", json_string_value(result));
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_bdev_create_file, "bdev create file",
		"create a bdev on a file or block device",
"NAME\n"
"    nvlend bdev create file - serve an existing file or block device\n"
"\n"
"SYNOPSIS\n"
"    nvlend bdev create file NAME PATH [--block-size BYTES] [--readonly]\n"
"                            [--io-mode auto|uring|buffered] [--uuid UUID]\n"
"\n"
"DESCRIPTION\n"
"    I/O goes through io_uring on the daemon's reactors, with O_DIRECT where\n"
"    the file system allows it (the daemon logs when it falls back to buffered\n"
"    I/O). Flush is fdatasync; FUA writes use RWF_DSYNC; write-zeroes and\n"
"    discard punch holes. The file keeps its size. RPC: bdev_uring_create.\n"
"\n"
"OPTIONS\n"
"    -b, --block-size BYTES  default: the device's logical block size, or the\n"
"                            file system's direct-I/O alignment (>= 512)\n"
"    -r, --readonly          refuse writes\n"
"    -m, --io-mode MODE      auto (default; on tmpfs, served inline because\n"
"                            io_uring would use worker threads there), uring,\n"
"                            or buffered (no O_DIRECT)\n"
"    -u, --uuid UUID         fixed UUID (default: random)\n"
"\n"
"EXAMPLE\n"
"    truncate -s 1G /var/tmp/disk.img\n"
"    nvlend bdev create file d0 /var/tmp/disk.img\n",
		cmd_bdev_create_file)

static int
cmd_bdev_list(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *params = NULL, *result, *b;
	struct cli_table *t;
	static const char *const hdr[] = { "NAME", "TYPE", "SIZE", "BLOCK", "BLOCKS", "UUID",
					   "USED BY" };
	size_t i;
	int rc;

	if (argc > 2)
		return cli_usage_error(cli, "expected at most one NAME");
	if (argc == 2)
		params = json_pack("{s:s}", "name", argv[1]);
	rc = cli_call(cli, "bdev_get_bdevs", params, &result);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		cli_print_json(result);
		json_decref(result);
		return CLI_OK;
	}
	t = cli_table_new(7, hdr);
	json_array_foreach(result, i, b) {
		uint64_t bs = (uint64_t)json_integer_value(json_object_get(b, "block_size"));
		uint64_t nb = (uint64_t)json_integer_value(json_object_get(b, "num_blocks"));
		char size[32], bss[16], nbs[32];

		cli_fmt_size(bs * nb, size, sizeof(size));
		snprintf(bss, sizeof(bss), "%llu", (unsigned long long)bs);
		snprintf(nbs, sizeof(nbs), "%llu", (unsigned long long)nb);
		cli_table_add(t, json_string_value(json_object_get(b, "name")),
			      json_string_value(json_object_get(b, "type")), size, bss, nbs,
			      json_string_value(json_object_get(b, "uuid")),
			      json_string_value(json_object_get(b, "claimed_by")));
	}
	if (json_array_size(result) == 0)
		printf("no bdevs (create one with 'nvlend bdev create ram NAME SIZE')\n");
	else
		cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_bdev_list, "bdev list", "list bdevs",
"NAME\n"
"    nvlend bdev list - list bdevs: type, size, block size, UUID, user\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] bdev list [NAME]\n",
		cmd_bdev_list)

static int
cmd_bdev_delete(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *result, *b;
	const char *type, *method;
	int rc;

	if (argc != 2)
		return cli_usage_error(cli, "expected NAME");
	rc = cli_call(cli, "bdev_get_bdevs", json_pack("{s:s}", "name", argv[1]), &result);
	if (rc != CLI_OK)
		return rc;
	b = json_array_get(result, 0);
	type = json_string_value(json_object_get(b, "type"));
	if (type && strcmp(type, "ram") == 0)
		method = "bdev_malloc_delete";
	else if (type && strcmp(type, "file") == 0)
		method = "bdev_uring_delete";
	else if (type && strcmp(type, "nvme") == 0)
		method = NULL;
	else
		method = NULL;
	if (method == NULL) {
		fprintf(stderr, "nvlend: bdev '%s' is of type %s; delete it with the command that "
				"owns it (see 'nvlend --help')\n", argv[1], type ? type : "?");
		json_decref(result);
		return CLI_ERR;
	}
	json_decref(result);
	rc = cli_call(cli, method, json_pack("{s:s}", "name", argv[1]), &result);
	if (rc == CLI_OK)
		json_decref(result);
	return rc;
}
NVL_CLI_COMMAND(g_cmd_bdev_delete, "bdev delete", "delete a ram or file bdev",
"NAME\n"
"    nvlend bdev delete - delete a bdev\n"
"\n"
"SYNOPSIS\n"
"    nvlend bdev delete NAME\n"
"\n"
"DESCRIPTION\n"
"    Refused while the bdev is in use (by a namespace, an export, ...); the\n"
"    error names the user. Files are left in place.\n",
		cmd_bdev_delete)

static int
cmd_bdev_iostat(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *params = NULL, *result, *b;
	struct cli_table *t;
	static const char *const hdr[] = { "NAME", "READS", "READ", "WRITES", "WRITTEN", "FLUSHES",
					   "READ p50/p99 us", "WRITE p50/p99 us", "ERRORS" };
	size_t i;
	int rc;

	if (argc > 2)
		return cli_usage_error(cli, "expected at most one NAME");
	if (argc == 2)
		params = json_pack("{s:s}", "name", argv[1]);
	rc = cli_call(cli, "bdev_get_iostat", params, &result);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		cli_print_json(result);
		json_decref(result);
		return CLI_OK;
	}
	t = cli_table_new(9, hdr);
	json_array_foreach(json_object_get(result, "bdevs"), i, b) {
		char r[24], rb[24], w[24], wb[24], f[24], rl[48], wl[48], e[24];
		json_t *hr = json_object_get(json_object_get(b, "latency_histogram"), "read");
		json_t *hw = json_object_get(json_object_get(b, "latency_histogram"), "write");

		snprintf(r, sizeof(r), "%lld", (long long)json_integer_value(json_object_get(b, "num_read_ops")));
		cli_fmt_size((uint64_t)json_integer_value(json_object_get(b, "bytes_read")), rb, sizeof(rb));
		snprintf(w, sizeof(w), "%lld", (long long)json_integer_value(json_object_get(b, "num_write_ops")));
		cli_fmt_size((uint64_t)json_integer_value(json_object_get(b, "bytes_written")), wb, sizeof(wb));
		snprintf(f, sizeof(f), "%lld", (long long)json_integer_value(json_object_get(b, "num_flush_ops")));
		snprintf(rl, sizeof(rl), "%.1f/%.1f",
			 (double)json_integer_value(json_object_get(hr, "p50_ns")) / 1000.0,
			 (double)json_integer_value(json_object_get(hr, "p99_ns")) / 1000.0);
		snprintf(wl, sizeof(wl), "%.1f/%.1f",
			 (double)json_integer_value(json_object_get(hw, "p50_ns")) / 1000.0,
			 (double)json_integer_value(json_object_get(hw, "p99_ns")) / 1000.0);
		snprintf(e, sizeof(e), "%lld", (long long)json_integer_value(json_object_get(b, "io_errors")));
		cli_table_add(t, json_string_value(json_object_get(b, "name")), r, rb, w, wb, f, rl,
			      wl, e);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_bdev_iostat, "bdev iostat", "I/O counters and latency per bdev",
"NAME\n"
"    nvlend bdev iostat - operations, bytes, errors and latency per bdev\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] bdev iostat [NAME]\n"
"\n"
"    Latency is measured inside the daemon, from submission to the backend\n"
"    until its completion. --json adds the full latency histograms.\n",
		cmd_bdev_iostat)
