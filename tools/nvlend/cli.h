/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvlend CLI framework: commands are registered by path ("bdev create ram")
 * from any file in tools/nvlend/ with NVL_CLI_COMMAND; main.c finds the
 * longest registered path matching argv, prints group help for partial
 * paths, and handles global options. Helpers for RPC calls, sizes, tables.
 */
#ifndef NVL_CLI_H
#define NVL_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct nvl_cli {
	const char *socket;      /* -s / NVLEND_SOCKET / default */
	bool json;               /* --json: machine-readable output */
	int timeout_ms;
	const char *prog;        /* "nvlend" */
	const char *cmd_path;    /* the matched command path */
};

struct nvl_cli_cmd {
	const char *path;        /* words separated by single spaces */
	const char *summary;     /* one line */
	const char *usage;       /* full help: synopsis, description, options, examples */
	int (*fn)(struct nvl_cli *cli, int argc, char **argv);  /* argv[0] = last path word */
	struct nvl_cli_cmd *next;
};

void nvl_cli_register(struct nvl_cli_cmd *c);

#define NVL_CLI_COMMAND(sym, p, sum, use, f)                                                       \
	static struct nvl_cli_cmd sym = { .path = (p), .summary = (sum), .usage = (use), .fn = (f) }; \
	static void __attribute__((constructor)) sym##_register(void)                               \
	{                                                                                          \
		nvl_cli_register(&sym);                                                            \
	}

/* Exit codes */
#define CLI_OK 0
#define CLI_ERR 1          /* the operation failed */
#define CLI_USAGE 2        /* bad command line */
#define CLI_NODAEMON 3     /* daemon not reachable */

/** Call a method; on failure print a clear message and return an exit code.
 *  params is stolen. \return CLI_OK with *result set (new ref), else code. */
int cli_call(struct nvl_cli *cli, const char *method, json_t *params, json_t **result);

/** cli_call without any message on failure (for follow-up look-ups). */
int cli_call_quiet(struct nvl_cli *cli, const char *method, json_t *params, json_t **result);

/**
 * What a state-changing command prints on success: with --json the object
 * (never empty: {} when obj is NULL), else one line from fmt. obj is stolen.
 * \return CLI_OK.
 */
int cli_done(struct nvl_cli *cli, json_t *obj, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** The element of a list method's result whose `key` equals `value` (e.g.
 *  bdev_get_bdevs, "name", "r0"), sent as {key: value}; NULL when absent.
 *  Quiet. \return a new reference or NULL. */
json_t *cli_get_object(struct nvl_cli *cli, const char *method, const char *key,
		       const char *value);

/** The candidate closest to `word` if close enough to be a likely typo. */
const char *cli_nearest(const char *word, const char *const *cands, size_t n);

struct option;
/** The `default:` of a getopt_long loop (opterr is 0): names the bad option,
 *  suggests the nearest valid one, or says a value is missing. \return CLI_USAGE. */
int cli_bad_option(struct nvl_cli *cli, char **argv, const struct option *opts);

/** The absolute form of a path that may not exist yet (the daemon resolves
 *  relative paths from its own directory, so the CLI sends absolute ones).
 *  \return 0, -ENAMETOOLONG, -errno of getcwd. */
int cli_abs_path(const char *p, char *out, size_t len);

/** Print a JSON value (pretty) to stdout. */
void cli_print_json(const json_t *v);

/** Parse a size ("64M", "1G", "4096"); print an error naming `what` on failure. */
int cli_parse_size(const char *s, const char *what, uint64_t *out);
int cli_parse_u64(const char *s, const char *what, uint64_t max, uint64_t *out);

/** Print usage error: "nvlend PATH: msg" + "Try 'nvlend PATH --help'". Returns CLI_USAGE. */
int cli_usage_error(struct nvl_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Print the full help of a command. */
void cli_print_help(struct nvl_cli *cli, const struct nvl_cli_cmd *c, FILE *f);

/** True if argv has -h/--help anywhere (before "--"). */
bool cli_wants_help(int argc, char **argv);

/* Simple table printer: columns separated by two spaces, widths fitted. */
struct cli_table;
struct cli_table *cli_table_new(int ncols, const char *const *headers);
void cli_table_add(struct cli_table *t, ...);  /* ncols const char * */
void cli_table_print(struct cli_table *t, FILE *f);
void cli_table_free(struct cli_table *t);

const char *cli_fmt_size(uint64_t bytes, char *buf, size_t len);

#endif
