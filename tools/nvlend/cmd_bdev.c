/* SPDX-License-Identifier: BSD-3-Clause */
/* nvlend bdev ...: create ram/file, list, delete, iostat. */
#include "cli.h"

#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "created bdev NAME: SIZE (N x BS-byte blocks) on WHERE"; --json: the bdev */
static int
bdev_created(struct nvl_cli *cli, const char *name, const char *where)
{
	json_t *b = cli_get_object(cli, "bdev_get_bdevs", "name", name);
	uint64_t bs = (uint64_t)json_integer_value(json_object_get(b, "block_size"));
	uint64_t nb = (uint64_t)json_integer_value(json_object_get(b, "num_blocks"));
	char size[32];

	cli_fmt_size(bs * nb, size, sizeof(size));
	return cli_done(cli, b, "created bdev %s: %s (%llu x %llu-byte blocks) %s%s%s", name,
			size, (unsigned long long)nb, (unsigned long long)bs,
			where[0] == '/' ? "on " : "", where,
			json_is_true(json_object_get(b, "read_only")) ? ", read-only" : "");
}

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

	optind = 0; /* not 1: glibc re-reads the ordering, options may follow args */
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
			return cli_bad_option(cli, argv, opts);
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
	json_decref(result);
	return bdev_created(cli, argv[optind], "in RAM");
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
		{ "read-only", no_argument, NULL, 'r' },
		{ "readonly", no_argument, NULL, 'R' },  /* the old spelling, with a hint */
		{ "io-mode", required_argument, NULL, 'm' },
		{ "shared", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t bs = 0;
	const char *uuid = NULL, *mode = NULL;
	bool ro = false, shared = false;
	json_t *params, *result;
	char path[4096];
	int c, rc;

	optind = 0; /* not 1: glibc re-reads the ordering, options may follow args */
	while ((c = getopt_long(argc, argv, "b:u:rm:s", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (cli_parse_size(optarg, "--block-size", &bs) != CLI_OK)
				return CLI_USAGE;
			break;
		case 'u':
			uuid = optarg;
			break;
		case 'R':
			fprintf(stderr, "nvlend: --readonly is spelled --read-only now\n");
			/* fall through */
		case 'r':
			ro = true;
			break;
		case 'm':
			mode = optarg;
			break;
		case 's':
			shared = true;
			break;
		default:
			return cli_bad_option(cli, argv, opts);
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
	if (shared)
		json_object_set_new(params, "shared", json_true());
	rc = cli_call(cli, "bdev_uring_create", params, &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	return bdev_created(cli, argv[optind], path);
}
NVL_CLI_COMMAND(g_cmd_bdev_create_file, "bdev create file",
		"create a bdev on a file or block device",
"NAME\n"
"    nvlend bdev create file - serve an existing file or block device\n"
"\n"
"SYNOPSIS\n"
"    nvlend bdev create file NAME PATH [--block-size BYTES] [--read-only]\n"
"                            [--io-mode auto|uring|buffered] [--uuid UUID]\n"
"                            [--shared]\n"
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
"    -r, --read-only         refuse writes\n"
"    -m, --io-mode MODE      auto (default; on tmpfs, served inline because\n"
"                            io_uring would use worker threads there), uring,\n"
"                            or buffered (no O_DIRECT)\n"
"    -u, --uuid UUID         fixed UUID (default: random)\n"
"    -s, --shared            let another bdev of this daemon serve the same file\n"
"                            (it must say --shared too); without it a second\n"
"                            bdev on the file is refused: two bdevs are two\n"
"                            views of the same blocks that nobody orders. A\n"
"                            second daemon on the file is refused in any case.\n"
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
	const char *type, *method = NULL, *owner = NULL;
	int rc;

	if (argc != 2)
		return cli_usage_error(cli, "expected NAME");
	rc = cli_call(cli, "bdev_get_bdevs", json_pack("{s:s}", "name", argv[1]), &result);
	if (rc != CLI_OK)
		return rc;
	b = json_incref(json_array_get(result, 0));
	json_decref(result);
	type = json_string_value(json_object_get(b, "type"));
	if (type && strcmp(type, "ram") == 0)
		method = "bdev_malloc_delete";
	else if (type && strcmp(type, "file") == 0)
		method = "bdev_uring_delete";
	else if (type && strcmp(type, "nvme") == 0)
		owner = "its controller: 'nvlend nvme detach CONTROLLER' (all its namespaces go)";
	else if (type && strcmp(type, "brick") == 0)
		owner = "'nvlend rpc bdev_brick_delete '{\"name\": \"NAME\"}'' (its extents stay in "
			"the brick)";
	if (method == NULL) {
		fprintf(stderr, "nvlend bdev delete: '%s' is %s %s bdev; delete it with %s\n", argv[1],
			type && strchr("aeiou", type[0]) ? "an" : "a", type ? type : "unknown",
			owner ? owner : "the command that made it (see 'nvlend --help')");
		json_decref(b);
		return CLI_ERR;
	}
	rc = cli_call(cli, method, json_pack("{s:s}", "name", argv[1]), &result);
	if (rc != CLI_OK) {
		json_decref(b);
		return rc;
	}
	json_decref(result);
	json_object_set_new(b, "deleted", json_true());
	return cli_done(cli, b, "deleted %s bdev %s", type, argv[1]);
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

/* One interval's rates from two bdev_get_iostat results. */
static void
iostat_rates(const json_t *prev, const json_t *cur, FILE *f)
{
	static const char *const hdr[] = { "NAME", "r/s", "w/s", "rMiB/s", "wMiB/s", "flush/s",
					   "qdepth", "errors" };
	double secs = (double)(json_integer_value(json_object_get(cur, "ticks")) -
			       json_integer_value(json_object_get(prev, "ticks"))) /
		      (double)json_integer_value(json_object_get(cur, "tick_rate"));
	struct cli_table *t = cli_table_new(8, hdr);
	json_t *b, *p;
	size_t i, j;

	if (secs <= 0)
		secs = 1;
	json_array_foreach(json_object_get(cur, "bdevs"), i, b) {
		const char *name = json_string_value(json_object_get(b, "name"));
		char v[7][32];

		p = NULL;
		json_array_foreach(json_object_get(prev, "bdevs"), j, p) {
			if (strcmp(json_string_value(json_object_get(p, "name")), name) == 0)
				break;
			p = NULL;
		}
		if (p == NULL)
			continue;   /* created during the interval: next time */
#define D(k) ((double)(json_integer_value(json_object_get(b, k)) -                                 \
		       json_integer_value(json_object_get(p, k))))
		snprintf(v[0], 32, "%.0f", D("num_read_ops") / secs);
		snprintf(v[1], 32, "%.0f", D("num_write_ops") / secs);
		snprintf(v[2], 32, "%.1f", D("bytes_read") / secs / 1048576.0);
		snprintf(v[3], 32, "%.1f", D("bytes_written") / secs / 1048576.0);
		snprintf(v[4], 32, "%.0f", D("num_flush_ops") / secs);
		snprintf(v[5], 32, "%lld", (long long)json_integer_value(json_object_get(b, "queue_depth")));
		snprintf(v[6], 32, "%.0f", D("io_errors"));
#undef D
		cli_table_add(t, name, v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
	}
	cli_table_print(t, f);
	cli_table_free(t);
}

static int
cmd_bdev_iostat(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *params = NULL, *result, *b, *prev = NULL;
	struct cli_table *t;
	static const char *const hdr[] = { "NAME", "READS", "READ", "WRITES", "WRITTEN", "FLUSHES",
					   "READ p50/p99 us", "WRITE p50/p99 us", "ERRORS" };
	uint64_t interval = 0, count = 0;
	size_t i;
	int rc, c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "i:c:", opts, NULL)) != -1) {
		if (c == 'i') {
			if (cli_parse_u64(optarg, "--interval", 86400, &interval) != CLI_OK ||
			    interval == 0)
				return cli_usage_error(cli, "--interval must be 1..86400 seconds");
		} else if (c == 'c') {
			if (cli_parse_u64(optarg, "--count", UINT32_MAX, &count) != CLI_OK)
				return CLI_USAGE;
		} else {
			return cli_bad_option(cli, argv, opts);
		}
	}
	if (argc - optind > 1)
		return cli_usage_error(cli, "expected at most one NAME");
	if (count && !interval)
		return cli_usage_error(cli, "--count goes with --interval");
	if (argc - optind == 1)
		params = json_pack("{s:s}", "name", argv[optind]);
	if (interval) {
		/* like iostat(1): rates over each interval, until --count or Ctrl-C */
		rc = cli_call(cli, "bdev_get_iostat", json_incref(params), &prev);
		for (uint64_t n = 0; rc == CLI_OK && (count == 0 || n < count); n++) {
			sleep((unsigned)interval);
			rc = cli_call(cli, "bdev_get_iostat", json_incref(params), &result);
			if (rc != CLI_OK)
				break;
			if (cli->json) {
				json_t *o = json_pack("{s:O, s:O}", "previous", prev, "current", result);

				cli_print_json(o);
				json_decref(o);
			} else {
				iostat_rates(prev, result, stdout);
				printf("\n");
			}
			fflush(stdout);
			json_decref(prev);
			prev = result;
		}
		json_decref(prev);
		json_decref(params);
		return rc;
	}
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
	if (json_array_size(json_object_get(result, "bdevs")) == 0)
		printf("no bdevs\n");
	else
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
"    nvlend [--json] bdev iostat [NAME] [--interval SECS [--count N]]\n"
"\n"
"DESCRIPTION\n"
"    Without --interval: the counters since each bdev was created, with\n"
"    latency percentiles measured inside the daemon, from submission to the\n"
"    backend until its completion (--json adds the full histograms).\n"
"    With --interval, like iostat(1): every SECS seconds, the rates over the\n"
"    last interval (reads and writes per second, MiB/s, flushes per second),\n"
"    the queue depth now and the errors of the interval; until --count\n"
"    intervals or Ctrl-C. --json prints each interval's two raw samples.\n"
"\n"
"OPTIONS\n"
"    -i, --interval SECS     report rates every SECS seconds\n"
"    -c, --count N           stop after N reports (default: never)\n"
"\n"
"EXAMPLE\n"
"    nvlend bdev iostat --interval 1\n",
		cmd_bdev_iostat)
