/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvlend brick ...: the memory brick.
 *  - management through the daemon's RPC: create, delete, show, listen
 *  - the block API through libnvlend (brick URIs, no daemon socket needed):
 *    alloc, free, list, write, read, info
 */
#include "cli.h"
#include "nvlend/brick.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------- */

static int
parse_addr(struct nvl_cli *cli, const char *s, uint64_t *addr)
{
	if (nvl_parse_size(s, addr) < 0)
		return cli_usage_error(cli, "'%s' is not an address (use hex 0x200000 or a size "
					    "such as 2M)", s);
	if (*addr & (NVL_BRICK_BLOCK_SIZE - 1))
		return cli_usage_error(cli, "address 0x%" PRIx64 " is not 2 MiB aligned", *addr);
	return CLI_OK;
}

static int
brick_open(struct nvl_cli *cli, const char *uri, struct nvl_brick **b)
{
	int rc = nvl_brick_connect(uri, b);

	if (rc == 0)
		return CLI_OK;
	if (rc == -EINVAL || rc == -ENAMETOOLONG)
		return cli_usage_error(cli, "bad brick URI '%s' (brick+shm:///SOCKET?name=NAME, "
					    "brick+tcp://HOST:PORT/NAME or "
					    "brick+rdma://HOST:PORT/NAME)", uri);
	fprintf(stderr, "%s %s: cannot connect to %s: %s\n", cli->prog, cli->cmd_path, uri,
		rc == -ENOENT ? "no such brick or socket"
		: rc == -ENODEV && strncmp(uri, "brick+rdma:", 11) == 0
			? "no RDMA connection manager (rdma_ucm loaded? /dev/infiniband/rdma_cm)"
		: rc == -EADDRNOTAVAIL && strncmp(uri, "brick+rdma:", 11) == 0
			? "no RDMA device has this address (or reaches it)"
			: strerror(-rc));
	return CLI_NODAEMON;
}

static int
op_error(struct nvl_cli *cli, const char *what, uint64_t addr, int rc)
{
	const char *why = strerror(-rc);

	switch (rc) {
	case -EEXIST: why = "block already allocated"; break;
	case -ENOENT: why = "block not allocated"; break;
	case -ENOSPC: why = "brick is full"; break;
	case -EBUSY: why = "block is mapped exclusively (or already mapped)"; break;
	case -ENOMEM: why = "fast tier is full of mapped blocks"; break;
	case -EACCES:
		why = strcmp(what, "map") == 0 || strcmp(what, "free") == 0 ||
				      strcmp(what, "key") == 0
			      ? "permission denied (not the block's owner, and no or a wrong "
				"--key)"
			      : "handle revoked";
		break;
	default: break;
	}
	fprintf(stderr, "%s %s: %s 0x%" PRIx64 ": %s\n", cli->prog, cli->cmd_path, what, addr, why);
	return CLI_ERR;
}

static const char *
state_name(uint32_t s)
{
	switch (s) {
	case NVL_BRICK_EXT_FAST: return "fast";
	case NVL_BRICK_EXT_SLOW: return "slow";
	case NVL_BRICK_EXT_MAPPED: return "mapped";
	default: return "?";
	}
}

/* --key HEX of read, write and free: a block key handed over by its owner */
static struct {
	bool set;
	uint8_t key[NVL_BRICK_KEY_SIZE];
} g_key;

static int
parse_key(struct nvl_cli *cli, const char *hex)
{
	if (nvl_brick_key_parse(hex, g_key.key) < 0)
		return cli_usage_error(cli, "--key takes a block key: 32 hex digits "
					    "(nvlend brick key URI ADDR prints one)");
	g_key.set = true;
	return CLI_OK;
}

/* Connect and, with --key, give the connection the key of addr. */
static int
brick_open_key(struct nvl_cli *cli, const char *uri, uint64_t addr, struct nvl_brick **b)
{
	int rc = brick_open(cli, uri, b);

	if (rc == CLI_OK && g_key.set && nvl_brick_key_add(*b, addr, g_key.key) < 0) {
		nvl_brick_disconnect(*b);
		return CLI_ERR;
	}
	return rc;
}

/* ---- block API --------------------------------------------------------- */

/* URI ADDR [--key HEX] (key_ok): \return CLI_OK with argv[optind], argv[optind+1]. */
static int
parse_uri_addr(struct nvl_cli *cli, int argc, char **argv, bool key_ok, uint64_t *addr)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0; /* 0: glibc re-initialises (main.c parsed with "+") */
	while ((c = getopt_long(argc, argv, key_ok ? "k:" : "", opts, NULL)) != -1) {
		if (c == 'k' && key_ok) {
			if (parse_key(cli, optarg) != CLI_OK)
				return CLI_USAGE;
			continue;
		}
		return cli_bad_option(cli, argv, opts);
	}
	if (argc - optind != 2)
		return cli_usage_error(cli, "expected URI ADDR");
	return parse_addr(cli, argv[optind + 1], addr);
}

static int
cmd_brick_alloc_free(struct nvl_cli *cli, int argc, char **argv, bool alloc)
{
	char hex[2 * NVL_BRICK_KEY_SIZE + 1] = "";
	uint8_t key[NVL_BRICK_KEY_SIZE];
	struct nvl_brick *b;
	uint64_t addr;
	int rc;

	rc = parse_uri_addr(cli, argc, argv, !alloc, &addr);
	if (rc != CLI_OK)
		return rc;
	rc = brick_open_key(cli, argv[optind], addr, &b);
	if (rc != CLI_OK)
		return rc;
	rc = alloc ? nvl_brick_alloc(b, addr) : nvl_brick_free(b, addr);
	if (rc == 0 && alloc && nvl_brick_key_get(b, addr, key) == 0)
		nvl_brick_key_format(key, hex);
	nvl_brick_disconnect(b);
	if (rc < 0)
		return op_error(cli, alloc ? "alloc" : "free", addr, rc);
	return cli_done(cli, json_pack("{s:I, s:s, s:s?}", "addr", (json_int_t)addr, "state",
				       alloc ? "allocated" : "freed", "key", hex[0] ? hex : NULL),
			"%s the 2 MiB block at 0x%" PRIx64, alloc ? "allocated" : "freed", addr);
}

static int
cmd_brick_alloc(struct nvl_cli *cli, int argc, char **argv)
{
	return cmd_brick_alloc_free(cli, argc, argv, true);
}
NVL_CLI_COMMAND(g_cmd_brick_alloc, "brick alloc", "allocate a 2 MiB block of a brick",
"NAME\n"
"    nvlend brick alloc - allocate the block at a logical address\n"
"\n"
"SYNOPSIS\n"
"    nvlend brick alloc URI ADDR\n"
"\n"
"DESCRIPTION\n"
"    URI is brick+shm:///SOCKET/PATH?name=NAME, brick+tcp://HOST:PORT/NAME or\n"
"    brick+rdma://HOST:PORT/NAME (RDMA CM; mapped blocks are read and written\n"
"    with one-sided RDMA READ/WRITE).\n"
"    ADDR is any 2 MiB-aligned 64-bit value, in hex (0x200000) or as a size\n"
"    (2M, 1G): the block's logical id. The new block reads as zeroes. Fails if\n"
"    the block exists (EEXIST) or the brick is full (ENOSPC).\n"
"\n"
"    The block belongs to this client's identity (the secret in\n"
"    $NVLEND_BRICK_IDENTITY, else ~/.config/nvlend/brick-identity, made on\n"
"    first use): the same identity may map, read, write and free it from any\n"
"    connection and either transport; anyone else needs its key ('nvlend\n"
"    brick key'; --json prints it here too).\n"
"\n"
"EXAMPLE\n"
"    nvlend brick alloc brick+tcp://127.0.0.1:4421/b0 0x200000\n",
		cmd_brick_alloc)

static int
cmd_brick_free(struct nvl_cli *cli, int argc, char **argv)
{
	return cmd_brick_alloc_free(cli, argc, argv, false);
}
NVL_CLI_COMMAND(g_cmd_brick_free, "brick free", "free a block of a brick",
"NAME\n"
"    nvlend brick free - free the block at a logical address\n"
"\n"
"SYNOPSIS\n"
"    nvlend brick free URI ADDR [--key KEY]\n"
"\n"
"DESCRIPTION\n"
"    The block's space returns to the brick and every handle to it is revoked;\n"
"    the address can be allocated again. Fails with ENOENT if not allocated,\n"
"    with 'permission denied' if this client is not the block's owner and\n"
"    gives no (or a wrong) --key.\n"
"\n"
"OPTIONS\n"
"    -k, --key KEY    the block's key (32 hex digits), handed over by its owner\n",
		cmd_brick_free)

static int
cmd_brick_key(struct nvl_cli *cli, int argc, char **argv)
{
	char hex[2 * NVL_BRICK_KEY_SIZE + 1];
	uint8_t key[NVL_BRICK_KEY_SIZE];
	struct nvl_brick *b;
	uint64_t addr;
	int rc;

	rc = parse_uri_addr(cli, argc, argv, false, &addr);
	if (rc != CLI_OK)
		return rc;
	rc = brick_open(cli, argv[optind], &b);
	if (rc != CLI_OK)
		return rc;
	rc = nvl_brick_key_get(b, addr, key);
	nvl_brick_disconnect(b);
	if (rc < 0)
		return op_error(cli, "key", addr, rc);
	nvl_brick_key_format(key, hex);
	explicit_bzero(key, sizeof(key));
	return cli_done(cli, json_pack("{s:I, s:s}", "addr", (json_int_t)addr, "key", hex), "%s",
			hex);
}
NVL_CLI_COMMAND(g_cmd_brick_key, "brick key", "print a block's key (owner only)",
"NAME\n"
"    nvlend brick key - print the key of a block this client owns\n"
"\n"
"SYNOPSIS\n"
"    nvlend brick key URI ADDR\n"
"\n"
"DESCRIPTION\n"
"    Prints the block's key, 32 hex digits. Whoever has it may map, read,\n"
"    write and free the block (nvlend brick read/write/free --key KEY;\n"
"    nvl_brick_key_add() in libnvlend): give it only to those who should.\n"
"    Only the block's owner (the identity that allocated it) is told the key;\n"
"    anyone else gets 'permission denied'. Operators see every key with\n"
"    'nvlend rpc brick_get_blocks {\"name\": NAME, \"show_keys\": true}'.\n"
"\n"
"EXAMPLE\n"
"    key=$(nvlend brick key brick+tcp://10.0.0.1:4421/b0 2M)\n"
"    nvlend brick read brick+tcp://10.0.0.1:4421/b0 2M --key \"$key\"  # elsewhere\n",
		cmd_brick_key)

static int
cmd_brick_extents(struct nvl_cli *cli, int argc, char **argv)
{
	static const char *const hdr[] = { "ADDRESS", "LENGTH", "BLOCKS", "STATE" };
	struct nvl_brick_extent *ext;
	struct nvl_brick *b;
	struct cli_table *t;
	size_t n;
	int rc;

	if (argc != 2)
		return cli_usage_error(cli, "expected URI");
	rc = brick_open(cli, argv[1], &b);
	if (rc != CLI_OK)
		return rc;
	rc = nvl_brick_list(b, &ext, &n);
	nvl_brick_disconnect(b);
	if (rc < 0) {
		fprintf(stderr, "%s %s: %s\n", cli->prog, cli->cmd_path, strerror(-rc));
		return CLI_ERR;
	}
	if (cli->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_pack("{s:I, s:I, s:s}", "addr",
							     (json_int_t)ext[i].addr, "length",
							     (json_int_t)ext[i].length, "state",
							     state_name(ext[i].state)));
		cli_print_json(arr);
		json_decref(arr);
		free(ext);
		return CLI_OK;
	}
	t = cli_table_new(4, hdr);
	for (size_t i = 0; i < n; i++) {
		char a[24], l[24], c[24];

		snprintf(a, sizeof(a), "0x%" PRIx64, ext[i].addr);
		cli_fmt_size(ext[i].length, l, sizeof(l));
		snprintf(c, sizeof(c), "%" PRIu64, ext[i].length / NVL_BRICK_BLOCK_SIZE);
		cli_table_add(t, a, l, c, state_name(ext[i].state));
	}
	if (n == 0)
		printf("no block is allocated\n");
	else
		cli_table_print(t, stdout);
	cli_table_free(t);
	free(ext);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_brick_extents, "brick extents",
		"a client's view: extents of a brick's allocated blocks",
"NAME\n"
"    nvlend brick extents - list the allocated ranges of a brick, as a client\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] brick extents URI\n"
"\n"
"DESCRIPTION\n"
"    One line per extent of consecutive allocated blocks in one state, of the\n"
"    blocks this client's identity owns (operators see every block with\n"
"    'nvlend rpc brick_get_blocks'):\n"
"    mapped (resident and mapped), fast (resident in the fast tier) or slow\n"
"    (moved to the slow tier). This is what a client reads at mount time or\n"
"    after a crash to learn which blocks exist. Asked over the brick's own\n"
"    protocol (URI), like alloc, read and write; 'nvlend brick list' lists the\n"
"    daemon's bricks.\n",
		cmd_brick_extents)

static int
read_stdin(uint8_t *buf, size_t cap, size_t *got)
{
	size_t n = 0;

	for (;;) {
		ssize_t r;
		uint8_t extra;

		if (n == cap) {
			r = read(0, &extra, 1);
			if (r < 0 && errno == EINTR)
				continue;
			if (r > 0)
				return -EFBIG;
			break;
		}
		r = read(0, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*got = n;
	return 0;
}

static int
parse_off_len(struct nvl_cli *cli, int argc, char **argv, bool want_len, uint64_t *off,
	      uint64_t *len)
{
	static const struct option opts[] = {
		{ "offset", required_argument, NULL, 'o' },
		{ "length", required_argument, NULL, 'l' },
		{ "key", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*off = 0;
	*len = 0;
	optind = 0; /* 0: glibc re-initialises (main.c parsed with "+") */
	while ((c = getopt_long(argc, argv, want_len ? "o:l:k:" : "o:k:", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (parse_key(cli, optarg) != CLI_OK)
				return CLI_USAGE;
			break;
		case 'o':
			if (cli_parse_size(optarg, "--offset", off) != CLI_OK)
				return CLI_USAGE;
			break;
		case 'l':
			if (!want_len)
				return cli_usage_error(cli, "--length is not an option here");
			if (cli_parse_size(optarg, "--length", len) != CLI_OK)
				return CLI_USAGE;
			break;
		default:
			return cli_bad_option(cli, argv, opts);
		}
	}
	if (*off >= NVL_BRICK_BLOCK_SIZE)
		return cli_usage_error(cli, "--offset must be below 2 MiB");
	if (*len > NVL_BRICK_BLOCK_SIZE - *off)
		return cli_usage_error(cli, "--offset + --length must stay inside the 2 MiB block");
	if (argc - optind != 2)
		return cli_usage_error(cli, "expected URI ADDR");
	return CLI_OK;
}

static int
cmd_brick_write(struct nvl_cli *cli, int argc, char **argv)
{
	struct nvl_brick_handle h;
	struct nvl_brick *b;
	uint64_t addr, off, len;
	uint8_t *buf;
	size_t n = 0;
	int rc;

	rc = parse_off_len(cli, argc, argv, false, &off, &len);
	if (rc != CLI_OK)
		return rc;
	rc = parse_addr(cli, argv[optind + 1], &addr);
	if (rc != CLI_OK)
		return rc;
	buf = malloc(NVL_BRICK_BLOCK_SIZE);
	if (buf == NULL)
		return CLI_ERR;
	rc = read_stdin(buf, NVL_BRICK_BLOCK_SIZE - off, &n);
	if (rc < 0) {
		fprintf(stderr, "%s %s: %s\n", cli->prog, cli->cmd_path,
			rc == -EFBIG ? "input does not fit in the block after --offset"
				     : strerror(-rc));
		free(buf);
		return rc == -EFBIG ? CLI_USAGE : CLI_ERR;
	}
	rc = brick_open_key(cli, argv[optind], addr, &b);
	if (rc != CLI_OK) {
		free(buf);
		return rc;
	}
	rc = nvl_brick_map(b, addr, NVL_BRICK_RW | NVL_BRICK_SHARED, &h);
	if (rc < 0) {
		rc = op_error(cli, "map", addr, rc);
		goto out;
	}
	if (n > 0) {
		if (h.ptr) {
			memcpy((uint8_t *)h.ptr + off, buf, n); /* one-sided store */
			rc = 0;
		} else {
			rc = nvl_brick_write(b, h.key, addr + off, buf, n);
		}
		if (rc == 0)
			rc = nvl_brick_flush(b, h.key, addr + off, n);
	}
	if (rc < 0) {
		nvl_brick_unmap(b, addr);
		rc = op_error(cli, "write", addr, rc);
		goto out;
	}
	rc = nvl_brick_unmap(b, addr);
	rc = rc < 0 ? op_error(cli, "unmap", addr, rc) : CLI_OK;
	if (rc == CLI_OK)
		rc = cli_done(cli, json_pack("{s:I, s:I, s:I}", "addr", (json_int_t)addr, "offset",
					     (json_int_t)off, "bytes", (json_int_t)n),
			      "wrote %zu bytes at 0x%" PRIx64 " + %" PRIu64 ", flushed (durable)", n,
			      addr, off);
out:
	nvl_brick_disconnect(b);
	free(buf);
	return rc;
}
NVL_CLI_COMMAND(g_cmd_brick_write, "brick write", "write stdin into a block (durably)",
"NAME\n"
"    nvlend brick write - write standard input into a block and flush it\n"
"\n"
"SYNOPSIS\n"
"    nvlend brick write URI ADDR [--offset N] [--key KEY] < DATA\n"
"\n"
"DESCRIPTION\n"
"    Maps the block read-write (shared), writes stdin at --offset (default 0)\n"
"    -- with plain stores into the mapping on brick+shm URIs, with WRITE\n"
"    messages on brick+tcp URIs, with one-sided RDMA WRITE on brick+rdma\n"
"    URIs -- flushes the written range (durable when\n"
"    the command returns, as far as the brick's medium allows) and unmaps.\n"
"    The input must fit in the 2 MiB block after the offset.\n"
"\n"
"    A block of another client needs its --key ('permission denied' else).\n"
"\n"
"OPTIONS\n"
"    -o, --offset N   byte offset in the block (hex or size suffixes)\n"
"    -k, --key KEY    the block's key (32 hex digits), handed over by its owner\n"
"\n"
"EXAMPLE\n"
"    echo hello | nvlend brick write brick+shm:///run/b.sock?name=b0 2M --offset 4k\n",
		cmd_brick_write)

static int
write_stdout(const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(1, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
cmd_brick_read(struct nvl_cli *cli, int argc, char **argv)
{
	struct nvl_brick_handle h;
	struct nvl_brick *b;
	uint64_t addr, off, len;
	uint8_t *buf = NULL;
	int rc;

	rc = parse_off_len(cli, argc, argv, true, &off, &len);
	if (rc != CLI_OK)
		return rc;
	rc = parse_addr(cli, argv[optind + 1], &addr);
	if (rc != CLI_OK)
		return rc;
	if (len == 0)
		len = NVL_BRICK_BLOCK_SIZE - off;
	rc = brick_open_key(cli, argv[optind], addr, &b);
	if (rc != CLI_OK)
		return rc;
	rc = nvl_brick_map(b, addr, NVL_BRICK_RO | NVL_BRICK_SHARED, &h);
	if (rc < 0) {
		rc = op_error(cli, "map", addr, rc);
		goto out;
	}
	if (h.ptr) {
		rc = write_stdout((const uint8_t *)h.ptr + off, len); /* one-sided loads */
	} else {
		buf = malloc(len);
		rc = buf ? nvl_brick_read(b, h.key, addr + off, buf, len) : -ENOMEM;
		if (rc == 0)
			rc = write_stdout(buf, len);
	}
	nvl_brick_unmap(b, addr);
	rc = rc < 0 ? op_error(cli, "read", addr, rc) : CLI_OK;
out:
	nvl_brick_disconnect(b);
	free(buf);
	return rc;
}
NVL_CLI_COMMAND(g_cmd_brick_read, "brick read", "read a block to stdout",
"NAME\n"
"    nvlend brick read - copy (part of) a block to standard output\n"
"\n"
"SYNOPSIS\n"
"    nvlend brick read URI ADDR [--offset N] [--length N] [--key KEY] > DATA\n"
"\n"
"DESCRIPTION\n"
"    Maps the block read-only (shared), copies --length bytes (default: to the\n"
"    end of the block) from --offset (default 0), and unmaps. A block in the\n"
"    slow tier is brought back to the fast tier by the map. A block of another\n"
"    client needs its --key ('permission denied' else).\n"
"\n"
"OPTIONS\n"
"    -o, --offset N   byte offset in the block\n"
"    -l, --length N   bytes to read\n"
"    -k, --key KEY    the block's key (32 hex digits), handed over by its owner\n",
		cmd_brick_read)

static int
cmd_brick_info(struct nvl_cli *cli, int argc, char **argv)
{
	struct nvl_brick_info i;
	struct nvl_brick *b;
	int rc;

	if (argc != 2)
		return cli_usage_error(cli, "expected URI");
	rc = brick_open(cli, argv[1], &b);
	if (rc != CLI_OK)
		return rc;
	rc = nvl_brick_info(b, &i);
	nvl_brick_disconnect(b);
	if (rc < 0) {
		fprintf(stderr, "%s %s: %s\n", cli->prog, cli->cmd_path, strerror(-rc));
		return CLI_ERR;
	}
	if (cli->json) {
		json_t *o = json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:b, s:b}",
				      "version", (int)i.version, "block_size",
				      (json_int_t)i.block_size, "capacity_blocks",
				      (json_int_t)i.capacity_blocks, "fast_blocks",
				      (json_int_t)i.fast_blocks, "allocated_blocks",
				      (json_int_t)i.allocated_blocks, "mapped_blocks",
				      (json_int_t)i.mapped_blocks, "fast_tier_blocks",
				      (json_int_t)i.fast_tier_blocks, "slow_tier_blocks",
				      (json_int_t)i.slow_tier_blocks, "persistence",
				      nvl_brick_persistence_name(i.persistence), "volatile",
				      i.is_volatile, "local", i.local);
		cli_print_json(o);
		json_decref(o);
		return CLI_OK;
	}
	printf("protocol version   %u\n", i.version);
	printf("block size         %" PRIu64 "\n", i.block_size);
	printf("capacity           %" PRIu64 " blocks\n", i.capacity_blocks);
	printf("fast-tier budget   %" PRIu64 " blocks\n", i.fast_blocks);
	printf("allocated          %" PRIu64 " blocks\n", i.allocated_blocks);
	printf("mapped             %" PRIu64 " blocks\n", i.mapped_blocks);
	printf("in fast tier       %" PRIu64 " blocks\n", i.fast_tier_blocks);
	printf("in slow tier       %" PRIu64 " blocks\n", i.slow_tier_blocks);
	printf("persistence        %s%s\n", nvl_brick_persistence_name(i.persistence),
	       i.is_volatile ? " (volatile: flushed data survives a daemon crash, not a reboot)"
			     : "");
	printf("access             %s\n", i.local ? "one-sided (mmap of block files)"
						  : "read/write messages");
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_brick_info, "brick info", "what a brick reports about itself",
"NAME\n"
"    nvlend brick info - show a brick's geometry, occupancy and persistence\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] brick info URI\n",
		cmd_brick_info)

/* ---- management (RPC) -------------------------------------------------- */


/* BLOCKS, or a size with a unit (8G) that is a multiple of 2 MiB */
static int
parse_blocks(struct nvl_cli *cli, const char *s, const char *what, uint64_t *out)
{
	size_t n = strlen(s);
	uint64_t v;

	if (n && isalpha((unsigned char)s[n - 1])) {
		if (cli_parse_size(s, what, &v) != CLI_OK)
			return CLI_USAGE;
		if (v == 0 || v % NVL_BRICK_BLOCK_SIZE)
			return cli_usage_error(cli, "%s must be a multiple of 2 MiB", what);
		*out = v / NVL_BRICK_BLOCK_SIZE;
		return CLI_OK;
	}
	return cli_parse_u64(s, what, UINT64_MAX, out);
}

static int
cmd_brick_create(struct nvl_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "fast", required_argument, NULL, 'f' },
		{ "slow", required_argument, NULL, 's' },
		{ "slow-file", required_argument, NULL, 'S' },
		{ "capacity", required_argument, NULL, 'c' },
		{ "fast-blocks", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	char fast[4096], slow[4096];
	const char *fast_arg = NULL, *slow_arg = NULL, *slow_file_arg = NULL;
	uint64_t cap = 0, fb = 0;
	json_t *params, *result;
	int c, rc;

	optind = 0; /* 0: glibc re-initialises (main.c parsed with "+") */
	while ((c = getopt_long(argc, argv, "f:s:S:c:b:", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fast_arg = optarg;
			break;
		case 's':
			slow_arg = optarg;
			break;
		case 'S':
			slow_file_arg = optarg;
			break;
		case 'c':
			if (parse_blocks(cli, optarg, "--capacity", &cap) != CLI_OK)
				return CLI_USAGE;
			break;
		case 'b':
			if (parse_blocks(cli, optarg, "--fast-blocks", &fb) != CLI_OK)
				return CLI_USAGE;
			break;
		default:
			return cli_bad_option(cli, argv, opts);
		}
	}
	if (argc - optind != 1 || fast_arg == NULL || cap == 0)
		return cli_usage_error(cli, "expected NAME --fast DIR --capacity N");
	if (slow_arg && slow_file_arg)
		return cli_usage_error(cli, "--slow and --slow-file are mutually exclusive");
	if (slow_file_arg)
		slow_arg = slow_file_arg;
	/* the daemon resolves paths from its own cwd: send absolute ones */
	if (cli_abs_path(fast_arg, fast, sizeof(fast)) < 0 ||
	    (slow_arg && cli_abs_path(slow_arg, slow, sizeof(slow)) < 0)) {
		fprintf(stderr, "%s: path too long\n", cli->prog);
		return CLI_USAGE;
	}
	params = json_pack("{s:s, s:s, s:I}", "name", argv[optind], "fast_dir", fast,
			   "capacity_blocks", (json_int_t)cap);
	if (slow_arg)
		json_object_set_new(params, slow_file_arg ? "slow_file" : "slow_dir",
				    json_string(slow));
	if (fb)
		json_object_set_new(params, "fast_blocks", json_integer((json_int_t)fb));
	rc = cli_call(cli, "brick_create", params, &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	{
		json_t *o = cli_get_object(cli, "brick_get_bricks", "name", argv[optind]);
		long long alloc = json_integer_value(json_object_get(o, "allocated_blocks"));
		char recovered[64] = "";

		if (alloc > 0)
			snprintf(recovered, sizeof(recovered), "; recovered %lld block%s", alloc,
				 alloc == 1 ? "" : "s");
		return cli_done(cli, o, "created brick %s: %llu blocks of 2 MiB, fast tier %s (%s)%s%s%s",
				argv[optind], (unsigned long long)cap, fast,
				o ? json_string_value(json_object_get(o, "persistence")) : "?",
				slow_arg ? ", slow tier " : "", slow_arg ? slow : "", recovered);
	}
}
NVL_CLI_COMMAND(g_cmd_brick_create, "brick create", "create (or recover) a memory brick",
"NAME\n"
"    nvlend brick create - create a brick of 2 MiB blocks in the daemon\n"
"\n"
"SYNOPSIS\n"
"    nvlend brick create NAME --fast DIR [--slow DIR | --slow-file PATH] --capacity N\n"
"        [--fast-blocks N]\n"
"\n"
"DESCRIPTION\n"
"    The fast tier is a directory on tmpfs or hugetlbfs (volatile), a DAX file\n"
"    system (pmem: flush writes CPU caches back) or any file system (flush =\n"
"    fdatasync). Unmapped blocks move to the slow-tier directory when more\n"
"    than --fast-blocks blocks would be resident. Blocks already present in\n"
"    the directories are recovered. N is a block count or a size (8G).\n"
"    --slow-file puts the slow tier in 2 MiB slots of one existing file or\n"
"    block device (formatted when its first 4 KiB are zero, e.g. a file made\n"
"    with truncate -s; it needs capacity - fast-blocks + 1 slots).\n"
"    Serve it with 'nvlend brick listen'. RPC: brick_create.\n"
"\n"
"OPTIONS\n"
"    -f, --fast DIR          fast-tier directory (created if missing)\n"
"    -s, --slow DIR          slow-tier directory\n"
"    -S, --slow-file PATH    slow tier in a file or block device\n"
"    -c, --capacity N        blocks the brick may hold\n"
"    -b, --fast-blocks N     fast-tier budget (default: capacity)\n"
"\n"
"EXAMPLE\n"
"    nvlend brick create b0 --fast /dev/shm/b0 --slow /var/lib/b0 --capacity 64G \\\n"
"        --fast-blocks 4G\n",
		cmd_brick_create)

static int
cmd_brick_delete(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *result;
	bool purge = false;
	const char *name = NULL;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--purge") == 0)
			purge = true;
		else if (name == NULL && argv[i][0] != '-')
			name = argv[i];
		else
			return cli_usage_error(cli, "unexpected '%s'", argv[i]);
	}
	if (name == NULL)
		return cli_usage_error(cli, "expected NAME");
	rc = cli_call(cli, "brick_delete", json_pack("{s:s, s:b}", "name", name, "purge", purge),
		      &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	return cli_done(cli, json_pack("{s:s, s:b, s:b}", "name", name, "deleted", true, "purged",
				       purge),
			"deleted brick %s (%s)", name,
			purge ? "its block files are gone" : "its block files stay: brick create "
							     "recovers them");
}
NVL_CLI_COMMAND(g_cmd_brick_delete, "brick delete", "delete a brick",
"NAME\n"
"    nvlend brick delete - delete a brick from the daemon\n"
"\n"
"SYNOPSIS\n"
"    nvlend brick delete NAME [--purge]\n"
"\n"
"DESCRIPTION\n"
"    Revokes every handle and closes the brick's connections. The block files\n"
"    stay in the tier directories (brick create recovers them) unless --purge\n"
"    is given. RPC: brick_delete.\n",
		cmd_brick_delete)

static int
cmd_brick_list(struct nvl_cli *cli, int argc, char **argv)
{
	static const char *const hdr[] = { "NAME", "FAST TIER", "PERSISTENCE", "CAPACITY",
					   "ALLOCATED", "MAPPED", "FAST", "SLOW" };
	json_t *params = NULL, *result, *o;
	struct cli_table *t;
	size_t i;
	int rc;

	if (argc > 2)
		return cli_usage_error(cli, "expected [NAME]");
	if (argc == 2 && strstr(argv[1], "://")) {
		fprintf(stderr, "nvlend brick list: lists the daemon's bricks (by NAME); a "
				"client's extent list is 'nvlend brick extents %s'\n", argv[1]);
		return CLI_USAGE;
	}
	if (argc == 2)
		params = json_pack("{s:s}", "name", argv[1]);
	rc = cli_call(cli, "brick_get_bricks", params, &result);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		cli_print_json(result);
		json_decref(result);
		return CLI_OK;
	}
	t = cli_table_new(8, hdr);
	json_array_foreach(result, i, o) {
		char v[6][32];
		const char *keys[6] = { "capacity_blocks", "allocated_blocks", "mapped_blocks",
					"fast_tier_blocks", "slow_tier_blocks", "fast_blocks" };

		for (int k = 0; k < 6; k++)
			snprintf(v[k], sizeof(v[k]), "%" JSON_INTEGER_FORMAT,
				 json_integer_value(json_object_get(o, keys[k])));
		cli_table_add(t, json_string_value(json_object_get(o, "name")),
			      json_string_value(json_object_get(o, "fast_dir")),
			      json_string_value(json_object_get(o, "persistence")), v[0], v[1],
			      v[2], v[3], v[4]);
	}
	if (json_array_size(result) == 0)
		printf("no bricks (create one with 'nvlend brick create')\n");
	else
		cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(result);
	return CLI_OK;
}
NVL_CLI_COMMAND(g_cmd_brick_list, "brick list", "list the daemon's bricks",
"NAME\n"
"    nvlend brick list - list the daemon's bricks with their occupancy\n"
"\n"
"SYNOPSIS\n"
"    nvlend [--json] brick list [NAME]\n"
"\n"
"DESCRIPTION\n"
"    Counts are in 2 MiB blocks. --json adds listeners, connections and\n"
"    counters (flushes, bytes flushed, evictions, fetches, revocations).\n"
"    RPC: brick_get_bricks. (A client's extent list: 'nvlend brick extents'.)\n",
		cmd_brick_list)

static int
cmd_brick_listen(struct nvl_cli *cli, int argc, char **argv)
{
	json_t *params, *result;
	char path[4096];
	int rc;

	if (argc < 4)
		return cli_usage_error(cli, "expected NAME shm PATH | NAME tcp|rdma ADDR PORT");
	if (strcasecmp(argv[2], "shm") == 0 && argc == 4) {
		const char *p = path;

		if (cli_abs_path(argv[3], path, sizeof(path)) < 0)
			return cli_usage_error(cli, "socket path too long");
		params = json_pack("{s:s, s:s, s:s}", "name", argv[1], "trtype", "SHM", "traddr",
				   p);
	} else if ((strcasecmp(argv[2], "tcp") == 0 || strcasecmp(argv[2], "rdma") == 0) &&
		   argc == 5) {
		params = json_pack("{s:s, s:s, s:s, s:s}", "name", argv[1], "trtype",
				   strcasecmp(argv[2], "tcp") == 0 ? "TCP" : "RDMA", "traddr", argv[3],
				   "trsvcid", argv[4]);
	} else {
		return cli_usage_error(cli, "expected NAME shm PATH | NAME tcp|rdma ADDR PORT");
	}
	rc = cli_call(cli, "brick_add_listener", params, &result);
	if (rc != CLI_OK)
		return rc;
	json_decref(result);
	if (strcasecmp(argv[2], "shm") == 0)
		return cli_done(cli, cli_get_object(cli, "brick_get_bricks", "name", argv[1]),
				"brick %s listens on shm %s (URI brick+shm://%s?name=%s)", argv[1],
				path, path, argv[1]);
	return cli_done(cli, cli_get_object(cli, "brick_get_bricks", "name", argv[1]),
			"brick %s listens on %s %s port %s (URI brick+%s://%s%s%s:%s/%s)", argv[1],
			strcasecmp(argv[2], "tcp") == 0 ? "tcp" : "rdma", argv[3], argv[4],
			strcasecmp(argv[2], "tcp") == 0 ? "tcp" : "rdma",
			strchr(argv[3], ':') ? "[" : "", argv[3], strchr(argv[3], ':') ? "]" : "",
			argv[4], argv[1]);
}
NVL_CLI_COMMAND(g_cmd_brick_listen, "brick listen", "serve a brick on shm, tcp or rdma",
"NAME\n"
"    nvlend brick listen - add a listener for a brick\n"
"\n"
"SYNOPSIS\n"
"    nvlend brick listen NAME shm SOCKET_PATH\n"
"    nvlend brick listen NAME tcp ADDRESS PORT\n"
"    nvlend brick listen NAME rdma ADDRESS PORT\n"
"\n"
"DESCRIPTION\n"
"    shm: local clients connect to the Unix socket and map blocks into their\n"
"    address space (URI brick+shm://SOCKET_PATH?name=NAME). tcp: numeric\n"
"    IPv4/IPv6 address (URI brick+tcp://ADDRESS:PORT/NAME). rdma: an\n"
"    address an RDMA device owns (RoCE, soft-RoCE, IPoIB); maps are memory\n"
"    regions clients reach with one-sided RDMA (URI\n"
"    brick+rdma://ADDRESS:PORT/NAME). RPC: brick_add_listener.\n",
		cmd_brick_listen)
