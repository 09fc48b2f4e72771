/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the shm transport's control channel and queues
 * (src/transport/shm.c, shm_queue.c), driven the way a hostile local client can:
 *
 * Input: a sequence of records [type][len lo][len hi][payload]:
 *   type % 6 == 0  send payload as one SOCK_SEQPACKET message
 *               1  the same with a file descriptor attached (must be refused)
 *               2  SQ doorbell: [sq#][tail u32][SQEs...] written into the ring
 *                  of an SQ the target handed out, then the tail published
 *               3  CQ head doorbell: [cq#][head u32]
 *               4  window write: [offset u32][bytes] into the data window
 *               5  region attack: [region#][op][arg u32] on the descriptor of
 *                  a region the target handed out (window, SQ or CQ):
 *                  op % 4 == 0 ftruncate to arg, 1 punch a hole at arg,
 *                  2 close our descriptor (the mapping stays), 3 rewrite the
 *                  region's page 0 with arg's bytes
 * After each record shm_conn_event() runs on the connection, then a few
 * rounds of the single reactor (messages, pollers, timers), then the client end is
 * drained (descriptors received are mapped when they are queue regions or
 * the window, and kept for type 5). At the end the connection is torn down
 * and must be freed within a bounded number of rounds, leaving no region
 * (memfd) and no descriptor behind; LeakSanitizer checks memory per input.
 * A region that could be shrunk would make the target fault here (SIGBUS):
 * the seals are what type 5 checks.
 *
 * Setup (once): one reactor owned by this thread, a subsystem allowing any
 * host with an SHM listener address and one RAM namespace.
 *
 * Functions (docs/functions.md): when the first byte has bit 7 set, the
 * connection comes in on a function's endpoint instead (a second listener of
 * the subsystem, with function hooks standing in for src/function/fn_rpc.c):
 * OPEN_FN opens it (controller 7, two interrupt vectors owned by the
 * "function", a third input bit makes it busy, a fourth suspended), CONNECT
 * is refused there; on the plain listener OPEN_FN is refused.
 */
#include "reactor/reactor.c"
#include "transport/shm.c"
#include "transport/shm_queue.c"
#include "transport/shm_keep.c"
#include "nvmf/nvmf_internal.h"

#include <dirent.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_LISTENER "/nonexistent/nvlend-fuzz.sock"
#define FZ_FN_LISTENER "/nonexistent/nvlend-fuzz-fn.nvme"
#define FZ_MAX_MAPS 16

struct fz_map {
	void *p;
	size_t size;
	uint32_t magic;
	int fd;                 /* our descriptor of the region, -1 once closed */
};

static struct nvl_nvmf_ns g_tns;
static struct fz_map g_maps[FZ_MAX_MAPS];
static unsigned g_nmaps;
static struct fz_map g_window;
static int g_devnull = -1;
static unsigned g_base_fds;

static void __attribute__((noreturn)) fz_fail(const char *why);

/* ---- a function standing in for src/function/fn_rpc.c ---- */
static int g_fn_vec[2] = { -1, -1 };
static struct shm_ctrlr *g_fn_consumer;
static bool g_fn_busy, g_fn_suspended;
static int g_fn_token;

static bool
fz_fn_is_endpoint(const char *traddr)
{
	return strcmp(traddr, FZ_FN_LISTENER) == 0;
}

static int
fz_fn_open(const char *traddr, struct shm_ctrlr *sc, struct shm_fn_open *o, char *why,
	   size_t len)
{
	if (!fz_fn_is_endpoint(traddr))
		return -ENOENT;
	if (g_fn_busy || g_fn_consumer) {
		snprintf(why, len, "function busy");
		return -EBUSY;
	}
	nvl_strlcpy(o->subnqn, "nqn.2024-01.io.nvlend:fuzz", sizeof(o->subnqn));
	nvl_strlcpy(o->hostnqn, "nqn.2014-08.org.nvlend:fn:pf0vf1", sizeof(o->hostnqn));
	o->cntlid = 7;
	o->max_io_queues = 2;
	o->mdts = 3;
	o->suspended = g_fn_suspended;
	o->nvectors = 2;
	o->vectors[0] = g_fn_vec[0];
	o->vectors[1] = g_fn_vec[1];
	o->fn = &g_fn_token;
	g_fn_consumer = sc;
	return 0;
}

static void
fz_fn_closed(void *fn, struct shm_ctrlr *sc)
{
	if (fn != &g_fn_token || sc != g_fn_consumer)
		fz_fail("closed() for a consumer that was not opened");
	g_fn_consumer = NULL;
}

static const struct shm_fn_ops g_fz_fn_ops = {
	.is_endpoint = fz_fn_is_endpoint,
	.open = fz_fn_open,
	.closed = fz_fn_closed,
};

static void __attribute__((noreturn))
fz_fail(const char *why)
{
	fprintf(stderr, "fuzz_shm_ctrl: %s\n", why);
	if (getenv("NVL_FUZZ_VERBOSE"))
		(void)!system("ls -l /proc/$PPID/fd >&2"); /* $PPID: us */
	__builtin_trap();
}

static unsigned
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	unsigned n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Region memfds still open in this process (ours are closed by then). */
static unsigned
count_regions(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	unsigned n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char path[64], link[128];
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		n += strncmp(link, "/memfd:nvlend-", 14) == 0;
	}
	closedir(d);
	return n;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct nvl_reactor_opts ro;
	struct nvl_subsys_opts so = { .nqn = "nqn.2024-01.io.nvlend:fuzz", .allow_any_host = true };
	struct nvl_bdev_ram_opts bo = { .name = "fz_shm_ns", .num_blocks = 2048,
					.block_size = 512 };
	struct nvmf_sub_listener *l;
	struct nvl_subsys *s;
	struct nvl_bdev *b;
	struct nvl_bdev_desc *desc;

	(void)argc;
	(void)argv;
	/* NVL_FUZZ_VERBOSE=1 shows the target's log while replaying an input */
	nvl_log_set_level(getenv("NVL_FUZZ_VERBOSE") ? 1 : 0);
	if (getenv("NVL_FUZZ_VERBOSE") == NULL)
		nvl_log_set_fd(-1, false);
	nvl_reactor_opts_default(&ro);
	ro.spin_us = 0;
	ro.uring_entries = 8;
	g_shm_window_inline = true; /* windows made at once: every input runs to its end */
	if (nvl_reactors_init(&ro) < 0 || nvl_subsys_create(&so, &s) < 0)
		abort();
	l = calloc(1, sizeof(*l));
	nvl_strlcpy(l->addr.trtype, "SHM", sizeof(l->addr.trtype));
	nvl_strlcpy(l->addr.traddr, FZ_LISTENER, sizeof(l->addr.traddr));
	TAILQ_INSERT_TAIL(&s->listeners, l, link);
	l = calloc(1, sizeof(*l));
	nvl_strlcpy(l->addr.trtype, "SHM", sizeof(l->addr.trtype));
	nvl_strlcpy(l->addr.traddr, FZ_FN_LISTENER, sizeof(l->addr.traddr));
	TAILQ_INSERT_TAIL(&s->listeners, l, link);
	g_fn_vec[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	g_fn_vec[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	shm_fn_register(&g_fz_fn_ops);
	if (nvl_bdev_ram_create(&bo, &b) < 0 || nvl_bdev_open(bo.name, true, "fuzz", &desc) < 0 ||
	    nvl_nvme_ns_init(&g_tns.nvme, 1, desc) < 0)
		abort();
	g_tns.subsys = s;
	g_tns.auto_visible = true;
	g_tns.nvme.notify = nvmf_ns_notify;
	g_tns.nvme.owner = &g_tns;
	s->ns[0] = &g_tns;
	/* small bounds keep each input cheap: a 2 MiB window, short queues */
	g_shm_opts.max_window = 2ULL << 20;
	g_shm_opts.max_queue_depth = 64;
	g_shm_opts.max_io_queues = 4;
	g_devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return 0;
}

/* One iteration of the reactor loop, without sleeping. */
static void
run_rounds(int n)
{
	struct nvl_reactor *r = g_reactors[0];

	for (int i = 0; i < n; i++) {
		reactor_poll_once(r);
		reactor_run_msgs(r);
		reactor_run_timers(r, nvl_now_ns());
		reactor_reap_fdhs(r);
	}
}

static bool
conn_alive(const struct shm_ctrlr *sc)
{
	struct shm_ctrlr *it;

	TAILQ_FOREACH(it, &g_shm_conns, link)
		if (it == sc)
			return true;
	return false;
}

/* Map a region the target sent; keep its descriptor (ownership taken). */
static void
keep_mapping(int fd, bool window)
{
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0 || st.st_size < 4096 || st.st_size > (8 << 20))
		goto out_close;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto out_close;
	if (window && g_window.p == NULL) {
		g_window = (struct fz_map){ .p = p, .size = (size_t)st.st_size, .fd = fd };
		return;
	}
	if (g_nmaps == FZ_MAX_MAPS) {
		munmap(p, (size_t)st.st_size);
		goto out_close;
	}
	g_maps[g_nmaps++] = (struct fz_map){ .p = p, .size = (size_t)st.st_size,
					     .magic = *(uint32_t *)p, .fd = fd };
	return;
out_close:
	close(fd);
}

static void
unmap_all(void)
{
	for (unsigned i = 0; i < g_nmaps; i++) {
		munmap(g_maps[i].p, g_maps[i].size);
		if (g_maps[i].fd >= 0)
			close(g_maps[i].fd);
	}
	g_nmaps = 0;
	if (g_window.p) {
		munmap(g_window.p, g_window.size);
		if (g_window.fd >= 0)
			close(g_window.fd);
	}
	g_window.p = NULL;
	g_window.fd = -1;
}

/* Read everything the target sent; map queue regions and the window. */
static void
drain(int fd)
{
	for (;;) {
		uint8_t buf[NVL_SHM_MAX_MSG];
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		int fds[8];
		unsigned nfds;
		ssize_t n = nvl_sock_recv_fds(fd, &iov, 1, fds, 8, &nfds, MSG_DONTWAIT, NULL);

		if (n <= 0)
			return;
		for (unsigned i = 0; i < nfds; i++)
			keep_mapping(fds[i],
				     ((struct nvl_shm_msg_hdr *)buf)->type == NVL_SHM_MSG_CONNECT_RESP);
	}
}

static struct fz_map *
nth_map(uint32_t magic, uint8_t idx)
{
	unsigned k = 0, want;

	for (unsigned i = 0; i < g_nmaps; i++)
		k += g_maps[i].magic == magic;
	if (k == 0)
		return NULL;
	want = idx % k;
	for (unsigned i = 0; i < g_nmaps; i++)
		if (g_maps[i].magic == magic && want-- == 0)
			return &g_maps[i];
	return NULL;
}

static void
send_msg(int fd, const uint8_t *p, size_t len, bool with_fd)
{
	struct iovec iov = { .iov_base = (void *)p, .iov_len = len };

	(void)nvl_sock_send_fds(fd, &iov, 1, &g_devnull, with_fd ? 1 : 0, MSG_DONTWAIT);
}

static void
sq_doorbell(const uint8_t *p, size_t len)
{
	struct fz_map *m;
	struct nvl_shm_sq_page *pg;
	uint32_t tail;
	size_t room;

	if (len < 5 || (m = nth_map(NVL_SHM_SQ_MAGIC, p[0])) == NULL)
		return;
	pg = m->p;
	memcpy(&tail, p + 1, 4);
	room = m->size - NVL_SHM_RING_OFFSET;
	memcpy((uint8_t *)m->p + NVL_SHM_RING_OFFSET, p + 5, NVL_MIN(len - 5, room));
	nvl_smp_store_release(&pg->tail, tail);
}

static void
cq_doorbell(const uint8_t *p, size_t len)
{
	struct fz_map *m;
	uint32_t head;

	if (len < 5 || (m = nth_map(NVL_SHM_CQ_MAGIC, p[0])) == NULL)
		return;
	memcpy(&head, p + 1, 4);
	nvl_smp_store_release(&((struct nvl_shm_cq_page *)m->p)->head, head);
}

static void
window_write(const uint8_t *p, size_t len)
{
	uint32_t off;

	if (len < 4 || g_window.p == NULL)
		return;
	memcpy(&off, p, 4);
	off %= (uint32_t)g_window.size;
	memcpy((uint8_t *)g_window.p + off, p + 4, NVL_MIN(len - 4, g_window.size - off));
}

/*
 * What a hostile host can do to a region it was given. ftruncate must fail
 * (sealed); if it did not, the target's next access would fault and crash
 * this process, which is the finding. We only touch our own mapping within
 * its original size, so our accesses stay valid either way.
 */
static void
region_attack(const uint8_t *p, size_t len)
{
	struct fz_map *m;
	uint32_t arg;
	unsigned n = g_nmaps + (g_window.p != NULL);

	if (len < 6 || n == 0)
		return;
	m = p[0] % n == g_nmaps ? &g_window : &g_maps[p[0] % n];
	memcpy(&arg, p + 2, 4);
	switch (p[1] % 4) {
	case 0:
		if (m->fd >= 0 && ftruncate(m->fd, (off_t)(arg % (m->size * 2))) == 0)
			fz_fail("a region could be resized by its host (no seals)");
		break;
	case 1:
		if (m->fd >= 0)
			(void)fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)(arg % m->size) & ~4095, 4096);
		break;
	case 2:
		if (m->fd >= 0)
			close(m->fd);
		m->fd = -1;
		break;
	default:
		memset(m->p, (int)(arg & 0xff), NVL_MIN((size_t)(arg >> 8) % 4096 + 1, m->size));
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shm_ctrlr *sc;
	int sv[2];
	size_t off = 0;
	int rounds;
	bool fn = size > 0 && (data[0] & 0x80);

	/* per input: libFuzzer's symbolizer opens pipes between inputs */
	g_base_fds = count_fds();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	/* what shm_accept() does for a new client */
	sc = calloc(1, sizeof(*sc));
	sc->fd = sv[0];
	nvl_strlcpy(sc->listener.trtype, "SHM", sizeof(sc->listener.trtype));
	nvl_strlcpy(sc->listener.traddr, fn ? FZ_FN_LISTENER : FZ_LISTENER,
		    sizeof(sc->listener.traddr));
	g_fn_busy = size > 0 && (data[0] & 0x40);
	g_fn_suspended = size > 0 && (data[0] & 0x20);
	sc->window.fd = -1;
	for (unsigned v = 0; v < SHM_MAX_VECTORS; v++)
		sc->vectors[v] = -1;
	sc->fdh = nvl_fd_add(sc->fd, EPOLLIN, shm_conn_event, sc);
	sc->connect_timer =
		nvl_timer_create(shm_conn_connect_timeout, sc, SHM_CONNECT_TIMEOUT_US, 0);
	if (sc->fdh == NULL || sc->connect_timer == NULL)
		abort();
	TAILQ_INSERT_TAIL(&g_shm_conns, sc, link);
	g_shm_nconns++;

	while (off + 3 <= size && conn_alive(sc) && sc->state != C_CLOSING) {
		uint8_t type = data[off] % 6;
		size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
		const uint8_t *p = data + off + 3;

		off += 3;
		len = NVL_MIN(len, size - off);
		off += len;
		switch (type) {
		case 0:
		case 1:
			send_msg(sv[1], p, len, type == 1);
			break;
		case 2:
			sq_doorbell(p, len);
			break;
		case 3:
			cq_doorbell(p, len);
			break;
		case 5:
			region_attack(p, len);
			break;
		default:
			window_write(p, len);
			break;
		}
		shm_conn_event(sc, EPOLLIN);
		run_rounds(4);
		drain(sv[1]);
	}
	/* the client goes away; everything must be released */
	if (conn_alive(sc))
		shm_conn_teardown(sc, "fuzz input done");
	for (rounds = 0; conn_alive(sc) && rounds < 64; rounds++)
		run_rounds(1);
	if (conn_alive(sc))
		fz_fail("a connection that never finishes closing");
	run_rounds(2);
	drain(sv[1]);
	close(sv[1]);
	unmap_all();
	if (!TAILQ_EMPTY(&g_shm_conns) || g_shm_nconns != 0)
		fz_fail("connection list not empty");
	if (g_fn_consumer)
		fz_fail("a function's consumer never closed");
	if (count_regions() != 0)
		fz_fail("a region memfd left open");
	if (count_fds() != g_base_fds)
		fz_fail("a descriptor left open");
	return 0;
}
