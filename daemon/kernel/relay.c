/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The TLS relay thread: plaintext from the kernel's end of a socketpair
 * goes into the GnuTLS session, decrypted records go back to the kernel.
 * One thread, non-blocking sockets, poll() only when nothing can move. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "error-text.h"
#include "gnutls-dl.h"
#include "relay.h"

/* Bigger socketpair buffers let the kernel queue a few large requests
 * without waiting for the thread; the kernel caps what it grants. */
#define RELAY_SOCKBUF_SIZE (1024 * 1024)

typedef struct RelayBuffer {
        uint8_t *data;
        size_t start;           /* first byte not yet passed on */
        size_t end;             /* one past the last byte received */
} RelayBuffer;

struct Relay {
        Conn *conn;
        gnutls_session_t session;
        int net_fd;             /* the TLS socket, owned by conn */
        int peer_fd;            /* our end of the socketpair */
        int stop_fd;            /* eventfd: owner → thread */
        int event_fd;           /* eventfd: thread → owner, "ended" */

        pthread_t thread;
        bool thread_running;    /* started and not yet joined */

        atomic_bool stop_requested;
        atomic_bool ended;
        /* Written by the thread before it sets ended (release), read by
         * the owner after seeing ended (acquire) or after the join. */
        Error result;           /* code 0: the kernel side closed, or the owner stopped it */

        RelayBuffer up;         /* kernel → server, plaintext */
        RelayBuffer down;       /* server → kernel, plaintext */
};

static size_t buffer_used(const RelayBuffer *b) {
        return b->end - b->start;
}

static size_t buffer_space(const RelayBuffer *b) {
        return RELAY_BUFFER_SIZE - b->end;
}

/* Moves what is left to the front so that the free space is contiguous.
 * Never while a gnutls_record_send() is pending: GnuTLS wants to be called
 * again with the same pointer. */
static void buffer_compact(RelayBuffer *b) {
        size_t n = buffer_used(b);

        if (b->start == 0)
                return;
        if (n > 0)
                memmove(b->data, b->data + b->start, n);
        b->start = 0;
        b->end = n;
}


/* What a failed gnutls_record_recv()/send() means for the device. */
static void relay_set_tls_error(Relay *r, ssize_t k, bool sending) {
        switch (k) {
        case GNUTLS_E_PREMATURE_TERMINATION:
                (void) error_set(&r->result, -EPIPE, "relay: the server closed the connection without a TLS close_notify");
                break;
        case GNUTLS_E_PULL_ERROR:
        case GNUTLS_E_PUSH_ERROR:
                /* A socket error (reset, broken pipe): the server went
                 * away, nothing TLS-specific. */
                (void) error_set(&r->result, -EPIPE, "relay: the connection to the server failed while %s (%s)",
                                 sending ? "sending" : "receiving", sym_gnutls_strerror((int) k));
                break;
        case GNUTLS_E_FATAL_ALERT_RECEIVED: {
                const char *name = sym_gnutls_alert_get_name(sym_gnutls_alert_get(r->session));

                (void) error_set(&r->result, -ECONNABORTED, "tls: the server sent a fatal alert (%s)", name ?: "unknown");
                break;
        }
        default:
                (void) error_set(&r->result, -ECONNABORTED, "tls: %s the server failed: %s",
                                 sending ? "sending to" : "receiving from", sym_gnutls_strerror((int) k));
                break;
        }
}

static short direction_events(gnutls_session_t s) {
        return sym_gnutls_record_get_direction(s) ? POLLOUT : POLLIN;
}

typedef struct RelayFlow {
        bool kernel_eof;        /* nothing more will come from the kernel */
        bool kernel_gone;       /* the kernel no longer reads either */
        bool server_eof;        /* nothing more will come from the server */
        size_t send_pending;    /* size of a gnutls_record_send() to repeat */
        short net_events;
        short peer_events;
} RelayFlow;

/* Each step tries one non-blocking operation and says whether anything
 * moved; one that would block records what to poll for. A step returns
 * false and sets r->result when the relay must end at once. */

static bool step_kernel_to_buffer(Relay *r, RelayFlow *f, bool *progress) {
        ssize_t k;

        if (f->kernel_eof || buffer_space(&r->up) == 0)
                return true;

        k = recv(r->peer_fd, r->up.data + r->up.end, buffer_space(&r->up), MSG_DONTWAIT);
        if (k > 0) {
                r->up.end += (size_t) k;
                *progress = true;
        } else if (k == 0) {
                f->kernel_eof = true;
                *progress = true;
        } else if (errno == EAGAIN || errno == EINTR) {
                if (errno == EAGAIN)
                        f->peer_events |= POLLIN;
                else
                        *progress = true;
        } else {
                /* The kernel reset its end: it is done with us. */
                f->kernel_eof = f->kernel_gone = true;
                *progress = true;
        }
        return true;
}

static bool step_buffer_to_server(Relay *r, RelayFlow *f, bool *progress) {
        size_t n;
        ssize_t k;

        if (buffer_used(&r->up) == 0)
                return true;

        n = f->send_pending > 0 ? f->send_pending : buffer_used(&r->up);
        k = sym_gnutls_record_send(r->session, r->up.data + r->up.start, n);
        if (k >= 0) {
                r->up.start += (size_t) k;
                f->send_pending = 0;
                if (buffer_used(&r->up) == 0)
                        r->up.start = r->up.end = 0;
                else if (r->up.start >= RELAY_BUFFER_SIZE / 2)
                        buffer_compact(&r->up);
                *progress = true;
                return true;
        }
        if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED) {
                f->send_pending = n;
                if (k == GNUTLS_E_AGAIN)
                        f->net_events |= direction_events(r->session);
                else
                        *progress = true;
                return true;
        }

        relay_set_tls_error(r, k, true);
        return false;
}

static bool step_server_to_buffer(Relay *r, RelayFlow *f, bool *progress) {
        ssize_t k;

        /* Only read when there is room: back-pressure reaches the server
         * through TCP. Records GnuTLS already decrypted but we did not take
         * (gnutls_record_check_pending) come out of this same call without
         * touching the socket, so they are never left waiting on poll(). */
        if (f->server_eof || buffer_space(&r->down) == 0)
                return true;

        k = sym_gnutls_record_recv(r->session, r->down.data + r->down.end, buffer_space(&r->down));
        if (k > 0) {
                r->down.end += (size_t) k;
                *progress = true;
                return true;
        }
        if (k == 0) {
                /* close_notify: a clean end, but still the server's doing. */
                f->server_eof = true;
                (void) error_set(&r->result, -EPIPE, "relay: the server closed the connection");
                *progress = true;
                return true;
        }
        if (k == GNUTLS_E_AGAIN) {
                f->net_events |= direction_events(r->session);
                return true;
        }
        if (k == GNUTLS_E_INTERRUPTED || k == GNUTLS_E_REHANDSHAKE || !sym_gnutls_error_is_fatal((int) k)) {
                /* Warning alerts, and a TLS 1.2 HelloRequest: renegotiation
                 * is refused by ignoring it, which RFC 5246 allows. TLS 1.3
                 * session tickets and key updates are handled inside
                 * GnuTLS and never reach us. */
                *progress = true;
                return true;
        }
        if (k == GNUTLS_E_PREMATURE_TERMINATION || k == GNUTLS_E_PULL_ERROR) {
                /* Replies already decrypted still go to the kernel. */
                f->server_eof = true;
                relay_set_tls_error(r, k, false);
                *progress = true;
                return true;
        }

        relay_set_tls_error(r, k, false);
        return false;
}

static bool step_buffer_to_kernel(Relay *r, RelayFlow *f, bool *progress) {
        ssize_t k;

        if (buffer_used(&r->down) == 0)
                return true;

        if (f->kernel_gone) {
                r->down.start = r->down.end = 0;
                *progress = true;
                return true;
        }

        k = send(r->peer_fd, r->down.data + r->down.start, buffer_used(&r->down), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k >= 0) {
                r->down.start += (size_t) k;
                if (buffer_used(&r->down) == 0)
                        r->down.start = r->down.end = 0;
                else if (r->down.start >= RELAY_BUFFER_SIZE / 2)
                        buffer_compact(&r->down);
                *progress = true;
        } else if (errno == EAGAIN) {
                f->peer_events |= POLLOUT;
        } else if (errno == EINTR) {
                *progress = true;
        } else {
                f->kernel_eof = f->kernel_gone = true;
                r->down.start = r->down.end = 0;
                *progress = true;
        }
        return true;
}

static void relay_run(Relay *r) {
        RelayFlow f = {};

        for (;;) {
                struct pollfd p[3];
                bool progress = false;
                int k;

                if (atomic_load(&r->stop_requested)) {
                        (void) error_set(&r->result, 0, "%s", "");
                        return;
                }

                f.net_events = f.peer_events = 0;
                if (!step_kernel_to_buffer(r, &f, &progress) ||
                    !step_buffer_to_server(r, &f, &progress) ||
                    !step_server_to_buffer(r, &f, &progress) ||
                    !step_buffer_to_kernel(r, &f, &progress))
                        return;

                /* The kernel closed: what it sent last (NBD_CMD_DISC) still
                 * goes out, then we are done. */
                if (f.kernel_eof && buffer_used(&r->up) == 0 && f.send_pending == 0) {
                        if (!f.server_eof)
                                (void) error_set(&r->result, 0, "%s", "");
                        return;
                }
                /* The server closed: replies already received still reach
                 * the kernel, then it sees end-of-file. */
                if (f.server_eof && (buffer_used(&r->down) == 0 || f.kernel_gone))
                        return;

                if (progress)
                        continue;

                /* Nothing could move. Poll only for what a step found
                 * blocked: a descriptor polled for nothing could report
                 * POLLHUP forever and spin us. */
                p[0] = (struct pollfd) { .fd = r->stop_fd, .events = POLLIN };
                p[1] = (struct pollfd) { .fd = f.net_events ? r->net_fd : -1, .events = f.net_events };
                p[2] = (struct pollfd) { .fd = f.peer_events ? r->peer_fd : -1, .events = f.peer_events };
                k = poll(p, ELEMENTSOF(p), -1);
                if (k < 0 && errno != EINTR) {
                        (void) error_set(&r->result, -errno, "relay: poll failed: %s", strerror(errno));
                        return;
                }
        }
}

static void *relay_thread(void *userdata) {
        Relay *r = userdata;
        uint64_t one = 1;

        relay_run(r);

        /* The kernel's recv() returns 0 and NBD_DO_IT comes back. */
        (void) shutdown(r->peer_fd, SHUT_RDWR);

        atomic_store_explicit(&r->ended, true, memory_order_release);
        (void) !write(r->event_fd, &one, sizeof(one));
        return NULL;
}

int relay_new(Relay **ret, Conn *conn, int *ret_kernel_fd) {
        _cleanup_close_ int kernel_fd = -EBADF;
        sigset_t all, saved;
        Relay *r;
        int pair[2], k;

        if (!ret || !conn || !ret_kernel_fd)
                return -EINVAL;
        if (!conn_is_tls(conn) || conn_fd(conn) < 0)
                return -EINVAL;

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->peer_fd = r->stop_fd = r->event_fd = -EBADF;
        r->session = conn_tls_session(conn);
        r->net_fd = conn_fd(conn);

        r->up.data = malloc(RELAY_BUFFER_SIZE);
        r->down.data = malloc(RELAY_BUFFER_SIZE);
        if (!r->up.data || !r->down.data) {
                k = -ENOMEM;
                goto fail;
        }

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
                k = -errno;
                goto fail;
        }
        kernel_fd = pair[0];
        r->peer_fd = pair[1];
        for (size_t i = 0; i < 2; i++) {
                int size = RELAY_SOCKBUF_SIZE;

                /* Best effort: the defaults work, only more slowly. */
                (void) setsockopt(pair[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
                (void) setsockopt(pair[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        }
        k = fcntl(r->peer_fd, F_GETFL);
        if (k < 0 || fcntl(r->peer_fd, F_SETFL, k | O_NONBLOCK) < 0) {
                k = -errno;
                goto fail;
        }

        r->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        r->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (r->stop_fd < 0 || r->event_fd < 0) {
                k = -errno;
                goto fail;
        }

        /* Signals belong to the daemon's other threads. */
        sigfillset(&all);
        (void) pthread_sigmask(SIG_SETMASK, &all, &saved);
        k = pthread_create(&r->thread, NULL, relay_thread, r);
        (void) pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (k != 0) {
                k = -k;
                goto fail;
        }
        r->thread_running = true;
        r->conn = conn;

        *ret_kernel_fd = TAKE_FD(kernel_fd);
        *ret = r;
        return 0;

fail:
        relay_free(r);
        return k;
}

int relay_event_fd(const Relay *r) {
        return r->event_fd;
}

bool relay_has_ended(const Relay *r) {
        return atomic_load_explicit(&((Relay *) r)->ended, memory_order_acquire);
}

int relay_result(const Relay *r, const char **ret_message) {
        if (!relay_has_ended(r)) {
                if (ret_message)
                        *ret_message = "";
                return -EBUSY;
        }
        if (ret_message)
                *ret_message = r->result.message;
        return r->result.code;
}

int relay_stop(Relay *r) {
        uint64_t one = 1;

        if (r->thread_running) {
                atomic_store(&r->stop_requested, true);
                (void) !write(r->stop_fd, &one, sizeof(one));
                (void) pthread_join(r->thread, NULL);
                r->thread_running = false;
        }
        return relay_result(r, NULL);
}

Relay *relay_free(Relay *r) {
        if (!r)
                return NULL;

        (void) relay_stop(r);
        /* conn_free() sends close_notify (one non-blocking try) and closes
         * the TLS socket; the thread is gone, so the session is ours. */
        conn_free(r->conn);
        safe_close(r->peer_fd);
        safe_close(r->stop_fd);
        safe_close(r->event_fd);
        free(r->up.data);
        free(r->down.data);
        free(r);
        return NULL;
}
