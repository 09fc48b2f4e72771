/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Block ownership (docs/brick.md "Who may use a block"): every block has an
 * owner (the client identity that allocated it) and a key (128 random bits
 * from getrandom, returned by ALLOC to the allocator only). This file owns
 * the rule that decides whether a principal may use a block, the ACL record
 * format, and its file in the fast tier directory. Reactor 0 only, no locks.
 *
 * The record of block ADDR is the file acl-<16 hex digits> in the fast tier
 * directory, whichever tier holds the block (so tier moves never touch it),
 * mode 0600, BRICK_ACL_SIZE bytes, little endian:
 *   [0, 8)    magic "NVLBACL1"   [8, 12)  version 1   [12, 16) flags
 *   [16, 24)  block address      [24, 40) key          [40, 72) SHA-256 of the
 *   owner's identity secret (all zero: no identity)    [72, 76) owner uid
 *   [76, 80)  name length        [80, 144) owner name  [144, 148) has_id
 *   [252, 256) crc32c of bytes 0..251
 * Crash ordering: a record is written to .tmp-acl-ADDR, synced (durable
 * tiers), renamed over acl-ADDR and the directory synced, *before* the
 * block's own file appears; recovery drops records without a block and
 * gives a block without a (valid) record a fresh key owned by local root
 * (BRICK_ACL_UID_OWNS: bricks made before ownership existed, whose only
 * local clients were root). The key never goes into the block's own file,
 * whose descriptor local clients receive.
 */
#include "brick/brick_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

NVL_LOG_DECLARE_COMPONENT(brick);

#define ACL_MAGIC 0x314c434142564c4eULL /* "NVLBACL1" stored little endian */
#define ACL_VERSION 1u

int
brick_principal_set_id(struct brick_principal *p, const uint8_t secret[NVL_BRICK_ID_SIZE])
{
	unsigned int n = 0;

	/* the daemon keeps only a hash of the secret: an ACL file that leaks
	 * does not give away the identity */
	if (EVP_Digest(secret, NVL_BRICK_ID_SIZE, p->id_hash, &n, EVP_sha256(), NULL) != 1 ||
	    n != BRICK_ID_HASH_SIZE)
		return -EIO;
	p->has_id = true;
	return 0;
}

int
brick_acl_init(struct brick_acl *a, const struct brick_principal *p)
{
	int rc;

	memset(a, 0, sizeof(*a));
	rc = nvl_random_bytes(a->key, sizeof(a->key));
	if (rc < 0)
		return rc;
	a->uid = BRICK_UID_NONE;
	if (p == NULL) {
		/* blocks of brick bdevs: local clients of the daemon's own uid may
		 * reach them (they can read the tier directories anyway) */
		a->uid = (uint32_t)geteuid();
		a->flags = BRICK_ACL_UID_OWNS;
		nvl_strlcpy(a->name, "(daemon)", sizeof(a->name));
		return 0;
	}
	a->has_id = p->has_id;
	memcpy(a->id_hash, p->id_hash, sizeof(a->id_hash));
	if (p->local)
		a->uid = p->uid;
	nvl_strlcpy(a->name, p->name, sizeof(a->name));
	return 0;
}

int
brick_acl_init_root(struct brick_acl *a)
{
	int rc = brick_acl_init(a, NULL);

	if (rc < 0)
		return rc;
	a->uid = 0;
	a->flags = BRICK_ACL_UID_OWNS;
	nvl_strlcpy(a->name, "(recovered)", sizeof(a->name));
	return 0;
}

bool
brick_acl_owner(const struct brick_acl *a, const struct brick_principal *p)
{
	if (p == NULL)
		return true; /* the daemon itself (brick bdevs, RPC) */
	if (a->has_id && p->has_id &&
	    CRYPTO_memcmp(a->id_hash, p->id_hash, sizeof(a->id_hash)) == 0)
		return true;
	/* only the kernel's word counts for a uid: never over TCP */
	return (a->flags & BRICK_ACL_UID_OWNS) && p->local && p->uid == a->uid;
}

int
brick_acl_check(struct brick *b, const struct brick_block *blk, const struct brick_principal *p,
		const uint8_t *key)
{
	if (brick_acl_owner(&blk->acl, p))
		return 0;
	if (key != NULL && CRYPTO_memcmp(key, blk->acl.key, NVL_BRICK_KEY_SIZE) == 0)
		return 0;
	b->st.denied++;
	return -EACCES;
}

void
brick_acl_encode(const struct brick_acl *a, uint64_t addr, uint8_t *buf)
{
	size_t n = strnlen(a->name, NVL_BRICK_CLIENT_MAX);

	memset(buf, 0, BRICK_ACL_SIZE);
	brick_st64(buf + 0, ACL_MAGIC);
	brick_st32(buf + 8, ACL_VERSION);
	brick_st32(buf + 12, a->flags);
	brick_st64(buf + 16, addr);
	memcpy(buf + 24, a->key, NVL_BRICK_KEY_SIZE);
	memcpy(buf + 40, a->id_hash, BRICK_ID_HASH_SIZE);
	brick_st32(buf + 72, a->uid);
	brick_st32(buf + 76, (uint32_t)n);
	memcpy(buf + 80, a->name, n);
	brick_st32(buf + 144, a->has_id ? 1 : 0);
	brick_st32(buf + BRICK_ACL_SIZE - 4, nvl_crc32c(buf, BRICK_ACL_SIZE - 4));
}

int
brick_acl_decode(const uint8_t *buf, size_t len, uint64_t addr, struct brick_acl *a)
{
	uint32_t n, has_id;

	memset(a, 0, sizeof(*a));
	if (len != BRICK_ACL_SIZE || brick_ld64(buf) != ACL_MAGIC ||
	    brick_ld32(buf + BRICK_ACL_SIZE - 4) != nvl_crc32c(buf, BRICK_ACL_SIZE - 4))
		return -EINVAL;
	n = brick_ld32(buf + 76);
	has_id = brick_ld32(buf + 144);
	if (brick_ld32(buf + 8) != ACL_VERSION || brick_ld64(buf + 16) != addr ||
	    n > NVL_BRICK_CLIENT_MAX || has_id > 1 || (brick_ld32(buf + 12) & ~BRICK_ACL_UID_OWNS))
		return -EINVAL;
	a->flags = brick_ld32(buf + 12);
	memcpy(a->key, buf + 24, NVL_BRICK_KEY_SIZE);
	memcpy(a->id_hash, buf + 40, BRICK_ID_HASH_SIZE);
	a->uid = brick_ld32(buf + 72);
	memcpy(a->name, buf + 80, n);
	a->name[n] = '\0';
	a->has_id = has_id == 1;
	return 0;
}

static int
acl_write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
brick_acl_store(struct brick *b, uint64_t addr, const struct brick_acl *a)
{
	uint8_t buf[BRICK_ACL_SIZE];
	char tmp[48], name[48];
	bool durable = brick_tier_durable(&b->fast);
	int fd, rc;

	brick_blk_name(tmp, sizeof(tmp), ".tmp-acl-", addr);
	brick_blk_name(name, sizeof(name), "acl-", addr);
	brick_acl_encode(a, addr, buf);
	fd = openat(b->fast.dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	rc = acl_write_all(fd, buf, sizeof(buf));
	if (rc == 0 && durable && fdatasync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && renameat(b->fast.dfd, tmp, b->fast.dfd, name) < 0)
		rc = -errno;
	/* the record must be durable before the block it guards can appear */
	if (rc == 0 && durable && fsync(b->fast.dfd) < 0)
		rc = -errno;
	if (rc < 0) {
		unlinkat(b->fast.dfd, tmp, 0);
		NVL_ERRLOG("brick %s: writing the ACL of 0x%" PRIx64 ": %s", b->name, addr,
			   strerror(-rc));
	}
	return rc;
}

void
brick_acl_remove(struct brick *b, uint64_t addr)
{
	char name[48];

	/* no sync: a record without its block is dropped by recovery */
	brick_blk_name(name, sizeof(name), "acl-", addr);
	unlinkat(b->fast.dfd, name, 0);
}

static bool
parse_acl_name(const char *n, uint64_t *addr)
{
	char blk[24];

	if (strncmp(n, "acl-", 4) != 0 || strlen(n) != 20)
		return false;
	/* the same 16 hex digits as the block's name */
	snprintf(blk, sizeof(blk), "blk-%s", n + 4);
	return brick_parse_blk_name(blk, addr);
}

static int
acl_load(struct brick *b, const char *fname, uint64_t addr, struct brick_acl *a)
{
	uint8_t buf[BRICK_ACL_SIZE + 1];
	ssize_t n;
	int fd;

	fd = openat(b->fast.dfd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	n = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n < 0)
		return -errno;
	return brick_acl_decode(buf, (size_t)n, addr, a);
}

int
brick_acl_recover(struct brick *b)
{
	struct brick_block *blk;
	struct dirent *de;
	uint64_t fresh = 0, dropped = 0;
	size_t pos = 0;
	DIR *d;
	int dfd, rc = 0;

	dfd = dup(b->fast.dfd);
	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return -errno;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		struct brick_acl a;
		uint64_t addr;

		if (!parse_acl_name(de->d_name, &addr))
			continue;
		blk = brick_htab_get(&b->blocks, addr);
		if (blk == NULL) {
			/* an interrupted alloc or free: its block is not in the map */
			unlinkat(b->fast.dfd, de->d_name, 0);
			dropped++;
			continue;
		}
		if (acl_load(b, de->d_name, addr, &a) < 0) {
			NVL_WARNLOG("brick %s: %s is damaged: the block gets a fresh key", b->name,
				    de->d_name);
			continue;
		}
		blk->acl = a;
		blk->acl_ok = true;
	}
	closedir(d);
	while ((blk = brick_htab_next(&b->blocks, &pos)) != NULL) {
		if (blk->acl_ok)
			continue;
		/* a brick from before ownership (or a damaged record): local root
		 * owns the block, anyone else needs the key (brick_get_blocks) */
		rc = brick_acl_init_root(&blk->acl);
		if (rc == 0)
			rc = brick_acl_store(b, blk->addr, &blk->acl);
		if (rc < 0)
			return rc;
		blk->acl_ok = true;
		fresh++;
	}
	if (fresh)
		NVL_NOTICELOG("brick %s: %" PRIu64 " blocks had no owner record: fresh keys, owned "
			      "by local root (brick_get_blocks shows the keys)", b->name, fresh);
	if (dropped)
		NVL_NOTICELOG("brick %s: dropped %" PRIu64 " owner records without a block", b->name,
			      dropped);
	return 0;
}
