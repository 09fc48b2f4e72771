/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe/TCP target transport internals, shared by tcp.c (the transport's
 * face), tcp_conn.c (connections) and tcp_capsule.c (commands); the fuzz
 * harness includes all three. Ownership:
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
#include "util/util.h"

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
	TC_KEPT,            /* upgrade: stopped at a PDU boundary, socket and state in the
			     * fd store (tcp_keep.c); never touched again by this worker */
};

/* an upgrade's hand-over of a connection (tcp_keep.c) */
enum tcp_keep_phase {
	TK_NONE = 0,
	TK_STOPPING,        /* asked to stop: finish the PDU being received, drain */
	TK_RESTORED,        /* taken back from the store: waits for READY to read again */
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
	uint8_t peer_key[17];        /* address family + address (no port): the per-peer count */
	bool peer_counted;           /* holds one of that address's max_conns_per_peer */
	bool reserve_only;           /* accepted into the reserved slots: no Discovery Connect */
	uint64_t accepted_ns;

	/* negotiated (ICReq/ICResp, Connect) */
	bool hdgst, ddgst;
	uint32_t hpda_align;         /* bytes: alignment of our C2HData data */
	bool sqflow_off;             /* host disabled SQ flow control */
	uint16_t qid;
	uint32_t entries;            /* SQSIZE + 1 */
	uint32_t icd_max;
	uint32_t maxh2cdata;         /* what our ICResp told the host */
	uint16_t sqhd;

	struct tcp_ctrlr *ctl;
	struct nvl_nvmf_ctrlr *tc;
	struct nvl_reactor *placed;  /* I/O queue: its nvl_reactor_pick() */

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

	/* upgrade hand-over (tcp_keep.c) */
	enum tcp_keep_phase keep;
	uint32_t keep_id;            /* the controller's id in the store names */
	uint64_t keep_since;         /* restored: when the previous worker stopped reading it */
	TAILQ_ENTRY(tcp_conn) keep_link; /* reactor 0: restored, waiting for READY */

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
	/* taken back from the previous worker: its line is written once it reads again */
	bool kept_line;
	unsigned kept_nq, kept_held, kept_parts;
	TAILQ_ENTRY(tcp_ctrlr) link;
};

/* ---- shared by the transport's files ------------------------------------------------ */

struct tcp_opts {
	uint32_t max_queue_depth;
	uint32_t max_aq_depth;
	uint32_t max_io_qpairs;
	uint32_t icd;                /* in-capsule data bytes on I/O queues */
	uint32_t max_io_size;        /* a power of two of 4 KiB pages: MDTS of new controllers */
	uint32_t maxh2cdata;         /* io_unit_size */
	bool c2h_success;
	uint32_t sock_priority;
	uint32_t stall_ms;           /* ack_timeout: a peer that stops reading */
	uint32_t max_conns_per_peer; /* connections from one peer address, every state */
	uint32_t reserved_conns;     /* of TCP_MAX_CONNS, kept for hosts an NVM subsystem allows */
};

TAILQ_HEAD(tcp_conn_list, tcp_conn);
TAILQ_HEAD(tcp_ctrlr_list, tcp_ctrlr);

/* tcp.c */
extern struct tcp_opts g_tcp_opts;          /* nvmf_create_transport; reactor 0 writes */
extern struct tcp_conn_list g_tcp_pending;  /* reactor 0: not yet bound to a controller */
extern struct tcp_ctrlr_list g_tcp_ctrlrs;  /* reactor 0 */
extern unsigned g_tcp_nconns;               /* atomic: connections not yet freed */
extern struct nvl_transport_ops g_tcp_ops;
extern const struct nvl_nvme_queue_ops g_tcp_queue_ops;
/** reactor 0: free the controller once its queues and admin connection are gone */
void tcp_ctrlr_try_free(struct tcp_ctrlr *ctl);
/** reactor 0: close every queue of the controller, then free it */
void tcp_ctrlr_teardown(struct tcp_ctrlr *ctl, const char *why);

/* tcp_conn.c */
/** reactor 0: a host connected to the listener of la (takes fd; the transport's accept op) */
void tcp_conn_new(const struct nvl_listen_addr *la, int fd);
/** queue a PDU to send (the poller sends it) */
void tcp_tx_queue(struct tcp_conn *c, struct nvl_tcp_tx *tx);
/** end the connection now (its commands in flight drain, then it is freed) */
void tcp_conn_close(struct tcp_conn *c, const char *why);
/** the connection failed: admin and unbound ones close, an I/O queue asks reactor 0 */
void tcp_conn_error(struct tcp_conn *c, const char *why);
/** free a closing connection once nothing is in flight (from a message) */
void tcp_conn_try_free(struct tcp_conn *c);
/** reactor 0: close I/O queue qid of ctl */
void tcp_ioq_close(struct tcp_ctrlr *ctl, uint16_t qid);

/** register fd, poller and timer on the calling reactor */
int tcp_conn_attach(struct tcp_conn *c);
/** unregister them */
void tcp_conn_detach(struct tcp_conn *c);
/** on its reactor: an I/O queue starts serving there (attach, then read) */
void tcp_conn_attach_io(void *arg);
/** its service routine: send, receive, state changes */
int tcp_conn_service(struct tcp_conn *c, bool force_rx);
/** per-peer accounting of a connection taken back from the store */
void tcp_conn_count_peer(struct tcp_conn *c);

/* tcp_capsule.c */
extern const struct nvl_tcp_rx_ops g_tcp_rx_ops;
/** give a command slot back */
void tcp_req_release(struct tcp_req *r);
/** allocate n command slots (ttag = index) */
int tcp_conn_alloc_slots(struct tcp_conn *c, uint32_t n);
/** take slot ttag for a command as if its capsule (without in-capsule data)
 *  had just arrived: checked and mapped; \return 0, -EBUSY (slot taken),
 *  -EINVAL (the command does not prepare) */
int tcp_req_revive(struct tcp_conn *c, uint16_t ttag, const struct nvl_nvme_cmd *cmd,
		   struct tcp_req **out);
/** hand a revived command to the NVMe layer */
void tcp_req_run(struct tcp_conn *c, struct tcp_req *r);

/* tcp_keep.c: live connections across nvlend upgrade */
/** transport op: stop every connection at a PDU boundary and keep it, then done() */
void tcp_keep_suspend(void (*done)(void));
/** transport op: take back what a previous worker kept (reactor 0) */
void tcp_keep_restore(void);
/** the transport stops: kept controllers still waiting for their subsystem
 *  are let go (their names stay in the store; reactor 0) */
void tcp_keep_fini(void);
/** the connection's reactor: called by the service routine while keep == TK_STOPPING */
void tcp_keep_check(struct tcp_conn *c);
/** the connection's reactor: it closes (a queue asked to stop is then not kept) */
void tcp_keep_closing(struct tcp_conn *c);
/** an upgrade's hand-over began: new connections are refused (reactor 0) */
bool tcp_keep_suspended(void);
/** the parser is between two PDUs */
static inline bool
tcp_rx_at_boundary(const struct tcp_conn *c)
{
	return c->rx.state == NVL_TCP_RX_CH && c->rx.hgot == 0;
}
/** asked to stop and between two PDUs: read nothing more */
static inline bool
tcp_keep_stopped(const struct tcp_conn *c)
{
	return c->keep == TK_STOPPING && tcp_rx_at_boundary(c);
}

/** largest PDU data the parser accepts on a connection whose queue type is not known yet */
static inline uint32_t
tcp_parser_max_data(void)
{
	return NVL_MAX(NVL_MAX(g_tcp_opts.icd, (uint32_t)TCP_ADMIN_ICD), g_tcp_opts.maxh2cdata);
}

/** the connection still takes input */
static inline bool
tcp_conn_reading(const struct tcp_conn *c)
{
	return c->state == TC_IC_WAIT || c->state == TC_CONNECT_WAIT || c->state == TC_ACTIVE;
}

#endif
