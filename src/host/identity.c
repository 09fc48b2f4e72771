/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Names decoded once for every face: the default host identifier and NQN
 * (one identity per machine), the host identifier of a named host,
 * namespace information from Identify data, and NVMe status names. Pure
 * functions (the machine id is read from /etc/machine-id).
 */
#include "host/host_internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void
hostid_set_version(uint8_t id[16])
{
	/* an RFC 4122 version 4 / variant 1 shape, as UUID host identifiers have */
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

void
host_default_hostid(uint8_t id[16])
{
	char mid[64] = "";
	int fd = open("/etc/machine-id", O_RDONLY | O_CLOEXEC);
	uint32_t h[4];

	if (fd >= 0) {
		ssize_t n = read(fd, mid, sizeof(mid) - 1);

		mid[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	/* one identity per machine: hosts are machines, not processes */
	h[0] = nvl_crc32c(mid, strlen(mid));
	h[1] = nvl_crc32c_update(h[0], "nvlend-host", 11);
	h[2] = nvl_crc32c_update(h[1], mid, strlen(mid));
	h[3] = nvl_crc32c_update(h[2], "id", 2);
	memcpy(id, h, 16);
	hostid_set_version(id);
}

void
host_hostid_from_nqn(const char *nqn, uint8_t id[16])
{
	static const char pfx[] = "nqn.2014-08.org.nvmexpress:uuid:";
	uint32_t h[4];

	if (strncmp(nqn, pfx, sizeof(pfx) - 1) == 0) {
		const char *u = nqn + sizeof(pfx) - 1;
		unsigned n = 0;

		for (; *u && n < 16; u++) {
			unsigned v;

			if (*u == '-')
				continue;
			if (sscanf(u, "%2x", &v) != 1)
				break;
			id[n++] = (uint8_t)v;
			u++;
		}
		if (n == 16)
			return;
	}
	h[0] = nvl_crc32c(nqn, strlen(nqn));
	for (int i = 1; i < 4; i++)
		h[i] = nvl_crc32c_update(h[i - 1], nqn, strlen(nqn));
	memcpy(id, h, 16);
	hostid_set_version(id);
}

void
host_hostnqn_from_id(const uint8_t id[16], char *nqn, size_t len)
{
	snprintf(nqn, len,
		 "nqn.2014-08.org.nvmexpress:uuid:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11],
		 id[12], id[13], id[14], id[15]);
}

void
host_ns_info_from_id(const struct nvl_nvme_id_ns *id, uint32_t nsid, struct nvl_ns_info *out)
{
	uint8_t lbads = id->lbaf[id->flbas & 0xf].lbads;

	memset(out, 0, sizeof(*out));
	out->nsid = nsid;
	/* 512 B .. 64 KiB: other formats are not usable as block devices here */
	out->block_size = lbads >= 9 && lbads <= 16 ? 1u << lbads : 0;
	out->num_blocks = id->nsze;
	memcpy(out->nguid, id->nguid, 16);
	memcpy(out->eui64, id->eui64, 8);
	out->read_only = id->nsattr & 1;
	out->shared = id->nmic & 1;
	out->rescap = id->rescap;
}

void
host_ns_uuid_from_desc(const uint8_t *d, uint8_t uuid[16])
{
	/* Namespace Identification Descriptors (Base 5.17.2.3): type, length,
	 * 2 reserved bytes, then the identifier; a zero type ends the list */
	for (size_t off = 0; off + 4 <= 4096 && d[off];) {
		uint8_t type = d[off], l = d[off + 1];

		if (off + 4 + l > 4096)
			break;
		if (type == NVL_NVME_NIDT_UUID && l == 16)
			memcpy(uuid, d + off + 4, 16);
		off += 4 + l;
	}
}

NVL_EXPORT const char *
nvl_status_str(uint16_t sc)
{
	switch (sc & 0x7ff) {
	case 0x000: return "success";
	case 0x001: return "invalid opcode";
	case 0x002: return "invalid field in command";
	case 0x004: return "data transfer error";
	case 0x006: return "internal error";
	case 0x007: return "abort requested";
	case 0x008: return "aborted: SQ deleted";
	case 0x00b: return "invalid namespace or format";
	case 0x00c: return "command sequence error";
	case 0x00d: return "invalid SGL segment descriptor";
	case 0x00f: return "data SGL length invalid";
	case 0x011: return "SGL descriptor type invalid";
	case 0x013: return "PRP offset invalid";
	case 0x020: return "namespace write protected";
	case 0x080: return "LBA out of range";
	case 0x081: return "capacity exceeded";
	case 0x083: return "reservation conflict";
	case 0x100: return "completion queue invalid";
	case 0x101: return "invalid queue identifier";
	case 0x102: return "invalid queue size";
	case 0x108: return "invalid interrupt vector";
	case 0x10c: return "invalid queue deletion";
	case 0x182: return "connect: invalid parameters";
	case 0x184: return "connect: host not allowed";
	case 0x285: return "compare failure";
	default: return "error";
	}
}
