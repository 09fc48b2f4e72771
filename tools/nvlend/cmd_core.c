/* SPDX-License-Identifier: BSD-3-Clause */
/* nvlend core commands: rpc, methods, save-config, shutdown, log (status: cmd_status.c). */
#include "cli.h"
#include "nvlend/rpc_client.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
read_all_stdin(char **out)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		return -ENOMEM;
	for (;;) {
		size_t n;

		if (len + 1 >= cap) {
			char *nb;

			cap *= 2;
			nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len - 1, stdin);
		if (n == 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

static int
cmd_rpc(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *params = NULL, *result;
	json_error_t err;
	int rc;

	if (argc < 2)
		return cli_usage_error(cli, "missing METHOD");
	if (argc > 3)
		return cli_usage_error(cli, "too many arguments (quote the JSON params)");
	if (argc == 3) {
		char *text = argv[2];
		bool from_stdin = strcmp(argv[2], "-") == 0;

		if (from_stdin && read_all_stdin(&text) < 0)
			return CLI_ERR;
		params = json_loads(text, JSON_DECODE_ANY, &err);
		if (from_stdin)
			free(text);
		if (params == NULL)
			return cli_usage_error(cli, "params are not valid JSON: %s (column %d)",
					       err.text, err.column);
		if (!json_is_object(params) && !json_is_array(params)) {
			json_decref(params);
			return cli_usage_error(cli, "params must be a JSON object");
		}
	}
	rc = cli_call(cli, argv[1], params, &result);
	if (rc != CLI_OK)
		return rc;
	cli_print_json(result);
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_rpc, "rpc", "call any JSON-RPC method and print its result",
"NAME\n"
"    nvlend rpc - call any JSON-RPC method of nvlendd\n"
"\n"
"SYNOPSIS\n"
"    nvlend [-s SOCKET] rpc METHOD [PARAMS | -]\n"
"\n"
"DESCRIPTION\n"
"    Sends one JSON-RPC 2.0 request and prints the result as JSON. PARAMS is\n"
"    a JSON object ('-' reads it from stdin). Method names and parameters are\n"
"    SPDK's where the concept is the same; 'nvlend methods' lists them all and\n"
"    docs/rpc.md describes each. Errors print the daemon's message and exit 1\n"
"    (2 for an unknown method or invalid parameters).\n"
"\n"
"EXAMPLES\n"
"    nvlend rpc bdev_malloc_create '{\"name\":\"r0\",\"num_blocks\":131072,\"block_size\":512}'\n"
"    nvlend rpc bdev_get_bdevs\n"
"    echo '{\"level\": 2}' | nvlend rpc log_set_level -\n",
		cmd_rpc)

static int
cmd_methods(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *result, *m;
	size_t i;
	int rc;

	(void)argv;
	if (argc > 1)
		return cli_usage_error(cli, "no arguments expected");
	rc = cli_call(cli, "rpc_get_methods", json_pack("{s:b}", "detailed", 1), &result);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		cli_print_json(result);
	} else {
		json_array_foreach(result, i, m) {
			const char *alias = json_string_value(json_object_get(m, "alias_of"));

			if (alias)
				printf("%-34s (alias of %s)\n",
				       json_string_value(json_object_get(m, "name")), alias);
			else
				printf("%-34s %s\n", json_string_value(json_object_get(m, "name")),
				       json_string_value(json_object_get(m, "help")));
		}
	}
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_methods, "methods", "list the daemon's RPC methods",
"NAME\n"
"    nvlend methods - list every JSON-RPC method with a one-line description\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] methods\n"
"\n"
"    With --json, prints each method's parameter schema too.\n",
		cmd_methods)

static int
cmd_save_config(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL;
	json_t *result;
	int c, rc;

	optind = 0; /* not 1: glibc re-reads the ordering, options may follow args */
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if (c == 'o')
			out = optarg;
		else
			return cli_bad_option(cli, argv, opts);
	}
	if (optind != argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	rc = cli_call(cli, "save_config", NULL, &result);
	if (rc != CLI_OK)
		return rc;
	if (out) {
		char tmp[4096];

		snprintf(tmp, sizeof(tmp), "%s.tmp", out);
		json_t *sub;
		size_t i, calls = 0;

		if (json_dump_file(result, tmp, JSON_INDENT(2)) < 0 || rename(tmp, out) < 0) {
			fprintf(stderr, "nvlend: cannot write %s\n", out);
			unlink(tmp);
			json_decref(result);
			return CLI_ERR;
		}
		json_array_foreach(json_object_get(result, "subsystems"), i, sub)
			calls += json_array_size(json_object_get(sub, "config"));
		json_decref(result);
		return cli_done(cli, json_pack("{s:s, s:I}", "file", out, "calls", (json_int_t)calls),
				"configuration written to %s (%zu calls; 'nvlendd -c %s' replays "
				"it)", out, calls, out);
	}
	cli_print_json(result);
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_save_config, "save-config", "print or write the daemon's configuration",
"NAME\n"
"    nvlend save-config - the running configuration as replayable RPC calls\n"
"\n"
"SYNOPSIS\n"
"    nvlend save-config [-o FILE]\n"
"\n"
"DESCRIPTION\n"
"    Prints (or atomically writes to FILE) SPDK's save_config shape:\n"
"    {\"subsystems\": [{\"subsystem\": NAME, \"config\": [{method, params}...]}]}.\n"
"    'nvlendd -c FILE' replays it; so does SPDK's 'rpc.py load_config'.\n",
		cmd_save_config)

static int
cmd_shutdown(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *result;
	int rc;

	(void)argv;
	if (argc > 1)
		return cli_usage_error(cli, "no arguments expected");
	rc = cli_call(cli, "nvlend_shutdown", NULL, &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	return cli_done(cli, json_pack("{s:b}", "stopping", true),
			"nvlendd is stopping (in-flight I/O finishes first)");
}
NVL_CLI_COMMAND(g_cmd_shutdown, "shutdown", "stop the daemon cleanly (drains in-flight I/O)",
"NAME\n"
"    nvlend shutdown - stop nvlendd as SIGTERM would: stop accepting work,\n"
"    finish in-flight I/O, release everything, exit\n"
"\n"
"SYNOPSIS\n"
"    nvlend [-s SOCKET] shutdown\n",
		cmd_shutdown)

static int
cmd_log_level(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *result;
	uint64_t lvl;
	int rc;

	if (argc > 2)
		return cli_usage_error(cli, "too many arguments");
	if (argc == 1) {
		rc = cli_call(cli, "log_get_level", NULL, &result);
		if (rc != CLI_OK)
			return rc;
		printf("%lld\n", (long long)json_integer_value(result));
		json_decref(result);
		return CLI_OK;
	}
	if (cli_parse_u64(argv[1], "level", 3, &lvl) != CLI_OK)
		return CLI_USAGE;
	rc = cli_call(cli, "log_set_level", json_pack("{s:i}", "level", (int)lvl), &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	{
		static const char *const what[] = { "info and warnings only", "debug", "verbose",
						    "trace" };

		return cli_done(cli, json_pack("{s:I}", "level", (json_int_t)lvl),
				"debug level %llu (%s)", (unsigned long long)lvl, what[lvl]);
	}
}
NVL_CLI_COMMAND(g_cmd_log_level, "log level", "show or set the debug level (0-3)",
"NAME\n"
"    nvlend log level - show or set nvlendd's debug level\n"
"\n"
"SYNOPSIS\n"
"    nvlend log level [N]\n"
"\n"
"    0  info and warnings only (default)   2  verbose\n"
"    1  debug                              3  trace\n"
"    'nvlend log flag' narrows debug output to chosen components.\n",
		cmd_log_level)

static int
cmd_log_flag(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *result;
	const char *k;
	json_t *v;
	int rc;

	if (argc == 1) {
		rc = cli_call(cli, "log_get_flags", NULL, &result);
		if (rc != CLI_OK)
			return rc;
		if (cli->json)
			cli_print_json(result);
		else
			json_object_foreach(result, k, v)
				printf("%-16s %s\n", k, json_is_true(v) ? "on" : "off");
		json_decref(result);
		return CLI_OK;
	}
	if (argc != 3 || (strcmp(argv[2], "on") && strcmp(argv[2], "off")))
		return cli_usage_error(cli, "expected: log flag [COMPONENT on|off]");
	rc = cli_call(cli, strcmp(argv[2], "on") == 0 ? "log_set_flag" : "log_clear_flag",
		      json_pack("{s:s}", "flag", argv[1]), &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	return cli_done(cli, json_pack("{s:s, s:b}", "flag", argv[1], "enabled",
				       strcmp(argv[2], "on") == 0),
			"debug output of %s %s", strcmp(argv[1], "all") ? argv[1] : "every component",
			argv[2]);
}
NVL_CLI_COMMAND(g_cmd_log_flag, "log flag", "list components, or turn one's debug output on/off",
"NAME\n"
"    nvlend log flag - per-component debug output\n"
"\n"
"SYNOPSIS\n"
"    nvlend log flag                 list components and their state\n"
"    nvlend log flag COMPONENT on|off\n"
"    nvlend log flag all off         then enable just the ones you want\n",
		cmd_log_flag)
