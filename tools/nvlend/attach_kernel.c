/* SPDX-License-Identifier: BSD-3-Clause */
/* WIP placeholder, replaced before commit */
#include "attach.h"
#include <stdio.h>
static bool
avail(const struct attach_opts *o, char *why, size_t len)
{
	snprintf(why, len, "not built yet");
	return false;
}
const struct attach_mech g_attach_kernel = { .name = "kernel", .available = avail, .in_kernel = true };
