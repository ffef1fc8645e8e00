/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The handshake's byte stream: full reads and writes on a non-blocking
 * socket (or a GnuTLS session over it, or a memory buffer), all bounded by
 * one absolute deadline so that a slow or silent server cannot hold a
 * worker forever. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "conn-internal.h"

static ssize_t plain_recv(Conn *c, void *buf, size_t n) {
        ssize_t k = recv(c->fd, buf, n, MSG_DONTWAIT);
        return k < 0 ? -errno : k;
}

static ssize_t plain_send(Conn *c, const void *buf, size_t n) {
        ssize_t k = send(c->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        return k < 0 ? -errno : k;
}

static const ConnOps plain_ops = {
        .recv = plain_recv,
        .send = plain_send,
};

int conn_new_fd(Conn **ret, int fd) {
        Conn *c;
        int flags;

        if (!ret || fd < 0)
                return -EINVAL;

        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return -errno;
        /* Non-blocking so that every wait goes through poll() with what is
         * left of the deadline, never an unbounded read(). */
        if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->ops = &plain_ops;
        c->fd = fd;
        c->deadline = USEC_INFINITY;

        *ret = c;
        return 0;
}

int conn_new_memory(Conn **ret, const void *data, size_t size) {
        Conn *c;

        if (!ret || (!data && size > 0))
                return -EINVAL;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        /* conn_read_full() and conn_write_full() serve it themselves. */
        c->ops = &plain_ops;
        c->fd = -EBADF;
        c->deadline = USEC_INFINITY;
        c->is_memory = true;
        c->mem = data;
        c->mem_size = size;

        *ret = c;
        return 0;
}

Conn *conn_free(Conn *c) {
        if (!c)
                return NULL;
        if (c->release)
                c->release(c);
        safe_close(c->fd);
        free(c);
        return NULL;
}

void conn_set_deadline(Conn *c, usec_t deadline) {
        c->deadline = deadline;
}

usec_t conn_get_deadline(const Conn *c) {
        return c->deadline;
}

bool conn_is_tls(const Conn *c) {
        return c && c->session;
}

int conn_fd(const Conn *c) {
        return c->is_memory ? -EBADF : c->fd;
}

gnutls_session_t conn_tls_session(const Conn *c) {
        return c->session;
}

int conn_wait(Conn *c, short events) {
        for (;;) {
                struct pollfd p = { .fd = c->fd, .events = events };
                int timeout, r;

                /* Recomputed on every wait: the deadline is absolute, so a
                 * peer that trickles bytes only ever shortens what is left. */
                timeout = deadline_poll_timeout(c->deadline);
                if (timeout == 0)
                        return -ETIMEDOUT;

                r = poll(&p, 1, timeout);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        return -ETIMEDOUT;
                if (p.revents & POLLNVAL)
                        return -EBADF;
                /* POLLHUP/POLLERR: let the following read or write report
                 * what happened. */
                return 0;
        }
}

/* One read of at most n bytes: > 0 bytes read, 0 at end-of-file, negative
 * errno (never -EAGAIN: it waits). */
static ssize_t conn_read_some(Conn *c, void *buf, size_t n) {
        for (;;) {
                ssize_t k = c->ops->recv(c, buf, n);
                int r;

                if (k != -EAGAIN && k != -EINTR)
                        return k;
                if (k == -EINTR)
                        continue;
                r = conn_wait(c, POLLIN);
                if (r < 0)
                        return r;
        }
}

static ssize_t conn_write_some(Conn *c, const void *buf, size_t n) {
        for (;;) {
                ssize_t k = c->ops->send(c, buf, n);
                int r;

                if (k != -EAGAIN && k != -EINTR)
                        return k;
                if (k == -EINTR)
                        continue;
                r = conn_wait(c, POLLOUT);
                if (r < 0)
                        return r;
        }
}

int conn_read_full(Conn *c, void *buf, size_t n) {
        uint8_t *p = buf;

        if (c->is_memory) {
                if (n > c->mem_size - c->mem_pos) {
                        c->mem_pos = c->mem_size;
                        return -EPIPE;
                }
                if (n > 0)
                        memcpy(p, c->mem + c->mem_pos, n);
                c->mem_pos += n;
                return 0;
        }

        while (n > 0) {
                ssize_t k;

                k = conn_read_some(c, p, n);
                if (k < 0)
                        return (int) k;
                if (k == 0)
                        return -EPIPE;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int conn_write_full(Conn *c, const void *buf, size_t n) {
        const uint8_t *p = buf;

        if (c->is_memory)
                return 0;

        while (n > 0) {
                ssize_t k;

                k = conn_write_some(c, p, n);
                if (k < 0)
                        return (int) k;
                if (k == 0)
                        return -EPIPE;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int conn_discard(Conn *c, size_t n) {
        uint8_t buf[4096];

        while (n > 0) {
                size_t k = MIN(n, sizeof(buf));
                int r;

                r = conn_read_full(c, buf, k);
                if (r < 0)
                        return r;
                n -= k;
        }
        return 0;
}
