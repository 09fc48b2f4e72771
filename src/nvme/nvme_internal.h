/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared between the files of src/nvme only. */
#ifndef NVL_NVME_INTERNAL_H
#define NVL_NVME_INTERNAL_H

#include "nvme/nvme.h"
#include "util/log.h"

NVL_LOG_DECLARE_COMPONENT(nvme);

void nvme_admin_execute(struct nvl_nvme_req *req);
void nvme_io_execute(struct nvl_nvme_req *req);
void nvme_fabrics_property(struct nvl_nvme_req *req);
uint16_t nvme_resv_check(struct nvl_nvme_ns *ns, struct nvl_nvme_ctrlr *c, bool write);
void nvme_resv_execute(struct nvl_nvme_req *req);
void nvme_ctrlr_add_error(struct nvl_nvme_ctrlr *c, const struct nvl_nvme_req *req,
			  uint16_t status, uint64_t lba);
void nvme_aer_flush(struct nvl_nvme_ctrlr *c);
void nvme_aer_unmask(struct nvl_nvme_ctrlr *c, uint8_t type);
struct nvl_nvme_ctrlr_stats *nvme_ctrlr_stats(struct nvl_nvme_ctrlr *c);
int nvme_ptpl_save(struct nvl_nvme_ns *ns);

static inline uint64_t
nvme_cmd_slba(const struct nvl_nvme_cmd *cmd)
{
	return (uint64_t)cmd->cdw10 | ((uint64_t)cmd->cdw11 << 32);
}

static inline uint32_t
nvme_cmd_nlb(const struct nvl_nvme_cmd *cmd)
{
	return (cmd->cdw12 & NVL_NVME_RW_NLB_MASK) + 1;
}

#endif
