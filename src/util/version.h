/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The version of nvlend, one definition for every part that reports it: the
 * daemon (nvlend_get_version, its start-up line, --version), the NVMe
 * controllers it presents (Identify FR) and the tools. No state.
 */
#ifndef NVL_VERSION_H
#define NVL_VERSION_H

#define NVL_VERSION_STRING "0.1.0"
#define NVL_VERSION_MAJOR 0
#define NVL_VERSION_MINOR 1
#define NVL_VERSION_PATCH 0

#endif
