/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvlend keyring ...: DH-HMAC-CHAP secrets for NVMe in-band authentication.
 * add/remove/list wrap the keyring_* RPCs (the daemon keeps names and paths,
 * the secrets stay in the files); gen writes a new DHHC-1 secret into a file
 * of mode 0600, as nvme gen-dhchap-key prints one.
 */
#include "cli.h"
#include "proto/nvme_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
cmd_keyring_add(struct nvl_cli *cli, int argc, char **argv)
{
	char abs[PATH_MAX];
	json_t *result;
	int rc;

	if (cli_wants_help(argc, argv) || argc != 3)
		return cli_usage_error(cli, "expected NAME PATH");
	/* the daemon wants an absolute path; resolve a relative one here */
	if (argv[2][0] != '/' && realpath(argv[2], abs) == NULL) {
		fprintf(stderr, "%s: %s: %s\n", cli->prog, argv[2], strerror(errno));
		return CLI_ERR;
	}
	rc = cli_call(cli, "keyring_file_add_key",
		      json_pack("{s:s, s:s}", "name", argv[1],
				"path", argv[2][0] == '/' ? argv[2] : abs),
		      &result);
	if (rc != CLI_OK)
		return rc;
	if (cli->json)
		cli_print_json(result);
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_keyring_add, "keyring add", "add a DH-HMAC-CHAP key kept in a file",
"NAME\n"
"    nvlend keyring add - name a DH-HMAC-CHAP secret kept in a file\n"
"\n"
"SYNOPSIS\n"
"    nvlend keyring add NAME PATH\n"
"\n"
"DESCRIPTION\n"
"    PATH holds one secret in the form nvme-cli and the Linux kernel use,\n"
"    DHHC-1:NN:<base64>: (nvlend keyring gen or nvme gen-dhchap-key make one).\n"
"    The file must be a regular file owned by the daemon's user with no access\n"
"    for group and others (mode 0600 or 0400), as SPDK's file keyring requires.\n"
"    The daemon checks and parses it now, keeps only NAME and PATH, and reads\n"
"    the file again whenever the key is used (at a host's Connect): rewrite the\n"
"    file to rotate the key. save_config saves NAME and PATH, never the secret.\n"
"    Then name the key in 'nvlend subsystem add-host ... --dhchap-key NAME'.\n"
"    RPC: keyring_file_add_key.\n"
"\n"
"EXAMPLE\n"
"    nvlend keyring gen --hmac sha256 /etc/nvlend/keys/host1.key\n"
"    nvlend keyring add host1 /etc/nvlend/keys/host1.key\n",
		cmd_keyring_add)

static int
cmd_keyring_remove(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *result;
	int rc;

	if (cli_wants_help(argc, argv) || argc != 2)
		return cli_usage_error(cli, "expected NAME");
	rc = cli_call(cli, "keyring_file_remove_key", json_pack("{s:s}", "name", argv[1]), &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_keyring_remove, "keyring remove", "forget a key",
"NAME\n"
"    nvlend keyring remove - forget a key (the file stays)\n"
"\n"
"SYNOPSIS\n"
"    nvlend keyring remove NAME\n"
"\n"
"DESCRIPTION\n"
"    Refused while a host entry of a subsystem uses the key (remove the host,\n"
"    or change its keys with nvmf_subsystem_set_keys, first).\n"
"    RPC: keyring_file_remove_key.\n",
		cmd_keyring_remove)

static int
cmd_keyring_list(struct nvl_cli *cli, int argc, char **argv)
{
	static const char *const hdr[] = { "NAME", "PATH", "USERS" };
	struct cli_table *t;
	json_t *result, *k;
	size_t i;
	int rc;

	(void)argv;
	if (argc != 1)
		return cli_usage_error(cli, "no arguments expected");
	rc = cli_call(cli, "keyring_get_keys", NULL, &result);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		cli_print_json(result);
		json_decref(result);
		return CLI_OK;
	}
	t = cli_table_new(3, hdr);
	json_array_foreach(result, i, k) {
		char users[16];

		snprintf(users, sizeof(users), "%lld",
			 (long long)json_integer_value(json_object_get(k, "users")));
		cli_table_add(t, json_string_value(json_object_get(k, "name")),
			      json_string_value(json_object_get(k, "path")), users);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_keyring_list, "keyring list", "list the keys",
"NAME\n"
"    nvlend keyring list - the keys of the keyring\n"
"\n"
"SYNOPSIS\n"
"    nvlend keyring list [--json]\n"
"\n"
"DESCRIPTION\n"
"    Name, file and how many host entries use each key. RPC: keyring_get_keys.\n",
		cmd_keyring_list)

static int
cmd_keyring_gen(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "hmac", required_argument, NULL, 'm' },
		{ "length", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	struct nvl_dhchap_key k;
	char text[NVL_DHCHAP_SECRET_MAX + 1];
	uint64_t len = 0;
	int hmac = 0, c, fd;
	size_t n;

	optind = 0; /* 0: glibc re-initializes (main() parsed with "+") */
	while ((c = getopt_long(argc, argv, "m:l:", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			hmac = strcmp(optarg, "none") == 0 ? 0 : nvl_dhchap_hash_id(optarg);
			if (hmac < 0)
				return cli_usage_error(cli, "--hmac: none, sha256, sha384 or sha512");
			break;
		case 'l':
			if (cli_parse_u64(optarg, "--length", 64, &len) != CLI_OK ||
			    (len != 32 && len != 48 && len != 64))
				return cli_usage_error(cli, "--length: 32, 48 or 64");
			break;
		default:
			return cli_bad_option(cli, argv, opts);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(cli, "expected FILE (or - for standard output)");
	if (len == 0)
		len = hmac ? nvl_dhchap_hash_len((uint8_t)hmac) : 32;
	if (nvl_dhchap_key_generate((uint8_t)hmac, (uint8_t)len, &k) < 0 ||
	    nvl_dhchap_key_format(&k, text, sizeof(text) - 1) < 0) {
		nvl_dhchap_key_wipe(&k);
		fprintf(stderr, "%s: cannot generate a key\n", cli->prog);
		return CLI_ERR;
	}
	nvl_dhchap_key_wipe(&k);
	n = strlen(text);
	text[n++] = '\n';
	if (strcmp(argv[optind], "-") == 0) {
		fd = STDOUT_FILENO;
	} else {
		/* never over an existing file, never readable by anyone else */
		fd = open(argv[optind], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			fprintf(stderr, "%s: %s: %s\n", cli->prog, argv[optind], strerror(errno));
			memset(text, 0, sizeof(text));
			return CLI_ERR;
		}
	}
	if (write(fd, text, n) != (ssize_t)n) {
		fprintf(stderr, "%s: %s: %s\n", cli->prog, argv[optind], strerror(errno));
		if (fd != STDOUT_FILENO)
			close(fd);
		memset(text, 0, sizeof(text));
		return CLI_ERR;
	}
	memset(text, 0, sizeof(text));
	if (fd != STDOUT_FILENO && close(fd) < 0) {
		fprintf(stderr, "%s: %s: %s\n", cli->prog, argv[optind], strerror(errno));
		return CLI_ERR;
	}
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_keyring_gen, "keyring gen", "write a new DH-HMAC-CHAP secret to a file",
"NAME\n"
"    nvlend keyring gen - make a DH-HMAC-CHAP secret\n"
"\n"
"SYNOPSIS\n"
"    nvlend keyring gen [--hmac none|sha256|sha384|sha512] [--length 32|48|64] FILE\n"
"\n"
"DESCRIPTION\n"
"    Writes a random secret as DHHC-1:NN:<base64(key || crc32)>: into FILE,\n"
"    created with mode 0600 (an existing FILE is not overwritten), or to\n"
"    standard output with FILE '-'. The same text is what nvme-cli's\n"
"    'nvme connect --dhchap-secret' and '--dhchap-ctrl-secret' take on the host.\n"
"    NN names the hash that transforms the key with the NQN before use (none:\n"
"    the key is used as it is). The secret never reaches the daemon's socket;\n"
"    give the file to 'nvlend keyring add'. No daemon is needed.\n"
"\n"
"OPTIONS\n"
"    -m, --hmac H      key transformation hash (default none)\n"
"    -l, --length N    key bytes (default: the hash's length, 32 for none)\n"
"\n"
"EXAMPLE\n"
"    nvlend keyring gen --hmac sha384 /etc/nvlend/keys/host1.key\n",
		cmd_keyring_gen)
