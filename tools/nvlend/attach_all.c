/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `nvlend attach --all`: dis_nvme's "discover all drives automatically".
 * The target's discovery log (read with libnvlend from its discovery
 * controller) names the NVMe subsystems it offers this host; each one's
 * active namespaces are attached by running `nvlend attach URI/NSID` (this
 * same binary) with the caller's options. And the stable names every
 * attachment gets: BYID/nvlend-SUBNQN-nNSID -> the device, whatever
 * /dev/loopN, /dev/nbdN, /dev/ublkbN or /dev/nvmeXnY it is. Reading a
 * discovery log is shared with `nvlend discover` (cmd_discover.c).
 * CLI process, single-threaded.
 */
#include "attach.h"
#include "cli.h"
#include "nvlend/nvlend.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ALL_MAX_RECORDS 256
#define DISCOVERY_MAX_RECORDS 1024
#define ALL_MAX_NS 64

/* ---- stable names ---------------------------------------------------------------------- */

static const char *
byid_dir(void)
{
	const char *d = getenv("NVLEND_BYID_DIR");

	return d && *d ? d : "/dev/disk/by-id";
}

void
attach_link_add(const struct attach_record *r, uint32_t nsid)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	struct nvl_uri u;
	size_t off;

	if (r->device[0] == '\0' || nvl_uri_parse(r->uri, &u) < 0 || nsid == 0)
		return;
	if (nvl_mkdir_p(byid_dir()) < 0)
		return;
	off = (size_t)snprintf(path, sizeof(path), "%s/nvlend-", byid_dir());
	for (const char *p = u.nqn; *p && off < sizeof(path) - 16; p++)
		path[off++] = *p == '/' ? '_' : *p;
	snprintf(path + off, sizeof(path) - off, "-n%u", nsid);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	if (symlink(r->device, tmp) < 0 || rename(tmp, path) < 0) {
		attach_log("%s: cannot make the link %s: %s", r->name, path, strerror(errno));
		unlink(tmp);
	}
}

void
attach_link_remove(const struct attach_record *r)
{
	char path[PATH_MAX], target[PATH_MAX];
	struct dirent *e;
	DIR *d;

	if (r->device[0] == '\0' || (d = opendir(byid_dir())) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		ssize_t n;

		if (strncmp(e->d_name, "nvlend-", 7) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", byid_dir(), e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, r->device) == 0)
			unlink(path);
	}
	closedir(d);
}

/* ---- discovery ---------------------------------------------------------------------------- */

void
discovery_field(char *out, size_t outlen, const char *in, size_t inlen)
{
	size_t n = strnlen(in, inlen);

	while (n > 0 && in[n - 1] == ' ')
		n--;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

static int
get_log(struct nvl_ctrlr *c, void *buf, uint32_t len, uint64_t off)
{
	struct nvl_nvme_cmd cmd = { 0 };
	uint32_t numd = len / 4 - 1;

	cmd.opc = NVL_NVME_ADM_GET_LOG_PAGE;
	cmd.cdw10 = NVL_NVME_LOG_DISCOVERY | (numd & 0xffff) << 16;
	cmd.cdw11 = numd >> 16;
	cmd.cdw12 = (uint32_t)off;
	cmd.cdw13 = (uint32_t)(off >> 32);
	return nvl_ctrlr_admin(c, &cmd, buf, len, NVL_XFER_FROM_CTRLR, NULL);
}

/* Header, records, header again: the same generation counter both times
 * (NVMe over Fabrics 1.1, 5.3), else read again. */
static int
read_log(struct nvl_ctrlr *c, struct nvl_nvmf_discovery_log *hdr,
	 struct nvl_nvmf_discovery_entry **out, int *nout)
{
	for (int attempt = 0; attempt < 4; attempt++) {
		struct nvl_nvmf_discovery_log again;
		struct nvl_nvmf_discovery_entry *e;
		uint64_t n;
		int rc;

		rc = get_log(c, hdr, sizeof(*hdr), 0);
		if (rc < 0)
			return rc;
		n = hdr->numrec < DISCOVERY_MAX_RECORDS ? hdr->numrec : DISCOVERY_MAX_RECORDS;
		e = calloc(n ? n : 1, sizeof(*e));
		if (e == NULL)
			return -ENOMEM;
		/* a record (1 KiB) per command: fits any MDTS */
		for (uint64_t i = 0; i < n && rc == 0; i++)
			rc = get_log(c, &e[i], sizeof(*e), sizeof(*hdr) + i * sizeof(*e));
		if (rc == 0)
			rc = get_log(c, &again, sizeof(again), 0);
		if (rc < 0) {
			free(e);
			return rc;
		}
		if (again.genctr == hdr->genctr) {
			*out = e;
			*nout = (int)n;
			return 0;
		}
		free(e);
	}
	return -EAGAIN;
}

int
discovery_log_read(const char *uri, const char *hostnqn, struct nvl_nvmf_discovery_log *hdr,
		   struct nvl_nvmf_discovery_entry **entries, char *why, size_t why_len)
{
	const struct nvl_nvme_id_ctrl *id;
	struct nvl_ctrlr_opts co;
	struct nvl_ctrlr *c = NULL;
	struct nvl_uri u;
	int rc, n = 0;

	*entries = NULL;
	why[0] = '\0';
	rc = nvl_uri_parse(uri, &u);
	if (rc < 0 || u.kind != NVL_URI_NVME_TCP) {
		snprintf(why, why_len, "%s: not nvme+tcp://HOST:PORT/NQN", uri);
		return -EINVAL;
	}
	nvl_ctrlr_opts_default(&co);
	co.hostnqn = hostnqn;
	co.keepalive_thread = false;
	rc = nvl_ctrlr_connect(uri, &co, &c);
	if (rc < 0) {
		switch (rc) {
		case -EHOSTUNREACH:
			snprintf(why, why_len, "no such host %s", u.host);
			break;
		case -ECONNREFUSED:
		case -ENOENT:
			snprintf(why, why_len, "connection refused: nothing listens on %s port %s",
				 u.host, u.port);
			break;
		case -ETIMEDOUT:
			snprintf(why, why_len, "%s port %s: no answer (timed out)", u.host, u.port);
			break;
		case -EPROTO:
			snprintf(why, why_len, "%s port %s does not speak NVMe/TCP%s%s", u.host,
				 u.port, c ? ": " : "", c ? nvl_ctrlr_last_error(c) : "");
			break;
		case -ENODEV:
			snprintf(why, why_len, "%s port %s has no subsystem %s", u.host, u.port,
				 u.nqn);
			break;
		case -EACCES:
			snprintf(why, why_len, "%s at %s port %s does not allow this host", u.nqn,
				 u.host, u.port);
			break;
		default:
			snprintf(why, why_len, "%s port %s: %s", u.host, u.port,
				 c && nvl_ctrlr_last_error(c)[0] ? nvl_ctrlr_last_error(c)
								  : strerror(-rc));
			break;
		}
		goto out;
	}
	id = nvl_ctrlr_identify(c);
	if (id->cntrltype != NVL_NVME_CNTRLTYPE_DISCOVERY) {
		snprintf(why, why_len, "%s at %s port %s is not a discovery controller", u.nqn,
			 u.host, u.port);
		rc = -EMEDIUMTYPE;
		goto out;
	}
	rc = read_log(c, hdr, entries, &n);
	if (rc < 0)
		snprintf(why, why_len, "reading the discovery log of %s port %s: %s", u.host,
			 u.port,
			 rc == -EAGAIN	    ? "it kept changing while being read"
			 : rc == -EREMOTEIO ? nvl_ctrlr_last_error(c)
					    : strerror(-rc));
out:
	nvl_ctrlr_disconnect(c);
	return rc < 0 ? rc : n;
}

/*
 * The NVMe subsystems (TCP) of the discovery log at uri, as namespace-less
 * URIs into uris[] (each URI_MAX bytes). \return how many, or -errno.
 */
static int
discover(const char *uri, const char *hostnqn, char (*uris)[ATTACH_URI_MAX], int max)
{
	struct nvl_nvmf_discovery_log hdr;
	struct nvl_nvmf_discovery_entry *e;
	struct nvl_uri du;
	char why[512];
	int n, got = 0;

	if (nvl_uri_parse(uri, &du) < 0)
		return -EINVAL;
	n = discovery_log_read(uri, hostnqn, &hdr, &e, why, sizeof(why));
	if (n < 0) {
		fprintf(stderr, "nvlend attach --all: %s\n", why);
		return n;
	}
	for (int i = 0; i < n && got < max; i++) {
		char addr[257], port[33], nqn[257];

		if (e[i].subtype != NVL_NVMF_SUBTYPE_NVME || e[i].trtype != NVL_NVMF_TRTYPE_TCP)
			continue;
		discovery_field(addr, sizeof(addr), e[i].traddr, sizeof(e[i].traddr));
		if (addr[0] == '\0' || strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0)
			/* a listener on every address: reach it where discovery answered */
			nvl_strlcpy(addr, du.host, sizeof(addr));
		discovery_field(port, sizeof(port), e[i].trsvcid, sizeof(e[i].trsvcid));
		discovery_field(nqn, sizeof(nqn), e[i].subnqn, sizeof(e[i].subnqn));
		snprintf(uris[got], ATTACH_URI_MAX, "nvme+tcp://%s%s%s:%s/%s",
			 e[i].adrfam == NVL_NVMF_ADRFAM_IPV6 ? "[" : "", addr,
			 e[i].adrfam == NVL_NVMF_ADRFAM_IPV6 ? "]" : "", port, nqn);
		/* one entry per subsystem and port; the same subsystem twice is attached once */
		for (int k = 0; k < got; k++)
			if (strcmp(uris[k], uris[got]) == 0) {
				got--;
				break;
			}
		got++;
	}
	free(e);
	return got;
}

/* Active namespaces of the subsystem at uri. \return how many, -EACCES (not for this host), -errno. */
static int
subsystem_namespaces(const char *uri, const char *hostnqn, uint32_t *ids, int max)
{
	struct nvl_ctrlr_opts co;
	struct nvl_ctrlr *c = NULL;
	int rc;

	nvl_ctrlr_opts_default(&co);
	co.hostnqn = hostnqn;
	co.keepalive_thread = false;
	rc = nvl_ctrlr_connect(uri, &co, &c);
	if (rc == 0)
		rc = nvl_ctrlr_list_ns(c, ids, max);
	nvl_ctrlr_disconnect(c);
	return rc;
}

/* Run this binary with argv; stdout and stderr are ours. \return its exit status or -1. */
static int
run_attach(char **argv)
{
	pid_t pid;
	int st;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
attach_all(const struct attach_opts *o, int argc, char **argv, bool json)
{
	static char uris[ALL_MAX_RECORDS][ATTACH_URI_MAX];
	char target[ATTACH_URI_MAX + 64], nsuri[ATTACH_URI_MAX + 16];
	char *cargv[64];
	struct nvl_uri u;
	int n, nargs = 0, attached = 0, failed = 0;

	if (o->name[0]) {
		fprintf(stderr, "nvlend attach --all: --name names one attachment; each of these "
				"gets its own nvlN name\n");
		return CLI_USAGE;
	}
	if (nvl_uri_parse(o->uri, &u) == 0) {
		nvl_strlcpy(target, o->uri, sizeof(target));
	} else {
		/* HOST:PORT alone: the target's discovery controller */
		snprintf(target, sizeof(target), "%s%s%s", o->uri,
			 o->uri[strlen(o->uri) - 1] == '/' ? "" : "/", NVL_NVME_DISCOVERY_NQN);
		if (nvl_uri_parse(target, &u) < 0 || u.kind != NVL_URI_NVME_TCP) {
			fprintf(stderr, "nvlend attach --all: '%s' is not nvme+tcp://HOST:PORT[/NQN] "
					"nor a namespace URI\n", o->uri);
			return CLI_USAGE;
		}
	}
	if (strcmp(u.nqn, NVL_NVME_DISCOVERY_NQN) == 0) {
		n = discover(target, o->hostnqn, uris, ALL_MAX_RECORDS);
		if (n < 0)
			return CLI_ERR;
	} else {
		nvl_strlcpy(uris[0], target, sizeof(uris[0]));
		n = 1;
	}
	/* the child's options: ours, without --all and the URI */
	cargv[nargs++] = "nvlend";
	if (json)
		cargv[nargs++] = "--json";
	cargv[nargs++] = "attach";
	cargv[nargs++] = nsuri;
	for (int i = 1; i < argc && nargs < 62; i++)
		if (argv[i] != o->uri && strcmp(argv[i], "--all") != 0)
			cargv[nargs++] = argv[i];
	cargv[nargs] = NULL;
	for (int i = 0; i < n; i++) {
		uint32_t ids[ALL_MAX_NS];
		int k, m;

		if (nvl_uri_parse(uris[i], &u) < 0)
			continue;
		m = subsystem_namespaces(uris[i], o->hostnqn, ids, ALL_MAX_NS);
		if (m == -EACCES) {
			fprintf(stderr, "nvlend attach --all: %s: not offered to this host; skipped\n",
				u.nqn);
			continue;
		}
		if (m < 0) {
			fprintf(stderr, "nvlend attach --all: %s: %s\n", u.nqn, strerror(-m));
			failed++;
			continue;
		}
		for (k = 0; k < m; k++) {
			if (u.nsid && ids[k] != u.nsid)
				continue;
			if (u.kind == NVL_URI_NVME_TCP)
				snprintf(nsuri, sizeof(nsuri), "nvme+tcp://%s%s%s:%s/%s/%u",
					 strchr(u.host, ':') ? "[" : "", u.host,
					 strchr(u.host, ':') ? "]" : "", u.port, u.nqn, ids[k]);
			else
				snprintf(nsuri, sizeof(nsuri), "nvme+shm://%s?nqn=%s&nsid=%u", u.path,
					 u.nqn, ids[k]);
			if (run_attach(cargv) == 0)
				attached++;
			else
				failed++;
		}
	}
	if (attached == 0 && failed == 0) {
		fprintf(stderr, "nvlend attach --all: %s offers this host no namespace\n", o->uri);
		return CLI_ERR;
	}
	return failed ? CLI_ERR : CLI_OK;
}
