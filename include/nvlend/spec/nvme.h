/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * \file
 * NVMe wire formats used by nvlend (NVM Express Base Specification 2.0, NVM
 * Command Set Specification 1.0, NVMe over Fabrics 1.1). All multi-byte
 * fields are little-endian on the wire; nvlend runs on little-endian hosts
 * only (checked below). Section numbers in comments refer to the Base spec.
 */
#ifndef NVLEND_SPEC_NVME_H
#define NVLEND_SPEC_NVME_H

#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "nvlend's wire structs assume a little-endian host"
#endif

#define NVL_NVME_NQN_LEN 256          /* NQN field size incl. NUL (5.15.2.1) */
#define NVL_NVME_IDENTIFY_SIZE 4096
#define NVL_NVME_PAGE_SIZE 4096       /* CC.MPS = 0: memory page size for PRPs */
#define NVL_NVME_NSID_ALL 0xffffffffu
#define NVL_NVME_DISCOVERY_NQN "nqn.2014-08.org.nvmexpress.discovery"

/* ---- Submission queue entry (4.2, Figure 88) ---------------------------- */

/** SGL descriptor (4.3.2): 16 bytes. */
struct nvl_nvme_sgl {
	uint64_t addr;
	uint32_t length;
	uint8_t rsvd[3];
	uint8_t type;           /**< bits 7:4 descriptor type, 3:0 subtype */
} __attribute__((packed));

#define NVL_NVME_SGL_TYPE_DATA_BLOCK 0x0
#define NVL_NVME_SGL_TYPE_BIT_BUCKET 0x1
#define NVL_NVME_SGL_TYPE_SEGMENT 0x2
#define NVL_NVME_SGL_TYPE_LAST_SEGMENT 0x3
#define NVL_NVME_SGL_TYPE_KEYED_DATA_BLOCK 0x4
#define NVL_NVME_SGL_TYPE_TRANSPORT_DATA_BLOCK 0x5
#define NVL_NVME_SGL_SUBTYPE_ADDRESS 0x0
#define NVL_NVME_SGL_SUBTYPE_OFFSET 0x1
#define NVL_NVME_SGL_SUBTYPE_TRANSPORT 0xa

struct nvl_nvme_cmd {
	uint8_t opc;
	uint8_t flags;          /**< bits 1:0 FUSE, 7:6 PSDT (0 PRP, 1/2 SGL) */
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2;
	uint32_t cdw3;
	uint64_t mptr;
	union {
		struct {
			uint64_t prp1;
			uint64_t prp2;
		} prp;
		struct nvl_nvme_sgl sgl1;
	} dptr;
	uint32_t cdw10;
	uint32_t cdw11;
	uint32_t cdw12;
	uint32_t cdw13;
	uint32_t cdw14;
	uint32_t cdw15;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvme_cmd) == 64, "SQE is 64 bytes");

#define NVL_NVME_CMD_FUSE_MASK 0x03
#define NVL_NVME_CMD_PSDT_SHIFT 6
#define NVL_NVME_PSDT_PRP 0
#define NVL_NVME_PSDT_SGL_MPTR_CONTIG 1
#define NVL_NVME_PSDT_SGL_MPTR_SGL 2

/* ---- Completion queue entry (4.6, Figure 91) ---------------------------- */

struct nvl_nvme_cpl {
	uint32_t cdw0;
	uint32_t cdw1;
	uint16_t sqhd;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status;        /**< bit 0 phase tag; 8:1 SC; 11:9 SCT; 13:12 CRD; 14 M; 15 DNR */
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvme_cpl) == 16, "CQE is 16 bytes");

/* status field helpers: `sc` is (SCT << 8) | SC */
#define NVL_NVME_STATUS_P 0x0001
#define NVL_NVME_STATUS_MORE 0x4000
#define NVL_NVME_STATUS_DNR 0x8000
#define NVL_NVME_SC_TO_STATUS(sct_sc) ((uint16_t)((((sct_sc) & 0x7ff) << 1)))
#define NVL_NVME_STATUS_SC(st) (((st) >> 1) & 0xff)
#define NVL_NVME_STATUS_SCT(st) (((st) >> 9) & 0x7)

/* Status codes as (SCT << 8) | SC (4.6.1.2). */
enum nvl_nvme_sc {
	/* generic (SCT 0) */
	NVL_NVME_SC_SUCCESS = 0x000,
	NVL_NVME_SC_INVALID_OPCODE = 0x001,
	NVL_NVME_SC_INVALID_FIELD = 0x002,
	NVL_NVME_SC_CID_CONFLICT = 0x003,
	NVL_NVME_SC_DATA_TRANSFER_ERROR = 0x004,
	NVL_NVME_SC_ABORTED_POWER_LOSS = 0x005,
	NVL_NVME_SC_INTERNAL = 0x006,
	NVL_NVME_SC_ABORT_REQUESTED = 0x007,
	NVL_NVME_SC_ABORTED_SQ_DELETION = 0x008,
	NVL_NVME_SC_ABORTED_FAILED_FUSED = 0x009,
	NVL_NVME_SC_ABORTED_MISSING_FUSED = 0x00a,
	NVL_NVME_SC_INVALID_NAMESPACE = 0x00b,
	NVL_NVME_SC_COMMAND_SEQUENCE_ERROR = 0x00c,
	NVL_NVME_SC_INVALID_SGL_SEG_DESCRIPTOR = 0x00d,
	NVL_NVME_SC_INVALID_NUM_SGL_DESCIRPTORS = 0x00e,
	NVL_NVME_SC_DATA_SGL_LENGTH_INVALID = 0x00f,
	NVL_NVME_SC_METADATA_SGL_LENGTH_INVALID = 0x010,
	NVL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID = 0x011,
	NVL_NVME_SC_INVALID_CMB_USE = 0x012,
	NVL_NVME_SC_INVALID_PRP_OFFSET = 0x013,
	NVL_NVME_SC_SGL_OFFSET_INVALID = 0x016,
	NVL_NVME_SC_HOSTID_INCONSISTENT = 0x018,
	NVL_NVME_SC_KEEP_ALIVE_EXPIRED = 0x019,
	NVL_NVME_SC_KEEP_ALIVE_INVALID = 0x01a,
	NVL_NVME_SC_ABORTED_PREEMPT = 0x01b,
	NVL_NVME_SC_NS_WRITE_PROTECTED = 0x020,
	NVL_NVME_SC_TRANSIENT_TRANSPORT_ERROR = 0x022,
	NVL_NVME_SC_LBA_OUT_OF_RANGE = 0x080,
	NVL_NVME_SC_CAPACITY_EXCEEDED = 0x081,
	NVL_NVME_SC_NS_NOT_READY = 0x082,
	NVL_NVME_SC_RESERVATION_CONFLICT = 0x083,
	/* command specific (SCT 1) */
	NVL_NVME_SC_CQ_INVALID = 0x100,
	NVL_NVME_SC_INVALID_QID = 0x101,
	NVL_NVME_SC_INVALID_QUEUE_SIZE = 0x102,
	NVL_NVME_SC_ABORT_LIMIT = 0x103,
	NVL_NVME_SC_AER_LIMIT = 0x105,
	NVL_NVME_SC_INVALID_VECTOR = 0x108,
	NVL_NVME_SC_INVALID_LOG_PAGE = 0x109,
	NVL_NVME_SC_INVALID_QUEUE_DELETION = 0x10c,
	NVL_NVME_SC_FEATURE_NOT_SAVEABLE = 0x10d,
	NVL_NVME_SC_FEATURE_NOT_CHANGEABLE = 0x10e,
	NVL_NVME_SC_FEATURE_NOT_NS_SPECIFIC = 0x10f,
	/* fabrics command specific (SCT 1, 0x80..) */
	NVL_NVME_SC_CONNECT_INCOMPATIBLE_FORMAT = 0x180,
	NVL_NVME_SC_CONNECT_CTRL_BUSY = 0x181,
	NVL_NVME_SC_CONNECT_INVALID_PARAM = 0x182,
	NVL_NVME_SC_CONNECT_RESTART_DISCOVERY = 0x183,
	NVL_NVME_SC_CONNECT_INVALID_HOST = 0x184,
	NVL_NVME_SC_INVALID_QUEUE_TYPE = 0x185,
	NVL_NVME_SC_DISCOVERY_RESTART = 0x190,
	NVL_NVME_SC_AUTH_REQUIRED = 0x191,
	/* media and data integrity (SCT 2) */
	NVL_NVME_SC_WRITE_FAULT = 0x280,
	NVL_NVME_SC_UNRECOVERED_READ = 0x281,
	NVL_NVME_SC_COMPARE_FAILURE = 0x285,
	NVL_NVME_SC_ACCESS_DENIED = 0x286,
	NVL_NVME_SC_DEALLOCATED_BLOCK = 0x287,
};

/* ---- Opcodes ------------------------------------------------------------ */

enum nvl_nvme_admin_opc {
	NVL_NVME_ADM_DELETE_SQ = 0x00,
	NVL_NVME_ADM_CREATE_SQ = 0x01,
	NVL_NVME_ADM_GET_LOG_PAGE = 0x02,
	NVL_NVME_ADM_DELETE_CQ = 0x04,
	NVL_NVME_ADM_CREATE_CQ = 0x05,
	NVL_NVME_ADM_IDENTIFY = 0x06,
	NVL_NVME_ADM_ABORT = 0x08,
	NVL_NVME_ADM_SET_FEATURES = 0x09,
	NVL_NVME_ADM_GET_FEATURES = 0x0a,
	NVL_NVME_ADM_ASYNC_EVENT = 0x0c,
	NVL_NVME_ADM_KEEP_ALIVE = 0x18,
	NVL_NVME_ADM_FABRICS = 0x7f,
};

enum nvl_nvme_io_opc {
	NVL_NVME_IO_FLUSH = 0x00,
	NVL_NVME_IO_WRITE = 0x01,
	NVL_NVME_IO_READ = 0x02,
	NVL_NVME_IO_COMPARE = 0x05,
	NVL_NVME_IO_WRITE_ZEROES = 0x08,
	NVL_NVME_IO_DSM = 0x09,
	NVL_NVME_IO_RESV_REGISTER = 0x0d,
	NVL_NVME_IO_RESV_REPORT = 0x0e,
	NVL_NVME_IO_RESV_ACQUIRE = 0x11,
	NVL_NVME_IO_RESV_RELEASE = 0x15,
	NVL_NVME_IO_FABRICS = 0x7f,
};

/* Read/Write cdw12 */
#define NVL_NVME_RW_NLB_MASK 0xffffu
#define NVL_NVME_RW_FUA (1u << 30)
#define NVL_NVME_RW_LR (1u << 31)
/* Write Zeroes cdw12 */
#define NVL_NVME_WZ_DEAC (1u << 25)
/* DSM cdw11 attributes */
#define NVL_NVME_DSM_IDR (1u << 0)
#define NVL_NVME_DSM_IDW (1u << 1)
#define NVL_NVME_DSM_AD (1u << 2)

/** Dataset Management range (NVM cmd set 3.2.3, Figure 39): 16 bytes. */
struct nvl_nvme_dsm_range {
	uint32_t attributes;
	uint32_t nlb;           /**< not 0's based */
	uint64_t slba;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvme_dsm_range) == 16, "DSM range");

/* ---- Identify (5.17) ---------------------------------------------------- */

enum nvl_nvme_cns {
	NVL_NVME_CNS_NS = 0x00,
	NVL_NVME_CNS_CTRLR = 0x01,
	NVL_NVME_CNS_ACTIVE_NS_LIST = 0x02,
	NVL_NVME_CNS_NS_ID_DESCRIPTORS = 0x03,
	NVL_NVME_CNS_IO_CMD_SET_NS = 0x05,
	NVL_NVME_CNS_IO_CMD_SET_CTRLR = 0x06,
	NVL_NVME_CNS_IO_CMD_SET_ACTIVE_NS_LIST = 0x07,
	NVL_NVME_CNS_IO_CMD_SET_INDEP_NS = 0x08,
	NVL_NVME_CNS_ALLOCATED_NS_LIST = 0x10,
	NVL_NVME_CNS_ALLOCATED_NS = 0x11,
	NVL_NVME_CNS_CTRLR_LIST_NS = 0x12,
	NVL_NVME_CNS_CTRLR_LIST = 0x13,
	NVL_NVME_CNS_IO_CMD_SET = 0x1c,
};

struct nvl_nvme_psd {
	uint16_t mp;
	uint8_t rsvd2;
	uint8_t flags;
	uint32_t enlat;
	uint32_t exlat;
	uint8_t rrt, rrl, rwt, rwl;
	uint16_t idlp;
	uint8_t ips;
	uint8_t rsvd19;
	uint16_t actp;
	uint8_t apws;
	uint8_t rsvd23[9];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvme_psd) == 32, "power state descriptor");

/** Identify Controller data structure (Figure 275). */
struct nvl_nvme_id_ctrl {
	uint16_t vid;
	uint16_t ssvid;
	char sn[20];
	char mn[40];
	char fr[8];
	uint8_t rab;
	uint8_t ieee[3];
	uint8_t cmic;
	uint8_t mdts;
	uint16_t cntlid;
	uint32_t ver;
	uint32_t rtd3r;
	uint32_t rtd3e;
	uint32_t oaes;
	uint32_t ctratt;
	uint16_t rrls;
	uint8_t rsvd102[9];
	uint8_t cntrltype;
	uint8_t fguid[16];
	uint16_t crdt1, crdt2, crdt3;
	uint8_t rsvd134[119];
	uint8_t nvmsr;
	uint8_t vwci;
	uint8_t mec;
	uint16_t oacs;
	uint8_t acl;
	uint8_t aerl;
	uint8_t frmw;
	uint8_t lpa;
	uint8_t elpe;
	uint8_t npss;
	uint8_t avscc;
	uint8_t apsta;
	uint16_t wctemp;
	uint16_t cctemp;
	uint16_t mtfa;
	uint32_t hmpre;
	uint32_t hmmin;
	uint8_t tnvmcap[16];
	uint8_t unvmcap[16];
	uint32_t rpmbs;
	uint16_t edstt;
	uint8_t dsto;
	uint8_t fwug;
	uint16_t kas;
	uint16_t hctma;
	uint16_t mntmt;
	uint16_t mxtmt;
	uint32_t sanicap;
	uint32_t hmminds;
	uint16_t hmmaxd;
	uint16_t nsetidmax;
	uint16_t endgidmax;
	uint8_t anatt;
	uint8_t anacap;
	uint32_t anagrpmax;
	uint32_t nanagrpid;
	uint32_t pels;
	uint16_t domainid;
	uint8_t rsvd358[10];
	uint8_t megcap[16];
	uint8_t rsvd384[128];
	uint8_t sqes;
	uint8_t cqes;
	uint16_t maxcmd;
	uint32_t nn;
	uint16_t oncs;
	uint16_t fuses;
	uint8_t fna;
	uint8_t vwc;
	uint16_t awun;
	uint16_t awupf;
	uint8_t icsvscc;
	uint8_t nwpc;
	uint16_t acwu;
	uint16_t ocfs;
	uint32_t sgls;
	uint32_t mnan;
	uint8_t maxdna[16];
	uint32_t maxcna;
	uint8_t rsvd564[204];
	char subnqn[256];
	uint8_t rsvd1024[768];
	/* fabrics only */
	uint32_t ioccsz;
	uint32_t iorcsz;
	uint16_t icdoff;
	uint8_t fcatt;
	uint8_t msdbd;
	uint16_t ofcs;
	uint8_t rsvd1806[242];
	struct nvl_nvme_psd psd[32];
	uint8_t vs[1024];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvme_id_ctrl) == 4096, "identify controller");
_Static_assert(__builtin_offsetof(struct nvl_nvme_id_ctrl, kas) == 320, "kas");
_Static_assert(__builtin_offsetof(struct nvl_nvme_id_ctrl, sqes) == 512, "sqes");
_Static_assert(__builtin_offsetof(struct nvl_nvme_id_ctrl, sgls) == 536, "sgls");
_Static_assert(__builtin_offsetof(struct nvl_nvme_id_ctrl, subnqn) == 768, "subnqn");
_Static_assert(__builtin_offsetof(struct nvl_nvme_id_ctrl, ioccsz) == 1792, "ioccsz");

/* id_ctrl bits */
#define NVL_NVME_CMIC_MULTI_PORT (1u << 0)
#define NVL_NVME_CMIC_MULTI_CTRL (1u << 1)
#define NVL_NVME_OAES_NS_ATTR (1u << 8)
#define NVL_NVME_OAES_DISC_LOG (1u << 31)
#define NVL_NVME_CTRATT_HOSTID128 (1u << 0)
#define NVL_NVME_CTRATT_TBKAS (1u << 6)
#define NVL_NVME_LPA_EXTENDED (1u << 2)
#define NVL_NVME_ONCS_COMPARE (1u << 0)
#define NVL_NVME_ONCS_DSM (1u << 2)
#define NVL_NVME_ONCS_WRITE_ZEROES (1u << 3)
#define NVL_NVME_ONCS_RESERVATIONS (1u << 5)
#define NVL_NVME_VWC_PRESENT (1u << 0)
#define NVL_NVME_VWC_NSID_FFFF_FLUSH (3u << 1)  /* broadcast flush supported */
#define NVL_NVME_SGLS_SUPPORTED (1u << 0)
#define NVL_NVME_SGLS_KEYED (1u << 2)
#define NVL_NVME_SGLS_OFFSET (1u << 20)
#define NVL_NVME_CNTRLTYPE_IO 1
#define NVL_NVME_CNTRLTYPE_DISCOVERY 2

struct nvl_nvme_lbaf {
	uint16_t ms;
	uint8_t lbads;          /**< log2 of the LBA data size */
	uint8_t rp;
} __attribute__((packed));

/** Identify Namespace data structure (NVM cmd set, Figure 97). */
struct nvl_nvme_id_ns {
	uint64_t nsze;
	uint64_t ncap;
	uint64_t nuse;
	uint8_t nsfeat;
	uint8_t nlbaf;
	uint8_t flbas;
	uint8_t mc;
	uint8_t dpc;
	uint8_t dps;
	uint8_t nmic;
	uint8_t rescap;
	uint8_t fpi;
	uint8_t dlfeat;
	uint16_t nawun;
	uint16_t nawupf;
	uint16_t nacwu;
	uint16_t nabsn;
	uint16_t nabo;
	uint16_t nabspf;
	uint16_t noiob;
	uint8_t nvmcap[16];
	uint16_t npwg, npwa, npdg, npda, nows;
	uint16_t mssrl;
	uint32_t mcl;
	uint8_t msrc;
	uint8_t rsvd81[11];
	uint32_t anagrpid;
	uint8_t rsvd96[3];
	uint8_t nsattr;
	uint16_t nvmsetid;
	uint16_t endgid;
	uint8_t nguid[16];
	uint8_t eui64[8];
	struct nvl_nvme_lbaf lbaf[64];
	uint8_t vs[3712];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvme_id_ns) == 4096, "identify namespace");
_Static_assert(__builtin_offsetof(struct nvl_nvme_id_ns, nguid) == 104, "nguid");
_Static_assert(__builtin_offsetof(struct nvl_nvme_id_ns, lbaf) == 128, "lbaf");

#define NVL_NVME_NSFEAT_THIN (1u << 0)
#define NVL_NVME_NMIC_SHARED (1u << 0)
/* rescap bits (Figure 97): persist through power loss + six types + ignore existing key */
#define NVL_NVME_RESCAP_PTPL (1u << 0)
#define NVL_NVME_RESCAP_ALL_TYPES (0x3fu << 1)
#define NVL_NVME_RESCAP_IEKEY (1u << 7)
#define NVL_NVME_DLFEAT_READ_ZEROES 0x01
#define NVL_NVME_DLFEAT_WZ_DEALLOC (1u << 3)

/* Namespace identification descriptor (Figure 276) */
#define NVL_NVME_NIDT_EUI64 0x1
#define NVL_NVME_NIDT_NGUID 0x2
#define NVL_NVME_NIDT_UUID 0x3
#define NVL_NVME_NIDT_CSI 0x4

/* ---- Log pages (5.16) --------------------------------------------------- */

enum nvl_nvme_lid {
	NVL_NVME_LOG_SUPPORTED = 0x00,
	NVL_NVME_LOG_ERROR = 0x01,
	NVL_NVME_LOG_SMART = 0x02,
	NVL_NVME_LOG_FW_SLOT = 0x03,
	NVL_NVME_LOG_CHANGED_NS = 0x04,
	NVL_NVME_LOG_CMD_EFFECTS = 0x05,
	NVL_NVME_LOG_DISCOVERY = 0x70,
	NVL_NVME_LOG_RESV_NOTIFICATION = 0x80,
};

/** Error Information log entry (Figure 197): 64 bytes. */
struct nvl_nvme_error_log {
	uint64_t error_count;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status;        /**< phase bit 0 + status field */
	uint16_t parm_error_location;
	uint64_t lba;
	uint32_t nsid;
	uint8_t vs;
	uint8_t trtype;
	uint8_t rsvd30[2];
	uint64_t cs;
	uint16_t trtype_spec;
	uint8_t rsvd42[22];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvme_error_log) == 64, "error log entry");

/** SMART / Health Information log (Figure 207): 512 bytes; 128-bit counters. */
struct nvl_nvme_smart_log {
	uint8_t critical_warning;
	uint16_t temperature;
	uint8_t avail_spare;
	uint8_t spare_thresh;
	uint8_t percent_used;
	uint8_t endu_grp_crit_warn;
	uint8_t rsvd7[25];
	uint64_t data_units_read[2];
	uint64_t data_units_written[2];
	uint64_t host_reads[2];
	uint64_t host_writes[2];
	uint64_t ctrl_busy_time[2];
	uint64_t power_cycles[2];
	uint64_t power_on_hours[2];
	uint64_t unsafe_shutdowns[2];
	uint64_t media_errors[2];
	uint64_t num_err_log_entries[2];
	uint32_t warning_temp_time;
	uint32_t critical_comp_time;
	uint16_t temp_sensor[8];
	uint32_t thm_temp1_trans_count;
	uint32_t thm_temp2_trans_count;
	uint32_t thm_temp1_total_time;
	uint32_t thm_temp2_total_time;
	uint8_t rsvd232[280];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvme_smart_log) == 512, "smart log");

/** Reservation Notification log (Figure 215): 64 bytes. */
struct nvl_nvme_resv_notification_log {
	uint64_t log_page_count;
	uint8_t type;
	uint8_t num_avail;
	uint8_t rsvd10[2];
	uint32_t nsid;
	uint8_t rsvd16[48];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvme_resv_notification_log) == 64, "resv notification log");

#define NVL_NVME_RESV_NOTIF_EMPTY 0
#define NVL_NVME_RESV_NOTIF_REGISTRATION_PREEMPTED 1
#define NVL_NVME_RESV_NOTIF_RESERVATION_RELEASED 2
#define NVL_NVME_RESV_NOTIF_RESERVATION_PREEMPTED 3

/* ---- Features (5.27.1) -------------------------------------------------- */

enum nvl_nvme_fid {
	NVL_NVME_FEAT_ARBITRATION = 0x01,
	NVL_NVME_FEAT_POWER_MGMT = 0x02,
	NVL_NVME_FEAT_TEMP_THRESHOLD = 0x04,
	NVL_NVME_FEAT_ERROR_RECOVERY = 0x05,
	NVL_NVME_FEAT_VOLATILE_WRITE_CACHE = 0x06,
	NVL_NVME_FEAT_NUMBER_OF_QUEUES = 0x07,
	NVL_NVME_FEAT_INTERRUPT_COALESCING = 0x08,
	NVL_NVME_FEAT_INTERRUPT_VECTOR_CONFIG = 0x09,
	NVL_NVME_FEAT_WRITE_ATOMICITY = 0x0a,
	NVL_NVME_FEAT_ASYNC_EVENT_CONFIG = 0x0b,
	NVL_NVME_FEAT_KEEP_ALIVE_TIMER = 0x0f,
	NVL_NVME_FEAT_HOST_IDENTIFIER = 0x81,
	NVL_NVME_FEAT_RESV_NOTIFICATION_MASK = 0x82,
	NVL_NVME_FEAT_RESV_PERSISTENCE = 0x83,
};
/* Volatile Write Cache feature, cdw11/cdw0 bit 0: Write Cache Enable (5.27.1.4) */
#define NVL_NVME_FEAT_VWC_WCE (1u << 0)

/* ---- Asynchronous events (5.2) ------------------------------------------ */

#define NVL_NVME_AER_TYPE_ERROR 0
#define NVL_NVME_AER_TYPE_SMART 1
#define NVL_NVME_AER_TYPE_NOTICE 2
#define NVL_NVME_AER_TYPE_IO_SPECIFIC 6
#define NVL_NVME_AER_NOTICE_NS_CHANGED 0x00
#define NVL_NVME_AER_NOTICE_DISCOVERY_CHANGED 0xf0
#define NVL_NVME_AER_IO_RESV_LOG 0x00
#define NVL_NVME_AER_ERROR_INVALID_DB 0x00
#define NVL_NVME_AER_ERROR_INVALID_DB_VALUE 0x01
/* AEC feature bits (5.27.1.7) */
#define NVL_NVME_AEC_NS_ATTR (1u << 8)
#define NVL_NVME_AEC_DISC_LOG (1u << 31)
/** cdw0 of an AER completion */
#define NVL_NVME_AER_CDW0(type, info, lid) \
	((uint32_t)(type) | ((uint32_t)(info) << 8) | ((uint32_t)(lid) << 16))

/* ---- Reservations (NVM cmd set 3.2.4-3.2.7; Base 8.19) ------------------ */

enum nvl_nvme_resv_type {
	NVL_NVME_RESV_NONE = 0,
	NVL_NVME_RESV_WRITE_EXCLUSIVE = 1,
	NVL_NVME_RESV_EXCLUSIVE_ACCESS = 2,
	NVL_NVME_RESV_WRITE_EXCLUSIVE_REG_ONLY = 3,
	NVL_NVME_RESV_EXCLUSIVE_ACCESS_REG_ONLY = 4,
	NVL_NVME_RESV_WRITE_EXCLUSIVE_ALL_REGS = 5,
	NVL_NVME_RESV_EXCLUSIVE_ACCESS_ALL_REGS = 6,
};

/* Register cdw10: RREGA 2:0, IEKEY 3, CPTPL 31:30 */
#define NVL_NVME_RESV_REGISTER_REGISTER 0
#define NVL_NVME_RESV_REGISTER_UNREGISTER 1
#define NVL_NVME_RESV_REGISTER_REPLACE 2
#define NVL_NVME_RESV_CPTPL_NO_CHANGE 0
#define NVL_NVME_RESV_CPTPL_CLEAR 2
#define NVL_NVME_RESV_CPTPL_PERSIST 3
/* Acquire cdw10: RACQA 2:0, IEKEY 3, RTYPE 15:8 */
#define NVL_NVME_RESV_ACQUIRE_ACQUIRE 0
#define NVL_NVME_RESV_ACQUIRE_PREEMPT 1
#define NVL_NVME_RESV_ACQUIRE_PREEMPT_ABORT 2
/* Release cdw10: RRELA 2:0, IEKEY 3, RTYPE 15:8 */
#define NVL_NVME_RESV_RELEASE_RELEASE 0
#define NVL_NVME_RESV_RELEASE_CLEAR 1

struct nvl_nvme_resv_register_data {
	uint64_t crkey;
	uint64_t nrkey;
} __attribute__((packed));

struct nvl_nvme_resv_acquire_data {
	uint64_t crkey;
	uint64_t prkey;
} __attribute__((packed));

/** Reservation Status data structure header (Figure 395/396). */
struct nvl_nvme_resv_status {
	uint32_t gen;
	uint8_t rtype;
	uint16_t regctl;
	uint8_t rsvd7[2];
	uint8_t ptpls;
	uint8_t rsvd10[14];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvme_resv_status) == 24, "resv status header");

struct nvl_nvme_registered_ctrlr {
	uint16_t cntlid;
	uint8_t rcsts;
	uint8_t rsvd3[5];
	uint64_t hostid;
	uint64_t rkey;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvme_registered_ctrlr) == 24, "registrant");

struct nvl_nvme_registered_ctrlr_ext {
	uint16_t cntlid;
	uint8_t rcsts;
	uint8_t rsvd3[5];
	uint64_t rkey;
	uint8_t hostid[16];
	uint8_t rsvd32[32];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvme_registered_ctrlr_ext) == 64, "registrant ext");

/* ---- Controller registers / properties (3.1.3) -------------------------- */

#define NVL_NVME_REG_CAP 0x00
#define NVL_NVME_REG_VS 0x08
#define NVL_NVME_REG_CC 0x14
#define NVL_NVME_REG_CSTS 0x1c
#define NVL_NVME_REG_NSSR 0x20

#define NVL_NVME_CC_EN (1u << 0)
#define NVL_NVME_CC_SHN_SHIFT 14
#define NVL_NVME_CC_SHN_MASK (3u << 14)
#define NVL_NVME_CSTS_RDY (1u << 0)
#define NVL_NVME_CSTS_CFS (1u << 1)
#define NVL_NVME_CSTS_SHST_SHIFT 2
#define NVL_NVME_CSTS_SHST_MASK (3u << 2)
#define NVL_NVME_CSTS_SHST_COMPLETE (2u << 2)
#define NVL_NVME_VS_2_0 0x00020000u
#define NVL_NVME_VS_1_3 0x00010300u

/* ---- Fabrics commands (NVMe-oF 1.1, 3.3) -------------------------------- */

enum nvl_nvmf_fctype {
	NVL_NVMF_FCTYPE_PROPERTY_SET = 0x00,
	NVL_NVMF_FCTYPE_CONNECT = 0x01,
	NVL_NVMF_FCTYPE_PROPERTY_GET = 0x04,
	NVL_NVMF_FCTYPE_AUTH_SEND = 0x05,
	NVL_NVMF_FCTYPE_AUTH_RECV = 0x06,
	NVL_NVMF_FCTYPE_DISCONNECT = 0x08,
};

/** Fabrics command capsule (generic view of the 64-byte SQE). */
struct nvl_nvmf_cmd {
	uint8_t opc;            /**< 0x7f */
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd5[19];
	uint8_t sgl1[16];
	uint8_t fabric_specific[24];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvmf_cmd) == 64, "fabrics cmd");

struct nvl_nvmf_connect_cmd {
	uint8_t opc;
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd5[19];
	struct nvl_nvme_sgl sgl1;
	uint16_t recfmt;
	uint16_t qid;
	uint16_t sqsize;        /**< 0's based */
	uint8_t cattr;
	uint8_t rsvd51;
	uint32_t kato;          /**< ms */
	uint8_t rsvd52[12];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvmf_connect_cmd) == 64, "connect cmd");
_Static_assert(__builtin_offsetof(struct nvl_nvmf_connect_cmd, qid) == 42, "connect qid");
_Static_assert(__builtin_offsetof(struct nvl_nvmf_connect_cmd, kato) == 48, "connect kato");

/** Connect command data (1024 bytes). */
struct nvl_nvmf_connect_data {
	uint8_t hostid[16];
	uint16_t cntlid;
	uint8_t rsvd18[238];
	char subnqn[256];
	char hostnqn[256];
	uint8_t rsvd768[256];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvmf_connect_data) == 1024, "connect data");

struct nvl_nvmf_property_cmd {
	uint8_t opc;
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd5[35];
	uint8_t attrib;         /**< bits 2:0 size: 0 = 4 bytes, 1 = 8 bytes */
	uint8_t rsvd41[3];
	uint32_t ofst;
	uint64_t value;         /**< Property Set only */
	uint8_t rsvd56[8];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvmf_property_cmd) == 64, "property cmd");

/* Connect response DW0 (NVMe-oF 1.1 Figure 21 / Base 2.0 6.3): 15:0 CNTLID,
 * AUTHREQ: ATR = authentication transaction required, ASCR = authentication
 * and secure channel required (not offered by nvlend). */
#define NVL_NVMF_CONNECT_AUTHREQ_ATR (1u << 17)
#define NVL_NVMF_CONNECT_AUTHREQ_ASCR (1u << 18)

/* ---- In-band authentication (Base 2.0 8.13, DH-HMAC-CHAP: TP 8006) ------ */

/** Fabrics Authentication Send (fctype 05h: TL = bytes to the controller) and
 *  Authentication Receive (fctype 06h: AL = bytes the host accepts). */
struct nvl_nvmf_auth_cmd {
	uint8_t opc;            /**< 0x7f */
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd5[19];
	struct nvl_nvme_sgl sgl1;
	uint8_t rsvd40;
	uint8_t spsp0;          /**< 01h for DH-HMAC-CHAP */
	uint8_t spsp1;          /**< 01h */
	uint8_t secp;           /**< E9h: NVMe in-band authentication */
	uint32_t al_tl;         /**< TL (Send) or AL (Receive) */
	uint8_t rsvd48[16];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvmf_auth_cmd) == 64, "auth cmd");
_Static_assert(__builtin_offsetof(struct nvl_nvmf_auth_cmd, secp) == 43, "auth secp");

#define NVL_NVMF_AUTH_SECP 0xe9
#define NVL_NVMF_AUTH_SPSP 0x01

/* Message header AUTH-Type and AUTH-Id (Base 2.0 8.13.5) */
#define NVL_NVMF_AUTH_TYPE_COMMON 0x00      /**< AUTH_Negotiate, AUTH_Failure1/2 */
#define NVL_NVMF_AUTH_TYPE_DHCHAP 0x01      /**< DH-HMAC-CHAP_* messages */
#define NVL_NVMF_AUTH_ID_NEGOTIATE 0x00
#define NVL_NVMF_AUTH_ID_CHALLENGE 0x01
#define NVL_NVMF_AUTH_ID_REPLY 0x02
#define NVL_NVMF_AUTH_ID_SUCCESS1 0x03
#define NVL_NVMF_AUTH_ID_SUCCESS2 0x04
#define NVL_NVMF_AUTH_ID_FAILURE2 0xf0
#define NVL_NVMF_AUTH_ID_FAILURE1 0xf1

#define NVL_NVMF_AUTH_PROTO_DHCHAP 0x01     /**< AUTHID in a protocol descriptor */
#define NVL_NVMF_AUTH_SCC_NONE 0x00         /**< SC_C: no secure channel concatenation */

/* Hash function identifiers (HashID) and DH group identifiers (DHgID) */
#define NVL_NVMF_AUTH_HASH_SHA256 0x01
#define NVL_NVMF_AUTH_HASH_SHA384 0x02
#define NVL_NVMF_AUTH_HASH_SHA512 0x03
#define NVL_NVMF_AUTH_DHGROUP_NULL 0x00
#define NVL_NVMF_AUTH_DHGROUP_2048 0x01     /* ffdhe2048 .. ffdhe8192: RFC 7919 */
#define NVL_NVMF_AUTH_DHGROUP_3072 0x02
#define NVL_NVMF_AUTH_DHGROUP_4096 0x03
#define NVL_NVMF_AUTH_DHGROUP_6144 0x04
#define NVL_NVMF_AUTH_DHGROUP_8192 0x05

/* AUTH_Failure reason code and explanations */
#define NVL_NVMF_AUTH_RC_FAILURE 0x01
#define NVL_NVMF_AUTH_RCE_FAILED 0x01               /**< authentication failed */
#define NVL_NVMF_AUTH_RCE_PROTOCOL_UNUSABLE 0x02
#define NVL_NVMF_AUTH_RCE_SCC_MISMATCH 0x03
#define NVL_NVMF_AUTH_RCE_HASH_UNUSABLE 0x04
#define NVL_NVMF_AUTH_RCE_DHGROUP_UNUSABLE 0x05
#define NVL_NVMF_AUTH_RCE_INCORRECT_PAYLOAD 0x06
#define NVL_NVMF_AUTH_RCE_INCORRECT_MESSAGE 0x07

/** Common header of every authentication message. */
struct nvl_nvmf_auth_hdr {
	uint8_t auth_type;
	uint8_t auth_id;
	uint8_t rsvd2[2];
	uint16_t t_id;          /**< transaction identifier, chosen by the host */
} __attribute__((packed));

/** Protocol descriptor of AUTH_Negotiate: 64 bytes. */
struct nvl_nvmf_auth_desc {
	uint8_t authid;         /**< 01h DH-HMAC-CHAP */
	uint8_t rsvd1;
	uint8_t halen;          /**< HashIDs in idlist[0..29] */
	uint8_t dhlen;          /**< DHgIDs in idlist[30..59] */
	uint8_t idlist[60];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvmf_auth_desc) == 64, "auth descriptor");
#define NVL_NVMF_AUTH_MAX_IDS 30

/** AUTH_Negotiate (host -> controller, Authentication Send). */
struct nvl_nvmf_auth_negotiate {
	struct nvl_nvmf_auth_hdr hdr;
	uint8_t sc_c;
	uint8_t napd;           /**< number of protocol descriptors that follow */
	struct nvl_nvmf_auth_desc desc[];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvmf_auth_negotiate) == 8, "auth negotiate");

/** DH-HMAC-CHAP_Challenge (controller -> host): hl bytes of C1, then dhvlen
 *  bytes of the controller's DH public value. */
struct nvl_nvmf_auth_challenge {
	struct nvl_nvmf_auth_hdr hdr;
	uint8_t hl;
	uint8_t rsvd7;
	uint8_t hashid;
	uint8_t dhgid;
	uint16_t dhvlen;
	uint32_t seqnum;        /**< S1 */
	uint8_t cval[];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvmf_auth_challenge) == 16, "auth challenge");

/** DH-HMAC-CHAP_Reply (host -> controller): hl bytes of R1, hl bytes of C2
 *  (meaningful if cvalid), dhvlen bytes of the host's DH public value. */
struct nvl_nvmf_auth_reply {
	struct nvl_nvmf_auth_hdr hdr;
	uint8_t hl;
	uint8_t rsvd7;
	uint8_t cvalid;         /**< 1: the host asks the controller to authenticate */
	uint8_t rsvd9;
	uint16_t dhvlen;
	uint32_t seqnum;        /**< S2 (0 when cvalid is 0) */
	uint8_t rval[];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvmf_auth_reply) == 16, "auth reply");

/** DH-HMAC-CHAP_Success1 (controller -> host): hl bytes of R2 if rvalid. */
struct nvl_nvmf_auth_success1 {
	struct nvl_nvmf_auth_hdr hdr;
	uint8_t hl;
	uint8_t rsvd7;
	uint8_t rvalid;
	uint8_t rsvd9[7];
	uint8_t rval[];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvmf_auth_success1) == 16, "auth success1");

/** DH-HMAC-CHAP_Success2 (host -> controller). */
struct nvl_nvmf_auth_success2 {
	struct nvl_nvmf_auth_hdr hdr;
	uint8_t rsvd6[10];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvmf_auth_success2) == 16, "auth success2");

/** AUTH_Failure1 (controller -> host) and AUTH_Failure2 (host -> controller). */
struct nvl_nvmf_auth_failure {
	struct nvl_nvmf_auth_hdr hdr;
	uint8_t rc;             /**< reason code: 01h */
	uint8_t rce;            /**< reason code explanation: NVL_NVMF_AUTH_RCE_* */
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvmf_auth_failure) == 8, "auth failure");

/** Discovery log page header (NVMe-oF 5.3): 1024 bytes, then entries. */
struct nvl_nvmf_discovery_log {
	uint64_t genctr;
	uint64_t numrec;
	uint16_t recfmt;
	uint8_t rsvd18[1006];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvmf_discovery_log) == 1024, "discovery log header");

struct nvl_nvmf_discovery_entry {
	uint8_t trtype;
	uint8_t adrfam;
	uint8_t subtype;
	uint8_t treq;
	uint16_t portid;
	uint16_t cntlid;
	uint16_t asqsz;
	uint16_t eflags;
	uint8_t rsvd12[20];
	char trsvcid[32];
	uint8_t rsvd64[192];
	char subnqn[256];
	char traddr[256];
	uint8_t tsas[256];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_nvmf_discovery_entry) == 1024, "discovery entry");

#define NVL_NVMF_TRTYPE_RDMA 1
#define NVL_NVMF_TRTYPE_FC 2
#define NVL_NVMF_TRTYPE_TCP 3
#define NVL_NVMF_TRTYPE_LOOP 254
#define NVL_NVMF_ADRFAM_IPV4 1
#define NVL_NVMF_ADRFAM_IPV6 2
#define NVL_NVMF_ADRFAM_INTRA_HOST 254
#define NVL_NVMF_SUBTYPE_DISCOVERY_REFERRAL 1
#define NVL_NVMF_SUBTYPE_NVME 2
#define NVL_NVMF_SUBTYPE_DISCOVERY_CURRENT 3
#define NVL_NVMF_TREQ_SECURE_CHANNEL_NOT_REQUIRED 0x2

#endif
