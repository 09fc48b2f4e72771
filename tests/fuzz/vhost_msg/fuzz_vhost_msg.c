/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the vhost-user message handler. The input is a stream of
 * records [fd byte][12-byte header][payload of header.size bytes]; the low
 * two bits of the fd byte attach that many memfds (1 MiB each) or eventfds
 * (bit 2), as SCM_RIGHTS would. Every record goes through
 * vhost_dev_handle_msg() against a fake device whose queues stop at once, so
 * the whole protocol state machine (memory tables, rings, inflight regions,
 * resets) is reachable. The handler must never crash, leak or touch memory
 * outside what the messages mapped. The framing of the byte stream in front
 * of it has its own target, tests/fuzz/vhost_rx.
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
	unsigned nmsg = 0;

	fz_dev_init(&d);
	while (size >= 1 + sizeof(struct nvl_vhost_user_hdr) && nmsg++ < 64) {
		struct nvl_vhost_user_hdr h;
		uint8_t payload[VHOST_MSG_MAX_PAYLOAD];
		int fds[VHOST_MAX_FDS];
		unsigned nfds = data[0] & 3, plen;
		bool efd = data[0] & 4;

		memcpy(&h, data + 1, sizeof(h));
		data += 1 + sizeof(h);
		size -= 1 + sizeof(h);
		plen = h.size <= VHOST_MSG_MAX_PAYLOAD ? h.size : 0;
		if (plen > size)
			plen = (unsigned)size;
		/* the socket layer never hands over a short payload: neither do we */
		h.size = h.size <= VHOST_MSG_MAX_PAYLOAD ? plen : h.size;
		memset(payload, 0, sizeof(payload));
		memcpy(payload, data, plen);
		data += plen;
		size -= plen;
		for (unsigned i = 0; i < nfds; i++)
			fds[i] = efd ? eventfd(0, EFD_CLOEXEC) : dup(g_memfd);
		if (vhost_dev_handle_msg(&d, &h, payload, fds, nfds) < 0) {
			for (unsigned i = 0; i < nfds; i++)
				if (fds[i] >= 0)
					close(fds[i]);
			break;
		}
		for (unsigned i = 0; i < nfds; i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	vhost_reset_state(&d);
	vhost_mem_free(d.op_mem);
	return 0;
}
