/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The file systems udisks2 sees on one nbd device, and mounting them
 * through it, as a file manager does: for `nbdlink open`. udisks2 mounts
 * for the caller, where the desktop expects it (/media/USER/LABEL), with
 * its own checks and polkit's. */
#pragma once

#include <stddef.h>
#include <systemd/sd-bus.h>

#include "util/time-util.h"

#define UDISKS_BUS_NAME "org.freedesktop.UDisks2"

typedef struct UdisksFilesystem {
        char *object;                   /* udisks2's object path */
        char *device;                   /* /dev/nbdN or /dev/nbdNpM */
        char *type;                     /* IdType: "ext4", "vfat"... */
        char *label;                    /* IdLabel, maybe "" */
        char *mount_point;              /* the first of MountPoints, or NULL */
} UdisksFilesystem;

/* Waits, up to timeout, until udisks2 knows node (/dev/nbdN) and each of
 * its partitions, and has a Filesystem interface on each that holds one;
 * then returns those file systems, sorted by device. -ETIMEDOUT when
 * udisks2 did not get there; a bus error fills error. */
int udisks_wait_filesystems(sd_bus *bus, const char *node, usec_t timeout,
                            UdisksFilesystem **ret, size_t *ret_n, sd_bus_error *error);
void udisks_filesystems_free(UdisksFilesystem *f, size_t n);

/* Filesystem.Mount: *ret_path is where udisks2 mounted it. Asks for a
 * password only when this run may (may_ask_password()). */
int udisks_mount(sd_bus *bus, const UdisksFilesystem *fs, char **ret_path, sd_bus_error *error);
