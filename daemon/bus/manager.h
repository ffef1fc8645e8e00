/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's one context: the bus, the event loop, the devices and the
 * queries in flight, and the org.nbdlink.NBD1.Manager object. Owned by
 * main(); used from the main thread only. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "contract.h"
#include "kernel.h"
#include "netlink.h"
#include "polkit.h"
#include "worker.h"


#define MANAGER_RECONNECT_FIRST_USEC (1 * USEC_PER_SEC)
#define MANAGER_RECONNECT_MAX_USEC   (30 * USEC_PER_SEC)

typedef struct Device Device;
typedef struct Query Query;

typedef struct Manager {
        sd_event *event;
        sd_bus *bus;
        /* For synchronous questions to the bus driver about callers
         * (bus_sender_uid()): a connection that carries no calls, so that
         * waiting on it reads none ahead. */
        sd_bus *driver_bus;
        sd_event_source *queue_source;
        WorkerQueue queue;
        bool queue_ready;

        Device *devices;
        Query *queries;
        PolkitRegistry *polkit;         /* authorizations in flight */

        const KernelOps *kernel_ops;
        void *kernel_userdata;
        uint32_t default_timeout_sec;
        /* The administrator's CA directory (--tls-ca-dir), or NULL; when
         * optional (the built-in default) it counts only while it exists. */
        const char *tls_ca_dir;
        bool tls_ca_dir_optional;
        bool exiting;

        /* After the bus connection was lost: the timer that connects
         * again, and its next delay (doubling up to the maximum). */
        sd_event_source *reconnect_source;
        uint64_t reconnect_delay_usec;

        /* Persistent devices: state files, and the netlink multicast
         * group that says when their links die. */
        char *state_dir;
        NbdNetlink netlink;
        sd_event_source *netlink_source;
} Manager;

int manager_new(Manager **ret, uint32_t default_timeout_sec);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Connects to the system bus, registers the objects and takes the name.
 * Should the connection be lost later, the manager connects again by
 * itself (and keeps every attached device meanwhile). */
int manager_start(Manager *m);
/* Detaches everything, then leaves the event loop. */
void manager_shutdown(Manager *m);

/* The Manager's bus interface (manager-dbus.c). */
extern const sd_bus_vtable manager_vtable[];
