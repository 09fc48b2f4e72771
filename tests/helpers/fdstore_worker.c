/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A stand-in worker for the keeper's tests (tests/unit/app/keeper_ut.c),
 * using the daemon's own fd-store calls (src/util/fdstore.c).
 *
 *   fdstore_worker MODE SOCKET STATEFILE
 *
 * Every start: take back (or make, the first time) "counter", a memfd
 * holding a start count, and "listener", a Unix socket listening at
 * SOCKET; add one to the count; append "start N pid=P ino=I names=..." to
 * STATEFILE (I: the listener's inode, the same object across restarts);
 * then by MODE:
 *   crash3     READY, then abort() while N < 3; at N == 3 accept one
 *              connection (made while the workers were dying), append
 *              "accepted", exit 0
 *   crashloop  abort() before READY, every time
 *   serve      READY, then wait; SIGTERM: append "sigterm", exit 0;
 *              SIGUSR1: abort() (a crash after READY)
 *   upgrade    append "exe=E from=F rolled_back=R" (E: this binary's file
 *              name, F and R from the keeper's upgrade environment), READY;
 *              at N == 1 ask the keeper to upgrade to $UPGRADE_TO and exit
 *              with the hand-over status; later, exit 0
 *   ahead      as upgrade, but at N == 1 first ask the keeper to start
 *              $UPGRADE_TO ahead (with a ready pipe), wait for its byte
 *              (append "old saw ready=R"), store "late" (a memfd: after the
 *              snapshot), then hand over saying it stopped for good, and
 *              only exit 1.5 s after that (a slow exit); while it lives
 *              STATEFILE.old exists. A worker started ahead appends "ahead",
 *              says it is ready and waits for the hand-over; the next worker
 *              appends "old_alive=A" (A: 1 when it started before the old
 *              one was gone), waits for it to go, exits 0.
 *   ahead_stale  as ahead, but the worker started ahead takes "counter"
 *              before the hand-over and the old worker stores "counter"
 *              again after the snapshot: the new one appends "stale" and
 *              exits 76 (NVL_KEEPER_EXIT_AFRESH); the keeper starts it again
 *   ahead_revoke  as ahead_stale, but the worker started ahead names who
 *              drops what it built from "counter" (nvl_fdstore_ahead_revoker)
 *              and first takes "listener" and gives it back: it appends
 *              "gave_back=0 revoked=1", is not stale, and takes the copy
 *              stored again
 *   ahead_crash  at N == 1 ask for $UPGRADE_TO ahead, then abort(): the
 *              keeper restarts this binary, not the one started ahead
 */
#include "util/fdstore.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static FILE *g_state;
static volatile sig_atomic_t g_term;
static int g_revoked;

/* ahead_revoke: what was built from "counter" goes at the hand-over */
static bool
revoke_counter(const char *name)
{
	if (strcmp(name, "counter") != 0)
		return false;
	g_revoked = 1;
	return true;
}

static void
on_term(int sig)
{
	(void)sig;
	g_term = 1;
}

static void
note_name(void *arg, const char *name, int fd)
{
	(void)fd;
	fprintf(arg, "%s,", name);
}

int
main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	uint32_t n = 0;
	int counter, lfd;

	if (argc != 4)
		return 2;
	g_state = fopen(argv[3], "a");
	if (g_state == NULL || nvl_fdstore_init() < 0)
		return 3;
	setvbuf(g_state, NULL, _IOLBF, 0);
	/* before "start N" is written: a test that sees it may send SIGTERM at
	 * once (under valgrind the gap to the handler was long enough to die of it) */
	signal(SIGTERM, on_term);
	counter = -1;
	if (nvl_fdstore_ahead()) {
		struct pollfd p = { .fd = nvl_fdstore_ahead_fd(), .events = POLLIN };
		bool revoke = strcmp(argv[1], "ahead_revoke") == 0;
		int rc, gave = -1;

		fprintf(g_state, "ahead\n");
		if (strcmp(argv[1], "ahead_stale") == 0 || revoke)
			counter = nvl_fdstore_take("counter");
		if (revoke) {
			int l = nvl_fdstore_take("listener");

			gave = l >= 0 ? nvl_fdstore_give_back("listener", l) : -1;
			nvl_fdstore_ahead_revoker(revoke_counter);
		}
		nvl_fdstore_ahead_ready();
		while ((rc = nvl_fdstore_ahead_recv()) == 0)
			poll(&p, 1, 1000);
		if (rc == -ESTALE) {
			fprintf(g_state, "stale\n");
			_exit(76);
		}
		if (rc < 0)
			return 10;
		if (revoke) {
			fprintf(g_state, "gave_back=%d revoked=%d\n", gave, g_revoked);
			nvl_fdstore_ahead_revoker(NULL);
			if (g_revoked) {
				/* the copy taken is stale: the one stored again is used */
				if (nvl_fdstore_give_back("counter", counter) == 0)
					return 11;
				close(counter);
				counter = -1;
			}
		}
	}
	fprintf(g_state, "names=");
	nvl_fdstore_for_each_untaken(note_name, g_state);
	fprintf(g_state, "\n");
	if (counter < 0)
		counter = nvl_fdstore_take("counter");
	if (counter < 0) {
		counter = memfd_create("counter", MFD_CLOEXEC);
		if (counter < 0 || ftruncate(counter, 4) < 0 || nvl_fdstore_put("counter", counter) < 0)
			return 4;
	}
	lfd = nvl_fdstore_take("listener");
	if (lfd < 0) {
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[2]);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    listen(lfd, 8) < 0 || nvl_fdstore_put("listener", lfd) < 0)
			return 5;
	}
	nvl_fdstore_release_untaken();
	if (pread(counter, &n, 4, 0) != 4)
		return 6;
	n++;
	if (pwrite(counter, &n, 4, 0) != 4 || fstat(lfd, &st) < 0)
		return 7;
	fprintf(g_state, "start %u pid=%d ino=%lu\n", n, (int)getpid(), (unsigned long)st.st_ino);
	if (strcmp(argv[1], "crashloop") == 0)
		abort();
	if (strncmp(argv[1], "ahead", 5) == 0) {
		char old[4200];
		FILE *f;

		snprintf(old, sizeof(old), "%s.old", argv[3]);
		nvl_fdstore_ready("test worker");
		if (n == 1) {
			int pfd[2], late;
			struct pollfd p;
			char b = 0;

			if (pipe2(pfd, O_CLOEXEC) < 0 ||
			    nvl_fdstore_upgrade_prepare(getenv("UPGRADE_TO"), pfd[1]) < 0)
				return 9;
			close(pfd[1]);
			if (strcmp(argv[1], "ahead_crash") == 0)
				abort();
			f = fopen(old, "w");
			if (f)
				fclose(f);
			p = (struct pollfd){ .fd = pfd[0], .events = POLLIN };
			poll(&p, 1, 5000);
			fprintf(g_state, "old saw ready=%d\n", read(pfd[0], &b, 1) == 1 && b == 'R');
			if (strcmp(argv[1], "ahead_stale") == 0 ||
			    strcmp(argv[1], "ahead_revoke") == 0) {
				if (nvl_fdstore_put("counter", counter) < 0)
					return 9;
			} else {
				late = memfd_create("late", MFD_CLOEXEC);
				if (late < 0 || nvl_fdstore_put("late", late) < 0)
					return 9;
			}
			if (nvl_fdstore_upgrade(getenv("UPGRADE_TO"), "v1", true, 0) < 0)
				return 9;
			usleep(1500000);
			unlink(old);
			_exit(75); /* NVL_KEEPER_EXIT_UPGRADE */
		}
		fprintf(g_state, "exe=%s from=%s old_alive=%d\n",
			strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0],
			getenv("NVLEND_UPGRADE_FROM") ? getenv("NVLEND_UPGRADE_FROM") : "-",
			access(old, F_OK) == 0);
		for (int i = 0; i < 500 && access(old, F_OK) == 0; i++)
			usleep(10000);
		return 0;
	}
	if (strcmp(argv[1], "upgrade") == 0) {
		char exe[4096] = "";
		ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		const char *from = getenv("NVLEND_UPGRADE_FROM");

		exe[len > 0 ? len : 0] = '\0';
		fprintf(g_state, "exe=%s from=%s rolled_back=%d\n",
			strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe, from ? from : "-",
			getenv("NVLEND_UPGRADE_ROLLED_BACK") != NULL);
		nvl_fdstore_ready("test worker");
		if (n == 1) {
			if (nvl_fdstore_upgrade(getenv("UPGRADE_TO"), "v1", false, 0) < 0)
				return 9;
			_exit(75); /* NVL_KEEPER_EXIT_UPGRADE */
		}
		return 0;
	}
	signal(SIGUSR1, SIG_DFL);
	nvl_fdstore_ready("test worker");
	if (strcmp(argv[1], "crash3") == 0) {
		int c;

		if (n < 3)
			abort();
		c = accept(lfd, NULL, NULL);
		fprintf(g_state, "%s\n", c >= 0 ? "accepted" : strerror(errno));
		return c >= 0 ? 0 : 8;
	}
	while (!g_term) {
		sigset_t none;

		sigemptyset(&none);
		sigsuspend(&none);
		if (!g_term)
			continue;
	}
	fprintf(g_state, "sigterm\n");
	nvl_fdstore_stopping();
	return 0;
}
