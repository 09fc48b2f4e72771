/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvlend-perf: drive an NVMe namespace through libnvlend at a chosen queue
 * depth, block size and mix, like spdk_nvme_perf, with fio's option names.
 * One thread per job, each with its own I/O queue pair on one controller.
 *
 * Verify mode writes self-describing blocks (magic, LBA, generation, job,
 * CRC32C over the block) and checks every block it reads: against the
 * generation it last wrote (its own range), or, for blocks it did not write
 * in this run (another host's data), that the block is intact and sits at
 * the LBA it claims.
 */
#include "../exitcode.h"
#include "nvlend/nvlend.h"
#include "util/histogram.h"
#include "util/util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERIFY_MAGIC 0x4e564c56u /* "NVLV" */

struct vhdr {
	uint32_t magic;
	uint32_t crc;          /* CRC32C of the block with this field zero */
	uint64_t lba;
	uint64_t gen;
	uint32_t job;
	uint32_t pid;
};

enum rw_mode { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RANDRW, RW_RW };

struct opts {
	const char *uri;
	enum rw_mode rw;
	const char *rw_name;
	unsigned rwmixread;
	uint32_t bs;
	unsigned iodepth;
	unsigned numjobs;
	unsigned runtime;
	uint64_t io_limit;
	uint64_t size;
	uint64_t offset;
	bool verify;
	bool json;
	bool interrupts;
	bool use_prp;
	bool fua;
	uint32_t nsid;
	const char *cpus;
	const char *hostnqn;
	uint64_t seed;
	unsigned ramp_time;
	uint32_t spin_us;
	uint64_t window;
	uint32_t kato_ms;
	int cpu_list[64];      /* --cpus, parsed */
	unsigned ncpus;
};

struct job;

struct io {
	struct job *j;
	void *buf;
	uint64_t lba;          /* first LBA */
	uint64_t start_ns;
	bool write;
	uint64_t gen;
};

struct job {
	unsigned id;
	int cpu;
	pthread_t thread;
	struct nvl_ctrlr *c;
	struct nvl_qpair *qp;
	const struct opts *o;
	uint32_t nsid;
	uint32_t lbs;          /* logical block size */
	uint32_t blocks_per_io;
	uint64_t first_io;     /* range of bs-sized units this job uses */
	uint64_t nios;
	uint64_t next_seq;     /* sequential position */
	uint64_t next_gen;     /* verify: generation counter */
	uint64_t submitted_bytes;
	uint64_t elapsed_ns;
	uint64_t rng;
	uint64_t *gen;         /* verify: generation last written per unit (own range) */
	uint8_t *busy;         /* verify: unit has an I/O in flight */
	struct io *ios;
	uint64_t ops[2], bytes[2], errors, verify_checked, verify_errors, verify_foreign;
	uint64_t verify_unknown;   /* blocks this run did not write and nvlend-perf never did */
	struct nvl_histogram hist[2];
	bool measuring;
	bool *stop;             /* atomic */
	uint64_t bytes_limit;
	int rc;
	char err[256];
};

static bool g_stop;          /* atomic */

static void
on_signal(int s)
{
	(void)s;
	__atomic_store_n(&g_stop, true, __ATOMIC_RELAXED);
}

static uint64_t
rnd(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static void
fill_block(uint8_t *b, uint32_t lbs, uint64_t lba, uint64_t gen, uint32_t job)
{
	struct vhdr *h = (void *)b;
	uint64_t x = lba * 0x9e3779b97f4a7c15ULL ^ gen;

	for (uint32_t i = sizeof(*h); i + 8 <= lbs; i += 8) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		memcpy(b + i, &x, 8);
	}
	h->magic = VERIFY_MAGIC;
	h->crc = 0;
	h->lba = lba;
	h->gen = gen;
	h->job = job;
	h->pid = (uint32_t)getpid();
	h->crc = nvl_crc32c(b, lbs);
}

/* 0 ok; 1 never written (all zero); 2 not written by nvlend-perf (unknown
 * content); -1 written by nvlend-perf but corrupt or at the wrong LBA */
static int
check_block(const uint8_t *b, uint32_t lbs, uint64_t lba, uint64_t *gen_out)
{
	struct vhdr h;
	uint32_t crc;
	uint8_t tmp[64];

	memcpy(&h, b, sizeof(h));
	if (h.magic != VERIFY_MAGIC) {
		for (uint32_t i = 0; i < lbs; i++)
			if (b[i])
				return 2;
		return 1;
	}
	memcpy(tmp, b, sizeof(h));
	((struct vhdr *)tmp)->crc = 0;
	crc = nvl_crc32c_update(0xffffffffu, tmp, sizeof(h));
	crc = nvl_crc32c_update(crc, b + sizeof(h), lbs - sizeof(h)) ^ 0xffffffffu;
	if (crc != h.crc || h.lba != lba)
		return -1;
	*gen_out = h.gen;
	return 0;
}

static void io_submit(struct job *j, struct io *io);

static bool
job_done(struct job *j)
{
	if (__atomic_load_n(j->stop, __ATOMIC_RELAXED) || __atomic_load_n(&g_stop, __ATOMIC_RELAXED))
		return true;
	if (j->bytes_limit && j->submitted_bytes >= j->bytes_limit)
		return true;
	return false;
}

static void
io_complete(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct io *io = arg;
	struct job *j = io->j;
	uint64_t lat = nvl_now_ns() - io->start_ns;
	int dir = io->write ? 1 : 0;
	uint64_t unit = io->lba / j->blocks_per_io;

	if (j->o->verify)
		j->busy[unit - j->first_io] = 0;
	if (nvl_cpl_status(cpl)) {
		j->errors++;
		if (j->err[0] == '\0')
			snprintf(j->err, sizeof(j->err), "%s of LBA %" PRIu64 " failed: %s",
				 io->write ? "write" : "read", io->lba,
				 nvl_status_str(nvl_cpl_status(cpl)));
	} else {
		if (j->measuring) {
			/* single writer; relaxed stores so the status line may read them */
			__atomic_store_n(&j->ops[dir], j->ops[dir] + 1, __ATOMIC_RELAXED);
			__atomic_store_n(&j->bytes[dir], j->bytes[dir] + j->o->bs, __ATOMIC_RELAXED);
			nvl_histogram_add(&j->hist[dir], lat);
		}
		if (j->o->verify && io->write) {
			j->gen[unit - j->first_io] = io->gen;
		} else if (j->o->verify) {
			for (uint32_t b = 0; b < j->blocks_per_io; b++) {
				uint64_t g = 0;
				int r = check_block((uint8_t *)io->buf + b * j->lbs, j->lbs,
						    io->lba + b, &g);
				uint64_t want = j->gen[unit - j->first_io];
				const char *why = NULL;

				j->verify_checked++;
				if (want) {
					/* this run wrote it: it must read back exactly */
					if (r == -1)
						why = "block corrupt or at the wrong LBA";
					else if (r == 1)
						why = "reads back as zeroes";
					else if (r == 2)
						why = "overwritten by data not from nvlend-perf";
					else if (g != want)
						why = "stale data";
				} else if (r == -1) {
					/* nvlend-perf's format, from another run or host: its
					 * integrity and position are checked all the same */
					why = "block corrupt or at the wrong LBA";
				} else if (r == 0) {
					j->verify_foreign++;
				} else if (r == 2) {
					j->verify_unknown++;   /* not ours to judge (fio's rule) */
				}
				if (why) {
					j->verify_errors++;
					if (j->err[0] == '\0')
						snprintf(j->err, sizeof(j->err),
							 "verify failed at LBA %" PRIu64
							 ": %s (expected generation %" PRIu64
							 ", found %" PRIu64 ")",
							 io->lba + b, why, want, g);
				}
			}
		}
	}
	if (!job_done(j))
		io_submit(j, io);
	else
		io->buf = io->buf; /* slot stays idle */
}

static uint64_t
pick_unit(struct job *j, bool random)
{
	uint64_t u;

	if (random)
		u = rnd(&j->rng) % j->nios;
	else
		u = j->next_seq++ % j->nios;
	if (j->o->verify) {
		/* never two I/Os on one unit at once */
		for (uint64_t k = 0; k < j->nios && j->busy[u]; k++)
			u = (u + 1) % j->nios;
		j->busy[u] = 1;
	}
	return j->first_io + u;
}

static void
io_submit(struct job *j, struct io *io)
{
	const struct opts *o = j->o;
	bool random = o->rw == RW_RANDREAD || o->rw == RW_RANDWRITE || o->rw == RW_RANDRW;
	bool write;
	uint64_t unit;
	int rc;

	switch (o->rw) {
	case RW_READ: case RW_RANDREAD: write = false; break;
	case RW_WRITE: case RW_RANDWRITE: write = true; break;
	default: write = rnd(&j->rng) % 100 >= o->rwmixread; break;
	}
	unit = pick_unit(j, random);
	io->write = write;
	io->lba = unit * j->blocks_per_io;
	if (write && o->verify) {
		io->gen = ++j->next_gen + ((uint64_t)j->id << 48);
		for (uint32_t b = 0; b < j->blocks_per_io; b++)
			fill_block((uint8_t *)io->buf + b * j->lbs, j->lbs, io->lba + b, io->gen, j->id);
	}
	io->start_ns = nvl_now_ns();
	j->submitted_bytes += o->bs;
	do {
		rc = write ? nvl_write(j->qp, j->nsid, io->buf, io->lba, j->blocks_per_io,
				       o->fua ? NVL_IO_FUA : 0, io_complete, io)
			   : nvl_read(j->qp, j->nsid, io->buf, io->lba, j->blocks_per_io, 0,
				      io_complete, io);
		if (rc == -EAGAIN)
			nvl_qpair_process_completions(j->qp, 0);
	} while (rc == -EAGAIN);
	if (rc < 0) {
		j->errors++;
		if (o->verify)
			j->busy[unit - j->first_io] = 0;
		if (j->err[0] == '\0')
			snprintf(j->err, sizeof(j->err), "submit failed: %s", strerror(-rc));
		__atomic_store_n(j->stop, true, __ATOMIC_RELAXED);
	}
}

static void *
job_run(void *arg)
{
	struct job *j = arg;
	const struct opts *o = j->o;
	uint64_t t_start, t_ramp_end, t_end;

	if (j->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(j->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	t_start = nvl_now_ns();
	t_ramp_end = t_start + (uint64_t)o->ramp_time * 1000000000ULL;
	t_end = o->runtime ? t_ramp_end + (uint64_t)o->runtime * 1000000000ULL : UINT64_MAX;
	j->measuring = o->ramp_time == 0;
	for (unsigned i = 0; i < o->iodepth && !job_done(j); i++)
		io_submit(j, &j->ios[i]);
	while (nvl_qpair_outstanding(j->qp) > 0) {
		uint64_t now = nvl_now_ns();
		int n;

		if (!j->measuring && now >= t_ramp_end) {
			j->measuring = true;
			t_start = now;
		}
		if (now >= t_end)
			__atomic_store_n(j->stop, true, __ATOMIC_RELAXED);
		n = o->interrupts ? nvl_qpair_wait(j->qp, 100) : nvl_qpair_process_completions(j->qp, 0);
		if (n < 0) {
			snprintf(j->err, sizeof(j->err), "queue pair lost: %s", strerror(-n));
			j->errors++;
			break;
		}
	}
	j->rc = (j->errors || j->verify_errors) ? 1 : 0;
	j->elapsed_ns = nvl_now_ns() - t_start;
	return NULL;
}

/* Verify pass after a pure write run: read every unit back. */
static int
verify_readback(struct job *j)
{
	int errors = 0;

	for (uint64_t u = 0; u < j->nios; u++) {
		struct nvl_nvme_cpl cpl;
		uint64_t lba = (j->first_io + u) * j->blocks_per_io;
		int rc;

		if (j->gen[u] == 0)
			continue;
		rc = nvl_read_sync(j->qp, j->nsid, j->ios[0].buf, lba, j->blocks_per_io, &cpl);
		if (rc < 0) {
			errors++;
			continue;
		}
		for (uint32_t b = 0; b < j->blocks_per_io; b++) {
			uint64_t g = 0;
			int r = check_block((uint8_t *)j->ios[0].buf + b * j->lbs, j->lbs, lba + b, &g);

			j->verify_checked++;
			if (r != 0 || g != j->gen[u]) {
				errors++;
				j->verify_errors++;
				if (j->err[0] == '\0')
					snprintf(j->err, sizeof(j->err),
						 "read-back verify failed at LBA %" PRIu64, lba + b);
			}
		}
	}
	return errors;
}

static void
usage(FILE *f)
{
	fprintf(f,
"NAME\n"
"    nvlend-perf - load generator and verifier for NVMe namespaces (shm or TCP)\n"
"\n"
"SYNOPSIS\n"
"    nvlend-perf URI [--rw=MODE] [--bs=SIZE] [--iodepth=N] [--numjobs=N]\n"
"                    [--runtime=SECS | --io_limit=SIZE] [--verify] [--json] ...\n"
"\n"
"DESCRIPTION\n"
"    Connects to the controller URI names (nvme+shm:///SOCK?nqn=NQN[&nsid=N],\n"
"    nvme+tcp://HOST:PORT/NQN[/NSID], nvme+rdma://HOST:PORT/NQN[/NSID], or a\n"
"    function: nvme+fn:///SOCK[?nsid=N]),\n"
"    creates one I/O queue pair per job and\n"
"    keeps --iodepth commands in flight on each. Prints IOPS, bandwidth and\n"
"    latency percentiles (submission to completion, per command). Options use\n"
"    fio's names.\n"
"\n"
"OPTIONS\n"
"    --rw=MODE          read, write, randread, randwrite, randrw, rw (default randread)\n"
"    --rwmixread=N      percentage of reads for randrw/rw (default 50)\n"
"    --bs=SIZE          I/O size, a multiple of the block size, at most the\n"
"                       controller's MDTS (default 4k)\n"
"    --iodepth=N        commands in flight per job (default 1)\n"
"    --numjobs=N        jobs = threads = queue pairs (default 1)\n"
"    --runtime=SECS     run this long (default 10 unless --io_limit)\n"
"    --ramp_time=SECS   run this long first without measuring\n"
"    --io_limit=SIZE    stop after SIZE bytes per job\n"
"    --size=SIZE        use only the first SIZE bytes after --offset (default all)\n"
"    --offset=SIZE      start of the region used\n"
"    --verify           write self-describing blocks (LBA, generation, CRC32C) and\n"
"                       check every read; with rw=write the data is read back and\n"
"                       checked at the end; with rw=read, blocks written by another\n"
"                       host are checked for integrity and position. Jobs split\n"
"                       the region so their data never overlaps. As fio does, a\n"
"                       block is judged only if this run wrote it or it carries\n"
"                       nvlend-perf's format (another run or host wrote it);\n"
"                       other content (a disk that already held data) is counted\n"
"                       as 'unknown content' and is not an error.\n"
"    --fua              writes with Force Unit Access\n"
"    --nsid=N           namespace (default: the URI's, else the first)\n"
"    --cpus=LIST        pin job i to the i-th CPU of LIST (e.g. 1 or 0,1)\n"
"    --poll             busy-poll completions (default: spin --spin_us, then sleep\n"
"                       on the queue's interrupt)\n"
"    --spin_us=N        spin this long before sleeping (default 50)\n"
"    --use_prp          describe data with PRP lists instead of SGLs (shm)\n"
"    --window=SIZE      shm data window to ask for (default: enough for the jobs)\n"
"    --hostnqn=NQN      host NQN (default: derived from /etc/machine-id)\n"
"    --dhchap-key=KEY   authenticate with DH-HMAC-CHAP when the subsystem asks:\n"
"                       a file holding a DHHC-1 secret (mode 0600) or the secret\n"
"                       (default $NVLEND_DHCHAP_KEY)\n"
"    --dhchap-ctrlr-key=KEY  the controller must prove itself with this key too\n"
"                       (default $NVLEND_DHCHAP_CTRLR_KEY)\n"
"    --kato=MS          keep-alive timeout asked of the target (default 10000)\n"
"    --seed=N           random seed (default: from the clock)\n"
"    --json             machine-readable result\n"
"                       On a terminal, a status line (IOPS, MiB/s and p99 latency\n"
"                       of the last second) is updated on stderr once a second,\n"
"                       as fio does; NVLEND_PERF_STATUS=0 turns it off.\n"
"    -h, --help         this text\n"
"\n"
"EXIT STATUS\n"
NVL_EXIT_STATUS_HELP "    Status 1 is also any I/O or verify error.\n"
"\n"
"EXAMPLES\n"
"    nvlend-perf 'nvme+shm:///run/nvlend/shm.sock?nqn=nqn.2026-01.io.nvlend:r0' \\\n"
"        --rw=randread --bs=4k --iodepth=32 --runtime=10\n"
"    nvlend-perf nvme+tcp://127.0.0.1:4420/nqn.2026-01.io.nvlend:r0 --rw=randrw \\\n"
"        --verify --io_limit=64M\n");
}

static int
parse_rw(const char *s, enum rw_mode *m)
{
	static const struct {
		const char *n;
		enum rw_mode m;
	} t[] = { { "read", RW_READ }, { "write", RW_WRITE }, { "randread", RW_RANDREAD },
		  { "randwrite", RW_RANDWRITE }, { "randrw", RW_RANDRW }, { "rw", RW_RW },
		  { "readwrite", RW_RW } };

	for (size_t i = 0; i < NVL_ARRAY_SIZE(t); i++)
		if (strcmp(s, t[i].n) == 0) {
			*m = t[i].m;
			return 0;
		}
	return -EINVAL;
}

static void
print_dir(const char *name, const struct job *jobs, unsigned n, int dir, double secs,
	  json_t *jout)
{
	struct nvl_histogram h;
	uint64_t ops = 0, bytes = 0;

	nvl_histogram_init(&h);
	for (unsigned i = 0; i < n; i++) {
		ops += jobs[i].ops[dir];
		bytes += jobs[i].bytes[dir];
		nvl_histogram_merge(&h, &jobs[i].hist[dir]);
	}
	if (ops == 0)
		return;
	if (jout) {
		json_object_set_new(
			jout, name,
			json_pack("{s:I, s:I, s:f, s:f, s:{s:f, s:f, s:f, s:f, s:f, s:f}}", "ios",
				  (json_int_t)ops, "bytes", (json_int_t)bytes, "iops", ops / secs,
				  "bw_mib_s", bytes / secs / 1048576.0, "lat_us", "mean",
				  h.count ? (double)h.sum / h.count / 1000.0 : 0.0, "min",
				  h.min / 1000.0, "p50", nvl_histogram_percentile(&h, 50) / 1000.0,
				  "p99", nvl_histogram_percentile(&h, 99) / 1000.0, "p99.9",
				  nvl_histogram_percentile(&h, 99.9) / 1000.0, "max", h.max / 1000.0));
		return;
	}
	printf("  %-5s IOPS=%.0f, BW=%.1f MiB/s, %" PRIu64 " ios\n", name, ops / secs,
	       bytes / secs / 1048576.0, ops);
	printf("        lat (us): mean=%.2f p50=%.2f p99=%.2f p99.9=%.2f max=%.2f\n",
	       h.count ? (double)h.sum / h.count / 1000.0 : 0.0,
	       nvl_histogram_percentile(&h, 50) / 1000.0, nvl_histogram_percentile(&h, 99) / 1000.0,
	       nvl_histogram_percentile(&h, 99.9) / 1000.0, h.max / 1000.0);
}

#define PERF_RUN (-1) /* perf_parse_args, perf_open: go on (else: the exit status) */

/* One option's value into o. \return 0, or -EINVAL (a bad value). */
static int
perf_set_option(int ch, const char *arg, struct opts *o)
{
	uint64_t v;

	switch (ch) {
	case 'm':
		if (nvl_parse_u64(arg, 100, &v) < 0)
			return -EINVAL;
		o->rwmixread = (unsigned)v;
		return 0;
	case 'b':
		if (nvl_parse_size(arg, &v) < 0 || v == 0 || v > (1u << 20))
			return -EINVAL;
		o->bs = (uint32_t)v;
		return 0;
	case 'q':
		if (nvl_parse_u64(arg, 4096, &v) < 0 || v == 0)
			return -EINVAL;
		o->iodepth = (unsigned)v;
		return 0;
	case 'n':
		if (nvl_parse_u64(arg, 64, &v) < 0 || v == 0)
			return -EINVAL;
		o->numjobs = (unsigned)v;
		return 0;
	case 't':
		if (nvl_parse_u64(arg, 86400, &v) < 0)
			return -EINVAL;
		o->runtime = (unsigned)v;
		return 0;
	case 'R':
		if (nvl_parse_u64(arg, 3600, &v) < 0)
			return -EINVAL;
		o->ramp_time = (unsigned)v;
		return 0;
	case 'l':
		return nvl_parse_size(arg, &o->io_limit) < 0 ? -EINVAL : 0;
	case 's':
		return nvl_parse_size(arg, &o->size) < 0 ? -EINVAL : 0;
	case 'o':
		return nvl_parse_size(arg, &o->offset) < 0 ? -EINVAL : 0;
	case 'v':
		o->verify = arg == NULL || strcmp(arg, "0") != 0;
		return 0;
	case 'j':
		o->json = true;
		return 0;
	case 'J':
		o->json = strcmp(arg, "json") == 0;
		return 0;
	case 'F':
		o->fua = true;
		return 0;
	case 'N':
		if (nvl_parse_u64(arg, 0xfffffffe, &v) < 0 || v == 0)
			return -EINVAL;
		o->nsid = (uint32_t)v;
		return 0;
	case 'c':
		o->cpus = arg;
		return 0;
	case 'p':
		o->interrupts = false;
		return 0;
	case 'S':
		if (nvl_parse_u64(arg, 10000000, &v) < 0)
			return -EINVAL;
		o->spin_us = (uint32_t)v;
		return 0;
	case 'P':
		o->use_prp = true;
		return 0;
	case 'W':
		return nvl_parse_size(arg, &o->window) < 0 ? -EINVAL : 0;
	case 'H':
		o->hostnqn = arg;
		return 0;
	case 'x': /* libnvlend reads the keys from its environment */
		return setenv("NVLEND_DHCHAP_KEY", arg, 1) < 0 ? -EINVAL : 0;
	case 'X':
		return setenv("NVLEND_DHCHAP_CTRLR_KEY", arg, 1) < 0 ? -EINVAL : 0;
	case 'K':
		if (nvl_parse_u64(arg, 3600000, &v) < 0)
			return -EINVAL;
		o->kato_ms = (uint32_t)v;
		return 0;
	case 'e':
		return nvl_parse_u64(arg, UINT64_MAX, &o->seed) < 0 ? -EINVAL : 0;
	default:
		return -EINVAL;
	}
}

/* --cpus=LIST into o->cpu_list (at most 64). \return 0, or -EINVAL. */
static int
perf_parse_cpus(struct opts *o)
{
	char *dup = strdup(o->cpus), *save = NULL;
	uint64_t v;
	int rc = 0;

	if (dup == NULL)
		return -ENOMEM;
	for (char *t = strtok_r(dup, ",", &save); t && o->ncpus < 64;
	     t = strtok_r(NULL, ",", &save)) {
		if (nvl_parse_u64(t, 4095, &v) < 0) {
			rc = -EINVAL;
			break;
		}
		o->cpu_list[o->ncpus++] = (int)v;
	}
	free(dup);
	return rc;
}

static void
perf_bad_value(const char *arg)
{
	fprintf(stderr,
		"nvlend-perf: invalid value '%s' for an option\nTry 'nvlend-perf --help'.\n", arg);
}

/* The command line into o. \return PERF_RUN, or the exit status (said why). */
static int
perf_parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "rw", required_argument, NULL, 'r' },
		{ "readwrite", required_argument, NULL, 'r' },
		{ "rwmixread", required_argument, NULL, 'm' },
		{ "bs", required_argument, NULL, 'b' },
		{ "iodepth", required_argument, NULL, 'q' },
		{ "numjobs", required_argument, NULL, 'n' },
		{ "runtime", required_argument, NULL, 't' },
		{ "ramp_time", required_argument, NULL, 'R' },
		{ "io_limit", required_argument, NULL, 'l' },
		{ "size", required_argument, NULL, 's' },
		{ "offset", required_argument, NULL, 'o' },
		{ "verify", optional_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "output-format", required_argument, NULL, 'J' },
		{ "fua", no_argument, NULL, 'F' },
		{ "nsid", required_argument, NULL, 'N' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "poll", no_argument, NULL, 'p' },
		{ "spin_us", required_argument, NULL, 'S' },
		{ "use_prp", no_argument, NULL, 'P' },
		{ "window", required_argument, NULL, 'W' },
		{ "hostnqn", required_argument, NULL, 'H' },
		{ "dhchap-key", required_argument, NULL, 'x' },
		{ "dhchap-ctrlr-key", required_argument, NULL, 'X' },
		{ "kato", required_argument, NULL, 'K' },
		{ "seed", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 'r':
			if (parse_rw(optarg, &o->rw) < 0) {
				fprintf(stderr, "nvlend-perf: --rw=%s: use read, write, randread, "
						"randwrite, randrw or rw\n", optarg);
				return 2;
			}
			o->rw_name = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case '?':
			fprintf(stderr, "Try 'nvlend-perf --help'.\n");
			return 2;
		default:
			if (perf_set_option(ch, optarg, o) < 0) {
				perf_bad_value(optarg);
				return 2;
			}
			break;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr,
			"nvlend-perf: expected exactly one URI\nTry 'nvlend-perf --help'.\n");
		return 2;
	}
	o->uri = argv[optind];
	if (o->runtime == 0 && o->io_limit == 0)
		o->runtime = 10;
	if (o->cpus && perf_parse_cpus(o) < 0) {
		perf_bad_value(o->cpus);
		return 2;
	}
	return PERF_RUN;
}

/*
 * Connect, find the namespace, check --bs against it and fit the region
 * (--offset, --size) into it. \return PERF_RUN with *cp connected, or the
 * exit status (said why; nothing left connected).
 */
static int
perf_open(struct opts *o, struct nvl_ctrlr **cp, struct nvl_ns_info *ns)
{
	struct nvl_ctrlr_opts copts;
	struct nvl_ctrlr *c = NULL;
	uint64_t ns_bytes;
	int rc;

	nvl_ctrlr_opts_default(&copts);
	copts.hostnqn = o->hostnqn;
	if (o->kato_ms)
		copts.kato_ms = o->kato_ms;
	/* window: every job's buffers plus bounce/PRP slack */
	copts.window_bytes = o->window;
	if (copts.window_bytes == 0)
		copts.window_bytes = NVL_MAX(
			64ULL << 20, NVL_ALIGN_UP((uint64_t)o->numjobs * o->iodepth * o->bs * 2 +
						  (32ULL << 20), 2ULL << 20));
	rc = nvl_ctrlr_connect(o->uri, &copts, &c);
	if (rc < 0) {
		fprintf(stderr, "nvlend-perf: cannot connect to %s: %s\n", o->uri, nvl_strerror(rc));
		return nvl_exit_for(rc);
	}
	if (o->nsid == 0)
		o->nsid = nvl_ctrlr_default_nsid(c);
	rc = nvl_ns_get_info(c, o->nsid, ns);
	if (rc < 0) {
		rc = rc == -ENOENT ? -ENXIO : rc; /* nvl_ns_get_info's "not active" */
		fprintf(stderr, "nvlend-perf: namespace %u: %s\n", o->nsid, nvl_strerror(rc));
		rc = nvl_exit_for(rc);
		goto err_disconnect;
	}
	rc = 2;
	if (o->bs % ns->block_size) {
		fprintf(stderr,
			"nvlend-perf: --bs=%u is not a multiple of the %u-byte block size\n",
			o->bs, ns->block_size);
		goto err_disconnect;
	}
	if (o->bs > nvl_ctrlr_max_xfer(c)) {
		fprintf(stderr, "nvlend-perf: --bs=%u is above the controller's largest transfer "
			"(MDTS: %u bytes); nvlend-perf sends one command per I/O\n", o->bs,
			nvl_ctrlr_max_xfer(c));
		goto err_disconnect;
	}
	ns_bytes = ns->num_blocks * ns->block_size;
	if (o->size == 0 || o->size > ns_bytes - NVL_MIN(o->offset, ns_bytes))
		o->size = ns_bytes - NVL_MIN(o->offset, ns_bytes);
	if (o->size / o->bs < o->numjobs || o->offset % o->bs) {
		fprintf(stderr, "nvlend-perf: region too small for %u jobs of %u-byte I/O\n",
			o->numjobs, o->bs);
		goto err_disconnect;
	}
	*cp = c;
	return PERF_RUN;
err_disconnect:
	nvl_ctrlr_disconnect(c);
	return rc;
}

/* Job i: its share of the region, queue pair and buffers. \return 0 or 1 (said why). */
static int
perf_job_init(struct job *j, unsigned i, const struct opts *o, struct nvl_ctrlr *c,
	      const struct nvl_ns_info *ns, uint64_t per_job, bool *stop)
{
	struct nvl_qpair_opts qo;
	int rc;

	j->id = i;
	j->o = o;
	j->c = c;
	j->nsid = o->nsid;
	j->lbs = ns->block_size;
	j->blocks_per_io = o->bs / ns->block_size;
	j->first_io = o->offset / o->bs + (o->verify ? i * per_job : 0);
	j->nios = per_job;
	j->cpu = o->ncpus ? o->cpu_list[i % o->ncpus] : -1;
	j->rng = o->seed + i * 0x9e3779b97f4a7c15ULL + 1;
	j->stop = stop;
	j->bytes_limit = o->io_limit;
	nvl_histogram_init(&j->hist[0]);
	nvl_histogram_init(&j->hist[1]);
	if (o->verify) {
		j->gen = calloc(per_job, sizeof(uint64_t));
		j->busy = calloc(per_job, 1);
		if (j->gen == NULL || j->busy == NULL) {
			fprintf(stderr, "nvlend-perf: out of memory\n");
			return 1;
		}
	}
	nvl_qpair_opts_default(&qo);
	qo.entries = NVL_MAX(o->iodepth + 1, 16u);
	qo.interrupts = o->interrupts;
	qo.spin_us = o->spin_us;
	qo.use_prp = o->use_prp;
	rc = nvl_qpair_create(c, &qo, &j->qp);
	if (rc < 0) {
		fprintf(stderr, "nvlend-perf: cannot create queue pair %u: %s (%s)\n", i,
			strerror(-rc), nvl_ctrlr_last_error(c));
		return 1;
	}
	j->ios = calloc(o->iodepth, sizeof(*j->ios));
	if (j->ios == NULL) {
		fprintf(stderr, "nvlend-perf: out of memory\n");
		return 1;
	}
	for (unsigned k = 0; k < o->iodepth; k++) {
		j->ios[k].j = j;
		j->ios[k].buf = nvl_buf_alloc(c, o->bs);
		if (j->ios[k].buf == NULL) {
			fprintf(stderr, "nvlend-perf: data window too small (use --window)\n");
			return 1;
		}
		memset(j->ios[k].buf, 0, o->bs); /* touch it now, not while measuring */
	}
	return 0;
}

/* Free what perf_job_init made of the first n jobs, and the array. */
static void
perf_jobs_destroy(const struct opts *o, struct nvl_ctrlr *c, struct job *jobs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (jobs[i].ios)
			for (unsigned k = 0; k < o->iodepth; k++)
				nvl_buf_free(c, jobs[i].ios[k].buf);
		nvl_qpair_destroy(jobs[i].qp);
		free(jobs[i].ios);
		free(jobs[i].gen);
		free(jobs[i].busy);
	}
	free(jobs);
}

/* Every job, ready to run. \return 0 with *out, or 1 (said why; nothing left). */
static int
perf_jobs_create(struct opts *o, struct nvl_ctrlr *c, const struct nvl_ns_info *ns, bool *stop,
		 struct job **out)
{
	uint64_t total_units = o->size / o->bs;
	uint64_t per_job = o->verify ? total_units / o->numjobs : total_units;
	struct job *jobs;

	jobs = calloc(o->numjobs, sizeof(*jobs));
	if (jobs == NULL) {
		fprintf(stderr, "nvlend-perf: out of memory\n");
		return 1;
	}
	if (o->seed == 0)
		o->seed = nvl_now_ns();
	for (unsigned i = 0; i < o->numjobs; i++) {
		if (perf_job_init(&jobs[i], i, o, c, ns, per_job, stop) != 0) {
			perf_jobs_destroy(o, c, jobs, i + 1);
			return 1;
		}
	}
	*out = jobs;
	return 0;
}

static void
perf_print_header(const struct opts *o, const struct nvl_ns_info *ns, const struct job *jobs)
{
	printf("nvlend-perf: %s nsid %u (%" PRIu64 " x %u B), rw=%s bs=%u iodepth=%u "
	       "numjobs=%u %s%s\n",
	       o->uri, o->nsid, ns->num_blocks, ns->block_size, o->rw_name, o->bs, o->iodepth,
	       o->numjobs, o->interrupts ? "completion=adaptive" : "completion=poll",
	       o->verify ? " verify" : "");
	for (unsigned i = 0; i < o->numjobs; i++) {
		if (jobs[i].cpu >= 0)
			printf("  job %u: qid %u, cpu %d\n", i, nvl_qpair_id(jobs[i].qp),
			       jobs[i].cpu);
		else
			printf("  job %u: qid %u, unpinned\n", i, nvl_qpair_id(jobs[i].qp));
	}
	fflush(stdout);
}

/* One line on stderr: the last interval's IOPS, MiB/s and p99 (from the
 * difference of the jobs' histograms, read while they run: display only). */
static void
perf_status(const struct opts *o, const struct job *jobs, struct nvl_histogram *prev,
	    uint64_t *prev_ops, uint64_t *prev_bytes, double dt, unsigned secs)
{
	struct nvl_histogram *cur = calloc(1, sizeof(*cur)), *d = calloc(1, sizeof(*d));
	uint64_t ops = 0, bytes = 0;

	if (cur == NULL || d == NULL)
		goto out;
	nvl_histogram_init(cur);
	for (unsigned i = 0; i < o->numjobs; i++) {
		for (int dir = 0; dir < 2; dir++) {
			const struct nvl_histogram *h = &jobs[i].hist[dir];

			ops += __atomic_load_n(&jobs[i].ops[dir], __ATOMIC_RELAXED);
			bytes += __atomic_load_n(&jobs[i].bytes[dir], __ATOMIC_RELAXED);
			for (unsigned k = 0; k < NVL_HIST_BUCKETS; k++)
				cur->bucket[k] += __atomic_load_n(&h->bucket[k], __ATOMIC_RELAXED);
		}
	}
	nvl_histogram_init(d);
	for (unsigned k = 0; k < NVL_HIST_BUCKETS; k++) {
		d->bucket[k] = cur->bucket[k] >= prev->bucket[k] ? cur->bucket[k] - prev->bucket[k]
								 : 0;
		d->count += d->bucket[k];
	}
	d->min = 0;
	d->max = UINT64_MAX;
	fprintf(stderr, "\r[%4us] %9.1f K IOPS, %8.1f MiB/s, p99 %8.1f us \033[K", secs,
		(double)(ops - *prev_ops) / dt / 1000.0,
		(double)(bytes - *prev_bytes) / dt / 1048576.0,
		d->count ? (double)nvl_histogram_percentile(d, 99) / 1000.0 : 0.0);
	*prev = *cur;
	*prev_ops = ops;
	*prev_bytes = bytes;
out:
	free(cur);
	free(d);
}

static unsigned g_jobs_running;   /* atomic */

static void *
job_thread(void *arg)
{
	void *r = job_run(arg);

	__atomic_sub_fetch(&g_jobs_running, 1, __ATOMIC_RELEASE);
	return r;
}

/* Run every job to its end (and the verify read-back). \return the seconds measured. */
static double
perf_run(const struct opts *o, struct job *jobs)
{
	const char *st = getenv("NVLEND_PERF_STATUS");
	bool status = !o->json && isatty(STDERR_FILENO) && !(st && strcmp(st, "0") == 0);
	double secs = 0;

	__atomic_store_n(&g_jobs_running, o->numjobs, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < o->numjobs; i++)
		pthread_create(&jobs[i].thread, NULL, job_thread, &jobs[i]);
	if (status) {
		struct nvl_histogram *prev = calloc(1, sizeof(*prev));
		uint64_t pops = 0, pbytes = 0, t0 = nvl_now_ns(), last = t0;
		unsigned tick = 0;

		if (prev)
			nvl_histogram_init(prev);
		while (prev && __atomic_load_n(&g_jobs_running, __ATOMIC_ACQUIRE) > 0) {
			usleep(50000);
			if (nvl_now_ns() - last < 1000000000ULL)
				continue;
			perf_status(o, jobs, prev, &pops, &pbytes,
				    (double)(nvl_now_ns() - last) / 1e9, ++tick);
			last = nvl_now_ns();
		}
		if (tick)
			fprintf(stderr, "\r\033[K");
		free(prev);
	}
	for (unsigned i = 0; i < o->numjobs; i++) {
		pthread_join(jobs[i].thread, NULL);
		secs = NVL_MAX(secs, (double)jobs[i].elapsed_ns / 1e9);
	}
	if (o->verify && (o->rw == RW_WRITE || o->rw == RW_RANDWRITE))
		for (unsigned i = 0; i < o->numjobs; i++)
			verify_readback(&jobs[i]);
	return secs <= 0 ? 1e-9 : secs;
}

/* Errors and verify counts of every job (text or into jout). \return 0, or 1 if any job failed. */
static int
perf_print_totals(const struct opts *o, const struct job *jobs, json_t *jout)
{
	uint64_t errs = 0, vchk = 0, verr = 0, vforeign = 0, vunknown = 0;
	int rc = 0;

	for (unsigned i = 0; i < o->numjobs; i++) {
		errs += jobs[i].errors;
		vchk += jobs[i].verify_checked;
		verr += jobs[i].verify_errors;
		vforeign += jobs[i].verify_foreign;
		vunknown += jobs[i].verify_unknown;
		if (jobs[i].err[0])
			fprintf(stderr, "nvlend-perf: job %u: %s\n", i, jobs[i].err);
		if (jobs[i].rc)
			rc = 1;
	}
	if (jout) {
		json_object_set_new(jout, "errors", json_integer((json_int_t)errs));
		if (o->verify)
			json_object_set_new(jout, "verify",
					    json_pack("{s:I, s:I, s:I, s:I}", "checked",
						      (json_int_t)vchk, "errors", (json_int_t)verr,
						      "foreign", (json_int_t)vforeign, "unknown",
						      (json_int_t)vunknown));
		return rc;
	}
	printf("  errors: %" PRIu64 "\n", errs);
	if (o->verify)
		printf("  verify: %" PRIu64 " blocks checked (%" PRIu64
		       " written by others, %" PRIu64 " of unknown content, not judged), %" PRIu64
		       " errors\n",
		       vchk, vforeign, vunknown, verr);
	return rc;
}

/* The result, as text or (--json) one JSON object. \return 0, or 1 if any job failed. */
static int
perf_report(const struct opts *o, const struct job *jobs, double secs)
{
	json_t *jout = NULL;
	int rc;

	if (o->json)
		jout = json_pack("{s:s, s:i, s:s, s:i, s:i, s:i, s:f}", "uri", o->uri, "nsid",
				 (int)o->nsid, "rw", o->rw_name, "bs", (int)o->bs, "iodepth",
				 (int)o->iodepth, "numjobs", (int)o->numjobs, "elapsed_s", secs);
	print_dir("read", jobs, o->numjobs, 0, secs, jout);
	print_dir("write", jobs, o->numjobs, 1, secs, jout);
	rc = perf_print_totals(o, jobs, jout);
	if (jout) {
		char *s = json_dumps(jout, JSON_INDENT(2));

		puts(s);
		free(s);
		json_decref(jout);
	}
	return rc;
}

int
main(int argc, char **argv)
{
	struct opts o = { .rw = RW_RANDREAD, .rw_name = "randread", .rwmixread = 50, .bs = 4096,
			  .iodepth = 1, .numjobs = 1, .interrupts = true, .spin_us = 50 };
	struct nvl_ctrlr *c = NULL;
	struct nvl_ns_info ns;
	struct job *jobs;
	bool stop = false;
	double secs;
	int rc;

	rc = perf_parse_args(argc, argv, &o);
	if (rc != PERF_RUN)
		return rc;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	rc = perf_open(&o, &c, &ns);
	if (rc != PERF_RUN)
		return rc;
	if (perf_jobs_create(&o, c, &ns, &stop, &jobs) != 0) {
		nvl_ctrlr_disconnect(c);
		return 1;
	}
	if (!o.json)
		perf_print_header(&o, &ns, jobs);
	secs = perf_run(&o, jobs);
	rc = perf_report(&o, jobs, secs);
	perf_jobs_destroy(&o, c, jobs, o.numjobs);
	nvl_ctrlr_disconnect(c);
	return rc;
}
