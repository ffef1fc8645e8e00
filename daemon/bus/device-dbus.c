/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The org.nbdlink.NBD1.Device interface of each device object: its
 * properties, Detach(), and how sd-bus finds and lists the objects. What a
 * Device is and does is device.c's. */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "bus-error.h"
#include "device-name.h"
#include "device.h"

void device_emit_disconnected(Device *d, int error, const char *message) {
        (void) sd_bus_emit_signal(d->manager->bus, d->path, NBDLINK_DEVICE_INTERFACE, "Disconnected", "ss",
                                  nbdlink_bus_error_name_from_errno(error), strempty(message));
}

static int method_device_detach(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Device *d = userdata;
        uid_t uid;
        int r;

        r = bus_sender_uid(d->manager->driver_bus, msg, &uid);
        if (r < 0)
                return nbdlink_bus_error_setf(error, -EACCES, "cannot tell who is calling: %s", strerror(-r));
        const char *details[] = { "device", d->node, "host", d->host, "export", d->export_name, NULL };
        r = auth_check(d->manager->polkit, msg, uid, auth_detach_action(uid, d->owner_uid), details, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        return device_detach(d, msg, uid, false, error);
}

const sd_bus_vtable device_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Device", "s", NULL, offsetof(Device, node_prop), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Host", "s", NULL, offsetof(Device, host), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Port", "q", NULL, offsetof(Device, port), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Export", "s", NULL, offsetof(Device, export_name), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("TLS", "b", NULL, offsetof(Device, tls), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Size", "t", NULL, offsetof(Device, size), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BlockSize", "u", NULL, offsetof(Device, block_size), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ReadOnly", "b", NULL, offsetof(Device, read_only), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Flags", "q", NULL, offsetof(Device, flags), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Connections", "u", NULL, offsetof(Device, connections), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("TLSMode", "s", NULL, offsetof(Device, tls_mode), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Persistent", "b", NULL, offsetof(Device, persistent), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", NULL, offsetof(Device, state_string), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("OwnerUID", "u", NULL, offsetof(Device, owner_uid), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("AttachedSince", "t", NULL, offsetof(Device, attached_since), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD("Detach", "", "", method_device_detach, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("Disconnected", "ss", SD_BUS_PARAM(error) SD_BUS_PARAM(message), 0),
        SD_BUS_VTABLE_END
};

int device_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                       void **found, sd_bus_error *error) {
        Manager *m = userdata;

        for (Device *d = m->devices; d; d = d->next)
                if (d->announced && strcmp(d->path, path) == 0) {
                        *found = d;
                        return 1;
                }
        return 0;
}

int device_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        char **l;
        size_t n = 0, k = 0;

        for (Device *d = m->devices; d; d = d->next)
                n++;
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (Device *d = m->devices; d; d = d->next) {
                if (!d->announced)
                        continue;
                l[k] = strdup(d->path);
                if (!l[k]) {
                        for (size_t i = 0; i < k; i++)
                                free(l[i]);
                        free(l);
                        return -ENOMEM;
                }
                k++;
        }
        *nodes = l;
        return 0;
}
