/* SPDX-License-Identifier: BSD-3-Clause */
/* Blocking JSON-RPC client over a Unix socket; see include/nvlend/rpc_client.h. */
#include "nvlend/rpc_client.h"
#include "util/util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct nvl_rpc_client {
	int fd;
	int timeout_ms;
	int64_t next_id;
	char path[108];
	char *buf;
	size_t len, cap;
};

NVL_EXPORT const char *
nvl_rpc_default_socket(char *buf, size_t len)
{
	const char *env = getenv("NVLEND_SOCKET");

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return buf;
	}
	return nvl_default_rpc_socket(buf, len);
}

NVL_EXPORT int
nvl_rpc_client_connect(const char *path, int timeout_ms, struct nvl_rpc_client **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct nvl_rpc_client *c;
	char def[256];
	int rc;

	if (path == NULL)
		path = nvl_rpc_default_socket(def, sizeof(def));
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	/* The built-in default may sit in a shared directory (/tmp): talk only to
	 * a socket of root or of this user, never to one a neighbour planted. */
	if (strcmp(path, nvl_default_rpc_socket(def, sizeof(def))) == 0) {
		rc = nvl_socket_owner_ok(path);
		if (rc == -EPERM || rc == -ENOTSOCK)
			return -EPERM;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	nvl_strlcpy(c->path, path, sizeof(c->path));
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
	c->next_id = 1;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		rc = -errno;
		free(c);
		return rc;
	}
	nvl_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		close(c->fd);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

NVL_EXPORT void
nvl_rpc_client_close(struct nvl_rpc_client *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c->buf);
	free(c);
}

NVL_EXPORT const char *
nvl_rpc_client_path(const struct nvl_rpc_client *c)
{
	return c->path;
}

static int
client_send(struct nvl_rpc_client *c, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EPIPE || errno == ECONNRESET ? -EPIPE : -errno;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read until one complete JSON text is buffered; returns it (new ref). */
static int
client_recv_json(struct nvl_rpc_client *c, json_t **doc)
{
	for (;;) {
		json_error_t err;
		size_t pos = 0;
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		ssize_t n;
		int prc;

		while (pos < c->len && (c->buf[pos] == ' ' || c->buf[pos] == '\n' ||
					c->buf[pos] == '\r' || c->buf[pos] == '\t'))
			pos++;
		if (pos < c->len) {
			*doc = json_loadb(c->buf + pos, c->len - pos,
					  JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &err);
			if (*doc) {
				pos += (size_t)err.position;
				memmove(c->buf, c->buf + pos, c->len - pos);
				c->len -= pos;
				return 0;
			}
			/* A read can end inside a UTF-8 sequence, an escape or a
			 * literal, which jansson reports as something other than
			 * "premature end". The daemon ends every answer with a
			 * newline: the text is malformed only once that has come. */
			if (json_error_code(&err) != json_error_premature_end_of_input &&
			    memchr(c->buf + pos, '\n', c->len - pos) != NULL)
				return -EPROTO;
		}
		if (c->cap - c->len < 65536) {
			size_t cap = c->cap ? c->cap * 2 : 131072;
			char *nb = realloc(c->buf, cap);

			if (nb == NULL)
				return -ENOMEM;
			c->buf = nb;
			c->cap = cap;
		}
		prc = poll(&pfd, 1, c->timeout_ms);
		if (prc < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (prc == 0)
			return -ETIMEDOUT;
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == ECONNRESET ? -EPIPE : -errno;
		}
		if (n == 0)
			return -EPIPE;
		c->len += (size_t)n;
	}
}

NVL_EXPORT int
nvl_rpc_client_call(struct nvl_rpc_client *c, const char *method, json_t *params,
		    json_t **result, json_t **error)
{
	json_t *req, *resp = NULL;
	int64_t id = c->next_id++;
	char *s;
	int rc;

	*result = NULL;
	if (error)
		*error = NULL;
	req = json_pack("{s:s, s:s, s:I}", "jsonrpc", "2.0", "method", method, "id",
			(json_int_t)id);
	if (req == NULL)
		return -ENOMEM;
	if (params)
		json_object_set(req, "params", params);
	s = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (s == NULL)
		return -ENOMEM;
	{
		size_t n = strlen(s);
		char *line = realloc(s, n + 2);

		if (line == NULL) {
			free(s);
			return -ENOMEM;
		}
		line[n] = '\n';
		line[n + 1] = '\0';
		rc = client_send(c, line, n + 1);
		free(line);
	}
	/* a daemon that answers and closes at once (shutdown) still left the answer */
	if (rc < 0 && rc != -EPIPE)
		return rc;
	for (;;) {
		json_t *jid;

		rc = client_recv_json(c, &resp);
		if (rc < 0)
			return rc;
		jid = json_object_get(resp, "id");
		if (json_is_integer(jid) && json_integer_value(jid) == id)
			break;
		if (json_is_null(jid) && json_object_get(resp, "error"))
			break; /* an error the server could not tie to our id */
		json_decref(resp);
	}
	if (json_object_get(resp, "error")) {
		if (error)
			*error = json_incref(json_object_get(resp, "error"));
		json_decref(resp);
		return -EREMOTEIO;
	}
	if (!json_object_get(resp, "result")) {
		json_decref(resp);
		return -EPROTO;
	}
	*result = json_incref(json_object_get(resp, "result"));
	json_decref(resp);
	return 0;
}
