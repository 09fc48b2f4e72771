/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-blk wire formats (VIRTIO 1.2 section 5.2): feature bits, the
 * device configuration layout, request header, discard/write-zeroes
 * segments and status codes. Little-endian; declarations only.
 */
#ifndef NVLEND_SPEC_VIRTIO_BLK_H
#define NVLEND_SPEC_VIRTIO_BLK_H

#include <stddef.h>
#include <stdint.h>

/* Feature bits (5.2.3). */
#define NVL_VIRTIO_BLK_F_SIZE_MAX 1
#define NVL_VIRTIO_BLK_F_SEG_MAX 2
#define NVL_VIRTIO_BLK_F_GEOMETRY 4
#define NVL_VIRTIO_BLK_F_RO 5
#define NVL_VIRTIO_BLK_F_BLK_SIZE 6
#define NVL_VIRTIO_BLK_F_FLUSH 9
#define NVL_VIRTIO_BLK_F_TOPOLOGY 10
#define NVL_VIRTIO_BLK_F_CONFIG_WCE 11
#define NVL_VIRTIO_BLK_F_MQ 12
#define NVL_VIRTIO_BLK_F_DISCARD 13
#define NVL_VIRTIO_BLK_F_WRITE_ZEROES 14
#define NVL_VIRTIO_BLK_F_LIFETIME 15
#define NVL_VIRTIO_BLK_F_SECURE_ERASE 16

/* Device configuration layout (5.2.4). */
struct nvl_virtio_blk_config {
	uint64_t capacity;                 /* in 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads;
		uint8_t sectors;
	} geometry;
	uint32_t blk_size;
	struct {
		uint8_t physical_block_exp;
		uint8_t alignment_offset;
		uint16_t min_io_size;
		uint32_t opt_io_size;
	} topology;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
	uint32_t max_secure_erase_sectors;
	uint32_t max_secure_erase_seg;
	uint32_t secure_erase_sector_alignment;
} __attribute__((packed));
_Static_assert(sizeof(struct nvl_virtio_blk_config) == 72, "virtio_blk_config is 72 bytes");
_Static_assert(offsetof(struct nvl_virtio_blk_config, blk_size) == 20, "blk_size at 20");
_Static_assert(offsetof(struct nvl_virtio_blk_config, num_queues) == 34, "num_queues at 34");
_Static_assert(offsetof(struct nvl_virtio_blk_config, max_discard_sectors) == 36,
	       "max_discard_sectors at 36");
_Static_assert(offsetof(struct nvl_virtio_blk_config, write_zeroes_may_unmap) == 56,
	       "write_zeroes_may_unmap at 56");

/* Request types (5.2.6). */
#define NVL_VIRTIO_BLK_T_IN 0
#define NVL_VIRTIO_BLK_T_OUT 1
#define NVL_VIRTIO_BLK_T_FLUSH 4
#define NVL_VIRTIO_BLK_T_GET_ID 8
#define NVL_VIRTIO_BLK_T_GET_LIFETIME 10
#define NVL_VIRTIO_BLK_T_DISCARD 11
#define NVL_VIRTIO_BLK_T_WRITE_ZEROES 13
#define NVL_VIRTIO_BLK_T_SECURE_ERASE 14

/* Status byte, the last device-writable byte of every request. */
#define NVL_VIRTIO_BLK_S_OK 0
#define NVL_VIRTIO_BLK_S_IOERR 1
#define NVL_VIRTIO_BLK_S_UNSUPP 2

#define NVL_VIRTIO_BLK_SECTOR_SIZE 512
#define NVL_VIRTIO_BLK_ID_BYTES 20

/** The device-readable header at the start of every request. */
struct nvl_virtio_blk_outhdr {
	uint32_t type;
	uint32_t ioprio;       /* "reserved" in the spec; Linux puts the I/O priority */
	uint64_t sector;
};
_Static_assert(sizeof(struct nvl_virtio_blk_outhdr) == 16, "request header is 16 bytes");

/** One segment of DISCARD / WRITE_ZEROES data. */
struct nvl_virtio_blk_discard_write_zeroes {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};
_Static_assert(sizeof(struct nvl_virtio_blk_discard_write_zeroes) == 16, "dwz segment is 16 bytes");
#define NVL_VIRTIO_BLK_WZ_FLAG_UNMAP 0x1u

#endif
