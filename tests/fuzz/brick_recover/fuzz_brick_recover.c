/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the brick store's recovery (src/brick/store_recover.c,
 * src/brick/slotfile.c): what a brick finds on disk when it opens, which a
 * crash, a full disk or whoever can write its directories left there. The
 * input builds a fast tier directory, and either a slow tier directory or a
 * slow slot file, then the brick is opened (brick_create recovers it).
 *
 * Input: byte 0 picks the layout (bit 0: slot file instead of a slow
 * directory; bits 1-3: capacity 1..8; bits 4-6: fast budget), then
 * operations of one byte plus their arguments until the input ends:
 *   0 ADDR8 SIZE1    a file blk-<ADDR> in the fast directory (SIZE 0: 2 MiB,
 *                    else SIZE * 4 KiB)
 *   1 ADDR8 SIZE1    the same in the slow directory
 *   2 NAME1          a leftover .tmp-N or .spare-N in either directory
 *   3 SLOT1 FLAGS1 ADDR8 GEN8   a slot record (FLAGS bit 0 valid, bit 1 bad
 *                    checksum, bit 2 another file's id, bit 3 another slot)
 *   4 OFF2 BYTE1     one byte of the slot file's header overwritten
 *   5 NAME8          a file with a hex-ish name (blk- plus 16 input bytes)
 *   6 ADDR8 KIND1    an owner record acl-<ADDR> in the fast directory (KIND
 *                    & 3: 0 valid, 1 a bit flipped, 2 truncated, 3 written
 *                    for another address; bit 2: owned by local root)
 *
 * Checks (__builtin_trap): a refused open returns one of the documented
 * errors; an opened brick is coherent (at most capacity blocks, at most the
 * fast budget in the fast tier, every slot's block points back at its slot,
 * free slots + used slots = the slot count, no slot on the free stack
 * twice), every block has an owner record, and opening it again after
 * closing it finds the same blocks in the same tiers with the same keys
 * (recovery is idempotent; fresh keys given to blocks without a record are
 * kept).
 */
#include "brick/brick_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

#define NSLOTS 4

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_root[64], g_fast[80], g_slow[80], g_file[80];

static void
empty_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char p[512];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		unlink(p);
	}
	closedir(d);
}

static void
cleanup(void)
{
	empty_dir(g_fast);
	empty_dir(g_slow);
	rmdir(g_fast);
	rmdir(g_slow);
	unlink(g_file);
	rmdir(g_root);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	nvl_log_set_level(getenv("NVL_FUZZ_VERBOSE") ? 1 : 0);
	if (getenv("NVL_FUZZ_VERBOSE") == NULL)
		nvl_log_set_fd(-1, false);
	snprintf(g_root, sizeof(g_root), "/dev/shm/nvl-fuzz-brec-%d", (int)getpid());
	snprintf(g_fast, sizeof(g_fast), "%s/fast", g_root);
	snprintf(g_slow, sizeof(g_slow), "%s/slow", g_root);
	snprintf(g_file, sizeof(g_file), "%s/slots", g_root);
	if (mkdir(g_root, 0700) < 0 || mkdir(g_fast, 0700) < 0 || mkdir(g_slow, 0700) < 0)
		abort();
	atexit(cleanup);
	return 0;
}

struct in {
	const uint8_t *p;
	size_t left;
};

static bool
take(struct in *in, void *out, size_t n)
{
	if (in->left < n)
		return false;
	memcpy(out, in->p, n);
	in->p += n;
	in->left -= n;
	return true;
}

static void
put_file(const char *dir, const char *name, off_t size)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (ftruncate(fd, size) < 0)
		abort();
	/* a recognisable first byte, so a block that moved tiers can be told apart */
	if (pwrite(fd, name, 1, 0) != 1)
		abort();
	close(fd);
}

/* Build the directories and the slot file from the input. */
static void
build(struct in *in, bool use_file)
{
	uint8_t hdr[BRICK_SF_HDR_SIZE], rec[BRICK_SF_REC_SIZE];
	struct brick_sf_hdr h = { .nslots = NSLOTS, .id = 0x1d1d1d1d };
	uint8_t op;
	int fd = -1;

	empty_dir(g_fast);
	empty_dir(g_slow);
	unlink(g_file);
	if (use_file) {
		fd = open(g_file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		h.data_off = brick_sf_data_off(NSLOTS);
		if (fd < 0 || ftruncate(fd, (off_t)(h.data_off + NSLOTS * BRICK_BLOCK_SIZE)) < 0)
			abort();
		brick_sf_hdr_encode(&h, hdr);
		if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
			abort();
	}
	while (take(in, &op, 1)) {
		char name[64];
		uint64_t addr, gen;
		uint8_t sz, b, slot, flags;
		uint16_t off;
		uint8_t raw[16];

		switch (op % 7) {
		case 0:
		case 1:
			if (!take(in, &addr, 8) || !take(in, &sz, 1))
				return;
			addr &= ~(uint64_t)(BRICK_BLOCK_SIZE - 1);
			addr &= (64ULL << 21) - 1; /* a few dozen addresses: duplicates happen */
			snprintf(name, sizeof(name), "blk-%016llx", (unsigned long long)addr);
			put_file(op % 7 == 0 || use_file ? g_fast : g_slow, name,
				 sz ? (off_t)sz * 4096 : (off_t)BRICK_BLOCK_SIZE);
			break;
		case 2:
			if (!take(in, &b, 1))
				return;
			snprintf(name, sizeof(name), "%s%u", b & 1 ? ".spare-" : ".tmp-", b >> 1);
			put_file(b & 0x80 ? g_slow : g_fast, name, 4096);
			break;
		case 3: {
			struct brick_sf_rec r;

			if (!take(in, &slot, 1) || !take(in, &flags, 1) || !take(in, &addr, 8) ||
			    !take(in, &gen, 8))
				return;
			if (fd < 0)
				break;
			r.addr = addr & ((64ULL << 21) - 1);
			if (!(flags & 16))
				r.addr &= ~(uint64_t)(BRICK_BLOCK_SIZE - 1);
			r.gen = gen % 1000;
			r.valid = flags & 1;
			slot %= NSLOTS;
			brick_sf_rec_encode(&r, flags & 4 ? h.id + 1 : h.id,
					    flags & 8 ? (uint64_t)slot + 1 : slot, rec);
			if (flags & 2)
				rec[40] ^= 1;
			if (pwrite(fd, rec, sizeof(rec), BRICK_SF_HDR_SIZE + slot * BRICK_SF_REC_SIZE) !=
			    (ssize_t)sizeof(rec))
				abort();
			break;
		}
		case 4:
			if (!take(in, &off, 2) || !take(in, &b, 1))
				return;
			if (fd >= 0 && pwrite(fd, &b, 1, off % 128) != 1)
				abort();
			break;
		case 5:
			if (!take(in, raw, sizeof(raw)))
				return;
			memcpy(name, "blk-", 4);
			for (size_t i = 0; i < sizeof(raw); i++)
				name[4 + i] = "0123456789abcdefABx-/."[raw[i] % 21];
			name[20] = '\0';
			if (strchr(name, '/') == NULL)
				put_file(raw[0] & 1 ? g_slow : g_fast, name, BRICK_BLOCK_SIZE);
			break;
		case 6: {
			struct brick_acl a = { .uid = 1000, .has_id = true };
			uint8_t acl[BRICK_ACL_SIZE];
			char p[512];
			int afd;

			if (!take(in, &addr, 8) || !take(in, &b, 1))
				return;
			addr &= ~(uint64_t)(BRICK_BLOCK_SIZE - 1);
			addr &= (64ULL << 21) - 1;
			memcpy(a.key, &addr, sizeof(addr));
			memset(a.id_hash, b, sizeof(a.id_hash));
			snprintf(a.name, sizeof(a.name), "fz%u", b);
			if (b & 4) {
				a.uid = 0;
				a.flags = BRICK_ACL_UID_OWNS;
				a.has_id = false;
			}
			brick_acl_encode(&a, (b & 3) == 3 ? addr + BRICK_BLOCK_SIZE : addr, acl);
			if ((b & 3) == 1)
				acl[b % BRICK_ACL_SIZE] ^= 0x40;
			snprintf(p, sizeof(p), "%s/acl-%016llx", g_fast, (unsigned long long)addr);
			afd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
			if (afd < 0)
				break;
			if (write(afd, acl, (b & 3) == 2 ? BRICK_ACL_SIZE / 2 : BRICK_ACL_SIZE) < 0)
				abort();
			close(afd);
			break;
		}
		}
	}
	if (fd >= 0)
		close(fd);
}

struct seen {
	uint64_t addr;
	int tier;
	uint8_t key[NVL_BRICK_KEY_SIZE];
};

static int
seen_cmp(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Check the opened brick; its blocks (sorted) into out, count returned. */
static size_t
check_brick(struct brick *b, struct seen *out, size_t max)
{
	struct brick_block *blk;
	size_t pos = 0, n = 0;
	uint64_t nfast = 0, nslow = 0;

	CHECK(b->blocks.count <= b->capacity);
	while ((blk = brick_htab_next(&b->blocks, &pos)) != NULL) {
		CHECK(!(blk->addr & (BRICK_BLOCK_SIZE - 1)));
		if (blk->tier == BRICK_TIER_FAST)
			nfast++;
		else
			nslow++;
		if (b->sf.fd >= 0 && blk->tier == BRICK_TIER_SLOW) {
			CHECK(blk->slot < b->sf.nslots);
			CHECK(b->sf.slot_blk[blk->slot] == blk);
		}
		CHECK(blk->acl_ok);
		CHECK(n < max);
		out[n].addr = blk->addr;
		out[n].tier = (int)blk->tier;
		memcpy(out[n].key, blk->acl.key, NVL_BRICK_KEY_SIZE);
		n++;
	}
	CHECK(n == b->blocks.count);
	CHECK(nfast == b->nfast && nslow == b->nslow);
	CHECK(b->nfast <= b->fast_budget);
	if (b->sf.fd >= 0) {
		uint64_t used = 0;
		bool on_stack[NSLOTS] = { false };

		for (uint64_t s = 0; s < b->sf.nslots; s++)
			if (b->sf.slot_blk[s]) {
				CHECK(b->sf.slot_blk[s]->slot == s);
				used++;
			}
		CHECK(used == nslow);
		CHECK(used + b->sf.nfree == b->sf.nslots);
		for (uint64_t i = 0; i < b->sf.nfree; i++) {
			uint32_t s = b->sf.free[i];

			CHECK(s < b->sf.nslots && !on_stack[s] && b->sf.slot_blk[s] == NULL);
			on_stack[s] = true;
		}
	}
	qsort(out, n, sizeof(*out), seen_cmp);
	for (size_t i = 1; i < n; i++)
		CHECK(out[i - 1].addr != out[i].addr);
	return n;
}

static bool
documented(int rc)
{
	return rc == -EINVAL || rc == -ENOSPC || rc == -ERANGE || rc == -EBUSY || rc == -ENOMEM ||
	       rc == -EIO || rc == -ENOENT;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct brick_opts o = { .name = "fzrec" };
	struct seen first[16], second[16];
	struct in in = { data, size };
	struct brick *b;
	size_t n1, n2;
	uint8_t mode;
	int rc;

	if (!take(&in, &mode, 1))
		return 0;
	o.capacity_blocks = 1 + ((mode >> 1) & 7);
	o.fast_blocks = NVL_MIN((uint64_t)((mode >> 4) & 7), o.capacity_blocks);
	o.fast_dir = g_fast;
	if (mode & 1) {
		o.slow_file = g_file;
		/* the slot file has NSLOTS slots: capacity - fast + 1 of them are needed */
		if (o.fast_blocks == 0 || o.capacity_blocks - o.fast_blocks + 1 > NSLOTS)
			o.fast_blocks = o.capacity_blocks > NSLOTS - 1 ? o.capacity_blocks - (NSLOTS - 1)
								     : o.capacity_blocks;
	} else {
		o.slow_dir = g_slow;
	}
	build(&in, mode & 1);
	rc = brick_create(&o, &b);
	if (rc < 0) {
		CHECK(documented(rc));
		return 0;
	}
	n1 = check_brick(b, first, 16);
	brick_close(b);
	/* what recovery left behind opens again to the same blocks */
	rc = brick_create(&o, &b);
	CHECK(rc == 0);
	n2 = check_brick(b, second, 16);
	CHECK(n1 == n2);
	for (size_t i = 0; i < n1; i++)
		CHECK(first[i].addr == second[i].addr && first[i].tier == second[i].tier &&
		      memcmp(first[i].key, second[i].key, NVL_BRICK_KEY_SIZE) == 0);
	brick_close(b);
	return 0;
}
