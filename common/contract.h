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
 * up on a sender that exceeds it), with room to spare. That much is for
 * root; anyone else's list is held to far less, since it is memory the
 * daemon holds on a stranger's behalf (docs/security.md). */
#define NBD_MAX_LIST_BYTES              (16u * 1024u * 1024u)
#define NBD_MAX_LIST_BYTES_UNPRIVILEGED (1024u * 1024u)
/* Connections per device (option 'connections'). */
#define ATTACH_MAX_CONNECTIONS  16u

/* What the calls of one uid other than root may hold at once while they
 * wait, and all such uids together. Over a limit, a call fails at once
 * with org.nbdlink.NBD1.Error.LimitExceeded. Root is never counted, so no
 * flood of other users' calls can keep root from attaching or detaching;
 * attached devices hold nothing of this (docs/security.md). */
#define LIMIT_QUERIES_PER_UID   4u      /* ListExports and Probe in flight */
#define LIMIT_QUERIES_TOTAL     32u
#define LIMIT_ATTACHES_PER_UID  8u      /* attaches not yet answered */
#define LIMIT_ATTACHES_TOTAL    32u
/* Checks waiting for polkit's answer. Each is a pending method call on
 * the daemon's one bus connection, and a stock system bus allows 128 of
 * those per connection: past that, every other caller's check would fail
 * too. */
#define LIMIT_POLKIT_PER_UID    4u
#define LIMIT_POLKIT_TOTAL      32u
/* Threads resolving host names, in all. A lookup cannot be cancelled, so
 * one that outlives its call's timeout goes on in the background; they pile
 * up only while name service hangs, which then fails everyone alike. */
#define LIMIT_RESOLVERS_TOTAL   32u
/* The longest any duration option may be. */
#define ATTACH_MAX_TIMEOUT_SEC  3600u
