/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The keyring of DH-HMAC-CHAP secrets in files (what it keeps and its
 * threading rules are in keyring.h). Secrets read from files live only on
 * the caller's stack or in its buffers and are wiped here after parsing.
 */
#include "nvmf/keyring.h"
#include "util/log.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

struct keyring_key {
	char name[NVL_KEYRING_NAME_MAX];
	char *path;
	unsigned users;                 /* host entries that name it */
	char owner[16];                 /* "" the user's; else a service's (not saved) */
	TAILQ_ENTRY(keyring_key) link;
};

static struct {
	pthread_mutex_t lock;
	TAILQ_HEAD(, keyring_key) keys;
	unsigned nkeys;
} g_keyring = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.keys = TAILQ_HEAD_INITIALIZER(g_keyring.keys),
};

static void
set_err(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static struct keyring_key *
key_find(const char *name)
{
	struct keyring_key *k;

	TAILQ_FOREACH(k, &g_keyring.keys, link)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

static bool
name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= NVL_KEYRING_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._-:", name[i]))
			return false;
	return true;
}

/* Open, check and parse a key file (SPDK's rules: absolute path, a regular
 * file of our user, no access for group and others). The checks are made on
 * the open descriptor, so a file swapped between check and read is caught. */
static int
key_file_read(const char *path, struct nvl_dhchap_key *out, char *err, size_t errlen)
{
	char buf[NVL_DHCHAP_SECRET_MAX + 64];
	struct stat st;
	ssize_t n;
	int fd, rc;

	if (path[0] != '/') {
		set_err(err, errlen, "key file path '%s' is not absolute", path);
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		set_err(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		set_err(err, errlen, "cannot stat key file %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		set_err(err, errlen,
			"key file %s must be a regular file owned by uid %u with no group/other "
			"access (it is mode 0%o, uid %u)",
			path, (unsigned)geteuid(), (unsigned)(st.st_mode & 07777),
			(unsigned)st.st_uid);
		rc = -EPERM;
		goto out;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		rc = -errno;
		set_err(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
		goto out;
	}
	buf[n] = '\0';
	rc = nvl_dhchap_key_parse(buf, (size_t)n, out);
	if (rc < 0) {
		set_err(err, errlen, "key file %s does not hold a DHHC-1 secret%s", path,
			rc == -EBADMSG ? " (its CRC does not match)" : "");
		rc = -EINVAL;
	}
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return rc < 0 ? rc : 0;
}

int
nvl_keyring_add(const char *name, const char *path, char *err, size_t errlen)
{
	return nvl_keyring_add_owned(name, path, NULL, err, errlen);
}

int
nvl_keyring_add_owned(const char *name, const char *path, const char *owner, char *err,
		      size_t errlen)
{
	struct nvl_dhchap_key tmp;
	struct keyring_key *k;
	int rc;

	if (!name_valid(name)) {
		set_err(err, errlen,
			"invalid key name '%s' (1..%d of letters, digits and ._-:)", name,
			NVL_KEYRING_NAME_MAX - 1);
		return -EINVAL;
	}
	rc = key_file_read(path, &tmp, err, errlen);
	nvl_dhchap_key_wipe(&tmp);
	if (rc < 0)
		return rc;
	k = calloc(1, sizeof(*k));
	if (k == NULL || (k->path = strdup(path)) == NULL) {
		free(k);
		return -ENOMEM;
	}
	nvl_strlcpy(k->name, name, sizeof(k->name));
	if (owner)
		nvl_strlcpy(k->owner, owner, sizeof(k->owner));
	pthread_mutex_lock(&g_keyring.lock);
	if (key_find(name)) {
		pthread_mutex_unlock(&g_keyring.lock);
		set_err(err, errlen, "key %s already exists", name);
		free(k->path);
		free(k);
		return -EEXIST;
	}
	if (g_keyring.nkeys >= NVL_KEYRING_MAX_KEYS) {
		pthread_mutex_unlock(&g_keyring.lock);
		set_err(err, errlen, "the keyring holds %d keys already", NVL_KEYRING_MAX_KEYS);
		free(k->path);
		free(k);
		return -ENOSPC;
	}
	TAILQ_INSERT_TAIL(&g_keyring.keys, k, link);
	g_keyring.nkeys++;
	pthread_mutex_unlock(&g_keyring.lock);
	return 0;
}

int
nvl_keyring_remove(const char *name)
{
	struct keyring_key *k;

	pthread_mutex_lock(&g_keyring.lock);
	k = key_find(name);
	if (k == NULL || k->users) {
		pthread_mutex_unlock(&g_keyring.lock);
		return k == NULL ? -ENOENT : -EBUSY;
	}
	TAILQ_REMOVE(&g_keyring.keys, k, link);
	g_keyring.nkeys--;
	pthread_mutex_unlock(&g_keyring.lock);
	free(k->path);
	free(k);
	return 0;
}

int
nvl_keyring_load(const char *name, struct nvl_dhchap_key *out)
{
	struct keyring_key *k;
	char path[4096], err[256];
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&g_keyring.lock);
	k = key_find(name);
	if (k)
		nvl_strlcpy(path, k->path, sizeof(path));
	pthread_mutex_unlock(&g_keyring.lock);
	if (k == NULL)
		return -ENOENT;
	rc = key_file_read(path, out, err, sizeof(err));
	if (rc < 0)
		NVL_ERRLOG("keyring: key %s: %s", name, err);
	return rc;
}

int
nvl_keyring_get(const char *name)
{
	struct keyring_key *k;

	pthread_mutex_lock(&g_keyring.lock);
	k = key_find(name);
	if (k)
		k->users++;
	pthread_mutex_unlock(&g_keyring.lock);
	return k ? 0 : -ENOENT;
}

void
nvl_keyring_put(const char *name)
{
	struct keyring_key *k;

	pthread_mutex_lock(&g_keyring.lock);
	k = key_find(name);
	if (k && k->users)
		k->users--;
	pthread_mutex_unlock(&g_keyring.lock);
}

json_t *
nvl_keyring_list(void)
{
	json_t *arr = json_array();
	struct keyring_key *k;

	pthread_mutex_lock(&g_keyring.lock);
	TAILQ_FOREACH(k, &g_keyring.keys, link) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "name", k->name, "path", k->path,
				      "module", "keyring_file", "users", (int)k->users);

		if (o && k->owner[0])
			json_object_set_new(o, "owner", json_string(k->owner));
		json_array_append_new(arr, o);
	}
	pthread_mutex_unlock(&g_keyring.lock);
	return arr;
}

void
nvl_keyring_write_config(json_t *calls)
{
	struct keyring_key *k;

	pthread_mutex_lock(&g_keyring.lock);
	TAILQ_FOREACH(k, &g_keyring.keys, link)
		if (k->owner[0] == '\0') /* a service's keys: it makes them again */
			json_array_append_new(calls, json_pack("{s:s, s:{s:s, s:s}}", "method",
						       "keyring_file_add_key", "params", "name",
						       k->name, "path", k->path));
	pthread_mutex_unlock(&g_keyring.lock);
}

void
nvl_keyring_clear(void)
{
	struct keyring_key *k;

	pthread_mutex_lock(&g_keyring.lock);
	while ((k = TAILQ_FIRST(&g_keyring.keys)) != NULL) {
		TAILQ_REMOVE(&g_keyring.keys, k, link);
		free(k->path);
		free(k);
	}
	g_keyring.nkeys = 0;
	pthread_mutex_unlock(&g_keyring.lock);
}
