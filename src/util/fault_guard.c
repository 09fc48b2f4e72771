/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fault guard (see fault_guard.h): a SIGBUS handler that turns a peer's
 * truncation of a file we map into a flag instead of a crash.
 *
 * The table is a fixed array so the handler never allocates or locks. A
 * slot is published by storing its length last (release); the handler loads
 * the length first (acquire), so it never sees a length with a stale start.
 * mmap() is not on POSIX's async-signal-safe list but it is a plain system
 * call on Linux and touches no user-space state; replacing the mapping with
 * MAP_FIXED is atomic for the other threads (they see either the old pages or
 * the new zero pages, never a hole).
 */
#include "util/fault_guard.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

struct fg_slot {
	uintptr_t start;
	size_t len;                  /* 0: free; stored last when published */
	volatile bool *tripped;
};

static struct fg_slot g_slots[NVL_FAULT_GUARD_SLOTS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction g_prev;
static unsigned long g_trips;

static void
fg_chain(int sig, siginfo_t *si, void *uc)
{
	if ((g_prev.sa_flags & SA_SIGINFO) && g_prev.sa_sigaction) {
		g_prev.sa_sigaction(sig, si, uc);
		return;
	}
	if (g_prev.sa_handler != SIG_DFL && g_prev.sa_handler != SIG_IGN) {
		g_prev.sa_handler(sig);
		return;
	}
	/* default action: reset and return; the access faults again and the
	 * process ends with SIGBUS as it would have without us */
	signal(SIGBUS, SIG_DFL);
}

static void
fg_handler(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	int saved = errno;

	for (unsigned i = 0; i < NVL_FAULT_GUARD_SLOTS; i++) {
		struct fg_slot *s = &g_slots[i];
		/* Pairs with the release store of len in nvl_fault_guard_add(). */
		size_t len = __atomic_load_n(&s->len, __ATOMIC_ACQUIRE);
		void *p;

		if (len == 0 || a - s->start >= len)
			continue;
		p = mmap((void *)s->start, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			break;
		*s->tripped = true;
		__atomic_fetch_add(&g_trips, 1, __ATOMIC_RELAXED);
		errno = saved;
		return;
	}
	errno = saved;
	fg_chain(sig, si, uc);
}

/* Install the handler unless it is the current one (someone, e.g. a test
 * framework, may have replaced it since: checked on every add). */
static int
fg_install(void)
{
	struct sigaction sa, cur;

	if (sigaction(SIGBUS, NULL, &cur) < 0)
		return -errno;
	if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == fg_handler)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fg_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &g_prev) < 0)
		return -errno;
	return 0;
}

int
nvl_fault_guard_add(void *addr, size_t len, volatile bool *tripped)
{
	int rc, id = -ENOSPC;

	if (addr == NULL || len == 0 || tripped == NULL)
		return -EINVAL;
	pthread_mutex_lock(&g_lock);
	rc = fg_install();
	if (rc < 0) {
		id = rc;
		goto out;
	}
	for (unsigned i = 0; i < NVL_FAULT_GUARD_SLOTS; i++) {
		struct fg_slot *s = &g_slots[i];

		if (s->len != 0)
			continue;
		s->start = (uintptr_t)addr;
		s->tripped = tripped;
		/* Publish: the handler loads len first (acquire). */
		__atomic_store_n(&s->len, len, __ATOMIC_RELEASE);
		id = (int)i;
		break;
	}
out:
	pthread_mutex_unlock(&g_lock);
	return id;
}

void
nvl_fault_guard_del(int id)
{
	if (id < 0 || id >= NVL_FAULT_GUARD_SLOTS)
		return;
	pthread_mutex_lock(&g_lock);
	__atomic_store_n(&g_slots[id].len, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&g_lock);
}

unsigned long
nvl_fault_guard_trips(void)
{
	return __atomic_load_n(&g_trips, __ATOMIC_RELAXED);
}
