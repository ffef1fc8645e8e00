/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One attached (or attaching) /dev/nbdN: its properties, its worker, the
 * callers waiting on it, and the org.nbdlink.NBD1.Device object at
 * /org/nbdlink/NBD1/devices/nbdN. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "caller-watch.h"
#include "manager.h"
#include "persist.h"
#include "worker.h"

typedef enum DeviceState {
        DEVICE_CONNECTING,
        DEVICE_NEGOTIATING,
        DEVICE_ATTACHED,
        DEVICE_RECONNECTING,
        DEVICE_DETACHING,
        _DEVICE_STATE_MAX,
} DeviceState;

const char *device_state_to_string(DeviceState s);

#define DEVICE_MAX_DETACH_CALLS 8

struct Device {
        Manager *manager;
        Device *next;

        int index;
        char *path;                     /* object path */
        char *node;                     /* "/dev/nbdN" */

        /* Properties; booleans are int because sd-bus reads 'b' as int. */
        char *node_prop;                /* Device */
        char *host;
        uint16_t port;
        char *export_name;
        int tls;
        uint64_t size;
        uint32_t block_size;
        int read_only;
        uint16_t flags;
        uint32_t connections;
        const char *tls_mode;
        int persistent;
        const char *state_string;
        uint32_t owner_uid;
        uint64_t attached_since;

        DeviceState state;
        Worker *worker;
        char *sender;                   /* who attached it (unique name) */
        char *requested_by;             /* for the log: the attaching caller, then the detaching one */
        sd_bus_message *attach_call;    /* unanswered Attach */
        sd_bus_message *detach_calls[DEVICE_MAX_DETACH_CALLS];
        size_t n_detach_calls;
        CallerWatch *caller;            /* the attaching caller, while attaching */
        bool announced;

        /* Persistent devices only. */
        PersistState pstate;            /* what the state file holds */
        bool link_dead;                 /* LINK_DEAD came before the attach was answered */
        bool restored_tls;              /* found at start with kTLS: no credentials to reconnect with */
        /* The kernel runs it through netlink: it outlives nbdlinkd, has a
         * state file, and is found again at the next start. `persistent`
         * (the option 'persist') adds reconnecting a dead link. */
        bool survives;
        /* Left to the kernel as nbdlinkd goes: what udev knows of it
         * stays, for the next nbdlinkd. */
        bool left;
};

int device_new(Device **ret, Manager *m, int index, uid_t owner, const char *sender);
/* The device nbdlinkd has at index, or NULL. */
Device *device_find(Manager *m, int index);
Device *device_free(Device *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(Device *, device_free);

void device_set_state(Device *d, DeviceState s);
/* Unlinks d from the manager, says goodbye on the bus and frees it; its
 * udev properties go too, unless it was left to the kernel. */
void device_remove(Device *d);
/* Tells udev who attached d, and to what (udev-properties.h): before the
 * device starts, so that its first uevent carries it. */
void device_write_udev_properties(Device *d);
void device_forget_udev_properties(Device *d);
/* Answers the Detach calls waiting on d. */
void device_reply_detach_calls(Device *d);
/* Handles an event of the device's worker. May free d. */
void device_on_worker_event(Device *d, WorkerEvent *e);
/* Persistent devices: what the attach asked for, kept for the state file
 * that is written once the device runs. 0 or -ENOMEM. */
int device_remember_request(Device *d, const char *backend, const AttachOptions *o);
/* Persistent devices: the kernel said the link died (or it was found dead
 * at start): I/O waits while a reconnect job gets new sockets before the
 * dead timeout. */
void device_link_died(Device *d);
/* nbdlinkd is exiting: an attached device that survives stays with the
 * kernel (its object goes, its state file stays), a reconnect in progress
 * is cancelled without disconnecting. Returns false for devices it does
 * not handle (not persistent, or still attaching). May free d. */
bool device_leave(Device *d);
/* Detach(): stops the worker; the reply goes out when it has ended. An
 * attached device that is mounted, held or open exclusively is refused with
 * DeviceBusy naming the reason, unless `force`. `uid` is the caller's, as
 * the handler already has it (for the log). */
int device_detach(Device *d, sd_bus_message *msg, uid_t uid, bool force, sd_bus_error *error);

/* device-dbus.c: the Device interface. Disconnected(error, message) says
 * why a device went away that nobody detached; error is a negative errno
 * for the error name. */
void device_emit_disconnected(Device *d, int error, const char *message);
extern const sd_bus_vtable device_vtable[];
int device_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                       void **found, sd_bus_error *error);
int device_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error);
