/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The per-device and per-query threads. Each does its blocking work with a
 * deadline, publishes the sockets it is using so the main thread can shut
 * them down to cancel it, and reports through the WorkerQueue. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connect-many.h"
#include "ktls.h"
#include "log.h"
#include "nbd-protocol.h"
#include "net.h"
#include "relay.h"
#include "tls.h"
#include "worker-internal.h"
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
        nbd_export_info_done(&e->info);
        nbd_export_entries_free(e->exports, e->n_exports);
        free(e);
}

WorkerEvent *worker_queue_pop(WorkerQueue *q) {
        WorkerEvent *e;
        uint64_t v;

        pthread_mutex_lock(&q->lock);
        e = q->head;
        if (e) {
                q->head = e->next;
                e->next = NULL;
        }
        if (!q->head) {
                q->tail = NULL;
                /* Nothing left: the main loop may sleep until the next post. */
                (void) !read(q->event_fd, &v, sizeof(v));
        }
        pthread_mutex_unlock(&q->lock);
        return e;
}

/* Drops the events w posted that nobody took yet: their owner is going. */
static void queue_withdraw(WorkerQueue *q, Worker *w) {
        WorkerEvent **p, *prev = NULL;

        pthread_mutex_lock(&q->lock);
        for (p = &q->head; *p;) {
                WorkerEvent *e = *p;

                if (e->worker == w) {
                        *p = e->next;
                        worker_event_free(e);
                        continue;
                }
                prev = e;
                p = &e->next;
        }
        q->tail = prev;
        pthread_mutex_unlock(&q->lock);
}

static WorkerEvent *event_new(Worker *w, WorkerEventType type, int error, const char *message) {
        WorkerEvent *e;

        e = calloc(1, sizeof(*e));
        if (!e)
                abort();        /* a lost event would leave a caller waiting forever */
        e->type = type;
        e->kind = w->req.kind;
        e->owner = w->userdata;
        e->worker = w;
        e->error = error;
        if (message) {
                e->message = strdup(message);
                if (!e->message)
                        abort();
        }
        return e;
}

static void enqueue(Worker *w, WorkerEvent *e) {
        uint64_t one = 1;

        pthread_mutex_lock(&w->queue->lock);
        if (w->queue->tail)
                w->queue->tail->next = e;
        else
                w->queue->head = e;
        w->queue->tail = e;
        (void) !write(w->queue->event_fd, &one, sizeof(one));
        pthread_mutex_unlock(&w->queue->lock);
}

void worker_post(Worker *w, WorkerEventType type, int error, const char *message) {
        enqueue(w, event_new(w, type, error, message));
}

void worker_post_attached(Worker *w) {
        WorkerEvent *e = event_new(w, WORKER_EVENT_ATTACHED, 0, NULL);

        e->attached = (WorkerAttached) {
                .size = w->info.size,
                .flags = w->info.flags,
                .block_size = w->block_size,
                .connections = w->connections,
                .tls = w->info.tls,
                .transport_mode = w->transport_mode,
                .netlink = w->via_netlink,
        };
        enqueue(w, e);
}

void worker_settle_udev(Worker *w, const int *stop) {
        usec_t t = now_usec(CLOCK_MONOTONIC);
        int r;

        r = udev_settle_wait(w->udev_settle, UDEV_SETTLE_TIMEOUT_USEC, stop);
        if (r == -ECANCELED)
                log_debug("nbd%d ended before udev had handled it.", w->req.dev_index);
        else if (r < 0)
                /* The device works; udev catches up on its own. */
                log_warning("Answering the attach of nbd%d before udev has handled it: %s",
                            w->req.dev_index, r == -ETIMEDOUT ? "udev took too long" : strerror(-r));
        else if (w->udev_settle)
                log_debug("udev handled nbd%d in %llu ms.", w->req.dev_index,
                          (unsigned long long) ((now_usec(CLOCK_MONOTONIC) - t) / USEC_PER_MSEC));
        w->udev_settle = udev_settle_free(w->udev_settle);
}

void worker_post_done(Worker *w, NbdExportInfo *info, NbdExportEntry *exports, size_t n_exports) {
        WorkerEvent *e = event_new(w, WORKER_EVENT_DONE, 0, NULL);

        nbd_export_info_move(&e->info, info);
        e->exports = exports;
        e->n_exports = n_exports;
        enqueue(w, e);
}

void worker_post_failure(Worker *w, int error, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&msg, format, ap) < 0)
                msg = NULL;
        va_end(ap);
        worker_post(w, WORKER_EVENT_FAILED, error, msg ?: strerror(-error));
}

/* ---- the worker ---------------------------------------------------------- */

void worker_request_done(WorkerRequest *req) {
        free(req->host);
        free(req->export_name);
        req->host = req->export_name = NULL;
        attach_options_done(&req->options);
        free(req->persist.backend);
        req->persist.backend = NULL;
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
        /* Shutting sockets down cannot reach a connect() still in flight
         * or a resolver; net_connect_cancellable() polls this too. */
        w->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        w->ended_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->cancel_fd < 0 || w->ended_fd < 0) {
                int r = negative_errno();
                worker_free(w);
                return r;
        }

        *ret = w;
        return 0;
}

Worker *worker_free(Worker *w) {
        if (!w)
                return NULL;
        if (w->thread_started)
                (void) pthread_join(w->thread, NULL);
        queue_withdraw(w->queue, w);
        worker_request_done(&w->req);
        nbd_export_info_done(&w->info);
        udev_settle_free(w->udev_settle);
        safe_close(w->cancel_fd);
        safe_close(w->ended_fd);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
}

bool worker_is_cancelled(Worker *w) {
        return __atomic_load_n(&w->cancelled, __ATOMIC_ACQUIRE);
}

void worker_publish_sock(Worker *w, size_t slot, int fd) {
        pthread_mutex_lock(&w->lock);
        w->live_socks[slot] = fd;
        /* Cancelled before we got here: this socket must not block either. */
        if (fd >= 0 && worker_is_cancelled(w))
                (void) shutdown(fd, SHUT_RDWR);
        pthread_mutex_unlock(&w->lock);
}

static void shutdown_all(Worker *w) {
        for (size_t i = 0; i < ELEMENTSOF(w->live_socks); i++)
                if (w->live_socks[i] >= 0)
                        (void) shutdown(w->live_socks[i], SHUT_RDWR);
}

void worker_release_socks(Worker *w, int *socks, size_t *n_socks) {
        pthread_mutex_lock(&w->lock);
        for (size_t i = 0; i < *n_socks; i++)
                w->live_socks[i] = -EBADF;
        pthread_mutex_unlock(&w->lock);
        for (size_t i = 0; i < *n_socks; i++)
                socks[i] = safe_close(socks[i]);
        *n_socks = 0;
}

void tls_creds_done(TlsCreds *c) {
        blob_done(&c->ca);
        blob_done(&c->cert);
        blob_done(&c->key);
        blob_done(&c->psk);
}

/* The CA comes from the caller's tls-ca, else the administrator's
 * directory, else the system trust store (x509_load() in tls.c). */
static int tls_creds_load(TlsCreds *c, WorkerRequest *req, const NbdAddress *a, Error *error) {
        AttachOptions *o = &req->options;
        struct {
                int *fd;
                Blob *blob;
                const char *key;
        } table[] = {
                { &o->tls_ca_fd, &c->ca, "tls-ca" },
                { &o->tls_cert_fd, &c->cert, "tls-cert" },
                { &o->tls_key_fd, &c->key, "tls-key" },
                { &o->tls_psk_fd, &c->psk, "tls-psk" },
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                if (*table[i].fd < 0)
                        continue;
                /* Read from the start, whatever the caller did with the offset. */
                (void) lseek(*table[i].fd, 0, SEEK_SET);
                r = blob_read_fd(table[i].blob, *table[i].fd, CREDENTIAL_MAX_SIZE);
                if (r < 0) {
                        return error_set(error, r == -EFBIG ? -EINVAL : r, "tls: cannot read option '%s': %s",
                                        table[i].key, strerror(-r));
                }
                /* Read once, let go at once: a query or an attach may wait
                 * on a server for minutes. A persistent device reads them
                 * again for each reconnect, and keeps them. */
                if (!req->persist.enabled)
                        *table[i].fd = safe_close(*table[i].fd);
        }

        c->config = (TlsConfig) {
                .ca = c->ca,
                .ca_dir = req->tls_ca_dir,
                .cert = c->cert,
                .key = c->key,
                .psk_file = c->psk,
                .psk_username = o->tls_username,
                .hostname = o->tls_hostname ?: a->host,
        };
        return 0;
}

void worker_publish_cb(void *userdata, size_t slot, int fd) {
        worker_publish_sock(userdata, slot, fd);
}

int worker_prepare(Worker *w, NbdAddress *addr, TlsCreds *creds, Error *error) {
        int r;

        if (w->req.host) {
                r = nbd_address_parse(addr, w->req.host, w->req.options.port, error);
                if (r < 0)
                        return r;
        }
        return tls_creds_load(creds, &w->req, addr, error);
}

void tls_transports_done(TlsTransports *t) {
        for (size_t i = 0; i < ATTACH_MAX_CONNECTIONS; i++) {
                t->relays[i] = relay_free(t->relays[i]);
                t->ktls[i] = ktls_free(t->ktls[i]);
        }
}

/* The kernel cannot speak TLS. It gets the TCP socket itself when the
 * kernel's TLS layer can carry the session (kTLS, ktls.h), else the
 * plaintext end of a relay. Takes conn; *ret_fd is blocking. */
static int tls_transport_start(TlsTransports *t, size_t i, Conn *conn, bool want_ktls, bool allow_relay,
                               TransportMode *ret_mode, int *ret_fd, Error *error) {
        Error why = {};
        int r;

        r = ktls_new(&t->ktls[i], conn, want_ktls, ret_fd, &why);
        if (r >= 0) {
                *ret_mode = TRANSPORT_MODE_KTLS;
                return 0;
        }
        if (r == -EOPNOTSUPP && !allow_relay) {
                /* Persistent devices: the relay would be a thread of
                 * nbdlinkd between the kernel and the server, and die
                 * with it (see worker-persist.c). */
                conn_free(conn);
                return error_set(error, -EOPNOTSUPP,
                                 "tls: a persistent device needs kTLS, which is not usable here (%s)", why.message);
        }
        if (r != -EOPNOTSUPP) {
                /* Half in the kernel: this connection cannot be used. */
                conn_free(conn);
                return error_set(error, -ECONNABORTED, "%s", why.message);
        }

        r = relay_new(&t->relays[i], conn, ret_fd);
        if (r < 0) {
                conn_free(conn);
                return error_set(error, r, "tls: cannot start the TLS relay: %s", strerror(-r));
        }
        *ret_mode = TRANSPORT_MODE_RELAY;
        return 0;
}

void tls_transports_leave(TlsTransports *t) {
        for (size_t i = 0; i < ATTACH_MAX_CONNECTIONS; i++)
                t->ktls[i] = ktls_leave(t->ktls[i]);
}

int worker_open_all(Worker *w, const NbdAddress *addr, const TlsConfig *tls, TlsTransports *transports,
                    usec_t deadline, int *socks, size_t *n_socks, Error *error) {
        /* On the heap: a Handshake carries an 8 KiB message buffer, and
         * this thread's stack stays resident while the device lives. */
        _cleanup_free_ Handshake *hs = NULL;
        int given[ATTACH_MAX_CONNECTIONS];
        uint32_t n = w->req.options.connections;
        int r;

        hs = calloc(n, sizeof(Handshake));
        if (!hs) {
                return error_set(error, -ENOMEM, "connect: out of memory");
        }

        /* A reconnect asks again: the last attempt's answer goes. */
        nbd_export_info_done(&w->info);

        for (size_t i = 0; i < ELEMENTSOF(given); i++)
                given[i] = -EBADF;
        /* The option 'socket' is the first connection (an attach only: a
         * reconnect has it no more). */
        given[0] = TAKE_FD(w->req.options.socket_fd);

        /* All connections at once (connect-many.c); it also refuses more
         * than one where the server does not allow it. */
        r = connect_many(&(ConnectManyParams) {
                                .n = n,
                                .addr = addr,
                                .socks = given,
                                .handshake = {
                                        .goal = HANDSHAKE_GO,
                                        .export_name = w->req.export_name ?: "",
                                        .tls = w->req.options.tls,
                                        .tls_config = tls,
                                },
                                .deadline = deadline,
                                .cancelled = &w->cancelled,
                                .cancel_fd = &w->cancel_fd,
                                .publish = worker_publish_cb,
                                .userdata = w,
                         }, hs, error);
        if (r < 0)
                return r;
        nbd_export_info_move(&w->info, &hs[0].info);

        for (uint32_t i = 0; i < n; i++) {
                Conn *conn;
                int fd;

                /* Before the relay or the kernel has it: the TCP socket
                 * itself must notice a server that vanished. */
                r = hs[i].conn ? net_set_keepalive(conn_fd(hs[i].conn)) : 0;
                if (r < 0) {
                        (void) error_set(error, r, "connect: cannot enable TCP keepalive: %s", strerror(-r));
                        goto fail;
                }
                conn = handshake_take_conn(&hs[i]);

                if (w->info.tls) {
                        TransportMode mode = TRANSPORT_MODE_NONE;

                        /* The Conn's socket stays published until the
                         * transport holds it; afterwards the kernel's end
                         * is what a cancel shuts down. */
                        r = conn ? tls_transport_start(transports, i, conn, w->req.options.tls_ktls,
                                                       !w->req.persist.enabled, &mode, &fd, error) : -EIO;
                        if (r < 0) {
                                worker_publish_sock(w, i, -EBADF);
                                goto fail;
                        }
                        /* TLSMode says "ktls" only when every connection is. */
                        if (i == 0 || mode == TRANSPORT_MODE_RELAY)
                                w->transport_mode = mode;
                        worker_publish_sock(w, i, fd);
                        socks[(*n_socks)++] = fd;
                        continue;
                }

                /* The kernel gets its own reference to the socket; the Conn
                 * (and its copy of the descriptor) goes away. */
                fd = conn ? fcntl(conn_fd(conn), F_DUPFD_CLOEXEC, 3) : -EBADF;
                if (fd < 0) {
                        r = conn ? negative_errno() : -EIO;
                        worker_publish_sock(w, i, -EBADF);
                        conn_free(conn);
                        (void) error_set(error, r, "connect: cannot keep socket: %s", strerror(-r));
                        goto fail;
                }
                worker_publish_sock(w, i, fd);
                conn_free(conn);
                /* Non-blocking was for the handshake's deadline. */
                (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
                socks[(*n_socks)++] = fd;
        }
        handshakes_done(hs, n);
        return 0;

fail:
        /* The connections not handed on yet leave transmission politely;
         * the caller does the same for socks and releases them. */
        for (uint32_t i = 0; i < n; i++)
                if (hs[i].conn) {
                        (void) handshake_end_transmission(&hs[i]);
                        worker_publish_sock(w, i, -EBADF);
                }
        handshakes_done(hs, n);
        return r;
}

/* The relay's kernel end carries NBD_CMD_DISC into the TLS session; the
 * relay then sees end-of-file, forwards what it holds and finishes. */
void worker_say_goodbye(const int *socks, size_t n_socks, TlsTransports *t) {
        for (size_t i = 0; i < n_socks; i++) {
                (void) nbd_send_disc(socks[i]);
                (void) shutdown(socks[i], SHUT_WR);
        }
        for (size_t i = 0; i < ATTACH_MAX_CONNECTIONS; i++) {
                struct pollfd p;

                if (!t->relays[i])
                        continue;
                /* Bounded: a server that stopped reading costs a second. */
                p = (struct pollfd) { .fd = relay_event_fd(t->relays[i]), .events = POLLIN };
                (void) poll(&p, 1, 1000);
        }
}

int worker_spawn(Worker *w, void *(*thread)(void *worker)) {
        sigset_t all, old;
        int r;

        /* Signals belong to the main loop's signalfd, never to a worker. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = pthread_create(&w->thread, NULL, thread, w);
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
        int ended_fd;                   /* a copy of the worker's, owned by the job */
        int index;
        Worker *netlink_worker;         /* persistent: no NBD_DO_IT to return, so the job reports */
} DetachJob;

typedef struct FlushJob {
        const KernelOps *ops;
        void *ops_userdata;
        int dev_fd;                     /* borrowed from the DetachJob, which joins us */
        int done_fd;                    /* eventfd, owned by the DetachJob */
} FlushJob;

static void *flush_thread(void *userdata) {
        FlushJob *f = userdata;

        (void) f->ops->flush(f->ops_userdata, f->dev_fd);
        (void) !write(f->done_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
        return NULL;
}

static bool wait_readable(int fd, unsigned sec) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int k;

        do
                k = poll(&p, 1, (int) sec * 1000);
        while (k < 0 && errno == EINTR);
        return k > 0;
}

/* Data in the page cache goes to the server before it goes away, for at
 * most DETACH_FLUSH_WAIT_SEC: a server that stopped answering cannot hold a
 * Detach forever. The flush runs on its own thread, which *ret_tid names
 * (joinable, or 0 when the flush ran here). The caller joins it after the
 * device stopped, which fails whatever the flush still waits for. */
static bool flush_bounded(DetachJob *job, FlushJob *flush, pthread_t *ret_tid) {
        *flush = (FlushJob) {
                .ops = job->ops,
                .ops_userdata = job->ops_userdata,
                .dev_fd = job->dev_fd,
                .done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
        };
        if (flush->done_fd < 0 || pthread_create(ret_tid, NULL, flush_thread, flush) != 0) {
                flush->done_fd = safe_close(flush->done_fd);
                (void) job->ops->flush(job->ops_userdata, job->dev_fd);
                return false;
        }
        if (!wait_readable(flush->done_fd, DETACH_FLUSH_WAIT_SEC))
                log_warning("Device nbd%d: flush not done after %u s, disconnecting anyway",
                        job->index, DETACH_FLUSH_WAIT_SEC);
        return true;
}

static void flush_join(FlushJob *flush, pthread_t tid, bool started) {
        if (started)
                (void) pthread_join(tid, NULL);
        flush->done_fd = safe_close(flush->done_fd);
}

/* The ioctl path's detach: after the flush, NBD_DISCONNECT, which only
 * sends NBD_CMD_DISC. NBD_DO_IT returns once the server closes; one that
 * does not within DETACH_GRACE_SEC (it ignores NBD_CMD_DISC, or stopped
 * answering) is cut off with NBD_CLEAR_SOCK, so no server can pin a
 * device. */
static void detach_ioctl(DetachJob *job) {
        FlushJob flush;
        pthread_t tid;
        bool started;

        started = flush_bounded(job, &flush, &tid);
        (void) kernel_request_detach(job->ops, job->ops_userdata, job->dev_fd);
        if (!wait_readable(job->ended_fd, DETACH_GRACE_SEC)) {
                log_warning("Device nbd%d: server did not close within %u s of NBD_CMD_DISC, closing the connection",
                        job->index, DETACH_GRACE_SEC);
                (void) kernel_force_detach(job->ops, job->ops_userdata, job->dev_fd);
        }
        flush_join(&flush, tid, started);
}

static void *detach_thread(void *userdata) {
        DetachJob *job = userdata;

        if (job->netlink_worker) {
                Worker *w = job->netlink_worker;
                FlushJob flush;
                pthread_t tid;
                bool started;
                char msg[128];
                int r;

                /* NBD_CMD_DISCONNECT sends NBD_CMD_DISC and shuts the
                 * sockets down at once: no server can hold it up. */
                started = flush_bounded(job, &flush, &tid);
                r = job->ops->netlink(job->ops_userdata, NBD_NL_DISCONNECT,
                                      &(NbdNlConfig) { .index = w->req.dev_index }, NULL);
                flush_join(&flush, tid, started);
                kernel_restore_requests(job->ops, job->ops_userdata, job->index, w->saved_max_request_kb);
                (void) snprintf(msg, sizeof(msg), "device nbd%d: NBD_CMD_DISCONNECT failed: %s",
                                w->req.dev_index, strerror(-r));
                /* Last use of w: the main thread may free it once this is read. */
                worker_post(w, WORKER_EVENT_ENDED, r < 0 ? r : 0, r < 0 ? msg : NULL);
        } else
                detach_ioctl(job);
        safe_close(job->dev_fd);
        safe_close(job->ended_fd);
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
                        .ended_fd = fcntl(w->ended_fd, F_DUPFD_CLOEXEC, 3),
                        .index = w->req.dev_index,
                        .netlink_worker = w->via_netlink ? w : NULL,
                };
                if (job->dev_fd >= 0 && job->ended_fd >= 0) {
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
                        safe_close(job->ended_fd);
                        free(job);
                }
        }
        if (r != 0 && w->via_netlink) {
                int k = w->req.ops->netlink(w->req.ops_userdata, NBD_NL_DISCONNECT,
                                            &(NbdNlConfig) { .index = w->req.dev_index }, NULL);
                worker_post(w, WORKER_EVENT_ENDED, k < 0 ? k : 0, k < 0 ? "NBD_CMD_DISCONNECT failed" : NULL);
        } else if (r != 0)
                /* Last resort: no flush, but the device stops. */
                (void) w->req.ops->disconnect(w->req.ops_userdata, w->req.dev_fd);
}

static void cancel_locked(Worker *w) {
        uint64_t one = 1;

        __atomic_store_n(&w->cancelled, 1, __ATOMIC_RELEASE);
        (void) !write(w->cancel_fd, &one, sizeof(one));
        shutdown_all(w);
}

void worker_leave(Worker *w) {
        pthread_mutex_lock(&w->lock);
        w->leave = true;
        /* Only a job in progress stops; a running device stays. */
        if (!w->running)
                cancel_locked(w);
        pthread_mutex_unlock(&w->lock);
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
        } else
                cancel_locked(w);
        pthread_mutex_unlock(&w->lock);
        return was_running;
}
