/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/TCP PDU framing shared by the target transport (tcp.c), the
 * initiator queue pair (src/host/tcp_hostq.c, used by libnvlend and the nvme_tcp
 * bdev): an incremental receive parser that validates every common-header
 * field before trusting it, checks header and data digests, and lands
 * payload either from a staging buffer or straight into the caller's I/O
 * buffers; and encoders for headers, digests and termination requests.
 *
 * No allocation, no threads: a struct nvl_tcp_rx / nvl_tcp_txq belongs to
 * one connection and is driven by that connection's owner only. The only
 * system call is nvl_tcp_txq_flush()'s non-blocking sendmsg().
 */
#ifndef NVL_PROTO_NVME_TCP_H
#define NVL_PROTO_NVME_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "nvlend/spec/nvme_tcp.h"

#define NVL_TCP_RX_SINK_IOV 16
#define NVL_TCP_TX_IOV 20

/** A fatal protocol error: what a termination request reports. */
struct nvl_tcp_err {
	uint16_t fes;           /**< enum nvl_tcp_fes */
	uint32_t fei;           /**< byte offset of the bad field (or 0) */
	const char *why;        /**< for the log */
};

enum nvl_tcp_rx_state {
	NVL_TCP_RX_CH = 0,      /**< common header */
	NVL_TCP_RX_PSH,         /**< rest of the header and its digest */
	NVL_TCP_RX_PAD,         /**< padding up to PDO */
	NVL_TCP_RX_DATA,
	NVL_TCP_RX_DDGST,
	NVL_TCP_RX_ERROR,       /**< a fatal error was reported; nothing more is parsed */
};

struct nvl_tcp_rx;

struct nvl_tcp_rx_ops {
	/** The whole header arrived (digest checked, common fields valid).
	 *  Validate the PDU-specific fields; for a PDU with data call
	 *  nvl_tcp_rx_set_sink() (else the data is read and dropped).
	 *  \return 0, or -1 with err filled (fatal). */
	int (*on_header)(void *ctx, struct nvl_tcp_rx *rx, struct nvl_tcp_err *err);
	/** The whole PDU arrived; ddgst_ok is false if its data digest did not
	 *  match (not fatal by itself: the command fails).
	 *  \return 0 to go on, 1 to stop parsing after this PDU (the rest stays
	 *  unconsumed), -1 with err filled (fatal). */
	int (*on_pdu)(void *ctx, struct nvl_tcp_rx *rx, bool ddgst_ok, struct nvl_tcp_err *err);
};

struct nvl_tcp_rx {
	/* configuration: set by the owner, hdgst/ddgst/align after IC exchange */
	bool host;              /**< we are the host: accept controller-to-host PDUs */
	bool hdgst, ddgst;      /**< negotiated digests (never on IC and TermReq PDUs) */
	uint32_t align;         /**< required PDO alignment of PDUs with data, bytes */
	uint32_t max_data;      /**< largest data part of any PDU */
	bool ic_done;           /**< IC PDUs are over; ICReq/ICResp now out of sequence */

	/* state of the PDU being received */
	enum nvl_tcp_rx_state state;
	union {
		struct nvl_tcp_common_hdr ch;
		uint8_t raw[NVL_TCP_MAX_HLEN + NVL_TCP_DIGEST_LEN];
	} hdr;
	uint32_t hgot, hneed;   /**< header bytes received / expected (+ digest) */
	uint32_t pad_left;
	uint32_t data_len, data_got;
	bool has_ddgst;
	struct iovec sink[NVL_TCP_RX_SINK_IOV];
	int sinkcnt, sidx;
	size_t soff;
	uint32_t crc;
	uint8_t dd[NVL_TCP_DIGEST_LEN];
	uint32_t ddgot;
	uint64_t pdus;          /**< PDUs completed (statistics) */
};

/** One queued transmission: its iovecs go out in order, then done(owner, tx). */
struct nvl_tcp_tx {
	struct iovec iov[NVL_TCP_TX_IOV];
	int iovcnt;
	size_t len, sent;
	bool queued;
	void (*done)(void *owner, struct nvl_tcp_tx *tx);
	TAILQ_ENTRY(nvl_tcp_tx) link;
};

struct nvl_tcp_txq {
	TAILQ_HEAD(, nvl_tcp_tx) q;
	size_t bytes;           /**< queued and not yet sent */
};

void nvl_tcp_txq_init(struct nvl_tcp_txq *q);
/** Queue tx (iov/iovcnt/done filled; tx not queued already). */
void nvl_tcp_txq_push(struct nvl_tcp_txq *q, struct nvl_tcp_tx *tx);
static inline bool
nvl_tcp_txq_empty(const struct nvl_tcp_txq *q)
{
	return TAILQ_EMPTY(&q->q);
}
/** Send what the socket takes (sendmsg scatter-gather, MSG_DONTWAIT), calling
 *  done() of each fully sent tx. \return bytes sent, or -1 (errno set) on a
 *  socket error. */
ssize_t nvl_tcp_txq_flush(struct nvl_tcp_txq *q, int fd, void *owner);
/** Unqueue everything, calling done() of each. */
void nvl_tcp_txq_drop(struct nvl_tcp_txq *q, void *owner);
/** Remove one tx without calling done(). */
void nvl_tcp_txq_remove(struct nvl_tcp_txq *q, struct nvl_tcp_tx *tx);

/** Reset rx for a new connection (role, alignment and limits). */
void nvl_tcp_rx_init(struct nvl_tcp_rx *rx, bool host, uint32_t max_data);

/**
 * Parse len bytes from a staging buffer, copying payload into the sinks
 * the owner sets. \return bytes consumed (less than len only when on_pdu
 * asked to stop), or -1 after a fatal error (err filled; stays failed).
 */
ssize_t nvl_tcp_rx_feed(struct nvl_tcp_rx *rx, const uint8_t *buf, size_t len,
			const struct nvl_tcp_rx_ops *ops, void *ctx, struct nvl_tcp_err *err);

/**
 * The data part being received, when it has a sink: up to max iovecs
 * covering its remaining bytes, so the caller can readv() straight into
 * the I/O buffer. \return the number of iovecs (0: receive into staging),
 * with *len their total.
 */
int nvl_tcp_rx_direct(const struct nvl_tcp_rx *rx, struct iovec *iov, int max, size_t *len);
/** n bytes (at most the *len of nvl_tcp_rx_direct) landed in those iovecs.
 *  \return as nvl_tcp_rx_feed's on_pdu: 0, 1 (stop), or -1 (fatal). */
int nvl_tcp_rx_direct_done(struct nvl_tcp_rx *rx, size_t n, const struct nvl_tcp_rx_ops *ops,
			   void *ctx, struct nvl_tcp_err *err);

/** For on_header: where the data part goes (iovecs covering data_len bytes). */
void nvl_tcp_rx_set_sink(struct nvl_tcp_rx *rx, const struct iovec *iov, int iovcnt);

/** Header length of a PDU type, 0 if the type is unknown. */
uint8_t nvl_tcp_pdu_hlen(uint8_t type);
/** Name of a PDU type, for logs. */
const char *nvl_tcp_pdu_name(uint8_t type);
/** Name of a fatal error status, for logs. */
const char *nvl_tcp_fes_str(uint16_t fes);

/**
 * Fill a common header: flags, hlen, pdo, plen for a PDU with data_len
 * bytes of data, header/data digests as negotiated, and the data aligned
 * to `align` bytes (the peer's PDA). \return the padding bytes to send
 * between the header (+digest) and the data.
 */
uint32_t nvl_tcp_ch_init(struct nvl_tcp_common_hdr *ch, uint8_t type, bool hdgst, bool ddgst,
			 uint32_t data_len, uint32_t align);
/** Store the header digest right after the header (hlen bytes). */
void nvl_tcp_hdgst_set(void *hdr);
/** CRC32C digest of len bytes spread over iovecs (wire form). */
uint32_t nvl_tcp_ddgst(const struct iovec *iov, int iovcnt, size_t len);
/**
 * Build a termination request (c2h: controller to host) reporting fes/fei
 * and echoing up to 128 bytes of the offending header. out must hold 152
 * bytes. \return its length.
 */
size_t nvl_tcp_term_build(uint8_t *out, bool c2h, uint16_t fes, uint32_t fei,
			  const void *bad_hdr, size_t bad_len);

#endif
