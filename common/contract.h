/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the daemon and its callers agree on: the bus names, the limits the
 * bus API enforces, and the device names it takes (docs/bus-api.md). */
#pragma once

#define NBDLINK_BUS_NAME          "org.nbdlink.NBD1"
#define NBDLINK_MANAGER_PATH      "/org/nbdlink/NBD1"
#define NBDLINK_MANAGER_INTERFACE "org.nbdlink.NBD1.Manager"
#define NBDLINK_DEVICES_PATH      "/org/nbdlink/NBD1/devices"
#define NBDLINK_DEVICE_INTERFACE  "org.nbdlink.NBD1.Device"

/* Limits of what nbdlink accepts from a caller or a server. */
#define NBD_MAX_STRING          4096u   /* export names, descriptions, error texts */
#define NBD_MAX_HOST            255u
#define NBD_MAX_DEVICE_INDEX    9999    /* "nbdN" with N of at most 4 digits */
#define NBD_MAX_LIST_ENTRIES    10000u
/* All names and descriptions of one LIST together: the answer must fit
 * in one D-Bus message (32 MiB on a stock system bus, whose daemon hangs
 * up on a sender that exceeds it), with room to spare. */
#define NBD_MAX_LIST_BYTES      (16u * 1024u * 1024u)
/* Connections per device (option 'connections'). */
#define ATTACH_MAX_CONNECTIONS  16u
/* Attaches one bus client may have in progress at once. */
#define ATTACH_MAX_PER_CALLER   16u
/* The longest any duration option may be. */
#define ATTACH_MAX_TIMEOUT_SEC  3600u
