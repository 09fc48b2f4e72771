/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One vocabulary for failures (issue 22, item 6): nvl_strerror() names what
 * went wrong the way the CLI, nvlend-perf and library users all print it,
 * with the target's own reason when the last failing call of this thread
 * had one (a shm refusal message, a Connect status).
 *
 * Ownership: the reason lives in a thread-local buffer; nvl_strerror()
 * returns another thread-local buffer, valid until this thread's next call.
 * Threads: any; nothing is shared between threads.
 */
#include "host/host_internal.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "nvlend/nvlend.h"

static __thread int t_err;
static __thread char t_reason[256];
static __thread char t_text[384];

void
host_error_note(int err, const char *reason)
{
	t_err = err;
	t_reason[0] = '\0';
	if (reason)
		nvl_strlcpy(t_reason, reason, sizeof(t_reason));
}

/* The phrase of one failure; NULL if the C library's text is as good. */
static const char *
phrase(int err)
{
	switch (err) {
	case -EINVAL: return "invalid URI (nvme+shm:///SOCK?nqn=NQN[&nsid=N], "
			     "nvme+tcp://HOST:PORT/NQN[/NSID], nvme+rdma://HOST:PORT/NQN[/NSID] or "
			     "nvme+fn:///SOCK[?nsid=N])";
	case -EPROTONOSUPPORT: return "unsupported URI scheme (nvme+shm, nvme+tcp, nvme+rdma, "
				      "nvme+fn, brick+shm, brick+tcp)";
	case -ENAMETOOLONG: return "URI part too long (socket path, host name or NQN)";
	case -ENOENT: return "no such socket";
	case -ECONNREFUSED: return "nothing listens at that address and port";
	case -EADDRNOTAVAIL: return "the subsystem does not listen at that address";
	case -ENODEV: return "no such subsystem";
	case -EACCES: return "this host is not allowed on that subsystem";
	case -EPERM: return "this host NQN is bound to another local user";
	case -ENXIO: return "no such namespace (not active on that controller)";
	case -ETIMEDOUT: return "the target did not answer in time";
	case -EHOSTUNREACH:
	case -ENETUNREACH: return "no route to that host";
	case -EPROTO: return "the peer broke the protocol (is it an nvlend or NVMe target?)";
	case -EBUSY: return "the target is busy (no controller id free)";
	case -EREMOTEIO: return "refused by the target";
	case -ENETDOWN: return g_host_rdma_nodev;
	case -ENOKEY: return "the DH-HMAC-CHAP key cannot be used";
	case -EKEYREJECTED: return "the controller did not prove itself (DH-HMAC-CHAP)";
	case -ECONNRESET:
	case -ENOTCONN: return "the target closed the connection";
	default: return NULL;
	}
}

NVL_EXPORT const char *
nvl_strerror(int err)
{
	const char *p;

	if (err > 0)
		err = -err;
	p = phrase(err);
	if (p == NULL)
		p = strerror(-err);
	/* the target's reason, unless it only repeats the phrase */
	if (t_err == err && t_reason[0] && strcasestr(t_reason, p) == NULL)
		snprintf(t_text, sizeof(t_text), "%s (%s)", p, t_reason);
	else
		snprintf(t_text, sizeof(t_text), "%s", p);
	return t_text;
}
