/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Attach mechanism "kernel": the Linux NVMe/TCP initiator, for nvme+tcp
 * URIs. No attach process: the CLI writes the connect string to
 * /dev/nvme-fabrics (after `modprobe nvme-tcp` if needed), reads back
 * "instance=N,cntlid=M", finds the namespace's block device in sysfs (the
 * multipath head /sys/class/nvme-subsystem/nvme-subsysK/nvmeKnY, else
 * /sys/class/nvme/nvmeN/nvmeNnY) and records it; `nvlend detach` writes
 * /sys/class/nvme/nvmeN/delete_controller. Surviving a target restart is
 * the kernel's own: reconnect_delay=1, ctrl_loss_tmo=--reconnect-timeout.
 *
 * Threads: runs in the CLI process only.
 */
#include "attach.h"
#include "util/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void
modprobe_nvme_tcp(void)
{
	char *argv[] = { "modprobe", "-q", "nvme-tcp", NULL };
	pid_t pid;
	int st;

	if (access("/sys/module/nvme_tcp", F_OK) == 0)
		return;
	if (posix_spawnp(&pid, "modprobe", NULL, NULL, argv, environ) == 0)
		waitpid(pid, &st, 0);
}

static bool
kn_available(const struct attach_opts *o, char *why, size_t len)
{
	struct nvl_uri u;

	if (nvl_uri_parse(o->uri, &u) < 0 || u.kind != NVL_URI_NVME_TCP) {
		snprintf(why, len, "only for nvme+tcp:// URIs");
		return false;
	}
	modprobe_nvme_tcp();
	if (access("/sys/module/nvme_tcp", F_OK) < 0) {
		snprintf(why, len, "the nvme-tcp kernel module is not available");
		return false;
	}
	if (access("/dev/nvme-fabrics", R_OK | W_OK) < 0) {
		snprintf(why, len, "/dev/nvme-fabrics: %s", strerror(errno));
		return false;
	}
	return true;
}

/* This host's NQN and id: nvme-cli's files, else from /etc/machine-id. */
static void
host_identity(const struct attach_opts *o, char *nqn, size_t nlen, char *id, size_t ilen)
{
	char mid[64] = "";

	if (attach_read_file("/etc/nvme/hostid", id, ilen) <= 0)
		id[0] = '\0';
	if (o->hostnqn) {
		nvl_strlcpy(nqn, o->hostnqn, nlen);
	} else if (attach_read_file("/etc/nvme/hostnqn", nqn, nlen) <= 0) {
		nqn[0] = '\0';
	}
	if ((nqn[0] == '\0' || id[0] == '\0') && attach_read_file("/etc/machine-id", mid,
								    sizeof(mid)) >= 32) {
		char u[40];

		snprintf(u, sizeof(u), "%.8s-%.4s-%.4s-%.4s-%.12s", mid, mid + 8, mid + 12,
			 mid + 16, mid + 20);
		if (id[0] == '\0')
			nvl_strlcpy(id, u, ilen);
		if (nqn[0] == '\0')
			snprintf(nqn, nlen, "nqn.2014-08.org.nvmexpress:uuid:%s", u);
	}
}

static int
read_u32(const char *path, uint32_t *v)
{
	char b[32];

	if (attach_read_file(path, b, sizeof(b)) <= 0)
		return -ENOENT;
	*v = (uint32_t)strtoul(b, NULL, 0);
	return 0;
}

/* Block device (name) of nsid on controller instance n, or "" (0: lowest nsid). */
static int
find_ns_disk(int n, uint32_t nsid, char *name, size_t len)
{
	char ctrl[32], dir[PATH_MAX], p[PATH_MAX + 300];
	uint32_t best = UINT32_MAX;
	struct dirent *de;
	DIR *d;

	snprintf(ctrl, sizeof(ctrl), "nvme%d", n);
	name[0] = '\0';
	dir[0] = '\0';
	/* multipath: the head lives in the subsystem that lists our controller */
	d = opendir("/sys/class/nvme-subsystem");
	if (d) {
		while ((de = readdir(d)) != NULL && dir[0] == '\0') {
			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "/sys/class/nvme-subsystem/%s/%s", de->d_name, ctrl);
			if (access(p, F_OK) == 0)
				snprintf(dir, sizeof(dir), "/sys/class/nvme-subsystem/%s",
					 de->d_name);
		}
		closedir(d);
	}
	if (dir[0] == '\0')
		snprintf(dir, sizeof(dir), "/sys/class/nvme/%s", ctrl);
	d = opendir(dir);
	if (d == NULL)
		return -ENOENT;
	while ((de = readdir(d)) != NULL) {
		const char *q = de->d_name;
		uint32_t id;

		/* nvmeXnY (not the hidden per-path nvmeXcZnY) */
		if (strncmp(q, "nvme", 4) != 0 || strchr(q + 4, 'n') == NULL || strchr(q + 4, 'c'))
			continue;
		snprintf(p, sizeof(p), "%s/%s/nsid", dir, q);
		if (read_u32(p, &id) < 0) {
			const char *y = strrchr(q, 'n');

			id = (uint32_t)strtoul(y + 1, NULL, 10);
		}
		if ((nsid && id == nsid) || (!nsid && id < best)) {
			best = id;
			nvl_strlcpy(name, q, len);
			if (nsid)
				break;
		}
	}
	closedir(d);
	return name[0] ? 0 : -ENOENT;
}

static int
delete_ctrl(const char *ctrl)
{
	char p[PATH_MAX + 64];

	snprintf(p, sizeof(p), "/sys/class/nvme/%s/delete_controller", ctrl);
	return attach_write_file(p, "1");
}

/* The DH-HMAC-CHAP secret the environment names (a DHHC-1 secret or a file
 * holding one) as the kernel's dhchap_secret option wants it: ",NAME=SECRET"
 * appended to opts, or nothing. \return 0, -ENOKEY (said why). */
static int
kn_secret(const char *env, const char *name, char *opts, size_t len)
{
	const char *v = getenv(env);
	char secret[192];
	size_t used = strlen(opts);
	int rc;

	if (v == NULL || *v == '\0')
		return 0;
	if (strncmp(v, "DHHC-1:", 7) == 0) {
		rc = nvl_strlcpy(secret, v, sizeof(secret)) < 0 ? -ENAMETOOLONG : 0;
	} else {
		struct stat st;

		rc = stat(v, &st) < 0 ? -errno : (st.st_mode & 077) ? -EPERM : 0;
		if (rc == 0)
			rc = attach_read_file(v, secret, sizeof(secret)) < 0 ? -EIO : 0;
	}
	if (rc == 0 && (strncmp(secret, "DHHC-1:", 7) != 0 || strchr(secret, ',')))
		rc = -EINVAL;
	if (rc < 0 || (size_t)snprintf(opts + used, len - used, ",%s=%s", name, secret) >=
			      len - used) {
		fprintf(stderr, "nvlend attach: %s: %s\n", env,
			rc == -EPERM ? "the key file must have no group/other access (chmod 600)"
				     : "not a DHHC-1 secret or a readable file holding one");
		memset(secret, 0, sizeof(secret));
		return -ENOKEY;
	}
	memset(secret, 0, sizeof(secret));
	return 0;
}

static int
kn_start(struct attach_ctx *a)
{
	char hostnqn[256], hostid[64], opts[1024], resp[256], name[48];
	struct nvl_uri u;
	int fd, n = -1, cntlid = -1, rc;
	ssize_t r;

	if (nvl_uri_parse(a->o.uri, &u) < 0)
		return -EINVAL;
	host_identity(&a->o, hostnqn, sizeof(hostnqn), hostid, sizeof(hostid));
	rc = snprintf(opts, sizeof(opts),
		      "nqn=%s,transport=tcp,traddr=%s,trsvcid=%s,hostnqn=%s%s%s,"
		      "nr_io_queues=%u,queue_size=%u,reconnect_delay=1,ctrl_loss_tmo=%u",
		      u.nqn, u.host, u.port[0] ? u.port : "4420", hostnqn,
		      hostid[0] ? ",hostid=" : "", hostid, a->o.queues,
		      NVL_MAX(a->o.qd + 1, 16u), a->o.reconnect_timeout_s);
	if (rc < 0 || (size_t)rc >= sizeof(opts))
		return -ENAMETOOLONG;
	/* the kernel initiator authenticates itself (CONFIG_NVME_HOST_AUTH) */
	if (kn_secret("NVLEND_DHCHAP_KEY", "dhchap_secret", opts, sizeof(opts)) < 0 ||
	    kn_secret("NVLEND_DHCHAP_CTRLR_KEY", "dhchap_ctrl_secret", opts, sizeof(opts)) < 0)
		return -ENOKEY;
	fd = open("/dev/nvme-fabrics", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		fprintf(stderr, "nvlend attach: /dev/nvme-fabrics: %s\n", strerror(errno));
		return rc;
	}
	rc = write(fd, opts, strlen(opts)) < 0 ? -errno : 0;
	memset(opts, 0, sizeof(opts)); /* it may hold DH-HMAC-CHAP secrets */
	if (rc < 0) {
		fprintf(stderr, "nvlend attach: the kernel refused to connect to %s:%s (%s): %s\n",
			u.host, u.port, u.nqn, strerror(-rc));
		close(fd);
		return rc;
	}
	r = read(fd, resp, sizeof(resp) - 1);
	close(fd);
	if (r > 0) {
		resp[r] = '\0';
		sscanf(resp, "instance=%d,cntlid=%d", &n, &cntlid);
	}
	if (n < 0) {
		fprintf(stderr, "nvlend attach: no controller instance from /dev/nvme-fabrics\n");
		return -EPROTO;
	}
	snprintf(a->rec.backing, sizeof(a->rec.backing), "nvme%d", n);
	/* namespaces are scanned asynchronously after connect */
	rc = -ENOENT;
	for (int i = 0; i < 250 && rc < 0; i++) {
		rc = find_ns_disk(n, u.nsid ? u.nsid : a->o.nsid, name, sizeof(name));
		if (rc < 0)
			usleep(20000);
	}
	if (rc < 0) {
		fprintf(stderr, "nvlend attach: controller nvme%d has no such namespace\n", n);
		delete_ctrl(a->rec.backing);
		return rc;
	}
	snprintf(a->rec.device, sizeof(a->rec.device), "/dev/%s", name);
	if (!attach_wait_path(a->rec.device, true, 5000)) {
		fprintf(stderr, "nvlend attach: %s did not appear\n", a->rec.device);
		delete_ctrl(a->rec.backing);
		return -ENODEV;
	}
	{
		char p[128];
		uint64_t sectors = 0;

		snprintf(p, sizeof(p), "/sys/block/%s/size", name);
		if (attach_read_file(p, resp, sizeof(resp)) > 0)
			sectors = strtoull(resp, NULL, 10);
		a->rec.size = sectors * 512;
		snprintf(p, sizeof(p), "/sys/block/%s/queue/logical_block_size", name);
		read_u32(p, &a->rec.block_size);
	}
	if (a->o.readonly) {
		int one = 1, bfd = open(a->rec.device, O_RDONLY | O_CLOEXEC);

		if (bfd < 0 || ioctl(bfd, BLKROSET, &one) < 0)
			fprintf(stderr, "nvlend attach: cannot make %s read-only: %s\n",
				a->rec.device, strerror(errno));
		if (bfd >= 0)
			close(bfd);
		a->rec.readonly = true;
	}
	nvl_strlcpy(a->rec.hostnqn, hostnqn, sizeof(a->rec.hostnqn));
	return 0;
}

/* Is ctrl (nvmeN) still the controller this record made? */
static bool
ctrl_is_ours(const struct attach_record *r)
{
	char p[PATH_MAX + 64], nqn[256];
	struct nvl_uri u;

	if (strncmp(r->backing, "nvme", 4) != 0 || nvl_uri_parse(r->uri, &u) < 0)
		return false;
	snprintf(p, sizeof(p), "/sys/class/nvme/%s/subsysnqn", r->backing);
	return attach_read_file(p, nqn, sizeof(nqn)) > 0 && strcmp(nqn, u.nqn) == 0;
}

static int
kn_detach_record(const struct attach_record *r)
{
	if (!ctrl_is_ours(r))
		return 0; /* already gone (ctrl_loss_tmo passed, or deleted) */
	return delete_ctrl(r->backing);
}

static const char *
kn_record_state(const struct attach_record *r, char *buf, size_t len)
{
	char p[PATH_MAX + 64], st[32];

	if (!ctrl_is_ours(r))
		return "dead";
	snprintf(p, sizeof(p), "/sys/class/nvme/%s/state", r->backing);
	if (attach_read_file(p, st, sizeof(st)) <= 0)
		return "dead";
	if (strcmp(st, "live") == 0)
		return "attached";
	if (strcmp(st, "connecting") == 0 || strcmp(st, "resetting") == 0)
		return "reconnecting";
	snprintf(buf, len, "%s", st);
	return buf;
}

static void
kn_stop(struct attach_ctx *a)
{
	if (a->rec.backing[0])
		delete_ctrl(a->rec.backing);
}

const struct attach_mech g_attach_kernel = {
	.name = "kernel",
	.available = kn_available,
	.start = kn_start,
	.stop = kn_stop,
	.in_kernel = true,
	.detach_record = kn_detach_record,
	.record_state = kn_record_state,
};
