/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mDNS advertisement of the lender's discovery controller, as TP 8009 and
 * nvme-stas expect it: service type _nvme-disc._tcp on the discovery port,
 * TXT p=tcp and nqn=<the discovery NQN>. Done through avahi's static
 * services: the daemon writes STATE/../nvlend-NODE.service into avahi's
 * services directory (--avahi-services-dir, default /etc/avahi/services),
 * which a running avahi-daemon picks up by itself (inotify), and removes it
 * when it stops listening or exits. No D-Bus, no link-time dependency: a
 * host without avahi simply has no such directory, and lend listen --mdns
 * says so. Reactor 0.
 */
#include "lend/lend_internal.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_published[PATH_MAX];

static const char *
services_dir(void)
{
	return g_lend.avahi_dir[0] ? g_lend.avahi_dir : "/etc/avahi/services";
}

void
lend_mdns_withdraw(void)
{
	if (g_published[0] == '\0')
		return;
	if (unlink(g_published) < 0 && errno != ENOENT)
		NVL_WARNLOG("lend: cannot remove %s: %s", g_published, strerror(errno));
	else
		NVL_NOTICELOG("lend: no longer advertised over mDNS (%s removed)", g_published);
	g_published[0] = '\0';
}

int
lend_mdns_publish(char *err, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], text[2048];
	struct stat st;
	int fd, rc, n;

	lend_mdns_withdraw();
	if (stat(services_dir(), &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "no avahi services directory %s (is avahi-daemon installed?)",
			 services_dir());
		return -ENOENT;
	}
	if (g_lend.listener.disc_trsvcid[0] == '\0') {
		snprintf(err, errlen, "mDNS advertises the discovery listener: give a discovery port");
		return -EINVAL;
	}
	/* names are [A-Za-z0-9._-]: nothing to escape in the XML */
	n = snprintf(text, sizeof(text),
		     "<?xml version=\"1.0\" standalone='no'?>\n"
		     "<!DOCTYPE service-group SYSTEM \"avahi-service.dtd\">\n"
		     "<!-- written by nvlendd (node %s); removed when it stops -->\n"
		     "<service-group>\n"
		     "  <name>nvlend %s</name>\n"
		     "  <service>\n"
		     "    <type>_nvme-disc._tcp</type>\n"
		     "    <port>%s</port>\n"
		     "    <txt-record>p=tcp</txt-record>\n"
		     "    <txt-record>nqn=nqn.2014-08.org.nvmexpress.discovery</txt-record>\n"
		     "  </service>\n"
		     "</service-group>\n",
		     g_lend.node, g_lend.node, g_lend.listener.disc_trsvcid);
	if (snprintf(path, sizeof(path), "%.3900s/nvlend-%s.service", services_dir(), g_lend.node) >=
	    (int)sizeof(path)) {
		snprintf(err, errlen, "services directory path too long");
		return -ENAMETOOLONG;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		return rc;
	}
	rc = nvl_write_all(fd, text, (size_t)n);
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
		return rc;
	}
	nvl_strlcpy(g_published, path, sizeof(g_published));
	NVL_NOTICELOG("lend: discovery port %s advertised over mDNS as _nvme-disc._tcp (%s)",
		      g_lend.listener.disc_trsvcid, path);
	return 0;
}
