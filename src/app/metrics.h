/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Prometheus / OpenMetrics exporter of nvlendd (metrics.c): GET /metrics on
 * a TCP address. Reactor 0 only.
 */
#ifndef NVL_APP_METRICS_H
#define NVL_APP_METRICS_H

/**
 * Listen on address:port (numeric port) and serve /metrics.
 * \return 0; -EALREADY (already serving); -EINVAL (bad address);
 *         -errno of socket/bind/listen.
 */
int nvl_metrics_start(const char *address, const char *port);

/** Stop serving; scrapes in progress are dropped. */
void nvl_metrics_stop(void);

#endif
