/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The attach job: connect and negotiate every connection, hand the sockets
 * to the kernel (ioctls here, netlink in worker-persist.c), then wait in
 * NBD_DO_IT for as long as the device runs and report how it ended. */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "relay.h"
#include "worker-internal.h"

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
        if (s->result >= 0) {
                worker_settle_udev(w, &s->stop);
                worker_post_attached(w);
        }
        else if (s->result != -ECANCELED)
                /* It never came up: stop it, the attaching thread reports. */
                (void) kernel_request_detach(w->req.ops, w->req.ops_userdata, w->req.dev_fd);
        return NULL;
}

/* Connects and negotiates every connection, and settles what the kernel
 * will be told: block size, request size. On success socks[] hold the
 * sockets in the transmission phase. */
static int negotiate(Worker *w, TlsTransports *transports, int *socks, size_t *n_socks,
                     Error *error) {
        _cleanup_(nbd_address_done) NbdAddress addr = {};
        _cleanup_(tls_creds_done) TlsCreds creds = {};
        usec_t deadline = deadline_after(w->req.options.timeout_sec * USEC_PER_SEC);
        int r;

        r = worker_prepare(w, &addr, &creds, error);
        if (r < 0)
                return r;
        /* Decided before the handshake: a session the kernel should take
         * over is negotiated as TLS 1.2 (ktls.c explains). */
        creds.config.ktls = ktls_wanted_for_handshake(w->req.options.tls_ktls);

        worker_post(w, WORKER_EVENT_NEGOTIATING, 0, NULL);

        r = worker_open_all(w, &addr, &creds.config, transports, deadline, socks, n_socks, error);
        if (r < 0)
                return r;

        w->connections = *n_socks;
        r = kernel_pick_block_size(w->req.options.block_size, w->info.block_min, w->info.block_max,
                                   &w->block_size, error);
        if (r < 0)
                return r;
        /* The server's maximum payload is a MUST once it was asked for
         * (GO requests NBD_INFO_BLOCK_SIZE): the kernel's requests are held
         * to it before the device can start. */
        return kernel_limit_requests(w->req.ops, w->req.ops_userdata, w->req.dev_index, w->info.block_max,
                                     &w->saved_max_request_kb, error);
}

/* The ioctl path: configures the device with the sockets and marks the
 * worker running. On failure the device may hold the sockets: the caller
 * says goodbye on them, then clears it. */
static int hand_over(Worker *w, const int *socks, size_t n_socks, Error *error) {
        KernelAttach ka = {
                .index = w->req.dev_index,
                .socks = socks,
                .n_socks = n_socks,
                .size = w->info.size,
                .flags = w->info.flags,
                .block_size = w->block_size,
                .max_payload = w->info.block_max,
                .read_only = w->req.options.read_only,
                .io_timeout_sec = w->req.options.io_timeout_sec,
        };
        int r;

        r = kernel_attach(w->req.ops, w->req.ops_userdata, w->req.dev_fd, &ka, error);
        if (r < 0)
                return r;

        pthread_mutex_lock(&w->lock);
        r = worker_is_cancelled(w) ? -ECANCELED : 0;
        if (r == 0)
                w->running = true;
        pthread_mutex_unlock(&w->lock);
        return r;
}

/* NBD_DO_IT returns the same whether the server hung up or fell silent
 * until the kernel's I/O timeout shut the connection down; the TCP state
 * tells them apart (not for the relay's socketpair, whose result says what
 * happened). */
static bool server_fell_silent(const int *socks, size_t n_socks) {
        bool silent = false;

        for (size_t i = 0; i < n_socks; i++) {
                int k = net_tcp_peer_ended(socks[i]);
                if (k > 0)
                        return false;
                if (k == 0)
                        silent = true;
        }
        return silent;
}

/* After NBD_DO_IT returned with r: says why the device ended. */
static void report_end(Worker *w, int r, int watcher_result, bool silent, TlsTransports *transports) {
        const char *host = w->req.host ?: "(socket)";
        const char *export_name = w->req.export_name ?: "";
        _cleanup_free_ char *msg = NULL;
        const char *relay_message;
        bool requested;
        int relay_r;

        /* A relay that ended on its own is why NBD_DO_IT returned. */
        relay_r = tls_transports_result(transports, &relay_message);

        pthread_mutex_lock(&w->lock);
        requested = w->detach_requested;
        pthread_mutex_unlock(&w->lock);

        if (watcher_result < 0) {
                if (requested || worker_is_cancelled(w))
                        worker_post_failure(w, -ECANCELED, "device nbd%d: attach of export '%s' on %s was cancelled",
                                            w->req.dev_index, export_name, host);
                else
                        worker_post_failure(w, r < 0 ? r : watcher_result,
                                            "device nbd%d: did not start (export '%s' on %s): %s",
                                            w->req.dev_index, export_name, host,
                                            strerror(-(r < 0 ? r : watcher_result)));
                return;
        }

        if (requested) {
                worker_post(w, WORKER_EVENT_ENDED, 0, NULL);
                return;
        }
        if (relay_r < 0) {
                /* The relay knows better than NBD_DO_IT: a TLS failure
                 * ("tls: …") becomes TLSFailed. */
                if (asprintf(&msg, "device nbd%d: connection to %s (export '%s') ended: %s",
                             w->req.dev_index, host, export_name, relay_message) < 0)
                        msg = NULL;
                worker_post(w, WORKER_EVENT_ENDED, relay_r == -ECONNABORTED ? relay_r : -ECONNRESET, msg);
                return;
        }
        if (r >= 0 && silent) {
                if (asprintf(&msg, "device nbd%d: %s (export '%s') stopped answering; the kernel gave up after "
                             "its I/O timeout of %u s", w->req.dev_index, host, export_name,
                             w->req.options.io_timeout_sec) < 0)
                        msg = NULL;
                worker_post(w, WORKER_EVENT_ENDED, -ETIMEDOUT, msg);
                return;
        }
        if (asprintf(&msg, "device nbd%d: connection to %s (export '%s') ended%s%s",
                     w->req.dev_index, host, export_name,
                     r < 0 ? ": " : "", r < 0 ? strerror(-r) : "") < 0)
                msg = NULL;
        worker_post(w, WORKER_EVENT_ENDED, r < 0 ? r : -ECONNRESET, msg);
}

/* Runs the device: NBD_DO_IT blocks for as long as it is attached, and
 * must come from the thread that did NBD_SET_SOCK: this one. A watcher
 * thread announces ATTACHED once the kernel started it. */
static void run_device(Worker *w, int *socks, size_t n_socks, TlsTransports *transports) {
        Watcher watcher = { .worker = w };
        pthread_t watcher_tid;
        bool silent;
        int r;

        if (pthread_create(&watcher_tid, NULL, watcher_thread, &watcher) != 0) {
                pthread_mutex_lock(&w->lock);
                w->running = false;
                pthread_mutex_unlock(&w->lock);
                worker_say_goodbye(socks, n_socks, transports);
                kernel_clear(w->req.ops, w->req.ops_userdata, w->req.dev_fd);
                worker_release_socks(w, socks, &n_socks);
                worker_post_failure(w, -ENOMEM, "device nbd%d: cannot start thread", w->req.dev_index);
                return;
        }

        r = kernel_run(w->req.ops, w->req.ops_userdata, w->req.dev_fd);
        (void) !write(w->ended_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
        kernel_restore_requests(w->req.ops, w->req.ops_userdata, w->req.dev_index, w->saved_max_request_kb);

        __atomic_store_n(&watcher.stop, 1, __ATOMIC_RELEASE);
        (void) pthread_join(watcher_tid, NULL);

        pthread_mutex_lock(&w->lock);
        w->running = false;
        pthread_mutex_unlock(&w->lock);

        silent = server_fell_silent(socks, n_socks);
        worker_release_socks(w, socks, &n_socks);
        report_end(w, r, watcher.result, silent, transports);
}

static void *attach_thread(void *userdata) {
        Worker *w = userdata;
        _cleanup_(tls_transports_done) TlsTransports transports = {};
        Error error = {};
        int socks[ATTACH_MAX_CONNECTIONS];
        size_t n_socks = 0;
        int r;

        r = negotiate(w, &transports, socks, &n_socks, &error);
        if (r < 0)
                goto fail;

        /* Before the device starts, or its first uevents would be missed. */
        r = w->req.ops->udev_settle_begin(w->req.ops_userdata, w->req.dev_index, &w->udev_settle);
        if (r < 0)
                log_warning("Cannot follow udev's handling of nbd%d, not waiting for it: %s",
                            w->req.dev_index, strerror(-r));

        if (w->req.persist.enabled || (w->req.netlink && w->transport_mode != TRANSPORT_MODE_RELAY)) {
                /* Netlink: the device runs without a thread of ours. */
                w->via_netlink = true;
                r = worker_attach_netlink(w, socks, &n_socks, &error);
                if (r < 0)
                        goto fail;
                tls_transports_leave(&transports);
                return NULL;
        }

        r = hand_over(w, socks, n_socks, &error);
        if (r < 0) {
                /* The device holds the sockets: the goodbye goes out before
                 * NBD_CLEAR_SOCK shuts them down. */
                worker_say_goodbye(socks, n_socks, &transports);
                kernel_clear(w->req.ops, w->req.ops_userdata, w->req.dev_fd);
                goto release;
        }

        run_device(w, socks, n_socks, &transports);
        return NULL;

fail:
        worker_say_goodbye(socks, n_socks, &transports);
release:
        w->udev_settle = udev_settle_free(w->udev_settle);
        kernel_restore_requests(w->req.ops, w->req.ops_userdata, w->req.dev_index, w->saved_max_request_kb);
        w->saved_max_request_kb = 0;
        worker_release_socks(w, socks, &n_socks);

        if (r == -ECANCELED || worker_is_cancelled(w))
                worker_post_failure(w, -ECANCELED, "device nbd%d: attach of export '%s' on %s was cancelled",
                                    w->req.dev_index, w->req.export_name ?: "", w->req.host ?: "(socket)");
        else
                worker_post_failure(w, r, "device nbd%d: cannot attach export '%s' on %s: %s",
                                    w->req.dev_index, w->req.export_name ?: "", w->req.host ?: "(socket)",
                                    error.message);
        return NULL;
}

int worker_start_attach(Worker *w) {
        return worker_spawn(w, attach_thread);
}
