/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The exit status of nvlend and nvlend-perf for a failure that libnvlend
 * named with nvl_strerror(): one table, so the same failure exits the same
 * way in both tools (issue 22, item 6). Documented in both --help texts.
 */
#ifndef NVLEND_TOOLS_EXITCODE_H
#define NVLEND_TOOLS_EXITCODE_H

#include <errno.h>

#define NVL_EXIT_FAILED 1      /* the operation failed (I/O, verify, other) */
#define NVL_EXIT_USAGE 2       /* bad command line, an invalid URI included */
#define NVL_EXIT_NODAEMON 3    /* nvlendd's RPC socket does not answer (nvlend) */
#define NVL_EXIT_UNREACHABLE 4 /* no socket, no listener, not listening there, no answer */
#define NVL_EXIT_REFUSED 5     /* the target refused: no such subsystem/namespace, not allowed */

/** The exit status for a connect failure err (-errno). */
static inline int
nvl_exit_for(int err)
{
	switch (err) {
	case -EINVAL:
	case -EPROTONOSUPPORT:
	case -ENAMETOOLONG:
		return NVL_EXIT_USAGE;
	case -ENOENT:
	case -ECONNREFUSED:
	case -EADDRNOTAVAIL:
	case -ETIMEDOUT:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -ENETDOWN: /* no RDMA device */
		return NVL_EXIT_UNREACHABLE;
	case -ENODEV:
	case -EACCES:
	case -EPERM:
	case -ENXIO:
	case -EBUSY:
	case -EREMOTEIO:
		return NVL_EXIT_REFUSED;
	default:
		return NVL_EXIT_FAILED;
	}
}

#define NVL_EXIT_STATUS_HELP                                                                     \
	"    0 success; 1 the operation failed; 2 bad command line (an invalid URI\n"             \
	"    too); 4 the target is not reachable (no such socket, nothing listens\n"              \
	"    there, the subsystem does not listen at that address, no answer in\n"                \
	"    time, no RDMA device for nvme+rdma); 5 the target refused (no such\n"              \
	"    subsystem or namespace, host not allowed).\n"

#endif
