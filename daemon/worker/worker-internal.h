/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the worker threads share between worker.c (attach, queries) and
 * worker-persist.c (the netlink hand-off and reconnecting). Not for the
 * main thread. */
#pragma once

#include "error-text.h"
#include "ktls.h"
#include "relay.h"
#include "tls.h"
#include "worker.h"

/* A Worker: opaque outside daemon/worker/. */
struct Worker {
        WorkerRequest req;
        WorkerQueue *queue;
        void *userdata;                 /* the main thread's: every event's owner */

        pthread_t thread;
        bool thread_started;

        /* What the job found, for its own thread: the events carry copies
         * to the main thread (a reconnect writes them again). */
        NbdExportInfo info;
        uint32_t block_size;
        uint32_t connections;
        TransportMode transport_mode;   /* how the kernel's sockets carry TLS */
        uint32_t saved_max_request_kb;  /* max_sectors_kb before we held it to the server's maximum */
        /* The device went to the kernel through netlink (NBD_CMD_CONNECT),
         * or was found so: it runs without a thread of ours, and a detach
         * is NBD_CMD_DISCONNECT. Set before `running`, read after it. */
        bool via_netlink;
        /* Begun before the device starts, waited for before ATTACHED. */
        UdevSettle *udev_settle;

        /* Shared with the main thread, under lock. */
        pthread_mutex_t lock;
        int cancelled;                  /* atomic too, for wait_started() */
        bool running;                   /* in NBD_DO_IT */
        bool detach_requested;
        int live_socks[ATTACH_MAX_CONNECTIONS + 1];
        int cancel_fd;                  /* eventfd, written once by worker_stop() */
        int ended_fd;                   /* eventfd, written once NBD_DO_IT returned */
        bool leave;                     /* persistent: stop without disconnecting the kernel device */
};

typedef struct TlsCreds {
        TlsConfig config;
        Blob ca, cert, key, psk;
} TlsCreds;

void tls_creds_done(TlsCreds *c);

/* What carries TLS for each connection of an attached device. */
typedef struct TlsTransports {
        Relay *relays[ATTACH_MAX_CONNECTIONS];
        Ktls *ktls[ATTACH_MAX_CONNECTIONS];
} TlsTransports;

void tls_transports_done(TlsTransports *t);
/* The kernel took the kTLS sockets for good (NBD_CMD_CONNECT or
 * RECONFIGURE): our references go without a close_notify. */
void tls_transports_leave(TlsTransports *t);

/* Starts thread for the job w describes; each kind of job has its own
 * (worker-attach.c, worker-query.c, worker-persist.c), which must post its
 * last event as its last act. */
int worker_spawn(Worker *w, void *(*thread)(void *worker));

void worker_post(Worker *w, WorkerEventType type, int error, const char *message);
/* ATTACHED, with what w runs the device with. */
void worker_post_attached(Worker *w);
/* Once the device started and its partitions were scanned: waits until
 * udev has handled it (udev-settle.h), so that whoever hears ATTACHED
 * finds its partitions' links and file systems known; no longer once
 * *stop is set (the device ended, or the job was cancelled). */
void worker_settle_udev(Worker *w, const int *stop);
/* DONE, with a query's results, which the event takes over. */
void worker_post_done(Worker *w, NbdExportInfo *info, NbdExportEntry *exports, size_t n_exports);
/* worker_post() of WORKER_EVENT_FAILED with a formatted message. */
_printf_(3, 4) void worker_post_failure(Worker *w, int error, const char *format, ...);
bool worker_is_cancelled(Worker *w);
/* Makes fd visible to worker_stop() (slot ≥ 0) or hides it again (fd < 0),
 * always before the fd is closed, so a shutdown never hits a reused fd. */
void worker_publish_sock(Worker *w, size_t slot, int fd);
/* The same as connect_many()'s publish callback (userdata: the Worker). */
void worker_publish_cb(void *userdata, size_t slot, int fd);

/* Parses the request's host and loads its TLS credentials. */
int worker_prepare(Worker *w, NbdAddress *addr, TlsCreds *creds, Error *error);
/* Connects and negotiates the request's connections, all for one export
 * with one size and flags (w->info holds them afterwards); TLS sessions go
 * into transports (kTLS only for persistent devices). The sockets,
 * blocking and in the transmission phase, are appended to socks and
 * published for worker_stop(); on failure the caller releases those
 * already there. */
int worker_open_all(Worker *w, const NbdAddress *addr, const TlsConfig *tls, TlsTransports *transports,
                    usec_t deadline, int *socks, size_t *n_socks, Error *error);
/* socks are in the transmission phase and the kernel will not run them:
 * each gets NBD_CMD_DISC (through the relay where there is one), the only
 * clean way out. Call before kernel_clear() or worker_release_socks(). */
void worker_say_goodbye(const int *socks, size_t n_socks, TlsTransports *t);
/* Unpublishes and closes socks; *n_socks becomes 0. */
void worker_release_socks(Worker *w, int *socks, size_t *n_socks);

/* worker-persist.c */

/* NBD_CMD_CONNECT with the negotiated export, then the device is marked
 * running and ATTACHED is posted. The sockets go to the kernel (and are
 * released here) once it took them. Negative errno with error set. */
int worker_attach_netlink(Worker *w, int *socks, size_t *n_socks, Error *error);
