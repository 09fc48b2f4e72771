/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * \file
 * The nvlend shm transport (DESIGN.md section 5): a local host reaches an
 * NVMe controller through shared memory, the software analogue of a PCIe/NTB
 * window.
 *
 * Control channel: a Unix SOCK_SEQPACKET socket (the listener's traddr). The
 * host sends CONNECT (subsystem NQN, host NQN, host identifier, keep-alive,
 * data window size) and receives CONNECT_RESP with the controller id and one
 * file descriptor: its **data window**, a shared memory region both sides
 * map. Every PRP or SGL address in a command is an offset into that window;
 * the controller checks each against the window's size and never reaches
 * beyond it. Admin commands (Identify, Get Log Page, Get/Set Features,
 * Create/Delete I/O SQ/CQ, Keep Alive, ...) travel over the socket as
 * ADMIN_CMD/ADMIN_CPL messages carrying the 64-byte SQE / 16-byte CQE; the
 * controller executes them on the host's behalf (the dis_nvme "manager").
 * The controller is enabled when CONNECT succeeds (the manager did the reset
 * and enable), so the host may create I/O queues at once — unless
 * CONNECT_RESP carries AUTHREQ.ATR: then the host authenticates first
 * (DH-HMAC-CHAP with Fabrics Authentication Send/Receive sent as ADMIN_CMD;
 * their data, like any admin command's, lives in the data window) and every
 * other admin command is refused with Authentication Required until it did.
 *
 * Queues: Create I/O Completion Queue (PC=1; PRP1 ignored: the controller
 * allocates) answers with two descriptors: the CQ region and, if IEN, the
 * eventfd of interrupt vector IV (one eventfd per vector, the MSI-X
 * analogue). Create I/O Submission Queue answers with the SQ region and the
 * SQ's doorbell eventfd. Regions (and the window) are anonymous memfds of
 * the daemon, sealed against shrinking and growing (F_SEAL_SHRINK |
 * F_SEAL_GROW) before they are sent, so a host cannot make the controller's
 * accesses fault. A queue region's page 0 holds the doorbells, each on its
 * own cache line; the ring follows at offset 4096.
 *
 * Doorbells and sleeping ("delayed on" adaptive polling on both sides):
 *  - host submits: write SQEs, store-release sq.tail; full barrier; if
 *    sq.need_kick is set, exchange it to 0 and if it was 1 write the doorbell
 *    eventfd. The controller sets need_kick (then barrier, then re-reads
 *    tail) before it sleeps.
 *  - controller completes: write the CQE with the status word last
 *    (store-release, phase tag toggles on every wrap); barrier; if
 *    cq.irq_armed, exchange to 0 and if it was 1 write the vector's eventfd.
 *    The host sets irq_armed (then barrier, then re-checks the phase at its
 *    head) before it sleeps on the eventfd.
 *  - host consumes CQEs and store-releases cq.head (the CQ head doorbell).
 *  - each side publishes the CPU it runs on (sq.host_cpu, sq.ctrl_cpu, on
 *    cache lines it writes anyway): a spinner yields its CPU only when the
 *    other side runs on the same one, and spins with pause otherwise.
 * A tail or head doorbell value outside the ring is an invalid doorbell
 * write: the controller raises the error event and tears the controller
 * down.
 */
#ifndef NVLEND_SPEC_SHM_H
#define NVLEND_SPEC_SHM_H

#include <stdint.h>

#include "nvlend/spec/nvme.h"

#define NVL_SHM_MAGIC 0x534c564eu        /* "NVLS" */
#define NVL_SHM_VERSION 1
#define NVL_SHM_RING_OFFSET 4096u        /* rings start after the doorbell page */
#define NVL_SHM_SQ_MAGIC 0x51534c4eu     /* "NLSQ" */
#define NVL_SHM_CQ_MAGIC 0x51434c4eu     /* "NLCQ" */
#define NVL_SHM_MAX_MSG 4096u

enum nvl_shm_msg_type {
	NVL_SHM_MSG_CONNECT = 1,
	NVL_SHM_MSG_CONNECT_RESP = 2,
	NVL_SHM_MSG_ADMIN_CMD = 3,
	NVL_SHM_MSG_ADMIN_CPL = 4,
	NVL_SHM_MSG_DISCONNECT = 5,
	/** open a pre-provisioned function (docs/functions.md) instead of
	 *  CONNECT: no NQNs, answered by CONNECT_RESP */
	NVL_SHM_MSG_OPEN_FN = 6,
};

struct nvl_shm_msg_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;          /**< enum nvl_shm_msg_type */
	uint32_t len;           /**< whole message, header included */
	uint32_t rsvd;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_shm_msg_hdr) == 16, "shm msg header");

struct nvl_shm_connect {
	struct nvl_shm_msg_hdr hdr;
	char subnqn[NVL_NVME_NQN_LEN];   /**< NUL-terminated */
	char hostnqn[NVL_NVME_NQN_LEN];  /**< NUL-terminated */
	uint8_t hostid[16];
	uint32_t kato_ms;                /**< 0 = no keep-alive timeout */
	uint32_t rsvd;
	uint64_t window_bytes;           /**< requested data window, multiple of 4096 */
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_shm_connect) == 16 + 512 + 16 + 16, "shm connect");

struct nvl_shm_connect_resp {
	struct nvl_shm_msg_hdr hdr;
	uint16_t status;                 /**< NVMe status (SCT<<8 | SC), 0 = connected */
	uint16_t cntlid;
	uint16_t max_io_queues;
	uint16_t max_queue_entries;      /**< per I/O queue (CAP.MQES + 1) */
	uint64_t window_bytes;           /**< granted window (1 fd attached) */
	uint32_t max_vectors;            /**< interrupt vectors 0 .. max_vectors-1 */
	uint32_t reason;                 /**< enum nvl_shm_refusal when status != 0 */
	char message[212];               /**< reason when refused */
	/** when connected: NVL_NVMF_CONNECT_AUTHREQ_ATR if the host must run
	 *  DH-HMAC-CHAP (Authentication Send/Receive as ADMIN_CMDs, Base 2.0
	 *  8.13) before any other admin command is accepted */
	uint32_t authreq;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_shm_connect_resp) == 256, "shm connect resp");

/**
 * OPEN_FN: on a function's endpoint (nvme_controller_create's socket) a
 * consumer finds the controller already there, the way a driver finds a
 * PCIe function: subsystem, host identity, controller id, queue count and
 * MDTS were fixed when the function was made. The answer is CONNECT_RESP as
 * for CONNECT (max_vectors: the function's interrupt vectors); one consumer
 * at a time (a second gets NVL_SHM_REFUSED_BUSY with the holder's pid in
 * the message). CONNECT on a function endpoint, and OPEN_FN on a plain
 * listener, are refused with NVL_SHM_REFUSED_INVALID.
 */
struct nvl_shm_open_fn {
	struct nvl_shm_msg_hdr hdr;
	uint32_t kato_ms;                /**< 0 = no keep-alive timeout */
	uint32_t rsvd;
	uint64_t window_bytes;           /**< requested data window, multiple of 4096 */
	uint8_t rsvd2[32];
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_shm_open_fn) == 64, "shm open fn");

enum nvl_shm_refusal {
	NVL_SHM_REFUSED_OTHER = 0,
	NVL_SHM_REFUSED_NO_SUBSYSTEM = 1,
	NVL_SHM_REFUSED_HOST = 2,           /**< host (or listener) not allowed */
	NVL_SHM_REFUSED_RESOURCES = 3,
	NVL_SHM_REFUSED_INVALID = 4,
	NVL_SHM_REFUSED_CREDENTIALS = 5,    /**< host NQN bound to another uid/gid (SO_PEERCRED) */
	NVL_SHM_REFUSED_NOT_LISTENING = 6,  /**< the subsystem exists but not on this socket */
	NVL_SHM_REFUSED_BUSY = 7,           /**< OPEN_FN: the function has a consumer */
};

struct nvl_shm_admin_cmd {
	struct nvl_shm_msg_hdr hdr;
	struct nvl_nvme_cmd sqe;
} __attribute__((packed));

struct nvl_shm_admin_cpl {
	struct nvl_shm_msg_hdr hdr;
	struct nvl_nvme_cpl cqe;         /**< descriptors attached per the command */
} __attribute__((packed));

/** Page 0 of an SQ region. */
struct nvl_shm_sq_page {
	uint32_t magic;
	uint16_t qid;
	uint16_t cqid;
	uint32_t entries;
	uint32_t rsvd0;
	uint8_t pad0[48];
	uint32_t tail;                   /**< host writes: the SQ tail doorbell */
	uint32_t host_cpu;               /**< host writes: CPU it last submitted from */
	uint8_t pad1[56];
	uint32_t need_kick;              /**< controller sets before sleeping */
	uint8_t pad2[60];
	uint32_t head;                   /**< controller publishes its SQ head */
	uint32_t ctrl_cpu;               /**< controller writes: CPU polling this SQ */
	uint8_t pad3[56];
} __attribute__((packed, aligned(64)));
_Static_assert(sizeof(struct nvl_shm_sq_page) == 256, "sq page");

/** Page 0 of a CQ region. */
struct nvl_shm_cq_page {
	uint32_t magic;
	uint16_t qid;
	uint16_t iv;
	uint32_t entries;
	uint32_t flags;                  /**< bit 0: interrupts enabled */
	uint8_t pad0[48];
	uint32_t head;                   /**< host writes: the CQ head doorbell */
	uint8_t pad1[60];
	uint32_t irq_armed;              /**< host sets before sleeping */
	uint8_t pad2[60];
} __attribute__((packed, aligned(64)));
_Static_assert(sizeof(struct nvl_shm_cq_page) == 192, "cq page");

#endif
