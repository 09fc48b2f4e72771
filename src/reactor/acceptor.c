/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Acceptors: a listening socket watched on a reactor, every connection
 * accepted with nvl_sock_accept() and handed to the owner's callback. The
 * one accept loop of the daemon (RPC, NVMe/TCP, shm, brick, vhost-user).
 *
 * A full descriptor table must not make a level-triggered listener spin:
 * nvl_sock_accept() sheds pending connections with a reserve descriptor;
 * when even that is impossible (or the kernel is out of memory, or the
 * listener itself fails) the acceptor stops watching the socket and looks
 * again after ACCEPTOR_RETRY_US. Connections wait in the listen backlog
 * meanwhile.
 *
 * Threading: an acceptor lives on the reactor that created it; only that
 * reactor may destroy it.
 */
#include "reactor/reactor.h"
#include "util/log.h"
#include "util/sock.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

NVL_LOG_DECLARE_COMPONENT(reactor);

#define ACCEPTOR_BUDGET 64            /* accepts per wake-up; level-triggered: more later */
#define ACCEPTOR_RETRY_US 100000      /* paused listeners look again after 100 ms */

struct nvl_acceptor {
	int fd;
	unsigned flags;                 /* nvl_sock_accept() flags */
	nvl_accept_fn fn;
	void *arg;
	struct nvl_fdh *fdh;            /* NULL while paused */
	struct nvl_timer *retry;        /* armed while paused */
	bool in_event;
	bool dead;                      /* destroyed from its own callback */
	char name[96];
};

static void acceptor_event(void *arg, uint32_t events);

static void
acceptor_resume(void *arg)
{
	struct nvl_acceptor *a = arg;

	nvl_timer_destroy(a->retry); /* the fired one-shot */
	a->retry = NULL;
	a->fdh = nvl_fd_add(a->fd, EPOLLIN, acceptor_event, a);
	if (a->fdh == NULL) {
		a->retry = nvl_timer_create(acceptor_resume, a, ACCEPTOR_RETRY_US, 0);
		if (a->retry == NULL)
			NVL_ERRLOG("%s: cannot watch the listener again: it accepts no more",
				   a->name);
	}
}

/* Stop watching for a while: nothing can be accepted now. */
static void
acceptor_pause(struct nvl_acceptor *a)
{
	struct nvl_timer *t = nvl_timer_create(acceptor_resume, a, ACCEPTOR_RETRY_US, 0);

	if (t == NULL)
		return; /* out of memory: keep watching rather than stop for good */
	nvl_fd_del(a->fdh);
	a->fdh = NULL;
	a->retry = t;
}

static void
acceptor_event(void *arg, uint32_t events)
{
	struct nvl_acceptor *a = arg;

	(void)events;
	a->in_event = true;
	for (int i = 0; i < ACCEPTOR_BUDGET && !a->dead; i++) {
		int fd, rc = nvl_sock_accept(a->fd, a->flags, a->name, &fd);

		if (rc == 0) {
			a->fn(a->arg, fd);
			continue;
		}
		if (rc == -ECONNABORTED)
			continue;
		if (rc == -EAGAIN)
			break;
		if (rc != -EMFILE && rc != -ENOMEM)
			NVL_ERRLOG_RL("%s: accept: %s", a->name, strerror(-rc));
		acceptor_pause(a);
		break;
	}
	a->in_event = false;
	if (a->dead)
		free(a);
}

struct nvl_acceptor *
nvl_acceptor_create(int fd, const char *name, unsigned flags, nvl_accept_fn fn, void *arg)
{
	struct nvl_acceptor *a;

	if (nvl_reactor_self() == NULL) {
		errno = EPERM;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	a->fd = fd;
	a->flags = (flags & NVL_ACCEPTOR_CONTROL) ? NVL_SOCK_ACCEPT_CONTROL : 0;
	a->fn = fn;
	a->arg = arg;
	snprintf(a->name, sizeof(a->name), "%s", name ? name : "listener");
	a->fdh = nvl_fd_add(fd, EPOLLIN, acceptor_event, a);
	if (a->fdh == NULL) {
		int e = errno;

		free(a);
		errno = e;
		return NULL;
	}
	return a;
}

void
nvl_acceptor_destroy(struct nvl_acceptor *a)
{
	if (a == NULL)
		return;
	nvl_fd_del(a->fdh);
	a->fdh = NULL;
	nvl_timer_destroy(a->retry);
	a->retry = NULL;
	if (a->in_event)
		a->dead = true; /* freed when acceptor_event() unwinds */
	else
		free(a);
}
