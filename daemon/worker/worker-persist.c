/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The worker side of persistent devices: handing the negotiated sockets to
 * the kernel with NBD_CMD_CONNECT, and, after NBD_CMD_LINK_DEAD, trying
 * again with backoff until the dead timeout, checking that the export is
 * still the same one, then NBD_CMD_RECONFIGURE. */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "device-node.h"
#include "log.h"
#include "nbd-protocol.h"
#include "persist.h"
#include "worker-internal.h"

static void *reconnect_thread(void *userdata);

/* How long NBD_CMD_CONNECT keeps trying a device someone has open. */
#define NETLINK_CONNECT_BUSY_RETRIES 20
#define NETLINK_CONNECT_BUSY_WAIT_USEC (100 * USEC_PER_MSEC)

static int nl(Worker *w, NbdNlCommand cmd, const int *socks, size_t n_socks, int *ret_index) {
        NbdNlConfig c = {
                .index = w->req.dev_index,
                .socks = socks,
                .n_socks = n_socks,
                .size = kernel_device_size(w->info.size, w->block_size),
                .block_size = w->block_size,
                .server_flags = w->info.flags | (w->req.options.read_only ? NBD_FLAG_READ_ONLY : 0),
                .timeout_sec = w->req.options.io_timeout_sec,
                .dead_timeout_sec = w->req.persist.dead_timeout_sec,
                .backend = w->req.persist.backend,
        };

        return w->req.ops->netlink(w->req.ops_userdata, cmd, &c, ret_index);
}

static void disconnect(Worker *w) {
        int r = nl(w, NBD_NL_DISCONNECT, NULL, 0, NULL);
        if (r < 0)
                log_error("Failed to disconnect nbd%d with NBD_CMD_DISCONNECT: %s",
                        w->req.dev_index, strerror(-r));
}

int worker_attach_netlink(Worker *w, int *socks, size_t *n_socks, Error *error) {
        int index = w->req.dev_index, r;

        if (w->info.size > INT64_MAX) {
                return error_set(error, -EFBIG, "export size %llu does not fit the kernel's limits",
                                (unsigned long long) w->info.size);
        }

        /* The read-only flag BLKROSET sets outlives its setter (kernel.h);
         * the kernel's own state comes from NBD_FLAG_READ_ONLY at start. */
        if (w->req.dev_fd >= 0) {
                r = w->req.ops->blkroset(w->req.ops_userdata, w->req.dev_fd, w->req.options.read_only);
                if (r < 0) {
                        return error_set(error, r, "device nbd%d: BLKROSET failed: %s",
                                        w->req.dev_index, strerror(-r));
                }
        }

        /* An open /dev/nbdN holds a configuration in the kernel, and
         * NBD_CMD_CONNECT refuses a device that has one ("already in use"):
         * ours goes, and comes back once the device runs. */
        w->req.dev_fd = safe_close(w->req.dev_fd);
        /* So does anybody else's open: udev probing the device after its
         * last detach holds it for a moment. */
        for (unsigned attempt = 0;; attempt++) {
                r = nl(w, NBD_NL_CONNECT, socks, *n_socks, &index);
                if (r != -EBUSY || attempt >= NETLINK_CONNECT_BUSY_RETRIES || worker_is_cancelled(w))
                        break;
                (void) usleep(NETLINK_CONNECT_BUSY_WAIT_USEC);
        }
        if (r < 0) {
                if (r == -EBUSY)
                        return error_set(error, r, "device nbd%d is in use", w->req.dev_index);
                return error_set(error, r, "NBD_CMD_CONNECT on nbd%d failed: %s",
                                 w->req.dev_index, strerror(-r));
        }
        /* The kernel took its own references to the sockets. */
        worker_release_socks(w, socks, n_socks);
        if (index != w->req.dev_index) {
                /* We named the index; anything else is not the device the
                 * caller was promised. */
                (void) error_set(error, -EIO, "the kernel connected nbd%d instead of nbd%d",
                                index, w->req.dev_index);
                disconnect(w);
                return -EIO;
        }

        /* For the flush before a detach; without it a detach goes
         * straight to NBD_CMD_DISCONNECT. */
        Error ignored = {};
        r = nbd_device_open(index, &w->req.dev_fd, &ignored);
        if (r < 0)
                log_warning("Failed to open nbd%d again, ignoring: %s", index, ignored.message);

        pthread_mutex_lock(&w->lock);
        if (worker_is_cancelled(w)) {
                pthread_mutex_unlock(&w->lock);
                disconnect(w);
                return -ECANCELED;
        }
        /* From here worker_stop() detaches through NBD_CMD_DISCONNECT. */
        w->running = true;
        pthread_mutex_unlock(&w->lock);

        /* NBD_CMD_CONNECT started the device; the open scans partitions. */
        r = w->req.ops->wait_started(w->req.ops_userdata, w->req.dev_index,
                                     w->req.options.timeout_sec * USEC_PER_SEC, NULL);
        if (r < 0)
                log_warning("Failed to open nbd%d for the partition scan, ignoring: %s",
                        w->req.dev_index, strerror(-r));
        worker_settle_udev(w, &w->cancelled);
        worker_post_attached(w);
        return 0;
}

int worker_reconnect(Worker *w, uint64_t size, uint16_t flags, usec_t deadline) {
        pthread_mutex_lock(&w->lock);
        if (!w->running || w->detach_requested || worker_is_cancelled(w)) {
                pthread_mutex_unlock(&w->lock);
                return -EBUSY;
        }
        /* No longer the kernel's: worker_stop() cancels the job now, and
         * the job disconnects (or leaves) the device itself. */
        w->running = false;
        pthread_mutex_unlock(&w->lock);

        if (w->thread_started) {
                /* It posted ATTACHED as its last act. */
                (void) pthread_join(w->thread, NULL);
                w->thread_started = false;
        }
        w->req.kind = WORKER_RECONNECT;
        w->req.persist.size = size;
        w->req.persist.flags = flags;
        w->req.persist.deadline = deadline;
        return worker_spawn(w, reconnect_thread);
}

void worker_adopt(Worker *w, uint64_t size, uint16_t flags, uint32_t block_size, uint32_t connections) {
        w->info.size = size;
        w->info.flags = flags;
        w->block_size = block_size;
        w->connections = connections;
        w->via_netlink = true;
        pthread_mutex_lock(&w->lock);
        w->running = true;
        pthread_mutex_unlock(&w->lock);
}

/* Sleeps for usec, or until the deadline or a cancel. */
static void sleep_cancellable(Worker *w, usec_t usec, usec_t deadline) {
        usec_t until = deadline_after(usec);
        struct pollfd p = { .fd = w->cancel_fd, .events = POLLIN };

        if (until > deadline)
                until = deadline;
        while (poll(&p, 1, deadline_poll_timeout(until)) < 0 && errno == EINTR)
                ;
}

static uint32_t random_u32(void) {
        uint32_t v;

        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
                v = (uint32_t) now_usec(CLOCK_MONOTONIC);
        return v;
}

/* One attempt: connect and negotiate again, check that the export is the
 * one the kernel had, hand the sockets over. 0 when the device runs again;
 * -EAGAIN when the attempt failed in a way the server coming back could
 * mend (attempt says how); any other negative errno ends the reconnect,
 * with verdict saying why. */
static int reconnect_once(Worker *w, const NbdAddress *addr, const TlsConfig *tls, TlsTransports *transports,
                          Error *attempt, Error *verdict) {
        const WorkerPersist *p = &w->req.persist;
        usec_t deadline = deadline_after(w->req.options.timeout_sec * USEC_PER_SEC);
        int socks[ATTACH_MAX_CONNECTIONS];
        size_t n_socks = 0;
        int r;

        /* What the last attempt left behind goes first. */
        tls_transports_done(transports);
        r = worker_open_all(w, addr, tls, transports, MIN(deadline, p->deadline), socks, &n_socks, attempt);
        if (r < 0) {
                worker_release_socks(w, socks, &n_socks);
                if (r == -ECANCELED || worker_is_cancelled(w))
                        return -ECANCELED;
                /* Refused, reset, "export not found yet", a timeout: maybe
                 * the server is still starting. */
                return -EAGAIN;
        }

        if (w->info.size != p->size || w->info.flags != p->flags) {
                /* A different export under the same name: its data is not
                 * what the page cache and file systems above believe is
                 * there. Never hand it over. */
                worker_say_goodbye(socks, n_socks, transports);
                worker_release_socks(w, socks, &n_socks);
                return error_set(verdict, -EPROTO,
                                "device nbd%d: export '%s' on %s came back changed "
                                "(size %llu, flags 0x%x; was size %llu, flags 0x%x), disconnected",
                                w->req.dev_index, w->req.export_name ?: "", w->req.host ?: "(socket)",
                                (unsigned long long) w->info.size, w->info.flags,
                                (unsigned long long) p->size, p->flags);
        }

        r = nl(w, NBD_NL_RECONFIGURE, socks, n_socks, NULL);
        if (r < 0)
                worker_say_goodbye(socks, n_socks, transports);
        worker_release_socks(w, socks, &n_socks);
        if (r < 0) {
                return error_set(verdict, r == -EAGAIN ? -EIO : r, "device nbd%d: NBD_CMD_RECONFIGURE failed: %s",
                                 w->req.dev_index, strerror(-r));
        }
        tls_transports_leave(transports);
        return 0;
}

/* The job ends without the device: disconnected, unless nbdlinkd is
 * leaving it to the kernel, dead link and all (the next nbdlinkd picks the
 * reconnect up from the state file). */
static void give_up(Worker *w, int r, const char *message) {
        bool leave;

        pthread_mutex_lock(&w->lock);
        leave = w->leave;
        pthread_mutex_unlock(&w->lock);
        if (!leave)
                disconnect(w);
        worker_post(w, WORKER_EVENT_FAILED, r, message);
}

static void *reconnect_thread(void *userdata) {
        Worker *w = userdata;
        _cleanup_(nbd_address_done) NbdAddress addr = {};
        _cleanup_(tls_creds_done) TlsCreds creds = {};
        _cleanup_(tls_transports_done) TlsTransports transports = {};
        Error error = {}, verdict = {};
        const WorkerPersist *p = &w->req.persist;
        const char *host = w->req.host ?: "(socket)";
        unsigned attempt;
        int r;

        r = worker_prepare(w, &addr, &creds, &error);
        if (r < 0) {
                (void) error_set(&verdict, r, "device nbd%d: cannot reconnect: %s", w->req.dev_index, error.message);
                give_up(w, r, verdict.message);
                return NULL;
        }
        /* As for the attach: only kTLS, never the relay, may carry TLS of
         * a persistent device. */
        creds.config.ktls = ktls_wanted_for_handshake(w->req.options.tls_ktls);

        for (attempt = 0;; attempt++) {
                if (worker_is_cancelled(w)) {
                        r = -ECANCELED;
                        break;
                }
                if (attempt > 0 && now_usec(CLOCK_MONOTONIC) >= p->deadline) {
                        /* error still holds the last attempt's reason. */
                        r = -ETIMEDOUT;
                        break;
                }

                r = reconnect_once(w, &addr, &creds.config, &transports, &error, &verdict);
                if (r == 0) {
                        pthread_mutex_lock(&w->lock);
                        w->connections = w->req.options.connections;
                        w->running = true;
                        pthread_mutex_unlock(&w->lock);
                        log_info("Reconnected nbd%d to export '%s' on %s after %u attempt(s).",
                                 w->req.dev_index, w->req.export_name ?: "", host, attempt + 1);
                        worker_post_attached(w);
                        return NULL;
                }
                if (r != -EAGAIN)
                        break;

                usec_t pause = persist_backoff_usec(attempt, random_u32());
                log_warning("Reconnecting nbd%d: attempt %u failed (%s), next in %llu ms.",
                            w->req.dev_index, attempt + 1, error.message, (unsigned long long) (pause / USEC_PER_MSEC));
                sleep_cancellable(w, pause, p->deadline);
        }

        if (r == -ECANCELED)
                (void) error_set(&verdict, r, "device nbd%d: reconnect cancelled", w->req.dev_index);
        else if (r == -ETIMEDOUT)
                (void) error_set(&verdict, r,
                                "device nbd%d: export '%s' on %s did not come back within the dead timeout of %u s "
                                "(%u attempts; last: %s), disconnected",
                                w->req.dev_index, w->req.export_name ?: "", host, p->dead_timeout_sec,
                                attempt, error.message);
        give_up(w, r, verdict.message);
        return NULL;
}
