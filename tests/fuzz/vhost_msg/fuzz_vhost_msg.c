/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the vhost-user message handler. The input is a stream of
 * records [fd byte][2 size bytes if bit 3][12-byte header][payload of
 * header.size bytes]; the low two bits of the fd byte attach that many memfds
 * (1 MiB each) or eventfds (bit 2), as SCM_RIGHTS would; with bit 3 the
 * memfds are fresh ones of (le16 size bytes) * 16 bytes, so SET_LOG_BASE
 * (and SET_MEM_TABLE, SET_INFLIGHT_FD) meet files of random sizes against
 * the random sizes and offsets of their payloads. SET_LOG_FD takes an
 * eventfd or a memfd. Queues the fake device starts mark pages in the dirty
 * log they are given (the used ring by its log address, the rings by our
 * address), so a log smaller than what it must cover faults. Every record goes through
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
		bool efd = data[0] & 4, sized = data[0] & 8;
		size_t fsize = 0;

		data++;
		size--;
		if (sized) {
			if (size < 2 + sizeof(h))
				break;
			fsize = ((size_t)data[0] | (size_t)data[1] << 8) * 16;
			data += 2;
			size -= 2;
		}
		memcpy(&h, data, sizeof(h));
		data += sizeof(h);
		size -= sizeof(h);
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
			fds[i] = efd ? eventfd(0, EFD_CLOEXEC) : sized ? fz_memfd(fsize) : dup(g_memfd);
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
	vhost_log_free(d.op_log);
	d.op_log = NULL;
	vhost_close_fd(&d.op_fd);
	return 0;
}
