/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Attachment records: one JSON file per attachment in the state dir,
 * written atomically (temp file + rename) by the attach process (or by the
 * CLI for the kernel initiator) and read by `nvlend attachments` and
 * `nvlend detach`. Also: which mount points use a block device or its
 * partitions (/proc/self/mountinfo, matched by major:minor).
 *
 * Threads: none of this keeps state; every call is self-contained.
 */
#include "attach.h"
#include "util/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int
attach_state_dir(char *buf, size_t len)
{
	const char *env = getenv("NVLEND_ATTACH_DIR");
	int n, rc;

	if (env && *env) {
		n = snprintf(buf, len, "%s", env);
	} else if (geteuid() == 0) {
		n = snprintf(buf, len, "/run/nvlend/attach");
	} else {
		const char *xdg = getenv("XDG_RUNTIME_DIR");

		if (xdg && *xdg) {
			n = snprintf(buf, len, "%s/nvlend/attach", xdg);
		} else {
			/* /tmp is shared: the per-user directory itself must be ours */
			n = snprintf(buf, len, "/tmp/nvlend-%u", (unsigned)geteuid());
			if (n < 0 || (size_t)n >= len)
				return -ENAMETOOLONG;
			rc = nvl_mkdir_private(buf);
			if (rc < 0)
				return rc;
			n = snprintf(buf, len, "/tmp/nvlend-%u/attach", (unsigned)geteuid());
		}
	}
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	/*
	 * 0700 and ours: it holds the FUSE files that loop devices of attached
	 * namespaces are backed by, and the records that detach trusts (pids).
	 */
	rc = nvl_mkdir_private(buf);
	return rc < 0 ? rc : 0;
}

void
attach_state_dir_complain(const char *who, const char *dir, int rc)
{
	if (rc == -EPERM)
		fprintf(stderr,
			"%s: the state directory %s (or /tmp/nvlend-UID above it) is not a "
			"directory of this user; refusing to use it. Remove it, or set "
			"XDG_RUNTIME_DIR or NVLEND_ATTACH_DIR.\n",
			who, dir);
	else
		fprintf(stderr, "%s: state directory %s: %s\n", who, dir, strerror(-rc));
}

static bool
name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= ATTACH_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_' &&
		    name[i] != '.')
			return false;
	return true;
}

static int
record_path(const char *name, const char *suffix, char *buf, size_t len)
{
	char dir[PATH_MAX - 64];
	int rc, n;

	if (!name_ok(name))
		return -EINVAL;
	rc = attach_state_dir(dir, sizeof(dir));
	if (rc < 0)
		return rc;
	n = snprintf(buf, len, "%s/%s%s", dir, name, suffix);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

char *
attach_record_json(const struct attach_record *r)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:s, "
			      "s:s, s:I, s:I}",
			      "name", r->name, "device", r->device, "uri", r->uri, "mechanism",
			      r->mechanism, "pid", (json_int_t)r->pid, "state", r->state,
			      "readonly", r->readonly, "queues", (json_int_t)r->queues, "qd",
			      (json_int_t)r->qd,
			      "reconnect_timeout", (json_int_t)r->reconnect_timeout_s, "size",
			      (json_int_t)r->size, "block_size", (json_int_t)r->block_size,
			      "backing", r->backing, "hostnqn", r->hostnqn, "started",
			      (json_int_t)r->started, "reconnects", (json_int_t)r->reconnects);
	char *s;

	if (o == NULL)
		return NULL;
	s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

static int
record_write_to(const char *path, const struct attach_record *r, bool excl)
{
	char tmp[PATH_MAX + 16];
	char *text = attach_record_json(r);
	int fd, rc = 0;

	if (text == NULL)
		return -ENOMEM;
	if (excl) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			rc = -errno;
			goto out;
		}
		rc = nvl_write_all(fd, text, strlen(text));
		if (rc == 0)
			rc = nvl_write_all(fd, "\n", 1);
		close(fd);
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = nvl_write_all(fd, text, strlen(text));
	if (rc == 0)
		rc = nvl_write_all(fd, "\n", 1);
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
out:
	free(text);
	return rc;
}

int
attach_record_write(const struct attach_record *r)
{
	char path[PATH_MAX];
	int rc = record_path(r->name, ".json", path, sizeof(path));

	return rc < 0 ? rc : record_write_to(path, r, false);
}

int
attach_record_claim(const struct attach_record *r)
{
	char path[PATH_MAX];
	int rc = record_path(r->name, ".json", path, sizeof(path));

	return rc < 0 ? rc : record_write_to(path, r, true);
}

static void
get_str(json_t *o, const char *key, char *dst, size_t len)
{
	const char *v = json_string_value(json_object_get(o, key));

	if (v)
		nvl_strlcpy(dst, v, len);
	else
		dst[0] = '\0';
}

static uint64_t
get_int(json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v < 0 ? 0 : (uint64_t)v;
}

static int
record_parse_file(const char *path, struct attach_record *r)
{
	json_error_t err;
	json_t *o = json_load_file(path, 0, &err);

	if (o == NULL)
		return access(path, F_OK) < 0 ? -ENOENT : -EINVAL;
	if (!json_is_object(o)) {
		json_decref(o);
		return -EINVAL;
	}
	memset(r, 0, sizeof(*r));
	get_str(o, "name", r->name, sizeof(r->name));
	get_str(o, "device", r->device, sizeof(r->device));
	get_str(o, "uri", r->uri, sizeof(r->uri));
	get_str(o, "mechanism", r->mechanism, sizeof(r->mechanism));
	get_str(o, "state", r->state, sizeof(r->state));
	get_str(o, "backing", r->backing, sizeof(r->backing));
	get_str(o, "hostnqn", r->hostnqn, sizeof(r->hostnqn));
	r->pid = (pid_t)get_int(o, "pid");
	r->readonly = json_is_true(json_object_get(o, "readonly"));
	r->queues = (uint32_t)get_int(o, "queues");
	r->qd = (uint32_t)get_int(o, "qd");
	r->reconnect_timeout_s = (uint32_t)get_int(o, "reconnect_timeout");
	r->size = get_int(o, "size");
	r->block_size = (uint32_t)get_int(o, "block_size");
	r->started = (int64_t)get_int(o, "started");
	r->reconnects = get_int(o, "reconnects");
	json_decref(o);
	return r->name[0] ? 0 : -EINVAL;
}

int
attach_record_read(const char *name, struct attach_record *r)
{
	char path[PATH_MAX];
	int rc = record_path(name, ".json", path, sizeof(path));

	return rc < 0 ? rc : record_parse_file(path, r);
}

int
attach_record_remove(const char *name)
{
	char path[PATH_MAX];
	int rc = record_path(name, ".json", path, sizeof(path));

	if (rc < 0)
		return rc;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

static int
rec_cmp(const void *a, const void *b)
{
	const struct attach_record *x = a, *y = b;

	return strcmp(x->name, y->name);
}

int
attach_record_list(struct attach_record **out)
{
	char dir[PATH_MAX - 64], path[PATH_MAX + 256];
	struct attach_record *v = NULL;
	struct dirent *de;
	int n = 0, cap = 0, rc;
	DIR *d;

	*out = NULL;
	rc = attach_state_dir(dir, sizeof(dir));
	if (rc < 0)
		return rc;
	d = opendir(dir);
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
			continue;
		if (n == cap) {
			struct attach_record *nv;

			cap = cap ? cap * 2 : 8;
			nv = realloc(v, (size_t)cap * sizeof(*v));
			if (nv == NULL) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (record_parse_file(path, &v[n]) == 0)
			n++;
	}
	closedir(d);
	if (n)
		qsort(v, (size_t)n, sizeof(*v), rec_cmp);
	*out = v;
	return n;
}

int
attach_record_find(const char *key, struct attach_record *r)
{
	struct attach_record *v;
	char real[PATH_MAX];
	int n = attach_record_list(&v), rc = -ENOENT;

	if (n < 0)
		return n;
	if (realpath(key, real) == NULL)
		nvl_strlcpy(real, key, sizeof(real));
	for (int i = 0; i < n && rc; i++) {
		if (strcmp(v[i].name, key) == 0 || strcmp(v[i].device, key) == 0 ||
		    strcmp(v[i].device, real) == 0) {
			*r = v[i];
			rc = 0;
		}
	}
	free(v);
	return rc;
}

bool
attach_pid_alive(pid_t pid)
{
	char path[64], buf[256];
	int rc;

	if (pid <= 0)
		return false;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	/* a recycled pid belongs to something else: ours run `nvlend attach` */
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	rc = attach_read_file(path, buf, sizeof(buf));
	if (rc <= 0)
		return false;
	for (int i = 0; i < rc; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	if (strstr(buf, "attach") == NULL)
		return false;
	/* zombies (not reaped yet) are dead */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	rc = attach_read_file(path, buf, sizeof(buf));
	if (rc > 0) {
		char *p = strrchr(buf, ')');

		if (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
			return false;
	}
	return true;
}

/* ---- mounts ------------------------------------------------------------------------ */

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void
unescape_octal(char *s)
{
	char *w = s;

	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* dev_t of the device and of each partition (sysfs children with a "partition" file) */
static int
device_and_partitions(dev_t dev, dev_t *out, int max)
{
	char path[PATH_MAX], sub[PATH_MAX + 300], buf[32];
	struct dirent *de;
	int n = 0;
	DIR *d;

	out[n++] = dev;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	d = opendir(path);
	if (d == NULL)
		return n;
	while ((de = readdir(d)) != NULL && n < max) {
		unsigned ma, mi;

		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s/partition", path, de->d_name);
		if (access(sub, F_OK) < 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s/dev", path, de->d_name);
		if (attach_read_file(sub, buf, sizeof(buf)) > 0 &&
		    sscanf(buf, "%u:%u", &ma, &mi) == 2)
			out[n++] = makedev(ma, mi);
	}
	closedir(d);
	return n;
}

int
attach_device_mounts(const char *devpath, char (*mnt)[PATH_MAX], int max)
{
	struct stat st;
	dev_t devs[64];
	int ndev, found = 0;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	if (stat(devpath, &st) < 0)
		return -errno;
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	ndev = device_and_partitions(st.st_rdev, devs, (int)NVL_ARRAY_SIZE(devs));
	f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		unsigned ma, mi;
		char mp[PATH_MAX];
		/* id parent major:minor root mountpoint ... */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &ma, &mi, mp) != 3)
			continue;
		for (int i = 0; i < ndev; i++) {
			if (devs[i] == makedev(ma, mi)) {
				if (found < max) {
					unescape_octal(mp);
					nvl_strlcpy(mnt[found], mp, PATH_MAX);
				}
				found++;
				break;
			}
		}
	}
	free(line);
	fclose(f);
	return found;
}
