/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's context: its life cycle (bus, objects, event loop,
 * shutdown) and the dispatch of the workers' events to the devices and
 * queries they belong to. The Manager's bus interface is manager-dbus.c. */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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
        /* Before the bus goes: withdrawing an interactive check is a message. */
        polkit_registry_free(m->polkit);
        sd_event_source_unref(m->netlink_source);
        nbd_netlink_close(&m->netlink);
        free(m->state_dir);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        if (m->queue_ready)
                worker_queue_done(&m->queue);
        free(m);
        return NULL;
}

int manager_start(Manager *m) {
        int r;

        r = nbdlink_bus_error_register();
        if (r < 0)
                return r;

        /* Honours DBUS_SYSTEM_BUS_ADDRESS, so tests can use a private bus. */
        r = sd_bus_open_system(&m->bus);
        if (r < 0) {
                log_error("Failed to connect to the system bus: %s", strerror(-r));
                return r;
        }

        r = sd_bus_add_object_vtable(m->bus, NULL, NBDLINK_MANAGER_PATH, NBDLINK_MANAGER_INTERFACE, manager_vtable, m);
        if (r < 0)
                goto fail;
        r = sd_bus_add_fallback_vtable(m->bus, NULL, NBDLINK_DEVICES_PATH, NBDLINK_DEVICE_INTERFACE, device_vtable,
                                       device_object_find, m);
        if (r < 0)
                goto fail;
        r = sd_bus_add_node_enumerator(m->bus, NULL, NBDLINK_DEVICES_PATH, device_node_enumerator, m);
        if (r < 0)
                goto fail;
        r = sd_bus_add_object_manager(m->bus, NULL, NBDLINK_MANAGER_PATH);
        if (r < 0)
                goto fail;

        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                goto fail;

        r = sd_bus_request_name(m->bus, NBDLINK_BUS_NAME, 0);
        if (r < 0) {
                log_error("Failed to request bus name %s: %s", NBDLINK_BUS_NAME, strerror(-r));
                return r;
        }
        return 0;

fail:
        log_error("Failed to register bus objects: %s", strerror(-r));
        return r;
}

void manager_shutdown(Manager *m) {
        if (m->exiting)
                return;
        m->exiting = true;

        for (Device *d = m->devices, *next; d; d = next) {
                next = d->next;
                /* Persistent devices stay with the kernel. */
                if (d->persistent && device_leave(d))
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
