/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the NBD server's request path (src/nbd/conn.c and
 * the handshake and listener code around it, included whole): a real
 * export of a RAM bdev, a real connection accepted from a Unix listener by
 * nbd_srv_accept(), a scripted client handshake (fixed newstyle, optional
 * structured replies, NBD_OPT_GO), and then the fuzz input as the client's
 * transmission-phase byte stream: request headers, WRITE payloads, bad
 * magic, DISC, requests past the end, FUA/NO_HOLE/FAST_ZERO flags, more
 * requests than slots, half-sent payloads. tests/fuzz/nbd fuzzes the codec
 * alone; this one fuzzes what the server does with what the codec lets by.
 *
 * The reactor is driven by hand (nvl_reactor_poll_once()): after each chunk of
 * input it runs a few rounds, and the client end reads what the server
 * sent. Input: byte 0 is the mode (bit 0 structured replies, bit 1 the
 * read-only export, bits 2-4 the chunk size of the stream, bit 5 the client
 * stops reading its socket (replies pile up), bit 6 the client half-closes
 * its sending side at the end instead of closing, bit 7 with bit 0 the client
 * selects base:allocation (NBD_OPT_SET_META_CONTEXT) so BLOCK_STATUS is
 * served); the rest is the stream.
 *
 * Checks: every reply the server sends starts with a reply magic of the
 * kind negotiated and is framed (simple replies: 16 bytes, plus the data
 * of a READ; structured: 20-byte chunk headers with their lengths, a
 * BLOCK_STATUS chunk a context id and whole descriptors); after
 * the client closes, the connection is closed and freed within a bounded
 * number of rounds, the export counts no connection, no descriptor is left
 * open, and LeakSanitizer finds nothing.
 */
#include "nbd/listen.c"

#include <dirent.h>
#include <endian.h>
#include <sys/un.h>

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int g_lfd = -1;
static char g_path[108];
static unsigned g_base_fds;

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

static void
cleanup(void)
{
	unlink(g_path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct nvl_reactor_opts ro;
	struct nvl_bdev_ram_opts bo = { .name = "fz_nbd_rw", .num_blocks = 8192,
					.block_size = 512 };
	struct nvl_bdev_ram_opts bo2 = { .name = "fz_nbd_ro", .num_blocks = 64,
					 .block_size = 4096 };
	struct nbd_export_opts e1 = { .name = "rw", .bdev = "fz_nbd_rw" };
	struct nbd_export_opts e2 = { .name = "ro", .bdev = "fz_nbd_ro", .read_only = true };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct nvl_bdev *b;
	char err[256];

	(void)argc;
	(void)argv;
	nvl_log_set_level(getenv("NVL_FUZZ_VERBOSE") ? 1 : 0);
	if (getenv("NVL_FUZZ_VERBOSE") == NULL)
		nvl_log_set_fd(-1, false);
	nvl_reactor_opts_default(&ro);
	ro.spin_us = 0;
	ro.uring_entries = 8;
	if (nvl_reactors_init(&ro) < 0 || nvl_bdev_ram_create(&bo, &b) < 0 ||
	    nvl_bdev_ram_create(&bo2, &b) < 0 || nbd_export_add(&e1, err, sizeof(err)) < 0 ||
	    nbd_export_add(&e2, err, sizeof(err)) < 0)
		abort();
	g_nbd_srv.max_conns = 4;
	snprintf(g_path, sizeof(g_path), "/tmp/nvl-fuzz-nbd-%d.sock", (int)getpid());
	nvl_strlcpy(sa.sun_path, g_path, sizeof(sa.sun_path));
	unlink(g_path);
	g_lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (g_lfd < 0 || bind(g_lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(g_lfd, 8) < 0)
		abort();
	atexit(cleanup);
	return 0;
}

/* Loop iterations of the one reactor (pollers, io_uring, messages, timers, ready fds). */
static void
run_rounds(int n)
{
	for (int i = 0; i < n; i++)
		nvl_reactor_poll_once();
}

/* ---- the client side ------------------------------------------------------------ */

struct fz_client {
	int fd;
	bool structured;
	bool hs_done;
	/* replies parsed so far */
	uint8_t buf[4096];
	size_t have;
	uint64_t skip;          /* payload bytes of the reply being read */
	bool lost;              /* simple replies: framing not followed any more */
	uint64_t total;
};

static void
put_be32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

static void
put_be64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static uint32_t
get_be32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

static size_t
opt(uint8_t *out, uint32_t o, const void *data, uint32_t len)
{
	put_be64(out, NVL_NBD_IHAVEOPT);
	put_be32(out + 8, o);
	put_be32(out + 12, len);
	if (len)
		memcpy(out + 16, data, len);
	return 16 + len;
}

static void
send_some(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n <= 0)
			return; /* full: the server reads and we drop the rest, as a reset would */
		p += n;
		len -= (size_t)n;
	}
}

/* The handshake replies: skip them up to the end of the GO's NBD_REP_ACK. */
static void
parse_handshake(struct fz_client *cl)
{
	size_t off = 0;

	/* server greeting: NBDMAGIC, IHAVEOPT, 16-bit flags */
	if (cl->have < 18)
		return;
	off = 18;
	while (cl->have - off >= 20) {
		uint32_t type = get_be32(cl->buf + off + 12), len = get_be32(cl->buf + off + 16);
		uint32_t o = get_be32(cl->buf + off + 8);

		CHECK(get_be64(cl->buf + off) == NVL_NBD_OPT_REPLY_MAGIC);
		if (cl->have - off - 20 < len)
			return;
		off += 20 + len;
		if (o == NVL_NBD_OPT_GO && (type == NVL_NBD_REP_ACK || (type & NVL_NBD_REP_FLAG_ERROR))) {
			cl->hs_done = true;
			memmove(cl->buf, cl->buf + off, cl->have - off);
			cl->have -= off;
			return;
		}
	}
}

/* Transmission replies: framing only (the handles are the fuzzer's). */
static void
parse_replies(struct fz_client *cl)
{
	size_t off = 0;

	for (;;) {
		if (cl->skip) {
			uint64_t k = NVL_MIN(cl->skip, (uint64_t)(cl->have - off));

			cl->skip -= k;
			off += k;
			if (cl->skip)
				break;
		}
		if (cl->have - off < 4)
			break;
		if (get_be32(cl->buf + off) == NVL_NBD_SIMPLE_REPLY_MAGIC) {
			/* structured: only non-READ replies may be simple, 16 bytes each;
			 * simple mode: a READ's data follows, which only its request tells,
			 * so the harness stops following the framing there */
			if (!cl->structured) {
				cl->lost = true;
				off = cl->have;
				break;
			}
			if (cl->have - off < 16)
				break;
			off += 16;
			continue;
		}
		CHECK(cl->structured);
		CHECK(get_be32(cl->buf + off) == NVL_NBD_STRUCTURED_REPLY_MAGIC);
		if (cl->have - off < 20)
			break;
		cl->skip = get_be32(cl->buf + off + 16);
		if ((get_be32(cl->buf + off + 4) & 0xffff) == NVL_NBD_REPLY_TYPE_BLOCK_STATUS)
			CHECK(cl->skip >= 4 + 8 && (cl->skip - 4) % 8 == 0 &&
			      cl->skip <= 4 + 8 * NBD_BS_MAX_EXTENTS);
		CHECK(cl->skip <= NBD_MAX_PAYLOAD + 64);
		off += 20;
	}
	memmove(cl->buf, cl->buf + off, cl->have - off);
	cl->have -= off;
}

static void
client_read(struct fz_client *cl)
{
	for (;;) {
		ssize_t n = recv(cl->fd, cl->buf + cl->have, sizeof(cl->buf) - cl->have, MSG_DONTWAIT);

		if (n <= 0)
			return;
		cl->have += (size_t)n;
		cl->total += (uint64_t)n;
		if (!cl->hs_done)
			parse_handshake(cl);
		if (cl->hs_done && !cl->lost)
			parse_replies(cl);
		if (cl->lost)
			cl->have = 0;
		if (cl->have == sizeof(cl->buf)) {
			/* a handshake reply larger than our buffer: not something we asked for */
			CHECK(cl->hs_done);
		}
	}
}

static struct nbd_conn *
the_conn(void)
{
	return TAILQ_FIRST(&g_nbd_srv.conns);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned chunks[8] = { 0, 1, 7, 28, 29, 100, 4096, 65536 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fz_client cl = { .fd = -1 };
	uint8_t hs[256], flags[4];
	const char *exp;
	size_t n = 0, off = 1, chunk;
	uint8_t mode;
	int rounds;

	if (size < 1)
		return 0;
	g_base_fds = count_fds();
	mode = data[0];
	cl.structured = mode & 1;
	exp = (mode & 2) ? "ro" : "rw";
	chunk = chunks[(mode >> 2) & 7];
	cl.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	nvl_strlcpy(sa.sun_path, g_path, sizeof(sa.sun_path));
	if (cl.fd < 0 || connect(cl.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	nbd_srv_accept(g_lfd, false);
	CHECK(the_conn() != NULL);

	/* client flags, [STRUCTURED_REPLY], GO {name, no info requests} */
	put_be32(flags, NVL_NBD_FLAG_C_FIXED_NEWSTYLE | NVL_NBD_FLAG_C_NO_ZEROES);
	memcpy(hs, flags, 4);
	n = 4;
	if (cl.structured)
		n += opt(hs + n, NVL_NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	if (cl.structured && (mode & 0x80)) {
		static const char q[] = NVL_NBD_META_BASE_ALLOCATION;
		uint8_t m[64];
		uint32_t nl = (uint32_t)strlen(exp), k = 0;

		put_be32(m, nl);
		memcpy(m + 4, exp, nl);
		k = 4 + nl;
		put_be32(m + k, 1);
		put_be32(m + k + 4, sizeof(q) - 1);
		memcpy(m + k + 8, q, sizeof(q) - 1);
		k += 8 + sizeof(q) - 1;
		n += opt(hs + n, NVL_NBD_OPT_SET_META_CONTEXT, m, k);
	}
	{
		uint8_t go[64];
		uint32_t nl = (uint32_t)strlen(exp);

		put_be32(go, nl);
		memcpy(go + 4, exp, nl);
		go[4 + nl] = 0;
		go[5 + nl] = 0; /* no information requests */
		n += opt(hs + n, NVL_NBD_OPT_GO, go, 6 + nl);
	}
	send_some(cl.fd, hs, n);
	for (rounds = 0; rounds < 16 && !cl.hs_done; rounds++) {
		run_rounds(2);
		client_read(&cl);
	}
	CHECK(cl.hs_done);

	while (off < size && the_conn() && the_conn()->state != NBD_CONN_CLOSED) {
		size_t k = chunk ? NVL_MIN(chunk, size - off) : size - off;

		send_some(cl.fd, data + off, k);
		off += k;
		run_rounds(3);
		if (!(mode & 0x20))
			client_read(&cl);
	}
	run_rounds(4);
	client_read(&cl);
	if (mode & 0x40) {
		shutdown(cl.fd, SHUT_WR);
		for (rounds = 0; rounds < 64 && the_conn(); rounds++) {
			run_rounds(1);
			client_read(&cl);
		}
	}
	close(cl.fd);
	for (rounds = 0; rounds < 256 && the_conn(); rounds++)
		run_rounds(1);
	CHECK(the_conn() == NULL);
	CHECK(g_nbd_srv.nconns == 0);
	run_rounds(2); /* the owner's free */
	for (struct nbd_export *e = nbd_export_first(); e; e = nbd_export_next(e))
		CHECK(e->nconns == 0);
	CHECK(count_fds() == g_base_fds);
	return 0;
}
