/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What udev learns about a device from nbdlinkd. For each device it
 * attaches, the daemon writes a file of udev properties before the device
 * starts; the shipped rule (data/udev/61-nbdlink.rules) imports it into
 * the disk's uevents and hands it on to the partitions, and sets what
 * udisks2 and file managers read from it: a name, an icon, and, for a
 * device a user other than root attached, that it is not a system disk.
 *
 *   NBDLINK_OWNER_UID="1000"
 *   NBDLINK_SERVER="server.example:10809"
 *   NBDLINK_EXPORT="disk"
 *   NBDLINK_NAME="disk on server.example"
 *
 * udev reads each line as KEY=VALUE, strips one pair of quotes and takes
 * the rest as it is, without escapes; a newline would end the value and
 * start another key. Values are therefore written with every control
 * character escaped (utf8_escape()), and always quoted, so that a value
 * beginning with a quote is not taken for a quoted one. */
#pragma once

#include <stdint.h>

/* Under the daemon's state directory: <state-dir>/udev/nbdN. */
#define UDEV_PROPERTIES_SUBDIR "udev"

typedef struct UdevDeviceInfo {
        int index;                      /* N of /dev/nbdN */
        uint32_t owner_uid;
        const char *host;               /* as the caller wrote it; a socket path; or "(socket)" */
        uint16_t port;                  /* 0: none to show */
        const char *export_name;
} UdevDeviceInfo;

/* The file's text; NULL when out of memory. */
char *udev_properties_format(const UdevDeviceInfo *info);
/* Writes <state_dir>/udev/nbdN atomically (a reader sees the old file or
 * the new one). 0 or negative errno. */
int udev_properties_write(const char *state_dir, const UdevDeviceInfo *info);
/* Removes it; a missing file is no error. */
int udev_properties_remove(const char *state_dir, int index);
