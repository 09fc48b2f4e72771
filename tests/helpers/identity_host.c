/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A host that picks its own identity, for tests/functional/security_host_identity.sh:
 *
 *   identity_host URI HOSTNQN HOSTID write LBA TEXT
 *       Connects as HOSTNQN with host identifier HOSTID (32 hex digits,
 *       dashes allowed), writes TEXT (zero-padded to one block) at LBA of the
 *       URI's namespace.
 *
 * Prints "connected" or "refused: <reason>", then "write ok" or
 * "write failed: <status>". Exit: 0 written, 1 the write failed with an
 * NVMe status, 3 the connection was refused, 2 usage or setup errors.
 */
#include "nvlend/nvlend.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
parse_hostid(const char *s, uint8_t id[16])
{
	unsigned n = 0;

	for (; *s && n < 32; s++) {
		int v;

		if (*s == '-')
			continue;
		if (!isxdigit((unsigned char)*s))
			return -EINVAL;
		v = isdigit((unsigned char)*s) ? *s - '0' : tolower((unsigned char)*s) - 'a' + 10;
		id[n / 2] = (uint8_t)(n % 2 ? id[n / 2] | v : v << 4);
		n++;
	}
	return n == 32 && *s == '\0' ? 0 : -EINVAL;
}

struct done {
	bool done;
	struct nvl_nvme_cpl cpl;
};

static void
io_cb(void *arg, const struct nvl_nvme_cpl *cpl)
{
	struct done *d = arg;

	d->cpl = *cpl;
	d->done = true;
}

int
main(int argc, char **argv)
{
	struct nvl_ctrlr_opts o;
	struct nvl_ctrlr *c = NULL;
	struct nvl_qpair *qp = NULL;
	struct nvl_ns_info ni;
	struct done d = { 0 };
	uint32_t nsid;
	uint64_t lba;
	void *buf;
	int rc;

	if (argc != 7 || strcmp(argv[4], "write") != 0) {
		fprintf(stderr, "usage: identity_host URI HOSTNQN HOSTID write LBA TEXT\n");
		return 2;
	}
	nvl_ctrlr_opts_default(&o);
	o.hostnqn = argv[2];
	o.window_bytes = 2u << 20;
	if (parse_hostid(argv[3], o.hostid) < 0) {
		fprintf(stderr, "bad host identifier '%s'\n", argv[3]);
		return 2;
	}
	lba = strtoull(argv[5], NULL, 0);
	rc = nvl_ctrlr_connect(argv[1], &o, &c);
	if (rc < 0) {
		printf("refused: %s\n", c ? nvl_ctrlr_last_error(c) : strerror(-rc));
		return 3;
	}
	printf("connected\n");
	nsid = nvl_ctrlr_default_nsid(c);
	if (nsid == 0 || nvl_ns_get_info(c, nsid, &ni) < 0 || nvl_qpair_create(c, NULL, &qp) < 0) {
		fprintf(stderr, "setup failed: %s\n", nvl_ctrlr_last_error(c));
		nvl_ctrlr_disconnect(c);
		return 2;
	}
	buf = nvl_buf_alloc(c, ni.block_size);
	if (buf == NULL) {
		nvl_ctrlr_disconnect(c);
		return 2;
	}
	memset(buf, 0, ni.block_size);
	memcpy(buf, argv[6], strnlen(argv[6], ni.block_size));
	rc = nvl_write(qp, nsid, buf, lba, 1, 0, io_cb, &d);
	while (rc == 0 && !d.done)
		if (nvl_qpair_wait(qp, 10000) <= 0)
			rc = -ETIMEDOUT;
	if (rc == 0 && NVL_NVME_STATUS_SC(d.cpl.status) == 0 &&
	    NVL_NVME_STATUS_SCT(d.cpl.status) == 0) {
		printf("write ok\n");
	} else {
		printf("write failed: %s\n",
		       rc < 0 ? strerror(-rc)
			      : nvl_status_str(
					(uint16_t)(NVL_NVME_STATUS_SCT(d.cpl.status) << 8 |
						   NVL_NVME_STATUS_SC(d.cpl.status))));
		rc = 1;
	}
	nvl_buf_free(c, buf);
	nvl_qpair_destroy(qp);
	nvl_ctrlr_disconnect(c);
	return rc == 0 ? 0 : 1;
}
