/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Sockets, descriptor passing, accept under descriptor exhaustion, the
 * descriptor limit (sock.h). Stateless except for the reserve descriptors
 * and the exhaustion warning's counters (g_res, under its mutex; the
 * "missing" and "exhausted" hints are read without it).
 */
#include "util/sock.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SOCK_WARN_PERIOD_NS (10ULL * 1000000000ULL)

/* ---- listen and connect ------------------------------------------------ */

int
nvl_sock_listen_tcp(const char *addr, const char *port, int family, int backlog, int *out)
{
	struct addrinfo hints = { .ai_family = family,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *ai = NULL;
	int fd, rc, one = 1;

	if (getaddrinfo(addr, port, &hints, &ai) != 0 || ai == NULL)
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto err_free_ai;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
		rc = -errno;
		goto err_close;
	}
	freeaddrinfo(ai);
	*out = fd;
	return 0;
err_close:
	close(fd);
err_free_ai:
	freeaddrinfo(ai);
	return rc;
}

static int
sock_unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (path == NULL || path[0] == '\0')
		return -EINVAL;
	return nvl_strlcpy(sa->sun_path, path, sizeof(sa->sun_path));
}

int
nvl_sock_unix_live(const char *path, int type)
{
	struct sockaddr_un sa;
	int fd, rc;

	rc = sock_unix_addr(path, &sa);
	if (rc < 0)
		return rc;
	fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		rc = 1;
	else if (errno == EAGAIN || errno == EINPROGRESS || errno == EPROTOTYPE)
		rc = 1; /* a full backlog, or a server of another socket type */
	else if (errno == ECONNREFUSED || errno == ENOENT)
		rc = 0;
	else
		rc = -errno;
	close(fd);
	return rc;
}

int
nvl_sock_listen_unix(const char *path, int type, mode_t mode, int backlog, int *out)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, rc;

	rc = sock_unix_addr(path, &sa);
	if (rc < 0)
		return rc;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		rc = nvl_sock_unix_live(path, type);
		if (rc > 0)
			return -EADDRINUSE;
		if (rc < 0)
			return rc; /* cannot tell: never remove a live server's socket */
		NVL_NOTICELOG("taking over the stale socket %s (nobody listens on it)", path);
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
	}
	fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		goto err_close;
	}
	/* before listen(): until then every connect is refused */
	if ((mode != 0 && chmod(path, mode) < 0) || listen(fd, backlog) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	*out = fd;
	return 0;
err_unlink:
	unlink(path);
err_close:
	close(fd);
	return rc;
}

int
nvl_sock_connect_unix(const char *path, int type, int flags, int *out)
{
	struct sockaddr_un sa;
	int fd, rc;

	rc = sock_unix_addr(path, &sa);
	if (rc < 0)
		return rc;
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | (flags & SOCK_NONBLOCK), 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

int
nvl_sock_connect_tcp(const char *host, const char *port, int flags, int *out)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai, *a;
	int fd = -1, rc = -ECONNREFUSED;

	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -EHOSTUNREACH;
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | (flags & SOCK_NONBLOCK), 0);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 ||
		    ((flags & SOCK_NONBLOCK) && errno == EINPROGRESS))
			break;
		rc = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return rc;
	*out = fd;
	return 0;
}

/* ---- descriptor passing ------------------------------------------------ */

union sock_cmsg {
	char buf[CMSG_SPACE(sizeof(int) * NVL_SOCK_MAX_FDS)];
	struct cmsghdr align;
};

ssize_t
nvl_sock_send_fds(int sock, const struct iovec *iov, int iovcnt, const int *fds, unsigned nfds,
		  int flags)
{
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	union sock_cmsg u;
	ssize_t n;

	if (nfds > NVL_SOCK_MAX_FDS)
		return -EINVAL;
	if (nfds > 0) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

ssize_t
nvl_sock_recv_fds(int sock, struct iovec *iov, int iovcnt, int *fds, unsigned max_fds,
		  unsigned *nfds, int flags, int *msg_flags)
{
	union sock_cmsg u;
	struct msghdr mh;
	struct cmsghdr *cm;
	int extra = 0;
	ssize_t n;

	*nfds = 0;
	for (;;) {
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)iovcnt;
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
		if (n >= 0)
			break;
		if (errno != EINTR)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
	/* the kernel wrote at most sizeof(u.buf) of control data */
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t cnt;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
		    cm->cmsg_len < CMSG_LEN(0))
			continue;
		cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*nfds < max_fds) {
				fds[(*nfds)++] = fd;
			} else {
				close(fd);
				extra = MSG_CTRUNC;
			}
		}
	}
	if (msg_flags)
		*msg_flags = mh.msg_flags | extra;
	return n;
}

/* ---- accept under descriptor exhaustion -------------------------------- */

enum sock_exhaust_kind {
	SOCK_SHED,       /* a pending connection was accepted and closed */
	SOCK_DEFERRED,   /* nothing could be accepted: the caller pauses */
	SOCK_SERVED,     /* a control connection took a reserve descriptor */
};

static struct {
	pthread_mutex_t lock;
	int fds[NVL_SOCK_RESERVE_MAX];
	unsigned want, have;
	unsigned missing;            /* want - have; read without the lock as a hint */
	bool exhausted;              /* since an EMFILE, until an accept works again; hint too */
	bool announced;              /* this episode got its warning line */
	uint64_t last_line_ns;       /* the last line about exhaustion */
	uint64_t shed, deferred;     /* since that line */
	uint64_t ep_shed, ep_deferred; /* this episode */
} g_res = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void
reserve_refill_locked(void)
{
	while (g_res.have < g_res.want) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			break;
		g_res.fds[g_res.have++] = fd;
	}
	__atomic_store_n(&g_res.missing, g_res.want - g_res.have, __ATOMIC_RELAXED);
}

int
nvl_sock_reserve_init(unsigned n)
{
	int rc = 0;

	if (n > NVL_SOCK_RESERVE_MAX)
		return -EINVAL;
	pthread_mutex_lock(&g_res.lock);
	while (g_res.have > n)
		close(g_res.fds[--g_res.have]);
	g_res.want = n;
	reserve_refill_locked();
	if (g_res.have < n)
		rc = -errno;
	pthread_mutex_unlock(&g_res.lock);
	return rc;
}

void
nvl_sock_reserve_fini(void)
{
	nvl_sock_reserve_init(0);
}

static uint64_t
fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	return (uint64_t)rl.rlim_cur;
}

/*
 * Count what running out of descriptors did, and say so: one warning when
 * an episode begins, then at most one line per period with the counts, and
 * one notice when it ends (exhaustion_over). An episode that begins within
 * a period of the last line is only counted (a table that fills and drains
 * over and over must not log each time). Under g_res.lock.
 */
static void
exhaustion_note_locked(const char *what, int err, enum sock_exhaust_kind kind)
{
	uint64_t now = nvl_now_ns();

	if (!g_res.exhausted) {
		__atomic_store_n(&g_res.exhausted, true, __ATOMIC_RELAXED);
		g_res.ep_shed = g_res.ep_deferred = 0;
	}
	g_res.shed += kind == SOCK_SHED;
	g_res.ep_shed += kind == SOCK_SHED;
	g_res.deferred += kind == SOCK_DEFERRED;
	g_res.ep_deferred += kind == SOCK_DEFERRED;
	if (g_res.last_line_ns != 0 && now - g_res.last_line_ns < SOCK_WARN_PERIOD_NS)
		return;
	if (!g_res.announced) {
		NVL_WARNLOG("%s: out of file descriptors (%s; limit %" PRIu64 ", %u reserved): "
			    "new connections are shed until some close; at most one line every "
			    "%llu s about this",
			    what, strerror(err), fd_limit(), g_res.want,
			    SOCK_WARN_PERIOD_NS / 1000000000ULL);
		g_res.announced = true;
	} else {
		NVL_WARNLOG("still out of file descriptors (limit %" PRIu64 "): %" PRIu64
			    " connections shed, %" PRIu64 " accepts deferred in the last %llu s",
			    fd_limit(), g_res.shed, g_res.deferred,
			    (unsigned long long)((now - g_res.last_line_ns) / 1000000000ULL));
	}
	g_res.last_line_ns = now;
	g_res.shed = g_res.deferred = 0;
}

static void
exhaustion_over(void)
{
	pthread_mutex_lock(&g_res.lock);
	if (g_res.exhausted) {
		__atomic_store_n(&g_res.exhausted, false, __ATOMIC_RELAXED);
		if (g_res.announced) {
			NVL_NOTICELOG("file descriptors available again: %" PRIu64 " connections "
				      "were shed and %" PRIu64 " accepts deferred meanwhile",
				      g_res.ep_shed, g_res.ep_deferred);
			g_res.announced = false;
			g_res.last_line_ns = nvl_now_ns();
			g_res.shed = g_res.deferred = 0;
		}
	}
	pthread_mutex_unlock(&g_res.lock);
}

/* accept() said EMFILE/ENFILE: use a reserve descriptor (see sock.h). */
static int
accept_exhausted(int lfd, unsigned flags, const char *what, int err, int *out)
{
	int fd, e, rc;

	pthread_mutex_lock(&g_res.lock);
	if (g_res.have == 0) {
		exhaustion_note_locked(what, err, SOCK_DEFERRED);
		pthread_mutex_unlock(&g_res.lock);
		return -EMFILE;
	}
	close(g_res.fds[--g_res.have]);
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	e = errno;
	if (fd >= 0 && (flags & NVL_SOCK_ACCEPT_CONTROL)) {
		/* the reserve slot now serves the control client: refilled once free */
		__atomic_store_n(&g_res.missing, g_res.want - g_res.have, __ATOMIC_RELAXED);
		exhaustion_note_locked(what, err, SOCK_SERVED);
		pthread_mutex_unlock(&g_res.lock);
		*out = fd;
		return 0;
	}
	if (fd >= 0) {
		close(fd);
		exhaustion_note_locked(what, err, SOCK_SHED);
		rc = -ECONNABORTED;
	} else if (e == EAGAIN || e == EWOULDBLOCK) {
		rc = -EAGAIN;
	} else if (e == EMFILE || e == ENFILE) {
		/* another thread took the slot meanwhile */
		exhaustion_note_locked(what, e, SOCK_DEFERRED);
		rc = -EMFILE;
	} else {
		rc = -ECONNABORTED;
	}
	reserve_refill_locked();
	pthread_mutex_unlock(&g_res.lock);
	return rc;
}

int
nvl_sock_accept(int lfd, unsigned flags, const char *what, int *out)
{
	int fd;

	if (nvl_unlikely(__atomic_load_n(&g_res.missing, __ATOMIC_RELAXED) != 0)) {
		/* refill before accepting: a freed slot goes to the reserve first */
		pthread_mutex_lock(&g_res.lock);
		reserve_refill_locked();
		pthread_mutex_unlock(&g_res.lock);
	}
	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			if (nvl_unlikely(__atomic_load_n(&g_res.exhausted, __ATOMIC_RELAXED)))
				exhaustion_over();
			*out = fd;
			return 0;
		}
		switch (errno) {
		case EINTR:
			continue;
		case EAGAIN:
#if EAGAIN != EWOULDBLOCK
		case EWOULDBLOCK:
#endif
			return -EAGAIN;
		case EMFILE:
		case ENFILE:
			return accept_exhausted(lfd, flags, what, errno, out);
		case ENOBUFS:
		case ENOMEM:
			return -ENOMEM;
		/* accept(2): errors of the pending connection; try the next one */
		case ECONNABORTED:
		case EPROTO:
		case EPERM:
		case ENETDOWN:
		case ENOPROTOOPT:
		case EHOSTDOWN:
		case ENONET:
		case EHOSTUNREACH:
		case EOPNOTSUPP:
		case ENETUNREACH:
			return -ECONNABORTED;
		default:
			return -errno;
		}
	}
}

int
nvl_fd_limit_raise(uint64_t *limit)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur != rl.rlim_max) {
		struct rlimit want = { .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };

		if (want.rlim_cur == RLIM_INFINITY) {
			/* the kernel caps descriptors at fs.nr_open */
			unsigned long long nr_open = 1048576;
			FILE *f = fopen("/proc/sys/fs/nr_open", "re");

			if (f) {
				if (fscanf(f, "%llu", &nr_open) != 1)
					nr_open = 1048576;
				fclose(f);
			}
			want.rlim_cur = (rlim_t)nr_open;
		}
		if (setrlimit(RLIMIT_NOFILE, &want) < 0)
			return -errno;
		rl = want;
	}
	if (limit)
		*limit = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
	return 0;
}
