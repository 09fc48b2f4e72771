/* SPDX-License-Identifier: BSD-3-Clause */
/* nvlend: the command-line front end of nvlendd. See `nvlend --help`. */
#include "cli.h"
#include "nvlend/rpc_client.h"
#include "util/util.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct nvl_cli_cmd *g_cmds;

void
nvl_cli_register(struct nvl_cli_cmd *c)
{
	struct nvl_cli_cmd **pp = &g_cmds;

	while (*pp && strcmp((*pp)->path, c->path) < 0)
		pp = &(*pp)->next;
	c->next = *pp;
	*pp = c;
}

bool
cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return true;
	}
	return false;
}

int
cli_usage_error(struct nvl_cli *cli, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s %s: ", cli->prog, cli->cmd_path ? cli->cmd_path : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s %s --help'.\n", cli->prog, cli->cmd_path ? cli->cmd_path : "");
	return CLI_USAGE;
}

/* ---- "did you mean" ------------------------------------------------------ */

/* Edit distance (insert, delete, substitute, swap adjacent), capped. */
static size_t
cli_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), d[64][64];

	if (la >= 64 || lb >= 64)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			c = NVL_MIN(c, d[i - 1][j] + 1);
			c = NVL_MIN(c, d[i][j - 1] + 1);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
				c = NVL_MIN(c, d[i - 2][j - 2] + 1);
			d[i][j] = c;
		}
	}
	return d[la][lb];
}

const char *
cli_nearest(const char *word, const char *const *cands, size_t n)
{
	size_t best = SIZE_MAX, limit = NVL_MAX((size_t)2, strlen(word) / 3);
	const char *pick = NULL;

	for (size_t i = 0; i < n; i++) {
		size_t d = cli_distance(word, cands[i]);

		/* a prefix of a candidate also counts ("--block" for "--block-size") */
		if (strlen(word) >= 3 && strncmp(cands[i], word, strlen(word)) == 0)
			d = 1;
		if (d < best) {
			best = d;
			pick = cands[i];
		}
	}
	return best <= limit ? pick : NULL;
}

int
cli_bad_option(struct nvl_cli *cli, char **argv, const struct option *opts)
{
	const char *bad = argv[optind - 1], *names[64], *near;
	char dashed[64][40], given[128];
	size_t n = 0;
	bool missing = false;

	/* getopt_long: optopt is the option when its value is missing (or the
	 * unknown short option); argv[optind - 1] is the word that failed */
	for (const struct option *o = opts; o && o->name && n < 64; o++) {
		snprintf(dashed[n], sizeof(dashed[n]), "--%s", o->name);
		names[n] = dashed[n];
		if (optopt && optopt == o->val && o->has_arg == required_argument)
			missing = true;
		n++;
	}
	if (missing || (bad && strncmp(bad, "--", 2) == 0 && strchr(bad, '=') == NULL &&
			cli_nearest(bad, names, n) && strcmp(cli_nearest(bad, names, n), bad) == 0))
		return cli_usage_error(cli, "option '%s' needs a value", bad ? bad : "?");
	if (optopt && !(bad && bad[0] == '-' && bad[1] == '-')) {
		snprintf(given, sizeof(given), "-%c", optopt);
		bad = given;
	}
	nvl_strlcpy(given, bad ? bad : "?", sizeof(given));
	if (strchr(given, '='))
		*strchr(given, '=') = '\0';
	near = cli_nearest(given, names, n);
	if (near)
		return cli_usage_error(cli, "unknown option '%s' (did you mean '%s'?)", given, near);
	return cli_usage_error(cli, "unknown option '%s'", given);
}

int
cli_abs_path(const char *p, char *out, size_t len)
{
	char cwd[4096];

	if (realpath(p, out) != NULL)
		return 0;
	if (p[0] == '/')
		return nvl_strlcpy(out, p, len) < 0 ? -ENAMETOOLONG : 0;
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return -errno;
	return snprintf(out, len, "%s/%s", cwd, p) < (int)len ? 0 : -ENAMETOOLONG;
}

/* ---- output -------------------------------------------------------------- */

int
cli_done(struct nvl_cli *cli, json_t *obj, const char *fmt, ...)
{
	va_list ap;

	if (cli->json) {
		/* never empty: at least {} */
		if (obj == NULL)
			obj = json_object();
		cli_print_json(obj);
	} else {
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		putchar('\n');
	}
	json_decref(obj);
	return CLI_OK;
}

json_t *
cli_get_object(struct nvl_cli *cli, const char *method, const char *key, const char *value)
{
	json_t *res = NULL, *o = NULL, *it;
	size_t i;

	if (cli_call_quiet(cli, method, NULL, &res) == CLI_OK) {
		if (json_is_array(res)) {
			json_array_foreach(res, i, it) {
				const char *v = json_string_value(json_object_get(it, key ? key : "name"));

				if (!value || (v && strcmp(v, value) == 0)) {
					o = json_incref(it);
					break;
				}
			}
		} else if (json_is_object(res)) {
			o = json_incref(res);
		}
	}
	json_decref(res);
	return o;
}

void
cli_print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);

	if (s) {
		puts(s);
		free(s);
	}
}

/* The daemon's methods close to `method`, for "did you mean". */
static const char *
cli_nearest_method(struct nvl_cli *cli, const char *method, char *buf, size_t len)
{
	json_t *res = NULL, *it;
	const char *names[512], *near;
	size_t i, n = 0;

	if (cli_call_quiet(cli, "rpc_get_methods", NULL, &res) != CLI_OK)
		return NULL;
	json_array_foreach(res, i, it) {
		if (json_is_string(it) && n < NVL_ARRAY_SIZE(names))
			names[n++] = json_string_value(it);
	}
	near = cli_nearest(method, names, n);
	if (near)
		nvl_strlcpy(buf, near, len);
	json_decref(res);
	return near ? buf : NULL;
}

static int
cli_call_impl(struct nvl_cli *cli, const char *method, json_t *params, json_t **result,
	      bool quiet)
{
	struct nvl_rpc_client *c;
	json_t *err = NULL;
	int rc;

	rc = nvl_rpc_client_connect(cli->socket, cli->timeout_ms, &c);
	if (rc < 0) {
		char def[256];
		const char *path = cli->socket ? cli->socket
					       : nvl_rpc_default_socket(def, sizeof(def));

		json_decref(params);
		if (quiet)
			return CLI_NODAEMON;
		if (rc == -ENOENT || rc == -ECONNREFUSED)
			fprintf(stderr,
				"%s: nvlendd is not running (%s %s).\n"
				"Start it with 'nvlendd', or pick another one with -s SOCKET "
				"or NVLEND_SOCKET.\n",
				cli->prog,
				rc == -ENOENT ? "no such socket:"
					      : "no daemon answers on the socket left at",
				path);
		else if (rc == -EPERM)
			fprintf(stderr,
				"%s: not talking to %s: it is not a socket of root or of this "
				"user (another user may have planted it).\n",
				cli->prog, path);
		else
			fprintf(stderr, "%s: cannot reach nvlendd on %s: %s\n", cli->prog, path,
				strerror(-rc));
		return CLI_NODAEMON;
	}
	rc = nvl_rpc_client_call(c, method, params, result, &err);
	json_decref(params);
	nvl_rpc_client_close(c);
	if (rc == -EREMOTEIO) {
		const char *msg = json_string_value(json_object_get(err, "message"));
		json_int_t code = json_integer_value(json_object_get(err, "code"));
		char near[128];

		if (!quiet) {
			fprintf(stderr, "%s: %s: %s (error %lld)\n", cli->prog, method,
				msg ? msg : "failed", (long long)code);
			if (code == -32601 && cli_nearest_method(cli, method, near, sizeof(near)))
				fprintf(stderr, "Did you mean '%s'?\n", near);
		}
		json_decref(err);
		return code == -32602 || code == -32601 ? CLI_USAGE : CLI_ERR;
	}
	if (rc < 0) {
		if (!quiet)
			fprintf(stderr, "%s: %s: %s\n", cli->prog, method,
				rc == -ETIMEDOUT ? "the daemon did not answer in time"
				: rc == -EPIPE	 ? "the daemon closed the connection"
						 : strerror(-rc));
		return CLI_ERR;
	}
	return CLI_OK;
}

int
cli_call(struct nvl_cli *cli, const char *method, json_t *params, json_t **result)
{
	return cli_call_impl(cli, method, params, result, false);
}

int
cli_call_quiet(struct nvl_cli *cli, const char *method, json_t *params, json_t **result)
{
	return cli_call_impl(cli, method, params, result, true);
}

int
cli_parse_size(const char *s, const char *what, uint64_t *out)
{
	int rc = nvl_parse_size(s, out);

	if (rc < 0) {
		fprintf(stderr, "nvlend: %s '%s': expected a size like 4096, 64M, 1G%s\n", what, s,
			rc == -ERANGE ? " (too large)" : "");
		return CLI_USAGE;
	}
	return CLI_OK;
}

int
cli_parse_u64(const char *s, const char *what, uint64_t max, uint64_t *out)
{
	int rc = nvl_parse_u64(s, max, out);

	if (rc < 0) {
		fprintf(stderr, "nvlend: %s '%s': expected a number from 0 to %llu\n", what, s,
			(unsigned long long)max);
		return CLI_USAGE;
	}
	return CLI_OK;
}

const char *
cli_fmt_size(uint64_t bytes, char *buf, size_t len)
{
	return nvl_fmt_size(bytes, buf, len);
}

struct cli_table {
	int ncols;
	size_t nrows, cap;
	char **cells; /* nrows * ncols, row 0 = headers */
};

struct cli_table *
cli_table_new(int ncols, const char *const *headers)
{
	struct cli_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		abort();
	t->ncols = ncols;
	t->cap = 16;
	t->cells = calloc(t->cap * (size_t)ncols, sizeof(char *));
	if (t->cells == NULL)
		abort();
	for (int i = 0; i < ncols; i++)
		t->cells[i] = strdup(headers[i]);
	t->nrows = 1;
	return t;
}

void
cli_table_add(struct cli_table *t, ...)
{
	va_list ap;

	if (t->nrows == t->cap) {
		t->cap *= 2;
		t->cells = realloc(t->cells, t->cap * (size_t)t->ncols * sizeof(char *));
		if (t->cells == NULL)
			abort();
	}
	va_start(ap, t);
	for (int i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);

		t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = strdup(s ? s : "-");
	}
	va_end(ap);
	t->nrows++;
}

void
cli_table_print(struct cli_table *t, FILE *f)
{
	size_t w[32] = { 0 };

	for (size_t r = 0; r < t->nrows; r++)
		for (int c = 0; c < t->ncols && c < 32; c++) {
			size_t l = strlen(t->cells[r * (size_t)t->ncols + (size_t)c]);

			if (l > w[c])
				w[c] = l;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];

			if (c == t->ncols - 1)
				fprintf(f, "%s\n", s);
			else
				fprintf(f, "%-*s  ", (int)w[c], s);
		}
	}
}

void
cli_table_free(struct cli_table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void
cli_print_help(struct nvl_cli *cli, const struct nvl_cli_cmd *c, FILE *f)
{
	(void)cli;
	fprintf(f, "%s", c->usage);
}

/* Does command path `path` start with the words in argv[0..n)? */
static bool
path_has_prefix(const char *path, char **words, int n)
{
	const char *p = path;

	for (int i = 0; i < n; i++) {
		size_t l = strlen(words[i]);

		if (strncmp(p, words[i], l) != 0 || (p[l] != ' ' && p[l] != '\0'))
			return false;
		p += l;
		if (*p == ' ')
			p++;
		else if (i != n - 1)
			return false;
	}
	return true;
}

static int
count_words(const char *path)
{
	int n = 1;

	for (const char *p = path; *p; p++)
		n += *p == ' ';
	return n;
}

/* The registered word that may follow words[0..n) closest to `word`. */
static const char *
nearest_next_word(char **words, int n, const char *word)
{
	static char next[64][32];
	const char *cands[64];
	size_t k = 0;

	for (struct nvl_cli_cmd *c = g_cmds; c && k < 64; c = c->next) {
		const char *p = c->path;

		if (!path_has_prefix(c->path, words, n))
			continue;
		for (int i = 0; i < n && p; i++) {
			p = strchr(p, ' ');
			p = p ? p + 1 : NULL;
		}
		if (p == NULL)
			continue;
		snprintf(next[k], sizeof(next[k]), "%.*s", (int)strcspn(p, " "), p);
		cands[k] = next[k];
		k++;
	}
	return cli_nearest(word, cands, k);
}

static void
print_group_help(FILE *f, char **words, int n)
{
	char prefix[256] = "";
	size_t off = 0;

	for (int i = 0; i < n; i++)
		off += (size_t)snprintf(prefix + off, sizeof(prefix) - off, "%s%s", i ? " " : "",
					words[i]);
	fprintf(f, "Usage: nvlend [global options] %s COMMAND [ARGS]\n\nCommands:\n", prefix);
	for (struct nvl_cli_cmd *c = g_cmds; c; c = c->next)
		if (path_has_prefix(c->path, words, n))
			fprintf(f, "  %-28s %s\n", c->path, c->summary);
	fprintf(f, "\nRun 'nvlend %s COMMAND --help' for a command's options.\n", prefix);
}

static void
print_main_help(FILE *f)
{
	char def[256];

	fprintf(f,
"NAME\n"
"    nvlend - control nvlendd: bdevs, shared namespaces, exports, bricks\n"
"\n"
"SYNOPSIS\n"
"    nvlend [-s SOCKET] [--json] [--timeout SECS] COMMAND [ARGS]\n"
"    nvlend [-s SOCKET] rpc METHOD ['{json params}']\n"
"\n"
"GLOBAL OPTIONS\n"
"    -s, --socket SOCKET  daemon's JSON-RPC socket (default $NVLEND_SOCKET,\n"
"                         else %s)\n"
"    -j, --json           print results as JSON (for scripts)\n"
"    -t, --timeout SECS   give up on an unanswered call after SECS (default 30)\n"
"    -h, --help           help; works at every level: 'nvlend bdev --help'\n"
"    -V, --version        print the version\n"
"\n"
"COMMANDS\n",
		nvl_rpc_default_socket(def, sizeof(def)));
	for (struct nvl_cli_cmd *c = g_cmds; c; c = c->next)
		fprintf(f, "    %-28s %s\n", c->path, c->summary);
	fprintf(f,
"\n"
"SIZES\n"
"    Sizes take binary suffixes: 512, 4k, 64M, 1G, 2T (K=1024).\n"
"\n"
"EXIT STATUS\n"
"    0 success; 1 the operation failed; 2 bad command line; 3 the daemon is\n"
"    not reachable. Commands that connect to a target themselves (attach, ns,\n"
"    lend, brick) exit as nvlend-perf does, by the failure nvl_strerror(3)\n"
"    names: 2 an invalid URI; 4 the target is not reachable (no such socket,\n"
"    nothing listens there, the subsystem does not listen at that address,\n"
"    no answer in time); 5 the target refused (no such subsystem or\n"
"    namespace, host not allowed).\n"
"\n"
"EXAMPLES\n"
"    nvlend bdev create ram r0 64M\n"
"    nvlend bdev list\n"
"    nvlend rpc bdev_get_bdevs '{\"name\": \"r0\"}'\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct nvl_cli cli = { .prog = "nvlend", .timeout_ms = 30000 };
	struct nvl_cli_cmd *best = NULL;
	int best_words = 0, c, nwords;
	uint64_t v;

	cli.socket = getenv("NVLEND_SOCKET");
	if (cli.socket && !*cli.socket)
		cli.socket = NULL;
	/* global options stop at the first non-option word (the command) */
	while ((c = getopt_long(argc, argv, "+s:jt:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			cli.socket = optarg;
			break;
		case 'j':
			cli.json = true;
			break;
		case 't':
			if (nvl_parse_u64(optarg, 86400, &v) < 0 || v == 0) {
				fprintf(stderr, "nvlend: --timeout must be 1..86400 seconds\n");
				return CLI_USAGE;
			}
			cli.timeout_ms = (int)v * 1000;
			break;
		case 'h':
			print_main_help(stdout);
			return CLI_OK;
		case 'V':
			printf("nvlend 0.1.0\n");
			return CLI_OK;
		default:
			fprintf(stderr, "Try 'nvlend --help'.\n");
			return CLI_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	/* --json is global but also accepted after the command words */
	{
		int w = 0;
		bool dashdash = false;

		for (int r = 0; r < argc; r++) {
			if (strcmp(argv[r], "--") == 0)
				dashdash = true;
			if (!dashdash && (strcmp(argv[r], "--json") == 0 || strcmp(argv[r], "-j") == 0)) {
				cli.json = true;
				continue;
			}
			argv[w++] = argv[r];
		}
		argc = w;
	}
	if (argc == 0) {
		print_main_help(stderr);
		return CLI_USAGE;
	}
	/* longest command path matching the leading words */
	for (nwords = 1; nwords <= argc && argv[nwords - 1][0] != '-'; nwords++) {
		for (struct nvl_cli_cmd *cmd = g_cmds; cmd; cmd = cmd->next) {
			if (count_words(cmd->path) == nwords &&
			    path_has_prefix(cmd->path, argv, nwords)) {
				best = cmd;
				best_words = nwords;
			}
		}
	}
	if (best == NULL) {
		int n;
		bool any = false;

		/* a group prefix ("bdev", "bdev create")? */
		for (n = argc; n > 0; n--) {
			for (struct nvl_cli_cmd *cmd = g_cmds; cmd; cmd = cmd->next)
				if (argv[n - 1][0] != '-' && path_has_prefix(cmd->path, argv, n))
					any = true;
			if (any)
				break;
		}
		if (any) {
			bool help = cli_wants_help(argc, argv);

			if (!help && n < argc && argv[n][0] != '-') {
				const char *near = nearest_next_word(argv, n, argv[n]);

				fprintf(stderr, "nvlend: unknown command '%s'", argv[n]);
				if (near)
					fprintf(stderr, " (did you mean '%s'?)", near);
				fprintf(stderr, "\n\n");
			}
			print_group_help(help ? stdout : stderr, argv, n);
			return help ? CLI_OK : CLI_USAGE;
		}
		{
			const char *near = nearest_next_word(argv, 0, argv[0]);

			fprintf(stderr, "nvlend: unknown command '%s'", argv[0]);
			if (near)
				fprintf(stderr, " (did you mean '%s'?)", near);
			fprintf(stderr, "\nTry 'nvlend --help'.\n");
		}
		return CLI_USAGE;
	}
	cli.cmd_path = best->path;
	opterr = 0; /* commands report bad options themselves (cli_bad_option) */
	argc -= best_words - 1;
	argv += best_words - 1;
	if (cli_wants_help(argc, argv)) {
		cli_print_help(&cli, best, stdout);
		return CLI_OK;
	}
	return best->fn(&cli, argc, argv);
}
