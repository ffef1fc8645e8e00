/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The per-device and per-query threads. Each does its blocking work with a
 * deadline, publishes the sockets it is using so the main thread can shut
 * them down to cancel it, and reports through the WorkerQueue. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connect-many.h"
#include "ktls.h"
#include "nbd-protocol.h"
#include "relay.h"
#include "tls.h"
#include "worker.h"

/* ---- the queue ----------------------------------------------------------- */

int worker_queue_init(WorkerQueue *q) {
        *q = (WorkerQueue) {};
        q->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (q->event_fd < 0)
                return negative_errno();
        pthread_mutex_init(&q->lock, NULL);
        return 0;
}

void worker_queue_done(WorkerQueue *q) {
        WorkerEvent *e = q->head;

        while (e) {
                WorkerEvent *next = e->next;
                worker_event_free(e);
                e = next;
        }
        q->head = q->tail = NULL;
        q->event_fd = safe_close(q->event_fd);
        pthread_mutex_destroy(&q->lock);
}

void worker_event_free(WorkerEvent *e) {
        if (!e)
                return;
        free(e->message);
        free(e);
}

WorkerEvent *worker_queue_take(WorkerQueue *q) {
        WorkerEvent *list;
        uint64_t v;

        pthread_mutex_lock(&q->lock);
        (void) !read(q->event_fd, &v, sizeof(v));
        list = q->head;
        q->head = q->tail = NULL;
        pthread_mutex_unlock(&q->lock);
        return list;
}

static void post(Worker *w, WorkerEventType type, int error, const char *message) {
        WorkerEvent *e;
        uint64_t one = 1;

        e = calloc(1, sizeof(*e));
        if (!e)
                abort();        /* a lost event would leave a caller waiting forever */
        e->type = type;
        e->worker = w;
        e->error = error;
        if (message) {
                e->message = strdup(message);
                if (!e->message)
                        abort();
        }

        pthread_mutex_lock(&w->queue->lock);
        if (w->queue->tail)
                w->queue->tail->next = e;
        else
                w->queue->head = e;
        w->queue->tail = e;
        (void) !write(w->queue->event_fd, &one, sizeof(one));
        pthread_mutex_unlock(&w->queue->lock);
}

_printf_(3, 4)
static void post_failure(Worker *w, int error, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&msg, format, ap) < 0)
                msg = NULL;
        va_end(ap);
        post(w, WORKER_EVENT_FAILED, error, msg ?: strerror(-error));
}

/* ---- the worker ---------------------------------------------------------- */

void worker_request_done(WorkerRequest *req) {
        free(req->host);
        free(req->export_name);
        req->host = req->export_name = NULL;
        attach_options_done(&req->options);
        req->dev_fd = safe_close(req->dev_fd);
}

int worker_new(Worker **ret, WorkerRequest *req, WorkerQueue *queue, void *userdata) {
        Worker *w;

        w = calloc(1, sizeof(*w));
        if (!w) {
                worker_request_done(req);
                return -ENOMEM;
        }

        w->req = *req;
        *req = (WorkerRequest) { .dev_fd = -EBADF };
        attach_options_init(&req->options, 0);
        w->queue = queue;
        w->userdata = userdata;
        pthread_mutex_init(&w->lock, NULL);
        for (size_t i = 0; i < ELEMENTSOF(w->live_socks); i++)
                w->live_socks[i] = -EBADF;

        *ret = w;
        return 0;
}

Worker *worker_free(Worker *w) {
        if (!w)
                return NULL;
        if (w->thread_started)
                (void) pthread_join(w->thread, NULL);
        worker_request_done(&w->req);
        nbd_export_info_done(&w->info);
        nbd_export_entries_free(w->exports, w->n_exports);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
}

static bool is_cancelled(Worker *w) {
        return __atomic_load_n(&w->cancelled, __ATOMIC_ACQUIRE);
}

/* Makes fd visible to worker_stop() (slot ≥ 0) or hides it again (fd < 0),
 * always before the fd is closed, so a shutdown never hits a reused fd. */
static void publish_sock(Worker *w, size_t slot, int fd) {
        pthread_mutex_lock(&w->lock);
        w->live_socks[slot] = fd;
        /* Cancelled before we got here: this socket must not block either. */
        if (fd >= 0 && is_cancelled(w))
                (void) shutdown(fd, SHUT_RDWR);
        pthread_mutex_unlock(&w->lock);
}

static void shutdown_all(Worker *w) {
        for (size_t i = 0; i < ELEMENTSOF(w->live_socks); i++)
                if (w->live_socks[i] >= 0)
                        (void) shutdown(w->live_socks[i], SHUT_RDWR);
}

typedef struct TlsCreds {
        TlsConfig config;
        Blob ca, cert, key, psk;
} TlsCreds;

static void tls_creds_done(TlsCreds *c) {
        blob_done(&c->ca);
        blob_done(&c->cert);
        blob_done(&c->key);
        blob_done(&c->psk);
}

static int tls_creds_load(TlsCreds *c, const AttachOptions *o, const NbdAddress *a, char *error, size_t error_size) {
        struct {
                int fd;
                Blob *blob;
                const char *key;
        } table[] = {
                { o->tls_ca_fd, &c->ca, "tls-ca" },
                { o->tls_cert_fd, &c->cert, "tls-cert" },
                { o->tls_key_fd, &c->key, "tls-key" },
                { o->tls_psk_fd, &c->psk, "tls-psk" },
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                if (table[i].fd < 0)
                        continue;
                /* Read from the start, whatever the caller did with the offset. */
                (void) lseek(table[i].fd, 0, SEEK_SET);
                r = blob_read_fd(table[i].blob, table[i].fd, CREDENTIAL_MAX_SIZE);
                if (r < 0) {
                        (void) snprintf(error, error_size, "tls: cannot read option '%s': %s",
                                        table[i].key, strerror(-r));
                        return r == -EFBIG ? -EINVAL : r;
                }
        }

        c->config = (TlsConfig) {
                .ca = c->ca,
                .cert = c->cert,
                .key = c->key,
                .psk_file = c->psk,
                .psk_username = o->tls_username,
                .hostname = o->tls_hostname ?: a->host,
        };
        return 0;
}

/* Connects and negotiates one connection; on success *ret_sock is a
 * blocking socket in the transmission phase, published in slot. */
static int open_connection(Worker *w, size_t slot, const NbdAddress *addr, const TlsConfig *tls,
                           usec_t deadline, HandshakeGoal goal, Handshake *hs,
                           char *error, size_t error_size) {
        _cleanup_(conn_freep) Conn *conn = NULL;
        HandshakeOptions hopts;
        int fd = -EBADF, r;

        if (w->req.options.socket_fd >= 0)
                fd = TAKE_FD(w->req.options.socket_fd);
        else {
                r = net_connect(addr, deadline, &fd, error, error_size);
                if (r < 0)
                        return r;
        }

        r = conn_new_fd(&conn, fd);
        if (r < 0) {
                safe_close(fd);
                (void) snprintf(error, error_size, "connect: cannot set up connection: %s", strerror(-r));
                return r;
        }
        conn_set_deadline(conn, deadline);
        publish_sock(w, slot, conn_fd(conn));

        if (is_cancelled(w)) {
                publish_sock(w, slot, -EBADF);
                return -ECANCELED;
        }

        hopts = (HandshakeOptions) {
                .goal = goal,
                .export_name = w->req.export_name ?: "",
                .tls = w->req.options.tls,
                .tls_config = tls,
        };
        handshake_init(hs, TAKE_PTR(conn), &hopts);
        r = handshake_run(hs);
        if (r < 0) {
                publish_sock(w, slot, -EBADF);
                (void) snprintf(error, error_size, "%s", hs->error);
                return is_cancelled(w) ? -ECANCELED : r;
        }
        return 0;
}

static void *query_thread(void *userdata) {
        Worker *w = userdata;
        _cleanup_(nbd_address_done) NbdAddress addr = {};
        _cleanup_(tls_creds_done) TlsCreds creds = {};
        char error[HANDSHAKE_ERROR_MAX] = "";
        Handshake hs = {};
        usec_t deadline = deadline_after(w->req.options.timeout_sec * USEC_PER_SEC);
        int r;

        if (w->req.host) {
                r = nbd_address_parse(&addr, w->req.host, w->req.options.port, error, sizeof(error));
                if (r < 0) {
                        post_failure(w, r, "%s", error);
                        return NULL;
                }
        }
        r = tls_creds_load(&creds, &w->req.options, &addr, error, sizeof(error));
        if (r < 0) {
                post_failure(w, r, "%s", error);
                return NULL;
        }

        r = open_connection(w, 0, &addr, &creds.config, deadline,
                            w->req.kind == WORKER_LIST ? HANDSHAKE_LIST : HANDSHAKE_INFO,
                            &hs, error, sizeof(error));
        if (r < 0) {
                handshake_done(&hs);
                post_failure(w, r, "%s", r == -ECANCELED ? "cancelled" : error);
                return NULL;
        }

        publish_sock(w, 0, -EBADF);
        nbd_export_info_move(&w->info, &hs.info);
        w->exports = TAKE_PTR(hs.exports);
        w->n_exports = hs.n_exports;
        hs.n_exports = 0;
        handshake_done(&hs);
        post(w, WORKER_EVENT_DONE, 0, NULL);
        return NULL;
}

/* What carries TLS for each connection of an attached device. */
typedef struct TlsTransports {
        Relay *relays[ATTACH_MAX_CONNECTIONS];
        Ktls *ktls[ATTACH_MAX_CONNECTIONS];
} TlsTransports;

static void tls_transports_done(TlsTransports *t) {
        for (size_t i = 0; i < ATTACH_MAX_CONNECTIONS; i++) {
                t->relays[i] = relay_free(t->relays[i]);
                t->ktls[i] = ktls_free(t->ktls[i]);
        }
}

/* The kernel cannot speak TLS. It gets the TCP socket itself when the
 * kernel's TLS layer can carry the session (kTLS, ktls.h), else the
 * plaintext end of a relay. Takes conn; *ret_fd is blocking. */
static int tls_transport_start(TlsTransports *t, size_t i, Conn *conn, bool want_ktls, TransportMode *ret_mode,
                               int *ret_fd, char *error, size_t error_size) {
        char why[KTLS_ERROR_MAX] = "";
        int r;

        r = ktls_new(&t->ktls[i], conn, want_ktls, ret_fd, why, sizeof(why));
        if (r >= 0) {
                *ret_mode = TRANSPORT_MODE_KTLS;
                return 0;
        }
        if (r != -EOPNOTSUPP) {
                /* Half in the kernel: this connection cannot be used. */
                conn_free(conn);
                (void) snprintf(error, error_size, "%s", why);
                return -ECONNABORTED;
        }

        r = relay_new(&t->relays[i], conn, ret_fd);
        if (r < 0) {
                conn_free(conn);
                (void) snprintf(error, error_size, "tls: cannot start the TLS relay: %s", strerror(-r));
                return r;
        }
        *ret_mode = TRANSPORT_MODE_RELAY;
        return 0;
}

/* After NBD_DO_IT: stops the relays and picks the most telling way one of
 * them ended (a TLS failure first), with its message. */
static int tls_transports_result(TlsTransports *t, const char **ret_message) {
        int result = 0;

        *ret_message = "";
        for (size_t i = 0; i < ATTACH_MAX_CONNECTIONS; i++) {
                const char *msg = "";
                int k;

                if (!t->relays[i])
                        continue;
                k = relay_stop(t->relays[i]);
                (void) relay_result(t->relays[i], &msg);
                if (k < 0 && (result == 0 || k == -ECONNABORTED)) {
                        result = k;
                        *ret_message = msg;
                }
        }
        return result;
}

static void publish_sock_cb(void *userdata, size_t slot, int fd) {
        publish_sock(userdata, slot, fd);
}

/* The negotiated connections of an attach, until the kernel has them. */
typedef struct Negotiated {
        Handshake *hs;
        size_t n;
} Negotiated;

static void negotiated_done(Negotiated *x) {
        handshakes_done(x->hs, x->n);
        free(x->hs);
}

typedef struct Watcher {
        Worker *worker;
        int stop;
        int result;
} Watcher;

static void *watcher_thread(void *userdata) {
        Watcher *s = userdata;
        Worker *w = s->worker;

        s->result = w->req.ops->wait_started(w->req.ops_userdata, w->req.dev_index,
                                             w->req.options.timeout_sec * USEC_PER_SEC, &s->stop);
        if (s->result >= 0)
                post(w, WORKER_EVENT_ATTACHED, 0, NULL);
        else if (s->result != -ECANCELED)
                /* It never came up: stop it, the attaching thread reports. */
                (void) kernel_request_detach(w->req.ops, w->req.ops_userdata, w->req.dev_fd);
        return NULL;
}

static void *attach_thread(void *userdata) {
        Worker *w = userdata;
        _cleanup_(nbd_address_done) NbdAddress addr = {};
        _cleanup_(tls_creds_done) TlsCreds creds = {};
        _cleanup_(tls_transports_done) TlsTransports transports = {};
        char error[HANDSHAKE_ERROR_MAX] = "";
        int socks[ATTACH_MAX_CONNECTIONS];
        size_t n_socks = 0;
        usec_t deadline = deadline_after(w->req.options.timeout_sec * USEC_PER_SEC);
        const char *host = w->req.host ?: "(socket)";
        const char *export_name = w->req.export_name ?: "";
        Watcher watcher = { .worker = w };
        pthread_t watcher_tid;
        _cleanup_(negotiated_done) Negotiated hss = {};
        int given[ATTACH_MAX_CONNECTIONS];
        KernelAttach ka;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(given); i++)
                given[i] = -EBADF;
        /* The option 'socket' is the first connection. */
        given[0] = TAKE_FD(w->req.options.socket_fd);

        if (w->req.host) {
                r = nbd_address_parse(&addr, w->req.host, w->req.options.port, error, sizeof(error));
                if (r < 0) {
                        post_failure(w, r, "%s", error);
                        return NULL;
                }
        }
        r = tls_creds_load(&creds, &w->req.options, &addr, error, sizeof(error));
        if (r < 0) {
                post_failure(w, r, "%s", error);
                return NULL;
        }
        /* Decided before the handshake: a session the kernel should take
         * over is negotiated as TLS 1.2 (ktls.c explains). */
        creds.config.ktls = ktls_wanted_for_handshake(w->req.options.tls_ktls);

        post(w, WORKER_EVENT_NEGOTIATING, 0, NULL);

        /* All connections at once (connect-many.c); it also refuses more
         * than one where the server does not allow it. */
        hss.hs = calloc(w->req.options.connections, sizeof(Handshake));
        if (!hss.hs) {
                r = -ENOMEM;
                (void) snprintf(error, sizeof(error), "connect: out of memory");
                goto fail;
        }
        r = connect_many(&(ConnectManyParams) {
                                .n = w->req.options.connections,
                                .addr = &addr,
                                .socks = given,
                                .handshake = {
                                        .goal = HANDSHAKE_GO,
                                        .export_name = export_name,
                                        .tls = w->req.options.tls,
                                        .tls_config = &creds.config,
                                },
                                .deadline = deadline,
                                .cancelled = &w->cancelled,
                                .publish = publish_sock_cb,
                                .userdata = w,
                         }, hss.hs, error, sizeof(error));
        if (r < 0)
                goto fail;
        hss.n = w->req.options.connections;
        nbd_export_info_move(&w->info, &hss.hs[0].info);

        for (uint32_t i = 0; i < w->req.options.connections; i++) {
                Conn *conn;
                int fd;

                conn = handshake_take_conn(&hss.hs[i]);
                handshake_done(&hss.hs[i]);

                if (w->info.tls) {
                        TransportMode mode = TRANSPORT_MODE_NONE;

                        /* The Conn's socket stays published until the
                         * transport holds it; afterwards the kernel's end
                         * is what a cancel shuts down. */
                        r = conn ? tls_transport_start(&transports, i, conn, w->req.options.tls_ktls, &mode,
                                                       &fd, error, sizeof(error)) : -EIO;
                        if (r < 0) {
                                publish_sock(w, i, -EBADF);
                                goto fail;
                        }
                        /* TLSMode says "ktls" only when every connection is. */
                        if (i == 0 || mode == TRANSPORT_MODE_RELAY)
                                w->transport_mode = mode;
                        publish_sock(w, i, fd);
                        socks[n_socks++] = fd;
                        continue;
                }

                /* The kernel gets its own reference to the socket; the Conn
                 * (and its copy of the descriptor) goes away. */
                fd = conn ? fcntl(conn_fd(conn), F_DUPFD_CLOEXEC, 3) : -EBADF;
                if (fd < 0) {
                        r = conn ? negative_errno() : -EIO;
                        publish_sock(w, i, -EBADF);
                        conn_free(conn);
                        (void) snprintf(error, sizeof(error), "connect: cannot keep socket: %s", strerror(-r));
                        goto fail;
                }
                publish_sock(w, i, fd);
                conn_free(conn);
                /* Non-blocking was for the handshake's deadline. */
                (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
                socks[n_socks++] = fd;
        }

        w->connections = n_socks;
        r = kernel_pick_block_size(w->req.options.block_size, w->info.block_min, w->info.block_preferred,
                                   w->info.block_max, &w->block_size, error, sizeof(error));
        if (r < 0)
                goto fail;

        ka = (KernelAttach) {
                .index = w->req.dev_index,
                .socks = socks,
                .n_socks = n_socks,
                .size = w->info.size,
                .flags = w->info.flags,
                .block_size = w->block_size,
                .read_only = w->req.options.read_only,
                .timeout_sec = w->req.options.timeout_sec,
        };
        r = kernel_attach(w->req.ops, w->req.ops_userdata, w->req.dev_fd, &ka, error, sizeof(error));
        if (r < 0)
                goto fail;

        pthread_mutex_lock(&w->lock);
        if (is_cancelled(w)) {
                pthread_mutex_unlock(&w->lock);
                kernel_clear(w->req.ops, w->req.ops_userdata, w->req.dev_fd);
                r = -ECANCELED;
                goto fail;
        }
        w->running = true;
        pthread_mutex_unlock(&w->lock);

        if (pthread_create(&watcher_tid, NULL, watcher_thread, &watcher) != 0) {
                kernel_clear(w->req.ops, w->req.ops_userdata, w->req.dev_fd);
                r = -ENOMEM;
                (void) snprintf(error, sizeof(error), "cannot start thread");
                goto fail;
        }

        /* Blocks for as long as the device is attached. NBD_DO_IT must come
         * from the thread that did NBD_SET_SOCK: this one. */
        r = kernel_run(w->req.ops, w->req.ops_userdata, w->req.dev_fd);

        __atomic_store_n(&watcher.stop, 1, __ATOMIC_RELEASE);
        (void) pthread_join(watcher_tid, NULL);

        pthread_mutex_lock(&w->lock);
        w->running = false;
        for (size_t i = 0; i < n_socks; i++)
                w->live_socks[i] = -EBADF;
        pthread_mutex_unlock(&w->lock);
        for (size_t i = 0; i < n_socks; i++)
                safe_close(socks[i]);

        /* A relay that ended on its own is why NBD_DO_IT returned. */
        const char *relay_message;
        int relay_r = tls_transports_result(&transports, &relay_message);

        if (watcher.result < 0) {
                if (w->detach_requested || is_cancelled(w))
                        post_failure(w, -ECANCELED, "device nbd%d: attach of export '%s' on %s was cancelled",
                                     w->req.dev_index, export_name, host);
                else
                        post_failure(w, r < 0 ? r : watcher.result,
                                     "device nbd%d: did not start (export '%s' on %s): %s",
                                     w->req.dev_index, export_name, host,
                                     strerror(-(r < 0 ? r : watcher.result)));
                return NULL;
        }

        pthread_mutex_lock(&w->lock);
        bool requested = w->detach_requested;
        pthread_mutex_unlock(&w->lock);
        if (requested)
                post(w, WORKER_EVENT_ENDED, 0, NULL);
        else {
                _cleanup_free_ char *msg = NULL;
                if (relay_r < 0) {
                        /* The relay knows better than NBD_DO_IT: a TLS
                         * failure ("tls: …") becomes TLSFailed. */
                        if (asprintf(&msg, "device nbd%d: connection to %s (export '%s') ended: %s",
                                     w->req.dev_index, host, export_name, relay_message) < 0)
                                msg = NULL;
                        post(w, WORKER_EVENT_ENDED, relay_r == -ECONNABORTED ? relay_r : -ECONNRESET, msg);
                        return NULL;
                }
                if (asprintf(&msg, "device nbd%d: connection to %s (export '%s') ended%s%s",
                             w->req.dev_index, host, export_name,
                             r < 0 ? ": " : "", r < 0 ? strerror(-r) : "") < 0)
                        msg = NULL;
                post(w, WORKER_EVENT_ENDED, r < 0 ? r : -ECONNRESET, msg);
        }
        return NULL;

fail:
        pthread_mutex_lock(&w->lock);
        for (size_t i = 0; i < ELEMENTSOF(w->live_socks); i++)
                w->live_socks[i] = -EBADF;
        pthread_mutex_unlock(&w->lock);
        for (size_t i = 0; i < n_socks; i++)
                safe_close(socks[i]);

        if (r == -ECANCELED || is_cancelled(w))
                post_failure(w, -ECANCELED, "device nbd%d: attach of export '%s' on %s was cancelled",
                             w->req.dev_index, export_name, host);
        else
                post_failure(w, r, "device nbd%d: cannot attach export '%s' on %s: %s",
                             w->req.dev_index, export_name, host, error);
        return NULL;
}

int worker_start(Worker *w) {
        sigset_t all, old;
        int r;

        /* Signals belong to the main loop's signalfd, never to a worker. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = pthread_create(&w->thread, NULL, w->req.kind == WORKER_ATTACH ? attach_thread : query_thread, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r != 0)
                return -r;
        w->thread_started = true;
        return 0;
}

typedef struct DetachJob {
        const KernelOps *ops;
        void *ops_userdata;
        int dev_fd;                     /* a copy, owned by the job */
} DetachJob;

static void *detach_thread(void *userdata) {
        DetachJob *job = userdata;

        (void) kernel_request_detach(job->ops, job->ops_userdata, job->dev_fd);
        safe_close(job->dev_fd);
        free(job);
        return NULL;
}

static void start_detach(Worker *w) {
        DetachJob *job;
        pthread_attr_t attr;
        pthread_t tid;
        sigset_t all, old;
        int r = -1;

        /* The flush may take a while: not on the main thread. */
        job = malloc(sizeof(*job));
        if (job) {
                *job = (DetachJob) {
                        .ops = w->req.ops,
                        .ops_userdata = w->req.ops_userdata,
                        .dev_fd = fcntl(w->req.dev_fd, F_DUPFD_CLOEXEC, 3),
                };
                if (job->dev_fd >= 0) {
                        sigfillset(&all);
                        pthread_sigmask(SIG_BLOCK, &all, &old);
                        pthread_attr_init(&attr);
                        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                        r = pthread_create(&tid, &attr, detach_thread, job);
                        pthread_attr_destroy(&attr);
                        pthread_sigmask(SIG_SETMASK, &old, NULL);
                }
                if (r != 0) {
                        safe_close(job->dev_fd);
                        free(job);
                }
        }
        if (r != 0)
                /* Last resort: no flush, but the device stops. */
                (void) w->req.ops->disconnect(w->req.ops_userdata, w->req.dev_fd);
}

bool worker_stop(Worker *w) {
        bool was_running;

        pthread_mutex_lock(&w->lock);
        was_running = w->running;
        if (w->running) {
                if (!w->detach_requested) {
                        w->detach_requested = true;
                        start_detach(w);
                }
        } else {
                __atomic_store_n(&w->cancelled, 1, __ATOMIC_RELEASE);
                shutdown_all(w);
        }
        pthread_mutex_unlock(&w->lock);
        return was_running;
}
