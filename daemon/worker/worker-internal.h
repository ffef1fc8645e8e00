/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the worker threads share between worker.c (attach, queries) and
 * worker-persist.c (the netlink hand-off and reconnecting). Not for the
 * main thread. */
#pragma once

#include "ktls.h"
#include "relay.h"
#include "tls.h"
#include "worker.h"

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
/* worker_post() of WORKER_EVENT_FAILED with a formatted message. */
_printf_(3, 4) void worker_post_failure(Worker *w, int error, const char *format, ...);
bool worker_is_cancelled(Worker *w);
/* Makes fd visible to worker_stop() (slot ≥ 0) or hides it again (fd < 0),
 * always before the fd is closed, so a shutdown never hits a reused fd. */
void worker_publish_sock(Worker *w, size_t slot, int fd);
/* The same as connect_many()'s publish callback (userdata: the Worker). */
void worker_publish_cb(void *userdata, size_t slot, int fd);

/* Parses the request's host and loads its TLS credentials. */
int worker_prepare(Worker *w, NbdAddress *addr, TlsCreds *creds, char *error, size_t error_size);
/* Connects and negotiates the request's connections, all for one export
 * with one size and flags (w->info holds them afterwards); TLS sessions go
 * into transports (kTLS only for persistent devices). The sockets,
 * blocking and in the transmission phase, are appended to socks and
 * published for worker_stop(); on failure the caller releases those
 * already there. */
int worker_open_all(Worker *w, const NbdAddress *addr, const TlsConfig *tls, TlsTransports *transports,
                    usec_t deadline, int *socks, size_t *n_socks, char *error, size_t error_size);
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
int worker_attach_netlink(Worker *w, int *socks, size_t *n_socks, char *error, size_t error_size);
