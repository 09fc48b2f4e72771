/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/TCP target transport internals (tcp.c only; the unit test and the
 * fuzz harness include tcp.c and reach these). Ownership:
 *  - struct tcp_conn: one TCP connection = one queue pair. It lives on one
 *    reactor: reactor 0 until its Fabrics Connect (and for life for admin
 *    queues), then the reactor chosen for its I/O queue. Only that reactor
 *    touches it, except reactor 0 reading counters for RPC queries.
 *  - struct tcp_ctrlr: the transport's side of a controller (its admin
 *    connection and I/O queue table); reactor 0 only.
 */
#ifndef NVL_TRANSPORT_TCP_INTERNAL_H
#define NVL_TRANSPORT_TCP_INTERNAL_H

#include "nvmf/nvmf.h"
#include "proto/nvme_tcp.h"

#include <sys/queue.h>

#define TCP_MAX_IO_QUEUES 128           /* per controller */
#define TCP_MAX_CONNS 1024              /* per daemon, every state */
#define TCP_STAGE_SIZE (16 * 1024)      /* receive staging buffer per connection */
#define TCP_ADMIN_ICD 8192              /* hosts assume 8 KiB in-capsule data on admin queues */
#define TCP_ADMIN_MAX_XFER (1u << 20)   /* largest admin data transfer */
#define TCP_CONNECT_TIMEOUT_NS (10ULL * 1000000000ULL)
#define TCP_HDR_BUF 160                 /* data PDU header + digest + padding to 128-byte PDA */
#define TCP_DIRECT_MIN 512              /* receive data straight into buffers from this size */

struct tcp_conn;
struct tcp_req;

enum tcp_req_state {
	TR_FREE = 0,
	TR_RX_ICD,          /* receiving its in-capsule data */
	TR_WAIT_H2C,        /* R2T sent, receiving H2CData */
	TR_EXEC,            /* in the NVMe layer */
	TR_TX,              /* response queued */
};

struct tcp_req {
	struct nvl_nvme_req nvme;
	struct tcp_conn *conn;
	enum tcp_req_state state;
	uint16_t ttag;               /* its slot: R2T transfer tag */
	uint8_t dir;                 /* enum nvl_nvme_xfer */
	uint32_t len;                /* data length of the command */
	uint32_t icd_len;            /* in-capsule bytes received */
	uint32_t h2c_off;            /* next H2CData offset expected */
	uint32_t r2t_end;            /* end of the R2T window being received */
	uint16_t early_status;       /* found before execution: complete with it */
	bool data_error;             /* a data digest failed: transient transport error */
	uint8_t *buf;
	uint32_t buf_cap;
	struct nvl_tcp_tx tx;
	uint8_t hdr[TCP_HDR_BUF];    /* C2HData or R2T header (+digest, padding) */
	uint8_t resp[sizeof(struct nvl_tcp_resp) + NVL_TCP_DIGEST_LEN];
	uint8_t ddgst[NVL_TCP_DIGEST_LEN];
	struct tcp_req *next_free;
};

enum tcp_conn_state {
	TC_IC_WAIT = 0,     /* accepted: waiting for the ICReq */
	TC_CONNECT_WAIT,    /* ICResp sent: waiting for the Fabrics Connect */
	TC_MIGRATING,       /* an I/O queue on its way to its reactor */
	TC_ACTIVE,
	TC_FAILED,          /* I/O queue with a fatal error: reactor 0 will close it */
	TC_CLOSING,         /* no more input; draining commands in flight */
};

struct tcp_ctrlr;

struct tcp_conn {
	int fd;
	enum tcp_conn_state state;
	struct nvl_reactor *reactor;
	struct nvl_fdh *fdh;
	uint32_t fd_events;
	struct nvl_poller *poller;
	struct nvl_timer *timer;
	struct nvl_listen_addr listener;
	char peer[64];
	uint64_t accepted_ns;

	/* negotiated (ICReq/ICResp, Connect) */
	bool hdgst, ddgst;
	uint32_t hpda_align;         /* bytes: alignment of our C2HData data */
	bool sqflow_off;             /* host disabled SQ flow control */
	uint16_t qid;
	uint32_t entries;            /* SQSIZE + 1 */
	uint32_t icd_max;
	uint16_t sqhd;

	struct tcp_ctrlr *ctl;
	struct nvl_nvmf_ctrlr *tc;
	/* DH-HMAC-CHAP state of this queue (src/nvmf/auth.h): the controller's for
	 * the admin queue, the queue's own (freed with it) for an I/O queue */
	struct nvl_nvme_auth *auth;

	/* command slots */
	struct tcp_req *reqs;
	uint32_t nreqs;
	struct tcp_req *free_reqs;
	uint32_t busy;               /* slots in use */
	uint32_t executing;          /* slots inside the NVMe layer */

	/* receive */
	struct nvl_tcp_rx rx;
	struct tcp_req *rx_req;      /* the request the current PDU's data belongs to */
	uint8_t *stage;
	uint32_t stage_off, stage_len;
	uint64_t last_rx_ns;

	/* transmit */
	struct nvl_tcp_txq txq;
	uint64_t last_tx_ns;         /* last send progress, or when the queue became non-empty */
	bool close_after_flush;
	bool terminated;             /* a termination request was sent or received */
	bool free_scheduled;
	const char *fail_why;        /* TC_FAILED: what happened (static string) */
	struct nvl_tcp_tx aux_tx;        /* ICResp or termination request */
	uint8_t aux_buf[sizeof(struct nvl_tcp_term_req) + NVL_TCP_TERM_MAX_DATA];

	/* statistics */
	uint64_t cmds, bytes_in, bytes_out, r2ts, c2h_success;

	TAILQ_ENTRY(tcp_conn) link;  /* reactor 0: connections not yet bound to a controller */
};

struct tcp_ctrlr {
	struct nvl_nvmf_ctrlr *tc;
	struct tcp_conn *admin;
	struct tcp_conn *ioq[TCP_MAX_IO_QUEUES + 1];
	struct nvl_reactor *ioq_reactor[TCP_MAX_IO_QUEUES + 1];
	unsigned nio_alive;          /* I/O connections not yet freed */
	bool closing;
	bool in_try_free;
	TAILQ_ENTRY(tcp_ctrlr) link;
};

#endif
