/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's context: its life cycle (bus, objects, event loop,
 * shutdown) and the dispatch of the workers' events to the devices and
 * queries they belong to. The Manager's bus interface is manager-dbus.c. */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "caller-watch.h"
#include "device.h"
#include "log.h"
#include "manager.h"
#include "nbd-protocol.h"
#include "options.h"
#include "query.h"

static int on_queue(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        WorkerEvent *e;

        /* One event at a time: handling one may free its Worker, which
         * withdraws whatever else it had queued, so no event outlives its
         * owner. */
        while ((e = worker_queue_pop(&m->queue))) {
                switch (e->kind) {
                case WORKER_ATTACH:
                case WORKER_RECONNECT:
                        device_on_worker_event(e->owner, e);
                        break;
                case WORKER_LIST:
                case WORKER_PROBE:
                default:
                        query_on_worker_event(e->owner, e);
                        break;
                }
                worker_event_free(e);
        }
        return 0;
}

/* ---- life cycle ---------------------------------------------------------- */

int manager_new(Manager **ret, uint32_t default_timeout_sec) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->kernel_ops = &kernel_ops_real;
        m->netlink = NBD_NETLINK_NULL;
        m->state_dir = strdup(PERSIST_STATE_DIR);
        if (!m->state_dir)
                return -ENOMEM;
        m->default_timeout_sec = default_timeout_sec ?: ATTACH_DEFAULT_TIMEOUT_SEC;

        r = polkit_registry_new(&m->polkit);
        if (r < 0)
                return r;

        r = worker_queue_init(&m->queue);
        if (r < 0)
                return r;
        m->queue_ready = true;

        r = sd_event_default(&m->event);
        if (r < 0)
                return r;

        r = sd_event_add_io(m->event, &m->queue_source, m->queue.event_fd, EPOLLIN, on_queue, m);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        while (m->devices) {
                Device *d = m->devices;
                m->devices = d->next;
                device_free(d);
        }
        while (m->queries) {
                Query *q = m->queries;
                m->queries = q->next;
                query_free(q);
        }
        sd_event_source_unref(m->queue_source);
        sd_event_source_disable_unref(m->reconnect_source);
        /* Before the bus goes: withdrawing an interactive check is a message. */
        polkit_registry_free(m->polkit);
        sd_event_source_unref(m->netlink_source);
        nbd_netlink_close(&m->netlink);
        free(m->state_dir);
        sd_bus_flush_close_unref(m->bus);
        sd_bus_flush_close_unref(m->driver_bus);
        sd_event_unref(m->event);
        if (m->queue_ready)
                worker_queue_done(&m->queue);
        free(m);
        return NULL;
}

/* ---- the bus connection -------------------------------------------------- */

static int on_bus_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *error);

/* A connection with every object and the name: at start, and again after
 * the connection was lost. Leaves m->bus alone on failure. */
static int connect_bus(Manager *m) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL, *driver = NULL;
        int r;

        /* Honours DBUS_SYSTEM_BUS_ADDRESS, so tests can use a private bus. */
        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_open_system(&driver);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");

        r = sd_bus_add_object_vtable(bus, NULL, NBDLINK_MANAGER_PATH, NBDLINK_MANAGER_INTERFACE, manager_vtable, m);
        if (r >= 0)
                r = sd_bus_add_fallback_vtable(bus, NULL, NBDLINK_DEVICES_PATH, NBDLINK_DEVICE_INTERFACE,
                                               device_vtable, device_object_find, m);
        if (r >= 0)
                r = sd_bus_add_node_enumerator(bus, NULL, NBDLINK_DEVICES_PATH, device_node_enumerator, m);
        if (r >= 0)
                r = sd_bus_add_object_manager(bus, NULL, NBDLINK_MANAGER_PATH);
        /* sd-bus tells of a lost connection with a message of its own. */
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                                        "org.freedesktop.DBus.Local", "Disconnected", on_bus_disconnected, m);
        if (r >= 0)
                r = sd_bus_attach_event(bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to register bus objects: %m");

        r = sd_bus_request_name(bus, NBDLINK_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to request bus name %s: %m", NBDLINK_BUS_NAME);

        sd_bus_flush_close_unref(m->bus);
        m->bus = TAKE_PTR(bus);
        sd_bus_flush_close_unref(m->driver_bus);
        m->driver_bus = TAKE_PTR(driver);
        return 0;
}

static int on_reconnect_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r;

        r = connect_bus(m);
        if (r < 0) {
                m->reconnect_delay_usec = MIN(m->reconnect_delay_usec * 2, MANAGER_RECONNECT_MAX_USEC);
                log_error("Still not on the system bus; trying again in %llu s.",
                          (unsigned long long) (m->reconnect_delay_usec / USEC_PER_SEC));
                (void) sd_event_source_set_time_relative(s, m->reconnect_delay_usec);
                return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }

        m->reconnect_source = sd_event_source_disable_unref(m->reconnect_source);
        log_info("On the system bus again as %s.", NBDLINK_BUS_NAME);
        (void) sd_notify(false, "READY=1\nSTATUS=Running.");
        return 0;
}

/* Every call in flight came over the lost connection, and its caller has
 * had its error from the bus already: nothing is owed to anyone. Queries
 * and unfinished attaches end, as when a caller leaves; checks pending at
 * polkit are dropped. Attached devices are nobody's call, and stay. */
static void forget_callers(Manager *m) {
        PolkitRegistry *fresh = NULL;

        for (Query *q = m->queries; q; q = q->next) {
                q->caller = caller_watch_free(q->caller);
                worker_stop(q->worker);
        }
        for (Device *d = m->devices; d; d = d->next) {
                d->caller = caller_watch_free(d->caller);
                if (d->state == DEVICE_CONNECTING || d->state == DEVICE_NEGOTIATING) {
                        device_set_state(d, DEVICE_DETACHING);
                        worker_stop(d->worker);
                }
        }
        if (polkit_registry_new(&fresh) >= 0) {
                polkit_registry_free(m->polkit);
                m->polkit = fresh;
        }
}

static int on_bus_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        if (m->exiting) {
                /* Nothing left to connect for: the devices are on their
                 * way out already. */
                log_warning("Lost the connection to the system bus while stopping.");
                return 0;
        }

        log_error("Lost the connection to the system bus; the devices stay attached, connecting again.");
        (void) sd_notify(false, "STATUS=Connecting to the system bus again.");
        forget_callers(m);

        /* Not from inside the bus's own dispatch: the next loop iteration
         * drops the old connection and makes the new one. */
        m->reconnect_delay_usec = MANAGER_RECONNECT_FIRST_USEC;
        r = sd_event_add_time_relative(m->event, &m->reconnect_source, CLOCK_MONOTONIC, 0, 0,
                                       on_reconnect_timer, m);
        if (r < 0) {
                log_error_errno(r, "Failed to schedule connecting again, stopping: %m");
                manager_shutdown(m);
        }
        return 0;
}

int manager_start(Manager *m) {
        int r;

        r = nbdlink_bus_error_register();
        if (r < 0)
                return r;
        return connect_bus(m);
}

void manager_shutdown(Manager *m) {
        if (m->exiting)
                return;
        m->exiting = true;

        for (Device *d = m->devices, *next; d; d = next) {
                next = d->next;
                /* Devices the kernel runs without us stay with it. */
                if (device_leave(d))
                        continue;
                if (d->state != DEVICE_DETACHING)
                        device_set_state(d, DEVICE_DETACHING);
                worker_stop(d->worker);
        }
        for (Query *q = m->queries; q; q = q->next)
                worker_stop(q->worker);

        if (!m->devices && !m->queries)
                (void) sd_event_exit(m->event, 0);
}
