/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the receive side of a vhost-user connection, the part of
 * vu_recv() that does not need a socket (vhost_rx_want / vhost_rx_feed): how the
 * byte stream is cut into header and payload, the payload bound, fds arriving
 * with any read of a message (too many, control data cut), the peer closing
 * mid-message. Each complete message goes to vhost_dev_handle_msg() against
 * the fake device, as vu_conn_cb() does.
 *
 * The input is a list of reads: [ctl][n - 1][n bytes], n capped at what the
 * message still wants (a socket read never returns more). ctl bits 0-1: that
 * many fds come with the read, memfds or eventfds (bit 2); bit 3: nine fds,
 * more than a message may carry; bit 4: the kernel cut the control data;
 * bit 5: the read returns 0 (the peer closed). The receive path must never
 * crash, leak an fd or read past its buffers.
 */
#include "function/vhost_user.c"
#include "function/vhost_dev.c"

#include <sys/eventfd.h>

#include "fuzz/vhost_msg/fake_dev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vhost_dev d;
	unsigned nreads = 0;

	fz_dev_init(&d);
	while (size >= 2 && nreads++ < 512) {
		uint8_t ctl = data[0];
		size_t n = (size_t)data[1] + 1, nfds = (ctl & 8) ? 9 : ctl & 3;
		int fds[9];
		void *buf;
		int rc;

		data += 2;
		size -= 2;
		n = NVL_MIN(n, NVL_MIN(size, vhost_rx_want(&d, &buf)));
		if (ctl & 32)
			n = 0;
		memcpy(buf, data, n);
		data += n;
		size -= n;
		for (size_t i = 0; i < nfds; i++)
			fds[i] = (ctl & 4) ? eventfd(0, EFD_CLOEXEC) : dup(g_memfd);
		rc = vhost_rx_feed(&d, n, fds, nfds, ctl & 16);
		if (rc == 1)
			rc = vhost_dev_handle_msg(&d, &d.rx_hdr, d.rx_payload, d.rx_fds, d.rx_nfds);
		else if (rc == 0)
			continue;
		rx_reset(&d);
		if (rc < 0)
			break;
	}
	rx_reset(&d);
	vhost_reset_state(&d);
	vhost_mem_free(d.op_mem);
	d.op_mem = NULL;
	return 0;
}
