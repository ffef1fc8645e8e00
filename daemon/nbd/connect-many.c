/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* connect_many(): one thread per connection of a device, all under one
 * deadline. A failing connection shuts down the sockets of its siblings so
 * that they stop at once instead of running into the deadline. */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "connect-many.h"
#include "nbd-protocol.h"
#include "util/macro.h"

typedef struct Shared {
        const ConnectManyParams *p;
        const HandshakeOptions *options;        /* p->handshake, and what n asks for */
        pthread_mutex_t lock;
        int live[ATTACH_MAX_CONNECTIONS];
        /* In the transmission phase: a sibling's failure must not cut
         * these off, they leave with NBD_CMD_DISC. */
        bool negotiated[ATTACH_MAX_CONNECTIONS];
        bool failed;
        Error *error;                   /* the caller's: the first failure */
        int error_code;
} Shared;

typedef struct Slot {
        Shared *shared;
        size_t index;
        int sock;                       /* given by the caller, or -EBADF */
        Handshake *hs;
        TlsConfig without_ktls;         /* for the second dial, see connect_one() */
        pthread_t thread;
        bool thread_started;
} Slot;

static bool cancelled(const Shared *sh) {
        return sh->p->cancelled && __atomic_load_n(sh->p->cancelled, __ATOMIC_ACQUIRE);
}

/* Must be called with fd ≥ 0 once the socket exists and with -EBADF before
 * it is closed: siblings that fail shut down what is live here. */
static void set_live(Shared *sh, size_t i, int fd) {
        pthread_mutex_lock(&sh->lock);
        sh->live[i] = fd;
        if (sh->p->publish)
                sh->p->publish(sh->p->userdata, i, fd);
        /* A sibling failed before this socket existed: it must not block. */
        if (fd >= 0 && sh->failed)
                (void) shutdown(fd, SHUT_RDWR);
        pthread_mutex_unlock(&sh->lock);
}

/* The first failure (r, with e's message) wins and stops the others. */
static void fail(Shared *sh, int r, const Error *e) {
        pthread_mutex_lock(&sh->lock);
        if (!sh->failed) {
                sh->failed = true;
                if (sh->error) {
                        *sh->error = *e;
                        sh->error->code = r;
                }
                sh->error_code = r;
                for (size_t i = 0; i < sh->p->n; i++)
                        if (sh->live[i] >= 0 && !sh->negotiated[i])
                                (void) shutdown(sh->live[i], SHUT_RDWR);
        }
        pthread_mutex_unlock(&sh->lock);
}

static bool stopped(Shared *sh) {
        bool b;

        pthread_mutex_lock(&sh->lock);
        b = sh->failed;
        pthread_mutex_unlock(&sh->lock);
        return b || cancelled(sh);
}

/* Connects (unless the caller gave a socket) and negotiates with `options`;
 * returns the handshake's result. */
static int dial_and_negotiate(Slot *s, int fd, const HandshakeOptions *options, Error *error) {
        Shared *sh = s->shared;
        const ConnectManyParams *p = sh->p;
        _cleanup_(conn_freep) Conn *conn = NULL;
        int r;

        if (fd < 0) {
                if (!p->addr || (!p->addr->host && !p->addr->unix_path)) {
                        return error_set(error, -EINVAL, "connect: a given socket is one connection; no address for the others");
                }
                r = net_connect_cancellable(p->addr, p->deadline, p->cancel_fd ? *p->cancel_fd : -EBADF,
                                            &fd, error);
                if (r < 0)
                        return r;
        }

        r = conn_new_fd(&conn, fd);
        if (r < 0) {
                safe_close(fd);
                (void) error_set(error, r, "connect: cannot set up connection: %s", strerror(-r));
                return r;
        }
        conn_set_deadline(conn, p->deadline);
        set_live(sh, s->index, conn_fd(conn));

        handshake_init(s->hs, TAKE_PTR(conn), options);
        r = handshake_run(s->hs);
        if (r < 0) {
                *error = s->hs->error;
                return r;
        }
        pthread_mutex_lock(&sh->lock);
        sh->negotiated[s->index] = true;
        pthread_mutex_unlock(&sh->lock);
        return 0;
}

static void *connect_one(void *userdata) {
        Slot *s = userdata;
        Shared *sh = s->shared;
        Error error = {};
        HandshakeOptions relaxed;
        bool dialed = s->sock < 0;
        int r;

        if (stopped(sh)) {
                s->sock = safe_close(s->sock);
                return NULL;
        }

        r = dial_and_negotiate(s, TAKE_FD(s->sock), sh->options, &error);
        if (r < 0 && s->hs->tls_ktls_refused && dialed && !stopped(sh)) {
                /* The session was held to TLS 1.2 with AES-GCM so that the
                 * kernel could take it over, and the server would not have
                 * that (TLS 1.3 only, say). Rather than fail an attach the
                 * relay can carry, dial once more without the restriction;
                 * the transport then picks the relay (ktls_new() says why). */
                set_live(sh, s->index, -EBADF);
                handshake_done(s->hs);
                s->without_ktls = *sh->options->tls_config;
                s->without_ktls.ktls = false;
                relaxed = *sh->options;
                relaxed.tls_config = &s->without_ktls;
                r = dial_and_negotiate(s, -EBADF, &relaxed, &error);
                /* Nothing reads it after the handshake; the slot goes away
                 * with connect_many()'s frame. */
                s->hs->options.tls_config = NULL;
        }
        if (r < 0)
                fail(sh, r, &error);
        return NULL;
}

void handshakes_done(Handshake *hs, size_t n) {
        for (size_t i = 0; i < n; i++)
                handshake_done(&hs[i]);
}

int connect_many(const ConnectManyParams *p, Handshake *hs, Error *error) {
        Shared sh = {
                .p = p,
                .error = error,
        };
        Slot slots[ATTACH_MAX_CONNECTIONS];
        HandshakeOptions multi;
        int r = 0;

        if (p->n < 1 || p->n > ATTACH_MAX_CONNECTIONS) {
                return error_set(error, -EINVAL, "connect: %zu connections asked, 1 to %u allowed",
                                p->n, ATTACH_MAX_CONNECTIONS);
        }

        pthread_mutex_init(&sh.lock, NULL);
        for (size_t i = 0; i < p->n; i++) {
                sh.live[i] = -EBADF;
                hs[i] = (Handshake) {};
                slots[i] = (Slot) {
                        .shared = &sh,
                        .index = i,
                        .sock = p->socks ? TAKE_FD(p->socks[i]) : -EBADF,
                        .hs = &hs[i],
                };
        }
        /* The server's NBD_FLAG_CAN_MULTI_CONN is checked by every
         * connection before it enters transmission (handshake.h). */
        multi = p->handshake;
        multi.require_multi_conn = p->n > 1;
        sh.options = &multi;

        if (p->n == 1)
                /* Nothing to overlap: no thread. */
                (void) connect_one(&slots[0]);
        else {
                sigset_t all, old;

                /* The threads only do socket I/O; signals are for whoever
                 * owns the process. */
                sigfillset(&all);
                pthread_sigmask(SIG_BLOCK, &all, &old);
                for (size_t i = 0; i < p->n; i++) {
                        int k = pthread_create(&slots[i].thread, NULL, connect_one, &slots[i]);
                        if (k != 0) {
                                Error e = {};

                                (void) error_set(&e, -k, "connect: cannot start thread: %s", strerror(k));
                                fail(&sh, -k, &e);
                                break;
                        }
                        slots[i].thread_started = true;
                }
                pthread_sigmask(SIG_SETMASK, &old, NULL);

                for (size_t i = 0; i < p->n; i++)
                        if (slots[i].thread_started)
                                (void) pthread_join(slots[i].thread, NULL);
                        else
                                /* Never started: its socket is still ours. */
                                slots[i].sock = safe_close(slots[i].sock);
        }

        if (sh.failed)
                r = sh.error_code;
        else if (cancelled(&sh)) {
                r = error_set(error, -ECANCELED, "cancelled");
        } else if (p->n > 1 && !(hs[0].info.flags & NBD_FLAG_CAN_MULTI_CONN)) {
                r = error_set(error, -EINVAL,
                              "the server does not allow %zu connections (no NBD_FLAG_CAN_MULTI_CONN): "
                                "more than one connection could see stale data",
                                p->n);
        } else
                for (size_t i = 1; i < p->n; i++)
                        if (hs[i].info.size != hs[0].info.size || hs[i].info.flags != hs[0].info.flags) {
                                r = error_set(error, -EPROTO,
                                              "handshake: connection %zu reports a different size or flags", i + 1);
                                break;
                        }

        if (r < 0) {
                if (cancelled(&sh)) {
                        r = error_set(error, -ECANCELED, "cancelled");
                }
                /* Those that made it into transmission are told goodbye. */
                for (size_t i = 0; i < p->n; i++)
                        (void) handshake_end_transmission(&hs[i]);
                for (size_t i = 0; i < p->n; i++)
                        if (sh.live[i] >= 0)
                                set_live(&sh, i, -EBADF);
                handshakes_done(hs, p->n);
        }
        pthread_mutex_destroy(&sh.lock);
        return r;
}
