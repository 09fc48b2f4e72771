/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD exports: the table of names -> bdevs the server offers (docs/nbd.md),
 * what a handshake sees of it (lookup, NBD_OPT_LIST), and each export's
 * connections and counters.
 *
 * Threads: reactor 0 only. An export holds its bdev open while it exists;
 * removing one drains its connections first (handshake.c, conn.c) and
 * closes the bdev when the last is gone (nbd_export_conn_del). Counters of
 * live connections are written by their owner reactors and read here with
 * relaxed loads (nbd_export_stats).
 */
#include "nbd/nbd_internal.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
	TAILQ_HEAD(, nbd_export) list;
	unsigned n;
} g_nbd_exports = {
	.list = TAILQ_HEAD_INITIALIZER(g_nbd_exports.list),
};

static struct nbd_export *
nbd_export_find(const char *name, size_t len)
{
	struct nbd_export *e;

	TAILQ_FOREACH(e, &g_nbd_exports.list, link)
		if (strlen(e->name) == len && memcmp(e->name, name, len) == 0)
			return e;
	return NULL;
}

struct nbd_export *
nbd_export_get(const char *name)
{
	return nbd_export_find(name, strlen(name));
}

struct nbd_export *
nbd_export_first(void)
{
	return TAILQ_FIRST(&g_nbd_exports.list);
}

struct nbd_export *
nbd_export_next(struct nbd_export *e)
{
	return TAILQ_NEXT(e, link);
}

static void
nbd_export_fill(const struct nbd_export *e, struct nbd_hs_export *out)
{
	out->name = e->name;
	out->description = e->description;
	out->size = e->size;
	out->min_block = e->block_size;
	out->pref_block = e->pref_block;
	out->max_block = e->max_block;
	out->tflags = e->tflags;
	out->handle = (void *)e;
}

static uint32_t
nbd_export_lookup(void *ctx, const char *name, size_t len, struct nbd_hs_export *out,
		  char *msg, size_t msglen)
{
	struct nbd_export *e, *only = NULL;
	unsigned n = 0;
	char safe[80];

	(void)ctx;
	if (len == 0) {
		/* the default export: only when exactly one exists (docs/nbd.md) */
		TAILQ_FOREACH(e, &g_nbd_exports.list, link) {
			if (!e->removing) {
				only = e;
				n++;
			}
		}
		if (n != 1) {
			snprintf(msg, msglen,
				 "no default export: the server has %u exports; name one "
				 "(NBD_OPT_LIST lists them)", n);
			return NVL_NBD_REP_ERR_UNKNOWN;
		}
		nbd_export_fill(only, out);
		return 0;
	}
	e = nbd_export_find(name, len);
	if (e == NULL || e->removing) {
		nbd_sanitize(safe, sizeof(safe), (const uint8_t *)name, len);
		snprintf(msg, msglen, "export '%s' does not exist%s", safe,
			 e ? " (being removed)" : "");
		return NVL_NBD_REP_ERR_UNKNOWN;
	}
	nbd_export_fill(e, out);
	return 0;
}

static void
nbd_export_list(void *ctx, void (*emit)(void *arg, const struct nbd_hs_export *e), void *arg)
{
	struct nbd_export *e;
	struct nbd_hs_export he;

	(void)ctx;
	TAILQ_FOREACH(e, &g_nbd_exports.list, link) {
		if (e->removing)
			continue;
		nbd_export_fill(e, &he);
		emit(arg, &he);
	}
}

const struct nbd_hs_ops nbd_export_hs_ops = {
	.lookup = nbd_export_lookup,
	.list = nbd_export_list,
};

int
nbd_export_add(const struct nbd_export_opts *o, char *err, size_t errlen)
{
	struct nbd_export *e;
	struct nvl_bdev *b;
	char who[NBD_NAME_MAX + 32];
	uint32_t maxb;
	int rc;

	if (o->name == NULL || o->name[0] == '\0' || strlen(o->name) > NBD_NAME_MAX) {
		snprintf(err, errlen, "export name must be 1..%d bytes", NBD_NAME_MAX);
		return -EINVAL;
	}
	if (o->description && strlen(o->description) > NBD_DESC_MAX) {
		snprintf(err, errlen, "description must be at most %d bytes", NBD_DESC_MAX);
		return -EINVAL;
	}
	if (nbd_export_get(o->name)) {
		snprintf(err, errlen, "export '%s' already exists", o->name);
		return -EEXIST;
	}
	if (g_nbd_exports.n >= NBD_EXPORTS_MAX) {
		snprintf(err, errlen, "too many exports (at most %d)", NBD_EXPORTS_MAX);
		return -ENOSPC;
	}
	b = nvl_bdev_get_by_name(o->bdev);
	if (b == NULL) {
		snprintf(err, errlen, "bdev '%s' does not exist", o->bdev);
		return -ENOENT;
	}
	if (b->read_only && !o->read_only) {
		snprintf(err, errlen, "bdev '%s' is read-only: add the export with read_only", o->bdev);
		return -EROFS;
	}
	if (b->block_size > NVL_NBD_MAX_MIN_BLOCK) {
		snprintf(err, errlen, "bdev block size %u exceeds NBD's limit of %u", b->block_size,
			 NVL_NBD_MAX_MIN_BLOCK);
		return -EINVAL;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	e->description = strdup(o->description ? o->description : "");
	if (e->description == NULL) {
		rc = -ENOMEM;
		goto err_free;
	}
	nvl_strlcpy(e->name, o->name, sizeof(e->name));
	snprintf(who, sizeof(who), "nbd export '%s'", o->name);
	rc = nvl_bdev_open(o->bdev, !o->read_only, who, &e->desc);
	if (rc < 0) {
		snprintf(err, errlen, "cannot open bdev '%s': %s", o->bdev, strerror(-rc));
		goto err_free_description;
	}
	nvl_strlcpy(e->bdev_name, b->name, sizeof(e->bdev_name));
	e->read_only = o->read_only;
	e->size = b->num_blocks * b->block_size;
	e->block_size = b->block_size;
	e->pref_block = NVL_MAX(b->block_size, NBD_PREF_BLOCK);
	maxb = NBD_MAX_PAYLOAD;
	if (b->max_io_bytes && b->max_io_bytes < maxb)
		maxb = b->max_io_bytes;
	maxb = NVL_ALIGN_DOWN(maxb, b->block_size);
	e->max_block = NVL_MAX(maxb, b->block_size);
	e->tflags = NVL_NBD_FLAG_HAS_FLAGS | NVL_NBD_FLAG_SEND_FLUSH | NVL_NBD_FLAG_SEND_CACHE |
		    NVL_NBD_FLAG_CAN_MULTI_CONN;
	if (o->read_only) {
		e->tflags |= NVL_NBD_FLAG_READ_ONLY;
	} else {
		e->tflags |= NVL_NBD_FLAG_SEND_FUA;
		if (b->io_types & (1u << NVL_BDEV_IO_UNMAP))
			e->tflags |= NVL_NBD_FLAG_SEND_TRIM;
		if (b->io_types & (1u << NVL_BDEV_IO_WRITE_ZEROES))
			e->tflags |= NVL_NBD_FLAG_SEND_WRITE_ZEROES | NVL_NBD_FLAG_SEND_FAST_ZERO;
	}
	TAILQ_INIT(&e->conns);
	TAILQ_INSERT_TAIL(&g_nbd_exports.list, e, link);
	g_nbd_exports.n++;
	NVL_NOTICELOG("nbd: export '%s' of bdev %s (%llu bytes, block %u, %s)", e->name,
		      e->bdev_name, (unsigned long long)e->size, e->block_size,
		      e->read_only ? "read-only" : "read-write");
	return 0;
err_free_description:
	free(e->description);
err_free:
	free(e);
	return rc;
}

static void
nbd_export_free(struct nbd_export *e)
{
	TAILQ_REMOVE(&g_nbd_exports.list, e, link);
	g_nbd_exports.n--;
	nvl_bdev_close(e->desc);
	free(e->description);
	free(e);
}

int
nbd_export_remove(const char *name, void (*done)(void *arg), void *arg)
{
	struct nbd_export *e = nbd_export_get(name);
	struct nbd_conn *c, *tmp;

	if (e == NULL)
		return -ENOENT;
	if (e->removing)
		return -EALREADY;
	e->removing = true;
	e->remove_done = done;
	e->remove_arg = arg;
	NVL_NOTICELOG("nbd: removing export '%s' (%u connection(s))", e->name, e->nconns);
	/* handshake connections close right here: complete only after the loop */
	TAILQ_FOREACH_SAFE(c, &e->conns, elink, tmp)
		nbd_conn_drain(c, "export removed");
	if (e->nconns == 0) {
		nbd_export_free(e);
		done(arg);
		return 0;
	}
	e->remove_armed = true;
	return 0;
}

void
nbd_export_stats(const struct nbd_export *e, struct nbd_stats *out)
{
	const struct nbd_conn *c;

	*out = e->done_stats;
	TAILQ_FOREACH(c, &e->conns, elink) {
		for (int i = 0; i < NBD_ST_NTYPES; i++) {
			out->ops[i] += __atomic_load_n(&c->st.ops[i], __ATOMIC_RELAXED);
			out->bytes[i] += __atomic_load_n(&c->st.bytes[i], __ATOMIC_RELAXED);
		}
		out->errors += __atomic_load_n(&c->st.errors, __ATOMIC_RELAXED);
		out->held_reads += __atomic_load_n(&c->st.held_reads, __ATOMIC_RELAXED);
	}
}

void
nbd_export_free_all(void)
{
	struct nbd_export *e;

	while ((e = TAILQ_FIRST(&g_nbd_exports.list)) != NULL)
		nbd_export_free(e);
}

void
nbd_export_conn_add(struct nbd_export *e, struct nbd_conn *c)
{
	c->exp = e;
	TAILQ_INSERT_TAIL(&e->conns, c, elink);
	e->nconns++;
	e->total_conns++;
}

void
nbd_export_conn_del(struct nbd_conn *c)
{
	struct nbd_export *e = c->exp;

	for (int i = 0; i < NBD_ST_NTYPES; i++) {
		e->done_stats.ops[i] += c->st.ops[i];
		e->done_stats.bytes[i] += c->st.bytes[i];
	}
	e->done_stats.errors += c->st.errors;
	e->done_stats.held_reads += c->st.held_reads;
	TAILQ_REMOVE(&e->conns, c, elink);
	e->nconns--;
	c->exp = NULL;
	if (e->remove_armed && e->nconns == 0) {
		void (*done)(void *) = e->remove_done;
		void *arg = e->remove_arg;

		NVL_NOTICELOG("nbd: export '%s' removed", e->name);
		nbd_export_free(e);
		done(arg);
	}
}
