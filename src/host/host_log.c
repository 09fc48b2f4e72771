/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client side's debug level (dis_nvme's debug_level on the host): the
 * "host" log component of libnvlend, and NVLEND_LOG_LEVEL read once when
 * the library loads (0..3, or DEBUG, VERBOSE, TRACE), so any program using
 * libnvlend prints level 2 (verbose: admin commands, queue creation,
 * connects, reconnects) and level 3 (trace: every command's fields, every
 * session request) lines on stderr. nvlend attach --log-level sets it too.
 * Any thread (the level is an atomic).
 */
#include "host/host_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

NVL_LOG_REGISTER_COMPONENT(host)

static void __attribute__((constructor))
host_log_level_from_env(void)
{
	static const char *const names[] = { "INFO", "DEBUG", "VERBOSE", "TRACE" };
	const char *v = getenv("NVLEND_LOG_LEVEL");
	uint64_t n;

	if (v == NULL || *v == '\0')
		return;
	if (nvl_parse_u64(v, 3, &n) == 0) {
		nvl_log_set_level((int)n);
		return;
	}
	for (int i = 0; i < 4; i++)
		if (strcasecmp(v, names[i]) == 0)
			nvl_log_set_level(i);
}
