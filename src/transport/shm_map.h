/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Translate a command's data pointer (PRP1/PRP2 + PRP lists, or an SGL) whose
 * addresses are offsets into a host's data window into iovecs over the
 * controller's mapping of that window. Every address and length is checked
 * against the window; lists that live in the (host-writable) window are
 * copied to private memory before they are validated and used.
 */
#ifndef NVL_SHM_MAP_H
#define NVL_SHM_MAP_H

#include <stdint.h>

#include "nvme/nvme.h"

#define NVL_SHM_MAX_SGL_DESC 64

/**
 * Fill req->iov/iovcnt/data_len for `len` bytes. req->iov points to
 * req->iov_inline when it fits, else to heap memory the caller frees with
 * nvl_shm_unmap_data().
 * \return 0, or an NVMe status (SCT<<8|SC, DNR in bit 15) describing what is
 *         wrong: PRP offset invalid, data transfer error (address outside the
 *         window), SGL descriptor type invalid, data SGL length invalid, ...
 */
uint16_t nvl_shm_map_data(struct nvl_nvme_req *req, uint8_t *base, uint64_t size, uint32_t len);
void nvl_shm_unmap_data(struct nvl_nvme_req *req);

#endif
