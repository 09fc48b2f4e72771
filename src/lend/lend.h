/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Device lending (SmartIO's Device Lending, DESIGN.md sections 1-2): a node
 * lends a device it owns (a file or block device, a bdev, a brick) to
 * another node, which borrows it exclusively (or shared, if the offer says
 * so) through NVMe/TCP, keeps a lease alive while it uses it, and returns
 * it. Every lend record is local | offered (unavailable) | available |
 * borrowed-by NODE. The service is driven by the lend_* RPCs (lend_rpc.c)
 * and talks to other nodes with the peer protocol (lend_proto.h).
 *
 * Threading: everything runs on reactor 0, except the blocking peer
 * client calls, which run in short-lived threads that post their result
 * back to reactor 0.
 */
#ifndef NVL_LEND_H
#define NVL_LEND_H

#include <stdbool.h>
#include <stddef.h>

/** Options from nvlendd's command line (before nvl_app_run). */
struct nvl_lend_opts {
	const char *node_name;   /**< --node-name: persisted; NULL keeps the saved one */
	const char *state_dir;   /**< --state-dir: node identity and lend records */
	const char *key_file;    /**< --cluster-key: the peer authentication key */
	const char *avahi_dir;   /**< --avahi-services-dir: where mDNS adverts go */
};

/**
 * Set the options (once, before the daemon starts). Copies the strings.
 * \return 0, -EINVAL (a node name that is not 1..63 of [A-Za-z0-9._-]),
 *         -ENOMEM.
 */
int nvl_lend_configure(const struct nvl_lend_opts *o);

/** The default state dir: /var/lib/nvlend as root, else
 *  $XDG_STATE_HOME/nvlend, else ~/.local/state/nvlend. \return buf. */
const char *nvl_lend_default_state_dir(char *buf, size_t len);

#endif
