/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hello_nvlend: the smallest useful libnvlend program. Connects to a
 * namespace, writes a block, reads it back through a second queue pair,
 * and runs a batch of asynchronous reads.
 *
 *   cc -o hello_nvlend hello_nvlend.c $(pkg-config --cflags --libs nvlend)
 *   ./hello_nvlend 'nvme+shm:///run/nvlend/shm.sock?nqn=nqn.2026-01.io.nvlend:ns0'
 */
#include <nvlend/nvlend.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void
read_done(void *arg, const struct nvl_nvme_cpl *cpl)
{
	int *pending = arg;

	if (nvl_cpl_status(cpl))
		fprintf(stderr, "read failed: %s\n", nvl_status_str(nvl_cpl_status(cpl)));
	(*pending)--;
}

int
main(int argc, char **argv)
{
	struct nvl_ctrlr *c;
	struct nvl_qpair *q1, *q2;
	struct nvl_ns_info ns;
	struct nvl_nvme_cpl cpl;
	char *buf;
	uint32_t nsid;
	int rc, pending = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s URI\n", argv[0]);
		return 2;
	}
	rc = nvl_ctrlr_connect(argv[1], NULL, &c);
	if (rc < 0) {
		fprintf(stderr, "connect: %s\n", nvl_strerror(rc));
		return 1;
	}
	nsid = nvl_ctrlr_default_nsid(c);
	if (nvl_ns_get_info(c, nsid, &ns) < 0 || nvl_qpair_create(c, NULL, &q1) < 0 ||
	    nvl_qpair_create(c, NULL, &q2) < 0) {
		fprintf(stderr, "setup: %s\n", nvl_ctrlr_last_error(c));
		nvl_ctrlr_disconnect(c);
		return 1;
	}
	printf("controller %u, namespace %u: %llu blocks of %u bytes\n", nvl_ctrlr_cntlid(c), nsid,
	       (unsigned long long)ns.num_blocks, ns.block_size);

	/* buffers in the data window: the target reads and writes them directly */
	buf = nvl_buf_alloc(c, ns.block_size * 8);
	snprintf(buf, ns.block_size, "hello from controller %u", nvl_ctrlr_cntlid(c));
	rc = nvl_write_sync(q1, nsid, buf, 0, 1, NVL_IO_FUA, &cpl);
	if (rc == 0) {
		memset(buf, 0, ns.block_size);
		rc = nvl_read_sync(q2, nsid, buf, 0, 1, &cpl);
	}
	if (rc < 0) {
		fprintf(stderr, "I/O: %s\n",
			rc == -EREMOTEIO ? nvl_status_str(nvl_cpl_status(&cpl)) : strerror(-rc));
	} else {
		printf("read back: \"%s\"\n", buf);
		/* asynchronous: 8 reads in flight, then wait for them */
		for (int i = 0; i < 8; i++)
			if (nvl_read(q1, nsid, buf + i * ns.block_size, (uint64_t)i, 1, 0, read_done,
				     &pending) == 0)
				pending++;
		while (pending > 0 && nvl_qpair_wait(q1, 1000) >= 0)
			;
		printf("8 asynchronous reads completed\n");
	}
	nvl_buf_free(c, buf);
	nvl_qpair_destroy(q2);
	nvl_qpair_destroy(q1);
	nvl_ctrlr_disconnect(c);
	return rc < 0 ? 1 : 0;
}
