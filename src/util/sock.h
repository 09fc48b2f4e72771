/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Sockets and descriptor passing: the one place in the tree that opens
 * listening and connecting sockets, tells a stale Unix socket from a live
 * one, sends and receives SCM_RIGHTS descriptors, and accepts connections in
 * a way that survives a full file descriptor table (DESIGN.md section 9:
 * every resource a peer can make the daemon hold has a budget).
 *
 * Every socket made here is close-on-exec; listening sockets are
 * non-blocking. Functions return 0 / a count, or -errno; none logs except
 * where it says so.
 *
 * Threading: every function may be called from any thread. The reserve
 * descriptors of nvl_sock_accept() and its rate-limited warning are
 * process-wide, under a mutex taken only when descriptors run out or the
 * reserve needs refilling.
 */
#ifndef NVL_SOCK_H
#define NVL_SOCK_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/** Most descriptors one message may carry through nvl_sock_recv_fds(). */
#define NVL_SOCK_MAX_FDS 16
/** Most reserve descriptors nvl_sock_reserve_init() keeps. */
#define NVL_SOCK_RESERVE_MAX 8

/* ---- listen and connect ------------------------------------------------ */

/**
 * Listen on a numeric TCP address (no name resolution): SO_REUSEADDR,
 * IPV6_V6ONLY for IPv6 addresses, non-blocking.
 * \param family AF_INET, AF_INET6 or AF_UNSPEC (whatever `addr` is)
 * \return 0 with the socket in *out; -EINVAL (not a numeric address or port
 *         of that family); -EADDRINUSE; -EADDRNOTAVAIL; -EACCES; -errno of
 *         socket/bind/listen.
 */
int nvl_sock_listen_tcp(const char *addr, const char *port, int family, int backlog, int *out);

/**
 * Listen on a Unix socket at `path`, non-blocking. A socket file already at
 * `path` is taken over only when nobody listens on it any more (a daemon
 * that died; logged as a notice); a live one is never touched. The file
 * gets `mode` (0: what the umask gives) before listen(), so no client can
 * connect while it is still wider open.
 * \param type SOCK_STREAM or SOCK_SEQPACKET
 * \return 0 with the socket in *out; -ENAMETOOLONG; -EINVAL (empty path);
 *         -EEXIST (something else than a socket is there); -EADDRINUSE (a
 *         live server listens there); the -errno of nvl_sock_unix_live()
 *         when that cannot be told (then the file is left alone); -errno of
 *         socket/bind/chmod/listen.
 */
int nvl_sock_listen_unix(const char *path, int type, mode_t mode, int backlog, int *out);

/**
 * Does a server listen on the Unix socket at `path`? A non-blocking probe
 * connection of `type`: a server whose backlog is full, or that listens with
 * another socket type, counts as live.
 * \return 1 live; 0 nobody listens (refused, or no such file); -errno when
 *         it cannot be told (-EACCES, -ENAMETOOLONG, ...).
 */
int nvl_sock_unix_live(const char *path, int type);

/**
 * Connect to the Unix socket at `path`.
 * \param type SOCK_STREAM or SOCK_SEQPACKET
 * \param flags 0 or SOCK_NONBLOCK (then a full backlog gives -EAGAIN)
 * \return 0 with the socket in *out; -ENAMETOOLONG; -ENOENT; -ECONNREFUSED;
 *         -EACCES; -EAGAIN; -errno of socket/connect.
 */
int nvl_sock_connect_unix(const char *path, int type, int flags, int *out);

/**
 * Connect to a TCP host (a name or a numeric address, tried in the order
 * getaddrinfo gives) and port (numeric).
 * \param flags 0 or SOCK_NONBLOCK (then a connection in progress counts as
 *        made: wait for the socket to be writable and read SO_ERROR)
 * \return 0 with the socket in *out; -EHOSTUNREACH (the name does not
 *         resolve); the -errno of the last address tried (-ECONNREFUSED,
 *         -ETIMEDOUT, -ENETUNREACH, ...).
 */
int nvl_sock_connect_tcp(const char *host, const char *port, int flags, int *out);

/* ---- descriptor passing (SCM_RIGHTS) ----------------------------------- */

/**
 * Send iov with nfds descriptors attached (SCM_RIGHTS; nfds may be 0).
 * MSG_NOSIGNAL is always added; EINTR is retried.
 * \param flags more send flags (MSG_DONTWAIT, ...)
 * \return bytes sent (a stream socket may take less than everything: the
 *         descriptors went with the first byte); -EINVAL (more than
 *         NVL_SOCK_MAX_FDS descriptors); -EAGAIN; -errno of sendmsg.
 */
ssize_t nvl_sock_send_fds(int sock, const struct iovec *iov, int iovcnt, const int *fds,
			  unsigned nfds, int flags);

/**
 * Receive into iov, collecting descriptors that come along (close-on-exec):
 * the first max_fds go to fds[0..*nfds), any others are closed at once and
 * MSG_CTRUNC is reported, as when the kernel drops descriptors that do not
 * fit. EINTR is retried. A descriptor can come with a 0-byte read: check
 * *nfds before treating 0 as the end of the stream.
 * \param flags receive flags (MSG_DONTWAIT, MSG_WAITALL, ...)
 * \param msg_flags if not NULL: the message's flags (MSG_TRUNC, MSG_CTRUNC)
 * \return bytes received (0: end of stream); -EAGAIN; -errno of recvmsg
 *         (then *nfds is 0).
 */
ssize_t nvl_sock_recv_fds(int sock, struct iovec *iov, int iovcnt, int *fds, unsigned max_fds,
			  unsigned *nfds, int flags, int *msg_flags);

/* ---- accept and the descriptor budget ---------------------------------- */

/** nvl_sock_accept() flag: the control plane (RPC) may take a reserve descriptor. */
#define NVL_SOCK_ACCEPT_CONTROL 1u

/**
 * Accept one connection (non-blocking, close-on-exec) without spinning on
 * a full descriptor table. When accept() fails with EMFILE/ENFILE:
 *  - with NVL_SOCK_ACCEPT_CONTROL, a reserve descriptor is given up so that
 *    the connection is accepted (the control plane keeps answering); the
 *    reserve is refilled by a later call once descriptors are free again;
 *  - otherwise a reserve descriptor is closed just long enough to accept the
 *    pending connection and close it (shed: its peer sees the connection
 *    closed, and a level-triggered listener is readable no more), then
 *    reopened.
 * Without a reserve left nothing can be accepted: -EMFILE, and the caller
 * stops watching the listener for a while (nvl_acceptor does). Running out
 * is logged as one warning, then at most one line every 10 s with what was
 * shed and deferred since, and one notice when accepting works again.
 * \param what names the listener in those lines
 * \return 0 with the connection in *out; -EAGAIN (nothing pending);
 *         -ECONNABORTED (a pending connection went away or was shed: call
 *         again); -EMFILE (out of descriptors, none could be freed: pause);
 *         -ENOMEM (the kernel is out of memory: pause); -errno of accept4
 *         for errors of the listener itself (-EBADF, -EINVAL, ...).
 */
int nvl_sock_accept(int lfd, unsigned flags, const char *what, int *out);

/**
 * Keep n descriptors (of /dev/null) in reserve for nvl_sock_accept() (the
 * daemon calls it once at start; without it nothing is reserved).
 * \return 0; -EINVAL (n above NVL_SOCK_RESERVE_MAX); -errno of open.
 */
int nvl_sock_reserve_init(unsigned n);
/** Close the reserve descriptors. */
void nvl_sock_reserve_fini(void);

/**
 * Raise this process's soft RLIMIT_NOFILE to its hard limit (an unlimited
 * hard limit: to fs.nr_open).
 * \return 0 with the limit now in force in *limit (may be NULL); -errno of
 *         getrlimit/setrlimit (the limit is then unchanged).
 */
int nvl_fd_limit_raise(uint64_t *limit);

#endif
