/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Wire formats of the vhost-user protocol (QEMU docs/interop/vhost-user.rst)
 * and of the split virtqueue it shares with the guest (VIRTIO 1.2 section
 * 2.7). Everything is little-endian on the wire; nvlend runs on
 * little-endian hosts only (x86-64, arm64), so fields are used as they are.
 * Pure declarations: no code, no allocation, safe to include anywhere.
 */
#ifndef NVLEND_SPEC_VHOST_USER_H
#define NVLEND_SPEC_VHOST_USER_H

#include <stdint.h>

/* ---- message header (section "Message Specification") ------------------ */

#define NVL_VHOST_USER_VERSION 0x1u
#define NVL_VHOST_USER_VERSION_MASK 0x3u
#define NVL_VHOST_USER_FLAG_REPLY (1u << 2)
#define NVL_VHOST_USER_FLAG_NEED_REPLY (1u << 3)

struct nvl_vhost_user_hdr {
	uint32_t request;
	uint32_t flags;   /**< bits 0-1 version, bit 2 reply, bit 3 need_reply */
	uint32_t size;    /**< payload bytes that follow */
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_vhost_user_hdr) == 12, "vhost-user header is 12 bytes");

/* Front-end message types ("Front-end message types"). */
enum nvl_vhost_user_request {
	NVL_VHOST_USER_NONE = 0,
	NVL_VHOST_USER_GET_FEATURES = 1,
	NVL_VHOST_USER_SET_FEATURES = 2,
	NVL_VHOST_USER_SET_OWNER = 3,
	NVL_VHOST_USER_RESET_OWNER = 4,
	NVL_VHOST_USER_SET_MEM_TABLE = 5,
	NVL_VHOST_USER_SET_LOG_BASE = 6,
	NVL_VHOST_USER_SET_LOG_FD = 7,
	NVL_VHOST_USER_SET_VRING_NUM = 8,
	NVL_VHOST_USER_SET_VRING_ADDR = 9,
	NVL_VHOST_USER_SET_VRING_BASE = 10,
	NVL_VHOST_USER_GET_VRING_BASE = 11,
	NVL_VHOST_USER_SET_VRING_KICK = 12,
	NVL_VHOST_USER_SET_VRING_CALL = 13,
	NVL_VHOST_USER_SET_VRING_ERR = 14,
	NVL_VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	NVL_VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	NVL_VHOST_USER_GET_QUEUE_NUM = 17,
	NVL_VHOST_USER_SET_VRING_ENABLE = 18,
	NVL_VHOST_USER_SEND_RARP = 19,
	NVL_VHOST_USER_NET_SET_MTU = 20,
	NVL_VHOST_USER_SET_BACKEND_REQ_FD = 21,
	NVL_VHOST_USER_IOTLB_MSG = 22,
	NVL_VHOST_USER_SET_VRING_ENDIAN = 23,
	NVL_VHOST_USER_GET_CONFIG = 24,
	NVL_VHOST_USER_SET_CONFIG = 25,
	NVL_VHOST_USER_CREATE_CRYPTO_SESSION = 26,
	NVL_VHOST_USER_CLOSE_CRYPTO_SESSION = 27,
	NVL_VHOST_USER_POSTCOPY_ADVISE = 28,
	NVL_VHOST_USER_POSTCOPY_LISTEN = 29,
	NVL_VHOST_USER_POSTCOPY_END = 30,
	NVL_VHOST_USER_GET_INFLIGHT_FD = 31,
	NVL_VHOST_USER_SET_INFLIGHT_FD = 32,
	NVL_VHOST_USER_GPU_SET_SOCKET = 33,
	NVL_VHOST_USER_RESET_DEVICE = 34,
	NVL_VHOST_USER_VRING_KICK = 35,
	NVL_VHOST_USER_GET_MAX_MEM_SLOTS = 36,
	NVL_VHOST_USER_ADD_MEM_REG = 37,
	NVL_VHOST_USER_REM_MEM_REG = 38,
	NVL_VHOST_USER_SET_STATUS = 39,
	NVL_VHOST_USER_GET_STATUS = 40,
	NVL_VHOST_USER_MAX_REQUEST = 41,
};

/* Virtio feature bits negotiated with GET/SET_FEATURES (VIRTIO 1.2 section 6). */
#define NVL_VIRTIO_F_NOTIFY_ON_EMPTY 24
#define NVL_VHOST_F_LOG_ALL 26                  /* vhost: log every write to guest memory */
#define NVL_VIRTIO_F_ANY_LAYOUT 27
#define NVL_VIRTIO_RING_F_INDIRECT_DESC 28
#define NVL_VIRTIO_RING_F_EVENT_IDX 29
#define NVL_VHOST_USER_F_PROTOCOL_FEATURES 30   /* vhost-user only */
#define NVL_VIRTIO_F_VERSION_1 32
#define NVL_VIRTIO_F_ACCESS_PLATFORM 33
#define NVL_VIRTIO_F_RING_PACKED 34
#define NVL_VIRTIO_F_IN_ORDER 35

/* Protocol feature bits ("Protocol features"). */
#define NVL_VHOST_USER_PROTOCOL_F_MQ 0
#define NVL_VHOST_USER_PROTOCOL_F_LOG_SHMFD 1
#define NVL_VHOST_USER_PROTOCOL_F_RARP 2
#define NVL_VHOST_USER_PROTOCOL_F_REPLY_ACK 3
#define NVL_VHOST_USER_PROTOCOL_F_NET_MTU 4
#define NVL_VHOST_USER_PROTOCOL_F_BACKEND_REQ 5
#define NVL_VHOST_USER_PROTOCOL_F_CROSS_ENDIAN 6
#define NVL_VHOST_USER_PROTOCOL_F_CRYPTO_SESSION 7
#define NVL_VHOST_USER_PROTOCOL_F_PAGEFAULT 8
#define NVL_VHOST_USER_PROTOCOL_F_CONFIG 9
#define NVL_VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD 10
#define NVL_VHOST_USER_PROTOCOL_F_HOST_NOTIFIER 11
#define NVL_VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD 12
#define NVL_VHOST_USER_PROTOCOL_F_RESET_DEVICE 13
#define NVL_VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS 14
#define NVL_VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS 15
#define NVL_VHOST_USER_PROTOCOL_F_STATUS 16

/* ---- payloads ----------------------------------------------------------- */

/** A vring state: SET_VRING_NUM, SET/GET_VRING_BASE, SET_VRING_ENABLE. */
struct nvl_vhost_vring_state {
	uint32_t index;
	uint32_t num;
};
_Static_assert(sizeof(struct nvl_vhost_vring_state) == 8, "vring state is 8 bytes");

/** SET_VRING_ADDR: ring addresses in the front-end's virtual address space. */
struct nvl_vhost_vring_addr {
	uint32_t index;
	uint32_t flags;          /**< bit 0: log the used ring (VHOST_VRING_F_LOG) */
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
};
_Static_assert(sizeof(struct nvl_vhost_vring_addr) == 40, "vring address is 40 bytes");
#define NVL_VHOST_VRING_F_LOG 0x1u

/** SET_LOG_BASE with VHOST_USER_PROTOCOL_F_LOG_SHMFD ("Log description"): the log
 *  is the fd sent with the message, mmap_size bytes from mmap_offset. */
struct nvl_vhost_user_log {
	uint64_t mmap_size;
	uint64_t mmap_offset;
};
_Static_assert(sizeof(struct nvl_vhost_user_log) == 16, "log description is 16 bytes");

/* Dirty log ("Dirty page logging"; the Linux vhost log format): one bit per
 * 4 KiB page of guest physical address, page p at bit (p % 8) of byte p / 8
 * (the little-endian layout of QEMU's u64 log chunks), set atomically. */
#define NVL_VHOST_LOG_PAGE_SHIFT 12
#define NVL_VHOST_LOG_PAGE ((uint64_t)1 << NVL_VHOST_LOG_PAGE_SHIFT)

/* SET_VRING_KICK/CALL/ERR carry a u64: bits 0-7 the vring index, bit 8 set
 * when no file descriptor comes with the message (polling mode). */
#define NVL_VHOST_USER_VRING_IDX_MASK 0xffu
#define NVL_VHOST_USER_VRING_NOFD_MASK (1u << 8)

/** One region of SET_MEM_TABLE; its fd arrives in the same message. */
struct nvl_vhost_memory_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
};
_Static_assert(sizeof(struct nvl_vhost_memory_region) == 32, "memory region is 32 bytes");

/* Without VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS at most 8 regions. */
#define NVL_VHOST_MEMORY_BASELINE_NREGIONS 8

struct nvl_vhost_memory {
	uint32_t nregions;
	uint32_t padding;
	struct nvl_vhost_memory_region regions[NVL_VHOST_MEMORY_BASELINE_NREGIONS];
};
_Static_assert(sizeof(struct nvl_vhost_memory) == 8 + 8 * 32, "memory table is 264 bytes");

/** GET_CONFIG / SET_CONFIG. */
#define NVL_VHOST_USER_MAX_CONFIG_SIZE 256
#define NVL_VHOST_USER_CONFIG_HDR_SIZE 12
struct nvl_vhost_user_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[NVL_VHOST_USER_MAX_CONFIG_SIZE];
};
_Static_assert(sizeof(struct nvl_vhost_user_config) == 12 + 256, "config payload is 268 bytes");

/** GET_INFLIGHT_FD / SET_INFLIGHT_FD ("Inflight description"). QEMU sends the
 *  naturally aligned struct, 24 bytes with tail padding; 20 carry meaning. */
struct nvl_vhost_inflight_msg {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
};
_Static_assert(sizeof(struct nvl_vhost_inflight_msg) == 24, "inflight description is 24 bytes");
#define NVL_VHOST_INFLIGHT_MSG_MIN 20

/*
 * Shared inflight region for split virtqueues ("Inflight I/O tracking"). One
 * queue region per virtqueue, each made of this header followed by one
 * descriptor state per ring entry. We lay queue regions out as libvhost-user
 * does (each padded to 64 bytes), so a region could move between back-ends.
 */
struct nvl_vhost_inflight_desc {
	uint8_t inflight;    /**< 1 while the request whose head is this index is in flight */
	uint8_t padding[5];
	uint16_t next;       /**< previous head of the last used-ring batch */
	uint64_t counter;    /**< submission order */
};
_Static_assert(sizeof(struct nvl_vhost_inflight_desc) == 16, "DescStateSplit is 16 bytes");

struct nvl_vhost_inflight_split {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct nvl_vhost_inflight_desc desc[];
};
_Static_assert(sizeof(struct nvl_vhost_inflight_split) == 16, "QueueRegionSplit header: 16 bytes");

#define NVL_VHOST_INFLIGHT_ALIGN 64
#define NVL_VHOST_INFLIGHT_VERSION 1

/* ---- split virtqueue (VIRTIO 1.2 section 2.7) ---------------------------- */

#define NVL_VRING_DESC_F_NEXT 1
#define NVL_VRING_DESC_F_WRITE 2
#define NVL_VRING_DESC_F_INDIRECT 4
#define NVL_VRING_AVAIL_F_NO_INTERRUPT 1
#define NVL_VRING_USED_F_NO_NOTIFY 1
#define NVL_VRING_MAX_SIZE 32768     /* Queue Size is at most 32768 (2.7) */

struct nvl_vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct nvl_vring_desc) == 16, "virtq_desc is 16 bytes");

struct nvl_vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];     /* then: uint16_t used_event (VIRTIO_RING_F_EVENT_IDX) */
};
_Static_assert(sizeof(struct nvl_vring_avail) == 4, "virtq_avail header is 4 bytes");

struct nvl_vring_used_elem {
	uint32_t id;
	uint32_t len;
};
_Static_assert(sizeof(struct nvl_vring_used_elem) == 8, "virtq_used_elem is 8 bytes");

struct nvl_vring_used {
	uint16_t flags;
	uint16_t idx;
	struct nvl_vring_used_elem ring[]; /* then: uint16_t avail_event */
};
_Static_assert(sizeof(struct nvl_vring_used) == 4, "virtq_used header is 4 bytes");

/* Alignment the driver guarantees (2.7 "Virtqueue Alignment"). */
#define NVL_VRING_DESC_ALIGN 16
#define NVL_VRING_AVAIL_ALIGN 2
#define NVL_VRING_USED_ALIGN 4

#endif
